/* event-sub: run handlers for the events on the router's PUB stream. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "catchup.h"
#include "config.h"
#include "endpoint.h"
#include "daemon.h"
#include "identity.h"
#include "proc.h"
#include "driver.h"
#include "log.h"
#include "out_zmq.h"
#include "pyworker.h"
#include "store.h"
#include "util.h"
#include "sub.h"
#include "sub_amqp.h"

/* Long options without a short one (past any character). */
enum { OPT_CURVE_KEY = 0x100, OPT_CURVE_SERVER };

static void
usage(FILE *f)
{
	fprintf(f, "usage: event-sub [-D] [-c CONFIG] [--event-handlers DIR] "
	    "[-e FILE] [-u URI] [--curve-key FILE --curve-server FILE] "
	    "[-l LEVEL] [-p PIDFILE] [--check] [--syslog] [-h] [--version]\n"
	    "       event-sub --tail [-c CONFIG] [-u URI] [PATTERN]\n"
	    "       event-sub --replay --since TIME [--until TIME] "
	    "[--match PATTERN] [--dry-run]\n"
	    "                 [-c CONFIG] [-e FILE] [--event-handlers DIR] "
	    "[-l LEVEL]\n"
	    "  -c, --config FILE         store and subscriber settings (%s)\n"
	    "      --event-handlers DIR  Python handler modules (%s)\n"
	    "  -e, --event-handlers-file, --event-filters FILE\n"
	    "                            handler table (%s)\n"
	    "  -u, --uri, --publisher-uri URI\n"
	    "                            the router's PUB stream (subscriber.uri;\n"
	    "                            default: its \"topic\" output, %s),\n"
	    "                            or amqp[s]://USER:PASS@HOST:PORT/VHOST:\n"
	    "                            RabbitMQ, one of a fleet\n"
	    "      --curve-key FILE      own secret certificate (CURVE;\n"
	    "                            subscriber.curve_key)\n"
	    "      --curve-server FILE   the router's public certificate\n"
	    "                            (subscriber.curve_server_key)\n"
	    "  -l, --loglevel, --log-level LEVEL\n"
	    "                            DEBUG, INFO, WARNING or ERROR\n"
	    "  -D, --daemon              detach; start fails with the reason\n"
	    "  -p, --pidfile PATH        write the pid there (removed at exit)\n"
	    "      --check               validate both files and exit\n"
	    "      --tail [PATTERN]      print the stream as JSON lines, run "
	    "nothing\n"
	    "      --replay              run the handlers of stored events "
	    "again, then exit\n"
	    "      --since, --until TIME events from, before TIME: "
	    "2026-12-05T07:00:00Z,\n"
	    "                            2026-12-05 or -2h (s, m, h, d)\n"
	    "      --match PATTERN       only events whose "
	    "namespace:event_type match\n"
	    "      --dry-run             list the runs, run nothing\n"
	    "      --syslog              log to syslog (facility daemon)\n",
	    CFG_DEFAULT_PATH, CFG_DEFAULT_HANDLERS_DIR, CFG_DEFAULT_HANDLERS,
	    CFG_DEFAULT_TOPIC_PUB);
}

/* The flags together: -1 to go on, else the exit status (said why). */
static int
check_flags(struct sub_opts *o, const struct daemon_flags *df)
{
	char err[1024];
	int c;

	if (sub_amqp_uri(o->uri)) {
		if (o->tail) {
			fprintf(stderr, "event-sub: --tail reads the router's "
			    "ZeroMQ stream: -u amqp:// is not for it\n");
			return EX_USAGE;
		}
		if (sub_amqp_check_uri(o->uri, err, sizeof(err)) != 0) {
			/* never the URI: it may hold a password */
			fprintf(stderr, "event-sub: -u %s\n", err);
			return EX_USAGE;
		}
	} else if (o->uri != NULL &&
	    endpoint_check(o->uri, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "event-sub: -u %s\n", err);
		return EX_USAGE;
	}
	/* an empty path would be the current directory (/ under -D): the
	 * workers would import handlers from there */
	if (daemon_empty_path("event-sub", o->config_path, "-c") ||
	    daemon_empty_path("event-sub", o->handlers_path, "-e") ||
	    daemon_empty_path("event-sub", o->handlers_dir,
	    "--event-handlers") ||
	    daemon_empty_path("event-sub", df->pidfile, "-p"))
		return EX_USAGE;
	/* as in event-handlers.json, where "" is refused */
	if ((o->tail_pattern != NULL && o->tail_pattern[0] == '\0') ||
	    (o->replay.match != NULL && o->replay.match[0] == '\0')) {
		fprintf(stderr, "event-sub: %s: a pattern must not be empty\n",
		    o->tail_pattern != NULL ? "--tail" : "--match");
		return EX_USAGE;
	}
	if ((c = sub_replay_check(o, df->detach || df->check, util_now(), err,
	    sizeof(err))) >= 0) {
		fprintf(stderr, "event-sub: %s\n", err);
		return c;
	}
	return -1;
}

/* -u's URL as given (argv's copy has its password hidden); volatile: a
 * store never read back would be dropped, and LeakSanitizer would call
 * the copy a leak. */
static char *volatile uri_copy;

/* The command line into o and df: -1 to go on, else the exit status. */
static int
parse_args(int argc, char **argv, struct sub_opts *o, struct daemon_flags *df)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "event-handlers", required_argument, NULL, 'H' },
		{ "event-handlers-file", required_argument, NULL, 'e' },
		{ "event-filters", required_argument, NULL, 'e' },
		{ "uri", required_argument, NULL, 'u' },
		{ "publisher-uri", required_argument, NULL, 'u' },
		{ "tail", no_argument, NULL, 'T' },
		{ "curve-key", required_argument, NULL, OPT_CURVE_KEY },
		{ "curve-server", required_argument, NULL, OPT_CURVE_SERVER },
		SUB_REPLAY_LONG_OPTIONS,
		DAEMON_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:e:u:h" DAEMON_SHORT_OPTIONS,
	    opts, NULL)) != -1) {
		if (daemon_flag(c, optarg, df) ||
		    sub_replay_flag(c, optarg, &o->replay))
			continue;
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'H':
			o->handlers_dir = optarg;
			break;
		case 'e':
			o->handlers_path = optarg;
			break;
		case 'u':
			/* ps(1) shows argv to every user: the password of an
			 * amqp:// URL is hidden there once read */
			free(uri_copy);		/* -u given twice */
			o->uri = uri_copy = xstrdup(optarg);
			util_hide_password(optarg);
			break;
		case 'T':
			o->tail = 1;
			break;
		case OPT_CURVE_KEY:
			o->curve_key = optarg;
			break;
		case OPT_CURVE_SERVER:
			o->curve_server = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("event-sub %s\n", ER_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (o->tail && optind + 1 == argc)
		o->tail_pattern = argv[optind++];
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	return check_flags(o, df);
}

/*
 * --curve-key and --curve-server over subscriber.curve_key and
 * .curve_server_key: both keys end up given, or neither.  Returns 0, or
 * the exit status with the reason logged.
 */
static int
curve_flags(const struct sub_opts *o, struct cfg *cfg)
{
	char err[8192];

	if (cfg_curve_client_load(o->curve_key, o->curve_server,
	    &cfg->sub_curve, err, sizeof(err)) != 0) {
		log_error("%s %s", o->curve_key != NULL &&
		    strncmp(err, o->curve_key, strlen(o->curve_key)) == 0 ?
		    "--curve-key" : "--curve-server", err);
		return EX_CONFIG;
	}
	if ((o->curve_key != NULL || o->curve_server != NULL) &&
	    (cfg->sub_curve.public_key[0] == '\0' ||
	    cfg->sub_curve.server_key[0] == '\0')) {
		log_error("--curve-key and --curve-server go together (or with "
		    "subscriber.curve_key and .curve_server_key)");
		return EX_USAGE;
	}
	if (o->curve_key != NULL || o->curve_server != NULL)
		cfg->sub_curve.on = 1;
	return 0;
}

/* --check: both files, and whether the pyfunc handlers resolve. */
static int
check_only(const struct cfg *cfg, const struct sub_opts *o)
{
	struct driver_env env = { .exe = "/proc/self/exe",
	    .handlers_dir = o->handlers_dir, .cfg = cfg,
	    .level = log_get_level() };
	struct match_table *t;
	struct identity id;
	size_t own;
	enum cfg_framing framing;
	char uri[CFG_URI_MAX], err[1024], fleet[1024] = "";
	int rc;

	if (sub_amqp_uri(o->uri)) {
		struct sub_amqp_plan p;
		if (sub_amqp_plan(cfg, o->uri, &p, err, sizeof(err)) != 0) {
			log_error("%s", err);
			return EX_CONFIG;
		}
		snprintf(fleet, sizeof(fleet), "%s (queue %s; %s for "
		    "exclusive handlers)", p.url, p.own, p.grp);
	} else if (out_zmq_subscriber(cfg, o->uri, uri, sizeof(uri), &framing,
	    err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	t = cfg_load_handlers(o->handlers_path, err, sizeof(err));
	if (t == NULL) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	if (identity_choose(cfg, &id, err, sizeof(err)) != 0) {
		log_error("%s", err);
		match_table_free(t);
		return EX_CONFIG;
	}
	/* the modules are imported as a start imports them: by the user the
	 * Python workers run as, never root unless that is the user */
	if (id.set)
		proc_set_default_identity(&id.id);
	/* as a start: unresolved pyfunc handlers are warnings (their module
	 * may be deployed later, then SIGHUP), not refusals */
	rc = drivers_verify(&env, t);
	if (rc < 0) {
		log_error("%s: cannot check the pyfunc handlers (the line "
		    "before says why)", o->handlers_path);
		match_table_free(t);
		return EX_CONFIG;
	}
	if (rc > 0)
		sub_warn_unresolved(o->handlers_path, rc);
	printf("%s: %zu pattern%s, %zu handler%s: OK\n", o->handlers_path,
	    t->nentries, PL(t->nentries), t->nhandlers, PL(t->nhandlers));
	if (sub_amqp_uri(o->uri))
		printf("consumes from %s, %s queues, exchange %s\n", fleet,
		    cfg->sub_quorum ? "quorum" : "classic", cfg->sub_exchange);
	else
		printf("subscribes to %s (%s framing)\n", uri,
		    framing == CFG_FRAMING_TOPIC ? "topic" : "event");
	if (cfg->sub_curve.on)
		printf("CURVE: key %s; the router must hold the secret of %s\n",
		    cfg->sub_curve.public_key, cfg->sub_curve.server_key);
	if (sub_amqp_uri(o->uri))
		printf("no catch-up from the store: the broker's queues keep "
		    "what is not acknowledged\n");
	else {
		catchup_describe(cfg, err, sizeof(err));
		printf("%s\n", err);
	}
	identity_describe(&id, err, sizeof(err));
	own = id.set ? drivers_own_identity(t) : 0;
	if (own > 0)
		printf("keeps root to start the %zu handler%s that name%s a "
		    "\"user\" or \"group\"; other runs and the Python workers "
		    "run %s\n", own, own == 1 ? "" : "s", own == 1 ? "s" : "",
		    err + strlen("runs "));	/* "runs as ..." */
	else
		printf("%s\n", err);
	match_table_free(t);
	return 0;
}

/*
 * What runs no daemon: --check, the refusal to run as root (before -D,
 * and before a replay looks at the store; --tail and --dry-run run
 * nothing), --tail and --replay.  Returns 1 with *rc, the exit status,
 * and *cfg freed when main() is done; else 0.
 */
static int
without_daemon(struct cfg *cfg, const struct sub_opts *o, int check, int *rc)
{
	char err[512];

	if (check)
		*rc = check_only(cfg, o);
	else if (!o->tail && !o->replay.dry_run &&
	    identity_refused(cfg, err, sizeof(err))) {
		log_error("%s", err);
		*rc = EX_CONFIG;
	} else if (o->tail || o->replay.on)	/* runs, then exits */
		*rc = o->tail ? sub_tail(cfg, o) : sub_replay(cfg, o);
	else
		return 0;
	cfg_free(cfg);
	store_cleanup();	/* mongoc_cleanup(), last */
	return 1;
}

int
main(int argc, char **argv)
{
	struct sub_opts o = { .handlers_path = CFG_DEFAULT_HANDLERS,
	    .handlers_dir = CFG_DEFAULT_HANDLERS_DIR, .metrics_fd = -1,
	    .start_dir = -1 };
	struct daemon_flags df = { 0 };
	char err[1024];
	struct sub *s = NULL;
	char *abs[4];
	struct cfg cfg;
	int c, rc;

	if ((rc = daemon_std_fds("event-sub")) != 0)
		return rc;
	/* internal: event-sub execs itself as a Python worker
	 * (pyhost_worker.c) */
	if (argc == 5 && strcmp(argv[1], "--python-worker") == 0 &&
	    strcmp(argv[3], "--python-level") == 0)
		return pyworker_main(PYWORKER_FD, argv[2], atoi(argv[4]));

	store_process_init(argv);	/* may exec again: first */
	log_init("event-sub", LOG_LVL_INFO);
	if ((rc = parse_args(argc, argv, &o, &df)) >= 0)
		return rc;
	if ((rc = daemon_nofile()) != 0)
		return rc;
	cfg_curve_server_keys(0);	/* the router's, not ours */
	rc = cfg_startup("event-sub", o.config_path, df.level, &cfg, &c);
	if (rc < 0)
		return c;
	if ((c = curve_flags(&o, &cfg)) != 0) {
		cfg_free(&cfg);
		return c;
	}

	if (without_daemon(&cfg, &o, df.check, &rc))
		return rc;

	/* -D moves to /: every path is made absolute first */
	cfg_absolute_paths(&cfg);
	abs[0] = util_abspath(o.config_path);
	abs[1] = util_abspath(o.handlers_path);
	abs[2] = util_abspath(o.handlers_dir);
	abs[3] = util_abspath(df.pidfile);
	o.config_path = abs[0];
	o.handlers_path = abs[1];
	o.handlers_dir = abs[2];
	/* -D moves to /: SIGHUP reads config.json from here, as now */
	if (df.detach)
		o.start_dir = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = daemon_start(df.detach, df.use_syslog, cfg.log_dir, abs[3], err,
	    sizeof(err));
	if (rc == 0) {
		daemon_signals();
		/* a port in use is EX_UNAVAILABLE, as for the router */
		c = sub_metrics_listen(&cfg, &o.metrics_fd, err,
		    sizeof(err)) != 0 ? EX_UNAVAILABLE : EX_CONFIG;
		if (c == EX_CONFIG)	/* what a failure of sub_new() is */
			s = sub_new(&cfg, &o, err, sizeof(err)); /* copies o */
	}
	for (int i = 0; i < 4; i++)
		free(abs[i]);
	if (rc != 0) {
		log_error("%s", err);
		cfg_free(&cfg);
		return EX_CANTCREAT;
	}
	if (s == NULL) {
		cfg_free(&cfg);
		daemon_fatal(err, c);
		store_cleanup();
		return c;
	}
	rc = sub_run(s);
	sub_free(s);
	cfg_free(&cfg);
	store_cleanup();	/* mongoc_cleanup(), last */
	daemon_pidfile_remove();
	return rc == 0 ? 0 : EX_SOFTWARE;
}
