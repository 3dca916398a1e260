/*
 * Unit tests of AMQPInput's side of the wire texts: oslo.messaging
 * envelopes and plain notifications into event requests (in_amqp_oslo),
 * reply ids (client), error JSON (event).
 */
#include <stdlib.h>

#include "client.h"
#include "event.h"
#include "in_amqp_oslo.h"
#include "unit.h"
#include "util.h"

/* The fixture, as a string: tests/fixtures/openstack-...json. */
static char *
fixture(const char *name, size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "tests/fixtures/%s", name);
	return util_read_file(path, 0, len);
}

static void
test_envelope(void)
{
	struct event_error err;
	struct event ev;
	size_t len, elen;
	char *body = fixture("openstack-compute.instance.create.end.json", &len);
	char *req;

	CHECK(body != NULL);
	if (body == NULL)
		return;
	req = oslo_event(body, len, &elen, &err);
	CHECK(req != NULL);
	if (req == NULL)
		return;
	CHECK(strlen(req) == elen);
	/* timestamp first (seconds, microseconds), then the kept members
	 * in order, payload last; no namespace, no _context_* */
	CHECK_CONTAINS(req, "{\"timestamp\":1795169742.318274,"
	    "\"event_type\":\"compute.instance.create.end\","
	    "\"publisher_id\":\"compute.node-07\",\"priority\":\"INFO\","
	    "\"message_id\":\"5c1e7f0a-2b8d-4f63-9a51-0d3e6b2c9f14\","
	    "\"original_timestamp\":\"2026-11-20 10:15:42.318274\","
	    "\"payload\":{\"tenant_id\":");
	CHECK_CONTAINS(req, "\"display_name\":\"web-frontend-03\"");
	CHECK(strstr(req, "_context") == NULL);
	CHECK(strstr(req, "namespace") == NULL);
	CHECK(strstr(req, "oslo") == NULL);
	/* and the router takes it as it is, in the input's namespace */
	CHECK(event_ingest(req, elen, "openstack", 0, 1.0, &ev, &err) == 0);
	CHECK_STR(ev.namespace, "openstack");
	CHECK_STR(ev.event_type, "compute.instance.create.end");
	CHECK(ev.timestamp > 1795169742.318273 && ev.timestamp < 1795169742.318275);
	event_clear(&ev);
	free(req);
	free(body);
}

#define NOTE(text) oslo_event(text, sizeof(text) - 1, &len, &err)

/*
 * Strings in oslo's place that are no time: kept only as
 * original_timestamp.  A day the month does not have (2100 is no leap
 * year), signs where digits go, a leap second not at the end of a day, a
 * NUL, a year before 1970, another zone.
 */
static const char *const no_time[] = {
	"2026-04-31 00:00:00", "2100-02-29 00:00:00", "2026-01-01 -1:00:00",
	"2026-+1-+1 +1:+1:+1", "2026-01-01 10:20:60",
	"2026-01-01 00:00:00\\u0000x", "1969-12-31 23:59:59",
	"2026-11-20 10:15:42 PST",
};

/*
 * Strings that are times, and their seconds: the 29th of February of
 * leap years; microseconds, exact in a double until 2^33 s (March 2242);
 * the leap second at the end of 2016, the next day's first.
 */
static const struct {
	const char *text, *seconds;
} times[] = {
	{ "2000-02-29 00:00:00", "951782400.000000" },
	{ "2028-02-29 00:00:00", "1835395200.000000" },
	{ "2242-01-01 00:00:00.000001", "8583494400.000001" },
	{ "2016-12-31 23:59:60", "1483228800.000000" },
};

static void
test_plain_and_timestamps(void)
{
	struct event_error err;
	size_t len;
	char *r;

	/* a plain JSON notification (oslo 1.0 style, or any producer) */
	r = NOTE("{\"event_type\": \"port.create.end\", \"payload\": [1, 2],"
	    " \"extra\": 1, \"namespace\": \"other\"}");
	CHECK_STR(r, "{\"event_type\":\"port.create.end\",\"payload\":[1,2]}");
	free(r);
	/* ISO form with T and Z, no fraction */
	r = NOTE("{\"event_type\": \"a\", \"timestamp\": \"1970-01-02T00:00:01Z\"}");
	CHECK_STR(r, "{\"timestamp\":86401.000000,\"event_type\":\"a\","
	    "\"original_timestamp\":\"1970-01-02T00:00:01Z\"}");
	free(r);
	r = NOTE("{\"event_type\": \"a\", \"timestamp\": \"2026-11-20 "
	    "10:15:42+00:00\"}");
	CHECK_CONTAINS(r, "{\"timestamp\":1795169742.000000,");
	free(r);
	/* numbers are kept; anything else only as original_timestamp */
	r = NOTE("{\"event_type\": \"a\", \"timestamp\": 12.5}");
	CHECK_STR(r, "{\"event_type\":\"a\",\"timestamp\":12.5}");
	free(r);
	r = NOTE("{\"event_type\": \"a\", \"timestamp\": \"yesterday\"}");
	CHECK_STR(r, "{\"event_type\":\"a\",\"original_timestamp\":\"yesterday\"}");
	free(r);
	r = NOTE("{\"event_type\": \"a\", \"timestamp\": \"2026-13-20 10:15:42\"}");
	CHECK_STR(r, "{\"event_type\":\"a\",\"original_timestamp\":"
	    "\"2026-13-20 10:15:42\"}");
	free(r);
	/* a day the month does not have; the 29th of February of leap
	 * years only (2000 was one, 2100 is not) */
	r = NOTE("{\"event_type\": \"a\", \"timestamp\": \"2026-02-30 10:15:42\"}");
	CHECK_STR(r, "{\"event_type\":\"a\",\"original_timestamp\":"
	    "\"2026-02-30 10:15:42\"}");
	free(r);
	for (size_t i = 0; i < sizeof(no_time) / sizeof(no_time[0]); i++) {
		char text[160];
		snprintf(text, sizeof(text), "{\"event_type\": \"a\", "
		    "\"timestamp\": \"%s\"}", no_time[i]);
		r = oslo_event(text, strlen(text), &len, &err);
		if (r == NULL || strstr(r, "\"timestamp\":") != NULL)
			fprintf(stderr, "%s: taken for a time: %s\n", no_time[i],
			    r != NULL ? r : err.message);
		CHECK(r != NULL && strstr(r, "\"timestamp\":") == NULL);
		free(r);
	}
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char text[160], want[64];
		snprintf(text, sizeof(text), "{\"event_type\": \"a\", "
		    "\"timestamp\": \"%s\"}", times[i].text);
		snprintf(want, sizeof(want), "{\"timestamp\":%s,",
		    times[i].seconds);
		r = oslo_event(text, strlen(text), &len, &err);
		CHECK_CONTAINS(r, want);
		free(r);
	}
	/* an empty body (rabbitmq-c gives NULL for it) */
	r = oslo_event(NULL, 0, &len, &err);
	CHECK(r == NULL && err.code == EV_INVALID_JSON);
	CHECK_STR(err.message, "invalid JSON at line 1, column 1 (byte 0): "
	    "unexpected token near end of file");
	/* nothing is validated here: the router does that */
	r = NOTE("{\"payload\": {}}");
	CHECK_STR(r, "{\"payload\":{}}");
	free(r);
	r = NOTE("{}");
	CHECK_STR(r, "{}");
	free(r);
}

static void
test_refusals(void)
{
	struct event_error err;
	size_t len;

	CHECK(NOTE("{\"oslo.version\": \"2.0\", \"oslo.message\": 3}") == NULL);
	CHECK(err.code == EV_INVALID_ENVELOPE);
	CHECK_STR(event_err_code(err.code), "invalid_envelope");
	CHECK(NOTE("{\"oslo.message\": \"{\\\"event_type\\\": \"}") == NULL);
	CHECK(err.code == EV_INVALID_JSON);
	CHECK_CONTAINS(err.message, "in \"oslo.message\": invalid JSON at line 1,"
	    " column 15");
	CHECK(NOTE("{\"oslo.message\": \"[1]\"}") == NULL);
	CHECK(err.code == EV_NOT_AN_OBJECT);
	CHECK(NOTE("{\"event_type\": ") == NULL);
	CHECK(err.code == EV_INVALID_JSON);
	CHECK_CONTAINS(err.message, "line 1, column 15");
	CHECK(NOTE("[]") == NULL);
	CHECK(err.code == EV_NOT_AN_OBJECT);
	CHECK(NOTE("{\"event_type\": \"\xff\"}") == NULL);
	CHECK(err.code == EV_INVALID_UTF8);
	CHECK(NOTE("{\"event_type\": \"a\", \"a\": 1, \"a\": 2}") == NULL);
	CHECK(err.code == EV_DUPLICATE_KEY);
	CHECK(NOTE("{\"oslo.message\": \"{\\\"p\\\": 1e999}\"}") == NULL);
	CHECK(err.code == EV_NON_FINITE_NUMBER);
}

static void
test_reply_id_and_error_json(void)
{
	char id[EVENT_ID_LEN + 1];
	size_t len;
	char *s;

#define RID(s) client_reply_id(s, strlen(s), id)
	CHECK(RID("{\"id\":\"0123456789abcdef01234567\",\"x\":1}") == 0);
	CHECK_STR(id, "0123456789abcdef01234567");
	CHECK(RID("{\"x\":1,\"id\":\"0123456789abcdef01234567\"}") == 0);
	CHECK(RID("{\"id\":\"0123456789ABCDEF01234567\"}") == -1);
	CHECK(RID("{\"id\":\"0123456789abcdef0123456\"}") == -1);
	CHECK(RID("{\"error\":{\"code\":\"x\",\"message\":\"y\"}}") == -1);
	CHECK(RID("nope") == -1);

	s = event_error_json("not_found", "no \"such\" thing", &len);
	CHECK_STR(s, "{\"error\":{\"code\":\"not_found\",\"message\":"
	    "\"no \\\"such\\\" thing\"}}");
	CHECK(len == strlen(s));
	free(s);
	s = event_error_json("x", "bad \xff byte", &len);
	CHECK_STR(s, "{\"error\":{\"code\":\"x\",\"message\":\"bad ? byte\"}}");
	free(s);
}

int
main(void)
{
	test_envelope();
	test_plain_and_timestamps();
	test_refusals();
	test_reply_id_and_error_json();
	UNIT_END("test_notification");
}
