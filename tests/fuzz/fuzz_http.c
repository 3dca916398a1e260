/*
 * HTTPInput's request handling below libmicrohttpd (src/inputs/in_http.h,
 * in_http_auth.h): a request's path, its headers, the HMAC and the body,
 * as the request handler takes them; libmicrohttpd's own parsing is not
 * fuzzed.  The input is
 *
 *   FLAGS URL \n AUTHORIZATION \n X-HUB-SIGNATURE-256 \n X-GITHUB-EVENT \n BODY
 *
 * FLAGS (one byte) says which headers are present, whether the input has
 * a token, a secret, allow_anonymous, and whether to replace the
 * signature by the body's true HMAC (so that the fuzzer reaches the body
 * behind a good signature).  What must hold:
 *
 *  - routing: /events, /hooks/TYPE or /hooks with X-GitHub-Event, the
 *    type printable ASCII without '/' or space, 1 to 200 bytes; anything
 *    else refused with 400 or 404 and a code;
 *  - credentials: a request passes only with the right bearer token, a
 *    signature to check, or anonymous when allowed and nothing wrong was
 *    presented; the right token always passes; a signature to check is
 *    the header's 64 hex digits; the body's HMAC is accepted, one bit off
 *    it is not;
 *  - the body: a /hooks payload the input makes into a request
 *    (client_request) is an event the router takes, of the route's type;
 *    /events bodies go to the router's event_ingest as they are.
 */
#include <openssl/hmac.h>

#include "client.h"
#include "event.h"
#include "fuzz.h"
#include "in_http.h"
#include "in_http_auth.h"

#define SECRET "It's a Secret to Everybody"
#define TOKEN "s3cr3t-t0ken"

enum {
	F_AUTH = 1, F_SIG = 2, F_GH = 4, F_TOKEN = 8, F_SECRET = 16,
	F_ANON = 32, F_GOOD_SIG = 64, F_GOOD_TOKEN = 128
};

/* The next line of data[*pos..size) as a new string (its NULs kept). */
static char *
field(const uint8_t *data, size_t size, size_t *pos)
{
	size_t start = *pos, end = start;
	char *s;

	while (end < size && data[end] != '\n')
		end++;
	s = malloc(end - start + 1);
	FUZZ_ASSERT(s != NULL, "malloc");
	memcpy(s, data + start, end - start);
	s[end - start] = '\0';
	*pos = end < size ? end + 1 : end;
	return s;
}

static void
check_route(const char *url, const char *gh)
{
	char type[IN_HTTP_TYPE_SIZE];
	struct in_http_refusal no;
	enum in_http_route r;
	const char *t;

	memset(&no, 0, sizeof(no));
	r = in_http_route(url, gh, type, &no);
	if (r == IN_HTTP_REFUSED) {
		FUZZ_ASSERT((no.status == 400 || no.status == 404) &&
		    no.code != NULL && no.message != NULL, "refusal %u",
		    no.status);
		FUZZ_ASSERT(strcmp(url, "/events") != 0, "/events refused");
		return;
	}
	if (r == IN_HTTP_EVENTS) {
		FUZZ_ASSERT(strcmp(url, "/events") == 0, "events at %s", url);
		return;
	}
	FUZZ_ASSERT(r == IN_HTTP_HOOKS && strncmp(url, "/hooks", 6) == 0,
	    "route %d for %s", r, url);
	t = type;
	if (gh != NULL) {
		FUZZ_ASSERT(strncmp(type, "github.", 7) == 0 &&
		    strcmp(type + 7, gh) == 0, "type %s for X-GitHub-Event %s",
		    type, gh);
		t = type + 7;
	} else {
		FUZZ_ASSERT(strcmp(url + 6, "") != 0 && strcmp(type, url + 7)
		    == 0, "type %s for %s", type, url);
	}
	FUZZ_ASSERT(strlen(t) >= 1 && strlen(t) <= IN_HTTP_TYPE_MAX &&
	    strpbrk(t, "/ ") == NULL, "type %s", t);
	for (; *t != '\0'; t++)
		FUZZ_ASSERT(*t > 0x20 && *t < 0x7f, "type byte %#x", *t);
}

/* A /hooks body: the request made of it is an event of that type. */
static void
check_hook(const char *type, const char *body, size_t len)
{
	struct event_error err;
	struct event ev;
	size_t rlen;
	char *req;

	req = client_request(type, NULL, body, len, &rlen, &err);
	if (req == NULL)
		return;
	FUZZ_ASSERT(event_ingest(req, rlen, "hooks", 0, 1.5e9, &ev, &err) == 0,
	    "the router refuses a hook's request: %s: %s: %.300s",
	    event_err_code(err.code), err.message, req);
	FUZZ_ASSERT(strcmp(ev.event_type, type) == 0, "event_type %s, the "
	    "route's %s", ev.event_type, type);
	event_clear(&ev);
	free(req);
}

/* Whether Authorization value a gives token: "Bearer" in any case, one
 * or more spaces (RFC 6750), the token, then only trailing white space,
 * which is not part of a field value (RFC 9110, 5.5). */
static int
bearer_is(const char *a, const char *token)
{
	size_t n = strlen(token);

	if (strncasecmp(a, "Bearer ", 7) != 0)
		return 0;
	for (a += 7; *a == ' '; a++)
		;
	if (strncmp(a, token, n) != 0)
		return 0;
	for (a += n; *a == ' ' || *a == '\t'; a++)
		;
	return *a == '\0';
}

static void
check_auth(int flags, const char *a, const char *sig, const char *body,
    size_t len)
{
	struct in_http_conf ch;
	unsigned char digest[HTTP_AUTH_LEN], out[HTTP_AUTH_LEN];
	const char *why = NULL;
	enum in_http_auth rc;
	int token_right, wrong;

	memset(&ch, 0, sizeof(ch));
	if (flags & F_TOKEN)
		snprintf(ch.token, sizeof(ch.token), "%s", TOKEN);
	if (flags & F_SECRET)
		snprintf(ch.secret, sizeof(ch.secret), "%s", SECRET);
	ch.allow_anonymous = (flags & F_ANON) != 0;
	http_auth_digest(ch.token, strlen(ch.token), digest);
	rc = in_http_check_auth(&ch, digest, a, sig, out, &why);

	token_right = ch.token[0] != '\0' && a != NULL && bearer_is(a, TOKEN);
	wrong = (ch.token[0] != '\0' && a != NULL) ||
	    (ch.secret[0] != '\0' && sig != NULL);
	if (token_right)
		FUZZ_ASSERT(rc == IN_HTTP_AUTH_OK, "the right token refused");
	if (rc == IN_HTTP_AUTH_OK)
		FUZZ_ASSERT(token_right || (ch.allow_anonymous && !wrong),
		    "passed without the token, anonymous %d", ch.allow_anonymous);
	if (rc == IN_HTTP_AUTH_FAIL)
		FUZZ_ASSERT(why != NULL && why[0] != '\0', "no reason");
	if (rc != IN_HTTP_AUTH_SIGNATURE)
		return;
	FUZZ_ASSERT(ch.secret[0] != '\0' && sig != NULL &&
	    strlen(sig) == 7 + 2 * HTTP_AUTH_LEN, "signature %s", sig);
	for (int i = 0; i < HTTP_AUTH_LEN; i++) {
		unsigned v;
		FUZZ_ASSERT(sscanf(sig + 7 + 2 * i, "%2x", &v) == 1 &&
		    v == out[i], "signature byte %d", i);
	}
	if (flags & F_GOOD_SIG) {
		FUZZ_ASSERT(http_auth_signature_ok(SECRET, body, len, out),
		    "the body's HMAC refused");
		out[len % HTTP_AUTH_LEN] ^= 1;
		FUZZ_ASSERT(!http_auth_signature_ok(SECRET, body, len, out),
		    "a wrong HMAC accepted");
	}
}

/* sha256=<the HMAC of body with SECRET> into sig[7 + 64 + 1]. */
static void
good_signature(char *sig, const char *body, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	FUZZ_ASSERT(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
	    (const unsigned char *)body, len, md, &n) != NULL, "HMAC");
	strcpy(sig, "sha256=");
	for (unsigned i = 0; i < n; i++)
		sprintf(sig + 7 + 2 * i, "%02X", md[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url, *a, *sig, *gh, type[IN_HTTP_TYPE_SIZE], good[80];
	struct in_http_refusal no;
	struct event_error err;
	struct event ev;
	const char *body;
	size_t pos = 1, len;
	int flags;

	if (size < 1)
		return 0;
	fuzz_quiet();
	flags = data[0];
	url = field(data, size, &pos);
	a = field(data, size, &pos);
	sig = field(data, size, &pos);
	gh = field(data, size, &pos);
	body = (const char *)data + pos;
	len = size - pos;
	if (flags & F_GOOD_SIG) {
		good_signature(good, body, len);
		free(sig);
		sig = strdup(good);
	}
	if (flags & F_GOOD_TOKEN) {
		free(a);
		a = strdup("Bearer " TOKEN);
	}

	check_route(url, flags & F_GH ? gh : NULL);
	check_auth(flags, flags & (F_AUTH | F_GOOD_TOKEN) ? a : NULL,
	    flags & (F_SIG | F_GOOD_SIG) ? sig : NULL, body, len);
	switch (in_http_route(url, flags & F_GH ? gh : NULL, type, &no)) {
	case IN_HTTP_HOOKS:
		check_hook(type, body, len);
		break;
	case IN_HTTP_EVENTS:
		if (event_ingest(body, len, "hooks", 1024 * 1024, 1.5e9, &ev,
		    &err) == 0)
			event_clear(&ev);
		break;
	default:
		break;
	}
	free(url);
	free(a);
	free(sig);
	free(gh);
	return 0;
}
