"""AMQPInput against a real RabbitMQ (Debian's rabbitmq-server on free
loopback ports, its own node name and data directory: see rabbit.py),
with OpenStack notifications published to topic exchanges the way
oslo.messaging does: the router starts before the broker is up, unwraps
oslo envelopes and plain JSON, acknowledges what it accepted, rejects
without requeue what is not valid, and loses nothing of a stream across a
broker restart (at-least-once: duplicates are counted, not failed).  The
exchanges are OpenStack's: whichever of the router and OpenStack declares
one first, the other's declaration agrees."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import unittest

import harness as h
import rabbit
import test_metrics as tm

QUEUE = "er-test-notifications"
ROUTING_KEY = "notifications.info"
MAX = 65536			# the router's limits.max_event_size
# test_3's messages refused, by code: by the input (invalid_json,
# invalid_envelope, too_large) and by the router
REJECTED = {"invalid_json": 2, "invalid_envelope": 1, "too_large": 1,
            "missing_event_type": 1, "empty_event_type": 1}


def notification(i, event_type="compute.instance.update", **extra):
    note = {"message_id": "msg-%05d" % i, "publisher_id": "compute.node-1",
            "event_type": event_type, "priority": "INFO",
            "timestamp": "2026-11-20 10:15:42.%06d" % i,
            "payload": {"seq": i, "state": "active"},
            "_context_auth_token": "gAAAAABsecret-token"}
    note.update(extra)
    return note


def oslo(note):
    return json.dumps({"oslo.version": "2.0",
                       "oslo.message": json.dumps(note)}).encode()


def declare_as_oslo(ch, exchange, durable=False):
    """Declare a notification exchange as oslo.messaging's rabbit driver
    does (notify_send): topic, durable = amqp_durable_queues (default
    False), auto_delete = amqp_auto_delete (default False)."""
    ch.exchange_declare(exchange=exchange, exchange_type="topic",
                        durable=durable, auto_delete=False)


class Publisher:
    """pika with publisher confirms: a publish returns once the broker
    has the (persistent) message; an unroutable one raises."""

    def __init__(self, broker):
        import pika
        self.pika = pika
        params = pika.URLParameters(broker.url)
        params.socket_timeout = 5
        params.blocked_connection_timeout = 10
        self.conn = pika.BlockingConnection(params)
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        for ex in ("nova", "neutron"):
            declare_as_oslo(self.ch, ex)

    def publish(self, body, exchange="nova", routing_key=ROUTING_KEY,
                mandatory=True):
        self.ch.basic_publish(
            exchange, routing_key, body,
            self.pika.BasicProperties(delivery_mode=2,
                                      content_type="application/json"),
            mandatory=mandatory)

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class AmqpFeeder(h.RouterTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []
        cls.broker = None
        cls.publisher = None
        cls.password = "pw-" + secrets.token_hex(8)
        try:
            cls.broker = rabbit.Broker(cls.tmp, password=cls.password)
            feeders = [
                {"handler": "ZMQInput", "namespace": "local",
                 "config": {"uri": "tcp://127.0.0.1:0"}},
                {"namespace": "openstack", "handler": "AMQPInput",
                 "config": {"url": cls.broker.url,
                            "routing_key": ROUTING_KEY,
                            "exchange_type": "topic", "queue_name": QUEUE,
                            "bindings": ["nova", "neutron"],
                            "prefetch": 8}},
            ]
            # the router starts and serves while the broker is not there
            cls.router = cls.start_router(
                feeders=feeders, max_event_size=MAX,
                extra={"metrics": {"listen": "127.0.0.1:0"}})
            cls.router.wait_log(r"amqp:openstack: broker amqp://er-test@"
                                r"127\.0\.0\.1:%d/ unavailable" % cls.broker.port)
            cp = h.fire(["-u", cls.router.rep, "-t", "3000", "-e", "early"])
            if cp.returncode != 0:
                raise h.HarnessError("REP not served without a broker: %r"
                                     % cp.stderr)
            cls.broker.start()
            cls.router.wait_log(r"amqp:openstack: broker .* is back after "
                                r"[0-9.]+ s: consuming queue " + QUEUE,
                                timeout=40)
            cls.publisher = Publisher(cls.broker)
        except BaseException:
            cls._cleanup_all()
            raise

    @classmethod
    def _cleanup_all(cls):
        errors = []
        if cls.publisher is not None:
            cls.publisher.close()
        try:
            errors = cls._cleanup_daemons()
        finally:
            if cls.broker is not None:
                cls.broker.close()
            cls.remove_tmpdir(cls.tmp)
        return errors

    @classmethod
    def _cleanup_daemons(cls):
        return h.stop_all(cls.daemons)

    @classmethod
    def tearDownClass(cls):
        errors = cls._cleanup_all()
        if errors:
            raise h.HarnessError("\n".join(errors))

    # helpers -----------------------------------------------------------
    def events_by_message_id(self):
        rows = h.db_query(self.router.store_path,
                          "SELECT body FROM events WHERE namespace = "
                          "'openstack'") or []
        out = {}
        for (body,) in rows:
            ev = json.loads(body)
            out.setdefault(ev.get("message_id"), []).append(ev)
        return out

    def wait_message(self, message_id, timeout=h.WAIT_TIMEOUT):
        return h.wait_until(
            lambda: self.events_by_message_id().get(message_id), timeout,
            "event of AMQP message %s in the store" % message_id)[0]

    def count_log(self, pattern):
        rx = re.compile(pattern)
        return sum(1 for ln in self.router.log_lines() if rx.search(ln))

    def wait_queue_empty(self):
        self.broker.wait_queues_empty([QUEUE])

    # tests -------------------------------------------------------------
    def test_1_oslo_envelope_from_the_fixture(self):
        body = open(h.fixture_path(
            "openstack-compute.instance.create.end.json"), "rb").read()
        inner = json.loads(json.loads(body)["oslo.message"])
        pub = self.listener()
        self.publisher.publish(body)
        ev = self.wait_message(inner["message_id"])
        self.assertRegex(ev["id"], h.OBJECTID_RE)
        self.assertEqual(ev["namespace"], "openstack")
        self.assertEqual(ev["event_type"], "compute.instance.create.end")
        self.assertEqual(ev["payload"], inner["payload"])
        self.assertEqual(ev["publisher_id"], "compute.node-07")
        self.assertEqual(ev["priority"], "INFO")
        self.assertEqual(ev["original_timestamp"], inner["timestamp"])
        # 2026-11-20 10:15:42.318274 UTC
        self.assertAlmostEqual(ev["timestamp"], 1795169742.318274, places=5)
        self.assertFalse([k for k in ev if k.startswith("_context")], ev)
        topic, _ = pub.wait_id(ev["id"])
        self.assertEqual(topic, b"openstack:compute.instance.create.end")
        # acknowledged once accepted: nothing left on the queue
        self.wait_queue_empty()

    def test_2_plain_json_on_the_second_exchange(self):
        note = notification(2, "port.create.end")
        self.publisher.publish(json.dumps(note).encode(), exchange="neutron")
        ev = self.wait_message("msg-00002")
        self.assertEqual(ev["event_type"], "port.create.end")
        self.assertEqual(ev["payload"], {"seq": 2, "state": "active"})
        self.assertNotIn("_context_auth_token", json.dumps(ev))

    def test_3_invalid_messages_rejected_without_requeue(self):
        bad = [
            b"this is not json",
            b'{"oslo.version": "2.0", "oslo.message": 3}',
            b'{"oslo.version": "2.0", "oslo.message": "{\\"event_type\\": "}',
            oslo({"message_id": "no-type", "payload": {}}),   # the router's
            json.dumps(notification(3, "")).encode(),          # refusals
        ]
        bad.append(oslo(dict(notification(5, "big"), pad="x" * MAX)))
        mport = tm.metrics_port(self.router)
        before = {code: tm.value(tm.scrape(mport),
                                 "eventreactor_events_rejected_total",
                                 input="amqp:openstack", code=code) or 0
                  for code in REJECTED}
        for body in bad:
            self.publisher.publish(body)
        # a good one after them: once it is in, the bad ones were handled
        self.publisher.publish(oslo(notification(4, "marker")))
        self.wait_message("msg-00004")
        self.router.wait_log(r"amqp:openstack: message rejected: "
                             r"too_large: \d+ bytes, over the limit of %d "
                             r"bytes \(limits\.max_event_size\)" % MAX)
        # counted, the input's refusals as the router's
        for code, n in REJECTED.items():
            with self.subTest(code=code):
                tm.wait_value(mport, before[code] + n,
                              "eventreactor_events_rejected_total",
                              input="amqp:openstack", code=code)
        self.router.wait_log(r"amqp:openstack: message rejected: "
                             r"invalid_json: invalid JSON at line 1")
        self.router.wait_log(r"amqp:openstack: message rejected: "
                             r"invalid_envelope")
        self.router.wait_log(r"amqp:openstack: message rejected: "
                             r"invalid_json: in \"oslo.message\"")
        self.router.wait_log(r"event rejected on amqp:openstack: "
                             r"missing_event_type")
        self.router.wait_log(r"event rejected on amqp:openstack: "
                             r"empty_event_type")
        got = self.events_by_message_id()
        self.assertNotIn("no-type", got)
        self.assertNotIn("msg-00003", got)
        # rejected, not requeued: nothing ready, nothing unacknowledged
        self.wait_queue_empty()

    def test_4_other_routing_keys_are_not_consumed(self):
        self.publisher.publish(oslo(notification(5, "compute.error")),
                               routing_key="notifications.error",
                               mandatory=False)
        self.publisher.publish(oslo(notification(6, "marker")))
        self.wait_message("msg-00006")
        self.assertNotIn("msg-00005", self.events_by_message_id())

    def test_5_broker_restart_mid_stream_loses_nothing(self):
        # at-least-once: every message's event is stored; a message that
        # was delivered but not yet acknowledged when the broker went away
        # is delivered again, so duplicates are possible and are counted
        total, first = 300, 200
        ids = ["msg-%05d" % i for i in range(1000, 1000 + total)]
        # the router is frozen (a busy consumer) while the first part is
        # published, so the broker stops in the middle of the stream:
        # deliveries in the router's socket buffer, the rest on the queue
        self.router.proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(first):
                self.publisher.publish(oslo(notification(1000 + i)))
            self.publisher.close()
            self.broker.stop()
        finally:
            self.router.proc.send_signal(signal.SIGCONT)
        self.router.wait_log(r"amqp:openstack: lost the broker .*"
                             r"reconnecting")
        stored_at_stop = sum(1 for k in self.events_by_message_id()
                             if k in ids)
        # the router keeps serving its other inputs meanwhile
        t0 = time.monotonic()
        cp = h.fire(["-u", self.router.rep, "-t", "3000", "-e",
                     "while.broker.down"])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertLess(time.monotonic() - t0, 2.5)

        self.broker.start()
        back = r"amqp:openstack: broker .* is back after [0-9.]+ s"
        h.wait_until(lambda: self.count_log(back) >= 2, 40,
                     "the feeder back on the restarted broker")
        type(self).publisher = Publisher(self.broker)
        for i in range(first, total):
            self.publisher.publish(oslo(notification(1000 + i)))

        def all_in():
            got = self.events_by_message_id()
            return got if all(i in got for i in ids) else None
        try:
            got = h.wait_until(all_in, 30, "all %d messages in the store"
                               % total)
        except h.HarnessError:
            got = self.events_by_message_id()
            missing = [i for i in ids if i not in got]
            self.fail("%d of %d messages lost: %s" % (len(missing), total,
                                                      missing[:10]))
        dups = {i: len(got[i]) for i in ids if len(got[i]) > 1}
        sys.stderr.write("\n  broker restart: %d published, %d stored "
                         "before the restart, 0 lost, %d duplicated "
                         "(at-least-once)\n"
                         % (total, stored_at_stop, sum(dups.values()) -
                            len(dups)))
        # every event is whole, and each outage was logged once
        for i in ids:
            self.assertEqual(got[i][0]["payload"]["seq"], int(i[4:]))
        self.assertEqual(self.count_log("amqp:openstack: lost the broker"), 1)
        self.wait_queue_empty()

    def test_6_password_never_logged(self):
        self.assertNotIn(self.password, self.router.log_text())
        self.assertIn("amqp=amqp://er-test@127.0.0.1:%d/" % self.broker.port,
                      self.router.log_text())

    def test_7_router_restart_leaves_the_rest_on_the_queue(self):
        # SIGTERM with deliveries in flight: what the router did not
        # accept stays on the queue (unacknowledged, then requeued) and
        # the next router takes it
        ids = ["msg-%05d" % i for i in range(2000, 2040)]
        self.router.proc.send_signal(signal.SIGSTOP)
        try:
            for i in range(2000, 2040):
                self.publisher.publish(oslo(notification(i)))
        finally:
            self.router.proc.send_signal(signal.SIGTERM)
            self.router.proc.send_signal(signal.SIGCONT)
        self.router.stop()          # exit status 0 asserted
        before = sum(1 for k in self.events_by_message_id() if k in ids)
        old = self.router
        type(self).router = h.Router(self.tmp, old.config)
        self.daemons.append(self.router)
        self.router.wait_ready()
        self.router.wait_log(r"amqp:openstack: consuming queue " + QUEUE)
        got = h.wait_until(
            lambda: (lambda g: g if all(i in g for i in ids) else None)(
                self.events_by_message_id()), 20,
            "all 40 messages in the store after the router restart")
        sys.stderr.write("\n  router restart: 40 published, %d stored by "
                         "the first router, 0 lost, %d duplicated\n"
                         % (before, sum(len(got[i]) - 1 for i in ids)))
        self.wait_queue_empty()
        self.assertIsNotNone(old.find_log(r"amqp:openstack: stopped: "
                                          r"received \d+"))


if __name__ == "__main__":
    unittest.main()


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class AmqpExchangeOwnership(rabbit.broker_test_case()):
    """The exchanges of "bindings" belong to OpenStack: on a fresh broker,
    whichever of the router and OpenStack's services declares one first,
    the other's declaration (oslo.messaging's, declare_as_oslo()) is
    accepted and notifications reach the router.  One broker for the
    class, one router per test; each test starts without the exchange."""

    def setUp(self):
        super().setUp()
        self.router = None
        self.queue = "er-test-" + self._testMethodName
        ch = self.channel()
        ch.exchange_delete("nova")
        ch.queue_delete(self.queue)

    def tearDown(self):
        super().tearDown()
        if self.router is not None:
            self.router.stop()          # exit status 0 asserted

    # helpers -----------------------------------------------------------
    def openstack(self, durable=False):
        """An OpenStack service's channel, once it declared "nova" as
        oslo.messaging does (amqp_durable_queues = durable)."""
        ch = self.channel()
        ch.confirm_delivery()
        try:
            declare_as_oslo(ch, "nova", durable)
        except self.pika.exceptions.ChannelClosedByBroker as e:
            self.fail("OpenStack's declaration of exchange nova (durable=%s)"
                      " refused: %s" % (durable, e))
        return ch

    def start(self, wait=True, **config):
        conf = {"url": self.broker.url, "routing_key": ROUTING_KEY,
                "queue_name": self.queue, "bindings": ["nova"]}
        conf.update(config)
        self.router = self.start_router(
            store_path=os.path.join(self.tmp, self._testMethodName + ".db"),
            feeders=[{"handler": "ZMQInput", "namespace": "local",
                      "config": {"uri": "tcp://127.0.0.1:0"}},
                     {"namespace": "openstack", "handler": "AMQPInput",
                      "config": conf}])
        if wait:
            self.router.wait_log(r"amqp:openstack: consuming queue %s on "
                                 % re.escape(self.queue), timeout=20)

    def assertFlows(self, ch, i):
        """A notification published on ch as oslo.messaging does (to
        nova, routing key notifications.info) reaches the router: on its
        PUB stream and in its store."""
        pub = self.listener()
        ch.basic_publish("nova", ROUTING_KEY, oslo(notification(i)),
                         self.pika.BasicProperties(
                             content_type="application/json"),
                         mandatory=True)
        mid = "msg-%05d" % i
        topic, body = pub.wait_event(
            lambda t, b: json.loads(b).get("message_id") == mid,
            what="notification %s on PUB" % mid)
        self.assertEqual(topic, b"openstack:compute.instance.update")
        h.wait_event_row(self.router.store_path, json.loads(body)["id"])

    def assertNoConflict(self):
        self.assertIsNone(self.router.find_log(
            r"exchange nova exists with other settings"),
            self.router.log_text())

    # tests -------------------------------------------------------------
    def test_reactor_first_then_openstack(self):
        self.start()
        ch = self.openstack()
        self.assertFlows(ch, 1)
        self.assertNoConflict()
        # as oslo.messaging declares it: topic, not durable, kept
        self.assertEqual(self.broker.list_exchanges().get("nova"),
                         ("topic", False, False))

    def test_openstack_first_then_reactor(self):
        ch = self.openstack()
        self.start()
        self.assertFlows(ch, 2)
        # OpenStack declares it again on each reconnection: still agreed
        self.assertFlows(self.openstack(), 3)
        self.assertNoConflict()

    def test_exchange_durable_for_amqp_durable_queues(self):
        # OpenStack with amqp_durable_queues = True; the router told so
        self.start(exchange_durable=True)
        self.assertNotIn("unknown AMQPInput option", self.router.log_text())
        self.assertEqual(self.broker.list_exchanges().get("nova"),
                         ("topic", True, False))
        self.assertFlows(self.openstack(durable=True), 4)
        self.assertNoConflict()

    def test_an_exchange_declared_otherwise_is_used_and_named(self):
        # OpenStack declared it durable, the router was not told: it uses
        # the exchange as it is and says what to set
        ch = self.openstack(durable=True)
        self.start()
        self.assertIsNotNone(self.router.find_log(
            r"WARNING amqp:openstack: exchange nova exists with other "
            r"settings than type topic, durable false, auto-delete false: "
            r"using it as it is; set exchange_durable as its producer "
            r"declares it \(oslo\.messaging: amqp_durable_queues\)$"),
            self.router.log_text())
        self.assertFlows(ch, 5)

    def test_a_refused_login_is_an_error_until_it_is_mended(self):
        # a refusal (403) is the operator's to mend, not a broker away:
        # an ERROR; the router serves meanwhile and consumes once mended
        self.addCleanup(self.broker.ctl, "delete_user", "er-late")
        self.start(wait=False, url="amqp://er-late:pw-late@127.0.0.1:%d/"
                   % self.broker.port)
        self.router.wait_log(
            r"ERROR amqp:openstack: broker amqp://er-late@127\.0\.0\.1:%d/ "
            r"refused the router: login as er-late to vhost / failed: "
            r"broker closed the connection: 403 ACCESS_REFUSED - [^;]*[^.]; "
            r"retrying every 0\.5 to 30 s$" % self.broker.port, timeout=20)
        self.assertIsNone(self.router.find_log(r"broker \S+ unavailable"))
        self.assertEqual(h.fire(["-u", self.router.rep, "-t", "5000", "-e",
                                 "meanwhile"]).returncode, 0)
        for args in (("add_user", "er-late", "pw-late"),
                     ("set_permissions", "-p", "/", "er-late", ".*", ".*",
                      ".*")):
            cp = self.broker.ctl(*args)
            self.assertEqual(cp.returncode, 0, cp.stdout)
        self.router.wait_log(r"INFO amqp:openstack: broker amqp://er-late@"
                             r"\S+ is back after [0-9.]+ s: consuming queue "
                             + re.escape(self.queue), timeout=40)
        self.assertFlows(self.openstack(), 9)

    def test_a_queue_declared_otherwise_is_used(self):
        # someone made the queue first, not durable: consumed as it is
        self.channel().queue_declare(self.queue, durable=False)
        self.start()
        self.assertFlows(self.openstack(), 6)
        self.assertIsNotNone(self.router.find_log(
            r"DEBUG amqp:openstack: queue %s exists with other settings; "
            r"using it as it is$" % re.escape(self.queue)),
            self.router.log_text())


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class AmqpTls(rabbit.broker_test_case()):
    """amqps://: the router verifies the broker's certificate against
    "ca_file" and the URL's host against the certificate's names, over a
    real RabbitMQ listening with TLS (certificates made here); a missing or
    bad ca_file is refused with file:line:column."""

    @classmethod
    def broker_args(cls):
        # the class's directory exists by now (BrokerTestCase.setUpClass)
        cls.cert, key = cls.make_cert("broker", "localhost",
                                      "DNS:localhost,IP:127.0.0.1")
        cls.other, _ = cls.make_cert("other", "other.example",
                                     "DNS:other.example")
        return {"tls": (cls.cert, cls.cert, key)}

    @classmethod
    def make_cert(cls, name, cn, san):
        cert = os.path.join(cls.tmp, name + ".crt")
        key = os.path.join(cls.tmp, name + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=" + cn, "-addext",
                        "subjectAltName=" + san], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)
        return cert, key

    def url(self, host="localhost"):
        return "amqps://%s:%s@%s:%d/" % (self.broker.user,
                                         self.broker.password, host,
                                         self.broker.ssl_port)

    def config(self, **conf):
        return h.make_config(
            self.tmp, store_path=os.path.join(self.tmp,
                                              self._testMethodName + ".db"),
            feeders=[{"handler": "ZMQInput", "namespace": "local",
                      "config": {"uri": "tcp://127.0.0.1:0"}},
                     {"namespace": "openstack", "handler": "AMQPInput",
                      "config": dict({"routing_key": ROUTING_KEY,
                                      "queue_name": "er-tls-" +
                                      self._testMethodName,
                                      "bindings": ["nova"]}, **conf)}])

    def start(self, **conf):
        r = h.Router(self.tmp, self.config(**conf))
        self.daemons.append(r)
        r.wait_ready()
        return r

    def check(self, **conf):
        path = h.write_json(os.path.join(self.tmp, "check.json"),
                            self.config(**conf))
        cp = subprocess.run([h.binary("event-router"), "-c", path,
                             "--check"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        with open(path) as f:
            text = f.read()
        return cp, path, text

    def test_verified_broker_delivers(self):
        r = self.start(url=self.url(), ca_file=self.cert)
        safe = "amqps://%s@localhost:%d/" % (self.broker.user,
                                            self.broker.ssl_port)
        r.wait_log(r"amqp:openstack: consuming queue er-tls-%s on %s$"
                   % (self._testMethodName, re.escape(safe)), timeout=20)
        pub = Publisher(self.broker)     # OpenStack's side, plain AMQP
        try:
            pub.publish(oslo(notification(71)))
        finally:
            pub.close()
        row = h.wait_until(lambda: h.db_query(
            r.store_path, "SELECT body FROM events WHERE namespace = "
            "'openstack'"), h.WAIT_TIMEOUT, "the notification stored")
        self.assertEqual(json.loads(row[0][0])["message_id"], "msg-00071")
        self.assertNotIn(self.broker.password, r.log_text())
        r.stop()

    def test_unknown_ca_or_name_refused(self):
        for host, ca, why in (
                ("localhost", self.other,
                 "SSL peer cert verification failed"),
                # rabbitmq-c 0.11 matches host names only, not an address
                # in the certificate's names (event-reactor.conf(5))
                ("127.0.0.1", self.cert, "SSL hostname verification failed")):
            with self.subTest(host=host):
                r = self.start(url=self.url(host), ca_file=ca)
                r.wait_log(r"WARNING amqp:openstack: broker amqps://%s@%s:%d/"
                           r" unavailable: cannot connect to %s:%d: %s; "
                           r"retrying every" % (
                               self.broker.user, re.escape(host),
                               self.broker.ssl_port, re.escape(host),
                               self.broker.ssl_port, why), timeout=20)
                self.assertIsNone(r.find_log(r"consuming queue"))
                r.stop()

    @unittest.skipUnless(os.geteuid() == 0, "needs root to change user")
    def test_ca_file_read_as_the_user(self):
        # readable by root alone: --check (as root) takes it, the router
        # running as nobody cannot load it when it connects
        private = os.path.join(self.tmp, "private-ca.crt")
        shutil.copy(self.cert, private)
        os.chmod(private, 0o600)
        os.chmod(self.tmp, 0o755)
        cfg = self.config(url=self.url(), ca_file=private)
        cfg["user"] = "nobody"
        cfg["store"] = {"type": "none"}
        r = h.Router(self.tmp, cfg)
        self.daemons.append(r)
        r.wait_ready()
        r.wait_log(r'WARNING amqp:openstack: broker amqps://.* unavailable: '
                   r'cannot load ca_file "%s": ' % re.escape(private),
                   timeout=20)
        r.stop()

    def test_ca_file_errors(self):
        missing = os.path.join(self.tmp, "missing.pem")
        key = os.path.join(self.tmp, "other.key")
        for conf, at, msg in (
                ({"url": self.url()}, "url", 'amqps:// needs "ca_file", the '
                 "PEM file of the CA certificates the broker's certificate "
                 "chains to"),
                ({"url": self.url(), "ca_file": missing}, "ca_file",
                 'cannot read ca_file "%s": No such file or directory'
                 % missing),
                ({"url": self.url(), "ca_file": key}, "ca_file",
                 'ca_file "%s" holds no PEM certificate' % key)):
            with self.subTest(conf=conf):
                cp, path, text = self.check(**conf)
                self.assertEqual(cp.returncode, 78, cp.stderr)
                i = text.index('"%s": ' % at, text.index('"AMQPInput"'))
                i += len(at) + 4
                where = "%s:%d:%d" % (path, text[:i].count("\n") + 1,
                                      i - text.rfind("\n", 0, i))
                self.assertIn("ERROR %s: %s\n" % (where, msg), cp.stderr)
                self.assertNotIn(self.broker.password, cp.stderr)
        cp, path, text = self.check(url=self.broker.url, ca_file=self.cert)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn('"ca_file" is used with amqps:// only: ignored',
                      cp.stderr)
