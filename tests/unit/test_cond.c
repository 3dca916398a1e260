/*
 * cond: "when" compiled from a real handlers file (cfg_load_handlers) and
 * matched against stamped events: pointers with escapes and array
 * indexes, every operator, exact numbers (64-bit integers, integers
 * against reals without rounding), missing members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cond.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "match.h"
#include "unit.h"

static char dir[] = "/tmp/er-test-cond-XXXXXX";

/* The conditions of the one handler of {"x": [{..., "when": WHEN}]}. */
static struct match_table *
load(const char *when, char *err, size_t errsz)
{
	char path[256], text[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/h.json", dir);
	snprintf(text, sizeof(text), "{\"x\": [{\"driver\": \"shell\", "
	    "\"handler\": \"true\", \"when\": %s}]}", when);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return cfg_load_handlers(path, err, errsz);
}

/*
 * 1 when WHEN holds for the event text ev; -1 when WHEN is refused, -2
 * when the two ways of reading the event disagree: the values found in
 * the parse's pass (cond_parse_event(), as event-sub) and one tree.
 */
static int
holds(const char *when, const char *ev)
{
	char err[1024];
	struct match_table *t = load(when, err, sizeof(err));
	const struct cond_set *c;
	struct cond_doc *d;
	struct event e;
	struct event_error ee;
	int rc, rc2;

	if (t == NULL)
		return -1;
	c = t->entries[0].handlers[0].when;
	d = cond_doc_parse(ev, strlen(ev));
	rc = cond_match(c, d);
	cond_doc_free(d);
	if (cond_parse_event(t->ptrs, ev, strlen(ev), &e, &ee, &d) != 0)
		rc2 = -3;
	else
		rc2 = cond_match(c, d);
	cond_doc_free(d);
	event_clear(&e);
	match_table_free(t);
	return rc == rc2 ? rc : -2;
}

/* The error loading WHEN gives, after "FILE:L:C: ". */
static const char *
refusal(const char *when)
{
	static char err[1024];
	struct match_table *t = load(when, err, sizeof(err));
	const char *p = err;

	if (t != NULL) {
		match_table_free(t);
		return "(accepted)";
	}
	for (int i = 0; i < 3 && p != NULL; i++)	/* FILE:L:C: */
		p = strchr(p + (i > 0), ':');
	return p != NULL ? p + 2 : err;
}

static const char ev[] = "{\"id\": \"0123456789abcdef01234567\", "
    "\"namespace\": \"hooks\", \"event_type\": \"alert\", \"timestamp\": 2, "
    "\"payload\": {\"severity\": \"critical\", \"n\": 9007199254740993, "
    "\"r\": 0.5, \"big\": 9223372036854775807, \"neg\": -3, "
    "\"a/b\": 1, \"t~x\": 2, \"list\": [10, 20, {\"k\": \"v\"}], "
    "\"ref\": \"refs/heads/release/2.1\", \"none\": null, \"one\": 1}}";

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 2;
	log_init("test_cond", LOG_LVL_ERROR);

	/* literals and eq / ne / in */
	CHECK(holds("{\"/payload/severity\": \"critical\"}", ev) == 1);
	CHECK(holds("{\"/payload/severity\": \"warning\"}", ev) == 0);
	CHECK(holds("{\"/payload/severity\": {\"ne\": \"warning\"}}", ev) == 1);
	CHECK(holds("{\"/payload/severity\": {\"in\": [\"a\", \"critical\"]}}",
	    ev) == 1);
	CHECK(holds("{\"/payload/severity\": {\"in\": []}}", ev) == 0);
	CHECK(holds("{\"/payload/none\": null}", ev) == 1);
	CHECK(holds("{\"/payload/list/2\": {\"k\": {\"eq\": \"v\"}}}", ev) == -1);
	CHECK(holds("{\"/payload/list/2\": {\"eq\": {\"k\": \"v\"}}}", ev) == 1);
	CHECK(holds("{\"/payload/list\": {\"eq\": [10.0, 20, {\"k\": \"v\"}]}}",
	    ev) == 1);
	/* all conditions, all operators of one */
	CHECK(holds("{\"/payload/severity\": \"critical\", \"/namespace\": "
	    "\"hooks\"}", ev) == 1);
	CHECK(holds("{\"/payload/severity\": \"critical\", \"/namespace\": "
	    "\"other\"}", ev) == 0);
	CHECK(holds("{\"/payload/neg\": {\"ge\": -5, \"lt\": 0}}", ev) == 1);
	CHECK(holds("{\"/payload/neg\": {\"ge\": -2, \"lt\": 0}}", ev) == 0);

	/* pointers: "" the whole event, ~1 and ~0, array indexes */
	CHECK(holds("{\"\": {\"exists\": true}}", ev) == 1);
	CHECK(holds("{\"/payload/a~1b\": 1}", ev) == 1);
	CHECK(holds("{\"/payload/t~0x\": 2}", ev) == 1);
	CHECK(holds("{\"/payload/list/1\": 20}", ev) == 1);
	CHECK(holds("{\"/payload/list/01\": {\"exists\": false}}", ev) == 1);
	CHECK(holds("{\"/payload/list/3\": {\"exists\": false}}", ev) == 1);
	CHECK(holds("{\"/payload/list/-\": {\"exists\": false}}", ev) == 1);
	CHECK(holds("{\"/payload/severity/x\": {\"exists\": false}}", ev) == 1);
	/* a missing member holds only exists: false */
	CHECK(holds("{\"/payload/nope\": {\"ne\": \"x\"}}", ev) == 0);
	CHECK(holds("{\"/payload/nope\": {\"exists\": false}}", ev) == 1);
	CHECK(holds("{\"/payload/severity\": {\"exists\": false}}", ev) == 0);

	/* regex: POSIX extended, strings only */
	CHECK(holds("{\"/payload/ref\": {\"regex\": "
	    "\"^refs/heads/(main|release/.*)$\"}}", ev) == 1);
	CHECK(holds("{\"/payload/ref\": {\"regex\": \"^refs/heads/main$\"}}",
	    ev) == 0);
	CHECK(holds("{\"/payload/one\": {\"regex\": \"1\"}}", ev) == 0);
	/* a \u0000 does not end the string for a regex: no allowlist bypass */
	CHECK(holds("{\"/payload/b\": {\"regex\": \"^[a-z]+$\"}}", "{\"id\": "
	    "\"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"b\": \"main\\u0000; rm -rf /\"}}") == 0);
	CHECK(holds("{\"/payload/b\": {\"regex\": \"^a$\"}}", "{\"id\": "
	    "\"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"b\": \"a\\u0000b\"}}") == 0);
	CHECK(holds("{\"/payload/b\": {\"regex\": \"^main\"}}", "{\"id\": "
	    "\"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"b\": \"main\\u0000x\"}}") == 1);
	/* bytes: '.' is one byte of a UTF-8 text */
	CHECK(holds("{\"/payload/b\": {\"regex\": \"^h..llo$\"}}", "{\"id\": "
	    "\"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"b\": \"h\u00e9llo\"}}") == 1);

	/* numbers, exactly: 2^53 + 1 is not 2^53 as a double would say */
	CHECK(holds("{\"/payload/n\": 9007199254740993}", ev) == 1);
	CHECK(holds("{\"/payload/n\": 9007199254740992}", ev) == 0);
	CHECK(holds("{\"/payload/n\": 9007199254740992.0}", ev) == 0);
	CHECK(holds("{\"/payload/n\": {\"gt\": 9007199254740992.0}}", ev) == 1);
	CHECK(holds("{\"/payload/big\": {\"lt\": 9223372036854775808.0}}",
	    ev) == 1);
	CHECK(holds("{\"/payload/big\": 9223372036854775807}", ev) == 1);
	CHECK(holds("{\"/payload/one\": 1.0}", ev) == 1);
	CHECK(holds("{\"/payload/r\": {\"gt\": 0, \"lt\": 1}}", ev) == 1);
	CHECK(holds("{\"/payload/neg\": {\"lt\": -2.5}}", ev) == 1);
	CHECK(holds("{\"/payload/neg\": {\"gt\": -3.5, \"lt\": -2.5}}", ev) == 1);
	CHECK(holds("{\"/payload/neg\": {\"le\": -3, \"ge\": -3.0}}", ev) == 1);
	CHECK(holds("{\"/payload/severity\": {\"lt\": 1}}", ev) == 0);

	/* an escape or a byte >= 0x80 sends the event to jansson: the same */
	CHECK(holds("{\"/payload/s\": \"a\\nb\"}", "{\"id\": "
	    "\"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"s\": \"a\\nb\"}}") == 1);
	CHECK(holds("{\"/payload/s\": \"caf\u00e9\"}", "{\"id\": "
	    "\"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"s\": \"caf\u00e9\", \"k\": [1, {\"x\": [true, false, "
	    "null]}]}}") == 1);
	CHECK(holds("{\"/payload/k/1/x/1\": false, \"/payload/k/1\": "
	    "{\"eq\": {\"x\": [true, false, null]}}, \"/payload/k/0\": 1.0}",
	    "{\"id\": \"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"k\": [1, {\"x\": [true, false, null]}], \"z\": -1.5e3}}") == 1);
	CHECK(holds("{\"/payload/z\": -1500, \"/timestamp\": 1}",
	    "{\"id\": \"0123456789abcdef01234567\", \"namespace\": \"n\", "
	    "\"event_type\": \"t\", \"timestamp\": 1, \"payload\": "
	    "{\"k\": [1, {\"x\": [true, false, null]}], \"z\": -1.5e3}}") == 1);

	/* not JSON: nothing holds */
	CHECK(cond_doc_parse("{", 1) == NULL);

	/* refused, with what is wrong */
	CHECK_STR(refusal("[1]"), "\"when\" must be an object of JSON "
	    "pointers and conditions");
	CHECK_STR(refusal("{\"payload\": 1}"), "bad JSON pointer \"payload\": "
	    "it must be empty or begin with \"/\" (RFC 6901)");
	CHECK_STR(refusal("{\"/a~2\": 1}"), "bad JSON pointer \"/a~2\": \"~\" "
	    "must be followed by 0 or 1 (RFC 6901)");
	CHECK_STR(refusal("{\"/a~\": 1}"), "bad JSON pointer \"/a~\": \"~\" "
	    "must be followed by 0 or 1 (RFC 6901)");
	CHECK_STR(refusal("{\"/a\": {\"like\": 1}}"), "unknown operator "
	    "\"like\" (eq, ne, in, regex, exists, lt, le, gt, ge; an object "
	    "literal is compared with {\"eq\": ...})");
	CHECK_STR(refusal("{\"/a\": {}}"), "no operator (eq, ne, in, regex, "
	    "exists, lt, le, gt, ge)");
	CHECK_STR(refusal("{\"/a\": {\"regex\": 5}}"), "\"regex\" needs a "
	    "string (a POSIX extended regular expression)");
	CHECK_STR(refusal("{\"/a\": {\"regex\": \"(\"}}"), "invalid regex "
	    "\"(\": Unmatched ( or \\(");
	CHECK_STR(refusal("{\"/a\": {\"lt\": \"1\"}}"), "\"lt\" needs a number");
	CHECK_STR(refusal("{\"/a\": {\"in\": 1}}"), "\"in\" needs an array of "
	    "values");
	CHECK_STR(refusal("{\"/a\": {\"exists\": 1}}"), "\"exists\" needs true "
	    "or false");

	{
		char p[256];
		snprintf(p, sizeof(p), "%s/h.json", dir);
		unlink(p);
		rmdir(dir);
	}
	UNIT_END("test_cond");
}
