"""fire-event against a real router (and against a port with no router)."""

import json
import os
import re
import subprocess
import unittest

import harness as h

EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE = 64, 65, 66, 69


class FireEvent(h.RouterTestCase):
    router_kwargs = {"max_event_size": 4096}

    def assertOneLineReply(self, cp, namespace="local"):
        self.assertEqual(cp.returncode, 0, cp)
        out = cp.stdout
        self.assertTrue(out.endswith(b"\n"), out)
        self.assertEqual(out.count(b"\n"), 1, out)
        return self.assertStamped(out[:-1], namespace=namespace), out[:-1]

    def test_prints_reply_as_one_line(self):
        pub = self.listener()
        cp = h.fire(["-u", self.router.rep, "-e", "fire.test", "-d",
                     '{"k": "v", "n": [1, 2]}'])
        ev, line = self.assertOneLineReply(cp)
        self.assertEqual(ev["event_type"], "fire.test")
        self.assertEqual(ev["payload"], {"k": "v", "n": [1, 2]})
        topic, body = pub.wait_id(ev["id"])
        self.assertEqual(topic, b"local:fire.test")
        self.assertEqual(body, line)
        self.assertEqual(h.wait_event_row(self.router.store_path,
                                          ev["id"])[4], line)

    def test_default_payload_and_namespace_flag(self):
        cp = h.fire(["-u", self.router.rep, "-e", "t", "-n", "myns"])
        ev, _ = self.assertOneLineReply(cp, namespace="myns")
        self.assertEqual(ev["payload"], {})

    def test_multiline_payload_printed_on_one_line(self):
        cp = h.fire(["-u", self.router.rep, "-e", "ml", "-d",
                     '{\n "text": "line1\\nline2",\n "x": 1\n}\n'])
        ev, _ = self.assertOneLineReply(cp)
        self.assertEqual(ev["payload"], {"text": "line1\nline2", "x": 1})

    def test_payload_from_file(self):
        path = h.fixture_path("github-push.json")
        cp = h.fire(["-u", self.router.rep, "-e", "push", "-n", "github",
                     "-d", "@" + path])
        ev, _ = self.assertOneLineReply(cp, namespace="github")
        self.assertEqual(ev["payload"], h.load_fixture("github-push.json"))

    def test_payload_from_stdin(self):
        data = h.load_fixture("alertmanager-firing.json")
        cp = h.fire(["-u", self.router.rep, "-e", "alert.firing", "-n",
                     "alertmanager", "-d", "-"],
                    input=json.dumps(data, indent=2).encode())
        ev, _ = self.assertOneLineReply(cp, namespace="alertmanager")
        self.assertEqual(ev["payload"], data)

    def test_non_object_payloads(self):
        for text, value in [('"just a string"', "just a string"),
                            ("[1, 2, 3]", [1, 2, 3]), ("42", 42),
                            ("null", None), ('"上海 🚀"', "上海 🚀")]:
            with self.subTest(payload=text):
                cp = h.fire(["-u", self.router.rep, "-e", "t", "-d", text])
                ev, _ = self.assertOneLineReply(cp)
                self.assertEqual(ev["payload"], value)

    def test_unreadable_file_exits_66(self):
        cp = h.fire(["-u", self.router.rep, "-e", "t", "-d",
                     "@/nonexistent/dir/payload.json"])
        self.assertEqual(cp.returncode, EX_NOINPUT, cp)
        self.assertTrue(cp.stderr.strip(), cp)
        self.assertEqual(cp.stdout, b"", cp)

    def test_what_fire_event_refuses_before_sending(self):
        # fire-event(1), EXIT STATUS: nothing reaches the router
        big = os.path.join(self.tmp, "big.json")
        with open(big, "wb") as f:
            f.truncate((256 << 20) + 1)        # sparse: one byte over
        for args, code, msg in (
                (["-d", "@"], EX_USAGE, "fire-event: -d @FILE needs a file "
                 "name\n"),
                (["-n", "\udcff"], EX_USAGE, "fire-event: -e TYPE or -n "
                 "NAMESPACE is not valid UTF-8\n"),
                (["-d", "@" + big], EX_NOINPUT, "fire-event: %s: File too "
                 "large\n" % big)):
            with self.subTest(code=code, msg=msg):
                cp = h.fire(["-u", self.router.rep, "-e", "t"] + args)
                self.assertEqual(cp.returncode, code, cp)
                self.assertTrue(cp.stderr.decode("utf-8", "replace")
                                .startswith(msg), cp.stderr)
                self.assertEqual(cp.stdout, b"")

    def test_a_hop_count_that_is_not_one_is_refused(self):
        # fire-event(1): run by a handler, hops is ER_EVENT_HOPS plus one;
        # a value that is not a count would reset the loop guard
        for v in ("-1", "abc", "", "99999999999999999999"):
            with self.subTest(v=v):
                cp = h.fire(["-u", self.router.rep, "-e", "t"], env={
                    "ER_EVENT_ID": "6b15e9ba95639ac89405c9c1",
                    "ER_EVENT_HOPS": v})
                self.assertEqual(cp.returncode, EX_USAGE, cp)
                self.assertEqual(cp.stderr.decode(), 'fire-event: '
                                 'ER_EVENT_HOPS "%s" is not a count of hops '
                                 '(0 to 2147483646)\n' % v)
        cp = h.fire(["-u", self.router.rep, "-e", "t"], env={
            "ER_EVENT_ID": "6b15e9ba95639ac89405c9c1", "ER_EVENT_HOPS": "2"})
        ev, _ = self.assertOneLineReply(cp)
        self.assertEqual(ev["hops"], 3)

    def test_error_reply_exits_65_message_on_stderr(self):
        big = json.dumps({"blob": "x" * 5000})
        cp = h.fire(["-u", self.router.rep, "-e", "t", "-d", big])
        self.assertEqual(cp.returncode, EX_DATAERR, cp)
        self.assertTrue(cp.stderr.strip(), cp)
        # the router's message (or its code) appears on stderr
        self.assertRegex(cp.stderr.decode("utf-8", "replace"),
                         re.compile(r"too.?large|longer|max_event_size|size|limit|bytes",
                                    re.I))
        self.assertNotIn(b'"id"', cp.stdout)
        # the router is fine afterwards
        cp = h.fire(["-u", self.router.rep, "-e", "t"])
        self.assertOneLineReply(cp)

    def test_invalid_d_json_refused_locally_with_position(self):
        # against a port where nothing listens: refused before any I/O
        holder, port = h.free_port_holder()
        self.addCleanup(holder.close)
        cp = h.fire(["-u", "tcp://127.0.0.1:%d" % port, "-t", "5000",
                     "-e", "t", "-d", '{"a": 1,\n "b": }'])
        self.assertEqual(cp.returncode, EX_DATAERR, cp)
        self.assertLess(cp.elapsed, 4.0, "waited for a router: %r" % cp)
        err = cp.stderr.decode("utf-8", "replace")
        self.assertTrue(re.search(r"line\D{0,3}2\b", err, re.I)
                        or re.search(r"\b2:\d+", err), err)
        self.assertTrue(re.search(r"col", err, re.I)
                        or re.search(r"\b2:\d+", err), err)
        self.assertEqual(cp.stdout, b"")
        # same against the real router: nothing was sent
        pub = self.listener()
        cp = h.fire(["-u", self.router.rep, "-e", "never.sent", "-d", "{oops"])
        self.assertEqual(cp.returncode, EX_DATAERR, cp)
        ok = h.fire(["-u", self.router.rep, "-e", "sent.after"])
        ev, _ = self.assertOneLineReply(ok)
        pub.wait_id(ev["id"])
        self.assertEqual([t for t, _ in pub.events], [b"local:sent.after"])

    def test_bad_flag_exits_64(self):
        cp = h.fire(["--no-such-flag", "-e", "t"])
        self.assertEqual(cp.returncode, EX_USAGE, cp)
        cp = h.fire(["-u", self.router.rep, "-e", "t", "-z", "zmq.BOGUS"])
        self.assertEqual(cp.returncode, EX_USAGE, cp)
        # an argument after the options (a shell handler running
        # fire-event itself gets the event's JSON last): named, cut short
        ev = json.dumps({"event_type": "x", "payload": {"k": "v" * 80}})
        for arg, shown in (("extra", "extra"), (ev, ev[:60] + "...")):
            cp = h.fire(["-u", self.router.rep, "-e", "t", arg])
            self.assertEqual(cp.returncode, EX_USAGE, cp)
            self.assertTrue(cp.stderr.decode().startswith(
                'fire-event: unexpected argument "%s": fire-event takes '
                'options only (the data goes with -d)\nusage: fire-event '
                % shown), cp.stderr)

    def test_timeout_range_and_a_reply_that_cannot_be_written(self):
        # fire-event(1): -t is 1 to 86400000 (64 outside); 74 when the
        # reply cannot be written to standard output (the event is in)
        for t in ("0", "86400001", "x"):
            with self.subTest(t=t):
                cp = h.fire(["-u", self.router.rep, "-e", "t", "-t", t])
                self.assertEqual(cp.returncode, EX_USAGE, cp)
        with open("/dev/full", "wb") as full:
            cp = subprocess.run([h.binary("fire-event"), "-u",
                                 self.router.rep, "-e", "to.dev.full"],
                                stdout=full, stderr=subprocess.PIPE,
                                timeout=30)
        self.assertEqual(cp.returncode, 74, cp.stderr)
        self.assertEqual(cp.stderr, b"fire-event: cannot write the stamped "
                         b"event to standard output: No space left on "
                         b"device\n")

    def test_payload_from_a_fifo_and_a_reader_gone(self):
        # -d @FIFO waits for the writer as long as it takes (a bound meant
        # for the daemons' own files refused a slow one); a reader of
        # standard output gone is exit 74, not a silent SIGPIPE
        fifo = os.path.join(self.tmp, "payload.fifo")
        os.mkfifo(fifo)
        p = subprocess.Popen([h.binary("fire-event"), "-u", self.router.rep,
                              "-e", "from.fifo", "-d", "@" + fifo],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with open(fifo, "w") as w:      # opens once fire-event reads
            w.write('{"via": "fifo"}')
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(json.loads(out)["payload"], {"via": "fifo"})
        r, w = os.pipe()
        os.close(r)
        cp = subprocess.run([h.binary("fire-event"), "-u", self.router.rep,
                             "-e", "reader.gone"], stdout=w,
                            stderr=subprocess.PIPE, timeout=30)
        os.close(w)
        self.assertEqual(cp.returncode, 74, cp.stderr)
        self.assertEqual(cp.stderr, b"fire-event: cannot write the stamped "
                         b"event to standard output: Broken pipe\n")

    def test_push_mode(self):
        pub = self.listener()
        marker = "via-push-%d" % os.getpid()
        cp = h.fire(["-z", "zmq.PUSH", "-u", self.router.pull, "-e",
                     "pushed.by.fire", "-n", "pushns", "-d",
                     json.dumps({"marker": marker})])
        self.assertEqual(cp.returncode, 0, cp)
        self.assertEqual(cp.stdout, b"", cp)
        topic, body = pub.wait_event(
            lambda t, b: t == b"pushns:pushed.by.fire")
        ev = json.loads(body)
        self.assertEqual(ev["payload"], {"marker": marker})
        self.assertEqual(h.wait_event_row(self.router.store_path,
                                          ev["id"])[4], body)


class FireEventNoRouter(unittest.TestCase):

    def setUp(self):
        self.holder, self.port = h.free_port_holder()
        self.addCleanup(self.holder.close)
        self.uri = "tcp://127.0.0.1:%d" % self.port

    def check_timeout(self, args):
        cp = h.fire(args + ["-u", self.uri, "-t", "500", "-e", "t"],
                    timeout=15)
        self.assertEqual(cp.returncode, EX_UNAVAILABLE, cp)
        self.assertLess(cp.elapsed, 3.0, cp)
        self.assertGreaterEqual(cp.elapsed, 0.4, cp)
        err = cp.stderr.decode("utf-8", "replace")
        self.assertRegex(err, re.compile(
            r"time|no (router|reply|answer)|answer|respon|unavailable", re.I))
        self.assertEqual(cp.stdout, b"")

    def test_req_timeout_exits_69(self):
        self.check_timeout([])

    def test_req_timeout_explicit_socket_type(self):
        self.check_timeout(["-z", "zmq.REQ"])

    def test_push_timeout_exits_69(self):
        self.check_timeout(["-z", "zmq.PUSH"])


if __name__ == "__main__":
    unittest.main()
