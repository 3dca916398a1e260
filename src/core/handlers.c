/*
 * handlers: event-handlers.json into a match table (match.h).  See
 * cfg_load_handlers() in include/config.h.
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_reader.h"
#include "config.h"
#include "util.h"

struct env_fill {
	struct handler *h;
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
	    strcmp(k, "ER_NAMESPACE") == 0)
		return cfg_error(c, NULL, "%s is set by event-sub for each run",
		    k);
	f->h->env[f->n] = xmalloc(kl + strlen(val) + 2);
	sprintf(f->h->env[f->n], "%s=%s", k, val);
	f->n++;
	return 0;
}

static int
parse_env(struct cfg_reader *c, const struct cfg_node *env, struct handler *h)
{
	struct env_fill f = { h, 0 };

	if (!cfg_is_object(env))
		return cfg_error(c, NULL, "\"env\" must be an object of "
		    "strings");
	h->env = xcalloc(cfg_size(env) + 1, sizeof(char *));
	return cfg_foreach(c, env, env_member, &f);
}

/*
 * "user" and "group": resolved now (getpwnam/getgrnam, getgrouplist), so
 * the child only calls setgroups/setgid/setuid between fork and exec.
 */
static int
parse_identity(struct cfg_reader *c, const struct cfg_node *o,
    struct handler *h)
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

/*
 * pyfunc handlers run in event-sub's workers, as event-sub's user: refuse
 * "user"/"group" (they would silently not apply), warn about the other
 * shell-only options, and about unknown ones.
 */
static int
pyfunc_options(struct cfg_reader *c, const struct cfg_node *o)
{
	static const char *const known[] = { "driver", "handler", "timeout",
	    "exclusive", "input", "env", "cwd", "user", "group", NULL };
	static const char *const shell_only[] = { "input", "env", "cwd", NULL };

	for (const char *const *k = (const char *const[]){ "user", "group",
	    NULL }; *k != NULL; k++)
		if (cfg_member(o, *k) != NULL)
			return cfg_error(c, *k, "\"%s\" applies to shell "
			    "handlers only: pyfunc handlers run in event-sub's "
			    "Python workers, as event-sub's user", *k);
	for (const char *const *k = shell_only; *k != NULL; k++)
		if (cfg_member(o, *k) != NULL)
			cfg_note(c, *k, LOG_LVL_WARNING, "\"%s\" applies to "
			    "shell handlers only; ignored for this pyfunc "
			    "handler", *k);
	cfg_warn_unknown(c, o, known, "handler");
	return 0;
}

/* "driver" and "handler": the command or module.function. */
static int
parse_target(struct cfg_reader *c, const struct cfg_node *o, struct handler *h)
{
	const struct cfg_node *v = cfg_member(o, "driver");
	const char *drv = cfg_string(v), *cmd;

	if (v == NULL)
		return cfg_error(c, NULL, "handler without \"driver\"");
	if (drv != NULL && strcmp(drv, "shell") == 0)
		h->driver = DRIVER_SHELL;
	else if (drv != NULL && strcmp(drv, "pyfunc") == 0)
		h->driver = DRIVER_PYFUNC;
	else
		return cfg_error(c, "driver", "unknown driver \"%s\" (known: "
		    "shell, pyfunc)", drv != NULL ? drv : "");

	v = cfg_member(o, "handler");
	if (v == NULL)
		return cfg_error(c, NULL, "handler entry without \"handler\"");
	cmd = cfg_string(v);
	if (cmd == NULL || cmd[0] == '\0')
		return cfg_error(c, "handler", "\"handler\" must be a "
		    "non-empty string");
	h->handler = xstrdup(cmd);
	if (h->driver == DRIVER_SHELL) {
		char why[128];
		size_t pos;
		h->argv = util_split_command(cmd, &h->argc, why, sizeof(why),
		    &pos);
		if (h->argv == NULL)
			return cfg_error(c, "handler", "cannot split command: "
			    "%s at byte %zu", why, pos);
	} else if (strchr(cmd, '.') == NULL || cmd[strlen(cmd) - 1] == '.' ||
	    cmd[0] == '.') {
		return cfg_error(c, "handler", "pyfunc handler must be "
		    "\"module.function\"");
	}
	return 0;
}

static int
parse_handler(struct cfg_reader *c, const struct cfg_node *o, struct handler *h)
{
	static const char *const known[] = { "driver", "handler", "timeout",
	    "input", "env", "cwd", "exclusive", "user", "group", NULL };
	const struct cfg_node *v;
	char where[4096 + 32];

	if (cfg_want_object(c, o, "a handler") != 0)
		return -1;
	cfg_where(c, where, sizeof(where));
	h->where = xstrdup(where);
	h->timeout = 60;
	if (parse_target(c, o, h) != 0 ||
	    cfg_get_num(c, o, "timeout", 0.001, 31 * 86400.0, &h->timeout) != 0)
		return -1;
	if ((v = cfg_member(o, "input")) != NULL) {
		const char *in = cfg_string(v);
		if (in != NULL && strcmp(in, "argv") == 0)
			h->input = INPUT_ARGV;
		else if (in != NULL && strcmp(in, "stdin") == 0)
			h->input = INPUT_STDIN;
		else if (in != NULL && strcmp(in, "both") == 0)
			h->input = INPUT_BOTH;
		else
			return cfg_error(c, "input", "\"input\" must be "
			    "\"argv\", \"stdin\" or \"both\"");
	}
	if ((v = cfg_member(o, "env")) != NULL) {
		cfg_push(c, "env");
		if (parse_env(c, v, h) != 0)
			return -1;
		cfg_pop(c);
	}
	if (cfg_member(o, "cwd") != NULL) {
		char cwd[4096];
		if (cfg_get_str(c, o, "cwd", cwd, sizeof(cwd)) != 0)
			return -1;
		h->cwd = xstrdup(cwd);
	}
	if (cfg_get_bool(c, o, "exclusive", &h->exclusive) != 0 ||
	    parse_identity(c, o, h) != 0)
		return -1;
	if (h->driver == DRIVER_PYFUNC)
		return pyfunc_options(c, o);
	cfg_warn_unknown(c, o, known, "handler");
	return 0;
}

static int
parse_entry(struct cfg_reader *c, const char *pat, const struct cfg_node *list,
    void *arg)
{
	struct match_table *t = arg;
	struct match_entry *e = &t->entries[t->nentries];

	if (pat[0] == '\0')
		return cfg_error(c, NULL, "a pattern must not be empty");
	if (!cfg_is_array(list))
		return cfg_error(c, NULL, "the handlers of \"%s\" must be an "
		    "array", pat);
	e->pattern = xstrdup(pat);
	e->with_namespace = strchr(pat, ':') != NULL;
	e->handlers = xcalloc(cfg_size(list) + 1, sizeof(*e->handlers));
	t->nentries++;
	for (size_t i = 0; i < cfg_size(list); i++) {
		cfg_push_idx(c, i);
		e->nhandlers = i + 1;
		if (parse_handler(c, cfg_array_get(list, i),
		    &e->handlers[i]) != 0)
			return -1;
		cfg_pop(c);
	}
	t->nhandlers += e->nhandlers;
	return 0;
}

struct match_table *
cfg_load_handlers(const char *path, char *err, size_t errsz)
{
	const struct cfg_node *root;
	struct cfg_reader *c;
	struct match_table *t;

	c = cfg_reader_open(path, CFG_FILE_MAX, err, errsz, &root);
	if (c == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	if (cfg_want_object(c, root, "event-handlers.json") != 0)
		goto fail;
	t->entries = xcalloc(cfg_size(root) + 1, sizeof(*t->entries));
	if (cfg_foreach(c, root, parse_entry, t) != 0)
		goto fail;
	cfg_reader_close(c);
	return t;
fail:
	cfg_reader_close(c);
	match_table_free(t);
	return NULL;
}
