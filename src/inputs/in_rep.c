/*
 * in_rep: ZMQInput, a ZeroMQ REP socket (event-reactor(7), "Wire protocol"):
 * fire-event's default.  Each request is answered with the stamped event,
 * or {"error": {"code", "message"}}; one request per wake-up (REP's lock
 * step).  Its events' namespace: the feeder's "namespace", default
 * "local".  Its "config": an endpoint section (event-reactor.conf(5));
 * its settings: in_zmq.h.
 */
#include "in_zmq.h"

/* ZMQInputs in one configuration at most. */
#define REP_MAX 16

static int
rep_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	(void)cfg;
	return in_zmq_parse(r, section, p, CFG_DEFAULT_REP, "zmq.REP",
	    "a REP input (ZMQInput)");
}

static int
rep_start(struct input *in, int index, char *err, size_t errsz)
{
	(void)index;
	return in_zmq_start(in, BUS_REP, "rep", err, errsz);
}

const struct input_ops input_rep = {
	.name = "ZMQInput",
	.max = REP_MAX,
	.parse = rep_parse,
	.ready_key = "rep",
	.batch = 1,
	.replies = 1,
	.start = rep_start,
};
