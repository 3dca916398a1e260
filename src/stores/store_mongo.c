/*
 * store_mongo: the MongoDB backend, through mongo-c-driver.  The only
 * module that includes mongoc.h.
 *
 * Everything here runs on the store's writer thread (store.c), except
 * open/close and the URI check.  The routing path never waits on MongoDB:
 * store_mongo_open() does not connect; the writer thread does, and every
 * blocking step is bounded by the URI's serverSelectionTimeoutMS,
 * connectTimeoutMS and socketTimeoutMS (short defaults below when the URI
 * does not set them).
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
#include <errno.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bson_map.h"
#include "log.h"
#include "spool.h"
#include "store.h"
#include "store_backend.h"
#include "store_mongo.h"
#include "util.h"

/* Defaults applied when the URI does not set them (milliseconds). */
#define MG_SERVER_SELECTION_MS 2000
#define MG_CONNECT_MS 2000
#define MG_SOCKET_MS 10000
/* Spool replay: documents per bulk, and the retry backoff. */
#define MG_REPLAY_BATCH 1000
#define MG_BACKOFF_MIN_MS 250
#define MG_BACKOFF_MAX_MS 2000
/* How often an idle writer looks at the spool (rows from an earlier run). */
#define MG_IDLE_MS 1000
/* How long closing may spend replaying the spool to a reachable server. */
#define MG_CLOSE_REPLAY_MS 3000
/* mongoc's insert validation minus BSON_VALIDATE_EMPTY_KEYS: JSON allows
 * "" as a key and the server stores it; '$' and '.' are escaped already. */
#define MG_VALIDATE (BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL | \
    BSON_VALIDATE_DOLLAR_KEYS | BSON_VALIDATE_DOT_KEYS)

/* The spool's tag; 1 << tag is the kinds bit of store_open(). */
enum { COLL_EVENTS = 0, COLL_RESULTS = 1, COLL_N };
_Static_assert(STORE_EVENTS == 1u << COLL_EVENTS, "kinds bit");
_Static_assert(STORE_RESULTS == 1u << COLL_RESULTS, "kinds bit");
static const char *const coll_names[COLL_N] = { "events", "results" };

enum sink { SINK_OK, SINK_RETRY, SINK_DROP };

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

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct log_ratelimit driver_rl = { .interval = 10, .burst = 20 };
static int inited;
/* While parse_uri() runs on this thread: the driver's complaints go here,
 * into the error message, instead of the log. */
static __thread char *capture;
static __thread size_t capture_sz;

/* ---- process-wide: the driver's log and mongoc_init/cleanup ---- */

/* Driver messages come from our writer thread and the pool's monitor
 * threads: one lock around the shared rate limit. */
static void
driver_log(mongoc_log_level_t level, const char *domain, const char *msg,
    void *arg)
{
	enum log_level lvl;

	(void)arg;
	if (capture != NULL && level <= MONGOC_LOG_LEVEL_WARNING) {
		size_t used = strlen(capture);
		snprintf(capture + used, capture_sz - used, "%s%s",
		    used ? "; " : "", msg);
		return;
	}
	switch (level) {
	case MONGOC_LOG_LEVEL_ERROR:
	case MONGOC_LOG_LEVEL_CRITICAL:
		lvl = LOG_LVL_ERROR;
		break;
	case MONGOC_LOG_LEVEL_WARNING:
		lvl = LOG_LVL_WARNING;
		break;
	case MONGOC_LOG_LEVEL_MESSAGE:
	case MONGOC_LOG_LEVEL_INFO:
		lvl = LOG_LVL_INFO;
		break;
	case MONGOC_LOG_LEVEL_DEBUG:
		lvl = LOG_LVL_DEBUG;
		break;
	default:
		return;		/* TRACE: far too much */
	}
	if (lvl < log_get_level())
		return;
	pthread_mutex_lock(&log_mu);
	log_limited(&driver_rl, lvl, "mongoc %s: %s", domain, msg);
	pthread_mutex_unlock(&log_mu);
}

static void
log_setup(void)
{
	mongoc_log_set_handler(driver_log, NULL);
	mongoc_log_trace_disable();
}

static void
driver_init(void)
{
	pthread_once(&log_once, log_setup);
	mongoc_init();
	inited = 1;
}

static void
mg_cleanup(void)
{
	if (inited) {
		mongoc_cleanup();
		inited = 0;
	}
}

static void
mg_process_init(char **argv)
{
	char name[64];

	if (getenv("MONGOC_DISABLE_SHM") != NULL)
		return;
	/* the file the automatic mongoc_init() made, or one a dead process
	 * of this pid left; the mapping stays valid until the exec */
	snprintf(name, sizeof(name), "/mongoc-%ld", (long)getpid());
	if (shm_unlink(name) != 0 && errno != ENOENT)
		return;
	if (setenv("MONGOC_DISABLE_SHM", "1", 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	unsetenv("MONGOC_DISABLE_SHM");
}

/* ---- URI ---- */

/* MongoDB manual, "Naming Restrictions": no /\. "$*<>:|? or space, < 64
 * bytes. */
static int
check_db_name(const char *db, char *why, size_t whysz)
{
	if (db[0] == '\0' || strlen(db) >= 64) {
		snprintf(why, whysz, "database name \"%s\" must be 1 to 63 "
		    "bytes", db);
		return -1;
	}
	if (strpbrk(db, "/\\. \"$*<>:|?") != NULL) {
		snprintf(why, whysz, "database name \"%s\" contains one of "
		    "/\\. \"$*<>:|? (MongoDB naming restrictions)", db);
		return -1;
	}
	return 0;
}

static mongoc_uri_t *
parse_uri(const char *text, char *db, size_t dbsz, char *why, size_t whysz)
{
	bson_error_t error;
	mongoc_uri_t *uri;
	const char *name;

	char detail[512] = "";

	pthread_once(&log_once, log_setup);
	capture = detail;
	capture_sz = sizeof(detail);
	error.message[0] = '\0';
	uri = mongoc_uri_new_with_error(text, &error);
	capture = NULL;
	if (uri == NULL) {
		snprintf(why, whysz, "%s%s%s", error.message[0] ? error.message :
		    "not a MongoDB connection string", detail[0] ? ": " : "",
		    detail);
		return NULL;
	}
	if (detail[0] != '\0')
		log_warn("store mongodb: uri: %s", detail);
	name = mongoc_uri_get_database(uri);
	if (name == NULL || name[0] == '\0')
		name = STORE_MONGO_DEFAULT_DB;
	if (check_db_name(name, why, whysz) != 0) {
		mongoc_uri_destroy(uri);
		return NULL;
	}
	snprintf(db, dbsz, "%s", name);
	return uri;
}

int
store_mongo_check_uri(const char *text, char *why, size_t whysz)
{
	char db[128];
	mongoc_uri_t *uri = parse_uri(text, db, sizeof(db), why, whysz);

	if (uri == NULL)
		return -1;
	mongoc_uri_destroy(uri);
	return 0;
}

static void
default_int32(mongoc_uri_t *uri, const char *opt, int32_t v)
{
	if (!mongoc_uri_has_option(uri, opt))
		mongoc_uri_set_option_as_int32(uri, opt, v);
}

/* ---- connection, indexes ---- */

/* Pop the writer's client (once).  The pool starts its monitor then. */
static void
connect_client(struct mg *m)
{
	if (m->client != NULL)
		return;
	m->client = mongoc_client_pool_pop(m->pool);
	for (int i = 0; i < COLL_N; i++)
		m->coll[i] = mongoc_client_get_collection(m->client, m->db,
		    coll_names[i]);
}

/* Is this failure the network's or the server's state (try again)? */
static int
transient(const bson_error_t *e)
{
	return e->domain == MONGOC_ERROR_STREAM ||
	    e->domain == MONGOC_ERROR_SERVER_SELECTION ||
	    e->domain == MONGOC_ERROR_PROTOCOL ||
	    e->domain == MONGOC_ERROR_CLIENT;
}

static void
add_index(bson_t *list, const char *key, const char *name, long long ttl_s)
{
	bson_t ix, k;
	char idx[16];
	const char *ik;

	bson_uint32_to_string(bson_count_keys(list), &ik, idx, sizeof(idx));
	bson_append_document_begin(list, ik, -1, &ix);
	bson_append_document_begin(&ix, "key", 3, &k);
	bson_append_int32(&k, key, -1, 1);
	bson_append_document_end(&ix, &k);
	bson_append_utf8(&ix, "name", 4, name, -1);
	if (ttl_s > 0)
		bson_append_int32(&ix, "expireAfterSeconds", -1, (int32_t)ttl_s);
	bson_append_document_end(list, &ix);
}

/*
 * createIndexes for collection c, once per process: results.event_id
 * always; with store.ttl_days, TTL indexes on events.timestamp and
 * results.started_at.  Returns SINK_RETRY when the server could not be
 * reached (try again before the insert), SINK_OK otherwise (a refusal,
 * e.g. an existing index with other options, is logged, not retried).
 */
static enum sink
ensure_indexes(struct mg *m, int c, char *why, size_t whysz)
{
	long long ttl_s = (long long)(m->ttl_days * 86400.0 + 0.5);
	bson_t cmd = BSON_INITIALIZER, list, reply;
	bson_error_t error;
	int n = 0;

	if (m->indexed[c])
		return SINK_OK;
	BSON_APPEND_UTF8(&cmd, "createIndexes", coll_names[c]);
	bson_append_array_begin(&cmd, "indexes", -1, &list);
	if (c == COLL_RESULTS) {
		add_index(&list, "event_id", "event_id", 0);
		n++;
	}
	if (ttl_s > 0) {
		add_index(&list, c == COLL_EVENTS ? "timestamp" : "started_at",
		    c == COLL_EVENTS ? "timestamp_ttl" : "started_at_ttl", ttl_s);
		n++;
	}
	bson_append_array_end(&cmd, &list);
	if (n == 0) {
		bson_destroy(&cmd);
		m->indexed[c] = 1;
		return SINK_OK;
	}
	if (!mongoc_collection_write_command_with_opts(m->coll[c], &cmd, NULL,
	    &reply, &error)) {
		if (transient(&error)) {
			snprintf(why, whysz, "%s", error.message);
			bson_destroy(&reply);
			bson_destroy(&cmd);
			return SINK_RETRY;
		}
		log_error("store mongodb: cannot create the indexes of %s.%s: "
		    "%s (an index of the same name with other options? change "
		    "it with collMod or drop it); storing goes on", m->db,
		    coll_names[c], error.message);
	} else
		log_info("store mongodb: indexes of %s.%s ready%s", m->db,
		    coll_names[c], ttl_s > 0 ? " (TTL)" : "");
	bson_destroy(&reply);
	bson_destroy(&cmd);
	m->indexed[c] = 1;
	return SINK_OK;
}

/* ---- bulk insert ---- */

static void
log_drop(struct mg *m, const struct mg_doc *d)
{
	log_limited(&m->drop_rl, LOG_LVL_ERROR, "store mongodb: %s %s "
	    "refused, not retried: %s", d->coll == COLL_EVENTS ? "event" :
	    "result of event", d->id, d->why);
}

static void insert_run(struct mg *m, struct mg_doc **docs, size_t n);

/*
 * One unordered bulk insert of docs[0..n) (all of one collection); sets
 * each docs[i]->res.  A document the server reports in writeErrors is
 * DROP (or OK for E11000); the others are OK only when nInserted plus the
 * writeErrors account for every document, else RETRY (idempotent).
 */
static void
insert_run(struct mg *m, struct mg_doc **docs, size_t n)
{
	mongoc_bulk_operation_t *bulk;
	bson_t opts = BSON_INITIALIZER, iopts = BSON_INITIALIZER, reply;
	bson_error_t error;
	size_t *map = xcalloc(n, sizeof(*map)), nops = 0, i;
	int *seen = xcalloc(n, sizeof(*seen));
	long long inserted = 0, nerrors = 0;
	int wc_errors = 0;
	bson_iter_t it, ai, ei;
	char why[512] = "";
	int c = docs[0]->coll;

	if (ensure_indexes(m, c, why, sizeof(why)) == SINK_RETRY) {
		for (i = 0; i < n; i++) {
			docs[i]->res = SINK_RETRY;
			snprintf(docs[i]->why, sizeof(docs[i]->why), "%s", why);
		}
		goto out;
	}
	BSON_APPEND_BOOL(&opts, "ordered", false);
	BSON_APPEND_INT32(&iopts, "validate", MG_VALIDATE);
	bulk = mongoc_collection_create_bulk_operation_with_opts(m->coll[c],
	    &opts);
	for (i = 0; i < n; i++) {
		if (!mongoc_bulk_operation_insert_with_opts(bulk, &docs[i]->doc,
		    &iopts, &error)) {
			docs[i]->res = SINK_DROP;
			snprintf(docs[i]->why, sizeof(docs[i]->why), "%s",
			    error.message);
			seen[i] = 1;
			continue;
		}
		map[nops++] = i;
	}
	if (nops == 0) {
		mongoc_bulk_operation_destroy(bulk);
		goto out;
	}
	if (mongoc_bulk_operation_execute(bulk, &reply, &error)) {
		for (i = 0; i < nops; i++)
			docs[map[i]]->res = SINK_OK;
		bson_destroy(&reply);
		mongoc_bulk_operation_destroy(bulk);
		goto out;
	}
	mongoc_bulk_operation_destroy(bulk);
	if (error.domain == MONGOC_ERROR_BSON && nops > 1) {
		/* a client-side refusal of one document fails the bulk: find
		 * it by sending them one by one */
		bson_destroy(&reply);
		for (i = 0; i < nops; i++)
			insert_run(m, &docs[map[i]], 1);
		goto out;
	}
	if (bson_iter_init_find(&it, &reply, "nInserted") &&
	    BSON_ITER_HOLDS_NUMBER(&it))
		inserted = bson_iter_as_int64(&it);
	if (bson_iter_init_find(&it, &reply, "writeConcernErrors") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ai))
		while (bson_iter_next(&ai))
			wc_errors++;
	if (bson_iter_init_find(&it, &reply, "writeErrors") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ai)) {
		while (bson_iter_next(&ai)) {
			long long index = -1, code = 0;
			const char *msg = "";
			if (!BSON_ITER_HOLDS_DOCUMENT(&ai) ||
			    !bson_iter_recurse(&ai, &ei))
				continue;
			while (bson_iter_next(&ei)) {
				const char *k = bson_iter_key(&ei);
				if (strcmp(k, "index") == 0)
					index = bson_iter_as_int64(&ei);
				else if (strcmp(k, "code") == 0)
					code = bson_iter_as_int64(&ei);
				else if (strcmp(k, "errmsg") == 0 &&
				    BSON_ITER_HOLDS_UTF8(&ei))
					msg = bson_iter_utf8(&ei, NULL);
			}
			if (index < 0 || (size_t)index >= nops)
				continue;
			nerrors++;
			seen[map[index]] = 1;
			if (code == 11000)
				docs[map[index]]->res = SINK_OK;
			else {
				docs[map[index]]->res = SINK_DROP;
				snprintf(docs[map[index]]->why,
				    sizeof(docs[map[index]]->why),
				    "server error %lld: %s", code, msg);
			}
		}
	}
	for (i = 0; i < nops; i++) {
		struct mg_doc *d = docs[map[i]];
		if (seen[map[i]])
			continue;
		if (wc_errors == 0 && inserted + nerrors == (long long)nops)
			d->res = SINK_OK;
		else if (error.domain == MONGOC_ERROR_BSON) {
			d->res = SINK_DROP;	/* alone in its bulk (above) */
			snprintf(d->why, sizeof(d->why), "%s", error.message);
		} else {
			d->res = SINK_RETRY;
			snprintf(d->why, sizeof(d->why), "%s", error.message);
		}
	}
	bson_destroy(&reply);
out:
	bson_destroy(&opts);
	bson_destroy(&iopts);
	free(map);
	free(seen);
}

/* Insert docs in order, one bulk per run of one collection.  Stops at the
 * first RETRY (what follows is marked RETRY too, so order is kept). */
static void
insert_all(struct mg *m, struct mg_doc **docs, size_t n)
{
	size_t i = 0, j, k;

	connect_client(m);
	while (i < n) {
		for (j = i + 1; j < n && docs[j]->coll == docs[i]->coll; j++)
			;
		insert_run(m, docs + i, j - i);
		for (k = i; k < j; k++)
			if (docs[k]->res == SINK_RETRY)
				break;
		if (k < j) {
			for (k = j; k < n; k++) {
				docs[k]->res = SINK_RETRY;
				snprintf(docs[k]->why, sizeof(docs[k]->why),
				    "an earlier document must be retried");
			}
			return;
		}
		i = j;
	}
}

/* ---- up / down ---- */

static void
went_down(struct mg *m, const char *why)
{
	long long now = util_mono_ms();

	if (!m->down) {
		log_warn("store mongodb: server unavailable (%s); spooling to "
		    "%s until it is back", why, m->spool_path);
		m->backoff_ms = MG_BACKOFF_MIN_MS;
	} else {
		log_limited(&m->down_rl, LOG_LVL_WARNING, "store mongodb: still "
		    "unavailable (%s); %lld records in the spool", why,
		    store_spool_count(m->spool));
		m->backoff_ms *= 2;
		if (m->backoff_ms > MG_BACKOFF_MAX_MS)
			m->backoff_ms = MG_BACKOFF_MAX_MS;
	}
	m->down = 1;
	m->retry_at = now + m->backoff_ms;
}

static void
came_up(struct mg *m)
{
	if (m->down)
		log_info("store mongodb: server reachable again; replaying the "
		    "spool (%lld records)", store_spool_count(m->spool));
	m->down = 0;
	m->backoff_ms = MG_BACKOFF_MIN_MS;
}

/* ---- spool ---- */

/*
 * Append docs to the spool; set st[] (SPOOLED, LOST past the bound, FAILED
 * when the spool file itself fails).  st may be NULL (no status wanted).
 */
static void
spool_docs(struct mg *m, struct mg_doc **docs, size_t n,
    enum store_status **st)
{
	struct spool_item *items = xcalloc(n ? n : 1, sizeof(*items));
	long long room;
	size_t i, k = 0;
	char why[512];

	/* the bound counts every record in the file, both daemons' */
	room = m->spool_max - store_spool_count(m->spool);
	for (i = 0; i < n; i++) {
		if ((long long)k >= room) {
			m->lost++;
			*st[i] = STORE_LOST;
			log_limited(&m->lost_rl, LOG_LVL_ERROR, "store mongodb: "
			    "SPOOL FULL (%lld records, store.spool_max): %s %s "
			    "LOST; %llu records lost so far", m->spool_max,
			    docs[i]->coll == COLL_EVENTS ? "event" :
			    "result of event", docs[i]->id, m->lost);
			continue;
		}
		items[k].coll = docs[i]->coll;
		snprintf(items[k].id, sizeof(items[k].id), "%s", docs[i]->id);
		items[k].data = bson_get_data(&docs[i]->doc);
		items[k].len = docs[i]->doc.len;
		k++;
	}
	if (k > 0 && store_spool_append(m->spool, items, k, why,
	    sizeof(why)) != 0) {
		for (i = 0; i < n; i++)
			if (*st[i] != STORE_LOST) {
				*st[i] = STORE_FAILED;
				log_limited(&m->drop_rl, LOG_LVL_ERROR, "store "
				    "mongodb: cannot spool %s %s to %s: %s",
				    docs[i]->coll == COLL_EVENTS ? "event" :
				    "result of event", docs[i]->id,
				    m->spool_path, why);
			}
	} else if (k > 0) {
		for (i = 0; i < n; i++)
			if (*st[i] != STORE_LOST)
				*st[i] = STORE_SPOOLED;
		m->pending = 1;
	}
	free(items);
}

/* ---- the backend ---- */

static void
mg_write(void *be, struct store_rec **recs, size_t n, enum store_status *st)
{
	struct mg *m = be;
	struct mg_doc *docs = xcalloc(n, sizeof(*docs));
	struct mg_doc **send = xcalloc(n, sizeof(*send));
	enum store_status **sst = xcalloc(n, sizeof(*sst));
	size_t i, nsend = 0, nspool = 0;
	const char *retry_why = NULL;

	for (i = 0; i < n; i++) {
		struct mg_doc *d = &docs[i];
		enum bson_map_err e;

		if (recs[i]->kind == REC_EVENT) {
			d->coll = COLL_EVENTS;
			d->id = recs[i]->ev.id;
			e = bson_map_event(&recs[i]->ev, &d->doc, d->why,
			    sizeof(d->why));
		} else {
			bson_oid_t oid;
			bson_oid_init(&oid, NULL);
			d->coll = COLL_RESULTS;
			d->id = recs[i]->res.event_id ? recs[i]->res.event_id :
			    "-";
			e = bson_map_result(&recs[i]->res, &oid, &d->doc,
			    d->why, sizeof(d->why));
		}
		if (e != BM_OK) {
			st[i] = STORE_FAILED;
			log_drop(m, d);
			continue;
		}
		d->have = 1;
		send[nsend++] = d;
	}
	if (nsend > 0 && !m->down && !m->pending) {
		insert_all(m, send, nsend);
		for (i = 0; i < nsend; i++) {
			struct mg_doc *d = send[i];
			size_t at = (size_t)(d - docs);
			if (d->res == SINK_OK)
				st[at] = STORE_WRITTEN;
			else if (d->res == SINK_DROP) {
				st[at] = STORE_FAILED;
				log_drop(m, d);
			} else {
				if (retry_why == NULL)
					retry_why = d->why;
				send[nspool] = d;
				sst[nspool++] = &st[at];
			}
		}
	} else {
		for (i = 0; i < nsend; i++) {
			sst[i] = &st[send[i] - docs];
		}
		nspool = nsend;
	}
	if (retry_why != NULL)
		went_down(m, retry_why);
	if (nspool > 0)
		spool_docs(m, send, nspool, sst);
	for (i = 0; i < n; i++)
		if (docs[i].have)
			bson_destroy(&docs[i].doc);
	free(docs);
	free(send);
	free(sst);
}

/*
 * Replay the oldest spooled records (one batch).  Returns 1 when it made
 * progress and more may follow, 0 when the spool is empty, -1 when the
 * server is (still) away.
 */
static int
replay_batch(struct mg *m, struct store_tick *done)
{
	struct spool_item *items = xcalloc(MG_REPLAY_BATCH, sizeof(*items));
	struct mg_doc *docs = xcalloc(MG_REPLAY_BATCH, sizeof(*docs));
	struct mg_doc **ptrs = xcalloc(MG_REPLAY_BATCH, sizeof(*ptrs));
	char why[512];
	int n, i, rc = 1, handled = 0;

	n = store_spool_peek(m->spool, m->kinds, items, MG_REPLAY_BATCH, why,
	    sizeof(why));
	if (n < 0) {
		log_limited(&m->down_rl, LOG_LVL_ERROR, "store mongodb: cannot "
		    "read the spool %s: %s", m->spool_path, why);
		m->retry_at = util_mono_ms() + MG_BACKOFF_MAX_MS;
		rc = -1;
		goto out;
	}
	if (n == 0) {
		m->pending = 0;
		rc = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		docs[i].coll = items[i].coll == COLL_RESULTS ? COLL_RESULTS :
		    COLL_EVENTS;
		docs[i].id = items[i].id;
		/* a read-only view of the spooled bytes: never destroyed */
		if (!bson_init_static(&docs[i].doc, items[i].data,
		    items[i].len)) {
			docs[i].res = SINK_DROP;
			snprintf(docs[i].why, sizeof(docs[i].why), "corrupt "
			    "spool record %lld", items[i].seq);
			continue;
		}
		ptrs[handled++] = &docs[i];
	}
	if (handled > 0)
		insert_all(m, ptrs, (size_t)handled);
	/* remove the prefix that is settled (OK or DROP) */
	for (i = 0; i < n && docs[i].res != SINK_RETRY; i++) {
		if (docs[i].res == SINK_OK)
			done->written++;
		else {
			done->failed++;
			log_drop(m, &docs[i]);
		}
	}
	if (i > 0) {
		if (store_spool_remove(m->spool, m->kinds, items[0].seq,
		    items[i - 1].seq, why, sizeof(why)) != 0)
			log_limited(&m->down_rl, LOG_LVL_ERROR, "store mongodb: "
			    "cannot remove replayed records from the spool %s: "
			    "%s (they will be replayed again, harmlessly)",
			    m->spool_path, why);
		came_up(m);
	}
	m->pending = store_spool_waiting(m->spool, m->kinds) != 0;
	if (i < n) {
		went_down(m, docs[i].why);
		rc = -1;
	} else if (!m->pending) {
		log_info("store mongodb: spool replayed (%lld records left by "
		    "other daemons)", store_spool_count(m->spool));
		rc = 0;
	}
out:
	free(items);
	free(docs);
	free(ptrs);
	return rc;
}

static long
mg_tick(void *be, int closing, struct store_tick *done)
{
	struct mg *m = be;
	long long now = util_mono_ms(), until;
	int rc;

	if (closing) {
		until = now + MG_CLOSE_REPLAY_MS;
		while (!m->down && m->pending && util_mono_ms() < until)
			if (replay_batch(m, done) <= 0)
				break;
		if (store_spool_waiting(m->spool, m->kinds) != 0)
			log_warn("store mongodb: records stay in the spool %s (%lld"
			    " in it); they are replayed at the next start",
			    m->spool_path, store_spool_count(m->spool));
		return -1;
	}
	if (m->down && now < m->retry_at)
		return (long)(m->retry_at - now);
	if (!m->pending) {
		/* another process of our kind, or an earlier run, may have
		 * left some */
		m->pending = store_spool_waiting(m->spool, m->kinds) != 0;
		if (!m->pending)
			return MG_IDLE_MS;
	}
	rc = replay_batch(m, done);
	if (rc > 0)
		return 0;
	if (rc < 0) {
		now = util_mono_ms();
		return m->retry_at > now ? (long)(m->retry_at - now) :
		    MG_BACKOFF_MIN_MS;
	}
	return MG_IDLE_MS;
}

static void
mg_close(void *be)
{
	struct mg *m = be;

	if (m == NULL)
		return;
	for (int i = 0; i < COLL_N; i++)
		if (m->coll[i] != NULL)
			mongoc_collection_destroy(m->coll[i]);
	if (m->client != NULL)
		mongoc_client_pool_push(m->pool, m->client);
	if (m->pool != NULL)
		mongoc_client_pool_destroy(m->pool);
	if (m->uri != NULL)
		mongoc_uri_destroy(m->uri);
	store_spool_close(m->spool);
	if (m->lost > 0)
		log_error("store mongodb: %llu records were LOST because the "
		    "spool was full (store.spool_max %lld)", m->lost,
		    m->spool_max);
	free(m->spool_path);
	free(m);
}

static int
mg_open(const struct cfg *cfg, unsigned kinds, struct store_backend *out,
    char *err, size_t errsz)
{
	struct mg *m = xcalloc(1, sizeof(*m));
	char why[512];

	pthread_once(&init_once, driver_init);
	m->uri = parse_uri(cfg->store_uri, m->db, sizeof(m->db), why,
	    sizeof(why));
	if (m->uri == NULL) {
		snprintf(err, errsz, "store mongodb: uri \"%s\": %s",
		    cfg->store_uri, why);
		goto fail;
	}
	default_int32(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
	    MG_SERVER_SELECTION_MS);
	default_int32(m->uri, MONGOC_URI_CONNECTTIMEOUTMS, MG_CONNECT_MS);
	default_int32(m->uri, MONGOC_URI_SOCKETTIMEOUTMS, MG_SOCKET_MS);
	if (mongoc_uri_get_appname(m->uri) == NULL)
		mongoc_uri_set_appname(m->uri, "event-reactor");
	m->spool = store_spool_open(cfg->store_spool_path, err, errsz);
	if (m->spool == NULL)
		goto fail;
	m->spool_path = xstrdup(cfg->store_spool_path);
	m->spool_max = cfg->store_spool_max;
	m->kinds = kinds;
	m->pending = store_spool_waiting(m->spool, kinds) != 0;
	m->ttl_days = cfg->store_ttl_days;
	m->pool = mongoc_client_pool_new(m->uri);
	if (m->pool == NULL) {
		snprintf(err, errsz, "store mongodb: uri \"%s\": cannot create "
		    "a client pool (TLS options?)", cfg->store_uri);
		goto fail;
	}
	mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
	m->backoff_ms = MG_BACKOFF_MIN_MS;
	m->drop_rl.interval = m->lost_rl.interval = 10;
	m->drop_rl.burst = m->lost_rl.burst = 20;
	m->down_rl.interval = 30;
	m->down_rl.burst = 1;
	out->name = "mongodb";
	out->write = mg_write;
	out->tick = mg_tick;
	out->close = mg_close;
	out->be = m;
	log_info("store mongodb: database %s, spool %s (%lld records waiting)",
	    m->db, m->spool_path, store_spool_count(m->spool));
	return 0;
fail:
	mg_close(m);
	return -1;
}

const struct store_plugin store_mongo_plugin = {
	.name = "mongodb", .type = STORE_MONGODB, .open = mg_open,
	.process_init = mg_process_init, .cleanup = mg_cleanup,
};
