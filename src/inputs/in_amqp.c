/* in_amqp: AMQPInput.  See in_amqp.h. */
#include <amqp.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqp_link.h"
#include "event.h"
#include "feeder.h"
#include "in_amqp.h"
#include "in_amqp_oslo.h"
#include "input.h"
#include "log.h"
#include "util.h"

/* Seconds a socket connect or an RPC (declare, bind...) may take. */

struct in_amqp {
	struct in_amqp_conf conf;
	struct bus *bus;
	char router_uri[CFG_URI_MAX];
	size_t max;			/* limits.max_event_size */
	struct amqp_link link;		/* the broker */
	char name[160];			/* "amqp:NAMESPACE" */
	char describe[600];
	pthread_t thread;
	int started;
	atomic_int stopping, abandon, done;
	struct input *in;		/* whose refusals it counts */

	/* the thread's own */
	amqp_connection_state_t conn;
	int channel;
	int refusal;			/* amqp_link_refusal() of the last try */
	struct feeder_pipe *pipe;	/* up to "prefetch" in flight */
	struct log_ratelimit rl;
	unsigned long long received, acked, rejected, requeued, reconnects;
};

/* ---- errors ---- */

/* 1 when r is the broker closing the channel with code (e.g. 406). */
static int
channel_closed_with(amqp_rpc_reply_t r, unsigned code)
{
	return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
	    ((amqp_channel_close_t *)r.reply.decoded)->reply_code == code;
}

/* After the broker closed our channel: confirm, open the next one. */
static int
reopen_channel(struct in_amqp *a, char *why, size_t whysz)
{
	amqp_channel_close_ok_t ok = { 0 };

	amqp_send_method(a->conn, (amqp_channel_t)a->channel,
	    AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
	a->channel++;
	amqp_channel_open(a->conn, (amqp_channel_t)a->channel);
	if (amqp_get_rpc_reply(a->conn).reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_link_reply_text(amqp_get_rpc_reply(a->conn), why, whysz);
		return -1;
	}
	return 0;
}

/* ---- connecting ---- */

static void
disconnect(struct in_amqp *a, int graceful)
{
	amqp_link_close(a->conn, a->channel, graceful);
	a->conn = NULL;
}

/* Connect, log in, open channel 1.  Returns 0, or -1 with why. */
static int
open_broker(struct in_amqp *a, char *why, size_t whysz)
{
	a->conn = amqp_link_open(&a->link, IN_AMQP_HEARTBEAT, &a->refusal, why,
	    whysz);
	a->channel = 1;
	return a->conn != NULL ? 0 : -1;
}

/*
 * Declare the exchanges of "bindings".  They belong to their producer
 * (OpenStack's services): each is declared exactly as the producer
 * declares it, so that whichever comes first, the other's declaration
 * agrees (a declaration with other settings is refused with 406
 * PRECONDITION_FAILED and closes the channel).  That is oslo.messaging's
 * rabbit driver: a topic exchange, not auto-deleted, durable only with
 * amqp_durable_queues = True (exchange_durable here).  Declaring it
 * ourselves, rather than passively, binds our queue at once: a
 * notification published right after the producer's first declaration
 * reaches us.  One that exists with other settings is used as it is, with
 * a warning: its producer and exchange_durable disagree.  Returns 0, or
 * -1 with why.
 */
static int
declare_exchanges(struct in_amqp *a, char *why, size_t whysz)
{
	const struct in_amqp_conf *c = &a->conf;
	amqp_rpc_reply_t r;
	char t[256];

	for (int i = 0; i < c->nbindings; i++) {
		/* passive 0, durable, auto_delete 0, internal 0 */
		amqp_exchange_declare(a->conn, (amqp_channel_t)a->channel,
		    amqp_cstring_bytes(c->bindings[i]),
		    amqp_cstring_bytes(c->exchange_type), 0,
		    c->exchange_durable, 0, 0, amqp_empty_table);
		r = amqp_get_rpc_reply(a->conn);
		if (channel_closed_with(r, AMQP_PRECONDITION_FAILED)) {
			log_limited(&a->rl, LOG_LVL_WARNING, "%s: exchange %s "
			    "exists with other settings than type %s, durable "
			    "%s, auto-delete false: using it as it is; set "
			    "exchange_durable as its producer declares it "
			    "(oslo.messaging: amqp_durable_queues)", a->name,
			    c->bindings[i], c->exchange_type,
			    c->exchange_durable ? "true" : "false");
			if (reopen_channel(a, why, whysz) != 0)
				return -1;
		} else if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			a->refusal = amqp_link_refusal(r);
			snprintf(why, whysz, "cannot declare exchange %s: %s",
			    c->bindings[i], amqp_link_reply_text(r, t, sizeof(t)));
			return -1;
		}
	}
	return 0;
}

/*
 * Declare the queue (one that exists with other settings is used as it
 * is), bind it to each exchange with the routing key, consume with
 * basic.qos prefetch.  Returns 0, or -1 with why.
 */
static int
consume_queue(struct in_amqp *a, char *why, size_t whysz)
{
	const struct in_amqp_conf *c = &a->conf;
	amqp_bytes_t queue = amqp_cstring_bytes(c->queue_name);
	amqp_channel_t ch = (amqp_channel_t)a->channel;
	amqp_rpc_reply_t r;
	char t[256];

	amqp_queue_declare(a->conn, ch, queue, 0, c->durable, 0, 0,
	    amqp_empty_table);
	r = amqp_get_rpc_reply(a->conn);
	if (channel_closed_with(r, AMQP_PRECONDITION_FAILED)) {
		log_debug("%s: queue %s exists with other settings; using it as "
		    "it is", a->name, c->queue_name);
		if (reopen_channel(a, why, whysz) != 0)
			return -1;
		ch = (amqp_channel_t)a->channel;
	} else if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		a->refusal = amqp_link_refusal(r);
		snprintf(why, whysz, "cannot declare queue %s: %s", c->queue_name,
		    amqp_link_reply_text(r, t, sizeof(t)));
		return -1;
	}
	for (int i = 0; i < c->nbindings; i++) {
		amqp_queue_bind(a->conn, ch, queue,
		    amqp_cstring_bytes(c->bindings[i]),
		    amqp_cstring_bytes(c->routing_key), amqp_empty_table);
		if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
		    AMQP_RESPONSE_NORMAL) {
			a->refusal = amqp_link_refusal(r);
			snprintf(why, whysz, "cannot bind queue %s to exchange "
			    "%s: %s", c->queue_name, c->bindings[i],
			    amqp_link_reply_text(r, t, sizeof(t)));
			return -1;
		}
	}
	amqp_basic_qos(a->conn, ch, 0, (uint16_t)c->prefetch, 0);
	amqp_basic_consume(a->conn, ch, queue, amqp_empty_bytes, 0, 0, 0,
	    amqp_empty_table);
	if ((r = amqp_get_rpc_reply(a->conn)).reply_type != AMQP_RESPONSE_NORMAL) {
		a->refusal = amqp_link_refusal(r);
		snprintf(why, whysz, "cannot consume from queue %s: %s",
		    c->queue_name, amqp_link_reply_text(r, t, sizeof(t)));
		return -1;
	}
	return 0;
}

/*
 * Connect, log in, open a channel, declare the exchanges and the queue,
 * bind, consume.  Returns 0, or -1 with why (nothing secret in it) and
 * the connection destroyed.
 */
static int
connect_broker(struct in_amqp *a, char *why, size_t whysz)
{
	if (open_broker(a, why, whysz) != 0 ||
	    declare_exchanges(a, why, whysz) != 0 ||
	    consume_queue(a, why, whysz) != 0) {
		disconnect(a, 0);
		return -1;
	}
	return 0;
}

/* ---- messages ---- */

/* Sleep ms, in slices, unless asked to stop.  Returns 1 when stopping. */
static int
backoff_sleep(struct in_amqp *a, long ms)
{
	long long end = util_mono_ms() + ms;

	while (!atomic_load(&a->stopping)) {
		long long left = end - util_mono_ms();
		struct timespec ts;
		if (left <= 0)
			return 0;
		if (left > 100)
			left = 100;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
	return 1;
}

enum settle { ACK, REJECT, REQUEUE };

static void
settle(struct in_amqp *a, uint64_t tag, enum settle how)
{
	amqp_channel_t ch = (amqp_channel_t)a->channel;
	int st = how == ACK ? amqp_basic_ack(a->conn, ch, tag, 0) :
	    amqp_basic_reject(a->conn, ch, tag, how == REQUEUE);

	if (st != AMQP_STATUS_OK)
		/* the broker redelivers it: at-least-once */
		log_limited(&a->rl, LOG_LVL_WARNING, "%s: cannot %s message "
		    "%llu: %s", a->name, how == ACK ? "acknowledge" : "reject",
		    (unsigned long long)tag, amqp_error_string2(st));
	else if (how == ACK)
		a->acked++;
	else if (how == REJECT)
		a->rejected++;
	else
		a->requeued++;
}

/*
 * One delivered message: refused here (over limits.max_event_size, not a
 * notification), or sent to the router, whose reply decides it
 * (decide()).  One the router cannot be sent goes back to the queue.
 */
static void
handle(struct in_amqp *a, const amqp_envelope_t *env)
{
	const amqp_bytes_t *b = &env->message.body;
	struct event_error err;
	char *ev;
	size_t len;

	a->received++;
	if (b->len > a->max) {
		input_refused(a->in, event_err_code(EV_TOO_LARGE));
		log_limited(&a->rl, LOG_LVL_WARNING, "%s: message rejected: "
		    "too_large: %zu bytes, over the limit of %zu bytes "
		    "(limits.max_event_size)", a->name, b->len, a->max);
		settle(a, env->delivery_tag, REJECT);
		return;
	}
	ev = oslo_event(b->bytes, b->len, &len, &err);
	if (ev == NULL) {
		input_refused(a->in, event_err_code(err.code));
		log_limited(&a->rl, LOG_LVL_WARNING, "%s: message rejected: %s: "
		    "%s", a->name, event_err_code(err.code), err.message);
		settle(a, env->delivery_tag, REJECT);
		return;
	}
	if (feeder_pipe_send(a->pipe, env->delivery_tag, ev, len) != 0) {
		log_limited(&a->rl, LOG_LVL_WARNING, "%s: message left on the "
		    "queue: cannot reach the router: %s", a->name,
		    strerror(errno));
		settle(a, env->delivery_tag, REQUEUE);
	}
	free(ev);
}

/*
 * The router's answer res for message tag: acknowledged once accepted
 * (stored), rejected when refused, requeued when the store could not
 * write it (then returns 1) or the router did not answer in time.  While
 * the router stops, a message it did not answer stays unacknowledged, so
 * the broker hands it out again once this connection is gone.
 */
static int
decide(struct in_amqp *a, uint64_t tag, const struct feeder_result *res)
{
	switch (res->verdict) {
	case FEEDER_ACCEPTED:
		log_debug("%s: message %llu is event %s", a->name,
		    (unsigned long long)tag, res->id);
		settle(a, tag, ACK);
		return 0;
	case FEEDER_REFUSED:
		/* the router logged and counted the refusal */
		if (strcmp(res->code, "store_unavailable") != 0) {
			settle(a, tag, REJECT);
			return 0;
		}
		log_limited(&a->rl, LOG_LVL_WARNING, "%s: message requeued: "
		    "%s: %s", a->name, res->code, res->message);
		settle(a, tag, REQUEUE);
		return 1;
	default:
		log_limited(&a->rl, LOG_LVL_WARNING, "%s: message left on the "
		    "queue: %s", a->name, res->message);
		if (!atomic_load(&a->stopping))
			settle(a, tag, REQUEUE);
		return 0;
	}
}

/*
 * Settle the messages the router answered; after one the store could not
 * write, wait IN_AMQP_STORE_RETRY_MS.  Returns 1 when stopping.
 */
static int
settle_answered(struct in_amqp *a)
{
	struct feeder_result res;
	unsigned long long tag;
	int full = 0;

	while (feeder_pipe_take(a->pipe, &tag, &res) == 1)
		full |= decide(a, tag, &res);
	return full ? backoff_sleep(a, IN_AMQP_STORE_RETRY_MS) :
	    atomic_load(&a->stopping);
}

/*
 * At a stop: settle the messages in flight as the router answers them (it
 * does until this input is idle), until it gives up on us (abandon).
 */
static void
settle_in_flight(struct in_amqp *a)
{
	while (feeder_pipe_pending(a->pipe) > 0 && !atomic_load(&a->abandon)) {
		feeder_pipe_wait(a->pipe, -1, IN_AMQP_POLL_MS);
		settle_answered(a);
	}
	feeder_pipe_forget(a->pipe);
}

/*
 * Consume until stopped (returns 0) or the connection is lost (returns -1
 * with why).
 */
static int
consume(struct in_amqp *a, char *why, size_t whysz)
{
	amqp_envelope_t env;
	struct timeval tv;
	int waiting, got;

	while (!settle_answered(a)) {
		waiting = feeder_pipe_pending(a->pipe) > 0;
		/* with messages in flight: their answers, or a delivery,
		 * whichever comes first */
		if (waiting && !amqp_data_in_buffer(a->conn) &&
		    !amqp_frames_enqueued(a->conn))
			feeder_pipe_wait(a->pipe, feeder_pipe_room(a->pipe) > 0 ?
			    amqp_get_sockfd(a->conn) : -1, IN_AMQP_POLL_MS);
		if (feeder_pipe_room(a->pipe) == 0)
			continue;
		tv.tv_sec = 0;
		tv.tv_usec = waiting ? 0 : IN_AMQP_POLL_MS * 1000;
		got = amqp_link_consume(a->conn, &env, &tv, why, whysz);
		if (got < 0)
			return -1;
		if (got > 0) {
			handle(a, &env);
			amqp_destroy_envelope(&env);
		}
	}
	return 0;
}

static void *
run(void *arg)
{
	struct in_amqp *a = arg;
	char why[512], last[512] = "", err[256];
	long backoff = IN_AMQP_BACKOFF_MIN_MS;
	int ever = 0, down = 0;
	double down_since = 0;

	a->pipe = feeder_pipe_new(a->bus, a->router_uri, a->conf.prefetch, err,
	    sizeof(err));
	if (a->pipe == NULL) {
		log_error("%s: cannot reach the router: %s", a->name, err);
		atomic_store(&a->done, 1);
		return NULL;
	}
	while (!atomic_load(&a->stopping)) {
		if (connect_broker(a, why, sizeof(why)) != 0) {
			/* once per outage, and again when the reason changes
			 * (refused, then a login error: a config problem) */
			if (!down || strcmp(why, last) != 0) {
				/* a refusal is the operator's to mend */
				log_msg(a->refusal ? LOG_LVL_ERROR :
				    LOG_LVL_WARNING, "%s: broker %s %s: %.*s; "
				    "retrying every %.1f to %.0f s", a->name,
				    a->link.safe_url, a->refusal ? "refused the "
				    "router" : "unavailable",
				    amqp_link_why_len(why), why,
				    IN_AMQP_BACKOFF_MIN_MS / 1000.0,
				    IN_AMQP_BACKOFF_MAX_MS / 1000.0);
				if (!down)
					down_since = util_mono();
				down = 1;
			} else {
				log_debug("%s: still %s: %.*s", a->name,
				    a->refusal ? "refused" : "unavailable",
				    amqp_link_why_len(why), why);
			}
			snprintf(last, sizeof(last), "%s", why);
			if (backoff_sleep(a, backoff))
				break;
			backoff = backoff * 2 > IN_AMQP_BACKOFF_MAX_MS ?
			    IN_AMQP_BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		if (down)
			log_info("%s: broker %s is back after %.1f s: consuming "
			    "queue %s", a->name, a->link.safe_url,
			    util_mono() - down_since, a->conf.queue_name);
		else
			log_info("%s: consuming queue %s on %s", a->name,
			    a->conf.queue_name, a->link.safe_url);
		if (ever)
			a->reconnects++;
		ever = 1;
		down = 0;
		backoff = IN_AMQP_BACKOFF_MIN_MS;
		last[0] = '\0';
		if (consume(a, why, sizeof(why)) == 0) {
			settle_in_flight(a);
			disconnect(a, 1);
			break;
		}
		/* their delivery tags mean nothing on the next channel: the
		 * broker hands those messages out again */
		feeder_pipe_forget(a->pipe);
		disconnect(a, 0);
		log_warn("%s: lost the broker %s: %s; reconnecting", a->name,
		    a->link.safe_url, why);
		down = 1;
		down_since = util_mono();
	}
	disconnect(a, 1);
	feeder_pipe_free(a->pipe);
	a->pipe = NULL;
	log_info("%s: stopped: received %llu, acknowledged %llu, rejected %llu, "
	    "requeued %llu, reconnections %llu", a->name, a->received,
	    a->acked, a->rejected, a->requeued, a->reconnects);
	atomic_store(&a->done, 1);
	return NULL;
}

/* ---- start and stop ---- */

static int
amqp_start(struct input *in, int index, char *err, size_t errsz)
{
	return feeder_listen(in, index, "amqp", err, errsz);
}

static int
amqp_run(struct input *in, int index, char *err, size_t errsz)
{
	struct in_amqp *a = xcalloc(1, sizeof(*a));
	int rc;

	a->in = in;
	(void)index;
	a->conf = *(const struct in_amqp_conf *)in->plugin->conf;
	a->bus = in->host.bus;
	snprintf(a->router_uri, sizeof(a->router_uri), "%s", in->bound);
	a->max = in->host.cfg->max_event_size;
	a->rl.interval = 10;
	a->rl.burst = 10;
	a->rl.what = "AMQPInput lines (messages rejected, requeued or "
	    "left on the broker)";
	snprintf(a->name, sizeof(a->name), "amqp:%s", in->ns);
	if (amqp_link_parse(&a->link, a->conf.url, a->conf.ca_file) != 0) {
		/* never echo the URL: it may hold the password */
		snprintf(err, errsz, "AMQPInput %s: \"url\" is not an "
		    "amqp[s]://user:password@host:port/vhost URL", in->ns);
		explicit_bzero(a, sizeof(*a));
		free(a);
		return -1;
	}
	snprintf(a->describe, sizeof(a->describe), "amqp=%s", a->link.safe_url);
	rc = pthread_create(&a->thread, NULL, run, a);
	if (rc != 0) {
		snprintf(err, errsz, "AMQPInput %s: cannot start a thread: %s",
		    in->ns, strerror(rc));
		free(a);
		return -1;
	}
	a->started = 1;
	in->ctx = a;
	return 0;
}

static void
amqp_stop(struct input *in)
{
	struct in_amqp *a = in->ctx;

	atomic_store(&a->stopping, 1);
}

static int
amqp_idle(struct input *in)
{
	struct in_amqp *a = in->ctx;

	return atomic_load(&a->done);
}

static void
amqp_free(struct input *in)
{
	struct in_amqp *a = in->ctx;

	if (a == NULL)
		return;
	atomic_store(&a->stopping, 1);
	atomic_store(&a->abandon, 1);
	if (a->started)
		pthread_join(a->thread, NULL);
	explicit_bzero(a->link.urlbuf, sizeof(a->link.urlbuf));
	explicit_bzero(&a->conf, sizeof(a->conf));
	free(a);
	in->ctx = NULL;
}

static const char *
amqp_describe(const struct input *in)
{
	const struct in_amqp *a = in->ctx;

	return a->describe;
}

const struct input_ops input_amqp = {
	.name = "AMQPInput",
	.parse = in_amqp_parse,
	.free_conf = in_amqp_free_conf,
	.batch = 1,
	.replies = 1,
	.start = amqp_start,
	.run = amqp_run,
	.stop = amqp_stop,
	.idle = amqp_idle,
	.free = amqp_free,
	.describe = amqp_describe,
};
