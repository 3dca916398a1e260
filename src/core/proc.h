/*
 * proc: the process layer, for everything that runs a child (the shell
 * driver's handlers, the pyfunc driver's python workers), in the manner
 * of OpenBSD relayd's proc.c and check_script.c.
 *
 * proc_start() starts a child in a process group of its own, with
 * stdin/stdout/stderr as asked (a pipe, /dev/null or ours), descriptors
 * of the caller's at the numbers it asks, default signal dispositions, an
 * empty signal mask and, optionally, another user, group or directory.
 * Everything the child needs (paths, pipes, all O_CLOEXEC) is prepared
 * before the fork; between fork and exec the child makes async-signal-safe
 * calls only.
 *
 * proc_spawn() starts one the same way and supervises it from the
 * caller's event loop (loop.h): its pipes are registered there (stdin is
 * written from a buffer, stdout and stderr are captured up to a cap, with
 * one truncation marker after), its deadline is a timer of that loop
 * (SIGTERM to its process group, SIGKILL after a grace, SIGKILL again
 * every second until it is reaped), and its end is reported once it is.
 * Each SIGKILL goes to the group, to the child and to every descendant
 * of it that /proc lists (proc_tree.h): one that left the group with
 * setsid(2) while its parent lives is killed too.
 *
 * Reaping: the owner reaps (waitpid() on SIGCHLD, from its loop) and hands
 * each pid to procs_reaped().  Single-threaded: every call from the
 * thread that runs the loop.
 */
#ifndef ER_PROC_H
#define ER_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct loop;

/* Room kept after the cap for the truncation marker (bytes). */
#define PROC_MARKER_MAX 128
/* Descriptors a spec may hand down besides the three standard ones. */
#define PROC_MAX_FDS 4

/*
 * Captured output: the first cap bytes, then, when more came, one line
 * "\n[event-reactor: output truncated, N bytes dropped]\n".  Zero it and
 * set cap; buf (cap + PROC_MARKER_MAX bytes) is allocated with the first
 * byte and is the owner's to free.
 */
struct proc_capture {
	char *buf;		/* NULL until something came */
	size_t len;		/* bytes in buf */
	size_t dropped;		/* bytes that came past the cap */
	size_t cap;
};

/* Keep what of data[0..n) fits under the cap; count the rest. */
void proc_capture_add(struct proc_capture *c, const void *data, size_t n);
/* Append the truncation marker when bytes were dropped.  Call once. */
void proc_capture_end(struct proc_capture *c);

enum proc_io {
	PROC_NULL = 0,		/* /dev/null */
	PROC_PIPE,		/* a pipe to or from the caller */
	PROC_INHERIT,		/* the caller's own */
};

/* Where a child failed before its program ran (proc_start()). */
enum proc_stage {
	PROC_STAGE_EXEC = 0,	/* no program ran (errno: execve's) */
	PROC_STAGE_SETUP,	/* descriptors, signals, pipes */
	PROC_STAGE_IDENTITY,	/* setgroups, setgid, setuid */
	PROC_STAGE_CHDIR,	/* the directory */
};

/* Another user and/or group for the child (dropped before exec). */
struct proc_identity {
	int set_user;		/* setgroups(groups), setgid(gid), setuid() */
	int set_group;		/* setgid(gid); alone: no other groups */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;	/* set_user: its supplementary groups */
	int ngroups;
};

/*
 * The identity of every child started with no identity of its own (sp->id
 * NULL), as event-sub started as root gives its handler runs and Python
 * workers config.json's "user" (event-reactor.conf(5)).  id is not
 * copied: it must outlive the children started.  NULL: the caller's own.
 */
void proc_set_default_identity(const struct proc_identity *id);
const struct proc_identity *proc_default_identity(void);
/* Take id in this process (setgroups, setgid, setuid, as for a child);
 * 0, or -1 with errno. */
int proc_take_identity(const struct proc_identity *id);

struct proc;
/*
 * Called before the deadline sends sig (SIGTERM, or SIGKILL after the
 * grace); returns 1 to send it, 0 to drop the deadline (the owner may set
 * another with proc_set_deadline()).
 */
typedef int (*proc_signal_fn)(struct proc *p, int sig, void *arg);

/* How a supervised child ended; out and err valid during the call only. */
struct proc_exit {
	pid_t pid;
	int wstatus;		/* as waitpid() gave it */
	int expired;		/* its deadline passed, or proc_kill() */
	const char *out;	/* captured stdout, marker included; "" */
	size_t out_len;
	const char *err;	/* captured stderr */
	size_t err_len;
};
typedef void (*proc_exit_fn)(const struct proc_exit *x, void *arg);

/* A descriptor of the caller's that the child finds at target. */
struct proc_fd {
	int fd;			/* the caller's (it keeps it, and closes it) */
	int target;		/* > 2 */
};

struct proc_spec {
	/* proc_start() and proc_spawn() */
	const char *file;	/* as execvp(3): PATH searched when no '/' */
	char *const *argv;	/* NULL-terminated */
	char *const *envp;	/* NULL-terminated */
	enum proc_io in, out, err;
	struct proc_fd fds[PROC_MAX_FDS];
	int nfds;
	const struct proc_identity *id;	/* NULL: ours */
	const char *cwd;		/* NULL: ours */
	/* proc_spawn() only */
	const void *in_data;	/* in == PROC_PIPE: written, then closed; */
	size_t in_len;		/*   must stay valid until on_exit */
	size_t cap;		/* bytes of stdout and of stderr captured */
	long timeout_ms;	/* the deadline from now; <= 0: none */
	long grace_ms;		/* SIGTERM to SIGKILL; <= 0: SIGKILL at once */
	proc_signal_fn on_signal;	/* NULL: always send */
	proc_exit_fn on_exit;	/* once, when reaped */
	void *arg;
};

/* The caller's ends of the pipes proc_start() made (-1: none). */
struct proc_pipes {
	int in;			/* write end of the child's stdin */
	int out;		/* read ends of its stdout, stderr */
	int err;
};

/*
 * Start a child as sp says (fields under "proc_spawn() only" ignored).
 * Returns its pid with *pp (close-on-exec, blocking), or -1 with errno and
 * *stage saying how far the child got (errno ENOENT, EACCES... from
 * execve at PROC_STAGE_EXEC; nothing to reap then).  Children that change
 * user, group or directory are forked; others start with posix_spawn
 * (vfork speed).
 */
pid_t proc_start(const struct proc_spec *sp, struct proc_pipes *pp,
    enum proc_stage *stage);

/* Wait for pid (blocking, EINTR retried); its wait status, or that of a
 * SIGKILL when it cannot be waited for (reaped elsewhere). */
int proc_wait(pid_t pid);

/* The supervised children of one owner, on loop l (not owned). */
struct procs;
struct procs *procs_new(struct loop *l);
/* SIGKILL every child left, wait for each and report it; NULL: no-op. */
void procs_free(struct procs *ps);
/* Children started and not reaped yet. */
int procs_count(const struct procs *ps);
/* 1 when pid is one of ps's children not reaped yet, else 0. */
int procs_has(const struct procs *ps, pid_t pid);

/*
 * Start a supervised child (proc_start(), then the pipes, the deadline and
 * the report above).  Returns it, or NULL with errno and *stage (nothing
 * is reported then).  The proc is valid until its on_exit returns.
 */
struct proc *proc_spawn(struct procs *ps, const struct proc_spec *sp,
    enum proc_stage *stage);
pid_t proc_pid(const struct proc *p);
/* The arg its spec gave. */
void *proc_arg(const struct proc *p);
/* Call fn(p, arg) for every child of ps (fn may proc_kill() it). */
void procs_each(struct procs *ps, void (*fn)(struct proc *p, void *arg),
    void *arg);
/* Replace p's deadline: due_ms on the monotonic clock (util_mono_ms()),
 * -1 for none. */
void proc_set_deadline(struct proc *p, long long due_ms);
/* SIGKILL p's process group, p and its descendants now and every second
 * until it is reaped (on_signal is asked before each repeat); it is then
 * reported expired. */
void proc_kill(struct proc *p);

/*
 * A child was reaped (waitpid() status st): returns 1 when it was one of
 * ps's, after reading what is left in its pipes, SIGKILLing what is left
 * of its group when it expired, and calling its on_exit; else 0.
 * procs_reap() reaps for a caller with no other children.
 */
int procs_reaped(struct procs *ps, pid_t pid, int st);
void procs_reap(struct procs *ps);

#endif
