/*
 * cert: czmq certificate files.  See cert.h.  zconfig reads the ZPL
 * text; the keys are checked here, since zcert_load(3) takes a bad key
 * for zeros.  czmq 4.2.1's reader prints a syntax error on stdout
 * (zclock_log(), a printf) quoting the rest of the bad line, a
 * secret-key's among them: zpl_load() keeps that off stdout and reports
 * the line and the reason only.  Files over
 * CERT_FILE_MAX bytes are refused.  zcertstore is not
 * used for the directory: it reloads by itself on a lookup after the
 * directory changed, and the router reloads on SIGHUP only.
 */
#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cert.h"
#include "util.h"

/* A certificate is a few hundred bytes; refuse more than this. */
#define CERT_FILE_MAX 65536

/* "PATH: " then the rest into err; returns -1. */
static int
fail(char *err, size_t errsz, const char *path, const char *why)
{
	snprintf(err, errsz, "%s: %s", path, why);
	return -1;
}

/*
 * zconfig_str_load(text) into *root with stdout pointed at a memfd
 * meanwhile; on a syntax error *line and why get zconfig's "(LINE)
 * REASON" without the quoted text (*line 0: none printed).  A memfd and
 * not a pipe: zconfig quotes up to a whole line (CERT_FILE_MAX bytes),
 * more than a pipe holds, and would block.  Called while no other thread
 * writes to stdout (configuration loading, the router's SIGHUP).
 * Returns 0, or -1 with errno when the descriptors cannot be had
 * (EMFILE...): zconfig is then not run, since it could print the text.
 */
static int
zpl_load(const char *text, zconfig_t **root, int *line, char why[128])
{
	char out[512], *at, *quote;
	int tmp, mfd, saved, e;
	ssize_t n;

	*root = NULL;
	*line = 0;
	why[0] = '\0';
	fflush(stdout);
	/* both above 2, so as not to stand in for a closed stdin or stdout;
	 * a closed stdout (saved -1) is closed again afterwards */
	saved = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (saved < 0 && errno != EBADF)
		return -1;
	mfd = -1;
	if ((tmp = memfd_create("er-zconfig", MFD_CLOEXEC)) >= 0) {
		mfd = fcntl(tmp, F_DUPFD_CLOEXEC, 3);
		close(tmp);
	}
	if (mfd < 0 || dup2(mfd, STDOUT_FILENO) < 0) {
		e = errno;
		if (saved >= 0)
			close(saved);
		if (mfd >= 0)
			close(mfd);
		errno = e;
		return -1;
	}
	*root = zconfig_str_load(text);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
	} else
		close(STDOUT_FILENO);
	n = pread(mfd, out, sizeof(out) - 1, 0);
	close(mfd);
	out[n > 0 ? n : 0] = '\0';
	/* "YY-MM-DD HH:MM:SS E (zconfig): (3) invalid syntax 'TEXT'", or
	 * "(3) '/' not valid at name start or end", "(3) missing '" */
	if ((at = strstr(out, "(zconfig): (")) == NULL ||
	    sscanf(at, "(zconfig): (%d) %127[^\n]", line, why) != 2)
		return 0;
	/* the text quoted after the reason, never a lone quote character */
	if ((quote = strstr(why, " '")) != NULL && strlen(quote) > 2)
		*quote = '\0';
	n = (ssize_t)strlen(why);
	while (n > 0 && why[n - 1] == ' ')
		why[--n] = '\0';
	return 0;
}

/* Errors of the system, not of the file: the file may well be good. */
static int
system_error(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM || e == EIO ||
	    e == EINTR;
}

/* key ("public-key", "secret-key") of /curve into out; 0, or -1. */
static int
get_key(zconfig_t *root, const char *key, char out[BUS_KEY_Z85 + 1],
    const char *path, char *err, size_t errsz)
{
	char where[32], why[128];
	const char *v;

	snprintf(where, sizeof(where), "curve/%s", key);
	v = zconfig_get(root, where, NULL);
	if (v == NULL) {
		snprintf(why, sizeof(why), "no %s in its \"curve\" section",
		    key);
		return fail(err, errsz, path, why);
	}
	if (!bus_key_valid(v)) {
		snprintf(why, sizeof(why), "%s is not a CURVE key (%d "
		    "characters of Z85)", key, BUS_KEY_Z85);
		return fail(err, errsz, path, why);
	}
	memcpy(out, v, BUS_KEY_Z85 + 1);
	return 0;
}

int
cert_load(const char *path, int need_secret, struct cert *c, char *err,
    size_t errsz)
{
	char pub[BUS_KEY_Z85 + 1], *text, why[128];
	struct stat st;
	zconfig_t *root;
	size_t len;
	int rc = -1, line = 0;

	memset(c, 0, sizeof(*c));
	if (stat(path, &st) != 0 || access(path, R_OK) != 0)
		return fail(err, errsz, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, errsz, path, "not a regular file");
	/* zconfig_load() leaks its file handle on a syntax error (czmq
	 * 4.2.1): the text is read here */
	if ((text = util_read_file(path, CERT_FILE_MAX, &len)) == NULL) {
		rc = system_error(errno) ? -2 : -1;
		fail(err, errsz, path, strerror(errno));
		return rc;
	}
	root = NULL;
	if (strlen(text) == len && zpl_load(text, &root, &line, why) != 0) {
		fail(err, errsz, path, strerror(errno));
		free(text);
		return -2;
	}
	free(text);
	if (root == NULL && line > 0) {
		snprintf(err, errsz, "%s:%d: not a certificate (czmq's ZPL "
		    "text: \"metadata\" and \"curve\" sections): %s", path,
		    line, why);
		return -1;
	}
	if (root == NULL)
		return fail(err, errsz, path, "not a certificate (czmq's ZPL "
		    "text: \"metadata\" and \"curve\" sections)");
	if (get_key(root, "public-key", c->public_key, path, err, errsz) != 0)
		goto out;
	if (!need_secret) {
		rc = 0;
		goto out;
	}
	if (get_key(root, "secret-key", c->secret_key, path, err, errsz) != 0)
		goto out;
	if (bus_curve_public(c->secret_key, pub) != 0 ||
	    strcmp(pub, c->public_key) != 0) {
		fail(err, errsz, path, "its public-key is not that of its "
		    "secret-key");
		goto out;
	}
	rc = 0;
out:
	zconfig_destroy(&root);
	return rc;
}

/* Create path, which must not exist, with mode (less the umask): 0 or -1
 * with err[errsz]. */
static int
create_new(const char *path, mode_t mode, char *err, size_t errsz)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);

	if (fd < 0)
		return fail(err, errsz, path, errno == EEXIST ?
		    "exists already; not overwritten" : strerror(errno));
	close(fd);
	return 0;
}

int
cert_generate(const char *path, struct cert *c, char *err, size_t errsz)
{
	char secret[4096];
	zcert_t *z;
	int rc;

	snprintf(secret, sizeof(secret), "%s_secret", path);
	/* both made here first, O_EXCL: an existing name, a symbolic link
	 * even to nothing, is refused, never written through */
	if (create_new(path, 0644, err, errsz) != 0)
		return -1;
	if (create_new(secret, 0600, err, errsz) != 0) {
		unlink(path);
		return -1;
	}
	if ((z = zcert_new()) == NULL) {
		unlink(path);
		unlink(secret);
		return fail(err, errsz, path, "cannot make a key pair");
	}
	snprintf(c->public_key, sizeof(c->public_key), "%s",
	    zcert_public_txt(z));
	snprintf(c->secret_key, sizeof(c->secret_key), "%s",
	    zcert_secret_txt(z));
	/* into the files made above, whose modes stay */
	rc = zcert_save(z, path);
	zcert_destroy(&z);
	if (rc != 0) {
		fail(err, errsz, path, strerror(errno ? errno : EIO));
		unlink(path);
		unlink(secret);
		return -1;
	}
	return 0;
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Whether dir's entry name is a public certificate to read. */
static int
wanted(const char *dir, const char *name)
{
	size_t n = strlen(name);
	char path[4096];
	struct stat st;

	if (name[0] == '.' || (n >= 7 && strcmp(name + n - 7, "_secret") == 0))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int
cert_dir_load(const char *dir, struct cert_set *set,
    void (*skipped)(void *arg, const char *why), void *arg, char *err,
    size_t errsz)
{
	char path[4096], why[4096 + 256];
	struct dirent *de;
	struct cert c;
	size_t cap = 0;
	DIR *d;

	set->keys = NULL;
	set->n = 0;
	if ((d = opendir(dir)) == NULL)
		return fail(err, errsz, dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!wanted(dir, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		switch (cert_load(path, 0, &c, why, sizeof(why))) {
		case 0:
			break;
		case -2:	/* not the file's fault: no key dropped */
			closedir(d);
			cert_set_free(set);
			snprintf(err, errsz, "%s", why);
			return -1;
		default:
			if (skipped != NULL)
				skipped(arg, why);
			continue;
		}
		if (set->n == cap) {
			cap = cap ? 2 * cap : 16;
			set->keys = xrealloc(set->keys, cap * sizeof(*set->keys));
		}
		memcpy(set->keys[set->n++], c.public_key, BUS_KEY_Z85 + 1);
	}
	closedir(d);
	if (set->n > 0)
		qsort(set->keys, set->n, sizeof(*set->keys), key_cmp);
	return 0;
}

int
cert_set_has(const struct cert_set *set, const char *key)
{
	return set->n > 0 && bsearch(key, set->keys, set->n,
	    sizeof(*set->keys), key_cmp) != NULL;
}

void
cert_set_free(struct cert_set *set)
{
	free(set->keys);
	set->keys = NULL;
	set->n = 0;
}
