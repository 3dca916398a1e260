"""No root unless the operator names it (issue 16): a daemon started as root
takes config.json's "user" (default event-reactor), the router once its
sockets are bound, event-sub before it opens the store or, with handlers of
their own users, for every other run and its Python workers
(event-reactor.conf(5) "user", event-sub(8) "Users")."""

import grp
import http.client
import json
import os
import pwd
import re
import socket
import shutil
import sqlite3
import subprocess
import unittest

import harness as h

EX_CONFIG = 78
DEFAULT_USER = "event-reactor"


def ids(pid):
    """(real, effective, saved, fs) uids of pid, from /proc."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return tuple(int(x) for x in line.split()[1:])
    raise AssertionError("no Uid line for %d" % pid)


def kill_pidfile(path):
    """Kill the daemon whose pid path holds, if a failed test left one."""
    try:
        with open(path) as f:
            os.kill(int(f.read()), 9)
    except (OSError, ValueError):
        pass


def running_as(user):
    pw = pwd.getpwnam(user)
    return ("running as user %s (uid %d), group %s (gid %d)"
            % (user, pw.pw_uid, grp.getgrgid(pw.pw_gid).gr_name, pw.pw_gid))


@unittest.skipUnless(os.geteuid() == 0, "needs root")

def private_mounts():
    """Whether unshare(1) can make a private mount namespace here."""
    try:
        return subprocess.run(["unshare", "--mount", "--propagation",
                               "private", "true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False

class Users(unittest.TestCase, h.TempDirMixin):

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)
        os.chmod(self.tmp, 0o711)
        # the store's directory, writable by the users the daemons take
        self.state = os.path.join(self.tmp, "state")
        os.mkdir(self.state)
        os.chmod(self.state, 0o777)
        self.daemons = []
        self.addCleanup(self.stop)

    def stop(self):
        errors = h.stop_all(self.daemons)
        if errors:
            raise h.HarnessError("\n".join(errors))

    def path(self, name):
        return os.path.join(self.tmp, name)

    def config(self, user=None, group=None):
        cfg = h.make_config(self.tmp,
                            store_path=os.path.join(self.state, "events.db"))
        del cfg["user"]
        if user is not None:
            cfg["user"] = user
        if group is not None:
            cfg["group"] = group
        return cfg

    def router(self, user=None, wrap=(), group=None):
        r = h.Router(self.tmp, self.config(user, group), wrap=wrap)
        self.daemons.append(r)
        r.wait_ready()
        return r

    def sub(self, r, handlers, user=None):
        cfg = self.config(user)
        cfg["subscriber"] = {"uri": r.sub_uri, "framing": "topic",
                             "shutdown_grace": 3}
        cfg_path = h.write_json(self.path("sub.json"), cfg)
        hdir = os.path.join(self.tmp, "handlers")
        os.makedirs(hdir, exist_ok=True)
        with open(os.path.join(hdir, "who.py"), "w") as f:
            f.write("import os\n\ndef uid(event):\n    return os.getuid()\n")
        os.chmod(hdir, 0o755)
        hpath = h.write_json(self.path("handlers.json"), handlers)
        s = h.Sub(self.tmp, cfg_path, hpath, r.sub_uri,
                  extra_args=["--event-handlers", hdir])
        self.daemons.append(s)
        s.wait_ready()
        return s

    def fire(self, r, event_type):
        sock = h.zsock(h.zmq.REQ, r.rep)
        try:
            reply = json.loads(h.request(sock, json.dumps(
                {"event_type": event_type}).encode()))
        finally:
            sock.close(0)
        self.assertNotIn("error", reply)
        return reply

    def info(self, daemon, text):
        daemon.wait_log(r"INFO %s$" % h.re.escape(text),
                        what="INFO line %r" % text)

    def id_file(self, name):
        """A shell handler writing its uid into name (in a 0777 dir)."""
        out = os.path.join(self.state, name)
        return {"driver": "shell", "handler":
                "sh -c 'id -u > \"$0\"' %s" % out}, out

    def read_when_there(self, p):
        h.wait_until(lambda: os.path.exists(p) and os.path.getsize(p) > 0,
                     h.WAIT_TIMEOUT, "file %s" % p)
        with open(p) as f:
            return f.read().strip()

    # --------------------------------------------------------------------

    def test_router_takes_user_after_binding(self):
        nobody = pwd.getpwnam("nobody")
        r = self.router("nobody")
        self.info(r, running_as("nobody"))
        self.assertEqual(ids(r.proc.pid), (nobody.pw_uid,) * 4)
        ev = self.fire(r, "as.nobody")
        db = os.path.join(self.state, "events.db")
        self.assertEqual(os.stat(db).st_uid, nobody.pw_uid)
        # db_query gives text as bytes
        self.assertEqual(h.db_query(db, "SELECT id FROM events"),
                         [(ev["id"].encode(),)])

    def router_fails(self, user, store_path=None):
        """The router started with user (and store_path): its exit status
        and stderr."""
        cfg = self.config(user)
        if store_path is not None:
            cfg["store"]["path"] = store_path
        path = h.write_json(self.path("fails.json"), cfg)
        cp = subprocess.run([h.binary("event-router"), "-c", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=h.WAIT_TIMEOUT)
        return cp.returncode, cp.stderr.decode()

    def test_store_the_user_cannot_write(self):
        # an events.db left by root (a run as root, sqlite3(1)), then a
        # directory the user cannot create files in: the router, as
        # nobody, says who cannot write what, instead of SQLite's
        # "attempt to write a readonly database"
        db = os.path.join(self.state, "events.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t (x)")
        con.close()
        os.chmod(db, 0o644)
        rc, err = self.router_fails("nobody")
        self.assertEqual(rc, 69, err)
        self.assertIn(" ERROR store sqlite %s: opened read-only: user nobody "
                      "cannot write it (owner root, mode 0644)\n" % db, err)
        os.remove(db)
        os.chmod(self.state, 0o755)
        rc, err = self.router_fails("nobody")
        self.assertEqual(rc, 69, err)
        self.assertIn(" ERROR store sqlite %s: unable to open database file: "
                      "user nobody cannot create files in %s (owner root, "
                      "mode 0755)\n" % (db, self.state), err)
        self.assertFalse(os.path.exists(db))

    def immutable(self, path):
        """chattr +i path until the test ends (skipped where the file
        system or the user cannot)."""
        if subprocess.run(["chattr", "+i", path], stderr=subprocess.DEVNULL,
                          check=False).returncode != 0:
            self.skipTest("chattr +i unsupported here")
        self.addCleanup(subprocess.run, ["chattr", "-i", path], check=True)

    def test_immutable_store_file(self):
        # root can write any mode, not an immutable file (chattr +i): the
        # line gives the reason, not the owner and mode
        db = os.path.join(self.state, "events.db")
        sqlite3.connect(db).close()
        self.immutable(db)
        rc, err = self.router_fails("root")
        self.assertEqual(rc, 69, err)
        self.assertIn(" ERROR store sqlite %s: opened read-only: user root "
                      "cannot write it: Operation not permitted (immutable: "
                      "lsattr(1) shows the i attribute)\n" % db, err)

    def test_immutable_wal_file(self):
        # a router killed leaves events.db-wal: made immutable, it is
        # named, not the database file, which root can write
        r = self.router("root")
        r.kill()
        self.daemons.remove(r)
        db = os.path.join(self.state, "events.db")
        wal = db + "-wal"
        self.assertTrue(os.path.exists(wal))
        self.immutable(wal)
        rc, err = self.router_fails("root")
        self.assertEqual(rc, 69, err)
        self.assertRegex(err, r" ERROR store sqlite %s: [^\n]*: user root "
                         r"cannot write %s: Operation not permitted "
                         r"\(immutable: lsattr\(1\) shows the i attribute\)"
                         r"\n" % (re.escape(db), re.escape(wal)))

    def test_store_directory_a_dangling_link(self):
        link = os.path.join(self.state, "dang")
        os.symlink(os.path.join(self.state, "nowhere"), link)
        rc, err = self.router_fails("root", os.path.join(link, "events.db"))
        self.assertEqual(rc, 69, err)
        self.assertIn(": directory %s: No such file or directory: a symbolic "
                      "link to nothing\n" % link, err)

    def test_store_directory_in_an_immutable_one(self):
        imm = os.path.join(self.state, "imm")
        os.mkdir(imm)
        self.immutable(imm)
        rc, err = self.router_fails("root", os.path.join(imm, "sub", "e.db"))
        self.assertEqual(rc, 69, err)
        self.assertIn(": directory %s: No such file or directory (and user "
                      "root could not create it: %s: Operation not "
                      "permitted, immutable: lsattr(1) shows the i "
                      "attribute)\n" % (os.path.join(imm, "sub"), imm), err)

    def test_store_wal_a_directory(self):
        # SQLite says only "disk I/O error": which file, and why, follow
        db = os.path.join(self.state, "events.db")
        os.mkdir(db + "-wal")
        rc, err = self.router_fails("root", db)
        self.assertEqual(rc, 69, err)
        self.assertIn(" ERROR store sqlite %s: disk I/O error: user root "
                      "cannot write %s-wal: Is a directory\n" % (db, db), err)

    def test_store_directory_the_user_cannot_create(self):
        # the store's directory is missing and its parent is root's: the
        # line says why user nobody could not create it
        os.chmod(self.state, 0o755)
        db = os.path.join(self.state, "sub", "events.db")
        rc, err = self.router_fails("nobody", db)
        self.assertEqual(rc, 69, err)
        self.assertIn(": directory %s: No such file or directory (and user "
                      "nobody could not create it: %s: Permission denied)\n"
                      % (os.path.dirname(db), self.state), err)

    def test_pidfile_a_daemon_that_left_root_cannot_remove(self):
        # -p in a directory of root's: the daemon, as nobody, cannot
        # remove its pidfile; it empties it (a WARNING), and after a failed
        # -D start the waiting process removes it (it named a dead process)
        run = os.path.join(self.tmp, "run")
        os.mkdir(run, 0o755)
        pidfile = os.path.join(run, "event-router.pid")
        os.chmod(self.state, 0o755)
        cfg = self.config("nobody")
        cfg["store"]["path"] = os.path.join(self.state, "sub", "events.db")
        path = h.write_json(self.path("fails.json"), cfg)
        cp = subprocess.run([h.binary("event-router"), "-D", "-p", pidfile,
                             "-c", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=h.WAIT_TIMEOUT)
        self.assertEqual(cp.returncode, 69, cp.stderr)
        self.assertEqual(os.listdir(run), [])
        os.chmod(self.state, 0o777)
        r = h.Router(self.tmp, self.config("nobody"),
                     wrap=["sh", "-c", 'exec "$@" -p "$P"', "sh"],
                     env={"P": pidfile})
        self.daemons.append(r)
        r.wait_ready()
        with open(pidfile) as f:
            self.assertEqual(f.read(), "%d\n" % r.proc.pid)
        r.stop()
        self.assertTrue(r.find_log(
            r"WARNING pidfile %s: cannot remove it \(Permission denied\): "
            r"emptied, to name no process$" % re.escape(pidfile)))
        self.assertEqual(os.path.getsize(pidfile), 0)

    def low_port(self):
        for p in range(1023, 600, -1):     # a free privileged port
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", p))
                except OSError:
                    continue
                return p
        self.fail("no free port under 1024")

    def test_http_port_under_1024_for_a_non_root_start_with_the_capability(
            self):
        # event-reactor(7), "Running as a service": a unit that starts the
        # router as its user gives it CAP_NET_BIND_SERVICE (ambient)
        port = self.low_port()
        cfg = self.config()
        cfg["feeds"]["feeders"].append(
            {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": port, "allow_anonymous": True}})
        nobody = pwd.getpwnam("nobody")
        base = ["setpriv", "--reuid", str(nobody.pw_uid), "--regid",
                str(nobody.pw_gid), "--clear-groups"]
        r = h.Router(self.tmp, cfg, wrap=base)
        self.daemons.append(r)
        self.assertNotEqual(r.proc.wait(h.READY_TIMEOUT), 0)
        r.returncode = r.proc.returncode
        self.assertIn("HTTPInput hooks: cannot listen on 127.0.0.1:%d: "
                      "Permission denied" % port, r.log_text())
        r = h.Router(self.tmp, cfg, wrap=base + [
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service"])
        self.daemons.append(r)
        r.wait_ready()
        self.assertIn("http=http://127.0.0.1:%d" % port,
                      r.find_log(r"\bready pull=.*").group(0))

    def test_http_port_under_1024_bound_before_taking_user(self):
        port = self.low_port()
        cfg = self.config("nobody")
        cfg["feeds"]["feeders"].append(
            {"handler": "HTTPInput", "namespace": "hooks",
             "config": {"port": port, "allow_anonymous": True}})
        r = h.Router(self.tmp, cfg)
        self.daemons.append(r)
        r.wait_ready()
        self.info(r, running_as("nobody"))
        self.assertIn("http=http://127.0.0.1:%d" % port,
                      r.find_log(r"\bready pull=.*").group(0))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("POST", "/events", json.dumps(
                {"event_type": "low.port"}), {"Content-Type":
                                              "application/json"})
            resp = c.getresponse()
            self.assertEqual(resp.status, 202, resp.read())
        finally:
            c.close()

    def test_ipc_endpoints_given_to_the_user(self):
        # a directory only the service user reaches, its sockets bound by
        # root and given to that user: the user's clients connect, another
        # user's cannot reach them
        nobody = pwd.getpwnam("nobody")
        d = os.path.join(self.tmp, "run")
        os.mkdir(d, 0o750)
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
        cfg = self.config("nobody")
        cfg["aggregator"]["config"] = {"uri": "ipc://%s/pull" % d}
        cfg["feeds"]["feeders"][0]["config"] = {"uri": "ipc://%s/rep" % d}
        cfg["outputs"][0]["config"] = {"uri": "ipc://%s/pub" % d}
        r = h.Router(self.tmp, cfg)
        self.daemons.append(r)
        r.wait_ready()
        self.info(r, running_as("nobody"))
        for name in ("pull", "rep", "pub"):
            st = os.stat(os.path.join(d, name))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777),
                             (nobody.pw_uid, nobody.pw_gid, 0o770), name)

        def fire_as(user, event_type):
            pw = pwd.getpwnam(user)
            return subprocess.run(
                ["setpriv", "--reuid", str(pw.pw_uid), "--regid",
                 str(pw.pw_gid), "--clear-groups", h.binary("fire-event"),
                 "-u", "ipc://%s/rep" % d, "-t", "1500", "-e", event_type],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                timeout=30)
        cp = fire_as("nobody", "ipc.nobody")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        ev = json.loads(cp.stdout)
        cp = fire_as("daemon", "ipc.daemon")
        self.assertEqual(cp.returncode, 69, cp.stderr)
        db = os.path.join(self.state, "events.db")
        self.assertEqual(h.db_query(db, "SELECT id, event_type FROM events"),
                         [(ev["id"].encode(), b"ipc.nobody")])

    def test_sub_takes_user_when_no_handler_names_one(self):
        nobody = pwd.getpwnam("nobody")
        r = self.router("nobody")
        entry, out = self.id_file("uid")
        s = self.sub(r, {"who": [entry, {"driver": "pyfunc",
                                         "handler": "who.uid"}]}, "nobody")
        self.info(s, running_as("nobody"))
        self.assertEqual(ids(s.proc.pid), (nobody.pw_uid,) * 4)
        ev = self.fire(r, "who")
        self.assertEqual(self.read_when_there(out), str(nobody.pw_uid))
        rows = h.wait_results(os.path.join(self.state, "events.db"),
                              ev["id"], 2)
        py = [x for x in rows if x["driver"] == "pyfunc"][0]
        self.assertEqual((py["status"], json.loads(py["data"])),
                         ("ok", nobody.pw_uid))

    def test_sub_keeps_root_only_to_start_handlers_with_a_user(self):
        nobody = pwd.getpwnam("nobody")
        r = self.router("nobody")
        plain, plain_out = self.id_file("plain")
        rooted, root_out = self.id_file("rooted")
        rooted["user"] = "root"
        s = self.sub(r, {"who": [plain, rooted, {"driver": "pyfunc",
                                                 "handler": "who.uid"}]},
                     "nobody")
        self.info(s, "keeping root to start the 1 handler that names a "
                  "\"user\" or \"group\"; other runs and the Python workers "
                  "run as " + running_as("nobody")[len("running as "):])
        self.assertEqual(ids(s.proc.pid)[1], 0)
        # no "running as root" warning: no handler runs as root by default
        self.assertEqual([x for x in s.log_lines()
                          if "will run as root" in x], [])
        ev = self.fire(r, "who")
        self.assertEqual(self.read_when_there(plain_out), str(nobody.pw_uid))
        self.assertEqual(self.read_when_there(root_out), "0")
        rows = h.wait_results(os.path.join(self.state, "events.db"),
                              ev["id"], 3)
        py = [x for x in rows if x["driver"] == "pyfunc"][0]
        self.assertEqual(json.loads(py["data"]), nobody.pw_uid)

    def test_a_handler_naming_only_a_group_runs_as_the_config_user(self):
        # event-reactor.conf(5), "group": without "user", the user handlers
        # without one run as, not root (it ran as uid 0 before)
        nobody = pwd.getpwnam("nobody")
        daemon_gid = grp.getgrnam("daemon").gr_gid
        r = self.router("nobody")
        out = os.path.join(self.state, "grouped")
        s = self.sub(r, {"who": [{"driver": "shell", "group": "daemon",
                                  "handler": "sh -c 'echo $(id -u) $(id -g) "
                                  "$(id -G) > \"$0\"' %s" % out}]}, "nobody")
        self.info(s, "keeping root to start the 1 handler that names a "
                  "\"user\" or \"group\"; other runs and the Python workers "
                  "run as " + running_as("nobody")[len("running as "):])
        self.fire(r, "who")
        self.assertEqual(self.read_when_there(out), "%d %d %d" % (
            nobody.pw_uid, daemon_gid, daemon_gid))

    def test_root_left_is_not_taken_back_by_a_reload(self):
        r = self.router("nobody")
        entry, out = self.id_file("uid")
        s = self.sub(r, {"who": [entry]}, "nobody")
        self.info(s, running_as("nobody"))
        h.write_json(s.handlers_path, {"who": [
            entry, {"driver": "shell", "handler": "true", "user": "root"}]})
        s.proc.send_signal(h.signal.SIGHUP)
        s.wait_log(r"INFO reloaded: ", what="the reload line")
        ev = self.fire(r, "who")
        rows = h.wait_results(os.path.join(self.state, "events.db"),
                              ev["id"], 2)
        rooted = [x for x in rows if x["handler"] == "true"][0]
        self.assertEqual((rooted["status"], rooted["error"]),
                         ("error", "cannot switch to the handler's user or "
                          "group: Operation not permitted"))
        self.assertEqual(self.read_when_there(out),
                         str(pwd.getpwnam("nobody").pw_uid))

    def test_not_started_as_root_keeps_its_user(self):
        nobody = pwd.getpwnam("nobody")
        wrap = ["setpriv", "--reuid", str(nobody.pw_uid), "--regid",
                str(nobody.pw_gid), "--clear-groups"]
        r = self.router("root", wrap=wrap)
        r.wait_log(r"WARNING not started as root: running as nobody "
                   r"\(uid %d\), not as \"user\" root$" % nobody.pw_uid,
                   what="the not-root warning")
        self.assertEqual(ids(r.proc.pid), (nobody.pw_uid,) * 4)
        self.fire(r, "as.nobody")

    def test_not_started_as_root_says_its_group_is_not_taken(self):
        nobody = pwd.getpwnam("nobody")
        wrap = ["setpriv", "--reuid", str(nobody.pw_uid), "--regid",
                str(nobody.pw_gid), "--clear-groups"]
        r = self.router(wrap=wrap, group="root")
        r.wait_log(r"WARNING not started as root: \"group\" root not "
                   r"taken$", what="the group warning")
        self.assertEqual(ids(r.proc.pid), (nobody.pw_uid,) * 4)

    @unittest.skipUnless(private_mounts(), "a private mount namespace is "
                         "not possible here (in a chroot, / is not a mount "
                         "point)")
    def test_default_user_is_event_reactor(self):
        """In a mount namespace whose /etc/passwd and /etc/group hold the
        user make install creates (useradd --prefix on copies)."""
        etc = os.path.join(self.tmp, "prefix", "etc")
        os.makedirs(etc)
        for f in ("passwd", "group", "shadow", "gshadow", "login.defs"):
            if os.path.exists("/etc/" + f):
                shutil.copy("/etc/" + f, etc)
        if not any(line.startswith(DEFAULT_USER + ":")
                   for line in open(os.path.join(etc, "passwd"))):
            subprocess.run(["useradd", "--prefix", os.path.dirname(etc),
                            "--system", "--user-group", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", DEFAULT_USER],
                           check=True, timeout=30)
        uid = gid = None
        for line in open(os.path.join(etc, "passwd")):
            f = line.split(":")
            if f[0] == DEFAULT_USER:
                uid, gid = int(f[2]), int(f[3])
        wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'p=$0; g=$1; shift; mount --bind "$p" /etc/passwd && '
                'mount --bind "$g" /etc/group && exec "$@"',
                os.path.join(etc, "passwd"), os.path.join(etc, "group")]
        r = self.router(wrap=wrap)
        self.info(r, "running as user %s (uid %d), group %s (gid %d)"
                  % (DEFAULT_USER, uid, DEFAULT_USER, gid))
        self.assertEqual(ids(r.proc.pid), (uid,) * 4)
        self.fire(r, "as.default")

    @unittest.skipIf(DEFAULT_USER in [p.pw_name for p in pwd.getpwall()],
                     "the event-reactor user exists here")
    def test_root_without_a_user_is_refused(self):
        """No "user" and no event-reactor user: neither daemon starts as
        root (a start, -D, --check, a replay), with or without "group";
        "user": "root" is the operator saying so."""
        refusal = (r' ERROR refusing to run as root: config\.json names no '
                   r'"user" and there is no user "event-reactor" \(make '
                   r'install creates it\): set "user" \("root" to keep '
                   r'root\)$')
        hpath = h.write_json(self.path("handlers.json"), {"*": [
            {"driver": "shell", "handler": "true"}]})
        pidfile = self.path("d.pid")
        self.addCleanup(kill_pidfile, pidfile)
        for group in (None, "nogroup"):
            cfg = h.write_json(self.path("c.json"), self.config(group=group))
            for argv in (
                    ["event-router", "-c", cfg],
                    ["event-router", "-D", "-p", pidfile, "-c", cfg],
                    ["event-router", "--check", "-c", cfg],
                    ["event-sub", "-c", cfg, "-e", hpath],
                    ["event-sub", "-D", "-p", pidfile, "-c", cfg, "-e",
                     hpath],
                    ["event-sub", "--check", "-c", cfg, "-e", hpath],
                    ["event-sub", "--replay", "--since", "2020-01-01",
                     "-c", cfg, "-e", hpath]):
                with self.subTest(group=group, argv=argv):
                    cp = subprocess.run([h.binary(argv[0])] + argv[1:],
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        timeout=60)
                    self.assertEqual(cp.returncode, EX_CONFIG, cp.stderr)
                    self.assertRegex(cp.stderr.splitlines()[-1], refusal)
                    self.assertFalse(os.path.exists(pidfile))
        # the operator names root: it starts, as root
        r = self.router("root")
        self.assertEqual(ids(r.proc.pid)[1], 0)
        self.fire(r, "as.root")

    def test_check_imports_python_handlers_as_the_user(self):
        # event-sub --check (which init.d reload runs, as root) imports the
        # pyfunc modules as a start does: as "user", not as root
        nobody = pwd.getpwnam("nobody")
        out = os.path.join(self.state, "import-uid")
        hdir = self.path("checked")
        os.mkdir(hdir)
        os.chmod(hdir, 0o755)
        with open(os.path.join(hdir, "who.py"), "w") as f:
            f.write("import os\nwith open(%r, 'w') as f:\n"
                    "    f.write(str(os.getuid()))\n\n"
                    "def uid(event):\n    return os.getuid()\n" % out)
        cfg = h.write_json(self.path("c.json"), self.config("nobody"))
        hp = h.write_json(self.path("h.json"), {"*": [
            {"driver": "pyfunc", "handler": "who.uid"}]})
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c", cfg,
                             "-e", hp, "--event-handlers", hdir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        with open(out) as f:
            self.assertEqual(f.read(), str(nobody.pw_uid))

    def test_check_says_who_it_runs_as(self):
        cfg = h.write_json(self.path("c.json"), self.config("nobody"))
        cp = subprocess.run([h.binary("event-router"), "--check", "-c", cfg],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.splitlines()[1],
                         running_as("nobody").replace("running", "runs") +
                         " once its sockets are bound")
        hpath = h.write_json(self.path("h.json"), {"x": [
            {"driver": "shell", "handler": "true", "user": "root"},
            {"driver": "shell", "handler": "true"}]})
        cp = subprocess.run([h.binary("event-sub"), "--check", "-c", cfg,
                             "-e", hpath], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout.splitlines()[-1],
                         "keeps root to start the 1 handler that names a "
                         "\"user\" or \"group\"; other runs and the Python "
                         "workers " + running_as("nobody").replace(
                             "running", "run"))
        with open(self.path("bad.json"), "w") as f:
            f.write('{"store": {"type": "none"},\n "user": "no-such-user"}\n')
        cp = subprocess.run([h.binary("event-router"), "--check", "-c",
                             self.path("bad.json")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(cp.returncode, EX_CONFIG)
        self.assertIn('%s:2:10: unknown user "no-such-user"'
                      % self.path("bad.json"), cp.stderr)


if __name__ == "__main__":
    unittest.main()
