/* mhd_util: shared by the HTTP input and the metrics endpoint. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mhd_util.h"

const char *
mhd_sockaddr_str(const struct sockaddr *sa, char *buf, size_t sz)
{
	snprintf(buf, sz, "?");
	if (sa == NULL)
		return buf;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, buf, (socklen_t)sz);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, buf, (socklen_t)sz);
	return buf;
}

const char *
mhd_client_addr(struct MHD_Connection *c, char *buf, size_t sz)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return mhd_sockaddr_str(ci != NULL ? ci->client_addr : NULL, buf, sz);
}

const char *
mhd_message(char *buf, size_t sz, const char *fmt, va_list ap)
{
	size_t n;

	vsnprintf(buf, sz, fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return buf;
}
