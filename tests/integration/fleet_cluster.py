#!/usr/bin/python3
"""make check-fleet: a fleet on a 3-node RabbitMQ cluster (rabbit.Cluster,
one machine: distinct node names, ports and data directories, one Erlang
cookie), one router with the amqp output (to node 0), three event-subs
with -u amqp://, one per node, each with an exclusive pyfunc handler and
another, each in a network namespace of its own (NetNs: a veth pair to
the host, whose end its node listens on), as on hosts of their own; where
ip(8) cannot make one (not root), separate processes, and the closing
line says so.  10,000 events, pushed in three parts:

1. 3,000, and one event-sub killed with SIGKILL while it runs them
   (started again after part 2);
2. 3,000, and node 2 stopped under them, then started again;
3. 4,000 with the whole cluster down for 30 s (the router's REP answers
   meanwhile and its spool keeps them), then started again.

Then every event ran the exclusive handler once across the fleet and
the other once on each event-sub, but for repeats of runs in flight,
each marked redelivered.  Not in make check (about 3 minutes, most of it
the cluster's starts and the 30 s); prints the run time and the repeats.

    ER_BUILD_DIR=build /usr/bin/python3 tests/integration/fleet_cluster.py
"""

import collections
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
import rabbit  # noqa: E402

N = 10000
PARTS = (3000, 3000, 4000)
DOWN_S = 30
MODULE = '''
def excl(event):
    return None


def each(event):
    return None
'''


def ip(*args):
    """ip(8); the CompletedProcess (text)."""
    return subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=30)


class NetNs:
    """Network namespace I of this run for an event-sub: a veth pair, the
    host's end .1/30 (its node's listener takes it), the namespace's .2/30,
    and lo up; wrap() runs a command in it.  Inside it, nsenter(1) rather
    than "ip netns exec", which also makes a mount namespace and fails
    where / is not a mount point (a chroot)."""

    def __init__(self, i):
        pid = os.getpid()
        self.name = "er-fleet-%d-%d" % (pid, i)
        net = "10.%d.%d" % (200 + pid % 50, 10 + i)
        self.host, self.addr = net + ".1", net + ".2"
        self.veth = ("erh%d-%d" % (pid % 100000, i),
                     "ern%d-%d" % (pid % 100000, i))

    def create(self):
        """None, or why it cannot be made (the rest undone)."""
        h_end, n_end = self.veth
        inside = ("nsenter", "--net=/run/netns/" + self.name, "ip")
        for args in (("ip", "netns", "add", self.name),
                     ("ip", "link", "add", h_end, "type", "veth", "peer",
                      "name", n_end),
                     ("ip", "link", "set", n_end, "netns", self.name),
                     ("ip", "addr", "add", self.host + "/30", "dev", h_end),
                     ("ip", "link", "set", h_end, "up"),
                     inside + ("addr", "add", self.addr + "/30", "dev",
                               n_end),
                     inside + ("link", "set", n_end, "up"),
                     inside + ("link", "set", "lo", "up")):
            try:
                cp = subprocess.run(args, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    timeout=30)
            except OSError as e:
                cp = subprocess.CompletedProcess(args, 1, str(e))
            if cp.returncode != 0:
                self.close()
                return "%s: %s" % (" ".join(args), cp.stdout.strip())
        return None

    def wrap(self):
        return ["nsenter", "--net=/run/netns/" + self.name]

    def close(self):
        ip("netns", "del", self.name)
        ip("link", "del", self.veth[0])     # gone with the namespace


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class FleetCluster(unittest.TestCase, h.TempDirMixin):

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.daemons = []
        self.addCleanup(self.remove_tmpdir, self.tmp)
        self.nets, self.no_netns = [], None
        for i in range(3):
            n = NetNs(i)
            self.no_netns = n.create()
            if self.no_netns is not None:
                break
            self.nets.append(n)
            self.addCleanup(n.close)
        if self.no_netns is not None:
            self.nets = []
        self.cluster = rabbit.Cluster(
            self.tmp, addresses=[(n.host,) for n in self.nets] or None)
        self.addCleanup(self.cluster.close)
        self.addCleanup(lambda: h.stop_all(self.daemons))
        self.hdir = os.path.join(self.tmp, "handlers")
        os.makedirs(self.hdir)
        with open(os.path.join(self.hdir, "fl.py"), "w") as f:
            f.write(MODULE)
        self.handlers = h.write_json(os.path.join(self.tmp, "h.json"), {
            "*": [{"driver": "pyfunc", "handler": "fl.excl",
                   "exclusive": True},
                  {"driver": "pyfunc", "handler": "fl.each"}]})

    def router(self):
        cfg = h.make_config(self.tmp, extra={"outputs": [
            {"handler": "zeromq", "config": {
                "listen_address": "127.0.0.1", "port": 0,
                "framing": "topic"}},
            {"handler": "amqp", "config": {
                "url": self.cluster.nodes[0].url,
                "spool": os.path.join(self.tmp, "amqp.spool")}}]},
            store_path=os.path.join(self.tmp, "router.db"))
        r = h.Router(self.tmp, cfg, level="info")
        self.daemons.append(r)
        return r.wait_ready()

    def sub(self, i):
        name = "sub%d" % i
        db = os.path.join(self.tmp, name + ".db")
        cpath = h.write_json(os.path.join(self.tmp, name + ".json"),
                             h.make_config(self.tmp, store_path=db, extra={
                                 "subscriber": {"name": name,
                                                "python_workers": 2,
                                                "shutdown_grace": 5}}))
        node = self.cluster.nodes[i]
        if self.nets:       # its node through its veth, as another host
            s = h.Sub(self.tmp, cpath, self.handlers,
                      node.url_at(self.nets[i].host), level="info",
                      extra_args=["--event-handlers", self.hdir],
                      wrap=self.nets[i].wrap())
        else:
            s = h.Sub(self.tmp, cpath, self.handlers, node.url,
                      level="info", extra_args=["--event-handlers", self.hdir])
        s.db = db
        self.daemons.append(s)
        return s.wait_ready(timeout=60)

    def push(self, r, n, start):
        sock = h.zsock(h.zmq.PUSH, r.pull)
        try:
            for i in range(start, start + n):
                sock.send(json.dumps({"event_type": "fleet.cluster",
                                      "payload": {"i": i}}).encode())
        finally:
            sock.close(10000)

    @staticmethod
    def runs(db, handler):
        out = collections.defaultdict(list)
        for row in h.db_query(db, "SELECT event_id, redelivered FROM results "
                              "WHERE handler = ? AND status = 'ok'",
                              (handler,)) or []:
            out[row[0].decode()].append(row[1])
        return out

    def count(self, dbs, handler):
        return len(set().union(*(self.runs(db, handler) for db in dbs)))

    def wait(self, predicate, timeout, what, interval=0.2):
        """h.wait_until; on a timeout, the fleet's state in the failure:
        each event-sub's runs and the end of its log, the queues."""
        try:
            h.wait_until(predicate, timeout, what, interval=interval)
        except h.HarnessError as e:
            state = [str(e)]
            for d in self.daemons:
                db = getattr(d, "db", None)
                name = d.name if db is None else os.path.basename(db)
                if db is not None:
                    state.append("%s: fl.excl %d, fl.each %d" % (
                        name, self.count([db], "fl.excl"),
                        self.count([db], "fl.each")))
                state.append("--- %s log (end) ---\n%s" % (
                    name, "\n".join(d.log_lines()[-15:])))
            for b in self.cluster.nodes:
                if b.proc is not None and b.proc.poll() is None:
                    state.append("queues on %s (ready, unacknowledged): %r"
                                 % (b.node, b.list_queues()))
                    break
            raise h.HarnessError("\n".join(state)) from None

    def check(self, ids, runs, what):
        """Every event ran; each event's first delivery at most once; the
        repeats marked redelivered.  Returns the repeats."""
        self.assertEqual(set(runs) & ids, ids, what)
        self.assertEqual([i for i, f in runs.items() if f.count(0) > 1], [],
                         what)
        return sum(f.count(1) for f in runs.values())

    def test_fleet_on_a_cluster(self):
        t0 = time.monotonic()
        self.cluster.start()
        t_up = time.monotonic() - t0
        r = self.router()
        subs = [self.sub(i) for i in range(3)]
        dbs = [s.db for s in subs]
        if self.nets:
            ours = os.readlink("/proc/self/ns/net")
            nets = {os.readlink("/proc/%d/ns/net" % s.proc.pid)
                    for s in subs}
            self.assertEqual(len(nets - {ours}), 3, nets)
        # 1: an event-sub killed with SIGKILL mid-stream
        self.push(r, PARTS[0], 0)
        # every event comes to sub1's own queue (its exclusive runs are
        # its share of the group's queue, which a busy machine may make
        # small: 270 of 3000 in one CI run)
        self.wait(lambda: self.count([dbs[1]], "fl.each") >= 300, 60,
                  "sub1's first runs")
        subs[1].kill()
        # 2: node 2 (sub2's) stopped under the next part, then started
        self.push(r, PARTS[1], PARTS[0])
        self.wait(lambda: self.count([dbs[0]], "fl.each")
                  >= PARTS[0] + 300, 60, "part 2 under way")
        self.cluster.nodes[2].stop()
        subs[2].wait_log(r"WARNING amqp: lost the broker ", timeout=30)
        self.cluster.nodes[2].start()
        subs[1] = self.sub(1)
        # 3: the whole cluster down for DOWN_S s
        self.wait(lambda: self.count(dbs, "fl.excl") >= sum(PARTS[:2]),
                  120, "parts 1 and 2's exclusive runs", interval=0.5)
        self.cluster.stop()
        down = time.monotonic()
        self.push(r, PARTS[2], sum(PARTS[:2]))
        # the router answers REP meanwhile
        sock = h.zsock(h.zmq.REQ, r.rep)
        try:
            reply = json.loads(h.request(sock, json.dumps(
                {"event_type": "fleet.rep"}).encode()))
        finally:
            sock.close(0)
        self.assertNotIn("error", reply)
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - down)))
        self.cluster.start()
        for s in subs:
            s.wait_log(r"amqp: broker amqp://\S+ is back after", timeout=90)
        total = N + 1
        self.wait(lambda: self.count(dbs, "fl.excl") >= total and
                  all(self.count([db], "fl.each") >= total for db in dbs),
                  120, "every event's runs", interval=1)
        stored = {row[0].decode() for row in h.db_query(
            r.store_path, "SELECT id FROM events")}
        self.assertEqual(len(stored), total)
        excl = collections.defaultdict(list)
        for db in dbs:
            for i, f in self.runs(db, "fl.excl").items():
                excl[i] += f
        again = [self.check(stored, excl, "exclusive")]
        again += [self.check(stored, self.runs(db, "fl.each"), db)
                  for db in dbs]
        # repeats: no more than the messages unacknowledged (prefetch 16
        # a queue) when sub1 died, node 2 stopped and the cluster stopped
        self.assertLessEqual(again[0], 16 * 5, again)
        for n in again[1:]:
            self.assertLessEqual(n, 16 * 2, again)
        elapsed = time.monotonic() - t0
        sys.stderr.write("\nfleet_cluster: %d events, cluster up in %.1f s, "
                         "run %.1f s; repeats (redelivered): exclusive %d, "
                         "others %s; event-subs %s\n"
                         % (total, t_up, elapsed, again[0], again[1:],
                            "each in a network namespace of its own"
                            if self.nets else "in this network namespace "
                            "(%s)" % self.no_netns))


if __name__ == "__main__":
    unittest.main()
