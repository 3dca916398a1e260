/*
 * sub_metrics: event-sub's series on /metrics (event-reactor(7),
 * "Metrics"; metrics.h, metrics_http.h): handler runs by handler and
 * status, their durations, the run queue, the Python workers.  Counted
 * in the loop's thread as runs end; the queue and the workers read at
 * scrape time.  Every function takes NULL (metrics off) as a no-op.
 */
#ifndef ER_SUB_METRICS_H
#define ER_SUB_METRICS_H

#include <stddef.h>

#include "match.h"
#include "run.h"

struct drivers;
struct loop;
struct sub_metrics;

/*
 * Serve on fd (metrics_http_listen()'s, taken over) from loop l, reading
 * *qlen and *drv at each scrape (the caller's, which outlive sm).  NULL
 * with err on failure.
 */
struct sub_metrics *sub_metrics_new(int fd, struct loop *l,
    const size_t *qlen, struct drivers *const *drv, char *err, size_t errsz);
void sub_metrics_free(struct sub_metrics *sm);

/* A run of h ended (or was set aside) as r says. */
void sub_metrics_run(struct sub_metrics *sm, const struct handler *h,
    const struct run_result *r);

#endif
