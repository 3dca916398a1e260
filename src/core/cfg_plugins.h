/*
 * cfg_plugins: how the configuration readers (cfg_load.c, handlers.c)
 * reach the plugins' own readers, one set of functions per kind, each
 * defined by its kind's table: input.c, output.c, store_plugins.c,
 * driver.c.  A reader never names a plugin: adding one is its file and
 * its table entry.
 *
 * Inputs, outputs, the store: the kind's reader calls the plugin's own
 * parse (input.h, output.h, store_backend.h), which reads its section
 * through cfg_reader.h.  It fills *p: ops (the kind's table entry), conf
 * and free_conf; the caller sets p->at (and an input's p->ns: its
 * "namespace", "" when absent, the plugin's default then) before.  cfg:
 * the configuration read so far, read-only (a plugin looks at its
 * earlier instances).  r NULL: no file (cfg_defaults()); section NULL:
 * absent, the plugin's defaults.  An instance made with the reader at the
 * root (depth 0) is a default: its listeners have no position
 * (cfg_listen()).  Each returns 0; -1 with the reader's error set and
 * nothing left in *p; or 1, *p untouched, when no plugin of the kind has
 * that name.
 */
#ifndef ER_CFG_PLUGINS_H
#define ER_CFG_PLUGINS_H

struct cfg;
struct cfg_node;
struct cfg_plugin;
struct cfg_reader;
struct handler;

/* ---- inputs (src/inputs/input.c) ---- */

/*
 * An input: name is a feeder's "handler" (feeds.feeders[i]) or the
 * top-level section that configures one ("aggregator"); the reader at that
 * entry; section its "config", entered before the plugin's parse.
 * Refuses more instances of a kind than it allows.
 */
int input_read(struct cfg_reader *r, const char *name,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p);
/* The feeder handlers, for errors: "ZMQInput, AMQPInput, HTTPInput". */
const char *input_known(void);

/* ---- outputs (src/outputs/output.c) ---- */

/*
 * An output: name is its "handler" (outputs[i]); the reader at that
 * entry; section its "config", entered before the plugin's parse.
 */
int output_read(struct cfg_reader *r, const char *name,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p);
/* The output handlers, for errors: "zeromq". */
const char *output_known(void);

/* ---- the store (src/stores/store_plugins.c) ---- */

/*
 * The store: name is store.type; section the "store" object, the reader
 * at it.  Every key of every store plugin is checked; one the store of
 * that type does not use is then ignored with a warning.
 */
int store_read(struct cfg_reader *r, const char *name,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p);
/* The store types, for errors: "sqlite, mongodb, none". */
const char *store_known(void);

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

/* ---- for the readers of inputs, outputs and the store (config.c) ---- */

/*
 * Call parse(r, section, cfg, p), the reader entered at section's key
 * (NULL, or section NULL: where it is) and left after; on failure release
 * p (cfg_plugin_free()).  Returns parse's 0 or -1.
 */
int cfg_plugin_parse(struct cfg_reader *r, const char *key,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p,
    int (*parse)(struct cfg_reader *, const struct cfg_node *,
    const struct cfg *, struct cfg_plugin *));

#endif
