"""The PUB wire format (README.rst, "Wire protocol").

The default output publishes one frame per event, the stamped event, as the
ancestor did: its own subscriber (subscribe to "", recv(), json.loads) works
unchanged and never sees anything else, also while event-sub and other
subscribers that ask for control frames come and go beside it.  event-sub's
readiness handshake: a subscription to the control prefix 0xff is answered
with 0xff {"control":"subscribed"} once every subscription before it is
live.  "framing": "topic" adds the two-frame stream (topic, then event) for
subscribers that filter on a topic prefix."""

import json
import os
import queue
import subprocess
import sys
import threading
import time
import unittest

import zmq

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

CONTROL_FRAME = h.CONTROL + h.CONTROL_TEXT

# The default one-frame stream and, beside it, the two-frame one.
TWO_OUTPUTS = {"outputs": [
    {"handler": "zeromq", "config": {"listen_address": "127.0.0.1",
                                     "port": 0}},
    {"handler": "zeromq", "config": {"listen_address": "127.0.0.1",
                                     "port": 0, "framing": "topic"}}]}


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


def control_sub(uri, prefixes=(b"", h.CONTROL)):
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

    def start_sub(self, uri, name, pattern="*"):
        """An event-sub on uri whose one handler records each event of
        the pattern."""
        handlers = h.write_json(
            os.path.join(self.tmp, name + "-handlers.json"),
            {pattern: [{"driver": "shell", "handler": "%s %s/%s.jsonl"
                        % (h.RECORD_ARGV, self.tmp, name)}]})
        cfg = h.make_config(self.tmp, subscriber_uri=uri,
                            store_path=os.path.join(self.tmp,
                                                    name + "-results.db"))
        cfg_path = h.write_json(os.path.join(self.tmp, name + "-config.json"),
                                cfg)
        s = h.Sub(self.tmp, cfg_path, handlers, None)
        self.addCleanup(s.kill)
        return s

    def assertSubRan(self, name, reply):
        rec = h.wait_record(os.path.join(self.tmp, name + ".jsonl"),
                            json.loads(reply)["id"])
        self.assertEqual(rec["argv_bytes"][-1], reply)


class AncestorSubscriber(WireTestCase):
    """The default output, as installed."""

    def start_ancestor(self):
        a = Ancestor(self.tmp, self.router.pub)
        self.addCleanup(a.close)
        # it has no readiness signal of its own (the slow joiner): fire
        # until an event reaches it
        deadline = time.monotonic() + h.WAIT_TIMEOUT
        while True:
            _, ev = self.fire("probe")
            try:
                line = a.next(timeout=0.2)
                break
            except h.HarnessError as e:
                if "exited" in str(e) or time.monotonic() > deadline:
                    raise
        # the rest of the probes, up to the last one fired
        while line[2] != ev["id"]:
            self.assertEqual(line[:2], ["local", "probe"])
            line = a.next()
        return a

    def test_gets_every_event_and_nothing_else(self):
        a = self.start_ancestor()
        fired = []
        stop = threading.Event()
        greeted = []
        errors = []

        def churn():
            # subscribers that ask for control frames come and go beside
            # it: each new one makes the router publish a control frame;
            # every other one leaves before its answer
            try:
                while not stop.is_set():
                    s = control_sub(self.router.pub)
                    if len(greeted) % 2 == 0:
                        # events may come first ("" is applied first)
                        frames = next_frames(s)
                        while frames != [CONTROL_FRAME]:
                            self.assertEqual(len(frames), 1, frames)
                            self.assertTrue(frames[0].startswith(b"{"),
                                            frames)
                            frames = next_frames(s)
                    greeted.append(1)
                    s.close(0)
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=churn)
        t.start()
        try:
            for round_ in range(3):
                for i in range(50):
                    fired.append(self.fire("round%d.e%d" % (round_, i)))
                # a real event-sub comes and goes too
                s = self.start_sub(self.router.pub, "sub%d" % round_,
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
        self.assertGreater(len(greeted), 10)
        # every event, in order, and nothing else (it would have died on
        # anything that is not an event's JSON)
        for reply, ev in fired:
            self.assertEqual(a.next(), ["local", ev["event_type"], ev["id"]])
        self.assertTrue(a.proc.poll() is None, a.stderr())
        self.assertEqual(a.stderr(), "")

    def test_event_sub_ready_beside_it(self):
        a = self.start_ancestor()
        s = self.start_sub(self.router.pub, "beside")
        s.wait_ready()
        self.assertIsNotNone(s.find_log(r"INFO ready subscribed to %s$"
                                        % self.router.pub), s.log_text())
        reply, ev = self.fire("after.ready")
        self.assertSubRan("beside", reply)
        self.assertEqual(a.next(), ["local", "after.ready", ev["id"]])
        s.stop()
        self.assertIsNotNone(s.find_log(r"stopped: events 1, malformed 0,"),
                             s.log_text())


class ControlHandshake(WireTestCase):

    def test_control_frame_then_events_one_frame_each(self):
        s = control_sub(self.router.pub)
        self._socks.append(s)
        self.assertEqual(next_frames(s), [CONTROL_FRAME])
        reply, _ = self.fire("one.frame")
        # byte for byte what REP replied (and the store holds)
        self.assertEqual(next_frames(s), [reply])

    def test_control_prefix_is_echoed(self):
        s = control_sub(self.router.pub, (h.CONTROL + b"mine",))
        self._socks.append(s)
        self.assertEqual(next_frames(s),
                         [h.CONTROL + b"mine" + h.CONTROL_TEXT])
        # subscribed to control frames only: no event reaches it
        self.fire("not.for.it")
        s.setsockopt(zmq.SUBSCRIBE, h.CONTROL + b"again")
        self.assertEqual(next_frames(s),
                         [h.CONTROL + b"again" + h.CONTROL_TEXT])

    def test_other_prefixes_apply_as_they_are(self):
        # subscribed to before connecting: a SUB sends 0xff last, so its
        # answer follows the other prefixes
        s = h.ctx().socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        for p in (h.CONTROL, b'{"id":', b'{"zz":'):
            s.setsockopt(zmq.SUBSCRIBE, p)
        s.connect(self.router.pub)
        self._socks.append(s)
        self.assertEqual(next_frames(s), [CONTROL_FRAME])
        # an event sent without an id starts with {"id": once stamped
        reply, _ = self.fire("prefix.match")
        self.assertEqual(next_frames(s), [reply])
        s.setsockopt(zmq.UNSUBSCRIBE, b'{"id":')
        self.fire("prefix.mismatch")
        s.setsockopt(zmq.SUBSCRIBE, h.CONTROL + b"z")
        self.assertEqual(next_frames(s), [h.CONTROL + b"z" + h.CONTROL_TEXT])

    def test_unsubscribe_and_subscribe_again(self):
        s = control_sub(self.router.pub)
        self._socks.append(s)
        self.assertEqual(next_frames(s), [CONTROL_FRAME])
        reply, _ = self.fire("before.unsubscribe")
        self.assertEqual(next_frames(s), [reply])
        # the router applies a cancel as it applied the subscription: a
        # control frame asked for after it comes, and no event before it
        s.setsockopt(zmq.UNSUBSCRIBE, b"")
        self.fire("while.unsubscribed")
        s.setsockopt(zmq.SUBSCRIBE, h.CONTROL + b"u")
        self.assertEqual(next_frames(s), [h.CONTROL + b"u" + h.CONTROL_TEXT])
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.setsockopt(zmq.SUBSCRIBE, h.CONTROL + b"s")
        self.assertEqual(next_frames(s), [h.CONTROL + b"s" + h.CONTROL_TEXT])
        reply, _ = self.fire("subscribed.again")
        self.assertEqual(next_frames(s), [reply])

    def test_reconnect_subscribes_again(self):
        s = control_sub(self.router.pub)
        self._socks.append(s)
        self.assertEqual(next_frames(s), [CONTROL_FRAME])
        other = control_sub(self.router.pub)
        self._socks.append(other)
        self.assertEqual(next_frames(other), [CONTROL_FRAME])
        # the router drops what it applied for the connection that ended;
        # the SUB sends its subscriptions again when it connects again
        s.disconnect(self.router.pub)
        s.connect(self.router.pub)
        self.assertEqual(next_frames(s), [CONTROL_FRAME])
        reply, _ = self.fire("after.reconnect")
        self.assertEqual(next_frames(s), [reply])
        # the other subscriber got the greeting of the reconnection, then
        # the event
        self.assertEqual(next_frames(other), [CONTROL_FRAME])
        self.assertEqual(next_frames(other), [reply])
        self.assertTrue(self.router.alive())


class TopicFraming(WireTestCase):
    """"framing": "topic": the topic, then the event, beside the default."""
    router_kwargs = {"extra": TWO_OUTPUTS}

    def test_ready_line_names_both_streams(self):
        self.assertEqual(len(self.router.pubs), 2)
        self.assertNotEqual(self.router.pubs[0], self.router.pubs[1])

    def test_prefix_subscription_filters(self):
        s = control_sub(self.router.pubs[1], (b"alpha:",))
        self._socks.append(s)
        # a prefix subscriber gets no control message (its topic is
        # empty): fire until an event reaches it
        deadline = time.monotonic() + h.WAIT_TIMEOUT
        while True:
            _, probe = self.fire("probe", "alpha")
            if s.poll(100, zmq.POLLIN):
                break
            self.assertLess(time.monotonic(), deadline)
        topic, body = None, b'{"id": null}'
        while json.loads(body)["id"] != probe["id"]:
            topic, body = next_frames(s)
            self.assertEqual(topic, b"alpha:probe")
        self.fire("x", "beta")
        reply, _ = self.fire("x", "alpha")
        self.assertEqual(next_frames(s), [b"alpha:x", reply])

    def test_control_message_has_an_empty_topic(self):
        s = control_sub(self.router.pubs[1], (b"",))
        self._socks.append(s)
        self.assertEqual(next_frames(s), [b"", h.CONTROL_TEXT])
        reply, _ = self.fire("two.frames", "ns")
        self.assertEqual(next_frames(s), [b"ns:two.frames", reply])

    def test_event_sub_reads_the_topic_stream(self):
        one = control_sub(self.router.pubs[0])
        self._socks.append(one)
        self.assertEqual(next_frames(one), [CONTROL_FRAME])
        s = self.start_sub(self.router.pubs[1], "topicsub")
        s.wait_ready()
        reply, _ = self.fire("via.topic")
        self.assertSubRan("topicsub", reply)
        s.stop()
        self.assertIsNotNone(s.find_log(r"stopped: events 1, malformed 0,"),
                             s.log_text())
        # the default stream still carries one frame per event, and the
        # event-sub on the other stream sent it no control frame
        self.assertEqual(next_frames(one), [reply])


if __name__ == "__main__":
    unittest.main()
