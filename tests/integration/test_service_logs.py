"""Where the daemons log with -D (issue 13): syslog when something listens
on /dev/log, else logging.dir/NAME.log; said at start and by the init.d
script's status.

The host's /dev/log is left alone.  A daemon that must see no syslog runs
as is when nothing listens on the host's /dev/log, else (as do the tests
that need a /dev/log of their own) in a private mount namespace
(unshare(1), as root) whose /dev is a tmpfs with the few devices a daemon
opens and, when the test asks, the test's own socket as /dev/log.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest

from harness import (REPO, binary, build_dir, fire, wait_until, write_json,
                     LOG_RE)
from test_service import (ServiceCase, fixed_config, free_ports, pid_alive,
                          run)

EX_CANTCREAT = 73

# sh -c script: STAGE SOCKET ARGV...: a /dev of our own, then exec ARGV
PRIVATE_DEV = r'''
set -e
stage=$1 sock=$2
shift 2
mount -t tmpfs -o mode=755 tmpfs "$stage"
for n in null zero full random urandom; do
    : >"$stage/$n"
    mount --bind "/dev/$n" "$stage/$n"
done
mkdir -m 1777 "$stage/shm"
if [ -n "$sock" ]; then
    : >"$stage/log"
    mount --bind "$sock" "$stage/log"
fi
mount --move "$stage" /dev
exec "$@"
'''


def syslog_listens():
    """What the daemons ask: does a socket connect to /dev/log?"""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_UNIX, kind)
        s.settimeout(5)
        try:
            s.connect("/dev/log")
            return True
        except OSError:
            pass
        finally:
            s.close()
    return False


class FakeSyslog:
    """A datagram socket at path, read by a thread (a full queue would
    block the daemons' syslog(3) calls): .lines, .wait(pattern)."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.lines.append(data.decode("utf-8", "replace"))
                self.cond.notify_all()

    def wait(self, pattern, timeout=10):
        rx = re.compile(pattern)
        with self.cond:
            if not self.cond.wait_for(
                    lambda: any(rx.search(l) for l in self.lines), timeout):
                raise AssertionError("no syslog message matching %r in %d s;"
                                     " got %r" % (pattern, timeout,
                                                  self.lines))

    def close(self):
        self.stopped = True
        self.thread.join(5)
        self.sock.close()


_private_dev_why = None


def private_dev_why():
    """'' when a process can have a /dev of its own here, else why not
    (unshare's or mount's words: a chroot whose / is no mount point, or
    not root)."""
    global _private_dev_why
    if _private_dev_why is None:
        d = tempfile.mkdtemp(prefix="er-dev-")
        try:
            cp = subprocess.run(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 PRIVATE_DEV, "sh", d, "", "test", "-c", "/dev/null"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            _private_dev_why = "" if cp.returncode == 0 else (
                cp.stdout.decode("utf-8", "replace").strip() or
                "unshare exited %d" % cp.returncode)
        except (OSError, subprocess.TimeoutExpired) as e:
            _private_dev_why = "unshare: %s" % e
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return _private_dev_why


class LogTest(ServiceCase):
    prefix = "er-log-"

    def private_dev(self, argv, sock=""):
        """argv in a mount namespace with a /dev of its own; /dev/log is
        sock bound there, or absent when sock is ""."""
        why = private_dev_why()
        if why:
            self.skipTest("cannot give a process a /dev of its own here: "
                          + why)
        stage = self.path("dev-stage")
        os.makedirs(stage, exist_ok=True)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                PRIVATE_DEV, "sh", stage, sock] + list(argv)

    def without_syslog(self, argv):
        """argv where nothing listens on /dev/log."""
        if not syslog_listens():
            return list(argv)
        return self.private_dev(argv)

    def config(self):
        """A config.json with fixed free ports, logging.dir = tmp/logs;
        returns (path, rep port)."""
        pull, rep, pub = free_ports(3)
        cfg = fixed_config(self.tmp, pull, rep, pub)
        cfg["logging"] = {"dir": self.path("logs")}
        return write_json(self.path("config.json"), cfg), rep, pub

    def read(self, path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    def wait_line(self, path, pattern, what):
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: os.path.exists(path) and
                          rx.search(self.read(path)), 10, what)

    # the router, -D ----------------------------------------------------
    def test_no_syslog_logs_to_the_file(self):
        cfg, rep, _ = self.config()
        log = self.path("logs", "event-router.log")
        pidfile = self.path("router.pid")
        cp = run(self.without_syslog([binary("event-router"), "-D", "-p",
                                      pidfile, "-c", cfg]))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stderr, "event-router: nothing listens on "
                         "/dev/log: logging to %s\n" % log)
        pid = int(self.read(pidfile))
        self.pids.append(pid)
        self.assertEqual(os.stat(self.path("logs")).st_mode & 0o777, 0o750)
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o640)
        lines = self.read(log).splitlines()
        m = [LOG_RE.match(l) for l in lines[:2]]
        self.assertTrue(all(m), lines)
        self.assertEqual((m[0].group("prog"), m[0].group("pid"),
                          m[0].group("level"), m[0].group("msg")),
                         ("event-router", str(pid), "INFO",
                          "logging to %s: nothing listens on /dev/log" % log))
        # the start line: -D returned once it was logged
        self.assertRegex(self.read(log), r"(?m) INFO ready pull=tcp://"
                         r"127\.0\.0\.1:\d+ rep=tcp://127\.0\.0\.1:%d " % rep)
        fe = fire(["-u", "tcp://127.0.0.1:%d" % rep, "-e", "log.file",
                   "-t", "3000"])
        self.assertEqual(fe.returncode, 0, fe.stderr)
        # logrotate's copytruncate: appended to, the next line lands at 0
        os.truncate(log, 0)
        os.kill(pid, signal.SIGTERM)
        self.wait_line(log, r" INFO stopped: accepted 1, ",
                       "the stopped line in %s" % log)
        wait_until(lambda: not pid_alive(pid), 10, "router to exit")
        self.assertRegex(self.read(log), r"^\d{4}-\d\d-\d\dT[^\0]*\Z")

    def test_log_file_that_cannot_be_opened_fails_the_start(self):
        cfg, _, _ = self.config()
        with open(self.path("logs"), "w"):
            pass                # a file where the directory should be
        for name in ("event-router", "event-sub"):
            with self.subTest(daemon=name):
                pidfile = self.path(name + ".pid")
                cp = run(self.without_syslog([binary(name), "-D", "-p",
                                              pidfile, "-c", cfg]))
                self.assertEqual(cp.returncode, EX_CANTCREAT, cp.stderr)
                m = LOG_RE.match(cp.stderr.splitlines()[-1])
                self.assertIsNotNone(m, cp.stderr)
                self.assertEqual((m.group("prog"), m.group("level"),
                                  m.group("msg")), (
                    name, "ERROR", "nothing listens on /dev/log and the log "
                    "file %s cannot be opened: Not a directory; set "
                    "logging.dir to a writable directory, or start a syslog "
                    "daemon" % self.path("logs", name + ".log")))
                self.assertFalse(os.path.exists(pidfile))

    def test_start_failures_said_by_the_starting_process(self):
        # -D: the reason the starting process prints for the daemon is
        # escaped as a log line is (it quotes a path from config.json)
        cfg, _, _ = self.config()
        with open(cfg) as f:
            text = json.load(f)
        text["store"] = {"type": "sqlite", "path": self.path("s.db")}
        # (two levels missing: one would be created)
        text["subscriber"] = {"journal": "/nonexistent\x1b[31m\n2026-12-07T"
                              "00:00:00.000Z event-sub[1] ERROR forged/d/j"}
        write_json(cfg, text)
        handlers = write_json(self.path("h.json"),
                              {"*": [{"driver": "shell", "handler": "true"}]})
        cp = run(self.without_syslog([binary("event-sub"), "-D", "-p",
                                      self.path("sub.pid"), "-c", cfg, "-e",
                                      handlers]))
        self.assertEqual(cp.returncode, 78, cp.stderr)
        self.assertEqual(cp.stderr.splitlines()[-1],
                         r"journal /nonexistent\x1b[31m\x0a2026-12-07T00:00:"
                         r"00.000Z event-sub[1] ERROR forged/d/j: No such file "
                         r"or directory (its directory /nonexistent\x1b[31m"
                         r"\x0a2026-12-07T00:00:00.000Z event-sub[1] ERROR "
                         r"forged/d could not be created: No such file or "
                         r"directory)")
        # a journal longer than SQLite takes: the reason first (the path
        # may be cut), not SQLite's "unable to open database file"
        deep = self.path("a" * 250, "b" * 250)
        os.makedirs(deep)
        text["subscriber"]["journal"] = os.path.join(deep, "j")
        write_json(cfg, text)
        cp = run(self.without_syslog([binary("event-sub"), "-D", "-p",
                                      self.path("sub.pid"), "-c", cfg, "-e",
                                      handlers]))
        self.assertEqual(cp.returncode, 78, cp.stderr)
        self.assertEqual(cp.stderr.splitlines()[-1],
                         'journal: the path is %d bytes, longer than SQLite '
                         'takes (504: its 512, less 8 for "-journal"): %s'
                         % (len(deep) + 2, os.path.join(deep, "j")))
        # and it leaves no empty journal behind (the lock was taken on a
        # file it created before the path was refused)
        self.assertEqual(os.listdir(deep), [])

    def test_foreground_syslog_without_syslog_or_file_stays_on_stderr(self):
        cfg, rep, _ = self.config()
        with open(self.path("logs"), "w"):
            pass
        proc = subprocess.Popen(
            self.without_syslog([binary("event-router"), "--syslog", "-c",
                                 cfg]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.path("stderr"), "wb"), start_new_session=True)
        self.pids.append(proc.pid)
        try:
            self.wait_line(self.path("stderr"), r" INFO ready pull=",
                           "the ready line on standard error")
            first = self.read(self.path("stderr")).splitlines()[0]
            self.assertEqual(first, "event-router: nothing listens on "
                             "/dev/log and %s: Not a directory: logging to "
                             "standard error"
                             % self.path("logs", "event-router.log"))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)

    def test_a_socket_nobody_listens_on_is_no_syslog(self):
        cfg, _, _ = self.config()
        with open(cfg) as f:
            text = json.load(f)
        text["logging"]["dir"] = "logs"     # relative: from the start's cwd
        write_json(cfg, text)
        sock = self.path("stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(sock)
        s.close()               # the socket file stays, with nobody on it
        log = self.path("logs", "event-router.log")
        pidfile = self.path("router.pid")
        cp = subprocess.run(
            self.private_dev([binary("event-router"), "-D", "-p", pidfile,
                              "-c", cfg], sock),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=30, cwd=self.tmp)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.pids.append(int(self.read(pidfile)))
        self.assertEqual(cp.stderr, "event-router: nothing listens on "
                         "/dev/log: logging to %s\n" % log)
        self.assertRegex(self.read(log), r"(?m) INFO ready pull=")

    def test_syslog_that_listens_gets_the_logs(self):
        cfg, _, _ = self.config()
        syslog = FakeSyslog(self.path("syslog.sock"))
        self.addCleanup(syslog.close)
        pidfile = self.path("router.pid")
        cp = run(self.private_dev([binary("event-router"), "-D", "-p",
                                   pidfile, "-c", cfg], syslog.path))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        pid = int(self.read(pidfile))
        self.pids.append(pid)
        self.assertEqual(cp.stderr, "event-router: logging to syslog "
                         "(facility daemon)\n")
        # <30>: facility daemon (3), level info (6)
        syslog.wait(r"^<30>.* event-router\[%d\]: ready pull=" % pid)
        self.assertFalse(os.path.exists(self.path("logs")))

    # init.d ------------------------------------------------------------
    def initd(self, wrap=None):
        confdir = self.path("etc")
        os.makedirs(os.path.join(confdir, "event-handlers"), exist_ok=True)
        cfg, rep, pub = self.config()
        self.rep = rep
        shutil.copy(cfg, os.path.join(confdir, "config.json"))
        # a handler whose printed lines event-sub logs
        with open(os.path.join(confdir, "event-handlers", "say.py"),
                  "w") as f:
            f.write("def it(event):\n"
                    "    print('a\\rb\\x1b[2J' + 'y' * 5000)\n")
        write_json(os.path.join(confdir, "event-handlers.json"),
                   {"*": [{"driver": "shell", "handler": "true"}],
                    "log.say": [{"driver": "pyfunc", "handler": "say.it"}]})
        env = {"SBINDIR": build_dir(), "CONFDIR": confdir,
               "RUNDIR": self.path("run"), "STOP_TIMEOUT": "10"}
        script = os.path.join(REPO, "init.d", "event-reactor")

        def action(name):
            argv = ["sh", script, name]
            if name == "start" and wrap is not None:
                argv = wrap(argv)
            return run(argv, env=env)
        return action

    def started(self, initd):
        cp = initd("start")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        pids = {}
        for name in ("event-router", "event-sub"):
            pids[name] = int(self.read(self.path("run", name + ".pid")))
            self.pids.append(pids[name])
        self.addCleanup(initd, "stop")
        return cp, pids

    def test_initd_without_syslog_logs_in_files(self):
        initd = self.initd(self.without_syslog)
        cp, pids = self.started(initd)
        logs = {n: self.path("logs", n + ".log") for n in pids}
        for name, log in logs.items():
            self.assertIn("%s: nothing listens on /dev/log: logging to %s\n"
                          % (name, log), cp.stderr)
        self.assertRegex(self.read(logs["event-router"]),
                         r"(?m) INFO ready pull=")
        # -D returns before the subscription is live at the router
        self.wait_line(logs["event-sub"], r" INFO ready subscribed to tcp://",
                       "event-sub's ready line in %s" % logs["event-sub"])
        cp = initd("status")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertEqual(cp.stdout.splitlines(), [
            "%s: running (pid %d), logs in %s" % (n, pids[n], logs[n])
            for n in ("event-router", "event-sub")])

    def test_initd_with_syslog_says_syslog(self):
        syslog = FakeSyslog(self.path("syslog.sock"))
        self.addCleanup(syslog.close)
        initd = self.initd(lambda argv: self.private_dev(argv, syslog.path))
        cp, pids = self.started(initd)
        for name in pids:
            self.assertIn("%s: logging to syslog (facility daemon)\n" % name,
                          cp.stderr)
        syslog.wait(r"^<30>.* event-router\[%d\]: ready pull="
                    % pids["event-router"])
        syslog.wait(r"^<30>.* event-sub\[%d\]: ready subscribed to "
                    % pids["event-sub"])
        # a handler's line: its control characters as \xNN, cut to 4096
        # bytes with "..."
        fe = fire(["-u", "tcp://127.0.0.1:%d" % self.rep, "-e", "log.say",
                   "-t", "3000"])
        self.assertEqual(fe.returncode, 0, fe.stderr)
        syslog.wait(r"^<30>.* event-sub\[%d\]: pyfunc say\.it: "
                    r"a\\x0db\\x1b\[2Jyyy+\.\.\.$" % pids["event-sub"])
        said = [l for l in syslog.lines if "pyfunc say.it" in l]
        self.assertEqual(len(said), 1, said)
        msg = said[0].split("]: ", 1)[1]
        self.assertEqual(len(msg), 4095)     # 4092 bytes, then "..."
        cp = initd("status")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertEqual(cp.stdout.splitlines(), [
            "%s: running (pid %d), logs to syslog (facility daemon)"
            % (n, pids[n]) for n in ("event-router", "event-sub")])
        self.assertFalse(os.path.exists(self.path("logs")))


if __name__ == "__main__":
    unittest.main()
