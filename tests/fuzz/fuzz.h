/*
 * What the libFuzzer harnesses of tests/fuzz/ share (`make fuzz`; see
 * tests/README.rst, "Fuzzing").  Each harness is one fuzz_NAME.c with
 * LLVMFuzzerTestOneInput(); its seed corpus is tests/fuzz/corpus/NAME/.
 * A harness calls FUZZ_ASSERT for what must hold whatever the input:
 * when it does not, it prints why and aborts, which libFuzzer reports as
 * a crash and saves the input.
 */
#ifndef ER_FUZZ_H
#define ER_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define FUZZ_ASSERT(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s) failed: ",	\
		    __FILE__, __LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Only errors from the product's logging (its warnings name each input). */
static inline void
fuzz_quiet(void)
{
	static int done;

	if (!done) {
		log_init("fuzz", LOG_LVL_ERROR);
		done = 1;
	}
}

static char fuzz_path[512];

static inline void
fuzz_unlink(void)
{
	unlink(fuzz_path);
}

/*
 * Write data[size] to this process's scratch file (in TMPDIR or /tmp,
 * named after what and the pid, reused for every input) and return its
 * path; the loaders under test take a path.
 */
static inline const char *
fuzz_file(const char *what, const uint8_t *data, size_t size)
{
	char *path = fuzz_path;
	const char *dir = getenv("TMPDIR");
	int fd;

	if (path[0] == '\0') {
		snprintf(path, sizeof(fuzz_path), "%s/er-fuzz-%s-%ld.json",
		    dir != NULL && dir[0] != '\0' ? dir : "/tmp", what,
		    (long)getpid());
		atexit(fuzz_unlink);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size)) {
		perror(path);
		abort();
	}
	close(fd);
	return path;
}

#endif
