/* daemon: signals and readiness.  See include/daemon.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "util.h"

volatile sig_atomic_t daemon_stop;
volatile sig_atomic_t daemon_reload;

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		daemon_stop = 1;
		break;
	case SIGHUP:
		daemon_reload = 1;
		break;
	}
}

void
daemon_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

int
daemon_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t plen;
	int fd, rc;

	if (path == NULL || path[0] == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path))
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	rc = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) < 0 ? -1 : 0;
	close(fd);
	return rc;
}

static int ready_fd = -1;
static char *pidfile_path;
static int pidfile_fd = -1;

/* The daemon's reason on stderr, one line escaped as a log line is (it
 * may quote a path or an event's text). */
static void
say_reason(const char *why)
{
	size_t len = strlen(why);
	char esc[4096];

	if (len > 0 && why[len - 1] == '\n')
		len--;
	log_escape(why, len, 0, esc, sizeof(esc));
	fprintf(stderr, "%s\n", esc);
}

/*
 * After a failed start: pidfile, when the daemon left it empty, or when
 * no process holds its lock any more (a daemon killed before it was
 * ready); one whose lock a live daemon holds, or that holds something
 * other than a process id (a -p given a configuration file), is left
 * alone.
 */
static int was_pidfile(int fd);

static void
remove_stale_pidfile(const char *pidfile)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int fd;

	if (pidfile == NULL || lstat(pidfile, &st) != 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (st.st_size == 0) {
		unlink(pidfile);
		return;
	}
	fd = open(pidfile, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && was_pidfile(fd) && fcntl(fd, F_SETLK, &fl) == 0)
		unlink(pidfile);
	if (fd >= 0)
		close(fd);
}

int
daemon_detach(int errfd, const char *pidfile)
{
	int p[2], fd;
	pid_t pid;
	char buf[1024];
	ssize_t n;
	size_t got = 0;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		/* the starting process: wait for the verdict */
		close(p[1]);
		while ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			got += (size_t)n;
			if (got == sizeof(buf) - 1)
				break;
		}
		buf[got] = '\0';
		waitpid(pid, NULL, 0);
		if (got >= 6 && memcmp(buf, "READY\n", 6) == 0)
			exit(0);
		remove_stale_pidfile(pidfile);
		if (got > 5 && memcmp(buf, "EXIT ", 5) == 0) {
			/* "EXIT <status>\n<reason>": the daemon's own status */
			char *nl = strchr(buf, '\n');
			int code = atoi(buf + 5);
			say_reason(nl ? nl + 1 : "");
			exit(code > 0 && code < 256 ? code : 1);
		}
		if (got > 0)
			say_reason(buf);
		else
			fprintf(stderr, "the daemon exited before it was ready\n");
		/* exit(), not _exit(): the starting process has no threads, and
		 * libraries' exit handlers (mongo-c-driver's counters file in
		 * /dev/shm) must run */
		exit(1);
	}
	close(p[0]);
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0);	/* the session leader: its job is done */
	ready_fd = p[1];
	if (chdir("/") != 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(errfd >= 0 ? errfd : fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

void
daemon_ready(void)
{
	daemon_notify("READY=1");
	daemon_release();
}

void
daemon_release(void)
{
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "READY\n", 6);
		close(ready_fd);
		ready_fd = -1;
	}
}

int
daemon_empty_path(const char *prog, const char *path, const char *flag)
{
	if (path == NULL || path[0] != '\0')
		return 0;
	fprintf(stderr, "%s: %s: an empty path names no file\n", prog, flag);
	return 1;
}

void
daemon_failed(const char *reason, int code)
{
	if (ready_fd >= 0) {
		char head[32];
		int n = snprintf(head, sizeof(head), "EXIT %d\n", code);
		(void)!write(ready_fd, head, (size_t)n);
		(void)!write(ready_fd, reason, strlen(reason));
		close(ready_fd);
		ready_fd = -1;
	}
}

/* Whether fd is a regular file that is empty or holds a process id (a
 * pidfile left behind). */
static int
was_pidfile(int fd)
{
	struct stat st;
	char buf[32];
	ssize_t n;
	size_t i;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	if (st.st_size == 0)
		return 1;
	if (st.st_size >= (off_t)sizeof(buf) ||
	    (n = pread(fd, buf, sizeof(buf), 0)) <= 0)
		return 0;
	for (i = 0; i < (size_t)n && buf[i] >= '0' && buf[i] <= '9'; i++)
		;
	return i > 0 && (i == (size_t)n || (buf[i] == '\n' &&
	    i + 1 == (size_t)n));
}

int
daemon_pidfile(const char *path, char *err, size_t errsz)
{
	struct flock fl;
	char buf[32];
	int fd, len;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errsz, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(err, errsz, "pidfile %s: already running as pid %s",
		    path, buf[0] ? buf : "?");
		close(fd);
		return -1;
	}
	if (!was_pidfile(fd)) {
		/* a -p given where another option was meant (-c): the
		 * file is the operator's, not ours to truncate and remove */
		snprintf(err, errsz, "pidfile %s: not a regular file holding "
		    "a process id: not overwritten", path);
		close(fd);
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		snprintf(err, errsz, "pidfile %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	pidfile_fd = fd;
	pidfile_path = strdup(path);
	return 0;
}

void
daemon_pidfile_remove(void)
{
	if (pidfile_path != NULL) {
		if (unlink(pidfile_path) != 0 && errno != ENOENT &&
		    pidfile_fd >= 0 && ftruncate(pidfile_fd, 0) == 0)
			log_warn("pidfile %s: cannot remove it (%s): emptied, "
			    "to name no process", pidfile_path, strerror(errno));
		free(pidfile_path);
		pidfile_path = NULL;
	}
	if (pidfile_fd >= 0) {
		close(pidfile_fd);
		pidfile_fd = -1;
	}
}

/*
 * Open log_dir/NAME.log for appending, creating log_dir (mode 0750, not its
 * parents) when missing.  Returns the descriptor (close-on-exec), or -1
 * with errno.
 */
static int
open_log_file(const char *log_dir, const char *path)
{
	if (mkdir(log_dir, 0750) != 0 && errno != EEXIST)
		return -1;
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
	    0640);
}

int
daemon_std_fds(const char *prog)
{
	if (util_std_fds() >= 0)
		return 0;
	fprintf(stderr, "%s: /dev/null: %s\n", prog, strerror(errno));
	return EX_OSERR;
}

int
daemon_nofile(void)
{
	struct rlimit rl;
	unsigned long long was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur >= DAEMON_MIN_NOFILE)
		return 0;
	was = (unsigned long long)rl.rlim_cur;
	if (rl.rlim_max < DAEMON_MIN_NOFILE) {
		log_error("the open files limit (RLIMIT_NOFILE) is %llu and "
		    "can be raised to %llu only: a daemon needs %d (ulimit -n, "
		    "systemd's LimitNOFILE=)", was,
		    (unsigned long long)rl.rlim_max, DAEMON_MIN_NOFILE);
		return EX_OSERR;
	}
	rl.rlim_cur = DAEMON_MIN_NOFILE;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_error("cannot raise the open files limit (RLIMIT_NOFILE) "
		    "from %llu to %d: %s", was, DAEMON_MIN_NOFILE,
		    strerror(errno));
		return EX_OSERR;
	}
	log_info("open files limit (RLIMIT_NOFILE) raised from %llu to %d",
	    was, DAEMON_MIN_NOFILE);
	return 0;
}

int
daemon_start(int detach, int use_syslog, const char *log_dir,
    const char *pidfile, char *err, size_t errsz)
{
	const char *name = log_ident();
	char path[4096 + 64], shown[4096];
	size_t n = strlen(log_dir);
	int logfd = -1, to_syslog = 0;

	if (detach || use_syslog) {
		/* say where the logs go while the terminal is still ours */
		if (log_syslog_reachable()) {
			to_syslog = 1;
			fprintf(stderr, "%s: logging to syslog (facility "
			    "daemon)\n", name);
		} else {
			snprintf(path, sizeof(path), "%s%s%s.log", log_dir,
			    n > 0 && log_dir[n - 1] == '/' ? "" : "/", name);
			/* as a log line would show it (log.h) */
			log_escape(path, strlen(path), 0, shown, sizeof(shown));
			logfd = open_log_file(log_dir, path);
			if (logfd < 0 && detach) {
				snprintf(err, errsz, "nothing listens on %s "
				    "and the log file %s cannot be opened: %s; "
				    "set logging.dir to a writable directory, "
				    "or start a syslog daemon", log_syslog_path,
				    path, strerror(errno));
				return -1;
			}
			if (logfd < 0)
				fprintf(stderr, "%s: nothing listens on %s and "
				    "%s: %s: logging to standard error\n", name,
				    log_syslog_path, shown, strerror(errno));
			else
				fprintf(stderr, "%s: nothing listens on %s: "
				    "logging to %s\n", name, log_syslog_path,
				    shown);
		}
	}
	if (detach && daemon_detach(logfd, pidfile) != 0) {
		snprintf(err, errsz, "cannot detach: %s", strerror(errno));
		if (logfd >= 0)
			close(logfd);
		return -1;
	}
	if (to_syslog)
		log_to_syslog();
	if (logfd >= 0) {
		/* the file is standard error from now on, for the Python
		 * workers' own messages too */
		if (!detach)
			dup2(logfd, STDERR_FILENO);
		close(logfd);
		log_info("logging to %s: nothing listens on %s", path,
		    log_syslog_path);
	}
	if (pidfile != NULL && daemon_pidfile(pidfile, err, errsz) != 0) {
		daemon_failed(err, EX_CANTCREAT);
		return -1;
	}
	return 0;
}

void
daemon_fatal(const char *reason, int code)
{
	log_error("%s", reason);
	/* the pidfile goes first: the starting command returns at once */
	daemon_pidfile_remove();
	daemon_failed(reason, code);
}

int
daemon_flag(int c, const char *arg, struct daemon_flags *f)
{
	switch (c) {
	case 'l':
		f->level = arg;
		return 1;
	case 'p':
		f->pidfile = arg;
		return 1;
	case 'D':
		f->detach = 1;
		return 1;
	case 'C':
		f->check = 1;
		return 1;
	case 'S':
		f->use_syslog = 1;
		return 1;
	default:
		return 0;
	}
}
