/*
 * sub_amqp: event-sub's RabbitMQ consumer (-u amqp://, event-reactor(7),
 * "Running a fleet"); with sub_amqp_plan.c (the plan, without
 * connecting), the only part of event-sub that includes amqp.h (through
 * amqp_link.h).
 *
 * One thread of its own holds the connection: it connects, declares the
 * exchange (topic, durable, as the amqp output declares it), the
 * event-sub's own queue SUB_AMQP_OWN_PREFIX NAME and, when the handler
 * table has "exclusive" handlers, the group's queue SUB_AMQP_GROUP_PREFIX
 * GROUP, durable, of subscriber.queue_type (x-queue-type), each bound
 * with "#"; it consumes both on one channel with basic.qos prefetch
 * subscriber.max_concurrency per consumer and hands each delivery to
 * event-sub's loop (sub_amqp_take(), readable sub_amqp_fd()).  The loop
 * settles each message with sub_amqp_ack() once the results of its runs
 * are stored, or sub_amqp_drop() to leave it to the broker (it goes back
 * to a queue when this connection ends).  When the broker goes away the
 * thread reconnects with a backoff of SUB_AMQP_BACKOFF_MIN_MS doubling to
 * _MAX_MS, logging the outage once and the return; the messages it had
 * handed out are redelivered by the broker, and their acknowledgements,
 * of a connection gone, are not sent.
 */
#ifndef ER_SUB_AMQP_H
#define ER_SUB_AMQP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SUB_AMQP_OWN_PREFIX "er.sub."
#define SUB_AMQP_GROUP_PREFIX "er.group."
#define SUB_AMQP_BACKOFF_MIN_MS 500
#define SUB_AMQP_BACKOFF_MAX_MS 30000
/* The thread's longest wait, ms: a stop or an acknowledgement waits no
 * longer than this for it. */
#define SUB_AMQP_POLL_MS 200
/* AMQP heartbeat asked for, seconds. */
#define SUB_AMQP_HEARTBEAT 10
/* At the stop: how long the thread has to send the last
 * acknowledgements and close (ms); past it, it is left behind. */
#define SUB_AMQP_STOP_MS 1500

/* A delivery, handed to the loop. */
struct sub_amqp_msg {
	struct sub_amqp_msg *next;
	uint64_t tag;			/* its delivery tag */
	unsigned gen;			/* the connection it came on */
	int group;			/* 1: from the group's queue */
	int redelivered;		/* basic.deliver's flag */
	char *body;			/* NUL-terminated */
	size_t len;
	/* the loop's (sub_fleet.c) */
	int runs;			/* runs not ended */
	int open;			/* its runs are being queued */
	int drop;			/* a run not ended: leave it to the
					   broker */
	unsigned long long seq;		/* the last of its results */
};

struct sub_amqp;

/*
 * The checks of a -u URI starting with amqp:// or amqps:// that need no
 * configuration (amqp_link.h's, without the reader): 0, or -1 with why
 * (which never shows the URI: it may hold a password).
 */
int sub_amqp_check_uri(const char *uri, char *why, size_t whysz);
/* 1 when uri names a RabbitMQ broker (amqp:// or amqps://). */
int sub_amqp_uri(const char *uri);

/* What a start with -u uri would consume (sub_amqp_plan()). */
struct sub_amqp_plan {
	char url[512];			/* without the password */
	char own[CFG_SUB_NAME_MAX + 16];	/* er.sub.NAME */
	char grp[CFG_SUB_NAME_MAX + 16];	/* er.group.GROUP */
};

/*
 * The queues a start with -u uri and cfg would consume, checked as the
 * start checks them.  Returns 0, or -1 with err[errsz] set (amqps://
 * without subscriber.ca_file, a host name that cannot name a queue).
 */
int sub_amqp_plan(const struct cfg *cfg, const char *uri,
    struct sub_amqp_plan *p, char *err, size_t errsz);

/*
 * Start consuming from uri with cfg's subscriber settings; group: consume
 * the group's queue too.  The first connection is tried here, in the
 * caller's thread (bounded by amqp_link.h's timeouts): a broker away is
 * logged at WARNING and left to the thread; a refusal (amqp_link_refusal():
 * a login refused, a vhost missing, a queue of another type) fails the
 * start.  Later refusals are logged at ERROR and tried again every
 * SUB_AMQP_BACKOFF_MAX_MS.  Returns NULL with err[errsz] set (amqps://
 * without subscriber.ca_file, a name too long for a queue, the broker's
 * refusal).
 */
struct sub_amqp *sub_amqp_new(const struct cfg *cfg, const char *uri,
    int group, char *err, size_t errsz);
/*
 * A reloaded subscriber.max_concurrency: from now on each queue's
 * consumer has n (1..65535) unacknowledged messages at most (the thread
 * cancels its consumers and consumes again, logging "amqp: prefetch N
 * per queue (was M)"); those handed out before are settled as usual.
 * The same n: a no-op.  NULL: a no-op.
 */
void sub_amqp_set_prefetch(struct sub_amqp *a, int n);
/* Readable when messages wait or the thread's state moved (drain it with
 * sub_amqp_take() until NULL). */
int sub_amqp_fd(const struct sub_amqp *a);
/* The next message, or NULL (and the fd drained). */
struct sub_amqp_msg *sub_amqp_take(struct sub_amqp *a);
/* 1 once the thread consumes (the first time). */
int sub_amqp_consuming(const struct sub_amqp *a);
/* What it consumes: "amqp://user@host:port/ (queue er.sub.N...)". */
const char *sub_amqp_describe(const struct sub_amqp *a);
/* 1 when it consumes the group's queue too. */
int sub_amqp_group(const struct sub_amqp *a);
/* The own queue's name, the group queue's: for log lines. */
const char *sub_amqp_queue(const struct sub_amqp *a, int group);
/* Acknowledge m (sent by the thread), or leave it to the broker; m is
 * freed either way. */
void sub_amqp_ack(struct sub_amqp *a, struct sub_amqp_msg *m);
void sub_amqp_drop(struct sub_amqp *a, struct sub_amqp_msg *m);
/*
 * The stop: the acknowledgements given are sent, the connection closed,
 * within SUB_AMQP_STOP_MS; messages not taken go back to the broker.
 * Logs "amqp: stopped: ..." with the counts.  NULL: a no-op.
 */
void sub_amqp_free(struct sub_amqp *a);

#endif
