"""HTTPInput: webhooks into event-router with real HTTP clients
(http.client, urllib.request and raw sockets): GitHub (HMAC-SHA256
signature) and Alertmanager (bearer token) bodies, good and bad
credentials, 401 without credentials configured, 404/405/413/400, bodies
over the limit from clients that write them whole before reading, and slow
clients that must not stall the router's other inputs."""

import hashlib
import hmac
import http.client
import itertools
import json
import os
import re
import select
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import zmq

import harness as h
import test_metrics as tm

TOKEN = "tok-7f3a1c9e"
SECRET = "It's a Secret to Everybody"
MAX = 65536          # limits.max_event_size for this router
HTTP_TIMEOUT = 2     # seconds an idle connection is kept (feeder "timeout")
HTTP_RE = re.compile(r"\bhttp=http://127\.0\.0\.1:(\d+)")
DISCARD = 16 * 1024 * 1024   # body bytes past the limit read and dropped
ZMQ_FEEDER = {"handler": "ZMQInput", "namespace": "local",
              "config": {"uri": "tcp://127.0.0.1:0"}}


def sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body,
                                hashlib.sha256).hexdigest()


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


def post(port, path, body=b"", headers=None, method="POST", timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        c.request(method, path, body, hdrs)
        r = c.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()},
                     r.read())
    finally:
        c.close()


def urllib_post(port, path, data, headers=None, timeout=30):
    """POST with urllib.request, which writes the whole body (bytes with
    Content-Length, an iterable chunked) before it reads the reply."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=data, headers=headers or {},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()},
                         r.read())
    except urllib.error.HTTPError as e:
        with e:
            return Reply(e.code, {k.lower(): v for k, v in e.headers.items()},
                         e.read())


def raw_exchange(port, head, body=b"", timeout=10):
    """Send head (and body), read until the server closes or a whole
    response with Content-Length is in; return the bytes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        if body:
            try:
                s.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            out += d
            m = re.search(rb"\r\nContent-Length: (\d+)\r\n", out)
            end = out.find(b"\r\n\r\n")
            if m and end >= 0 and len(out) >= end + 4 + int(m.group(1)):
                break
        return out
    finally:
        s.close()


class HttpFeeder(h.RouterTestCase):
    """One router, three HTTP feeders: "hooks" (token and secret), "anon"
    (allow_anonymous) and "closed" (no credentials configured)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []
        try:
            feeders = [
                {"handler": "ZMQInput", "namespace": "local",
                 "config": {"uri": "tcp://127.0.0.1:0"}},
                {"handler": "HTTPInput", "namespace": "hooks",
                 "config": {"listen_address": "127.0.0.1", "port": 0,
                            "token": TOKEN, "secret": SECRET,
                            "timeout": HTTP_TIMEOUT, "max_connections": 16}},
                {"handler": "HTTPInput", "namespace": "anon",
                 "config": {"port": 0, "allow_anonymous": True}},
                {"handler": "HTTPInput", "namespace": "closed",
                 "config": {"port": 0}},
                {"handler": "HTTPInput", "namespace": "off", "disabled": True,
                 "config": {"port": 1}},
            ]
            cls.router = cls.start_router(feeders=feeders,
                                          max_event_size=MAX)
            line = cls.router.wait_log(h.ROUTER_READY_RE.pattern).group(0)
            full = cls.router.find_log(r"\bready pull=.*").group(0)
            ports = [int(p) for p in HTTP_RE.findall(full)]
            if len(ports) != 3:
                raise h.HarnessError("expected 3 http= endpoints on the "
                                     "ready line: %r" % line)
            cls.port, cls.anon_port, cls.closed_port = ports
        except BaseException:
            cls._cleanup()
            raise

    # helpers -----------------------------------------------------------
    def stored(self, event_id):
        row = h.wait_event_row(self.router.store_path, event_id)
        return row[1].decode(), row[2].decode(), json.loads(row[4])

    def count_events(self):
        return (h.db_query(self.router.store_path,
                           "SELECT count(*) FROM events") or [[0]])[0][0]

    def assertAccepted(self, r):
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        obj = r.json()
        self.assertEqual(list(obj), ["id"], r.body)
        self.assertRegex(obj["id"], h.OBJECTID_RE)
        return obj["id"]

    def assertHttpError(self, r, status, code):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        obj = r.json()
        self.assertEqual(list(obj), ["error"], r.body)
        self.assertEqual(sorted(obj["error"]), ["code", "message"])
        self.assertEqual(obj["error"]["code"], code, r.body)
        return obj["error"]["message"]

    # accepted ----------------------------------------------------------
    def test_post_event_with_bearer_token(self):
        pub = self.listener()
        body = b'{"event_type": "ci.build.finished", "payload": {"ok": true}}'
        r = post(self.port, "/events", body,
                 {"Authorization": "Bearer " + TOKEN})
        eid = self.assertAccepted(r)
        topic, pubbody = pub.wait_id(eid)
        self.assertEqual(topic, b"hooks:ci.build.finished")
        ns, et, ev = self.stored(eid)
        self.assertEqual((ns, et), ("hooks", "ci.build.finished"))
        self.assertEqual(ev["payload"], {"ok": True})
        self.assertEqual(h.wait_event_row(self.router.store_path, eid)[4],
                         pubbody)
        # a namespace in the event is kept, as on REP
        r = post(self.port, "/events",
                 b'{"event_type": "x", "namespace": "ci"}',
                 {"Authorization": "bearer " + TOKEN})
        self.assertEqual(self.stored(self.assertAccepted(r))[0], "ci")
        # "Bearer" 1*SP TOKEN (RFC 6750), trailing whitespace not part of
        # the value (RFC 9110, 5.5)
        for auth in ("Bearer  " + TOKEN, "Bearer " + TOKEN + "  ",
                     "BEARER " + TOKEN + "\t"):
            with self.subTest(auth=auth.replace(TOKEN, "TOKEN")):
                r = post(self.port, "/events", b'{"event_type": "ws"}',
                         {"Authorization": auth})
                self.assertEqual(self.stored(self.assertAccepted(r))[1], "ws")

    def test_github_push_signed(self):
        body = open(h.fixture_path("github-push.json"), "rb").read()
        r = post(self.port, "/hooks/github", body,
                 {"X-GitHub-Event": "push",
                  "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                  "X-Hub-Signature-256": sign(body),
                  "User-Agent": "GitHub-Hookshot/044aadd"})
        eid = self.assertAccepted(r)
        ns, et, ev = self.stored(eid)
        self.assertEqual((ns, et), ("hooks", "github.push"))
        self.assertEqual(ev["payload"], json.loads(body))
        # the commit message's quotes, $(...) and backticks arrive intact
        self.assertIn("`", ev["payload"]["head_commit"]["message"])
        # /hooks alone is enough for GitHub
        r = post(self.port, "/hooks", b'{"zen": "Keep it simple."}',
                 {"X-GitHub-Event": "ping",
                  "X-Hub-Signature-256": sign(b'{"zen": "Keep it simple."}')})
        self.assertEqual(self.stored(self.assertAccepted(r))[1],
                         "github.ping")

    def test_nul_in_hook_type(self):
        before = self.count_events()
        r = post(self.port, "/hooks/a%00b", b"{}",
                 {"Authorization": "Bearer " + TOKEN})
        self.assertHttpError(r, 400, "nul_in_field")
        self.assertEqual(self.count_events(), before)

    def until_closed(self, data):
        """Send data on a new connection; what comes back before the
        server closes it (bounded: a connection kept open fails)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        out = b""
        try:
            s.sendall(data)
            while True:
                d = s.recv(65536)
                if not d:
                    return out
                out += d
        except socket.timeout:
            self.fail("the connection is still open: %r" % out)
        finally:
            s.close()

    def test_framing_a_proxy_could_read_otherwise_is_refused(self):
        # RFC 9112: what frames the body must be unambiguous, or a proxy
        # and the router would see different requests (smuggling)
        ev = b'{"event_type":"framing.bad"}'
        head = ("POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: "
                "Bearer %s\r\n" % TOKEN).encode()
        before = self.count_events()

        def smuggling(header):
            # a second request as the body of one whose length is in
            # header, which libmicrohttpd reads as another header (it
            # read the body as a request of its own, and stored it)
            inner = head + b"Content-Length: %d\r\n\r\n%s" % (len(ev), ev)
            return header % len(inner) + b"\r\n\r\n" + inner
        for extra, status, code, why in (
                (b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n%s"
                 % (len(ev), ev), 400, "bad_request",
                 "two Content-Length headers with different values"),
                (b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(ev), ev), 400,
                 "bad_request", "both Content-Length and Transfer-Encoding"),
                (b"Transfer-Encoding: gzip\r\n\r\n%s" % ev, 501,
                 "not_implemented", "a Transfer-Encoding other than chunked"),
                (b"Transfer-Encoding: gzip, chunked\r\n\r\n"
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(ev), ev), 501,
                 "not_implemented", "a Transfer-Encoding other than chunked"),
                # libmicrohttpd names it "Content-Length "
                (smuggling(b"Content-Length : %d"), 400, "bad_request",
                 "a header name that is not a token (whitespace before its "
                 "colon?)"),
                (b"Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n"
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(ev), ev), 400,
                 "bad_request", "a header name that is not a token "
                 "(whitespace before its colon?)"),
                # the length folded onto the next line (obs-fold), which
                # libmicrohttpd names "Content-LengthN": a proxy that
                # unfolds it sees one request, the router saw two
                (smuggling(b"Content-Length:\r\n %d"), 400, "bad_request",
                 "a Content-Length or Transfer-Encoding folded onto the next "
                 "line (obs-fold)"),
                (b"Transfer-Encoding:\r\n chunked\r\n\r\n%x\r\n%s\r\n0\r\n"
                 b"\r\n" % (len(ev), ev), 400, "bad_request",
                 "a Content-Length or Transfer-Encoding folded onto the next "
                 "line (obs-fold)")):
            with self.subTest(why=why):
                out = self.until_closed(head + extra)
                self.assertTrue(out.startswith(b"HTTP/1.1 %d " % status),
                                out)
                self.assertIn(b"\r\nConnection: close\r\n", out)
                self.assertEqual(out.split(b"\r\n\r\n", 1)[1], (
                    '{"error":{"code":"%s","message":"%s"}}'
                    % (code, why)).encode())
        # (the log lines: HttpOversized, whose router is the test's own)
        # HTTP/1.1 names its Host; HTTP/1.0 need not
        out = self.until_closed(head.replace(b"Host: t\r\n", b"") +
                                b"Content-Length: %d\r\n\r\n%s"
                                % (len(ev), ev))
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)
        self.assertTrue(out.endswith(b'"an HTTP/1.1 request without a Host '
                                     b'header"}}'), out)
        self.assertEqual(self.count_events(), before)
        # the same length twice frames the body one way: taken
        out = raw_exchange(self.port, head + b"Content-Length: %d\r\n"
                           b"Content-Length: %d\r\n\r\n%s"
                           % (len(ev), len(ev), ev))
        self.assertTrue(out.startswith(b"HTTP/1.1 202 "), out)
        out = self.until_closed(head.replace(b"HTTP/1.1", b"HTTP/1.0")
                                .replace(b"Host: t\r\n", b"") +
                                b"Content-Length: %d\r\n\r\n%s"
                                % (len(ev), ev))
        self.assertTrue(out.startswith(b"HTTP/1.1 202 "), out)
        self.assertEqual(self.count_events(), before + 2)

    def test_either_credential_is_enough(self):
        body = b'{"zen": "either"}'
        # a valid signature beside a wrong (or non-Bearer) Authorization
        for auth in ("Bearer " + TOKEN + "x", "Basic dXNlcjpwYXNz"):
            with self.subTest(auth=auth[:6]):
                r = post(self.port, "/hooks/either", body,
                         {"Authorization": auth,
                          "X-Hub-Signature-256": sign(body)})
                self.assertEqual(self.stored(self.assertAccepted(r))[1],
                                 "either")
        # a valid token beside a wrong signature
        r = post(self.port, "/hooks/either", body,
                 {"Authorization": "Bearer " + TOKEN,
                  "X-Hub-Signature-256": sign(body, "nope")})
        self.assertEqual(self.stored(self.assertAccepted(r))[1], "either")
        # both wrong: refused
        r = post(self.port, "/hooks/either", body,
                 {"Authorization": "Bearer " + TOKEN + "x",
                  "X-Hub-Signature-256": sign(body, "nope")})
        self.assertHttpError(r, 401, "unauthorized")

    def test_alertmanager_with_token(self):
        body = open(h.fixture_path("alertmanager-firing.json"), "rb").read()
        r = post(self.port, "/hooks/alertmanager.firing", body,
                 {"Authorization": "Bearer " + TOKEN})
        eid = self.assertAccepted(r)
        ns, et, ev = self.stored(eid)
        self.assertEqual((ns, et), ("hooks", "alertmanager.firing"))
        self.assertEqual(ev["payload"], json.loads(body))

    def test_anonymous_allowed_when_configured(self):
        r = post(self.anon_port, "/hooks/ping", b"[1, 2, 3]")
        ns, et, ev = self.stored(self.assertAccepted(r))
        self.assertEqual((ns, et, ev["payload"]), ("anon", "ping", [1, 2, 3]))

    # 401 ---------------------------------------------------------------
    def test_bad_credentials_refused(self):
        body = open(h.fixture_path("github-push.json"), "rb").read()
        before = self.count_events()
        cases = [
            ("no credentials", {}),
            ("wrong token", {"Authorization": "Bearer " + TOKEN + "x"}),
            ("token prefix", {"Authorization": "Bearer " + TOKEN[:-1]}),
            ("token inside", {"Authorization": "Bearer x" + TOKEN}),
            ("no space", {"Authorization": "Bearer" + TOKEN}),
            ("basic auth", {"Authorization": "Basic dXNlcjpwYXNz"}),
            ("wrong secret", {"X-Hub-Signature-256": sign(body, "nope")}),
            ("signature of another body",
             {"X-Hub-Signature-256": sign(body + b" ")}),
            ("sha1 signature", {"X-Hub-Signature-256": "sha1=" + "0" * 40}),
            ("short signature", {"X-Hub-Signature-256": sign(body)[:-2]}),
            ("not hex", {"X-Hub-Signature-256": "sha256=" + "zz" * 32}),
        ]
        for label, hdrs in cases:
            with self.subTest(label):
                hdrs = dict(hdrs, **{"X-GitHub-Event": "push"})
                r = post(self.port, "/hooks/github", body, hdrs)
                self.assertHttpError(r, 401, "unauthorized")
                self.assertIn("www-authenticate", r.headers)
        # the secret never shows up in a reply or the log
        self.assertNotIn(SECRET, self.router.log_text())
        self.assertNotIn(TOKEN, self.router.log_text())
        self.assertIsNotNone(self.router.find_log(
            r"request refused on http:hooks from 127\.0\.0\.1: 401 "
            r"unauthorized"))
        self.assertEqual(self.count_events(), before)

    def test_www_authenticate_names_the_credential_to_send(self):
        # event-reactor(7), 401: "Bearer" when the input has a token, else
        # the signature scheme
        r = post(self.port, "/hooks/x", b"{}")
        self.assertHttpError(r, 401, "unauthorized")
        self.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        r = post(self.closed_port, "/hooks/x", b"{}")
        self.assertHttpError(r, 401, "unauthorized")
        self.assertEqual(r.headers.get("www-authenticate"),
                         "HMAC-SHA256 X-Hub-Signature-256")

    def test_hook_types_and_github_events(self):
        # event-reactor(7): /hooks/TYPE is 1 to 200 printable ASCII
        # characters; an X-GitHub-Event that is not a valid type is 400
        auth = {"Authorization": "Bearer " + TOKEN}
        r = post(self.port, "/hooks/" + "t" * 200, b"{}", auth)
        self.assertEqual(self.stored(self.assertAccepted(r))[1], "t" * 200)
        self.assertHttpError(post(self.port, "/hooks/" + "t" * 201, b"{}",
                                  auth), 404, "not_found")
        self.assertHttpError(post(self.port, "/hooks", b"{}", dict(
            auth, **{"X-GitHub-Event": "bad event"})), 400,
            "invalid_event_type")

    def test_no_credentials_configured_refuses_everything(self):
        for hdrs in [{}, {"Authorization": "Bearer anything"},
                     {"X-Hub-Signature-256": sign(b"{}", "")}]:
            r = post(self.closed_port, "/hooks/x", b"{}", hdrs)
            msg = self.assertHttpError(r, 401, "unauthorized")
            self.assertIn("allow_anonymous", msg)

    # 404, 405 ----------------------------------------------------------
    def test_not_found(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        for path in ["/", "/nope", "/events/x", "/hooks/", "/hooks",
                     "/hooks/a/b", "/eventsx", "/hooksx/y"]:
            with self.subTest(path):
                self.assertHttpError(post(self.port, path, b"{}", auth), 404,
                                     "not_found")

    def test_method_not_allowed(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        for method, path in [("GET", "/events"), ("PUT", "/events"),
                             ("DELETE", "/hooks/x"), ("GET", "/hooks/x")]:
            with self.subTest(method=method, path=path):
                r = post(self.port, path, b"", auth, method=method)
                self.assertHttpError(r, 405, "method_not_allowed")
                self.assertEqual(r.headers.get("allow"), "POST")

    # 413 ---------------------------------------------------------------
    def test_oversized_with_content_length(self):
        # a client that waits for "100 Continue" is refused from the
        # headers alone, before it sends the body (more in HttpOversized)
        out = raw_exchange(self.port, (
            "POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Expect: 100-continue\r\n\r\n" % (TOKEN, MAX + 1)).encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        self.assertIn(b"Connection: close", out)
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body["error"]["code"], "too_large")
        self.assertIn("limits.max_event_size", body["error"]["message"])
        # exactly at the limit the body is read (and is not JSON: 400)
        r = post(self.port, "/events", b" " * MAX,
                 {"Authorization": "Bearer " + TOKEN})
        self.assertHttpError(r, 400, "invalid_json")

    def test_oversized_chunked(self):
        chunk = b"x" * 8192
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                        for _ in range(MAX // len(chunk) + 2)) + b"0\r\n\r\n"
        out = raw_exchange(self.port, (
            "POST /hooks/big HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s"
            "\r\nTransfer-Encoding: chunked\r\n\r\n" % TOKEN).encode(), body)
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        self.assertEqual(json.loads(out.split(b"\r\n\r\n", 1)[1])
                         ["error"]["code"], "too_large")

    def test_chunked_just_over_the_limit(self):
        # one chunk of MAX+1 bytes, and one of 1.5 MAX: both get their 413
        for size in (MAX + 1, MAX * 3 // 2):
            with self.subTest(size=size):
                chunk = b"x" * size
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
                out = raw_exchange(self.port, (
                    "POST /hooks/big HTTP/1.1\r\nHost: t\r\nAuthorization: "
                    "Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                    % TOKEN).encode(), body)
                self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])

    def test_hook_payload_fits_but_event_too_large(self):
        # the body is under the limit, the event built around it is not
        payload = b'"' + b"a" * (MAX - 10) + b'"'
        r = post(self.port, "/hooks/x", payload,
                 {"Authorization": "Bearer " + TOKEN})
        self.assertHttpError(r, 413, "too_large")

    # 400 ---------------------------------------------------------------
    def test_invalid_json_with_position(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        r = post(self.port, "/events", b'{"event_type": "x",\n "p": [1, 2,]}',
                 auth)
        msg = self.assertHttpError(r, 400, "invalid_json")
        self.assertRegex(msg, r"line 2, column \d+")
        r = post(self.port, "/hooks/x", b'{"a": tru}', auth)
        msg = self.assertHttpError(r, 400, "invalid_json")
        self.assertRegex(msg, r"line 1, column \d+")
        r = post(self.port, "/events", b"", auth)
        self.assertHttpError(r, 400, "invalid_json")
        # the router's own refusals keep their code
        r = post(self.port, "/events", b'{"payload": {}}', auth)
        self.assertHttpError(r, 400, "missing_event_type")
        r = post(self.port, "/events", b'{"event_type": "a", "a": 1, "a": 2}',
                 auth)
        self.assertHttpError(r, 400, "duplicate_key")
        r = post(self.port, "/hooks/x", b'{"a": "\xff"}', auth)
        self.assertHttpError(r, 400, "invalid_utf8")
        # counted and logged by the router like any rejection
        self.router.wait_log(r"event rejected on http:hooks: "
                             r"missing_event_type")

    def test_keep_alive_serves_several_requests(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            ids = []
            for i in range(5):
                c.request("POST", "/hooks/seq", b'{"n": %d}' % i,
                          {"Authorization": "Bearer " + TOKEN})
                r = c.getresponse()
                self.assertEqual(r.status, 202)
                ids.append(json.loads(r.read())["id"])
            self.assertEqual(len(set(ids)), 5)
        finally:
            c.close()

    # slow clients --------------------------------------------------------
    def test_slow_clients_do_not_stall_the_router(self):
        idle = []
        try:
            # connect and send nothing; send half a request line; send
            # headers and only part of the announced body
            for _ in range(4):
                idle.append(socket.create_connection(("127.0.0.1", self.port),
                                                     timeout=10))
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(b"POST /events HT")
            idle.append(s)
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(("POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: "
                       "Bearer %s\r\nContent-Length: 100\r\n\r\n{\"event"
                       % TOKEN).encode())
            idle.append(s)

            # REP (fire-event) and PULL still answer at once
            t0 = time.monotonic()
            cp = h.fire(["-u", self.router.rep, "-t", "3000", "-e",
                         "while.slow"])
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertLess(time.monotonic() - t0, 2.0)
            push = self.push_socket()
            pub = self.listener()
            push.send(b'{"event_type": "pull.while.slow"}')
            pub.wait_event(lambda t, b: t == b"local:pull.while.slow",
                           timeout=3)
            # and the HTTP input serves other clients meanwhile
            t0 = time.monotonic()
            r = post(self.port, "/hooks/fast", b"{}",
                     {"Authorization": "Bearer " + TOKEN}, timeout=3)
            self.assertAccepted(r)
            self.assertLess(time.monotonic() - t0, 2.0)

            # the idle ones are dropped after the timeout (bounded wait)
            deadline = time.monotonic() + HTTP_TIMEOUT + 5
            for s in idle:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                except socket.timeout:
                    self.fail("an idle connection was still open %d s "
                              "after the %d s timeout"
                              % (HTTP_TIMEOUT + 5, HTTP_TIMEOUT))
                self.assertNotIn(b" 202 ", data)
        finally:
            for s in idle:
                s.close()


class HttpRefusalsCounted(h.RouterTestCase):
    """event-reactor(7), Metrics: eventreactor_events_rejected_total counts
    what HTTPInput refuses itself (401, 404, 405, 413, and a hook's body
    that is not JSON) under its code, with what the router refuses (an
    event that is not JSON), and so does the router's stop line."""

    @classmethod
    def start_router(cls, **kw):
        # a full subscriber holds the router 25 s, past HTTPInput's 10 s
        # wait for an answer (test_no_answer_in_time_is_no_rejection)
        r = super().start_router(feeders=[
            {"handler": "ZMQInput", "namespace": "local",
             "config": {"uri": "tcp://127.0.0.1:0"}},
            {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": 0, "token": TOKEN}}],
            extra={"metrics": {"listen": "127.0.0.1:0"},
                   "limits": {"max_event_size": MAX,
                              "publish_wait_ms": 25000}})
        full = r.find_log(r"\bready pull=.*").group(0)
        cls.port = int(HTTP_RE.findall(full)[0])
        cls.mport = tm.metrics_port(r)
        return r

    def test_refusals_counted(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        cases = [  # (path, body, headers, method, status, code)
            ("/events", b"{}", {}, "POST", 401, "unauthorized"),
            ("/nowhere", b"{}", auth, "POST", 404, "not_found"),
            ("/events", None, auth, "GET", 405, "method_not_allowed"),
            ("/events", b"x" * (MAX + 1), auth, "POST", 413, "too_large"),
            ("/events", b"{nope", auth, "POST", 400, "invalid_json"),
            ("/hooks/x", b"[", auth, "POST", 400, "invalid_json"),
        ]
        for path, body, hdrs, method, status, code in cases:
            with self.subTest(path=path, code=code):
                r = post(self.port, path, body, hdrs, method=method)
                self.assertEqual(r.status, status, r.body)
                self.assertEqual(r.json()["error"]["code"], code)
        # what libmicrohttpd answers itself is not counted
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=h.WAIT_TIMEOUT) as raw:
            raw.sendall(b"POST /events HTTP/2.0\r\nHost: x\r\n\r\n")
            self.assertRegex(raw.recv(100), rb"^HTTP/1\.1 505 ")
        # counted before the reply: the next scrape has them all
        p = tm.scrape(self.mport)
        self.assertEqual(sum(v for (n, ls), v in p["samples"].items()
                             if n == "eventreactor_events_rejected_total"
                             and ("input", "http:hooks") in ls), 6)
        want = {"unauthorized": 1, "not_found": 1, "method_not_allowed": 1,
                "too_large": 1, "invalid_json": 2}
        for code, n in want.items():
            with self.subTest(code=code):
                self.assertEqual(tm.value(
                    p, "eventreactor_events_rejected_total",
                    input="http:hooks", code=code), n)
        self.router.stop()
        self.assertIsNotNone(self.router.find_log(
            r"INFO stopped: accepted \d+, rejected 6,"),
            self.router.log_text())

    def test_no_answer_in_time_is_no_rejection(self):
        # the router waits for a full subscriber (up to publish_wait_ms)
        # while HTTPInput waits 10 s for its answer: 503 unavailable; the
        # router takes the event after all, and counts it accepted only
        stuck = h.ctx().socket(zmq.SUB)
        for opt, v in ((zmq.RCVHWM, 1), (zmq.RCVBUF, 4096), (zmq.LINGER, 0)):
            stuck.setsockopt(opt, v)
        self._socks.append(stuck)
        before = self.router.subscriptions(self.router.pub)
        stuck.connect(self.router.pub)
        stuck.setsockopt(zmq.SUBSCRIBE, b"")
        self.router.wait_subscriptions(self.router.pub, before + 1)
        push = h.zsock(zmq.PUSH, self.router.pull, sndtimeo=100)
        self._socks.append(push)
        filler = json.dumps({"event_type": "fill", "pad": "p" * 2000})

        def waiting():
            for _ in range(500):
                try:
                    push.send(filler.encode())
                except zmq.Again:
                    break
            return self.router.find_log(r"DEBUG a subscriber's queue is "
                                        r"full: publishing waits for it")
        h.wait_until(waiting, what="the router waiting for the subscriber")
        r = post(self.port, "/events", b'{"event_type": "late"}',
                 {"Authorization": "Bearer " + TOKEN}, timeout=30)
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(r.json()["error"], {
            "code": "unavailable",
            "message": "no reply from the router within 10000 ms"})
        self.router.wait_log(r"WARNING request unanswered on http:hooks "
                             r"from 127\.0\.0\.1: 503 unavailable: no reply "
                             r"from the router within 10000 ms$")

        def stored():
            while stuck.poll(0):
                stuck.recv()
            return h.db_query(self.router.store_path, "SELECT id FROM "
                              "events WHERE event_type = 'late'")
        h.wait_until(stored, what="the late event stored")
        # the subscriber goes: the router waits for it no more, and its
        # loop serves the scrapes again
        self._socks.remove(stuck)
        stuck.close(0)
        p = tm.wait_value(self.mport, 1, "eventreactor_events_accepted_total",
                          input="http:hooks", namespace="hooks")
        self.assertIsNone(tm.value(p, "eventreactor_events_rejected_total",
                                   input="http:hooks", code="unavailable"))
        self.assertIsNone(self.router.find_log(r"request refused on "
                                               r"http:hooks .* 503 "))


class HttpOversized(h.RouterTestCase):
    """Bodies over limits.max_event_size (64 KiB here) from clients that
    write the whole body before they read the reply, as urllib.request
    does: read and dropped up to DISCARD bytes past the limit and within
    the feeder's timeout, then 413 with the error JSON and the connection
    closed; past either bound the connection is closed without a reply.
    One router per test, whose "stopped" line gives the feeder's counts."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []

    def start(self, timeout=10):
        self.router = self.start_router(max_event_size=MAX, store_path=(
            os.path.join(self.tmp, self._testMethodName + ".db")), feeders=[
            {"handler": "ZMQInput", "namespace": "local",
             "config": {"uri": "tcp://127.0.0.1:0"}},
            {"handler": "HTTPInput", "namespace": "big",
             "config": {"port": 0, "token": TOKEN, "timeout": timeout}}])
        full = self.router.find_log(r"\bready pull=.*").group(0)
        self.port = int(HTTP_RE.findall(full)[0])

    # helpers -----------------------------------------------------------
    AUTH = {"Authorization": "Bearer " + TOKEN,
            "Content-Type": "application/json"}

    @staticmethod
    def message(size):
        return ("the body is %d bytes, over the limit of %d bytes "
                "(limits.max_event_size)" % (size, MAX))

    def assertTooLarge(self, r, size):
        self.assertEqual(r.status, 413, r.body[:200])
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.headers.get("connection"), "close")
        self.assertEqual(r.body, ('{"error":{"code":"too_large","message":'
                                  '"%s"}}' % self.message(size)).encode())

    def wait_refused(self, text):
        return self.router.wait_log(
            r"WARNING request refused on http:big from 127\.0\.0\.1: 413 "
            r"too_large: %s$" % re.escape(text))

    def assertServes(self):
        """The next request, on a new connection, is accepted."""
        pub = self.listener()
        r = post(self.port, "/hooks/after", b'{"n": 1}', self.AUTH)
        self.assertEqual(r.status, 202, r.body)
        topic, _ = pub.wait_id(json.loads(r.body)["id"])
        self.assertEqual(topic, b"big:after")

    def stopped_counts(self):
        """Stop the router (exit 0); (accepted, refused) of the feeder."""
        self.router.stop()
        m = self.router.find_log(r"INFO http:big: stopped: accepted (\d+), "
                                 r"refused (\d+), closed for slow headers 0, "
                                 r"connections refused over "
                                 r"max_connections_per_ip 0, unanswered by "
                                 r"the router 0$")
        self.assertIsNotNone(m, self.router.log_text())
        # the router counts the feeder's refusals among its own
        # (eventreactor_events_rejected_total: test_refusals_counted)
        r = self.router.find_log(r"INFO stopped: accepted \d+, rejected "
                                 r"(\d+),")
        self.assertEqual(int(r.group(1)), int(m.group(2)))
        return int(m.group(1)), int(m.group(2))

    def stored(self):
        return h.db_query(self.router.store_path, "SELECT event_type FROM "
                          "events WHERE namespace = 'big'")

    def send_until_closed(self, s, head, chunks, pause=0.0, end=None,
                          timeout=10):
        """Send head, then each chunk (waiting up to pause s after each for
        the server to close), until the server closes the connection;
        return what it sent back (b"" for nothing).

        The kernel takes bytes the server has not read yet (socket buffers
        of several MiB on loopback): that every chunk was sent says nothing
        about what the server read.  So with end (the bytes that complete
        the body) given, those are sent next and the server's answer is
        waited for, up to timeout s: it closes the connection, or it read
        the whole body and replies (returned: not b"").  Without end, the
        server must close before the last chunk is out (for bodies trickled
        slowly, which no buffer holds back)."""
        s.sendall(head)
        out = b""
        for chunk in itertools.chain(chunks, [end] if end is not None
                                     else []):
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            r, _, _ = select.select([s], [], [], pause)
            if r:
                try:
                    d = s.recv(65536)
                except ConnectionResetError:
                    break
                if not d:
                    break
                out += d
        else:
            if end is None:
                self.fail("the server read the whole body: %r" % out[:200])
        s.settimeout(timeout)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("the server neither closed the connection nor "
                      "replied within %d s of the body: %r"
                      % (timeout, out[:200]))
        return out

    # tests -------------------------------------------------------------
    def test_content_length_over_the_limit_written_whole(self):
        # the reported case: 3 MiB from urllib.request (headers and body
        # written, then the reply read) got a connection reset
        self.start()
        size = 3 * 1024 * 1024
        r = urllib_post(self.port, "/events", b"x" * size, self.AUTH)
        self.assertTooLarge(r, size)
        self.wait_refused(self.message(size))
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 1))
        self.assertEqual(self.stored(), [(b"after",)])

    def test_chunked_over_twice_the_limit(self):
        # urllib.request sends an iterable body chunked; 3 times the limit
        self.start()
        chunk = b"y" * 8192
        n = 3 * MAX // len(chunk) + 1
        r = urllib_post(self.port, "/hooks/big", iter([chunk] * n), self.AUTH)
        self.assertTooLarge(r, n * len(chunk))
        self.wait_refused(self.message(n * len(chunk)))
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 1))
        self.assertEqual(self.stored(), [(b"after",)])

    def test_bodies_up_to_the_bound_then_the_next_request(self):
        # exactly DISCARD bytes past the limit, with Content-Length and
        # chunked: each gets its 413, and the router serves what follows
        self.start()
        size = MAX + DISCARD
        r = urllib_post(self.port, "/events", b"z" * size, self.AUTH)
        self.assertTooLarge(r, size)
        chunk = b"z" * (1024 * 1024)
        chunks = [chunk] * (DISCARD // len(chunk)) + [b"z" * MAX]
        r = urllib_post(self.port, "/hooks/big", iter(chunks), self.AUTH)
        self.assertTooLarge(r, size)
        self.wait_refused(self.message(size))
        cp = h.fire(["-u", self.router.rep, "-t", "3000", "-e", "rep.after"])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 2))
        self.assertEqual(self.stored(), [(b"after",)])
        self.assertEqual(sum(1 for ln in self.router.log_lines()
                             if ln.endswith("413 too_large: "
                                            + self.message(size))), 2)

    def test_past_the_bound_or_expect_continue(self):
        self.start()
        # a Content-Length past the bound: 413 from the headers alone
        size = MAX + DISCARD + 1
        out = raw_exchange(self.port, (
            "POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
            "Content-Length: %d\r\n\r\n" % (TOKEN, size)).encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        self.assertIn(b"\r\nConnection: close\r\n", out)
        self.assertEqual(out.split(b"\r\n\r\n", 1)[1], (
            '{"error":{"code":"too_large","message":"%s"}}'
            % self.message(size)).encode())
        # "Expect: 100-continue": 413 at once, no "100 Continue"
        out = raw_exchange(self.port, (
            "POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
            "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
            % (TOKEN, 2 * MAX)).encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        self.assertNotIn(b"100 Continue", out)
        self.wait_refused(self.message(2 * MAX))
        # a chunked body one byte past the bound: closed, no reply (a
        # server that read it all would reply once "0" ends it)
        chunk = b"%x\r\n%s\r\n" % (65536, b"w" * 65536)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            out = self.send_until_closed(s, (
                "POST /hooks/big HTTP/1.1\r\nHost: t\r\nAuthorization: "
                "Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                % TOKEN).encode(),
                [chunk] * ((MAX + DISCARD) // 65536) + [b"1\r\nw\r\n"],
                end=b"0\r\n\r\n")
        finally:
            s.close()
        self.assertEqual(out, b"")
        self.wait_refused("the body is more than 16 MiB over the limit of %d "
                          "bytes (limits.max_event_size): connection closed "
                          "without a reply" % MAX)
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 3))

    def test_trickled_body_is_cut_after_timeout_seconds(self):
        # a client that keeps the connection busy (never idle for the
        # timeout) with a body over the limit is not read forever
        self.start(timeout=HTTP_TIMEOUT)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t0 = time.monotonic()
        try:
            out = self.send_until_closed(s, (
                "POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s"
                "\r\nContent-Length: %d\r\n\r\n" % (TOKEN, 2 * MAX)).encode(),
                [b" " * 256] * int((HTTP_TIMEOUT + 10) / 0.2), pause=0.2)
        finally:
            s.close()
        elapsed = time.monotonic() - t0
        self.assertEqual(out, b"")
        self.assertGreaterEqual(elapsed, HTTP_TIMEOUT)
        self.wait_refused("the body over the limit of %d bytes "
                          "(limits.max_event_size) was not in within %d s "
                          "(timeout): connection closed without a reply"
                          % (MAX, HTTP_TIMEOUT))
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 1))


    def test_refused_framing_and_what_libmicrohttpd_answers_are_logged(self):
        self.start()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(("POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: "
                       "Bearer %s\r\nContent-Length: 2\r\nContent-Length: "
                       "3\r\n\r\n{}" % TOKEN).encode())
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 400 "))
        finally:
            s.close()
        self.router.wait_log(r"WARNING request refused on http:big from "
                             r"127\.0\.0\.1: 400 bad_request: two "
                             r"Content-Length headers with different values$")
        # what libmicrohttpd cannot parse, it answers itself (HTML), and
        # the log says so
        out = raw_exchange(self.port, (
            "POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s"
            "\r\nContent-Length: abc\r\n\r\n" % TOKEN).encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)
        self.assertIn(b"<html>", out)
        self.router.wait_log(r"WARNING http:big: libmicrohttpd: .*"
                             r"Content-Length")
        # a request line over its buffer, a version other than 1.0 and 1.1
        for line, status in (("POST /%s HTTP/1.1" % ("a" * 100000), 414),
                             ("POST /events HTTP/2.0", 505)):
            with self.subTest(status=status):
                out = raw_exchange(self.port, (
                    "%s\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"
                    % line).encode())
                self.assertTrue(out.startswith(b"HTTP/1.1 %d " % status),
                                out[:200])
                self.assertIn(b"<html>", out)
        # HTTP/1.2 to 1.9 are HTTP/1.1 to libmicrohttpd (RFC 9110 2.5)
        body = b'{"event_type": "v12"}'
        out = raw_exchange(self.port, (
            "POST /events HTTP/1.2\r\nHost: t\r\nAuthorization: Bearer "
            "%s\r\nContent-Length: %d\r\n\r\n" % (TOKEN, len(body))
        ).encode() + body)
        self.assertTrue(out.startswith(b"HTTP/1.1 202 "), out[:200])
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (2, 1))

    def test_refusals_are_said_ten_in_ten_seconds(self):
        # event-router(8): "request refused" at most 10 lines every 10 s
        self.start()
        for i in range(12):
            self.assertEqual(post(self.port, "/events", b"{}").status, 401)
        said = [ln for ln in self.router.log_lines()
                if "WARNING request refused on http:big from " in ln]
        self.assertEqual(len(said), 10, self.router.log_text())
        self.assertEqual(self.stopped_counts(), (0, 12))

    def test_a_stalled_body_over_the_limit_is_said_when_closed(self):
        # a body being dropped that stops coming: the idle timeout closes
        # the connection, and the log says so as for the other bounds
        self.start(timeout=HTTP_TIMEOUT)
        heads = [
            "Content-Length: %d\r\n\r\n%s" % (2 * MAX, " " * (MAX + 100)),
            "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n"
            % (MAX + 100, " " * (MAX + 100))]
        for head in heads:
            s = socket.create_connection(("127.0.0.1", self.port),
                                         timeout=HTTP_TIMEOUT + 30)
            try:
                s.sendall(("POST /events HTTP/1.1\r\nHost: t\r\n"
                           "Authorization: Bearer %s\r\n%s"
                           % (TOKEN, head)).encode())
                out = s.recv(4096)      # nothing, then the close
            finally:
                s.close()
            self.assertEqual(out, b"")
        text = ("the rest of the body over the limit of %d bytes "
                "(limits.max_event_size) did not come within %d s "
                "(timeout): connection closed without a reply"
                % (MAX, HTTP_TIMEOUT))
        h.wait_until(lambda: sum(1 for ln in self.router.log_lines()
                                 if ln.endswith(text)) == 2,
                     h.WAIT_TIMEOUT, "two lines ending %r" % text)
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 2))


    def test_a_slow_body_under_the_limit_is_cut(self):
        # a body trickled a byte at a time is never idle: it has timeout
        # seconds from the headers, then the connection is closed; one
        # that stops coming is closed by the idle timeout; both are said
        self.start(timeout=HTTP_TIMEOUT)
        head = ("POST /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                "%s\r\nContent-Length: 200\r\n\r\n" % TOKEN).encode()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t0 = time.monotonic()
        try:
            out = self.send_until_closed(
                s, head, [b" "] * int((HTTP_TIMEOUT + 10) / 0.1), pause=0.1)
        finally:
            s.close()
        self.assertEqual(out, b"")
        self.assertGreaterEqual(time.monotonic() - t0, HTTP_TIMEOUT)
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout=HTTP_TIMEOUT + 30)
        try:
            s.sendall(head + b'{"event_type":')
            out = s.recv(4096)          # nothing, then the close
        finally:
            s.close()
        self.assertEqual(out, b"")
        for why in ("the body was not in within %d s of the headers "
                    "(timeout)" % HTTP_TIMEOUT,
                    "the rest of the body did not come within %d s "
                    "(timeout)" % HTTP_TIMEOUT):
            self.router.wait_log(
                r"WARNING request refused on http:big from 127\.0\.0\.1: "
                r"408 request_timeout: %s: connection closed without a "
                r"reply$" % re.escape(why))
        self.assertServes()
        self.assertEqual(self.stopped_counts(), (1, 2))


class HttpConnectionLimit(h.RouterTestCase):
    """max_connections: one more client than allowed is turned away, and the
    REP input does not notice."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []
        try:
            cls.router = cls.start_router(feeders=[
                {"handler": "ZMQInput", "namespace": "local",
                 "config": {"uri": "tcp://127.0.0.1:0"}},
                {"handler": "HTTPInput", "namespace": "hooks",
                 "config": {"port": 0, "allow_anonymous": True,
                            "max_connections": 3, "timeout": 30}}])
            full = cls.router.find_log(r"\bready pull=.*").group(0)
            cls.port = int(HTTP_RE.findall(full)[0])
        except BaseException:
            cls._cleanup()
            raise

    def test_over_the_limit_waits_or_is_closed(self):
        held = [socket.create_connection(("127.0.0.1", self.port), timeout=5)
                for _ in range(3)]
        extra = None
        data = b""
        try:
            # a fourth client is not served while three are open: libmicro-
            # httpd stops accepting (it waits in the listen queue) or closes
            time.sleep(0.2)   # not sync: lets MHD accept the three first
            extra = socket.create_connection(("127.0.0.1", self.port),
                                             timeout=1)
            extra.sendall(b"POST /hooks/x HTTP/1.1\r\nHost: t\r\n"
                          b"Content-Length: 2\r\n\r\n{}")
            try:
                data = extra.recv(4096)
            except (ConnectionResetError, socket.timeout):
                data = b""
            self.assertNotIn(b" 202 ", data)
            # the router's other inputs do not notice
            cp = h.fire(["-u", self.router.rep, "-t", "3000", "-e", "x"])
            self.assertEqual(cp.returncode, 0, cp.stderr)
        finally:
            for s in held:
                s.close()
        # once they are gone, the waiting client (if it was not closed)
        # and new ones are served
        if data == b"":
            extra.settimeout(5)
            try:
                data = extra.recv(4096)
            except ConnectionResetError:
                data = b""
            self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 202 "),
                            data[:100])
        extra.close()
        h.wait_until(lambda: self._try_post(), 5, "a POST accepted again")

    def _try_post(self):
        try:
            return post(self.port, "/hooks/x", b"{}", timeout=2).status == 202
        except OSError:
            return False


class Https(h.RouterTestCase):
    """HTTPInput with cert_file and key_file: curl gets its 202 over TLS
    from the certificate made here, plain HTTP on that port gets no reply,
    a bad certificate or key is refused with file:line:column, plain HTTP
    outside loopback draws a warning, and the key may be root's alone."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        os.chmod(cls.tmp, 0o711)
        cls.daemons = []
        try:
            cls.cert, cls.key = cls.make_cert("server", "127.0.0.1")
            cls.other_cert, cls.other_key = cls.make_cert("other", "x")
            os.chmod(cls.key, 0o600)     # root's alone (tests run as root)
            cls.router = cls.start_router(feeders=[ZMQ_FEEDER,
                {"handler": "HTTPInput", "namespace": "hooks",
                 "config": {"port": 0, "token": TOKEN, "cert_file": cls.cert,
                            "key_file": cls.key}}], max_event_size=MAX)
            cls.port = cls.https_port(cls.router)
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def make_cert(cls, name, cn, newkey=("rsa:2048",)):
        cert = os.path.join(cls.tmp, name + ".crt")
        key = os.path.join(cls.tmp, name + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", *newkey,
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=" + cn, "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        return cert, key

    @staticmethod
    def https_port(router):
        full = router.find_log(r"\bready pull=.*").group(0)
        m = re.search(r"\bhttp=https://127\.0\.0\.1:(\d+)", full)
        if m is None:
            raise h.HarnessError("no http=https:// on the ready line: %r"
                                 % full)
        return int(m.group(1))

    def curl(self, port, *args):
        return subprocess.run(
            ["curl", "-sS", "--max-time", "20", "-o", "-", "-w",
             "\n%{http_code}", *args,
             "https://127.0.0.1:%d/hooks/deploy.done" % port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=60)

    def check(self, conf):
        path = h.write_json(os.path.join(self.tmp, "check.json"),
                            h.make_config(self.tmp, feeders=[
                                {"handler": "HTTPInput", "namespace": "hooks",
                                 "config": conf}]))
        cp = subprocess.run([h.binary("event-router"), "-c", path,
                             "--check"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        return cp, path

    def where(self, path, key, at_key=False):
        """FILE:LINE:COLUMN of key's value (at_key: of key) in the
        HTTPInput section of the JSON file path."""
        with open(path) as f:
            text = f.read()
        i = text.index('"%s": ' % key, text.index('"HTTPInput"'))
        if not at_key:
            i += len(key) + 4
        line = text[:i].count("\n") + 1
        return "%s:%d:%d" % (path, line, i - text.rfind("\n", 0, i))

    def test_curl_over_tls(self):
        cp = self.curl(self.port, "--cacert", self.cert, "-H",
                       "Authorization: Bearer " + TOKEN, "--data-binary",
                       '{"env": "prod"}')
        self.assertEqual(cp.returncode, 0, cp.stderr)
        body, status = cp.stdout.rsplit("\n", 1)
        self.assertEqual(status, "202", body)
        ns, etype, ev = (lambda r: (r[1].decode(), r[2].decode(),
                                    json.loads(r[4])))(
            h.wait_event_row(self.router.store_path, json.loads(body)["id"]))
        self.assertEqual((ns, etype, ev["payload"]),
                         ("hooks", "deploy.done", {"env": "prod"}))

    def test_ecdsa_and_ed25519_keys_serve(self):
        for kind, newkey in (("ecdsa", ("ec", "-pkeyopt",
                                         "ec_paramgen_curve:P-256")),
                             ("ecdsa-p384", ("ec", "-pkeyopt",
                                              "ec_paramgen_curve:P-384")),
                             ("ed25519", ("ed25519",))):
            with self.subTest(kind=kind):
                cert, key = self.make_cert(kind, "127.0.0.1", newkey)
                r = h.Router(self.tmp, h.make_config(
                    self.tmp, store={"type": "none"}, feeders=[ZMQ_FEEDER,
                        {"handler": "HTTPInput", "namespace": "hooks",
                         "config": {"port": 0, "token": TOKEN,
                                    "cert_file": cert, "key_file": key}}]))
                self.addCleanup(r.kill)
                r.wait_ready()
                cp = self.curl(self.https_port(r), "--cacert", cert, "-H",
                               "Authorization: Bearer " + TOKEN,
                               "--data-binary", "{}")
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertEqual(cp.stdout.rsplit("\n", 1)[1], "202")
                self.assertEqual(r.stop(), 0)

    def test_server_presents_the_configured_certificate(self):
        # curl trusting only another certificate refuses the server (60:
        # the peer's certificate cannot be verified)
        cp = self.curl(self.port, "--cacert", self.other_cert)
        self.assertEqual(cp.returncode, 60, cp.stderr)

    def test_silent_tls_client_is_closed(self):
        # a client that connects and never begins the TLS handshake, and
        # one that stops inside it, are closed at header_timeout, each
        # logged and counted on the stop line like a slow plain client
        r = h.Router(self.tmp, h.make_config(self.tmp, store={
            "type": "none"}, feeders=[ZMQ_FEEDER,
            {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": 0, "allow_anonymous": True,
                        "header_timeout": 1, "cert_file": self.cert,
                        "key_file": self.key}}]))
        self.addCleanup(r.kill)
        r.wait_ready()
        port = self.https_port(r)
        silent = socket.create_connection(("127.0.0.1", port),
                                          timeout=h.WAIT_TIMEOUT)
        self.addCleanup(silent.close)
        halfway = socket.create_connection(("127.0.0.1", port),
                                           timeout=h.WAIT_TIMEOUT)
        self.addCleanup(halfway.close)
        halfway.sendall(b"\x16\x03\x01\x00\x50")   # a record header only
        for s in (silent, halfway):
            self.assertEqual(s.recv(4096), b"")        # closed by the router
        line = ("WARNING http:hooks: connection from 127.0.0.1 closed: no "
                "complete request headers within 1 s")
        h.wait_until(lambda: sum(ln.endswith(line) for ln in r.log_lines())
                     == 2, h.WAIT_TIMEOUT, "two lines %r" % line)
        r.stop()
        self.assertTrue(r.find_log(r"INFO http:hooks: stopped: accepted 0, "
                                   r"refused 0, closed for slow headers 2,"),
                        r.log_text())

    def test_plain_http_gets_no_reply(self):
        before = (h.db_query(self.router.store_path,
                             "SELECT count(*) FROM events") or [[0]])[0][0]
        with self.assertRaises((http.client.HTTPException, OSError)):
            post(self.port, "/events", json.dumps(
                {"event_type": "plain.text"}).encode(),
                {"Authorization": "Bearer " + TOKEN})
        # the TLS clients after it are served
        self.test_curl_over_tls()
        self.assertEqual(h.db_query(
            self.router.store_path, "SELECT count(*) FROM events "
            "WHERE event_type = 'plain.text'")[0][0], 0)
        self.assertGreater((h.db_query(self.router.store_path,
                            "SELECT count(*) FROM events"))[0][0], before)

    def test_bad_certificate_or_key(self):
        missing = os.path.join(self.tmp, "missing.pem")
        dsa_params = os.path.join(self.tmp, "dsa-params.pem")
        dsa_cert = os.path.join(self.tmp, "dsa.crt")
        dsa_key = os.path.join(self.tmp, "dsa.key")
        # a DSA certificate passes every other check, but no client
        # completes a handshake with it (curl: SSL_ERROR_SYSCALL)
        for args in (["dsaparam", "-out", dsa_params, "2048"],
                     ["req", "-x509", "-newkey", "dsa:" + dsa_params,
                      "-nodes", "-keyout", dsa_key, "-out", dsa_cert,
                      "-days", "2", "-subj", "/CN=localhost"]):
            subprocess.run(["openssl"] + args, check=True, timeout=120,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        # GnuTLS loads no ECDSA key on a curve but the NIST ones
        k1_cert, k1_key = self.make_cert("k1", "127.0.0.1", (
            "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"))
        for conf, key, msg in (
                ({"cert_file": k1_cert, "key_file": k1_key}, "key_file",
                 'cert_file "%s", key_file "%s": an ECDSA key on curve '
                 'secp256k1: the TLS of libmicrohttpd (GnuTLS) takes only '
                 'P-256, P-384 and P-521 (prime256v1, secp384r1, secp521r1)'
                 % (k1_cert, k1_key)),
                ({"cert_file": dsa_cert, "key_file": dsa_key}, "key_file",
                 'cert_file "%s", key_file "%s": a DSA key: the TLS of '
                 'libmicrohttpd (GnuTLS) completes no handshake with it; '
                 'use an RSA, ECDSA or Ed25519 key'
                 % (dsa_cert, dsa_key)),
                ({"cert_file": self.cert}, "cert_file",
                 'HTTPS needs both "cert_file" and "key_file" (PEM files)'),
                ({"key_file": self.key}, "key_file",
                 'HTTPS needs both "cert_file" and "key_file" (PEM files)'),
                ({"cert_file": missing, "key_file": self.key}, "cert_file",
                 'cannot read cert_file "%s": No such file or directory'
                 % missing),
                ({"cert_file": self.cert, "key_file": missing}, "key_file",
                 'cannot read key_file "%s": No such file or directory'
                 % missing),
                ({"cert_file": self.key, "key_file": self.key}, "cert_file",
                 'cert_file "%s", key_file "%s": no PEM certificate'
                 % (self.key, self.key)),
                ({"cert_file": self.cert, "key_file": self.cert}, "key_file",
                 'cert_file "%s", key_file "%s": no unencrypted PEM private '
                 'key' % (self.cert, self.cert)),
                ({"cert_file": self.cert, "key_file": self.other_key},
                 "key_file", 'cert_file "%s", key_file "%s": the key does '
                 'not belong to the certificate'
                 % (self.cert, self.other_key))):
            with self.subTest(conf=conf):
                cp, path = self.check(dict(conf, token=TOKEN))
                self.assertEqual(cp.returncode, 78, cp.stderr)
                self.assertIn("ERROR %s: %s\n" % (self.where(path, key), msg),
                              cp.stderr)

    def test_event_sub_does_not_read_the_key(self):
        # the router's secret: event-sub, running as the service user,
        # reads the same config.json without it (a reload must not fail)
        missing = os.path.join(self.tmp, "not-here.key")
        cp, path = self.check({"token": TOKEN, "cert_file": self.cert,
                               "key_file": missing})
        self.assertEqual(cp.returncode, 78, cp.stderr)
        cfg = json.load(open(path))
        cfg["subscriber"] = {"uri": "tcp://127.0.0.1:1"}
        h.write_json(path, cfg)
        hpath = h.write_json(os.path.join(self.tmp, "h.json"), {})
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c", path,
                             "-e", hpath], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertNotIn("key_file", cp.stderr)

    def test_encrypted_key_refused(self):
        enc = os.path.join(self.tmp, "enc.key")
        subprocess.run(["openssl", "pkey", "-in", self.key, "-aes256",
                        "-passout", "pass:pw", "-out", enc], check=True,
                       timeout=60)
        cp, path = self.check({"token": TOKEN, "cert_file": self.cert,
                               "key_file": enc})
        self.assertEqual(cp.returncode, 78, cp.stderr)
        self.assertIn('ERROR %s: cert_file "%s", key_file "%s": no '
                      'unencrypted PEM private key\n'
                      % (self.where(path, "key_file"), self.cert, enc),
                      cp.stderr)

    def test_plain_http_outside_loopback_warns(self):
        warn = ("HTTPInput on 0.0.0.0 without TLS: credentials and events "
                "cross the network in clear text (set \"cert_file\" and "
                "\"key_file\")")
        cp, path = self.check({"token": TOKEN, "listen_address": "0.0.0.0"})
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("WARNING %s: %s\n" % (self.where(path, "listen_address",
                                                       at_key=True),
                                            warn), cp.stderr)
        for conf in ({"token": TOKEN},
                     {"token": TOKEN, "listen_address": "0.0.0.0",
                      "cert_file": self.cert, "key_file": self.key}):
            cp, _ = self.check(conf)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertNotIn("without TLS", cp.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to change user")
    def test_key_readable_by_root_alone(self):
        # the router reads the key as root, then runs as nobody
        self.assertEqual(os.stat(self.key).st_mode & 0o777, 0o600)
        cfg = h.make_config(self.tmp, store={"type": "none"}, feeders=[
            ZMQ_FEEDER, {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": 0, "token": TOKEN, "cert_file": self.cert,
                        "key_file": self.key}}], extra={"user": "nobody"})
        r = h.Router(self.tmp, cfg)
        self.daemons.append(r)
        r.wait_ready()
        cp = self.curl(self.https_port(r), "--cacert", self.cert, "-H",
                       "Authorization: Bearer " + TOKEN, "--data-binary", "{}")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.rsplit("\n", 1)[1], "202", cp.stdout)
        self.assertRegex(r.log_text(), r"INFO running as user nobody ")


class HttpStartFailure(h.RouterTestCase):
    """A port already in use refuses the start, naming the address."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []

    def test_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            cfg = h.make_config(self.tmp, feeders=[
                {"handler": "HTTPInput", "namespace": "hooks",
                 "config": {"port": port, "token": "t"}}])
            r = h.Router(self.tmp, cfg)
            self.daemons.append(r)
            rc = r.proc.wait(h.READY_TIMEOUT)
            self.assertNotEqual(rc, 0)
            self.assertIn("HTTPInput hooks: cannot listen on 127.0.0.1:%d"
                          % port, r.log_text())
            r.returncode = rc
        finally:
            s.close()


class SampleConfig(unittest.TestCase):
    """etc/config.json carries both feeders, disabled; enabled, they pass
    --check; a bad value is refused with file:line:column."""

    def check(self, text):
        with tempfile.TemporaryDirectory(prefix="er-it-") as d:
            path = os.path.join(d, "config.json")
            with open(path, "w") as f:
                f.write(h.with_user(text))
            cp = subprocess.run([h.binary("event-router"), "-c", path,
                                 "--check"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=10)
            return cp, path

    def test_sample_config(self):
        text = open(os.path.join(h.REPO, "etc", "config.json")).read()
        feeders = {f["handler"]: f
                   for f in json.loads(text)["feeds"]["feeders"]}
        self.assertIs(feeders["AMQPInput"].get("disabled"), True)
        self.assertIs(feeders["HTTPInput"].get("disabled"), True)
        enabled = text.replace('"disabled": true', '"disabled": false')
        # its placeholder credentials are refused, not taken for real ones:
        # the AMQP URL's password first (it comes first), then the secret
        cp, path = self.check(enabled)
        self.assertEqual(cp.returncode, 78, cp.stderr)
        line = enabled[:enabled.index("openstack:CHANGE-ME@")].count("\n") + 1
        self.assertIn('%s:%d:28: "url" still holds the sample\'s CHANGE-ME '
                      'placeholder' % (path, line), cp.stderr.decode())
        enabled = enabled.replace("openstack:CHANGE-ME@", "openstack:pw@")
        cp, path = self.check(enabled)
        self.assertEqual(cp.returncode, 78, cp.stderr)
        line = enabled[:enabled.index('"secret": "CHANGE-ME')].count("\n") + 1
        self.assertIn('%s:%d:31: "secret" is still the sample\'s placeholder'
                      % (path, line), cp.stderr.decode())
        enabled = enabled.replace("CHANGE-ME: the webhook secret (GitHub)",
                                  "s3cret").replace(
            "CHANGE-ME: the bearer token (Alertmanager, CI)", "t0ken")
        cp, _ = self.check(enabled)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(b"configuration OK", cp.stdout)
        bad = enabled.replace('"port": 8080', '"port": "8080"')
        cp, path = self.check(bad)
        self.assertEqual(cp.returncode, 78, cp.stderr)   # EX_CONFIG
        line = bad[:bad.index('"port": "8080"')].count("\n") + 1
        self.assertRegex(cp.stderr.decode(), r"%s:%d:\d+: \"port\" must be an "
                         r"integer" % (re.escape(path), line))
