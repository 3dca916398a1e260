/* bus: the ZeroMQ layer.  See bus.h. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bus.h"
#include "bus_int.h"
#include "util.h"

_Static_assert(sizeof(zmq_msg_t) <= sizeof(((struct bus_msg *)0)->opaque),
    "zmq_msg_t does not fit bus_msg");

struct bus *
bus_new(void)
{
	struct bus *b = xcalloc(1, sizeof(*b));

	b->ctx = zmq_ctx_new();
	if (b->ctx == NULL) {
		free(b);
		return NULL;
	}
	/* Our own signal handling decides; don't let ZeroMQ block them. */
	zmq_ctx_set(b->ctx, ZMQ_BLOCKY, 0);
	return b;
}

void
bus_free(struct bus *b)
{
	if (b == NULL)
		return;
	while (zmq_ctx_term(b->ctx) != 0 && errno == EINTR)
		;
	free(b);
}

static int
setopt_int(void *z, int opt, int v)
{
	return zmq_setsockopt(z, opt, &v, sizeof(v));
}

struct bus_sock *
bus_socket(struct bus *b, enum bus_type type, int linger_ms, char *err,
    size_t errsz)
{
	static const int ztype[] = {
		[BUS_PULL] = ZMQ_PULL, [BUS_PUSH] = ZMQ_PUSH,
		[BUS_REP] = ZMQ_REP, [BUS_REQ] = ZMQ_REQ,
		[BUS_XPUB] = ZMQ_XPUB, [BUS_SUB] = ZMQ_SUB,
		[BUS_PAIR] = ZMQ_PAIR, [BUS_ROUTER] = ZMQ_ROUTER,
		[BUS_DEALER] = ZMQ_DEALER,
	};
	struct bus_sock *s;
	void *z = zmq_socket(b->ctx, ztype[type]);

	if (z == NULL) {
		snprintf(err, errsz, "zmq_socket: %s", zmq_strerror(errno));
		return NULL;
	}
	setopt_int(z, ZMQ_LINGER, linger_ms);
	setopt_int(z, ZMQ_SNDHWM, type == BUS_XPUB ? BUS_PUB_HWM : BUS_HWM);
	setopt_int(z, ZMQ_RCVHWM, type == BUS_SUB ? BUS_PUB_HWM : type == BUS_PULL ? BUS_PULL_HWM : BUS_HWM);
	if (type == BUS_XPUB) {
		/* pass every subscription up, so each new subscriber is seen */
		setopt_int(z, ZMQ_XPUB_VERBOSE, 1);
	}
	s = xcalloc(1, sizeof(*s));
	s->z = z;
	s->type = type;
	s->bus = b;
	if (type == BUS_XPUB)		/* its subscriptions' size (bus.h) */
		bus_set_max_frame(s, BUS_SUBSCRIPTION_FRAME);
	return s;
}

void
bus_close(struct bus_sock *s)
{
	if (s == NULL)
		return;
	zmq_close(s->z);
	free(s);
}

int
bus_bind(struct bus_sock *s, const char *uri, char *bound, size_t boundsz,
    char *err, size_t errsz)
{
	size_t sz = boundsz;
	int secure = bus_curve_applies(s, uri);

	if (secure && bus_curve_server(s) != 0) {
		snprintf(err, errsz, "%s: CURVE options: %s", uri,
		    zmq_strerror(errno));
		return -1;
	}
	if (zmq_bind(s->z, uri) != 0) {
		snprintf(err, errsz, "%s: %s", uri, zmq_strerror(errno));
		return -1;
	}
	if (bound != NULL &&
	    zmq_getsockopt(s->z, ZMQ_LAST_ENDPOINT, bound, &sz) != 0)
		snprintf(bound, boundsz, "%s", uri);
	if (secure && s->bus->bound != NULL)
		s->bus->bound(s->bus->bound_arg, s, bound != NULL ? bound : uri);
	return 0;
}

int
bus_connect(struct bus_sock *s, const char *uri, char *err, size_t errsz)
{
	if (zmq_connect(s->z, uri) != 0) {
		snprintf(err, errsz, "%s: %s", uri, zmq_strerror(errno));
		return -1;
	}
	return 0;
}

int
bus_set_timeouts(struct bus_sock *s, int send_ms, int recv_ms)
{
	if (setopt_int(s->z, ZMQ_SNDTIMEO, send_ms) != 0)
		return -1;
	return setopt_int(s->z, ZMQ_RCVTIMEO, recv_ms);
}

int
bus_set_req_relaxed(struct bus_sock *s)
{
	if (setopt_int(s->z, ZMQ_REQ_RELAXED, 1) != 0)
		return -1;
	return setopt_int(s->z, ZMQ_REQ_CORRELATE, 1);
}

int
bus_set_max_frame(struct bus_sock *s, long long bytes)
{
	int64_t v = bytes;

	return zmq_setsockopt(s->z, ZMQ_MAXMSGSIZE, &v, sizeof(v));
}

int
bus_set_immediate(struct bus_sock *s, int on)
{
	return setopt_int(s->z, ZMQ_IMMEDIATE, on);
}

int
bus_set_nodrop(struct bus_sock *s, int on)
{
	return setopt_int(s->z, ZMQ_XPUB_NODROP, on);
}

int
bus_subscribe(struct bus_sock *s, const char *prefix)
{
	return zmq_setsockopt(s->z, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
}

int
bus_stream_take(struct bus_sock *s,
    void (*changed)(void *arg, int on, const void *prefix, size_t len),
    void *arg)
{
	struct bus_msg m;
	int n = 0;

	while (bus_recv(s, &m, 1) == 0) {
		const unsigned char *d = m.data;

		n++;
		/* "\1PREFIX" subscribes, "\0PREFIX" cancels */
		if (m.len > 0 && d[0] <= 1 && m.nframes == 1)
			changed(arg, d[0], d + 1, m.len - 1);
		bus_msg_close(&m);
	}
	return n;
}

int
bus_stream_wait(struct bus_sock *s, long ms)
{
	struct pollfd pfd = { -1, POLLIN, 0 };
	size_t sz = sizeof(pfd.fd);

	if (zmq_getsockopt(s->z, ZMQ_FD, &pfd.fd, &sz) != 0)
		return -1;
	return poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
}

enum bus_stream_msg
bus_stream_what(const struct bus_msg m[2], const void **body, size_t *len)
{
	if (m[0].nframes > 2)
		return BUS_STREAM_BAD;
	if (m[0].nframes == 2) {
		if (m[0].len == 0)
			return BUS_STREAM_CONTROL;
		*body = m[1].data;
		*len = m[1].len;
		return BUS_STREAM_EVENT;
	}
	*body = m[0].data;
	*len = m[0].len;
	return BUS_STREAM_EVENT;
}

struct bus_sock *
bus_monitor(struct bus *b, struct bus_sock *s, const char *name, int events,
    char *err, size_t errsz)
{
	char uri[64];
	struct bus_sock *w;

	snprintf(uri, sizeof(uri), "inproc://bus-%s-%p", name, (void *)s);
	if (zmq_socket_monitor(s->z, uri, events) != 0) {
		snprintf(err, errsz, "zmq_socket_monitor: %s",
		    zmq_strerror(errno));
		return NULL;
	}
	if ((w = bus_socket(b, BUS_PAIR, 0, err, errsz)) == NULL)
		return NULL;
	if (bus_connect(w, uri, err, errsz) != 0) {
		bus_close(w);
		return NULL;
	}
	return w;
}

struct bus_sock *
bus_watch(struct bus *b, struct bus_sock *s, char *err, size_t errsz)
{
	return bus_monitor(b, s, "watch", ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, err, errsz);
}

/* A failed handshake as the connecting side sees it (ev, value: the
 * monitor's event and value). */
static const char *
client_failure(uint16_t ev, uint32_t value)
{
	if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		return "the router refused our key (not in its clients_dir, or "
		    "our address not in its client_addresses)";
	if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
		return "the peer closed the connection during the handshake "
		    "(CURVE on one side only, or another server key?)";
	switch (value) {
	case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
		return "the peer's security mechanism is not ours (CURVE on "
		    "one side only?)";
	case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
	case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
		return "the CURVE handshake failed (a peer without the secret "
		    "of our server key?)";
	default:
		return "protocol error";
	}
}

int
bus_watch_read(struct bus_sock *w, char *failed, size_t failsz)
{
	struct bus_msg m;
	int n = 0;

	if (failsz > 0)
		failed[0] = '\0';
	/* each event: 6 bytes (event number, value), then the endpoint */
	while (bus_recv(w, &m, 1) == 0) {
		uint16_t ev;
		uint32_t value = 0;

		if (m.len >= sizeof(ev) + sizeof(value)) {
			memcpy(&ev, m.data, sizeof(ev));
			memcpy(&value, (const char *)m.data + sizeof(ev),
			    sizeof(value));
			if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
				n++;
			else if (failsz > 0)
				snprintf(failed, failsz, "%s",
				    client_failure(ev, value));
		}
		bus_msg_close(&m);
	}
	return errno == EAGAIN ? n : -1;
}

void
bus_unwatch(struct bus_sock *s, struct bus_sock *w)
{
	if (w == NULL)
		return;
	zmq_socket_monitor(s->z, NULL, 0);
	bus_close(w);
}

/* Receive the rest of a multi-frame message, discarding it. */
static void
drain_more(void *z, struct bus_msg *m)
{
	zmq_msg_t extra;
	int more;
	size_t sz = sizeof(more);

	for (;;) {
		if (zmq_getsockopt(z, ZMQ_RCVMORE, &more, &sz) != 0 || !more)
			return;
		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, z, 0) < 0) {
			zmq_msg_close(&extra);
			return;
		}
		m->nframes++;
		m->total += zmq_msg_size(&extra);
		zmq_msg_close(&extra);
	}
}

static int
recv_frame(void *z, struct bus_msg *m, int flags)
{
	zmq_msg_t *zm = (zmq_msg_t *)(void *)m->opaque;

	zmq_msg_init(zm);
	if (zmq_msg_recv(zm, z, flags) < 0) {
		int e = errno;
		zmq_msg_close(zm);
		errno = e;
		return -1;
	}
	m->data = zmq_msg_data(zm);
	m->len = zmq_msg_size(zm);
	m->nframes = 1;
	m->total = m->len;
	return 0;
}

int
bus_recv(struct bus_sock *s, struct bus_msg *m, int dontwait)
{
	if (recv_frame(s->z, m, dontwait ? ZMQ_DONTWAIT : 0) != 0)
		return -1;
	drain_more(s->z, m);
	return 0;
}

int
bus_recv2(struct bus_sock *s, struct bus_msg m[2], int dontwait)
{
	int more;
	size_t sz = sizeof(more);

	if (recv_frame(s->z, &m[0], dontwait ? ZMQ_DONTWAIT : 0) != 0)
		return -1;
	zmq_msg_init((zmq_msg_t *)(void *)m[1].opaque);
	m[1].data = NULL;
	m[1].len = 0;
	m[1].nframes = 0;
	m[1].total = 0;
	if (zmq_getsockopt(s->z, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
		zmq_msg_close((zmq_msg_t *)(void *)m[1].opaque);
		if (recv_frame(s->z, &m[1], 0) != 0) {
			zmq_msg_init((zmq_msg_t *)(void *)m[1].opaque);
			return 0;
		}
		m[0].nframes++;
		m[0].total += m[1].len;
		drain_more(s->z, &m[0]);
	}
	return 0;
}

/* The address ZeroMQ gives for the sender of the frame f (TCP: its IP
 * address), or "" into peer[peersz]. */
static void
frame_peer(struct bus_msg *f, char *peer, size_t peersz)
{
	const char *a;

	if (peer == NULL || peersz == 0)
		return;
	/* zmq_msg_gets(3)'s name; zmq.h has it only in the draft API */
	a = zmq_msg_gets((zmq_msg_t *)(void *)f->opaque, "Peer-Address");
	snprintf(peer, peersz, "%s", a != NULL ? a : "");
}

/*
 * Read the envelope of the message now arriving on z into env, up to and
 * including its empty delimiter.  Returns 1 when it is read, 0 when the
 * message is to be dropped (its rest is read; peer: its sender's
 * address), -1 with errno.
 */
static int
recv_envelope(void *z, struct bus_envelope *env, int flags, char *peer,
    size_t peersz)
{
	struct bus_msg f;
	int ok = 1;

	env->len = 0;
	for (;;) {
		int more;
		size_t sz = sizeof(more);

		if (recv_frame(z, &f, flags) != 0)
			return -1;
		flags = 0;	/* the rest of a message is there */
		if (zmq_getsockopt(z, ZMQ_RCVMORE, &more, &sz) != 0)
			more = 0;
		if (f.len == 0 || !more) {
			/* a delimiter then a request, or a message that has
			 * no delimiter or nothing after it */
			int delim = f.len == 0 && more;
			if (!delim || !ok)
				frame_peer(&f, peer, peersz);
			bus_msg_close(&f);
			if (delim && !ok)	/* the request too */
				drain_more(z, &f);
			return delim ? ok : 0;
		}
		if (f.len > 255 || env->len + 1 + f.len > BUS_ENVELOPE_MAX)
			ok = 0;
		else {
			env->bytes[env->len++] = (unsigned char)f.len;
			memcpy(env->bytes + env->len, f.data, f.len);
			env->len += f.len;
		}
		bus_msg_close(&f);
	}
}

int
bus_recv_request(struct bus_sock *s, struct bus_envelope *env,
    struct bus_msg *m, int dontwait, char *peer, size_t peersz)
{
	int rc = recv_envelope(s->z, env, dontwait ? ZMQ_DONTWAIT : 0, peer,
	    peersz);

	if (rc <= 0)
		return rc < 0 ? -1 : 1;
	if (recv_frame(s->z, m, 0) != 0)
		return -1;
	drain_more(s->z, m);
	return 0;
}

int
bus_recv_routed(struct bus_sock *s, struct bus_envelope *env,
    struct bus_msg *m, int dontwait)
{
	int rc;

	while ((rc = bus_recv_request(s, env, m, dontwait, NULL, 0)) == 1)
		;
	return rc;
}

int
bus_send_routed(struct bus_sock *s, const struct bus_envelope *env,
    const void *data, size_t len)
{
	size_t off = 0;

	while (off < env->len) {
		size_t n = env->bytes[off++];
		if (zmq_send(s->z, env->bytes + off, n, ZMQ_SNDMORE |
		    ZMQ_DONTWAIT) < 0)
			return -1;
		off += n;
	}
	if (zmq_send(s->z, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -1;
	return zmq_send(s->z, data, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

void
bus_msg_close(struct bus_msg *m)
{
	zmq_msg_close((zmq_msg_t *)(void *)m->opaque);
	m->data = NULL;
	m->len = 0;
}

int
bus_send(struct bus_sock *s, const void *data, size_t len, int more,
    int dontwait)
{
	int flags = (more ? ZMQ_SNDMORE : 0) | (dontwait ? ZMQ_DONTWAIT : 0);

	return zmq_send(s->z, data, len, flags) < 0 ? -1 : 0;
}

int
bus_send_nocopy(struct bus_sock *s, const void *data, size_t len, int more,
    int dontwait, void (*release)(void *data, void *hint), void *hint)
{
	int flags = (more ? ZMQ_SNDMORE : 0) | (dontwait ? ZMQ_DONTWAIT : 0);
	zmq_msg_t m;

	/* zmq_msg_init_data takes void *: ZeroMQ only reads a frame sent */
	if (zmq_msg_init_data(&m, (void *)(uintptr_t)data, len, release,
	    hint) != 0) {
		release((void *)(uintptr_t)data, hint);
		return -1;
	}
	if (zmq_msg_send(&m, s->z, flags) < 0) {
		int e = errno;
		zmq_msg_close(&m);	/* calls release */
		errno = e;
		return -1;
	}
	return 0;
}

int
bus_poll(struct bus_pollitem *items, int n, long timeout_ms)
{
	zmq_pollitem_t stack[64], *zi = stack;
	int i, rc;

	if (n > 64)
		zi = xcalloc((size_t)n, sizeof(*zi));
	for (i = 0; i < n; i++) {
		zi[i].socket = items[i].sock != NULL ? items[i].sock->z : NULL;
		zi[i].fd = items[i].fd;
		zi[i].events = (short)(((items[i].events & BUS_POLLIN) ? ZMQ_POLLIN : 0) |
		    ((items[i].events & BUS_POLLOUT) ? ZMQ_POLLOUT : 0));
		zi[i].revents = 0;
	}
	rc = zmq_poll(zi, n, timeout_ms);
	for (i = 0; i < n; i++)
		items[i].revents = (short)(((zi[i].revents & ZMQ_POLLIN) ? BUS_POLLIN : 0) |
		    ((zi[i].revents & (ZMQ_POLLOUT | ZMQ_POLLERR)) ? BUS_POLLOUT : 0) |
		    ((zi[i].revents & ZMQ_POLLERR) ? BUS_POLLIN : 0));
	if (zi != stack)
		free(zi);
	return rc;
}

const char *
bus_version(void)
{
	static char v[32];
	int a, b, c;

	zmq_version(&a, &b, &c);
	snprintf(v, sizeof(v), "%d.%d.%d", a, b, c);
	return v;
}

