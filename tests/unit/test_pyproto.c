/* Unit tests: pyproto, the frames and call slots between event-sub and its
 * Python workers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyproto.h"
#include "unit.h"

/* Frames appended in a batch come out whole and in order, however the
 * bytes are cut on the way. */
static void
test_frames(void)
{
	struct pyproto_buf out = { 0 }, in = { 0 };
	const unsigned char *pl;
	unsigned char seq[8];
	size_t len, cut;
	char type;

	pyproto_put_be64(seq, 0x0102030405060708ULL);
	CHECK(pyproto_get_be64(seq) == 0x0102030405060708ULL);
	pyproto_append(&out, 'C', seq, 8, "mod.f", 6, "{\"a\":1}", 7);
	pyproto_append(&out, 'W', NULL, 0, NULL, 0, NULL, 0);
	pyproto_append(&out, 'C', seq, 8, "g", 2, "{}", 2);
	CHECK(out.len == (5 + 8 + 6 + 7) + 5 + (5 + 8 + 2 + 2));
	for (cut = 0; cut <= out.len; cut += 3) {
		pyproto_feed(&in, out.buf, cut);
		CHECK(pyproto_next(&in, &type, &pl, &len) == (cut >= 26 ? 1 : 0));
		pyproto_feed(&in, out.buf + cut, out.len - cut);
		if (cut < 26)
			CHECK(pyproto_next(&in, &type, &pl, &len) == 1);
		CHECK(type == 'C' && len == 21);
		CHECK(pyproto_get_be64(pl) == 0x0102030405060708ULL);
		CHECK(memcmp(pl + 8, "mod.f\0{\"a\":1}", 13) == 0);
		CHECK(pyproto_next(&in, &type, &pl, &len) == 1);
		CHECK(type == 'W' && len == 0);
		CHECK(pyproto_next(&in, &type, &pl, &len) == 1);
		CHECK(type == 'C' && len == 12 && memcmp(pl + 8, "g\0{}", 4) == 0);
		CHECK(pyproto_next(&in, &type, &pl, &len) == 0);
	}
	pyproto_buf_free(&in);
	pyproto_buf_free(&out);
}

/* pyproto_send() writes the whole batch and empties it. */
static void
test_send(void)
{
	struct pyproto_buf out = { 0 }, in = { 0 };
	const unsigned char *pl;
	char buf[256], type;
	int sv[2];
	size_t len;
	ssize_t n;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pyproto_append(&out, 'V', "mod", 3, ".", 1, "f", 1);
	pyproto_append(&out, 'H', NULL, 0, NULL, 0, NULL, 0);
	CHECK(pyproto_send(sv[0], &out) == 0);
	CHECK(out.len == 0 && out.off == 0);
	n = read(sv[1], buf, sizeof(buf));
	CHECK(n == 5 + 5 + 5);
	pyproto_feed(&in, buf, n > 0 ? (size_t)n : 0);
	CHECK(pyproto_next(&in, &type, &pl, &len) == 1);
	CHECK(type == 'V' && len == 5 && memcmp(pl, "mod.f", 5) == 0);
	CHECK(pyproto_next(&in, &type, &pl, &len) == 1 && type == 'H');
	close(sv[0]);
	close(sv[1]);
	pyproto_buf_free(&in);
	pyproto_buf_free(&out);
}

/* A result survives put/get exactly; damaged ones are refused. */
static void
test_result(void)
{
	struct pyproto_result r, back;
	unsigned char buf[256];
	size_t n;

	memset(&r, 0, sizeof(r));
	r.status = PY_FAILED;
	r.started_at = 1795963076.029483;
	r.duration_ms = 0.125;
	r.error = "ValueError: bad thing";
	r.error_len = strlen(r.error);
	r.tb = "Traceback\n";
	r.tb_len = strlen(r.tb);
	n = pyproto_result_size(&r);
	CHECK(n == 1 + 16 + 12 + r.error_len + r.tb_len);
	pyproto_result_put(buf, &r);
	CHECK(pyproto_result_get(buf, n, &back) == 0);
	CHECK(back.status == PY_FAILED);
	CHECK(back.started_at == r.started_at && back.duration_ms == 0.125);
	CHECK(back.data == NULL && back.data_len == 0);
	CHECK(back.error_len == r.error_len &&
	    memcmp(back.error, r.error, r.error_len) == 0);
	CHECK(back.tb_len == r.tb_len && memcmp(back.tb, r.tb, r.tb_len) == 0);
	/* truncated, one byte too many, a status that does not exist */
	CHECK(pyproto_result_get(buf, n - 1, &back) == -1);
	CHECK(pyproto_result_get(buf, 10, &back) == -1);
	buf[n] = 0;
	CHECK(pyproto_result_get(buf, n + 1, &back) == -1);
	buf[0] = 7;
	CHECK(pyproto_result_get(buf, n, &back) == -1);
	/* a string length past the end */
	buf[0] = PY_OK;
	buf[17] = 0x7f;
	CHECK(pyproto_result_get(buf, n, &back) == -1);
}

/* Two mappings of one region (event-sub's and a worker's) see the same
 * slots; a file that is not such a region is refused. */
static void
test_shm(void)
{
	struct pyshm *a, *b;
	uint64_t want;
	int fd, devnull;

	a = pyproto_shm_new(&fd);
	CHECK(a != NULL && fd >= 0);
	if (a == NULL)
		return;
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	b = pyproto_shm_map(fd);
	CHECK(b != NULL);
	if (b != NULL) {
		CHECK(atomic_load(&b->slot[5].state) == PYSLOT_FREE);
		atomic_store(&a->slot[5].state, PYSLOT(5, PYSLOT_QUEUED));
		/* the worker takes call 5; taking it back then fails */
		want = PYSLOT(5, PYSLOT_QUEUED);
		CHECK(atomic_compare_exchange_strong(&b->slot[5].state, &want,
		    PYSLOT(5, PYSLOT_TAKEN)));
		want = PYSLOT(5, PYSLOT_QUEUED);
		CHECK(!atomic_compare_exchange_strong(&a->slot[5].state, &want,
		    PYSLOT(5, PYSLOT_STOLEN)));
		CHECK(want == PYSLOT(5, PYSLOT_TAKEN));
		/* call 5 + PYSHM_SLOTS reuses the slot: 5's state is not it */
		CHECK(atomic_load(&a->slot[(5 + PYSHM_SLOTS) % PYSHM_SLOTS].state)
		    >> 3 == 5);
		pyproto_shm_free(b);
	}
	devnull = open("/dev/null", O_RDONLY);
	errno = 0;
	CHECK(pyproto_shm_map(devnull) == NULL && errno != 0);
	close(devnull);
	close(fd);
	pyproto_shm_free(a);
	pyproto_shm_free(NULL);
}

int
main(void)
{
	test_frames();
	test_send();
	test_result();
	test_shm();
	UNIT_END("test_pyproto");
}
