/*
 * cfg_curve: config.json's "curve" section and subscriber.curve_key /
 * .curve_server_key (event-reactor.conf(5)); the keys are read with
 * cert.h, so that a bad key is an error at its key in config.json.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bus.h"
#include "cert.h"
#include "cfg_curve.h"
#include "cfg_reader.h"
#include "config.h"
#include "util.h"

_Static_assert(CFG_KEY_Z85 == BUS_KEY_Z85, "CURVE key sizes differ");

/* cfg_curve_server_keys(): whether "curve"'s files are read. */
static int read_server_keys = 1;

void
cfg_curve_server_keys(int read)
{
	read_server_keys = read;
}

int
cfg_server_secrets(void)
{
	return read_server_keys;
}

/* key of obj as an absolute path into out[outsz] (absent: out kept). */
static int
get_path(struct cfg_reader *r, const struct cfg_node *obj, const char *key,
    char *out, size_t outsz)
{
	char *abs;

	if (cfg_get_str(r, obj, key, out, outsz) != 0)
		return -1;
	if (out[0] != '\0') {
		abs = util_abspath(out);
		snprintf(out, outsz, "%s", abs);
		free(abs);
	}
	return 0;
}

/* "ADDRESS" or "ADDRESS/BITS" into *n; 0, or -1. */
static int
parse_net(const char *text, struct cfg_net *n)
{
	char host[64], *slash, *end;
	long bits;
	int max;

	if (strlen(text) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%s", text);
	snprintf(n->text, sizeof(n->text), "%s", text);
	slash = strchr(host, '/');
	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, host, n->addr) == 1) {
		n->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, n->addr) == 1) {
		n->family = AF_INET6;
		max = 128;
	} else
		return -1;
	bits = max;
	if (slash != NULL) {
		bits = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max)
			return -1;
	}
	n->bits = (int)bits;
	for (int i = 0; i < max / 8; i++) {	/* clear the host bits */
		int keep = n->bits - 8 * i;
		if (keep <= 0)
			n->addr[i] = 0;
		else if (keep < 8)
			n->addr[i] &= (unsigned char)(0xff << (8 - keep));
	}
	return 0;
}

static int
parse_addresses(struct cfg_reader *r, const struct cfg_node *list,
    struct cfg_curve *c)
{
	if (list == NULL)
		return 0;
	cfg_push(r, "client_addresses");
	if (!cfg_is_array(list) || cfg_size(list) == 0 ||
	    cfg_size(list) > CFG_CURVE_ADDRS)
		return cfg_error(r, NULL, "\"client_addresses\" must be an "
		    "array of 1 to %d addresses (\"10.0.0.0/8\", \"::1\")",
		    CFG_CURVE_ADDRS);
	for (size_t i = 0; i < cfg_size(list); i++) {
		const char *s = cfg_string(cfg_array_get(list, i));
		cfg_push_idx(r, i);
		if (s == NULL || parse_net(s, &c->nets[c->nnets]) != 0)
			return cfg_error(r, NULL, "not an IP address or "
			    "ADDRESS/BITS network: %s%s%s", s ? "\"" : "",
			    s ? s : "not a string", s ? "\"" : "");
		c->nnets++;
		cfg_pop(r);
	}
	cfg_pop(r);
	return 0;
}

/* A file of clients_dir that is no certificate: a warning. */
static void
skipped(void *arg, const char *why)
{
	cfg_note(arg, "clients_dir", LOG_LVL_WARNING, "clients_dir: %s: "
	    "skipped", why);
}

/* The server's key and the clients' directory, read now. */
static int
read_keys(struct cfg_reader *r, struct cfg_curve *c)
{
	struct cert_set set;
	struct cert cert;
	char why[8192];

	if (cert_load(c->server_key, 1, &cert, why, sizeof(why)) != 0)
		return cfg_error(r, "server_key", "server_key %s", why);
	memcpy(c->public_key, cert.public_key, sizeof(c->public_key));
	memcpy(c->secret_key, cert.secret_key, sizeof(c->secret_key));
	if (cert_dir_load(c->clients_dir, &set, skipped, r, why,
	    sizeof(why)) != 0)
		return cfg_error(r, "clients_dir", "clients_dir %s", why);
	cert_set_free(&set);
	return 0;
}

int
cfg_parse_curve(struct cfg_reader *r, const struct cfg_node *v,
    struct cfg *cfg)
{
	static const char *const known[] = { "server_key", "clients_dir",
	    "client_addresses", NULL };
	struct cfg_curve *c = &cfg->curve;

	if (cfg_want_object(r, v, "\"curve\"") != 0)
		return -1;
	cfg_warn_unknown(r, v, known, "curve");
	if (!bus_has_curve())
		return cfg_error(r, NULL, "this libzmq has no CURVE "
		    "(zmq_has(\"curve\") is false)");
	if (get_path(r, v, "server_key", c->server_key,
	    sizeof(c->server_key)) != 0 ||
	    get_path(r, v, "clients_dir", c->clients_dir,
	    sizeof(c->clients_dir)) != 0)
		return -1;
	if (c->server_key[0] == '\0')
		return cfg_error(r, NULL, "\"curve\" needs \"server_key\" (the "
		    "router's secret certificate)");
	if (c->clients_dir[0] == '\0')
		return cfg_error(r, NULL, "\"curve\" needs \"clients_dir\" (a "
		    "directory of the allowed clients' public certificates)");
	if (parse_addresses(r, cfg_member(v, "client_addresses"), c) != 0 ||
	    (read_server_keys && read_keys(r, c) != 0))
		return -1;
	c->on = 1;
	return 0;
}

int
cfg_parse_sub_curve(struct cfg_reader *r, const struct cfg_node *s,
    struct cfg *cfg)
{
	char key[4096] = "", server[4096] = "", why[8192];

	if (get_path(r, s, "curve_key", key, sizeof(key)) != 0 ||
	    get_path(r, s, "curve_server_key", server, sizeof(server)) != 0)
		return -1;
	if ((key[0] == '\0') != (server[0] == '\0'))
		return cfg_error(r, key[0] ? "curve_key" : "curve_server_key",
		    "\"curve_key\" and \"curve_server_key\" go together");
	if (key[0] == '\0')
		return 0;
	if (cfg_curve_client_load(key, NULL, &cfg->sub_curve, why,
	    sizeof(why)) != 0)
		return cfg_error(r, "curve_key", "curve_key %s", why);
	if (cfg_curve_client_load(NULL, server, &cfg->sub_curve, why,
	    sizeof(why)) != 0)
		return cfg_error(r, "curve_server_key", "curve_server_key %s",
		    why);
	cfg->sub_curve.on = 1;
	return 0;
}

int
cfg_curve_client_load(const char *key_path, const char *server_path,
    struct cfg_curve_client *c, char *err, size_t errsz)
{
	struct cert cert;

	if (key_path != NULL) {
		if (cert_load(key_path, 1, &cert, err, errsz) != 0)
			return -1;
		memcpy(c->public_key, cert.public_key, sizeof(c->public_key));
		memcpy(c->secret_key, cert.secret_key, sizeof(c->secret_key));
	}
	if (server_path != NULL) {
		if (cert_load(server_path, 0, &cert, err, errsz) != 0)
			return -1;
		memcpy(c->server_key, cert.public_key, sizeof(c->server_key));
	}
	if (key_path != NULL && server_path != NULL)
		c->on = 1;
	return 0;
}

/* 1 when addr (of n's family) is in n. */
static int
in_net(const struct cfg_net *n, const unsigned char *addr)
{
	int whole = n->bits / 8, rest = n->bits % 8;

	if (memcmp(addr, n->addr, (size_t)whole) != 0)
		return 0;
	return rest == 0 || ((addr[whole] ^ n->addr[whole]) &
	    (0xff << (8 - rest)) & 0xff) == 0;
}

int
cfg_curve_allows(const struct cfg_curve *curve, const char *ip)
{
	unsigned char a4[4], a6[16];
	int v4 = inet_pton(AF_INET, ip, a4) == 1;
	int v6 = !v4 && inet_pton(AF_INET6, ip, a6) == 1;

	if (curve->nnets == 0)
		return 1;
	for (int i = 0; i < curve->nnets; i++) {
		const struct cfg_net *n = &curve->nets[i];
		if ((v4 && n->family == AF_INET && in_net(n, a4)) ||
		    (v6 && n->family == AF_INET6 && in_net(n, a6)))
			return 1;
	}
	return 0;
}
