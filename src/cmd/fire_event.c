/* fire-event: fire one event at the router from the shell. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "bus.h"
#include "cert.h"
#include "client.h"
#include "config.h"
#include "daemon.h"
#include "endpoint.h"
#include "event.h"
#include "util.h"

#define DEFAULT_REQ_URI "tcp://127.0.0.1:55055"
#define DEFAULT_PUSH_URI "tcp://127.0.0.1:45454"
#define PAYLOAD_MAX (256 * 1024 * 1024)

/* What the command line asks for. */
struct opts {
	const char *type, *data, *ns, *uri;
	const char *curve_key, *curve_server;	/* --curve-key... */
	const char *gen_key;			/* --gen-key FILE */
	int push;
	long timeout;		/* ms */
};

/* Long options without a short one (past any character). */
enum { OPT_CURVE_KEY = 0x100, OPT_CURVE_SERVER, OPT_GEN_KEY };

static void
usage(FILE *f)
{
	fprintf(f, "usage: fire-event -e TYPE [-d JSON|@FILE|-] [-n NAMESPACE] "
	    "[-u URI] [-z zmq.REQ|zmq.PUSH] [-t MS]\n"
	    "           [--curve-key FILE --curve-server FILE]\n"
	    "       fire-event --gen-key FILE\n"
	    "  -e, --event-type TYPE  the event_type (required)\n"
	    "  -d, --data DATA        payload: JSON text, @FILE, or - for stdin "
	    "(default {})\n"
	    "  -p, --payload DATA     the same as -d\n"
	    "  -n, --namespace NS     namespace (default local)\n"
	    "  -u, --uri URI          router (default %s, %s with zmq.PUSH)\n"
	    "  -z, --socket, --zmq-type TYPE\n"
	    "                         zmq.REQ (default, prints the reply) or "
	    "zmq.PUSH\n"
	    "  -t, --timeout MS       give up after MS milliseconds (5000)\n"
	    "      --curve-key FILE   own secret certificate (CURVE)\n"
	    "      --curve-server FILE\n"
	    "                         the router's public certificate\n"
	    "      --gen-key FILE     write a new key pair: FILE (public) and\n"
	    "                         FILE_secret (mode 0600), then exit\n",
	    DEFAULT_REQ_URI, DEFAULT_PUSH_URI);
}

static char *
read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = xmalloc(cap);
	ssize_t r;

	for (;;) {
		if (n == cap) {
			if (cap >= PAYLOAD_MAX) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		r = read(STDIN_FILENO, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return buf;
}

/* Standard output was closed when fire-event started (util_std_fds()). */
static int stdout_closed;

/* Standard output flushed: 0, or EX_IOERR with why (what was lost). */
static int
flushed(const char *what)
{
	if (stdout_closed)
		errno = EBADF;	/* /dev/null stands in for it */
	else if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	fprintf(stderr, "fire-event: cannot write %s to standard output: "
	    "%s\n", what, strerror(errno));
	return EX_IOERR;
}

/* -z TYPE or -t MS into *o: -1 to go on, else the exit code. */
static int
parse_value(int c, const char *arg, struct opts *o)
{
	char *end;

	if (c == 'z') {
		if (strcmp(arg, "zmq.PUSH") == 0)
			o->push = 1;
		else if (strcmp(arg, "zmq.REQ") == 0)
			o->push = 0;
		else {
			fprintf(stderr, "fire-event: -z takes zmq.REQ or "
			    "zmq.PUSH, not \"%s\"\n", arg);
			return EX_USAGE;
		}
		return -1;
	}
	errno = 0;
	o->timeout = strtol(arg, &end, 10);
	if (errno != 0 || *end != '\0' || o->timeout <= 0 ||
	    o->timeout > 86400000) {
		fprintf(stderr, "fire-event: -t takes milliseconds from 1 to "
		    "86400000, not \"%s\"\n", arg);
		return EX_USAGE;
	}
	return -1;
}

/* What the options parsed into *o leave to check: -1 to go on, else the
 * exit code. */
static int
check_args(int argc, char **argv, struct opts *o)
{
	char why[1024];

	if (o->gen_key != NULL && optind == argc)
		return -1;
	if ((o->curve_key == NULL) != (o->curve_server == NULL)) {
		fprintf(stderr, "fire-event: --curve-key and --curve-server go "
		    "together\n");
		return EX_USAGE;
	}
	if (o->type == NULL || optind != argc) {
		if (o->type == NULL)
			fprintf(stderr, "fire-event: -e TYPE is required\n");
		if (optind != argc)	/* an event's JSON, often: cut short */
			fprintf(stderr, "fire-event: unexpected argument "
			    "\"%.60s%s\": fire-event takes options only (the "
			    "data goes with -d)\n", argv[optind],
			    strlen(argv[optind]) > 60 ? "..." : "");
		usage(stderr);
		return EX_USAGE;
	}
	if (o->uri == NULL)
		o->uri = o->push ? DEFAULT_PUSH_URI : DEFAULT_REQ_URI;
	/* what cannot work is said now, not after the timeout */
	if (endpoint_check(o->uri, 0, why, sizeof(why)) != 0) {
		fprintf(stderr, "fire-event: -u %s\n", why);
		return EX_USAGE;
	}
	return -1;
}

/* Parse the command line into *o: -1 to go on, else the exit code. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{ "event-type", required_argument, NULL, 'e' },
		{ "data", required_argument, NULL, 'd' },
		{ "payload", required_argument, NULL, 'd' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "uri", required_argument, NULL, 'u' },
		{ "socket", required_argument, NULL, 'z' },
		{ "zmq-type", required_argument, NULL, 'z' },
		{ "timeout", required_argument, NULL, 't' },
		{ "curve-key", required_argument, NULL, OPT_CURVE_KEY },
		{ "curve-server", required_argument, NULL, OPT_CURVE_SERVER },
		{ "gen-key", required_argument, NULL, OPT_GEN_KEY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	*o = (struct opts){ NULL, "{}", "local", NULL, NULL, NULL, NULL, 0,
	    5000 };
	while ((c = getopt_long(argc, argv, "e:d:p:n:u:z:t:h", opts,
	    NULL)) != -1) {
		switch (c) {
		case 'e':
			o->type = optarg;
			break;
		case 'd':
		case 'p':	/* -p, --payload: the ancestor's name */
			o->data = optarg;
			break;
		case 'n':
			o->ns = optarg;
			break;
		case 'u':
			o->uri = optarg;
			break;
		case 'z':
		case 't':
			if ((rc = parse_value(c, optarg, o)) >= 0)
				return rc;
			break;
		case OPT_CURVE_KEY:
			o->curve_key = optarg;
			break;
		case OPT_CURVE_SERVER:
			o->curve_server = optarg;
			break;
		case OPT_GEN_KEY:
			o->gen_key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("fire-event %s\n", ER_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	return check_args(argc, argv, o);
}

/*
 * The payload data names: JSON text, @FILE, or - for stdin.  Returns a new
 * buffer (*len its length), or NULL with the reason printed and *rc set.
 */
static char *
load_payload(const char *data, size_t *len, int *rc)
{
	char *payload;

	if (strcmp(data, "-") == 0) {
		payload = read_stdin(len);
		if (payload == NULL) {
			fprintf(stderr, "fire-event: stdin: %s\n",
			    strerror(errno));
			*rc = EX_NOINPUT;
		}
		return payload;
	}
	if (data[0] == '@') {
		if (data[1] == '\0') {
			fprintf(stderr, "fire-event: -d @FILE needs a file "
			    "name\n");
			*rc = EX_USAGE;
			return NULL;
		}
		payload = util_read_file(data + 1, PAYLOAD_MAX, len);
		if (payload == NULL) {
			fprintf(stderr, "fire-event: %s: %s\n", data + 1,
			    strerror(errno));
			*rc = EX_NOINPUT;
		}
		return payload;
	}
	payload = xstrdup(data);
	*len = strlen(payload);
	return payload;
}

/*
 * The request for o's type, namespace and payload[plen].  Returns it (*len
 * its length), or NULL with the reason printed and *rc set.
 */
static char *
build(const struct opts *o, const char *payload, size_t plen, size_t *len,
    int *rc)
{
	const char *parent = getenv("ER_EVENT_ID"), *h = getenv("ER_EVENT_HOPS");
	struct event_error eerr;
	char *req, *end;
	long hops = 0;

	/* run by a handler (event-sub sets both): the event's cause; a
	 * count that is not one would reset the loop guard */
	if (parent != NULL && parent[0] != '\0' && h != NULL) {
		errno = 0;
		hops = strtol(h, &end, 10);
		if (h[0] < '0' || h[0] > '9' || *end != '\0' || errno != 0 ||
		    hops >= INT_MAX) {
			fprintf(stderr, "fire-event: ER_EVENT_HOPS \"%.40s\" is "
			    "not a count of hops (0 to %d)\n", h, INT_MAX - 1);
			*rc = EX_USAGE;
			return NULL;
		}
	}
	if (parent != NULL && parent[0] != '\0')
		req = client_request_from(o->type, o->ns, parent,
		    (int)hops + 1, payload, plen, len, &eerr);
	else
		req = client_request(o->type, o->ns, payload, plen, len,
		    &eerr);
	if (req == NULL && strncmp(eerr.message, "event type or namespace",
	    23) == 0) {
		fprintf(stderr, "fire-event: -e TYPE or -n NAMESPACE is not "
		    "valid UTF-8\n");
		*rc = EX_USAGE;
	} else if (req == NULL) {
		fprintf(stderr, "fire-event: payload %s: %s\n",
		    strcmp(o->data, "-") == 0 ? "(stdin)" : o->data[0] == '@' ?
		    o->data + 1 : "(-d)", eerr.message);
		*rc = EX_DATAERR;
	}
	return req;
}

/* The router's reply on c: printed, or what is wrong said. */
static int
show_reply(const struct opts *o, const struct client *c)
{
	char code[64], msg[512];
	const char *reply;
	size_t len;
	int kind;

	reply = client_reply(c, &len);
	kind = client_parse_reply(reply, len, code, sizeof(code), msg,
	    sizeof(msg));
	if (kind == 1) {
		fprintf(stderr, "fire-event: the router refused the event: %s: "
		    "%s\n", code, msg);
		return EX_DATAERR;
	}
	if (kind == 0) {
		fwrite(reply, 1, len, stdout);
		fputc('\n', stdout);
		return flushed("the stamped event");
	}
	fprintf(stderr, "fire-event: unexpected reply from %s: %.*s\n", o->uri,
	    (int)(len > 200 ? 200 : len), reply);
	return EX_PROTOCOL;
}

/* Send req[len] on c; with REQ, the reply.  Returns the exit code. */
static int
exchange(const struct opts *o, struct client *c, const char *req,
    size_t len)
{
	switch (client_exchange(c, req, len, NULL)) {
	case CLIENT_REPLIED:
		return o->push ? 0 : show_reply(o, c);
	case CLIENT_NOT_SENT:
		if (errno == EAGAIN)
			fprintf(stderr, "fire-event: no router accepted the "
			    "event at %s within %ld ms\n", o->uri, o->timeout);
		else
			fprintf(stderr, "fire-event: send to %s: %s\n", o->uri,
			    strerror(errno));
		break;
	case CLIENT_NO_REPLY:
	case CLIENT_ABANDONED:
		fprintf(stderr, "fire-event: no reply from a router at %s "
		    "within %ld ms\n", o->uri, o->timeout);
		break;
	case CLIENT_POLL_FAILED:
	case CLIENT_RECV_FAILED:
		fprintf(stderr, "fire-event: receive from %s: %s\n", o->uri,
		    strerror(errno));
		break;
	}
	return EX_UNAVAILABLE;
}

/* Connect to the router (as a CURVE client when curve says so), fire
 * req[len].  Returns the exit code. */
static int
fire(const struct opts *o, const struct cfg_curve_client *curve,
    const char *req, size_t len)
{
	struct bus *bus;
	struct client *c = NULL;
	char err[512];
	int rc = EX_SOFTWARE;

	bus = bus_new();
	if (bus == NULL) {
		fprintf(stderr, "fire-event: cannot create a ZeroMQ context\n");
		return rc;
	}
	c = client_new(bus, (o->push ? CLIENT_PUSH : 0) | CLIENT_IMMEDIATE,
	    o->timeout, err, sizeof(err));
	if (c == NULL)
		fprintf(stderr, "fire-event: %s\n", err);
	else if (curve != NULL && curve->on && client_curve(c,
	    curve->public_key, curve->secret_key, curve->server_key, err,
	    sizeof(err)) != 0)
		fprintf(stderr, "fire-event: %s\n", err);
	else if (client_connect(c, o->uri, err, sizeof(err)) != 0) {
		fprintf(stderr, "fire-event: %s\n", err);
		rc = EX_USAGE;
	} else
		rc = exchange(o, c, req, len);
	client_free(c);
	bus_free(bus);
	return rc;
}

/* --gen-key FILE: a new key pair.  Returns the exit code. */
static int
gen_key(const char *path)
{
	struct cert c;
	char err[8192];

	if (cert_generate(path, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "fire-event: --gen-key %s\n", err);
		return EX_CANTCREAT;
	}
	printf("%s: public key %s\n%s_secret: its secret key (mode 0600)\n",
	    path, c.public_key, path);
	return flushed("the key's line");
}

/* --curve-key and --curve-server into *c.  Returns 0 or the exit code. */
static int
load_curve(const struct opts *o, struct cfg_curve_client *c)
{
	char err[8192];

	memset(c, 0, sizeof(*c));
	if (o->curve_key == NULL)
		return 0;
	if (cfg_curve_client_load(o->curve_key, NULL, c, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "fire-event: --curve-key %s\n", err);
		return EX_NOINPUT;
	}
	if (cfg_curve_client_load(NULL, o->curve_server, c, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "fire-event: --curve-server %s\n", err);
		return EX_NOINPUT;
	}
	c->on = 1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct cfg_curve_client curve;
	struct opts o;
	char *payload, *req;
	size_t plen, rlen;
	int rc;

	if ((rc = util_std_fds()) < 0) {
		fprintf(stderr, "fire-event: /dev/null: %s\n", strerror(errno));
		return EX_OSERR;
	}
	stdout_closed = rc & 1 << STDOUT_FILENO;
	/* a reader gone: EPIPE and exit 74 (fire-event(1)), not a silent
	 * death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	if ((rc = parse_args(argc, argv, &o)) >= 0)
		return rc;
	if (o.gen_key != NULL)
		return gen_key(o.gen_key);
	if ((rc = load_curve(&o, &curve)) != 0)
		return rc;
	if ((payload = load_payload(o.data, &plen, &rc)) == NULL)
		return rc;
	req = build(&o, payload, plen, &rlen, &rc);
	if (req != NULL)
		rc = fire(&o, &curve, req, rlen);
	free(req);
	free(payload);
	return rc;
}
