/*
 * store_mongo_write: the MongoDB store's writes (store_mongo_write.h):
 * indexes, unordered bulk inserts and their outcomes, the server's up and
 * down, and the spool while it is away.  Runs on the store's writer
 * thread.
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bson_map.h"
#include "log.h"
#include "spool.h"
#include "store_backend.h"
#include "store_mongo_write.h"
#include "util.h"

/* mongoc's insert validation minus BSON_VALIDATE_EMPTY_KEYS: JSON allows
 * "" as a key and the server stores it; '$' and '.' are escaped already. */
#define MG_VALIDATE (BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL | \
    BSON_VALIDATE_DOLLAR_KEYS | BSON_VALIDATE_DOT_KEYS)


static const char *const coll_names[COLL_N] = { "events", "results" };

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

void
store_mongo_log_drop(struct mg *m, const struct mg_doc *d)
{
	log_limited(&m->drop_rl, LOG_LVL_ERROR, "store mongodb: %s %s "
	    "refused, not retried: %s", d->coll == COLL_EVENTS ? "event" :
	    "result of event", d->id, d->why);
}

/*
 * The writeErrors of a failed bulk's reply: each names a document by its
 * index among the nops sent, docs[map[index]].  E11000 (duplicate key on
 * _id) is OK, it is there already; any other is DROP.  Marks each in
 * seen[] and returns how many there were.
 */
static long long
read_write_errors(const bson_t *reply, struct mg_doc **docs,
    const size_t *map, size_t nops, int *seen)
{
	bson_iter_t it, ai, ei;
	long long nerrors = 0;

	if (!bson_iter_init_find(&it, reply, "writeErrors") ||
	    !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ai))
		return 0;
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
	return nerrors;
}

/*
 * Settle docs[map[0..nops)] after a bulk that failed with error and
 * reply: those in writeErrors as read_write_errors() says; the others
 * are OK only when nInserted plus the writeErrors account for every
 * document and no write concern failed, DROP for a client-side refusal
 * (alone in its bulk, insert_run()), else RETRY (idempotent).
 */
static void
settle_failed(struct mg_doc **docs, const size_t *map, size_t nops,
    int *seen, const bson_t *reply, const bson_error_t *error)
{
	long long inserted = 0, nerrors;
	int wc_errors = 0;
	bson_iter_t it, ai;

	if (bson_iter_init_find(&it, reply, "nInserted") &&
	    BSON_ITER_HOLDS_NUMBER(&it))
		inserted = bson_iter_as_int64(&it);
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ai))
		while (bson_iter_next(&ai))
			wc_errors++;
	nerrors = read_write_errors(reply, docs, map, nops, seen);
	for (size_t i = 0; i < nops; i++) {
		struct mg_doc *d = docs[map[i]];
		if (seen[map[i]])
			continue;
		if (wc_errors == 0 && inserted + nerrors == (long long)nops)
			d->res = SINK_OK;
		else if (error->domain == MONGOC_ERROR_BSON) {
			d->res = SINK_DROP;	/* alone in its bulk (above) */
			snprintf(d->why, sizeof(d->why), "%s", error->message);
		} else {
			d->res = SINK_RETRY;
			snprintf(d->why, sizeof(d->why), "%s", error->message);
		}
	}
}

/*
 * One unordered bulk insert of docs[0..n) (all of one collection); sets
 * each docs[i]->res: a document the driver refuses before sending is
 * DROP; when the bulk fails, settle_failed() says.
 */
static void
insert_run(struct mg *m, struct mg_doc **docs, size_t n)
{
	mongoc_bulk_operation_t *bulk;
	bson_t opts = BSON_INITIALIZER, iopts = BSON_INITIALIZER, reply;
	bson_error_t error;
	size_t *map = xcalloc(n, sizeof(*map)), nops = 0, i;
	int *seen = xcalloc(n, sizeof(*seen));
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
	settle_failed(docs, map, nops, seen, &reply, &error);
	bson_destroy(&reply);
out:
	bson_destroy(&opts);
	bson_destroy(&iopts);
	free(map);
	free(seen);
}

void
store_mongo_insert_all(struct mg *m, struct mg_doc **docs, size_t n)
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

void
store_mongo_went_down(struct mg *m, const char *why)
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

void
store_mongo_came_up(struct mg *m)
{
	if (m->down)
		log_info("store mongodb: server reachable again; replaying the "
		    "spool (%lld records)", store_spool_count(m->spool));
	m->down = 0;
	m->backoff_ms = MG_BACKOFF_MIN_MS;
}

/* ---- spool ---- */

void
store_mongo_spool_counted(struct mg *m)
{
	long long n = store_spool_count(m->spool);

	if (n >= 0)
		atomic_store(&m->spool_n, n);
}

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
	if (k > 0)
		store_mongo_spool_counted(m);
	free(items);
}

/* ---- the backend ---- */

void
store_mongo_write(void *be, struct store_rec **recs, size_t n, enum store_status *st)
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
			store_mongo_log_drop(m, d);
			continue;
		}
		d->have = 1;
		send[nsend++] = d;
	}
	if (nsend > 0 && !m->down && !m->pending) {
		store_mongo_insert_all(m, send, nsend);
		for (i = 0; i < nsend; i++) {
			struct mg_doc *d = send[i];
			size_t at = (size_t)(d - docs);
			if (d->res == SINK_OK)
				st[at] = STORE_WRITTEN;
			else if (d->res == SINK_DROP) {
				st[at] = STORE_FAILED;
				store_mongo_log_drop(m, d);
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
		store_mongo_went_down(m, retry_why);
	if (nspool > 0)
		spool_docs(m, send, nspool, sst);
	for (i = 0; i < n; i++)
		if (docs[i].have)
			bson_destroy(&docs[i].doc);
	free(docs);
	free(send);
	free(sst);
}
