/*
 * sub_amqp_plan: what event-sub's RabbitMQ consumer would consume, worked
 * out from -u and the configuration without connecting (sub_amqp.h):
 * the checks of the start, --check's, and the queues' names.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "amqp_link.h"
#include "sub_amqp.h"

int
sub_amqp_uri(const char *uri)
{
	return uri != NULL && (strncmp(uri, "amqp://", 7) == 0 ||
	    strncmp(uri, "amqps://", 8) == 0);
}

int
sub_amqp_check_uri(const char *uri, char *why, size_t whysz)
{
	return amqp_link_check_url(uri, why, whysz);
}

int
sub_amqp_plan(const struct cfg *cfg, const char *uri,
    struct sub_amqp_plan *p, char *err, size_t errsz)
{
	struct amqp_link l;
	char host[CFG_SUB_NAME_MAX] = "";
	const char *name = cfg->sub_name;

	if (strncmp(uri, "amqps://", 8) == 0 && cfg->sub_ca_file[0] == '\0') {
		snprintf(err, errsz, "-u amqps:// needs subscriber.ca_file, the "
		    "PEM file of the CA certificates the broker's certificate "
		    "chains to");
		return -1;
	}
	if (name[0] == '\0') {
		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0' ||
		    host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
		    "OPQRSTUVWXYZ0123456789-_.:")] != '\0') {
			snprintf(err, errsz, "the host name \"%s\" cannot name a "
			    "queue: set subscriber.name", host);
			return -1;
		}
		name = host;
	}
	if (amqp_link_parse(&l, uri, cfg->sub_ca_file) != 0) {
		snprintf(err, errsz, "-u: not an amqp[s]://user:password@host:"
		    "port/vhost URL");
		return -1;
	}
	snprintf(p->url, sizeof(p->url), "%s", l.safe_url);
	explicit_bzero(&l, sizeof(l));
	snprintf(p->own, sizeof(p->own), SUB_AMQP_OWN_PREFIX "%s", name);
	snprintf(p->grp, sizeof(p->grp), SUB_AMQP_GROUP_PREFIX "%s",
	    cfg->sub_group);
	return 0;
}
