/* store_backend: what the store plugins share.  See store_backend.h. */
#include "log.h"
#include "store_backend.h"

static struct log_ratelimit store_rl = { .interval = 10, .burst = 5 };

void
store_log_failure(const char *backend, const struct store_rec *r,
    const char *why)
{
	if (r->kind == REC_EVENT)
		log_limited(&store_rl, LOG_LVL_ERROR,
		    "store %s: cannot record event %s: %s", backend, r->ev.id, why);
	else
		log_limited(&store_rl, LOG_LVL_ERROR,
		    "store %s: cannot record a result of event %s: %s", backend,
		    r->res.event_id, why);
}
