/* sub_metrics: event-sub's series.  See sub_metrics.h. */
#include <stdlib.h>

#include "config.h"
#include "driver.h"
#include "metrics.h"
#include "metrics_http.h"
#include "sub.h"
#include "sub_metrics.h"
#include "util.h"

struct sub_metrics {
	struct metrics *m;
	struct metrics_http *http;
	struct metric_family *runs, *duration;
	struct metric_series *queue, *workers, *restarts;
	const size_t *qlen;
	struct drivers *const *drv;
};

static const char *const handler_status[] = { "handler", "status", NULL };
static const char *const handler_only[] = { "handler", NULL };
/* Run durations (seconds): a shell command's few ms to its timeouts. */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 300 };

static void
scrape(struct metrics *m, void *arg)
{
	struct sub_metrics *sm = arg;
	struct driver_stats st;

	(void)m;
	metrics_set(sm->queue, (double)*sm->qlen);
	drivers_stats(*sm->drv, &st);
	metrics_set(sm->workers, st.workers);
	metrics_set(sm->restarts, (double)st.restarts);
}

int
sub_metrics_listen(const struct cfg *cfg, int *fd, char *err, size_t errsz)
{
	const char *at = cfg->sub_metrics_listen[0] != '\0' ?
	    cfg->sub_metrics_listen : cfg->metrics_listen;

	*fd = -1;
	if (at[0] == '\0')
		return 0;
	*fd = metrics_http_listen(at, err, errsz);
	return *fd >= 0 ? 0 : -1;
}

struct sub_metrics *
sub_metrics_new(int fd, struct loop *l, const size_t *qlen,
    struct drivers *const *drv, char *err, size_t errsz)
{
	struct sub_metrics *sm = xcalloc(1, sizeof(*sm));
	struct metrics *m = metrics_new();

	sm->m = m;
	sm->qlen = qlen;
	sm->drv = drv;
	/* handlers come from event-handlers.json: no bound of ours */
	sm->runs = metrics_family(m, METRIC_COUNTER,
	    "eventreactor_handler_runs_total", "Handler runs, by handler (as "
	    "written in event-handlers.json) and status.", handler_status, -1);
	sm->duration = metrics_histogram(m,
	    "eventreactor_handler_run_duration_seconds", "How long handler "
	    "runs took (those that ran: ok, failed, timeout).", handler_only,
	    buckets, sizeof(buckets) / sizeof(buckets[0]));
	sm->queue = metrics_single(m, METRIC_GAUGE,
	    "eventreactor_run_queue_depth",
	    "Runs waiting for a slot of their driver.");
	sm->workers = metrics_single(m, METRIC_GAUGE,
	    "eventreactor_python_workers_alive", "Python worker processes "
	    "alive (pyfunc).");
	sm->restarts = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_python_workers_restarted_total", "Python workers "
	    "started in place of one that ended (killed at a timeout, grown "
	    "past python_max_rss_mb, crashed, recycled).");
	metrics_process(m);
	metrics_on_scrape(m, scrape, sm);
	sm->http = metrics_http_new(m, l, fd, err, errsz);
	if (sm->http == NULL) {
		sub_metrics_free(sm);
		return NULL;
	}
	return sm;
}

void
sub_metrics_free(struct sub_metrics *sm)
{
	if (sm == NULL)
		return;
	metrics_http_free(sm->http);
	metrics_free(sm->m);
	free(sm);
}

void
sub_metrics_run(struct sub_metrics *sm, const struct handler *h,
    const struct run_result *r)
{
	if (sm == NULL)
		return;
	metrics_add(metrics_series(sm->runs, (const char *const[]){
	    h->handler, run_status_name(r->status) }), 1);
	if (r->status == RUN_OK || r->status == RUN_FAILED ||
	    r->status == RUN_TIMEOUT)
		metrics_observe(metrics_series(sm->duration,
		    (const char *const[]){ h->handler }), r->duration_ms / 1000);
}
