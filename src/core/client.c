/* client: talking to event-router as its clients do.  See client.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "event_json.h"
#include "util.h"

/* ---- requests and replies ---- */

char *
client_request(const char *event_type, const char *ns,
    const char *payload_text, size_t payload_len, size_t *len,
    struct event_error *err)
{
	return client_request_from(event_type, ns, NULL, 0, payload_text,
	    payload_len, len, err);
}

char *
client_request_from(const char *event_type, const char *ns,
    const char *parent, int hops, const char *payload_text,
    size_t payload_len, size_t *len, struct event_error *err)
{
	json_error_t je;
	json_t *payload, *head;
	char *head_text, *body, *out;
	size_t head_len, body_len;

	payload = json_loadb(payload_text, payload_len, EV_JSON_FLAGS, &je);
	if (payload == NULL) {
		event_fail_decode(err, &je, payload_text, payload_len);
		return NULL;
	}
	json_decref(payload);

	head = ns != NULL ?
	    json_pack("{s:s,s:s}", "event_type", event_type, "namespace", ns) :
	    json_pack("{s:s}", "event_type", event_type);
	if (head != NULL && parent != NULL &&
	    (json_object_set_new(head, "parent_event", json_string(parent)) ||
	    json_object_set_new(head, "hops", json_integer(hops)))) {
		json_decref(head);
		head = NULL;
	}
	if (head == NULL) {
		event_fail(err, EV_INVALID_UTF8,
		    "event type or namespace is not valid UTF-8");
		return NULL;
	}
	head_text = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(head);
	if (head_text == NULL)
		abort();
	head_len = strlen(head_text);

	body = malloc(payload_len + 1);
	if (body == NULL)
		abort();
	memcpy(body, payload_text, payload_len);
	body_len = event_json_compact(body, payload_len);

	/* head_text is "{...}": replace its '}' by ,"payload":BODY} */
	out = malloc(head_len + body_len + 16);
	if (out == NULL)
		abort();
	memcpy(out, head_text, head_len - 1);
	memcpy(out + head_len - 1, ",\"payload\":", 11);
	memcpy(out + head_len + 10, body, body_len);
	out[head_len + 10 + body_len] = '}';
	*len = head_len + 11 + body_len;
	out[*len] = '\0';
	free(head_text);
	free(body);
	return out;
}

int
client_parse_reply(const void *buf, size_t len, char *code, size_t codesz,
    char *msg, size_t msgsz)
{
	json_t *root, *e;
	int rc = -1;

	root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root))
		goto out;
	e = json_object_get(root, "error");
	if (json_is_object(e)) {
		snprintf(code, codesz, "%s",
		    json_string_value(json_object_get(e, "code")) ?
		    json_string_value(json_object_get(e, "code")) : "unknown");
		snprintf(msg, msgsz, "%s",
		    json_string_value(json_object_get(e, "message")) ?
		    json_string_value(json_object_get(e, "message")) : "");
		rc = 1;
	} else if (json_is_string(json_object_get(root, "id"))) {
		rc = 0;
	}
out:
	json_decref(root);
	return rc;
}

int
client_reply_id(const void *buf, size_t len, char *id)
{
	json_t *root;
	const char *s;
	int rc = -1;

	root = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	s = json_string_value(json_object_get(root, "id"));
	if (json_is_object(root) && json_object_get(root, "error") == NULL &&
	    s != NULL && strlen(s) == EVENT_ID_LEN &&
	    strspn(s, "0123456789abcdef") == EVENT_ID_LEN) {
		memcpy(id, s, EVENT_ID_LEN + 1);
		rc = 0;
	}
	json_decref(root);
	return rc;
}

/* ---- the socket ---- */

struct client {
	struct bus_sock *sock;
	int push;
	long timeout_ms;
	struct bus_msg reply;
	int has_reply;
};

struct client *
client_new(struct bus *bus, int flags, long timeout_ms, char *err,
    size_t errsz)
{
	struct client *c = xcalloc(1, sizeof(*c));

	c->push = (flags & CLIENT_PUSH) != 0;
	c->timeout_ms = timeout_ms;
	/* linger: with PUSH, let the event leave within the timeout; with
	 * REQ, the reply says it arrived, so nothing is left to wait for */
	c->sock = bus_socket(bus, c->push ? BUS_PUSH : BUS_REQ, c->push ?
	    (int)timeout_ms : 0, err, errsz);
	if (c->sock == NULL ||
	    bus_set_timeouts(c->sock, (int)timeout_ms, 0) != 0 ||
	    ((flags & CLIENT_IMMEDIATE) &&
	    bus_set_immediate(c->sock, 1) != 0) ||
	    ((flags & CLIENT_RELAXED) && bus_set_req_relaxed(c->sock) != 0)) {
		if (c->sock != NULL)
			snprintf(err, errsz, "cannot set socket options: %s",
			    strerror(errno));
		client_free(c);
		return NULL;
	}
	return c;
}

int
client_curve(struct client *c, const char *public_z85,
    const char *secret_z85, const char *server_z85, char *err, size_t errsz)
{
	if (bus_curve_client(c->sock, public_z85, secret_z85, server_z85) == 0)
		return 0;
	snprintf(err, errsz, "CURVE options: %s", strerror(errno));
	return -1;
}

int
client_connect(struct client *c, const char *uri, char *err, size_t errsz)
{
	return bus_connect(c->sock, uri, err, errsz);
}

static void
drop_reply(struct client *c)
{
	if (c->has_reply)
		bus_msg_close(&c->reply);
	c->has_reply = 0;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	drop_reply(c);
	bus_close(c->sock);
	free(c);
}

enum client_status
client_exchange(struct client *c, const void *buf, size_t len,
    const atomic_int *abandon)
{
	long long deadline;
	struct bus_pollitem it;
	int rc;

	drop_reply(c);
	if (bus_send(c->sock, buf, len, 0, 0) != 0)
		return CLIENT_NOT_SENT;
	if (c->push)
		return CLIENT_REPLIED;
	deadline = util_mono_ms() + c->timeout_ms;
	for (;;) {
		long long left = deadline - util_mono_ms();
		if (abandon != NULL && atomic_load(abandon))
			return CLIENT_ABANDONED;
		if (left <= 0)
			return CLIENT_NO_REPLY;
		it.sock = c->sock;
		it.fd = -1;
		it.events = BUS_POLLIN;
		rc = bus_poll(&it, 1, abandon != NULL && left > CLIENT_POLL_MS ?
		    CLIENT_POLL_MS : left);
		if (rc > 0 && (it.revents & BUS_POLLIN))
			break;
		if (rc < 0 && errno != EINTR)
			return CLIENT_POLL_FAILED;
	}
	if (bus_recv(c->sock, &c->reply, 1) != 0)
		return CLIENT_RECV_FAILED;
	c->has_reply = 1;
	return CLIENT_REPLIED;
}

const void *
client_reply(const struct client *c, size_t *len)
{
	if (!c->has_reply)
		return NULL;
	*len = c->reply.len;
	return c->reply.data;
}
