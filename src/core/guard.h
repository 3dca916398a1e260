/*
 * guard: a handler's guards against storms, "rate" and "dedupe" in
 * event-handlers.json (event-sub(8), "Storms").
 *
 *   "rate": {"per_second": R, "burst": B}   a token bucket: at most B
 *       runs at once, refilled at R a second (R > 0, up to 1000000; B 1 to
 *       1000000, default R rounded up, at least 1)
 *   "dedupe": {"window": W, "key": POINTER}  the first event with a value
 *       at POINTER (cond.h's JSON pointers) runs; events with the same
 *       value in the W seconds (0.001 to 31 days) after it do not; at most
 *       GUARD_DEDUPE_KEYS values are remembered, the oldest forgotten
 *       first; an event without the member always runs
 *
 * A run the guards stop is no run but is recorded, with status throttled
 * or deduplicated (run.h).  The state lives with the handler table: a
 * reload starts afresh.  Not thread-safe (event-sub's loop).
 */
#ifndef ER_GUARD_H
#define ER_GUARD_H

#include <stddef.h>

#include "run.h"

#define GUARD_DEDUPE_KEYS 100000

struct cfg_node;
struct cfg_reader;
struct cond_doc;
struct cond_ptrs;
struct guard;

/*
 * The "rate" and "dedupe" of handler entry o (the reader at it), the
 * dedupe key's pointer added to ptrs: *out the guards, NULL when it has
 * none.  0, or -1 with the reader's error (FILE:LINE:COLUMN).
 */
int guard_parse(struct cfg_reader *r, const struct cfg_node *o,
    struct cond_ptrs *ptrs, struct guard **out);
void guard_free(struct guard *l);	/* NULL: no-op */

/*
 * Whether a run for the event d (cond.h) may start at now (monotonic
 * seconds): RUN_OK, and it is counted; or RUN_DEDUPLICATED or
 * RUN_THROTTLED with why in why[whysz] (the run's error column).
 */
enum run_status guard_check(struct guard *l, struct cond_doc *d,
    double now, char *why, size_t whysz);

#endif
