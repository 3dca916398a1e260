/*
 * cfg_reader: typed getters over one JSON file.  See cfg_reader.h.
 *
 * jansson does the parsing and reports the position of syntax errors.  It
 * keeps no positions for values, so for errors about a value (a wrong type,
 * an unknown driver) locate() walks the already validated text to the
 * value's path and reports its line and column the way jansson counts them.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_reader.h"
#include "util.h"

#define J(n) ((const json_t *)(const void *)(n))
#define MAX_DEPTH 8

struct pel {
	const char *key;	/* NULL: array index */
	size_t idx;
};

/*
 * A socket the daemon will listen on, for the check that no two of them
 * share an address (a start would fail to bind the second one).
 */
struct listener {
	char uri[256];		/* tcp://HOST:PORT, ipc://..., inproc://... */
	const char *what;	/* "the PULL input (aggregator)" */
	int line, col;		/* 0: a default, not in the file */
	int zmq;		/* a ZeroMQ socket (cfg_listen_zmq()) */
};

struct cfg_reader {
	const char *file;
	char *text;
	size_t len;
	json_t *root;
	struct pel path[MAX_DEPTH];
	int depth;
	char *err;
	size_t errsz;
	struct listener ls[CFG_READER_LISTENERS];
	int nls;
};

void
cfg_push(struct cfg_reader *c, const char *key)
{
	c->path[c->depth].key = key;
	c->path[c->depth].idx = 0;
	c->depth++;
}

void
cfg_push_idx(struct cfg_reader *c, size_t idx)
{
	c->path[c->depth].key = NULL;
	c->path[c->depth].idx = idx;
	c->depth++;
}

void
cfg_pop(struct cfg_reader *c)
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
locate(const struct cfg_reader *c, int at_key)
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
				m = key_eq(ks, (size_t)(p - ks),
				    c->path[i].key);
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
where_fmt(const struct cfg_reader *c, int at_key, char *buf, size_t sz,
    const char *fmt, va_list ap)
{
	int line, col, n;

	line_col(c->text, locate(c, at_key), &line, &col);
	n = snprintf(buf, sz, "%s:%d:%d: ", c->file, line, col);
	if (n >= 0 && (size_t)n < sz)
		vsnprintf(buf + n, sz - (size_t)n, fmt, ap);
}

static int
verror(struct cfg_reader *c, const char *key, int at_key, const char *fmt,
    va_list ap)
{
	if (c == NULL)
		return -1;
	if (key != NULL)
		cfg_push(c, key);
	where_fmt(c, at_key, c->err, c->errsz, fmt, ap);
	if (key != NULL)
		cfg_pop(c);
	return -1;
}

int
cfg_error(struct cfg_reader *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verror(c, key, 0, fmt, ap);
	va_end(ap);
	return rc;
}

int
cfg_key_error(struct cfg_reader *c, const char *key, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = verror(c, key, 1, fmt, ap);
	va_end(ap);
	return rc;
}

void
cfg_note(struct cfg_reader *c, const char *key, enum log_level lvl,
    const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	if (c == NULL) {
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		log_msg(lvl, "%s", buf);
		return;
	}
	if (key != NULL)
		cfg_push(c, key);
	where_fmt(c, 1, buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (key != NULL)
		cfg_pop(c);
	log_msg(lvl, "%s", buf);
}

void
cfg_where(const struct cfg_reader *c, char *buf, size_t sz)
{
	int line, col;

	line_col(c->text, locate(c, 0), &line, &col);
	snprintf(buf, sz, "%s:%d:%d", c->file, line, col);
}

void
cfg_listen(struct cfg_reader *c, const char *uri, const char *what,
    const struct cfg_node *node)
{
	static const char *const keys[] = { "uri", "port", "listen_address",
	    NULL };
	const char *const *k = keys;
	const json_t *conf = J(node);
	struct listener *l;

	if (c == NULL || c->nls == CFG_READER_LISTENERS)
		return;
	l = &c->ls[c->nls++];
	snprintf(l->uri, sizeof(l->uri), "%s", uri);
	l->what = what;
	l->line = l->col = 0;
	if (c->depth == 0)
		return;		/* a default: not in the file */
	while (json_is_object(conf) && *k != NULL &&
	    json_object_get(conf, *k) == NULL)
		k++;
	if (json_is_object(conf) && *k != NULL)
		cfg_push(c, *k);
	line_col(c->text, locate(c, 0), &l->line, &l->col);
	if (json_is_object(conf) && *k != NULL)
		cfg_pop(c);
}

void
cfg_listen_zmq(struct cfg_reader *c, const char *uri, const char *what,
    const struct cfg_node *node)
{
	int n = c != NULL ? c->nls : 0;

	cfg_listen(c, uri, what, node);
	if (c != NULL && c->nls > n)
		c->ls[c->nls - 1].zmq = 1;
}

void
cfg_exposed_listeners(struct cfg_reader *c, int (*exposed)(const char *uri),
    void (*fn)(void *arg, const char *at, const char *uri, const char *what),
    void *arg)
{
	for (int i = 0; c != NULL && i < c->nls; i++) {
		const struct listener *l = &c->ls[i];
		char at[512] = "";
		if (!l->zmq || !exposed(l->uri))
			continue;
		if (l->line != 0)
			snprintf(at, sizeof(at), "%s:%d:%d: ", c->file, l->line,
			    l->col);
		fn(arg, at, l->uri, l->what);
	}
}

int
cfg_check_listeners(struct cfg_reader *c,
    int (*clash)(const char *a, const char *b))
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
			/* an HTTP listener's tcp:// is ours, not its
			 * configuration's: HOST:PORT as written there */
			snprintf(c->err, c->errsz, "%s:%d:%d: \"%s\" is also "
			    "the %saddress of %s%s: two sockets cannot listen "
			    "on one address", c->file, b->line, b->col,
			    !b->zmq && strncmp(b->uri, "tcp://", 6) == 0 ?
			    b->uri + 6 : b->uri, a->line == 0 ? "default " : "",
			    a->what, at);
			return -1;
		}
	}
	return 0;
}

struct cfg_reader *
cfg_reader_open(const char *path, size_t maxlen, char *err, size_t errsz,
    const struct cfg_node **root)
{
	struct cfg_reader *c = xcalloc(1, sizeof(*c));
	json_error_t je;

	c->err = err;
	c->errsz = errsz;
	c->file = path;
	c->text = util_read_file_bounded(path, maxlen, &c->len);
	if (c->text == NULL) {
		if (errno == ETIMEDOUT)
			snprintf(err, errsz, "%s: no end of file within %d s (a "
			    "FIFO, pipe or device whose writer keeps it open)",
			    path, UTIL_READ_WAIT_MS / 1000);
		else
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
		free(c);
		return NULL;
	}
	if (c->len >= 3 && memcmp(c->text, "\xef\xbb\xbf", 3) == 0) {
		/* jansson's "invalid token near 'BOM'" shows nothing */
		snprintf(err, errsz, "%s:1:1: a UTF-8 byte order mark (BOM): "
		    "JSON text starts without one (RFC 8259)", path);
		cfg_reader_close(c);
		return NULL;
	}
	c->root = json_loadb(c->text, c->len, JSON_REJECT_DUPLICATES, &je);
	if (c->root == NULL) {
		snprintf(err, errsz, "%s:%d:%d: %s", path,
		    je.line > 0 ? je.line : 1, je.column > 0 ? je.column : 1,
		    json_error_code(&je) == json_error_null_character ?
		    "\\u0000 is not allowed in a string here" :
		    json_error_code(&je) == json_error_null_byte_in_key ?
		    "\\u0000 is not allowed in a key" : je.text);
		cfg_reader_close(c);
		return NULL;
	}
	*root = (const struct cfg_node *)(const void *)c->root;
	return c;
}

void
cfg_reader_close(struct cfg_reader *c)
{
	if (c == NULL)
		return;
	json_decref(c->root);
	free(c->text);
	free(c);
}

const char *
cfg_file(const struct cfg_reader *c)
{
	return c->file;
}

/* ---- values ---- */

const struct cfg_node *
cfg_member(const struct cfg_node *obj, const char *key)
{
	return (const struct cfg_node *)(const void *)json_object_get(J(obj),
	    key);
}

const char *
cfg_string(const struct cfg_node *n)
{
	const json_t *v = J(n);

	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

int
cfg_is_true(const struct cfg_node *n)
{
	return json_is_true(J(n));
}

int
cfg_is_array(const struct cfg_node *n)
{
	return json_is_array(J(n));
}

int
cfg_is_object(const struct cfg_node *n)
{
	return json_is_object(J(n));
}

size_t
cfg_size(const struct cfg_node *n)
{
	return json_is_object(J(n)) ? json_object_size(J(n)) :
	    json_array_size(J(n));
}

int
cfg_foreach(struct cfg_reader *c, const struct cfg_node *obj,
    cfg_member_fn fn, void *arg)
{
	const char *key;
	json_t *v;
	int rc;

	json_object_foreach((json_t *)(uintptr_t)J(obj), key, v) {
		cfg_push(c, key);
		rc = fn(c, key, (const struct cfg_node *)v, arg);
		if (rc != 0)
			return rc;
		cfg_pop(c);
	}
	return 0;
}

const struct cfg_node *
cfg_array_get(const struct cfg_node *n, size_t idx)
{
	return (const struct cfg_node *)(const void *)json_array_get(J(n), idx);
}

/* ---- typed getters: each reports the value's position on error ---- */

int
cfg_get_str(struct cfg_reader *c, const struct cfg_node *obj, const char *key,
    char *out, size_t outsz)
{
	const json_t *v = json_object_get(J(obj), key);

	if (v == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return cfg_error(c, key, "\"%s\" must be a non-empty string",
		    key);
	if (json_string_length(v) >= outsz)
		return cfg_error(c, key, "\"%s\" is longer than %zu bytes", key,
		    outsz - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int
cfg_get_int(struct cfg_reader *c, const struct cfg_node *obj, const char *key,
    long long lo, long long hi, long long *out)
{
	const json_t *v = json_object_get(J(obj), key);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return cfg_error(c, key, "\"%s\" must be an integer from %lld "
		    "to %lld", key, lo, hi);
	*out = json_integer_value(v);
	return 0;
}

int
cfg_get_num(struct cfg_reader *c, const struct cfg_node *obj, const char *key,
    double lo, double hi, double *out)
{
	const json_t *v = json_object_get(J(obj), key);

	if (v == NULL)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < lo ||
	    json_number_value(v) > hi)
		return cfg_error(c, key, "\"%s\" must be a number from %.15g "
		    "to %.15g", key, lo, hi);
	*out = json_number_value(v);
	return 0;
}

int
cfg_get_bool(struct cfg_reader *c, const struct cfg_node *obj, const char *key,
    int *out)
{
	const json_t *v = json_object_get(J(obj), key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return cfg_error(c, key, "\"%s\" must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

int
cfg_want_object(struct cfg_reader *c, const struct cfg_node *v,
    const char *what)
{
	if (json_is_object(J(v)))
		return 0;
	return cfg_error(c, NULL, "%s must be a JSON object", what);
}

void
cfg_list_add(char *buf, size_t sz, const char *sep, const char *name)
{
	size_t n = strlen(buf);

	if (n < sz)
		snprintf(buf + n, sz - n, "%s%s", n > 0 ? sep : "", name);
}

void
cfg_warn_unknown(struct cfg_reader *c, const struct cfg_node *obj,
    const char *const *known, const char *what)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)(uintptr_t)J(obj), key, v) {
		const char *const *k;
		for (k = known; *k != NULL; k++)
			if (strcmp(*k, key) == 0)
				break;
		if (*k == NULL)
			cfg_note(c, key, LOG_LVL_WARNING, "unknown %s option "
			    "\"%s\" ignored", what, key);
	}
}
