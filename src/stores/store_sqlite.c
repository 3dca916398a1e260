/*
 * store_sqlite: the embedded backend.  WAL mode, so event-router and
 * event-sub can write the same file (each waits up to busy_timeout for the
 * other's transaction) while readers never block.  synchronous=NORMAL: in
 * WAL mode a committed group survives a crash of the process; only a power
 * loss can take back the last groups (SQLite docs, "PRAGMA synchronous").
 * The file is opened as store_sqlite_file.h says.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg_reader.h"
#include "journal.h"
#include "log.h"
#include "store.h"
#include "store_backend.h"
#include "store_sqlite.h"
#include "store_sqlite_ckpt.h"
#include "store_sqlite_file.h"
#include "store_sqlite_schema.h"
#include "util.h"

/*
 * Events go in groups of GROUP_ROWS[g] rows per INSERT statement when
 * enough are queued: one statement for many rows costs far less than a
 * statement each (SQLite then starts each B-tree search where the last
 * row went; make bench: the writer needs about a third less time a row).
 */
static const int GROUP_ROWS[] = { 256, 16 };
#define NGROUPS (int)(sizeof(GROUP_ROWS) / sizeof(GROUP_ROWS[0]))
#define EVENT_COLS 5

struct sq {
	sqlite3 *db;
	sqlite3_stmt *ins_event;
	sqlite3_stmt *ins_events[NGROUPS];	/* GROUP_ROWS[g] rows */
	sqlite3_stmt *sp_begin, *sp_release, *sp_undo;	/* a group's savepoint */
	/* a batch's transaction, prepared once (REQ/REP: a batch of one) */
	sqlite3_stmt *tx_begin, *tx_commit, *tx_rollback;
	unsigned char how[STORE_BATCH_MAX];	/* enum how, per record */
	int refused;		/* the last batch had a row refused */
	sqlite3_stmt *ins_result;
	char *path;
	struct sq_ckpt ck;	/* the checkpointer */
};

static void
bind_text(sqlite3_stmt *st, int i, const char *s, size_t n)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, (int)n, SQLITE_STATIC);
}

/* Captured output: TEXT when UTF-8 without NUL, else a BLOB of its bytes */
static void
bind_output(sqlite3_stmt *st, int i, const char *s, size_t n)
{
	if (s != NULL && !event_utf8_text(s, n))
		sqlite3_bind_blob(st, i, s, (int)n, SQLITE_STATIC);
	else
		bind_text(st, i, s, n);
}

/* Bind an event's columns to parameters base+1 .. base+EVENT_COLS. */
static void
bind_event(sqlite3_stmt *st, int base, const struct event *ev)
{
	bind_text(st, base + 1, ev->id, EVENT_ID_LEN);
	bind_text(st, base + 2, ev->namespace, strlen(ev->namespace));
	bind_text(st, base + 3, ev->event_type, strlen(ev->event_type));
	sqlite3_bind_double(st, base + 4, ev->timestamp);
	bind_text(st, base + 5, ev->json, ev->json_len);
}

static int
step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

/* Run a transaction's statement (BEGIN, COMMIT): 0, or -1 with why set. */
static int
tx_step(struct sq *q, sqlite3_stmt *st, char *why, size_t whysz)
{
	if (sqlite3_step(st) == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	snprintf(why, whysz, "%s", sqlite3_errmsg(q->db));
	sqlite3_reset(st);
	return -1;
}

/*
 * Run st (its parameters bound), which inserts rows rows, and keep its
 * work only if all of them went in: a statement refused with FAIL
 * semantics (ON CONFLICT FAIL, a trigger's RAISE(FAIL)) keeps what it did
 * before, and a trigger's RAISE(IGNORE) skips a row without an error.  A
 * group runs inside a savepoint, undone when it falls short.  A single
 * row does without one (a savepoint would more than double its cost): if
 * it is refused yet kept, the whole transaction is rolled back, and
 * insert_window() writes the batch again without it.  Returns 0, or -1
 * with why set and nothing of it kept.
 */
static int
insert_rows(struct sq *q, sqlite3_stmt *st, int rows, char *why,
    size_t whysz)
{
	int savepoint = rows > 1, rc, changes;

	if (savepoint && step_reset(q->sp_begin) != SQLITE_DONE) {
		snprintf(why, whysz, "%s", sqlite3_errmsg(q->db));
		return -1;
	}
	rc = step_reset(st);
	changes = sqlite3_changes(q->db);
	if (rc == SQLITE_DONE && changes == rows) {
		if (savepoint)
			step_reset(q->sp_release);
		return 0;
	}
	if (rc == SQLITE_DONE)
		snprintf(why, whysz, "not inserted (a trigger ignored it)");
	else
		snprintf(why, whysz, "%s", sqlite3_errmsg(q->db));
	if (sqlite3_get_autocommit(q->db))
		return -1;			/* SQLite rolled it all back */
	if (savepoint ? step_reset(q->sp_undo) != SQLITE_DONE ||
	    step_reset(q->sp_release) != SQLITE_DONE : changes > 0)
		/* cannot undo it alone */
		step_reset(q->tx_rollback);
	return -1;
}

/* Insert GROUP_ROWS[g] events in one statement (insert_rows). */
static int
insert_group(struct sq *q, int g, struct store_rec **recs, char *why,
    size_t whysz)
{
	sqlite3_stmt *st = q->ins_events[g];

	for (int i = 0; i < GROUP_ROWS[g]; i++)
		bind_event(st, i * EVENT_COLS, &recs[i]->ev);
	return insert_rows(q, st, GROUP_ROWS[g], why, whysz);
}

/* Insert one record (insert_rows). */
static int
insert(struct sq *q, struct store_rec *r, char *why, size_t whysz)
{
	sqlite3_stmt *st;

	if (r->kind == REC_EVENT) {
		st = q->ins_event;
		bind_event(st, 0, &r->ev);
	} else {
		const struct run_result *x = &r->res;
		const char *status = run_status_name(x->status);
		st = q->ins_result;
		bind_text(st, 1, x->event_id, strlen(x->event_id));
		bind_text(st, 2, x->driver, strlen(x->driver));
		bind_text(st, 3, x->handler, strlen(x->handler));
		bind_text(st, 4, status, strlen(status));
		if (x->has_exit_code)
			sqlite3_bind_int(st, 5, x->exit_code);
		else
			sqlite3_bind_null(st, 5);
		if (x->signal)
			sqlite3_bind_int(st, 6, x->signal);
		else
			sqlite3_bind_null(st, 6);
		sqlite3_bind_double(st, 7, x->started_at);
		sqlite3_bind_double(st, 8, x->duration_ms);
		bind_output(st, 9, x->out, x->out_len);
		bind_output(st, 10, x->err, x->err_len);
		bind_text(st, 11, x->error, x->error ? strlen(x->error) : 0);
		bind_text(st, 12, x->data, x->data ? strlen(x->data) : 0);
		sqlite3_bind_int(st, 13, x->redelivered != 0);
		sqlite3_bind_int(st, 14, x->replayed != 0);
	}
	/* every parameter is bound again for the next record */
	return insert_rows(q, st, 1, why, whysz);
}

/* How a record of the batch is to be written (sq->how). */
enum how { HOW_ANY, HOW_ALONE, HOW_REFUSED };

/*
 * Insert recs[start..end) in the open transaction, in groups where
 * GROUP_ROWS allows, setting ok[] (a refused row is logged and marked
 * HOW_REFUSED).  Returns 0, or -1 when SQLite rolled the whole
 * transaction back (a trigger's RAISE(ROLLBACK), a full disk during a
 * cache spill): then *lost is where the row or group that did it starts,
 * now marked (a group: its rows go alone; a row: refused), and nothing of
 * the window is written.
 */
static int
insert_window(struct sq *q, struct store_rec **recs, size_t start,
    size_t end, enum store_status *ok, size_t *lost, char *why,
    size_t whysz)
{
	unsigned char *how = q->how;
	size_t i;

	for (i = start; i < end;) {
		size_t run = 0, unit;
		int g;

		while (i + run < end && run < (size_t)GROUP_ROWS[0] &&
		    how[i + run] == HOW_ANY && recs[i + run]->kind == REC_EVENT)
			run++;
		for (g = 0; g < NGROUPS && run < (size_t)GROUP_ROWS[g]; g++)
			;
		if (g < NGROUPS) {
			unit = (size_t)GROUP_ROWS[g];
			if (insert_group(q, g, recs + i, why, whysz) == 0) {
				for (size_t j = i; j < i + unit; j++)
					ok[j] = STORE_WRITTEN;
				i += unit;
				continue;
			}
			/* refused: its rows one at a time, so that only the
			 * refused ones fail */
			memset(how + i, HOW_ALONE, unit);
			if (sqlite3_get_autocommit(q->db))
				goto lost;
		}
		if (how[i] != HOW_REFUSED) {
			if (insert(q, recs[i], why, whysz) == 0)
				ok[i] = STORE_WRITTEN;
			else {
				store_log_failure("sqlite", recs[i], why);
				how[i] = HOW_REFUSED;
				q->refused = 1;
				if (sqlite3_get_autocommit(q->db))
					goto lost;
			}
		}
		i++;
	}
	return 0;
lost:
	for (size_t j = start; j < end; j++)
		ok[j] = STORE_FAILED;
	*lost = i;
	return -1;
}

/*
 * After a batch with a row refused: have the connection read the schema
 * again if another connection changed it.  A connection checks the
 * schema when a statement starts a transaction; a statement that cannot
 * be compiled against the schema it knows (a trigger naming a column the
 * table lacks) never gets that far, so without this the trigger, once
 * dropped, would go on refusing every row until a restart.
 */
static void
schema_refresh(struct sq *q)
{
	store_sqlite_exec(q->db, "SELECT count(*) FROM sqlite_master", NULL,
	    0);
}

/*
 * One transaction per batch.  When SQLite rolls it back, the rows before
 * the row (or group) that did it go in again in a transaction of their
 * own, then the rest, without that row: a row is inserted twice at most
 * unless the disk fails meanwhile, and the records counted stored are the
 * rows in the file.  A window whose BEGIN or COMMIT fails fails whole.
 */
static void
write_batch(struct sq *q, struct store_rec **recs, size_t n,
    enum store_status *ok)
{
	size_t start = 0, end = n, lost, i;
	char why[512];

	memset(q->how, HOW_ANY, n);
	for (i = 0; i < n; i++)
		ok[i] = STORE_FAILED;
	if (q->refused)
		schema_refresh(q);
	q->refused = 0;
	while (start < n) {
		if (tx_step(q, q->tx_begin, why, sizeof(why)) == 0) {
			if (insert_window(q, recs, start, end, ok, &lost, why,
			    sizeof(why)) != 0) {
				if (lost > start)
					end = lost;	/* first what went well */
				continue;
			}
			if (tx_step(q, q->tx_commit, why, sizeof(why)) == 0) {
				start = end;
				end = n;
				continue;
			}
			step_reset(q->tx_rollback);
		}
		q->refused = 1;
		for (i = start; i < end; i++) {
			if (q->how[i] != HOW_REFUSED)
				store_log_failure("sqlite", recs[i], why);
			ok[i] = STORE_FAILED;
		}
		start = end;
		end = n;
	}
}

static void
sq_write(void *be, struct store_rec **recs, size_t n, enum store_status *ok)
{
	/* how[] holds STORE_BATCH_MAX records, the most a batch has */
	for (size_t k = 0; k < n; k += STORE_BATCH_MAX)
		write_batch(be, recs + k, n - k < STORE_BATCH_MAX ? n - k :
		    STORE_BATCH_MAX, ok + k);
}

static void
sq_close(void *be)
{
	struct sq *q = be;

	if (q == NULL)
		return;
	store_sqlite_ckpt_stop(&q->ck);
	sqlite3_finalize(q->ins_event);
	for (int g = 0; g < NGROUPS; g++)
		sqlite3_finalize(q->ins_events[g]);
	sqlite3_finalize(q->sp_begin);
	sqlite3_finalize(q->sp_release);
	sqlite3_finalize(q->sp_undo);
	sqlite3_finalize(q->tx_begin);
	sqlite3_finalize(q->tx_commit);
	sqlite3_finalize(q->tx_rollback);
	sqlite3_finalize(q->ins_result);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
}

/* Prepare *st, an INSERT of rows events: rows of "(?,?,?,?,?)". */
static int
prepare_events(struct sq *q, int rows, sqlite3_stmt **st, char *err,
    size_t errsz)
{
	static const char head[] = "INSERT INTO events (id, namespace, "
	    "event_type, timestamp, body) VALUES ";
	size_t sz = sizeof(head) + (size_t)rows * 16, len;
	char *sql = xmalloc(sz);
	int rc;

	len = (size_t)snprintf(sql, sz, "%s", head);
	for (int i = 0; i < rows; i++)
		len += (size_t)snprintf(sql + len, sz - len, "%s(?,?,?,?,?)",
		    i ? "," : "");
	rc = sqlite3_prepare_v2(q->db, sql, (int)len, st, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "store sqlite %s: %s", q->path,
		    sqlite3_errmsg(q->db));
		return -1;
	}
	return 0;
}

/*
 * The writer has been idle a while after writing (store_backend.h, idle):
 * give back the page cache (up to cache_size, 2 MiB by default), which a
 * quiet daemon would otherwise keep for good.
 */
static void
sq_idle(void *be)
{
	struct sq *q = be;

	sqlite3_db_release_memory(q->db);
}

int
store_sqlite_open(const char *path, struct store_backend *out, char *err,
    size_t errsz)
{
	struct sq *q = xcalloc(1, sizeof(*q));
	char sql[64];

	q->ck.db = NULL;
	q->path = xstrdup(path);
	if (store_sqlite_file_open(path, NULL, store_sqlite_schema_check, 0,
	    "store sqlite", &q->db, err, errsz) != 0 ||
	    store_sqlite_schema(q->db, path, err, errsz) != 0)
		goto fail;
	if (prepare_events(q, 1, &q->ins_event, err, errsz) != 0)
		goto fail;
	if (sqlite3_prepare_v2(q->db, "INSERT INTO results (event_id, driver, "
	    "handler, status, exit_code, signal, started_at, duration_ms, "
	    "stdout, stderr, error, data, redelivered, replayed) VALUES (?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &q->ins_result, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "store sqlite %s: %s", path,
		    sqlite3_errmsg(q->db));
		goto fail;
	}
	for (int g = 0; g < NGROUPS; g++)
		if (prepare_events(q, GROUP_ROWS[g], &q->ins_events[g], err,
		    errsz) != 0)
			goto fail;
	if (sqlite3_prepare_v2(q->db, "SAVEPOINT grp", -1, &q->sp_begin,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "RELEASE grp", -1, &q->sp_release,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "ROLLBACK TO grp", -1, &q->sp_undo,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "BEGIN IMMEDIATE", -1, &q->tx_begin,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "COMMIT", -1, &q->tx_commit,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "ROLLBACK", -1, &q->tx_rollback,
	    NULL) != SQLITE_OK) {
		snprintf(err, errsz, "store sqlite %s: %s", path,
		    sqlite3_errmsg(q->db));
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit=%lld",
	    STORE_SQLITE_WAL_KEEP);
	if (store_sqlite_exec(q->db, sql, err, errsz) != 0)
		goto fail;
	store_sqlite_ckpt_start(&q->ck, q->db, q->path);
	out->name = "sqlite";
	out->write = sq_write;
	out->tick = NULL;
	out->idle = sq_idle;
	out->close = sq_close;
	out->be = q;
	log_info("store sqlite: %s (schema version %d)", path,
	    STORE_SQLITE_SCHEMA);
	return 0;
fail:
	sq_close(q);
	return -1;
}

static int
sq_open(const void *conf, unsigned kinds, struct store_backend *out,
    char *err, size_t errsz)
{
	const struct store_sqlite_conf *c = conf;

	(void)kinds;
	return store_sqlite_open(c->path, out, err, errsz);
}

static int
sq_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	struct store_sqlite_conf *c = xcalloc(1, sizeof(*c));
	int rc;

	snprintf(c->path, sizeof(c->path), "%s", CFG_DEFAULT_STORE_PATH);
	if (cfg == NULL) {
		/* a section of another type: its "path" checked only */
		rc = cfg_get_str(r, section, "path", c->path, sizeof(c->path));
		free(c);
		return rc;
	}
	p->conf = c;
	return store_get_path(r, section, "path", c->path, sizeof(c->path));
}

static const char *
sq_events_file(const void *conf)
{
	return ((const struct store_sqlite_conf *)conf)->path;
}

/* event-sub's reader: the file attached to its journal; without one
 * (a replay), the file read only, never created. */
static int
sq_read_open(const void *conf, struct journal *j, struct store_reader *out,
    char *err, size_t errsz)
{
	const char *path = sq_events_file(conf);
	struct stat st;

	if (j != NULL)
		return journal_attach(j, path, out, err, errsz);
	if (stat(path, &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? -2 : -1;
	}
	return journal_open_reader(path, out, err, errsz);
}

static void
sq_read_source(const void *conf, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s", sq_events_file(conf));
}

static const char *const sq_keys[] = { "path", NULL };

const struct store_plugin store_sqlite_plugin = {
	.name = "sqlite", .keys = sq_keys, .parse = sq_parse, .open = sq_open,
	.read_open = sq_read_open,
	.read_source = sq_read_source, .local_file = sq_events_file,
};
