/* pyhost: event-sub's pool of Python workers.  See pyhost.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "proc.h"
#include "pyhost.h"
#include "pyproto.h"
#include "pyworker.h"
#include "util.h"

extern char **environ;

/* Events larger than this go to the worker in a write of their own
 * instead of being copied into its batch of frames (bytes). */
#define PYHOST_COPY_MAX (64 * 1024)

enum wstate { W_NONE, W_STARTING, W_READY, W_EXITING };

/* A call sent to a worker: calls[seq % PYSHM_SLOTS] while in flight. */
struct call {
	uint64_t seq;		/* 0: none */
	const struct handler *h;
	const struct event *ev;
	void *tag;
	size_t bytes;		/* its 'C' frame */
	struct proc_capture out, err;	/* its log lines, its traceback */
};

/* A call not sent to any worker: to be retried, or taken back. */
struct pending {
	const struct handler *h;
	const struct event *ev;
	void *tag;
};

struct worker {
	enum wstate state;
	struct pyhost *pool;
	struct proc *proc;	/* its process, NULL once reaped */
	pid_t pid;		/* for log lines */
	int fd;			/* -1 once closed */
	int io;			/* fd's loop registration, -1: none */
	struct pyproto_buf in;	/* bytes received */
	struct pyproto_buf out;	/* 'C' frames not sent yet (pyhost_flush) */
	struct pyshm *shm;	/* the call slots, shared with the worker */
	uint64_t deadline_seq;	/* the call its process's deadline is for */
	int recycle;		/* replace once its calls are done */
	int statm_fd;		/* /proc/PID/statm, kept open (-1: not yet) */
	struct call calls[PYSHM_SLOTS];
	uint64_t next_seq;	/* the next call's seq (from 1) */
	uint64_t oldest;	/* no call before it is in flight */
	int inflight;		/* calls sent, neither done nor taken back */
	size_t inflight_bytes;
	int killed;		/* we sent SIGKILL (deadline, shutdown) */
	const char *kill_reason;	/* why, when not a call's deadline */
	double slow_ms;		/* recent call time, < 0 when none yet */
};

struct pyhost {
	struct loop *loop;
	struct procs *procs;	/* the workers' processes */
	char *exe, *dir;
	int level;		/* Python logging level */
	int n;
	long max_rss;		/* bytes */
	struct worker *w;
	runner_done_fn done;
	void *arg;
	struct pending *retry;	/* calls waiting for a worker, in order */
	size_t nretry, retry_cap;
	const char *stopping;	/* set at shutdown: why queued calls end */
};

#define CALL(w, s) (&(w)->calls[(s) % PYSHM_SLOTS])
#define SLOT(w, s) (&(w)->shm->slot[(s) % PYSHM_SLOTS])

/*
 * A worker's socket is watched only so that what it sends wakes the loop:
 * pyhost_process(), which the owner calls before each wait, reads every
 * worker (results come through shared memory as well as the socket).
 */
static void
on_worker(struct loop *l, int mask, void *arg)
{
	(void)l;
	(void)mask;
	(void)arg;
}

static void
close_sock(struct worker *w)
{
	loop_del(w->pool->loop, w->io);
	w->io = -1;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

static int
py_level(enum log_level l)
{
	static const int map[] = { 10, 20, 30, 40 };
	return map[l];
}

static enum log_level
our_level(int pylevel)
{
	return pylevel >= 40 ? LOG_LVL_ERROR : pylevel >= 30 ? LOG_LVL_WARNING :
	    pylevel >= 20 ? LOG_LVL_INFO : LOG_LVL_DEBUG;
}

/* environ plus MONGOC_DISABLE_SHM=1, built once. */
static char **
worker_env(void)
{
	static char **env;
	size_t n = 0;

	if (env != NULL)
		return env;
	while (environ[n] != NULL)
		n++;
	env = xcalloc(n + 2, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		env[i] = environ[i];
	env[n] = (char *)(uintptr_t)"MONGOC_DISABLE_SHM=1";
	return env;
}

/* How a worker process is started: exec of exe with our socket's other
 * end and the call slots at the fds pyworker.h names. */
struct wspec {
	char lvl[16];
	char *argv[6];
	int sv[2];		/* sv[0]: ours */
	struct proc_spec sp;
};

/* ws for a worker on shmfd; 0, or -1 with errno. */
static int
wspec_init(struct wspec *ws, const char *exe, const char *dir, int level,
    int shmfd)
{
	struct proc_spec *sp = &ws->sp;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ws->sv) != 0)
		return -1;
	snprintf(ws->lvl, sizeof(ws->lvl), "%d", level);
	ws->argv[0] = (char *)(uintptr_t)"event-sub";
	ws->argv[1] = (char *)(uintptr_t)"--python-worker";
	ws->argv[2] = (char *)(uintptr_t)dir;
	ws->argv[3] = (char *)(uintptr_t)"--python-level";
	ws->argv[4] = ws->lvl;
	ws->argv[5] = NULL;
	memset(sp, 0, sizeof(*sp));
	sp->file = exe;
	sp->argv = ws->argv;
	/* workers never use MongoDB: no mongo-c-driver counters file in
	 * /dev/shm for them (it would outlive a worker that is killed) */
	sp->envp = worker_env();
	sp->in = sp->out = PROC_NULL;
	sp->err = PROC_INHERIT;
	sp->fds[0] = (struct proc_fd){ ws->sv[1], PYWORKER_FD };
	sp->fds[1] = (struct proc_fd){ shmfd, PYWORKER_SHM_FD };
	sp->nfds = 2;
	return 0;
}

/* After the start: the child's end closed; ours kept (ok) or closed. */
static void
wspec_done(struct wspec *ws, int ok)
{
	/* bounded sends: a worker that stops reading cannot hang us */
	struct timeval tv = { 5, 0 };

	close(ws->sv[1]);
	if (ok)
		setsockopt(ws->sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	else
		close(ws->sv[0]);
}

static int worker_signal(struct proc *pr, int sig, void *arg);
static void worker_exited(const struct proc_exit *x, void *arg);

/* A new worker process for w, with fresh call slots: 0 or -1 with errno. */
static int
spawn_worker(struct pyhost *p, struct worker *w)
{
	enum proc_stage stage;
	struct wspec ws;
	int shmfd, e;

	w->shm = pyproto_shm_new(&shmfd);
	if (w->shm == NULL)
		return -1;
	if (wspec_init(&ws, p->exe, p->dir, p->level, shmfd) == 0) {
		ws.sp.timeout_ms = PYHOST_START_TIMEOUT_MS;
		ws.sp.on_signal = worker_signal;
		ws.sp.on_exit = worker_exited;
		ws.sp.arg = w;
		w->proc = proc_spawn(p->procs, &ws.sp, &stage);
		e = errno;
		wspec_done(&ws, w->proc != NULL);
	} else
		e = errno;
	close(shmfd);		/* our mapping stays */
	if (w->proc == NULL) {
		pyproto_shm_free(w->shm);
		w->shm = NULL;
		errno = e;
		return -1;
	}
	w->pid = proc_pid(w->proc);
	w->fd = ws.sv[0];
	w->io = loop_add_fd(p->loop, w->fd, LOOP_READ, on_worker, w);
	w->state = W_STARTING;
	w->next_seq = w->oldest = 1;
	log_debug("python worker %ld started", (long)w->pid);
	return 0;
}

/* w as it is before its first process (and after each one). */
static void
worker_reset(struct pyhost *p, struct worker *w, double slow_ms)
{
	memset(w, 0, sizeof(*w));
	w->pool = p;
	w->fd = w->io = w->statm_fd = -1;
	w->slow_ms = slow_ms;
	w->state = W_NONE;
}

struct pyhost *
pyhost_new(struct loop *l, const char *exe, const char *handlers_dir,
    int nworkers, long max_rss_mb, enum log_level level, runner_done_fn done,
    void *arg)
{
	struct pyhost *p = xcalloc(1, sizeof(*p));

	p->loop = l;
	p->exe = xstrdup(exe);
	p->dir = xstrdup(handlers_dir);
	p->level = py_level(level);
	p->n = nworkers > 0 ? nworkers : 1;
	p->max_rss = max_rss_mb * 1024 * 1024;
	p->procs = procs_new(l);
	p->w = xcalloc((size_t)p->n, sizeof(*p->w));
	for (int i = 0; i < p->n; i++)
		worker_reset(p, &p->w[i], -1);
	p->done = done;
	p->arg = arg;
	return p;
}

/* PYSLOT_* of call seq in w's slots, or -1 when the slot is another's. */
static int
call_state(const struct worker *w, uint64_t seq)
{
	uint64_t v = atomic_load(&SLOT(w, seq)->state);

	return v >> 3 == seq ? (int)(v & 7) : -1;
}

/* How long w's oldest call has been running (ns), 0 when it is not. */
static long long
running_ns(const struct worker *w, long long now)
{
	if (w->inflight == 0 || call_state(w, w->oldest) != PYSLOT_TAKEN)
		return 0;
	return now - atomic_load_explicit(&SLOT(w, w->oldest)->started_ns,
	    memory_order_relaxed);
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
	    running_ns(w, now) >= PYHOST_PIPELINE_MS * 1000000LL)
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

static void
capture_line(struct proc_capture *c, const char *s, size_t n)
{
	proc_capture_add(c, s, n);
	proc_capture_add(c, "\n", 1);
}

/* w no longer has c in flight. */
static void
drop_call(struct worker *w, struct call *c)
{
	free(c->out.buf);
	free(c->err.buf);
	w->inflight--;
	w->inflight_bytes -= c->bytes;
	memset(c, 0, sizeof(*c));
	while (w->oldest < w->next_seq && CALL(w, w->oldest)->seq != w->oldest)
		w->oldest++;
}

/* Report call c of w and drop it.  data, error: NUL-terminated or NULL. */
static void
finish(struct pyhost *p, struct worker *w, struct call *c,
    enum run_status status, double started_at, double duration_ms,
    const char *data, const char *error)
{
	struct run_result res;
	void *tag = c->tag;
	char *out, *err;

	memset(&res, 0, sizeof(res));
	res.event_id = c->ev->id;
	res.driver = match_driver_name(c->h->driver);
	res.handler = c->h->handler;
	res.status = status;
	res.started_at = started_at;
	res.duration_ms = duration_ms >= 0 ? duration_ms : 0;
	proc_capture_end(&c->out);
	proc_capture_end(&c->err);
	res.out = out = c->out.buf;
	res.out_len = c->out.len;
	res.err = err = c->err.buf;
	res.err_len = c->err.len;
	res.error = error;
	res.data = data;
	c->out.buf = c->err.buf = NULL;	/* ours until done() returns */
	drop_call(w, c);
	p->done(tag, &res, p->arg);
	free(out);
	free(err);
}

/* Report c, which event-sub ended (it never returned a result): its
 * times are those of its slot when the worker had taken it. */
static void
finish_here(struct pyhost *p, struct worker *w, struct call *c,
    enum run_status status, const char *error)
{
	long long now = util_mono_ns(), ran = 0;

	if (w->shm != NULL && call_state(w, c->seq) >= PYSLOT_TAKEN)
		ran = now - atomic_load_explicit(&SLOT(w, c->seq)->started_ns,
		    memory_order_relaxed);
	if (ran < 0)
		ran = 0;
	finish(p, w, c, status, util_now() - (double)ran / 1e9,
	    (double)ran / 1e6, NULL, error);
}

/* Report c from the result the worker sent. */
static void
finish_result(struct pyhost *p, struct worker *w, struct call *c,
    const struct pyproto_result *r)
{
	static const enum run_status status[] = {
		[PY_OK] = RUN_OK, [PY_FAILED] = RUN_FAILED, [PY_ERROR] = RUN_ERROR,
	};
	char small[2 * PYSHM_INLINE + 2], *mem = small, *d = NULL, *e = NULL;
	size_t need = r->data_len + r->error_len + 2;
	double ms = r->duration_ms;

	if (need > sizeof(small))
		mem = xmalloc(need);
	if (r->data != NULL) {
		d = mem;
		memcpy(d, r->data, r->data_len);
		d[r->data_len] = '\0';
	}
	if (r->error != NULL) {
		e = mem + r->data_len + 1;
		memcpy(e, r->error, r->error_len);
		e[r->error_len] = '\0';
	}
	if (r->tb != NULL)
		proc_capture_add(&c->err, r->tb, r->tb_len);
	/* recent call time: up at once, down slowly (depth()) */
	if (ms >= 0)
		w->slow_ms = w->slow_ms < 0 || ms > w->slow_ms ? ms :
		    w->slow_ms + (ms - w->slow_ms) / 16;
	finish(p, w, c, status[r->status], r->started_at, ms, d, e);
	if (mem != small)
		free(mem);
}

/* Let a worker go: close its socket (it exits at EOF), reap later.  Its
 * calls in flight are settled when it is reaped. */
static void
retire(struct worker *w, int sig)
{
	close_sock(w);
	pyproto_buf_free(&w->in);
	pyproto_buf_free(&w->out);
	if (w->proc != NULL && sig)
		proc_kill(w->proc);
	else if (w->proc != NULL)
		proc_set_deadline(w->proc, -1);
	w->deadline_seq = 0;
	w->state = W_EXITING;
}

/* Resident set of a worker: one pread of /proc/PID/statm, kept open. */
static long
rss_bytes(struct worker *w)
{
	char buf[128], path[64];
	long pages = 0, rss = 0;
	ssize_t n;

	if (w->statm_fd < 0) {
		snprintf(path, sizeof(path), "/proc/%ld/statm", (long)w->pid);
		w->statm_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (w->statm_fd < 0)
			return 0;
	}
	n = pread(w->statm_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%ld %ld", &pages, &rss) != 2)
		return 0;
	return rss * sysconf(_SC_PAGESIZE);
}

/* Report a call that never started. */
static void
report_unstarted(struct pyhost *p, const struct pending *c, const char *why)
{
	struct run_result res;

	memset(&res, 0, sizeof(res));
	res.event_id = c->ev->id;
	res.driver = match_driver_name(c->h->driver);
	res.handler = c->h->handler;
	res.status = RUN_ERROR;
	res.started_at = util_now();
	res.error = why;
	p->done(c->tag, &res, p->arg);
}

/* A call that must wait for a worker (or end, when stopping). */
static void
push_retry(struct pyhost *p, const struct pending *c)
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
static int
steal_queued(struct pyhost *p, struct worker *w)
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
		drop_call(w, c);
		push_retry(p, &pc);
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
		retire(w, SIGKILL);
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
		push_retry(p, c);
		return 0;
	}
	if (w->state == W_NONE && spawn_worker(p, w) != 0) {
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
		retire(w, SIGKILL);
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
	st = call_state(w, s);
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
	if (w->inflight == 0 || (ran = running_ns(w, now)) <= 0) {
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
			st = call_state(w, w->oldest);
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

static void
on_frame(struct pyhost *p, struct worker *w, char type, const unsigned char *pl,
    size_t len)
{
	struct pyproto_result r;
	struct call *c;
	uint64_t seq;

	switch (type) {
	case 'H':
		if (w->state == W_STARTING && w->proc != NULL) {
			w->state = W_READY;
			proc_set_deadline(w->proc, -1);	/* the start's */
		}
		break;
	case 'L': {
		const unsigned char *nul = len > 9 ? memchr(pl + 9, '\0', len - 9) :
		    NULL;
		const char *text;
		size_t tlen;
		if (nul == NULL)
			break;
		seq = pyproto_get_be64(pl + 1);
		text = (const char *)nul + 1;
		tlen = len - (size_t)(nul + 1 - pl);
		log_msg(our_level(pl[0]), "pyfunc %s: %.*s", (const char *)pl + 9,
		    (int)tlen, text);
		c = CALL(w, seq);
		if (seq != 0 && c->seq == seq)
			capture_line(pl[0] >= 30 ? &c->err : &c->out, text, tlen);
		break;
	}
	case 'R':
		if (len < 8 || pyproto_result_get(pl + 8, len - 8, &r) != 0) {
			log_error("python worker %ld sent a malformed result; "
			    "replacing it", (long)w->pid);
			retire(w, SIGKILL);
			break;
		}
		seq = pyproto_get_be64(pl);
		c = CALL(w, seq);
		if (seq != 0 && c->seq == seq)
			finish_result(p, w, c, &r);
		break;
	case 'W':
		break;		/* what it wakes us for is in the slots */
	default:
		log_error("python worker %ld sent frame type %d; replacing it",
		    (long)w->pid, type);
		retire(w, SIGKILL);
	}
}

/* Read what w sent until it has nothing more for now. */
static void
drain(struct pyhost *p, struct worker *w)
{
	char buf[65536];

	while (w->fd >= 0) {
		const unsigned char *pl;
		size_t len;
		char type;
		int k;
		ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				/* EOF: the worker is gone; reaped later */
				close_sock(w);
			}
			break;
		}
		pyproto_feed(&w->in, buf, (size_t)n);
		while (w->fd >= 0 &&
		    (k = pyproto_next(&w->in, &type, &pl, &len)) != 0) {
			if (k < 0) {
				log_error("python worker %ld sent an oversized "
				    "frame", (long)w->pid);
				retire(w, SIGKILL);
				break;
			}
			on_frame(p, w, type, pl, len);
		}
	}
}

/*
 * Collect w's results: the calls done, then what it sent (their log lines
 * and large results precede their state), then the results in the slots.
 */
static void
collect(struct pyhost *p, struct worker *w)
{
	uint64_t done[PYSHM_SLOTS];
	int nd = 0;

	if (w->shm != NULL) {
		atomic_store(&w->shm->host_waiting, 0);
		for (uint64_t s = w->oldest; s < w->next_seq; s++) {
			int st;
			if (CALL(w, s)->seq != s)
				continue;
			st = call_state(w, s);
			if (st != PYSLOT_DONE && st != PYSLOT_DONE_EXT)
				break;	/* calls end in order */
			done[nd++] = s;
		}
	}
	drain(p, w);
	for (int i = 0; i < nd; i++) {
		struct call *c = CALL(w, done[i]);
		struct pyshm_slot *sl = SLOT(w, done[i]);
		struct pyproto_result r;
		unsigned char data[PYSHM_INLINE];
		uint32_t len;

		if (c->seq != done[i])
			continue;	/* its 'R' frame came */
		/*
		 * The worker runs handler code and can write anywhere in the
		 * region: read the length once, and decode a copy, so that
		 * nothing it writes meanwhile reaches past what was checked.
		 */
		len = *(volatile uint32_t *)&sl->len;
		if (len <= PYSHM_INLINE)
			memcpy(data, sl->data, len);
		if (call_state(w, done[i]) != PYSLOT_DONE ||
		    len > PYSHM_INLINE ||
		    pyproto_result_get(data, len, &r) != 0) {
			log_error("python worker %ld: no valid result for a call; "
			    "replacing it", (long)w->pid);
			finish_here(p, w, c, RUN_ERROR, "malformed result from the "
			    "python worker");
			retire(w, SIGKILL);
			continue;
		}
		finish_result(p, w, c, &r);
	}
	if (nd > 0 && !w->recycle && w->proc != NULL && w->state != W_EXITING &&
	    rss_bytes(w) > p->max_rss) {
		int n;
		log_warn("python worker %ld uses more than %ld MiB "
		    "(subscriber.python_max_rss_mb): replacing it", (long)w->pid,
		    p->max_rss >> 20);
		w->recycle = 1;
		if ((n = steal_queued(p, w)) > 0)
			log_debug("%d pyfunc calls queued on python worker %ld "
			    "go to another", n, (long)w->pid);
	}
	if (w->recycle && w->inflight == 0 && w->state != W_NONE &&
	    w->state != W_EXITING)
		retire(w, 0);
}

/*
 * The deadline of w's process passed (proc.h): the start-up's, or its
 * running call's timeout (set_deadline()).  Returns 1 to kill it.
 */
static int
worker_signal(struct proc *pr, int sig, void *arg)
{
	struct worker *w = arg;
	uint64_t seq = w->deadline_seq;
	struct call *c = CALL(w, seq);

	(void)pr;
	(void)sig;
	if (w->killed || w->state == W_EXITING)
		return 1;	/* SIGKILL again until it is reaped */
	if (w->state == W_STARTING) {
		log_error("python worker %ld did not start within %d ms; "
		    "killing it", (long)w->pid, PYHOST_START_TIMEOUT_MS);
		w->kill_reason = "python worker did not start in time";
		w->killed = 1;
		return 1;
	}
	w->deadline_seq = 0;
	if (seq == 0 || c->seq != seq)
		return 0;	/* collected meanwhile */
	/* nothing starts behind it: the kill ends this call only */
	steal_queued(w->pool, w);
	if (call_state(w, seq) != PYSLOT_TAKEN)
		return 0;	/* it has just ended */
	log_info("pyfunc %s for event %s timed out after %g s: killing "
	    "python worker %ld", c->h->handler, c->ev->id, c->h->timeout,
	    (long)w->pid);
	w->killed = 1;
	return 1;
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
	    running_ns(w, now) < PYHOST_PIPELINE_MS * 1000000LL)
		return;
	c = CALL(w, w->oldest);
	if ((n = steal_queued(p, w)) > 0)
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
		collect(p, w);
		steal_slow(p, w, now);
	}
	drain_retry(p);
	pyhost_flush(p);
}

/* Settle the calls w had in flight when its process ended with st. */
static void
settle_calls(struct pyhost *p, struct worker *w, int st)
{
	char msg[256], tmsg[256];

	if (WIFSIGNALED(st))
		snprintf(msg, sizeof(msg), "python worker killed by signal %d "
		    "(%s) during the call", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(msg, sizeof(msg), "python worker exited with status "
		    "%d during the call", WEXITSTATUS(st));
	for (uint64_t s = w->oldest; w->inflight > 0 && s < w->next_seq; s++) {
		struct call *c = CALL(w, s);
		int cs;
		if (c->seq != s)
			continue;
		cs = w->shm != NULL ? call_state(w, s) : -1;
		if (cs == PYSLOT_TAKEN && w->killed) {
			snprintf(tmsg, sizeof(tmsg), "timed out after %g s: "
			    "python worker killed and replaced", c->h->timeout);
			finish_here(p, w, c, RUN_TIMEOUT, w->kill_reason ?
			    w->kill_reason : tmsg);
		} else if (cs == PYSLOT_TAKEN || cs == PYSLOT_DONE_EXT) {
			finish_here(p, w, c, RUN_FAILED, msg);
		} else if (w->state == W_STARTING) {
			/* it never ran Python: do not retry forever */
			finish_here(p, w, c, RUN_ERROR, w->kill_reason ?
			    w->kill_reason : msg);
		} else {
			/* never started: another worker runs it */
			struct pending pc = { c->h, c->ev, c->tag };
			log_debug("pyfunc %s for event %s: its worker died "
			    "before it started; another runs it",
			    c->h->handler, c->ev->id);
			drop_call(w, c);
			push_retry(p, &pc);
		}
	}
}

/* w's process was reaped (proc.h): what it did, then a fresh slot. */
static void
worker_exited(const struct proc_exit *x, void *arg)
{
	struct worker *w = arg;
	struct pyhost *p = w->pool;

	/* take what it said and did before it went (reaped: no process to
	 * signal any more) */
	w->proc = NULL;
	collect(p, w);
	if (w->state == W_STARTING && w->kill_reason == NULL)
		log_error("python worker %ld died before it was ready",
		    (long)x->pid);
	settle_calls(p, w, x->wstatus);
	close_sock(w);
	pyproto_buf_free(&w->in);
	pyproto_buf_free(&w->out);
	pyproto_shm_free(w->shm);
	if (w->statm_fd >= 0)
		close(w->statm_fd);
	worker_reset(p, w, w->slow_ms);	/* slow_ms: the handlers' */
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
			retire(w, 0);
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
		steal_queued(p, w);	/* reported as not started */
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
		steal_queued(p, w);
		w->killed = 1;
		w->kill_reason = "killed: event-sub is exiting";
	}
	procs_free(p->procs);	/* kills, reaps: worker_exited() */
	free(p->w);
	free(p->retry);
	free(p->exe);
	free(p->dir);
	free(p);
}

/* ---- start-up check ---- */

static int
read_frame(int fd, struct pyproto_buf *in, long long until, char *type,
    const unsigned char **pl, size_t *len)
{
	char buf[65536];

	for (;;) {
		int k = pyproto_next(in, type, pl, len);
		struct pollfd pfd = { fd, POLLIN, 0 };
		long long left = until - util_mono_ms();
		ssize_t n;
		if (k != 0)
			return k;
		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		pyproto_feed(in, buf, (size_t)n);
	}
}

int
pyhost_verify(const char *exe, const char *handlers_dir,
    const struct match_table *t, long timeout_ms)
{
	struct pyproto_buf in = { 0 };
	long long until = util_mono_ms() + timeout_ms;
	const unsigned char *pl;
	struct proc_pipes pp;
	enum proc_stage stage;
	struct pyshm *shm;
	struct wspec ws;
	size_t len;
	char type;
	int fd, shmfd, bad = 0, any = 0, e;
	pid_t pid = -1;

	for (size_t i = 0; i < t->nentries && !any; i++)
		for (size_t k = 0; k < t->entries[i].nhandlers; k++)
			any |= t->entries[i].handlers[k].driver == DRIVER_PYFUNC;
	if (!any)
		return 0;
	shm = pyproto_shm_new(&shmfd);
	if (shm != NULL && wspec_init(&ws, exe, handlers_dir, 40, shmfd) == 0) {
		pid = proc_start(&ws.sp, &pp, &stage);
		e = errno;
		wspec_done(&ws, pid > 0);
		errno = e;
	}
	if (pid < 0)
		log_error("cannot start a python worker: %s", strerror(errno));
	if (shm != NULL)
		close(shmfd);
	if (pid < 0) {
		pyproto_shm_free(shm);
		return -1;
	}
	fd = ws.sv[0];
	if (read_frame(fd, &in, until, &type, &pl, &len) != 1 || type != 'H') {
		log_error("python worker did not start within %ld ms", timeout_ms);
		bad = -1;
		goto out;
	}
	for (size_t i = 0; i < t->nentries; i++) {
		for (size_t k = 0; k < t->entries[i].nhandlers; k++) {
			const struct handler *h = &t->entries[i].handlers[k];
			struct pyproto_result r;
			if (h->driver != DRIVER_PYFUNC)
				continue;
			if (pyproto_write(fd, 'V', h->handler, strlen(h->handler),
			    NULL, 0, NULL, 0) != 0)
				goto broken;
			do {
				if (read_frame(fd, &in, until, &type, &pl,
				    &len) != 1)
					goto broken;
			} while (type != 'R');
			if (len < 8 || pyproto_result_get(pl + 8, len - 8, &r) != 0)
				goto broken;
			if (r.status != PY_OK) {
				log_warn("%s: pyfunc handler %s does not resolve: "
				    "%.*s", h->where, h->handler, (int)r.error_len,
				    r.error ? r.error : "");
				bad++;
			}
		}
	}
	goto out;
broken:
	log_error("python worker failed while checking handlers");
	bad = -1;
out:
	close(fd);
	kill(pid, SIGKILL);
	proc_wait(pid);
	pyproto_buf_free(&in);
	pyproto_shm_free(shm);
	return bad;
}
