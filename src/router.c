/* router: event-router's loop.  See include/router.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "daemon.h"
#include "feeder.h"
#include "log.h"
#include "router.h"
#include "store.h"
#include "util.h"

/* Messages taken from one PULL socket before looking at the others. */
#define PULL_BATCH 256
/* How long close waits to hand the last events to subscribers. */
#define PUB_LINGER_MS 1000
static const char control_subscribed[] = "{\"control\":\"subscribed\"}";

struct input {
	struct bus_sock *sock;
	int is_rep;
	int is_feeder;		/* inproc REP input of an AMQP/HTTP feeder */
	const char *ns;		/* default namespace */
	char name[CFG_URI_MAX];	/* "pull", "rep", "amqp:NS" for logs */
	char bound[CFG_URI_MAX];
	char what[CFG_URI_MAX + 32];	/* "rejections on pull" */
	struct log_ratelimit reject_rl;	/* per input: one cannot hide another */
};

struct router {
	struct cfg cfg;
	struct bus *bus;
	struct bus_sock *pub;
	char pub_bound[CFG_URI_MAX];
	struct input inputs[1 + CFG_MAX_REP + CFG_MAX_FEEDERS];
	int ninputs;
	struct feeder *feeders[CFG_MAX_FEEDERS];
	int nfeeders;
	struct store *store;
	unsigned long long accepted, published, pub_dropped;
	unsigned long long rejected[EV_ERR_COUNT];
	long long wait_logged_at;	/* monotonic ms */
	unsigned long long stalls;	/* subscribers set aside */

};

/* Publishing waits for full subscribers (on) or not (off). */
static void
set_waiting(struct router *r, int on)
{
	if (bus_set_nodrop(r->pub, on) != 0)
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
 * The second frame: body, or without a copy ev's text (ev holds it, and
 * ZeroMQ's I/O thread gives its hold back once the frame is sent).
 */
static int
send_body(struct router *r, const char *body, size_t blen,
    const struct event *ev)
{
	if (ev == NULL)
		return bus_send(r->pub, body, blen, 0, 1);
	return bus_send_nocopy(r->pub, ev->json, ev->json_len, 0, 1,
	    release_share, event_share(ev));
}

/*
 * One two-frame message on PUB (README.rst, "Slow subscribers").  A
 * subscriber whose queue is full holds publishing back (XPUB_NODROP) for
 * up to publish_wait_ms, so that a slow one loses nothing and pushes back
 * on the inputs.  One still full then is stalled: this message goes out
 * without XPUB_NODROP, which makes ZeroMQ set every full queue aside
 * (libzmq's distributor deactivates a pipe a write fails on) until its
 * subscriber has read half of it; it misses events meanwhile, and
 * publishing waits for the others again at once.
 * Returns 0, or -1 (errno set) when the message was dropped.
 */
static int
pub_send(struct router *r, const char *topic, size_t tlen, const char *body,
    size_t blen, const struct event *ev)
{
	int rc;

	if (bus_send(r->pub, topic, tlen, 1, 1) != 0) {
		if (errno != EAGAIN || r->cfg.publish_wait_ms == 0)
			return -1;
		wait_log(r);
		do {
			rc = bus_send(r->pub, topic, tlen, 1, 0);
		} while (rc != 0 && errno == EINTR && !daemon_stop);
		if (rc != 0) {
			if (errno != EAGAIN)
				return -1;
			r->stalls++;
			log_warn("a subscriber has had no room for %d ms (its "
			    "queue of %d messages is full): it misses events "
			    "until it has read half of it; the others are "
			    "still waited for (limits.publish_wait_ms)",
			    r->cfg.publish_wait_ms, BUS_PUB_HWM);
			set_waiting(r, 0);
			rc = bus_send(r->pub, topic, tlen, 1, 1);
			if (rc == 0)
				rc = send_body(r, body, blen, ev);
			set_waiting(r, 1);
			return rc;
		}
	}
	/* the first frame passed: the second one always follows it */
	return send_body(r, body, blen, ev);
}

static void
publish(struct router *r, const struct event *ev)
{
	if (pub_send(r, ev->topic, ev->topic_len, ev->json, ev->json_len,
	    ev) != 0)
		r->pub_dropped++;
	else
		r->published++;
}

/*
 * The one path every input takes.  Returns 0 with *ev stamped (the caller
 * hands it to the store), or -1 with *err filled; counted and logged here.
 */
static int
router_ingest(struct router *r, struct input *in,
    const struct bus_msg *m, struct event *ev, struct event_error *err)
{
	int rc;

	if (m->nframes > 1)
		rc = event_fail(err, EV_MULTIPART, "an event is one frame; this "
		    "message has %d frames", m->nframes);
	else
		rc = event_ingest(m->data, m->len, in->ns, r->cfg.max_event_size,
		    util_now(), ev, err);
	if (rc != 0) {
		r->rejected[err->code]++;
		log_limited(&in->reject_rl, LOG_LVL_WARNING,
		    "event rejected on %s: %s: %s", in->name,
		    event_err_code(err->code), err->message);
		return -1;
	}
	r->accepted++;
	publish(r, ev);
	return 0;
}

static void
serve(struct router *r, struct input *in)
{
	struct event_error err;
	struct bus_msg m;
	struct event ev;
	int n;

	for (n = 0; n < (in->is_rep ? 1 : PULL_BATCH); n++) {
		if (bus_recv(in->sock, &m, 1) != 0)
			return;
		if (router_ingest(r, in, &m, &ev, &err) == 0) {
			if (in->is_rep &&
			    bus_send(in->sock, ev.json, ev.json_len, 0, 0) != 0)
				log_warn("reply on %s failed: %s", in->bound,
				    strerror(errno));
			store_put_event(r->store, &ev);
		} else if (in->is_rep) {
			size_t len;
			char *reply = event_error_reply(&err, &len);
			if (bus_send(in->sock, reply, len, 0, 0) != 0)
				log_warn("reply on %s failed: %s", in->bound,
				    strerror(errno));
			free(reply);
		}
		bus_msg_close(&m);
	}
}

/* XPUB hands us subscriptions: greet each new one (README, Readiness). */
static void
serve_subscriptions(struct router *r)
{
	struct bus_msg m;

	while (bus_recv(r->pub, &m, 1) == 0) {
		if (m.len >= 1 && ((const unsigned char *)m.data)[0] == 1) {
			log_debug("subscription to \"%.*s\" arrived",
			    (int)(m.len - 1), (const char *)m.data + 1);
			/* like an event: a full subscriber must not keep the
			 * greeting from the new one */
			pub_send(r, "", 0, control_subscribed,
			    sizeof(control_subscribed) - 1, NULL);
		}
		bus_msg_close(&m);
	}
}

static int
add_input(struct router *r, const char *uri, int is_rep, const char *ns,
    const char *name, char *err, size_t errsz)
{
	struct input *in = &r->inputs[r->ninputs];
	char why[CFG_URI_MAX + 128];

	in->sock = bus_socket(r->bus, is_rep ? BUS_REP : BUS_PULL, 0, err, errsz);
	if (in->sock == NULL)
		return -1;
	if (bus_bind(in->sock, uri, in->bound, sizeof(in->bound), why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "cannot bind %s input %s", is_rep ? "REP" :
		    "PULL", why);
		bus_close(in->sock);
		return -1;
	}
	in->is_rep = is_rep;
	in->ns = ns;
	snprintf(in->name, sizeof(in->name), "%s", name);
	snprintf(in->what, sizeof(in->what), "\"event rejected on %s\" lines",
	    name);
	in->reject_rl.interval = 10;
	in->reject_rl.burst = 10;
	in->reject_rl.what = in->what;
	r->ninputs++;
	return 0;
}

/*
 * Each AMQP/HTTP feeder gets a REP input at inproc://feeder-N, in our
 * context, with its namespace as the default; the feeder's REQ socket
 * talks to it from the feeder's thread.  Started once every socket is
 * bound and the store is open.
 */
static int
start_feeders(struct router *r, char *err, size_t errsz)
{
	for (int i = 0; i < r->cfg.nfeeders; i++) {
		const struct cfg_feeder *fc = &r->cfg.feeders[i];
		char uri[64], name[CFG_URI_MAX];
		struct input *in;

		snprintf(uri, sizeof(uri), "inproc://feeder-%d", i);
		snprintf(name, sizeof(name), "%s:%s", fc->kind == FEEDER_AMQP ?
		    "amqp" : "http", fc->ns);
		if (add_input(r, uri, 1, fc->ns, name, err, errsz) != 0)
			return -1;
		in = &r->inputs[r->ninputs - 1];
		in->is_feeder = 1;
		r->feeders[i] = feeder_start(fc, r->bus, in->bound,
		    r->cfg.max_event_size, err, errsz);
		if (r->feeders[i] == NULL)
			return -1;
		r->nfeeders++;
	}
	return 0;
}

/*
 * Shutdown: feeders stop taking input; requests they already sent are
 * still answered (an AMQP message the router accepted gets acknowledged)
 * until every feeder is idle or FEEDER_DRAIN_MS passed; then they are
 * joined.
 */
static void
stop_feeders(struct router *r)
{
	struct bus_pollitem items[CFG_MAX_FEEDERS];
	struct input *fin[CFG_MAX_FEEDERS];
	long long deadline = util_mono_ms() + FEEDER_DRAIN_MS;
	int i, n = 0, idle;

	if (r->nfeeders == 0)
		return;
	for (i = 0; i < r->nfeeders; i++)
		feeder_stop(r->feeders[i]);
	for (i = 0; i < r->ninputs; i++)
		if (r->inputs[i].is_feeder)
			fin[n++] = &r->inputs[i];
	for (;;) {
		for (idle = 1, i = 0; i < r->nfeeders; i++)
			idle &= feeder_idle(r->feeders[i]);
		if (idle || util_mono_ms() >= deadline)
			break;
		for (i = 0; i < n; i++) {
			items[i].sock = fin[i]->sock;
			items[i].fd = -1;
			items[i].events = BUS_POLLIN;
		}
		if (bus_poll(items, n, 50) < 0)
			continue;
		for (i = 0; i < n; i++)
			if (items[i].revents & BUS_POLLIN)
				serve(r, fin[i]);
	}
	if (!idle)
		log_warn("feeders still busy after %d ms: abandoning their "
		    "requests", FEEDER_DRAIN_MS);
	for (i = 0; i < r->nfeeders; i++) {
		feeder_free(r->feeders[i]);
		r->feeders[i] = NULL;
	}
	r->nfeeders = 0;
}

struct router *
router_new(const struct cfg *cfg, char *err, size_t errsz)
{
	struct router *r = xcalloc(1, sizeof(*r));
	char why[CFG_URI_MAX + 128];
	int failed;

	r->cfg = *cfg;
	r->bus = bus_new();
	if (r->bus == NULL) {
		snprintf(err, errsz, "cannot create a ZeroMQ context");
		goto fail;
	}
	r->pub = bus_socket(r->bus, BUS_XPUB, PUB_LINGER_MS, err, errsz);
	if (r->pub == NULL)
		goto fail;
	if (bus_bind(r->pub, r->cfg.pub_uri, r->pub_bound, sizeof(r->pub_bound),
	    why, sizeof(why)) != 0) {
		snprintf(err, errsz, "cannot bind PUB output %s", why);
		goto fail;
	}
	if (r->cfg.publish_wait_ms > 0 && (bus_set_nodrop(r->pub, 1) != 0 ||
	    bus_set_timeouts(r->pub, r->cfg.publish_wait_ms, -1) != 0)) {
		snprintf(err, errsz, "cannot set the PUB output's options: %s",
		    strerror(errno));
		goto fail;
	}
	if (add_input(r, r->cfg.pull_uri, 0, "local", "pull", err, errsz) != 0)
		goto fail;
	for (int i = 0; i < r->cfg.nreps; i++)
		if (add_input(r, r->cfg.reps[i].uri, 1, r->cfg.reps[i].ns, "rep",
		    err, errsz) != 0)
			goto fail;
	r->store = store_open(&r->cfg, STORE_EVENTS, 0, err, errsz, &failed);
	if (failed)
		goto fail;
	if (start_feeders(r, err, errsz) != 0)
		goto fail;
	return r;
fail:
	router_free(r);
	return NULL;
}

/* README.rst, "Readiness": the ready line, then feeders' endpoints. */
static void
log_ready(struct router *r)
{
	char reps[(CFG_URI_MAX + 1) * CFG_MAX_REP] = "";
	char feeders[620 * CFG_MAX_FEEDERS + 1] = "";
	size_t off = 0, foff = 0;

	for (int i = 1; i < r->ninputs; i++)
		if (!r->inputs[i].is_feeder)
			off += (size_t)snprintf(reps + off, sizeof(reps) - off,
			    "%s%s", off ? "," : "", r->inputs[i].bound);
	for (int i = 0; i < r->nfeeders; i++)
		foff += (size_t)snprintf(feeders + foff, sizeof(feeders) - foff,
		    " %s", feeder_describe(r->feeders[i]));
	log_info("ready pull=%s rep=%s pub=%s%s", r->inputs[0].bound,
	    off ? reps : "-", r->pub_bound, feeders);
	daemon_ready();
}

int
router_run(struct router *r)
{
	struct bus_pollitem items[2 + CFG_MAX_REP + CFG_MAX_FEEDERS];
	int n = r->ninputs + 1, i, rc, busy = 0;
	unsigned long long rejected = 0;
	struct store_stats st;

	log_ready(r);
	while (!daemon_stop) {
		for (i = 0; i < r->ninputs; i++) {
			items[i].sock = r->inputs[i].sock;
			items[i].events = BUS_POLLIN;
		}
		items[i].sock = r->pub;
		items[i].events = BUS_POLLIN;
		for (i = 0; i < r->ninputs; i++)
			log_limited_flush(&r->inputs[i].reject_rl);
		rc = bus_poll(items, n, 1000);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (rc == 0 && busy) {
			/* a second without input after a burst: hand the
			 * memory the burst's queues used back to the system */
			util_release_memory();
			busy = 0;
		} else if (rc > 0) {
			busy = 1;
		}
		for (i = 0; i < r->ninputs; i++)
			if (items[i].revents & BUS_POLLIN)
				serve(r, &r->inputs[i]);
		if (items[r->ninputs].revents & BUS_POLLIN)
			serve_subscriptions(r);
	}
	daemon_notify("STOPPING=1");
	log_info("stopping: no more input taken, flushing the store");
	stop_feeders(r);
	for (i = 0; i < r->ninputs; i++) {
		bus_close(r->inputs[i].sock);
		r->inputs[i].sock = NULL;
	}
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
	/* before the sockets and the context: feeders use both */
	for (int i = 0; i < r->nfeeders; i++)
		feeder_free(r->feeders[i]);
	for (int i = 0; i < r->ninputs; i++)
		bus_close(r->inputs[i].sock);
	store_close(r->store);
	bus_close(r->pub);
	bus_free(r->bus);
	free(r);
}
