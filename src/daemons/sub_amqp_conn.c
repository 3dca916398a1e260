/*
 * sub_amqp_conn: event-sub's RabbitMQ consumer, its connection
 * (sub_amqp_int.h): the exchange and queues declared and bound, the
 * consumers started, and started again at a new prefetch.
 */
#include <amqp.h>
#include <stdio.h>
#include <string.h>

#include "amqp_link.h"
#include "log.h"
#include "sub_amqp_int.h"

/* A durable queue of our type, bound to the exchange with "#". */
static int
declare_queue(struct sub_amqp *a, const char *name, char *why, size_t whysz)
{
	amqp_table_entry_t e;
	amqp_table_t args = { 1, &e };
	amqp_rpc_reply_t r;
	char t[256];

	e.key = amqp_cstring_bytes("x-queue-type");
	e.value.kind = AMQP_FIELD_KIND_UTF8;
	e.value.value.bytes = amqp_cstring_bytes(a->quorum ? "quorum" :
	    "classic");
	/* passive 0, durable 1, exclusive 0, auto_delete 0 */
	amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(name), 0, 1, 0, 0,
	    args);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		amqp_queue_bind(a->conn, 1, amqp_cstring_bytes(name),
		    amqp_cstring_bytes(a->exchange), amqp_cstring_bytes("#"),
		    amqp_empty_table);
		r = amqp_get_rpc_reply(a->conn);
	}
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		snprintf(why, whysz, "queue %s (%s, durable, bound to %s with "
		    "#): %s", name, a->quorum ? "quorum" : "classic",
		    a->exchange, amqp_link_reply_text(r, t, sizeof(t)));
		a->refusal = amqp_link_refusal(r);
		return -1;
	}
	return 0;
}

static int
consume_queue(struct sub_amqp *a, const char *name, const char *tag,
    char *why, size_t whysz)
{
	amqp_rpc_reply_t r;
	char t[256];

	/* no_local 0, no_ack 0, exclusive 0 */
	amqp_basic_consume(a->conn, 1, amqp_cstring_bytes(name),
	    amqp_cstring_bytes(tag), 0, 0, 0, amqp_empty_table);
	if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL) {
		snprintf(why, whysz, "cannot consume from queue %s: %s", name,
		    amqp_link_reply_text(r, t, sizeof(t)));
		a->refusal = amqp_link_refusal(r);
		return -1;
	}
	return 0;
}

/*
 * Once consuming: the own queue's consumers counted (a passive
 * queue.declare).  More than ours is a WARNING: another event-sub of the
 * same subscriber.name takes part of its events (quorum queues do not
 * enforce an exclusive consumer).  0, or -1 with why.
 */
static int
check_shared(struct sub_amqp *a, char *why, size_t whysz)
{
	amqp_queue_declare_ok_t *ok;
	amqp_rpc_reply_t r;
	char t[256];

	ok = amqp_queue_declare(a->conn, 1, amqp_cstring_bytes(a->own), 1, 0,
	    0, 0, amqp_empty_table);
	if (ok == NULL) {
		r = amqp_get_rpc_reply(a->conn);
		snprintf(why, whysz, "queue %s: %s", a->own,
		    amqp_link_reply_text(r, t, sizeof(t)));
		return -1;
	}
	if (ok->consumer_count > 1)
		log_warn("amqp: queue %s has %u consumers: another event-sub "
		    "of subscriber.name %s takes part of its events (or the "
		    "broker has not yet seen an earlier connection of this one "
		    "go); give each event-sub a name of its own", a->own,
		    (unsigned)ok->consumer_count,
		    a->own + strlen(SUB_AMQP_OWN_PREFIX));
	return 0;
}

/*
 * Connect, declare the exchange (as the amqp output does) and the
 * queues, bind them, consume.  Returns 0, or -1 with why and nothing
 * left open.
 */
int
sub_amqp_connect(struct sub_amqp *a, char *why, size_t whysz)
{
	amqp_rpc_reply_t r;
	char t[256];

	a->refusal = 0;
	a->conn = amqp_link_open(&a->link, SUB_AMQP_HEARTBEAT, &a->refusal,
	    why, whysz);
	if (a->conn == NULL)
		return -1;
	/* topic, durable, not auto-deleted, not internal */
	amqp_exchange_declare(a->conn, 1, amqp_cstring_bytes(a->exchange),
	    amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		snprintf(why, whysz, "exchange %s (topic, durable): %s",
		    a->exchange, amqp_link_reply_text(r, t, sizeof(t)));
		a->refusal = amqp_link_refusal(r);
		goto fail;
	}
	if (declare_queue(a, a->own, why, whysz) != 0 ||
	    (a->group && declare_queue(a, a->grp, why, whysz) != 0))
		goto fail;
	/* per consumer: each queue's runs in flight */
	a->requalified = 0;
	a->prefetch = atomic_load(&a->want_prefetch);
	amqp_basic_qos(a->conn, 1, 0, (uint16_t)a->prefetch, 0);
	if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL) {
		snprintf(why, whysz, "basic.qos: %s",
		    amqp_link_reply_text(r, t, sizeof(t)));
		a->refusal = amqp_link_refusal(r);
		goto fail;
	}
	if (consume_queue(a, a->own, "own", why, whysz) != 0 ||
	    (a->group && consume_queue(a, a->grp, "group", why, whysz) != 0) ||
	    check_shared(a, why, whysz) != 0)
		goto fail;
	return 0;
fail:
	amqp_link_close(a->conn, 1, 0);
	a->conn = NULL;
	return -1;
}

/* The consumer tag of queue kind "own" or "group" on this connection. */
static void
consumer_tag(const struct sub_amqp *a, const char *kind, char *tag,
    size_t tagsz)
{
	if (a->requalified == 0)
		snprintf(tag, tagsz, "%s", kind);
	else
		snprintf(tag, tagsz, "%s-%u", kind, a->requalified);
}

/*
 * A reloaded subscriber.max_concurrency: basic.qos (not global) binds
 * the consumers started after it, so ours are cancelled and started
 * again with the new prefetch.  The messages handed out before stay
 * ours, unacknowledged until their runs end.  Returns 0, or -1 with why
 * when the connection fails.
 */
int
sub_amqp_requalify(struct sub_amqp *a, int n, char *why, size_t whysz)
{
	static const char *const kinds[2] = { "own", "group" };
	const char *queues[2] = { a->own, a->grp };
	amqp_rpc_reply_t r;
	char t[256], tags[2][32];
	int was = a->prefetch;

	/* a tag of its own for each new consumer: RabbitMQ 3.10 closes the
	 * connection (541 INTERNAL_ERROR) when a quorum queue's consumer is
	 * started again under the tag of one just cancelled */
	for (int i = 0; i < 1 + a->group; i++) {
		consumer_tag(a, kinds[i], tags[i], sizeof(tags[i]));
		amqp_basic_cancel(a->conn, 1, amqp_cstring_bytes(tags[i]));
		if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
		    AMQP_RESPONSE_NORMAL) {
			snprintf(why, whysz, "basic.cancel of queue %s: %s",
			    queues[i], amqp_link_reply_text(r, t, sizeof(t)));
			return -1;
		}
	}
	a->prefetch = n;
	amqp_basic_qos(a->conn, 1, 0, (uint16_t)n, 0);
	if ((r = amqp_get_rpc_reply(a->conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL) {
		snprintf(why, whysz, "basic.qos: %s",
		    amqp_link_reply_text(r, t, sizeof(t)));
		return -1;
	}
	a->requalified++;
	for (int i = 0; i < 1 + a->group; i++) {
		consumer_tag(a, kinds[i], tags[i], sizeof(tags[i]));
		if (consume_queue(a, queues[i], tags[i], why, whysz) != 0)
			return -1;
	}
	log_info("amqp: prefetch %d per queue (was %d): consuming %s again",
	    n, was, a->group ? "both queues" : "the queue");
	return 0;
}
