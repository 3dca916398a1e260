/* sub_amqp: event-sub's RabbitMQ consumer.  See sub_amqp.h. */
#include <amqp.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "amqp_link.h"
#include "log.h"
#include "sub_amqp.h"
#include "sub_amqp_int.h"
#include "util.h"

/* Deliveries read per turn before the acknowledgements are sent. */
#define TURN_MAX 256

static void
wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("amqp: eventfd: %s", strerror(errno));
}

static void
drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_error("amqp: eventfd: %s", strerror(errno));
}

static int
stopping(struct sub_amqp *a)
{
	int s;

	pthread_mutex_lock(&a->mu);
	s = a->stopping;
	pthread_mutex_unlock(&a->mu);
	return s;
}

/* ---- consuming ---- */

static void
deliver(struct sub_amqp *a, const amqp_envelope_t *env)
{
	struct sub_amqp_msg *m = xcalloc(1, sizeof(*m));
	const amqp_bytes_t *b = &env->message.body;

	m->tag = env->delivery_tag;
	m->gen = a->gen;
	/* "group", or "group-N" after N changes of the prefetch */
	m->group = env->consumer_tag.len >= 5 &&
	    memcmp(env->consumer_tag.bytes, "group", 5) == 0;
	m->redelivered = env->redelivered != 0;
	m->len = b->len;
	m->body = xmalloc(b->len + 1);
	if (b->len > 0)
		memcpy(m->body, b->bytes, b->len);
	m->body[b->len] = '\0';
	a->delivered++;
	pthread_mutex_lock(&a->mu);
	if (a->tail != NULL)
		a->tail->next = m;
	else
		a->head = m;
	a->tail = m;
	pthread_mutex_unlock(&a->mu);
}

/* Send the acknowledgements the loop gave; those of a connection gone
 * are not sent (the broker hands their messages out again).  Returns
 * -1 with why when the connection fails. */
static int
send_acks(struct sub_amqp *a, char *why, size_t whysz)
{
	struct ack *acks;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	acks = a->acks;
	n = a->nacks;
	a->acks = NULL;
	a->nacks = a->capacks = 0;
	pthread_mutex_unlock(&a->mu);
	for (size_t i = 0; i < n; i++) {
		int st;
		if (a->conn == NULL || acks[i].gen != a->gen || rc != 0) {
			a->unsent++;
			continue;
		}
		st = amqp_basic_ack(a->conn, 1, acks[i].tag, 0);
		if (st != AMQP_STATUS_OK) {
			snprintf(why, whysz, "cannot acknowledge: %s",
			    amqp_error_string2(st));
			a->unsent++;
			rc = -1;
		} else {
			a->acked++;
		}
	}
	free(acks);
	return rc;
}

/* Read what the broker sent, up to TURN_MAX deliveries.  Returns 0, or
 * -1 with why when the connection is lost. */
static int
read_some(struct sub_amqp *a, char *why, size_t whysz)
{
	struct timeval tv = { 0, 0 };
	amqp_envelope_t env;
	int n = 0, got;

	while (n < TURN_MAX) {
		got = amqp_link_consume(a->conn, &env, &tv, why, whysz);
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		deliver(a, &env);
		amqp_destroy_envelope(&env);
		n++;
	}
	if (n > 0)
		wake(a->evfd);
	return 0;
}

/* Consume until the stop (0) or the connection is lost (-1, why). */
static int
consume(struct sub_amqp *a, char *why, size_t whysz)
{
	struct pollfd p[2];

	for (;;) {
		if (send_acks(a, why, whysz) != 0)
			return -1;
		if (stopping(a))
			return 0;
		if (atomic_load(&a->want_prefetch) != a->prefetch &&
		    sub_amqp_requalify(a, atomic_load(&a->want_prefetch),
		    why, whysz) != 0)
			return -1;
		if (!amqp_data_in_buffer(a->conn) &&
		    !amqp_frames_enqueued(a->conn)) {
			p[0].fd = amqp_get_sockfd(a->conn);
			p[1].fd = a->wakefd;
			p[0].events = p[1].events = POLLIN;
			if (poll(p, 2, SUB_AMQP_POLL_MS) < 0 && errno != EINTR) {
				snprintf(why, whysz, "poll: %s", strerror(errno));
				return -1;
			}
			if (p[1].revents & POLLIN)
				drain(a->wakefd);
		}
		/* every turn: rabbitmq-c sends and checks heartbeats here */
		if (read_some(a, why, whysz) != 0)
			return -1;
	}
}

/* Wait ms for the stop.  Returns 1 when stopping. */
static int
wait_stop(struct sub_amqp *a, long ms)
{
	long long end = util_mono_ms() + ms;
	struct pollfd p = { a->wakefd, POLLIN, 0 };

	while (!stopping(a)) {
		long long left = end - util_mono_ms();
		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)left) > 0)
			drain(a->wakefd);
	}
	return 1;
}

static void
consuming_line(struct sub_amqp *a, int down, double since)
{
	if (down)
		log_info("amqp: broker %s is back after %.1f s: consuming %s",
		    a->link.safe_url, util_mono() - since, a->describe);
	else
		log_info("amqp: consuming %s", a->describe);
}

/* The attempt that failed with why, logged once per kind of failure
 * (kind: 1 unavailable, 2 refused): returns the kind. */
static int
failed_line(struct sub_amqp *a, const char *why, int logged)
{
	int kind = a->refusal != 0 ? 2 : 1;
	int n = amqp_link_why_len(why);

	if (kind == logged)
		log_debug("amqp: still %s: %s", kind == 2 ? "refused" :
		    "unavailable", why);
	else if (kind == 2)
		log_error("amqp: broker %s refused event-sub: %.*s; trying "
		    "again every %.0f s", a->link.safe_url, n, why,
		    SUB_AMQP_BACKOFF_MAX_MS / 1000.0);
	else
		log_warn("amqp: broker %s unavailable: %.*s; retrying every "
		    "%.1f to %.0f s", a->link.safe_url, n, why,
		    SUB_AMQP_BACKOFF_MIN_MS / 1000.0,
		    SUB_AMQP_BACKOFF_MAX_MS / 1000.0);
	return kind;
}

static void *
run(void *arg)
{
	struct sub_amqp *a = arg;
	char why[512];
	long backoff = SUB_AMQP_BACKOFF_MIN_MS;
	int down = a->down_at_start, logged = down;
	double since = util_mono();
	int failed = down;	/* the caller's first attempt failed */

	while (!stopping(a)) {
		if (failed) {
			send_acks(a, why, sizeof(why));	/* unsent */
			if (wait_stop(a, backoff))
				break;
			backoff = backoff * 2 > SUB_AMQP_BACKOFF_MAX_MS ?
			    SUB_AMQP_BACKOFF_MAX_MS : backoff * 2;
			failed = 0;
		}
		/* the first connection may be the caller's */
		if (a->conn == NULL &&
		    sub_amqp_connect(a, why, sizeof(why)) != 0) {
			logged = failed_line(a, why, logged);
			if (!down)
				since = util_mono();
			down = failed = 1;
			if (a->refusal != 0)	/* no sooner put right */
				backoff = SUB_AMQP_BACKOFF_MAX_MS;
			continue;
		}
		a->gen++;
		if (atomic_load(&a->consuming))
			a->reconnects++;
		consuming_line(a, down, since);
		atomic_store(&a->consuming, 1);
		wake(a->evfd);
		down = logged = 0;
		backoff = SUB_AMQP_BACKOFF_MIN_MS;
		if (consume(a, why, sizeof(why)) == 0) {
			amqp_link_close(a->conn, 1, 1);
			a->conn = NULL;
			break;
		}
		amqp_link_close(a->conn, 1, 0);
		a->conn = NULL;
		log_warn("amqp: lost the broker %s: %s; reconnecting every %.1f "
		    "to %.0f s", a->link.safe_url, why,
		    SUB_AMQP_BACKOFF_MIN_MS / 1000.0,
		    SUB_AMQP_BACKOFF_MAX_MS / 1000.0);
		down = logged = 1;
		since = util_mono();
	}
	atomic_store(&a->done, 1);
	return NULL;
}

/* ---- the loop's side ---- */

struct sub_amqp *
sub_amqp_new(const struct cfg *cfg, const char *uri, int group, char *err,
    size_t errsz)
{
	struct sub_amqp_plan p;
	struct sub_amqp *a;
	char why[512];
	int rc;

	if (sub_amqp_plan(cfg, uri, &p, err, errsz) != 0)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	amqp_link_parse(&a->link, uri, cfg->sub_ca_file);	/* as above */
	snprintf(a->own, sizeof(a->own), "%s", p.own);
	snprintf(a->grp, sizeof(a->grp), "%s", p.grp);
	snprintf(a->exchange, sizeof(a->exchange), "%s", cfg->sub_exchange);
	a->group = group;
	a->quorum = cfg->sub_quorum;
	atomic_init(&a->want_prefetch, cfg->max_concurrency);
	if (group)
		snprintf(a->describe, sizeof(a->describe), "queues %s and %s "
		    "(%s) of exchange %s on %s", a->own, a->grp,
		    a->quorum ? "quorum" : "classic", a->exchange,
		    a->link.safe_url);
	else
		snprintf(a->describe, sizeof(a->describe), "queue %s (%s) of "
		    "exchange %s on %s", a->own, a->quorum ? "quorum" :
		    "classic", a->exchange, a->link.safe_url);
	pthread_mutex_init(&a->mu, NULL);
	a->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->evfd < 0 || a->wakefd < 0) {
		snprintf(err, errsz, "cannot create an eventfd: %s",
		    strerror(errno));
		sub_amqp_free(a);
		return NULL;
	}
	/* the first attempt is the start's: a refusal fails it, a broker
	 * away does not (the thread tries again) */
	if (sub_amqp_connect(a, why, sizeof(why)) != 0) {
		if (a->refusal != 0) {
			snprintf(err, errsz, "amqp: broker %s refused event-sub: "
			    "%s", a->link.safe_url, why);
			sub_amqp_free(a);
			return NULL;
		}
		failed_line(a, why, 0);
		a->down_at_start = 1;
	}
	if ((rc = pthread_create(&a->thread, NULL, run, a)) != 0) {
		snprintf(err, errsz, "cannot start the AMQP thread: %s",
		    strerror(rc));
		sub_amqp_free(a);
		return NULL;
	}
	a->started = 1;
	return a;
}

void
sub_amqp_set_prefetch(struct sub_amqp *a, int n)
{
	if (a == NULL || atomic_exchange(&a->want_prefetch, n) == n)
		return;
	wake(a->wakefd);
}

int
sub_amqp_fd(const struct sub_amqp *a)
{
	return a->evfd;
}

struct sub_amqp_msg *
sub_amqp_take(struct sub_amqp *a)
{
	struct sub_amqp_msg *m;

	pthread_mutex_lock(&a->mu);
	m = a->head;
	if (m != NULL) {
		a->head = m->next;
		if (a->head == NULL)
			a->tail = NULL;
		m->next = NULL;
	} else {
		drain(a->evfd);
	}
	pthread_mutex_unlock(&a->mu);
	return m;
}

int
sub_amqp_consuming(const struct sub_amqp *a)
{
	return atomic_load(&a->consuming);
}

const char *
sub_amqp_describe(const struct sub_amqp *a)
{
	return a->describe;
}

int
sub_amqp_group(const struct sub_amqp *a)
{
	return a->group;
}

const char *
sub_amqp_queue(const struct sub_amqp *a, int group)
{
	return group ? a->grp : a->own;
}

static void
msg_free(struct sub_amqp_msg *m)
{
	free(m->body);
	free(m);
}

void
sub_amqp_ack(struct sub_amqp *a, struct sub_amqp_msg *m)
{
	pthread_mutex_lock(&a->mu);
	if (a->nacks == a->capacks) {
		a->capacks = a->capacks ? a->capacks * 2 : 64;
		a->acks = xrealloc(a->acks, a->capacks * sizeof(*a->acks));
	}
	a->acks[a->nacks].tag = m->tag;
	a->acks[a->nacks].gen = m->gen;
	a->nacks++;
	pthread_mutex_unlock(&a->mu);
	wake(a->wakefd);
	msg_free(m);
}

void
sub_amqp_drop(struct sub_amqp *a, struct sub_amqp_msg *m)
{
	(void)a;
	msg_free(m);
}

/* The thread ends within SUB_AMQP_STOP_MS: 0, or -1 (left behind). */
static int
join(struct sub_amqp *a)
{
	struct timespec ts;

	util_deadline(&ts, CLOCK_REALTIME, SUB_AMQP_STOP_MS);
	if (pthread_timedjoin_np(a->thread, NULL, &ts) == 0)
		return 0;
	log_warn("amqp: the broker %s did not let go within %d ms: exiting "
	    "without it (unacknowledged messages go back to their queues)",
	    a->link.safe_url, SUB_AMQP_STOP_MS);
	return -1;
}

void
sub_amqp_free(struct sub_amqp *a)
{
	struct sub_amqp_msg *m;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = 1;
	pthread_mutex_unlock(&a->mu);
	if (a->started) {
		wake(a->wakefd);
		if (join(a) != 0)
			return;		/* the thread still holds a */
		log_info("amqp: stopped: delivered %llu, acknowledged %llu, "
		    "not acknowledged (connection lost) %llu, reconnections "
		    "%llu", a->delivered, a->acked, a->unsent, a->reconnects);
	} else if (a->conn != NULL) {	/* the start's, no thread came */
		amqp_link_close(a->conn, 1, 0);
	}
	while ((m = a->head) != NULL) {
		a->head = m->next;
		msg_free(m);
	}
	free(a->acks);
	if (a->evfd >= 0)
		close(a->evfd);
	if (a->wakefd >= 0)
		close(a->wakefd);
	pthread_mutex_destroy(&a->mu);
	explicit_bzero(&a->link, sizeof(a->link));
	free(a);
}
