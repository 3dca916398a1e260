/* in_zmq: what the ZeroMQ inputs share.  See in_zmq.h. */
#include <stdio.h>

#include "endpoint.h"
#include "in_zmq.h"
#include "util.h"

int
in_zmq_parse(struct cfg_reader *r, const struct cfg_node *section,
    struct cfg_plugin *p, const char *defuri, const char *socktype,
    const char *what)
{
	struct in_zmq_conf *c = xcalloc(1, sizeof(*c));

	p->conf = c;
	if (p->ns[0] == '\0')
		snprintf(p->ns, sizeof(p->ns), "local");
	snprintf(c->uri, sizeof(c->uri), "%s", defuri);
	return endpoint_read(r, section, endpoint_keys, socktype, what,
	    c->uri, sizeof(c->uri));
}

int
in_zmq_start(struct input *in, enum bus_type type, const char *name,
    char *err, size_t errsz)
{
	const struct in_zmq_conf *c = in->plugin->conf;

	in->ns = in->plugin->ns;
	snprintf(in->name, sizeof(in->name), "%s", name);
	return input_listen(in, type, c->uri, err, errsz);
}
