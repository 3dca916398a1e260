/*
 * pyhost: event-sub's pool of Python workers: which calls go to which
 * worker, and when.  See pyhost.h and pyhost_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_reader.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "proc.h"
#include "pyhost_int.h"
#include "util.h"

struct pyhost *
pyhost_new(struct loop *l, const char *exe, const char *handlers_dir,
    int nworkers, long max_rss_mb, enum log_level level, run_done_fn done,
    void *arg)
{
	struct pyhost *p = xcalloc(1, sizeof(*p));

	p->loop = l;
	p->exe = xstrdup(exe);
	p->dir = xstrdup(handlers_dir);
	p->level = pyhost_py_level(level);
	p->lines_rl.interval = PYHOST_LOG_INTERVAL;
	p->lines_rl.burst = PYHOST_LOG_BURST;
	p->lines_rl.what = "\"pyfunc\" lines of handlers (each run keeps its "
	    "own in its stdout and stderr)";
	p->err_rl = (struct log_ratelimit)PYHOST_ERR_RL;
	p->n = nworkers > 0 ? nworkers : 1;
	p->max_rss = max_rss_mb * 1024 * 1024;
	p->procs = procs_new(l);
	p->w = xcalloc((size_t)p->n, sizeof(*p->w));
	p->ever = xcalloc((size_t)p->n, 1);
	for (int i = 0; i < p->n; i++)
		pyhost_worker_reset(p, &p->w[i], -1);
	p->done = done;
	p->arg = arg;
	return p;
}

/*
 * Calls that may wait in w behind its running one: as many as recent
 * calls say run in half of PYHOST_PIPELINE_MS, at most
 * PYHOST_PIPELINE_MAX; one while nothing is known yet (slow_ms < 0).
 */
static int
depth(const struct worker *w)
{
	double d;

	if (w->slow_ms < 0)
		return 1;
	if (w->slow_ms * PYHOST_PIPELINE_MAX * 2 <= PYHOST_PIPELINE_MS)
		return PYHOST_PIPELINE_MAX;
	d = PYHOST_PIPELINE_MS / (2 * w->slow_ms);
	return d < 1 ? 0 : (int)d;
}

/* Calls w could take now. */
static int
capacity(const struct worker *w, long long now)
{
	int n;

	if (w->recycle || w->killed)
		return 0;
	switch (w->state) {
	case W_NONE:
		return 1;
	case W_STARTING:
		return w->inflight == 0 && w->fd >= 0;
	case W_READY:
		if (w->fd >= 0)
			break;
		return 0;	/* it has gone away: reaped soon */
	default:
		return 0;
	}
	if (w->inflight > 0 &&
	    pyhost_running_ns(w, now) >= PYHOST_PIPELINE_MS * 1000000LL)
		return 0;
	n = 1 + depth(w) - w->inflight;
	return n > 0 ? n : 0;
}

int
pyhost_idle(const struct pyhost *p)
{
	long long now = util_mono_ns();
	int n = 0;

	for (int i = 0; i < p->n; i++)
		n += capacity(&p->w[i], now);
	return n > (int)p->nretry ? n - (int)p->nretry : 0;
}

int
pyhost_active(const struct pyhost *p)
{
	int n = (int)p->nretry;

	for (int i = 0; i < p->n; i++)
		n += p->w[i].inflight;
	return n;
}

/* Report a call that never started. */
static void
report_unstarted(struct pyhost *p, const struct pending *c, const char *why)
{
	struct run_result res;

	driver_result(&res, c->h, c->ev);
	res.status = RUN_ERROR;
	res.started_at = util_now();
	res.error = why;
	p->done(c->tag, &res, p->arg);
}

/* A call that must wait for a worker (or end, when stopping). */
void
pyhost_push_retry(struct pyhost *p, const struct pending *c)
{
	if (p->stopping) {
		report_unstarted(p, c, p->stopping);
		return;
	}
	if (p->nretry == p->retry_cap) {
		p->retry_cap = p->retry_cap ? p->retry_cap * 2 : 8;
		p->retry = xrealloc(p->retry, p->retry_cap * sizeof(*p->retry));
	}
	p->retry[p->nretry++] = *c;
}

/*
 * Take back every call waiting in w behind its running one (newest
 * first, until the worker has taken one: it takes them in order), and
 * queue them for other workers in their order.  Returns how many.
 */
int
pyhost_steal_queued(struct pyhost *p, struct worker *w)
{
	uint64_t taken[PYSHM_SLOTS];
	int n = 0;

	if (w->shm == NULL)
		return 0;
	for (uint64_t s = w->next_seq; s-- > w->oldest;) {
		uint64_t want = PYSLOT(s, PYSLOT_QUEUED);
		if (CALL(w, s)->seq != s)
			continue;
		if (!atomic_compare_exchange_strong(&SLOT(w, s)->state, &want,
		    PYSLOT(s, PYSLOT_STOLEN)))
			break;
		taken[n++] = s;
	}
	for (int i = n; i-- > 0;) {
		struct call *c = CALL(w, taken[i]);
		struct pending pc = { c->h, c->ev, c->tag };
		pyhost_drop_call(w, c);
		pyhost_push_retry(p, &pc);
	}
	return n;
}

/* Send what pyhost_start() queued for w; on failure the worker is killed
 * and its death settles its calls. */
static void
flush_worker(struct worker *w)
{
	if (w->out.len == 0 || w->fd < 0)
		return;
	if (pyproto_send(w->fd, &w->out) != 0) {
		log_error("cannot reach python worker %ld: %s; replacing it",
		    (long)w->pid, strerror(errno));
		pyhost_retire(w, SIGKILL);
	}
}

void
pyhost_flush(struct pyhost *p)
{
	for (int i = 0; i < p->n; i++)
		flush_worker(&p->w[i]);
}

/* Bytes of the 'C' frame for c. */
static size_t
call_bytes(const struct pending *c)
{
	return 5 + 8 + strlen(c->h->handler) + 1 + c->ev->json_len;
}

/* The worker for a call of bytes: a free ready one, else a free one to
 * start, else the ready one with the fewest calls that has room. */
static struct worker *
pick(struct pyhost *p, size_t bytes)
{
	struct worker *best = NULL, *fresh = NULL;
	long long now = util_mono_ns();

	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		if (capacity(w, now) == 0)
			continue;
		if (w->inflight == 0) {
			if (w->state == W_READY)
				return w;
			if (fresh == NULL)
				fresh = w;
			continue;
		}
		if (w->inflight_bytes + bytes > PYHOST_PIPELINE_BYTES ||
		    w->next_seq - w->oldest >= PYSHM_SLOTS)
			continue;
		if (best == NULL || w->inflight < best->inflight)
			best = w;
	}
	return fresh != NULL ? fresh : best;
}

/* Start c on a worker, or queue it to be retried; -1 when it was
 * reported as an error already. */
static int
start_on(struct pyhost *p, const struct pending *c)
{
	size_t hlen = strlen(c->h->handler) + 1, bytes = call_bytes(c);
	unsigned char seqb[8];
	struct worker *w = pick(p, bytes);
	struct call *k;
	uint64_t seq;

	if (w == NULL) {
		pyhost_push_retry(p, c);
		return 0;
	}
	if (w->state == W_NONE && pyhost_spawn_worker(p, w) != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot start a python worker: %s",
		    strerror(errno));
		report_unstarted(p, c, msg);
		return -1;
	}
	seq = w->next_seq++;
	if (w->inflight == 0)
		w->oldest = seq;
	k = CALL(w, seq);
	k->seq = seq;
	k->h = c->h;
	k->ev = c->ev;
	k->tag = c->tag;
	k->bytes = bytes;
	k->out.cap = k->err.cap = RUN_OUTPUT_CAP;
	w->inflight++;
	w->inflight_bytes += bytes;
	atomic_store(&SLOT(w, seq)->state, PYSLOT(seq, PYSLOT_QUEUED));
	pyproto_put_be64(seqb, seq);
	if (c->ev->json_len <= PYHOST_COPY_MAX) {
		pyproto_append(&w->out, 'C', seqb, sizeof(seqb), c->h->handler,
		    hlen, c->ev->json, c->ev->json_len);
		return 0;
	}
	flush_worker(w);
	if (w->fd >= 0 && pyproto_write(w->fd, 'C', seqb, sizeof(seqb),
	    c->h->handler, hlen, c->ev->json, c->ev->json_len) != 0) {
		log_error("cannot reach python worker %ld: %s; replacing it",
		    (long)w->pid, strerror(errno));
		pyhost_retire(w, SIGKILL);
	}
	return 0;
}

int
pyhost_start(struct pyhost *p, const struct handler *h, const struct event *ev,
    void *tag)
{
	struct pending c = { h, ev, tag };

	return start_on(p, &c);
}

/* Start retried calls, in order, while workers have room for them. */
static void
drain_retry(struct pyhost *p)
{
	size_t k = 0;

	while (k < p->nretry && pick(p, call_bytes(&p->retry[k])) != NULL) {
		struct pending c = p->retry[k++];
		start_on(p, &c);	/* pick() found room: not queued again */
	}
	if (k > 0) {
		memmove(p->retry, p->retry + k, (p->nretry - k) *
		    sizeof(*p->retry));
		p->nretry -= k;
	}
}

/*
 * Before event-sub sleeps: ask w for a 'W' frame once it has done half of
 * its calls in flight.  Returns 1 when it already has (do not sleep).
 */
static int
arm(struct worker *w)
{
	int half = (w->inflight - 1) / 2, i = 0;
	uint64_t s;
	int st;

	for (s = w->oldest; s < w->next_seq; s++)
		if (CALL(w, s)->seq == s && i++ == half)
			break;
	atomic_store(&w->shm->wake_seq, s);
	atomic_store(&w->shm->host_waiting, 1);
	/* calls end in order: if any from s on is done, s is */
	st = pyhost_call_state(w, s);
	return st == PYSLOT_DONE || st == PYSLOT_DONE_EXT;
}

/*
 * The deadline of w's running call (its timeout) is that of w's process:
 * set it for the call running now, or drop it when none runs.
 */
static void
set_deadline(struct worker *w, long long now)
{
	long long ran;
	struct call *c;

	if (w->proc == NULL || w->killed || w->state != W_READY)
		return;
	if (w->inflight == 0 || (ran = pyhost_running_ns(w, now)) <= 0) {
		if (w->deadline_seq != 0)
			proc_set_deadline(w->proc, -1);
		w->deadline_seq = 0;
		return;
	}
	c = CALL(w, w->oldest);
	if (w->deadline_seq == c->seq)
		return;
	w->deadline_seq = c->seq;
	/* rounded up: the deadline fires once the timeout has passed */
	proc_set_deadline(w->proc, (now - ran + (long long)(c->h->timeout *
	    1e9) + 999999) / 1000000);
}

long
pyhost_timeout_ms(struct pyhost *p, long dflt)
{
	long long now = util_mono_ns(), best = dflt < 0 ? -1 :
	    (long long)dflt * 1000000;

	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		long long due = -1;
		set_deadline(w, now);
		if (w->inflight > 0 && w->shm != NULL && w->fd >= 0 &&
		    !w->killed) {
			int st;
			if (arm(w))
				return 0;
			st = pyhost_call_state(w, w->oldest);
			if (st == PYSLOT_TAKEN && w->inflight > 1) {
				/* the calls behind it go elsewhere then */
				due = atomic_load_explicit(
				    &SLOT(w, w->oldest)->started_ns,
				    memory_order_relaxed) +
				    PYHOST_PIPELINE_MS * 1000000LL;
			} else if (st == PYSLOT_QUEUED && w->state == W_READY) {
				/* not taken yet: look again soon */
				due = now + PYHOST_PIPELINE_MS * 1000000LL;
			}
		}
		if (due < 0)
			continue;
		due -= now;
		if (due < 0)
			due = 0;
		if (best < 0 || due < best)
			best = due;
	}
	/* round up: waking before a deadline only to sleep again costs */
	return best < 0 ? -1 : (long)((best + 999999) / 1000000);
}

/*
 * After w's results: replace it when its resident set is over max_rss_mb
 * (its queued calls go to others), and let it go once its calls are done
 * when it is to be replaced.
 */
static void
check_worker(struct pyhost *p, struct worker *w, int nd)
{
	if (nd > 0 && !w->recycle && w->proc != NULL && w->state != W_EXITING &&
	    pyhost_rss_bytes(w) > p->max_rss) {
		int n;
		log_warn("python worker %ld uses more than %ld MiB "
		    "(subscriber.python_max_rss_mb): replacing it", (long)w->pid,
		    p->max_rss >> 20);
		w->recycle = 1;
		if ((n = pyhost_steal_queued(p, w)) > 0)
			log_debug("%d pyfunc calls queued on python worker %ld "
			    "go to another", n, (long)w->pid);
	}
	if (w->recycle && w->inflight == 0 && w->state != W_NONE &&
	    w->state != W_EXITING)
		pyhost_retire(w, 0);
}

/* Calls queued behind one that has run PYHOST_PIPELINE_MS go to other
 * workers. */
static void
steal_slow(struct pyhost *p, struct worker *w, long long now)
{
	struct call *c;
	int n;

	if (w->proc == NULL || w->killed || w->state == W_EXITING ||
	    w->inflight <= 1 ||
	    pyhost_running_ns(w, now) < PYHOST_PIPELINE_MS * 1000000LL)
		return;
	c = CALL(w, w->oldest);
	if ((n = pyhost_steal_queued(p, w)) > 0)
		log_debug("pyfunc %s for event %s has run %d ms: the %d calls "
		    "queued behind it go to other workers", c->h->handler,
		    c->ev->id, PYHOST_PIPELINE_MS, n);
}

void
pyhost_process(struct pyhost *p)
{
	long long now = util_mono_ns();

	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		if (w->state == W_NONE)
			continue;
		check_worker(p, w, pyhost_collect(p, w));
		steal_slow(p, w, now);
	}
	drain_retry(p);
	pyhost_flush(p);
	log_limited_flush(&p->lines_rl);
	log_limited_flush(&p->err_rl);
}

int
pyhost_child_exited(struct pyhost *p, pid_t pid, int st)
{
	return procs_reaped(p->procs, pid, st);
}

void
pyhost_recycle(struct pyhost *p)
{
	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		if (w->state == W_NONE || w->state == W_EXITING)
			continue;
		if (w->inflight > 0)
			w->recycle = 1;	/* retired once its calls are done */
		else
			pyhost_retire(w, 0);
	}
}

void
pyhost_kill_busy(struct pyhost *p, const char *why)
{
	p->stopping = "not started: event-sub stopped before a python worker "
	    "was free (subscriber.shutdown_grace)";
	for (size_t k = 0; k < p->nretry; k++)
		report_unstarted(p, &p->retry[k], p->stopping);
	p->nretry = 0;
	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		if (w->inflight == 0 || w->proc == NULL)
			continue;
		pyhost_steal_queued(p, w);	/* reported as not started */
		w->killed = 1;
		w->kill_reason = why;
		proc_kill(w->proc);
	}
}

void
pyhost_free(struct pyhost *p)
{
	if (p == NULL)
		return;
	p->stopping = "not started: event-sub is exiting";
	for (size_t k = 0; k < p->nretry; k++)
		report_unstarted(p, &p->retry[k], p->stopping);
	p->nretry = 0;
	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		if (w->proc == NULL)
			continue;
		pyhost_steal_queued(p, w);
		w->killed = 1;
		w->kill_reason = "killed: event-sub is exiting";
	}
	procs_free(p->procs);	/* kills, reaps: worker_exited() */
	log_limited_end(&p->lines_rl);
	log_limited_end(&p->err_rl);
	free(p->w);
	free(p->ever);
	free(p->retry);
	free(p->exe);
	free(p->dir);
	free(p);
}

/* ---- the pyfunc driver's entry in the table (driver.h) ---- */

static void *
pyfunc_new(const struct driver_env *env)
{
	return pyhost_new(env->loop, env->exe, env->handlers_dir,
	    env->cfg->python_workers, env->cfg->python_max_rss_mb, env->level,
	    env->done, env->arg);
}

static void
pyfunc_free(void *d)
{
	pyhost_free(d);
}

static int
pyfunc_room(void *d)
{
	return pyhost_idle(d);
}

static int
pyfunc_start(void *d, const struct handler *h, const struct event *ev,
    void *tag)
{
	return pyhost_start(d, h, ev, tag);
}

static int
pyfunc_active(void *d)
{
	return pyhost_active(d);
}

static void
pyfunc_collect(void *d)
{
	pyhost_process(d);
}

static void
pyfunc_flush(void *d)
{
	pyhost_flush(d);
}

static long
pyfunc_wait_ms(void *d, long dflt)
{
	return pyhost_timeout_ms(d, dflt);
}

static int
pyfunc_reaped(void *d, pid_t pid, int wstatus)
{
	return pyhost_child_exited(d, pid, wstatus);
}

static int
pyfunc_owns(void *d, pid_t pid)
{
	return procs_has(((struct pyhost *)d)->procs, pid);
}

static void
pyfunc_recycle(void *d)
{
	pyhost_recycle(d);
}

static void
pyfunc_kill(void *d, const char *why)
{
	pyhost_kill_busy(d, why);
}

/* Running as root with no default identity (proc.h): pyfunc handlers
 * run as root, in workers of event-sub's user. */
static void
pyfunc_check(const struct match_table *t)
{
	size_t n = driver_handlers(t, &driver_pyfunc, NULL);

	if (n > 0 && geteuid() == 0 && proc_default_identity() == NULL)
		log_warn("running as root: %zu pyfunc handler%s will run as "
		    "root (they run in event-sub's workers, as event-sub's "
		    "user: set config.json's \"user\" to change that)", n,
		    PL(n));
}

static int
pyfunc_verify(const struct driver_env *env, const struct match_table *t)
{
	return pyhost_verify(env->exe, env->handlers_dir, t,
	    PYHOST_START_TIMEOUT_MS);
}

/*
 * A pyfunc handler: "module.function".  It runs in event-sub's workers,
 * as event-sub's user: refuse
 * "user"/"group" (they would silently not apply), warn about the other
 * shell-only options, and about unknown ones.
 */
static int
pyfunc_parse(struct cfg_reader *c, const struct cfg_node *o, struct handler *h)
{
	static const char *const known[] = { "driver", "handler", "timeout",
	    "exclusive", "input", "env", "cwd", "user", "group", "when", "rate", "dedupe", NULL };
	static const char *const shell_only[] = { "input", "env", "cwd", NULL };
	const char *f = h->handler;

	if (strchr(f, '.') == NULL || f[strlen(f) - 1] == '.' || f[0] == '.')
		return cfg_error(c, "handler", "pyfunc handler must be "
		    "\"module.function\"");
	for (const char *const *k = (const char *const[]){ "user", "group",
	    NULL }; *k != NULL; k++)
		if (cfg_member(o, *k) != NULL)
			return cfg_error(c, *k, "\"%s\" applies to shell "
			    "handlers only: pyfunc handlers run in event-sub's "
			    "Python workers, as event-sub's user", *k);
	for (const char *const *k = shell_only; *k != NULL; k++)
		if (cfg_member(o, *k) != NULL)
			cfg_note(c, *k, LOG_LVL_WARNING, "\"%s\" applies to "
			    "shell handlers only; ignored for this pyfunc "
			    "handler", *k);
	cfg_warn_unknown(c, o, known, "handler");
	return 0;
}

static void
pyfunc_stats(void *d, struct driver_stats *st)
{
	const struct pyhost *p = d;

	for (int i = 0; i < p->n; i++)
		st->workers += p->w[i].proc != NULL;
	st->restarts += p->restarts;
}

const struct driver_ops driver_pyfunc = {
	.name = "pyfunc",
	.new = pyfunc_new,
	.free = pyfunc_free,
	.room = pyfunc_room,
	.start = pyfunc_start,
	.active = pyfunc_active,
	.collect = pyfunc_collect,
	.flush = pyfunc_flush,
	.wait_ms = pyfunc_wait_ms,
	.reaped = pyfunc_reaped,
	.owns = pyfunc_owns,
	.recycle = pyfunc_recycle,
	.kill = pyfunc_kill,
	.check = pyfunc_check,
	.verify = pyfunc_verify,
	.parse = pyfunc_parse,
	.stats = pyfunc_stats,
};
