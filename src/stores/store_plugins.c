/*
 * The stores: their table (one entry each, store_backend.h), the "store"
 * section read for the one store.type names, and each store's
 * process-wide setup and cleanup.  See include/store.h.
 */
#include <string.h>

#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "log.h"
#include "store.h"
#include "store_backend.h"

/*
 * The stores (store_backend.h): one entry each, found by store.type; in
 * the order errors name them ("known: sqlite, mongodb, none").
 */
extern const struct store_plugin store_sqlite_plugin, store_mongo_plugin;
static const struct store_plugin store_none_plugin = { .name = "none" };
static const struct store_plugin *const plugins[] = {
	&store_sqlite_plugin,
	&store_mongo_plugin,
	&store_none_plugin,
};
#define NPLUGINS (sizeof(plugins) / sizeof(plugins[0]))
/* Keys of the "store" section at most, every plugin's together. */
#define STORE_KEYS_MAX 32

const char *
store_type_name(const struct cfg *cfg)
{
	const struct store_plugin *pl = cfg->store.ops;

	return pl != NULL ? pl->name : "none";
}

const char *
store_known(void)
{
	static char known[256];

	if (known[0] == '\0')
		for (size_t i = 0; i < NPLUGINS; i++)
			cfg_list_add(known, sizeof(known), ", ",
			    plugins[i]->name);
	return known;
}

/* Does pl read key? */
static int
has_key(const struct store_plugin *pl, const char *key)
{
	for (const char *const *k = pl->keys; k != NULL && *k != NULL; k++)
		if (strcmp(*k, key) == 0)
			return 1;
	return 0;
}

/*
 * What section says to every store other than sel (NULL: none is): warn
 * about keys no store knows, check the values of the others' keys.
 */
static int
check_others(struct cfg_reader *r, const struct cfg_node *section,
    const struct store_plugin *sel)
{
	const char *known[STORE_KEYS_MAX + 2] = { "type" };
	size_t n = 1;

	for (size_t i = 0; i < NPLUGINS; i++)
		for (const char *const *k = plugins[i]->keys;
		    k != NULL && *k != NULL && n < STORE_KEYS_MAX + 1; k++)
			known[n++] = *k;
	known[n] = NULL;
	cfg_warn_unknown(r, section, known, "store");
	for (size_t i = 0; i < NPLUGINS; i++)
		if (plugins[i] != sel && plugins[i]->parse != NULL &&
		    plugins[i]->parse(r, section, NULL, NULL) != 0)
			return -1;
	return 0;
}

/* Warn about the keys of section that only the other stores read. */
static void
warn_foreign(struct cfg_reader *r, const struct cfg_node *section,
    const struct store_plugin *sel)
{
	for (size_t i = 0; i < NPLUGINS; i++) {
		const struct store_plugin *o = plugins[i];
		for (const char *const *k = o->keys; o != sel && k != NULL &&
		    *k != NULL; k++)
			if (cfg_member(section, *k) != NULL &&
			    !has_key(sel, *k))
				cfg_note(r, *k, LOG_LVL_WARNING, "\"%s\" "
				    "applies to the %s store only; ignored for "
				    "type \"%s\"", *k, o->name, sel->name);
	}
}

int
store_read(struct cfg_reader *r, const char *name,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p)
{
	const struct store_plugin *sel = NULL;

	for (size_t i = 0; i < NPLUGINS && sel == NULL; i++)
		if (strcmp(plugins[i]->name, name) == 0)
			sel = plugins[i];
	if (section != NULL && check_others(r, section, sel) != 0)
		return -1;
	if (sel == NULL)
		return 1;
	if (section != NULL)
		warn_foreign(r, section, sel);
	p->ops = sel;
	p->free_conf = sel->free_conf;
	if (sel->parse == NULL)
		return 0;
	return cfg_plugin_parse(r, NULL, section, cfg, p, sel->parse);
}

void
store_cleanup(void)
{
	for (size_t i = 0; i < NPLUGINS; i++)
		if (plugins[i]->cleanup != NULL)
			plugins[i]->cleanup();
}

void
store_process_init(char **argv)
{
	for (size_t i = 0; i < NPLUGINS; i++)
		if (plugins[i]->process_init != NULL)
			plugins[i]->process_init(argv);
}
