/*
 * store_sqlite_schema: the SQLite store's tables (event-reactor(7),
 * "Event store"), created when missing and brought up to date when a
 * daemon opens the file.
 */
#ifndef ER_STORE_SQLITE_SCHEMA_H
#define ER_STORE_SQLITE_SCHEMA_H

#include <stddef.h>

struct sqlite3;

/* The schema version (PRAGMA user_version). */
#define STORE_SQLITE_SCHEMA 4

/*
 * Whether db (just opened, not yet written) is a file the store may
 * take, read only: refused when of a later schema version (a later
 * release's) or when it has an events or results table without the
 * columns of version 1.  Returns 0 (also when it cannot be read: the
 * steps after report that), or -1 with why[whysz] = "cannot bring the
 * schema to version 4: why" (store_sqlite_file_open()'s check).
 */
int store_sqlite_schema_check(struct sqlite3 *db, char *why, size_t whysz);

/*
 * Create the tables and index that are missing and bring a file made by
 * an older release up to STORE_SQLITE_SCHEMA, in one transaction that
 * the other daemon waits for (BEGIN IMMEDIATE): give one of version 1
 * or 2 the results columns it lacks, drop version 1 to 3's
 * index events_timestamp (logged: nothing read it, and every event paid
 * for it), set user_version.  A file of a later version (a later
 * release's) is refused, unchanged: no table is created in it.  Returns 0, or -1 with err[errsz] set
 * ("store sqlite PATH: cannot bring the schema to version 4: why") and
 * the transaction rolled back.
 */
int store_sqlite_schema(struct sqlite3 *db, const char *path, char *err,
    size_t errsz);

#endif
