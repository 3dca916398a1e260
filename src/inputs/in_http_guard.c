/* in_http_guard: the headers deadline of HTTPInput.  See in_http_guard.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "in_http_guard.h"
#include "log.h"
#include "mhd_util.h"
#include "util.h"

/* How often the thread looks for connections past their deadline (ms). */
#define SWEEP_MS 250

/* One connection (its MHD socket context). */
struct conn {
	struct conn *next, *prev;
	struct http_guard *g;
	int fd;
	long long due;			/* util_mono_ms(); 0: headers are in */
	int shut;			/* shut down by the guard */
	char addr[64];
};

struct http_guard {
	char name[160];
	long long timeout_ms;
	int per_ip;			/* max_connections_per_ip */
	struct log_ratelimit arl;	/* http_guard_accept's, under lock */
	atomic_ullong refused;
	pthread_mutex_t lock;		/* around the list, due, shut, stop */
	pthread_cond_t wake;
	struct conn head;		/* of a circular list */
	int stop;
	pthread_t thread;
	struct log_ratelimit rl;	/* the thread's */
	atomic_ullong closed;
};

/* Shut down the connections past their deadline, with g->lock held. */
static void
sweep(struct http_guard *g)
{
	long long now = util_mono_ms();

	for (struct conn *k = g->head.next; k != &g->head; k = k->next) {
		if (k->due == 0 || k->shut || now < k->due)
			continue;
		/* MHD closes fd only after its CLOSED notification, which
		 * takes the lock: fd is still this connection's */
		shutdown(k->fd, SHUT_RDWR);
		k->shut = 1;
		atomic_fetch_add(&g->closed, 1);
		log_limited(&g->rl, LOG_LVL_WARNING, "%s: connection from %s "
		    "closed: no complete request headers within %lld s",
		    g->name, k->addr, g->timeout_ms / 1000);
	}
}

static void *
run(void *arg)
{
	struct http_guard *g = arg;
	struct timespec ts;

	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		sweep(g);
		log_limited_flush(&g->rl);
		log_limited_flush(&g->arl);
		util_deadline(&ts, CLOCK_MONOTONIC, SWEEP_MS);
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct http_guard *
http_guard_new(const char *name, int header_timeout, int per_ip,
    char *err, size_t errsz)
{
	struct http_guard *g = xcalloc(1, sizeof(*g));
	pthread_condattr_t ca;
	int e;

	snprintf(g->name, sizeof(g->name), "%s", name);
	g->timeout_ms = header_timeout * 1000LL;
	g->head.next = g->head.prev = &g->head;
	g->rl.interval = 10;
	g->rl.burst = 10;
	g->rl.what = "\"connection closed: no complete request headers\" "
	    "lines";
	g->per_ip = per_ip;
	g->arl.interval = 10;
	g->arl.burst = 10;
	g->arl.what = "\"connection refused: max_connections_per_ip\" lines";
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	if ((e = pthread_create(&g->thread, NULL, run, g)) != 0) {
		snprintf(err, errsz, "%s: pthread_create: %s", name,
		    strerror(e));
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return NULL;
	}
	return g;
}

void
http_guard_free(struct http_guard *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	/* MHD_stop_daemon() closed every connection: the list is empty */
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void
http_guard_notify(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	struct http_guard *g = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *k = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL)
			return;
		k = xcalloc(1, sizeof(*k));
		k->g = g;
		k->fd = ci->connect_fd;
		mhd_client_addr(c, k->addr, sizeof(k->addr));
		pthread_mutex_lock(&g->lock);
		k->due = util_mono_ms() + g->timeout_ms;
		k->next = g->head.next;
		k->prev = &g->head;
		k->next->prev = k;
		g->head.next = k;
		pthread_mutex_unlock(&g->lock);
		*socket_context = k;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && k != NULL) {
		pthread_mutex_lock(&g->lock);
		k->prev->next = k->next;
		k->next->prev = k->prev;
		pthread_mutex_unlock(&g->lock);
		free(k);
		*socket_context = NULL;
	}
}

/* Set c's deadline: due, or 0 (none). */
static void
set_due(struct MHD_Connection *c, int from_now)
{
	const union MHD_ConnectionInfo *ci;
	struct conn *k;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (k = ci->socket_context) == NULL)
		return;
	pthread_mutex_lock(&k->g->lock);
	k->due = from_now ? util_mono_ms() + k->g->timeout_ms : 0;
	pthread_mutex_unlock(&k->g->lock);
}

void
http_guard_headers_in(struct MHD_Connection *c)
{
	set_due(c, 0);
}

void
http_guard_request_done(struct MHD_Connection *c)
{
	set_due(c, 1);
}

unsigned long long
http_guard_closed(const struct http_guard *g)
{
	return atomic_load(&g->closed);
}

/*
 * The connections from one address are counted in the list (a few dozen
 * at most: max_connections bounds it), as libmicrohttpd counts them for
 * its own limit, which closes a connection over it without a word.
 */
enum MHD_Result
http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_guard *g = cls;
	char a[64];
	int n = 0;

	(void)addrlen;
	mhd_sockaddr_str(addr, a, sizeof(a));
	pthread_mutex_lock(&g->lock);
	for (struct conn *k = g->head.next; k != &g->head; k = k->next)
		n += strcmp(k->addr, a) == 0;
	if (n >= g->per_ip) {
		/* under the lock: the thread flushes arl's summary */
		atomic_fetch_add(&g->refused, 1);
		log_limited(&g->arl, LOG_LVL_WARNING, "%s: connection from %s "
		    "refused: %d connections from it already "
		    "(max_connections_per_ip)", g->name, a, n);
	}
	pthread_mutex_unlock(&g->lock);
	return n < g->per_ip ? MHD_YES : MHD_NO;
}

unsigned long long
http_guard_refused(const struct http_guard *g)
{
	return atomic_load(&g->refused);
}
