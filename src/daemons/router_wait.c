/* router_wait: the waiters' ring.  See router_wait.h. */
#include <stdlib.h>

#include "router_wait.h"
#include "util.h"

struct waiter *
waitq_push(struct waitq *q, struct input *in, const struct bus_envelope *env,
    struct event *ev)
{
	struct waiter *w = xmalloc(sizeof(*w));

	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : ROUTER_WAIT_CAP0;
		struct waiter **ring = xcalloc(cap, sizeof(*ring));
		for (size_t i = 0; i < q->n; i++)
			ring[i] = q->ring[(q->head + i) % q->cap];
		free(q->ring);
		q->ring = ring;
		q->cap = cap;
		q->head = 0;
	}
	q->ring[(q->head + q->n++) % q->cap] = w;
	w->tag = ++q->next_tag;
	w->in = in;
	w->env = *env;
	w->ev = *ev;
	event_share(ev);
	return w;
}

struct waiter *
waitq_pop(struct waitq *q)
{
	struct waiter *w;

	if (q->n == 0)
		return NULL;
	w = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return w;
}

void
waitq_done(struct waiter *w)
{
	event_clear(&w->ev);
	free(w);
}

void
waitq_free(struct waitq *q)
{
	struct waiter *w;

	while ((w = waitq_pop(q)) != NULL)
		waitq_done(w);
	free(q->ring);
	q->ring = NULL;
	q->cap = 0;
}
