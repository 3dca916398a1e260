/*
 * Unit tests of the SQLite store's two layouts of the events
 * (store_sqlite_schema.h): a new file's table event_log with the view
 * events (schema version 5), and an older file's table events of six
 * columns, kept as it is (version 4).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Every row of sql on path, its columns joined by ' ' and rows by ','. */
static char *
rows(const char *path, const char *sql)
{
	static char out[4096];
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t len = 0;

	out[0] = '\0';
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return out;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW && len < sizeof(out)) {
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
		sqlite3_finalize(st);
	} else
		snprintf(out, sizeof(out), "error: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	return out;
}

/* The events of this test: a namespace written with an escape, a whole
 * number of seconds; one without a namespace (it gets the input's). */
static const char *const events[] = {
	"{\"namespace\":\"n\\u00e9t\",\"event_type\":\"disk.full\","
	    "\"timestamp\":1700000000,\"payload\":{\"a\":1}}",
	"{\"event_type\":\"x.y\",\"timestamp\":1.5}",
};
/* What the view, or version 4's columns, read for them */
#define EVENTS_READ "n\xc3\xa9t disk.full 1700000000.0,local x.y 1.5"
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
		CHECK(event_ingest(events[i], strlen(events[i]), "local", 0, 1,
		    &ev, &eerr) == 0);
		store_put_event(s, &ev);
	}
	store_flush(s);
	store_get_stats(s, &st);
	CHECK(st.written == 2 && st.failed == 0);
	store_close(s);
}

/*
 * A new file: version 5, each event once in event_log (id, body), and
 * the view events reading namespace, event_type and timestamp (REAL)
 * from the body as the router stamped it.
 */
static void
test_new_file(struct cfg *cfg)
{
	const char *p = SQ(*cfg)->path;

	snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path), "%s/new.db", dir);
	write_events(cfg);
	CHECK_STR(rows(p, "PRAGMA user_version"), "5");
	CHECK_STR(rows(p, "SELECT name, type FROM sqlite_master WHERE name "
	    "LIKE 'event%' ORDER BY name"), "event_log table,events view");
	CHECK_STR(rows(p, "SELECT name FROM pragma_table_info('event_log')"),
	    "id,body");
	CHECK_STR(rows(p, EVENTS_QUERY), EVENTS_READ);
	CHECK_STR(rows(p, "SELECT typeof(timestamp) FROM events"),
	    "real,real");
	/* the body is the event as published, the view's body the same */
	CHECK_STR(rows(p, "SELECT count(*) FROM events e JOIN event_log l "
	    "ON l.rowid = e.rowid WHERE e.body = l.body AND e.id = l.id AND "
	    "json_extract(l.body, '$.id') = l.id"), "2");
	/* the readers' queries (journal.c) find the rowid through the view */
	CHECK_STR(rows(p, "SELECT count(*) FROM events e WHERE e.rowid > 1 "
	    "AND e.id = (SELECT id FROM event_log WHERE rowid = 2)"), "1");
	/* opened again: the same layout, two more rows */
	write_events(cfg);
	CHECK_STR(rows(p, "PRAGMA user_version"), "5");
	CHECK_STR(rows(p, "SELECT name, type FROM sqlite_master WHERE name "
	    "LIKE 'event%' ORDER BY name"), "event_log table,events view");
	CHECK_STR(rows(p, "SELECT count(*) FROM events"), "4");
}

/*
 * A file of version 4 keeps its table events of six columns: the store
 * writes the three fields beside the body, and makes no event_log.
 */
static void
test_version4_file(struct cfg *cfg)
{
	const char *p = SQ(*cfg)->path;
	sqlite3 *db;

	snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path), "%s/v4.db", dir);
	CHECK(sqlite3_open(p, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE events (id TEXT PRIMARY KEY, "
	    "namespace TEXT NOT NULL, event_type TEXT NOT NULL, timestamp "
	    "REAL NOT NULL, body TEXT NOT NULL); PRAGMA user_version = 4;",
	    NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	write_events(cfg);
	CHECK_STR(rows(p, "PRAGMA user_version"), "4");
	CHECK_STR(rows(p, "SELECT name, type FROM sqlite_master WHERE name "
	    "LIKE 'event%' ORDER BY name"), "events table");
	CHECK_STR(rows(p, EVENTS_QUERY), EVENTS_READ);
	CHECK_STR(rows(p, "SELECT count(*) FROM events WHERE "
	    "json_extract(body, '$.namespace') = namespace"), "2");
}

int
main(void)
{
	struct cfg cfg;

	log_init("test_store_schema", LOG_LVL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 2;
	cfg_defaults(&cfg);
	test_new_file(&cfg);
	test_version4_file(&cfg);
	cfg_free(&cfg);
	store_cleanup();
	{
		char rm[sizeof(dir) + 16];
		snprintf(rm, sizeof(rm), "rm -rf %s", dir);
		CHECK(system(rm) == 0);
	}
	UNIT_END("test_store_schema");
}
