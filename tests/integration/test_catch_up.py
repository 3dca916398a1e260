"""Every stored event gets its handler runs (event-reactor(7), "Delivery
promises"): event-sub journals its runs and reads back from the router's
SQLite store what it did not receive, through kill -9, SIGSTOP, a late
start and a router restart; a run in flight at a kill runs again, marked
redelivered; the catch-up window bounds the work, and what it leaves out
is counted in a log line."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import unittest

import zmq

import harness as h

# A wait for runs: generous, since a loaded machine starts a few hundred
# processes a second.
RUNS_TIMEOUT = 600


def push(uri, n, tag):
    """Hand n events to the PULL input; returns their payload numbers."""
    s = h.zsock(zmq.PUSH, uri)
    s.setsockopt(zmq.SNDTIMEO, int(h.WAIT_TIMEOUT * 1000))
    try:
        for i in range(n):
            s.send(b'{"event_type":"cu.%s","n":%d}' % (tag.encode(), i))
    finally:
        s.close(linger=int(h.WAIT_TIMEOUT * 1000))
    return n


def count(db, sql, args=()):
    rows = h.db_query(db, sql, args)
    return rows[0][0] if rows else 0


def stored(db):
    return count(db, "SELECT count(*) FROM events")


def with_ok_run(db):
    return count(db, "SELECT count(DISTINCT event_id) FROM results WHERE "
                 "status = 'ok'")


def wait_all_run(db, n, what):
    h.wait_until(lambda: with_ok_run(db) >= n, RUNS_TIMEOUT,
                 "%s: an ok run for each of %d events" % (what, n))
    # and every stored event among them
    missing = count(db, "SELECT count(*) FROM events e WHERE NOT EXISTS "
                    "(SELECT 1 FROM results r WHERE r.event_id = e.id AND "
                    "r.status = 'ok')")
    return missing


def in_flight(journal):
    """Runs the journal shows started: those in flight at a kill (read once
    event-sub is gone: it holds the journal exclusively)."""
    con = sqlite3.connect(journal, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM runs WHERE state = 2"
                           ).fetchone()[0]
    finally:
        con.close()


class CatchUp(unittest.TestCase, h.TempDirMixin):

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def router(self, cfg=None):
        cfg = cfg or h.make_config(self.tmp)
        r = h.Router(self.tmp, cfg, level="info")
        self.addCleanup(r.kill)
        r.wait_ready()
        return r

    def sub_files(self, r, handlers, subscriber=None, store=None):
        cfg = dict(r.config)
        cfg["subscriber"] = dict({"uri": r.sub_uri, "framing": "topic"},
                                 **(subscriber or {}))
        if store is not None:
            cfg["store"] = store
        cp = h.write_json(os.path.join(self.tmp, "sub.json"), cfg)
        hp = h.write_json(os.path.join(self.tmp, "handlers.json"), handlers)
        return cp, hp

    def start_sub(self, cp, hp, uri, extra=(), level="info"):
        s = h.Sub(self.tmp, cp, hp, uri, level=level,
                  extra_args=list(extra))
        self.addCleanup(s.kill)
        s.wait_ready()
        return s

    def journal(self):
        return os.path.join(self.tmp, "event-sub.journal")

    def in_flight(self):
        return in_flight(self.journal())

    def test_kill_9_twice_every_event_runs_duplicates_only_in_flight(self):
        n = 20000
        r = self.router()
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]})
        s = self.start_sub(cp, hp, r.sub_uri)
        push(r.pull, n, "kill")
        h.wait_until(lambda: stored(r.store_path) == n, RUNS_TIMEOUT,
                     "%d events stored" % n)
        flight = 0
        for at in (n // 5, n // 2):
            h.wait_until(lambda: with_ok_run(r.store_path) >= at,
                         RUNS_TIMEOUT, "%d events run" % at)
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait(timeout=h.WAIT_TIMEOUT)
            flight += self.in_flight()
            s = self.start_sub(cp, hp, r.sub_uri)
        self.assertEqual(wait_all_run(r.store_path, n, "after two kills"),
                         0)
        s.stop()
        rows = h.db_query(r.store_path, "SELECT event_id, count(*), "
                          "sum(redelivered) FROM results GROUP BY event_id "
                          "HAVING count(*) > 1")
        self.assertLessEqual(len(rows), flight, rows[:10])
        for eid, runs, redelivered in rows:
            self.assertEqual((runs, redelivered), (2, 1), eid)
        # a run in flight at a kill runs again, marked: the first run's
        # row exists when its result was written before the kill
        redelivered = count(r.store_path, "SELECT count(*) FROM results "
                            "WHERE redelivered = 1")
        self.assertLessEqual(len(rows), redelivered)
        self.assertLessEqual(redelivered, flight)
        self.assertTrue(s.find_log(r"catch-up: running the handlers of "
                                   r"stored events event-sub did not "
                                   r"receive"), s.log_text())

    def pyfunc_handlers(self):
        hdir = os.path.join(self.tmp, "py")
        os.makedirs(hdir)
        with open(os.path.join(hdir, "triv.py"), "w") as f:
            f.write("def f(event):\n    return None\n")
        return hdir, {"*": [{"driver": "pyfunc", "handler": "triv.f"}]}

    def test_sigstop_20_s_under_50000_events_set_aside_then_caught_up(self):
        n = 50000
        r = self.router()
        hdir, handlers = self.pyfunc_handlers()
        cp, hp = self.sub_files(r, handlers)
        s = self.start_sub(cp, hp, r.sub_uri, ["--event-handlers", hdir])
        s.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            push(r.pull, n, "stop")
            h.wait_until(lambda: stored(r.store_path) == n, RUNS_TIMEOUT,
                         "%d events stored" % n)
            # the scenario: event-sub stopped for 20 s
            time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        finally:
            s.proc.send_signal(signal.SIGCONT)
        self.assertEqual(wait_all_run(r.store_path, n, "after SIGCONT"), 0)
        s.stop()
        self.assertEqual(r.stop(), 0)
        m = r.find_log(r"stalled subscribers (\d+)")
        self.assertIsNotNone(m, r.log_text())
        self.assertGreaterEqual(int(m.group(1)), 1, "never set aside")
        self.assertTrue(s.find_log(r"catch-up: running the handlers of "
                                   r"stored events event-sub did not "
                                   r"receive"), s.log_text())
        self.assertEqual(count(r.store_path, "SELECT count(*) FROM results"),
                         n)

    def test_started_30_s_after_the_events_were_stored(self):
        n = 1000
        r = self.router()
        cp, hp = self.sub_files(r, {"cu.*": [{"driver": "shell",
                                              "handler": "/bin/true"}]})
        push(r.pull, n, "late")
        h.wait_until(lambda: stored(r.store_path) == n, RUNS_TIMEOUT,
                     "%d events stored" % n)
        time.sleep(30)          # the scenario: event-sub starts 30 s later
        s = self.start_sub(cp, hp, r.sub_uri)
        self.assertEqual(wait_all_run(r.store_path, n, "late start"), 0)
        s.wait_log(r"INFO catch-up: done, the handlers of %d stored events "
                   r"run$" % n)
        s.stop()
        self.assertTrue(s.find_log(r"stopped: .*caught up from the store "
                                   r"%d, processes left behind by runs "
                                   r"killed 0$" % n), s.log_text())

    def skipped(self, s):
        return sum(int(m.group(1)) for m in re.finditer(
            r"WARNING catch-up: (\d+) stored events outside the catch-up "
            r"window \(subscriber\.catch_up: max_age (\d+) s, max_count "
            r"(\d+)\) not run", s.log_text()))

    def ten_stored_then_sub(self, catch_up):
        """A router with 10 events stored, then an event-sub running
        /bin/true for each event, of subscriber.catch_up catch_up."""
        r = self.router()
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]},
                                subscriber={"catch_up": catch_up})
        push(r.pull, 10, "ten")
        h.wait_until(lambda: stored(r.store_path) == 10, h.WAIT_TIMEOUT,
                     "10 events stored")
        return r, self.start_sub(cp, hp, r.sub_uri)

    def test_window_max_age_counted_not_run(self):
        r, s = self.ten_stored_then_sub({"max_age": 1})
        h.wait_until(lambda: self.skipped(s) == 10, h.WAIT_TIMEOUT,
                     "10 events counted outside the window")
        # a live event still runs
        reply = h.request(h.zsock(zmq.REQ, r.rep), b'{"event_type":"new"}')
        h.wait_results(r.store_path, json.loads(reply)["id"], 1)
        s.stop()
        self.assertEqual(count(r.store_path, "SELECT count(*) FROM results"),
                         1)
        self.assertTrue(s.find_log(r"max_age 1 s, max_count 100000\) not "
                                   r"run"), s.log_text())

    def test_window_max_age_counts_from_the_stamp(self):
        # an event's age is the router's stamp (the time in its id), not
        # its "timestamp", which a sender sets as it likes
        r = self.router()
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]},
                                subscriber={"catch_up": {"max_age": 3600}})
        sock = h.zsock(zmq.PUSH, r.pull)
        try:
            for i in range(10):
                sock.send(json.dumps({"event_type": "cu.old", "n": i,
                                      "timestamp": time.time() - 7200})
                          .encode())
        finally:
            sock.close(linger=int(h.WAIT_TIMEOUT * 1000))
        h.wait_until(lambda: stored(r.store_path) == 10, h.WAIT_TIMEOUT,
                     "10 events stored")
        s = self.start_sub(cp, hp, r.sub_uri)
        h.wait_until(lambda: with_ok_run(r.store_path) == 10, RUNS_TIMEOUT,
                     "the 10 events with an old timestamp run")
        s.stop()
        self.assertEqual(self.skipped(s), 0)

    def test_window_max_count_runs_the_newest(self):
        r, s = self.ten_stored_then_sub({"max_count": 3})
        h.wait_until(lambda: with_ok_run(r.store_path) == 3, RUNS_TIMEOUT,
                     "the 3 newest run")
        s.stop()
        self.assertEqual(self.skipped(s), 7)
        ran = h.db_query(r.store_path, "SELECT e.body FROM events e JOIN "
                         "results r ON r.event_id = e.id ORDER BY e.rowid")
        self.assertEqual([json.loads(b[0])["n"] for b in ran], [7, 8, 9])

    def test_router_restart_under_a_live_sub(self):
        holder, port = h.free_port_holder()
        holder.close()
        cfg = h.make_config(self.tmp)
        cfg["outputs"][1]["config"]["port"] = port
        r = self.router(cfg)
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]})
        s = self.start_sub(cp, hp, r.sub_uri)
        self.assertEqual(r.stop(), 0)
        r = self.router(cfg)
        s.wait_log(r"INFO reconnected to %s: catching up from the store "
                   r"what it published meanwhile$" % re.escape(r.sub_uri))
        req = h.zsock(zmq.REQ, r.rep)
        self.addCleanup(req.close, 0)
        ids = [json.loads(h.request(req, b'{"event_type":"again","n":%d}'
                                    % i))["id"] for i in range(100)]
        for eid in ids:
            h.wait_results(r.store_path, eid, 1, RUNS_TIMEOUT)
        s.stop()
        self.assertEqual(count(r.store_path, "SELECT count(*) FROM results"),
                         100)

    def test_another_subscriber_is_not_a_reconnect(self):
        # the router greets each new subscription on a topic-framed stream
        # and every subscriber of "" gets the greeting: event-sub takes
        # only one that follows a handshake of its own for a reconnect
        # (with a catch-up); three other subscribers come and go
        r = self.router()
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]})
        s = self.start_sub(cp, hp, r.sub_uri, level="debug")
        other = r"DEBUG control message on %s: another subscriber's " \
            r"subscription$" % re.escape(r.sub_uri)
        for _ in range(3):
            h.PubListener(r.sub_uri).close()
        h.wait_until(lambda: len(re.findall(other, s.log_text(), re.M)) == 3,
                     what="event-sub's three lines for the others")
        req = h.zsock(zmq.REQ, r.rep)
        self.addCleanup(req.close, 0)
        eid = json.loads(h.request(req, b'{"event_type":"after"}'))["id"]
        h.wait_results(r.store_path, eid, 1, RUNS_TIMEOUT)
        s.stop()
        self.assertIsNone(s.find_log(r"reconnected to"), s.log_text())

    def test_runs_a_shutdown_killed_or_never_started_run_at_the_next_start(
            self):
        # one slot: the first event's run blocks until the flag exists,
        # the two others wait; a shutdown of 0.5 s kills the first and
        # never starts the others
        flag = os.path.join(self.tmp, "flag")
        began = os.path.join(self.tmp, "began")
        r = self.router()
        cp, hp = self.sub_files(
            r, {"*": [{"driver": "shell", "handler":
                       "/bin/sh -c 'touch %s; test -e %s || exec sleep 60'"
                       % (began, flag)}]},
            subscriber={"max_concurrency": 1, "shutdown_grace": 0.5})
        s = self.start_sub(cp, hp, r.sub_uri, level="debug")
        req = h.zsock(zmq.REQ, r.rep)
        self.addCleanup(req.close, 0)
        ids = [json.loads(h.request(req, b'{"event_type":"slot","n":%d}'
                                    % i))["id"] for i in range(3)]
        h.wait_until(lambda: os.path.exists(began), h.WAIT_TIMEOUT,
                     "the first run started")
        # all three taken before the stop (on a busy machine the last
        # may still be on its way)
        for eid in ids:
            s.wait_log(r"DEBUG event %s \(local:slot\): 1 runs taken" % eid)
        self.assertEqual(s.stop(), 0)
        self.assertEqual(
            [(x["status"], x["error"]) for x in
             h.result_rows(r.store_path, ids[0])],
            [("timeout", "killed at shutdown: still running after "
              "subscriber.shutdown_grace")])
        for eid in ids[1:]:
            self.assertEqual([x["status"] for x in
                              h.result_rows(r.store_path, eid)], ["error"])
        open(flag, "w").close()
        s = self.start_sub(cp, hp, r.sub_uri)
        for eid in ids:
            h.wait_until(lambda: any(x["status"] == "ok" for x in
                                     h.result_rows(r.store_path, eid)),
                         RUNS_TIMEOUT, "an ok run of %s" % eid)
        s.stop()
        ok = {x["event_id"]: x["redelivered"] for i in ids for x in
              h.result_rows(r.store_path, i) if x["status"] == "ok"}
        self.assertEqual([ok[i] for i in ids], [1, 0, 0])

    def test_a_second_sub_on_the_same_journal_is_refused(self):
        r = self.router()
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]})
        self.start_sub(cp, hp, r.sub_uri)
        second = h.Sub(self.tmp, cp, hp, r.sub_uri, level="info")
        self.addCleanup(second.kill)
        self.assertEqual(second.proc.wait(timeout=h.WAIT_TIMEOUT), 78)
        self.assertTrue(second.find_log(
            r"ERROR journal %s: in use by another event-sub \(each needs a "
            r"journal of its own: subscriber\.journal\)$"
            % re.escape(self.journal())), second.log_text())

    def test_a_missing_journal_directory_is_created(self):
        # as the store's (one level): --check said OK for it and the start
        # failed with "No such file or directory"
        r = self.router()
        j = os.path.join(self.tmp, "state", "sub.journal")
        cp, hp = self.sub_files(r, {"*": [{"driver": "shell",
                                           "handler": "/bin/true"}]},
                                {"journal": j})
        s = self.start_sub(cp, hp, r.sub_uri)
        self.assertTrue(s.find_log(r"INFO journal: created directory %s$"
                                   % re.escape(os.path.dirname(j))),
                        s.log_text())
        self.assertTrue(os.path.isfile(j))


class NoCatchUp(unittest.TestCase, h.TempDirMixin):
    """store.type none: no catch-up, said at the start and by --check;
    mongodb: --check says where the catch-up reads."""

    TAIL = "; events published while event-sub is not subscribed are not run"

    def check(self, store):
        """(tmp, cfg, config path, handlers path), --check's line checked
        to say why there is no catch-up."""
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        cfg = h.make_config(tmp, store=store)
        cp = h.write_json(os.path.join(tmp, "c.json"), cfg)
        hp = h.write_json(os.path.join(tmp, "h.json"), {})
        out = subprocess.run([h.binary("event-sub"), "-c", cp, "-e", hp,
                              "--check"], capture_output=True, text=True,
                             timeout=h.WAIT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return tmp, cfg, cp, hp, out.stdout

    def test_store_none_says_so(self):
        line = ("no catch-up: store.type none keeps no events to read back"
                + self.TAIL)
        tmp, cfg, cp, hp, out = self.check({"type": "none"})
        self.assertIn(line + "\n", out)
        r = h.Router(tmp, cfg, level="info")
        self.addCleanup(r.kill)
        r.wait_ready()
        s = h.Sub(tmp, cp, hp, r.sub_uri, level="info")
        self.addCleanup(s.kill)
        s.wait_ready()
        self.assertTrue(s.find_log(r"INFO " + re.escape(line) + "$"),
                        s.log_text())
        s.stop()
        self.assertFalse(os.path.exists(os.path.join(tmp,
                                                     "event-sub.journal")))
        # on a one-frame stream, what readiness does not promise then
        # (event-sub(8), "ready connected to")
        one = dict(cfg, subscriber={"uri": r.pubs[0]})
        cp1 = h.write_json(os.path.join(tmp, "c1.json"), one)
        s = h.Sub(tmp, cp1, hp, r.pubs[0], level="info")
        self.addCleanup(s.kill)
        s.wait_log(r"INFO ready connected to %s \(one frame per event: "
                   r"events the router publishes before it has our "
                   r"subscription are not seen; a \"topic\" output confirms "
                   r"it\)$" % re.escape(r.pubs[0]))
        s.stop()

    def test_mongodb_store_says_where_it_reads(self):
        # with store.type mongodb the catch-up reads the database back; the
        # journal goes beside the spool (test_catch_up_mongo runs it)
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        _, _, _, _, out = self.check({
            "type": "mongodb", "uri": "mongodb://u:secret@127.0.0.1:1/er",
            "spool_path": os.path.join(tmp, "spool.db")})
        self.assertIn("catch-up from mongodb database er, journal %s: stored "
                      "events not received are run when at most 3600 s old "
                      "and among the newest 100000 (subscriber.catch_up; 0: "
                      "no bound)\n" % os.path.join(tmp, "event-sub.journal"),
                      out)
        self.assertNotIn("secret", out)

if __name__ == "__main__":
    unittest.main()
