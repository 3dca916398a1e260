/*
 * store_sqlite_file: the SQLite files of the stores, the SQLite store's
 * (store_sqlite.c, its tables in store_sqlite_schema.c, its checkpointer
 * in store_sqlite_ckpt.c), the MongoDB
 * store's spool (spool.c) and event-sub's journal (journal.c).  With
 * those, the only module that includes sqlite3.h.
 *
 * Both daemons may open the same file, and both may be creating it at
 * once: store_sqlite_file_open() puts it in WAL mode (readers never block
 * the writer; each writer waits up to STORE_SQLITE_BUSY_MS for the
 * other's transaction) and tries again each step that can meet the other
 * process.
 */
#ifndef ER_STORE_SQLITE_FILE_H
#define ER_STORE_SQLITE_FILE_H

#include <stddef.h>

struct sqlite3;		/* sqlite3.h: typedef struct sqlite3 sqlite3 */

/* How long a connection waits for another's lock (busy_timeout), ms. */
#define STORE_SQLITE_BUSY_MS 10000

/*
 * Open (creating it and its directory) the SQLite file at path in WAL
 * mode with our busy timeout (a new file gets pages of page_size bytes,
 * 0: 16 KiB, for records in groups), and create schema_sql (statements;
 * NULL: none, the caller creates its tables) in one transaction, which
 * also makes PATH-wal; before any of it, check (NULL: none) may refuse
 * the file unchanged, returning -1 with why[whysz] set.  Another process
 * may be doing the same on the same new
 * file (both daemons starting at once): each step that can meet it is
 * tried again for up to STORE_SQLITE_BUSY_MS in all.  *db is set even on
 * failure (close it with sqlite3_close()).  Returns 0, or -1 with
 * err[errsz] set to "LABEL PATH: why".
 */
int store_sqlite_file_open(const char *path, const char *schema_sql,
    int (*check)(struct sqlite3 *db, char *why, size_t whysz),
    int page_size, const char *label, struct sqlite3 **db, char *err,
    size_t errsz);

/*
 * Run sql (one or more statements) on db.  Returns 0, or -1 with
 * err[errsz] set to SQLite's message (err may be NULL with errsz 0).
 */
int store_sqlite_exec(struct sqlite3 *db, const char *sql, char *err,
    size_t errsz);

#endif
