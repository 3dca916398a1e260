"""event-sub --replay --since TIME [--until TIME] [--match PATTERN]
[--dry-run] (event-sub(8), "Replay"): the handlers of the stored events
selected run again, in the order they were stored, their results marked
replayed; a live event-sub beside it is not disturbed; --dry-run lists
the runs and writes nothing; every bad input is refused with its message
and exit status."""

import calendar
import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import time

import harness as h
import test_mongo
from test_event_sub import SubTestCase

# 2020-01-01T00:00:00Z: the events of the tests carry timestamps from it
T0 = calendar.timegm((2020, 1, 1, 0, 0, 0))

# the handler: appends the event's id to LOG, then fails (exit 3) until
# the file FIXED exists
HANDLER = """#!/usr/bin/python3
import json, os, sys
ev = json.loads(sys.argv[-1])
fixed = os.path.exists(%(fixed)r)
with open(%(log)r, "a") as f:
    f.write(ev["id"] + (" fixed" if fixed else " broken") + "\\n")
sys.exit(0 if fixed else 3)
"""


def write_handler(tmp, name="job.py"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(HANDLER % {"fixed": os.path.join(tmp, "fixed"),
                           "log": os.path.join(tmp, "ran.log")})
    os.chmod(path, 0o755)
    return path


def replay(config, handlers, *args, stderr=subprocess.PIPE, timeout=60):
    """event-sub --replay ARGS: its CompletedProcess (text)."""
    return subprocess.run([h.binary("event-sub"), "-c", config, "-e",
                           handlers, "-l", "error", "--replay"] +
                          list(args), stdout=subprocess.PIPE, stderr=stderr,
                          stdin=subprocess.DEVNULL, timeout=timeout,
                          text=True)


def runs(path):
    """{event id: [(status, replayed)]} of the results stored, in order."""
    out = {}
    for r in h.db_query(path, "SELECT event_id, status, replayed FROM "
                        "results ORDER BY rowid") or []:
        out.setdefault(r[0].decode(), []).append((r[1].decode(), r[2]))
    return out


class FixThenReplay(SubTestCase):
    """The issue's test: a handler fails, is fixed, the selection runs
    again beside the live event-sub."""

    @classmethod
    def handlers(cls, tmp):
        cls.script = write_handler(tmp)
        return {"local:job.*": [{"driver": "shell", "handler": cls.script}]}

    def fire_at(self, event_type, offset=None):
        ev = {"event_type": event_type}
        if offset is not None:
            ev["timestamp"] = T0 + offset
        return self.fire_raw(json.dumps(ev))[1]["id"]

    def ran(self):
        with open(self.out("ran.log")) as f:
            return [ln.split() for ln in f.read().splitlines()]

    def test_replay_after_the_fix(self):
        db = self.router.store_path
        ids = [self.fire_at(t, off) for t, off in
               (("job.a", 0), ("job.b", 60), ("job.a", 120),
                ("job.a", 180), ("job.a", 90))]
        h.wait_until(lambda: sum(len(v) for v in runs(db).values()) == 5,
                     what="5 results")
        self.assertEqual(runs(db), {i: [("failed", 0)] for i in ids})
        open(self.out("fixed"), "w").close()
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"max_concurrency": 1}      # one after another
        cp = replay(h.write_json(self.out("replay.json"), cfg),
                    self.handlers_path,
                    "--since", "2020-01-01T00:00:30Z",
                    "--until", "2020-01-01T00:03:00Z",
                    "--match", "local:job.a")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr),
                         (0, "", "replay: 2 events, 2 runs (2 ok, 0 not "
                          "ok)\n"))
        # job.b, before --since, at --until: untouched; the two selected
        # ran again, in the order they were stored
        self.assertEqual(self.ran()[5:], [[ids[2], "fixed"],
                                          [ids[4], "fixed"]])
        want = {i: [("failed", 0)] for i in ids}
        want[ids[2]] = want[ids[4]] = [("failed", 0), ("ok", 1)]
        self.assertEqual(runs(db), want)
        # the live event-sub: a new event runs once; nothing it had run
        # runs again (its catch-up took no replayed row for its own)
        new = self.fire_at("job.new")
        h.wait_until(lambda: new in runs(db), what="the new event's run")
        self.sub.stop()
        want[new] = [("ok", 0)]
        self.assertEqual(runs(db), want)
        self.assertEqual(len(self.ran()), 8)
        self.assertIsNone(self.sub.find_log(r"catch-up: running"))
        self.assertIsNotNone(self.sub.find_log(
            r"INFO stopped: events 6, malformed 0, unmatched 0, runs 6, "))


class DryRun(h.RouterTestCase):
    """--dry-run lists, runs and writes nothing; a missing file is not
    made."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config = h.write_json(os.path.join(cls.tmp, "sub.json"),
                                  cls.router.config)
        cls.handlers_path = h.write_json(
            os.path.join(cls.tmp, "event-handlers.json"),
            {"local:disk.*": [{"driver": "shell", "handler": "true"},
                              {"driver": "shell", "handler": "echo hi",
                               "when": {"/payload/n": {"gt": 1}}}],
             "*:*.full": [{"driver": "shell", "handler": "false"}]})

    def fire(self, ev):
        reply = h.request(self.req_socket(), json.dumps(ev).encode())
        return self.assertStamped(reply, namespace=None)["id"]

    def test_lists_what_would_run(self):
        db = self.router.store_path
        a = self.fire({"event_type": "disk.full", "timestamp": T0 + 1.5,
                       "payload": {"n": 1}})
        b = self.fire({"event_type": "disk.full", "timestamp": T0 + 7200,
                       "payload": {"n": 2}})
        d = self.fire({"event_type": "disk.full", "timestamp": T0 - 1})
        c = self.fire({"event_type": "disk.ok"})          # now
        h.wait_event_row(db, c)
        mtime = os.stat(db).st_mtime_ns
        cp = replay(self.config, self.handlers_path, "--since", "2020-01-01",
                    "--dry-run")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.splitlines(), [
            "%s 2020-01-01T00:00:01.500Z local:disk.full shell true" % a,
            "%s 2020-01-01T00:00:01.500Z local:disk.full shell false" % a,
            "%s 2020-01-01T02:00:00.000Z local:disk.full shell true" % b,
            "%s 2020-01-01T02:00:00.000Z local:disk.full shell echo hi" % b,
            "%s 2020-01-01T02:00:00.000Z local:disk.full shell false" % b,
        ] + [ln for ln in cp.stdout.splitlines() if ln.startswith(c)])
        self.assertEqual(len([ln for ln in cp.stdout.splitlines()
                              if ln.startswith(c)]), 1)
        self.assertEqual(cp.stderr, "replay: dry run: 3 events, 6 runs "
                         "listed\n")
        # --until, a relative --since
        cp = replay(self.config, self.handlers_path, "--since",
                    "2019-12-31T23:59:59.000Z", "--until",
                    "2020-01-01T00:00:01.5Z", "--dry-run")
        self.assertEqual((cp.stdout, cp.stderr), (
            "%s 2019-12-31T23:59:59.000Z local:disk.full shell true\n"
            "%s 2019-12-31T23:59:59.000Z local:disk.full shell false\n"
            % (d, d), "replay: dry run: 1 events, 2 runs listed\n"))
        cp = replay(self.config, self.handlers_path, "--since", "-1h",
                    "--match", "*:disk.ok", "--dry-run")
        self.assertEqual((cp.stdout.split(" ")[0], cp.stderr), (
            c, "replay: dry run: 1 events, 1 runs listed\n"))
        # nothing written
        self.assertEqual(os.stat(db).st_mtime_ns, mtime)
        self.assertEqual(h.result_rows(db), [])

    def test_a_missing_file_is_not_made(self):
        cfg = dict(self.router.config)
        missing = os.path.join(self.tmp, "none", "events.db")
        cfg["store"] = {"type": "sqlite", "path": missing}
        path = h.write_json(os.path.join(self.tmp, "missing.json"), cfg)
        for dry in (["--dry-run"], []):
            cp = replay(path, self.handlers_path, "--since", "-1d", *dry)
            self.assertEqual(cp.returncode, 66, cp.stderr)
            self.assertRegex(cp.stderr, r"^\S+Z event-sub\[\d+\] ERROR "
                             r"replay: no events file: %s: No such file or "
                             r"directory\n$" % h.re.escape(missing))
            self.assertFalse(os.path.exists(os.path.dirname(missing)))


class BadInput(h.RouterTestCase):
    """Every bad input: its message, exit status 64 (usage) or 78 (no
    store)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.config = h.write_json(os.path.join(cls.tmp, "sub.json"),
                                  cls.router.config)
        cls.handlers_path = h.write_json(
            os.path.join(cls.tmp, "event-handlers.json"), {})

    def usage(self, args, message):
        cp = subprocess.run([h.binary("event-sub"), "-c", self.config] +
                            args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr),
                         (64, "", "event-sub: %s\n" % message), args)

    def test_bad_times(self):
        for flag in ("--since", "--until"):
            for bad in ("yesterday", "2026-13-01", "2026-02-30",
                        "2026-12-05T07:00:00", "2026-12-05T07:00Z",
                        "2026-12-05 07:00:00Z", "2026-12-05T07:00:00.Z",
                        "2026-12-05T07:00:00+00:00", "-2w", "-h", "-1.5h",
                        "-1234567890s", "26-12-05", ""):
                args = ["--replay", "--since", "2020-01-01"]
                if flag == "--since":
                    args = ["--replay"]
                self.usage(args + [flag, bad], "%s \"%s\": not a time "
                           "(2026-12-05T07:00:00Z, 2026-12-05T07:00:00.250Z, "
                           "2026-12-05 or -2h: s, m, h, d)" % (flag, bad))

    def test_bad_combinations(self):
        self.usage(["--replay"], "--replay needs --since TIME")
        self.usage(["--replay", "--until", "2020-01-01"],
                   "--replay needs --since TIME")
        self.usage(["--replay", "--since", "2020-01-02", "--until",
                    "2020-01-01T23:59:59.999Z"],
                   "--until 2020-01-01T23:59:59.999Z is not after --since "
                   "2020-01-02")
        self.usage(["--replay", "--since", "-1h", "--until", "-1h"],
                   "--until -1h is not after --since -1h")
        for other in (["--tail"], ["--check"], ["-D"]):
            self.usage(["--replay", "--since", "-1h"] + other,
                       "--replay goes without --tail, --check and -D")
        for alone in (["--since", "-1h"], ["--until", "-1h"],
                      ["--match", "*"], ["--dry-run"]):
            self.usage(alone, "--since, --until, --match and --dry-run go "
                       "with --replay")
        # an empty pattern, refused as in event-handlers.json
        self.usage(["--replay", "--since", "-1h", "--match", "", "--dry-run"],
                   "--match: a pattern must not be empty")
        self.usage(["--tail", ""], "--tail: a pattern must not be empty")

    def test_store_none(self):
        cfg = dict(self.router.config)
        cfg["store"] = {"type": "none"}
        path = h.write_json(os.path.join(self.tmp, "none.json"), cfg)
        cp = replay(path, self.handlers_path, "--since", "-1h")
        self.assertEqual(cp.returncode, 78)
        self.assertRegex(cp.stderr, r"^\S+Z event-sub\[\d+\] ERROR replay: "
                         r"store.type none keeps no events to replay\n$")


class SchemaV2(h.TempDirMixin, h.unittest.TestCase):
    """A file of schema version 2 (no results.replayed), made here, gets
    the column from the replay, and its results; the guards apply to a
    replay's runs, and runs not ok still exit 0."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def make_store(self, n):
        """A file of schema version 2 with n events (and a failed run of
        the first): the path and the ids."""
        db = os.path.join(self.tmp, "events.db")
        con = sqlite3.connect(db)
        con.executescript(h.SCHEMA)
        ids = ["5e0be100%016x" % (i + 1) for i in range(n)]
        for i, eid in enumerate(ids):
            body = json.dumps({"event_type": "old.event",
                               "namespace": "local",
                               "timestamp": T0 + i, "id": eid})
            con.execute("INSERT INTO events VALUES (?, 'local', "
                        "'old.event', ?, ?)", (eid, T0 + i, body))
        con.execute("INSERT INTO results (event_id, driver, handler, "
                    "status, started_at, duration_ms) VALUES (?, 'shell', "
                    "'true', 'failed', 1, 1)", (ids[0],))
        con.commit()
        con.close()
        return db, ids

    def run_replay(self, db, handlers):
        cfg = h.make_config(self.tmp, store_path=db)
        path = h.write_json(os.path.join(self.tmp, "sub.json"), cfg)
        hpath = h.write_json(os.path.join(self.tmp, "handlers.json"),
                             {"old.*": handlers})
        return replay(path, hpath, "--since", "2020-01-01")

    def test_v2_file_migrates(self):
        db, ids = self.make_store(2)
        cp = self.run_replay(db, [{"driver": "shell", "handler": "true"}])
        self.assertEqual((cp.returncode, cp.stderr),
                         (0, "replay: 2 events, 2 runs (2 ok, 0 not ok)\n"))
        self.assertEqual(h.db_query(db, "PRAGMA user_version"), [(4,)])
        self.assertEqual(runs(db), {ids[0]: [("failed", 0), ("ok", 1)],
                                    ids[1]: [("ok", 1)]})

    def test_dry_run_of_a_closed_file(self):
        db, ids = self.make_store(2)
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.close()                         # no -wal, no -shm left
        with open(db, "rb") as f:
            before = f.read()
        cfg = h.make_config(self.tmp, store_path=db)
        path = h.write_json(os.path.join(self.tmp, "sub.json"), cfg)
        hpath = h.write_json(os.path.join(self.tmp, "handlers.json"), {})
        cp = replay(path, hpath, "--since", "2020-01-01", "--dry-run")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr),
                         (0, "", "replay: dry run: 2 events, 0 runs "
                          "listed\n"))
        with open(db, "rb") as f:
            self.assertEqual(f.read(), before)      # version 2 still
        self.assertEqual(os.path.getsize(db + "-wal"), 0)
        self.assertTrue(os.path.exists(db + "-shm"))

    def test_guards_apply_and_failures_exit_0(self):
        db, ids = self.make_store(2)
        cp = self.run_replay(db, [
            {"driver": "shell", "handler": "true",
             "rate": {"per_second": 0.001, "burst": 1}},
            {"driver": "shell", "handler": "false"}])
        self.assertEqual((cp.returncode, cp.stderr),
                         (0, "replay: 2 events, 4 runs (1 ok, 3 not ok)\n"))
        got = h.db_query(db, "SELECT event_id, handler, status, replayed "
                         "FROM results WHERE replayed = 1 ORDER BY "
                         "event_id, handler")
        self.assertEqual([tuple(x.decode() if isinstance(x, bytes) else x
                                for x in r) for r in got],
                         [(ids[0], "false", "failed", 1),
                          (ids[0], "true", "ok", 1),
                          (ids[1], "false", "failed", 1),
                          (ids[1], "true", "throttled", 1)])


class Interrupted(h.RouterTestCase):
    """SIGINT: no run started after it, the one running finishes, the
    summary, exit status 75; on a terminal, the progress line."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cfg = dict(cls.router.config)
        cfg["subscriber"] = {"max_concurrency": 1}
        cls.config = h.write_json(os.path.join(cls.tmp, "sub.json"), cfg)
        cls.handlers_path = h.write_json(
            os.path.join(cls.tmp, "event-handlers.json"),
            {"slow.*": [{"driver": "shell", "handler":
                         "sh -c 'touch started; while [ ! -e release ]; "
                         "do sleep 0.05; done'"}],
             "quick.*": [{"driver": "shell", "handler": "true"}]})

    def fire(self, ev):
        reply = h.request(self.req_socket(), json.dumps(ev).encode())
        return self.assertStamped(reply, namespace=None)["id"]

    def test_sigint_lets_the_run_finish(self):
        ids = [self.fire({"event_type": "slow.%d" % i, "timestamp": T0 + i})
               for i in range(3)]
        log = os.path.join(self.tmp, "replay.log")
        with open(log, "w") as err:
            p = subprocess.Popen([h.binary("event-sub"), "-c", self.config,
                                  "-e", self.handlers_path, "--replay",
                                  "--since", "2020-01-01", "--match",
                                  "*:slow.*"], stdout=subprocess.DEVNULL,
                                 stderr=err, stdin=subprocess.DEVNULL,
                                 cwd=self.tmp)
        self.addCleanup(lambda: p.poll() is None and p.kill())

        def logged(text):
            with open(log) as f:
                return text in f.read()
        h.wait_until(lambda: os.path.exists(os.path.join(self.tmp,
                                                         "started")),
                     what="the first run started")
        p.send_signal(signal.SIGINT)
        h.wait_until(lambda: logged("INFO replay stopping: 2 queued runs "
                                    "not started, 1 runs in flight, up to "),
                     what="the replay's stop line")
        open(os.path.join(self.tmp, "release"), "w").close()
        self.assertEqual(p.wait(h.WAIT_TIMEOUT), 75)
        with open(log) as f:
            text = f.read()
        self.assertTrue(text.endswith(
            "replay: stopped by a signal: 3 events, 1 runs (1 ok, 0 not "
            "ok), 2 runs not started\n"), text)
        self.assertEqual([(r["status"], r["replayed"]) for r in
                          h.result_rows(self.router.store_path)
                          if r["event_id"] in ids], [("ok", 1)])

    def test_progress_on_a_terminal(self):
        ids = [self.fire({"event_type": "quick.%d" % i,
                          "timestamp": T0 + 10 + i}) for i in range(2)]
        master, slave = pty.openpty()
        p = subprocess.Popen([h.binary("event-sub"), "-c", self.config, "-e",
                              self.handlers_path, "-l", "error",
                              "--replay", "--since", "2020-01-01T00:00:10Z",
                              "--match", "*:quick.*"],
                             stdout=subprocess.DEVNULL, stderr=slave,
                             stdin=subprocess.DEVNULL)
        os.close(slave)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        got = b""
        deadline = time.monotonic() + h.WAIT_TIMEOUT
        while True:
            if not select.select([master], [], [],
                                 max(deadline - time.monotonic(), 0))[0]:
                p.kill()
                self.fail("the replay's terminal output did not end "
                          "within %s s: %r" % (h.WAIT_TIMEOUT, got))
            try:
                chunk = os.read(master, 4096)
            except OSError:             # EIO: the terminal's last writer
                break                   # closed it
            if not chunk:
                break
            got += chunk
        os.close(master)
        self.assertEqual(p.wait(h.WAIT_TIMEOUT), 0)
        text = got.decode().replace("\r\n", "\n")
        # every stored event is read (those of the other test too), the
        # two selected
        self.assertRegex(text, r"^\rreplay: \d+ stored events read, 2 "
                         r"selected, 0 runs\x1b\[K")
        self.assertTrue(text.endswith(
            "\r\x1b[Kreplay: 2 events, 2 runs (2 ok, 0 not ok)\n"), text)
        self.assertEqual(sorted(r["event_id"] for r in
                                h.result_rows(self.router.store_path)
                                if r["replayed"]), sorted(ids))


class Unreadable(h.TempDirMixin, h.unittest.TestCase):
    """A store that cannot be read: 74 (a SQLite file that is not one),
    69 (MongoDB away)."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.handlers = h.write_json(os.path.join(self.tmp, "handlers.json"),
                                     {})

    def test_not_a_database(self):
        db = os.path.join(self.tmp, "events.db")
        with open(db, "wb") as f:
            f.write(b"not SQLite\n" * 1000)
        path = h.write_json(os.path.join(self.tmp, "sub.json"),
                            h.make_config(self.tmp, store_path=db))
        cp = replay(path, self.handlers, "--since", "-1h", "--dry-run")
        self.assertEqual(cp.returncode, 74, cp.stderr)
        self.assertRegex(cp.stderr, r"^\S+Z event-sub\[\d+\] ERROR replay: "
                         r"cannot read the events of %s: .*file is not a "
                         r"database\n$" % h.re.escape(db))

    def test_mongodb_away(self):
        sock, port = h.free_port_holder()
        self.addCleanup(sock.close)
        store = {"type": "mongodb", "uri": "mongodb://127.0.0.1:%d/er"
                 "?serverSelectionTimeoutMS=300" % port,
                 "spool_path": os.path.join(self.tmp, "spool.db")}
        path = h.write_json(os.path.join(self.tmp, "sub.json"),
                            h.make_config(self.tmp, store=store))
        cp = replay(path, self.handlers, "--since", "-1h", "--dry-run")
        self.assertEqual(cp.returncode, 69, cp.stderr)
        self.assertRegex(cp.stderr, r"^\S+Z event-sub\[\d+\] ERROR replay: "
                         r"cannot read the events of mongodb database er: "
                         r"cannot read the events: .+\n$")


class Mongo(test_mongo.MongoTestCase):
    """The same with a mongodb store: the events read back in _id order,
    each result a document with replayed: true."""

    def test_replay_from_mongodb(self):
        r = self.start_router()
        sock = self.req(r)
        ids = [self.fire(sock, {"event_type": "m.%d" % i,
                                "timestamp": T0 + i})["id"]
               for i in range(3)]
        self.wait_doc("events", {}, 3)
        cfg = h.write_json(os.path.join(self.tmp, "sub-%s.json" % self.db),
                           r.config)
        handlers = h.write_json(os.path.join(self.tmp, "h-%s.json" % self.db),
                                {"*:m.*": [{"driver": "shell",
                                            "handler": "true"}]})
        cp = replay(cfg, handlers, "--since", "2020-01-01T00:00:01Z",
                    "--dry-run")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, "".join(
            "%s 2020-01-01T00:00:0%d.000Z local:m.%d shell true\n"
            % (ids[i], i, i) for i in (1, 2)),
            "replay: dry run: 2 events, 2 runs listed\n"))
        self.assertEqual(self.find("results"), [])
        cp = replay(cfg, handlers, "--since", "2020-01-01T00:00:01Z")
        self.assertEqual((cp.returncode, cp.stderr),
                         (0, "replay: 2 events, 2 runs (2 ok, 0 not ok)\n"))
        docs = self.find("results")
        self.assertEqual(sorted((str(d["event_id"]), d["status"],
                                 d["redelivered"], d["replayed"])
                                for d in docs),
                         [(i, "ok", False, True) for i in sorted(ids[1:])])
