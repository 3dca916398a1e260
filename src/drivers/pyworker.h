/*
 * pyworker: the embedded CPython interpreter inside one worker process.
 * The only module that includes Python.h.  event-sub execs itself with
 * --python-worker to get a fresh process for it (never a fork of a process
 * that runs threads or Python), and talks to it over fd (pyproto.h).
 */
#ifndef ER_PYWORKER_H
#define ER_PYWORKER_H

/* The fds the worker finds its socket and its call slots (pyproto.h,
 * struct pyshm) on, set up by pyhost before exec. */
#define PYWORKER_FD 3
#define PYWORKER_SHM_FD 4

/*
 * Run the worker: map the call slots, initialise an isolated interpreter
 * with handlers_dir first on sys.path, say hello, then serve 'C' and 'V'
 * frames until EOF, in order, one call at a time.
 * level: the lowest Python logging level to forward (10..50).
 * Returns the process exit status (0 at EOF, 1 when Python cannot start).
 */
int pyworker_main(int fd, const char *handlers_dir, int level);

#endif
