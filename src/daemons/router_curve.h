/*
 * router_curve: the router's side of CURVE (config.json "curve",
 * event-reactor(7) "CURVE"): the ZAP handler (a REP socket at
 * BUS_ZAP_ENDPOINT in the router's context, served by its loop) that
 * lets in the clients whose public key is in clients_dir and whose
 * address is in client_addresses; the failed handshakes of every socket
 * bound for the outside (a plaintext client, another server key); the
 * reload of clients_dir on SIGHUP.  Each refusal is counted and logged,
 * rate-limited.
 */
#ifndef ER_ROUTER_CURVE_H
#define ER_ROUTER_CURVE_H

#include <stddef.h>

#include "config.h"

struct loop;
struct bus;
struct router_curve;

/* What was refused so far. */
struct router_curve_stats {
	unsigned long long key;		/* a key not in clients_dir */
	unsigned long long address;	/* outside client_addresses */
	unsigned long long handshake;	/* failed handshakes */
};

/*
 * Before the router binds anything: read clients_dir, bind the ZAP
 * handler on b and serve it from l, and make every later bind of b to
 * other than inproc:// a CURVE server with c's key (bus_secure()).  c
 * must outlive the result.  Returns NULL with err[errsz] set.
 */
struct router_curve *router_curve_new(const struct cfg_curve *c,
    struct loop *l, struct bus *b, char *err, size_t errsz);
/* SIGHUP: read clients_dir again (kept as it was when it cannot be
 * read); connected clients stay, later handshakes use the new keys. */
void router_curve_reload(struct router_curve *rc);
/* The router's SIGHUP callback (loop.h), arg the router_curve or NULL
 * ("curve" absent: nothing to reload, said at INFO). */
void router_curve_on_hup(struct loop *l, int sig, void *arg);
/* Before each wait: say what the rate limit held back. */
void router_curve_flush(struct router_curve *rc);
/* At the stop: "stopped: CURVE refused N clients: ..." at INFO (NULL:
 * nothing). */
void router_curve_log_stats(const struct router_curve *rc);
/* Stop serving and close; NULL is a no-op.  Before bus_free(). */
void router_curve_free(struct router_curve *rc);

#endif
