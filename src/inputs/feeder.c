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

/* What the router's reply reply[len] says. */
static void
verdict(const void *reply, size_t len, struct feeder_result *res)
{
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

/* *res before anything is known: FEEDER_UNAVAILABLE, "unavailable". */
static void
undecided(struct feeder_result *res)
{
	memset(res, 0, sizeof(*res));
	res->verdict = FEEDER_UNAVAILABLE;
	snprintf(res->code, sizeof(res->code), "unavailable");
}

void
feeder_submit(struct feeder_link *l, const void *buf, size_t len,
    struct feeder_result *res)
{
	const void *reply;
	size_t rlen;

	undecided(res);
	switch (client_exchange(l->c, buf, len, l->abandon)) {
	case CLIENT_REPLIED:
		reply = client_reply(l->c, &rlen);
		verdict(reply, rlen, res);
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

/* ---- the pipe ---- */

struct in_flight {
	unsigned long long seq;		/* the request's envelope */
	unsigned long long tag;		/* the caller's */
	long long deadline;		/* util_mono_ms() */
};

struct feeder_pipe {
	struct bus_sock *sock;		/* DEALER */
	struct in_flight *fl;		/* oldest first */
	int n, max;
	unsigned long long seq;		/* the last request's */
};

struct feeder_pipe *
feeder_pipe_new(struct bus *bus, const char *uri, int max, char *err,
    size_t errsz)
{
	struct feeder_pipe *p = xcalloc(1, sizeof(*p));

	p->max = max > 0 ? max : 1;
	p->fl = xcalloc((size_t)p->max, sizeof(*p->fl));
	p->sock = bus_socket(bus, BUS_DEALER, 0, err, errsz);
	if (p->sock == NULL || bus_connect(p->sock, uri, err, errsz) != 0) {
		feeder_pipe_free(p);
		return NULL;
	}
	return p;
}

void
feeder_pipe_free(struct feeder_pipe *p)
{
	if (p == NULL)
		return;
	bus_close(p->sock);
	free(p->fl);
	free(p);
}

int
feeder_pipe_pending(const struct feeder_pipe *p)
{
	return p->n;
}

int
feeder_pipe_room(const struct feeder_pipe *p)
{
	return p->max - p->n;
}

/* A request's envelope: one frame, its sequence number's 8 bytes, never
 * used again by the pipe (a late reply matches nothing). */
static void
seq_envelope(unsigned long long seq, struct bus_envelope *env)
{
	env->len = 1 + sizeof(seq);
	env->bytes[0] = sizeof(seq);
	memcpy(env->bytes + 1, &seq, sizeof(seq));
}

int
feeder_pipe_send(struct feeder_pipe *p, unsigned long long tag,
    const void *buf, size_t len)
{
	struct bus_envelope env;

	if (p->n == p->max) {
		errno = EAGAIN;
		return -1;
	}
	seq_envelope(++p->seq, &env);
	if (bus_send_routed(p->sock, &env, buf, len) != 0)
		return -1;
	p->fl[p->n].seq = p->seq;
	p->fl[p->n].tag = tag;
	p->fl[p->n++].deadline = util_mono_ms() + FEEDER_REPLY_TIMEOUT_MS;
	return 0;
}

int
feeder_pipe_wait(struct feeder_pipe *p, int fd, long ms)
{
	struct bus_pollitem it[2] = {
		{ p->sock, -1, BUS_POLLIN, 0 }, { NULL, fd, BUS_POLLIN, 0 },
	};

	if (p->n > 0) {
		long long left = p->fl[0].deadline - util_mono_ms();
		if (left < ms)
			ms = left > 0 ? (long)left : 0;
	}
	return bus_poll(it, fd >= 0 ? 2 : 1, ms);
}

/* Take request seq out of flight, its tag into *tag: 1, or 0 when it is
 * not in flight. */
static int
land(struct feeder_pipe *p, unsigned long long seq, unsigned long long *tag)
{
	for (int i = 0; i < p->n; i++)
		if (p->fl[i].seq == seq) {
			*tag = p->fl[i].tag;
			memmove(p->fl + i, p->fl + i + 1, (size_t)(p->n - i - 1) *
			    sizeof(*p->fl));
			p->n--;
			return 1;
		}
	return 0;
}

int
feeder_pipe_take(struct feeder_pipe *p, unsigned long long *tag,
    struct feeder_result *res)
{
	struct bus_envelope env;
	struct bus_msg m;

	unsigned long long seq;

	while (bus_recv_routed(p->sock, &env, &m, 1) == 0) {
		int ours = env.len == 1 + sizeof(seq) &&
		    env.bytes[0] == sizeof(seq);
		if (ours) {
			memcpy(&seq, env.bytes + 1, sizeof(seq));
			ours = land(p, seq, tag);
		}
		if (ours) {
			undecided(res);
			verdict(m.data, m.len, res);
		}
		bus_msg_close(&m);
		if (ours)
			return 1;
	}
	if (p->n > 0 && util_mono_ms() >= p->fl[0].deadline) {
		land(p, p->fl[0].seq, tag);
		undecided(res);
		snprintf(res->message, sizeof(res->message),
		    "no reply from the router within %d ms",
		    FEEDER_REPLY_TIMEOUT_MS);
		return 1;
	}
	return 0;
}

void
feeder_pipe_forget(struct feeder_pipe *p)
{
	p->n = 0;
}
