/*
 * replay: event-sub --replay, the handlers of stored events run again (or
 * listed, --dry-run), read back through the store's reader (store_read.h)
 * with no journal: the live event-sub's journal and catch-up position
 * are not touched.  See include/sub.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cond.h"
#include "daemon.h"
#include "driver.h"
#include "event.h"
#include "log.h"
#include "match.h"
#include "store.h"
#include "store_read.h"
#include "sub.h"
#include "sub_int.h"
#include "util.h"

/* Stored events read per step at most. */
#define REPLAY_CHUNK 256
/* How often the progress line is written on a terminal (ms). */
#define PROGRESS_MS 250

struct replay {
	const struct sub_replay *o;
	const char *type;		/* store.type */
	struct store_reader rd;
	char source[4096];		/* what rd reads, for log lines */
	int read_fail;			/* the exit status of a read error */
	struct store_pos pos, last;	/* read up to pos; stop at last */
	int end;			/* past last */
	unsigned long long read, events, runs, bad;
	struct sub *s;			/* the run, or NULL: --dry-run */
	const struct match_table *t;	/* --dry-run's table */
	int tty;			/* stderr is a terminal */
	long long progress_ms;		/* the last progress line */
};

/* The event's time as "2026-12-05T07:00:00.000Z" into buf[sz]. */
static void
time_text(double t, char *buf, size_t sz)
{
	long long total = llround(t * 1000);	/* 0.1 is not 0.0999... */
	time_t secs = (time_t)(total / 1000);
	int ms = (int)(total % 1000);
	struct tm tm;

	if (t < 0 || gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, sz, "%.3f", t);
		return;
	}
	strftime(buf, sz, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), sz - strlen(buf), ".%03dZ", ms);
}

/* --dry-run: the runs of one event, as a start would queue them. */
struct listing {
	struct replay *rp;
	const struct event *ev;
	struct cond_doc *doc;
};

static void
list_run(const struct handler *h, void *arg)
{
	struct listing *l = arg;
	char t[64];

	if (h->when != NULL && !cond_match(h->when, l->doc))
		return;
	time_text(l->ev->timestamp, t, sizeof(t));
	printf("%s %s %s:%s %s %s\n", l->ev->id, t, l->ev->namespace,
	    l->ev->event_type, driver_ops(h->driver)->name, h->handler);
	l->rp->runs++;
}

/* Whether the flags select ev. */
static int
selected(const struct replay *rp, const struct event *ev)
{
	return ev->timestamp >= rp->o->since && ev->timestamp < rp->o->until &&
	    (rp->o->match == NULL || match_pattern(rp->o->match,
	    ev->namespace, ev->event_type));
}

/* One stored event (the reader's scan callback); 1: stop here. */
static int
take_row(void *arg, const struct store_row *row)
{
	struct replay *rp = arg;
	struct cond_doc *doc = NULL;
	struct event_error err;
	struct event ev;
	const struct cond_ptrs *ptrs = rp->s != NULL ? rp->s->tbl->t->ptrs :
	    rp->t->ptrs;

	if (store_pos_cmp(&row->pos, &rp->last) > 0) {
		rp->end = 1;		/* stored after the replay began */
		return 1;
	}
	if (rp->s != NULL && rp->s->qlen >= (size_t)rp->s->cfg->queue_size)
		return 1;		/* the queue is full: later */
	rp->pos = row->pos;
	rp->read++;
	if (cond_parse_event(ptrs, row->body, row->len, &ev, &err,
	    &doc) != 0) {
		rp->bad++;
		log_warn("event stored in %s ignored: %s: %s", rp->source,
		    event_err_code(err.code), err.message);
		return 0;
	}
	if (selected(rp, &ev)) {
		rp->events++;
		if (rp->s != NULL)
			sub_on_event(rp->s, row->body, row->len, 1);
		else {
			struct listing l = { rp, &ev, doc };
			match_event(rp->t, ev.namespace, ev.event_type,
			    list_run, &l);
		}
	}
	cond_doc_free(doc);
	event_clear(&ev);
	return 0;
}

/* A read of the store failed: the status to exit with, the reason
 * logged. */
static int
read_failed(struct replay *rp, const char *why)
{
	log_error("replay: cannot read the events of %s: %s", rp->source, why);
	return strcmp(rp->type, "sqlite") == 0 ? EX_IOERR : EX_UNAVAILABLE;
}

/* Read on from rp->pos, a chunk at a time, while there is room (-1: a
 * read error, in rp->read_fail). */
static int
read_on(struct replay *rp)
{
	int rows;

	while (!rp->end && store_pos_cmp(&rp->pos, &rp->last) < 0) {
		struct store_pos before = rp->pos;
		rows = rp->rd.scan(rp->rd.rd, &rp->pos, REPLAY_CHUNK, take_row,
		    rp);
		if (rows < 0) {
			rp->read_fail = read_failed(rp,
			    rp->rd.error(rp->rd.rd));
			return -1;
		}
		if (rows == 0)
			rp->end = 1;
		else if (store_pos_cmp(&before, &rp->pos) == 0)
			break;		/* no room */
	}
	if (store_pos_cmp(&rp->pos, &rp->last) >= 0)
		rp->end = 1;
	return 0;
}

/* The progress line, on a terminal, every PROGRESS_MS at most. */
static void
progress(struct replay *rp)
{
	long long now = util_mono_ms();

	if (!rp->tty || now - rp->progress_ms < PROGRESS_MS)
		return;
	rp->progress_ms = now;
	fprintf(stderr, "\rreplay: %llu stored events read, %llu selected, "
	    "%llu runs\033[K", rp->read, rp->events, rp->s != NULL ?
	    rp->s->results_put : rp->runs);
	fflush(stderr);
}

/* The feed of the run (struct sub_feed). */
static long
feed(struct sub *s, void *arg, int *done)
{
	struct replay *rp = arg;

	if (read_on(rp) != 0 || rp->end)
		*done = 1;
	progress(rp);
	return *done ? -1 : s->qlen < (size_t)s->cfg->queue_size ? 0 :
	    PROGRESS_MS;
}

/* The summary line, after the progress line if any. */
static void
summary(struct replay *rp, int stopped)
{
	unsigned long long ok = 0, runs = rp->runs;

	if (rp->tty)
		fputs("\r\033[K", stderr);
	if (rp->s != NULL) {
		runs = rp->s->results_put;
		ok = rp->s->by_status[RUN_OK];
	}
	if (rp->s == NULL)
		fprintf(stderr, "replay: dry run: %llu events, %llu runs "
		    "listed\n", rp->events, runs);
	else if (stopped)
		fprintf(stderr, "replay: stopped by a signal: %llu events, "
		    "%llu runs (%llu ok, %llu not ok), %llu runs not started\n",
		    rp->events, runs, ok, runs - ok, rp->s->discarded);
	else
		fprintf(stderr, "replay: %llu events, %llu runs (%llu ok, "
		    "%llu not ok)\n", rp->events, runs, ok, runs - ok);
	if (rp->bad > 0)
		fprintf(stderr, "replay: %llu stored events of %s were not "
		    "events (above)\n", rp->bad, rp->source);
}

static int
dry_run(struct replay *rp, const struct sub_opts *o)
{
	char err[1024];
	struct match_table *t;
	int rc = 0;

	if ((t = cfg_load_handlers(o->handlers_path, err,
	    sizeof(err))) == NULL) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	rp->t = t;
	if (read_on(rp) != 0)
		rc = rp->read_fail;
	if (fflush(stdout) != 0) {
		log_error("replay: stdout: %s", strerror(errno));
		rc = EX_IOERR;
	}
	summary(rp, 0);
	match_table_free(t);
	return rc;
}

static int
run(struct replay *rp, struct cfg *cfg, const struct sub_opts *o)
{
	struct sub_feed f = { feed, rp };
	char err[1024];
	int stopped;

	daemon_signals();
	rp->s = sub_new_replay(cfg, o, &f, rp->source, err, sizeof(err));
	if (rp->s == NULL) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	log_info("replay: the handlers of the events stored in %s from %s%s%s"
	    "%s%s", rp->source, o->replay.since_text, o->replay.until_text ?
	    " until " : "", o->replay.until_text ? o->replay.until_text : "",
	    o->replay.match ? ", matching " : "", o->replay.match ?
	    o->replay.match : "");
	sub_run(rp->s);
	stopped = rp->s->stopping;
	summary(rp, stopped);
	sub_free(rp->s);
	rp->s = NULL;
	return rp->read_fail ? rp->read_fail : stopped ? EX_TEMPFAIL : 0;
}

int
sub_replay(struct cfg *cfg, const struct sub_opts *o)
{
	struct replay rp;
	char err[1024];
	const char *type = store_type_name(cfg);
	int rc;

	memset(&rp, 0, sizeof(rp));
	rp.o = &o->replay;
	rp.type = type;
	rp.tty = isatty(STDERR_FILENO);
	if (store_read_source(cfg, rp.source, sizeof(rp.source)) != 0) {
		log_error("replay: store.type %s keeps no events to replay",
		    type);
		return EX_CONFIG;
	}
	rc = store_read_open(cfg, NULL, &rp.rd, err, sizeof(err));
	if (rc == -2) {
		log_error("replay: no events file: %s", err);
		return EX_NOINPUT;
	}
	if (rc != 0)
		return read_failed(&rp, err);
	if (rp.rd.last(rp.rd.rd, &rp.last) != 0)
		rc = read_failed(&rp, rp.rd.error(rp.rd.rd));
	else if (o->replay.dry_run)
		rc = dry_run(&rp, o);
	else
		rc = run(&rp, cfg, o);
	store_read_close(&rp.rd);
	return rc;
}
