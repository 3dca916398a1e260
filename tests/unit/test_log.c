/*
 * test_log: what a log line holds.  Control characters but tab (C0, DEL,
 * C1) and bytes that are no UTF-8 are written as \xNN (text from outside
 * cannot end a line or forge one), and a line over 4096 bytes is cut at a
 * character's start with "...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

static char path[] = "/tmp/er-test-log-XXXXXX";

/* What log_msg(level, "%s", text) wrote to standard error, after the
 * prefix ("... test_log[PID] LEVEL "), without its newline, in out. */
static void
logged(const char *text, char *out, size_t outsz)
{
	char buf[8192];
	FILE *f;
	size_t n;
	char *p;

	fflush(stderr);
	if (freopen(path, "w", stderr) == NULL)
		abort();
	log_msg(LOG_LVL_WARNING, "%s", text);
	fflush(stderr);
	f = fopen(path, "r");
	n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	buf[n] = '\0';
	p = strstr(buf, " WARNING ");
	snprintf(out, outsz, "%s", p != NULL ? p + 9 : "");
	CHECK(n > 0 && buf[n - 1] == '\n');
	CHECK(strchr(buf, '\n') == buf + n - 1);	/* one line */
	if ((p = strchr(out, '\n')) != NULL)
		*p = '\0';
}

int
main(void)
{
	char out[8192], big[6000];
	int fd = dup(2);

	if (fd < 0 || mkstemp(path) < 0)
		return 2;
	log_init("test_log", LOG_LVL_INFO);
	logged("plain text, with a tab\there", out, sizeof(out));
	CHECK_STR(out, "plain text, with a tab\there");
	logged("ok\n2026-12-07T00:00:00.000Z event-sub[1] ERROR forged", out,
	    sizeof(out));
	CHECK_STR(out, "ok\\x0a2026-12-07T00:00:00.000Z event-sub[1] ERROR "
	    "forged");
	logged("a\rb\x1b[2Jc\x7f\x01 caf\xc3\xa9", out, sizeof(out));
	CHECK_STR(out, "a\\x0db\\x1b[2Jc\\x7f\\x01 caf\xc3\xa9");
	/* C1 controls (U+0085, U+009B) and bytes that are no UTF-8 (a lone
	 * 0x9b, an overlong '/', a surrogate, a cut character) byte by byte;
	 * U+00A0 and U+10FFFF are characters */
	logged("c1 \xc2\x85 \xc2\x9b[2J \x9b \xc0\xaf \xed\xa0\x80 "
	    "\xc2\xa0 \xf4\x8f\xbf\xbf \xe2\x82", out, sizeof(out));
	CHECK_STR(out, "c1 \\xc2\\x85 \\xc2\\x9b[2J \\x9b \\xc0\\xaf "
	    "\\xed\\xa0\\x80 \xc2\xa0 \xf4\x8f\xbf\xbf \\xe2\\x82");
	/* separators and bidirectional controls byte by byte: U+2028,
	 * U+2029, U+202E, U+2066, U+2069, U+200F, U+061C; their neighbours
	 * U+2027, U+202F, U+2065 (unassigned), U+206A, U+200D, U+061B stay */
	logged("ls \xe2\x80\xa8 ps \xe2\x80\xa9 rlo \xe2\x80\xae x lri "
	    "\xe2\x81\xa6 pdi \xe2\x81\xa9 rlm \xe2\x80\x8f alm \xd8\x9c | "
	    "\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa\xe2\x80\x8d"
	    "\xd8\x9b", out, sizeof(out));
	CHECK_STR(out, "ls \\xe2\\x80\\xa8 ps \\xe2\\x80\\xa9 rlo "
	    "\\xe2\\x80\\xae x lri \\xe2\\x81\\xa6 pdi \\xe2\\x81\\xa9 rlm "
	    "\\xe2\\x80\\x8f alm \\xd8\\x9c | \xe2\x80\xa7\xe2\x80\xaf"
	    "\xe2\x81\xa5\xe2\x81\xaa\xe2\x80\x8d\xd8\x9b");
	/* cut at a character's start: "a" then 2-, 3- and 4-byte ones */
	for (int w = 2; w <= 4; w++) {
		static const char *const ch[] = { "", "", "\xc3\xa9",
		    "\xe2\x82\xac", "\xf0\x9d\x84\x9e" };
		size_t k = 1;

		big[0] = 'a';
		while (k + (size_t)w < sizeof(big)) {
			memcpy(big + k, ch[w], (size_t)w);
			k += (size_t)w;
		}
		big[k] = '\0';
		logged(big, out, sizeof(out));
		CHECK(strlen(out) > 4000 && strlen(out) < 4096);
		CHECK(strcmp(out + strlen(out) - 3, "...") == 0);
		CHECK((strlen(out) - 4) % (size_t)w == 0);	/* whole ones */
		CHECK(memcmp(out + strlen(out) - 3 - w, ch[w], (size_t)w) == 0);
	}
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	logged(big, out, sizeof(out));
	CHECK(strlen(out) > 3900 && strlen(out) < 4096);
	CHECK(strncmp(out, "\\x0a\\x0a", 8) == 0);
	CHECK(strcmp(out + strlen(out) - 3, "...") == 0);
	memset(big, 'y', sizeof(big) - 1);
	logged(big, out, sizeof(out));
	CHECK(strlen(out) > 4000 && strlen(out) < 4096);
	CHECK(strcmp(out + strlen(out) - 3, "...") == 0);
	dup2(fd, 2);
	unlink(path);
	UNIT_END("test_log");
}
