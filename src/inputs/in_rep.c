/*
 * in_rep: ZMQInput, a ZeroMQ REP socket (event-reactor(7), "Wire protocol"):
 * fire-event's default.  Each request is answered with the stamped event,
 * or {"error": {"code", "message"}}; one request per wake-up (REP's lock
 * step).  Its events' namespace: the feeder's "namespace".
 */
#include <stdio.h>

#include "input.h"

static int
rep_start(struct input *in, int index, char *err, size_t errsz)
{
	const struct cfg_rep *rc = &in->host.cfg->reps[index];

	in->ns = rc->ns;
	snprintf(in->name, sizeof(in->name), "rep");
	return input_listen(in, BUS_REP, rc->uri, err, errsz);
}

const struct input_ops input_rep = {
	.name = "ZMQInput",
	.ready_key = "rep",
	.batch = 1,
	.replies = 1,
	.start = rep_start,
};
