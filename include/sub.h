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

struct sub_opts {
	const char *config_path;	/* NULL: default, may be missing */
	const char *handlers_path;	/* event-handlers.json */
	const char *handlers_dir;	/* pyfunc modules */
	const char *uri;		/* NULL: subscriber.uri */
	int tail;			/* --tail: print, run nothing */
	const char *tail_pattern;	/* its PATTERN, or NULL: every event */
	const char *curve_key;		/* --curve-key: NULL, config's */
	const char *curve_server;	/* --curve-server: NULL, config's */
	int metrics_fd;			/* /metrics' listening socket
					 * (sub_metrics_listen()), -1: none;
					 * sub_new() takes it over */
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

#endif
