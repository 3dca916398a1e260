/*
 * match: the handler table of event-handlers.json and glob matching.
 *
 * A pattern is matched with fnmatch(3) (no flags: '*' also matches '.' and
 * ':') against "namespace:event_type" when it contains ':', otherwise
 * against event_type alone, in any namespace.  Every matching entry's
 * handlers run, in file order.
 */
#ifndef ER_MATCH_H
#define ER_MATCH_H

#include <stddef.h>

enum handler_driver { DRIVER_SHELL = 0, DRIVER_PYFUNC };

/* How a shell handler receives the event (issue: input option). */
enum handler_input { INPUT_ARGV = 0, INPUT_STDIN, INPUT_BOTH };

struct handler {
	enum handler_driver driver;
	char *handler;		/* the handler string as written */
	char **argv;		/* shell: split command, NULL-terminated */
	int argc;
	double timeout;		/* seconds; default 60 */
	enum handler_input input;
	char **env;		/* extra "NAME=value" strings, NULL-terminated */
	char *cwd;		/* NULL: event-sub's own */
	int exclusive;		/* accepted, reserved */
	int set_user;		/* "user" given: drop to uid/gid/groups */
	int set_group;		/* "group" given (alone or with user) */
	unsigned uid, gid;	/* uid_t, gid_t */
	unsigned *groups;	/* supplementary groups of user */
	int ngroups;
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

const char *match_driver_name(enum handler_driver d);

#endif
