/*
 * cond: a handler's conditions on an event's content, the "when" object
 * of an event-handlers.json entry (event-sub(8), "Conditions").
 *
 *   "when": {POINTER: LITERAL | {OPERATOR: OPERAND, ...}, ...}
 *
 * POINTER is a JSON pointer (RFC 6901: "" the whole event, or "/a/b",
 * "~0" for '~' and "~1" for '/') into the stamped event.  A literal means
 * {"eq": LITERAL}.  Operators: "eq", "ne" (a JSON value), "in" (an array
 * of values), "regex" (a string, POSIX extended, regcomp(3)), "exists"
 * (true or false), "lt", "le", "gt", "ge" (a number).  Every condition of
 * the object, and every operator of one, must hold.  A member the pointer
 * does not reach holds only {"exists": false}; "regex" holds for strings
 * only, the order operators for numbers only.  Numbers compare exactly:
 * integers as 64-bit integers, an integer with a real by value (no
 * rounding to double); 1 equals 1.0.
 *
 * Compiled once, when the file is read (and on SIGHUP).  The pointers of
 * a table's conditions are looked for once per event, in the pass that
 * reads the event (cond_parse_event(), event_scan_ptrs()), and only the
 * values a condition asks for are parsed (jansson, with the event
 * module's conventions, event_json.h): no tree of the event is built but
 * when the fast pass cannot read it.
 */
#ifndef ER_COND_H
#define ER_COND_H

#include <stddef.h>

struct cfg_node;
struct cfg_reader;
struct cond_set;
struct cond_doc;
struct cond_ptrs;
struct cond_key;
struct event;
struct event_error;

/* The JSON pointers of a handler table's conditions, each once. */
struct cond_ptrs *cond_ptrs_new(void);
void cond_ptrs_free(struct cond_ptrs *p);	/* NULL: no-op */

/*
 * Compile when (the reader at the entry, whose member "when" it is), its
 * pointers added to ptrs (the table's).  Returns the compiled set, or
 * NULL with the reader's error (FILE:LINE:COLUMN): not an object, a bad
 * pointer, an unknown operator, an operand of the wrong type, a regex
 * regcomp(3) refuses (its message).
 */
struct cond_set *cond_compile(struct cfg_reader *r, const struct cfg_node *when,
    struct cond_ptrs *ptrs);
void cond_free(struct cond_set *c);	/* NULL: no-op */

/*
 * Read the stamped event buf[len] into *ev as event_parse_stamped() does
 * (same return), finding the values of ptrs (the table's; NULL or empty:
 * *doc NULL) in the same pass: *doc is the event for cond_match(), which
 * parses a value only when a condition asks for it (the whole event with
 * jansson when the fast pass could not delimit them).  *doc points into
 * ev: cond_doc_free() it first.
 */
int cond_parse_event(const struct cond_ptrs *ptrs, const void *buf,
    size_t len, struct event *ev, struct event_error *err,
    struct cond_doc **doc);

/* The stamped event json[len] as one tree, for cond_match(); NULL when
 * it is not JSON (no condition holds then). */
struct cond_doc *cond_doc_parse(const char *json, size_t len);
void cond_doc_free(struct cond_doc *d);	/* NULL: no-op */

/*
 * A JSON pointer of its own (a "dedupe" key, limits.h), p, compiled as a
 * condition's (the reader at its value for errors; added to ptrs).  NULL
 * with the reader's error.
 */
struct cond_key *cond_key_compile(struct cfg_reader *r, const char *p,
    struct cond_ptrs *ptrs);
void cond_key_free(struct cond_key *k);	/* NULL: no-op */
/* The value k reaches in d as compact JSON with sorted keys (a new
 * string), or NULL when d has no such member. */
char *cond_key_text(const struct cond_key *k, struct cond_doc *d);

/* 1 when every condition of c holds for d (d NULL: 0). */
int cond_match(const struct cond_set *c, struct cond_doc *d);

#endif
