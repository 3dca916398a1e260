/*
 * config: a configuration's instances of plugins and what their parse
 * functions share.  See include/config.h.  config.json itself is read by
 * cfg_load.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "config.h"
#include "util.h"

void
cfg_plugin_free(struct cfg_plugin *p)
{
	if (p->conf != NULL) {
		if (p->free_conf != NULL)
			p->free_conf(p->conf);
		else
			free(p->conf);
	}
	memset(p, 0, sizeof(*p));
}

void
cfg_free(struct cfg *cfg)
{
	for (int i = 0; i < cfg->ninputs; i++)
		cfg_plugin_free(&cfg->inputs[i]);
	for (int i = 0; i < cfg->noutputs; i++)
		cfg_plugin_free(&cfg->outputs[i]);
	cfg_plugin_free(&cfg->store);
	cfg->ninputs = cfg->noutputs = 0;
}

int
cfg_plugin_parse(struct cfg_reader *r, const char *key,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p,
    int (*parse)(struct cfg_reader *, const struct cfg_node *,
    const struct cfg *, struct cfg_plugin *))
{
	int enter = section != NULL && key != NULL;

	if (enter)
		cfg_push(r, key);
	if (parse(r, section, cfg, p) != 0) {
		cfg_plugin_free(p);
		return -1;
	}
	if (enter)
		cfg_pop(r);
	return 0;
}

int
cfg_get_framing(struct cfg_reader *r, const struct cfg_node *obj,
    enum cfg_framing *out)
{
	char framing[16] = "";

	if (cfg_get_str(r, obj, "framing", framing, sizeof(framing)) != 0)
		return -1;
	if (framing[0] == '\0')
		return 0;
	if (strcmp(framing, "topic") == 0)
		*out = CFG_FRAMING_TOPIC;
	else if (strcmp(framing, "event") == 0)
		*out = CFG_FRAMING_EVENT;
	else
		return cfg_error(r, "framing", "unknown framing \"%s\" "
		    "(\"event\": one frame per event, the default; \"topic\": "
		    "the topic, then the event)", framing);
	return 0;
}

void
cfg_absolute_paths(struct cfg *cfg)
{
	char *p = util_abspath(cfg->log_dir);

	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", p);
	free(p);
}
