/*
 * store_mongo_write: the MongoDB store's state (struct mg) and its writes,
 * for store_mongo.c above it (the driver, the URI, open and close, the
 * spool's replay), store_mongo_write.c and event-sub's reader
 * store_mongo_read.c.  For those three files only: it includes mongoc.h.
 *
 * Outcomes of a bulk insert, per document (the sink's OK / RETRY / DROP):
 *   OK     inserted, or "duplicate key" (E11000) on _id: it is already
 *          there (a replay after a lost reply), which is what we wanted;
 *   DROP   refused for what it is: over 16 MiB or nested too deep (checked
 *          before sending, bson_map.h), a client-side validation failure,
 *          or a per-document writeError from the server.  Logged once with
 *          its event id, counted, never retried;
 *   RETRY  anything else: server selection, network, not primary, a write
 *          concern error, a command error.  The documents go to the
 *          spool, and every later record goes there too, behind them, until
 *          the spool is empty again: order is kept.
 * Replays are idempotent: every document carries its _id (events: the
 * event id; results: an ObjectId made once, before the first attempt).
 */
#ifndef ER_STORE_MONGO_WRITE_H
#define ER_STORE_MONGO_WRITE_H

#include <mongoc/mongoc.h>
#include <stdatomic.h>
#include <stddef.h>

#include "log.h"
#include "spool.h"
#include "store.h"
#include "store_backend.h"

/* The spool's tag; 1 << tag is the kinds bit of store_open(). */
enum { COLL_EVENTS = 0, COLL_RESULTS = 1, COLL_N };
_Static_assert(STORE_EVENTS == 1u << COLL_EVENTS, "kinds bit");
_Static_assert(STORE_RESULTS == 1u << COLL_RESULTS, "kinds bit");

enum sink { SINK_OK, SINK_RETRY, SINK_DROP };

/* The retry backoff while the server is away (milliseconds). */
#define MG_BACKOFF_MIN_MS 250
#define MG_BACKOFF_MAX_MS 2000

struct mg {
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	mongoc_client_t *client;	/* popped by the writer thread */
	mongoc_collection_t *coll[COLL_N];
	char db[128];
	double ttl_days;
	int indexed[COLL_N];		/* createIndexes done */
	struct store_spool *spool;
	char *spool_path;
	long long spool_max;
	_Atomic long long spool_n;	/* records in the spool file (every
					   daemon's), as last counted; read
					   by any thread (mg_spool_depth) */
	unsigned kinds;			/* ours: 1 << COLL_EVENTS ... */
	int pending;			/* ours may wait in the spool */
	int down;			/* last attempt: RETRY */
	long backoff_ms;
	long long retry_at;		/* monotonic ms */
	unsigned long long lost;
	struct log_ratelimit drop_rl, lost_rl, down_rl;
};

/* One document on its way: built once, then sent or spooled. */
struct mg_doc {
	int coll;
	const char *id;			/* event id, for log lines */
	bson_t doc;
	int have;			/* doc is initialised */
	enum sink res;
	char why[512];
};

/* Count the spool's records again into m->spool_n (the writer thread). */
void store_mongo_spool_counted(struct mg *m);
/*
 * Insert docs in order, one bulk per run of one collection; sets each
 * docs[i]->res.  Stops at the first RETRY (what follows is marked RETRY
 * too, so order is kept).  Connects first when not yet connected.
 */
void store_mongo_insert_all(struct mg *m, struct mg_doc **docs, size_t n);
/* Log (rate-limited) a document refused for good (DROP), with d->why. */
void store_mongo_log_drop(struct mg *m, const struct mg_doc *d);
/* The server could not take a write (RETRY, why): spool until it is back,
 * trying again after a backoff (m->retry_at).  Logs the first time. */
void store_mongo_went_down(struct mg *m, const char *why);
/* A replay went through: the server is back, the backoff starts over. */
void store_mongo_came_up(struct mg *m);
/*
 * The connection string text as the store takes it (store_mongo.c): the
 * driver initialised, the database into db[dbsz], the short timeouts
 * and the appname set when it does not set them.  NULL with err[errsz]
 * set ("store mongodb: uri ...: why") when it is not one.
 */
mongoc_uri_t *store_mongo_uri(const char *text, char *db, size_t dbsz,
    char *err, size_t errsz);
/* event-sub's reader of the stored events (store_backend.h, read_open;
 * store_mongo_read.c). */
int store_mongo_read_open(const void *conf, struct journal *j,
    struct store_reader *out, char *err, size_t errsz);
/* The backend's write (store_backend.h): insert, or spool while down. */
void store_mongo_write(void *be, struct store_rec **recs, size_t n,
    enum store_status *st);

#endif
