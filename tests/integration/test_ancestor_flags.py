"""The ancestor's long options (issue 13): every long option of the Python
ancestor's usage texts works on the real binaries, beside today's names.

    event-router.py  -c/--config
    event-sub.py     --event-handlers DIR, -e/--event-filters FILE,
                     -u/--publisher-uri URI, -l/--log-level LEVEL
    fire-event.py    -d/--data (-p/--payload in its code), -e/--event-type,
                     -n/--namespace, -u/--uri, -z/--zmq-type
"""

import json
import os
import re
import subprocess

import harness as h

EX_USAGE = 64
DEBUG_RE = r"^\S+ %s\[\d+\] DEBUG "
DISABLED_RE = r"DEBUG feeder 1 \(AMQPInput\) is disabled$"


def disabled_amqp():
    """A feeder list whose second entry is disabled: loading it logs
    "feeder 1 (AMQPInput) is disabled" at DEBUG, a line that only
    DEBUG shows."""
    return [{"handler": "ZMQInput", "namespace": "local",
             "config": {"uri": "tcp://127.0.0.1:0"}},
            {"handler": "AMQPInput", "disabled": True}]


class FireEventFlags(h.RouterTestCase):
    def reply(self, cp):
        self.assertEqual(cp.returncode, 0, cp)
        self.assertEqual(cp.stdout.count(b"\n"), 1, cp)
        return json.loads(cp.stdout)

    def test_data_event_type_namespace_uri(self):
        for argv in (["--uri", self.router.rep, "--event-type", "anc.data",
                      "--namespace", "oldns", "--data", '{"k": [1, 2]}'],
                     ["--uri=" + self.router.rep, "--event-type=anc.data",
                      "--namespace=oldns", '--data={"k": [1, 2]}']):
            with self.subTest(argv=argv):
                ev = self.reply(h.fire(argv))
                self.assertEqual(ev["event_type"], "anc.data")
                self.assertEqual(ev["namespace"], "oldns")
                self.assertEqual(ev["payload"], {"k": [1, 2]})

    def test_payload_is_data(self):
        for argv in (["-p", '{"via": "-p"}'], ["--payload", '{"via": "-p"}'],
                     ['--payload={"via": "-p"}']):
            with self.subTest(argv=argv):
                ev = self.reply(h.fire(["-u", self.router.rep, "-e",
                                        "anc.payload"] + argv))
                self.assertEqual(ev["payload"], {"via": "-p"})
        path = os.path.join(self.tmp, "payload.json")
        with open(path, "w") as f:
            f.write('{"from": "file"}')
        ev = self.reply(h.fire(["-u", self.router.rep, "-e", "anc.payload",
                                "--payload", "@" + path]))
        self.assertEqual(ev["payload"], {"from": "file"})

    def test_zmq_type(self):
        cp = h.fire(["--zmq-type", "zmq.PUSH", "--uri", self.router.pull,
                     "--event-type", "anc.push", "--payload",
                     '{"via": "push"}'])
        self.assertEqual(cp.returncode, 0, cp)
        self.assertEqual(cp.stdout, b"", cp)   # PUSH: no reply to print
        rows = h.wait_until(
            lambda: h.db_query(self.router.store_path,
                               "SELECT body FROM events WHERE event_type = ?",
                               ("anc.push",)),
            what="the pushed event in the store")
        self.assertEqual(json.loads(rows[0][0])["payload"], {"via": "push"})

        ev = self.reply(h.fire(["--zmq-type=zmq.REQ", "-u", self.router.rep,
                                "-e", "anc.req"]))
        self.assertEqual(ev["event_type"], "anc.req")

        cp = h.fire(["--zmq-type", "zmq.DEALER", "-e", "x"])
        self.assertEqual(cp.returncode, EX_USAGE, cp)
        self.assertIn(b'-z takes zmq.REQ or zmq.PUSH, not "zmq.DEALER"',
                      cp.stderr)

    def test_usage_lists_both_names(self):
        cp = h.fire(["--help"])
        self.assertEqual(cp.returncode, 0, cp)
        self.assertIn(b"-p, --payload DATA", cp.stdout)
        self.assertIn(b"-z, --socket, --zmq-type TYPE", cp.stdout)


class AncestorRouter(h.Router):
    """event-router started as the ancestor's was, with --config, and
    with --log-level DEBUG."""

    def __init__(self, tmpdir, config):
        self.tmpdir, self.config = tmpdir, config
        self.config_path = h.write_json(os.path.join(tmpdir, "router.json"),
                                        config)
        self.store_path = config["store"]["path"]
        h.Daemon.__init__(self, "event-router", [
            h.binary("event-router"), "--config", self.config_path,
            "--log-level", "DEBUG"], tmpdir)
        self.pull = self.rep = self.pub = None
        self.reps = []


class DaemonFlags(h.RouterTestCase):
    """event-sub started with only the ancestor's names for its options,
    against a router started with only the ancestor's --config."""

    @classmethod
    def start_router(cls, **kw):
        r = AncestorRouter(cls.tmp, h.make_config(cls.tmp,
                                                  feeders=disabled_amqp()))
        cls.daemons.append(r)
        return r.wait_ready()

    def test_router_config_and_log_level(self):
        # --config was read: the bound endpoints are the file's (port 0
        # on 127.0.0.1, checked by wait_ready), and --log-level DEBUG
        # shows the DEBUG line of its disabled feeder
        self.assertTrue(self.router.find_log(DISABLED_RE),
                        self.router.log_text())

    def test_event_sub_ancestor_options(self):
        pydir = os.path.join(self.tmp, "anc-handlers")
        os.makedirs(pydir, exist_ok=True)
        with open(os.path.join(pydir, "ancmod.py"), "w") as f:
            f.write("def seen(event):\n"
                    "    return {'ns': event['namespace']}\n")
        rec = os.path.join(self.tmp, "anc.jsonl")
        table = h.write_json(os.path.join(self.tmp, "anc-handlers.json"), {
            "anc:*": [{"driver": "pyfunc", "handler": "ancmod.seen"},
                      {"driver": "shell",
                       "handler": "%s %s" % (h.RECORD_ARGV, rec)}]})
        # the file's subscriber.uri leads nowhere: only --publisher-uri
        # reaches the router
        cfg = h.write_json(os.path.join(self.tmp, "sub.json"), h.make_config(
            self.tmp, store_path=self.router.store_path,
            feeders=disabled_amqp(), subscriber_uri="tcp://127.0.0.1:1",
            subscriber_framing=None))
        # the ancestor's stream, one frame per event: event-sub is ready
        # once connected; the router says when it has the subscription
        before = self.router.subscriptions(self.router.pub)
        sub = h.Daemon("event-sub", [
            h.binary("event-sub"), "-c", cfg, "--event-filters", table,
            "--event-handlers", pydir, "--publisher-uri", self.router.pub,
            "--log-level", "DEBUG"], self.tmp)
        self.daemons.append(sub)
        sub.wait_log(r"INFO ready connected to %s \(one frame per event: "
                     r"what the router publishes before it has our "
                     r"subscription is caught up from the store\)$"
                     % re.escape(self.router.pub))
        self.router.wait_subscriptions(self.router.pub, before + 1)
        self.assertTrue(sub.find_log(DISABLED_RE), sub.log_text())
        self.assertTrue(sub.find_log(r"INFO %s: 1 pattern, 2 handlers$"
                                     % re.escape(table)), sub.log_text())

        cp = h.fire(["-u", self.router.rep, "-e", "flags", "-n", "anc"])
        self.assertEqual(cp.returncode, 0, cp)
        eid = json.loads(cp.stdout)["id"]
        rows = h.wait_results(self.router.store_path, eid, 2)
        by_driver = {r["driver"]: r for r in rows}
        # --event-handlers: the module came from that directory
        self.assertEqual(by_driver["pyfunc"]["status"], "ok", rows)
        self.assertEqual(json.loads(by_driver["pyfunc"]["data"]),
                         {"ns": "anc"})
        self.assertEqual(by_driver["shell"]["status"], "ok", rows)
        h.wait_record(rec, eid)
        # --log-level DEBUG: the runs' DEBUG lines
        sub.wait_log(r"DEBUG handler \S+ \(ancmod\.seen\) for event %s: ok"
                     % eid)

    def test_event_sub_check_with_ancestor_names(self):
        table = h.write_json(os.path.join(self.tmp, "chk.json"), {
            "*": [{"driver": "shell", "handler": "true"}]})
        cfg = h.write_json(os.path.join(self.tmp, "chk-cfg.json"),
                           h.make_config(self.tmp, feeders=disabled_amqp()))
        for level, shown in (("--log-level=DEBUG", True),
                             ("--log-level=INFO", False)):
            with self.subTest(level=level):
                cp = subprocess.run(
                    [h.binary("event-sub"), "--check", "-c", cfg,
                     "--event-filters=" + table, "--publisher-uri",
                     "tcp://127.0.0.1:5", level],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, timeout=30)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertIn("%s: 1 pattern, 1 handler: OK" % table,
                              cp.stdout)
                self.assertEqual(bool(re.search(DISABLED_RE, cp.stderr,
                                                re.M)), shown, cp.stderr)
        cp = subprocess.run([h.binary("event-sub"), "--check",
                             "--publisher-uri", "bogus://x", "-c", cfg],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=30)
        self.assertEqual(cp.returncode, EX_USAGE, cp.stderr)
        self.assertIn('-u "bogus://x" is not a ZeroMQ endpoint', cp.stderr)

    def test_empty_paths_refused(self):
        # "" would be the current directory (/ under -D): refused as a
        # usage error before anything is read
        for prog, flag in (("event-router", "-c"), ("event-router", "-p"),
                           ("event-sub", "-c"), ("event-sub", "-e"),
                           ("event-sub", "--event-handlers"),
                           ("event-sub", "-p")):
            with self.subTest(prog=prog, flag=flag):
                cp = subprocess.run([h.binary(prog), flag, "", "--check"],
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    timeout=30)
                self.assertEqual((cp.returncode, cp.stderr),
                                 (EX_USAGE, "%s: %s: an empty path names "
                                  "no file\n" % (prog, flag)))

    def test_usage_lists_both_names(self):
        for prog, names in (
                ("event-sub", ["--event-handlers-file, --event-filters FILE",
                               "-u, --uri, --publisher-uri URI",
                               "-l, --loglevel, --log-level LEVEL"]),
                ("event-router", ["-l, --loglevel, --log-level LVL"])):
            cp = subprocess.run([h.binary(prog), "--help"],
                                stdout=subprocess.PIPE, text=True, timeout=30)
            self.assertEqual(cp.returncode, 0)
            for n in names:
                self.assertIn(n, cp.stdout)
