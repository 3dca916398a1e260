/* input: the inputs' table and what they share.  See input.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_plugins.h"
#include "cfg_reader.h"
#include "input.h"
#include "loop.h"
#include "util.h"

/* input_refused()'s counts: code, refused so far, and taken so far. */
struct input_refusals {
	pthread_mutex_t lock;
	atomic_ullong pending;		/* counted, not taken yet */
	int n;
	struct {
		char code[INPUT_CODE_MAX];
		unsigned long long count, taken;
	} c[INPUT_CODES_MAX];
};

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
	return NULL;
}

const char *
input_known(void)
{
	static char known[256];
	const struct input_ops *ops;

	if (known[0] == '\0')
		for (int i = 0; (ops = input_kind(i)) != NULL; i++)
			if (!ops->own_section)
				cfg_list_add(known, sizeof(known), ", ",
				    ops->name);
	return known;
}

/*
 * Refuse a further instance of kind k past its max, or past
 * INPUT_FEEDERS_MAX inputs with threads of their own together.
 */
static int
check_room(struct cfg_reader *r, const struct input_ops *k,
    const struct cfg *cfg)
{
	char feeders[256] = "";
	const struct input_ops *ops;
	int same = 0, threads = 0;

	for (int i = 0; i < cfg->ninputs; i++) {
		ops = cfg->inputs[i].ops;
		same += ops == k;
		threads += ops->run != NULL;
	}
	if (k->max > 0 && same >= k->max)
		return cfg_error(r, NULL, "more than %d %s feeders", k->max,
		    k->name);
	if (k->run == NULL || threads < INPUT_FEEDERS_MAX)
		return 0;
	for (int i = 0; (ops = input_kind(i)) != NULL; i++)
		if (ops->run != NULL)
			cfg_list_add(feeders, sizeof(feeders), " and ",
			    ops->name);
	return cfg_error(r, NULL, "more than %d %s feeders", INPUT_FEEDERS_MAX,
	    feeders);
}

int
input_read(struct cfg_reader *r, const char *name,
    const struct cfg_node *section, const struct cfg *cfg,
    struct cfg_plugin *p)
{
	const struct input_ops *k = find(name);

	if (k == NULL)
		return 1;
	if (check_room(r, k, cfg) != 0)
		return -1;
	p->ops = k;
	p->free_conf = k->free_conf;
	return cfg_plugin_parse(r, "config", section, cfg, p, k->parse);
}

/*
 * Append to out[n..max) the inputs of cfg of kind k (NULL: of every kind
 * without a ready_key); returns the new n.
 */
static int
add_inputs(const struct cfg *cfg, const struct input_ops *k,
    struct input_conf *out, int n, int max)
{
	for (int i = 0; i < cfg->ninputs && n < max; i++) {
		const struct input_ops *ops = cfg->inputs[i].ops;
		if (k != NULL ? ops == k : ops->ready_key == NULL)
			out[n++] = (struct input_conf){ ops, i };
	}
	return n;
}

int
input_configured(const struct cfg *cfg, struct input_conf *out, int max)
{
	const struct input_ops *k;
	int n = 0;

	/* the keyed kinds in the table's order (the aggregator, the
	 * ZMQInputs), then the others in the order of the file */
	for (int i = 0; (k = input_kind(i)) != NULL; i++)
		if (k->ready_key != NULL)
			n = add_inputs(cfg, k, out, n, max);
	return add_inputs(cfg, NULL, out, n, max);
}

struct input *
input_start(const struct input_conf *ic, const struct input_host *host,
    char *err, size_t errsz)
{
	struct input *in = xcalloc(1, sizeof(*in));

	in->ops = ic->ops;
	in->index = ic->index;
	in->host = *host;
	in->plugin = &host->cfg->inputs[ic->index];
	in->io = -1;
	in->reject_rl.interval = 10;
	in->reject_rl.burst = 10;
	in->reject_rl.what = in->what;
	in->malformed_rl.interval = 10;
	in->malformed_rl.burst = 10;
	in->malformed_rl.what = "\"malformed message\" lines";
	in->refusals = xcalloc(1, sizeof(*in->refusals));
	pthread_mutex_init(&in->refusals->lock, NULL);
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

/*
 * The next message on in's socket into m: 0, 1 when it was one no REQ
 * client sends (dropped: counted and logged), -1 with errno.
 */
static int
next_message(struct input *in, struct bus_msg *m)
{
	char peer[64];
	int rc;

	if (!in->routed)
		return bus_recv(in->sock, m, 1);
	rc = bus_recv_request(in->sock, &in->env, m, 1, peer, sizeof(peer));
	if (rc == 1) {
		in->malformed++;
		log_limited(&in->malformed_rl, LOG_LVL_WARNING,
		    "malformed message on %s from %s dropped unanswered: no "
		    "empty delimiter frame before the request, as a REQ "
		    "client sends", in->name, peer[0] != '\0' ? peer :
		    "an unknown address");
	}
	return rc;
}

/* Messages on in's socket (loop callback): each takes the one path. */
static void
on_readable(struct loop *l, int mask, void *arg)
{
	struct input *in = arg;
	struct bus_msg m;
	int n, rc;

	(void)l;
	(void)mask;
	for (n = 0; n < in->ops->batch; n++) {
		if ((rc = next_message(in, &m)) < 0)
			break;
		if (rc == 1)
			continue;
		in->host.take(in->host.arg, in, &m);
		bus_msg_close(&m);
	}
	if (in->host.flush != NULL)
		in->host.flush(in->host.arg, in);
	/* once per wake-up, not per message; after the batch, which a
	 * loaded machine may take long over */
	if (n > 0)
		in->last_ms = util_mono_ms();
}

int
input_listen(struct input *in, enum bus_type type, const char *uri,
    char *err, size_t errsz)
{
	char why[CFG_URI_MAX + 128];

	in->sock = bus_socket(in->host.bus, type, 0, err, errsz);
	if (in->sock == NULL)
		return -1;
	in->routed = type == BUS_ROUTER;
	if (bus_set_max_frame(in->sock, (long long)in->host.cfg->max_event_size +
	    INPUT_FRAME_SLACK) != 0) {
		snprintf(err, errsz, "ZMQ_MAXMSGSIZE: %s", strerror(errno));
		return -1;
	}
	if (bus_bind(in->sock, uri, in->bound, sizeof(in->bound), why,
	    sizeof(why)) != 0) {
		snprintf(err, errsz, "cannot bind %s input %s",
		    in->routed ? "REP" : "PULL", why);
		return -1;
	}
	in->io = loop_add_sock(in->host.loop, in->sock, LOOP_READ, on_readable,
	    in);
	return 0;
}

void
input_reply(struct input *in, const char *text, size_t len)
{
	input_reply_to(in, &in->env, text, len);
}

void
input_reply_to(struct input *in, const struct bus_envelope *env,
    const char *text, size_t len)
{
	if (bus_send_routed(in->sock, env, text, len) != 0)
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

int
input_drain_ms(const struct input *in)
{
	return in->ops->drain_ms > 0 ? in->ops->drain_ms : INPUT_DRAIN_MS;
}

const char *
input_describe(const struct input *in)
{
	return in->ops->describe != NULL ? in->ops->describe(in) : in->bound;
}

void
input_join(struct input *in)
{
	if (!in->joined && in->ops->free != NULL)
		in->ops->free(in);
	in->joined = 1;
}

void
input_free(struct input *in)
{
	if (in == NULL)
		return;
	/* before the socket: its threads may still be sending to it */
	input_join(in);
	unlisten(in);
	bus_close(in->sock);
	if (in->refusals != NULL) {
		pthread_mutex_destroy(&in->refusals->lock);
		free(in->refusals);
	}
	free(in);
}

/* code's place in rf (as far as INPUT_CODE_MAX - 1 bytes), made when
 * new; -1 when rf has no room left. */
static int
code_place(struct input_refusals *rf, const char *code, int room)
{
	for (int i = 0; i < rf->n; i++)
		if (strncmp(rf->c[i].code, code, INPUT_CODE_MAX - 1) == 0)
			return i;
	if (rf->n >= room)
		return -1;
	snprintf(rf->c[rf->n].code, INPUT_CODE_MAX, "%s", code);
	return rf->n++;
}

void
input_refused(struct input *in, const char *code)
{
	struct input_refusals *rf = in->refusals;
	int i;

	pthread_mutex_lock(&rf->lock);
	/* the last place is kept for INPUT_CODE_OTHER */
	if ((i = code_place(rf, code, INPUT_CODES_MAX - 1)) < 0)
		i = code_place(rf, INPUT_CODE_OTHER, INPUT_CODES_MAX);
	rf->c[i].count++;
	pthread_mutex_unlock(&rf->lock);
	atomic_fetch_add(&rf->pending, 1);
}

unsigned long long
input_refusals_take(struct input *in,
    void (*fn)(void *arg, struct input *in, const char *code,
    unsigned long long n), void *arg)
{
	struct input_refusals *rf = in->refusals;
	unsigned long long sum = 0, n;

	if (atomic_load(&rf->pending) == 0)
		return 0;
	atomic_store(&rf->pending, 0);
	pthread_mutex_lock(&rf->lock);
	for (int i = 0; i < rf->n; i++) {
		n = rf->c[i].count - rf->c[i].taken;
		if (n == 0)
			continue;
		rf->c[i].taken = rf->c[i].count;
		fn(arg, in, rf->c[i].code, n);
		sum += n;
	}
	pthread_mutex_unlock(&rf->lock);
	return sum;
}
