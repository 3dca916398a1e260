/*
 * in_http_auth: HTTPInput's credentials (in_http.c; OpenSSL's only user).
 * A bearer token is kept and compared as its SHA-256 digest, in constant
 * time whatever the lengths; a GitHub webhook signature,
 * "X-Hub-Signature-256: sha256=<64 hex digits>", is the HMAC-SHA256 of the
 * body with the input's secret (GitHub's "Validating webhook deliveries").
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
 * certificate").  An encrypted key is refused: nothing could type its
 * passphrase at a daemon's start.
 */
int http_auth_check_tls(const char *cert, const char *key, char *err,
    size_t errsz);

#endif
