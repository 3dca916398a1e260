/*
 * out_zmq: the zeromq output, a PUB stream (event-reactor(7), "Wire protocol";
 * bus.h, "The event stream"): an XPUB bound to the section's endpoint,
 * which hands the router each subscription to apply and, with topic
 * framing, to answer with a control message.  A subscriber whose queue is
 * full holds publishing back for up to limits.publish_wait_ms ("Slow
 * subscribers").  Its ops table is output_zmq (output.h); its settings,
 * and where event-sub subscribes: out_zmq.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "cfg_reader.h"
#include "endpoint.h"
#include "log.h"
#include "loop.h"
#include "out_zmq.h"
#include "output.h"
#include "util.h"

extern const struct output_ops output_zmq;

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

/*
 * A subscription (on) or a cancel arrived on z (bus_stream_take).  A
 * cancel changes nothing: ZeroMQ's XPUB passes one up for any prefix a
 * peer names, subscribed or not, so cancels cannot say that no subscriber
 * is left (a peer that cancelled what it never subscribed made the router
 * publish nothing to anyone).  What no subscriber takes ZeroMQ drops.
 */
static void
changed(void *arg, int on, const void *prefix, size_t len)
{
	struct zpub *z = arg;

	(void)prefix;
	(void)len;
	if (!on)
		return;
	z->subscriptions++;
	if (z->framing == CFG_FRAMING_TOPIC)
		z->greet = 1;
}

/* Take the subscription messages waiting on z (bus.h). */
static void
take(struct zpub *z)
{
	int n = bus_stream_take(z->sock, changed, z);

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
	int rc = 0;

	if (now_ns - z->took_ns >= BUS_TAKE_US * 1000LL)
		take(z);
	/* no subscriber yet: ZeroMQ would drop it, after the work of a
	 * send (an output that no one reads, as the default second one
	 * often is) */
	if (z->subscriptions > 0)
		rc = pub_send(z, ev->topic, ev->topic_len, ev->json,
		    ev->json_len, ev);
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
	const struct out_zmq_conf *oc = o->plugin->conf;
	struct zpub *z = xcalloc(1, sizeof(*z));
	char why[CFG_URI_MAX + 128];

	(void)index;
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

/* ---- its section ---- */

/* Two outputs cannot bind one endpoint; port 0 and * pick a free one. */
static int
same_endpoint(const char *a, const char *b)
{
	const char *port = strrchr(a, ':');

	if (strcmp(a, b) != 0)
		return 0;
	return !(strncmp(a, "tcp://", 6) == 0 && port != NULL &&
	    (strcmp(port, ":0") == 0 || strcmp(port, ":*") == 0));
}

/*
 * The defaults: CFG_DEFAULT_PUB, one frame per event; a second built-in
 * one (p->at -1 after another), CFG_DEFAULT_TOPIC_PUB with topic framing.
 */
static void
set_defaults(const struct cfg *cfg, const struct cfg_plugin *p,
    struct out_zmq_conf *c)
{
	int builtin = 0;

	for (int i = 0; i < cfg->noutputs; i++)
		builtin += cfg->outputs[i].ops == &output_zmq &&
		    cfg->outputs[i].at == -1;
	snprintf(c->uri, sizeof(c->uri), "%s", p->at == -1 && builtin > 0 ?
	    CFG_DEFAULT_TOPIC_PUB : CFG_DEFAULT_PUB);
	c->framing = p->at == -1 && builtin > 0 ? CFG_FRAMING_TOPIC :
	    CFG_FRAMING_EVENT;
}

static int
zpub_parse(struct cfg_reader *r, const struct cfg_node *conf,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	static const char *const known[] = { "protocol", "listen_address",
	    "port", "uri", "type", "framing", NULL };
	struct out_zmq_conf *c = xcalloc(1, sizeof(*c));

	p->conf = c;
	set_defaults(cfg, p, c);
	if (endpoint_read(r, conf, known, "zmq.PUB", "the PUB output "
	    "(outputs)", c->uri, sizeof(c->uri)) != 0 ||
	    cfg_get_framing(r, conf, &c->framing) != 0)
		return -1;
	for (int k = 0; k < cfg->noutputs; k++) {
		const struct cfg_plugin *e = &cfg->outputs[k];
		const struct out_zmq_conf *ec = e->conf;
		if (e->ops == &output_zmq && same_endpoint(ec->uri, c->uri))
			return cfg_error(r, cfg_member(conf, "uri") ? "uri" :
			    cfg_member(conf, "port") ? "port" : NULL,
			    "outputs[%d] binds %s too: give each output its "
			    "own endpoint", e->at, c->uri);
	}
	return 0;
}

const struct output_ops output_zmq = {
	.name = "zeromq",
	.parse = zpub_parse,
	.ready_key = "pub",
	.open = zpub_open,
	.publish = zpub_publish,
	.flush = zpub_flush,
	.close = zpub_close,
	.describe = zpub_describe,
	.stats = zpub_stats,
};

/* ---- where event-sub subscribes ---- */

/*
 * The URI to subscribe to an output at, uri, into out[outsz]: a wildcard
 * host taken as loopback.  Returns 0, or -1 with why when it gives no
 * address to connect to.
 */
static int
connect_uri(const char *uri, char *out, size_t outsz, char *why,
    size_t whysz)
{
	char host[CFG_URI_MAX];
	long port;

	if (strncmp(uri, "ipc://", 6) == 0) {
		snprintf(out, outsz, "%s", uri);
	} else if (endpoint_tcp(uri, host, sizeof(host), &port) != 0 ||
	    port == 0) {
		snprintf(why, whysz, "subscriber.uri is not set, and the output "
		    "%s gives no address to connect to: set subscriber.uri",
		    uri);
		return -1;
	} else if (endpoint_wildcard(host)) {
		snprintf(out, outsz, "tcp://%s:%ld", strchr(host, ':') ?
		    "[::1]" : "127.0.0.1", port);
	} else {
		snprintf(out, outsz, "%s", uri);
	}
	return 0;
}

/* The i-th zeromq output of cfg, or NULL past the last. */
static const struct out_zmq_conf *
nth(const struct cfg *cfg, int i)
{
	for (int k = 0; k < cfg->noutputs; k++)
		if (cfg->outputs[k].ops == &output_zmq && i-- == 0)
			return cfg->outputs[k].conf;
	return NULL;
}

/* Does an output bound at b serve a subscriber of out? */
static int
serves(const char *b, const char *out)
{
	char host[CFG_URI_MAX], ohost[CFG_URI_MAX];
	long port, oport;

	return strcmp(b, out) == 0 ||
	    (endpoint_tcp(b, ohost, sizeof(ohost), &oport) == 0 &&
	    endpoint_tcp(out, host, sizeof(host), &port) == 0 &&
	    port == oport && port != 0 && (strcmp(host, ohost) == 0 ||
	    endpoint_wildcard(ohost)));
}

int
out_zmq_subscriber(const struct cfg *cfg, const char *uri, char *out,
    size_t outsz, enum cfg_framing *framing, char *why, size_t whysz)
{
	const struct out_zmq_conf *o = NULL, *c;

	if (uri == NULL && cfg->sub_uri[0] != '\0')
		uri = cfg->sub_uri;
	if (uri != NULL) {
		snprintf(out, outsz, "%s", uri);
	} else {
		/* follow the outputs: the first topic-framed one, else the
		 * first; its framing is then found below as for any uri */
		for (int i = 0; (c = nth(cfg, i)) != NULL && o == NULL; i++)
			if (c->framing == CFG_FRAMING_TOPIC)
				o = c;
		if (o == NULL && (o = nth(cfg, 0)) == NULL) {
			snprintf(why, whysz, "subscriber.uri is not set, and "
			    "there is no zeromq output: set subscriber.uri");
			return -1;
		}
		if (connect_uri(o->uri, out, outsz, why, whysz) != 0)
			return -1;
	}
	*framing = CFG_FRAMING_EVENT;
	if (cfg->sub_framing_set) {
		*framing = cfg->sub_framing;
		return 0;
	}
	for (int i = 0; (c = nth(cfg, i)) != NULL; i++) {
		if (serves(c->uri, out)) {
			*framing = c->framing;
			break;
		}
	}
	return 0;
}
