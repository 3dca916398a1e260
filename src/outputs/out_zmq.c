/*
 * out_zmq: the zeromq output, a PUB stream (event-reactor(7), "Wire protocol";
 * bus.h, "The event stream"): an XPUB bound to the section's endpoint,
 * which hands the router each subscription to apply and, with topic
 * framing, to answer with a control message.  A subscriber whose queue is
 * full holds publishing back for up to limits.publish_wait_ms ("Slow
 * subscribers").  Its ops table is output_zmq (output.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "loop.h"
#include "output.h"
#include "util.h"

/* How long close waits to hand the last events to subscribers. */
#define PUB_LINGER_MS 1000

struct zpub {
	struct output *o;
	struct bus_sock *sock;
	enum cfg_framing framing;
	int wait_ms;			/* limits.publish_wait_ms */
	char bound[CFG_URI_MAX];
	int io;				/* sock's loop registration */
	long long took_ns;		/* monotonic: subscriptions taken */
	unsigned long long subscriptions;	/* SUBSCRIBEs taken */
	int greet;			/* topic framing: a control owed */
	long long wait_logged_at;	/* monotonic ms */
	unsigned long long stalls;	/* subscribers set aside */
};

/* Publishing on z waits for full subscribers (on) or not (off). */
static void
set_waiting(struct zpub *z, int on)
{
	if (bus_set_nodrop(z->sock, on) != 0)
		log_warn("cannot set ZMQ_XPUB_NODROP: %s", strerror(errno));
}

/* Say (in debug, once a second at most) that publishing waits. */
static void
wait_log(struct zpub *z)
{
	long long now = util_mono_ms();

	if (now - z->wait_logged_at >= 1000) {
		z->wait_logged_at = now;
		log_debug("a subscriber's queue is full: publishing waits for "
		    "it (up to %d ms)", z->wait_ms);
	}
}

/* ZeroMQ is done with an event's text (bus_send_nocopy). */
static void
release_share(void *data, void *share)
{
	(void)data;
	event_release(share);
}

/*
 * One frame on z: data, or without a copy ev's text (ev holds it, and
 * ZeroMQ's I/O thread gives its hold back once the frame is sent).
 */
static int
send_frame(struct zpub *z, const char *data, size_t len,
    const struct event *ev, int more, int dontwait)
{
	if (ev == NULL)
		return bus_send(z->sock, data, len, more, dontwait);
	return bus_send_nocopy(z->sock, ev->json, ev->json_len, more, dontwait,
	    release_share, event_share(ev));
}

/* A subscription arrived on z (bus_stream_take). */
static void
subscribed(void *arg, const void *prefix, size_t len)
{
	struct zpub *z = arg;

	(void)prefix;
	(void)len;
	z->subscriptions++;
	if (z->framing == CFG_FRAMING_TOPIC)
		z->greet = 1;
}

/* Take the subscription messages waiting on z (bus.h). */
static void
take(struct zpub *z)
{
	int n = bus_stream_take(z->sock, subscribed, z);

	z->took_ns = util_mono_ns();
	if (n > 0)
		log_debug("%d subscription messages on %s (%llu subscriptions "
		    "so far)", n, z->bound, z->subscriptions);
}

/*
 * Wait for room on z until deadline (monotonic ms) and send the first
 * frame.  Subscriptions are taken meanwhile, so that a new subscriber's
 * control message is not held back behind a full one.
 * Returns 0, or -1 with errno: EAGAIN when there was no room by then, or
 * the router stops.
 */
static int
send_waiting(struct zpub *z, const char *first, size_t flen,
    const struct event *fev, int more, long long deadline)
{
	const struct output_host *h = &z->o->host;

	for (;;) {
		long long left;

		/* what a send or a wake-up queued, then room made since */
		take(z);
		if (send_frame(z, first, flen, fev, more, 1) == 0)
			return 0;
		if (errno != EAGAIN)
			return -1;
		left = deadline - util_mono_ms();
		if (left <= 0 || h->stopping(h->arg)) {
			errno = EAGAIN;
			return -1;
		}
		if (bus_stream_wait(z->sock, left) < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * One message on z (event-reactor(7), "Wire protocol"): the body alone, or with
 * topic framing the topic, then the body; ev: the body is ev's text, sent
 * without a copy.  A subscriber whose queue is full holds publishing back
 * (XPUB_NODROP) for up to publish_wait_ms, so that a slow one loses
 * nothing and pushes back on the inputs ("Slow subscribers").  One still
 * full then is stalled: this message goes out without XPUB_NODROP, which
 * makes ZeroMQ set every full queue aside (libzmq's distributor
 * deactivates a pipe a write fails on) until its subscriber has read half
 * of it; it misses events meanwhile, and publishing waits for the others
 * again at once.
 * Returns 0, or -1 (errno set) when the message was dropped.
 */
static int
pub_send(struct zpub *z, const char *topic, size_t tlen, const char *body,
    size_t blen, const struct event *ev)
{
	int two = z->framing == CFG_FRAMING_TOPIC;
	/* the first frame is the one that may wait */
	const char *first = two ? topic : body;
	size_t flen = two ? tlen : blen;
	const struct event *fev = two ? NULL : ev;
	int rc;

	if (send_frame(z, first, flen, fev, two, 1) != 0) {
		if (errno != EAGAIN || z->wait_ms == 0)
			return -1;
		wait_log(z);
		rc = send_waiting(z, first, flen, fev, two, util_mono_ms() +
		    z->wait_ms);
		if (rc != 0) {
			if (errno != EAGAIN)
				return -1;
			z->stalls++;
			log_warn("a subscriber has had no room for %d ms (its "
			    "queue of %d messages is full): it misses events "
			    "until it has read half of it; the others are "
			    "still waited for (limits.publish_wait_ms)",
			    z->wait_ms, BUS_PUB_HWM);
			set_waiting(z, 0);
			rc = send_frame(z, first, flen, fev, two, 1);
			if (rc == 0 && two)
				rc = send_frame(z, body, blen, ev, 0, 1);
			set_waiting(z, 1);
			return rc;
		}
	}
	/* the first frame passed: the second one always follows it */
	return two ? send_frame(z, body, blen, ev, 0, 1) : 0;
}

/* During a burst, subscriptions are taken every BUS_TAKE_US (bus.h). */
static int
zpub_publish(struct output *o, const struct event *ev, long long now_ns)
{
	struct zpub *z = o->ctx;
	int rc = pub_send(z, ev->topic, ev->topic_len, ev->json, ev->json_len,
	    ev);

	if (now_ns - z->took_ns >= BUS_TAKE_US * 1000LL)
		take(z);
	return rc;
}

/*
 * Take z's subscriptions, then publish the control message owed on a
 * topic-framed output (event-reactor(7), "Wire protocol"): an empty topic, then
 * BUS_CONTROL_TEXT, once for every subscription taken together (each
 * subscriber of "" gets it).  An event-framed output carries events only.
 * Like an event: a full subscriber must not keep the greeting from the
 * new one.  After a turn's sends (flush) and when the XPUB has
 * subscriptions (loop callback).
 */
static void
zpub_flush(struct output *o)
{
	static const char text[] = BUS_CONTROL_TEXT;
	struct zpub *z = o->ctx;

	take(z);
	if (z->greet) {
		z->greet = 0;
		pub_send(z, "", 0, text, sizeof(text) - 1, NULL);
	}
}

static void
on_subscriptions(struct loop *l, int mask, void *arg)
{
	(void)l;
	(void)mask;
	zpub_flush(arg);
}

static int
zpub_open(struct output *o, int index, char *err, size_t errsz)
{
	const struct cfg_output *oc = &o->host.cfg->outputs[index];
	struct zpub *z = xcalloc(1, sizeof(*z));
	char why[CFG_URI_MAX + 128];

	o->ctx = z;
	z->o = o;
	z->io = -1;
	z->framing = oc->framing;
	z->wait_ms = o->host.cfg->publish_wait_ms;
	z->sock = bus_socket(o->host.bus, BUS_XPUB, PUB_LINGER_MS, err, errsz);
	if (z->sock == NULL)
		return -1;
	if (z->wait_ms > 0 && bus_set_nodrop(z->sock, 1) != 0) {
		snprintf(err, errsz, "cannot set the PUB output's options: %s",
		    strerror(errno));
		return -1;
	}
	if (bus_bind(z->sock, oc->uri, z->bound, sizeof(z->bound), why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "cannot bind PUB output %s", why);
		return -1;
	}
	z->io = loop_add_sock(o->host.loop, z->sock, LOOP_READ,
	    on_subscriptions, o);
	return 0;
}

static void
zpub_close(struct output *o)
{
	struct zpub *z = o->ctx;

	if (z == NULL)
		return;
	loop_del(o->host.loop, z->io);
	bus_close(z->sock);
	free(z);
	o->ctx = NULL;
}

static const char *
zpub_describe(const struct output *o)
{
	const struct zpub *z = o->ctx;

	return z->bound;
}

static void
zpub_stats(const struct output *o, struct output_stats *st)
{
	const struct zpub *z = o->ctx;

	st->stalls += z->stalls;
}

const struct output_ops output_zmq = {
	.name = "zeromq",
	.ready_key = "pub",
	.open = zpub_open,
	.publish = zpub_publish,
	.flush = zpub_flush,
	.close = zpub_close,
	.describe = zpub_describe,
	.stats = zpub_stats,
};
