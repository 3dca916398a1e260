/* out_amqp: the amqp output.  See out_amqp.h. */
#include <amqp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp_link.h"
#include "event.h"
#include "log.h"
#include "out_amqp.h"
#include "output.h"
#include "spool.h"
#include "util.h"

/* An event between the router's thread and the spool: "KEY\0JSON". */
struct qitem {
	struct qitem *next;
	char id[EVENT_ID_LEN + 1];
	size_t len;
	char data[];
};

enum { PENDING, ACKED, NACKED };

struct out_amqp {
	struct out_amqp_conf conf;
	struct amqp_link link;
	char describe[1400];
	pthread_mutex_t mu;		/* the rest up to "threads' own" */
	pthread_cond_t cond;
	struct qitem *head, **tail;
	size_t queued;
	int stopping, spooler_done, spooled;
	long long stop_at;		/* util_mono_ms(): the publisher's last */
	pthread_t spooler, publisher;
	int started;
	atomic_ullong published, confirmed, returned, nacked, dropped;
	atomic_ullong reconnects;
	atomic_llong spool_n;		/* records in the spool file, as a
					   thread last counted them */

	/* the threads' own */
	struct store_spool *sp_in;	/* the spooler's */
	struct store_spool *sp_out;	/* the publisher's */
	amqp_connection_state_t conn;
	uint64_t next_tag;		/* the delivery tag of the next publish */
	int refusal;			/* amqp_link_refusal() of the last try */
	int coll;			/* its records' tag in the spool file */
	struct log_ratelimit rl;
};

/* ---- the router's thread ---- */

static int
amqp_publish(struct output *o, const struct event *ev, long long now_ns)
{
	struct out_amqp *a = o->ctx;
	size_t ns = strlen(ev->namespace), et = strlen(ev->event_type);
	size_t klen = ns + 1 + et;
	struct qitem *q;

	(void)now_ns;
	if (klen >= OUT_AMQP_NAME_MAX)		/* a routing key's bound */
		klen = OUT_AMQP_NAME_MAX - 1;
	q = xmalloc(sizeof(*q) + klen + 1 + ev->json_len);
	q->next = NULL;
	memcpy(q->id, ev->id, sizeof(q->id));
	snprintf(q->data, klen + 1, "%s.%s", ev->namespace, ev->event_type);
	memcpy(q->data + klen + 1, ev->json, ev->json_len);
	q->len = klen + 1 + ev->json_len;
	pthread_mutex_lock(&a->mu);
	/* only the local disk holds the spooler up: wait for room */
	while (a->queued >= OUT_AMQP_QUEUE_MAX && !a->stopping &&
	    !o->host.stopping(o->host.arg)) {
		struct timespec ts;
		util_deadline(&ts, CLOCK_REALTIME, 100);
		pthread_cond_timedwait(&a->cond, &a->mu, &ts);
	}
	if (a->queued >= OUT_AMQP_QUEUE_MAX) {
		pthread_mutex_unlock(&a->mu);
		free(q);
		atomic_fetch_add(&a->dropped, 1);
		return -1;
	}
	*a->tail = q;
	a->tail = &q->next;
	a->queued++;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

/* ---- the spooler ---- */

/* The spool's records, counted on sp (the calling thread's), into
 * a->spool_n for amqp_stats(). */
static void
counted(struct out_amqp *a, struct store_spool *sp)
{
	long long n = store_spool_count(sp);

	if (n >= 0)
		atomic_store(&a->spool_n, n);
}

/* The events of list into the spool, as its bound allows; frees list. */
static void
spool_list(struct out_amqp *a, struct qitem *list, size_t n)
{
	struct spool_item *items = xcalloc(n, sizeof(*items));
	long long have = store_spool_count(a->sp_in);
	size_t k = 0, over = 0;
	char why[512];
	struct qitem *q, *next;

	for (q = list; q != NULL; q = q->next) {
		if (have >= 0 && have + (long long)k >= a->conf.spool_max) {
			over++;
			continue;
		}
		items[k].coll = a->coll;
		memcpy(items[k].id, q->id, sizeof(items[k].id));
		items[k].data = q->data;
		items[k].len = q->len;
		k++;
	}
	if (over > 0) {
		atomic_fetch_add(&a->dropped, over);
		log_limited(&a->rl, LOG_LVL_WARNING, "amqp output: the spool %s "
		    "holds spool_max %lld events: dropped %zu new event%s",
		    a->conf.spool, a->conf.spool_max, over, over == 1 ? "" : "s");
	}
	if (k > 0 && store_spool_append(a->sp_in, items, k, why,
	    sizeof(why)) != 0) {
		atomic_fetch_add(&a->dropped, k);
		log_limited(&a->rl, LOG_LVL_ERROR, "amqp output: cannot write "
		    "to the spool %s: %s: %zu events dropped", a->conf.spool,
		    why, k);
		k = 0;
	}
	free(items);
	if (k > 0)
		counted(a, a->sp_in);
	for (q = list; q != NULL; q = next) {
		next = q->next;
		free(q);
	}
	pthread_mutex_lock(&a->mu);
	a->spooled |= k > 0;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

static void *
spooler_main(void *arg)
{
	struct out_amqp *a = arg;
	struct qitem *list;
	size_t n;
	int stop;

	do {
		pthread_mutex_lock(&a->mu);
		while (a->head == NULL && !a->stopping)
			pthread_cond_wait(&a->cond, &a->mu);
		list = a->head;
		n = a->queued;
		a->head = NULL;
		a->tail = &a->head;
		a->queued = 0;
		stop = a->stopping;
		pthread_cond_broadcast(&a->cond);	/* room */
		pthread_mutex_unlock(&a->mu);
		if (list != NULL)
			spool_list(a, list, n);
	} while (!stop || list != NULL);
	pthread_mutex_lock(&a->mu);
	a->spooler_done = 1;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* ---- the publisher ---- */

/* Wait up to ms for new events in the spool or the stop: 1 when the
 * publisher is done (stopped, and past its time or nothing to wait for). */
static int
publisher_wait(struct out_amqp *a, long ms)
{
	long long end = util_mono_ms() + ms;
	int done;

	pthread_mutex_lock(&a->mu);
	while (!a->spooled && !a->stopping && util_mono_ms() < end) {
		struct timespec ts;
		util_deadline(&ts, CLOCK_REALTIME,
		    (long)(end - util_mono_ms()));
		pthread_cond_timedwait(&a->cond, &a->mu, &ts);
	}
	a->spooled = 0;
	done = a->stopping && util_mono_ms() >= a->stop_at;
	pthread_mutex_unlock(&a->mu);
	return done;
}

static int
stopping(struct out_amqp *a)
{
	int s;

	pthread_mutex_lock(&a->mu);
	s = a->stopping;
	pthread_mutex_unlock(&a->mu);
	return s;
}

/* Connect, declare the exchange, select confirms.  0, or -1 with why. */
static int
connect_broker(struct out_amqp *a, char *why, size_t whysz)
{
	amqp_rpc_reply_t r;
	char t[256];

	a->conn = amqp_link_open(&a->link, 0, &a->refusal, why, whysz);
	if (a->conn == NULL)
		return -1;
	/* topic, durable, not auto-deleted, not internal */
	amqp_exchange_declare(a->conn, 1, amqp_cstring_bytes(a->conf.exchange),
	    amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		amqp_confirm_select(a->conn, 1);
		r = amqp_get_rpc_reply(a->conn);
	}
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		a->refusal = amqp_link_refusal(r);
		snprintf(why, whysz, "exchange %s (topic, durable): %s",
		    a->conf.exchange, amqp_link_reply_text(r, t, sizeof(t)));
		amqp_link_close(a->conn, 1, 0);
		a->conn = NULL;
		return -1;
	}
	a->next_tag = 1;
	return 0;
}

/* Mark the confirm of frame (an ack or a nack) in st[] of the batch that
 * begins at tag first, n long. */
static void
mark(const amqp_frame_t *f, uint64_t first, size_t n, char *st)
{
	int ack = f->payload.method.id == AMQP_BASIC_ACK_METHOD;
	uint64_t tag;
	int multiple;

	if (ack) {
		const amqp_basic_ack_t *m = f->payload.method.decoded;
		tag = m->delivery_tag;
		multiple = m->multiple;
	} else {
		const amqp_basic_nack_t *m = f->payload.method.decoded;
		tag = m->delivery_tag;
		multiple = m->multiple;
	}
	for (size_t i = 0; i < n; i++)
		if (first + i == tag || (multiple && first + i <= tag))
			if (st[i] == PENDING)
				st[i] = ack ? ACKED : NACKED;
}

/* A message the broker returned (basic.return, then its content). */
static int
returned(struct out_amqp *a, const amqp_frame_t *f, char *why, size_t whysz)
{
	const amqp_basic_return_t *m = f->payload.method.decoded;
	amqp_message_t msg;
	amqp_rpc_reply_t r;

	atomic_fetch_add(&a->returned, 1);
	log_limited(&a->rl, LOG_LVL_WARNING, "amqp output: the broker "
	    "returned an event with routing key %.*s: %u %.*s (no queue is "
	    "bound for it): dropped", (int)m->routing_key.len,
	    (const char *)m->routing_key.bytes, m->reply_code,
	    (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	r = amqp_read_message(a->conn, f->channel, &msg, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_link_reply_text(r, why, whysz);
		return -1;
	}
	amqp_destroy_message(&msg);
	return 0;
}

/* Wait for the confirms of the batch at first, n long, into st[] until
 * end (util_mono_ms()).  0 once each has one, or -1 with why. */
static int
confirms(struct out_amqp *a, uint64_t first, size_t n, char *st,
    long long end, char *why, size_t whysz)
{
	amqp_frame_t f;
	size_t left = n;
	int rc;

	while (left > 0) {
		long long ms = end - util_mono_ms();
		struct timeval tv = { ms > 0 ? ms / 1000 : 0,
		    ms > 0 ? (ms % 1000) * 1000 : 0 };
		if (ms <= 0) {
			snprintf(why, whysz, "%zu of %zu events not confirmed "
			    "in time", left, n);
			return -1;
		}
		rc = amqp_simple_wait_frame_noblock(a->conn, &f, &tv);
		if (rc == AMQP_STATUS_TIMEOUT)
			continue;
		if (rc != AMQP_STATUS_OK) {
			snprintf(why, whysz, "%s", amqp_error_string2(rc));
			return -1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD:
		case AMQP_BASIC_NACK_METHOD:
			mark(&f, first, n, st);
			break;
		case AMQP_BASIC_RETURN_METHOD:
			if (returned(a, &f, why, whysz) != 0)
				return -1;
			break;
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD:
			snprintf(why, whysz, "the broker closed the %s",
			    f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ?
			    "channel" : "connection");
			return -1;
		}
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += st[i] == PENDING;
	}
	return 0;
}

/*
 * Publish items[n] (oldest first) and wait for their confirms: *k gets
 * how many at the front the broker confirmed.  0, or -1 with why when the
 * connection failed (the rest is published again on the next one).
 */
static int
publish_batch(struct out_amqp *a, const struct spool_item *items, size_t n,
    size_t *k, char *why, size_t whysz)
{
	char st[OUT_AMQP_BATCH] = { 0 };
	uint64_t first = a->next_tag;
	long long end = util_mono_ms() + OUT_AMQP_CONFIRM_MS;
	int rc = 0;

	*k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *key = items[i].data;
		size_t klen = strlen(key);
		amqp_basic_properties_t p = { 0 };
		amqp_bytes_t body = { items[i].len - klen - 1,
		    (void *)(uintptr_t)(key + klen + 1) };
		p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
		    AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
		p.content_type = amqp_cstring_bytes("application/json");
		p.delivery_mode = 2;		/* persistent */
		p.message_id = amqp_cstring_bytes(items[i].id);
		rc = amqp_basic_publish(a->conn, 1,
		    amqp_cstring_bytes(a->conf.exchange),
		    amqp_cstring_bytes(key), 1, 0, &p, body);
		if (rc != AMQP_STATUS_OK) {
			snprintf(why, whysz, "%s", amqp_error_string2(rc));
			return -1;
		}
		a->next_tag++;
		atomic_fetch_add(&a->published, 1);
	}
	pthread_mutex_lock(&a->mu);
	if (a->stopping && a->stop_at < end)
		end = a->stop_at;
	pthread_mutex_unlock(&a->mu);
	rc = confirms(a, first, n, st, end, why, whysz);
	while (*k < n && st[*k] == ACKED)
		(*k)++;
	atomic_fetch_add(&a->confirmed, *k);
	for (size_t i = *k; i < n && rc == 0; i++)
		if (st[i] == NACKED) {
			atomic_fetch_add(&a->nacked, 1);
			log_limited(&a->rl, LOG_LVL_WARNING, "amqp output: the "
			    "broker refused event %s (basic.nack): published "
			    "again", items[i].id);
			break;
		}
	amqp_maybe_release_buffers(a->conn);
	return rc;
}

/* The publisher's view of its broker. */
struct link_state {
	long backoff;			/* ms before the next attempt */
	int logged;			/* its line: 1 unavailable, 2 refused */
	int outage;			/* since the last connection ended */
	long long since;		/* util_mono_ms() it began */
};

enum round { ROUND_IDLE, ROUND_DONE, ROUND_REFUSED, ROUND_LOST };

/* One round: publish what the spool holds, oldest first. */
static enum round
round_trip(struct out_amqp *a, char *why, size_t whysz)
{
	struct spool_item items[OUT_AMQP_BATCH];
	size_t k;
	int n, rc;

	n = store_spool_peek(a->sp_out, 1u << a->coll, items, OUT_AMQP_BATCH,
	    why, whysz);
	if (n <= 0) {
		if (n < 0)
			log_limited(&a->rl, LOG_LVL_ERROR, "amqp output: cannot "
			    "read the spool %s: %s", a->conf.spool, why);
		return ROUND_IDLE;
	}
	rc = publish_batch(a, items, (size_t)n, &k, why, whysz);
	if (k > 0 && store_spool_remove(a->sp_out, 1u << a->coll,
	    items[0].seq, items[k - 1].seq, why, whysz) != 0)
		log_limited(&a->rl, LOG_LVL_ERROR, "amqp output: cannot remove "
		    "published events from the spool: %s (they will be "
		    "published again)", why);
	if (k > 0)
		counted(a, a->sp_out);
	if (rc != 0)
		return ROUND_LOST;
	return k > 0 ? ROUND_DONE : ROUND_REFUSED;
}

/* Connect when not connected; log the outage once and the return.
 * 0 when connected. */
static int
ensure_connected(struct out_amqp *a, struct link_state *ls)
{
	char why[512];

	if (a->conn != NULL)
		return 0;
	if (connect_broker(a, why, sizeof(why)) != 0) {
		if (ls->logged != (a->refusal ? 2 : 1))
			log_msg(a->refusal ? LOG_LVL_ERROR : LOG_LVL_WARNING,
			    "amqp output: broker %s %s: %.*s; events wait in the "
			    "spool %s; retrying every %.1f to %.0f s",
			    a->link.safe_url, a->refusal ? "refused the router" :
			    "unavailable", amqp_link_why_len(why), why, a->conf.spool,
			    OUT_AMQP_BACKOFF_MIN_MS / 1000.0,
			    OUT_AMQP_BACKOFF_MAX_MS / 1000.0);
		if (!ls->outage)
			ls->since = util_mono_ms();
		ls->logged = a->refusal ? 2 : 1;
		ls->outage = 1;
		return -1;
	}
	if (ls->outage) {
		atomic_fetch_add(&a->reconnects, 1);
		log_limited(&a->rl, LOG_LVL_INFO, "amqp output: broker %s is "
		    "back after %.1f s: publishing to exchange %s",
		    a->link.safe_url, (util_mono_ms() - ls->since) / 1000.0,
		    a->conf.exchange);
	} else {
		log_info("amqp output: publishing to exchange %s on %s",
		    a->conf.exchange, a->link.safe_url);
	}
	ls->logged = ls->outage = 0;
	return 0;
}

/* 1 once the stop came and the publisher's time is over. */
static int
stop_due(struct out_amqp *a)
{
	int due;

	pthread_mutex_lock(&a->mu);
	due = a->stopping && util_mono_ms() >= a->stop_at;
	pthread_mutex_unlock(&a->mu);
	return due;
}

/* Wait the backoff (new events or the stop end it early), then double
 * it.  1 when the publisher is done. */
static int
back_off(struct out_amqp *a, struct link_state *ls)
{
	int done = publisher_wait(a, ls->backoff) || stopping(a);

	ls->backoff = ls->backoff * 2 > OUT_AMQP_BACKOFF_MAX_MS ?
	    OUT_AMQP_BACKOFF_MAX_MS : ls->backoff * 2;
	return done;
}

/* The connection failed with why: logged, closed, the outage begins. */
static void
lost(struct out_amqp *a, struct link_state *ls, const char *why)
{
	log_limited(&a->rl, LOG_LVL_WARNING, "amqp output: lost the broker "
	    "%s: %s; reconnecting", a->link.safe_url, why);
	amqp_link_close(a->conn, 1, 0);
	a->conn = NULL;
	ls->outage = 1;
	ls->since = util_mono_ms();
}

static void *
publisher_main(void *arg)
{
	struct out_amqp *a = arg;
	struct link_state ls = { OUT_AMQP_BACKOFF_MIN_MS, 0, 0, 0 };
	char why[512];
	enum round r;

	while (!stop_due(a)) {
		/* at the stop without a broker: the spool keeps the rest */
		if (ensure_connected(a, &ls) != 0) {
			if (back_off(a, &ls))
				break;
			continue;
		}
		r = round_trip(a, why, sizeof(why));
		if (r == ROUND_LOST) {
			lost(a, &ls, why);
			if (back_off(a, &ls))
				break;
		} else if (r == ROUND_REFUSED) {	/* a nack at the front */
			if (back_off(a, &ls))
				break;
		} else if (r == ROUND_DONE) {
			ls.backoff = OUT_AMQP_BACKOFF_MIN_MS;
		} else {
			pthread_mutex_lock(&a->mu);
			r = a->stopping && a->spooler_done;
			pthread_mutex_unlock(&a->mu);
			if (r || publisher_wait(a, 1000))
				break;
			/* idle: a broker that left is seen now, not at the
			 * next event */
			if (amqp_link_idle_check(a->conn, why, sizeof(why)) != 0)
				lost(a, &ls, why);
		}
	}
	amqp_link_close(a->conn, 1, 1);
	a->conn = NULL;
	return NULL;
}

/* ---- open, run, close ---- */

static int
amqp_open(struct output *o, int index, char *err, size_t errsz)
{
	struct out_amqp *a = xcalloc(1, sizeof(*a));

	o->ctx = a;
	a->conf = *(const struct out_amqp_conf *)o->plugin->conf;
	/* its own tag: a spool file shared with another output or with the
	 * MongoDB store's spool (tags 0 and 1) keeps each one's records */
	a->coll = OUT_AMQP_COLL_BASE + index;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->tail = &a->head;
	a->rl.interval = 10;
	a->rl.burst = 10;
	a->rl.what = "\"amqp output:\" lines";
	if (amqp_link_parse(&a->link, a->conf.url, a->conf.ca_file) != 0) {
		/* never echo the URL: it may hold the password */
		snprintf(err, errsz, "amqp output: \"url\" is not an "
		    "amqp[s]://user:password@host:port/vhost URL");
		return -1;
	}
	snprintf(a->describe, sizeof(a->describe), "exchange=%s@%s",
	    a->conf.exchange, a->link.safe_url);
	return 0;
}

/* After the router took its user: the spool's file is that user's. */
static int
amqp_run(struct output *o, char *err, size_t errsz)
{
	struct out_amqp *a = o->ctx;
	sigset_t all, old;
	char why[512];
	long long left;
	int rc;

	a->sp_in = store_spool_open(a->conf.spool, why, sizeof(why));
	if (a->sp_in != NULL)
		a->sp_out = store_spool_open(a->conf.spool, why, sizeof(why));
	if (a->sp_out == NULL) {
		snprintf(err, errsz, "amqp output: cannot open its spool: %s",
		    why);
		return -1;
	}
	counted(a, a->sp_out);
	if ((left = store_spool_count_of(a->sp_out, 1u << a->coll)) > 0)
		log_info("amqp output: %lld events wait in the spool %s from "
		    "before", left, a->conf.spool);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->spooler, NULL, spooler_main, a);
	if (rc == 0 && (rc = pthread_create(&a->publisher, NULL,
	    publisher_main, a)) != 0) {
		pthread_mutex_lock(&a->mu);
		a->stopping = 1;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->spooler, NULL);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errsz, "amqp output: cannot start a thread: %s",
		    strerror(rc));
		return -1;
	}
	a->started = 1;
	return 0;
}

static void
amqp_close(struct output *o)
{
	struct out_amqp *a = o->ctx;
	struct qitem *q, *next;

	if (a == NULL)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stopping = 1;
		a->stop_at = util_mono_ms() + OUT_AMQP_STOP_MS;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->spooler, NULL);
		pthread_join(a->publisher, NULL);
		log_info("amqp output: stopped: published %llu, confirmed %llu, "
		    "returned %llu, refused %llu, dropped %llu, left in the "
		    "spool %lld, reconnections %llu",
		    (unsigned long long)a->published,
		    (unsigned long long)a->confirmed,
		    (unsigned long long)a->returned,
		    (unsigned long long)a->nacked,
		    (unsigned long long)a->dropped,
		    store_spool_count_of(a->sp_out, 1u << a->coll),
		    (unsigned long long)a->reconnects);
	}
	for (q = a->head; q != NULL; q = next) {
		next = q->next;
		free(q);
	}
	store_spool_close(a->sp_in);
	store_spool_close(a->sp_out);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	explicit_bzero(a, sizeof(*a));		/* the password */
	free(a);
	o->ctx = NULL;
}

static const char *
amqp_describe(const struct output *o)
{
	const struct out_amqp *a = o->ctx;

	return a->describe;
}

static void
amqp_stats(const struct output *o, struct output_stats *st)
{
	struct out_amqp *a = o->ctx;

	st->spool_depth += (unsigned long long)atomic_load(&a->spool_n);
}

const struct output_ops output_amqp = {
	.name = "amqp",
	.parse = out_amqp_parse,
	.free_conf = out_amqp_free_conf,
	.open = amqp_open,
	.run = amqp_run,
	.publish = amqp_publish,
	.close = amqp_close,
	.describe = amqp_describe,
	.stats = amqp_stats,
};
