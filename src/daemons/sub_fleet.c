/*
 * sub_fleet: event-sub's loop with -u amqp:// (sub_int.h): the broker's
 * messages taken from sub_amqp, their runs queued, each acknowledged once
 * the results of its runs are stored.
 */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "sub_int.h"
#include "util.h"

/* While results wait for the store, how often to look (ms). */
#define FLEET_SETTLE_MS 5

/* A message none of whose runs will run (bad, or matched nothing). */
static void
complete(struct sub *s, struct sub_amqp_msg *m)
{
	if (m->drop) {
		sub_amqp_drop(s->amqp, m);
		return;
	}
	if (m->seq == 0) {		/* no result to wait for */
		sub_amqp_ack(s->amqp, m);
		return;
	}
	m->next = NULL;
	if (s->settled_tail != NULL)
		s->settled_tail->next = m;
	else
		s->settled_head = m;
	s->settled_tail = m;
}

void
sub_fleet_ended(struct sub *s, struct sub_amqp_msg *m, int ran)
{
	if (!ran)
		m->drop = 1;
	m->seq = s->results_put;
	if (--m->runs == 0 && !m->open)
		complete(s, m);
}

void
sub_fleet_settle(struct sub *s)
{
	struct sub_amqp_msg **pp = &s->settled_head, *m;
	unsigned long long decided = s->results_put;
	struct store_stats st;

	if (s->settled_head == NULL)
		return;
	if (s->store != NULL) {
		store_get_stats(s->store, &st);
		decided = st.written + st.failed;
	}
	s->settled_tail = NULL;
	while ((m = *pp) != NULL) {
		if (m->seq <= decided) {
			*pp = m->next;
			sub_amqp_ack(s->amqp, m);
		} else {
			s->settled_tail = m;
			pp = &m->next;
		}
	}
}

long
sub_fleet_wait_ms(const struct sub *s, long timeout)
{
	return s->settled_head != NULL && timeout > FLEET_SETTLE_MS ?
	    FLEET_SETTLE_MS : timeout;
}

/* One message: refused (acknowledged, counted, logged), or its runs. */
static void
take(struct sub *s, struct sub_amqp_msg *m)
{
	struct event_error err;
	int n;

	if (m->len > s->cfg->max_event_size) {
		err.code = EV_TOO_LARGE;
		snprintf(err.message, sizeof(err.message), "%zu bytes, over the "
		    "limit of %zu bytes (limits.max_event_size)", m->len,
		    s->cfg->max_event_size);
		n = -1;
	} else {
		m->open = 1;
		n = sub_on_message(s, m, &err);
		m->open = 0;
	}
	if (n < 0) {
		s->bad++;
		log_limited(&s->bad_rl, LOG_LVL_WARNING, "amqp: message on queue "
		    "%s acknowledged and dropped: %s: %s",
		    sub_amqp_queue(s->amqp, m->group), event_err_code(err.code),
		    err.message);
	}
	if (m->runs == 0)
		complete(s, m);
}

static void
on_amqp(struct loop *l, int mask, void *arg)
{
	struct sub *s = arg;
	struct sub_amqp_msg *m;

	(void)l;
	(void)mask;
	if (!s->ready && sub_amqp_consuming(s->amqp)) {
		s->ready = 1;
		log_info("ready subscribed to %s", sub_amqp_describe(s->amqp));
		daemon_notify("READY=1");
	}
	while (!s->stopping && s->qlen < (size_t)s->cfg->queue_size &&
	    (m = sub_amqp_take(s->amqp)) != NULL)
		take(s, m);
}

void
sub_fleet_pause(struct sub *s, int pause)
{
	if (!pause && s->amqp_io < 0)
		s->amqp_io = loop_add_fd(s->loop, sub_amqp_fd(s->amqp), LOOP_READ,
		    on_amqp, s);
	else if (pause && s->amqp_io >= 0) {
		loop_del(s->loop, s->amqp_io);
		s->amqp_io = -1;
	}
}

/* The handler table's "exclusive" handlers. */
static size_t
exclusive_handlers(const struct match_table *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nentries; i++)
		for (size_t k = 0; k < t->entries[i].nhandlers; k++)
			n += t->entries[i].handlers[k].exclusive != 0;
	return n;
}

int
sub_fleet_open(struct sub *s, const char *uri, char *err, size_t errsz)
{
	size_t excl = exclusive_handlers(s->tbl->t);

	s->amqp = sub_amqp_new(s->cfg, uri, excl > 0, err, errsz);
	if (s->amqp == NULL)
		return -1;
	log_info("amqp source: %s; %zu exclusive handler%s run "
	    "from the group's queue; no catch-up from the store (the queues "
	    "keep what is not acknowledged)", sub_amqp_describe(s->amqp), excl,
	    excl == 1 ? "" : "s");
	/* s->uri names the source in log lines: never the password */
	snprintf(s->uri, sizeof(s->uri), "%s", strstr(sub_amqp_describe(
	    s->amqp), " on ") + 4);
	return 0;
}

void
sub_fleet_reloaded(struct sub *s, const struct match_table *t)
{
	size_t excl;

	if (s->amqp == NULL)
		return;
	/* reload() has set the new max_concurrency */
	sub_amqp_set_prefetch(s->amqp, s->cfg->max_concurrency);
	excl = exclusive_handlers(t);
	if ((excl > 0) != sub_amqp_group(s->amqp))
		log_warn("reload: %s; the queues consumed change when event-sub "
		    "is restarted", excl > 0 ? "the table now has exclusive "
		    "handlers, and the group's queue is not consumed: they do "
		    "not run" : "the table has no exclusive handler any more, "
		    "and the group's queue is still consumed: its messages are "
		    "acknowledged without a run");
}

void
sub_fleet_close(struct sub *s)
{
	struct sub_amqp_msg *m;

	if (s->amqp == NULL)
		return;
	sub_fleet_pause(s, 1);
	/* results not stored (a failed start): left to the broker */
	while ((m = s->settled_head) != NULL) {
		s->settled_head = m->next;
		sub_amqp_drop(s->amqp, m);
	}
	s->settled_tail = NULL;
	sub_amqp_free(s->amqp);
	s->amqp = NULL;
}
