/* util: small helpers shared by every module (time, strings, files). */
#ifndef ER_UTIL_H
#define ER_UTIL_H

#include <stddef.h>

/* The plural's "s" of a count in a message: "%zu pattern%s", n, PL(n). */
#define PL(n) ((n) == 1 ? "" : "s")

/* Wall clock, seconds since the epoch, microsecond resolution. */
double util_now(void);
/* Monotonic clock in milliseconds (CLOCK_MONOTONIC), for deadlines. */
long long util_mono_ms(void);
/* Monotonic clock in seconds, nanosecond resolution, for durations. */
double util_mono(void);
/* Monotonic clock in nanoseconds, comparable between processes. */
long long util_mono_ns(void);
/* *ts set to ms (>= 0) milliseconds from now on clock (CLOCK_REALTIME,
 * CLOCK_MONOTONIC): a deadline for pthread_cond_timedwait() and kin. */
struct timespec;
void util_deadline(struct timespec *ts, int clock, long ms);

/*
 * Read a whole file into a new NUL-terminated buffer (caller frees).
 * Returns NULL with errno set on failure; *len gets the length.
 * max: refuse files longer than this many bytes (EFBIG); 0 means no limit.
 * A FIFO or pipe is waited on as long as its writer takes.
 */
char *util_read_file(const char *path, size_t max, size_t *len);

/* The directory holding path, as a new string ("." or "/" at the top). */
char *util_parent_dir(const char *path);

/*
 * Create the directory holding path when it is missing, one level, mode
 * 0750 (the store's file, event-sub's journal).  *dir gets it (a new
 * string, util_parent_dir()).  Returns 1 when it made it, 0 when it was
 * there, -1 with mkdir(2)'s errno.
 */
int util_make_parent(const char *path, char **dir);

/* The longest util_read_file_bounded() waits, in ms. */
#define UTIL_READ_WAIT_MS 5000

/*
 * util_read_file() for a daemon's own files, reread on SIGHUP: opening
 * never blocks (a FIFO without a writer reads as empty), and a FIFO, pipe
 * or device not at its end within UTIL_READ_WAIT_MS in all fails with
 * ETIMEDOUT.
 */
char *util_read_file_bounded(const char *path, size_t max, size_t *len);

/*
 * Split a command line into argv with shell-like quoting and no expansion:
 * blanks separate words; '...' keeps everything literally; "..." keeps
 * everything but \" \\ \$ \` and \<newline> (as sh(1) does); a backslash
 * outside quotes escapes the next character.  No globbing, no variables,
 * no command substitution, no operators: ';', '|', '$' are plain text.
 * Returns a NULL-terminated vector in one allocation (free() it once), with
 * *argc set, or NULL with err[errsz] saying why (unterminated quote,
 * empty command) and *errpos the byte offset of the problem.
 */
char **util_split_command(const char *cmd, int *argc, char *err, size_t errsz,
    size_t *errpos);

/*
 * p made absolute against the current directory (no symlink resolution),
 * its empty and "." components dropped ("./a//b" -> "CWD/a/b"; ".." is
 * kept, and so is a last "/", "a/." giving "CWD/a/"), in a new string
 * (caller frees); NULL and "" are returned as they are.  The daemons
 * call it on every path before -D changes the directory to /.
 */
char *util_abspath(const char *p);
/* 1 when p can only name a directory, whatever is there: it ends with
 * "/", or its last component is "." or "..". */
int util_names_dir(const char *p);

/*
 * The password of a URL "scheme://user:password@host...", in place: each
 * of its bytes made '*' (the length kept, so an argv string shrinks in
 * no one's hands).  Returns 1 when there was one, 0 otherwise (url
 * untouched).
 */
int util_hide_password(char *url);

/*
 * Hand the heap's free pages back to the system: jemalloc's purge of every
 * arena when linked with it (HAVE_JEMALLOC, see Makefile), else glibc's
 * malloc_trim(0).  For after a burst; costs a few milliseconds.
 */
void util_release_memory(void);

/*
 * Open /dev/null on each of descriptors 0, 1 and 2 that is closed.  Call
 * it first in main(): a socket, eventfd or file opened later would
 * otherwise take the free number, and what is written to standard output
 * or error would go into it (OpenSSH's sanitise_stdfd()).  Returns a
 * mask, bit n set when descriptor n was closed, or -1 with errno set when
 * /dev/null cannot be opened.
 */
int util_std_fds(void);

/* strdup that aborts on memory exhaustion; NULL in, NULL out. */
char *xstrdup(const char *s);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);

#endif
