"""event-sub --tail [PATTERN]: the router's stream as JSON lines on
stdout, one event a line (its text as published, line breaks between
tokens made spaces), only the events PATTERN matches, no handler run;
SIGTERM and a closed stdout end it with exit status 0."""

import json
import os
import select
import signal
import subprocess

import harness as h


class Tail(h.RouterTestCase):

    def start_tail(self, *args):
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic"}
        path = h.write_json(os.path.join(self.tmp, "tail.json"), cfg)
        p = subprocess.Popen([h.binary("event-sub"), "--tail", "-c", path] +
                             list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        # ready once the router's control message came: events fired from
        # now on reach it
        line = self.read_line(p.stderr)
        self.assertRegex(line, r"INFO tailing %s \(topic framing\)"
                         % h.re.escape(self.router.sub_uri))
        self.assertRegex(self.read_line(p.stderr), r"INFO tailing %s: "
                         r"subscribed$" % h.re.escape(self.router.sub_uri))
        return p

    def read_line(self, f, timeout=h.WAIT_TIMEOUT):
        """The next line of pipe f, waiting at most timeout (the pipe is
        read with os.read, so that select sees what is not read yet)."""
        buf = self.bufs.setdefault(f.fileno(), b"")
        deadline = h.time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - h.time.monotonic()
            r, _, _ = select.select([f], [], [], max(left, 0))
            self.assertTrue(r, "no line within %s s" % timeout)
            chunk = os.read(f.fileno(), 65536)
            self.assertTrue(chunk, "end of file before a line")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        self.bufs[f.fileno()] = buf
        return line.decode()

    def setUp(self):
        super().setUp()
        self.bufs = {}

    def fire(self, text):
        reply = h.request(self.req_socket(), text.encode())
        return self.assertStamped(reply, namespace=None)["id"]

    def test_subscribed_once(self):
        # another subscriber's greeting reaches the tail too: it says
        # "subscribed" for its own only, and goes on printing
        p = self.start_tail()
        for _ in range(3):
            h.PubListener(self.router.sub_uri).close()
        eid = self.fire('{"event_type":"after.others"}')
        self.assertEqual(json.loads(self.read_line(p.stdout))["id"], eid)
        before = self.bufs.get(p.stderr.fileno(), b"")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=h.WAIT_TIMEOUT)
        self.assertEqual(p.returncode, 0)
        rest = before + err
        self.assertIn(b"INFO tail stopped: 1 events", rest)
        self.assertNotIn(b"subscribed", rest, rest)

    def test_lines_for_the_pattern(self):
        p = self.start_tail("local:tail.*")
        a = self.fire('{"event_type": "tail.a",\n "payload": {"x": [1,\n 2]}}')
        self.fire('{"event_type": "other.b"}')
        c = self.fire('{"event_type": "tail.c", "payload": "line\\nbreak"}')
        lines = [self.read_line(p.stdout), self.read_line(p.stdout)]
        stored = [h.wait_event_row(self.router.store_path, i)[4].decode()
                  for i in (a, c)]
        # as published, the breaks between tokens as spaces
        self.assertEqual(lines, [s.replace("\n", " ") for s in stored])
        self.assertEqual([json.loads(ln)["id"] for ln in lines], [a, c])
        self.assertEqual(json.loads(lines[1])["payload"], "line\nbreak")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(h.WAIT_TIMEOUT), 0)
        self.assertEqual(self.bufs.get(p.stdout.fileno(), b"") +
                         p.stdout.read(), b"")      # other.b: not printed
        self.assertRegex(p.stderr.read().decode(),
                         r"INFO tail stopped: 3 events, 0 not events\n")
        # no handler ran: nothing recorded
        self.assertEqual(h.result_rows(self.router.store_path), [])

    def test_every_event_and_a_closed_stdout(self):
        p = self.start_tail()
        ids = [self.fire('{"event_type": "any.%d"}' % i) for i in range(3)]
        got = [json.loads(self.read_line(p.stdout))["id"] for _ in ids]
        self.assertEqual(got, ids)
        p.stdout.close()                  # as `| head -3` would
        self.fire('{"event_type": "after.close"}')
        self.assertEqual(p.wait(h.WAIT_TIMEOUT), 0)
