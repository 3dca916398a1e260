/* pyproto: frames between event-sub and its Python workers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pyproto.h"
#include "util.h"

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

int
pyproto_write(int fd, char type, const void *a, size_t alen, const void *b,
    size_t blen, const void *c, size_t clen)
{
	unsigned char head[5];
	struct iovec iov[4];
	size_t total = 1 + alen + blen + clen;
	int n = 0, i;

	if (total > PYPROTO_MAX_FRAME) {
		errno = EMSGSIZE;
		return -1;
	}
	put_be32(head, (uint32_t)total);
	head[4] = (unsigned char)type;
	iov[n++] = (struct iovec){ head, sizeof(head) };
	if (alen)
		iov[n++] = (struct iovec){ (void *)(uintptr_t)a, alen };
	if (blen)
		iov[n++] = (struct iovec){ (void *)(uintptr_t)b, blen };
	if (clen)
		iov[n++] = (struct iovec){ (void *)(uintptr_t)c, clen };
	i = 0;
	while (i < n) {
		ssize_t w = writev(fd, iov + i, n - i);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (i < n && (size_t)w >= iov[i].iov_len) {
			w -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < n) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

void
pyproto_feed(struct pyproto_buf *b, const void *data, size_t len)
{
	if (b->off > 0 && b->off == b->len) {
		b->off = b->len = 0;
	} else if (b->off > 65536 && b->off * 2 > b->len) {
		memmove(b->buf, b->buf + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->buf = xrealloc(b->buf, b->cap);
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
}

int
pyproto_next(struct pyproto_buf *b, char *type, const unsigned char **payload,
    size_t *len)
{
	size_t have = b->len - b->off;
	uint32_t flen;

	if (have < 4)
		return 0;
	flen = get_be32(b->buf + b->off);
	if (flen == 0 || flen > PYPROTO_MAX_FRAME)
		return -1;
	if (have < 4 + (size_t)flen)
		return 0;
	*type = (char)b->buf[b->off + 4];
	*payload = b->buf + b->off + 5;
	*len = flen - 1;
	b->off += 4 + flen;
	return 1;
}

void
pyproto_buf_free(struct pyproto_buf *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

int
pyproto_get_str(const unsigned char *p, size_t len, size_t *off,
    const char **s, size_t *slen)
{
	uint32_t n;

	if (len - *off < 4)
		return -1;
	n = get_be32(p + *off);
	if (len - *off - 4 < n)
		return -1;
	*s = (const char *)p + *off + 4;
	*slen = n;
	*off += 4 + n;
	return 0;
}
