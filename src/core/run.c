/* run: one handler run's result.  See include/run.h. */
#include "run.h"

const char *
run_status_name(enum run_status s)
{
	static const char *const names[] = {
		[RUN_OK] = "ok",
		[RUN_FAILED] = "failed",
		[RUN_TIMEOUT] = "timeout",
		[RUN_ERROR] = "error",
		[RUN_THROTTLED] = "throttled",
		[RUN_DEDUPLICATED] = "deduplicated",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] :
	    "error";
}
