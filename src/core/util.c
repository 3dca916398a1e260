/* util: time, files, command splitting.  See include/util.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

#include "util.h"

#define STR_(x) #x
#define STR(x) STR_(x)

#ifdef HAVE_JEMALLOC
/*
 * jemalloc's options, read at its start: pages freed and left unused go
 * back to the system after about a second, not ten (jemalloc's default),
 * so that a burst's peak does not linger (the router's peak under a
 * million-event burst: about 140 MB instead of 200).  MALLOC_CONF in the
 * environment still overrides it.
 */
const char *malloc_conf = "dirty_decay_ms:1000";
#endif

void
util_release_memory(void)
{
#ifdef HAVE_JEMALLOC
	mallctl("arena." STR(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
#else
	malloc_trim(0);
#endif
}

int
util_std_fds(void)
{
	int closed = 0, nul;

	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* the lowest free number: fd itself */
		if ((nul = open("/dev/null", O_RDWR)) < 0)
			return -1;
		if (nul != fd) {	/* not reached: fd was free */
			close(nul);
			errno = EBADF;
			return -1;
		}
		closed |= 1 << fd;
	}
	return closed;
}

double
util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

long long
util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
util_hide_password(char *url)
{
	char *user = strstr(url, "://"), *at, *colon;

	if (user == NULL)
		return 0;
	user += 3;
	at = user + strcspn(user, "@/");
	if (*at != '@' || (colon = memchr(user, ':', (size_t)(at - user))) ==
	    NULL || colon + 1 == at)
		return 0;
	memset(colon + 1, '*', (size_t)(at - colon - 1));
	return 1;
}

void
util_deadline(struct timespec *ts, int clock, long ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

double
util_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long
util_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		abort();
	return p;
}

char *
xstrdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

char *
util_parent_dir(const char *path)
{
	char *dir, *slash;

	if (strchr(path, '/') == NULL)
		return xstrdup(".");
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return dir;
}

int
util_make_parent(const char *path, char **dir)
{
	*dir = util_parent_dir(path);
	if (mkdir(*dir, 0750) == 0)
		return 1;
	return errno == EEXIST ? 0 : -1;
}

/* wait_ms < 0: open and read blocking, as long as it takes */
static char *
read_file(const char *path, size_t max, size_t *len, long wait_ms)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC |
	    (wait_ms >= 0 ? O_NONBLOCK : 0));
	long long deadline = util_mono_ms() + wait_ms, left;
	size_t cap = 4096, n = 0;
	struct pollfd pfd;
	char *buf;
	ssize_t r;

	if (fd < 0)
		return NULL;
	pfd.fd = fd;
	pfd.events = POLLIN;
	buf = xmalloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EAGAIN && wait_ms < 0) {
			/* a descriptor left non-blocking (/dev/stdin) */
			poll(&pfd, 1, -1);
			continue;
		}
		if (r < 0 && errno == EAGAIN) {
			/* a pipe or device: wait for its writer, bounded */
			left = deadline - util_mono_ms();
			if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
				errno = ETIMEDOUT;
				goto fail;
			}
			continue;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (max != 0 && n > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:;
	int e = errno;
	close(fd);
	free(buf);
	errno = e;
	return NULL;
}

char *
util_read_file(const char *path, size_t max, size_t *len)
{
	return read_file(path, max, len, -1);
}

char *
util_read_file_bounded(const char *path, size_t max, size_t *len)
{
	return read_file(path, max, len, UTIL_READ_WAIT_MS);
}

/*
 * The inside of a double-quoted word from cmd[i] (after the quote) to the
 * closing quote or len, copied to *w as sh(1) reads it: a backslash
 * escapes only " \\ $ ` and a newline (removed).  Returns the index of the
 * closing quote, len when there is none.
 */
static size_t
dquoted(const char *cmd, size_t len, size_t i, char **w)
{
	while (i < len && cmd[i] != '"') {
		if (cmd[i] == '\\' && i + 1 < len &&
		    strchr("\"\\$`\n", cmd[i + 1]) != NULL) {
			if (cmd[i + 1] != '\n')
				*(*w)++ = cmd[i + 1];
			i += 2;
		} else {
			*(*w)++ = cmd[i++];
		}
	}
	return i;
}

char **
util_split_command(const char *cmd, int *argc, char *err, size_t errsz,
    size_t *errpos)
{
	size_t len = strlen(cmd), i = 0, nwords = 0;
	/* worst case: every other byte starts a word */
	size_t maxwords = len / 2 + 2;
	char **argv;
	char *out, *w;
	int in_word = 0;

	argv = xmalloc(maxwords * sizeof(char *) + len + maxwords);
	out = (char *)(argv + maxwords);
	w = out;
	while (i < len) {
		char c = cmd[i];
		if (c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				*w++ = '\0';
				in_word = 0;
			}
			i++;
			continue;
		}
		if (!in_word) {
			argv[nwords++] = w;
			in_word = 1;
		}
		if (c == '\'') {
			size_t start = i++;
			while (i < len && cmd[i] != '\'')
				*w++ = cmd[i++];
			if (i == len) {
				snprintf(err, errsz, "unterminated single quote");
				*errpos = start;
				goto fail;
			}
			i++;
		} else if (c == '"') {
			size_t start = i++;
			i = dquoted(cmd, len, i, &w);
			if (i == len) {
				snprintf(err, errsz, "unterminated double quote");
				*errpos = start;
				goto fail;
			}
			i++;
		} else if (c == '\\') {
			if (i + 1 == len) {
				snprintf(err, errsz, "backslash at the end");
				*errpos = i;
				goto fail;
			}
			if (cmd[i + 1] != '\n')
				*w++ = cmd[i + 1];
			i += 2;
		} else {
			*w++ = c;
			i++;
		}
	}
	if (in_word)
		*w++ = '\0';
	if (nwords == 0) {
		snprintf(err, errsz, "empty command");
		*errpos = 0;
		goto fail;
	}
	argv[nwords] = NULL;
	*argc = (int)nwords;
	return argv;
fail:
	free(argv);
	return NULL;
}

/*
 * Drop p's empty and "." components in place ("a//./b" -> "a/b"); ".."
 * stays, since through a symbolic link it is not the lexical parent.  A
 * last "/" is put back when dir is set (p named a directory: "a/").
 */
static void
path_tidy(char *p, int dir)
{
	char *w = p, *r = p;
	int abs = *p == '/';

	while (*r != '\0') {
		size_t n = strcspn(r, "/");

		if (n == 0 || (n == 1 && r[0] == '.')) {
			r += n + (r[n] == '/');
			continue;
		}
		if (w > p || abs)
			*w++ = '/';
		memmove(w, r, n);
		w += n;
		r += n + (r[n] == '/');
	}
	if (w == p)
		*w++ = abs ? '/' : '.';
	else if (dir)
		*w++ = '/';
	*w = '\0';
}

int
util_names_dir(const char *p)
{
	const char *last = strrchr(p, '/');

	last = last != NULL ? last + 1 : p;
	return (p[0] != '\0' && last[0] == '\0') || strcmp(last, ".") == 0 ||
	    strcmp(last, "..") == 0;
}

char *
util_abspath(const char *p)
{
	char cwd[4096], *out;
	size_t len;
	int dir;

	if (p == NULL)
		return NULL;
	len = strlen(p);
	dir = len > 1 && (p[len - 1] == '/' || (p[len - 1] == '.' &&
	    p[len - 2] == '/'));
	if (p[0] == '\0')	/* not set */
		return xstrdup(p);
	if (p[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		out = xstrdup(p);
	else if (asprintf(&out, "%s/%s", cwd, p) < 0)
		abort();
	path_tidy(out, dir);
	return out;
}
