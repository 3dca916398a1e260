"""make demo (issue 13): its first screen is the demo, not the build's
commands; it shows the handler table it uses; it never reads a daemon's log
before the file exists."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO, build_dir

# a compiler, archiver or linker command line as make echoes it
BUILD_CMD_RE = re.compile(r"^\s*(cc|gcc|clang|ar|rm -f)\s|\s-c -o\s|\s-o \S+"
                          r"/(event-router|event-sub|fire-event)\s")


class MakeDemo(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="er-demo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def make_demo(self, *args):
        """make demo on a copy of the build with one object missing (make
        compiles it, archives the library and links the three programs
        again); returns (build dir, exit status, output)."""
        build = os.path.join(self.tmp, "build")
        shutil.copytree(build_dir(), build, symlinks=True,
                        ignore=shutil.ignore_patterns("tests", "build.log"))
        os.remove(os.path.join(build, "obj", "core", "match.o"))
        argv = ["make", "-C", REPO, "--no-print-directory",
                "BUILD=%s" % build, "demo"] + list(args)
        if os.environ.get("ER_SANITIZE"):
            argv.append("SANITIZE=1")
        env = dict(os.environ)
        for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
            env.pop(k, None)    # not the jobserver of a make check around us
        cp = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env,
                            timeout=600)
        return build, cp.returncode, cp.stdout

    def test_make_demo(self):
        build, rc, out = self.make_demo()
        self.assertEqual(rc, 0, out)
        lines = out.splitlines()

        # the build: one line, its commands in the log
        self.assertEqual(lines[0], "building into %s/ (log in %s/build.log)..."
                         % (build, build), out)
        self.assertRegex(lines[1], r"^Event Reactor demo in /\S+$", out)
        self.assertEqual([l for l in lines if BUILD_CMD_RE.search(l)], [],
                         out)
        with open(os.path.join(build, "build.log")) as f:
            self.assertIn(" -c -o %s/obj/core/match.o src/core/match.c"
                          % build,
                          f.read())

        # no error from reading a log before it exists
        self.assertNotIn("No such file", out)
        self.assertNotIn("grep:", out)

        # the handler table, as a JSON text under its heading
        head = [i for i, l in enumerate(lines)
                if re.match(r"^== the handler table \(/\S+/event-handlers"
                            r"\.json\) ==$", l)]
        self.assertEqual(len(head), 1, out)
        end = lines.index("== starting event-router and event-sub ==")
        table = json.loads("\n".join(lines[head[0] + 1:end]))
        self.assertEqual(list(table), ["alertmanager:alert.*",
                                       "openstack:compute.instance.*",
                                       "github:push", "*"])
        self.assertLess(head[0], end)
        # as root the demo names root as the daemons' user: they refuse to
        # start as root otherwise (test_users)
        as_root = ('  as root: config.json says "user": "root" (without it, '
                   'or the event-reactor user of make install, they refuse '
                   'to start as root)')
        self.assertEqual(lines[end + 1] == as_root, os.geteuid() == 0, out)
        self.assertEqual(lines[-1], "demo: OK", out)

    def test_no_log_read_before_it_exists(self):
        # the race was lost in about one run in three: four runs
        for i in range(4):
            cp = subprocess.run([os.path.join(REPO, "scripts", "demo"),
                                 build_dir()], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                timeout=120)
            self.assertEqual(cp.returncode, 0, cp.stdout)
            self.assertNotIn("No such file", cp.stdout)
            self.assertNotIn("grep:", cp.stdout)

    def test_a_failed_build_shows_its_log(self):
        # a compiler that fails without a word: what make echoed is all
        build, rc, out = self.make_demo("CC=false")
        self.assertNotEqual(rc, 0, out)
        lines = out.splitlines()
        self.assertEqual(lines[0], "building into %s/ (log in %s/build.log)..."
                         % (build, build), out)
        # the first object make tried (which one depends on make's -j)
        self.assertRegex(out, r"(?m)^false .* -c -o %s/obj/(\w+/\w+)\.o "
                         r"src/\1\.c$" % re.escape(build))
        self.assertIn("make demo: the build failed (log above, in "
                      "%s/build.log)" % build, out)
        self.assertNotIn("Event Reactor demo in", out)


if __name__ == "__main__":
    unittest.main()
