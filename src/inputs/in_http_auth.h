/*
 * in_http_auth: HTTPInput's credentials (in_http.c; OpenSSL's only user).
 * A bearer token is kept and compared as its SHA-256 digest, in constant
 * time whatever the lengths; a GitHub webhook signature,
 * "X-Hub-Signature-256: sha256=<64 hex digits>", is the HMAC-SHA256 of the
 * body with the input's secret (GitHub's "Validating webhook deliveries").
 * in_http_check_auth() decides what a request's credential headers say.
 * The server's TLS certificate and key (PEM, as libmicrohttpd's GnuTLS
 * takes them) are checked here when the configuration is read, so that
 * --check finds a bad pair.
 */
#ifndef ER_IN_HTTP_AUTH_H
#define ER_IN_HTTP_AUTH_H

#include <stddef.h>

#define HTTP_AUTH_LEN 32	/* a SHA-256 digest or HMAC, bytes */

/* The digest of token[len] into out. */
void http_auth_digest(const char *token, size_t len,
    unsigned char out[HTTP_AUTH_LEN]);
/* 1 when token[len]'s digest is digest (constant time), else 0. */
int http_auth_token_ok(const char *token, size_t len,
    const unsigned char digest[HTTP_AUTH_LEN]);
/* "sha256=<64 hex digits>" into out: 0, or -1 when v is not that. */
int http_auth_parse_signature(const char *v, unsigned char out[HTTP_AUTH_LEN]);
/* 1 when sig is the HMAC-SHA256 of body[len] (NULL: empty) with secret. */
int http_auth_signature_ok(const char *secret, const void *body, size_t len,
    const unsigned char sig[HTTP_AUTH_LEN]);

/*
 * Check a TLS server certificate and its private key, both PEM texts
 * (NUL-terminated; cert may hold a chain, its first certificate is the
 * server's): 0, or -1 with why in err ("no PEM certificate", "no
 * unencrypted PEM private key", "the key does not belong to the
 * certificate", "a DSA key: ...").  An encrypted key is refused: nothing
 * could type its passphrase at a daemon's start; so is a DSA key, with
 * which libmicrohttpd 0.9.75's GnuTLS 3.7 completes no handshake (curl
 * 7.88: SSL_ERROR_SYSCALL; RSA, ECDSA P-256 and Ed25519 keys work), and
 * an ECDSA key on a curve other than P-256, P-384 and P-521 (secp256k1,
 * brainpool), which GnuTLS refuses to load ("an ECDSA key on curve
 * NAME: ...").
 */
int http_auth_check_tls(const char *cert, const char *key, char *err,
    size_t errsz);

struct in_http_conf;		/* in_http.h */

enum in_http_auth {
	IN_HTTP_AUTH_OK,		/* a good bearer token, or anonymous */
	IN_HTTP_AUTH_SIGNATURE,		/* check signature against the body */
	IN_HTTP_AUTH_FAIL		/* 401 with *why */
};

/*
 * What the credentials of a request say to the input configured as ch
 * (token_digest: http_auth_digest() of ch->token): authorization and
 * signature are the Authorization and X-Hub-Signature-256 headers' values
 * (NULL: absent).  Either configured credential is enough; a wrong bearer
 * token still lets a signature decide.  IN_HTTP_AUTH_SIGNATURE fills
 * signature_out[HTTP_AUTH_LEN] with the HMAC the body must have;
 * IN_HTTP_AUTH_FAIL sets *why (a static string).  Called by in_http.c's
 * request handler and tests/fuzz/fuzz_http.c.
 */
enum in_http_auth in_http_check_auth(const struct in_http_conf *ch,
    const unsigned char *token_digest, const char *authorization,
    const char *signature, unsigned char *signature_out, const char **why);

#endif
