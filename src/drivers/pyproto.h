/*
 * pyproto: the channel between event-sub (pyhost) and its Python workers
 * (pyworker): frames over one AF_UNIX stream socket per worker, plus one
 * shared memory region per worker that holds the state and the result of
 * each call in flight.
 *
 * A frame is a 4-byte big-endian length (of what follows), a type byte
 * and a payload; seq is 8 bytes big-endian:
 *   host -> worker  'C' call    seq, handler NUL, event-JSON
 *                   'V' verify  handler            (import and resolve)
 *   worker -> host  'H' hello   (the interpreter is up)
 *                   'L' log     level byte, seq, handler NUL, text
 *                   'R' result  seq, a result (below); seq 0 answers 'V'
 *                   'W' wake    results wait in the shared region
 * A result is a status byte, started_at (seconds since the epoch) and
 * duration_ms as IEEE doubles (8 bytes each, big-endian bit patterns),
 * then three strings, each a 4-byte big-endian length and its bytes: data
 * (JSON), error, traceback (an empty string is no string).  Status bytes:
 * 0 ok, 1 failed (the function raised), 2 error (could not import or
 * resolve it).  Level bytes are Python logging levels (10 DEBUG, 20 INFO,
 * 30 WARNING, 40 ERROR, 50 CRITICAL).
 *
 * The shared region (struct pyshm: a memfd the worker finds at
 * PYWORKER_SHM_FD).  Calls are numbered from 1 per worker; call seq owns
 * slot seq % PYSHM_SLOTS while it is in flight, whose state word is
 * seq << 3 | PYSLOT_*:
 *   host    -> QUEUED, before it sends the 'C' frame
 *   worker  QUEUED -> TAKEN (compare-and-swap) just before the call runs;
 *           started_ns is set first
 *           TAKEN -> DONE, the result in the slot's data, or
 *           TAKEN -> DONE_EXT, the result too large: sent before as 'R'
 *   host    QUEUED -> STOLEN (compare-and-swap): the call is taken back;
 *           the worker skips its frame
 * The compare-and-swap on QUEUED runs each call at most once: either the
 * worker takes it or the host takes it back.  When the worker dies, DONE
 * calls have their results, the TAKEN one was running, and QUEUED ones
 * never started.
 *
 * Wake-ups: the worker writes nothing per result in the region.  Before
 * event-sub sleeps in poll(2) it stores wake_seq, then host_waiting = 1,
 * then looks at the slots; a worker that has finished a call >= wake_seq
 * and finds host_waiting set clears it and sends one 'W' frame.  Both
 * sides use sequentially consistent atomics, so one of them sees the
 * other's store: a result is never left unseen while event-sub sleeps.
 */
#ifndef ER_PYPROTO_H
#define ER_PYPROTO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Largest frame either side accepts (bytes): events are capped far below
 * this by limits.max_event_size (256 MiB at most). */
#define PYPROTO_MAX_FRAME (300u * 1024 * 1024)

enum { PY_OK = 0, PY_FAILED = 1, PY_ERROR = 2 };

/* Calls in flight per worker at most (slots of the shared region). */
#define PYSHM_SLOTS 128
/* Bytes of a result kept in its slot; larger ones go in an 'R' frame. */
#define PYSHM_INLINE 492	/* a slot is 512 bytes */
#define PYSHM_MAGIC 0x45525059u	/* "ERPY" */

enum { PYSLOT_FREE = 0, PYSLOT_QUEUED, PYSLOT_TAKEN, PYSLOT_DONE,
    PYSLOT_DONE_EXT, PYSLOT_STOLEN };
#define PYSLOT(seq, st) ((uint64_t)(seq) << 3 | (uint64_t)(st))

struct pyshm_slot {
	_Atomic uint64_t state;		/* PYSLOT(seq, PYSLOT_*) */
	_Atomic int64_t started_ns;	/* CLOCK_MONOTONIC when taken */
	uint32_t len;			/* result bytes in data (DONE) */
	unsigned char data[PYSHM_INLINE];
};

struct pyshm {
	uint32_t magic;
	_Atomic uint32_t host_waiting;	/* event-sub sleeps: wake it */
	_Atomic uint64_t wake_seq;	/* ... once this call is done */
	unsigned char pad[48];		/* the slots start on a cache line */
	struct pyshm_slot slot[PYSHM_SLOTS];
};

/* A result as carried by an 'R' frame or a slot.  Strings are not
 * NUL-terminated and are NULL when absent (length 0). */
struct pyproto_result {
	int status;		/* PY_OK, PY_FAILED, PY_ERROR */
	double started_at;	/* seconds since the epoch */
	double duration_ms;
	const char *data, *error, *tb;
	size_t data_len, error_len, tb_len;
};

/* Bytes pyproto_result_put() writes for r. */
size_t pyproto_result_size(const struct pyproto_result *r);
/* Encode r at p (pyproto_result_size(r) bytes). */
void pyproto_result_put(unsigned char *p, const struct pyproto_result *r);
/* Decode p[0..len) into *r (pointing into p); 0, or -1 when malformed. */
int pyproto_result_get(const unsigned char *p, size_t len,
    struct pyproto_result *r);

void pyproto_put_be64(unsigned char *p, uint64_t v);
uint64_t pyproto_get_be64(const unsigned char *p);

/* Write one whole frame of type with the parts concatenated as payload
 * (blocking; retries EINTR).  Returns 0 or -1 with errno. */
int pyproto_write(int fd, char type, const void *a, size_t alen,
    const void *b, size_t blen, const void *c, size_t clen);

/*
 * Frame reassembly from a byte stream.  Feed bytes with pyproto_feed();
 * pyproto_next() returns 1 with *type, *payload (valid until the next
 * call) and *len when a whole frame is there, 0 when more bytes are
 * needed, -1 on a frame over PYPROTO_MAX_FRAME.
 *
 * The same buffer batches frames to send: pyproto_append() adds one,
 * pyproto_send() writes everything appended (blocking) and empties it.
 */
struct pyproto_buf {
	unsigned char *buf;
	size_t len, cap, off;
};
void pyproto_feed(struct pyproto_buf *b, const void *data, size_t len);
int pyproto_next(struct pyproto_buf *b, char *type, const unsigned char **payload,
    size_t *len);
void pyproto_append(struct pyproto_buf *b, char type, const void *a,
    size_t alen, const void *c, size_t clen, const void *d, size_t dlen);
/* 0, or -1 with errno (what was not written is dropped). */
int pyproto_send(int fd, struct pyproto_buf *b);
void pyproto_buf_free(struct pyproto_buf *b);

/* Read one length-prefixed string from p[0..len) at *off; 0 or -1. */
int pyproto_get_str(const unsigned char *p, size_t len, size_t *off,
    const char **s, size_t *slen);

/*
 * The shared region.  pyproto_shm_new() (event-sub) creates a zeroed one
 * as a memfd (close-on-exec) and maps it: returns it with *fd, or NULL
 * with errno.  pyproto_shm_map() (the worker) maps the region behind fd,
 * checking its size and magic: NULL with errno when it is not one.
 * pyproto_shm_free(NULL) is a no-op.
 */
struct pyshm *pyproto_shm_new(int *fd);
struct pyshm *pyproto_shm_map(int fd);
void pyproto_shm_free(struct pyshm *shm);

#endif
