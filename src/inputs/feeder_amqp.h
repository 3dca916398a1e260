/*
 * feeder_amqp: AMQPInput, a consumer of a RabbitMQ queue (rabbitmq-c; the
 * only module that includes amqp.h).  See README.rst, "AMQPInput".
 *
 * One thread: connect, declare the queue, bind it to each exchange of
 * "bindings" with the routing key, consume with basic.qos prefetch; each
 * message is unwrapped (event_from_notification()), sent to the router and
 * acknowledged once the router accepted it (at-least-once into the router),
 * rejected without requeue when the router refused it or it could not be
 * unwrapped.  When the broker goes away: reconnect with exponential backoff
 * (FEEDER_AMQP_BACKOFF_MIN_MS .. _MAX_MS), logging the outage once and the
 * recovery.  Same contract as feeder_start() (feeder.h).
 */
#ifndef ER_FEEDER_AMQP_H
#define ER_FEEDER_AMQP_H

#include <stddef.h>

#include "bus.h"
#include "config.h"

#define FEEDER_AMQP_BACKOFF_MIN_MS 500
#define FEEDER_AMQP_BACKOFF_MAX_MS 30000
/* Each wait for a message is this long, so the thread notices a stop. */
#define FEEDER_AMQP_POLL_MS 200
/* AMQP heartbeat we ask for, seconds: a silent broker is noticed. */
#define FEEDER_AMQP_HEARTBEAT 10

struct feeder_amqp;

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
int feeder_amqp_check_url(const char *url, char *why, size_t whysz);

struct feeder_amqp *feeder_amqp_start(const struct cfg_feeder *fc,
    struct bus *bus, const char *router_uri, size_t max_event_size,
    char *err, size_t errsz);
void feeder_amqp_stop(struct feeder_amqp *a);
int feeder_amqp_idle(struct feeder_amqp *a);
void feeder_amqp_free(struct feeder_amqp *a);
const char *feeder_amqp_describe(const struct feeder_amqp *a);

#endif
