/* match: handler table and glob matching.  See include/match.h. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "guard.h"
#include "match.h"
#include "util.h"

void
match_table_free(struct match_table *t)
{
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < t->nentries; i++) {
		struct match_entry *e = &t->entries[i];
		for (j = 0; j < e->nhandlers; j++) {
			struct handler *h = &e->handlers[j];
			free(h->handler);
			if (h->opts != NULL)
				(h->free_opts != NULL ? h->free_opts :
				    free)(h->opts);
			free(h->where);
			cond_free(h->when);
			guard_free(h->guard);
			free(h->skipped);
		}
		free(e->handlers);
		free(e->pattern);
	}
	free(t->entries);
	cond_ptrs_free(t->ptrs);
	free(t);
}

int
match_pattern(const char *pattern, const char *ns, const char *event_type)
{
	char stackbuf[512], *topic;
	size_t nl, tl;
	int rc;

	if (strchr(pattern, ':') == NULL)
		return fnmatch(pattern, event_type, 0) == 0;
	nl = strlen(ns);
	tl = strlen(event_type);
	topic = nl + tl + 2 <= sizeof(stackbuf) ? stackbuf : xmalloc(nl + tl + 2);
	memcpy(topic, ns, nl);
	topic[nl] = ':';
	memcpy(topic + nl + 1, event_type, tl + 1);
	rc = fnmatch(pattern, topic, 0) == 0;
	if (topic != stackbuf)
		free(topic);
	return rc;
}

size_t
match_event(const struct match_table *t, const char *ns, const char *event_type,
    void (*fn)(const struct handler *, void *), void *arg)
{
	size_t i, j, n = 0;

	if (t == NULL)
		return 0;
	for (i = 0; i < t->nentries; i++) {
		const struct match_entry *e = &t->entries[i];
		if (!match_pattern(e->pattern, ns, event_type))
			continue;
		for (j = 0; j < e->nhandlers; j++, n++)
			fn(&e->handlers[j], arg);
	}
	return n;
}
