/* store: bounded queue and writer thread (the stores' table and the
 * "store" section: store_plugins.c).  See include/store.h. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cfg_plugins.h"
#include "log.h"
#include "store.h"
#include "store_backend.h"
#include "util.h"

/*
 * Group commit: with fewer than STORE_LINGER_MIN records queued and none
 * waited for, the writer waits up to STORE_LINGER_MS for more before it
 * writes.  A SQLite commit writes the B-trees' last pages again (16 KiB
 * each) whatever its size: at 64 the router's writer wrote about 690
 * bytes of WAL an event, at 1024 about 560, for 10% more events a second
 * (make bench's router with SQLite, alternating runs, 2026-12-05).
 */
#define STORE_LINGER_MIN 1024
#define STORE_LINGER_MS 2

struct store {
	struct store_backend backend;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t not_empty;	/* writer waits */
	pthread_cond_t not_full;	/* producers wait */
	pthread_cond_t idle;		/* store_flush waits */
	struct store_rec **ring;
	size_t cap, head, count;
	int busy;			/* the writer or a producer holds
					   the backend */
	int wait_forever;		/* the writer waits with no deadline */
	long long idle_at;		/* monotonic ms: the backend's idle
					   and the pool's release are due;
					   -1: not (nothing written since) */
	int closing;
	size_t waited;			/* queued records waited for */
	struct store_done *done;	/* decided: [donehead, ndone) not
					   taken yet */
	size_t donehead, ndone, donecap;
	int donefd;			/* eventfd: readable while some are */
	int unwoken;			/* waited records the writer was not
					   woken for (store_write_waited()) */
	struct store_rec *pool;		/* REC_EVENT records written, for
					   the next events (npool of them) */
	size_t npool;
	struct store_rec **pbatch;	/* the producer's batch */
	enum store_status *pst;
	struct store_stats stats;
};

static void
rec_free(struct store_rec *r)
{
	if (r == NULL)
		return;
	if (r->kind == REC_EVENT)
		event_clear(&r->ev);
	free(r);
}

/* Free a chain of pooled records. */
static void
pool_free(struct store_rec *r)
{
	while (r != NULL) {
		struct store_rec *next = r->next;
		free(r);
		r = next;
	}
}

/* Give the pool back to the allocator (the idle writer). */
static void
pool_release(struct store *s)
{
	struct store_rec *r;

	pthread_mutex_lock(&s->mu);
	r = s->pool;
	s->pool = NULL;
	s->npool = 0;
	pthread_mutex_unlock(&s->mu);
	pool_free(r);
}

/* Run the backend's tick; returns the next deadline (monotonic ms) or -1. */
static long long
run_tick(struct store *s, int closing)
{
	struct store_tick done = { 0, 0 };
	long ms = s->backend.tick(s->backend.be, closing, &done);

	pthread_mutex_lock(&s->mu);
	s->stats.written += done.written;
	s->stats.failed += done.failed;
	pthread_mutex_unlock(&s->mu);
	return ms < 0 ? -1 : util_mono_ms() + ms;
}

static void
cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, long long at_ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(at_ms / 1000);
	ts.tv_nsec = (long)(at_ms % 1000) * 1000000L;
	pthread_cond_timedwait(c, mu, &ts);
}

/*
 * Wait for records, or until tick_at (monotonic ms; -1: no tick), and
 * take up to STORE_BATCH_MAX of them into batch[] (*n of them).  *due:
 * the tick is due; *idle: the backend's idle is (the writer holds the
 * backend for it).  *held: the writer holds the backend (s->busy) for
 * what take_batch() gave it last; given back here.  While a producer
 * holds it (store_write_waited()) the writer takes nothing.  Returns 0,
 * or -1 when the store is closing and the queue is empty.
 */
static int
take_batch(struct store *s, struct store_rec **batch, size_t *n,
    long long tick_at, int *due, int *idle, int *held)
{
	int lingered = 0;

	*n = 0;
	pthread_mutex_lock(&s->mu);
	if (*held) {
		s->busy = 0;
		*held = 0;
	}
	for (;;) {
		long long now, wake = -1;

		if (!s->busy && s->count > 0) {
			if (lingered || s->count >= STORE_LINGER_MIN ||
			    s->closing || s->waited > 0)
				break;
			/* group commit: a few more records per transaction
			 * cost far less than a transaction each (locks, WAL
			 * frames); not while a producer waits for one */
			long long until = util_mono_ms() + STORE_LINGER_MS;
			while (s->count < STORE_LINGER_MIN && !s->closing &&
			    s->waited == 0 && util_mono_ms() < until)
				cond_wait_until(&s->not_empty, &s->mu, until);
			lingered = 1;
			continue;
		}
		if (!s->busy) {
			pthread_cond_broadcast(&s->idle);
			if (s->closing) {
				pthread_mutex_unlock(&s->mu);
				return -1;
			}
			now = util_mono_ms();
			if (tick_at >= 0 && now >= tick_at) {
				*due = 1;
				break;
			}
			if (s->idle_at >= 0 && now >= s->idle_at) {
				s->idle_at = -1;
				*idle = 1;
				break;
			}
			wake = tick_at;
			if (s->idle_at >= 0 && (wake < 0 || s->idle_at < wake))
				wake = s->idle_at;
		}
		/* busy: the producer signals when it is done (or it wrote
		 * and the idle deadline moved while no deadline was set) */
		s->wait_forever = wake < 0;
		if (wake < 0)
			pthread_cond_wait(&s->not_empty, &s->mu);
		else
			cond_wait_until(&s->not_empty, &s->mu, wake);
		s->wait_forever = 0;
	}
	while (s->count > 0 && *n < STORE_BATCH_MAX) {
		batch[*n] = s->ring[s->head];
		s->waited -= batch[*n]->waited != 0;
		(*n)++;
		s->head = (s->head + 1) % s->cap;
		s->count--;
	}
	if (*n > 0)
		pthread_cond_broadcast(&s->not_full);
	if (*n > 0 || *idle) {
		s->busy = 1;
		*held = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/*
 * Report what became of the records of batch[0..n) that are waited for
 * (st[i]): queued for store_take_done().  Called with s->mu held.
 * Returns 1 when the queue was empty and is not any more: then the
 * caller makes the descriptor readable (wake_producer()).
 */
static int
report_done(struct store *s, struct store_rec **batch, size_t n,
    const enum store_status *st)
{
	int was_empty = s->donehead == s->ndone;

	for (size_t i = 0; i < n; i++) {
		if (!batch[i]->waited)
			continue;
		if (s->ndone == s->donecap) {
			s->donecap = s->donecap ? 2 * s->donecap : 64;
			s->done = xrealloc(s->done, s->donecap *
			    sizeof(*s->done));
		}
		s->done[s->ndone].tag = batch[i]->tag;
		s->done[s->ndone++].status = st[i];
	}
	return was_empty && s->ndone > s->donehead;
}

/*
 * Make the descriptor readable.  Outside s->mu: when the producer took
 * them all meanwhile, it gets one wake-up with nothing to take, and its
 * store_take_done() makes the descriptor quiet again.
 */
static void
wake_producer(struct store *s)
{
	uint64_t one = 1;

	if (write(s->donefd, &one, sizeof(one)) != sizeof(one))
		log_error("store: cannot wake the producer: %s",
		    strerror(errno));
}

/*
 * Release the records of batch[0..n): an event's record goes back to the
 * pool, up to the queue's capacity and a batch, so that the producer
 * takes memory it has used again instead of fresh pages from the
 * allocator (which, freed on this thread and taken on the producer's,
 * kept growing on the producer's side: bench/README.rst).
 */
static void
recycle(struct store *s, struct store_rec **batch, size_t n)
{
	struct store_rec *head = NULL, *tail = NULL;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		struct store_rec *r = batch[i];
		if (r->kind != REC_EVENT) {
			rec_free(r);
			continue;
		}
		event_clear(&r->ev);
		r->next = head;
		head = r;
		if (tail == NULL)
			tail = r;
		k++;
	}
	if (head == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->npool + k <= s->cap + STORE_BATCH_MAX) {
		tail->next = s->pool;
		s->pool = head;
		s->npool += k;
		head = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	pool_free(head);
}

/* Hand batch[0..n) to the backend, count what became of each record,
 * report those waited for and release them (recycle()).  st: room for n
 * statuses. */
static void
write_batch(struct store *s, struct store_rec **batch, size_t n,
    enum store_status *st)
{
	struct store_stats add;
	size_t i;
	int wake;

	memset(&add, 0, sizeof(add));
	memset(st, 0, n * sizeof(*st));
	s->backend.write(s->backend.be, batch, n, st);
	for (i = 0; i < n; i++) {
		switch (st[i]) {
		case STORE_WRITTEN:
			add.written++;
			break;
		case STORE_SPOOLED:
			add.spooled++;
			break;
		case STORE_LOST:
			add.lost++;
			add.failed++;
			break;
		case STORE_FAILED:
			add.failed++;
			break;
		}
	}
	pthread_mutex_lock(&s->mu);
	s->idle_at = util_mono_ms() + STORE_IDLE_MS;	/* the pool too */
	wake = report_done(s, batch, n, st);
	s->stats.written += add.written;
	s->stats.failed += add.failed;
	s->stats.spooled += add.spooled;
	s->stats.lost += add.lost;
	pthread_mutex_unlock(&s->mu);
	if (wake)
		wake_producer(s);
	recycle(s, batch, n);
}

static void *
writer_main(void *arg)
{
	struct store *s = arg;
	struct store_rec **batch = xcalloc(STORE_BATCH_MAX, sizeof(*batch));
	enum store_status *st = xcalloc(STORE_BATCH_MAX, sizeof(*st));
	long long tick_at = s->backend.tick != NULL ? 0 : -1;
	size_t n;
	int due = 0, idle = 0, held = 0;

	while (take_batch(s, batch, &n, tick_at, &due, &idle, &held) == 0) {
		if (idle) {
			if (s->backend.idle != NULL)
				s->backend.idle(s->backend.be);
			pool_release(s);
		}
		idle = 0;
		if (n > 0) {
			write_batch(s, batch, n, st);
			/* under steady load the queue never empties: tick too */
			if (tick_at >= 0 && util_mono_ms() >= tick_at)
				due = 1;
		}
		if (due)
			tick_at = run_tick(s, 0);
		due = 0;
	}
	if (s->backend.tick != NULL)
		run_tick(s, 1);
	free(batch);
	free(st);
	return NULL;
}

struct store *
store_open(const struct cfg *cfg, unsigned kinds, size_t queue_cap, char *err,
    size_t errsz, int *failed)
{
	const struct store_plugin *pl = cfg->store.ops;
	pthread_condattr_t ca;
	struct store *s;

	*failed = 0;
	if (pl == NULL || pl->open == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	if (pl->open(cfg->store.conf, kinds, &s->backend, err, errsz) != 0) {
		free(s);
		*failed = 1;
		return NULL;
	}
	s->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->donefd < 0) {
		snprintf(err, errsz, "cannot create an eventfd: %s",
		    strerror(errno));
		s->backend.close(s->backend.be);
		free(s);
		*failed = 1;
		return NULL;
	}
	s->cap = queue_cap ? queue_cap : STORE_QUEUE_DEFAULT;
	s->ring = xcalloc(s->cap, sizeof(*s->ring));
	s->pbatch = xcalloc(STORE_BATCH_MAX, sizeof(*s->pbatch));
	s->pst = xcalloc(STORE_BATCH_MAX, sizeof(*s->pst));
	pthread_mutex_init(&s->mu, NULL);
	/* the writer's timed waits use the monotonic clock (util_mono_ms) */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->not_empty, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&s->not_full, NULL);
	pthread_cond_init(&s->idle, NULL);
	s->idle_at = -1;
	if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
		snprintf(err, errsz, "cannot start the store writer thread");
		s->backend.close(s->backend.be);
		close(s->donefd);
		free(s->ring);
		free(s->pbatch);
		free(s->pst);
		free(s);
		*failed = 1;
		return NULL;
	}
	return s;
}

/* Queue r, s->mu held: blocks while the queue is full. */
static void
enqueue_locked(struct store *s, struct store_rec *r)
{
	while (s->count == s->cap)
		pthread_cond_wait(&s->not_full, &s->mu);
	s->ring[(s->head + s->count) % s->cap] = r;
	s->count++;
	s->stats.queued++;
	s->waited += r->waited != 0;
	/* the writer waits for a first record, then lingers for
	 * STORE_LINGER_MIN unless one is waited for: waking it for any other
	 * count only makes it look and wait again (a futex wake and a
	 * context switch each) */
	if (r->waited && s->count == 1 && !s->busy &&
	    s->backend.tick == NULL)
		s->unwoken = 1;		/* store_write_waited() writes it */
	else if (s->count == 1 || s->count == STORE_LINGER_MIN || r->waited)
		pthread_cond_signal(&s->not_empty);
}

static void
enqueue(struct store *s, struct store_rec *r)
{
	pthread_mutex_lock(&s->mu);
	enqueue_locked(s, r);
	pthread_mutex_unlock(&s->mu);
}

/* A record of ev (taken over), waited for with tag when waited: from
 * the pool, s->mu held, else allocated. */
static struct store_rec *
event_rec(struct store *s, struct event *ev, int waited,
    unsigned long long tag)
{
	struct store_rec *r = s->pool;

	if (r != NULL) {
		s->pool = r->next;
		s->npool--;
	} else
		r = xmalloc(sizeof(*r));

	r->kind = REC_EVENT;
	r->waited = waited;
	r->tag = tag;
	r->ev = *ev;
	memset(ev, 0, sizeof(*ev));
	return r;
}

/* Queue a record of ev (enqueue() for an event's record, which comes
 * from the pool under the lock). */
static void
enqueue_event(struct store *s, struct event *ev, int waited,
    unsigned long long tag)
{
	pthread_mutex_lock(&s->mu);
	enqueue_locked(s, event_rec(s, ev, waited, tag));
	pthread_mutex_unlock(&s->mu);
}

void
store_put_event(struct store *s, struct event *ev)
{
	if (s == NULL) {
		event_clear(ev);
		return;
	}
	enqueue_event(s, ev, 0, 0);
}

void
store_put_events(struct store *s, struct event *evs, size_t n)
{
	if (s == NULL) {
		for (size_t i = 0; i < n; i++)
			event_clear(&evs[i]);
		return;
	}
	while (n > 0) {
		size_t k = n < STORE_PUT_MAX ? n : STORE_PUT_MAX;
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < k; i++)
			enqueue_locked(s, event_rec(s, &evs[i], 0, 0));
		pthread_mutex_unlock(&s->mu);
		evs += k;
		n -= k;
	}
}

void
store_put_event_waited(struct store *s, struct event *ev,
    unsigned long long tag)
{
	enqueue_event(s, ev, 1, tag);
}

int
store_write_waited(struct store *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (!s->unwoken) {
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	s->unwoken = 0;
	if (s->count == 0) {		/* the writer woke and took them */
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	if (s->busy || s->closing) {
		/* the writer is at work: it takes them next */
		pthread_cond_signal(&s->not_empty);
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	while (s->count > 0 && n < STORE_BATCH_MAX) {
		s->pbatch[n] = s->ring[s->head];
		s->waited -= s->pbatch[n]->waited != 0;
		n++;
		s->head = (s->head + 1) % s->cap;
		s->count--;
	}
	s->busy = 1;		/* the backend is the producer's meanwhile */
	pthread_mutex_unlock(&s->mu);
	write_batch(s, s->pbatch, n, s->pst);
	pthread_mutex_lock(&s->mu);
	s->busy = 0;
	if (s->count > 0 || (s->idle_at >= 0 && s->wait_forever))
		pthread_cond_signal(&s->not_empty);
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	return 1;
}

int
store_done_fd(const struct store *s)
{
	return s != NULL ? s->donefd : -1;
}

size_t
store_take_done(struct store *s, struct store_done *out, size_t max)
{
	uint64_t v;
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->ndone - s->donehead < max ? s->ndone - s->donehead : max;
	memcpy(out, s->done + s->donehead, n * sizeof(*out));
	s->donehead += n;
	/* the writer writes the eventfd only when it finds none queued */
	if (s->donehead == s->ndone) {
		s->donehead = s->ndone = 0;
		if (read(s->donefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			log_error("store: eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Copy n bytes (plus a NUL) to *p and advance it. */
static const char *
put_bytes(char **p, const char *src, size_t n)
{
	char *d = *p;

	if (src == NULL)
		return NULL;
	memcpy(d, src, n);
	d[n] = '\0';
	*p += n + 1;
	return d;
}

static size_t
slen(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

void
store_put_result(struct store *s, const struct run_result *res)
{
	struct store_rec *r;
	size_t need;
	char *p;

	if (s == NULL)
		return;
	need = slen(res->event_id) + slen(res->driver) + slen(res->handler) +
	    slen(res->error) + slen(res->data) +
	    res->out_len + 1 + res->err_len + 1;
	r = xmalloc(sizeof(*r) + need);
	memset(r, 0, sizeof(*r));
	r->kind = REC_RESULT;
	r->res = *res;
	p = r->mem;
	r->res.event_id = put_bytes(&p, res->event_id, slen(res->event_id) - 1);
	r->res.driver = put_bytes(&p, res->driver, slen(res->driver) - 1);
	r->res.handler = put_bytes(&p, res->handler, slen(res->handler) - 1);
	r->res.error = res->error ?
	    put_bytes(&p, res->error, strlen(res->error)) : NULL;
	r->res.data = res->data ?
	    put_bytes(&p, res->data, strlen(res->data)) : NULL;
	r->res.out = res->out ? put_bytes(&p, res->out, res->out_len) : NULL;
	r->res.err = res->err ? put_bytes(&p, res->err, res->err_len) : NULL;
	enqueue(s, r);
}

void
store_flush(struct store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->unwoken) {
		s->unwoken = 0;
		pthread_cond_signal(&s->not_empty);
	}
	while (s->count > 0 || s->busy)
		pthread_cond_wait(&s->idle, &s->mu);
	pthread_mutex_unlock(&s->mu);
}

void
store_get_stats(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	*st = s->stats;
	st->depth = s->count;
	pthread_mutex_unlock(&s->mu);
	if (s->backend.spool_depth != NULL)
		st->spool_depth = (unsigned long long)s->backend.spool_depth(
		    s->backend.be);
}

unsigned long long
store_settled(struct store *s)
{
	unsigned long long n;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	n = s->stats.written + s->stats.failed + s->stats.spooled +
	    s->stats.lost;
	pthread_mutex_unlock(&s->mu);
	return n;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->closing = 1;
	pthread_cond_signal(&s->not_empty);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->backend.close(s->backend.be);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->not_empty);
	pthread_cond_destroy(&s->not_full);
	pthread_cond_destroy(&s->idle);
	close(s->donefd);
	pool_free(s->pool);
	free(s->done);
	free(s->ring);
	free(s->pbatch);
	free(s->pst);
	free(s);
}
