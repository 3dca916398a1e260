/*
 * store_mongo_read: event-sub's reader of the MongoDB store (store_read.h),
 * on a client of its own, on event-sub's loop.  Only find and count
 * queries any MongoDB answers: the events after the position are
 * find({_id: {$gt: POS}}).sort({_id: 1}).limit(N); a position is an
 * event's _id (store_pos.id; seq stays 0).  With no join across the two
 * files, a row is known by a journal look-up, and the events past the
 * window by a count of the store's less the journal's.
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bson_map.h"
#include "journal.h"
#include "store_backend.h"
#include "store_mongo.h"
#include "store_mongo_write.h"
#include "util.h"

struct mr {
	mongoc_uri_t *uri;
	mongoc_client_t *client;
	mongoc_collection_t *events, *results;
	struct journal *j;
	char error[1024];
};

/* -1, with the driver's error. */
static int
mr_fail(struct mr *r, const char *what, const bson_error_t *e)
{
	snprintf(r->error, sizeof(r->error), "%s: %s", what, e->message);
	return -1;
}

/* {_id: {$gt: after}}, or {} from the start. */
static void
after_filter(bson_t *f, const struct store_pos *after)
{
	bson_oid_t oid;
	bson_t gt;

	bson_init(f);
	if (after->id[0] == '\0' || !bson_oid_is_valid(after->id,
	    strlen(after->id)))
		return;
	bson_oid_init_from_string(&oid, after->id);
	bson_append_document_begin(f, "_id", 3, &gt);
	bson_append_oid(&gt, "$gt", 3, &oid);
	bson_append_document_end(f, &gt);
}

/*
 * Find in the events by filter f, sorted by _id (dir 1 or -1), skip,
 * limit: cb(arg, doc) for each until it returns non-zero.  Returns the
 * documents handed over, or -1.
 */
static int
find_events(struct mr *r, const bson_t *f, int dir, long long skip,
    long long limit, int (*cb)(void *arg, const bson_t *doc), void *arg)
{
	bson_t opts = BSON_INITIALIZER, sort;
	bson_error_t e;
	const bson_t *doc;
	mongoc_cursor_t *cur;
	int n = 0, rc = 0;

	bson_append_document_begin(&opts, "sort", 4, &sort);
	bson_append_int32(&sort, "_id", 3, dir);
	bson_append_document_end(&opts, &sort);
	if (skip > 0)
		bson_append_int64(&opts, "skip", 4, skip);
	bson_append_int64(&opts, "limit", 5, limit);
	cur = mongoc_collection_find_with_opts(r->events, f, &opts, NULL);
	while (rc == 0 && mongoc_cursor_next(cur, &doc)) {
		n++;
		rc = cb(arg, doc);
	}
	if (rc == 0 && mongoc_cursor_error(cur, &e))
		n = mr_fail(r, "cannot read the events", &e);
	mongoc_cursor_destroy(cur);
	bson_destroy(&opts);
	return n;
}

/* The _id of doc into pos (a find's callback); 1: stop. */
static int
take_id(void *arg, const bson_t *doc)
{
	struct store_pos *pos = arg;
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_OID(&it))
		bson_oid_to_string(bson_iter_oid(&it), pos->id);
	return 1;
}

static int
mr_last(void *rd, struct store_pos *pos)
{
	bson_t f = BSON_INITIALIZER;
	int n;

	memset(pos, 0, sizeof(*pos));
	n = find_events(rd, &f, -1, 0, 1, take_id, pos);
	bson_destroy(&f);
	return n < 0 ? -1 : 0;
}

/* A scan under way. */
struct scan {
	struct mr *r;
	store_row_cb cb;
	void *arg;
	int rows;
};

/* One event document to its row (find's callback). */
static int
scan_doc(void *arg, const bson_t *doc)
{
	struct scan *sc = arg;
	struct store_row row;
	char *text;
	int rc;

	memset(&row, 0, sizeof(row));
	take_id(&row.pos, doc);
	if (row.pos.id[0] == '\0')
		return 0;		/* $gt on an ObjectId finds only those */
	/* not an event document: handed over empty, so that it is logged
	 * as not an event and the scan moves past it */
	text = bson_map_event_text(doc, &row.len);
	row.body = text != NULL ? text : "";
	row.known = sc->r->j != NULL &&
	    journal_known(sc->r->j, row.pos.id) > 0;
	sc->rows++;
	rc = sc->cb(sc->arg, &row);
	free(text);
	return rc;
}

static int
mr_scan(void *rd, const struct store_pos *after, int max, store_row_cb cb,
    void *arg)
{
	struct scan sc = { rd, cb, arg, 0 };
	bson_t f;
	int n;

	after_filter(&f, after);
	n = find_events(rd, &f, 1, 0, max, scan_doc, &sc);
	bson_destroy(&f);
	return n < 0 ? -1 : sc.rows;
}

/* count_documents(f) in coll, or -1. */
static long long
count(struct mr *r, mongoc_collection_t *coll, const bson_t *f)
{
	bson_error_t e;
	int64_t n = mongoc_collection_count_documents(coll, f, NULL, NULL,
	    NULL, &e);

	return n < 0 ? mr_fail(r, "cannot count", &e) : n;
}

static long long
mr_past(void *rd, const struct store_pos *after,
    const struct store_pos *last, long long keep, struct store_pos *upto)
{
	struct mr *r = rd;
	long long n, known;
	bson_t f;

	*upto = *after;
	if (store_pos_cmp(last, after) <= 0)
		return 0;
	after_filter(&f, after);
	n = count(r, r->events, &f);
	if (n > keep && find_events(r, &f, -1, keep, 1, take_id, upto) < 0)
		n = -1;
	bson_destroy(&f);
	if (n <= keep)
		return n < 0 ? -1 : 0;
	known = journal_events_between(r->j, after->id, upto->id);
	if (known < 0) {
		snprintf(r->error, sizeof(r->error), "journal: %s",
		    journal_error(r->j));
		return -1;
	}
	n -= keep;
	return n > known ? n - known : 0;
}

static long long
mr_results(void *rd, const char *event_id, const char *driver,
    size_t driver_len, const char *handler, size_t handler_len)
{
	struct mr *r = rd;
	bson_t f = BSON_INITIALIZER, ne;
	bson_oid_t oid;
	long long n;

	/* as bson_map_result() stores it */
	if (strlen(event_id) == EVENT_ID_LEN &&
	    bson_oid_is_valid(event_id, EVENT_ID_LEN)) {
		bson_oid_init_from_string(&oid, event_id);
		bson_append_oid(&f, "event_id", -1, &oid);
	} else
		bson_append_utf8(&f, "event_id", -1, event_id, -1);
	bson_append_utf8(&f, "driver", -1, driver, (int)driver_len);
	bson_append_utf8(&f, "handler", -1, handler, (int)handler_len);
	/* a replay's runs (event-sub --replay) are not the catch-up's */
	bson_append_document_begin(&f, "replayed", -1, &ne);
	bson_append_bool(&ne, "$ne", -1, 1);
	bson_append_document_end(&f, &ne);
	n = count(r, r->results, &f);
	bson_destroy(&f);
	return n;
}

static const char *
mr_error(void *rd)
{
	return ((struct mr *)rd)->error;
}

static void
mr_close(void *rd)
{
	struct mr *r = rd;

	if (r->events != NULL)
		mongoc_collection_destroy(r->events);
	if (r->results != NULL)
		mongoc_collection_destroy(r->results);
	if (r->client != NULL)
		mongoc_client_destroy(r->client);
	if (r->uri != NULL)
		mongoc_uri_destroy(r->uri);
	free(r);
}

int
store_mongo_read_open(const void *conf, struct journal *j,
    struct store_reader *out, char *err, size_t errsz)
{
	const struct store_mongo_conf *c = conf;
	struct mr *r = xcalloc(1, sizeof(*r));
	bson_error_t e;
	char db[128];

	r->j = j;
	if ((r->uri = store_mongo_uri(c->uri, db, sizeof(db), err,
	    errsz)) == NULL)
		goto fail;
	if ((r->client = mongoc_client_new_from_uri_with_error(r->uri,
	    &e)) == NULL) {
		snprintf(err, errsz, "store mongodb: uri \"%s\": %s", c->uri,
		    e.message);
		goto fail;
	}
	mongoc_client_set_error_api(r->client, MONGOC_ERROR_API_VERSION_2);
	r->events = mongoc_client_get_collection(r->client, db, "events");
	r->results = mongoc_client_get_collection(r->client, db, "results");
	out->last = mr_last;
	out->scan = mr_scan;
	out->past = mr_past;
	out->results = mr_results;
	out->error = mr_error;
	out->close = mr_close;
	out->rd = r;
	return 0;
fail:
	mr_close(r);
	return -1;
}
