"""A subscriber that falls behind (event-reactor(7), "Slow subscribers"): it holds
publishing back for up to limits.publish_wait_ms and loses nothing; one
stalled longer misses events while the others still get every one.  The
subscribers read the topic-framed output, whose control message says when
each is subscribed."""

import subprocess
import sys
import threading
import unittest

import zmq

import harness as h
import test_metrics as tm

# More than a subscriber's queue holds: the router's high-water mark
# (100000 messages), the kernel's socket buffers and the SUB's own.
N = 200000


def slow_sub(uri, greeted=True):
    """A SUB that keeps little on its side, so the router's queue fills;
    ready once the router greeted its subscription (greeted)."""
    s = h.ctx().socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, 1000)
    s.setsockopt(zmq.RCVBUF, 65536)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(uri)
    if greeted:
        frames = h.recv_bounded(s, multipart=True)
        assert frames == [b"", h.CONTROL_TEXT], frames
    return s


def read_all(sock, n, what, timeout=h.WAIT_TIMEOUT):
    """Receive events until n arrived; returns the payload numbers."""
    seen = []
    while len(seen) < n:
        if not sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise h.HarnessError("%s: %d of %d events, then nothing for "
                                 "%.0f s" % (what, len(seen), n, timeout))
        topic, body = sock.recv_multipart()
        if topic != b"":    # not a control message
            seen.append(int(body[body.rindex(b":") + 1:-2]))
    return seen


def pusher(uri):
    p = h.zsock(zmq.PUSH, uri)
    p.setsockopt(zmq.SNDHWM, 0)
    return p


def push_many(sock, n, first=0):
    for i in range(first, first + n):
        sock.send(b'{"event_type":"slow.tick","payload":{"n":%d}}' % i)


# The pusher of the stall test runs in a process of its own: in the test's
# process it would hold the GIL that the healthy reader needs.
PUSHER = """
import sys, zmq
c = zmq.Context()
s = c.socket(zmq.PUSH)
s.setsockopt(zmq.SNDHWM, 0)
s.setsockopt(zmq.LINGER, 120000)
s.connect(sys.argv[1])
for i in range(int(sys.argv[2])):
    s.send(b'{"event_type":"slow.tick","payload":{"n":%d}}' % i)
s.close()
c.term()    # waits (LINGER, 120 s) until every event is handed over
"""


def push_process(case, uri, n):
    """The pusher, killed at the test's end if still running (it must
    not outlive the run, nor hold its output pipe open)."""
    p = subprocess.Popen([sys.executable, "-c", PUSHER, uri, str(n)],
                         stdout=subprocess.DEVNULL)
    case.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait(5)))
    return p


def fill_paused(case, wait_ms):
    """A subscriber that reads nothing, and a thread pushing N events;
    returned once publishing waits for that subscriber (its queue is
    full).  The caller joins the thread."""
    paused = slow_sub(case.router.sub_uri)
    push = pusher(case.router.pull)
    case._socks += [paused, push]
    t = threading.Thread(target=push_many, args=(push, N))
    t.start()
    try:
        case.router.wait_log(r"DEBUG a subscriber's queue is full: "
                             r"publishing waits for it \(up to %d ms\)"
                             % wait_ms)
    except BaseException:
        t.join(60)
        raise
    return paused, t


def next_from(sock, least, what, timeout=h.WAIT_TIMEOUT):
    """The next event numbered least or more (earlier ones skipped)."""
    while True:
        v = read_all(sock, 1, what, timeout)[0]
        if v >= least:
            return v


def read_until(sock, value, what):
    """Receive events until the one numbered value; returns all numbers."""
    seen = []
    while not seen or seen[-1] != value:
        seen += read_all(sock, 1, what)
    return seen


class Backpressure(h.RouterTestCase):
    """A paused subscriber, for less than publish_wait_ms: it gets all."""
    router_kwargs = {"store": {"type": "none"},
                     "extra": {"limits": {"publish_wait_ms": 20000}}}

    def test_paused_subscriber_loses_nothing(self):
        # its queue is full: the router waits for it (and the inputs wait
        # for the router)
        paused, t = fill_paused(self, 20000)
        try:
            # a subscriber arriving now is greeted too, once there is room
            late = slow_sub(self.router.sub_uri, greeted=False)
            self._socks.append(late)
            got, greeting = [], None
            poller = zmq.Poller()
            poller.register(paused, zmq.POLLIN)
            poller.register(late, zmq.POLLIN)
            while len(got) < N or greeting is None:
                ready = dict(poller.poll(int(h.WAIT_TIMEOUT * 1000)))
                if not ready:
                    raise h.HarnessError("paused: %d of %d events; greeting:"
                                         " %r" % (len(got), N, greeting))
                if paused in ready:
                    got += read_all(paused, 1, "paused subscriber")
                if late in ready:
                    frames = late.recv_multipart()
                    if frames[0] == b"":
                        greeting = frames
        finally:
            t.join(60)
        self.assertEqual(got, list(range(N)))
        self.assertIsNone(self.router.find_log(r"has had no room"))
        self.assertEqual(greeting, [b"", h.CONTROL_TEXT])


class Stalled(h.RouterTestCase):
    """A subscriber that reads nothing for longer than publish_wait_ms."""
    router_kwargs = {"store": {"type": "none"},
                     "extra": {"limits": {"publish_wait_ms": 1000},
                               "metrics": {"listen": "127.0.0.1:0"}}}

    def test_stalled_subscriber_does_not_hold_up_others(self):
        stalled = slow_sub(self.router.sub_uri)
        healthy = slow_sub(self.router.sub_uri)
        self._socks += [stalled, healthy]
        p = push_process(self, self.router.pull, N)
        try:
            # the healthy one is still waited for: it gets every event
            got = read_all(healthy, N, "healthy subscriber")
        finally:
            self.assertEqual(p.wait(60), 0)
        self.assertEqual(got, list(range(N)))
        self.router.wait_log(
            r"WARNING a subscriber has had no room for 1000 ms \(its queue "
            r"of 2048 messages is full\): it misses events until it has "
            r"read half of it; the others are still waited for "
            r"\(limits\.publish_wait_ms\)")
        # the stalled one got what fitted in its queue, in order
        missed = read_all(stalled, 1, "stalled subscriber")
        while stalled.poll(500, zmq.POLLIN):
            missed += read_all(stalled, 1, "stalled subscriber")
        self.assertLess(len(missed), N)
        self.assertEqual(missed, sorted(missed))
        # having read its queue, it gets events again, and so do the others
        push = pusher(self.router.pull)
        self._socks.append(push)
        push_many(push, 1, 10 ** 6)
        self.assertEqual(next_from(stalled, 10 ** 6, "recovered"), 10 ** 6)
        self.assertEqual(next_from(healthy, 10 ** 6, "healthy"), 10 ** 6)
        # each stall is logged and counted at the stop and in /metrics.
        # There can be more than one: a stalled subscriber's queue is set
        # aside until it has room again, and under load its side may still
        # take in a few messages (its kernel buffer, its I/O thread) after
        # the first.
        got = tm.scrape(tm.metrics_port(self.router))
        set_aside = tm.value(got, "eventreactor_subscribers_set_aside_total")
        self.router.stop()
        stop = self.router.find_log(
            r"stopped: accepted %d, .* stalled subscribers (\d+)," % (N + 1))
        self.assertIsNotNone(stop, self.router.log_text())
        warned = sum(1 for line in self.router.log_lines()
                     if "WARNING a subscriber has had no room for 1000 ms"
                     in line)
        self.assertGreaterEqual(warned, 1)
        self.assertEqual(int(stop.group(1)), warned)
        self.assertEqual(set_aside, warned)


class StopWhileWaiting(h.RouterTestCase):
    """SIGTERM ends a wait for a full subscriber at once, however long
    limits.publish_wait_ms is (the router takes its signals in its event
    loop, and the wait is inside one of the loop's callbacks)."""
    router_kwargs = {"store": {"type": "none"},
                     "extra": {"limits": {"publish_wait_ms": 60000}}}

    def answered(self):
        """1 when the REP input answers a request within 2 s."""
        req = h.zsock(zmq.REQ, self.router.rep)
        try:
            req.send(b'{"event_type":"slow.probe"}')
            return req.poll(2000, zmq.POLLIN) != 0
        finally:
            req.close()

    def test_stop_ends_the_wait(self):
        paused, t = fill_paused(self, 60000)
        try:
            # until the buffers on the way are full too, room comes and
            # goes; once it is gone the router answers nothing, not even
            # a request on its REP input
            h.wait_until(lambda: not self.answered(), h.WAIT_TIMEOUT * 3,
                         "the router waiting for the paused subscriber")
            # bounded by h.STOP_TIMEOUT, far below publish_wait_ms
            self.assertEqual(self.router.stop(), 0)
        finally:
            t.join(60)
        self.assertIsNotNone(self.router.find_log(r"stopped: accepted \d+, "),
                             self.router.log_text())


if __name__ == "__main__":
    unittest.main()
