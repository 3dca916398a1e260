/* log: stderr or syslog, levels, rate limiting.  See include/log.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

const char log_syslog_path[] = _PATH_LOG;	/* <syslog.h>: "/dev/log" */

static const char *log_name = "event-reactor";
static enum log_level log_level = LOG_LVL_INFO;
static int log_syslog;

static const char *const level_names[] = { "DEBUG", "INFO", "WARNING", "ERROR" };
static const int level_prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

void
log_init(const char *name, enum log_level level)
{
	log_name = name;
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_to_syslog(void)
{
	if (!log_syslog)
		openlog(log_name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
}

const char *
log_ident(void)
{
	return log_name;
}

int
log_syslog_reachable(void)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un sun;
	int saved_errno = errno, ok = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]) && !ok; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0), e;
		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		e = errno;
		close(fd);
		if (!ok && e != EPROTOTYPE)
			break;	/* only a wrong type is worth a retry */
	}
	errno = saved_errno;
	return ok;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	if (s == NULL)
		return -1;
	for (int i = 0; i <= LOG_LVL_ERROR; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "WARN") == 0) {
		*out = LOG_LVL_WARNING;
		return 0;
	}
	return -1;
}

/*
 * Bytes of the UTF-8 character at s[0..n) (RFC 3629: no overlong form, no
 * surrogate, nothing past U+10FFFF), or 0 when they are not one.
 */
static size_t
utf8_char(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 &&
	    s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	/* the second byte's range when it is narrower than 80..bf */
	unsigned char lo = s[0] == 0xe0 ? 0xa0 : s[0] == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = s[0] == 0xed ? 0x9f : s[0] == 0xf4 ? 0x8f : 0xbf;

	if (len == 0 || len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

size_t
log_escape(const char *in, size_t inlen, int cut, char *out, size_t outsz)
{
	size_t used, n = log_escape_some(in, inlen, out, outsz - 3, &used);

	if (cut || used < inlen) {
		memcpy(out + n, "...", 4);
		n += 3;
	}
	return n;
}

/*
 * c[0..len) is U+2028 or U+2029 (line and paragraph separators: some
 * viewers break the line there) or one of Unicode's bidirectional
 * formatting characters (UAX #9, section 2: U+061C, U+200E, U+200F,
 * U+202A to U+202E, U+2066 to U+2069), which reorder what a terminal
 * shows of the rest of the line.
 */
static int
layout_char(const unsigned char *c, size_t len)
{
	if (len == 2)
		return c[0] == 0xd8 && c[1] == 0x9c;
	if (len != 3 || c[0] != 0xe2)
		return 0;
	if (c[1] == 0x80)
		return c[2] == 0x8e || c[2] == 0x8f ||
		    (c[2] >= 0xa8 && c[2] <= 0xae);
	return c[1] == 0x81 && c[2] >= 0xa6 && c[2] <= 0xa9;
}

size_t
log_escape_some(const char *in, size_t inlen, char *out, size_t outsz,
    size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t n = 0, i = 0;

	while (i < inlen) {
		size_t len = s[i] < 0x80 ? 1 : utf8_char(s + i, inlen - i);
		/* C0, DEL, C1 (U+0080..U+009F), bytes that are no UTF-8,
		 * separators and bidirectional controls */
		int esc = (s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f ||
		    len == 0 || (s[i] == 0xc2 && s[i + 1] < 0xa0) ||
		    layout_char(s + i, len);
		size_t take = len == 0 ? 1 : len, need = esc ? 4 * take : take;

		if (n + need > outsz - 1)
			break;
		for (size_t k = 0; k < take; k++) {
			if (esc) {
				out[n++] = '\\';
				out[n++] = 'x';
				out[n++] = hex[s[i + k] >> 4];
				out[n++] = hex[s[i + k] & 15];
			} else
				out[n++] = (char)s[i + k];
		}
		i += take;
	}
	out[n] = '\0';
	*used = i;
	return n;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char msg[4096], line[4096];
	int n, m;

	if (level < log_level)
		return;
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m < 0)
		msg[0] = '\0';
	if (log_syslog) {
		log_escape(msg, strlen(msg), m >= (int)sizeof(msg), line,
		    sizeof(line));
		syslog(level_prio[level], "%s", line);
		errno = saved_errno;
		return;
	}

	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%ld] %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), log_name,
	    (long)getpid(), level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line) / 2)
		n = 0;
	n += (int)log_escape(msg, strlen(msg), m >= (int)sizeof(msg), line + n,
	    sizeof(line) - (size_t)n - 1);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
	errno = saved_errno;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

/* Say how many lines rl suppressed in the last secs seconds, and start
 * a new window at now. */
static void
say_suppressed(struct log_ratelimit *rl, long long secs, time_t now)
{
	log_msg(rl->level, "%lu %s suppressed in the last %lld s",
	    rl->suppressed, rl->what ? rl->what : "similar messages", secs);
	rl->window_start = now;
	rl->printed = 0;
	rl->suppressed = 0;
}

void
log_limited_flush(struct log_ratelimit *rl)
{
	time_t now;

	if (rl->suppressed == 0)
		return;
	now = time(NULL);
	if (now - rl->window_start < (rl->interval > 0 ? rl->interval : 10))
		return;
	say_suppressed(rl, rl->interval, now);
}

void
log_limited_end(struct log_ratelimit *rl)
{
	time_t now = time(NULL);

	if (rl->suppressed > 0)
		say_suppressed(rl, (long long)(now - rl->window_start), now);
}

void
log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level < log_level)
		return;
	if (rl->interval <= 0)
		rl->interval = 10;
	if (rl->burst <= 0)
		rl->burst = 10;
	log_limited_flush(rl);
	if (time(NULL) - rl->window_start >= rl->interval) {
		rl->window_start = time(NULL);
		rl->printed = 0;
	}
	if (rl->printed >= rl->burst) {
		rl->suppressed++;
		rl->level = level;
		return;
	}
	rl->printed++;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
