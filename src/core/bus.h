/*
 * bus: ZeroMQ endpoints, socket options, sending and receiving messages.
 * The only module that includes zmq.h.  One thread owns each socket.
 *
 * Every socket gets an explicit LINGER and explicit high-water marks.
 * Limits: BUS_HWM messages queued per peer (ZMQ_SNDHWM/ZMQ_RCVHWM), except
 * BUS_PUB_HWM on the PUB stream's XPUB and SUB sockets and BUS_PULL_HWM
 * on PULL's receiving side.
 */
#ifndef ER_BUS_H
#define ER_BUS_H

#include <stddef.h>

#define BUS_HWM 100000		/* messages, per socket and peer */
/*
 * PULL's ZMQ_RCVHWM, in messages per sender: what ZeroMQ holds for the
 * router between a sender's connection and the router's loop.  Enough to
 * keep the loop fed (it takes a batch of 256 per turn); more only held
 * a burst the router had not validated yet in its memory (100000 took
 * its peak under a million-event burst from 43 MB to 90 MB) and lost it
 * when the router was killed.  A sender's own queue (its ZMQ_SNDHWM)
 * holds the rest.
 */
#define BUS_PULL_HWM 4096
/*
 * The PUB stream's queues: XPUB's ZMQ_SNDHWM and SUB's ZMQ_RCVHWM, in
 * messages per subscriber.  libzmq tells a writer that its reader made room
 * only every "low-water mark" messages read: half the high-water mark when
 * that is 2048 or less, else the high-water mark less 1024 (pipe.cpp,
 * compute_lwm).  With 100000, a subscriber's full queue had room again only
 * once it had read all but 1024 of it, so a healthy subscriber a little
 * slower than the router looked stalled.  At 2048 room shows as soon as it
 * has read 1024 messages; the kernel's socket buffers hold the rest of a
 * burst.
 */
#define BUS_PUB_HWM 2048
/*
 * A subscription on the PUB stream: a prefix of up to BUS_SUBSCRIPTION_MAX
 * bytes is always taken.  ZeroMQ keeps each subscribed byte in a node of
 * its subscription tree (about 32 bytes each), so a subscriber's prefix
 * costs the router some 32 times its length: a topic
 * ("namespace:event_type") or an event's first bytes need far less than
 * 1024.  The XPUB's ZMQ_MAXMSGSIZE is BUS_SUBSCRIPTION_FRAME bytes: the
 * prefix and the most that a peer frames it with (ZMTP 3.1's SUBSCRIBE
 * command, 1 + 9 bytes, inside CURVE's MESSAGE command, 8 + 8 + 16 + 1).
 * ZeroMQ disconnects a subscriber that sends a longer frame before it
 * allocates it; a subscriber's libzmq then connects again and sends its
 * subscriptions again.  A prefix of 1025 to 1066 bytes is taken or not
 * as its peer frames it: 1 byte (ZMTP 3.0) or 10 (3.1), 33 more with
 * CURVE.  The bound is every frame's, the handshake's too: a peer whose
 * READY (or CURVE INITIATE) carries metadata over it is disconnected.
 * How many subscriptions there are is not bounded: that needs
 * ZMQ_XPUB_MANUAL (see "The event stream" below).  Nor is what a peer
 * sends that is no subscription: the XPUB queues it until it is taken,
 * and a frame with more to follow is queued whole by libzmq, however
 * long the message (every ZeroMQ socket that takes messages from peers
 * has that bound only per frame).
 */
#define BUS_SUBSCRIPTION_MAX 1024
#define BUS_SUBSCRIPTION_FRAME (BUS_SUBSCRIPTION_MAX + 10 + 33)

enum bus_type { BUS_PULL, BUS_PUSH, BUS_REP, BUS_REQ, BUS_XPUB, BUS_SUB,
    BUS_PAIR, BUS_ROUTER, BUS_DEALER };

struct bus;			/* a ZeroMQ context */
struct bus_sock;

/*
 * A received message: the first frame's bytes (owned by the message until
 * bus_msg_close()), how many frames there were and their total size.
 */
struct bus_msg {
	void *data;
	size_t len;
	int nframes;
	size_t total;
	unsigned char opaque[64] __attribute__((aligned(8)));
};

/* Create / destroy a context.  bus_free(NULL) is a no-op. */
struct bus *bus_new(void);
void bus_free(struct bus *b);

/*
 * A new socket of the given type with the suite's options.  linger_ms: how
 * long close waits for unsent messages (0..1000 in the daemons).
 * Returns NULL with err set (zmq_strerror).
 */
struct bus_sock *bus_socket(struct bus *b, enum bus_type type, int linger_ms,
    char *err, size_t errsz);
/* Close; NULL is a no-op. */
void bus_close(struct bus_sock *s);

/*
 * Bind to uri.  bound[boundsz] receives the endpoint actually bound
 * (ZMQ_LAST_ENDPOINT: port 0 becomes the port chosen).  Returns 0, or -1
 * with err = "URI: reason".
 */
int bus_bind(struct bus_sock *s, const char *uri, char *bound, size_t boundsz,
    char *err, size_t errsz);
int bus_connect(struct bus_sock *s, const char *uri, char *err, size_t errsz);

/* Send / receive timeouts in ms (-1: block), for blocking calls. */
int bus_set_timeouts(struct bus_sock *s, int send_ms, int recv_ms);
/*
 * ZMQ_REQ_RELAXED and ZMQ_REQ_CORRELATE on a REQ socket: after a reply that
 * never came, the next request may be sent, and a late reply to the old
 * one is dropped.
 */
int bus_set_req_relaxed(struct bus_sock *s);
/*
 * ZMQ_MAXMSGSIZE: a peer that announces a frame over bytes is disconnected
 * before ZeroMQ allocates it (what was queued before stays).  Set before
 * bus_bind(): a listener keeps the options it was bound with.  -1: no
 * limit.  Returns 0 or -1 with errno.
 */
int bus_set_max_frame(struct bus_sock *s, long long bytes);
/* ZMQ_IMMEDIATE: queue only on completed connections (PUSH clients). */
int bus_set_immediate(struct bus_sock *s, int on);
/* ZMQ_XPUB_NODROP: a full subscriber queue makes sends fail with EAGAIN
 * (or block) instead of dropping.  The router never sets it (a slow
 * subscriber must not slow it); the bench's lossless floor does. */
int bus_set_nodrop(struct bus_sock *s, int on);
/* Subscribe a SUB socket to a topic prefix ("" for all). */
int bus_subscribe(struct bus_sock *s, const char *prefix);

/*
 * The event stream (event-reactor(7), "Wire protocol").  The router publishes
 * each event on a plain XPUB in one of two framings (config.h,
 * enum cfg_framing):
 *
 * event framing (the ancestor's): one frame, the event's text, and
 *   nothing else ever: a subscriber to "" gets every event and only
 *   events.  No subscriber can learn there when its subscription is live.
 * topic framing: two frames, the topic "namespace:event_type" and the
 *   event.  The router answers every subscription with a control message,
 *   an empty topic (no event has one) and BUS_CONTROL_TEXT, which every
 *   subscriber of "" gets: a subscriber that sees one after subscribing
 *   to "" knows that events published from then on reach it.
 *
 * ZMQ_XPUB_MANUAL, which could answer one subscriber alone, is not used:
 * libzmq before 4.3.5 (Debian 12 has 4.3.4) may apply a subscription it
 * queued to a connection that has since ended, and so to the next one
 * that reuses its memory (fixed by libzmq commit 2df7ab6a).
 */
#define BUS_CONTROL_TEXT "{\"control\":\"subscribed\"}"

/*
 * Take every subscription message waiting on an XPUB (ZMQ_XPUB_VERBOSE:
 * one per SUBSCRIBE of each subscriber; ZeroMQ applied it before handing
 * it over) and call changed(arg, 1, prefix, len) for each subscription,
 * changed(arg, 0, prefix, len) for each cancel: when the last subscriber
 * of the prefix cancels it or goes, and also whenever a peer cancels a
 * prefix it never subscribed, which any peer can send, so cancels do not
 * tell when no subscriber is left.  Other messages a peer sends (an XSUB
 * may send anything) are taken and dropped.  The XPUB keeps the messages
 * until they are taken:
 * take them after each poll and, during a burst of sends, at least every
 * BUS_TAKE_US microseconds, so that a new subscriber's control message is
 * not held back behind the burst.  Returns how many messages were taken.
 */
#define BUS_TAKE_US 200
int bus_stream_take(struct bus_sock *s,
    void (*changed)(void *arg, int on, const void *prefix, size_t len),
    void *arg);
/*
 * Wait up to ms for ZeroMQ to hand s's owner work (the socket's command
 * descriptor, ZMQ_FD: room for a send, a subscription); the caller then
 * tries its send again.  Returns as poll(2).
 */
int bus_stream_wait(struct bus_sock *s, long ms);

enum bus_stream_msg { BUS_STREAM_EVENT, BUS_STREAM_CONTROL, BUS_STREAM_BAD };
/*
 * What a message received with bus_recv2() on an event stream is:
 * BUS_STREAM_EVENT with *body and *len set to the event's text (a lone
 * frame, or the frame after a non-empty topic), BUS_STREAM_CONTROL (an
 * empty topic, then anything), or BUS_STREAM_BAD (more than two frames).
 * Nothing is copied.
 */
enum bus_stream_msg bus_stream_what(const struct bus_msg m[2],
    const void **body, size_t *len);

/*
 * Watch a connecting socket: a PAIR socket (close with bus_close) on
 * which bus_watch_read() reports each completed ZMTP handshake of s
 * (ZMQ_EVENT_HANDSHAKE_SUCCEEDED: a peer is there and s's subscriptions
 * are on their way to it) and each failed one (ZMQ_EVENT_HANDSHAKE_FAILED_*:
 * CURVE on one side only, another server key, a key the peer refuses).
 * Returns NULL with err set.
 */
struct bus_sock *bus_watch(struct bus *b, struct bus_sock *s, char *err,
    size_t errsz);
/*
 * Read what w has, without waiting: returns how many handshakes completed
 * (0: none), -1 on error; failed[failsz] gets why the last failed one
 * failed, as the connecting side sees it ("the router refused our key
 * ...", "the peer's security mechanism is not ours ..."), "" when none.
 */
int bus_watch_read(struct bus_sock *w, char *failed, size_t failsz);
/* Stop watching s and close w (NULL: a no-op). */
void bus_unwatch(struct bus_sock *s, struct bus_sock *w);

/*
 * Receive one whole message (every frame; only the first is kept).
 * dontwait: 1 to return -1 with errno EAGAIN when nothing is queued.
 * Returns 0, or -1 with errno (EAGAIN, EINTR, ETERM...).
 */
int bus_recv(struct bus_sock *s, struct bus_msg *m, int dontwait);
/*
 * Receive one whole message keeping the first two frames (topic and body
 * on a SUB socket).  m[0] is the first frame, m[1] the second (len 0 when
 * the message had one frame).  Close both with bus_msg_close().
 */
int bus_recv2(struct bus_sock *s, struct bus_msg m[2], int dontwait);
void bus_msg_close(struct bus_msg *m);

/*
 * Requests on a ROUTER socket (BUS_ROUTER), as a REP socket takes them but
 * answered in any order: each request comes as its envelope (the routing
 * frames ZeroMQ and any proxies put before it: the peer's routing id, a
 * REQ_CORRELATE request id...) up to an empty delimiter frame, then the
 * request's frames; its reply must go back with the same envelope.
 * ZeroMQ routing ids are 1 to 255 bytes.  bytes[0..len): each envelope
 * frame as its length (one byte) then its bytes.
 */
#define BUS_ENVELOPE_MAX 260
struct bus_envelope {
	size_t len;
	unsigned char bytes[BUS_ENVELOPE_MAX];
};
/*
 * Receive one request on a ROUTER socket (or a reply on a DEALER socket,
 * which sent its requests with an envelope of its own: bus_send_routed()):
 * its envelope into *env and the request into *m as bus_recv() does
 * (nframes: the request's frames, after the delimiter).  A message a REP
 * socket would drop (no delimiter, or an envelope over BUS_ENVELOPE_MAX
 * bytes) is dropped and the next one taken.
 * Returns 0, or -1 with errno as bus_recv().
 */
int bus_recv_routed(struct bus_sock *s, struct bus_envelope *env,
    struct bus_msg *m, int dontwait);
/*
 * The same, one message at a time: returns 0 (a request), 1 when the
 * message is one a REP socket would drop, dropped (a REQ client never
 * sends one: a peer that is not a REQ client, or a hostile one), with
 * peer[peersz] its sender's address as ZeroMQ gives it (TCP: the IP
 * address, "" when ZeroMQ does not say), or -1 with errno.
 */
int bus_recv_request(struct bus_sock *s, struct bus_envelope *env,
    struct bus_msg *m, int dontwait, char *peer, size_t peersz);
/*
 * Send the one-frame reply data[len] to the request of envelope env
 * (without waiting: a peer that is gone or full loses it, as with REP),
 * or on a DEALER socket a request whose reply is to come back with env.
 * Returns 0 or -1 with errno.
 */
int bus_send_routed(struct bus_sock *s, const struct bus_envelope *env,
    const void *data, size_t len);

/*
 * Send one frame; more: 1 when another frame follows.  dontwait: fail with
 * EAGAIN instead of blocking.  Returns 0 or -1 with errno.
 */
int bus_send(struct bus_sock *s, const void *data, size_t len, int more,
    int dontwait);
/*
 * The same without a copy (zmq_msg_init_data): data stays valid until
 * ZeroMQ calls release(data, hint), from its I/O thread or from this
 * call when the frame is not taken, and only then.
 */
int bus_send_nocopy(struct bus_sock *s, const void *data, size_t len,
    int more, int dontwait, void (*release)(void *data, void *hint),
    void *hint);

/* Poll items: set sock or fd (sock NULL), events BUS_POLLIN/OUT. */
#define BUS_POLLIN 1
#define BUS_POLLOUT 2
struct bus_pollitem {
	struct bus_sock *sock;
	int fd;
	short events;
	short revents;
};
/* Wait up to timeout_ms (-1: forever).  Returns as zmq_poll(). */
int bus_poll(struct bus_pollitem *items, int n, long timeout_ms);

/*
 * ---- CURVE (ZeroMQ RFC 26) and ZAP (RFC 27) ----
 * Keys are passed as Z85 text (ZeroMQ RFC 32): BUS_KEY_Z85 characters
 * and a NUL, as zmq_curve_keypair(3) makes them and czmq's certificate
 * files hold them (cert.h); decoded, BUS_KEY_BYTES bytes.
 */
#define BUS_KEY_Z85 40
#define BUS_KEY_BYTES 32
/* Where libzmq asks a socket's ZAP handler (RFC 27: fixed). */
#define BUS_ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* A ZAP domain's length here (RFC 27 allows 255 bytes). */
#define BUS_ZAP_DOMAIN_MAX 63

/* 1 when this libzmq was built with CURVE (zmq_has("curve")). */
int bus_has_curve(void);
/*
 * From now on every socket of b bound to an endpoint other than inproc://
 * is a CURVE server (ZMQ_CURVE_SERVER) with the secret key secret_z85
 * and the ZAP domain domain (non-empty: libzmq asks the ZAP handler about
 * every client only then), set before its bind; bound(arg, s, endpoint)
 * (NULL: none) is called after each such bind.  inproc:// sockets (the
 * feeders' links) have no handshake and stay as they are.  Call before
 * the first bind, with a ZAP handler bound at BUS_ZAP_ENDPOINT first.
 */
void bus_secure(struct bus *b, const char *secret_z85, const char *domain,
    void (*bound)(void *arg, struct bus_sock *s, const char *endpoint),
    void *arg);
/*
 * Make s a CURVE client with its key pair and the server's public key
 * (ZMQ_CURVE_SERVERKEY: the handshake fails unless the server proves it
 * holds that key's secret).  Before bus_connect().  0, or -1 with errno.
 */
int bus_curve_client(struct bus_sock *s, const char *public_z85,
    const char *secret_z85, const char *server_z85);
/* A new key pair (zmq_curve_keypair): 0, or -1 with errno. */
int bus_curve_keypair(char public_z85[BUS_KEY_Z85 + 1],
    char secret_z85[BUS_KEY_Z85 + 1]);
/* The public key of a secret key (zmq_curve_public): 0, or -1 (not Z85). */
int bus_curve_public(const char *secret_z85,
    char public_z85[BUS_KEY_Z85 + 1]);
/* 1 when z85 is BUS_KEY_Z85 characters of Z85's alphabet, else 0. */
int bus_key_valid(const char *z85);
/* A key's Z85 text from its BUS_KEY_BYTES bytes. */
void bus_key_text(const unsigned char *key, char z85[BUS_KEY_Z85 + 1]);

/*
 * One ZAP request (RFC 27) as libzmq asks it: the request's id (echoed
 * in the answer), the socket's domain, the client's address (TCP: its IP
 * address as text), the mechanism ("CURVE", "NULL"...) and, for CURVE,
 * the client's public key.  Fields are cut to fit.
 */
struct bus_zap {
	unsigned char id[255];
	size_t id_len;
	char domain[BUS_ZAP_DOMAIN_MAX + 1];
	char address[64];
	char mechanism[32];
	char key[BUS_KEY_Z85 + 1];	/* "" without one */
	int valid;			/* RFC 27's version and frames */
};
/*
 * Take one request from the ZAP handler's socket (a BUS_REP bound at
 * BUS_ZAP_ENDPOINT) without waiting.  Returns 0, or -1 with errno
 * (EAGAIN: none waits).  Every request taken must be answered.
 */
int bus_zap_take(struct bus_sock *s, struct bus_zap *z);
/*
 * Answer z: allowed (status 200) or refused (400; 500 when !z->valid),
 * with status text why.  Returns 0 or -1 with errno.
 */
int bus_zap_answer(struct bus_sock *s, const struct bus_zap *z, int allow,
    const char *why);

/*
 * Watch a bound socket's failed handshakes (ZMQ_EVENT_HANDSHAKE_FAILED_*:
 * a plaintext client at a CURVE server, a client with the wrong server
 * key, garbage): a PAIR socket on which
 * bus_watch_failure() reads them; close it with bus_close() (libzmq ends
 * the monitor with s, closed before or after).  Returns NULL with err set.
 */
struct bus_sock *bus_watch_failures(struct bus *b, struct bus_sock *s,
    char *err, size_t errsz);
/*
 * Read one failure w has, without waiting: returns 1 with what[whatsz] =
 * what went wrong ("mechanism mismatch", ...) and endpoint[epsz] = the
 * endpoint the socket is bound at (libzmq 4.3's monitor names the bound
 * endpoint, not the peer), 0 when none waits, -1 on error.
 */
int bus_watch_failure(struct bus_sock *w, char *what, size_t whatsz,
    char *endpoint, size_t epsz);

/* The library version, "4.3.4". */
const char *bus_version(void);

#endif
