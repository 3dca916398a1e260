/*
 * er-amqp: the fleet's floor for `make bench` (bench/run): RabbitMQ alone,
 * through rabbitmq-c, none of the project's code.
 *
 *   er-amqp floor URL N SIZE CONSUMERS PREFETCH
 *       declares a durable quorum queue er.bench.floor (purged), publishes
 *       N persistent messages of SIZE bytes to it (the default exchange)
 *       with publisher confirms, in batches of 256 as the amqp output
 *       does, while CONSUMERS connections consume it, each with basic.qos
 *       PREFETCH and an acknowledgement per message; prints
 *       "secs=<s>" from the first publish to the last acknowledgement.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE "er.bench.floor"
#define BATCH 256

static struct amqp_connection_info ci;
static long n_total;
static int prefetch;
static atomic_long acked;

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what, amqp_rpc_reply_t r)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return;
	fprintf(stderr, "er-amqp: %s failed (reply type %d, library error "
	    "%s)\n", what, r.reply_type, amqp_error_string2(r.library_error));
	exit(1);
}

static amqp_connection_state_t
open_conn(void)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);

	if (s == NULL || amqp_socket_open(s, ci.host, ci.port) != 0) {
		fprintf(stderr, "er-amqp: cannot connect to %s:%d\n", ci.host,
		    ci.port);
		exit(1);
	}
	die("login", amqp_login(c, ci.vhost[0] ? ci.vhost : "/", 0,
	    AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, ci.user,
	    ci.password));
	amqp_channel_open(c, 1);
	die("channel.open", amqp_get_rpc_reply(c));
	return c;
}

static void *
consumer(void *arg)
{
	amqp_connection_state_t c = open_conn();
	amqp_envelope_t env;

	(void)arg;
	amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
	die("basic.qos", amqp_get_rpc_reply(c));
	amqp_basic_consume(c, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes,
	    0, 0, 0, amqp_empty_table);
	die("basic.consume", amqp_get_rpc_reply(c));
	while (atomic_load(&acked) < n_total) {
		struct timeval tv = { 0, 100000 };
		amqp_rpc_reply_t r;
		amqp_maybe_release_buffers(c);
		r = amqp_consume_message(c, &env, &tv, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			continue;
		amqp_basic_ack(c, 1, env.delivery_tag, 0);
		atomic_fetch_add(&acked, 1);
		amqp_destroy_envelope(&env);
	}
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	return NULL;
}

/* Publish n messages of body with confirms, BATCH at a time. */
static void
publish(amqp_connection_state_t c, long n, amqp_bytes_t body)
{
	amqp_basic_properties_t p;

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
	p.delivery_mode = 2;
	p.content_type = amqp_cstring_bytes("application/json");
	for (long sent = 0; sent < n;) {
		long k = n - sent < BATCH ? n - sent : BATCH, confirmed = 0;
		for (long i = 0; i < k; i++)
			if (amqp_basic_publish(c, 1, amqp_empty_bytes,
			    amqp_cstring_bytes(QUEUE), 0, 0, &p, body) != 0) {
				fprintf(stderr, "er-amqp: publish failed\n");
				exit(1);
			}
		while (confirmed < k) {
			amqp_frame_t f;
			if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK) {
				fprintf(stderr, "er-amqp: confirms lost\n");
				exit(1);
			}
			if (f.frame_type == AMQP_FRAME_METHOD &&
			    f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
				amqp_basic_ack_t *a = f.payload.method.decoded;
				/* tags count from 1 on the channel */
				confirmed = a->multiple ?
				    (long)a->delivery_tag - sent :
				    confirmed + 1;
			}
		}
		sent += k;
		amqp_maybe_release_buffers(c);
	}
}

int
main(int argc, char **argv)
{
	amqp_table_entry_t e;
	amqp_table_t args = { 1, &e };
	amqp_connection_state_t c;
	pthread_t th[64];
	char *buf;
	int nc;
	size_t size;
	double t0, t1;

	if (argc != 7 || strcmp(argv[1], "floor") != 0) {
		fprintf(stderr, "usage: er-amqp floor URL N SIZE CONSUMERS "
		    "PREFETCH\n");
		return 64;
	}
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(argv[2], &ci) != AMQP_STATUS_OK) {
		fprintf(stderr, "er-amqp: bad URL\n");
		return 64;
	}
	n_total = atol(argv[3]);
	size = (size_t)atol(argv[4]);
	nc = atoi(argv[5]);
	prefetch = atoi(argv[6]);
	if (nc < 1 || nc > 64 || n_total < 1 || prefetch < 1)
		return 64;
	c = open_conn();
	e.key = amqp_cstring_bytes("x-queue-type");
	e.value.kind = AMQP_FIELD_KIND_UTF8;
	e.value.value.bytes = amqp_cstring_bytes("quorum");
	amqp_queue_declare(c, 1, amqp_cstring_bytes(QUEUE), 0, 1, 0, 0, args);
	die("queue.declare", amqp_get_rpc_reply(c));
	amqp_queue_purge(c, 1, amqp_cstring_bytes(QUEUE));
	die("queue.purge", amqp_get_rpc_reply(c));
	amqp_confirm_select(c, 1);
	die("confirm.select", amqp_get_rpc_reply(c));
	buf = malloc(size);
	memset(buf, 'x', size);
	for (int i = 0; i < nc; i++)
		pthread_create(&th[i], NULL, consumer, NULL);
	t0 = mono();
	publish(c, n_total, (amqp_bytes_t){ size, buf });
	for (int i = 0; i < nc; i++)
		pthread_join(th[i], NULL);
	t1 = mono();
	printf("secs=%.6f\n", t1 - t0);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	free(buf);
	return 0;
}
