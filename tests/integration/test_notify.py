"""Readiness for a service manager (event-router(8) and event-sub(8),
ENVIRONMENT; the shipped units are Type=notify): each daemon sends
READY=1 to NOTIFY_SOCKET once it is ready and STOPPING=1 when it begins to
stop, on a path or an abstract socket ("@name"), as sd_notify(3) does."""

import os
import signal
import socket
import unittest

import harness as h


class Notify(unittest.TestCase, h.TempDirMixin):

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.daemons = []
        self.addCleanup(lambda: h.stop_all(self.daemons))

    def listener(self, abstract):
        """A datagram socket standing for systemd's; (socket, the value
        of NOTIFY_SOCKET)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(h.WAIT_TIMEOUT)
        if abstract:
            name = "er-notify-%d-%d" % (os.getpid(), id(s))
            s.bind("\0" + name)
            return s, "@" + name
        path = os.path.join(self.tmp, "notify-%d" % id(s))
        s.bind(path)
        return s, path

    def expect(self, s, what, daemon):
        try:
            got = s.recv(4096)
        except socket.timeout:
            self.fail("no %s within %ss:\n%s" % (what, h.WAIT_TIMEOUT,
                                                 daemon.log_text()))
        self.assertIn(what.encode(), got.split(b"\n"), got)

    def test_ready_then_stopping(self):
        for abstract in (False, True):
            with self.subTest(abstract=abstract):
                sr, vr = self.listener(abstract)
                r = h.Router(self.tmp, h.make_config(self.tmp, store_path=(
                    os.path.join(self.tmp, "ev-%d.db" % abstract))),
                    env={"NOTIFY_SOCKET": vr})
                self.daemons.append(r)
                self.expect(sr, "READY=1", r)
                # ready means ready: the line is out and REP answers
                r.wait_ready()
                cp = h.fire(["-u", r.rep, "-t", "5000", "-e", "notify.up"])
                self.assertEqual(cp.returncode, 0, cp.stderr)

                ss, vs = self.listener(abstract)
                cfg = h.make_config(self.tmp, subscriber_uri=r.sub_uri,
                                    store_path=r.store_path)
                s = h.Sub(self.tmp, h.write_json(os.path.join(
                    self.tmp, "sub-%d.json" % abstract), cfg),
                    h.write_json(os.path.join(self.tmp, "h.json"), {}),
                    r.sub_uri, env={"NOTIFY_SOCKET": vs})
                self.daemons.append(s)
                self.expect(ss, "READY=1", s)
                s.wait_ready()

                for d, sock in ((s, ss), (r, sr)):
                    d.proc.send_signal(signal.SIGTERM)
                    self.expect(sock, "STOPPING=1", d)
                    self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
