/*
 * proc_tree: who is whose child, read from Linux's /proc (proc(5)):
 * field 4 of /proc/PID/stat is the parent's pid, field 3 the state.  A
 * snapshot is taken once (proc_tree_read()) and then asked for the
 * children or the descendants of a pid; processes come and go meanwhile,
 * so what it says is as of the read.  event-sub uses it to find what
 * handler runs left behind (sub_contain.c) and the process layer to
 * SIGKILL every descendant of a child at its deadline (proc.c).
 */
#ifndef ER_PROC_TREE_H
#define ER_PROC_TREE_H

#include <stddef.h>
#include <sys/types.h>

/* One process of a snapshot. */
struct proc_tree_entry {
	pid_t pid;
	pid_t ppid;
	pid_t pgrp;		/* its process group */
	char state;		/* 'R', 'S', 'Z' (zombie: exited, not reaped) */
	unsigned long flags;	/* the kernel's PF_* (field 9), 0: not given */
};

/* PF_EXITING (include/linux/sched.h): the process is in exit(). */
#define PROC_TREE_PF_EXITING 0x4UL

/* A snapshot: v[0..n), in the order /proc listed them; owned. */
struct proc_tree {
	struct proc_tree_entry *v;
	size_t n;
};

/*
 * Parse the text of /proc/PID/stat (len bytes, not NUL-terminated):
 * "PID (COMM) STATE PPID PGRP SESSION TTY_NR TPGID FLAGS ...", where COMM
 * may hold spaces and ')', so the fields after it are found after the
 * last ')'.  0 with e's state, ppid, pgrp and flags (0 when the text ends
 * before them) set, not its pid; or -1 when the text has not that shape.
 */
int proc_tree_parse_stat(const char *text, size_t len,
    struct proc_tree_entry *e);

/*
 * Read every process under root ("/proc"; another directory laid out the
 * same way in tests) into t (zeroed or cleared first).  Processes that
 * exit while it reads are left out.  0, or -1 with errno when root
 * cannot be read (t empty then).
 */
int proc_tree_read(struct proc_tree *t, const char *root);
/* Free t's entries; t is empty after. */
void proc_tree_clear(struct proc_tree *t);

/*
 * The children (proc_tree_children()) or every descendant, children
 * first, then theirs (proc_tree_descendants()), of pid in t: an xmalloc'd
 * array of *n pids (NULL when none), the caller's to free.  Zombies are
 * listed (they have no children); the caller skips them with
 * proc_tree_find().
 */
pid_t *proc_tree_children(const struct proc_tree *t, pid_t pid, size_t *n);
pid_t *proc_tree_descendants(const struct proc_tree *t, pid_t pid,
    size_t *n);
/*
 * 1 when e's process is on its way out: in exit() (PF_EXITING), or with a
 * SIGKILL pending (SigPnd or ShdPnd of root/PID/status), as one killed a
 * moment ago; it is then no use killing or counting it again.  0 else.
 */
int proc_tree_dying(const struct proc_tree_entry *e, const char *root);

/* pid's entry in t, NULL when t has no such process. */
const struct proc_tree_entry *proc_tree_find(const struct proc_tree *t,
    pid_t pid);

#endif
