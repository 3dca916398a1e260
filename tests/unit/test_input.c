/*
 * input: the counts of what an input's own threads refuse (input_refused()):
 * taken once each, by code, from several threads at once; past
 * INPUT_CODES_MAX - 1 codes, the rest under INPUT_CODE_OTHER; a code longer
 * than INPUT_CODE_MAX - 1 bytes is cut, and counted in one place.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "input.h"
#include "loop.h"
#include "unit.h"

#define THREADS 4
#define EACH 10000

static int
fake_start(struct input *in, int index, char *err, size_t errsz)
{
	(void)index;
	(void)err;
	(void)errsz;
	snprintf(in->name, sizeof(in->name), "fake");
	return 0;
}

static const struct input_ops fake = { .name = "fake", .start = fake_start };

struct seen {
	char code[INPUT_CODES_MAX + 8][64];
	unsigned long long n[INPUT_CODES_MAX + 8];
	int count, calls;
};

static void
note(void *arg, struct input *in, const char *code, unsigned long long n)
{
	struct seen *s = arg;

	(void)in;
	s->calls++;
	for (int i = 0; i < s->count; i++)
		if (strcmp(s->code[i], code) == 0) {
			s->n[i] += n;
			return;
		}
	snprintf(s->code[s->count], sizeof(s->code[0]), "%s", code);
	s->n[s->count++] = n;
}

static unsigned long long
seen(const struct seen *s, const char *code)
{
	for (int i = 0; i < s->count; i++)
		if (strcmp(s->code[i], code) == 0)
			return s->n[i];
	return 0;
}

static void *
refuse_many(void *arg)
{
	for (int i = 0; i < EACH; i++)
		input_refused(arg, i % 2 ? "unauthorized" : "not_found");
	return NULL;
}

int
main(void)
{
	struct cfg cfg;
	struct input_conf ic = { &fake, 0 };
	struct input_host host = { 0 };
	struct seen s = { 0 };
	pthread_t t[THREADS];
	unsigned long long sum = 0;
	char code[64], err[256];
	struct input *in;

	memset(&cfg, 0, sizeof(cfg));
	host.cfg = &cfg;
	host.loop = loop_new();
	in = input_start(&ic, &host, err, sizeof(err));
	CHECK(in != NULL);

	/* nothing refused: nothing taken */
	CHECK(input_refusals_take(in, note, &s) == 0);
	CHECK(s.calls == 0);

	/* from threads at once, taken meanwhile: every one, once */
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, refuse_many, in);
	for (int k = 0; k < 100; k++)
		sum += input_refusals_take(in, note, &s);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	sum += input_refusals_take(in, note, &s);
	CHECK(sum == THREADS * EACH);
	CHECK(seen(&s, "unauthorized") == THREADS * EACH / 2);
	CHECK(seen(&s, "not_found") == THREADS * EACH / 2);
	CHECK(input_refusals_take(in, note, &s) == 0);

	/* two codes so far; the places left but the last take new codes,
	 * the last is INPUT_CODE_OTHER's, for the rest */
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < INPUT_CODES_MAX + 3; i++) {
		snprintf(code, sizeof(code), "code_%d", i);
		input_refused(in, code);
	}
	CHECK(input_refusals_take(in, note, &s) == INPUT_CODES_MAX + 3);
	/* code_0 .. code_12 in the 13 places left before the last */
	CHECK(s.count == (INPUT_CODES_MAX - 1 - 2) + 1);
	CHECK(seen(&s, "code_0") == 1);
	snprintf(code, sizeof(code), "code_%d", INPUT_CODES_MAX - 1 - 2 - 1);
	CHECK(seen(&s, code) == 1);
	snprintf(code, sizeof(code), "code_%d", INPUT_CODES_MAX - 1 - 2);
	CHECK(seen(&s, code) == 0);
	CHECK(seen(&s, INPUT_CODE_OTHER) == 3 + 3);
	/* a known code still has its place; an unknown one is "other" */
	memset(&s, 0, sizeof(s));
	input_refused(in, "not_found");
	input_refused(in, "never_seen");
	CHECK(input_refusals_take(in, note, &s) == 2);
	CHECK(seen(&s, "not_found") == 1);
	CHECK(seen(&s, INPUT_CODE_OTHER) == 1);
	input_free(in);

	/* a code over INPUT_CODE_MAX - 1 bytes: cut, one place */
	in = input_start(&ic, &host, err, sizeof(err));
	memset(&s, 0, sizeof(s));
	memset(code, 'x', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	input_refused(in, code);
	input_refused(in, code);
	CHECK(input_refusals_take(in, note, &s) == 2);
	CHECK(s.count == 1);
	CHECK(strlen(s.code[0]) == INPUT_CODE_MAX - 1);
	input_free(in);
	loop_free(host.loop);
	UNIT_END("test_input");
}
