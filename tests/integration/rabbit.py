"""A private RabbitMQ broker for the AMQPInput tests.

Debian's rabbitmq-server (installed by scripts/install-deps) started in the
foreground from /usr/lib/rabbitmq/bin (the /usr/sbin wrapper would switch to
the rabbitmq user and the system's directories), with everything of its own:
node name er-test-<pid>-<n>@localhost, free loopback ports below the
ephemeral range for AMQP, Erlang distribution and epmd (a node whose
distribution port was taken meanwhile starts again on another), config, data (mnesia) and logs in a temporary
directory, and HOME there too (the Erlang cookie).  Readiness is
``rabbitmqctl -n NODE await_startup``, retried until the node is registered
with epmd, bounded; stopping is ``rabbitmqctl -n NODE stop`` then a bounded
wait, SIGKILL to the process group as a last resort, and ``epmd -kill``
for the epmd the node started on its own port.
"""

import contextlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import harness as h

RABBIT_BIN = "/usr/lib/rabbitmq/bin"
SERVER = os.path.join(RABBIT_BIN, "rabbitmq-server")
CTL = os.path.join(RABBIT_BIN, "rabbitmqctl")
EPMD = shutil.which("epmd") or "/usr/bin/epmd"

# a bound on the wait for "up": beside CI's two suites and its fuzzers a
# node once took more than 40 s to start (2026-12-08)
START_TIMEOUT = float(os.environ.get("ER_RABBIT_START_TIMEOUT", "90"))
STOP_TIMEOUT = 30
# for a queue to be emptied: rabbitmqctl alone can take seconds a look
EMPTY_TIMEOUT = 60

_counter = itertools.count()


def missing():
    """Why the broker cannot run here, or None."""
    if not os.access(SERVER, os.X_OK) or not os.access(CTL, os.X_OK):
        return ("rabbitmq-server is not installed (%s); scripts/install-deps "
                "installs it" % SERVER)
    try:
        import pika  # noqa: F401  (only checking it is there)
    except ImportError:
        return ("python3-pika is not installed; scripts/install-deps "
                "installs it")
    return None


STOP_MARKS = ("SIGTERM", "asked to stop", "BOOT FAILED",
              "Stopping application 'rabbit'", "shutdown", "halt")


def stop_cause(text, before=8, after=4):
    """The lines around the first that says the node is stopping, or ''."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(m in line for m in STOP_MARKS):
            return "\n".join(lines[max(0, i - before):i + after + 1])
    return ""


# Where free_port() looks: below the kernel's ephemeral range, so that no
# outgoing connection of the tests or the daemons (each takes a port from
# that range) can take a port between the choice and the node's bind (CI
# once saw "could not bind to distribution port 40403").  RabbitMQ's own
# well-known ports are left out for a system broker.
_WELL_KNOWN = {4369, 5671, 5672, 15672, 25672}
DIST_BIND_MARK = "could not bind to distribution port"


def _ephemeral_low():
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    return 32768


def free_port():
    """A loopback TCP port that nothing holds now, below the ephemeral
    range (bind(0) would give one inside it)."""
    high = _ephemeral_low()
    low = 10000 if high > 12000 else 1024
    for _ in range(200):
        port = random.randrange(low, high)
        if port in _WELL_KNOWN:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PortTaken(AssertionError):
    """The node could not bind its distribution port (another process
    took it between the choice and the bind)."""


def node_name():
    return "er-test-%d-%d@localhost" % (os.getpid(), next(_counter))


class Broker:
    def __init__(self, tmpdir, user="er-test", password="pw-unused",
                 tls=None, node=None, subdir="rabbit", epmd_port=None,
                 cookie=None, peers=(), addresses=()):
        """tls: (cacertfile, certfile, keyfile), PEM files: the node also
        listens for AMQP over TLS on ssl_port (no client certificates).
        A node of a cluster (Cluster) has its node name, its directory
        subdir, the cluster's epmd port (not killed by close()), the
        Erlang cookie and the node names of its peers.  addresses: more
        addresses (of this host) its AMQP listener takes, on the same
        port (url_at())."""
        self.dir = os.path.join(tmpdir, subdir)
        os.makedirs(self.dir, exist_ok=True)
        self.user = user
        self.password = password
        self.node = node or node_name()
        self.own_epmd = epmd_port is None
        self.epmd_port = epmd_port
        self._choose_ports()
        if cookie is not None:
            path = os.path.join(self.dir, ".erlang.cookie")
            with open(path, "w") as f:
                f.write(cookie)
            os.chmod(path, 0o400)
        self.proc = None
        self._out = None
        self._log_at = {}
        self._conf = (tls, peers, addresses)
        self._write_conf()
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "w").close()

    def _choose_ports(self):
        """Free ports: AMQP, AMQP over TLS and an epmd of its own once
        (tests and daemons hold them from then on), the distribution's
        at each call."""
        held = {self.epmd_port, getattr(self, "port", None),
                getattr(self, "ssl_port", None),
                getattr(self, "dist_port", None)}

        def pick():
            while True:
                p = free_port()
                if p not in held:
                    held.add(p)
                    return p
        if getattr(self, "port", None) is None:
            self.port, self.ssl_port = pick(), pick()
            if self.epmd_port is None:
                self.epmd_port = pick()
        self.dist_port = pick()

    def _write_conf(self):
        tls, peers, addresses = self._conf
        user, password = self.user, self.password
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            if peers:
                f.write("cluster_formation.peer_discovery_backend = "
                        "classic_config\n")
                for i, peer in enumerate(peers, 1):
                    f.write("cluster_formation.classic_config.nodes.%d = %s\n"
                            % (i, peer))
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n" % self.port)
            for i, addr in enumerate(addresses, 2):
                f.write("listeners.tcp.%d = %s:%d\n" % (i, addr, self.port))
            f.write("default_user = %s\ndefault_pass = %s\n"
                    % (user, password))
            f.write("loopback_users = none\n")
            f.write("disk_free_limit.absolute = 1MB\n")
            if tls is not None:
                f.write("listeners.ssl.1 = 127.0.0.1:%d\n" % self.ssl_port)
                for k, v in zip(("cacertfile", "certfile", "keyfile"), tls):
                    f.write("ssl_options.%s = %s\n" % (k, v))
                f.write("ssl_options.verify = verify_none\n"
                        "ssl_options.fail_if_no_peer_cert = false\n")

    @property
    def url(self):
        return self.url_at("127.0.0.1")

    def url_at(self, address):
        return "amqp://%s:%s@%s:%d/" % (self.user, self.password, address,
                                       self.port)

    def env(self):
        e = dict(os.environ)
        d = self.dir
        e.update({
            "HOME": d,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # +sbwt none: the Erlang schedulers sleep when idle instead
            # of spinning (RabbitMQ's advice for hosts it shares: here
            # the daemons under test, and the tests)
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1} "
                "+sbwt none +sbwtdcpu none +sbwtdio none",
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_PID_FILE": os.path.join(d, "rabbit.pid"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(d, "plugins-expand"),
        })
        return e

    def ctl(self, *args, timeout=30):
        return subprocess.run([CTL, "-n", self.node] + list(args),
                              env=self.env(), cwd=self.dir,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)

    def _log_files(self):
        return [os.path.join(self.dir, "server.out"),
                os.path.join(self.dir, "log", self.node + ".log")]

    def _bind_failed(self):
        """Whether the node's output since launch() says it could not
        bind its distribution port."""
        for name in self._log_files():
            with contextlib.suppress(OSError):
                with open(name, "rb") as f:
                    f.seek(self._log_at.get(name, 0))
                    text = f.read().decode("utf-8", "replace")
                if DIST_BIND_MARK in text:
                    return True
        return False

    def log_text(self):
        """The ends of the node's output and log, and first the lines
        where it began to stop (a SIGTERM, a stop request, a failed
        boot), which a long shutdown pushes out of the last 4000
        characters."""
        out = []
        for name in self._log_files():
            with contextlib.suppress(OSError):
                with open(name, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                why = stop_cause(text)
                if why:
                    out.append("-- where %s began to stop:\n%s\n-- its end:"
                               % (os.path.basename(name), why))
                out.append(text[-4000:])
        return "\n".join(out)

    def start(self, timeout=START_TIMEOUT, tries=3):
        """Start the node and wait until it serves AMQP (bounded).  A
        node that could not bind its distribution port is started again
        on a new one, tries times in all."""
        for i in range(tries):
            try:
                return self.launch().wait_up(timeout)
            except PortTaken:
                if i == tries - 1:
                    raise
                self.relaunch_ports()
        return self

    def relaunch_ports(self):
        """After a PortTaken: a new distribution port for launch()."""
        self._choose_ports()
        self._write_conf()

    def launch(self):
        """Start the node's process (wait_up() waits for it)."""
        host = self.node.partition("@")[2]
        try:
            socket.getaddrinfo(host, None)
        except socket.gaierror as e:
            # the node waits out the timeout and logs nothing then
            raise AssertionError(
                "the node name %s needs %r to resolve, and it does not "
                "(%s): a line \"127.0.0.1 localhost\" in /etc/hosts"
                % (self.node, host, e.strerror)) from None
        self._log_at = {}
        for name in self._log_files():
            with contextlib.suppress(OSError):
                self._log_at[name] = os.path.getsize(name)
        self._out = open(os.path.join(self.dir, "server.out"), "ab")
        self.proc = subprocess.Popen([SERVER], env=self.env(), cwd=self.dir,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._out,
                                     start_new_session=True)
        return self

    def wait_up(self, timeout=START_TIMEOUT):
        """Wait until the node launched serves AMQP (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.proc.poll() is not None:
                self._close()
                kind = PortTaken if self._bind_failed() else AssertionError
                raise kind("rabbitmq-server exited with %s:\n%s"
                           % (self.proc.returncode, self.log_text()))
            if left <= 0:
                self.kill()
                raise AssertionError("rabbitmq-server not up within %.0fs:\n%s"
                                     % (timeout, self.log_text()))
            # fails at once until the node is registered with epmd
            try:
                cp = self.ctl("await_startup", "--timeout",
                              str(max(1, int(left))), timeout=left + 5)
            except subprocess.TimeoutExpired:
                continue
            if cp.returncode == 0:
                return self
            time.sleep(0.3)

    def list_queues(self):
        """{name: (ready, unacknowledged)}"""
        cp = self.ctl("list_queues", "-q", "--no-table-headers", "name",
                      "messages_ready", "messages_unacknowledged")
        out = {}
        for line in cp.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                out[parts[0]] = (int(parts[1]), int(parts[2]))
        return out

    def wait_queues_empty(self, queues, timeout=EMPTY_TIMEOUT):
        """Wait until each of queues has nothing ready and nothing
        unacknowledged; AssertionError with the last counts if not within
        timeout seconds.  Each look is a rabbitmqctl run, an Erlang VM of
        its own that takes seconds on a busy machine, hence the bound."""
        seen = {}

        def empty():
            seen.update(self.list_queues())
            return all(seen.get(q) == (0, 0) for q in queues)
        try:
            h.wait_until(empty, timeout, "queues %s empty"
                         % ", ".join(queues), interval=0.3)
        except h.HarnessError as e:
            raise h.HarnessError("%s: (ready, unacked) %s" % (
                e, {q: seen.get(q) for q in queues})) from None

    def list_exchanges(self):
        """{name: (type, durable, auto_delete)} of the default vhost"""
        cp = self.ctl("list_exchanges", "-q", "--no-table-headers", "name",
                      "type", "durable", "auto_delete")
        out = {}
        for line in cp.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) == 4:
                out[parts[0]] = (parts[1], parts[2] == "true",
                                 parts[3] == "true")
        return out

    def stop(self, timeout=STOP_TIMEOUT):
        """Graceful stop (connections get connection.close), bounded."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.ctl("stop", timeout=timeout)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self._close()

    def _close(self):
        if self._out is not None:
            self._out.close()
            self._out = None

    def close(self):
        """Stop the node and the epmd it started on its own port."""
        try:
            self.stop()
        finally:
            self.kill()
            if not self.own_epmd:
                return
            with contextlib.suppress(Exception):
                subprocess.run([EPMD, "-port", str(self.epmd_port), "-kill"],
                               env=self.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10)


class Cluster:
    """n nodes on this machine forming one cluster (classic_config peer
    discovery): distinct node names, ports and directories
    (tmpdir/rabbit-I), one Erlang cookie, one epmd; started together."""

    def __init__(self, tmpdir, n=3, addresses=None, **kw):
        """addresses: node I's more listener addresses, addresses[I]."""
        names = [node_name() for _ in range(n)]
        cookie = "ERTEST%d%s" % (os.getpid(), os.urandom(8).hex().upper())
        epmd = free_port()
        self.nodes = [Broker(tmpdir, node=names[i], subdir="rabbit-%d" % i,
                             epmd_port=epmd, cookie=cookie, peers=names,
                             addresses=addresses[i] if addresses else (),
                             **kw)
                      for i in range(n)]
        self.epmd_port = epmd

    def start(self, timeout=2 * START_TIMEOUT):
        """Start every node at once (a node waits for its peers' tables
        at a restart) and wait for each."""
        for b in self.nodes:
            b.launch()
        for b in self.nodes:
            for i in range(3):
                try:
                    b.wait_up(timeout)
                    break
                except PortTaken:
                    if i == 2:
                        raise
                    b.relaunch_ports()
                    b.launch()
        return self

    def running_nodes(self):
        cp = self.nodes[0].ctl("eval", "length(rabbit_nodes:all_running()).")
        return int(cp.stdout.decode().strip() or 0)

    def stop(self):
        for b in reversed(self.nodes):
            b.stop()

    def close(self):
        try:
            for b in reversed(self.nodes):
                b.close()
        finally:
            with contextlib.suppress(Exception):
                subprocess.run([EPMD, "-port", str(self.epmd_port), "-kill"],
                               env=self.nodes[0].env(),
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=10)


def broker_test_case():
    """A base class for tests with one private broker for the class
    (cls.broker, started by setUpClass; cls.broker_args() gives Broker's
    keyword arguments), the daemons each test starts in cls.daemons
    stopped, then the broker closed, at the end; self.channel() opens a
    pika channel, its connection closed after the test."""
    import harness as h

    class BrokerTestCase(h.RouterTestCase):

        @classmethod
        def broker_args(cls):
            return {}

        @classmethod
        def setUpClass(cls):
            cls.tmp = cls.make_tmpdir()
            cls.daemons = []
            cls.broker = None
            try:
                cls.broker = Broker(cls.tmp, **cls.broker_args()).start()
            except BaseException:
                cls._cleanup_all()
                raise

        @classmethod
        def _cleanup_all(cls):
            try:
                return h.stop_all(cls.daemons)
            finally:
                if cls.broker is not None:
                    cls.broker.close()
                cls.remove_tmpdir(cls.tmp)

        @classmethod
        def tearDownClass(cls):
            errors = cls._cleanup_all()
            if errors:
                raise h.HarnessError("\n".join(errors))

        def setUp(self):
            super().setUp()
            import pika
            self.pika = pika
            self.conns = []       # pika connections, closed at the end

        def tearDown(self):
            for c in self.conns:
                try:
                    c.close()
                except Exception:
                    pass
            super().tearDown()

        def channel(self):
            """A channel of a new pika connection to the broker."""
            params = self.pika.URLParameters(self.broker.url)
            params.socket_timeout = 5
            params.blocked_connection_timeout = 10
            conn = self.pika.BlockingConnection(params)
            self.conns.append(conn)
            return conn.channel()

    return BrokerTestCase
