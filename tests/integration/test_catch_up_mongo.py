"""Every stored event gets its handler runs with a MongoDB store too
(event-reactor(7), "Delivery promises"): event-sub reads back from the
database what it did not receive (a late start, kill -9), the catch-up
window by count logs what it leaves out, and an event stored late with an
id older than the position is not caught up (a limit of MongoDB only).
--check's line: test_catch_up.NoCatchUp.
Against mongo_server.py, or a real MongoDB (ER_TEST_MONGODB_URI; see
test_mongo.py)."""

import collections
import os
import re
import signal
import sqlite3

import harness as h
import test_mongo as tm
from bson.objectid import ObjectId
from test_catch_up import RUNS_TIMEOUT, in_flight, push


class CatchUpMongo(tm.MongoTestCase):

    def count(self, coll, flt=None):
        return tm.wire_call(self.server, lambda w: w.command(
            self.db, {"count": coll, "query": flt or {}}))["n"]

    def runs(self):
        """{event id: [(status, redelivered)]} of the results stored."""
        out = collections.defaultdict(list)
        for d in self.find("results"):
            out[str(d["event_id"])].append((d["status"], d["redelivered"]))
        return out

    def with_ok_run(self):
        return sum(1 for v in self.runs().values()
                   if any(st == "ok" for st, _ in v))

    def wait_all_run(self, n, what):
        h.wait_until(lambda: self.with_ok_run() >= n, RUNS_TIMEOUT,
                     "%s: an ok run for each of %d events" % (what, n))
        ok = {eid for eid, v in self.runs().items()
              if any(st == "ok" for st, _ in v)}
        return [str(d["_id"]) for d in self.find("events")
                if str(d["_id"]) not in ok]

    def journal(self):
        # the default with mongodb: beside the spool
        return os.path.join(self.tmp, "event-sub.journal")

    def setUp(self):
        super().setUp()
        if os.path.exists(self.journal()):
            os.unlink(self.journal())

    def router(self):
        return self.start_router()

    def sub_config(self, r, subscriber=None):
        cfg = dict(r.config)
        cfg["subscriber"] = dict({"uri": r.sub_uri, "framing": "topic"},
                                 **(subscriber or {}))
        cp = h.write_json(os.path.join(self.tmp, "sub-%s.json" % self.db),
                          cfg)
        hp = h.write_json(os.path.join(self.tmp, "h-%s.json" % self.db),
                          {"*": [{"driver": "shell",
                                  "handler": "/bin/true"}]})
        return cp, hp

    def sub(self, cp, hp, r):
        s = h.Sub(self.tmp, cp, hp, r.sub_uri, level="info")
        self.addCleanup(s.kill)
        # after a kill it reads the stream (and so the router's reply to
        # its subscription) once its queue has room beside the catch-up's
        # runs: on a busy machine that can take more than READY_TIMEOUT
        s.wait_ready(RUNS_TIMEOUT)
        return s

    def stored(self, r, n, tag, total=None):
        push(r.pull, n, tag)
        total = total or n
        h.wait_until(lambda: self.count("events") == total, RUNS_TIMEOUT,
                     "%d events stored" % total)

    def test_started_after_the_events_were_stored(self):
        n = 300
        r = self.router()
        cp, hp = self.sub_config(r)
        self.stored(r, n, "late")
        s = self.sub(cp, hp, r)
        self.assertTrue(s.find_log(
            r"INFO catch-up from mongodb database %s, journal %s: stored "
            r"events not received are run" % (self.db,
                                               re.escape(self.journal()))),
            s.log_text())
        self.assertEqual(self.wait_all_run(n, "late start"), [])
        s.wait_log(r"INFO catch-up: done, the handlers of %d stored events "
                   r"run$" % n)
        s.stop()
        self.assertEqual(self.count("results"), n)
        self.assertTrue(s.find_log(r"stopped: .*caught up from the store "
                                   r"%d, processes left behind by runs "
                                   r"killed 0$" % n), s.log_text())

    def test_kill_9_twice_every_event_runs_duplicates_only_in_flight(self):
        n = 2000
        r = self.router()
        cp, hp = self.sub_config(r)
        s = self.sub(cp, hp, r)
        push(r.pull, n, "kill")
        flight = 0
        for at in (n // 5, n // 2):
            h.wait_until(lambda: self.count("results", {"status": "ok"})
                         >= at, RUNS_TIMEOUT, "%d events run" % at)
            s.proc.send_signal(signal.SIGKILL)
            s.proc.wait(timeout=h.WAIT_TIMEOUT)
            flight += in_flight(self.journal())
            s = self.sub(cp, hp, r)
        h.wait_until(lambda: self.count("events") == n, RUNS_TIMEOUT,
                     "%d events stored" % n)
        self.assertEqual(self.wait_all_run(n, "after two kills"), [])
        s.stop()
        twice = {eid: v for eid, v in self.runs().items() if len(v) > 1}
        self.assertLessEqual(len(twice), flight, list(twice.items())[:10])
        for eid, v in twice.items():
            self.assertEqual(sorted(red for _, red in v), [False, True], eid)
        self.assertTrue(s.find_log(r"catch-up: running the handlers of "
                                   r"stored events event-sub did not "
                                   r"receive"), s.log_text())

    def test_window_max_count_runs_the_newest(self):
        r = self.router()
        cp, hp = self.sub_config(r, {"catch_up": {"max_count": 3}})
        self.stored(r, 10, "ten")
        s = self.sub(cp, hp, r)
        h.wait_until(lambda: self.with_ok_run() == 3, RUNS_TIMEOUT,
                     "the 3 newest run")
        s.wait_log(r"WARNING catch-up: 7 stored events outside the catch-up "
                   r"window \(subscriber\.catch_up: max_age 3600 s, "
                   r"max_count 3\) not run$")
        s.stop()
        ns = {str(d["_id"]): d["n"] for d in self.find("events")}
        self.assertEqual(sorted(ns[eid] for eid in self.runs()), [7, 8, 9])

    def position(self):
        """The journal's position (read once event-sub is gone)."""
        con = sqlite3.connect(self.journal(), timeout=10)
        try:
            return con.execute("SELECT id FROM position").fetchone()[0]
        finally:
            con.close()

    def settled(self, cp, hp, r):
        """event-sub started and stopped until its journal's position is
        an event: "" (none yet) while the runs settle."""
        def once():
            self.sub(cp, hp, r).stop()
            return self.position()
        return h.wait_until(once, RUNS_TIMEOUT, "a position in the journal")

    def test_an_event_stored_late_with_an_older_id_is_not_caught_up(self):
        r = self.router()
        cp, hp = self.sub_config(r)
        self.stored(r, 5, "first")
        s = self.sub(cp, hp, r)
        self.assertEqual(self.wait_all_run(5, "the first five"), [])
        s.stop()
        pos = ObjectId(self.settled(cp, hp, r))
        # a router's spool replayed after an outage: an id older than the
        # position, stored now, never published to this event-sub
        late = ObjectId.from_datetime(pos.generation_time)
        self.assertLess(late, pos)
        tm.wire_call(self.server, lambda w: w.command(self.db, {
            "insert": "events", "documents": [{
                "_id": late, "namespace": "local", "event_type": "late",
                "timestamp_raw": 1}]}))
        self.stored(r, 10, "second", 16)
        s = self.sub(cp, hp, r)
        self.assertEqual(self.wait_all_run(15, "the later ten"), [str(late)])
        s.stop()
        self.assertNotIn(str(late), self.runs())


if __name__ == "__main__":
    import unittest
    unittest.main()
