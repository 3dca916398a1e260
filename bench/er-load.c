/*
 * er-load: a load that owes nothing to Event Reactor (`make bench`'s
 * second router row, bench/run): plain libzmq sockets, none of the
 * project's code, the events of an outside producer (with a namespace).
 *
 *   er-load push URI N       PUSH, ZMQ_SNDHWM 0 (an unlimited queue: the
 *                            sender never waits), N events as fast as it
 *                            can, each {"namespace":"bench","event_type":
 *                            "load.test","payload":{"seq":I,"host":
 *                            "web-01","msg":"<64 x>"}}; prints
 *                            "start=<mono s> end=<mono s>"
 *   er-load sub URI N IDLE_MS  SUB, ZMQ_RCVHWM 0, subscribed to every
 *                            message (one frame per event: the router's
 *                            default PUB output); prints "ready" once its
 *                            connection's ZMTP handshake is done (socket
 *                            monitor), then counts messages until N or
 *                            IDLE_MS of silence after the first (30 s
 *                            before it); prints
 *                            "count=<n> first=<mono s> last=<mono s>"
 *   er-load forward PULL PUB  the floor: zmq_proxy(3) from a bound PULL to
 *                            a bound PUB with ZMQ_SNDHWM 0 (nothing
 *                            dropped), the fastest bare forwarder libzmq
 *                            offers (messages moved, never copied);
 *                            prints "ready", runs until killed
 * Times are CLOCK_MONOTONIC seconds, comparable between processes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define FIRST_TIMEOUT_MS 30000	/* sub: for the first message */

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
sock(void *ctx, int type, int hwm_opt, const char *uri, int bind)
{
	void *s = zmq_socket(ctx, type);
	int zero = 0;

	if (s == NULL || zmq_setsockopt(s, hwm_opt, &zero, sizeof(zero)) != 0 ||
	    (bind ? zmq_bind(s, uri) : zmq_connect(s, uri)) != 0) {
		fprintf(stderr, "er-load: %s: %s\n", uri, zmq_strerror(zmq_errno()));
		exit(1);
	}
	return s;
}

static int
push(const char *uri, long n)
{
	void *ctx = zmq_ctx_new();
	void *s = sock(ctx, ZMQ_PUSH, ZMQ_SNDHWM, uri, 0);
	char buf[256];
	double t0, t1;
	int linger = -1;

	t0 = mono();
	for (long i = 0; i < n; i++) {
		int len = snprintf(buf, sizeof(buf), "{\"namespace\":\"bench\","
		    "\"event_type\":\"load.test\",\"payload\":{\"seq\":%ld,"
		    "\"host\":\"web-01\",\"msg\":\"%.64s\"}}", i,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		if (zmq_send(s, buf, (size_t)len, 0) != len) {
			fprintf(stderr, "er-load: send: %s\n",
			    zmq_strerror(zmq_errno()));
			return 1;
		}
	}
	t1 = mono();
	printf("start=%.6f end=%.6f\n", t0, t1);
	fflush(stdout);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}

/*
 * Watch s for its first completed ZMTP handshake (before it connects, or
 * the event may pass unseen); returns the monitor's PAIR socket.
 */
static void *
monitor(void *ctx, void *s)
{
	void *mon;

	if (zmq_socket_monitor(s, "inproc://er-load-monitor",
	    ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0 ||
	    (mon = zmq_socket(ctx, ZMQ_PAIR)) == NULL ||
	    zmq_connect(mon, "inproc://er-load-monitor") != 0) {
		fprintf(stderr, "er-load: monitor: %s\n",
		    zmq_strerror(zmq_errno()));
		exit(1);
	}
	return mon;
}

/* Wait for the event monitor() watches for. */
static void
handshake(void *mon)
{
	zmq_msg_t m;

	zmq_msg_init(&m);
	zmq_msg_recv(&m, mon, 0);	/* event number and value */
	zmq_msg_recv(&m, mon, 0);	/* the endpoint */
	zmq_msg_close(&m);
	zmq_close(mon);
}

static int
sub(const char *uri, long n, long idle_ms)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_SUB), *mon;
	int zero = 0, timeout = FIRST_TIMEOUT_MS;
	long got = 0;
	double first = 0, last = 0;
	zmq_msg_t m;

	if (s == NULL || zmq_setsockopt(s, ZMQ_RCVHWM, &zero,
	    sizeof(zero)) != 0 || zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) != 0) {
		fprintf(stderr, "er-load: sub: %s\n", zmq_strerror(zmq_errno()));
		return 1;
	}
	mon = monitor(ctx, s);
	if (zmq_connect(s, uri) != 0) {
		fprintf(stderr, "er-load: %s: %s\n", uri,
		    zmq_strerror(zmq_errno()));
		return 1;
	}
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	handshake(mon);
	printf("ready\n");
	fflush(stdout);
	zmq_msg_init(&m);
	while (got < n) {
		if (zmq_msg_recv(&m, s, 0) < 0)
			break;		/* the idle timeout */
		last = mono();
		if (got++ == 0) {
			first = last;
			timeout = (int)idle_ms;
			zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout,
			    sizeof(timeout));
		}
	}
	zmq_msg_close(&m);
	printf("count=%ld first=%.6f last=%.6f\n", got, first, last);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}

static int
forward(const char *pull_uri, const char *pub_uri)
{
	void *ctx = zmq_ctx_new();
	void *in = sock(ctx, ZMQ_PULL, ZMQ_RCVHWM, pull_uri, 1);
	void *out = sock(ctx, ZMQ_PUB, ZMQ_SNDHWM, pub_uri, 1);

	printf("ready\n");
	fflush(stdout);
	zmq_proxy(in, out, NULL);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "push") == 0)
		return push(argv[2], atol(argv[3]));
	if (argc == 5 && strcmp(argv[1], "sub") == 0)
		return sub(argv[2], atol(argv[3]), atol(argv[4]));
	if (argc == 4 && strcmp(argv[1], "forward") == 0)
		return forward(argv[2], argv[3]);
	fprintf(stderr, "usage: see the comment at the top of bench/er-load.c\n");
	return 64;
}
