/* in_amqp_oslo: OpenStack notifications made events.  See in_amqp_oslo.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event_json.h"
#include "in_amqp_oslo.h"

/* Days in month mo (1..12) of year y, in the Gregorian calendar. */
static int
month_days(int y, int mo)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return days[mo - 1];
}

/*
 * oslo.messaging's timestamps: "2026-11-20 10:15:42.318274", UTC
 * (oslo_utils.timeutils.utcnow() formatted by the notifier).  Returns 0 and
 * the seconds since the epoch, or -1.
 */
static int
parse_utc(const char *s, double *out)
{
	/* "YYYY-MM-DD HH:MM:SS", '#' a digit: no sign, no space (sscanf's
	 * %d took "-1" for an hour) */
	static const char form[] = "####-##-## ##:##:##";
	struct tm tm;
	int y, mo, d, h, mi, sec, i;
	double frac = 0, scale = 0.1;
	time_t t;

	for (i = 0; form[i] != '\0'; i++) {
		if (form[i] == '#' ? s[i] < '0' || s[i] > '9' :
		    i == 10 ? s[i] != ' ' && s[i] != 'T' : s[i] != form[i])
			return -1;
	}
	y = atoi(s);
	mo = atoi(s + 5);
	d = atoi(s + 8);
	h = atoi(s + 11);
	mi = atoi(s + 14);
	sec = atoi(s + 17);
	s += i;
	if (*s == '.') {
		for (i = 1; s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
			frac += (s[i] - '0') * scale;
		if (i == 1)
			return -1;
		s += i;
	}
	if (strcmp(s, "") != 0 && strcmp(s, "Z") != 0 &&
	    strcmp(s, "+00:00") != 0)
		return -1;
	/* a day the month does not have (2026-02-30) is no time: timegm()
	 * would take it for a day of the next month; a leap second (:60)
	 * comes only at the end of a UTC day, and is taken as the next
	 * day's first, as timegm() does */
	if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
	    mi > 59 || sec > 60 || (sec == 60 && (h != 23 || mi != 59)) ||
	    y < 1970)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (double)t + frac;
	return 0;
}

/*
 * The notification's "timestamp" into ev: a number as it is; oslo's
 * string as "original_timestamp", and when it is a time, stamp[stampsz]
 * gets the member to splice in ("\"timestamp\":SECONDS").  A string with
 * a NUL in it is no time.
 */
static void
take_timestamp(json_t *note, json_t *ev, char *stamp, size_t stampsz)
{
	json_t *v = json_object_get(note, "timestamp");
	double secs;

	if (v == NULL)
		return;
	if (json_is_number(v)) {
		json_object_set(ev, "timestamp", v);
		return;
	}
	if (json_is_string(v) && strlen(json_string_value(v)) ==
	    json_string_length(v) && parse_utc(json_string_value(v), &secs) == 0)
		snprintf(stamp, stampsz, "\"timestamp\":%.6f", secs);
	json_object_set(ev, "original_timestamp", v);
}

/* event_fail_decode() for the inner oslo.message, saying so. */
static int
fail_inner(struct event_error *err, const json_error_t *je, const char *buf,
    size_t len)
{
	static const char pre[] = "in \"oslo.message\": ";
	size_t n;

	event_fail_decode(err, je, buf, len);
	if (err != NULL) {
		/* prefix, truncating the end of the message when needed */
		n = strnlen(err->message, sizeof(err->message) - sizeof(pre));
		memmove(err->message + sizeof(pre) - 1, err->message, n);
		memcpy(err->message, pre, sizeof(pre) - 1);
		err->message[sizeof(pre) - 1 + n] = '\0';
	}
	return -1;
}

char *
oslo_event(const void *buf, size_t len, size_t *outlen,
    struct event_error *err)
{
	static const char *const kept[] = { "event_type", "publisher_id",
	    "priority", "message_id", NULL };
	json_error_t je;
	json_t *root, *inner = NULL, *note, *env, *ev, *v;
	char *text = NULL, *out = NULL, stamp[64] = "";
	size_t n;

	/* an empty body comes as NULL, which jansson calls "wrong
	 * arguments" */
	root = json_loadb(buf != NULL ? buf : "", len, EV_JSON_FLAGS, &je);
	if (root == NULL) {
		event_fail_decode(err, &je, buf, len);
		return NULL;
	}
	if (!json_is_object(root)) {
		event_fail(err, EV_NOT_AN_OBJECT, "a notification must be a JSON "
		    "object");
		goto out;
	}
	note = root;
	if ((env = json_object_get(root, "oslo.message")) != NULL) {
		if (!json_is_string(env)) {
			event_fail(err, EV_INVALID_ENVELOPE, "\"oslo.message\" "
			    "must be a string holding the notification");
			goto out;
		}
		inner = json_loadb(json_string_value(env), json_string_length(env),
		    EV_JSON_FLAGS, &je);
		if (inner == NULL) {
			fail_inner(err, &je, json_string_value(env),
			    json_string_length(env));
			goto out;
		}
		if (!json_is_object(inner)) {
			event_fail(err, EV_NOT_AN_OBJECT, "\"oslo.message\" must "
			    "hold a JSON object");
			goto out;
		}
		note = inner;
	}

	if ((ev = json_object()) == NULL)
		abort();
	for (const char *const *k = kept; *k != NULL; k++)
		if ((v = json_object_get(note, *k)) != NULL)
			json_object_set(ev, *k, v);
	take_timestamp(note, ev, stamp, sizeof(stamp));
	if ((v = json_object_get(note, "payload")) != NULL)
		json_object_set(ev, "payload", v);
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (text == NULL)
		abort();
	n = strlen(text);
	if (stamp[0] == '\0') {
		out = text;
		text = NULL;
		*outlen = n;
		goto out;
	}
	/* splice the timestamp in with microseconds, as event_ingest does */
	out = malloc(n + strlen(stamp) + 2);
	if (out == NULL)
		abort();
	*outlen = (size_t)sprintf(out, "{%s%s%s", stamp, n > 2 ? "," : "",
	    text + 1);
out:
	free(text);
	json_decref(inner);
	json_decref(root);
	return out;
}
