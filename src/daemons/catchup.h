/*
 * catchup: event-sub's promise that every event the router stored gets
 * its handler runs, at least once, through crashes, restarts and missed
 * messages (event-reactor(7), "Delivery promises").
 *
 * Each run is written to the journal (journal.h) as it starts (and as it
 * is queued, for an event of several runs); it is done once its result row
 * is stored.  A run event-sub is about to queue that the journal shows
 * queued or started already, or whose event has runs in the queue, is not
 * queued again.
 *
 * The events the router stored since the journal's position are read back
 * in the store's order at the start, after a reconnection, and whenever
 * the live stream may have missed one: a gap in the ids of its router
 * (each counts up by one per event it stamps), or a stored event not
 * received once CATCHUP_GRACE_S old; otherwise looking costs one query
 * every CATCHUP_TICK_MS.  A stored event the journal has no run of, at
 * least CATCHUP_GRACE_S old (so that the live copy has had the time to
 * arrive), is taken as if it had been received, within the window
 * subscriber.catch_up (events older, or past the newest max_count, are
 * counted in a log line and not run).  A run an earlier event-sub left
 * started (it died) and whose result row is not stored runs again, its
 * result marked redelivered, as does one a shutdown killed; one it left
 * queued runs as a first run.  The position moves to what was read once
 * the runs made before are done.
 *
 * The store is read back through its reader (store_read.h): the SQLite
 * file in rowid order, or MongoDB in _id order (the position an event
 * id: an event stored later with an id older than the position is not
 * read back).  With store.type none there is nothing to read back;
 * catchup_open() then says why there is no catch-up.
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
/* Epochs (looks) whose runs the position waits for at most. */
#define CATCHUP_EPOCHS 256

/* What event-sub gives the catch-up. */
struct catchup_host {
	/* Take the stored event text[len] as one received; returns the runs
	 * it queued. */
	int (*take)(void *arg, const void *text, size_t len);
	/* How many more runs the run queue takes now. */
	size_t (*room)(void *arg);
	/* 1 when the event has runs queued or running. */
	int (*pending)(void *arg, const char *event_id);
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
 * beside the store's file on this host, store_local_file()), locked
 * against a second event-sub, and the store's reader.  Returns NULL with
 * *none set to why there is no catch-up (store none),
 * or NULL with err[errsz] set and *none NULL when the journal cannot be
 * opened or is in use.
 */
struct catchup *catchup_open(const struct cfg *cfg,
    const struct catchup_host *host, const char **none, char *err,
    size_t errsz);
/* What cfg gives: "catch-up from SOURCE, journal PATH: ..." (SOURCE:
 * store_read_source()) or "no
 * catch-up: why; ...", into buf[sz] (the start-up line, --check). */
void catchup_describe(const struct cfg *cfg, char *buf, size_t sz);
/* What c reads back, for log lines: "FILE", "mongodb database DB". */
const char *catchup_source(const struct catchup *c);
/* Commit what is written, close.  NULL: a no-op. */
void catchup_close(struct catchup *c);
/* Give back the journal's unused page cache (journal_release_memory()).
 * NULL: a no-op. */
void catchup_release_memory(struct catchup *c);

/*
 * 1 when a live event made at t (event_id_time()) may be one the catch-up
 * took already: its runs are then looked up (catchup_admit()), and it is
 * skipped while catchup_host.pending says so.  c NULL: 0.
 */
int catchup_may_have(const struct catchup *c, long long t);
/* Whether to queue run key of event event_id, as the journal has it. */
enum catchup_verdict catchup_admit(struct catchup *c, const char *event_id,
    const char *key);
/* Journal run key of event event_id queued: for the runs of an event of
 * several (one done, another not started yet). */
void catchup_queued(struct catchup *c, const char *event_id,
    const char *key);
/* A run is queued: its epoch, for catchup_done().  c NULL: 0. */
unsigned long long catchup_job(struct catchup *c);
/* The run is about to start; commit (catchup_commit()) before starting. */
void catchup_started(struct catchup *c, const char *event_id,
    const char *key);
/* How a run ended, for catchup_done(). */
enum catchup_end {
	CATCHUP_RAN,		/* to its end, whatever its status */
	CATCHUP_NOT_STARTED,	/* dropped at shutdown: runs at the next start */
	CATCHUP_KILLED,		/* killed at shutdown: runs again, redelivered */
};

/*
 * The run of epoch epoch (catchup_job()) ended.  Its result is the seq-th
 * record event-sub handed its store (1: the first): the run counts as
 * done once that record is written (catchup_settle()); a run the journal
 * shows started whose result row is missing after a crash runs again.
 */
void catchup_done(struct catchup *c, const char *event_id, const char *key,
    unsigned long long epoch, enum catchup_end end, unsigned long long seq);
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
/* Read them back at the next poll (the router was reconnected). */
void catchup_kick(struct catchup *c);
/* A live event arrived (its id): a gap in the ids of its router means
 * events missed, read back at the next poll. */
void catchup_live(struct catchup *c, const char *event_id);

#endif
