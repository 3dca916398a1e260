/*
 * store_sqlite: the embedded store (store.type "sqlite", the default), a
 * store plugin (store_backend.h).  The schema is documented in
 * event-reactor(7), "Event store".
 */
#ifndef ER_STORE_SQLITE_H
#define ER_STORE_SQLITE_H

#include <stddef.h>

#include "store_backend.h"

/*
 * SQLite checkpoints (WAL pages copied back into the database file, each
 * copy followed by an fsync) run in a thread of their own, on a second
 * connection, once the WAL holds STORE_SQLITE_CKPT_FRAMES pages (SQLite's
 * own default, wal_autocheckpoint).  Once it holds
 * STORE_SQLITE_WAL_FRAMES pages, the writer checkpoints what is left
 * itself, so that the WAL starts over (64 MiB at 16 KiB pages; see
 * store_sqlite.c for why the thread alone cannot bound it).
 */
#define STORE_SQLITE_CKPT_FRAMES 1000
#define STORE_SQLITE_WAL_FRAMES 4000
/*
 * A reader that keeps a transaction open stops any checkpoint at its
 * snapshot, so the WAL grows past the bound above until it ends; when the
 * WAL starts over, its file is cut back to this many bytes (SQLite's
 * journal_size_limit; 64 MiB).
 */
#define STORE_SQLITE_WAL_KEEP (64LL << 20)
/*
 * After each background checkpoint the database file's page cache is
 * handed back to the kernel but for its last this many bytes (64 MiB: the
 * rows the writer appends to and a subscriber catching up reads;
 * store_sqlite_ckpt.c says why).
 */
#define STORE_SQLITE_CACHED (64LL << 20)

/* Its settings: {"type": "sqlite", "path": ...} (event-reactor.conf(5)). */
struct store_sqlite_conf {
	char path[4096];	/* absolute; default CFG_DEFAULT_STORE_PATH */
};

/*
 * Open (create, with its directory) the SQLite store at path and fill
 * *out; its write puts each batch in one transaction.  Returns 0, or -1
 * with err[errsz] set ("store sqlite PATH: why") and nothing left open.
 */
int store_sqlite_open(const char *path, struct store_backend *out, char *err,
    size_t errsz);

#endif
