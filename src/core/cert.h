/*
 * cert: CURVE certificates in czmq's zcert text format (ZPL, ZeroMQ RFC
 * 4): a "metadata" section and a "curve" section with public-key =
 * "Z85" and, in a secret certificate, secret-key = "Z85"; the secret
 * certificate of FILE is FILE_secret (zcert_save(3)).  The only module
 * that includes czmq.h (libczmq, for zconfig's ZPL reader and zcert's
 * writer; no czmq actor or thread is started).
 */
#ifndef ER_CERT_H
#define ER_CERT_H

#include <stddef.h>

#include "bus.h"

/* A certificate's keys, Z85 text (bus.h). */
struct cert {
	char public_key[BUS_KEY_Z85 + 1];
	char secret_key[BUS_KEY_Z85 + 1];	/* "": a public certificate */
};

/*
 * Read the certificate file path itself (not path_secret).  need_secret:
 * it must hold a secret key too, whose public key must be its public-key.
 * Returns 0; -1 with err[errsz] = "PATH: what is wrong" (unreadable,
 * "PATH:LINE: not a certificate (...): REASON", no or a bad public-key
 * or secret-key); or -2 with err[errsz] = "PATH: strerror" when the
 * system failed, not the file (EMFILE, ENFILE, ENOMEM, EIO, EINTR).
 */
int cert_load(const char *path, int need_secret, struct cert *c, char *err,
    size_t errsz);

/*
 * Make a new key pair and write it as zcert_save(3) does: path, the
 * public certificate, and path_secret, the secret one (mode 0600).
 * Neither may exist yet.  *c receives the keys.  Returns 0, or -1 with
 * err[errsz] = "PATH: reason".
 */
int cert_generate(const char *path, struct cert *c, char *err, size_t errsz);

/* The public keys of a directory of certificates, sorted. */
struct cert_set {
	char (*keys)[BUS_KEY_Z85 + 1];
	size_t n;
};

/*
 * Read the public certificate of every file in dir (not its dot files,
 * subdirectories or FILE_secret files: the layout of czmq's zcertstore)
 * into *set (released with cert_set_free()).  A file that is no
 * certificate is skipped and reported with skipped(arg, "PATH: what is
 * wrong") (NULL: silently).  Returns 0, or -1 with err[errsz] = "DIR:
 * strerror" when dir cannot be read or "PATH: strerror" when the system
 * failed reading a file in it (cert_load()'s -2; set is then empty).
 */
int cert_dir_load(const char *dir, struct cert_set *set,
    void (*skipped)(void *arg, const char *why), void *arg, char *err,
    size_t errsz);
/* 1 when key (Z85) is in set. */
int cert_set_has(const struct cert_set *set, const char *key);
/* Release set's keys; set is empty afterwards. */
void cert_set_free(struct cert_set *set);

#endif
