/* router_ready: the ready line.  See router_ready.h. */
#include <stdarg.h>
#include <stdio.h>

#include "input.h"
#include "output.h"
#include "router_ready.h"

struct line {
	char *buf;
	size_t size, off;
};

/* Append to the line, as snprintf (cut when full). */
static void
append(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->off >= l->size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->off, l->size - l->off, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->off += (size_t)n < l->size - l->off ? (size_t)n :
		    l->size - l->off - 1;
}

/* " KEY=W1,W2,..." on the line, or " KEY=-" without words. */
static void
append_keyed(struct line *l, const char *key, const char *const *words,
    int n)
{
	append(l, " %s=%s", key, n == 0 ? "-" : "");
	for (int i = 0; i < n; i++)
		append(l, "%s%s", i ? "," : "", words[i]);
}

void
router_ready_line(struct input *const *in, int nin,
    struct output *const *out, int nout, char *buf, size_t size)
{
	const char *words[INPUT_MAX + CFG_MAX_OUTPUTS];
	struct line l = { buf, size, 0 };
	const struct output_ops *ok;
	const struct input_ops *k;
	int n;

	if (size == 0)
		return;
	buf[0] = '\0';
	append(&l, "ready");
	for (int i = 0; (k = input_kind(i)) != NULL; i++) {
		if (k->ready_key == NULL)
			continue;
		n = 0;
		for (int j = 0; j < nin && n < INPUT_MAX; j++)
			if (in[j]->ops == k)
				words[n++] = input_describe(in[j]);
		append_keyed(&l, k->ready_key, words, n);
	}
	for (int i = 0; (ok = output_kind(i)) != NULL; i++) {
		if (ok->ready_key == NULL)
			continue;
		n = 0;
		for (int j = 0; j < nout && n < CFG_MAX_OUTPUTS; j++)
			if (out[j]->ops == ok)
				words[n++] = ok->describe(out[j]);
		append_keyed(&l, ok->ready_key, words, n);
	}
	for (int j = 0; j < nin; j++)
		if (in[j]->ops->ready_key == NULL)
			append(&l, " %s", input_describe(in[j]));
	for (int j = 0; j < nout; j++)
		if (out[j]->ops->ready_key == NULL)
			append(&l, " %s", out[j]->ops->describe(out[j]));
}
