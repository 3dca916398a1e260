"""A fleet of event-subs on one RabbitMQ (event-reactor(7), "Running a
fleet"), with one private broker (rabbit.py) for the class: a router with
the amqp output and two event-subs with -u amqp://.  An "exclusive"
handler runs once per event across the fleet (the group's queue), the
others once per event on each event-sub (its own queue); an event-sub
killed with SIGKILL mid-stream loses nothing, its messages in flight run
again elsewhere marked redelivered, and it catches up from its queue when
it comes back; the broker stopped and started again: the event-subs come
back by themselves and nothing is lost; bad messages are acknowledged,
counted and logged; bad settings are refused with file:line:column."""

import collections
import http.client
import json
import os
import re
import subprocess
import unittest

import harness as h
import rabbit

EXCL = "true exclusive"
EACH = "true each"


@unittest.skipIf(rabbit.missing(), rabbit.missing() or "")
class AmqpFleet(rabbit.broker_test_case()):

    def tearDown(self):
        # the event-subs of a test go with it: none consumes the next one's
        errors = h.stop_all(self.daemons)
        del self.daemons[:]
        super().tearDown()
        if errors:
            raise h.HarnessError("\n".join(errors))

    # helpers -----------------------------------------------------------
    def qname(self, name):
        """The test's event-sub name: its queue is er.sub.NAME."""
        return "%s-%s" % (name, self._testMethodName.split("_")[2])

    def names(self):
        t = self._testMethodName
        return "er-fleet-" + t, "g-" + t

    def router(self):
        exchange, _ = self.names()
        cfg = h.make_config(
            self.tmp, store_path=os.path.join(self.tmp, self._testMethodName
                                              + ".router.db"),
            extra={"outputs": [
                {"handler": "zeromq", "config": {
                    "listen_address": "127.0.0.1", "port": 0,
                    "framing": "topic"}},
                {"handler": "amqp", "config": {
                    "url": self.broker.url, "exchange": exchange,
                    "spool": os.path.join(self.tmp, self._testMethodName
                                          + ".spool")}}]})
        r = h.Router(self.tmp, cfg)
        self.daemons.append(r)
        r.wait_ready()
        return r

    def sub_config(self, who, handlers=None, **subscriber):
        exchange, group = self.names()
        base = os.path.join(self.tmp, "%s.%s" % (self._testMethodName, who))
        cfg = h.make_config(self.tmp, store_path=base + ".db", extra={
            "subscriber": dict({"name": self.qname(who), "group": group,
                                "exchange": exchange, "max_concurrency": 4,
                                "shutdown_grace": 5}, **subscriber),
            "limits": {"max_event_size": 4096},
            # -D logs there when nothing listens on /dev/log
            "logging": {"dir": self.tmp}})
        hpath = h.write_json(base + ".handlers.json", handlers or {
            "*": [{"driver": "shell", "handler": EXCL, "exclusive": True},
                  {"driver": "shell", "handler": EACH}]})
        return h.write_json(base + ".json", cfg), hpath, base + ".db"

    def sub(self, name, handlers=None, wait=True, **subscriber):
        cpath, hpath, db = self.sub_config(name, handlers, **subscriber)
        s = h.Sub(self.tmp, cpath, hpath, self.broker.url)
        s.db = db
        self.daemons.append(s)
        if wait:
            s.wait_ready()
        return s

    def fire(self, r, n):
        sock = h.zsock(h.zmq.REQ, r.rep)
        ids = []
        try:
            for i in range(n):
                reply = json.loads(h.request(sock, json.dumps(
                    {"event_type": "fleet.test", "payload": {"i": i}})
                    .encode()))
                self.assertNotIn("error", reply)
                ids.append(reply["id"])
        finally:
            sock.close(0)
        return ids

    @staticmethod
    def runs(subs, handler):
        """{event id: [redelivered flags]} of handler's ok runs in the
        stores of subs."""
        out = collections.defaultdict(list)
        for s in subs:
            for r in h.result_rows(s.db):
                if r["handler"] == handler and r["status"] == "ok":
                    out[r["event_id"]].append(r["redelivered"])
        return out

    def wait_runs(self, subs, handler, ids, timeout=30):
        """Wait for handler's ok runs of ids; on a timeout, the runs
        missing, the queues and the end of each event-sub's log."""
        try:
            h.wait_until(lambda: set(ids) <= set(self.runs(subs, handler)),
                         timeout, "%s runs of %d events"
                         % (handler, len(ids)), interval=0.2)
        except h.HarnessError as e:
            state = [str(e), "missing: %r" % sorted(
                set(ids) - set(self.runs(subs, handler))),
                "queues (ready, unacknowledged): %r"
                % self.broker.list_queues()]
            for s in subs:
                state.append("--- %s: rows %r; log (end) ---\n%s" % (
                    s.db, [(r["event_id"], r["handler"], r["status"])
                           for r in h.result_rows(s.db)][-12:],
                    "\n".join(s.log_lines()[-40:])))
            raise h.HarnessError("\n".join(state)) from None
        return self.runs(subs, handler)

    def assertAtLeastOnce(self, runs, ids, in_flight):
        """Every event ran; each event's first delivery at most once; the
        repeats, marked redelivered, no more than in_flight."""
        self.assertEqual(sorted(set(runs) & set(ids)), sorted(ids))
        firsts = {i: flags.count(0) for i, flags in runs.items()}
        self.assertEqual([i for i, n in firsts.items() if n > 1], [])
        again = sum(flags.count(1) for i, flags in runs.items())
        self.assertLessEqual(again, in_flight, runs)
        return again

    def wait_empty(self, queues):
        """Every message of queues acknowledged (the last ones are, once
        their results are stored)."""
        self.broker.wait_queues_empty(queues)

    def stop_line(self, s):
        return s.find_log(r"amqp: stopped: .*").group(0)

    # tests -------------------------------------------------------------
    def test_exclusive_once_across_the_fleet_others_on_each(self):
        exchange, group = self.names()
        r = self.router()
        a = self.sub("a", metrics={"listen": "127.0.0.1:0"})
        b = self.sub("b")
        self.assertTrue(a.find_log(
            r"ready subscribed to queues er\.sub\.%s and er\.group\.%s "
            r"\(quorum\) of exchange %s on amqp://%s@127\.0\.0\.1:%d/$"
            % (self.qname("a"), group, exchange, self.broker.user,
               self.broker.port)))
        ids = self.fire(r, 100)
        excl = self.wait_runs([a, b], EXCL, ids)
        self.assertEqual({i: n for i, n in excl.items() if n != [0]}, {})
        for s in (a, b):
            self.assertEqual({i: n for i, n in
                              self.wait_runs([s], EACH, ids).items()
                              if n != [0]}, {})
        # both took their share of the group's queue
        self.assertEqual([len(self.runs([s], EXCL)) > 0 for s in (a, b)],
                         [True, True])
        # a's metrics count its runs of either queue
        port = int(a.find_log(r"INFO metrics: serving "
                              r"http://127\.0\.0\.1:(\d+)/metrics$").group(1))
        c = http.client.HTTPConnection("127.0.0.1", port,
                                       timeout=h.WAIT_TIMEOUT)
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
        c.close()
        for handler, n in ((EXCL, len(self.runs([a], EXCL))), (EACH, 100)):
            self.assertIn('eventreactor_handler_runs_total{handler="%s",'
                          'status="ok"} %d\n' % (handler, n), body)
        self.wait_empty(["er.sub." + self.qname("a"),
                         "er.sub." + self.qname("b"), "er.group." + group])
        for s in (a, b):
            s.stop()
            self.assertEqual(self.stop_line(s), "amqp: stopped: delivered "
                             "%d, acknowledged %d, not acknowledged "
                             "(connection lost) 0, reconnections 0"
                             % ((100 + len(self.runs([s], EXCL)),) * 2))

    def test_an_event_sub_killed_mid_stream(self):
        # 20 ms a run: some in flight at the kill
        slow_run = os.path.join(self.tmp, "slow.sh")
        with open(slow_run, "w") as f:
            f.write("#!/bin/sh\nexec sleep 0.02\n")
        os.chmod(slow_run, 0o755)
        slow = {"*": [{"driver": "shell", "handler": slow_run,
                       "exclusive": True},
                      {"driver": "shell", "handler": EACH}]}
        r = self.router()
        a, b = self.sub("a", slow), self.sub("b", slow)
        ids = self.fire(r, 100)
        h.wait_until(lambda: len(self.runs([a], slow_run)) >= 10, 30,
                     "a's first exclusive runs")
        a.kill()
        excl = self.wait_runs([a, b], slow_run, ids)
        # a's unacknowledged messages of the group: at most its prefetch
        self.assertAtLeastOnce(excl, ids, 4)
        self.assertAtLeastOnce(self.wait_runs([b], EACH, ids), ids, 0)
        # back, a runs what its own queue kept
        a2 = self.sub("a", slow)
        a2.db = a.db
        self.assertAtLeastOnce(self.wait_runs([a2], EACH, ids), ids, 4)
        self.wait_empty(["er.sub." + self.qname("a")])

    def test_the_broker_stopped_and_started_again(self):
        r = self.router()
        a, b = self.sub("a"), self.sub("b")
        before = self.fire(r, 20)
        self.wait_runs([a, b], EXCL, before)
        for c in self.conns:
            c.close()
        self.conns = []
        self.broker.stop()
        try:
            for s in (a, b):
                s.wait_log(r"WARNING amqp: lost the broker amqp://%s@"
                           r"127\.0\.0\.1:%d/: .*; reconnecting every 0\.5 "
                           r"to 30 s$" % (self.broker.user, self.broker.port),
                           timeout=20)
            during = self.fire(r, 20)     # the router's spool keeps them
        finally:
            self.broker.start()
        for s in (a, b):
            s.wait_log(r"amqp: broker amqp://%s@127\.0\.0\.1:%d/ is back "
                       r"after [0-9.]+ s: consuming queues er\.sub\.%s and "
                       % (self.broker.user, self.broker.port,
                          self.qname("a" if s is a else "b")), timeout=60)
        after = self.fire(r, 20)
        ids = before + during + after
        excl = self.wait_runs([a, b], EXCL, ids, timeout=60)
        self.assertAtLeastOnce(excl, ids, 2 * 4)
        for s in (a, b):
            self.assertAtLeastOnce(self.wait_runs([s], EACH, ids), ids, 4)
            # one line for the outage, one for the return
            self.assertEqual(len([ln for ln in s.log_lines()
                                  if "WARNING amqp:" in ln]), 1, s.log_text())
            s.stop()
            self.assertRegex(self.stop_line(s), r"reconnections 1$")

    def test_a_reload_changes_the_prefetch(self):
        # runs that wait for a "go" file hold their messages
        # unacknowledged: the broker's counts show each queue's prefetch
        block = os.path.join(self.tmp, "block.sh")
        go = os.path.join(self.tmp, "go")
        with open(block, "w") as f:
            f.write("#!/bin/sh\nwhile [ ! -e %s ]; do sleep 0.05; done\n"
                    % go)
        os.chmod(block, 0o755)
        excl, each = block + " excl", block + " each"
        handlers = {"*": [{"driver": "shell", "handler": excl,
                           "exclusive": True},
                          {"driver": "shell", "handler": each}]}
        _, group = self.names()
        queues = ["er.sub." + self.qname("a"), "er.group." + group]
        r = self.router()
        a = self.sub("a", handlers, max_concurrency=1)

        def counts(ready, unacked):
            # rabbitmqctl's counts lag by some seconds
            h.wait_until(lambda: [self.broker.list_queues().get(q)
                                  for q in queues] == [(ready, unacked)] * 2,
                         60, "%s at (ready, unacknowledged) (%d, %d)"
                         % (queues, ready, unacked), interval=0.3)

        def reload(mc, was):
            self.sub_config("a", handlers, max_concurrency=mc)
            os.kill(a.proc.pid, h.signal.SIGHUP)
            a.wait_log(r"INFO amqp: prefetch %d per queue \(was %d\): "
                       r"consuming both queues again$" % (mc, was))

        ids = self.fire(r, 5)
        counts(4, 1)
        # raised: one message of each queue was handed out before, three
        # more now
        reload(3, 1)
        counts(1, 4)
        open(go, "w").close()
        self.wait_runs([a], excl, ids, 60)
        self.wait_runs([a], each, ids, 60)
        self.wait_empty(queues)
        # lowered, with nothing in flight: two at most from now on
        os.unlink(go)
        reload(2, 3)
        more = self.fire(r, 5)
        counts(3, 2)
        open(go, "w").close()
        self.wait_runs([a], excl, more, 60)
        self.wait_runs([a], each, more, 60)
        self.wait_empty(queues)
        a.stop()
        self.assertEqual(self.stop_line(a), "amqp: stopped: delivered 20, "
                         "acknowledged 20, not acknowledged (connection "
                         "lost) 0, reconnections 0")

    def test_bad_messages_are_acknowledged_counted_and_logged(self):
        exchange, group = self.names()
        a = self.sub("a")
        ch = self.channel()
        ch.confirm_delivery()
        props = self.pika.BasicProperties(delivery_mode=2)
        for body in (b"not json", b"[" * 5000,
                     json.dumps({"event_type": "x"}).encode()):
            ch.basic_publish(exchange, "local.bad", body, props)
        q = "er.sub." + self.qname("a")
        expect = [
            "amqp: message on queue %s acknowledged and dropped: "
            "invalid_json: " % q,
            "amqp: message on queue %s acknowledged and dropped: too_large: "
            "5000 bytes, over the limit of 4096 bytes (limits.max_event_size)"
            % q,
            "amqp: message on queue %s acknowledged and dropped: "
            "invalid_json: stamped event without a valid id" % q]
        for q in (q, "er.group." + group):
            for i, line in enumerate(expect):
                a.wait_log(r"WARNING " + re.escape(line.replace(
                    "er.sub." + self.qname("a"), q)) +
                    ("$" if i > 0 else ""))
        self.wait_empty(["er.sub." + self.qname("a"), "er.group." + group])
        a.stop()
        self.assertRegex(a.find_log(r"stopped: events .*").group(0),
                         r"stopped: events 0, malformed 6, ")

    def test_a_flood_of_bad_messages_is_summed_up(self):
        # 10 lines in 10 s, then one that counts the rest
        _, group = self.names()
        a = self.sub("a")
        ch = self.channel()
        ch.confirm_delivery()
        exchange, _ = self.names()
        for i in range(15):
            ch.basic_publish(exchange, "local.bad", b"not json %d" % i)
        summed = re.compile(r"WARNING (\d+) malformed-message lines "
                            r"suppressed in the last 10 s$")

        def counted():
            lines = a.log_lines()
            shown = len([ln for ln in lines if "acknowledged and dropped: "
                         "invalid_json: " in ln])
            rest = sum(int(m.group(1)) for m in map(summed.search, lines)
                       if m)
            return shown + rest == 30 and rest > 0
        h.wait_until(counted, 40, "30 bad messages (15 on each queue) "
                     "logged or summed up", interval=0.3)
        self.wait_empty(["er.sub." + self.qname("a"), "er.group." + group])
        a.stop()
        self.assertRegex(a.find_log(r"stopped: events .*").group(0),
                         r"stopped: events 0, malformed 30, ")

    def test_a_run_cut_by_the_stop_leaves_its_message(self):
        # a run killed at the stop: its message stays on the queue, and
        # runs again, redelivered, after the next start
        long_run = os.path.join(self.tmp, "long.sh")
        with open(long_run, "w") as f:
            f.write("#!/bin/sh\nexec sleep 60\n")
        os.chmod(long_run, 0o755)
        r = self.router()
        cpath, hpath, db = self.sub_config(
            "a", {"*": [{"driver": "shell", "handler": long_run}]},
            shutdown_grace=0.2)
        a = h.Sub(self.tmp, cpath, hpath, self.broker.url)
        self.daemons.append(a)
        a.wait_ready()
        event_id, = self.fire(r, 1)
        a.wait_log(r"event %s \(local:fleet\.test\) from queue er\.sub\.%s: "
                   r"1 runs taken" % (event_id, self.qname("a")))
        a.stop()
        self.assertEqual([(x["status"], x["error"]) for x in
                          h.result_rows(db)],
                         [("timeout", "killed at shutdown: still running "
                           "after subscriber.shutdown_grace")])
        self.assertRegex(self.stop_line(a), r"delivered 1, acknowledged 0, ")
        h.write_json(hpath, {"*": [{"driver": "shell", "handler": EACH}]})
        a = h.Sub(self.tmp, cpath, hpath, self.broker.url)
        a.db = db
        self.daemons.append(a)
        a.wait_ready()
        self.assertEqual(self.wait_runs([a], EACH, [event_id]),
                         {event_id: [1]})
        self.wait_empty(["er.sub." + self.qname("a")])

    def test_broker_unavailable_at_the_start_and_a_stop_meanwhile(self):
        cpath, hpath, _ = self.sub_config("a")
        port = rabbit.free_port()
        url = "amqp://u:secret@127.0.0.1:%d/" % port
        a = h.Sub(self.tmp, cpath, hpath, url)
        self.daemons.append(a)
        a.wait_log(r"WARNING amqp: broker amqp://u@127\.0\.0\.1:%d/ "
                   r"unavailable: cannot connect to 127\.0\.0\.1:%d: .*; "
                   r"retrying every 0\.5 to 30 s$" % (port, port))
        self.assertEqual(a.stop(), 0)
        self.assertNotIn("secret", a.log_text())
        self.assertIsNone(a.find_log(r"ready subscribed"))
        # -D does not wait for a broker that is away (it is tried again)
        pidfile = os.path.join(self.tmp, "away.pid")
        cp = subprocess.run(
            [h.binary("event-sub"), "-c", cpath, "-e", hpath, "-u", url,
             "-D", "-p", pidfile], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        os.kill(h.read_pid_file(pidfile), h.signal.SIGTERM)
        h.wait_until(lambda: not os.path.exists(pidfile), 30,
                     "the pidfile removed at the stop")

    def test_refusals_fail_the_start(self):
        # what trying again will not change fails the start, -D's too,
        # with the broker's words: a wrong password, a missing vhost, a
        # queue of another type
        cpath, hpath, _ = self.sub_config("a")
        url = "amqp://%s:%%s@127.0.0.1:%d/%%s" % (self.broker.user,
                                                 self.broker.port)
        safe = "amqp://%s@127.0.0.1:%d/" % (self.broker.user,
                                           self.broker.port)
        ch = self.channel()
        ch.queue_declare("er.sub." + self.qname("c"), durable=True)
        ccpath, chpath, _ = self.sub_config("c")
        login = ("login as %s to vhost / failed: broker closed the "
                 "connection: 403 "
                 "ACCESS_REFUSED - Login was refused using authentication "
                 "mechanism PLAIN. For details see the broker logfile."
                 % self.broker.user)
        for what, u, files, why in (
                ("password", url % ("WRONG-secret", ""), (cpath, hpath),
                 login),
                ("vhost", url % (self.broker.password, "nosuch"),
                 (cpath, hpath), "login as %s to vhost nosuch failed: "
                 "broker closed the "
                 "connection: 530 NOT_ALLOWED - vhost nosuch not found"
                 % self.broker.user),
                ("queue_type", url % (self.broker.password, ""),
                 (ccpath, chpath), "queue er.sub.%s (quorum, durable, "
                 "bound to %s with #): broker closed the channel: 406 "
                 "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' "
                 "for queue 'er.sub.%s' in vhost '/': received the value "
                 "'quorum' of type 'longstr' but current is none"
                 % (self.qname("c"),
                                               self.names()[0],
                                               self.qname("c")))):
            where = safe + ("nosuch" if what == "vhost" else "")
            line = "amqp: broker %s refused event-sub: %s" % (where, why)
            for detach in ((), ("-D",)):
                with self.subTest(what=what, detach=detach):
                    cp = subprocess.run(
                        [h.binary("event-sub"), "-c", files[0], "-e",
                         files[1], "-u", u] + list(detach),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, timeout=60)
                    self.assertEqual(cp.returncode, 78, cp.stderr)
                    self.assertIn(line if detach else
                                  "ERROR " + line + "\n", cp.stderr)
                    self.assertNotIn("secret", cp.stderr)
        # accepted: -D returns once the queues are declared and consumed
        pidfile = os.path.join(self.tmp, "a.pid")
        cp = subprocess.run(
            [h.binary("event-sub"), "-c", cpath, "-e", hpath, "-u",
             url % (self.broker.password, ""), "-D", "-p", pidfile],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        pid = h.read_pid_file(pidfile)
        try:
            self.assertIn("er.sub." + self.qname("a"),
                          self.broker.list_queues())
            # ps(1) shows every user argv: the password is hidden there
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            self.assertIn(("amqp://%s:%s@127.0.0.1:%d/" % (
                self.broker.user, "*" * len(self.broker.password),
                self.broker.port)).encode(), argv)
            self.assertNotIn(self.broker.password.encode(), b" ".join(argv))
        finally:
            os.kill(pid, h.signal.SIGTERM)
            h.wait_until(lambda: not os.path.exists(pidfile), 30,
                         "the pidfile removed at the stop")

    def test_a_member_without_an_exclusive_handler_does_not_run_it(self):
        # b lacks exclusive handler "true only-a": the group's messages b
        # is given run "true exclusive" there, and "true only-a" nowhere
        only_a = "true only-a"
        a = self.sub("a", {"*": [
            {"driver": "shell", "handler": EXCL, "exclusive": True},
            {"driver": "shell", "handler": only_a, "exclusive": True}]})
        b = self.sub("b", {"*": [
            {"driver": "shell", "handler": EXCL, "exclusive": True}]})
        r = self.router()
        ids = self.fire(r, 40)
        excl = self.wait_runs([a, b], EXCL, ids)
        self.assertEqual({i: n for i, n in excl.items() if n != [0]}, {})
        on_a, on_b = set(self.runs([a], EXCL)), set(self.runs([b], EXCL))
        self.assertTrue(on_a and on_b, (len(on_a), len(on_b)))
        self.wait_empty(["er.group." + self.names()[1]])
        self.assertEqual(set(self.runs([a, b], only_a)), on_a)

    def test_a_second_event_sub_of_the_same_name_is_told(self):
        # it takes part of the first one's events from its queue
        a = self.sub("a")
        cpath, hpath, db = self.sub_config("a2", name=self.qname("a"))
        b = h.Sub(self.tmp, cpath, hpath, self.broker.url)
        b.db = db
        self.daemons.append(b)
        b.wait_ready()
        self.assertTrue(b.find_log(
            r"WARNING amqp: queue er\.sub\.%s has 2 consumers: another "
            r"event-sub of subscriber\.name %s takes part of its events "
            r"\(or the broker has not yet seen an earlier connection of this "
            r"one go\); give each event-sub a name of its own$"
            % ((re.escape(self.qname("a")),) * 2)), b.log_text())
        r = self.router()
        ids = self.fire(r, 20)
        each = self.wait_runs([a, b], EACH, ids)
        self.assertEqual({i: n for i, n in each.items() if n != [0]}, {})

    def test_a_refusal_while_running_is_an_error_tried_again(self):
        user = "u-" + self._testMethodName[-8:]
        for args in (("add_user", user, "pw-1"),
                     ("set_permissions", "-p", "/", user, ".*", ".*", ".*")):
            cp = self.broker.ctl(*args)
            self.assertEqual(cp.returncode, 0, cp.stdout)
        cpath, hpath, _ = self.sub_config("a")
        a = h.Sub(self.tmp, cpath, hpath, "amqp://%s:pw-1@127.0.0.1:%d/"
                  % (user, self.broker.port))
        self.daemons.append(a)
        a.wait_ready()
        for args in (("change_password", user, "pw-2"),
                     ("close_all_connections", "test")):
            self.assertEqual(self.broker.ctl(*args).returncode, 0)
        a.wait_log(r"WARNING amqp: lost the broker ")
        a.wait_log(r"ERROR amqp: broker amqp://%s@127\.0\.0\.1:%d/ "
                   r"refused event-sub: login as %s to vhost / failed: "
                   r"broker closed "
                   r"the connection: 403 ACCESS_REFUSED - [^;]*[^.]; trying "
                   r"again every 30 s$" % (user, self.broker.port, user))
        self.assertEqual(a.stop(), 0)

    def test_bad_settings(self):
        for key, value, msg in (
                ("name", "a b", '"name" must be letters, digits, -, _, . '
                 'and : (it names a queue: er.sub.name)'),
                ("group", "g/1", '"group" must be letters, digits, -, _, . '
                 'and : (it names a queue: er.group.group)'),
                ("exchange", "amq.topic", '"exchange" must be a non-empty '
                 'name of letters, digits, -, _, . and : that does not '
                 'begin with amq. (reserved by AMQP)'),
                ("queue_type", "stream", '"queue_type" must be "quorum" or '
                 '"classic"'),
                ("ca_file", "/nonexistent/ca.pem", 'cannot read ca_file '
                 '"/nonexistent/ca.pem": No such file or directory')):
            with self.subTest(key=key):
                cpath, hpath, _ = self.sub_config("bad", **{key: value})
                cp = subprocess.run(
                    [h.binary("event-sub"), "-c", cpath, "-e", hpath, "-u",
                     self.broker.url, "--check"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, timeout=30)
                self.assertEqual(cp.returncode, 78, cp.stderr)
                text = open(cpath).read()
                i = text.index('"%s": ' % key) + len(key) + 4
                where = "%s:%d:%d" % (cpath, text[:i].count("\n") + 1,
                                      i - text.rfind("\n", 0, i))
                self.assertIn("ERROR %s: %s\n" % (where, msg), cp.stderr)
        cpath, hpath, _ = self.sub_config("good")
        for uri, code, msg in (
                ("amqps://u:secret@h/", 78, "ERROR -u amqps:// needs "
                 "subscriber.ca_file, the PEM file of the CA certificates the "
                 "broker's certificate chains to\n"),
                ("amqp://u:secret@h:0/", 64, 'event-sub: -u "url": the port '
                 'must be 1..65535\n'),
                # a mistyped scheme is not amqp: echoed, without the
                # password
                ("ampq://u:secret@h:5672/", 64, 'event-sub: -u "ampq://u:'
                 '******@h:5672/" is not a ZeroMQ endpoint (tcp://HOST:PORT, '
                 'ipc://PATH, inproc://NAME)\n')):
            with self.subTest(uri=uri):
                cp = subprocess.run(
                    [h.binary("event-sub"), "-c", cpath, "-e", hpath, "-u",
                     uri, "--check"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True, timeout=30)
                self.assertEqual(cp.returncode, code, cp.stderr)
                self.assertTrue(cp.stderr.endswith(msg), cp.stderr)
                self.assertNotIn("secret", cp.stderr)
        cp = subprocess.run(
            [h.binary("event-sub"), "--tail", "-c", cpath, "-u",
             self.broker.url], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual((cp.returncode, cp.stderr), (64, "event-sub: --tail "
                         "reads the router's ZeroMQ stream: -u amqp:// is not "
                         "for it\n"))
        _, group = self.names()
        cp = subprocess.run(
            [h.binary("event-sub"), "-c", cpath, "-e", hpath, "-u",
             self.broker.url, "--check"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("consumes from amqp://%s@127.0.0.1:%d/ (queue "
                      "er.sub.good-settings; er.group.%s for exclusive handlers), "
                      "quorum queues, exchange er-fleet-test_bad_settings\n"
                      "no catch-up from the store: the broker's queues keep "
                      "what is not acknowledged\n"
                      % (self.broker.user, self.broker.port, group),
                      cp.stdout)
