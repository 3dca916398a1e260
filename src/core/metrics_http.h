/*
 * metrics_http: a daemon's GET /metrics (include/metrics.h's text,
 * Content-Type "text/plain; version=0.0.4") with libmicrohttpd, driven
 * from the daemon's own loop: no thread of its own.  libmicrohttpd runs in
 * its epoll mode without an internal thread (MHD_USE_EPOLL): its epoll
 * descriptor is watched for reading (loop_add_fd()) and a timer calls
 * MHD_run() when libmicrohttpd's timeout or a header deadline is due.  A
 * scrape renders in the loop's thread, between two turns.
 *
 * Bounds: at most METRICS_HTTP_MAX_CONN connections; a new one past that
 * closes the oldest still waiting for its request's headers (a slowloris
 * peer cannot keep a scrape out).  A connection must bring its request's
 * headers within METRICS_HTTP_HEADER_S seconds of its start, and is
 * closed after METRICS_HTTP_HEADER_S idle seconds, and after its reply
 * ("Connection: close": one request a connection).  Only GET (and HEAD)
 * /metrics: another path is 404, another method 405 with "Allow: GET,
 * HEAD".
 */
#ifndef ER_METRICS_HTTP_H
#define ER_METRICS_HTTP_H

#include <stddef.h>

#define METRICS_HTTP_MAX_CONN 16
#define METRICS_HTTP_HEADER_S 10
/* What MHD itself may hold at once: the bound, and those closed for it
 * that it has not seen closed yet. */
#define METRICS_HTTP_HARD_MAX (4 * METRICS_HTTP_MAX_CONN)

struct loop;
struct metrics;
struct metrics_http;

/*
 * "HOST:PORT" (config.json's metrics.listen): HOST a numeric IPv4
 * address, or an IPv6 one in brackets; PORT 0 to 65535 (0: any free
 * port).  Returns 0 with host (without brackets) and *port set, or -1
 * with why[whysz] saying what is wrong (no position: the caller's).
 */
int metrics_http_addr(const char *text, char *host, size_t hostsz,
    int *port, char *why, size_t whysz);
/* 1 when host (numeric) is loopback: 127.0.0.0/8 or ::1. */
int metrics_http_loopback(const char *host);

/*
 * Bind and listen on text ("HOST:PORT", metrics_http_addr()), before the
 * daemon takes its "user" (a port under 1024).  Returns the descriptor
 * (non-blocking, close-on-exec), or -1 with "metrics: cannot listen on
 * HOST:PORT: why" in err.
 */
int metrics_http_listen(const char *text, char *err, size_t errsz);

/*
 * Serve m on the listening descriptor fd (taken over: closed by
 * metrics_http_free(), or here on failure) from loop l.  Logs "metrics:
 * serving http://HOST:PORT/metrics".  NULL with err on failure.
 */
struct metrics_http *metrics_http_new(struct metrics *m, struct loop *l,
    int fd, char *err, size_t errsz);
/* Close every connection and the socket.  NULL: no-op. */
void metrics_http_free(struct metrics_http *h);

#endif
