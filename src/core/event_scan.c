/* event_scan: the event module's fast path.  See event_scan.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "event.h"
#include "event_scan.h"

enum member { M_NONE, M_TYPE, M_NS, M_TS, M_ID, M_HOPS };

/*
 * yajl's allocations for one scan (its handle, lexer, state stack and two
 * 2048-byte buffers: about 5 KB) come from an arena on the scanning
 * thread's stack, dropped as a whole; more than that goes to malloc.
 * Each block starts with its size, for realloc.
 */
#define ARENA_SIZE 8192
#define ARENA_ALIGN 16

struct arena {
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char mem[ARENA_SIZE];
};

static int
in_arena(const struct arena *a, const void *p)
{
	const unsigned char *c = p;

	return c >= a->mem && c < a->mem + ARENA_SIZE;
}

static void *
arena_malloc(void *ctx, size_t n)
{
	struct arena *a = ctx;
	size_t need = ARENA_ALIGN + ((n + ARENA_ALIGN - 1) & ~(size_t)
	    (ARENA_ALIGN - 1));
	unsigned char *p;

	if (n > ARENA_SIZE || need > ARENA_SIZE - a->used)
		return malloc(n);
	p = a->mem + a->used;
	memcpy(p, &n, sizeof(n));
	a->used += need;
	return p + ARENA_ALIGN;
}

static void *
arena_realloc(void *ctx, void *old, size_t n)
{
	struct arena *a = ctx;
	size_t had;
	void *p;

	if (old == NULL)	/* yajl's state stack starts this way */
		return arena_malloc(a, n);
	if (!in_arena(a, old))
		return realloc(old, n);
	memcpy(&had, (unsigned char *)old - ARENA_ALIGN, sizeof(had));
	if (n <= had)
		return old;
	if ((p = arena_malloc(a, n)) != NULL)
		memcpy(p, old, had);
	return p;
}

static void
arena_free(void *ctx, void *p)
{
	if (!in_arena(ctx, p))
		free(p);
}

struct key {
	const char *p;
	size_t len;
};

struct scan {
	const char *buf;
	size_t len;
	struct evscan *f;
	yajl_handle h;			/* for its offsets (pointers only) */
	struct event_ptr *ptrs;
	size_t nptrs;
	long idx[EVSCAN_MAX_DEPTH + 1];	/* an open array's next index */
	int kstart[EVSCAN_MAX_DEPTH + 1];	/* nkeys when each opened */
	/* the pointer whose container is open at each depth, or -1 */
	int open_ptr[EVSCAN_MAX_DEPTH + 1];
	int depth;		/* open containers; 1 inside the event object */
	enum member want;	/* the top-level member whose value comes next */
	/* for each open container: where its keys start in keys[], or -1
	 * for an array */
	int first[EVSCAN_MAX_DEPTH + 1];
	struct key keys[EVSCAN_MAX_KEYS];
	int nkeys;
};

/* Is p (len bytes) inside the scanned text, i.e. written without escape? */
static int
raw(const struct scan *s, const unsigned char *p, size_t len)
{
	const char *c = (const char *)p;

	return c >= s->buf && c + len <= s->buf + s->len;
}

/*
 * A value at depth 1 belongs to the member named before it.  Members we
 * read must have their usual type; anything else is jansson's to judge
 * (returning 0 cancels the scan).
 */
static int
top_other(struct scan *s)
{
	enum member m = s->want;

	s->want = M_NONE;
	if (s->depth == 0)
		return 0;	/* the event is not an object */
	if (s->depth != 1 || m == M_NONE)
		return 1;
	if (m == M_ID) {
		s->f->has_id = 1;
		return 1;
	}
	return 0;
}

/* ---- JSON pointers (event_scan_ptrs()) ---- */

/* Does token t name the member at level l of the path now? */
static int
token_is(const struct scan *s, int l, const char *t)
{
	const struct key *k;
	char num[24];
	size_t n;

	if (s->first[l] < 0) {			/* an array: its index */
		n = (size_t)snprintf(num, sizeof(num), "%ld", s->idx[l]);
		return strlen(t) == n && memcmp(t, num, n) == 0;
	}
	/* the key of level l: the last before level l + 1 opened, or the
	 * last of all at the innermost level */
	k = l + 1 < s->depth ? &s->keys[s->kstart[l + 1] - 1] :
	    &s->keys[s->nkeys - 1];
	return strlen(t) == k->len && memcmp(t, k->p, k->len) == 0;
}

/* The pointer a value beginning now is the target of, or -1. */
static int
target(const struct scan *s)
{
	for (size_t i = 0; i < s->nptrs; i++) {
		const struct event_ptr *p = &s->ptrs[i];
		int l;
		if (p->ntokens != (size_t)s->depth)
			continue;
		for (l = 0; l < s->depth; l++)
			if (!token_is(s, l, p->tokens[l]))
				break;
		if (l == s->depth)
			return (int)i;
	}
	return -1;
}

/* A value at depth d ended: the next of its array has the next index. */
static void
next_index(struct scan *s)
{
	if (s->depth > 0 && s->first[s->depth - 1] < 0)
		s->idx[s->depth - 1]++;
}

/* A scalar ends at yajl's offset: record [end - size, end) when it is a
 * target (size 0: a number, found back by its characters). */
static void
scalar(struct scan *s, size_t size)
{
	int i;
	size_t end, start;

	if (s->nptrs == 0)
		return;
	if ((i = target(s)) >= 0) {
		end = yajl_get_bytes_consumed(s->h);
		start = end - size;
		if (size == 0)
			while (start > 0 && memchr("0123456789+-.eE",
			    s->buf[start - 1], 15) != NULL)
				start--;
		s->ptrs[i].off = start;
		s->ptrs[i].len = end - start;
	}
	next_index(s);
}

static int
on_null(void *ctx)
{
	scalar(ctx, 4);
	return top_other(ctx);
}

static int
on_bool(void *ctx, int v)
{
	scalar(ctx, v ? 4 : 5);
	return top_other(ctx);
}

static int
on_number(struct scan *s, double v)
{
	scalar(s, 0);
	if (s->depth == 1 && s->want == M_TS) {
		s->want = M_NONE;
		s->f->has_ts = 1;
		s->f->ts = v;
		return 1;
	}
	return top_other(s);
}

static int
on_integer(void *ctx, long long v)
{
	struct scan *s = ctx;

	if (s->depth == 1 && s->want == M_HOPS) {
		scalar(s, 0);
		s->want = M_NONE;
		s->f->hops = (int)v;
		return v >= 0 && v <= EVENT_MAX_HOPS;
	}
	return on_number(ctx, (double)v);
}

static int
on_double(void *ctx, double v)
{
	return on_number(ctx, v);
}

static int
on_string(void *ctx, const unsigned char *v, size_t len)
{
	struct scan *s = ctx;
	struct evscan *f = s->f;

	if (s->nptrs > 0) {
		int i = target(s);
		if (i >= 0 && !raw(s, v, len))
			return 0;	/* escaped: jansson finds it */
		if (i >= 0) {
			s->ptrs[i].off = (size_t)((const char *)v - s->buf) - 1;
			s->ptrs[i].len = len + 2;
		}
		next_index(s);
	}
	if (s->depth != 1 || s->want == M_NONE || s->want == M_TS ||
	    s->want == M_HOPS)
		return top_other(s);
	if (!raw(s, v, len))
		return 0;
	switch (s->want) {
	case M_TYPE:
		f->type = (const char *)v;
		f->type_len = len;
		break;
	case M_NS:
		f->ns = (const char *)v;
		f->ns_len = len;
		break;
	default:
		f->has_id = 1;
		f->id = (const char *)v;
		f->id_len = len;
		break;
	}
	s->want = M_NONE;
	return len > 0;		/* an empty type or namespace is refused */
}

static int
open_container(struct scan *s, int is_map)
{
	if (s->depth > 0 && !top_other(s))
		return 0;
	if (s->depth == 0 && !is_map)
		return 0;
	if (s->depth >= EVSCAN_MAX_DEPTH)
		return 0;
	if (s->nptrs > 0) {
		int i = target(s);
		s->open_ptr[s->depth + 1] = i;
		if (i >= 0)
			s->ptrs[i].off = yajl_get_bytes_consumed(s->h) - 1;
		s->idx[s->depth] = 0;
		s->kstart[s->depth] = s->nkeys;
	}
	s->first[s->depth++] = is_map ? s->nkeys : -1;
	return 1;
}

static int
on_start_map(void *ctx)
{
	return open_container(ctx, 1);
}

static int
on_start_array(void *ctx)
{
	return open_container(ctx, 0);
}

static int
on_end(void *ctx)
{
	struct scan *s = ctx;
	int first = s->first[--s->depth];

	if (first >= 0)
		s->nkeys = first;	/* the object's keys are done with */
	if (s->nptrs > 0) {
		int i = s->open_ptr[s->depth + 1];
		if (i >= 0)
			s->ptrs[i].len = yajl_get_bytes_consumed(s->h) -
			    s->ptrs[i].off;
		next_index(s);
	}
	return 1;
}

static int
on_key(void *ctx, const unsigned char *k, size_t len)
{
	struct scan *s = ctx;
	int first = s->first[s->depth - 1];
	const char *key = (const char *)k;

	if (!raw(s, k, len) || s->nkeys >= EVSCAN_MAX_KEYS)
		return 0;
	for (int i = first; i < s->nkeys; i++)
		if (s->keys[i].len == len && memcmp(s->keys[i].p, key, len) == 0)
			return 0;	/* duplicate: jansson words the error */
	s->keys[s->nkeys].p = key;
	s->keys[s->nkeys++].len = len;
	s->want = M_NONE;
	if (s->depth == 1) {
		if (len == 10 && memcmp(key, "event_type", 10) == 0)
			s->want = M_TYPE;
		else if (len == 9 && memcmp(key, "namespace", 9) == 0)
			s->want = M_NS;
		else if (len == 9 && memcmp(key, "timestamp", 9) == 0)
			s->want = M_TS;
		else if (len == 2 && memcmp(key, "id", 2) == 0)
			s->want = M_ID;
		else if (len == 4 && memcmp(key, "hops", 4) == 0)
			s->want = M_HOPS;
	}
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	/* integer and double, not number: yajl then refuses what overflows */
	.yajl_integer = on_integer,
	.yajl_double = on_double,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end,
};

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Mycroft's test: does a byte of w equal zero? */
#define HAS_ZERO(w) (((w) - ONES) & ~(w) & HIGHS)

/*
 * Does the 8-byte word w hold a byte plain_text() must look at: at or
 * below ' ', at or above 0x80, '"' or '\\'?  The rest of an event's text
 * is skipped 8 bytes at a time.
 */
static int
word_plain(uint64_t w)
{
	uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');

	return (((w - ONES * 0x21) & ~w & HIGHS) | HAS_ZERO(q) | HAS_ZERO(b) |
	    (w & HIGHS)) == 0;
}

/*
 * The first byte at or after buf[i] that plain_text() must look at, or
 * len: sixteen bytes at a time with SSE2 (every x86-64), then eight.
 */
static size_t
skip_plain(const char *buf, size_t len, size_t i)
{
	uint64_t w;

#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	/* signed bytes: those >= 0x80 are negative, below '!' too */
	const __m128i low = _mm_set1_epi8('!');

	for (; i + 16 <= len; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)
		    (buf + i));
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v,
		    quote), _mm_cmpeq_epi8(v, bslash)), _mm_cmplt_epi8(v, low));
		unsigned m = (unsigned)_mm_movemask_epi8(hit);
		if (m != 0)
			return i + (size_t)__builtin_ctz(m);
	}
#endif
	while (i + 8 <= len && (memcpy(&w, buf + i, 8), word_plain(w)))
		i += 8;
	return i;
}

/*
 * Bytes yajl would read more leniently than jansson: non-ASCII, control
 * characters other than JSON's white space (yajl also skips \v and \f),
 * \u escapes, and a text that ends inside a string (yajl 2.1 accepts an
 * unterminated string after the top-level value).  Sets *space when
 * JSON's white space occurs.
 */
static int
plain_text(const char *buf, size_t len, int *space)
{
	int sp = 0, in_str = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c;

		if ((i = skip_plain(buf, len, i)) >= len)
			break;
		c = (unsigned char)buf[i];
		if (c <= ' ') {
			if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
				return 0;
			sp = 1;
		} else if (c >= 0x80) {
			return 0;
		} else if (c == '"') {
			in_str = !in_str;
		} else if (c == '\\' && in_str) {
			if (i + 1 < len && buf[i + 1] == 'u')
				return 0;
			i++;	/* the escaped character */
		}
	}
	*space = sp;
	return !in_str;
}

int
event_scan(const char *buf, size_t len, struct evscan *f)
{
	return event_scan_ptrs(buf, len, f, NULL, 0);
}

int
event_scan_ptrs(const char *buf, size_t len, struct evscan *f,
    struct event_ptr *ptrs, size_t nptrs)
{
	struct scan s;
	struct arena arena;
	yajl_alloc_funcs funcs = { arena_malloc, arena_realloc, arena_free,
	    &arena };
	yajl_handle h;
	int ok, space;

	memset(f, 0, sizeof(*f));
	if (!plain_text(buf, len, &space))
		return 0;
	s.buf = buf;
	s.len = len;
	s.f = f;
	s.depth = 0;
	s.want = M_NONE;
	s.nkeys = 0;
	s.ptrs = ptrs;
	s.nptrs = nptrs;
	for (size_t i = 0; i < nptrs; i++)
		ptrs[i].off = ptrs[i].len = 0;
	arena.used = 0;
	h = yajl_alloc(&callbacks, &funcs, &s);
	if (h == NULL)
		return 0;
	s.h = h;
	ok = yajl_parse(h, (const unsigned char *)buf, len) == yajl_status_ok &&
	    yajl_complete_parse(h) == yajl_status_ok;
	yajl_free(h);
	if (!ok || f->type == NULL) {
		memset(f, 0, sizeof(*f));
		return 0;
	}
	f->space = space;
	return 1;
}
