/* router_metrics: event-router's series.  See router_metrics.h. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "input.h"
#include "metrics.h"
#include "metrics_http.h"
#include "output.h"
#include "router_metrics.h"
#include "store.h"
#include "util.h"

/* An input's last namespace and its series: most inputs bring one. */
struct last {
	char ns[128];
	struct metric_series *s;
	struct metric_series *rejected[EV_ERR_COUNT];
};

struct router_metrics {
	struct metrics *m;
	struct metrics_http *http;
	struct metric_family *accepted, *rejected;
	struct metric_series *depth, *writes, *failures, *spooled, *lost;
	struct metric_series *spool_depth;
	struct metric_series *set_aside, *out_spool;
	struct store *const *store;
	struct output *const *outputs;
	const int *noutputs;
	void (*before)(void *arg);	/* router_metrics_before_scrape() */
	void *before_arg;
	struct last last[CFG_MAX_INPUTS];
};

static const char *const in_ns[] = { "input", "namespace", NULL };
static const char *const in_code[] = { "input", "code", NULL };

/* At each scrape: the store's counts (its writer thread's, under its
 * lock) and the outputs'. */
static void
scrape(struct metrics *m, void *arg)
{
	struct router_metrics *rm = arg;
	struct output_stats os = { 0 };
	struct store_stats st;

	(void)m;
	if (rm->before != NULL)
		rm->before(rm->before_arg);
	store_get_stats(*rm->store, &st);
	metrics_set(rm->depth, (double)st.depth);
	metrics_set(rm->writes, (double)st.written);
	metrics_set(rm->failures, (double)st.failed);
	metrics_set(rm->spooled, (double)st.spooled);
	metrics_set(rm->lost, (double)st.lost);
	metrics_set(rm->spool_depth, (double)st.spool_depth);
	for (int i = 0; i < *rm->noutputs; i++)
		if (rm->outputs[i]->ops->stats != NULL)
			rm->outputs[i]->ops->stats(rm->outputs[i], &os);
	metrics_set(rm->set_aside, (double)os.stalls);
	metrics_set(rm->out_spool, (double)os.spool_depth);
}

static void
families(struct router_metrics *rm)
{
	struct metrics *m = rm->m;

	rm->accepted = metrics_family(m, METRIC_COUNTER,
	    "eventreactor_events_accepted_total", "Events accepted, by input "
	    "and namespace (past 1000 namespaces: \"other\").", in_ns, 1);
	rm->rejected = metrics_family(m, METRIC_COUNTER,
	    "eventreactor_events_rejected_total", "Messages refused, by input "
	    "and rejection code.", in_code, -1);
	rm->depth = metrics_single(m, METRIC_GAUGE,
	    "eventreactor_store_queue_depth",
	    "Records queued for the store's writer.");
	rm->writes = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_store_writes_total", "Records the store committed.");
	rm->failures = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_store_write_failures_total",
	    "Records the store could not write.");
	rm->spooled = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_store_spooled_total",
	    "Records that went to the MongoDB store's spool.");
	rm->lost = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_store_lost_total",
	    "Records dropped: the MongoDB store's spool was full.");
	rm->spool_depth = metrics_single(m, METRIC_GAUGE,
	    "eventreactor_store_spool_depth", "Records in the MongoDB "
	    "store's spool file now (every daemon's).");
	rm->out_spool = metrics_single(m, METRIC_GAUGE,
	    "eventreactor_amqp_output_spool_depth", "Records in the amqp "
	    "outputs' spool files now (every record of each file).");
	rm->set_aside = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_subscribers_set_aside_total",
	    "Subscribers set aside for a full queue (zeromq outputs).");
	metrics_process(m);
	metrics_on_scrape(m, scrape, rm);
}

int
router_metrics_open(struct router_metrics **out, const struct cfg *cfg,
    struct loop *l, struct store *const *store,
    struct output *const *outputs, const int *noutputs, char *err,
    size_t errsz)
{
	struct router_metrics *rm;
	int fd;

	*out = NULL;
	if (cfg->metrics_listen[0] == '\0')
		return 0;
	if ((fd = metrics_http_listen(cfg->metrics_listen, err, errsz)) < 0)
		return -1;
	rm = xcalloc(1, sizeof(*rm));
	rm->m = metrics_new();
	rm->store = store;
	rm->outputs = outputs;
	rm->noutputs = noutputs;
	families(rm);
	rm->http = metrics_http_new(rm->m, l, fd, err, errsz);
	if (rm->http == NULL) {
		router_metrics_free(rm);
		return -1;
	}
	*out = rm;
	return 0;
}

void
router_metrics_free(struct router_metrics *rm)
{
	if (rm == NULL)
		return;
	metrics_http_free(rm->http);
	metrics_free(rm->m);
	free(rm);
}

void
router_metrics_accepted(struct router_metrics *rm, const struct input *in,
    const char *ns)
{
	struct last *k;

	if (rm == NULL)
		return;
	k = &rm->last[in->index];
	if (k->s == NULL || strcmp(k->ns, ns) != 0) {
		k->s = metrics_series(rm->accepted, (const char *const[]){
		    in->name, ns });
		/* a namespace too long for the cache is looked up each time */
		if (strlen(ns) < sizeof(k->ns))
			strcpy(k->ns, ns);
		else
			k->ns[0] = '\0';
	}
	metrics_add(k->s, 1);
}

void
router_metrics_rejected(struct router_metrics *rm, const struct input *in,
    enum event_err code)
{
	struct metric_series **s;

	if (rm == NULL)
		return;
	s = &rm->last[in->index].rejected[code];
	if (*s == NULL)
		*s = metrics_series(rm->rejected, (const char *const[]){
		    in->name, event_err_code(code) });
	metrics_add(*s, 1);
}

void
router_metrics_refused(struct router_metrics *rm, const struct input *in,
    const char *code, unsigned long long n)
{
	if (rm != NULL)
		metrics_add(metrics_series(rm->rejected, (const char *const[]){
		    in->name, code }), (double)n);
}

void
router_metrics_before_scrape(struct router_metrics *rm,
    void (*fn)(void *arg), void *arg)
{
	if (rm == NULL)
		return;
	rm->before = fn;
	rm->before_arg = arg;
}
