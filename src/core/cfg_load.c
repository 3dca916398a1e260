/*
 * cfg_load: config.json.  See include/config.h.  The file is read through
 * cfg_reader (typed getters, FILE:LINE:COLUMN errors); each top-level
 * section has its parse function in parts[].  The sections of the
 * plugins (aggregator, feeds.feeders, outputs, store) are walked here and
 * each instance is read by its plugin, found by name in its kind's table
 * (cfg_plugins.h): no plugin is named here.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg_curve.h"
#include "cfg_fleet.h"
#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "config.h"
#include "endpoint.h"
#include "event.h"
#include "metrics_http.h"
#include "util.h"

/* A load: the configuration, and what the file said of the plugins. */
struct load {
	struct cfg *cfg;
	int aggregator;		/* "aggregator" with a "config" */
	int feeders;		/* feeds.feeders */
	int outputs;		/* an output enabled */
};

/* ---- instances ---- */

/* The next input of cfg, cleared (at -1), or an error when full. */
static struct cfg_plugin *
new_input(struct cfg_reader *r, struct cfg *cfg)
{
	struct cfg_plugin *p;

	if (cfg->ninputs == CFG_MAX_INPUTS) {
		cfg_error(r, NULL, "more than %d inputs", CFG_MAX_INPUTS);
		return NULL;
	}
	p = &cfg->inputs[cfg->ninputs];
	memset(p, 0, sizeof(*p));
	p->at = -1;
	return p;
}

/*
 * The default instances of what the file left out (ld; r NULL: no file),
 * the reader at the root: the aggregator, the outputs, one ZMQInput, the
 * store.
 */
static int
add_defaults(struct cfg_reader *r, struct cfg *cfg, const struct load *ld)
{
	struct cfg_plugin *p;

	if (!ld->aggregator) {
		if ((p = new_input(r, cfg)) == NULL ||
		    input_read(r, CFG_AGGREGATOR, NULL, cfg, p) != 0)
			return -1;
		cfg->ninputs++;
	}
	/* no output enabled: two, one frame per event, then topic framing */
	while (!ld->outputs && cfg->noutputs < 2) {
		p = &cfg->outputs[cfg->noutputs];
		memset(p, 0, sizeof(*p));
		p->at = -1;
		if (output_read(r, CFG_DEFAULT_OUTPUT, NULL, cfg, p) != 0)
			return -1;
		cfg->noutputs++;
	}
	if (!ld->feeders) {
		if ((p = new_input(r, cfg)) == NULL ||
		    input_read(r, CFG_DEFAULT_FEEDER, NULL, cfg, p) != 0)
			return -1;
		cfg->ninputs++;
	}
	if (cfg->store.ops == NULL)
		return store_read(r, CFG_DEFAULT_STORE, NULL, cfg, &cfg->store);
	return 0;
}

/* The core settings' defaults; no instance. */
static void
core_defaults(struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->level = LOG_LVL_INFO;
	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", CFG_DEFAULT_LOG_DIR);
	cfg->max_event_size = EVENT_MAX_SIZE_DEFAULT;
	cfg->publish_wait_ms = CFG_DEFAULT_PUBLISH_WAIT_MS;
	cfg->max_hops = CFG_DEFAULT_MAX_HOPS;
	cfg->max_concurrency = 16;
	cfg->queue_size = 10000;
	cfg->shutdown_grace = 30;
	cfg->catch_up_max_age = CFG_DEFAULT_CATCH_UP_AGE;
	cfg->catch_up_max_count = CFG_DEFAULT_CATCH_UP_COUNT;
	cfg->python_workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->python_workers < 1)
		cfg->python_workers = 1;
	cfg->python_max_rss_mb = 512;
	snprintf(cfg->sub_group, sizeof(cfg->sub_group), "%s",
	    CFG_DEFAULT_SUB_GROUP);
	snprintf(cfg->sub_exchange, sizeof(cfg->sub_exchange), "%s",
	    CFG_DEFAULT_AMQP_EXCHANGE);
	cfg->sub_quorum = 1;
}

void
cfg_defaults(struct cfg *cfg)
{
	const struct load none = { cfg, 0, 0, 0 };

	core_defaults(cfg);
	if (add_defaults(NULL, cfg, &none) != 0)
		abort();	/* the plugins' defaults are valid */
}

/* ---- the plugins' sections ---- */

static int
is_disabled(const struct cfg_node *o)
{
	return cfg_is_true(cfg_member(o, "disabled"));
}

/* "aggregator": {"config": ...}, the PULL input; none: the default. */
static int
parse_aggregator(struct cfg_reader *r, const struct cfg_node *v,
    struct load *ld)
{
	static const char *const known[] = { "config", NULL };
	const struct cfg_node *conf;
	struct cfg_plugin *p;

	if (cfg_want_object(r, v, "\"aggregator\"") != 0)
		return -1;
	cfg_warn_unknown(r, v, known, "aggregator");
	if ((conf = cfg_member(v, "config")) == NULL)
		return 0;
	if ((p = new_input(r, ld->cfg)) == NULL ||
	    input_read(r, CFG_AGGREGATOR, conf, ld->cfg, p) != 0)
		return -1;
	ld->cfg->ninputs++;
	ld->aggregator = 1;
	return 0;
}

/* outputs[i], the reader at it: one enabled output, or none. */
static int
parse_output(struct cfg_reader *r, const struct cfg_node *o, size_t i,
    struct cfg *cfg)
{
	struct cfg_plugin *p;
	const char *h;
	int rc;

	if (cfg_want_object(r, o, "an output") != 0)
		return -1;
	cfg_warn_unknown(r, o, (const char *const[]){ "handler", "config",
	    "disabled", NULL }, "output");
	h = cfg_string(cfg_member(o, "handler"));
	if (is_disabled(o))
		return 0;
	/* full, whatever this one says: no room to clear for it (an output
	 * without "handler" after CFG_MAX_OUTPUTS cleared the count) */
	if (cfg->noutputs == CFG_MAX_OUTPUTS)
		return cfg_error(r, NULL, "more than %d %s outputs",
		    CFG_MAX_OUTPUTS, h != NULL ? h : "enabled");
	p = &cfg->outputs[cfg->noutputs];
	memset(p, 0, sizeof(*p));
	p->at = (int)i;
	rc = h == NULL ? 1 : output_read(r, h, cfg_member(o, "config"), cfg,
	    p);
	if (rc == 1)
		return cfg_error(r, "handler", "unknown output handler \"%s\" "
		    "(known: %s)", h != NULL ? h : "", output_known());
	if (rc != 0)
		return -1;
	cfg->noutputs++;
	return 0;
}

/*
 * "outputs": [{"handler": ..., "config": {...}, "disabled": ...}, ...]:
 * up to CFG_MAX_OUTPUTS enabled ones; none enabled: the default outputs.
 */
static int
parse_outputs(struct cfg_reader *r, const struct cfg_node *outs,
    struct load *ld)
{
	if (!cfg_is_array(outs))
		return cfg_error(r, NULL, "\"outputs\" must be an array");
	for (size_t i = 0; i < cfg_size(outs); i++) {
		cfg_push_idx(r, i);
		if (parse_output(r, cfg_array_get(outs, i), i, ld->cfg) != 0)
			return -1;
		cfg_pop(r);
	}
	ld->outputs = ld->cfg->noutputs > 0;
	return 0;
}

/* feeds.feeders[i], the reader at it: {"handler", "namespace",
 * "disabled", "config"}. */
static int
parse_feeder(struct cfg_reader *r, const struct cfg_node *f, size_t i,
    struct cfg *cfg)
{
	struct cfg_plugin *p;
	const char *h;
	int rc;

	if (cfg_want_object(r, f, "a feeder") != 0)
		return -1;
	h = cfg_string(cfg_member(f, "handler"));
	if (is_disabled(f)) {
		log_debug("feeder %zu (%s) is disabled", i, h ? h : "?");
		return 0;
	}
	if ((p = new_input(r, cfg)) == NULL)
		return -1;
	p->at = (int)i;
	if (cfg_get_str(r, f, "namespace", p->ns, sizeof(p->ns)) != 0)
		return -1;
	/* the aggregator has a section of its own, it is no feeder */
	rc = h == NULL || strcmp(h, CFG_AGGREGATOR) == 0 ? 1 :
	    input_read(r, h, cfg_member(f, "config"), cfg, p);
	if (rc == 1)
		return cfg_error(r, "handler", "unknown feeder handler \"%s\" "
		    "(known: %s)", h != NULL ? h : "", input_known());
	if (rc != 0)
		return -1;
	cfg->ninputs++;
	return 0;
}

/* "feeds": {"feeders": [...]}; without "feeders": the default one. */
static int
parse_feeders(struct cfg_reader *r, const struct cfg_node *feeds,
    struct load *ld)
{
	const struct cfg_node *list;

	if (cfg_want_object(r, feeds, "\"feeds\"") != 0)
		return -1;
	cfg_warn_unknown(r, feeds, (const char *const[]){ "feeders",
	    "aggregator", NULL }, "feeds");
	if (cfg_member(feeds, "aggregator") != NULL)
		/* where the ancestor's feeder processes pushed their events */
		cfg_note(r, "aggregator", LOG_LVL_DEBUG, "\"aggregator\" "
		    "ignored: feeders run inside event-router");
	list = cfg_member(feeds, "feeders");
	if (list == NULL)
		return 0;
	cfg_push(r, "feeders");
	if (!cfg_is_array(list))
		return cfg_error(r, NULL, "\"feeders\" must be an array");
	ld->feeders = 1;
	for (size_t i = 0; i < cfg_size(list); i++) {
		cfg_push_idx(r, i);
		if (parse_feeder(r, cfg_array_get(list, i), i, ld->cfg) != 0)
			return -1;
		cfg_pop(r);
	}
	cfg_pop(r);
	return 0;
}

/* "store": {"type": ..., the keys of its type}. */
static int
parse_store(struct cfg_reader *r, const struct cfg_node *st, struct load *ld)
{
	char type[32] = CFG_DEFAULT_STORE;
	int rc;

	if (cfg_want_object(r, st, "\"store\"") != 0 ||
	    cfg_get_str(r, st, "type", type, sizeof(type)) != 0)
		return -1;
	rc = store_read(r, type, st, ld->cfg, &ld->cfg->store);
	if (rc == 1)
		return cfg_error(r, "type", "unknown store type \"%s\" (known: "
		    "%s)", type, store_known());
	return rc;
}

/* ---- the core sections ---- */

/* A member of "metrics" other than "listen": refused. */
static int
metrics_key(struct cfg_reader *r, const char *key, const struct cfg_node *v,
    void *arg)
{
	(void)v;
	(void)arg;
	if (strcmp(key, "listen") == 0)
		return 0;
	return cfg_error(r, NULL, "unknown metrics option \"%s\" (known: "
	    "listen)", key);
}

/*
 * "metrics": {"listen": "HOST:PORT"} (metrics_http.h), at the top or in
 * "subscriber", the reader at it, into out[CFG_URI_MAX].
 */
static int
parse_metrics_at(struct cfg_reader *r, const struct cfg_node *v, char *out)
{
	char host[CFG_URI_MAX], why[512], uri[CFG_URI_MAX + 16];
	int port;

	if (cfg_want_object(r, v, "\"metrics\"") != 0 ||
	    cfg_foreach(r, v, metrics_key, NULL) != 0 ||
	    cfg_get_str(r, v, "listen", out, CFG_URI_MAX) != 0)
		return -1;
	if (out[0] == '\0')
		return cfg_error(r, NULL, "\"metrics\" needs \"listen\": "
		    "\"HOST:PORT\" (\"127.0.0.1:9477\")");
	if (metrics_http_addr(out, host, sizeof(host), &port, why,
	    sizeof(why)) != 0)
		return cfg_error(r, "listen", "%s", why);
	snprintf(uri, sizeof(uri), "tcp://%s", out);
	cfg_listen(r, uri, "metrics", v);
	if (!metrics_http_loopback(host))
		cfg_note(r, "listen", LOG_LVL_WARNING, "metrics on %s beyond "
		    "loopback: anyone who can reach it reads /metrics (its "
		    "namespaces and handler names), without authentication",
		    host);
	return 0;
}

static int
parse_metrics(struct cfg_reader *r, const struct cfg_node *v,
    struct load *ld)
{
	return parse_metrics_at(r, v, ld->cfg->metrics_listen);
}

/* subscriber.journal and subscriber.catch_up. */
static int
parse_catch_up(struct cfg_reader *r, const struct cfg_node *s,
    struct cfg *cfg)
{
	static const char *const known[] = { "max_age", "max_count", NULL };
	const struct cfg_node *cu = cfg_member(s, "catch_up");
	struct stat sb;
	char *abs;

	if (cfg_get_str(r, s, "journal", cfg->sub_journal,
	    sizeof(cfg->sub_journal)) != 0)
		return -1;
	if (cfg->sub_journal[0] != '\0' && (util_names_dir(cfg->sub_journal) ||
	    (stat(cfg->sub_journal, &sb) == 0 && S_ISDIR(sb.st_mode)))) {
		size_t n = strlen(cfg->sub_journal);
		return cfg_error(r, "journal", "\"%s\" %s a directory; name "
		    "the journal file, such as \"%s%sevent-sub.journal\"",
		    cfg->sub_journal, util_names_dir(cfg->sub_journal) ?
		    "names" : "is", cfg->sub_journal,
		    cfg->sub_journal[n - 1] == '/' ? "" : "/");
	}
	if (cfg->sub_journal[0] != '\0') {
		abs = util_abspath(cfg->sub_journal);
		snprintf(cfg->sub_journal, sizeof(cfg->sub_journal), "%s", abs);
		free(abs);
	}
	if (cu == NULL)
		return 0;
	cfg_push(r, "catch_up");
	if (cfg_want_object(r, cu, "\"catch_up\"") != 0)
		return -1;
	cfg_warn_unknown(r, cu, known, "subscriber.catch_up");
	if (cfg_get_int(r, cu, "max_age", 0, 10LL * 366 * 86400,
	    &cfg->catch_up_max_age) != 0 ||
	    cfg_get_int(r, cu, "max_count", 0, 1000000000,
	    &cfg->catch_up_max_count) != 0)
		return -1;
	cfg_pop(r);
	return 0;
}

static int
parse_subscriber(struct cfg_reader *r, const struct cfg_node *s,
    struct load *ld)
{
	static const char *const known[] = { "uri", "framing",
	    "max_concurrency", "queue_size", "shutdown_grace",
	    "python_workers", "python_max_rss_mb", "journal", "catch_up",
	    "curve_key", "curve_server_key", "metrics", "name", "group",
	    "exchange", "queue_type", "ca_file", NULL };
	struct cfg *cfg = ld->cfg;
	long long mc = cfg->max_concurrency, qs = cfg->queue_size;
	long long pw = cfg->python_workers, rss = cfg->python_max_rss_mb;
	char why[CFG_URI_MAX + 128];

	if (cfg_want_object(r, s, "\"subscriber\"") != 0)
		return -1;
	cfg_warn_unknown(r, s, known, "subscriber");
	if (cfg_get_str(r, s, "uri", cfg->sub_uri, sizeof(cfg->sub_uri)) != 0 ||
	    cfg_get_framing(r, s, &cfg->sub_framing) != 0 ||
	    cfg_get_int(r, s, "max_concurrency", 1, 4096, &mc) != 0 ||
	    cfg_get_int(r, s, "queue_size", 1, 10000000, &qs) != 0 ||
	    cfg_get_num(r, s, "shutdown_grace", 0, 86400,
	    &cfg->shutdown_grace) != 0 ||
	    cfg_get_int(r, s, "python_workers", 1, 256, &pw) != 0 ||
	    cfg_get_int(r, s, "python_max_rss_mb", 16, 1 << 20, &rss) != 0 ||
	    parse_catch_up(r, s, cfg) != 0 ||
	    cfg_parse_sub_curve(r, s, cfg) != 0 ||
	    cfg_parse_sub_fleet(r, s, cfg) != 0)
		return -1;
	if (cfg_member(s, "uri") != NULL &&
	    endpoint_check(cfg->sub_uri, 0, why, sizeof(why)) != 0)
		return cfg_error(r, "uri", "%s", why);
	if (cfg_member(s, "metrics") != NULL) {
		cfg_push(r, "metrics");
		if (parse_metrics_at(r, cfg_member(s, "metrics"),
		    cfg->sub_metrics_listen) != 0)
			return -1;
		cfg_pop(r);
	}
	cfg->sub_framing_set = cfg_member(s, "framing") != NULL;
	cfg->python_workers = (int)pw;
	cfg->python_max_rss_mb = (long)rss;
	cfg->max_concurrency = (int)mc;
	cfg->queue_size = (int)qs;
	return 0;
}

static int
parse_logging(struct cfg_reader *c, const struct cfg_node *v, struct load *ld)
{
	struct cfg *cfg = ld->cfg;
	static const char *const known[] = { "loglevel", "dir", "format",
	    NULL };
	char lvl[32] = "";

	if (cfg_want_object(c, v, "\"logging\"") != 0 ||
	    cfg_get_str(c, v, "loglevel", lvl, sizeof(lvl)) != 0 ||
	    cfg_get_str(c, v, "dir", cfg->log_dir, sizeof(cfg->log_dir)) != 0)
		return -1;
	cfg_warn_unknown(c, v, known, "logging");
	if (cfg_member(v, "format") != NULL)
		/* the ancestor's Python logging format */
		cfg_note(c, "format", LOG_LVL_DEBUG, "\"format\" ignored: the "
		    "log format is fixed");
	if (lvl[0] == '\0')
		return 0;
	if (log_level_parse(lvl, &cfg->level) != 0)
		return cfg_error(c, "loglevel", "unknown log level \"%s\" "
		    "(DEBUG, INFO, WARNING, ERROR)", lvl);
	cfg->have_level = 1;
	return 0;
}

static int
parse_limits(struct cfg_reader *c, const struct cfg_node *v, struct load *ld)
{
	struct cfg *cfg = ld->cfg;
	static const char *const known[] = { "max_event_size",
	    "publish_wait_ms", "max_hops", NULL };
	long long m = (long long)cfg->max_event_size;
	long long w = cfg->publish_wait_ms, hops = cfg->max_hops;

	if (cfg_want_object(c, v, "\"limits\"") != 0 ||
	    cfg_get_int(c, v, "max_event_size", 64, 256LL * 1024 * 1024,
	    &m) != 0 ||
	    cfg_get_int(c, v, "publish_wait_ms", 0, 60000, &w) != 0 ||
	    cfg_get_int(c, v, "max_hops", 0, EVENT_MAX_HOPS, &hops) != 0)
		return -1;
	cfg_warn_unknown(c, v, known, "limits");
	cfg->max_event_size = (size_t)m;
	cfg->publish_wait_ms = (int)w;
	cfg->max_hops = (int)hops;
	return 0;
}

/*
 * "user" and "group": names that exist here (identity.h takes them when
 * a daemon starts as root).
 */
static int
parse_name(struct cfg_reader *c, const struct cfg_node *v, const char *what,
    char *out, size_t outsz)
{
	const char *s = cfg_string(v);

	if (s == NULL || s[0] == '\0' || strlen(s) >= outsz)
		return cfg_error(c, NULL, "\"%s\" must be a %s name: a "
		    "string of 1 to %zu bytes", what, what, outsz - 1);
	if (strcmp(what, "user") == 0 ? getpwnam(s) == NULL :
	    getgrnam(s) == NULL)
		return cfg_error(c, NULL, "unknown %s \"%s\"", what, s);
	snprintf(out, outsz, "%s", s);
	return 0;
}

static int
parse_user(struct cfg_reader *c, const struct cfg_node *v, struct load *ld)
{
	return parse_name(c, v, "user", ld->cfg->user,
	    sizeof(ld->cfg->user));
}

static int
parse_group(struct cfg_reader *c, const struct cfg_node *v, struct load *ld)
{
	return parse_name(c, v, "group", ld->cfg->group,
	    sizeof(ld->cfg->group));
}

static int
parse_curve(struct cfg_reader *c, const struct cfg_node *v, struct load *ld)
{
	return cfg_parse_curve(c, v, ld->cfg);
}

static const struct part {
	const char *name;
	int (*parse)(struct cfg_reader *, const struct cfg_node *,
	    struct load *);
} parts[] = {
	{ CFG_AGGREGATOR, parse_aggregator },
	{ "outputs", parse_outputs },
	{ "feeds", parse_feeders },
	{ "logging", parse_logging },
	{ "store", parse_store },
	{ "limits", parse_limits },
	{ "subscriber", parse_subscriber },
	{ "user", parse_user },
	{ "group", parse_group },
	{ "curve", parse_curve },
	{ "metrics", parse_metrics },
};

static int
parse_section(struct cfg_reader *c, const char *key, const struct cfg_node *v,
    void *arg)
{
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (strcmp(key, parts[i].name) == 0)
			return parts[i].parse(c, v, arg);
	if (strcmp(key, "celery") == 0 ||
	    strcmp(key, "event_handlers_dir") == 0)
		/* the ancestor's Celery workers ran its handlers */
		cfg_note(c, NULL, LOG_LVL_INFO, "\"%s\" (the ancestor's Celery "
		    "workers) is not used: event-sub runs the handlers%s; "
		    "ignored", key, key[0] == 'e' ? ", from the directory of "
		    "its --event-handlers" : "");
	else
		cfg_note(c, NULL, LOG_LVL_WARNING, "unknown section \"%s\" "
		    "ignored", key);
	return 0;
}

/* A ZeroMQ listener beyond loopback without "curve": its warning. */
static void
exposed(void *arg, const char *at, const char *uri, const char *what)
{
	struct cfg *cfg = arg;

	if (cfg->nexposed == CFG_EXPOSED_MAX)
		return;
	snprintf(cfg->exposed[cfg->nexposed++], sizeof(cfg->exposed[0]),
	    "%sZeroMQ endpoint %s (%s) is bound beyond loopback without "
	    "\"curve\": anyone who can reach it can send events (and so run "
	    "handlers) or read them", at, uri, what);
}

void
cfg_warn_exposed(const struct cfg *cfg)
{
	for (int i = 0; i < cfg->nexposed; i++)
		log_warn("%s", cfg->exposed[i]);
}

int
cfg_load(const char *path, struct cfg *cfg, char *err, size_t errsz)
{
	struct load ld = { cfg, 0, 0, 0 };
	const struct cfg_node *root;
	struct cfg_reader *c;
	int rc = -1;

	if (path == NULL) {
		path = CFG_DEFAULT_PATH;
		FILE *f = fopen(path, "r");
		if (f == NULL && errno == ENOENT) {
			cfg_defaults(cfg);
			return 1;
		}
		if (f != NULL)
			fclose(f);
	}
	core_defaults(cfg);
	c = cfg_reader_open(path, CFG_FILE_MAX, err, errsz, &root);
	if (c == NULL)
		return -1;
	/* the defaults after the file's, at the root: no position */
	if (cfg_want_object(c, root, "the configuration") == 0 &&
	    cfg_foreach(c, root, parse_section, &ld) == 0 &&
	    add_defaults(c, cfg, &ld) == 0 &&
	    cfg_check_listeners(c, endpoint_clash) == 0) {
		rc = 0;
		if (!cfg->curve.on)
			cfg_exposed_listeners(c, endpoint_exposed, exposed,
			    cfg);
	} else
		cfg_free(cfg);
	cfg_reader_close(c);
	return rc;
}

int
cfg_startup(const char *prog, const char *config_path, const char *level,
    struct cfg *cfg, int *exit_code)
{
	enum log_level lvl;
	char err[1024];
	int rc;

	if (level != NULL) {
		if (log_level_parse(level, &lvl) != 0) {
			fprintf(stderr, "%s: unknown log level \"%s\" (DEBUG, "
			    "INFO, WARNING, ERROR)\n", prog, level);
			*exit_code = EX_USAGE;
			return -1;
		}
		log_set_level(lvl);
	}
	rc = cfg_load(config_path, cfg, err, sizeof(err));
	if (rc < 0) {
		log_error("%s", err);
		*exit_code = EX_CONFIG;
		return -1;
	}
	if (rc == 1)
		log_info("no %s: running on built-in defaults", CFG_DEFAULT_PATH);
	if (level == NULL && cfg->have_level)
		log_set_level(cfg->level);
	return rc;
}

