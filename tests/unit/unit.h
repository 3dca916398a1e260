/*
 * A tiny unit-test harness: CHECK macros count passes and failures; each
 * test program ends with UNIT_END("name"), which prints
 * "name: N passed, N failed" and exits non-zero on any failure.
 */
#ifndef ER_UNIT_H
#define ER_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_pass, unit_fail;

#define CHECK(cond) do {						\
	if (cond)							\
		unit_pass++;						\
	else {								\
		unit_fail++;						\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,	\
		    __LINE__, #cond);					\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *a_ = (a), *b_ = (b);				\
	if (a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0)		\
		unit_pass++;						\
	else {								\
		unit_fail++;						\
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__,	\
		    __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");	\
	}								\
} while (0)

#define CHECK_CONTAINS(hay, needle) do {				\
	const char *h_ = (hay), *n_ = (needle);				\
	if (h_ != NULL && strstr(h_, n_) != NULL)			\
		unit_pass++;						\
	else {								\
		unit_fail++;						\
		fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n",\
		    __FILE__, __LINE__, h_ ? h_ : "(null)", n_);	\
	}								\
} while (0)

#define UNIT_END(name) do {						\
	printf("%s: %d passed, %d failed\n", name, unit_pass, unit_fail);\
	return unit_fail != 0;						\
} while (0)

#endif
