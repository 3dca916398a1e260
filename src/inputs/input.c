/* input: the inputs' table and what they share.  See input.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "loop.h"
#include "util.h"

/* The plugins: one file each, one line here. */
extern const struct input_ops input_pull, input_rep, input_amqp, input_http;

static const struct input_ops *const kinds[] = {
	&input_pull,
	&input_rep,
	&input_amqp,
	&input_http,
};

const struct input_ops *
input_kind(int i)
{
	if (i < 0 || (size_t)i >= sizeof(kinds) / sizeof(kinds[0]))
		return NULL;
	return kinds[i];
}

static const struct input_ops *
find(const char *name)
{
	const struct input_ops *ops;

	for (int i = 0; (ops = input_kind(i)) != NULL; i++)
		if (strcmp(ops->name, name) == 0)
			return ops;
	abort();	/* config.c names only these */
}

int
input_configured(const struct cfg *cfg, struct input_conf *out, int max)
{
	int n = 0;

	/* config.c's sections as they are today: the aggregator, the
	 * ZMQInput feeders, then the others in their order */
	if (n < max)
		out[n++] = (struct input_conf){ find("aggregator"), 0 };
	for (int i = 0; i < cfg->nreps && n < max; i++)
		out[n++] = (struct input_conf){ find("ZMQInput"), i };
	for (int i = 0; i < cfg->nfeeders && n < max; i++)
		out[n++] = (struct input_conf){ find(cfg->feeders[i].kind ==
		    FEEDER_AMQP ? "AMQPInput" : "HTTPInput"), i };
	return n;
}

struct input *
input_start(const struct input_conf *ic, const struct input_host *host,
    char *err, size_t errsz)
{
	struct input *in = xcalloc(1, sizeof(*in));

	in->ops = ic->ops;
	in->index = ic->index;
	in->host = *host;
	in->io = -1;
	in->reject_rl.interval = 10;
	in->reject_rl.burst = 10;
	in->reject_rl.what = in->what;
	if (in->ops->start(in, ic->index, err, errsz) != 0) {
		input_free(in);
		return NULL;
	}
	snprintf(in->what, sizeof(in->what), "\"event rejected on %s\" lines",
	    in->name);
	return in;
}

int
input_run(struct input *in, char *err, size_t errsz)
{
	sigset_t all, old;
	int rc;

	if (in->ops->run == NULL)
		return 0;
	/* threads started from here inherit a mask with every signal
	 * blocked: SIGTERM and friends go to the main thread's loop */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = in->ops->run(in, in->index, err, errsz);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Messages on in's socket (loop callback): each takes the one path. */
static void
on_readable(struct loop *l, int mask, void *arg)
{
	struct input *in = arg;
	struct bus_msg m;

	(void)l;
	(void)mask;
	for (int n = 0; n < in->ops->batch; n++) {
		if (bus_recv(in->sock, &m, 1) != 0)
			return;
		in->host.take(in->host.arg, in, &m);
		bus_msg_close(&m);
	}
}

int
input_listen(struct input *in, enum bus_type type, const char *uri,
    char *err, size_t errsz)
{
	char why[CFG_URI_MAX + 128];

	in->sock = bus_socket(in->host.bus, type, 0, err, errsz);
	if (in->sock == NULL)
		return -1;
	if (bus_bind(in->sock, uri, in->bound, sizeof(in->bound), why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "cannot bind %s input %s",
		    type == BUS_REP ? "REP" : "PULL", why);
		return -1;
	}
	in->io = loop_add_sock(in->host.loop, in->sock, LOOP_READ, on_readable,
	    in);
	return 0;
}

void
input_reply(struct input *in, const char *text, size_t len)
{
	if (bus_send(in->sock, text, len, 0, 0) != 0)
		log_warn("reply on %s failed: %s", in->bound, strerror(errno));
}

/* No more messages taken from in's socket (it stays open). */
static void
unlisten(struct input *in)
{
	loop_del(in->host.loop, in->io);
	in->io = -1;
}

void
input_stop(struct input *in)
{
	if (in->ops->stop != NULL)
		in->ops->stop(in);
	else
		unlisten(in);
}

int
input_idle(struct input *in)
{
	return in->ops->idle != NULL ? in->ops->idle(in) : 1;
}

const char *
input_describe(const struct input *in)
{
	return in->ops->describe != NULL ? in->ops->describe(in) : in->bound;
}

void
input_free(struct input *in)
{
	if (in == NULL)
		return;
	/* before the socket: its threads may still be sending to it */
	if (in->ops->free != NULL)
		in->ops->free(in);
	unlisten(in);
	bus_close(in->sock);
	free(in);
}
