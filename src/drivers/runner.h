/*
 * runner: the shell driver.  Each run is a child of the process layer
 * (proc.h): its own process group, the event on argv and/or a stdin pipe,
 * ER_* in its environment, stdout and stderr captured up to
 * RUN_OUTPUT_CAP, its deadline the handler's timeout (SIGTERM to the
 * group, SIGKILL after RUNNER_KILL_GRACE).  Single-threaded: everything
 * happens from the caller's event loop (loop.h), with which each run
 * registers its pipes and its deadline; nothing blocks but the short wait
 * for exec.
 */
#ifndef ER_RUNNER_H
#define ER_RUNNER_H

#include <stddef.h>
#include <sys/types.h>

#include "driver.h"
#include "event.h"
#include "match.h"
#include "run.h"

/* Linux MAX_ARG_STRLEN (include/uapi/linux/binfmts.h): 32 pages, 131072
 * bytes for one argv or envp string, terminating NUL included. */
#define RUNNER_MAX_ARG_STRLEN 131072
/* Seconds between SIGTERM and SIGKILL when a run times out. */
#define RUNNER_KILL_GRACE 5.0

struct runner;
struct loop;

/* How a shell handler receives the event ("input"). */
enum shell_input { INPUT_ARGV = 0, INPUT_STDIN, INPUT_BOTH };

/*
 * A shell handler's options (event-reactor.conf(5), "event-handlers.json"),
 * read by the shell driver's parse into struct handler's opts.
 */
struct shell_opts {
	char **argv;		/* the command, split; NULL-terminated */
	int argc;
	enum shell_input input;
	char **env;		/* extra "NAME=value" strings, NULL-terminated */
	char *cwd;		/* NULL: event-sub's own */
	int set_user;		/* "user" given: drop to uid/gid/groups */
	int set_group;		/* "group" given (alone or with user) */
	unsigned uid, gid;	/* uid_t, gid_t */
	unsigned *groups;	/* supplementary groups of user */
	int ngroups;
};

/*
 * The index in argv[0..argc) of the word after a shell interpreter's -c
 * (sh, bash, dash, ...; also through env or busybox): argc when -c is the
 * last word, so the appended event JSON is the script; -1 when argv does
 * not run a shell with -c.  runner_warn_shell_c() logs a FILE:LINE:COLUMN
 * warning at c's current handler when the event reaches such a shell on
 * argv (event-sub(8), "Handlers and shells").
 */
int runner_shell_c(char *const *argv, int argc);
struct cfg_reader;
void runner_warn_shell_c(struct cfg_reader *c, const struct shell_opts *so);

/*
 * Runs register with l (not owned; it must outlive the runner).  done is
 * called once for every run started (its result: driver "shell"), from
 * runner_start() itself when the run cannot start, else from
 * runner_child_exited().  The table's entry (driver.h) is driver_shell,
 * with room for subscriber.max_concurrency runs.
 */
struct runner *runner_new(struct loop *l, run_done_fn done, void *arg);
void runner_free(struct runner *r);	/* kills and reaps what is left */

/*
 * Start h for ev.  h and ev must stay valid until the run's done call.
 * Returns 0 when a process was started, -1 when the run was reported as
 * RUN_ERROR already (not found, not executable, over MAX_ARG_STRLEN,
 * fork failure).
 */
int runner_start(struct runner *r, const struct handler *h,
    const struct event *ev, void *tag);

/* Runs in progress. */
int runner_active(const struct runner *r);

/*
 * The caller reaps (waitpid, on SIGCHLD from its loop) and hands each
 * child to runner_child_exited(), which returns 1 when the pid was one of
 * ours: it then reads what is left in the run's pipes and calls done.
 * runner_reap() does that for a caller with no other children.
 */
int runner_child_exited(struct runner *r, pid_t pid, int wstatus);
void runner_reap(struct runner *r);

/*
 * Kill every run's process group with SIGKILL (shutdown); each is then
 * reported as RUN_TIMEOUT with error = why (a static string).
 */
void runner_kill_all(struct runner *r, const char *why);

#endif
