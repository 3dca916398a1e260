/*
 * router: event-router's wiring.  The configuration's inputs (src/inputs,
 * input.h), its PUB streams (one per zeromq output: XPUBs, which hand it
 * each subscription to apply and answer; bus.h, "The event stream") and
 * the store, on one event loop (loop.h).
 * Every input's messages go through router_take(): validate, stamp,
 * publish, answer, store.
 */
#ifndef ER_ROUTER_H
#define ER_ROUTER_H

#include "config.h"
#include "event.h"

struct router;
struct input;
struct bus_msg;

/*
 * Bind every socket the configuration names and open the store.  Returns
 * NULL with err[errsz] = the reason (an address in use, an unopenable
 * store...).  The config is copied.
 */
struct router *router_new(const struct cfg *cfg, char *err, size_t errsz);

/*
 * Run the router's loop (loop.h) until SIGTERM or SIGINT (or daemon_stop,
 * set before it ran): then stop taking input, drain the feeders, flush the
 * store and return 0.  Logs the ready line first (README.rst,
 * "Readiness").
 */
int router_run(struct router *r);

/*
 * The one path every input takes, for each message m it received (one
 * frame: a message of more is refused): validate and stamp it (in's
 * namespace as the default, limits.max_event_size), publish it on every
 * output, answer it when in answers (ops->replies: the stamped event, or
 * {"error": {"code", "message"}}), then hand it to the store.  A refusal
 * is counted and logged, rate-limited per input.  Nothing of m is kept.
 * Returns 0 (accepted) or -1 (refused).
 */
int router_take(struct router *r, struct input *in, const struct bus_msg *m);

/* Close everything; NULL is a no-op. */
void router_free(struct router *r);

#endif
