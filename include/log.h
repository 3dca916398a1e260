/*
 * log: one logging module for the whole suite (after OpenBSD log.c).
 *
 * Lines go to stderr in the foreground, in the form
 *   2026-11-29T14:20:00.123Z event-router[123] INFO message
 * or to syslog(3) (facility LOG_DAEMON) once log_to_syslog() was called.
 * The level is checked before anything is formatted; errno is preserved
 * across every call.  Not async-signal-safe: never call from a handler.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef ER_LOG_H
#define ER_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARNING, LOG_LVL_ERROR };

/* name: program name shown in every line (not copied: must outlive logging). */
void log_init(const char *name, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Switch to syslog(3), facility LOG_DAEMON, ident = the name from log_init. */
void log_to_syslog(void);
/* The name given to log_init ("event-reactor" before it). */
const char *log_ident(void);
/* The socket syslog(3) sends to: glibc's _PATH_LOG, "/dev/log". */
extern const char log_syslog_path[];
/*
 * Whether syslog(3) has a listener: 1 when a socket connects to
 * log_syslog_path (datagram, else stream, as glibc's syslog tries), 0
 * when it does not (no such file, or a socket nobody listens on).  A
 * listener that never reads cannot be told from one that does.
 */
int log_syslog_reachable(void);

/*
 * in[inlen] as a line may show it, into out[outsz] (outsz >= 8;
 * NUL-terminated): a control character but tab (C0, DEL, and C1, U+0080
 * to U+009F) and a byte that is not part of a UTF-8 character are written
 * as \xNN, each byte, so that text from outside (an event's, a handler's
 * output, a file's name) cannot end the line, forge one or hide one (as
 * syslogd's vis(3), rsyslog's #NNN).  Cut at a character's start to fit,
 * then "..." at the end, also when cut is set (in was cut already).
 * Returns the length.  Every logged line goes through it.
 */
size_t log_escape(const char *in, size_t inlen, int cut, char *out,
    size_t outsz);
/* The same without "...": as much of in as fits (whole characters), with
 * *used set to the bytes of in taken, so that the rest can follow. */
size_t log_escape_some(const char *in, size_t inlen, char *out,
    size_t outsz, size_t *used);

/*
 * Parse "DEBUG", "INFO", "WARNING" (or "WARN"), "ERROR", any case.
 * Returns 0 and sets *out, or -1 for anything else.
 */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/*
 * Rate limiting for messages that outside input can trigger at will
 * (rejected events, store errors).  At most `burst` lines per `interval`
 * seconds pass; the first line after a window that suppressed some says how
 * many were suppressed.  One struct per kind of message, zero-initialised.
 */
struct log_ratelimit {
	int interval;		/* seconds */
	int burst;		/* lines per interval */
	const char *what;	/* names the kind in the summary, or NULL */
	time_t window_start;
	int printed;
	unsigned long suppressed;
	enum log_level level;	/* of the lines suppressed */
};

void log_limited(struct log_ratelimit *rl, enum log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * Say how many lines the window that just ended suppressed, if it has
 * ended: call it from a loop that runs at least every few seconds, so the
 * count is not held back until the next limited line.
 */
void log_limited_flush(struct log_ratelimit *rl);
/* Say how many lines were suppressed now, the window over or not: when
 * no more of them can come (their source is gone, the daemon stops). */
void log_limited_end(struct log_ratelimit *rl);

#endif
