/* metrics_http: GET /metrics from the daemon's loop.  See metrics_http.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "metrics_http.h"
#include "mhd_util.h"
#include "util.h"

#define BACKLOG 128
/* The longest the timer sleeps with connections open (ms). */
#define TICK_MS 1000
#define STR_(x) #x
#define STR(x) STR_(x)
#define METRICS_HTTP_HEADER_TEXT STR(METRICS_HTTP_HEADER_S) " s"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One connection (its MHD socket context), newest first in the list. */
struct conn {
	struct conn *next, *prev;
	int fd;
	long long due;			/* util_mono_ms(); 0: headers are in */
	int shut;			/* shut down by us */
	char addr[INET6_ADDRSTRLEN];
};

struct metrics_http {
	struct metrics *m;
	struct loop *loop;
	struct MHD_Daemon *d;
	int lfd;			/* ours until MHD has it */
	int io;				/* the epoll fd's registration */
	long long timer;
	struct conn head;		/* of a circular list */
	int nconn;			/* not shut down */
	struct log_ratelimit rl;
};

/* ---- addresses ---- */

int
metrics_http_addr(const char *text, char *host, size_t hostsz, int *port,
    char *why, size_t whysz)
{
	unsigned char a[16];
	const char *colon, *h = text;
	size_t hl;
	char *end;
	long p;

	colon = strrchr(text, ':');
	if (colon == NULL)
		goto bad;
	hl = (size_t)(colon - text);
	if (text[0] == '[') {
		if (hl < 2 || text[hl - 1] != ']')
			goto bad;
		h = text + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= hostsz)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (h == text ? inet_pton(AF_INET, host, a) != 1 :
	    inet_pton(AF_INET6, host, a) != 1)
		goto bad;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 ||
	    p > 65535) {
		snprintf(why, whysz, "\"%s\": the port must be a number from 0 "
		    "to 65535", text);
		return -1;
	}
	*port = (int)p;
	return 0;
bad:
	snprintf(why, whysz, "\"%s\" is not HOST:PORT with a numeric IPv4 "
	    "address or an IPv6 one in brackets (\"127.0.0.1:9477\", "
	    "\"[::1]:9477\")", text);
	return -1;
}

int
metrics_http_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

int
metrics_http_listen(const char *text, char *err, size_t errsz)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char host[INET6_ADDRSTRLEN + 2], why[256];
	int fd, port, v6, one = 1;

	if (metrics_http_addr(text, host, sizeof(host), &port, why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "metrics: %s", why);
		return -1;
	}
	v6 = text[0] == '[';
	if (v6) {
		inet_pton(AF_INET6, host, &sin6.sin6_addr);
		sin6.sin6_port = htons((uint16_t)port);
	} else {
		inet_pton(AF_INET, host, &sin.sin_addr);
		sin.sin_port = htons((uint16_t)port);
	}
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == 0 && (!v6 || setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == 0) &&
	    (v6 ? bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) :
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin))) == 0 &&
	    listen(fd, BACKLOG) == 0)
		return fd;
	snprintf(err, errsz, "metrics: cannot listen on %s: %s", text,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* ---- connections and their deadlines ---- */

/* Close k: MHD sees it closed on its next run and tells on_conn(). */
static void
shut(struct metrics_http *h, struct conn *k, const char *why)
{
	shutdown(k->fd, SHUT_RDWR);
	k->shut = 1;
	h->nconn--;
	log_limited(&h->rl, LOG_LVL_WARNING, "metrics: connection from %s "
	    "closed: %s", k->addr, why);
}

/* Past the bound: the oldest connection still waiting for its headers
 * goes, else the newest (k). */
static void
make_room(struct metrics_http *h, struct conn *k)
{
	for (struct conn *o = h->head.prev; o != &h->head; o = o->prev)
		if (!o->shut && o->due != 0) {
			shut(h, o, "over the bound of connections, the "
			    "oldest without a complete request");
			return;
		}
	shut(h, k, "over the bound of connections");
}

static void
on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct metrics_http *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct conn *k = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL)
			return;
		k = xcalloc(1, sizeof(*k));
		k->fd = ci->connect_fd;
		k->due = util_mono_ms() + METRICS_HTTP_HEADER_S * 1000LL;
		mhd_client_addr(c, k->addr, sizeof(k->addr));
		k->next = h->head.next;
		k->prev = &h->head;
		k->next->prev = k;
		h->head.next = k;
		*socket_context = k;
		if (++h->nconn > METRICS_HTTP_MAX_CONN)
			make_room(h, k);
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && k != NULL) {
		k->prev->next = k->next;
		k->next->prev = k->prev;
		if (!k->shut)
			h->nconn--;
		free(k);
		*socket_context = NULL;
	}
}

/* c's request headers are in: no deadline any more. */
static void
headers_in(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	struct conn *k;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (k = ci->socket_context) == NULL)
		return;
	k->due = 0;
}

/* Close the connections past their deadline; the ms until the next one
 * is due (TICK_MS at most). */
static long
sweep(struct metrics_http *h)
{
	long long now = util_mono_ms(), next = now + TICK_MS;

	for (struct conn *k = h->head.next; k != &h->head; k = k->next) {
		if (k->shut || k->due == 0)
			continue;
		if (k->due <= now)
			shut(h, k, "no complete request headers within "
			    METRICS_HTTP_HEADER_TEXT);
		else if (k->due < next)
			next = k->due;
	}
	return (long)(next - now);
}

/* ---- requests ---- */

/* An error reply: text (static), with an Allow header when allow is not
 * NULL. */
static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *text,
    const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(strlen(text),
	    (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (allow != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **ctx)
{
	struct metrics_http *h = cls;
	struct MHD_Response *r;
	enum MHD_Result rc;
	size_t len;
	char *body;

	(void)version;
	(void)upload;
	if (*ctx != NULL) {		/* a body after the reply: dropped */
		*upload_size = 0;
		return MHD_YES;
	}
	*ctx = h;
	headers_in(c);
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "not found: the metrics "
		    "are at GET /metrics\n", NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not "
		    "allowed: GET /metrics\n", "GET, HEAD");
	body = metrics_render(h->m, &len);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	*ctx = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct metrics_http *h = cls;
	char buf[512];

	log_limited(&h->rl, LOG_LVL_WARNING, "metrics: libmicrohttpd: %s",
	    mhd_message(buf, sizeof(buf), fmt, ap));
}

/* ---- the loop ---- */

static long on_timer(struct loop *l, void *arg);

/* MHD's work, the deadlines, then the timer for what is due next. */
static void
run(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG t;
	long ms;

	MHD_run(h->d);
	ms = sweep(h);
	if (MHD_get_timeout(h->d, &t) == MHD_YES && t < (unsigned long long)ms)
		ms = (long)t;
	log_limited_flush(&h->rl);
	loop_del_timer(h->loop, h->timer);
	h->timer = loop_add_timer(h->loop, ms, on_timer, h);
}

static long
on_timer(struct loop *l, void *arg)
{
	struct metrics_http *h = arg;

	(void)l;
	h->timer = 0;			/* ended by returning LOOP_NOMORE */
	run(h);
	/* run() added the next one */
	return LOOP_NOMORE;
}

static void
on_epoll(struct loop *l, int mask, void *arg)
{
	(void)l;
	(void)mask;
	run(arg);
}

/* "http://HOST:PORT/metrics" of the bound fd into buf. */
static void
url_of(int fd, char *buf, size_t sz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const void *)&ss;
	const struct sockaddr_in6 *sin6 = (const void *)&ss;

	snprintf(buf, sz, "?");
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET6)
		snprintf(buf, sz, "http://[%s]:%u/metrics", inet_ntop(AF_INET6,
		    &sin6->sin6_addr, a, sizeof(a)), ntohs(sin6->sin6_port));
	else
		snprintf(buf, sz, "http://%s:%u/metrics", inet_ntop(AF_INET,
		    &sin->sin_addr, a, sizeof(a)), ntohs(sin->sin_port));
}

struct metrics_http *
metrics_http_new(struct metrics *m, struct loop *l, int fd, char *err,
    size_t errsz)
{
	struct metrics_http *h = xcalloc(1, sizeof(*h));
	const union MHD_DaemonInfo *di;
	char url[128];

	h->m = m;
	h->loop = l;
	h->io = -1;
	h->head.next = h->head.prev = &h->head;
	h->rl.interval = 10;
	h->rl.burst = 10;
	h->rl.what = "\"metrics:\" lines (connections closed, "
	    "libmicrohttpd's messages)";
	url_of(fd, url, sizeof(url));
	errno = 0;
	h->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL,
	    NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_HTTP_HARD_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_HTTP_HEADER_S,
	    MHD_OPTION_NOTIFY_CONNECTION, on_conn, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_END);
	di = h->d != NULL ? MHD_get_daemon_info(h->d,
	    MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (di == NULL) {
		snprintf(err, errsz, "metrics: cannot serve %s%s%s", url,
		    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
		if (h->d != NULL)
			MHD_stop_daemon(h->d);
		else
			close(fd);
		free(h);
		return NULL;
	}
	h->io = loop_add_fd(l, di->epoll_fd, LOOP_READ, on_epoll, h);
	h->timer = loop_add_timer(l, TICK_MS, on_timer, h);
	log_info("metrics: serving %s", url);
	return h;
}

void
metrics_http_free(struct metrics_http *h)
{
	if (h == NULL)
		return;
	loop_del(h->loop, h->io);
	loop_del_timer(h->loop, h->timer);
	MHD_stop_daemon(h->d);		/* closes the connections, the socket */
	free(h);
}
