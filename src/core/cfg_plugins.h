/*
 * cfg_plugins: how the configuration readers (config.c, handlers.c) reach
 * the plugins' own readers, one set of functions per kind, each defined
 * by its kind's table.  A reader never names a plugin: adding one is its
 * file and its table entry.
 */
#ifndef ER_CFG_PLUGINS_H
#define ER_CFG_PLUGINS_H

struct cfg_node;
struct cfg_reader;
struct handler;

/* ---- drivers (src/drivers/driver.c) ---- */

/* The index of the driver named name ("shell"), -1 when none is. */
int driver_find(const char *name);
/* "shell, pyfunc": the drivers' names, for errors. */
const char *driver_known(void);
/*
 * Read the options of handler o (the reader at it) of h's driver (set,
 * with h->handler and h->timeout) into h->opts and h->free_opts, warning
 * about options unknown to it.  Returns 0, or -1 with the reader's error.
 */
int driver_parse(struct cfg_reader *r, const struct cfg_node *o,
    struct handler *h);

#endif
