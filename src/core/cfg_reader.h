/*
 * cfg_reader: one JSON configuration file read through typed getters that
 * report errors as "FILE:LINE:COLUMN: message" (lines and columns from 1,
 * columns in characters, as jansson counts them).  cfg_load.c reads
 * config.json and handlers.c event-handlers.json with it; a plugin reads
 * its own section with it, so that none needs jansson.h to read it.
 *
 * The reader keeps a path (the keys and array indexes from the root to
 * the value at hand): cfg_push()/cfg_push_idx() enter a value, cfg_pop()
 * leaves it.  Errors and notes name the position of that path's value
 * (errors) or key (notes) in the file.  A getter whose key is absent
 * leaves *out as it was and returns 0: defaults are the caller's.
 *
 * Every function returning int returns 0, or -1 with the error written
 * into the err buffer given to cfg_reader_open() (the caller then stops
 * reading: the path is left as it was at the error).  Single-threaded.
 */
#ifndef ER_CFG_READER_H
#define ER_CFG_READER_H

#include <stddef.h>

#include "log.h"

struct cfg_reader;
/* A JSON value of the file (a jansson json_t); owned by the reader. */
struct cfg_node;

/*
 * Read and parse path (at most maxlen bytes; duplicate keys refused).
 * Returns the reader with *root set, or NULL with err[errsz] =
 * "FILE:LINE:COLUMN: jansson's message" or "FILE: strerror".  err must
 * outlive the reader: later errors are written there too.
 */
struct cfg_reader *cfg_reader_open(const char *path, size_t maxlen,
    char *err, size_t errsz, const struct cfg_node **root);
/* Free the reader, its text and every node.  NULL: no-op. */
void cfg_reader_close(struct cfg_reader *r);
/* The file's name as given to cfg_reader_open(). */
const char *cfg_file(const struct cfg_reader *r);

/* Enter obj's member key, an array's element idx; leave the last one. */
void cfg_push(struct cfg_reader *r, const char *key);
void cfg_push_idx(struct cfg_reader *r, size_t idx);
void cfg_pop(struct cfg_reader *r);

/*
 * Write "FILE:LINE:COLUMN: " and the message at the current path's value
 * into err (key not NULL: at that member of it); returns -1.  r NULL (no
 * file: the built-in defaults): only returns -1.
 */
int cfg_error(struct cfg_reader *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* cfg_error() at the member's key, not its value: a key that is wrong
 * in itself (an unknown operator). */
int cfg_key_error(struct cfg_reader *r, const char *key, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
/* Log "FILE:LINE:COLUMN: message" at the current path's key (key not
 * NULL: that member's key) at level lvl; r NULL: the message alone. */
void cfg_note(struct cfg_reader *r, const char *key, enum log_level lvl,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "FILE:LINE:COLUMN" of the current path's value into buf[sz]. */
void cfg_where(const struct cfg_reader *r, char *buf, size_t sz);

/* ---- values ---- */

/* obj's member key, or NULL when absent or obj is not an object. */
const struct cfg_node *cfg_member(const struct cfg_node *obj,
    const char *key);
/* The string n holds, or NULL when n is not a string or holds a NUL. */
const char *cfg_string(const struct cfg_node *n);
int cfg_is_true(const struct cfg_node *n);	/* the JSON true */
int cfg_is_array(const struct cfg_node *n);
int cfg_is_object(const struct cfg_node *n);
/* Elements of an array or members of an object (0 for anything else). */
size_t cfg_size(const struct cfg_node *n);
/* An array's element idx, or NULL. */
const struct cfg_node *cfg_array_get(const struct cfg_node *n, size_t idx);
/*
 * Call fn for each member of the object obj, in the order of the file,
 * with the path entered at the member (cfg_push(key) before, cfg_pop()
 * after).  Stops at the first non-zero return of fn (the path then left
 * at that member) and returns it; 0 when every call returned 0.
 */
typedef int (*cfg_member_fn)(struct cfg_reader *r, const char *key,
    const struct cfg_node *value, void *arg);
int cfg_foreach(struct cfg_reader *r, const struct cfg_node *obj,
    cfg_member_fn fn, void *arg);

/* -1 with "WHAT must be a JSON object" unless n is an object. */
int cfg_want_object(struct cfg_reader *r, const struct cfg_node *n,
    const char *what);
/* Warn (WARNING, at each key) about members of obj not in known[]
 * (NULL-terminated): "unknown WHAT option \"KEY\" ignored". */
void cfg_warn_unknown(struct cfg_reader *r, const struct cfg_node *obj,
    const char *const *known, const char *what);

/* A non-empty string without NUL, shorter than outsz bytes. */
int cfg_get_str(struct cfg_reader *r, const struct cfg_node *obj,
    const char *key, char *out, size_t outsz);
/* An integer (no fraction or exponent) in [lo, hi]. */
int cfg_get_int(struct cfg_reader *r, const struct cfg_node *obj,
    const char *key, long long lo, long long hi, long long *out);
/* Any JSON number in [lo, hi]. */
int cfg_get_num(struct cfg_reader *r, const struct cfg_node *obj,
    const char *key, double lo, double hi, double *out);
/* true or false, as 1 or 0. */
int cfg_get_bool(struct cfg_reader *r, const struct cfg_node *obj,
    const char *key, int *out);

/*
 * Append name to the list in buf[sz] (a string, "" at first), after sep
 * unless it is the first: the "known: a, b, c" of errors.
 */
void cfg_list_add(char *buf, size_t sz, const char *sep, const char *name);

/* ---- the sockets a file makes its daemon listen on ---- */

/*
 * Note that the daemon will listen on uri (a ZeroMQ endpoint; HTTP as
 * tcp://ADDR:PORT).  what names it in the error ("the PULL input"), a
 * static string.  Its position: that of conf's "uri", "port" or
 * "listen_address" (the first present), else of the current path; none
 * at the root (a default instance, not in the file).  At most
 * CFG_READER_LISTENERS; more are not checked.  r NULL: a no-op.
 */
#define CFG_READER_LISTENERS 64
void cfg_listen(struct cfg_reader *r, const char *uri, const char *what,
    const struct cfg_node *conf);
/* The same for a ZeroMQ socket, which cfg_warn_listeners() looks at. */
void cfg_listen_zmq(struct cfg_reader *r, const char *uri, const char *what,
    const struct cfg_node *conf);
/*
 * Call fn(arg, at, uri, what) for each ZeroMQ listener whose uri
 * exposed() says is reachable from other hosts; at: its position,
 * "FILE:L:C: ", or "" for a default.
 */
void cfg_exposed_listeners(struct cfg_reader *r,
    int (*exposed)(const char *uri),
    void (*fn)(void *arg, const char *at, const char *uri, const char *what),
    void *arg);
/*
 * Refuse two listeners a and b for which clash(a, b) is non-zero (config
 * passes endpoint_clash()), at the later one's position: "FILE:L:C:
 * \"URI\" is also the [default ]address of WHAT[ at L:C]: two sockets
 * cannot listen on one address", URI without its tcp:// when the later one
 * is not a ZeroMQ listener (HTTP's HOST:PORT).
 */
int cfg_check_listeners(struct cfg_reader *r,
    int (*clash)(const char *a, const char *b));

#endif
