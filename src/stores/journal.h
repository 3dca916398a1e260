/*
 * journal: event-sub's durable record of its handler runs (event-reactor(7),
 * "Delivery promises").  A SQLite file of its own (subscriber.journal),
 * opened as the stores open theirs (store_sqlite_file.h).  With a sqlite
 * store it is also the way back into the events the router stored: their
 * file attached (journal_attach()), read, never written.
 *
 * A run is known by its event's id and a key naming the handler in that
 * event's runs (catchup.c makes it).  Its state moves QUEUED -> STARTED,
 * and it is done once its result row is in the store; what an earlier
 * process left QUEUED or STARTED (it died) is found as ORPHAN_QUEUED or
 * ORPHAN_STARTED by the next.  The position is the stored event
 * (store_read.h) up to which every event is settled (each of its runs
 * done, or no run), as the caller finds it.
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
#include "store_read.h"

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
 * Open (create, with its directory) the journal at path; the states an
 * earlier process left become orphans.  Returns NULL with err[errsz] set
 * ("journal PATH: why").
 */
struct journal *journal_open(const char *path, char *err, size_t errsz);
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

/* The settled position into *pos ({0, ""}: none yet), and setting it (in
 * the open transaction). */
void journal_position(const struct journal *j, struct store_pos *pos);
int journal_set_position(struct journal *j, const struct store_pos *pos);

/* 1 when runs of event_id are QUEUED or STARTED, 0 when not, -1 on an
 * error. */
int journal_known(struct journal *j, const char *event_id);
/* How many events of ids in (after, upto] (strings compared) have runs in
 * the journal, or -1. */
long long journal_events_between(struct journal *j, const char *after,
    const char *upto);

/*
 * Attach the sqlite store's file events_path (its "events" and "results"
 * tables, made by the store) and fill *out with its reader (store_read.h;
 * valid until journal_close(); how many results a run has: the results
 * table's rows).  Returns 0, or -1 with err[errsz] set.
 */
int journal_attach(struct journal *j, const char *events_path,
    struct store_reader *out, char *err, size_t errsz);
/*
 * A reader of the sqlite store's file events_path for event-sub --replay
 * (store_read.h): the file opened read only (never created, never
 * written), attached to a journal of its own in memory, which knows no
 * run (rows are never known).  Returns 0 with *out filled (its close
 * frees the journal), or -1 with err[errsz] set ("PATH: why").
 */
int journal_open_reader(const char *events_path, struct store_reader *out,
    char *err, size_t errsz);
/* Forget the runs of (settled) events made before t (seconds since the epoch,
 * event_id_time()).  Returns the runs forgotten, or -1. */
long long journal_prune(struct journal *j, long long t);
/* Give back the page cache's unused memory (sqlite3_db_release_memory():
 * up to SQLite's cache_size, 2 MiB by default, per attached file). */
void journal_release_memory(struct journal *j);

#endif
