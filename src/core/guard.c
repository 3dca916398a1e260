/* guard: a handler's rate and dedupe guards.  See guard.h. */
#include <math.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_reader.h"
#include "cond.h"
#include "guard.h"
#include "util.h"

/* A remembered dedupe value: in the tree, and in the list by age. */
struct seen {
	struct seen *next;
	double until;			/* monotonic s: repeats dropped until */
	char key[];
};

struct guard {
	int has_rate;
	double per_second, burst;
	double tokens, last;		/* the bucket; last: monotonic s */
	struct cond_key *key;		/* dedupe: NULL none */
	double window;
	char *pointer;			/* as written, for the error column */
	void *tree;			/* tsearch(3) of struct seen */
	struct seen *oldest, *newest;
	size_t nseen;
};

static int
seen_cmp(const void *a, const void *b)
{
	return strcmp(((const struct seen *)a)->key,
	    ((const struct seen *)b)->key);
}

/* Forget the oldest remembered value. */
static void
forget_oldest(struct guard *l)
{
	struct seen *s = l->oldest;

	tdelete(s, &l->tree, seen_cmp);
	l->oldest = s->next;
	if (l->oldest == NULL)
		l->newest = NULL;
	l->nseen--;
	free(s);
}

void
guard_free(struct guard *l)
{
	if (l == NULL)
		return;
	while (l->oldest != NULL)
		forget_oldest(l);
	cond_key_free(l->key);
	free(l->pointer);
	free(l);
}

static int
parse_rate(struct cfg_reader *r, const struct cfg_node *o, struct guard *l)
{
	static const char *const known[] = { "per_second", "burst", NULL };
	const struct cfg_node *v = cfg_member(o, "rate");

	if (v == NULL)
		return 0;
	cfg_push(r, "rate");
	if (cfg_want_object(r, v, "\"rate\"") != 0)
		return -1;
	if (cfg_member(v, "per_second") == NULL)
		return cfg_error(r, NULL, "\"rate\" without \"per_second\"");
	if (cfg_get_num(r, v, "per_second", 1e-9, 1e6, &l->per_second) != 0)
		return -1;
	l->burst = ceil(l->per_second) < 1 ? 1 : ceil(l->per_second);
	if (cfg_get_num(r, v, "burst", 1, 1e6, &l->burst) != 0)
		return -1;
	l->burst = floor(l->burst);
	cfg_warn_unknown(r, v, known, "rate");
	cfg_pop(r);
	l->has_rate = 1;
	l->tokens = l->burst;
	l->last = -1;
	return 0;
}

static int
parse_dedupe(struct cfg_reader *r, const struct cfg_node *o,
    struct cond_ptrs *ptrs, struct guard *l)
{
	static const char *const known[] = { "window", "key", NULL };
	const struct cfg_node *v = cfg_member(o, "dedupe");
	const char *p;

	if (v == NULL)
		return 0;
	cfg_push(r, "dedupe");
	if (cfg_want_object(r, v, "\"dedupe\"") != 0)
		return -1;
	if (cfg_member(v, "window") == NULL || cfg_member(v, "key") == NULL)
		return cfg_error(r, NULL, "\"dedupe\" needs \"window\" (seconds) "
		    "and \"key\" (a JSON pointer)");
	if (cfg_get_num(r, v, "window", 0.001, 31 * 86400.0, &l->window) != 0)
		return -1;
	p = cfg_string(cfg_member(v, "key"));
	if (p == NULL)
		return cfg_error(r, "key", "\"key\" must be a JSON pointer "
		    "string");
	cfg_push(r, "key");
	if ((l->key = cond_key_compile(r, p, ptrs)) == NULL)
		return -1;
	cfg_pop(r);
	l->pointer = xstrdup(p);
	cfg_warn_unknown(r, v, known, "dedupe");
	cfg_pop(r);
	return 0;
}

int
guard_parse(struct cfg_reader *r, const struct cfg_node *o,
    struct cond_ptrs *ptrs, struct guard **out)
{
	struct guard *l;

	*out = NULL;
	if (cfg_member(o, "rate") == NULL && cfg_member(o, "dedupe") == NULL)
		return 0;
	l = xcalloc(1, sizeof(*l));
	if (parse_rate(r, o, l) != 0 || parse_dedupe(r, o, ptrs, l) != 0) {
		guard_free(l);
		return -1;
	}
	*out = l;
	return 0;
}

/* The remembered value key, or NULL (forgetting what expired first). */
static struct seen *
recall(struct guard *l, const char *key, double now)
{
	struct seen *probe, **found;

	while (l->oldest != NULL && l->oldest->until <= now)
		forget_oldest(l);
	probe = xmalloc(sizeof(*probe) + strlen(key) + 1);
	strcpy(probe->key, key);
	found = tfind(probe, &l->tree, seen_cmp);
	free(probe);
	return found != NULL ? *found : NULL;
}

static void
remember(struct guard *l, const char *key, double now)
{
	struct seen *s = xmalloc(sizeof(*s) + strlen(key) + 1);

	if (l->nseen >= GUARD_DEDUPE_KEYS)
		forget_oldest(l);
	strcpy(s->key, key);
	s->until = now + l->window;
	s->next = NULL;
	if (tsearch(s, &l->tree, seen_cmp) == NULL)
		abort();
	if (l->newest != NULL)
		l->newest->next = s;
	else
		l->oldest = s;
	l->newest = s;
	l->nseen++;
}

enum run_status
guard_check(struct guard *l, struct cond_doc *d, double now, char *why,
    size_t whysz)
{
	char *key = l->key != NULL ? cond_key_text(l->key, d) : NULL;
	struct seen *s = key != NULL ? recall(l, key, now) : NULL;

	if (s != NULL) {
		snprintf(why, whysz, "a repeat of %s %s within its dedupe "
		    "window of %g s", l->pointer, key, l->window);
		free(key);
		return RUN_DEDUPLICATED;
	}
	if (l->has_rate) {
		if (l->last >= 0)
			l->tokens = fmin(l->burst, l->tokens +
			    (now - l->last) * l->per_second);
		l->last = now;
		if (l->tokens < 1) {
			snprintf(why, whysz, "over its rate of %g runs a second "
			    "(burst %g)", l->per_second, l->burst);
			free(key);
			return RUN_THROTTLED;
		}
		l->tokens -= 1;
	}
	if (key != NULL)
		remember(l, key, now);
	free(key);
	return RUN_OK;
}
