/*
 * identity: the user a daemon runs as.  See identity.h.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"
#include "log.h"

static int
fill(const char *user, const char *group, struct identity *out, char *err,
    size_t errsz)
{
	struct passwd *pw = getpwnam(user);
	struct group *gr;
	int n = IDENTITY_MAX_GROUPS;

	if (pw == NULL) {
		snprintf(err, errsz, "unknown user \"%s\"", user);
		return -1;
	}
	snprintf(out->user, sizeof(out->user), "%s", user);
	out->id.set_user = 1;
	out->id.uid = pw->pw_uid;
	out->id.gid = pw->pw_gid;
	if (getgrouplist(user, pw->pw_gid, out->groups, &n) < 0) {
		snprintf(err, errsz, "user \"%s\" is in more than %d groups",
		    user, IDENTITY_MAX_GROUPS);
		return -1;
	}
	out->id.groups = out->groups;
	out->id.ngroups = n;
	if (group[0] != '\0') {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errsz, "unknown group \"%s\"", group);
			return -1;
		}
		out->id.gid = gr->gr_gid;
		/* the named group replaces the user's primary one */
		out->groups[0] = gr->gr_gid;
	}
	gr = getgrgid(out->id.gid);
	if (gr != NULL)
		snprintf(out->group, sizeof(out->group), "%s", gr->gr_name);
	else
		snprintf(out->group, sizeof(out->group), "%u",
		    (unsigned)out->id.gid);
	out->set = 1;
	return 0;
}

int
identity_refused(const struct cfg *cfg, char *err, size_t errsz)
{
	if (geteuid() != 0 || cfg->user[0] != '\0' ||
	    getpwnam(IDENTITY_DEFAULT_USER) != NULL)
		return 0;
	snprintf(err, errsz, "refusing to run as root: config.json names no "
	    "\"user\" and there is no user \"%s\" (make install creates it): "
	    "set \"user\" (\"root\" to keep root)", IDENTITY_DEFAULT_USER);
	return 1;
}

int
identity_choose(const struct cfg *cfg, struct identity *out, char *err,
    size_t errsz)
{
	memset(out, 0, sizeof(*out));
	if (geteuid() != 0) {
		struct passwd *me = getpwuid(geteuid());
		if (cfg->user[0] != '\0' && (me == NULL ||
		    strcmp(me->pw_name, cfg->user) != 0))
			log_warn("not started as root: running as %s (uid %u), "
			    "not as \"user\" %s", me != NULL ? me->pw_name :
			    "?", (unsigned)geteuid(), cfg->user);
		if (cfg->group[0] != '\0')
			log_warn("not started as root: \"group\" %s not "
			    "taken", cfg->group);
		return 0;
	}
	if (strcmp(cfg->user, "root") == 0 && cfg->group[0] == '\0')
		return 0;
	if (cfg->user[0] != '\0')
		return fill(cfg->user, cfg->group, out, err, errsz);
	if (identity_refused(cfg, err, errsz))
		return -1;
	return fill(IDENTITY_DEFAULT_USER, cfg->group, out, err, errsz);
}

int
identity_take(const struct identity *id, char *err, size_t errsz)
{
	if (!id->set)
		return 0;
	if (proc_take_identity(&id->id) != 0) {
		snprintf(err, errsz, "cannot switch to user %s, group %s: %s",
		    id->user, id->group, strerror(errno));
		return -1;
	}
	if (id->id.uid != 0 && setuid(0) == 0) {
		snprintf(err, errsz, "switched to user %s but could take root "
		    "back", id->user);
		return -1;
	}
	return 0;
}

void
identity_describe(const struct identity *id, char *buf, size_t sz)
{
	struct passwd *me;

	if (id->set) {
		snprintf(buf, sz, "runs as user %s (uid %u), group %s (gid %u)",
		    id->user, (unsigned)id->id.uid, id->group,
		    (unsigned)id->id.gid);
		return;
	}
	me = getpwuid(geteuid());
	snprintf(buf, sz, "runs as %s (uid %u)", me != NULL ? me->pw_name :
	    "?", (unsigned)geteuid());
}
