/*
 * in_http: HTTPInput, webhooks over HTTP/1.1 (libmicrohttpd: the only
 * module that includes microhttpd.h; credentials: in_http_auth.h).  See
 * event-reactor(7), "HTTPInput requests".
 *
 *   POST /events          the body is an event object, sent as is
 *   POST /hooks/TYPE      any JSON body becomes the payload of an event of
 *                         type TYPE (github.EVENT with X-GitHub-Event)
 *
 * HTTPS when "cert_file" and "key_file" are set (libmicrohttpd's GnuTLS;
 * the files are read with the configuration), else plain HTTP.
 *
 * Replies 202 {"id": ...} once the event is stored; errors as {"error":
 * {"code", "message"}} with 400 (the router's refusal, invalid JSON with
 * its position), 401, 404, 405, 413 (body over limits.max_event_size), 503
 * (router stopping; store_unavailable, the store could not write the
 * event, with Retry-After: IN_HTTP_RETRY_AFTER).
 *
 * A body over the limit is read and dropped, then refused with 413 and the
 * connection closed: a client that writes its whole body before it reads
 * (urllib.request) gets the reply instead of a connection reset.  Up to
 * IN_HTTP_DISCARD_MAX bytes past the limit, within "timeout" seconds of
 * the headers; past either the connection is closed without a reply
 * (libmicrohttpd can queue one only before the body or after all of it).
 * A Content-Length already past the bound, or "Expect: 100-continue", gets
 * the 413 at once, before the body.
 *
 * libmicrohttpd runs one internal polling thread (epoll): a slow client
 * costs a connection slot, never a thread, and is dropped after "timeout"
 * idle seconds, or after "header_timeout" seconds without a request's
 * complete headers (in_http_guard.h); at most "max_connections" at once,
 * "max_connections_per_ip" of them from one client address.  The one REQ socket to
 * the router is used from that thread only (and behind a mutex anyway).
 * A feeder (feeder.h); its ops table is input_http (input.h).
 */
#ifndef ER_IN_HTTP_H
#define ER_IN_HTTP_H

/* Retry-After of a 503 store_unavailable, seconds. */
#define IN_HTTP_RETRY_AFTER "5"
/* Body bytes past limits.max_event_size read and dropped before a 413. */
#define IN_HTTP_DISCARD_MAX (16 * 1024 * 1024)
#define IN_HTTP_SECRET_MAX 1024	/* secret and token, bytes */
/* cert_file and key_file, bytes: a long chain is a few tens of KiB */
#define IN_HTTP_PEM_MAX (1024 * 1024)

struct cfg_node;
struct cfg_plugin;
struct cfg_reader;
struct cfg;

/*
 * An HTTPInput's settings ("config": event-reactor.conf(5)).  secret and
 * token are never logged; "" when not set; in_http_free_conf() wipes
 * them.
 */
struct in_http_conf {
	char listen_address[128];	/* numeric IPv4 or IPv6; 127.0.0.1 */
	int port;			/* 8080; 0 picks a free port */
	char secret[IN_HTTP_SECRET_MAX];	/* HMAC-SHA256 key
						 * (X-Hub-Signature-256) */
	char token[IN_HTTP_SECRET_MAX];	/* Authorization: Bearer TOKEN */
	int allow_anonymous;		/* take requests without credentials */
	int max_connections;		/* at once; default 64 */
	int timeout;			/* seconds a connection may idle; 10 */
	int max_connections_per_ip;	/* at once from one address; 16 */
	int header_timeout;		/* seconds for a request's headers;
					 * 10 (in_http_guard.h) */
	char cert_file[4096];		/* PEM: HTTPS when set, with key_file */
	char key_file[4096];
	char *cert_pem;			/* their texts, read (as the user that
					 * starts the router) with the */
	char *key_pem;			/* configuration; NULL: plain HTTP */
};

/*
 * What the request handler decides from a request's URL, below
 * libmicrohttpd (for it and for tests/fuzz/fuzz_http.c; its credentials:
 * in_http_check_auth(), in_http_auth.h).
 */

/* X-GitHub-Event values and /hooks/TYPE types: bytes at most. */
#define IN_HTTP_TYPE_MAX 200
/* Room for an event type made of one: "github." TYPE and a NUL. */
#define IN_HTTP_TYPE_SIZE (IN_HTTP_TYPE_MAX + 16)

enum in_http_route { IN_HTTP_REFUSED = 0, IN_HTTP_EVENTS, IN_HTTP_HOOKS };

/* A refusal: HTTP status, error code and message (static strings). */
struct in_http_refusal {
	unsigned int status;
	const char *code;
	const char *message;
};

/*
 * Route a POST's url (unescaped; a URL that held %00 arrives as "\x01")
 * with X-GitHub-Event's value gh (NULL: absent): IN_HTTP_EVENTS for
 * /events; IN_HTTP_HOOKS for /hooks/TYPE or /hooks with gh, the event type
 * (TYPE, or "github." gh) in type; else IN_HTTP_REFUSED with *no (400
 * nul_in_field or invalid_event_type, 404 not_found).  A type is printable
 * ASCII without '/' or space, 1 to IN_HTTP_TYPE_MAX bytes.
 */
enum in_http_route in_http_route(const char *url, const char *gh,
    char type[IN_HTTP_TYPE_SIZE], struct in_http_refusal *no);

/*
 * Its parse and free_conf (input.h; in_http_conf.c): {"listen_address":
 * "127.0.0.1", "port": 8080, "secret": ..., "token": ...,
 * "allow_anonymous": false, "max_connections": 64,
 * "max_connections_per_ip": 16, "timeout": 10, "header_timeout": 10,
 * "cert_file": ..., "key_file": ...}; namespace default "hooks".  The
 * sample's CHANGE-ME placeholders are refused; without credentials (nor
 * allow_anonymous) a warning says that every request will be refused.
 * cert_file and key_file come together; both are read and checked here
 * (http_auth_check_tls()), so a bad pair fails --check.  Plain HTTP on an
 * address outside loopback gets a warning.  free_conf wipes the key.
 */
int in_http_parse(struct cfg_reader *r, const struct cfg_node *section,
    const struct cfg *cfg, struct cfg_plugin *p);
void in_http_free_conf(void *conf);

struct sockaddr_storage;
/* h's listen_address and port into *ss (*v6 set for IPv6): 0, or -1 when
 * listen_address is not a numeric IPv4 or IPv6 address. */
int in_http_sockaddr(const struct in_http_conf *h,
    struct sockaddr_storage *ss, int *v6);
/*
 * A listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR; IPv6
 * only for an IPv6 address) on h's address and port, backlog
 * IN_HTTP_BACKLOG: its descriptor, or -1 with "HTTPInput NS: cannot listen
 * on ADDRESS:PORT: why" in err.  Called as the router starts, before it
 * takes "user".
 */
#define IN_HTTP_BACKLOG 128	/* SOMAXCONN before Linux 5.4 */
int in_http_listen(const struct in_http_conf *h, const char *ns, char *err,
    size_t errsz);

#endif
