"""A proper Unix service: --check, --version, -D with pidfiles, the init.d
script's start/status/reload/stop cycle and make install (issue 7)."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import (REPO, RECORD_ARGV, binary, build_dir, fire,
                     free_port_holder, make_config, read_records,
                     wait_until, with_user, write_json)

EX_CONFIG = 78


def free_ports(n):
    holders = [free_port_holder() for _ in range(n)]
    ports = [p for _, p in holders]
    for s, _ in holders:
        s.close()
    return ports


def fixed_config(tmpdir, pull, rep, pub):
    """Fixed ports: pub is the topic-framed output, event-sub's."""
    cfg = make_config(tmpdir, subscriber_uri="tcp://127.0.0.1:%d" % pub)
    cfg["aggregator"]["config"]["port"] = pull
    cfg["outputs"][1]["config"]["port"] = pub
    cfg["feeds"]["feeders"][0]["config"]["uri"] = "tcp://127.0.0.1:%d" % rep
    # -D logs here when nothing listens on /dev/log
    cfg["logging"] = {"dir": os.path.join(tmpdir, "logs")}
    return cfg


def run(argv, timeout=30, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, env=e,
                          text=True)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


class ServiceCase(unittest.TestCase):
    """A temporary directory; the daemons whose pids are in self.pids are
    killed afterwards.  (No tests of its own: test_service_logs uses it.)"""
    prefix = "er-svc-"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.prefix)
        self.pids = []

    def tearDown(self):
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *names):
        return os.path.join(self.tmp, *names)


class ServiceTest(ServiceCase):
    # --check and --version -------------------------------------------
    def test_version(self):
        # the version the man pages print: include/daemon.h's ER_VERSION
        with open(os.path.join(REPO, "include", "daemon.h")) as f:
            version = re.search(r'#define ER_VERSION "([^"]+)"',
                                f.read()).group(1)
        for prog, page in (("event-router", "event-router.8"),
                           ("event-sub", "event-sub.8"),
                           ("fire-event", "fire-event.1")):
            cp = run([binary(prog), "--version"])
            self.assertEqual(cp.returncode, 0, cp.stderr)
            self.assertEqual(cp.stdout, "%s %s\n" % (prog, version))
            with open(os.path.join(REPO, "man", page)) as f:
                self.assertIn('.Dq %s %s\n' % (prog, version), f.read())

    def test_router_usage_errors(self):
        # event-router(8), EXIT STATUS 64
        for argv in (["--bogus"], ["extra-argument"], ["-l", "loud"]):
            with self.subTest(argv=argv):
                cp = run([binary("event-router")] + argv + ["--check"])
                self.assertEqual(cp.returncode, 64, cp.stderr)
                self.assertNotEqual(cp.stderr, "")

    def test_check_on_the_defaults(self):
        # no -c and no /etc/event-reactor/config.json: the defaults (as
        # root that is a refusal without a user: test_users; here, nobody)
        if os.path.exists("/etc/event-reactor/config.json"):
            self.skipTest("/etc/event-reactor/config.json exists here")
        argv = [binary("event-router"), "--check"]
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                    "--clear-groups"] + argv
        cp = run(argv)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.splitlines()[0],
                         "(defaults): configuration OK")

    def test_check_good_and_bad_config(self):
        good = write_json(self.path("good.json"), make_config(self.tmp))
        cp = run([binary("event-router"), "--check", "-c", good])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("configuration OK", cp.stdout)

        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{"aggregator": {"config": {\n  "port": "45454"}}}\n')
        for prog in ("event-router", "event-sub"):
            cp = run([binary(prog), "--check", "-c", bad])
            self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
            self.assertIn("%s:2:11: \"port\" must be an integer" % bad,
                          cp.stderr)

    def test_check_warns_about_unknown_and_misplaced_keys(self):
        path = self.path("unk.json")
        with open(path, "w") as f:
            f.write(with_user(
                '{"logging": {"level": "DEBUG"},\n'
                ' "limits": {"max_event_sizee": 5},\n'
                ' "feeds": {"feederz": []},\n'
                ' "aggregator": {"cfg": {}},\n'
                ' "outputs": [{"handler": "zeromq", "colour": 1}],\n'
                ' "store": {"type": "none", "ttl_days": 3}}\n'))
        cp = run([binary("event-router"), "--check", "-c", path])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        for where, what in (
                ("1:14", 'unknown logging option "level" ignored'),
                ("2:13", 'unknown limits option "max_event_sizee" ignored'),
                ("3:12", 'unknown feeds option "feederz" ignored'),
                ("4:17", 'unknown aggregator option "cfg" ignored'),
                ("5:36", 'unknown output option "colour" ignored'),
                ("6:28", '"ttl_days" applies to the mongodb store only; '
                         'ignored for type "none"')):
            self.assertIn("WARNING %s:%s: %s" % (path, where, what),
                          cp.stderr)

    def test_check_warns_about_the_keys_of_another_store(self):
        """event-reactor.conf(5), "store": a key of one store on a store
        of another type is checked, then ignored with a warning naming
        the store it applies to."""
        path = self.path("stores.json")
        with open(path, "w") as f:
            f.write(with_user('{"store": {"type": "mongodb",\n'
                              '  "uri": "mongodb://127.0.0.1:1/er",\n'
                              '  "path": "%s"}}\n' % self.path("ev.db")))
        cp = run([binary("event-router"), "--check", "-c", path])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn('WARNING %s:3:3: "path" applies to the sqlite store '
                      'only; ignored for type "mongodb"' % path, cp.stderr)
        self.assertNotIn("mongodb store only", cp.stderr)
        with open(path, "w") as f:
            f.write(with_user('{"store": {"type": "none", "path": "x.db",\n'
                              '  "spool_max": 3}}\n'))
        cp = run([binary("event-router"), "--check", "-c", path])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        for where, what in (("1:28", '"path" applies to the sqlite store '
                                     'only; ignored for type "none"'),
                            ("2:3", '"spool_max" applies to the mongodb '
                                    'store only; ignored for type "none"')):
            self.assertIn("WARNING %s:%s: %s" % (path, where, what),
                          cp.stderr)
        # checked all the same: a bad value of another store's key
        with open(path, "w") as f:
            f.write('{"store": {"type": "sqlite", "spool_max": 0}}\n')
        cp = run([binary("event-router"), "--check", "-c", path])
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertIn('%s:1:43: "spool_max" must be an integer from 1 to '
                      '1000000000' % path, cp.stderr)

    def test_check_gives_the_ranges_the_manual_gives(self):
        # event-reactor.conf(5): each range and limit, as --check says it
        handlers = write_json(self.path("h.json"), {"*": [
            {"driver": "shell", "handler": "true"}]})
        zmq = [{"handler": "ZMQInput",
                "config": {"uri": "tcp://127.0.0.1:%d" % (20000 + i)}}
               for i in range(17)]
        http = [{"handler": "HTTPInput",
                 "config": {"port": 20000 + i, "allow_anonymous": True}}
                for i in range(9)]
        for extra, msg in (
                ({"subscriber": {"max_concurrency": 0}},
                 '"max_concurrency" must be an integer from 1 to 4096'),
                ({"subscriber": {"queue_size": 0}},
                 '"queue_size" must be an integer from 1 to 10000000'),
                ({"subscriber": {"shutdown_grace": -1}},
                 '"shutdown_grace" must be a number from 0 to 86400'),
                ({"subscriber": {"python_workers": 257}},
                 '"python_workers" must be an integer from 1 to 256'),
                ({"subscriber": {"python_max_rss_mb": 15}},
                 '"python_max_rss_mb" must be an integer from 16 to 1048576'),
                ({"limits": {"max_event_size": 63}},
                 '"max_event_size" must be an integer from 64 to 268435456'),
                ({"feeds": {"feeders": zmq}}, "more than 16 ZMQInput feeders"),
                ({"feeds": {"feeders": http}},
                 "more than 8 AMQPInput and HTTPInput feeders")):
            for prog in ("event-router", "event-sub"):
                with self.subTest(prog=prog, msg=msg):
                    path = write_json(self.path("r.json"),
                                      dict(extra, user="root"))
                    cp = run([binary(prog), "--check", "-c", path, "-e",
                              handlers] if prog == "event-sub" else
                             [binary(prog), "--check", "-c", path])
                    self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                    self.assertRegex(cp.stderr, r" ERROR %s:\d+:\d+: %s\n"
                                     % (re.escape(path), re.escape(msg)))
        amqp = {"handler": "AMQPInput",
                "config": {"url": "amqp://a:b@127.0.0.1:5672/"}}
        for extra, msg in (
                ({"feeds": {"feeders": [dict(amqp, config=dict(
                    amqp["config"], bindings=["x%d" % i
                                              for i in range(17)]))]}},
                 "more than 16 bindings"),
                ({"feeds": {"feeders": [dict(amqp, config=dict(
                    amqp["config"], bindings=["x" * 256]))]}},
                 "exchange name longer than 255 bytes"),
                ({"aggregator": {"config": {
                    "uri": "tcp://127.0.0.1:" + "1" * 300}}},
                 '"uri" is longer than 255 bytes')):
            with self.subTest(msg=msg):
                path = write_json(self.path("r.json"),
                                  dict(extra, user="root"))
                cp = run([binary("event-router"), "--check", "-c", path])
                self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                self.assertRegex(cp.stderr, r" ERROR %s:\d+:\d+: %s\n"
                                 % (re.escape(path), re.escape(msg)))
        cfg = write_json(self.path("r.json"), {"user": "root"})
        for entry, msg in (
                ({"env": {"A=B": "x"}},
                 '"A=B" is not a valid environment variable name'),
                ({"group": "no-such-group"}, 'unknown group "no-such-group"'),
                ({"env": {"ER_EVENT_HOPS": "0"}},
                 "ER_EVENT_HOPS is set by event-sub for each run")):
            with self.subTest(msg=msg):
                path = write_json(self.path("hx.json"), {"*": [dict(
                    {"driver": "shell", "handler": "true"}, **entry)]})
                cp = run([binary("event-sub"), "--check", "-c", cfg, "-e",
                          path])
                self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                self.assertRegex(cp.stderr, r" ERROR %s:\d+:\d+: %s\n"
                                 % (re.escape(path), re.escape(msg)))
        # an HTTPInput with no credentials and no allow_anonymous: said
        path = write_json(self.path("r.json"), {"user": "root", "feeds": {
            "feeders": [{"handler": "HTTPInput", "config": {"port": 0}}]}})
        cp = run([binary("event-router"), "--check", "-c", path])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertRegex(cp.stderr, r' WARNING %s:\d+:\d+: HTTPInput without '
                         r'"secret" or "token": every request is refused '
                         r'with 401 \(set "allow_anonymous": true to accept '
                         r'them\)\n' % re.escape(path))

    def test_check_refuses_endpoints_that_cannot_work(self):
        cases = [
            ('{"aggregator": {"config": {"listen_address": "not-an-ip"}}}',
             '1:46: "tcp://not-an-ip:45454": cannot listen on "not-an-ip": '
             'not an IP address, * or a network interface of this machine'),
            ('{"outputs": [{"handler": "zeromq", "config": '
             '{"uri": "bogus://x"}}]}',
             '1:54: "bogus://x" is not a ZeroMQ endpoint'),
            ('{"feeds": {"feeders": [{"handler": "HTTPInput", "config": '
             '{"listen_address": "not-an-ip", "allow_anonymous": true}}]}}',
             '1:78: "not-an-ip" is not a numeric IPv4 or IPv6 address'),
            ('{"subscriber": {"uri": "tcp://127.0.0.1:http"}}',
             '1:24: "tcp://127.0.0.1:http": the port to connect to must be '
             '1..65535'),
        ]
        for text, msg in cases:
            with self.subTest(msg=msg):
                path = self.path("ep.json")
                with open(path, "w") as f:
                    f.write(text)
                cp = run([binary("event-router"), "--check", "-c", path])
                self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                self.assertIn("%s:%s" % (path, msg), cp.stderr)
        # a file that cannot be read: file: reason (event-reactor.conf(5))
        big = self.path("big.json")
        with open(big, "w") as f:
            f.write("{}" + " " * (4 << 20))
        for path, why in ((self.path("nope.json"), "No such file or directory"),
                          (self.tmp, "Is a directory"),
                          (big, "File too large")):
            for prog in ("event-router", "event-sub"):
                with self.subTest(prog=prog, why=why):
                    cp = run([binary(prog), "--check", "-c", path])
                    self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                    self.assertRegex(cp.stderr.splitlines()[-1],
                                     r" ERROR %s: %s$" % (re.escape(path),
                                                          why))
        cp = run([binary("event-sub"), "--check", "-u", "bogus://x", "-c",
                  self.path("nope.json")])
        self.assertEqual(cp.returncode, 64, cp.stderr)
        self.assertIn('event-sub: -u "bogus://x" is not a ZeroMQ endpoint',
                      cp.stderr)

    def test_check_handlers(self):
        cfg = write_json(self.path("c.json"), make_config(self.tmp))
        good = write_json(self.path("h.json"), {
            "*": [{"driver": "shell", "handler": "true"}]})
        cp = run([binary("event-sub"), "--check", "-c", cfg, "-e", good])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("1 pattern, 1 handler: OK", cp.stdout)
        bad = self.path("bad-h.json")
        with open(bad, "w") as f:
            f.write('{"*": [\n {"driver": "sh", "handler": "true"}]}\n')
        cp = run([binary("event-sub"), "--check", "-c", cfg, "-e", bad])
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertIn('%s:2:13: unknown driver "sh"' % bad, cp.stderr)
        # a range as event-reactor.conf(5) gives it, not 2.6784e+06
        with open(bad, "w") as f:
            f.write('{"*": [\n {"driver": "shell", "handler": "true", '
                    '"timeout": 0}]}\n')
        cp = run([binary("event-sub"), "--check", "-c", cfg, "-e", bad])
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertIn('%s:2:52: "timeout" must be a number from 0.001 to '
                      '2678400' % bad, cp.stderr)

    def test_check_files_that_are_not_plain_json(self):
        # event-reactor.conf(5): a file that cannot be read is refused
        # with "file: reason"; none holds the reader (a FIFO blocked
        # --check and a SIGHUP reload for good)
        cfg = write_json(self.path("c.json"), make_config(self.tmp))
        fifo = self.path("fifo.json")
        os.mkfifo(fifo)
        bom, nul = self.path("bom.json"), self.path("nul.json")
        nulkey = self.path("nulkey.json")
        with open(nulkey, "w") as f:
            f.write('{"a\\u0000b": []}')
        with open(bom, "wb") as f:
            f.write(b'\xef\xbb\xbf{"*": []}')
        with open(nul, "w") as f:
            f.write('{"*": [{"driver": "shell", "handler": "a\\u0000b"}]}')
        for path, why in (
                (fifo, "%s:1:1: '[' or '{' expected near end of file"),
                (bom, "%s:1:1: a UTF-8 byte order mark (BOM): JSON text "
                      "starts without one (RFC 8259)"),
                (nul, "%s:1:48: \\u0000 is not allowed in a string here"),
                (nulkey, "%s:1:11: \\u0000 is not allowed in a key")):
            with self.subTest(path=path):
                cp = run([binary("event-sub"), "--check", "-c", cfg, "-e",
                          path])
                self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                self.assertTrue(cp.stderr.endswith(
                    "ERROR %s\n" % (why % path)), cp.stderr)
        # a pipe whose writer stays silent: given up after 5 s
        writer = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE)
        self.addCleanup(writer.wait)
        self.addCleanup(writer.kill)
        fd = writer.stdout.fileno()
        cp = subprocess.run([binary("event-sub"), "--check", "-c", cfg,
                             "-e", "/dev/fd/%d" % fd], pass_fds=(fd,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=30)
        self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
        self.assertTrue(cp.stderr.endswith(
            "ERROR /dev/fd/%d: no end of file within 5 s (a FIFO, pipe or "
            "device whose writer keeps it open)\n" % fd), cp.stderr)

    # -D and pidfiles ---------------------------------------------------
    def start_daemon_router(self, cfg_path, pidfile):
        cp = run([binary("event-router"), "-D", "-p", pidfile, "-c",
                  cfg_path])
        return cp

    def test_daemon_writes_and_removes_pidfile(self):
        pull, rep, pub = free_ports(3)
        cfg = write_json(self.path("c.json"),
                         fixed_config(self.tmp, pull, rep, pub))
        pidfile = self.path("router.pid")
        cp = self.start_daemon_router(cfg, pidfile)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        pid = int(open(pidfile).read())
        self.pids.append(pid)
        self.assertTrue(pid_alive(pid))
        # -D returned only once ready: the REP input answers at once
        fe = fire(["-u", "tcp://127.0.0.1:%d" % rep, "-e", "svc.up",
                   "-t", "3000"])
        self.assertEqual(fe.returncode, 0, fe.stderr)
        # a second instance on the same pidfile refuses
        cp2 = self.start_daemon_router(cfg, pidfile)
        self.assertEqual(cp2.returncode, 73, cp2.stderr)    # EX_CANTCREAT
        self.assertIn("already running as pid %d" % pid, cp2.stderr)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(pid), 10, "router to exit")
        wait_until(lambda: not os.path.exists(pidfile), 5, "pidfile removal")

    def test_daemon_killed_before_ready_leaves_no_pidfile(self):
        # event-sub -D killed while its start-up check imports a slow
        # module: the waiting process says so and removes the pidfile,
        # which no process holds any more (it named the dead daemon)
        cfg = write_json(self.path("c.json"), make_config(self.tmp))
        pydir = self.path("py")
        os.makedirs(pydir)
        with open(os.path.join(pydir, "slow.py"), "w") as f:
            f.write("import time\ntime.sleep(60)\ndef f(e):\n    pass\n")
        handlers = write_json(self.path("h.json"), {
            "*": [{"driver": "pyfunc", "handler": "slow.f"}]})
        pidfile = self.path("sub.pid")
        p = subprocess.Popen([binary("event-sub"), "-D", "-p", pidfile, "-c",
                              cfg, "-e", handlers, "--event-handlers",
                              pydir], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        wait_until(lambda: os.path.exists(pidfile) and
                   open(pidfile).read().strip().isdigit(), 10,
                   "the daemon's pidfile")
        os.kill(int(open(pidfile).read()), signal.SIGKILL)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, err)
        self.assertTrue(err.endswith("the daemon exited before it was "
                                     "ready\n"), err)
        self.assertFalse(os.path.exists(pidfile))

    def test_pidfile_that_is_not_one_is_left_alone(self):
        # event-router(8), -p: a file that holds anything but a process
        # id (-p given the config file by mistake) is refused, kept
        cfg = write_json(self.path("c.json"), make_config(self.tmp))
        with open(cfg) as f:
            text = f.read()
        for prog in ("event-router", "event-sub"):
            with self.subTest(prog=prog):
                argv = [binary(prog), "-c", cfg, "-p", cfg]
                if prog == "event-sub":
                    argv += ["-e", write_json(self.path("h.json"), {})]
                cp = run(argv)
                self.assertEqual(cp.returncode, 73, cp.stderr)
                self.assertIn("ERROR pidfile %s: not a regular file holding "
                              "a process id: not overwritten\n" % cfg,
                              cp.stderr)
                with open(cfg) as f:
                    self.assertEqual(f.read(), text)

    def test_daemon_makes_relative_paths_absolute(self):
        # event-router(8), -D: it moves to /, so a relative pidfile and
        # store.path are taken from where it was started
        pull, rep, pub = free_ports(3)
        cfg = fixed_config(self.tmp, pull, rep, pub)
        cfg["store"]["path"] = "rel.db"
        write_json(self.path("c.json"), cfg)
        cp = subprocess.run([binary("event-router"), "-D", "-p", "rel.pid",
                             "-c", "c.json"], cwd=self.tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        pidfile = self.path("rel.pid")
        pid = int(open(pidfile).read())
        self.pids.append(pid)
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
        fe = fire(["-u", "tcp://127.0.0.1:%d" % rep, "-e", "svc.rel",
                   "-t", "3000"])
        self.assertEqual(fe.returncode, 0, fe.stderr)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(pid), 10, "router to exit")
        wait_until(lambda: not os.path.exists(pidfile), 5, "pidfile removal")
        con = sqlite3.connect(self.path("rel.db"))
        try:
            self.assertEqual(con.execute("SELECT event_type FROM events")
                             .fetchall(), [("svc.rel",)])
        finally:
            con.close()

    def test_daemon_sighup_reads_relative_paths_as_at_its_start(self):
        # event-sub -D moves to / too: a SIGHUP reads config.json's
        # relative paths from where it was started, so an unchanged file
        # changes nothing (its journal was taken as /rel.journal before)
        pull, rep, pub = free_ports(3)
        cfg = fixed_config(self.tmp, pull, rep, pub)
        cfg["subscriber"]["journal"] = "rel.journal"
        c = write_json(self.path("c.json"), cfg)
        write_json(self.path("h.json"), {})
        cp = self.start_daemon_router(c, self.path("router.pid"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.pids.append(int(open(self.path("router.pid")).read()))
        cp = subprocess.run([binary("event-sub"), "-D", "-p", "sub.pid",
                             "-c", "c.json", "-e", "h.json", "-l", "info"],
                            cwd=self.tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        pid = int(open(self.path("sub.pid")).read())
        self.pids.append(pid)
        self.assertTrue(os.path.exists(self.path("rel.journal")))
        log = self.path("logs", "event-sub.log")
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: "INFO reloaded: " in open(log).read(), 10,
                   "the reload's line in %s" % log)
        self.assertNotIn("WARNING reload: ", open(log).read())

    def test_daemon_bad_start_fails_with_reason(self):
        holder, port = free_port_holder()
        holder.listen()
        try:
            pull, pub = free_ports(2)
            cfg = write_json(self.path("c.json"),
                             fixed_config(self.tmp, pull, port, pub))
            pidfile = self.path("router.pid")
            cp = self.start_daemon_router(cfg, pidfile)
        finally:
            holder.close()
        self.assertEqual(cp.returncode, 69)     # EX_UNAVAILABLE, as without -D
        self.assertIn("cannot bind REP input tcp://127.0.0.1:%d: Address "
                      "already in use" % port, cp.stderr)
        self.assertFalse(os.path.exists(pidfile))

    def test_daemon_bad_config_fails_before_detaching(self):
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{"store": {"type": "postgres"}}')
        cp = run([binary("event-router"), "-D", "-c", bad])
        self.assertEqual(cp.returncode, EX_CONFIG)
        self.assertIn('%s:1:20: unknown store type "postgres"' % bad,
                      cp.stderr)

    # init.d ------------------------------------------------------------
    def test_initd_cycle(self):
        pull, rep, pub = free_ports(3)
        confdir = self.path("etc dir")      # one word each, quoted
        os.makedirs(os.path.join(confdir, "event-handlers"))
        write_json(os.path.join(confdir, "config.json"),
                   fixed_config(self.tmp, pull, rep, pub))
        rec1, rec2 = self.path("one.jsonl"), self.path("two.jsonl")
        handlers = os.path.join(confdir, "event-handlers.json")
        write_json(handlers, {"*": [{"driver": "shell",
                                     "handler": "%s %s" % (RECORD_ARGV, rec1)}]})
        env = {"SBINDIR": build_dir(), "CONFDIR": confdir,
               "RUNDIR": self.path("run"), "STOP_TIMEOUT": "10"}
        script = os.path.join(REPO, "init.d", "event-reactor")

        def initd(action):
            return run(["sh", script, action], env=env)

        cp = initd("status")
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        cp = initd("start")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        for name in ("event-router", "event-sub"):
            self.pids.append(int(open(self.path("run", name + ".pid")).read()))
        cp = initd("status")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("event-sub: running", cp.stdout)
        cp = initd("start")     # already running: still success
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("already running", cp.stdout)

        def fire_and_wait(path):
            def pred():
                fe = fire(["-u", "tcp://127.0.0.1:%d" % rep, "-e", "x.y",
                           "-t", "2000"])
                self.assertEqual(fe.returncode, 0, fe.stderr)
                eid = json.loads(fe.stdout)["id"]
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    if any(r["argv"] and eid in r["argv"][-1]
                           for r in read_records(path)):
                        return True
                    time.sleep(0.05)
                return False
            # event-sub may still be subscribing: fire until one arrives
            wait_until(pred, 20, "a handler run recorded in %s" % path)

        fire_and_wait(rec1)
        write_json(handlers, {"*": [{"driver": "shell",
                                     "handler": "%s %s" % (RECORD_ARGV, rec2)}]})
        cp = initd("reload")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        fire_and_wait(rec2)

        # a broken file: reload fails visibly, the daemon keeps running
        with open(handlers, "w") as f:
            f.write('{"*": [{"driver": "bogus", "handler": "x"}]}')
        cp = initd("reload")
        self.assertEqual(cp.returncode, 1, cp.stdout + cp.stderr)
        self.assertIn("event-sub: not reloaded: the configuration has errors",
                      cp.stderr)
        self.assertIn('%s:1:19: unknown driver "bogus"' % handlers, cp.stderr)
        fire_and_wait(rec2)

        cp = initd("stop")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        for pid in self.pids:
            self.assertFalse(pid_alive(pid))
        cp = initd("status")
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        cp = initd("stop")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)

        # after a crash, a pidfile whose pid another program now has: not
        # ours, neither "running" nor signalled, and start starts
        other = subprocess.Popen(["sleep", "300"], start_new_session=True)
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        with open(self.path("run", "event-sub.pid"), "w") as f:
            f.write("%d\n" % other.pid)
        cp = initd("status")     # the router is not running: 3
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        self.assertIn("event-sub: dead, but %s exists"
                      % self.path("run", "event-sub.pid"), cp.stdout)
        with open(self.path("run", "event-sub.pid"), "w") as f:
            f.write("%d\n" % other.pid)
        cp = initd("stop")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIsNone(other.poll())
        with open(self.path("run", "event-sub.pid"), "w") as f:
            f.write("%d\n" % other.pid)
        write_json(handlers, {"*": [{"driver": "shell",
                                     "handler": "%s %s" % (RECORD_ARGV, rec2)}]})
        cp = initd("start")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("event-sub: started", cp.stdout)
        for name in ("event-router", "event-sub"):
            self.pids.append(int(open(self.path("run", name + ".pid")).read()))
        cp = initd("stop")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIsNone(other.poll())
        # an empty pidfile (a daemon that left root empties the one it
        # cannot remove) names no process: not running, 3
        open(self.path("run", "event-sub.pid"), "w").close()
        cp = initd("status")
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        self.assertIn("event-sub: not running", cp.stdout)
        # LSB: excess arguments are 2
        cp = run(["sh", script, "status", "extra"], env=env)
        self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
        self.assertIn("usage: ", cp.stderr)

    # make install ------------------------------------------------------
    def test_make_install_layout(self):
        dest = self.path("dest")
        if os.geteuid() == 0:
            # a staged tree with its own user database gets the user
            os.makedirs(os.path.join(dest, "etc"))
            for f in ("passwd", "group", "shadow", "gshadow", "login.defs"):
                if os.path.exists("/etc/" + f):
                    shutil.copy("/etc/" + f, os.path.join(dest, "etc"))
        mk = ["make", "-C", REPO, "--no-print-directory",
              "BUILD=%s" % build_dir(), "DESTDIR=%s" % dest, "PREFIX=/usr",
              "sysconfdir=/etc"]
        cp = run(mk + ["install"], timeout=300)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        expect = ["usr/bin/fire-event", "usr/sbin/event-router",
                  "usr/sbin/event-sub", "etc/event-reactor/config.json",
                  "etc/event-reactor/event-handlers.json",
                  "etc/init.d/event-reactor",
                  "usr/lib/systemd/system/event-router.service",
                  "usr/lib/systemd/system/event-sub.service",
                  "var/lib/event-reactor"]
        for man in os.listdir(os.path.join(REPO, "man")):
            expect.append("usr/share/man/man%s/%s" % (man.rsplit(".", 1)[1],
                                                     man))
        for rel in expect:
            self.assertTrue(os.path.exists(os.path.join(dest, rel)), rel)
        self.assertTrue(os.access(os.path.join(dest, "usr/sbin/event-sub"),
                                  os.X_OK))
        initd = open(os.path.join(dest, "etc/init.d/event-reactor")).read()
        self.assertIn("SBINDIR=${SBINDIR:-/usr/sbin}", initd)
        unit = open(os.path.join(
            dest, "usr/lib/systemd/system/event-sub.service")).read()
        self.assertIn("ExecStart=/usr/sbin/event-sub", unit)
        self.assertNotIn("@", unit)
        self.assertIn("\nUser=event-reactor\nGroup=event-reactor\n", unit)
        if os.geteuid() == 0:
            users = [line.split(":") for line in
                     open(os.path.join(dest, "etc/passwd"))]
            mine = [u for u in users if u[0] == "event-reactor"]
            self.assertEqual(len(mine), 1, cp.stdout)
            uid, gid = int(mine[0][2]), int(mine[0][3])
            self.assertIn("add-user: created user event-reactor (uid %d)"
                          % uid, cp.stdout)
            self.assertEqual(mine[0][6].strip(), "/usr/sbin/nologin")
            self.assertLess(uid, 1000)          # a system user
            st = os.stat(os.path.join(dest, "var/lib/event-reactor"))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777),
                             (uid, gid, 0o750))
            # config.json holds secrets: root's, the service group reads
            st = os.stat(os.path.join(dest, "etc/event-reactor/config.json"))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777),
                             (0, gid, 0o640))
        else:
            st = os.stat(os.path.join(dest, "etc/event-reactor/config.json"))
            self.assertEqual(st.st_mode & 0o777, 0o640)

        # an operator's edit survives a second install
        conf = os.path.join(dest, "etc/event-reactor/config.json")
        with open(conf, "w") as f:
            f.write('{"logging": {"loglevel": "DEBUG"}}\n')
        cp = run(mk + ["install"], timeout=300)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("keeping existing", cp.stdout)
        if os.geteuid() == 0:
            self.assertIn("add-user: keeping existing user event-reactor",
                          cp.stdout)
        self.assertEqual(open(conf).read(),
                         '{"logging": {"loglevel": "DEBUG"}}\n')

        cp = run(mk + ["uninstall"], timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertFalse(os.path.exists(os.path.join(dest,
                                                     "usr/sbin/event-sub")))
        self.assertTrue(os.path.exists(conf))


if __name__ == "__main__":
    unittest.main()
