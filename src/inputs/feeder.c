/* feeder: the inputs with threads of their own.  See feeder.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeder.h"
#include "util.h"

/* Slice of the wait for a reply, to look at the abandon flag (ms). */
#define LINK_POLL_MS 100

struct feeder_link {
	struct bus_sock *sock;
	const atomic_int *abandon;
};

int
feeder_listen(struct input *in, const struct cfg_feeder *fc, int index,
    const char *prefix, char *err, size_t errsz)
{
	char uri[64];

	snprintf(uri, sizeof(uri), "inproc://feeder-%d", index);
	in->ns = fc->ns;
	snprintf(in->name, sizeof(in->name), "%s:%s", prefix, fc->ns);
	return input_listen(in, BUS_REP, uri, err, errsz);
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
	l->sock = bus_socket(bus, BUS_REQ, 0, err, errsz);
	if (l->sock == NULL) {
		free(l);
		return NULL;
	}
	if (bus_set_req_relaxed(l->sock) != 0 ||
	    bus_set_timeouts(l->sock, FEEDER_REPLY_TIMEOUT_MS, 0) != 0 ||
	    bus_connect(l->sock, uri, err, errsz) != 0) {
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
	bus_close(l->sock);
	free(l);
}

void
feeder_submit(struct feeder_link *l, const void *buf, size_t len,
    struct feeder_result *res)
{
	struct bus_pollitem it;
	struct bus_msg m;
	long long deadline = util_mono_ms() + FEEDER_REPLY_TIMEOUT_MS;
	int rc;

	memset(res, 0, sizeof(*res));
	res->verdict = FEEDER_UNAVAILABLE;
	snprintf(res->code, sizeof(res->code), "unavailable");
	if (bus_send(l->sock, buf, len, 0, 0) != 0) {
		snprintf(res->message, sizeof(res->message), "cannot reach the "
		    "router: %s", strerror(errno));
		return;
	}
	for (;;) {
		if (atomic_load(l->abandon)) {
			snprintf(res->message, sizeof(res->message),
			    "the router is stopping");
			return;
		}
		if (util_mono_ms() >= deadline) {
			snprintf(res->message, sizeof(res->message),
			    "no reply from the router within %d ms",
			    FEEDER_REPLY_TIMEOUT_MS);
			return;
		}
		it.sock = l->sock;
		it.fd = -1;
		it.events = BUS_POLLIN;
		rc = bus_poll(&it, 1, LINK_POLL_MS);
		if (rc > 0 && (it.revents & BUS_POLLIN))
			break;
		if (rc < 0 && errno != EINTR) {
			snprintf(res->message, sizeof(res->message), "poll: %s",
			    strerror(errno));
			return;
		}
	}
	if (bus_recv(l->sock, &m, 1) != 0) {
		snprintf(res->message, sizeof(res->message), "receive: %s",
		    strerror(errno));
		return;
	}
	if (event_reply_id(m.data, m.len, res->id) == 0) {
		res->verdict = FEEDER_ACCEPTED;
		res->code[0] = '\0';
	} else if (event_parse_reply(m.data, m.len, res->code,
	    sizeof(res->code), res->message, sizeof(res->message)) == 1) {
		res->verdict = FEEDER_REFUSED;
	} else {
		snprintf(res->message, sizeof(res->message), "the router's "
		    "reply is neither an event nor an error");
	}
	bus_msg_close(&m);
}
