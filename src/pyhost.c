/* pyhost: event-sub's pool of Python workers.  See include/pyhost.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyhost.h"
#include "pyproto.h"
#include "pyworker.h"
#include "util.h"

extern char **environ;

enum wstate { W_NONE, W_STARTING, W_IDLE, W_BUSY, W_EXITING };

struct capture {
	char *buf;
	size_t len, dropped;
};

struct worker {
	enum wstate state;
	pid_t pid;
	int fd;			/* -1 once closed */
	struct pyproto_buf in;
	long long start_deadline;
	int recycle;		/* replace after the call in progress */
	int statm_fd;		/* /proc/PID/statm, kept open (-1: not yet) */
	/* the call in progress */
	int busy;
	const struct handler *h;
	const struct event *ev;
	void *tag;
	double started_at, start_mono;
	long long deadline_ms;
	int timed_out;
	const char *kill_reason;
	struct capture out, err;
	/* one more call queued behind it (pipelining), not started yet */
	struct pending *next;
};

/* A call not started yet: queued behind a worker's, or to be retried. */
struct pending {
	const struct handler *h;
	const struct event *ev;
	void *tag;
};

struct pyhost {
	char *exe, *dir;
	int level;		/* Python logging level */
	int n;
	long max_rss;		/* bytes */
	struct worker *w;
	runner_done_fn done;
	void *arg;
	struct pending *retry;	/* calls whose worker died before them */
	size_t nretry, retry_cap;
	const char *stopping;	/* set at shutdown: why queued calls end */
};

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

/* Start a worker process; returns 0 or -1 with errno. */
static int
spawn(const char *exe, const char *dir, int level, pid_t *pidp, int *fdp)
{
	char lvl[16], *argv[6], **wenv;
	int sv[2], devnull;
	struct timeval tv = { 5, 0 };
	sigset_t all, old;
	pid_t pid;

	snprintf(lvl, sizeof(lvl), "%d", level);
	/* workers never use MongoDB: no mongo-c-driver counters file in
	 * /dev/shm for them (it would outlive a worker that is killed) */
	wenv = worker_env();
	argv[0] = (char *)(uintptr_t)"event-sub";
	argv[1] = (char *)(uintptr_t)"--python-worker";
	argv[2] = (char *)(uintptr_t)dir;
	argv[3] = (char *)(uintptr_t)"--python-level";
	argv[4] = lvl;
	argv[5] = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* async-signal-safe calls only until execve */
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &sa, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		setpgid(0, 0);	/* a terminal's ^C goes to event-sub only */
		if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 ||
		    dup2(sv[1], PYWORKER_FD) < 0 ||
		    fcntl(PYWORKER_FD, F_SETFD, 0) < 0)
			_exit(127);
		execve(exe, argv, wenv);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sv[1]);
	close(devnull);
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		errno = e;
		return -1;
	}
	/* bounded sends: a worker that stops reading cannot hang us */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	*pidp = pid;
	*fdp = sv[0];
	return 0;
}

struct pyhost *
pyhost_new(const char *exe, const char *handlers_dir, int nworkers,
    long max_rss_mb, enum log_level level, runner_done_fn done, void *arg)
{
	struct pyhost *p = xcalloc(1, sizeof(*p));

	p->exe = xstrdup(exe);
	p->dir = xstrdup(handlers_dir);
	p->level = py_level(level);
	p->n = nworkers > 0 ? nworkers : 1;
	p->max_rss = max_rss_mb * 1024 * 1024;
	p->w = xcalloc((size_t)p->n, sizeof(*p->w));
	for (int i = 0; i < p->n; i++)
		p->w[i].fd = p->w[i].statm_fd = -1;
	p->done = done;
	p->arg = arg;
	return p;
}

/* A worker that can take a call now, and start it at once. */
static int
free_worker(const struct worker *w)
{
	return !w->busy && !w->recycle && (w->state == W_NONE ||
	    w->state == W_IDLE || w->state == W_STARTING);
}

/*
 * A worker that can take one call queued behind the one it runs: it
 * removes the round trip through event-sub between two calls.  Never
 * behind a call that has already run PYHOST_PIPELINE_MS, so that a slow
 * or looping handler holds up nothing that an idle worker could run.
 */
static int
pipeline_worker(const struct worker *w, double now)
{
	return w->busy && w->next == NULL && !w->recycle && !w->timed_out &&
	    w->state == W_IDLE &&
	    (now - w->start_mono) * 1000.0 < PYHOST_PIPELINE_MS;
}

int
pyhost_idle(const struct pyhost *p)
{
	double now = util_mono();
	int n = 0, free_ = 0;

	for (int i = 0; i < p->n; i++) {
		if (free_worker(&p->w[i]))
			free_++;
		else if (pipeline_worker(&p->w[i], now))
			n++;
	}
	n += free_;
	return n > (int)p->nretry ? n - (int)p->nretry : 0;
}

int
pyhost_active(const struct pyhost *p)
{
	int n = (int)p->nretry;

	for (int i = 0; i < p->n; i++)
		n += p->w[i].busy + (p->w[i].next != NULL);
	return n;
}

static void
capture(struct capture *c, const char *s, size_t n)
{
	size_t room = RUNNER_OUTPUT_CAP - c->len, take = n < room ? n : room;

	if (c->buf == NULL)
		c->buf = xmalloc(RUNNER_OUTPUT_CAP + 128);
	memcpy(c->buf + c->len, s, take);
	c->len += take;
	c->dropped += n - take;
}

static void
capture_line(struct capture *c, const char *s, size_t n)
{
	capture(c, s, n);
	capture(c, "\n", 1);
}

static void
report(struct pyhost *p, struct worker *w, const char *status,
    const char *data, const char *error)
{
	struct run_report rep;

	memset(&rep, 0, sizeof(rep));
	rep.tag = w->tag;
	rep.event_id = w->ev->id;
	rep.handler = w->h;
	rep.status = status;
	rep.started_at = w->started_at;
	rep.duration_ms = (util_mono() - w->start_mono) * 1000.0;
	if (w->out.dropped)
		w->out.len += (size_t)snprintf(w->out.buf + w->out.len, 128,
		    "\n[event-reactor: output truncated, %zu bytes dropped]\n",
		    w->out.dropped);
	if (w->err.dropped)
		w->err.len += (size_t)snprintf(w->err.buf + w->err.len, 128,
		    "\n[event-reactor: output truncated, %zu bytes dropped]\n",
		    w->err.dropped);
	rep.out = w->out.buf;
	rep.out_len = w->out.len;
	rep.err = w->err.buf;
	rep.err_len = w->err.len;
	rep.error = error;
	rep.data = data;
	w->busy = 0;
	p->done(&rep, p->arg);
	free(w->out.buf);
	free(w->err.buf);
	memset(&w->out, 0, sizeof(w->out));
	memset(&w->err, 0, sizeof(w->err));
	w->h = NULL;
	w->ev = NULL;
	w->tag = NULL;
}

/* Let a worker go: close its socket (it exits at EOF), reap later. */
static void
retire(struct worker *w, int sig)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	pyproto_buf_free(&w->in);
	if (sig && w->pid > 0)
		kill(w->pid, sig);
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

/* Make (h, ev, tag) w's current call, its clock starting now. */
static void
begin(struct worker *w, const struct handler *h, const struct event *ev,
    void *tag)
{
	w->busy = 1;
	w->h = h;
	w->ev = ev;
	w->tag = tag;
	w->timed_out = 0;
	w->kill_reason = NULL;
	w->started_at = util_now();
	w->start_mono = util_mono();
	w->deadline_ms = util_mono_ms() + (long long)(h->timeout * 1000.0);
}

static int
send_pending(struct worker *w, const struct pending *c)
{
	return pyproto_write(w->fd, 'C', c->h->handler,
	    strlen(c->h->handler) + 1, c->ev->json, c->ev->json_len, NULL, 0);
}

/* Report a call that never started. */
static void
report_unstarted(struct pyhost *p, const struct pending *c, const char *why)
{
	struct run_report rep;

	memset(&rep, 0, sizeof(rep));
	rep.tag = c->tag;
	rep.event_id = c->ev->id;
	rep.handler = c->h;
	rep.status = "error";
	rep.started_at = util_now();
	rep.error = why;
	p->done(&rep, p->arg);
}

static void
push_retry(struct pyhost *p, const struct pending *c)
{
	if (p->nretry == p->retry_cap) {
		p->retry_cap = p->retry_cap ? p->retry_cap * 2 : 8;
		p->retry = xrealloc(p->retry, p->retry_cap * sizeof(*p->retry));
	}
	p->retry[p->nretry++] = *c;
}

static int start_on(struct pyhost *p, const struct pending *c);

int
pyhost_start(struct pyhost *p, const struct handler *h, const struct event *ev,
    void *tag)
{
	struct pending c = { h, ev, tag };

	return start_on(p, &c);
}

static int
start_on(struct pyhost *p, const struct pending *c)
{
	struct worker *w = NULL;
	double now = util_mono();

	for (int i = 0; i < p->n && w == NULL; i++)
		if (free_worker(&p->w[i]) && p->w[i].state == W_IDLE)
			w = &p->w[i];
	for (int i = 0; i < p->n && w == NULL; i++)
		if (free_worker(&p->w[i]))
			w = &p->w[i];
	if (w == NULL) {
		for (int i = 0; i < p->n && w == NULL; i++)
			if (pipeline_worker(&p->w[i], now))
				w = &p->w[i];
		if (w == NULL)
			return -1;	/* caller checks pyhost_idle() first */
		if (send_pending(w, c) != 0) {
			/* the worker is in trouble: its death settles it */
			push_retry(p, c);
			return 0;
		}
		w->next = xmalloc(sizeof(*w->next));
		*w->next = *c;
		return 0;
	}

	begin(w, c->h, c->ev, c->tag);
	if (w->state == W_NONE) {
		if (spawn(p->exe, p->dir, p->level, &w->pid, &w->fd) != 0) {
			char msg[256];
			snprintf(msg, sizeof(msg), "cannot start a python worker: "
			    "%s", strerror(errno));
			report(p, w, "error", NULL, msg);
			return -1;
		}
		w->state = W_STARTING;
		w->start_deadline = util_mono_ms() + PYHOST_START_TIMEOUT_MS;
		log_debug("python worker %ld started", (long)w->pid);
	}
	if (send_pending(w, c) != 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot reach python worker %ld: %s",
		    (long)w->pid, strerror(errno));
		report(p, w, "error", NULL, msg);
		retire(w, SIGKILL);
		return -1;
	}
	return 0;
}

/* Start retried calls on workers that are free. */
static void
drain_retry(struct pyhost *p)
{
	size_t k = 0;

	if (p->nretry == 0)
		return;
	while (k < p->nretry) {
		int any = 0;
		for (int i = 0; i < p->n; i++)
			any |= free_worker(&p->w[i]);
		if (!any)
			break;
		struct pending c = p->retry[k++];
		start_on(p, &c);
	}
	if (k > 0) {
		memmove(p->retry, p->retry + k, (p->nretry - k) *
		    sizeof(*p->retry));
		p->nretry -= k;
	}
}

int
pyhost_pollitems(struct pyhost *p, struct bus_pollitem *items, int max)
{
	int n = 0;

	for (int i = 0; i < p->n && n < max; i++)
		if (p->w[i].fd >= 0)
			items[n++] = (struct bus_pollitem){ NULL, p->w[i].fd,
			    BUS_POLLIN, 0 };
	return n;
}

long
pyhost_timeout_ms(const struct pyhost *p, long dflt)
{
	long long now = util_mono_ms(), best = dflt;

	for (int i = 0; i < p->n; i++) {
		const struct worker *w = &p->w[i];
		long long due = -1;
		if (w->busy && !w->timed_out)
			due = w->deadline_ms;
		else if (w->state == W_STARTING)
			due = w->start_deadline;
		if (due < 0)
			continue;
		due -= now;
		if (due < 0)
			due = 0;
		if (best < 0 || due < best)
			best = due;
	}
	return (long)best;
}

static void
on_result(struct pyhost *p, struct worker *w, const unsigned char *pl,
    size_t len)
{
	const char *data, *error, *tb;
	size_t dl, el, tl, off = 1;
	char *d = NULL, *e = NULL;
	int st;

	if (!w->busy || len < 1 ||
	    pyproto_get_str(pl, len, &off, &data, &dl) != 0 ||
	    pyproto_get_str(pl, len, &off, &error, &el) != 0 ||
	    pyproto_get_str(pl, len, &off, &tb, &tl) != 0) {
		log_error("python worker %ld sent a malformed result; replacing "
		    "it", (long)w->pid);
		if (w->busy)
			report(p, w, "error", NULL, "malformed result from the "
			    "python worker");
		retire(w, SIGKILL);
		return;
	}
	st = pl[0];
	if (tl > 0)
		capture(&w->err, tb, tl);
	if (dl > 0) {
		d = xmalloc(dl + 1);
		memcpy(d, data, dl);
		d[dl] = '\0';
	}
	if (el > 0) {
		e = xmalloc(el + 1);
		memcpy(e, error, el);
		e[el] = '\0';
	}
	report(p, w, st == PY_OK ? "ok" : st == PY_FAILED ? "failed" : "error",
	    d, e);
	free(d);
	free(e);
	if (!w->recycle && rss_bytes(w) > p->max_rss) {
		log_warn("python worker %ld uses more than %ld MiB "
		    "(subscriber.python_max_rss_mb): replacing it", (long)w->pid,
		    p->max_rss >> 20);
		w->recycle = 1;
	}
	if (w->next != NULL) {
		/* the queued call is running now: its clock starts */
		struct pending *c = w->next;
		w->next = NULL;
		begin(w, c->h, c->ev, c->tag);
		free(c);
	} else if (w->recycle) {
		retire(w, 0);
	}
}

static void
on_frame(struct pyhost *p, struct worker *w, char type, const unsigned char *pl,
    size_t len)
{
	switch (type) {
	case 'H':
		if (w->state == W_STARTING)
			w->state = W_IDLE;
		break;
	case 'L': {
		const unsigned char *nul = len > 1 ? memchr(pl + 1, '\0', len - 1) :
		    NULL;
		const char *text;
		size_t tlen;
		if (nul == NULL)
			break;
		text = (const char *)nul + 1;
		tlen = len - (size_t)(nul + 1 - pl);
		log_msg(our_level(pl[0]), "pyfunc %s: %.*s", (const char *)pl + 1,
		    (int)tlen, text);
		if (w->busy)
			capture_line(pl[0] >= 30 ? &w->err : &w->out, text, tlen);
		break;
	}
	case 'R':
		on_result(p, w, pl, len);
		break;
	default:
		log_error("python worker %ld sent frame type %d; replacing it",
		    (long)w->pid, type);
		retire(w, SIGKILL);
	}
}

void
pyhost_process(struct pyhost *p)
{
	long long now = util_mono_ms();
	char buf[65536];

	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
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
					close(w->fd);
					w->fd = -1;
				}
				break;
			}
			pyproto_feed(&w->in, buf, (size_t)n);
			while (w->fd >= 0 &&
			    (k = pyproto_next(&w->in, &type, &pl, &len)) != 0) {
				if (k < 0) {
					log_error("python worker %ld sent an "
					    "oversized frame", (long)w->pid);
					retire(w, SIGKILL);
					break;
				}
				on_frame(p, w, type, pl, len);
			}
		}
		if (w->busy && !w->timed_out && now >= w->deadline_ms &&
		    w->pid > 0) {
			w->timed_out = 1;
			log_info("pyfunc %s for event %s timed out after %g s: "
			    "killing python worker %ld", w->h->handler,
			    w->ev->id, w->h->timeout, (long)w->pid);
			kill(w->pid, SIGKILL);
		} else if (w->state == W_STARTING && !w->busy &&
		    now >= w->start_deadline) {
			kill(w->pid, SIGKILL);
		}
	}
	drain_retry(p);
}

int
pyhost_child_exited(struct pyhost *p, pid_t pid, int st)
{
	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		char msg[256];
		if (w->pid != pid || pid <= 0)
			continue;
		if (w->fd >= 0) {
			/* take what it said before it went */
			pyhost_process(p);
		}
		if (w->busy) {
			if (w->timed_out) {
				if (w->kill_reason == NULL)
					snprintf(msg, sizeof(msg), "timed out after "
					    "%g s: python worker killed and "
					    "replaced", w->h->timeout);
				report(p, w, "timeout", NULL, w->kill_reason ?
				    w->kill_reason : msg);
			} else {
				if (WIFSIGNALED(st))
					snprintf(msg, sizeof(msg), "python worker "
					    "killed by signal %d (%s) during the "
					    "call", WTERMSIG(st),
					    strsignal(WTERMSIG(st)));
				else
					snprintf(msg, sizeof(msg), "python worker "
					    "exited with status %d during the call",
					    WEXITSTATUS(st));
				report(p, w, w->state == W_STARTING ? "error" :
				    "failed", NULL, msg);
			}
		} else if (w->state == W_STARTING) {
			log_error("python worker %ld died before it was ready",
			    (long)pid);
		}
		if (w->next != NULL) {
			/* never started: another worker runs it */
			if (p->stopping)
				report_unstarted(p, w->next, p->stopping);
			else {
				log_debug("pyfunc %s for event %s: its worker "
				    "died before it started; another runs it",
				    w->next->h->handler, w->next->ev->id);
				push_retry(p, w->next);
			}
			free(w->next);
			w->next = NULL;
		}
		if (w->fd >= 0)
			close(w->fd);
		pyproto_buf_free(&w->in);
		if (w->statm_fd >= 0)
			close(w->statm_fd);
		memset(w, 0, sizeof(*w));
		w->fd = -1;
		w->statm_fd = -1;
		w->state = W_NONE;
		return 1;
	}
	return 0;
}

void
pyhost_recycle(struct pyhost *p)
{
	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];
		if (w->state == W_NONE || w->state == W_EXITING)
			continue;
		if (w->busy)
			w->recycle = 1;
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
		if (!w->busy || w->pid <= 0)
			continue;
		w->timed_out = 1;
		w->kill_reason = why;
		kill(w->pid, SIGKILL);
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
		int st;
		if (w->pid <= 0)
			continue;
		if (w->busy) {
			w->timed_out = 1;
			w->kill_reason = "killed: event-sub is exiting";
		}
		kill(w->pid, SIGKILL);
		while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
			;
		pyhost_child_exited(p, w->pid, st);
	}
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
	size_t len;
	char type;
	int fd, bad = 0, any = 0, st;
	pid_t pid;

	for (size_t i = 0; i < t->nentries && !any; i++)
		for (size_t k = 0; k < t->entries[i].nhandlers; k++)
			any |= t->entries[i].handlers[k].driver == DRIVER_PYFUNC;
	if (!any)
		return 0;
	if (spawn(exe, handlers_dir, 40, &pid, &fd) != 0) {
		log_error("cannot start a python worker: %s", strerror(errno));
		return -1;
	}
	if (read_frame(fd, &in, until, &type, &pl, &len) != 1 || type != 'H') {
		log_error("python worker did not start within %ld ms", timeout_ms);
		bad = -1;
		goto out;
	}
	for (size_t i = 0; i < t->nentries; i++) {
		for (size_t k = 0; k < t->entries[i].nhandlers; k++) {
			const struct handler *h = &t->entries[i].handlers[k];
			const char *d, *e, *tb;
			size_t dl, el, tl, off = 1;
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
			if (len < 1 || pyproto_get_str(pl, len, &off, &d, &dl) ||
			    pyproto_get_str(pl, len, &off, &e, &el) ||
			    pyproto_get_str(pl, len, &off, &tb, &tl))
				goto broken;
			if (pl[0] != PY_OK) {
				log_warn("%s: pyfunc handler %s does not resolve: "
				    "%.*s", h->where, h->handler, (int)el, e);
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
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	pyproto_buf_free(&in);
	return bad;
}
