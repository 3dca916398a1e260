"""make fuzz's runner, scripts/run-fuzz (tests/README.rst, "Fuzzing"), with
a real libFuzzer harness built here by clang: a finding fails the run,
names the harness and leaves the input in BUILD/fuzz-crashes/; a run
without one passes and prints libFuzzer's executions; a harness that
takes too long on one input is a finding too."""

import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RUN_FUZZ = os.path.join(REPO, "scripts", "run-fuzz")

# aborts on every input when DEMO_CRASH names it (fuzz_NAME is NAME), spins
# when DEMO_HANG is set
HARNESS = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int crash;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *me = strrchr((*argv)[0], '/'), *c = getenv("DEMO_CRASH");

	(void)argc;
	me = me != NULL ? me + 1 : (*argv)[0];
	crash = c != NULL && strncmp(me, "fuzz_", 5) == 0 &&
	    strcmp(me + 5, c) == 0;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	if (crash && size > 0)
		abort();
	if (getenv("DEMO_HANG") != NULL && size > 0)
		for (;;)
			sleep(1);
	return 0;
}
"""


class RunFuzz(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("clang") is None:
            raise unittest.SkipTest("clang is missing (scripts/install-deps "
                                    "installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="er-test-fuzz-")
        src = os.path.join(cls.tmp, "demo.c")
        with open(src, "w") as f:
            f.write(HARNESS)
        os.makedirs(os.path.join(cls.tmp, "build", "fuzz"))
        subprocess.run(["clang", "-fsanitize=fuzzer,address", "-o",
                        os.path.join(cls.tmp, "build", "fuzz", "fuzz_demo"),
                        src], check=True, timeout=120)
        # a second harness, the same program under another name
        shutil.copy(os.path.join(cls.tmp, "build", "fuzz", "fuzz_demo"),
                    os.path.join(cls.tmp, "build", "fuzz", "fuzz_other"))
        for name in ("demo", "other"):
            corpus = os.path.join(cls.tmp, "tests", "fuzz", "corpus", name)
            os.makedirs(corpus)
            with open(os.path.join(corpus, "seed"), "wb") as f:
                f.write(b"the seed")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        shutil.rmtree(os.path.join(self.tmp, "build", "fuzz-crashes"),
                      ignore_errors=True)

    def run_fuzz(self, seconds, names=("demo",), **env):
        e = dict(os.environ)
        for k in ("DEMO_CRASH", "DEMO_HANG", "ASAN_OPTIONS", "LSAN_OPTIONS",
                  "UBSAN_OPTIONS"):
            e.pop(k, None)
        e.update(env)
        r = subprocess.run([RUN_FUZZ, "build", str(seconds)] + list(names),
                           cwd=self.tmp, env=e, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        return r.returncode, r.stdout.decode(errors="replace")

    def crashes(self):
        d = os.path.join(self.tmp, "build", "fuzz-crashes")
        return {n: open(os.path.join(d, n), "rb").read()
                for n in os.listdir(d)}

    def test_a_finding_fails_the_run_and_keeps_the_input(self):
        rc, out = self.run_fuzz(5, DEMO_CRASH="demo")
        self.assertEqual(rc, 1, out)
        self.assertIn("run-fuzz: demo failed (exit ", out)
        self.assertIn("run-fuzz: failed: demo (inputs in "
                      "build/fuzz-crashes/)", out)
        found = self.crashes()
        self.assertEqual(len(found), 1, found)
        (name, data), = found.items()
        self.assertTrue(name.startswith("demo-crash-"), name)
        self.assertEqual(data, b"the seed")

    def test_a_run_without_a_finding_passes(self):
        rc, out = self.run_fuzz(2)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"(?m)^#\d+\s+DONE ")
        self.assertRegex(out, r"(?m)^stat::number_of_executed_units: +\d+$")
        self.assertIn("run-fuzz: every harness ran 2 s without a finding",
                      out)
        self.assertEqual(self.crashes(), {})

    def test_harnesses_side_by_side_report_in_order(self):
        rc, out = self.run_fuzz(2, names=("other", "demo"),
                                DEMO_CRASH="demo", FUZZ_JOBS="2")
        self.assertEqual(rc, 1, out)
        # the summary names each harness in the order given, the finding
        # only against the one that crashed
        self.assertRegex(out, r"(?s)\n== other\n#\d+\s+DONE .*"
                         r"\n== demo\n.*run-fuzz: demo failed \(exit ")
        self.assertIn("run-fuzz: failed: demo (inputs in "
                      "build/fuzz-crashes/)", out)
        self.assertNotIn("other failed", out)
        self.assertEqual([n.startswith("demo-crash-")
                          for n in self.crashes()], [True])

    def test_a_bad_job_count_is_refused(self):
        rc, out = self.run_fuzz(2, FUZZ_JOBS="two")
        self.assertEqual(rc, 64, out)
        self.assertEqual(out, "run-fuzz: FUZZ_JOBS must be a positive "
                         "integer, not 'two'\n")

    def test_an_input_over_the_time_limit_is_a_finding(self):
        rc, out = self.run_fuzz(60, DEMO_HANG="1")
        self.assertEqual(rc, 1, out)
        found = self.crashes()
        self.assertEqual([n.startswith("demo-timeout-") for n in found],
                         [True], found)


if __name__ == "__main__":
    unittest.main()
