"""What a hostile peer can make the router do (issue 16): six raw bytes on
the REP endpoint, frames over the size limit."""

import json
import re
import socket
import threading
import time

import harness as h

# A ZMTP 1.0 peer's identity (empty), then the message "B" with no empty
# delimiter before it, then a frame of length 0, which libzmq refuses.
SIX_BYTES = bytes([0x01, 0x00, 0x02, 0x00, 0x42, 0x00])
MALFORMED_LINE = ("WARNING malformed message on rep from %s dropped "
                  "unanswered: no empty delimiter frame before the request, "
                  "as a REQ client sends")
MALFORMED_RE = re.compile(r" WARNING malformed message on ")
SUPPRESSED_RE = re.compile(r" WARNING (\d+) \"malformed message\" lines "
                           r"suppressed in the last 10 s$")


class SixBytes(h.RouterTestCase):
    """A loop sending the six bytes to the REP endpoint does not keep
    fire-event from its replies; each such message is logged
    (rate-limited) and counted."""

    N = 20

    def six_byte_loop(self, port, stop, sent, errors):
        """Connect, send the six bytes, read until the router closes the
        connection (it has read them then), close; until stop."""
        try:
            while not stop.is_set():
                with socket.create_connection(("127.0.0.1", port),
                                              timeout=h.WAIT_TIMEOUT) as s:
                    s.sendall(SIX_BYTES)
                    while s.recv(4096):
                        pass
                sent[0] += 1
        except Exception as e:     # reported by the test's thread
            errors.append(e)

    def test_fire_event_answered_beside_six_byte_loop(self):
        port = int(self.router.rep.rsplit(":", 1)[1])
        # first a ZMTP 3 peer without the delimiter: ZeroMQ gives its address
        dealer = h.zsock(h.zmq.DEALER, self.router.rep)
        self._socks.append(dealer)
        dealer.send(b"B")
        self.router.wait_log(MALFORMED_LINE % "127.0.0.1")
        stop, sent, errors = threading.Event(), [0], []
        t = threading.Thread(target=self.six_byte_loop,
                             args=(port, stop, sent, errors))
        t.start()
        try:
            h.wait_until(lambda: sent[0] >= 5 or errors, what="five "
                         "six-byte connections")
            for i in range(self.N):
                cp = h.fire(["-u", self.router.rep, "-e", "six.%d" % i,
                             "-d", '{"i":%d}' % i])
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertLess(cp.elapsed, 5.0)
                ev = self.assertStamped(cp.stdout.strip())
                self.assertEqual(ev["event_type"], "six.%d" % i)
        finally:
            stop.set()
            t.join(h.WAIT_TIMEOUT)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(sent[0], 5)
        self.router.stop()
        lines = [ln for ln in self.router.log_lines()
                 if MALFORMED_RE.search(ln)]
        self.assertTrue(lines[0].endswith(MALFORMED_LINE % "127.0.0.1"),
                        lines[0])
        self.assertTrue(lines[1].endswith(MALFORMED_LINE %
                                          "an unknown address"), lines[1])
        for ln in lines[1:]:
            self.assertTrue(ln.endswith(MALFORMED_LINE % "an unknown address")
                            or SUPPRESSED_RE.search(ln), ln)
        # rate-limited: 10 lines a window of 10 s at most
        self.assertLessEqual(len(lines), 10 * len(
            [ln for ln in lines if SUPPRESSED_RE.search(ln)] + [0]) + 10)
        self.assertIsNotNone(self.router.find_log(
            r"INFO stopped: accepted %d, rejected 0, .*, "
            r"malformed messages %d$" % (self.N, sent[0] + 1)),
            self.router.log_text()[-2000:])
