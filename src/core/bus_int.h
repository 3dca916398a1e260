/*
 * bus_int: what bus.c and bus_curve.c share (ZeroMQ's handles behind the
 * opaque types of bus.h).  Neither includes the other's statics.
 */
#ifndef ER_BUS_INT_H
#define ER_BUS_INT_H

#include "bus.h"

struct bus {
	void *ctx;			/* zmq_ctx_new()'s */
	/* bus_secure(): "" until then */
	char secret[BUS_KEY_Z85 + 1];
	char domain[BUS_ZAP_DOMAIN_MAX + 1];
	void (*bound)(void *arg, struct bus_sock *s, const char *endpoint);
	void *bound_arg;
};

struct bus_sock {
	void *z;			/* zmq_socket()'s */
	enum bus_type type;
	struct bus *bus;		/* its context */
};

/* 1 when a bind of s to uri is to be a CURVE server (bus_secure() was
 * called and uri is not inproc://). */
int bus_curve_applies(const struct bus_sock *s, const char *uri);
/* Make s a CURVE server with its context's secret key and ZAP domain:
 * 0, or -1 with errno. */
int bus_curve_server(struct bus_sock *s);
/*
 * A PAIR socket (close with bus_close) connected to a monitor of s for
 * ZMQ_EVENT_* events (zmq_socket_monitor, at inproc://bus-NAME-ADDRESS).
 * NULL with err set.
 */
struct bus_sock *bus_monitor(struct bus *b, struct bus_sock *s,
    const char *name, int events, char *err, size_t errsz);

#endif
