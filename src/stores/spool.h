/*
 * spool: the MongoDB store's local spool (store_mongo.c), where records
 * wait while the server is away (event-reactor(7), "MongoDB").  A local SQLite
 * table of opaque records (here, BSON documents MongoDB could not take
 * yet), read back in the order appended.  Several processes may share one
 * file (WAL mode, store_sqlite_file.h); seq orders the records; coll is
 * the caller's tag, and mask (bit 1 << coll) selects whose records a
 * reader takes.
 *
 * A spool is used by one thread at a time (the store's writer thread).
 */
#ifndef ER_SPOOL_H
#define ER_SPOOL_H

#include <stddef.h>

#include "event.h"

struct store_spool;

struct spool_item {
	long long seq;
	int coll;			/* caller's tag (0..30) */
	char id[EVENT_ID_LEN + 1];	/* event id, for log lines */
	const void *data;		/* valid until the next spool call */
	size_t len;
};

/* Open (create) the spool file path.  NULL with err set on failure. */
struct store_spool *store_spool_open(const char *path, char *err,
    size_t errsz);
/* Records in the spool, every tag and process (O(1)); -1 on error. */
long long store_spool_count(struct store_spool *sp);
/* Records of mask in the spool (a scan of them: for a start or a stop);
 * -1 on error. */
long long store_spool_count_of(struct store_spool *sp, unsigned mask);
/* 1 when records of mask wait, 0 when none, -1 on error. */
int store_spool_waiting(struct store_spool *sp, unsigned mask);
/*
 * Append n items in one transaction (their seq is ignored).  Returns 0, or
 * -1 with why set (nothing appended).
 */
int store_spool_append(struct store_spool *sp, const struct spool_item *items,
    size_t n, char *why, size_t whysz);
/*
 * Read up to max of the oldest items of mask into items[] (data points
 * into memory owned by the spool until the next call).  Returns the count
 * (0: none), or -1 with why set.
 */
int store_spool_peek(struct store_spool *sp, unsigned mask,
    struct spool_item *items, size_t max, char *why, size_t whysz);
/* Remove the items of mask with seq in [first, last].  Returns 0 or -1. */
int store_spool_remove(struct store_spool *sp, unsigned mask, long long first,
    long long last, char *why, size_t whysz);
/* Close the file and free what peek handed out.  NULL is a no-op. */
void store_spool_close(struct store_spool *sp);

#endif
