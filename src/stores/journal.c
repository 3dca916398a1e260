/* journal: event-sub's record of its runs.  See journal.h. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "store_read.h"
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
    " seq INTEGER NOT NULL,"
    " id TEXT NOT NULL DEFAULT '');"
    "INSERT OR IGNORE INTO position (k, seq) VALUES (0, 0);"
    "PRAGMA user_version = 1;";

/* A journal of before the position had an id (sqlite stores only). */
static const char add_id[] =
    "ALTER TABLE position ADD COLUMN id TEXT NOT NULL DEFAULT ''";

enum { S_GET, S_SET, S_POS, S_PRUNE, S_KNOWN, S_BETWEEN,
	/* the attached events file's (journal_attach()); a replay's reader
	 * (journal_open_reader()) has them but S_RESULTS */
	S_SCAN, S_LAST, S_UNKNOWN, S_RESULTS, S_COUNT };

static const char *const sql[S_COUNT] = {
	[S_GET] = "SELECT state FROM runs WHERE event_id = ?1 AND key = ?2",
	[S_SET] = "INSERT OR REPLACE INTO runs VALUES (?1, ?2, ?3)",
	[S_POS] = "UPDATE position SET seq = ?1, id = ?2 WHERE k = 0",
	/* ids begin with their time in 8 hex digits: in the order of time */
	[S_PRUNE] = "DELETE FROM runs WHERE event_id < ?1",
	[S_KNOWN] = "SELECT EXISTS (SELECT 1 FROM runs WHERE event_id = ?1 "
	    "AND state IN (1, 2))",
	[S_BETWEEN] = "SELECT count(DISTINCT event_id) FROM runs WHERE "
	    "event_id > ?1 AND event_id <= ?2",
	/* a replay's rows (event-sub --replay) are not the catch-up's */
	[S_RESULTS] = "SELECT count(*) FROM ev.results WHERE event_id = ?1 "
	    "AND driver = ?2 AND handler = ?3 AND replayed = 0",
	[S_SCAN] = "SELECT e.rowid, e.id, e.body, EXISTS (SELECT 1 FROM runs "
	    "r WHERE r.event_id = e.id AND r.state IN (1, 2)) FROM ev.events e "
	    "WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2",
	[S_LAST] = "SELECT rowid, id FROM ev.events ORDER BY rowid DESC "
	    "LIMIT 1",
	[S_UNKNOWN] = "SELECT count(*) FROM ev.events e WHERE e.rowid > ?1 "
	    "AND e.rowid <= ?2 AND NOT EXISTS (SELECT 1 FROM runs r WHERE "
	    "r.event_id = e.id)",
};

struct journal {
	sqlite3 *db;
	sqlite3_stmt *st[S_COUNT];
	int in_txn;
	struct store_pos pos;
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

/* Prepare statements [from, to). */
static int
prepare(struct journal *j, int from, int to, char *err, size_t errsz)
{
	for (int i = from; i < to; i++)
		if (sqlite3_prepare_v3(j->db, sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &j->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errsz, "%s", sqlite3_errmsg(j->db));
			return -1;
		}
	return 0;
}

/* The position's id column, on a journal that has none yet. */
static int
migrate(struct journal *j, char *err, size_t errsz)
{
	sqlite3_stmt *p = NULL;
	int have = sqlite3_prepare_v2(j->db, "SELECT id FROM position", -1,
	    &p, NULL) == SQLITE_OK;

	sqlite3_finalize(p);
	return have ? 0 : store_sqlite_exec(j->db, add_id, err, errsz);
}

/* The position the journal holds into j->pos. */
static void
read_position(struct journal *j)
{
	sqlite3_stmt *p = NULL;
	const char *id;

	if (sqlite3_prepare_v2(j->db, "SELECT seq, id FROM position", -1, &p,
	    NULL) == SQLITE_OK && sqlite3_step(p) == SQLITE_ROW) {
		j->pos.seq = sqlite3_column_int64(p, 0);
		id = (const char *)sqlite3_column_text(p, 1);
		if (id != NULL && strlen(id) == EVENT_ID_LEN)
			memcpy(j->pos.id, id, EVENT_ID_LEN + 1);
	}
	sqlite3_finalize(p);
}

struct journal *
journal_open(const char *path, char *err, size_t errsz)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char why[512];

	if (store_sqlite_file_open(path, schema, NULL, JOURNAL_PAGE, "journal",
	    &j->db, err, errsz) != 0)
		goto fail;
	/* what the last process left under way: it died (or was stopped
	 * before it could run it) */
	if (store_sqlite_exec(j->db, "PRAGMA main.locking_mode = EXCLUSIVE",
	    why, sizeof(why)) != 0 ||
	    migrate(j, why, sizeof(why)) != 0 ||
	    store_sqlite_exec(j->db, "UPDATE runs SET state = state + 3 "
	    "WHERE state IN (1, 2)", why, sizeof(why)) != 0 ||
	    prepare(j, 0, S_SCAN, why, sizeof(why)) != 0) {
		snprintf(err, errsz, "journal %s: %s", path, why);
		goto fail;
	}
	read_position(j);
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

void
journal_position(const struct journal *j, struct store_pos *pos)
{
	*pos = j->pos;
}

int
journal_set_position(struct journal *j, const struct store_pos *pos)
{
	sqlite3_stmt *s = j->st[S_POS];

	if (store_pos_cmp(pos, &j->pos) == 0)
		return 0;
	if (begin(j) != 0)
		return -1;
	sqlite3_bind_int64(s, 1, pos->seq);
	sqlite3_bind_text(s, 2, pos->id, -1, SQLITE_STATIC);
	if (step_once(s) != SQLITE_DONE)
		return fail(j, "cannot record the position");
	j->pos = *pos;
	return 0;
}

/* One integer from statement i with up to two bindings a, b (integers,
 * or texta, textb when not NULL); -1 on an error. */
static long long
query_int(struct journal *j, int i, int nb, long long a, long long b,
    const char *texta, const char *textb, const char *what)
{
	sqlite3_stmt *s = j->st[i];
	long long v = 0;
	int rc;

	if (nb > 0 && texta != NULL)
		sqlite3_bind_text(s, 1, texta, -1, SQLITE_STATIC);
	else if (nb > 0)
		sqlite3_bind_int64(s, 1, a);
	if (nb > 1 && textb != NULL)
		sqlite3_bind_text(s, 2, textb, -1, SQLITE_STATIC);
	else if (nb > 1)
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
journal_known(struct journal *j, const char *event_id)
{
	return query_int(j, S_KNOWN, 1, 0, 0, event_id, NULL,
	    "cannot read the runs");
}

long long
journal_events_between(struct journal *j, const char *after,
    const char *upto)
{
	return query_int(j, S_BETWEEN, 2, 0, 0, after, upto,
	    "cannot count the runs");
}

/* ---- the sqlite store's reader (store_read.h): its file attached ---- */

static int
sq_scan(void *rd, const struct store_pos *after, int max, store_row_cb cb,
    void *arg)
{
	struct journal *j = rd;
	sqlite3_stmt *s = j->st[S_SCAN];
	struct store_row row;
	const char *id;
	int n = 0, rc;

	sqlite3_bind_int64(s, 1, after->seq);
	sqlite3_bind_int(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.pos.seq = sqlite3_column_int64(s, 0);
		id = (const char *)sqlite3_column_text(s, 1);
		row.body = sqlite3_column_text(s, 2);
		row.len = (size_t)sqlite3_column_bytes(s, 2);
		row.known = sqlite3_column_int(s, 3);
		if (id == NULL || row.body == NULL)
			continue;
		snprintf(row.pos.id, sizeof(row.pos.id), "%s", id);
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

static int
sq_last(void *rd, struct store_pos *pos)
{
	struct journal *j = rd;
	sqlite3_stmt *s = j->st[S_LAST];
	const char *t;
	int rc;

	memset(pos, 0, sizeof(*pos));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		pos->seq = sqlite3_column_int64(s, 0);
		t = (const char *)sqlite3_column_text(s, 1);
		if (t != NULL && strlen(t) == EVENT_ID_LEN)
			memcpy(pos->id, t, EVENT_ID_LEN + 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(j, "cannot read the events");
	return 0;
}

/* Rowids count up by one per event: the newest keep are past last -
 * keep. */
static long long
sq_past(void *rd, const struct store_pos *after,
    const struct store_pos *last, long long keep, struct store_pos *upto)
{
	*upto = *after;
	if (last->seq - after->seq <= keep)
		return 0;
	memset(upto, 0, sizeof(*upto));
	upto->seq = last->seq - keep;
	return query_int(rd, S_UNKNOWN, 2, after->seq, upto->seq, NULL, NULL,
	    "cannot count the events");
}

static long long
sq_results(void *rd, const char *event_id, const char *driver,
    size_t driver_len, const char *handler, size_t handler_len)
{
	struct journal *j = rd;
	sqlite3_stmt *s = j->st[S_RESULTS];
	long long n = -1;

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

static const char *
sq_error(void *rd)
{
	return journal_error(rd);
}

/* Attach name (a path, or a URI on a connection that takes them) as ev;
 * shown: the file, for err. */
static int
attach(struct journal *j, const char *name, const char *shown, int to,
    struct store_reader *out, char *err, size_t errsz)
{
	sqlite3_stmt *a = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "ATTACH DATABASE ?1 AS ev", -1, &a,
	    NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s", sqlite3_errmsg(j->db));
		return -1;
	}
	sqlite3_bind_text(a, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(a);
	sqlite3_finalize(a);
	if (rc != SQLITE_DONE) {
		snprintf(err, errsz, "%s: %s", shown, sqlite3_errmsg(j->db));
		return -1;
	}
	if (prepare(j, S_SCAN, to, err, errsz) != 0)
		return -1;
	out->last = sq_last;
	out->scan = sq_scan;
	out->past = sq_past;
	out->results = sq_results;
	out->error = sq_error;
	out->close = NULL;	/* detached with the journal */
	out->rd = j;
	return 0;
}

int
journal_attach(struct journal *j, const char *events_path,
    struct store_reader *out, char *err, size_t errsz)
{
	return attach(j, events_path, events_path, S_COUNT, out, err, errsz);
}

static void
reader_close(void *rd)
{
	journal_close(rd);
}

/*
 * events_path as a read-only URI (SQLite, "URI filenames"): '%', '?' and
 * '#' escaped.  Returns a new string.
 */
static char *
ro_uri(const char *events_path)
{
	static const char head[] = "file:", tail[] = "?mode=ro";
	char *u = xmalloc(sizeof(head) + 3 * strlen(events_path) +
	    sizeof(tail)), *p = u;

	p += sprintf(p, "%s", head);
	for (const char *c = events_path; *c != '\0'; c++)
		if (*c == '%' || *c == '?' || *c == '#')
			p += sprintf(p, "%%%02X", (unsigned char)*c);
		else
			*p++ = *c;
	sprintf(p, "%s", tail);
	return u;
}

int
journal_open_reader(const char *events_path, struct store_reader *out,
    char *err, size_t errsz)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char why[512], *uri = ro_uri(events_path);
	int rc;

	memset(out, 0, sizeof(*out));
	rc = sqlite3_open_v2(":memory:", &j->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK || store_sqlite_exec(j->db, schema, why,
	    sizeof(why)) != 0 || prepare(j, 0, S_SCAN, why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "%s: %s", events_path, j->db != NULL ?
		    sqlite3_errmsg(j->db) : sqlite3_errstr(rc));
		rc = -1;
	} else {
		sqlite3_busy_timeout(j->db, STORE_SQLITE_BUSY_MS);
		/* no results statement: a file of schema version 2 has no
		 * results.replayed, and this reader asks for no result */
		rc = attach(j, uri, events_path, S_RESULTS, out, err, errsz);
	}
	free(uri);
	if (rc != 0) {
		journal_close(j);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->results = NULL;
	out->past = NULL;
	out->close = reader_close;
	return 0;
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

void
journal_release_memory(struct journal *j)
{
	sqlite3_db_release_memory(j->db);
}
