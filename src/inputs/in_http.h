/*
 * in_http: HTTPInput, webhooks over HTTP/1.1 (libmicrohttpd: the only
 * module that includes microhttpd.h; credentials: in_http_auth.h).  See
 * event-reactor(7), "HTTPInput requests".
 *
 *   POST /events          the body is an event object, sent as is
 *   POST /hooks/TYPE      any JSON body becomes the payload of an event of
 *                         type TYPE (github.EVENT with X-GitHub-Event)
 *
 * Replies 202 {"id": ...}; errors as {"error": {"code", "message"}} with
 * 400 (the router's refusal, invalid JSON with its position), 401, 404, 405,
 * 413 (body over limits.max_event_size), 503 (router stopping).
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
 * idle seconds; at most "max_connections" at once.  The one REQ socket to
 * the router is used from that thread only (and behind a mutex anyway).
 * A feeder (feeder.h); its ops table is input_http (input.h).
 */
#ifndef ER_IN_HTTP_H
#define ER_IN_HTTP_H

/* Body bytes past limits.max_event_size read and dropped before a 413. */
#define IN_HTTP_DISCARD_MAX (16 * 1024 * 1024)

#endif
