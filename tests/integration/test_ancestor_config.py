"""The ancestor's config.json keys (issue 13): feeds.aggregator, the "type"
keys of its socket sections, logging.format and celery load without a
warning, each with the meaning event-reactor.conf(5) gives it here; a key
the ancestor never had still warns with its file:line:column."""

import json
import os
import pwd
import re
import subprocess
import tempfile
import unittest

import harness as h

EX_CONFIG = 78
ANCESTOR_FORMAT = ("%(asctime)s (%(process)d) [%(levelname)s %(lineno)s:"
                   "%(name)s.%(funcName)s]: %(message)s")


def run(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def position(text, needle):
    """1-based line and column of needle's first character in text."""
    i = text.index(needle)
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def ancestor_config(tmp):
    """etc/config.json with the ancestor's own keys added, as its sample
    (etc/config.json.sample of the Python ancestor) has them; every port
    0 on 127.0.0.1 so that the router can start here."""
    with open(os.path.join(h.REPO, "etc", "config.json")) as f:
        cfg = json.load(f)
    cfg["feeds"]["aggregator"] = {"protocol": "tcp", "host": "127.0.0.1",
                                  "port": 45454, "type": "zmq.PUSH"}
    cfg["aggregator"]["config"].update({"port": 0, "type": "zmq.PULL"})
    for out in cfg["outputs"]:
        out["config"].update({"port": 0, "type": "zmq.PUB"})
    zmq_in = [f for f in cfg["feeds"]["feeders"]
              if f["handler"] == "ZMQInput"][0]
    zmq_in["config"] = {"uri": "tcp://127.0.0.1:0", "type": "zmq.REP"}
    cfg["logging"] = {"loglevel": "INFO", "format": ANCESTOR_FORMAT}
    cfg["celery"] = {"protocol": "mongodb", "host": "127.0.0.1",
                     "port": 27017, "database": "eventreactor",
                     "task_collection": "task_collection",
                     "task_imports": ["eventworker.tasks"],
                     "BROKER_URL": "mongodb://127.0.0.1:27017/eventreactor"}
    cfg["event_handlers_dir"] = "/etc/event-reactor/event-handlers"
    cfg["store"]["path"] = os.path.join(tmp, "events.db")
    if os.geteuid() == 0 and "event-reactor" not in [
            p.pw_name for p in pwd.getpwall()]:
        # as root, without the event-reactor user make install creates,
        # a daemon starts only when the operator names root (test_users)
        cfg["user"] = "root"
    return cfg


class AncestorKeys(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="er-it-")
        self.addCleanup(h.TempDirMixin.remove_tmpdir, self.tmp)
        self.path = h.write_json(os.path.join(self.tmp, "config.json"),
                                 ancestor_config(self.tmp))
        with open(self.path) as f:
            self.text = f.read()

    def celery_line(self, key):
        line, col = position(self.text, '"%s"' % key)
        return ('INFO %s:%d:%d: "%s" (the ancestor\'s Celery workers) is not '
                'used: event-sub runs the handlers' % (self.path, line, col,
                                                         key))

    def test_check_without_a_warning(self):
        for prog in ("event-router", "event-sub"):
            with self.subTest(prog=prog):
                argv = [h.binary(prog), "--check", "-c", self.path]
                if prog == "event-sub":
                    argv += ["-e", h.write_json(
                        os.path.join(self.tmp, "h.json"),
                        {"*": [{"driver": "shell", "handler": "true"}]})]
                cp = run(argv)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertNotRegex(cp.stderr, r"WARNING|ERROR")
                self.assertIn(self.celery_line("celery") + "; ignored\n",
                              cp.stderr)
                self.assertIn(self.celery_line("event_handlers_dir") +
                              ", from the directory of its --event-handlers;"
                              " ignored\n", cp.stderr)

    def test_start_without_a_warning_and_what_is_ignored(self):
        r = h.Daemon("event-router", [h.binary("event-router"), "-c",
                                      self.path, "-l", "DEBUG"], self.tmp)
        self.addCleanup(r.kill)
        r.wait_log(h.ROUTER_READY_RE.pattern)
        log = r.log_text()
        self.assertNotRegex(log, r"WARNING|ERROR")
        # feeds.aggregator and logging.format: ignored, said at DEBUG
        line, col = position(self.text, '"aggregator": {\n      "protocol"')
        self.assertIn('DEBUG %s:%d:%d: "aggregator" ignored: feeders run '
                      'inside event-router\n' % (self.path, line, col), log)
        line, col = position(self.text, '"format"')
        self.assertIn('DEBUG %s:%d:%d: "format" ignored: the log format is '
                      'fixed\n' % (self.path, line, col), log)
        # the log format is ours, not the ancestor's
        self.assertTrue(all(h.LOG_RE.match(ln) for ln in r.log_lines()), log)
        # the sockets are those of the file (port 0: chosen by the system)
        m = h.ROUTER_READY_RE.search(log)
        pull, rep, pubs = m.groups()
        # both outputs of etc/config.json, one frame and topic framing
        self.assertEqual(len(pubs.split(",")), 2, pubs)
        for uri in [pull, rep] + pubs.split(","):
            self.assertRegex(uri, r"^tcp://127\.0\.0\.1:[1-9]\d*$")
        r.stop()

    def test_made_up_keys_still_warn(self):
        cfg = ancestor_config(self.tmp)
        cfg["celry"] = {}
        cfg["feeds"]["aggregatr"] = {}
        cfg["logging"]["formatt"] = "x"
        cfg["outputs"][0]["config"]["typ"] = "zmq.PUB"
        path = h.write_json(os.path.join(self.tmp, "made-up.json"), cfg)
        text = open(path).read()
        cp = run([h.binary("event-router"), "--check", "-c", path])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        for needle, msg in (('"celry"', 'unknown section "celry" ignored'),
                            ('"aggregatr"',
                             'unknown feeds option "aggregatr" ignored'),
                            ('"formatt"',
                             'unknown logging option "formatt" ignored'),
                            ('"typ"', 'unknown endpoint option "typ" ignored')):
            line, col = position(text, needle)
            self.assertIn("WARNING %s:%d:%d: %s\n" % (path, line, col, msg),
                          cp.stderr)
        self.assertEqual(len(re.findall("WARNING", cp.stderr)), 4,
                         cp.stderr)

    def test_type_of_another_socket_is_refused(self):
        for section, wrong, right in (("aggregator", "zmq.SUB", "zmq.PULL"),
                                      ("outputs", "zmq.PUSH", "zmq.PUB"),
                                      ("feeders", "zmq.ROUTER", "zmq.REP")):
            with self.subTest(section=section):
                text = self.text.replace('"type": "%s"' % right,
                                         '"type": "%s"' % wrong)
                path = os.path.join(self.tmp, "type-%s.json" % section)
                with open(path, "w") as f:
                    f.write(text)
                line, col = position(text, '"%s"' % wrong)
                msg = ('%s:%d:%d: "type" "%s": this socket is a %s (remove '
                       '"type" or set it to "%s")' % (path, line, col, wrong,
                                                      right, right))
                # --check and a start refuse it alike
                for argv in (["--check"], []):
                    cp = run([h.binary("event-router"), "-c", path] + argv)
                    self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                    self.assertIn(msg, cp.stderr)
