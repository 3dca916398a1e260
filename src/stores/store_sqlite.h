/*
 * store_sqlite: the embedded store (store.type "sqlite", the default), a
 * store plugin (store_backend.h).  The schema is documented in README.rst
 * ("Event store").
 */
#ifndef ER_STORE_SQLITE_H
#define ER_STORE_SQLITE_H

#include <stddef.h>

#include "store_backend.h"

/*
 * Open (create, with its directory) the SQLite store at path and fill
 * *out; its write puts each batch in one transaction.  Returns 0, or -1
 * with err[errsz] set ("store sqlite PATH: why") and nothing left open.
 */
int store_sqlite_open(const char *path, struct store_backend *out, char *err,
    size_t errsz);

#endif
