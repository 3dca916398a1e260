/*
 * feeder: what the inputs with threads of their own share: AMQPInput
 * (in_amqp.c) and HTTPInput (in_http.c).
 *
 * A feeder never publishes by itself.  Its input listens on a ROUTER
 * socket (input.h) at "inproc://feeder-N" in the router's ZeroMQ context
 * (feeder_listen(), with the feeder's namespace as the default) and the
 * feeder's threads send each event there through a feeder_link, a REQ
 * socket, one at a time (HTTP), or a feeder_pipe, a DEALER socket with
 * many in flight (AMQP): the router validates, stamps, stores and
 * publishes it exactly as on its REP input and replies the stamped event
 * once it is stored, or {"error": {...}} (event-reactor(7), "Wire
 * protocol"; "store_unavailable" when the store could not write it).
 *
 * Threads: each feeder runs in threads of its own (AMQP: one thread; HTTP:
 * libmicrohttpd's polling thread), started with every signal blocked
 * (input_start()).  At shutdown the router stops the feeder (it takes no
 * more input), keeps answering its ROUTER until it is idle (bounded,
 * INPUT_DRAIN_MS), then frees it, which joins.
 */
#ifndef ER_FEEDER_H
#define ER_FEEDER_H

#include <stdatomic.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "event.h"
#include "input.h"

/* How long a feeder waits for the router's reply before giving up (ms). */
#define FEEDER_REPLY_TIMEOUT_MS 10000

/*
 * For a feeder's start: bind in's ROUTER at "inproc://feeder-N", N its index
 * among the inputs, with its namespace (in->plugin->ns) as the default;
 * in->name becomes "PREFIX:NAMESPACE".  The feeder's link connects to
 * in->bound.  Returns 0, or -1 with err[errsz].
 */
int feeder_listen(struct input *in, int index, const char *prefix, char *err,
    size_t errsz);

/* ---- the link ---- */

/* A REQ client (client.h) of the feeder's input; used by one thread at a
 * time (callers that share one serialize around it). */
struct feeder_link;

enum feeder_verdict {
	FEEDER_ACCEPTED,	/* stamped: id set */
	FEEDER_REFUSED,		/* error reply: code and message set */
	FEEDER_UNAVAILABLE,	/* no reply (stopping, or timed out) */
};

struct feeder_result {
	enum feeder_verdict verdict;
	char id[EVENT_ID_LEN + 1];
	char code[32];		/* the router's error code, "invalid_json"... */
	char message[256];	/* its message */
};

/*
 * Connect a REQ client (CLIENT_RELAXED, so a timed-out request does not
 * wedge it) to uri.  abandon: looked at while waiting for a reply; the wait
 * ends (FEEDER_UNAVAILABLE) once it is non-zero.  Returns NULL with err.
 */
struct feeder_link *feeder_link_new(struct bus *bus, const char *uri,
    const atomic_int *abandon, char *err, size_t errsz);
void feeder_link_free(struct feeder_link *l);

/* Send buf[0..len) as one event request and wait for the router's reply
 * (at most FEEDER_REPLY_TIMEOUT_MS).  Fills *res. */
void feeder_submit(struct feeder_link *l, const void *buf, size_t len,
    struct feeder_result *res);

/* ---- the pipe ---- */

/*
 * A DEALER client of the feeder's input that keeps up to max requests in
 * flight, each under a tag of the caller's (any value; the pipe's own
 * sequence numbers match the replies), so that a feeder with one thread
 * (AMQP) has many events waiting for the store at once.  Each
 * request is decided once: by the router's reply, or FEEDER_UNAVAILABLE
 * once FEEDER_REPLY_TIMEOUT_MS passed (a late reply is then dropped).
 * Used by one thread.
 */
struct feeder_pipe;

/* Connect to uri; max: requests in flight at most (>= 1).  NULL with
 * err. */
struct feeder_pipe *feeder_pipe_new(struct bus *bus, const char *uri,
    int max, char *err, size_t errsz);
void feeder_pipe_free(struct feeder_pipe *p);
/* Requests in flight now; room for more while below max. */
int feeder_pipe_pending(const struct feeder_pipe *p);
int feeder_pipe_room(const struct feeder_pipe *p);
/* Send buf[0..len) as a request tagged tag (no wait): 0, or -1 with
 * errno (not in flight then). */
int feeder_pipe_send(struct feeder_pipe *p, unsigned long long tag,
    const void *buf, size_t len);
/*
 * Wait up to ms (bounded by the next request's deadline) until a reply
 * is there, or fd (-1: none) is readable.  Returns as bus_poll().
 */
int feeder_pipe_wait(struct feeder_pipe *p, int fd, long ms);
/*
 * A decided request, without waiting: 1 with *tag and *res, 0 when none
 * is decided yet.
 */
int feeder_pipe_take(struct feeder_pipe *p, unsigned long long *tag,
    struct feeder_result *res);
/* Forget every request in flight: their replies, if any come, are
 * dropped. */
void feeder_pipe_forget(struct feeder_pipe *p);

#endif
