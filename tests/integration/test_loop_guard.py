"""Loop guard: an event fired by a handler (fire-event run by event-sub:
ER_EVENT_ID and ER_EVENT_HOPS in its environment) carries parent_event
and hops; the router refuses an event whose hops is over
limits.max_hops with loop_detected, so a handler that fires the event it
reacts to stops after max_hops + 1 runs, the last one failed with the
refusal recorded; bad hops values and settings are refused."""

import json
import os
import subprocess

import harness as h
from test_event_sub import SubTestCase


class LoopGuard(SubTestCase):

    @classmethod
    def handlers(cls, tmp):
        # the router runs by now (RouterTestCase.setUpClass); the event
        # comes last, as -d: the new event's payload
        return {"loop.*": [{"driver": "shell", "handler": "%s -u %s -e "
                            "loop.again -d" % (h.binary("fire-event"),
                                               cls.router.rep)}]}

    def test_a_handler_firing_its_own_event_stops_at_max_hops(self):
        _, first = self.fire_raw(json.dumps({"event_type": "loop.start"}))
        self.router.wait_log(
            r"WARNING event rejected on rep: loop_detected: hops 9 is over "
            r"limits.max_hops 8: handlers fire the events that run them "
            r"\(parent_event says which\)$")
        rows = h.db_query(self.router.store_path, "SELECT id, body FROM "
                          "events ORDER BY id") or []
        chain = [json.loads(b) for _, b in rows]
        self.assertEqual(len(chain), 9, chain)       # hops 0 to 8
        self.assertEqual(chain[0]["id"], first["id"])
        self.assertNotIn("hops", chain[0])
        for i, ev in enumerate(chain[1:], 1):
            self.assertEqual((ev["event_type"], ev["hops"],
                              ev["parent_event"]),
                             ("loop.again", i, chain[i - 1]["id"]))
        # each ran its handler once; the last run's fire-event was refused
        last = h.wait_results(self.router.store_path, chain[-1]["id"], 1)[0]
        self.assertEqual((last["status"], last["exit_code"]),
                         ("failed", 65), last)
        self.assertIn("fire-event: the router refused the event: "
                      "loop_detected: hops 9 is over limits.max_hops 8",
                      last["stderr"])
        for ev in chain[:-1]:
            r = h.wait_results(self.router.store_path, ev["id"], 1)
            self.assertEqual(r[0]["status"], "ok", r)
        self.sub.stop()
        self.assertEqual(len(h.result_rows(self.router.store_path)), 9)

    def test_bad_hops_refused(self):
        for hops in (-1, "1", 1.5, 1001, None):
            with self.subTest(hops=hops):
                reply = json.loads(h.request(self.req_socket(), json.dumps(
                    {"event_type": "other.x", "hops": hops}).encode()))
                self.assertEqual(reply, {"error": {
                    "code": "invalid_hops", "message": "hops must be an "
                    "integer from 0 to 1000 (handler runs since the first "
                    "event of its chain)"}})
        # within the limit: taken, as sent
        _, ev = self.fire_raw(json.dumps({"event_type": "other.y",
                                          "hops": 8}))
        self.assertEqual(ev["hops"], 8)


class MaxHopsSetting(h.RouterTestCase):

    def test_bounds(self):
        path = os.path.join(self.tmp, "hops.json")
        with open(path, "w") as f:
            f.write('{"store": {"type": "none"},\n "limits": {"max_hops": '
                    '1001}}\n')
        cp = subprocess.run([h.binary("event-router"), "--check", "-c",
                             path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(cp.returncode, 78, cp.stderr)
        self.assertIn("%s:2:25: \"max_hops\" must be an integer from 0 to "
                      "1000" % path, cp.stderr)
