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

/* The metrics listener event-sub takes: its own, else the router's. */
static const char *
sub_metrics(const struct cfg *cfg)
{
	return cfg->sub_metrics_listen[0] != '\0' ? cfg->sub_metrics_listen :
	    cfg->metrics_listen;
}

int
cfg_sub_restart_changes(const struct cfg *was, const struct cfg *now,
    char *out, size_t outsz)
{
	const struct {
		const char *name;
		int differs;
	} set[] = {
		{ "subscriber.journal",
		    strcmp(was->sub_journal, now->sub_journal) != 0 },
		{ "subscriber.catch_up",
		    was->catch_up_max_age != now->catch_up_max_age ||
		    was->catch_up_max_count != now->catch_up_max_count },
		{ "subscriber.python_workers",
		    was->python_workers != now->python_workers },
		{ "subscriber.python_max_rss_mb",
		    was->python_max_rss_mb != now->python_max_rss_mb },
		/* the name the operator set, event-sub's or the router's */
		{ was->sub_metrics_listen[0] || now->sub_metrics_listen[0] ?
		    "subscriber.metrics" : "metrics",
		    strcmp(sub_metrics(was), sub_metrics(now)) != 0 },
		{ "subscriber.name", strcmp(was->sub_name, now->sub_name) != 0 },
		{ "subscriber.group",
		    strcmp(was->sub_group, now->sub_group) != 0 },
		{ "subscriber.exchange",
		    strcmp(was->sub_exchange, now->sub_exchange) != 0 },
		{ "subscriber.queue_type", was->sub_quorum != now->sub_quorum },
		{ "subscriber.ca_file",
		    strcmp(was->sub_ca_file, now->sub_ca_file) != 0 },
		{ "store.type", was->store.ops != now->store.ops },
		{ "user", strcmp(was->user, now->user) != 0 },
		{ "group", strcmp(was->group, now->group) != 0 },
	};
	size_t len = 0;
	int n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		if (!set[i].differs)
			continue;
		if (len < outsz)
			len += (size_t)snprintf(out + len, outsz - len, "%s%s",
			    n > 0 ? ", " : "", set[i].name);
		n++;
	}
	return n;
}

void
cfg_absolute_paths(struct cfg *cfg)
{
	char *p = util_abspath(cfg->log_dir);

	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", p);
	free(p);
}
