/*
 * in_http_conf: an HTTPInput's "config" (event-reactor.conf(5)).  See
 * in_http.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_reader.h"
#include "config.h"
#include "in_http.h"
#include "util.h"

/* The keys of conf (the reader at it) into h. */
static int
get_keys(struct cfg_reader *r, const struct cfg_node *conf,
    struct in_http_conf *h)
{
	static const char *const known[] = { "listen_address", "port",
	    "secret", "token", "allow_anonymous", "max_connections",
	    "max_connections_per_ip", "timeout", "header_timeout", NULL };
	long long port = h->port, maxconn = h->max_connections;
	long long perip = h->max_connections_per_ip, timeout = h->timeout;
	long long htimeout = h->header_timeout;

	if (cfg_want_object(r, conf, "\"config\"") != 0)
		return -1;
	cfg_warn_unknown(r, conf, known, "HTTPInput");
	if (cfg_get_str(r, conf, "listen_address", h->listen_address,
	    sizeof(h->listen_address)) != 0 ||
	    cfg_get_int(r, conf, "port", 0, 65535, &port) != 0 ||
	    cfg_get_str(r, conf, "secret", h->secret, sizeof(h->secret)) != 0 ||
	    cfg_get_str(r, conf, "token", h->token, sizeof(h->token)) != 0 ||
	    cfg_get_bool(r, conf, "allow_anonymous",
	    &h->allow_anonymous) != 0 ||
	    cfg_get_int(r, conf, "max_connections", 1, 100000,
	    &maxconn) != 0 ||
	    cfg_get_int(r, conf, "max_connections_per_ip", 1, 100000,
	    &perip) != 0 ||
	    cfg_get_int(r, conf, "timeout", 1, 3600, &timeout) != 0 ||
	    cfg_get_int(r, conf, "header_timeout", 1, 3600, &htimeout) != 0)
		return -1;
	h->port = (int)port;
	h->max_connections = (int)maxconn;
	h->max_connections_per_ip = (int)perip;
	h->timeout = (int)timeout;
	h->header_timeout = (int)htimeout;
	return 0;
}

int
in_http_parse(struct cfg_reader *r, const struct cfg_node *conf,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	struct in_http_conf *h = xcalloc(1, sizeof(*h));
	unsigned char a[16];
	char uri[CFG_URI_MAX];

	(void)cfg;
	p->conf = h;
	if (p->ns[0] == '\0')
		snprintf(p->ns, sizeof(p->ns), "hooks");
	snprintf(h->listen_address, sizeof(h->listen_address), "127.0.0.1");
	h->port = 8080;
	h->max_connections = 64;
	h->max_connections_per_ip = 16;
	h->timeout = 10;
	h->header_timeout = 10;
	if (conf != NULL && get_keys(r, conf, h) != 0)
		return -1;
	if (inet_pton(AF_INET, h->listen_address, a) != 1 &&
	    inet_pton(AF_INET6, h->listen_address, a) != 1)
		return cfg_error(r, "listen_address", "\"%s\" is not a "
		    "numeric IPv4 or IPv6 address", h->listen_address);
	snprintf(uri, sizeof(uri), strchr(h->listen_address, ':') ?
	    "tcp://[%s]:%d" : "tcp://%s:%d", h->listen_address, h->port);
	cfg_listen(r, uri, "an HTTPInput", conf);
	/* the sample configuration's placeholders are no credentials */
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "token" : "secret";
		if (strncmp(i ? h->token : h->secret, "CHANGE-ME", 9) == 0)
			return cfg_error(r, key, "\"%s\" is still the sample's "
			    "placeholder: set a real one (or remove it)", key);
	}
	if (h->secret[0] == '\0' && h->token[0] == '\0' && !h->allow_anonymous)
		cfg_note(r, NULL, LOG_LVL_WARNING, "HTTPInput without "
		    "\"secret\" or \"token\": every request is refused with "
		    "401 (set \"allow_anonymous\": true to accept them)");
	return 0;
}

void
in_http_free_conf(void *conf)
{
	if (conf == NULL)
		return;
	explicit_bzero(conf, sizeof(struct in_http_conf));	/* secrets */
	free(conf);
}
