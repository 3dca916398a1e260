/* router: event-router's wiring.  See include/router.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus.h"
#include "daemon.h"
#include "identity.h"
#include "input.h"
#include "log.h"
#include "loop.h"
#include "output.h"
#include "router.h"
#include "router_curve.h"
#include "router_metrics.h"
#include "router_ready.h"
#include "router_wait.h"
#include "store.h"
#include "util.h"

/* Input idle this long after a burst: memory goes back to the system. */
#define IDLE_MS 1000
/* ...once the store has settled no record for this long (ms). */
#define IDLE_SETTLE_MS 100
/* While inputs drain: how often to look whether they are idle (ms). */
#define DRAIN_TICK_MS 50
/* Decided records taken from the store per wake-up. */
#define DONE_BATCH 256
/* Events held back at most before they are published (flush()): the
 * largest batch of an input (in_pull.c's PULL_BATCH). */
#define HELD_MAX 256
/* Held events published per reading of the clock (a few microseconds). */
#define HELD_CLOCK 16

struct router {
	const struct cfg *cfg;		/* the caller's */
	struct loop *loop;
	struct bus *bus;
	struct output *outputs[CFG_MAX_OUTPUTS];
	int noutputs;
	struct input *inputs[INPUT_MAX];
	int ninputs;
	struct store *store;
	struct router_curve *curve;	/* "curve" configured: its ZAP */
	struct router_metrics *rm;	/* "metrics" configured */
	int done_io;			/* store_done_fd()'s registration */
	struct waitq waiting;		/* replying inputs' events */
	unsigned long long unanswered;	/* waiters given up at the stop */
	/* accepted events of the input whose wake-up is being taken, one
	 * that does not answer, until its batch is taken (flush()) */
	struct event held[HELD_MAX];
	int nheld;
	unsigned long long accepted, published, pub_dropped;
	unsigned long long rejected[EV_ERR_COUNT];
	unsigned long long malformed;	/* of the inputs freed (in->malformed) */
	unsigned long long refused_by_inputs;	/* input_refused() */
	int stopping;			/* SIGTERM or SIGINT came */
	long long drain_deadline;	/* monotonic ms */
	long long last_ns;		/* monotonic: the last input taken */
	int busy;			/* memory releases due (idle_tick) */
	unsigned long long idle_settled; /* store_settled() at the last tick */
};

/* 1 once the router stops: a publish waiting for a full subscriber gives
 * up at once, even before the loop has run the signal's callback. */
static int
stop_asked(void *arg)
{
	const struct router *r = arg;

	return r->stopping || loop_signal_pending(r->loop, SIGTERM) ||
	    loop_signal_pending(r->loop, SIGINT);
}

/* Messages refused so far, every code. */
static unsigned long long
rejected_total(const struct router *r)
{
	unsigned long long n = 0;

	for (int i = 0; i < EV_ERR_COUNT; i++)
		n += r->rejected[i];
	return n + r->refused_by_inputs;
}

/* n messages in's own threads refused with code (input_refusals_take()). */
static void
input_refusal(void *arg, struct input *in, const char *code,
    unsigned long long n)
{
	struct router *r = arg;

	r->refused_by_inputs += n;
	router_metrics_refused(r->rm, in, code, n);
}

/* Take the inputs' own refusals into the counts (before each wait, and
 * each scrape). */
static void
take_refusals(void *arg)
{
	struct router *r = arg;

	for (int i = 0; i < r->ninputs; i++)
		input_refusals_take(r->inputs[i], input_refusal, r);
}

/* An event in accepted: counted, published on every output or dropped
 * (now: util_mono_ns(), read at most HELD_CLOCK events before). */
static void
publish(struct router *r, struct input *in, const struct event *ev,
    long long now)
{
	int dropped = 0;

	r->accepted++;
	router_metrics_accepted(r->rm, in, ev->namespace);
	r->last_ns = now;
	r->busy = 2;
	for (int i = 0; i < r->noutputs; i++) {
		struct output *o = r->outputs[i];
		if (o->ops->publish(o, ev, now) != 0)
			dropped = 1;
	}
	if (dropped)
		r->pub_dropped++;
	else
		r->published++;
}

/* A refused message: counted, logged, answered when in answers (to the
 * request of envelope env). */
static void
refuse(struct router *r, struct input *in, const struct bus_envelope *env,
    const struct event_error *err)
{
	r->last_ns = util_mono_ns();
	r->busy = 2;
	r->rejected[err->code]++;
	router_metrics_rejected(r->rm, in, err->code);
	log_limited(&in->reject_rl, LOG_LVL_WARNING,
	    "event rejected on %s: %s: %s", in->name,
	    event_err_code(err->code), err->message);
	if (in->ops->replies) {
		size_t len;
		char *reply = event_error_reply(err, &len);
		input_reply_to(in, env, reply, len);
		free(reply);
	}
}

/* Hand ev (taken over) to the store, and keep a hold on it and what the
 * answer needs until the store decides it (stored()). */
static void
wait_store(struct router *r, struct input *in, struct event *ev)
{
	struct waiter *w = waitq_push(&r->waiting, in, &in->env, ev);

	store_put_event_waited(r->store, ev, w->tag);
}

/*
 * The store decided w's event: stored (or spooled, as durable): publish
 * it and answer it; not: refuse it with store_unavailable.
 */
static void
decided(struct router *r, struct waiter *w, enum store_status st)
{
	struct event_error err;

	if (st == STORE_WRITTEN || st == STORE_SPOOLED) {
		publish(r, w->in, &w->ev, util_mono_ns());
		input_reply_to(w->in, &w->env, w->ev.json, w->ev.json_len);
	} else {
		event_fail(&err, EV_STORE_UNAVAILABLE, "%s", st == STORE_LOST ?
		    "the store's server is away and its spool is full; the "
		    "event was not published" :
		    "the store could not write the event; it was not "
		    "published");
		refuse(r, w->in, &w->env, &err);
	}
	waitq_done(w);
}

/* The store decided records we wait for (loop callback). */
static void
stored(struct loop *l, int mask, void *arg)
{
	struct router *r = arg;
	struct store_done d[DONE_BATCH];
	size_t n = store_take_done(r->store, d, DONE_BATCH);

	(void)l;
	(void)mask;
	for (size_t i = 0; i < n; i++) {
		struct waiter *w = waitq_pop(&r->waiting);
		/* the store reports them in the order they were put */
		if (w == NULL || w->tag != d[i].tag) {
			log_error("the store reported record %llu, expected "
			    "%llu", d[i].tag, w != NULL ? w->tag : 0ULL);
			abort();
		}
		decided(r, w, d[i].status);
	}
}

/* Give up the waiters (their clients get no answer): at the stop. */
static void
drop_waiters(struct router *r)
{
	struct waiter *w;

	if (r->waiting.n > 0)
		log_warn("%zu events still waiting for the store: not "
		    "answered", r->waiting.n);
	while ((w = waitq_pop(&r->waiting)) != NULL) {
		r->unanswered++;
		waitq_done(w);
	}
}

/*
 * The events take() held back, after the wake-up's batch of their input
 * (input_host.flush): published in a row, then handed to the store in one
 * go.  Published one by one between validations instead, each event found
 * ZeroMQ's I/O thread idle and woke it for a write of its own: this is
 * half that thread's CPU, and 1.2 to 1.4 times the events a second
 * (bench/README.rst).
 */
static void
flush(void *arg, struct input *in)
{
	struct router *r = arg;
	long long now = 0;

	for (int i = 0; i < r->nheld; i++) {
		/* the clock once every HELD_CLOCK events: fresh enough for
		 * the outputs' BUS_TAKE_US */
		if (i % HELD_CLOCK == 0)
			now = util_mono_ns();
		publish(r, in, &r->held[i], now);
	}
	store_put_events(r->store, r->held, (size_t)r->nheld);
	r->nheld = 0;
}

/*
 * The one path every input takes (input_host.take), for each message m it
 * received (one frame: a message of more is refused): validate and stamp
 * it (in's namespace as the default, limits.max_event_size).  An event of
 * an input that answers (ops->replies) goes to the store first, when
 * there is one: it is published on every output and answered with the
 * stamped event once the store has it, refused with store_unavailable
 * when the store could not write it (decided()).  Any other answered
 * event is published at once, answered, then handed to the store; an
 * event of an input that does not answer is held until the end of its
 * input's batch (flush()), or until HELD_MAX are held.  A refusal
 * ({"error": {"code", "message"}}) is counted and logged, rate-limited
 * per input.  Nothing of m is kept.  Returns 0 (accepted, or waiting for
 * the store) or -1 (refused).
 */
static int
take(void *arg, struct input *in, const struct bus_msg *m)
{
	struct router *r = arg;
	struct event_error err;
	struct event ev;
	int rc;

	if (m->nframes > 1)
		rc = event_fail(&err, EV_MULTIPART, "an event is one frame; "
		    "this message has %d frames", m->nframes);
	else
		rc = event_ingest(m->data, m->len, in->ns,
		    r->cfg->max_event_size, util_now(), &ev, &err);
	if (rc == 0 && ev.hops > r->cfg->max_hops) {
		/* one line per chain: its next event is this one's */
		rc = event_fail(&err, EV_LOOP_DETECTED, "hops %d is over "
		    "limits.max_hops %d: handlers fire the events that run "
		    "them (parent_event says which)", ev.hops,
		    r->cfg->max_hops);
		event_clear(&ev);
	}
	if (rc != 0) {
		refuse(r, in, &in->env, &err);
		return -1;
	}
	if (in->ops->replies && r->store != NULL) {
		wait_store(r, in, &ev);
		return 0;
	}
	if (!in->ops->replies) {
		if (r->nheld == HELD_MAX)
			flush(r, in);
		r->held[r->nheld++] = ev;
		return 0;
	}
	publish(r, in, &ev, util_mono_ns());
	input_reply(in, ev.json, ev.json_len);
	store_put_event(r->store, &ev);
	return 0;
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
	struct input_host host = { take, flush, r, r->loop, r->bus, r->cfg };
	int n = input_configured(r->cfg, ic, INPUT_MAX);

	for (int i = 0; i < n; i++) {
		r->inputs[i] = input_start(&ic[i], &host, err, errsz);
		if (r->inputs[i] == NULL)
			return -1;
		r->ninputs++;
	}
	return 0;
}

/* Once the user is taken and the store open: what the outputs and the
 * inputs run on their own. */
static int
run_inputs(struct router *r, char *err, size_t errsz)
{
	for (int i = 0; i < r->noutputs; i++)
		if (r->outputs[i]->ops->run != NULL &&
		    r->outputs[i]->ops->run(r->outputs[i], err, errsz) != 0)
			return -1;
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

	if (store_write_waited(r->store))
		stored(l, 0, r);
	if ((inputs_idle(r) && r->waiting.n == 0) || left <= 0) {
		loop_stop(l);
		return 0;
	}
	return left < DRAIN_TICK_MS ? (long)left : DRAIN_TICK_MS;
}

/*
 * Shutdown: no input takes any more; the requests already taken still get
 * their replies once the store has their events, those with threads of
 * their own (feeders) the replies to the requests they already sent (an
 * AMQP message the router accepted gets acknowledged), and the PULL input
 * is read until its senders pause, until every input is idle and no event
 * waits for the store, or the longest of their drain times passed; then
 * they are freed (joined).  An input still busy then is named in a
 * warning, with what it abandons.
 */
static void
stop_inputs(struct router *r)
{
	long long start = util_mono_ms();
	int i, ms = 0;

	for (i = 0; i < r->ninputs; i++) {
		input_stop(r->inputs[i]);
		if (input_drain_ms(r->inputs[i]) > ms)
			ms = input_drain_ms(r->inputs[i]);
	}
	r->drain_deadline = start + ms;
	loop_set_before(r->loop, drain_check, r);
	if (loop_run(r->loop) < 0)
		log_error("poll: %s", strerror(errno));
	drop_waiters(r);
	for (i = 0; i < r->ninputs; i++) {
		struct input *in = r->inputs[i];
		if (!input_idle(in))
			log_warn("input %s still busy after %lld ms (%s): "
			    "abandoning what it holds", in->name,
			    util_mono_ms() - start, in->ops->busy != NULL ?
			    in->ops->busy : "requests in flight");
		r->malformed += in->malformed;
		input_join(in);		/* then nothing refuses any more */
		input_refusals_take(in, input_refusal, r);
		input_free(in);
		r->inputs[i] = NULL;
	}
	r->ninputs = 0;
}

/*
 * Open the outputs the configuration names, first: each registers on the
 * loop what it serves there before any input does.
 */
static int
open_outputs(struct router *r, char *err, size_t errsz)
{
	struct output_conf oc[CFG_MAX_OUTPUTS];
	struct output_host host = { r->loop, r->bus, r->cfg, stop_asked, r };
	int n = output_configured(r->cfg, oc, CFG_MAX_OUTPUTS);

	for (int i = 0; i < n; i++) {
		r->outputs[i] = output_open(&oc[i], &host, err, errsz);
		if (r->outputs[i] == NULL)
			return -1;
		r->noutputs++;
	}
	return 0;
}

/*
 * Started as root (identity.h): config.json's user from here on, with the
 * ZeroMQ sockets bound and before the store is opened, so that its files
 * are that user's.
 */
/*
 * An ipc:// socket the router bound (a file; not an abstract "@" name)
 * given to the user and group it takes, mode 0770: connecting to a Unix
 * socket needs write permission on it, which its creator, root, would
 * keep.  0, or -1 with err.
 */
static int
own_ipc(const char *uri, const struct identity *id, char *err, size_t errsz)
{
	const char *path = uri + 6;

	if (strncmp(uri, "ipc://", 6) != 0 || path[0] == '@')
		return 0;
	/* user and group may connect; others not (a Unix socket needs
	 * write permission) */
	if (chown(path, id->id.uid, id->id.gid) == 0 && chmod(path, 0770) == 0)
		return 0;
	snprintf(err, errsz, "cannot give %s to user %s: %s", uri, id->user,
	    strerror(errno));
	return -1;
}

static int
take_identity(struct router *r, char *err, size_t errsz)
{
	struct identity id;

	if (identity_choose(r->cfg, &id, err, errsz) != 0)
		return -1;
	for (int i = 0; id.set && i < r->ninputs; i++)
		if (own_ipc(r->inputs[i]->bound, &id, err, errsz) != 0)
			return -1;
	for (int i = 0; id.set && i < r->noutputs; i++)
		if (own_ipc(r->outputs[i]->ops->describe(r->outputs[i]), &id,
		    err, errsz) != 0)
			return -1;
	if (identity_take(&id, err, errsz) != 0)
		return -1;
	if (id.set)
		log_info("running as user %s (uid %u), group %s (gid %u)",
		    id.user, (unsigned)id.id.uid, id.group,
		    (unsigned)id.id.gid);
	return 0;
}

struct router *
router_new(const struct cfg *cfg, char *err, size_t errsz)
{
	struct router *r = xcalloc(1, sizeof(*r));
	int failed;

	r->cfg = cfg;
	r->done_io = -1;
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
	/* before any bind: ZAP is there before the first client */
	if (cfg->curve.on && (r->curve = router_curve_new(&cfg->curve,
	    r->loop, r->bus, err, errsz)) == NULL)
		goto fail;
	if (open_outputs(r, err, errsz) != 0)
		goto fail;
	if (start_inputs(r, err, errsz) != 0 || router_metrics_open(&r->rm,
	    cfg, r->loop, &r->store, r->outputs, &r->noutputs, err, errsz) ||
	    take_identity(r, err, errsz) != 0)
		goto fail;
	r->store = store_open(r->cfg, STORE_EVENTS, 0, err, errsz, &failed);
	if (failed)
		goto fail;
	if (r->store != NULL)
		r->done_io = loop_add_fd(r->loop, store_done_fd(r->store),
		    LOOP_READ, stored, r);
	router_metrics_before_scrape(r->rm, take_refusals, r);
	if (run_inputs(r, err, errsz) != 0)
		goto fail;
	return r;
fail:
	router_free(r);
	return NULL;
}

/* event-reactor(7), "Readiness": the ready line (router_ready.h). */
static void
log_ready(struct router *r)
{
	char line[ROUTER_READY_MAX];

	router_ready_line(r->inputs, r->ninputs, r->outputs, r->noutputs, line,
	    sizeof(line));
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
	for (int i = 0; i < r->ninputs; i++) {
		log_limited_flush(&r->inputs[i]->reject_rl);
		log_limited_flush(&r->inputs[i]->malformed_rl);
	}
	router_curve_flush(r->curve);
	take_refusals(r);
	for (int k = 0; k < r->noutputs; k++)
		if (r->outputs[k]->ops->flush != NULL)
			r->outputs[k]->ops->flush(r->outputs[k]);
	if (store_write_waited(r->store))
		stored(l, 0, r);	/* answered before the wait */
	return -1;
}

/* IDLE_MS without input, then IDLE_SETTLE_MS without the store settling
 * any record, after a burst: the burst's memory goes back to the system,
 * twice a tick apart (the store's threads free their SQLite caches a
 * second after their last write, which may come well after the input's).
 * Each tick also logs the store's refusals held back (store_log_flush). */
static long
idle_tick(struct loop *l, void *arg)
{
	struct router *r = arg;
	long long quiet = (util_mono_ns() - r->last_ns) / 1000000;
	unsigned long long settled = store_settled(r->store);

	(void)l;
	store_log_flush();
	if (quiet < IDLE_MS)
		return (long)(IDLE_MS - quiet);
	if (settled != r->idle_settled) {
		r->idle_settled = settled;
		r->busy = 2;
		return IDLE_SETTLE_MS;
	}
	if (r->busy) {
		util_release_memory();
		r->busy--;
	}
	return IDLE_MS;
}

int
router_run(struct router *r)
{
	unsigned long long rejected, before;
	struct output_stats os = { 0 };
	struct store_stats st;
	long long idle;
	int i;

	/* from here on the loop takes the signals; those that came before
	 * left daemon.c's flag */
	loop_signal(r->loop, SIGTERM, on_term, r);
	loop_signal(r->loop, SIGINT, on_term, r);
	loop_signal(r->loop, SIGHUP, router_curve_on_hup, r->curve);
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
	log_info("stopping: taking what the inputs already hold, then "
	    "flushing the store");
	before = r->accepted + rejected_total(r) + r->waiting.n;
	stop_inputs(r);
	log_info("inputs drained: %llu messages taken after the stop",
	    r->accepted + rejected_total(r) + r->unanswered - before);
	store_flush(r->store);
	store_get_stats(r->store, &st);
	rejected = rejected_total(r);
	for (i = 0; i < r->noutputs; i++)
		if (r->outputs[i]->ops->stats != NULL)
			r->outputs[i]->ops->stats(r->outputs[i], &os);
	log_info("stopped: accepted %llu, rejected %llu, published %llu, "
	    "dropped at PUB %llu, stalled subscribers %llu, stored %llu, "
	    "store failures %llu, spooled %llu, lost (spool full) %llu, "
	    "malformed messages %llu", r->accepted, rejected, r->published,
	    r->pub_dropped, os.stalls, st.written, st.failed, st.spooled,
	    st.lost, r->malformed);
	router_curve_log_stats(r->curve);
	return 0;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	router_curve_free(r->curve);	/* its sockets, before the context */
	/* before the context: feeders' threads use it */
	drop_waiters(r);
	for (int i = 0; i < r->ninputs; i++)
		input_free(r->inputs[i]);
	if (r->loop != NULL)
		loop_del(r->loop, r->done_io);
	router_metrics_free(r->rm);	/* reads the store, the outputs */
	store_close(r->store);
	waitq_free(&r->waiting);
	for (int i = 0; i < r->noutputs; i++)
		output_close(r->outputs[i]);
	bus_free(r->bus);
	loop_free(r->loop);
	free(r);
}
