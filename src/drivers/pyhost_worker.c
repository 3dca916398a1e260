/*
 * pyhost_worker: one Python worker's process, on the process layer
 * (proc.h): its start (exec of event-sub with --python-worker), its
 * deadlines (start-up, the running call's timeout) and its death.  See
 * pyhost_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proc.h"
#include "pyhost_int.h"
#include "pyworker.h"
#include "util.h"

extern char **environ;

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

int
pyhost_err_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0)
		return 0;
	close(fds[0]);
	close(fds[1]);
	return -1;
}

/*
 * One line (or part) of e to the log, escaped as every line is (a NUL
 * too), in as many log lines as it takes: none of it is cut (3800 bytes
 * a log line leave room for its prefix, log.h).  The empty end of a line
 * logged in parts is not a line.
 */
static void
err_line(struct pyerr *e, const char *s, size_t n, int part)
{
	char esc[3800];
	size_t used;

	if (n > 0 || !e->part) {
		do {
			log_escape_some(s, n, esc, sizeof(esc), &used);
			log_limited(e->rl, LOG_LVL_WARNING, "python worker "
			    "%ld: %s", (long)e->pid, esc);
			s += used;
			n -= used;
		} while (n > 0 && used > 0);
	}
	e->part = part;
}

/* Bytes of s[n] (a full buffer) up to the start of a character that
 * runs past its end, if one does: a part ends where a character starts. */
static size_t
whole_chars(const char *s, size_t n)
{
	size_t k = n;

	while (k > 0 && n - k < 4 && ((unsigned char)s[k - 1] & 0xc0) == 0x80)
		k--;
	if (k > 0 && n - k < 4 && (unsigned char)s[k - 1] >= 0xc0) {
		unsigned char lead = (unsigned char)s[k - 1];
		size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
		if (n - (k - 1) < len)
			return k - 1;	/* cut: keep it for the next part */
	}
	return n;
}

int
pyhost_err_read(struct pyerr *e)
{
	for (;;) {
		char *s = e->buf, *nl, *end;
		ssize_t n = read(e->fd, e->buf + e->len,
		    sizeof(e->buf) - e->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 || errno != EAGAIN ? -1 : 0;
		end = e->buf + e->len + n;
		while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
			err_line(e, s, (size_t)(nl - s), 0);
			s = nl + 1;
		}
		if (s == e->buf && end - s == (ssize_t)sizeof(e->buf)) {
			size_t k = whole_chars(s, sizeof(e->buf));
			err_line(e, s, k ? k : sizeof(e->buf), 1);
			s += k ? k : sizeof(e->buf);
		}
		e->len = (size_t)(end - s);
		memmove(e->buf, s, e->len);
	}
}

void
pyhost_err_close(struct pyerr *e)
{
	if (e->fd < 0)
		return;
	pyhost_err_read(e);
	if (e->len > 0)
		err_line(e, e->buf, e->len, 0);
	e->len = 0;
	close(e->fd);
	e->fd = -1;
}

static void
on_err(struct loop *l, int mask, void *arg)
{
	struct worker *w = arg;

	(void)mask;
	if (pyhost_err_read(&w->err) != 0) {
		loop_del(l, w->errio);
		w->errio = -1;
		pyhost_err_close(&w->err);
	}
}

void
pyhost_close_sock(struct worker *w)
{
	loop_del(w->pool->loop, w->io);
	w->io = -1;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

int
pyhost_py_level(enum log_level l)
{
	static const int map[] = { 10, 20, 30, 40 };
	return map[l];
}

/* environ plus MONGOC_DISABLE_SHM=1 (store.h), built once. */
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

int
pyhost_wspec_init(struct wspec *ws, const char *exe, const char *dir, int level,
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

void
pyhost_wspec_done(struct wspec *ws, int ok)
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

int
pyhost_spawn_worker(struct pyhost *p, struct worker *w)
{
	enum proc_stage stage;
	struct wspec ws;
	int shmfd, e, errp[2] = { -1, -1 };

	w->shm = pyproto_shm_new(&shmfd);
	if (w->shm == NULL)
		return -1;
	if (pyhost_err_pipe(errp) != 0) {
		e = errno;
		close(shmfd);
		pyproto_shm_free(w->shm);
		w->shm = NULL;
		errno = e;
		return -1;
	}
	if (pyhost_wspec_init(&ws, p->exe, p->dir, p->level, shmfd) == 0) {
		/* its standard error: ours to log by the line, escaped */
		ws.sp.fds[ws.sp.nfds++] = (struct proc_fd){ errp[1], 2 };
		ws.sp.timeout_ms = PYHOST_START_TIMEOUT_MS;
		ws.sp.on_signal = worker_signal;
		ws.sp.on_exit = worker_exited;
		ws.sp.arg = w;
		w->proc = proc_spawn(p->procs, &ws.sp, &stage);
		e = errno;
		pyhost_wspec_done(&ws, w->proc != NULL);
	} else
		e = errno;
	close(shmfd);		/* our mapping stays */
	close(errp[1]);
	if (w->proc == NULL) {
		close(errp[0]);
		pyproto_shm_free(w->shm);
		w->shm = NULL;
		errno = e;
		return -1;
	}
	w->pid = proc_pid(w->proc);
	w->fd = ws.sv[0];
	w->io = loop_add_fd(p->loop, w->fd, LOOP_READ, on_worker, w);
	w->err.fd = errp[0];
	w->err.pid = w->pid;
	w->err.rl = &p->err_rl;
	w->errio = loop_add_fd(p->loop, w->err.fd, LOOP_READ, on_err, w);
	w->state = W_STARTING;
	w->next_seq = w->oldest = 1;
	if (p->ever[w - p->w])
		p->restarts++;
	p->ever[w - p->w] = 1;
	log_debug("python worker %ld started", (long)w->pid);
	return 0;
}

void
pyhost_worker_reset(struct pyhost *p, struct worker *w, double slow_ms)
{
	memset(w, 0, sizeof(*w));
	w->pool = p;
	w->fd = w->io = w->statm_fd = w->err.fd = w->errio = -1;
	w->slow_ms = slow_ms;
	w->state = W_NONE;
}

/* Let a worker go: close its socket (it exits at EOF), reap later.  Its
 * calls in flight are settled when it is reaped. */
void
pyhost_retire(struct worker *w, int sigkill)
{
	pyhost_close_sock(w);
	pyproto_buf_free(&w->in);
	pyproto_buf_free(&w->out);
	if (w->proc != NULL && sigkill)
		proc_kill(w->proc);
	else if (w->proc != NULL)
		proc_set_deadline(w->proc, -1);
	w->deadline_seq = 0;
	w->state = W_EXITING;
}

/* Resident set of a worker: one pread of /proc/PID/statm, kept open. */
long
pyhost_rss_bytes(struct worker *w)
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
	pyhost_steal_queued(w->pool, w);
	if (pyhost_call_state(w, seq) != PYSLOT_TAKEN)
		return 0;	/* it has just ended */
	log_info("pyfunc %s for event %s timed out after %g s: killing "
	    "python worker %ld", c->h->handler, c->ev->id, c->h->timeout,
	    (long)w->pid);
	w->killed = 1;
	return 1;
}

/* Settle the calls w had in flight when its process ended with st. */
static void
settle_calls(struct pyhost *p, struct worker *w, int st)
{
	char msg[256], tmsg[256];

	if (WIFSIGNALED(st))
		snprintf(msg, sizeof(msg), "python worker killed by signal %d "
		    "(%s) during the call", WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	else
		snprintf(msg, sizeof(msg), "python worker exited with status "
		    "%d during the call", WEXITSTATUS(st));
	for (uint64_t s = w->oldest; w->inflight > 0 && s < w->next_seq; s++) {
		struct call *c = CALL(w, s);
		int cs;
		if (c->seq != s)
			continue;
		cs = w->shm != NULL ? pyhost_call_state(w, s) : -1;
		if (cs == PYSLOT_TAKEN && w->killed) {
			snprintf(tmsg, sizeof(tmsg), "timed out after %g s: "
			    "python worker killed and replaced", c->h->timeout);
			pyhost_finish_here(p, w, c, RUN_TIMEOUT,
			    w->kill_reason ? w->kill_reason : tmsg);
		} else if (cs == PYSLOT_TAKEN || cs == PYSLOT_DONE_EXT) {
			pyhost_finish_here(p, w, c, RUN_FAILED, msg);
		} else if (w->state == W_STARTING) {
			/* it never ran Python: do not retry forever */
			pyhost_finish_here(p, w, c, RUN_ERROR, w->kill_reason ?
			    w->kill_reason : msg);
		} else {
			/* never started: another worker runs it */
			struct pending pc = { c->h, c->ev, c->tag };
			log_debug("pyfunc %s for event %s: its worker died "
			    "before it started; another runs it",
			    c->h->handler, c->ev->id);
			pyhost_drop_call(w, c);
			pyhost_push_retry(p, &pc);
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
	pyhost_collect(p, w);
	if (w->state == W_STARTING && w->kill_reason == NULL)
		log_error("python worker %ld died before it was ready",
		    (long)x->pid);
	loop_del(p->loop, w->errio);
	w->errio = -1;
	pyhost_err_close(&w->err);	/* what it said last, before its death */
	settle_calls(p, w, x->wstatus);
	pyhost_close_sock(w);
	pyproto_buf_free(&w->in);
	pyproto_buf_free(&w->out);
	pyproto_shm_free(w->shm);
	if (w->statm_fd >= 0)
		close(w->statm_fd);
	pyhost_worker_reset(p, w, w->slow_ms);	/* slow_ms: the handlers' */
}
