"""The tests' private RabbitMQ (rabbit.py) against the race that turned
CI red: a port chosen free is taken by another process before the node
binds it.  The node whose distribution port is taken starts again on a
new one; the ports it chooses lie below the kernel's ephemeral range,
where no outgoing connection takes one."""

import os
import socket
import unittest

import harness as h
import rabbit


class FreePort(unittest.TestCase):

    def test_free_ports_lie_below_the_ephemeral_range(self):
        low = rabbit._ephemeral_low()
        for _ in range(50):
            port = rabbit.free_port()
            self.assertLess(port, low)
            self.assertNotIn(port, rabbit._WELL_KNOWN)
            s = socket.socket()
            s.bind(("127.0.0.1", port))  # free when chosen
            s.close()


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class DistributionPortTaken(unittest.TestCase, h.TempDirMixin):

    def setUp(self):
        self.tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, self.tmp)

    def test_the_node_starts_again_on_another_distribution_port(self):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        self.addCleanup(holder.close)
        taken = holder.getsockname()[1]
        broker = rabbit.Broker(self.tmp)
        self.addCleanup(broker.close)
        broker.dist_port = taken
        amqp = broker.port
        broker.start()
        self.assertNotEqual(broker.dist_port, taken)
        self.assertEqual(broker.port, amqp)
        with open(os.path.join(broker.dir, "server.out"), "rb") as f:
            out = f.read().decode("utf-8", "replace")
        self.assertIn("could not bind to distribution port %d" % taken, out)
        self.assertEqual(broker.ctl("status").returncode, 0)

    def test_another_failure_is_not_tried_again(self):
        broker = rabbit.Broker(self.tmp)
        self.addCleanup(broker.close)
        with open(os.path.join(broker.dir, "rabbitmq.conf"), "a") as f:
            f.write("no_such_setting_of_rabbitmq = 1\n")
        with self.assertRaises(AssertionError) as cm:
            broker.start(timeout=60)
        self.assertNotIsInstance(cm.exception, rabbit.PortTaken)


    def test_a_host_name_that_does_not_resolve_is_said(self):
        broker = rabbit.Broker(self.tmp, node="er-test@er-no-such.invalid")
        self.addCleanup(broker.close)
        with self.assertRaises(AssertionError) as cm:
            broker.start(timeout=5)
        self.assertIn("needs 'er-no-such.invalid' to resolve",
                      str(cm.exception))
        self.assertIsNone(broker.proc)

@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class QueuesEmpty(unittest.TestCase, h.TempDirMixin):

    def test_a_queue_not_emptied_is_reported_with_its_counts(self):
        import pika
        tmp = self.make_tmpdir()
        self.addCleanup(self.remove_tmpdir, tmp)
        broker = rabbit.Broker(tmp)
        self.addCleanup(broker.close)
        broker.start()
        params = pika.URLParameters(broker.url)
        params.socket_timeout = 5
        params.blocked_connection_timeout = 10
        conn = pika.BlockingConnection(params)
        self.addCleanup(conn.close)
        ch = conn.channel()
        ch.queue_declare("er.test.left", durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", "er.test.left", b"{}")
        with self.assertRaises(AssertionError) as cm:
            broker.wait_queues_empty(["er.test.left"], timeout=1)
        self.assertIn("'er.test.left': (1, 0)", str(cm.exception))
        ch.queue_purge("er.test.left")
        broker.wait_queues_empty(["er.test.left"])


if __name__ == "__main__":
    unittest.main()
