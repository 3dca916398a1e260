/*
 * in_amqp_oslo: AMQPInput's messages made events (in_amqp.c): OpenStack's
 * notifications, as oslo.messaging sends them (event-reactor(7),
 * "AMQPInput messages").  With event.c and client.c, a user of
 * event_json.h's jansson conventions.
 */
#ifndef ER_IN_AMQP_OSLO_H
#define ER_IN_AMQP_OSLO_H

#include <stddef.h>

#include "event.h"

/*
 * Turn an AMQP message body into an event request for the router.  The
 * body is either an oslo.messaging 2.0 envelope, {"oslo.version": "2.0",
 * "oslo.message": "<the notification as a JSON string>"}, or the
 * notification itself as plain JSON.  The event gets the notification's
 * event_type, publisher_id, priority, message_id and payload (jansson's
 * encoding, members in that order) and no namespace (the input's applies).
 * A "timestamp" string in oslo's form, "YYYY-MM-DD HH:MM:SS[.ffffff]" in
 * UTC ('T' and a trailing 'Z' or "+00:00" accepted too), becomes the
 * event's timestamp in seconds (microseconds kept) and is also kept as
 * sent in "original_timestamp"; a number is kept as the timestamp; any
 * other value is only kept in "original_timestamp" (the router then stamps
 * its own time).  Other members (oslo's _context_* ones can hold
 * credentials) are dropped.  Nothing else is checked here: the router
 * validates the result like any other input.
 * Returns a new NUL-terminated string (caller frees) with *outlen its
 * length, or NULL with *err set: EV_INVALID_JSON / EV_INVALID_UTF8 / ...
 * for the body or the inner message (the message says which, with the
 * position), EV_NOT_AN_OBJECT, EV_INVALID_ENVELOPE when "oslo.message" is
 * not a string.
 */
char *oslo_event(const void *buf, size_t len, size_t *outlen,
    struct event_error *err);

#endif
