/*
 * driver: how event-sub runs a handler.  Each driver is one ops table
 * (struct driver_ops) in its own file, registered in the static table of
 * driver.c under the name event-handlers.json gives it: shell (runner.c),
 * pyfunc (pyhost.c).  A handler's "driver" is its index in that table
 * (struct handler); the driver reads the handler's own options itself
 * (parse, with cfg_reader.h's getters).  Adding a driver is one new file
 * and one entry in that table.
 *
 * event-sub keeps one queue of runs and reaches the drivers only through
 * the drivers_*() functions below, which go through the table.  Every
 * call from the thread that runs the owner's loop.
 */
#ifndef ER_DRIVER_H
#define ER_DRIVER_H

#include <stddef.h>
#include <sys/types.h>

#include "event.h"
#include "log.h"
#include "match.h"
#include "run.h"

struct cfg;
struct cfg_node;
struct cfg_reader;
struct loop;

/* Entries the table may have. */
#define DRIVERS_MAX 8

/*
 * The end of a run: tag as given to start(); r valid during the call only.
 * Called once for every run started, from start() itself when the run
 * cannot start.
 */
typedef void (*run_done_fn)(void *tag, const struct run_result *r, void *arg);

/* What every driver instance gets from its owner (all borrowed: they
 * outlive the driver). */
struct driver_env {
	struct loop *loop;	/* the owner's: pipes, sockets, timers */
	const struct cfg *cfg;	/* the owner's, kept current (SIGHUP) */
	const char *exe;	/* our binary, to exec ("/proc/self/exe") */
	const char *handlers_dir;	/* pyfunc modules */
	enum log_level level;
	run_done_fn done;
	void *arg;
};

/* What drivers report at a scrape (event-sub's /metrics). */
struct driver_stats {
	int workers;			/* worker processes alive (pyfunc) */
	unsigned long long restarts;	/* workers started in place of one
					 * that ended (pyfunc) */
};

/*
 * One driver.  d is what new() returned.  Optional (NULL): collect, flush,
 * wait_ms, recycle, check, verify, stats.
 */
struct driver_ops {
	const char *name;	/* "shell": as in event-handlers.json */
	/* the driver's instance for its owner; never fails (xmalloc) */
	void *(*new)(const struct driver_env *env);
	/* kill what runs, reap it, report every run left */
	void (*free)(void *d);
	/* runs it could start now (0: none) */
	int (*room)(void *d);
	/* start h for ev (both valid until the run's done); -1 when the
	 * run was reported as RUN_ERROR already */
	int (*start)(void *d, const struct handler *h, const struct event *ev,
	    void *tag);
	/* runs started and not reported yet */
	int (*active)(void *d);
	/* the before-sleep duty: collect() before runs are started (results,
	 * deadlines), flush() after a round of starts, wait_ms() last: how
	 * long the loop may sleep (dflt, -1 for none, 0: not at all) */
	void (*collect)(void *d);
	void (*flush)(void *d);
	long (*wait_ms)(void *d, long dflt);
	/* a child was reaped: 1 when it was one of d's */
	int (*reaped)(void *d, pid_t pid, int wstatus);
	/* 1 when pid is a child of d's not reaped yet (a run's process, a
	 * worker): what event-sub must not take for left behind */
	int (*owns)(void *d, pid_t pid);
	/* SIGHUP: let handler code be loaded afresh */
	void (*recycle)(void *d);
	/* shutdown: kill what runs; each run is reported RUN_TIMEOUT with
	 * error why (static) */
	void (*kill)(void *d, const char *why);
	/* start-up warnings about t's handlers of this driver */
	void (*check)(const struct match_table *t);
	/* check that t's handlers of this driver can run (a warning logged
	 * for each that cannot); how many cannot, -1 when it cannot tell */
	int (*verify)(const struct driver_env *env,
	    const struct match_table *t);
	/*
	 * Read handler o's options (the reader at it; h->handler, timeout
	 * and exclusive are read already) into h->opts, setting
	 * h->free_opts; warn about options unknown to it.  0, or -1 with
	 * the reader's error (h->opts is freed with the table either way).
	 * NULL: no options.
	 */
	int (*parse)(struct cfg_reader *r, const struct cfg_node *o,
	    struct handler *h);
	/* 1 when h's runs take an identity of their own ("user", "group"),
	 * not the daemon's default (proc_set_default_identity()) */
	int (*own_identity)(const struct handler *h);
	/* add its counts to *st */
	void (*stats)(void *d, struct driver_stats *st);
};

/* The drivers of this build (their files). */
extern const struct driver_ops driver_shell, driver_pyfunc;

/* r zeroed, then the run of h for ev: event_id, driver (its table
 * entry's name), handler (borrowed from h, ev, the table); RUN_OK. */
void driver_result(struct run_result *r, const struct handler *h,
    const struct event *ev);

/* How many handlers of t use the driver ops (only those for which
 * want(h) is non-zero, when want is not NULL). */
size_t driver_handlers(const struct match_table *t,
    const struct driver_ops *ops, int (*want)(const struct handler *));

/* How many handlers of t, of any driver, take an identity of their own
 * (struct driver_ops.own_identity). */
size_t drivers_own_identity(const struct match_table *t);

/* The table's entry d (a struct handler's driver), NULL past the last. */
const struct driver_ops *driver_ops(int d);

/* One instance of every driver in the table. */
struct drivers;

struct drivers *drivers_new(const struct driver_env *env);
/* Every driver's free(), in table order.  NULL: no-op. */
void drivers_free(struct drivers *ds);
/* Runs driver d (a struct handler's driver) could start now. */
int drivers_room(struct drivers *ds, int d);
/* Start h with its driver; as driver_ops.start. */
int drivers_start(struct drivers *ds, const struct handler *h,
    const struct event *ev, void *tag);
/* Runs in flight, all drivers. */
int drivers_active(struct drivers *ds);
void drivers_collect(struct drivers *ds);
void drivers_flush(struct drivers *ds);
/* The shortest of the drivers' wait_ms(dflt). */
long drivers_wait_ms(struct drivers *ds, long dflt);
/* Hand a reaped child to its driver: 1 when one had it. */
int drivers_reaped(struct drivers *ds, pid_t pid, int wstatus);
/* 1 when a driver has pid as a child not reaped yet (driver_ops.owns). */
int drivers_owns(struct drivers *ds, pid_t pid);
void drivers_recycle(struct drivers *ds);
/* Every driver's stats(), added into *st (zeroed first). */
void drivers_stats(struct drivers *ds, struct driver_stats *st);
void drivers_kill(struct drivers *ds, const char *why);
/* Every driver's check(t), then nothing else (no instance needed). */
void drivers_check(const struct match_table *t);
/* The sum of every driver's verify(env, t), -1 when one could not tell. */
int drivers_verify(const struct driver_env *env, const struct match_table *t);

#endif
