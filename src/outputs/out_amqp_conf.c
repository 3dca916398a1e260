/*
 * out_amqp_conf: an amqp output's "config" (event-reactor.conf(5)).  See
 * out_amqp.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_link.h"
#include "cfg_fleet.h"
#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "config.h"
#include "out_amqp.h"
#include "store_backend.h"
#include "util.h"

int
out_amqp_parse(struct cfg_reader *r, const struct cfg_node *conf,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	static const char *const known[] = { "url", "ca_file", "exchange",
	    "spool", "spool_max", NULL };
	struct out_amqp_conf *c = xcalloc(1, sizeof(*c));

	(void)cfg;
	p->conf = c;
	snprintf(c->url, sizeof(c->url), "amqp://guest:guest@localhost:5672/");
	snprintf(c->exchange, sizeof(c->exchange), "%s",
	    CFG_DEFAULT_AMQP_EXCHANGE);
	snprintf(c->spool, sizeof(c->spool), "%s", CFG_DEFAULT_AMQP_SPOOL_PATH);
	c->spool_max = OUT_AMQP_SPOOL_MAX;
	if (conf != NULL) {
		if (cfg_want_object(r, conf, "\"config\"") != 0)
			return -1;
		cfg_warn_unknown(r, conf, known, "amqp output");
		if (cfg_get_str(r, conf, "url", c->url, sizeof(c->url)) != 0 ||
		    cfg_get_str(r, conf, "ca_file", c->ca_file,
		    sizeof(c->ca_file)) != 0 ||
		    cfg_get_str(r, conf, "exchange", c->exchange,
		    sizeof(c->exchange)) != 0 ||
		    store_get_path(r, conf, "spool", c->spool,
		    sizeof(c->spool)) != 0 ||
		    cfg_get_int(r, conf, "spool_max", 1, 1000000000LL,
		    &c->spool_max) != 0)
			return -1;
	}
	if (amqp_link_check(r, c->url, c->ca_file) != 0)
		return -1;
	if (!cfg_amqp_name_ok(c->exchange))
		return cfg_error(r, "exchange", "\"exchange\" must be a "
		    "non-empty name of letters, digits, -, _, . and : that "
		    "does not begin with amq. (reserved by AMQP)");
	if (conf == NULL)		/* the default, made absolute */
		store_get_path(r, NULL, "spool", c->spool, sizeof(c->spool));
	return 0;
}

void
out_amqp_free_conf(void *conf)
{
	if (conf == NULL)
		return;
	explicit_bzero(conf, sizeof(struct out_amqp_conf));	/* password */
	free(conf);
}
