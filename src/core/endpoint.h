/*
 * endpoint: ZeroMQ endpoints, as config.json names them: checks, the
 * parts of a tcp:// one, whether two would listen on one address, and the
 * ancestor's endpoint sections ({"protocol", "listen_address", "port"} or
 * {"uri"}), which the ZeroMQ inputs and outputs share.
 */
#ifndef ER_ENDPOINT_H
#define ER_ENDPOINT_H

#include <stddef.h>

struct cfg_reader;
struct cfg_node;

/*
 * Check a ZeroMQ endpoint: tcp://HOST:PORT (PORT 0..65535 or *),
 * ipc://PATH or inproc://NAME.  bind: HOST must also be an IP address, *
 * or a network interface here (what zmq_bind accepts without DNS); else
 * (connect) PORT must be 1..65535.  Returns 0, or -1 with why[whysz]
 * saying what is wrong.
 */
int endpoint_check(const char *uri, int bind, char *why, size_t whysz);

/* Split tcp://HOST:PORT (HOST without brackets, PORT * as 0); -1 for
 * anything else. */
int endpoint_tcp(const char *uri, char *host, size_t hostsz, long *port);
/*
 * 1 when a socket bound to uri can be reached from other hosts: a
 * tcp:// endpoint whose host is not a loopback address (127.0.0.0/8,
 * ::1, ::ffff:127.x.y.z) nor the interface "lo"; 0 for those, ipc://
 * and inproc://.
 */
int endpoint_exposed(const char *uri);
/* 1 when host means every address: *, 0.0.0.0, ::. */
int endpoint_wildcard(const char *host);
/*
 * Would binding b fail once a is bound?  The same ipc:// or inproc://
 * name; or the same TCP port (not 0 or *, which pick a free one) on the
 * same host, or with either on all addresses (Linux refuses that even
 * with SO_REUSEADDR, which ZeroMQ and libmicrohttpd set).  Interface
 * names are not resolved here.
 */
int endpoint_clash(const char *a, const char *b);

/*
 * Read the endpoint section conf (the reader's current path) into
 * uri[urisz]: {"uri": "..."}, or {"protocol": "tcp", "listen_address":
 * ..., "port": N} whose missing parts keep those of uri's tcp:// value (a
 * default the caller put there).  known: the section's keys (NULL-
 * terminated; others are warned about).  "type", the ancestor's ZeroMQ
 * socket type, may only name socktype ("zmq.PULL", say).  Returns 0, or
 * -1 with the reader's error set.
 */
int endpoint_section(struct cfg_reader *r, const struct cfg_node *conf,
    const char *const *known, const char *socktype, char *uri, size_t urisz);
/*
 * The section of a socket the daemon binds: endpoint_section() unless
 * section is NULL (uri keeps its default), then cfg_listen(r, uri, what,
 * section).  Returns 0, or -1 with the reader's error set.
 */
int endpoint_read(struct cfg_reader *r, const struct cfg_node *section,
    const char *const *known, const char *socktype, const char *what,
    char *uri, size_t urisz);
/* The keys of a plain endpoint section (for known above). */
extern const char *const endpoint_keys[];

#endif
