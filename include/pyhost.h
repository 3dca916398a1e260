/*
 * pyhost: event-sub's pool of Python workers (pyworker.h), each a process
 * started by exec of event-sub itself with --python-worker.  One call at a
 * time per worker; the call's deadline (the handler's timeout) is enforced
 * by SIGKILL to the worker, which is then replaced, as is any worker that
 * dies (os._exit, a crash) or whose resident set is over max_rss_mb after
 * a call, so a leaking handler cannot take the machine down.  Results come back through the runner's run_report, so
 * event-sub records them like shell runs.
 */
#ifndef ER_PYHOST_H
#define ER_PYHOST_H

#include <sys/types.h>

#include "bus.h"
#include "event.h"
#include "log.h"
#include "match.h"
#include "runner.h"

/* A second call is queued on a busy worker only while its current call
 * has run less than this (ms): see pipeline_worker() in pyhost.c. */
#define PYHOST_PIPELINE_MS 20
/* How long a new worker may take to start Python and say hello (ms). */
#define PYHOST_START_TIMEOUT_MS 10000

struct pyhost;

/*
 * A pool of nworkers (>= 1) workers for handlers_dir.  exe: the binary to
 * exec ("/proc/self/exe" in event-sub).  Results go to done(rep, arg).
 * Workers start lazily, when the first pyfunc run comes.
 */
struct pyhost *pyhost_new(const char *exe, const char *handlers_dir,
    int nworkers, long max_rss_mb, enum log_level level, runner_done_fn done,
    void *arg);
void pyhost_free(struct pyhost *p);	/* kills and reaps the workers */

/* Workers that could take a call now (started or startable). */
int pyhost_idle(const struct pyhost *p);
/* Calls in progress. */
int pyhost_active(const struct pyhost *p);

/* Start h (driver pyfunc) for ev on an idle worker; as runner_start(). */
int pyhost_start(struct pyhost *p, const struct handler *h,
    const struct event *ev, void *tag);

/* Poll integration, as in runner.h. */
int pyhost_pollitems(struct pyhost *p, struct bus_pollitem *items, int max);
long pyhost_timeout_ms(const struct pyhost *p, long dflt);
void pyhost_process(struct pyhost *p);
/* A child was reaped: returns 1 when it was one of our workers. */
int pyhost_child_exited(struct pyhost *p, pid_t pid, int wstatus);

/* SIGHUP: replace every worker (idle ones now, busy ones after their
 * call), so edited modules are imported afresh. */
void pyhost_recycle(struct pyhost *p);
/* Shutdown: kill the workers that are busy; their runs are reported as
 * "timeout" with error why (static string). */
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
