/*
 * store_read: event-sub's way back into the events a store holds, for its
 * catch-up (catchup.h; event-reactor(7), "Delivery promises").  A store
 * plugin that can be read back gives a reader (store_backend.h, read_open):
 *
 *   sqlite   the router's file attached to event-sub's journal (journal.c):
 *            the events in rowid order; a run is known by a join;
 *   mongodb  a client of its own (store_mongo_read.c): the events in _id
 *            order (an ObjectId: time, process, counter), a find of those
 *            after the position, sorted, limited; a run is known by a
 *            journal look-up per event.
 *
 * Every call blocks until the store answers (MongoDB: within the URI's
 * timeouts).  Errors: -1, the reason in error().  One thread: event-sub's
 * loop.
 */
#ifndef ER_STORE_READ_H
#define ER_STORE_READ_H

#include <stddef.h>

#include "event.h"

/*
 * A place in the store's order: a stored event, or before the first
 * ({0, ""}).  sqlite: seq is the events rowid (id its event's, "" when not
 * looked up); mongodb: seq is 0 and id the event's _id.  Ordered by seq,
 * then id (lower-case hex: an ObjectId's byte order); store_pos_cmp().
 */
struct store_pos {
	long long seq;
	char id[EVENT_ID_LEN + 1];
};

int store_pos_cmp(const struct store_pos *a, const struct store_pos *b);
/* For log lines: the rowid, or the id ("the start" when none). */
const char *store_pos_text(const struct store_pos *p, char *buf, size_t sz);

/* One stored event, valid during the callback. */
struct store_row {
	struct store_pos pos;
	const void *body;	/* the stamped event's text */
	size_t len;
	int known;		/* 1: the journal has runs of it QUEUED or
				   STARTED */
};

typedef int (*store_row_cb)(void *arg, const struct store_row *row);

struct store_reader {
	/* The last stored event into *pos ({0, ""}: none). */
	int (*last)(void *rd, struct store_pos *pos);
	/* The stored events after *after, in order, at most max:
	 * cb(arg, row) for each until it returns non-zero.  Returns the rows
	 * handed over. */
	int (*scan)(void *rd, const struct store_pos *after, int max,
	    store_row_cb cb, void *arg);
	/*
	 * The events after *after but the newest keep (last: the last
	 * stored event): *upto set to the last of them and the number of
	 * them the journal has no run of returned; none: *upto = *after, 0.
	 */
	long long (*past)(void *rd, const struct store_pos *after,
	    const struct store_pos *last, long long keep,
	    struct store_pos *upto);
	/* How many results of handler (of driver) the store holds for
	 * event_id. */
	long long (*results)(void *rd, const char *event_id,
	    const char *driver, size_t driver_len, const char *handler,
	    size_t handler_len);
	const char *(*error)(void *rd);
	void (*close)(void *rd);	/* NULL: nothing of its own */
	void *rd;
};

struct cfg;
struct journal;

/*
 * What cfg's store gives event-sub to read back, for a person ("FILE",
 * "mongodb database DB"), into buf[sz]; returns 0, or -1 when it gives
 * nothing (store.type none).
 */
int store_read_source(const struct cfg *cfg, char *buf, size_t sz);
/* The file of this host beside which event-sub keeps its journal by
 * default (sqlite: the store's file; mongodb: its spool), or NULL. */
const char *store_local_file(const struct cfg *cfg);
/*
 * Open the reader of cfg's store into *out, for journal j (the runs it
 * knows), or with j NULL for event-sub --replay: no row is known, results
 * and past are not to be called, and the store is read only (a sqlite
 * file is opened read only, never created).  Returns 0, or -1 with
 * err[errsz] set, or -2 when the store's file does not exist (j NULL:
 * err names it).  Close with store_read_close().
 */
int store_read_open(const struct cfg *cfg, struct journal *j,
    struct store_reader *out, char *err, size_t errsz);
void store_read_close(struct store_reader *r);

#endif
