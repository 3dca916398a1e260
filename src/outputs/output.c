/* output: the outputs' table.  See output.h. */
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "util.h"

/* The plugins: one file each, one line here. */
extern const struct output_ops output_zmq;

static const struct output_ops *const kinds[] = {
	&output_zmq,
};

const struct output_ops *
output_kind(int i)
{
	if (i < 0 || (size_t)i >= sizeof(kinds) / sizeof(kinds[0]))
		return NULL;
	return kinds[i];
}

int
output_configured(const struct cfg *cfg, struct output_conf *out, int max)
{
	int n = 0;

	/* config.c's "outputs" as it is today: zeromq ones only */
	for (int i = 0; i < cfg->noutputs && n < max; i++)
		out[n++] = (struct output_conf){ &output_zmq, i };
	return n;
}

struct output *
output_open(const struct output_conf *oc, const struct output_host *host,
    char *err, size_t errsz)
{
	struct output *o = xcalloc(1, sizeof(*o));

	o->ops = oc->ops;
	o->host = *host;
	o->index = oc->index;
	if (o->ops->open(o, oc->index, err, errsz) != 0) {
		output_close(o);
		return NULL;
	}
	return o;
}

void
output_close(struct output *o)
{
	if (o == NULL)
		return;
	o->ops->close(o);
	free(o);
}
