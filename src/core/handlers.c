/*
 * handlers: event-handlers.json into a match table (match.h).  See
 * cfg_load_handlers() in include/config.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "cond.h"
#include "guard.h"
#include "config.h"
#include "util.h"

/* "driver" and "handler": which driver runs what. */
static int
parse_target(struct cfg_reader *c, const struct cfg_node *o, struct handler *h)
{
	const struct cfg_node *v = cfg_member(o, "driver");
	const char *drv = cfg_string(v), *cmd;

	if (v == NULL)
		return cfg_error(c, NULL, "handler without \"driver\"");
	if (drv == NULL || (h->driver = driver_find(drv)) < 0)
		return cfg_error(c, "driver", "unknown driver \"%s\" (known: "
		    "%s)", drv != NULL ? drv : "", driver_known());
	v = cfg_member(o, "handler");
	if (v == NULL)
		return cfg_error(c, NULL, "handler entry without \"handler\"");
	cmd = cfg_string(v);
	if (cmd == NULL || cmd[0] == '\0')
		return cfg_error(c, "handler", "\"handler\" must be a "
		    "non-empty string");
	h->handler = xstrdup(cmd);
	return 0;
}

/* One handler: what every driver's have, then its driver's options. */
static int
parse_handler(struct cfg_reader *c, const struct cfg_node *o, struct handler *h,
    struct cond_ptrs *ptrs)
{
	char where[4096 + 32];

	if (cfg_want_object(c, o, "a handler") != 0)
		return -1;
	cfg_where(c, where, sizeof(where));
	h->where = xstrdup(where);
	h->timeout = 60;
	if (parse_target(c, o, h) != 0 ||
	    cfg_get_num(c, o, "timeout", 0.001, 31 * 86400.0,
	    &h->timeout) != 0 ||
	    cfg_get_bool(c, o, "exclusive", &h->exclusive) != 0)
		return -1;
	h->skipped = xcalloc(1, sizeof(*h->skipped));
	if (cfg_member(o, "when") != NULL &&
	    (h->when = cond_compile(c, cfg_member(o, "when"), ptrs)) == NULL)
		return -1;
	if (guard_parse(c, o, ptrs, &h->guard) != 0)
		return -1;
	return driver_parse(c, o, h);
}

static int
parse_entry(struct cfg_reader *c, const char *pat, const struct cfg_node *list,
    void *arg)
{
	struct match_table *t = arg;
	struct match_entry *e = &t->entries[t->nentries];

	if (pat[0] == '\0')
		return cfg_error(c, NULL, "a pattern must not be empty");
	if (!cfg_is_array(list))
		return cfg_error(c, NULL, "the handlers of \"%s\" must be an "
		    "array", pat);
	e->pattern = xstrdup(pat);
	e->with_namespace = strchr(pat, ':') != NULL;
	e->handlers = xcalloc(cfg_size(list) + 1, sizeof(*e->handlers));
	t->nentries++;
	for (size_t i = 0; i < cfg_size(list); i++) {
		cfg_push_idx(c, i);
		e->nhandlers = i + 1;
		if (parse_handler(c, cfg_array_get(list, i),
		    &e->handlers[i], t->ptrs) != 0)
			return -1;
		cfg_pop(c);
	}
	t->nhandlers += e->nhandlers;
	return 0;
}

struct match_table *
cfg_load_handlers(const char *path, char *err, size_t errsz)
{
	const struct cfg_node *root;
	struct cfg_reader *c;
	struct match_table *t;

	c = cfg_reader_open(path, CFG_FILE_MAX, err, errsz, &root);
	if (c == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->ptrs = cond_ptrs_new();
	if (cfg_want_object(c, root, "event-handlers.json") != 0)
		goto fail;
	t->entries = xcalloc(cfg_size(root) + 1, sizeof(*t->entries));
	if (cfg_foreach(c, root, parse_entry, t) != 0)
		goto fail;
	cfg_reader_close(c);
	return t;
fail:
	cfg_reader_close(c);
	match_table_free(t);
	return NULL;
}
