/* store_sqlite_schema: the SQLite store's tables.  See store_sqlite_schema.h. */
#include <sqlite3.h>
#include <stdio.h>

#include "log.h"
#include "store_sqlite_file.h"
#include "store_sqlite_schema.h"

const char store_sqlite_schema_common[] =
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

/*
 * Version 5's events.  The three fields the body repeats cost the writer
 * about a quarter of its time an event when stored in columns of their own
 * (make bench, alternating runs, 2026-12-07); the view reads them from the
 * body (JSON1, built into SQLite since 3.38) when asked.  The router puts
 * namespace, event_type and timestamp in every body it stores.
 */
static const char events_v5[] =
    "CREATE TABLE IF NOT EXISTS event_log ("
    " id TEXT PRIMARY KEY,"
    " body TEXT NOT NULL);"
    "CREATE VIEW IF NOT EXISTS events"
    " (rowid, id, namespace, event_type, timestamp, body) AS"
    " SELECT rowid, id, json_extract(body, '$.namespace'),"
    " json_extract(body, '$.event_type'),"
    " CAST(json_extract(body, '$.timestamp') AS REAL), body"
    " FROM event_log;";

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

/* Add to results the columns of versions 3 and 4 it lacks. */
static int
add_columns(sqlite3 *db, char *why, size_t whysz)
{
	static const char *const added[] = { "redelivered", "replayed" };
	char sql[128];

	for (size_t i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
		int has = 0;
		if (query_int(db, "SELECT count(*) FROM pragma_table_info(?1) "
		    "WHERE name = ?2", "results", added[i], &has) != SQLITE_OK) {
			snprintf(why, whysz, "%s", sqlite3_errmsg(db));
			return -1;
		}
		if (has)
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE results ADD COLUMN %s "
		    "INTEGER NOT NULL DEFAULT 0", added[i]);
		if (store_sqlite_exec(db, sql, why, whysz) != 0)
			return -1;
	}
	return 0;
}

/*
 * The steps of store_sqlite_schema() after BEGIN IMMEDIATE: 0, or -1 with
 * why set.  *dropped: 1 when the index events_timestamp went.
 */
static int
bring_up(sqlite3 *db, int *version, int *dropped, char *why, size_t whysz)
{
	char sql[64];
	int table = 0;

	if (query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1 "
	    "AND type = 'table'", "events", NULL, &table) != SQLITE_OK ||
	    query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1 "
	    "AND type = 'index'", "events_timestamp", NULL,
	    dropped) != SQLITE_OK) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(db));
		return -1;
	}
	*version = table ? 4 : STORE_SQLITE_SCHEMA;
	if ((!table && store_sqlite_exec(db, events_v5, why, whysz) != 0) ||
	    add_columns(db, why, whysz) != 0 ||
	    (*dropped && store_sqlite_exec(db, "DROP INDEX events_timestamp",
	    why, whysz) != 0))
		return -1;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", *version);
	return store_sqlite_exec(db, sql, why, whysz);
}

int
store_sqlite_schema(sqlite3 *db, const char *path, int *version, char *err,
    size_t errsz)
{
	char why[256] = "";
	int dropped = 0;

	*version = STORE_SQLITE_SCHEMA;
	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", why, sizeof(why)) == 0) {
		if (bring_up(db, version, &dropped, why, sizeof(why)) == 0 &&
		    store_sqlite_exec(db, "COMMIT", why, sizeof(why)) == 0) {
			if (dropped)
				log_info("store sqlite: %s: index "
				    "events_timestamp dropped (schema version "
				    "%d: nothing reads it, and every event "
				    "paid for it)", path, *version);
			return 0;
		}
		store_sqlite_exec(db, "ROLLBACK", NULL, 0);
	}
	snprintf(err, errsz, "store sqlite %s: cannot bring the schema to "
	    "version %d: %s", path, *version, why);
	return -1;
}
