/*
 * in_pull: the aggregator, a ZeroMQ PULL socket (event-reactor(7), "Wire
 * protocol"): fire-event -z zmq.PUSH and any PUSH client.  Nothing is
 * answered; up to PULL_BATCH messages are taken per wake-up before the
 * other sockets are looked at.  Its events' namespace: "local".  Its
 * section: the top-level "aggregator", {"config": an endpoint section}
 * (event-reactor.conf(5)); its settings: in_zmq.h.
 */
#include "in_zmq.h"
#include "util.h"

/* Messages taken from the PULL socket before looking at the others. */
#define PULL_BATCH 256
/*
 * At a stop, the PULL socket is still read until no message came for
 * this long (ms), within the router's INPUT_DRAIN_MS: what a sender has
 * handed to ZeroMQ sits in its queue and in ours, and closing the socket
 * would drop it (PUSH does not send it again to a new router).
 */
#define PULL_QUIET_MS 200

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

/* Stop: keep taking what the senders already handed over. */
static void
pull_stop(struct input *in)
{
	in->last_ms = util_mono_ms();
}

/* Idle once nothing came for PULL_QUIET_MS. */
static int
pull_idle(struct input *in)
{
	return util_mono_ms() - in->last_ms >= PULL_QUIET_MS;
}

const struct input_ops input_pull = {
	.name = "aggregator",
	.own_section = 1,
	.max = 1,
	.parse = pull_parse,
	.ready_key = "pull",
	.batch = PULL_BATCH,
	.start = pull_start,
	.stop = pull_stop,
	.idle = pull_idle,
};
