/*
 * out_amqp: the amqp output, every accepted event published to a
 * RabbitMQ topic exchange for a fleet of event-subs (event-reactor(7),
 * "The amqp output").  Its ops table is output_amqp (output.h).
 *
 * The router's thread hands each event to a bounded queue in memory
 * (OUT_AMQP_QUEUE_MAX events) and never waits for the broker: a spooler
 * thread appends what the queue holds to the spool (spool.h, a local
 * SQLite file) in one transaction, and a publisher thread publishes from
 * the spool, oldest first, as persistent messages (delivery mode 2,
 * content type application/json, message id the event's id, the body the
 * stamped event as on the PUB stream) with publisher confirms, removing
 * each from the spool once the broker confirmed it.  The routing key is
 * NAMESPACE.EVENT_TYPE, so topic bindings such as "openstack.#" select
 * events.  While the broker is away events wait in the spool (at most
 * "spool_max"; past it new events are dropped, counted and logged) and
 * the publisher reconnects with exponential backoff (OUT_AMQP_BACKOFF_MIN_MS
 * .. _MAX_MS), logging the outage once and the return.  A message the
 * broker returns (no queue bound for its routing key) is dropped, counted
 * and logged.  Delivery is at least once: a message published but not
 * confirmed when the connection is lost is published again.  At the
 * stop, the publisher has OUT_AMQP_STOP_MS to empty the spool; what is
 * left is published after the next start.
 */
#ifndef ER_OUT_AMQP_H
#define ER_OUT_AMQP_H

#include <stddef.h>

#define OUT_AMQP_QUEUE_MAX 65536	/* events between router and spool */
#define OUT_AMQP_BATCH 256		/* published, then their confirms */
#define OUT_AMQP_CONFIRM_MS 5000	/* for a batch's confirms */
#define OUT_AMQP_BACKOFF_MIN_MS 500
#define OUT_AMQP_BACKOFF_MAX_MS 30000
#define OUT_AMQP_STOP_MS 2000
#define OUT_AMQP_SPOOL_MAX 1000000	/* default "spool_max", events */
#define OUT_AMQP_NAME_MAX 256		/* AMQP short strings */
/* Its records' tag in the spool file (spool.h): this plus its index in
 * "outputs"; the MongoDB store's are 0 and 1. */
#define OUT_AMQP_COLL_BASE 8

struct cfg;
struct cfg_node;
struct cfg_plugin;
struct cfg_reader;

/*
 * An amqp output's settings ("config": event-reactor.conf(5)):
 * {"url": "amqp://guest:guest@localhost:5672/", "ca_file": ...,
 * "exchange": "event-reactor", "spool": "/var/lib/event-reactor/amqp.spool",
 * "spool_max": 1000000}.  url and ca_file are checked as the AMQPInput's
 * (amqp_link_check()); spool is made absolute when read.
 */
struct out_amqp_conf {
	char url[1024];
	char ca_file[4096];
	char exchange[OUT_AMQP_NAME_MAX];
	char spool[4096];
	long long spool_max;
};

int out_amqp_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p);
void out_amqp_free_conf(void *conf);

#endif
