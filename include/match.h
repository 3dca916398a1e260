/*
 * match: the handler table of event-handlers.json and glob matching.
 *
 * A pattern is matched with fnmatch(3) (no flags: '*' also matches '.' and
 * ':') against "namespace:event_type" when it contains ':', otherwise
 * against event_type alone, in any namespace.  Every matching entry's
 * handlers run, in file order, but those whose conditions ("when",
 * cond.h) do not hold for the event.
 */
#ifndef ER_MATCH_H
#define ER_MATCH_H

#include <stddef.h>

struct cond_set;
struct cond_ptrs;
struct guard;

/*
 * One handler of event-handlers.json.  What every driver's handlers have;
 * the driver's own options (a shell handler's command line, "input",
 * "env"...) are in opts, read by the driver (src/drivers/driver.h).
 */
struct handler {
	int driver;		/* its driver: driver_ops(driver) */
	char *handler;		/* the handler string as written */
	double timeout;		/* seconds; default 60 */
	int exclusive;		/* accepted, reserved */
	struct cond_set *when;	/* its conditions (cond.h), or NULL */
	struct guard *guard;	/* "rate", "dedupe" (guard.h), or NULL */
	unsigned long long *skipped;	/* events its conditions skipped */
	void *opts;		/* the driver's options, or NULL */
	void (*free_opts)(void *opts);	/* releases opts (NULL: free) */
	char *where;		/* "file:line:column" of the entry, for logs */
};

struct match_entry {
	char *pattern;
	int with_namespace;	/* pattern contains ':' */
	struct handler *handlers;
	size_t nhandlers;
};

struct match_table {
	struct match_entry *entries;
	size_t nentries;
	size_t nhandlers;	/* over all entries */
	struct cond_ptrs *ptrs;	/* the pointers of its conditions (cond.h) */
};

/* Release a table built by cfg_load_handlers().  NULL is a no-op. */
void match_table_free(struct match_table *t);

/*
 * Call fn(h, arg) for every handler whose pattern matches, in file order.
 * topic is "namespace:event_type".  Returns the number of handlers called.
 */
size_t match_event(const struct match_table *t, const char *ns,
    const char *event_type, void (*fn)(const struct handler *, void *),
    void *arg);

/* 1 when pattern (as in the file) matches namespace ns and type. */
int match_pattern(const char *pattern, const char *ns, const char *event_type);

#endif
