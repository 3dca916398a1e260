/* in_http: HTTPInput.  See in_http.h. */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "client.h"
#include "event.h"
#include "feeder.h"
#include "in_http.h"
#include "in_http_auth.h"
#include "in_http_frame.h"
#include "in_http_guard.h"
#include "input.h"
#include "log.h"
#include "mhd_util.h"
#include "util.h"

/* One request, from its headers to its reply (MHD's *con_cls). */
struct request {
	enum in_http_route route;
	char type[IN_HTTP_TYPE_SIZE];	/* event_type for IN_HTTP_HOOKS */
	int check_signature;		/* HMAC to verify once the body is in */
	unsigned char signature[HTTP_AUTH_LEN];
	char *body;
	size_t len, cap;
	size_t seen;			/* body bytes so far, kept or dropped */
	int discard;			/* over the limit: read and dropped */
	long long deadline;		/* util_mono_ms() the body is in by */
	int replied;
	int gave_up;			/* give_up() said so */
	int close;			/* the reply closes the connection */
};

struct in_http {
	struct in_http_conf conf;
	size_t max;			/* body bytes, limits.max_event_size */
	int lfd;			/* bound by start; MHD's from run */
	struct MHD_Daemon *d;
	struct feeder_link *link;
	struct http_guard *guard;	/* the headers deadline */
	pthread_mutex_t lock;		/* around link */
	atomic_int stopping, abandon, in_flight;
	unsigned char token_digest[HTTP_AUTH_LEN];
	char name[160];			/* "http:NAMESPACE", for logs */
	char describe[192];
	struct log_ratelimit rl;	/* MHD thread only */
	atomic_int gave_up;		/* see give_up() */
	atomic_ullong accepted, refused, unanswered;
	struct input *in;		/* whose refusals it counts */
};

/* ---- replies ---- */

/* Queue a JSON reply, with one more header when hdr is not NULL. */
static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *body,
    size_t len, const char *hdr, const char *value)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json");
	if (hdr != NULL)
		MHD_add_response_header(r, hdr, value);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/*
 * Answer a request with an error, logged (rate-limited) as "request WHAT
 * on ...": refused by the input (refuse() below), or unanswered by the
 * router in time.
 */
static enum MHD_Result
answer_error(struct in_http *h, struct MHD_Connection *c, struct request *rq,
    const char *what, unsigned int status, const char *code,
    const char *message)
{
	const char *hdr = NULL, *value = NULL;
	char addr[INET6_ADDRSTRLEN];
	enum MHD_Result rc;
	size_t len;
	char *body;

	log_limited(&h->rl, LOG_LVL_WARNING, "request %s on %s from %s: "
	    "%u %s: %s", what, h->name, mhd_client_addr(c, addr, sizeof(addr)),
	    status, code, message);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
		hdr = MHD_HTTP_HEADER_ALLOW;
		value = "POST";
	} else if (status == MHD_HTTP_UNAUTHORIZED) {
		hdr = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
		value = h->conf.token[0] != '\0' ? "Bearer" :
		    "HMAC-SHA256 X-Hub-Signature-256";
	} else if (status == MHD_HTTP_CONTENT_TOO_LARGE ||
	    (rq != NULL && rq->close)) {
		/* the connection is not kept for another request */
		hdr = MHD_HTTP_HEADER_CONNECTION;
		value = "close";
	}
	body = event_error_json(code, message, &len);
	rc = reply(c, status, body, len, hdr, value);
	free(body);
	if (rq != NULL)
		rq->replied = 1;
	return rc;
}

/* A request the input refuses itself (refuse(), give_up()): counted in
 * its stop line and among the router's rejections (input_refused()). */
static void
count_refusal(struct in_http *h, const char *code)
{
	atomic_fetch_add(&h->refused, 1);
	input_refused(h->in, code);
}

/* Refuse a request: counted, logged, answered. */
static enum MHD_Result
refuse(struct in_http *h, struct MHD_Connection *c, struct request *rq,
    unsigned int status, const char *code, const char *message)
{
	count_refusal(h, code);
	return answer_error(h, c, rq, "refused", status, code, message);
}

/* ---- authentication ---- */

/* in_http_check_auth() on c's headers; a signature goes to rq. */
static enum in_http_auth
check_headers(struct in_http *h, struct MHD_Connection *c,
    struct request *rq, const char **why)
{
	enum in_http_auth rc;

	rc = in_http_check_auth(&h->conf, h->token_digest,
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION),
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-Hub-Signature-256"), rq->signature, why);
	rq->check_signature = rc == IN_HTTP_AUTH_SIGNATURE;
	return rc;
}

/* ---- routing (in_http_route(): in_http_frame.c) ---- */

/* Route the URL; 0, or -1 after replying 400 or 404. */
static int
route(struct in_http *h, struct MHD_Connection *c, struct request *rq,
    const char *url)
{
	struct in_http_refusal no;

	rq->route = in_http_route(url, MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, "X-GitHub-Event"), rq->type, &no);
	if (rq->route != IN_HTTP_REFUSED)
		return 0;
	refuse(h, c, rq, no.status, no.code, no.message);
	return -1;
}

/* ---- the request handler (MHD's polling thread) ---- */

static enum MHD_Result
submit(struct in_http *h, struct MHD_Connection *c, struct request *rq)
{
	struct feeder_result res;
	struct event_error err;
	const char *buf = rq->body != NULL ? rq->body : "";
	char *built = NULL, body[64];
	size_t len = rq->len;
	enum MHD_Result rc;

	if (rq->route == IN_HTTP_HOOKS) {
		built = client_request(rq->type, NULL, buf, len, &len, &err);
		if (built == NULL)
			return refuse(h, c, rq, MHD_HTTP_BAD_REQUEST,
			    event_err_code(err.code), err.message);
		buf = built;
	}
	atomic_fetch_add(&h->in_flight, 1);
	pthread_mutex_lock(&h->lock);
	feeder_submit(h->link, buf, len, &res);
	pthread_mutex_unlock(&h->lock);
	atomic_fetch_sub(&h->in_flight, 1);
	free(built);
	rq->replied = 1;
	switch (res.verdict) {
	case FEEDER_ACCEPTED:
		atomic_fetch_add(&h->accepted, 1);
		len = (size_t)snprintf(body, sizeof(body), "{\"id\":\"%s\"}",
		    res.id);
		return reply(c, MHD_HTTP_ACCEPTED, body, len, NULL, NULL);
	case FEEDER_REFUSED:
		/* the router logged and counted it already */
		atomic_fetch_add(&h->refused, 1);
		built = event_error_json(res.code, res.message, &len);
		if (strcmp(res.code, "store_unavailable") == 0)
			rc = reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, built, len,
			    MHD_HTTP_HEADER_RETRY_AFTER, IN_HTTP_RETRY_AFTER);
		else
			rc = reply(c, strcmp(res.code, "too_large") == 0 ?
			    MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST,
			    built, len, NULL, NULL);
		free(built);
		return rc;
	default:
		/* no answer (in time): the router may take the event still
		 * (and count it), so it is no refusal of ours */
		atomic_fetch_add(&h->unanswered, 1);
		return answer_error(h, c, rq, "unanswered",
		    MHD_HTTP_SERVICE_UNAVAILABLE, res.code, res.message);
	}
}

/* 1 when the client waits for "100 Continue" before it sends the body. */
static int
expects_continue(struct MHD_Connection *c)
{
	const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_EXPECT);

	return e != NULL && strcasecmp(e, "100-continue") == 0;
}


/*
 * The body is over the limit: from now on it is read and dropped, and
 * refused with 413 once it is all in (see IN_HTTP_DISCARD_MAX).
 */
static void
start_discard(struct request *rq)
{
	rq->discard = 1;		/* its deadline stays that of on_headers */
	free(rq->body);
	rq->body = NULL;
	rq->len = rq->cap = 0;
}

/*
 * A body went past a bound (IN_HTTP_DISCARD_MAX, its deadline): MHD can
 * queue a reply only before the body or after all of it, so the
 * connection is closed without one.  Logged with the status that would
 * have answered (413 too_large, or 408 request_timeout) and why, and
 * counted.
 */
static enum MHD_Result
give_up(struct in_http *h, struct MHD_Connection *c, struct request *rq,
    unsigned int status, const char *why)
{
	const char *code = status == MHD_HTTP_CONTENT_TOO_LARGE ?
	    "too_large" : "request_timeout";
	char addr[INET6_ADDRSTRLEN];

	count_refusal(h, code);
	log_limited(&h->rl, LOG_LVL_WARNING, "request refused on %s from %s: "
	    "%u %s: %s: connection closed without a reply", h->name,
	    mhd_client_addr(c, addr, sizeof(addr)), status, code, why);
	rq->gave_up = 1;
	/* MHD says "Application reported internal error" next: not news */
	atomic_store(&h->gave_up, 1);
	return MHD_NO;
}

/* The first call of a request: its headers are in, its body is not. */
static enum MHD_Result
on_headers(struct in_http *h, struct MHD_Connection *c, struct request *rq,
    const char *url, const char *method, const char *version)
{
	const char *why = NULL, *cl;
	unsigned long long n;
	unsigned int st;
	char msg[160];

	/* the body comes within timeout s (a trickle is never idle) */
	rq->deadline = util_mono_ms() + 1000LL * h->conf.timeout;
	if ((why = http_frame_check(c, version, &st)) != NULL) {
		rq->close = 1;
		return refuse(h, c, rq, st, st == MHD_HTTP_NOT_IMPLEMENTED ?
		    "not_implemented" : "bad_request", why);
	}
	if (route(h, c, rq, url) != 0)
		return MHD_YES;
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
		snprintf(msg, sizeof(msg), "method %.32s is not allowed here: "
		    "use POST", method);
		return refuse(h, c, rq, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method_not_allowed", msg);
	}
	if (atomic_load(&h->stopping))
		return refuse(h, c, rq, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "unavailable", "the router is stopping");
	if (check_headers(h, c, rq, &why) == IN_HTTP_AUTH_FAIL)
		return refuse(h, c, rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		    why);
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && (n = strtoull(cl, NULL, 10)) > h->max) {
		/*
		 * A client that waits for "100 Continue" reads this reply at
		 * once.  One that writes its whole body before it reads
		 * (urllib, most scripts) would find the connection reset
		 * under it: its body is read and dropped first, unless it is
		 * too large for that.
		 */
		if (!expects_continue(c) && n - h->max <= IN_HTTP_DISCARD_MAX) {
			start_discard(rq);
			return MHD_YES;
		}
		snprintf(msg, sizeof(msg), "the body is %llu bytes, over the "
		    "limit of %zu bytes (limits.max_event_size)", n, h->max);
		return refuse(h, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
		    msg);
	}
	return MHD_YES;
}

/* got more bytes of the body at upload: kept, or dropped when over. */
static enum MHD_Result
on_body(struct in_http *h, struct MHD_Connection *c, struct request *rq,
    const char *upload, size_t got)
{
	char msg[160];

	rq->seen += got;
	/* a chunked body (no Content-Length) grows past the limit */
	if (!rq->discard && rq->seen > h->max)
		start_discard(rq);
	if (rq->discard) {
		if (rq->seen > h->max + IN_HTTP_DISCARD_MAX) {
			snprintf(msg, sizeof(msg), "the body is more than %d MiB "
			    "over the limit of %zu bytes (limits.max_event_size)",
			    IN_HTTP_DISCARD_MAX >> 20, h->max);
			return give_up(h, c, rq, MHD_HTTP_CONTENT_TOO_LARGE,
			    msg);
		}
		if (util_mono_ms() > rq->deadline) {
			snprintf(msg, sizeof(msg), "the body over the limit of %zu "
			    "bytes (limits.max_event_size) was not in within %d "
			    "s (timeout)", h->max, h->conf.timeout);
			return give_up(h, c, rq, MHD_HTTP_CONTENT_TOO_LARGE,
			    msg);
		}
		return MHD_YES;
	}
	if (util_mono_ms() > rq->deadline) {	/* trickled: slowloris */
		snprintf(msg, sizeof(msg), "the body was not in within %d s of "
		    "the headers (timeout)", h->conf.timeout);
		return give_up(h, c, rq, MHD_HTTP_REQUEST_TIMEOUT, msg);
	}
	if (rq->len + got > rq->cap) {
		rq->cap = rq->len + got + 4096;
		if (rq->cap > h->max)
			rq->cap = h->max;
		rq->body = xrealloc(rq->body, rq->cap);
	}
	memcpy(rq->body + rq->len, upload, got);
	rq->len += got;
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **ctx)
{
	struct in_http *h = cls;
	struct request *rq = *ctx;
	char msg[160];

	if (rq == NULL) {
		http_guard_headers_in(c);
		rq = xcalloc(1, sizeof(*rq));
		*ctx = rq;
		return on_headers(h, c, rq, url, method, version);
	}
	if (rq->replied) {
		/* replied early: discard whatever body still comes */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		size_t got = *upload_size;

		*upload_size = 0;
		return on_body(h, c, rq, upload, got);
	}
	/* the whole body is in */
	if (rq->discard) {
		snprintf(msg, sizeof(msg), "the body is %zu bytes, over the limit "
		    "of %zu bytes (limits.max_event_size)", rq->seen, h->max);
		return refuse(h, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
		    msg);
	}
	if (rq->check_signature && !http_auth_signature_ok(h->conf.secret,
	    rq->body, rq->len, rq->signature))
		return refuse(h, c, rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		    "X-Hub-Signature-256 does not match the body (HMAC-SHA256 "
		    "with this input's secret)");
	return submit(h, c, rq);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	struct in_http *h = cls;
	struct request *rq = *ctx;

	http_guard_request_done(c);
	if (rq == NULL)
		return;
	/* a body that stopped coming: MHD's idle timeout closed the
	 * connection before on_body() saw a deadline pass */
	if (!rq->replied && !rq->gave_up &&
	    toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) {
		char msg[160];

		if (rq->discard)
			snprintf(msg, sizeof(msg), "the rest of the body over "
			    "the limit of %zu bytes (limits.max_event_size) did "
			    "not come within %d s (timeout)", h->max,
			    h->conf.timeout);
		else
			snprintf(msg, sizeof(msg), "the rest of the body did not "
			    "come within %d s (timeout)", h->conf.timeout);
		(void)give_up(h, c, rq, rq->discard ?
		    MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_REQUEST_TIMEOUT, msg);
		atomic_store(&h->gave_up, 0);	/* no MHD line follows */
	}
	free(rq->body);
	free(rq);
	*ctx = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct in_http *h = cls;
	char buf[512];

	mhd_message(buf, sizeof(buf), fmt, ap);
	if (strstr(buf, "Application reported internal error") != NULL &&
	    atomic_exchange(&h->gave_up, 0)) {
		log_debug("%s: libmicrohttpd: %s", h->name, buf);
		return;
	}
	log_limited(&h->rl, LOG_LVL_WARNING, "%s: libmicrohttpd: %s", h->name,
	    buf);
}

/* ---- start and stop ---- */

/* Bind the listening socket here, before the router takes "user": a
 * port under 1024 needs root (or CAP_NET_BIND_SERVICE). */
static int
http_start(struct input *in, int index, char *err, size_t errsz)
{
	struct in_http *h;

	if (feeder_listen(in, index, "http", err, errsz) != 0)
		return -1;
	h = xcalloc(1, sizeof(*h));
	h->conf = *(const struct in_http_conf *)in->plugin->conf;
	in->ctx = h;
	h->in = in;
	h->lfd = in_http_listen(&h->conf, in->ns, err, errsz);
	return h->lfd < 0 ? -1 : 0;
}

/* h's address into h->describe ("http=http[s]://ADDRESS:PORT") and the
 * log, once its daemon is listening. */
static void
announce(struct in_http *h, int v6)
{
	const struct in_http_conf *ch = &h->conf;
	const union MHD_DaemonInfo *di;

	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(h->describe, sizeof(h->describe), "http=%s://%s%s%s:%u",
	    ch->cert_pem != NULL ? "https" : "http", v6 ? "[" : "",
	    ch->listen_address, v6 ? "]" : "",
	    di != NULL ? (unsigned)di->port : (unsigned)ch->port);
	log_info("%s: listening on %s (auth: %s%s%s)", h->name,
	    h->describe + 5, ch->token[0] != '\0' ? "bearer token" : "",
	    ch->token[0] != '\0' && ch->secret[0] != '\0' ? " or " : "",
	    ch->secret[0] != '\0' ? "HMAC-SHA256 signature" :
	    ch->token[0] != '\0' ? "" : ch->allow_anonymous ? "anonymous" :
	    "none configured: every request refused");
}

static int
http_run(struct input *in, int index, char *err, size_t errsz)
{
	struct in_http *h = in->ctx;
	const struct in_http_conf *ch = &h->conf;
	struct sockaddr_storage ss;
	struct MHD_OptionItem tls[3] = { { MHD_OPTION_END, 0, NULL } };
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
	    MHD_USE_ERROR_LOG;
	int v6 = 0;

	(void)index;
	h->max = in->host.cfg->max_event_size;
	h->rl.interval = 10;
	h->rl.burst = 10;
	h->rl.what = "HTTPInput lines (requests refused, libmicrohttpd's "
	    "messages)";
	pthread_mutex_init(&h->lock, NULL);
	snprintf(h->name, sizeof(h->name), "http:%s", in->ns);
	if (ch->token[0] != '\0')
		http_auth_digest(ch->token, strlen(ch->token), h->token_digest);

	if (in_http_sockaddr(ch, &ss, &v6) != 0) {
		snprintf(err, errsz, "HTTPInput %s: listen_address \"%s\" is not "
		    "a numeric IPv4 or IPv6 address", in->ns, ch->listen_address);
		goto fail;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
	if (ch->cert_pem != NULL) {	/* the texts outlive h->d */
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		    ch->cert_pem };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		    ch->key_pem };
	}
	h->link = feeder_link_new(in->host.bus, in->bound, &h->abandon, err,
	    errsz);
	if (h->link == NULL)
		goto fail;

	h->guard = http_guard_new(h->name, ch->header_timeout,
	    ch->max_connections_per_ip, err, errsz);
	if (h->guard == NULL)
		goto fail;
	errno = 0;
	h->d = MHD_start_daemon(flags, (uint16_t)ch->port, http_guard_accept,
	    h->guard, on_request, h,
	    /* first, so that every message of MHD's goes through our log */
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	    MHD_OPTION_LISTEN_SOCKET, h->lfd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ch->max_connections,
	    /* the guard's accept policy refuses at max_connections_per_ip,
	     * saying so; libmicrohttpd's own limit, checked before it and
	     * silent about whom it closes, stays one above as a backstop */
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)ch->max_connections_per_ip + 1,
	    MHD_OPTION_NOTIFY_CONNECTION, http_guard_notify, h->guard,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ch->timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, h,
	    MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(err, errsz, "HTTPInput %s: cannot listen on %s%s%s:%d%s%s",
		    in->ns, v6 ? "[" : "", ch->listen_address, v6 ? "]" : "",
		    ch->port, errno != 0 ? ": " : "",
		    errno != 0 ? strerror(errno) : "");
		goto fail;
	}
	announce(h, v6);
	h->lfd = -1;			/* MHD_stop_daemon() closes it */
	return 0;
fail:
	http_guard_free(h->guard);
	h->guard = NULL;
	feeder_link_free(h->link);
	h->link = NULL;
	pthread_mutex_destroy(&h->lock);
	return -1;
}

static void
http_stop(struct input *in)
{
	struct in_http *h = in->ctx;

	atomic_store(&h->stopping, 1);
}

static int
http_idle(struct input *in)
{
	struct in_http *h = in->ctx;

	return atomic_load(&h->stopping) && atomic_load(&h->in_flight) == 0;
}

static void
http_free(struct input *in)
{
	struct in_http *h = in->ctx;

	if (h == NULL)
		return;
	in->ctx = NULL;
	if (h->d == NULL) {		/* start only, or run failed */
		if (h->lfd >= 0)
			close(h->lfd);
		explicit_bzero(&h->conf, sizeof(h->conf));
		free(h);
		return;
	}
	atomic_store(&h->stopping, 1);
	atomic_store(&h->abandon, 1);
	MHD_stop_daemon(h->d);
	feeder_link_free(h->link);
	pthread_mutex_destroy(&h->lock);
	log_info("%s: stopped: accepted %llu, refused %llu, closed for slow "
	    "headers %llu, connections refused over max_connections_per_ip "
	    "%llu, unanswered by the router %llu", h->name,
	    (unsigned long long)atomic_load(&h->accepted),
	    (unsigned long long)atomic_load(&h->refused),
	    http_guard_closed(h->guard), http_guard_refused(h->guard),
	    (unsigned long long)atomic_load(&h->unanswered));
	http_guard_free(h->guard);
	explicit_bzero(&h->conf, sizeof(h->conf));
	free(h);
}

static const char *
http_describe(const struct input *in)
{
	const struct in_http *h = in->ctx;

	return h->describe;
}

const struct input_ops input_http = {
	.name = "HTTPInput",
	.parse = in_http_parse,
	.free_conf = in_http_free_conf,
	.batch = 1,
	.replies = 1,
	.start = http_start,
	.run = http_run,
	.stop = http_stop,
	.idle = http_idle,
	.free = http_free,
	.describe = http_describe,
};
