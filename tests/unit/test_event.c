/* Unit tests of the event module: every refusal code, stamping, splicing. */
#include <stdlib.h>

#include "client.h"
#include "event.h"
#include "unit.h"

static enum event_err
refuse(const char *text, size_t len, size_t max)
{
	struct event ev;
	struct event_error err;

	memset(&err, 0, sizeof(err));
	if (event_ingest(text, len, "local", max, 1000.5, &ev, &err) == 0) {
		event_clear(&ev);
		return EV_OK;
	}
	return err.code;
}

#define REFUSE(text, code) CHECK(refuse(text, sizeof(text) - 1, 0) == (code))

static void
test_refusals(void)
{
	struct event ev;
	struct event_error err;

	REFUSE("{\"event_type\": ", EV_INVALID_JSON);
	REFUSE("", EV_INVALID_JSON);
	REFUSE("{\"event_type\": \"a\"} x", EV_INVALID_JSON);
	REFUSE("{\"event_type\": \"a\"}\"", EV_INVALID_JSON);
	REFUSE("{\"event_type\": \"a\"} \"}", EV_INVALID_JSON);
	REFUSE("{\"event_type\": \"\xff\"}", EV_INVALID_UTF8);
	REFUSE("{\"event_type\": \"\xc3\x28\"}", EV_INVALID_UTF8);
	REFUSE("[]", EV_NOT_AN_OBJECT);
	REFUSE("\"x\"", EV_NOT_AN_OBJECT);
	REFUSE("3", EV_NOT_AN_OBJECT);
	REFUSE("null", EV_NOT_AN_OBJECT);
	/* hops: fuzz_event found the fast path taking a string "hops" for
	 * the id (its input is in tests/fuzz/corpus/event/hops-string) */
	REFUSE("{\"event_type\":\"t\",\"hops\":\"t\",\"hoppace\":\"n\"}",
	    EV_INVALID_HOPS);
	REFUSE("{\"event_type\":\"t\",\"hops\":-3}", EV_INVALID_HOPS);
	REFUSE("{\"event_type\":\"t\",\"hops\":1001}", EV_INVALID_HOPS);
	REFUSE("{\"event_type\":\"t\",\"hops\":1.0}", EV_INVALID_HOPS);
	REFUSE("{\"event_type\":\"t\",\"hops\":[1]}", EV_INVALID_HOPS);
	REFUSE("{\"event_type\":\"t\",\"hops\":1000}", EV_OK);
	REFUSE("{\"event_type\": \"a\", \"event_type\": \"b\"}", EV_DUPLICATE_KEY);
	REFUSE("{\"event_type\": \"a\", \"p\": {\"x\": 1, \"x\": 2}}",
	    EV_DUPLICATE_KEY);
	REFUSE("{\"event_type\": \"a\\u0000b\"}", EV_NUL_IN_FIELD);
	REFUSE("{\"event_type\": \"a\", \"namespace\": \"n\\u0000\"}",
	    EV_NUL_IN_FIELD);
	REFUSE("{\"payload\": {}}", EV_MISSING_EVENT_TYPE);
	REFUSE("{\"event_type\": \"\"}", EV_EMPTY_EVENT_TYPE);
	REFUSE("{\"event_type\": 3}", EV_INVALID_EVENT_TYPE);
	REFUSE("{\"event_type\": null}", EV_INVALID_EVENT_TYPE);
	REFUSE("{\"event_type\": \"a\", \"namespace\": 1}", EV_INVALID_NAMESPACE);
	REFUSE("{\"event_type\": \"a\", \"namespace\": \"\"}", EV_INVALID_NAMESPACE);
	REFUSE("{\"event_type\": \"a\", \"timestamp\": \"now\"}",
	    EV_INVALID_TIMESTAMP);
	REFUSE("{\"event_type\": \"a\", \"timestamp\": true}",
	    EV_INVALID_TIMESTAMP);
	REFUSE("{\"event_type\": \"a\", \"n\": 9223372036854775808}",
	    EV_INTEGER_OUT_OF_RANGE);
	REFUSE("{\"event_type\": \"a\", \"n\": -9223372036854775809}",
	    EV_INTEGER_OUT_OF_RANGE);
	REFUSE("{\"event_type\": \"a\", \"n\": NaN}", EV_NON_FINITE_NUMBER);
	REFUSE("{\"event_type\": \"a\", \"n\": Infinity}", EV_NON_FINITE_NUMBER);
	REFUSE("{\"event_type\": \"a\", \"n\": -Infinity}", EV_NON_FINITE_NUMBER);
	REFUSE("{\"event_type\": \"a\", \"n\": -NaN}", EV_NON_FINITE_NUMBER);
	REFUSE("{\"event_type\": \"a\", \"p\": {\"k\\u0000\": 1}}",
	    EV_NUL_IN_FIELD);
	REFUSE("{\"event_type\": \"a\", \"n\": 1e999}", EV_NON_FINITE_NUMBER);
	CHECK(refuse("{\"event_type\": \"a\"}", 19, 10) == EV_TOO_LARGE);
	CHECK(refuse("{\"event_type\": \"a\"}", 19, 19) == EV_OK);

	/* the message carries the position */
	CHECK(event_ingest("{\n \"event_type\" 1}", 18, "local", 0, 1, &ev,
	    &err) == -1);
	CHECK_CONTAINS(err.message, "line 2, column");
	CHECK_STR(event_err_code(EV_INVALID_JSON), "invalid_json");
	CHECK_STR(event_err_code(EV_MULTIPART), "multipart");

	/* NUL in the payload is fine; extreme but valid numbers too */
	REFUSE("{\"event_type\": \"a\", \"p\": \"x\\u0000y\"}", EV_OK);
	REFUSE("{\"event_type\": \"a\", \"n\": 9223372036854775807, "
	    "\"m\": -9223372036854775808, \"f\": 1.7976931348623157e308}", EV_OK);
}

static void
test_stamp(void)
{
	struct event ev;
	struct event_error err;
	const char *in = " {\"event_type\" : \"compute.up\",\n \"payload\": "
	    "{\"f\": 1.10, \"s\": \"a b\\n\"}} \n";

	CHECK(event_ingest(in, strlen(in), "local", 0, 1234.5, &ev, &err) == 0);
	CHECK(strlen(ev.id) == EVENT_ID_LEN);
	CHECK(strspn(ev.id, "0123456789abcdef") == EVENT_ID_LEN);
	CHECK_STR(ev.namespace, "local");
	CHECK_STR(ev.event_type, "compute.up");
	CHECK_STR(ev.topic, "local:compute.up");
	CHECK(ev.timestamp == 1234.5);
	CHECK(strncmp(ev.json, "{\"id\":\"", 7) == 0);
	CHECK_CONTAINS(ev.json, "\",\"namespace\":\"local\",\"timestamp\":"
	    "1234.500000,\"event_type\":\"compute.up\",\"payload\":{\"f\":1.10,"
	    "\"s\":\"a b\\n\"}}");
	CHECK(ev.json_len == strlen(ev.json));
	event_clear(&ev);

	/* a sent namespace and timestamp are kept, in place and as written */
	in = "{\"namespace\":\"ops\",\"event_type\":\"x\",\"timestamp\":1.5e9}";
	CHECK(event_ingest(in, strlen(in), "local", 0, 1, &ev, &err) == 0);
	CHECK_STR(ev.namespace, "ops");
	CHECK(ev.timestamp == 1.5e9);
	CHECK_CONTAINS(ev.json, "\",\"namespace\":\"ops\",\"event_type\":\"x\","
	    "\"timestamp\":1.5e9}");
	event_clear(&ev);

	/* a client id is replaced */
	in = "{\"id\":\"mine\",\"event_type\":\"x\",\"timestamp\":1}";
	CHECK(event_ingest(in, strlen(in), "local", 0, 1, &ev, &err) == 0);
	CHECK(strstr(ev.json, "mine") == NULL);
	CHECK_CONTAINS(ev.json, ev.id);
	event_clear(&ev);

	/* two ids differ and grow */
	{
		struct event a, b;
		in = "{\"event_type\":\"x\"}";
		CHECK(event_ingest(in, strlen(in), "l", 0, 1, &a, &err) == 0);
		CHECK(event_ingest(in, strlen(in), "l", 0, 1, &b, &err) == 0);
		CHECK(strcmp(a.id, b.id) < 0);
		event_clear(&a);
		event_clear(&b);
	}

	/* re-reading a stamped event keeps its bytes */
	in = "{\"event_type\":\"x\"}";
	CHECK(event_ingest(in, strlen(in), "local", 0, 7, &ev, &err) == 0);
	{
		struct event back;
		CHECK(event_parse_stamped(ev.json, ev.json_len, &back, &err) == 0);
		CHECK_STR(back.json, ev.json);
		CHECK_STR(back.id, ev.id);
		CHECK(back.timestamp == 7);
		event_clear(&back);
	}
	event_clear(&ev);
	CHECK(event_parse_stamped(in, strlen(in), &ev, &err) == -1);
	event_clear(NULL);
}

static void
test_request_reply(void)
{
	struct event_error err;
	size_t len;
	char *req, code[32], msg[128];

	req = client_request("a.b", "ns", " {\"k\" : [1, 2.50]}\n", 19,
	    &len, &err);
	CHECK_STR(req, "{\"event_type\":\"a.b\",\"namespace\":\"ns\","
	    "\"payload\":{\"k\":[1,2.50]}}");
	CHECK(len == strlen(req));
	free(req);
	CHECK(client_request("a", "n", "{\"k\": }", 8, &len, &err) == NULL);
	CHECK(err.code == EV_INVALID_JSON);
	CHECK_CONTAINS(err.message, "column 7");

	err.code = EV_TOO_LARGE;
	strcpy(err.message, "big \"one\"");
	req = event_error_reply(&err, &len);
	CHECK_STR(req, "{\"error\":{\"code\":\"too_large\",\"message\":"
	    "\"big \\\"one\\\"\"}}");
	CHECK(client_parse_reply(req, len, code, sizeof(code), msg,
	    sizeof(msg)) == 1);
	CHECK_STR(code, "too_large");
	CHECK_STR(msg, "big \"one\"");
	free(req);
	CHECK(client_parse_reply("{\"id\":\"x\"}", 10, code, sizeof(code), msg,
	    sizeof(msg)) == 0);
	CHECK(client_parse_reply("nope", 4, code, sizeof(code), msg,
	    sizeof(msg)) == -1);
}

int
main(void)
{
	test_refusals();
	test_stamp();
	test_request_reply();
	UNIT_END("test_event");
}
