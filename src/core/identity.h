/*
 * identity: the user a daemon started as root runs as, or gives the
 * processes it starts (event-reactor.conf(5), "user" and "group").
 *
 * Started as root, a daemon takes config.json's "user" (and "group"), or
 * IDENTITY_DEFAULT_USER when "user" is absent and that user exists
 * (make install creates it); "user": "root" keeps root.  Without either it
 * refuses to start: no daemon runs as root unless the operator says so.
 * Started as another user, it keeps that user.
 */
#ifndef ER_IDENTITY_H
#define ER_IDENTITY_H

#include <stddef.h>

#include "config.h"
#include "proc.h"

#define IDENTITY_DEFAULT_USER "event-reactor"
/* Supplementary groups kept for a user (NGROUPS_MAX is 65536 on Linux;
 * more than this many is refused as an error). */
#define IDENTITY_MAX_GROUPS 256

struct identity {
	int set;		/* 0: keep the identity the process has */
	char user[64];		/* its name, for log lines */
	char group[64];		/* its primary group's name */
	struct proc_identity id;	/* id.groups points into groups[] */
	gid_t groups[IDENTITY_MAX_GROUPS];
};

/*
 * Whether a daemon started now with cfg would have to stay root for want
 * of a user: started as root, no "user", no IDENTITY_DEFAULT_USER.
 * Returns 1 with the refusal in err[errsz], else 0.  The daemons ask
 * before they start (exit EX_CONFIG), as identity_choose() does.
 */
int identity_refused(const struct cfg *cfg, char *err, size_t errsz);

/*
 * Choose the identity for a daemon by the rule above into *out.  Returns
 * 0 (out->set 0: keep ours), or -1 with err[errsz] when the named user or
 * group is unknown or has too many groups, or identity_refused().
 */
int identity_choose(const struct cfg *cfg, struct identity *out, char *err,
    size_t errsz);

/*
 * Take *id in this process for good (setgroups, setgid, setuid), then
 * make sure root cannot be taken back.  Returns 0, or -1 with err[errsz].
 */
int identity_take(const struct identity *id, char *err, size_t errsz);

/*
 * One line for --check into buf[sz]: "runs as user NAME (uid U), group
 * GROUP (gid G)" when id->set, else "runs as NAME (uid U)" for the
 * process's own user.
 */
void identity_describe(const struct identity *id, char *buf, size_t sz);

#endif
