/*
 * config: config.json (cfg_load.c; the instances of plugins: config.c) and
 * event-handlers.json (handlers.c).
 * Defaults, validation, and errors of the form "FILE:LINE:COLUMN: what is
 * wrong" (lines and columns from 1, columns in characters, as jansson
 * counts them; cfg_reader.h).
 *
 * config.json keeps the ancestor's format (event-reactor.conf(5)).
 */
#ifndef ER_CONFIG_H
#define ER_CONFIG_H

#include <stddef.h>

#include "log.h"
#include "match.h"

#define CFG_DEFAULT_PATH "/etc/event-reactor/config.json"
#define CFG_DEFAULT_HANDLERS "/etc/event-reactor/event-handlers.json"
#define CFG_DEFAULT_HANDLERS_DIR "/etc/event-reactor/event-handlers"
#define CFG_DEFAULT_STORE_PATH "/var/lib/event-reactor/events.db"
/* store_mongo's spool while MongoDB is away (event-reactor(7), "MongoDB"). */
#define CFG_DEFAULT_SPOOL_PATH "/var/lib/event-reactor/spool.db"
#define CFG_DEFAULT_SPOOL_MAX 1000000LL	/* records */
/* limits.max_hops: handler runs from the first event of a chain to an
 * event the router still takes (event-reactor.conf(5)) */
#define CFG_DEFAULT_MAX_HOPS 8
/* the amqp output's exchange, and event-sub's with -u amqp:// */
#define CFG_DEFAULT_AMQP_EXCHANGE "event-reactor"
/* subscriber.group: the fleet's group (event-reactor(7), "Running a fleet") */
#define CFG_DEFAULT_SUB_GROUP "event-reactor"
/* subscriber.name and .group: bytes, with the NUL */
#define CFG_SUB_NAME_MAX 128
/* the amqp output's spool (out_amqp.h) */
#define CFG_DEFAULT_AMQP_SPOOL_PATH "/var/lib/event-reactor/amqp.spool"
/*
 * logging.dir: where a daemon logs, as NAME.log, when syslog was asked for
 * (-D, --syslog) and nothing listens on /dev/log; the ancestor's init.d
 * script wrote its logs there too.
 */
#define CFG_DEFAULT_LOG_DIR "/var/log/event-reactor"
/*
 * limits.publish_wait_ms: how long publishing waits for a subscriber
 * whose queue is full (ZeroMQ's high-water mark, BUS_PUB_HWM) before that
 * subscriber starts missing events (event-reactor(7), "Slow subscribers").
 */
#define CFG_DEFAULT_PUBLISH_WAIT_MS 1000
/*
 * subscriber.catch_up: the stored events event-sub runs the handlers of
 * when it did not receive them (event-reactor(7), "Delivery promises"): at
 * most this old (seconds; an hour: an outage an operator notices within
 * it) and this many (the newest; a burst of our PULL bench's size).  0:
 * no bound of that kind.
 */
#define CFG_DEFAULT_CATCH_UP_AGE 3600
#define CFG_DEFAULT_CATCH_UP_COUNT 100000
#define CFG_DEFAULT_PULL "tcp://127.0.0.1:45454"
#define CFG_DEFAULT_REP "tcp://127.0.0.1:55055"
#define CFG_DEFAULT_PUB "tcp://127.0.0.1:55000"	/* the ancestor's */
#define CFG_DEFAULT_TOPIC_PUB "tcp://127.0.0.1:55001"	/* event-sub's */
/*
 * The plugins of a file that leaves them out (event-reactor.conf(5)): the
 * aggregator (its own section), one ZMQInput feeder, two zeromq outputs,
 * the sqlite store.
 */
#define CFG_AGGREGATOR "aggregator"
#define CFG_DEFAULT_FEEDER "ZMQInput"
#define CFG_DEFAULT_OUTPUT "zeromq"
#define CFG_DEFAULT_STORE "sqlite"
/* Inputs: the aggregator, up to 16 ZMQInputs and 8 feeders (input.h). */
#define CFG_MAX_INPUTS 25
#define CFG_MAX_OUTPUTS 4
#define CFG_URI_MAX 256
/* Warnings kept for listeners beyond loopback (CFG_MAX_INPUTS's ZeroMQ
 * inputs and CFG_MAX_OUTPUTS). */
#define CFG_EXPOSED_MAX (CFG_MAX_INPUTS + CFG_MAX_OUTPUTS)
/* Config files are small; refuse anything larger than this (bytes). */
#define CFG_FILE_MAX (4 * 1024 * 1024)

struct cfg_reader;
struct cfg_node;

/*
 * "curve" (event-reactor.conf(5)): the router's CURVE server key and the
 * clients it lets in.  Keys as Z85 text (CFG_KEY_Z85 characters; bus.h's
 * BUS_KEY_Z85).  Up to CFG_CURVE_ADDRS client_addresses.
 */
#define CFG_KEY_Z85 40
#define CFG_CURVE_ADDRS 64
/* The ZAP domain of the router's CURVE sockets (any non-empty name). */
#define CFG_ZAP_DOMAIN "event-reactor"
/* A network of client_addresses: ADDRESS/BITS, IPv4 or IPv6. */
struct cfg_net {
	int family;			/* AF_INET, AF_INET6 */
	unsigned char addr[16];		/* network order, host bits zero */
	int bits;			/* prefix length */
	char text[64];			/* as written */
};
struct cfg_curve {
	int on;				/* the section is there */
	char server_key[4096];		/* the secret certificate, absolute */
	char clients_dir[4096];		/* absolute */
	char public_key[CFG_KEY_Z85 + 1];	/* of server_key */
	char secret_key[CFG_KEY_Z85 + 1];
	struct cfg_net nets[CFG_CURVE_ADDRS];	/* client_addresses */
	int nnets;			/* 0: any address */
};
/* event-sub's (subscriber.curve_key, .curve_server_key), fire-event's. */
struct cfg_curve_client {
	int on;				/* both keys given */
	char public_key[CFG_KEY_Z85 + 1];	/* its own pair */
	char secret_key[CFG_KEY_Z85 + 1];
	char server_key[CFG_KEY_Z85 + 1];	/* the router's public key */
};

/*
 * A client's keys from its secret certificate key_path and the router's
 * public certificate server_path (cert.h; either NULL: c->on stays 0 and
 * the other must be NULL too).  Returns 0, or -1 with err[errsz] = "PATH:
 * what is wrong".
 */
int cfg_curve_client_load(const char *key_path, const char *server_path,
    struct cfg_curve_client *c, char *err, size_t errsz);
/*
 * read 0: config.json's "curve" section is checked but its server_key and
 * clients_dir are not read (event-sub, which does not use them and may
 * not be allowed to read the router's secret key).  Default 1.
 */
void cfg_curve_server_keys(int read);
/* 1 unless cfg_curve_server_keys(0): the router's own secrets are read
 * with the configuration, its CURVE key files and its HTTPInputs'
 * cert_file and key_file (event-sub reads neither). */
int cfg_server_secrets(void);
/* 1 when ip (text, as ZAP gives it) is in one of curve's nets, or curve
 * has none; else 0. */
int cfg_curve_allows(const struct cfg_curve *curve, const char *ip);

/*
 * A stream's framing (event-reactor(7), "Wire protocol"):
 * CFG_FRAMING_EVENT, one frame per event and nothing else;
 * CFG_FRAMING_TOPIC, the topic "namespace:event_type" then the event, and
 * a control message for each subscription.
 */
enum cfg_framing { CFG_FRAMING_EVENT = 0, CFG_FRAMING_TOPIC };

/*
 * One plugin instance of a configuration: an input, an output or the
 * store, as a section of config.json configures it, or a default.  Its
 * kind's parse function (input.h, output.h, store_backend.h) makes conf;
 * cfg_free() releases it.
 */
struct cfg_plugin {
	const void *ops;	/* its kind's table entry (input_ops...) */
	void *conf;		/* its settings: a struct of the plugin's
				 * header (in_amqp.h...); NULL: none */
	void (*free_conf)(void *conf);	/* NULL: free() */
	char ns[128];		/* inputs: the default namespace of events */
	int at;			/* its index in its array of the file
				 * (outputs[at]); -1: a default */
};

/*
 * A configuration: the core settings, and the plugin instances.  Made by
 * cfg_defaults() or cfg_load(), released by cfg_free(); never copied (the
 * instances' settings are owned once).
 */
struct cfg {
	/* in the order read: the file's, then the defaults it leaves out */
	struct cfg_plugin inputs[CFG_MAX_INPUTS];
	int ninputs;
	struct cfg_plugin outputs[CFG_MAX_OUTPUTS];	/* enabled ones only */
	int noutputs;			/* 1..CFG_MAX_OUTPUTS */
	struct cfg_plugin store;	/* one, of store.type */
	int have_level;			/* logging.loglevel was given */
	enum log_level level;
	char log_dir[4096];		/* logging.dir */
	size_t max_event_size;		/* bytes */
	int publish_wait_ms;		/* for a full subscriber; 0: never */
	int max_hops;			/* limits.max_hops: the "hops" an
					 * event may carry; CFG_DEFAULT_MAX_HOPS */
	char sub_uri[CFG_URI_MAX];	/* subscriber.uri; "": out_zmq.h */
	enum cfg_framing sub_framing;	/* subscriber.framing, when given */
	int sub_framing_set;
	int max_concurrency;		/* handler runs at once */
	int queue_size;			/* runs waiting for a slot */
	double shutdown_grace;		/* seconds */
	char sub_journal[4096];		/* subscriber.journal, absolute; "":
					   event-sub.journal beside the store */
	long long catch_up_max_age;	/* subscriber.catch_up.max_age, s */
	long long catch_up_max_count;	/* subscriber.catch_up.max_count */
	int python_workers;		/* pyfunc worker processes */
	long python_max_rss_mb;		/* replace a worker grown past it */
	struct cfg_curve curve;		/* "curve" */
	struct cfg_curve_client sub_curve;	/* subscriber.curve_key... */
	/* event-sub with -u amqp://: its fleet (cfg_fleet.h) */
	char sub_name[CFG_SUB_NAME_MAX];	/* subscriber.name; "": the
						   host name */
	char sub_group[CFG_SUB_NAME_MAX];	/* subscriber.group */
	char sub_exchange[256];		/* subscriber.exchange */
	int sub_quorum;			/* subscriber.queue_type: 1 quorum,
					   0 classic */
	char sub_ca_file[4096];		/* subscriber.ca_file, absolute */
	/* the router's ZeroMQ listeners reachable from other hosts while
	 * "curve" is absent: their warnings (cfg_warn_exposed()) */
	char exposed[CFG_EXPOSED_MAX][1024];
	int nexposed;
	/* "metrics": {"listen": "HOST:PORT"} (metrics_http.h), the
	 * router's and, without subscriber.metrics, event-sub's; "": off */
	char metrics_listen[CFG_URI_MAX];
	char sub_metrics_listen[CFG_URI_MAX];	/* subscriber.metrics */
	char user[64];			/* "user": "" absent (identity.h) */
	char group[64];			/* "group": "" absent */
};

/*
 * Fill *cfg (whatever it held: nothing is freed) with the built-in
 * defaults, everything bound to 127.0.0.1: the core settings and the
 * default instances, each made by its plugin (the aggregator at
 * CFG_DEFAULT_PULL, one ZMQInput at CFG_DEFAULT_REP of namespace "local",
 * the zeromq outputs CFG_DEFAULT_PUB, one frame per event, and
 * CFG_DEFAULT_TOPIC_PUB, topic framing; the sqlite store at
 * CFG_DEFAULT_STORE_PATH).  Release with cfg_free().
 */
void cfg_defaults(struct cfg *cfg);

/*
 * Load config.json over the defaults into *cfg (whatever it held: nothing
 * is freed).  The file's instances come first, then the defaults for what
 * it leaves out.  path NULL: the default path, and a missing file there
 * means "run on defaults" (returns 1).  An explicit path that is missing
 * is an error.  Returns 0 (loaded) or 1 (defaults), cfg to be released
 * with cfg_free(); or -1 with err[errsz] holding "FILE:LINE:COLUMN:
 * message" or "FILE: strerror", and nothing left to release in cfg.
 * Notices about unknown sections are logged at INFO.
 */
int cfg_load(const char *path, struct cfg *cfg, char *err, size_t errsz);

/*
 * Log, at WARNING, each ZeroMQ endpoint of the router reachable from
 * other hosts (endpoint.h, endpoint_exposed()) while "curve" is absent:
 * "[FILE:L:C: ]ZeroMQ endpoint URI (WHAT) is bound beyond loopback
 * without \"curve\": anyone who can reach it can send events (and so run
 * handlers) or read them".  The router at its start and its --check.
 */
void cfg_warn_exposed(const struct cfg *cfg);

/*
 * The settings event-sub takes only at its start that differ between was
 * (the running configuration) and now (one read again at SIGHUP), by
 * their names in config.json ("subscriber.python_workers, user"), into
 * out[outsz] ("" when none).  Returns how many differ.  Not compared:
 * the store's location (its plugin's settings), the CURVE keys and the
 * log level, which flags may set instead of the file.
 */
int cfg_sub_restart_changes(const struct cfg *was, const struct cfg *now,
    char *out, size_t outsz);

/* Release what cfg's instances hold; cfg keeps its core settings and no
 * instance.  Again on the same cfg: a no-op. */
void cfg_free(struct cfg *cfg);
/* Release one instance's settings and clear it. */
void cfg_plugin_free(struct cfg_plugin *p);

/*
 * obj's "framing" into *out, unless absent (*out left as it was):
 * "event" (CFG_FRAMING_EVENT) or "topic".  Returns 0, or -1 with the
 * reader's error at the key.  For subscriber.framing and the zeromq
 * outputs.
 */
int cfg_get_framing(struct cfg_reader *r, const struct cfg_node *obj,
    enum cfg_framing *out);

/*
 * What both daemons do first: apply the -l level (NULL: none given), load
 * the configuration (config_path NULL: the default, missing is fine),
 * then apply logging.loglevel unless -l was given.  prog names the
 * program in messages.  Returns -1 with the reason printed or logged and
 * *exit_code set (EX_USAGE, EX_CONFIG), else cfg_load()'s 0 or 1.
 */
int cfg_startup(const char *prog, const char *config_path, const char *level,
    struct cfg *cfg, int *exit_code);

/*
 * Make logging.dir absolute against the current directory (the plugins'
 * paths, the store's, are made absolute as they are read).
 */
void cfg_absolute_paths(struct cfg *cfg);

/*
 * Load event-handlers.json into a new table (free with match_table_free()).
 * Returns NULL with err[errsz] = "FILE:LINE:COLUMN: message" when the file
 * is unreadable, not JSON, has a duplicate key, an unknown driver, a bad
 * option value or an unsplittable shell command.  Unknown options are
 * logged as warnings naming FILE:LINE:COLUMN.
 */
struct match_table *cfg_load_handlers(const char *path, char *err, size_t errsz);

#endif
