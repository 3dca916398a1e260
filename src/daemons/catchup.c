/* catchup: every stored event gets its runs.  See catchup.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catchup.h"
#include "event.h"
#include "journal.h"
#include "log.h"
#include "store.h"
#include "store_read.h"
#include "util.h"

/*
 * How often the done runs of settled events are forgotten (ms), and how
 * much older than the position's event they must be (seconds): a live
 * copy that comes late (ZeroMQ's queues) is still known.
 */
#define PRUNE_MS 5000
#define PRUNE_KEEP_S 60

/* A run ended whose result is not written yet (catchup_done()). */
struct done {
	struct done *next;
	unsigned long long epoch;	/* catchup_job() */
	unsigned long long seq;		/* its result's record */
};

struct catchup {
	struct journal *j;
	struct store_reader rd;		/* the stored events */
	char source[4096];		/* what rd reads, for log lines */
	struct done *done_head, **done_tail;	/* in seq order */
	struct catchup_host host;
	char path[4096];
	int lock_fd;
	int created;		/* lock_journal() created the file */
	long long max_age, max_count;
	struct store_pos scan;		/* events up to it looked at */
	long long next_ms;		/* the next look, monotonic */
	long long next_prune;
	int passing;			/* missed events found, not done */
	/* runs made in each epoch (the time between two looks) not done
	 * yet, and the scan at its end: once every epoch up to e has none
	 * left, every event up to ep[e].scan is settled */
	struct epoch {
		struct store_pos scan;
		long long scan_t;	/* that event's time */
		unsigned live;
	} ep[CATCHUP_EPOCHS];
	unsigned long long cur, oldest;	/* open epoch, oldest not settled */
	long long scan_t;		/* the time of the event at scan */
	long long pos_t;		/* and at the position */
	int dirty;			/* the stored events must be read */
	int live_seen;			/* live_proc and live_ctr are set */
	char live_proc[10];		/* the router of the last live event */
	unsigned live_ctr;		/* and its counter (id_counter()) */
	long long live_ms;		/* when it came (monotonic) */
	long long taken_t;		/* the newest time of an event taken;
					   -1: none */
	unsigned long long pass_events, pass_skipped;
	struct log_ratelimit err_rl;
};

/* One look: what it met. */
struct look {
	struct catchup *c;
	long long now;			/* seconds since the epoch */
	int young, full;
};

static void
journal_failed(struct catchup *c)
{
	log_limited(&c->err_rl, LOG_LVL_ERROR, "journal %s: %s", c->path,
	    journal_error(c->j));
}

/* Reading the stored events failed. */
static void
store_failed(struct catchup *c)
{
	log_limited(&c->err_rl, LOG_LVL_ERROR, "catch-up from %s: %s",
	    c->source, c->rd.error(c->rd.rd));
}

/* The default journal: event-sub.journal in the directory of the store's
 * file on this host (store_local_file()). */
static void
default_path(char *buf, size_t sz, const char *local)
{
	const char *slash = strrchr(local, '/');
	int dir = slash == NULL ? 0 : slash == local ? 1 : (int)(slash - local);

	snprintf(buf, sz, "%.*s/event-sub.journal", dir, local);
}

/* Take the journal's lock: one event-sub per journal. */
static int
lock_journal(struct catchup *c, char *err, size_t errsz)
{
	char *dir;
	int made, mkdir_errno;

	/* its directory, one level, as the store's */
	made = util_make_parent(c->path, &dir);
	mkdir_errno = errno;

	if (made == 1)
		log_info("journal: created directory %s", dir);
	c->lock_fd = open(c->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	c->created = c->lock_fd >= 0;
	if (c->lock_fd < 0 && errno == EEXIST)
		c->lock_fd = open(c->path, O_RDWR | O_CLOEXEC);
	if (c->lock_fd < 0 && errno == ENOENT && made < 0)
		snprintf(err, errsz, "journal %s: %s (its directory %s could "
		    "not be created: %s)", c->path, strerror(ENOENT), dir,
		    strerror(mkdir_errno));
	else if (c->lock_fd < 0)
		snprintf(err, errsz, "journal %s: %s", c->path,
		    strerror(errno));
	free(dir);
	if (c->lock_fd < 0)
		return -1;
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errsz, "journal %s: %s", c->path,
		    errno == EWOULDBLOCK ? "in use by another event-sub (each "
		    "needs a journal of its own: subscriber.journal)" :
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Why cfg gives no catch-up, or NULL; what it reads into src[srcsz]. */
static const char *
no_catchup(const struct cfg *cfg, char *src, size_t srcsz)
{
	if (store_read_source(cfg, src, srcsz) == 0)
		return NULL;
	return strcmp(store_type_name(cfg), "none") == 0 ?
	    "store.type none keeps no events to read back" :
	    "event-sub cannot read this store's events back";
}

/* The journal cfg gives into buf[sz]. */
static void
journal_path(const struct cfg *cfg, char *buf, size_t sz)
{
	if (cfg->sub_journal[0] != '\0')
		snprintf(buf, sz, "%s", cfg->sub_journal);
	else
		default_path(buf, sz, store_local_file(cfg));
}

void
catchup_describe(const struct cfg *cfg, char *buf, size_t sz)
{
	char path[4096], src[4096];
	const char *none = no_catchup(cfg, src, sizeof(src));

	if (none != NULL) {
		snprintf(buf, sz, "no catch-up: %s; events published while "
		    "event-sub is not subscribed are not run", none);
		return;
	}
	journal_path(cfg, path, sizeof(path));
	snprintf(buf, sz, "catch-up from %s, journal %s: stored events not "
	    "received are run when at most %lld s old and among the newest "
	    "%lld (subscriber.catch_up; 0: no bound)", src,
	    path, cfg->catch_up_max_age, cfg->catch_up_max_count);
}

struct catchup *
catchup_open(const struct cfg *cfg, const struct catchup_host *host,
    const char **none, char *err, size_t errsz)
{
	struct catchup *c = xcalloc(1, sizeof(*c));
	struct stat st;

	if ((*none = no_catchup(cfg, c->source, sizeof(c->source))) != NULL) {
		free(c);
		return NULL;
	}
	c->host = *host;
	c->lock_fd = -1;
	c->done_tail = &c->done_head;
	c->taken_t = -1;
	c->max_age = cfg->catch_up_max_age;
	c->max_count = cfg->catch_up_max_count;
	c->err_rl.interval = 10;
	c->err_rl.burst = 5;
	c->err_rl.what = "journal errors";
	journal_path(cfg, c->path, sizeof(c->path));
	if (lock_journal(c, err, errsz) != 0 ||
	    (c->j = journal_open(c->path, err, errsz)) == NULL ||
	    store_read_open(cfg, c->j, &c->rd, err, errsz) != 0) {
		/* leave no journal of its own making that is still empty */
		if (c->created && c->j == NULL && fstat(c->lock_fd, &st) == 0 &&
		    st.st_size == 0)
			unlink(c->path);
		catchup_close(c);
		return NULL;
	}
	journal_position(c->j, &c->scan);
	c->dirty = 1;
	return c;
}

const char *
catchup_source(const struct catchup *c)
{
	return c->source;
}

void
catchup_release_memory(struct catchup *c)
{
	if (c != NULL && c->j != NULL)
		journal_release_memory(c->j);
}

void
catchup_close(struct catchup *c)
{
	if (c == NULL)
		return;
	if (c->rd.rd != NULL)
		store_read_close(&c->rd);
	if (c->j != NULL) {
		catchup_commit(c);
		journal_close(c->j);
	}
	while (c->done_head != NULL) {	/* results never written */
		struct done *d = c->done_head;
		c->done_head = d->next;
		free(d);
	}
	log_limited_flush(&c->err_rl);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c);
}

int
catchup_may_have(const struct catchup *c, long long t)
{
	return c != NULL && c->taken_t >= 0 && t <= c->taken_t;
}

/*
 * Whether the orphaned run key ("DRIVER:HANDLER#N") of event_id ran to its
 * end: its result row, the N+1-th of that handler, is in the store.  On
 * an error: no (it runs again).
 */
static int
ran(struct catchup *c, const char *event_id, const char *key)
{
	const char *colon = strchr(key, ':'), *hash = strrchr(key, '#');
	long long have;

	if (colon == NULL || hash == NULL || hash < colon)
		return 0;
	have = c->rd.results(c->rd.rd, event_id, key, (size_t)(colon - key),
	    colon + 1, (size_t)(hash - colon - 1));
	if (have < 0)
		store_failed(c);
	return have > atoll(hash + 1);
}

enum catchup_verdict
catchup_admit(struct catchup *c, const char *event_id, const char *key)
{
	enum journal_state st;

	if (c == NULL)
		return CATCHUP_RUN;
	st = journal_get(c->j, event_id, key);
	switch (st) {
	case JOURNAL_QUEUED:
	case JOURNAL_STARTED:
		return CATCHUP_SKIP;
	case JOURNAL_KILLED:
		return CATCHUP_REDELIVER;
	case JOURNAL_ORPHAN_STARTED:
		return ran(c, event_id, key) ? CATCHUP_SKIP : CATCHUP_REDELIVER;
	default:
		return CATCHUP_RUN;
	}
}

void
catchup_queued(struct catchup *c, const char *event_id, const char *key)
{
	if (c != NULL &&
	    journal_set(c->j, event_id, key, JOURNAL_QUEUED) != 0)
		journal_failed(c);
}

unsigned long long
catchup_job(struct catchup *c)
{
	if (c == NULL)
		return 0;
	c->ep[c->cur % CATCHUP_EPOCHS].live++;
	return c->cur;
}

void
catchup_started(struct catchup *c, const char *event_id, const char *key)
{
	if (c != NULL &&
	    journal_set(c->j, event_id, key, JOURNAL_STARTED) != 0)
		journal_failed(c);
}

void
catchup_done(struct catchup *c, const char *event_id, const char *key,
    unsigned long long epoch, enum catchup_end end, unsigned long long seq)
{
	struct done *d;

	if (c == NULL)
		return;
	if (end != CATCHUP_RAN) {
		if (end == CATCHUP_KILLED && journal_set(c->j, event_id, key,
		    JOURNAL_KILLED) != 0)
			journal_failed(c);
		c->ep[epoch % CATCHUP_EPOCHS].live--;
		return;
	}
	d = xmalloc(sizeof(*d));
	d->next = NULL;
	d->epoch = epoch;
	d->seq = seq;
	*c->done_tail = d;
	c->done_tail = &d->next;
}

int
catchup_unsettled(const struct catchup *c)
{
	return c != NULL && c->done_head != NULL;
}

void
catchup_settle(struct catchup *c, unsigned long long decided)
{
	struct done *d;

	if (c == NULL)
		return;
	while ((d = c->done_head) != NULL && d->seq <= decided) {
		c->ep[d->epoch % CATCHUP_EPOCHS].live--;
		c->done_head = d->next;
		if (c->done_head == NULL)
			c->done_tail = &c->done_head;
		free(d);
	}
}

void
catchup_commit(struct catchup *c)
{
	if (c != NULL && journal_commit(c->j) != 0)
		journal_failed(c);
}

void
catchup_kick(struct catchup *c)
{
	if (c != NULL) {
		c->next_ms = 0;
		c->dirty = 1;
	}
}

/* The counter of an event id: its last 3 bytes (a BSON ObjectId's). */
static unsigned
id_counter(const char *id)
{
	return (unsigned)strtoul(id + 18, NULL, 16);
}

/* The scan is at stored event pos. */
static void
set_scan(struct catchup *c, const struct store_pos *pos)
{
	c->scan = *pos;
	c->scan_t = event_id_time(pos->id);
}

/*
 * The live stream brought the stored event id already (0), or will bring
 * it (1): it is of the router the stream is from, after the last event
 * it brought, and the stream is flowing.  Ids of one router count up by
 * one per event it stamps, in the order it stores them.  -1: neither.
 */
static int
live_ahead(const struct catchup *c, const char *id)
{
	unsigned ctr;

	if (!c->live_seen || strlen(id) != EVENT_ID_LEN ||
	    strncmp(id + 8, c->live_proc, 10) != 0)
		return -1;
	ctr = id_counter(id);
	if (((c->live_ctr - ctr) & 0xffffffu) < 0x800000u)
		return 0;
	return util_mono_ms() - c->live_ms < CATCHUP_GRACE_S * 1000 ? 1 : -1;
}

/* One stored event (the reader's scan callback). */
static int
look_at(void *arg, const struct store_row *row)
{
	struct look *k = arg;
	struct catchup *c = k->c;
	long long t;

	if (row->known) {
		set_scan(c, &row->pos);
		return 0;
	}
	t = event_id_time(row->pos.id);
	if (t > k->now - CATCHUP_GRACE_S || live_ahead(c, row->pos.id) > 0) {
		k->young = 1;		/* its live copy may be on its way */
		return 1;
	}
	if (c->max_age > 0 && t < k->now - c->max_age) {
		c->pass_skipped++;
		set_scan(c, &row->pos);
		return 0;
	}
	if (c->host.pending(c->host.arg, row->pos.id)) {
		set_scan(c, &row->pos);	/* received, in the queue */
		return 0;
	}
	if (c->host.room(c->host.arg) == 0) {
		k->full = 1;
		return 1;
	}
	if (t > c->taken_t)
		c->taken_t = t;
	if (c->host.take(c->host.arg, row->body, row->len) > 0) {
		if (!c->passing)
			log_info("catch-up: running the handlers of stored "
			    "events event-sub did not receive, from event %s",
			    row->pos.id);
		c->passing = 1;
		c->pass_events++;
	}
	set_scan(c, &row->pos);
	return 0;
}

/* Past the newest max_count: counted, not run. */
static void
skip_past_count(struct catchup *c, const struct store_pos *last)
{
	struct store_pos upto;
	long long n;

	if (c->max_count <= 0)
		return;
	n = c->rd.past(c->rd.rd, &c->scan, last, c->max_count, &upto);
	if (n < 0) {
		store_failed(c);
		return;
	}
	c->pass_skipped += (unsigned long long)n;
	c->scan = upto;
}

/* The log lines of a look: what a pass left out once it ends. */
static void
report(struct catchup *c, const struct look *k, int rows)
{
	if (c->pass_skipped > 0 && !c->dirty) {
		log_warn("catch-up: %llu stored events outside the catch-up "
		    "window (subscriber.catch_up: max_age %lld s, max_count "
		    "%lld) not run", c->pass_skipped, c->max_age, c->max_count);
		c->pass_skipped = 0;
	}
	if (c->passing && !k->full && rows < CATCHUP_CHUNK) {
		log_info("catch-up: done, the handlers of %llu stored events "
		    "run", c->pass_events);
		c->passing = 0;
		c->pass_events = 0;
	}
}

/*
 * End the open epoch at the scan, and move the position to the end of the
 * last epoch before which every run is done.  A full ring keeps the open
 * epoch open: the position then waits longer.
 */
static void
close_epoch(struct catchup *c)
{
	struct epoch *e = &c->ep[c->cur % CATCHUP_EPOCHS];
	struct store_pos pos, at;
	int moved = 0;

	e->scan = c->scan;
	e->scan_t = c->scan_t;
	if (c->cur + 1 - c->oldest < CATCHUP_EPOCHS) {
		c->cur++;
		c->ep[c->cur % CATCHUP_EPOCHS].live = 0;
	}
	while (c->oldest < c->cur &&
	    c->ep[c->oldest % CATCHUP_EPOCHS].live == 0) {
		pos = c->ep[c->oldest % CATCHUP_EPOCHS].scan;
		moved = 1;
		c->pos_t = c->ep[c->oldest % CATCHUP_EPOCHS].scan_t;
		c->oldest++;
	}
	journal_position(c->j, &at);
	if (moved && store_pos_cmp(&pos, &at) > 0 &&
	    journal_set_position(c->j, &pos) != 0)
		journal_failed(c);
}

/*
 * Read the stored events back, from the scan on: at the start, after a
 * reconnection, and whenever the live stream may have missed one (a gap
 * in its ids, or a stored event it did not bring within the grace).
 * Otherwise the scan moves to the last stored event at no cost.  Returns
 * 1 when there is more to read at once.
 */
static int
look(struct catchup *c)
{
	struct look k = { c, (long long)util_now(), 0, 0 };
	struct store_pos last, pos;
	char t1[64], t2[64];
	int rows = 0;

	if (c->rd.last(c->rd.rd, &last) != 0) {
		store_failed(c);
		return 0;
	}
	journal_position(c->j, &pos);
	if (store_pos_cmp(&last, &pos) < 0) {
		log_warn("catch-up: the store holds events up to %s, the "
		    "journal had looked at %s: a new events file? reading it "
		    "from its start", store_pos_text(&last, t1, sizeof(t1)),
		    store_pos_text(&pos, t2, sizeof(t2)));
		memset(&pos, 0, sizeof(pos));
		if (journal_set_position(c->j, &pos) != 0)
			journal_failed(c);
		for (int i = 0; i < CATCHUP_EPOCHS; i++)
			c->ep[i].scan = pos;
		c->scan = pos;
		c->dirty = 1;
	}
	if (store_pos_cmp(&c->scan, &pos) < 0)
		c->scan = pos;
	if (store_pos_cmp(&last, &c->scan) <= 0)
		c->dirty = 0;
	else if (!c->dirty && live_ahead(c, last.id) == 0)
		set_scan(c, &last);
	else if (!c->dirty && live_ahead(c, last.id) < 0 &&
	    event_id_time(last.id) <= k.now - CATCHUP_GRACE_S)
		c->dirty = 1;		/* stored, not received in time */
	if (c->dirty) {
		skip_past_count(c, &last);
		if (c->host.room(c->host.arg) > 0 &&
		    (rows = c->rd.scan(c->rd.rd, &c->scan, CATCHUP_CHUNK,
		    look_at, &k)) < 0) {
			store_failed(c);
			rows = 0;
		}
		if (!k.full && !k.young && rows < CATCHUP_CHUNK)
			c->dirty = 0;
	}
	close_epoch(c);
	report(c, &k, rows);
	return rows == CATCHUP_CHUNK && !k.full && !k.young;
}

void
catchup_live(struct catchup *c, const char *event_id)
{
	unsigned ctr;

	if (c == NULL || strlen(event_id) != EVENT_ID_LEN)
		return;
	ctr = id_counter(event_id);
	if (!c->live_seen || strncmp(event_id + 8, c->live_proc, 10) != 0) {
		/* a router we had not heard: what it stored before */
		if (c->live_seen)
			c->dirty = 1;
		memcpy(c->live_proc, event_id + 8, 10);
		c->live_seen = 1;
	} else if (ctr != ((c->live_ctr + 1) & 0xffffffu)) {
		c->dirty = 1;		/* a gap, or out of order */
		if (((ctr - c->live_ctr) & 0xffffffu) >= 0x800000u)
			return;		/* older: keep the newest */
	}
	c->live_ctr = ctr;
	c->live_ms = util_mono_ms();
}

long
catchup_poll(struct catchup *c)
{
	long long now;
	int more;

	if (c == NULL)
		return -1;
	now = util_mono_ms();
	if (now < c->next_ms)
		return (long)(c->next_ms - now);
	more = look(c);
	if (now >= c->next_prune && c->pos_t > PRUNE_KEEP_S) {
		if (journal_prune(c->j, c->pos_t - PRUNE_KEEP_S) < 0)
			journal_failed(c);
		c->next_prune = now + PRUNE_MS;
	}
	catchup_commit(c);
	c->next_ms = now + (more ? 0 : CATCHUP_TICK_MS);
	return more ? 0 : CATCHUP_TICK_MS;
}
