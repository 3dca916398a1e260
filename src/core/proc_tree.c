/* proc_tree: parent links read from /proc.  See proc_tree.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_tree.h"
#include "util.h"

/* A decimal field at *pp, ended by a space or the end; 0 with *v, or -1
 * (none, or over pid_max's limit, PID_MAX_LIMIT 4194304). */
static int
field(const char **pp, const char *end, pid_t *v)
{
	const char *p = *pp;
	long n = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		if ((n = n * 10 + (*p - '0')) > 4194304L)
			return -1;
	if (p < end && *p != ' ')
		return -1;
	*v = (pid_t)n;
	*pp = p < end ? p + 1 : p;
	return 0;
}

int
proc_tree_parse_stat(const char *text, size_t len,
    struct proc_tree_entry *e)
{
	const char *close = NULL, *p, *end = text + len;

	for (p = text; p < end; p++)
		if (*p == ')')
			close = p;
	/* ") S " at least: the state, then the parent's pid, its group */
	if (close == NULL || end - close < 4 || close[1] != ' ' ||
	    close[3] != ' ' || memchr(text, '(', (size_t)(close - text)) ==
	    NULL)
		return -1;
	p = close + 4;
	if (field(&p, end, &e->ppid) != 0 || field(&p, end, &e->pgrp) != 0)
		return -1;
	e->state = close[2];
	e->flags = 0;
	/* session, tty_nr, tpgid (may be -1): skipped; then the flags */
	for (int i = 0; i < 3 && p < end; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		p = sp != NULL ? sp + 1 : end;
	}
	if (p < end && *p >= '0' && *p <= '9') {
		char num[24];
		size_t k = 0;
		while (p < end && k < sizeof(num) - 1 && *p >= '0' && *p <= '9')
			num[k++] = *p++;
		num[k] = '\0';
		e->flags = strtoul(num, NULL, 10);
	}
	return 0;
}

/* 1 when the hexadecimal mask after "NAME:" on one of text's lines has
 * SIGKILL's bit (signal 9: bit 8). */
static int
kill_pending(const char *text, const char *name)
{
	const char *l = strstr(text, name);
	unsigned long long mask;

	if (l == NULL || sscanf(l + strlen(name), " %llx", &mask) != 1)
		return 0;
	return (mask >> 8 & 1) != 0;
}

int
proc_tree_dying(const struct proc_tree_entry *e, const char *root)
{
	char path[4096], buf[4096];
	ssize_t n;
	int fd;

	if (e->flags & PROC_TREE_PF_EXITING)
		return 1;
	snprintf(path, sizeof(path), "%s/%ld/status", root, (long)e->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT;		/* gone already */
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return kill_pending(buf, "\nSigPnd:") || kill_pending(buf, "\nShdPnd:");
}

/* Read root/name/stat into e; 0, or -1 when it is gone or unreadable. */
static int
read_one(const char *root, const char *name, struct proc_tree_entry *e)
{
	char path[4096], buf[1024];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s/stat", root, name) >=
	    sizeof(path))
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	e->pid = (pid_t)strtol(name, NULL, 10);
	return proc_tree_parse_stat(buf, (size_t)n, e);
}

int
proc_tree_read(struct proc_tree *t, const char *root)
{
	size_t cap = 0;
	struct dirent *de;
	DIR *d;

	t->v = NULL;
	t->n = 0;
	if ((d = opendir(root)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 256;
			t->v = xrealloc(t->v, cap * sizeof(*t->v));
		}
		if (read_one(root, de->d_name, &t->v[t->n]) == 0)
			t->n++;
	}
	closedir(d);
	return 0;
}

void
proc_tree_clear(struct proc_tree *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

const struct proc_tree_entry *
proc_tree_find(const struct proc_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].pid == pid)
			return &t->v[i];
	return NULL;
}

/* Append the children of pid in t to out[*n..], growing it. */
static pid_t *
add_children(const struct proc_tree *t, pid_t pid, pid_t *out, size_t *n,
    size_t *cap)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->v[i].ppid != pid || t->v[i].pid == pid)
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			out = xrealloc(out, *cap * sizeof(*out));
		}
		out[(*n)++] = t->v[i].pid;
	}
	return out;
}

pid_t *
proc_tree_children(const struct proc_tree *t, pid_t pid, size_t *n)
{
	size_t cap = 0;

	*n = 0;
	return add_children(t, pid, NULL, n, &cap);
}

pid_t *
proc_tree_descendants(const struct proc_tree *t, pid_t pid, size_t *n)
{
	size_t cap = 0, done = 0;
	pid_t *out;

	*n = 0;
	out = add_children(t, pid, NULL, n, &cap);
	/* breadth first; a snapshot's parent links form a tree, and each
	 * pid is listed once, so this ends */
	while (done < *n && *n <= t->n)
		out = add_children(t, out[done++], out, n, &cap);
	return out;
}
