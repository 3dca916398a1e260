"""event-router on the REP input: stamping, byte equality reply == PUB ==
store, ObjectId, timestamps, namespaces."""

import json
import os
import re
import subprocess
import time
import unittest

import harness as h


def ts_text(body):
    """The exact text of the top-level "timestamp" member of compact JSON."""
    m = re.search(rb'"timestamp":(-?[0-9][0-9.eE+-]*)', body)
    return m.group(1) if m else None


# The default one-frame stream, and beside it the opt-in two-frame one.
TWO_OUTPUTS = {"outputs": [
    {"handler": "zeromq", "config": {"listen_address": "127.0.0.1",
                                     "port": 0}},
    {"handler": "zeromq", "config": {"listen_address": "127.0.0.1",
                                     "port": 0, "framing": "topic"}}]}


class RepStamping(h.RouterTestCase):
    router_kwargs = {"extra": TWO_OUTPUTS}

    def fire(self, data):
        sock = self.req_socket()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return h.request(sock, data)

    def test_reply_carries_id_timestamp_namespace(self):
        before = time.time()
        reply = self.fire('{"event_type": "test.basic", "payload": {"a": 1}}')
        after = time.time()
        ev = self.assertStamped(reply, namespace="local")
        self.assertEqual(ev["event_type"], "test.basic")
        self.assertEqual(ev["payload"], {"a": 1})
        # router's clock, microsecond precision
        self.assertGreaterEqual(ev["timestamp"], before - 1)
        self.assertLessEqual(ev["timestamp"], after + 1)
        frac = ts_text(reply).decode().partition(".")[2]
        self.assertLessEqual(len(frac.rstrip("0")), 6, reply)
        # ObjectId: first 4 bytes are the seconds
        secs = int(ev["id"][:8], 16)
        self.assertLessEqual(abs(secs - before), 5, ev["id"])

    def test_stamp_fields_inserted_at_front_and_rest_kept_verbatim(self):
        sent = ('{ "event_type" : "test.verbatim",\n'
                '  "payload": {"n": 1.50, "e": 1E+2, "big": 12345678901234567890e-5,'
                ' "s": "caf\\u00e9 \\/ \\"q\\"", "u": "上海", "arr": [ 1 , 2 ,'
                ' {"z": null, "t": true, "f": false}],  "neg": -0.0},\n'
                '  "parent_event": "5f1e2d3c4b5a697887766554",'
                ' "zzz": {}, "aaa": [] }')
        reply = self.fire(sent)
        ev = self.assertStamped(reply)
        self.assertEqual(h.top_level_keys(reply)[:3],
                         ["id", "namespace", "timestamp"], reply)
        expected = ('{"id":"%s","namespace":"local","timestamp":%s,'
                    % (ev["id"], ts_text(reply).decode())
                    + h.minify_json(sent)[1:])
        self.assertEqual(reply, expected.encode("utf-8"))

    def test_reply_equals_pub_frame_equals_store_body(self):
        pub = self.listener()
        tpub = self.listener(self.router.pubs[1], framing="topic")
        payload = h.load_fixture("alertmanager-firing.json")
        sent = json.dumps({"event_type": "alert.firing",
                           "namespace": "alertmanager",
                           "payload": payload}, indent=1, ensure_ascii=False)
        reply = self.fire(sent)
        ev = self.assertStamped(reply, namespace="alertmanager")
        # one frame, the event, on the default stream
        _, body = pub.wait_id(ev["id"])
        self.assertEqual(body, reply)
        topic, body = tpub.wait_id(ev["id"])
        self.assertEqual(topic, b"alertmanager:alert.firing")
        self.assertEqual(body, reply)
        row = h.wait_event_row(self.router.store_path, ev["id"])
        rid, ns, et, ts, sbody = row
        self.assertEqual(rid, ev["id"].encode())
        self.assertEqual(ns, b"alertmanager")
        self.assertEqual(et, b"alert.firing")
        self.assertEqual(ts, ev["timestamp"])
        self.assertEqual(sbody, reply)
        self.assertEqual(json.loads(reply)["payload"], payload)

    def test_pub_topic_is_namespace_colon_event_type(self):
        pub = self.listener(self.router.pubs[1], framing="topic")
        for ns, et in [("local", "plain"), ("open stack", "compute.instance.create.end"),
                       ("ns:with:colons", "t"), ("上海", "类型")]:
            sent = {"event_type": et}
            if ns != "local":
                sent["namespace"] = ns
            reply = self.fire(json.dumps(sent))
            ev = self.assertStamped(reply, namespace=ns)
            topic, body = pub.wait_id(ev["id"])
            self.assertEqual(topic, ("%s:%s" % (ns, et)).encode("utf-8"))
            self.assertEqual(body, reply)

    def test_namespace_sent_is_kept_in_place(self):
        reply = self.fire('{"event_type":"x","namespace":"custom","payload":1}')
        self.assertStamped(reply, namespace="custom")
        keys = h.top_level_keys(reply)
        self.assertEqual(keys, ["id", "timestamp", "event_type", "namespace",
                                "payload"], reply)
        self.assertEqual(keys.count("namespace"), 1)

    def test_timestamp_kept_exactly_when_sent(self):
        for text in ["1764425000.123456789", "1700000000", "0", "-12.5",
                     "1.7644250001234568e9", "1764425000.100000"]:
            with self.subTest(timestamp=text):
                sent = '{"event_type":"ts","timestamp":%s,"payload":null}' % text
                reply = self.fire(sent)
                ev = self.assertStamped(reply)
                self.assertEqual(
                    reply,
                    ('{"id":"%s","namespace":"local",' % ev["id"]
                     + sent[1:]).encode(), reply)
                self.assertEqual(ts_text(reply), text.encode())
                row = h.wait_event_row(self.router.store_path, ev["id"])
                self.assertEqual(row[3], float(text))
                self.assertEqual(row[4], reply)

    def test_client_id_replaced(self):
        pub = self.listener()
        fake = "000000000000000000000000"
        reply = self.fire('{"id": "%s", "event_type": "idtest", '
                          '"payload": {"k": [1, 2.5, "s"]}}' % fake)
        ev = self.assertStamped(reply)
        self.assertNotEqual(ev["id"], fake)
        self.assertEqual(h.top_level_keys(reply).count("id"), 1, reply)
        self.assertEqual(ev["payload"], {"k": [1, 2.5, "s"]})
        self.assertEqual(ev["event_type"], "idtest")
        # published and stored bytes are the same re-encoded bytes
        topic, body = pub.wait_id(ev["id"])
        self.assertEqual(body, reply)
        self.assertEqual(h.wait_event_row(self.router.store_path,
                                          ev["id"])[4], reply)
        # a non-string client id is replaced too
        reply = self.fire('{"id": 42, "event_type": "idtest"}')
        ev2 = self.assertStamped(reply)
        self.assertEqual(h.top_level_keys(reply).count("id"), 1, reply)
        self.assertNotEqual(ev2["id"], ev["id"])

    def test_ids_unique_and_ordered(self):
        ids = []
        sock = self.req_socket()
        for i in range(50):
            r = h.request(sock, b'{"event_type":"order","payload":%d}' % i)
            ids.append(self.assertStamped(r)["id"])
        self.assertEqual(len(set(ids)), 50)
        self.assertEqual(ids, sorted(ids))
        # 5 random bytes are per process: the same for all of them
        self.assertEqual(len({i[8:18] for i in ids}), 1, ids[:3])

    def test_parent_event_and_other_fields_kept(self):
        reply = self.fire('{"event_type":"child","parent_event":'
                          '"5f1e2d3c4b5a697887766554","extra":{"x":[1]}}')
        ev = self.assertStamped(reply)
        self.assertEqual(ev["parent_event"], "5f1e2d3c4b5a697887766554")
        self.assertEqual(ev["extra"], {"x": [1]})

    def test_nul_in_payload_is_kept(self):
        pub = self.listener()
        sent = '{"event_type":"nul","payload":"a\\u0000b"}'
        reply = self.fire(sent)
        ev = self.assertStamped(reply)
        self.assertEqual(ev["payload"], "a\x00b")
        self.assertTrue(reply.endswith(sent[1:].encode()), reply)
        self.assertEqual(pub.wait_id(ev["id"])[1], reply)
        self.assertEqual(h.wait_event_row(self.router.store_path,
                                          ev["id"])[4], reply)

    def test_int64_limits_accepted_verbatim(self):
        for text in ["9223372036854775807", "-9223372036854775808"]:
            with self.subTest(n=text):
                reply = self.fire('{"event_type":"i64","payload":%s}' % text)
                self.assertStamped(reply)
                self.assertTrue(reply.endswith(b'"payload":%s}' % text.encode()),
                                reply)

    def test_router_fixture_payloads(self):
        pub = self.listener()
        for name, ns, et in [
                ("alertmanager-firing.json", "alertmanager", "alert.firing"),
                ("github-push.json", "github", "push")]:
            with open(h.fixture_path(name), encoding="utf-8") as f:
                text = f.read()
            sent = ('{"event_type": "%s", "namespace": "%s", "payload": %s}'
                    % (et, ns, text))
            reply = self.fire(sent)
            ev = self.assertStamped(reply, namespace=ns)
            self.assertEqual(
                reply,
                ('{"id":"%s","timestamp":%s,' % (ev["id"],
                                                ts_text(reply).decode())
                 + h.minify_json(sent)[1:]).encode())
            self.assertEqual(pub.wait_id(ev["id"]), (("%s:%s" % (ns, et)).encode(), reply))


class MultipleFeeders(h.RouterTestCase):
    router_kwargs = {"feeders": [
        {"handler": "ZMQInput", "namespace": "local",
         "config": {"uri": "tcp://127.0.0.1:0"}},
        {"handler": "ZMQInput", "namespace": "second",
         "config": {"uri": "tcp://127.0.0.1:0"}},
        {"handler": "ZMQInput", "namespace": "off", "disabled": True,
         "config": {"uri": "tcp://127.0.0.1:0"}},
    ]}

    def test_each_rep_input_stamps_its_namespace(self):
        self.assertEqual(len(self.router.reps), 2, self.router.reps)
        self.assertEqual(len(set(self.router.reps)), 2, self.router.reps)
        r1 = h.request(self.req_socket(self.router.reps[0]),
                       b'{"event_type":"t"}')
        r2 = h.request(self.req_socket(self.router.reps[1]),
                       b'{"event_type":"t"}')
        self.assertStamped(r1, namespace="local")
        self.assertStamped(r2, namespace="second")
        r3 = h.request(self.req_socket(self.router.reps[1]),
                       b'{"event_type":"t","namespace":"explicit"}')
        self.assertStamped(r3, namespace="explicit")


class ConfigHandling(unittest.TestCase, h.TempDirMixin):

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def test_unknown_section_ignored_with_notice(self):
        cfg = h.make_config(self.tmp, extra={
            "celery": {"BROKER_URL": "redis://localhost:6379/0"}})
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        self.assertTrue(r.find_log(r"celery"), r.log_text())
        rep = h.request(self.make_req(r.rep), b'{"event_type":"x"}')
        self.assertIn(b'"id":"', rep)
        r.stop()

    def test_no_rep_input_reads_rep_dash(self):
        # event-router(8): the ready line says "rep=-" without a REP input
        r = h.Router(self.tmp, h.make_config(self.tmp, feeders=[
            {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": 0, "allow_anonymous": True}}]))
        self.addCleanup(r.kill)
        m = r.wait_log(r"\bready pull=\S+ rep=(\S+) pub=\S+ http=\S+$")
        self.assertEqual(m.group(1), "-")
        r.stop()

    def make_req(self, uri):
        s = h.zsock(h.zmq.REQ, uri)
        self.addCleanup(s.close, 0)
        return s

    def test_wrong_type_refuses_start_with_position(self):
        path = os.path.join(self.tmp, "bad.json")
        text = ('{\n'
                '  "aggregator": {"config": {"protocol": "tcp",\n'
                '    "listen_address": "127.0.0.1",\n'
                '    "port": "not-a-port"}},\n'
                '  "store": {"type": "none"}\n'
                '}\n')
        with open(path, "w") as f:
            f.write(text)
        cp = subprocess.run([h.binary("event-router"), "-c", path, "-l",
                             "debug"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=10)
        self.assertNotEqual(cp.returncode, 0)
        err = cp.stderr.decode("utf-8", "replace")
        m = re.search(re.escape(path) + r":(\d+):(\d+)", err)
        self.assertTrue(m, err)
        self.assertEqual(int(m.group(1)), 4, err)
        # the column points at the offending value (1-based, +-1)
        start = text.splitlines()[3].index('"not-a-port"')
        self.assertIn(int(m.group(2)), range(start, start + 14), err)
        self.assertNotRegex(err, r"\bready\b")


if __name__ == "__main__":
    unittest.main()
