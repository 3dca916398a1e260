"""event-router's PULL input (feeders PUSH events, nothing is sent back)."""

import json
import signal
import sqlite3
import threading
import time
import unittest

import zmq

import harness as h


class PullPath(h.RouterTestCase):

    def test_push_event_arrives_on_pub_and_in_store(self):
        pub = self.listener()
        push = self.push_socket()
        marker = "pull-%d" % id(self)
        sent = '{ "event_type": "pushed.event", "payload": {"m": "%s", "n": 1.50} }' % marker
        push.send(sent.encode())

        def mine(topic, body):
            ev = json.loads(body)
            return isinstance(ev.get("payload"), dict) and \
                ev["payload"].get("m") == marker
        topic, body = pub.wait_event(mine, what="pushed event on PUB")
        self.assertEqual(topic, b"local:pushed.event")
        ev = json.loads(body)
        self.assertRegex(ev["id"], h.OBJECTID_RE)
        self.assertEqual(ev["namespace"], "local")
        self.assertIsInstance(ev["timestamp"], (int, float))
        self.assertEqual(h.top_level_keys(body)[:3],
                         ["id", "namespace", "timestamp"])
        self.assertTrue(body.endswith(h.minify_json(sent)[1:].encode()), body)
        row = h.wait_event_row(self.router.store_path, ev["id"])
        self.assertEqual(row[1:3], (b"local", b"pushed.event"))
        self.assertEqual(row[4], body)

    def test_push_with_namespace(self):
        pub = self.listener()
        push = self.push_socket()
        push.send(b'{"event_type":"t","namespace":"feeder7","payload":7}')
        topic, body = pub.wait_event(lambda t, b: t == b"feeder7:t")
        ev = json.loads(body)
        self.assertEqual(ev["namespace"], "feeder7")
        self.assertEqual(ev["payload"], 7)

    def test_rejected_pull_message_logged_router_keeps_going(self):
        pub = self.listener()
        push = self.push_socket()
        push.send(b"definitely { not json")
        self.router.wait_log(r"event rejected on pull: invalid_json")
        push.send_multipart([b'{"event_type":"a"}', b'{"event_type":"b"}'])
        self.router.wait_log(r"event rejected on pull: multipart")
        push.send(b'{"event_type": "after.reject", "payload": "still here"}')
        topic, body = pub.wait_event(lambda t, b: t == b"local:after.reject")
        ev = json.loads(body)
        self.assertEqual(ev["payload"], "still here")
        # the rejected ones were not published
        pub.drain(0.2)
        self.assertEqual([t for t, _ in pub.events], [b"local:after.reject"])
        # REP still works too
        ok = h.request(self.req_socket(), b'{"event_type":"rep.after"}')
        self.assertStamped(ok)


if __name__ == "__main__":
    unittest.main()


class StopDuringBurst(unittest.TestCase, h.TempDirMixin):
    """SIGTERM while a sender pushes a burst: the router keeps taking what
    the sender has handed over until the PULL socket is quiet, so every
    event the sender's zmq_send() took is stored (event-router(8),
    SIGNALS)."""

    N = 200000

    def test_sigterm_mid_burst_loses_nothing_handed_over(self):
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        r = h.Router(tmp, h.make_config(tmp))
        self.addCleanup(r.kill)
        r.wait_ready()
        push = h.zsock(zmq.PUSH, r.pull)
        self.addCleanup(push.close, 0)
        push.setsockopt(zmq.SNDTIMEO, 10000)
        sent = 0
        for i in range(self.N):
            if i == self.N // 4:
                r.proc.send_signal(signal.SIGTERM)
            try:
                push.send(b'{"event_type":"burst","payload":%d}' % i)
            except zmq.Again:
                break       # the router is gone: nothing more handed over
            sent += 1
        self.assertEqual(r.stop(), 0)
        m = r.find_log(r"inputs drained: (\d+) messages taken after the "
                       r"stop")
        self.assertIsNotNone(m, r.log_text())
        self.assertGreater(int(m.group(1)), 0)
        db = sqlite3.connect(r.store_path)
        self.addCleanup(db.close)
        stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
        self.assertEqual(stored, sent)

    def test_a_sender_that_never_pauses_is_cut_off(self):
        # about one event a millisecond, never a 200 ms pause: the drain
        # ends at its 5 s bound, with a warning
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        r = h.Router(tmp, h.make_config(tmp))
        self.addCleanup(r.kill)
        r.wait_ready()
        done = threading.Event()
        sent = [0]

        def pusher():
            push = h.zsock(zmq.PUSH, r.pull)
            push.setsockopt(zmq.SNDTIMEO, 100)
            while not done.is_set():
                try:
                    push.send(b'{"event_type":"endless"}')
                    sent[0] += 1
                except zmq.Again:
                    pass
                time.sleep(0.001)
            push.close(0)
        t = threading.Thread(target=pusher)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(done.set)
        h.wait_until(lambda: sent[0] > 100, what="the sender under way")
        self.assertEqual(r.stop(), 0)
        self.assertIsNotNone(r.find_log(
            r"WARNING inputs still busy after 5000 ms \(a sender still "
            r"pushing, or feeders' requests\): abandoning what they hold"),
            r.log_text())
