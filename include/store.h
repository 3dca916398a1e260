/*
 * store: the event store.  A bounded queue in front of one writer thread
 * that commits in groups, so the routing path never waits for a disk sync.
 * Backends: store_sqlite (embedded, default); type "none" keeps nothing.
 * The schema is documented in README.rst ("Event store").
 *
 * Thread model: store_put_*() from one producer thread (the daemon's main
 * loop); the writer thread owns the backend.  A failing backend (read-only
 * file, full disk) costs only the failed records: each is logged
 * (rate-limited) and counted, and the queue keeps draining.
 */
#ifndef ER_STORE_H
#define ER_STORE_H

#include <stddef.h>

#include "config.h"
#include "event.h"

/* Records queued at most; past it store_put_*() waits for the writer. */
#define STORE_QUEUE_DEFAULT 65536
/* Records per transaction at most (group commit). */
#define STORE_BATCH_MAX 4096

struct store;

/* One handler run (README.rst, table results).  Strings are copied. */
struct store_result {
	const char *event_id;
	const char *driver;	/* "shell", "pyfunc" */
	const char *handler;
	const char *status;	/* "ok", "failed", "timeout", "error" */
	int has_exit_code;
	int exit_code;
	int signal;		/* 0: none */
	double started_at;	/* seconds since the epoch */
	double duration_ms;
	const char *out;	/* captured stdout, may hold any bytes */
	size_t out_len;
	const char *err;	/* captured stderr */
	size_t err_len;
	const char *error;	/* why it could not start, or NULL */
	const char *data;	/* pyfunc return value as JSON, or NULL */
};

struct store_stats {
	unsigned long long queued;	/* records handed to the store */
	unsigned long long written;	/* records committed */
	unsigned long long failed;	/* records the backend refused */
};

/*
 * Open the store the configuration names and start its writer thread.
 * STORE_NONE gives NULL with no error (the put functions accept NULL).
 * Returns NULL with err[errsz] set when the backend cannot be opened.
 * queue_cap: records queued at most (0: STORE_QUEUE_DEFAULT).
 */
struct store *store_open(const struct cfg *cfg, size_t queue_cap, char *err,
    size_t errsz, int *failed);

/*
 * Queue an event.  Takes over what *ev holds (ev is cleared).  Blocks
 * while the queue is full.  With store NULL the event is released.
 */
void store_put_event(struct store *s, struct event *ev);
/* Queue a handler run (copied).  Blocks while the queue is full. */
void store_put_result(struct store *s, const struct store_result *r);

/* Wait until everything queued so far is written or failed. */
void store_flush(struct store *s);
void store_get_stats(struct store *s, struct store_stats *st);
/* Flush, stop the writer, close the backend.  NULL is a no-op. */
void store_close(struct store *s);

/* ---- backend interface, for store_*.c only ---- */

enum store_rec_kind { REC_EVENT, REC_RESULT };

struct store_rec {
	enum store_rec_kind kind;
	struct event ev;		/* REC_EVENT */
	struct store_result res;	/* REC_RESULT: strings in mem below */
	char mem[];
};

struct store_backend {
	const char *name;
	/* write n records in one transaction; set ok[i] = 1 for each written */
	int (*write)(void *be, struct store_rec **recs, size_t n, int *ok);
	void (*close)(void *be);
	void *be;
};

/* Log (rate-limited) a record a backend could not write, naming it. */
void store_log_failure(const char *backend, const struct store_rec *r,
    const char *why);

int store_sqlite_open(const char *path, struct store_backend *out, char *err,
    size_t errsz);

#endif
