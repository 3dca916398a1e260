/*
 * Unit tests of the event loop: timers, descriptors, ZeroMQ sockets,
 * signals and deletion from callbacks.  Every wait that could hang is
 * loop_once(l, -1): alarm() kills the program after WATCHDOG_S seconds,
 * which run-tests counts as a failure (no summary line).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"
#include "loop.h"
#include "unit.h"

#define WATCHDOG_S 20

static char order[32];
static int norder;

struct tm_arg {
	char name;
	int repeat;		/* times to fire again */
	long every;
};

static long
on_timer(struct loop *l, void *arg)
{
	struct tm_arg *a = arg;

	(void)l;
	order[norder++] = a->name;
	if (a->repeat-- > 0)
		return a->every;
	return LOOP_NOMORE;
}

static void
test_timers(void)
{
	struct loop *l = loop_new();
	struct tm_arg a = { 'a', 0, 0 }, b = { 'b', 0, 0 }, c = { 'c', 0, 0 },
	    d = { 'd', 0, 0 }, r = { 'r', 2, 1 };

	long long later;

	/* a timer not due does not fire */
	norder = 0;
	later = loop_add_timer(l, 10000, on_timer, &a);
	CHECK(loop_once(l, 0) == 0);
	CHECK(norder == 0);
	loop_del_timer(l, later);

	loop_add_timer(l, 30, on_timer, &a);
	loop_add_timer(l, 10, on_timer, &b);
	loop_add_timer(l, 20, on_timer, &c);
	loop_add_timer(l, 10, on_timer, &d);	/* same time as b: after it */
	while (norder < 4)
		loop_once(l, -1);
	order[norder] = '\0';
	CHECK_STR(order, "bdca");

	/* a recurring timer fires until it says LOOP_NOMORE */
	norder = 0;
	loop_add_timer(l, 0, on_timer, &r);
	while (norder < 3)
		loop_once(l, -1);
	CHECK(r.repeat == -1);
	CHECK(loop_once(l, 0) == 0);	/* nothing left */
	CHECK(norder == 3);
	loop_free(l);
}

/* Timer x deletes timer y, both due in the same turn: y never fires. */
static long long victim;

static long
on_killer(struct loop *l, void *arg)
{
	(void)arg;
	order[norder++] = 'k';
	loop_del_timer(l, victim);
	return LOOP_NOMORE;
}

static void
test_timer_del(void)
{
	struct loop *l = loop_new();
	struct tm_arg v = { 'v', 0, 0 }, w = { 'w', 0, 0 };
	long long id;

	norder = 0;
	loop_add_timer(l, 5, on_killer, NULL);
	victim = loop_add_timer(l, 5, on_timer, &v);
	loop_add_timer(l, 5, on_timer, &w);
	while (norder < 2)
		loop_once(l, -1);
	order[norder] = '\0';
	CHECK_STR(order, "kw");

	/* cancelled before it is due */
	norder = 0;
	id = loop_add_timer(l, 0, on_timer, &v);
	loop_del_timer(l, id);
	loop_del_timer(l, id);		/* twice: no-op */
	CHECK(loop_once(l, 0) == 0);
	CHECK(norder == 0);
	loop_free(l);
}

struct io {
	struct loop *l;
	int fd;
	int id;
	int calls;
	int mask;
	struct io *del;		/* deleted by this one's callback */
	int del_self;
};

static void
on_io(struct loop *l, int mask, void *arg)
{
	struct io *x = arg;
	char buf[16];

	x->calls++;
	x->mask = mask;
	if (mask & LOOP_READ)
		(void)!read(x->fd, buf, sizeof(buf));
	if (x->del != NULL) {
		loop_del(l, x->del->id);
		x->del->id = -1;
	}
	if (x->del_self) {
		loop_del(l, x->id);
		x->id = -1;
	}
}

static void
test_fds(void)
{
	struct loop *l = loop_new();
	struct io x[4];
	int p[4][2];

	memset(x, 0, sizeof(x));
	for (int i = 0; i < 4; i++) {
		if (pipe(p[i]) != 0)
			abort();
		x[i].fd = p[i][0];
		x[i].id = loop_add_fd(l, p[i][0], LOOP_READ, on_io, &x[i]);
	}
	/* only pipe 2 has data: only its callback runs */
	(void)!write(p[2][1], "x", 1);
	CHECK(loop_once(l, -1) == 1);
	CHECK(x[2].calls == 1 && x[2].mask == LOOP_READ);
	CHECK(x[0].calls == 0 && x[1].calls == 0 && x[3].calls == 0);

	/* every pipe ready; 0 deletes itself and 3, 1 deletes 2 */
	x[0].del_self = 1;
	x[0].del = &x[3];
	x[1].del = &x[2];
	for (int i = 0; i < 4; i++)
		(void)!write(p[i][1], "x", 1);
	x[2].calls = 0;
	loop_once(l, -1);
	CHECK(x[0].calls + x[1].calls == 2);
	CHECK(x[0].id == -1 && x[2].id == -1 && x[3].id == -1);
	/* 2 and 3 ran at most before their deletion, never after */
	x[1].del = NULL;
	x[2].calls = x[3].calls = 0;
	loop_once(l, 0);	/* 2 and 3 still readable, not watched */
	CHECK(x[2].calls == 0 && x[3].calls == 0);
	CHECK(x[1].calls == 1);		/* drained: not called again */

	/* writable, and an id reused after deletion */
	x[0].del_self = 0;
	x[0].del = NULL;
	x[0].calls = 0;
	x[0].fd = p[0][1];
	x[0].id = loop_add_fd(l, p[0][1], LOOP_WRITE, on_io, &x[0]);
	CHECK(x[0].id >= 0);
	loop_once(l, -1);
	CHECK(x[0].calls == 1 && (x[0].mask & LOOP_WRITE));
	loop_del(l, x[0].id);
	loop_del(l, -1);		/* no-op */
	loop_free(l);
	for (int i = 0; i < 4; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

static struct bus_sock *sock_rx;

static void
on_rx(struct loop *l, int mask, void *arg)
{
	struct bus_msg m;
	int *got = arg;

	(void)l;
	(void)mask;
	while (bus_recv(sock_rx, &m, 1) == 0) {
		if (m.len == 5 && memcmp(m.data, "hello", 5) == 0)
			(*got)++;
		bus_msg_close(&m);
	}
}

static void
test_sock(void)
{
	struct loop *l = loop_new();
	struct bus *b = bus_new();
	struct bus_sock *tx;
	char err[256];
	int got = 0;

	sock_rx = bus_socket(b, BUS_PAIR, 0, err, sizeof(err));
	tx = bus_socket(b, BUS_PAIR, 0, err, sizeof(err));
	CHECK(sock_rx != NULL && tx != NULL);
	CHECK(bus_bind(sock_rx, "inproc://test-loop", NULL, 0, err,
	    sizeof(err)) == 0);
	CHECK(bus_connect(tx, "inproc://test-loop", err, sizeof(err)) == 0);
	loop_add_sock(l, sock_rx, LOOP_READ, on_rx, &got);
	CHECK(bus_send(tx, "hello", 5, 0, 0) == 0);
	while (got == 0)
		loop_once(l, -1);
	CHECK(got == 1);
	loop_free(l);
	bus_close(tx);
	bus_close(sock_rx);
	bus_free(b);
}

static int reaped, reaped_status = -1, hups;

static void
on_chld(struct loop *l, int sig, void *arg)
{
	int st;

	(void)l;
	(void)arg;
	CHECK(sig == SIGCHLD);
	while (waitpid(-1, &st, WNOHANG) > 0) {
		reaped++;
		reaped_status = WEXITSTATUS(st);
	}
}

static void
on_hup(struct loop *l, int sig, void *arg)
{
	(void)sig;
	(void)arg;
	hups++;
	loop_stop(l);
}

/*
 * A child's exit wakes a loop that waits with no timeout: whether SIGCHLD
 * comes before the wait (the child exits at once) or during it (the child
 * sleeps first), loop_once(l, -1) returns with the child reaped.
 */
static void
test_signals(void)
{
	struct sigaction old;	/* SIGHUP's action before: nohup(1) ignores it */
	struct loop *l;

	sigaction(SIGHUP, NULL, &old);
	l = loop_new();

	CHECK(loop_signal(l, SIGCHLD, on_chld, NULL) == 0);
	CHECK(loop_signal(l, SIGHUP, on_hup, NULL) == 0);
	for (int delay_ms = 0; delay_ms <= 100; delay_ms += 100) {
		pid_t pid;
		reaped = 0;
		pid = fork();
		if (pid == 0) {
			if (delay_ms > 0)
				usleep((useconds_t)delay_ms * 1000);
			_exit(7);
		}
		CHECK(pid > 0);
		while (reaped == 0)
			loop_once(l, -1);
		CHECK(reaped == 1 && reaped_status == 7);
	}

	/* a signal that came is pending until the loop runs its callback */
	CHECK(loop_signal_pending(l, SIGHUP) == 0);
	raise(SIGHUP);
	CHECK(loop_signal_pending(l, SIGHUP) == 1);
	CHECK(loop_signal_pending(l, SIGTERM) == 0);	/* not taken */
	CHECK(loop_once(l, -1) == 1);
	CHECK(hups == 1);
	CHECK(loop_signal_pending(l, SIGHUP) == 0);
	hups = 0;

	/* SIGHUP from another process; its callback stops loop_run() */
	if (fork() == 0) {
		usleep(50 * 1000);
		kill(getppid(), SIGHUP);
		_exit(0);
	}
	CHECK(loop_run(l) == 0);
	CHECK(hups == 1);
	while (reaped == 1)
		loop_once(l, -1);	/* waits again: the sender's exit */
	CHECK(reaped == 2);
	loop_free(l);
	/* the signals have their old action back */
	{
		struct sigaction sa;
		sigaction(SIGHUP, NULL, &sa);
		CHECK(sa.sa_handler == old.sa_handler);
	}
}

static long
before_cap(struct loop *l, void *arg)
{
	int *n = arg;

	if (++*n == 3)
		loop_stop(l);
	return 0;	/* do not sleep */
}

static void
test_before(void)
{
	struct loop *l = loop_new();
	int n = 0;

	loop_set_before(l, before_cap, &n);
	CHECK(loop_run(l) == 0);	/* would block forever without the cap */
	CHECK(n == 3);
	/* the stop was taken: the next turn runs what is due */
	{
		struct tm_arg t = { 't', 0, 0 };
		loop_set_before(l, NULL, NULL);
		loop_add_timer(l, 0, on_timer, &t);
		CHECK(loop_once(l, -1) == 1);
	}
	loop_free(l);
	loop_free(NULL);
}

int
main(void)
{
	log_init("test_loop", LOG_LVL_ERROR);
	alarm(WATCHDOG_S);
	test_timers();
	test_timer_del();
	test_fds();
	test_sock();
	test_signals();
	test_before();
	UNIT_END("test_loop");
}
