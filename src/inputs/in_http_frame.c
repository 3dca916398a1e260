/*
 * in_http_frame: request framing HTTPInput refuses, and its URLs' routes.
 * See in_http_frame.h and in_http.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "in_http.h"
#include "in_http_frame.h"

struct seen {
	int lengths;			/* Content-Length headers */
	int differ;			/* with two values */
	const char *length;		/* the first */
	int encodings;			/* Transfer-Encoding headers */
	int chunked_only;		/* each is exactly "chunked" */
	int host;
	int bad_name;			/* a name that is no token */
	int folded;			/* a framing header folded */
};

/*
 * Whether key is name with more after it: libmicrohttpd 0.9.75 appends a
 * line folded onto the next one (obs-fold, RFC 9112 §5.2) to the name it
 * continues ("Content-Length:", CRLF, " 118" comes as "Content-Length118"
 * with no value), so that the header frames nothing here.
 */
static int
extends(const char *key, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(key, name, n) == 0 && key[n] != '\0';
}

/* RFC 9110 §5.1: a field name is a token (tchar, §5.6.2) */
static int
token(const char *s)
{
	static const char other[] = "!#$%&'*+-.^_`|~";

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!(*s >= '0' && *s <= '9') && !(*s >= 'a' && *s <= 'z') &&
		    !(*s >= 'A' && *s <= 'Z') && strchr(other, *s) == NULL)
			return 0;
	return 1;
}

static enum MHD_Result
count(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct seen *s = cls;

	(void)kind;
	if (value == NULL)
		value = "";
	if (!token(key))
		s->bad_name = 1;
	if (extends(key, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
	    extends(key, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		s->folded = 1;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (s->lengths++ > 0 && strcmp(s->length, value) != 0)
			s->differ = 1;
		else if (s->lengths == 1)
			s->length = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		s->encodings++;
		if (strcasecmp(value, "chunked") != 0)
			s->chunked_only = 0;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		s->host = 1;
	return MHD_YES;
}

const char *
http_frame_check(struct MHD_Connection *c, const char *version,
    unsigned int *status)
{
	struct seen s = { .chunked_only = 1 };

	MHD_get_connection_values(c, MHD_HEADER_KIND, count, &s);
	*status = MHD_HTTP_BAD_REQUEST;
	if (s.bad_name)
		return "a header name that is not a token (whitespace before "
		    "its colon?)";
	if (s.folded)
		return "a Content-Length or Transfer-Encoding folded onto the "
		    "next line (obs-fold)";
	if (s.differ)
		return "two Content-Length headers with different values";
	if (s.lengths > 0 && s.encodings > 0)
		return "both Content-Length and Transfer-Encoding";
	if (s.encodings > 0 && (s.encodings > 1 || !s.chunked_only)) {
		*status = MHD_HTTP_NOT_IMPLEMENTED;
		return "a Transfer-Encoding other than chunked";
	}
	if (!s.host && version != NULL &&
	    strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
		return "an HTTP/1.1 request without a Host header";
	return NULL;
}

/* ---- routing ---- */

/* A type from the URL or X-GitHub-Event: printable ASCII, no '/', no
 * space, not empty, at most IN_HTTP_TYPE_MAX bytes. */
static int
type_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > IN_HTTP_TYPE_MAX)
		return 0;
	for (; *t != '\0'; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f ||
		    *t == '/')
			return 0;
	return 1;
}

/*
 * URL unescaping: MHD's own, except that a %00 would cut the C string the
 * request handler gets (/hooks/a%00b would become type "a"): such a URL is
 * replaced by NUL_URL, which in_http_route() refuses.
 */
#define NUL_URL "\x01"
size_t
http_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
	(void)cls;
	(void)c;
	for (const char *p = uri; (p = strchr(p, '%')) != NULL; p++) {
		if (p[1] == '0' && p[2] == '0') {
			strcpy(uri, NUL_URL);
			return strlen(NUL_URL);
		}
	}
	return MHD_http_unescape(uri);
}

enum in_http_route
in_http_route(const char *url, const char *gh, char type[IN_HTTP_TYPE_SIZE],
    struct in_http_refusal *no)
{
	if (strcmp(url, NUL_URL) == 0) {
		no->status = MHD_HTTP_BAD_REQUEST;
		no->code = "nul_in_field";
		no->message = "the URL holds %00 (a NUL byte)";
		return IN_HTTP_REFUSED;
	}
	if (strcmp(url, "/events") == 0)
		return IN_HTTP_EVENTS;
	if (strncmp(url, "/hooks", 6) == 0 && (url[6] == '\0' ||
	    url[6] == '/')) {
		const char *t = url[6] == '/' ? url + 7 : "";
		if (gh != NULL) {
			if (!type_ok(gh)) {
				no->status = MHD_HTTP_BAD_REQUEST;
				no->code = "invalid_event_type";
				no->message = "X-GitHub-Event must be a name of "
				    "at most 200 printable characters";
				return IN_HTTP_REFUSED;
			}
			snprintf(type, IN_HTTP_TYPE_SIZE, "github.%s", gh);
			return IN_HTTP_HOOKS;
		}
		if (type_ok(t)) {
			snprintf(type, IN_HTTP_TYPE_SIZE, "%s", t);
			return IN_HTTP_HOOKS;
		}
	}
	no->status = MHD_HTTP_NOT_FOUND;
	no->code = "not_found";
	no->message = "no such resource: POST /events (an event) or "
	    "/hooks/TYPE (any JSON payload)";
	return IN_HTTP_REFUSED;
}
