/* in_http_auth: HTTPInput's credentials.  See in_http_auth.h. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "in_http_auth.h"

void
http_auth_digest(const char *token, size_t len,
    unsigned char out[HTTP_AUTH_LEN])
{
	unsigned int n = HTTP_AUTH_LEN;

	if (EVP_Digest(token, len, out, &n, EVP_sha256(), NULL) != 1)
		abort();
}

int
http_auth_token_ok(const char *token, size_t len,
    const unsigned char digest[HTTP_AUTH_LEN])
{
	unsigned char d[HTTP_AUTH_LEN];

	http_auth_digest(token, len, d);
	return CRYPTO_memcmp(d, digest, HTTP_AUTH_LEN) == 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
http_auth_parse_signature(const char *v, unsigned char out[HTTP_AUTH_LEN])
{
	if (strncmp(v, "sha256=", 7) != 0 || strlen(v + 7) != 2 * HTTP_AUTH_LEN)
		return -1;
	v += 7;
	for (int i = 0; i < HTTP_AUTH_LEN; i++) {
		int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int
http_auth_signature_ok(const char *secret, const void *body, size_t len,
    const unsigned char sig[HTTP_AUTH_LEN])
{
	static const unsigned char empty[1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    body != NULL ? body : empty, len, md, &n) == NULL ||
	    n != HTTP_AUTH_LEN)
		return 0;
	return CRYPTO_memcmp(md, sig, HTTP_AUTH_LEN) == 0;
}
