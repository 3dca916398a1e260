/*
 * daemon: signal flags and readiness notification.
 *
 * Signal handlers only set the flags below; the daemons' poll loops act on
 * them.  SIGPIPE is ignored in the daemons (children get it back).
 * event-sub's loop takes SIGTERM, SIGINT, SIGHUP and SIGCHLD over once it
 * runs (loop_signal(), loop.h) and reads these flags once, for the signals
 * that came before.
 */
#ifndef ER_DAEMON_H
#define ER_DAEMON_H

#include <signal.h>
#include <stddef.h>

extern volatile sig_atomic_t daemon_stop;	/* SIGTERM, SIGINT */
extern volatile sig_atomic_t daemon_reload;	/* SIGHUP */

/* Install the handlers (SA_RESTART off, so poll returns EINTR). */
void daemon_signals(void);

/*
 * Send state (e.g. "READY=1") on $NOTIFY_SOCKET, the sd_notify(3)
 * protocol: one datagram on an AF_UNIX socket, abstract when the path
 * starts with '@'.  No-op without NOTIFY_SOCKET.  Returns 0 or -1.
 */
int daemon_notify(const char *state);

/*
 * Detach from the terminal (fork, setsid, fork, chdir /, stdin and stdout
 * to /dev/null, stderr to errfd, or to /dev/null when errfd is -1) and
 * leave the original process waiting on a pipe until the daemon calls
 * daemon_ready() (it then exits 0) or daemon_failed(reason, code) (it
 * prints the reason and exits with code) or dies (exit 1), so that a start
 * command fails visibly (syslog-ng gprocess.c).  Call before any thread,
 * ZeroMQ context or interpreter exists.  Returns 0 in the daemon, -1 with
 * errno when the first fork fails (nothing detached).  pidfile (NULL:
 * none): the file the daemon will write; after a failure the waiting
 * process, still root when the daemon is not, removes it when the daemon
 * left it empty (daemon_pidfile_remove()) or no live process holds its
 * lock (a daemon killed before it was ready).
 */
int daemon_detach(int errfd, const char *pidfile);

/*
 * Write our pid to path, locked with fcntl(F_SETLK) for as long as we run.
 * Fails (-1, err set) when another live process holds it.  The file is
 * removed by daemon_pidfile_remove() at exit; a daemon that has left root
 * and cannot remove it from its directory empties it instead (a WARNING
 * line), so that it names no process.
 */
int daemon_pidfile(const char *path, char *err, size_t errsz);
void daemon_pidfile_remove(void);

/* Report readiness: READY=1 on $NOTIFY_SOCKET and, after daemon_detach(),
 * release the waiting parent with exit status 0. */
void daemon_ready(void);
/* Only release the waiting parent (exit status 0); no READY=1. */
void daemon_release(void);

/*
 * Descriptors a daemon needs at least: its sockets, store, pipes and
 * handlers' pipes take a few dozen; below that libzmq aborts on EMFILE
 * at start (an assertion in its resolver or poller).
 */
#define DAEMON_MIN_NOFILE 256

/*
 * Raise the soft open files limit (RLIMIT_NOFILE) to DAEMON_MIN_NOFILE
 * when it is lower and the hard limit allows (said in an INFO line).
 * Returns 0, or EX_OSERR, the exit status, after an ERROR line when the
 * hard limit is lower.
 */
int daemon_nofile(void);

/*
 * util_std_fds() for daemon prog: 0, or EX_OSERR, the exit status, after
 * "PROG: /dev/null: REASON" on standard error.
 */
int daemon_std_fds(const char *prog);

/*
 * Whether path (NULL: not given) is "", which would name the current
 * directory (/ under -D): then "PROG: FLAG: an empty path names no file"
 * on stderr, and the caller exits EX_USAGE.
 */
int daemon_empty_path(const char *prog, const char *path, const char *flag);

/* The flags both daemons take (event-router(8), event-sub(8)). */
struct daemon_flags {
	const char *level;	/* -l, --loglevel, --log-level */
	const char *pidfile;	/* -p, --pidfile */
	int detach;		/* -D, --daemon */
	int check;		/* --check (getopt value 'C') */
	int use_syslog;		/* --syslog (getopt value 'S') */
};

/*
 * Take getopt_long's option c (with its optarg, arg) into *f when it is
 * one of those ('l', 'p', 'D', 'C', 'S'): returns 1, or 0 for any other
 * option (the program's own).
 */
int daemon_flag(int c, const char *arg, struct daemon_flags *f);

/*
 * Those flags for a daemon's getopt_long() tables: the short letters, and
 * the long options (a struct option initializer list; the program
 * includes <getopt.h>).  --log-level is the ancestor's name for
 * --loglevel, kept as an alias.
 */
#define DAEMON_SHORT_OPTIONS "l:Dp:"
#define DAEMON_LONG_OPTIONS \
	{ "loglevel", required_argument, NULL, 'l' }, \
	{ "log-level", required_argument, NULL, 'l' }, \
	{ "daemon", no_argument, NULL, 'D' }, \
	{ "pidfile", required_argument, NULL, 'p' }, \
	{ "check", no_argument, NULL, 'C' }, \
	{ "syslog", no_argument, NULL, 'S' }

/*
 * The start-up both daemons share, after their configuration is loaded
 * and before any thread or ZeroMQ context exists: choose where the logs go,
 * detach when asked, then write the pidfile when one is named.
 *
 * With detach or use_syslog, logs go to syslog(3) when something listens
 * on /dev/log (log_syslog_reachable()); else to the file
 * log_dir/NAME.log (NAME from log_init; log_dir created when missing,
 * logging.dir), appended to and made the daemon's standard error, so that
 * its children's messages land there too.  When that file cannot be
 * opened, a detaching start fails (-1, err set: before detaching) and a
 * foreground one stays on standard error.  Where the logs go is said on
 * standard error before detaching.  log_dir must be absolute when
 * detaching.  Returns 0, or -1 with err set.
 */
int daemon_start(int detach, int use_syslog, const char *log_dir,
    const char *pidfile, char *err, size_t errsz);
/* A start-up failure after daemon_start(): log it, remove the pidfile,
 * then hand reason and code to the waiting parent (which exits with it). */
void daemon_fatal(const char *reason, int code);
/* Before daemon_ready(): make the waiting parent print reason and exit
 * with code (a sysexits value). */
void daemon_failed(const char *reason, int code);

/* "event-router 0.1.0" style version line. */
#define ER_VERSION "0.1.0"

#endif
