/* sub_runs: event-sub's run queue.  See sub_int.h. */
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cond.h"
#include "guard.h"
#include "sub_int.h"
#include "util.h"

/*
 * The order of s->pending: ids of one router share their first 18 digits
 * (a second, the process) and differ in the last 6 (a counter), which are
 * compared first.
 */
static int
id_cmp(const void *a, const void *b)
{
	int d = memcmp((const char *)a + 18, (const char *)b + 18,
	    EVENT_ID_LEN - 18);

	return d != 0 ? d : memcmp(a, b, 18);
}

int
sub_pending(void *arg, const char *event_id)
{
	struct sub *s = arg;

	return tfind(event_id, &s->pending, id_cmp) != NULL;
}

static void
sevent_unref(struct sub *s, struct sevent *se)
{
	if (--se->refs == 0) {
		if (se->pending)
			tdelete(se->ev.id, &s->pending, id_cmp);
		event_clear(&se->ev);
		free(se);
	}
}

/* What each handler's conditions skipped, as its table goes (a reload, the
 * stop). */
static void
log_skips(const struct match_table *t)
{
	for (size_t i = 0; i < t->nentries; i++)
		for (size_t k = 0; k < t->entries[i].nhandlers; k++) {
			const struct handler *h = &t->entries[i].handlers[k];
			if (h->when != NULL && *h->skipped > 0)
				log_info("handler %s (%s): its conditions "
				    "skipped %llu event%s", h->where,
				    h->handler, *h->skipped, PL(*h->skipped));
		}
}

void
sub_tbl_unref(struct tbl *t)
{
	if (t != NULL && --t->refs == 0) {
		log_skips(t->t);
		match_table_free(t->t);
		free(t);
	}
}

static void
record(struct sub *s, const struct handler *h, const struct run_result *r)
{
	store_put_result(s->store, r);
	s->results_put++;
	sub_metrics_run(s->sm, h, r);
	s->by_status[r->status]++;

	if (r->status == RUN_OK)
		log_debug("handler %s (%s) for event %s: ok in %.1f ms", h->where,
		    h->handler, r->event_id, r->duration_ms);
	else if (r->status == RUN_THROTTLED || r->status == RUN_DEDUPLICATED)
		log_debug("handler %s (%s) for event %s: %s: %s", h->where,
		    h->handler, r->event_id, run_status_name(r->status),
		    r->error);
	else if (r->error != NULL)
		log_limited(&s->fail_rl, LOG_LVL_WARNING, "handler %s (%s) for "
		    "event %s: %s: %s", h->where, h->handler, r->event_id,
		    run_status_name(r->status), r->error);
	else if (r->has_exit_code)
		log_limited(&s->fail_rl, LOG_LVL_WARNING, "handler %s (%s) for "
		    "event %s: %s: exit status %d", h->where, h->handler,
		    r->event_id, run_status_name(r->status), r->exit_code);
	else
		log_limited(&s->fail_rl, LOG_LVL_WARNING, "handler %s (%s) for "
		    "event %s: %s: killed by signal %d", h->where, h->handler,
		    r->event_id, run_status_name(r->status), r->signal);
}

static void
job_free(struct sub *s, struct job *j)
{
	sevent_unref(s, j->se);
	sub_tbl_unref(j->tbl);
	free(j->key);
	free(j->why);
	free(j);
}

/* A run ended, as end says. */
static void
job_end(struct sub *s, struct job *j, const struct run_result *r,
    enum catchup_end end)
{
	struct run_result rr = *r;

	rr.redelivered = j->redelivered;
	rr.replayed = s->feed.fn != NULL;
	record(s, j->h, &rr);
	catchup_done(s->cu, j->se->ev.id, j->key, j->epoch, end,
	    s->results_put);
	if (j->msg != NULL)
		sub_fleet_ended(s, j->msg, end == CATCHUP_RAN);
	job_free(s, j);
}

void
sub_on_done(void *tag, const struct run_result *r, void *arg)
{
	struct sub *s = arg;
	struct job *j = tag;

	sub_contain_ended(s, j->h, j->se->ev.id);
	job_end(s, j, r, s->killed ? CATCHUP_KILLED : CATCHUP_RAN);
}

struct enqueue_ctx {
	struct sub *s;
	struct sevent *se;
	long long t;			/* the event's time */
	int check;			/* ask the journal about each run */
	const struct handler **seen;	/* its runs so far */
	size_t nseen;
	struct job **jobs;		/* its runs to queue */
	int queued;
	struct cond_doc *doc;		/* the event for the conditions */
	struct sub_amqp_msg *msg;	/* -u amqp://: its message */
};

/*
 * The run's name in the journal: "DRIVER:HANDLER#N", N counting the
 * handlers of the same text that matched the event before it: stable
 * across restarts and edits of event-handlers.json.
 */
static char *
run_key(struct enqueue_ctx *c, const struct handler *h)
{
	const char *d = driver_ops(h->driver)->name;
	size_t dl = strlen(d), hl = strlen(h->handler);
	char *key;
	int n = 0;

	for (size_t i = 0; i < c->nseen; i++)
		if (c->seen[i]->driver == h->driver &&
		    strcmp(c->seen[i]->handler, h->handler) == 0)
			n++;

	c->seen = xrealloc(c->seen, (c->nseen + 1) * sizeof(*c->seen));
	c->seen[c->nseen++] = h;
	key = xmalloc(dl + hl + 16);
	memcpy(key, d, dl);
	key[dl] = ':';
	memcpy(key + dl + 1, h->handler, hl);
	if (n == 0)
		memcpy(key + dl + 1 + hl, "#0", 3);	/* the usual one */
	else
		snprintf(key + dl + 1 + hl, 15, "#%d", n);
	return key;
}

static void
enqueue(const struct handler *h, void *arg)
{
	struct enqueue_ctx *c = arg;
	enum catchup_verdict v = CATCHUP_RUN;
	struct job *j;
	char *key;

	/* a group's message runs the exclusive handlers, an own one the
	 * others (event-reactor(7), "Running a fleet") */
	if (c->msg != NULL && (h->exclusive != 0) != c->msg->group)
		return;
	/* conditions: a skipped run is no run, only counted */
	if (h->when != NULL && !cond_match(h->when, c->doc)) {
		(*h->skipped)++;
		return;
	}
	key = run_key(c, h);
	if (c->check)
		v = catchup_admit(c->s->cu, c->se->ev.id, key);
	if (v == CATCHUP_SKIP) {
		free(key);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	/* storms: a run over its rate or a repeat is recorded, not run */
	if (h->guard != NULL) {
		char why[512];
		j->stopped = guard_check(h->guard, c->doc, util_mono(), why,
		    sizeof(why));
		if (j->stopped != RUN_OK)
			j->why = xstrdup(why);
	}
	j->key = key;
	j->epoch = catchup_job(c->s->cu);
	j->redelivered = v == CATCHUP_REDELIVER ||
	    (c->msg != NULL && c->msg->redelivered);
	j->msg = c->msg;
	if (c->msg != NULL)
		c->msg->runs++;
	j->se = c->se;
	j->se->refs++;
	j->tbl = c->s->tbl;
	j->tbl->refs++;
	j->h = h;
	c->jobs = xrealloc(c->jobs, (c->queued + 1) * sizeof(*c->jobs));
	c->jobs[c->queued++] = j;
}

/* A run its guard stopped: recorded as such, never queued. */
static void
guard_stopped(struct sub *s, struct job *j)
{
	struct run_result r;

	driver_result(&r, j->h, &j->se->ev);
	r.status = j->stopped;
	r.started_at = util_now();
	r.error = j->why;
	job_end(s, j, &r, CATCHUP_RAN);
}

/*
 * Queue the event's runs.  An event of several runs has each journaled
 * queued, so that one of them done is not taken for all (catchup.h); an
 * event of one run is known by its place in s->pending until it starts.
 */
static void
queue_runs(struct enqueue_ctx *c)
{
	struct sub *s = c->s;

	if (c->queued > 0 && !c->se->pending && s->cu != NULL) {
		c->se->pending = 1;
		if (tsearch(c->se->ev.id, &s->pending, id_cmp) == NULL)
			abort();
	}
	for (int i = 0; i < c->queued; i++) {
		struct job *j = c->jobs[i];
		if (c->queued > 1)
			catchup_queued(s->cu, j->se->ev.id, j->key);
		if (j->stopped != RUN_OK) {
			guard_stopped(s, j);
			continue;
		}
		if (s->qtail != NULL)
			s->qtail->next = j;
		else
			s->qhead = j;
		s->qtail = j;
		s->qlen++;
		s->queued[j->h->driver]++;
	}
	free(c->jobs);
}

/*
 * An event received (stored 0), or read back from the store by the
 * catch-up (stored 1, not counted again): its runs queued, but those the
 * journal has queued, running or done.  Returns the runs queued.
 */
int
sub_on_event(struct sub *s, const void *body, size_t len, int stored)
{
	struct event_error err;
	struct enqueue_ctx c = { s, NULL, 0, 0, NULL, 0, NULL, 0, NULL, NULL };
	struct sevent *se = xcalloc(1, sizeof(*se));
	size_t n;

	/* the values the table's conditions look at, found in the same pass */
	if (cond_parse_event(s->tbl->t->ptrs, body, len, &se->ev, &err,
	    &c.doc) != 0) {
		s->bad++;
		log_limited(&s->bad_rl, LOG_LVL_WARNING, "%s %s ignored: %s: %s",
		    stored ? "event stored in" : "message on",
		    stored && s->cu != NULL ? catchup_source(s->cu) : s->uri,
		    event_err_code(err.code), err.message);
		free(se);
		return 0;
	}
	se->refs = 1;
	c.se = se;
	if (s->cu != NULL) {
		c.t = event_id_time(se->ev.id);
		if (!stored)
			catchup_live(s->cu, se->ev.id);
		/* a live event the catch-up may have taken already */
		c.check = stored || catchup_may_have(s->cu, c.t);
	}
	if (c.check && !stored && sub_pending(s, se->ev.id)) {
		s->received++;
		cond_doc_free(c.doc);	/* it points into se->ev */
		event_clear(&se->ev);
		free(se);
		return 0;
	}
	n = match_event(s->tbl->t, se->ev.namespace, se->ev.event_type,
	    enqueue, &c);
	queue_runs(&c);
	if (stored && s->cu != NULL)
		s->caught_up += c.queued > 0;
	else
		s->received++;
	if (n == 0 && !stored) {
		s->unmatched++;
		log_debug("event %s (%s) matches no handler", se->ev.id,
		    se->ev.topic);
	} else if (c.queued > 0)
		log_debug("event %s (%s)%s: %d runs taken", se->ev.id,
		    se->ev.topic, stored ? " from the store" : "", c.queued);
	free(c.seen);
	cond_doc_free(c.doc);
	sevent_unref(s, se);
	return c.queued;
}

int
sub_on_message(struct sub *s, struct sub_amqp_msg *m, struct event_error *err)
{
	struct enqueue_ctx c = { s, NULL, 0, 0, NULL, 0, NULL, 0, NULL, m };
	struct sevent *se = xcalloc(1, sizeof(*se));
	size_t n;

	if (cond_parse_event(s->tbl->t->ptrs, m->body, m->len, &se->ev, err,
	    &c.doc) != 0) {
		free(se);
		return -1;
	}
	se->refs = 1;
	c.se = se;
	s->received++;
	n = match_event(s->tbl->t, se->ev.namespace, se->ev.event_type,
	    enqueue, &c);
	queue_runs(&c);
	if (n == 0) {
		s->unmatched++;
		log_debug("event %s (%s) matches no handler", se->ev.id,
		    se->ev.topic);
	} else {
		log_debug("event %s (%s) from queue %s%s: %d runs taken",
		    se->ev.id, se->ev.topic, sub_amqp_queue(s->amqp, m->group),
		    m->redelivered ? ", redelivered" : "", c.queued);
	}
	free(c.seen);
	cond_doc_free(c.doc);
	sevent_unref(s, se);
	return c.queued;
}

/* Take j (after prev, NULL: the head) out of the queue. */
static void
unqueue(struct sub *s, struct job *prev, struct job *j)
{
	if (prev != NULL)
		prev->next = j->next;
	else
		s->qhead = j->next;
	if (s->qtail == j)
		s->qtail = prev;
	j->next = NULL;
	s->qlen--;
	s->queued[j->h->driver]--;
}

/*
 * Start the queued runs whose driver has room, in queue order; the others
 * keep their place.  Stops once no driver with runs queued has room.
 */
void
sub_dispatch(struct sub *s)
{
	struct job *prev = NULL, *j, *next, *start = NULL, **tail = &start;
	size_t go[DRIVERS_MAX] = { 0 };
	const unsigned all = (1u << DRIVERS_MAX) - 1;
	unsigned full = 0;	/* bit d: driver d has no room or no runs */

	for (size_t d = 0; d < DRIVERS_MAX; d++)
		if (s->queued[d] == 0)
			full |= 1u << d;
	for (j = s->qhead; j != NULL && full != all; j = next) {
		int d = j->h->driver;
		next = j->next;
		if ((full >> d & 1) || drivers_room(s->drv, d) - (int)go[d] <=
		    0) {
			full |= 1u << d;
			prev = j;
			continue;
		}
		unqueue(s, prev, j);
		if (s->queued[d] == 0)
			full |= 1u << d;
		catchup_started(s->cu, j->se->ev.id, j->key);
		*tail = j;
		tail = &j->next;
		go[d]++;
	}
	/* the journal shows them started before any starts: a kill -9
	 * cannot leave a run it does not know of */
	catchup_commit(s->cu);
	for (j = start; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		s->runs++;
		drivers_start(s->drv, j->h, &j->se->ev, j);
	}
	drivers_flush(s->drv);	/* one write per worker for the round */
}

/* Record every queued run as not started (shutdown ran out of time). */
void
sub_drop_queue(struct sub *s, const char *why)
{
	while (s->qhead != NULL) {
		struct job *j = s->qhead;
		struct run_result r;
		unqueue(s, NULL, j);
		driver_result(&r, j->h, &j->se->ev);
		r.status = RUN_ERROR;
		r.started_at = util_now();
		r.error = why;
		job_end(s, j, &r, CATCHUP_NOT_STARTED);
	}
}

void
sub_discard_queue(struct sub *s)
{
	while (s->qhead != NULL) {
		struct job *j = s->qhead;
		unqueue(s, NULL, j);
		job_free(s, j);
		s->discarded++;
	}
}
