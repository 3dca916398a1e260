/* feeder: the inputs with threads of their own.  See feeder.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "feeder.h"
#include "util.h"

struct feeder_link {
	struct client *c;
	const atomic_int *abandon;
};

int
feeder_listen(struct input *in, int index, const char *prefix, char *err,
    size_t errsz)
{
	char uri[64];

	snprintf(uri, sizeof(uri), "inproc://feeder-%d", index);
	in->ns = in->plugin->ns;
	snprintf(in->name, sizeof(in->name), "%s:%s", prefix, in->ns);
	return input_listen(in, BUS_ROUTER, uri, err, errsz);
}

/* ---- the link ---- */

struct feeder_link *
feeder_link_new(struct bus *bus, const char *uri, const atomic_int *abandon,
    char *err, size_t errsz)
{
	struct feeder_link *l = xcalloc(1, sizeof(*l));

	if (errsz > 0)
		err[0] = '\0';
	l->abandon = abandon;
	errno = 0;
	l->c = client_new(bus, CLIENT_RELAXED, FEEDER_REPLY_TIMEOUT_MS, err,
	    errsz);
	if (l->c == NULL || client_connect(l->c, uri, err, errsz) != 0) {
		if (errno != 0 && err[0] == '\0')
			snprintf(err, errsz, "%s: %s", uri, strerror(errno));
		feeder_link_free(l);
		return NULL;
	}
	return l;
}

void
feeder_link_free(struct feeder_link *l)
{
	if (l == NULL)
		return;
	client_free(l->c);
	free(l);
}

/* What the router's reply says (client_exchange() got one). */
static void
verdict(struct feeder_link *l, struct feeder_result *res)
{
	size_t len;
	const void *reply = client_reply(l->c, &len);

	if (client_reply_id(reply, len, res->id) == 0) {
		res->verdict = FEEDER_ACCEPTED;
		res->code[0] = '\0';
	} else if (client_parse_reply(reply, len, res->code, sizeof(res->code),
	    res->message, sizeof(res->message)) == 1) {
		res->verdict = FEEDER_REFUSED;
	} else {
		snprintf(res->message, sizeof(res->message), "the router's "
		    "reply is neither an event nor an error");
	}
}

void
feeder_submit(struct feeder_link *l, const void *buf, size_t len,
    struct feeder_result *res)
{
	memset(res, 0, sizeof(*res));
	res->verdict = FEEDER_UNAVAILABLE;
	snprintf(res->code, sizeof(res->code), "unavailable");
	switch (client_exchange(l->c, buf, len, l->abandon)) {
	case CLIENT_REPLIED:
		verdict(l, res);
		break;
	case CLIENT_NOT_SENT:
		snprintf(res->message, sizeof(res->message), "cannot reach the "
		    "router: %s", strerror(errno));
		break;
	case CLIENT_ABANDONED:
		snprintf(res->message, sizeof(res->message),
		    "the router is stopping");
		break;
	case CLIENT_NO_REPLY:
		snprintf(res->message, sizeof(res->message),
		    "no reply from the router within %d ms",
		    FEEDER_REPLY_TIMEOUT_MS);
		break;
	case CLIENT_POLL_FAILED:
		snprintf(res->message, sizeof(res->message), "poll: %s",
		    strerror(errno));
		break;
	case CLIENT_RECV_FAILED:
		snprintf(res->message, sizeof(res->message), "receive: %s",
		    strerror(errno));
		break;
	}
}
