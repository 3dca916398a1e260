"""Every rejected kind gets its exact error code on REP, and a valid event
still goes through on the same socket afterwards."""

import json
import re
import unittest

import harness as h

I64_MAX_PLUS_1 = str(2 ** 63).encode()
I64_MIN_MINUS_1 = str(-2 ** 63 - 1).encode()

# (label, raw message bytes or list of frames, expected code)
CASES = [
    ("invalid_json: garbage", b"this is not json", "invalid_json"),
    ("invalid_json: empty message", b"", "invalid_json"),
    ("invalid_json: truncated", b'{"event_type": "x"', "invalid_json"),
    ("invalid_json: trailing garbage", b'{"event_type": "x"} junk',
     "invalid_json"),
    ("invalid_json: single quotes", b"{'event_type': 'x'}", "invalid_json"),
    ("invalid_utf8: lone 0xff", b"\xff", "invalid_utf8"),
    ("invalid_utf8: 0xff in string",
     b'{"event_type": "x", "payload": "a\xffb"}', "invalid_utf8"),
    ("invalid_utf8: overlong", b'{"event_type": "\xc0\xaf"}', "invalid_utf8"),
    ("invalid_utf8: encoded surrogate",
     b'{"event_type": "x", "payload": "\xed\xa0\x80"}', "invalid_utf8"),
    ("not_an_object: []", b"[]", "not_an_object"),
    ("not_an_object: string", b'"x"', "not_an_object"),
    ("not_an_object: number", b"3", "not_an_object"),
    ("not_an_object: null", b"null", "not_an_object"),
    ("not_an_object: array of event", b'[{"event_type": "x"}]',
     "not_an_object"),
    ("duplicate_key: top level", b'{"event_type": "x", "event_type": "y"}',
     "duplicate_key"),
    ("duplicate_key: nested",
     b'{"event_type": "x", "payload": {"a": 1, "b": [{"c": 1, "c": 2}]}}',
     "duplicate_key"),
    ("nul_in_field: event_type", b'{"event_type": "a\\u0000b"}',
     "nul_in_field"),
    ("nul_in_field: namespace",
     b'{"event_type": "x", "namespace": "a\\u0000b"}', "nul_in_field"),
    ("nul_in_field: a key", b'{"event_type": "x", "p": {"k\\u0000": 1}}',
     "nul_in_field"),
    ("non_finite_number: -NaN", b'{"event_type": "x", "n": -NaN}',
     "non_finite_number"),
    ("missing_event_type: {}", b"{}", "missing_event_type"),
    ("missing_event_type: with payload",
     b'{"namespace": "n", "payload": {"event_type": "nested"}}',
     "missing_event_type"),
    ("empty_event_type", b'{"event_type": ""}', "empty_event_type"),
    ("invalid_event_type: number", b'{"event_type": 3}', "invalid_event_type"),
    ("invalid_event_type: null", b'{"event_type": null}',
     "invalid_event_type"),
    ("invalid_event_type: array", b'{"event_type": ["x"]}',
     "invalid_event_type"),
    ("invalid_event_type: object", b'{"event_type": {}}',
     "invalid_event_type"),
    ("invalid_namespace: number", b'{"event_type": "x", "namespace": 3}',
     "invalid_namespace"),
    ("invalid_namespace: empty", b'{"event_type": "x", "namespace": ""}',
     "invalid_namespace"),
    ("invalid_namespace: null", b'{"event_type": "x", "namespace": null}',
     "invalid_namespace"),
    ("invalid_timestamp: now", b'{"event_type": "x", "timestamp": "now"}',
     "invalid_timestamp"),
    ("invalid_timestamp: null", b'{"event_type": "x", "timestamp": null}',
     "invalid_timestamp"),
    ("invalid_timestamp: true", b'{"event_type": "x", "timestamp": true}',
     "invalid_timestamp"),
    ("integer_out_of_range: 2**63",
     b'{"event_type": "x", "payload": ' + I64_MAX_PLUS_1 + b"}",
     "integer_out_of_range"),
    ("integer_out_of_range: -2**63-1",
     b'{"event_type": "x", "payload": {"n": [' + I64_MIN_MINUS_1 + b"]}}",
     "integer_out_of_range"),
    ("integer_out_of_range: timestamp",
     b'{"event_type": "x", "timestamp": 99999999999999999999}',
     "integer_out_of_range"),
    ("non_finite_number: NaN", b'{"event_type": "x", "payload": NaN}',
     "non_finite_number"),
    ("non_finite_number: Infinity",
     b'{"event_type": "x", "payload": Infinity}', "non_finite_number"),
    ("non_finite_number: -Infinity",
     b'{"event_type": "x", "payload": [-Infinity]}', "non_finite_number"),
    ("non_finite_number: 1e999", b'{"event_type": "x", "payload": 1e999}',
     "non_finite_number"),
    ("non_finite_number: -1e999",
     b'{"event_type": "x", "payload": {"v": -1e999}}', "non_finite_number"),
    ("multipart: 2 frames",
     [b'{"event_type": "x"}', b'{"event_type": "y"}'], "multipart"),
    ("multipart: 3 frames", [b'{"event_type": "x"}', b"y", b"z"],
     "multipart"),
]


class Rejections(h.RouterTestCase):

    def check_then_valid(self, sock, data, code, pub, label):
        reply = h.request(sock, data)
        err = self.assertError(reply, code)
        marker = "after %s" % label
        ok = h.request(sock, json.dumps({"event_type": "valid.after",
                                         "payload": marker}).encode())
        ev = self.assertStamped(ok)
        self.assertEqual(ev["payload"], marker)
        self.assertEqual(pub.wait_id(ev["id"])[1], ok)
        return err, ev

    def test_every_rejected_kind_then_valid_on_same_socket(self):
        pub = self.listener()
        sock = self.req_socket()
        accepted = set()
        for label, data, code in CASES:
            with self.subTest(label):
                _, ev = self.check_then_valid(sock, data, code, pub, label)
                accepted.add(ev["id"])
        # nothing from a rejected message was published
        pub.drain(0.2)
        for topic, body in pub.events:
            self.assertIn(json.loads(body)["id"], accepted, (topic, body))
        # nor stored
        rows = h.wait_until(
            lambda: (lambda r: r if r and len(r) >= len(accepted) else None)(
                h.db_query(self.router.store_path,
                           "SELECT id FROM events")),
            what="%d stored events" % len(accepted))
        self.assertEqual({r[0].decode() for r in rows}, accepted)


class RejectionDetails(h.RouterTestCase):

    def test_invalid_json_message_gives_line_column_byte(self):
        sock = self.req_socket()
        data = b'{"event_type": "x",\n  "payload": [1, 2,, 3]}'
        err = self.assertError(h.request(sock, data), "invalid_json")
        msg = err["message"]
        # the second "," of ",," is line 2, column 20 (1-based), byte offset
        # 39 (0-based) -- accept 40 too (jansson counts bytes read)
        self.assertRegex(msg, re.compile(r"\bline\D{0,3}2\b", re.I))
        self.assertRegex(msg, re.compile(r"\bcol(umn)?\D{0,3}20\b", re.I))
        self.assertRegex(msg, re.compile(r"\bbyte\D{0,3}(39|40)\b", re.I))
        ev = self.assertStamped(h.request(sock, b'{"event_type":"ok"}'))
        self.assertTrue(ev["id"])

    def test_error_reply_is_not_published(self):
        pub = self.listener()
        sock = self.req_socket()
        self.assertError(h.request(sock, b'{"event_type": ""}'),
                         "empty_event_type")
        ok = h.request(sock, b'{"event_type": "after.error"}')
        ev = self.assertStamped(ok)
        topic, body = pub.wait_id(ev["id"])
        # the valid event is the first event on the stream
        self.assertEqual(pub.events[0], (topic, body))


class TooLarge(h.RouterTestCase):
    router_kwargs = {"max_event_size": 1024}

    def sized(self, n):
        head = b'{"event_type": "big", "payload": "'
        tail = b'"}'
        return head + b"x" * (n - len(head) - len(tail)) + tail

    def test_too_large_then_valid(self):
        pub = self.listener()
        sock = self.req_socket()
        data = self.sized(2000)
        self.assertEqual(len(data), 2000)
        self.assertError(h.request(sock, data), "too_large")
        ok = h.request(sock, b'{"event_type": "small"}')
        ev = self.assertStamped(ok)
        self.assertEqual(pub.wait_id(ev["id"])[1], ok)

    def test_limit_boundary(self):
        sock = self.req_socket()
        self.assertError(h.request(sock, self.sized(1025)), "too_large")
        # exactly max_event_size is not longer than the limit
        ev = self.assertStamped(h.request(sock, self.sized(1024)))
        self.assertEqual(ev["event_type"], "big")
        # far beyond the limit, the largest frame still read (a larger
        # one cuts the connection: test_hostile_peers.BigRepFrame)
        self.assertError(h.request(sock, self.sized(1024 + 65536)),
                         "too_large")
        self.assertStamped(h.request(sock, b'{"event_type": "small"}'))


if __name__ == "__main__":
    unittest.main()
