/*
 * in_pull: the aggregator, a ZeroMQ PULL socket (event-reactor(7), "Wire
 * protocol"): fire-event -z zmq.PUSH and any PUSH client.  Nothing is
 * answered; up to PULL_BATCH messages are taken per wake-up before the
 * other sockets are looked at.  Its events' namespace: "local".  Its
 * section: the top-level "aggregator", {"config": an endpoint section}
 * (event-reactor.conf(5)); its settings: in_zmq.h.
 */
#include <stdlib.h>

#include "in_zmq.h"
#include "util.h"

/* Messages taken from the PULL socket before looking at the others. */
#define PULL_BATCH 256
/*
 * At a stop, the PULL socket is still read until it holds no message and
 * none came for PULL_QUIET_MS, for at most PULL_DRAIN_MS.  PUSH has no
 * acknowledgement: what a sender has handed to ZeroMQ sits in its queue,
 * on the TCP connection and in ours, and closing the socket drops what
 * already left the sender's queue (PUSH keeps only what is still in its
 * queue for the next router).  So a stop waits for the senders to pause.
 * PULL_DRAIN_MS bounds a sender that never does: long enough to take, even
 * on a slow machine, what the connections held at the stop (BUS_PULL_HWM
 * messages in ZeroMQ's queue and the kernel's socket buffers), short of
 * systemd's default stop timeout (90 s) with the store still to flush.
 */
#define PULL_QUIET_MS 200
#define PULL_QUIET_CHECKS 4
#define PULL_DRAIN_MS 30000
#define STR(x) #x
#define XSTR(x) STR(x)

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

/* At a stop, how many checks in a row found the socket empty (ctx). */
struct pull_drain {
	int empty;
};

/* Stop: keep taking what the senders already handed over. */
static void
pull_stop(struct input *in)
{
	in->ctx = xcalloc(1, sizeof(struct pull_drain));
	in->last_ms = util_mono_ms();
}

/*
 * Idle once the socket holds no message, none came for PULL_QUIET_MS and
 * PULL_QUIET_CHECKS checks in a row (one per turn of the loop, which waits
 * up to a tick between them) found it empty: a router the machine held
 * still for a while (a loaded machine, SIGSTOP) has not read what its
 * ZeroMQ thread had not received yet either, and the time alone would
 * take that for a pause of the senders.
 */
static int
pull_idle(struct input *in)
{
	struct bus_pollitem it = { in->sock, -1, BUS_POLLIN, 0 };
	struct pull_drain *d = in->ctx;

	if (bus_poll(&it, 1, 0) != 0) {
		d->empty = 0;
		return 0;
	}
	if (d->empty < PULL_QUIET_CHECKS)
		d->empty++;
	return d->empty >= PULL_QUIET_CHECKS &&
	    util_mono_ms() - in->last_ms >= PULL_QUIET_MS;
}

static void
pull_free(struct input *in)
{
	free(in->ctx);
	in->ctx = NULL;
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
	.free = pull_free,
	.drain_ms = PULL_DRAIN_MS,
	.busy = "a sender still pushing: what left its queue and is not read "
	    "yet is lost, at most " XSTR(BUS_PULL_HWM) " messages queued in ZeroMQ "
	    "and what the kernel's socket buffers hold",
};
