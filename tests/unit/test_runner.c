/* Unit tests of the runner with real child processes. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "event.h"
#include "log.h"
#include "loop.h"
#include "cfg_plugins.h"
#include "runner.h"
#include "unit.h"
#include "util.h"

struct got {
	int n;
	char status[16];
	int exit_code, has_exit_code, sig;
	char out[RUN_OUTPUT_CAP + 256];
	size_t out_len;
	char error[512];
};

static void
done(void *tag, const struct run_result *rep, void *arg)
{
	struct got *g = arg;

	(void)tag;
	g->n++;
	snprintf(g->status, sizeof(g->status), "%s",
	    run_status_name(rep->status));
	g->exit_code = rep->exit_code;
	g->has_exit_code = rep->has_exit_code;
	g->sig = rep->signal;
	g->out_len = rep->out_len;
	if (rep->out_len > 0)
		memcpy(g->out, rep->out, rep->out_len);
	g->out[rep->out_len] = '\0';
	snprintf(g->error, sizeof(g->error), "%s", rep->error ? rep->error : "");
}

static void
on_chld(struct loop *l, int sig, void *arg)
{
	(void)l;
	(void)sig;
	runner_reap(arg);
}

/* Run cmd (split like a handler) for the event text; bounded by 10 s. */
static unsigned nobody_groups[] = { 65534 };
static int as_nobody;
static char *test_cwd;

static struct got
run(const char *cmd, const char *event_text, enum shell_input input,
    double timeout)
{
	static struct got g;
	struct shell_opts so;
	struct handler h;
	struct event ev;
	struct event_error err;
	struct runner *r;
	struct loop *l;
	char why[64];
	size_t pos;
	long long until = util_mono_ms() + 10000;

	memset(&g, 0, sizeof(g));
	memset(&h, 0, sizeof(h));
	memset(&so, 0, sizeof(so));
	h.driver = driver_find("shell");
	h.handler = (char *)(uintptr_t)cmd;
	h.opts = &so;
	so.argv = util_split_command(cmd, &so.argc, why, sizeof(why), &pos);
	h.timeout = timeout;
	so.input = input;
	h.where = (char *)(uintptr_t)"test";
	so.cwd = test_cwd;
	if (as_nobody) {
		so.set_user = 1;
		so.uid = so.gid = 65534;
		so.groups = nobody_groups;
		so.ngroups = 1;
	}
	if (event_ingest(event_text, strlen(event_text), "local", 0, 1, &ev,
	    &err) != 0)
		abort();
	l = loop_new();
	r = runner_new(l, done, &g);
	loop_signal(l, SIGCHLD, on_chld, r);
	if (runner_start(r, &h, &ev, NULL) == 0)
		while (g.n == 0 && util_mono_ms() < until)
			loop_once(l, 50);
	runner_free(r);
	loop_free(l);
	free(so.argv);
	event_clear(&ev);
	return g;
}

int
main(void)
{
	struct got g;
	char *big;
	size_t n = 200 * 1024;

	log_init("test_runner", LOG_LVL_ERROR);
	daemon_signals();

	g = run("printf %s|%s x", "{\"event_type\":\"a\"}", INPUT_ARGV, 5);
	CHECK_STR(g.status, "ok");
	CHECK(g.has_exit_code && g.exit_code == 0);
	CHECK(strncmp(g.out, "x|{\"id\":\"", 9) == 0);

	g = run("sh -c 'exit 3'", "{\"event_type\":\"a\"}", INPUT_ARGV, 5);
	CHECK_STR(g.status, "failed");
	CHECK(g.exit_code == 3);

	g = run("no-such-program-xyz", "{\"event_type\":\"a\"}", INPUT_ARGV, 5);
	CHECK_STR(g.status, "error");
	CHECK_CONTAINS(g.error, "No such file or directory");

	g = run("/etc/passwd", "{\"event_type\":\"a\"}", INPUT_ARGV, 5);
	CHECK_STR(g.status, "error");
	CHECK_CONTAINS(g.error, "Permission denied");

	g = run("sh -c 'sleep 10'", "{\"event_type\":\"a\"}", INPUT_ARGV, 0.2);
	CHECK_STR(g.status, "timeout");
	CHECK(g.sig == SIGTERM);

	g = run("sh -c 'kill -9 $$'", "{\"event_type\":\"a\"}", INPUT_ARGV, 5);
	CHECK_STR(g.status, "failed");
	CHECK(g.sig == SIGKILL && !g.has_exit_code);

	g = run("sh -c 'echo $ER_NAMESPACE:$ER_EVENT_TYPE'",
	    "{\"event_type\":\"x.y\",\"namespace\":\"n\"}", INPUT_ARGV, 5);
	CHECK_STR(g.out, "n:x.y\n");

	g = run("sh -c 'head -c 1000000 /dev/zero'", "{\"event_type\":\"a\"}",
	    INPUT_ARGV, 5);
	CHECK_STR(g.status, "ok");
	CHECK(g.out_len > RUN_OUTPUT_CAP && g.out_len < RUN_OUTPUT_CAP + 128);
	CHECK_CONTAINS(g.out + RUN_OUTPUT_CAP, "truncated, 934464 bytes");

	/* an event over MAX_ARG_STRLEN: refused on argv, fine on stdin */
	big = xmalloc(n + 64);
	n = (size_t)sprintf(big, "{\"event_type\":\"a\",\"p\":\"");
	memset(big + n, 'x', 200 * 1024);
	strcpy(big + n + 200 * 1024, "\"}");
	g = run("true", big, INPUT_ARGV, 5);
	CHECK_STR(g.status, "error");
	CHECK_CONTAINS(g.error, "MAX_ARG_STRLEN");
	g = run("sh -c 'wc -c'", big, INPUT_STDIN, 5);
	CHECK_STR(g.status, "ok");
	CHECK(atol(g.out) > 200 * 1024);
	free(big);

	/* privileges dropped before exec (needs root to test) */
	if (geteuid() == 0) {
		as_nobody = 1;
		g = run("sh -c 'id -u; id -g; id -G'", "{\"event_type\":\"a\"}",
		    INPUT_ARGV, 5);
		as_nobody = 0;
		CHECK_STR(g.out, "65534\n65534\n65534\n");
	}

	/* a bad cwd is named as such, not as a missing program */
	test_cwd = (char *)(uintptr_t)"/nonexistent-dir";
	g = run("pwd", "{\"event_type\":\"a\"}", INPUT_ARGV, 5);
	test_cwd = NULL;
	CHECK_STR(g.status, "error");
	CHECK_STR(g.error, "cannot change directory to /nonexistent-dir (cwd): "
	    "No such file or directory");

	/* no zombie left behind */
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
	UNIT_END("test_runner");
}
