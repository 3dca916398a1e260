"""The amqp output against a real RabbitMQ (rabbit.py): every accepted
event is published, in order, to a durable topic exchange as a persistent
message with publisher confirms (routing key NAMESPACE.EVENT_TYPE, the
body the stamped event as on the PUB stream); while the broker is away
REP keeps answering and events wait in the spool, published on its
return; the spool survives a router restart; a message no queue takes is
returned, counted and logged; bad settings are refused with
file:line:column."""

import json
import os
import re
import subprocess
import unittest

import harness as h
import test_metrics as tm
import rabbit

EXCHANGE = "er-test-events"
DEPTH = "eventreactor_amqp_output_spool_depth"


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class AmqpOutput(rabbit.broker_test_case()):

    def setUp(self):
        super().setUp()
        self.queue = "er-out-" + self._testMethodName
        self.spool = os.path.join(self.tmp, self._testMethodName + ".spool")

    # helpers -----------------------------------------------------------
    def bind(self, key="#"):
        """A durable queue of the test's, bound to the exchange with key
        (the exchange declared as the output declares it), deleted after
        the test: a later test's events must not find it."""
        ch = self.channel()
        self.addCleanup(self.broker.ctl, "delete_queue", self.queue)
        ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        ch.queue_declare(self.queue, durable=True)
        ch.queue_purge(self.queue)
        ch.queue_bind(self.queue, EXCHANGE, routing_key=key)
        return ch

    def config(self, **conf):
        return h.make_config(
            self.tmp, store_path=os.path.join(self.tmp,
                                              self._testMethodName + ".db"),
            extra={"outputs": [
                {"handler": "zeromq", "config": {
                    "listen_address": "127.0.0.1", "port": 0,
                    "framing": "topic"}},
                {"handler": "amqp", "config": dict(
                    {"url": self.broker.url, "exchange": EXCHANGE,
                     "spool": self.spool}, **conf)}],
                "metrics": {"listen": "127.0.0.1:0"}})

    def start(self, wait_broker=True, **conf):
        r = h.Router(self.tmp, self.config(**conf))
        self.daemons.append(r)
        r.wait_ready()
        if wait_broker:
            r.wait_log(r"amqp output: publishing to exchange %s on "
                       r"amqp://%s@127\.0\.0\.1:%d/$" % (
                           EXCHANGE, self.broker.user, self.broker.port),
                       timeout=20)
        return r

    def fire(self, r, n, event_type="out.test"):
        sock = h.zsock(h.zmq.REQ, r.rep)
        ids = []
        try:
            for i in range(n):
                reply = json.loads(h.request(sock, json.dumps(
                    {"event_type": event_type, "payload": {"i": i}}).encode()))
                self.assertNotIn("error", reply)
                ids.append(reply["id"])
        finally:
            sock.close(0)
        return ids

    def consume(self, ch, n, timeout=h.WAIT_TIMEOUT):
        """n messages from the test's queue (acknowledged), in order."""
        got = []
        for method, props, body in ch.consume(self.queue,
                                              inactivity_timeout=timeout):
            if method is None:
                break
            ch.basic_ack(method.delivery_tag)
            got.append((method.routing_key, props, body))
            if len(got) == n:
                break
        ch.cancel()
        return got

    def stored_body(self, r, event_id):
        return h.wait_event_row(r.store_path, event_id)[4]

    def stop_line(self, r):
        return r.find_log(r"amqp output: stopped: .*").group(0)

    # tests -------------------------------------------------------------
    def test_published_in_order_persistent_with_the_stored_text(self):
        ch = self.bind()
        r = self.start()
        self.assertTrue(r.find_log(h.ROUTER_READY_RE.pattern + ".*").group(0)
                        .endswith(" exchange=%s@amqp://%s@127.0.0.1:%d/" % (
                            EXCHANGE, self.broker.user, self.broker.port)))
        ids = self.fire(r, 200)
        got = self.consume(ch, 200)
        self.assertEqual([p.message_id for _, p, _ in got], ids)
        for (key, props, body), event_id in zip(got, ids):
            self.assertEqual(key, "local.out.test")
            self.assertEqual(props.delivery_mode, 2)
            self.assertEqual(props.content_type, "application/json")
            self.assertEqual(body, self.stored_body(r, event_id))
        r.stop()
        self.assertEqual(self.stop_line(r), "amqp output: stopped: "
                         "published 200, confirmed 200, returned 0, "
                         "refused 0, dropped 0, left in the spool 0, "
                         "reconnections 0")

    def test_broker_away_rep_answers_and_the_spool_keeps_them(self):
        ch = self.bind()
        r = self.start()
        before = self.fire(r, 10)
        self.assertEqual(len(self.consume(ch, 10)), 10)
        for c in self.conns:
            c.close()
        self.conns = []
        self.broker.stop()
        try:
            # REP and PUB go on while RabbitMQ is away
            self.router = r
            pub = self.listener()
            during = self.fire(r, 300)
            pub.wait_id(during[-1])
            # the outage: the connection lost, then said once unavailable
            r.wait_log(r"WARNING amqp output: broker amqp://\S+ "
                       r"unavailable: .*; events wait in the spool", timeout=20)
            # /metrics: the spool holds the 300 (and what was unconfirmed)
            port = tm.metrics_port(r)
            h.wait_until(lambda: 300 <= tm.value(tm.scrape(port), DEPTH)
                         <= 310, what="300 to 310 events in the spool")
        finally:
            self.broker.start()
        r.wait_log(r"amqp output: broker amqp://%s@127\.0\.0\.1:%d/ is back "
                   r"after [0-9.]+ s: publishing to exchange %s"
                   % (self.broker.user, self.broker.port, EXCHANGE),
                   timeout=60)
        after = self.fire(r, 10)
        ch = self.channel()
        got = [p.message_id for _, p, _ in self.consume(ch, 310 + 10)]
        # at least once, in order: duplicates only of what was in flight
        first = []
        for i in got:
            if i not in first:
                first.append(i)
        self.assertEqual(first, during + after, before)
        tm.wait_value(port, 0, DEPTH)
        r.stop()
        self.assertRegex(self.stop_line(r), r"dropped 0, left in the spool 0, "
                         r"reconnections 1$")

    def test_an_idle_router_sees_the_broker_leave(self):
        # no event after the broker went: the outage is seen while idle,
        # and timed from then
        ch = self.bind()
        r = self.start()
        self.fire(r, 1)
        self.assertEqual(len(self.consume(ch, 1)), 1)
        for c in self.conns:
            c.close()
        self.conns = []
        self.broker.stop()
        try:
            r.wait_log(r"WARNING amqp output: lost the broker amqp://%s@"
                       r"127\.0\.0\.1:%d/: broker closed the connection: "
                       r"320 CONNECTION_FORCED - .*; reconnecting$"
                       % (self.broker.user, self.broker.port), timeout=20)
        finally:
            self.broker.start()
        m = r.wait_log(r"amqp output: broker amqp://\S+ is back after "
                       r"([0-9.]+) s: publishing to exchange %s$" % EXCHANGE,
                       timeout=60)
        # the first attempt comes after the first backoff, 0.5 s
        self.assertGreaterEqual(float(m.group(1)), 0.5, m.group(0))
        r.stop()
        self.assertRegex(self.stop_line(r), r"reconnections 1$")

    def test_the_spool_outlives_a_router_restart(self):
        self.bind()
        for c in self.conns:
            c.close()
        self.conns = []
        self.broker.stop()
        try:
            r = self.start(wait_broker=False, spool_max=50)
            ids = self.fire(r, 53)[:50]
            r.wait_log(r"WARNING amqp output: broker amqp://\S+ unavailable: "
                       r".*; events wait in the spool %s"
                       % re.escape(self.spool), timeout=20)
            # one line per batch the spooler took (1 to 3 events)
            r.wait_log(r"WARNING amqp output: the spool %s holds spool_max 50 "
                       r"events: dropped [123] new events?$"
                       % re.escape(self.spool))
            r.stop()
            self.assertRegex(self.stop_line(r), r"published 0, confirmed 0, "
                             r".*dropped 3, left in the spool 50, ")
        finally:
            self.broker.start()
        r2 = self.start()
        r2.wait_log(r"amqp output: 50 events wait in the spool %s from "
                    r"before" % re.escape(self.spool))
        ch = self.channel()
        got = [p.message_id for _, p, _ in self.consume(ch, 50)]
        self.assertEqual(got, ids)
        r2.stop()
        self.assertRegex(self.stop_line(r2), r"left in the spool 0, ")

    def test_a_refused_login_is_an_error_until_it_is_mended(self):
        # a refusal (403) is the operator's to mend, not a broker away:
        # an ERROR; events wait in the spool and go once it is mended
        ch = self.bind()
        self.addCleanup(self.broker.ctl, "delete_user", "er-late")
        r = self.start(wait_broker=False, url="amqp://er-late:pw-late@"
                       "127.0.0.1:%d/" % self.broker.port)
        ids = self.fire(r, 3)
        r.wait_log(r"ERROR amqp output: broker amqp://er-late@127\.0\.0\.1:"
                   r"%d/ refused the router: login as er-late to vhost / "
                   r"failed: broker closed the connection: 403 ACCESS_REFUSED"
                   r" - [^;]*[^.]; events wait in the spool %s; retrying "
                   r"every 0\.5 to 30 s$"
                   % (self.broker.port, re.escape(self.spool)), timeout=20)
        self.assertIsNone(r.find_log(r"broker \S+ unavailable"))
        for args in (("add_user", "er-late", "pw-late"),
                     ("set_permissions", "-p", "/", "er-late", ".*", ".*",
                      ".*")):
            cp = self.broker.ctl(*args)
            self.assertEqual(cp.returncode, 0, cp.stdout)
        r.wait_log(r"INFO amqp output: broker amqp://er-late@\S+ is back "
                   r"after [0-9.]+ s: publishing to exchange " + EXCHANGE,
                   timeout=40)
        self.assertEqual([p.message_id for _, p, _ in self.consume(ch, 3)],
                         ids)
        r.stop()

    def test_a_broker_away_then_refusing_is_said_twice(self):
        # the outage begins with the broker away (WARNING) and goes on
        # with a refusal once it is back (ERROR): each is said once
        self.addCleanup(self.broker.ctl, "delete_user", "er-late")
        self.broker.stop()
        try:
            r = self.start(wait_broker=False, url="amqp://er-late:pw-late@"
                           "127.0.0.1:%d/" % self.broker.port)
            r.wait_log(r"WARNING amqp output: broker amqp://er-late@\S+ "
                       r"unavailable: cannot connect to ", timeout=20)
        finally:
            self.broker.start()
        r.wait_log(r"ERROR amqp output: broker amqp://er-late@\S+ refused "
                   r"the router: login as er-late to vhost / failed: .*403 "
                   r"ACCESS_REFUSED", timeout=60)
        r.stop()
        for what in ("unavailable", "refused the router"):
            self.assertEqual(len([ln for ln in r.log_lines() if "amqp "
                                  "output: broker" in ln and what in ln]),
                             1, r.log_text())

    def test_an_event_no_queue_takes_is_returned_and_counted(self):
        ch = self.bind("local.wanted")
        r = self.start()
        wanted = self.fire(r, 1, "wanted")
        self.fire(r, 1, "unwanted")
        r.wait_log(r"WARNING amqp output: the broker returned an event with "
                   r"routing key local\.unwanted: 312 NO_ROUTE \(no queue is "
                   r"bound for it\): dropped")
        got = self.consume(ch, 1)
        self.assertEqual([p.message_id for _, p, _ in got], wanted)
        r.stop()
        self.assertRegex(self.stop_line(r), r"published 2, confirmed 2, "
                         r"returned 1, ")

    def test_stop_while_the_broker_holds_confirms(self):
        # a memory alarm blocks publishers: no confirm comes; SIGTERM
        # still ends the router, the events left in the spool
        self.bind()
        r = self.start()
        self.assertEqual(self.broker.ctl("set_vm_memory_high_watermark",
                                         "0.00001").returncode, 0)
        try:
            self.fire(r, 3)
            self.assertEqual(r.stop(), 0)
        finally:
            self.broker.ctl("set_vm_memory_high_watermark", "0.4")
        self.assertRegex(self.stop_line(r), r"confirmed 0, .*left in the "
                         r"spool 3, ")
        lost = [ln for ln in r.log_lines() if "lost the broker" in ln]
        self.assertLessEqual(len(lost), 2, lost)

    def test_two_outputs_and_the_store_share_a_spool_file(self):
        # each keeps its own records: every event once on each exchange
        ch = self.bind()
        ch.exchange_declare("er-test-other", exchange_type="topic",
                            durable=True)
        other = self.queue + "-other"
        ch.queue_declare(other, durable=True)
        ch.queue_purge(other)
        ch.queue_bind(other, "er-test-other", routing_key="#")
        cfg = self.config()
        cfg["outputs"].append({"handler": "amqp", "config": {
            "url": self.broker.url, "exchange": "er-test-other",
            "spool": self.spool}})
        r = h.Router(self.tmp, cfg)
        self.daemons.append(r)
        r.wait_ready()
        ids = self.fire(r, 20)
        got = [p.message_id for _, p, _ in self.consume(ch, 20)]
        self.queue = other
        got_other = [p.message_id for _, p, _ in self.consume(ch, 20)]
        self.assertEqual((got, got_other), (ids, ids))
        r.stop()
        self.assertEqual([ln.split("stopped: ", 1)[1] for ln in r.log_lines()
                          if "amqp output: stopped:" in ln],
                         ["published 20, confirmed 20, returned 0, refused "
                          "0, dropped 0, left in the spool 0, reconnections "
                          "0"] * 2)

    def test_bad_settings(self):
        for conf, key, msg in (
                ({"exchange": "amq.topic"}, "exchange",
                 '"exchange" must be a non-empty name of letters, digits, '
                 '-, _, . and : that does not begin with amq. (reserved by '
                 'AMQP)'),
                ({"exchange": "a b"}, "exchange",
                 '"exchange" must be a non-empty name of letters, digits, '
                 '-, _, . and : that does not begin with amq. (reserved by '
                 'AMQP)'),
                ({"url": "http://u:secret@h/"}, "url",
                 '"url" must start with amqp:// or amqps://'),
                ({"url": "amqps://u:secret@h/"}, "url",
                 'amqps:// needs "ca_file", the PEM file of the CA '
                 "certificates the broker's certificate chains to"),
                ({"spool": "/tmp"}, "spool",
                 '"/tmp" is a directory; name the database file, such as '
                 '"/tmp/events.db"'),
                ({"spool": "/etc/passwd/x"}, "spool",
                 '"/etc/passwd/x": "/etc/passwd" is not a directory')):
            with self.subTest(conf=conf):
                path = h.write_json(os.path.join(self.tmp, "bad.json"),
                                    self.config(**conf))
                cp = subprocess.run([h.binary("event-router"), "-c", path,
                                     "--check"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    timeout=30)
                self.assertEqual(cp.returncode, 78, cp.stderr)
                text = open(path).read()
                i = text.index('"%s": ' % key, text.index('"amqp"'))
                i += len(key) + 4
                where = "%s:%d:%d" % (path, text[:i].count("\n") + 1,
                                      i - text.rfind("\n", 0, i))
                self.assertIn("ERROR %s: %s\n" % (where, msg), cp.stderr)
                self.assertNotIn("secret", cp.stderr)
