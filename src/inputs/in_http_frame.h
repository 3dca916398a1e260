/*
 * in_http_frame: the request framing HTTPInput refuses before it reads a
 * body, where libmicrohttpd 0.9.75 (Debian 12's) takes it (RFC 9112):
 *
 *   - two Content-Length headers that differ (§6.3: the first would
 *     frame the body here and the second one elsewhere, the way requests
 *     are smuggled past a proxy): 400;
 *   - Content-Length and Transfer-Encoding together (§6.1): 400;
 *   - a Transfer-Encoding other than "chunked": 501 (§6.1);
 *   - an HTTP/1.1 request without a Host header (§3.2): 400;
 *   - a header name that is not a token (RFC 9110 §5.1), such as one with
 *     whitespace before its colon, which libmicrohttpd keeps as another
 *     name (§5.1: a "Content-Length : N" would frame nothing here and the
 *     body elsewhere): 400;
 *   - a Content-Length or Transfer-Encoding folded onto the next line
 *     (obs-fold, §5.2), which libmicrohttpd appends to the header's name,
 *     so that it framed no body here: 400.  (Other folded headers are
 *     taken as libmicrohttpd gives them.)
 *
 * The reply closes the connection: what follows the headers cannot be
 * framed.
 */
#ifndef ER_IN_HTTP_FRAME_H
#define ER_IN_HTTP_FRAME_H

#include <microhttpd.h>

/*
 * Check the headers of c's request (version: as libmicrohttpd gives it,
 * "HTTP/1.1").  Returns NULL when they frame a body well, else the
 * reason, a static string, with *status set to 400 or 501.
 */
const char *http_frame_check(struct MHD_Connection *c, const char *version,
    unsigned int *status);

/*
 * libmicrohttpd's URL unescaping (MHD_OPTION_UNESCAPE_CALLBACK; cls and c
 * unused), except that a URL with %00 in it, which would cut the C string
 * the request handler gets, becomes "\x01", which in_http_route()
 * refuses.  Returns the new length of uri, unescaped in place.
 */
size_t http_unescape(void *cls, struct MHD_Connection *c, char *uri);

#endif
