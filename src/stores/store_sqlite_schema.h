/*
 * store_sqlite_schema: the SQLite store's tables (event-reactor(7),
 * "Event store"), created when missing and brought up to date when a
 * daemon opens the file.
 *
 * The events have two layouts.  Schema version 5 (a file created since
 * 2026-12-07) keeps each event once: the table event_log (id, body), in
 * the order stored (its rowid), and a view events (rowid, id, namespace,
 * event_type, timestamp, body) that reads the three fields from the body.
 * Version 4 and older (a file created before) keep the table events of
 * those six, the three fields stored beside the body; such a file keeps
 * it (making it version 5 would rewrite every row).  Either way the
 * daemons and an operator read "events".
 */
#ifndef ER_STORE_SQLITE_SCHEMA_H
#define ER_STORE_SQLITE_SCHEMA_H

#include <stddef.h>

struct sqlite3;

/* The schema version of a new file (PRAGMA user_version). */
#define STORE_SQLITE_SCHEMA 5

/* The tables of every version (results), for store_sqlite_file_open(). */
extern const char store_sqlite_schema_common[];

/*
 * In one transaction that the other daemon waits for (BEGIN IMMEDIATE):
 * create the events' tables of version 5 unless the file has the table
 * events; give a file of version 1 or 2 the results columns it lacks and
 * drop version 1 to 3's index events_timestamp (logged: nothing read it,
 * and every event paid for it); set user_version.  *version: 5, or 4 for
 * a file with the table events.  Returns 0, or -1 with err[errsz] set
 * ("store sqlite PATH: cannot bring the schema to version N: why") and
 * nothing changed.
 */
int store_sqlite_schema(struct sqlite3 *db, const char *path, int *version,
    char *err, size_t errsz);

#endif
