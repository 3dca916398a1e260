/*
 * pyhost_int.h: what the files of the pyfunc driver share (pyhost.h is
 * its contract; this is its inside).  pyhost.c: the pool, which calls go
 * to which worker and when; pyhost_worker.c: a worker's process (start,
 * deadline, death); pyhost_result.c: what workers send back (frames on
 * the socket, results in the shared call slots); pyhost_verify.c: the
 * start-up check.  For those files only.
 */
#ifndef ER_PYHOST_INT_H
#define ER_PYHOST_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "proc.h"
#include "pyhost.h"
#include "pyproto.h"

/* Events larger than this go to the worker in a write of their own
 * instead of being copied into its batch of frames (bytes). */
#define PYHOST_COPY_MAX (64 * 1024)

enum wstate { W_NONE, W_STARTING, W_READY, W_EXITING };

/* Bytes of a worker's standard error logged as one line at most: a longer
 * line is logged in parts (each cut again to a log line, log.h). */
#define PYHOST_ERR_LINE 4096

/*
 * A worker's standard error (what a handler writes to descriptor 2 past
 * sys.stderr, a program it runs, an import at the start-up check): the
 * read end of a pipe (non-blocking; the worker's end blocks, as a
 * stderr does), logged by the line at WARNING as "python worker PID:
 * LINE", escaped (log.h) and under rl.  A line longer than buf is logged
 * in parts, each cut at a character's start, and a part too long for one
 * log line once escaped goes on in the next: no byte is lost.
 */
struct pyerr {
	int fd;			/* -1: none */
	pid_t pid;
	struct log_ratelimit *rl;
	size_t len;		/* bytes of a line in buf */
	int part;		/* a part of the line was logged */
	char buf[PYHOST_ERR_LINE];
};

/* The limit of workers' standard-error lines in the log (pyhost.h,
 * PYHOST_LOG_BURST), for the pool's workers and the start-up check's. */
#define PYHOST_ERR_RL { .interval = PYHOST_LOG_INTERVAL,		\
	.burst = PYHOST_LOG_BURST,					\
	.what = "\"python worker\" lines of workers' standard error" }

/* A call sent to a worker: calls[seq % PYSHM_SLOTS] while in flight. */
struct call {
	uint64_t seq;		/* 0: none */
	const struct handler *h;
	const struct event *ev;
	void *tag;
	size_t bytes;		/* its 'C' frame */
	struct proc_capture out, err;	/* its log lines, its traceback */
};

/* A call not sent to any worker: to be retried, or taken back. */
struct pending {
	const struct handler *h;
	const struct event *ev;
	void *tag;
};

struct worker {
	enum wstate state;
	struct pyhost *pool;
	struct proc *proc;	/* its process, NULL once reaped */
	pid_t pid;		/* for log lines */
	int fd;			/* -1 once closed */
	int io;			/* fd's loop registration, -1: none */
	struct pyproto_buf in;	/* bytes received */
	struct pyproto_buf out;	/* 'C' frames not sent yet (pyhost_flush) */
	struct pyshm *shm;	/* the call slots, shared with the worker */
	uint64_t deadline_seq;	/* the call its process's deadline is for */
	int recycle;		/* replace once its calls are done */
	int statm_fd;		/* /proc/PID/statm, kept open (-1: not yet) */
	struct call calls[PYSHM_SLOTS];
	uint64_t next_seq;	/* the next call's seq (from 1) */
	uint64_t oldest;	/* no call before it is in flight */
	int inflight;		/* calls sent, neither done nor taken back */
	size_t inflight_bytes;
	int killed;		/* we sent SIGKILL (deadline, shutdown) */
	const char *kill_reason;	/* why, when not a call's deadline */
	double slow_ms;		/* recent call time, < 0 when none yet */
	struct pyerr err;	/* its standard error */
	int errio;		/* err.fd's loop registration, -1: none */
};

struct pyhost {
	struct loop *loop;
	struct procs *procs;	/* the workers' processes */
	char *exe, *dir;
	int level;		/* Python logging level */
	int n;
	long max_rss;		/* bytes */
	struct worker *w;
	run_done_fn done;
	void *arg;
	struct pending *retry;	/* calls waiting for a worker, in order */
	size_t nretry, retry_cap;
	const char *stopping;	/* set at shutdown: why queued calls end */
	unsigned char *ever;	/* [n]: w[i] had a process before */
	unsigned long long restarts;	/* processes after a slot's first */
	struct log_ratelimit lines_rl;	/* handlers' lines to our log */
	struct log_ratelimit err_rl;	/* workers' standard error's */
};

#define CALL(w, s) (&(w)->calls[(s) % PYSHM_SLOTS])
#define SLOT(w, s) (&(w)->shm->slot[(s) % PYSHM_SLOTS])

/* How a worker process is started: exec of exe with our socket's other
 * end and the call slots at the fds pyworker.h names. */
struct wspec {
	char lvl[16];
	char *argv[6];
	int sv[2];		/* sv[0]: ours */
	struct proc_spec sp;
};

/* pyhost.c */
/* A call that must wait for a worker (or end, when stopping). */
void pyhost_push_retry(struct pyhost *p, const struct pending *c);
/* Take back the calls waiting in w behind its running one (to other
 * workers); returns how many. */
int pyhost_steal_queued(struct pyhost *p, struct worker *w);

/* pyhost_worker.c */
int pyhost_py_level(enum log_level l);
/* A pipe for a worker's standard error: fds[0] ours (non-blocking),
 * fds[1] the worker's; 0, or -1 with errno. */
int pyhost_err_pipe(int fds[2]);
/* Read e until it has nothing more for now (0) or is at its end (-1),
 * logging each whole line. */
int pyhost_err_read(struct pyerr *e);
/* Read what is left, log a last line without its end, close e->fd. */
void pyhost_err_close(struct pyerr *e);
/* ws for a worker on shmfd (socket pair, argv, environment, fds); 0, or
 * -1 with errno.  pyhost_wspec_done() after the start: the worker's end
 * closed, ours kept (ok) or closed. */
int pyhost_wspec_init(struct wspec *ws, const char *exe, const char *dir,
    int level, int shmfd);
void pyhost_wspec_done(struct wspec *ws, int ok);
/* A new worker process for w, with fresh call slots: 0 or -1 with errno. */
int pyhost_spawn_worker(struct pyhost *p, struct worker *w);
/* w as it is before its first process (and after each one). */
void pyhost_worker_reset(struct pyhost *p, struct worker *w, double slow_ms);
/* Let w go: close its socket (it exits at EOF), SIGKILL it when sigkill;
 * its calls in flight are settled when it is reaped. */
void pyhost_retire(struct worker *w, int sigkill);
void pyhost_close_sock(struct worker *w);
/* w's resident set (bytes), 0 when unknown. */
long pyhost_rss_bytes(struct worker *w);

/* pyhost_result.c */
/* PYSLOT_* of call seq in w's slots, or -1 when the slot is another's. */
int pyhost_call_state(const struct worker *w, uint64_t seq);
/* How long w's oldest call has been running (ns), 0 when it is not. */
long long pyhost_running_ns(const struct worker *w, long long now);
/* w no longer has c in flight. */
void pyhost_drop_call(struct worker *w, struct call *c);
/* Report c, which event-sub ended (it never returned a result). */
void pyhost_finish_here(struct pyhost *p, struct worker *w, struct call *c,
    enum run_status status, const char *error);
int pyhost_collect(struct pyhost *p, struct worker *w);

#endif
