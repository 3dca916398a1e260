/*
 * Unit tests of cert (czmq certificate files), the Z85 key checks of
 * bus_curve and cfg_curve_allows (client_addresses).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "cert.h"
#include "config.h"
#include "unit.h"

static char dir[] = "/tmp/er-test-cert-XXXXXX";

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static const char *
at(const char *name)
{
	static char path[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

static void
test_generate_and_load(void)
{
	struct cert gen, pub, sec;
	struct stat st;
	char err[1024];

	CHECK(cert_generate(at("k"), &gen, err, sizeof(err)) == 0);
	CHECK(bus_key_valid(gen.public_key));
	CHECK(bus_key_valid(gen.secret_key));
	CHECK(stat(at("k_secret"), &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(cert_load(at("k"), 0, &pub, err, sizeof(err)) == 0);
	CHECK_STR(pub.public_key, gen.public_key);
	CHECK_STR(pub.secret_key, "");
	CHECK(cert_load(at("k_secret"), 1, &sec, err, sizeof(err)) == 0);
	CHECK_STR(sec.public_key, gen.public_key);
	CHECK_STR(sec.secret_key, gen.secret_key);
	/* a public certificate has no secret */
	CHECK(cert_load(at("k"), 1, &sec, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "no secret-key in its \"curve\" section");
	/* never overwritten */
	CHECK(cert_generate(at("k"), &gen, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "exists already; not overwritten");
}

static void
test_bad_files(void)
{
	struct cert c;
	char err[1024];

	CHECK(cert_load(at("none"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "none: No such file or directory");
	write_file("short", "curve\n    public-key = \"abc\"\n");
	CHECK(cert_load(at("short"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "public-key is not a CURVE key (40 characters of "
	    "Z85)");
	/* 40 characters, one outside Z85's alphabet */
	write_file("tilde", "curve\n    public-key = "
	    "\"~234567890123456789012345678901234567890\"\n");
	CHECK(cert_load(at("tilde"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "public-key is not a CURVE key");
	write_file("nocurve", "metadata\n    name = \"x\"\n");
	CHECK(cert_load(at("nocurve"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "no public-key in its \"curve\" section");
	write_file("notzpl", "curve\n        public-key = \"x\"\n");
	CHECK(cert_load(at("notzpl"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "notzpl:2: not a certificate (czmq's ZPL text: "
	    "\"metadata\" and \"curve\" sections): indentation error");
	/* reasons with quotes of their own keep them */
	write_file("slash", "curve\n    /public-key = \"x\"\n");
	CHECK(cert_load(at("slash"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "slash:2: not a certificate (czmq's ZPL text: "
	    "\"metadata\" and \"curve\" sections): '/' not valid at name "
	    "start or end");
	write_file("apos", "curve\n    public-key = 'abc\n");
	CHECK(cert_load(at("apos"), 0, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "apos:2: not a certificate (czmq's ZPL text: "
	    "\"metadata\" and \"curve\" sections): missing '");
}

/*
 * A daemon started with stdin and stdout closed reads certificates as
 * any other: a good one loads, a bad one names its line, and both stay
 * closed afterwards.
 */
static void
test_stdin_stdout_closed(void)
{
	struct cert gen, c;
	char err[1024];
	int in, out, rc[2];

	CHECK(cert_generate(at("closed"), &gen, err, sizeof(err)) == 0);
	write_file("closedbad", "curve\n\tpublic-key = \"x\"\n");
	fflush(stdout);
	in = dup(STDIN_FILENO);
	out = dup(STDOUT_FILENO);
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	rc[0] = cert_load(at("closed_secret"), 1, &c, err, sizeof(err));
	rc[0] = rc[0] != 0 ? rc[0] : strcmp(c.secret_key, gen.secret_key) != 0;
	rc[1] = cert_load(at("closedbad"), 0, &c, err, sizeof(err));
	rc[0] = rc[0] != 0 ? rc[0] : fcntl(STDIN_FILENO, F_GETFD) != -1 ? 1 :
	    fcntl(STDOUT_FILENO, F_GETFD) != -1 ? 2 : 0;
	dup2(in, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	close(in);
	close(out);
	CHECK(rc[0] == 0);
	CHECK(rc[1] == -1);
	CHECK_CONTAINS(err, "closedbad:2: not a certificate");
}

/* The lowest descriptor free: with a limit of it + free, free are left. */
static int
lowest_free_fd(void)
{
	int fd = dup(STDIN_FILENO);

	close(fd);
	return fd;
}

/*
 * Out of descriptors (EMFILE), a good certificate is an error of the
 * system (-2), not "not a certificate", whether reading the file or
 * keeping zconfig's output off stdout fails; and a directory of them
 * fails as a whole instead of skipping it.
 */
static void
test_out_of_descriptors(void)
{
	struct cert_set set;
	struct rlimit was, lim;
	struct cert gen, c;
	char err[1024], sub[300];
	int low, rc[3];

	snprintf(sub, sizeof(sub), "%s/fdset", dir);
	CHECK(mkdir(sub, 0700) == 0);
	CHECK(cert_generate(at("fdset/k"), &gen, err, sizeof(err)) == 0);
	CHECK(unlink(at("fdset/k_secret")) == 0);
	CHECK(getrlimit(RLIMIT_NOFILE, &was) == 0);
	low = lowest_free_fd();
	lim = was;
	lim.rlim_cur = (rlim_t)low;		/* none free: open fails */
	CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
	rc[0] = cert_load(at("fdset/k"), 0, &c, err, sizeof(err));
	lim.rlim_cur = (rlim_t)low + 1;		/* one: the dup of stdout */
	CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
	rc[1] = cert_load(at("fdset/k"), 0, &c, err, sizeof(err));
	rc[2] = cert_dir_load(sub, &set, NULL, NULL, err, sizeof(err));
	CHECK(setrlimit(RLIMIT_NOFILE, &was) == 0);
	CHECK(rc[0] == -2);
	CHECK(rc[1] == -2);
	CHECK(rc[2] == -1 && set.n == 0);
	snprintf(sub, sizeof(sub), "%s: Too many open files", at("fdset/k"));
	CHECK_STR(err, sub);
	snprintf(sub, sizeof(sub), "%s/fdset", dir);
	CHECK(cert_dir_load(sub, &set, NULL, NULL, err, sizeof(err)) == 0 &&
	    set.n == 1);
	cert_set_free(&set);
}

/*
 * czmq's ZPL reader prints a syntax error on stdout with the rest of the
 * line, here a secret key: the error gives the line and the reason, and
 * nothing reaches stdout.
 */
static void
test_syntax_error_kept_off_stdout(void)
{
	char err[1024], out[256];
	struct cert c;
	int saved, fd;
	ssize_t n;

	write_file("tab", "metadata\ncurve\n\tsecret-key = \"NOTFORLOGS\"\n");
	snprintf(out, sizeof(out), "%s/stdout", dir);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0 && dup2(fd, STDOUT_FILENO) >= 0);
	CHECK(cert_load(at("tab"), 1, &c, err, sizeof(err)) == -1);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = pread(fd, out, sizeof(out), 0);
	close(fd);
	CHECK(n == 0);
	snprintf(out, sizeof(out), "%s:3: not a certificate (czmq's ZPL "
	    "text: \"metadata\" and \"curve\" sections): invalid syntax",
	    at("tab"));
	CHECK_STR(err, out);
}

static void
test_mismatched_pair(void)
{
	char pub1[41], sec1[41], pub2[41], sec2[41], text[256];
	struct cert c;
	char err[1024];

	CHECK(bus_curve_keypair(pub1, sec1) == 0);
	CHECK(bus_curve_keypair(pub2, sec2) == 0);
	snprintf(text, sizeof(text), "curve\n    public-key = \"%s\"\n"
	    "    secret-key = \"%s\"\n", pub1, sec2);
	write_file("mixed_secret", text);
	CHECK(cert_load(at("mixed_secret"), 1, &c, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "its public-key is not that of its secret-key");
}

static void
test_dir(void)
{
	struct cert a, b;
	struct cert_set set;
	char err[1024];

	CHECK(mkdir(at("clients"), 0700) == 0);
	CHECK(cert_generate(at("clients/a"), &a, err, sizeof(err)) == 0);
	CHECK(cert_generate(at("clients/b"), &b, err, sizeof(err)) == 0);
	write_file("clients/.hidden", "not read");
	CHECK(mkdir(at("clients/sub"), 0700) == 0);
	write_file("clients/junk", "no certificate\n");
	CHECK(cert_dir_load(at("clients"), &set, NULL, NULL, err,
	    sizeof(err)) == 0);
	CHECK(set.n == 2);	/* a, b; not their _secret files, not junk */
	CHECK(cert_set_has(&set, a.public_key));
	CHECK(cert_set_has(&set, b.public_key));
	CHECK(!cert_set_has(&set, a.secret_key));
	cert_set_free(&set);
	CHECK(set.n == 0);
	CHECK(cert_dir_load(at("noclients"), &set, NULL, NULL, err,
	    sizeof(err)) == -1);
	CHECK_CONTAINS(err, "noclients: No such file or directory");
}

static void
test_addresses(void)
{
	struct cfg_curve c = { 0 };

	CHECK(cfg_curve_allows(&c, "192.0.2.1"));	/* no nets: any */
	c.nets[0] = (struct cfg_net){ .family = AF_INET, .addr = { 10 },
	    .bits = 8 };
	c.nets[1] = (struct cfg_net){ .family = AF_INET, .addr = { 192, 168, 1, 0 },
	    .bits = 25 };
	c.nnets = 2;
	CHECK(cfg_curve_allows(&c, "10.255.0.1"));
	CHECK(!cfg_curve_allows(&c, "11.0.0.1"));
	CHECK(cfg_curve_allows(&c, "192.168.1.127"));
	CHECK(!cfg_curve_allows(&c, "192.168.1.128"));
	CHECK(!cfg_curve_allows(&c, "::1"));
	CHECK(!cfg_curve_allows(&c, "not an address"));
}

int
main(void)
{
	char cmd[64];

	if (mkdtemp(dir) == NULL)
		return 2;
	test_generate_and_load();
	test_bad_files();
	test_syntax_error_kept_off_stdout();
	test_out_of_descriptors();
	test_stdin_stdout_closed();
	test_mismatched_pair();
	test_dir();
	test_addresses();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 2;
	UNIT_END("test_cert");
}
