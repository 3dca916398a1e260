/*
 * in_pull: the aggregator, a ZeroMQ PULL socket (event-reactor(7), "Wire
 * protocol"): fire-event -z zmq.PUSH and any PUSH client.  Nothing is
 * answered; up to PULL_BATCH messages are taken per wake-up before the
 * other sockets are looked at.  Its events' namespace: "local".  Its
 * section: the top-level "aggregator", {"config": an endpoint section}
 * (event-reactor.conf(5)); its settings: in_zmq.h.
 */
#include "in_zmq.h"

/* Messages taken from the PULL socket before looking at the others. */
#define PULL_BATCH 256

static int
pull_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	(void)cfg;
	return in_zmq_parse(r, section, p, CFG_DEFAULT_PULL, "zmq.PULL",
	    "the PULL input (aggregator)");
}

static int
pull_start(struct input *in, int index, char *err, size_t errsz)
{
	(void)index;
	return in_zmq_start(in, BUS_PULL, "pull", err, errsz);
}

const struct input_ops input_pull = {
	.name = "aggregator",
	.own_section = 1,
	.max = 1,
	.parse = pull_parse,
	.ready_key = "pull",
	.batch = PULL_BATCH,
	.start = pull_start,
};
