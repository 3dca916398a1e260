/*
 * loop: the event loop.  See include/loop.h.
 *
 * The descriptors and sockets watched are kept in one dense array of poll
 * items, handed to bus_poll() as it is: adding appends, deleting moves the
 * last item into the hole, so nothing is rebuilt per turn.  Item 0 is the
 * self-pipe's read end.  Ids index a table of slots that says where each
 * registration's item is.  Timers are a list sorted by due time.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "loop.h"
#include "util.h"

struct slot {
	int at;			/* index in items, -1: free */
	int next_free;
	loop_io_fn fn;
	void *arg;
};

struct timer {
	struct timer *next;
	long long id, when;
	int dead;		/* deleted while due or firing */
	loop_timer_fn fn;
	void *arg;
};

struct sig {
	loop_signal_fn fn;
	void *arg;
	struct sigaction old;
};

struct loop {
	struct bus_pollitem *items;
	int *owner;		/* items[i] belongs to slot owner[i] */
	int n, cap;
	struct slot *slots;
	int nslots, free_slot;
	struct timer *timers;	/* sorted by when, then id */
	struct timer *due;	/* taken from timers, firing this turn */
	long long next_timer;
	int pipe[2];
	struct sig sigs[NSIG];
	loop_before_fn before;
	void *before_arg;
	int stop;
};

/* Written by the signal handler: which signals came, and where to wake. */
static volatile sig_atomic_t sig_pending[NSIG];
static volatile sig_atomic_t sig_wfd = -1;

static void
on_signal(int sig)
{
	int e = errno;
	unsigned char c = (unsigned char)sig;
	ssize_t w;

	sig_pending[sig] = 1;
	if (sig_wfd >= 0)
		w = write(sig_wfd, &c, 1);	/* full pipe: awake already */
	(void)w;
	errno = e;
}

struct loop *
loop_new(void)
{
	struct loop *l;
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->pipe[0] = p[0];
	l->pipe[1] = p[1];
	l->cap = 16;
	l->items = xcalloc((size_t)l->cap, sizeof(*l->items));
	l->owner = xcalloc((size_t)l->cap, sizeof(*l->owner));
	l->items[0] = (struct bus_pollitem){ NULL, p[0], BUS_POLLIN, 0 };
	l->owner[0] = -1;
	l->n = 1;
	l->free_slot = -1;
	l->next_timer = 1;
	return l;
}

static void
free_timers(struct timer *t)
{
	while (t != NULL) {
		struct timer *next = t->next;
		free(t);
		t = next;
	}
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	for (int sig = 1; sig < NSIG; sig++)
		if (l->sigs[sig].fn != NULL)
			sigaction(sig, &l->sigs[sig].old, NULL);
	if (sig_wfd == l->pipe[1])
		sig_wfd = -1;
	close(l->pipe[0]);
	close(l->pipe[1]);
	free_timers(l->timers);
	free_timers(l->due);
	free(l->items);
	free(l->owner);
	free(l->slots);
	free(l);
}

static int
add_item(struct loop *l, struct bus_sock *s, int fd, int mask, loop_io_fn fn,
    void *arg)
{
	int id;

	if (l->free_slot >= 0) {
		id = l->free_slot;
		l->free_slot = l->slots[id].next_free;
	} else {
		id = l->nslots++;
		l->slots = xrealloc(l->slots, (size_t)l->nslots *
		    sizeof(*l->slots));
	}
	if (l->n == l->cap) {
		l->cap *= 2;
		l->items = xrealloc(l->items, (size_t)l->cap *
		    sizeof(*l->items));
		l->owner = xrealloc(l->owner, (size_t)l->cap *
		    sizeof(*l->owner));
	}
	l->items[l->n] = (struct bus_pollitem){ s, s != NULL ? -1 : fd,
	    (short)(((mask & LOOP_READ) ? BUS_POLLIN : 0) |
	    ((mask & LOOP_WRITE) ? BUS_POLLOUT : 0)), 0 };
	l->owner[l->n] = id;
	l->slots[id] = (struct slot){ l->n, -1, fn, arg };
	l->n++;
	return id;
}

int
loop_add_fd(struct loop *l, int fd, int mask, loop_io_fn fn, void *arg)
{
	return add_item(l, NULL, fd, mask, fn, arg);
}

int
loop_add_sock(struct loop *l, struct bus_sock *s, int mask, loop_io_fn fn,
    void *arg)
{
	return add_item(l, s, -1, mask, fn, arg);
}

void
loop_del(struct loop *l, int id)
{
	int at, last;

	if (id < 0 || id >= l->nslots || l->slots[id].at < 0)
		return;
	at = l->slots[id].at;
	last = --l->n;
	if (at != last) {
		/* the item moved keeps its revents: it is dispatched at its
		 * new place, or on the next turn when that place is behind */
		l->items[at] = l->items[last];
		l->owner[at] = l->owner[last];
		l->slots[l->owner[at]].at = at;
	}
	l->slots[id].at = -1;
	l->slots[id].fn = NULL;
	l->slots[id].next_free = l->free_slot;
	l->free_slot = id;
}

static void
insert_timer(struct loop *l, struct timer *t)
{
	struct timer **pp = &l->timers;

	while (*pp != NULL && ((*pp)->when < t->when ||
	    ((*pp)->when == t->when && (*pp)->id < t->id)))
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
}

long long
loop_add_timer(struct loop *l, long ms, loop_timer_fn fn, void *arg)
{
	struct timer *t = xcalloc(1, sizeof(*t));

	t->id = l->next_timer++;
	t->when = util_mono_ms() + (ms > 0 ? ms : 0);
	t->fn = fn;
	t->arg = arg;
	insert_timer(l, t);
	return t->id;
}

void
loop_del_timer(struct loop *l, long long id)
{
	struct timer **pp, *t;

	for (pp = &l->timers; (t = *pp) != NULL; pp = &t->next) {
		if (t->id == id) {
			*pp = t->next;
			free(t);
			return;
		}
	}
	/* due this turn, or firing now: freed once the turn gets to it */
	for (t = l->due; t != NULL; t = t->next)
		if (t->id == id)
			t->dead = 1;
}

int
loop_signal(struct loop *l, int sig, loop_signal_fn fn, void *arg)
{
	struct sigaction sa, old;

	if (sig <= 0 || sig >= NSIG || fn == NULL) {
		errno = EINVAL;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll returns */
	sig_wfd = l->pipe[1];
	if (sigaction(sig, &sa, &old) != 0)
		return -1;
	if (l->sigs[sig].fn == NULL)
		l->sigs[sig].old = old;
	l->sigs[sig].fn = fn;
	l->sigs[sig].arg = arg;
	return 0;
}

int
loop_signal_pending(const struct loop *l, int sig)
{
	return sig > 0 && sig < NSIG && l->sigs[sig].fn != NULL &&
	    sig_pending[sig];
}

void
loop_set_before(struct loop *l, loop_before_fn fn, void *arg)
{
	l->before = fn;
	l->before_arg = arg;
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
}

static int
run_signals(struct loop *l)
{
	unsigned char buf[64];
	int ran = 0;

	while (read(l->pipe[0], buf, sizeof(buf)) > 0)
		;
	for (int sig = 1; sig < NSIG; sig++) {
		if (!sig_pending[sig] || l->sigs[sig].fn == NULL)
			continue;
		sig_pending[sig] = 0;
		l->sigs[sig].fn(l, sig, l->sigs[sig].arg);
		ran++;
	}
	return ran;
}

static int
run_io(struct loop *l)
{
	int ran = 0;

	/* l->n shrinks and grows under the callbacks; new items have no
	 * revents, and each item's revents are cleared once dispatched */
	for (int i = 1; i < l->n; i++) {
		struct slot *s;
		int mask = l->items[i].revents;
		if (mask == 0)
			continue;
		l->items[i].revents = 0;
		s = &l->slots[l->owner[i]];
		s->fn(l, ((mask & BUS_POLLIN) ? LOOP_READ : 0) |
		    ((mask & BUS_POLLOUT) ? LOOP_WRITE : 0), s->arg);
		ran++;
	}
	return ran;
}

static int
run_timers(struct loop *l)
{
	long long now = util_mono_ms();
	struct timer **pp = &l->timers, *t, *rest;
	int ran = 0;

	/* take the due ones first: one that asks for 0 ms waits a turn */
	while (*pp != NULL && (*pp)->when <= now)
		pp = &(*pp)->next;
	rest = *pp;
	*pp = NULL;
	l->due = l->timers;
	l->timers = rest;
	while ((t = l->due) != NULL) {
		long next = LOOP_NOMORE;
		if (!t->dead) {
			next = t->fn(l, t->arg);
			ran++;
		}
		l->due = t->next;
		if (next < 0 || t->dead) {
			free(t);
			continue;
		}
		t->when = util_mono_ms() + next;
		insert_timer(l, t);
	}
	return ran;
}

int
loop_once(struct loop *l, long max_ms)
{
	long wait = max_ms, cap;
	int ran;

	if (l->before != NULL) {
		cap = l->before(l, l->before_arg);
		if (cap >= 0 && (wait < 0 || cap < wait))
			wait = cap;
	}
	if (l->stop)
		return 0;
	if (l->timers != NULL) {
		long long left = l->timers->when - util_mono_ms();
		if (left < 0)
			left = 0;
		if (wait < 0 || left < wait)
			wait = (long)left;
	}
	for (int sig = 1; sig < NSIG; sig++)
		if (sig_pending[sig] && l->sigs[sig].fn != NULL)
			wait = 0;	/* came before the pipe was ours */
	if (bus_poll(l->items, l->n, wait) < 0 && errno != EINTR)
		return -1;
	ran = run_signals(l);
	ran += run_io(l);
	ran += run_timers(l);
	return ran;
}

int
loop_run(struct loop *l)
{
	int rc = 0;

	l->stop = 0;
	while (!l->stop)
		if ((rc = loop_once(l, -1)) < 0)
			break;
	l->stop = 0;	/* taken: a later loop_once() waits again */
	return rc < 0 ? -1 : 0;
}
