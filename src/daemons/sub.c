/* sub: event-sub's loop.  See include/sub.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "out_zmq.h"
#include "sub.h"
#include "sub_int.h"
#include "util.h"

/* Messages read from SUB per loop turn before running anything. */
#define SUB_BATCH 256
/* The longest the loop sleeps (ms): the rate-limited log lines' summaries
 * are written from its turns. */
#define SUB_TICK_MS 1000
/* While results wait for the store, how often to look (ms): a run is in
 * flight for the journal until its result is written. */
#define SETTLE_MS 5
/* How often idle_tick() looks whether a burst is over (ms). */
#define SUB_IDLE_MS 1000

/* The catch-up's host functions (catchup.h). */
static int
take_stored(void *arg, const void *text, size_t len)
{
	return sub_on_event(arg, text, len, 1);
}

static size_t
room(void *arg)
{
	struct sub *s = arg;

	return s->qlen < (size_t)s->cfg->queue_size ?
	    (size_t)s->cfg->queue_size - s->qlen : 0;
}

/* Connected (again) to the router after the first time: what it
 * published meanwhile is read back from the store. */
static void
reconnected(struct sub *s)
{
	log_info("reconnected to %s%s", s->uri, s->cu != NULL ?
	    ": catching up from the store what it published meanwhile" :
	    ": what it published meanwhile is not run (no catch-up)");
	catchup_kick(s->cu);
}

/*
 * The SUB socket's handshakes (bus_watch).  A one-frame stream says nothing
 * back (bus.h, "The event stream"): ready once connected, with what that
 * does not promise said once.  On a topic-framed stream a handshake after
 * the first means that we connected again: the next control message
 * confirms our new subscription (read_sub).
 */
static void
read_watch(struct sub *s)
{
	char failed[160];
	int n = bus_watch_read(s->watch, failed, sizeof(failed));

	if (failed[0] != '\0')		/* libzmq tries again meanwhile */
		log_limited(&s->hs_rl, LOG_LVL_WARNING, "handshake with %s "
		    "failed: %s", s->uri, failed);
	if (n <= 0)
		return;
	if (s->framing == CFG_FRAMING_TOPIC)
		s->rejoined = s->ready;	/* the first: the control says */
	else if (s->ready)
		reconnected(s);
	else {
		s->ready = 1;
		if (s->cu != NULL)
			log_info("ready connected to %s (one frame per event: "
			    "what the router publishes before it has our "
			    "subscription is caught up from the store)", s->uri);
		else
			log_info("ready connected to %s (one frame per event: "
			    "events the router publishes before it has our "
			    "subscription are not seen; a \"topic\" output "
			    "confirms it)", s->uri);
		daemon_notify("READY=1");
	}
}

static void
on_watch(struct loop *l, int mask, void *arg)
{
	(void)l;
	(void)mask;
	read_watch(arg);
}

/* Either framing of the stream (bus.h, "The event stream"). */
static void
read_sub(struct sub *s)
{
	struct bus_msg m[2];
	const void *body;
	size_t len;

	for (int i = 0; i < SUB_BATCH && s->qlen < (size_t)s->cfg->queue_size;
	    i++) {
		if (bus_recv2(s->sock, m, 1) != 0)
			break;
		switch (bus_stream_what(m, &body, &len)) {
		case BUS_STREAM_CONTROL:
			/* topic framing: our subscription is live.  The
			 * router greets every subscription, so every
			 * subscriber of "" gets each greeting: after the
			 * first, only one that follows a handshake of ours
			 * (already reported: ours came before our
			 * subscription left) says that we reconnected. */
			if (!s->ready) {
				s->ready = 1;
				log_info("ready subscribed to %s", s->uri);
				daemon_notify("READY=1");
				break;
			}
			read_watch(s);
			if (s->rejoined) {
				s->rejoined = 0;
				reconnected(s);
			} else
				log_debug("control message on %s: another "
				    "subscriber's subscription", s->uri);
			break;
		case BUS_STREAM_EVENT:
			sub_on_event(s, body, len, 0);
			break;
		case BUS_STREAM_BAD:
			s->bad++;
			log_limited(&s->bad_rl, LOG_LVL_WARNING, "message on %s "
			    "ignored: %d frames, expected the event (or a "
			    "topic, then the event)", s->uri, m[0].nframes);
			break;
		}
		bus_msg_close(&m[0]);
		bus_msg_close(&m[1]);
	}
}

static void
on_sub(struct loop *l, int mask, void *arg)
{
	(void)l;
	(void)mask;
	read_sub(arg);
}

static int
in_flight(const struct sub *s)
{
	return drivers_active(s->drv);
}

/* Reap every exited child and hand it to its driver. */
static void
reap(struct sub *s)
{
	pid_t pid;
	int st, ended = 0;

	s->ct.reaping = 1;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (drivers_reaped(s->drv, pid, st))
			ended = 1;
		else
			log_debug("reaped process %ld", (long)pid);
	}
	s->ct.reaping = 0;
	/* what the process left behind is ours now (sub_contain.c) */
	if (ended)
		sub_contain_look(s);
}

static void
check_pause(struct sub *s)
{
	int full = s->qlen >= (size_t)s->cfg->queue_size;

	if (full && !s->paused) {
		s->paused = 1;
		s->paused_since = util_mono_ms();
		log_warn("run queue full (%zu runs waiting): not reading %s until "
		    "it drains; %s", s->qlen, s->uri, s->amqp != NULL ?
		    "the broker keeps what is not acknowledged" :
		    "ZeroMQ's high-water mark takes over");
	} else if (!full && s->paused) {
		s->paused = 0;
		log_warn("run queue below %d again: reading %s after %.3f s",
		    s->cfg->queue_size, s->uri,
		    (double)(util_mono_ms() - s->paused_since) / 1000.0);
	}
	if (s->amqp != NULL) {
		sub_fleet_pause(s, s->stopping || s->paused);
		return;
	}
	/* the SUB socket is watched while we take events */
	if (!s->stopping && !s->paused && s->sock_io < 0)
		s->sock_io = loop_add_sock(s->loop, s->sock, LOOP_READ, on_sub,
		    s);
	else if ((s->stopping || s->paused) && s->sock_io >= 0) {
		loop_del(s->loop, s->sock_io);
		s->sock_io = -1;
	}
}

static void
begin_stop(struct sub *s)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	if (s->feed.fn != NULL) {
		sub_discard_queue(s);	/* a replay starts no more runs */
		log_info("replay stopping: %llu queued runs not started, %d "
		    "runs in flight, up to %g s to finish", s->discarded,
		    in_flight(s), s->cfg->shutdown_grace);
		s->stop_deadline = util_mono_ms() +
		    (long long)(s->cfg->shutdown_grace * 1000);
		return;
	}
	daemon_notify("STOPPING=1");
	s->stop_deadline = util_mono_ms() +
	    (long long)(s->cfg->shutdown_grace * 1000);
	log_info("stopping: no more events taken; %d runs in flight, %zu "
	    "queued, up to %g s to finish", in_flight(s), s->qlen,
	    s->cfg->shutdown_grace);
}

/* Shutdown: past the grace, drop the queue and kill what runs.  Returns 1
 * when nothing is left. */
static int
stop_step(struct sub *s)
{
	if (util_mono_ms() >= s->stop_deadline) {
		sub_drop_queue(s, "not started: event-sub stopped before a slot "
		    "was free (subscriber.shutdown_grace)");
		if (in_flight(s) > 0 && !s->killed) {
			s->killed = 1;
			log_warn("shutdown grace over: killing %d runs",
			    in_flight(s));
			drivers_kill(s->drv, "killed at shutdown: still "
			    "running after subscriber.shutdown_grace");
		}
	}
	return in_flight(s) == 0 && s->qlen == 0;
}

static void
on_term(struct loop *l, int sig, void *arg)
{
	(void)l;
	(void)sig;
	begin_stop(arg);
}

static void
on_hup(struct loop *l, int sig, void *arg)
{
	(void)l;
	(void)sig;
	sub_reload(arg);
}

/* A child's exit wakes the loop at once: its result is recorded now. */
static void
on_chld(struct loop *l, int sig, void *arg)
{
	(void)l;
	(void)sig;
	reap(arg);
}

/* The runs whose results the store has written are done in the journal. */
static void
settle(struct sub *s)
{
	struct store_stats st;

	if (!catchup_unsettled(s->cu))
		return;		/* nothing waits: no lock taken */
	store_get_stats(s->store, &st);
	catchup_settle(s->cu, st.written + st.failed);
}

/*
 * Before each wait: the python workers' results, the runs that can start,
 * the shutdown, the queue's bound; returns how long the loop may sleep.
 */
static long
before_wait(struct loop *l, void *arg)
{
	struct sub *s = arg;
	long timeout, cu_ms = -1;

	drivers_collect(s->drv);
	settle(s);
	sub_fleet_settle(s);
	if (!s->stopping && s->feed.fn != NULL && !s->fed)
		cu_ms = s->feed.fn(s, s->feed.arg, &s->fed);
	else if (!s->stopping)
		cu_ms = catchup_poll(s->cu);
	sub_dispatch(s);
	if ((s->stopping && stop_step(s)) || (s->fed && s->qlen == 0 &&
	    in_flight(s) == 0)) {
		loop_stop(l);
		return 0;
	}
	log_limited_flush(&s->bad_rl);
	log_limited_flush(&s->fail_rl);
	log_limited_flush(&s->hs_rl);
	if (s->feed.fn == NULL)		/* a replay has no stream to pause */
		check_pause(s);
	timeout = drivers_wait_ms(s->drv, SUB_TICK_MS);
	if (catchup_unsettled(s->cu) && cu_ms > SETTLE_MS)
		cu_ms = SETTLE_MS;
	timeout = sub_fleet_wait_ms(s, timeout);
	if (cu_ms >= 0 && cu_ms < timeout)
		timeout = cu_ms;
	if (s->stopping && !s->killed) {
		long long left = s->stop_deadline - util_mono_ms();
		if (left < 0)
			left = 0;
		if (left < timeout)
			timeout = (long)left;
	}
	return timeout;
}

/*
 * A tick (SUB_IDLE_MS) after one in which no event came, no run ended
 * and the store settled nothing, following a burst, and again a tick
 * later: the memory the burst's queues and the journal's page
 * cache used goes back to the system (util_release_memory(); jemalloc
 * purges idle pages only when it is called, so a quiet daemon would keep
 * its peak).
 * Each tick also logs the store's refusals held back (store_log_flush).
 */
static long
idle_tick(struct loop *l, void *arg)
{
	struct sub *s = arg;
	unsigned long long n = s->received + s->runs + s->results_put +
	    store_settled(s->store);

	(void)l;
	store_log_flush();
	if (n != s->idle_seen) {
		s->idle_seen = n;
		s->idle_busy = 2;	/* and once more after the store's own
					   release, a second after its last write */
	} else if (s->idle_busy) {
		catchup_release_memory(s->cu);
		util_release_memory();
		s->idle_busy--;
	}
	return SUB_IDLE_MS;
}

int
sub_run(struct sub *s)
{
	struct store_stats st;
	int sigs[] = { SIGTERM, SIGINT };

	/* from here on the loop takes the signals; those that came before
	 * left daemon.c's flags */
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		loop_signal(s->loop, sigs[i], on_term, s);
	loop_signal(s->loop, SIGHUP, on_hup, s);
	loop_signal(s->loop, SIGCHLD, on_chld, s);
	if (daemon_reload) {
		daemon_reload = 0;
		sub_reload(s);
	}
	if (daemon_stop)
		begin_stop(s);
	reap(s);
	loop_set_before(s->loop, before_wait, s);
	loop_add_timer(s->loop, SUB_IDLE_MS, idle_tick, s);
	if (loop_run(s->loop) < 0)
		log_error("poll: %s", strerror(errno));
	/* no run is left: the Python workers go, then what they or the
	 * last runs left behind */
	drivers_free(s->drv);
	s->drv = NULL;
	sub_contain_final(s);
	store_flush(s->store);
	settle(s);
	sub_fleet_settle(s);
	catchup_commit(s->cu);
	store_get_stats(s->store, &st);
	log_info("stopped: events %llu, malformed %llu, unmatched %llu, runs "
	    "%llu, results stored %llu, store failures %llu, spooled %llu, "
	    "lost (spool full) %llu, caught up from the store %llu, processes "
	    "left behind by runs killed %llu", s->received, s->bad,
	    s->unmatched, s->runs, st.written, st.failed, st.spooled, st.lost,
	    s->caught_up, s->ct.killed);
	return 0;
}

void
sub_warn_unresolved(const char *handlers_path, int n)
{
	log_warn("%s: %d pyfunc handler%s not resolve (above): %s runs are "
	    "recorded as errors, the other handlers run", handlers_path, n,
	    n == 1 ? " does" : "s do", n == 1 ? "its" : "their");
}

/* The catch-up, once the store is open (it made the events file). */
static int
open_catchup(struct sub *s, char *err, size_t errsz)
{
	struct catchup_host host = { take_stored, room, sub_pending, s };
	const char *none;
	char what[8192];

	s->cu = catchup_open(s->cfg, &host, &none, err, errsz);
	if (s->cu == NULL && none == NULL)
		return -1;
	catchup_describe(s->cfg, what, sizeof(what));
	log_info("%s", what);
	return 0;
}

/*
 * Started as root (identity.h): with no handler that names a "user" or
 * "group", event-sub takes config.json's user for good; otherwise it keeps
 * root to start those, and every other run and the Python workers get
 * that user (proc_set_default_identity()).  Before the store and the
 * journal are opened, so that the files it creates are that user's.
 */
static int
take_identity(struct sub *s, const struct match_table *t, char *err,
    size_t errsz)
{
	const struct identity *id = &s->id;
	size_t own;

	if (identity_choose(s->cfg, &s->id, err, errsz) != 0)
		return -1;
	if (!id->set)
		return 0;
	own = drivers_own_identity(t);
	if (own == 0) {
		if (identity_take(id, err, errsz) != 0)
			return -1;
		log_info("running as user %s (uid %u), group %s (gid %u)",
		    id->user, (unsigned)id->id.uid, id->group,
		    (unsigned)id->id.gid);
		return 0;
	}
	proc_set_default_identity(&id->id);
	log_info("keeping root to start the %zu handler%s that name%s a "
	    "\"user\" or \"group\"; other runs and the Python workers run as "
	    "user %s (uid %u), group %s (gid %u)", own, own == 1 ? "" : "s",
	    own == 1 ? "s" : "", id->user, (unsigned)id->id.uid, id->group, (unsigned)id->id.gid);
	return 0;
}

/*
 * The SUB socket (a CURVE client when cfg says so), its watch, connected
 * to s->uri.  Returns 0, or -1 with err[errsz] set.
 */
static int
open_socket(struct sub *s, const struct cfg *cfg, char *err, size_t errsz)
{
	s->sock = bus_socket(s->bus, BUS_SUB, 0, err, errsz);
	if (s->sock == NULL || bus_subscribe(s->sock, "") != 0)
		return -1;
	if (cfg->sub_curve.on && bus_curve_client(s->sock,
	    cfg->sub_curve.public_key, cfg->sub_curve.secret_key,
	    cfg->sub_curve.server_key) != 0) {
		snprintf(err, errsz, "CURVE options: %s", strerror(errno));
		return -1;
	}
	if ((s->watch = bus_watch(s->bus, s->sock, err, errsz)) == NULL)
		return -1;
	s->watch_io = loop_add_sock(s->loop, s->watch, LOOP_READ, on_watch,
	    s);
	if (bus_connect(s->sock, s->uri, err, errsz) != 0)
		return -1;
	log_info("subscribing to %s (%s framing%s%s)", s->uri,
	    s->framing == CFG_FRAMING_TOPIC ? "topic" : "event",
	    cfg->sub_curve.on ? ", CURVE, server key " : "",
	    cfg->sub_curve.on ? cfg->sub_curve.server_key : "");
	return 0;
}

/* Where events come from: the broker (-u amqp://), or the SUB socket. */
static int
open_source(struct sub *s, const struct cfg *cfg, const char *uri,
    char *err, size_t errsz)
{
	if (sub_amqp_uri(uri))
		return sub_fleet_open(s, uri, err, errsz);
	s->bus = bus_new();
	if (s->bus == NULL) {
		snprintf(err, errsz, "cannot create a ZeroMQ context");
		return -1;
	}
	return open_socket(s, cfg, err, errsz);
}

/*
 * What a start and a replay share: the loop, the handlers, the identity,
 * the store's results, the drivers.  Returns 0, or -1 with err[errsz].
 */
static int
sub_open(struct sub *s, struct cfg *cfg, const struct sub_opts *o,
    char *err, size_t errsz)
{
	struct match_table *t;
	int failed, bad;

	s->cfg = cfg;
	s->sock_io = s->watch_io = s->amqp_io = -1;
	sub_contain_init(s);	/* before any child: each is contained */
	if ((s->loop = loop_new()) == NULL) {
		snprintf(err, errsz, "cannot create the event loop: %s",
		    strerror(errno));
		return -1;
	}
	s->config_path = xstrdup(o->config_path);
	s->handlers_path = xstrdup(o->handlers_path);
	s->handlers_dir = xstrdup(o->handlers_dir);
	s->bad_rl.interval = s->fail_rl.interval = 10;
	s->bad_rl.burst = s->fail_rl.burst = 10;
	s->bad_rl.what = "malformed-message lines";
	s->fail_rl.what = "lines about handler runs that did not end ok "
	    "(their results are stored)";
	s->hs_rl.interval = 30;		/* libzmq retries every 0.1 s */
	s->hs_rl.burst = 1;
	s->hs_rl.what = "\"handshake failed\" lines";

	t = cfg_load_handlers(s->handlers_path, err, errsz);
	if (t == NULL)
		return -1;
	s->tbl = xcalloc(1, sizeof(*s->tbl));
	s->tbl->refs = 1;
	s->tbl->t = t;
	if (take_identity(s, t, err, errsz) != 0)
		return -1;
	drivers_check(t);	/* start-up warnings (root) */
	log_info("%s: %zu pattern%s, %zu handler%s", s->handlers_path,
	    t->nentries, PL(t->nentries), t->nhandlers, PL(t->nhandlers));

	s->store = store_open(cfg, STORE_RESULTS, 0, err, errsz, &failed);
	/* no catch-up for a fleet (-u amqp://) nor a replay */
	if (failed || (s->feed.fn == NULL && !sub_amqp_uri(o->uri) &&
	    open_catchup(s, err, errsz) != 0))
		return -1;
	s->env.loop = s->loop;
	s->env.cfg = s->cfg;
	s->env.exe = "/proc/self/exe";
	s->env.handlers_dir = s->handlers_dir;
	s->env.level = log_get_level();
	s->env.done = sub_on_done;
	s->env.arg = s;
	s->drv = drivers_new(&s->env);
	if ((bad = drivers_verify(&s->env, t)) > 0)
		sub_warn_unresolved(s->handlers_path, bad);
	return 0;
}

struct sub *
sub_new(struct cfg *cfg, const struct sub_opts *o, char *err,
    size_t errsz)
{
	struct sub *s = xcalloc(1, sizeof(*s));

	s->metrics_fd = o->metrics_fd;	/* sub_free() closes it */
	s->start_dir = o->start_dir;	/* and this */
	s->sock_io = s->watch_io = s->amqp_io = -1;
	s->uri_from_config = o->uri == NULL;
	if ((!sub_amqp_uri(o->uri) && out_zmq_subscriber(cfg, o->uri, s->uri,
	    sizeof(s->uri), &s->framing, err, errsz) != 0) ||
	    sub_open(s, cfg, o, err, errsz) != 0 ||
	    open_source(s, cfg, o->uri, err, errsz) != 0)
		goto fail;
	if (s->metrics_fd >= 0 && (s->sm = sub_metrics_new(s->metrics_fd,
	    s->loop, &s->qlen, &s->drv, err, errsz)) == NULL) {
		s->metrics_fd = -1;	/* closed */
		goto fail;
	}
	s->metrics_fd = -1;
	/* READY=1 waits for the subscription, or the broker */
	daemon_release();
	return s;
fail:
	sub_free(s);
	return NULL;
}

struct sub *
sub_new_replay(struct cfg *cfg, const struct sub_opts *o,
    const struct sub_feed *feed, const char *source, char *err,
    size_t errsz)
{
	struct sub *s = xcalloc(1, sizeof(*s));

	s->metrics_fd = -1;		/* a replay serves no /metrics */
	s->start_dir = -1;		/* nor takes SIGHUP */
	s->sock_io = s->watch_io = s->amqp_io = -1;
	s->feed = *feed;
	snprintf(s->uri, sizeof(s->uri), "%s", source);
	if (sub_open(s, cfg, o, err, errsz) != 0) {
		sub_free(s);
		return NULL;
	}
	return s;
}

void
sub_free(struct sub *s)
{
	if (s == NULL)
		return;
	sub_metrics_free(s->sm);	/* reads the drivers */
	if (s->metrics_fd >= 0)
		close(s->metrics_fd);
	if (s->start_dir >= 0)
		close(s->start_dir);
	drivers_free(s->drv);
	sub_drop_queue(s, "not started: event-sub is exiting");
	sub_fleet_close(s);
	catchup_close(s->cu);
	bus_unwatch(s->sock, s->watch);
	bus_close(s->sock);
	bus_free(s->bus);
	store_close(s->store);
	sub_tbl_unref(s->tbl);
	sub_contain_free(s);
	loop_free(s->loop);	/* last: the drivers used it */
	free(s->config_path);
	free(s->handlers_path);
	free(s->handlers_dir);
	free(s);
}
