/*
 * in_pull: the aggregator, a ZeroMQ PULL socket (event-reactor(7), "Wire
 * protocol"): fire-event -z zmq.PUSH and any PUSH client.  Nothing is
 * answered; up to PULL_BATCH messages are taken per wake-up before the
 * other sockets are looked at.  Its events' namespace: "local".
 */
#include <stdio.h>

#include "input.h"

/* Messages taken from the PULL socket before looking at the others. */
#define PULL_BATCH 256

static int
pull_start(struct input *in, int index, char *err, size_t errsz)
{
	(void)index;
	in->ns = "local";
	snprintf(in->name, sizeof(in->name), "pull");
	return input_listen(in, BUS_PULL, in->host.cfg->pull_uri, err, errsz);
}

const struct input_ops input_pull = {
	.name = "aggregator",
	.ready_key = "pull",
	.batch = PULL_BATCH,
	.start = pull_start,
};
