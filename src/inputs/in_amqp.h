/*
 * in_amqp: AMQPInput, a consumer of a RabbitMQ queue (rabbitmq-c; the
 * only module that includes amqp.h).  See event-reactor(7), "AMQPInput
 * messages".
 *
 * One thread: connect, declare the queue, bind it to each exchange of
 * "bindings" with the routing key, consume with basic.qos prefetch; each
 * message is unwrapped (oslo_event()), sent to the router (up to prefetch
 * of them wait for their answers at once: feeder_pipe, feeder.h) and
 * acknowledged once the router accepted it, which is once it is stored
 * (at-least-once into the store), rejected without requeue when the
 * router refused it or it could not be unwrapped, rejected with requeue
 * when the store could not write it (store_unavailable: the next message
 * is taken IN_AMQP_STORE_RETRY_MS later).  When the broker goes away: reconnect with exponential backoff
 * (IN_AMQP_BACKOFF_MIN_MS .. _MAX_MS), logging the outage once and the
 * recovery.  A feeder (feeder.h); its ops table is input_amqp (input.h).
 */
#ifndef ER_IN_AMQP_H
#define ER_IN_AMQP_H

#include <stddef.h>

#define IN_AMQP_BACKOFF_MIN_MS 500
#define IN_AMQP_BACKOFF_MAX_MS 30000
/* After a message requeued for store_unavailable: the pause, ms. */
#define IN_AMQP_STORE_RETRY_MS 500
/* Each wait for a message is this long, so the thread notices a stop. */
#define IN_AMQP_POLL_MS 200
/* AMQP heartbeat we ask for, seconds: a silent broker is noticed. */
#define IN_AMQP_HEARTBEAT 10

#define IN_AMQP_BINDINGS_MAX 16	/* exchanges one queue is bound to */
#define IN_AMQP_NAME_MAX 256	/* AMQP names: exchange, queue, routing key */

struct cfg_node;
struct cfg_plugin;
struct cfg_reader;
struct cfg;

/*
 * An AMQPInput's settings ("config": event-reactor.conf(5)).  url holds
 * the broker password: it is never logged (in_amqp logs it without the
 * password), and in_amqp_free_conf() wipes it.
 */
struct in_amqp_conf {
	char url[1024];			/* amqp://user:pass@host:port/vhost */
	char exchange_type[16];		/* direct, fanout, topic, headers */
	char routing_key[IN_AMQP_NAME_MAX];	/* "notifications.info" */
	char queue_name[IN_AMQP_NAME_MAX];	/* "event-reactor.NAMESPACE" */
	char bindings[IN_AMQP_BINDINGS_MAX][IN_AMQP_NAME_MAX];	/* exchanges */
	int nbindings;
	int durable;		/* the queue; default 1 */
	/*
	 * The exchanges of bindings are declared as their producer (OpenStack)
	 * declares them: of exchange_type, not auto-deleted, durable when this
	 * is 1.  Default 0, as oslo.messaging with its default
	 * amqp_durable_queues = False.
	 */
	int exchange_durable;
	int prefetch;		/* basic.qos prefetch_count; default 64 */
	char ca_file[4096];	/* amqps://: PEM CA certificates the broker's
				 * certificate must chain to */
};

/*
 * Its parse and free_conf (input.h; in_amqp_conf.c): {"url": ...,
 * "routing_key": ..., "exchange_type": ..., "queue_name": ...,
 * "bindings": [...], "durable": true, "exchange_durable": false,
 * "prefetch": 64, "ca_file": ...}; namespace default "openstack".  The url
 * is checked as a start would use it, without connecting, so --check and a
 * start refuse the same URLs: amqp_parse_url() must take it, amqps:// needs
 * a readable ca_file holding a PEM certificate, and it must not
 * hold the sample's CHANGE-ME or a placeholder in angle
 * brackets (the ancestor's sample has
 * "amqp://<username>:<password>@<host>:<port>"; RFC 3986 has no raw < or
 * > in a URL), name port 0, or a host that is neither a host name nor an
 * IP address.  Errors never show the URL, which may hold a password.
 */
int in_amqp_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p);
void in_amqp_free_conf(void *conf);

#endif
