/*
 * runner: the shell driver: each run is a child of the process layer
 * (proc.h), with the event on argv and/or stdin and ER_* in its
 * environment.  See runner.h.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfg_reader.h"
#include "config.h"
#include "log.h"
#include "proc.h"
#include "runner.h"
#include "util.h"

extern char **environ;

struct run {
	struct runner *r;
	const struct handler *h;
	const struct event *ev;
	void *tag;
	const char *kill_reason;
	double started_at;
	double start_mono;
};

struct runner {
	struct procs *procs;
	run_done_fn done;
	void *arg;
	const struct cfg *cfg;	/* the table's: max_concurrency; or NULL */
};

struct runner *
runner_new(struct loop *l, run_done_fn done, void *arg)
{
	struct runner *r = xcalloc(1, sizeof(*r));

	r->procs = procs_new(l);
	r->done = done;
	r->arg = arg;
	return r;
}

int
runner_active(const struct runner *r)
{
	return procs_count(r->procs);
}

/* Report x, which could not start, as RUN_ERROR with the reason. */
static void
report_error(struct run *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
report_error(struct run *x, const char *fmt, ...)
{
	struct run_result res;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	driver_result(&res, x->h, x->ev);
	res.status = RUN_ERROR;
	res.started_at = x->started_at;
	res.duration_ms = (util_now() - x->started_at) * 1000.0;
	res.error = msg;
	x->r->done(x->tag, &res, x->r->arg);
}

/* 1 when vec (NAME=value strings) sets the variable that var sets. */
static int
env_has(char **vec, const char *var)
{
	size_t nl = strcspn(var, "=");

	for (; vec != NULL && *vec != NULL; vec++)
		if (strncmp(*vec, var, nl) == 0 && (*vec)[nl] == '=')
			return 1;
	return 0;
}

/* The options of x's handler (shell_parse()). */
static const struct shell_opts *
opts(const struct run *x)
{
	return x->h->opts;
}

/* environ + ER_* + the handler's env, in a new vector of borrowed and
 * owned strings; owned ones are listed in *owned (free each, then both). */
static char **
build_envp(const struct shell_opts *h, const struct event *ev,
    char ***owned)
{
	size_t n = 0, m = 0, i;
	char **envp, **own;

	while (environ[n] != NULL)
		n++;
	for (i = 0; h->env != NULL && h->env[i] != NULL; i++)
		m++;
	envp = xcalloc(n + m + 5, sizeof(char *));
	own = xcalloc(5, sizeof(char *));
	if (asprintf(&own[0], "ER_EVENT_ID=%s", ev->id) < 0 ||
	    asprintf(&own[1], "ER_EVENT_TYPE=%s", ev->event_type) < 0 ||
	    asprintf(&own[2], "ER_NAMESPACE=%s", ev->namespace) < 0 ||
	    asprintf(&own[3], "ER_EVENT_HOPS=%d", ev->hops) < 0)
		abort();
	m = 0;
	for (i = 0; i < n; i++) {
		/* ours and the handler's win over inherited ones */
		if (strncmp(environ[i], "ER_EVENT_ID=", 12) == 0 ||
		    strncmp(environ[i], "ER_EVENT_TYPE=", 14) == 0 ||
		    strncmp(environ[i], "ER_NAMESPACE=", 13) == 0 ||
		    strncmp(environ[i], "ER_EVENT_HOPS=", 14) == 0 ||
		    env_has(h->env, environ[i]))
			continue;
		envp[m++] = environ[i];
	}
	for (i = 0; h->env != NULL && h->env[i] != NULL; i++)
		envp[m++] = h->env[i];
	for (i = 0; i < 4; i++)
		envp[m++] = own[i];
	envp[m] = NULL;
	*owned = own;
	return envp;
}

/* The deadline's signals, logged; always sent. */
static int
on_signal(struct proc *p, int sig, void *arg)
{
	struct run *x = arg;

	if (sig == SIGTERM)
		log_info("handler %s (%s) for event %s timed out after "
		    "%g s: SIGTERM to process group %ld", x->h->where,
		    x->h->handler, x->ev->id, x->h->timeout, (long)proc_pid(p));
	else
		log_info("handler %s still running %g s after SIGTERM: SIGKILL",
		    x->h->where, RUNNER_KILL_GRACE);
	return 1;
}

/* The run's child was reaped: its result. */
static void
run_exited(const struct proc_exit *e, void *arg)
{
	struct run *x = arg;
	struct run_result res;
	int st = e->wstatus;

	driver_result(&res, x->h, x->ev);
	res.error = x->kill_reason;
	res.started_at = x->started_at;
	res.duration_ms = (util_mono() - x->start_mono) * 1000.0;
	if (WIFEXITED(st)) {
		res.has_exit_code = 1;
		res.exit_code = WEXITSTATUS(st);
	} else if (WIFSIGNALED(st)) {
		res.signal = WTERMSIG(st);
	}
	if (e->expired)
		res.status = RUN_TIMEOUT;
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		res.status = RUN_OK;
	else
		res.status = RUN_FAILED;
	res.out = e->out;
	res.out_len = e->out_len;
	res.err = e->err;
	res.err_len = e->err_len;
	x->r->done(x->tag, &res, x->r->arg);
	free(x);
}

/* Why the run could not start, as its error. */
static void
report_start_error(struct run *x, enum proc_stage stage, int e)
{
	if (stage == PROC_STAGE_CHDIR)
		report_error(x, "cannot change directory to %s (cwd): %s",
		    opts(x)->cwd, strerror(e));
	else if (stage == PROC_STAGE_IDENTITY)
		report_error(x, "cannot switch to the handler's user or group: "
		    "%s", strerror(e));
	else
		report_error(x, "cannot run %s: %s", opts(x)->argv[0],
		    strerror(e));
}

/*
 * Whether the event goes on argv: 1 or 0, or -1 when it cannot (reported:
 * the event is over MAX_ARG_STRLEN for "input": "argv").
 */
static int
event_on_argv(struct run *x)
{
	if (opts(x)->input == INPUT_STDIN)
		return 0;
	if (x->ev->json_len + 1 > RUNNER_MAX_ARG_STRLEN) {
		if (opts(x)->input == INPUT_ARGV) {
			report_error(x, "event JSON is %zu bytes, over "
			    "Linux's limit of %d bytes for one argument "
			    "(MAX_ARG_STRLEN); set \"input\": \"stdin\" or "
			    "\"both\" for this handler", x->ev->json_len,
			    RUNNER_MAX_ARG_STRLEN);
			return -1;
		}
		return 0;	/* "both": stdin only, documented */
	}
	return 1;
}

/* Start x's child; 0, or -1 with errno and *stage. */
static int
spawn_run(struct runner *r, struct run *x, int use_argv, enum proc_stage *stage)
{
	const struct shell_opts *h = opts(x);
	struct proc_identity id;
	struct proc_spec sp;
	char **argv, **envp, **owned;
	gid_t *groups;
	int i, e, rc;

	argv = xcalloc((size_t)h->argc + 2, sizeof(char *));
	for (i = 0; i < h->argc; i++)
		argv[i] = h->argv[i];
	if (use_argv)
		argv[i++] = (char *)(uintptr_t)x->ev->json;
	envp = build_envp(h, x->ev, &owned);
	groups = xcalloc((size_t)h->ngroups + 1, sizeof(gid_t));
	for (i = 0; i < h->ngroups; i++)
		groups[i] = (gid_t)h->groups[i];
	memset(&id, 0, sizeof(id));
	id.set_user = h->set_user;
	id.set_group = h->set_group;
	id.uid = (uid_t)h->uid;
	id.gid = (gid_t)h->gid;
	id.groups = groups;
	id.ngroups = h->ngroups;
	memset(&sp, 0, sizeof(sp));
	sp.file = h->argv[0];
	sp.argv = argv;
	sp.envp = envp;
	sp.in = h->input != INPUT_ARGV ? PROC_PIPE : PROC_NULL;
	sp.out = sp.err = PROC_PIPE;
	sp.id = h->set_user || h->set_group ? &id : NULL;
	sp.cwd = h->cwd;
	sp.in_data = x->ev->json;
	sp.in_len = x->ev->json_len;
	sp.cap = RUN_OUTPUT_CAP;
	sp.timeout_ms = (long)(x->h->timeout * 1000.0);
	sp.grace_ms = (long)(RUNNER_KILL_GRACE * 1000);
	sp.on_signal = on_signal;
	sp.on_exit = run_exited;
	sp.arg = x;
	rc = proc_spawn(r->procs, &sp, stage) != NULL ? 0 : -1;
	e = errno;
	free(argv);
	free(envp);
	free(groups);
	for (i = 0; owned[i] != NULL; i++)
		free(owned[i]);
	free(owned);
	errno = e;
	return rc;
}

int
runner_start(struct runner *r, const struct handler *h, const struct event *ev,
    void *tag)
{
	struct run *x = xcalloc(1, sizeof(*x));
	enum proc_stage stage;
	int use_argv;

	x->r = r;
	x->h = h;
	x->ev = ev;
	x->tag = tag;
	x->started_at = util_now();
	x->start_mono = util_mono();
	if ((use_argv = event_on_argv(x)) >= 0) {
		if (spawn_run(r, x, use_argv, &stage) == 0)
			return 0;
		report_start_error(x, stage, errno);
	}
	free(x);
	return -1;
}

int
runner_child_exited(struct runner *r, pid_t pid, int wstatus)
{
	return procs_reaped(r->procs, pid, wstatus);
}

void
runner_reap(struct runner *r)
{
	procs_reap(r->procs);
}

static void
kill_run(struct proc *p, void *why)
{
	struct run *x = proc_arg(p);

	x->kill_reason = why;
	proc_kill(p);
}

void
runner_kill_all(struct runner *r, const char *why)
{
	procs_each(r->procs, kill_run, (void *)(uintptr_t)why);
}

void
runner_free(struct runner *r)
{
	if (r == NULL)
		return;
	runner_kill_all(r, "killed: event-sub is exiting");
	procs_free(r->procs);
	free(r);
}

/* ---- the shell driver's entry in the table (driver.h) ---- */

static void *
shell_new(const struct driver_env *env)
{
	struct runner *r = runner_new(env->loop, env->done, env->arg);

	r->cfg = env->cfg;
	return r;
}

static void
shell_free(void *d)
{
	runner_free(d);
}

static int
shell_room(void *d)
{
	struct runner *r = d;
	int n = r->cfg->max_concurrency - runner_active(r);

	return n > 0 ? n : 0;
}

static int
shell_start(void *d, const struct handler *h, const struct event *ev,
    void *tag)
{
	return runner_start(d, h, ev, tag);
}

static int
shell_active(void *d)
{
	return runner_active(d);
}

static int
shell_reaped(void *d, pid_t pid, int wstatus)
{
	return runner_child_exited(d, pid, wstatus);
}

static int
shell_owns(void *d, pid_t pid)
{
	return procs_has(((struct runner *)d)->procs, pid);
}

static void
shell_kill(void *d, const char *why)
{
	runner_kill_all(d, why);
}

static int
without_user(const struct handler *h)
{
	return !((const struct shell_opts *)h->opts)->set_user;
}

static int
shell_own_identity(const struct handler *h)
{
	const struct shell_opts *so = h->opts;

	return so->set_user || so->set_group;
}

/* Running as root with no default identity (proc.h): shell handlers
 * without a "user" run as root. */
static void
shell_check(const struct match_table *t)
{
	size_t n = driver_handlers(t, &driver_shell, without_user);

	if (n > 0 && geteuid() == 0 && proc_default_identity() == NULL)
		log_warn("running as root: %zu shell handler%s without a "
		    "\"user\" option will run as root", n, PL(n));
}

/* ---- a shell handler's options (event-reactor.conf(5)) ---- */

struct env_fill {
	struct shell_opts *so;
	size_t n;
};

static int
env_member(struct cfg_reader *c, const char *k, const struct cfg_node *v,
    void *arg)
{
	struct env_fill *f = arg;
	const char *val = cfg_string(v);
	size_t kl = strlen(k);

	if (val == NULL)
		return cfg_error(c, NULL, "environment values must be strings "
		    "without NUL");
	if (kl == 0 || strchr(k, '=') != NULL)
		return cfg_error(c, NULL, "\"%s\" is not a valid environment "
		    "variable name", k);
	if (strcmp(k, "ER_EVENT_ID") == 0 ||
	    strcmp(k, "ER_EVENT_TYPE") == 0 ||
	    strcmp(k, "ER_NAMESPACE") == 0 ||
	    strcmp(k, "ER_EVENT_HOPS") == 0)
		return cfg_error(c, NULL, "%s is set by event-sub for each run",
		    k);
	f->so->env[f->n] = xmalloc(kl + strlen(val) + 2);
	sprintf(f->so->env[f->n], "%s=%s", k, val);
	f->n++;
	return 0;
}

static int
parse_env(struct cfg_reader *c, const struct cfg_node *env,
    struct shell_opts *so)
{
	struct env_fill f = { so, 0 };

	if (!cfg_is_object(env))
		return cfg_error(c, NULL, "\"env\" must be an object of "
		    "strings");
	so->env = xcalloc(cfg_size(env) + 1, sizeof(char *));
	return cfg_foreach(c, env, env_member, &f);
}

/*
 * "user" and "group": resolved now (getpwnam/getgrnam, getgrouplist), so
 * the child only calls setgroups/setgid/setuid between fork and exec.
 */
static int
parse_identity(struct cfg_reader *c, const struct cfg_node *o,
    struct shell_opts *h)
{
	char user[256] = "", group[256] = "";

	if (cfg_get_str(c, o, "user", user, sizeof(user)) != 0 ||
	    cfg_get_str(c, o, "group", group, sizeof(group)) != 0)
		return -1;
	if (user[0] != '\0') {
		struct passwd *pw = getpwnam(user);
		int n = 64;
		gid_t *gl;
		if (pw == NULL) {
			return cfg_error(c, "user", "unknown user \"%s\"",
			    user);
		}
		h->set_user = 1;
		h->uid = pw->pw_uid;
		h->gid = pw->pw_gid;
		gl = xcalloc((size_t)n, sizeof(gid_t));
		if (getgrouplist(user, pw->pw_gid, gl, &n) < 0) {
			gl = xrealloc(gl, (size_t)n * sizeof(gid_t));
			getgrouplist(user, pw->pw_gid, gl, &n);
		}
		h->groups = xcalloc((size_t)n, sizeof(unsigned));
		for (int i = 0; i < n; i++)
			h->groups[i] = gl[i];
		h->ngroups = n;
		free(gl);
	}
	if (group[0] != '\0') {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			return cfg_error(c, "group", "unknown group \"%s\"",
			    group);
		}
		h->set_group = 1;
		h->gid = gr->gr_gid;
	}
	return 0;
}

static void
shell_free_opts(void *opts)
{
	struct shell_opts *so = opts;

	free(so->argv);
	if (so->env != NULL)
		for (char **p = so->env; *p != NULL; p++)
			free(*p);
	free(so->env);
	free(so->cwd);
	free(so->groups);
	free(so);
}

/* "input": how the event reaches the command. */
static int
parse_input(struct cfg_reader *c, const struct cfg_node *o,
    struct shell_opts *so)
{
	const struct cfg_node *v = cfg_member(o, "input");
	const char *in = cfg_string(v);

	if (v == NULL)
		return 0;
	if (in != NULL && strcmp(in, "argv") == 0)
		so->input = INPUT_ARGV;
	else if (in != NULL && strcmp(in, "stdin") == 0)
		so->input = INPUT_STDIN;
	else if (in != NULL && strcmp(in, "both") == 0)
		so->input = INPUT_BOTH;
	else
		return cfg_error(c, "input", "\"input\" must be \"argv\", "
		    "\"stdin\" or \"both\"");
	return 0;
}

static int
shell_parse(struct cfg_reader *c, const struct cfg_node *o, struct handler *h)
{
	static const char *const known[] = { "driver", "handler", "timeout",
	    "input", "env", "cwd", "exclusive", "user", "group", "when", "rate", "dedupe", NULL };
	struct shell_opts *so = xcalloc(1, sizeof(*so));
	const struct cfg_node *v;
	char why[128];
	size_t pos;

	h->opts = so;
	h->free_opts = shell_free_opts;
	so->argv = util_split_command(h->handler, &so->argc, why, sizeof(why),
	    &pos);
	if (so->argv == NULL)
		return cfg_error(c, "handler", "cannot split command: %s at "
		    "byte %zu", why, pos);
	if (parse_input(c, o, so) != 0)
		return -1;
	runner_warn_shell_c(c, so);
	if ((v = cfg_member(o, "env")) != NULL) {
		cfg_push(c, "env");
		if (parse_env(c, v, so) != 0)
			return -1;
		cfg_pop(c);
	}
	if (cfg_member(o, "cwd") != NULL) {
		char cwd[4096];
		if (cfg_get_str(c, o, "cwd", cwd, sizeof(cwd)) != 0)
			return -1;
		so->cwd = xstrdup(cwd);
	}
	if (parse_identity(c, o, so) != 0)
		return -1;
	cfg_warn_unknown(c, o, known, "handler");
	return 0;
}

const struct driver_ops driver_shell = {
	.name = "shell",
	.new = shell_new,
	.free = shell_free,
	.room = shell_room,
	.start = shell_start,
	.active = shell_active,
	.reaped = shell_reaped,
	.owns = shell_owns,
	.kill = shell_kill,
	.check = shell_check,
	.parse = shell_parse,
	.own_identity = shell_own_identity,
};
