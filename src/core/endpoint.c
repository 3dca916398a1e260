/* endpoint: ZeroMQ endpoints in config.json.  See endpoint.h. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cfg_reader.h"
#include "endpoint.h"
#include "util.h"

int
endpoint_tcp(const char *uri, char *host, size_t hostsz, long *port)
{
	const char *colon = strrchr(uri, ':');
	size_t n;

	if (strncmp(uri, "tcp://", 6) != 0 || colon == NULL || colon < uri + 6)
		return -1;
	*port = strcmp(colon + 1, "*") == 0 ? 0 : strtol(colon + 1, NULL, 10);
	n = (size_t)(colon - uri - 6);
	if (n >= 2 && uri[6] == '[' && colon[-1] == ']')
		snprintf(host, hostsz, "%.*s", (int)n - 2, uri + 7);
	else
		snprintf(host, hostsz, "%.*s", (int)n, uri + 6);
	return 0;
}

int
endpoint_wildcard(const char *host)
{
	return strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0;
}

int
endpoint_clash(const char *a, const char *b)
{
	char ha[256], hb[256];
	long pa, pb;
	int ta = endpoint_tcp(a, ha, sizeof(ha), &pa) == 0;
	int tb = endpoint_tcp(b, hb, sizeof(hb), &pb) == 0;

	if (!ta || !tb)
		return !ta && !tb && strcmp(a, b) == 0;
	return pa == pb && pa != 0 && (strcmp(ha, hb) == 0 ||
	    endpoint_wildcard(ha) || endpoint_wildcard(hb));
}


int
endpoint_check(const char *uri, int bind, char *why, size_t whysz)
{
	/* what the messages show: never a password (a mistyped amqp://) */
	char shown[1024];
	char host[256];
	const char *hp, *colon, *end;
	unsigned char addr[16];
	long port = -1;		/* -1: "*" */

	snprintf(shown, sizeof(shown), "%s", uri);
	util_hide_password(shown);
	if (strncmp(uri, "ipc://", 6) == 0 || strncmp(uri, "inproc://", 9) == 0) {
		struct sockaddr_un sun;
		if (strstr(uri, "://")[3] == '\0') {
			snprintf(why, whysz, "\"%s\": no path or name", shown);
			return -1;
		}
		/* ZeroMQ refuses (ENAMETOOLONG) what sun_path cannot hold */
		if (uri[0] == 'i' && uri[1] == 'p' &&
		    strlen(uri + 6) >= sizeof(sun.sun_path)) {
			snprintf(why, whysz, "\"%s\": the path is longer than %zu "
			    "bytes (a Unix socket address)", shown,
			    sizeof(sun.sun_path) - 1);
			return -1;
		}
		return 0;
	}
	if (strncmp(uri, "tcp://", 6) != 0) {
		snprintf(why, whysz, "\"%s\" is not a ZeroMQ endpoint "
		    "(tcp://HOST:PORT, ipc://PATH, inproc://NAME)", shown);
		return -1;
	}
	hp = uri + 6;
	colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp || colon[1] == '\0') {
		snprintf(why, whysz, "\"%s\": expected tcp://HOST:PORT", shown);
		return -1;
	}
	if (strcmp(colon + 1, "*") != 0) {
		port = strtol(colon + 1, (char **)(uintptr_t)&end, 10);
		if (*end != '\0' || port < 0 || port > 65535) {
			snprintf(why, whysz, bind ? "\"%s\": the port must be "
			    "0..65535 or *" : "\"%s\": the port to connect to "
			    "must be 1..65535", shown);
			return -1;
		}
	}
	if (!bind && port <= 0) {
		/* zmq_connect refuses "*"; port 0 is never listened on */
		snprintf(why, whysz, "\"%s\": the port to connect to must be "
		    "1..65535", shown);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (!bind && strcmp(host, "*") == 0) {
		snprintf(why, whysz, "\"%s\": * is for binding: name the host "
		    "to connect to", shown);
		return -1;
	}
	if (!bind || strcmp(host, "*") == 0 ||
	    inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1 ||
	    if_nametoindex(host) != 0)
		return 0;
	snprintf(why, whysz, "\"%s\": cannot listen on \"%s\": not an IP "
	    "address, * or a network interface of this machine", shown, host);
	return -1;
}

const char *const endpoint_keys[] = { "protocol", "listen_address", "port",
    "uri", "type", NULL };

int
endpoint_section(struct cfg_reader *c, const struct cfg_node *conf,
    const char *const *known, const char *socktype, char *uri, size_t urisz)
{
	char proto[16] = "tcp", addr[128] = "127.0.0.1", given[256] = "";
	char why[256 + 128], type[32] = "";
	long long port = -1;
	const char *colon;

	if (cfg_want_object(c, conf, "\"config\"") != 0)
		return -1;
	cfg_warn_unknown(c, conf, known, "endpoint");
	if (cfg_get_str(c, conf, "type", type, sizeof(type)) != 0)
		return -1;
	if (type[0] != '\0' && strcmp(type, socktype) != 0)
		return cfg_error(c, "type", "\"type\" \"%s\": this socket is a "
		    "%s (remove \"type\" or set it to \"%s\")", type, socktype,
		    socktype);
	if (cfg_get_str(c, conf, "uri", given, sizeof(given)) != 0)
		return -1;
	if (given[0] != '\0') {
		if (endpoint_check(given, 1, why, sizeof(why)) != 0)
			return cfg_error(c, "uri", "%s", why);
		snprintf(uri, urisz, "%s", given);
		return 0;
	}
	/* defaults from the current URI: tcp://ADDR:PORT */
	if (strncmp(uri, "tcp://", 6) == 0 &&
	    (colon = strrchr(uri, ':')) != NULL && colon > uri + 6) {
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - uri - 6),
		    uri + 6);
		port = atoll(colon + 1);
	}
	if (cfg_get_str(c, conf, "protocol", proto, sizeof(proto)) != 0 ||
	    cfg_get_str(c, conf, "listen_address", addr, sizeof(addr)) != 0 ||
	    cfg_get_int(c, conf, "port", 0, 65535, &port) != 0)
		return -1;
	if (strcmp(proto, "tcp") != 0)
		return cfg_error(c, "protocol", "protocol \"%s\" is not "
		    "supported (use \"tcp\", or \"uri\" for other ZeroMQ "
		    "transports)", proto);
	snprintf(uri, urisz, "tcp://%s:%lld", addr, port);
	if (endpoint_check(uri, 1, why, sizeof(why)) != 0)
		return cfg_error(c, cfg_member(conf, "listen_address") ?
		    "listen_address" : "port", "%s", why);
	return 0;
}

int
endpoint_read(struct cfg_reader *r, const struct cfg_node *section,
    const char *const *known, const char *socktype, const char *what,
    char *uri, size_t urisz)
{
	if (section != NULL && endpoint_section(r, section, known, socktype,
	    uri, urisz) != 0)
		return -1;
	cfg_listen_zmq(r, uri, what, section);
	return 0;
}

int
endpoint_exposed(const char *uri)
{
	unsigned char a6[16];
	char host[256];
	long port;

	if (endpoint_tcp(uri, host, sizeof(host), &port) != 0)
		return 0;	/* ipc://, inproc:// */
	if (strncmp(host, "127.", 4) == 0 || strcmp(host, "lo") == 0 ||
	    strcmp(host, "::1") == 0)
		return 0;
	/* ::ffff:127.x.y.z */
	if (inet_pton(AF_INET6, host, a6) == 1 && strncmp(host, "::ffff:127.",
	    11) == 0)
		return 0;
	return 1;
}
