/*
 * pyproto: the framing between event-sub (pyhost) and its Python workers
 * (pyworker), over one AF_UNIX stream socket per worker.
 *
 * A frame is a 4-byte big-endian length (of what follows), a type byte
 * and a payload:
 *   host -> worker  'C' call    handler NUL event-JSON
 *                   'V' verify  handler            (import and resolve)
 *   worker -> host  'H' hello   (the interpreter is up)
 *                   'L' log     level byte, handler NUL, text
 *                   'R' result  status byte, then three strings, each a
 *                               4-byte big-endian length and its bytes:
 *                               data (JSON), error, traceback
 * Status bytes: 0 ok, 1 failed (the function raised), 2 error (could not
 * import or resolve it).  Level bytes are Python logging levels (10 DEBUG,
 * 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL).
 */
#ifndef ER_PYPROTO_H
#define ER_PYPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Largest frame either side accepts (bytes): events are capped far below
 * this by limits.max_event_size (256 MiB at most). */
#define PYPROTO_MAX_FRAME (300u * 1024 * 1024)

enum { PY_OK = 0, PY_FAILED = 1, PY_ERROR = 2 };

/* Write one whole frame of type with the parts concatenated as payload
 * (blocking; retries EINTR).  Returns 0 or -1 with errno. */
int pyproto_write(int fd, char type, const void *a, size_t alen,
    const void *b, size_t blen, const void *c, size_t clen);

/*
 * Frame reassembly from a byte stream.  Feed bytes with pyproto_feed();
 * pyproto_next() returns 1 with *type, *payload (valid until the next
 * call) and *len when a whole frame is there, 0 when more bytes are
 * needed, -1 on a frame over PYPROTO_MAX_FRAME.
 */
struct pyproto_buf {
	unsigned char *buf;
	size_t len, cap, off;
};
void pyproto_feed(struct pyproto_buf *b, const void *data, size_t len);
int pyproto_next(struct pyproto_buf *b, char *type, const unsigned char **payload,
    size_t *len);
void pyproto_buf_free(struct pyproto_buf *b);

/* Read one length-prefixed string from p[0..len) at *off; 0 or -1. */
int pyproto_get_str(const unsigned char *p, size_t len, size_t *off,
    const char **s, size_t *slen);

#endif
