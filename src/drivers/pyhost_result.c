/*
 * pyhost_result: what the Python workers send back: frames on their
 * socket (hello, log lines, large results) and results in the shared call
 * slots (pyproto.h), each reported as a struct run_result.  See
 * pyhost_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "proc.h"
#include "pyhost_int.h"
#include "util.h"

/* PYSLOT_* of call seq in w's slots, or -1 when the slot is another's. */
int
pyhost_call_state(const struct worker *w, uint64_t seq)
{
	uint64_t v = atomic_load(&SLOT(w, seq)->state);

	return v >> 3 == seq ? (int)(v & 7) : -1;
}

/* How long w's oldest call has been running (ns), 0 when it is not. */
long long
pyhost_running_ns(const struct worker *w, long long now)
{
	if (w->inflight == 0 || pyhost_call_state(w, w->oldest) != PYSLOT_TAKEN)
		return 0;
	return now - atomic_load_explicit(&SLOT(w, w->oldest)->started_ns,
	    memory_order_relaxed);
}

static enum log_level
our_level(int pylevel)
{
	return pylevel >= 40 ? LOG_LVL_ERROR : pylevel >= 30 ? LOG_LVL_WARNING :
	    pylevel >= 20 ? LOG_LVL_INFO : LOG_LVL_DEBUG;
}

static void
capture_line(struct proc_capture *c, const char *s, size_t n)
{
	proc_capture_add(c, s, n);
	proc_capture_add(c, "\n", 1);
}

/* w no longer has c in flight. */
void
pyhost_drop_call(struct worker *w, struct call *c)
{
	free(c->out.buf);
	free(c->err.buf);
	w->inflight--;
	w->inflight_bytes -= c->bytes;
	memset(c, 0, sizeof(*c));
	while (w->oldest < w->next_seq && CALL(w, w->oldest)->seq != w->oldest)
		w->oldest++;
}

/* Report call c of w and drop it.  data, error: NUL-terminated or NULL. */
static void
finish(struct pyhost *p, struct worker *w, struct call *c,
    enum run_status status, double started_at, double duration_ms,
    const char *data, const char *error)
{
	struct run_result res;
	void *tag = c->tag;
	char *out, *err;

	driver_result(&res, c->h, c->ev);
	res.status = status;
	res.started_at = started_at;
	res.duration_ms = duration_ms >= 0 ? duration_ms : 0;
	proc_capture_end(&c->out);
	proc_capture_end(&c->err);
	res.out = out = c->out.buf;
	res.out_len = c->out.len;
	res.err = err = c->err.buf;
	res.err_len = c->err.len;
	res.error = error;
	res.data = data;
	c->out.buf = c->err.buf = NULL;	/* ours until done() returns */
	pyhost_drop_call(w, c);
	p->done(tag, &res, p->arg);
	free(out);
	free(err);
}

/* Report c, which event-sub ended (it never returned a result): its
 * times are those of its slot when the worker had taken it. */
void
pyhost_finish_here(struct pyhost *p, struct worker *w, struct call *c,
    enum run_status status, const char *error)
{
	long long now = util_mono_ns(), ran = 0;

	if (w->shm != NULL && pyhost_call_state(w, c->seq) >= PYSLOT_TAKEN)
		ran = now - atomic_load_explicit(&SLOT(w, c->seq)->started_ns,
		    memory_order_relaxed);
	if (ran < 0)
		ran = 0;
	finish(p, w, c, status, util_now() - (double)ran / 1e9,
	    (double)ran / 1e6, NULL, error);
}

/* Report c from the result the worker sent. */
static void
finish_result(struct pyhost *p, struct worker *w, struct call *c,
    const struct pyproto_result *r)
{
	static const enum run_status status[] = {
		[PY_OK] = RUN_OK,
		[PY_FAILED] = RUN_FAILED,
		[PY_ERROR] = RUN_ERROR,
	};
	char small[2 * PYSHM_INLINE + 2], *mem = small, *d = NULL, *e = NULL;
	size_t need = r->data_len + r->error_len + 2;
	double ms = r->duration_ms;

	if (need > sizeof(small))
		mem = xmalloc(need);
	if (r->data != NULL) {
		d = mem;
		memcpy(d, r->data, r->data_len);
		d[r->data_len] = '\0';
	}
	if (r->error != NULL) {
		e = mem + r->data_len + 1;
		memcpy(e, r->error, r->error_len);
		e[r->error_len] = '\0';
	}
	if (r->tb != NULL)
		proc_capture_add(&c->err, r->tb, r->tb_len);
	/* recent call time: up at once, down slowly (depth()) */
	if (ms >= 0)
		w->slow_ms = w->slow_ms < 0 || ms > w->slow_ms ? ms :
		    w->slow_ms + (ms - w->slow_ms) / 16;
	finish(p, w, c, status[r->status], r->started_at, ms, d, e);
	if (mem != small)
		free(mem);
}

static void
on_frame(struct pyhost *p, struct worker *w, char type, const unsigned char *pl,
    size_t len)
{
	struct pyproto_result r;
	struct call *c;
	uint64_t seq;

	switch (type) {
	case 'H':
		if (w->state == W_STARTING && w->proc != NULL) {
			w->state = W_READY;
			proc_set_deadline(w->proc, -1);	/* the start's */
		}
		break;
	case 'L': {
		const unsigned char *nul = len > 9 ? memchr(pl + 9, '\0', len - 9) :
		    NULL;
		const char *text;
		size_t tlen;
		if (nul == NULL)
			break;
		seq = pyproto_get_be64(pl + 1);
		text = (const char *)nul + 1;
		tlen = len - (size_t)(nul + 1 - pl);
		if (our_level(pl[0]) >= log_get_level()) {
			char esc[4096];	/* a NUL as \x00 too */
			log_escape(text, tlen, 0, esc, sizeof(esc));
			log_limited(&p->lines_rl, our_level(pl[0]),
			    "pyfunc %s: %s", (const char *)pl + 9, esc);
		}
		c = CALL(w, seq);
		if (seq != 0 && c->seq == seq)
			capture_line(pl[0] >= 30 ? &c->err : &c->out, text, tlen);
		break;
	}
	case 'R':
		if (len < 8 || pyproto_result_get(pl + 8, len - 8, &r) != 0) {
			log_error("python worker %ld sent a malformed result; "
			    "replacing it", (long)w->pid);
			pyhost_retire(w, SIGKILL);
			break;
		}
		seq = pyproto_get_be64(pl);
		c = CALL(w, seq);
		if (seq != 0 && c->seq == seq)
			finish_result(p, w, c, &r);
		break;
	case 'W':
		break;		/* what it wakes us for is in the slots */
	default:
		log_error("python worker %ld sent frame type %d; replacing it",
		    (long)w->pid, type);
		pyhost_retire(w, SIGKILL);
	}
}

/* Read what w sent until it has nothing more for now. */
static void
drain(struct pyhost *p, struct worker *w)
{
	char buf[65536];

	while (w->fd >= 0) {
		const unsigned char *pl;
		size_t len;
		char type;
		int k;
		ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				/* EOF: the worker is gone; reaped later */
				pyhost_close_sock(w);
			}
			break;
		}
		pyproto_feed(&w->in, buf, (size_t)n);
		while (w->fd >= 0 &&
		    (k = pyproto_next(&w->in, &type, &pl, &len)) != 0) {
			if (k < 0) {
				log_error("python worker %ld sent an oversized "
				    "frame", (long)w->pid);
				pyhost_retire(w, SIGKILL);
				break;
			}
			on_frame(p, w, type, pl, len);
		}
	}
}

/*
 * Collect w's results: the calls done, then what it sent (their log lines
 * and large results precede their state), then the results in the slots.
 * Returns how many calls were done.
 */
int
pyhost_collect(struct pyhost *p, struct worker *w)
{
	uint64_t done[PYSHM_SLOTS];
	int nd = 0;

	if (w->shm != NULL) {
		atomic_store(&w->shm->host_waiting, 0);
		for (uint64_t s = w->oldest; s < w->next_seq; s++) {
			int st;
			if (CALL(w, s)->seq != s)
				continue;
			st = pyhost_call_state(w, s);
			if (st != PYSLOT_DONE && st != PYSLOT_DONE_EXT)
				break;	/* calls end in order */
			done[nd++] = s;
		}
	}
	drain(p, w);
	for (int i = 0; i < nd; i++) {
		struct call *c = CALL(w, done[i]);
		struct pyshm_slot *sl = SLOT(w, done[i]);
		struct pyproto_result r;
		unsigned char data[PYSHM_INLINE];
		uint32_t len;

		if (c->seq != done[i])
			continue;	/* its 'R' frame came */
		/*
		 * The worker runs handler code and can write anywhere in the
		 * region: read the length once, and decode a copy, so that
		 * nothing it writes meanwhile reaches past what was checked.
		 */
		len = *(volatile uint32_t *)&sl->len;
		if (len <= PYSHM_INLINE)
			memcpy(data, sl->data, len);
		if (pyhost_call_state(w, done[i]) != PYSLOT_DONE ||
		    len > PYSHM_INLINE ||
		    pyproto_result_get(data, len, &r) != 0) {
			log_error("python worker %ld: no valid result for a call; "
			    "replacing it", (long)w->pid);
			pyhost_finish_here(p, w, c, RUN_ERROR, "malformed "
			    "result from the python worker");
			pyhost_retire(w, SIGKILL);
			continue;
		}
		finish_result(p, w, c, &r);
	}
	return nd;
}
