"""pyfunc handlers (issue 4): Python functions run in exec'd worker
processes with embedded CPython; every failure kind is recorded and
event-sub goes on."""

import json
import os
import re
import signal
import subprocess
import time
import unittest

import zmq

import harness as h

PROBE = r'''
import ctypes, logging, os, sys
log = logging.getLogger("probe")
_hoard = []

def echo(event):
    p = event["payload"]
    return {"payload": p,
            "types": {k: type(v).__name__ for k, v in p.items()},
            "big_exact": p.get("big") == 9007199254740993}

def talk(event):
    print("hello from print", event["event_type"])
    log.warning("hello from logging %s", event["id"])
    log.debug("debug detail")
    return "talked"

def boom(event):
    raise ValueError("bad thing")

def leave(event):
    sys.exit(3)

def done(event):
    sys.exit(0)

def hard(event):
    os._exit(0)

def crash(event):
    ctypes.string_at(0)

def nap(event):
    import time
    time.sleep(0.01)
    return "nap"

def slowcrash(event):
    import time
    time.sleep(0.01)
    ctypes.string_at(0)

def spin(event):
    while True:
        pass

def leak(event):
    _hoard.append(bytearray(96 * 1024 * 1024))
    return len(_hoard)

def weird(event):
    return {1, 2}

def nan(event):
    return float("nan")

def odd(event):
    # a name that is not UTF-8, as os.fsdecode() gives it
    name = os.fsdecode(b"b\xffd")
    print("printed", name)
    log.warning("logged %s", name)
    return name

def odd_boom(event):
    raise ValueError(os.fsdecode(b"no b\xffd"))

def raw(event):
    # past sys.stderr: descriptor 2 itself, and a program the handler runs
    os.write(2, b"fd2 line\n2026-12-07T00:00:00.000Z event-sub[1] ERROR "
                b"forged \x1b[2J\n")
    import subprocess
    subprocess.run(["sh", "-c", "echo from the child >&2"], check=True)
    os.write(2, b"unended")
    return "raw"

def bulk(event):
    # more than a pipe holds, in one write: descriptor 2 blocks, as a
    # standard error does, until event-sub has read it
    return os.write(2, b"S" * 200000 + b"\n")

class _NoStr(Exception):
    def __str__(self):
        return 1 / 0

class _Repr:
    def __init__(self, text):
        self.text = text
    def __repr__(self):
        return self.text if self.text else 1 / 0

class _NoEq:
    def __eq__(self, other):
        raise RuntimeError("eq")
    __hash__ = object.__hash__
    def __repr__(self):
        return "<no eq>"

class _BadItems(dict):
    def items(self):
        raise ZeroDivisionError("items")

def syntax_text(event):
    e = SyntaxError("bad input")
    e.text, e.lineno = 5, 1
    raise e

def exit_eq(event):
    sys.exit(_NoEq())

def bad_items(event):
    return _BadItems(a=1)

def too_big(event):
    # more than the machine has: MemoryError at once, as python3 says
    return len(bytearray(1 << 46))

def no_str(event):
    raise _NoStr()

def syntax_nul(event):
    raise SyntaxError("vis\x00HID")

def exit_nul(event):
    sys.exit("vis\x00HID")

def no_repr(event):
    return _Repr(None)

def lone_repr(event):
    return _Repr("repr " + os.fsdecode(b"\xff"))

def split(event):
    # lines longer than a worker's line buffer (4096 bytes): in parts,
    # each of whole characters, and no empty line after one of 4096
    os.write(2, ("a" + "\u00e9" * 3000 + "\n").encode())
    os.write(2, b"\x80" * 5000 + b"\n" + b"x" * 4096 +
             b"\nafter the long lines\n")
    return "split"

def odd_nul(event):
    print("nul:vis\x00HID")
    raise ValueError("vis\x00HID")

def loud(event):
    # byte 65408 is the second of the "é"
    print("y" * 65407 + "\u00e9" + "y" * (301 << 20))
    return "done"

def huge(event):
    print("huge result follows")
    return "x" * (301 << 20)
'''

VERSIONED = 'def which(event):\n    return "%s"\n'


def children(pid):
    """The processes whose parent is pid (event-sub's Python workers)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(out)


class PyfuncTest(unittest.TestCase, h.TempDirMixin):
    """One router and one event-sub with two Python workers."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []
        try:
            cls.dir = os.path.join(cls.tmp, "handlers")
            os.makedirs(os.path.join(cls.dir, "pkg"))
            with open(os.path.join(cls.dir, "probe.py"), "w") as f:
                f.write(PROBE)
            with open(os.path.join(cls.dir, "pkg", "__init__.py"), "w") as f:
                f.write("")
            with open(os.path.join(cls.dir, "pkg", "deep.py"), "w") as f:
                f.write("def ok(event):\n    return 'deep'\n")
            with open(os.path.join(cls.dir, "broken.py"), "w") as f:
                f.write("x = 1\ndef f(:\n    pass\n")
            # a module kept elsewhere, linked into the directory
            os.makedirs(os.path.join(cls.tmp, "ext"))
            with open(os.path.join(cls.tmp, "ext", "linked.py"), "w") as f:
                f.write("def f(event):\n    return 'f'\n"
                        "def g(event):\n    return 'g'\n")
            os.symlink(os.path.join(cls.tmp, "ext", "linked.py"),
                       os.path.join(cls.dir, "linked.py"))
            # writes to descriptor 2 as the start-up check imports it
            with open(os.path.join(cls.dir, "noisy.py"), "w") as f:
                f.write("import os\nos.write(2, b'import-time \\x1b[31mRED"
                        "\\r\\n2026-12-07T00:00:00.000Z event-sub[1] ERROR "
                        "forged at import\\n')\n"
                        "def f(event):\n    return 'noisy'\n")
            # named as a module the worker itself uses
            with open(os.path.join(cls.dir, "json.py"), "w") as f:
                f.write("def f(event):\n    return 'mine'\n")
            # ...and as one built into the interpreter, never imported
            with open(os.path.join(cls.dir, "gc.py"), "w") as f:
                f.write("def collect(event):\n    return 'mine'\n")
            cls.write_versioned("v1")
            cfg = h.make_config(cls.tmp)
            cls.router = h.Router(cls.tmp, cfg)
            cls.daemons.append(cls.router)
            cls.router.wait_ready()
            py = lambda fn, **kw: dict({"driver": "pyfunc",
                                        "handler": fn}, **kw)
            cls.handlers = {
                "py.echo": [py("probe.echo")],
                "py.talk": [py("probe.talk")],
                "py.boom": [py("probe.boom")],
                "py.leave": [py("probe.leave")],
                "py.done": [py("probe.done")],
                "py.hard": [py("probe.hard")],
                "py.crash": [py("probe.crash")],
                "py.slowcrash": [py("probe.slowcrash")],
                "py.nap": [py("probe.nap")],
                "py.spin": [py("probe.spin", timeout=1)],
                "py.leak": [py("probe.leak")],
                "py.weird": [py("probe.weird"), py("probe.nan")],
                "py.pkg": [py("pkg.deep.ok")],
                "py.broken": [py("broken.f"), py("probe.echo")],
                "py.shadow": [py("json.f"), py("probe.echo"),
                              py("gc.collect")],
                "py.linked": [py("linked.f"), py("linked.g")],
                "py.huge": [py("probe.huge"), py("probe.echo")],
                "py.loud": [py("probe.loud")],
                "py.raw": [py("probe.raw")],
                "py.bulk": [py("probe.bulk")],
                "py.split": [py("probe.split")],
                "py.odder": [py("probe.no_str"), py("probe.syntax_nul"),
                             py("probe.exit_nul"), py("probe.no_repr"),
                             py("probe.lone_repr"), py("probe.syntax_text"),
                             py("probe.exit_eq"), py("probe.bad_items"),
                             py("probe.too_big", timeout=5)],
                "py.noisy": [py("noisy.f")],
                "py.odd": [py("probe.odd"), py("probe.odd_boom"),
                           py("probe.odd_nul")],
                "py.missing": [py("probe.nope"), py("nomodule.f")],
                "py.version": [py("versioned.which")],
                "mem.*": [py("probe.echo")],
            }
            cls.handlers_path = h.write_json(
                os.path.join(cls.tmp, "event-handlers.json"), cls.handlers)
            cfg = dict(cfg)
            cfg["subscriber"] = {"uri": cls.router.sub_uri,
                                 "framing": "topic", "python_workers": 2,
                                 "python_max_rss_mb": 64}
            cls.sub_config = h.write_json(os.path.join(cls.tmp, "sub.json"),
                                          cfg)
            # the crash test segfaults a worker on purpose
            env = h.segv_env()
            cls.sub = h.Sub(cls.tmp, cls.sub_config, cls.handlers_path,
                            cls.router.sub_uri, extra_args=["--event-handlers",
                                                        cls.dir], env=env)
            cls.daemons.append(cls.sub)
            cls.sub.wait_ready(timeout=30)
            cls.req = h.zsock(zmq.REQ, cls.router.rep)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def write_versioned(cls, v):
        with open(os.path.join(cls.dir, "versioned.py"), "w") as f:
            f.write(VERSIONED % v)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "req", None) is not None:
            cls.req.close(0)
        for d in reversed(cls.daemons):
            if d.alive():
                d.stop()
        cls.remove_tmpdir(cls.tmp)

    def fire(self, event_type, payload=None):
        ev = {"event_type": event_type, "payload": payload or {}}
        reply = h.request(self.req, json.dumps(ev).encode())
        return json.loads(reply)["id"]

    def results(self, event_id, n=1, timeout=30):
        return h.wait_results(self.router.store_path, event_id, n,
                              timeout=timeout)

    def one(self, event_type, payload=None, timeout=30):
        rows = self.results(self.fire(event_type, payload), 1, timeout)
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    def test_an_event_python_cannot_make_a_dict_of(self):
        # event-sub(8): nesting that JSON parsers take (2000 levels) and
        # Python's recursion limit does not; the function is not called
        deep = '{"d":' * 2000 + "{}" + "}" * 2000
        reply = h.request(self.req, ('{"event_type":"py.echo","payload":%s}'
                                     % deep).encode())
        # (too deep for Python's json.loads too: the id is read by eye)
        row = self.results(re.match(rb'\{"id":"([0-9a-f]{24})"', reply)
                           .group(1).decode())[0]
        self.assertEqual(row["status"], "error", row)
        self.assertTrue(row["error"].startswith(
            "cannot make the event a dict: RecursionError: "), row)
        # the worker lives on
        self.assertEqual(self.one("py.pkg")["status"], "ok")

    def test_unicode_and_big_integer_round_trip(self):
        payload = {"team": "上海-OPS", "e": "😀", "n": None,
                   "big": 9007199254740993, "f": 0.1, "l": [1, [2, {}]]}
        raw = ('{"event_type":"py.echo","payload":{"team":"上海-OPS",'
               '"e":"😀","n":null,"big":9007199254740993,"f":0.1,'
               '"l":[1,[2,{}]]}}').encode()
        reply = json.loads(h.request(self.req, raw))
        row = self.results(reply["id"])[0]
        self.assertEqual(row["status"], "ok", row)
        self.assertEqual(row["driver"], "pyfunc")
        data = json.loads(row["data"])
        self.assertEqual(data["payload"], payload)
        self.assertEqual(data["types"], {"team": "str", "e": "str",
                                         "n": "NoneType", "big": "int",
                                         "f": "float", "l": "list"})
        self.assertIs(data["big_exact"], True)
        self.assertIn('"big": 9007199254740993', row["data"])

    def test_dotted_module_path(self):
        row = self.one("py.pkg")
        self.assertEqual((row["status"], row["data"]), ("ok", '"deep"'))

    def test_print_and_logging_reach_the_log(self):
        eid = self.fire("py.talk")
        row = self.results(eid)[0]
        self.assertEqual((row["status"], row["data"]), ("ok", '"talked"'))
        self.sub.wait_log(r"INFO pyfunc probe\.talk: hello from print py\.talk")
        self.sub.wait_log(r"WARNING pyfunc probe\.talk: hello from logging %s"
                          % eid)
        self.sub.wait_log(r"DEBUG pyfunc probe\.talk: debug detail")
        self.assertIn("hello from print", row["stdout"])
        self.assertIn("hello from logging", row["stderr"])

    def test_lone_surrogate_printed_and_logged(self):
        # as Python's own stderr writes it (\udcff), not a
        # UnicodeEncodeError that fails the call
        eid = self.fire("py.odd")
        rows = {r["handler"]: r for r in self.results(eid, 3)}
        row = rows["probe.odd"]
        self.assertEqual((row["status"], row["error"]), ("ok", None))
        self.assertEqual(row["stdout"], "printed b\\udcffd\n")
        self.assertEqual(row["stderr"], "logged b\\udcffd\n")
        self.sub.wait_log(re.escape(r"WARNING pyfunc probe.odd: logged "
                                    r"b\udcffd"))
        # in data, the same text: JSON that any parser takes (a lone
        # surrogate's escape is refused by strict ones, jansson among them)
        self.assertEqual(row["data"], '"b\\\\udcffd"')
        self.assertEqual(json.loads(row["data"]), "b\\udcffd")
        boom = rows["probe.odd_boom"]
        self.assertEqual((boom["status"], boom["error"]),
                         ("failed", "ValueError: no b\\udcffd"))
        self.assertIn("ValueError: no b\\udcffd", boom["stderr"])
        # a NUL: as \x00, in the log and in the error column
        nul = rows["probe.odd_nul"]
        self.assertEqual((nul["status"], nul["error"]),
                         ("failed", "ValueError: vis\\x00HID"))
        self.sub.wait_log(re.escape(r"INFO pyfunc probe.odd_nul: "
                                    r"nul:vis\x00HID"))

    def test_descriptor_2_logged_by_the_line(self):
        # what a handler writes to descriptor 2, or a program it runs,
        # is logged line by line as the worker's, escaped: no forged line
        row = self.one("py.raw")
        self.assertEqual((row["status"], row["data"]), ("ok", '"raw"'))
        self.assertEqual((row["stdout"], row["stderr"]), (None, None))
        w = r"WARNING python worker \d+: "
        self.sub.wait_log(w + "fd2 line$")
        self.sub.wait_log(w + re.escape(r"2026-12-07T00:00:00.000Z "
                                        r"event-sub[1] ERROR forged "
                                        r"\x1b[2J") + "$")
        self.sub.wait_log(w + "from the child$")
        row = self.one("py.bulk")
        self.assertEqual((row["status"], row["data"]), ("ok", "200001"))
        self.sub.wait_log(w + "S{3000}")
        self.assertEqual(self.one("py.split")["data"], '"split"')
        self.sub.wait_log(w + "after the long lines$")
        log = self.sub.log_text()
        # no byte lost: every x of the 4096, and every escaped byte
        self.assertEqual(sum(len(x) for x in re.findall(
            "(?m)" + w + "(x+)$", log)), 4096)
        # (after "unended", which py.raw left without its end)
        self.assertEqual(sum(len(x) for x in re.findall(
            "(?m)" + w + "(?:unended)?(S+)$", log)), 200000)
        self.assertEqual(sum(x.count(r"\x80") for x in re.findall(
            "(?m)" + w + r"((?:\\x80)+)$", log)), 5000)
        self.assertRegex(log, "(?m)" + w + "\u00e9+")   # the second part
        self.assertNotIn(r"\xa9", log)
        self.assertNotRegex(log, "(?m)" + w + "$")
        # the start-up check's import of a module that writes there
        self.sub.wait_log(w + re.escape(r"import-time \x1b[31mRED\x0d") + "$")
        self.sub.wait_log(w + re.escape("2026-12-07T00:00:00.000Z event-sub"
                                        "[1] ERROR forged at import") + "$")
        self.assertNotRegex(self.sub.log_text(), r"(?m)^2026-12-07T00:00:00"
                            r"\.000Z event-sub\[1\] ERROR forged")
        self.assertNotIn("\x1b", self.sub.log_text())

    def test_errors_hard_to_describe(self):
        # an exception whose str() raises, NULs in a SyntaxError's and a
        # SystemExit's text, a returned value whose repr() raises or holds
        # a lone surrogate: each run is recorded as what it was
        eid = self.fire("py.odder")
        full = {r["handler"]: r for r in self.results(eid, 9)}
        self.assertEqual(full["probe.syntax_text"]["stderr"],
                         "no traceback: making it raised AttributeError\n")
        self.maxDiff = None
        rows = {h: (r["status"], r["error"], r["data"])
                for h, r in full.items()}
        self.assertEqual(rows, {
            "probe.no_str": ("failed", "_NoStr (and describing it raised "
                             "ZeroDivisionError)", None),
            "probe.syntax_nul": ("failed", r"SyntaxError: vis\x00HID (None, "
                                 "line None)", None),
            "probe.exit_nul": ("failed", r"SystemExit: vis\x00HID", None),
            "probe.no_repr": ("ok", "return value is not JSON (TypeError: "
                              "Object of type _Repr is not JSON "
                              "serializable); nor could it be shown: repr() "
                              "raised ZeroDivisionError: division by zero",
                              None),
            "probe.lone_repr": ("ok", "return value is not JSON (TypeError: "
                                "Object of type _Repr is not JSON "
                                "serializable); its repr() is stored",
                                r'"repr \\udcff"'),
            "probe.syntax_text": ("failed", "SyntaxError: bad input (None, "
                                  "line 1)", None),
            "probe.exit_eq": ("failed", "SystemExit: <no eq>", None),
            "probe.bad_items": ("ok", "return value is not JSON "
                                "(ZeroDivisionError: items); its repr() is "
                                "stored", '"{\'a\': 1}"'),
            "probe.too_big": ("failed", "MemoryError: ", None),
        })

    def test_exception_is_failed_with_traceback(self):
        row = self.one("py.boom")
        self.assertEqual(row["status"], "failed")
        self.assertEqual(row["error"], "ValueError: bad thing")
        self.assertIn("Traceback (most recent call last)", row["stderr"])
        self.assertIn('raise ValueError("bad thing")', row["stderr"])
        # the handler's frames only, not the worker's own
        self.assertNotIn("in _call", row["stderr"])

    def test_sys_exit(self):
        row = self.one("py.leave")
        self.assertEqual((row["status"], row["error"]),
                         ("failed", "SystemExit: 3"))
        self.assertEqual(self.one("py.pkg")["status"], "ok")

    def test_sys_exit_zero_is_ok(self):
        row = self.one("py.done")
        self.assertEqual((row["status"], row["error"], row["data"]),
                         ("ok", None, None))

    def test_os_exit(self):
        row = self.one("py.hard")
        self.assertEqual(row["status"], "failed")
        self.assertEqual(row["error"], "python worker exited with status 0 "
                         "during the call")
        self.assertEqual(self.one("py.pkg")["status"], "ok")

    def test_crash(self):
        row = self.one("py.crash")
        self.assertEqual(row["status"], "failed")
        self.assertEqual(row["error"], "python worker killed by signal 11 "
                         "(Segmentation fault) during the call")
        self.assertEqual(self.one("py.pkg")["status"], "ok")

    def test_calls_queued_behind_a_crash_still_run(self):
        # a burst: some calls are queued on the worker that crashes (the
        # pipelining); each must run on another worker, none is lost
        warm = [self.fire("py.nap") for _ in range(4)]   # both workers up
        for eid in warm:
            self.results(eid)
        crash = self.fire("py.slowcrash")
        others = [self.fire("py.nap") for _ in range(20)]
        self.assertEqual(self.results(crash)[0]["status"], "failed")
        for eid in others:
            row = self.results(eid)[0]
            self.assertEqual((row["status"], row["data"]), ("ok", '"nap"'))

    def test_endless_loop_times_out_without_delaying_others(self):
        warm = [self.fire("py.nap") for _ in range(4)]   # both workers up
        for eid in warm:
            self.results(eid)
        spin = self.fire("py.spin")
        other = self.fire("py.pkg")
        orow = self.results(other)[0]
        srow = self.results(spin, timeout=30)[0]
        self.assertEqual(orow["status"], "ok")
        self.assertEqual(srow["status"], "timeout")
        self.assertIn("timed out after 1 s", srow["error"])
        # event-sub(8): the kill is said at INFO, the run at WARNING
        self.sub.wait_log(r"INFO pyfunc probe\.spin for event %s timed out "
                          r"after 1 s: killing python worker \d+$" % spin)
        self.sub.wait_log(r"WARNING handler \S+ \(probe\.spin\) for event "
                          r"%s: timeout: timed out after 1 s" % spin)
        # the other handler started while the loop was still spinning (it
        # was not queued behind it)
        self.assertLess(orow["started_at"],
                        srow["started_at"] + srow["duration_ms"] / 1000)
        self.assertEqual(self.one("py.pkg")["status"], "ok")

    def test_memory_hog_worker_is_replaced(self):
        row = self.one("py.leak")
        self.assertEqual((row["status"], row["data"]), ("ok", "1"))
        self.sub.wait_log(r"python worker \d+ uses more than 64 MiB "
                          r"\(subscriber\.python_max_rss_mb\): replacing it")
        # a fresh worker: the hoard starts empty again
        self.assertEqual(self.one("py.leak")["data"], "1")

    def test_unencodable_return_values(self):
        eid = self.fire("py.weird")
        rows = {r["handler"]: r for r in self.results(eid, 2)}
        w = rows["probe.weird"]
        self.assertEqual((w["status"], w["data"]), ("ok", '"{1, 2}"'))
        self.assertIn("its repr() is stored", w["error"])
        n = rows["probe.nan"]
        self.assertEqual((n["status"], n["data"]), ("ok", '"nan"'))
        self.assertIn("ValueError", n["error"])

    def test_syntax_error_names_file_and_line(self):
        eid = self.fire("py.broken")
        rows = {r["handler"]: r for r in self.results(eid, 2)}
        b = rows["broken.f"]
        self.assertEqual(b["status"], "error")
        self.assertEqual(b["error"], "SyntaxError: invalid syntax (%s, line 2)"
                         % os.path.join(self.dir, "broken.py"))
        self.assertEqual(rows["probe.echo"]["status"], "ok")

    def test_module_named_as_the_workers_own(self):
        # handlers/json.py: the workers keep Python's json (they read
        # events with it), the other handlers run, and this one's runs
        # say why it cannot
        why = ("ImportError: %s is shadowed by Python's module json (%s), "
               "which the worker loads first: rename it" % (
                   os.path.join(self.dir, "json.py"), json.__file__))
        self.sub.wait_log(re.escape("pyfunc handler json.f does not "
                                    "resolve: " + why))
        # gc is built in: Python's gc.collect would run in its place
        why_gc = ("ImportError: %s is shadowed by Python's module gc "
                  "(built-in), which the worker loads first: rename it"
                  % os.path.join(self.dir, "gc.py"))
        self.sub.wait_log(re.escape("pyfunc handler gc.collect does not "
                                    "resolve: " + why_gc))
        eid = self.fire("py.shadow")
        rows = {r["handler"]: r for r in self.results(eid, 3)}
        self.assertEqual(rows["json.f"]["status"], "error")
        self.assertEqual(rows["json.f"]["error"], why)
        self.assertEqual(rows["gc.collect"]["status"], "error")
        self.assertEqual(rows["gc.collect"]["error"], why_gc)
        self.assertEqual(rows["probe.echo"]["status"], "ok")

    def test_module_linked_into_the_directory(self):
        # both functions of a module that is a symbolic link in the
        # handlers directory resolve (the second once the module is in)
        eid = self.fire("py.linked")
        rows = {r["handler"]: r for r in self.results(eid, 2)}
        self.assertEqual([(rows[k]["status"], rows[k]["data"]) for k in
                          ("linked.f", "linked.g")],
                         [("ok", '"f"'), ("ok", '"g"')])
        # nor did the start-up check, which resolves both in one worker
        self.assertNotIn("pyfunc handler linked.", self.sub.log_text())

    def test_line_over_what_a_worker_keeps(self):
        # a 301 MiB line: cut before the character that byte 65408 is in,
        # in the stored output; the call goes on
        line = "y" * 65407 + (" [event-reactor: line truncated, %d bytes "
                              "dropped]" % ((301 << 20) + 2))
        r = self.one("py.loud", timeout=60)
        self.assertEqual((r["status"], r["data"]), ("ok", '"done"'))
        self.assertEqual(r["stdout"], line + "\n")

    def test_result_over_what_a_worker_can_send(self):
        # 301 MiB of JSON: more than a worker's frame (300 MiB); the run
        # says so, with its output, and the other handler's run is ok
        eid = self.fire("py.huge")
        rows = {r["handler"]: r for r in self.results(eid, 2, timeout=60)}
        r = rows["probe.huge"]
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"], "result too large: %d bytes (the return "
                         "value as JSON, the error and the traceback), over "
                         "the 300 MiB a worker can send (PYPROTO_MAX_FRAME); "
                         "not stored" % ((301 << 20) + 2))
        self.assertIsNone(r["data"])
        self.assertEqual(r["stdout"], "huge result follows\n")
        self.assertEqual(rows["probe.echo"]["status"], "ok")

    def test_startup_check_names_unresolvable_handlers(self):
        self.sub.wait_log(r"pyfunc handler probe\.nope does not resolve: "
                          r"AttributeError: module 'probe' has no attribute "
                          r"'nope'")
        self.sub.wait_log(r"pyfunc handler nomodule\.f does not resolve: "
                          r"ModuleNotFoundError: No module named 'nomodule'")
        self.sub.wait_log(r"pyfunc handler broken\.f does not resolve: "
                          r"SyntaxError")
        eid = self.fire("py.missing")
        for r in self.results(eid, 2):
            self.assertEqual(r["status"], "error", r)

    def test_zz_edited_module_after_sighup(self):
        self.assertEqual(self.one("py.version")["data"], '"v1"')
        self.write_versioned("v2")
        os.kill(self.sub.proc.pid, signal.SIGHUP)
        self.sub.wait_log(r"reloaded: \d+ patterns")
        self.assertEqual(self.one("py.version")["data"], '"v2"')


PIPE_PROBE = r"""
import ctypes, os, time
HERE = os.path.dirname(os.path.abspath(__file__))

def _ran(event):
    with open(os.path.join(HERE, "runs.log"), "a") as f:
        f.write(event["id"] + "\n")

def once(event):
    _ran(event)
    return os.getpid()

def gather(event):
    # waits until event-sub has as many python workers as the payload says
    # (bounded): the call after this one finds every started worker busy
    want, parent = event["payload"]["workers"], os.getppid()
    for _ in range(5000):
        n = 0
        for d in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % d) as f:
                    n += int(f.read().rsplit(")", 1)[1].split()[1]) == parent
            except (OSError, ValueError, IndexError):
                pass
        if n >= want:
            return os.getpid()
        time.sleep(0.005)
    return "never gathered"

def crash(event):
    _ran(event)
    ctypes.string_at(0)

def big(event):
    _ran(event)
    print("big result follows")
    return "%d:" % os.getpid() + "y" * 100000

def errflood(event):
    for i in range(1500):
        os.write(2, b"err %d\n" % i)
    return i

def chatty(event):
    print("control\rchars\x1b[2J here")
    for i in range(1500):
        print("line %d" % i)
    return i

def block(event):
    # runs until the test creates the gate file (bounded, and less than
    # its handler's timeout)
    gate = os.path.join(HERE, "gate")
    for _ in range(5000):
        if os.path.exists(gate):
            return "released"
        time.sleep(0.005)
    return "never released"
"""


class PyfuncPipeline(unittest.TestCase, h.TempDirMixin):
    """Calls queued in a worker behind its running one (pipelining): each
    runs exactly once, on another worker when the one it waited in dies or
    runs a call for PYHOST_PIPELINE_MS.  The workers are stopped (SIGSTOP)
    while the calls are handed out, so that they queue deterministically."""

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.dir = os.path.join(self.tmp, "handlers")
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "pp.py"), "w") as f:
            f.write(PIPE_PROBE)

    def start(self, workers, grace=None):
        cfg = h.make_config(self.tmp)
        self.router = h.Router(self.tmp, cfg)
        self.addCleanup(lambda: self.router.alive() and self.router.stop())
        self.router.wait_ready()
        py = lambda fn, **kw: dict({"driver": "pyfunc", "handler": fn}, **kw)
        hp = h.write_json(os.path.join(self.tmp, "h.json"), {
            "pp.once": [py("pp.once")],
            "pp.gather": [py("pp.gather")],
            "pp.crash": [py("pp.crash")],
            "pp.big": [py("pp.big")],
            "pp.chatty": [py("pp.chatty")],
            "pp.errflood": [py("pp.errflood")],
            "pp.block": [py("pp.block", timeout=30)],
            "pp.marker": [{"driver": "shell", "handler": "true"}],
        })
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic",
                             "python_workers": workers}
        if grace is not None:
            cfg["subscriber"]["shutdown_grace"] = grace
        sp = h.write_json(os.path.join(self.tmp, "s.json"), cfg)
        env = h.segv_env()      # a worker segfaults on purpose
        self.sub = h.Sub(self.tmp, sp, hp, self.router.sub_uri, env=env,
                         extra_args=["--event-handlers", self.dir])
        self.addCleanup(lambda: self.sub.alive() and self.sub.stop())
        self.sub.wait_ready(timeout=30)
        self.req = h.zsock(zmq.REQ, self.router.rep)
        self.addCleanup(self.req.close, 0)
        # every worker up: each of these calls waits in its worker until
        # all are, so the next one finds every started worker busy and
        # starts another (pick() prefers a fresh worker to a busy one)
        for eid in [self.fire("pp.gather", {"workers": workers})
                    for _ in range(workers)]:
            self.assertEqual(self.results(eid)["status"], "ok")
        self.workers = h.wait_until(
            lambda: (lambda c: c if len(c) == workers else None)(
                children(self.sub.proc.pid)),
            10, "%d python workers" % workers)
        # then many short calls, so that the workers' recent call time is
        # short and event-sub queues several calls per worker
        for eid in [self.fire("pp.once") for _ in range(60)]:
            self.results(eid)

    def fire(self, event_type, payload=None):
        ev = {"event_type": event_type, "payload": payload or {}}
        return json.loads(h.request(self.req, json.dumps(ev).encode()))["id"]

    def results(self, eid, timeout=30):
        rows = h.wait_results(self.router.store_path, eid, 1, timeout)
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    def runs(self):
        with open(os.path.join(self.dir, "runs.log")) as f:
            return [line.strip() for line in f]

    def handed_out(self, fire):
        """Fire events (fire() returns their ids) while every worker is
        stopped; return once event-sub has read them all (a shell handler's
        result for a later event) and handed them out."""
        for pid in self.workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            ids = fire()
            self.results(self.fire("pp.marker"))
        finally:
            for pid in self.workers:
                os.kill(pid, signal.SIGCONT)
        return ids

    def test_crash_in_the_middle_of_a_batch(self):
        self.start(workers=1)
        tries = []
        for _ in range(5):
            pid = self.workers[0]
            before, crash, after = self.handed_out(lambda: (
                [self.fire("pp.once") for _ in range(8)],
                self.fire("pp.crash"),
                [self.fire("pp.once") for _ in range(8)]))
            # the calls before the crash ran in that worker, with their
            # results
            for eid in before:
                row = self.results(eid)
                self.assertEqual((row["status"], row["data"]),
                                 ("ok", str(pid)))
            row = self.results(crash)
            self.assertEqual(row["status"], "failed")
            self.assertEqual(row["error"], "python worker killed by signal "
                             "11 (Segmentation fault) during the call")
            # the calls queued behind it ran in its replacement
            for eid in after:
                row = self.results(eid)
                self.assertEqual(row["status"], "ok", row)
                self.assertNotEqual(row["data"], str(pid))
            # none lost, none run twice
            runs = self.runs()
            for eid in before + [crash] + after:
                self.assertEqual(runs.count(eid), 1, eid)
            # logged when the worker was reaped, before they ran again
            if any(self.sub.find_log(
                    r"pyfunc pp\.once for event %s: its worker died before "
                    r"it started; another runs it" % eid) for eid in after):
                return
            # None died with it: its worker's recent calls took more than
            # PYHOST_PIPELINE_MS / 18, or the crash itself ran 20 ms (a
            # busy machine: the worker was not scheduled between taking
            # the call and dying), and the calls behind it were taken back
            # first.  Calls one at a time bring the recent call time down.
            tries.append(self.sub.find_log(
                r"pyfunc pp\.crash for event %s has run 20 ms" % crash)
                is not None)
            self.workers = h.wait_until(
                lambda: (lambda c: c if len(c) == 1 and c != [pid]
                         else None)(children(self.sub.proc.pid)),
                10, "the crashed worker's replacement")
            for _ in range(80):
                self.results(self.fire("pp.once"))
        self.fail("no call died with the crashed worker in %d tries (the "
                  "crash ran 20 ms: %s)" % (len(tries), tries))

    def test_handler_lines_limited_in_the_log(self):
        # 1501 lines in one call: the run keeps them all; the log takes
        # the first 1000 of its 10 s (PYHOST_LOG_BURST), with their control
        # characters as \xNN, then one line counts the others
        self.start(workers=1)
        row = self.results(self.fire("pp.chatty"))
        self.assertEqual((row["status"], row["data"]), ("ok", "1499"))
        self.assertEqual(row["stdout"], "control\rchars\x1b[2J here\n" +
                         "".join("line %d\n" % i for i in range(1500)))
        self.sub.wait_log(re.escape('501 "pyfunc" lines of handlers (each '
                                    'run keeps its own in its stdout and '
                                    'stderr) suppressed in the last 10 s'),
                          timeout=30)
        log = self.sub.log_text()
        self.assertIn(r"INFO pyfunc pp.chatty: control\x0dchars\x1b[2J "
                      "here\n", log)
        lines = re.findall(r"INFO pyfunc pp\.chatty: line (\d+)$", log, re.M)
        self.assertEqual(lines, [str(i) for i in range(999)])

    def check_argv(self, module, top):
        """event-sub --check of a table whose one handler is module.f,
        module's top level being top."""
        with open(os.path.join(self.dir, module + ".py"), "w") as f:
            f.write(top + "def f(event):\n    return 1\n")
        cfg = h.make_config(self.tmp)
        cfg["subscriber"] = {"uri": "tcp://127.0.0.1:9"}
        cfg = h.write_json(os.path.join(self.tmp, "c.json"), cfg)
        hp = h.write_json(os.path.join(self.tmp, "h.json"), {
            "*": [{"driver": "pyfunc", "handler": module + ".f"}]})
        return [h.binary("event-sub"), "--check", "-c", cfg, "-e", hp,
                "--event-handlers", self.dir]

    def test_check_counts_what_an_import_wrote(self):
        # --check: the start-up check's worker, whose import writes 1500
        # lines to descriptor 2: 1000 logged, then the count of the rest,
        # said when the check ends (not 10 s later: there is no later)
        cp = subprocess.run(self.check_argv(
            "loud_import", "import os\nfor i in range(1500):\n"
            "    os.write(2, b'imp %d\\n' % i)\n"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        lines = re.findall(r"WARNING python worker \d+: imp (\d+)$",
                           cp.stderr, re.M)
        self.assertEqual(lines, [str(i) for i in range(1000)])
        self.assertRegex(cp.stderr, r'WARNING 500 "python worker" lines of '
                         r"workers' standard error suppressed in the last "
                         r"\d+ s\n$")

    def test_check_says_which_import_died_or_hung(self):
        # a module whose import exits, then one whose import outlasts the
        # check's 10 s: the handler and what became of it (before: "python
        # worker failed while checking handlers", "no Python worker could
        # start")
        for module, top, what in (
                ("exits_on_import", "import os\nos._exit(3)\n",
                 "died while importing"),
                ("hangs_on_import", "import time\ntime.sleep(60)\n",
                 "gave no answer in time while importing")):
            with self.subTest(module=module):
                argv = self.check_argv(module, top)
                cp = subprocess.run(argv, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    timeout=60)
                self.assertEqual(cp.returncode, 78, cp.stderr)
                self.assertRegex(cp.stderr, (
                    r"ERROR %s:\d+:\d+: python worker %s pyfunc handler "
                    r"%s\.f.*\n.*ERROR %s: cannot check the pyfunc handlers "
                    r"\(the line before says why\)\n$") % (
                        re.escape(argv[5]), what, module, re.escape(argv[5])))

    def test_check_killed_takes_its_worker(self):
        # event-sub killed while the start-up check's worker imports a
        # slow module: the worker goes too (no orphan importing on)
        p = subprocess.Popen(self.check_argv(
            "slow_import", "import os, time\nopen(os.path.join(os.path."
            "dirname(__file__), 'importing'), 'w').close()\n"
            "time.sleep(60)\n"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        h.wait_until(lambda: os.path.exists(os.path.join(self.dir,
                                                         "importing")),
                     10, "the check's worker importing")
        worker = children(p.pid)[0]
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        h.wait_until(lambda: not os.path.exists("/proc/%d/stat" % worker) or
                     open("/proc/%d/stat" % worker).read().rsplit(")", 1)[1]
                     .split()[0] == "Z", 10, "the orphaned worker to go")

    def test_worker_standard_error_limited_in_the_log(self):
        # 1500 lines on descriptor 2: the first 1000 of the 10 s logged,
        # then one line counts the others (none kept in the run)
        self.start(workers=1)
        row = self.results(self.fire("pp.errflood"))
        self.assertEqual((row["status"], row["data"], row["stderr"]),
                         ("ok", "1499", None))
        self.sub.wait_log(re.escape('500 "python worker" lines of workers\' '
                                    'standard error suppressed in the last '
                                    '10 s'), timeout=30)
        lines = re.findall(r"WARNING python worker \d+: err (\d+)$",
                           self.sub.log_text(), re.M)
        self.assertEqual(lines, [str(i) for i in range(1000)])

    def test_large_results_in_a_batch(self):
        # results too large for their slot come as frames, between others
        # that stay in theirs; each gets its own row, output and data
        self.start(workers=1)
        pid = self.workers[0]
        ids = self.handed_out(lambda: [
            self.fire("pp.big" if i % 2 else "pp.once") for i in range(9)])
        for i, eid in enumerate(ids):
            row = self.results(eid)
            self.assertEqual(row["status"], "ok", row)
            if i % 2:
                self.assertEqual(json.loads(row["data"]),
                                 "%d:" % pid + "y" * 100000)
                self.assertEqual(row["stdout"], "big result follows\n")
            else:
                self.assertEqual(row["data"], str(pid))
                self.assertIsNone(row["stdout"])
        runs = self.runs()
        for eid in ids:
            self.assertEqual(runs.count(eid), 1, eid)

    def test_calls_behind_a_long_call_go_to_another_worker(self):
        self.start(workers=2)
        gate = os.path.join(self.dir, "gate")
        tries = []
        for _ in range(5):
            block, fast = self.handed_out(lambda: (
                self.fire("pp.block"),
                [self.fire("pp.once") for _ in range(8)]))
            # every short call ends while the long one still runs: those
            # that were queued behind it were taken back after
            # PYHOST_PIPELINE_MS
            rows = [self.results(eid) for eid in fast]
            self.assertEqual([r["status"] for r in rows], ["ok"] * 8)
            self.assertEqual(h.result_rows(self.router.store_path, block),
                             [])
            # logged when they were taken back, before they ran elsewhere
            taken = self.sub.find_log(
                r"pyfunc pp\.block for event %s has run 20 ms: the \d+ "
                r"calls queued behind it go to other workers" % block)
            with open(gate, "w"):
                pass
            row = self.results(block)
            self.assertEqual((row["status"], row["data"]),
                             ("ok", '"released"'))
            runs = self.runs()
            for eid in fast:
                self.assertEqual(runs.count(eid), 1, eid)
            if taken:
                return
            # None waited behind it: its worker's recent calls took more
            # than half of PYHOST_PIPELINE_MS (a busy machine), or the
            # long call itself, in an earlier try.  Calls one at a time
            # (all to that worker, the first idle one) bring its recent
            # call time down again.
            tries.append(row["duration_ms"])
            os.unlink(gate)
            for _ in range(80):
                self.results(self.fire("pp.once"))
        self.fail("no call was queued behind the long one in %d tries "
                  "(long calls of %s ms)" % (len(tries), tries))

    def test_calls_taken_back_at_shutdown_are_recorded(self):
        # one worker: the calls taken back from behind the long call have
        # nowhere to go; the shutdown grace ends, each gets its row
        self.start(workers=1, grace=1)
        block, queued = self.handed_out(lambda: (
            self.fire("pp.block"), [self.fire("pp.once") for _ in range(3)]))
        # how many wait in its worker depends on its recent call time
        # (slower on a busy machine); the others wait in event-sub's queue
        m = self.sub.wait_log(r"pyfunc pp\.block for event %s has run 20 ms: "
                              r"the ([1-3]) calls? queued behind it go to "
                              r"other workers" % block)
        n = int(m.group(1))
        self.assertGreaterEqual(n, 1)
        self.sub.stop()
        row = self.results(block)
        self.assertEqual((row["status"], row["error"]), (
            "timeout", "killed at shutdown: still running after "
            "subscriber.shutdown_grace"))
        # the first n were handed to the worker (in order) and taken back;
        # the rest never left event-sub's queue
        for i, eid in enumerate(queued):
            row = self.results(eid)
            self.assertEqual((row["status"], row["error"]), (
                "error", "not started: event-sub stopped before a %s was "
                "free (subscriber.shutdown_grace)" % (
                    "python worker" if i < n else "slot")), (i, n))
        runs = self.runs()
        self.assertEqual([eid for eid in queued if eid in runs], [])


class PyfuncMemory(unittest.TestCase, h.TempDirMixin):
    """2000 calls with 2 workers leave event-sub's and the workers' memory
    flat; after a burst of 20,000 the router's and event-sub's resident
    sets come back within a tenth of what they were before it, once
    they are idle (event-router(8), event-sub(8))."""

    def rss_kb(self, pid):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_memory_flat(self):
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        hdir = os.path.join(tmp, "handlers")
        os.makedirs(hdir)
        with open(os.path.join(hdir, "triv.py"), "w") as f:
            f.write("def f(event):\n    return event['payload']['i']\n")
        cfg = h.make_config(tmp, store={"type": "sqlite",
                                        "path": os.path.join(tmp, "ev.db")})
        router = h.Router(tmp, cfg)
        self.addCleanup(lambda: router.alive() and router.stop())
        router.wait_ready()
        hp = h.write_json(os.path.join(tmp, "h.json"),
                          {"*": [{"driver": "pyfunc", "handler": "triv.f"}]})
        cfg["subscriber"] = {"uri": router.sub_uri, "framing": "topic",
                             "python_workers": 2}
        sp = h.write_json(os.path.join(tmp, "s.json"), cfg)
        sub = h.Sub(tmp, sp, hp, router.sub_uri, level="info",
                    extra_args=["--event-handlers", hdir])
        self.addCleanup(lambda: sub.alive() and sub.stop())
        sub.wait_ready(timeout=30)
        push = h.zsock(zmq.PUSH, router.pull)
        self.addCleanup(push.close, 0)

        def batch(start, n):
            for i in range(start, start + n):
                push.send(json.dumps({"event_type": "m", "payload":
                                      {"i": i, "pad": "x" * 100}}).encode())
            h.wait_until(lambda: (h.db_query(
                router.store_path, "SELECT count(*) FROM results") or
                [(0,)])[0][0] >= start + n, 120, "%d results" % (start + n))

        batch(0, 300)           # warm up: workers started, caches filled
        pids = [sub.proc.pid] + children(sub.proc.pid)
        self.assertEqual(len(pids), 3, pids)
        # ps -C event-sub finds event-sub and its workers (event-reactor(7),
        # "Python workers"), not "exe" after their exec of /proc/self/exe
        for p in pids:
            with open("/proc/%d/comm" % p) as f:
                self.assertEqual(f.read(), "event-sub\n", p)
        before = {p: self.rss_kb(p) for p in pids}
        batch(300, 2000)
        after = {p: self.rss_kb(p) for p in pids}
        self.assertEqual(children(sub.proc.pid), pids[1:],
                         "workers were replaced")
        # ASan's quarantine keeps freed memory resident: in the sanitizer
        # build LeakSanitizer checks for leaks instead of this bound.
        for p in pids if not os.environ.get("ER_SANITIZE") else []:
            self.assertLess(after[p] - before[p], 4096,
                            "pid %d grew from %d kB to %d kB"
                            % (p, before[p], after[p]))
        rows = h.db_query(router.store_path, "SELECT status, count(*) AS n "
                          "FROM results GROUP BY status")
        self.assertEqual([tuple(r) for r in rows], [(b"ok", 2300)])
        if os.environ.get("ER_SANITIZE"):
            return
        # a burst: queued in event-sub, the store's caches full; a second
        # idle, each daemon hands back what it no longer uses
        idle = {p: self.rss_kb(p) for p in (router.proc.pid, sub.proc.pid)}
        batch(2300, 20000)
        peak = {p: self.rss_kb(p) for p in idle}
        for p in idle:
            try:
                h.wait_until(lambda: self.rss_kb(p) <= idle[p] * 1.1, 30,
                             "pid %d's RSS back within 10%% of %d kB"
                             % (p, idle[p]))
            except h.HarnessError as e:
                self.fail("%s: %d kB after the burst, %d kB now"
                          % (e, peak[p], self.rss_kb(p)))


if __name__ == "__main__":
    unittest.main()
