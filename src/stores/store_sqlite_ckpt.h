/*
 * store_sqlite_ckpt: the SQLite store's checkpointer, a thread of its own
 * on a second connection to the file (store_sqlite.h,
 * STORE_SQLITE_CKPT_FRAMES and STORE_SQLITE_WAL_FRAMES), which also hands
 * the file's page cache back to the kernel (STORE_SQLITE_CACHED).
 */
#ifndef ER_STORE_SQLITE_CKPT_H
#define ER_STORE_SQLITE_CKPT_H

#include <pthread.h>
#include <sys/types.h>

struct sqlite3;

/* One store's checkpointer; db NULL when not started. */
struct sq_ckpt {
	struct sqlite3 *db;	/* its connection */
	const char *path;	/* the file (the store's string, borrowed) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;	/* want, busy or stop changed */
	int want;		/* the writer asks for a checkpoint */
	int busy;		/* a checkpoint of ours runs */
	int stop;
	int asked;		/* WAL pages when the writer last asked */
	int fd;			/* the file, for posix_fadvise, or -1 */
	off_t advised;		/* its page cache advised away below this */
	off_t dropped;		/* advised twice below this */
};

/*
 * Start the checkpointer of the file at path (borrowed until
 * store_sqlite_ckpt_stop()), whose writer is the connection writer: it
 * asks for checkpoints through SQLite's WAL hook.  When the thread or its
 * connection cannot start, logs a warning and has the writer checkpoint
 * at STORE_SQLITE_CKPT_FRAMES itself (SQLite's wal_autocheckpoint).
 */
void store_sqlite_ckpt_start(struct sq_ckpt *ck, struct sqlite3 *writer,
    const char *path);

/* Stop it and wait for its thread (nothing when not started). */
void store_sqlite_ckpt_stop(struct sq_ckpt *ck);

#endif
