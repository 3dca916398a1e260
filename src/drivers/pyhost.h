/*
 * pyhost: event-sub's pool of Python workers (pyworker.h), each a process
 * started by exec of event-sub itself with --python-worker.  A worker runs
 * one call at a time; more may wait in it behind the running one
 * (pipelining, below).  The call's deadline (the handler's timeout) is
 * enforced by SIGKILL to the worker, which is then replaced, as is any
 * worker that dies (os._exit, a crash) or whose resident set is over
 * max_rss_mb after its calls, so a leaking handler cannot take the machine
 * down.  A call that was waiting in a worker that dies, or behind a call
 * that runs too long, runs on another worker: each call runs at most once
 * (pyproto.h, the call slots).  Results come back as a struct run_result
 * (run.h, driver "pyfunc"), so event-sub records them like shell runs.
 *
 * Pipelining: calls are sent in batches, one write per worker per loop
 * turn, and results come back through shared memory without a system
 * call, a wake-up being asked for when half of a worker's calls are done.
 * How many calls may wait behind a running one is bounded three ways:
 * by the worker's recent call time (as many as run in half of
 * PYHOST_PIPELINE_MS, none when calls take longer than that; one while
 * that is unknown), by PYHOST_PIPELINE_MAX and by PYHOST_PIPELINE_BYTES
 * of events.  None are queued behind a call that has run
 * PYHOST_PIPELINE_MS, and once the running call reaches it the calls
 * waiting behind it are taken back and go to other workers.
 */
#ifndef ER_PYHOST_H
#define ER_PYHOST_H

#include <sys/types.h>

#include "driver.h"
#include "event.h"
#include "log.h"
#include "match.h"

/* Calls wait behind a worker's running call only while it has run less
 * than this (ms); then they are taken back (see above). */
#define PYHOST_PIPELINE_MS 20
/* Calls that may wait behind a running one, at most (< PYSHM_SLOTS). */
#define PYHOST_PIPELINE_MAX 64
/* Bytes of 'C' frames a worker may have in flight (a call to a worker
 * with none may be larger): what a socket buffer holds, so that sending
 * them never waits for the worker. */
#define PYHOST_PIPELINE_BYTES (64 * 1024)
/* Handlers' lines (print, logging) that reach event-sub's log, at most,
 * in each PYHOST_LOG_INTERVAL s; one line counts the others, which each
 * run keeps in its stdout and stderr: a handler that prints on every event
 * cannot flood the log or fill its disk (journald's own default is 10000
 * in 30 s for a whole service). */
#define PYHOST_LOG_BURST 1000
#define PYHOST_LOG_INTERVAL 10
/* How long a new worker may take to start Python and say hello (ms). */
#define PYHOST_START_TIMEOUT_MS 10000

struct pyhost;

struct loop;

/*
 * A pool of nworkers (>= 1) workers for handlers_dir.  exe: the binary to
 * exec ("/proc/self/exe" in event-sub).  Results go to done(tag, r, arg)
 * (driver "pyfunc").  Workers start lazily, when the first pyfunc run
 * comes.  Each worker's socket is registered with l (not owned; it must
 * outlive the pool), so that what a worker sends wakes the loop.  The
 * table's entry (driver.h) is driver_pyfunc: these functions, with
 * subscriber.python_workers and python_max_rss_mb.
 */
struct pyhost *pyhost_new(struct loop *l, const char *exe,
    const char *handlers_dir, int nworkers, long max_rss_mb,
    enum log_level level, run_done_fn done, void *arg);
void pyhost_free(struct pyhost *p);	/* kills and reaps the workers */

/* Workers that could take a call now (started or startable). */
int pyhost_idle(const struct pyhost *p);
/* Calls in progress. */
int pyhost_active(const struct pyhost *p);

/*
 * Start h (driver pyfunc) for ev, as runner_start(); check pyhost_idle()
 * first.  The call is sent by pyhost_flush() (or waits in the pool when
 * no worker has room for its size).  Returns -1 when it was reported as
 * an error already (no worker could be started).
 */
int pyhost_start(struct pyhost *p, const struct handler *h,
    const struct event *ev, void *tag);
/* Send the calls pyhost_start() gave the workers: after a round of
 * starts, before polling. */
void pyhost_flush(struct pyhost *p);

/*
 * The owner's duties before each wait of its loop (its before-sleep
 * hook): pyhost_process() collects results (from the workers' sockets and
 * their shared memory) and enforces deadlines; pyhost_timeout_ms(), last,
 * asks busy workers to wake event-sub (a 'W' frame) once they have done
 * half of their calls, and returns how long the loop may sleep: the next
 * deadline (or dflt, -1 for none), 0 when results already wait.
 */
long pyhost_timeout_ms(struct pyhost *p, long dflt);
void pyhost_process(struct pyhost *p);
/* A child was reaped: returns 1 when it was one of our workers. */
int pyhost_child_exited(struct pyhost *p, pid_t pid, int wstatus);

/* SIGHUP: replace every worker (idle ones now, busy ones after the calls
 * they have), so edited modules are imported afresh. */
void pyhost_recycle(struct pyhost *p);
/* Shutdown: kill the workers that are busy; their running calls are
 * reported as RUN_TIMEOUT with error why (static string), the calls waiting
 * behind them as not started. */
void pyhost_kill_busy(struct pyhost *p, const char *why);

/*
 * Check that every pyfunc handler of t resolves (import + attribute) in a
 * worker of its own, waiting up to timeout_ms in all.  Logs a warning per
 * handler that does not; returns how many do not (-1 when no worker could
 * start, with the reason logged).
 */
int pyhost_verify(const char *exe, const char *handlers_dir,
    const struct match_table *t, long timeout_ms);

#endif
