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
#include <strings.h>

#include "in_http.h"
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

/* 1 when the EC key k is on a curve GnuTLS serves TLS with (the NIST
 * curves); its curve's name into name[sz] either way. */
static int
tls_curve(const EVP_PKEY *k, char *name, size_t sz)
{
	static const char *const ok[] = { "prime256v1", "secp384r1",
	    "secp521r1" };
	size_t len;

	if (EVP_PKEY_get_group_name(k, name, sz, &len) != 1) {
		snprintf(name, sz, "(unnamed)");
		return 0;
	}
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(name, ok[i]) == 0)
			return 1;
	return 0;
}

int
http_auth_check_tls(const char *cert, const char *key, char *err,
    size_t errsz)
{
	char curve[64];
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
	else if (EVP_PKEY_base_id(k) == EVP_PKEY_DSA)
		snprintf(err, errsz, "a DSA key: the TLS of libmicrohttpd "
		    "(GnuTLS) completes no handshake with it; use an RSA, ECDSA "
		    "or Ed25519 key");
	else if (EVP_PKEY_base_id(k) == EVP_PKEY_EC && !tls_curve(k, curve,
	    sizeof(curve)))
		snprintf(err, errsz, "an ECDSA key on curve %s: the TLS of "
		    "libmicrohttpd (GnuTLS) takes only P-256, P-384 and P-521 "
		    "(prime256v1, secp384r1, secp521r1)", curve);
	else
		rc = 0;
	ERR_clear_error();	/* what failed is said in err */
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

enum in_http_auth
in_http_check_auth(const struct in_http_conf *ch,
    const unsigned char *token_digest, const char *a,
    const char *sig, unsigned char *signature,
    const char **why)
{
	const char *token_why = NULL;

	/* either credential is enough when both are configured */
	if (ch->token[0] != '\0' && a != NULL) {
		/* RFC 6750: "Bearer" 1*SP b64token, the scheme in any case;
		 * RFC 9110 5.5: a field value has no trailing whitespace */
		size_t n;

		if (strncasecmp(a, "Bearer ", 7) != 0) {
			token_why = "the Authorization header is not \"Bearer "
			    "TOKEN\"";
		} else {
			a += 7 + strspn(a + 7, " ");
			n = strlen(a);
			while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
				n--;
			if (http_auth_token_ok(a, n, token_digest))
				return IN_HTTP_AUTH_OK;
			token_why = "wrong bearer token";
		}
	}
	if (ch->secret[0] != '\0' && sig != NULL) {
		if (http_auth_parse_signature(sig, signature) != 0) {
			*why = "X-Hub-Signature-256 is not \"sha256=\" and 64 hex "
			    "digits";
			return IN_HTTP_AUTH_FAIL;
		}
		return IN_HTTP_AUTH_SIGNATURE;
	}
	if (token_why != NULL) {
		*why = token_why;
		return IN_HTTP_AUTH_FAIL;
	}
	if (ch->allow_anonymous)
		return IN_HTTP_AUTH_OK;
	*why = ch->token[0] == '\0' && ch->secret[0] == '\0' ?
	    "this input has no credentials configured and refuses every "
	    "request (allow_anonymous is false)" :
	    ch->token[0] != '\0' && ch->secret[0] != '\0' ?
	    "missing credentials: Authorization: Bearer TOKEN or "
	    "X-Hub-Signature-256" :
	    ch->token[0] != '\0' ? "missing credentials: Authorization: "
	    "Bearer TOKEN" : "missing credentials: X-Hub-Signature-256";
	return IN_HTTP_AUTH_FAIL;
}
