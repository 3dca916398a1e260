"""Prometheus metrics (issue 19; event-reactor(7), "Metrics";
event-reactor.conf(5), "metrics"): both daemons serve the text format on
GET /metrics from their own loop; the series event-reactor(7) lists, and
only those; counts that move with what the daemons do; label escaping and
the bound on namespaces; 404 and 405; slow and vanishing peers; a port in
use; and a real Prometheus server scraping both daemons."""

import http.client
import json
import select
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.parse
import urllib.request

import zmq

import harness as h

MAN7 = os.path.join(h.REPO, "man", "event-reactor.7")
SERVING_RE = r"INFO metrics: serving http://127\.0\.0\.1:(\d+)/metrics$"
EX_UNAVAILABLE = 69

PY = r'''
import os

def ok(event):
    return "ok"

def die(event):
    os._exit(3)
'''


# ---- the text format ---------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1),
                                                      m.group(1)), v)


def parse(text):
    """{"types": {name: type}, "samples": {(name, ((label, value), ...)):
    float}}; every line must be a comment or a sample."""
    types, samples = {}, {}
    for line in text.splitlines():
        m = re.match(r"^# TYPE (\S+) (counter|gauge|histogram)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample: %r" % line
        labels = ()
        if m.group(3):
            pairs = LABEL_RE.findall(m.group(3))
            assert "".join('%s="%s",' % p for p in pairs).rstrip(",") == \
                m.group(3), line
            labels = tuple((k, unescape(v)) for k, v in pairs)
        samples[(m.group(1), labels)] = float(m.group(4))
    return {"types": types, "samples": samples}


def value(parsed, name, **labels):
    """The sample name{labels} (labels in any order), or None."""
    want = sorted(labels.items())
    for (n, ls), v in parsed["samples"].items():
        if n == name and sorted(l for l in ls if l[0] != "le") == want \
                and not any(l[0] == "le" for l in ls):
            return v
    return None


def doc_series():
    """{daemon: {name: (type, [labels])}} from event-reactor(7)'s
    Metrics section."""
    text = open(MAN7, encoding="utf-8").read()
    sec = text[text.index(".Ss Metrics\n"):]
    sec = sec[:sec.index("\n.Ss ", 1)]
    out = {}
    for part in sec.split(".Xr ")[1:]:
        daemon = part.split()[0]
        if not part.split("\n")[0].endswith("8") or \
                not part.split("\n")[1].startswith("serves:"):
            continue
        body = part[:part.index(".El")]
        out[daemon] = {}
        for m in re.finditer(r"(?m)^\.It Li (\w+) Pq (counter|gauge|"
                             r"histogram)(?:; labels (.*))?$", body):
            out[daemon][m.group(1)] = (
                m.group(2), re.findall(r"Li (\w+)", m.group(3) or ""))
    return out


# ---- talking to /metrics ---------------------------------------------------

def get(port, path="/metrics", method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=h.WAIT_TIMEOUT)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8")
    finally:
        c.close()


def scrape(port):
    status, headers, body = get(port)
    assert status == 200, (status, body)
    assert headers["Content-Type"] == \
        "text/plain; version=0.0.4; charset=utf-8", headers
    return parse(body)


def wait_value(port, want, name, timeout=h.WAIT_TIMEOUT, **labels):
    """Scrape until name{labels} == want; the last scrape."""
    last = {}

    def pred():
        last["p"] = scrape(port)
        return value(last["p"], name, **labels) == want
    try:
        h.wait_until(pred, timeout, "%s%r == %r" % (name, labels, want))
    except h.HarnessError:
        raise h.HarnessError("%s%r is %r, not %r" % (
            name, labels, value(last["p"], name, **labels), want))
    return last["p"]


def metrics_port(daemon):
    return int(daemon.wait_log(SERVING_RE, what="the metrics line").group(1))


class Metrics(h.RouterTestCase):
    """A router and an event-sub, both with "metrics" on port 0."""

    router_kwargs = {"extra": {"metrics": {"listen": "127.0.0.1:0"}}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.rport = metrics_port(cls.router)
            pydir = os.path.join(cls.tmp, "py")
            os.mkdir(pydir)
            with open(os.path.join(pydir, "mx.py"), "w") as f:
                f.write(PY)
            cls.table = h.write_json(os.path.join(cls.tmp, "handlers.json"), {
                "ok.*": [{"driver": "shell", "handler": "true"}],
                "fail.*": [{"driver": "shell", "handler": "false"}],
                "py.ok": [{"driver": "pyfunc", "handler": "mx.ok"}],
                "py.die": [{"driver": "pyfunc", "handler": "mx.die"}]})
            cfg = dict(cls.router.config)
            # the top-level "metrics" (port 0): event-sub takes it too
            cfg["subscriber"] = {"uri": cls.router.sub_uri,
                                 "framing": "topic", "python_workers": 1}
            cls.sub = h.Sub(cls.tmp, h.write_json(
                os.path.join(cls.tmp, "sub.json"), cfg), cls.table,
                cls.router.sub_uri, extra_args=["--event-handlers", pydir])
            cls.daemons.append(cls.sub)
            cls.sub.wait_ready()
            cls.sport = metrics_port(cls.sub)
        except BaseException:
            cls._cleanup()
            raise

    def fire(self, event_type, ns="local", data=None):
        ev = {"event_type": event_type, "namespace": ns}
        if data is not None:
            ev["payload"] = data
        reply = h.request(self.req_socket(), json.dumps(ev).encode())
        return self.assertStamped(reply, namespace=ns)["id"]

    def test_the_series_are_those_the_manual_lists(self):
        docs = doc_series()
        self.assertEqual(sorted(docs), ["event-router", "event-sub"])
        # a run, so that every labelled family has a series
        h.wait_results(self.router.store_path, self.fire("ok.doc"), 1)
        h.request(self.req_socket(), b"not json")
        for daemon, port in (("event-router", self.rport),
                             ("event-sub", self.sport)):
            with self.subTest(daemon=daemon):
                p = scrape(port)
                self.assertEqual(p["types"], {n: t for n, (t, _) in
                                              docs[daemon].items()})
                for (name, labels), _ in p["samples"].items():
                    base = re.sub(r"_(bucket|sum|count)$", "", name) \
                        if name not in p["types"] else name
                    self.assertIn(base, docs[daemon], name)
                    want = docs[daemon][base][1]
                    self.assertEqual([k for k, _ in labels if k != "le"],
                                     want, (name, labels))

    def test_events_accepted_and_rejected(self):
        p0 = scrape(self.rport)
        before = value(p0, "eventreactor_events_accepted_total",
                       input="rep", namespace="counted") or 0
        for _ in range(3):
            self.fire("x.counted", ns="counted")
        bad = value(p0, "eventreactor_events_rejected_total", input="rep",
                    code="invalid_json") or 0
        h.request(self.req_socket(), b"{nope")
        p = wait_value(self.rport, before + 3,
                       "eventreactor_events_accepted_total", input="rep",
                       namespace="counted")
        self.assertEqual(value(p, "eventreactor_events_rejected_total",
                               input="rep", code="invalid_json"), bad + 1)
        push = self.push_socket()
        push.send(b'{"event_type": "x.pushed", "namespace": "pushed"}')
        p = wait_value(self.rport, 1, "eventreactor_events_accepted_total",
                       input="pull", namespace="pushed")
        # what the store's thread counts, read at the scrape: the REP
        # events were stored before their replies, the pushed one is
        # written after it is published
        self.assertGreaterEqual(value(p, "eventreactor_store_writes_total"),
                                3)
        h.wait_until(lambda: value(scrape(self.rport),
                                   "eventreactor_store_writes_total") >= 4,
                     what="the pushed event written")
        self.assertEqual(value(p, "eventreactor_store_write_failures_total"),
                         0)
        self.assertEqual(value(p, "eventreactor_subscribers_set_aside_total"),
                         0)
        # the queue is empty once every event is written
        wait_value(self.rport, 0, "eventreactor_store_queue_depth")
        self.assertGreater(value(p, "process_resident_memory_bytes"), 1e6)
        # /proc/stat's btime plus the process's starttime (clock ticks)
        btime = int(re.search(r"(?m)^btime (\d+)$",
                              open("/proc/stat").read()).group(1))
        ticks = h.proc_stat(self.router.proc.pid)[2]
        self.assertAlmostEqual(value(p, "process_start_time_seconds"),
                               btime + ticks / os.sysconf("SC_CLK_TCK"),
                               places=2)

    def test_handler_runs_by_status_and_their_durations(self):
        p0 = scrape(self.sport)

        def v(p, name, **kw):
            return value(p, name, **kw) or 0
        ok0 = v(p0, "eventreactor_handler_runs_total", handler="true",
                status="ok")
        failed0 = v(p0, "eventreactor_handler_runs_total", handler="false",
                    status="failed")
        count0 = v(p0, "eventreactor_handler_run_duration_seconds_count",
                   handler="false")
        ids = [self.fire("fail.x") for _ in range(2)] + [self.fire("ok.x")]
        for i in ids:
            h.wait_results(self.router.store_path, i, 1)
        p = wait_value(self.sport, failed0 + 2,
                       "eventreactor_handler_runs_total", handler="false",
                       status="failed")
        self.assertEqual(v(p, "eventreactor_handler_runs_total",
                           handler="true", status="ok"), ok0 + 1)
        self.assertEqual(v(p, "eventreactor_handler_run_duration_seconds_"
                              "count", handler="false"), count0 + 2)
        inf = [val for (n, ls), val in p["samples"].items()
               if n == "eventreactor_handler_run_duration_seconds_bucket"
               and ("handler", "false") in ls and ("le", "+Inf") in ls]
        self.assertEqual(inf, [count0 + 2])
        les = [dict(ls)["le"] for (n, ls), _ in p["samples"].items()
               if n == "eventreactor_handler_run_duration_seconds_bucket"
               and ("handler", "false") in ls]
        self.assertEqual(les, ["0.005", "0.01", "0.025", "0.05", "0.1",
                               "0.25", "0.5", "1", "2.5", "5", "10", "30",
                               "60", "300", "+Inf"])
        self.assertEqual(v(p, "eventreactor_run_queue_depth"), 0)

    def test_python_workers_alive_and_restarted(self):
        h.wait_results(self.router.store_path, self.fire("py.ok"), 1)
        p = wait_value(self.sport, 1, "eventreactor_python_workers_alive")
        restarted = value(p, "eventreactor_python_workers_restarted_total")
        rows = h.wait_results(self.router.store_path, self.fire("py.die"), 1)
        self.assertNotEqual(rows[0]["status"], "ok", rows)
        # the next call starts a worker in the place of the one that died
        rows = h.wait_results(self.router.store_path, self.fire("py.ok"), 1)
        self.assertEqual(rows[0]["status"], "ok", rows)
        p = wait_value(self.sport, restarted + 1,
                       "eventreactor_python_workers_restarted_total")
        self.assertEqual(value(p, "eventreactor_python_workers_alive"), 1)

    def test_label_values_escaped(self):
        ns = 'quote" back\\slash\nline'
        self.fire("x.esc", ns=ns)
        wait_value(self.rport, 1, "eventreactor_events_accepted_total",
                   input="rep", namespace=ns)
        _, _, body = get(self.rport)
        self.assertIn('eventreactor_events_accepted_total{input="rep",'
                      'namespace="quote\\" back\\\\slash\\nline"} 1\n',
                      body)

    def test_only_get_metrics(self):
        status, headers, body = get(self.rport, "/other")
        self.assertEqual((status, body), (404, "not found: the metrics are "
                                               "at GET /metrics\n"))
        for method in ("POST", "PUT", "DELETE"):
            status, headers, body = get(self.rport, "/metrics", method)
            self.assertEqual((status, body), (405, "method not allowed: "
                                                   "GET /metrics\n"))
            self.assertEqual(headers["Allow"], "GET, HEAD")
        status, headers, body = get(self.sport, "/metrics", "HEAD")
        self.assertEqual((status, body), (200, ""))

    def test_many_slow_peers_do_not_keep_a_scrape_out(self):
        peers = []
        try:
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", self.rport),
                                             timeout=h.WAIT_TIMEOUT)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                peers.append(s)
            # a real scrape, while they trickle
            p = scrape(self.rport)
            self.assertIn("eventreactor_store_writes_total", p["types"])
            # 16 at most, the scrape's among them: the 25 oldest closed
            # (each newer one closed the oldest still waiting)
            closed = set()

            def eofs():
                r, _, _ = select.select([s for s in peers
                                         if s not in closed], [], [], 0.2)
                for s in r:
                    try:
                        if s.recv(1) == b"":
                            closed.add(s)
                    except OSError:
                        closed.add(s)
                return len(closed) >= 25
            h.wait_until(eofs, what="25 connections closed")
            self.assertEqual(closed, set(peers[:25]))
            for s in peers[25:]:
                s.sendall(b"X-Slow: 1\r\n")
            p = scrape(self.rport)
            self.assertIn("eventreactor_store_writes_total", p["types"])
        finally:
            for s in peers:
                s.close()
        self.router.wait_log(r"WARNING metrics: connection from 127\.0\.0\.1 "
                             r"closed: over the bound of connections, the "
                             r"oldest without a complete request$")
        # more than 10 lines in 10 s: the rest counted, and named, when
        # the window ends
        self.router.wait_log(r'WARNING \d+ "metrics:" lines \(connections '
                             r"closed, libmicrohttpd's messages\) "
                             r"suppressed in the last 10 s$", timeout=30)

    def test_one_request_a_connection_and_no_thread(self):
        status, headers, _ = get(self.rport)
        self.assertEqual((status, headers["Connection"]), (200, "close"))
        # the router of another test class without "metrics" has as many
        # threads: none is the metrics'
        plain = h.Router(self.tmp, h.make_config(self.tmp, store_path=
                                                 os.path.join(self.tmp,
                                                              "plain.db")))
        self.addCleanup(plain.kill)
        plain.wait_ready()
        self.assertEqual(
            len(os.listdir("/proc/%d/task" % self.router.proc.pid)),
            len(os.listdir("/proc/%d/task" % plain.proc.pid)))
        plain.stop()

    def test_headers_deadline(self):
        s = socket.create_connection(("127.0.0.1", self.sport),
                                     timeout=h.WAIT_TIMEOUT + 15)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            # still sending a header line every second, past 10 s
            deadline = time.monotonic() + 20
            closed = False
            while time.monotonic() < deadline and not closed:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                    s.settimeout(1)
                    closed = s.recv(1) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
            self.assertTrue(closed, "still open after 20 s")
        finally:
            s.close()
        self.sub.wait_log(r"WARNING metrics: connection from 127\.0\.0\.1 "
                          r"closed: no complete request headers within "
                          r"10 s$")
        scrape(self.sport)

    def test_peers_that_hang_up(self):
        for req in (b"GET /metrics HTTP/1.1\r\nHo",
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", self.rport),
                                         timeout=h.WAIT_TIMEOUT)
            s.sendall(req)
            # RST instead of FIN: gone before the reply
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        p = scrape(self.rport)
        self.assertIn("eventreactor_events_accepted_total", p["types"])
        self.assertTrue(self.router.alive())


class NamespaceBound(h.RouterTestCase):
    """Past 1000 namespaces, and for one over 128 bytes, "other"."""

    router_kwargs = {"extra": {"metrics": {"listen": "127.0.0.1:0"}}}

    def test_namespaces_past_the_bound_are_other(self):
        port = metrics_port(self.router)
        push = self.push_socket()
        for i in range(1010):
            push.send(json.dumps({"event_type": "b", "namespace":
                                  "ns%d" % i}).encode())
        p = wait_value(port, 10, "eventreactor_events_accepted_total",
                       input="pull", namespace="other", timeout=30)
        names = [dict(ls)["namespace"] for (n, ls) in p["samples"]
                 if n == "eventreactor_events_accepted_total"]
        self.assertEqual(names, ["ns%d" % i for i in range(1000)] +
                         ["other"])
        # a known one keeps its own; a long one is "other"
        push.send(b'{"event_type": "b", "namespace": "ns7"}')
        push.send(json.dumps({"event_type": "b",
                              "namespace": "n" * 129}).encode())
        wait_value(port, 11, "eventreactor_events_accepted_total",
                   input="pull", namespace="other")
        p = wait_value(port, 2, "eventreactor_events_accepted_total",
                       input="pull", namespace="ns7")
        self.assertEqual(len(p["samples"]) > 1000, True)


class PortInUse(unittest.TestCase, h.TempDirMixin):
    """A port in use: the daemon says so and exits 69, as for an
    HTTPInput."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def test_router_and_event_sub(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        cfg = h.make_config(self.tmp)
        cfg["metrics"] = {"listen": "127.0.0.1:%d" % port}
        cfg["logging"] = {"dir": self.tmp}     # -D without syslog
        path = h.write_json(os.path.join(self.tmp, "c.json"), cfg)
        table = h.write_json(os.path.join(self.tmp, "h.json"), {})
        want = ("metrics: cannot listen on 127.0.0.1:%d: Address already "
                "in use" % port)
        pid = os.path.join(self.tmp, "pid")
        for argv in ([h.binary("event-router"), "-c", path],
                     [h.binary("event-sub"), "-c", path, "-e", table]):
            for detach in ([], ["-D", "-p", pid]):
                with self.subTest(prog=argv[0], detach=detach):
                    cp = subprocess.run(argv + detach,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        timeout=60)
                    self.assertEqual(cp.returncode, EX_UNAVAILABLE,
                                     cp.stderr)
                    # the daemon's log line; with -D, the parent says why
                    self.assertIn(want if detach else "ERROR " + want,
                                  cp.stderr)
                    self.assertFalse(os.path.exists(pid))

    def test_beyond_loopback_warns(self):
        cfg = h.make_config(self.tmp)
        cfg["metrics"] = {"listen": "0.0.0.0:0"}
        path = h.write_json(os.path.join(self.tmp, "c.json"), cfg)
        text = open(path).read()
        i = text.index('"listen"')
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        want = ("WARNING %s:%d:%d: metrics on 0.0.0.0 beyond loopback: "
                "anyone who can reach it reads /metrics (its namespaces and "
                "handler names), without authentication")
        want, want_start = want % (path, line, col), want
        cp = subprocess.run([h.binary("event-router"), "--check", "-c",
                             path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(want, cp.stderr)
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        want = want_start % (r.config_path, line, col)   # the same text
        self.assertTrue(r.find_log(re.escape(want) + "$"), r.log_text())
        self.assertTrue(r.find_log(r"INFO metrics: serving "
                                   r"http://0\.0\.0\.0:\d+/metrics$"))
        r.stop()


PROMETHEUS = shutil.which("prometheus")


@unittest.skipIf(PROMETHEUS is None, "prometheus is not installed (Debian's "
                 "prometheus package; scripts/install-deps installs it)")
class RealPrometheus(h.RouterTestCase):
    """Debian's Prometheus scrapes both daemons each second; its HTTP API
    shows the counts of what the test fired."""

    router_kwargs = {"extra": {"metrics": {"listen": "127.0.0.1:0"}}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.table = h.write_json(os.path.join(cls.tmp, "handlers.json"), {
                "prom.fail": [{"driver": "shell", "handler": "false"}]})
            cfg = dict(cls.router.config)
            cfg["subscriber"] = {"uri": cls.router.sub_uri,
                                 "framing": "topic",
                                 "metrics": {"listen": "127.0.0.1:0"}}
            cls.sub = h.Sub(cls.tmp, h.write_json(
                os.path.join(cls.tmp, "sub.json"), cfg), cls.table,
                cls.router.sub_uri)
            cls.daemons.append(cls.sub)
            cls.sub.wait_ready()
        except BaseException:
            cls._cleanup()
            raise

    def start_prometheus(self):
        yml = os.path.join(self.tmp, "prometheus.yml")
        with open(yml, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: event-router\n"
                    "    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n"
                    "  - job_name: event-sub\n"
                    "    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n"
                    % (metrics_port(self.router), metrics_port(self.sub)))
        holder, self.pport = h.free_port_holder()
        holder.close()
        log = open(os.path.join(self.tmp, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([PROMETHEUS, "--config.file", yml,
                              "--storage.tsdb.path",
                              os.path.join(self.tmp, "tsdb"),
                              "--web.listen-address",
                              "127.0.0.1:%d" % self.pport],
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)

        def stop():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(h.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.addCleanup(stop)

        def ready():
            if p.poll() is not None:
                raise h.HarnessError("prometheus exited: %s" % open(
                    log.name, errors="replace").read())
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready"
                                            % self.pport, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        h.wait_until(ready, 60, "prometheus ready", interval=0.2)

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.pport, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=h.WAIT_TIMEOUT) as r:
            res = json.loads(r.read())
        self.assertEqual(res["status"], "success", res)
        return [float(x["value"][1]) for x in res["data"]["result"]]

    def wait_query(self, q, want):
        h.wait_until(lambda: self.query(q) == [want], 60,
                     "prometheus: %s == %r (last %r)" % (q, want,
                                                         self.query(q)),
                     interval=0.5)

    def test_prometheus_sees_the_counts_move(self):
        self.start_prometheus()
        self.wait_query('sum(up{job=~"event-router|event-sub"})', 2)
        req = h.zsock(zmq.REQ, self.router.rep)
        self.addCleanup(req.close, 0)
        ids = []
        for i in range(5):
            reply = json.loads(h.request(req, json.dumps(
                {"event_type": "prom.fail", "namespace": "prom"}).encode()))
            ids.append(reply["id"])
        h.request(req, b"[]")
        self.wait_query('eventreactor_events_accepted_total{job='
                        '"event-router",namespace="prom"}', 5)
        self.wait_query('eventreactor_events_rejected_total{job='
                        '"event-router",code="not_an_object"}', 1)
        self.wait_query('eventreactor_handler_runs_total{job="event-sub",'
                        'handler="false",status="failed"}', 5)
        self.wait_query('eventreactor_handler_run_duration_seconds_count{'
                        'job="event-sub",handler="false"}', 5)


if __name__ == "__main__":
    unittest.main()
