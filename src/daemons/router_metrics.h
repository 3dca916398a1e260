/*
 * router_metrics: event-router's series on /metrics (event-reactor(7),
 * "Metrics"; metrics.h, metrics_http.h).  Counted in the loop's thread as
 * events are taken; what the store's writer thread and the outputs count
 * is read at scrape time.  Every function takes NULL (metrics off) as a
 * no-op.
 */
#ifndef ER_ROUTER_METRICS_H
#define ER_ROUTER_METRICS_H

#include <stddef.h>

#include "event.h"

struct cfg;
struct input;
struct loop;
struct output;
struct router_metrics;
struct store;

/*
 * With cfg's "metrics" set: listen (before the router takes "user") and
 * serve from loop l, reading *store and outputs[0..*noutputs) at each
 * scrape (the router's, which outlive rm).  *rm NULL when it is off.
 * Returns 0, or -1 with err (metrics_http_listen()'s).
 */
int router_metrics_open(struct router_metrics **rm, const struct cfg *cfg,
    struct loop *l, struct store *const *store,
    struct output *const *outputs, const int *noutputs, char *err,
    size_t errsz);
void router_metrics_free(struct router_metrics *rm);
/* Call fn(arg) at each scrape before the series are read: it brings in
 * what the router counts from other threads (input_refused()). */
void router_metrics_before_scrape(struct router_metrics *rm,
    void (*fn)(void *arg), void *arg);

/* An event in accepted: of namespace ns; one refused for code. */
void router_metrics_accepted(struct router_metrics *rm,
    const struct input *in, const char *ns);
void router_metrics_rejected(struct router_metrics *rm,
    const struct input *in, enum event_err code);
/* n messages the input's own threads refused with code (input_refused()). */
void router_metrics_refused(struct router_metrics *rm,
    const struct input *in, const char *code, unsigned long long n);

#endif
