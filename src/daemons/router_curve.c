/* router_curve: CURVE and ZAP for the router.  See router_curve.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "cert.h"
#include "log.h"
#include "loop.h"
#include "router_curve.h"
#include "util.h"

/* Sockets bound for the outside: PULL, REP and PUB ones (config.h). */
#define WATCH_MAX (CFG_MAX_INPUTS + CFG_MAX_OUTPUTS)

struct watch {
	struct router_curve *rc;
	struct bus_sock *w;		/* its failures (bus_watch_failures) */
	int io;
	/* per socket: a client failing in a loop hides no other socket's */
	struct log_ratelimit rl;
};

struct router_curve {
	const struct cfg_curve *c;
	struct loop *loop;
	struct bus *bus;
	struct bus_sock *zap;
	int zap_io;
	struct cert_set keys;		/* clients_dir's */
	struct watch watches[WATCH_MAX];
	int nwatches;
	struct router_curve_stats st;
	struct log_ratelimit refused_rl;
};

/* A file of clients_dir that is no certificate. */
static void
skipped(void *arg, const char *why)
{
	(void)arg;
	log_warn("CURVE: clients_dir: %s: skipped", why);
}

/* Read clients_dir into rc->keys: 0, or -1 (rc->keys kept). */
static int
load_keys(struct router_curve *rc, char *err, size_t errsz)
{
	struct cert_set set;

	if (cert_dir_load(rc->c->clients_dir, &set, skipped, rc, err,
	    errsz) != 0)
		return -1;
	cert_set_free(&rc->keys);
	rc->keys = set;
	return 0;
}

/* One ZAP request: allowed, or refused, counted and logged. */
static void
decide(struct router_curve *rc, const struct bus_zap *z)
{
	const char *why = NULL;

	if (!z->valid)
		why = "a malformed ZAP request";
	else if (z->key[0] == '\0')
		why = "not a CURVE client";
	else if (!cfg_curve_allows(rc->c, z->address)) {
		why = "address not in client_addresses";
		rc->st.address++;
	} else if (!cert_set_has(&rc->keys, z->key)) {
		why = "key not in clients_dir";
		rc->st.key++;
	}
	if (why != NULL)
		log_limited(&rc->refused_rl, LOG_LVL_WARNING, "CURVE: client "
		    "refused: %s: address %s, key %s", why,
		    z->address[0] ? z->address : "?",
		    z->key[0] ? z->key : "-");
	if (bus_zap_answer(rc->zap, z, why == NULL, why != NULL ? why :
	    "OK") != 0)
		log_warn("CURVE: ZAP answer failed");
}

/* ZAP requests (loop callback). */
static void
on_zap(struct loop *l, int mask, void *arg)
{
	struct router_curve *rc = arg;
	struct bus_zap z;

	(void)l;
	(void)mask;
	while (bus_zap_take(rc->zap, &z) == 0)
		decide(rc, &z);
}

/* Failed handshakes of one bound socket (loop callback). */
static void
on_failure(struct loop *l, int mask, void *arg)
{
	struct watch *w = arg;
	struct router_curve *rc = w->rc;
	char what[128], ep[CFG_URI_MAX];

	(void)l;
	(void)mask;
	while (bus_watch_failure(w->w, what, sizeof(what), ep,
	    sizeof(ep)) == 1) {
		rc->st.handshake++;
		log_limited(&w->rl, LOG_LVL_WARNING, "CURVE: "
		    "handshake refused on %s: %s", ep, what);
	}
}

/* A socket was bound as a CURVE server (bus_secure()'s callback): watch
 * its failed handshakes. */
static void
bound(void *arg, struct bus_sock *s, const char *endpoint)
{
	struct router_curve *rc = arg;
	struct watch *w;
	char err[256];

	if (rc->nwatches == WATCH_MAX)
		return;
	w = &rc->watches[rc->nwatches];
	w->rc = rc;
	w->rl = (struct log_ratelimit){ .interval = 10, .burst = 10,
	    .what = "\"CURVE: handshake refused\" lines" };
	w->w = bus_watch_failures(rc->bus, s, err, sizeof(err));
	if (w->w == NULL) {
		log_warn("CURVE: %s: failed handshakes not watched: %s",
		    endpoint, err);
		return;
	}
	w->io = loop_add_sock(rc->loop, w->w, LOOP_READ, on_failure, w);
	rc->nwatches++;
	log_info("CURVE: %s takes CURVE clients only", endpoint);
}

struct router_curve *
router_curve_new(const struct cfg_curve *c, struct loop *l, struct bus *b,
    char *err, size_t errsz)
{
	struct router_curve *rc = xcalloc(1, sizeof(*rc));

	rc->c = c;
	rc->loop = l;
	rc->bus = b;
	rc->zap_io = -1;
	rc->refused_rl = (struct log_ratelimit){ .interval = 10, .burst = 10,
	    .what = "\"CURVE: client refused\" lines" };
	if (load_keys(rc, err, errsz) != 0)
		goto fail;
	rc->zap = bus_socket(b, BUS_REP, 0, err, errsz);
	if (rc->zap == NULL ||
	    bus_bind(rc->zap, BUS_ZAP_ENDPOINT, NULL, 0, err, errsz) != 0)
		goto fail;
	rc->zap_io = loop_add_sock(l, rc->zap, LOOP_READ, on_zap, rc);
	bus_secure(b, c->secret_key, CFG_ZAP_DOMAIN, bound, rc);
	log_info("CURVE: server key %s, %zu client keys from %s, %s",
	    c->public_key, rc->keys.n, c->clients_dir, c->nnets > 0 ?
	    "client_addresses" : "any address");
	return rc;
fail:
	router_curve_free(rc);
	return NULL;
}

void
router_curve_reload(struct router_curve *rc)
{
	char err[4200];

	if (load_keys(rc, err, sizeof(err)) != 0) {
		log_error("CURVE: SIGHUP: %s: client keys kept", err);
		return;
	}
	log_info("CURVE: SIGHUP: %zu client keys from %s", rc->keys.n,
	    rc->c->clients_dir);
}

void
router_curve_on_hup(struct loop *l, int sig, void *arg)
{
	(void)l;
	(void)sig;
	if (arg != NULL)
		router_curve_reload(arg);
	else
		log_info("SIGHUP: nothing to reload (no \"curve\")");
}

void
router_curve_log_stats(const struct router_curve *rc)
{
	if (rc == NULL)
		return;
	log_info("stopped: CURVE refused %llu clients: key not in "
	    "clients_dir %llu, address not in client_addresses %llu, failed "
	    "handshakes %llu", rc->st.key + rc->st.address + rc->st.handshake,
	    rc->st.key, rc->st.address, rc->st.handshake);
}

void
router_curve_flush(struct router_curve *rc)
{
	if (rc == NULL)
		return;
	log_limited_flush(&rc->refused_rl);
	for (int i = 0; i < rc->nwatches; i++)
		log_limited_flush(&rc->watches[i].rl);
}

void
router_curve_free(struct router_curve *rc)
{
	if (rc == NULL)
		return;
	/* the watched sockets may be closed already (the inputs are, at a
	 * stop): only the watches are closed; libzmq ends a monitor with
	 * its socket */
	for (int i = 0; i < rc->nwatches; i++) {
		loop_del(rc->loop, rc->watches[i].io);
		bus_close(rc->watches[i].w);
	}
	loop_del(rc->loop, rc->zap_io);
	bus_close(rc->zap);
	cert_set_free(&rc->keys);
	free(rc);
}
