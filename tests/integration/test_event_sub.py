"""event-sub: shell handlers get the published JSON as their last argument
(byte for byte, no shell), handler runs are recorded in the store, patterns
match namespace:event_type with globs, bad handler files refuse the start."""

import fnmatch
import json
import os
import re
import subprocess
import time
import unittest

import harness as h


def pattern_matches(pattern, namespace, event_type):
    if ":" in pattern:
        return fnmatch.fnmatchcase("%s:%s" % (namespace, event_type), pattern)
    return fnmatch.fnmatchcase(event_type, pattern)


class SubTestCase(h.RouterTestCase):
    """A router and an event-sub (ready) per class."""

    sub_env = None

    @classmethod
    def handlers(cls, tmp):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.handler_map = cls.handlers(cls.tmp)
            cls.handlers_path = h.write_json(
                os.path.join(cls.tmp, "event-handlers.json"), cls.handler_map)
            cfg = dict(cls.router.config)
            cfg["subscriber"] = {"uri": cls.router.sub_uri, "framing": "topic"}
            cls.sub_config_path = h.write_json(
                os.path.join(cls.tmp, "sub-config.json"), cfg)
            cls.sub = h.Sub(cls.tmp, cls.sub_config_path, cls.handlers_path,
                            cls.router.sub_uri, env=cls.sub_env)
            cls.daemons.append(cls.sub)
            cls.sub.wait_ready()
        except BaseException:
            cls._cleanup()
            raise

    def fire_raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        reply = h.request(self.req_socket(), data)
        return reply, self.assertStamped(reply, namespace=None)

    def out(self, name):
        return os.path.join(self.tmp, name)


class ShellHandlers(SubTestCase):

    @classmethod
    def handlers(cls, tmp):
        ra = h.RECORD_ARGV
        cls.quoting_handler = (
            "%s '%s/quoting.jsonl' \"two words\" back\\ slash 'it'\\''s' "
            "$HOME ~ '*' * \"a'b\" 'c\"d' \"\"" % (ra, tmp))
        return {
            "argv.*": [{"driver": "shell",
                        "handler": "%s %s/argv.jsonl" % (ra, tmp)}],
            "results.ok": [{"driver": "shell",
                            "handler": "%s %s/ok.jsonl" % (ra, tmp)}],
            "results.exit3": [{"driver": "shell",
                               "handler": "%s %s/exit3.jsonl --exit=3 "
                                          "--stderr=bad-things" % (ra, tmp)}],
            "results.signal": [{"driver": "shell",
                                "handler": "%s %s/signal.jsonl --signal=9"
                                           % (ra, tmp)}],
            "results.missing": [
                {"driver": "shell",
                 "handler": "/nonexistent/dir/no-such-program arg"},
                {"driver": "shell",
                 "handler": "no-such-program-er-itest --flag"}],
            "results.notexec": [
                {"driver": "shell",
                 "handler": "%s/not-executable.sh" % tmp}],
            "quoting.test": [{"driver": "shell",
                              "handler": cls.quoting_handler}],
            "path.lookup": [{"driver": "shell",
                             "handler": "record-argv %s/path.jsonl" % tmp}],
        }

    @classmethod
    def setUpClass(cls):
        cls.sub_env = {"PATH": h.BIN_DIR + ":" + os.environ.get(
            "PATH", "/usr/bin:/bin"), "HOME": "/home-should-not-expand"}
        super().setUpClass()
        with open(os.path.join(cls.tmp, "not-executable.sh"), "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(os.path.join(cls.tmp, "not-executable.sh"), 0o644)

    # -- argv -----------------------------------------------------------

    def payloads(self):
        t = self.tmp
        return [
            'He said "hi" and \'bye\'',
            "$(touch %s/pwned)" % t,
            "`touch %s/pwned-backtick`" % t,
            "; touch %s/pwned-semi && touch %s/pwned-and | tee %s/pwned-pipe"
            % (t, t, t),
            "> %s/pwned-redirect" % t,
            "line1\nline2\r\n\ttabbed\n",
            "--help",
            "-rf /",
            "-",
            "上海 🚀 emoji 😀 é ß",
            "\\ backslash \\\\ and \\\" and \\n",
            "$HOME ${PATH} ~ * ?",
            {"nested": ["$(id)", "`id`", "--version", "\n", "上海"],
             "empty": "", "n": 1.5},
            "",
            "x" * 60000,
        ]

    def test_last_argv_is_published_json_byte_for_byte(self):
        pub = self.listener()
        outfile = self.out("argv.jsonl")
        fired = []
        for i, payload in enumerate(self.payloads()):
            ns = "上海" if i % 2 else "local"
            ev = {"event_type": "argv.%d" % i, "payload": payload}
            if ns != "local":
                ev["namespace"] = ns
            sent = json.dumps(ev, ensure_ascii=(i % 3 == 0))
            reply, stamped = self.fire_raw(sent)
            fired.append((payload, reply, stamped))
        # a leading "-" in the event type, and escapes kept as sent
        for raw in ['{"event_type": "argv.-x", "payload": "\\u0024(touch %s/pwned-esc)"}'
                    % self.tmp,
                    '{"event_type":"argv.--help","payload":"--help"}']:
            reply, stamped = self.fire_raw(raw)
            fired.append((None, reply, stamped))
        for payload, reply, stamped in fired:
            with self.subTest(payload=repr(payload)[:60]):
                topic, body = pub.wait_id(stamped["id"])
                self.assertEqual(body, reply)
                rec = h.wait_record(outfile, stamped["id"])
                self.assertEqual(rec["argv_bytes"][-1], reply)
                self.assertEqual(rec["argv_bytes"][:-1],
                                 [outfile.encode()])
                if payload is not None:
                    self.assertEqual(
                        json.loads(rec["argv_bytes"][-1])["payload"], payload)
        # no shell ran anything
        for name in os.listdir(self.tmp):
            self.assertFalse(name.startswith("pwned"), name)
        self.assertFalse(os.path.exists(os.path.expanduser("~/pwned")))

    def test_handler_string_split_without_expansion(self):
        reply, ev = self.fire_raw('{"event_type":"quoting.test"}')
        outfile = self.out("quoting.jsonl")
        rec = h.wait_record(outfile, ev["id"])
        self.assertEqual(rec["argv"][:-1],
                         [outfile, "two words", "back slash", "it's",
                          "$HOME", "~", "*", "*", "a'b", 'c"d', ""])
        self.assertEqual(rec["argv_bytes"][-1], reply)
        rows = h.wait_results(self.router.store_path, ev["id"], 1)
        self.assertEqual(rows[0]["handler"], self.quoting_handler)
        self.assertEqual(rows[0]["status"], "ok")

    def test_program_looked_up_on_path(self):
        reply, ev = self.fire_raw('{"event_type":"path.lookup"}')
        rec = h.wait_record(self.out("path.jsonl"), ev["id"])
        self.assertEqual(rec["argv_bytes"][-1], reply)
        row = h.wait_results(self.router.store_path, ev["id"], 1)[0]
        self.assertEqual(row["status"], "ok")

    # -- results rows ---------------------------------------------------

    def test_ok_result_row(self):
        t0 = time.time()
        reply, ev = self.fire_raw(
            '{"event_type":"results.ok","payload":{"q":"\\"x\\" 上海"}}')
        h.wait_record(self.out("ok.jsonl"), ev["id"])
        rows = h.wait_results(self.router.store_path, ev["id"], 1)
        self.assertEqual(len(rows), 1, rows)
        r = rows[0]
        self.assertEqual(r["event_id"], ev["id"])
        self.assertEqual(r["driver"], "shell")
        self.assertEqual(r["handler"],
                         self.handler_map["results.ok"][0]["handler"])
        self.assertEqual(r["status"], "ok")
        self.assertEqual(r["exit_code"], 0)
        self.assertIsNone(r["signal"])
        self.assertIsNone(r["error"])
        self.assertEqual(r["stdout"],
                         "record-argv: " + reply.decode("utf-8") + "\n")
        self.assertIn(r["stderr"], (None, ""))
        self.assertGreaterEqual(r["started_at"], t0 - 1)
        self.assertLessEqual(r["started_at"], time.time() + 1)
        self.assertGreaterEqual(r["duration_ms"], 0)
        self.assertLess(r["duration_ms"], 60000)
        # the event itself is in the store
        row = h.wait_event_row(self.router.store_path, ev["id"])
        self.assertEqual(row[4], reply)

    def test_nonzero_exit_is_failed(self):
        reply, ev = self.fire_raw('{"event_type":"results.exit3"}')
        rows = h.wait_results(self.router.store_path, ev["id"], 1)
        r = rows[0]
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["exit_code"], 3)
        self.assertIsNone(r["signal"])
        self.assertEqual(r["driver"], "shell")
        self.assertIn("bad-things", r["stderr"] or "")
        self.assertEqual(r["stdout"],
                         "record-argv: " + reply.decode("utf-8") + "\n")
        rec = h.wait_record(self.out("exit3.jsonl"), ev["id"])
        self.assertEqual(rec["argv_bytes"][-1], reply)

    def test_killed_by_signal_is_failed(self):
        reply, ev = self.fire_raw('{"event_type":"results.signal"}')
        r = h.wait_results(self.router.store_path, ev["id"], 1)[0]
        self.assertEqual(r["status"], "failed")
        self.assertIsNone(r["exit_code"])
        self.assertEqual(r["signal"], 9)

    def test_missing_command_is_error(self):
        reply, ev = self.fire_raw('{"event_type":"results.missing"}')
        rows = h.wait_results(self.router.store_path, ev["id"], 2)
        self.assertEqual(len(rows), 2, rows)
        by_handler = {r["handler"]: r for r in rows}
        self.assertEqual(set(by_handler),
                         {e["handler"] for e in
                          self.handler_map["results.missing"]})
        for r in rows:
            with self.subTest(handler=r["handler"]):
                self.assertEqual(r["status"], "error", r)
                self.assertEqual(r["driver"], "shell")
                self.assertTrue((r["error"] or "").strip(), r)

    def test_not_executable_is_error(self):
        reply, ev = self.fire_raw('{"event_type":"results.notexec"}')
        r = h.wait_results(self.router.store_path, ev["id"], 1)[0]
        self.assertEqual(r["status"], "error", r)
        self.assertTrue((r["error"] or "").strip(), r)

    def test_sub_keeps_running_after_failures(self):
        self.fire_raw('{"event_type":"results.missing"}')
        reply, ev = self.fire_raw('{"event_type":"results.ok"}')
        r = h.wait_results(self.router.store_path, ev["id"], 1)[0]
        self.assertEqual(r["status"], "ok")
        self.assertTrue(self.sub.alive())


class GlobMatching(SubTestCase):

    @classmethod
    def handlers(cls, tmp):
        ra = h.RECORD_ARGV
        cls.files = {
            "*": "all.jsonl",
            "globns:type.*": "glob-ns.jsonl",
            "type.exact": "nocolon.jsonl",
            "globns*": "colonless-ns.jsonl",
            "other:*": "nomatch.jsonl",
            "*:br[0-9]": "bracket.jsonl",
            "?lobns:type.exac?": "question.jsonl",
        }
        return {p: [{"driver": "shell",
                     "handler": "%s %s/%s" % (ra, tmp, f)}]
                for p, f in cls.files.items()}

    def test_patterns(self):
        events = [("globns", "type.a"), ("globns", "type.exact"),
                  ("elsewhere", "type.exact"), ("elsewhere", "type.a"),
                  ("globns", "br7"), ("x", "brx"), ("globns", "typeXa"),
                  ("local", "globns-like-type")]
        expected = {}   # event id -> set of files
        replies = {}
        for ns, et in events:
            reply, ev = self.fire_raw(json.dumps(
                {"event_type": et, "namespace": ns}))
            replies[ev["id"]] = reply
            expected[ev["id"]] = {f for p, f in self.files.items()
                                  if pattern_matches(p, ns, et)}
        # sanity of the model itself: every pattern but "other:*" matches
        matched = set().union(*expected.values())
        self.assertEqual(matched, set(self.files.values()) -
                         {"nomatch.jsonl"})
        for eid, files in expected.items():
            h.wait_results(self.router.store_path, eid, len(files))
            for f in files:
                rec = h.wait_record(self.out(f), eid)
                self.assertEqual(rec["argv_bytes"][-1], replies[eid])
        # stop the subscriber (flushes), then count exactly
        self.sub.stop()
        for eid, files in expected.items():
            rows = h.result_rows(self.router.store_path, eid)
            got = sorted(os.path.basename(r["handler"].split()[-1])
                         for r in rows)
            self.assertEqual(got, sorted(files), (json.loads(replies[eid])))
            for r in rows:
                self.assertEqual(r["status"], "ok", r)
        for f in set(self.files.values()):
            recs = h.read_records(self.out(f))
            ids = sorted(json.loads(r["argv_bytes"][-1])["id"] for r in recs)
            self.assertEqual(ids, sorted(e for e, fs in expected.items()
                                         if f in fs), f)
        self.assertFalse(os.path.exists(self.out("nomatch.jsonl")))


class SubStartup(unittest.TestCase, h.TempDirMixin):
    """event-handlers.json errors refuse the start naming file:line:column;
    -u overrides the config."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.holder, port = h.free_port_holder()
        self.addCleanup(self.holder.close)
        self.dead_uri = "tcp://127.0.0.1:%d" % port
        self.cfg_path = h.write_json(
            os.path.join(self.tmp, "config.json"),
            h.make_config(self.tmp, subscriber_uri=self.dead_uri))

    def run_sub(self, handlers_text):
        path = os.path.join(self.tmp, "bad handlers.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(handlers_text)
        try:
            cp = subprocess.run(
                [h.binary("event-sub"), "-c", self.cfg_path, "-e", path,
                 "-u", self.dead_uri, "-l", "debug"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("event-sub did not refuse the start within 10s")
        return path, cp

    def assertRefused(self, text, line, token=None, nth=1):
        """event-sub refuses to start naming PATH:LINE:COL, with LINE the
        given line and COL within token's span on it (1-based, +-1)."""
        col_range = None
        if token is not None:
            ltext = text.splitlines()[line - 1]
            idx = -1
            for _ in range(nth):
                idx = ltext.index(token, idx + 1)
            col_range = range(idx, idx + len(token) + 2)
        path, cp = self.run_sub(text)
        self.assertNotEqual(cp.returncode, 0, cp)
        err = (cp.stderr + cp.stdout).decode("utf-8", "replace")
        m = re.search(re.escape(path) + r":(\d+):(\d+)", err)
        self.assertTrue(m, "no %s:LINE:COL in %r" % (path, err))
        self.assertEqual(int(m.group(1)), line, err)
        if col_range:
            self.assertIn(int(m.group(2)), col_range, err)
        self.assertNotRegex(err, r"\bready\b")
        return err

    def test_invalid_json(self):
        text = ('{\n'
                '  "*": [\n'
                '    {"driver": "shell", "handler": "/bin/true"},,\n'
                '  ]\n'
                '}\n')
        self.assertRefused(text, 3, ",,")

    def test_duplicate_key(self):
        text = ('{\n'
                '  "a:*": [{"driver": "shell", "handler": "/bin/true"}],\n'
                '  "b:*": [],\n'
                '  "a:*": [{"driver": "shell", "handler": "/bin/false"}]\n'
                '}\n')
        self.assertRefused(text, 4, '"a:*"')

    def test_duplicate_key_inside_entry(self):
        text = ('{\n'
                '  "a:*": [\n'
                '    {"driver": "shell", "handler": "/bin/true", '
                '"driver": "shell"}\n'
                '  ]\n'
                '}\n')
        self.assertRefused(text, 3, '"driver"', nth=2)

    def test_unknown_driver(self):
        text = ('{\n'
                '  "ok:*": [{"driver": "shell", "handler": "/bin/true"}],\n'
                '  "bad:*": [{"driver": "bogus", "handler": "whatever"}]\n'
                '}\n')
        err = self.assertRefused(text, 3, '"driver": "bogus"')
        self.assertIn("bogus", err)

    def test_u_overrides_config_uri(self):
        cfg = h.make_config(self.tmp)
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        handlers = h.write_json(os.path.join(self.tmp, "h.json"),
                                {"*": [{"driver": "shell",
                                        "handler": "%s %s/u.jsonl"
                                        % (h.RECORD_ARGV, self.tmp)}]})
        # config says dead_uri; -u says the real router
        s = h.Sub(self.tmp, self.cfg_path, handlers, r.sub_uri)
        self.addCleanup(s.kill)
        s.wait_ready()
        self.assertTrue(s.find_log(r"ready subscribed to "
                                   + re.escape(r.sub_uri)),
                        s.log_text())
        req = h.zsock(h.zmq.REQ, r.rep)
        self.addCleanup(req.close, 0)
        reply = h.request(req, b'{"event_type":"via.u"}')
        eid = json.loads(reply)["id"]
        rec = h.wait_record(os.path.join(self.tmp, "u.jsonl"), eid)
        self.assertEqual(rec["argv_bytes"][-1], reply)
        s.stop()
        r.stop()


if __name__ == "__main__":
    unittest.main()
