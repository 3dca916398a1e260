/*
 * spool: the MongoDB store's local spool (spool.h), a SQLite file opened
 * as the SQLite store opens its own (store_sqlite_file.h).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "store_sqlite_file.h"
#include "util.h"

static const char spool_schema[] =
    "CREATE TABLE IF NOT EXISTS spool ("
    " seq INTEGER PRIMARY KEY,"	/* order of arrival */
    " coll INTEGER NOT NULL,"		/* the caller's tag */
    " event_id TEXT NOT NULL,"
    " doc BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS spool_coll ON spool(coll, seq);"
    /* an exact count in O(1) for the bound, kept by triggers: max(seq) -
     * min(seq) overcounts once two daemons delete out of each other's
     * order */
    "CREATE TABLE IF NOT EXISTS spool_count ("
    " id INTEGER PRIMARY KEY CHECK (id = 0),"
    " n INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO spool_count VALUES (0, (SELECT count(*) FROM "
    "spool));"
    "CREATE TRIGGER IF NOT EXISTS spool_ins AFTER INSERT ON spool BEGIN"
    " UPDATE spool_count SET n = n + 1 WHERE id = 0; END;"
    "CREATE TRIGGER IF NOT EXISTS spool_del AFTER DELETE ON spool BEGIN"
    " UPDATE spool_count SET n = n - 1 WHERE id = 0; END;";

struct store_spool {
	sqlite3 *db;
	sqlite3_stmt *ins, *peek, *del, *count, *waiting;
	char *path;
	void **bufs;		/* copies handed out by peek */
	size_t nbufs;
};

static void
spool_free_bufs(struct store_spool *sp)
{
	for (size_t i = 0; i < sp->nbufs; i++)
		free(sp->bufs[i]);
	free(sp->bufs);
	sp->bufs = NULL;
	sp->nbufs = 0;
}

void
store_spool_close(struct store_spool *sp)
{
	if (sp == NULL)
		return;
	spool_free_bufs(sp);
	sqlite3_finalize(sp->ins);
	sqlite3_finalize(sp->peek);
	sqlite3_finalize(sp->del);
	sqlite3_finalize(sp->count);
	sqlite3_finalize(sp->waiting);
	sqlite3_close(sp->db);
	free(sp->path);
	free(sp);
}

struct store_spool *
store_spool_open(const char *path, char *err, size_t errsz)
{
	struct store_spool *sp = xcalloc(1, sizeof(*sp));

	if (store_sqlite_file_open(path, spool_schema, NULL, 0, "spool",
	    &sp->db, err, errsz) != 0)
		goto fail;
	if (sqlite3_prepare_v2(sp->db, "INSERT INTO spool (coll, event_id, doc)"
	    " VALUES (?, ?, ?)", -1, &sp->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db, "SELECT seq, coll, event_id, doc FROM "
	    "spool WHERE (1 << coll) & ?1 ORDER BY seq LIMIT ?2", -1, &sp->peek,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db, "DELETE FROM spool WHERE (1 << coll) & "
	    "?1 AND seq BETWEEN ?2 AND ?3", -1, &sp->del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db, "SELECT 1 FROM spool WHERE (1 << coll) "
	    "& ?1 LIMIT 1", -1, &sp->waiting, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sp->db, "SELECT n FROM spool_count WHERE id = 0",
	    -1, &sp->count, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "spool %s: %s", path,
		    sqlite3_errmsg(sp->db));
		goto fail;
	}
	sp->path = xstrdup(path);
	return sp;
fail:
	store_spool_close(sp);
	return NULL;
}

long long
store_spool_count_of(struct store_spool *sp, unsigned mask)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(sp->db, "SELECT count(*) FROM spool WHERE "
	    "(1 << coll) & ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, mask);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

long long
store_spool_count(struct store_spool *sp)
{
	long long n = -1;

	if (sqlite3_step(sp->count) == SQLITE_ROW)
		n = sqlite3_column_int64(sp->count, 0);
	sqlite3_reset(sp->count);
	return n;
}

int
store_spool_waiting(struct store_spool *sp, unsigned mask)
{
	int rc;

	sqlite3_bind_int64(sp->waiting, 1, mask);
	rc = sqlite3_step(sp->waiting);
	sqlite3_reset(sp->waiting);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int
store_spool_append(struct store_spool *sp, const struct spool_item *items,
    size_t n, char *why, size_t whysz)
{
	size_t i;

	if (store_sqlite_exec(sp->db, "BEGIN IMMEDIATE", why, whysz) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		int rc;
		sqlite3_bind_int(sp->ins, 1, items[i].coll);
		sqlite3_bind_text(sp->ins, 2, items[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(sp->ins, 3, items[i].data, items[i].len,
		    SQLITE_STATIC);
		rc = sqlite3_step(sp->ins);
		sqlite3_reset(sp->ins);
		sqlite3_clear_bindings(sp->ins);
		if (rc != SQLITE_DONE) {
			char ignore[64];
			snprintf(why, whysz, "%s", sqlite3_errmsg(sp->db));
			store_sqlite_exec(sp->db, "ROLLBACK", ignore,
			    sizeof(ignore));
			return -1;
		}
	}
	if (store_sqlite_exec(sp->db, "COMMIT", why, whysz) != 0) {
		char ignore[64];
		store_sqlite_exec(sp->db, "ROLLBACK", ignore, sizeof(ignore));
		return -1;
	}
	return 0;
}

int
store_spool_peek(struct store_spool *sp, unsigned mask, struct spool_item *items,
    size_t max, char *why, size_t whysz)
{
	size_t n = 0;
	int rc = SQLITE_DONE;

	spool_free_bufs(sp);
	sp->bufs = xcalloc(max, sizeof(*sp->bufs));
	sqlite3_bind_int64(sp->peek, 1, mask);
	sqlite3_bind_int64(sp->peek, 2, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(sp->peek)) == SQLITE_ROW) {
		const unsigned char *id = sqlite3_column_text(sp->peek, 2);
		const void *doc = sqlite3_column_blob(sp->peek, 3);
		size_t len = (size_t)sqlite3_column_bytes(sp->peek, 3);
		void *copy = xmalloc(len ? len : 1);

		memcpy(copy, doc, len);
		sp->bufs[sp->nbufs++] = copy;
		items[n].seq = sqlite3_column_int64(sp->peek, 0);
		items[n].coll = sqlite3_column_int(sp->peek, 1);
		snprintf(items[n].id, sizeof(items[n].id), "%s",
		    id ? (const char *)id : "");
		items[n].data = copy;
		items[n].len = len;
		n++;
	}
	if (n < max && rc != SQLITE_DONE) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(sp->db));
		sqlite3_reset(sp->peek);
		return -1;
	}
	sqlite3_reset(sp->peek);
	return (int)n;
}

int
store_spool_remove(struct store_spool *sp, unsigned mask, long long first,
    long long last, char *why, size_t whysz)
{
	int rc;

	sqlite3_bind_int64(sp->del, 1, mask);
	sqlite3_bind_int64(sp->del, 2, first);
	sqlite3_bind_int64(sp->del, 3, last);
	rc = sqlite3_step(sp->del);
	sqlite3_reset(sp->del);
	if (rc != SQLITE_DONE) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(sp->db));
		return -1;
	}
	return 0;
}
