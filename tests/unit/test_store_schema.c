/*
 * Unit tests of the SQLite store's events table (store_sqlite_schema.h):
 * namespace, event_type and timestamp as the router decoded them, where
 * SQLite's JSON functions on the body would disagree (a key written with
 * an escape) or fail (a body nested deeper than SQLite's JSON depth).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "store.h"
#include "store_sqlite.h"
#include "unit.h"

static char dir[] = "/tmp/er-test-store-schema-XXXXXX";

/* cfg's store: the sqlite store's settings. */
#define SQ(cfg) ((struct store_sqlite_conf *)(cfg).store.conf)

/*
 * Every row of sql on path, its columns joined by ' ' and rows by ',';
 * "error: why" when the statement fails.
 */
static char *
rows(const char *path, const char *sql)
{
	static char out[4096];
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t len = 0;
	int rc = SQLITE_DONE;

	out[0] = '\0';
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return out;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
		    len < sizeof(out)) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const unsigned char *t = sqlite3_column_text(st,
				    c);
				len += (size_t)snprintf(out + len,
				    sizeof(out) - len, "%s%s", len == 0 ? "" :
				    c == 0 ? "," : " ", t ? (const char *)t :
				    "NULL");
				if (len >= sizeof(out))
					break;
			}
		}
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			snprintf(out, sizeof(out), "error: %s",
			    sqlite3_errmsg(db));
		sqlite3_finalize(st);
	} else
		snprintf(out, sizeof(out), "error: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	return out;
}

/* The events of this test: a namespace written with an escape, a whole
 * number of seconds; without a namespace (it gets the input's), keys
 * written with escapes, an exponent; nested 2040 deep (under jansson's
 * 2048, over SQLite's JSON depth). */
#define DEEP 2040
static const char *events[] = {
	"{\"namespace\":\"n\\u00e9t\",\"event_type\":\"disk.full\","
	    "\"timestamp\":1700000000,\"payload\":{\"a\":1}}",
	"{\"event_typ\\u0065\":\"x.y\",\"n\\u0061mespace\":\"esc\","
	    "\"tim\\u0065stamp\":1.5e1}",
	NULL,
};
/* What the columns read for them */
#define EVENTS_READ "n\xc3\xa9t disk.full 1700000000.0,esc x.y 15.0," \
	"local deep 2.5"
#define EVENTS_QUERY "SELECT namespace, event_type, timestamp FROM " \
	"events ORDER BY rowid"

/* Open the store at cfg's path, write the events, close it. */
static void
write_events(struct cfg *cfg)
{
	struct store_stats st;
	struct event_error eerr;
	struct event ev;
	struct store *s;
	char err[512];
	int failed;

	s = store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err),
	    &failed);
	CHECK(s != NULL && !failed);
	if (s == NULL)
		return;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		CHECK(events[i] != NULL);
		CHECK(event_ingest(events[i], strlen(events[i]), "local", 0, 1,
		    &ev, &eerr) == 0);
		store_put_event(s, &ev);
	}
	store_flush(s);
	store_get_stats(s, &st);
	CHECK(st.written == 3 && st.failed == 0);
	store_close(s);
}

/*
 * A new file: version 4, the table events of five columns, the three
 * fields as the router decoded them, whatever SQLite's JSON functions
 * make of the body.
 */
static void
test_new_file(struct cfg *cfg)
{
	const char *p = SQ(*cfg)->path;

	snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path), "%s/new.db", dir);
	write_events(cfg);
	CHECK_STR(rows(p, "PRAGMA user_version"), "4");
	CHECK_STR(rows(p, "SELECT name, type FROM sqlite_master WHERE name "
	    "LIKE 'event%' ORDER BY name"), "events table");
	CHECK_STR(rows(p, "SELECT name FROM pragma_table_info('events')"),
	    "id,namespace,event_type,timestamp,body");
	CHECK_STR(rows(p, EVENTS_QUERY), EVENTS_READ);
	CHECK_STR(rows(p, "SELECT typeof(timestamp) FROM events"),
	    "real,real,real");
	/* the body is the event as published: its keys as the client wrote
	 * them (SQLite's paths miss an escaped key) */
	CHECK_STR(rows(p, "SELECT json_extract(body, '$.namespace') IS NULL "
	    "FROM events WHERE event_type = 'x.y'"), "1");
	/* SQLite's JSON functions fail a query over the deep body
	 * (event-reactor(7)); json_valid() leaves it out */
	CHECK_CONTAINS(rows(p, "SELECT json_extract(body, '$.event_type') "
	    "FROM events"), "error");
	CHECK_STR(rows(p, "SELECT json_extract(body, '$.timestamp') FROM "
	    "events WHERE json_valid(body) ORDER BY rowid"), "1700000000,NULL");
}

/* The bytes of the file at path (malloc'd), *len its size. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) ==
	    NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		if (f != NULL)
			fclose(f);
		free(buf);
		*len = 0;
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* The store's path set to dir/name, a file made there by sql, and the
 * connection that made it, still open. */
static sqlite3 *
made(struct cfg *cfg, const char *name, const char *sql)
{
	sqlite3 *db = NULL;

	snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path), "%s/%s", dir, name);
	CHECK(sqlite3_open(SQ(*cfg)->path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	return db;
}

/*
 * A file made by sql at name (rollback journal mode, as sqlite3(1)
 * makes one) is refused at open with why, and left byte for byte as it
 * was: not even switched to WAL.
 */
static void
check_refused(struct cfg *cfg, const char *name, const char *sql,
    const char *why)
{
	const char *p = SQ(*cfg)->path;
	char err[512], *before, *after;
	size_t n0, n1;
	int failed;

	sqlite3_close(made(cfg, name, sql));
	before = slurp(p, &n0);
	CHECK(before != NULL && n0 > 0);
	CHECK(store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err,
	    sizeof(err), &failed) == NULL && failed);
	CHECK_CONTAINS(err, why);
	after = slurp(p, &n1);
	CHECK(after != NULL && n1 == n0 && memcmp(before, after, n0) == 0);
	free(before);
	free(after);
}

/*
 * A file of a later schema version (a later release's), or one whose
 * events or results table is not the store's, is refused at open,
 * saying so, and left as it is.
 */
static void
test_refused_unchanged(struct cfg *cfg)
{
	static const char idx_why[] = "cannot bring the schema to version 4: "
	    "its results_event_id is not the store's index (on every row of "
	    "results, by event_id, not unique)";
	static const char unique_why[] = "cannot bring the schema to version "
	    "4: its table results has a UNIQUE index or key (an event has a "
	    "run for each handler, and one more each time it is run again: "
	    "rows would be refused)";

	check_refused(cfg, "v7.db", "CREATE TABLE events (id TEXT PRIMARY "
	    "KEY, namespace TEXT NOT NULL, event_type TEXT NOT NULL, timestamp "
	    "REAL NOT NULL, body TEXT NOT NULL); PRAGMA user_version = 7;",
	    "v7.db: cannot bring the schema to version 4: the file is of "
	    "schema version 7, made by a later release; this one knows "
	    "versions up to 4");
	check_refused(cfg, "foreign-events.db", "CREATE TABLE events (a "
	    "INTEGER, b TEXT); INSERT INTO events VALUES (1, 'x');",
	    "foreign-events.db: cannot bring the schema to version 4: its "
	    "table events is not the store's (it has no column id)");
	check_refused(cfg, "foreign-results.db", "CREATE TABLE results ("
	    "event_id TEXT, status TEXT);", "foreign-results.db: cannot bring "
	    "the schema to version 4: its table results is not the store's (it "
	    "has no column driver)");
	check_refused(cfg, "view.db", "CREATE TABLE t (id TEXT, namespace "
	    "TEXT, event_type TEXT, timestamp REAL, body TEXT); CREATE VIEW "
	    "events AS SELECT * FROM t;", "view.db: cannot bring the schema to "
	    "version 4: its events is a view or an index, not the store's "
	    "table");
	check_refused(cfg, "owner.db", "CREATE TABLE events (id TEXT PRIMARY "
	    "KEY, namespace TEXT NOT NULL, event_type TEXT NOT NULL, timestamp "
	    "REAL NOT NULL, body TEXT NOT NULL, owner TEXT NOT NULL);",
	    "owner.db: cannot bring the schema to version 4: its table events "
	    "is not the store's (its column owner may not be NULL and has no "
	    "default; the store does not fill it)");
	/* a default of NULL is none; a key column of a WITHOUT ROWID table
	 * may not be NULL, declared so or not */
	check_refused(cfg, "dfltnull.db", "CREATE TABLE results (event_id "
	    "TEXT NOT NULL, driver TEXT NOT NULL, handler TEXT NOT NULL, status "
	    "TEXT NOT NULL, exit_code INTEGER, signal INTEGER, started_at REAL "
	    "NOT NULL, duration_ms REAL NOT NULL, stdout TEXT, stderr TEXT, "
	    "error TEXT, data TEXT, src TEXT NOT NULL DEFAULT NULL);",
	    "dfltnull.db: cannot bring the schema to version 4: its table "
	    "results is not the store's (its column src may not be NULL and "
	    "has no default; the store does not fill it)");
	check_refused(cfg, "wr.db", "CREATE TABLE events (id TEXT, src TEXT, "
	    "namespace TEXT NOT NULL, event_type TEXT NOT NULL, timestamp REAL "
	    "NOT NULL, body TEXT NOT NULL, PRIMARY KEY (id, src)) WITHOUT "
	    "ROWID;", "wr.db: cannot bring the schema to version 4: its table "
	    "events is not the store's (its column src may not be NULL and has "
	    "no default; the store does not fill it)");
	/* the name of the store's index taken: on another table, or on
	 * results by another column */
	check_refused(cfg, "idx-other.db", "CREATE TABLE mine (event_id "
	    "TEXT); CREATE INDEX results_event_id ON mine(event_id);",
	    "idx-other.db: cannot bring the schema to version 4: its "
	    "results_event_id is not the store's index (on every row of "
	    "results, by event_id, not unique)");
	check_refused(cfg, "idx-col.db", "CREATE TABLE results (event_id "
	    "TEXT NOT NULL, driver TEXT NOT NULL, handler TEXT NOT NULL, status "
	    "TEXT NOT NULL, exit_code INTEGER, signal INTEGER, started_at REAL "
	    "NOT NULL, duration_ms REAL NOT NULL, stdout TEXT, stderr TEXT, "
	    "error TEXT, data TEXT); CREATE INDEX Results_Event_Id ON "
	    "results(handler);", "idx-col.db: cannot bring the schema to "
	    "version 4: its results_event_id is not the store's index (on "
	    "every row of results, by event_id, not unique)");
	/* results_event_id by event_id, but on some rows only, in another
	 * collation, or unique; results' rows that would clash (a UNIQUE
	 * index of another name, a UNIQUE column, WITHOUT ROWID's key); a
	 * key column in another collation (no index serves a look-up) */
	static const char *const cases[][3] = {
		{ "", "); CREATE INDEX results_event_id ON results(event_id) "
		    "WHERE 0;", idx_why },
		{ "", "); CREATE INDEX results_event_id ON results(event_id) "
		    "WHERE status = 'ok';", idx_why },
		{ "", "); CREATE INDEX results_event_id ON results(event_id "
		    "COLLATE NOCASE);", idx_why },
		{ "", "); CREATE UNIQUE INDEX results_event_id ON "
		    "results(event_id);", unique_why },
		{ "", "); CREATE UNIQUE INDEX r_uq ON results(event_id, "
		    "handler);", unique_why },
		{ " UNIQUE", ");", unique_why },
		{ "", ", PRIMARY KEY (event_id, handler)) WITHOUT ROWID;",
		    unique_why },
		{ " COLLATE NOCASE", ");", "cannot bring the schema to version "
		    "4: its results.event_id compares in collation NOCASE, not "
		    "SQLite's own (BINARY)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char sql[1024], name[32];

		snprintf(name, sizeof(name), "results%zu.db", i);
		snprintf(sql, sizeof(sql), "CREATE TABLE results (event_id TEXT "
		    "NOT NULL%s, driver TEXT NOT NULL, handler TEXT NOT NULL, "
		    "status TEXT NOT NULL, exit_code INTEGER, signal INTEGER, "
		    "started_at REAL NOT NULL, duration_ms REAL NOT NULL, stdout "
		    "TEXT, stderr TEXT, error TEXT, data TEXT%s", cases[i][0],
		    cases[i][1]);
		check_refused(cfg, name, sql, cases[i][2]);
	}
	check_refused(cfg, "idnocase.db", "CREATE TABLE events (id TEXT "
	    "PRIMARY KEY COLLATE NOCASE, namespace TEXT NOT NULL, event_type "
	    "TEXT NOT NULL, timestamp REAL NOT NULL, body TEXT NOT NULL);",
	    "cannot bring the schema to version 4: its events.id compares in "
	    "collation NOCASE, not SQLite's own (BINARY)");
}

/*
 * An index named events_timestamp (version 3's, dropped by version 4) on
 * a table of the operator's own is not the store's: it stays.
 */
static void
test_other_events_timestamp_kept(struct cfg *cfg)
{
	struct store *s;
	char err[512];
	int failed;

	sqlite3_close(made(cfg, "ts-other.db", "CREATE TABLE mine (timestamp "
	    "REAL); CREATE INDEX events_timestamp ON mine(timestamp);"));
	s = store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err),
	    &failed);
	CHECK(s != NULL && !failed);
	if (s != NULL)
		store_close(s);
	CHECK_STR(rows(SQ(*cfg)->path, "SELECT tbl_name FROM sqlite_master "
	    "WHERE name = 'events_timestamp'"), "mine");
	CHECK_STR(rows(SQ(*cfg)->path, "PRAGMA user_version"), "4");
}

/*
 * Column names in another case are the same columns to SQLite, and a
 * rowid of its own (INTEGER PRIMARY KEY NOT NULL) is filled by SQLite.
 */
static void
test_columns_in_capitals(struct cfg *cfg)
{
	struct store *s;
	char err[512];
	int failed;

	sqlite3_close(made(cfg, "caps.db", "CREATE TABLE EVENTS (ID TEXT "
	    "PRIMARY KEY, Namespace TEXT NOT NULL, EVENT_TYPE TEXT NOT NULL, "
	    "Timestamp REAL NOT NULL, Body TEXT NOT NULL); CREATE TABLE "
	    "Results (RID INTEGER PRIMARY KEY NOT NULL, EVENT_ID TEXT NOT NULL "
	    "COLLATE binary, DRIVER TEXT NOT NULL, HANDLER "
	    "TEXT NOT NULL, STATUS TEXT NOT NULL, EXIT_CODE INTEGER, SIGNAL "
	    "INTEGER, STARTED_AT REAL NOT NULL, DURATION_MS REAL NOT NULL, "
	    "STDOUT TEXT, STDERR TEXT, ERROR TEXT, DATA TEXT, REDELIVERED "
	    "INTEGER NOT NULL DEFAULT 0); CREATE INDEX RESULTS_EVENT_ID ON "
	    "Results(Event_Id COLLATE Binary); CREATE INDEX EVENTS_TIMESTAMP ON "
	    "Events(Timestamp);"));
	s = store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err),
	    &failed);
	CHECK(s != NULL && !failed);
	if (s != NULL)
		store_close(s);
	CHECK_STR(rows(SQ(*cfg)->path, "PRAGMA user_version"), "4");
	/* its index kept; version 3's, in capitals, dropped */
	CHECK_STR(rows(SQ(*cfg)->path, "SELECT group_concat(name) FROM "
	    "sqlite_master WHERE type = 'index' AND sql IS NOT NULL"),
	    "RESULTS_EVENT_ID");
}

/*
 * A file another process keeps locked past the busy timeout is refused
 * before anything is written: a later version's is not switched to WAL
 * once the lock goes.  (STORE_SQLITE_BUSY_MS: 10 s.)
 */
static void
test_locked_past_the_timeout(struct cfg *cfg)
{
	char err[512];
	sqlite3 *db;
	int failed;

	db = made(cfg, "locked.db", "CREATE TABLE x (a); PRAGMA user_version "
	    "= 5; BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);");
	CHECK(store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err,
	    sizeof(err), &failed) == NULL && failed);
	CHECK_CONTAINS(err, "locked.db: cannot bring the schema to version 4: "
	    "database is locked");
	CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK_STR(rows(SQ(*cfg)->path, "PRAGMA journal_mode"), "delete");
}

/*
 * Out of descriptors, SQLite says only "unable to open database file":
 * the system's reason follows.
 */
static void
test_out_of_descriptors(struct cfg *cfg)
{
	struct rlimit was, lim;
	char err[512];
	int fd, failed;
	struct store *s;

	snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path), "%s/nofd.db", dir);
	CHECK(getrlimit(RLIMIT_NOFILE, &was) == 0);
	fd = dup(0);		/* the lowest free: none left under it */
	close(fd);
	lim = was;
	lim.rlim_cur = (rlim_t)fd;
	CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
	s = store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err),
	    &failed);
	CHECK(setrlimit(RLIMIT_NOFILE, &was) == 0);
	CHECK(s == NULL && failed);
	CHECK_CONTAINS(err, "nofd.db: unable to open database file: Too many "
	    "open files");
}

/*
 * A path longer than SQLite takes (504 bytes: the unix VFS's 512, less 8
 * for "-journal") is refused with that reason before anything is made;
 * SQLite would say only "unable to open database file".
 */
static void
test_path_too_long(struct cfg *cfg)
{
	char *p = SQ(*cfg)->path, err[8192], want[4400], a[251], b[251];
	int failed;

	memset(a, 'a', 250);
	memset(b, 'b', 250);
	a[250] = b[250] = '\0';
	snprintf(p, sizeof(SQ(*cfg)->path), "%s/%s/%s/x.db", dir, a, b);
	snprintf(want, sizeof(want), "store sqlite: the path is %zu bytes, "
	    "longer than SQLite takes (504: its 512, less 8 for \"-journal\"): "
	    "%s/", strlen(p), dir);
	CHECK(store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err,
	    sizeof(err), &failed) == NULL && failed);
	CHECK_CONTAINS(err, want);
	snprintf(want, sizeof(want), "%s/%s", dir, a);
	CHECK(access(want, F_OK) != 0);		/* nothing made */
	/* a short path through a link to a long directory: the same, as
	 * SQLite resolves it */
	CHECK(mkdir(want, 0700) == 0);
	snprintf(p, sizeof(SQ(*cfg)->path), "%s/%s/%s", dir, a, b);
	CHECK(mkdir(p, 0700) == 0);
	snprintf(want, sizeof(want), "%s/ln", dir);
	CHECK(symlink(p, want) == 0);
	snprintf(p, sizeof(SQ(*cfg)->path), "%s/ln/x.db", dir);
	CHECK(store_open(cfg, STORE_EVENTS | STORE_RESULTS, 0, err,
	    sizeof(err), &failed) == NULL && failed);
	snprintf(want, sizeof(want), "store sqlite: the path is %zu bytes once "
	    "resolved, longer than SQLite takes (504: its 512, less 8 for "
	    "\"-journal\"): %s", strlen(dir) + 2 * 251 + 5, p);
	CHECK_CONTAINS(err, want);
}

int
main(void)
{
	struct cfg cfg;

	log_init("test_store_schema", LOG_LVL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 2;
	cfg_defaults(&cfg);
	{
		/* {"event_type":"deep","timestamp":2.5,"payload":[[...[1]...]]} */
		static char deep[64 + 2 * DEEP];
		size_t n = (size_t)snprintf(deep, sizeof(deep), "{\"event_type\""
		    ":\"deep\",\"timestamp\":2.5,\"payload\":");
		memset(deep + n, '[', DEEP);
		n += DEEP;
		deep[n++] = '1';
		memset(deep + n, ']', DEEP);
		n += DEEP;
		deep[n++] = '}';
		deep[n] = '\0';
		events[2] = deep;
	}
	test_new_file(&cfg);
	test_refused_unchanged(&cfg);
	test_columns_in_capitals(&cfg);
	test_other_events_timestamp_kept(&cfg);
	test_locked_past_the_timeout(&cfg);
	test_out_of_descriptors(&cfg);
	test_path_too_long(&cfg);
	cfg_free(&cfg);
	store_cleanup();
	{
		char rm[sizeof(dir) + 16];
		snprintf(rm, sizeof(rm), "rm -rf %s", dir);
		CHECK(system(rm) == 0);
	}
	UNIT_END("test_store_schema");
}
