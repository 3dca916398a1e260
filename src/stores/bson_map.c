/* bson_map: JSON and our records to BSON, and back.  See bson_map.h. */
#include <bson/bson.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bson_map.h"
#include "util.h"

/* The router's parse flags (event.c), so we read exactly what it accepted. */
#define BM_JSON_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)

static const char *const reserved_top[] = { "_id", "timestamp_raw", NULL };

static enum bson_map_err
bm_fail(enum bson_map_err e, char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum bson_map_err
bm_fail(enum bson_map_err e, char *why, size_t whysz, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whysz > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return e;
}

const char *
bson_map_escape_key(const char *key, int top, char **buf)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p;
	size_t extra = 0;
	int first = 0;
	char *out, *o;

	*buf = NULL;
	if (top)
		for (const char *const *r = reserved_top; *r != NULL; r++)
			if (strcmp(key, *r) == 0)
				first = 1;
	if (key[0] == '$')
		first = 1;
	for (p = key; *p != '\0'; p++)
		if (*p == '%' || *p == '.')
			extra += 2;
	if (!first && extra == 0)
		return key;
	out = o = xmalloc(strlen(key) + extra + 3);
	for (p = key; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((p == key && first) || ch == '%' || ch == '.') {
			*o++ = '%';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 15];
		} else
			*o++ = (char)ch;
	}
	*o = '\0';
	*buf = out;
	return out;
}

static enum bson_map_err append_value(bson_t *b, const char *key, int top,
    json_t *v, int depth, char *why, size_t whysz);

/* Append the members of object o to b (a document at nesting level depth). */
static enum bson_map_err
append_members(bson_t *b, json_t *o, int top, int depth, char *why,
    size_t whysz)
{
	const char *k;
	json_t *v;
	enum bson_map_err e;

	json_object_foreach(o, k, v) {
		if ((e = append_value(b, k, top, v, depth, why, whysz)) != BM_OK)
			return e;
	}
	return BM_OK;
}

static enum bson_map_err
append_value(bson_t *b, const char *key, int top, json_t *v, int depth,
    char *why, size_t whysz)
{
	char *kbuf, idx[16];
	const char *k = bson_map_escape_key(key, top, &kbuf);
	enum bson_map_err e = BM_OK;
	bson_t child;
	int ok = 1;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (depth + 1 > BSON_MAP_MAX_DEPTH) {
			e = bm_fail(BM_TOO_DEEP, why, whysz, "nested deeper than "
			    "%d levels (MongoDB's limit)", BSON_MAP_MAX_DEPTH);
			break;
		}
		if (json_is_object(v)) {
			ok = bson_append_document_begin(b, k, -1, &child);
			if (ok)
				e = append_members(&child, v, 0, depth + 1, why,
				    whysz);
			if (ok)
				ok = bson_append_document_end(b, &child);
		} else {
			ok = bson_append_array_begin(b, k, -1, &child);
			for (size_t i = 0; ok && e == BM_OK &&
			    i < json_array_size(v); i++) {
				const char *ik;
				bson_uint32_to_string((uint32_t)i, &ik, idx,
				    sizeof(idx));
				e = append_value(&child, ik, 0,
				    json_array_get(v, i), depth + 1, why, whysz);
			}
			if (ok)
				ok = bson_append_array_end(b, &child);
		}
		break;
	case JSON_STRING:
		ok = bson_append_utf8(b, k, -1, json_string_value(v),
		    (int)json_string_length(v));
		break;
	case JSON_INTEGER: {
		json_int_t n = json_integer_value(v);
		if (n >= INT32_MIN && n <= INT32_MAX)
			ok = bson_append_int32(b, k, -1, (int32_t)n);
		else
			ok = bson_append_int64(b, k, -1, (int64_t)n);
		break;
	}
	case JSON_REAL:
		ok = bson_append_double(b, k, -1, json_real_value(v));
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		ok = bson_append_bool(b, k, -1, json_is_true(v));
		break;
	case JSON_NULL:
		ok = bson_append_null(b, k, -1);
		break;
	}
	free(kbuf);
	if (e == BM_OK && !ok)
		e = bm_fail(BM_TOO_LARGE, why, whysz, "over the BSON size limit");
	return e;
}

static json_t *
load(const char *json, size_t len, char *why, size_t whysz)
{
	json_error_t je;
	json_t *root = json_loadb(json, len, BM_JSON_FLAGS, &je);

	if (root == NULL)
		bm_fail(BM_INVALID, why, whysz, "not JSON: %s (line %d, column "
		    "%d)", je.text, je.line, je.column);
	return root;
}

static enum bson_map_err
check_size(bson_t *doc, char *why, size_t whysz)
{
	if (doc->len > BSON_MAP_MAX_SIZE) {
		bm_fail(BM_TOO_LARGE, why, whysz, "document is %u bytes, over "
		    "MongoDB's limit of %d bytes", (unsigned)doc->len,
		    BSON_MAP_MAX_SIZE);
		return BM_TOO_LARGE;
	}
	return BM_OK;
}

/* Seconds (any double) to a BSON date: milliseconds, clamped to int64. */
static int64_t
to_date_ms(double sec)
{
	double ms = sec * 1000.0;

	if (!(ms < 9223372036854775807.0))
		return INT64_MAX;
	if (!(ms > -9223372036854775808.0))
		return INT64_MIN;
	return (int64_t)llround(ms);
}


/* The end of building a document: a failed append (ok 0) means the size
 * limit; the whole document is checked against it too.  On error the
 * document is destroyed. */
static enum bson_map_err
finish_doc(bson_t *doc, enum bson_map_err e, int ok, char *why, size_t whysz)
{
	if (e == BM_OK && !ok)
		e = bm_fail(BM_TOO_LARGE, why, whysz, "over the BSON size limit");
	if (e == BM_OK)
		e = check_size(doc, why, whysz);
	if (e != BM_OK)
		bson_destroy(doc);
	return e;
}

enum bson_map_err
bson_map_event(const struct event *ev, bson_t *doc, char *why, size_t whysz)
{
	json_t *root, *ns, *type, *ts, *v;
	enum bson_map_err e = BM_OK;
	bson_oid_t oid;
	const char *k;
	int ok;

	if (!bson_oid_is_valid(ev->id, strlen(ev->id)) ||
	    strlen(ev->id) != EVENT_ID_LEN)
		return bm_fail(BM_INVALID, why, whysz, "id \"%s\" is not an "
		    "ObjectId", ev->id);
	if ((root = load(ev->json, ev->json_len, why, whysz)) == NULL)
		return BM_INVALID;
	ns = json_object_get(root, "namespace");
	type = json_object_get(root, "event_type");
	ts = json_object_get(root, "timestamp");
	if (!json_is_object(root) || !json_is_string(ns) ||
	    !json_is_string(type) || !json_is_number(ts)) {
		json_decref(root);
		return bm_fail(BM_INVALID, why, whysz, "not a stamped event "
		    "(namespace, event_type, timestamp)");
	}
	bson_oid_init_from_string(&oid, ev->id);
	bson_init(doc);
	ok = bson_append_oid(doc, "_id", 3, &oid) &&
	    bson_append_utf8(doc, "namespace", -1, json_string_value(ns),
	    (int)json_string_length(ns)) &&
	    bson_append_utf8(doc, "event_type", -1, json_string_value(type),
	    (int)json_string_length(type)) &&
	    bson_append_date_time(doc, "timestamp", -1,
	    to_date_ms(json_number_value(ts)));
	if (ok)
		e = append_value(doc, "timestamp_raw", 0, ts, 1, why, whysz);
	json_object_foreach(root, k, v) {
		if (!ok || e != BM_OK)
			break;
		if (strcmp(k, "id") == 0 || strcmp(k, "namespace") == 0 ||
		    strcmp(k, "event_type") == 0 || strcmp(k, "timestamp") == 0)
			continue;
		e = append_value(doc, k, 1, v, 1, why, whysz);
	}
	json_decref(root);
	return finish_doc(doc, e, ok, why, whysz);
}

enum bson_map_err
bson_map_append_json(bson_t *parent, const char *key, const char *json,
    size_t len, int depth, char *why, size_t whysz)
{
	json_t *v = load(json, len, why, whysz);
	enum bson_map_err e;

	if (v == NULL)
		return BM_INVALID;
	e = append_value(parent, key, 0, v, depth, why, whysz);
	json_decref(v);
	return e;
}

/* Captured output: a string when it is UTF-8 (NUL allowed), else binary. */
static int
append_output(bson_t *b, const char *key, const char *s, size_t n)
{
	if (s == NULL)
		return bson_append_null(b, key, -1);
	if (n > INT32_MAX)
		return 0;
	if (bson_utf8_validate(s, n, true))
		return bson_append_utf8(b, key, -1, s, (int)n);
	return bson_append_binary(b, key, -1, BSON_SUBTYPE_BINARY,
	    (const uint8_t *)s, (uint32_t)n);
}

static int
append_str_or_null(bson_t *b, const char *key, const char *s)
{
	if (s == NULL)
		return bson_append_null(b, key, -1);
	return append_output(b, key, s, strlen(s));
}

enum bson_map_err
bson_map_result(const struct run_result *r, const bson_oid_t *oid,
    bson_t *doc, char *why, size_t whysz)
{
	enum bson_map_err e = BM_OK;
	bson_oid_t eid;
	int ok;

	bson_init(doc);
	ok = bson_append_oid(doc, "_id", 3, oid);
	if (ok && r->event_id != NULL &&
	    strlen(r->event_id) == EVENT_ID_LEN &&
	    bson_oid_is_valid(r->event_id, EVENT_ID_LEN)) {
		bson_oid_init_from_string(&eid, r->event_id);
		ok = bson_append_oid(doc, "event_id", -1, &eid);
	} else if (ok)
		ok = append_str_or_null(doc, "event_id", r->event_id);
	ok = ok && append_str_or_null(doc, "driver", r->driver) &&
	    append_str_or_null(doc, "handler", r->handler) &&
	    append_str_or_null(doc, "status", run_status_name(r->status)) &&
	    (r->has_exit_code ? bson_append_int32(doc, "exit_code", -1,
	    r->exit_code) : bson_append_null(doc, "exit_code", -1)) &&
	    (r->signal ? bson_append_int32(doc, "signal", -1, r->signal) :
	    bson_append_null(doc, "signal", -1)) &&
	    bson_append_date_time(doc, "started_at", -1,
	    to_date_ms(r->started_at)) &&
	    bson_append_double(doc, "duration_ms", -1, r->duration_ms) &&
	    append_output(doc, "stdout", r->out, r->out_len) &&
	    append_output(doc, "stderr", r->err, r->err_len) &&
	    append_str_or_null(doc, "error", r->error);
	if (ok && r->data == NULL)
		ok = bson_append_null(doc, "data", -1);
	else if (ok) {
		bson_t tmp = BSON_INITIALIZER;
		e = bson_map_append_json(&tmp, "data", r->data, strlen(r->data),
		    1, why, whysz);
		if (e == BM_INVALID) {	/* not JSON: keep the text */
			e = BM_OK;
			ok = append_str_or_null(doc, "data", r->data);
		} else if (e == BM_OK)
			ok = bson_concat(doc, &tmp);
		bson_destroy(&tmp);
	}
	ok = ok && bson_append_bool(doc, "redelivered", -1, r->redelivered != 0);
	/* only on a replay's runs: the documents of others keep their shape */
	if (r->replayed)
		ok = ok && bson_append_bool(doc, "replayed", -1, 1);
	return finish_doc(doc, e, ok, why, whysz);
}

/* ---- back: a stored event document to its text ---- */

/* Percent-decode key (bson_map_escape_key()'s escapes) into a new string. */
static char *
unescape_key(const char *key)
{
	char *out = xmalloc(strlen(key) + 1), *o = out;
	unsigned v;

	for (const char *p = key; *p != '\0'; p++) {
		if (p[0] == '%' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2]) &&
		    sscanf(p + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			p += 2;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

static json_t *to_json(bson_iter_t *it);

/* The members of the document or array it is at. */
static json_t *
to_json_container(bson_iter_t *it, int array)
{
	bson_iter_t sub;
	json_t *c = array ? json_array() : json_object(), *v;
	char *k;
	int ok = 1;

	if (!bson_iter_recurse(it, &sub)) {
		json_decref(c);
		return NULL;
	}
	while (ok && bson_iter_next(&sub)) {
		if ((v = to_json(&sub)) == NULL)
			ok = 0;
		else if (array)
			ok = json_array_append_new(c, v) == 0;
		else {
			k = unescape_key(bson_iter_key(&sub));
			ok = json_object_set_new(c, k, v) == 0;
			free(k);
		}
	}
	if (!ok) {
		json_decref(c);
		return NULL;
	}
	return c;
}

/* The value it is at, as bson_map_append_json() mapped it; NULL for a
 * type it never makes. */
static json_t *
to_json(bson_iter_t *it)
{
	const char *s;
	uint32_t n;

	switch (bson_iter_type(it)) {
	case BSON_TYPE_UTF8:
		s = bson_iter_utf8(it, &n);
		return json_stringn(s, n);
	case BSON_TYPE_INT32:
		return json_integer(bson_iter_int32(it));
	case BSON_TYPE_INT64:
		return json_integer(bson_iter_int64(it));
	case BSON_TYPE_DOUBLE:
		return json_real(bson_iter_double(it));
	case BSON_TYPE_BOOL:
		return json_boolean(bson_iter_bool(it));
	case BSON_TYPE_NULL:
		return json_null();
	case BSON_TYPE_DOCUMENT:
		return to_json_container(it, 0);
	case BSON_TYPE_ARRAY:
		return to_json_container(it, 1);
	default:
		return NULL;
	}
}

char *
bson_map_event_text(const bson_t *doc, size_t *len)
{
	bson_iter_t it;
	json_t *root = json_object(), *v;
	char id[EVENT_ID_LEN + 1], *k, *text = NULL;
	const char *key;
	int ok = bson_iter_init(&it, doc);

	while (ok && bson_iter_next(&it)) {
		key = bson_iter_key(&it);
		if (strcmp(key, "_id") == 0) {
			ok = BSON_ITER_HOLDS_OID(&it);
			if (ok)
				bson_oid_to_string(bson_iter_oid(&it), id);
			ok = ok && json_object_set_new(root, "id",
			    json_string(id)) == 0;
		} else if (strcmp(key, "timestamp") != 0) {
			k = strcmp(key, "timestamp_raw") == 0 ?
			    xstrdup("timestamp") : unescape_key(key);
			ok = (v = to_json(&it)) != NULL &&
			    json_object_set_new(root, k, v) == 0;
			free(k);
		}
	}
	if (ok && json_object_get(root, "id") != NULL &&
	    (text = json_dumps(root, JSON_COMPACT)) != NULL)
		*len = strlen(text);
	json_decref(root);
	return text;
}
