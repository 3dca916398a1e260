/*
 * Unit tests of event_scan, the event module's fast path: what it takes,
 * what it leaves to jansson, and a differential run over mutated events:
 * whatever the scan accepts, jansson (with the event module's flags) must
 * accept as an object with the same top-level members.
 */
#include <jansson.h>
#include <stdlib.h>

#include "event_scan.h"
#include "unit.h"

#define FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)

static int
scan(const char *text)
{
	struct evscan f;

	return event_scan(text, strlen(text), &f);
}

/* event_scan() of text without its last cut bytes. */
static int
scan_f(const char *text, size_t cut, struct evscan *f)
{
	return event_scan(text, strlen(text) - cut, f);
}

static void
test_accepts(void)
{
	const char *t = "{\"namespace\":\"ns\",\"event_type\":\"a.b\","
	    "\"timestamp\":12.5,\"p\":{\"event_type\":1,\"x\":[1,{\"x\":2}]}}";
	const char *s = " {\"id\":\"6b0c38c430bc8ec2c10fb6d0\",\"event_type\""
	    ":\"t\",\"timestamp\":-3}\n";
	struct evscan f;

	CHECK(event_scan(t, strlen(t), &f) == 1);
	CHECK(f.type_len == 3 && memcmp(f.type, "a.b", 3) == 0);
	CHECK(f.ns_len == 2 && memcmp(f.ns, "ns", 2) == 0);
	CHECK(f.has_ts && f.ts == 12.5);
	CHECK(!f.has_id && f.id == NULL);

	CHECK(event_scan(s, strlen(s), &f) == 1);
	CHECK(f.has_id && f.id_len == 24 && memcmp(f.id, "6b0c", 4) == 0);
	CHECK(f.ns == NULL && f.has_ts && f.ts == -3);

	CHECK(scan("{\"event_type\":\"a\",\"id\":null}") == 1);
	/* hops: an integer from 0 to EVENT_MAX_HOPS, else jansson decides
	 * (fuzz_event found a string hops taken for the id) */
	CHECK(event_scan("{\"event_type\":\"a\",\"hops\":7}", 27, &f) == 1 &&
	    f.hops == 7 && !f.has_id);
	CHECK(scan("{\"event_type\":\"t\",\"hops\":\"t\"}") == 0);
	CHECK(scan("{\"event_type\":\"t\",\"hops\":"
	    "\"6b0c38c430bc8ec2c10fb6d0\"}") == 0);
	CHECK(scan("{\"event_type\":\"t\",\"hops\":-1}") == 0);
	CHECK(scan("{\"event_type\":\"t\",\"hops\":1001}") == 0);
	CHECK(scan("{\"event_type\":\"t\",\"hops\":2.0}") == 0);
	CHECK(scan("{\"event_type\":\"t\",\"hops\":null}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"k\":\"a\\nb\\\"c\"}") == 1);
	CHECK(scan("{\"event_type\":\"a\",\"n\":-9223372036854775807}") == 1);
	CHECK(scan("{\"event_type\":\"a\",\"n\":1e308,\"m\":1e-400}") == 1);
	/* long escaped strings, and a number longer than the lexer's
	 * 64-byte copy for strtod() */
	{
		size_t n = 0, cap = 64 + 3 * 20000;
		char *big = malloc(cap);
		n += (size_t)sprintf(big, "{\"event_type\":\"a\",\"s\":\"");
		for (int i = 0; i < 10000; i++, n += 2)
			memcpy(big + n, "\\n", 2);
		n += (size_t)sprintf(big + n, "\",\"d\":0.");
		for (int i = 0; i < 9000; i++)
			big[n++] = '5';
		n += (size_t)sprintf(big + n, ",\"t\":\"x\\ty\"}");
		CHECK(event_scan(big, n, &f) == 1 && f.type_len == 1);
		free(big);
	}
	/* the same key in sibling objects is no duplicate */
	CHECK(scan("{\"event_type\":\"a\",\"p\":[{\"x\":1},{\"x\":2}]}") == 1);
}

static void
test_leaves_to_jansson(void)
{
	char deep[2 * EVSCAN_MAX_DEPTH + 64];

	/* invalid JSON of any kind */
	CHECK(scan("") == 0);
	CHECK(scan("{\"event_type\":\"a\"") == 0);
	CHECK(scan("{\"event_type\":\"a\"} x") == 0);
	/* a string after the value, or one that never ends */
	CHECK(scan("{\"event_type\":\"a\"}\"") == 0);
	CHECK(scan("{\"event_type\":\"a\"} \"}") == 0);
	CHECK(scan("{\"event_type\":\"a\"} \"trailing garbage") == 0);
	CHECK(scan("{\"event_type\":\"a\"}\"x\"") == 0);
	CHECK(scan("{\"event_type\":\"a\",}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"n\":01}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"n\":NaN}") == 0);
	CHECK(scan("{\"event_type\":\"a\"/*c*/}") == 0);
	CHECK(scan("{\"event_type\":\"a\t\"}") == 0);
	/* numbers out of range */
	CHECK(scan("{\"event_type\":\"a\",\"n\":9223372036854775808}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"n\":-1e999}") == 0);
	/* \v and \f are not JSON's white space (yajl took them) */
	CHECK(scan("{\"event_type\":\"a\"}\v") == 0);
	CHECK(scan("\f{\"event_type\":\"a\"}") == 0);
	/* not ASCII, \u escapes (lone surrogates, NUL) */
	CHECK(scan("{\"event_type\":\"caf\xc3\xa9\"}") == 0);
	CHECK(scan("{\"event_type\":\"\xc0\xaf\"}") == 0);
	CHECK(scan("{\"event_type\":\"\xed\xa0\x80\"}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"s\":\"\\ud800\"}") == 0);
	CHECK(scan("{\"event_type\":\"a\\u0000\"}") == 0);
	/* duplicates, at the top and below */
	CHECK(scan("{\"event_type\":\"a\",\"event_type\":\"a\"}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"p\":{\"x\":1,\"y\":{},\"x\":2}}")
	    == 0);
	CHECK(scan("{\"event_type\":\"a\",\"k\\/\":1}") == 0);
	/* not an event object, or members of the wrong type */
	CHECK(scan("[{\"event_type\":\"a\"}]") == 0);
	CHECK(scan("\"event_type\"") == 0);
	CHECK(scan("{\"p\":{\"event_type\":\"a\"}}") == 0);
	CHECK(scan("{\"event_type\":\"\"}") == 0);
	CHECK(scan("{\"event_type\":[\"a\"]}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"namespace\":\"\"}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"namespace\":{}}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"timestamp\":\"1\"}") == 0);
	CHECK(scan("{\"event_type\":\"a\",\"timestamp\":null}") == 0);
	CHECK(scan("{\"event_type\":\"a\\/b\"}") == 0);
	/* EVSCAN_MAX_DEPTH levels are taken, one more is not */
	for (int extra = 0; extra < 2; extra++) {
		size_t n = (size_t)sprintf(deep, "{\"event_type\":\"a\",\"p\":");
		for (int i = 1; i < EVSCAN_MAX_DEPTH + extra; i++)
			deep[n++] = '[';
		for (int i = 1; i < EVSCAN_MAX_DEPTH + extra; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		deep[n] = '\0';
		CHECK(scan(deep) == !extra);
	}
}

/* The grammar's corners (RFC 8259), each where jansson agrees. */
static void
test_lexer(void)
{
	static const char *const good[] = {
		"-0", "0", "-9223372036854775808", "9223372036854775807",
		"0.5", "-1.25e+3", "1E-2", "1e5", "true", "false", "null",
		"\"\"", "\"a b\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "[]", "{}",
		"[ 1 , [ ] , { } ]", "{ \"k\" : 1 , \"l\" : [ ] }", "\"\x7f\"",
	};
	static const char *const bad[] = {
		"-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1.e3",
		"9223372036854775808", "-9223372036854775809", "1e400",
		"tru", "truex", "nul", "nulll", "falsy", "1x", "\"a", "\"a\\x\"",
		"\"a\\\"", "\"\\u0041\"", "[1,]", "[,1]", "[1 2]", "{\"k\"}",
		"{\"k\":}", "{\"k\" 1}", "{\"k\":1,}", "{1:1}", "{\"k\":1", "[",
		"\"a\tb\"", "\"a\nb\"", "\"\x01\"",
	};
	char text[128];
	struct evscan f;
	int agree = 0;

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		int n = snprintf(text, sizeof(text), "{\"event_type\":\"a\","
		    "\"v\":%s}", good[i]);
		json_t *j = json_loadb(text, (size_t)n, FLAGS, NULL);
		int ok = event_scan(text, (size_t)n, &f);
		if (!ok || j == NULL)
			fprintf(stderr, "lexer: %s: scan %d, jansson %s\n",
			    good[i], ok, j != NULL ? "takes it" : "refuses it");
		agree += ok && j != NULL;
		json_decref(j);
	}
	CHECK(agree == (int)(sizeof(good) / sizeof(*good)));
	agree = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int n = snprintf(text, sizeof(text), "{\"event_type\":\"a\","
		    "\"v\":%s}", bad[i]);
		int ok = event_scan(text, (size_t)n, &f);
		if (ok)
			fprintf(stderr, "lexer: %s taken\n", bad[i]);
		agree += !ok;
	}
	CHECK(agree == (int)(sizeof(bad) / sizeof(*bad)));
	/* the values the members get */
	CHECK(scan_f("{\"event_type\":\"a\",\"hops\":-0}", 0, &f) == 1 &&
	    f.hops == 0);
	CHECK(scan("{\"event_type\":\"a\",\"timestamp\":-1.5e-1}") == 1);
	CHECK(scan_f("{\"event_type\":\"a\",\"timestamp\":-1.5e-1}", 0, &f)
	    == 1 && f.has_ts && f.ts == -0.15);
	/* white space anywhere, in a string too, is reported */
	CHECK(scan_f("{\"event_type\":\"a\"}", 0, &f) == 1 && !f.space);
	CHECK(scan_f("{\"event_type\":\"a b\"}", 0, &f) == 1 && f.space);
	CHECK(scan_f("{\"event_type\":\"a\"}\r\n", 0, &f) == 1 && f.space);
	CHECK(scan_f("{\"event_type\"\t:\"a\"}", 0, &f) == 1 && f.space);
	/* the text's end: nothing past len is read */
	CHECK(scan_f("{\"event_type\":\"a\"}}", 1, &f) == 1);
	CHECK(scan_f("{\"event_type\":\"a\",\"n\":12}", 1, &f) == 0);
	CHECK(scan_f("{\"event_type\":\"a\",\"n\":true}", 3, &f) == 0);
	CHECK(scan_f("{\"event_type\":\"a\",\"n\":\"x\"}", 2, &f) == 0);
}

static int
same(const char *p, size_t len, json_t *v)
{
	return json_is_string(v) && json_string_length(v) == len &&
	    memcmp(json_string_value(v), p, len) == 0;
}

/* What jansson says of a text the scan accepted. */
static int
jansson_agrees(const char *text, size_t len, const struct evscan *f)
{
	json_t *root = json_loadb(text, len, FLAGS, NULL), *ts;
	int ok;

	if (root == NULL)
		return 0;
	ts = json_object_get(root, "timestamp");
	ok = json_is_object(root) &&
	    same(f->type, f->type_len, json_object_get(root, "event_type")) &&
	    (f->ns == NULL ? json_object_get(root, "namespace") == NULL :
	    same(f->ns, f->ns_len, json_object_get(root, "namespace"))) &&
	    (f->has_ts ? json_is_number(ts) && json_number_value(ts) == f->ts :
	    ts == NULL) &&
	    f->has_id == (json_object_get(root, "id") != NULL);
	json_decref(root);
	return ok;
}

static char *
slurp(const char *name, size_t *len)
{
	char path[256], *buf = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "tests/fixtures/%s", name);
	fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	/* wrapped as an event: not every producer's body has event_type */
	buf = calloc(1, 1 << 20);
	*len = (size_t)sprintf(buf, "{\"event_type\":\"t\",\"payload\":");
	*len += fread(buf + *len, 1, (1 << 20) - 64, fp);
	buf[(*len)++] = '}';
	fclose(fp);
	return buf;
}

/*
 * Mutate a few bytes of real events (and a small one) many times: each
 * mutant the scan accepts must be one jansson accepts with the same
 * members.  Fixed seed: the same mutants on every run.
 */
static void
test_differential(void)
{
	static const char *const fixtures[] = {
		"openstack-compute.instance.create.end.json",
		"alertmanager-firing.json", "github-push.json",
	};
	static const char small[] = "{\"event_type\":\"a.b\",\"namespace\":"
	    "\"n\",\"timestamp\":1.5,\"id\":\"x\",\"p\":{\"k\":[1,-2.5e3,true,"
	    "null,\"s\\\\\\\"\"],\"j\":{}}}";
	static const char alphabet[] = "{}[]\":,\\/ \t\n\v\f0123456789-+.eE"
	    "tfnulaxu\x00\x7f\xc3\xa9\xed\xa0";
	unsigned int seed = 20261129;
	long accepted = 0, agreed = 0, jansson_ok = 0;

	for (int fi = 0; fi < 4; fi++) {
		size_t len;
		char *orig = fi < 3 ? slurp(fixtures[fi], &len) : NULL;
		int rounds = fi < 3 ? 3000 : 40000;

		if (fi == 3) {
			len = sizeof(small) - 1;
			orig = calloc(1, len + 8);
			memcpy(orig, small, len);
		}
		CHECK(orig != NULL);
		if (orig == NULL)
			continue;
		CHECK(event_scan(orig, len, &(struct evscan){ 0 }) == 1);
		for (int r = 0; r < rounds; r++) {
			char *m = malloc(len + 8);
			size_t mlen = len;
			struct evscan f;
			int edits = 1 + (int)(rand_r(&seed) % 3);

			memcpy(m, orig, len);
			for (int e = 0; e < edits && mlen > 0; e++) {
				size_t at = (size_t)rand_r(&seed) % mlen;
				char c = alphabet[rand_r(&seed) %
				    (sizeof(alphabet) - 1)];
				switch (rand_r(&seed) % 4) {
				case 0:
					m[at] = c;
					break;
				case 3:	/* append: trailing text */
					m[mlen++] = c;
					break;
				case 1:	/* delete */
					memmove(m + at, m + at + 1, mlen - at - 1);
					mlen--;
					break;
				default: /* insert */
					memmove(m + at + 1, m + at, mlen - at);
					m[at] = c;
					mlen++;
					break;
				}
			}
			json_t *j = json_loadb(m, mlen, FLAGS, NULL);

			if (j != NULL)
				jansson_ok++;
			json_decref(j);
			if (event_scan(m, mlen, &f)) {
				accepted++;
				if (jansson_agrees(m, mlen, &f))
					agreed++;
				else
					fprintf(stderr, "scan accepted what "
					    "jansson refuses or reads "
					    "otherwise: %.*s\n", (int)mlen, m);
			}
			free(m);
		}
		free(orig);
	}
	printf("differential: %ld mutants accepted by the scan, %ld by "
	    "jansson\n", accepted, jansson_ok);
	CHECK(accepted > 1000);		/* the run must test something */
	CHECK(agreed == accepted);
}

int
main(void)
{
	test_accepts();
	test_leaves_to_jansson();
	test_lexer();
	test_differential();
	UNIT_END("test_event_scan");
}
