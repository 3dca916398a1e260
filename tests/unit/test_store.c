/* Unit tests of the store: rows as documented, failures counted. */
#include <sqlite3.h>
#include <stdlib.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "store.h"
#include "unit.h"

static char dir[] = "/tmp/er-test-store-XXXXXX";

static char *
query1(const char *path, const char *sql)
{
	static char out[4096];
	sqlite3 *db;
	sqlite3_stmt *st;

	out[0] = '\0';
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return out;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
			snprintf(out, sizeof(out), "%s",
			    (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return out;
}

int
main(void)
{
	struct cfg cfg;
	struct store *s;
	struct store_result res;
	struct store_stats stats;
	struct event ev;
	struct event_error eerr;
	char err[512], id[EVENT_ID_LEN + 1];
	int failed;
	const char *in = "{\"event_type\":\"disk.full\",\"namespace\":\"ops\"}";

	log_init("test_store", LOG_LVL_ERROR);
	if (mkdtemp(dir) == NULL)
		return 2;
	cfg_defaults(&cfg);
	snprintf(cfg.store_path, sizeof(cfg.store_path), "%s/sub/ev.db", dir);

	s = store_open(&cfg, 4, err, sizeof(err), &failed);
	CHECK(s != NULL && !failed);
	for (int i = 0; i < 10; i++) {
		CHECK(event_ingest(in, strlen(in), "local", 0, 100 + i, &ev,
		    &eerr) == 0);
		memcpy(id, ev.id, sizeof(id));
		store_put_event(s, &ev);
		CHECK(ev.json == NULL);
	}
	memset(&res, 0, sizeof(res));
	res.event_id = id;
	res.driver = "shell";
	res.handler = "echo hi";
	res.status = "ok";
	res.has_exit_code = 1;
	res.exit_code = 0;
	res.started_at = 12.5;
	res.duration_ms = 3;
	res.out = "hi\n\0x";
	res.out_len = 5;
	res.err = "";
	res.err_len = 0;
	store_put_result(s, &res);
	store_flush(s);
	store_get_stats(s, &stats);
	CHECK(stats.queued == 11 && stats.written == 11 && stats.failed == 0);
	store_close(s);

	CHECK_STR(query1(cfg.store_path, "SELECT count(*) FROM events"), "10");
	CHECK_STR(query1(cfg.store_path, "PRAGMA journal_mode"), "wal");
	CHECK_STR(query1(cfg.store_path, "PRAGMA user_version"), "1");
	CHECK_STR(query1(cfg.store_path, "SELECT namespace || ' ' || event_type"
	    " || ' ' || timestamp FROM events ORDER BY id LIMIT 1"),
	    "ops disk.full 100.0");
	CHECK_STR(query1(cfg.store_path, "SELECT handler || ' ' || status || "
	    "' ' || exit_code || ' ' || length(stdout) || ' ' || "
	    "ifnull(signal, 'null') FROM results"), "echo hi ok 0 3 null");
	CHECK_STR(query1(cfg.store_path, "SELECT hex(CAST(stdout AS BLOB)) "
	    "FROM results"), "68690A0078");

	/* a refusing store: failures counted, the queue keeps draining */
	{
		sqlite3 *db;
		sqlite3_open(cfg.store_path, &db);
		sqlite3_exec(db, "CREATE TRIGGER no BEFORE INSERT ON events BEGIN "
		    "SELECT RAISE(ABORT, 'simulated failure'); END;", NULL, NULL,
		    NULL);
		sqlite3_close(db);
	}
	s = store_open(&cfg, 4, err, sizeof(err), &failed);
	CHECK(s != NULL);
	for (int i = 0; i < 5; i++) {
		CHECK(event_ingest(in, strlen(in), "local", 0, 1, &ev, &eerr) == 0);
		store_put_event(s, &ev);
	}
	store_put_result(s, &res);
	store_flush(s);
	store_get_stats(s, &stats);
	CHECK(stats.failed == 5 && stats.written == 1);
	store_close(s);
	CHECK_STR(query1(cfg.store_path, "SELECT count(*) FROM results"), "2");

	/* an unopenable store is refused with the path */
	snprintf(cfg.store_path, sizeof(cfg.store_path), "%s/no/such/dir/x.db",
	    dir);
	CHECK(store_open(&cfg, 0, err, sizeof(err), &failed) == NULL && failed);
	CHECK_CONTAINS(err, "no/such/dir/x.db");

	cfg.store_type = STORE_NONE;
	CHECK(store_open(&cfg, 0, err, sizeof(err), &failed) == NULL && !failed);
	store_close(NULL);
	system("rm -rf /tmp/er-test-store-*");
	UNIT_END("test_store");
}
