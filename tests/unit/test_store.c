/* Unit tests of the store: rows as documented, failures counted. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>

#include "cfg_plugins.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "spool.h"
#include "store.h"
#include "store_backend.h"
#include "store_mongo.h"
#include "store_sqlite.h"
#include "unit.h"
#include "util.h"

static char dir[] = "/tmp/er-test-store-XXXXXX";

/* cfg's store: its settings, of the sqlite or the mongodb store. */
#define SQ(cfg) ((struct store_sqlite_conf *)(cfg).store.conf)
#define MG(cfg) ((struct store_mongo_conf *)(cfg).store.conf)

/* Make cfg's store one of type with its defaults. */
static void
use_store(struct cfg *cfg, const char *type)
{
	cfg_plugin_free(&cfg->store);
	CHECK(store_read(NULL, type, NULL, cfg, &cfg->store) == 0);
}

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

/*
 * MongoDB away (a port that refuses connections): every record goes to
 * the spool, in order, up to spool_max; past it they are lost and counted.
 * The routing side (store_put_*) never waits for the server.
 */
static void
test_mongo_spool(void)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	struct store_stats stats;
	struct run_result res;
	struct event ev;
	struct event_error eerr;
	struct store *s;
	struct cfg cfg;
	char err[512];
	double t0;
	int fd, failed;
	const char *in = "{\"event_type\":\"spooled\"}";

	/* bound, not listening: connections are refused */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	getsockname(fd, (struct sockaddr *)&sa, &salen);

	cfg_defaults(&cfg);
	use_store(&cfg, "mongodb");
	snprintf(MG(cfg)->uri, sizeof(MG(cfg)->uri), "mongodb://127.0.0.1:%d/"
	    "t?serverSelectionTimeoutMS=300", ntohs(sa.sin_port));
	snprintf(MG(cfg)->spool_path, sizeof(MG(cfg)->spool_path),
	    "%s/spool/spool.db", dir);
	MG(cfg)->spool_max = 4;
	s = store_open(&cfg, STORE_EVENTS | STORE_RESULTS, 16, err, sizeof(err), &failed);
	CHECK(s != NULL && !failed);
	t0 = util_mono();
	for (int i = 0; i < 5; i++) {
		CHECK(event_ingest(in, strlen(in), "local", 0, 1, &ev, &eerr) == 0);
		store_put_event(s, &ev);
	}
	memset(&res, 0, sizeof(res));
	res.event_id = "5f0c3b6f1c9d440000a1b2c3";
	res.driver = "shell";
	res.handler = "true";
	res.status = RUN_OK;
	store_put_result(s, &res);
	CHECK(util_mono() - t0 < 0.2);	/* queued, not sent */
	store_flush(s);
	store_get_stats(s, &stats);
	CHECK(stats.queued == 6 && stats.written == 0);
	CHECK(stats.spooled == 4 && stats.lost == 2 && stats.failed == 2);
	store_close(s);
	close(fd);
	CHECK_STR(query1(MG(cfg)->spool_path, "SELECT count(*) FROM spool"),
	    "4");
	/* the four oldest: events (coll 0), in order */
	CHECK_STR(query1(MG(cfg)->spool_path, "SELECT group_concat(coll) FROM "
	    "(SELECT coll FROM spool ORDER BY seq)"), "0,0,0,0");

	/* a bad URI is refused at open, naming it */
	snprintf(MG(cfg)->uri, sizeof(MG(cfg)->uri), "mongo://x");
	CHECK(store_open(&cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err), &failed) == NULL && failed);
	CHECK_CONTAINS(err, "uri \"mongo://x\"");
	cfg_free(&cfg);
}

/*
 * store_put_events(): every event queued, in its order (rowid order is
 * the order put), through a queue of 4 records (it waits while the queue
 * is full, in the middle of a batch) and over more than STORE_PUT_MAX,
 * the records the writer has written carrying the next ones (the pool);
 * each event taken over (cleared); with no store, each released.
 */
static void
test_put_events(void)
{
	enum { N = STORE_PUT_MAX * 2 + 44 };
	static struct event evs[N];
	struct event_error eerr;
	struct store_stats stats;
	struct store *s;
	struct cfg cfg;
	char err[512], want[16];
	int failed, cleared = 0;
	const char *in = "{\"event_type\":\"batched\"}";

	cfg_defaults(&cfg);
	snprintf(SQ(cfg)->path, sizeof(SQ(cfg)->path), "%s/put-events.db",
	    dir);
	s = store_open(&cfg, STORE_EVENTS, 4, err, sizeof(err), &failed);
	CHECK(s != NULL && !failed);
	for (int i = 0; i < N; i++)
		CHECK(event_ingest(in, strlen(in), "local", 0, 1000 + i,
		    &evs[i], &eerr) == 0);
	store_put_events(s, evs, N);
	for (int i = 0; i < N; i++)
		cleared += evs[i].json == NULL;
	CHECK(cleared == N);
	store_flush(s);
	store_get_stats(s, &stats);
	CHECK(stats.queued == N && stats.written == N && stats.failed == 0);
	store_close(s);
	snprintf(want, sizeof(want), "%d", N);
	CHECK_STR(query1(SQ(cfg)->path, "SELECT count(*) FROM events"), want);
	CHECK_STR(query1(SQ(cfg)->path, "SELECT count(DISTINCT id) || ' ' || "
	    "count(DISTINCT body) FROM events"), "556 556");
	/* rowid order is the order put: each timestamp one more */
	CHECK_STR(query1(SQ(cfg)->path, "SELECT count(*) FROM events a JOIN "
	    "events b ON b.rowid = a.rowid + 1 WHERE b.timestamp != "
	    "a.timestamp + 1"), "0");
	CHECK_STR(query1(SQ(cfg)->path, "SELECT min(timestamp) || ' ' || "
	    "max(timestamp) FROM events"), "1000.0 1555.0");

	/* no store: released */
	for (int i = 0; i < 3; i++)
		CHECK(event_ingest(in, strlen(in), "local", 0, 1, &evs[i],
		    &eerr) == 0);
	store_put_events(NULL, evs, 3);
	CHECK(evs[0].json == NULL && evs[2].json == NULL);
	cfg_free(&cfg);
}

static long long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Queue n events of about size bytes each. */
static void
put_events(struct store *s, int n, size_t size)
{
	struct event_error eerr;
	struct event ev;
	char *in = xmalloc(size + 64);
	int len, refused = 0;

	len = snprintf(in, size + 64, "{\"event_type\":\"big\",\"pad\":\"");
	memset(in + len, 'x', size);
	memcpy(in + len + size, "\"}", 3);
	for (int i = 0; i < n; i++) {
		if (event_ingest(in, strlen(in), "local", 0, 1, &ev,
		    &eerr) != 0) {
			refused++;
			continue;
		}
		store_put_event(s, &ev);
	}
	CHECK(refused == 0);
	free(in);
}

/*
 * SQLite checkpoints (store_sqlite.h): a WAL past STORE_SQLITE_CKPT_FRAMES
 * pages but short of STORE_SQLITE_WAL_FRAMES is copied into the database
 * file by the checkpointer thread, while the store is open (the writer
 * would not checkpoint it); a long burst leaves the WAL bounded; and a
 * WAL grown under a long reader is cut back once it ends.
 */
static void
test_checkpoints(void)
{
	struct store_stats stats;
	struct store *s;
	struct cfg cfg;
	char err[512], wal[PATH_MAX + 8];
	long long db_size = 0, page, frame, wal_max;
	double deadline;
	int failed, n;

	cfg_defaults(&cfg);
	snprintf(SQ(cfg)->path, sizeof(SQ(cfg)->path), "%s/ckpt.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", SQ(cfg)->path);
	s = store_open(&cfg, STORE_EVENTS, 0, err, sizeof(err), &failed);
	CHECK(s != NULL);
	if (s == NULL) {
		cfg_free(&cfg);
		return;
	}
	page = atoll(query1(SQ(cfg)->path, "PRAGMA page_size"));
	frame = page + 24;		/* a WAL frame: header and page */
	/* 1.5 times STORE_SQLITE_CKPT_FRAMES pages of rows, in a few
	 * large transactions */
	n = (int)(STORE_SQLITE_CKPT_FRAMES * 3 / 2 * page / 4096);
	put_events(s, n, 4000);
	store_flush(s);
	CHECK(file_size(wal) < STORE_SQLITE_WAL_FRAMES * frame);
	/* bounded wait: the thread copies the pages while we look */
	deadline = util_mono() + 20;
	while (util_mono() < deadline) {
		db_size = file_size(SQ(cfg)->path);
		if (db_size >= STORE_SQLITE_CKPT_FRAMES * page)
			break;
		usleep(10000);
	}
	CHECK(db_size >= STORE_SQLITE_CKPT_FRAMES * page);

	/* a burst of three times STORE_SQLITE_WAL_FRAMES pages: the WAL
	 * holds that many frames and one transaction's more (STORE_BATCH_MAX
	 * rows: about 1400 pages of these), fewer than twice as many */
	n = (int)(STORE_SQLITE_WAL_FRAMES * 3 * page / 4096);
	put_events(s, n, 4000);
	store_flush(s);
	wal_max = 2 * STORE_SQLITE_WAL_FRAMES * frame + 32;
	if (file_size(wal) > wal_max)
		fprintf(stderr, "WAL of %lld bytes, %lld at most expected\n",
		    file_size(wal), wal_max);
	CHECK(file_size(wal) > 0 && file_size(wal) <= wal_max);

	/* a reader with a transaction open: the WAL grows past the bound
	 * till it ends; then the WAL starts over, cut back to
	 * STORE_SQLITE_WAL_KEEP bytes */
	{
		sqlite3 *rd;
		sqlite3_open(SQ(cfg)->path, &rd);
		CHECK(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM events;",
		    NULL, NULL, NULL) == SQLITE_OK);
		put_events(s, n, 4000);
		store_flush(s);
		CHECK(file_size(wal) > wal_max);
		sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(rd);
	}
	put_events(s, 300, 4000);	/* the writer checkpoints it all */
	store_flush(s);
	put_events(s, 300, 4000);	/* and this starts the WAL over */
	store_flush(s);
	CHECK(file_size(wal) > 0 && file_size(wal) <= STORE_SQLITE_WAL_KEEP);
	store_get_stats(s, &stats);
	CHECK(stats.written == stats.queued && stats.failed == 0);
	store_close(s);
	CHECK(atoll(query1(SQ(cfg)->path, "SELECT count(*) FROM events")) ==
	    (long long)stats.written);
	cfg_free(&cfg);
}

/* n event records, those at the nbad indexes bad[] of event_type "bad". */
static struct store_rec **
make_recs(int n, const int *bad, int nbad)
{
	struct store_rec **recs = xcalloc((size_t)n, sizeof(*recs));
	struct event_error eerr;
	char in[128];

	for (int i = 0; i < n; i++) {
		int is_bad = 0;

		for (int b = 0; b < nbad; b++)
			is_bad |= bad[b] == i;
		recs[i] = xcalloc(1, sizeof(**recs));
		recs[i]->kind = REC_EVENT;
		snprintf(in, sizeof(in), "{\"event_type\":\"%s\",\"seq\":%d}",
		    is_bad ? "bad" : "good", i);
		CHECK(event_ingest(in, strlen(in), "local", 0, 1, &recs[i]->ev,
		    &eerr) == 0);
	}
	return recs;
}

static void
free_recs(struct store_rec **recs, int n)
{
	for (int i = 0; i < n; i++) {
		event_clear(&recs[i]->ev);
		free(recs[i]);
	}
	free(recs);
}

/*
 * The SQLite backend inserts events in groups of rows per statement; a
 * row refused inside a group fails alone: every other row of the batch is
 * written, in order, and reported so.
 */
static void
test_groups(void)
{
	struct store_backend be;
	struct store_rec **recs;
	enum store_status st[300];
	char path[PATH_MAX], err[512], want[2048];
	int written = 0;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/groups.db", dir);
	CHECK(store_sqlite_open(path, &be, err, sizeof(err)) == 0);
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TRIGGER no BEFORE INSERT ON events WHEN "
	    "NEW.event_type = 'bad' BEGIN SELECT RAISE(ABORT, "
	    "'simulated failure'); END;", NULL, NULL, NULL);
	sqlite3_close(db);
	/* a group of 256 (with the refused row: each of its rows then goes
	 * alone), two groups of 16, and 12 rows alone */
	recs = make_recs(300, (const int[]){ 100 }, 1);
	memset(st, 0, sizeof(st));
	be.write(be.be, recs, 300, st);
	for (int i = 0; i < 300; i++)
		written += st[i] == STORE_WRITTEN;
	CHECK(written == 299 && st[100] == STORE_FAILED);
	CHECK_STR(query1(path, "SELECT count(*) FROM events"), "299");
	CHECK_STR(query1(path, "SELECT count(*) FROM events WHERE "
	    "event_type = 'bad'"), "0");
	/* in the order given */
	for (int i = 0, len = 0; i < 300; i++)
		if (i != 100)
			len += snprintf(want + len, sizeof(want) - (size_t)len,
			    "%s%d", len ? "," : "", i);
	CHECK_STR(query1(path, "SELECT group_concat(s) FROM (SELECT "
	    "json_extract(body, '$.seq') AS s FROM events ORDER BY rowid)"),
	    want);
	free_recs(recs, 300);

	recs = make_recs(40, NULL, 0);	/* two groups of 16, then 8 alone */
	memset(st, 0, sizeof(st));
	be.write(be.be, recs, 40, st);
	written = 0;
	for (int i = 0; i < 40; i++)
		written += st[i] == STORE_WRITTEN;
	CHECK(written == 40);
	CHECK_STR(query1(path, "SELECT count(*) FROM events"), "339");
	free_recs(recs, 40);
	be.close(be.be);
}

/* Write recs through a fresh backend on path; returns how many it wrote. */
static int
write_batch(const char *path, struct store_rec **recs, int n,
    enum store_status *st)
{
	struct store_backend be;
	char err[512];
	int written = 0;

	CHECK(store_sqlite_open(path, &be, err, sizeof(err)) == 0);
	memset(st, 0, (size_t)n * sizeof(*st));
	be.write(be.be, recs, (size_t)n, st);
	be.close(be.be);
	for (int i = 0; i < n; i++)
		written += st[i] == STORE_WRITTEN;
	return written;
}

/*
 * Rows refused in the ways SQLite lets a trigger or a conflict clause
 * choose: FAIL keeps what the statement did before (an AFTER trigger's:
 * the row itself), IGNORE skips the row without an error, ROLLBACK ends
 * the whole transaction.  Whatever the way, only the refused rows fail,
 * and the rows reported written are the rows in the file.
 */
static void
test_refusals(void)
{
	static const struct {
		const char *when, *raise;
		int bad[12], nbad;
	} cases[] = {
		{ "BEFORE", "FAIL", { 100, 101, 290 }, 3 },
		{ "AFTER", "FAIL", { 100, 101, 290 }, 3 },
		{ "BEFORE", "IGNORE", { 100, 101, 290 }, 3 },
		{ "BEFORE", "ROLLBACK", { 5, 120, 290 }, 3 },
		{ "AFTER", "ROLLBACK", { 0, 255, 256, 299 }, 4 },
		/* one group, then row after row: ten transactions lost */
		{ "BEFORE", "ROLLBACK", { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, 9 },
	};
	enum store_status st[300];
	struct store_rec **recs;
	char path[PATH_MAX], sql[256], want[16];
	sqlite3 *db;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		int written = 300 - cases[c].nbad;

		snprintf(path, sizeof(path), "%s/refusals%zu.db", dir, c);
		recs = make_recs(300, cases[c].bad, cases[c].nbad);
		/* the schema first, then the trigger */
		CHECK(write_batch(path, recs, 0, st) == 0);
		sqlite3_open(path, &db);
		snprintf(sql, sizeof(sql), "CREATE TRIGGER no %s INSERT ON "
		    "events WHEN NEW.event_type = 'bad' BEGIN SELECT RAISE(%s%s)"
		    "; END;", cases[c].when, cases[c].raise,
		    strcmp(cases[c].raise, "IGNORE") ? ", 'simulated failure'" :
		    "");
		CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
		CHECK(write_batch(path, recs, 300, st) == written);
		for (int b = 0; b < cases[c].nbad; b++)
			CHECK(st[cases[c].bad[b]] == STORE_FAILED);
		snprintf(want, sizeof(want), "%d", written);
		CHECK_STR(query1(path, "SELECT count(*) FROM events"), want);
		CHECK_STR(query1(path, "SELECT count(*) FROM events WHERE "
		    "event_type = 'bad'"), "0");
		CHECK_STR(query1(path, "SELECT count(DISTINCT id) FROM events"),
		    want);
		free_recs(recs, 300);
	}
}

/* The spool: order, per-tag reads and deletes, an exact count. */
static void
test_spool_api(void)
{
	struct spool_item in[6], out[8];
	struct store_spool *sp;
	char path[256], err[256], why[256];
	int n;

	snprintf(path, sizeof(path), "%s/api-spool.db", dir);
	sp = store_spool_open(path, err, sizeof(err));
	CHECK(sp != NULL);
	if (sp == NULL)
		return;
	CHECK(store_spool_count(sp) == 0);
	CHECK(store_spool_waiting(sp, 1) == 0);
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 6; i++) {
		in[i].coll = i % 2;		/* interleaved tags */
		snprintf(in[i].id, sizeof(in[i].id), "id%d", i);
		in[i].data = in[i].id;
		in[i].len = strlen(in[i].id);
	}
	CHECK(store_spool_append(sp, in, 6, why, sizeof(why)) == 0);
	CHECK(store_spool_count(sp) == 6);
	n = store_spool_peek(sp, 1u << 1, out, 8, why, sizeof(why));
	CHECK(n == 3);
	CHECK(n == 3 && strcmp(out[0].id, "id1") == 0 &&
	    strcmp(out[2].id, "id5") == 0 && out[1].len == 3 &&
	    memcmp(out[1].data, "id3", 3) == 0);
	/* removing tag 1's range leaves tag 0's rows inside it alone */
	CHECK(store_spool_remove(sp, 1u << 1, out[0].seq, out[2].seq, why,
	    sizeof(why)) == 0);
	CHECK(store_spool_count(sp) == 3);
	CHECK(store_spool_waiting(sp, 1u << 1) == 0);
	CHECK(store_spool_waiting(sp, 1u << 0) == 1);
	n = store_spool_peek(sp, 3, out, 2, why, sizeof(why));
	CHECK(n == 2 && strcmp(out[0].id, "id0") == 0 &&
	    strcmp(out[1].id, "id2") == 0);
	store_spool_close(sp);
	/* the count survives a reopen */
	sp = store_spool_open(path, err, sizeof(err));
	CHECK(sp != NULL && store_spool_count(sp) == 3);
	store_spool_close(sp);
}

/*
 * Two daemons started at the same instant on a store file that does not
 * exist yet (event-router and event-sub share it): both open it, every
 * time.  Each round forks two processes that block on a pipe, closes it
 * so both wake at once, and has each open the store on a fresh path.
 */
#define RACE_ROUNDS 50

static int
race_open(const struct cfg *cfg, unsigned kinds, int go)
{
	struct store *s;
	char err[512], c;
	int failed;

	(void)!read(go, &c, 1);		/* EOF: the parent says go */
	s = store_open(cfg, kinds, 0, err, sizeof(err), &failed);
	if (s == NULL) {
		fprintf(stderr, "test_store: race: %s\n", err);
		return 1;
	}
	store_close(s);
	return 0;
}

static void
test_fresh_file_race(struct cfg *cfg)
{
	static const unsigned kinds[2] = { STORE_EVENTS, STORE_RESULTS };
	int lost = 0, files_ok = 0;

	for (int round = 0; round < RACE_ROUNDS; round++) {
		pid_t pid[2];
		int go[2], st;

		snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path),
		    "%s/race/%d.db", dir, round);
		if (pipe(go) != 0)
			break;
		for (int k = 0; k < 2; k++) {
			pid[k] = fork();
			if (pid[k] == 0) {
				close(go[1]);
				_exit(race_open(cfg, kinds[k], go[0]));
			}
		}
		close(go[0]);
		close(go[1]);
		for (int k = 0; k < 2; k++) {
			if (pid[k] < 0 || waitpid(pid[k], &st, 0) != pid[k] ||
			    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				lost++;
		}
		if (strcmp(query1(SQ(*cfg)->path, "PRAGMA journal_mode"),
		    "wal") == 0 && strcmp(query1(SQ(*cfg)->path, "SELECT "
		    "count(*) FROM sqlite_master WHERE name IN ('events', "
		    "'results')"), "2") == 0)
			files_ok++;
	}
	if (lost > 0)
		fprintf(stderr, "test_store: race: %d of %d opens failed\n",
		    lost, 2 * RACE_ROUNDS);
	CHECK(lost == 0);
	CHECK(files_ok == RACE_ROUNDS);
}

/* The tables of schema version 1 (batch 1), without user_version. */
#define SCHEMA_V1_SQL "CREATE TABLE events (id TEXT PRIMARY KEY, "	\
	"namespace TEXT NOT NULL, event_type TEXT NOT NULL, timestamp "	\
	"REAL NOT NULL, body TEXT NOT NULL); CREATE TABLE results ("	\
	"event_id TEXT NOT NULL, driver TEXT NOT NULL, handler TEXT NOT "	\
	"NULL, status TEXT NOT NULL, exit_code INTEGER, signal INTEGER, "	\
	"started_at REAL NOT NULL, duration_ms REAL NOT NULL, stdout TEXT, "	\
	"stderr TEXT, error TEXT, data TEXT"

/*
 * A file made by sql (an older schema with one result row, 'old') at
 * name: a store opening it migrates it to version 4 (without the index
 * events_timestamp; events.id stays its key), and a new run 'new' (redelivered, replayed as
 * given) is written beside the old row; the rows then read want ("ID
 * REDELIVERED REPLAYED", comma-separated).
 */
static void
check_migration(struct cfg *cfg, const char *name, const char *sql,
    int redelivered, int replayed, const char *want)
{
	struct run_result res;
	struct store *s;
	struct store_stats st;
	char err[512];
	sqlite3 *db;
	int failed;

	snprintf(SQ(*cfg)->path, sizeof(SQ(*cfg)->path), "%s/%s", dir, name);
	CHECK(sqlite3_open(SQ(*cfg)->path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	s = store_open(cfg, STORE_RESULTS, 0, err, sizeof(err), &failed);
	CHECK(s != NULL && !failed);
	memset(&res, 0, sizeof(res));
	res.event_id = "new";
	res.driver = "shell";
	res.handler = "true";
	res.redelivered = redelivered;
	res.replayed = replayed;
	store_put_result(s, &res);
	store_flush(s);
	store_get_stats(s, &st);
	CHECK(st.written == 1);
	store_close(s);
	CHECK_STR(query1(SQ(*cfg)->path, "PRAGMA user_version"), "4");
	CHECK_STR(query1(SQ(*cfg)->path, "SELECT group_concat(name, ',') FROM "
	    "(SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY "
	    "name)"), "results_event_id,sqlite_autoindex_events_1");
	CHECK_STR(query1(SQ(*cfg)->path, "SELECT group_concat(event_id || ' ' "
	    "|| redelivered || ' ' || replayed, ',') FROM results"), want);
}

/*
 * A file of schema version 1 (batch 1: no results.redelivered) gets the
 * column when a store opens it: old rows read 0, a redelivered run 1.
 */
static void
test_schema_v1(struct cfg *cfg)
{
	check_migration(cfg, "v1.db", SCHEMA_V1_SQL "); INSERT INTO results "
	    "VALUES ('old', 'shell', 'true', 'ok', 0, NULL, 1, 1, NULL, NULL, "
	    "NULL, NULL); PRAGMA user_version = 1;", 1, 0, "old 0 0,new 1 0");
}

/*
 * A file of schema version 2 (no results.replayed) gets the column when a
 * store opens it: old rows read 0, a replay's run 1.
 */
static void
test_schema_v2(struct cfg *cfg)
{
	check_migration(cfg, "v2.db", SCHEMA_V1_SQL ", redelivered INTEGER "
	    "NOT NULL DEFAULT 0); INSERT INTO results VALUES ('old', 'shell', "
	    "'true', 'ok', 0, NULL, 1, 1, NULL, NULL, NULL, NULL, 1); PRAGMA "
	    "user_version = 2;", 0, 1, "old 1 0,new 0 1");
}

/*
 * A file of schema version 3 (with the index events_timestamp, which
 * nothing read) loses the index when a store opens it, and says so.
 */
static void
test_schema_v3(struct cfg *cfg)
{
	check_migration(cfg, "v3.db", SCHEMA_V1_SQL ", redelivered INTEGER "
	    "NOT NULL DEFAULT 0, replayed INTEGER NOT NULL DEFAULT 0); CREATE "
	    "INDEX results_event_id ON results(event_id); CREATE INDEX "
	    "events_timestamp ON events(timestamp); INSERT INTO results VALUES "
	    "('old', 'shell', 'true', 'ok', 0, NULL, 1, 1, NULL, NULL, NULL, "
	    "NULL, 1, 1); PRAGMA user_version = 3;", 0, 0, "old 1 1,new 0 0");
}

int
main(void)
{
	struct cfg cfg;
	struct store *s;
	struct run_result res;
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
	test_fresh_file_race(&cfg);
	snprintf(SQ(cfg)->path, sizeof(SQ(cfg)->path), "%s/sub/ev.db", dir);

	s = store_open(&cfg, STORE_EVENTS | STORE_RESULTS, 4, err, sizeof(err), &failed);
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
	res.status = RUN_OK;
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

	CHECK_STR(query1(SQ(cfg)->path, "SELECT count(*) FROM events"), "10");
	CHECK_STR(query1(SQ(cfg)->path, "PRAGMA journal_mode"), "wal");
	CHECK_STR(query1(SQ(cfg)->path, "PRAGMA user_version"), "4");
	CHECK_STR(query1(SQ(cfg)->path, "SELECT namespace || ' ' || event_type"
	    " || ' ' || timestamp FROM events ORDER BY id LIMIT 1"),
	    "ops disk.full 100.0");
	CHECK_STR(query1(SQ(cfg)->path, "SELECT handler || ' ' || status || "
	    "' ' || exit_code || ' ' || length(stdout) || ' ' || "
	    "ifnull(signal, 'null') FROM results"), "echo hi ok 0 5 null");
	/* output holding NUL: a BLOB of its bytes, whole (TEXT stops at the
	 * NUL for SQLite's functions) */
	CHECK_STR(query1(SQ(cfg)->path, "SELECT typeof(stdout) || ' ' || "
	    "hex(stdout) || ' ' || typeof(stderr) FROM results"),
	    "blob 68690A0078 text");

	/* a refusing store: failures counted, the queue keeps draining */
	fprintf(stderr, "test_store: the ERROR lines below are expected "
	    "(simulated failures, then a full MongoDB spool)\n");
	{
		sqlite3 *db;
		sqlite3_open(SQ(cfg)->path, &db);
		sqlite3_exec(db, "CREATE TRIGGER no BEFORE INSERT ON events BEGIN "
		    "SELECT RAISE(ABORT, 'simulated failure'); END;", NULL, NULL,
		    NULL);
		sqlite3_close(db);
	}
	s = store_open(&cfg, STORE_EVENTS | STORE_RESULTS, 4, err, sizeof(err), &failed);
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
	CHECK_STR(query1(SQ(cfg)->path, "SELECT count(*) FROM results"), "2");
	test_schema_v1(&cfg);
	test_schema_v2(&cfg);
	test_schema_v3(&cfg);

	/* an unopenable store is refused with the path */
	snprintf(SQ(cfg)->path, sizeof(SQ(cfg)->path), "%s/no/such/dir/x.db",
	    dir);
	CHECK(store_open(&cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err), &failed) == NULL && failed);
	CHECK_CONTAINS(err, "no/such/dir/x.db");

	use_store(&cfg, "none");
	CHECK(store_open(&cfg, STORE_EVENTS | STORE_RESULTS, 0, err, sizeof(err), &failed) == NULL && !failed);
	cfg_free(&cfg);
	store_close(NULL);
	test_checkpoints();
	test_put_events();
	test_groups();
	test_refusals();
	test_spool_api();
	test_mongo_spool();
	store_cleanup();
	/* ours only: another test_store may be running beside this one */
	{
		char rm[sizeof(dir) + 16];
		snprintf(rm, sizeof(rm), "rm -rf %s", dir);
		CHECK(system(rm) == 0);
	}
	UNIT_END("test_store");
}
