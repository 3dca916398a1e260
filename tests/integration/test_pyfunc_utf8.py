"""pyfunc handlers see UTF-8 as the default text encoding whatever the
locale event-sub runs in (issue 13): Python's UTF-8 mode (PEP 540)."""

import json
import os
import unittest

import zmq

import harness as h

PROBE = r'''
import locale, sys

def write(event):
    path = event["payload"]["path"]
    with open(path, "w") as f:        # no encoding=: the default one
        f.write("é ✓")
    return {"fs": sys.getfilesystemencoding(),
            "preferred": locale.getpreferredencoding(False),
            "utf8_mode": sys.flags.utf8_mode}
'''

# every variable that selects a locale or Python's encodings
LOCALE_VARS = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "PYTHONUTF8",
               "PYTHONIOENCODING", "PYTHONCOERCECLOCALE")


class PyfuncUtf8(unittest.TestCase, h.TempDirMixin):
    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmpdir()
        cls.daemons = []
        try:
            cls.dir = os.path.join(cls.tmp, "handlers")
            os.makedirs(cls.dir)
            with open(os.path.join(cls.dir, "enc.py"), "w") as f:
                f.write(PROBE)
            cfg = h.make_config(cls.tmp)
            cls.router = h.Router(cls.tmp, cfg)
            cls.daemons.append(cls.router)
            cls.router.wait_ready()
            cls.handlers_path = h.write_json(
                os.path.join(cls.tmp, "event-handlers.json"),
                {"enc.write": [{"driver": "pyfunc", "handler": "enc.write"}]})
            cfg = dict(cfg)
            cfg["subscriber"] = {"uri": cls.router.sub_uri,
                                 "framing": "topic", "python_workers": 1}
            cls.sub_config = h.write_json(os.path.join(cls.tmp, "sub.json"),
                                          cfg)
            cls.req = h.zsock(zmq.REQ, cls.router.rep)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "req", None) is not None:
            cls.req.close(0)
        for d in reversed(cls.daemons):
            if d.alive():
                d.stop()
        cls.remove_tmpdir(cls.tmp)

    def run_in_locale(self, name, env):
        """Start event-sub with env (over one without any locale variable),
        fire one event, return (its result row, the path written)."""
        e = dict.fromkeys(LOCALE_VARS)     # None: unset
        e.update(env)
        sub = h.Sub(self.tmp, self.sub_config, self.handlers_path,
                    self.router.sub_uri,
                    extra_args=["--event-handlers", self.dir],
                    env=e)
        self.daemons.append(sub)
        try:
            sub.wait_ready(timeout=30)
            # a non-ASCII file name too: it goes through the file system
            # encoding
            path = os.path.join(self.tmp, "out-%s-é.txt" % name)
            ev = {"event_type": "enc.write", "payload": {"path": path}}
            reply = json.loads(h.request(self.req, json.dumps(ev).encode()))
            rows = h.wait_results(self.router.store_path, reply["id"], 1,
                                  timeout=30)
        finally:
            sub.stop()
        return rows[0], path

    def check(self, name, env):
        row, path = self.run_in_locale(name, env)
        self.assertEqual((row["status"], row["error"]), ("ok", None), row)
        with open(path.encode("utf-8"), "rb") as f:
            self.assertEqual(f.read(), "é ✓".encode("utf-8"))
        self.assertEqual(json.loads(row["data"]),
                         {"fs": "utf-8", "preferred": "utf-8",
                          "utf8_mode": 1})

    def test_no_locale_at_all(self):
        # as under init.d: no LANG, no LC_*
        self.check("unset", {})

    def test_c_locale(self):
        self.check("c", {"LANG": "C"})

    def test_c_utf8_locale(self):
        self.check("c-utf8", {"LANG": "C.UTF-8"})


if __name__ == "__main__":
    unittest.main()
