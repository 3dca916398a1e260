/*
 * daemon: signal flags and readiness notification.
 *
 * Signal handlers only set the flags below; the daemons' poll loops act on
 * them.  SIGPIPE is ignored in the daemons (children get it back).
 */
#ifndef ER_DAEMON_H
#define ER_DAEMON_H

#include <signal.h>

extern volatile sig_atomic_t daemon_stop;	/* SIGTERM, SIGINT */
extern volatile sig_atomic_t daemon_reload;	/* SIGHUP */
extern volatile sig_atomic_t daemon_child;	/* SIGCHLD */

/* Install the handlers (SA_RESTART off, so poll returns EINTR). */
void daemon_signals(void);

/*
 * Send state (e.g. "READY=1") on $NOTIFY_SOCKET, the sd_notify(3)
 * protocol: one datagram on an AF_UNIX socket, abstract when the path
 * starts with '@'.  No-op without NOTIFY_SOCKET.  Returns 0 or -1.
 */
int daemon_notify(const char *state);

/* "event-router 0.1.0" style version line. */
#define ER_VERSION "0.1.0"

#endif
