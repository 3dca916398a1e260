"""event-sub handler runs (issue 3): timeouts kill the whole process group,
output is capped, background grandchildren do not hold a run (nor
outlive it: test_contain.py), exec failures
and oversized events are recorded as errors, runs are concurrent up to
subscriber.max_concurrency and queued beyond it (with backpressure), the
environment, cwd and user options reach the handler, SIGHUP reloads the
handler table and SIGTERM drains within subscriber.shutdown_grace.

Every test starts its own event-router and event-sub (the subscriber
settings differ from test to test) and checks stored results rows, files
written by the handlers and the processes in /proc.
"""

import hashlib
import json
import os
import pwd
import re
import signal
import subprocess
import time
import unittest

import harness as h

EX_CONFIG = 78     # sysexits.h: a configuration error

KILLED_AT_SHUTDOWN = ("killed at shutdown: still running after "
                      "subscriber.shutdown_grace")
MARKER_RE = re.compile(r"\n\[event-reactor: output truncated, (\d+) bytes "
                       r"dropped\]\n")
OUTPUT_CAP = 65536
MAX_ARG_STRLEN = 131072

# A handler that records what it got: argv, stdin (length, sha256, where
# fd 0 points), the raw environment entries and the working directory.
PROBE = r'''#!/usr/bin/python3
import hashlib, json, os, sys
out = sys.argv[1]
try:
    stdin_target = os.readlink("/proc/self/fd/0")
except OSError as e:
    stdin_target = "error: %s" % e
data = b"" if stdin_target == "/dev/null" else sys.stdin.buffer.read()
with open("/proc/self/environ", "rb") as f:
    environ = [e.decode("utf-8", "surrogateescape")
               for e in f.read().split(b"\0") if e]
rec = {
    "argv": [os.fsdecode(a) for a in sys.argv[1:]],
    "argv_lens": [len(os.fsencode(a)) for a in sys.argv[1:]],
    "stdin_target": stdin_target,
    "stdin_len": len(data),
    "stdin_sha256": hashlib.sha256(data).hexdigest(),
    "environ": environ,
    "cwd": os.getcwd(),
    "pid": os.getpid(),
    "uid": os.getuid(),
}
tmp = out + ".tmp.%d" % os.getpid()
with open(tmp, "w") as f:
    json.dump(rec, f)
os.rename(tmp, out)
'''


def env_entries(environ, name):
    return [e[len(name) + 1:] for e in environ if e.startswith(name + "=")]


class HandlerTestCase(unittest.TestCase, h.TempDirMixin):
    """A router per test; start_sub() starts an event-sub with the given
    handler table and subscriber settings."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.daemons = []
        self.socks = []
        self.tracked = []       # (pid, starttime) to kill at cleanup
        self.addCleanup(self._cleanup)
        self.router = h.Router(self.tmp, h.make_config(self.tmp))
        self.daemons.append(self.router)
        self.router.wait_ready()
        self.store = self.router.store_path
        self.probe = self.script("probe", PROBE)

    def _cleanup(self):
        for s in self.socks:
            s.close(0)
        errors = h.stop_all(self.daemons)
        for pid, start in self.tracked:
            st = h.proc_stat(pid)
            if st is not None and st[2] == start and st[0] not in "ZX":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if errors:
            raise h.HarnessError("\n".join(errors))

    # helpers ---------------------------------------------------------

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def script(self, name, text, mode=0o755):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def write_handlers(self, handlers, name="event-handlers.json"):
        p = self.path(name)
        if isinstance(handlers, str):
            with open(p, "w", encoding="utf-8") as f:
                f.write(handlers)
        else:
            h.write_json(p, handlers)
        return p

    def start_sub(self, handlers, subscriber=None, env=None, dash_u=True):
        """Start event-sub (ready) on handlers (dict or file text) with
        config.json's subscriber section = uri + shutdown_grace 3 +
        subscriber; dash_u: the uri given with -u as well."""
        self.handlers_path = self.write_handlers(handlers)
        cfg = dict(self.router.config)
        sub = {"uri": self.router.sub_uri, "framing": "topic",
               "shutdown_grace": 3}
        sub.update(subscriber or {})
        cfg["subscriber"] = sub
        cfg_path = h.write_json(self.path("sub-config.json"), cfg)
        s = h.Sub(self.tmp, cfg_path, self.handlers_path,
                  self.router.sub_uri if dash_u else None, env=env)
        self.daemons.append(s)
        s.wait_ready()
        self.sub = s
        return s

    def req(self):
        if not hasattr(self, "_req"):
            self._req = h.zsock(h.zmq.REQ, self.router.rep)
            self.socks.append(self._req)
        return self._req

    def fire(self, event_type, payload=None, namespace=None, raw=None):
        """Fire one event through REP; return (published bytes, dict)."""
        if raw is None:
            ev = {"event_type": event_type}
            if namespace is not None:
                ev["namespace"] = namespace
            if payload is not None:
                ev["payload"] = payload
            raw = json.dumps(ev)
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        reply = h.request(self.req(), raw)
        obj = json.loads(reply)
        self.assertNotIn("error", obj, reply[:300])
        return reply, obj

    def rows(self, event_id, count, timeout=h.WAIT_TIMEOUT):
        return h.wait_results(self.store, event_id, count, timeout)

    def row_by_handler(self, rows, handler):
        got = [r for r in rows if r["handler"] == handler]
        self.assertEqual(len(got), 1, (handler, rows))
        return got[0]

    def track(self, pid):
        """Remember pid (alive now) for cleanup; return its starttime."""
        st = h.proc_stat(pid)
        self.assertIsNotNone(st, "process %d is not there" % pid)
        self.tracked.append((pid, st[2]))
        return st[2]

    def assertGone(self, pid, start, parent, timeout=2.0, what="process"):
        try:
            h.wait_until(lambda: h.process_gone(pid, start, parent),
                         timeout, "%s %d to be gone" % (what, pid))
        except h.HarnessError:
            self.fail("%s %d still there %.1fs later: /proc/%d/stat = %r "
                      "(state, ppid, starttime); event-sub pid %s"
                      % (what, pid, timeout, pid, h.proc_stat(pid), parent))

    def read_json(self, p, timeout=h.WAIT_TIMEOUT):
        h.wait_until(lambda: os.path.exists(p), timeout, "file %s" % p)
        with open(p) as f:
            return json.load(f)

    def log_matches(self, daemon, pattern, level=None):
        rx = re.compile(pattern)
        out = []
        for line in daemon.log_lines():
            m = h.LOG_RE.match(line)
            if m and rx.search(m.group("msg")) and \
                    (level is None or m.group("level") == level):
                out.append(m)
        return out

    def wait_log_count(self, daemon, pattern, count, level=None,
                       timeout=h.WAIT_TIMEOUT):
        try:
            return h.wait_until(
                lambda: (lambda ms: ms if len(ms) >= count else None)(
                    self.log_matches(daemon, pattern, level)),
                timeout, "%d %s log lines matching %r"
                % (count, level or "any", pattern))
        except h.HarnessError as e:
            raise h.HarnessError("%s; %s log:\n%s"
                                 % (e, daemon.name, daemon.log_text()))

    def wait_exit(self, daemon, timeout):
        try:
            rc = daemon.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail("%s did not exit within %.1fs; log:\n%s"
                      % (daemon.name, timeout, daemon.log_text()))
        daemon.returncode = rc
        daemon._close_files()
        return rc

    def shell(self, script, tag):
        """A handler string: sh -c SCRIPT TAG (the event JSON becomes $1)."""
        self.assertNotIn("'", script)
        return "sh -c '%s' %s" % (script, tag)


# --------------------------------------------------------------------------

class Timeouts(HandlerTestCase):

    def test_timeout_kills_handler_and_grandchild(self):
        d = self.tmp
        handler = self.shell(
            "echo $$ > %s/t.pid; sleep 600 & echo $! > %s/t.gpid; wait"
            % (d, d), "timeout-1")
        self.start_sub({"to.basic": [{"driver": "shell", "handler": handler,
                                      "timeout": 1}]})
        _, ev = self.fire("to.basic")
        pid = h.read_pid_file(self.path("t.pid"))
        gpid = h.read_pid_file(self.path("t.gpid"))
        pstart, gstart = self.track(pid), self.track(gpid)
        self.assertNotEqual(pid, gpid)
        # both run in the handler's own process group
        self.assertEqual(os.getpgid(gpid), pid)
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["status"], "timeout", r)
        self.assertGreaterEqual(r["duration_ms"], 900, r)
        self.assertLess(r["duration_ms"], 5000, r)
        self.assertEqual(r["signal"], signal.SIGTERM, r)
        self.assertIsNone(r["exit_code"], r)
        self.assertGone(pid, pstart, self.sub.proc.pid, what="handler")
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="grandchild")
        self.assertEqual(h.ps_children(self.sub.proc.pid), [])
        self.assertTrue(self.sub.alive())
        # event-sub(8): the SIGTERM at INFO; the run, not ok, at WARNING
        self.sub.wait_log(r"INFO handler \S+:\d+:\d+ \(%s\) for event %s "
                          r"timed out after 1 s: SIGTERM to process group "
                          r"%d$" % (re.escape(handler), ev["id"], pid))
        self.sub.wait_log(r"WARNING handler \S+:\d+:\d+ \(%s\) for event "
                          r"%s: timeout: " % (re.escape(handler), ev["id"]))

    def test_grandchild_ignoring_sigterm_killed_when_child_exits(self):
        d = self.tmp
        handler = self.shell(
            "echo $$ > %s/t.pid; (trap \"\" TERM; exec sleep 600) & "
            "echo $! > %s/t.gpid; wait" % (d, d), "timeout-2")
        self.start_sub({"to.ign": [{"driver": "shell", "handler": handler,
                                    "timeout": 1}]})
        _, ev = self.fire("to.ign")
        pid = h.read_pid_file(self.path("t.pid"))
        gpid = h.read_pid_file(self.path("t.gpid"))
        pstart, gstart = self.track(pid), self.track(gpid)
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["signal"], signal.SIGTERM, r)
        # the direct child died of SIGTERM: the rest of the group gets
        # SIGKILL right then, not 5 s later
        self.assertLess(r["duration_ms"], 3000, r)
        self.assertGone(pid, pstart, self.sub.proc.pid, what="handler")
        self.assertGone(gpid, gstart, self.sub.proc.pid,
                        what="grandchild ignoring SIGTERM")

    def test_sigkill_when_sigterm_ignored(self):
        d = self.tmp
        handler = self.shell(
            "trap \"\" TERM; echo $$ > %s/t.pid; sleep 600 & "
            "echo $! > %s/t.gpid; wait" % (d, d), "timeout-3")
        self.start_sub({"to.kill": [{"driver": "shell", "handler": handler,
                                     "timeout": 0.5}]})
        _, ev = self.fire("to.kill")
        pid = h.read_pid_file(self.path("t.pid"))
        gpid = h.read_pid_file(self.path("t.gpid"))
        pstart, gstart = self.track(pid), self.track(gpid)
        r = self.rows(ev["id"], 1, timeout=15)[0]
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["signal"], signal.SIGKILL, r)
        self.assertIsNone(r["exit_code"], r)
        # SIGTERM at 0.5 s, SIGKILL 5 s later
        self.assertGreaterEqual(r["duration_ms"], 5000, r)
        self.assertLess(r["duration_ms"], 8000, r)
        self.assertGone(pid, pstart, self.sub.proc.pid, what="handler")
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="grandchild")


class Output(HandlerTestCase):

    def test_output_that_is_not_text_is_kept_as_bytes(self):
        # event-reactor(7), the results table: stdout and stderr are TEXT
        # when UTF-8 without NUL, else a BLOB of the bytes as written (a
        # TEXT of other bytes breaks readers that decode it)
        bin_h = self.script("binary-out.sh", "#!/bin/sh\n"
                            "printf '\\377\\376\\000abc\\000'\n"
                            "printf 'ok\\n' >&2\n")
        self.start_sub({"bin.out": [{"driver": "shell", "handler": bin_h}]})
        _, ev = self.fire("bin.out")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        self.assertEqual(h.db_query(
            self.store, "SELECT typeof(stdout), stdout, typeof(stderr), "
            "stderr FROM results WHERE event_id = ?", (ev["id"],)),
            [(b"blob", b"\xff\xfe\x00abc\x00", b"text", b"ok\n")])

    def test_10mb_stdout_is_capped(self):
        size = 10 * 1024 * 1024
        out_h = self.shell("yes | head -c %d" % size, "big-out")
        err_h = self.shell("yes e | head -c %d >&2; echo out" % size,
                           "big-err")
        self.start_sub({"big.out": [{"driver": "shell", "handler": out_h}],
                        "big.err": [{"driver": "shell", "handler": err_h}]})
        pid = self.sub.proc.pid
        hwm0 = h.proc_status_kb(pid, "VmHWM")
        _, ev1 = self.fire("big.out")
        _, ev2 = self.fire("big.err")
        r1 = self.rows(ev1["id"], 1, timeout=30)[0]
        r2 = self.rows(ev2["id"], 1, timeout=30)[0]
        marker = ("\n[event-reactor: output truncated, %d bytes dropped]\n"
                  % (size - OUTPUT_CAP))
        for r, stream, unit in ((r1, "stdout", "y\n"), (r2, "stderr", "e\n")):
            with self.subTest(stream=stream):
                self.assertEqual(r["status"], "ok", {k: v for k, v in
                                 r.items() if k not in ("stdout", "stderr")})
                self.assertEqual(r["exit_code"], 0)
                text = r[stream]
                self.assertEqual(len(text), OUTPUT_CAP + len(marker))
                self.assertEqual(text[:OUTPUT_CAP],
                                 unit * (OUTPUT_CAP // 2))
                self.assertEqual(text[OUTPUT_CAP:], marker)
        self.assertIn(r1["stderr"], (None, ""))
        self.assertEqual(r2["stdout"], "out\n")
        hwm1 = h.proc_status_kb(pid, "VmHWM")
        rss = h.proc_status_kb(pid, "VmRSS")
        self.assertLess(hwm1 - hwm0, 8 * 1024,
                        "event-sub peak RSS grew from %d kB to %d kB"
                        % (hwm0, hwm1))
        self.assertLess(rss, 64 * 1024, "event-sub RSS %d kB" % rss)

    def test_background_grandchild_holding_stdout(self):
        # the background sleep holds the run's stdout pipe: the run still
        # ends when its process does; and the sleep does not outlive the
        # run (containment, test_contain.py), so it is not tracked here
        d = self.tmp
        handler = self.shell("sleep 600 & echo $! > %s/bg.pid; echo started"
                             % d, "bg")
        self.start_sub({"bg.go": [{"driver": "shell", "handler": handler,
                                   "timeout": 30}],
                        "after.bg": [{"driver": "shell",
                                      "handler": "/bin/true after"}]})
        t0 = time.monotonic()
        _, ev = self.fire("bg.go")
        gpid = h.read_pid_file(self.path("bg.pid"))
        r = self.rows(ev["id"], 1, timeout=10)[0]
        elapsed = time.monotonic() - t0
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["exit_code"], 0, r)
        self.assertEqual(r["stdout"], "started\n", r)
        self.assertLess(r["duration_ms"], 5000, r)
        self.assertLess(elapsed, 10)
        self.wait_log_count(self.sub, r"^run of handler \S+ \(sh -c .* bg\) "
                            r"for event %s: killed 1 process it left behind$"
                            % ev["id"], 1, level="WARNING")
        h.wait_until(lambda: h.proc_stat(gpid) is None or
                     h.proc_stat(gpid)[1] != self.sub.proc.pid,
                     what="background sleep %d killed and reaped" % gpid)
        # event-sub is not stuck: the next event runs
        _, ev2 = self.fire("after.bg")
        self.assertEqual(self.rows(ev2["id"], 1)[0]["status"], "ok")


class ExecFailures(HandlerTestCase):

    def test_missing_command_next_to_working_one(self):
        notexec = self.script("not-executable.sh", "#!/bin/sh\necho hi\n",
                              mode=0o644)
        missing = "/nonexistent/er-itest-missing arg"
        onpath = "er-itest-no-such-program --flag"
        working = "%s %s" % (h.RECORD_ARGV, self.path("ok.jsonl"))
        noexec = "%s arg" % notexec
        self.start_sub({"mix.go": [
            {"driver": "shell", "handler": missing},
            {"driver": "shell", "handler": working},
            {"driver": "shell", "handler": onpath},
            {"driver": "shell", "handler": noexec}]})
        reply, ev = self.fire("mix.go")
        rows = self.rows(ev["id"], 4)
        self.assertEqual(len(rows), 4, rows)
        ok = self.row_by_handler(rows, working)
        self.assertEqual(ok["status"], "ok", ok)
        self.assertIsNone(ok["error"], ok)
        rec = h.wait_record(self.path("ok.jsonl"), ev["id"])
        self.assertEqual(rec["argv_bytes"][-1], reply)
        for handler, prog, why in (
                (missing, "/nonexistent/er-itest-missing",
                 "No such file or directory"),
                (onpath, "er-itest-no-such-program",
                 "No such file or directory"),
                (noexec, notexec, "Permission denied")):
            with self.subTest(handler=handler):
                r = self.row_by_handler(rows, handler)
                self.assertEqual(r["status"], "error", r)
                self.assertEqual(r["error"],
                                 "cannot run %s: %s" % (prog, why), r)
                self.assertIsNone(r["exit_code"], r)
                self.assertEqual(r["driver"], "shell")
        # the children that failed to exec were reaped too
        self.assertEqual(h.ps_children(self.sub.proc.pid), [])
        self.assertTrue(self.sub.alive())


class SearchPath(HandlerTestCase):

    def test_programs_are_looked_for_on_event_subs_path(self):
        # event-sub(8), PATH: a program without a slash is looked for on
        # event-sub's PATH, /usr/local/bin:/usr/bin:/bin when it is unset;
        # a PATH in a handler's "env" does not change the search
        bindir = self.path("bin")
        os.mkdir(bindir)
        self.script(os.path.join("bin", "er-it-on-path"), "#!/bin/sh\n")
        table = {"p.*": [
            {"driver": "shell", "handler": "er-it-on-path"},
            {"driver": "shell", "handler": "true"},
            {"driver": "shell", "handler": "er-it-on-path x",
             "env": {"PATH": bindir}}]}
        for path, mine in ((bindir + ":/usr/bin:/bin", "ok"),
                           (None, "error")):
            with self.subTest(path=path):
                self.start_sub(table, env={"PATH": path})
                _, ev = self.fire("p.run")
                rows = self.rows(ev["id"], 3)
                got = {r["handler"]: (r["status"], r["error"]) for r in rows}
                self.assertEqual(got["true"], ("ok", None), rows)
                self.assertEqual(got["er-it-on-path"][0], mine, rows)
                self.assertEqual(got["er-it-on-path x"][0], mine, rows)
                if mine == "error":
                    self.assertEqual(got["er-it-on-path"][1],
                                     "cannot run er-it-on-path: No such "
                                     "file or directory", rows)
                self.assertEqual(self.sub.stop(), 0)


class BigEvents(HandlerTestCase):

    def setUp(self):
        super().setUp()
        p = self.probe
        self.h_argv = "%s %s" % (h.RECORD_ARGV, self.path("argv.jsonl"))
        self.h_stdin = "%s %s" % (p, self.path("stdin.json"))
        self.h_both = "%s %s" % (p, self.path("both.json"))
        self.start_sub({
            "big.*": [{"driver": "shell", "handler": self.h_argv}],
            "big.stdin": [{"driver": "shell", "handler": self.h_stdin,
                           "input": "stdin"}],
            "big.both": [{"driver": "shell", "handler": self.h_both,
                          "input": "both"}],
            "small.both": [{"driver": "shell", "handler": self.h_both,
                            "input": "both"}],
            "small.argv": [{"driver": "shell", "handler": self.h_stdin}],
            "edge.argv": [{"driver": "shell", "handler": self.h_argv}],
        })

    def big_payload(self):
        return "x" * (200 * 1024)

    def test_200kb_event_input_argv_is_error(self):
        reply, ev = self.fire("big.argv", self.big_payload())
        self.assertGreater(len(reply), MAX_ARG_STRLEN)
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["handler"], self.h_argv)
        self.assertEqual(r["status"], "error", r)
        self.assertIn("MAX_ARG_STRLEN", r["error"] or "", r)
        self.assertIn("input", r["error"] or "", r)
        self.assertIsNone(r["exit_code"], r)
        self.assertEqual(h.read_records(self.path("argv.jsonl")), [])

    def test_200kb_event_input_stdin(self):
        reply, ev = self.fire("big.stdin", self.big_payload())
        rows = self.rows(ev["id"], 2)   # big.* (argv, error) and big.stdin
        r = self.row_by_handler(rows, self.h_stdin)
        self.assertEqual(r["status"], "ok", r)
        got = self.read_json(self.path("stdin.json"))
        self.assertEqual(got["stdin_len"], len(reply))
        self.assertEqual(got["stdin_sha256"],
                         hashlib.sha256(reply).hexdigest())
        # input stdin: the event is not appended to argv
        self.assertEqual(got["argv"], [self.path("stdin.json")])
        self.assertEqual(self.row_by_handler(rows, self.h_argv)["status"],
                         "error")

    def test_200kb_event_input_both_goes_on_stdin_only(self):
        reply, ev = self.fire("big.both", self.big_payload())
        rows = self.rows(ev["id"], 2)
        r = self.row_by_handler(rows, self.h_both)
        self.assertEqual(r["status"], "ok", r)
        got = self.read_json(self.path("both.json"))
        self.assertEqual(got["stdin_len"], len(reply))
        self.assertEqual(got["stdin_sha256"],
                         hashlib.sha256(reply).hexdigest())
        self.assertEqual(got["argv"], [self.path("both.json")])

    def test_small_event_input_both_and_argv(self):
        reply, ev = self.fire("small.both", {"k": "v"})
        self.rows(ev["id"], 1)
        got = self.read_json(self.path("both.json"))
        self.assertEqual(got["argv"], [self.path("both.json"),
                                       reply.decode("utf-8")])
        self.assertEqual(got["stdin_sha256"],
                         hashlib.sha256(reply).hexdigest())
        # input argv (default): stdin is /dev/null
        reply, ev = self.fire("small.argv", {"k": "v"})
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        got = self.read_json(self.path("stdin.json"))
        self.assertEqual(got["stdin_target"], "/dev/null")
        self.assertEqual(got["argv"][-1], reply.decode("utf-8"))

    def test_big_event_on_stdin_of_a_handler_not_reading_it(self):
        """The handler exits (or sleeps, then exits) without reading its
        stdin while 200 KB wait in the pipe: the run ends ok."""
        quick = self.shell("exit 0", "quick")
        slow = self.shell("sleep 0.5; echo slept", "slow")
        self.stop_and_restart({"unread.*": [
            {"driver": "shell", "handler": quick, "input": "stdin"},
            {"driver": "shell", "handler": slow, "input": "stdin"}]})
        _, ev = self.fire("unread.go", self.big_payload())
        rows = self.rows(ev["id"], 2)
        for r in rows:
            self.assertEqual(r["status"], "ok", r)
        self.assertEqual(self.row_by_handler(rows, slow)["stdout"],
                         "slept\n")
        # and event-sub goes on
        reply, ev = self.fire("unread.again", {"x": 1})
        self.assertEqual(len(self.rows(ev["id"], 2)), 2)
        self.assertTrue(self.sub.alive())

    def stop_and_restart(self, handlers):
        self.sub.stop()
        self.start_sub(handlers)

    def test_argv_limit_boundary(self):
        """131071 bytes of JSON (+ NUL = MAX_ARG_STRLEN) still go on argv;
        131072 do not."""
        def raw(n):
            return ('{"event_type":"edge.argv","namespace":"local",'
                    '"timestamp":1700000000.5,"payload":"%s"}' % ("y" * n))
        probe_n = 1000
        reply, _ = self.fire(None, raw=raw(probe_n).replace("edge.argv",
                                                            "edge.prob"))
        # "edge.prob" (no handler) and "edge.argv" have the same length
        overhead = len(reply) - probe_n
        for total, status in ((MAX_ARG_STRLEN - 1, "ok"),
                              (MAX_ARG_STRLEN, "error")):
            with self.subTest(json_len=total):
                reply, ev = self.fire(None, raw=raw(total - overhead))
                self.assertEqual(len(reply), total)
                r = self.rows(ev["id"], 1)[0]
                self.assertEqual(r["status"], status, r)
                if status == "ok":
                    rec = h.wait_record(self.path("argv.jsonl"), ev["id"])
                    self.assertEqual(rec["argv_bytes"][-1], reply)
                else:
                    self.assertIn("MAX_ARG_STRLEN", r["error"] or "", r)


class ManyRuns(HandlerTestCase):

    # Rows come as fast as the machine runs 1000 processes: a second here,
    # far longer on a busy machine.  So the wait is bounded by progress, not
    # by a rate: STALL seconds without a new row means a run or its row is
    # lost (and LIMIT bounds the whole).
    STALL = 30
    LIMIT = 600

    def test_1000_events_no_zombie(self):
        handler = "/bin/true many-itest"
        self.start_sub({"many.*": [{"driver": "shell", "handler": handler}]})
        ids = set()
        for i in range(1000):
            _, ev = self.fire("many.%d" % (i % 7))
            ids.add(ev["id"])
        sql = ("SELECT event_id, status FROM results WHERE handler = ?")
        rows = []
        start = last = time.monotonic()
        while len(rows) < 1000:
            now = time.monotonic()
            if now - last > self.STALL or now - start > self.LIMIT:
                self.fail_lost(len(rows), now - last, now - start)
            time.sleep(h.POLL)
            got = h.db_query(self.store, sql, (handler,))
            if got is not None and len(got) > len(rows):
                rows, last = got, time.monotonic()
        self.assertEqual(len(rows), 1000)
        self.assertEqual({r[0].decode() for r in rows}, ids)
        self.assertEqual({r[1] for r in rows}, {b"ok"})
        kids = h.ps_children(self.sub.proc.pid)
        self.assertEqual([k for k in kids if k[1].startswith("Z")], [],
                         "zombie children of event-sub")
        self.assertEqual(kids, [], "event-sub has children left")
        self.assertTrue(self.sub.alive())

    def fail_lost(self, n, idle, total):
        """Fail with what event-sub says it did (its stop line counts the
        events it got, the runs and the rows it stored or failed to)."""
        self.sub.stop(expect_code=None)
        said = [line for line in self.sub.log_lines()
                if re.search(r" (ERROR|WARNING) |\bstopped: ", line)]
        self.fail("%d of 1000 results rows after %.0f s, none new for "
                  "%.0f s; event-sub:\n%s" % (n, total, idle,
                                             "\n".join(said[-20:])))


class Concurrency(HandlerTestCase):

    def test_8_handlers_run_at_once(self):
        handlers = [{"driver": "shell",
                     "handler": self.shell("sleep 1", "par-%d" % i)}
                    for i in range(8)]
        self.start_sub({"par.go": handlers}, {"max_concurrency": 8})
        _, ev = self.fire("par.go")
        rows = self.rows(ev["id"], 8, timeout=15)
        self.assertEqual(len(rows), 8)
        self.assertEqual({r["handler"] for r in rows},
                         {x["handler"] for x in handlers})
        for r in rows:
            self.assertEqual(r["status"], "ok", r)
            self.assertGreaterEqual(r["duration_ms"], 900, r)
        first = min(r["started_at"] for r in rows)
        last = max(r["started_at"] + r["duration_ms"] / 1000.0 for r in rows)
        self.assertLess(last - first, 4.0,
                        "8 runs of 1 s took %.2f s from the first start to "
                        "the last end" % (last - first))


class Environment(HandlerTestCase):

    def test_er_env_and_cwd(self):
        work = self.path("work dir")
        os.mkdir(work)
        out = self.path("env.json")
        handler = "%s %s" % (self.probe, out)
        self.start_sub(
            {"ns-env:env.*": [{"driver": "shell", "handler": handler,
                               "env": {"ER_IT_VAR": "hello world = 1",
                                       "ER_IT_EMPTY": "",
                                       "ER_IT_UTF8": "上海"},
                               "cwd": work}]},
            env={"ER_IT_OUTER": "inherited",
                 "ER_EVENT_TYPE": "from-the-daemon",
                 "ER_EVENT_ID": "from-the-daemon"})
        reply, ev = self.fire("env.check", {"a": 1}, namespace="ns-env")
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["status"], "ok", r)
        got = self.read_json(out)
        env = got["environ"]
        self.assertEqual(env_entries(env, "ER_EVENT_ID"), [ev["id"]])
        self.assertEqual(env_entries(env, "ER_EVENT_TYPE"), ["env.check"])
        self.assertEqual(env_entries(env, "ER_NAMESPACE"), ["ns-env"])
        self.assertEqual(env_entries(env, "ER_IT_VAR"), ["hello world = 1"])
        self.assertEqual(env_entries(env, "ER_IT_EMPTY"), [""])
        self.assertEqual(env_entries(env, "ER_IT_UTF8"), ["上海"])
        self.assertEqual(env_entries(env, "ER_IT_OUTER"), ["inherited"])
        # what event-sub set for itself at its start (store.h,
        # store_process_init) is not passed on
        self.assertEqual(env_entries(env, "MONGOC_DISABLE_SHM"), [])
        self.assertEqual(got["cwd"], os.path.realpath(work))
        self.assertEqual(got["argv"][-1], reply.decode("utf-8"))
        self.assertEqual(got["stdin_target"], "/dev/null")

    def test_env_overrides_inherited_variable(self):
        """A variable set in "env" wins over the same name in event-sub's
        own environment: the handler sees exactly one entry, the configured
        value."""
        out = self.path("env.json")
        handler = "%s %s" % (self.probe, out)
        self.start_sub(
            {"env.*": [{"driver": "shell", "handler": handler,
                        "env": {"ER_IT_SHADOW": "from-config",
                                "LANG": "C.UTF-8"}}]},
            env={"ER_IT_SHADOW": "from-the-daemon", "LANG": "fr_FR.UTF-8"})
        _, ev = self.fire("env.shadow")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        env = self.read_json(out)["environ"]
        self.assertEqual(env_entries(env, "ER_IT_SHADOW"), ["from-config"],
                         "handler environment entries for ER_IT_SHADOW "
                         "(getenv() returns the first)")
        self.assertEqual(env_entries(env, "LANG"), ["C.UTF-8"])


class Reload(HandlerTestCase):

    def test_reload_with_broken_file_keeps_handlers(self):
        old = "%s %s" % (h.RECORD_ARGV, self.path("old.jsonl"))
        new = "%s %s" % (h.RECORD_ARGV, self.path("new.jsonl"))
        self.start_sub({"reload.*": [{"driver": "shell", "handler": old}]})
        _, ev = self.fire("reload.before")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        broken = [
            # syntax error on line 3
            ('{\n  "reload.*": [\n    {"driver": "shell", "handler": "%s"},,'
             '\n  ]\n}\n' % new, 3),
            # valid JSON, unknown driver on line 4
            ('{\n  "reload.*": [\n    {"driver": "shell", "handler": "%s"},'
             '\n    {"driver": "bogus", "handler": "x"}\n  ]\n}\n' % new, 4),
        ]
        for n, (text, line) in enumerate(broken, 1):
            with self.subTest(broken=n):
                self.write_handlers(text)
                self.sub.proc.send_signal(signal.SIGHUP)
                ms = self.wait_log_count(
                    self.sub, r"^reload failed, keeping the handlers in use",
                    n, level="ERROR")
                msg = ms[n - 1].group("msg")
                self.assertRegex(msg, re.escape(self.handlers_path) +
                                 r":%d:\d+: " % line)
                self.assertEqual(self.log_matches(self.sub, r"^reloaded:"),
                                 [])
                _, ev = self.fire("reload.after%d" % n)
                rows = self.rows(ev["id"], 1)
                self.assertEqual(rows[0]["handler"], old)
                self.assertEqual(rows[0]["status"], "ok")
                h.wait_record(self.path("old.jsonl"), ev["id"])
        # a FIFO in its place: read as empty, not waited on for good
        os.unlink(self.handlers_path)
        os.mkfifo(self.handlers_path)
        self.sub.proc.send_signal(signal.SIGHUP)
        ms = self.wait_log_count(
            self.sub, r"^reload failed, keeping the handlers in use",
            len(broken) + 1, level="ERROR")
        self.assertEqual(ms[-1].group("msg"), "reload failed, keeping the "
                         "handlers in use: %s:1:1: '[' or '{' expected near "
                         "end of file" % self.handlers_path)
        _, ev = self.fire("reload.after.fifo")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        self.assertTrue(self.sub.alive())
        self.sub.stop()
        self.assertFalse(os.path.exists(self.path("new.jsonl")))

    def test_reload_through_rename(self):
        old = "%s %s" % (h.RECORD_ARGV, self.path("old.jsonl"))
        new = "%s %s" % (h.RECORD_ARGV, self.path("new.jsonl"))
        hold = self.shell("echo $$ > %s/hold.pid; sleep 1.5; echo finished"
                          % self.tmp, "hold")
        self.start_sub({"swap.*": [{"driver": "shell", "handler": old}],
                        "hold.*": [{"driver": "shell", "handler": hold}]})
        _, ev0 = self.fire("swap.before")
        self.assertEqual(self.rows(ev0["id"], 1)[0]["handler"], old)
        # a run in flight across the reload
        _, evh = self.fire("hold.go")
        self.track(h.read_pid_file(self.path("hold.pid")))
        tmpfile = self.path("event-handlers.json.new")
        h.write_json(tmpfile, {"swap.*": [{"driver": "shell",
                                           "handler": new}]})
        os.rename(tmpfile, self.handlers_path)
        self.sub.proc.send_signal(signal.SIGHUP)
        self.wait_log_count(self.sub, r"^reloaded: 1 pattern, 1 handler",
                            1, level="INFO")
        self.assertIsNone(h.result_rows(self.store, evh["id"]) or None,
                          "the hold run ended before the reload")
        # hold.* is gone from the table (fired first: events are handled
        # in order, so it has been once swap.after has its row)
        _, ev2 = self.fire("hold.again")
        reply, ev = self.fire("swap.after")
        rows = self.rows(ev["id"], 1)
        self.assertEqual(rows[0]["handler"], new)
        self.assertEqual(rows[0]["status"], "ok")
        rec = h.wait_record(self.path("new.jsonl"), ev["id"])
        self.assertEqual(rec["argv_bytes"][-1], reply)
        # the run in flight finished untouched, under its old handler
        rh = self.rows(evh["id"], 1)[0]
        self.assertEqual(rh["handler"], hold)
        self.assertEqual(rh["status"], "ok", rh)
        self.assertEqual(rh["stdout"], "finished\n", rh)
        self.sub.stop()
        self.assertEqual(len(h.result_rows(self.store, ev["id"])), 1)
        self.assertEqual(h.result_rows(self.store, ev2["id"]), [])
        old_ids = [json.loads(r["argv_bytes"][-1])["id"]
                   for r in h.read_records(self.path("old.jsonl"))]
        self.assertEqual(old_ids, [ev0["id"]])

    def test_reload_to_an_empty_table_warns(self):
        rec = "%s %s" % (h.RECORD_ARGV, self.path("rec.jsonl"))
        self.start_sub({"empty.*": [{"driver": "shell", "handler": rec},
                                    {"driver": "shell", "handler": "true"}],
                        "other": [{"driver": "shell", "handler": rec}]})
        _, ev = self.fire("empty.before")
        self.assertEqual(len(self.rows(ev["id"], 2)), 2)
        self.write_handlers({})
        self.sub.proc.send_signal(signal.SIGHUP)
        ms = self.wait_log_count(self.sub, r"^reload: ", 1, level="WARNING")
        self.assertEqual(ms[0].group("msg"),
                         "reload: %s has no handlers; 3 handlers removed, "
                         "no event runs any from now on" % self.handlers_path)
        self.wait_log_count(self.sub, r"^reloaded: 0 patterns, 0 handlers "
                            r"\(before: 2 patterns, 3 handlers\)$", 1,
                            level="INFO")
        _, ev = self.fire("empty.after")
        self.wait_log_count(self.sub, r"^event %s \(local:empty\.after\) "
                            r"matches no handler" % ev["id"], 1,
                            level="DEBUG")
        self.assertEqual(h.result_rows(self.store, ev["id"]), [])
        # empty again: nothing went away this time, no second warning
        self.sub.proc.send_signal(signal.SIGHUP)
        self.wait_log_count(self.sub, r"^reloaded: 0 patterns, 0 handlers "
                            r"\(before: 0 patterns, 0 handlers\)$", 1,
                            level="INFO")
        self.assertEqual(len(self.log_matches(self.sub, r"^reload: ",
                                              level="WARNING")), 1)

    def test_reload_that_shrinks_the_table_gives_both_counts(self):
        self.start_sub({"a.*": [{"driver": "shell", "handler": "true"},
                                {"driver": "shell", "handler": "true 2"}],
                        "b.*": [{"driver": "shell", "handler": "true"}]})
        self.write_handlers({"a.*": [{"driver": "shell", "handler": "true"}]})
        self.sub.proc.send_signal(signal.SIGHUP)
        self.wait_log_count(self.sub, r"^reloaded: 1 pattern, 1 handler "
                            r"\(before: 2 patterns, 3 handlers\)$", 1,
                            level="INFO")
        # not empty: no warning
        self.assertEqual(self.log_matches(self.sub, r"^reload: ",
                                          level="WARNING"), [])


class ReloadSubscriber(HandlerTestCase):

    def test_reload_applies_subscriber_settings(self):
        handlers = [{"driver": "shell",
                     "handler": self.shell("sleep 1", "r-%d" % i)}
                    for i in range(4)]
        self.start_sub({"rs.go": handlers}, {"max_concurrency": 1})
        cfg_path = self.sub.config_path
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["subscriber"]["max_concurrency"] = 4
        h.write_json(cfg_path + ".new", cfg)
        os.rename(cfg_path + ".new", cfg_path)
        self.sub.proc.send_signal(signal.SIGHUP)
        self.wait_log_count(self.sub, r"^reloaded: 1 pattern, 4 handlers",
                            1, level="INFO")
        _, ev = self.fire("rs.go")
        rows = self.rows(ev["id"], 4, timeout=15)
        first = min(r["started_at"] for r in rows)
        last = max(r["started_at"] + r["duration_ms"] / 1000.0 for r in rows)
        self.assertLess(last - first, 2.5,
                        "4 runs of 1 s with max_concurrency reloaded to 4 "
                        "took %.2f s" % (last - first))

    def reload_with(self, key, value, section="subscriber"):
        """Set SECTION.KEY (None: KEY) to value in event-sub's config,
        then SIGHUP."""
        cfg_path = self.sub.config_path
        with open(cfg_path) as f:
            cfg = json.load(f)
        (cfg[section] if section else cfg)[key] = value
        h.write_json(cfg_path + ".new", cfg)
        os.rename(cfg_path + ".new", cfg_path)
        self.sub.proc.send_signal(signal.SIGHUP)

    def test_reload_of_restart_only_settings_warns_they_wait(self):
        self.start_sub({"cu.*": [{"driver": "shell", "handler": "true"}]},
                       {"catch_up": {"max_age": 3600},
                        "metrics": {"listen": "127.0.0.1:0"}})
        warning = "reload: %s changed; applied when event-sub is restarted"
        # nothing event-sub takes changed (the router's "metrics" did, but
        # event-sub has subscriber.metrics): no warning
        self.reload_with("metrics", {"listen": "127.0.0.1:0"}, None)
        self.wait_log_count(self.sub, r"^reloaded: ", 1, level="INFO")
        self.assertEqual(self.log_matches(self.sub, r"^reload: ",
                                          level="WARNING"), [])
        self.reload_with("catch_up", {"max_age": 60, "max_count": 5})
        ms = self.wait_log_count(self.sub, r"^reload: ", 1, level="WARNING")
        self.assertEqual(ms[0].group("msg"), warning % "subscriber.catch_up")
        self.reload_with("journal", self.path("other.journal"))
        ms = self.wait_log_count(self.sub, r"^reload: ", 2, level="WARNING")
        self.assertEqual(ms[1].group("msg"), warning % (
            "subscriber.journal, subscriber.catch_up"))
        # still the journal it started with
        self.assertFalse(os.path.exists(self.path("other.journal")))
        self.reload_with("python_workers", 7)
        ms = self.wait_log_count(self.sub, r"^reload: ", 3, level="WARNING")
        self.assertEqual(ms[2].group("msg"), warning % (
            "subscriber.journal, subscriber.catch_up, "
            "subscriber.python_workers"))

    def test_reload_names_the_router_metrics_event_sub_takes(self):
        # without subscriber.metrics, event-sub serves on the top-level
        # "metrics": the warning names that one
        self.start_sub({"m.*": [{"driver": "shell", "handler": "true"}]})
        self.reload_with("metrics", {"listen": "127.0.0.1:0"}, None)
        ms = self.wait_log_count(self.sub, r"^reload: ", 1, level="WARNING")
        self.assertEqual(ms[0].group("msg"), "reload: metrics changed; "
                         "applied when event-sub is restarted")

    def test_reload_of_the_uri_warns_it_waits_for_a_restart(self):
        # (with -u, the command line says where, and no reload changes it)
        self.start_sub({"u.*": [{"driver": "shell", "handler": "true"}]},
                       dash_u=False)
        old = self.router.sub_uri
        self.reload_with("uri", "tcp://127.0.0.1:9")
        ms = self.wait_log_count(self.sub, r"^reload: ", 1, level="WARNING")
        self.assertEqual(ms[0].group("msg"), "reload: subscriber.uri changed "
                         "to tcp://127.0.0.1:9; event-sub stays on %s until "
                         "it is restarted" % old)
        # still on the router: an event runs
        _, ev = self.fire("u.still")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")

    def test_catch_up_ranges_are_checked(self):
        hp = self.write_handlers({})
        for cu, where, msg in (
                ('{"max_age": 316224001}', 41,
                 '"max_age" must be an integer from 0 to 316224000'),
                ('{"max_age": -1}', 41,
                 '"max_age" must be an integer from 0 to 316224000'),
                ('{"max_count": 1000000001}', 43,
                 '"max_count" must be an integer from 0 to 1000000000'),
                ('{"max_age": 316224000, "max_count": 0}', None,
                 r"catch-up from .* at most 316224000 s old and among the "
                 r"newest 0 \(subscriber\.catch_up; 0: no bound\)\n"),
                ('{"max_age": 0, "max_count": 1000000000}', None,
                 r"catch-up from .* at most 0 s old and among the newest "
                 r"1000000000 \(")):
            cp = self.path("range.json")
            with open(cp, "w") as f:
                f.write(h.with_user('{"subscriber": {"catch_up": %s}}\n'
                                    % cu))
            out = subprocess.run([h.binary("event-sub"), "-c", cp, "-e", hp,
                                  "--check"], capture_output=True, text=True,
                                 timeout=h.WAIT_TIMEOUT)
            if where is None:
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertRegex(out.stdout, msg)
            else:
                self.assertEqual(out.returncode, EX_CONFIG, out.stderr)
                self.assertIn("%s:1:%d: %s" % (cp, where, msg), out.stderr)

    def test_reload_with_broken_config_keeps_handlers(self):
        old = "%s %s" % (h.RECORD_ARGV, self.path("old.jsonl"))
        new = "%s %s" % (h.RECORD_ARGV, self.path("new.jsonl"))
        self.start_sub({"rc.*": [{"driver": "shell", "handler": old}]})
        self.write_handlers({"rc.*": [{"driver": "shell", "handler": new}]})
        cfg_path = self.sub.config_path
        with open(cfg_path) as f:
            cfg = json.load(f)
        # break the config: max_concurrency 0 is out of range
        cfg["subscriber"]["max_concurrency"] = 0
        h.write_json(cfg_path, cfg)
        with open(cfg_path) as f:
            text = f.read()
        line = [i for i, l in enumerate(text.splitlines(), 1)
                if '"max_concurrency"' in l][0]
        self.sub.proc.send_signal(signal.SIGHUP)
        ms = self.wait_log_count(
            self.sub, r"^reload failed, keeping the handlers in use", 1,
            level="ERROR")
        self.assertRegex(ms[0].group("msg"),
                         re.escape(cfg_path) + r":%d:\d+: " % line)
        _, ev = self.fire("rc.after")
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["handler"], old)
        self.assertEqual(r["status"], "ok")


class FailedRuns(HandlerTestCase):

    def test_runs_not_ok_are_said_ten_in_ten_seconds(self):
        # event-sub(8): a run that does not end ok is a WARNING line, at
        # most 10 every 10 s, then one line counts the rest; every result
        # is stored all the same
        self.start_sub({"fail.*": [{"driver": "shell",
                                    "handler": "/bin/false"}]})
        ids = [self.fire("fail.%d" % i)[1]["id"] for i in range(13)]
        for eid in ids:
            r = self.rows(eid, 1)[0]
            self.assertEqual((r["status"], r["exit_code"]), ("failed", 1), r)
        said = self.log_matches(self.sub, r"^handler \S+:\d+:\d+ \(/bin/"
                                r"false\) for event [0-9a-f]{24}: failed: "
                                r"exit status 1$", level="WARNING")
        self.assertEqual(len(said), 10, self.sub.log_text())
        self.sub.wait_log(r"WARNING 3 lines about handler runs that did not "
                          r"end ok \(their results are stored\) suppressed "
                          r"in the last 10 s$", timeout=h.WAIT_TIMEOUT + 10)


class Shutdown(HandlerTestCase):

    def test_sigterm_with_runs_in_flight(self):
        d = self.tmp
        long_h = self.shell("echo $$ > %s/long.pid; exec sleep 30" % d,
                            "long")
        short_h = self.shell("echo $$ > %s/short.pid; sleep 1; echo done"
                             % d, "short")
        late_h = "%s %s" % (h.RECORD_ARGV, self.path("late.jsonl"))
        grace = 2.5
        self.start_sub({"term.go": [{"driver": "shell", "handler": long_h},
                                    {"driver": "shell", "handler": short_h}],
                        "term.late": [{"driver": "shell",
                                       "handler": late_h}]},
                       {"shutdown_grace": grace})
        _, ev = self.fire("term.go")
        lpid = h.read_pid_file(self.path("long.pid"))
        lstart = self.track(lpid)
        h.read_pid_file(self.path("short.pid"))
        t0 = time.monotonic()
        self.sub.proc.send_signal(signal.SIGTERM)
        self.sub.wait_log(r"\bstopping: no more events taken")
        _, late = self.fire("term.late")
        rc = self.wait_exit(self.sub, grace + 5)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, self.sub.log_text())
        self.assertGreaterEqual(elapsed, grace - 0.2)
        self.assertLess(elapsed, grace + 4)
        rows = h.result_rows(self.store, ev["id"])
        self.assertEqual(len(rows), 2, rows)
        rl = self.row_by_handler(rows, long_h)
        self.assertEqual(rl["status"], "timeout", rl)
        self.assertEqual(rl["error"], KILLED_AT_SHUTDOWN, rl)
        self.assertEqual(rl["signal"], signal.SIGKILL, rl)
        rs = self.row_by_handler(rows, short_h)
        self.assertEqual(rs["status"], "ok", rs)
        self.assertEqual(rs["stdout"], "done\n", rs)
        self.assertIsNone(rs["error"], rs)
        self.assertGone(lpid, lstart, None, what="long handler")
        self.assertTrue(self.sub.find_log(r"WARNING shutdown grace over: "
                                          r"killing 1 runs$"),
                        self.sub.log_text())
        # stopped reading at SIGTERM
        self.assertEqual(h.result_rows(self.store, late["id"]), [])
        self.assertFalse(os.path.exists(self.path("late.jsonl")))

    def test_sigterm_queued_run_never_started(self):
        d = self.tmp
        long_h = self.shell("echo $$ > %s/long.pid; exec sleep 30" % d,
                            "long")
        never_h = "%s %s" % (h.RECORD_ARGV, self.path("never.jsonl"))
        self.start_sub({"q.go": [{"driver": "shell", "handler": long_h},
                                 {"driver": "shell", "handler": never_h}]},
                       {"shutdown_grace": 1, "max_concurrency": 1})
        _, ev = self.fire("q.go")
        lpid = h.read_pid_file(self.path("long.pid"))
        lstart = self.track(lpid)
        t0 = time.monotonic()
        self.sub.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(self.sub, 6)
        self.assertEqual(rc, 0, self.sub.log_text())
        self.assertLess(time.monotonic() - t0, 5)
        rows = h.result_rows(self.store, ev["id"])
        self.assertEqual(len(rows), 2, rows)
        rl = self.row_by_handler(rows, long_h)
        self.assertEqual(rl["status"], "timeout", rl)
        self.assertEqual(rl["error"], KILLED_AT_SHUTDOWN, rl)
        rn = self.row_by_handler(rows, never_h)
        self.assertEqual(rn["status"], "error", rn)
        self.assertTrue((rn["error"] or "").startswith(
            "not started: event-sub stopped"), rn)
        self.assertIsNone(rn["exit_code"], rn)
        self.assertFalse(os.path.exists(self.path("never.jsonl")))
        self.assertGone(lpid, lstart, None, what="long handler")


class Backpressure(HandlerTestCase):

    def test_queue_full(self):
        handler = self.shell("sleep 0.3", "slow")
        self.start_sub({"slow.*": [{"driver": "shell", "handler": handler}]},
                       {"max_concurrency": 1, "queue_size": 2})
        ids = [self.fire("slow.%d" % i)[1]["id"] for i in range(10)]
        self.wait_log_count(self.sub, r"^run queue full \(", 1,
                            level="WARNING")

        def all_rows():
            rows = [r for r in h.result_rows(self.store) if
                    r["handler"] == handler]
            return rows if len(rows) >= 10 else None
        rows = h.wait_until(all_rows, 30, "10 results rows")
        self.assertEqual(len(rows), 10)
        self.assertEqual(sorted(r["event_id"] for r in rows), sorted(ids))
        for r in rows:
            self.assertEqual(r["status"], "ok", r)
        # max_concurrency 1: the runs did not overlap
        rows.sort(key=lambda r: r["started_at"])
        for a, b in zip(rows, rows[1:]):
            self.assertGreaterEqual(
                b["started_at"], a["started_at"] + a["duration_ms"] / 1000.0
                - 0.001, (a, b))
        self.wait_log_count(
            self.sub, r"^run queue below 2 again: reading \S+ after "
            r"\d+(\.\d+)? s", 1, level="WARNING")


class HandlerOptions(HandlerTestCase):

    def test_unknown_handler_option_warning(self):
        out = self.path("opt.jsonl")
        text = ('{\n'
                '  "opt.*": [\n'
                '    {"driver": "shell",\n'
                '     "handler": "%s %s",\n'
                '     "retries": 3}\n'
                '  ]\n'
                '}\n' % (h.RECORD_ARGV, out))
        self.start_sub(text)
        col0 = text.splitlines()[4].index('"retries"') + 1
        ms = self.log_matches(
            self.sub, re.escape(self.handlers_path) +
            r":(\d+):(\d+): .*unknown handler option \"retries\"",
            level="WARNING")
        self.assertEqual(len(ms), 1, self.sub.log_text())
        m = re.search(re.escape(self.handlers_path) + r":(\d+):(\d+)",
                      ms[0].group("msg"))
        self.assertEqual(int(m.group(1)), 5, ms[0].group(0))
        self.assertIn(int(m.group(2)), (col0, col0 + 1), ms[0].group(0))
        # the handler still runs
        reply, ev = self.fire("opt.go")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        self.assertEqual(h.wait_record(out, ev["id"])["argv_bytes"][-1],
                         reply)


class ShellCode(HandlerTestCase):
    """event-sub(8), "Handlers and shells": a shell's -c given the event
    JSON is reported at start, on a reload and by --check."""

    SCRIPT_WARNING = (
        "the event JSON is the script of this shell's -c (it is the last "
        "argument): any event runs any command; give the shell a script, "
        "or run the program without a shell (event-sub(8), \"Handlers and "
        "shells\")")

    @staticmethod
    def param_warning(n):
        return ("the event JSON reaches a shell's -c script as its last "
                "positional parameter (\"$%d\"): use it only in double "
                "quotes, never in eval or an unquoted expansion, or run the "
                "program without a shell (event-sub(8), \"Handlers and "
                "shells\")" % n)

    TABLE = ('{\n'
             ' "shc": [{"driver": "shell", "handler": "sh -c"}],\n'
             ' "bash": [{"driver": "shell", "handler": '
             '"/bin/bash -e -o pipefail -c \'true\'"}],\n'
             ' "env": [{"driver": "shell", "handler": "env -i A=1 dash -xc"}],\n'
             ' "bb": [{"driver": "shell", "handler": '
             '"busybox sh -c \'true\' name x"}],\n'
             ' "quiet": [{"driver": "shell", "handler": "sh -c", '
             '"input": "stdin"},\n'
             '           {"driver": "shell", "handler": "sh deploy.sh"},\n'
             '           {"driver": "shell", "handler": "printf -c"}]\n'
             '}\n')

    def expected(self, path):
        def at(line, word):
            col = self.TABLE.splitlines()[line - 1].index(word) + 1
            return "%s:%d:%d: " % (path, line, col)
        # at each entry's "handler" key
        return [at(2, '"handler"') + self.SCRIPT_WARNING,
                at(3, '"handler"') + self.param_warning(0),
                at(4, '"handler"') + self.SCRIPT_WARNING,
                at(5, '"handler"') + self.param_warning(2)]

    def warnings(self):
        return [m.group("msg") for m in self.log_matches(
            self.sub, r"the event JSON (is the script|reaches)",
            level="WARNING")]

    def test_check_start_and_reload_report_each_shell_c(self):
        path = self.write_handlers(self.TABLE)
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c",
                             self.router.config_path, "-e", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        got = [line.split(" WARNING ", 1)[1] for line in
               cp.stderr.splitlines() if " WARNING " in line]
        self.assertEqual(got, self.expected(path))
        self.start_sub(self.TABLE)
        self.assertEqual(self.warnings(), self.expected(self.handlers_path))
        self.sub.proc.send_signal(signal.SIGHUP)
        self.wait_log_count(self.sub, r"^reloaded: ", 1, level="INFO")
        self.assertEqual(self.warnings(),
                         2 * self.expected(self.handlers_path))

    def test_sh_c_runs_what_the_event_says(self):
        # why the warning exists: "sh -c" makes the event JSON the script
        out = self.path("pwned")
        self.start_sub({"shc": [{"driver": "shell", "handler": "sh -c"}]})
        _, ev = self.fire("shc", payload={"q": "$(id -u > %s)" % out})
        self.rows(ev["id"], 1)
        with open(out) as f:
            self.assertEqual(f.read().strip(), str(os.geteuid()))


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class AsRoot(HandlerTestCase):

    def setUp(self):
        super().setUp()
        # nobody must reach the probe and write its output
        os.chmod(self.tmp, 0o711)
        self.wdir = self.path("w")
        os.mkdir(self.wdir)
        os.chmod(self.wdir, 0o777)

    def test_user_nobody(self):
        pw = pwd.getpwnam("nobody")
        nobody_h = self.shell("id -u > %s/uid; id -g > %s/gid; "
                              "id -G > %s/groups" % ((self.wdir,) * 3),
                              "as-nobody")
        root_h = self.shell("id -u > %s/root-uid" % self.wdir, "as-root")
        probe_h = "%s %s/probe.json" % (self.probe, self.wdir)
        self.start_sub({"who.*": [
            {"driver": "shell", "handler": nobody_h, "user": "nobody"},
            {"driver": "shell", "handler": probe_h, "user": "nobody",
             "cwd": self.wdir},
            {"driver": "shell", "handler": root_h}]})
        ms = self.log_matches(self.sub, r"running as root: 1 shell handler without ",
                              level="WARNING")
        self.assertEqual(len(ms), 1, self.sub.log_text())
        _, ev = self.fire("who.am.i")
        rows = self.rows(ev["id"], 3)
        for r in rows:
            self.assertEqual(r["status"], "ok", r)

        def read(name):
            with open(os.path.join(self.wdir, name)) as f:
                return f.read().strip()
        self.assertEqual(read("uid"), str(pw.pw_uid))
        self.assertEqual(read("uid"), "65534")
        self.assertEqual(read("gid"), str(pw.pw_gid))
        self.assertEqual(sorted(int(g) for g in read("groups").split()),
                         sorted(set(os.getgrouplist("nobody", pw.pw_gid))))
        self.assertEqual(read("root-uid"), "0")
        got = self.read_json(os.path.join(self.wdir, "probe.json"))
        self.assertEqual(got["uid"], pw.pw_uid)
        self.assertEqual(got["cwd"], os.path.realpath(self.wdir))

    def test_no_root_warning_when_every_handler_has_a_user(self):
        self.start_sub({"who.*": [
            {"driver": "shell", "handler": "/bin/true", "user": "nobody"}]})
        self.assertEqual(self.log_matches(self.sub, r"running as root"), [],
                         self.sub.log_text())


if __name__ == "__main__":
    unittest.main()
