/* store_read: reading the stored events back.  See store_read.h. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "store.h"
#include "store_backend.h"
#include "store_read.h"

int
store_pos_cmp(const struct store_pos *a, const struct store_pos *b)
{
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return strcmp(a->id, b->id);
}

const char *
store_pos_text(const struct store_pos *p, char *buf, size_t sz)
{
	if (p->seq != 0 || p->id[0] == '\0')
		snprintf(buf, sz, "%lld", p->seq);
	else
		snprintf(buf, sz, "%s", p->id);
	return buf;
}

/* The plugin of cfg's store when it can be read back, else NULL. */
static const struct store_plugin *
readable(const struct cfg *cfg)
{
	const struct store_plugin *pl = cfg->store.ops;

	return pl != NULL && pl->read_open != NULL ? pl : NULL;
}

int
store_read_source(const struct cfg *cfg, char *buf, size_t sz)
{
	const struct store_plugin *pl = readable(cfg);

	if (pl == NULL)
		return -1;
	pl->read_source(cfg->store.conf, buf, sz);
	return 0;
}

const char *
store_local_file(const struct cfg *cfg)
{
	const struct store_plugin *pl = readable(cfg);

	return pl != NULL ? pl->local_file(cfg->store.conf) : NULL;
}

int
store_read_open(const struct cfg *cfg, struct journal *j,
    struct store_reader *out, char *err, size_t errsz)
{
	const struct store_plugin *pl = readable(cfg);

	memset(out, 0, sizeof(*out));
	if (pl == NULL) {
		snprintf(err, errsz, "store.type %s cannot be read back",
		    store_type_name(cfg));
		return -1;
	}
	return pl->read_open(cfg->store.conf, j, out, err, errsz);
}

void
store_read_close(struct store_reader *r)
{
	if (r->close != NULL)
		r->close(r->rd);
	memset(r, 0, sizeof(*r));
}
