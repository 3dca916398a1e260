/*
 * config: config.json (config.c) and event-handlers.json (handlers.c).
 * Defaults, validation, and errors of the form "FILE:LINE:COLUMN: what is
 * wrong" (lines and columns from 1, columns in characters, as jansson
 * counts them; cfg_reader.h).
 *
 * config.json keeps the ancestor's format (README.rst, "Configuration").
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
/* store_mongo's spool while MongoDB is away (README.rst, "MongoDB"). */
#define CFG_DEFAULT_SPOOL_PATH "/var/lib/event-reactor/spool.db"
#define CFG_DEFAULT_SPOOL_MAX 1000000LL	/* records */
/*
 * logging.dir: where a daemon logs, as NAME.log, when syslog was asked for
 * (-D, --syslog) and nothing listens on /dev/log; the ancestor's init.d
 * script wrote its logs there too.
 */
#define CFG_DEFAULT_LOG_DIR "/var/log/event-reactor"
/*
 * limits.publish_wait_ms: how long publishing waits for a subscriber
 * whose queue is full (ZeroMQ's high-water mark, BUS_PUB_HWM) before that
 * subscriber starts missing events (README.rst, "Slow subscribers").
 */
#define CFG_DEFAULT_PUBLISH_WAIT_MS 1000
/* TTL index limit: expireAfterSeconds is an int32 (24855 days). */
#define CFG_TTL_DAYS_MAX 24855
#define CFG_DEFAULT_PULL "tcp://127.0.0.1:45454"
#define CFG_DEFAULT_REP "tcp://127.0.0.1:55055"
#define CFG_DEFAULT_PUB "tcp://127.0.0.1:55000"	/* the ancestor's */
#define CFG_DEFAULT_TOPIC_PUB "tcp://127.0.0.1:55001"	/* event-sub's */
#define CFG_MAX_OUTPUTS 4	/* zeromq outputs (PUB streams) */
#define CFG_MAX_REP 16		/* REP inputs (ZMQInput feeders) */
#define CFG_MAX_FEEDERS 8	/* AMQPInput and HTTPInput feeders, together */
#define CFG_MAX_BINDINGS 16	/* exchanges one AMQPInput binds its queue to */
#define CFG_NAME_MAX 256	/* AMQP names: exchange, queue, routing key */
#define CFG_SECRET_MAX 1024	/* HTTPInput secret and token, bytes */
#define CFG_URI_MAX 256
/* Config files are small; refuse anything larger than this (bytes). */
#define CFG_FILE_MAX (4 * 1024 * 1024)

enum store_type { STORE_SQLITE = 0, STORE_NONE, STORE_MONGODB };

/*
 * A zeromq output: a PUB stream (README.rst, "Wire protocol").  framing:
 * CFG_FRAMING_EVENT, one frame per event and nothing else (default);
 * CFG_FRAMING_TOPIC, the topic "namespace:event_type" then the event, and
 * a control message for each subscription ("framing": "topic").  Without
 * "outputs", the router has both: CFG_DEFAULT_PUB, one frame per event,
 * and CFG_DEFAULT_TOPIC_PUB, topic framing.
 */
enum cfg_framing { CFG_FRAMING_EVENT = 0, CFG_FRAMING_TOPIC };
struct cfg_output {
	char uri[CFG_URI_MAX];
	enum cfg_framing framing;
};

struct cfg_rep {
	char uri[CFG_URI_MAX];
	char ns[128];
};

enum cfg_feeder_kind { FEEDER_AMQP = 1, FEEDER_HTTP };

/*
 * AMQPInput (README.rst, "Feeders").  url holds the broker password: it is
 * never logged (in_amqp logs it without the password).
 */
struct cfg_amqp {
	char url[1024];			/* amqp://user:pass@host:port/vhost */
	char exchange_type[16];		/* direct, fanout, topic, headers */
	char routing_key[CFG_NAME_MAX];	/* default "notifications.info" */
	char queue_name[CFG_NAME_MAX];	/* default "event-reactor.NAMESPACE" */
	char bindings[CFG_MAX_BINDINGS][CFG_NAME_MAX];	/* exchanges */
	int nbindings;
	int durable;		/* the queue; default 1 */
	/*
	 * The exchanges of bindings are declared as their producer (OpenStack)
	 * declares them: of exchange_type, not auto-deleted, durable when this
	 * is 1.  Default 0, as oslo.messaging with its default
	 * amqp_durable_queues = False.
	 */
	int exchange_durable;
	int prefetch;		/* basic.qos prefetch_count; default 64 */
};

/* HTTPInput.  secret and token are never logged; "" when not set. */
struct cfg_http {
	char listen_address[128];	/* numeric IPv4 or IPv6; 127.0.0.1 */
	int port;			/* 8080; 0 picks a free port */
	char secret[CFG_SECRET_MAX];	/* HMAC-SHA256 key (X-Hub-Signature-256) */
	char token[CFG_SECRET_MAX];	/* Authorization: Bearer TOKEN */
	int allow_anonymous;		/* accept requests without credentials */
	int max_connections;		/* at once; default 64 */
	int timeout;			/* seconds a connection may idle; 10 */
};

struct cfg_feeder {
	enum cfg_feeder_kind kind;
	char ns[128];			/* default namespace of its events */
	struct cfg_amqp amqp;		/* kind FEEDER_AMQP */
	struct cfg_http http;		/* kind FEEDER_HTTP */
};

struct cfg {
	char pull_uri[CFG_URI_MAX];
	struct cfg_output outputs[CFG_MAX_OUTPUTS];	/* enabled ones only */
	int noutputs;			/* 1..CFG_MAX_OUTPUTS */
	struct cfg_rep reps[CFG_MAX_REP];
	int nreps;
	struct cfg_feeder feeders[CFG_MAX_FEEDERS];	/* enabled ones only */
	int nfeeders;
	int have_level;			/* logging.loglevel was given */
	enum log_level level;
	char log_dir[4096];		/* logging.dir */
	enum store_type store_type;
	char store_path[4096];
	char store_uri[1024];		/* mongodb: the connection string */
	double store_ttl_days;		/* mongodb: TTL indexes; 0: none */
	char store_spool_path[4096];	/* mongodb: the local spool */
	long long store_spool_max;	/* mongodb: records in the spool */
	size_t max_event_size;		/* bytes */
	int publish_wait_ms;		/* for a full subscriber; 0: never */
	char sub_uri[CFG_URI_MAX];	/* subscriber.uri; "": see cfg_subscriber */
	enum cfg_framing sub_framing;	/* subscriber.framing, when given */
	int sub_framing_set;
	int max_concurrency;		/* handler runs at once */
	int queue_size;			/* runs waiting for a slot */
	double shutdown_grace;		/* seconds */
	int python_workers;		/* pyfunc worker processes */
	long python_max_rss_mb;		/* replace a worker grown past it */
};

/*
 * Where event-sub subscribes and the framing it expects there (README.rst,
 * "Wire protocol").  The URI: uri (-u) when not NULL, else subscriber.uri,
 * else the first topic-framed output of cfg, else its first output, a
 * wildcard host (*, 0.0.0.0, ::) taken as loopback.  The framing:
 * subscriber.framing when given, else that of the output of cfg with that
 * endpoint (the same port, on the same host or bound to all), else
 * CFG_FRAMING_EVENT.  Returns 0 with out[outsz] and *framing set, or -1
 * with why[whysz] when an output gives no address to connect to (port 0
 * or *, inproc).
 */
int cfg_subscriber(const struct cfg *cfg, const char *uri, char *out,
    size_t outsz, enum cfg_framing *framing, char *why, size_t whysz);

/* Fill *cfg with the built-in defaults (everything bound to 127.0.0.1). */
void cfg_defaults(struct cfg *cfg);

/*
 * Load config.json over the defaults.  path NULL: the default path, and a
 * missing file there means "run on defaults" (returns 1).  An explicit path
 * that is missing is an error.  Returns 0 (loaded), 1 (defaults), or -1
 * with err[errsz] holding "FILE:LINE:COLUMN: message" or "FILE: strerror".
 * Notices about unknown sections are logged at INFO.
 */
int cfg_load(const char *path, struct cfg *cfg, char *err, size_t errsz);

/*
 * What both daemons do first: apply the -l level (NULL: none given), load
 * the configuration (config_path NULL: the default, missing is fine),
 * then apply logging.loglevel unless -l was given.  prog names the
 * program in messages.  Returns -1 with the reason printed or logged and
 * *exit_code set (EX_USAGE, EX_CONFIG), else cfg_load()'s 0 or 1.
 */
int cfg_startup(const char *prog, const char *config_path, const char *level,
    struct cfg *cfg, int *exit_code);

/* Make the paths in cfg absolute against the current directory. */
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
