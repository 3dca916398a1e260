"""The PUB wire format (event-reactor(7), "Wire protocol").

The first default output publishes one frame per event, the stamped event,
and nothing else, as the ancestor did: its own subscriber (subscribe to "",
recv(), json.loads) works unchanged, also while event-subs and other
subscribers come and go beside it, on either output, or are killed while
they start.  The second, "framing": "topic", publishes the topic, then the
event, and answers each subscription with a control message (an empty
topic, then {"control":"subscribed"}): event-sub's readiness."""

import json
import os
import queue
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import zmq
import zmq.utils.monitor

import harness as h

# The ancestor's subscriber, as it was written: subscribe to everything,
# one recv(), json.loads, read namespace and event_type.  What it prints is
# only for the test to see.
ANCESTOR_SUBSCRIBER = """\
import json
import sys

import zmq

context = zmq.Context()
sock = context.socket(zmq.SUB)
sock.connect(sys.argv[1])
sock.setsockopt(zmq.SUBSCRIBE, b"")
while True:
    data = json.loads(sock.recv())
    print(data['namespace'], data['event_type'], data['id'], flush=True)
"""

CONTROL_MSG = [b"", h.CONTROL_TEXT]
# What event-sub of batch 1 subscribed to besides "": a control prefix
OLD_CONTROL = b"\xff"


class Ancestor:
    """The ancestor's subscriber in a process of its own; its lines are
    read by a thread, its stderr kept in a file."""

    def __init__(self, tmp, uri):
        script = os.path.join(tmp, "ancestor_subscriber.py")
        with open(script, "w") as f:
            f.write(ANCESTOR_SUBSCRIBER)
        self.err_path = os.path.join(tmp, "ancestor.%d.err" % id(self))
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([sys.executable, script, uri],
                                     stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8").split())
        self.lines.put(None)

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def next(self, timeout=h.WAIT_TIMEOUT):
        """The next [namespace, event_type, id] it printed."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise h.HarnessError("the ancestor's subscriber printed nothing "
                                 "for %.0f s" % timeout)
        if line is None:
            self.proc.wait(5)
            raise h.HarnessError("the ancestor's subscriber exited with %s:"
                                 "\n%s" % (self.proc.returncode,
                                           self.stderr()))
        return line

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._reader.join(5)
        self.proc.stdout.close()
        self._err.close()


def control_sub(uri, prefixes=(b"",)):
    """A SUB subscribed to prefixes (event-sub's by default)."""
    s = h.zsock(zmq.SUB, uri)
    for p in prefixes:
        s.setsockopt(zmq.SUBSCRIBE, p)
    return s


def next_frames(sock, timeout=h.WAIT_TIMEOUT):
    return h.recv_bounded(sock, timeout, multipart=True)


class WireTestCase(h.RouterTestCase):

    def fire(self, event_type, namespace=None):
        ev = {"event_type": event_type}
        if namespace is not None:
            ev["namespace"] = namespace
        reply = h.request(self.req_socket(), json.dumps(ev).encode())
        return reply, self.assertStamped(reply, namespace)

    def start_sub(self, uri, name, pattern="*", framing="topic", start=True):
        """An event-sub on uri (a stream of framing) whose one handler
        records each event of the pattern."""
        handlers = h.write_json(
            os.path.join(self.tmp, name + "-handlers.json"),
            {pattern: [{"driver": "shell", "handler": "%s %s/%s.jsonl"
                        % (h.RECORD_ARGV, self.tmp, name)}]})
        cfg = h.make_config(self.tmp, subscriber_uri=uri,
                            subscriber_framing=framing,
                            store_path=os.path.join(self.tmp,
                                                    name + "-results.db"))
        cfg_path = h.write_json(os.path.join(self.tmp, name + "-config.json"),
                                cfg)
        s = h.Sub(self.tmp, cfg_path, handlers, None)
        self.addCleanup(s.kill)
        return s

    def one_frame(self, prefixes=(b"",)):
        """A SUB on the one-frame output, once the router has taken its
        subscriptions (it says so: that stream carries nothing else)."""
        uri = self.router.pub
        before = self.router.subscriptions(uri)
        s = control_sub(uri, prefixes)
        self._socks.append(s)
        self.router.wait_subscriptions(uri, before + len(prefixes))
        return s

    def assertSubRan(self, name, reply):
        rec = h.wait_record(os.path.join(self.tmp, name + ".jsonl"),
                            json.loads(reply)["id"])
        self.assertEqual(rec["argv_bytes"][-1], reply)


class AncestorSubscriber(WireTestCase):
    """The default outputs, as installed."""

    def start_ancestor(self):
        before = self.router.subscriptions(self.router.pub)
        a = Ancestor(self.tmp, self.router.pub)
        self.addCleanup(a.close)
        self.router.wait_subscriptions(self.router.pub, before + 1)
        return a

    def test_gets_every_event_and_nothing_else(self):
        a = self.start_ancestor()
        fired = []
        stop = threading.Event()
        came = []
        errors = []

        def churn():
            # subscribers come and go beside it on both outputs, many
            # leaving before the router has taken their subscription: on
            # the one-frame output with batch 1's control prefix too, and
            # on the topic output, where each is answered
            try:
                while not stop.is_set():
                    n = len(came)
                    one = control_sub(self.router.pub, (b"", OLD_CONTROL))
                    topic = control_sub(self.router.sub_uri)
                    if n % 2 == 0:
                        frames = next_frames(topic)
                        while frames != CONTROL_MSG:
                            self.assertEqual(len(frames), 2, frames)
                            frames = next_frames(topic)
                    if n % 3 == 0:
                        while one.poll(0, zmq.POLLIN):
                            frames = one.recv_multipart()
                            self.assertEqual(len(frames), 1, frames)
                            self.assertTrue(frames[0].startswith(b"{"),
                                            frames)
                    came.append(1)
                    one.close(0)
                    topic.close(0)
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=churn)
        t.start()
        try:
            for round_ in range(3):
                for i in range(50):
                    fired.append(self.fire("round%d.e%d" % (round_, i)))
                # an event-sub on each output killed while it starts
                for uri, framing in ((self.router.pub, "event"),
                                     (self.router.sub_uri, "topic")):
                    k = self.start_sub(uri, "killed%d%s" % (round_, framing),
                                       framing=framing)
                    k.wait_log(r"INFO subscribing to ")
                    k.kill()
                # a real event-sub comes and goes too
                s = self.start_sub(self.router.sub_uri, "sub%d" % round_,
                                   "mark.*")
                s.wait_ready()
                for i in range(50):
                    fired.append(self.fire("live%d.e%d" % (round_, i)))
                fired.append(self.fire("mark.%d" % round_))
                self.assertSubRan("sub%d" % round_, fired[-1][0])
                s.stop()
                # it got every event fired once it was ready
                self.assertIsNotNone(s.find_log(
                    r"stopped: events 51, malformed 0, unmatched 50,"),
                    s.log_text())
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(errors, [])
        self.assertGreater(len(came), 10)
        # every event, in order, and nothing else (it would have died on
        # anything that is not an event's JSON)
        for reply, ev in fired:
            self.assertEqual(a.next(), ["local", ev["event_type"], ev["id"]])
        self.assertTrue(a.proc.poll() is None, a.stderr())
        self.assertEqual(a.stderr(), "")

    def test_event_sub_ready_beside_it(self):
        a = self.start_ancestor()
        s = self.start_sub(self.router.sub_uri, "beside")
        s.wait_ready()
        self.assertIsNotNone(s.find_log(r"INFO subscribing to %s \(topic "
                                        r"framing\)$"
                                        % re.escape(self.router.sub_uri)),
                             s.log_text())
        self.assertIsNotNone(s.find_log(r"INFO ready subscribed to %s$"
                                        % re.escape(self.router.sub_uri)),
                             s.log_text())
        reply, ev = self.fire("after.ready")
        self.assertSubRan("beside", reply)
        self.assertEqual(a.next(), ["local", "after.ready", ev["id"]])
        s.stop()
        self.assertIsNotNone(s.find_log(r"stopped: events 1, malformed 0,"),
                             s.log_text())

    def test_event_sub_on_the_one_frame_output(self):
        # as the ancestor's users would point it: ready once connected,
        # saying what that does not promise
        a = self.start_ancestor()
        before = self.router.subscriptions(self.router.pub)
        s = self.start_sub(self.router.pub, "onframe", framing=None)
        self.assertIsNotNone(s.wait_log(
            r"INFO subscribing to %s \(event framing\)$"
            % re.escape(self.router.pub)))
        s.wait_log(r"INFO ready connected to %s \(one frame per event: "
                   r"what the router publishes before it has our "
                   r"subscription is caught up from the store\)$"
                   % re.escape(self.router.pub))
        self.router.wait_subscriptions(self.router.pub, before + 1)
        reply, ev = self.fire("one.frame.sub")
        self.assertSubRan("onframe", reply)
        self.assertEqual(a.next(), ["local", "one.frame.sub", ev["id"]])
        s.stop()
        self.assertIsNotNone(s.find_log(r"stopped: events 1, malformed 0,"),
                             s.log_text())


class OneFrameOutput(WireTestCase):

    def test_events_one_frame_each_and_no_control(self):
        # batch 1's event-sub also subscribed to the control prefix 0xff:
        # nothing answers it now
        s = self.one_frame((b"", OLD_CONTROL))
        reply, _ = self.fire("one.frame")
        # byte for byte what REP replied (and the store holds)
        self.assertEqual(next_frames(s), [reply])
        t = control_sub(self.router.sub_uri)
        self._socks.append(t)
        self.assertEqual(next_frames(t), CONTROL_MSG)
        reply2, _ = self.fire("two")
        self.assertEqual(next_frames(t), [b"local:two", reply2])
        # the topic output's greeting never reached the one-frame one
        self.assertEqual(next_frames(s), [reply2])
        self.assertFalse(s.poll(0, zmq.POLLIN))

    def test_prefixes_apply_as_they_are(self):
        # an event sent without an id starts with {"id": once stamped
        s = self.one_frame((b'{"id":', b'{"zz":'))
        reply, _ = self.fire("prefix.match")
        self.assertEqual(next_frames(s), [reply])
        before = self.router.subscriptions(self.router.pub)
        s.setsockopt(zmq.UNSUBSCRIBE, b'{"id":')
        self.fire("prefix.mismatch")
        s.setsockopt(zmq.SUBSCRIBE, b"")
        self.router.wait_subscriptions(self.router.pub, before + 1)
        reply, _ = self.fire("all.again")
        self.assertEqual(next_frames(s), [reply])

    def test_reconnect_subscribes_again(self):
        s = self.one_frame()
        other = self.one_frame()
        # the router drops what it applied for the connection that ended;
        # the SUB sends its subscriptions again when it connects again
        before = self.router.subscriptions(self.router.pub)
        s.disconnect(self.router.pub)
        s.connect(self.router.pub)
        self.router.wait_subscriptions(self.router.pub, before + 1)
        reply, _ = self.fire("after.reconnect")
        self.assertEqual(next_frames(s), [reply])
        self.assertEqual(next_frames(other), [reply])
        self.assertTrue(self.router.alive())



class LastSubscriberLeaves(WireTestCase):
    """A router of its own: no subscriber of another test is still being
    torn down when this one's subscribes."""

    def test_publishes_again_once_one_subscribes(self):
        # the last subscriber leaves; one that comes later gets every
        # event once the router has taken its subscription
        s = self.one_frame()
        reply, _ = self.fire("before.leaving")
        self.assertEqual(next_frames(s), [reply])
        self._socks.remove(s)
        s.close(0)
        self.fire("to.nobody")
        again = self.one_frame()
        reply, _ = self.fire("again")
        self.assertEqual(next_frames(again), [reply])
        both = self.one_frame()
        replies = [self.fire("again.%d" % i)[0] for i in range(3)]
        for sock in (again, both):
            self.assertEqual([next_frames(sock)[0] for _ in replies],
                             replies)
        # one of two leaves: the other still gets each event
        self._socks.remove(again)
        again.close(0)
        reply, _ = self.fire("one.left")
        self.assertEqual(next_frames(both), [reply])
        self.assertTrue(self.router.alive())


class CancelsOfOthers(WireTestCase):
    """A peer's cancels, of prefixes it never subscribed, of "" that
    another subscriber has: ZeroMQ passes each up, and the router still
    publishes every event to the subscribers there are."""

    def test_cancels_keep_nothing_from_the_others(self):
        for uri in (self.router.pub, self.router.sub_uri):
            with self.subTest(uri=uri):
                before = self.router.subscriptions(uri)
                legit = control_sub(uri)
                self._socks.append(legit)
                self.router.wait_subscriptions(uri, before + 1)
                n = self.messages(uri)
                # libzmq's XSUB sends no cancel it has no subscription
                # for: a peer of its own (ZMTP 3.0) sends them
                with socket.create_connection(
                        uri[len("tcp://"):].rsplit(":", 1),
                        timeout=h.WAIT_TIMEOUT) as rogue:
                    rogue.sendall(b"\xff" + bytes(8) + b"\x7f\x03\x00" +
                                  b"NULL".ljust(20, b"\x00") + bytes(32))
                    greeting = b""
                    while len(greeting) < 64:   # the router's, whole
                        got = rogue.recv(64 - len(greeting))
                        self.assertTrue(got, "the router closed")
                        greeting += got
                    ready = (b"\x05READY\x0bSocket-Type" +
                             struct.pack(">I", 4) + b"XSUB")
                    rogue.sendall(bytes([4, len(ready)]) + ready)
                    for m in (b"\x00never-subscribed-0", b"\x00", b"\x00x",
                              b"\x05not a subscription at all"):
                        rogue.sendall(bytes([0, len(m)]) + m)
                    # the router took the four
                    h.wait_until(lambda: self.messages(uri) >= n + 4,
                                 what="the router's lines on the 4 "
                                 "messages")
                reply, _ = self.fire("after.cancels")
                frames = next_frames(legit)
                while frames == CONTROL_MSG:
                    frames = next_frames(legit)
                self.assertEqual(frames[-1], reply)

    def messages(self, uri):
        """Subscription messages the router has taken on uri."""
        rx = re.compile(r"DEBUG (\d+) subscription messages on %s "
                        % re.escape(uri))
        return sum(int(m.group(1)) for m in map(rx.search,
                                               self.router.log_lines()) if m)


class TopicFraming(WireTestCase):
    """"framing": "topic": the topic, then the event, beside the default."""

    def test_ready_line_names_both_streams(self):
        self.assertEqual(len(self.router.pubs), 2)
        self.assertNotEqual(self.router.pubs[0], self.router.pubs[1])
        self.assertEqual(self.router.sub_uri, self.router.pubs[1])

    def test_prefix_subscription_filters(self):
        # a prefix subscriber gets no control message (its topic is not
        # empty); the router says when it has taken the subscription
        before = self.router.subscriptions(self.router.sub_uri)
        s = control_sub(self.router.sub_uri, (b"alpha:",))
        self._socks.append(s)
        self.router.wait_subscriptions(self.router.sub_uri, before + 1)
        self.fire("x", "beta")
        reply, _ = self.fire("x", "alpha")
        self.assertEqual(next_frames(s), [b"alpha:x", reply])
        self.assertFalse(s.poll(0, zmq.POLLIN))

    def test_control_message_has_an_empty_topic(self):
        s = control_sub(self.router.sub_uri, (b"",))
        self._socks.append(s)
        self.assertEqual(next_frames(s), CONTROL_MSG)
        reply, _ = self.fire("two.frames", "ns")
        self.assertEqual(next_frames(s), [b"ns:two.frames", reply])

    def test_event_sub_reads_the_topic_stream(self):
        one = self.one_frame()
        s = self.start_sub(self.router.sub_uri, "topicsub")
        s.wait_ready()
        reply, _ = self.fire("via.topic")
        self.assertSubRan("topicsub", reply)
        s.stop()
        self.assertIsNotNone(s.find_log(r"stopped: events 1, malformed 0,"),
                             s.log_text())
        # the default stream still carries one frame per event, and
        # nothing of the other stream's handshake
        self.assertEqual(next_frames(one), [reply])


class SubscribedDuringABurst(WireTestCase):
    """event-reactor(7), "Wire protocol": the router takes a subscription
    during a burst without waiting for the burst's end, and answers it."""

    N = 1_000_000

    def seq(self, frames):
        self.assertEqual(frames[0], b"local:bench.tick", frames)
        return json.loads(frames[1])["payload"]["seq"]

    def test_answered_and_published_to_within_the_burst(self):
        first = control_sub(self.router.sub_uri)
        self._socks.append(first)
        self.assertEqual(next_frames(first), CONTROL_MSG)
        # er-bench pushes faster than the router takes: it never finds
        # its PULL socket empty until the burst ends
        pusher = subprocess.Popen([h.binary("er-bench"), "push",
                                   self.router.pull, str(self.N), "100"],
                                  stdout=subprocess.DEVNULL)
        try:
            # the burst is on: the first subscriber sees it, then leaves
            seen = self.seq(next_frames(first))
            self._socks.remove(first)
            first.close(0)
            late = control_sub(self.router.sub_uri)
            self._socks.append(late)
            frames = next_frames(late, 60)
            while frames != CONTROL_MSG:
                frames = next_frames(late, 60)
            # answered while the burst goes on: its events still come
            n = self.seq(next_frames(late, 60))
            self.assertGreater(n, seen)
            self.assertLess(n, self.N - 1)
        finally:
            if pusher.wait(120) != 0:
                self.fail("er-bench push exited with %d" % pusher.returncode)


# bus.h: BUS_SUBSCRIPTION_MAX, and the frame ZeroMQ reads for it
SUBSCRIPTION_MAX = 1024
SUBSCRIPTION_FRAME = SUBSCRIPTION_MAX + 10 + 33


class LongSubscriptions(WireTestCase):
    """event-reactor(7), "Subscriptions": a prefix of up to 1024 bytes is
    taken; a subscriber whose subscription frame is longer is disconnected
    before the router reads it, and the router goes on."""

    def test_longest_prefix_taken(self):
        prefix = b"n" * (SUBSCRIPTION_MAX - 2) + b":x"
        before = self.router.subscriptions(self.router.sub_uri)
        s = control_sub(self.router.sub_uri, (prefix,))
        self._socks.append(s)
        self.router.wait_subscriptions(self.router.sub_uri, before + 1)
        reply, _ = self.fire("x", "n" * (SUBSCRIPTION_MAX - 2))
        self.assertEqual(next_frames(s), [prefix, reply])

    def test_frame_bound_counts_the_framing(self):
        # libzmq 4.3 frames a subscription in 10 bytes (ZMTP 3.1's
        # SUBSCRIBE command): a prefix of the frame's bound less 10 is
        # taken
        before = self.router.subscriptions(self.router.sub_uri)
        s = control_sub(self.router.sub_uri,
                        (b"z" * (SUBSCRIPTION_FRAME - 10),))
        self._socks.append(s)
        self.router.wait_subscriptions(self.router.sub_uri, before + 1)

    def test_longer_frame_disconnects_its_subscriber(self):
        uri = self.router.sub_uri
        before = self.router.subscriptions(uri)
        # one byte over the frame once ZMTP 3.1 frames it (10 bytes)
        long_sub = h.ctx().socket(zmq.SUB)
        long_sub.setsockopt(zmq.LINGER, 0)
        self._socks.append(long_sub)
        mon = long_sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._socks.append(mon)
        long_sub.connect(uri)
        long_sub.setsockopt(zmq.SUBSCRIBE,
                            b"y" * (SUBSCRIPTION_FRAME - 10 + 1))
        event = h.recv_bounded(mon, multipart=True)
        self.assertEqual(zmq.utils.monitor.parse_monitor_message(event)
                         ["event"], zmq.EVENT_DISCONNECTED)
        # the router took nothing of it, and takes the next subscriber's
        good = control_sub(uri, (b"ns:",))
        self._socks.append(good)
        self.router.wait_subscriptions(uri, before + 1)
        reply, _ = self.fire("after.long", "ns")
        self.assertEqual(next_frames(good), [b"ns:after.long", reply])
        self.assertEqual(self.router.subscriptions(uri), before + 1)
        self.assertTrue(self.router.alive())


if __name__ == "__main__":
    unittest.main()
