/*
 * router_wait: the events of replying inputs that wait for the store
 * (router.c): published and answered once the store has decided them.
 * A ring, oldest first, in the order they were handed to the store, which
 * decides them in that order (store.h, store_take_done()).  Grows by
 * doubling from ROUTER_WAIT_CAP0; only memory bounds it (the store's queue
 * bounds what is in flight).  Every call from the router's thread.
 */
#ifndef ER_ROUTER_WAIT_H
#define ER_ROUTER_WAIT_H

#include <stddef.h>

#include "bus.h"
#include "event.h"

struct input;

/* Slots of a ring's first allocation. */
#define ROUTER_WAIT_CAP0 64

/* One event that waits: what its answer needs. */
struct waiter {
	unsigned long long tag;		/* store_put_event_waited()'s */
	struct input *in;
	struct bus_envelope env;	/* in->env when it was taken */
	struct event ev;		/* a hold on the event the store has */
};

/* The ring; all zero is an empty one. */
struct waitq {
	struct waiter **ring;
	size_t head, n, cap;
	unsigned long long next_tag;	/* the last tag given */
};

/*
 * A new waiter for ev (a hold is taken: event_share(); ev stays the
 * caller's), the request of env on in, with the next tag, at the ring's
 * end.  Never fails (xmalloc).
 */
struct waiter *waitq_push(struct waitq *q, struct input *in,
    const struct bus_envelope *env, struct event *ev);
/* The oldest waiter, taken off the ring (the caller frees it with
 * waitq_done()); NULL when none waits. */
struct waiter *waitq_pop(struct waitq *q);
/* Release w's hold on its event and free w. */
void waitq_done(struct waiter *w);
/* Free the ring, the waiters left on it too. */
void waitq_free(struct waitq *q);

#endif
