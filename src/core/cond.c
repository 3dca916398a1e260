/*
 * cond: a handler's conditions on an event's content.  See cond.h.  The
 * handlers file's nodes are jansson values (cfg_reader.c); operands are
 * copied out of it, since the reader's tree goes when the file is read.
 */
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_reader.h"
#include "cond.h"
#include "event.h"
#include "event_json.h"
#include "util.h"

#define J(n) ((const json_t *)(const void *)(n))

enum op { OP_EQ, OP_NE, OP_IN, OP_REGEX, OP_EXISTS, OP_LT, OP_LE, OP_GT,
    OP_GE };

static const char *const op_names[] = { "eq", "ne", "in", "regex",
    "exists", "lt", "le", "gt", "ge", NULL };

struct test {
	enum op op;
	json_t *operand;		/* a copy; NULL for regex and exists */
	regex_t re;
	int exists;
};

struct cond {
	char **tokens;			/* the pointer, unescaped */
	size_t ntokens;
	size_t ptr;			/* its index in the table's cond_ptrs */
	struct test *tests;
	size_t ntests;
};

/* The table's pointers; p[i].tokens are those of a cond of the table. */
struct cond_ptrs {
	struct event_ptr *p;
	size_t n;
};

struct cond_set {
	struct cond *conds;
	size_t n;
};

/* An event for cond_match(): one tree, or the values of the table's
 * pointers parsed as asked for. */
struct cond_doc {
	json_t *root;			/* or NULL, and: */
	const char *json;		/* the event's text (ev->json) */
	struct event_ptr *spans;	/* where each pointer's value is */
	json_t **vals;			/* each value, once parsed */
	unsigned char *loaded;
	size_t n;			/* spans, vals and loaded */
};

struct cond_ptrs *
cond_ptrs_new(void)
{
	return xcalloc(1, sizeof(struct cond_ptrs));
}

void
cond_ptrs_free(struct cond_ptrs *p)
{
	if (p == NULL)
		return;
	free(p->p);
	free(p);
}

/* c's pointer in ptrs (added when new): its index. */
static size_t
ptr_index(struct cond_ptrs *ptrs, const struct cond *c)
{
	size_t i, k;

	for (i = 0; i < ptrs->n; i++) {
		if (ptrs->p[i].ntokens != c->ntokens)
			continue;
		for (k = 0; k < c->ntokens; k++)
			if (strcmp(ptrs->p[i].tokens[k], c->tokens[k]) != 0)
				break;
		if (k == c->ntokens)
			return i;
	}
	ptrs->p = xrealloc(ptrs->p, (ptrs->n + 1) * sizeof(*ptrs->p));
	memset(&ptrs->p[ptrs->n], 0, sizeof(*ptrs->p));
	ptrs->p[ptrs->n].tokens = (const char *const *)c->tokens;
	ptrs->p[ptrs->n].ntokens = c->ntokens;
	return ptrs->n++;
}

/* ---- compiling ---- */

static void
cond_clear(struct cond *c)
{
	for (size_t i = 0; i < c->ntokens; i++)
		free(c->tokens[i]);
	free(c->tokens);
	for (size_t i = 0; i < c->ntests; i++) {
		if (c->tests[i].op == OP_REGEX)
			regfree(&c->tests[i].re);
		json_decref(c->tests[i].operand);
	}
	free(c->tests);
}

void
cond_free(struct cond_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		cond_clear(&s->conds[i]);
	free(s->conds);
	free(s);
}

/* The JSON pointer p into c->tokens: 0, or -1 with the reader's error at
 * the pointer (the current path's key). */
static int
parse_pointer(struct cfg_reader *r, const char *p, struct cond *c)
{
	const char *seg;

	if (p[0] != '\0' && p[0] != '/')
		return cfg_error(r, NULL, "bad JSON pointer \"%s\": it must be "
		    "empty or begin with \"/\" (RFC 6901)", p);
	c->tokens = xcalloc(strlen(p) + 1, sizeof(*c->tokens));
	for (seg = p; *seg == '/'; ) {
		const char *end = strchr(seg + 1, '/');
		size_t n = end != NULL ? (size_t)(end - seg - 1) :
		    strlen(seg + 1), k = 0;
		char *tok = xmalloc(n + 1);
		for (size_t i = 0; i < n; i++) {
			char ch = seg[1 + i];
			if (ch == '~') {
				char e = i + 1 < n ? seg[2 + i] : '\0';
				if (e != '0' && e != '1') {
					free(tok);
					return cfg_error(r, NULL, "bad JSON "
					    "pointer \"%s\": \"~\" must be "
					    "followed by 0 or 1 (RFC 6901)", p);
				}
				ch = e == '0' ? '~' : '/';
				i++;
			}
			tok[k++] = ch;
		}
		tok[k] = '\0';
		c->tokens[c->ntokens++] = tok;
		seg = end != NULL ? end : seg + 1 + n;
	}
	return 0;
}

static int
op_find(const char *name)
{
	for (int i = 0; op_names[i] != NULL; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -1;
}

/* Operator name with operand v into t (the reader at the operator). */
static int
compile_test(struct cfg_reader *r, const char *name, const json_t *v,
    struct test *t)
{
	char why[256];
	int rc, op = op_find(name);

	if (op < 0)
		return cfg_key_error(r, NULL, "unknown operator \"%s\" (eq, ne, "
		    "in, regex, exists, lt, le, gt, ge; an object literal is "
		    "compared with {\"eq\": ...})", name);
	t->op = (enum op)op;
	switch (t->op) {
	case OP_IN:
		if (!json_is_array(v))
			return cfg_error(r, NULL, "\"in\" needs an array of "
			    "values");
		break;
	case OP_REGEX:
		if (!json_is_string(v))
			return cfg_error(r, NULL, "\"regex\" needs a string (a "
			    "POSIX extended regular expression)");
		rc = regcomp(&t->re, json_string_value(v),
		    REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			regerror(rc, &t->re, why, sizeof(why));
			t->op = OP_EQ;		/* nothing to regfree */
			return cfg_error(r, NULL, "invalid regex \"%s\": %s",
			    json_string_value(v), why);
		}
		return 0;
	case OP_EXISTS:
		if (!json_is_boolean(v))
			return cfg_error(r, NULL, "\"exists\" needs true or "
			    "false");
		t->exists = json_is_true(v);
		return 0;
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		if (!json_is_number(v))
			return cfg_error(r, NULL, "\"%s\" needs a number", name);
		break;
	default:
		break;
	}
	t->operand = json_deep_copy(v);
	return 0;
}

/* The condition of pointer p (the reader at it) with value v into c. */
static int
compile_cond(struct cfg_reader *r, const char *p, const json_t *v,
    struct cond *c, struct cond_ptrs *ptrs)
{
	const char *name;
	json_t *ov;

	if (parse_pointer(r, p, c) != 0)
		return -1;
	c->ptr = ptr_index(ptrs, c);
	if (!json_is_object(v)) {		/* a literal: "eq" */
		c->tests = xcalloc(1, sizeof(*c->tests));
		c->ntests = 1;
		return compile_test(r, "eq", v, &c->tests[0]);
	}
	if (json_object_size(v) == 0)
		return cfg_error(r, NULL, "no operator (eq, ne, in, regex, "
		    "exists, lt, le, gt, ge)");
	c->tests = xcalloc(json_object_size(v), sizeof(*c->tests));
	json_object_foreach((json_t *)(uintptr_t)v, name, ov) {
		cfg_push(r, name);
		c->ntests++;
		if (compile_test(r, name, ov, &c->tests[c->ntests - 1]) != 0)
			return -1;
		cfg_pop(r);
	}
	return 0;
}

struct cond_set *
cond_compile(struct cfg_reader *r, const struct cfg_node *when,
    struct cond_ptrs *ptrs)
{
	struct cond_set *s;
	const char *p;
	json_t *v;

	if (!json_is_object(J(when))) {
		cfg_error(r, "when", "\"when\" must be an object of JSON "
		    "pointers and conditions");
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->conds = xcalloc(json_object_size(J(when)) + 1, sizeof(*s->conds));
	cfg_push(r, "when");
	json_object_foreach((json_t *)(uintptr_t)J(when), p, v) {
		cfg_push(r, p);
		s->n++;
		if (compile_cond(r, p, v, &s->conds[s->n - 1], ptrs) != 0) {
			cond_free(s);
			return NULL;
		}
		cfg_pop(r);
	}
	cfg_pop(r);
	return s;
}

/* ---- evaluating ---- */

struct cond_doc *
cond_doc_parse(const char *json, size_t len)
{
	struct cond_doc *d;
	json_t *root = json_loadb(json, len, EV_JSON_FLAGS, NULL);

	if (root == NULL)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->root = root;
	return d;
}

int
cond_parse_event(const struct cond_ptrs *ptrs, const void *buf, size_t len,
    struct event *ev, struct event_error *err, struct cond_doc **doc)
{
	struct event_ptr *spans;
	int found, rc;

	*doc = NULL;
	if (ptrs == NULL || ptrs->n == 0)
		return event_parse_stamped(buf, len, ev, err);
	spans = xmalloc(ptrs->n * sizeof(*spans));
	memcpy(spans, ptrs->p, ptrs->n * sizeof(*spans));
	rc = event_parse_stamped_ptrs(buf, len, ev, err, spans, ptrs->n,
	    &found);
	if (rc != 0 || !found) {
		free(spans);
		if (rc == 0)
			*doc = cond_doc_parse(ev->json, ev->json_len);
		return rc;
	}
	*doc = xcalloc(1, sizeof(**doc));
	(*doc)->json = ev->json;
	(*doc)->spans = spans;
	(*doc)->vals = xcalloc(ptrs->n, sizeof(*(*doc)->vals));
	(*doc)->loaded = xcalloc(ptrs->n, 1);
	(*doc)->n = ptrs->n;
	return 0;
}

void
cond_doc_free(struct cond_doc *d)
{
	if (d == NULL)
		return;
	json_decref(d->root);
	for (size_t i = 0; i < d->n; i++)
		json_decref(d->vals[i]);
	free(d->spans);
	free(d->vals);
	free(d->loaded);
	free(d);
}

/* The member c's pointer reaches in root, or NULL. */
static const json_t *
resolve(const struct cond *c, const json_t *root)
{
	const json_t *v = root;

	for (size_t i = 0; i < c->ntokens && v != NULL; i++) {
		const char *t = c->tokens[i];
		if (json_is_object(v)) {
			v = json_object_get(v, t);
		} else if (json_is_array(v)) {
			/* digits, no leading zero (RFC 6901, section 4) */
			size_t n = strspn(t, "0123456789");
			if (n == 0 || t[n] != '\0' || (t[0] == '0' && n > 1) ||
			    n > 9 || (size_t)atol(t) >= json_array_size(v))
				return NULL;
			v = json_array_get(v, (size_t)atol(t));
		} else {
			return NULL;
		}
	}
	return v;
}

/* i compared with d, exactly: -1, 0 or 1. */
static int
cmp_int_real(long long i, double d)
{
	double f;

	if (d >= 9223372036854775808.0)		/* 2^63 */
		return -1;
	if (d < -9223372036854775808.0)
		return 1;
	f = floor(d);
	if (i != (long long)f)
		return i < (long long)f ? -1 : 1;
	return d > f ? -1 : 0;
}

/* Two numbers compared exactly: -1, 0 or 1. */
static int
num_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b))
		return json_integer_value(a) < json_integer_value(b) ? -1 :
		    json_integer_value(a) > json_integer_value(b);
	if (json_is_integer(a))
		return cmp_int_real(json_integer_value(a), json_real_value(b));
	if (json_is_integer(b))
		return -cmp_int_real(json_integer_value(b), json_real_value(a));
	return json_real_value(a) < json_real_value(b) ? -1 :
	    json_real_value(a) > json_real_value(b);
}

/* JSON equality, numbers by value at any depth. */
static int
equal(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;

	if (json_is_number(a) && json_is_number(b))
		return num_cmp(a, b) == 0;
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!equal(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	}
	if (json_is_object(a) && json_is_object(b)) {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		json_object_foreach((json_t *)(uintptr_t)a, k, v)
			if (!equal(v, json_object_get(b, k)))
				return 0;
		return 1;
	}
	return json_equal(a, b);
}

static int
test_holds(const struct test *t, const json_t *v)
{
	size_t i;

	if (t->op == OP_EXISTS)
		return (v != NULL) == t->exists;
	if (v == NULL)
		return 0;
	switch (t->op) {
	case OP_EQ:
		return equal(v, t->operand);
	case OP_NE:
		return !equal(v, t->operand);
	case OP_IN:
		for (i = 0; i < json_array_size(t->operand); i++)
			if (equal(v, json_array_get(t->operand, i)))
				return 1;
		return 0;
	case OP_REGEX: {
		/* the whole string, a \u0000 in it included (REG_STARTEND) */
		regmatch_t m = { 0, 0 };
		if (!json_is_string(v))
			return 0;
		m.rm_eo = (regoff_t)json_string_length(v);
		return regexec(&t->re, json_string_value(v), 1, &m,
		    REG_STARTEND) == 0;
	}
	case OP_LT:
		return json_is_number(v) && num_cmp(v, t->operand) < 0;
	case OP_LE:
		return json_is_number(v) && num_cmp(v, t->operand) <= 0;
	case OP_GT:
		return json_is_number(v) && num_cmp(v, t->operand) > 0;
	case OP_GE:
		return json_is_number(v) && num_cmp(v, t->operand) >= 0;
	default:
		return 0;
	}
}

/* The member c's pointer reaches in d, or NULL; a value found by the
 * scan is parsed the first time a condition asks for it. */
static const json_t *
value(const struct cond *c, struct cond_doc *d)
{
	const struct event_ptr *sp;

	if (d->root != NULL)
		return resolve(c, d->root);
	if (c->ptr >= d->n)
		return NULL;
	sp = &d->spans[c->ptr];
	if (!d->loaded[c->ptr] && sp->len > 0)
		d->vals[c->ptr] = json_loadb(d->json + sp->off, sp->len,
		    EV_JSON_FLAGS, NULL);
	d->loaded[c->ptr] = 1;
	return d->vals[c->ptr];
}

int
cond_match(const struct cond_set *s, struct cond_doc *d)
{
	if (d == NULL)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct cond *c = &s->conds[i];
		const json_t *v = value(c, d);
		for (size_t k = 0; k < c->ntests; k++)
			if (!test_holds(&c->tests[k], v))
				return 0;
	}
	return 1;
}

/* ---- keys ---- */

struct cond_key {
	struct cond c;			/* its pointer; no tests */
};

struct cond_key *
cond_key_compile(struct cfg_reader *r, const char *p, struct cond_ptrs *ptrs)
{
	struct cond_key *k = xcalloc(1, sizeof(*k));

	if (parse_pointer(r, p, &k->c) != 0) {
		cond_key_free(k);
		return NULL;
	}
	k->c.ptr = ptr_index(ptrs, &k->c);
	return k;
}

void
cond_key_free(struct cond_key *k)
{
	if (k == NULL)
		return;
	cond_clear(&k->c);
	free(k);
}

char *
cond_key_text(const struct cond_key *k, struct cond_doc *d)
{
	const json_t *v = d != NULL ? value(&k->c, d) : NULL;

	return v != NULL ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY) : NULL;
}
