/*
 * event: the JSON event model.  Parse, validate, stamp and serialize.
 * Its jansson conventions (event_json.h) are shared with the other readers
 * of the wire texts: client (requests, replies) and in_amqp_oslo
 * (OpenStack notifications).
 *
 * Wire format (event-reactor(7), "Events"): one UTF-8 JSON object per ZeroMQ
 * frame.  event_type: non-empty string; namespace: non-empty string, default
 * the input's; timestamp: number of seconds since the epoch, added when
 * missing; id: assigned here, a 24-hex-digit ObjectId (libbson).
 */
#ifndef ER_EVENT_H
#define ER_EVENT_H

#include <stddef.h>

/* Default for limits.max_event_size, in bytes. */
#define EVENT_MAX_SIZE_DEFAULT (1024 * 1024)
/* An ObjectId as text: 24 hex digits (BSON spec, "ObjectId"). */
#define EVENT_ID_LEN 24
/* The largest "hops" an event may carry (handler runs from the first
 * event of its chain); the router's limits.max_hops is at most this. */
#define EVENT_MAX_HOPS 1000

/* Why an event was refused; event_err_code() gives the wire name. */
enum event_err {
	EV_OK = 0,
	EV_INVALID_JSON,
	EV_INVALID_UTF8,
	EV_NOT_AN_OBJECT,
	EV_DUPLICATE_KEY,
	EV_NUL_IN_FIELD,
	EV_MISSING_EVENT_TYPE,
	EV_EMPTY_EVENT_TYPE,
	EV_INVALID_EVENT_TYPE,
	EV_INVALID_NAMESPACE,
	EV_INVALID_TIMESTAMP,
	EV_INTEGER_OUT_OF_RANGE,
	EV_NON_FINITE_NUMBER,
	EV_TOO_LARGE,
	EV_MULTIPART,
	EV_INVALID_ENVELOPE,
	EV_STORE_UNAVAILABLE,	/* valid, but the store could not write it */
	EV_INVALID_HOPS,
	EV_LOOP_DETECTED,	/* hops over limits.max_hops (router.c) */
	EV_ERR_COUNT
};

struct event_error {
	enum event_err code;
	char message[256];	/* what is wrong, for a person */
};

/*
 * A stamped event.  All strings point into one allocation owned by the
 * struct and released by event_clear().  json is exactly what is published,
 * stored and replied (no terminating newline; NUL-terminated for
 * convenience, json_len excludes the NUL).  The allocation is reference
 * counted, so that ZeroMQ can send json without a copy (event_share).
 */
struct event {
	char id[EVENT_ID_LEN + 1];
	const char *namespace;
	const char *event_type;
	const char *topic;	/* "namespace:event_type" */
	size_t topic_len;
	double timestamp;	/* seconds since the epoch */
	int hops;		/* its "hops" member, 0 when absent */
	const char *json;
	size_t json_len;
	void *mem;		/* the allocation behind the pointers */
};

/* "invalid_json", "too_large", ...; "ok" for EV_OK. */
const char *event_err_code(enum event_err code);

/*
 * Validate the bytes buf[0..len) as an event and stamp it.
 * default_ns: namespace for events without one (not copied).
 * max_size: refuse longer messages (EV_TOO_LARGE); 0 means no limit.
 * now: the timestamp to add when the event has none.
 * On success fills *ev (release with event_clear()) and returns 0.
 * On refusal returns -1 and fills *err; *ev is left empty.
 * Only memory exhaustion aborts (as jansson itself would fail).
 */
int event_ingest(const void *buf, size_t len, const char *default_ns,
    size_t max_size, double now, struct event *ev, struct event_error *err);

/*
 * Re-read an already stamped event (as received on the PUB stream) without
 * changing it: fills *ev with a copy.  Returns 0, or -1 with *err set when
 * the text is not a stamped event (no 24-hex-digit id, no namespace...).
 */
int event_parse_stamped(const void *buf, size_t len, struct event *ev,
    struct event_error *err);

/*
 * A JSON pointer (RFC 6901, its tokens unescaped; none: the whole event)
 * into an event's text, and where its value is: ev->json[off..off+len),
 * len 0 when the event has no such member.
 */
struct event_ptr {
	const char *const *tokens;
	size_t ntokens;
	size_t off, len;
};

/*
 * event_parse_stamped(), finding the values of ptrs[0..n) in the same
 * pass when it can (cond.h's conditions, without a tree): *found 1 when
 * their off and len are set, 0 when the caller must look for them itself
 * (the text needed jansson: an escape, a byte >= 0x80...).
 */
int event_parse_stamped_ptrs(const void *buf, size_t len, struct event *ev,
    struct event_error *err, struct event_ptr *ptrs, size_t n, int *found);

/*
 * The time an event id was made (the router's clock when it stamped the
 * event: an id is a BSON ObjectId, whose first 4 bytes are that second),
 * in seconds since the epoch; -1 when id is not EVENT_ID_LEN hex digits.
 */
long long event_id_time(const char *id);

/* Release what *ev holds and zero it.  event_clear(NULL) is a no-op. */
void event_clear(struct event *ev);
/*
 * Take one more hold on ev's allocation, for another thread (ZeroMQ's, as
 * zmq_msg_init_data's hint), and return it; the strings stay valid until
 * it is given back with event_release() as well as ev is cleared.
 * Thread-safe (an atomic count).
 */
void *event_share(const struct event *ev);
void event_release(void *share);

/*
 * Format the REP error reply {"error": {"code": ..., "message": ...}} into a
 * new NUL-terminated string (caller frees).  *len gets its length.
 */
char *event_error_reply(const struct event_error *err, size_t *len);

/*
 * The same shape for any code: {"error":{"code":CODE,"message":MESSAGE}}
 * (used by HTTPInput for its own codes: "unauthorized", "not_found"...).
 * New NUL-terminated string (caller frees), *len its length.  Bytes of
 * message that are not UTF-8 are replaced by '?'.
 */
char *event_error_json(const char *code, const char *message, size_t *len);

/*
 * Set *err to code with a printf-style message; returns -1 so callers can
 * write `return event_fail(...)`.
 */
int event_fail(struct event_error *err, enum event_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Whether s[0..n) is UTF-8 text without NUL (libbson's validator): what a
 * TEXT column holds whole; other captured output is stored as bytes.
 */
int event_utf8_text(const char *s, size_t n);

/*
 * Remove insignificant white space from valid JSON text in place; returns
 * the new length.  The input must already have been validated.
 */
size_t event_json_compact(char *text, size_t len);

#endif
