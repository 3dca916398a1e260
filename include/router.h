/*
 * router: event-router's wiring.  The configuration's inputs (src/inputs,
 * input.h), its outputs (src/outputs, output.h: the PUB streams) and the
 * store, on one event loop (loop.h).  Every input's messages take one
 * path, the take() the router gives them (struct input_host): validate,
 * stamp, publish on every output, answer, store.
 */
#ifndef ER_ROUTER_H
#define ER_ROUTER_H

#include "config.h"
#include "event.h"

struct router;

/*
 * Bind every socket the configuration names and open the store.  Returns
 * NULL with err[errsz] = the reason (an address in use, an unopenable
 * store...).  cfg is the caller's: it must outlive the router.
 */
struct router *router_new(const struct cfg *cfg, char *err, size_t errsz);

/*
 * Run the router's loop (loop.h) until SIGTERM or SIGINT (or daemon_stop,
 * set before it ran): then stop taking input, drain the feeders, flush the
 * store and return 0.  Logs the ready line first (event-reactor(7),
 * "Readiness").
 */
int router_run(struct router *r);

/* Close everything; NULL is a no-op. */
void router_free(struct router *r);

#endif
