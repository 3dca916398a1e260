#!/usr/bin/python3
"""Run the Event Reactor integration tests.

    ER_BUILD_DIR=build /usr/bin/python3 tests/integration/run.py [-k PATTERN]... [-v] [-f]

Discovers tests/integration/test_*.py, runs them, and prints as its last line

    integration: N passed, N failed            (or ..., N skipped)

Exits 1 if any test failed or errored, 0 otherwise.  ``-k`` works like
unittest's: a substring (or fnmatch pattern) of the test's dotted name; it may
be given more than once.
"""

import argparse
import faulthandler
import os
import sys
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("-k", action="append", dest="patterns", default=[],
                    metavar="PATTERN", help="only run tests matching PATTERN")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-f", "--failfast", action="store_true")
    args = ap.parse_args()

    ensure_interpreter()
    sys.path.insert(0, HERE)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else "*%s*" % p
                                   for p in args.patterns]
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
    line = "integration: %d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    sys.stderr.flush()
    print(line)
    sys.exit(1 if failed or not result.wasSuccessful() or
             result.testsRun == 0 else 0)


if __name__ == "__main__":
    main()
