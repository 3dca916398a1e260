"""tests/README.rst: run.py takes a test, or a class's set-up, that runs
over ER_TEST_LIMIT seconds for hung: it prints every thread's Python stack
and exits 1.  Checked on a copy of run.py beside tests that hang."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

HUNG = '''
import threading
import unittest

gate = threading.Event()


def helper_waits():
    gate.wait()


class HungTest(unittest.TestCase):
    def test_passes(self):
        pass

    def test_waits_forever(self):
        threading.Thread(target=helper_waits, daemon=True).start()
        gate.wait()


class HungSetUp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        gate.wait()

    def test_never_runs(self):
        pass
'''


class Watchdog(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="er-watchdog-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        shutil.copy(os.path.join(HERE, "run.py"), self.tmp)
        with open(os.path.join(self.tmp, "test_hung.py"), "w") as f:
            f.write(HUNG)

    def run_py(self, pattern):
        # one process (run.py -j's children each have the watchdog of
        # this one, and the parent counts what they did not finish)
        env = dict(os.environ, ER_TEST_LIMIT="2", ER_TEST_JOBS="1")
        return subprocess.run([sys.executable,
                               os.path.join(self.tmp, "run.py"), "-k",
                               pattern], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)

    def test_hung_test_stops_the_run_with_every_stack(self):
        cp = self.run_py("HungTest")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn("Timeout (0:00:02)!", cp.stderr)
        self.assertIn("in test_waits_forever", cp.stderr)
        self.assertIn("in helper_waits", cp.stderr)      # the other thread
        self.assertEqual(cp.stdout, "")     # no count: it did not finish

    def test_hung_class_set_up_stops_the_run(self):
        cp = self.run_py("HungSetUp")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn("Timeout (0:00:02)!", cp.stderr)
        self.assertIn("in setUpClass", cp.stderr)
        self.assertNotIn("test_never_runs", cp.stderr)


if __name__ == "__main__":
    unittest.main()
