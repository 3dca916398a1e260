/*
 * sub: event-sub's loop.  SUB socket -> match table -> bounded run queue ->
 * the handler's driver (driver.h: shell, at most
 * subscriber.max_concurrency at once; pyfunc, the python workers) ->
 * results -> store.
 *
 * When the queue holds subscriber.queue_size runs, the loop stops reading
 * the SUB socket and ZeroMQ's high-water mark takes over; nothing read is
 * dropped.  SIGHUP reloads event-handlers.json (kept on error); SIGTERM
 * stops reading, lets runs finish within subscriber.shutdown_grace, kills
 * the rest and records them.
 */
#ifndef ER_SUB_H
#define ER_SUB_H

#include "config.h"

/*
 * event-sub --replay (event-sub(8)): the handlers of the stored events
 * whose timestamp is in [since, until) and whose namespace:event_type
 * matches match (NULL: all), in the order they were stored.
 */
struct sub_replay {
	int on;				/* --replay */
	const char *since_text;		/* --since, as given (NULL: none) */
	const char *until_text;		/* --until, as given (NULL: none) */
	double since, until;		/* seconds since the epoch */
	const char *match;		/* --match, or NULL */
	int dry_run;			/* --dry-run: list, run nothing */
};

struct sub_opts {
	const char *config_path;	/* NULL: default, may be missing */
	const char *handlers_path;	/* event-handlers.json */
	const char *handlers_dir;	/* pyfunc modules */
	const char *uri;		/* NULL: subscriber.uri */
	int tail;			/* --tail: print, run nothing */
	const char *tail_pattern;	/* its PATTERN, or NULL: every event */
	const char *curve_key;		/* --curve-key: NULL, config's */
	const char *curve_server;	/* --curve-server: NULL, config's */
	int start_dir;			/* with -D: the directory it was
					 * started in (O_PATH), whose
					 * relative paths SIGHUP reads as
					 * the start did; -1: none.
					 * sub_new() takes it over */
	int metrics_fd;			/* /metrics' listening socket
					 * (sub_metrics_listen()), -1: none;
					 * sub_new() takes it over */
	struct sub_replay replay;
};

struct sub;

/*
 * event-sub's "metrics" (subscriber.metrics, else the top-level one;
 * config.h): its listening socket, bound before anything else starts
 * (-1 when off, as *fd), or -1 with err (metrics_http_listen()'s).
 */
int sub_metrics_listen(const struct cfg *cfg, int *fd, char *err,
    size_t errsz);

/*
 * The warning a start and --check both log when n pyfunc handlers of
 * handlers_path do not resolve (the driver's verify has named each with its
 * file:line:column); neither refuses them (event-sub(8)).
 */
void sub_warn_unresolved(const char *handlers_path, int n);

/*
 * Load everything and connect; NULL with err[errsz] on a bad file.  cfg
 * is the caller's: it must outlive the sub, which keeps its
 * max_concurrency, queue_size and shutdown_grace current on SIGHUP (the
 * drivers read them there).
 */
struct sub *sub_new(struct cfg *cfg, const struct sub_opts *o,
    char *err, size_t errsz);
/* Run until SIGTERM/SIGINT and the drain that follows; returns 0. */
int sub_run(struct sub *s);
void sub_free(struct sub *s);

/*
 * --tail: subscribe as a start would (-u, subscriber.uri, the topic
 * output), print each event whose namespace:event_type matches
 * o->tail_pattern (match.h; NULL: all) on stdout as one JSON line, its
 * text as published (line breaks between tokens made spaces), until
 * SIGINT or SIGTERM, or stdout is closed.  Runs no handler, opens no
 * store.  Returns the exit status: 0, EX_CONFIG (no address to connect
 * to), EX_UNAVAILABLE (cannot subscribe).
 */
int sub_tail(const struct cfg *cfg, const struct sub_opts *o);

/* The --replay flags for getopt_long(3) (getopt.h), values past any
 * character and event-sub's own long options'. */
enum { SUB_OPT_REPLAY = 0x200, SUB_OPT_SINCE, SUB_OPT_UNTIL, SUB_OPT_MATCH,
	SUB_OPT_DRY_RUN };
#define SUB_REPLAY_LONG_OPTIONS \
	{ "replay", no_argument, NULL, SUB_OPT_REPLAY }, \
	{ "since", required_argument, NULL, SUB_OPT_SINCE }, \
	{ "until", required_argument, NULL, SUB_OPT_UNTIL }, \
	{ "match", required_argument, NULL, SUB_OPT_MATCH }, \
	{ "dry-run", no_argument, NULL, SUB_OPT_DRY_RUN }
/* Take getopt's c (its argument arg) into r when it is one of them:
 * returns 1, else 0. */
int sub_replay_flag(int c, const char *arg, struct sub_replay *r);
/*
 * The --replay flags' values: TIME text into *t (seconds since the epoch),
 * now the time to count a relative TIME back from.  Accepted:
 * "2026-12-05T07:00:00Z" (UTC, an optional fraction of a second after
 * the seconds), "2026-12-05" (its midnight, UTC), "-N" and a unit s, m, h
 * or d (N units before now; N at most 9 digits).  Returns 0, or -1.
 */
int sub_replay_time(const char *text, double now, double *t);
/*
 * Check o->replay as parsed from the command line (-1: fine) against the
 * other flags, its times made (now: the time a relative one counts back
 * from); otherwise the message, without a program name, into
 * err[errsz] and EX_USAGE returned.
 */
int sub_replay_check(struct sub_opts *o, int daemon_or_check, double now,
    char *err, size_t errsz);
/*
 * --replay: read the stored events back (store_read.h; the store opened
 * read only), from the first to the last stored when it starts, and run
 * the handlers of those o->replay selects, as a start of event-sub runs
 * them (the run queue, its drivers, conditions and guards), their results
 * recorded replayed; or, --dry-run, list the runs on stdout and write
 * nothing.  The summary on stderr.  Returns the exit status
 * (event-sub(8), EXIT STATUS).
 */
int sub_replay(struct cfg *cfg, const struct sub_opts *o);

#endif
