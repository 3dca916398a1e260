/*
 * router_ready: event-router's ready line (event-reactor(7), "Readiness"),
 * which tests and scripts read for the endpoints bound: "ready", each kind
 * of input with a ready_key as KEY=ENDPOINT,... (pull=, rep=; KEY=- when
 * none), each such kind of output likewise (pub=), then the words of the
 * other inputs and outputs ("http=http://...", "amqp=amqp://...").
 */
#ifndef ER_ROUTER_READY_H
#define ER_ROUTER_READY_H

#include <stddef.h>

struct input;
struct output;

/* The line's size, bytes; a longer one is cut. */
#define ROUTER_READY_MAX 8192

/*
 * The ready line of the nin inputs in[] and nout outputs out[], in the
 * order they were configured, into line[size] (NUL-terminated, cut to
 * size).
 */
void router_ready_line(struct input *const *in, int nin,
    struct output *const *out, int nout, char *line, size_t size);

#endif
