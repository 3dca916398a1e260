/*
 * event_json: the event module's jansson conventions, for the modules that
 * read the wire protocol's texts with jansson: event.c (events), client.c
 * (requests and replies) and in_amqp_oslo.c (OpenStack notifications).
 * One set of parse flags and one mapping of jansson's errors to the
 * router's codes, so that a text is refused alike wherever it is read.
 */
#ifndef ER_EVENT_JSON_H
#define ER_EVENT_JSON_H

#include <jansson.h>
#include <stddef.h>

struct event_error;		/* event.h */

/*
 * Flags for every parse.  jansson would keep the last of duplicate keys
 * and refuse \u0000 everywhere; we refuse duplicates, and \u0000 only in
 * the fields that name an event.  DECODE_ANY: a text that is not an
 * object is valid JSON and gets not_an_object.
 */
#define EV_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)

/*
 * Set *err (when not NULL) from jansson's error je about buf[len]: our
 * code (invalid_json with line, column and byte; invalid_utf8;
 * duplicate_key; nul_in_field; integer_out_of_range; non_finite_number,
 * as jansson reports NaN, Infinity and 1e999) and message.  Returns -1.
 */
int event_fail_decode(struct event_error *err, const json_error_t *je,
    const char *buf, size_t len);

#endif
