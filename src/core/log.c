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
 * msg's bytes into out[outsz] (NUL-terminated), each control character
 * but tab as \xNN: text from outside (an event's, a handler's print)
 * cannot end a line or start a forged one, nor hide one from a terminal
 * (as syslogd's vis(3), rsyslog's #NNN).  Cut to fit, with "..." at the
 * end when cut (or when msg was).  Returns the length.
 */
static size_t
escape_controls(const char *msg, int cut, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *msg != '\0'; msg++) {
		unsigned char c = (unsigned char)*msg;
		int ctl = (c < 0x20 && c != '\t') || c == 0x7f;

		if (n + (ctl ? 4 : 1) > outsz - 4) {
			cut = 1;
			break;
		}
		if (ctl) {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else
			out[n++] = (char)c;
	}
	if (cut) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
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
		escape_controls(msg, m >= (int)sizeof(msg), line, sizeof(line));
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
	n += (int)escape_controls(msg, m >= (int)sizeof(msg), line + n,
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

void
log_limited_flush(struct log_ratelimit *rl)
{
	time_t now;

	if (rl->suppressed == 0)
		return;
	now = time(NULL);
	if (now - rl->window_start < (rl->interval > 0 ? rl->interval : 10))
		return;
	log_msg(rl->level, "%lu %s suppressed in the last %d s", rl->suppressed,
	    rl->what ? rl->what : "similar messages", rl->interval);
	rl->window_start = now;
	rl->printed = 0;
	rl->suppressed = 0;
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
