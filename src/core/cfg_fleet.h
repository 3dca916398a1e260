/*
 * cfg_fleet: event-sub's settings for a fleet on RabbitMQ (-u amqp://,
 * event-reactor(7), "Running a fleet"): subscriber.name, .group,
 * .exchange, .queue_type and .ca_file (config.h, struct cfg).
 */
#ifndef ER_CFG_FLEET_H
#define ER_CFG_FLEET_H

#include "config.h"

struct cfg_reader;
struct cfg_node;

/*
 * 1 when x is a name AMQP 0-9-1 takes for an exchange and we let a file
 * give: letters, digits, - _ . and :, not beginning with the reserved
 * "amq." (the amqp output's "exchange", subscriber.exchange).
 */
int cfg_amqp_name_ok(const char *x);

/*
 * The fleet's keys of the subscriber section s (the reader at it): name
 * and group (letters, digits, - _ . :, at most CFG_SUB_NAME_MAX - 1
 * bytes), exchange (cfg_amqp_name_ok()), queue_type ("quorum" or
 * "classic"), ca_file (readable, holding a PEM certificate; made
 * absolute).  Returns 0, or -1 with the reader's error at the key.
 */
int cfg_parse_sub_fleet(struct cfg_reader *r, const struct cfg_node *s,
    struct cfg *cfg);

#endif
