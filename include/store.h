/*
 * store: the event store.  A bounded queue in front of one writer thread
 * that writes in groups, so the routing path never waits for a disk sync
 * or a database server.  The store is a plugin, picked by store.type from
 * a table (src/stores/store_backend.h): "sqlite" (embedded, default),
 * "mongodb" (MongoDB through mongo-c-driver, with a local spool while the
 * server is away); "none" keeps nothing.  The schemas are documented in
 * event-reactor(7), "Event store".
 *
 * Thread model: store_put_*() and store_take_done() from one producer
 * thread (the daemon's main loop); the writer thread owns the backend.  A
 * failing backend (read-only file, full disk) costs only the failed
 * records: each is logged (rate-limited) and counted, and the queue keeps
 * draining; the next transaction tries again, so storing resumes by itself
 * once the backend can write.  The producer blocks only while the queue
 * is full.
 *
 * A producer that must know when a record is decided (event-router: a
 * client waits for its acknowledgement) puts it with
 * store_put_event_waited() and a tag of its own; once the writer has
 * committed it (or failed, or spooled it), the writer queues (tag, status)
 * and makes store_done_fd() readable; the producer's loop takes them with
 * store_take_done().  While such a record is queued the writer does not
 * wait for more records to write them in one transaction (group commit
 * lingers up to 2 ms for bulk input that nobody waits for).
 */
#ifndef ER_STORE_H
#define ER_STORE_H

#include <stddef.h>

#include "config.h"
#include "event.h"
#include "run.h"

/*
 * Records queued at most; past it store_put_*() waits for the writer.
 * Four of the writer's groups of 4096: enough to keep it busy while the
 * daemon fills the next; 65536 held a burst's 30 MB more in the router's
 * memory for no more events a second.
 */
#define STORE_QUEUE_DEFAULT 16384

struct store;

struct store_stats {
	unsigned long long queued;	/* records handed to the store */
	unsigned long long written;	/* records committed (for MongoDB:
					   in the server, replays included) */
	unsigned long long failed;	/* records never stored: refused by
					   the backend, or lost (below) */
	unsigned long long spooled;	/* records that went to the spool */
	unsigned long long lost;	/* dropped: the spool was full */
	unsigned long long depth;	/* records in the queue now */
	unsigned long long spool_depth;	/* records in the spool file now
					   (MongoDB: every daemon's) */
};

/* What became of a record. */
enum store_status {
	STORE_FAILED = 0,	/* not stored, never will be (logged) */
	STORE_WRITTEN,		/* committed to the store */
	STORE_SPOOLED,		/* committed to the local spool (MongoDB away),
				   written to the server later */
	STORE_LOST,		/* dropped because the spool is full (logged) */
};

/* A decided record its producer waits for (store_take_done()). */
struct store_done {
	unsigned long long tag;		/* as given to store_put_event_waited() */
	enum store_status status;
};

/* The kinds of records a process puts (store_open). */
#define STORE_EVENTS	0x1u	/* event-router */
#define STORE_RESULTS	0x2u	/* event-sub */

/*
 * Open the store the configuration names and start its writer thread.
 * The store "none" gives NULL with no error (the put functions accept
 * NULL).
 * Returns NULL with err[errsz] set when the backend cannot be opened.
 * kinds: what this process puts (STORE_EVENTS, STORE_RESULTS); both
 * daemons may share one MongoDB spool file, and each replays only its own
 * kinds from it.  queue_cap: records queued at most (0: STORE_QUEUE_DEFAULT).
 */
struct store *store_open(const struct cfg *cfg, unsigned kinds,
    size_t queue_cap, char *err, size_t errsz, int *failed);

/*
 * Queue an event.  Takes over what *ev holds (ev is cleared).  Blocks
 * while the queue is full.  With store NULL the event is released.
 */
void store_put_event(struct store *s, struct event *ev);
/*
 * Queue evs[0..n) in their order, as store_put_event() does each, taking
 * the queue's lock once for every STORE_PUT_MAX of them.
 */
void store_put_events(struct store *s, struct event *evs, size_t n);
/* Events store_put_events() queues under one taking of the lock. */
#define STORE_PUT_MAX 256
/*
 * Queue an event as store_put_event() (s not NULL) and have its fate
 * reported: once the writer has decided it, (tag, status) is queued for
 * store_take_done() and store_done_fd() is readable.  Every record put so
 * is reported exactly once, in the order they were put, unless the store
 * is closed first.  tag: the producer's, any value.
 */
void store_put_event_waited(struct store *s, struct event *ev,
    unsigned long long tag);
/*
 * Before the producer's loop waits (its before-wait hook): a record waited
 * for that found the writer idle has not woken it (two thread hand-offs
 * per acknowledgement: make bench's REQ/REP p99); it is written now, with
 * whatever else is queued, in one transaction in the producer's thread;
 * when the writer is at work it is woken instead.  store_flush() and
 * store_close() write such records too.  Returns 1 when it wrote them:
 * their fates can be taken at once (store_take_done()); 0 otherwise and
 * for NULL.
 */
int store_write_waited(struct store *s);
/*
 * A descriptor (an eventfd, owned by the store until store_close()) that
 * is readable while decided records wait to be taken: watch it for
 * reading (loop_add_fd()) and call store_take_done().  -1 when s is NULL.
 */
int store_done_fd(const struct store *s);
/*
 * Take up to max decided records into out[max], oldest first; returns how
 * many (0: none: a wake-up may find none).  The descriptor stops being
 * readable once all are taken.  From the producer's thread.
 */
size_t store_take_done(struct store *s, struct store_done *out, size_t max);

/* Queue a handler run (its strings copied).  Blocks while the queue is
 * full. */
void store_put_result(struct store *s, const struct run_result *r);

/* cfg's store.type: "sqlite", "mongodb", "none" (static). */
const char *store_type_name(const struct cfg *cfg);

/* Wait until everything queued so far is written or failed. */
void store_flush(struct store *s);
void store_get_stats(struct store *s, struct store_stats *st);
/*
 * Records settled so far: written, failed, spooled or lost (a count that
 * stops moving once the writer has nothing left; the daemons' idle ticks
 * watch it).  0 for NULL.
 */
unsigned long long store_settled(struct store *s);
/* Flush, stop the writer, close the backend.  NULL is a no-op. */
void store_close(struct store *s);

/*
 * Log how many "store ...: cannot record ..." lines were held back (at
 * most 5 every 10 s, for all stores of the process), once their 10 s are
 * over; else nothing.  The daemons call it from a timer, so that the
 * count of a burst of refusals is logged though no refusal follows.
 */
void store_log_flush(void);

/*
 * Release the process-wide state of the backends' libraries (for MongoDB:
 * mongoc_cleanup(), once, after every store is closed).  Call last in
 * main(); a no-op when no such library was set up.  No store can be opened
 * afterwards.
 */
void store_cleanup(void);

/*
 * Call first in main() of a program linked with the MongoDB backend.
 * libmongoc as Debian builds it initialises itself when it is loaded,
 * before main(), and keeps counters for mongoc-stat in the shared memory
 * file /dev/shm/mongoc-PID, which a process killed with SIGKILL leaves
 * behind; a later process given the same pid then logs "Falling back to
 * malloc for counters".  Unless MONGOC_DISABLE_SHM is set, this removes
 * that file, sets MONGOC_DISABLE_SHM=event-reactor and executes the
 * program again (/proc/self/exe, the same argv and pid), whose counters
 * then stay in its own memory.  In a program so executed, or any started
 * from /proc/self/exe (event-sub's Python workers), it names the process
 * (comm) after the program's file where the exec left "exe", and removes
 * MONGOC_DISABLE_SHM when its value is that one, so that the processes
 * the program starts do not inherit it.  Returns only when it did not
 * execute (or the exec failed: the process then goes on as before).
 */
void store_process_init(char **argv);

#endif
