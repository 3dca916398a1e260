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
#include "sub_amqp.h"
#include "sub_metrics.h"
#include "sub.h"


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
	struct sub_amqp_msg *msg;	/* -u amqp://: the message it is of */
	enum run_status stopped;	/* RUN_OK, or what its guard said */
	char *why;			/* then why (guard.h) */
};

/*
 * Containment (sub_contain.c): event-sub is a child subreaper, so what a
 * run leaves behind when its process exits becomes event-sub's child;
 * after a run's process ends, CONTAIN_PASSES looks, CONTAIN_PASS_MS
 * apart, SIGKILL every child of event-sub that no driver owns, with its
 * descendants.
 */
#define CONTAIN_PASSES 4
#define CONTAIN_PASS_MS 100

struct contain {
	int on;				/* prctl() made us a subreaper */
	int reaping;			/* in reap(): runs ending count */
	int passes;			/* looks left */
	long long timer;		/* the next look's, 0: none */
	unsigned long ended;		/* runs ended since the last look */
	unsigned long series;		/* since the first of these looks */
	char *where, *handler;		/* the last run ended */
	char event_id[EVENT_ID_LEN + 1];
	unsigned long long killed;	/* processes, since start */
	struct log_ratelimit rl;
};

/*
 * A replay (replay.c) feeds the run queue instead of the SUB socket and
 * the catch-up: fn, before each wait of the loop while it does not stop,
 * queues runs (sub_on_event(), stored 1) while there is room, sets *done
 * once it has queued the last, and returns the ms until it is called
 * again (-1: at the next wake-up, a run ended).  The loop ends once it is
 * done and no run is queued or running.
 */
struct sub;

struct sub_feed {
	long (*fn)(struct sub *s, void *arg, int *done);
	void *arg;
};

struct sub {
	struct cfg *cfg;		/* the caller's, kept current (SIGHUP) */
	struct identity id;		/* the default of runs (sub.c) */
	char *config_path, *handlers_path, *handlers_dir;
	int start_dir;			/* -D: where it was started (O_PATH,
					   sub_opts), for SIGHUP; -1: none */
	char uri[CFG_URI_MAX];
	enum cfg_framing framing;	/* of the stream at uri */
	int uri_from_config;		/* no -u: subscriber.uri applies */
	struct loop *loop;
	struct bus *bus;
	struct bus_sock *sock;
	int sock_io;			/* its loop registration, -1: none */
	struct bus_sock *watch;		/* the SUB socket's handshakes */
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
	int rejoined;			/* topic framing: connected again,
					   the next control message is ours */
	int paused;
	long long paused_since;
	int stopping;
	int killed;			/* shutdown grace over, runs killed */
	long long stop_deadline;
	unsigned long long received, bad, runs, unmatched, caught_up;
	unsigned long long results_put;	/* records handed to the store */
	unsigned long long idle_seen;	/* idle_tick(): the counts last time */
	int idle_busy;			/* memory releases due (idle_tick) */
	struct log_ratelimit bad_rl, fail_rl;
	struct log_ratelimit hs_rl;	/* failed handshakes of the SUB socket */
	struct contain ct;
	int metrics_fd;			/* sub_opts's until sm has it */
	struct sub_metrics *sm;		/* "metrics": NULL when off */
	/* -u amqp:// (sub_fleet.c) */
	struct sub_amqp *amqp;		/* NULL: the ZeroMQ stream */
	int amqp_io;			/* its fd's registration, -1: none */
	struct sub_amqp_msg *settled_head, *settled_tail;	/* runs ended,
					   results not stored yet */
	struct sub_feed feed;		/* a replay: fn set */
	int fed;			/* its last run queued */
	unsigned long long by_status[RUN_DEDUPLICATED + 1];	/* results */
	unsigned long long discarded;	/* runs dropped unstarted, unrecorded */
};

/*
 * event-sub --replay's sub (replay.c): the handlers, the store's results,
 * the drivers, as sub_new() makes them, but no SUB socket and no catch-up:
 * feed queues the runs, each result recorded replayed.  s->uri is set to
 * source (for log lines).  NULL with err[errsz] on a bad file.
 */
struct sub *sub_new_replay(struct cfg *cfg, const struct sub_opts *o,
    const struct sub_feed *feed, const char *source, char *err,
    size_t errsz);
/* The replay's stop (a signal): queued runs dropped, never recorded
 * (counted in s->discarded). */
void sub_discard_queue(struct sub *s);
/* SIGHUP: read the handler table and config.json again (sub_reload.c). */
void sub_reload(struct sub *s);

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
/*
 * A message of the broker (-u amqp://): its event's runs queued, only the
 * "exclusive" handlers' for one of the group's queue, only the others'
 * for one of the own queue, each run holding m (m->runs) and marked
 * redelivered when m is.  Returns the runs queued, or -1 with *err when
 * the body is not an event (nothing queued).
 */
int sub_on_message(struct sub *s, struct sub_amqp_msg *m,
    struct event_error *err);
/* Start the queued runs whose driver has room, in queue order. */
void sub_dispatch(struct sub *s);
/* Record every queued run as not started (shutdown ran out of time). */
void sub_drop_queue(struct sub *s, const char *why);

/*
 * The fleet (sub_fleet.c), with -u amqp://: sub_fleet_open() at the
 * start (no catch-up then: the queues keep what is not acknowledged);
 * sub_fleet_ended() for each run of a message that ends (ran 0: not to
 * its end, killed or never started at a stop: the message is left to the
 * broker); sub_fleet_settle() before each wait and at the stop: the
 * messages whose results are stored are acknowledged; sub_fleet_pause()
 * stops or resumes taking messages; sub_fleet_close() at the end.
 * sub_fleet_wait_ms(): how long the loop may sleep while results wait.
 */
int sub_fleet_open(struct sub *s, const char *uri, char *err, size_t errsz);
void sub_fleet_ended(struct sub *s, struct sub_amqp_msg *m, int ran);
void sub_fleet_settle(struct sub *s);
void sub_fleet_pause(struct sub *s, int pause);
long sub_fleet_wait_ms(const struct sub *s, long timeout);
void sub_fleet_close(struct sub *s);
/* After a reload to table t: the consumers' prefetch follows the new
 * max_concurrency; a warning when t's exclusive handlers call for other
 * queues than those consumed. */
void sub_fleet_reloaded(struct sub *s, const struct match_table *t);

/* Containment (see struct contain): sub_contain_init() at start (a
 * warning when prctl() fails: no containment then); sub_contain_ended()
 * for each run that ends while its process is reaped; sub_contain_look()
 * after a reap that ended a driver's process; sub_contain_final() once
 * the drivers are freed (s->drv NULL: every child of ours is left
 * behind): the looks left, at least one, now. */
void sub_contain_init(struct sub *s);
void sub_contain_ended(struct sub *s, const struct handler *h,
    const char *event_id);
void sub_contain_look(struct sub *s);
void sub_contain_final(struct sub *s);
void sub_contain_free(struct sub *s);

#endif
