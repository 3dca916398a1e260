/*
 * run: what one handler run came to.  Both drivers (shell, pyfunc) report
 * a run in this shape, and the store keeps it as it is (store_put_result;
 * the results table and collection, event-reactor(7)).
 */
#ifndef ER_RUN_H
#define ER_RUN_H

#include <stddef.h>

/* Captured stdout and stderr, each, before the truncation marker (bytes). */
#define RUN_OUTPUT_CAP (64 * 1024)

enum run_status {
	RUN_OK = 0,	/* ran and succeeded (exit status 0; returned) */
	RUN_FAILED,	/* ran and failed (exit status, signal; raised) */
	RUN_TIMEOUT,	/* killed: over its timeout, or at shutdown */
	RUN_ERROR,	/* could not run (error says why) */
	RUN_THROTTLED,	/* not run: over its handler's rate (guard.h) */
	RUN_DEDUPLICATED,	/* not run: a repeat within its dedupe window */
};

/*
 * One run.  Strings are borrowed: valid while the callback that hands the
 * result over runs (the store copies what it keeps).
 */
struct run_result {
	const char *event_id;
	const char *driver;	/* "shell", "pyfunc" */
	const char *handler;	/* the handler string as written */
	enum run_status status;
	int has_exit_code;
	int exit_code;
	int signal;		/* 0: none */
	double started_at;	/* seconds since the epoch */
	double duration_ms;
	const char *out;	/* captured stdout, may hold any bytes */
	size_t out_len;
	const char *err;	/* captured stderr */
	size_t err_len;
	const char *error;	/* why it could not start, or NULL */
	const char *data;	/* pyfunc: the return value as JSON, or NULL */
	int redelivered;	/* 1: run again, its event's run was in
				   flight when the last event-sub died */
	int replayed;		/* 1: run by event-sub --replay */
};

/* The name stored for s: "ok", "failed", "timeout", "error",
 * "throttled", "deduplicated" (static). */
const char *run_status_name(enum run_status s);

#endif
