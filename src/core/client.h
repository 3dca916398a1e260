/*
 * client: talking to event-router as its clients do: fire-event over tcp://
 * (REQ, or PUSH), and the feeders (AMQPInput, HTTPInput) over the
 * inproc:// REP of their input (feeder.h).  What to send (a request built
 * from a type and a payload), one exchange on a socket with a bounded wait
 * for the reply, and what a reply says (event-reactor(7), "Wire
 * protocol").  With event.c and in_amqp_oslo.c, a user of event_json.h's
 * jansson conventions.
 *
 * A client is used by one thread at a time (callers that share one
 * serialize around it).
 */
#ifndef ER_CLIENT_H
#define ER_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>

#include "bus.h"
#include "event.h"

/* ---- requests and replies ---- */

/*
 * Build an event request as fire-event sends it:
 *   {"event_type":TYPE,"namespace":NS,"payload":PAYLOAD}
 * payload_text is JSON text (validated here with its position on error:
 * returns NULL and fills err with EV_INVALID_JSON etc.); it is kept as
 * written, with insignificant white space removed.  ns may be NULL (then no
 * namespace member).  A type or namespace that is not UTF-8: NULL with
 * EV_INVALID_UTF8, "event type or namespace is not valid UTF-8".  Returns a
 * new string (caller frees), *len its length.
 */
char *client_request(const char *event_type, const char *ns,
    const char *payload_text, size_t payload_len, size_t *len,
    struct event_error *err);
/*
 * The same, fired because of event parent (its id, not NULL): with
 * "parent_event": parent and "hops": hops after the namespace.
 */
char *client_request_from(const char *event_type, const char *ns,
    const char *parent, int hops, const char *payload_text,
    size_t payload_len, size_t *len, struct event_error *err);

/*
 * Parse a REP reply.  Returns 0 when it is an event (an object with a
 * string "id"), 1 when it is an error reply (its code and message copied,
 * truncated to fit, into code[codesz] and msg[msgsz]), -1 when it is
 * neither.
 */
int client_parse_reply(const void *buf, size_t len, char *code,
    size_t codesz, char *msg, size_t msgsz);

/*
 * The id of a stamped REP reply: copies the 24 hex digits and a NUL into
 * id[EVENT_ID_LEN + 1] and returns 0, or returns -1 when buf[0..len) is not
 * a stamped event.
 */
int client_reply_id(const void *buf, size_t len, char *id);

/* ---- the socket ---- */

struct client;

/* client_new() flags. */
#define CLIENT_PUSH 1		/* a PUSH socket (no reply), else REQ */
#define CLIENT_IMMEDIATE 2	/* queue only on a completed connection, so
				 * that a send without a router times out */
#define CLIENT_RELAXED 4	/* REQ: a request may follow one whose reply
				 * never came, a late reply is dropped
				 * (bus_set_req_relaxed) */

/* Slice of the wait for a reply, to look at the abandon flag (ms). */
#define CLIENT_POLL_MS 100

/*
 * A socket in bus's context.  timeout_ms: how long a send may wait, and
 * how long client_exchange() waits for a reply; a PUSH socket also
 * lingers that long at close, so that its event leaves.  Returns NULL with
 * err[errsz] set.
 */
struct client *client_new(struct bus *bus, int flags, long timeout_ms,
    char *err, size_t errsz);
/*
 * Before client_connect(): a CURVE client with its key pair, which
 * talks only to a server that holds the secret of server_z85 (Z85 text,
 * bus.h).  Returns 0, or -1 with err[errsz] set.
 */
int client_curve(struct client *c, const char *public_z85,
    const char *secret_z85, const char *server_z85, char *err,
    size_t errsz);
/* Connect to uri: 0, or -1 with err[errsz] "URI: reason". */
int client_connect(struct client *c, const char *uri, char *err,
    size_t errsz);
/* Close; NULL is a no-op. */
void client_free(struct client *c);

enum client_status {
	CLIENT_REPLIED,		/* REQ: a reply came (client_reply()); PUSH:
				 * the event is queued */
	CLIENT_NOT_SENT,	/* errno (EAGAIN: no router took it in time) */
	CLIENT_NO_REPLY,	/* no reply within timeout_ms */
	CLIENT_ABANDONED,	/* *abandon became non-zero while waiting */
	CLIENT_POLL_FAILED,	/* errno */
	CLIENT_RECV_FAILED,	/* errno */
};

/*
 * Send buf[len] as one message and, on a REQ socket, wait for the reply
 * until timeout_ms passed or *abandon (NULL: never) is non-zero, looked at
 * every CLIENT_POLL_MS.  The reply stays readable with client_reply() until
 * the next exchange or client_free().
 */
enum client_status client_exchange(struct client *c, const void *buf,
    size_t len, const atomic_int *abandon);
/* The last reply's bytes (*len set); NULL before any. */
const void *client_reply(const struct client *c, size_t *len);

#endif
