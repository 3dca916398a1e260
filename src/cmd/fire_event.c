/* fire-event: fire one event at the router from the shell. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "bus.h"
#include "daemon.h"
#include "event.h"
#include "util.h"

#define DEFAULT_REQ_URI "tcp://127.0.0.1:55055"
#define DEFAULT_PUSH_URI "tcp://127.0.0.1:45454"
#define PAYLOAD_MAX (256 * 1024 * 1024)

static void
usage(FILE *f)
{
	fprintf(f, "usage: fire-event -e TYPE [-d JSON|@FILE|-] [-n NAMESPACE] "
	    "[-u URI] [-z zmq.REQ|zmq.PUSH] [-t MS]\n"
	    "  -e, --event-type TYPE  the event_type (required)\n"
	    "  -d, --data DATA        payload: JSON text, @FILE, or - for stdin "
	    "(default {})\n"
	    "  -p, --payload DATA     the same as -d\n"
	    "  -n, --namespace NS     namespace (default local)\n"
	    "  -u, --uri URI          router (default %s, %s with zmq.PUSH)\n"
	    "  -z, --socket, --zmq-type TYPE\n"
	    "                         zmq.REQ (default, prints the reply) or "
	    "zmq.PUSH\n"
	    "  -t, --timeout MS       give up after MS milliseconds (5000)\n",
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

int
main(int argc, char **argv)
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *type = NULL, *data = "{}", *ns = "local", *uri = NULL;
	int push = 0, c, rc = EX_SOFTWARE;
	long timeout = 5000;
	char *payload = NULL, *req = NULL, err[512], *end;
	size_t plen, rlen;
	struct event_error eerr;
	struct bus *bus = NULL;
	struct bus_sock *sock = NULL;

	while ((c = getopt_long(argc, argv, "e:d:p:n:u:z:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
			type = optarg;
			break;
		case 'd':
		case 'p':	/* -p, --payload: the ancestor's name */
			data = optarg;
			break;
		case 'n':
			ns = optarg;
			break;
		case 'u':
			uri = optarg;
			break;
		case 'z':
			if (strcmp(optarg, "zmq.PUSH") == 0)
				push = 1;
			else if (strcmp(optarg, "zmq.REQ") == 0)
				push = 0;
			else {
				fprintf(stderr, "fire-event: -z takes zmq.REQ or "
				    "zmq.PUSH, not \"%s\"\n", optarg);
				return EX_USAGE;
			}
			break;
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || timeout <= 0 ||
			    timeout > 86400000) {
				fprintf(stderr, "fire-event: -t takes milliseconds "
				    "from 1 to 86400000, not \"%s\"\n", optarg);
				return EX_USAGE;
			}
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
	if (type == NULL || optind != argc) {
		if (type == NULL)
			fprintf(stderr, "fire-event: -e TYPE is required\n");
		usage(stderr);
		return EX_USAGE;
	}
	if (uri == NULL)
		uri = push ? DEFAULT_PUSH_URI : DEFAULT_REQ_URI;

	if (strcmp(data, "-") == 0) {
		payload = read_stdin(&plen);
		if (payload == NULL) {
			fprintf(stderr, "fire-event: stdin: %s\n", strerror(errno));
			return EX_NOINPUT;
		}
	} else if (data[0] == '@') {
		if (data[1] == '\0') {
			fprintf(stderr, "fire-event: -d @FILE needs a file name\n");
			return EX_USAGE;
		}
		payload = util_read_file(data + 1, PAYLOAD_MAX, &plen);
		if (payload == NULL) {
			fprintf(stderr, "fire-event: %s: %s\n", data + 1,
			    strerror(errno));
			return EX_NOINPUT;
		}
	} else {
		payload = xstrdup(data);
		plen = strlen(payload);
	}
	req = event_build_request(type, ns, payload, plen, &rlen, &eerr);
	if (req == NULL && strncmp(eerr.message, "event type or namespace", 23) ==
	    0) {
		fprintf(stderr, "fire-event: -e TYPE or -n NAMESPACE is not valid "
		    "UTF-8\n");
		rc = EX_USAGE;
		goto out;
	}
	if (req == NULL) {
		fprintf(stderr, "fire-event: payload %s: %s\n",
		    strcmp(data, "-") == 0 ? "(stdin)" : data[0] == '@' ?
		    data + 1 : "(-d)", eerr.message);
		rc = EX_DATAERR;
		goto out;
	}

	bus = bus_new();
	if (bus == NULL) {
		fprintf(stderr, "fire-event: cannot create a ZeroMQ context\n");
		goto out;
	}
	/* linger: with PUSH, let the event leave within the timeout; with
	 * REQ, the reply says it arrived, so nothing is left to wait for */
	sock = bus_socket(bus, push ? BUS_PUSH : BUS_REQ, push ? (int)timeout : 0,
	    err, sizeof(err));
	if (sock == NULL) {
		fprintf(stderr, "fire-event: %s\n", err);
		goto out;
	}
	bus_set_timeouts(sock, (int)timeout, (int)timeout);
	bus_set_immediate(sock, 1);
	if (bus_connect(sock, uri, err, sizeof(err)) != 0) {
		fprintf(stderr, "fire-event: %s\n", err);
		rc = EX_USAGE;
		goto out;
	}
	if (bus_send(sock, req, rlen, 0, 0) != 0) {
		if (errno == EAGAIN)
			fprintf(stderr, "fire-event: no router accepted the event "
			    "at %s within %ld ms\n", uri, timeout);
		else
			fprintf(stderr, "fire-event: send to %s: %s\n", uri,
			    strerror(errno));
		rc = EX_UNAVAILABLE;
		goto out;
	}
	if (push) {
		rc = 0;
		goto out;
	} else {
		struct bus_msg m;
		char code[64], msg[512];
		int kind;

		if (bus_recv(sock, &m, 0) != 0) {
			if (errno == EAGAIN)
				fprintf(stderr, "fire-event: no reply from a router "
				    "at %s within %ld ms\n", uri, timeout);
			else
				fprintf(stderr, "fire-event: receive from %s: %s\n",
				    uri, strerror(errno));
			rc = EX_UNAVAILABLE;
			goto out;
		}
		kind = event_parse_reply(m.data, m.len, code, sizeof(code), msg,
		    sizeof(msg));
		if (kind == 1) {
			fprintf(stderr, "fire-event: the router refused the event: "
			    "%s: %s\n", code, msg);
			rc = EX_DATAERR;
		} else if (kind == 0) {
			fwrite(m.data, 1, m.len, stdout);
			fputc('\n', stdout);
			rc = fflush(stdout) == 0 ? 0 : EX_IOERR;
		} else {
			fprintf(stderr, "fire-event: unexpected reply from %s: "
			    "%.*s\n", uri, (int)(m.len > 200 ? 200 : m.len),
			    (const char *)m.data);
			rc = EX_PROTOCOL;
		}
		bus_msg_close(&m);
	}
out:
	bus_close(sock);
	bus_free(bus);
	free(req);
	free(payload);
	return rc;
}
