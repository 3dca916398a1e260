/*
 * metrics: a small registry of Prometheus series and their text
 * exposition, format 0.0.4 (prometheus.io/docs/instrumenting/
 * exposition_formats): "# HELP" and "# TYPE" lines, then one line a
 * series, families and series in the order they were made.  Label values
 * escaped as the format says (\\, \", \n); HELP texts likewise, without
 * the quote.  The HTTP side: metrics_http.h.
 *
 * A family (struct metric_family) is one metric name with its type, help
 * text and label names; a series (struct metric_series) one set of label
 * values of it, found or made by metrics_series() and kept until
 * metrics_free(), so that a caller may keep the pointer and count through
 * it without a lookup.  Counters and gauges hold a double (integers exact
 * up to 2^53); histograms fixed buckets (upper bounds, "+Inf" added).
 *
 * Label values from event data (a namespace) would let a feeder grow the
 * registry without bound: a family made with a bounded label takes at most
 * METRICS_MAX_SERIES series; past that, a new series gets METRICS_OTHER
 * as the value of that label, as does a value over METRICS_MAX_VALUE
 * bytes (event-reactor(7), "Metrics").
 *
 * Single-threaded: every call from the thread that runs the owner's loop.
 * What other threads count is read at scrape time by a hook
 * (metrics_on_scrape()).
 */
#ifndef ER_METRICS_H
#define ER_METRICS_H

#include <stddef.h>

/* Series a family with a bounded label takes before METRICS_OTHER. */
#define METRICS_MAX_SERIES 1000
#define METRICS_OTHER "other"
/* A bounded label's value longer than this (bytes) is METRICS_OTHER too. */
#define METRICS_MAX_VALUE 128
/* Labels of one family, buckets of one histogram, at most. */
#define METRICS_MAX_LABELS 4
#define METRICS_MAX_BUCKETS 20

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics;
struct metric_family;
struct metric_series;

/* An empty registry; never fails (xmalloc).  Free with metrics_free()
 * (NULL: no-op). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * A new family in m: name and help (static strings, not copied), its
 * label names (static, NULL-terminated, up to METRICS_MAX_LABELS; NULL:
 * none).  bounded: the index of the label whose values come from outside
 * (METRICS_MAX_SERIES, then METRICS_OTHER), -1 for none.  A histogram
 * takes its bucket bounds from metrics_histogram() instead.
 */
struct metric_family *metrics_family(struct metrics *m, enum metric_type t,
    const char *name, const char *help, const char *const *labels,
    int bounded);
/* A histogram family: n upper bounds, increasing (up to
 * METRICS_MAX_BUCKETS; copied), "+Inf" implied. */
struct metric_family *metrics_histogram(struct metrics *m, const char *name,
    const char *help, const char *const *labels, const double *bounds,
    size_t n);

/*
 * f's series of the label values values[] (one per label name, copied;
 * NULL when f has none), made at 0 when new.  Never NULL.
 */
struct metric_series *metrics_series(struct metric_family *f,
    const char *const *values);
/* The one series of a new family without labels (name and help as for
 * metrics_family()).  Never NULL. */
struct metric_series *metrics_single(struct metrics *m, enum metric_type t,
    const char *name, const char *help);
/* Series in f so far. */
size_t metrics_nseries(const struct metric_family *f);

/* A counter or gauge: add v; set it to v.  A histogram: observe v. */
void metrics_add(struct metric_series *s, double v);
void metrics_set(struct metric_series *s, double v);
void metrics_observe(struct metric_series *s, double v);

/*
 * Call fn(m, arg) before each rendering, in the order added: it sets the
 * gauges and counters read from elsewhere (another thread's counts, a
 * queue's depth).
 */
void metrics_on_scrape(struct metrics *m,
    void (*fn)(struct metrics *m, void *arg), void *arg);

/*
 * process_resident_memory_bytes (/proc/self/statm's resident pages) and
 * process_start_time_seconds (/proc/self/stat's starttime, from boot,
 * plus /proc/stat's btime), as Prometheus's client libraries name them.
 * Once a process: their state is static.
 */
void metrics_process(struct metrics *m);

/* The hooks run, then the text of every family: a NUL-terminated string
 * (free() it), its length in *len. */
char *metrics_render(struct metrics *m, size_t *len);

#endif
