/* Unit tests: the metrics registry's exposition text (metrics.h) and the
 * listen address of metrics_http.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "metrics_http.h"
#include "unit.h"

static const char *const in_ns[] = { "input", "namespace", NULL };
static const char *const handler[] = { "handler", NULL };

static char *
render(struct metrics *m)
{
	size_t len;
	char *t = metrics_render(m, &len);

	CHECK(strlen(t) == len);
	return t;
}

static void
test_counter_and_gauge(void)
{
	struct metrics *m = metrics_new();
	struct metric_family *c = metrics_family(m, METRIC_COUNTER,
	    "eventreactor_events_accepted_total", "Events accepted.", in_ns, 1);
	struct metric_family *g = metrics_family(m, METRIC_GAUGE,
	    "eventreactor_store_queue_depth", "Records queued.", NULL, -1);
	struct metric_series *a;
	char *t;

	t = render(m);
	CHECK_STR(t, "# HELP eventreactor_events_accepted_total Events "
	    "accepted.\n"
	    "# TYPE eventreactor_events_accepted_total counter\n"
	    "# HELP eventreactor_store_queue_depth Records queued.\n"
	    "# TYPE eventreactor_store_queue_depth gauge\n");
	free(t);
	a = metrics_series(c, (const char *const[]){ "pull", "local" });
	metrics_add(a, 1);
	metrics_add(a, 2);
	CHECK(metrics_series(c, (const char *const[]){ "pull", "local" }) == a);
	metrics_add(metrics_series(c, (const char *const[]){ "rep", "x" }), 1);
	metrics_set(metrics_series(g, NULL), 12345678901.0);
	t = render(m);
	CHECK_STR(t, "# HELP eventreactor_events_accepted_total Events "
	    "accepted.\n"
	    "# TYPE eventreactor_events_accepted_total counter\n"
	    "eventreactor_events_accepted_total{input=\"pull\","
	    "namespace=\"local\"} 3\n"
	    "eventreactor_events_accepted_total{input=\"rep\","
	    "namespace=\"x\"} 1\n"
	    "# HELP eventreactor_store_queue_depth Records queued.\n"
	    "# TYPE eventreactor_store_queue_depth gauge\n"
	    "eventreactor_store_queue_depth 12345678901\n");
	free(t);
	metrics_free(m);
	metrics_free(NULL);
}

/* metrics_single: a family without labels and its one series, made at 0 */
static void
test_single(void)
{
	struct metrics *m = metrics_new();
	struct metric_series *s = metrics_single(m, METRIC_COUNTER,
	    "eventreactor_store_writes_total", "Records committed.");
	char *t;

	t = render(m);
	CHECK_STR(t, "# HELP eventreactor_store_writes_total Records "
	    "committed.\n"
	    "# TYPE eventreactor_store_writes_total counter\n"
	    "eventreactor_store_writes_total 0\n");
	free(t);
	metrics_add(s, 7);
	t = render(m);
	CHECK(strstr(t, "\neventreactor_store_writes_total 7\n") != NULL);
	free(t);
	metrics_free(m);
}

static void
test_escaping(void)
{
	struct metrics *m = metrics_new();
	struct metric_family *c = metrics_family(m, METRIC_COUNTER, "x_total",
	    "A \\ help\nof two lines, \"quoted\".", handler, 0);
	char *t;

	metrics_add(metrics_series(c, (const char *const[]){
	    "a\"b\\c\nd" }), 1);
	t = render(m);
	CHECK_STR(t, "# HELP x_total A \\\\ help\\nof two lines, "
	    "\"quoted\".\n"
	    "# TYPE x_total counter\n"
	    "x_total{handler=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(t);
	metrics_free(m);
}

static void
test_histogram(void)
{
	static const double b[] = { 0.005, 0.1, 1, 2.5 };
	struct metrics *m = metrics_new();
	struct metric_family *f = metrics_histogram(m, "run_seconds",
	    "Run time.", handler, b, 4);
	struct metric_series *s = metrics_series(f, (const char *const[]){
	    "h" });
	char *t;

	metrics_observe(s, 0.001);
	metrics_observe(s, 0.1);	/* le is inclusive */
	metrics_observe(s, 0.5);
	metrics_observe(s, 30);
	t = render(m);
	CHECK_STR(t, "# HELP run_seconds Run time.\n"
	    "# TYPE run_seconds histogram\n"
	    "run_seconds_bucket{handler=\"h\",le=\"0.005\"} 1\n"
	    "run_seconds_bucket{handler=\"h\",le=\"0.1\"} 2\n"
	    "run_seconds_bucket{handler=\"h\",le=\"1\"} 3\n"
	    "run_seconds_bucket{handler=\"h\",le=\"2.5\"} 3\n"
	    "run_seconds_bucket{handler=\"h\",le=\"+Inf\"} 4\n"
	    "run_seconds_sum{handler=\"h\"} 30.601\n"
	    "run_seconds_count{handler=\"h\"} 4\n");
	free(t);
	metrics_free(m);
}

static void
test_bound(void)
{
	struct metrics *m = metrics_new();
	struct metric_family *c = metrics_family(m, METRIC_COUNTER, "e_total",
	    "E.", in_ns, 1);
	struct metric_series *o1, *o2;
	char ns[32], *t;

	for (int i = 0; i < METRICS_MAX_SERIES; i++) {
		snprintf(ns, sizeof(ns), "ns%d", i);
		metrics_add(metrics_series(c, (const char *const[]){ "pull",
		    ns }), 1);
	}
	CHECK(metrics_nseries(c) == METRICS_MAX_SERIES);
	/* a known one is still its own */
	metrics_add(metrics_series(c, (const char *const[]){ "pull", "ns7" }),
	    1);
	o1 = metrics_series(c, (const char *const[]){ "pull", "new1" });
	o2 = metrics_series(c, (const char *const[]){ "pull", "new2" });
	CHECK(o1 == o2);
	metrics_add(o1, 1);
	metrics_add(o2, 1);
	/* one "other" a value of the other labels */
	CHECK(metrics_series(c, (const char *const[]){ "rep", "new3" }) != o1);
	CHECK(metrics_nseries(c) == METRICS_MAX_SERIES + 2);
	t = render(m);
	CHECK_CONTAINS(t, "\ne_total{input=\"pull\",namespace=\"ns7\"} 2\n");
	CHECK_CONTAINS(t, "\ne_total{input=\"pull\",namespace=\"other\"} 2\n");
	CHECK_CONTAINS(t, "\ne_total{input=\"rep\",namespace=\"other\"} 0\n");
	CHECK(strstr(t, "new") == NULL);
	free(t);
	metrics_free(m);

	/* a value over METRICS_MAX_VALUE bytes is "other" at once */
	m = metrics_new();
	c = metrics_family(m, METRIC_COUNTER, "e_total", "E.", in_ns, 1);
	char longv[METRICS_MAX_VALUE + 2];
	memset(longv, 'n', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	o1 = metrics_series(c, (const char *const[]){ "pull", longv });
	longv[METRICS_MAX_VALUE] = '\0';	/* at the bound: kept */
	o2 = metrics_series(c, (const char *const[]){ "pull", longv });
	CHECK(o1 != o2);
	metrics_add(o1, 1);
	t = render(m);
	CHECK_CONTAINS(t, "\ne_total{input=\"pull\",namespace=\"other\"} 1\n");
	free(t);
	metrics_free(m);
}

static void
test_hooks_and_process(void)
{
	struct metrics *m = metrics_new();
	char *t;
	long long rss = 0;
	double start = 0;

	metrics_process(m);
	t = render(m);
	CHECK_CONTAINS(t, "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes ");
	CHECK_CONTAINS(t, "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds ");
	sscanf(strstr(t, "\nprocess_resident_memory_bytes ") + 31, "%lld",
	    &rss);
	sscanf(strstr(t, "\nprocess_start_time_seconds ") + 28, "%lf", &start);
	CHECK(rss > 100000);
	CHECK(start > 1.7e9);
	free(t);
	metrics_free(m);
}

static void
test_addr(void)
{
	char host[64], why[256];
	int port = -1;

	CHECK(metrics_http_addr("127.0.0.1:9477", host, sizeof(host), &port,
	    why, sizeof(why)) == 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK(port == 9477);
	CHECK(metrics_http_addr("[::1]:0", host, sizeof(host), &port, why,
	    sizeof(why)) == 0);
	CHECK_STR(host, "::1");
	CHECK(port == 0);
	CHECK(metrics_http_addr("127.0.0.1:65536", host, sizeof(host), &port,
	    why, sizeof(why)) == -1);
	CHECK_STR(why, "\"127.0.0.1:65536\": the port must be a number from 0 "
	    "to 65535");
	CHECK(metrics_http_addr("127.0.0.1:-1", host, sizeof(host), &port,
	    why, sizeof(why)) == -1);
	CHECK(metrics_http_addr("127.0.0.1:", host, sizeof(host), &port,
	    why, sizeof(why)) == -1);
	const char *bad[] = { "localhost:9477", "9477", "::1:9477",
	    "[127.0.0.1]:1", ":9477", "[::1:9477" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(metrics_http_addr(bad[i], host, sizeof(host), &port, why,
		    sizeof(why)) == -1);
		CHECK_CONTAINS(why, "is not HOST:PORT with a numeric IPv4 "
		    "address or an IPv6 one in brackets");
	}
	CHECK(metrics_http_loopback("127.0.0.2"));
	CHECK(metrics_http_loopback("::1"));
	CHECK(!metrics_http_loopback("0.0.0.0"));
}

int
main(void)
{
	test_counter_and_gauge();
	test_single();
	test_escaping();
	test_histogram();
	test_bound();
	test_hooks_and_process();
	test_addr();
	UNIT_END("test_metrics");
}
