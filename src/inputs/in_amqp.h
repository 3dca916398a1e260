/*
 * in_amqp: AMQPInput, a consumer of a RabbitMQ queue (rabbitmq-c; the
 * only module that includes amqp.h).  See event-reactor(7), "AMQPInput
 * messages".
 *
 * One thread: connect, declare the queue, bind it to each exchange of
 * "bindings" with the routing key, consume with basic.qos prefetch; each
 * message is unwrapped (oslo_event()), sent to the router and
 * acknowledged once the router accepted it (at-least-once into the router),
 * rejected without requeue when the router refused it or it could not be
 * unwrapped.  When the broker goes away: reconnect with exponential backoff
 * (IN_AMQP_BACKOFF_MIN_MS .. _MAX_MS), logging the outage once and the
 * recovery.  A feeder (feeder.h); its ops table is input_amqp (input.h).
 */
#ifndef ER_IN_AMQP_H
#define ER_IN_AMQP_H

#include <stddef.h>

#define IN_AMQP_BACKOFF_MIN_MS 500
#define IN_AMQP_BACKOFF_MAX_MS 30000
/* Each wait for a message is this long, so the thread notices a stop. */
#define IN_AMQP_POLL_MS 200
/* AMQP heartbeat we ask for, seconds: a silent broker is noticed. */
#define IN_AMQP_HEARTBEAT 10

/*
 * Check an AMQPInput "url" as a start would use it, without connecting
 * (config.c calls it, so --check and a start refuse the same URLs):
 * amqp_parse_url() must take it, and it must not be amqps://, hold a
 * placeholder in angle brackets (the ancestor's sample has
 * "amqp://<username>:<password>@<host>:<port>"; RFC 3986 has no raw < or
 * > in a URL), name port 0, or a host that is neither a host name nor an
 * IP address.  Returns 0, or -1 with why[whysz] saying what is wrong
 * without the URL, which may hold a password.
 */
int in_amqp_check_url(const char *url, char *why, size_t whysz);

#endif
