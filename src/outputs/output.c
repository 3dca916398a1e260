/* output: the outputs' table.  See output.h. */
#include <stdlib.h>
#include <string.h>

#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "output.h"
#include "util.h"

/* The plugins: one file each, one line here. */
extern const struct output_ops output_zmq;
extern const struct output_ops output_amqp;

static const struct output_ops *const kinds[] = {
	&output_zmq,
	&output_amqp,
};

const struct output_ops *
output_kind(int i)
{
	if (i < 0 || (size_t)i >= sizeof(kinds) / sizeof(kinds[0]))
		return NULL;
	return kinds[i];
}

const char *
output_known(void)
{
	static char known[256];
	const struct output_ops *ops;

	if (known[0] == '\0')
		for (int i = 0; (ops = output_kind(i)) != NULL; i++)
			cfg_list_add(known, sizeof(known), ", ", ops->name);
	return known;
}

int
output_read(struct cfg_reader *r, const char *name,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p)
{
	const struct output_ops *k;
	int i;

	for (i = 0; (k = output_kind(i)) != NULL; i++)
		if (strcmp(k->name, name) == 0)
			break;
	if (k == NULL)
		return 1;
	p->ops = k;
	p->free_conf = k->free_conf;
	return cfg_plugin_parse(r, "config", section, cfg, p, k->parse);
}

int
output_configured(const struct cfg *cfg, struct output_conf *out, int max)
{
	int n = 0;

	for (int i = 0; i < cfg->noutputs && n < max; i++)
		out[n++] = (struct output_conf){ cfg->outputs[i].ops, i };
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
	o->plugin = &host->cfg->outputs[oc->index];
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
