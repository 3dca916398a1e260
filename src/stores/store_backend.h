/*
 * store_backend: what a store plugin gives the writer (store.c), and what
 * the writer hands it.  Internal to src/stores; include/store.h is the
 * public side.
 *
 * A store plugin is one file that defines a struct store_plugin (its name
 * in the configuration, its keys and the parse function that reads them,
 * its open function and the optional process-wide hooks);
 * store_plugins.c lists every plugin in one static table and reads the
 * "store" section through the plugin of its store.type (store_read(),
 * cfg_plugins.h).  The open function fills a struct store_backend: the
 * operations the writer thread calls and the plugin's own state.  Adding
 * a store: one new file and one entry in that table.
 *
 * Thread model: write and tick run on the writer thread; open on the
 * caller of store_open(), close on the caller of store_close() once the
 * writer thread has ended (or of store_open() when it cannot start).
 */
#ifndef ER_STORE_BACKEND_H
#define ER_STORE_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "event.h"
#include "store.h"
#include "store_read.h"

/* How long the writer waits after a write before it calls the backend's
 * idle (ms). */
#define STORE_IDLE_MS 1000
/* Records per transaction at most (group commit): a write gets no more. */
#define STORE_BATCH_MAX 4096

enum store_rec_kind { REC_EVENT, REC_RESULT };

/* A queued record, owned by the writer (freed after the write). */
struct store_rec {
	enum store_rec_kind kind;
	int waited;			/* its producer waits: tag below */
	unsigned long long tag;		/* store_put_event_waited()'s */
	struct event ev;		/* REC_EVENT */
	struct run_result res;		/* REC_RESULT: strings in mem below */
	struct store_rec *next;		/* in the store's pool of free ones */
	char mem[];
};

/* What became of one record (enum store_status, store.h): the backend
 * sets one per record. */

/* What a backend's tick did, added to the stats. */
struct store_tick {
	unsigned long long written;	/* records moved from spool to store */
	unsigned long long failed;	/* spooled records refused on replay */
};

struct store_backend {
	const char *name;
	/* write n records (one transaction or bulk), n <= STORE_BATCH_MAX;
	 * set st[i] for each */
	void (*write)(void *be, struct store_rec **recs, size_t n,
	    enum store_status *st);
	/*
	 * Optional background work (spool replay), called by the writer
	 * thread between batches.  closing: the store is closing (last
	 * call).  Returns the milliseconds until it wants to be called
	 * again (0: at once when the queue is empty), or -1 for never.
	 */
	long (*tick)(void *be, int closing, struct store_tick *done);
	/*
	 * Optional: nothing was written for STORE_IDLE_MS after a write; give
	 * back what the backend keeps for speed (caches).  Called by the
	 * writer thread while it holds the backend, like write.
	 */
	void (*idle)(void *be);
	/*
	 * Optional: records in the backend's spool now (MongoDB's spool
	 * file, every daemon's records), as last counted by the writer
	 * thread.  Called from any thread.
	 */
	long long (*spool_depth)(void *be);
	void (*close)(void *be);
	void *be;
};

/* One entry of store_plugins.c's table of stores. */
struct store_plugin {
	const char *name;		/* store.type in the configuration */
	/* its keys in the "store" section, NULL-terminated (NULL: none) */
	const char *const *keys;
	/*
	 * Read the "store" section (the reader at it) into p->conf, a
	 * struct of the plugin's header, set as soon as it is allocated (p
	 * is released on failure); section NULL: absent, the defaults
	 * (nothing checked).  Paths are made absolute (util_abspath()).
	 * cfg NULL: the section is of another type: only check its keys'
	 * values (then ignored), nothing left in p.  Unknown keys are
	 * store_plugins.c's.  Returns 0, or -1 with the reader's error.
	 * NULL: no settings.
	 */
	int (*parse)(struct cfg_reader *r, const struct cfg_node *section,
	    const struct cfg *cfg, struct cfg_plugin *p);
	void (*free_conf)(void *conf);	/* NULL: free() */
	/*
	 * Open the backend of settings conf (p->conf above) for a process
	 * that puts kinds (STORE_EVENTS, STORE_RESULTS), filling *out.  Must
	 * not wait for a server (the writer thread connects).  Returns 0,
	 * or -1 with err[errsz] set and nothing left open.  NULL: the store
	 * keeps nothing, and store_open() gives NULL without an error.
	 */
	int (*open)(const void *conf, unsigned kinds,
	    struct store_backend *out, char *err, size_t errsz);
	/*
	 * Optional, all three or none: event-sub reads the stored events
	 * back (store_read.h).  read_open: a reader of settings conf for the
	 * journal j into *out, or, j NULL, one for a replay (no journal,
	 * read only, nothing created); returns 0, or -1 with err[errsz] set
	 * (-2: the store's file does not exist).
	 * read_source: what it reads, for a person, into buf[sz].
	 * local_file: the file of this host beside which event-sub keeps its
	 * journal by default.
	 */
	int (*read_open)(const void *conf, struct journal *j,
	    struct store_reader *out, char *err, size_t errsz);
	void (*read_source)(const void *conf, char *buf, size_t sz);
	const char *(*local_file)(const void *conf);
	/* Optional: called by store_process_init(), first in main(). */
	void (*process_init)(char **argv);
	/* Optional: called by store_cleanup(), last in main(). */
	void (*cleanup)(void);
};

/*
 * For a plugin's parse: the file named by section's key into path[pathsz]
 * (left as it is when absent or section is NULL), refused when a start
 * could not open it whatever the permissions (it names a directory, or a
 * parent is a file), then made absolute.  Missing directories are fine
 * (the store creates them); access rights are found at the start.
 * Returns 0, or -1 with the reader's error.
 */
int store_get_path(struct cfg_reader *r, const struct cfg_node *section,
    const char *key, char *path, size_t pathsz);

/* Log (rate-limited) a record a backend could not write, naming it. */
void store_log_failure(const char *backend, const struct store_rec *r,
    const char *why);

#endif
