/*
 * store_mongo: the MongoDB backend, through mongo-c-driver (store_mongo.h):
 * the driver's process-wide state and log, the URI, open and close, and
 * the spool's replay.  The writes are in store_mongo_write.c, beneath
 * it; the two are the only files that include mongoc.h.
 *
 * Everything here runs on the store's writer thread (store.c), except
 * open/close and the URI check.  The routing path never waits on MongoDB:
 * mg_open() does not connect; the writer thread does, and every
 * blocking step is bounded by the URI's serverSelectionTimeoutMS,
 * connectTimeoutMS and socketTimeoutMS (short defaults below when the URI
 * does not set them).
 */
#include <errno.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cfg_reader.h"
#include "log.h"
#include "spool.h"
#include "store_backend.h"
#include "store_mongo.h"
#include "store_mongo_write.h"
#include "util.h"

/* Defaults applied when the URI does not set them (milliseconds). */
#define MG_SERVER_SELECTION_MS 2000
#define MG_CONNECT_MS 2000
#define MG_SOCKET_MS 10000
/* Spool replay: documents per bulk. */
#define MG_REPLAY_BATCH 1000
/* How often an idle writer looks at the spool (rows from an earlier run). */
#define MG_IDLE_MS 1000
/* How long closing may spend replaying the spool to a reachable server. */
#define MG_CLOSE_REPLAY_MS 3000

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct log_ratelimit driver_rl = { .interval = 10, .burst = 20,
    .what = "lines of mongo-c-driver" };
static int inited;
/* While parse_uri() runs on this thread: the driver's complaints go here,
 * into the error message, instead of the log. */
static __thread char *capture;
static __thread size_t capture_sz;

/* ---- process-wide: the driver's log and mongoc_init/cleanup ---- */

/* Driver messages come from our writer thread and the pool's monitor
 * threads: one lock around the shared rate limit. */
static void
driver_log(mongoc_log_level_t level, const char *domain, const char *msg,
    void *arg)
{
	enum log_level lvl;

	(void)arg;
	if (capture != NULL && level <= MONGOC_LOG_LEVEL_WARNING) {
		size_t used = strlen(capture);
		snprintf(capture + used, capture_sz - used, "%s%s",
		    used ? "; " : "", msg);
		return;
	}
	switch (level) {
	case MONGOC_LOG_LEVEL_ERROR:
	case MONGOC_LOG_LEVEL_CRITICAL:
		lvl = LOG_LVL_ERROR;
		break;
	case MONGOC_LOG_LEVEL_WARNING:
		lvl = LOG_LVL_WARNING;
		break;
	case MONGOC_LOG_LEVEL_MESSAGE:
	case MONGOC_LOG_LEVEL_INFO:
		lvl = LOG_LVL_INFO;
		break;
	case MONGOC_LOG_LEVEL_DEBUG:
		lvl = LOG_LVL_DEBUG;
		break;
	default:
		return;		/* TRACE: far too much */
	}
	if (lvl < log_get_level())
		return;
	pthread_mutex_lock(&log_mu);
	log_limited(&driver_rl, lvl, "mongoc %s: %s", domain, msg);
	pthread_mutex_unlock(&log_mu);
}

static void
log_setup(void)
{
	mongoc_log_set_handler(driver_log, NULL);
	mongoc_log_trace_disable();
}

static void
driver_init(void)
{
	pthread_once(&log_once, log_setup);
	mongoc_init();
	inited = 1;
}

static void
mg_cleanup(void)
{
	if (inited) {
		mongoc_cleanup();
		inited = 0;
	}
}

/* MONGOC_DISABLE_SHM as mg_process_init() sets it (libmongoc reads only
 * whether it is set), so that the program it executes again can tell it
 * from one its caller set */
#define DISABLE_SHM_OURS "event-reactor"

/*
 * The process name (comm) an exec through /proc/self/exe leaves as
 * "exe": that of the program's file, as an exec by its path gives, so
 * that ps -C and pgrep find it.  The exec itself stays on /proc/self/exe,
 * this very binary even when an upgrade has replaced its file.
 */
static void
name_process(void)
{
	char path[4096], *base, *del;
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	if (n <= 0)
		return;
	path[n] = '\0';
	if ((del = strstr(path, " (deleted)")) != NULL && del[10] == '\0')
		*del = '\0';
	base = strrchr(path, '/');
	(void)prctl(PR_SET_NAME, base != NULL ? base + 1 : path, 0, 0, 0);
}

static void
mg_process_init(char **argv)
{
	char name[64];
	const char *set = getenv("MONGOC_DISABLE_SHM");

	if (set != NULL) {
		/* the counters are in memory for good (libmongoc's own
		 * mongoc_init() ran before main()): not the handlers' or
		 * the Python workers' business, who execute again */
		if (strcmp(set, DISABLE_SHM_OURS) == 0)
			unsetenv("MONGOC_DISABLE_SHM");
		name_process();
		return;
	}
	/* the file the automatic mongoc_init() made, or one a dead process
	 * of this pid left; the mapping stays valid until the exec */
	snprintf(name, sizeof(name), "/mongoc-%ld", (long)getpid());
	if (shm_unlink(name) != 0 && errno != ENOENT)
		return;
	if (setenv("MONGOC_DISABLE_SHM", DISABLE_SHM_OURS, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	unsetenv("MONGOC_DISABLE_SHM");
}

/* ---- URI ---- */

/* MongoDB manual, "Naming Restrictions": no /\. "$*<>:|? or space, < 64
 * bytes. */
static int
check_db_name(const char *db, char *why, size_t whysz)
{
	if (db[0] == '\0' || strlen(db) >= 64) {
		snprintf(why, whysz, "database name \"%s\" must be 1 to 63 "
		    "bytes", db);
		return -1;
	}
	if (strpbrk(db, "/\\. \"$*<>:|?") != NULL) {
		snprintf(why, whysz, "database name \"%s\" contains one of "
		    "/\\. \"$*<>:|? (MongoDB naming restrictions)", db);
		return -1;
	}
	return 0;
}

static mongoc_uri_t *
parse_uri(const char *text, char *db, size_t dbsz, char *why, size_t whysz)
{
	bson_error_t error;
	mongoc_uri_t *uri;
	const char *name;

	char detail[512] = "";

	pthread_once(&log_once, log_setup);
	capture = detail;
	capture_sz = sizeof(detail);
	error.message[0] = '\0';
	uri = mongoc_uri_new_with_error(text, &error);
	capture = NULL;
	if (uri == NULL) {
		snprintf(why, whysz, "%s%s%s", error.message[0] ? error.message :
		    "not a MongoDB connection string", detail[0] ? ": " : "",
		    detail);
		return NULL;
	}
	if (detail[0] != '\0')
		log_warn("store mongodb: uri: %s", detail);
	name = mongoc_uri_get_database(uri);
	if (name == NULL || name[0] == '\0')
		name = STORE_MONGO_DEFAULT_DB;
	if (check_db_name(name, why, whysz) != 0) {
		mongoc_uri_destroy(uri);
		return NULL;
	}
	snprintf(db, dbsz, "%s", name);
	return uri;
}

int
store_mongo_check_uri(const char *text, char *why, size_t whysz)
{
	char db[128];
	mongoc_uri_t *uri = parse_uri(text, db, sizeof(db), why, whysz);

	if (uri == NULL)
		return -1;
	mongoc_uri_destroy(uri);
	return 0;
}

static void
default_int32(mongoc_uri_t *uri, const char *opt, int32_t v)
{
	if (!mongoc_uri_has_option(uri, opt))
		mongoc_uri_set_option_as_int32(uri, opt, v);
}

/*
 * Replay the oldest spooled records (one batch).  Returns 1 when it made
 * progress and more may follow, 0 when the spool is empty, -1 when the
 * server is (still) away.
 */
static int
replay_batch(struct mg *m, struct store_tick *done)
{
	struct spool_item *items = xcalloc(MG_REPLAY_BATCH, sizeof(*items));
	struct mg_doc *docs = xcalloc(MG_REPLAY_BATCH, sizeof(*docs));
	struct mg_doc **ptrs = xcalloc(MG_REPLAY_BATCH, sizeof(*ptrs));
	char why[512];
	int n, i, rc = 1, handled = 0;

	n = store_spool_peek(m->spool, m->kinds, items, MG_REPLAY_BATCH, why,
	    sizeof(why));
	if (n < 0) {
		log_limited(&m->down_rl, LOG_LVL_ERROR, "store mongodb: cannot "
		    "read the spool %s: %s", m->spool_path, why);
		m->retry_at = util_mono_ms() + MG_BACKOFF_MAX_MS;
		rc = -1;
		goto out;
	}
	if (n == 0) {
		m->pending = 0;
		rc = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		docs[i].coll = items[i].coll == COLL_RESULTS ? COLL_RESULTS :
		    COLL_EVENTS;
		docs[i].id = items[i].id;
		/* a read-only view of the spooled bytes: never destroyed */
		if (!bson_init_static(&docs[i].doc, items[i].data,
		    items[i].len)) {
			docs[i].res = SINK_DROP;
			snprintf(docs[i].why, sizeof(docs[i].why), "corrupt "
			    "spool record %lld", items[i].seq);
			continue;
		}
		ptrs[handled++] = &docs[i];
	}
	if (handled > 0)
		store_mongo_insert_all(m, ptrs, (size_t)handled);
	/* remove the prefix that is settled (OK or DROP) */
	for (i = 0; i < n && docs[i].res != SINK_RETRY; i++) {
		if (docs[i].res == SINK_OK)
			done->written++;
		else {
			done->failed++;
			store_mongo_log_drop(m, &docs[i]);
		}
	}
	if (i > 0) {
		if (store_spool_remove(m->spool, m->kinds, items[0].seq,
		    items[i - 1].seq, why, sizeof(why)) != 0)
			log_limited(&m->down_rl, LOG_LVL_ERROR, "store mongodb: "
			    "cannot remove replayed records from the spool %s: "
			    "%s (they will be replayed again, harmlessly)",
			    m->spool_path, why);
		store_mongo_spool_counted(m);
		store_mongo_came_up(m);
	}
	m->pending = store_spool_waiting(m->spool, m->kinds) != 0;
	if (i < n) {
		store_mongo_went_down(m, docs[i].why);
		rc = -1;
	} else if (!m->pending) {
		log_info("store mongodb: spool replayed (%lld records left by "
		    "other daemons)", store_spool_count(m->spool));
		rc = 0;
	}
out:
	free(items);
	free(docs);
	free(ptrs);
	return rc;
}

static long
mg_tick(void *be, int closing, struct store_tick *done)
{
	struct mg *m = be;
	long long now = util_mono_ms(), until;
	int rc;

	if (closing) {
		until = now + MG_CLOSE_REPLAY_MS;
		while (!m->down && m->pending && util_mono_ms() < until)
			if (replay_batch(m, done) <= 0)
				break;
		if (store_spool_waiting(m->spool, m->kinds) != 0)
			log_warn("store mongodb: records stay in the spool %s (%lld"
			    " in it); they are replayed at the next start",
			    m->spool_path, store_spool_count(m->spool));
		return -1;
	}
	if (m->down && now < m->retry_at)
		return (long)(m->retry_at - now);
	if (!m->pending) {
		/* the other daemons sharing the spool replay theirs: count
		 * again (O(1)) so the gauge follows them too */
		store_mongo_spool_counted(m);
		/* another process of our kind, or an earlier run, may have
		 * left some */
		m->pending = store_spool_waiting(m->spool, m->kinds) != 0;
		if (!m->pending)
			return MG_IDLE_MS;
	}
	rc = replay_batch(m, done);
	if (rc > 0)
		return 0;
	if (rc < 0) {
		now = util_mono_ms();
		return m->retry_at > now ? (long)(m->retry_at - now) :
		    MG_BACKOFF_MIN_MS;
	}
	return MG_IDLE_MS;
}

static void
mg_close(void *be)
{
	struct mg *m = be;

	if (m == NULL)
		return;
	for (int i = 0; i < COLL_N; i++)
		if (m->coll[i] != NULL)
			mongoc_collection_destroy(m->coll[i]);
	if (m->client != NULL)
		mongoc_client_pool_push(m->pool, m->client);
	if (m->pool != NULL)
		mongoc_client_pool_destroy(m->pool);
	if (m->uri != NULL)
		mongoc_uri_destroy(m->uri);
	store_spool_close(m->spool);
	if (m->lost > 0)
		log_error("store mongodb: %llu records were LOST because the "
		    "spool was full (store.spool_max %lld)", m->lost,
		    m->spool_max);
	free(m->spool_path);
	free(m);
}

mongoc_uri_t *
store_mongo_uri(const char *text, char *db, size_t dbsz, char *err,
    size_t errsz)
{
	mongoc_uri_t *uri;
	char why[512];

	pthread_once(&init_once, driver_init);
	uri = parse_uri(text, db, dbsz, why, sizeof(why));
	if (uri == NULL) {
		snprintf(err, errsz, "store mongodb: uri \"%s\": %s", text,
		    why);
		return NULL;
	}
	default_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
	    MG_SERVER_SELECTION_MS);
	default_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, MG_CONNECT_MS);
	default_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, MG_SOCKET_MS);
	if (mongoc_uri_get_appname(uri) == NULL)
		mongoc_uri_set_appname(uri, "event-reactor");
	return uri;
}

/* Records in the spool file as last counted (any thread). */
static long long
mg_spool_depth(void *be)
{
	struct mg *m = be;

	return atomic_load(&m->spool_n);
}

static int
mg_open(const void *conf, unsigned kinds, struct store_backend *out,
    char *err, size_t errsz)
{
	const struct store_mongo_conf *c = conf;
	struct mg *m = xcalloc(1, sizeof(*m));

	m->uri = store_mongo_uri(c->uri, m->db, sizeof(m->db), err, errsz);
	if (m->uri == NULL)
		goto fail;
	m->spool = store_spool_open(c->spool_path, err, errsz);
	if (m->spool == NULL)
		goto fail;
	m->spool_path = xstrdup(c->spool_path);
	m->spool_max = c->spool_max;
	m->kinds = kinds;
	m->pending = store_spool_waiting(m->spool, kinds) != 0;
	m->ttl_days = c->ttl_days;
	m->pool = mongoc_client_pool_new(m->uri);
	if (m->pool == NULL) {
		snprintf(err, errsz, "store mongodb: uri \"%s\": cannot create "
		    "a client pool (TLS options?)", c->uri);
		goto fail;
	}
	mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
	m->backoff_ms = MG_BACKOFF_MIN_MS;
	m->drop_rl.interval = m->lost_rl.interval = 10;
	m->drop_rl.burst = m->lost_rl.burst = 20;
	m->down_rl.interval = 30;
	m->down_rl.burst = 1;
	m->drop_rl.what = "\"refused, not retried\" lines";
	m->lost_rl.what = "\"SPOOL FULL\" lines";
	m->down_rl.what = "lines about the MongoDB server away or the spool";
	out->name = "mongodb";
	out->write = store_mongo_write;
	out->tick = mg_tick;
	out->spool_depth = mg_spool_depth;
	out->close = mg_close;
	out->be = m;
	store_mongo_spool_counted(m);
	log_info("store mongodb: database %s, spool %s (%lld records waiting)",
	    m->db, m->spool_path, store_spool_count(m->spool));
	return 0;
fail:
	mg_close(m);
	return -1;
}

/* ---- its section ---- */

/* The keys of section into c: their values checked. */
static int
get_keys(struct cfg_reader *r, const struct cfg_node *section,
    struct store_mongo_conf *c)
{
	return cfg_get_str(r, section, "uri", c->uri, sizeof(c->uri)) != 0 ||
	    cfg_get_num(r, section, "ttl_days", 0, STORE_MONGO_TTL_DAYS_MAX,
	    &c->ttl_days) != 0 ||
	    cfg_get_str(r, section, "spool_path", c->spool_path,
	    sizeof(c->spool_path)) != 0 ||
	    cfg_get_int(r, section, "spool_max", 1, 1000000000LL,
	    &c->spool_max) != 0 ? -1 : 0;
}

static int
mg_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	struct store_mongo_conf *c = xcalloc(1, sizeof(*c));
	char why[512];

	snprintf(c->spool_path, sizeof(c->spool_path), "%s",
	    CFG_DEFAULT_SPOOL_PATH);
	c->spool_max = CFG_DEFAULT_SPOOL_MAX;
	if (cfg == NULL) {
		/* a section of another type: its keys checked only */
		int rc = get_keys(r, section, c);
		free(c);
		return rc;
	}
	p->conf = c;
	if (section == NULL)
		return store_get_path(r, NULL, "spool_path", c->spool_path,
		    sizeof(c->spool_path));
	if (get_keys(r, section, c) != 0)
		return -1;
	if (cfg_member(section, "uri") == NULL)
		return cfg_error(r, NULL, "store type \"mongodb\" needs "
		    "\"uri\", e.g. \"mongodb://127.0.0.1:27017/%s\"",
		    STORE_MONGO_DEFAULT_DB);
	if (store_mongo_check_uri(c->uri, why, sizeof(why)) != 0)
		return cfg_error(r, "uri", "store uri \"%s\": %s", c->uri, why);
	return store_get_path(r, section, "spool_path", c->spool_path,
	    sizeof(c->spool_path));
}

/* What event-sub's catch-up reads: the database, not the URI (it may
 * hold a password). */
static void
mg_read_source(const void *conf, char *buf, size_t sz)
{
	char db[128], why[512];
	mongoc_uri_t *uri = parse_uri(((const struct store_mongo_conf *)
	    conf)->uri, db, sizeof(db), why, sizeof(why));

	snprintf(buf, sz, "mongodb database %s", uri != NULL ? db : "?");
	mongoc_uri_destroy(uri);
}

/* event-sub's journal goes beside the spool by default. */
static const char *
mg_local_file(const void *conf)
{
	return ((const struct store_mongo_conf *)conf)->spool_path;
}

static const char *const mg_keys[] = { "uri", "ttl_days", "spool_path",
    "spool_max", NULL };

const struct store_plugin store_mongo_plugin = {
	.name = "mongodb", .keys = mg_keys, .parse = mg_parse, .open = mg_open,
	.read_open = store_mongo_read_open, .read_source = mg_read_source,
	.local_file = mg_local_file,
	.process_init = mg_process_init, .cleanup = mg_cleanup,
};
