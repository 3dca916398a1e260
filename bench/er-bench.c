/*
 * er-bench: the load generators and floors `make bench` uses (bench/run).
 * Speaks ZeroMQ through the bus module like the daemons do.
 *
 *   er-bench push URI N SIZE [RATE] PUSH N events of about SIZE bytes, at
 *                                   most RATE a second when given;
 *                                   prints "start=<mono s> end=<mono s>"
 *   er-bench count URI N IDLE_MS    SUB (like event-sub, either framing):
 *                                   prints "ready" once subscribed (first
 *                                   control message), then counts events
 *                                   until N or IDLE_MS of silence; prints
 *                                   "count=<n> last=<mono s>"
 *   er-bench forward PULL PUB       the floor: a bare PULL -> PUB forwarder
 *                                   in the router's default framing (one
 *                                   frame per event; an XPUB in manual
 *                                   mode answering control subscriptions
 *                                   like the router, XPUB_NODROP so that
 *                                   it loses nothing: a full subscriber
 *                                   queue holds the PULL side back);
 *                                   prints "ready", runs until SIGTERM
 *   er-bench reqrep URI N           REQ round trips; prints percentiles in us
 *   er-bench spawn N PAR PROG...    posix_spawn + waitpid, PAR at once;
 *                                   prints "runs=<n> secs=<s>"
 *   er-bench match HANDLERS EVENTS N  event-sub's choice of runs on one
 *                                   core, N events taken in turn from
 *                                   EVENTS (stamped events, one a line):
 *                                   event_parse_stamped(), match_event(),
 *                                   the conditions of the matched
 *                                   handlers ("when", the event parsed
 *                                   once when one has them); prints
 *                                   "events=<n> runs=<r> secs=<s>"
 * Times are CLOCK_MONOTONIC seconds, comparable between processes.
 * With ER_BENCH_CURVE_KEY (a secret certificate) and ER_BENCH_CURVE_SERVER
 * (the router's public one) in the environment, every socket that
 * connects is a CURVE client with those keys.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "cond.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "match.h"
#include "util.h"

extern char **environ;
static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static struct bus_sock *
sock(struct bus *b, enum bus_type t, const char *uri, int bind)
{
	char err[256];
	/* a pusher must not drop what is still queued when it closes */
	struct bus_sock *s = bus_socket(b, t, t == BUS_PUSH ? 60000 : 0, err,
	    sizeof(err));

	const char *key = getenv("ER_BENCH_CURVE_KEY");
	const char *server = getenv("ER_BENCH_CURVE_SERVER");
	struct cfg_curve_client c = { 0 };

	if (s != NULL && !bind && key != NULL && server != NULL &&
	    (cfg_curve_client_load(key, server, &c, err, sizeof(err)) != 0 ||
	    bus_curve_client(s, c.public_key, c.secret_key,
	    c.server_key) != 0)) {
		fprintf(stderr, "er-bench: CURVE: %s\n", err);
		exit(1);
	}
	if (s == NULL || (bind ? bus_bind(s, uri, NULL, 0, err, sizeof(err)) :
	    bus_connect(s, uri, err, sizeof(err))) != 0) {
		fprintf(stderr, "er-bench: %s\n", err);
		exit(1);
	}
	return s;
}

static int
push(const char *uri, long n, int size, double rate)
{
	struct bus *b = bus_new();
	struct bus_sock *s = sock(b, BUS_PUSH, uri, 0);
	char buf[4096];
	double t0, t1;

	if (size > (int)sizeof(buf) - 8)
		size = (int)sizeof(buf) - 8;
	t0 = util_mono();
	for (long i = 0; i < n; i++) {
		int len = snprintf(buf, sizeof(buf), "{\"event_type\":\"bench.tick\","
		    "\"payload\":{\"seq\":%ld,\"pad\":\"", i);
		int pad = size - len - 3;
		if (pad > 0) {
			memset(buf + len, 'x', (size_t)pad);
			len += pad;
		}
		memcpy(buf + len, "\"}}", 3);
		len += 3;
		if (bus_send(s, buf, (size_t)len, 0, 0) != 0) {
			fprintf(stderr, "er-bench: send: %s\n", strerror(errno));
			return 1;
		}
		if (rate > 0) {
			/* paced: event i+1 leaves at t0 + (i+1)/rate */
			double due = t0 + (double)(i + 1) / rate, now = util_mono();
			if (due > now) {
				struct timespec ts = { (time_t)(due - now),
				    (long)((due - now - (double)(time_t)(due - now)) *
				    1e9) };
				nanosleep(&ts, NULL);
			}
		}
	}
	t1 = util_mono();
	printf("start=%.6f end=%.6f\n", t0, t1);
	bus_close(s);
	bus_free(b);
	return 0;
}

static int
count(const char *uri, long n, long idle_ms)
{
	struct bus *b = bus_new();
	struct bus_sock *s = sock(b, BUS_SUB, uri, 0);
	struct bus_msg m[2];
	long got = 0;
	double last = 0;
	int ready = 0;

	bus_subscribe(s, "");
	while (got < n) {
		struct bus_pollitem it = { s, -1, BUS_POLLIN, 0 };
		int rc = bus_poll(&it, 1, ready ? idle_ms : 30000);
		if (rc == 0)
			break;
		while (bus_recv2(s, m, 1) == 0) {
			const void *body;
			size_t len;
			if (bus_stream_what(m, &body, &len) ==
			    BUS_STREAM_CONTROL) {
				if (!ready) {
					ready = 1;
					printf("ready\n");
					fflush(stdout);
				}
			} else {
				got++;
				last = util_mono();
			}
			bus_msg_close(&m[0]);
			bus_msg_close(&m[1]);
		}
	}
	printf("count=%ld last=%.6f\n", got, last);
	bus_close(s);
	bus_free(b);
	return 0;
}

/* Any subscription: greet (topic framing, as the router's output). */
static void
owe(void *arg, int on, const void *prefix, size_t len)
{
	(void)prefix;
	(void)len;
	if (on)
		*(int *)arg = 1;
}

static int
forward(const char *pull_uri, const char *pub_uri)
{
	static const char hello[] = BUS_CONTROL_TEXT;
	static const char topic[] = "local:bench.push";
	struct bus *b = bus_new();
	struct bus_sock *in = sock(b, BUS_PULL, pull_uri, 1);
	struct bus_sock *out;
	struct bus_msg m;
	char err[256];

	out = bus_socket(b, BUS_XPUB, 0, err, sizeof(err));
	if (out == NULL || bus_bind(out, pub_uri, NULL, 0, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "er-bench: %s\n", err);
		return 1;
	}
	bus_set_nodrop(out, 1);
	bus_set_timeouts(out, 500, -1);
	signal(SIGTERM, on_term);
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		struct bus_pollitem it[2] = { { in, -1, BUS_POLLIN, 0 },
		    { out, -1, BUS_POLLIN, 0 } };
		int greet = 0;
		if (bus_poll(it, 2, 500) <= 0)
			continue;
		bus_stream_take(out, owe, &greet);
		if (greet && bus_send(out, "", 0, 1, 1) == 0)
			bus_send(out, hello, sizeof(hello) - 1, 0, 0);
		for (int i = 0; i < 256 && bus_recv(in, &m, 1) == 0; i++) {
			/* blocking sends: wait for room rather than drop;
			 * two frames, as the router's topic output */
			while (!stop && bus_send(out, topic, sizeof(topic) - 1,
			    1, 0) != 0)
				;
			bus_send(out, m.data, m.len, 0, 0);
			bus_msg_close(&m);
		}
	}
	bus_close(in);
	bus_close(out);
	bus_free(b);
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int
reqrep(const char *uri, long n)
{
	static const char ev[] = "{\"event_type\":\"bench.rtt\",\"payload\":"
	    "{\"host\":\"db-02\",\"check\":\"disk\",\"value\":0.964}}";
	struct bus *b = bus_new();
	struct bus_sock *s = sock(b, BUS_REQ, uri, 0);
	double *lat = xcalloc((size_t)n, sizeof(double));
	struct bus_msg m;

	for (long i = 0; i < n; i++) {
		double t0 = util_mono();
		if (bus_send(s, ev, sizeof(ev) - 1, 0, 0) != 0 ||
		    bus_recv(s, &m, 0) != 0) {
			fprintf(stderr, "er-bench: reqrep: %s\n", strerror(errno));
			return 1;
		}
		lat[i] = (util_mono() - t0) * 1e6;
		bus_msg_close(&m);
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	printf("p50=%.1f p99=%.1f max=%.1f\n", lat[n / 2], lat[n * 99 / 100],
	    lat[n - 1]);
	free(lat);
	bus_close(s);
	bus_free(b);
	return 0;
}

static int
spawn(long n, int par, char **argv)
{
	long started = 0, done = 0;
	int running = 0, st;
	double t0 = util_mono();

	while (done < n) {
		while (running < par && started < n) {
			pid_t pid;
			if (posix_spawnp(&pid, argv[0], NULL, NULL, argv,
			    environ) != 0) {
				fprintf(stderr, "er-bench: spawn %s failed\n",
				    argv[0]);
				return 1;
			}
			started++;
			running++;
		}
		if (waitpid(-1, &st, 0) > 0) {
			running--;
			done++;
		}
	}
	printf("runs=%ld secs=%.6f\n", done, util_mono() - t0);
	return 0;
}

struct choice {
	struct cond_doc *doc;
	long runs;
};

static void
choose(const struct handler *h, void *arg)
{
	struct choice *c = arg;

	if (h->when == NULL || cond_match(h->when, c->doc))
		c->runs++;
}

static int
match(const char *handlers, const char *events, long n)
{
	char err[1024], *text, *line, *save = NULL;
	struct match_table *t;
	char **evs = NULL;
	size_t nev = 0, len;
	long runs = 0;
	double t0;

	log_init("er-bench", LOG_LVL_ERROR);
	if ((t = cfg_load_handlers(handlers, err, sizeof(err))) == NULL ||
	    (text = util_read_file(events, 0, &len)) == NULL) {
		fprintf(stderr, "er-bench: match: %s\n", t == NULL ? err :
		    strerror(errno));
		return 1;
	}
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		evs = xrealloc(evs, (nev + 1) * sizeof(*evs));
		evs[nev++] = line;
	}
	t0 = util_mono();
	for (long i = 0; i < n && nev > 0; i++) {
		const char *e = evs[i % (long)nev];
		struct event ev;
		struct event_error ee;
		struct choice c = { NULL, 0 };
		if (cond_parse_event(t->ptrs, e, strlen(e), &ev, &ee,
		    &c.doc) != 0) {
			fprintf(stderr, "er-bench: match: %s\n", ee.message);
			return 1;
		}
		match_event(t, ev.namespace, ev.event_type, choose, &c);
		cond_doc_free(c.doc);
		event_clear(&ev);
		runs += c.runs;
	}
	printf("events=%ld runs=%ld secs=%.6f\n", n, runs, util_mono() - t0);
	free(evs);
	free(text);
	match_table_free(t);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "match") == 0)
		return match(argv[2], argv[3], atol(argv[4]));
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "push") == 0)
		return push(argv[2], atol(argv[3]), atoi(argv[4]),
		    argc == 6 ? atof(argv[5]) : 0);
	if (argc == 5 && strcmp(argv[1], "count") == 0)
		return count(argv[2], atol(argv[3]), atol(argv[4]));
	if (argc == 4 && strcmp(argv[1], "forward") == 0)
		return forward(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "reqrep") == 0)
		return reqrep(argv[2], atol(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "spawn") == 0)
		return spawn(atol(argv[2]), atoi(argv[3]), argv + 4);
	fprintf(stderr, "usage: see the comment at the top of bench/er-bench.c\n");
	return 64;
}
