/*
 * Unit tests of bson_map: JSON to BSON type by type, the key rule, the
 * limits, the events and results documents.  Documents are compared as
 * MongoDB canonical Extended JSON, which names every type exactly
 * ({"$numberInt": "1"} is not {"$numberLong": "1"}).
 */
#include <bson/bson.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "bson_map.h"
#include "event.h"
#include "log.h"
#include "unit.h"

static char cj_buf[1 << 16];

/* Canonical Extended JSON of doc (static buffer). */
static const char *
cj(const bson_t *doc)
{
	char *s = bson_as_canonical_extended_json(doc, NULL);

	snprintf(cj_buf, sizeof(cj_buf), "%s", s ? s : "(null)");
	bson_free(s);
	return cj_buf;
}

/* {"v": <json>} mapped, as canonical Extended JSON. */
static const char *
value(const char *json)
{
	static char out[sizeof(cj_buf)];
	bson_t b = BSON_INITIALIZER;
	char why[256] = "";

	if (bson_map_append_json(&b, "v", json, strlen(json), 1, why,
	    sizeof(why)) != BM_OK)
		snprintf(out, sizeof(out), "error: %s", why);
	else
		snprintf(out, sizeof(out), "%s", cj(&b));
	bson_destroy(&b);
	return out;
}

static int
ingest(const char *json, struct event *ev)
{
	struct event_error err;

	return event_ingest(json, strlen(json), "local", 0, 1700000000.25, ev,
	    &err);
}

static enum bson_map_err
map_event(const char *json, bson_t *doc, char *why, size_t whysz)
{
	struct event ev;
	enum bson_map_err e;

	if (ingest(json, &ev) != 0)
		return (enum bson_map_err)-1;
	e = bson_map_event(&ev, doc, why, whysz);
	event_clear(&ev);
	return e;
}

static void
test_scalars(void)
{
	CHECK_STR(value("0"), "{ \"v\" : { \"$numberInt\" : \"0\" } }");
	CHECK_STR(value("2147483647"),
	    "{ \"v\" : { \"$numberInt\" : \"2147483647\" } }");
	CHECK_STR(value("-2147483648"),
	    "{ \"v\" : { \"$numberInt\" : \"-2147483648\" } }");
	CHECK_STR(value("2147483648"),
	    "{ \"v\" : { \"$numberLong\" : \"2147483648\" } }");
	CHECK_STR(value("-2147483649"),
	    "{ \"v\" : { \"$numberLong\" : \"-2147483649\" } }");
	CHECK_STR(value("9223372036854775807"),
	    "{ \"v\" : { \"$numberLong\" : \"9223372036854775807\" } }");
	CHECK_STR(value("-9223372036854775808"),
	    "{ \"v\" : { \"$numberLong\" : \"-9223372036854775808\" } }");
	/* a fraction or an exponent makes a double, even when integral */
	CHECK_STR(value("1.0"), "{ \"v\" : { \"$numberDouble\" : \"1.0\" } }");
	CHECK_STR(value("1e3"),
	    "{ \"v\" : { \"$numberDouble\" : \"1000.0\" } }");
	/* libbson prints doubles with 20 significant digits */
	CHECK_STR(value("0.1"),
	    "{ \"v\" : { \"$numberDouble\" : \"0.10000000000000000555\" } }");
	CHECK_STR(value("-0.0"),
	    "{ \"v\" : { \"$numberDouble\" : \"-0.0\" } }");
	CHECK_STR(value("1.7976931348623157e308"),
	    "{ \"v\" : { \"$numberDouble\" : \"1.7976931348623157081e+308\" } }");
	CHECK_STR(value("true"), "{ \"v\" : true }");
	CHECK_STR(value("false"), "{ \"v\" : false }");
	CHECK_STR(value("null"), "{ \"v\" : null }");
	CHECK_STR(value("\"\""), "{ \"v\" : \"\" }");
	CHECK_STR(value("\"caf\\u00e9 \\u2603 \\ud83d\\ude00\""),
	    "{ \"v\" : \"caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80\" }");
	/* not JSON */
	CHECK_CONTAINS(value("{"), "error: not JSON");
}

static void
test_nul_in_string(void)
{
	bson_t b = BSON_INITIALIZER;
	bson_iter_t it;
	uint32_t len = 0;
	const char *s;
	char why[64];

	CHECK(bson_map_append_json(&b, "v", "\"a\\u0000b\"", 10, 1, why,
	    sizeof(why)) == BM_OK);
	CHECK(bson_iter_init_find(&it, &b, "v") && BSON_ITER_HOLDS_UTF8(&it));
	s = bson_iter_utf8(&it, &len);
	CHECK(len == 3 && memcmp(s, "a\0b", 3) == 0);
	bson_destroy(&b);
}

static void
test_containers(void)
{
	CHECK_STR(value("[]"), "{ \"v\" : [  ] }");
	CHECK_STR(value("{}"), "{ \"v\" : {  } }");
	CHECK_STR(value("[1, \"x\", null, [true], {\"k\": 2.5}]"),
	    "{ \"v\" : [ { \"$numberInt\" : \"1\" }, \"x\", null, [ true ], "
	    "{ \"k\" : { \"$numberDouble\" : \"2.5\" } } ] }");
	/* members keep the order they were sent in */
	CHECK_STR(value("{\"z\": 1, \"a\": 2, \"m\": 3}"),
	    "{ \"v\" : { \"z\" : { \"$numberInt\" : \"1\" }, \"a\" : { "
	    "\"$numberInt\" : \"2\" }, \"m\" : { \"$numberInt\" : \"3\" } } }");
}

static void
test_keys(void)
{
	char *buf;
	const char *k = "plain";

	CHECK(bson_map_escape_key(k, 0, &buf) == k && buf == NULL);
	CHECK_STR(bson_map_escape_key("a.b", 0, &buf), "a%2Eb");
	free(buf);
	CHECK_STR(bson_map_escape_key("$set", 0, &buf), "%24set");
	free(buf);
	CHECK_STR(bson_map_escape_key("a$b", 0, &buf), "a$b");
	CHECK(buf == NULL);
	CHECK_STR(bson_map_escape_key("50%", 0, &buf), "50%25");
	free(buf);
	CHECK_STR(bson_map_escape_key("%2E", 0, &buf), "%252E");
	free(buf);
	CHECK_STR(bson_map_escape_key("$.%", 0, &buf), "%24%2E%25");
	free(buf);
	CHECK_STR(bson_map_escape_key("", 0, &buf), "");
	CHECK(buf == NULL);
	CHECK_STR(bson_map_escape_key("_id", 1, &buf), "%5Fid");
	free(buf);
	CHECK_STR(bson_map_escape_key("_id", 0, &buf), "_id");
	CHECK(buf == NULL);
	CHECK_STR(bson_map_escape_key("timestamp_raw", 1, &buf),
	    "%74imestamp_raw");
	free(buf);
	CHECK_STR(bson_map_escape_key("_idx", 1, &buf), "_idx");
	CHECK(buf == NULL);

	/* extended JSON is not interpreted: these stay documents */
	CHECK_STR(value("{\"$oid\": \"5f0c3b6f1c9d440000a1b2c3\"}"),
	    "{ \"v\" : { \"%24oid\" : \"5f0c3b6f1c9d440000a1b2c3\" } }");
	CHECK_STR(value("{\"$date\": 5}"),
	    "{ \"v\" : { \"%24date\" : { \"$numberInt\" : \"5\" } } }");
	CHECK_STR(value("{\"$numberLong\": \"1\"}"),
	    "{ \"v\" : { \"%24numberLong\" : \"1\" } }");
	CHECK_STR(value("[{\"a.b\": {\"$x.y\": 1}}]"),
	    "{ \"v\" : [ { \"a%2Eb\" : { \"%24x%2Ey\" : { \"$numberInt\" : "
	    "\"1\" } } } ] }");
}

static void
test_event(void)
{
	struct event ev;
	bson_t doc;
	bson_iter_t it;
	char why[256], expect[1024];
	const char *in = "{\"event_type\":\"disk.full\",\"namespace\":\"ops\","
	    "\"timestamp\":1700000000,\"payload\":{\"host\":\"db1\",\"pct\":"
	    "97.5,\"n\":3},\"parent_event\":null,\"_id\":7,\"a.b\":1}";

	CHECK(ingest(in, &ev) == 0);
	CHECK(bson_map_event(&ev, &doc, why, sizeof(why)) == BM_OK);
	snprintf(expect, sizeof(expect), "{ \"_id\" : { \"$oid\" : \"%s\" }, "
	    "\"namespace\" : \"ops\", \"event_type\" : \"disk.full\", "
	    "\"timestamp\" : { \"$date\" : { \"$numberLong\" : "
	    "\"1700000000000\" } }, \"timestamp_raw\" : { \"$numberInt\" : "
	    "\"1700000000\" }, \"payload\" : { \"host\" : \"db1\", \"pct\" : "
	    "{ \"$numberDouble\" : \"97.5\" }, \"n\" : { \"$numberInt\" : "
	    "\"3\" } }, \"parent_event\" : null, \"%%5Fid\" : { \"$numberInt\" "
	    ": \"7\" }, \"a%%2Eb\" : { \"$numberInt\" : \"1\" } }", ev.id);
	CHECK_STR(cj(&doc), expect);
	bson_destroy(&doc);
	event_clear(&ev);

	/* the router's own timestamp: a double, date rounded to the ms */
	CHECK(ingest("{\"event_type\":\"t\"}", &ev) == 0);
	CHECK(bson_map_event(&ev, &doc, why, sizeof(why)) == BM_OK);
	CHECK(bson_iter_init_find(&it, &doc, "timestamp") &&
	    BSON_ITER_HOLDS_DATE_TIME(&it) &&
	    bson_iter_date_time(&it) == 1700000000250LL);
	CHECK(bson_iter_init_find(&it, &doc, "timestamp_raw") &&
	    BSON_ITER_HOLDS_DOUBLE(&it) &&
	    bson_iter_double(&it) == 1700000000.25);
	CHECK(!bson_iter_init_find(&it, &doc, "id"));
	CHECK(bson_iter_init_find(&it, &doc, "namespace") &&
	    strcmp(bson_iter_utf8(&it, NULL), "local") == 0);
	bson_destroy(&doc);
	event_clear(&ev);

	/* a timestamp far outside the date range is clamped, raw kept */
	CHECK(map_event("{\"event_type\":\"t\",\"timestamp\":1e300}", &doc, why,
	    sizeof(why)) == BM_OK);
	CHECK(bson_iter_init_find(&it, &doc, "timestamp") &&
	    bson_iter_date_time(&it) == INT64_MAX);
	CHECK(bson_iter_init_find(&it, &doc, "timestamp_raw") &&
	    bson_iter_double(&it) == 1e300);
	bson_destroy(&doc);
	CHECK(map_event("{\"event_type\":\"t\",\"timestamp\":-1.5}", &doc, why,
	    sizeof(why)) == BM_OK);
	CHECK(bson_iter_init_find(&it, &doc, "timestamp") &&
	    bson_iter_date_time(&it) == -1500);
	bson_destroy(&doc);
	/* a big integer timestamp stays int64 */
	CHECK(map_event("{\"event_type\":\"t\",\"timestamp\":4102444800}", &doc,
	    why, sizeof(why)) == BM_OK);
	CHECK(bson_iter_init_find(&it, &doc, "timestamp_raw") &&
	    BSON_ITER_HOLDS_INT64(&it));
	bson_destroy(&doc);
	/* the reserved top-level name, sent by a client */
	CHECK(map_event("{\"event_type\":\"t\",\"timestamp_raw\":\"x\","
	    "\"payload\":{\"timestamp_raw\":1}}", &doc, why, sizeof(why)) ==
	    BM_OK);
	CHECK(bson_iter_init_find(&it, &doc, "%74imestamp_raw") &&
	    BSON_ITER_HOLDS_UTF8(&it));
	CHECK(bson_iter_init_find(&it, &doc, "timestamp_raw") &&
	    BSON_ITER_HOLDS_DOUBLE(&it));
	CHECK_CONTAINS(cj(&doc), "\"payload\" : { \"timestamp_raw\" :");
	bson_destroy(&doc);

	/* not an ObjectId / not a stamped event */
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.id, sizeof(ev.id), "nothex");
	ev.json = "{}";
	ev.json_len = 2;
	CHECK(bson_map_event(&ev, &doc, why, sizeof(why)) == BM_INVALID);
	snprintf(ev.id, sizeof(ev.id), "5f0c3b6f1c9d440000a1b2c3");
	CHECK(bson_map_event(&ev, &doc, why, sizeof(why)) == BM_INVALID);
	CHECK_CONTAINS(why, "not a stamped event");
}

/* An event whose payload is k nested arrays. */
static char *
nested(int k)
{
	size_t n = 64 + 2 * (size_t)k;
	char *s = malloc(n), *p = s;

	p += sprintf(p, "{\"event_type\":\"deep\",\"payload\":");
	for (int i = 0; i < k; i++)
		*p++ = '[';
	for (int i = 0; i < k; i++)
		*p++ = ']';
	sprintf(p, "}");
	return s;
}

static void
test_limits(void)
{
	bson_t doc;
	char why[256], *json;
	size_t big;

	/* the document is level 1, payload level 2: 99 arrays reach 100 */
	json = nested(BSON_MAP_MAX_DEPTH - 1);
	CHECK(map_event(json, &doc, why, sizeof(why)) == BM_OK);
	bson_destroy(&doc);
	free(json);
	json = nested(BSON_MAP_MAX_DEPTH);
	CHECK(map_event(json, &doc, why, sizeof(why)) == BM_TOO_DEEP);
	CHECK_CONTAINS(why, "nested deeper than 100 levels");
	free(json);
	json = nested(1000);
	CHECK(map_event(json, &doc, why, sizeof(why)) == BM_TOO_DEEP);
	free(json);

	/* 16 MiB: a payload string just under fits, one over does not */
	big = BSON_MAP_MAX_SIZE + 64;
	json = malloc(big + 64);
	memcpy(json, "{\"event_type\":\"big\",\"payload\":\"", 31);
	memset(json + 31, 'x', big);
	memcpy(json + 31 + big, "\"}", 3);
	CHECK(map_event(json, &doc, why, sizeof(why)) == BM_TOO_LARGE);
	CHECK_CONTAINS(why, "over MongoDB's limit of 16777216 bytes");
	/* _id, namespace, event_type, timestamps, key: well under 256 bytes */
	memcpy(json + 31 + BSON_MAP_MAX_SIZE - 256, "\"}", 3);
	CHECK(map_event(json, &doc, why, sizeof(why)) == BM_OK);
	CHECK(doc.len <= BSON_MAP_MAX_SIZE);
	bson_destroy(&doc);
	free(json);
}

static void
test_result(void)
{
	struct run_result r;
	bson_oid_t oid;
	bson_t doc;
	bson_iter_t it;
	char why[256], expect[2048], oids[25];

	memset(&r, 0, sizeof(r));
	bson_oid_init_from_string(&oid, "65f0c3b6f1c9d440000a1b2c");
	r.event_id = "5f0c3b6f1c9d440000a1b2c3";
	r.driver = "shell";
	r.handler = "echo hi";
	r.status = RUN_OK;
	r.has_exit_code = 1;
	r.exit_code = 0;
	r.started_at = 1700000000.1234;
	r.duration_ms = 1.5;
	r.out = "hi\n";
	r.out_len = 3;
	r.err = "";
	r.err_len = 0;
	CHECK(bson_map_result(&r, &oid, &doc, why, sizeof(why)) == BM_OK);
	bson_oid_to_string(&oid, oids);
	snprintf(expect, sizeof(expect), "{ \"_id\" : { \"$oid\" : \"%s\" }, "
	    "\"event_id\" : { \"$oid\" : \"5f0c3b6f1c9d440000a1b2c3\" }, "
	    "\"driver\" : \"shell\", \"handler\" : \"echo hi\", \"status\" : "
	    "\"ok\", \"exit_code\" : { \"$numberInt\" : \"0\" }, \"signal\" : "
	    "null, \"started_at\" : { \"$date\" : { \"$numberLong\" : "
	    "\"1700000000123\" } }, \"duration_ms\" : { \"$numberDouble\" : "
	    "\"1.5\" }, \"stdout\" : \"hi\\n\", \"stderr\" : \"\", \"error\" : "
	    "null, \"data\" : null, \"redelivered\" : false }", oids);
	CHECK_STR(cj(&doc), expect);
	bson_destroy(&doc);

	/* killed by a signal, bytes that are not UTF-8, pyfunc data */
	r.has_exit_code = 0;
	r.signal = 9;
	r.status = RUN_FAILED;
	r.out = "\xff\xfe";
	r.out_len = 2;
	r.err = NULL;
	r.data = "{\"a.b\": [1, 2.0]}";
	CHECK(bson_map_result(&r, &oid, &doc, why, sizeof(why)) == BM_OK);
	CHECK_CONTAINS(cj(&doc), "\"exit_code\" : null, \"signal\" : { "
	    "\"$numberInt\" : \"9\" }");
	CHECK_CONTAINS(cj(&doc), "\"stdout\" : { \"$binary\" : { \"base64\" : "
	    "\"//4=\", \"subType\" : \"00\" } }, \"stderr\" : null");
	CHECK_CONTAINS(cj(&doc), "\"data\" : { \"a%2Eb\" : [ { \"$numberInt\" "
	    ": \"1\" }, { \"$numberDouble\" : \"2.0\" } ] }");
	bson_destroy(&doc);

	/* data that is not JSON is kept as text; an odd event id too */
	r.data = "not json";
	r.event_id = "abc";
	r.error = "exec: not found";
	CHECK(bson_map_result(&r, &oid, &doc, why, sizeof(why)) == BM_OK);
	CHECK(bson_iter_init_find(&it, &doc, "data") &&
	    strcmp(bson_iter_utf8(&it, NULL), "not json") == 0);
	CHECK(bson_iter_init_find(&it, &doc, "event_id") &&
	    strcmp(bson_iter_utf8(&it, NULL), "abc") == 0);
	CHECK(bson_iter_init_find(&it, &doc, "error") &&
	    strcmp(bson_iter_utf8(&it, NULL), "exec: not found") == 0);
	bson_destroy(&doc);
}

/* An event document read back gives the stamped event: the same id,
 * members and values (bson_map_event_text()). */
static void
test_event_text(void)
{
	static const char *const sent[] = {
		"{\"event_type\":\"t\",\"namespace\":\"n\","
		    "\"timestamp\":1.5,\"payload\":{\"a.b\":[1,2.5,null,true],"
		    "\"$x\":\"caf\\u00e9\",\"50%\":{}},\"_id\":7,"
		    "\"big\":9223372036854775807,\"s\":\"a\\u0000b\"}",
		"{\"event_type\":\"t\",\"timestamp\":1700000000}",
		"{\"event_type\":\"t\",\"x\":1.50}",
	};
	char why[256];

	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		struct event ev, back;
		struct event_error err;
		json_t *a, *b;
		bson_t doc;
		size_t len = 0;
		char *text;

		CHECK(ingest(sent[i], &ev) == 0);
		CHECK(bson_map_event(&ev, &doc, why, sizeof(why)) == BM_OK);
		text = bson_map_event_text(&doc, &len);
		CHECK(text != NULL && len == strlen(text));
		CHECK(event_parse_stamped(text, len, &back, &err) == 0);
		CHECK_STR(back.id, ev.id);
		a = json_loadb(ev.json, ev.json_len, JSON_ALLOW_NUL, NULL);
		b = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
		CHECK(a != NULL && b != NULL && json_equal(a, b));
		CHECK(strncmp(text, "{\"id\":\"", 7) == 0);
		if (i == 2)	/* the same value, not the same bytes */
			CHECK_CONTAINS(text, "\"x\":1.5}");
		json_decref(a);
		json_decref(b);
		free(text);
		event_clear(&back);
		bson_destroy(&doc);
		event_clear(&ev);
	}
	/* not an events document: no ObjectId _id */
	{
		bson_t d = BSON_INITIALIZER;
		size_t len;

		BSON_APPEND_UTF8(&d, "_id", "x");
		CHECK(bson_map_event_text(&d, &len) == NULL);
		bson_destroy(&d);
	}
}

int
main(void)
{
	log_init("test_bson_map", LOG_LVL_ERROR);
	test_scalars();
	test_nul_in_string();
	test_containers();
	test_keys();
	test_event();
	test_limits();
	test_result();
	test_event_text();
	UNIT_END("test_bson_map");
}
