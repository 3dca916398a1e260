/*
 * Unit tests of the store's records a producer waits for
 * (store_put_event_waited(), store_done_fd(), store_take_done()).
 */
#include <poll.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "cfg_plugins.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "store.h"
#include "store_backend.h"
#include "store_sqlite.h"
#include "unit.h"
#include "util.h"

static char dir[] = "/tmp/er-test-store-wait-XXXXXX";

/* cfg's store: the sqlite store's settings. */
#define SQ(cfg) ((struct store_sqlite_conf *)(cfg).store.conf)

/* Wait up to 5 s for s's decided records, and take up to max (a wake-up
 * may find none: store.h). */
static size_t
take_done(struct store *s, struct store_done *out, size_t max)
{
	struct pollfd pfd = { store_done_fd(s), POLLIN, 0 };
	double deadline = util_mono() + 5;
	size_t n = 0;

	while (n == 0 && util_mono() < deadline &&
	    poll(&pfd, 1, 5000) == 1)
		n = store_take_done(s, out, max);
	return n;
}

/*
 * Records a producer waits for (store_put_event_waited()): each reported
 * once through store_done_fd(), in order, with its tag and its fate (a
 * row the database refuses: STORE_FAILED); written by the producer
 * itself when the writer is idle (store_write_waited()), else by the
 * writer.
 */
static void
test_waited(void)
{
	const char *ok = "{\"event_type\":\"ok\"}", *bad = "{\"event_type\":"
	    "\"bad\"}", *in[4] = { ok, bad, ok, ok };
	struct store_done d[8];
	struct store_stats st;
	struct event_error eerr;
	struct event ev;
	struct store *s;
	struct cfg cfg;
	char err[512];
	size_t n = 0;
	int failed;

	cfg_defaults(&cfg);
	snprintf(SQ(cfg)->path, sizeof(SQ(cfg)->path), "%s/waited.db", dir);
	s = store_open(&cfg, STORE_EVENTS, 0, err, sizeof(err), &failed);
	CHECK(s != NULL && store_done_fd(s) >= 0 && store_done_fd(NULL) == -1);
	{
		sqlite3 *db;
		sqlite3_open(SQ(cfg)->path, &db);
		CHECK(sqlite3_exec(db, "CREATE TRIGGER no BEFORE INSERT ON events "
		    "WHEN NEW.event_type = 'bad' BEGIN SELECT RAISE(ABORT, 'no'); "
		    "END;", NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
	}
	for (int i = 0; i < 4; i++) {
		CHECK(event_ingest(in[i], strlen(in[i]), "local", 0, 1, &ev,
		    &eerr) == 0);
		if (i == 2)		/* nobody waits for this one */
			store_put_event(s, &ev);
		else
			store_put_event_waited(s, &ev, 100 + i);
	}
	while (n < 3 && (failed = (int)take_done(s, d + n, 8 - n)) > 0)
		n += (size_t)failed;
	CHECK(n == 3 && d[0].tag == 100 && d[1].tag == 101 && d[2].tag == 103);
	CHECK(d[0].status == STORE_WRITTEN && d[1].status == STORE_FAILED &&
	    d[2].status == STORE_WRITTEN);
	CHECK(store_take_done(s, d, 8) == 0);
	/* the writer idle (store_flush() waits until it is), a record waited
	 * for is written in the producer's thread before it waits, its fate
	 * ready at once; unless the writer woke meanwhile (a spurious wake-up
	 * of its condition variable) and took it */
	for (int i = 0; i < 41; i++) {
		int mine;
		store_flush(s);
		CHECK(event_ingest(ok, strlen(ok), "local", 0, 1, &ev, &eerr) == 0);
		store_put_event_waited(s, &ev, (unsigned long long)i);
		mine = store_write_waited(s);
		CHECK((mine ? store_take_done(s, d, 8) : take_done(s, d, 8)) ==
		    1 && d[0].tag == (unsigned)i);
		CHECK(store_write_waited(s) == 0);
		n += (size_t)mine;
	}
	CHECK(n > 3 + 20);	/* most in the producer's thread */
	/* not written by the producer: store_flush() has the writer do it */
	CHECK(event_ingest(ok, strlen(ok), "local", 0, 1, &ev, &eerr) == 0);
	store_put_event_waited(s, &ev, 999);
	store_flush(s);
	CHECK(take_done(s, d, 8) == 1 && d[0].tag == 999);
	store_get_stats(s, &st);
	CHECK(st.written == 45 && st.failed == 1);
	store_close(s);
	cfg_free(&cfg);
}

/*
 * STORE_IDLE_MS after the last write the writer gives the sqlite store's
 * page cache back (store_backend.h, idle): SQLite's own count of its
 * memory falls without a record more.  Also while a producer writes
 * (store_write_waited()): the writer never uses the connection meanwhile.
 */
static void
test_idle_release(void)
{
	struct event_error eerr;
	struct event ev;
	struct store *s;
	struct cfg cfg;
	char err[512], body[600];
	sqlite3_int64 full, now;
	double deadline;
	int failed, bad = 0;

	cfg_defaults(&cfg);
	snprintf(SQ(cfg)->path, sizeof(SQ(cfg)->path), "%s/idle.db", dir);
	s = store_open(&cfg, STORE_EVENTS, 0, err, sizeof(err), &failed);
	CHECK(s != NULL);
	for (int i = 0; i < 20000; i++) {
		snprintf(body, sizeof(body), "{\"event_type\":\"idle\","
		    "\"payload\":{\"n\":%d,\"pad\":\"%0400d\"}}", i, i);
		if (event_ingest(body, strlen(body), "local", 0, 1, &ev,
		    &eerr) != 0)
			bad++;
		else
			store_put_event(s, &ev);
	}
	CHECK(bad == 0);
	store_flush(s);
	full = sqlite3_memory_used();
	deadline = util_mono() + 10 + STORE_IDLE_MS / 1000.0;
	do {
		usleep(20000);
		now = sqlite3_memory_used();
	} while (now > full - 1024 * 1024 && util_mono() < deadline);
	if (now > full - 1024 * 1024)
		fprintf(stderr, "SQLite holds %lld bytes, %lld before the "
		    "writer was idle\n", (long long)now, (long long)full);
	CHECK(now <= full - 1024 * 1024);
	store_close(s);
	cfg_free(&cfg);
}

int
main(void)
{
	char rm[sizeof(dir) + 16];

	log_init("test_store_wait", LOG_LVL_ERROR);
	/* SQLite counts its memory (test_idle_release()): the store turns
	 * the count off, unless SQLite is started before it */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1);
	sqlite3_initialize();
	if (mkdtemp(dir) == NULL)
		return 2;
	fprintf(stderr, "test_store_wait: the ERROR line below is expected "
	    "(a refused row)\n");
	test_waited();
	test_idle_release();
	store_cleanup();
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	CHECK(system(rm) == 0);
	UNIT_END("test_store_wait");
}
