/*
 * in_rep: ZMQInput, the REP side of REQ/REP (event-reactor(7), "Wire
 * protocol"): fire-event's default.  Each request is answered with the
 * stamped event once the store has it, or {"error": {"code", "message"}}.
 * The socket is a ZeroMQ ROUTER, which REQ clients cannot tell from a REP
 * (the same frames both ways), so that the requests of many clients wait
 * for the store at once instead of one after the other.  Its events'
 * namespace: the feeder's "namespace", default "local".  Its "config": an
 * endpoint section (event-reactor.conf(5)); its settings: in_zmq.h.
 */
#include "in_zmq.h"

/* ZMQInputs in one configuration at most. */
#define REP_MAX 16
/* Requests taken per wake-up before the other sockets are looked at. */
#define REP_BATCH 64

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
	return in_zmq_start(in, BUS_ROUTER, "rep", err, errsz);
}

const struct input_ops input_rep = {
	.name = "ZMQInput",
	.max = REP_MAX,
	.parse = rep_parse,
	.ready_key = "rep",
	.batch = REP_BATCH,
	.replies = 1,
	.start = rep_start,
};
