"""CURVE and ZAP on the router's ZeroMQ endpoints (issue 16): keys made
with fire-event --gen-key, an allowed client's REQ and PUSH, refusals of
an unknown key, a plaintext client, an unknown subscriber and an address
outside client_addresses (nothing stored, nothing published, the exact
log line), a key revoked by SIGHUP, event-sub refusing a forged router,
the warning for endpoints beyond loopback, and config errors."""

import http.client
import json
import os
import re
import select
import signal
import subprocess

import zmq
import zmq.auth
import zmq.utils.monitor
from zmq.utils.monitor import recv_monitor_message

import harness as h
import rabbit

EX_UNAVAILABLE = 69
EX_CONFIG = 78
KEY_RE = re.compile(r"^(\S+): public key (\S{40})\n(\S+)_secret: its "
                    r"secret key \(mode 0600\)\n$")
# a plaintext client: the router finds the mechanisms differ, or the client
# found it first and left (libzmq reports one or the other)
PLAINTEXT = ("mechanism mismatch (a plaintext client?)",
             "the client left during the handshake (a plaintext client?)")


# a failed handshake as event-sub sees it (which one depends on which side
# noticed first)
SUB_FAILED = ("the peer's security mechanism is not ours (CURVE on one "
              "side only?)",
              "the peer closed the connection during the handshake (CURVE "
              "on one side only, or another server key?)",
              "the CURVE handshake failed (a peer without the secret of our "
              "server key?)")
SUB_REFUSED = ("the router refused our key (not in its clients_dir, or our "
               "address not in its client_addresses)")


def plaintext_lines(uri):
    return ["WARNING CURVE: handshake refused on %s: %s" % (uri, p)
            for p in PLAINTEXT]
REFUSED = "WARNING CURVE: client refused: %s: address %s, key %s"
EXPOSED = ("WARNING %sZeroMQ endpoint %s (%s) is bound beyond loopback "
           "without \"curve\": anyone who can reach it can send events (and "
           "so run handlers) or read them")
HTTP_RE = re.compile(r"\bhttp=http://127\.0\.0\.1:(\d+)")


def gen_key(path):
    """fire-event --gen-key path: returns its public key (Z85 text)."""
    cp = h.fire(["--gen-key", path])
    if cp.returncode != 0:
        raise h.HarnessError("fire-event --gen-key: %r" % cp.stderr)
    m = KEY_RE.match(cp.stdout.decode())
    if m is None or m.group(1) != path or m.group(3) != path:
        raise h.HarnessError("fire-event --gen-key said %r" % cp.stdout)
    return m.group(2)


class Keys:
    """Key pairs made with fire-event --gen-key under d: the server's and
    the clients' (name -> public key text)."""

    def __init__(self, d, clients):
        self.d = d
        self.clients_dir = os.path.join(d, "clients")
        os.mkdir(self.clients_dir)
        self.server = os.path.join(d, "server.key")
        self.server_pub = gen_key(self.server)
        self.pub = {}
        for name in clients:
            self.pub[name] = gen_key(self.path(name))

    def path(self, name):
        return os.path.join(self.d, name + ".key")

    def secret(self, name):
        return self.path(name) + "_secret"

    def allow(self, name):
        """Copy name's public certificate into clients_dir."""
        with open(self.path(name), "rb") as f, \
                open(os.path.join(self.clients_dir, name), "wb") as g:
            g.write(f.read())

    def revoke(self, name):
        os.remove(os.path.join(self.clients_dir, name))

    def curve(self, extra=None):
        c = {"server_key": self.server + "_secret",
             "clients_dir": self.clients_dir}
        c.update(extra or {})
        return c

    def flags(self, name):
        return ["--curve-key", self.secret(name),
                "--curve-server", self.server]

    def socket(self, kind, uri, name=None, server_pub=None, connect=True):
        """A pyzmq socket connected to uri: CURVE with name's keys (None:
        plaintext); connect False: the caller connects it."""
        s = h.ctx().socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, int(h.WAIT_TIMEOUT * 1000))
        if name is not None:
            pub, sec = zmq.auth.load_certificate(self.secret(name))
            s.curve_publickey = pub
            s.curve_secretkey = sec
            s.curve_serverkey = (server_pub or self.server_pub).encode()
        if connect:
            s.connect(uri)
        return s


def send_refused(sock, frames):
    """Send frames on a socket whose connection the router refuses,
    without waiting: once the refused handshake has ended the connection,
    a PUSH or DEALER has no queue left and a blocking send would wait for
    ever (the hog check's make check of 2026-12-07 hung there).  Either
    way nothing gets in, which is what the tests check."""
    try:
        sock.send_multipart(frames, zmq.NOBLOCK)
    except zmq.Again:
        pass


class LineReader:
    """Lines of a child's pipe, each waited for at most WAIT_TIMEOUT."""

    def __init__(self, f):
        self.f = f
        self.buf = b""

    def next(self):
        deadline = h.time.monotonic() + h.WAIT_TIMEOUT
        while b"\n" not in self.buf:
            left = deadline - h.time.monotonic()
            r, _, _ = select.select([self.f], [], [], max(left, 0))
            if not r:
                raise h.HarnessError("no line within %s s after %r"
                                     % (h.WAIT_TIMEOUT, self.buf))
            chunk = os.read(self.f.fileno(), 65536)
            if not chunk:
                raise h.HarnessError("end of file after %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def until(self, pred):
        """The lines up to the first for which pred is true, that one
        last, all of them within WAIT_TIMEOUT (each line's own wait
        included, but for the last)."""
        deadline = h.time.monotonic() + h.WAIT_TIMEOUT
        seen = [self.next()]
        while not pred(seen[-1]):
            if h.time.monotonic() > deadline:
                raise h.HarnessError("no such line within %s s: %r"
                                     % (h.WAIT_TIMEOUT, seen))
            seen.append(self.next())
        return seen


def rows_of_type(path, event_type):
    return h.db_query(path, "SELECT id FROM events WHERE event_type = ?",
                      (event_type,))


class CurveSubscriber:
    """A CURVE SUB on the router's topic-framed output: subscribed once
    the router's control message came."""

    def __init__(self, keys, name, uri):
        self.sock = keys.socket(zmq.SUB, uri, name)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")

    def wait_subscribed(self):
        while True:
            frames = h.recv_bounded(self.sock, multipart=True)
            if frames[0] == b"":
                return

    def next_event(self):
        """The next event's type (control messages skipped)."""
        while True:
            frames = h.recv_bounded(self.sock, multipart=True)
            if frames[0] != b"":
                return json.loads(frames[1])["event_type"]

    def close(self):
        self.sock.close(0)


class CurveRouter(h.RouterTestCase):
    """One router with "curve": alice, dave and carol allowed, bob not; an
    HTTPInput feeder beside the ZeroMQ inputs."""

    @classmethod
    def start_router(cls, **kw):
        cls.keys = Keys(cls.tmp, ["alice", "bob", "carol", "dave", "eve"])
        for name in ("alice", "carol", "dave"):
            cls.keys.allow(name)
        feeders = [{"handler": "ZMQInput", "namespace": "local",
                    "config": {"uri": "tcp://127.0.0.1:0"}},
                   {"handler": "HTTPInput", "namespace": "hooks",
                    "config": {"listen_address": "127.0.0.1", "port": 0,
                               "allow_anonymous": True}}]
        cfg = h.make_config(cls.tmp, feeders=feeders, extra={
            "curve": cls.keys.curve(
                {"client_addresses": ["10.0.0.0/8", "127.0.0.1/32"]})})
        r = h.Router(cls.tmp, cfg)
        cls.daemons.append(r)
        r.wait_ready()
        cls.http_port = int(HTTP_RE.search(
            r.find_log(r"\bready pull=.*").group(0)).group(1))
        return r

    def fire(self, name, event_type, push=False, timeout=None):
        args = ["-e", event_type, "-u",
                self.router.pull if push else self.router.rep]
        if push:
            args += ["-z", "zmq.PUSH"]
        if timeout is not None:
            args += ["-t", str(timeout)]
        if name is not None:
            args += self.keys.flags(name)
        return h.fire(args)

    def subscriber(self, name):
        s = CurveSubscriber(self.keys, name, self.router.sub_uri)
        self.addCleanup(s.close)
        return s

    def assert_refused_unseen(self, event_type, sub):
        """Nothing of event_type was stored or published: an allowed
        event fired after it is the next one sub sees, and the store has
        that one and not event_type."""
        cp = self.fire("alice", "curve.after")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        eid = json.loads(cp.stdout)["id"]
        self.assertEqual(sub.next_event(), "curve.after")
        h.wait_event_row(self.router.store_path, eid)
        self.assertEqual(rows_of_type(self.router.store_path, event_type), [])

    def test_allowed_req_gets_its_reply(self):
        cp = self.fire("alice", "curve.req")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        reply = json.loads(cp.stdout)
        self.assertEqual(reply["event_type"], "curve.req")
        h.wait_event_row(self.router.store_path, reply["id"])

    def test_allowed_push_is_stored(self):
        cp = self.fire("alice", "curve.push", push=True)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        h.wait_until(lambda: rows_of_type(self.router.store_path,
                                          "curve.push"),
                     what="the PUSHed event in the store")

    def test_allowed_subscriber_reads_unknown_one_does_not(self):
        alice = self.subscriber("alice")
        alice.wait_subscribed()
        bob = self.subscriber("bob")
        self.router.wait_log(re.escape(REFUSED % (
            "key not in clients_dir", "127.0.0.1", self.keys.pub["bob"])))
        cp = self.fire("alice", "curve.pub")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(alice.next_event(), "curve.pub")
        # the router never let bob in: no connection, no message
        self.assertEqual(bob.sock.poll(200), 0)

    def test_subscription_bound_counts_curve_framing(self):
        # test_pub_wire.LongSubscriptions through CURVE, which frames a
        # subscription in 33 more bytes (bus.h): 1024 bytes are taken,
        # 1025 disconnect their subscriber
        uri = self.router.sub_uri
        before = self.router.subscriptions(uri)
        taken = self.keys.socket(zmq.SUB, uri, "alice")
        self.addCleanup(taken.close, 0)
        taken.setsockopt(zmq.SUBSCRIBE, b"c" * 1024)
        self.router.wait_subscriptions(uri, before + 1)
        over = self.keys.socket(zmq.SUB, uri, "dave", connect=False)
        self.addCleanup(over.close, 0)
        mon = over.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.addCleanup(mon.close, 0)
        over.connect(uri)
        over.setsockopt(zmq.SUBSCRIBE, b"d" * 1025)
        event = h.recv_bounded(mon, multipart=True)
        self.assertEqual(zmq.utils.monitor.parse_monitor_message(event)
                         ["event"], zmq.EVENT_DISCONNECTED)
        alice = self.subscriber("alice")
        alice.wait_subscribed()
        self.assertEqual(self.router.subscriptions(uri), before + 2)

    def test_unknown_key_refused(self):
        sub = self.subscriber("alice")
        sub.wait_subscribed()
        # eve: in no other test, so that the line is hers from here
        cp = self.fire("eve", "curve.eve", timeout=1000)
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp.stderr)
        self.assertEqual(cp.stderr.decode(), "fire-event: no router "
                         "accepted the event at %s within 1000 ms\n"
                         % self.router.rep)
        self.router.wait_log(re.escape(REFUSED % (
            "key not in clients_dir", "127.0.0.1", self.keys.pub["eve"])))
        push = self.keys.socket(zmq.PUSH, self.router.pull, "eve")
        self.addCleanup(push.close, 0)
        send_refused(push, [b'{"event_type":"curve.eve"}'])
        self.assert_refused_unseen("curve.eve", sub)

    def test_plaintext_client_refused(self):
        sub = self.subscriber("alice")
        sub.wait_subscribed()
        for uri in (self.router.rep, self.router.pull):
            n = len(self.router.log_lines())
            s = self.keys.socket(zmq.DEALER if uri == self.router.rep
                                 else zmq.PUSH, uri)
            self.addCleanup(s.close, 0)
            send_refused(s, [b"", b'{"event_type":"curve.plain"}']
                         if uri == self.router.rep else
                         [b'{"event_type":"curve.plain"}'])
            lines = plaintext_lines(uri)
            h.wait_until(lambda: any(x.endswith(" " + line)
                                     for x in self.router.log_lines()[n:]
                                     for line in lines),
                         what=" or ".join(lines))
            s.close(0)   # it would try again and again
        cp = self.fire(None, "curve.plain", timeout=1000)
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp.stderr)
        self.assert_refused_unseen("curve.plain", sub)

    def test_plaintext_subscriber_refused(self):
        s = self.keys.socket(zmq.SUB, self.router.sub_uri)
        self.addCleanup(s.close, 0)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        self.router.wait_log(r" (%s)$" % "|".join(
            re.escape(x) for x in plaintext_lines(self.router.sub_uri)))
        alice = self.subscriber("alice")
        alice.wait_subscribed()
        cp = self.fire("alice", "curve.plainsub")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(alice.next_event(), "curve.plainsub")
        self.assertEqual(s.poll(200), 0)

    def test_revoked_key_refused_after_sighup(self):
        # dave connected before the reload keeps working; carol, revoked,
        # is refused on her next connection
        dave = self.keys.socket(zmq.REQ, self.router.rep, "dave")
        self.addCleanup(dave.close, 0)
        self.assertStamped(h.request(dave, b'{"event_type":"curve.d1"}'))
        cp = self.fire("carol", "curve.c1")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.keys.revoke("carol")
        n = len(self.router.log_lines())
        os.kill(self.router.proc.pid, signal.SIGHUP)
        line = "INFO CURVE: SIGHUP: 2 client keys from %s" % (
            self.keys.clients_dir)
        h.wait_until(lambda: any(line in x for x in
                                 self.router.log_lines()[n:]), what=line)
        cp = self.fire("carol", "curve.c2", timeout=1000)
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp.stderr)
        self.router.wait_log(re.escape(REFUSED % (
            "key not in clients_dir", "127.0.0.1", self.keys.pub["carol"])))
        self.assertStamped(h.request(dave, b'{"event_type":"curve.d2"}'))
        self.assertEqual(rows_of_type(self.router.store_path, "curve.c2"),
                         [])

    def test_syntax_error_at_sighup_quotes_nothing(self):
        # czmq's ZPL reader prints the rest of a bad line on stdout: the
        # router logs the line number and the reason only
        bad = os.path.join(self.keys.clients_dir, "tabbed")
        with open(self.keys.secret("alice")) as f:
            secret = f.read().split('secret-key = "')[1][:40]
        with open(bad, "w") as f:
            f.write('metadata\ncurve\n\tsecret-key = "%s"\n' % secret)
        self.addCleanup(os.remove, bad)
        n = len(self.router.log_lines())
        os.kill(self.router.proc.pid, signal.SIGHUP)
        line = "client keys from %s" % self.keys.clients_dir
        h.wait_until(lambda: any(line in x for x in
                                 self.router.log_lines()[n:]), what=line)
        warned = ("WARNING CURVE: clients_dir: %s:3: not a certificate "
                  "(czmq's ZPL text: \"metadata\" and \"curve\" sections): "
                  "invalid syntax: skipped" % bad)
        self.assertTrue(any(x.endswith(" " + warned) for x in
                            self.router.log_lines()[n:]), warned)
        with open(self.router.out_path, "rb") as f:
            self.assertEqual(f.read(), b"")
        self.assertNotIn(secret, "".join(self.router.log_lines()))

    def test_unreadable_clients_dir_keeps_the_keys(self):
        moved = self.keys.clients_dir + ".moved"
        os.rename(self.keys.clients_dir, moved)
        try:
            n = len(self.router.log_lines())
            os.kill(self.router.proc.pid, signal.SIGHUP)
            line = ("ERROR CURVE: SIGHUP: %s: No such file or directory: "
                    "client keys kept" % self.keys.clients_dir)
            h.wait_until(lambda: any(x.endswith(" " + line) for x in
                                     self.router.log_lines()[n:]), what=line)
        finally:
            os.rename(moved, self.keys.clients_dir)
        cp = self.fire("alice", "curve.kept")
        self.assertEqual(cp.returncode, 0, cp.stderr)

    def test_http_feeder_link_works(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port,
                                          timeout=h.WAIT_TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("POST", "/events", body=json.dumps(
            {"event_type": "curve.http", "payload": {}}),
            headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 202, body)
        h.wait_event_row(self.router.store_path, json.loads(body)["id"])


class CurveAddresses(h.RouterTestCase):
    """client_addresses without 127.0.0.1: an allowed key from there is
    refused, counted on the stop line."""

    @classmethod
    def start_router(cls, **kw):
        cls.keys = Keys(cls.tmp, ["alice"])
        cls.keys.allow("alice")
        cfg = h.make_config(cls.tmp, extra={"curve": cls.keys.curve(
            {"client_addresses": ["10.0.0.0/8", "::1"]})})
        r = h.Router(cls.tmp, cfg)
        cls.daemons.append(r)
        return r.wait_ready()

    def test_address_outside_refused(self):
        cp = h.fire(["-e", "curve.addr", "-u", self.router.rep, "-t", "1000"]
                    + self.keys.flags("alice"))
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp.stderr)
        self.router.wait_log(re.escape(REFUSED % (
            "address not in client_addresses", "127.0.0.1",
            self.keys.pub["alice"])))
        self.assertEqual(rows_of_type(self.router.store_path, "curve.addr"),
                         [])
        self.router.stop()
        self.assertTrue(self.router.find_log(
            r"INFO stopped: CURVE refused [1-9]\d* clients: key not in "
            r"clients_dir 0, address not in client_addresses [1-9]\d*, "
            r"failed handshakes 0$"), self.router.log_text())


@h.unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class Amqp(h.TempDirMixin, h.unittest.TestCase):
    """The AMQPInput feeder's inproc:// link works with CURVE on."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def test_amqp_feeder_link_works(self):
        from test_amqp import Publisher, QUEUE, ROUTING_KEY, notification, \
            oslo
        broker = rabbit.Broker(self.tmp).start()
        self.addCleanup(broker.close)
        keys = Keys(self.tmp, [])
        feeders = [{"handler": "ZMQInput", "namespace": "local",
                    "config": {"uri": "tcp://127.0.0.1:0"}},
                   {"namespace": "openstack", "handler": "AMQPInput",
                    "config": {"url": broker.url, "routing_key": ROUTING_KEY,
                               "exchange_type": "topic", "queue_name": QUEUE,
                               "bindings": ["nova"]}}]
        r = h.Router(self.tmp, h.make_config(self.tmp, feeders=feeders, extra={
            "curve": keys.curve()}))
        self.addCleanup(r.kill)
        r.wait_ready()
        r.wait_log(r"amqp:openstack: .*consuming queue " + QUEUE, timeout=40)
        pub = Publisher(broker)
        self.addCleanup(pub.close)
        pub.publish(oslo(notification(1, event_type="curve.amqp")))
        h.wait_until(lambda: rows_of_type(r.store_path, "curve.amqp"),
                     what="the AMQP message's event in the store")
        r.stop()


class Ipc(h.TempDirMixin, h.unittest.TestCase):
    """An ipc:// endpoint is a CURVE server too; SIGHUP without "curve"."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def test_ipc_endpoint_takes_curve_clients_only(self):
        keys = Keys(self.tmp, ["alice"])
        keys.allow("alice")
        uri = "ipc://%s/pull" % self.tmp
        cfg = h.make_config(self.tmp, extra={"curve": keys.curve()})
        cfg["aggregator"] = {"config": {"uri": uri}}
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        r.wait_log(re.escape("INFO CURVE: %s takes CURVE clients only"
                             % uri))
        s = keys.socket(zmq.PUSH, uri)
        self.addCleanup(s.close, 0)
        send_refused(s, [b'{"event_type":"curve.ipc.plain"}'])
        r.wait_log(r" (%s)$" % "|".join(re.escape(x)
                                        for x in plaintext_lines(uri)))
        cp = h.fire(["-e", "curve.ipc", "-z", "zmq.PUSH", "-u", uri]
                    + keys.flags("alice"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        h.wait_until(lambda: rows_of_type(r.store_path, "curve.ipc"),
                     what="the event PUSHed over ipc:// in the store")
        self.assertEqual(rows_of_type(r.store_path, "curve.ipc.plain"), [])
        r.stop()

    def test_ipc_client_refused_with_client_addresses(self):
        # an ipc:// peer has no IP address: with client_addresses set it
        # is refused whatever its key (event-reactor.conf(5))
        keys = Keys(self.tmp, ["alice"])
        keys.allow("alice")
        uri = "ipc://%s/pull" % self.tmp
        cfg = h.make_config(self.tmp, extra={"curve": keys.curve(
            {"client_addresses": ["127.0.0.1/32"]})})
        cfg["aggregator"] = {"config": {"uri": uri}}
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        cp = h.fire(["-e", "curve.ipc.addr", "-z", "zmq.PUSH", "-u", uri]
                    + keys.flags("alice"))
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp.stderr)
        # libzmq names an ipc:// peer by its credentials (SO_PEERCRED)
        r.wait_log(re.escape(REFUSED.split("%s")[0] +
                             "address not in client_addresses: address "
                             "localhost:%d:%d:" % (os.getuid(), os.getgid()))
                   + r"\d+, key " + re.escape(keys.pub["alice"]) + "$")
        self.assertEqual(rows_of_type(r.store_path, "curve.ipc.addr"), [])
        r.stop()

    def test_failed_handshakes_rate_limited(self):
        # 15 plaintext connections: 10 lines, then a count of the others
        keys = Keys(self.tmp, [])
        r = h.Router(self.tmp, h.make_config(self.tmp, extra={
            "curve": keys.curve()}))
        self.addCleanup(r.kill)
        r.wait_ready()
        socks = []
        for i in range(15):
            s = keys.socket(zmq.PUSH, r.pull)
            socks.append(s)
            send_refused(s, [b'{"event_type":"curve.again"}'])
        m = r.wait_log(r' WARNING (\d+) "CURVE: handshake refused" lines '
                       r'suppressed in the last 10 s$', timeout=30)
        for s in socks:
            s.close(0)
        self.assertGreaterEqual(int(m.group(1)), 5)
        lines = [x for x in r.log_lines() if "CURVE: handshake refused"
                 in x]
        self.assertEqual(len([x for x in lines[:11] if "WARNING CURVE:" in x]),
                         10, lines[:11])
        r.stop()
        self.assertTrue(r.find_log(
            r"INFO stopped: CURVE refused (\d+) clients: key not in "
            r"clients_dir 0, address not in client_addresses 0, failed "
            r"handshakes \1$"), r.log_text())

    def test_sighup_without_curve(self):
        r = h.Router(self.tmp, h.make_config(self.tmp))
        self.addCleanup(r.kill)
        r.wait_ready()
        os.kill(r.proc.pid, signal.SIGHUP)
        r.wait_log(re.escape('INFO SIGHUP: nothing to reload (no "curve")'))
        r.stop()


class GenKey(h.TempDirMixin, h.unittest.TestCase):
    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def test_gen_key_writes_a_zcert_pair(self):
        path = os.path.join(self.tmp, "k")
        pub = gen_key(path)
        self.assertEqual(os.stat(path + "_secret").st_mode & 0o777, 0o600)
        # pyzmq's reader of czmq's certificate files
        p1, s1 = zmq.auth.load_certificate(path)
        p2, s2 = zmq.auth.load_certificate(path + "_secret")
        self.assertEqual((p1, s1), (pub.encode(), None))
        self.assertEqual(p2, pub.encode())
        self.assertEqual(zmq.curve_public(s2), p2)
        cp = h.fire(["-e", "x", "--curve-key", path + "_secret"])
        self.assertEqual(cp.returncode, 64)
        self.assertEqual(cp.stderr.decode(), "fire-event: --curve-key and "
                         "--curve-server go together\n")
        # the public certificate holds no secret key
        cp = h.fire(["-e", "x", "--curve-key", path, "--curve-server", path])
        self.assertEqual(cp.returncode, 66)
        self.assertEqual(cp.stderr.decode(), "fire-event: --curve-key %s: "
                         "no secret-key in its \"curve\" section\n" % path)
        cp = h.fire(["--gen-key", path])
        self.assertEqual(cp.returncode, 73)
        self.assertEqual(cp.stderr.decode(), "fire-event: --gen-key %s: "
                         "exists already; not overwritten\n" % path)
        # a name that exists as a symbolic link, even one to nothing, is
        # not written through, and no half pair is left
        other = os.path.join(self.tmp, "d")
        target = os.path.join(self.tmp, "target")
        os.symlink(target, other + "_secret")
        cp = h.fire(["--gen-key", other])
        self.assertEqual(cp.returncode, 73)
        self.assertEqual(cp.stderr.decode(), "fire-event: --gen-key %s: "
                         "exists already; not overwritten\n"
                         % (other + "_secret"))
        self.assertFalse(os.path.exists(target))
        self.assertFalse(os.path.lexists(other))
        # the public certificate is 0644 whatever the umask allows more
        e = os.path.join(self.tmp, "e")
        cp = subprocess.run(["sh", "-c", 'umask 000; exec "$0" --gen-key '
                             '"$1"', h.binary("fire-event"), e],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(os.stat(e).st_mode & 0o777, 0o644)
        self.assertEqual(os.stat(e + "_secret").st_mode & 0o777, 0o600)


def position(text, needle, after=True):
    """LINE:COLUMN (from 1) of the first character after needle in text
    (after False: of needle itself)."""
    at = text.index(needle) + (len(needle) if after else 0)
    line = text.count("\n", 0, at) + 1
    return "%d:%d" % (line, at - text.rfind("\n", 0, at))


class Config(h.TempDirMixin, h.unittest.TestCase):
    """config.json's "curve" errors (FILE:LINE:COLUMN, exit 78) and the
    warning for ZeroMQ endpoints beyond loopback without it."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.keys = Keys(self.tmp, ["alice"])

    def check(self, cfg, name="c.json"):
        path = h.write_json(os.path.join(self.tmp, name), cfg)
        cp = subprocess.run([h.binary("event-router"), "--check", "-c",
                             path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        with open(path, encoding="utf-8") as f:
            return cp, path, f.read()

    def assert_error(self, curve, key, message, at=None):
        cp, path, text = self.check(h.make_config(self.tmp, extra={
            "curve": curve}))
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        line = "ERROR %s:%s: %s" % (path, position(text, '"%s": ' % key)
                                    if at is None else
                                    position(text, at, False), message)
        self.assertIn(line, cp.stderr.decode())

    def test_missing_key_file(self):
        missing = os.path.join(self.tmp, "nothere")
        self.assert_error(self.keys.curve({"server_key": missing}),
                          "server_key", "server_key %s: No such file or "
                          "directory" % missing)

    def test_bad_z85(self):
        bad = os.path.join(self.tmp, "bad_secret")
        with open(bad, "w") as f:
            f.write('metadata\ncurve\n    public-key = "%s"\n'
                    '    secret-key = "%s"\n' % ("~" * 40, "~" * 40))
        self.assert_error(self.keys.curve({"server_key": bad}),
                          "server_key", "server_key %s: public-key is not a "
                          "CURVE key (40 characters of Z85)" % bad)

    def test_public_certificate_as_server_key(self):
        self.assert_error(self.keys.curve({"server_key": self.keys.server}),
                          "server_key", "server_key %s: no secret-key in "
                          "its \"curve\" section" % self.keys.server)

    def test_clients_dir_missing(self):
        missing = os.path.join(self.tmp, "noclients")
        self.assert_error(self.keys.curve({"clients_dir": missing}),
                          "clients_dir", "clients_dir %s: No such file or "
                          "directory" % missing)

    def test_bad_client_address(self):
        self.assert_error(self.keys.curve({"client_addresses": ["10.0.0.0/33"]}),
                          "client_addresses", "not an IP address or "
                          "ADDRESS/BITS network: \"10.0.0.0/33\"",
                          at='"10.0.0.0/33"')

    def test_keys_required(self):
        for key in ("server_key", "clients_dir"):
            curve = self.keys.curve()
            del curve[key]
            cp, path, text = self.check(h.make_config(self.tmp, extra={
                "curve": curve}))
            self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
            self.assertIn("ERROR %s:%s: \"curve\" needs \"%s\"" % (
                path, position(text, '"curve": '), key), cp.stderr.decode())

    def test_subscriber_keys_go_together(self):
        cfg = h.make_config(self.tmp)
        cfg["subscriber"]["curve_key"] = self.keys.secret("alice")
        cp, path, text = self.check(cfg)
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertIn("ERROR %s:%s: \"curve_key\" and \"curve_server_key\" "
                      "go together\n" % (path, position(text, '"curve_key": ')),
                      cp.stderr.decode())

    def test_no_client_addresses(self):
        self.assert_error(self.keys.curve({"client_addresses": []}),
                          "client_addresses", "\"client_addresses\" must be "
                          "an array of 1 to 64 addresses (\"10.0.0.0/8\", "
                          "\"::1\")")

    def test_file_not_a_certificate_skipped(self):
        junk = os.path.join(self.keys.clients_dir, "junk")
        with open(junk, "w") as f:
            f.write("no certificate\n")
        cp, path, text = self.check(h.make_config(self.tmp, extra={
            "curve": self.keys.curve()}))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("WARNING %s:%s: clients_dir: %s:1: not a certificate "
                      "(czmq's ZPL text: \"metadata\" and \"curve\" "
                      "sections): invalid syntax: skipped\n" % (
                          path, position(text, '"clients_dir"', False), junk),
                      cp.stderr.decode())

    def test_exposed_endpoint_warned_by_check_and_start(self):
        cfg = h.make_config(self.tmp)
        cfg["aggregator"]["config"]["listen_address"] = "0.0.0.0"
        cp, path, text = self.check(cfg)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        # the listener's position: its section's "port"
        at = position(text, '"port": ')
        line = EXPOSED % ("%s:%s: " % (path, at), "tcp://0.0.0.0:0",
                          "the PULL input (aggregator)")
        self.assertIn(line, cp.stderr.decode())
        self.assertEqual(cp.stderr.decode().count("bound beyond loopback"),
                         1, cp.stderr)
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_log(re.escape(line.replace(path, r.config_path)))
        r.stop()
        cfg["curve"] = self.keys.curve()
        cp, path, text = self.check(cfg, "c2.json")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertNotIn(b"bound beyond loopback", cp.stderr)


class Subscriber(h.TempDirMixin, h.unittest.TestCase):
    """event-sub with the router's key: an allowed event-sub runs the
    handlers of the router's events; a forged router (another key, or
    plaintext) bound where it connects feeds it nothing."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.keys = Keys(self.tmp, ["sub", "alice", "mallory"])
        self.keys.allow("sub")
        self.keys.allow("alice")
        self.out = os.path.join(self.tmp, "ran.jsonl")
        self.handlers = h.write_json(
            os.path.join(self.tmp, "h.json"),
            {"*": [{"driver": "shell",
                    "handler": "%s %s" % (h.RECORD_ARGV, self.out)}]})

    def sub_config(self, uri, curve=True):
        cfg = h.make_config(self.tmp, subscriber_uri=uri)
        if curve:
            cfg["subscriber"]["curve_key"] = self.keys.secret("sub")
            cfg["subscriber"]["curve_server_key"] = self.keys.server
        return h.write_json(os.path.join(self.tmp, "sub.json"), cfg)

    def test_allowed_subscriber_runs_handlers(self):
        cfg = h.make_config(self.tmp, extra={"curve": self.keys.curve()})
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        s = h.Sub(self.tmp, self.sub_config(r.sub_uri), self.handlers,
                  None)
        self.addCleanup(s.kill)
        s.wait_ready()
        cp = h.fire(["-e", "curve.sub", "-u", r.rep]
                    + self.keys.flags("alice"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        h.wait_record(self.out, json.loads(cp.stdout)["id"])
        s.stop()
        r.stop()

    def test_refused_subscribers_say_why(self):
        # a plaintext event-sub, and one with a key the router does not
        # allow: each logs why its handshake failed (once in 30 s)
        cfg = h.make_config(self.tmp, extra={"curve": self.keys.curve()})
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        plain = h.Sub(self.tmp, self.sub_config(r.sub_uri, curve=False),
                      self.handlers, None)
        self.addCleanup(plain.kill)
        plain.wait_log(r"WARNING handshake with %s failed: (%s)$" % (
            re.escape(r.sub_uri), "|".join(re.escape(x) for x in
                                           SUB_FAILED[:2])))
        plain.stop()
        cfg = h.make_config(self.tmp, subscriber_uri=r.sub_uri)
        cfg["subscriber"]["curve_key"] = self.keys.secret("mallory")
        cfg["subscriber"]["curve_server_key"] = self.keys.server
        refused = h.Sub(self.tmp, h.write_json(os.path.join(
            self.tmp, "mallory.json"), cfg), self.handlers, None)
        self.addCleanup(refused.kill)
        refused.wait_log(r"WARNING handshake with %s failed: %s$" % (
            re.escape(r.sub_uri), re.escape(SUB_REFUSED)))
        refused.stop()
        for s in (plain, refused):
            self.assertEqual(len([ln for ln in s.log_lines()
                                  if " WARNING handshake with " in ln]), 1,
                             s.log_text())
            self.assertFalse(s.find_log(r"ready subscribed"), s.log_text())
        r.stop()

    def test_refused_tail_says_why(self):
        # event-sub --tail with the key the router refuses: it says why
        # nothing comes, once, and never that it subscribed
        cfg = h.make_config(self.tmp, extra={"curve": self.keys.curve()})
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        cfg = h.make_config(self.tmp, subscriber_uri=r.sub_uri)
        cfg["subscriber"].update(framing="topic",
                                 curve_key=self.keys.secret("mallory"),
                                 curve_server_key=self.keys.server)
        p = subprocess.Popen([h.binary("event-sub"), "--tail", "-c",
                              h.write_json(os.path.join(
                                  self.tmp, "tail.json"), cfg)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        want = " WARNING handshake with %s failed: %s" % (r.sub_uri,
                                                        SUB_REFUSED)
        lines = LineReader(p.stderr)
        seen = lines.until(lambda l: l.endswith(want))
        p.terminate()
        out, rest = p.communicate(timeout=h.STOP_TIMEOUT)
        err = "\n".join(seen) + "\n" + (lines.buf + rest).decode()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"")
        self.assertEqual(err.count(" WARNING handshake with "), 1, err)
        self.assertNotIn("subscribed", err)
        self.assertIn("INFO tail stopped: 0 events, 0 not events\n", err)
        r.stop()

    def test_flag_errors(self):
        base = [h.binary("event-sub"), "--check", "-c",
                self.sub_config("tcp://127.0.0.1:1", False), "-e",
                self.handlers]
        cp = subprocess.run(base + ["--curve-key", self.keys.secret("sub")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=30)
        self.assertEqual(cp.returncode, 64, cp.stderr)
        cp = subprocess.run(base + ["--curve-key", self.keys.path("sub"),
                                    "--curve-server", self.keys.server],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=30)
        self.assertEqual(cp.returncode, 78, cp.stderr)
        self.assertIn("ERROR --curve-key %s: no secret-key in its \"curve\" "
                      "section\n" % self.keys.path("sub"), cp.stderr.decode())

    def test_tail_with_the_keys(self):
        cfg = h.make_config(self.tmp, extra={"curve": self.keys.curve()})
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        p = subprocess.Popen([h.binary("event-sub"), "--tail", "-c",
                              self.sub_config(r.sub_uri)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        # subscribed once the router's control message came through CURVE
        err, out = LineReader(p.stderr), LineReader(p.stdout)
        line = "INFO tailing %s: subscribed" % r.sub_uri
        err.until(lambda l: l.endswith(" " + line))
        cp = h.fire(["-e", "curve.tail", "-u", r.rep]
                    + self.keys.flags("alice"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(json.loads(out.next())["id"],
                         json.loads(cp.stdout)["id"])
        p.terminate()
        self.assertEqual(p.wait(h.STOP_TIMEOUT), 0)
        r.stop()

    def test_router_keys_not_read(self):
        # event-sub shares config.json but not the router's secret
        cfg = h.make_config(self.tmp, subscriber_uri="tcp://127.0.0.1:1",
                            extra={"curve": self.keys.curve(
                                {"server_key": "/nonexistent/server_secret"})})
        path = h.write_json(os.path.join(self.tmp, "shared.json"), cfg)
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c", path,
                             "-e", self.handlers], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        cp = subprocess.run([h.binary("event-router"), "--check", "-c",
                             path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)

    def test_check_names_the_keys(self):
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c",
                             self.sub_config("tcp://127.0.0.1:1"), "-e",
                             self.handlers], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("CURVE: key %s; the router must hold the secret of "
                      "%s\n" % (self.keys.pub["sub"], self.keys.server_pub),
                      cp.stdout.decode())
        # the flags say the same as the keys
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c",
                             self.sub_config("tcp://127.0.0.1:1", False),
                             "-e", self.handlers, "--curve-key",
                             self.keys.secret("sub"), "--curve-server",
                             self.keys.server], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("CURVE: key %s; the router must hold the secret of "
                      "%s\n" % (self.keys.pub["sub"], self.keys.server_pub),
                      cp.stdout.decode())

    def impostor(self, secret, kind=zmq.PUB):
        """A PUB (or kind) bound on a free port, a CURVE server with secret
        (None: plaintext), and a monitor of its handshakes."""
        pub = h.ctx().socket(kind)
        pub.setsockopt(zmq.LINGER, 0)
        if secret is not None:
            pub.curve_server = True
            pub.curve_secretkey = secret
        pub.bind("tcp://127.0.0.1:0")
        self.addCleanup(pub.close, 0)
        mon = pub.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
            zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL |
            zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.addCleanup(mon.close, 0)
        return pub, mon, pub.getsockopt(zmq.LAST_ENDPOINT).decode()

    def test_forged_router_feeds_nothing(self):
        other_pub, other_sec = zmq.curve_keypair()
        for secret in (other_sec, None):
            with self.subTest(impostor="plaintext" if secret is None
                              else "another key"):
                pub, mon, uri = self.impostor(secret)
                s = h.Sub(self.tmp, self.sub_config(uri), self.handlers,
                          None)
                self.addCleanup(s.kill)
                self.assertTrue(mon.poll(int(h.WAIT_TIMEOUT * 1000)))
                ev = recv_monitor_message(mon)
                self.assertIn(ev["event"],
                              (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                               zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL))
                for _ in range(3):
                    pub.send_multipart([b"forged:x", b'{"id":"0123456789'
                                        b'abcdef01234567","namespace":"forged'
                                        b'","event_type":"x","timestamp":1,'
                                        b'"payload":{}}'])
                # event-sub says why it gets nothing
                s.wait_log(r"WARNING handshake with %s failed: (%s)$" % (
                    re.escape(uri), "|".join(re.escape(x) for x in
                                             SUB_FAILED)))
                s.stop()
                self.assertFalse(s.find_log(r"ready subscribed"),
                                 s.log_text())
                self.assertFalse(os.path.exists(self.out))

    def test_forged_router_without_curve_feeds_a_plain_subscriber(self):
        # the control: without keys event-sub runs what an impostor sends
        # an XPUB is a PUB that also reads its subscribers' subscriptions:
        # one forged event, sent once event-sub has subscribed
        pub, mon, uri = self.impostor(None, zmq.XPUB)
        s = h.Sub(self.tmp, self.sub_config(uri, curve=False), self.handlers,
                  None)
        self.addCleanup(s.kill)
        self.assertTrue(mon.poll(int(h.WAIT_TIMEOUT * 1000)))
        self.assertEqual(recv_monitor_message(mon)["event"],
                         zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.assertTrue(pub.poll(int(h.WAIT_TIMEOUT * 1000)),
                        "event-sub did not subscribe")
        self.assertEqual(pub.recv()[:1], b"\x01")
        forged = (b'{"id":"0123456789abcdef01234567","namespace":"forged",'
                  b'"event_type":"x","timestamp":1,"payload":{}}')
        pub.send_multipart([b"forged:x", forged])
        h.wait_until(lambda: os.path.exists(self.out),
                     what="the forged event's handler run")
        s.stop()
