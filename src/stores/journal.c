/* journal: event-sub's record of its runs.  See journal.h. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "store_sqlite_file.h"
#include "util.h"

/*
 * Pages of the journal: a commit writes each page it changed to the WAL,
 * and a commit comes before every round of runs starts; small pages keep
 * that write small (make bench: pyfunc dispatch).
 */
#define JOURNAL_PAGE 4096

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS runs ("
    " event_id TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " PRIMARY KEY (event_id, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS position ("
    " k INTEGER PRIMARY KEY CHECK (k = 0),"
    " seq INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO position VALUES (0, 0);"
    "PRAGMA user_version = 1;";

enum { S_GET, S_SET, S_RESULTS, S_POS, S_SCAN, S_LAST, S_UNKNOWN, S_PRUNE, S_COUNT };

static const char *const sql[S_COUNT] = {
	[S_GET] = "SELECT state FROM runs WHERE event_id = ?1 AND key = ?2",
	[S_SET] = "INSERT OR REPLACE INTO runs VALUES (?1, ?2, ?3)",
	[S_RESULTS] = "SELECT count(*) FROM ev.results WHERE event_id = ?1 "
	    "AND driver = ?2 AND handler = ?3",
	[S_POS] = "UPDATE position SET seq = ?1 WHERE k = 0",
	[S_SCAN] = "SELECT e.rowid, e.id, e.body, EXISTS (SELECT 1 FROM runs "
	    "r WHERE r.event_id = e.id AND r.state IN (1, 2)) FROM ev.events e "
	    "WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2",
	[S_LAST] = "SELECT rowid, id FROM ev.events ORDER BY rowid DESC "
	    "LIMIT 1",
	[S_UNKNOWN] = "SELECT count(*) FROM ev.events e WHERE e.rowid > ?1 "
	    "AND e.rowid <= ?2 AND NOT EXISTS (SELECT 1 FROM runs r WHERE "
	    "r.event_id = e.id)",
	/* ids begin with their time in 8 hex digits: in the order of time */
	[S_PRUNE] = "DELETE FROM runs WHERE event_id < ?1",
};

struct journal {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	int events;		/* the events file is attached */
	int in_txn;
	long long pos;
	char error[512];
};

const char *
journal_error(const struct journal *j)
{
	return j->error;
}

/* -1, with SQLite's message as the error. */
static int
fail(struct journal *j, const char *what)
{
	snprintf(j->error, sizeof(j->error), "%s: %s", what,
	    sqlite3_errmsg(j->db));
	return -1;
}

static int
prepare(struct journal *j, char *err, size_t errsz)
{
	for (int i = 0; i < S_COUNT; i++) {
		if (!j->events && (i == S_SCAN || i == S_LAST ||
		    i == S_UNKNOWN || i == S_RESULTS))
			continue;
		if (sqlite3_prepare_v3(j->db, sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &j->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errsz, "%s", sqlite3_errmsg(j->db));
			return -1;
		}
	}
	return 0;
}

/* Attach the router's events file (its schema made by the store). */
static int
attach(struct journal *j, const char *events_path, char *err, size_t errsz)
{
	sqlite3_stmt *a = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "ATTACH DATABASE ?1 AS ev", -1, &a,
	    NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(j->db));
		return -1;
	}
	sqlite3_bind_text(a, 1, events_path, -1, SQLITE_STATIC);
	rc = sqlite3_step(a);
	sqlite3_finalize(a);
	if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "%s: %s", events_path,
		    sqlite3_errmsg(j->db));
		return -1;
	}
	j->events = 1;
	return 0;
}

struct journal *
journal_open(const char *path, const char *events_path, char *err,
    size_t errsz)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char why[512];
	sqlite3_stmt *p = NULL;

	if (store_sqlite_file_open(path, schema, JOURNAL_PAGE, "journal",
	    &j->db, err, errsz) != 0)
		goto fail;
	/* what the last process left under way: it died (or was stopped
	 * before it could run it) */
	if (store_sqlite_exec(j->db, "PRAGMA main.locking_mode = EXCLUSIVE",
	    why, sizeof(why)) != 0 ||
	    store_sqlite_exec(j->db, "UPDATE runs SET state = state + 3 "
	    "WHERE state IN (1, 2)", why, sizeof(why)) != 0 ||
	    (events_path != NULL && attach(j, events_path, why,
	    sizeof(why)) != 0) ||
	    prepare(j, why, sizeof(why)) != 0) {
		snprintf(err, errsz, "journal %s: %s", path, why);
		goto fail;
	}
	if (sqlite3_prepare_v2(j->db, "SELECT seq FROM position", -1, &p,
	    NULL) == SQLITE_OK && sqlite3_step(p) == SQLITE_ROW)
		j->pos = sqlite3_column_int64(p, 0);
	sqlite3_finalize(p);
	return j;
fail:
	journal_close(j);
	return NULL;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(j->st[i]);
	sqlite3_close(j->db);
	free(j);
}

static int
begin(struct journal *j)
{
	if (j->in_txn)
		return 0;
	/* deferred: IMMEDIATE would take the write lock of the attached
	 * events file too, and wait for the router's writer */
	if (store_sqlite_exec(j->db, "BEGIN", j->error,
	    sizeof(j->error)) != 0)
		return -1;
	j->in_txn = 1;
	return 0;
}

int
journal_commit(struct journal *j)
{
	if (!j->in_txn)
		return 0;
	j->in_txn = 0;
	if (store_sqlite_exec(j->db, "COMMIT", j->error,
	    sizeof(j->error)) != 0) {
		store_sqlite_exec(j->db, "ROLLBACK", NULL, 0);
		return -1;
	}
	return 0;
}

/* Step s once, reset; returns the sqlite3_step() code. */
static int
step_once(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

enum journal_state
journal_get(struct journal *j, const char *event_id, const char *key)
{
	sqlite3_stmt *s = j->st[S_GET];
	enum journal_state st = JOURNAL_NONE;

	sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		st = (enum journal_state)sqlite3_column_int(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return st;
}

int
journal_set(struct journal *j, const char *event_id, const char *key,
    enum journal_state st)
{
	sqlite3_stmt *s = j->st[S_SET];

	if (begin(j) != 0)
		return -1;
	sqlite3_bind_text(s, 1, event_id, EVENT_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, (int)st);
	if (step_once(s) != SQLITE_DONE)
		return fail(j, "cannot record a run");
	return 0;
}

long long
journal_position(const struct journal *j)
{
	return j->pos;
}

int
journal_set_position(struct journal *j, long long seq)
{
	sqlite3_stmt *s = j->st[S_POS];

	if (seq == j->pos)
		return 0;
	if (begin(j) != 0)
		return -1;
	sqlite3_bind_int64(s, 1, seq);
	if (step_once(s) != SQLITE_DONE)
		return fail(j, "cannot record the position");
	j->pos = seq;
	return 0;
}

int
journal_scan(struct journal *j, long long after, int max,
    int (*cb)(void *arg, const struct journal_row *row), void *arg)
{
	sqlite3_stmt *s = j->st[S_SCAN];
	struct journal_row row;
	int n = 0, rc;

	if (!j->events)
		return 0;
	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.seq = sqlite3_column_int64(s, 0);
		row.id = (const char *)sqlite3_column_text(s, 1);
		row.body = sqlite3_column_text(s, 2);
		row.len = (size_t)sqlite3_column_bytes(s, 2);
		row.known = sqlite3_column_int(s, 3);
		if (row.id == NULL || row.body == NULL)
			continue;
		n++;
		if (cb(arg, &row) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return fail(j, "cannot read the events");
	return n;
}

/* One integer from statement i with up to two bindings; -1 on an error. */
static long long
query_int(struct journal *j, int i, int nb, long long a, long long b,
    const char *what)
{
	sqlite3_stmt *s = j->st[i];
	long long v = 0;
	int rc;

	if (nb > 0)
		sqlite3_bind_int64(s, 1, a);
	if (nb > 1)
		sqlite3_bind_int64(s, 2, b);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_type(s, 0) == SQLITE_NULL ? -2 :
		    sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return fail(j, what);
	return v;
}

int
journal_last(struct journal *j, long long *seq, char id[])
{
	sqlite3_stmt *s = j->st[S_LAST];
	const char *t;
	int rc;

	*seq = 0;
	id[0] = '\0';
	if (!j->events)
		return 0;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(s, 0);
		t = (const char *)sqlite3_column_text(s, 1);
		if (t != NULL && strlen(t) == EVENT_ID_LEN)
			memcpy(id, t, EVENT_ID_LEN + 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(j, "cannot read the events");
	return 0;
}

long long
journal_unknown(struct journal *j, long long after, long long upto)
{
	if (!j->events)
		return 0;
	return query_int(j, S_UNKNOWN, 2, after, upto,
	    "cannot count the events");
}

long long
journal_results(struct journal *j, const char *event_id, const char *driver,
    size_t driver_len, const char *handler, size_t handler_len)
{
	sqlite3_stmt *s = j->st[S_RESULTS];
	long long n = -1;

	if (!j->events)
		return 0;
	sqlite3_bind_text(s, 1, event_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, driver, (int)driver_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, handler, (int)handler_len, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (n < 0)
		return fail(j, "cannot read the results");
	return n;
}

long long
journal_prune(struct journal *j, long long t)
{
	sqlite3_stmt *s = j->st[S_PRUNE];
	char below[16];

	if (begin(j) != 0)
		return -1;
	snprintf(below, sizeof(below), "%08llx", t);
	sqlite3_bind_text(s, 1, below, -1, SQLITE_TRANSIENT);
	if (step_once(s) != SQLITE_DONE)
		return fail(j, "cannot forget old runs");
	return sqlite3_changes64(j->db);
}
