/*
 * in_amqp_conf: an AMQPInput's "config" (event-reactor.conf(5)).  See
 * in_amqp.h.
 */
#include <amqp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_link.h"
#include "cfg_reader.h"
#include "config.h"
#include "in_amqp.h"
#include "log.h"
#include "util.h"

/* "bindings" (the reader at conf) into a->bindings. */
static int
parse_bindings(struct cfg_reader *r, const struct cfg_node *conf,
    struct in_amqp_conf *a)
{
	const struct cfg_node *b = cfg_member(conf, "bindings");

	if (b == NULL)
		return 0;
	cfg_push(r, "bindings");
	if (!cfg_is_array(b))
		return cfg_error(r, NULL, "\"bindings\" must be an array of "
		    "exchange names");
	if (cfg_size(b) > IN_AMQP_BINDINGS_MAX)
		return cfg_error(r, NULL, "more than %d bindings",
		    IN_AMQP_BINDINGS_MAX);
	for (size_t i = 0; i < cfg_size(b); i++) {
		const char *name = cfg_string(cfg_array_get(b, i));
		cfg_push_idx(r, i);
		if (name == NULL || name[0] == '\0')
			return cfg_error(r, NULL, "an exchange name must be a "
			    "non-empty string");
		if (strlen(name) >= IN_AMQP_NAME_MAX)
			return cfg_error(r, NULL, "exchange name longer than "
			    "%d bytes", IN_AMQP_NAME_MAX - 1);
		memcpy(a->bindings[i], name, strlen(name) + 1);
		a->nbindings++;
		cfg_pop(r);
	}
	cfg_pop(r);
	return 0;
}

/* The checks of a read url and exchange_type. */
static int
check_conf(struct cfg_reader *r, const struct in_amqp_conf *a)
{
	static const char *const types[] = { "direct", "fanout", "topic",
	    "headers", NULL };
	const char *const *t;

	if (amqp_link_check(r, a->url, a->ca_file) != 0)
		return -1;
	for (t = types; *t != NULL; t++)
		if (strcmp(*t, a->exchange_type) == 0)
			break;
	if (*t == NULL)
		return cfg_error(r, "exchange_type", "unknown exchange_type "
		    "\"%s\" (direct, fanout, topic, headers)",
		    a->exchange_type);
	return 0;
}

int
in_amqp_parse(struct cfg_reader *r, const struct cfg_node *conf,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	static const char *const known[] = { "url", "routing_key",
	    "exchange_type", "queue_name", "bindings", "durable",
	    "exchange_durable", "prefetch", "ca_file", NULL };
	struct in_amqp_conf *a = xcalloc(1, sizeof(*a));
	long long prefetch = 64;

	(void)cfg;
	p->conf = a;
	if (p->ns[0] == '\0')
		snprintf(p->ns, sizeof(p->ns), "openstack");
	snprintf(a->url, sizeof(a->url), "amqp://guest:guest@localhost:5672/");
	snprintf(a->exchange_type, sizeof(a->exchange_type), "topic");
	snprintf(a->routing_key, sizeof(a->routing_key), "notifications.info");
	snprintf(a->queue_name, sizeof(a->queue_name), "event-reactor.%s",
	    p->ns);
	a->durable = 1;
	a->prefetch = (int)prefetch;
	if (conf == NULL)
		return 0;
	if (cfg_want_object(r, conf, "\"config\"") != 0)
		return -1;
	cfg_warn_unknown(r, conf, known, "AMQPInput");
	if (cfg_get_str(r, conf, "url", a->url, sizeof(a->url)) != 0 ||
	    cfg_get_str(r, conf, "exchange_type", a->exchange_type,
	    sizeof(a->exchange_type)) != 0 ||
	    cfg_get_str(r, conf, "routing_key", a->routing_key,
	    sizeof(a->routing_key)) != 0 ||
	    cfg_get_str(r, conf, "queue_name", a->queue_name,
	    sizeof(a->queue_name)) != 0 ||
	    cfg_get_bool(r, conf, "durable", &a->durable) != 0 ||
	    cfg_get_bool(r, conf, "exchange_durable",
	    &a->exchange_durable) != 0 ||
	    cfg_get_int(r, conf, "prefetch", 1, 65535, &prefetch) != 0 ||
	    cfg_get_str(r, conf, "ca_file", a->ca_file,
	    sizeof(a->ca_file)) != 0)
		return -1;
	a->prefetch = (int)prefetch;
	if (check_conf(r, a) != 0)
		return -1;
	return parse_bindings(r, conf, a);
}

void
in_amqp_free_conf(void *conf)
{
	if (conf == NULL)
		return;
	/* the password */
	explicit_bzero(conf, sizeof(struct in_amqp_conf));
	free(conf);
}
