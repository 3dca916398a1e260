/*
 * mhd_util: what the two users of libmicrohttpd (the HTTP input and the
 * metrics endpoint) both need from a connection and from libmicrohttpd's
 * error callback.
 */
#ifndef ER_MHD_UTIL_H
#define ER_MHD_UTIL_H

#include <stdarg.h>
#include <stddef.h>

struct MHD_Connection;
struct sockaddr;

/* The numeric address sa names (IPv4 or IPv6; "?" for NULL or another
 * family) into buf[sz] (an INET6_ADDRSTRLEN buffer holds any); returns
 * buf. */
const char *mhd_sockaddr_str(const struct sockaddr *sa, char *buf,
    size_t sz);
/* The numeric address of c's client (mhd_sockaddr_str()); returns buf. */
const char *mhd_client_addr(struct MHD_Connection *c, char *buf, size_t sz);
/* libmicrohttpd's message (MHD_OPTION_EXTERNAL_LOGGER's fmt and ap) into
 * buf[sz], truncated, without its trailing newline; returns buf. */
const char *mhd_message(char *buf, size_t sz, const char *fmt, va_list ap);

#endif
