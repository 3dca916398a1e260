/*
 * config.json (include/config.h, src/core/cfg_load.c and the plugins'
 * config parsers): cfg_load() on any file.  What must hold: it returns 0
 * or -1, never the defaults' 1 for a path given; a refusal says
 * "FILE:..." with the path given (FILE:LINE:COLUMN for what the file
 * says); a configuration has the documented shape (1 to CFG_MAX_INPUTS
 * inputs, 1 to CFG_MAX_OUTPUTS outputs, a store, each with its table);
 * cfg_free() releases everything (LeakSanitizer checks) and a second
 * cfg_free() is a no-op.
 */
#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg cfg;
	char err[1024], pre[600];
	const char *path;
	int rc;

	fuzz_quiet();
	path = fuzz_file("config", data, size);
	memset(err, 0, sizeof(err));
	rc = cfg_load(path, &cfg, err, sizeof(err));
	FUZZ_ASSERT(rc == 0 || rc == -1, "cfg_load returned %d", rc);
	if (rc != 0) {
		snprintf(pre, sizeof(pre), "%s:", path);
		FUZZ_ASSERT(strncmp(err, pre, strlen(pre)) == 0, "the error "
		    "does not start with the file's name: %s", err);
		FUZZ_ASSERT(strlen(err) > strlen(pre) + 2, "an empty error: %s",
		    err);
		return 0;
	}
	FUZZ_ASSERT(cfg.ninputs >= 1 && cfg.ninputs <= CFG_MAX_INPUTS,
	    "%d inputs", cfg.ninputs);
	FUZZ_ASSERT(cfg.noutputs >= 1 && cfg.noutputs <= CFG_MAX_OUTPUTS,
	    "%d outputs", cfg.noutputs);
	FUZZ_ASSERT(cfg.store.ops != NULL, "no store");
	for (int i = 0; i < cfg.ninputs; i++)
		FUZZ_ASSERT(cfg.inputs[i].ops != NULL &&
		    memchr(cfg.inputs[i].ns, '\0', sizeof(cfg.inputs[i].ns)) !=
		    NULL, "input %d", i);
	for (int i = 0; i < cfg.noutputs; i++)
		FUZZ_ASSERT(cfg.outputs[i].ops != NULL, "output %d", i);
	FUZZ_ASSERT(cfg.max_event_size > 0, "max_event_size 0");
	cfg_free(&cfg);
	cfg_free(&cfg);
	return 0;
}
