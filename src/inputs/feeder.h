/*
 * feeder: the inputs that live inside event-router besides its ZeroMQ
 * sockets: AMQPInput (feeder_amqp) and HTTPInput (feeder_http).
 *
 * A feeder never publishes by itself.  The router binds one REP input at
 * "inproc://feeder-N" for each feeder (in its own ZeroMQ context, with the
 * feeder's namespace as the default) and the feeder sends each event there
 * through a feeder_link, a REQ socket: the router validates, stamps, stores
 * and publishes it exactly as on its REP input and replies the stamped
 * event or {"error": {...}} (README.rst, "Wire protocol").
 *
 * Threads: each feeder runs in threads of its own (AMQP: one thread; HTTP:
 * libmicrohttpd's polling thread), started with every signal blocked so
 * that signals reach the main thread's poll loop.  The router calls
 * feeder_stop() when it stops taking input, keeps answering the feeder
 * inputs until feeder_idle() (bounded), then feeder_free(), which joins.
 */
#ifndef ER_FEEDER_H
#define ER_FEEDER_H

#include <stdatomic.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "event.h"

/* How long a feeder waits for the router's reply before giving up (ms). */
#define FEEDER_REPLY_TIMEOUT_MS 10000
/* How long the router keeps answering feeders after it stops (ms). */
#define FEEDER_DRAIN_MS 5000

struct feeder;

/*
 * Start the feeder fc describes, sending to the router's REP input at
 * router_uri (an inproc:// endpoint bound in bus).  max_event_size: bytes
 * (limits.max_event_size), enforced before anything is sent.  fc is copied.
 * Returns NULL with err[errsz] set when it cannot start (an HTTP port in
 * use, a malformed AMQP URL); an unreachable AMQP broker is not an error
 * (the feeder keeps retrying in its thread).
 */
struct feeder *feeder_start(const struct cfg_feeder *fc, struct bus *bus,
    const char *router_uri, size_t max_event_size, char *err, size_t errsz);

/* Stop taking input (returns at once; requests then in flight finish). */
void feeder_stop(struct feeder *f);
/* 1 once stopped with nothing in flight (the router may stop answering). */
int feeder_idle(struct feeder *f);
/* Abandon waits for the router, join the threads, free.  NULL: no-op. */
void feeder_free(struct feeder *f);

/* What to show on the ready line: "http=http://127.0.0.1:8080" or
 * "amqp=amqp://user@host:5672/vhost" (never a password or secret). */
const char *feeder_describe(const struct feeder *f);

/* ---- for feeder_amqp.c and feeder_http.c ---- */

/* A REQ socket to the router; used by one thread at a time (callers that
 * share one serialize around it). */
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
 * Connect a REQ socket (ZMQ_REQ_RELAXED, so a timed-out request does not
 * wedge it) to uri.  abandon: polled while waiting for a reply; the wait
 * ends (FEEDER_UNAVAILABLE) once it is non-zero.  Returns NULL with err.
 */
struct feeder_link *feeder_link_new(struct bus *bus, const char *uri,
    const atomic_int *abandon, char *err, size_t errsz);
void feeder_link_free(struct feeder_link *l);

/* Send buf[0..len) as one event request and wait for the router's reply
 * (at most FEEDER_REPLY_TIMEOUT_MS).  Fills *res. */
void feeder_submit(struct feeder_link *l, const void *buf, size_t len,
    struct feeder_result *res);

#endif
