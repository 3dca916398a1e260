/*
 * sub_int: what sub.c (event-sub's loop, its sockets and signals) and
 * sub_runs.c (its run queue: events in, runs out, through the journal)
 * share.  Internal to src/daemons; include/sub.h is the public side.
 */
#ifndef ER_SUB_INT_H
#define ER_SUB_INT_H

#include <stddef.h>

#include "bus.h"
#include "catchup.h"
#include "config.h"
#include "driver.h"
#include "event.h"
#include "identity.h"
#include "log.h"
#include "loop.h"
#include "match.h"
#include "run.h"
#include "store.h"


/* An event shared by the runs it caused. */
struct sevent {
	int refs;
	int pending;			/* in sub's pending */
	struct event ev;
};

/* The handler table, shared by the runs started from it (reload). */
struct tbl {
	int refs;
	struct match_table *t;
};

struct job {
	struct job *next;
	struct sevent *se;
	struct tbl *tbl;
	const struct handler *h;
	char *key;			/* the run in the journal */
	unsigned long long epoch;	/* catchup_job() */
	int redelivered;
};

struct sub {
	struct cfg *cfg;		/* the caller's, kept current (SIGHUP) */
	struct identity id;		/* the default of runs (sub.c) */
	char *config_path, *handlers_path, *handlers_dir;
	char uri[CFG_URI_MAX];
	enum cfg_framing framing;	/* of the stream at uri */
	int uri_from_config;		/* no -u: subscriber.uri applies */
	struct loop *loop;
	struct bus *bus;
	struct bus_sock *sock;
	int sock_io;			/* its loop registration, -1: none */
	struct bus_sock *watch;		/* one-frame stream: its handshakes */
	int watch_io;
	struct tbl *tbl;
	struct driver_env env;		/* what the drivers get */
	struct drivers *drv;
	struct store *store;
	struct catchup *cu;		/* NULL: no catch-up */
	void *pending;			/* tsearch(3) tree of the ids of the
					   events with runs queued or running */
	struct job *qhead, *qtail;	/* runs waiting, in arrival order */
	size_t qlen;
	size_t queued[DRIVERS_MAX];	/* of them, per driver */
	int ready;
	int paused;
	long long paused_since;
	int stopping;
	int killed;			/* shutdown grace over, runs killed */
	long long stop_deadline;
	unsigned long long received, bad, runs, unmatched, caught_up;
	unsigned long long results_put;	/* records handed to the store */
	struct log_ratelimit bad_rl, fail_rl;
};

void sub_tbl_unref(struct tbl *t);
/* The drivers' done callback (struct driver_env). */
void sub_on_done(void *tag, const struct run_result *r, void *arg);
/*
 * An event received (stored 0), or read back from the store by the
 * catch-up (stored 1, not counted again): its runs queued, but those the
 * journal has queued, running or done.  Returns the runs queued.
 */
int sub_on_event(struct sub *s, const void *body, size_t len, int stored);
/* 1 when event event_id has runs queued or running (catchup_host). */
int sub_pending(void *arg, const char *event_id);
/* Start the queued runs whose driver has room, in queue order. */
void sub_dispatch(struct sub *s);
/* Record every queued run as not started (shutdown ran out of time). */
void sub_drop_queue(struct sub *s, const char *why);

#endif
