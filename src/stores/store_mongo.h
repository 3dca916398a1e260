/*
 * store_mongo: the MongoDB store (store.type "mongodb"), a store plugin
 * (store_backend.h) through mongo-c-driver, with the local spool (spool.h)
 * while the server is away.  The documents are described in
 * event-reactor(7), "MongoDB", and built by bson_map.h.  This header
 * names no type of mongo-c-driver.
 */
#ifndef ER_STORE_MONGO_H
#define ER_STORE_MONGO_H

#include <stddef.h>

/* The database when the URI names none. */
#define STORE_MONGO_DEFAULT_DB "eventreactor"
/* TTL index limit: expireAfterSeconds is an int32 (24855 days). */
#define STORE_MONGO_TTL_DAYS_MAX 24855

/*
 * Its settings: {"type": "mongodb", "uri": ..., "ttl_days": ...,
 * "spool_path": ..., "spool_max": ...} (event-reactor.conf(5)); "uri" is
 * required and checked with store_mongo_check_uri().
 */
struct store_mongo_conf {
	char uri[1024];		/* the connection string */
	double ttl_days;	/* TTL indexes; 0: none */
	char spool_path[4096];	/* the local spool, absolute; default
				 * CFG_DEFAULT_SPOOL_PATH */
	long long spool_max;	/* records in the spool; default
				 * CFG_DEFAULT_SPOOL_MAX */
};

/*
 * Check a MongoDB connection string as store_open() would take it,
 * without connecting: mongo-c-driver's URI parser, then the database name
 * (default STORE_MONGO_DEFAULT_DB).  Returns 0, or -1 with why[whysz]
 * saying what is wrong.  Its parse uses it, so --check names the problem.
 */
int store_mongo_check_uri(const char *uri, char *why, size_t whysz);

#endif
