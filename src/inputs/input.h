/*
 * input: event-router's inputs as plugins, in the manner of Fluent Bit's
 * input plugins.  Each kind of input is one file with one ops table
 * (struct input_ops), registered in the static table of input.c under the
 * name config.json gives it:
 *
 *   aggregator   in_pull.c   ZeroMQ PULL (fire-event -z zmq.PUSH, batches)
 *   ZMQInput     in_rep.c    ZeroMQ REP, one reply per event
 *   AMQPInput    in_amqp.c   a RabbitMQ queue (OpenStack notifications)
 *   HTTPInput    in_http.c   webhooks over HTTP
 *
 * Each reads its own section of config.json (ops->parse, through
 * cfg_reader.h's getters) into settings of its own, declared in its
 * header; cfg_load.c reaches them through input_read() (cfg_plugins.h).
 *
 * Every input's messages reach the router on a ZeroMQ socket of its own,
 * which the router's loop watches (input_listen()): the aggregator's PULL,
 * a ZMQInput's ROUTER (REQ clients see a REP: the same replies, but many
 * requests may wait for theirs at once), and for the inputs with threads
 * of their own (AMQP, HTTP: feeder.h) an inproc:// ROUTER their threads
 * send to.  Each message takes the one path host.take(), the router's:
 * validate, stamp, store, publish and answer (an answer may come later:
 * input_reply_to()).
 *
 * Life of an input: input_start() binds its socket; once every input is
 * bound and the store is open, input_run() starts what it runs on its own
 * (threads); the loop serves it (ready line: input_describe()); at
 * shutdown input_stop() (no more input taken: an input of
 * its own threads still gets the replies it waits for), the router keeps
 * turning until input_idle() or its drain_ms passed, then input_free().
 * Every call from the router's thread.
 */
#ifndef ER_INPUT_H
#define ER_INPUT_H

#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "log.h"

struct cfg_node;
struct cfg_reader;
struct input;
struct input_refusals;
struct loop;

/* How long the router keeps answering inputs that are not idle after it
 * stops taking input (ms), unless their kind says otherwise (drain_ms). */
#define INPUT_DRAIN_MS 5000

/* What every input is given: the router's own, none of it owned. */
struct input_host {
	/*
	 * take(arg, in, m): the one path every message m an input receives
	 * takes (the router's; m is not kept): validate, stamp, publish,
	 * answer when the input answers (input_reply(), or later
	 * input_reply_to() with a copy of in->env), store.  Returns 0
	 * (accepted, or waiting for the store) or -1 (refused: counted,
	 * logged, answered).
	 */
	int (*take)(void *arg, struct input *in, const struct bus_msg *m);
	/*
	 * flush(arg, in): after each wake-up's messages of in (up to
	 * ops->batch of them): what take() held back goes out now.  NULL:
	 * take() holds nothing back.
	 */
	void (*flush)(void *arg, struct input *in);
	void *arg;
	struct loop *loop;		/* the router's loop */
	struct bus *bus;		/* its ZeroMQ context */
	const struct cfg *cfg;		/* its configuration */
};

/* One running input: the part every input has, and its plugin's own. */
struct input {
	const struct input_ops *ops;
	struct input_host host;
	int index;			/* its instance (struct input_conf) */
	const struct cfg_plugin *plugin;	/* host.cfg->inputs[index] */
	const char *ns;			/* default namespace (in host.cfg) */
	char name[CFG_URI_MAX];		/* "pull", "rep", "amqp:NS": in logs */
	char what[CFG_URI_MAX + 32];	/* "\"event rejected on pull\" lines" */
	struct log_ratelimit reject_rl;	/* per input: one cannot hide another */
	/* messages of a ROUTER no REQ client sends (bus_recv_request()),
	 * dropped unanswered: counted, logged rate-limited */
	unsigned long long malformed;
	struct log_ratelimit malformed_rl;
	struct input_refusals *refusals;	/* input_refused() */
	struct bus_sock *sock;		/* where its messages arrive */
	int routed;			/* sock is a ROUTER: env below */
	struct bus_envelope env;	/* the request host.take() has */
	int io;				/* sock's loop registration, -1: none */
	char bound[CFG_URI_MAX];	/* sock's endpoint, as bound */
	void *ctx;			/* the plugin's own state */
	long long last_ms;		/* util_mono_ms() of its last wake-up
				   that took a message */
	int joined;			/* input_join() ran */
};

struct input_ops {
	/* as in config.json: a feeder's "handler" ("ZMQInput"...), or the
	 * top-level section that configures it (own_section) */
	const char *name;
	int own_section;	/* 1: "aggregator", not in feeds.feeders */
	int max;		/* instances at most; 0: no limit of its own */
	/*
	 * Read the section of one instance into p (cfg_plugins.h): set
	 * p->conf (a struct of the plugin's header, as soon as it is
	 * allocated: p is released on failure), p->ns when "" (the
	 * kind's default namespace), and cfg_listen() what it will
	 * listen on.  section NULL: absent, the defaults.  Returns 0, or
	 * -1 with the reader's error.
	 */
	int (*parse)(struct cfg_reader *r, const struct cfg_node *section,
	    const struct cfg *cfg, struct cfg_plugin *p);
	void (*free_conf)(void *conf);	/* NULL: free() */
	/*
	 * On the ready line (event-reactor(7), "Readiness"): "KEY=ENDPOINT,..."
	 * for the inputs of this kind, "KEY=-" when there are none; NULL:
	 * each input of this kind adds the words describe() gives.
	 */
	const char *ready_key;
	int batch;		/* messages taken per wake-up */
	int replies;		/* 1: each message gets an answer (ROUTER) */
	/*
	 * Set up the input of instance index of cfg (cfg->inputs[index],
	 * in->plugin, its settings in->plugin->conf): set in->ns and
	 * in->name, input_listen().  Returns 0, or -1 with err[errsz];
	 * input_free() cleans up either way.
	 */
	int (*start)(struct input *in, int index, char *err, size_t errsz);
	/*
	 * Once every input is bound and the store is open: start what the
	 * input runs on its own (threads, a listening library), with every
	 * signal blocked so that its threads leave them to the router's
	 * loop.  in->ctx is the plugin's from here.  Returns 0, or -1 with
	 * err[errsz].  NULL: nothing to run.
	 */
	int (*run)(struct input *in, int index, char *err, size_t errsz);
	/* Stop taking input, at once.  NULL: the loop stops serving it. */
	void (*stop)(struct input *in);
	/* 1 once stopped with nothing in flight.  NULL: always. */
	int (*idle)(struct input *in);
	/* How long after the stop the router serves it while it is not
	 * idle (ms); 0: INPUT_DRAIN_MS. */
	int drain_ms;
	/* Still not idle then: why, and what is lost, for the router's
	 * warning.  NULL: "requests in flight". */
	const char *busy;
	/* Abandon what waits, join its threads, free ctx.  NULL: no ctx. */
	void (*free)(struct input *in);
	/* The words on the ready line.  NULL: in->bound. */
	const char *(*describe)(const struct input *in);
};

/* An input a configuration asks for: its kind and its instance. */
struct input_conf {
	const struct input_ops *ops;
	int index;			/* in cfg->inputs */
};

/*
 * The inputs cfg configures, in the order the router serves them and names
 * them on the ready line: those of a ready_key, kind by kind in the
 * table's order (the aggregator, then each ZMQInput), then the others
 * (the AMQPInput and HTTPInput feeders) in the order of "feeds".  Fills
 * out[max] and returns how many.
 */
int input_configured(const struct cfg *cfg, struct input_conf *out, int max);
/* The most input_configured() can return. */
#define INPUT_MAX CFG_MAX_INPUTS
/* Inputs with threads of their own (ops->run: the feeders) at most. */
#define INPUT_FEEDERS_MAX 8

/*
 * The registered kinds, in the table's order: the i-th, or NULL past the
 * last.
 */
const struct input_ops *input_kind(int i);

/*
 * Set up the input ic names (struct input_ops.start) with the router's
 * host.  Returns a new input, or NULL with err[errsz] (nothing left).
 */
struct input *input_start(const struct input_conf *ic,
    const struct input_host *host, char *err, size_t errsz);
/* Then run it (struct input_ops.run): 0, or -1 with err[errsz]. */
int input_run(struct input *in, char *err, size_t errsz);
void input_stop(struct input *in);
int input_idle(struct input *in);
const char *input_describe(const struct input *in);
/* Its ops->drain_ms, or INPUT_DRAIN_MS (ms). */
int input_drain_ms(const struct input *in);
/* Free what the input runs (ops->free: its threads are joined), so that
 * nothing more happens in it; input_free() does it when not done. */
void input_join(struct input *in);
/* Free what the input runs, then its socket; NULL is a no-op. */
void input_free(struct input *in);

/* ---- for the plugins ---- */

/*
 * The largest frame a peer may send an input's socket (bytes): the
 * configured limits.max_event_size and this much more, so that a message
 * a little over the limit is still read and answered with too_large.  A
 * peer that announces a larger frame is disconnected before it is
 * buffered (bus_set_max_frame()): it gets no reply.
 */
#define INPUT_FRAME_SLACK 65536

/*
 * Bind in->sock, a socket of type (BUS_PULL, or BUS_ROUTER for an input
 * that replies), to uri in the router's context and have the loop serve
 * it: up to ops->batch messages per wake-up, each to host.take(), then
 * host.flush() once.  A frame over limits.max_event_size +
 * INPUT_FRAME_SLACK bytes cuts its sender's connection.  Sets in->bound.
 * Returns 0, or -1 with err "cannot bind KIND input URI: reason" (KIND:
 * PULL or REP).
 */
int input_listen(struct input *in, enum bus_type type, const char *uri,
    char *err, size_t errsz);

/*
 * A message that the input's own threads refused before it reached
 * host.take() (HTTPInput's 401, 404, 413...; AMQPInput's too_large), whose
 * reply or log line gave code: counted under code, which is copied (at
 * most INPUT_CODE_MAX - 1 bytes of it).  Any thread.  The router takes the
 * counts (input_refusals_take()) into eventreactor_events_rejected_total
 * and its stop line, as it does the messages it refuses itself.  An input
 * counts up to INPUT_CODES_MAX codes, the last place INPUT_CODE_OTHER's,
 * for any further one (HTTPInput can give 15 codes of its own, AMQPInput
 * fewer: Rejection codes, HTTPInput requests and AMQPInput messages in
 * event-reactor(7)).
 */
#define INPUT_CODE_MAX 32
#define INPUT_CODES_MAX 16
#define INPUT_CODE_OTHER "other"
void input_refused(struct input *in, const char *code);

/* ---- for the router ---- */

/*
 * Answer the message just taken on a replying input (ops->replies): text
 * [len] is the stamped event or the error JSON.  A failed send is logged.
 */
void input_reply(struct input *in, const char *text, size_t len);
/* Answer an earlier message of in, whose in->env was copied to env. */
void input_reply_to(struct input *in, const struct bus_envelope *env,
    const char *text, size_t len);
/*
 * The input's own refusals since the last call (input_refused()):
 * fn(arg, in, code, n) for each code refused n more times.  Returns the
 * sum of the n.  Cheap when there is none (an atomic read).
 */
unsigned long long input_refusals_take(struct input *in,
    void (*fn)(void *arg, struct input *in, const char *code,
    unsigned long long n), void *arg);

#endif
