/* cfg_fleet: event-sub's fleet settings.  See cfg_fleet.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_fleet.h"
#include "cfg_reader.h"
#include "util.h"

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789-_.:"

int
cfg_amqp_name_ok(const char *x)
{
	return x[0] != '\0' && x[strspn(x, NAME_CHARS)] == '\0' &&
	    strncmp(x, "amq.", 4) != 0;
}

/* subscriber.name or .group: a part of a queue's name. */
static int
get_name(struct cfg_reader *r, const struct cfg_node *s, const char *key,
    char *out, size_t outsz)
{
	if (cfg_get_str(r, s, key, out, outsz) != 0)
		return -1;
	if (out[strspn(out, NAME_CHARS)] != '\0')
		return cfg_error(r, key, "\"%s\" must be letters, digits, -, _, "
		    ". and : (it names a queue: er.%s.%s)", key,
		    strcmp(key, "name") == 0 ? "sub" : "group", key);
	return 0;
}

/* subscriber.ca_file: readable, a PEM certificate in it, made absolute. */
static int
get_ca_file(struct cfg_reader *r, const struct cfg_node *s,
    struct cfg *cfg)
{
	char *text, *abs;
	size_t n;
	int pem;

	if (cfg_member(s, "ca_file") == NULL)
		return 0;
	if (cfg_get_str(r, s, "ca_file", cfg->sub_ca_file,
	    sizeof(cfg->sub_ca_file)) != 0)
		return -1;
	text = util_read_file(cfg->sub_ca_file, 16 * 1024 * 1024, &n);
	if (text == NULL)
		return cfg_error(r, "ca_file", "cannot read ca_file \"%s\": %s",
		    cfg->sub_ca_file, strerror(errno));
	pem = strstr(text, "-----BEGIN CERTIFICATE-----") != NULL;
	free(text);
	if (!pem)
		return cfg_error(r, "ca_file", "ca_file \"%s\" holds no PEM "
		    "certificate", cfg->sub_ca_file);
	abs = util_abspath(cfg->sub_ca_file);
	snprintf(cfg->sub_ca_file, sizeof(cfg->sub_ca_file), "%s", abs);
	free(abs);
	return 0;
}

int
cfg_parse_sub_fleet(struct cfg_reader *r, const struct cfg_node *s,
    struct cfg *cfg)
{
	char type[16] = "";

	if (get_name(r, s, "name", cfg->sub_name, sizeof(cfg->sub_name)) != 0 ||
	    get_name(r, s, "group", cfg->sub_group,
	    sizeof(cfg->sub_group)) != 0 ||
	    cfg_get_str(r, s, "exchange", cfg->sub_exchange,
	    sizeof(cfg->sub_exchange)) != 0 ||
	    cfg_get_str(r, s, "queue_type", type, sizeof(type)) != 0)
		return -1;
	if (!cfg_amqp_name_ok(cfg->sub_exchange))
		return cfg_error(r, "exchange", "\"exchange\" must be a "
		    "non-empty name of letters, digits, -, _, . and : that "
		    "does not begin with amq. (reserved by AMQP)");
	if (strcmp(type, "quorum") == 0)
		cfg->sub_quorum = 1;
	else if (strcmp(type, "classic") == 0)
		cfg->sub_quorum = 0;
	else if (type[0] != '\0')
		return cfg_error(r, "queue_type", "\"queue_type\" must be "
		    "\"quorum\" or \"classic\"");
	return get_ca_file(r, s, cfg);
}
