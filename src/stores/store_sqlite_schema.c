/* store_sqlite_schema: the SQLite store's tables.  See store_sqlite_schema.h. */
#include <sqlite3.h>
#include <stdio.h>

#include "log.h"
#include "store_sqlite_file.h"
#include "store_sqlite_schema.h"

/*
 * namespace, event_type and timestamp repeat the body's, as the router
 * decoded them.  They cost the writer about a quarter of its time an
 * event (make bench, 2026-12-07), but a view reading them from the body
 * with SQLite's JSON functions instead disagrees with the router on valid
 * events: a key written with an escape (SQLite 3.40's paths do not decode
 * it: NULL), a body nested deeper than SQLite's JSON depth (the whole
 * query fails).
 */
/*
 * events.id is no key: nothing of the daemons looks an event up by it (they
 * read events in rowid order, the order they were stored; runs are found
 * through results_event_id), and its index cost the router's writer about
 * a third of its time an event (make bench, 2026-12-08).  The router mints
 * every id.  Files made before keep the key (SQLite drops one only by
 * copying the table); an operator who looks events up by id makes the
 * index (event-reactor(7)).
 */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS events ("
    " id TEXT NOT NULL,"
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
    " data TEXT,"
    " redelivered INTEGER NOT NULL DEFAULT 0,"
    " replayed INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS results_event_id ON results(event_id);";

/* The first column of the one row sql gives (SQLITE_NULL: no row). */
static int
query_int(sqlite3 *db, const char *sql, const char *a, const char *b,
    int *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
		if (b != NULL)
			sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		*out = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(s);
	return rc;
}

/* The columns of results that versions 3 and 4 added. */
static const char *const results_added[] = {
	"redelivered", "replayed", NULL,
};

/* Add to results the columns of versions 3 and 4 it lacks. */
static int
add_columns(sqlite3 *db, char *why, size_t whysz)
{
	char sql[128];

	for (const char *const *c = results_added; *c != NULL; c++) {
		int has = 0;
		if (query_int(db, "SELECT count(*) FROM pragma_table_info(?1) "
		    "WHERE name = ?2 COLLATE NOCASE", "results", *c,
		    &has) != SQLITE_OK) {
			snprintf(why, whysz, "%s", sqlite3_errmsg(db));
			return -1;
		}
		if (has)
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE results ADD COLUMN %s "
		    "INTEGER NOT NULL DEFAULT 0", *c);
		if (store_sqlite_exec(db, sql, why, whysz) != 0)
			return -1;
	}
	return 0;
}

/* The columns of version 1's tables, which every later version has. */
static const char *const events_cols[] = {
	"id", "namespace", "event_type", "timestamp", "body", NULL,
};
static const char *const results_cols[] = {
	"event_id", "driver", "handler", "status", "exit_code", "signal",
	"started_at", "duration_ms", "stdout", "stderr", "error", "data", NULL,
};

/* Whether name is one of cols (NULL-terminated), as SQLite compares
 * column names: without regard to case. */
static int
among(const char *name, const char *const *cols)
{
	for (; *cols != NULL; cols++)
		if (sqlite3_stricmp(name, *cols) == 0)
			return 1;
	return 0;
}

/*
 * Whether table, when the file has something of that name, is not one
 * the store can write: a view (or an index), a table without one of
 * cols, or with a column neither in cols nor in added (NULL: none) that
 * may not be NULL and has no default.  1 with why set, else 0.
 */
static int
foreign(sqlite3 *db, const char *table, const char *const *cols,
    const char *const *added, char *why, size_t whysz)
{
	sqlite3_stmt *st = NULL;
	int n = 0, has = 0, bad = 0;

	if (query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1 "
	    "COLLATE NOCASE AND type IN ('view', 'index')", table, NULL,
	    &n) == SQLITE_OK && n > 0) {
		snprintf(why, whysz, "its %s is a view or an index, not the "
		    "store's table", table);
		return 1;
	}
	if (query_int(db, "SELECT count(*) FROM pragma_table_info(?1)", table,
	    NULL, &n) != SQLITE_OK || n == 0)
		return 0;
	for (const char *const *c = cols; *c != NULL; c++)
		if (query_int(db, "SELECT count(*) FROM pragma_table_info(?1) "
		    "WHERE name = ?2 COLLATE NOCASE", table, *c,
		    &has) == SQLITE_OK && has == 0) {
			snprintf(why, whysz, "its table %s is not the store's "
			    "(it has no column %s)", table, *c);
			return 1;
		}
	/* NOT NULL, or a key column of a WITHOUT ROWID table; no default but
	 * NULL; not the INTEGER PRIMARY KEY of a rowid table (the rowid) */
	if (sqlite3_prepare_v2(db, "SELECT c.name FROM pragma_table_info(?1) "
	    "c, (SELECT wr, (SELECT count(*) FROM pragma_table_info(?1) WHERE "
	    "pk > 0) AS npk FROM pragma_table_list WHERE name = ?1 COLLATE "
	    "NOCASE AND schema = 'main') t WHERE (c.\"notnull\" OR (c.pk > 0 "
	    "AND t.wr)) AND (c.dflt_value IS NULL OR upper(c.dflt_value) = "
	    "'NULL') AND NOT (c.pk = 1 AND t.npk = 1 AND upper(c.type) = "
	    "'INTEGER' AND NOT t.wr)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		while (!bad && sqlite3_step(st) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st,
			    0);
			if (name != NULL && !among(name, cols) &&
			    (added == NULL || !among(name, added))) {
				snprintf(why, whysz, "its table %s is not the "
				    "store's (its column %s may not be NULL "
				    "and has no default; the store does not "
				    "fill it)", table, name);
				bad = 1;
			}
		}
	}
	sqlite3_finalize(st);
	return bad;
}

/*
 * Whether the name of the store's index results_event_id is taken by
 * something else: CREATE INDEX IF NOT EXISTS would keep that.  The index
 * must lead with event_id in SQLite's own collation, on every row (not
 * partial), and not be UNIQUE (an event has a run for each handler): else
 * every look-up of an event's runs reads all of results, or a run's row
 * is refused.  1 with why set, else 0.
 */
static int
foreign_index(sqlite3 *db, char *why, size_t whysz)
{
	int taken = 0, ours = 0;

	if (query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1 "
	    "COLLATE NOCASE", "results_event_id", NULL, &taken) != SQLITE_OK ||
	    taken == 0 ||
	    query_int(db, "SELECT count(*) FROM sqlite_master m, "
	    "pragma_index_list(m.tbl_name) l WHERE m.name = ?1 COLLATE NOCASE "
	    "AND m.type = 'index' AND m.tbl_name = 'results' COLLATE NOCASE "
	    "AND l.name = m.name AND NOT l.\"unique\" AND NOT l.partial AND "
	    "EXISTS (SELECT 1 FROM pragma_index_xinfo(m.name) x WHERE x.seqno "
	    "= 0 AND x.name = 'event_id' COLLATE NOCASE AND x.coll = 'BINARY' "
	    "COLLATE NOCASE)",
	    "results_event_id", NULL, &ours) != SQLITE_OK || ours > 0)
		return 0;
	snprintf(why, whysz, "its results_event_id is not the store's index "
	    "(on every row of results, by event_id, not unique)");
	return 1;
}

/*
 * Whether table's rows would clash or be looked up wrong: key (events.id,
 * results.event_id) compared in another collation than SQLite's own (a
 * look-up by it could not use an index), or, for results (unique set),
 * any UNIQUE index or key, WITHOUT ROWID's included (an event has a run
 * for each handler, and more when run again).  1 with why set, else 0.
 */
static int
foreign_keys(sqlite3 *db, const char *table, const char *key, int unique,
    char *why, size_t whysz)
{
	const char *coll = NULL;
	int n = 0;

	if (sqlite3_table_column_metadata(db, "main", table, key, NULL, &coll,
	    NULL, NULL, NULL) == SQLITE_OK && coll != NULL &&
	    sqlite3_stricmp(coll, "BINARY") != 0) {
		snprintf(why, whysz, "its %s.%s compares in collation %s, not "
		    "SQLite's own (BINARY)", table, key, coll);
		return 1;
	}
	if (unique && query_int(db, "SELECT count(*) FROM pragma_index_list(?1) "
	    "WHERE \"unique\"", table, NULL, &n) == SQLITE_OK && n > 0) {
		snprintf(why, whysz, "its table %s has a UNIQUE index or key (an "
		    "event has a run for each handler, and one more each time "
		    "it is run again: rows would be refused)", table);
		return 1;
	}
	return 0;
}

/* The version check, and the tables of a file not made by the store: 1
 * with why set (refused), 0, or -1 with why SQLite's error. */
static int
refused(sqlite3 *db, char *why, size_t whysz)
{
	int version = 0;

	if (query_int(db, "SELECT user_version FROM pragma_user_version",
	    NULL, NULL, &version) != SQLITE_OK) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(db));
		return -1;
	}
	if (version > STORE_SQLITE_SCHEMA) {
		snprintf(why, whysz, "the file is of schema version %d, made "
		    "by a later release; this one knows versions up to %d",
		    version, STORE_SQLITE_SCHEMA);
		return 1;
	}
	return foreign(db, "events", events_cols, NULL, why, whysz) ||
	    foreign(db, "results", results_cols, results_added, why, whysz) ||
	    foreign_keys(db, "events", "id", 0, why, whysz) ||
	    foreign_keys(db, "results", "event_id", 1, why, whysz) ||
	    foreign_index(db, why, whysz);
}

int
store_sqlite_schema_check(sqlite3 *db, char *why, size_t whysz)
{
	char reason[256];

	switch (refused(db, reason, sizeof(reason))) {
	case 0:
		return 0;
	case -1:	/* an error: the steps after say it, but for a lock
			 * held past the busy timeout, which they would wait
			 * out and then write */
		if (sqlite3_errcode(db) != SQLITE_BUSY)
			return 0;
	}
	snprintf(why, whysz, "cannot bring the schema to version %d: %s",
	    STORE_SQLITE_SCHEMA, reason);
	return -1;
}

/*
 * The steps of store_sqlite_schema() after BEGIN IMMEDIATE: 0, or -1 with
 * why set.  *dropped: 1 when the index events_timestamp went.
 */
static int
bring_up(sqlite3 *db, int *dropped, char *why, size_t whysz)
{
	char sql[64];

	/* again, in the transaction: another process may have written */
	if (refused(db, why, whysz) != 0)
		return -1;
	if (store_sqlite_exec(db, schema_sql, why, whysz) != 0)
		return -1;
	/* version 3's index; another table's of that name is not ours */
	if (query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1 "
	    "COLLATE NOCASE AND type = 'index' AND tbl_name = 'events' COLLATE "
	    "NOCASE",
	    "events_timestamp", NULL, dropped) != SQLITE_OK) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(db));
		return -1;
	}
	if (add_columns(db, why, whysz) != 0 ||
	    (*dropped && store_sqlite_exec(db, "DROP INDEX events_timestamp",
	    why, whysz) != 0))
		return -1;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    STORE_SQLITE_SCHEMA);
	return store_sqlite_exec(db, sql, why, whysz);
}

int
store_sqlite_schema(sqlite3 *db, const char *path, char *err, size_t errsz)
{
	char why[256] = "";
	int dropped = 0;

	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", why, sizeof(why)) == 0) {
		if (bring_up(db, &dropped, why, sizeof(why)) == 0 &&
		    store_sqlite_exec(db, "COMMIT", why, sizeof(why)) == 0) {
			if (dropped)
				log_info("store sqlite: %s: index "
				    "events_timestamp dropped (schema version "
				    "%d: nothing reads it, and every event "
				    "paid for it)", path, STORE_SQLITE_SCHEMA);
			return 0;
		}
		store_sqlite_exec(db, "ROLLBACK", NULL, 0);
	}
	snprintf(err, errsz, "store sqlite %s: cannot bring the schema to "
	    "version %d: %s", path, STORE_SQLITE_SCHEMA, why);
	return -1;
}
