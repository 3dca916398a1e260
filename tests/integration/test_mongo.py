"""The MongoDB store: the real binaries, through the real mongo-c-driver over
TCP, against tests/integration/mongo_server.py (a small wire-protocol server
that keeps what it is sent), or against a real MongoDB when
ER_TEST_MONGODB_URI is set (mongodb://HOST[:PORT], no auth, no TLS; each
test uses a database of its own, ertest_PID_N, dropped afterwards).

What is checked, in both modes: the documents as stored (types exact, keys
escaped, _id the event id, timestamp a date), the results documents and
the indexes (listIndexes), documents refused for what they are (16 MiB,
too deep: logged once, not retried), the spool bound (a port that refuses
connections stands for a server that is away), --check on bad URIs.
Only with the test server, which a test can stop, restart and misconfigure:
the outage (stop it, fire events, restart it, every event there exactly
once, in order), "not primary" replies, a per-document writeError, and the
commands the driver sent (no unknown ones).
"""

import datetime
import json
import os
import re
import select
import subprocess
import sys
import time
import unittest

import harness as h
import mongo_server as ms
import test_metrics as tm
from bson.int64 import Int64
from bson.objectid import ObjectId

MONGO_SERVER = os.path.join(h.HERE, "mongo_server.py")
REAL_URI = os.environ.get("ER_TEST_MONGODB_URI")
REFUSE_KEY = "refuse_me"
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) \
    else sys.executable


class TestServer:
    """mongo_server.py as a child process; its data survives restarts."""

    real = False

    def __init__(self, tmpdir, name="mongo"):
        self.data = os.path.join(tmpdir, name + "-data")
        self.err_path = os.path.join(tmpdir, name + ".err")
        self.port = 0
        self.proc = None
        self.start()

    def start(self):
        err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, MONGO_SERVER, "--port", str(self.port), "--data",
             self.data, "--refuse-key", REFUSE_KEY],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        err.close()
        ready, _, _ = select.select([self.proc.stdout], [], [],
                                    h.READY_TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"listening (\d+)", line)
        if not m:
            self.stop()
            raise h.HarnessError("mongo_server.py did not start: %r; %s"
                                 % (line, self.stderr()))
        self.port = int(m.group(1))

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc = None

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def uri(self, db, options=""):
        return "mongodb://127.0.0.1:%d/%s%s" % (self.port, db, options)

    def wire(self):
        return ms.Wire("127.0.0.1", self.port)


class RealServer:
    """A MongoDB the tester points at with ER_TEST_MONGODB_URI."""

    real = True

    def __init__(self, uri):
        m = re.match(r"^mongodb://(?:[^@/]*@)?([^/?,]+)[^/?]*(?:/[^?]*)?"
                     r"(\?.*)?$", uri)
        if not m:
            raise h.HarnessError("ER_TEST_MONGODB_URI %r: expected "
                                 "mongodb://HOST[:PORT][/db][?options]" % uri)
        self.hosts = uri[len("mongodb://"):].split("/")[0].split("?")[0]
        hostport = m.group(1)
        self.host, _, port = hostport.rpartition(":") if ":" in hostport \
            else (hostport, "", "27017")
        self.port = int(port)
        self.options = (m.group(2) or "")[1:]

    def stop(self):
        pass

    def stderr(self):
        return ""

    def uri(self, db, options=""):
        opts = "&".join(o for o in (self.options, options.lstrip("?")) if o)
        return "mongodb://%s/%s%s" % (self.hosts, db,
                                      "?" + opts if opts else "")

    def wire(self):
        return ms.Wire(self.host, self.port)


def utc(dt):
    """Seconds since the epoch of a BSON date (decoded as naive UTC)."""
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def wire_call(server, fn):
    w = server.wire()
    try:
        return fn(w)
    finally:
        w.close()


class MongoTestCase(unittest.TestCase, h.TempDirMixin):

    counter = 0

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        try:
            cls.server = RealServer(REAL_URI) if REAL_URI else \
                TestServer(cls.tmp)
        except BaseException:
            cls.remove_tmpdir(cls.tmp)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        unknown = re.findall(r"unknown (?:command|opcode) \S+",
                             cls.server.stderr())
        cls.remove_tmpdir(cls.tmp)
        if unknown:
            raise h.HarnessError("the driver sent what mongo_server.py does "
                                 "not know: %s" % sorted(set(unknown)))

    def setUp(self):
        MongoTestCase.counter += 1
        self.db = "ertest_%d_%d" % (os.getpid(), MongoTestCase.counter)
        self.addCleanup(self.drop_db)

    def drop_db(self):
        try:
            wire_call(self.server, lambda w: w.command(
                self.db, {"dropDatabase": 1}))
        except (OSError, EOFError):
            pass

    def needs_test_server(self):
        if self.server.real:
            self.skipTest("needs mongo_server.py (stop/restart, recording)")

    # helpers -------------------------------------------------------------
    def store(self, server=None, options="", **extra):
        st = {"type": "mongodb",
              "uri": (server or self.server).uri(self.db, options),
              "spool_path": os.path.join(self.tmp, self.db + "-spool.db")}
        st.update(extra)
        return st

    def start_router(self, store=None, **kw):
        cfg = h.make_config(self.tmp, store=store or self.store(), **kw)
        r = h.Router(self.tmp, cfg)
        self.addCleanup(r.kill)
        r.wait_ready()
        return r

    def start_sub(self, router, handlers):
        cfg = dict(router.config)
        cfg["subscriber"] = {"uri": router.sub_uri, "framing": "topic"}
        cfg_path = h.write_json(os.path.join(
            self.tmp, "sub-%s.json" % self.db), cfg)
        hpath = h.write_json(os.path.join(
            self.tmp, "handlers-%s.json" % self.db), handlers)
        s = h.Sub(self.tmp, cfg_path, hpath, router.sub_uri)
        self.addCleanup(s.kill)
        s.wait_ready()
        return s

    def req(self, router):
        s = h.zsock(h.zmq.REQ, router.rep)
        self.addCleanup(s.close, 0)
        return s

    def fire(self, sock, obj):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        reply = h.request(sock, data)
        ev = json.loads(reply)
        self.assertRegex(ev.get("id", ""), h.OBJECTID_RE, reply[:200])
        return ev

    def find(self, coll, flt=None, server=None):
        return wire_call(server or self.server,
                         lambda w: w.find(self.db, coll, flt))

    def wait_doc(self, coll, flt, count=1, timeout=h.WAIT_TIMEOUT,
                 server=None):
        def pred():
            try:
                docs = self.find(coll, flt, server)
            except (OSError, EOFError):
                return None
            return docs if len(docs) >= count else None
        return h.wait_until(pred, timeout, "%d %s documents matching %r"
                            % (count, coll, flt))

    def indexes(self, coll):
        return {ix["name"]: ix for ix in wire_call(
            self.server, lambda w: w.list_indexes(self.db, coll))}

    def count_lines(self, daemon, pattern):
        return sum(1 for line in daemon.log_lines() if re.search(pattern,
                                                                 line))


class Documents(MongoTestCase):

    def test_event_document_types_exact(self):
        r = self.start_router()
        sock = self.req(r)
        payload_text = (
            '{"i32": 1, "i32max": 2147483647, "i32min": -2147483648, '
            '"i64": 2147483648, "i64min": -9223372036854775808, '
            '"dbl": 1.5, "dbl_integral": 2.0, "exp": 1e3, '
            '"s": "caf\\u00e9 \\u2603 \\ud83d\\ude00", "nul": "a\\u0000b", '
            '"t": true, "f": false, "n": null, '
            '"arr": [1, "two", [3.5], {"four": 4}, null], '
            '"doc": {"nested": {"deep": [false]}}, "empty": {}, "": "e", '
            '"a.b": 1, "$set": {"$inc": {"x.y": 2}}, '
            '"oid": {"$oid": "5f0c3b6f1c9d440000a1b2c3"}, "50%": "pct"}')
        msg = ('{"event_type": "mongo.types", "namespace": "ops", '
               '"parent_event": "abc", "_id": 7, "timestamp_raw": "mine", '
               '"payload": %s}' % payload_text).encode()
        ev = self.fire(sock, msg)
        doc = self.wait_doc("events", {"_id": ObjectId(ev["id"])})[0]
        self.assertEqual(list(doc.keys()), [
            "_id", "namespace", "event_type", "timestamp", "timestamp_raw",
            "parent_event", "%5Fid", "%74imestamp_raw", "payload"])
        self.assertEqual(doc["_id"], ObjectId(ev["id"]))
        self.assertEqual(doc["namespace"], "ops")
        self.assertEqual(doc["event_type"], "mongo.types")
        self.assertIs(type(doc["timestamp_raw"]), float)
        self.assertEqual(doc["timestamp_raw"], ev["timestamp"])
        # the date: milliseconds, rounded (naive UTC datetime from bson)
        self.assertAlmostEqual(utc(doc["timestamp"]), ev["timestamp"],
                               delta=0.0006)
        self.assertEqual(doc["timestamp"].microsecond % 1000, 0)
        self.assertEqual(doc["parent_event"], "abc")
        self.assertIs(type(doc["%5Fid"]), int)
        self.assertEqual(doc["%74imestamp_raw"], "mine")
        p = doc["payload"]

        def exact(key, typ, value):
            self.assertIs(type(p[key]), typ, key)
            self.assertEqual(p[key], value, key)
        exact("i32", int, 1)
        exact("i32max", int, 2147483647)
        exact("i32min", int, -2147483648)
        exact("i64", Int64, 2147483648)
        exact("i64min", Int64, -9223372036854775808)
        exact("dbl", float, 1.5)
        exact("dbl_integral", float, 2.0)
        exact("exp", float, 1000.0)
        exact("s", str, "caf\u00e9 \u2603 \U0001F600")
        exact("nul", str, "a\0b")
        exact("t", bool, True)
        exact("f", bool, False)
        self.assertIsNone(p["n"])
        self.assertEqual(p["arr"], [1, "two", [3.5], {"four": 4}, None])
        self.assertIs(type(p["arr"][2][0]), float)
        self.assertEqual(p["doc"], {"nested": {"deep": [False]}})
        self.assertEqual(p["empty"], {})
        self.assertEqual(p[""], "e")
        # the key rule: '.' -> %2E, leading '$' -> %24, '%' -> %25
        self.assertEqual(p["a%2Eb"], 1)
        self.assertEqual(p["%24set"], {"%24inc": {"x%2Ey": 2}})
        self.assertEqual(p["oid"], {"%24oid": "5f0c3b6f1c9d440000a1b2c3"})
        self.assertEqual(p["50%25"], "pct")
        self.assertNotIn("id", doc)

        # an integer timestamp sent by the client stays an integer
        ev = self.fire(sock, {"event_type": "mongo.ts",
                              "timestamp": 1700000000})
        doc = self.wait_doc("events", {"_id": ObjectId(ev["id"])})[0]
        self.assertIs(type(doc["timestamp_raw"]), int)
        self.assertEqual(doc["timestamp"].year, 2023)
        r.stop()
        self.assertRegex(r.log_text(), r"stopped: .*stored 2, store "
                         r"failures 0, spooled 0, lost \(spool full\) 0")

    def test_results_and_indexes(self):
        r = self.start_router(store=self.store(ttl_days=2))
        out = os.path.join(self.tmp, self.db + ".jsonl")
        self.start_sub(r, {"mongo.*": [
            {"driver": "shell", "handler": "%s %s --stdout=hello --exit=3"
             % (h.RECORD_ARGV, out)},
            {"driver": "shell", "handler": "/nonexistent/handler"}]})
        ev = self.fire(self.req(r), {"event_type": "mongo.run"})
        res = self.wait_doc("results", {"event_id": ObjectId(ev["id"])}, 2)
        by_handler = {d["handler"]: d for d in res}
        ran = by_handler["%s %s --stdout=hello --exit=3"
                         % (h.RECORD_ARGV, out)]
        self.assertIsInstance(ran["_id"], ObjectId)
        self.assertEqual(ran["driver"], "shell")
        self.assertEqual(ran["status"], "failed")
        self.assertIs(type(ran["exit_code"]), int)
        self.assertEqual(ran["exit_code"], 3)
        self.assertIsNone(ran["signal"])
        self.assertEqual(ran["stdout"], "hello\n")
        self.assertIs(type(ran["duration_ms"]), float)
        self.assertLess(abs(utc(ran["started_at"]) - ev["timestamp"]), 60)
        missing = by_handler["/nonexistent/handler"]
        self.assertEqual(missing["status"], "error")
        self.assertIsNone(missing["exit_code"])
        self.assertIsInstance(missing["error"], str)

        self.wait_doc("events", {"_id": ObjectId(ev["id"])})
        ix = self.indexes("results")
        self.assertEqual(ix["event_id"]["key"], {"event_id": 1})
        self.assertNotIn("expireAfterSeconds", ix["event_id"])
        self.assertEqual(ix["started_at_ttl"]["key"], {"started_at": 1})
        self.assertEqual(ix["started_at_ttl"]["expireAfterSeconds"],
                         2 * 86400)
        ix = self.indexes("events")
        self.assertEqual(ix["timestamp_ttl"]["key"], {"timestamp": 1})
        self.assertEqual(ix["timestamp_ttl"]["expireAfterSeconds"], 2 * 86400)


class Refused(MongoTestCase):

    def refused(self, sock, data, why):
        """Send data, which the store refuses: the client gets
        store_unavailable, and the router logs why once, naming the
        event's id, which it returns."""
        self.assertEqual(h.request(sock, data), h.STORE_UNAVAILABLE)
        return self.wait_log_id(r"event ([0-9a-f]{24}) refused, not "
                                r"retried: " + why)

    def wait_log_id(self, pattern):
        return self.router.wait_log(pattern).group(1)

    def test_over_16_mib_logged_once_not_retried(self):
        r = self.router = self.start_router(max_event_size=20 * 1024 * 1024)
        sock = self.req(r)
        big = self.refused(sock, b'{"event_type":"mongo.big","payload":"' +
                           b"x" * (17 * 1024 * 1024) + b'"}',
                           r"document is \d+ bytes, over MongoDB's limit "
                           r"of 16777216 bytes")
        # later events are stored; the big one is not, and is not retried
        after = self.fire(sock, {"event_type": "mongo.after"})
        self.wait_doc("events", {"_id": ObjectId(after["id"])})
        time.sleep(1.5)    # a replay tick or two would log it again
        self.assertEqual(self.find("events", {"_id": ObjectId(big)}), [])
        self.assertEqual(self.count_lines(r, re.escape(big)), 1)
        r.stop()
        self.assertRegex(r.log_text(), r"stored 1, store failures 1, "
                         r"spooled 0")

    def test_nested_too_deep_logged_once(self):
        r = self.router = self.start_router()
        sock = self.req(r)
        deep = self.refused(sock, b'{"event_type":"mongo.deep","payload":' +
                            b"[" * 150 + b"]" * 150 + b"}",
                            r"nested deeper than 100 levels")
        ok = self.fire(sock, {"event_type": "mongo.shallow",
                              "payload": [[[[1]]]]})
        self.wait_doc("events", {"_id": ObjectId(ok["id"])})
        self.assertEqual(self.count_lines(r, re.escape(deep)), 1)

    def test_server_write_error_dropped_once(self):
        self.needs_test_server()
        r = self.router = self.start_router()
        sock = self.req(r)
        bad = self.refused(sock, json.dumps(
            {"event_type": "mongo.refused",
             "payload": {REFUSE_KEY: 1}}).encode(),
            r"server error 2: BadValue")
        ok = self.fire(sock, {"event_type": "mongo.fine"})
        self.wait_doc("events", {"_id": ObjectId(ok["id"])})
        time.sleep(1.5)
        self.assertEqual(self.count_lines(r, re.escape(bad)), 1)
        self.assertNotRegex(r.log_text(), r"spooling")


class Unavailable(MongoTestCase):

    def test_spool_bound_loss_logged_and_counted(self):
        # nothing listens there: MongoDB is away from the start
        holder, port = h.free_port_holder()
        self.addCleanup(holder.close)
        st = {"type": "mongodb",
              "uri": "mongodb://127.0.0.1:%d/%s?serverSelectionTimeoutMS="
                     "3000" % (port, self.db),
              "spool_path": os.path.join(self.tmp, self.db + "-spool.db"),
              "spool_max": 3}
        t0 = time.monotonic()
        r = self.start_router(store=st, extra={
            "metrics": {"listen": "127.0.0.1:0"}})
        # the start did not wait for server selection (3 s)
        self.assertLess(time.monotonic() - t0, 2.5)
        sock = self.req(r)
        # the spool is durable: its events are acknowledged; past its
        # bound they are not
        t0 = time.monotonic()
        ids = [self.fire(sock, {"event_type": "mongo.away", "payload": 0})
               ["id"]]
        first = time.monotonic() - t0
        ids += [self.fire(sock, {"event_type": "mongo.away", "payload": i})
                ["id"] for i in range(1, 3)]
        for i in range(3, 6):
            self.assertEqual(h.request(sock, b'{"event_type":"mongo.away",'
                                       b'"payload":%d}' % i),
                             h.STORE_SPOOL_FULL)
        # the first reply waited for server selection (3 s), the others
        # did not (twice would be 6 s)
        self.assertGreaterEqual(first, 2.5)
        self.assertLess(time.monotonic() - t0, 5.5)
        r.wait_log(r"WARNING event rejected on rep: store_unavailable: the "
                   r"store's server is away and its spool is full; the event "
                   r"was not published$")
        # /metrics: what went to the spool, what it holds, what was lost
        got = tm.scrape(tm.metrics_port(r))
        self.assertEqual([tm.value(got, "eventreactor_store_" + n) for n in
                          ("spooled_total", "spool_depth", "lost_total")],
                         [3, 3, 3])
        r.stop()
        log = r.log_text()
        self.assertEqual(len(re.findall(r"ERROR store mongodb: SPOOL FULL",
                                        log)), 3)
        self.assertRegex(log, r"spooled 3, lost \(spool full\) 3")
        self.assertRegex(log, r"3 records were LOST because the spool was "
                         r"full")
        self.assertRegex(log, r"records stay in the spool \S+ \(3 in it\)")
        con = h.db_connect(st["spool_path"])
        self.addCleanup(con.close)
        self.assertEqual(con.execute("SELECT event_id FROM spool ORDER BY "
                                     "seq").fetchall(),
                         [(i.encode(),) for i in ids[:3]])

    def test_outage_replayed_exactly_once_in_order(self):
        self.needs_test_server()
        srv = TestServer(self.tmp, "outage")
        self.addCleanup(srv.stop)
        st = self.store(server=srv)
        r = self.start_router(store=st, extra={
            "metrics": {"listen": "127.0.0.1:0"}})
        port = tm.metrics_port(r)
        out = os.path.join(self.tmp, self.db + ".jsonl")
        s = self.start_sub(r, {"mongo.outage": [
            {"driver": "shell", "handler": "%s %s" % (h.RECORD_ARGV, out)}]})
        sock = self.req(r)
        first = self.fire(sock, {"event_type": "mongo.outage", "payload": -1})
        self.wait_doc("events", {"_id": ObjectId(first["id"])}, server=srv)
        self.wait_doc("results", {"event_id": ObjectId(first["id"])},
                      server=srv)

        srv.stop()
        n = 20
        t0 = time.monotonic()
        ids = []
        for i in range(n):
            cp = h.fire(["-u", r.rep, "-e", "mongo.outage", "-d",
                         json.dumps({"i": i})])
            self.assertEqual(cp.returncode, 0, cp.stderr)
            ids.append(json.loads(cp.stdout)["id"])
        # replies kept coming while the server was away (each one would
        # take seconds if the router waited on server selection)
        self.assertLess(time.monotonic() - t0, 15)
        r.wait_log(r"server unavailable .*spooling to")
        s.wait_log(r"server unavailable .*spooling to")
        h.wait_until(lambda: len(h.read_records(out)) >= n + 1,
                     what="handler runs during the outage")

        srv.start()
        want = [first["id"]] + ids
        docs = self.wait_doc("events", {}, count=n + 1, timeout=30,
                             server=srv)
        got = [str(d["_id"]) for d in docs]
        self.assertEqual(sorted(got), sorted(want))   # each exactly once
        # stored in the order they were accepted (replay keeps order)
        stored = [str(ms.decode(raw)["_id"]) for ns, raw in
                  ms.stored_docs(srv.data, self.db + ".events")]
        self.assertEqual(stored, want)
        res = self.wait_doc("results", {}, count=n + 1, timeout=30,
                            server=srv)
        self.assertEqual(sorted(str(d["event_id"]) for d in res),
                         sorted(want))
        r.wait_log(r"server reachable again")
        # the spool file (the router's and event-sub's) empties
        tm.wait_value(port, 0, "eventreactor_store_spool_depth")
        r.stop()
        s.stop()
        # most went through the spool; the last ones may still have been
        # queued in memory (writer busy in server selection) when the
        # server came back, and then went straight in
        m = re.search(r"stored %d, store failures 0, spooled (\d+), lost "
                      r"\(spool full\) 0" % (n + 1), r.log_text())
        self.assertTrue(m, r.log_text())
        self.assertTrue(1 <= int(m.group(1)) <= n, m.group(0))
        self.assertRegex(s.log_text(), r"store failures 0, spooled \d+, "
                         r"lost \(spool full\) 0")
        con = h.db_connect(st["spool_path"])
        self.addCleanup(con.close)
        self.assertEqual(con.execute("SELECT count(*) FROM spool")
                         .fetchone()[0], 0)

    def test_not_primary_is_retried(self):
        self.needs_test_server()
        r = self.start_router()
        sock = self.req(r)
        flag = os.path.join(self.server.data, "not_primary")
        open(flag, "w").close()
        self.addCleanup(lambda: os.path.exists(flag) and os.unlink(flag))
        ids = [self.fire(sock, {"event_type": "mongo.np", "payload": i})["id"]
               for i in range(3)]
        r.wait_log(r"server unavailable \(.*not primary.*\); spooling")
        os.unlink(flag)
        docs = self.wait_doc("events", {"event_type": "mongo.np"}, count=3)
        self.assertEqual(sorted(str(d["_id"]) for d in docs), sorted(ids))


class Check(MongoTestCase):

    def check(self, prog, uri):
        cfg = h.make_config(self.tmp, store={"type": "mongodb", "uri": uri})
        path = h.write_json(os.path.join(self.tmp, "check.json"), cfg)
        argv = [h.binary(prog), "--check", "-c", path]
        if prog == "event-sub":
            argv += ["-e", h.write_json(os.path.join(self.tmp, "h.json"),
                                        {})]
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=30)

    def test_check_validates_the_uri(self):
        for prog in ("event-router", "event-sub"):
            cp = self.check(prog, "mongodb://127.0.0.1:99999/x")
            self.assertEqual(cp.returncode, 78, cp.stderr)
            self.assertRegex(cp.stderr.decode(), r"check\.json:\d+:\d+: store "
                             r"uri \"mongodb://127\.0\.0\.1:99999/x\": .*Port "
                             r"could not be parsed")
            cp = self.check(prog, "mysql://db/x")
            self.assertEqual(cp.returncode, 78, cp.stderr)
            self.assertRegex(cp.stderr.decode(), r"store uri \"mysql://db/x\""
                             r": Invalid URI Schema")
            # a good URI passes without connecting (nothing listens there)
            holder, port = h.free_port_holder()
            try:
                cp = self.check(prog, "mongodb://127.0.0.1:%d/ok" % port)
            finally:
                holder.close()
            self.assertEqual(cp.returncode, 0, cp.stderr)


if __name__ == "__main__":
    unittest.main()
