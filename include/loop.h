/*
 * loop: one event loop per daemon, in the manner of Redis's ae.c.
 *
 * Register a file descriptor or a ZeroMQ socket (a struct bus_sock, polled
 * through bus_poll(), so this module does not include zmq.h) with a
 * callback, timers in monotonic milliseconds, and signals.  A signal's
 * handler only sets a flag and writes a byte to a self-pipe the loop
 * polls, so SIGCHLD, SIGTERM or SIGHUP wake a sleeping loop at once; the
 * signal's callback then runs from the loop, never from the handler.
 *
 * One turn (loop_once): the before-sleep hook; a wait in bus_poll() until
 * a registered descriptor or socket is ready, a signal comes, the next
 * timer is due or the hook's cap passes; then the callbacks of the signals
 * that came, of the descriptors and sockets that are ready, and of the
 * timers that are due, in that order.  Level-triggered: a descriptor whose
 * callback leaves data unread is reported again on the next turn.
 *
 * Single-threaded: every call from the thread that runs the loop.  Any
 * callback may add or delete any registration, its own included.
 */
#ifndef ER_LOOP_H
#define ER_LOOP_H

struct loop;
struct bus_sock;

#define LOOP_READ 1		/* readable (BUS_POLLIN) */
#define LOOP_WRITE 2		/* writable (BUS_POLLOUT) */
#define LOOP_NOMORE (-1)	/* a timer callback's "do not fire again" */

/* Called with the mask of what is ready (LOOP_READ and/or LOOP_WRITE). */
typedef void (*loop_io_fn)(struct loop *l, int mask, void *arg);
/*
 * A timer callback returns how many ms from now it fires again (0: on the
 * next turn), or LOOP_NOMORE, after which its id is no longer valid.
 */
typedef long (*loop_timer_fn)(struct loop *l, void *arg);
typedef void (*loop_signal_fn)(struct loop *l, int sig, void *arg);
/* Runs before each wait; returns the longest the loop may sleep (ms),
 * -1 for no limit of its own. */
typedef long (*loop_before_fn)(struct loop *l, void *arg);

/* A new loop; NULL when the self-pipe cannot be made (errno set). */
struct loop *loop_new(void);
/*
 * Free l: its registrations are dropped (their args are the callers'),
 * and the signals it took get back the action they had before
 * loop_signal().  NULL: no-op.
 */
void loop_free(struct loop *l);

/*
 * Watch fd (not owned: the caller closes it, after loop_del()) for mask
 * (LOOP_READ, LOOP_WRITE or both).  Returns an id >= 0 for loop_del(); ids
 * of deleted registrations are reused.
 */
int loop_add_fd(struct loop *l, int fd, int mask, loop_io_fn fn, void *arg);
/* Watch a ZeroMQ socket (not owned) for mask, as loop_add_fd(). */
int loop_add_sock(struct loop *l, struct bus_sock *s, int mask, loop_io_fn fn,
    void *arg);
/* Stop watching: id is invalid afterwards.  -1 (none) is a no-op. */
void loop_del(struct loop *l, int id);

/*
 * Call fn in ms milliseconds (monotonic clock; 0: on the next turn), then
 * again as long as it returns a delay.  Timers due in the same turn fire
 * in the order of their due times, ties in the order they were added.
 * Returns an id > 0 for loop_del_timer().
 */
long long loop_add_timer(struct loop *l, long ms, loop_timer_fn fn, void *arg);
/* Cancel a timer (0, or one that has ended: no-op). */
void loop_del_timer(struct loop *l, long long id);

/*
 * Deliver sig (SIGCHLD, SIGTERM, SIGHUP...) to fn from the loop, once per
 * turn however many came: installs a handler (without SA_RESTART) that
 * only records it and wakes the loop.  Signals are process-wide: one loop
 * at a time takes each.  Returns 0, or -1 with errno (sigaction).
 */
int loop_signal(struct loop *l, int sig, loop_signal_fn fn, void *arg);
/*
 * 1 when sig, taken by l, came and its callback has not run yet, else 0:
 * for a callback that waits in a loop of its own (a publish held back by a
 * full subscriber), so that a stop ends that wait at once.
 */
int loop_signal_pending(const struct loop *l, int sig);

/* The before-sleep hook (ae's beforesleep); NULL removes it. */
void loop_set_before(struct loop *l, loop_before_fn fn, void *arg);

/*
 * One turn, sleeping at most max_ms (-1: until something happens).
 * Returns how many callbacks ran (timers, descriptors, signals), or -1
 * with errno when polling failed for another reason than EINTR.
 */
int loop_once(struct loop *l, long max_ms);
/* Turn until loop_stop() or a polling error: returns 0, or -1 (errno). */
int loop_run(struct loop *l);
/* Make loop_run() return after this turn (the hook's, when called there,
 * before any wait); loop_run() takes the stop, so that later turns wait
 * again. */
void loop_stop(struct loop *l);

#endif
