/* store_backend: what the store plugins share.  See store_backend.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg_reader.h"
#include "log.h"
#include "store_backend.h"
#include "util.h"

/* the writer logs through it, the daemon's timer flushes it (store.h) */
static pthread_mutex_t store_rl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct log_ratelimit store_rl = { .interval = 10, .burst = 5,
    .what = "\"cannot record\" lines" };

void
store_log_failure(const char *backend, const struct store_rec *r,
    const char *why)
{
	pthread_mutex_lock(&store_rl_mu);
	if (r->kind == REC_EVENT)
		log_limited(&store_rl, LOG_LVL_ERROR,
		    "store %s: cannot record event %s: %s", backend, r->ev.id, why);
	else
		log_limited(&store_rl, LOG_LVL_ERROR,
		    "store %s: cannot record a result of event %s: %s", backend,
		    r->res.event_id, why);
	pthread_mutex_unlock(&store_rl_mu);
}

void
store_log_flush(void)
{
	pthread_mutex_lock(&store_rl_mu);
	log_limited_flush(&store_rl);
	pthread_mutex_unlock(&store_rl_mu);
}

/* Make path[pathsz] absolute (util_abspath()). */
static void
store_abspath(char *path, size_t pathsz)
{
	char *p = util_abspath(path);

	snprintf(path, pathsz, "%s", p);
	free(p);
}

/* A file a start could not open, the reader at its key: -1 with why. */
static int
check_file(struct cfg_reader *r, const char *path)
{
	char dir[4096];
	struct stat sb;
	char *slash;

	size_t n = strlen(path);

	if (util_names_dir(path))	/* "x/", "x/.": whatever is there */
		return cfg_error(r, NULL, "\"%s\" names a directory; name the "
		    "database file, such as \"%s%sevents.db\"", path, path,
		    n > 0 && path[n - 1] == '/' ? "" : "/");
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return cfg_error(r, NULL, "\"%s\" is a directory; name the "
		    "database file, such as \"%s/events.db\"", path, path);
	snprintf(dir, sizeof(dir), "%s", path);
	while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &sb) != 0)
			continue;	/* missing: created at the start */
		if (!S_ISDIR(sb.st_mode))
			return cfg_error(r, NULL, "\"%s\": \"%s\" is not a "
			    "directory", path, dir);
		break;
	}
	return 0;
}

int
store_get_path(struct cfg_reader *r, const struct cfg_node *section,
    const char *key, char *path, size_t pathsz)
{
	if (cfg_member(section, key) != NULL) {
		if (cfg_get_str(r, section, key, path, pathsz) != 0)
			return -1;
		cfg_push(r, key);
		if (check_file(r, path) != 0)
			return -1;
		cfg_pop(r);
	}
	store_abspath(path, pathsz);
	return 0;
}
