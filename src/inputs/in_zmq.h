/*
 * in_zmq: what the ZeroMQ inputs share, the aggregator (in_pull.c) and
 * ZMQInput (in_rep.c): their settings, the endpoint each binds, read from
 * an endpoint section (endpoint.h: {"uri": ...} or {"protocol",
 * "listen_address", "port"}), and their start.
 */
#ifndef ER_IN_ZMQ_H
#define ER_IN_ZMQ_H

#include "config.h"
#include "input.h"

struct in_zmq_conf {
	char uri[CFG_URI_MAX];		/* tcp://, ipc://, inproc:// */
};

/*
 * An input's parse (struct input_ops): section into a new struct
 * in_zmq_conf at p->conf, defuri when absent; socktype the ancestor's
 * "type" ("zmq.PULL"); what names its listener in errors (cfg_listen()).
 * p->ns "" becomes "local".
 */
int in_zmq_parse(struct cfg_reader *r, const struct cfg_node *section,
    struct cfg_plugin *p, const char *defuri, const char *socktype,
    const char *what);
/* An input's start: bind a socket of type at its endpoint; in->name
 * becomes name. */
int in_zmq_start(struct input *in, enum bus_type type, const char *name,
    char *err, size_t errsz);

#endif
