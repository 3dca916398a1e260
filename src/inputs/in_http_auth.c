/* in_http_auth: HTTPInput's credentials.  See in_http_auth.h. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
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

/* A passphrase callback that gives none: an encrypted key fails to load
 * instead of prompting on a terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int
http_auth_check_tls(const char *cert, const char *key, char *err,
    size_t errsz)
{
	BIO *b;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int rc = -1;

	if ((b = BIO_new_mem_buf(cert, -1)) != NULL) {
		x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(key, -1)) != NULL) {
		k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
		BIO_free(b);
	}
	if (x == NULL)
		snprintf(err, errsz, "no PEM certificate");
	else if (k == NULL)
		snprintf(err, errsz, "no unencrypted PEM private key");
	else if (X509_check_private_key(x, k) != 1)
		snprintf(err, errsz, "the key does not belong to the "
		    "certificate");
	else
		rc = 0;
	ERR_clear_error();	/* what failed is said in err */
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}
