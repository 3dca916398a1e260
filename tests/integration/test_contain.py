"""Containment of handler runs (issue 16, "setsid escapes the timeout"):
event-sub is a child subreaper, so what a run leaves behind when its
process exits (a grandchild that called setsid, a double-forked
background process) becomes event-sub's child, and is killed with a
WARNING that names the run; the stop line counts them.  Running handlers
and their processes, and the Python workers, are left alone.

Real binaries: a router, an event-sub, shell handlers that write the pids
of what they start, and /proc.  A handler that leaves something behind
waits for a "go" file before it exits, so that the test can note the
process (pid and start time) before event-sub may kill it.
"""

import json
import os
import re
import signal

import harness as h
from test_handlers import HandlerTestCase

# A process left behind: the handler's child shell starts a grandchild in
# a session of its own (setsid), which writes its pid and sleeps.
SETSID_LEAVER = r'''#!/bin/sh
dir=$1
sh -c 'setsid sh -c "echo \$\$ > $0/$1.gpid; exec sleep 300" & wait' \
    "$dir" "$2" &
wait
'''

# A double fork: a subshell starts "sleep 300" in the background and exits
# at once, so the sleep's parent is gone while the handler still runs;
# then the handler waits for $dir/$2.go and exits 0.
DOUBLE_FORK = r'''#!/bin/sh
dir=$1
( sleep 300 & echo $! > "$dir/$2.gpid" )
while [ ! -e "$dir/$2.go" ]; do sleep 0.05; done
echo done
'''

# Runs until $dir/$2.go exists; its background sleep (in its process
# group) and a double-forked sleep in its group run as long as it does.
KEEPER = r'''#!/bin/sh
dir=$1
echo $$ > "$dir/$2.pid"
sleep 300 &
echo $! > "$dir/$2.bpid"
( sleep 300 & echo $! > "$dir/$2.dpid" )
while [ ! -e "$dir/$2.go" ]; do sleep 0.05; done
kill $! 2>/dev/null
echo kept
'''

PYMOD = r'''import subprocess, time

def ok(event):
    return 'py ok'

def _sleeper(event):
    p = subprocess.Popen(["sleep", "300"], start_new_session=True)
    with open(event["payload"]["pidfile"], "w") as f:
        f.write("%d\n" % p.pid)

def spawn(event):
    _sleeper(event)
    return 'spawned'

def hang(event):
    _sleeper(event)
    time.sleep(300)
'''


class Contain(HandlerTestCase):

    def setUp(self):
        super().setUp()
        self.leaver = self.script("setsid-leaver", SETSID_LEAVER)
        self.fork2 = self.script("double-fork", DOUBLE_FORK)
        self.keeper = self.script("keeper", KEEPER)

    def where(self, handler):
        """FILE:LINE:COLUMN of handler in the handler file (one handler
        object per line, as handlers_text() writes them)."""
        with open(self.handlers_path) as f:
            text = f.read()
        i = text.index('{"driver": "shell", "handler": "%s"' % handler)
        line = text[:i].count("\n") + 1
        return "%s:%d:%d" % (self.handlers_path, line,
                             i - (text.rfind("\n", 0, i) + 1) + 1)

    def handlers_text(self, table):
        """event-handlers.json text with one handler object per line."""
        out = ["{"]
        items = list(table.items())
        for k, (pattern, hs) in enumerate(items):
            out.append('  "%s": [' % pattern)
            for j, hd in enumerate(hs):
                fields = ", ".join('"%s": %s' % (n, json.dumps(v))
                                   for n, v in hd.items())
                out.append("    {%s}%s" % (fields, "," if j < len(hs) - 1
                                           else ""))
            out.append("  ]%s" % ("," if k < len(items) - 1 else ""))
        out.append("}")
        return "\n".join(out) + "\n"

    def left_line(self, handler, event_id, n):
        return ("run of handler %s (%s) for event %s: killed %d %s it left "
                "behind" % (self.where(handler), handler, event_id, n,
                            "process" if n == 1 else "processes"))

    def wait_warning(self, text, count=1):
        return self.wait_log_count(self.sub, "^%s$" % re.escape(text), count,
                                   level="WARNING")

    def touch(self, name):
        open(self.path(name), "w").close()

    # (a) ----------------------------------------------------------------

    def test_setsid_grandchild_killed_after_the_timeout(self):
        handler = "%s %s a" % (self.leaver, self.tmp)
        self.start_sub(self.handlers_text(
            {"c.setsid": [{"driver": "shell", "handler": handler,
                           "timeout": 2}]}))
        _, ev = self.fire("c.setsid")
        gpid = h.read_pid_file(self.path("a.gpid"))
        gstart = self.track(gpid)
        # precondition: it left the handler's session and process group
        self.assertEqual(os.getsid(gpid), gpid)
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["signal"], signal.SIGTERM, r)
        self.wait_warning(self.left_line(handler, ev["id"], 1))
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="setsid'd "
                        "grandchild")
        self.assertEqual(h.ps_children(self.sub.proc.pid), [])
        self.sub.stop()
        self.assertTrue(self.sub.find_log(
            r"INFO stopped: .*, processes left behind by runs killed 1$"),
            self.sub.log_text())

    def test_deadline_sigkill_reaches_setsid_grandchild_of_living_parent(self):
        # the handler and its child ignore SIGTERM, the grandchild left the
        # session: the deadline's SIGKILL reaches all three, the grandchild
        # through /proc while its parent still lives
        script = self.script("stubborn", r'''#!/bin/sh
trap "" TERM
dir=$1
echo $$ > "$dir/s.pid"
sh -c 'trap "" TERM; echo $$ > "$0/s.cpid";
       setsid sh -c "echo \$\$ > $0/s.gpid; exec sleep 300" & wait' "$dir" &
wait
''')
        handler = "%s %s" % (script, self.tmp)
        self.start_sub({"c.stub": [{"driver": "shell", "handler": handler,
                                    "timeout": 0.5}]})
        _, ev = self.fire("c.stub")
        pids = [h.read_pid_file(self.path(n))
                for n in ("s.pid", "s.cpid", "s.gpid")]
        starts = [self.track(p) for p in pids]
        self.assertEqual(os.getsid(pids[2]), pids[2])
        r = self.rows(ev["id"], 1, timeout=15)[0]
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["signal"], signal.SIGKILL, r)
        for pid, start, what in zip(pids, starts, ("handler", "child",
                                                   "setsid'd grandchild")):
            self.assertGone(pid, start, self.sub.proc.pid, what=what)
        # killed by the deadline, not left behind: not counted
        self.sub.stop()
        self.assertTrue(self.sub.find_log(
            r"INFO stopped: .*, processes left behind by runs killed 0$"),
            self.sub.log_text())
        self.assertIsNone(self.sub.find_log(r"left behind$"))

    # (b) ----------------------------------------------------------------

    def test_double_forked_sleeper_killed_when_the_run_ends(self):
        handler = "%s %s b" % (self.fork2, self.tmp)
        self.start_sub(self.handlers_text(
            {"c.fork2": [{"driver": "shell", "handler": handler}]}))
        _, ev = self.fire("c.fork2")
        gpid = h.read_pid_file(self.path("b.gpid"))
        gstart = self.track(gpid)
        # precondition: its parent is gone, event-sub (the subreaper) has
        # it, and it stays while its run runs
        h.wait_until(lambda: h.proc_stat(gpid)[1] == self.sub.proc.pid,
                     what="sleep %d reparented to event-sub" % gpid)
        self.touch("b.go")
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"], "done\n", r)
        self.wait_warning(self.left_line(handler, ev["id"], 1))
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="sleep")
        self.sub.stop()
        self.assertTrue(self.sub.find_log(
            r"INFO stopped: events 1, .*, processes left behind by runs "
            r"killed 1$"), self.sub.log_text())

    def test_background_of_run_that_ends_at_once(self):
        # the classic: "sleep &" and exit; the run ends at once (the sleep
        # holds its stdout) and the sleep does not outlive it
        handler = self.shell("sleep 300 & echo $! > %s/bg.pid; echo started"
                             % self.tmp, "bg")
        self.start_sub({"c.bg": [{"driver": "shell", "handler": handler}]})
        _, ev = self.fire("c.bg")
        r = self.rows(ev["id"], 1)[0]
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"], "started\n", r)
        gpid = h.read_pid_file(self.path("bg.pid"))
        self.wait_log_count(self.sub, r"^run of handler \S+ \(sh -c .*\) for "
                            r"event %s: killed 1 process it left behind$"
                            % ev["id"], 1, level="WARNING")
        h.wait_until(lambda: h.proc_stat(gpid) is None or
                     h.proc_stat(gpid)[1] != self.sub.proc.pid,
                     what="sleep %d killed and reaped" % gpid)

    # (c) ----------------------------------------------------------------

    def test_running_handler_untouched_while_another_run_is_contained(self):
        leave = "%s %s c1" % (self.fork2, self.tmp)
        keep = "%s %s k" % (self.keeper, self.tmp)
        self.start_sub(self.handlers_text(
            {"c.leave": [{"driver": "shell", "handler": leave}],
             "c.keep": [{"driver": "shell", "handler": keep}]}))
        _, kev = self.fire("c.keep")
        kpids = [h.read_pid_file(self.path(n))
                 for n in ("k.pid", "k.bpid", "k.dpid")]
        kstarts = [self.track(p) for p in kpids]
        # the keeper's double-forked sleep is event-sub's child too
        h.wait_until(lambda: h.proc_stat(kpids[2])[1] == self.sub.proc.pid,
                     what="keeper's sleep reparented to event-sub")
        _, lev = self.fire("c.leave")
        gpid = h.read_pid_file(self.path("c1.gpid"))
        gstart = self.track(gpid)
        self.touch("c1.go")
        self.assertEqual(self.rows(lev["id"], 1)[0]["status"], "ok")
        self.wait_warning(self.left_line(leave, lev["id"], 1))
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="sleep")
        # the keeper and both its sleeps run on, untouched
        for pid, start in zip(kpids, kstarts):
            st = h.proc_stat(pid)
            self.assertTrue(st is not None and st[2] == start and
                            st[0] not in "ZX", "%d: %r" % (pid, st))
        self.assertEqual(h.result_rows(self.store, kev["id"]), [])
        self.touch("k.go")
        r = self.rows(kev["id"], 1)[0]
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"], "kept\n", r)
        # once it ended, what it left (the double-forked sleep) goes too
        self.wait_warning(self.left_line(keep, kev["id"], 1))
        self.assertGone(kpids[2], kstarts[2], self.sub.proc.pid,
                        what="keeper's sleep")
        self.sub.stop()
        self.assertTrue(self.sub.find_log(
            r"INFO stopped: .*, processes left behind by runs killed 2$"),
            self.sub.log_text())

    def test_two_runs_ending_together(self):
        a = "%s %s m1" % (self.fork2, self.tmp)
        b = "%s %s m2" % (self.fork2, self.tmp)
        self.start_sub(self.handlers_text(
            {"c.two": [{"driver": "shell", "handler": a},
                       {"driver": "shell", "handler": b}]}))
        _, ev = self.fire("c.two")
        gpids = [h.read_pid_file(self.path(n)) for n in ("m1.gpid",
                                                        "m2.gpid")]
        gstarts = [self.track(p) for p in gpids]
        with open(self.path("m1.go"), "w"), open(self.path("m2.go"), "w"):
            pass
        self.assertEqual([r["status"] for r in self.rows(ev["id"], 2)],
                         ["ok", "ok"])
        for p, s in zip(gpids, gstarts):
            self.assertGone(p, s, self.sub.proc.pid, what="sleep")
        # each sleep is counted once: on a line naming its run, or on one
        # for several runs when both had ended before the look
        one = re.compile(r"^run of handler \S+ \(.*\) for event %s: killed "
                         r"1 process it left behind$" % ev["id"])
        many = re.compile(r"^killed (\d) process(?:es)? left behind by "
                          r"handler runs \(runs ended since the last look: "
                          r"[02]; running: 0\)$")

        def killed():
            n = 0
            for m in self.log_matches(self.sub, r".", "WARNING"):
                msg = m.group("msg")
                n += 1 if one.match(msg) else 0
                mm = many.match(msg)
                n += int(mm.group(1)) if mm else 0
            return n
        h.wait_until(lambda: killed() == 2, what="2 sleeps counted")
        self.sub.stop()
        self.assertEqual(killed(), 2, self.sub.log_text())
        self.assertTrue(self.sub.find_log(
            r"INFO stopped: .*, processes left behind by runs killed 2$"),
            self.sub.log_text())

    # (d) ----------------------------------------------------------------

    def start_py_sub(self, table, workers):
        pydir = self.path("py")
        os.makedirs(pydir)
        with open(os.path.join(pydir, "pymod.py"), "w") as f:
            f.write(PYMOD)
        self.handlers_path = self.write_handlers(self.handlers_text(table))
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic",
                             "python_workers": workers}
        cfg_path = h.write_json(self.path("sub-config.json"), cfg)
        self.sub = h.Sub(self.tmp, cfg_path, self.handlers_path,
                         self.router.sub_uri,
                         extra_args=["--event-handlers", pydir])
        self.daemons.append(self.sub)
        self.sub.wait_ready(timeout=30)

    def test_python_workers_survive(self):
        handler = "%s %s d" % (self.fork2, self.tmp)
        self.start_py_sub(
            {"c.py": [{"driver": "pyfunc", "handler": "pymod.ok"}],
             "c.leave": [{"driver": "shell", "handler": handler}]}, 2)
        _, ev = self.fire("c.py")
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        workers = [int(m.group(1)) for m in re.finditer(
            r"DEBUG python worker (\d+) started", self.sub.log_text())]
        self.assertGreaterEqual(len(workers), 1)
        wstarts = [self.track(w) for w in workers]
        _, lev = self.fire("c.leave")
        gpid = h.read_pid_file(self.path("d.gpid"))
        gstart = self.track(gpid)
        self.touch("d.go")
        self.wait_log_count(self.sub, r"^run of handler \S+ \(%s\) for event "
                            r"%s: killed 1 process it left behind$"
                            % (re.escape(handler), lev["id"]), 1,
                            level="WARNING")
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="sleep")
        # the workers are the same processes, and still take calls
        for w, s in zip(workers, wstarts):
            st = h.proc_stat(w)
            self.assertTrue(st is not None and st[2] == s and
                            st[0] not in "ZX", "worker %d: %r" % (w, st))
        _, ev2 = self.fire("c.py")
        self.assertEqual(self.rows(ev2["id"], 1)[0]["status"], "ok")
        self.assertEqual(len(re.findall(r"python worker \d+ started",
                                        self.sub.log_text())), len(workers))
        self.assertIsNone(self.sub.find_log(r"python worker \d+ (exited|"
                                            r"killed|died)"))

    def test_python_function_processes_go_with_their_worker(self):
        # a process a function starts is its worker's child: it outlives
        # the call, and is killed with the worker at a call's timeout
        self.start_py_sub(
            {"c.spawn": [{"driver": "pyfunc", "handler": "pymod.spawn"}],
             "c.hang": [{"driver": "pyfunc", "handler": "pymod.hang",
                         "timeout": 1}]}, 1)
        _, ev = self.fire("c.spawn", {"pidfile": self.path("p1.pid")})
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        p1 = h.read_pid_file(self.path("p1.pid"))
        s1 = self.track(p1)
        worker = h.proc_stat(p1)[1]
        self.assertIn("python worker %d started" % worker,
                      self.sub.log_text())
        self.assertEqual(os.getsid(p1), p1)
        _, ev2 = self.fire("c.hang", {"pidfile": self.path("p2.pid")})
        p2 = h.read_pid_file(self.path("p2.pid"))
        s2 = self.track(p2)
        # after the first call, its process still runs
        st = h.proc_stat(p1)
        self.assertTrue(st is not None and st[2] == s1 and st[0] not in "ZX",
                        st)
        r = self.rows(ev2["id"], 1)[0]
        self.assertEqual(r["status"], "timeout", r)
        self.assertGone(p2, s2, self.sub.proc.pid, what="sleep of the call "
                        "that timed out")
        self.assertGone(p1, s1, self.sub.proc.pid, what="sleep of the "
                        "earlier call")

    def test_setsid_orphan_of_running_run_goes_at_the_next_look(self):
        # the caveat of event-sub(8): a process that left its run's session
        # and lost its parent while its run runs is killed at the next
        # look, after another run's end, and counted for that run
        keep = self.script("setsid-keeper", r'''#!/bin/sh
dir=$1
( setsid sleep 300 & echo $! > "$dir/o.gpid" )
while [ ! -e "$dir/o.go" ]; do sleep 0.05; done
echo kept
''')
        keeper = "%s %s" % (keep, self.tmp)
        self.start_sub(self.handlers_text(
            {"c.keep": [{"driver": "shell", "handler": keeper}],
             "c.quick": [{"driver": "shell", "handler": "/bin/true q"}]}))
        _, kev = self.fire("c.keep")
        gpid = h.read_pid_file(self.path("o.gpid"))
        gstart = self.track(gpid)
        # the subshell can end (and its child be reparented) before the
        # child has called setsid(2): wait for both
        h.wait_until(lambda: h.proc_stat(gpid)[1] == self.sub.proc.pid and
                     os.getsid(gpid) == gpid,
                     what="setsid'd sleep reparented to event-sub")
        _, qev = self.fire("c.quick")
        self.assertEqual(self.rows(qev["id"], 1)[0]["status"], "ok")
        self.wait_warning(self.left_line("/bin/true q", qev["id"], 1))
        self.assertGone(gpid, gstart, self.sub.proc.pid, what="sleep")
        self.assertEqual(h.result_rows(self.store, kev["id"]), [])
        self.touch("o.go")
        r = self.rows(kev["id"], 1)[0]
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"], "kept\n", r)

    def test_python_worker_replaced_leaves_its_processes_to_a_look(self):
        # SIGHUP replaces the idle worker, which exits: the process a call
        # started is reparented to event-sub and killed; no run ended
        self.start_py_sub(
            {"c.spawn": [{"driver": "pyfunc", "handler": "pymod.spawn"}]}, 1)
        _, ev = self.fire("c.spawn", {"pidfile": self.path("p1.pid")})
        self.assertEqual(self.rows(ev["id"], 1)[0]["status"], "ok")
        p1 = h.read_pid_file(self.path("p1.pid"))
        s1 = self.track(p1)
        self.sub.proc.send_signal(signal.SIGHUP)
        self.wait_warning("killed 1 process left behind by handler runs "
                          "(runs ended since the last look: 0; running: 0)")
        self.assertGone(p1, s1, self.sub.proc.pid, what="sleep")
        _, ev2 = self.fire("c.spawn", {"pidfile": self.path("p2.pid")})
        self.assertEqual(self.rows(ev2["id"], 1)[0]["status"], "ok")
        p2 = h.read_pid_file(self.path("p2.pid"))
        s2 = self.track(p2)
        self.sub.stop()
        self.assertTrue(self.sub.find_log(
            r"INFO stopped: events 2, .*, processes left behind by runs "
            r"killed 1$"), self.sub.log_text())
        # the second call's process goes with its worker, which event-sub
        # kills as it exits (after its stop line)
        self.assertGone(p2, s2, None, what="sleep of the second call")
