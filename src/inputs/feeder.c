/* feeder: starting feeders and their link to the router.  See
 * feeder.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeder.h"
#include "feeder_amqp.h"
#include "feeder_http.h"
#include "util.h"

/* Slice of the wait for a reply, to look at the abandon flag (ms). */
#define LINK_POLL_MS 100

struct feeder {
	enum cfg_feeder_kind kind;
	struct feeder_amqp *amqp;
	struct feeder_http *http;
};

struct feeder_link {
	struct bus_sock *sock;
	const atomic_int *abandon;
};

struct feeder *
feeder_start(const struct cfg_feeder *fc, struct bus *bus,
    const char *router_uri, size_t max_event_size, char *err, size_t errsz)
{
	struct feeder *f = xcalloc(1, sizeof(*f));
	sigset_t all, old;
	int ok;

	/* threads started from here inherit a mask with every signal
	 * blocked: SIGTERM and friends go to the main thread's poll loop */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	f->kind = fc->kind;
	if (fc->kind == FEEDER_AMQP) {
		f->amqp = feeder_amqp_start(fc, bus, router_uri, max_event_size,
		    err, errsz);
		ok = f->amqp != NULL;
	} else {
		f->http = feeder_http_start(fc, bus, router_uri, max_event_size,
		    err, errsz);
		ok = f->http != NULL;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ok) {
		free(f);
		return NULL;
	}
	return f;
}

void
feeder_stop(struct feeder *f)
{
	if (f->kind == FEEDER_AMQP)
		feeder_amqp_stop(f->amqp);
	else
		feeder_http_stop(f->http);
}

int
feeder_idle(struct feeder *f)
{
	return f->kind == FEEDER_AMQP ? feeder_amqp_idle(f->amqp) :
	    feeder_http_idle(f->http);
}

void
feeder_free(struct feeder *f)
{
	if (f == NULL)
		return;
	if (f->kind == FEEDER_AMQP)
		feeder_amqp_free(f->amqp);
	else
		feeder_http_free(f->http);
	free(f);
}

const char *
feeder_describe(const struct feeder *f)
{
	return f->kind == FEEDER_AMQP ? feeder_amqp_describe(f->amqp) :
	    feeder_http_describe(f->http);
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
