/*
 * config: config.json and event-handlers.json.  See include/config.h.
 *
 * jansson does the parsing and reports the position of syntax errors.  It
 * keeps no positions for values, so for errors about a value (a wrong type,
 * an unknown driver) locate() walks the already validated text to the
 * value's path and reports its line and column the way jansson counts them.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <grp.h>
#include <net/if.h>
#include <stdint.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "feeder_amqp.h"
#include "store.h"
#include "event.h"
#include "util.h"

#define MAX_DEPTH 8

struct pel {
	const char *key;	/* NULL: array index */
	size_t idx;
};

/*
 * A socket event-router listens on, for the check that no two of them
 * share an address (a start would fail to bind the second one).
 */
struct listener {
	char uri[CFG_URI_MAX];	/* tcp://HOST:PORT, ipc://..., inproc://... */
	const char *what;	/* "the PULL input (aggregator)" */
	int line, col;		/* 0: a default, not in the file */
};
#define MAX_LISTENERS (1 + CFG_MAX_OUTPUTS + CFG_MAX_REP + CFG_MAX_FEEDERS)
static const char LS_PULL[] = "the PULL input (aggregator)";
static const char LS_PUB[] = "the PUB output (outputs)";
static const char LS_REP[] = "a REP input (ZMQInput)";
static const char LS_HTTP[] = "an HTTPInput";

struct jctx {
	const char *file;
	const char *text;
	size_t len;
	struct pel path[MAX_DEPTH];
	int depth;
	char *err;
	size_t errsz;
	struct listener *ls;	/* config.json only; NULL otherwise */
	int nls;
};

static void
push_key(struct jctx *c, const char *key)
{
	c->path[c->depth].key = key;
	c->path[c->depth].idx = 0;
	c->depth++;
}

static void
push_idx(struct jctx *c, size_t idx)
{
	c->path[c->depth].key = NULL;
	c->path[c->depth].idx = idx;
	c->depth++;
}

static void
pop(struct jctx *c)
{
	c->depth--;
}

/* ---- locating a path in valid JSON text ---- */

static const char *
ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *
skip_str(const char *p, const char *e)
{
	for (p++; p < e && *p != '"'; p++)
		if (*p == '\\')
			p++;
	return p < e ? p + 1 : e;
}

static const char *
skip_val(const char *p, const char *e)
{
	int d = 0;

	if (p >= e)
		return e;
	if (*p == '"')
		return skip_str(p, e);
	if (*p == '{' || *p == '[') {
		while (p < e) {
			if (*p == '"') {
				p = skip_str(p, e);
				continue;
			}
			if (*p == '{' || *p == '[')
				d++;
			else if ((*p == '}' || *p == ']') && --d == 0)
				return p + 1;
			p++;
		}
		return e;
	}
	while (p < e && strchr(",}] \t\r\n", *p) == NULL)
		p++;
	return p;
}

/* Compare the JSON string text ks[0..n) (with quotes) to key. */
static int
key_eq(const char *ks, size_t n, const char *key)
{
	json_t *j;
	int eq;

	if (n < 2)
		return 0;
	if (memchr(ks, '\\', n) == NULL)
		return n - 2 == strlen(key) && memcmp(ks + 1, key, n - 2) == 0;
	j = json_loadb(ks, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	eq = json_is_string(j) && strcmp(json_string_value(j), key) == 0;
	json_decref(j);
	return eq;
}

static const char *
locate(const struct jctx *c, int at_key)
{
	const char *p = c->text, *e = c->text + c->len, *keypos = p;

	for (int i = 0; i < c->depth; i++) {
		p = ws(p, e);
		if (c->path[i].key != NULL) {
			if (p >= e || *p != '{')
				return p;
			p++;
			for (;;) {
				const char *ks;
				int m;
				p = ws(p, e);
				if (p >= e || *p != '"')
					return p;
				ks = p;
				p = skip_str(p, e);
				m = key_eq(ks, (size_t)(p - ks), c->path[i].key);
				p = ws(p, e);
				if (p < e && *p == ':')
					p++;
				p = ws(p, e);
				if (m) {
					keypos = ks;
					break;
				}
				p = ws(skip_val(p, e), e);
				if (p < e && *p == ',') {
					p++;
					continue;
				}
				return p;
			}
		} else {
			if (p >= e || *p != '[')
				return p;
			p++;
			for (size_t j = 0;; j++) {
				p = ws(p, e);
				if (j == c->path[i].idx) {
					keypos = p;
					break;
				}
				if (p >= e || *p == ']')
					return p;
				p = ws(skip_val(p, e), e);
				if (p < e && *p == ',')
					p++;
				else
					return p;
			}
		}
	}
	return at_key ? keypos : ws(p, e);
}

static void
line_col(const char *text, const char *pos, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; p < pos; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)*p & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

/* Format "FILE:LINE:COL: msg" for the current path into buf. */
static void
where_fmt(const struct jctx *c, int at_key, char *buf, size_t sz,
    const char *fmt, va_list ap)
{
	int line, col, n;

	line_col(c->text, locate(c, at_key), &line, &col);
	n = snprintf(buf, sz, "%s:%d:%d: ", c->file, line, col);
	if (n >= 0 && (size_t)n < sz)
		vsnprintf(buf + n, sz - (size_t)n, fmt, ap);
}

static int
cerr(struct jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
cerr(struct jctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	where_fmt(c, 0, c->err, c->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

static void
cnote(struct jctx *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
cnote(struct jctx *c, enum log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	where_fmt(c, 1, buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(lvl, "%s", buf);
}

/*
 * Note a listening socket at the current path (at: 0, a default): the
 * position of its section's "uri", "port" or "listen_address" when conf
 * has one, else that of the section.
 */
static void
add_listener(struct jctx *c, const char *uri, const char *what, int at,
    json_t *conf)
{
	static const char *const keys[] = { "uri", "port", "listen_address",
	    NULL };
	const char *const *k = keys;
	struct listener *l;

	if (c->ls == NULL || c->nls == MAX_LISTENERS)
		return;
	l = &c->ls[c->nls++];
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	l->what = what;
	l->line = l->col = 0;
	if (!at)
		return;
	while (json_is_object(conf) && *k != NULL &&
	    json_object_get(conf, *k) == NULL)
		k++;
	if (json_is_object(conf) && *k != NULL)
		push_key(c, *k);
	line_col(c->text, locate(c, 0), &l->line, &l->col);
	if (json_is_object(conf) && *k != NULL)
		pop(c);
}

/* Split tcp://HOST:PORT (HOST without brackets); -1 for anything else. */
static int
tcp_parts(const char *uri, char *host, size_t hostsz, long *port)
{
	const char *colon = strrchr(uri, ':');
	size_t n;

	if (strncmp(uri, "tcp://", 6) != 0 || colon == NULL || colon < uri + 6)
		return -1;
	*port = strcmp(colon + 1, "*") == 0 ? 0 : strtol(colon + 1, NULL, 10);
	n = (size_t)(colon - uri - 6);
	if (n >= 2 && uri[6] == '[' && colon[-1] == ']')
		snprintf(host, hostsz, "%.*s", (int)n - 2, uri + 7);
	else
		snprintf(host, hostsz, "%.*s", (int)n, uri + 6);
	return 0;
}

static int
wildcard(const char *host)
{
	return strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0;
}

/*
 * Would binding b fail once a is bound?  The same ipc:// or inproc://
 * name; or the same TCP port (not 0 or *, which pick a free one) on the
 * same host, or with either on all addresses (Linux refuses that even
 * with SO_REUSEADDR, which ZeroMQ and libmicrohttpd set).  Interface
 * names are not resolved here.
 */
static int
clash(const char *a, const char *b)
{
	char ha[CFG_URI_MAX], hb[CFG_URI_MAX];
	long pa, pb;
	int ta = tcp_parts(a, ha, sizeof(ha), &pa) == 0;
	int tb = tcp_parts(b, hb, sizeof(hb), &pb) == 0;

	if (!ta || !tb)
		return !ta && !tb && strcmp(a, b) == 0;
	return pa == pb && pa != 0 && (strcmp(ha, hb) == 0 || wildcard(ha) ||
	    wildcard(hb));
}

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
		} else if (tcp_parts(o->uri, host, sizeof(host), &port) != 0 ||
		    port == 0) {
			snprintf(why, whysz, "subscriber.uri is not set, and the "
			    "output %s gives no address to connect to: set "
			    "subscriber.uri", o->uri);
			return -1;
		} else if (wildcard(host)) {
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
		    (tcp_parts(b, ohost, sizeof(ohost), &oport) == 0 &&
		    tcp_parts(out, host, sizeof(host), &port) == 0 &&
		    port == oport && port != 0 && (strcmp(host, ohost) == 0 ||
		    wildcard(ohost)))) {
			*framing = cfg->outputs[i].framing;
			break;
		}
	}
	return 0;
}

/* Refuse two listeners on one address, at the later one's position. */
static int
check_listeners(struct jctx *c)
{
	for (int j = 1; j < c->nls; j++) {
		for (int i = 0; i < j; i++) {
			const struct listener *a = &c->ls[i], *b = &c->ls[j];
			char at[32] = "";
			if (!clash(a->uri, b->uri))
				continue;
			if (b->line == 0) {
				const struct listener *t = a;
				a = b;
				b = t;
			}
			if (a->line != 0)
				snprintf(at, sizeof(at), " at %d:%d", a->line,
				    a->col);
			snprintf(c->err, c->errsz, "%s:%d:%d: \"%s\" is also the "
			    "%saddress of %s%s: two sockets cannot listen on one "
			    "address", c->file, b->line, b->col, b->uri,
			    a->line == 0 ? "default " : "", a->what, at);
			return -1;
		}
	}
	return 0;
}

/* Load and parse a file; on error fill c->err with the position. */
static json_t *
load_json(struct jctx *c, const char *path, char **textp)
{
	json_error_t je;
	json_t *root;
	size_t len;
	char *text;

	text = util_read_file(path, CFG_FILE_MAX, &len);
	if (text == NULL) {
		snprintf(c->err, c->errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	c->file = path;
	c->text = text;
	c->len = len;
	c->depth = 0;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(c->err, c->errsz, "%s:%d:%d: %s", path,
		    je.line > 0 ? je.line : 1, je.column > 0 ? je.column : 1,
		    je.text);
		free(text);
		return NULL;
	}
	*textp = text;
	return root;
}

/* ---- typed getters: each reports the value's position on error ---- */

static int
get_str(struct jctx *c, json_t *obj, const char *key, char *out, size_t outsz)
{
	json_t *v = json_object_get(obj, key);
	int rc = 0;

	if (v == NULL)
		return 0;
	push_key(c, key);
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		rc = cerr(c, "\"%s\" must be a non-empty string", key);
	else if (json_string_length(v) >= outsz)
		rc = cerr(c, "\"%s\" is longer than %zu bytes", key, outsz - 1);
	else
		memcpy(out, json_string_value(v), json_string_length(v) + 1);
	pop(c);
	return rc;
}

static int
get_int(struct jctx *c, json_t *obj, const char *key, long long lo,
    long long hi, long long *out)
{
	json_t *v = json_object_get(obj, key);
	int rc = 0;

	if (v == NULL)
		return 0;
	push_key(c, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		rc = cerr(c, "\"%s\" must be an integer from %lld to %lld",
		    key, lo, hi);
	else
		*out = json_integer_value(v);
	pop(c);
	return rc;
}

static int
get_num(struct jctx *c, json_t *obj, const char *key, double lo, double hi,
    double *out)
{
	json_t *v = json_object_get(obj, key);
	int rc = 0;

	if (v == NULL)
		return 0;
	push_key(c, key);
	if (!json_is_number(v) || json_number_value(v) < lo ||
	    json_number_value(v) > hi)
		rc = cerr(c, "\"%s\" must be a number from %g to %g", key, lo, hi);
	else
		*out = json_number_value(v);
	pop(c);
	return rc;
}

static int
get_bool(struct jctx *c, json_t *obj, const char *key, int *out)
{
	json_t *v = json_object_get(obj, key);
	int rc = 0;

	if (v == NULL)
		return 0;
	push_key(c, key);
	if (!json_is_boolean(v))
		rc = cerr(c, "\"%s\" must be true or false", key);
	else
		*out = json_is_true(v);
	pop(c);
	return rc;
}

static int
want_object(struct jctx *c, json_t *v, const char *what)
{
	if (json_is_object(v))
		return 0;
	return cerr(c, "%s must be a JSON object", what);
}

/* Warn about keys of obj not in known[] (NULL-terminated). */
static void
warn_unknown(struct jctx *c, json_t *obj, const char *const *known,
    const char *what)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *k;
		for (k = known; *k != NULL; k++)
			if (strcmp(*k, key) == 0)
				break;
		if (*k != NULL)
			continue;
		push_key(c, key);
		cnote(c, LOG_LVL_WARNING, "unknown %s option \"%s\" ignored",
		    what, key);
		pop(c);
	}
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

int
cfg_check_endpoint(const char *uri, int bind, char *why, size_t whysz)
{
	char host[CFG_URI_MAX];
	const char *hp, *colon, *end;
	unsigned char addr[16];
	long port = -1;		/* -1: "*" */

	if (strncmp(uri, "ipc://", 6) == 0 || strncmp(uri, "inproc://", 9) == 0) {
		struct sockaddr_un sun;
		if (strstr(uri, "://")[3] == '\0') {
			snprintf(why, whysz, "\"%s\": no path or name", uri);
			return -1;
		}
		/* ZeroMQ refuses (ENAMETOOLONG) what sun_path cannot hold */
		if (uri[0] == 'i' && uri[1] == 'p' &&
		    strlen(uri + 6) >= sizeof(sun.sun_path)) {
			snprintf(why, whysz, "\"%s\": the path is longer than %zu "
			    "bytes (a Unix socket address)", uri,
			    sizeof(sun.sun_path) - 1);
			return -1;
		}
		return 0;
	}
	if (strncmp(uri, "tcp://", 6) != 0) {
		snprintf(why, whysz, "\"%s\" is not a ZeroMQ endpoint "
		    "(tcp://HOST:PORT, ipc://PATH, inproc://NAME)", uri);
		return -1;
	}
	hp = uri + 6;
	colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp || colon[1] == '\0') {
		snprintf(why, whysz, "\"%s\": expected tcp://HOST:PORT", uri);
		return -1;
	}
	if (strcmp(colon + 1, "*") != 0) {
		port = strtol(colon + 1, (char **)(uintptr_t)&end, 10);
		if (*end != '\0' || port < 0 || port > 65535) {
			snprintf(why, whysz, "\"%s\": the port must be 0..65535 "
			    "or *", uri);
			return -1;
		}
	}
	if (!bind && port <= 0) {
		/* zmq_connect refuses "*"; port 0 is never listened on */
		snprintf(why, whysz, "\"%s\": the port to connect to must be "
		    "1..65535", uri);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (!bind || strcmp(host, "*") == 0 ||
	    inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1 ||
	    if_nametoindex(host) != 0)
		return 0;
	snprintf(why, whysz, "\"%s\": cannot listen on \"%s\": not an IP "
	    "address, * or a network interface of this machine", uri, host);
	return -1;
}

static int parse_endpoint_keys(struct jctx *, json_t *, const char *const *,
    const char *, char *, size_t);

/*
 * An endpoint section: {"protocol": "tcp", "listen_address": ..., "port": N}
 * or {"uri": "..."}; fields missing keep the default URI's parts.  "type",
 * the ancestor's ZeroMQ socket type, may only name the one the section
 * has here (socktype, "zmq.PULL" say).
 */
static int
parse_endpoint(struct jctx *c, json_t *conf, const char *socktype, char *uri,
    size_t urisz)
{
	static const char *const known[] = { "protocol", "listen_address",
	    "port", "uri", "type", NULL };

	return parse_endpoint_keys(c, conf, known, socktype, uri, urisz);
}

/* The same, with the keys known besides (an output's "framing"). */
static int
parse_endpoint_keys(struct jctx *c, json_t *conf, const char *const *known,
    const char *socktype, char *uri, size_t urisz)
{
	char proto[16] = "tcp", addr[128] = "127.0.0.1", given[CFG_URI_MAX] = "";
	char why[CFG_URI_MAX + 128], type[32] = "";
	long long port = -1;
	const char *colon;

	if (want_object(c, conf, "\"config\"") != 0)
		return -1;
	warn_unknown(c, conf, known, "endpoint");
	if (get_str(c, conf, "type", type, sizeof(type)) != 0)
		return -1;
	if (type[0] != '\0' && strcmp(type, socktype) != 0) {
		push_key(c, "type");
		return cerr(c, "\"type\" \"%s\": this socket is a %s "
		    "(remove \"type\" or set it to \"%s\")", type, socktype,
		    socktype);
	}
	if (get_str(c, conf, "uri", given, sizeof(given)) != 0)
		return -1;
	if (given[0] != '\0') {
		if (cfg_check_endpoint(given, 1, why, sizeof(why)) != 0) {
			push_key(c, "uri");
			return cerr(c, "%s", why);
		}
		snprintf(uri, urisz, "%s", given);
		return 0;
	}
	/* defaults from the current URI: tcp://ADDR:PORT */
	if (strncmp(uri, "tcp://", 6) == 0 && (colon = strrchr(uri, ':')) != NULL &&
	    colon > uri + 6) {
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - uri - 6), uri + 6);
		port = atoll(colon + 1);
	}
	if (get_str(c, conf, "protocol", proto, sizeof(proto)) != 0 ||
	    get_str(c, conf, "listen_address", addr, sizeof(addr)) != 0 ||
	    get_int(c, conf, "port", 0, 65535, &port) != 0)
		return -1;
	if (strcmp(proto, "tcp") != 0) {
		push_key(c, "protocol");
		cerr(c, "protocol \"%s\" is not supported (use \"tcp\", or "
		    "\"uri\" for other ZeroMQ transports)", proto);
		pop(c);
		return -1;
	}
	snprintf(uri, urisz, "tcp://%s:%lld", addr, port);
	if (cfg_check_endpoint(uri, 1, why, sizeof(why)) != 0) {
		push_key(c, json_object_get(conf, "listen_address") ?
		    "listen_address" : "port");
		return cerr(c, "%s", why);
	}
	return 0;
}

static int
is_disabled(json_t *o)
{
	return json_is_true(json_object_get(o, "disabled"));
}

/* A "framing" value into *out, or an error at its key. */
static int
parse_framing(struct jctx *c, const char *framing, enum cfg_framing *out)
{
	if (strcmp(framing, "topic") == 0) {
		*out = CFG_FRAMING_TOPIC;
	} else if (strcmp(framing, "event") == 0) {
		*out = CFG_FRAMING_EVENT;
	} else {
		push_key(c, "framing");
		return cerr(c, "unknown framing \"%s\" (\"event\": one frame "
		    "per event, the default; \"topic\": the topic, then the "
		    "event)", framing);
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

/*
 * "outputs": [{"handler": "zeromq", "config": {endpoint keys, "framing":
 * "event" | "topic"}}, ...]: up to CFG_MAX_OUTPUTS enabled ones replace
 * the default outputs; none enabled leaves them.
 */
static int
parse_outputs(struct jctx *c, json_t *outs, struct cfg *cfg)
{
	static const char *const known[] = { "protocol", "listen_address",
	    "port", "uri", "type", "framing", NULL };
	size_t i, at[CFG_MAX_OUTPUTS];
	json_t *o;
	int n = 0;

	if (!json_is_array(outs))
		return cerr(c, "\"outputs\" must be an array");
	json_array_foreach(outs, i, o) {
		struct cfg_output *out;
		const char *h;
		json_t *conf;
		char framing[16] = "event";
		push_idx(c, i);
		if (want_object(c, o, "an output") != 0)
			return -1;
		warn_unknown(c, o, (const char *const[]){ "handler", "config",
		    "disabled", NULL }, "output");
		h = json_string_value(json_object_get(o, "handler"));
		if (is_disabled(o)) {
			pop(c);
			continue;
		}
		if (h == NULL || strcmp(h, "zeromq") != 0) {
			push_key(c, "handler");
			return cerr(c, "unknown output handler \"%s\" (known: zeromq)",
			    h != NULL ? h : "");
		}
		if (n == CFG_MAX_OUTPUTS)
			return cerr(c, "more than %d zeromq outputs",
			    CFG_MAX_OUTPUTS);
		out = &cfg->outputs[n];
		snprintf(out->uri, sizeof(out->uri), "%s", CFG_DEFAULT_PUB);
		out->framing = CFG_FRAMING_EVENT;
		conf = json_object_get(o, "config");
		if (conf != NULL) {
			push_key(c, "config");
			if (parse_endpoint_keys(c, conf, known, "zmq.PUB",
			    out->uri, sizeof(out->uri)) != 0 ||
			    get_str(c, conf, "framing", framing,
			    sizeof(framing)) != 0 ||
			    parse_framing(c, framing, &out->framing) != 0)
				return -1;
		}
		for (int k = 0; k < n; k++) {
			if (!same_endpoint(cfg->outputs[k].uri, out->uri))
				continue;
			if (conf != NULL && json_object_get(conf, "uri") != NULL)
				push_key(c, "uri");
			else if (conf != NULL &&
			    json_object_get(conf, "port") != NULL)
				push_key(c, "port");
			return cerr(c, "outputs[%zu] binds %s too: give each "
			    "output its own endpoint", at[k], out->uri);
		}
		add_listener(c, out->uri, LS_PUB, 1, conf);
		if (conf != NULL)
			pop(c);
		at[n++] = i;
		pop(c);
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
parse_amqp(struct jctx *c, json_t *conf, struct cfg_feeder *f)
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
	json_t *b, *v;
	size_t i;

	snprintf(a->url, sizeof(a->url), "amqp://guest:guest@localhost:5672/");
	snprintf(a->exchange_type, sizeof(a->exchange_type), "topic");
	snprintf(a->routing_key, sizeof(a->routing_key), "notifications.info");
	snprintf(a->queue_name, sizeof(a->queue_name), "event-reactor.%s",
	    f->ns);
	a->durable = 1;
	a->prefetch = (int)prefetch;
	if (conf == NULL)
		return 0;
	if (want_object(c, conf, "\"config\"") != 0)
		return -1;
	warn_unknown(c, conf, known, "AMQPInput");
	if (get_str(c, conf, "url", a->url, sizeof(a->url)) != 0 ||
	    get_str(c, conf, "exchange_type", a->exchange_type,
	    sizeof(a->exchange_type)) != 0 ||
	    get_str(c, conf, "routing_key", a->routing_key,
	    sizeof(a->routing_key)) != 0 ||
	    get_str(c, conf, "queue_name", a->queue_name,
	    sizeof(a->queue_name)) != 0 ||
	    get_bool(c, conf, "durable", &a->durable) != 0 ||
	    get_bool(c, conf, "exchange_durable", &a->exchange_durable) != 0 ||
	    get_int(c, conf, "prefetch", 1, 65535, &prefetch) != 0)
		return -1;
	a->prefetch = (int)prefetch;
	if (strncmp(a->url, "amqp://", 7) != 0) {
		push_key(c, "url");
		/* the URL may hold a password: do not echo it */
		return cerr(c, "\"url\" must start with amqp:// (amqps:// is not "
		    "supported in this build)");
	}
	if (strstr(a->url, "CHANGE-ME") != NULL) {
		push_key(c, "url");
		return cerr(c, "\"url\" still holds the sample's CHANGE-ME "
		    "placeholder: set the broker's real credentials");
	}
	if (feeder_amqp_check_url(a->url, why, sizeof(why)) != 0) {
		push_key(c, "url");
		return cerr(c, "%s", why);
	}
	for (t = types; *t != NULL; t++)
		if (strcmp(*t, a->exchange_type) == 0)
			break;
	if (*t == NULL) {
		push_key(c, "exchange_type");
		return cerr(c, "unknown exchange_type \"%s\" (direct, fanout, "
		    "topic, headers)", a->exchange_type);
	}
	if ((b = json_object_get(conf, "bindings")) == NULL)
		return 0;
	push_key(c, "bindings");
	if (!json_is_array(b))
		return cerr(c, "\"bindings\" must be an array of exchange names");
	if (json_array_size(b) > CFG_MAX_BINDINGS)
		return cerr(c, "more than %d bindings", CFG_MAX_BINDINGS);
	json_array_foreach(b, i, v) {
		push_idx(c, i);
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return cerr(c, "an exchange name must be a non-empty "
			    "string");
		if (json_string_length(v) >= CFG_NAME_MAX)
			return cerr(c, "exchange name longer than %d bytes",
			    CFG_NAME_MAX - 1);
		memcpy(a->bindings[i], json_string_value(v),
		    json_string_length(v) + 1);
		a->nbindings++;
		pop(c);
	}
	pop(c);
	return 0;
}

/*
 * HTTPInput: {"namespace": ..., "handler": "HTTPInput", "config":
 * {"listen_address": "127.0.0.1", "port": 8080, "secret": ..., "token": ...,
 * "allow_anonymous": false, "max_connections": 64, "timeout": 10}}.
 */
static int
parse_http(struct jctx *c, json_t *conf, struct cfg_feeder *f)
{
	static const char *const known[] = { "listen_address", "port",
	    "secret", "token", "allow_anonymous", "max_connections", "timeout",
	    NULL };
	struct cfg_http *h = &f->http;
	long long port = 8080, maxconn = 64, timeout = 10;

	snprintf(h->listen_address, sizeof(h->listen_address), "127.0.0.1");
	if (conf != NULL) {
		if (want_object(c, conf, "\"config\"") != 0)
			return -1;
		warn_unknown(c, conf, known, "HTTPInput");
		if (get_str(c, conf, "listen_address", h->listen_address,
		    sizeof(h->listen_address)) != 0 ||
		    get_int(c, conf, "port", 0, 65535, &port) != 0 ||
		    get_str(c, conf, "secret", h->secret, sizeof(h->secret)) != 0 ||
		    get_str(c, conf, "token", h->token, sizeof(h->token)) != 0 ||
		    get_bool(c, conf, "allow_anonymous",
		    &h->allow_anonymous) != 0 ||
		    get_int(c, conf, "max_connections", 1, 100000, &maxconn) != 0 ||
		    get_int(c, conf, "timeout", 1, 3600, &timeout) != 0)
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
			push_key(c, "listen_address");
			return cerr(c, "\"%s\" is not a numeric IPv4 or IPv6 "
			    "address", h->listen_address);
		}
		snprintf(uri, sizeof(uri), strchr(h->listen_address, ':') ?
		    "tcp://[%s]:%d" : "tcp://%s:%d", h->listen_address, h->port);
		add_listener(c, uri, LS_HTTP, 1, conf);
	}
	/* the sample configuration's placeholders are no credentials */
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "token" : "secret";
		if (strncmp(i ? h->token : h->secret, "CHANGE-ME", 9) == 0) {
			push_key(c, key);
			return cerr(c, "\"%s\" is still the sample's placeholder: "
			    "set a real one (or remove it)", key);
		}
	}
	if (h->secret[0] == '\0' && h->token[0] == '\0' && !h->allow_anonymous)
		cnote(c, LOG_LVL_WARNING, "HTTPInput without \"secret\" or "
		    "\"token\": every request is refused with 401 (set "
		    "\"allow_anonymous\": true to accept them)");
	return 0;
}

static int
parse_feeder(struct jctx *c, json_t *f, const char *h, struct cfg *cfg)
{
	struct cfg_feeder *fd;
	json_t *conf = json_object_get(f, "config");
	int rc;

	if (cfg->nfeeders == CFG_MAX_FEEDERS)
		return cerr(c, "more than %d AMQPInput and HTTPInput feeders",
		    CFG_MAX_FEEDERS);
	fd = &cfg->feeders[cfg->nfeeders];
	memset(fd, 0, sizeof(*fd));
	fd->kind = strcmp(h, "AMQPInput") == 0 ? FEEDER_AMQP : FEEDER_HTTP;
	snprintf(fd->ns, sizeof(fd->ns), "%s", fd->kind == FEEDER_AMQP ?
	    "openstack" : "hooks");
	if (get_str(c, f, "namespace", fd->ns, sizeof(fd->ns)) != 0)
		return -1;
	if (conf != NULL)
		push_key(c, "config");
	rc = fd->kind == FEEDER_AMQP ? parse_amqp(c, conf, fd) :
	    parse_http(c, conf, fd);
	if (rc != 0)
		return -1;
	if (conf != NULL)
		pop(c);
	cfg->nfeeders++;
	return 0;
}

static int
parse_feeders(struct jctx *c, json_t *feeds, struct cfg *cfg)
{
	json_t *list, *f;
	size_t i;

	if (want_object(c, feeds, "\"feeds\"") != 0)
		return -1;
	warn_unknown(c, feeds, (const char *const[]){ "feeders", "aggregator",
	    NULL }, "feeds");
	if (json_object_get(feeds, "aggregator") != NULL) {
		/* where the ancestor's feeder processes pushed their events */
		push_key(c, "aggregator");
		cnote(c, LOG_LVL_DEBUG, "\"aggregator\" ignored: feeders run "
		    "inside event-router");
		pop(c);
	}
	list = json_object_get(feeds, "feeders");
	if (list == NULL)
		return 0;
	push_key(c, "feeders");
	if (!json_is_array(list))
		return cerr(c, "\"feeders\" must be an array");
	cfg->nreps = 0;
	cfg->nfeeders = 0;
	json_array_foreach(list, i, f) {
		const char *h;
		push_idx(c, i);
		if (want_object(c, f, "a feeder") != 0)
			return -1;
		h = json_string_value(json_object_get(f, "handler"));
		if (is_disabled(f)) {
			log_debug("feeder %zu (%s) is disabled", i, h ? h : "?");
			pop(c);
			continue;
		}
		if (h != NULL && strcmp(h, "ZMQInput") == 0) {
			struct cfg_rep *r;
			json_t *conf = json_object_get(f, "config");
			if (cfg->nreps == CFG_MAX_REP)
				return cerr(c, "more than %d ZMQInput feeders",
				    CFG_MAX_REP);
			r = &cfg->reps[cfg->nreps];
			snprintf(r->uri, sizeof(r->uri), "%s", CFG_DEFAULT_REP);
			snprintf(r->ns, sizeof(r->ns), "local");
			if (get_str(c, f, "namespace", r->ns, sizeof(r->ns)) != 0)
				return -1;
			if (conf != NULL) {
				push_key(c, "config");
				if (parse_endpoint(c, conf, "zmq.REP", r->uri,
				    sizeof(r->uri)) != 0)
					return -1;
				add_listener(c, r->uri, LS_REP, 1, conf);
				pop(c);
			} else {
				add_listener(c, r->uri, LS_REP, 1, NULL);
			}
			cfg->nreps++;
		} else if (h != NULL && (strcmp(h, "AMQPInput") == 0 ||
		    strcmp(h, "HTTPInput") == 0)) {
			if (parse_feeder(c, f, h, cfg) != 0)
				return -1;
		} else {
			push_key(c, "handler");
			return cerr(c, "unknown feeder handler \"%s\" (known: "
			    "ZMQInput, AMQPInput, HTTPInput)", h != NULL ? h : "");
		}
		pop(c);
	}
	pop(c);
	return 0;
}

/*
 * A store file that a start could not open whatever the permissions: the
 * path names a directory, or a parent is a file.  Missing directories are
 * fine (the store creates them); access rights are found at the start.
 */
static int
check_store_file(struct jctx *c, json_t *st, const char *key,
    const char *path)
{
	char dir[4096];
	struct stat sb;
	char *slash;

	if (json_object_get(st, key) == NULL)
		return 0;
	push_key(c, key);
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return cerr(c, "\"%s\" is a directory; name the database file, "
		    "such as \"%s/events.db\"", path, path);
	snprintf(dir, sizeof(dir), "%s", path);
	while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &sb) != 0)
			continue;	/* missing: created at the start */
		if (!S_ISDIR(sb.st_mode))
			return cerr(c, "\"%s\": \"%s\" is not a directory",
			    path, dir);
		break;
	}
	pop(c);
	return 0;
}

static int
parse_store(struct jctx *c, json_t *st, struct cfg *cfg)
{
	static const char *const known[] = { "type", "path", "uri", "ttl_days",
	    "spool_path", "spool_max", NULL };
	char type[32] = "sqlite", why[512];

	if (want_object(c, st, "\"store\"") != 0)
		return -1;
	warn_unknown(c, st, known, "store");
	if (get_str(c, st, "type", type, sizeof(type)) != 0 ||
	    get_str(c, st, "path", cfg->store_path, sizeof(cfg->store_path)) != 0 ||
	    get_str(c, st, "uri", cfg->store_uri, sizeof(cfg->store_uri)) != 0 ||
	    get_num(c, st, "ttl_days", 0, CFG_TTL_DAYS_MAX,
	    &cfg->store_ttl_days) != 0 ||
	    get_str(c, st, "spool_path", cfg->store_spool_path,
	    sizeof(cfg->store_spool_path)) != 0 ||
	    get_int(c, st, "spool_max", 1, 1000000000LL,
	    &cfg->store_spool_max) != 0)
		return -1;
	push_key(c, "type");
	if (strcmp(type, "sqlite") == 0)
		cfg->store_type = STORE_SQLITE;
	else if (strcmp(type, "none") == 0)
		cfg->store_type = STORE_NONE;
	else if (strcmp(type, "mongodb") == 0)
		cfg->store_type = STORE_MONGODB;
	else
		return cerr(c, "unknown store type \"%s\" (known: sqlite, "
		    "mongodb, none)", type);
	pop(c);
	if (cfg->store_type != STORE_MONGODB) {
		static const char *const mongo_only[] = { "uri", "ttl_days",
		    "spool_path", "spool_max", NULL };
		for (const char *const *k = mongo_only; *k != NULL; k++) {
			if (json_object_get(st, *k) == NULL)
				continue;
			push_key(c, *k);
			cnote(c, LOG_LVL_WARNING, "\"%s\" applies to the mongodb "
			    "store only; ignored for type \"%s\"", *k, type);
			pop(c);
		}
		return cfg->store_type == STORE_SQLITE ?
		    check_store_file(c, st, "path", cfg->store_path) : 0;
	}
	if (json_object_get(st, "uri") == NULL)
		return cerr(c, "store type \"mongodb\" needs \"uri\", e.g. "
		    "\"mongodb://127.0.0.1:27017/%s\"", STORE_MONGO_DEFAULT_DB);
	if (store_mongo_check_uri(cfg->store_uri, why, sizeof(why)) != 0) {
		push_key(c, "uri");
		return cerr(c, "store uri \"%s\": %s", cfg->store_uri, why);
	}
	if (cfg->store_spool_path[0] == '\0') {
		push_key(c, "spool_path");
		return cerr(c, "\"spool_path\" must not be empty");
	}
	return check_store_file(c, st, "spool_path", cfg->store_spool_path);
}

static int
parse_subscriber(struct jctx *c, json_t *s, struct cfg *cfg)
{
	static const char *const known[] = { "uri", "framing",
	    "max_concurrency", "queue_size", "shutdown_grace",
	    "python_workers", "python_max_rss_mb", NULL };
	char framing[16] = "";
	long long mc = cfg->max_concurrency, qs = cfg->queue_size;
	long long pw = cfg->python_workers, rss = cfg->python_max_rss_mb;
	char why[CFG_URI_MAX + 128];

	if (want_object(c, s, "\"subscriber\"") != 0)
		return -1;
	warn_unknown(c, s, known, "subscriber");
	if (get_str(c, s, "uri", cfg->sub_uri, sizeof(cfg->sub_uri)) != 0 ||
	    get_str(c, s, "framing", framing, sizeof(framing)) != 0 ||
	    get_int(c, s, "max_concurrency", 1, 4096, &mc) != 0 ||
	    get_int(c, s, "queue_size", 1, 10000000, &qs) != 0 ||
	    get_num(c, s, "shutdown_grace", 0, 86400, &cfg->shutdown_grace) != 0 ||
	    get_int(c, s, "python_workers", 1, 256, &pw) != 0 ||
	    get_int(c, s, "python_max_rss_mb", 16, 1 << 20, &rss) != 0)
		return -1;
	if (json_object_get(s, "uri") != NULL &&
	    cfg_check_endpoint(cfg->sub_uri, 0, why, sizeof(why)) != 0) {
		push_key(c, "uri");
		return cerr(c, "%s", why);
	}
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

int
cfg_load(const char *path, struct cfg *cfg, char *err, size_t errsz)
{
	struct listener ls[MAX_LISTENERS];
	struct jctx c = { .err = err, .errsz = errsz, .ls = ls };
	const char *key;
	json_t *root, *v;
	char *text = NULL;
	int rc = -1, npull = 0, npub = 0, nrep = 0;

	cfg_defaults(cfg);
	if (path == NULL) {
		path = CFG_DEFAULT_PATH;
		FILE *f = fopen(path, "r");
		if (f == NULL && errno == ENOENT)
			return 1;
		if (f != NULL)
			fclose(f);
	}
	root = load_json(&c, path, &text);
	if (root == NULL)
		return -1;
	if (want_object(&c, root, "the configuration") != 0)
		goto out;

	json_object_foreach(root, key, v) {
		push_key(&c, key);
		if (strcmp(key, "aggregator") == 0) {
			static const char *const known[] = { "config", NULL };
			json_t *conf;
			if (want_object(&c, v, "\"aggregator\"") != 0)
				goto out;
			warn_unknown(&c, v, known, "aggregator");
			conf = json_object_get(v, "config");
			if (conf != NULL) {
				push_key(&c, "config");
				if (parse_endpoint(&c, conf, "zmq.PULL",
				    cfg->pull_uri, sizeof(cfg->pull_uri)) != 0)
					goto out;
				add_listener(&c, cfg->pull_uri, LS_PULL, 1,
				    conf);
				pop(&c);
			}
		} else if (strcmp(key, "outputs") == 0) {
			if (parse_outputs(&c, v, cfg) != 0)
				goto out;
		} else if (strcmp(key, "feeds") == 0) {
			if (parse_feeders(&c, v, cfg) != 0)
				goto out;
		} else if (strcmp(key, "logging") == 0) {
			static const char *const known[] = { "loglevel", "dir",
			    "format", NULL };
			char lvl[32] = "";
			if (want_object(&c, v, "\"logging\"") != 0 ||
			    get_str(&c, v, "loglevel", lvl, sizeof(lvl)) != 0 ||
			    get_str(&c, v, "dir", cfg->log_dir,
			    sizeof(cfg->log_dir)) != 0)
				goto out;
			warn_unknown(&c, v, known, "logging");
			if (json_object_get(v, "format") != NULL) {
				/* the ancestor's Python logging format */
				push_key(&c, "format");
				cnote(&c, LOG_LVL_DEBUG, "\"format\" ignored: "
				    "the log format is fixed");
				pop(&c);
			}
			if (lvl[0] != '\0') {
				if (log_level_parse(lvl, &cfg->level) != 0) {
					push_key(&c, "loglevel");
					cerr(&c, "unknown log level \"%s\" (DEBUG, "
					    "INFO, WARNING, ERROR)", lvl);
					goto out;
				}
				cfg->have_level = 1;
			}
		} else if (strcmp(key, "store") == 0) {
			if (parse_store(&c, v, cfg) != 0)
				goto out;
		} else if (strcmp(key, "limits") == 0) {
			static const char *const known[] = { "max_event_size",
			    "publish_wait_ms", NULL };
			long long m = (long long)cfg->max_event_size;
			long long w = cfg->publish_wait_ms;
			if (want_object(&c, v, "\"limits\"") != 0 ||
			    get_int(&c, v, "max_event_size", 64,
			    256LL * 1024 * 1024, &m) != 0 ||
			    get_int(&c, v, "publish_wait_ms", 0, 60000, &w) != 0)
				goto out;
			warn_unknown(&c, v, known, "limits");
			cfg->max_event_size = (size_t)m;
			cfg->publish_wait_ms = (int)w;
		} else if (strcmp(key, "subscriber") == 0) {
			if (parse_subscriber(&c, v, cfg) != 0)
				goto out;
		} else if (strcmp(key, "celery") == 0 ||
		    strcmp(key, "event_handlers_dir") == 0) {
			/* the ancestor's Celery workers ran its handlers */
			cnote(&c, LOG_LVL_INFO, "\"%s\" (the ancestor's Celery "
			    "workers) is not used: event-sub runs the handlers%s; "
			    "ignored", key, key[0] == 'e' ? ", from the directory "
			    "of its --event-handlers" : "");
		} else {
			cnote(&c, LOG_LVL_WARNING, "unknown section \"%s\" "
			    "ignored", key);
		}
		pop(&c);
	}
	/* the sockets the file leaves at their defaults, then the check */
	for (int i = 0; i < c.nls; i++) {
		npull += c.ls[i].what == LS_PULL;
		npub += c.ls[i].what == LS_PUB;
		nrep += c.ls[i].what == LS_REP;
	}
	if (npull == 0)
		add_listener(&c, cfg->pull_uri, LS_PULL, 0, NULL);
	if (npub == 0)
		for (int i = 0; i < cfg->noutputs; i++)
			add_listener(&c, cfg->outputs[i].uri, LS_PUB, 0, NULL);
	if (nrep < cfg->nreps)	/* no feeds.feeders: the default REP */
		add_listener(&c, cfg->reps[0].uri, LS_REP, 0, NULL);
	if (check_listeners(&c) != 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	free(text);
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

/* ---- event-handlers.json ---- */

static int
parse_env(struct jctx *c, json_t *env, struct handler *h)
{
	const char *k;
	json_t *v;
	size_t n = 0;

	if (!json_is_object(env))
		return cerr(c, "\"env\" must be an object of strings");
	h->env = xcalloc(json_object_size(env) + 1, sizeof(char *));
	json_object_foreach(env, k, v) {
		size_t kl = strlen(k);
		push_key(c, k);
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return cerr(c, "environment values must be strings "
			    "without NUL");
		if (kl == 0 || strchr(k, '=') != NULL)
			return cerr(c, "\"%s\" is not a valid environment "
			    "variable name", k);
		if (strcmp(k, "ER_EVENT_ID") == 0 ||
		    strcmp(k, "ER_EVENT_TYPE") == 0 ||
		    strcmp(k, "ER_NAMESPACE") == 0)
			return cerr(c, "%s is set by event-sub for each run", k);
		h->env[n] = xmalloc(kl + json_string_length(v) + 2);
		sprintf(h->env[n], "%s=%s", k, json_string_value(v));
		n++;
		pop(c);
	}
	return 0;
}

/*
 * "user" and "group": resolved now (getpwnam/getgrnam, getgrouplist), so
 * the child only calls setgroups/setgid/setuid between fork and exec.
 */
static int
parse_identity(struct jctx *c, json_t *o, struct handler *h)
{
	char user[256] = "", group[256] = "";

	if (get_str(c, o, "user", user, sizeof(user)) != 0 ||
	    get_str(c, o, "group", group, sizeof(group)) != 0)
		return -1;
	if (user[0] != '\0') {
		struct passwd *pw = getpwnam(user);
		int n = 64;
		gid_t *gl;
		if (pw == NULL) {
			push_key(c, "user");
			return cerr(c, "unknown user \"%s\"", user);
		}
		h->set_user = 1;
		h->uid = pw->pw_uid;
		h->gid = pw->pw_gid;
		gl = xcalloc((size_t)n, sizeof(gid_t));
		if (getgrouplist(user, pw->pw_gid, gl, &n) < 0) {
			gl = xrealloc(gl, (size_t)n * sizeof(gid_t));
			getgrouplist(user, pw->pw_gid, gl, &n);
		}
		h->groups = xcalloc((size_t)n, sizeof(unsigned));
		for (int i = 0; i < n; i++)
			h->groups[i] = gl[i];
		h->ngroups = n;
		free(gl);
	}
	if (group[0] != '\0') {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			push_key(c, "group");
			return cerr(c, "unknown group \"%s\"", group);
		}
		h->set_group = 1;
		h->gid = gr->gr_gid;
	}
	return 0;
}

/*
 * pyfunc handlers run in event-sub's workers, as event-sub's user: refuse
 * "user"/"group" (they would silently not apply), warn about the other
 * shell-only options, and about unknown ones.
 */
static int
pyfunc_options(struct jctx *c, json_t *o)
{
	static const char *const known[] = { "driver", "handler", "timeout",
	    "exclusive", "input", "env", "cwd", "user", "group", NULL };
	static const char *const shell_only[] = { "input", "env", "cwd", NULL };

	for (const char *const *k = (const char *const[]){ "user", "group",
	    NULL }; *k != NULL; k++) {
		if (json_object_get(o, *k) != NULL) {
			push_key(c, *k);
			return cerr(c, "\"%s\" applies to shell handlers only: "
			    "pyfunc handlers run in event-sub's Python workers, "
			    "as event-sub's user", *k);
		}
	}
	for (const char *const *k = shell_only; *k != NULL; k++) {
		if (json_object_get(o, *k) != NULL) {
			push_key(c, *k);
			cnote(c, LOG_LVL_WARNING, "\"%s\" applies to shell "
			    "handlers only; ignored for this pyfunc handler", *k);
			pop(c);
		}
	}
	warn_unknown(c, o, known, "handler");
	return 0;
}

static int
parse_handler(struct jctx *c, json_t *o, struct handler *h)
{
	static const char *const known[] = { "driver", "handler", "timeout",
	    "input", "env", "cwd", "exclusive", "user", "group", NULL };
	const char *drv, *cmd, *in;
	json_t *v;
	int line, col;

	if (want_object(c, o, "a handler") != 0)
		return -1;
	line_col(c->text, locate(c, 0), &line, &col);
	if (asprintf(&h->where, "%s:%d:%d", c->file, line, col) < 0)
		abort();
	h->timeout = 60;

	v = json_object_get(o, "driver");
	drv = json_string_value(v);
	push_key(c, "driver");
	if (v == NULL) {
		pop(c);
		return cerr(c, "handler without \"driver\"");
	}
	if (drv != NULL && strcmp(drv, "shell") == 0)
		h->driver = DRIVER_SHELL;
	else if (drv != NULL && strcmp(drv, "pyfunc") == 0)
		h->driver = DRIVER_PYFUNC;
	else
		return cerr(c, "unknown driver \"%s\" (known: shell, pyfunc)",
		    drv != NULL ? drv : "");
	pop(c);

	v = json_object_get(o, "handler");
	cmd = json_string_value(v);
	if (v == NULL)
		return cerr(c, "handler entry without \"handler\"");
	push_key(c, "handler");
	if (cmd == NULL || cmd[0] == '\0' || strlen(cmd) != json_string_length(v))
		return cerr(c, "\"handler\" must be a non-empty string");
	h->handler = xstrdup(cmd);
	if (h->driver == DRIVER_SHELL) {
		char why[128];
		size_t pos;
		h->argv = util_split_command(cmd, &h->argc, why, sizeof(why), &pos);
		if (h->argv == NULL)
			return cerr(c, "cannot split command: %s at byte %zu",
			    why, pos);
	} else if (strchr(cmd, '.') == NULL || cmd[strlen(cmd) - 1] == '.' ||
	    cmd[0] == '.') {
		return cerr(c, "pyfunc handler must be \"module.function\"");
	}
	pop(c);

	if (get_num(c, o, "timeout", 0.001, 31 * 86400.0, &h->timeout) != 0)
		return -1;
	if ((v = json_object_get(o, "input")) != NULL) {
		in = json_string_value(v);
		push_key(c, "input");
		if (in != NULL && strcmp(in, "argv") == 0)
			h->input = INPUT_ARGV;
		else if (in != NULL && strcmp(in, "stdin") == 0)
			h->input = INPUT_STDIN;
		else if (in != NULL && strcmp(in, "both") == 0)
			h->input = INPUT_BOTH;
		else
			return cerr(c, "\"input\" must be \"argv\", \"stdin\" "
			    "or \"both\"");
		pop(c);
	}
	if ((v = json_object_get(o, "env")) != NULL) {
		push_key(c, "env");
		if (parse_env(c, v, h) != 0)
			return -1;
		pop(c);
	}
	if ((v = json_object_get(o, "cwd")) != NULL) {
		char cwd[4096];
		if (get_str(c, o, "cwd", cwd, sizeof(cwd)) != 0)
			return -1;
		h->cwd = xstrdup(cwd);
	}
	if ((v = json_object_get(o, "exclusive")) != NULL) {
		push_key(c, "exclusive");
		if (!json_is_boolean(v))
			return cerr(c, "\"exclusive\" must be true or false");
		h->exclusive = json_is_true(v);
		pop(c);
	}
	if (parse_identity(c, o, h) != 0)
		return -1;
	if (h->driver == DRIVER_PYFUNC)
		return pyfunc_options(c, o);
	warn_unknown(c, o, known, "handler");
	return 0;
}

struct match_table *
cfg_load_handlers(const char *path, char *err, size_t errsz)
{
	struct jctx c = { .err = err, .errsz = errsz };
	struct match_table *t;
	const char *pat;
	json_t *root, *list;
	char *text = NULL;
	size_t n = 0;

	root = load_json(&c, path, &text);
	if (root == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	if (want_object(&c, root, "event-handlers.json") != 0)
		goto fail;
	t->entries = xcalloc(json_object_size(root) + 1, sizeof(*t->entries));
	json_object_foreach(root, pat, list) {
		struct match_entry *e = &t->entries[n];
		size_t i;
		json_t *o;

		push_key(&c, pat);
		if (pat[0] == '\0') {
			cerr(&c, "a pattern must not be empty");
			goto fail;
		}
		if (!json_is_array(list)) {
			cerr(&c, "the handlers of \"%s\" must be an array", pat);
			goto fail;
		}
		e->pattern = xstrdup(pat);
		e->with_namespace = strchr(pat, ':') != NULL;
		e->handlers = xcalloc(json_array_size(list) + 1,
		    sizeof(*e->handlers));
		t->nentries = ++n;
		json_array_foreach(list, i, o) {
			push_idx(&c, i);
			e->nhandlers = i + 1;
			if (parse_handler(&c, o, &e->handlers[i]) != 0)
				goto fail;
			pop(&c);
		}
		t->nhandlers += e->nhandlers;
		pop(&c);
	}
	json_decref(root);
	free(text);
	return t;
fail:
	json_decref(root);
	free(text);
	match_table_free(t);
	return NULL;
}
