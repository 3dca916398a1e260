/*
 * store_sqlite_ckpt: the SQLite store's checkpointer.  See
 * store_sqlite_ckpt.h.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_sqlite.h"
#include "store_sqlite_ckpt.h"
#include "store_sqlite_file.h"

static struct log_ratelimit ckpt_rl = { .interval = 60, .burst = 3,
    .what = "\"checkpoint failed\" lines" };

/*
 * Checkpoints (store_sqlite.h, STORE_SQLITE_CKPT_FRAMES) run in a
 * thread on a second connection, so the writer goes on appending to the WAL
 * while pages are copied and synced.  SQLite starts the WAL over only when
 * a writer begins a transaction with all of it copied, which a checkpoint
 * running beside a busy writer never achieves: under a long burst the WAL
 * would grow without end.  So once it holds STORE_SQLITE_WAL_FRAMES pages
 * the writer checkpoints itself after its commit, copying the little the
 * thread has not, and its next transaction starts the WAL over.  Both are
 * PASSIVE, never waiting for readers (as SQLite's own checkpoints).
 */
static void
ckpt_failed(sqlite3 *db, int rc, const char *who)
{
	/* BUSY: another checkpoint runs (the other daemon's, or ours) */
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_limited(&ckpt_rl, LOG_LVL_WARNING, "store sqlite: %s "
		    "checkpoint failed: %s", who, sqlite3_errmsg(db));
}

/*
 * One PASSIVE checkpoint on db (the thread's connection or the writer's),
 * one of ours at a time: called, and returns, with mu held.
 */
static void
checkpoint_locked(struct sq_ckpt *ck, sqlite3 *db, const char *name,
    const char *who)
{
	while (ck->busy)
		pthread_cond_wait(&ck->cond, &ck->mu);
	ck->busy = 1;
	pthread_mutex_unlock(&ck->mu);
	ckpt_failed(db, sqlite3_wal_checkpoint_v2(db, name,
	    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL), who);
	pthread_mutex_lock(&ck->mu);
	ck->busy = 0;
	pthread_cond_broadcast(&ck->cond);
}

/*
 * After each checkpoint (called with mu held): hand the file's page cache
 * back to the kernel (POSIX_FADV_DONTNEED) but for its last
 * STORE_SQLITE_CACHED bytes, which the writer and a subscriber catching
 * up read.  The kernel drops only pages already on disk, and starts
 * writing the others: so each range is advised twice, the second time at
 * the next checkpoint, once written (a checkpoint beside a busy writer
 * rarely copies the whole WAL, and only then does SQLite sync the file).
 * Without it the cache of a file that only grows takes fresh memory for
 * every page written, which on a virtual machine that gives freed memory
 * back to its host (virtio-balloon's free page reporting) costs a
 * checkpoint several times its copy.
 */
static void
cache_handback(struct sq_ckpt *ck)
{
	struct stat st;
	off_t end;

	if (ck->fd < 0 || fstat(ck->fd, &st) != 0)
		return;
	if (st.st_size < ck->advised)		/* made smaller (VACUUM) */
		ck->dropped = ck->advised = 0;
	end = st.st_size - STORE_SQLITE_CACHED;
	if (end <= ck->advised || posix_fadvise(ck->fd, ck->dropped,
	    end - ck->dropped, POSIX_FADV_DONTNEED) != 0)
		return;
	ck->dropped = ck->advised;
	ck->advised = end;
	if (ck->dropped > 0)
		log_debug("store sqlite: %s: page cache handed back below byte "
		    "%lld of %lld", ck->path, (long long)ck->dropped,
		    (long long)st.st_size);
}

static void *
ckpt_main(void *arg)
{
	struct sq_ckpt *ck = arg;

	pthread_mutex_lock(&ck->mu);
	for (;;) {
		while (!ck->want && !ck->stop)
			pthread_cond_wait(&ck->cond, &ck->mu);
		if (ck->stop)
			break;
		ck->want = 0;
		checkpoint_locked(ck, ck->db, NULL, "background");
		/* what it read is read again in a second or more */
		sqlite3_db_release_memory(ck->db);
		cache_handback(ck);
	}
	pthread_mutex_unlock(&ck->mu);
	return NULL;
}

/*
 * sqlite3_wal_hook: after each commit of the writer, with the pages in the
 * WAL.  Past STORE_SQLITE_WAL_FRAMES the writer waits for a checkpoint of
 * the thread's to end, then copies what is left itself.
 */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_ckpt *ck = arg;

	if (frames < ck->asked)		/* the WAL started over */
		ck->asked = 0;
	if (frames < ck->asked + STORE_SQLITE_CKPT_FRAMES)
		return SQLITE_OK;
	pthread_mutex_lock(&ck->mu);
	if (frames < STORE_SQLITE_WAL_FRAMES) {
		/* every STORE_SQLITE_CKPT_FRAMES new pages, not every commit:
		 * the pages every commit rewrites (the last of each B-tree)
		 * are copied and synced once per round, not once per commit */
		ck->asked = frames;
		ck->want = 1;
		pthread_cond_broadcast(&ck->cond);
	} else {
		checkpoint_locked(ck, db, name, "writer");
		cache_handback(ck);
	}
	pthread_mutex_unlock(&ck->mu);
	return SQLITE_OK;
}

void
store_sqlite_ckpt_stop(struct sq_ckpt *ck)
{
	if (ck->db == NULL)
		return;
	pthread_mutex_lock(&ck->mu);
	ck->stop = 1;
	pthread_cond_broadcast(&ck->cond);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->thread, NULL);
	sqlite3_close(ck->db);
	ck->db = NULL;
	if (ck->fd >= 0)
		close(ck->fd);
	ck->fd = -1;
	pthread_mutex_destroy(&ck->mu);
	pthread_cond_destroy(&ck->cond);
}

/*
 * Start the checkpointer.  Without it (no second connection, no thread)
 * the writer checkpoints itself at STORE_SQLITE_CKPT_FRAMES, as SQLite
 * does by default.
 */
void
store_sqlite_ckpt_start(struct sq_ckpt *ck, sqlite3 *writer,
    const char *path)
{
	char why[256];

	ck->path = path;
	ck->fd = -1;
	ck->dropped = ck->advised = 0;

	if (sqlite3_open_v2(ck->path, &ck->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(why, sizeof(why), "%s", ck->db ?
		    sqlite3_errmsg(ck->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(ck->db, STORE_SQLITE_BUSY_MS);
	/* a connection finds the WAL when it first reads the file; till
	 * then its checkpoints do nothing */
	if (store_sqlite_exec(ck->db, "PRAGMA schema_version", why,
	    sizeof(why)) != 0)
		goto fail;
	ck->fd = open(ck->path, O_RDONLY | O_CLOEXEC);
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cond, NULL);
	if (pthread_create(&ck->thread, NULL, ckpt_main, ck) != 0) {
		snprintf(why, sizeof(why), "cannot start a thread");
		pthread_mutex_destroy(&ck->mu);
		pthread_cond_destroy(&ck->cond);
		goto fail;
	}
	sqlite3_wal_hook(writer, wal_hook, ck);
	return;
fail:
	log_warn("store sqlite: %s: no background checkpoints (%s): the "
	    "writer makes them", ck->path, why);
	sqlite3_close(ck->db);
	ck->db = NULL;
	if (ck->fd >= 0)
		close(ck->fd);
	ck->fd = -1;
	sqlite3_wal_autocheckpoint(writer, STORE_SQLITE_CKPT_FRAMES);
}

