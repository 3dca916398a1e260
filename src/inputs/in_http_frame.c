/* in_http_frame: request framing HTTPInput refuses.  See in_http_frame.h. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

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
