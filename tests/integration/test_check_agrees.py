"""--check agrees with a start (issue 13): run on the same file, `--check`
and a real start give the same outcome, the same exit status and the same
message with its file:line:column.  Whatever a start refuses in a
configuration, --check refuses; what a start only warns about, --check
only warns about."""

import json
import os
import re
import signal
import subprocess
import tempfile
import unittest

import harness as h

EX_CONFIG = 78


def position(text, i):
    """1-based line and column of text[i]."""
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def after(text, prefix, last=False):
    """The position of what follows prefix's first (or last) occurrence:
    with prefix '"key": ', that of the key's value."""
    i = text.rindex(prefix) if last else text.index(prefix)
    return position(text, i + len(prefix))


def run_bounded(argv, timeout=h.READY_TIMEOUT):
    """Run a daemon in the foreground; it must exit by itself in time."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=h.STOP_TIMEOUT)
        raise AssertionError("%s did not refuse to start within %.0f s:\n%s"
                             % (argv[0], timeout, err))
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def amqp(url):
    return {"namespace": "openstack", "handler": "AMQPInput",
            "config": {"url": url, "routing_key": "notifications.info",
                       "exchange_type": "direct",
                       "queue_name": "event-reactor.test",
                       "bindings": ["keystone", "nova", "neutron"]}}


class RouterCheckAgrees(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="er-it-")
        self.addCleanup(h.TempDirMixin.remove_tmpdir, self.tmp)

    def write(self, name, cfg):
        return h.write_json(os.path.join(self.tmp, name), cfg)

    def assertBothRefuse(self, path, where, message, progs=("event-router",)):
        """--check and a start of each prog exit 78 with
        FILE:LINE:COLUMN: message, the position where[0:2]."""
        line, col = where
        want = "%s:%d:%d: %s" % (path, line, col, message)
        for prog in progs:
            for mode in ("--check", "start"):
                with self.subTest(prog=prog, mode=mode):
                    argv = [h.binary(prog), "-c", path]
                    if prog == "event-sub":
                        argv += ["-e", self.write("h.json", {})]
                    if mode == "--check":
                        cp = subprocess.run(argv + ["--check"],
                                            stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True,
                                            timeout=60)
                    else:
                        cp = run_bounded(argv)
                    self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                    self.assertIn(want, cp.stderr)

    def test_ancestor_sample_placeholders(self):
        # the ancestor's sample as it ships (AMQPInput enabled, url with
        # <placeholders>), with the port in either form
        for url in ("amqp://<username>:<password>@<host>:<port>",
                    "amqp://<username>:<password>@<host>:5672/"):
            with self.subTest(url=url):
                cfg = h.make_config(self.tmp, feeders=[
                    amqp(url), {"namespace": "local", "handler": "ZMQInput",
                                "config": {"uri": "tcp://127.0.0.1:0",
                                           "type": "zmq.REP"}}])
                path = self.write("anc.json", cfg)
                self.assertBothRefuse(
                    path, after(open(path).read(), '"url": '),
                    '"url" still holds a <placeholder> of the sample: set '
                    "the broker's real user, password, host and port (in a "
                    "password, write < and > as %3C and %3E)",
                    progs=("event-router", "event-sub"))

    def test_amqp_urls_a_start_cannot_use(self):
        for url, msg in (
                ("amqp://u:p@h/v/w",
                 '"url" is not an amqp[s]://user:password@host:port/vhost URL'),
                ("amqp://u:p@rabbit host:5672/",
                 '"url": the host "rabbit host" is not a host name or an IP '
                 'address'),
                ("amqp://u:p@rabbit:0/", '"url": the port must be 1..65535')):
            with self.subTest(url=url):
                path = self.write("u.json", h.make_config(
                    self.tmp, feeders=[amqp(url)]))
                self.assertBothRefuse(
                    path, after(open(path).read(), '"url": '), msg)
                # the password is never echoed
                cp = subprocess.run([h.binary("event-router"), "--check",
                                     "-c", path], stderr=subprocess.PIPE,
                                    text=True, timeout=60)
                self.assertNotIn("u:p@", cp.stderr)

    def test_a_good_url_passes_both(self):
        path = self.write("good.json", h.make_config(
            self.tmp, feeders=[amqp("amqp://guest:guest@127.0.0.1:1/")]))
        cp = subprocess.run([h.binary("event-router"), "--check", "-c", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        r = h.Daemon("event-router", [h.binary("event-router"), "-c", path],
                     self.tmp)
        self.addCleanup(r.kill)
        r.wait_log(h.ROUTER_READY_RE.pattern + r".* amqp=amqp://guest@"
                   r"127\.0\.0\.1:1/$")
        r.stop()

    def test_two_sockets_on_one_address(self):
        holder, port = h.free_port_holder()
        holder.close()
        cfg = h.make_config(self.tmp)
        cfg["aggregator"]["config"]["port"] = port
        cfg["feeds"]["feeders"][0]["config"]["uri"] = \
            "tcp://127.0.0.1:%d" % port
        path = self.write("same.json", cfg)
        text = open(path).read()
        self.assertBothRefuse(
            path, after(text, '"uri": '),
            '"tcp://127.0.0.1:%d" is also the address of the PULL input '
            '(aggregator) at %d:%d: two sockets cannot listen on one address'
            % ((port,) + after(text, '"port": ')))     # the first: PULL's
        # an HTTPInput on all addresses and the PUB output's port
        cfg = h.make_config(self.tmp, feeders=[
            {"handler": "HTTPInput", "config": {
                "listen_address": "0.0.0.0", "port": port, "token": "t"}}])
        cfg["outputs"][0]["config"]["port"] = port
        path = self.write("http.json", cfg)
        text = open(path).read()
        pub_port = text.index('"port": %d' % port) + len('"port": ')
        http_port = text.rindex('"port": %d' % port) + len('"port": ')
        self.assertBothRefuse(
            path, position(text, http_port),
            '"0.0.0.0:%d" is also the address of the PUB output '
            '(outputs) at %d:%d' % ((port,) + position(text, pub_port)))
        # the router's metrics and event-sub's on one address
        cfg = h.make_config(self.tmp)
        cfg["metrics"] = {"listen": "127.0.0.1:%d" % port}
        cfg["subscriber"]["metrics"] = {"listen": "127.0.0.1:%d" % port}
        path = self.write("metrics.json", cfg)
        text = open(path).read()
        self.assertBothRefuse(
            path, after(text, '"metrics": ', last=True),
            '"127.0.0.1:%d" is also the address of metrics at %d:%d: two '
            'sockets cannot listen on one address'
            % ((port,) + after(text, '"metrics": ')),
            progs=("event-router", "event-sub"))
        # a ZMQInput on the default PULL address (no aggregator section)
        cfg = h.make_config(self.tmp, feeders=[
            {"handler": "ZMQInput",
             "config": {"uri": "tcp://127.0.0.1:45454"}}])
        del cfg["aggregator"]
        path = self.write("default.json", cfg)
        self.assertBothRefuse(
            path, after(open(path).read(), '"uri": '),
            '"tcp://127.0.0.1:45454" is also the default address of the '
            'PULL input (aggregator): two sockets cannot listen on one '
            'address')

    def test_metrics_refused_by_both(self):
        """"metrics" (event-reactor.conf(5)): a listen that is not a
        string, not HOST:PORT, a port out of range, another key; at the
        top and in "subscriber"."""
        bad_addr = ('is not HOST:PORT with a numeric IPv4 address or an '
                    'IPv6 one in brackets ("127.0.0.1:9477", "[::1]:9477")')
        for metrics, anchor, msg in (
                ({"listen": 9477}, '"listen": ',
                 '"listen" must be a non-empty string'),
                ({"listen": "localhost:9477"}, '"listen": ',
                 '"localhost:9477" ' + bad_addr),
                ({"listen": "[::1]:x"}, '"listen": ',
                 '"[::1]:x": the port must be a number from 0 to 65535'),
                ({"listen": "127.0.0.1:65536"}, '"listen": ',
                 '"127.0.0.1:65536": the port must be a number from 0 to '
                 '65535'),
                ({"listen": "127.0.0.1:9477", "port": 1}, '"port": ',
                 'unknown metrics option "port" (known: listen)'),
                ({}, '"metrics": ',
                 '"metrics" needs "listen": "HOST:PORT" ("127.0.0.1:9477")'),
                ("127.0.0.1:9477", '"metrics": ',
                 '"metrics" must be a JSON object')):
            for where in ("top", "subscriber"):
                with self.subTest(metrics=metrics, where=where):
                    cfg = h.make_config(self.tmp)
                    if where == "top":
                        cfg["metrics"] = metrics
                    else:
                        cfg["subscriber"]["metrics"] = metrics
                    path = self.write("metrics.json", cfg)
                    self.assertBothRefuse(
                        path, after(open(path).read(), anchor, last=True),
                        msg, progs=("event-router", "event-sub"))

    def test_ipc_path_too_long(self):
        uri = "ipc://" + os.path.join(self.tmp, "x" * 120)
        cfg = h.make_config(self.tmp)
        cfg["aggregator"]["config"] = {"uri": uri}
        path = self.write("ipc.json", cfg)
        self.assertBothRefuse(path, after(open(path).read(), '"uri": '),
                              '"%s": the path is longer than 107 bytes (a Unix '
                              'socket address)' % uri)

    def test_store_path_a_start_cannot_open(self):
        d = os.path.join(self.tmp, "a-directory")
        os.mkdir(d)
        path = self.write("dir.json", h.make_config(self.tmp, store_path=d))
        self.assertBothRefuse(path, after(open(path).read(), '"path": '),
                              '"%s" is a directory; name the database file, '
                              'such as "%s/events.db"' % (d, d),
                              progs=("event-router", "event-sub"))
        f = os.path.join(self.tmp, "a-file")
        open(f, "w").close()
        db = os.path.join(f, "events.db")
        path = self.write("file.json", h.make_config(self.tmp, store_path=db))
        self.assertBothRefuse(path, after(open(path).read(), '"path": '),
                              '"%s": "%s" is not a '
                              'directory' % (db, f))

    def test_what_only_a_start_finds(self):
        """Nothing is bound, connected or created by --check: a store or
        an ipc path that cannot be created passes it, and the start
        fails with 69 (EX_UNAVAILABLE), not 78."""
        cfg = h.make_config(self.tmp,
                            store_path="/proc/er-no-such-dir/events.db")
        store = self.write("store.json", cfg)
        cfg = h.make_config(self.tmp, store={"type": "none"})
        cfg["aggregator"]["config"] = {"uri": "ipc:///proc/er-no-such-dir/p"}
        ipc = self.write("ipc.json", cfg)
        for path, msg in ((store, "ERROR store sqlite /proc/er-no-such-dir/"
                                  "events.db: unable to open database file"),
                          (ipc, "ERROR cannot bind PULL input ipc:///proc/"
                                "er-no-such-dir/p: No such file or "
                                "directory")):
            with self.subTest(msg=msg):
                cp = subprocess.run([h.binary("event-router"), "--check",
                                     "-c", path], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    timeout=60)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                cp = run_bounded([h.binary("event-router"), "-c", path])
                self.assertEqual(cp.returncode, 69, cp.stderr)
                self.assertIn(msg, cp.stderr)

    def test_subscriber_uri_a_start_cannot_connect(self):
        port = "the port to connect to must be 1..65535"
        for uri, why in (("tcp://127.0.0.1:*", port),
                         ("tcp://127.0.0.1:0", port),
                         ("tcp://127.0.0.1:99999", port),
                         ("tcp://*:21203", "* is for binding: name the host "
                          "to connect to")):
            with self.subTest(uri=uri):
                path = self.write("sub.json", h.make_config(
                    self.tmp, subscriber_uri=uri))
                self.assertBothRefuse(
                    path, after(open(path).read(), '"subscriber": {\n    '
                                '"uri": '), '"%s": %s' % (uri, why),
                    progs=("event-sub",))
                for prog in ("event-sub", "fire-event"):
                    argv = [h.binary(prog), "-u", uri]
                    argv += (["--check", "-c", self.write("ok.json", {})]
                             if prog == "event-sub" else ["-e", "t"])
                    cp = subprocess.run(argv, stderr=subprocess.PIPE,
                                        text=True, timeout=60)
                    self.assertEqual(cp.returncode, 64, cp.stderr)
                    self.assertIn('%s: -u "%s": %s' % (prog, uri, why),
                                  cp.stderr)


class SubscriberFollowsOutputs(unittest.TestCase):
    """Without subscriber.uri, event-sub follows the file's outputs: the
    first topic-framed one, else the first (event-reactor.conf(5), "config.json");
    --check says where, a start goes there, and both refuse an output that
    gives no address to connect to."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="er-it-")
        self.addCleanup(h.TempDirMixin.remove_tmpdir, self.tmp)
        self.table = h.write_json(os.path.join(self.tmp, "h.json"), {})

    def check(self, cfg):
        if os.geteuid() == 0:   # as make_config(): root needs a "user"
            cfg = dict(cfg, user="root")
        path = h.write_json(os.path.join(self.tmp, "c.json"), cfg)
        return path, subprocess.run(
            [h.binary("event-sub"), "-c", path, "-e", self.table, "--check"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=60)

    def test_check_says_where(self):
        for cfg, line in (
                ({}, "subscribes to tcp://127.0.0.1:55001 (topic framing)"),
                ({"outputs": [{"handler": "zeromq", "config": {
                    "listen_address": "0.0.0.0", "port": 56000}}]},
                 "subscribes to tcp://127.0.0.1:56000 (event framing)"),
                ({"outputs": [{"handler": "zeromq", "config": {
                    "listen_address": "0.0.0.0", "port": 56000}}],
                  "subscriber": {"uri": "tcp://10.0.0.7:56000"}},
                 "subscribes to tcp://10.0.0.7:56000 (event framing)")):
            with self.subTest(cfg=cfg):
                _, cp = self.check(cfg)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                # the last line says who it runs as (test_users.py)
                self.assertEqual(cp.stdout.splitlines()[-3], line)
                self.assertEqual(
                    cp.stdout.splitlines()[-2],
                    "catch-up from /var/lib/event-reactor/events.db, "
                    "journal /var/lib/event-reactor/event-sub.journal: "
                    "stored events not received are run when at most 3600 "
                    "s old and among the newest 100000 "
                    "(subscriber.catch_up; 0: no bound)")

    def test_no_address_refused_by_both(self):
        path, cp = self.check({"outputs": [{"handler": "zeromq", "config": {
            "port": 0, "framing": "topic"}}]})
        msg = ("subscriber.uri is not set, and the output tcp://127.0.0.1:0 "
               "gives no address to connect to: set subscriber.uri")
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertIn(msg, cp.stderr)
        cp = run_bounded([h.binary("event-sub"), "-c", path, "-e",
                          self.table])
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertIn(msg, cp.stderr)

    def test_start_follows_the_topic_output(self):
        pub = "ipc://" + os.path.join(self.tmp, "pub")
        cfg = h.make_config(self.tmp)
        cfg["outputs"] = [{"handler": "zeromq",
                           "config": {"uri": "tcp://127.0.0.1:0"}},
                          {"handler": "zeromq",
                           "config": {"uri": pub, "framing": "topic"}}]
        del cfg["subscriber"]
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        rec = os.path.join(self.tmp, "rec.jsonl")
        table = h.write_json(os.path.join(self.tmp, "t.json"), {
            "*": [{"driver": "shell",
                   "handler": "%s %s" % (h.RECORD_ARGV, rec)}]})
        s = h.Sub(self.tmp, r.config_path, table, None)
        self.addCleanup(s.kill)
        s.wait_ready()
        self.assertTrue(s.find_log(r"INFO subscribing to %s \(topic "
                                   r"framing\)$" % re.escape(pub)),
                        s.log_text())
        self.assertTrue(s.find_log(r"INFO ready subscribed to %s$"
                                   % re.escape(pub)), s.log_text())
        req = h.zsock(h.zmq.REQ, r.rep)
        self.addCleanup(req.close, 0)
        reply = h.request(req, b'{"event_type":"followed"}')
        h.wait_record(rec, json.loads(reply)["id"])


HANDLERS = """{
  "check:*": [
    {"driver": "pyfunc", "handler": "later.handle"},
    {"driver": "shell", "handler": "true"}
  ]
}
"""


class SubCheckAgrees(h.RouterTestCase):
    """A pyfunc handler whose module is not there yet: --check and a start
    both warn, naming it with its position, and both go on (exit 0, the
    daemon runs); deployed later, it runs after SIGHUP."""

    def test_unresolved_pyfunc_warns_in_both(self):
        pydir = os.path.join(self.tmp, "py")
        os.mkdir(pydir)
        table = os.path.join(self.tmp, "handlers.json")
        with open(table, "w") as f:
            f.write(HANDLERS)
        cfg = h.write_json(os.path.join(self.tmp, "sub.json"), h.make_config(
            self.tmp, store_path=self.router.store_path,
            subscriber_uri=self.router.sub_uri))
        line, col = position(HANDLERS, HANDLERS.index('{"driver": "pyfunc"'))
        warn = ("WARNING %s:%d:%d: pyfunc handler later.handle does not "
                "resolve: ModuleNotFoundError: No module named 'later'"
                % (table, line, col))
        summary = ("WARNING %s: 1 pyfunc handler does not resolve (above): "
                   "its runs are recorded as errors, the other handlers run"
                   % table)
        argv = [h.binary("event-sub"), "-c", cfg, "-e", table,
                "--event-handlers", pydir]

        cp = subprocess.run(argv + ["--check"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(warn, cp.stderr)
        self.assertIn(summary, cp.stderr)
        self.assertEqual(cp.stdout.splitlines()[:2], [
            "%s: 1 pattern, 2 handlers: OK" % table,
            "subscribes to %s (topic framing)" % self.router.sub_uri])
        self.assertTrue(cp.stdout.splitlines()[2].startswith(
            "catch-up from "), cp.stdout)

        sub = h.Daemon("event-sub", argv, self.tmp)
        self.daemons.append(sub)
        sub.wait_log(h.SUB_READY_RE.pattern)
        self.assertTrue(sub.find_log(re.escape(warn) + "$"), sub.log_text())
        self.assertTrue(sub.find_log(re.escape(summary) + "$"), sub.log_text())

        def fire():
            cp = h.fire(["-u", self.router.rep, "-n", "check", "-e", "me"])
            self.assertEqual(cp.returncode, 0, cp)
            eid = json.loads(cp.stdout)["id"]
            return {r["driver"]: r
                    for r in h.wait_results(self.router.store_path, eid, 2)}
        rows = fire()
        self.assertEqual(rows["pyfunc"]["status"], "error", rows)
        self.assertEqual(rows["pyfunc"]["error"],
                         "ModuleNotFoundError: No module named 'later'")
        self.assertEqual(rows["shell"]["status"], "ok", rows)

        # the operator deploys the module, then reloads
        with open(os.path.join(pydir, "later.py"), "w") as f:
            f.write("def handle(event):\n    return 'deployed'\n")
        os.kill(sub.proc.pid, signal.SIGHUP)
        sub.wait_log(r"reloaded: 1 pattern, 2 handlers")
        rows = fire()
        self.assertEqual(rows["pyfunc"]["status"], "ok", rows)
        self.assertEqual(rows["pyfunc"]["data"], '"deployed"')
