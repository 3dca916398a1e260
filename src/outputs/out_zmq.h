/*
 * out_zmq: the zeromq output, a PUB stream (event-reactor(7), "Wire
 * protocol"): its settings, and where event-sub subscribes to one.  Its
 * ops table is output_zmq (output.h).
 */
#ifndef ER_OUT_ZMQ_H
#define ER_OUT_ZMQ_H

#include <stddef.h>

#include "config.h"

/*
 * A zeromq output's settings: its "config", an endpoint section
 * (endpoint.h) and "framing": "event" (the default) or "topic"
 * (event-reactor.conf(5)).  Without "outputs", the router has two:
 * CFG_DEFAULT_PUB, one frame per event, and CFG_DEFAULT_TOPIC_PUB, topic
 * framing.  Two outputs cannot bind one endpoint (port 0 and * pick a
 * free one each).
 */
struct out_zmq_conf {
	char uri[CFG_URI_MAX];		/* bound: tcp://, ipc://, inproc:// */
	enum cfg_framing framing;
};

/*
 * Where event-sub subscribes and the framing it expects there
 * (event-reactor(7), "Wire protocol").  The URI: uri (-u) when not NULL,
 * else subscriber.uri, else the first topic-framed zeromq output of cfg,
 * else its first one, a wildcard host (*, 0.0.0.0, ::) taken as loopback.
 * The framing: subscriber.framing when given, else that of the zeromq
 * output of cfg with that endpoint (the same port, on the same host or
 * bound to all), else CFG_FRAMING_EVENT.  Returns 0 with out[outsz] and
 * *framing set, or -1 with why[whysz] when no output gives an address to
 * connect to (port 0 or *, inproc, none).
 */
int out_zmq_subscriber(const struct cfg *cfg, const char *uri, char *out,
    size_t outsz, enum cfg_framing *framing, char *why, size_t whysz);

#endif
