/*
 * in_http_guard: an HTTPInput's bound on the time a connection takes to
 * send a request's headers (slowloris: a client that trickles a header
 * line every few seconds is never idle, so libmicrohttpd's idle timeout
 * never closes it).  Each connection must bring the headers of its
 * request within header_timeout seconds of its start, or of the reply to
 * its previous request (keep-alive); past that a thread of the guard's
 * shuts the socket down (shutdown(2)), libmicrohttpd closes it, and the
 * guard logs "http:NS: connection from ADDRESS closed: no complete request
 * headers within N s", rate-limited.  It also refuses, logs and counts a
 * connection from an address that has max_connections_per_ip already
 * (libmicrohttpd's own limit, kept one above as a backstop, names no
 * address); the total limit is libmicrohttpd's (in_http.c).
 */
#ifndef ER_IN_HTTP_GUARD_H
#define ER_IN_HTTP_GUARD_H

#include <stddef.h>
#include <sys/socket.h>
#include <microhttpd.h>

struct http_guard;

/*
 * A guard for the input named name ("http:NS", copied) with its thread
 * started; header_timeout in seconds, per_ip: max_connections_per_ip.
 * NULL with err[errsz] when the thread cannot start.
 */
struct http_guard *http_guard_new(const char *name, int header_timeout,
    int per_ip, char *err, size_t errsz);
/* Stop and join its thread, free it: after MHD_stop_daemon().  NULL is a
 * no-op. */
void http_guard_free(struct http_guard *g);
/* Its MHD_OPTION_NOTIFY_CONNECTION callback; cls: the guard. */
void http_guard_notify(void *cls, struct MHD_Connection *c,
    void **socket_context, enum MHD_ConnectionNotificationCode toe);
/* The headers of c's request are in: no deadline until its reply. */
void http_guard_headers_in(struct MHD_Connection *c);
/* c's request is over: the next one's headers are due from now. */
void http_guard_request_done(struct MHD_Connection *c);
/* Connections closed for their headers so far. */
unsigned long long http_guard_closed(const struct http_guard *g);
/*
 * Its MHD_AcceptPolicyCallback (cls: the guard; called on libmicrohttpd's
 * thread, as the notifications): MHD_NO, logged "http:NS: connection from
 * ADDRESS refused: N connections from it already
 * (max_connections_per_ip)" (at most 10 lines in 10 s) and counted, when
 * that address has per_ip connections open.
 */
enum MHD_Result http_guard_accept(void *cls, const struct sockaddr *addr,
    socklen_t addrlen);
/* Connections refused by http_guard_accept() so far. */
unsigned long long http_guard_refused(const struct http_guard *g);

#endif
