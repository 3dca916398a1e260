/*
 * Event validation, the fast path against jansson (include/event.h,
 * src/core/event_scan.h).  For each input:
 *
 *  - the reference: jansson alone (json_loadb with event_json.h's flags)
 *    and the wire format's rules for the fields (event-reactor(7),
 *    "Events"), written here from the documentation, give accept or
 *    refuse and the code;
 *  - event_scan(), the fast path: when it accepts, jansson must too, and
 *    the members it reports (event_type, namespace, id, timestamp, hops) must
 *    be jansson's;
 *  - event_ingest(), what the router runs on every event: it must accept
 *    exactly what the reference accepts, refuse with the reference's code
 *    otherwise, and what it stamps must be the input plus "id" (and the
 *    namespace and timestamp when missing), as jansson reads both;
 *  - a refusal's reply ({"error": ...}) is JSON with the code, whatever
 *    bytes of the input its message quotes;
 *  - event_parse_stamped() (event-sub's reader, fast path first) on what
 *    event_ingest made: the same event back; and on the input itself: the
 *    reference's verdict for a stamped event.
 *
 * The harness includes jansson.h itself: it is the reference, test code
 * outside the module map (tests/integration/test_source_layout.py walks
 * src/ and include/ only).
 */
#include <jansson.h>

#include "event.h"
#include "event_json.h"
#include "event_scan.h"
#include "fuzz.h"

#define NOW 1500000000.25
#define DEFAULT_NS "fuzz"

/* The wire format's field rules on a parsed text (event-reactor(7)). */
static enum event_err
ref_fields(json_t *root)
{
	json_t *v;

	if (!json_is_object(root))
		return EV_NOT_AN_OBJECT;
	v = json_object_get(root, "event_type");
	if (v == NULL)
		return EV_MISSING_EVENT_TYPE;
	if (!json_is_string(v))
		return EV_INVALID_EVENT_TYPE;
	if (json_string_length(v) == 0)
		return EV_EMPTY_EVENT_TYPE;
	if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
		return EV_NUL_IN_FIELD;
	v = json_object_get(root, "namespace");
	if (v != NULL && (!json_is_string(v) || json_string_length(v) == 0))
		return EV_INVALID_NAMESPACE;
	if (v != NULL && memchr(json_string_value(v), '\0',
	    json_string_length(v)) != NULL)
		return EV_NUL_IN_FIELD;
	v = json_object_get(root, "timestamp");
	if (v != NULL && !json_is_number(v))
		return EV_INVALID_TIMESTAMP;
	v = json_object_get(root, "hops");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > EVENT_MAX_HOPS))
		return EV_INVALID_HOPS;
	return EV_OK;
}

/* Is s (NUL-terminated) the bytes p[len]? */
static int
same(const char *s, const char *p, size_t len)
{
	return strlen(s) == len && memcmp(s, p, len) == 0;
}

/* event_scan() accepted: jansson must agree on the members it gives. */
static void
check_scan(const struct evscan *f, json_t *root, enum event_err ref)
{
	json_t *v;

	FUZZ_ASSERT(root != NULL && ref == EV_OK, "event_scan accepts what "
	    "jansson refuses (code %s)", event_err_code(ref));
	v = json_object_get(root, "event_type");
	FUZZ_ASSERT(same(json_string_value(v), f->type, f->type_len),
	    "event_scan's event_type differs from jansson's");
	v = json_object_get(root, "namespace");
	FUZZ_ASSERT((v == NULL) == (f->ns == NULL), "namespace present "
	    "for one parser only");
	FUZZ_ASSERT(v == NULL || same(json_string_value(v), f->ns, f->ns_len),
	    "event_scan's namespace differs from jansson's");
	v = json_object_get(root, "id");
	FUZZ_ASSERT((v != NULL) == (f->has_id != 0), "id present for one "
	    "parser only");
	FUZZ_ASSERT(f->id == NULL || (json_is_string(v) &&
	    same(json_string_value(v), f->id, f->id_len)),
	    "event_scan's id differs from jansson's");
	v = json_object_get(root, "timestamp");
	FUZZ_ASSERT((v != NULL) == (f->has_ts != 0), "timestamp present for "
	    "one parser only");
	FUZZ_ASSERT(v == NULL || json_number_value(v) == f->ts,
	    "event_scan's timestamp %.17g, jansson's %.17g", f->ts,
	    json_number_value(v));
	v = json_object_get(root, "hops");
	FUZZ_ASSERT(f->hops == (v != NULL ? (int)json_integer_value(v) : 0),
	    "event_scan's hops %d, jansson's %lld", f->hops,
	    v != NULL ? (long long)json_integer_value(v) : 0LL);
}

/* What event_ingest() made of root: root with its stamp, as jansson
 * reads both. */
static void
check_stamped(const struct event *ev, json_t *root)
{
	json_t *out, *want, *v;
	json_error_t je;
	struct event back;
	struct event_error err;
	const char *ns;

	out = json_loadb(ev->json, ev->json_len, EV_JSON_FLAGS, &je);
	FUZZ_ASSERT(out != NULL, "the stamped event is not JSON: %s: %.200s",
	    je.text, ev->json);
	want = json_deep_copy(root);
	json_object_set_new(want, "id", json_string(ev->id));
	if (json_object_get(want, "namespace") == NULL)
		json_object_set_new(want, "namespace", json_string(DEFAULT_NS));
	if (json_object_get(want, "timestamp") == NULL)
		json_object_set_new(want, "timestamp", json_real(NOW));
	FUZZ_ASSERT(json_equal(out, want), "the stamped event is not the "
	    "input with id, namespace and timestamp: %.300s", ev->json);
	FUZZ_ASSERT(strlen(ev->id) == EVENT_ID_LEN, "id of %zu bytes",
	    strlen(ev->id));
	ns = json_string_value(json_object_get(want, "namespace"));
	FUZZ_ASSERT(strcmp(ev->namespace, ns) == 0, "namespace field");
	FUZZ_ASSERT(strcmp(ev->event_type, json_string_value(
	    json_object_get(want, "event_type"))) == 0, "event_type field");
	FUZZ_ASSERT(ev->topic_len == strlen(ns) + 1 + strlen(ev->event_type) &&
	    strlen(ev->topic) == ev->topic_len, "topic length");
	v = json_object_get(want, "timestamp");
	FUZZ_ASSERT(ev->timestamp == json_number_value(v), "timestamp field "
	    "%.17g, in the text %.17g", ev->timestamp, json_number_value(v));
	json_decref(out);
	json_decref(want);

	/* event-sub reads it back unchanged */
	FUZZ_ASSERT(event_parse_stamped(ev->json, ev->json_len, &back,
	    &err) == 0, "event_parse_stamped refuses event_ingest's output: "
	    "%s: %s", event_err_code(err.code), err.message);
	FUZZ_ASSERT(strcmp(back.id, ev->id) == 0 &&
	    strcmp(back.namespace, ev->namespace) == 0 &&
	    strcmp(back.event_type, ev->event_type) == 0 &&
	    strcmp(back.topic, ev->topic) == 0 &&
	    back.timestamp == ev->timestamp &&
	    back.json_len == ev->json_len &&
	    memcmp(back.json, ev->json, ev->json_len) == 0,
	    "event_parse_stamped gives another event back");
	event_clear(&back);
}

/* The router's reply to a refusal: {"error": {"code", "message"}}, JSON
 * whatever bytes of the input the message quotes. */
static void
check_reply(const struct event_error *err)
{
	json_error_t je;
	json_t *r, *e;
	size_t len;
	char *text;

	text = event_error_reply(err, &len);
	FUZZ_ASSERT(strlen(text) == len, "reply length");
	r = json_loadb(text, len, 0, &je);
	FUZZ_ASSERT(r != NULL, "the error reply is not JSON: %s: %.300s",
	    je.text, text);
	e = json_object_get(r, "error");
	FUZZ_ASSERT(json_is_string(json_object_get(e, "message")) &&
	    strcmp(json_string_value(json_object_get(e, "code")),
	    event_err_code(err->code)) == 0, "the error reply: %.300s", text);
	json_decref(r);
	free(text);
}

/* Is v a stamped event's id (24 lowercase hex digits)? */
static int
ref_id(json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != EVENT_ID_LEN)
		return 0;
	return strspn(s, "0123456789abcdef") == EVENT_ID_LEN;
}

/* event_parse_stamped() on the input: a stamped event or not. */
static void
check_parse_stamped(const uint8_t *data, size_t size, json_t *root,
    enum event_err ref)
{
	struct event ev;
	struct event_error err;
	int ok, want;

	want = ref == EV_OK && ref_id(json_object_get(root, "id")) &&
	    json_object_get(root, "namespace") != NULL &&
	    json_object_get(root, "timestamp") != NULL;
	ok = event_parse_stamped(data, size, &ev, &err) == 0;
	FUZZ_ASSERT(ok == want, "event_parse_stamped %s what the reference "
	    "%s", ok ? "accepts" : "refuses", want ? "accepts" : "refuses");
	if (!ok && ref != EV_OK)
		FUZZ_ASSERT(err.code == ref, "event_parse_stamped: %s, the "
		    "reference: %s", event_err_code(err.code),
		    event_err_code(ref));
	if (ok) {
		FUZZ_ASSERT(strcmp(ev.id, json_string_value(json_object_get(
		    root, "id"))) == 0, "stamped id");
		FUZZ_ASSERT(ev.timestamp == json_number_value(json_object_get(
		    root, "timestamp")), "stamped timestamp");
		event_clear(&ev);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *root;
	struct evscan f;
	struct event ev;
	struct event_error err, ref_err;
	enum event_err ref;
	int rc;

	root = json_loadb((const char *)data, size, EV_JSON_FLAGS, &je);
	if (root == NULL) {
		event_fail_decode(&ref_err, &je, (const char *)data, size);
		ref = ref_err.code;
	} else {
		ref = ref_fields(root);
	}

	if (event_scan((const char *)data, size, &f))
		check_scan(&f, root, ref);

	rc = event_ingest(data, size, DEFAULT_NS, 0, NOW, &ev, &err);
	FUZZ_ASSERT((rc == 0) == (ref == EV_OK), "event_ingest %s, the "
	    "reference says %s", rc == 0 ? "accepts" : event_err_code(err.code),
	    event_err_code(ref));
	if (rc != 0) {
		FUZZ_ASSERT(err.code == ref, "event_ingest: %s (%s), the "
		    "reference: %s", event_err_code(err.code), err.message,
		    event_err_code(ref));
		check_reply(&err);
	} else
		check_stamped(&ev, root);
	event_clear(&ev);

	check_parse_stamped(data, size, root, ref);
	json_decref(root);
	return 0;
}
