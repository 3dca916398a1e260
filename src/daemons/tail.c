/*
 * tail: event-sub --tail, the router's stream as JSON lines on stdout
 * (event-sub(8)).  See include/sub.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "match.h"
#include "out_zmq.h"
#include "sub.h"

static volatile sig_atomic_t tail_stop;

static void
on_stop(int sig)
{
	(void)sig;
	tail_stop = 1;
}

/*
 * One event as one line: its text, where a line break can only be white
 * space between tokens (JSON strings hold none raw), written as a space.
 * Returns 0, or -1 when stdout is gone.
 */
static int
put_line(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
		if (putchar_unlocked(c) == EOF)
			return -1;
	}
	return putchar_unlocked('\n') == EOF || fflush(stdout) != 0 ? -1 : 0;
}

/* An event of the stream: printed when it matches pattern (NULL: all). */
static int
take(const void *body, size_t len, const char *pattern,
    unsigned long long *bad)
{
	struct event ev;
	struct event_error err;
	int rc = 0;

	if (event_parse_stamped(body, len, &ev, &err) != 0) {
		(*bad)++;
		log_warn("message ignored: %s: %s", event_err_code(err.code),
		    err.message);
		return 0;
	}
	if (pattern == NULL || match_pattern(pattern, ev.namespace,
	    ev.event_type))
		rc = put_line(ev.json, ev.json_len);
	event_clear(&ev);
	return rc;
}

/*
 * The handshakes of the SUB socket (bus_watch): a failed one is logged with
 * why, as event-sub logs it (sub.c), at most once in 30 s while libzmq
 * tries again every 100 ms.
 */
static void
read_watch(struct bus_sock *watch, const char *uri)
{
	static struct log_ratelimit rl = { .interval = 30, .burst = 1,
	    .what = "\"handshake failed\" lines" };
	char failed[160];

	if (bus_watch_read(watch, failed, sizeof(failed)) >= 0 &&
	    failed[0] != '\0')
		log_limited(&rl, LOG_LVL_WARNING, "handshake with %s failed: "
		    "%s", uri, failed);
	log_limited_flush(&rl);
}

/* Read until a stop signal or stdout goes; 0, or -1 on a socket error. */
static int
tail_loop(struct bus_sock *sock, struct bus_sock *watch, const char *uri,
    const char *pattern, unsigned long long *n, unsigned long long *bad)
{
	struct bus_pollitem it[2] = { { sock, -1, BUS_POLLIN, 0 },
	    { watch, -1, BUS_POLLIN, 0 } };
	struct bus_msg m[2];
	const void *body;
	size_t len;
	int subscribed = 0;

	while (!tail_stop) {
		if (bus_poll(it, 2, 200) < 0 && errno != EINTR)
			return -1;
		read_watch(watch, uri);
		while (!tail_stop && bus_recv2(sock, m, 1) == 0) {
			enum bus_stream_msg what = bus_stream_what(m, &body,
			    &len);
			int rc = 0;
			/* the router greets every subscriber of "" at each
			 * new subscription: the first greeting is ours */
			if (what == BUS_STREAM_CONTROL && !subscribed) {
				subscribed = 1;
				log_info("tailing %s: subscribed", uri);
			} else if (what == BUS_STREAM_EVENT) {
				(*n)++;
				rc = take(body, len, pattern, bad);
			} else
				(*bad)++;
			bus_msg_close(&m[0]);
			bus_msg_close(&m[1]);
			if (rc != 0)
				return 0;	/* stdout closed: done */
		}
	}
	return 0;
}

int
sub_tail(const struct cfg *cfg, const struct sub_opts *o)
{
	struct sigaction sa;
	enum cfg_framing framing;
	char uri[CFG_URI_MAX], err[1024];
	struct bus *b;
	struct bus_sock *sock = NULL, *watch = NULL;
	unsigned long long n = 0, bad = 0;
	int rc = 1;

	if (out_zmq_subscriber(cfg, o->uri, uri, sizeof(uri), &framing, err,
	    sizeof(err)) != 0) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);		/* a closed stdout: EPIPE */
	if ((b = bus_new()) == NULL) {
		log_error("cannot create a ZeroMQ context");
		return EX_OSERR;
	}
	sock = bus_socket(b, BUS_SUB, 0, err, sizeof(err));
	/* a CURVE client, as event-sub's start makes it (sub.c) */
	if (sock != NULL && cfg->sub_curve.on && bus_curve_client(sock,
	    cfg->sub_curve.public_key, cfg->sub_curve.secret_key,
	    cfg->sub_curve.server_key) != 0) {
		snprintf(err, sizeof(err), "CURVE options: %s", strerror(errno));
		bus_close(sock);
		sock = NULL;
	}
	if (sock == NULL || bus_subscribe(sock, "") != 0 ||
	    (watch = bus_watch(b, sock, err, sizeof(err))) == NULL ||
	    bus_connect(sock, uri, err, sizeof(err)) != 0)
		log_error("cannot subscribe to %s: %s", uri, err);
	else {
		log_info("tailing %s (%s framing)%s%s", uri, framing ==
		    CFG_FRAMING_TOPIC ? "topic" : "event", o->tail_pattern ?
		    ", events matching " : "", o->tail_pattern ?
		    o->tail_pattern : "");
		rc = tail_loop(sock, watch, uri, o->tail_pattern, &n,
		    &bad) == 0 ? 0 : 1;
		log_info("tail stopped: %llu events, %llu not events", n, bad);
	}
	bus_unwatch(sock, watch);
	bus_close(sock);
	bus_free(b);
	return rc == 0 ? 0 : EX_UNAVAILABLE;
}
