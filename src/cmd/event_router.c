/* event-router: validate, stamp, store and republish events. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "config.h"
#include "daemon.h"
#include "identity.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "router.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: event-router [-D] [-c CONFIG] [-l LEVEL] [-p PIDFILE] "
	    "[--check] [--syslog] [-h] [--version]\n"
	    "  -c, --config FILE   configuration (default %s)\n"
	    "  -l, --loglevel, --log-level LVL\n"
	    "                      DEBUG, INFO, WARNING or ERROR\n"
	    "  -D, --daemon        detach; start fails with the reason if the\n"
	    "                      daemon cannot start\n"
	    "  -p, --pidfile PATH  write the pid there (removed at exit)\n"
	    "      --check         validate the configuration and exit\n"
	    "      --syslog        log to syslog (facility daemon)\n",
	    CFG_DEFAULT_PATH);
}

/* --check: the configuration parsed; say who the router will run as. */
static int
check_only(const struct cfg *cfg, const char *path)
{
	struct identity id;
	char err[1024];

	if (identity_choose(cfg, &id, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	cfg_warn_exposed(cfg);
	printf("%s: configuration OK\n", path);
	identity_describe(&id, err, sizeof(err));
	printf("%s%s\n", err, id.set ? " once its sockets are bound" : "");
	return 0;
}

/* identity_refused(): logged, *cfg freed. */
static int
refused_as_root(struct cfg *cfg)
{
	char err[512];

	if (!identity_refused(cfg, err, sizeof(err)))
		return 0;
	log_error("%s", err);
	cfg_free(cfg);
	return 1;
}

/* The command line into *config and df: -1 to go on, else the exit
 * status. */
static int
parse_args(int argc, char **argv, const char **config,
    struct daemon_flags *df)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		DAEMON_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:h" DAEMON_SHORT_OPTIONS, opts,
	    NULL)) != -1) {
		if (daemon_flag(c, optarg, df))
			continue;
		switch (c) {
		case 'c':
			*config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("event-router %s\n", ER_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if (daemon_empty_path("event-router", *config, "-c") ||
	    daemon_empty_path("event-router", df->pidfile, "-p"))
		return EX_USAGE;
	return -1;
}

int
main(int argc, char **argv)
{
	struct daemon_flags df = { 0 };
	const char *config = NULL;
	char *abs_pidfile;
	int c, rc;
	char err[1024];
	struct router *r;
	struct cfg cfg;

	if ((rc = daemon_std_fds("event-router")) != 0)
		return rc;
	store_process_init(argv);	/* may exec again: first */
	log_init("event-router", LOG_LVL_INFO);
	if ((rc = parse_args(argc, argv, &config, &df)) >= 0)
		return rc;
	if ((rc = daemon_nofile()) != 0)
		return rc;
	rc = cfg_startup("event-router", config, df.level, &cfg, &c);
	if (rc < 0)
		return c;
	if (df.check) {
		c = check_only(&cfg, rc == 1 ? "(defaults)" : config != NULL ?
		    config : CFG_DEFAULT_PATH);
		cfg_free(&cfg);
		return c;
	}

	if (refused_as_root(&cfg))	/* before -D */
		return EX_CONFIG;
	/* -D moves to /: every path is made absolute first */
	cfg_absolute_paths(&cfg);
	abs_pidfile = util_abspath(df.pidfile);
	rc = daemon_start(df.detach, df.use_syslog, cfg.log_dir, abs_pidfile,
	    err, sizeof(err));
	free(abs_pidfile);
	if (rc != 0) {
		log_error("%s", err);
		cfg_free(&cfg);
		return EX_CANTCREAT;
	}
	daemon_signals();
	cfg_warn_exposed(&cfg);
	r = router_new(&cfg, err, sizeof(err));	/* keeps &cfg */
	if (r == NULL) {
		cfg_free(&cfg);
		daemon_fatal(err, EX_UNAVAILABLE);
		store_cleanup();
		return EX_UNAVAILABLE;
	}
	rc = router_run(r);
	router_free(r);
	cfg_free(&cfg);
	store_cleanup();	/* mongoc_cleanup(), last */
	daemon_pidfile_remove();
	return rc == 0 ? 0 : EX_SOFTWARE;
}
