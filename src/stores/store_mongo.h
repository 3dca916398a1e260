/*
 * store_mongo: the MongoDB store (store.type "mongodb"), a store plugin
 * (store_backend.h) through mongo-c-driver, with the local spool (spool.h)
 * while the server is away.  The documents are described in README.rst
 * ("MongoDB") and built by bson_map.h.  This header names no type of
 * mongo-c-driver: config.c checks a URI through it without seeing one.
 */
#ifndef ER_STORE_MONGO_H
#define ER_STORE_MONGO_H

#include <stddef.h>

/* The database when the URI names none. */
#define STORE_MONGO_DEFAULT_DB "eventreactor"

/*
 * Check a MongoDB connection string as store_open() would take it,
 * without connecting: mongo-c-driver's URI parser, then the database name
 * (default STORE_MONGO_DEFAULT_DB).  Returns 0, or -1 with why[whysz]
 * saying what is wrong.  Used by config.c, so --check names the problem.
 */
int store_mongo_check_uri(const char *uri, char *why, size_t whysz);

#endif
