/*
 * guard: "rate" and "dedupe" from a real handlers file, checked against
 * events at chosen monotonic times: the bucket, its default burst and its
 * refill; a repeat within the window and after it, an event without the
 * key, the 100000 values remembered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cond.h"
#include "config.h"
#include "event.h"
#include "guard.h"
#include "log.h"
#include "match.h"
#include "unit.h"

static char dir[] = "/tmp/er-test-guard-XXXXXX";

static struct match_table *
load(const char *keys)
{
	char path[256], text[1024], err[1024];
	struct match_table *t;
	FILE *f;

	snprintf(path, sizeof(path), "%s/h.json", dir);
	snprintf(text, sizeof(text), "{\"x\": [{\"driver\": \"shell\", "
	    "\"handler\": \"true\", %s}]}", keys);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	t = cfg_load_handlers(path, err, sizeof(err));
	if (t == NULL)
		fprintf(stderr, "%s\n", err);
	unlink(path);
	return t;
}

/* What the guard of t's handler says of an event of payload at now. */
static enum run_status
check(struct match_table *t, const char *payload, double now, char *why)
{
	char text[512];
	struct event ev;
	struct event_error ee;
	struct cond_doc *d;
	enum run_status st;

	snprintf(text, sizeof(text), "{\"id\": \"0123456789abcdef01234567\", "
	    "\"namespace\": \"n\", \"event_type\": \"x\", \"timestamp\": 1, "
	    "\"payload\": %s}", payload);
	if (cond_parse_event(t->ptrs, text, strlen(text), &ev, &ee, &d) != 0)
		return RUN_ERROR;
	st = guard_check(t->entries[0].handlers[0].guard, d, now, why, 512);
	cond_doc_free(d);
	event_clear(&ev);
	return st;
}

int
main(void)
{
	struct match_table *t;
	char why[512], key[64];
	int ok;

	if (mkdtemp(dir) == NULL)
		return 2;
	log_init("test_guard", LOG_LVL_ERROR);

	/* dedupe: once per value within the window, then again */
	t = load("\"dedupe\": {\"window\": 10, \"key\": \"/k\"}");
	CHECK(t != NULL && t->entries[0].handlers[0].guard != NULL);
	CHECK(check(t, "{}", 0, why) == RUN_OK);	/* (no /k at all) */
	CHECK(check(t, "{}", 0, why) == RUN_OK);
	match_table_free(t);
	t = load("\"dedupe\": {\"window\": 10, \"key\": \"/payload/k\"}");
	CHECK(check(t, "{\"k\": \"a\"}", 100, why) == RUN_OK);
	CHECK(check(t, "{\"k\": \"a\"}", 105, why) == RUN_DEDUPLICATED);
	CHECK_STR(why, "a repeat of /payload/k \"a\" within its dedupe window "
	    "of 10 s");
	CHECK(check(t, "{\"k\": \"b\"}", 105, why) == RUN_OK);
	CHECK(check(t, "{\"k\": {\"y\": 1, \"x\": 2}}", 106, why) == RUN_OK);
	CHECK(check(t, "{\"k\": {\"x\": 2, \"y\": 1}}", 107, why) ==
	    RUN_DEDUPLICATED);			/* the same value as JSON */
	CHECK(check(t, "{\"j\": \"a\"}", 107, why) == RUN_OK);  /* no key */
	CHECK(check(t, "{\"j\": \"a\"}", 107, why) == RUN_OK);
	CHECK(check(t, "{\"k\": \"a\"}", 110, why) == RUN_OK);	/* window over */
	CHECK(check(t, "{\"k\": \"a\"}", 119.9, why) == RUN_DEDUPLICATED);
	match_table_free(t);

	/* at most GUARD_DEDUPE_KEYS values: the oldest is forgotten first */
	t = load("\"dedupe\": {\"window\": 3600, \"key\": \"/payload/k\"}");
	ok = 1;
	for (int i = 0; i <= GUARD_DEDUPE_KEYS; i++) {
		snprintf(key, sizeof(key), "{\"k\": %d}", i);
		ok &= check(t, key, 1, why) == RUN_OK;
	}
	CHECK(ok);
	CHECK(check(t, "{\"k\": 0}", 2, why) == RUN_OK);	/* forgotten */
	CHECK(check(t, "{\"k\": 2}", 2, why) == RUN_DEDUPLICATED);
	match_table_free(t);

	/* rate: the burst, then one a 1/per_second */
	t = load("\"rate\": {\"per_second\": 2, \"burst\": 3}");
	CHECK(check(t, "{}", 50, why) == RUN_OK);
	CHECK(check(t, "{}", 50, why) == RUN_OK);
	CHECK(check(t, "{}", 50, why) == RUN_OK);
	CHECK(check(t, "{}", 50, why) == RUN_THROTTLED);
	CHECK_STR(why, "over its rate of 2 runs a second (burst 3)");
	CHECK(check(t, "{}", 50.5, why) == RUN_OK);
	CHECK(check(t, "{}", 50.5, why) == RUN_THROTTLED);
	CHECK(check(t, "{}", 60, why) == RUN_OK);	/* full again: 3 */
	CHECK(check(t, "{}", 60, why) == RUN_OK);
	CHECK(check(t, "{}", 60, why) == RUN_OK);
	CHECK(check(t, "{}", 60, why) == RUN_THROTTLED);
	match_table_free(t);
	/* the default burst: per_second rounded up, at least 1 */
	t = load("\"rate\": {\"per_second\": 2.5}");
	for (int i = 0; i < 3; i++)
		CHECK(check(t, "{}", 0, why) == RUN_OK);
	CHECK(check(t, "{}", 0, why) == RUN_THROTTLED);
	match_table_free(t);
	t = load("\"rate\": {\"per_second\": 0.01}");
	CHECK(check(t, "{}", 0, why) == RUN_OK);
	CHECK(check(t, "{}", 0, why) == RUN_THROTTLED);
	match_table_free(t);

	rmdir(dir);
	UNIT_END("test_guard");
}
