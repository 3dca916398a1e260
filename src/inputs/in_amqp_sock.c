/* in_amqp_sock: an AMQPInput's socket to its broker.  See in_amqp.h. */
#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>

#include "in_amqp.h"

amqp_socket_t *
in_amqp_socket(amqp_connection_state_t conn,
    const struct amqp_connection_info *ci, const struct in_amqp_conf *c,
    char *why, size_t whysz)
{
	amqp_socket_t *sock;
	int st;

	if (!ci->ssl) {
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
	st = amqp_ssl_socket_set_cacert(sock, c->ca_file);
	if (st != AMQP_STATUS_OK) {
		snprintf(why, whysz, "cannot load ca_file \"%s\": %s",
		    c->ca_file, amqp_error_string2(st));
		return NULL;
	}
	return sock;
}
