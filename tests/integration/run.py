#!/usr/bin/python3
"""Run the Event Reactor integration tests.

    ER_BUILD_DIR=build /usr/bin/python3 tests/integration/run.py [-k PATTERN]... [-v] [-f] [-j N]

Discovers tests/integration/test_*.py, runs them, and prints as its last line

    integration: N passed, N failed            (or ..., N skipped)

Exits 1 if any test failed or errored, 0 otherwise.  ``-k`` works like
unittest's: a substring (or fnmatch pattern) of the test's dotted name; it may
be given more than once.  ``-j N`` (or ER_TEST_JOBS=N) runs N test files at
once, each in a process of its own, and prints each file's output whole
when it ends.
"""

import argparse
import concurrent.futures
import faulthandler
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DEBIAN_PYTHON = "/usr/bin/python3"
# A test (or a class's set-up) that takes longer than this many seconds is
# taken for hung: every thread's Python stack goes to stderr and the run
# exits 1 (faulthandler), so that a wait nobody bounded fails with where it
# waits instead of holding CI until its own limit.
TEST_LIMIT = float(os.environ.get("ER_TEST_LIMIT", "900"))
# how many of the slowest tests the run lists before its closing line
SLOWEST = 15


def ensure_interpreter():
    """The tests need python3-zmq, i.e. Debian's /usr/bin/python3."""
    try:
        import zmq  # noqa: F401  (only checking it is there)
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) \
                and os.access(DEBIAN_PYTHON, os.X_OK) \
                and not os.environ.get("ER_REEXEC"):
            os.environ["ER_REEXEC"] = "1"
            os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
        sys.stderr.write("run.py: cannot import zmq; run with %s and the "
                         "python3-zmq package\n" % DEBIAN_PYTHON)
        print("integration: 0 passed, 1 failed")
        sys.exit(1)


class CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0
        self.sub_failed = set()
        self.durations = []   # (seconds, test id), for the slowest list
        self.started = 0.0

    def watchdog(self):
        """TEST_LIMIT from now (again at each test's start and end)."""
        faulthandler.dump_traceback_later(TEST_LIMIT, exit=True,
                                          file=sys.stderr)

    def startTestRun(self):
        super().startTestRun()
        self.watchdog()

    def stopTestRun(self):
        faulthandler.cancel_dump_traceback_later()
        super().stopTestRun()

    def startTest(self, test):
        self.watchdog()
        sys.stderr.flush()
        self.started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self.durations.append((time.monotonic() - self.started, test.id()))
        self.watchdog()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.sub_failed.add(test.id())


def options():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("-k", action="append", dest="patterns", default=[],
                    metavar="PATTERN", help="only run tests matching PATTERN")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-f", "--failfast", action="store_true")
    ap.add_argument("-j", "--jobs", type=int,
                    default=int(os.environ.get("ER_TEST_JOBS", "1")),
                    help="run this many test files at once (ER_TEST_JOBS)")
    ap.add_argument("--module", help=argparse.SUPPRESS)
    return ap.parse_args()


def run_here(args):
    """Run the tests (of args.module, or all) in this process; print the
    slowest and the closing line; exit 1 on a failure."""
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else "*%s*" % p
                                   for p in args.patterns]
    if args.module:
        suite = loader.loadTestsFromName(args.module)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2 if args.verbose else 1,
                                     failfast=args.failfast,
                                     resultclass=CountingResult,
                                     stream=sys.stderr)
    result = runner.run(suite)

    # a test with failing subtests is counted once, as failed; class-level
    # errors (setUpClass/tearDownClass) count as failures too
    failed_ids = set(result.sub_failed)
    for test, _ in result.failures + result.errors:
        failed_ids.add(test.id() if hasattr(test, "id") else str(test))
    failed = len(failed_ids) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.passed
    # the slowest tests (set-up of a class is not in them), for whoever
    # keeps the suite within CI's time
    for secs, name in sorted(result.durations, reverse=True)[:SLOWEST]:
        sys.stderr.write("slow: %6.1f s %s\n" % (secs, name))
    sys.stderr.flush()
    print(closing(passed, failed, skipped))
    sys.exit(1 if failed or not result.wasSuccessful() or
             (result.testsRun == 0 and not args.module) else 0)


def closing(passed, failed, skipped):
    line = "integration: %d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line


# Test files that take longest (their classes' set-up included), started
# first so that the others fill in beside them; the rest in name order.
LONGEST_FIRST = ["test_catch_up", "test_amqp_fleet", "test_amqp_output",
                 "test_http", "test_pull", "test_pyfunc", "test_store",
                 "test_rabbit", "test_amqp", "test_handlers"]
CLOSING_RE = re.compile(r"^integration: (\d+) passed, (\d+) failed"
                        r"(?:, (\d+) skipped)?$")


def run_module(args, module):
    """Run one test file in a process of its own; (its output, passed,
    failed, skipped, seconds)."""
    argv = [sys.executable, os.path.abspath(__file__), "--module", module]
    for p in args.patterns:
        argv += ["-k", p]
    argv += ["-v"] if args.verbose else []
    argv += ["-f"] if args.failfast else []
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    secs = time.monotonic() - started
    m = None
    for line in text.splitlines():
        m = CLOSING_RE.match(line) or m
    if m is None:
        text += "run.py: %s exited %d without a closing line: 1 failure\n" \
            % (module, rc)
        return text, 0, 1, 0, secs
    failed = int(m.group(2))
    if rc != 0 and failed == 0:
        text += "run.py: %s exited %d: 1 failure\n" % (module, rc)
        failed = 1
    return text, int(m.group(1)), failed, int(m.group(3) or 0), secs


def run_jobs(args):
    """Each test file in a process of its own, args.jobs at once; their
    outputs whole, one after the other as they end; the slowest tests and
    files; the closing line."""
    names = sorted(f[:-3] for f in os.listdir(HERE)
                   if f.startswith("test_") and f.endswith(".py"))
    names = [n for n in LONGEST_FIRST if n in names] + \
        [n for n in names if n not in LONGEST_FIRST]
    passed = failed = skipped = 0
    slow, files = [], []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(run_module, args, n): n for n in names}
        for fut in concurrent.futures.as_completed(futures):
            text, p, f, sk, secs = fut.result()
            passed, failed, skipped = passed + p, failed + f, skipped + sk
            kept = []
            for line in text.splitlines(True):
                if line.startswith("slow: "):
                    slow.append(line)
                elif not CLOSING_RE.match(line.rstrip("\n")):
                    kept.append(line)
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
            files.append((secs, futures[fut]))
            if f and args.failfast:
                for other in futures:
                    other.cancel()
    slow.sort(key=lambda ln: float(ln.split()[1]), reverse=True)
    sys.stderr.write("".join(slow[:SLOWEST]))
    for secs, name in sorted(files, reverse=True)[:SLOWEST]:
        sys.stderr.write("slow file: %6.1f s %s\n" % (secs, name))
    sys.stderr.flush()
    print(closing(passed, failed, skipped))
    sys.exit(1 if failed or passed == 0 else 0)


def main():
    args = options()
    ensure_interpreter()
    sys.path.insert(0, HERE)
    if args.jobs > 1 and not args.module:
        run_jobs(args)
    else:
        run_here(args)


if __name__ == "__main__":
    main()
