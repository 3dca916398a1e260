/*
 * config: config.json.  See include/config.h.  The file is read through
 * cfg_reader (typed getters, FILE:LINE:COLUMN errors); each top-level
 * section has its parse function in sections[].
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg_reader.h"
#include "config.h"
#include "endpoint.h"
#include "in_amqp.h"
#include "store_mongo.h"
#include "event.h"
#include "util.h"

/* What the listeners of config.json are called in errors (cfg_listen). */
static const char LS_PULL[] = "the PULL input (aggregator)";
static const char LS_PUB[] = "the PUB output (outputs)";
static const char LS_REP[] = "a REP input (ZMQInput)";
static const char LS_HTTP[] = "an HTTPInput";

int
cfg_subscriber(const struct cfg *cfg, const char *uri, char *out,
    size_t outsz, enum cfg_framing *framing, char *why, size_t whysz)
{
	char host[CFG_URI_MAX], ohost[CFG_URI_MAX];
	const struct cfg_output *o = NULL;
	long port, oport;
	int i;

	if (uri == NULL && cfg->sub_uri[0] != '\0')
		uri = cfg->sub_uri;
	if (uri != NULL) {
		snprintf(out, outsz, "%s", uri);
	} else {
		/* follow the outputs: the first topic-framed one, else the
		 * first; its framing is then found below as for any uri */
		for (i = 0; i < cfg->noutputs && o == NULL; i++)
			if (cfg->outputs[i].framing == CFG_FRAMING_TOPIC)
				o = &cfg->outputs[i];
		if (o == NULL)
			o = &cfg->outputs[0];
		if (strncmp(o->uri, "ipc://", 6) == 0) {
			snprintf(out, outsz, "%s", o->uri);
		} else if (endpoint_tcp(o->uri, host, sizeof(host),
		    &port) != 0 || port == 0) {
			snprintf(why, whysz, "subscriber.uri is not set, and the "
			    "output %s gives no address to connect to: set "
			    "subscriber.uri", o->uri);
			return -1;
		} else if (endpoint_wildcard(host)) {
			snprintf(out, outsz, "tcp://%s:%ld", strchr(host, ':') ?
			    "[::1]" : "127.0.0.1", port);
		} else {
			snprintf(out, outsz, "%s", o->uri);
		}
	}
	*framing = CFG_FRAMING_EVENT;
	if (cfg->sub_framing_set) {
		*framing = cfg->sub_framing;
		return 0;
	}
	for (i = 0; i < cfg->noutputs; i++) {
		const char *b = cfg->outputs[i].uri;
		if (strcmp(b, out) == 0 ||
		    (endpoint_tcp(b, ohost, sizeof(ohost), &oport) == 0 &&
		    endpoint_tcp(out, host, sizeof(host), &port) == 0 &&
		    port == oport && port != 0 && (strcmp(host, ohost) == 0 ||
		    endpoint_wildcard(ohost)))) {
			*framing = cfg->outputs[i].framing;
			break;
		}
	}
	return 0;
}


/* ---- config.json ---- */

void
cfg_defaults(struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->pull_uri, sizeof(cfg->pull_uri), "%s", CFG_DEFAULT_PULL);
	snprintf(cfg->outputs[0].uri, sizeof(cfg->outputs[0].uri), "%s",
	    CFG_DEFAULT_PUB);
	snprintf(cfg->outputs[1].uri, sizeof(cfg->outputs[1].uri), "%s",
	    CFG_DEFAULT_TOPIC_PUB);
	cfg->outputs[1].framing = CFG_FRAMING_TOPIC;
	cfg->noutputs = 2;
	snprintf(cfg->reps[0].uri, sizeof(cfg->reps[0].uri), "%s", CFG_DEFAULT_REP);
	snprintf(cfg->reps[0].ns, sizeof(cfg->reps[0].ns), "local");
	cfg->nreps = 1;
	cfg->level = LOG_LVL_INFO;
	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", CFG_DEFAULT_LOG_DIR);
	cfg->store_type = STORE_SQLITE;
	snprintf(cfg->store_path, sizeof(cfg->store_path), "%s",
	    CFG_DEFAULT_STORE_PATH);
	snprintf(cfg->store_spool_path, sizeof(cfg->store_spool_path), "%s",
	    CFG_DEFAULT_SPOOL_PATH);
	cfg->store_spool_max = CFG_DEFAULT_SPOOL_MAX;
	cfg->max_event_size = EVENT_MAX_SIZE_DEFAULT;
	cfg->publish_wait_ms = CFG_DEFAULT_PUBLISH_WAIT_MS;
	cfg->max_concurrency = 16;
	cfg->queue_size = 10000;
	cfg->shutdown_grace = 30;
	cfg->python_workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->python_workers < 1)
		cfg->python_workers = 1;
	cfg->python_max_rss_mb = 512;
}
static int
is_disabled(const struct cfg_node *o)
{
	return cfg_is_true(cfg_member(o, "disabled"));
}

/* A "framing" value into *out, or an error at its key. */
static int
parse_framing(struct cfg_reader *c, const char *framing, enum cfg_framing *out)
{
	if (strcmp(framing, "topic") == 0) {
		*out = CFG_FRAMING_TOPIC;
	} else if (strcmp(framing, "event") == 0) {
		*out = CFG_FRAMING_EVENT;
	} else {
		return cfg_error(c, "framing", "unknown framing \"%s\" "
		    "(\"event\": one frame per event, the default; \"topic\": "
		    "the topic, then the event)", framing);
	}
	return 0;
}

/* Two outputs cannot bind one endpoint; port 0 and * pick a free one. */
static int
same_endpoint(const char *a, const char *b)
{
	const char *port = strrchr(a, ':');

	if (strcmp(a, b) != 0)
		return 0;
	return !(strncmp(a, "tcp://", 6) == 0 && port != NULL &&
	    (strcmp(port, ":0") == 0 || strcmp(port, ":*") == 0));
}

/* One zeromq output's "config" (the reader at it) into out. */
static int
parse_output(struct cfg_reader *c, const struct cfg_node *conf,
    struct cfg_output *out)
{
	static const char *const known[] = { "protocol", "listen_address",
	    "port", "uri", "type", "framing", NULL };
	char framing[16] = "event";

	return endpoint_section(c, conf, known, "zmq.PUB", out->uri,
	    sizeof(out->uri)) != 0 ||
	    cfg_get_str(c, conf, "framing", framing, sizeof(framing)) != 0 ||
	    parse_framing(c, framing, &out->framing) != 0 ? -1 : 0;
}

/*
 * "outputs": [{"handler": "zeromq", "config": {endpoint keys, "framing":
 * "event" | "topic"}}, ...]: up to CFG_MAX_OUTPUTS enabled ones replace
 * the default outputs; none enabled leaves them.
 */
static int
parse_outputs(struct cfg_reader *c, const struct cfg_node *outs,
    struct cfg *cfg)
{
	size_t at[CFG_MAX_OUTPUTS];
	int n = 0;

	if (!cfg_is_array(outs))
		return cfg_error(c, NULL, "\"outputs\" must be an array");
	for (size_t i = 0; i < cfg_size(outs); i++) {
		const struct cfg_node *o = cfg_array_get(outs, i), *conf;
		struct cfg_output *out;
		const char *h;
		cfg_push_idx(c, i);
		if (cfg_want_object(c, o, "an output") != 0)
			return -1;
		cfg_warn_unknown(c, o, (const char *const[]){ "handler",
		    "config", "disabled", NULL }, "output");
		h = cfg_string(cfg_member(o, "handler"));
		if (is_disabled(o)) {
			cfg_pop(c);
			continue;
		}
		if (h == NULL || strcmp(h, "zeromq") != 0)
			return cfg_error(c, "handler", "unknown output handler "
			    "\"%s\" (known: zeromq)", h != NULL ? h : "");
		if (n == CFG_MAX_OUTPUTS)
			return cfg_error(c, NULL, "more than %d zeromq outputs",
			    CFG_MAX_OUTPUTS);
		out = &cfg->outputs[n];
		snprintf(out->uri, sizeof(out->uri), "%s", CFG_DEFAULT_PUB);
		out->framing = CFG_FRAMING_EVENT;
		conf = cfg_member(o, "config");
		if (conf != NULL) {
			cfg_push(c, "config");
			if (parse_output(c, conf, out) != 0)
				return -1;
		}
		for (int k = 0; k < n; k++) {
			if (same_endpoint(cfg->outputs[k].uri, out->uri))
				return cfg_error(c, cfg_member(conf, "uri") ?
				    "uri" : cfg_member(conf, "port") ? "port" :
				    NULL, "outputs[%zu] binds %s too: give "
				    "each output its own endpoint", at[k],
				    out->uri);
		}
		cfg_listen(c, out->uri, LS_PUB, 1, conf);
		if (conf != NULL)
			cfg_pop(c);
		at[n++] = i;
		cfg_pop(c);
	}
	if (n > 0)
		cfg->noutputs = n;
	return 0;
}

/*
 * AMQPInput: {"namespace": ..., "handler": "AMQPInput", "config": {"url":
 * ..., "routing_key": ..., "exchange_type": ..., "queue_name": ...,
 * "bindings": [...], "durable": true, "exchange_durable": false,
 * "prefetch": 64}}.
 */
static int
parse_amqp(struct cfg_reader *c, const struct cfg_node *conf,
    struct cfg_feeder *f)
{
	static const char *const known[] = { "url", "routing_key",
	    "exchange_type", "queue_name", "bindings", "durable",
	    "exchange_durable", "prefetch", NULL };
	static const char *const types[] = { "direct", "fanout", "topic",
	    "headers", NULL };
	struct cfg_amqp *a = &f->amqp;
	const char *const *t;
	char why[512];
	long long prefetch = 64;
	const struct cfg_node *b;

	snprintf(a->url, sizeof(a->url), "amqp://guest:guest@localhost:5672/");
	snprintf(a->exchange_type, sizeof(a->exchange_type), "topic");
	snprintf(a->routing_key, sizeof(a->routing_key), "notifications.info");
	snprintf(a->queue_name, sizeof(a->queue_name), "event-reactor.%s",
	    f->ns);
	a->durable = 1;
	a->prefetch = (int)prefetch;
	if (conf == NULL)
		return 0;
	if (cfg_want_object(c, conf, "\"config\"") != 0)
		return -1;
	cfg_warn_unknown(c, conf, known, "AMQPInput");
	if (cfg_get_str(c, conf, "url", a->url, sizeof(a->url)) != 0 ||
	    cfg_get_str(c, conf, "exchange_type", a->exchange_type,
	    sizeof(a->exchange_type)) != 0 ||
	    cfg_get_str(c, conf, "routing_key", a->routing_key,
	    sizeof(a->routing_key)) != 0 ||
	    cfg_get_str(c, conf, "queue_name", a->queue_name,
	    sizeof(a->queue_name)) != 0 ||
	    cfg_get_bool(c, conf, "durable", &a->durable) != 0 ||
	    cfg_get_bool(c, conf, "exchange_durable",
	    &a->exchange_durable) != 0 ||
	    cfg_get_int(c, conf, "prefetch", 1, 65535, &prefetch) != 0)
		return -1;
	a->prefetch = (int)prefetch;
	/* the URL may hold a password: never echo it */
	if (strncmp(a->url, "amqp://", 7) != 0)
		return cfg_error(c, "url", "\"url\" must start with amqp:// "
		    "(amqps:// is not supported in this build)");
	if (strstr(a->url, "CHANGE-ME") != NULL)
		return cfg_error(c, "url", "\"url\" still holds the sample's "
		    "CHANGE-ME placeholder: set the broker's real credentials");
	if (in_amqp_check_url(a->url, why, sizeof(why)) != 0)
		return cfg_error(c, "url", "%s", why);
	for (t = types; *t != NULL; t++)
		if (strcmp(*t, a->exchange_type) == 0)
			break;
	if (*t == NULL)
		return cfg_error(c, "exchange_type", "unknown exchange_type "
		    "\"%s\" (direct, fanout, topic, headers)",
		    a->exchange_type);
	if ((b = cfg_member(conf, "bindings")) == NULL)
		return 0;
	cfg_push(c, "bindings");
	if (!cfg_is_array(b))
		return cfg_error(c, NULL, "\"bindings\" must be an array of "
		    "exchange names");
	if (cfg_size(b) > CFG_MAX_BINDINGS)
		return cfg_error(c, NULL, "more than %d bindings",
		    CFG_MAX_BINDINGS);
	for (size_t i = 0; i < cfg_size(b); i++) {
		const char *name = cfg_string(cfg_array_get(b, i));
		cfg_push_idx(c, i);
		if (name == NULL || name[0] == '\0')
			return cfg_error(c, NULL, "an exchange name must be a "
			    "non-empty string");
		if (strlen(name) >= CFG_NAME_MAX)
			return cfg_error(c, NULL, "exchange name longer than "
			    "%d bytes", CFG_NAME_MAX - 1);
		memcpy(a->bindings[i], name, strlen(name) + 1);
		a->nbindings++;
		cfg_pop(c);
	}
	cfg_pop(c);
	return 0;
}

/*
 * HTTPInput: {"namespace": ..., "handler": "HTTPInput", "config":
 * {"listen_address": "127.0.0.1", "port": 8080, "secret": ..., "token": ...,
 * "allow_anonymous": false, "max_connections": 64, "timeout": 10}}.
 */
static int
parse_http(struct cfg_reader *c, const struct cfg_node *conf,
    struct cfg_feeder *f)
{
	static const char *const known[] = { "listen_address", "port",
	    "secret", "token", "allow_anonymous", "max_connections", "timeout",
	    NULL };
	struct cfg_http *h = &f->http;
	long long port = 8080, maxconn = 64, timeout = 10;

	snprintf(h->listen_address, sizeof(h->listen_address), "127.0.0.1");
	if (conf != NULL) {
		if (cfg_want_object(c, conf, "\"config\"") != 0)
			return -1;
		cfg_warn_unknown(c, conf, known, "HTTPInput");
		if (cfg_get_str(c, conf, "listen_address", h->listen_address,
		    sizeof(h->listen_address)) != 0 ||
		    cfg_get_int(c, conf, "port", 0, 65535, &port) != 0 ||
		    cfg_get_str(c, conf, "secret", h->secret,
		    sizeof(h->secret)) != 0 ||
		    cfg_get_str(c, conf, "token", h->token,
		    sizeof(h->token)) != 0 ||
		    cfg_get_bool(c, conf, "allow_anonymous",
		    &h->allow_anonymous) != 0 ||
		    cfg_get_int(c, conf, "max_connections", 1, 100000,
		    &maxconn) != 0 ||
		    cfg_get_int(c, conf, "timeout", 1, 3600, &timeout) != 0)
			return -1;
	}
	h->port = (int)port;
	h->max_connections = (int)maxconn;
	h->timeout = (int)timeout;
	{
		unsigned char a[16];
		char uri[CFG_URI_MAX];
		if (inet_pton(AF_INET, h->listen_address, a) != 1 &&
		    inet_pton(AF_INET6, h->listen_address, a) != 1) {
			return cfg_error(c, "listen_address", "\"%s\" is not a "
			    "numeric IPv4 or IPv6 address", h->listen_address);
		}
		snprintf(uri, sizeof(uri), strchr(h->listen_address, ':') ?
		    "tcp://[%s]:%d" : "tcp://%s:%d", h->listen_address, h->port);
		cfg_listen(c, uri, LS_HTTP, 1, conf);
	}
	/* the sample configuration's placeholders are no credentials */
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "token" : "secret";
		if (strncmp(i ? h->token : h->secret, "CHANGE-ME", 9) == 0)
			return cfg_error(c, key, "\"%s\" is still the sample's "
			    "placeholder: set a real one (or remove it)", key);
	}
	if (h->secret[0] == '\0' && h->token[0] == '\0' && !h->allow_anonymous)
		cfg_note(c, NULL, LOG_LVL_WARNING, "HTTPInput without "
		    "\"secret\" or \"token\": every request is refused with "
		    "401 (set \"allow_anonymous\": true to accept them)");
	return 0;
}

static int
parse_feeder(struct cfg_reader *c, const struct cfg_node *f, const char *h,
    struct cfg *cfg)
{
	struct cfg_feeder *fd;
	const struct cfg_node *conf = cfg_member(f, "config");
	int rc;

	if (cfg->nfeeders == CFG_MAX_FEEDERS)
		return cfg_error(c, NULL, "more than %d AMQPInput and "
		    "HTTPInput feeders", CFG_MAX_FEEDERS);
	fd = &cfg->feeders[cfg->nfeeders];
	memset(fd, 0, sizeof(*fd));
	fd->kind = strcmp(h, "AMQPInput") == 0 ? FEEDER_AMQP : FEEDER_HTTP;
	snprintf(fd->ns, sizeof(fd->ns), "%s", fd->kind == FEEDER_AMQP ?
	    "openstack" : "hooks");
	if (cfg_get_str(c, f, "namespace", fd->ns, sizeof(fd->ns)) != 0)
		return -1;
	if (conf != NULL)
		cfg_push(c, "config");
	rc = fd->kind == FEEDER_AMQP ? parse_amqp(c, conf, fd) :
	    parse_http(c, conf, fd);
	if (rc != 0)
		return -1;
	if (conf != NULL)
		cfg_pop(c);
	cfg->nfeeders++;
	return 0;
}

/* A ZMQInput feeder: a REP input. */
static int
parse_rep(struct cfg_reader *c, const struct cfg_node *f, struct cfg *cfg)
{
	const struct cfg_node *conf = cfg_member(f, "config");
	struct cfg_rep *r;

	if (cfg->nreps == CFG_MAX_REP)
		return cfg_error(c, NULL, "more than %d ZMQInput feeders",
		    CFG_MAX_REP);
	r = &cfg->reps[cfg->nreps];
	snprintf(r->uri, sizeof(r->uri), "%s", CFG_DEFAULT_REP);
	snprintf(r->ns, sizeof(r->ns), "local");
	if (cfg_get_str(c, f, "namespace", r->ns, sizeof(r->ns)) != 0)
		return -1;
	if (conf != NULL) {
		cfg_push(c, "config");
		if (endpoint_section(c, conf, endpoint_keys, "zmq.REP", r->uri,
		    sizeof(r->uri)) != 0)
			return -1;
		cfg_listen(c, r->uri, LS_REP, 1, conf);
		cfg_pop(c);
	} else {
		cfg_listen(c, r->uri, LS_REP, 1, NULL);
	}
	cfg->nreps++;
	return 0;
}

/* feeds.feeders[i], the reader at it. */
static int
parse_feeder_entry(struct cfg_reader *c, const struct cfg_node *f, size_t i,
    struct cfg *cfg)
{
	const char *h;

	if (cfg_want_object(c, f, "a feeder") != 0)
		return -1;
	h = cfg_string(cfg_member(f, "handler"));
	if (is_disabled(f)) {
		log_debug("feeder %zu (%s) is disabled", i, h ? h : "?");
		return 0;
	}
	if (h != NULL && strcmp(h, "ZMQInput") == 0)
		return parse_rep(c, f, cfg);
	if (h != NULL && (strcmp(h, "AMQPInput") == 0 ||
	    strcmp(h, "HTTPInput") == 0))
		return parse_feeder(c, f, h, cfg);
	return cfg_error(c, "handler", "unknown feeder handler \"%s\" (known: "
	    "ZMQInput, AMQPInput, HTTPInput)", h != NULL ? h : "");
}

static int
parse_feeders(struct cfg_reader *c, const struct cfg_node *feeds,
    struct cfg *cfg)
{
	const struct cfg_node *list;

	if (cfg_want_object(c, feeds, "\"feeds\"") != 0)
		return -1;
	cfg_warn_unknown(c, feeds, (const char *const[]){ "feeders",
	    "aggregator", NULL }, "feeds");
	if (cfg_member(feeds, "aggregator") != NULL)
		/* where the ancestor's feeder processes pushed their events */
		cfg_note(c, "aggregator", LOG_LVL_DEBUG, "\"aggregator\" "
		    "ignored: feeders run inside event-router");
	list = cfg_member(feeds, "feeders");
	if (list == NULL)
		return 0;
	cfg_push(c, "feeders");
	if (!cfg_is_array(list))
		return cfg_error(c, NULL, "\"feeders\" must be an array");
	cfg->nreps = 0;
	cfg->nfeeders = 0;
	for (size_t i = 0; i < cfg_size(list); i++) {
		cfg_push_idx(c, i);
		if (parse_feeder_entry(c, cfg_array_get(list, i), i, cfg) != 0)
			return -1;
		cfg_pop(c);
	}
	cfg_pop(c);
	return 0;
}

/*
 * A store file that a start could not open whatever the permissions: the
 * path names a directory, or a parent is a file.  Missing directories are
 * fine (the store creates them); access rights are found at the start.
 */
static int
check_store_file(struct cfg_reader *c, const struct cfg_node *st,
    const char *key, const char *path)
{
	char dir[4096];
	struct stat sb;
	char *slash;

	if (cfg_member(st, key) == NULL)
		return 0;
	cfg_push(c, key);
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return cfg_error(c, NULL, "\"%s\" is a directory; name the "
		    "database file, such as \"%s/events.db\"", path, path);
	snprintf(dir, sizeof(dir), "%s", path);
	while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &sb) != 0)
			continue;	/* missing: created at the start */
		if (!S_ISDIR(sb.st_mode))
			return cfg_error(c, NULL, "\"%s\": \"%s\" is not a "
			    "directory", path, dir);
		break;
	}
	cfg_pop(c);
	return 0;
}

static int
parse_store(struct cfg_reader *c, const struct cfg_node *st, struct cfg *cfg)
{
	static const char *const known[] = { "type", "path", "uri", "ttl_days",
	    "spool_path", "spool_max", NULL };
	char type[32] = "sqlite", why[512];

	if (cfg_want_object(c, st, "\"store\"") != 0)
		return -1;
	cfg_warn_unknown(c, st, known, "store");
	if (cfg_get_str(c, st, "type", type, sizeof(type)) != 0 ||
	    cfg_get_str(c, st, "path", cfg->store_path,
	    sizeof(cfg->store_path)) != 0 ||
	    cfg_get_str(c, st, "uri", cfg->store_uri,
	    sizeof(cfg->store_uri)) != 0 ||
	    cfg_get_num(c, st, "ttl_days", 0, CFG_TTL_DAYS_MAX,
	    &cfg->store_ttl_days) != 0 ||
	    cfg_get_str(c, st, "spool_path", cfg->store_spool_path,
	    sizeof(cfg->store_spool_path)) != 0 ||
	    cfg_get_int(c, st, "spool_max", 1, 1000000000LL,
	    &cfg->store_spool_max) != 0)
		return -1;
	if (strcmp(type, "sqlite") == 0)
		cfg->store_type = STORE_SQLITE;
	else if (strcmp(type, "none") == 0)
		cfg->store_type = STORE_NONE;
	else if (strcmp(type, "mongodb") == 0)
		cfg->store_type = STORE_MONGODB;
	else
		return cfg_error(c, "type", "unknown store type \"%s\" (known: "
		    "sqlite, mongodb, none)", type);
	if (cfg->store_type != STORE_MONGODB) {
		static const char *const mongo_only[] = { "uri", "ttl_days",
		    "spool_path", "spool_max", NULL };
		for (const char *const *k = mongo_only; *k != NULL; k++) {
			if (cfg_member(st, *k) == NULL)
				continue;
			cfg_note(c, *k, LOG_LVL_WARNING, "\"%s\" applies to "
			    "the mongodb store only; ignored for type \"%s\"",
			    *k, type);
		}
		return cfg->store_type == STORE_SQLITE ?
		    check_store_file(c, st, "path", cfg->store_path) : 0;
	}
	if (cfg_member(st, "uri") == NULL)
		return cfg_error(c, NULL, "store type \"mongodb\" needs "
		    "\"uri\", e.g. \"mongodb://127.0.0.1:27017/%s\"",
		    STORE_MONGO_DEFAULT_DB);
	if (store_mongo_check_uri(cfg->store_uri, why, sizeof(why)) != 0)
		return cfg_error(c, "uri", "store uri \"%s\": %s",
		    cfg->store_uri, why);
	if (cfg->store_spool_path[0] == '\0')
		return cfg_error(c, "spool_path", "\"spool_path\" must not be "
		    "empty");
	return check_store_file(c, st, "spool_path", cfg->store_spool_path);
}

static int
parse_subscriber(struct cfg_reader *c, const struct cfg_node *s,
    struct cfg *cfg)
{
	static const char *const known[] = { "uri", "framing",
	    "max_concurrency", "queue_size", "shutdown_grace",
	    "python_workers", "python_max_rss_mb", NULL };
	char framing[16] = "";
	long long mc = cfg->max_concurrency, qs = cfg->queue_size;
	long long pw = cfg->python_workers, rss = cfg->python_max_rss_mb;
	char why[CFG_URI_MAX + 128];

	if (cfg_want_object(c, s, "\"subscriber\"") != 0)
		return -1;
	cfg_warn_unknown(c, s, known, "subscriber");
	if (cfg_get_str(c, s, "uri", cfg->sub_uri, sizeof(cfg->sub_uri)) != 0 ||
	    cfg_get_str(c, s, "framing", framing, sizeof(framing)) != 0 ||
	    cfg_get_int(c, s, "max_concurrency", 1, 4096, &mc) != 0 ||
	    cfg_get_int(c, s, "queue_size", 1, 10000000, &qs) != 0 ||
	    cfg_get_num(c, s, "shutdown_grace", 0, 86400,
	    &cfg->shutdown_grace) != 0 ||
	    cfg_get_int(c, s, "python_workers", 1, 256, &pw) != 0 ||
	    cfg_get_int(c, s, "python_max_rss_mb", 16, 1 << 20, &rss) != 0)
		return -1;
	if (cfg_member(s, "uri") != NULL &&
	    endpoint_check(cfg->sub_uri, 0, why, sizeof(why)) != 0)
		return cfg_error(c, "uri", "%s", why);
	if (framing[0] != '\0') {
		if (parse_framing(c, framing, &cfg->sub_framing) != 0)
			return -1;
		cfg->sub_framing_set = 1;
	}
	cfg->python_workers = (int)pw;
	cfg->python_max_rss_mb = (long)rss;
	cfg->max_concurrency = (int)mc;
	cfg->queue_size = (int)qs;
	return 0;
}

/* "aggregator": the PULL input. */
static int
parse_aggregator(struct cfg_reader *c, const struct cfg_node *v,
    struct cfg *cfg)
{
	static const char *const known[] = { "config", NULL };
	const struct cfg_node *conf;

	if (cfg_want_object(c, v, "\"aggregator\"") != 0)
		return -1;
	cfg_warn_unknown(c, v, known, "aggregator");
	if ((conf = cfg_member(v, "config")) == NULL)
		return 0;
	cfg_push(c, "config");
	if (endpoint_section(c, conf, endpoint_keys, "zmq.PULL", cfg->pull_uri,
	    sizeof(cfg->pull_uri)) != 0)
		return -1;
	cfg_listen(c, cfg->pull_uri, LS_PULL, 1, conf);
	cfg_pop(c);
	return 0;
}

static int
parse_logging(struct cfg_reader *c, const struct cfg_node *v, struct cfg *cfg)
{
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
parse_limits(struct cfg_reader *c, const struct cfg_node *v, struct cfg *cfg)
{
	static const char *const known[] = { "max_event_size",
	    "publish_wait_ms", NULL };
	long long m = (long long)cfg->max_event_size;
	long long w = cfg->publish_wait_ms;

	if (cfg_want_object(c, v, "\"limits\"") != 0 ||
	    cfg_get_int(c, v, "max_event_size", 64, 256LL * 1024 * 1024,
	    &m) != 0 ||
	    cfg_get_int(c, v, "publish_wait_ms", 0, 60000, &w) != 0)
		return -1;
	cfg_warn_unknown(c, v, known, "limits");
	cfg->max_event_size = (size_t)m;
	cfg->publish_wait_ms = (int)w;
	return 0;
}

static const struct section {
	const char *name;
	int (*parse)(struct cfg_reader *, const struct cfg_node *,
	    struct cfg *);
} sections[] = {
	{ "aggregator", parse_aggregator },
	{ "outputs", parse_outputs },
	{ "feeds", parse_feeders },
	{ "logging", parse_logging },
	{ "store", parse_store },
	{ "limits", parse_limits },
	{ "subscriber", parse_subscriber },
};

static int
parse_section(struct cfg_reader *c, const char *key, const struct cfg_node *v,
    void *arg)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(key, sections[i].name) == 0)
			return sections[i].parse(c, v, arg);
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

/* The sockets the file leaves at their defaults, then the check. */
static int
check_defaults(struct cfg_reader *c, struct cfg *cfg)
{
	if (cfg_listening(c, LS_PULL) == 0)
		cfg_listen(c, cfg->pull_uri, LS_PULL, 0, NULL);
	if (cfg_listening(c, LS_PUB) == 0)
		for (int i = 0; i < cfg->noutputs; i++)
			cfg_listen(c, cfg->outputs[i].uri, LS_PUB, 0, NULL);
	if (cfg_listening(c, LS_REP) < cfg->nreps)
		/* no feeds.feeders: the default REP */
		cfg_listen(c, cfg->reps[0].uri, LS_REP, 0, NULL);
	return cfg_check_listeners(c, endpoint_clash);
}

int
cfg_load(const char *path, struct cfg *cfg, char *err, size_t errsz)
{
	const struct cfg_node *root;
	struct cfg_reader *c;
	int rc = -1;

	cfg_defaults(cfg);
	if (path == NULL) {
		path = CFG_DEFAULT_PATH;
		FILE *f = fopen(path, "r");
		if (f == NULL && errno == ENOENT)
			return 1;
		if (f != NULL)
			fclose(f);
	}
	c = cfg_reader_open(path, CFG_FILE_MAX, err, errsz, &root);
	if (c == NULL)
		return -1;
	if (cfg_want_object(c, root, "the configuration") == 0 &&
	    cfg_foreach(c, root, parse_section, cfg) == 0 &&
	    check_defaults(c, cfg) == 0)
		rc = 0;
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

void
cfg_absolute_paths(struct cfg *cfg)
{
	char *p = util_abspath(cfg->store_path);

	snprintf(cfg->store_path, sizeof(cfg->store_path), "%s", p);
	free(p);
	p = util_abspath(cfg->log_dir);
	snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", p);
	free(p);
	if (cfg->store_spool_path[0] != '\0') {
		p = util_abspath(cfg->store_spool_path);
		snprintf(cfg->store_spool_path, sizeof(cfg->store_spool_path),
		    "%s", p);
		free(p);
	}
}
