/*
 * event_scan: the event module's fast path (internal to src/core/event.c).
 *
 * One pass of a lexer of JSON's grammar (RFC 8259) over an event's text:
 * no tree, no allocation, strings skipped sixteen bytes at a time.  For
 * make bench's 150-byte events it takes about 0.12 us, where yajl's stream
 * parser took 0.4 (2026-12-07).  It only ever *accepts*: when it
 * returns 1 the text is one JSON value that jansson would accept with the
 * flags event.c uses, a top-level object without a duplicate key at any
 * depth, and *f describes its top-level members.  In every other case
 * (invalid or unusual text) it returns 0 and the caller asks jansson,
 * which decides and gives the exact error (tests/fuzz/fuzz_event.c checks
 * the two against each other).
 *
 * Unusual text, always left to jansson:
 *   - in a string: any byte >= 0x80 (jansson checks UTF-8: overlong forms,
 *     surrogates), a control character, any \u escape (a lone surrogate,
 *     \u0000);
 *   - nesting deeper than EVSCAN_MAX_DEPTH, more than EVSCAN_MAX_KEYS keys
 *     in the objects open at once, a key written with an escape
 *     (duplicates are compared as written);
 *   - a top-level event_type, namespace or id written with an escape, an
 *     event_type that is not a non-empty string, a namespace that is not
 *     a non-empty string, a timestamp that is not a number, a hops that is
 *     not an integer from 0 to EVENT_MAX_HOPS;
 *   - an integer outside long long, a number that overflows a double (an
 *     underflow is taken, as jansson takes it).
 */
#ifndef ER_EVENT_SCAN_H
#define ER_EVENT_SCAN_H

#include <stddef.h>

/* Deepest nesting taken here (jansson's own limit is 2048). */
#define EVSCAN_MAX_DEPTH 64
/* Keys of all the objects open at once (an object and its parents). */
#define EVSCAN_MAX_KEYS 256

/*
 * The top-level members of an accepted event.  Strings point into the
 * scanned text (they had no escape, so the bytes are the value) and are
 * not NUL-terminated; ns and id are NULL when absent.
 */
struct evscan {
	const char *type, *ns, *id;
	size_t type_len, ns_len, id_len;
	int has_id;		/* an "id" member of any type */
	int space;		/* the text holds a ' ', \t, \n or \r byte */
	int has_ts;
	double ts;		/* the timestamp's value when has_ts */
	int hops;		/* "hops", 0 to EVENT_MAX_HOPS; 0 when absent */
};

/*
 * Scan buf[0..len).  Returns 1 and fills *f when the text is a plain,
 * valid event object (above); 0 when jansson must decide.
 */
int event_scan(const char *buf, size_t len, struct evscan *f);

/*
 * The JSON pointers event_scan_ptrs() looks for (event.h, struct
 * event_ptr): an object key is compared as written, an array index as its
 * decimal digits without a leading zero.
 */
struct event_ptr;

/*
 * event_scan(), finding the values of ptrs[0..nptrs) in the same pass
 * (cond.h's conditions, without a tree).  Returns 1 as event_scan() does
 * and when every value found could be delimited; 0 when jansson must
 * decide (the event, or a value: a string written with an escape).
 */
int event_scan_ptrs(const char *buf, size_t len, struct evscan *f,
    struct event_ptr *ptrs, size_t nptrs);

#endif
