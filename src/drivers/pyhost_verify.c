/*
 * pyhost_verify: the start-up check of the pyfunc handlers, in a worker
 * of its own.  See pyhost.h.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proc.h"
#include "pyhost_int.h"
#include "util.h"

/* The next frame from the worker on fd, logging its standard error
 * meanwhile (e, which is closed at its end). */
static int
read_frame(int fd, struct pyerr *e, struct pyproto_buf *in, long long until,
    char *type, const unsigned char **pl, size_t *len)
{
	char buf[65536];

	for (;;) {
		int k = pyproto_next(in, type, pl, len);
		struct pollfd pfd[2] = { { fd, POLLIN, 0 }, { e->fd, POLLIN, 0 } };
		long long left = until - util_mono_ms();
		ssize_t n;
		if (k != 0)
			return k;
		if (left <= 0)
			return -1;
		if (poll(pfd, e->fd >= 0 ? 2 : 1, (int)left) < 0 &&
		    errno != EINTR)
			return -1;
		if (e->fd >= 0 && pfd[1].revents != 0 &&
		    pyhost_err_read(e) != 0)
			pyhost_err_close(e);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		pyproto_feed(in, buf, (size_t)n);
	}
}

/* Ask the worker on fd to resolve each pyfunc handler of t: how many do
 * not (each logged), or -1 when the worker fails. */
static int
resolve_all(int fd, struct pyerr *e, struct pyproto_buf *in, long long until,
    const struct match_table *t)
{
	const unsigned char *pl;
	size_t len;
	char type;
	const struct handler *at = NULL;
	int bad = 0;

	for (size_t i = 0; i < t->nentries; i++) {
		for (size_t k = 0; k < t->entries[i].nhandlers; k++) {
			const struct handler *h = &t->entries[i].handlers[k];
			struct pyproto_result r;
			if (driver_ops(h->driver) != &driver_pyfunc)
				continue;
			at = h;
			if (pyproto_write(fd, 'V', h->handler, strlen(h->handler),
			    NULL, 0, NULL, 0) != 0)
				goto broken;
			do {
				if (read_frame(fd, e, in, until, &type, &pl,
				    &len) != 1)
					goto broken;
			} while (type != 'R');
			if (len < 8 || pyproto_result_get(pl + 8, len - 8, &r) != 0)
				goto broken;
			if (r.status != PY_OK) {
				log_warn("%s: pyfunc handler %s does not resolve: "
				    "%.*s", h->where, h->handler, (int)r.error_len,
				    r.error ? r.error : "");
				bad++;
			}
		}
	}
	return bad;
broken:
	if (util_mono_ms() >= until)
		log_error("%s: python worker gave no answer in time while "
		    "importing pyfunc handler %s (an import that hangs or is "
		    "slow?)", at->where, at->handler);
	else
		log_error("%s: python worker died while importing pyfunc "
		    "handler %s", at->where, at->handler);
	return -1;
}

int
pyhost_verify(const char *exe, const char *handlers_dir,
    const struct match_table *t, long timeout_ms)
{
	static struct log_ratelimit rl = PYHOST_ERR_RL;
	struct pyerr err = { .fd = -1, .rl = &rl };
	struct pyproto_buf in = { 0 };
	long long until = util_mono_ms() + timeout_ms;
	const unsigned char *pl;
	struct proc_pipes pp;
	enum proc_stage stage;
	struct pyshm *shm;
	struct wspec ws;
	size_t len;
	char type;
	int fd, shmfd, bad = 0, e, errp[2] = { -1, -1 };
	pid_t pid = -1;

	if (driver_handlers(t, &driver_pyfunc, NULL) == 0)
		return 0;
	shm = pyproto_shm_new(&shmfd);
	if (shm != NULL && pyhost_err_pipe(errp) == 0 &&
	    pyhost_wspec_init(&ws, exe, handlers_dir, 40, shmfd) == 0) {
		/* what an import writes to descriptor 2: logged, escaped */
		ws.sp.fds[ws.sp.nfds++] = (struct proc_fd){ errp[1], 2 };
		pid = proc_start(&ws.sp, &pp, &stage);
		e = errno;
		pyhost_wspec_done(&ws, pid > 0);
		errno = e;
	}
	if (errp[1] >= 0)
		close(errp[1]);
	err.fd = errp[0];
	err.pid = pid;
	if (pid < 0)
		log_error("cannot start a python worker: %s", strerror(errno));
	if (shm != NULL)
		close(shmfd);
	if (pid < 0) {
		pyhost_err_close(&err);
		pyproto_shm_free(shm);
		return -1;
	}
	fd = ws.sv[0];
	if (read_frame(fd, &err, &in, until, &type, &pl, &len) != 1 ||
	    type != 'H') {
		log_error("python worker did not start within %ld ms", timeout_ms);
		bad = -1;
	} else
		bad = resolve_all(fd, &err, &in, until, t);
	close(fd);
	kill(pid, SIGKILL);
	proc_wait(pid);
	pyhost_err_close(&err);
	log_limited_end(&rl);
	pyproto_buf_free(&in);
	pyproto_shm_free(shm);
	return bad;
}

