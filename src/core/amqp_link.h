/*
 * amqp_link: what the AMQP input (in_amqp.c), the AMQP output
 * (out_amqp.c) and event-sub's consumer (sub_amqp.c) share of rabbitmq-c:
 * the broker's URL, checked when the configuration is read and parsed
 * when the plugin runs; a connection (TCP, or TLS for amqps:// verified
 * against a CA file), logged in, with channel 1 open; the frames a
 * consumer meets besides deliveries; the text of a failed RPC; a close
 * that never holds a stop.  For those modules only: it brings <amqp.h>.
 */
#ifndef ER_AMQP_LINK_H
#define ER_AMQP_LINK_H

#include <amqp.h>
#include <stddef.h>

#define AMQP_LINK_URL_MAX 1024	/* "url" bytes, with the NUL */
#define AMQP_LINK_RPC_TIMEOUT 5	/* seconds a broker has to answer an RPC */
#define AMQP_LINK_CLOSE_TIMEOUT 1	/* seconds, at a graceful close */

struct cfg_reader;

/* A broker's address, parsed (amqp_link_parse()). */
struct amqp_link {
	char urlbuf[AMQP_LINK_URL_MAX];	/* amqp_parse_url() points into it */
	struct amqp_connection_info ci;	/* vhost "/" for an empty one */
	char safe_url[512];		/* the URL without the password */
	const char *ca_file;		/* amqps://: the caller's, kept */
};

/*
 * The "url" and "ca_file" of a plugin's config (the reader at its
 * section), as a start would use them, without connecting: amqp:// or
 * amqps://, no sample CHANGE-ME nor <placeholder>, what amqp_parse_url()
 * takes, a port of 1..65535, a host name or IP address; amqps:// needs a
 * readable ca_file holding a PEM certificate (a WARNING when ca_file comes
 * with amqp://).  Returns 0, or -1 with the reader's error (FILE:L:C),
 * which never shows the URL: it may hold a password.
 */
int amqp_link_check(struct cfg_reader *r, const char *url,
    const char *ca_file);

/*
 * The checks of amqp_link_check() on url alone, without a reader: 0, or
 * -1 with why[whysz] saying what is wrong without the URL.
 */
int amqp_link_check_url(const char *url, char *why, size_t whysz);

/*
 * Parse url (checked by amqp_link_check()) into *l, ca_file kept as
 * given.  Returns 0, or -1 when amqp_parse_url() refuses it.
 */
int amqp_link_parse(struct amqp_link *l, const char *url,
    const char *ca_file);

/*
 * Connect to l's broker (TCP, or TLS verifying the broker's certificate
 * against l->ca_file and its names against the URL's host), log in with
 * heartbeat seconds, open channel 1.  Returns the connection, or NULL
 * with why (nothing left open) and, when refusal is not NULL, *refusal
 * set as amqp_link_refusal() reads the broker's answer.  The caller
 * closes it with amqp_link_close().
 */
amqp_connection_state_t amqp_link_open(const struct amqp_link *l,
    int heartbeat, int *refusal, char *why, size_t whysz);

/*
 * The AMQP reply code of r when it is a refusal that trying again will
 * not change, 0 otherwise: 403 ACCESS_REFUSED (a login or a permission
 * refused), 406 PRECONDITION_FAILED (a queue or exchange declared with
 * other arguments than the broker's), 530 NOT_ALLOWED (a vhost missing or
 * refused), from a connection.close or channel.close (AMQP 0-9-1's
 * reply codes).  A broker going away, 320 CONNECTION_FORCED or 541
 * INTERNAL_ERROR are not refusals.
 */
int amqp_link_refusal(amqp_rpc_reply_t r);

/*
 * How much of why (a NUL-terminated failure text, the broker's words
 * at its end) to print before a "; ..." of ours: all of it but a final
 * full stop.
 */
int amqp_link_why_len(const char *why);

/*
 * Close conn (NULL: nothing): graceful, channel and connection close
 * within AMQP_LINK_CLOSE_TIMEOUT s; otherwise only the socket.
 */
void amqp_link_close(amqp_connection_state_t conn, int channel,
    int graceful);

/*
 * Something other than a delivery arrived while consuming
 * (amqp_consume_message()'s AMQP_STATUS_UNEXPECTED_STATE): read it.
 * Returns 0 to go on consuming, -1 with why when the connection or the
 * channel is closing or the broker cancelled the consumer.
 */
int amqp_link_other_frame(amqp_connection_state_t conn, char *why,
    size_t whysz);

/*
 * A connection with nothing in flight: read, without waiting, what the
 * broker sent.  Returns 0 when it is still there, -1 with why when it
 * went: a connection.close (answered) or channel.close, the socket
 * closed or failed.  A broker cut off without a word is not seen (no
 * heartbeats).
 */
int amqp_link_idle_check(amqp_connection_state_t conn, char *why,
    size_t whysz);

/*
 * One delivery into *env (amqp_consume_message() within *tv; NULL: no
 * bound), with buffers released first and other frames read on the way
 * (amqp_link_other_frame()).  Returns 1 with *env to destroy
 * (amqp_destroy_envelope()), 0 when tv ran out, -1 with why when the
 * connection or the channel is lost.
 */
int amqp_link_consume(amqp_connection_state_t conn, amqp_envelope_t *env,
    struct timeval *tv, char *why, size_t whysz);

/* A reply that is not NORMAL, as text, into buf; returns buf. */
const char *amqp_link_reply_text(amqp_rpc_reply_t r, char *buf, size_t sz);

#endif
