/*
 * bus_curve: CURVE keys and options, the ZAP handler's frames, failed
 * handshakes.  See bus.h ("CURVE and ZAP").  With bus.c, the only module
 * that includes zmq.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "bus.h"
#include "bus_int.h"

/* Z85's alphabet (ZeroMQ RFC 32). */
static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int
bus_has_curve(void)
{
	return zmq_has("curve");
}

void
bus_secure(struct bus *b, const char *secret_z85, const char *domain,
    void (*bound)(void *arg, struct bus_sock *s, const char *endpoint),
    void *arg)
{
	snprintf(b->secret, sizeof(b->secret), "%s", secret_z85);
	snprintf(b->domain, sizeof(b->domain), "%s", domain);
	b->bound = bound;
	b->bound_arg = arg;
}

int
bus_curve_applies(const struct bus_sock *s, const char *uri)
{
	return s->bus->secret[0] != '\0' && strncmp(uri, "inproc://", 9) != 0;
}

int
bus_curve_server(struct bus_sock *s)
{
	int on = 1;

	if (zmq_setsockopt(s->z, ZMQ_CURVE_SERVER, &on, sizeof(on)) != 0 ||
	    zmq_setsockopt(s->z, ZMQ_CURVE_SECRETKEY, s->bus->secret,
	    BUS_KEY_Z85) != 0)
		return -1;
	return zmq_setsockopt(s->z, ZMQ_ZAP_DOMAIN, s->bus->domain,
	    strlen(s->bus->domain));
}

int
bus_curve_client(struct bus_sock *s, const char *public_z85,
    const char *secret_z85, const char *server_z85)
{
	if (zmq_setsockopt(s->z, ZMQ_CURVE_SERVERKEY, server_z85,
	    BUS_KEY_Z85) != 0 ||
	    zmq_setsockopt(s->z, ZMQ_CURVE_PUBLICKEY, public_z85,
	    BUS_KEY_Z85) != 0)
		return -1;
	return zmq_setsockopt(s->z, ZMQ_CURVE_SECRETKEY, secret_z85,
	    BUS_KEY_Z85);
}

int
bus_curve_keypair(char public_z85[BUS_KEY_Z85 + 1],
    char secret_z85[BUS_KEY_Z85 + 1])
{
	return zmq_curve_keypair(public_z85, secret_z85);
}

int
bus_curve_public(const char *secret_z85, char public_z85[BUS_KEY_Z85 + 1])
{
	if (!bus_key_valid(secret_z85))
		return -1;
	return zmq_curve_public(public_z85, secret_z85);
}

int
bus_key_valid(const char *z85)
{
	uint8_t key[BUS_KEY_BYTES];

	/* zmq_z85_decode() also refuses a group over 2^32 - 1 */
	return strlen(z85) == BUS_KEY_Z85 &&
	    strspn(z85, z85_chars) == BUS_KEY_Z85 &&
	    zmq_z85_decode(key, z85) != NULL;
}

void
bus_key_text(const unsigned char *key, char z85[BUS_KEY_Z85 + 1])
{
	if (zmq_z85_encode(z85, key, BUS_KEY_BYTES) == NULL)
		z85[0] = '\0';
}

/* ---- the ZAP handler ---- */

/* One frame of the request into buf[sz] (cut, NUL-terminated when text);
 * returns its length, -1 with errno; *more: another frame follows. */
static int
zap_frame(void *z, void *buf, size_t sz, int text, int flags, int *more)
{
	zmq_msg_t m;
	size_t len, n;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, z, flags) < 0) {
		zmq_msg_close(&m);
		return -1;
	}
	len = zmq_msg_size(&m);
	n = len < sz - (text ? 1 : 0) ? len : sz - (text ? 1 : 0);
	memcpy(buf, zmq_msg_data(&m), n);
	if (text)
		((char *)buf)[n] = '\0';
	*more = zmq_msg_more(&m);
	zmq_msg_close(&m);
	return (int)len;
}

int
bus_zap_take(struct bus_sock *s, struct bus_zap *z)
{
	char version[8], skip[256];
	unsigned char key[BUS_KEY_BYTES];
	int more = 0, n, frames = 0, keylen = -1;

	memset(z, 0, sizeof(*z));
	if (zap_frame(s->z, version, sizeof(version), 1, ZMQ_DONTWAIT,
	    &more) < 0)
		return -1;
	/* version, id, domain, address, routing id, mechanism,
	 * credentials... */
	for (frames = 1; more; frames++) {
		switch (frames) {
		case 1:
			n = zap_frame(s->z, z->id, sizeof(z->id), 0, 0, &more);
			z->id_len = n > 0 ? (size_t)n : 0;
			break;
		case 2:
			n = zap_frame(s->z, z->domain, sizeof(z->domain), 1,
			    0, &more);
			break;
		case 3:
			n = zap_frame(s->z, z->address, sizeof(z->address), 1,
			    0, &more);
			break;
		case 5:
			n = zap_frame(s->z, z->mechanism,
			    sizeof(z->mechanism), 1, 0, &more);
			break;
		case 6:
			n = keylen = zap_frame(s->z, key, sizeof(key), 0, 0,
			    &more);
			break;
		default:
			n = zap_frame(s->z, skip, sizeof(skip), 0, 0, &more);
		}
		if (n < 0)
			return -1;
	}
	z->valid = frames >= 6 && strcmp(version, "1.0") == 0;
	if (keylen == BUS_KEY_BYTES && strcmp(z->mechanism, "CURVE") == 0)
		bus_key_text(key, z->key);
	return 0;
}

int
bus_zap_answer(struct bus_sock *s, const struct bus_zap *z, int allow,
    const char *why)
{
	const char *code = !z->valid ? "500" : allow ? "200" : "400";

	/* version, request id, status code and text, user id, metadata */
	if (zmq_send(s->z, "1.0", 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->z, z->id, z->id_len, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->z, code, 3, ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->z, why, strlen(why), ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->z, allow ? z->key : "", allow ? strlen(z->key) : 0,
	    ZMQ_SNDMORE) < 0 ||
	    zmq_send(s->z, "", 0, 0) < 0)
		return -1;
	return 0;
}

/* ---- failed handshakes ---- */

struct bus_sock *
bus_watch_failures(struct bus *b, struct bus_sock *s, char *err,
    size_t errsz)
{
	return bus_monitor(b, s, "failures",
	    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
	    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, err, errsz);
}

/* What a ZMQ_EVENT_HANDSHAKE_FAILED_* event's value says. */
static const char *
failure_text(uint16_t ev, uint32_t value)
{
	if (ev != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
		return "the client left during the handshake (a plaintext "
		    "client?)";
	switch (value) {
	case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
		return "mechanism mismatch (a plaintext client?)";
	case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
		return "cryptographic error (a client with another server key?)";
	case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
		return "key exchange failed";
	default:
		return "protocol error";
	}
}

int
bus_watch_failure(struct bus_sock *w, char *what, size_t whatsz,
    char *endpoint, size_t epsz)
{
	struct bus_msg m[2];
	uint16_t ev = 0;
	uint32_t value = 0;

	/* each event: 6 bytes (event number, value), then the endpoint */
	if (bus_recv2(w, m, 1) != 0)
		return errno == EAGAIN ? 0 : -1;
	if (m[0].len >= 6) {
		memcpy(&ev, m[0].data, sizeof(ev));
		memcpy(&value, (char *)m[0].data + 2, sizeof(value));
	}
	snprintf(what, whatsz, "%s", failure_text(ev, value));
	snprintf(endpoint, epsz, "%.*s", (int)m[1].len,
	    m[1].data != NULL ? (const char *)m[1].data : "");
	bus_msg_close(&m[0]);
	bus_msg_close(&m[1]);
	return 1;
}
