/* driver: the table of drivers, and every call through it.  See driver.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_plugins.h"
#include "driver.h"
#include "util.h"

/* The drivers, each in its own file: one line each here. */
static const struct driver_ops *const table[] = {
	&driver_shell,		/* runner.c */
	&driver_pyfunc,		/* pyhost.c */
};

#define NTABLE (sizeof(table) / sizeof(table[0]))
_Static_assert(NTABLE <= DRIVERS_MAX, "DRIVERS_MAX is too small");

struct drivers {
	const struct driver_env *env;
	void *d[NTABLE];	/* the instance of table[i] */
};

void
driver_result(struct run_result *r, const struct handler *h,
    const struct event *ev)
{
	memset(r, 0, sizeof(*r));
	r->event_id = ev->id;
	r->driver = driver_ops(h->driver)->name;
	r->handler = h->handler;
}

size_t
driver_handlers(const struct match_table *t, const struct driver_ops *ops,
    int (*want)(const struct handler *))
{
	size_t n = 0;

	for (size_t i = 0; i < t->nentries; i++) {
		for (size_t k = 0; k < t->entries[i].nhandlers; k++) {
			const struct handler *h = &t->entries[i].handlers[k];
			n += driver_ops(h->driver) == ops &&
			    (want == NULL || want(h));
		}
	}
	return n;
}

size_t
drivers_own_identity(const struct match_table *t)
{
	size_t n = 0;

	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->own_identity != NULL)
			n += driver_handlers(t, table[i],
			    table[i]->own_identity);
	return n;
}

const struct driver_ops *
driver_ops(int d)
{
	return d >= 0 && (size_t)d < NTABLE ? table[d] : NULL;
}

int
driver_find(const char *name)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (strcmp(table[i]->name, name) == 0)
			return (int)i;
	return -1;
}

const char *
driver_known(void)
{
	static char known[256];

	if (known[0] == '\0')
		for (size_t i = 0; i < NTABLE; i++)
			snprintf(known + strlen(known), sizeof(known) -
			    strlen(known), "%s%s", i > 0 ? ", " : "",
			    table[i]->name);
	return known;
}

int
driver_parse(struct cfg_reader *r, const struct cfg_node *o,
    struct handler *h)
{
	const struct driver_ops *ops = driver_ops(h->driver);

	return ops->parse != NULL ? ops->parse(r, o, h) : 0;
}

struct drivers *
drivers_new(const struct driver_env *env)
{
	struct drivers *ds = xcalloc(1, sizeof(*ds));

	ds->env = env;
	for (size_t i = 0; i < NTABLE; i++)
		ds->d[i] = table[i]->new(env);
	return ds;
}

void
drivers_free(struct drivers *ds)
{
	if (ds == NULL)
		return;
	for (size_t i = 0; i < NTABLE; i++)
		table[i]->free(ds->d[i]);
	free(ds);
}

int
drivers_room(struct drivers *ds, int d)
{
	return table[d]->room(ds->d[d]);
}

int
drivers_start(struct drivers *ds, const struct handler *h,
    const struct event *ev, void *tag)
{
	return table[h->driver]->start(ds->d[h->driver], h, ev, tag);
}

int
drivers_active(struct drivers *ds)
{
	int n = 0;

	for (size_t i = 0; i < NTABLE; i++)
		n += table[i]->active(ds->d[i]);
	return n;
}

void
drivers_stats(struct drivers *ds, struct driver_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (size_t i = 0; ds != NULL && i < NTABLE; i++)
		if (table[i]->stats != NULL)
			table[i]->stats(ds->d[i], st);
}

void
drivers_collect(struct drivers *ds)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->collect != NULL)
			table[i]->collect(ds->d[i]);
}

void
drivers_flush(struct drivers *ds)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->flush != NULL)
			table[i]->flush(ds->d[i]);
}

long
drivers_wait_ms(struct drivers *ds, long dflt)
{
	long best = dflt;

	for (size_t i = 0; i < NTABLE; i++) {
		long t;
		if (table[i]->wait_ms == NULL)
			continue;
		t = table[i]->wait_ms(ds->d[i], dflt);
		if (t >= 0 && (best < 0 || t < best))
			best = t;
	}
	return best;
}

int
drivers_reaped(struct drivers *ds, pid_t pid, int wstatus)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->reaped(ds->d[i], pid, wstatus))
			return 1;
	return 0;
}

int
drivers_owns(struct drivers *ds, pid_t pid)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->owns(ds->d[i], pid))
			return 1;
	return 0;
}

void
drivers_recycle(struct drivers *ds)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->recycle != NULL)
			table[i]->recycle(ds->d[i]);
}

void
drivers_kill(struct drivers *ds, const char *why)
{
	for (size_t i = 0; i < NTABLE; i++)
		table[i]->kill(ds->d[i], why);
}

void
drivers_check(const struct match_table *t)
{
	for (size_t i = 0; i < NTABLE; i++)
		if (table[i]->check != NULL)
			table[i]->check(t);
}

int
drivers_verify(const struct driver_env *env, const struct match_table *t)
{
	int bad = 0;

	for (size_t i = 0; i < NTABLE; i++) {
		int n;
		if (table[i]->verify == NULL)
			continue;
		if ((n = table[i]->verify(env, t)) < 0)
			return -1;
		bad += n;
	}
	return bad;
}
