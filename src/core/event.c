/* event: parse, validate, stamp, serialize.  See include/event.h. */
#include <bson/bson.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "event_json.h"
#include "event_scan.h"
#include "util.h"

static const char *const err_codes[EV_ERR_COUNT] = {
	[EV_OK] = "ok",
	[EV_INVALID_JSON] = "invalid_json",
	[EV_INVALID_UTF8] = "invalid_utf8",
	[EV_NOT_AN_OBJECT] = "not_an_object",
	[EV_DUPLICATE_KEY] = "duplicate_key",
	[EV_NUL_IN_FIELD] = "nul_in_field",
	[EV_MISSING_EVENT_TYPE] = "missing_event_type",
	[EV_EMPTY_EVENT_TYPE] = "empty_event_type",
	[EV_INVALID_EVENT_TYPE] = "invalid_event_type",
	[EV_INVALID_NAMESPACE] = "invalid_namespace",
	[EV_INVALID_TIMESTAMP] = "invalid_timestamp",
	[EV_INTEGER_OUT_OF_RANGE] = "integer_out_of_range",
	[EV_NON_FINITE_NUMBER] = "non_finite_number",
	[EV_TOO_LARGE] = "too_large",
	[EV_MULTIPART] = "multipart",
	[EV_INVALID_ENVELOPE] = "invalid_envelope",
	[EV_STORE_UNAVAILABLE] = "store_unavailable",
	[EV_INVALID_HOPS] = "invalid_hops",
	[EV_LOOP_DETECTED] = "loop_detected",
};


const char *
event_err_code(enum event_err code)
{
	if ((int)code < 0 || code >= EV_ERR_COUNT)
		return "internal";
	return err_codes[code];
}

int
event_fail(struct event_error *err, enum event_err code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
event_fail_decode(struct event_error *err, const json_error_t *je,
    const char *buf, size_t len)
{
	enum json_error_code jc = json_error_code(je);
	json_error_t clamped = *je;

	/* jansson says column 0 at the end of input; ours count from 1 */
	if (clamped.line < 1)
		clamped.line = 1;
	if (clamped.column < 1)
		clamped.column = 1;
	je = &clamped;

	switch (jc) {
	case json_error_invalid_utf8:
		return event_fail(err, EV_INVALID_UTF8,
		    "invalid UTF-8 at byte %d", je->position);
	case json_error_duplicate_key:
		return event_fail(err, EV_DUPLICATE_KEY,
		    "duplicate key at line %d, column %d: %s", je->line,
		    je->column, je->text);
	case json_error_numeric_overflow:
		if (strstr(je->text, "real") != NULL)
			return event_fail(err, EV_NON_FINITE_NUMBER,
			    "number out of double range at line %d, column %d: %s",
			    je->line, je->column, je->text);
		return event_fail(err, EV_INTEGER_OUT_OF_RANGE,
		    "integer outside the signed 64-bit range at line %d, "
		    "column %d: %s", je->line, je->column, je->text);
	default:
		break;
	}
	if (jc == json_error_null_byte_in_key)
		return event_fail(err, EV_NUL_IN_FIELD,
		    "object keys must not contain \\u0000, at line %d, "
		    "column %d", je->line, je->column);
	if (strstr(je->text, "near 'NaN'") != NULL ||
	    strstr(je->text, "near 'Infinity'") != NULL ||
	    (je->position > 0 && (size_t)je->position + 8 <= len &&
	    buf[je->position - 1] == '-' &&
	    memcmp(buf + je->position, "Infinity", 8) == 0) ||
	    (je->position > 0 && (size_t)je->position + 3 <= len &&
	    buf[je->position - 1] == '-' &&
	    memcmp(buf + je->position, "NaN", 3) == 0))
		return event_fail(err, EV_NON_FINITE_NUMBER,
		    "NaN and Infinity are not JSON numbers, at line %d, column %d",
		    je->line, je->column);
	return event_fail(err, EV_INVALID_JSON,
	    "invalid JSON at line %d, column %d (byte %d): %s", je->line,
	    je->column, je->position, je->text);
}

size_t
event_json_compact(char *text, size_t len)
{
	size_t i, o = 0;
	int in_str = 0, esc = 0;

	for (i = 0; i < len; i++) {
		char c = text[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue;
		}
		text[o++] = c;
	}
	return o;
}

/* A copy of s with every byte outside printable ASCII replaced by '?'. */
static char *
xstrdup_ascii(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	for (char *p = d; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return d;
}

/* A string by pointer and length: NUL-terminated or inside a text. */
struct span {
	const char *p;
	size_t len;
};

static struct span
span_of(const char *s)
{
	struct span sp = { s, strlen(s) };

	return sp;
}

/*
 * Lay out the strings that follow the JSON text in an event's allocation
 * (p has room for "ns:type", ns and type, each NUL-terminated), and set
 * the fields.
 */
static void
ev_tail(struct event *ev, char *p, struct span ns, struct span type,
    const char *id, double ts)
{
	memcpy(p, ns.p, ns.len);
	p[ns.len] = ':';
	memcpy(p + ns.len + 1, type.p, type.len);
	ev->topic = p;
	ev->topic_len = ns.len + 1 + type.len;
	p[ev->topic_len] = '\0';
	p += ev->topic_len + 1;
	memcpy(p, ns.p, ns.len);
	p[ns.len] = '\0';
	ev->namespace = p;
	p += ns.len + 1;
	memcpy(p, type.p, type.len);
	p[type.len] = '\0';
	ev->event_type = p;
	memcpy(ev->id, id, EVENT_ID_LEN);
	ev->id[EVENT_ID_LEN] = '\0';
	ev->timestamp = ts;
}

/*
 * An event's allocation starts with its count of holders (event_share),
 * EV_HEAD bytes so the text after it keeps malloc's alignment.
 */
#define EV_HEAD 16

static char *
ev_alloc(struct event *ev, size_t n)
{
	char *m = xmalloc(EV_HEAD + n);

	atomic_init((atomic_uint *)(void *)m, 1);
	memset(ev, 0, sizeof(*ev));
	ev->mem = m;
	return m + EV_HEAD;
}

void *
event_share(const struct event *ev)
{
	atomic_fetch_add_explicit((atomic_uint *)ev->mem, 1,
	    memory_order_relaxed);
	return ev->mem;
}

void
event_release(void *share)
{
	if (share != NULL && atomic_fetch_sub_explicit((atomic_uint *)share, 1,
	    memory_order_acq_rel) == 1)
		free(share);
}

/* Room ev_tail() needs after the JSON text. */
#define TAIL_SIZE(ns, type) (2 * ((ns).len + (type).len) + 4)

/* Fill *ev with copies of the parts, in one allocation. */
static void
ev_fill(struct event *ev, const char *json, size_t json_len, struct span ns,
    struct span type, const char *id, double ts)
{
	char *p = ev_alloc(ev, json_len + 1 + TAIL_SIZE(ns, type));

	memcpy(p, json, json_len);
	p[json_len] = '\0';
	ev->json = p;
	ev->json_len = json_len;
	ev_tail(ev, p + json_len + 1, ns, type, id, ts);
}

void
event_clear(struct event *ev)
{
	if (ev == NULL)
		return;
	event_release(ev->mem);
	memset(ev, 0, sizeof(*ev));
}

/* Check the fields every event must have; returns 0 or -1 with *err. */
static int
check_fields(json_t *root, const char **ns, const char **type,
    json_t **ts, struct event_error *err)
{
	json_t *v;

	if (!json_is_object(root))
		return event_fail(err, EV_NOT_AN_OBJECT,
		    "an event must be a JSON object, not %s",
		    json_is_array(root) ? "an array" :
		    json_is_string(root) ? "a string" :
		    json_is_number(root) ? "a number" :
		    json_is_boolean(root) ? "a boolean" : "null");

	v = json_object_get(root, "event_type");
	if (v == NULL)
		return event_fail(err, EV_MISSING_EVENT_TYPE,
		    "event_type is missing");
	if (!json_is_string(v))
		return event_fail(err, EV_INVALID_EVENT_TYPE,
		    "event_type must be a string");
	if (json_string_length(v) == 0)
		return event_fail(err, EV_EMPTY_EVENT_TYPE,
		    "event_type must not be empty");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return event_fail(err, EV_NUL_IN_FIELD,
		    "event_type must not contain \\u0000");
	*type = json_string_value(v);

	v = json_object_get(root, "namespace");
	if (v != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0)
			return event_fail(err, EV_INVALID_NAMESPACE,
			    "namespace must be a non-empty string");
		if (strlen(json_string_value(v)) != json_string_length(v))
			return event_fail(err, EV_NUL_IN_FIELD,
			    "namespace must not contain \\u0000");
		*ns = json_string_value(v);
	}

	v = json_object_get(root, "timestamp");
	if (v != NULL && !json_is_number(v))
		return event_fail(err, EV_INVALID_TIMESTAMP,
		    "timestamp must be a number of seconds since the epoch");
	*ts = v;

	v = json_object_get(root, "hops");
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > EVENT_MAX_HOPS))
		return event_fail(err, EV_INVALID_HOPS, "hops must be an "
		    "integer from 0 to %d (handler runs since the first event "
		    "of its chain)", EVENT_MAX_HOPS);
	return 0;
}

/* root's "hops" (checked by check_fields()), 0 when absent. */
static int
hops_of(json_t *root)
{
	return (int)json_integer_value(json_object_get(root, "hops"));
}

static char *json_quote(const char *s);
static bson_context_t *oid_ctx;

long long
event_id_time(const char *id)
{
	bson_oid_t oid;

	if (id == NULL || strlen(id) != EVENT_ID_LEN ||
	    !bson_oid_is_valid(id, EVENT_ID_LEN))
		return -1;
	bson_oid_init_from_string(&oid, id);
	return (long long)bson_oid_get_time_t(&oid);
}

static void
oid_context_init(void)
{
	/* getpid() is remembered: nothing forks after the first event */
	oid_ctx = bson_context_new(BSON_CONTEXT_NONE);
}

static bson_context_t *
oid_context(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, oid_context_init);
	return oid_ctx;
}

/* "secs.micro" of a timestamp we add, without printf (slow). */
static int
fmt_stamp(char *out, size_t sz, double t)
{
	long long sec = (long long)t, usec;
	char digits[24];
	int n = 0, len = 0;

	if (!(t >= 0 && t < 1e15))
		return snprintf(out, sz, "%.6f", t);
	usec = llround((t - (double)sec) * 1e6);
	if (usec >= 1000000) {
		sec++;
		usec -= 1000000;
	}
	do {
		digits[n++] = (char)('0' + sec % 10);
		sec /= 10;
	} while (sec > 0);
	while (n > 0)
		out[len++] = digits[--n];
	out[len++] = '.';
	for (int i = 5; i >= 0; i--, usec /= 10)
		out[len + i] = (char)('0' + usec % 10);
	len += 6;
	out[len] = '\0';
	return len;
}

/*
 * The common case: the sender's text, compacted (when it holds any white
 * space byte: compact), with "id" (and the
 * namespace and timestamp when missing) inserted at the front.  Built in
 * place in the event's one allocation (layout as ev_fill()).
 */
static void
ev_splice(struct event *ev, const char *buf, size_t len, int compact,
    int add_ns, int add_ts, struct span ns, struct span type, const char *id,
    double stamp)
{
	size_t pos = 0, head, body;
	char *qns = NULL, *p;

	if (add_ns) {
		/* ns is the input's default (NUL-terminated): quote it unless
		 * it is plain */
		for (size_t i = 0; i < ns.len && qns == NULL; i++) {
			char c = ns.p[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || strchr("._:-/@+", c)) &&
			    (qns = json_quote(ns.p)) == NULL)
				abort();
		}
	}
	while (pos < len && buf[pos] != '{')
		pos++;		/* only white space precedes it: validated */
	head = 40 + (add_ns ? ns.len * 6 + 16 : 0) + (add_ts ? 56 : 0);
	p = ev_alloc(ev, head + len + TAIL_SIZE(ns, type));

	memcpy(p, "{\"id\":\"", 7);
	memcpy(p + 7, id, EVENT_ID_LEN);
	memcpy(p + 7 + EVENT_ID_LEN, "\",", 2);
	head = 7 + EVENT_ID_LEN + 2;
	if (add_ns) {
		memcpy(p + head, "\"namespace\":", 12);
		head += 12;
		if (qns != NULL) {
			head += (size_t)sprintf(p + head, "%s", qns);
		} else {
			p[head++] = '"';
			memcpy(p + head, ns.p, ns.len);
			head += ns.len;
			p[head++] = '"';
		}
		p[head++] = ',';
	}
	if (add_ts) {
		memcpy(p + head, "\"timestamp\":", 12);
		head += 12;
		head += (size_t)fmt_stamp(p + head, 40, stamp);
		p[head++] = ',';
	}
	/* the body after its '{', compacted where it lands */
	memcpy(p + head, buf + pos + 1, len - pos - 1);
	body = compact ? event_json_compact(p + head, len - pos - 1) :
	    len - pos - 1;
	ev->json = p;
	ev->json_len = head + body;
	p[ev->json_len] = '\0';
	ev_tail(ev, p + ev->json_len + 1, ns, type, id, stamp);
	free(qns);
}

/* JSON-encode a string into a new buffer (caller frees). */
static char *
json_quote(const char *s)
{
	json_t *j = json_string(s);
	char *out;

	if (j == NULL)
		return NULL;
	out = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
	json_decref(j);
	return out;
}

/* A fresh ObjectId as 24 hex digits and a NUL. */
static void
new_id(char *id)
{
	bson_oid_t oid;

	bson_oid_init(&oid, oid_context());
	bson_oid_to_string(&oid, id);
}

int
event_ingest(const void *buf, size_t len, const char *default_ns,
    size_t max_size, double now, struct event *ev, struct event_error *err)
{
	json_error_t je;
	json_t *root, *ts = NULL;
	const char *ns = NULL, *type = NULL;
	char id[EVENT_ID_LEN + 1];
	struct evscan f;
	double stamp;

	memset(ev, 0, sizeof(*ev));
	if (max_size != 0 && len > max_size)
		return event_fail(err, EV_TOO_LARGE,
		    "event is %zu bytes, over the limit of %zu bytes "
		    "(limits.max_event_size)", len, max_size);

	/* the common case: valid, plain, without an id of its own */
	if (event_scan(buf, len, &f) && !f.has_id) {
		struct span sns = { f.ns, f.ns_len }, stype = { f.type,
		    f.type_len };
		new_id(id);
		ev_splice(ev, buf, len, f.space, f.ns == NULL, !f.has_ts,
		    f.ns != NULL ? sns : span_of(default_ns), stype, id,
		    f.has_ts ? f.ts : now);
		ev->hops = f.hops;
		return 0;
	}

	root = json_loadb(buf, len, EV_JSON_FLAGS, &je);
	if (root == NULL)
		return event_fail_decode(err, &je, buf, len);
	if (check_fields(root, &ns, &type, &ts, err) != 0) {
		json_decref(root);
		return -1;
	}

	new_id(id);
	stamp = ts != NULL ? json_number_value(ts) : now;
	if (ns == NULL)
		ns = default_ns;

	if (json_object_get(root, "id") != NULL) {
		/* The router owns id: re-encode with ours in place. */
		char *text;
		json_object_set_new(root, "id", json_string(id));
		if (json_object_get(root, "namespace") == NULL)
			json_object_set_new(root, "namespace", json_string(ns));
		if (ts == NULL)
			json_object_set_new(root, "timestamp", json_real(stamp));
		text = json_dumps(root, JSON_COMPACT);
		if (text == NULL)
			abort();
		ev_fill(ev, text, strlen(text), span_of(ns), span_of(type), id,
		    stamp);
		free(text);
	} else {
		ev_splice(ev, buf, len, 1,
		    json_object_get(root, "namespace") == NULL,
		    ts == NULL, span_of(ns), span_of(type), id, stamp);
	}
	ev->hops = hops_of(root);
	json_decref(root);
	return 0;
}

/* Is id[0..len) an ObjectId as the router writes it (24 hex digits)? */
static int
valid_id(const char *id, size_t len)
{
	if (len != EVENT_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

int
event_parse_stamped(const void *buf, size_t len, struct event *ev,
    struct event_error *err)
{
	int found;

	return event_parse_stamped_ptrs(buf, len, ev, err, NULL, 0, &found);
}

int
event_parse_stamped_ptrs(const void *buf, size_t len, struct event *ev,
    struct event_error *err, struct event_ptr *ptrs, size_t n, int *found)
{
	json_error_t je;
	json_t *root, *ts = NULL, *idv;
	const char *ns = NULL, *type = NULL, *id;
	struct evscan f;

	memset(ev, 0, sizeof(*ev));
	*found = 0;
	if (event_scan_ptrs(buf, len, &f, ptrs, n) && f.ns != NULL &&
	    f.has_ts && f.id != NULL && valid_id(f.id, f.id_len)) {
		struct span sns = { f.ns, f.ns_len }, stype = { f.type,
		    f.type_len };
		ev_fill(ev, buf, len, sns, stype, f.id, f.ts);
		ev->hops = f.hops;
		*found = 1;
		return 0;
	}
	root = json_loadb(buf, len, EV_JSON_FLAGS, &je);
	if (root == NULL)
		return event_fail_decode(err, &je, buf, len);
	if (check_fields(root, &ns, &type, &ts, err) != 0)
		goto fail;
	idv = json_object_get(root, "id");
	id = json_string_value(idv);
	if (id == NULL || !valid_id(id, strlen(id))) {
		event_fail(err, EV_INVALID_JSON, "stamped event without a valid id");
		goto fail;
	}
	if (ns == NULL || ts == NULL) {
		event_fail(err, ns == NULL ? EV_INVALID_NAMESPACE :
		    EV_INVALID_TIMESTAMP, "stamped event without %s",
		    ns == NULL ? "namespace" : "timestamp");
		goto fail;
	}
	ev_fill(ev, buf, len, span_of(ns), span_of(type), id,
	    json_number_value(ts));
	ev->hops = hops_of(root);
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

char *
event_error_json(const char *code, const char *message, size_t *len)
{
	json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code,
	    "message", message);
	char *s, *safe = NULL;

	if (o == NULL) {
		/* not UTF-8 (a message quoting input): mask the odd bytes */
		safe = xstrdup_ascii(message);
		o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
		    safe);
		free(safe);
		if (o == NULL)
			abort();
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		abort();
	*len = strlen(s);
	return s;
}

char *
event_error_reply(const struct event_error *err, size_t *len)
{
	return event_error_json(event_err_code(err->code), err->message, len);
}

int
event_utf8_text(const char *s, size_t n)
{
	return bson_utf8_validate(s, n, false);
}
