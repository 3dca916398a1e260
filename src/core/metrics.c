/* metrics: the registry and its text exposition.  See include/metrics.h. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"

/* Hash buckets of a family's series (a power of two). */
#define SERIES_HASH 1024

struct metric_series {
	struct metric_series *next;	/* in the family, in the order made */
	struct metric_series *hnext;	/* in its hash bucket */
	uint32_t hash;
	char **values;			/* one per label */
	double value;			/* counter, gauge */
	double sum;			/* histogram */
	double counts[METRICS_MAX_BUCKETS + 1];	/* per bucket, +Inf last;
						 * cumulated at render */
	const struct metric_family *f;
};

struct metric_family {
	struct metric_family *next;
	enum metric_type type;
	const char *name, *help;
	const char *const *labels;
	int nlabels;
	int bounded;			/* label index, -1: none */
	double bounds[METRICS_MAX_BUCKETS];
	size_t nbounds;
	struct metric_series *head, *tail;
	size_t nseries;
	struct metric_series *hash[SERIES_HASH];
};

struct hook {
	struct hook *next;
	void (*fn)(struct metrics *m, void *arg);
	void *arg;
};

struct metrics {
	struct metric_family *head, *tail;
	struct hook *hooks, *hooks_tail;
};

/* ---- the registry ---- */

struct metrics *
metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (struct metric_family *f = m->head, *fn; f != NULL; f = fn) {
		fn = f->next;
		for (struct metric_series *s = f->head, *sn; s != NULL;
		    s = sn) {
			sn = s->next;
			for (int i = 0; i < f->nlabels; i++)
				free(s->values[i]);
			free(s->values);
			free(s);
		}
		free(f);
	}
	for (struct hook *h = m->hooks, *hn; h != NULL; h = hn) {
		hn = h->next;
		free(h);
	}
	free(m);
}

struct metric_family *
metrics_family(struct metrics *m, enum metric_type t, const char *name,
    const char *help, const char *const *labels, int bounded)
{
	struct metric_family *f = xcalloc(1, sizeof(*f));

	f->type = t;
	f->name = name;
	f->help = help;
	f->labels = labels;
	while (labels != NULL && labels[f->nlabels] != NULL &&
	    f->nlabels < METRICS_MAX_LABELS)
		f->nlabels++;
	f->bounded = bounded < f->nlabels ? bounded : -1;
	if (m->tail != NULL)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
	return f;
}

struct metric_family *
metrics_histogram(struct metrics *m, const char *name, const char *help,
    const char *const *labels, const double *bounds, size_t n)
{
	struct metric_family *f = metrics_family(m, METRIC_HISTOGRAM, name,
	    help, labels, -1);

	f->nbounds = n < METRICS_MAX_BUCKETS ? n : METRICS_MAX_BUCKETS;
	memcpy(f->bounds, bounds, f->nbounds * sizeof(*bounds));
	return f;
}

/* FNV-1a over the values, each ended by a 0xff byte (not in UTF-8). */
static uint32_t
hash_values(const struct metric_family *f, const char *const *values)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < f->nlabels; i++) {
		for (const unsigned char *p = (const unsigned char *)values[i];
		    *p != '\0'; p++)
			h = (h ^ *p) * 16777619u;
		h = (h ^ 0xffu) * 16777619u;
	}
	return h;
}

static struct metric_series *
find(const struct metric_family *f, const char *const *values, uint32_t h)
{
	struct metric_series *s;
	int i;

	for (s = f->hash[h & (SERIES_HASH - 1)]; s != NULL; s = s->hnext) {
		if (s->hash != h)
			continue;
		for (i = 0; i < f->nlabels; i++)
			if (strcmp(s->values[i], values[i]) != 0)
				break;
		if (i == f->nlabels)
			return s;
	}
	return NULL;
}

struct metric_series *
metrics_series(struct metric_family *f, const char *const *values)
{
	const char *v[METRICS_MAX_LABELS];
	struct metric_series *s;
	uint32_t h = hash_values(f, values);

	if ((s = find(f, values, h)) != NULL)
		return s;
	if (f->bounded >= 0 && (f->nseries >= METRICS_MAX_SERIES ||
	    strlen(values[f->bounded]) > METRICS_MAX_VALUE)) {
		/* past the bound: the outside label's value is "other" */
		memcpy(v, values, (size_t)f->nlabels * sizeof(*v));
		v[f->bounded] = METRICS_OTHER;
		values = v;
		h = hash_values(f, values);
		if ((s = find(f, values, h)) != NULL)
			return s;
	}
	s = xcalloc(1, sizeof(*s));
	s->f = f;
	s->hash = h;
	s->values = xcalloc((size_t)f->nlabels + 1, sizeof(*s->values));
	for (int i = 0; i < f->nlabels; i++)
		s->values[i] = xstrdup(values[i]);
	s->hnext = f->hash[h & (SERIES_HASH - 1)];
	f->hash[h & (SERIES_HASH - 1)] = s;
	if (f->tail != NULL)
		f->tail->next = s;
	else
		f->head = s;
	f->tail = s;
	f->nseries++;
	return s;
}

struct metric_series *
metrics_single(struct metrics *m, enum metric_type t, const char *name,
    const char *help)
{
	return metrics_series(metrics_family(m, t, name, help, NULL, -1),
	    NULL);
}

size_t
metrics_nseries(const struct metric_family *f)
{
	return f->nseries;
}

void
metrics_add(struct metric_series *s, double v)
{
	s->value += v;
}

void
metrics_set(struct metric_series *s, double v)
{
	s->value = v;
}

void
metrics_observe(struct metric_series *s, double v)
{
	const struct metric_family *f = s->f;
	size_t i = 0;

	while (i < f->nbounds && v > f->bounds[i])
		i++;
	s->counts[i]++;
	s->sum += v;
}

void
metrics_on_scrape(struct metrics *m, void (*fn)(struct metrics *m, void *arg),
    void *arg)
{
	struct hook *h = xcalloc(1, sizeof(*h));

	h->fn = fn;
	h->arg = arg;
	if (m->hooks_tail != NULL)
		m->hooks_tail->next = h;
	else
		m->hooks = h;
	m->hooks_tail = h;
}

/* ---- process metrics ---- */

struct process {
	struct metric_series *rss, *start;
};

/* Seconds since the epoch the process started: boot time (btime) plus
 * its starttime (clock ticks from boot); now when /proc cannot say. */
static double
start_time(void)
{
	char *text, *p;
	unsigned long long ticks = 0, btime = 0;
	size_t len;
	int field;

	if ((text = util_read_file("/proc/stat", 1 << 20, &len)) != NULL) {
		if ((p = strstr(text, "\nbtime ")) != NULL)
			btime = strtoull(p + 7, NULL, 10);
		free(text);
	}
	if ((text = util_read_file("/proc/self/stat", 65536, &len)) != NULL) {
		/* the name, in parentheses, may hold spaces: after its ')' */
		if ((p = strrchr(text, ')')) != NULL) {
			for (field = 2; field < 22 && p != NULL; field++)
				p = strchr(p + 1, ' ');
			if (p != NULL)
				ticks = strtoull(p + 1, NULL, 10);
		}
		free(text);
	}
	if (btime == 0 || ticks == 0)
		return floor(util_now());
	return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static void
process_scrape(struct metrics *m, void *arg)
{
	struct process *p = arg;
	unsigned long long size, resident;
	char *text;
	size_t len;

	(void)m;
	text = util_read_file("/proc/self/statm", 4096, &len);
	if (text != NULL && sscanf(text, "%llu %llu", &size, &resident) == 2)
		metrics_set(p->rss, (double)resident *
		    (double)sysconf(_SC_PAGESIZE));
	free(text);
}

void
metrics_process(struct metrics *m)
{
	/* one a process (a daemon has one registry): its series are the
	 * registry's, freed with it */
	static struct process p;

	p.rss = metrics_series(metrics_family(m, METRIC_GAUGE,
	    "process_resident_memory_bytes", "Resident memory size in bytes.",
	    NULL, -1), NULL);
	p.start = metrics_series(metrics_family(m, METRIC_GAUGE,
	    "process_start_time_seconds", "Start time of the process since "
	    "unix epoch in seconds.", NULL, -1), NULL);
	metrics_set(p.start, start_time());
	metrics_on_scrape(m, process_scrape, &p);
}

/* ---- the text ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* s with \ and newline escaped, and " too when quote (label values). */
static void
put_escaped(struct buf *b, const char *s, int quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			put(b, "\\\\", 2);
		else if (*s == '\n')
			put(b, "\\n", 2);
		else if (*s == '"' && quote)
			put(b, "\\\"", 2);
		else
			put(b, s, 1);
	}
}

/* A number: an integer (to 2^53, exact in a double) as one, else the
 * shortest text that reads back the same; +Inf, -Inf, NaN as the format
 * writes them. */
static void
put_number(struct buf *b, double v)
{
	char t[64];

	if (isnan(v))
		snprintf(t, sizeof(t), "NaN");
	else if (isinf(v))
		snprintf(t, sizeof(t), v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) <= 9007199254740992.0)
		snprintf(t, sizeof(t), "%.0f", v);
	else {
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(t, sizeof(t), "%.*g", prec, v);
			if (strtod(t, NULL) == v)
				break;
		}
	}
	puts_(b, t);
}

/* "{a="x",b="y"" with le="..." last when le is not NULL, then "}"; nothing
 * for a series without labels and no le. */
static void
put_labels(struct buf *b, const struct metric_series *s, const char *le)
{
	const struct metric_family *f = s->f;

	if (f->nlabels == 0 && le == NULL)
		return;
	put(b, "{", 1);
	for (int i = 0; i < f->nlabels; i++) {
		if (i > 0)
			put(b, ",", 1);
		puts_(b, f->labels[i]);
		put(b, "=\"", 2);
		put_escaped(b, s->values[i], 1);
		put(b, "\"", 1);
	}
	if (le != NULL) {
		if (f->nlabels > 0)
			put(b, ",", 1);
		put(b, "le=\"", 4);
		puts_(b, le);
		put(b, "\"", 1);
	}
	put(b, "}", 1);
}

/* NAME[SUFFIX]{labels[,le]} VALUE\n */
static void
put_line(struct buf *b, const struct metric_series *s, const char *suffix,
    const char *le, double v)
{
	puts_(b, s->f->name);
	puts_(b, suffix);
	put_labels(b, s, le);
	put(b, " ", 1);
	put_number(b, v);
	put(b, "\n", 1);
}

static void
put_histogram(struct buf *b, const struct metric_series *s)
{
	const struct metric_family *f = s->f;
	struct buf le = { NULL, 0, 0 };
	double n = 0;

	for (size_t i = 0; i <= f->nbounds; i++) {
		n += s->counts[i];
		le.len = 0;
		if (i < f->nbounds)
			put_number(&le, f->bounds[i]);
		else
			puts_(&le, "+Inf");
		put_line(b, s, "_bucket", le.p, n);
	}
	free(le.p);
	put_line(b, s, "_sum", NULL, s->sum);
	put_line(b, s, "_count", NULL, n);
}

static const char *const type_names[] = { "counter", "gauge", "histogram" };

char *
metrics_render(struct metrics *m, size_t *len)
{
	struct buf b = { NULL, 0, 0 };

	for (struct hook *h = m->hooks; h != NULL; h = h->next)
		h->fn(m, h->arg);
	put(&b, "", 0);
	for (struct metric_family *f = m->head; f != NULL; f = f->next) {
		puts_(&b, "# HELP ");
		puts_(&b, f->name);
		put(&b, " ", 1);
		put_escaped(&b, f->help, 0);
		puts_(&b, "\n# TYPE ");
		puts_(&b, f->name);
		put(&b, " ", 1);
		puts_(&b, type_names[f->type]);
		put(&b, "\n", 1);
		for (struct metric_series *s = f->head; s != NULL; s = s->next)
			if (f->type == METRIC_HISTOGRAM)
				put_histogram(&b, s);
			else
				put_line(&b, s, "", NULL, s->value);
	}
	*len = b.len;
	return b.p;
}
