/* Unit tests of proc_tree (src/core/proc_tree.h): stat parsing, a fake
 * /proc laid out in a directory, and the real /proc with real children. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_tree.h"
#include "unit.h"

static int
parse(const char *text, struct proc_tree_entry *e)
{
	memset(e, 0, sizeof(*e));
	return proc_tree_parse_stat(text, strlen(text), e);
}

static void
test_parse(void)
{
	struct proc_tree_entry e;

	CHECK(parse("42 (sleep) S 7 42 42 0 -1 4194560 0\n", &e) == 0);
	CHECK(e.state == 'S' && e.ppid == 7 && e.pgrp == 42);
	/* comm may hold spaces, parentheses and ") X 1 2": the last ')' */
	CHECK(parse("43 (a) Z 9 9 (b) R 5 6 7 8\n", &e) == 0);
	CHECK(e.state == 'R' && e.ppid == 5 && e.pgrp == 6);
	CHECK(parse("44 (x y)) Z 1 44", &e) == 0);
	CHECK(e.state == 'Z' && e.ppid == 1 && e.pgrp == 44);
	CHECK(parse("2 (kthreadd) S 0 0 0 0", &e) == 0);
	CHECK(e.ppid == 0 && e.flags == 0);
	/* the flags, field 9, after a tpgid of -1 */
	CHECK(parse("46 (a b) R 1 46 46 0 -1 4194564 0 0", &e) == 0);
	CHECK(e.flags == 4194564 && (e.flags & PROC_TREE_PF_EXITING));
	CHECK(parse("47 (c) S 1 47 47 34816 47 4194560 12", &e) == 0);
	CHECK(e.flags == 4194560 && !(e.flags & PROC_TREE_PF_EXITING));
	/* not that shape */
	CHECK(parse("", &e) == -1);
	CHECK(parse("45 sleep S 1 1", &e) == -1);
	CHECK(parse("45 (sleep) S", &e) == -1);
	CHECK(parse("45 (sleep) S 1", &e) == -1);
	CHECK(parse("45 (sleep) S x 1", &e) == -1);
	CHECK(parse("45 (sleep) S 1x 1", &e) == -1);
	CHECK(parse("45 (sleep)S 1 1", &e) == -1);
	CHECK(parse("45 sleep) S 1 1", &e) == -1);
	CHECK(parse("45 (sleep) S 99999999999 1", &e) == -1);
}

static void
put(const char *root, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/stat", root, name);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
}

static int
has(const pid_t *v, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == pid)
			return 1;
	return 0;
}

/* A tree of 1 -> 10 -> {11 -> 13, 12 (zombie)}, 20; and what is not a
 * process: "self", a file without the shape, a directory without stat. */
static void
test_fake(void)
{
	char root[] = "/tmp/er-proc-tree-XXXXXX", path[512];
	struct proc_tree t;
	const struct proc_tree_entry *e;
	pid_t *v;
	size_t n;

	if (mkdtemp(root) == NULL)
		abort();
	put(root, "1", "1 (init) S 0 1 1");
	put(root, "10", "10 (sh) S 1 10 10");
	put(root, "11", "11 (a ) b) S 10 10 10");
	put(root, "12", "12 (dead) Z 10 10 10");
	put(root, "13", "13 (setsid'd) S 11 13 13");
	put(root, "20", "20 (other) S 1 20 20");
	put(root, "30", "garbage");
	put(root, "self", "99 (self) S 1 1 1");
	snprintf(path, sizeof(path), "%s/40", root);
	mkdir(path, 0700);

	CHECK(proc_tree_read(&t, root) == 0);
	CHECK(t.n == 6);
	v = proc_tree_children(&t, 10, &n);
	CHECK(n == 2 && has(v, n, 11) && has(v, n, 12));
	free(v);
	v = proc_tree_descendants(&t, 10, &n);
	CHECK(n == 3 && has(v, n, 11) && has(v, n, 12) && has(v, n, 13));
	CHECK(n == 3 && v[2] == 13);	/* children first */
	free(v);
	v = proc_tree_descendants(&t, 1, &n);
	CHECK(n == 5 && !has(v, n, 1));
	free(v);
	v = proc_tree_children(&t, 13, &n);
	CHECK(n == 0 && v == NULL);
	e = proc_tree_find(&t, 12);
	CHECK(e != NULL && e->state == 'Z' && e->ppid == 10);
	e = proc_tree_find(&t, 13);
	CHECK(e != NULL && e->pgrp == 13);
	CHECK(proc_tree_find(&t, 30) == NULL);
	CHECK(proc_tree_find(&t, 99) == NULL);
	/* dying: PF_EXITING, or SIGKILL pending (bit 8 of a mask) */
	e = proc_tree_find(&t, 10);
	snprintf(path, sizeof(path), "%s/10/status", root);
	FILE *f = fopen(path, "w");
	fputs("Name:\tsh\nSigQ:\t0/1\nSigPnd:\t0000000000000000\n"
	    "ShdPnd:\t0000000000000100\nSigBlk:\t0000000000000000\n", f);
	fclose(f);
	CHECK(proc_tree_dying(e, root) == 1);
	f = fopen(path, "w");
	fputs("Name:\tsh\nSigPnd:\t0000000000000002\n"
	    "ShdPnd:\t0000000000004000\n", f);
	fclose(f);
	CHECK(proc_tree_dying(e, root) == 0);
	e = proc_tree_find(&t, 11);	/* no status file: gone */
	CHECK(proc_tree_dying(e, root) == 1);
	proc_tree_clear(&t);
	CHECK(t.n == 0 && t.v == NULL);
	CHECK(proc_tree_read(&t, "/nonexistent/er-proc-tree") == -1);
	CHECK(t.n == 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	CHECK(system(path) == 0);
}

/* The real /proc: a child, and its grandchild in a session of its own. */
static void
test_real(void)
{
	int p[2];
	pid_t kid, grand = 0, *v;
	struct proc_tree t;
	const struct proc_tree_entry *e;
	size_t n;

	CHECK(pipe(p) == 0);
	if ((kid = fork()) == 0) {
		if (fork() == 0) {
			pid_t g;
			setsid();
			g = getpid();	/* once it has its own session */
			(void)!write(p[1], &g, sizeof(g));
			pause();
			_exit(0);
		}
		pause();
		_exit(0);
	}
	CHECK(read(p[0], &grand, sizeof(grand)) == sizeof(grand));
	CHECK(proc_tree_read(&t, "/proc") == 0);
	v = proc_tree_children(&t, getpid(), &n);
	CHECK(n == 1 && v[0] == kid);
	free(v);
	v = proc_tree_descendants(&t, getpid(), &n);
	CHECK(n == 2 && v[0] == kid && v[1] == grand);
	free(v);
	e = proc_tree_find(&t, grand);
	CHECK(e != NULL && e->ppid == kid && e->pgrp == grand);
	CHECK(e != NULL && proc_tree_dying(e, "/proc") == 0);
	proc_tree_clear(&t);
	kill(grand, SIGKILL);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	close(p[0]);
	close(p[1]);
}

int
main(void)
{
	test_parse();
	test_fake();
	test_real();
	UNIT_END("test_proc_tree");
}
