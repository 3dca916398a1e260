/*
 * in_http_conf: an HTTPInput's "config" (event-reactor.conf(5)).  See
 * in_http.h.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_reader.h"
#include "config.h"
#include "in_http.h"
#include "in_http_auth.h"
#include "log.h"
#include "util.h"

/* The keys of conf (the reader at it) into h. */
static int
get_keys(struct cfg_reader *r, const struct cfg_node *conf,
    struct in_http_conf *h)
{
	static const char *const known[] = { "listen_address", "port",
	    "secret", "token", "allow_anonymous", "max_connections",
	    "max_connections_per_ip", "timeout", "header_timeout",
	    "cert_file", "key_file", NULL };
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
	    cfg_get_int(r, conf, "header_timeout", 1, 3600, &htimeout) != 0 ||
	    cfg_get_str(r, conf, "cert_file", h->cert_file,
	    sizeof(h->cert_file)) != 0 ||
	    cfg_get_str(r, conf, "key_file", h->key_file,
	    sizeof(h->key_file)) != 0)
		return -1;
	h->port = (int)port;
	h->max_connections = (int)maxconn;
	h->max_connections_per_ip = (int)perip;
	h->timeout = (int)timeout;
	h->header_timeout = (int)htimeout;
	return 0;
}

int
in_http_sockaddr(const struct in_http_conf *ch, struct sockaddr_storage *ss,
    int *v6)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

	memset(ss, 0, sizeof(*ss));
	*v6 = 0;
	if (inet_pton(AF_INET, ch->listen_address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)ch->port);
		return 0;
	}
	if (inet_pton(AF_INET6, ch->listen_address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)ch->port);
		*v6 = 1;
		return 0;
	}
	return -1;
}

int
in_http_listen(const struct in_http_conf *h, const char *ns, char *err,
    size_t errsz)
{
	struct sockaddr_storage ss;
	int fd, v6, one = 1;

	if (in_http_sockaddr(h, &ss, &v6) != 0) {
		snprintf(err, errsz, "HTTPInput %s: listen_address \"%s\" is not "
		    "a numeric IPv4 or IPv6 address", ns, h->listen_address);
		return -1;
	}
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0);
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == 0 && (!v6 || setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == 0) &&
	    bind(fd, (struct sockaddr *)&ss, v6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in)) == 0 &&
	    listen(fd, IN_HTTP_BACKLOG) == 0)
		return fd;
	snprintf(err, errsz, "HTTPInput %s: cannot listen on %s%s%s:%d: %s", ns,
	    v6 ? "[" : "", h->listen_address, v6 ? "]" : "", h->port,
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Read and check cert_file and key_file (both set) into h. */
static int
load_tls(struct cfg_reader *r, struct in_http_conf *h)
{
	char why[256];
	size_t n;

	h->cert_pem = util_read_file(h->cert_file, IN_HTTP_PEM_MAX, &n);
	if (h->cert_pem == NULL)
		return cfg_error(r, "cert_file", "cannot read cert_file "
		    "\"%s\": %s", h->cert_file, strerror(errno));
	h->key_pem = util_read_file(h->key_file, IN_HTTP_PEM_MAX, &n);
	if (h->key_pem == NULL)
		return cfg_error(r, "key_file", "cannot read key_file "
		    "\"%s\": %s", h->key_file, strerror(errno));
	if (http_auth_check_tls(h->cert_pem, h->key_pem, why,
	    sizeof(why)) != 0)
		return cfg_error(r, strcmp(why, "no PEM certificate") == 0 ?
		    "cert_file" : "key_file", "cert_file \"%s\", key_file "
		    "\"%s\": %s", h->cert_file, h->key_file, why);
	return 0;
}

/* 1 when a (a numeric address) is loopback: 127.0.0.0/8 or ::1. */
static int
is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0;
}

int
in_http_parse(struct cfg_reader *r, const struct cfg_node *conf,
    const struct cfg *cfg, struct cfg_plugin *p)
{
	struct in_http_conf *h = xcalloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	char uri[CFG_URI_MAX];
	int v6;

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
	if (in_http_sockaddr(h, &ss, &v6) != 0)
		return cfg_error(r, "listen_address", "\"%s\" is not a "
		    "numeric IPv4 or IPv6 address", h->listen_address);
	snprintf(uri, sizeof(uri), strchr(h->listen_address, ':') ?
	    "tcp://[%s]:%d" : "tcp://%s:%d", h->listen_address, h->port);
	cfg_listen(r, uri, "an HTTPInput", conf);
	if ((h->cert_file[0] != '\0') != (h->key_file[0] != '\0'))
		return cfg_error(r, h->cert_file[0] != '\0' ? "cert_file" :
		    "key_file", "HTTPS needs both \"cert_file\" and "
		    "\"key_file\" (PEM files)");
	/* the router's secret: event-sub, which only reads the file, may
	 * not read the key (it runs as the service user) */
	if (h->cert_file[0] != '\0' && cfg_server_secrets() &&
	    load_tls(r, h) != 0)
		return -1;
	if (h->cert_file[0] == '\0' && !is_loopback(h->listen_address))
		cfg_note(r, "listen_address", LOG_LVL_WARNING, "HTTPInput on "
		    "%s without TLS: credentials and events cross the network "
		    "in clear text (set \"cert_file\" and \"key_file\")",
		    h->listen_address);
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
	struct in_http_conf *h = conf;

	if (h == NULL)
		return;
	free(h->cert_pem);
	if (h->key_pem != NULL) {
		explicit_bzero(h->key_pem, strlen(h->key_pem));
		free(h->key_pem);
	}
	explicit_bzero(h, sizeof(*h));	/* secrets */
	free(h);
}
