/*
 * catchup: event-sub's promise that every event the router stored gets
 * its handler runs, at least once, through crashes, restarts and missed
 * messages (event-reactor(7), "Delivery promises").
 *
 * Each run is written to the journal (journal.h) as it is queued, started
 * and done; a run event-sub is about to queue that the journal shows
 * queued, started or done already is not queued again.  Every
 * CATCHUP_TICK_MS, and at once after a reconnection, the events the router
 * stored since the journal's position are read back in the store's order:
 * one the journal has no run of, at least CATCHUP_GRACE_S old (so that the
 * live copy has had the time to arrive), is taken as if it had been
 * received, within the window subscriber.catch_up (events older, or past
 * the newest max_count, are counted in a log line and not run).  A run an
 * earlier event-sub left started (it died) runs again, its result marked
 * redelivered; one it left queued runs as a first run.
 *
 * Only with a SQLite store, whose file event-sub reads: with store.type
 * none there is nothing to read back, and with mongodb event-sub does not
 * read it yet; catchup_open() then says why there is no catch-up.
 * One thread: event-sub's loop.
 */
#ifndef ER_CATCHUP_H
#define ER_CATCHUP_H

#include <stddef.h>

#include "config.h"

/* How often the stored events are looked at (ms). */
#define CATCHUP_TICK_MS 500
/* How old an event not received must be to be caught up (seconds; ids
 * have whole seconds). */
#define CATCHUP_GRACE_S 2
/* Stored events looked at per step at most. */
#define CATCHUP_CHUNK 1024

/* What event-sub gives the catch-up. */
struct catchup_host {
	/* Take the stored event text[len] as one received; returns the runs
	 * it queued. */
	int (*take)(void *arg, const void *text, size_t len);
	/* How many more runs the run queue takes now. */
	size_t (*room)(void *arg);
	void *arg;
};

enum catchup_verdict {
	CATCHUP_SKIP,		/* queued, running or done already */
	CATCHUP_RUN,		/* a first run */
	CATCHUP_REDELIVER,	/* it was in flight when event-sub died */
};

struct catchup;

/*
 * Open the journal cfg names (subscriber.journal; default event-sub.journal
 * beside the store's file), locked against a second event-sub.  Returns
 * NULL with *none set to why there is no catch-up (store none, mongodb),
 * or NULL with err[errsz] set and *none NULL when the journal cannot be
 * opened or is in use.
 */
struct catchup *catchup_open(const struct cfg *cfg,
    const struct catchup_host *host, const char **none, char *err,
    size_t errsz);
/* What cfg gives: "catch-up from FILE, journal PATH: ..." or "no
 * catch-up: why; ...", into buf[sz] (the start-up line, --check). */
void catchup_describe(const struct cfg *cfg, char *buf, size_t sz);
/* Commit what is written, close.  NULL: a no-op. */
void catchup_close(struct catchup *c);

/*
 * Before run key of event event_id (made at t, event_id_time()) is queued:
 * whether to queue it; for RUN and REDELIVER the journal has it queued.
 * c NULL: always CATCHUP_RUN.
 */
enum catchup_verdict catchup_admit(struct catchup *c, const char *event_id,
    const char *key, long long t);
/* The run is about to start; commit (catchup_commit()) before starting. */
void catchup_started(struct catchup *c, const char *event_id, const char *key,
    long long t);
/*
 * The run ended (finished 1), or ended without running to its end at
 * shutdown (finished 0: the next event-sub runs it again).  Its result is
 * the seq-th record event-sub handed its store (1: the first): the
 * journal shows the run done only once that record is written
 * (catchup_settle()), so that a kill -9 cannot leave a run done without
 * its result row.
 */
void catchup_done(struct catchup *c, const char *event_id, const char *key,
    long long t, int finished, unsigned long long seq);
/* The store has decided (written or refused) its first decided records:
 * the runs whose results they are are done. */
void catchup_settle(struct catchup *c, unsigned long long decided);
/* 1 while runs ended wait for their results to be written. */
int catchup_unsettled(const struct catchup *c);
/* Commit what was written since the last commit.  Errors are logged. */
void catchup_commit(struct catchup *c);

/*
 * Look at the stored events when due; returns the ms until the next look
 * (c NULL: -1, never).
 */
long catchup_poll(struct catchup *c);
/* Look at them at the next poll (the router was reconnected). */
void catchup_kick(struct catchup *c);

#endif
