/* amqp_link: the AMQP plugins' broker connection.  See amqp_link.h. */
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "amqp_link.h"
#include "cfg_reader.h"
#include "log.h"
#include "util.h"

/*
 * The url as a start would use it (in_amqp.h).  Returns 0, or -1 with
 * why[whysz] saying what is wrong without the URL.
 */
static int
check_url(const char *url, char *why, size_t whysz)
{
	struct amqp_connection_info ci;
	unsigned char addr[16];
	char buf[1024];
	int rc = -1;

	if (strpbrk(url, "<>") != NULL) {
		snprintf(why, whysz, "\"url\" still holds a <placeholder> of "
		    "the sample: set the broker's real user, password, host and "
		    "port (in a password, write < and > as %%3C and %%3E)");
		return -1;
	}
	if (snprintf(buf, sizeof(buf), "%s", url) >= (int)sizeof(buf)) {
		snprintf(why, whysz, "\"url\" is longer than %zu bytes",
		    sizeof(buf) - 1);
		return -1;
	}
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK)
		snprintf(why, whysz, "\"url\" is not an "
		    "amqp[s]://user:password@host:port/vhost URL");
	else if (ci.port < 1 || ci.port > 65535)
		snprintf(why, whysz, "\"url\": the port must be 1..65535");
	else if (strchr(ci.host, ':') != NULL ?
	    inet_pton(AF_INET6, ci.host, addr) != 1 :
	    ci.host[0] == '\0' || ci.host[strspn(ci.host, "abcdefghijklmnopqrstu"
	    "vwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")] != '\0')
		snprintf(why, whysz, "\"url\": the host \"%s\" is not a host "
		    "name or an IP address", ci.host);
	else
		rc = 0;
	explicit_bzero(buf, sizeof(buf));	/* the password */
	return rc;
}

/*
 * amqps:// needs ca_file, readable and holding a PEM certificate (read by
 * rabbitmq-c at each connection, after the router took "user").
 */
static int
check_ca(struct cfg_reader *r, const char *url, const char *ca_file)
{
	char *text;
	size_t n;
	int pem;

	if (strncmp(url, "amqps://", 8) != 0) {
		if (ca_file[0] != '\0')
			cfg_note(r, "ca_file", LOG_LVL_WARNING, "\"ca_file\" is "
			    "used with amqps:// only: ignored");
		return 0;
	}
	if (ca_file[0] == '\0')
		return cfg_error(r, "url", "amqps:// needs \"ca_file\", the PEM "
		    "file of the CA certificates the broker's certificate "
		    "chains to");
	text = util_read_file(ca_file, 16 * 1024 * 1024, &n);
	if (text == NULL)
		return cfg_error(r, "ca_file", "cannot read ca_file \"%s\": %s",
		    ca_file, strerror(errno));
	pem = strstr(text, "-----BEGIN CERTIFICATE-----") != NULL;
	free(text);
	if (!pem)
		return cfg_error(r, "ca_file", "ca_file \"%s\" holds no PEM "
		    "certificate", ca_file);
	return 0;
}

int
amqp_link_check_url(const char *url, char *why, size_t whysz)
{
	/* the URL may hold a password: never echo it */
	if (strncmp(url, "amqp://", 7) != 0 && strncmp(url, "amqps://", 8) != 0) {
		snprintf(why, whysz, "\"url\" must start with amqp:// or "
		    "amqps://");
		return -1;
	}
	if (strstr(url, "CHANGE-ME") != NULL) {
		snprintf(why, whysz, "\"url\" still holds the sample's "
		    "CHANGE-ME placeholder: set the broker's real credentials");
		return -1;
	}
	return check_url(url, why, whysz);
}

int
amqp_link_check(struct cfg_reader *r, const char *url, const char *ca_file)
{
	char why[512];

	if (amqp_link_check_url(url, why, sizeof(why)) != 0)
		return cfg_error(r, "url", "%s", why);
	return check_ca(r, url, ca_file);
}

int
amqp_link_parse(struct amqp_link *l, const char *url, const char *ca_file)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->urlbuf, sizeof(l->urlbuf), "%s", url);
	amqp_default_connection_info(&l->ci);
	if (amqp_parse_url(l->urlbuf, &l->ci) != AMQP_STATUS_OK) {
		explicit_bzero(l->urlbuf, sizeof(l->urlbuf));
		return -1;
	}
	/* "amqp://host:5672/" means the default vhost "/", as kombu (and so
	 * oslo.messaging) and pika read it; rabbitmq-c would say "" */
	if (l->ci.vhost[0] == '\0')
		l->ci.vhost = "/";
	snprintf(l->safe_url, sizeof(l->safe_url), "amqp%s://%s@%s:%d/%s",
	    l->ci.ssl ? "s" : "", l->ci.user, l->ci.host, l->ci.port,
	    strcmp(l->ci.vhost, "/") == 0 ? "" : l->ci.vhost);
	l->ca_file = ca_file;
	return 0;
}

/* Describe an RPC reply that is not NORMAL into buf. */
const char *
amqp_link_reply_text(amqp_rpc_reply_t r, char *buf, size_t sz)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(buf, sz, "ok");
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(buf, sz, "missing RPC reply");
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(buf, sz, "%s", amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			snprintf(buf, sz, "broker closed the connection: %u %.*s",
			    m->reply_code, (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			snprintf(buf, sz, "broker closed the channel: %u %.*s",
			    m->reply_code, (int)m->reply_text.len,
			    (const char *)m->reply_text.bytes);
		} else {
			snprintf(buf, sz, "broker error (method 0x%08x)",
			    (unsigned)r.reply.id);
		}
		break;
	}
	return buf;
}

int
amqp_link_refusal(amqp_rpc_reply_t r)
{
	unsigned code;

	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
		return 0;
	if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
		code = ((amqp_connection_close_t *)r.reply.decoded)->reply_code;
	else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
		code = ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
	else
		return 0;
	return code == AMQP_ACCESS_REFUSED || code == AMQP_PRECONDITION_FAILED ||
	    code == AMQP_NOT_ALLOWED ? (int)code : 0;
}

int
amqp_link_why_len(const char *why)
{
	size_t n = strlen(why);

	if (n > 0 && why[n - 1] == '.')
		n--;
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* A socket for conn: TCP, or TLS verifying the broker.  NULL with why. */
static amqp_socket_t *
new_socket(amqp_connection_state_t conn, const struct amqp_link *l,
    char *why, size_t whysz)
{
	amqp_socket_t *sock;
	int st;

	if (!l->ci.ssl) {
		if ((sock = amqp_tcp_socket_new(conn)) == NULL)
			snprintf(why, whysz, "cannot create a socket");
		return sock;
	}
	if ((sock = amqp_ssl_socket_new(conn)) == NULL) {
		snprintf(why, whysz, "cannot create a TLS socket");
		return NULL;
	}
	amqp_ssl_socket_set_verify_peer(sock, 1);
	amqp_ssl_socket_set_verify_hostname(sock, 1);
	st = amqp_ssl_socket_set_cacert(sock, l->ca_file);
	if (st != AMQP_STATUS_OK) {
		snprintf(why, whysz, "cannot load ca_file \"%s\": %s",
		    l->ca_file, amqp_error_string2(st));
		return NULL;
	}
	return sock;
}

amqp_connection_state_t
amqp_link_open(const struct amqp_link *l, int heartbeat, int *refusal,
    char *why, size_t whysz)
{
	struct timeval tv = { AMQP_LINK_RPC_TIMEOUT, 0 };
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	char t[256];
	int st;

	if (refusal != NULL)
		*refusal = 0;
	if ((conn = amqp_new_connection()) == NULL) {
		snprintf(why, whysz, "out of memory");
		return NULL;
	}
	amqp_set_rpc_timeout(conn, &tv);
	if ((sock = new_socket(conn, l, why, whysz)) == NULL)
		goto fail;
	st = amqp_socket_open_noblock(sock, l->ci.host, l->ci.port, &tv);
	if (st != AMQP_STATUS_OK) {
		snprintf(why, whysz, "cannot connect to %s:%d: %s", l->ci.host,
		    l->ci.port, amqp_error_string2(st));
		goto fail;
	}
	r = amqp_login(conn, l->ci.vhost, 0, AMQP_DEFAULT_FRAME_SIZE,
	    heartbeat, AMQP_SASL_METHOD_PLAIN, l->ci.user, l->ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		/* connection.open's vhost too: "vhost ... not found" */
		snprintf(why, whysz, "login as %s to vhost %s failed: %s",
		    l->ci.user, l->ci.vhost, amqp_link_reply_text(r, t,
		    sizeof(t)));
		goto refused;
	}
	amqp_channel_open(conn, 1);
	if ((r = amqp_get_rpc_reply(conn)).reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_link_reply_text(r, why, whysz);
		goto refused;
	}
	return conn;
refused:
	if (refusal != NULL)
		*refusal = amqp_link_refusal(r);
fail:
	amqp_destroy_connection(conn);
	return NULL;
}

void
amqp_link_close(amqp_connection_state_t conn, int channel, int graceful)
{
	if (conn == NULL)
		return;
	if (graceful) {
		/* a broker that no longer answers must not hold the stop */
		struct timeval tv = { AMQP_LINK_CLOSE_TIMEOUT, 0 };
		amqp_set_rpc_timeout(conn, &tv);
		amqp_channel_close(conn, (amqp_channel_t)channel,
		    AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(conn);
}

/* Frame f, not a delivery: -1 with why when it ends the connection, the
 * channel or the consumer (a connection.close is answered), else 0. */
static int
classify(amqp_connection_state_t conn, const amqp_frame_t *f, char *why,
    size_t whysz)
{
	if (f->frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (f->payload.method.id) {
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *m = f->payload.method.decoded;
		amqp_connection_close_ok_t ok = { 0 };
		snprintf(why, whysz, "broker closed the connection: %u %.*s",
		    m->reply_code, (int)m->reply_text.len,
		    (const char *)m->reply_text.bytes);
		amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		return -1;
	}
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *m = f->payload.method.decoded;
		snprintf(why, whysz, "broker closed the channel: %u %.*s",
		    m->reply_code, (int)m->reply_text.len,
		    (const char *)m->reply_text.bytes);
		return -1;
	}
	case AMQP_BASIC_CANCEL_METHOD:
		snprintf(why, whysz, "broker cancelled the consumer (queue "
		    "deleted?)");
		return -1;
	default:
		return 0;
	}
}

int
amqp_link_other_frame(amqp_connection_state_t conn, char *why, size_t whysz)
{
	struct timeval tv = { 0, 0 };
	amqp_frame_t f;

	if (amqp_simple_wait_frame_noblock(conn, &f, &tv) != AMQP_STATUS_OK)
		return 0;
	return classify(conn, &f, why, whysz);
}

int
amqp_link_idle_check(amqp_connection_state_t conn, char *why, size_t whysz)
{
	struct timeval tv = { 0, 0 };
	amqp_frame_t f;
	int st;

	for (;;) {
		st = amqp_simple_wait_frame_noblock(conn, &f, &tv);
		if (st == AMQP_STATUS_TIMEOUT)
			return 0;
		if (st != AMQP_STATUS_OK) {
			snprintf(why, whysz, "%s", amqp_error_string2(st));
			return -1;
		}
		if (classify(conn, &f, why, whysz) != 0)
			return -1;
	}
}

int
amqp_link_consume(amqp_connection_state_t conn, amqp_envelope_t *env,
    struct timeval *tv, char *why, size_t whysz)
{
	amqp_rpc_reply_t r;

	for (;;) {
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, env, tv, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL)
			return 1;
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			return 0;
		if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
		    r.library_error != AMQP_STATUS_UNEXPECTED_STATE) {
			amqp_link_reply_text(r, why, whysz);
			return -1;
		}
		if (amqp_link_other_frame(conn, why, whysz) != 0)
			return -1;
	}
}
