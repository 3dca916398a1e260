/* Unit tests of the process layer (src/core/proc.h), real children. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "proc.h"
#include "unit.h"
#include "util.h"

extern char **environ;

struct got {
	int n;			/* on_exit calls */
	struct proc_exit x;
	char out[4096], err[256];
	int sigs[8];		/* what on_signal was asked, in order */
	int nsigs;
	int answer;		/* on_signal's answer */
};

static void
got_exit(const struct proc_exit *x, void *arg)
{
	struct got *g = arg;

	g->n++;
	g->x = *x;
	snprintf(g->out, sizeof(g->out), "%.*s", (int)x->out_len, x->out);
	snprintf(g->err, sizeof(g->err), "%.*s", (int)x->err_len, x->err);
	g->x.out = g->out;
	g->x.err = g->err;
}

static int
got_signal(struct proc *p, int sig, void *arg)
{
	struct got *g = arg;

	(void)p;
	if (g->nsigs < 8)
		g->sigs[g->nsigs++] = sig;
	return g->answer;
}

static void
on_chld(struct loop *l, int sig, void *arg)
{
	(void)l;
	(void)sig;
	procs_reap(arg);
}

/* A spec for sh -c script with pipes, reporting to g. */
static struct proc_spec
sh(const char *script, struct got *g)
{
	static char *argv[4];
	struct proc_spec sp;

	argv[0] = (char *)(uintptr_t)"sh";
	argv[1] = (char *)(uintptr_t)"-c";
	argv[2] = (char *)(uintptr_t)script;
	argv[3] = NULL;
	memset(&sp, 0, sizeof(sp));
	sp.file = "sh";
	sp.argv = argv;
	sp.envp = environ;
	sp.out = sp.err = PROC_PIPE;
	sp.cap = 1000;
	sp.on_exit = got_exit;
	sp.on_signal = got_signal;
	sp.arg = g;
	memset(g, 0, sizeof(*g));
	g->answer = 1;
	return sp;
}

/* Spawn sp supervised and turn the loop until it is reported (10 s). */
static void
run(struct proc_spec *sp, struct got *g)
{
	struct loop *l = loop_new();
	struct procs *ps = procs_new(l);
	enum proc_stage stage;
	long long until = util_mono_ms() + 10000;

	loop_signal(l, SIGCHLD, on_chld, ps);
	CHECK(proc_spawn(ps, sp, &stage) != NULL);
	while (g->n == 0 && util_mono_ms() < until)
		loop_once(l, 50);
	CHECK(procs_count(ps) == 0);
	procs_free(ps);
	loop_free(l);
}

static void
test_capture(void)
{
	struct proc_capture c = { NULL, 0, 0, 4 };

	proc_capture_add(&c, "ab", 2);
	proc_capture_add(&c, "cdef", 4);
	proc_capture_end(&c);
	CHECK(c.len == 4 + strlen("\n[event-reactor: output truncated, 2 "
	    "bytes dropped]\n"));
	CHECK(memcmp(c.buf, "abcd\n[event-reactor: output truncated, 2 bytes "
	    "dropped]\n", c.len) == 0);
	free(c.buf);
	memset(&c, 0, sizeof(c));
	c.cap = 4;
	proc_capture_add(&c, "abcd", 4);
	proc_capture_end(&c);
	CHECK(c.len == 4 && c.dropped == 0);
	free(c.buf);
}

/* Descriptors handed down at numbers where the other one's source sits. */
static void
test_fds(void)
{
	int a[2], b[2], st;
	struct proc_pipes pp;
	struct proc_spec sp;
	enum proc_stage stage;
	struct got g;
	char buf[16];
	size_t have;
	ssize_t n;
	pid_t pid;

	CHECK(pipe(a) == 0 && pipe(b) == 0);
	CHECK(write(a[1], "A", 1) == 1 && write(b[1], "B", 1) == 1);
	close(a[1]);
	close(b[1]);
	/* a's read end at 4, b's at 3: each is the other's target */
	CHECK(dup2(a[0], 40) == 40 && dup2(b[0], 41) == 41);
	close(a[0]);
	close(b[0]);
	CHECK(dup2(40, 4) == 4 && dup2(41, 3) == 3);
	close(40);
	close(41);
	sp = sh("cat <&3; cat <&4", &g);
	sp.in = PROC_NULL;
	sp.err = PROC_INHERIT;
	sp.fds[0] = (struct proc_fd){ 4, 3 };
	sp.fds[1] = (struct proc_fd){ 3, 4 };
	sp.nfds = 2;
	pid = proc_start(&sp, &pp, &stage);
	CHECK(pid > 0 && pp.in == -1 && pp.err == -1 && pp.out >= 0);
	close(3);
	close(4);
	for (have = 0; have < sizeof(buf) &&
	    (n = read(pp.out, buf + have, sizeof(buf) - have)) > 0;)
		have += (size_t)n;
	CHECK(have == 2 && memcmp(buf, "AB", 2) == 0);
	close(pp.out);
	st = proc_wait(pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* its own process group */
	CHECK(getpgid(0) != pid);
}

static void
test_start_errors(void)
{
	struct proc_pipes pp;
	struct proc_spec sp;
	enum proc_stage stage;
	struct got g;

	sp = sh("true", &g);
	sp.file = "no-such-program-xyz";
	CHECK(proc_start(&sp, &pp, &stage) == -1 && errno == ENOENT);
	CHECK(stage == PROC_STAGE_EXEC && pp.out == -1 && pp.err == -1);
	sp = sh("true", &g);
	sp.cwd = "/nonexistent-dir";
	CHECK(proc_start(&sp, &pp, &stage) == -1 && errno == ENOENT);
	CHECK(stage == PROC_STAGE_CHDIR);
}

/* Pipes: stdin written from a buffer, stdout and stderr captured, the
 * cap and its one marker. */
static void
test_io(void)
{
	struct proc_spec sp;
	struct got g;
	char *big;

	/* stdout and stderr captured, stdin written from the buffer */
	big = xmalloc(300000);
	memset(big, 'x', 300000);
	sp = sh("wc -c; echo oops >&2; exit 3", &g);
	sp.in = PROC_PIPE;
	sp.in_data = big;
	sp.in_len = 300000;
	run(&sp, &g);
	CHECK(g.n == 1 && !g.x.expired && WIFEXITED(g.x.wstatus) &&
	    WEXITSTATUS(g.x.wstatus) == 3);
	CHECK(atol(g.out) == 300000);
	CHECK_STR(g.err, "oops\n");
	free(big);

	/* the cap and its one marker */
	sp = sh("head -c 5000 /dev/zero | tr '\\0' y", &g);
	run(&sp, &g);
	CHECK(g.x.out_len == 1000 + strlen("\n[event-reactor: output "
	    "truncated, 4000 bytes dropped]\n"));
	CHECK_STR(g.out + 1000, "\n[event-reactor: output truncated, 4000 "
	    "bytes dropped]\n");
}

/* Deadlines: SIGTERM then SIGKILL to the group, at once without a grace,
 * or declined by on_signal. */
static void
test_deadlines(void)
{
	struct proc_spec sp;
	struct got g;
	long long until;

	/* the deadline: SIGTERM (ignored here), SIGKILL after the grace, to
	 * the whole group (the sleep as well) */
	sp = sh("trap '' TERM; echo up; sleep 10; echo late", &g);
	sp.timeout_ms = 100;
	sp.grace_ms = 200;
	run(&sp, &g);
	CHECK(g.n == 1 && g.x.expired);
	CHECK(g.nsigs >= 2 && g.sigs[0] == SIGTERM && g.sigs[1] == SIGKILL);
	CHECK(WIFSIGNALED(g.x.wstatus) && WTERMSIG(g.x.wstatus) == SIGKILL);
	CHECK_STR(g.out, "up\n");
	until = util_mono_ms() + 5000;
	while (kill(-g.x.pid, 0) == 0 && util_mono_ms() < until)
		usleep(10000);
	CHECK(kill(-g.x.pid, 0) == -1 && errno == ESRCH);

	/* grace 0: SIGKILL at once */
	sp = sh("sleep 10", &g);
	sp.timeout_ms = 50;
	run(&sp, &g);
	CHECK(g.nsigs >= 1 && g.sigs[0] == SIGKILL && g.x.expired);

	/* on_signal may decline: the deadline is dropped, the child ends */
	sp = sh("sleep 0.3; echo done", &g);
	sp.timeout_ms = 50;
	g.answer = 0;
	run(&sp, &g);
	CHECK(g.nsigs == 1 && g.sigs[0] == SIGKILL && !g.x.expired);
	CHECK(WIFEXITED(g.x.wstatus) && WEXITSTATUS(g.x.wstatus) == 0);
	CHECK_STR(g.out, "done\n");
}

/* procs_free() kills, waits for and reports what is left. */
static void
test_free(void)
{
	struct loop *l = loop_new();
	struct procs *ps = procs_new(l);
	enum proc_stage stage;
	struct proc_spec sp;
	struct got g;

	sp = sh("sleep 10", &g);
	CHECK(proc_spawn(ps, &sp, &stage) != NULL);
	procs_free(ps);
	loop_free(l);
	CHECK(g.n == 1 && g.x.expired && WIFSIGNALED(g.x.wstatus) &&
	    WTERMSIG(g.x.wstatus) == SIGKILL);
}

int
main(void)
{
	log_init("test_proc", LOG_LVL_ERROR);
	daemon_signals();
	test_capture();
	test_fds();
	test_start_errors();
	test_io();
	test_deadlines();
	test_free();

	/* no zombie left behind */
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
	UNIT_END("test_proc");
}
