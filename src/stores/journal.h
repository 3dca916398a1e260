/*
 * journal: event-sub's durable record of its handler runs, and its way
 * back into the events the router stored (event-reactor(7), "Delivery
 * promises").  A SQLite file of its own (subscriber.journal), opened as
 * the stores open theirs (store_sqlite_file.h), with the router's SQLite
 * store attached read-only in use: event-sub reads the events table and
 * never writes it.
 *
 * A run is known by its event's id and a key naming the handler in that
 * event's runs (catchup.c makes it).  Its state moves QUEUED -> STARTED,
 * and it is done once its result row is in the store (the results table,
 * in the file attached); what an earlier process left QUEUED or STARTED
 * (it died) is found as ORPHAN_QUEUED or ORPHAN_STARTED by the next.  The position is the
 * events table's rowid up to which every event is settled (each of its
 * runs done, or no run), as the caller finds it.
 *
 * Writes go into one transaction, begun by the first write and ended by
 * journal_commit(): the caller commits before it starts what it wrote
 * STARTED, so that a kill -9 cannot start a run the journal does not
 * show.  Errors: a failed write is returned (-1) with the reason in
 * journal_error(); the journal keeps going (the caller logs and counts).
 * The file is held in SQLite's exclusive locking mode (one event-sub per
 * journal, which catchup.c makes sure of): no lock is taken again for each
 * transaction.  One thread: event-sub's loop.
 */
#ifndef ER_JOURNAL_H
#define ER_JOURNAL_H

#include <stddef.h>

#include "event.h"

enum journal_state {
	JOURNAL_NONE = 0,	/* not in the journal */
	JOURNAL_QUEUED,		/* queued by this process */
	JOURNAL_STARTED,	/* started by this process */
	JOURNAL_KILLED,		/* killed by a shutdown: runs again */
	JOURNAL_ORPHAN_QUEUED,	/* queued by a process that died: never ran */
	JOURNAL_ORPHAN_STARTED,	/* started by a process that died: ran to
				   its end when its result row is stored */
};

struct journal;

/*
 * Open (create, with its directory) the journal at path, with events_path
 * (the SQLite store's file, whose "events" table the router writes)
 * attached; the states an earlier process left become orphans.  Returns
 * NULL with err[errsz] set ("journal PATH: why").
 */
struct journal *journal_open(const char *path, const char *events_path,
    char *err, size_t errsz);
void journal_close(struct journal *j);	/* rolls back what is not committed */
const char *journal_error(const struct journal *j);

/* The state of run (event_id, key); JOURNAL_NONE on an error too. */
enum journal_state journal_get(struct journal *j, const char *event_id,
    const char *key);
/* Set it (in the open transaction).  Returns 0 or -1. */
int journal_set(struct journal *j, const char *event_id, const char *key,
    enum journal_state st);
/* Commit the open transaction, if any.  Returns 0 or -1 (rolled back). */
int journal_commit(struct journal *j);

/* The settled position (0: none yet), and setting it (in the open
 * transaction). */
long long journal_position(const struct journal *j);
int journal_set_position(struct journal *j, long long seq);

/* ---- the router's events, in the order it stored them ---- */

/* One stored event, valid during the callback. */
struct journal_row {
	long long seq;		/* its rowid: the store's order */
	const char *id;		/* its id (EVENT_ID_LEN hex digits) */
	const void *body;	/* the stamped event's text */
	size_t len;
	int known;		/* 1: runs of it are QUEUED or STARTED */
};

/*
 * The stored events after seq after, in order, at most max: cb(arg, row)
 * for each until it returns non-zero.  Returns the rows handed over, or
 * -1 (journal_error()).
 */
int journal_scan(struct journal *j, long long after, int max,
    int (*cb)(void *arg, const struct journal_row *row), void *arg);
/*
 * The last stored event: *seq (0: none) and its id into
 * id[EVENT_ID_LEN + 1] ("" when not an id).  Returns 0 or -1.
 */
int journal_last(struct journal *j, long long *seq, char id[]);
/* Stored events in (after, upto] with no run in the journal, or -1. */
long long journal_unknown(struct journal *j, long long after,
    long long upto);
/*
 * How many results of handler (of driver) the store holds for event_id:
 * an orphaned run ran to its end when they are more than its place among
 * the event's runs of that handler.  -1 on an error.
 */
long long journal_results(struct journal *j, const char *event_id,
    const char *driver, size_t driver_len, const char *handler,
    size_t handler_len);
/* Forget the runs of (settled) events made before t (seconds since the epoch,
 * event_id_time()).  Returns the runs forgotten, or -1. */
long long journal_prune(struct journal *j, long long t);

#endif
