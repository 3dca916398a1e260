"""event-router's PULL input (feeders PUSH events, nothing is sent back)."""

import json
import unittest

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
