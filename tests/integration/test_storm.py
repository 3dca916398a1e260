"""Storm guards (event-sub(8) "Storms"): a handler's "dedupe" runs once
per key value within its window, each repeat recorded deduplicated; its
"rate" runs at most its burst at once, the rest recorded throttled;
neither is queued; bad settings are refused with file:line:column."""

import collections
import json
import os
import signal
import subprocess

import harness as h
from test_event_sub import SubTestCase


class Storm(SubTestCase):

    @classmethod
    def handlers(cls, tmp):
        return {
            "alert.*": [{"driver": "shell", "handler": "true",
                         "dedupe": {"window": 3600,
                                    "key": "/payload/groupKey"}}],
            # 1 run every 1000 s: the burst, then nothing for the test
            "burst.*": [{"driver": "shell", "handler": "true",
                         "rate": {"per_second": 0.001, "burst": 3}}],
        }

    def push(self, events):
        sock = h.zsock(h.zmq.PUSH, self.router.pull)
        try:
            for ev in events:
                sock.send(json.dumps(ev).encode())
        finally:
            sock.close(1000)

    def rows(self, event_type):
        out = []
        for r in h.result_rows(self.router.store_path):
            row = h.db_query(self.router.store_path, "SELECT body FROM "
                             "events WHERE id = ?", (r["event_id"],))
            if not row:     # a PULL event is published before it is stored
                continue    # (event-reactor(7)): its row comes later
            ev = json.loads(row[0][0])
            if ev["event_type"] == event_type:
                out.append((ev, r))
        return out

    def test_alert_storm_runs_once_per_group_key(self):
        groups = ["{}:{alertname=\"Disk%d\"}" % i for i in range(5)]
        self.push([{"event_type": "alert.firing",
                    "payload": {"groupKey": groups[i % 5], "n": i}}
                   for i in range(1000)])
        h.wait_until(lambda: len(self.rows("alert.firing")) >= 1000,
                     60, "1000 results of the storm", interval=0.3)
        by = collections.defaultdict(collections.Counter)
        for ev, r in self.rows("alert.firing"):
            by[ev["payload"]["groupKey"]][r["status"]] += 1
            if r["status"] == "deduplicated":
                self.assertEqual(r["error"], "a repeat of /payload/groupKey "
                                 "%s within its dedupe window of 3600 s"
                                 % json.dumps(ev["payload"]["groupKey"]))
        self.assertEqual(dict(by), {g: collections.Counter(
            {"ok": 1, "deduplicated": 199}) for g in groups})
        # set aside on purpose: logged at DEBUG, never as a WARNING
        self.assertIsNone(self.sub.find_log(r"WARNING handler .*: "
                                            r"deduplicated: "))
        self.assertTrue(self.sub.find_log(
            r"DEBUG handler \S+ \(true\) for event [0-9a-f]{24}: "
            r"deduplicated: a repeat of /payload/groupKey "))
        # alerts without a group key always run
        self.push([{"event_type": "alert.nokey", "payload": {"n": i}}
                   for i in range(3)])
        h.wait_until(lambda: len(self.rows("alert.nokey")) >= 3, 30,
                     "3 results", interval=0.3)
        self.assertEqual([r["status"] for _, r in self.rows("alert.nokey")],
                         ["ok"] * 3)
        # a reload starts afresh: the next alert of a group runs again
        self.sub.proc.send_signal(signal.SIGHUP)
        self.sub.wait_log(r"INFO reloaded: ")
        self.push([{"event_type": "alert.again",
                    "payload": {"groupKey": groups[0]}}])
        h.wait_until(lambda: self.rows("alert.again"), 30, "its result",
                     interval=0.3)
        self.assertEqual([r["status"] for _, r in self.rows("alert.again")],
                         ["ok"])

    def test_rate_throttles_and_records(self):
        self.push([{"event_type": "burst.x", "payload": {"n": i}}
                   for i in range(10)])
        h.wait_until(lambda: len(self.rows("burst.x")) >= 10, 30,
                     "10 results", interval=0.3)
        got = collections.Counter(r["status"] for _, r in
                                  self.rows("burst.x"))
        self.assertEqual(got, {"ok": 3, "throttled": 7})
        for _, r in self.rows("burst.x"):
            if r["status"] == "throttled":
                self.assertEqual(r["error"], "over its rate of 0.001 runs "
                                 "a second (burst 3)")
                self.assertIsNone(r["exit_code"])
        self.assertIsNone(self.sub.find_log(r"WARNING handler .*: "
                                            r"throttled: "))
        self.assertTrue(self.sub.find_log(
            r"DEBUG handler \S+ \(true\) for event [0-9a-f]{24}: "
            r"throttled: over its rate of 0\.001 runs a second \(burst 3\)$"))


class StormSettings(h.RouterTestCase):

    def test_bad_settings(self):
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic"}
        cpath = h.write_json(os.path.join(self.tmp, "sub.json"), cfg)
        path = os.path.join(self.tmp, "h.json")
        for extra, col, msg in (
                ('"rate": {"burst": 2}', 18,
                 '"rate" without "per_second"'),
                ('"rate": {"per_second": 0}', 33,
                 '"per_second" must be a number from 1e-09 to 1000000'),
                ('"dedupe": {"window": 60}', 20,
                 '"dedupe" needs "window" (seconds) and "key" (a JSON '
                 'pointer)'),
                ('"dedupe": {"window": 60, "key": "groupKey"}', 42,
                 'bad JSON pointer "groupKey": it must be empty or begin '
                 'with "/" (RFC 6901)')):
            with self.subTest(extra=extra):
                with open(path, "w") as f:
                    f.write('{"x": [{"driver": "shell", "handler": "true",\n'
                            '         %s}]}\n' % extra)
                cp = subprocess.run([h.binary("event-sub"), "--check", "-c",
                                     cpath, "-e", path],
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    timeout=30)
                self.assertEqual(cp.returncode, 78, cp.stderr)
                self.assertIn("ERROR %s:2:%d: %s\n" % (path, col, msg),
                              cp.stderr)
