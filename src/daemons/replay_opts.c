/*
 * replay_opts: event-sub --replay's flags: the times of --since and
 * --until, and what goes with what.  See include/sub.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "sub.h"

int
sub_replay_flag(int c, const char *arg, struct sub_replay *r)
{
	switch (c) {
	case SUB_OPT_REPLAY:
		r->on = 1;
		return 1;
	case SUB_OPT_SINCE:
		r->since_text = arg;
		return 1;
	case SUB_OPT_UNTIL:
		r->until_text = arg;
		return 1;
	case SUB_OPT_MATCH:
		r->match = arg;
		return 1;
	case SUB_OPT_DRY_RUN:
		r->dry_run = 1;
		return 1;
	}
	return 0;
}

/* Whether text has shape form at its start: 'd' a digit, others as is. */
static int
shaped(const char *text, const char *form)
{
	for (; *form != '\0'; form++, text++)
		if (*form == 'd' ? !isdigit((unsigned char)*text) :
		    *text != *form)
			return 0;
	return 1;
}

/* "-N" and a unit: N units before now. */
static int
relative(const char *text, double now, double *t)
{
	static const char units[] = "smhd";
	static const double secs[] = { 1, 60, 3600, 86400 };
	const char *u;
	size_t n = strspn(text + 1, "0123456789");

	if (n == 0 || n > 9 || text[1 + n] == '\0' || text[2 + n] != '\0' ||
	    (u = strchr(units, text[1 + n])) == NULL)
		return -1;
	*t = now - strtod(text + 1, NULL) * secs[u - units];
	return 0;
}

int
sub_replay_time(const char *text, double now, double *t)
{
	struct tm tm, back;
	const char *p;
	double frac = 0;
	time_t secs;

	if (text[0] == '-')
		return relative(text, now, t);
	memset(&tm, 0, sizeof(tm));
	if (!shaped(text, "dddd-dd-dd") ||
	    (p = strptime(text, "%Y-%m-%d", &tm)) == NULL || p != text + 10)
		return -1;
	if (*p != '\0') {
		if (!shaped(p, "Tdd:dd:dd") ||
		    strptime(p + 1, "%H:%M:%S", &tm) != p + 9)
			return -1;
		p += 9;
		if (*p == '.') {
			size_t n = strspn(p + 1, "0123456789");
			if (n == 0)
				return -1;
			frac = strtod(p, NULL);
			p += 1 + n;
		}
		if (strcmp(p, "Z") != 0)
			return -1;
	}
	/* a day the month has not (2026-02-30) comes back another (timegm()
	 * moves tm to it) */
	back = tm;
	secs = timegm(&tm);
	if (secs == (time_t)-1 || back.tm_mday != tm.tm_mday ||
	    back.tm_mon != tm.tm_mon)
		return -1;
	*t = (double)secs + frac;
	return 0;
}

/* One of the flags' times into *t; -1 with the message. */
static int
flag_time(const char *flag, const char *text, double now, double *t,
    char *err, size_t errsz)
{
	if (sub_replay_time(text, now, t) == 0)
		return 0;
	snprintf(err, errsz, "%s \"%s\": not a time (2026-12-05T07:00:00Z, "
	    "2026-12-05T07:00:00.250Z, 2026-12-05 or -2h: s, m, h, d)", flag,
	    text);
	return -1;
}

int
sub_replay_check(struct sub_opts *o, int daemon_or_check, double now,
    char *err, size_t errsz)
{
	struct sub_replay *r = &o->replay;

	if (!r->on) {
		if (r->since_text == NULL && r->until_text == NULL &&
		    r->match == NULL && !r->dry_run)
			return -1;
		snprintf(err, errsz, "--since, --until, --match and --dry-run "
		    "go with --replay");
		return EX_USAGE;
	}
	if (o->tail || daemon_or_check) {
		snprintf(err, errsz, "--replay goes without --tail, --check "
		    "and -D");
		return EX_USAGE;
	}
	if (r->since_text == NULL) {
		snprintf(err, errsz, "--replay needs --since TIME");
		return EX_USAGE;
	}
	if (flag_time("--since", r->since_text, now, &r->since, err,
	    errsz) != 0)
		return EX_USAGE;
	r->until = 1e300;	/* none: every event stored */
	if (r->until_text != NULL && flag_time("--until", r->until_text, now,
	    &r->until, err, errsz) != 0)
		return EX_USAGE;
	if (r->until <= r->since) {
		snprintf(err, errsz, "--until %s is not after --since %s",
		    r->until_text, r->since_text);
		return EX_USAGE;
	}
	return -1;
}
