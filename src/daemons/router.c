/* router: event-router's loop.  See include/router.h. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "daemon.h"
#include "input.h"
#include "log.h"
#include "loop.h"
#include "router.h"
#include "store.h"
#include "util.h"

/* How long close waits to hand the last events to subscribers. */
#define PUB_LINGER_MS 1000
/* Input idle this long after a burst: memory goes back to the system. */
#define IDLE_MS 1000
/* While inputs drain: how often to look whether they are idle (ms). */
#define DRAIN_TICK_MS 50
/* The ready line, bytes. */
#define READY_MAX 8192

struct router;

/* A PUB stream (README.rst, "Wire protocol"). */
struct output {
	struct bus_sock *sock;
	enum cfg_framing framing;
	char bound[CFG_URI_MAX];
	long long took_ns;		/* monotonic: subscriptions last taken */
	unsigned long long subscriptions;	/* SUBSCRIBEs taken */
	int greet;			/* topic framing: a control message owed */
	struct router *r;
	int io;				/* its loop registration */
};

struct router {
	struct cfg cfg;
	struct loop *loop;
	struct bus *bus;
	struct output outputs[CFG_MAX_OUTPUTS];
	int noutputs;
	struct input *inputs[INPUT_MAX];
	int ninputs;
	struct store *store;
	unsigned long long accepted, published, pub_dropped;
	unsigned long long rejected[EV_ERR_COUNT];
	long long wait_logged_at;	/* monotonic ms */
	unsigned long long stalls;	/* subscribers set aside */
	int stopping;			/* SIGTERM or SIGINT came */
	long long drain_deadline;	/* monotonic ms */
	long long last_ns;		/* monotonic: the last input taken */
	int busy;			/* input since memory was released */
};

/*
 * 1 once the router stops: a publish waiting for a full subscriber gives
 * up at once, even before the loop has run the signal's callback.
 */
static int
stop_asked(const struct router *r)
{
	return r->stopping || loop_signal_pending(r->loop, SIGTERM) ||
	    loop_signal_pending(r->loop, SIGINT);
}

/* Publishing on o waits for full subscribers (on) or not (off). */
static void
set_waiting(struct output *o, int on)
{
	if (bus_set_nodrop(o->sock, on) != 0)
		log_warn("cannot set ZMQ_XPUB_NODROP: %s", strerror(errno));
}

/* Say (in debug, once a second at most) that publishing waits. */
static void
wait_log(struct router *r)
{
	long long now = util_mono_ms();

	if (now - r->wait_logged_at >= 1000) {
		r->wait_logged_at = now;
		log_debug("a subscriber's queue is full: publishing waits for "
		    "it (up to %d ms)", r->cfg.publish_wait_ms);
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
 * One frame on o: data, or without a copy ev's text (ev holds it, and
 * ZeroMQ's I/O thread gives its hold back once the frame is sent).
 */
static int
send_frame(struct output *o, const char *data, size_t len,
    const struct event *ev, int more, int dontwait)
{
	if (ev == NULL)
		return bus_send(o->sock, data, len, more, dontwait);
	return bus_send_nocopy(o->sock, ev->json, ev->json_len, more, dontwait,
	    release_share, event_share(ev));
}

static void take(struct output *o);

/*
 * Wait for room on o until deadline (monotonic ms) and send the first
 * frame.  Subscriptions are taken meanwhile, so that a new subscriber's
 * control message is not held back behind a full one.
 * Returns 0, or -1 with errno: EAGAIN when there was no room by then.
 */
static int
send_waiting(struct output *o, const char *first, size_t flen,
    const struct event *fev, int more, long long deadline)
{
	for (;;) {
		long long left;

		/* what a send or a wake-up queued, then room made since */
		take(o);
		if (send_frame(o, first, flen, fev, more, 1) == 0)
			return 0;
		if (errno != EAGAIN)
			return -1;
		left = deadline - util_mono_ms();
		if (left <= 0 || stop_asked(o->r)) {
			errno = EAGAIN;
			return -1;
		}
		if (bus_stream_wait(o->sock, left) < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * One message on an output (README.rst, "Wire protocol"): the body alone,
 * or with topic framing the topic, then the body; ev: the body is ev's
 * text, sent without a copy.  A subscriber whose queue is full holds
 * publishing back (XPUB_NODROP) for up to publish_wait_ms, so that a slow
 * one loses nothing and pushes back on the inputs ("Slow subscribers").
 * One still full then is stalled: this message goes out without
 * XPUB_NODROP, which makes ZeroMQ set every full queue aside (libzmq's
 * distributor deactivates a pipe a write fails on) until its subscriber
 * has read half of it; it misses events meanwhile, and publishing waits
 * for the others again at once.
 * Returns 0, or -1 (errno set) when the message was dropped.
 */
static int
pub_send(struct router *r, struct output *o, const char *topic, size_t tlen,
    const char *body, size_t blen, const struct event *ev)
{
	int two = o->framing == CFG_FRAMING_TOPIC;
	/* the first frame is the one that may wait */
	const char *first = two ? topic : body;
	size_t flen = two ? tlen : blen;
	const struct event *fev = two ? NULL : ev;
	int rc;

	if (send_frame(o, first, flen, fev, two, 1) != 0) {
		if (errno != EAGAIN || r->cfg.publish_wait_ms == 0)
			return -1;
		wait_log(r);
		rc = send_waiting(o, first, flen, fev, two, util_mono_ms() +
		    r->cfg.publish_wait_ms);
		if (rc != 0) {
			if (errno != EAGAIN)
				return -1;
			r->stalls++;
			log_warn("a subscriber has had no room for %d ms (its "
			    "queue of %d messages is full): it misses events "
			    "until it has read half of it; the others are "
			    "still waited for (limits.publish_wait_ms)",
			    r->cfg.publish_wait_ms, BUS_PUB_HWM);
			set_waiting(o, 0);
			rc = send_frame(o, first, flen, fev, two, 1);
			if (rc == 0 && two)
				rc = send_frame(o, body, blen, ev, 0, 1);
			set_waiting(o, 1);
			return rc;
		}
	}
	/* the first frame passed: the second one always follows it */
	return two ? send_frame(o, body, blen, ev, 0, 1) : 0;
}

/*
 * Counted once per event: published on every output, or dropped.  During
 * a burst, subscriptions are taken every BUS_TAKE_US (bus.h).
 */
static void
publish(struct router *r, const struct event *ev)
{
	long long now = util_mono_ns();
	int dropped = 0;

	r->last_ns = now;
	r->busy = 1;
	for (int i = 0; i < r->noutputs; i++) {
		struct output *o = &r->outputs[i];
		if (pub_send(r, o, ev->topic, ev->topic_len, ev->json,
		    ev->json_len, ev) != 0)
			dropped = 1;
		if (now - o->took_ns >= BUS_TAKE_US * 1000LL)
			take(o);
	}
	if (dropped)
		r->pub_dropped++;
	else
		r->published++;
}

/* A refused message: counted, logged, answered when in answers. */
static void
refuse(struct router *r, struct input *in, const struct event_error *err)
{
	r->last_ns = util_mono_ns();
	r->busy = 1;
	r->rejected[err->code]++;
	log_limited(&in->reject_rl, LOG_LVL_WARNING,
	    "event rejected on %s: %s: %s", in->name,
	    event_err_code(err->code), err->message);
	if (in->ops->replies) {
		size_t len;
		char *reply = event_error_reply(err, &len);
		input_reply(in, reply, len);
		free(reply);
	}
}

int
router_take(struct router *r, struct input *in, const struct bus_msg *m)
{
	struct event_error err;
	struct event ev;
	int rc;

	if (m->nframes > 1)
		rc = event_fail(&err, EV_MULTIPART, "an event is one frame; this "
		    "message has %d frames", m->nframes);
	else
		rc = event_ingest(m->data, m->len, in->ns, r->cfg.max_event_size,
		    util_now(), &ev, &err);
	if (rc != 0) {
		refuse(r, in, &err);
		return -1;
	}
	r->accepted++;
	publish(r, &ev);
	if (in->ops->replies)
		input_reply(in, ev.json, ev.json_len);
	store_put_event(r->store, &ev);
	return 0;
}

/* A subscription arrived on o (bus_stream_take). */
static void
subscribed(void *arg, const void *prefix, size_t len)
{
	struct output *o = arg;

	(void)prefix;
	(void)len;
	o->subscriptions++;
	if (o->framing == CFG_FRAMING_TOPIC)
		o->greet = 1;
}

/* Take the subscription messages waiting on o (bus.h). */
static void
take(struct output *o)
{
	int n = bus_stream_take(o->sock, subscribed, o);

	o->took_ns = util_mono_ns();
	if (n > 0)
		log_debug("%d subscription messages on %s (%llu subscriptions "
		    "so far)", n, o->bound, o->subscriptions);
}

/*
 * Take o's subscriptions, then publish the control message owed on a
 * topic-framed output (README.rst, "Wire protocol"): an empty topic, then
 * BUS_CONTROL_TEXT, once for every subscription taken together (each
 * subscriber of "" gets it).  An event-framed output carries events only.
 * Like an event: a full subscriber must not keep the greeting from the
 * new one.
 */
static void
serve_subscriptions(struct router *r, struct output *o)
{
	static const char text[] = BUS_CONTROL_TEXT;

	take(o);
	if (o->greet) {
		o->greet = 0;
		pub_send(r, o, "", 0, text, sizeof(text) - 1, NULL);
	}
}

/* An output's XPUB has subscriptions (loop callback). */
static void
on_output(struct loop *l, int mask, void *arg)
{
	struct output *o = arg;

	(void)l;
	(void)mask;
	serve_subscriptions(o->r, o);
}

/*
 * Set up the inputs the configuration names, in its order, once every
 * output is bound: registered on the loop after the outputs, so that a
 * turn serves subscriptions first and a new subscriber is greeted before
 * the events that follow.
 */
static int
start_inputs(struct router *r, char *err, size_t errsz)
{
	struct input_conf ic[INPUT_MAX];
	struct input_host host = { r, r->loop, r->bus, &r->cfg };
	int n = input_configured(&r->cfg, ic, INPUT_MAX);

	for (int i = 0; i < n; i++) {
		r->inputs[i] = input_start(&ic[i], &host, err, errsz);
		if (r->inputs[i] == NULL)
			return -1;
		r->ninputs++;
	}
	return 0;
}

/* Then, once the store is open too: the feeders' threads. */
static int
run_inputs(struct router *r, char *err, size_t errsz)
{
	for (int i = 0; i < r->ninputs; i++)
		if (input_run(r->inputs[i], err, errsz) != 0)
			return -1;
	return 0;
}

static int
inputs_idle(struct router *r)
{
	int idle = 1;

	for (int i = 0; i < r->ninputs; i++)
		idle &= input_idle(r->inputs[i]);
	return idle;
}

/* Before each wait while inputs drain: stop once all are idle, or at the
 * deadline. */
static long
drain_check(struct loop *l, void *arg)
{
	struct router *r = arg;
	long long left = r->drain_deadline - util_mono_ms();

	if (inputs_idle(r) || left <= 0) {
		loop_stop(l);
		return 0;
	}
	return left < DRAIN_TICK_MS ? (long)left : DRAIN_TICK_MS;
}

/*
 * Shutdown: no input takes any more; those with threads of their own
 * (feeders) still get the replies to the requests they already sent (an
 * AMQP message the router accepted gets acknowledged) until every input
 * is idle or INPUT_DRAIN_MS passed; then they are freed (joined).
 */
static void
stop_inputs(struct router *r)
{
	int i;

	for (i = 0; i < r->ninputs; i++)
		input_stop(r->inputs[i]);
	r->drain_deadline = util_mono_ms() + INPUT_DRAIN_MS;
	loop_set_before(r->loop, drain_check, r);
	if (loop_run(r->loop) < 0)
		log_error("poll: %s", strerror(errno));
	if (!inputs_idle(r))
		log_warn("feeders still busy after %d ms: abandoning their "
		    "requests", INPUT_DRAIN_MS);
	for (i = 0; i < r->ninputs; i++) {
		input_free(r->inputs[i]);
		r->inputs[i] = NULL;
	}
	r->ninputs = 0;
}

static int
add_output(struct router *r, const struct cfg_output *oc, char *err,
    size_t errsz)
{
	struct output *o = &r->outputs[r->noutputs];
	char why[CFG_URI_MAX + 128];

	o->r = r;
	o->io = -1;
	o->framing = oc->framing;
	o->sock = bus_socket(r->bus, BUS_XPUB, PUB_LINGER_MS, err, errsz);
	if (o->sock == NULL)
		return -1;
	r->noutputs++;
	if (r->cfg.publish_wait_ms > 0 && bus_set_nodrop(o->sock, 1) != 0) {
		snprintf(err, errsz, "cannot set the PUB output's options: %s",
		    strerror(errno));
		return -1;
	}
	if (bus_bind(o->sock, oc->uri, o->bound, sizeof(o->bound), why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "cannot bind PUB output %s", why);
		return -1;
	}
	o->io = loop_add_sock(r->loop, o->sock, LOOP_READ, on_output, o);
	return 0;
}

struct router *
router_new(const struct cfg *cfg, char *err, size_t errsz)
{
	struct router *r = xcalloc(1, sizeof(*r));
	int failed;

	r->cfg = *cfg;
	r->loop = loop_new();
	if (r->loop == NULL) {
		snprintf(err, errsz, "cannot create the event loop: %s",
		    strerror(errno));
		goto fail;
	}
	r->bus = bus_new();
	if (r->bus == NULL) {
		snprintf(err, errsz, "cannot create a ZeroMQ context");
		goto fail;
	}
	for (int i = 0; i < r->cfg.noutputs; i++)
		if (add_output(r, &r->cfg.outputs[i], err, errsz) != 0)
			goto fail;
	if (start_inputs(r, err, errsz) != 0)
		goto fail;
	r->store = store_open(&r->cfg, STORE_EVENTS, 0, err, errsz, &failed);
	if (failed)
		goto fail;
	if (run_inputs(r, err, errsz) != 0)
		goto fail;
	return r;
fail:
	router_free(r);
	return NULL;
}

/* Append to line[READY_MAX] at *off, as snprintf (cut when full). */
static void
append(char *line, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= READY_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *off, READY_MAX - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n < READY_MAX - *off ? (size_t)n :
		    READY_MAX - *off - 1;
}

/*
 * README.rst, "Readiness": "ready", each keyed kind of input as
 * KEY=ENDPOINT,... (KEY=- when none), the outputs as pub=ENDPOINT,..., then
 * the words of the other inputs ("http=http://...", "amqp=amqp://...").
 */
static void
log_ready(struct router *r)
{
	const struct input_ops *k;
	char line[READY_MAX];
	size_t off = 0;
	int n;

	append(line, &off, "ready");
	for (int i = 0; (k = input_kind(i)) != NULL; i++) {
		if (k->ready_key == NULL)
			continue;
		append(line, &off, " %s=", k->ready_key);
		n = 0;
		for (int j = 0; j < r->ninputs; j++)
			if (r->inputs[j]->ops == k)
				append(line, &off, "%s%s", n++ ? "," : "",
				    input_describe(r->inputs[j]));
		if (n == 0)
			append(line, &off, "-");
	}
	append(line, &off, " pub=");
	for (int i = 0; i < r->noutputs; i++)
		append(line, &off, "%s%s", i ? "," : "", r->outputs[i].bound);
	for (int j = 0; j < r->ninputs; j++)
		if (r->inputs[j]->ops->ready_key == NULL)
			append(line, &off, " %s", input_describe(r->inputs[j]));
	log_info("%s", line);
	daemon_ready();
}

/* SIGTERM, SIGINT: stop taking input (loop callback); again: no-op. */
static void
on_term(struct loop *l, int sig, void *arg)
{
	struct router *r = arg;

	(void)sig;
	if (r->stopping)
		return;
	r->stopping = 1;
	loop_stop(l);
}

/*
 * Before each wait: rejections held back are logged, and the outputs take
 * the subscriptions the sends of this turn queued, before the next wait.
 */
static long
before_wait(struct loop *l, void *arg)
{
	struct router *r = arg;

	(void)l;
	for (int i = 0; i < r->ninputs; i++)
		log_limited_flush(&r->inputs[i]->reject_rl);
	for (int k = 0; k < r->noutputs; k++)
		serve_subscriptions(r, &r->outputs[k]);
	return -1;
}

/*
 * IDLE_MS without input after a burst: hand the memory the burst's queues
 * used back to the system (timer).
 */
static long
idle_tick(struct loop *l, void *arg)
{
	struct router *r = arg;
	long long quiet = (util_mono_ns() - r->last_ns) / 1000000;

	(void)l;
	if (quiet < IDLE_MS)
		return (long)(IDLE_MS - quiet);
	if (r->busy) {
		util_release_memory();
		r->busy = 0;
	}
	return IDLE_MS;
}

int
router_run(struct router *r)
{
	unsigned long long rejected = 0;
	struct store_stats st;
	long long idle;
	int i;

	/* from here on the loop takes the signals; those that came before
	 * left daemon.c's flag */
	loop_signal(r->loop, SIGTERM, on_term, r);
	loop_signal(r->loop, SIGINT, on_term, r);
	log_ready(r);
	if (daemon_stop)
		r->stopping = 1;
	loop_set_before(r->loop, before_wait, r);
	idle = loop_add_timer(r->loop, IDLE_MS, idle_tick, r);
	if (!r->stopping && loop_run(r->loop) < 0)
		log_error("poll: %s", strerror(errno));
	r->stopping = 1;
	loop_del_timer(r->loop, idle);
	daemon_notify("STOPPING=1");
	log_info("stopping: no more input taken, flushing the store");
	stop_inputs(r);
	store_flush(r->store);
	store_get_stats(r->store, &st);
	for (i = 0; i < EV_ERR_COUNT; i++)
		rejected += r->rejected[i];
	log_info("stopped: accepted %llu, rejected %llu, published %llu, "
	    "dropped at PUB %llu, stalled subscribers %llu, stored %llu, "
	    "store failures %llu, spooled %llu, lost (spool full) %llu",
	    r->accepted, rejected, r->published, r->pub_dropped, r->stalls,
	    st.written, st.failed, st.spooled, st.lost);
	return 0;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	/* before the context: feeders' threads use it */
	for (int i = 0; i < r->ninputs; i++)
		input_free(r->inputs[i]);
	store_close(r->store);
	for (int i = 0; i < r->noutputs; i++) {
		loop_del(r->loop, r->outputs[i].io);
		bus_close(r->outputs[i].sock);
	}
	bus_free(r->bus);
	loop_free(r->loop);
	free(r);
}
