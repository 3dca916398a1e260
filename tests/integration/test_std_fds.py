"""Started with standard input, output and error closed, the programs put
/dev/null in their place before they open anything: a socket or file that
took descriptor 1 or 2 would get what is meant for standard output or the
log (event-reactor(7), "Standard descriptors").  Started with an open
files limit below 256, the daemons raise it, or exit 71 when its hard
limit is lower (event-router(8), event-sub(8), EXIT STATUS); before, libzmq
aborted on EMFILE at start."""

import copy
import os
import re
import resource
import subprocess
import unittest

import harness as h

# exec the rest with descriptors 0, 1 and 2 closed
CLOSED = ["/bin/sh", "-c", 'exec "$@" <&- >&- 2>&-', "sh"]


def std_targets(pid):
    return [os.readlink("/proc/%d/fd/%d" % (pid, fd)) for fd in (0, 1, 2)]


class ClosedStandardDescriptors(h.RouterTestCase):

    def test_fire_event_with_standard_output_closed(self):
        # fire-event(1): 74 when the reply cannot be written, and the event
        # is in; before, ZeroMQ's first eventfd took descriptor 1 and the
        # reply was written into it ("Invalid argument")
        cp = subprocess.run(
            ["/bin/sh", "-c", 'exec "$@" >&-', "sh", h.binary("fire-event"),
             "-u", self.router.rep, "-e", "stdout.closed"],
            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(cp.returncode, 74, cp.stderr)
        self.assertEqual(cp.stderr, b"fire-event: cannot write the stamped "
                         b"event to standard output: Bad file descriptor\n")
        h.wait_until(lambda: h.db_query(
            self.router.store_path, "SELECT count(*) FROM events WHERE "
            "event_type = 'stdout.closed'")[0][0] == 1,
            what="the event fire-event could not print, stored")

    def test_router_with_all_three_closed(self):
        holders = [h.free_port_holder() for _ in range(3)]
        cfg = copy.deepcopy(self.router.config)
        cfg["store"]["path"] = os.path.join(self.tmp, "closed.db")
        cfg["aggregator"]["config"]["port"] = holders[0][1]
        cfg["outputs"] = cfg["outputs"][:1]
        cfg["outputs"][0]["config"]["port"] = holders[1][1]
        cfg["feeds"]["feeders"][0]["config"]["uri"] = \
            "tcp://127.0.0.1:%d" % holders[2][1]
        path = h.write_json(os.path.join(self.tmp, "closed.json"), cfg)
        for s, _ in holders:
            s.close()
        d = h.Daemon("event-router", CLOSED + [h.binary("event-router"),
                     "-c", path, "-l", "debug"], self.tmp)
        self.daemons.append(d)
        rep = "tcp://127.0.0.1:%d" % holders[2][1]     # ZMQInput: REP
        # its readiness: the reply to a request (no log to read)
        h.wait_until(lambda: h.fire(["-u", rep, "-e", "closed.std", "-t",
                                     "1000"]).returncode == 0,
                     what="a reply from the router started with 0-2 closed")
        self.assertEqual(std_targets(d.proc.pid), ["/dev/null"] * 3)
        self.assertGreaterEqual(h.db_query(
            cfg["store"]["path"], "SELECT count(*) FROM events WHERE "
            "event_type = 'closed.std'")[0][0], 1)
        d.stop()

    def test_event_sub_with_all_three_closed(self):
        tmp = self.tmp
        handlers = h.write_json(os.path.join(tmp, "std-handlers.json"), {
            "std.closed": [{"driver": "shell",
                            "handler": "%s %s/std.jsonl" % (h.RECORD_ARGV,
                                                           tmp)}]})
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri, "framing": "topic"}
        path = h.write_json(os.path.join(tmp, "std-sub.json"), cfg)
        n = self.router.subscriptions(self.router.sub_uri)
        sub = h.Sub(tmp, path, handlers, self.router.sub_uri, wrap=CLOSED)
        self.daemons.append(sub)
        self.router.wait_subscriptions(self.router.sub_uri, n + 1)
        self.assertEqual(std_targets(sub.proc.pid), ["/dev/null"] * 3)
        cp = h.fire(["-u", self.router.rep, "-e", "std.closed"])
        self.assertEqual(cp.returncode, 0, cp)
        ev_id = self.assertStamped(cp.stdout.strip())["id"]
        rows = h.wait_results(self.router.store_path, ev_id, 1)
        self.assertEqual([r["status"] for r in rows], ["ok"], rows)
        sub.stop()


class OpenFilesLimit(h.RouterTestCase):

    def limited(self, soft, hard):
        def pre():
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        return pre

    def sub_argv(self):
        handlers = h.write_json(os.path.join(self.tmp, "nofile-h.json"),
                                {"*": [{"driver": "shell",
                                        "handler": "true"}]})
        cfg = dict(self.router.config)
        cfg["subscriber"] = {"uri": self.router.sub_uri,
                             "framing": "topic"}
        path = h.write_json(os.path.join(self.tmp, "nofile-sub.json"), cfg)
        return [h.binary("event-sub"), "-c", path, "-e", handlers]

    def test_a_hard_limit_below_256_exits_71(self):
        for argv in ([h.binary("event-router"), "-c",
                      self.router.config_path], self.sub_argv()):
            with self.subTest(prog=argv[0]):
                cp = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, timeout=30,
                                    preexec_fn=self.limited(16, 16))
                self.assertEqual(cp.returncode, 71, cp.stderr)
                self.assertRegex(
                    cp.stderr.decode(), r"\] ERROR the open files limit "
                    r"\(RLIMIT_NOFILE\) is 16 and can be raised to 16 only: "
                    r"a daemon needs 256 \(ulimit -n, systemd's "
                    r"LimitNOFILE=\)\n$")

    def test_a_low_soft_limit_is_raised(self):
        n = self.router.subscriptions(self.router.sub_uri)
        argv = self.sub_argv()
        d = h.Sub(self.tmp, argv[2], argv[4], self.router.sub_uri,
                  wrap=["prlimit", "--nofile=16:4096", "--"])
        self.daemons.append(d)
        d.wait_log(r"INFO open files limit \(RLIMIT_NOFILE\) raised from 16 "
                   r"to 256$")
        self.router.wait_subscriptions(self.router.sub_uri, n + 1)
        with open("/proc/%d/limits" % d.proc.pid) as f:
            row = re.search(r"Max open files\s+(\d+)\s+(\d+)", f.read())
        self.assertEqual(row.groups(), ("256", "4096"))
        d.stop()


if __name__ == "__main__":
    unittest.main()
