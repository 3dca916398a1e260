/*
 * proc_start: starting a child, for the process layer (proc.h).
 *
 * Most children start with posix_spawn (glibc's uses CLONE_VFORK: it
 * neither copies our page tables nor waits on a pipe, and reports exec
 * errors as its result).  Children that change user, group or directory
 * fork, and then only make async-signal-safe calls: setpgid, sigaction,
 * sigprocmask, dup2, setgroups, setgid, setuid, chdir, execve, write,
 * _exit, with a failure travelling back as an errno on a close-on-exec
 * pipe (EOF there means exec succeeded).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

/* What the child gets where: dup2(src[i], dst[i]), in order. */
struct fdmap {
	int src[3 + PROC_MAX_FDS];
	int dst[3 + PROC_MAX_FDS];
	int n;
	int top;			/* the highest dst */
	int owned[4 + PROC_MAX_FDS];	/* ours to close after the start */
	int nowned;
};

static void
fdmap_close(struct fdmap *m)
{
	for (int i = 0; i < m->nowned; i++)
		close(m->owned[i]);
	m->nowned = 0;
}

/* Give the child src at dst; owned: src is ours to close. */
static void
fdmap_add(struct fdmap *m, int src, int dst, int owned)
{
	m->src[m->n] = src;
	m->dst[m->n++] = dst;
	if (dst > m->top)
		m->top = dst;
	if (owned)
		m->owned[m->nowned++] = src;
}

/*
 * Move every source above every target (the caller's copied, ours moved),
 * so that no dup2 in the child clobbers a source still to come.
 */
static int
fdmap_lift(struct fdmap *m)
{
	for (int i = 0; i < m->n; i++) {
		int k, fd, old = m->src[i];
		if (old > m->top)
			continue;
		for (k = 0; k < m->nowned && m->owned[k] != old; k++)
			;
		fd = fcntl(old, F_DUPFD_CLOEXEC, m->top + 1);
		if (fd < 0)
			return -1;
		if (k < m->nowned) {	/* ours: moved */
			close(old);
			m->owned[k] = fd;
		} else			/* the caller's: a copy of ours */
			m->owned[m->nowned++] = fd;
		for (int j = i; j < m->n; j++)	/* /dev/null may serve two */
			if (m->src[j] == old)
				m->src[j] = fd;
	}
	return 0;
}

/* One standard descriptor: a pipe end, /dev/null, or none (inherited). */
static int
stdio_one(enum proc_io io, int target, int *devnull, int *parent,
    struct fdmap *m)
{
	int p[2];

	if (io == PROC_INHERIT)
		return 0;
	if (io == PROC_NULL) {
		if (*devnull < 0 &&
		    (*devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
			return -1;
		fdmap_add(m, *devnull, target, 0);
		return 0;
	}
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	*parent = target == 0 ? p[1] : p[0];
	fdmap_add(m, target == 0 ? p[0] : p[1], target, 1);
	return 0;
}

/* The map for sp: pipes and /dev/null as asked, then the caller's fds. */
static int
fdmap_build(const struct proc_spec *sp, struct fdmap *m, struct proc_pipes *pp)
{
	int devnull = -1, rc;

	memset(m, 0, sizeof(*m));
	pp->in = pp->out = pp->err = -1;
	rc = stdio_one(sp->in, 0, &devnull, &pp->in, m) == 0 &&
	    stdio_one(sp->out, 1, &devnull, &pp->out, m) == 0 &&
	    stdio_one(sp->err, 2, &devnull, &pp->err, m) == 0 ? 0 : -1;
	if (devnull >= 0)
		m->owned[m->nowned++] = devnull;
	for (int i = 0; rc == 0 && i < sp->nfds && i < PROC_MAX_FDS; i++)
		fdmap_add(m, sp->fds[i].fd, sp->fds[i].target, 0);
	if (rc == 0)
		rc = fdmap_lift(m);
	return rc;
}

/* Paths execve() should try, as execvp(3) would search PATH. */
static char **
candidates(const char *prog)
{
	const char *path = getenv("PATH"), *p;
	size_t n = 1, i = 0, plen = strlen(prog);
	char **c;

	if (strchr(prog, '/') != NULL) {
		c = xcalloc(2, sizeof(char *));
		c[0] = xstrdup(prog);
		return c;
	}
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p++)
		if (*p == ':')
			n++;
	c = xcalloc(n + 1, sizeof(char *));
	for (p = path;;) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		c[i] = xmalloc(dl + plen + 3);
		if (dl == 0)
			snprintf(c[i], dl + plen + 3, "./%s", prog);
		else
			snprintf(c[i], dl + plen + 3, "%.*s/%s", (int)dl, p, prog);
		i++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return c;
}

static void
free_vec(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/* Children started with no identity of their own take this one. */
static const struct proc_identity *default_id;

void
proc_set_default_identity(const struct proc_identity *id)
{
	default_id = id;
}

const struct proc_identity *
proc_default_identity(void)
{
	return default_id;
}

/*
 * The child's identity (async-signal-safe); 0 or -1 with errno.  A group
 * alone (a handler's "group" without "user") keeps def's user, the one
 * children take by default, rather than root.
 */
static int
child_identity(const struct proc_identity *id,
    const struct proc_identity *def)
{
	if (id == NULL)
		return 0;
	if (id->set_user && setgroups((size_t)id->ngroups, id->groups) != 0)
		return -1;
	if (id->set_user && !id->set_group && setgid(id->gid) != 0)
		return -1;
	if (id->set_group) {
		if (!id->set_user && setgroups(0, NULL) != 0)
			return -1;
		if (setgid(id->gid) != 0)
			return -1;
	}
	if (id->set_user && setuid(id->uid) != 0)
		return -1;
	if (!id->set_user && id->set_group && def != NULL && def->set_user &&
	    setuid(def->uid) != 0)
		return -1;
	return 0;
}

int
proc_take_identity(const struct proc_identity *id)
{
	return child_identity(id, NULL);
}

/* The forked child: async-signal-safe calls only, from fork to exec.  The
 * error word written back is errno << 8 | stage. */
static void __attribute__((noreturn))
child(const struct proc_spec *sp, const struct fdmap *m, char **paths,
    int errpipe)
{
	struct sigaction sa;
	sigset_t none;
	int e = ENOENT, sig, stage = PROC_STAGE_SETUP;

	setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int i = 0; i < m->n; i++)
		if (dup2(m->src[i], m->dst[i]) < 0)
			goto fail_errno;
	stage = PROC_STAGE_IDENTITY;
	if (child_identity(sp->id != NULL ? sp->id : default_id,
	    default_id) != 0)
		goto fail_errno;
	stage = PROC_STAGE_CHDIR;
	if (sp->cwd != NULL && chdir(sp->cwd) != 0)
		goto fail_errno;
	for (char **p = paths; *p != NULL; p++) {
		execve(*p, sp->argv, sp->envp);
		if (errno == EACCES)
			e = EACCES;	/* remember, keep looking (as execvp) */
		else if (errno != ENOENT && errno != ENOTDIR)
			{ e = errno; break; }
	}
	e = e << 8 | PROC_STAGE_EXEC;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
fail_errno:
	e = errno << 8 | stage;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

/* fork + exec (see the top of this file). */
static pid_t
spawn_fork(const struct proc_spec *sp, const struct fdmap *m, char **paths,
    enum proc_stage *stage)
{
	sigset_t all, old;
	int pex[2], e = 0;
	ssize_t got;
	pid_t pid;

	if (pipe2(pex, O_CLOEXEC) != 0)
		return -1;
	/* above the targets, so that no dup2 in the child clobbers it */
	if (pex[1] <= m->top) {
		int fd = fcntl(pex[1], F_DUPFD_CLOEXEC, m->top + 1);
		e = errno;
		close(pex[1]);
		if ((pex[1] = fd) < 0) {
			close(pex[0]);
			errno = e;
			return -1;
		}
	}
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child(sp, m, paths, pex[1]);
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(pex[1]);
	if (pid < 0) {
		close(pex[0]);
		errno = e;
		return -1;
	}
	setpgid(pid, pid);	/* both sides, so kill(-pid) works at once */
	do {
		got = read(pex[0], &e, sizeof(e));
	} while (got < 0 && errno == EINTR);
	close(pex[0]);
	if (got == (ssize_t)sizeof(e)) {
		/* it failed: the child has _exit(127)ed or is about to */
		proc_wait(pid);
		*stage = e & 0xff;
		errno = e >> 8;
		return -1;
	}
	return pid;
}

/* posix_spawn: the same set-up as child(), without identity or cwd. */
static pid_t
spawn_posix(const struct proc_spec *sp, const struct fdmap *m, char **paths)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t dfl, none;
	int rc = ENOENT, e = ENOENT;
	pid_t pid = -1;

	sigfillset(&dfl);
	sigdelset(&dfl, SIGKILL);
	sigdelset(&dfl, SIGSTOP);
	sigemptyset(&none);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < m->n; i++)
		posix_spawn_file_actions_adddup2(&fa, m->src[i], m->dst[i]);
	for (char **p = paths; *p != NULL; p++) {
		rc = posix_spawn(&pid, *p, &fa, &at, sp->argv, sp->envp);
		if (rc == 0)
			break;
		if (rc == EACCES)
			e = EACCES;	/* remember, keep looking (as execvp) */
		else if (rc != ENOENT && rc != ENOTDIR) {
			e = rc;
			break;
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		errno = e;
		return -1;
	}
	return pid;
}

static void
close_pipes(struct proc_pipes *pp)
{
	if (pp->in >= 0)
		close(pp->in);
	if (pp->out >= 0)
		close(pp->out);
	if (pp->err >= 0)
		close(pp->err);
	pp->in = pp->out = pp->err = -1;
}

pid_t
proc_start(const struct proc_spec *sp, struct proc_pipes *pp,
    enum proc_stage *stage)
{
	const struct proc_identity *id = sp->id != NULL ? sp->id : default_id;
	struct fdmap m;
	char **paths;
	pid_t pid;
	int e;

	*stage = PROC_STAGE_SETUP;
	if (fdmap_build(sp, &m, pp) != 0) {
		e = errno;
		fdmap_close(&m);
		close_pipes(pp);
		errno = e;
		return -1;
	}
	*stage = PROC_STAGE_EXEC;
	paths = candidates(sp->file);
	if ((id != NULL && (id->set_user || id->set_group)) || sp->cwd != NULL)
		pid = spawn_fork(sp, &m, paths, stage);
	else
		pid = spawn_posix(sp, &m, paths);
	e = errno;
	fdmap_close(&m);
	free_vec(paths);
	if (pid < 0) {
		close_pipes(pp);
		errno = e;
	}
	return pid;
}

int
proc_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return SIGKILL;	/* reaped by someone else: as killed */
	return st;
}
