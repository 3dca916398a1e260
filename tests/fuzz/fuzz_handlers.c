/*
 * event-handlers.json (include/config.h, src/core/handlers.c and the
 * drivers' option parsers): cfg_load_handlers() on any file.  What must
 * hold: a refusal says "FILE:LINE:COLUMN: ..." (or "FILE: ..." when
 * unreadable) with the path given; a table counts its handlers right,
 * each handler has a driver, its text, a timeout > 0 and its place
 * "FILE:LINE:COLUMN"; matching any event against it calls at most every
 * handler once; match_table_free() releases everything (LeakSanitizer).
 */
#include "config.h"
#include "fuzz.h"
#include "match.h"

static void
count(const struct handler *h, void *arg)
{
	(void)h;
	(*(size_t *)arg)++;
}

/* Match the table against "ns:type" for each pattern's own text and a
 * few fixed ones. */
static void
check_matching(const struct match_table *t)
{
	static const char *const topics[][2] = { { "local", "test.x" },
	    { "openstack", "compute.instance.create.end" }, { "a", "" } };
	char ns[256], *colon;
	size_t n;

	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		n = 0;
		FUZZ_ASSERT(match_event(t, topics[i][0], topics[i][1], count,
		    &n) == n && n <= t->nhandlers, "matched %zu of %zu", n,
		    t->nhandlers);
	}
	for (size_t i = 0; i < t->nentries; i++) {
		snprintf(ns, sizeof(ns), "%s", t->entries[i].pattern);
		colon = strchr(ns, ':');
		if (colon != NULL)
			*colon = '\0';
		n = 0;
		FUZZ_ASSERT(match_event(t, ns, colon != NULL ? colon + 1 : ns,
		    count, &n) == n && n <= t->nhandlers, "matched %zu of %zu",
		    n, t->nhandlers);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct match_table *t;
	char err[1024], pre[600];
	const char *path;
	size_t total = 0;

	fuzz_quiet();
	path = fuzz_file("handlers", data, size);
	memset(err, 0, sizeof(err));
	t = cfg_load_handlers(path, err, sizeof(err));
	snprintf(pre, sizeof(pre), "%s:", path);
	if (t == NULL) {
		FUZZ_ASSERT(strncmp(err, pre, strlen(pre)) == 0, "the error "
		    "does not start with the file's name: %s", err);
		FUZZ_ASSERT(strlen(err) > strlen(pre) + 2, "an empty error: %s",
		    err);
		return 0;
	}
	for (size_t i = 0; i < t->nentries; i++) {
		const struct match_entry *e = &t->entries[i];
		FUZZ_ASSERT(e->pattern != NULL, "entry %zu without a pattern",
		    i);
		for (size_t j = 0; j < e->nhandlers; j++) {
			const struct handler *h = &e->handlers[j];
			FUZZ_ASSERT(h->handler != NULL && h->timeout > 0 &&
			    h->where != NULL &&
			    strncmp(h->where, pre, strlen(pre)) == 0,
			    "handler %zu of %s", j, e->pattern);
		}
		total += e->nhandlers;
	}
	FUZZ_ASSERT(total == t->nhandlers, "nhandlers %zu, counted %zu",
	    t->nhandlers, total);
	check_matching(t);
	match_table_free(t);
	return 0;
}
