"""Delivery promises (event-reactor(7)): an acknowledged event is stored.

A REP client's reply with the event's id, an HTTPInput 202 and an
AMQPInput ack come once the store has committed the event: kill -9 of the
router right after loses none of them.  While the store cannot write (its
file system is full) they get store_unavailable instead (HTTP 503, the
AMQP message requeued), nothing refused so is stored or published, and
storing resumes by itself once there is room again.

The full file system is a small tmpfs mounted in a mount namespace of the
router's own (unshare(1)): the test reaches its files as /proc/PID/root/...
and reads the store from a Python in that namespace (nsenter(1)), since
SQLite would resolve /proc/PID/root to the test's own root."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

import harness as h
import rabbit
from test_http import post

TMPFS_SIZE = "1m"
# {payload: id} of the events in the store argv[1] (a dict payload: its
# "seq"), as JSON pairs
QUERY = """
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=5)
out = []
for i, body in con.execute("SELECT id, body FROM events"):
    p = json.loads(body)["payload"]
    out.append([p["seq"] if isinstance(p, dict) else p, i])
print(json.dumps(out))
"""


def tmpfs_wrap():
    """argv that runs a command with a tmpfs of TMPFS_SIZE mounted on the
    directory given first, in a mount namespace of its own, or a reason
    why that cannot be done here (a str)."""
    script = 'mount -t tmpfs -o size=%s tmpfs "$0" && exec "$@"' % TMPFS_SIZE
    if os.geteuid() != 0:
        return "needs root (a tmpfs mount in a mount namespace)"
    try:
        cp = subprocess.run(["unshare", "--mount", "--propagation",
                             "private", "true"], capture_output=True,
                            timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unshare(1): %s" % e
    if cp.returncode == 0:
        return ["unshare", "--mount", "--propagation", "private", "sh",
                "-c", script]
    # in a chroot "/" is no mount point, so its propagation cannot be
    # changed: fine as long as the mounts are not shared with the host's
    if b"cannot change root filesystem propagation" not in cp.stderr:
        return "unshare --mount: %s" % cp.stderr.decode().strip()
    with open("/proc/self/mountinfo") as f:
        if any(" shared:" in line.split(" - ")[0] for line in f):
            return ("mounts are shared with the host and / is no mount "
                    "point (a chroot): a tmpfs would show outside")
    return ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c",
            script]


def fill(path):
    """Write path until the file system is full (ENOSPC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


class KillNine(unittest.TestCase, h.TempDirMixin):
    """A client loop sends 5,000 REQ events; the router is killed with
    SIGKILL after about 2,000 replies and restarted on the same store:
    every event whose reply the client received is in the store."""

    TOTAL, KILL_AT, CLIENTS = 5000, 2000, 4

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.db = os.path.join(self.tmp, "events.db")
        self.cfg = h.make_config(self.tmp, store_path=self.db)

    def start(self):
        r = h.Router(self.tmp, self.cfg, level="info")
        self.addCleanup(r.kill)
        return r.wait_ready()

    def test_sigkill_loses_no_acknowledged_event(self):
        r = self.start()
        lock = threading.Lock()
        acked = {}              # id -> seq
        state = {"uri": r.rep, "gen": 0, "dead": -1}
        enough, restarted = threading.Event(), threading.Event()
        errors, abandoned = [], []

        def reply(sock, gen):
            """The reply, or None once the router of gen is dead."""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if sock.poll(50, h.zmq.POLLIN):
                    return sock.recv()
                if state["dead"] >= gen:
                    # what it sent before it died is here by now
                    return sock.recv() if sock.poll(100, h.zmq.POLLIN) \
                        else None
            raise h.HarnessError("no reply within 30 s")

        def client(k):
            sock, gen = None, None
            try:
                for seq in range(k, self.TOTAL, self.CLIENTS):
                    if sock is None:
                        if state["dead"] >= state["gen"]:
                            restarted.wait(60)
                        gen, sock = state["gen"], h.zsock(h.zmq.REQ,
                                                          state["uri"])
                    sock.send(b'{"event_type":"kill9","payload":%d}' % seq)
                    rep = reply(sock, gen)
                    if rep is None:
                        abandoned.append(seq)
                        sock.close(0)
                        sock = None
                        continue
                    with lock:
                        acked[json.loads(rep)["id"]] = seq
                        if len(acked) >= self.KILL_AT:
                            enough.set()
            except Exception as e:      # reported below
                errors.append(e)
                enough.set()
            finally:
                if sock is not None:
                    sock.close(0)

        threads = [threading.Thread(target=client, args=(k,))
                   for k in range(self.CLIENTS)]
        for t in threads:
            t.start()
        try:
            self.assertTrue(enough.wait(120), "no 2,000 replies in 120 s")
            os.kill(r.proc.pid, signal.SIGKILL)
            r.proc.wait(10)
            with lock:
                at_kill = len(acked)
            state["dead"] = 0
            r2 = self.start()
            state["uri"], state["gen"] = r2.rep, 1
            restarted.set()
        finally:
            restarted.set()
            for t in threads:
                t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(r.proc.returncode, -signal.SIGKILL)
        self.assertLess(at_kill, self.TOTAL - 1000, "killed too late")
        self.assertEqual(len(acked) + len(abandoned), self.TOTAL)
        r2.stop()
        rows = dict(h.db_query(self.db, "SELECT id, body FROM events"))
        missing = [i for i in acked if i.encode() not in rows]
        sys.stderr.write("\n  kill -9 after %d replies: %d acknowledged, "
                         "%d in flight at the kill, %d stored, %d "
                         "acknowledged but not stored\n"
                         % (at_kill, len(acked), len(abandoned), len(rows),
                            len(missing)))
        self.assertEqual(missing, [], "acknowledged, not stored")
        for i, seq in acked.items():
            self.assertEqual(json.loads(rows[i.encode()])["payload"], seq)


class StoreNone(unittest.TestCase, h.TempDirMixin):

    def test_without_a_store_every_event_is_answered_and_published(self):
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        r = h.Router(tmp, h.make_config(tmp, store={"type": "none"}))
        self.addCleanup(r.kill)
        r.wait_ready()
        pub = h.PubListener(r.sub_uri)
        self.addCleanup(pub.close)
        sock = h.zsock(h.zmq.REQ, r.rep)
        self.addCleanup(sock.close, 0)
        reply = h.request(sock, b'{"event_type":"none"}')
        self.assertEqual(pub.wait_id(json.loads(reply)["id"])[1], reply)
        r.stop()
        self.assertIsNotNone(r.find_log(r"stopped: accepted 1, rejected 0, "
                                        r"published 1, .* stored 0,"))


class FullDiskTestCase(unittest.TestCase, h.TempDirMixin):
    """A router whose SQLite store is on a tmpfs of TMPFS_SIZE."""

    def setUp(self):
        wrap = tmpfs_wrap()
        if isinstance(wrap, str):
            self.skipTest(wrap)
        self.wrap = wrap
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.mnt = os.path.join(self.tmp, "store")
        os.mkdir(self.mnt)

    def start(self, feeders=()):
        feeders = [{"handler": "ZMQInput", "namespace": "local",
                    "config": {"uri": "tcp://127.0.0.1:0"}}] + list(feeders)
        cfg = h.make_config(self.tmp, feeders=feeders,
                            store_path=os.path.join(self.mnt, "events.db"))
        r = h.Router(self.tmp, cfg, wrap=self.wrap + [self.mnt])
        self.addCleanup(r.kill)
        r.wait_ready()
        self.router = r
        # the router's view of the tmpfs
        self.db = os.path.join(self.mnt, "events.db")
        self.filler = "/proc/%d/root%s/filler" % (r.proc.pid, self.mnt)
        return r

    def stored(self):
        """{payload: id} of the events in the store (a dict payload: its
        "seq")."""
        cp = subprocess.run(["nsenter", "-t", str(self.router.proc.pid),
                             "-m", "-r", sys.executable, "-c", QUERY,
                             self.db], capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        return {p: i for p, i in json.loads(cp.stdout)}

    def wait_stored(self, seq):
        return h.wait_until(lambda: self.stored().get(seq), h.WAIT_TIMEOUT,
                            "event %r in the store" % (seq,))


class FullDiskRep(FullDiskTestCase):

    def test_no_id_for_an_event_not_stored_and_storing_resumes(self):
        r = self.start()
        pub = h.PubListener(r.sub_uri)
        self.addCleanup(pub.close)
        sock = h.zsock(h.zmq.REQ, r.rep)
        self.addCleanup(sock.close, 0)
        first = json.loads(h.request(sock, b'{"event_type":"disk",'
                                           b'"payload":"first"}'))["id"]
        self.assertEqual(self.stored(), {"first": first})
        fill(self.filler)
        ids, refused = {}, []
        for seq in range(3000):
            rep = h.request(sock, b'{"event_type":"disk","payload":%d}' % seq)
            if rep.startswith(b'{"error"'):
                self.assertEqual(rep, h.STORE_UNAVAILABLE)
                refused.append(seq)
                if len(refused) == 20:
                    break
            else:
                ids[seq] = json.loads(rep)["id"]
        self.assertEqual(len(refused), 20, "the store never refused")
        sys.stderr.write("\n  full tmpfs: %d events stored after the fill, "
                         "then store_unavailable\n" % len(ids))
        # every id replied is in the file, nothing refused is
        stored = self.stored()
        self.assertEqual({s: i for s, i in stored.items() if s != "first"},
                         ids)
        self.assertEqual([s for s in refused if s in stored], [])
        r.wait_log(r"WARNING event rejected on rep: store_unavailable: "
                   r"the store could not write the event; it was not "
                   r"published$")
        r.wait_log(r"ERROR store sqlite: cannot record event [0-9a-f]{24}: "
                   r"database or disk is full$")
        # room again: the next event is stored, no restart
        os.unlink(self.filler)
        after = h.request(sock, b'{"event_type":"disk","payload":"after"}')
        self.assertEqual(self.stored()["after"], json.loads(after)["id"])
        # PUB had exactly the stored events, in their order
        pub.wait_id(json.loads(after)["id"])
        published = [json.loads(b)["payload"] for _, b in pub.events]
        self.assertEqual(published, ["first"] + sorted(ids) + ["after"])
        r.stop()
        self.assertIsNotNone(r.find_log(r"stopped: accepted %d, rejected 20,"
                                        % (len(ids) + 2)))


class FullDiskHttp(FullDiskTestCase):

    def test_503_while_the_store_cannot_write(self):
        r = self.start(feeders=[
            {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": 0, "allow_anonymous": True}}])
        port = int(r.wait_log(r"\bhttp=http://127\.0\.0\.1:(\d+)").group(1))
        ok = post(port, "/hooks/disk", b'"first"')
        self.assertEqual(ok.status, 202, ok.body)
        self.assertEqual(self.wait_stored("first"), ok.json()["id"])
        fill(self.filler)
        ids = {}
        for seq in range(3000):
            rep = post(port, "/hooks/disk", b"%d" % seq)
            if rep.status != 202:
                break
            ids[seq] = rep.json()["id"]
        self.assertEqual(rep.status, 503, rep.body)
        self.assertEqual(rep.body, h.STORE_UNAVAILABLE)
        self.assertEqual(rep.headers.get("retry-after"), "5")
        self.assertEqual(rep.headers.get("content-type"), "application/json")
        stored = self.stored()
        self.assertNotIn(seq, stored)
        self.assertEqual({s: i for s, i in stored.items() if s != "first"},
                         ids)
        os.unlink(self.filler)
        rep = post(port, "/hooks/disk", b'"after"')
        self.assertEqual(rep.status, 202, rep.body)
        self.assertEqual(self.stored()["after"], rep.json()["id"])
        r.stop()


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class FullDiskAmqp(FullDiskTestCase):

    @staticmethod
    def requeues(router, pattern):
        """The times (s) of the router's log lines matching pattern."""
        out = []
        for line in router.log_lines():
            m = h.LOG_RE.match(line)
            if m and re.search(pattern, line):
                ts = m.group("ts")
                out.append(time.mktime(time.strptime(
                    ts[:19], "%Y-%m-%dT%H:%M:%S")) + float(ts[19:23]))
        return out

    def test_message_requeued_not_acked_while_the_store_cannot_write(self):
        from test_amqp import Publisher, notification, oslo
        broker = rabbit.Broker(self.tmp)
        self.addCleanup(broker.close)
        broker.start()
        queue = "er-test-full-disk"
        r = self.start(feeders=[
            {"namespace": "openstack", "handler": "AMQPInput",
             "config": {"url": broker.url, "routing_key": "notifications.info",
                        "exchange_type": "topic", "queue_name": queue,
                        "bindings": ["nova"]}}])
        r.wait_log(r"amqp:openstack: consuming queue " + queue)
        pub = Publisher(broker)
        self.addCleanup(pub.close)

        def seqs():
            return set(self.stored())
        pub.publish(oslo(notification(1)))
        h.wait_until(lambda: 1 in seqs(), h.WAIT_TIMEOUT, "message 1 stored")
        fill(self.filler)
        # the store refuses once its WAL needs room: publish until a message
        # is requeued, then nothing is acknowledged or stored
        n = 2
        rx = (r"WARNING amqp:openstack: message requeued: store_unavailable: "
              r"the store could not write the event; it was not published")
        while r.find_log(rx) is None:
            self.assertLess(n, 3000, "the store never refused")
            pub.publish(oslo(notification(n)))
            h.wait_until(lambda: n in seqs() or r.find_log(rx),
                         h.WAIT_TIMEOUT, "message %d stored or requeued"
                         % n)  # noqa: B023 (n is read at once)
            n += 1
        last = n - 1
        self.assertNotIn(last, seqs())
        self.assertNotEqual(broker.list_queues()[queue], (0, 0))
        # handed out again, refused again, after a pause of 500 ms
        h.wait_until(lambda: len(self.requeues(r, rx)) >= 2, h.WAIT_TIMEOUT,
                     "the message requeued twice")
        t = self.requeues(r, rx)
        # the pause starts as the message is refused, a moment before its
        # log line, and log times are cut to the millisecond
        self.assertGreaterEqual(t[1] - t[0], 0.49)
        os.unlink(self.filler)
        h.wait_until(lambda: last in seqs(), 30,
                     "the requeued message stored once there is room")
        broker.wait_queues_empty([queue])
        r.stop()
        self.assertIsNotNone(r.find_log(r"amqp:openstack: stopped: received "
                                        r"\d+, acknowledged %d, rejected 0, "
                                        r"requeued [1-9]" % last))


if __name__ == "__main__":
    unittest.main()
