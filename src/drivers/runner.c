/*
 * runner: spawning and supervising shell handlers.  See runner.h.
 *
 * Everything a child needs (argv, envp, candidate paths, pipes, all
 * O_CLOEXEC) is prepared first.  Most runs start with posix_spawn (vfork
 * speed, exec errors as its result); runs that change user, group or
 * directory fork, and the child then only makes async-signal-safe calls:
 * setpgid, sigaction, sigprocmask, dup2, setgroups, setgid, setuid, chdir,
 * execve, write, _exit, with an exec failure travelling back as an errno
 * on a close-on-exec pipe (EOF there means exec succeeded).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "runner.h"
#include "util.h"

extern char **environ;

struct capture {
	int fd;
	char *buf;
	size_t len;		/* kept, at most RUN_OUTPUT_CAP */
	size_t dropped;		/* bytes read past the cap */
};

struct run {
	struct run *next;
	struct runner *r;
	const struct handler *h;
	const struct event *ev;
	void *tag;
	const char *kill_reason;
	pid_t pid;
	int wstatus;
	struct capture out, err;
	int in_fd;		/* -1 when done */
	int out_id, err_id, in_id;	/* loop registrations, -1: none */
	long long timer;	/* the deadline's, 0: none */
	size_t in_off;
	double started_at;
	double start_mono;
	long long start_ms;
	long long deadline_ms;
	int timed_out;
};

struct runner {
	struct loop *loop;
	runner_done_fn done;
	void *arg;
	struct run *runs;
	int active;
};

static char marker_fmt[] = "\n[event-reactor: output truncated, %zu bytes dropped]\n";

struct runner *
runner_new(struct loop *l, runner_done_fn done, void *arg)
{
	struct runner *r = xcalloc(1, sizeof(*r));

	r->loop = l;
	r->done = done;
	r->arg = arg;
	return r;
}

int
runner_active(const struct runner *r)
{
	return r->active;
}

static void
report_error(struct runner *r, const struct handler *h, const struct event *ev,
    void *tag, double started, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void
report_error(struct runner *r, const struct handler *h, const struct event *ev,
    void *tag, double started, const char *fmt, ...)
{
	struct run_result res;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memset(&res, 0, sizeof(res));
	res.event_id = ev->id;
	res.driver = match_driver_name(h->driver);
	res.handler = h->handler;
	res.status = RUN_ERROR;
	res.started_at = started;
	res.duration_ms = (util_now() - started) * 1000.0;
	res.error = msg;
	r->done(tag, &res, r->arg);
}

/* 1 when vec (NAME=value strings) sets the variable that var sets. */
static int
env_has(char **vec, const char *var)
{
	size_t nl = strcspn(var, "=");

	for (; vec != NULL && *vec != NULL; vec++)
		if (strncmp(*vec, var, nl) == 0 && (*vec)[nl] == '=')
			return 1;
	return 0;
}

/* environ + ER_* + the handler's env, in a new vector of borrowed and
 * owned strings; owned ones are listed in *owned (free each, then both). */
static char **
build_envp(const struct handler *h, const struct event *ev, char ***owned)
{
	size_t n = 0, m = 0, i;
	char **envp, **own;

	while (environ[n] != NULL)
		n++;
	for (i = 0; h->env != NULL && h->env[i] != NULL; i++)
		m++;
	envp = xcalloc(n + m + 4, sizeof(char *));
	own = xcalloc(4, sizeof(char *));
	if (asprintf(&own[0], "ER_EVENT_ID=%s", ev->id) < 0 ||
	    asprintf(&own[1], "ER_EVENT_TYPE=%s", ev->event_type) < 0 ||
	    asprintf(&own[2], "ER_NAMESPACE=%s", ev->namespace) < 0)
		abort();
	m = 0;
	for (i = 0; i < n; i++) {
		/* ours and the handler's win over inherited ones */
		if (strncmp(environ[i], "ER_EVENT_ID=", 12) == 0 ||
		    strncmp(environ[i], "ER_EVENT_TYPE=", 14) == 0 ||
		    strncmp(environ[i], "ER_NAMESPACE=", 13) == 0 ||
		    env_has(h->env, environ[i]))
			continue;
		envp[m++] = environ[i];
	}
	for (i = 0; h->env != NULL && h->env[i] != NULL; i++)
		envp[m++] = h->env[i];
	for (i = 0; i < 3; i++)
		envp[m++] = own[i];
	envp[m] = NULL;
	*owned = own;
	return envp;
}

/* Paths execve() should try, as execvp(3) would search PATH. */
static char **
candidates(const char *prog)
{
	const char *path = getenv("PATH"), *p;
	size_t n = 1, i = 0, plen = strlen(prog);
	char **c;

	if (strchr(prog, '/') != NULL) {
		c = xcalloc(2, sizeof(char *));
		c[0] = xstrdup(prog);
		return c;
	}
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p++)
		if (*p == ':')
			n++;
	c = xcalloc(n + 1, sizeof(char *));
	for (p = path;;) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		c[i] = xmalloc(dl + plen + 3);
		if (dl == 0)
			snprintf(c[i], dl + plen + 3, "./%s", prog);
		else
			snprintf(c[i], dl + plen + 3, "%.*s/%s", (int)dl, p, prog);
		i++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return c;
}

static void
free_vec(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

static void
set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Where a child failed before its program ran (low byte of the error
 * word the child writes back; the errno is above it). */
enum { STAGE_EXEC = 0, STAGE_SETUP, STAGE_IDENTITY, STAGE_CHDIR };

/* The child: async-signal-safe calls only, from fork to exec. */
static void __attribute__((noreturn))
child(int in_fd, int out_fd, int err_fd, int errpipe, const struct handler *h,
    const gid_t *groups, char **paths, char **argv, char **envp)
{
	struct sigaction sa;
	sigset_t none;
	int e = ENOENT, sig, stage = STAGE_SETUP;

	setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		goto fail_errno;
	stage = STAGE_IDENTITY;
	if (h->set_user && setgroups((size_t)h->ngroups, groups) != 0)
		goto fail_errno;
	if (h->set_user && !h->set_group && setgid((gid_t)h->gid) != 0)
		goto fail_errno;
	if (h->set_group) {
		if (!h->set_user && setgroups(0, NULL) != 0)
			goto fail_errno;
		if (setgid((gid_t)h->gid) != 0)
			goto fail_errno;
	}
	if (h->set_user && setuid((uid_t)h->uid) != 0)
		goto fail_errno;
	stage = STAGE_CHDIR;
	if (h->cwd != NULL && chdir(h->cwd) != 0)
		goto fail_errno;
	for (char **p = paths; *p != NULL; p++) {
		execve(*p, argv, envp);
		if (errno == EACCES)
			e = EACCES;	/* remember, keep looking (as execvp) */
		else if (errno != ENOENT && errno != ENOTDIR)
			{ e = errno; break; }
	}
	e = e << 8 | STAGE_EXEC;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
fail_errno:
	e = errno << 8 | stage;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

/*
 * fork + exec, for runs that change user or group (posix_spawn cannot) or
 * directory (so a bad cwd is reported as such).  The exec error comes back
 * on a close-on-exec pipe; EOF there means exec succeeded.
 */
static pid_t
spawn_fork(int in_fd, int out_fd, int err_fd, const struct handler *h,
    const gid_t *groups, char **paths, char **argv, char **envp, int *stage)
{
	sigset_t all, old;
	int pex[2], e = 0;
	ssize_t got;
	pid_t pid;

	if (pipe2(pex, O_CLOEXEC) != 0)
		return -1;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child(in_fd, out_fd, err_fd, pex[1], h, groups, paths, argv,
		    envp);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(pex[1]);
	if (pid < 0) {
		close(pex[0]);
		errno = e;
		return -1;
	}
	setpgid(pid, pid);	/* both sides, so kill(-pid) works at once */
	do {
		got = read(pex[0], &e, sizeof(e));
	} while (got < 0 && errno == EINTR);
	close(pex[0]);
	if (got == (ssize_t)sizeof(e)) {
		/* exec failed: the child has _exit(127)ed or is about to */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		*stage = e & 0xff;
		errno = e >> 8;
		return -1;
	}
	return pid;
}

/*
 * posix_spawn, the common case: glibc's uses CLONE_VFORK, so it neither
 * copies our page tables nor waits on a pipe, and reports exec errors as
 * its return value.  The same child set-up as child(): a process group of
 * its own, default dispositions, an empty mask, the three descriptors.
 */
static pid_t
spawn_posix(int in_fd, int out_fd, int err_fd, char **paths, char **argv,
    char **envp)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t dfl, none;
	int rc = ENOENT, e = ENOENT;
	pid_t pid = -1;

	sigfillset(&dfl);
	sigdelset(&dfl, SIGKILL);
	sigdelset(&dfl, SIGSTOP);
	sigemptyset(&none);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	for (char **p = paths; *p != NULL; p++) {
		rc = posix_spawn(&pid, *p, &fa, &at, argv, envp);
		if (rc == 0)
			break;
		if (rc == EACCES)
			e = EACCES;	/* remember, keep looking (as execvp) */
		else if (rc != ENOENT && rc != ENOTDIR) {
			e = rc;
			break;
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		errno = e;
		return -1;
	}
	return pid;
}

static pid_t
spawn_child(int in_fd, int out_fd, int err_fd, const struct handler *h,
    const gid_t *groups, char **paths, char **argv, char **envp, int *stage)
{
	*stage = STAGE_EXEC;
	if (h->set_user || h->set_group || h->cwd != NULL)
		return spawn_fork(in_fd, out_fd, err_fd, h, groups, paths, argv,
		    envp, stage);
	return spawn_posix(in_fd, out_fd, err_fd, paths, argv, envp);
}

static void watch(struct run *x);

int
runner_start(struct runner *r, const struct handler *h, const struct event *ev,
    void *tag)
{
	int pin[2] = { -1, -1 }, pout[2], perr[2];
	int use_argv = h->input != INPUT_STDIN, use_stdin = h->input != INPUT_ARGV;
	double started = util_now(), start_mono = util_mono();
	char **argv, **envp, **owned, **paths;
	gid_t *groups;
	struct run *run;
	pid_t pid;
	int e = 0, i, stage = STAGE_EXEC;

	if (h->driver != DRIVER_SHELL) {
		report_error(r, h, ev, tag, started, "the %s driver is not available "
		    "in this build yet", match_driver_name(h->driver));
		return -1;
	}
	if (use_argv && ev->json_len + 1 > RUNNER_MAX_ARG_STRLEN) {
		if (h->input == INPUT_ARGV) {
			report_error(r, h, ev, tag, started, "event JSON is %zu bytes, "
			    "over Linux's limit of %d bytes for one argument "
			    "(MAX_ARG_STRLEN); set \"input\": \"stdin\" or "
			    "\"both\" for this handler", ev->json_len,
			    RUNNER_MAX_ARG_STRLEN);
			return -1;
		}
		use_argv = 0;	/* "both": stdin only, documented */
	}

	argv = xcalloc((size_t)h->argc + 2, sizeof(char *));
	for (i = 0; i < h->argc; i++)
		argv[i] = h->argv[i];
	if (use_argv)
		argv[i++] = (char *)(uintptr_t)ev->json;
	argv[i] = NULL;
	envp = build_envp(h, ev, &owned);
	paths = candidates(h->argv[0]);
	groups = xcalloc((size_t)h->ngroups + 1, sizeof(gid_t));
	for (i = 0; i < h->ngroups; i++)
		groups[i] = (gid_t)h->groups[i];

	if (pipe2(pout, O_CLOEXEC) != 0)
		{ e = errno; goto fail0; }
	if (pipe2(perr, O_CLOEXEC) != 0)
		{ e = errno; goto fail1; }
	if (use_stdin ? pipe2(pin, O_CLOEXEC) != 0 :
	    (pin[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		{ e = errno; goto fail2; }

	pid = spawn_child(pin[0], pout[1], perr[1], h, groups, paths, argv,
	    envp, &stage);
	e = errno;
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (pid < 0) {
		close(pout[0]);
		close(perr[0]);
		if (pin[1] >= 0)
			close(pin[1]);
		goto fail_report;
	}

	run = xcalloc(1, sizeof(*run));
	run->h = h;
	run->ev = ev;
	run->tag = tag;
	run->pid = pid;
	run->out.fd = pout[0];
	run->err.fd = perr[0];
	run->in_fd = use_stdin ? pin[1] : -1;
	set_nonblock(run->out.fd);
	set_nonblock(run->err.fd);
	if (run->in_fd >= 0)
		set_nonblock(run->in_fd);
	run->started_at = started;
	run->start_ms = util_mono_ms();
	run->start_mono = start_mono;
	run->deadline_ms = run->start_ms + (long long)(h->timeout * 1000.0);
	run->r = r;
	watch(run);
	run->next = r->runs;
	r->runs = run;
	r->active++;
	free(argv);
	free(envp);
	free(groups);
	free_vec(owned);
	free_vec(paths);
	return 0;

fail2:
	close(perr[0]);
	close(perr[1]);
fail1:
	close(pout[0]);
	close(pout[1]);
fail0:
fail_report:
	if (stage == STAGE_CHDIR)
		report_error(r, h, ev, tag, started, "cannot change directory "
		    "to %s (cwd): %s", h->cwd, strerror(e));
	else if (stage == STAGE_IDENTITY)
		report_error(r, h, ev, tag, started, "cannot switch to the "
		    "handler's user or group: %s", strerror(e));
	else
		report_error(r, h, ev, tag, started, "cannot run %s: %s",
		    h->argv[0], strerror(e));
	free(argv);
	free(envp);
	free(groups);
	free_vec(owned);
	free_vec(paths);
	return -1;
}

/* Read what is there; returns 1 at EOF or error (fd closed). */
static int
drain(struct capture *c)
{
	char tmp[16384];
	ssize_t n;

	for (;;) {
		n = read(c->fd, tmp, sizeof(tmp));
		if (n > 0) {
			size_t room = RUN_OUTPUT_CAP - c->len, take;
			take = (size_t)n < room ? (size_t)n : room;
			if (take > 0) {
				if (c->buf == NULL)
					c->buf = xmalloc(RUN_OUTPUT_CAP + 128);
				memcpy(c->buf + c->len, tmp, take);
				c->len += take;
			}
			c->dropped += (size_t)n - take;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		close(c->fd);
		c->fd = -1;
		return 1;
	}
}

static void
feed_stdin(struct run *x)
{
	while (x->in_off < x->ev->json_len) {
		ssize_t n = write(x->in_fd, x->ev->json + x->in_off,
		    x->ev->json_len - x->in_off);
		if (n > 0) {
			x->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break;		/* EPIPE: the handler closed its stdin */
	}
	close(x->in_fd);
	x->in_fd = -1;
}

static void
on_out(struct loop *l, int mask, void *arg)
{
	struct run *x = arg;

	(void)mask;
	if (drain(&x->out)) {
		loop_del(l, x->out_id);
		x->out_id = -1;
	}
}

static void
on_err(struct loop *l, int mask, void *arg)
{
	struct run *x = arg;

	(void)mask;
	if (drain(&x->err)) {
		loop_del(l, x->err_id);
		x->err_id = -1;
	}
}

static void
on_in(struct loop *l, int mask, void *arg)
{
	struct run *x = arg;

	(void)mask;
	feed_stdin(x);
	if (x->in_fd < 0) {
		loop_del(l, x->in_id);
		x->in_id = -1;
	}
}

/* The run's deadline: SIGTERM to the group, then SIGKILL after
 * RUNNER_KILL_GRACE, then again every second until it is reaped. */
static long
on_deadline(struct loop *l, void *arg)
{
	struct run *x = arg;

	(void)l;
	if (!x->timed_out) {
		x->timed_out = 1;
		log_info("handler %s (%s) for event %s timed out after "
		    "%g s: SIGTERM to process group %ld", x->h->where,
		    x->h->handler, x->ev->id, x->h->timeout, (long)x->pid);
		kill(-x->pid, SIGTERM);
		return (long)(RUNNER_KILL_GRACE * 1000);
	}
	log_info("handler %s still running %g s after SIGTERM: SIGKILL",
	    x->h->where, RUNNER_KILL_GRACE);
	kill(-x->pid, SIGKILL);
	return 1000;	/* repeat until reaped */
}

/* Register x's pipes and deadline with the loop. */
static void
watch(struct run *x)
{
	struct loop *l = x->r->loop;
	long long left = x->deadline_ms - util_mono_ms();

	x->out_id = loop_add_fd(l, x->out.fd, LOOP_READ, on_out, x);
	x->err_id = loop_add_fd(l, x->err.fd, LOOP_READ, on_err, x);
	x->in_id = x->in_fd >= 0 ?
	    loop_add_fd(l, x->in_fd, LOOP_WRITE, on_in, x) : -1;
	x->timer = loop_add_timer(l, left > 0 ? (long)left : 0, on_deadline,
	    x);
}

static void
unwatch(struct run *x)
{
	struct loop *l = x->r->loop;

	loop_del(l, x->out_id);
	loop_del(l, x->err_id);
	loop_del(l, x->in_id);
	loop_del_timer(l, x->timer);
	x->out_id = x->err_id = x->in_id = -1;
	x->timer = 0;
}

static void
finish(struct runner *r, struct run *x)
{
	struct run_result res;
	int st = x->wstatus;

	if (x->out.fd >= 0)
		drain(&x->out);
	if (x->err.fd >= 0)
		drain(&x->err);
	/* A background grandchild may hold the pipes: the run is over anyway. */
	if (x->out.fd >= 0)
		close(x->out.fd);
	if (x->err.fd >= 0)
		close(x->err.fd);
	if (x->in_fd >= 0)
		close(x->in_fd);
	if (x->timed_out)
		kill(-x->pid, SIGKILL);	/* what is left of the group */
	unwatch(x);

	memset(&res, 0, sizeof(res));
	res.event_id = x->ev->id;
	res.driver = match_driver_name(x->h->driver);
	res.handler = x->h->handler;
	res.error = x->kill_reason;
	res.started_at = x->started_at;
	res.duration_ms = (util_mono() - x->start_mono) * 1000.0;
	if (WIFEXITED(st)) {
		res.has_exit_code = 1;
		res.exit_code = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		res.signal = WTERMSIG(st);
	}
	if (x->timed_out)
		res.status = RUN_TIMEOUT;
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		res.status = RUN_OK;
	else
		res.status = RUN_FAILED;
	if (x->out.dropped)
		x->out.len += (size_t)snprintf(x->out.buf + x->out.len, 128,
		    marker_fmt, x->out.dropped);
	if (x->err.dropped)
		x->err.len += (size_t)snprintf(x->err.buf + x->err.len, 128,
		    marker_fmt, x->err.dropped);
	res.out = x->out.buf ? x->out.buf : "";
	res.out_len = x->out.len;
	res.err = x->err.buf ? x->err.buf : "";
	res.err_len = x->err.len;
	r->done(x->tag, &res, r->arg);
	free(x->out.buf);
	free(x->err.buf);
}

int
runner_child_exited(struct runner *r, pid_t pid, int wstatus)
{
	struct run **pp, *x;

	for (pp = &r->runs; (x = *pp) != NULL; pp = &x->next) {
		if (x->pid == pid) {
			*pp = x->next;
			r->active--;
			x->wstatus = wstatus;
			finish(r, x);
			free(x);
			return 1;
		}
	}
	return 0;
}

void
runner_reap(struct runner *r)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		runner_child_exited(r, pid, st);
}

void
runner_kill_all(struct runner *r, const char *why)
{
	for (struct run *x = r->runs; x != NULL; x = x->next) {
		x->timed_out = 1;
		x->kill_reason = why;
		kill(-x->pid, SIGKILL);
		/* SIGKILL again every second until it is reaped */
		loop_del_timer(r->loop, x->timer);
		x->timer = loop_add_timer(r->loop, 1000, on_deadline, x);
	}
}

void
runner_free(struct runner *r)
{
	if (r == NULL)
		return;
	runner_kill_all(r, "killed: event-sub is exiting");
	while (r->runs != NULL) {
		struct run *x = r->runs;
		int st;
		pid_t pid = waitpid(x->pid, &st, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			st = SIGKILL;	/* reaped by someone else: as killed */
		runner_child_exited(r, x->pid, st);
	}
	free(r);
}
