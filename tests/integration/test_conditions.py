"""Handler conditions ("when", event-sub(8) "Conditions") with a real
router and event-sub, on the Alertmanager, GitHub and OpenStack fixtures:
a run whose conditions do not hold is not a run (no record, no result
row), its handler's skip count is logged when the table goes, a bad
condition is refused with file:line:column at the start and by --check,
and a reload with one keeps the old table."""

import copy
import json
import os
import signal
import subprocess

import harness as h
from test_event_sub import SubTestCase

PROJECT = "7d2a9c41e6b04f3e8a5c1b2d3e4f5a6b"     # the OpenStack fixture's


def fixture(name):
    with open(h.fixture_path(name)) as f:
        return json.load(f)


class Conditions(SubTestCase):

    @classmethod
    def handlers(cls, tmp):
        ra = h.RECORD_ARGV

        def rec(name, when=None):
            e = {"driver": "shell", "handler": "%s %s/%s" % (ra, tmp, name)}
            if when is not None:
                e["when"] = when
            return e
        return {
            "alerts:firing": [
                rec("critical.jsonl",
                    {"/payload/commonLabels/severity": "critical"}),
                rec("every-alert.jsonl")],
            "github:push": [
                rec("release.jsonl", {"/payload/ref": {
                    "regex": "^refs/heads/(main|release/.*)$"}})],
            "openstack:compute.instance.create.end": [
                rec("project.jsonl", {"/payload/tenant_id": {
                    "in": [PROJECT, "another-project"]}})],
        }

    def fire(self, ns, event_type, payload):
        _, ev = self.fire_raw(json.dumps({"namespace": ns, "event_type":
                                          event_type, "payload": payload}))
        return ev["id"]

    def ran(self, name):
        """The events the handler recording into name ran for (runs go
        concurrently: sorted, as the expected lists)."""
        return sorted(json.loads(r["argv_bytes"][-1])["id"]
                      for r in h.read_records(self.out(name)))

    def test_fixtures(self):
        alert = fixture("alertmanager-firing.json")
        warning = copy.deepcopy(alert)
        warning["commonLabels"]["severity"] = "warning"
        push = fixture("github-push.json")
        feature = dict(push, ref="refs/heads/feature/x")
        release = dict(push, ref="refs/heads/release/2.1")
        note = json.loads(fixture(
            "openstack-compute.instance.create.end.json")["oslo.message"])
        other = copy.deepcopy(note["payload"])
        other["tenant_id"] = "someone-else"

        crit = self.fire("alerts", "firing", alert)
        warn = self.fire("alerts", "firing", warning)
        main = self.fire("github", "push", push)
        feat = self.fire("github", "push", feature)
        rel = self.fire("github", "push", release)
        proj = self.fire("openstack", "compute.instance.create.end",
                         note["payload"])
        notproj = self.fire("openstack", "compute.instance.create.end",
                            other)
        # the last event's run is the signal that the earlier ones are done
        for eid, n in ((crit, 2), (warn, 1), (main, 1), (rel, 1),
                       (proj, 1)):
            h.wait_results(self.router.store_path, eid, n)
        self.sub.stop()
        self.assertEqual(self.ran("critical.jsonl"), [crit])
        self.assertEqual(self.ran("every-alert.jsonl"), sorted([crit, warn]))
        self.assertEqual(self.ran("release.jsonl"), sorted([main, rel]))
        self.assertEqual(self.ran("project.jsonl"), [proj])
        # skipped is no run: no result row
        for eid in (feat, notproj):
            self.assertEqual(h.result_rows(self.router.store_path, eid), [])
        self.assertEqual(len(h.result_rows(self.router.store_path, warn)), 1)
        # each handler with conditions says what it skipped, at the stop
        log = self.sub.log_text()
        for name, n in (("critical.jsonl", 1), ("release.jsonl", 1),
                        ("project.jsonl", 1)):
            self.assertRegex(log, r"INFO handler %s:\d+:\d+ \(%s %s/%s\): "
                             r"its conditions skipped %d event%s\n" % (
                                 h.re.escape(self.handlers_path),
                                 h.re.escape(h.RECORD_ARGV),
                                 h.re.escape(self.tmp), name, n,
                                 "" if n == 1 else "s"))
        self.assertNotIn("every-alert.jsonl): its conditions", log)


class BadConditions(h.RouterTestCase):
    """A bad condition: refused with file:line:column at the start and by
    --check; a reload with one keeps the old table."""

    def write(self, text):
        path = os.path.join(self.tmp, "bad-handlers.json")
        with open(path, "w") as f:
            f.write(text)
        return path

    def sub_config(self):
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic"}
        return h.write_json(os.path.join(self.tmp, "bad-sub.json"), cfg)

    def test_refused_by_start_and_check(self):
        cfg = self.sub_config()
        for when, col, msg in (
                ('{"payload/x": 1}', 25,
                 'bad JSON pointer "payload/x": it must be empty or begin '
                 'with "/" (RFC 6901)'),
                ('{"/x": {"like": "y"}}', 19,
                 'unknown operator "like" (eq, ne, in, regex, exists, lt, '
                 'le, gt, ge; an object literal is compared with '
                 '{"eq": ...})'),
                ('{"/x": {"regex": "(open"}}', 28,
                 'invalid regex "(open": Unmatched ( or \\('),
                ('{"/x": {"regex": 5}}', 28,
                 '"regex" needs a string (a POSIX extended regular '
                 'expression)'),
                ('{"/x": {"gt": "5"}}', 25, '"gt" needs a number')):
            with self.subTest(when=when):
                path = self.write('{"x": [{"driver": "shell", "handler": '
                                  '"true",\n  "when": %s}]}\n' % when)
                for extra in (["--check"], []):
                    cp = subprocess.run(
                        [h.binary("event-sub"), "-c", cfg, "-e", path] +
                        extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, timeout=30)
                    self.assertEqual(cp.returncode, 78, cp.stderr)
                    self.assertIn("ERROR %s:2:%d: %s\n" % (path, col, msg),
                                  cp.stderr)

    def test_reload_with_a_bad_condition_keeps_the_old_table(self):
        out = os.path.join(self.tmp, "kept.jsonl")
        path = self.write(json.dumps({"keep": [{
            "driver": "shell", "handler": "%s %s" % (h.RECORD_ARGV, out),
            "when": {"/payload/go": True}}]}))
        sub = h.Sub(self.tmp, self.sub_config(), path, self.router.sub_uri)
        self.daemons.append(sub)
        sub.wait_ready()
        self.write('{"keep": [{"driver": "shell", "handler": "true",\n'
                   '  "when": {"/go": {"lt": "x"}}}]}\n')
        sub.proc.send_signal(signal.SIGHUP)
        sub.wait_log(r"ERROR reload failed, keeping the handlers in use: "
                     r'%s:2:26: "lt" needs a number' %
                     h.re.escape(path))
        sock = self.req_socket()
        ids = []
        for go in (False, True):
            reply = h.request(sock, json.dumps(
                {"event_type": "keep", "payload": {"go": go}}).encode())
            ids.append(self.assertStamped(reply)["id"])
        h.wait_results(self.router.store_path, ids[1], 1)
        # a good reload replaces the table: the old one says what its
        # conditions skipped
        self.write('{"keep": [{"driver": "shell", "handler": "true"}]}\n')
        sub.proc.send_signal(signal.SIGHUP)
        sub.wait_log(r"INFO handler %s:1:\d+ \(%s %s\): its conditions "
                     r"skipped 1 event$" % (h.re.escape(path),
                                             h.re.escape(h.RECORD_ARGV),
                                             h.re.escape(out)))
        sub.stop()
        self.assertEqual([json.loads(r["argv_bytes"][-1])["id"]
                          for r in h.read_records(out)], [ids[1]])
        self.assertEqual(h.result_rows(self.router.store_path, ids[0]), [])


class SampleFile(h.RouterTestCase):
    """etc/event-handlers.json's entry with conditions passes --check."""

    def test_sample_passes_check(self):
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic"}
        path = h.write_json(os.path.join(self.tmp, "sample-sub.json"), cfg)
        sample = os.path.join(h.REPO, "etc", "event-handlers.json")
        with open(sample) as f:
            self.assertIn('"when"', f.read())
        cp = subprocess.run([h.binary("event-sub"), "-c", path, "-e", sample,
                             "--event-handlers",
                             os.path.join(h.REPO, "etc", "event-handlers"),
                             "--check"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.splitlines()[0],
                         "%s: 3 patterns, 4 handlers: OK" % sample)
