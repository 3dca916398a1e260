/*
 * output: where event-router publishes, as plugins in the manner of Fluent
 * Bit's output plugins.  Each kind of output is one file with one ops
 * table (struct output_ops), registered in the static table of output.c
 * under the "handler" name config.json's "outputs" gives it:
 *
 *   zeromq   out_zmq.c   a PUB stream (an XPUB), event or topic framing
 *   amqp     out_amqp.c  a RabbitMQ topic exchange, through a spool
 *
 * Each reads its own "config" (ops->parse, through cfg_reader.h's getters)
 * into settings of its own, declared in its header; cfg_load.c reaches them
 * through output_read() (cfg_plugins.h).
 *
 * The router opens every output before its inputs (an output registers
 * its own sockets on the router's loop then, so that a turn serves them
 * before the inputs), hands each accepted event to every output's
 * publish(), calls flush() before each wait of its loop, and close() at
 * the end.  Every call from the router's thread.
 */
#ifndef ER_OUTPUT_H
#define ER_OUTPUT_H

#include <stddef.h>

#include "config.h"
#include "event.h"

struct bus;
struct cfg_node;
struct cfg_reader;
struct loop;

/* What every output is given: the router's own, none of it owned. */
struct output_host {
	struct loop *loop;		/* the router's loop */
	struct bus *bus;		/* its ZeroMQ context */
	const struct cfg *cfg;		/* its configuration */
	/*
	 * stopping(arg): 1 once the router stops (SIGTERM, SIGINT), even
	 * before its loop has run the signal's callback: a publish waiting
	 * for room gives up at once.
	 */
	int (*stopping)(void *arg);
	void *arg;
};

/* What an output counts, for the router's last line. */
struct output_stats {
	unsigned long long stalls;	/* subscribers set aside (zeromq) */
	unsigned long long spool_depth;	/* records in its spool file now
					   (amqp: every record of the file) */
};

/* One open output: the part every output has, and its plugin's own. */
struct output {
	const struct output_ops *ops;
	struct output_host host;
	int index;			/* its instance (struct output_conf) */
	const struct cfg_plugin *plugin;	/* host.cfg->outputs[index] */
	void *ctx;			/* the plugin's own state */
};

struct output_ops {
	const char *name;	/* "handler" in "outputs": "zeromq" */
	/* On the ready line: "KEY=WORDS,..." with the describe() of each
	 * output of this kind (event-reactor(7), "Readiness"); NULL: each
	 * output of this kind adds its describe() after the inputs'. */
	const char *ready_key;
	/*
	 * Read the "config" of one instance into p (cfg_plugins.h): set
	 * p->conf (a struct of the plugin's header, as soon as it is
	 * allocated: p is released on failure) and cfg_listen() what it
	 * will listen on.  section NULL: absent, the defaults (p->at -1:
	 * one of the built-in outputs).  Returns 0, or -1 with the
	 * reader's error.
	 */
	int (*parse)(struct cfg_reader *r, const struct cfg_node *section,
	    const struct cfg *cfg, struct cfg_plugin *p);
	void (*free_conf)(void *conf);	/* NULL: free() */
	/*
	 * Open the output of instance index of cfg (cfg->outputs[index],
	 * o->plugin, its settings o->plugin->conf): bind or connect,
	 * register on host.loop what it serves there.  Returns 0, or -1
	 * with err[errsz]; close() cleans up either way.
	 */
	int (*open)(struct output *o, int index, char *err, size_t errsz);
	/*
	 * Once the router has taken its user (identity.h) and opened the
	 * store: start what the output runs on its own (threads, files of
	 * that user's), with every signal blocked in its threads.  Returns
	 * 0, or -1 with err[errsz].  NULL: nothing to run.
	 */
	int (*run)(struct output *o, char *err, size_t errsz);
	/*
	 * Publish ev (its text, ev->json; not kept past the call unless the
	 * output takes a hold with event_share()).  now_ns: the router's
	 * monotonic clock (util_mono_ns()) at this event.  May wait for room
	 * until it gives up (host.stopping).  Returns 0, or -1 when this
	 * output dropped it.
	 */
	int (*publish)(struct output *o, const struct event *ev,
	    long long now_ns);
	/* Before the router's loop waits: what publishing left to do.
	 * NULL: nothing. */
	void (*flush)(struct output *o);
	/* Close, free ctx; in any state open() left. */
	void (*close)(struct output *o);
	/* The words on the ready line: the endpoint bound. */
	const char *(*describe)(const struct output *o);
	/* Add what it counted to *st.  NULL: nothing. */
	void (*stats)(const struct output *o, struct output_stats *st);
};

/* An output a configuration asks for: its kind and its instance. */
struct output_conf {
	const struct output_ops *ops;
	int index;			/* in cfg->outputs */
};

/*
 * The outputs cfg configures, in the order of "outputs" (without one, the
 * defaults config.h names).  Fills out[max] and returns how many.
 */
int output_configured(const struct cfg *cfg, struct output_conf *out,
    int max);

/* The registered kinds, in the table's order: the i-th, or NULL past the
 * last. */
const struct output_ops *output_kind(int i);

/*
 * Open the output oc names with the router's host.  Returns a new output,
 * or NULL with err[errsz] (nothing left).
 */
struct output *output_open(const struct output_conf *oc,
    const struct output_host *host, char *err, size_t errsz);
/* Close and free; NULL is a no-op. */
void output_close(struct output *o);

#endif
