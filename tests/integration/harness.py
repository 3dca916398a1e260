"""Helpers for the Event Reactor integration tests.

The tests start the real binaries (event-router, event-sub, fire-event) from
$ER_BUILD_DIR (default: <repo>/build) on 127.0.0.1 with port 0 everywhere,
read the bound endpoints back from the router's ``ready`` log line and talk to
them with real ZeroMQ sockets (python3-zmq, Debian's /usr/bin/python3).

Every wait is bounded.  Synchronisation uses readiness signals (log lines, the
router's control message on PUB, rows appearing in the store);
the only sleeps are short pauses inside bounded polling loops.
"""

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
BIN_DIR = os.path.join(HERE, "bin")
RECORD_ARGV = os.path.join(BIN_DIR, "record-argv")

READY_TIMEOUT = float(os.environ.get("ER_READY_TIMEOUT", "10"))
STOP_TIMEOUT = float(os.environ.get("ER_STOP_TIMEOUT", "10"))
WAIT_TIMEOUT = float(os.environ.get("ER_WAIT_TIMEOUT", "10"))
POLL = 0.02

# 2026-11-29T14:20:00.123Z event-router[123] INFO message
LOG_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
    r"(?P<prog>[A-Za-z0-9_.-]+)\[(?P<pid>\d+)\] "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR) (?P<msg>.*)$")
ROUTER_READY_RE = re.compile(r"\bready pull=(\S+) rep=(\S+) pub=(\S+)")
SUB_READY_RE = re.compile(r"\bready subscribed to (\S+)")

OBJECTID_RE = re.compile(r"^[0-9a-f]{24}$")

# The reply to a request whose event the store could not write, and whose
# event MongoDB's spool had no room for (event-reactor(7), "Delivery
# promises").
STORE_UNAVAILABLE = (b'{"error":{"code":"store_unavailable","message":"the '
                     b'store could not write the event; it was not '
                     b'published"}}')
STORE_SPOOL_FULL = (b'{"error":{"code":"store_unavailable","message":"the '
                    b'store\'s server is away and its spool is full; the '
                    b'event was not published"}}')

SCHEMA = """
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    namespace   TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    timestamp   REAL NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE results (
    event_id    TEXT NOT NULL,
    driver      TEXT NOT NULL,
    handler     TEXT NOT NULL,
    status      TEXT NOT NULL,
    exit_code   INTEGER,
    signal      INTEGER,
    started_at  REAL NOT NULL,
    duration_ms REAL NOT NULL,
    stdout      TEXT,
    stderr      TEXT,
    error       TEXT,
    data        TEXT,
    redelivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX results_event_id ON results(event_id);
PRAGMA user_version = 2;
"""

_CTX = None


class HarnessError(AssertionError):
    """A harness-level failure (daemon did not start/stop, wait timed out).

    Subclasses AssertionError so unittest reports it as a test failure.
    """


def ctx():
    global _CTX
    if _CTX is None:
        _CTX = zmq.Context()
    return _CTX


def build_dir():
    return os.path.abspath(os.environ.get("ER_BUILD_DIR",
                                          os.path.join(REPO, "build")))


def binary(name):
    path = os.path.join(build_dir(), name)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise HarnessError("binary %s not found or not executable "
                           "(set ER_BUILD_DIR)" % path)
    return path


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def load_fixture(name):
    with open(fixture_path(name), "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def wait_until(predicate, timeout=WAIT_TIMEOUT, what="condition",
               interval=POLL):
    """Poll predicate() until it returns a truthy value; return it.

    Raises HarnessError after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %.1fs waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def free_port_holder():
    """Return (sock, port): a TCP socket bound to a free loopback port but not
    listening, so connections to it are refused and nobody else takes it
    while the caller holds the socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def minify_json(text):
    """Remove insignificant white space from JSON text, keeping every token's
    exact text (numbers and string escapes are not re-formatted)."""
    out = []
    in_str = False
    esc = False
    for ch in text:
        if in_str:
            out.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            out.append(ch)
        elif ch in " \t\r\n":
            continue
        else:
            out.append(ch)
    return "".join(out)


def loads_pairs(data):
    """json.loads keeping member order (list of pairs for every object)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, object_pairs_hook=lambda pairs: pairs)


def top_level_keys(data):
    return [k for k, _ in loads_pairs(data)]


# --------------------------------------------------------------------------
# config

def make_config(tmpdir, store_path=None, max_event_size=None, feeders=None,
                subscriber_uri="tcp://127.0.0.1:1", extra=None,
                store=None, subscriber_framing="topic"):
    """Return a config dict in the ancestor's format, port 0 everywhere:
    the router's two default outputs (one frame per event, then topic
    framing, Router.sub_uri), and event-sub on subscriber_uri, a stream of
    subscriber_framing."""
    if feeders is None:
        feeders = [{"handler": "ZMQInput", "namespace": "local",
                    "config": {"uri": "tcp://127.0.0.1:0"}}]
    if store is None:
        if store_path is None:
            store_path = os.path.join(tmpdir, "events.db")
        store = {"type": "sqlite", "path": store_path}
    cfg = {
        "aggregator": {"config": {"protocol": "tcp",
                                  "listen_address": "127.0.0.1",
                                  "port": 0}},
        "outputs": [{"handler": "zeromq",
                     "config": {"protocol": "tcp",
                                "listen_address": "127.0.0.1",
                                "port": 0}},
                    {"handler": "zeromq",
                     "config": {"protocol": "tcp",
                                "listen_address": "127.0.0.1",
                                "port": 0, "framing": "topic"}}],
        "feeds": {"feeders": feeders},
        "store": store,
        "subscriber": {"uri": subscriber_uri},
    }
    if subscriber_framing is not None:
        cfg["subscriber"]["framing"] = subscriber_framing
    if max_event_size is not None:
        cfg["limits"] = {"max_event_size": max_event_size}
    if os.geteuid() == 0:
        # started as root, the daemons run as "user", by default the
        # event-reactor user when it exists (event-reactor.conf(5)); the
        # tests' daemons stay root unless a test says otherwise
        cfg["user"] = "root"
    if extra:
        cfg.update(extra)
    return cfg


def with_user(text):
    """A configuration's JSON text with "user": "root" added last when the
    tests run as root, as make_config() does: as root, a daemon refuses to
    start without a "user" (or the event-reactor user).  The positions of
    what the text had stay the same."""
    if os.geteuid() != 0:
        return text
    end = text.rstrip().rindex("}")
    sep = "" if text[:end].rstrip().endswith("{") else ", "
    return text[:end] + sep + '"user": "root"' + text[end:]


def segv_env():
    """Environment for a daemon whose child segfaults on purpose: in an
    ASan build (make check SANITIZE=1), AddressSanitizer would catch the
    SIGSEGV and exit instead; ignored by other builds."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + "handle_segv=0"}


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


# --------------------------------------------------------------------------
# daemons

class Daemon:
    """A started binary with stderr in a log file.  env: variables to set
    over ours; a value None removes that variable."""

    def __init__(self, name, argv, tmpdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(tmpdir, "%s.%d.log" % (name, id(self)))
        self.out_path = self.log_path[:-4] + ".out"
        self._log = open(self.log_path, "wb")
        self._out = open(self.out_path, "wb")
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)      # None: not in the daemon's environment
            else:
                e[k] = v
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._log,
                                     env=e, cwd=tmpdir,
                                     start_new_session=True)
        self.returncode = None

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        return self.log_text().splitlines()

    def find_log(self, pattern, flags=0):
        """Return the first re match over log lines, or None."""
        rx = re.compile(pattern, flags)
        for line in self.log_lines():
            m = rx.search(line)
            if m:
                return m
        return None

    def wait_log(self, pattern, timeout=WAIT_TIMEOUT, flags=0, what=None):
        def pred():
            m = self.find_log(pattern, flags)
            if m:
                return m
            if self.proc.poll() is not None:
                raise HarnessError(
                    "%s exited with %s while waiting for %r; log:\n%s"
                    % (self.name, self.proc.returncode, pattern,
                       self.log_text()))
            return None
        try:
            return wait_until(pred, timeout, what or "log line %r" % pattern)
        except HarnessError as e:
            if "timed out" in str(e):
                raise HarnessError("%s\n--- %s log ---\n%s"
                                   % (e, self.name, self.log_text()))
            raise

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT, expect_code=0):
        """SIGTERM, wait bounded; kill -9 and fail on timeout.

        Returns the exit code; raises HarnessError if it differs from
        expect_code (None: accept anything)."""
        if self.returncode is not None:
            return self.returncode
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise HarnessError("%s did not exit within %.1fs of SIGTERM;"
                                   " killed. log:\n%s"
                                   % (self.name, timeout, self.log_text()))
        finally:
            self._close_files()
        self.returncode = rc
        if expect_code is not None and rc != expect_code:
            raise HarnessError("%s exited with %r after SIGTERM, expected %r;"
                               " log:\n%s" % (self.name, rc, expect_code,
                                              self.log_text()))
        return rc

    def kill(self):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        self._close_files()

    def _close_files(self):
        for f in (self._log, self._out):
            with contextlib.suppress(Exception):
                f.close()


class Router(Daemon):
    """event-router; wrap: argv to run it under (it must exec the rest,
    so that the process is the router)."""

    def __init__(self, tmpdir, config, level="debug", config_name=None,
                 env=None, wrap=()):
        self.tmpdir = tmpdir
        self.config = config
        self.config_path = os.path.join(
            tmpdir, config_name or "router-%d.json" % id(self))
        write_json(self.config_path, config)
        store = config.get("store") or {}
        self.store_path = store.get("path") if store.get("type") == "sqlite" \
            else None
        super().__init__("event-router", list(wrap) +
                         [binary("event-router"), "-c", self.config_path,
                          "-l", level], tmpdir, env=env)
        self.pull = self.rep = self.pub = self.sub_uri = None
        self.reps = []
        self.pubs = []
        self.framings = []

    def wait_ready(self, timeout=READY_TIMEOUT):
        m = self.wait_log(ROUTER_READY_RE.pattern, timeout,
                          what="event-router ready line")
        self.pull, rep, pub = m.group(1), m.group(2), m.group(3)
        self.reps = [u for u in rep.split(",") if u]
        self.rep = self.reps[0] if self.reps else None
        # one PUB endpoint per zeromq output, in the config's order
        self.pubs = pub.split(",")
        self.pub = self.pubs[0]
        outs = [o for o in self.config.get("outputs", [])
                if not o.get("disabled") and o.get("handler") == "zeromq"]
        self.framings = [(o.get("config") or {}).get("framing", "event")
                         for o in outs] or ["event", "topic"]
        # event-sub's stream: the first with topic framing (event-reactor(7),
        # "Wire protocol")
        self.sub_uri = next((u for u, f in zip(self.pubs, self.framings)
                             if f == "topic"), None)
        for uri in [self.pull] + self.pubs + self.reps:
            if not re.match(r"^(tcp://127\.0\.0\.1:[1-9]\d*|ipc:///.+)$", uri):
                raise HarnessError("ready line endpoint %r is not a bound "
                                   "tcp://127.0.0.1:PORT or ipc:///PATH"
                                   % uri)
        return self


    def subscriptions(self, uri):
        """How many subscriptions the router has taken on its output uri,
        by its own debug lines."""
        n = 0
        rx = re.compile(r"subscription messages on %s \((\d+) subscriptions "
                        r"so far\)" % re.escape(uri))
        for line in self.log_lines():
            m = rx.search(line)
            if m:
                n = int(m.group(1))
        return n

    def wait_subscriptions(self, uri, n, timeout=WAIT_TIMEOUT):
        """Wait until the router has taken n subscriptions on uri (ZeroMQ
        applies one before the router takes it)."""
        wait_until(lambda: self.subscriptions(uri) >= n, timeout,
                   "the router's line saying it has %d subscriptions on %s"
                   % (n, uri))


class Sub(Daemon):
    """event-sub; wrap: argv to run it under, as Router's."""

    def __init__(self, tmpdir, config_path, handlers_path, uri, level="debug",
                 env=None, extra_args=(), wrap=()):
        self.tmpdir = tmpdir
        self.config_path = config_path
        self.handlers_path = handlers_path
        self.uri = uri
        argv = list(wrap) + [binary("event-sub"), "-c", config_path, "-e",
                             handlers_path, "-l", level]
        if uri is not None:
            argv += ["-u", uri]
        argv += list(extra_args)
        super().__init__("event-sub", argv, tmpdir, env=env)

    def wait_ready(self, timeout=READY_TIMEOUT):
        self.wait_log(SUB_READY_RE.pattern, timeout,
                      what="event-sub ready line")
        return self


# --------------------------------------------------------------------------
# zmq clients

def zsock(kind, uri, connect=True, rcvtimeo=None, sndtimeo=None):
    """A socket connected (or bound) to uri.  A send waits at most
    sndtimeo ms (WAIT_TIMEOUT by default), then raises zmq.Again: a PUSH,
    REQ or DEALER whose peer is gone or full would wait for ever."""
    s = ctx().socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, int(WAIT_TIMEOUT * 1000)
                 if sndtimeo is None else sndtimeo)
    if rcvtimeo is not None:
        s.setsockopt(zmq.RCVTIMEO, rcvtimeo)
    if connect:
        s.connect(uri)
    else:
        s.bind(uri)
    return s


def recv_bounded(sock, timeout=WAIT_TIMEOUT, multipart=False):
    if not sock.poll(int(timeout * 1000), zmq.POLLIN):
        raise HarnessError("no message within %.1fs" % timeout)
    return sock.recv_multipart() if multipart else sock.recv()


def request(sock, data, timeout=WAIT_TIMEOUT):
    """Send one frame (or a list = multipart) on a REQ socket, return the
    single reply frame (asserting the reply has exactly one frame)."""
    if not sock.poll(int(timeout * 1000), zmq.POLLOUT):
        raise HarnessError("the REQ socket cannot send within %.1fs (no "
                           "connection: a refused handshake?)" % timeout)
    if isinstance(data, (list, tuple)):
        sock.send_multipart(list(data))
    else:
        sock.send(data)
    frames = recv_bounded(sock, timeout, multipart=True)
    if len(frames) != 1:
        raise HarnessError("reply has %d frames, expected 1: %r"
                           % (len(frames), frames))
    return frames[0]


# The control message of a topic-framed stream (event-reactor(7),
# "Wire protocol"): an empty topic, then this.
CONTROL_TEXT = b'{"control":"subscribed"}'


def event_topic(body):
    """The topic the two-frame stream gives an event: namespace:event_type."""
    ev = json.loads(body)
    return ("%s:%s" % (ev["namespace"], ev["event_type"])).encode("utf-8")


class PubListener:
    """A raw SUB socket on one of the router's PUB streams, subscribed to
    everything.

    framing "topic": every message must be two frames, the topic and the
    event, or an empty topic and CONTROL_TEXT; ready, like event-sub, once
    the router's control message came.  framing "event": every message
    must be one frame, an event (its text starts with "{"); the stream
    says nothing back, so it is ready once router (a Router) says it has
    taken one more subscription on uri.  events holds (topic, body) in
    arrival order; on the one-frame stream the topic is the event's
    namespace:event_type."""

    def __init__(self, uri, timeout=READY_TIMEOUT, framing="topic",
                 router=None):
        self.framing = framing
        self.controls = []
        self.events = []      # list of (topic, body), in arrival order
        if framing == "event":
            if router is None:
                raise HarnessError("a one-frame PubListener needs the "
                                   "router to tell it is subscribed")
            before = router.subscriptions(uri)
            self.sock = zsock(zmq.SUB, uri)
            self.sock.setsockopt(zmq.SUBSCRIBE, b"")
            try:
                router.wait_subscriptions(uri, before + 1, timeout)
            except HarnessError:
                self.close()
                raise
            return
        self.sock = zsock(zmq.SUB, uri)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise HarnessError("no control message from %s within %.1fs"
                                   % (uri, timeout))
            if self.sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                frames = self.sock.recv_multipart()
                if self._take(frames) == "control":
                    break

    def _take(self, frames):
        if self.framing == "event":
            if len(frames) != 1:
                raise HarnessError("one-frame PUB message with %d frames: "
                                   "%r" % (len(frames), frames))
            body = frames[0]
            if not body.startswith(b"{"):
                raise HarnessError("PUB frame is no event: %r" % body)
            self.events.append((event_topic(body), body))
            return "event"
        if len(frames) != 2:
            raise HarnessError("PUB message with %d frames: %r"
                               % (len(frames), frames))
        topic, body = frames
        if topic == b"":
            self.controls.append(json.loads(body))
            return "control"
        self.events.append((topic, body))
        return "event"

    def drain(self, timeout=0.0):
        """Receive whatever is there (waiting up to timeout for the first)."""
        t = int(timeout * 1000)
        while self.sock.poll(t, zmq.POLLIN):
            self._take(self.sock.recv_multipart())
            t = 0

    def wait_event(self, pred, timeout=WAIT_TIMEOUT, what="event on PUB"):
        """Return the first (topic, body) received so far or later that
        satisfies pred(topic, body)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if pred(*ev):
                    return ev
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError("timed out after %.1fs waiting for %s; "
                                   "got %d events: %r" % (
                                       timeout, what, len(self.events),
                                       self.events[-5:]))
            if self.sock.poll(int(left * 1000) + 1, zmq.POLLIN):
                self._take(self.sock.recv_multipart())

    def wait_id(self, event_id, timeout=WAIT_TIMEOUT):
        def pred(topic, body):
            try:
                return json.loads(body).get("id") == event_id
            except ValueError:
                return False
        return self.wait_event(pred, timeout, "event id %s on PUB" % event_id)

    def close(self):
        self.sock.close(0)


# --------------------------------------------------------------------------
# store

def db_connect(path):
    con = sqlite3.connect(path, timeout=5)
    con.text_factory = bytes
    return con


def db_query(path, sql, args=()):
    """Run a query on a fresh connection, retrying on 'database is locked'
    or a missing table (the daemon may still be creating it)."""
    if not os.path.exists(path):
        return None
    try:
        con = db_connect(path)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError as e:
        msg = str(e)
        if "locked" in msg or "no such table" in msg or "busy" in msg:
            return None
        raise


def wait_event_row(path, event_id, timeout=WAIT_TIMEOUT):
    rows = wait_until(
        lambda: db_query(path, "SELECT id, namespace, event_type, timestamp,"
                         " body FROM events WHERE id = ?", (event_id,)),
        timeout, "events row %s in %s" % (event_id, path))
    return rows[0]


RESULT_COLS = ["event_id", "driver", "handler", "status", "exit_code",
               "signal", "started_at", "duration_ms", "stdout", "stderr",
               "error", "data", "redelivered", "replayed"]


def result_rows(path, event_id=None):
    sql = "SELECT %s FROM results" % ", ".join(RESULT_COLS)
    args = ()
    if event_id is not None:
        sql += " WHERE event_id = ?"
        args = (event_id,)
    rows = db_query(path, sql, args) or []
    out = []
    for r in rows:
        d = dict(zip(RESULT_COLS, r))
        for k, v in d.items():
            if isinstance(v, bytes):
                d[k] = v.decode("utf-8", "surrogateescape")
        out.append(d)
    return out


def wait_results(path, event_id, count, timeout=WAIT_TIMEOUT):
    return wait_until(
        lambda: (lambda rows: rows if len(rows) >= count else None)(
            result_rows(path, event_id)),
        timeout, "%d results rows for event %s" % (count, event_id))


# --------------------------------------------------------------------------
# record-argv output

def read_records(path):
    """Records written by bin/record-argv: dicts with 'argv' (list of str)
    and 'argv_bytes' (list of bytes, exact)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            rec = json.loads(line)
            rec["argv_bytes"] = [base64.b64decode(a) for a in rec["argv_b64"]]
            out.append(rec)
    return out


def wait_record(path, event_id, timeout=WAIT_TIMEOUT):
    """The record whose last argument is the event with this id."""
    def pred():
        for rec in read_records(path):
            try:
                if json.loads(rec["argv_bytes"][-1]).get("id") == event_id:
                    return rec
            except (ValueError, AttributeError, IndexError):
                pass
        return None
    return wait_until(pred, timeout, "record-argv record for %s in %s"
                      % (event_id, path))


# --------------------------------------------------------------------------
# fire-event

def fire(args, input=None, timeout=30, env=None):
    """Run fire-event with args; return CompletedProcess (bytes) plus
    .elapsed seconds."""
    e = dict(os.environ)
    if env:
        e.update(env)
    t0 = time.monotonic()
    cp = subprocess.run([binary("fire-event")] + list(args), input=input,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=timeout, env=e)
    cp.elapsed = time.monotonic() - t0
    return cp


# --------------------------------------------------------------------------
# test base

def stop_all(daemons):
    """Stop daemons, the last started first (SIGTERM, exit 0 expected),
    killing each whatever happens; returns the errors as text."""
    errors = []
    for d in reversed(daemons):
        try:
            d.stop()
        except HarnessError as e:
            errors.append(str(e))
        finally:
            d.kill()
    return errors


class TempDirMixin:
    """Per-class temp dir, removed at class teardown."""

    @classmethod
    def make_tmpdir(cls):
        d = tempfile.mkdtemp(prefix="er-it-")
        return d

    @classmethod
    def remove_tmpdir(cls, d):
        if os.environ.get("ER_KEEP_TMP"):
            sys.stderr.write("keeping %s\n" % d)
            return
        shutil.rmtree(d, ignore_errors=True)


class RouterTestCase(unittest.TestCase, TempDirMixin):
    """One router per test class (setUpClass), stopped with SIGTERM at the
    end (exit 0 asserted)."""

    router_kwargs = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []
        try:
            cls.router = cls.start_router(**cls.router_kwargs)
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def start_router(cls, **kw):
        cfg = make_config(cls.tmp, **kw)
        r = Router(cls.tmp, cfg)
        cls.daemons.append(r)
        r.wait_ready()
        return r

    @classmethod
    def _cleanup(cls):
        errors = stop_all(cls.daemons)
        cls.remove_tmpdir(cls.tmp)
        return errors

    @classmethod
    def tearDownClass(cls):
        errors = cls._cleanup()
        if errors:
            raise HarnessError("\n".join(errors))

    def setUp(self):
        self._socks = []

    def tearDown(self):
        for s in self._socks:
            s.close(0)

    # helpers ---------------------------------------------------------
    def req_socket(self, uri=None):
        s = zsock(zmq.REQ, uri or self.router.rep)
        self._socks.append(s)
        return s

    def push_socket(self, uri=None):
        s = zsock(zmq.PUSH, uri or self.router.pull)
        self._socks.append(s)
        return s

    def listener(self, uri=None, framing=None):
        """A PubListener on uri (default: the topic-framed output), of the
        framing the router's config gives that output."""
        uri = uri or self.router.sub_uri
        if framing is None:
            framing = self.router.framings[self.router.pubs.index(uri)]
        pl = PubListener(uri, framing=framing, router=self.router)
        self._socks.append(pl.sock)
        return pl

    def assertStamped(self, reply, namespace="local"):
        """reply is a successful stamped event; return it parsed."""
        try:
            ev = json.loads(reply.decode("utf-8"))
        except ValueError:
            self.fail("reply is not JSON: %r" % reply)
        self.assertIsInstance(ev, dict, reply)
        self.assertNotIn("error", ev, reply)
        self.assertRegex(ev.get("id", ""), OBJECTID_RE, reply)
        self.assertIn("timestamp", ev, reply)
        self.assertIsInstance(ev["timestamp"], (int, float), reply)
        self.assertNotIsInstance(ev["timestamp"], bool, reply)
        if namespace is not None:
            self.assertEqual(ev.get("namespace"), namespace, reply)
        return ev

    def assertError(self, reply, code):
        try:
            obj = json.loads(reply.decode("utf-8"))
        except ValueError:
            self.fail("error reply is not JSON: %r" % reply)
        self.assertEqual(list(obj.keys()), ["error"], reply)
        err = obj["error"]
        self.assertIsInstance(err, dict, reply)
        self.assertEqual(sorted(err.keys()), ["code", "message"], reply)
        self.assertEqual(err["code"], code, reply)
        self.assertIsInstance(err["message"], str, reply)
        self.assertTrue(err["message"].strip(), reply)
        return err


# --------------------------------------------------------------------------
# processes (/proc, ps)

def proc_stat(pid):
    """(state, ppid, starttime) of pid from /proc/PID/stat, or None when
    there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name is in parentheses and may contain anything
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_status_kb(pid, field):
    """A kB value (VmRSS, VmHWM, ...) from /proc/PID/status, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def ps_children(pid):
    """[(pid, stat, args)] of the children of pid, from ps(1)."""
    cp = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid=,stat=,args="],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=10)
    out = []
    for line in cp.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2:
            out.append((int(parts[0]), parts[1],
                        parts[2] if len(parts) > 2 else ""))
    return out


def process_gone(pid, starttime, parent=None):
    """True when the process (pid, starttime) no longer runs: no /proc
    entry, another process under the same pid, or a zombie whose parent is
    not ``parent`` (an orphan left to init, which may not reap it here).
    A zombie of ``parent`` is not gone: parent failed to reap it."""
    st = proc_stat(pid)
    if st is None or st[2] != starttime:
        return True
    state, ppid, _ = st
    if state in ("Z", "X"):
        return parent is None or ppid != parent
    return False


def read_pid_file(path, timeout=WAIT_TIMEOUT):
    """Wait for a file holding one pid and a newline; return the pid."""
    def pred():
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        if text.endswith("\n") and text.strip().isdigit():
            return int(text.strip())
        return None
    return wait_until(pred, timeout, "pid file %s" % path)
