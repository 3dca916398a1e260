/* catchup: every stored event gets its runs.  See catchup.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "catchup.h"
#include "event.h"
#include "journal.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* How often DONE runs older than the window are forgotten (ms). */
#define PRUNE_MS 60000
/* Kept at least this long when the window has no age (seconds). */
#define KEEP_S (7 * 86400LL)

/* A run ended whose result is not written yet (catchup_done()). */
struct done {
	struct done *next;
	char event_id[EVENT_ID_LEN + 1];
	long long t;
	unsigned long long seq;		/* its result's record */
	char key[];
};

struct catchup {
	struct journal *j;
	struct done *done_head, **done_tail;	/* in seq order */
	struct catchup_host host;
	char path[4096];
	int lock_fd;
	long long max_age, max_count;
	long long scan;			/* events up to it looked at */
	long long next_ms;		/* the next look, monotonic */
	long long next_prune;
	int passing;			/* missed events found, not done */
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

/* The default journal: event-sub.journal in the events file's
 * directory. */
static void
default_path(char *buf, size_t sz, const char *events)
{
	const char *slash = strrchr(events, '/');
	int dir = slash == NULL ? 0 : slash == events ? 1 : (int)(slash - events);

	snprintf(buf, sz, "%.*s/event-sub.journal", dir, events);
}

/* Take the journal's lock: one event-sub per journal. */
static int
lock_journal(struct catchup *c, char *err, size_t errsz)
{
	c->lock_fd = open(c->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (c->lock_fd < 0) {
		snprintf(err, errsz, "journal %s: %s", c->path,
		    strerror(errno));
		return -1;
	}
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errsz, "journal %s: %s", c->path,
		    errno == EWOULDBLOCK ? "in use by another event-sub (each "
		    "needs a journal of its own: subscriber.journal)" :
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Why cfg gives no catch-up, or NULL. */
static const char *
no_catchup(const struct cfg *cfg)
{
	if (store_events_file(cfg) != NULL)
		return NULL;
	return strcmp(store_type_name(cfg), "none") == 0 ?
	    "store.type none keeps no events to read back" :
	    "event-sub reads the stored events back only from a sqlite store";
}

/* The journal cfg gives into buf[sz]. */
static void
journal_path(const struct cfg *cfg, char *buf, size_t sz)
{
	if (cfg->sub_journal[0] != '\0')
		snprintf(buf, sz, "%s", cfg->sub_journal);
	else
		default_path(buf, sz, store_events_file(cfg));
}

void
catchup_describe(const struct cfg *cfg, char *buf, size_t sz)
{
	const char *none = no_catchup(cfg);
	char path[4096];

	if (none != NULL) {
		snprintf(buf, sz, "no catch-up: %s; events published while "
		    "event-sub is not subscribed are not run", none);
		return;
	}
	journal_path(cfg, path, sizeof(path));
	snprintf(buf, sz, "catch-up from %s, journal %s: stored events not "
	    "received are run when at most %lld s old and among the newest "
	    "%lld (subscriber.catch_up; 0: no bound)", store_events_file(cfg),
	    path, cfg->catch_up_max_age, cfg->catch_up_max_count);
}

struct catchup *
catchup_open(const struct cfg *cfg, const struct catchup_host *host,
    const char **none, char *err, size_t errsz)
{
	const char *events = store_events_file(cfg);
	struct catchup *c;

	if ((*none = no_catchup(cfg)) != NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->host = *host;
	c->lock_fd = -1;
	c->done_tail = &c->done_head;
	c->max_age = cfg->catch_up_max_age;
	c->max_count = cfg->catch_up_max_count;
	c->err_rl.interval = 10;
	c->err_rl.burst = 5;
	c->err_rl.what = "journal errors";
	journal_path(cfg, c->path, sizeof(c->path));
	if (lock_journal(c, err, errsz) != 0 ||
	    (c->j = journal_open(c->path, events, err, errsz)) == NULL) {
		catchup_close(c);
		return NULL;
	}
	c->scan = journal_position(c->j);
	return c;
}

void
catchup_close(struct catchup *c)
{
	if (c == NULL)
		return;
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

enum catchup_verdict
catchup_admit(struct catchup *c, const char *event_id, const char *key,
    long long t)
{
	enum journal_state st;

	if (c == NULL)
		return CATCHUP_RUN;
	st = journal_get(c->j, event_id, key);
	if (st == JOURNAL_QUEUED || st == JOURNAL_STARTED ||
	    st == JOURNAL_DONE)
		return CATCHUP_SKIP;
	if (journal_set(c->j, event_id, key, JOURNAL_QUEUED, t) != 0)
		journal_failed(c);
	return st == JOURNAL_ORPHAN_STARTED ? CATCHUP_REDELIVER : CATCHUP_RUN;
}

void
catchup_started(struct catchup *c, const char *event_id, const char *key,
    long long t)
{
	if (c != NULL &&
	    journal_set(c->j, event_id, key, JOURNAL_STARTED, t) != 0)
		journal_failed(c);
}

void
catchup_done(struct catchup *c, const char *event_id, const char *key,
    long long t, int finished, unsigned long long seq)
{
	struct done *d;

	if (c == NULL || !finished)
		return;
	d = xmalloc(sizeof(*d) + strlen(key) + 1);
	d->next = NULL;
	snprintf(d->event_id, sizeof(d->event_id), "%s", event_id);
	strcpy(d->key, key);
	d->t = t;
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
		if (journal_set(c->j, d->event_id, d->key, JOURNAL_DONE,
		    d->t) != 0)
			journal_failed(c);
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
	if (c != NULL)
		c->next_ms = 0;
}

/* One stored event (journal_scan()'s callback). */
static int
look_at(void *arg, const struct journal_row *row)
{
	struct look *k = arg;
	struct catchup *c = k->c;
	long long t;

	if (row->known) {
		c->scan = row->seq;
		return 0;
	}
	t = event_id_time(row->id);
	if (t > k->now - CATCHUP_GRACE_S) {
		k->young = 1;		/* its live copy may be on its way */
		return 1;
	}
	if (c->max_age > 0 && t < k->now - c->max_age) {
		c->pass_skipped++;
		c->scan = row->seq;
		return 0;
	}
	if (c->host.room(c->host.arg) == 0) {
		k->full = 1;
		return 1;
	}
	if (c->host.take(c->host.arg, row->body, row->len) > 0) {
		if (!c->passing)
			log_info("catch-up: running the handlers of stored "
			    "events event-sub did not receive, from event %s",
			    row->id);
		c->passing = 1;
		c->pass_events++;
	}
	c->scan = row->seq;
	return 0;
}

/* Past the newest max_count: counted, not run. */
static void
skip_past_count(struct catchup *c, long long last)
{
	long long upto, n;

	if (c->max_count <= 0 || last - c->scan <= c->max_count)
		return;
	upto = last - c->max_count;
	n = journal_unknown(c->j, c->scan, upto);
	if (n < 0)
		journal_failed(c);
	else
		c->pass_skipped += (unsigned long long)n;
	c->scan = upto;
}

/* The log lines of a look. */
static void
report(struct catchup *c, const struct look *k, int rows)
{
	if (c->pass_skipped > 0) {
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

/* Look at the events stored since the last look. */
static int
look(struct catchup *c)
{
	struct look k = { c, (long long)util_now(), 0, 0 };
	long long last, pos;
	int rows = 0;

	last = journal_last_seq(c->j);
	if (last < 0) {
		journal_failed(c);
		return 0;
	}
	if (last < journal_position(c->j)) {
		log_warn("catch-up: the store holds events up to %lld, the "
		    "journal had looked at %lld: a new events file? reading it "
		    "from its start", last, journal_position(c->j));
		if (journal_set_position(c->j, 0) != 0)
			journal_failed(c);
		c->scan = 0;
	}
	if (c->scan < journal_position(c->j))
		c->scan = journal_position(c->j);
	skip_past_count(c, last);
	if (c->host.room(c->host.arg) > 0 &&
	    (rows = journal_scan(c->j, c->scan, CATCHUP_CHUNK, look_at,
	    &k)) < 0) {
		journal_failed(c);
		rows = 0;
	}
	pos = journal_settled(c->j, journal_position(c->j), c->scan);
	if (pos < 0 || journal_set_position(c->j, pos) != 0)
		journal_failed(c);
	report(c, &k, rows);
	return rows == CATCHUP_CHUNK && !k.full && !k.young;
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
	if (now >= c->next_prune) {
		long long keep = c->max_age > 0 ? c->max_age : KEEP_S;
		if (journal_prune(c->j, (long long)util_now() - keep - 60) < 0)
			journal_failed(c);
		c->next_prune = now + PRUNE_MS;
	}
	catchup_commit(c);
	c->next_ms = now + (more ? 0 : CATCHUP_TICK_MS);
	return more ? 0 : CATCHUP_TICK_MS;
}
