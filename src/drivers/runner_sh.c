/*
 * runner_sh: the shell driver's warning for handlers that hand the event to
 * a shell interpreter's -c (event-sub(8), "Handlers and shells").  The
 * event JSON is a handler's last argument; after "sh -c" with no script it
 * is the script itself, so any event runs any command; after a script it
 * is a positional parameter, harmless only where the script quotes it.
 */
#include <string.h>

#include "cfg_reader.h"
#include "log.h"
#include "runner.h"

/* Shells whose -c takes a command string (POSIX sh and its relatives). */
static const char *const shells[] = { "sh", "bash", "dash", "ash", "ksh",
    "mksh", "pdksh", "posh", "yash", "zsh", "busybox", NULL };

static const char *
base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

static int
is_shell(const char *word)
{
	for (const char *const *s = shells; *s != NULL; s++)
		if (strcmp(base(word), *s) == 0)
			return 1;
	return 0;
}

/* The word of argv[0..argc) that names the program: past "env" and its
 * options and NAME=value words, and busybox's applet name. */
static int
program_word(char *const *argv, int argc)
{
	int i = 0;

	if (argc > 0 && strcmp(base(argv[0]), "env") == 0)
		for (i = 1; i < argc && (argv[i][0] == '-' ||
		    strchr(argv[i], '=') != NULL); i++)
			;
	if (i < argc && strcmp(base(argv[i]), "busybox") == 0 &&
	    i + 1 < argc && is_shell(argv[i + 1]))
		i++;
	return i;
}

int
runner_shell_c(char *const *argv, int argc)
{
	int i = program_word(argv, argc);

	if (i >= argc || !is_shell(argv[i]))
		return -1;
	for (i++; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--rcfile") == 0 || strcmp(a, "--init-file") == 0) {
			i++;		/* takes a file */
			continue;
		}
		if (strncmp(a, "--", 2) == 0 && a[2] != '\0')
			continue;	/* another long option */
		if ((a[0] != '-' && a[0] != '+') || a[1] == '\0' ||
		    strcmp(a, "--") == 0)
			return -1;	/* the script file or operands */
		if (a[0] == '-' && strchr(a + 1, 'c') != NULL)
			return i + 1;
		if (strchr(a + 1, 'o') != NULL || strchr(a + 1, 'O') != NULL)
			i++;		/* -o NAME, -O NAME */
	}
	return -1;
}

void
runner_warn_shell_c(struct cfg_reader *c, const struct shell_opts *so)
{
	int w;

	if (so->input == INPUT_STDIN ||
	    (w = runner_shell_c(so->argv, so->argc)) < 0)
		return;
	if (w >= so->argc)
		cfg_note(c, "handler", LOG_LVL_WARNING, "the event JSON is "
		    "the script of this shell's -c (it is the last "
		    "argument): any event runs any command; give the shell "
		    "a script, or run the program without a shell "
		    "(event-sub(8), \"Handlers and shells\")");
	else
		cfg_note(c, "handler", LOG_LVL_WARNING, "the event JSON "
		    "reaches a shell's -c script as its last positional "
		    "parameter (\"$%d\"): use it only in double quotes, never "
		    "in eval or an unquoted expansion, or run the program "
		    "without a shell (event-sub(8), \"Handlers and shells\")",
		    so->argc - w - 1);
}
