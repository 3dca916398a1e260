/*
 * The oslo envelope (src/inputs/in_amqp_oslo.h): oslo_event() on any AMQP
 * message body.  What must hold:
 *
 *  - a refusal has one of the documented codes; when the body is not
 *    JSON, the code jansson's error maps to (event_json.h);
 *  - a result is outlen bytes of one JSON object (the event module's
 *    flags: no duplicate key), holding only the documented members, each
 *    the notification's own (inside "oslo.message" when there is one);
 *    the timestamp a number: the notification's number, or its oslo
 *    string in seconds (kept as sent in "original_timestamp");
 *  - the router (event_ingest) takes the result exactly when the
 *    notification's event_type is a non-empty string without NUL.
 */
#include <jansson.h>

#include "event.h"
#include "event_json.h"
#include "fuzz.h"
#include "in_amqp_oslo.h"

static const char *const kept[] = { "event_type", "publisher_id",
    "priority", "message_id", "payload", NULL };

/* The notification inside root, or NULL when oslo_event must refuse. */
static json_t *
ref_note(json_t *root, json_t **inner)
{
	json_t *env;

	*inner = NULL;
	if (root == NULL || !json_is_object(root))
		return NULL;
	env = json_object_get(root, "oslo.message");
	if (env == NULL)
		return root;
	if (!json_is_string(env))
		return NULL;
	*inner = json_loadb(json_string_value(env), json_string_length(env),
	    EV_JSON_FLAGS, NULL);
	return *inner != NULL && json_is_object(*inner) ? *inner : NULL;
}

static void
check_event(json_t *note, const char *out, size_t outlen)
{
	json_error_t je;
	json_t *ev, *v, *ts;
	const char *key;
	struct event e;
	struct event_error err;
	int ok, want;

	FUZZ_ASSERT(strlen(out) == outlen, "outlen %zu, strlen %zu", outlen,
	    strlen(out));
	ev = json_loadb(out, outlen, EV_JSON_FLAGS, &je);
	FUZZ_ASSERT(ev != NULL && json_is_object(ev), "not a JSON object: "
	    "%s: %.300s", je.text, out);
	json_object_foreach(ev, key, v) {
		int known = strcmp(key, "timestamp") == 0 ||
		    strcmp(key, "original_timestamp") == 0;
		for (const char *const *k = kept; *k != NULL && !known; k++)
			known = strcmp(key, *k) == 0;
		FUZZ_ASSERT(known, "member \"%s\" is not documented", key);
	}
	for (const char *const *k = kept; *k != NULL; k++) {
		v = json_object_get(note, *k);
		FUZZ_ASSERT(v == NULL ? json_object_get(ev, *k) == NULL :
		    json_equal(v, json_object_get(ev, *k)), "\"%s\" is not the "
		    "notification's", *k);
	}
	v = json_object_get(note, "timestamp");
	ts = json_object_get(ev, "timestamp");
	FUZZ_ASSERT(ts == NULL || json_is_number(ts), "timestamp not a number");
	if (v == NULL || json_is_number(v)) {
		FUZZ_ASSERT(v == NULL ? ts == NULL : json_equal(v, ts),
		    "timestamp is not the notification's number");
		FUZZ_ASSERT(json_object_get(ev, "original_timestamp") == NULL,
		    "original_timestamp without a string timestamp");
	} else {
		FUZZ_ASSERT(json_equal(v, json_object_get(ev,
		    "original_timestamp")), "original_timestamp is not the "
		    "notification's timestamp");
	}

	/* the router's verdict */
	v = json_object_get(note, "event_type");
	want = json_is_string(v) && json_string_length(v) > 0 &&
	    strlen(json_string_value(v)) == json_string_length(v);
	ok = event_ingest(out, outlen, "openstack", 0, 1.5e9, &e, &err) == 0;
	FUZZ_ASSERT(ok == want, "the router %s oslo_event's result: %s: %.300s",
	    ok ? "accepts" : "refuses", ok ? "" : err.message, out);
	if (ok)
		FUZZ_ASSERT(ts == NULL || e.timestamp == json_number_value(ts),
		    "the router's timestamp %.17g, the text's %.17g",
		    e.timestamp, json_number_value(ts));
	event_clear(&e);
	json_decref(ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *root, *inner, *note;
	struct event_error err, ref;
	size_t outlen = 0;
	char *out;

	fuzz_quiet();
	root = json_loadb((const char *)data, size, EV_JSON_FLAGS, &je);
	note = ref_note(root, &inner);
	out = oslo_event(data, size, &outlen, &err);
	FUZZ_ASSERT((out != NULL) == (note != NULL), "oslo_event %s, the "
	    "reference %s", out != NULL ? "accepts" : "refuses",
	    note != NULL ? "accepts" : "refuses");
	if (out == NULL) {
		FUZZ_ASSERT(err.code == EV_INVALID_JSON ||
		    err.code == EV_INVALID_UTF8 || err.code == EV_NOT_AN_OBJECT ||
		    err.code == EV_INVALID_ENVELOPE ||
		    err.code == EV_DUPLICATE_KEY || err.code == EV_NUL_IN_FIELD ||
		    err.code == EV_INTEGER_OUT_OF_RANGE ||
		    err.code == EV_NON_FINITE_NUMBER, "undocumented code %s",
		    event_err_code(err.code));
		FUZZ_ASSERT(memchr(err.message, '\0', sizeof(err.message)) !=
		    NULL, "message not terminated");
		if (root == NULL) {
			event_fail_decode(&ref, &je, (const char *)data, size);
			FUZZ_ASSERT(err.code == ref.code, "code %s, jansson's %s",
			    event_err_code(err.code), event_err_code(ref.code));
		}
	} else {
		check_event(note, out, outlen);
		free(out);
	}
	json_decref(inner);
	json_decref(root);
	return 0;
}
