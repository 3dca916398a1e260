/* pyproto: frames and shared slots between event-sub and its Python
 * workers.  See pyproto.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

void
pyproto_put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

uint64_t
pyproto_get_be64(const unsigned char *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void
put_double(unsigned char *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	pyproto_put_be64(p, v);
}

static double
get_double(const unsigned char *p)
{
	uint64_t v = pyproto_get_be64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

size_t
pyproto_result_size(const struct pyproto_result *r)
{
	return 1 + 8 + 8 + 12 + r->data_len + r->error_len + r->tb_len;
}

static unsigned char *
put_str(unsigned char *p, const char *s, size_t n)
{
	put_be32(p, (uint32_t)n);
	if (n > 0)
		memcpy(p + 4, s, n);
	return p + 4 + n;
}

void
pyproto_result_put(unsigned char *p, const struct pyproto_result *r)
{
	p[0] = (unsigned char)r->status;
	put_double(p + 1, r->started_at);
	put_double(p + 9, r->duration_ms);
	p = put_str(p + 17, r->data, r->data_len);
	p = put_str(p, r->error, r->error_len);
	put_str(p, r->tb, r->tb_len);
}

int
pyproto_result_get(const unsigned char *p, size_t len, struct pyproto_result *r)
{
	size_t off = 17;

	memset(r, 0, sizeof(*r));
	if (len < off || p[0] > PY_ERROR ||
	    pyproto_get_str(p, len, &off, &r->data, &r->data_len) != 0 ||
	    pyproto_get_str(p, len, &off, &r->error, &r->error_len) != 0 ||
	    pyproto_get_str(p, len, &off, &r->tb, &r->tb_len) != 0 ||
	    off != len)
		return -1;
	r->status = p[0];
	r->started_at = get_double(p + 1);
	r->duration_ms = get_double(p + 9);
	if (r->data_len == 0)
		r->data = NULL;
	if (r->error_len == 0)
		r->error = NULL;
	if (r->tb_len == 0)
		r->tb = NULL;
	return 0;
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
	if (len == 0)
		return;
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
pyproto_append(struct pyproto_buf *b, char type, const void *a, size_t alen,
    const void *c, size_t clen, const void *d, size_t dlen)
{
	unsigned char head[5];

	put_be32(head, (uint32_t)(1 + alen + clen + dlen));
	head[4] = (unsigned char)type;
	pyproto_feed(b, head, sizeof(head));
	if (alen)
		pyproto_feed(b, a, alen);
	if (clen)
		pyproto_feed(b, c, clen);
	if (dlen)
		pyproto_feed(b, d, dlen);
}

int
pyproto_send(int fd, struct pyproto_buf *b)
{
	int rc = 0;

	while (b->off < b->len) {
		ssize_t w = write(fd, b->buf + b->off, b->len - b->off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		b->off += (size_t)w;
	}
	b->off = b->len = 0;
	return rc;
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

struct pyshm *
pyproto_shm_new(int *fd)
{
	struct pyshm *shm;
	int e;

	*fd = memfd_create("event-sub-pyworker", MFD_CLOEXEC);
	if (*fd < 0)
		return NULL;
	if (ftruncate(*fd, sizeof(*shm)) != 0)
		goto fail;
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED, *fd,
	    0);
	if (shm == MAP_FAILED)
		goto fail;
	shm->magic = PYSHM_MAGIC;	/* the rest is zero: every slot FREE */
	return shm;
fail:
	e = errno;
	close(*fd);
	*fd = -1;
	errno = e;
	return NULL;
}

struct pyshm *
pyproto_shm_map(int fd)
{
	struct pyshm *shm;
	struct stat st;

	if (fstat(fd, &st) != 0)
		return NULL;
	if ((size_t)st.st_size != sizeof(*shm)) {
		errno = EINVAL;
		return NULL;
	}
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED)
		return NULL;
	if (shm->magic != PYSHM_MAGIC) {
		munmap(shm, sizeof(*shm));
		errno = EINVAL;
		return NULL;
	}
	return shm;
}

void
pyproto_shm_free(struct pyshm *shm)
{
	if (shm != NULL)
		munmap(shm, sizeof(*shm));
}
