/*
 * store_sqlite: the embedded backend.  WAL mode, so event-router and
 * event-sub can write the same file (each waits up to busy_timeout for the
 * other's transaction) while readers never block.  synchronous=NORMAL: in
 * WAL mode a committed group survives a crash of the process; only a power
 * loss can take back the last groups (SQLite docs, "PRAGMA synchronous").
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "store.h"
#include "util.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 10000

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS events ("
    " id TEXT PRIMARY KEY,"
    " namespace TEXT NOT NULL,"
    " event_type TEXT NOT NULL,"
    " timestamp REAL NOT NULL,"
    " body TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS results ("
    " event_id TEXT NOT NULL,"
    " driver TEXT NOT NULL,"
    " handler TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " exit_code INTEGER,"
    " signal INTEGER,"
    " started_at REAL NOT NULL,"
    " duration_ms REAL NOT NULL,"
    " stdout TEXT,"
    " stderr TEXT,"
    " error TEXT,"
    " data TEXT);"
    "CREATE INDEX IF NOT EXISTS results_event_id ON results(event_id);"
    "CREATE INDEX IF NOT EXISTS events_timestamp ON events(timestamp);"
    "PRAGMA user_version = 1;";

struct sq {
	sqlite3 *db;
	sqlite3_stmt *ins_event;
	sqlite3_stmt *ins_result;
	char *path;
};

static int
exec(sqlite3 *db, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s, size_t n)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, (int)n, SQLITE_STATIC);
}

static int
insert(struct sq *q, struct store_rec *r, char *why, size_t whysz)
{
	sqlite3_stmt *st;
	int rc;

	if (r->kind == REC_EVENT) {
		st = q->ins_event;
		bind_text(st, 1, r->ev.id, EVENT_ID_LEN);
		bind_text(st, 2, r->ev.namespace, strlen(r->ev.namespace));
		bind_text(st, 3, r->ev.event_type, strlen(r->ev.event_type));
		sqlite3_bind_double(st, 4, r->ev.timestamp);
		bind_text(st, 5, r->ev.json, r->ev.json_len);
	} else {
		const struct store_result *x = &r->res;
		st = q->ins_result;
		bind_text(st, 1, x->event_id, strlen(x->event_id));
		bind_text(st, 2, x->driver, strlen(x->driver));
		bind_text(st, 3, x->handler, strlen(x->handler));
		bind_text(st, 4, x->status, strlen(x->status));
		if (x->has_exit_code)
			sqlite3_bind_int(st, 5, x->exit_code);
		else
			sqlite3_bind_null(st, 5);
		if (x->signal)
			sqlite3_bind_int(st, 6, x->signal);
		else
			sqlite3_bind_null(st, 6);
		sqlite3_bind_double(st, 7, x->started_at);
		sqlite3_bind_double(st, 8, x->duration_ms);
		bind_text(st, 9, x->out, x->out_len);
		bind_text(st, 10, x->err, x->err_len);
		bind_text(st, 11, x->error, x->error ? strlen(x->error) : 0);
		bind_text(st, 12, x->data, x->data ? strlen(x->data) : 0);
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(q->db));
		return -1;
	}
	return 0;
}

static int
sq_write(void *be, struct store_rec **recs, size_t n, int *ok)
{
	struct sq *q = be;
	char why[512];
	size_t i;

	if (exec(q->db, "BEGIN IMMEDIATE", why, sizeof(why)) != 0) {
		for (i = 0; i < n; i++)
			store_log_failure("sqlite", recs[i], why);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (insert(q, recs[i], why, sizeof(why)) == 0)
			ok[i] = 1;
		else
			store_log_failure("sqlite", recs[i], why);
	}
	if (exec(q->db, "COMMIT", why, sizeof(why)) != 0) {
		char ignore[64];
		exec(q->db, "ROLLBACK", ignore, sizeof(ignore));
		for (i = 0; i < n; i++) {
			if (ok[i])
				store_log_failure("sqlite", recs[i], why);
			ok[i] = 0;
		}
		return -1;
	}
	return 0;
}

static void
sq_close(void *be)
{
	struct sq *q = be;

	if (q == NULL)
		return;
	sqlite3_finalize(q->ins_event);
	sqlite3_finalize(q->ins_result);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
}

/* Create the directory holding path when it is missing (one level). */
static void
make_parent(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');

	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) == 0)
			log_info("store sqlite: created directory %s", dir);
	}
	free(dir);
}

int
store_sqlite_open(const char *path, struct store_backend *out, char *err,
    size_t errsz)
{
	struct sq *q = xcalloc(1, sizeof(*q));
	char why[512];
	int rc;

	make_parent(path);
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "store sqlite %s: %s", path,
		    q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
	if (exec(q->db, "PRAGMA journal_mode=WAL", why, sizeof(why)) != 0 ||
	    exec(q->db, "PRAGMA synchronous=NORMAL", why, sizeof(why)) != 0 ||
	    exec(q->db, "BEGIN IMMEDIATE", why, sizeof(why)) != 0 ||
	    exec(q->db, schema, why, sizeof(why)) != 0 ||
	    exec(q->db, "COMMIT", why, sizeof(why)) != 0) {
		snprintf(err, errsz, "store sqlite %s: %s", path, why);
		goto fail;
	}
	if (sqlite3_prepare_v2(q->db, "INSERT INTO events (id, namespace, "
	    "event_type, timestamp, body) VALUES (?, ?, ?, ?, ?)", -1,
	    &q->ins_event, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "INSERT INTO results (event_id, driver, "
	    "handler, status, exit_code, signal, started_at, duration_ms, "
	    "stdout, stderr, error, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?)", -1, &q->ins_result, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "store sqlite %s: %s", path,
		    sqlite3_errmsg(q->db));
		goto fail;
	}
	q->path = xstrdup(path);
	out->name = "sqlite";
	out->write = sq_write;
	out->close = sq_close;
	out->be = q;
	log_info("store sqlite: %s (schema version %d)", path, SCHEMA_VERSION);
	return 0;
fail:
	sq_close(q);
	return -1;
}
