/*
 * Unit tests of amqp_link's readings of a broker's answer (which refusals
 * are final, their text), of util_deadline(), which the AMQP threads wait
 * on, and of util_hide_password(), which keeps a URL's password out of
 * messages and ps(1).
 */
#include <amqp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "amqp_link.h"
#include "unit.h"
#include "util.h"

/* A server exception: a connection.close (conn) or channel.close. */
static amqp_rpc_reply_t
closed(int conn, unsigned code, const char *text, void *m)
{
	amqp_rpc_reply_t r;

	memset(&r, 0, sizeof(r));
	r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
	if (conn) {
		amqp_connection_close_t *c = m;
		c->reply_code = (uint16_t)code;
		c->reply_text = amqp_cstring_bytes(text);
		r.reply.id = AMQP_CONNECTION_CLOSE_METHOD;
	} else {
		amqp_channel_close_t *c = m;
		c->reply_code = (uint16_t)code;
		c->reply_text = amqp_cstring_bytes(text);
		r.reply.id = AMQP_CHANNEL_CLOSE_METHOD;
	}
	r.reply.decoded = m;
	return r;
}

static void
refusals(void)
{
	/* final: a login or permission, a vhost, a queue's arguments; not
	 * final: the broker going away, its own trouble, a missing queue */
	static const struct {
		int conn;
		unsigned code;
		const char *text;
		int refusal;
	} cases[] = {
		{ 1, 403, "ACCESS_REFUSED - Login was refused", 403 },
		{ 1, 530, "NOT_ALLOWED - vhost nosuch not found", 530 },
		{ 0, 406, "PRECONDITION_FAILED - inequivalent arg", 406 },
		{ 0, 403, "ACCESS_REFUSED - in exclusive use", 403 },
		{ 1, 320, "CONNECTION_FORCED - shutdown", 0 },
		{ 1, 541, "INTERNAL_ERROR", 0 },
		{ 0, 404, "NOT_FOUND - no queue", 0 },
	};
	amqp_connection_close_t cc;
	amqp_channel_close_t ch;
	amqp_rpc_reply_t r;
	char buf[256], want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = closed(cases[i].conn, cases[i].code, cases[i].text,
		    cases[i].conn ? (void *)&cc : (void *)&ch);
		CHECK(amqp_link_refusal(r) == cases[i].refusal);
		snprintf(want, sizeof(want), "broker closed the %s: %u %s",
		    cases[i].conn ? "connection" : "channel", cases[i].code,
		    cases[i].text);
		CHECK_STR(amqp_link_reply_text(r, buf, sizeof(buf)), want);
	}
	/* a library's failure, and no failure */
	memset(&r, 0, sizeof(r));
	r.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION;
	r.library_error = AMQP_STATUS_CONNECTION_CLOSED;
	CHECK(amqp_link_refusal(r) == 0);
	r.reply_type = AMQP_RESPONSE_NORMAL;
	CHECK(amqp_link_refusal(r) == 0);
	CHECK_STR(amqp_link_reply_text(r, buf, sizeof(buf)), "ok");
}

static void
deadlines(void)
{
	struct timespec a, b;
	long long ns;

	for (long ms = 0; ms <= 2500; ms += 250) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		util_deadline(&b, CLOCK_MONOTONIC, ms);
		CHECK(b.tv_nsec >= 0 && b.tv_nsec < 1000000000L);
		ns = (b.tv_sec - a.tv_sec) * 1000000000LL +
		    (b.tv_nsec - a.tv_nsec);
		/* ms from a, give or take the time between the two reads */
		CHECK(ns >= ms * 1000000LL &&
		    ns < ms * 1000000LL + 1000000000LL);
	}
	util_deadline(&b, CLOCK_REALTIME, 999);
	CHECK(b.tv_nsec >= 0 && b.tv_nsec < 1000000000L);
}

static void
passwords(void)
{
	static const struct {
		const char *in, *out;
		int hidden;
	} cases[] = {
		{ "amqp://u:secret@h:5672/v", "amqp://u:******@h:5672/v", 1 },
		{ "ampq://er-test:pw@h/", "ampq://er-test:**@h/", 1 },
		{ "amqp://u@h/", "amqp://u@h/", 0 },		/* no password */
		{ "amqp://u:@h/", "amqp://u:@h/", 0 },		/* empty */
		{ "tcp://127.0.0.1:55000", "tcp://127.0.0.1:55000", 0 },
		{ "amqp://h/p:x@y", "amqp://h/p:x@y", 0 },	/* in the path */
		{ "no scheme u:p@h", "no scheme u:p@h", 0 },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		CHECK(util_hide_password(buf) == cases[i].hidden);
		CHECK_STR(buf, cases[i].out);
	}
}

/* The broker's sentence loses its full stop before "; trying again". */
static void
why_lengths(void)
{
	CHECK(amqp_link_why_len("403 ACCESS_REFUSED - see the logfile.") == 36);
	CHECK(amqp_link_why_len("cannot connect to h:1: refused") == 30);
	CHECK(amqp_link_why_len("...") == 2);
	CHECK(amqp_link_why_len(".") == 0);
	CHECK(amqp_link_why_len("") == 0);
}

int
main(void)
{
	refusals();
	why_lengths();
	deadlines();
	passwords();
	UNIT_END("test_amqp_link");
}
