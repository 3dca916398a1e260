/*
 * store_sqlite_file: the SQLite files of the stores (store_sqlite_file.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_sqlite_file.h"
#include "util.h"

int
store_sqlite_exec(sqlite3 *db, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}


/* A user's name, or its number when it has none, in buf[bufsz]. */
static const char *
user_name(uid_t uid, char *buf, size_t bufsz)
{
	struct passwd *pw = getpwuid(uid);	/* static: copied at once */

	if (pw != NULL)
		snprintf(buf, bufsz, "%s", pw->pw_name);
	else
		snprintf(buf, bufsz, "%lu", (unsigned long)uid);
	return buf;
}

/*
 * The first of path, path-wal and path-shm (SQLite's, beside it) that
 * exists and this process cannot write (a directory in SQLite's place:
 * EISDIR): returned as "it" (path) or *name (malloc'd, for the caller
 * to free; NULL when unused), its stat into *st and the reason's errno
 * into *e; NULL when none.
 */
static const char *
unwritable(const char *path, struct stat *st, int *e, char **name)
{
	static const char *const sfx[] = { "-wal", "-shm" };

	*name = NULL;
	if (stat(path, st) == 0 &&
	    faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) != 0) {
		*e = errno;
		return "it";
	}
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (asprintf(name, "%s%s", path, sfx[i]) < 0)
			abort();
		if (stat(*name, st) == 0 && (S_ISDIR(st->st_mode) ||
		    faccessat(AT_FDCWD, *name, R_OK | W_OK, AT_EACCESS) != 0)) {
			*e = S_ISDIR(st->st_mode) ? EISDIR : errno;
			return *name;
		}
		free(*name);
		*name = NULL;
	}
	return NULL;
}

/*
 * Why this process cannot write path, as the operator fixes it, in
 * why[whysz]: the owner and mode of the file (or of its PATH-wal or
 * PATH-shm) when it cannot write it, else its directory's when it
 * cannot create files there (SQLite creates PATH-wal and PATH-shm beside
 * it), or that the directory is missing, and why its parent would not
 * take it; the reason instead of owner and mode when they are not the
 * cause (an immutable file or directory, chattr(1): EPERM; a read-only
 * file system: EROFS).  "" when none of these is the cause.
 */
static void
access_why(const char *path, char *why, size_t whysz)
{
	char *dir = util_parent_dir(path), *name;
	char me[32], owner[32];
	const char *bad, *what = NULL, *where = "";
	struct stat st;
	int e = EACCES;

	why[0] = '\0';
	user_name(geteuid(), me, sizeof(me));
	if ((bad = unwritable(path, &st, &e, &name)) != NULL) {
		what = "cannot write ";
		where = bad;
	} else if (stat(dir, &st) != 0) {
		int missing = errno;
		char *up = util_parent_dir(dir);
		struct stat lst;

		e = faccessat(AT_FDCWD, up, W_OK | X_OK, AT_EACCESS) != 0 ?
		    errno : 0;
		if (missing == ENOENT && lstat(dir, &lst) == 0 &&
		    S_ISLNK(lst.st_mode))
			snprintf(why, whysz, "directory %s: %s: a symbolic "
			    "link to nothing", dir, strerror(missing));
		else
			snprintf(why, whysz, "directory %s: %s (and user %s "
			    "could not create it%s%s%s%s%s)", dir,
			    strerror(missing), me, e ? ": " : "", e ? up : "",
			    e ? ": " : "", e ? strerror(e) : "", e == EPERM ?
			    ", immutable: lsattr(1) shows the i attribute" :
			    "");
		free(up);
	} else if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) {
		e = errno;
		what = "cannot create files in ";
		where = dir;
	}
	if (what != NULL && e != EACCES)
		snprintf(why, whysz, "user %s %s%s: %s%s", me, what, where,
		    strerror(e), e == EPERM ? " (immutable: lsattr(1) shows "
		    "the i attribute)" : "");
	else if (what != NULL)
		snprintf(why, whysz, "user %s %s%s (owner %s, mode %04o)", me,
		    what, where, user_name(st.st_uid, owner, sizeof(owner)),
		    (unsigned)(st.st_mode & 07777));
	free(name);
	free(dir);
}

/*
 * When access_why() found nothing, the system's reason for SQLite's last
 * failed call on db, if it kept one (sqlite3_system_errno(): EMFILE, a
 * directory where PATH-wal should be...), into why[whysz].
 */
static void
system_why(sqlite3 *db, char *why, size_t whysz)
{
	int e = db != NULL ? sqlite3_system_errno(db) : 0;

	if (why[0] == '\0' && e != 0)
		snprintf(why, whysz, "%s", strerror(e));
}

/*
 * Process-wide settings, before SQLite initializes: no memory statistics
 * (they take a global mutex on every allocation; we read none of them).
 */
static void
sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/*
 * Page size of the files we create: 16 KiB pages hold 60-80 typical
 * events, and a group of records costs fewer pages to write (make bench:
 * about a third more inserts a second than 4 KiB).  A file keeps the size
 * it was created with.
 */
#define PAGE_SIZE_NEW 16384

/*
 * Run sql (statements, or one transaction with its BEGIN and COMMIT) on
 * db, again while it fails with SQLITE_BUSY, until deadline (monotonic
 * ms).  The busy handler does not cover every wait: a connection that
 * holds a read lock and asks for the write lock gets SQLITE_BUSY at once
 * (SQLite's way out of two readers waiting for each other), and PRAGMA
 * journal_mode=WAL on a file still in rollback mode does just that.  So
 * two daemons opening a file that neither has switched to WAL yet: one
 * switches, the other gets "database is locked" at once, then finds the
 * file in WAL mode when it tries again.  A transaction left open by the
 * failure is rolled back before the next try.  Returns 0, or -1 with
 * why set.
 */
static int
exec_retry(sqlite3 *db, const char *sql, long long deadline, char *why,
    size_t whysz)
{
	int pause_ms = 1;

	for (;;) {
		char *msg = NULL;
		int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

		if (rc == SQLITE_OK)
			return 0;
		snprintf(why, whysz, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		if (!sqlite3_get_autocommit(db))
			store_sqlite_exec(db, "ROLLBACK", NULL, 0);
		if ((rc & 0xff) != SQLITE_BUSY || util_mono_ms() >= deadline)
			return -1;
		sqlite3_sleep(pause_ms);
		if (pause_ms < 64)
			pause_ms *= 2;
	}
}

/*
 * Whether path is longer than SQLite's file names may be: the VFS's
 * mxPathname (512 bytes for "unix") less its longest suffix, "-journal"
 * (8).  SQLite itself says only "unable to open database file".  1 with
 * err set (the reason before the path, which may be cut), else 0.
 */
static int
too_long(const char *path, const char *label, char *err, size_t errsz)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
	size_t n = strlen(path), max;
	char *dir = util_parent_dir(path), *real = realpath(dir, NULL);
	const char *base = strrchr(path, '/');

	/* SQLite takes the name through its directory's links: that one */
	if (real != NULL)
		n = strlen(real) + 1 + strlen(base != NULL ? base + 1 : path);
	free(real);
	free(dir);
	if (vfs == NULL || vfs->mxPathname <= 8)
		return 0;
	max = (size_t)vfs->mxPathname - 8;
	if (n <= max)
		return 0;
	snprintf(err, errsz, "%s: the path is %zu bytes%s, longer than SQLite "
	    "takes (%zu: its %d, less 8 for \"-journal\"): %s", label, n,
	    n != strlen(path) ? " once resolved" : "", max,
	    vfs->mxPathname, path);
	return 1;
}

int
store_sqlite_file_open(const char *path, const char *schema_sql,
    int (*check)(sqlite3 *db, char *why, size_t whysz), int page_size,
    const char *label, sqlite3 **db, char *err, size_t errsz)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	long long deadline = util_mono_ms() + STORE_SQLITE_BUSY_MS;
	char why[512], pragma[64], *txn, *dir;
	int rc;

	pthread_once(&once, sqlite_setup);
	if (too_long(path, label, err, errsz))
		return -1;
	if (util_make_parent(path, &dir) == 1)
		log_info("store sqlite: created directory %s", dir);
	free(dir);
	rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	/* SQLite opens a file it cannot write read-only, without a word:
	 * say so, and who cannot write what */
	if (rc == SQLITE_OK && sqlite3_db_readonly(*db, "main") == 1)
		rc = SQLITE_READONLY;
	if (rc != SQLITE_OK) {
		access_why(path, why, sizeof(why));
		system_why(*db, why, sizeof(why));
		snprintf(err, errsz, "%s %s: %s%s%s", label, path,
		    rc == SQLITE_READONLY ? "opened read-only" : *db ?
		    sqlite3_errmsg(*db) : sqlite3_errstr(rc),
		    why[0] ? ": " : "", why);
		return -1;
	}
	sqlite3_busy_timeout(*db, STORE_SQLITE_BUSY_MS);
	if (check != NULL && check(*db, why, sizeof(why)) != 0) {
		snprintf(err, errsz, "%s %s: %s", label, path, why);
		return -1;
	}
	/* page_size: before journal_mode=WAL, no effect on an existing file.
	 * temp_store=MEMORY: a statement of many rows keeps a statement
	 * journal (to undo it alone); past 64 KiB SQLite moves it to a
	 * temporary file, created and deleted for each statement (make
	 * bench: REQ/REP p99 from 250 to 330 us) */
	snprintf(pragma, sizeof(pragma), "PRAGMA page_size=%d",
	    page_size > 0 ? page_size : PAGE_SIZE_NEW);
	if (asprintf(&txn, "BEGIN IMMEDIATE;%s;COMMIT;", schema_sql != NULL ?
	    schema_sql : "") < 0)
		abort();
	rc = store_sqlite_exec(*db, pragma, why, sizeof(why)) != 0 ||
	    exec_retry(*db, "PRAGMA journal_mode=WAL", deadline, why,
	    sizeof(why)) != 0 ||
	    store_sqlite_exec(*db, "PRAGMA synchronous=NORMAL", why,
	    sizeof(why)) != 0 ||
	    store_sqlite_exec(*db, "PRAGMA temp_store=MEMORY", why,
	    sizeof(why)) != 0 ||
	    exec_retry(*db, txn, deadline, why, sizeof(why)) != 0;
	free(txn);
	if (rc) {
		/* a directory we cannot create PATH-wal in fails here */
		char acc[256];

		access_why(path, acc, sizeof(acc));
		system_why(*db, acc, sizeof(acc));
		snprintf(err, errsz, "%s %s: %s%s%s", label, path, why,
		    acc[0] ? ": " : "", acc);
		return -1;
	}
	return 0;
}
