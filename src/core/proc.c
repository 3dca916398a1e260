/*
 * proc: supervising children from the owner's event loop, and capping
 * what they write.  Starting one is proc_start.c.  See proc.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "proc.h"
#include "proc_tree.h"
#include "util.h"

/* Milliseconds between repeated SIGKILLs of a child not reaped yet. */
#define PROC_REKILL_MS 1000

static const char marker_fmt[] =
    "\n[event-reactor: output truncated, %zu bytes dropped]\n";

void
proc_capture_add(struct proc_capture *c, const void *data, size_t n)
{
	size_t room = c->cap - c->len, take = n < room ? n : room;

	if (n == 0)
		return;
	if (c->buf == NULL)
		c->buf = xmalloc(c->cap + PROC_MARKER_MAX);
	memcpy(c->buf + c->len, data, take);
	c->len += take;
	c->dropped += n - take;
}

void
proc_capture_end(struct proc_capture *c)
{
	if (c->dropped)
		c->len += (size_t)snprintf(c->buf + c->len, PROC_MARKER_MAX,
		    marker_fmt, c->dropped);
}

/* One of a child's output pipes. */
struct stream {
	int fd;			/* -1 once closed */
	int id;			/* loop registration, -1: none */
	struct proc_capture cap;
};

struct proc {
	struct proc *next;
	struct procs *ps;
	pid_t pid;
	struct stream out, err;
	int in_fd, in_id;	/* stdin: -1 when done / none */
	const char *in_data;
	size_t in_len, in_off;
	long long timer;	/* the deadline's, 0: none */
	long grace_ms;
	int expired;
	proc_signal_fn on_signal;
	proc_exit_fn on_exit;
	void *arg;
};

struct procs {
	struct loop *loop;
	struct proc *list;
	int n;
};

struct procs *
procs_new(struct loop *l)
{
	struct procs *ps = xcalloc(1, sizeof(*ps));

	ps->loop = l;
	return ps;
}

int
procs_count(const struct procs *ps)
{
	return ps->n;
}

pid_t
proc_pid(const struct proc *p)
{
	return p->pid;
}

void
procs_each(struct procs *ps, void (*fn)(struct proc *p, void *arg),
    void *arg)
{
	struct proc *p, *next;

	for (p = ps->list; p != NULL; p = next) {
		next = p->next;
		fn(p, arg);
	}
}

int
procs_has(const struct procs *ps, pid_t pid)
{
	for (const struct proc *p = ps->list; p != NULL; p = p->next)
		if (p->pid == pid)
			return 1;
	return 0;
}

void *
proc_arg(const struct proc *p)
{
	return p->arg;
}

static void
set_nonblock(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Read what is there; returns 1 at EOF or error (fd closed). */
static int
drain(struct stream *s)
{
	char tmp[16384];
	ssize_t n;

	for (;;) {
		n = read(s->fd, tmp, sizeof(tmp));
		if (n > 0) {
			proc_capture_add(&s->cap, tmp, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		close(s->fd);
		s->fd = -1;
		return 1;
	}
}

static void
on_read(struct loop *l, int mask, void *arg)
{
	struct stream *s = arg;

	(void)mask;
	if (drain(s)) {
		loop_del(l, s->id);
		s->id = -1;
	}
}

/* Write what stdin takes now; at the end (or EPIPE) close it. */
static void
on_write(struct loop *l, int mask, void *arg)
{
	struct proc *p = arg;
	ssize_t n;

	(void)mask;
	while (p->in_off < p->in_len) {
		n = write(p->in_fd, p->in_data + p->in_off,
		    p->in_len - p->in_off);
		if (n > 0) {
			p->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		break;		/* EPIPE: the child closed its stdin */
	}
	loop_del(l, p->in_id);
	p->in_id = -1;
	close(p->in_fd);
	p->in_fd = -1;
}

/*
 * SIGKILL p's process group, p itself and every descendant of p that
 * /proc lists: those that left the group (setsid, setpgid) while their
 * parent lives are not in the group, and p may have left it too.
 */
static void
kill_tree(struct proc *p)
{
	struct proc_tree t;
	pid_t *d = NULL;
	size_t n = 0;

	/* the tree before the kill: once p is dead its children are not
	 * its descendants any more */
	if (proc_tree_read(&t, "/proc") == 0)
		d = proc_tree_descendants(&t, p->pid, &n);
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	for (size_t i = 0; i < n; i++)
		kill(d[i], SIGKILL);
	free(d);
	proc_tree_clear(&t);
}

/* The deadline: SIGTERM to the group, then SIGKILL (kill_tree()) after the
 * grace, then again every PROC_REKILL_MS until it is reaped. */
static long
on_deadline(struct loop *l, void *arg)
{
	struct proc *p = arg;
	long long self = p->timer;
	int sig = p->expired || p->grace_ms <= 0 ? SIGKILL : SIGTERM;

	(void)l;
	if (p->on_signal != NULL && !p->on_signal(p, sig, p->arg)) {
		if (p->timer == self)
			p->timer = 0;
		return LOOP_NOMORE;
	}
	p->expired = 1;
	if (sig == SIGTERM)
		kill(-p->pid, sig);
	else
		kill_tree(p);
	return sig == SIGTERM ? p->grace_ms : PROC_REKILL_MS;
}

void
proc_set_deadline(struct proc *p, long long due_ms)
{
	long long left = due_ms - util_mono_ms();

	loop_del_timer(p->ps->loop, p->timer);
	p->timer = due_ms < 0 ? 0 : loop_add_timer(p->ps->loop,
	    left > 0 ? (long)left : 0, on_deadline, p);
}

void
proc_kill(struct proc *p)
{
	p->expired = 1;
	kill_tree(p);
	loop_del_timer(p->ps->loop, p->timer);
	p->timer = loop_add_timer(p->ps->loop, PROC_REKILL_MS, on_deadline, p);
}

/* Register p's pipes and deadline with the loop. */
static void
watch(struct proc *p, long timeout_ms)
{
	struct loop *l = p->ps->loop;

	p->out.id = p->out.fd >= 0 ?
	    loop_add_fd(l, p->out.fd, LOOP_READ, on_read, &p->out) : -1;
	p->err.id = p->err.fd >= 0 ?
	    loop_add_fd(l, p->err.fd, LOOP_READ, on_read, &p->err) : -1;
	p->in_id = p->in_fd >= 0 ?
	    loop_add_fd(l, p->in_fd, LOOP_WRITE, on_write, p) : -1;
	p->timer = timeout_ms > 0 ?
	    loop_add_timer(l, timeout_ms, on_deadline, p) : 0;
}

struct proc *
proc_spawn(struct procs *ps, const struct proc_spec *sp,
    enum proc_stage *stage)
{
	struct proc_pipes pp;
	struct proc *p;
	pid_t pid = proc_start(sp, &pp, stage);

	if (pid < 0)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->ps = ps;
	p->pid = pid;
	p->out.fd = pp.out;
	p->err.fd = pp.err;
	p->in_fd = pp.in;
	p->out.cap.cap = p->err.cap.cap = sp->cap;
	p->in_data = sp->in_data;
	p->in_len = sp->in_data != NULL ? sp->in_len : 0;
	p->grace_ms = sp->grace_ms;
	p->on_signal = sp->on_signal;
	p->on_exit = sp->on_exit;
	p->arg = sp->arg;
	set_nonblock(p->out.fd);
	set_nonblock(p->err.fd);
	set_nonblock(p->in_fd);
	watch(p, sp->timeout_ms);
	p->next = ps->list;
	ps->list = p;
	ps->n++;
	return p;
}

static void
close_stream(struct loop *l, struct stream *s)
{
	loop_del(l, s->id);
	s->id = -1;
	if (s->fd >= 0) {
		drain(s);
		/* a background grandchild may hold the pipe: over anyway */
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
	}
	proc_capture_end(&s->cap);
}

/* p was reaped with status st: what is left of it, then its report. */
static void
finish(struct proc *p, int st)
{
	struct loop *l = p->ps->loop;
	struct proc_exit x;

	close_stream(l, &p->out);
	close_stream(l, &p->err);
	loop_del(l, p->in_id);
	if (p->in_fd >= 0)
		close(p->in_fd);
	loop_del_timer(l, p->timer);
	if (p->expired)
		kill(-p->pid, SIGKILL);	/* what is left of the group */
	memset(&x, 0, sizeof(x));
	x.pid = p->pid;
	x.wstatus = st;
	x.expired = p->expired;
	x.out = p->out.cap.buf != NULL ? p->out.cap.buf : "";
	x.out_len = p->out.cap.len;
	x.err = p->err.cap.buf != NULL ? p->err.cap.buf : "";
	x.err_len = p->err.cap.len;
	p->on_exit(&x, p->arg);
	free(p->out.cap.buf);
	free(p->err.cap.buf);
	free(p);
}

int
procs_reaped(struct procs *ps, pid_t pid, int st)
{
	struct proc **pp, *p;

	for (pp = &ps->list; (p = *pp) != NULL; pp = &p->next) {
		if (p->pid == pid) {
			*pp = p->next;
			ps->n--;
			finish(p, st);
			return 1;
		}
	}
	return 0;
}

void
procs_reap(struct procs *ps)
{
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		procs_reaped(ps, pid, st);
}

void
procs_free(struct procs *ps)
{
	if (ps == NULL)
		return;
	for (struct proc *p = ps->list; p != NULL; p = p->next)
		proc_kill(p);
	while (ps->list != NULL) {
		pid_t pid = ps->list->pid;
		procs_reaped(ps, pid, proc_wait(pid));
	}
	free(ps);
}
