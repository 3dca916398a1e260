/* event_scan: the event module's fast path.  See event_scan.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "event.h"
#include "event_scan.h"

enum member { M_NONE, M_TYPE, M_NS, M_TS, M_ID, M_HOPS };

struct key {
	const char *p;
	size_t len;
};

struct scan {
	const char *buf;
	size_t len;
	struct evscan *f;
	size_t pos;		/* bytes read: the lexer's place in buf */
	int space;		/* a white space byte was read */
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

/* The string the lexer gives for one written with an escape (its bytes
 * are never needed: jansson decides what holds one). */
static const unsigned char escaped[1];

/* Was the string p the lexer gave written without an escape? */
static int
raw(const unsigned char *p)
{
	return p != escaped;
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

/* A scalar ends at s->pos: record [end - size, end) when it is a
 * target (size 0: a number, found back by its characters). */
static void
scalar(struct scan *s, size_t size)
{
	int i;
	size_t end, start;

	if (s->nptrs == 0)
		return;
	if ((i = target(s)) >= 0) {
		end = s->pos;
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
on_null(struct scan *s)
{
	scalar(s, 4);
	return top_other(s);
}

static int
on_bool(struct scan *s, int v)
{
	scalar(s, v ? 4 : 5);
	return top_other(s);
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
on_integer(struct scan *s, long long v)
{
	if (s->depth == 1 && s->want == M_HOPS) {
		scalar(s, 0);
		s->want = M_NONE;
		s->f->hops = (int)v;
		return v >= 0 && v <= EVENT_MAX_HOPS;
	}
	return on_number(s, (double)v);
}

static int
on_string(struct scan *s, const unsigned char *v, size_t len)
{
	struct evscan *f = s->f;

	if (s->nptrs > 0) {
		int i = target(s);
		if (i >= 0 && !raw(v))
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
	if (!raw(v))
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
			s->ptrs[i].off = s->pos - 1;
		s->idx[s->depth] = 0;
		s->kstart[s->depth] = s->nkeys;
	}
	s->first[s->depth++] = is_map ? s->nkeys : -1;
	return 1;
}

static int
on_end(struct scan *s)
{
	int first = s->first[--s->depth];

	if (first >= 0)
		s->nkeys = first;	/* the object's keys are done with */
	if (s->nptrs > 0) {
		int i = s->open_ptr[s->depth + 1];
		if (i >= 0)
			s->ptrs[i].len = s->pos - s->ptrs[i].off;
		next_index(s);
	}
	return 1;
}

static int
on_key(struct scan *s, const unsigned char *k, size_t len)
{
	int first = s->first[s->depth - 1];
	const char *key = (const char *)k;

	if (!raw(k) || s->nkeys >= EVSCAN_MAX_KEYS)
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

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Mycroft's test: does a byte of w equal zero? */
#define HAS_ZERO(w) (((w) - ONES) & ~(w) & HIGHS)

/*
 * Does the 8-byte word w hold a byte a string's scan must look at: at or
 * below ' ', at or above 0x80, '"' or '\\'?  The rest is skipped 8 bytes
 * at a time.
 */
static int
word_plain(uint64_t w)
{
	uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');

	return (((w - ONES * 0x21) & ~w & HIGHS) | HAS_ZERO(q) | HAS_ZERO(b) |
	    (w & HIGHS)) == 0;
}

/*
 * The first byte at or after buf[i] that word_plain() would look at,
 * sixteen bytes at a time with SSE2 (every x86-64), then eight: or the
 * first of the last few bytes (fewer than eight), or len.
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

/* ---- the lexer (RFC 8259), calling the functions above ---- */

/* Skip JSON's white space: its four bytes (not \v or \f). */
static void
white(struct scan *s)
{
	for (; s->pos < s->len; s->pos++) {
		char c = s->buf[s->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		s->space = 1;
	}
}

/* The next byte, or 0 at the end (a NUL byte is never valid there). */
static char
peek(const struct scan *s)
{
	return s->pos < s->len ? s->buf[s->pos] : '\0';
}

/*
 * The string whose quote is at s->pos: *v and *len are its bytes in the
 * text, or escaped and 0 when it holds an escape.  0 for what jansson
 * must decide: a control character, a byte >= 0x80 (jansson refuses
 * overlong forms and surrogates), a \u escape or an invalid one, no
 * closing quote.
 */
static int
string(struct scan *s, const unsigned char **v, size_t *len)
{
	size_t start = s->pos + 1, i = start;
	int esc = 0;

	for (;;) {
		unsigned char c;

		if ((i = skip_plain(s->buf, s->len, i)) >= s->len)
			return 0;
		c = (unsigned char)s->buf[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 >= s->len ||
			    memchr("\"\\/bfnrt", s->buf[i + 1], 8) == NULL)
				return 0;
			esc = 1;
			i += 2;
		} else if (c < ' ' || c >= 0x80) {
			return 0;
		} else {
			/* a space, or a plain byte of the last few that
			 * skip_plain() leaves */
			s->space |= c == ' ';
			i++;
		}
	}
	*v = esc ? escaped : (const unsigned char *)s->buf + start;
	*len = esc ? 0 : i - start;
	s->pos = i + 1;
	return 1;
}

static int
digit(const struct scan *s)
{
	return s->pos < s->len && s->buf[s->pos] >= '0' && s->buf[s->pos] <= '9';
}

/* Skip one or more digits: 0 when there is none. */
static int
digits(struct scan *s)
{
	if (!digit(s))
		return 0;
	while (digit(s))
		s->pos++;
	return 1;
}

/*
 * A number with a fraction or an exponent, buf[start, s->pos): 0 when it
 * overflows a double (jansson refuses it; an underflow is taken), or when
 * strtod() does not read it whole (a locale whose decimal point is not
 * '.', which jansson allows for).
 */
static int
real(struct scan *s, size_t start)
{
	char small[64], *t = small, *end;
	size_t n = s->pos - start;
	int whole;
	double d;

	if (n >= sizeof(small))
		t = malloc(n + 1);
	if (t == NULL)
		return 0;
	memcpy(t, s->buf + start, n);
	t[n] = '\0';
	errno = 0;
	d = strtod(t, &end);
	whole = end == t + n;
	if (t != small)
		free(t);
	if (!whole || (errno == ERANGE && isinf(d)))
		return 0;
	return on_number(s, d);
}

/* The number at s->pos: 0 when it is not one, or one out of range. */
static int
number(struct scan *s)
{
	size_t start = s->pos;
	unsigned long long u = 0, max = LLONG_MAX;
	int neg = peek(s) == '-', over = 0, frac = 0;

	s->pos += (size_t)neg;
	max += (unsigned long long)neg;	/* -LLONG_MIN */
	if (peek(s) == '0') {
		s->pos++;
		if (digit(s))
			return 0;	/* a leading zero */
	} else if (!digit(s)) {
		return 0;
	}
	for (; digit(s); s->pos++) {
		unsigned d = (unsigned)(s->buf[s->pos] - '0');
		over |= u > (max - d) / 10;
		u = u * 10 + d;
	}
	if (peek(s) == '.') {
		s->pos++;
		frac = 1;
		if (!digits(s))
			return 0;
	}
	if (peek(s) == 'e' || peek(s) == 'E') {
		s->pos++;
		frac = 1;
		if (peek(s) == '+' || peek(s) == '-')
			s->pos++;
		if (!digits(s))
			return 0;
	}
	if (frac)
		return real(s, start);
	if (over)
		return 0;
	return on_integer(s, neg ? (long long)(0 - u) : (long long)u);
}

static int
literal(struct scan *s, const char *word, size_t n)
{
	if (s->len - s->pos < n || memcmp(s->buf + s->pos, word, n) != 0)
		return 0;
	s->pos += n;
	return 1;
}

static int value(struct scan *s);

/*
 * The rest of a container after its first byte, up to its closing one:
 * members KEY: VALUE (object) or values (array), separated by commas.
 */
static int
members(struct scan *s, int is_map)
{
	const unsigned char *k;
	size_t len;
	char close = is_map ? '}' : ']';

	s->pos++;
	if (!open_container(s, is_map))
		return 0;
	white(s);
	if (peek(s) != close) {
		for (;;) {
			if (is_map) {
				if (peek(s) != '"' || !string(s, &k, &len) ||
				    !on_key(s, k, len))
					return 0;
				white(s);
				if (peek(s) != ':')
					return 0;
				s->pos++;
				white(s);
			}
			if (!value(s))
				return 0;
			white(s);
			if (peek(s) != ',')
				break;
			s->pos++;
			white(s);
		}
		if (peek(s) != close)
			return 0;
	}
	s->pos++;
	return on_end(s);
}

/* One value at s->pos (nesting is bounded by open_container()). */
static int
value(struct scan *s)
{
	const unsigned char *v;
	size_t len;

	switch (peek(s)) {
	case '{':
		return members(s, 1);
	case '[':
		return members(s, 0);
	case '"':
		return string(s, &v, &len) && on_string(s, v, len);
	case 't':
		return literal(s, "true", 4) && on_bool(s, 1);
	case 'f':
		return literal(s, "false", 5) && on_bool(s, 0);
	case 'n':
		return literal(s, "null", 4) && on_null(s);
	default:
		return number(s);
	}
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
	int ok;

	memset(f, 0, sizeof(*f));
	s.buf = buf;
	s.len = len;
	s.pos = 0;
	s.space = 0;
	s.f = f;
	s.depth = 0;
	s.want = M_NONE;
	s.nkeys = 0;
	s.ptrs = ptrs;
	s.nptrs = nptrs;
	for (size_t i = 0; i < nptrs; i++)
		ptrs[i].off = ptrs[i].len = 0;
	white(&s);
	ok = value(&s);
	white(&s);
	if (!ok || s.pos != len || f->type == NULL) {
		memset(f, 0, sizeof(*f));
		return 0;
	}
	f->space = s.space;
	return 1;
}
