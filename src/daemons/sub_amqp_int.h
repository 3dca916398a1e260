/*
 * sub_amqp_int: what sub_amqp.c (the thread, the loop's side) and
 * sub_amqp_conn.c (the connection) share of event-sub's RabbitMQ
 * consumer; nothing else includes it.
 */
#ifndef ER_SUB_AMQP_INT_H
#define ER_SUB_AMQP_INT_H

#include <amqp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "amqp_link.h"
#include "sub_amqp.h"

struct ack {
	uint64_t tag;
	unsigned gen;
};

struct sub_amqp {
	struct amqp_link link;
	char own[CFG_SUB_NAME_MAX + 16], grp[CFG_SUB_NAME_MAX + 16];
	char exchange[256];
	int group, quorum;
	int prefetch;			/* the thread's: its consumers' */
	atomic_int want_prefetch;	/* subscriber.max_concurrency */
	char describe[2048];
	pthread_t thread;
	int started;
	int evfd;			/* the loop's: messages wait */
	int wakefd;			/* the thread's: acks wait, or the stop */
	atomic_int consuming, done;

	pthread_mutex_t mu;		/* the rest below, but the thread's */
	struct sub_amqp_msg *head, *tail;	/* to the loop */
	struct ack *acks;		/* to the thread */
	size_t nacks, capacks;
	int stopping;

	/* the thread's own */
	amqp_connection_state_t conn;
	unsigned gen;			/* connections made */
	unsigned requalified;		/* prefetch changes on this one */
	int refusal;			/* the last attempt's (amqp_link.h) */
	int down_at_start;		/* the first attempt (the caller's)
					   failed */
	unsigned long long delivered, acked, unsent, reconnects;
};

/*
 * The thread's: connect, declare the exchange (as the amqp output does)
 * and the queues, bind them, consume with the wanted prefetch; a->conn
 * set.  Returns 0, or -1 with why, a->refusal set (amqp_link_refusal())
 * and nothing left open.
 */
int sub_amqp_connect(struct sub_amqp *a, char *why, size_t whysz);
/*
 * The thread's: consumers cancelled and started again with prefetch n
 * (a reloaded subscriber.max_concurrency).  Returns 0, or -1 with why when
 * the connection fails.
 */
int sub_amqp_requalify(struct sub_amqp *a, int n, char *why, size_t whysz);

#endif
