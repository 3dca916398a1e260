/*
 * router: event-router's loop.  Owns the input sockets (PULL, REP), the
 * PUB streams (one per zeromq output: XPUBs, which hand it each
 * subscription to apply and answer; bus.h, "The event stream") and the
 * store.
 * Every input goes through router_ingest(): validate, stamp, publish, store.
 */
#ifndef ER_ROUTER_H
#define ER_ROUTER_H

#include "config.h"
#include "event.h"

struct router;

/*
 * Bind every socket the configuration names and open the store.  Returns
 * NULL with err[errsz] = the reason (an address in use, an unopenable
 * store...).  The config is copied.
 */
struct router *router_new(const struct cfg *cfg, char *err, size_t errsz);

/*
 * Run the router's loop (loop.h) until SIGTERM or SIGINT (or daemon_stop,
 * set before it ran): then stop taking input, drain the feeders, flush the
 * store and return 0.  Logs the ready line first (README.rst,
 * "Readiness").
 */
int router_run(struct router *r);

/* Close everything; NULL is a no-op. */
void router_free(struct router *r);

#endif
