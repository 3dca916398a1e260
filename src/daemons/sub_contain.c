/*
 * sub_contain: nothing a handler run started outlives it.  event-sub is a
 * child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER), so a process whose
 * parent exits is reparented to it, not to init, whatever its process
 * group or session.  After a run's process is reaped, event-sub looks at
 * its own children (proc_tree.h): every one that no driver owns (not a
 * running handler, not a Python worker) was left behind by a run that
 * ended, and is SIGKILLed with its descendants.  Reparenting happens
 * when the intermediate parent exits, so the look is made CONTAIN_PASSES
 * times, CONTAIN_PASS_MS apart, from a timer of the loop.  See sub_int.h
 * and event-sub(8), "Containment".
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "proc_tree.h"
#include "sub_int.h"
#include "util.h"

void
sub_contain_init(struct sub *s)
{
	struct contain *c = &s->ct;

	c->rl.interval = 10;
	c->rl.burst = 10;
	c->rl.what = "lines about processes left behind by handler runs";
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		log_warn("cannot become a child subreaper (prctl "
		    "PR_SET_CHILD_SUBREAPER: %s): processes that handler runs "
		    "leave behind are not contained", strerror(errno));
		return;
	}
	c->on = 1;
}

void
sub_contain_ended(struct sub *s, const struct handler *h,
    const char *event_id)
{
	struct contain *c = &s->ct;

	if (!c->on || !c->reaping)
		return;
	c->ended++;
	c->series++;
	free(c->where);
	free(c->handler);
	c->where = xstrdup(h->where);
	c->handler = xstrdup(h->handler);
	snprintf(c->event_id, sizeof(c->event_id), "%s", event_id);
}

/* 1 when child e of ours is to be left alone: a driver's, or in the
 * process group of a driver's (a run still running), or exited. */
static int
spared(struct sub *s, const struct proc_tree_entry *e)
{
	if (e->state == 'Z' || e->state == 'X')
		return 1;
	if (s->drv == NULL)
		return 0;	/* the drivers are gone (sub_contain_final()) */
	if (drivers_owns(s->drv, e->pid))
		return 1;
	return e->pgrp != e->pid && drivers_owns(s->drv, e->pgrp);
}

/* SIGKILL e unless it is dying already (killed a moment ago, by a look
 * or a deadline); 1 when it was sent one. */
static unsigned
kill_one(const struct proc_tree_entry *e)
{
	if (e == NULL || e->state == 'Z' || e->state == 'X' ||
	    proc_tree_dying(e, "/proc"))
		return 0;
	return kill(e->pid, SIGKILL) == 0;
}

/* SIGKILL kid and its descendants in t; how many were sent one. */
static unsigned
kill_left(const struct proc_tree *t, const struct proc_tree_entry *kid)
{
	unsigned n = 0;
	size_t nd;
	pid_t *d = proc_tree_descendants(t, kid->pid, &nd);

	for (size_t i = 0; i < nd; i++)
		n += kill_one(proc_tree_find(t, d[i]));
	free(d);
	return n + kill_one(kid);
}

/* One look: what no driver owns among our children, killed; how many. */
static unsigned
look(struct sub *s)
{
	struct proc_tree t;
	const struct proc_tree_entry *e;
	unsigned n = 0;
	size_t nk;
	pid_t *kids;

	if (proc_tree_read(&t, "/proc") != 0) {
		log_limited(&s->ct.rl, LOG_LVL_WARNING, "cannot read /proc to "
		    "find processes left behind by handler runs: %s",
		    strerror(errno));
		return 0;
	}
	kids = proc_tree_children(&t, getpid(), &nk);
	for (size_t i = 0; i < nk; i++) {
		e = proc_tree_find(&t, kids[i]);
		if (e != NULL && !spared(s, e))
			n += kill_left(&t, e);
	}
	free(kids);
	proc_tree_clear(&t);
	return n;
}

/*
 * A look, and its log line: it names the run when one run ended since the
 * last look, or none did and one run ended since the first look of the
 * series (what it left was reparented late); else it counts the runs
 * ended since the last look.
 */
static void
look_and_say(struct sub *s)
{
	struct contain *c = &s->ct;
	unsigned n = look(s);
	const char *what = n == 1 ? "process" : "processes";
	unsigned long ended = c->ended;

	c->ended = 0;
	if (n == 0)
		return;
	c->killed += n;
	if (ended == 1 || (ended == 0 && c->series == 1))
		log_limited(&c->rl, LOG_LVL_WARNING, "run of handler %s (%s) "
		    "for event %s: killed %u %s it left behind", c->where,
		    c->handler, c->event_id, n, what);
	else
		log_limited(&c->rl, LOG_LVL_WARNING, "killed %u %s left behind "
		    "by handler runs (runs ended since the last look: %lu; "
		    "running: %d)", n, what, ended,
		    s->drv != NULL ? drivers_active(s->drv) : 0);
}

/* The series of looks is over: the runs it was for are forgotten. */
static void
series_end(struct contain *c)
{
	c->timer = 0;
	c->passes = 0;
	c->series = 0;
}

static long
on_look(struct loop *l, void *arg)
{
	struct sub *s = arg;
	struct contain *c = &s->ct;

	(void)l;
	look_and_say(s);
	if (--c->passes > 0)
		return CONTAIN_PASS_MS;
	series_end(c);
	return LOOP_NOMORE;
}

void
sub_contain_look(struct sub *s)
{
	struct contain *c = &s->ct;

	if (!c->on)
		return;
	c->passes = CONTAIN_PASSES;
	if (c->timer == 0)
		c->timer = loop_add_timer(s->loop, 0, on_look, s);
}

void
sub_contain_final(struct sub *s)
{
	struct contain *c = &s->ct;
	struct timespec ts = { 0, CONTAIN_PASS_MS * 1000000L };
	int passes = c->passes > 0 ? c->passes : 1;

	if (!c->on)
		return;
	loop_del_timer(s->loop, c->timer);
	for (int i = 0; i < passes; i++) {
		if (i > 0)
			nanosleep(&ts, NULL);
		look_and_say(s);
	}
	series_end(c);
	log_limited_flush(&c->rl);
}

void
sub_contain_free(struct sub *s)
{
	free(s->ct.where);
	free(s->ct.handler);
}
