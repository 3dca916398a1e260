/*
 * sub_reload: event-sub's SIGHUP (event-sub(8), SIGNALS): the handler
 * table and config.json read again, what applies now applied, what waits
 * for a restart named.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "out_zmq.h"
#include "sub_int.h"
#include "util.h"

/*
 * The handler table and config.json into *cfg, read from where event-sub
 * was started (s->start_dir, under -D), as at its start, so that their
 * relative paths mean the same; NULL with err[errsz] set.
 */
static struct match_table *
load(struct sub *s, struct cfg *cfg, char *err, size_t errsz)
{
	struct match_table *t;
	int moved = s->start_dir >= 0 && fchdir(s->start_dir) == 0;

	t = cfg_load_handlers(s->handlers_path, err, errsz);
	if (t != NULL && cfg_load(s->config_path, cfg, err, errsz) < 0) {
		match_table_free(t);
		t = NULL;
	}
	if (moved && chdir("/") != 0)
		log_warn("reload: cannot go back to /: %s", strerror(errno));
	return t;
}

void
sub_reload(struct sub *s)
{
	char err[1024];
	struct match_table *t;
	size_t old_entries, old_handlers;
	char uri[CFG_URI_MAX], changed[512];
	enum cfg_framing framing;
	struct cfg cfg;

	log_info("SIGHUP: reloading %s", s->handlers_path);
	if ((t = load(s, &cfg, err, sizeof(err))) == NULL) {
		log_error("reload failed, keeping the handlers in use: %s", err);
		return;
	}
	if (s->uri_from_config && s->amqp == NULL && out_zmq_subscriber(&cfg, NULL, uri,
	    sizeof(uri), &framing, err, sizeof(err)) == 0 &&
	    (strcmp(uri, s->uri) != 0 || framing != s->framing))
		log_warn("reload: subscriber.uri changed to %s; event-sub stays "
		    "on %s until it is restarted", uri, s->uri);
	s->cfg->max_concurrency = cfg.max_concurrency;
	s->cfg->queue_size = cfg.queue_size;
	s->cfg->shutdown_grace = cfg.shutdown_grace;
	if (cfg_sub_restart_changes(s->cfg, &cfg, changed,
	    sizeof(changed)) > 0)
		log_warn("reload: %s changed; applied when event-sub is "
		    "restarted", changed);
	cfg_free(&cfg);
	old_entries = s->tbl->t->nentries;
	old_handlers = s->tbl->t->nhandlers;
	/* a file emptied by mistake would otherwise pass without a word */
	if (t->nhandlers == 0 && old_handlers > 0)
		log_warn("reload: %s has no handlers; %zu handler%s removed, "
		    "no event runs any from now on", s->handlers_path,
		    old_handlers, PL(old_handlers));
	sub_fleet_reloaded(s, t);
	sub_tbl_unref(s->tbl);
	s->tbl = xcalloc(1, sizeof(*s->tbl));
	s->tbl->refs = 1;
	s->tbl->t = t;
	drivers_recycle(s->drv);
	log_info("reloaded: %zu pattern%s, %zu handler%s (before: %zu "
	    "pattern%s, %zu handler%s)", t->nentries, PL(t->nentries),
	    t->nhandlers, PL(t->nhandlers), old_entries, PL(old_entries),
	    old_handlers, PL(old_handlers));
}
