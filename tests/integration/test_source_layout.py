"""The shape of the source tree that README.rst ("Module map") promises:
each third-party library behind the modules that own it, no source file
over 700 lines, no function over 80, no include circle."""

import glob
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# header (as included) -> the files that may include it
OWNERS = {
    "zmq.h": ["src/core/bus.c", "src/core/bus_curve.c"],
    "czmq.h": ["src/core/cert.c"],
    "jansson.h": ["src/core/cond.c", "src/core/event.c",
                  "src/core/event_json.h",
                  "src/core/cfg_reader.c", "src/stores/bson_map.c"],
    "bson/": ["src/core/event.c", "src/stores/bson_map.c",
              "src/stores/bson_map.h"],
    "mongoc/": ["src/stores/store_mongo.c", "src/stores/store_mongo_write.c",
                "src/stores/store_mongo_write.h",
                "src/stores/store_mongo_read.c"],
    "sqlite3.h": ["src/stores/journal.c", "src/stores/store_sqlite.c",
                  "src/stores/store_sqlite_file.c",
                  "src/stores/store_sqlite_schema.c",
                  "src/stores/store_sqlite_ckpt.c", "src/stores/spool.c"],
    "amqp": ["src/core/amqp_link.c", "src/core/amqp_link.h",
             "src/inputs/in_amqp.c", "src/inputs/in_amqp_conf.c",
             "src/outputs/out_amqp.c", "src/daemons/sub_amqp.c",
             "src/daemons/sub_amqp_plan.c", "src/daemons/sub_amqp_conn.c",
             "src/daemons/sub_amqp_int.h"],
    "microhttpd.h": ["src/core/metrics_http.c", "src/core/mhd_util.c",
                     "src/inputs/in_http.c",
                     "src/inputs/in_http_frame.c",
                     "src/inputs/in_http_frame.h",
                     "src/inputs/in_http_guard.c",
                     "src/inputs/in_http_guard.h"],
    "openssl/": ["src/inputs/in_http_auth.c"],
    "Python.h": ["src/drivers/pyworker.c"],
    "jemalloc/": ["src/core/util.c"],
}
# the modules that read the wire protocol's texts with the event module's
# jansson conventions (event_json.h): fire-event's client and the
# OpenStack envelope of the AMQP input
EVENT_JSON_USERS = ["src/core/client.c", "src/core/cond.c",
                    "src/core/event.c",
                    "src/inputs/in_amqp_oslo.c"]

MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 80


# Test code is outside the module map: tests/unit and tests/fuzz include
# the libraries they check the product against (tests/fuzz/fuzz_event.c and
# tests/unit/test_event_scan.c use jansson as the reference for the event
# module's fast path), so sources() walks src/ and include/ only.
def sources(pattern="src/*/*.[ch]"):
    return sorted(os.path.relpath(p, REPO)
                  for p in glob.glob(os.path.join(REPO, pattern))
                  + glob.glob(os.path.join(REPO, "include", "*.h")))


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def functions(text):
    """(name line, number of lines from { to }) of each function: in this
    tree's style a body opens with "{" alone in column 0 and closes with
    "}" alone in column 0."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i] == "{" and i > 0:
            j = i - 1
            while j > 0 and not re.match(r"[A-Za-z_]", lines[j]):
                j -= 1
            k = i + 1
            while k < len(lines) and lines[k] != "}":
                k += 1
            yield lines[j], k - i + 1
            i = k
        i += 1


class Layout(unittest.TestCase):
    def test_third_party_headers_stay_with_their_owners(self):
        found = []
        for path in sources():
            for inc in re.findall(r'(?m)^#include <([^>]+)>', read(path)):
                for lib, owners in OWNERS.items():
                    if inc.startswith(lib) and path not in owners:
                        found.append("%s includes <%s>" % (path, inc))
        self.assertEqual(found, [])

    def test_event_json_only_where_the_wire_texts_are_read(self):
        users = [p for p in sources() if p != "src/core/event_json.h" and
                 '#include "event_json.h"' in read(p)]
        self.assertEqual(users, EVENT_JSON_USERS)

    def test_no_source_file_over_700_lines(self):
        long = ["%s: %d lines" % (p, read(p).count("\n"))
                for p in sources() if read(p).count("\n") > MAX_FILE_LINES]
        self.assertEqual(long, [])

    def test_no_function_over_80_lines(self):
        long = []
        for path in sources("src/*/*.c"):
            for name, n in functions(read(path)):
                if n > MAX_FUNCTION_LINES:
                    long.append("%s: %s: %d lines" % (path, name, n))
        self.assertEqual(long, [])
        # the scan finds functions at all (a broken scan would pass)
        self.assertGreater(len(list(functions(read("src/core/loop.c")))),
                           10)

    def test_no_include_circle(self):
        headers = {os.path.basename(p): p for p in sources("src/*/*.h")}
        headers.update({os.path.basename(p): p
                        for p in glob.glob(os.path.join(REPO, "include",
                                                        "*.h"))})
        graph = {name: re.findall(r'(?m)^#include "([^"]+)"', read(path))
                 for name, path in headers.items()}

        def circle(name, stack):
            if name in stack:
                return stack[stack.index(name):] + [name]
            for dep in graph.get(name, []):
                c = circle(dep, stack + [name])
                if c:
                    return c
            return None
        circles = [c for c in (circle(h, []) for h in graph) if c]
        self.assertEqual(circles, [])

    def test_every_plugin_is_in_its_kind_table(self):
        # one file + one table line: each ops table a file defines is
        # listed in its kind's table
        kinds = {"src/inputs/input.c": r"const struct input_ops (\w+) =",
                 "src/outputs/output.c": r"const struct output_ops (\w+) =",
                 "src/stores/store_plugins.c":
                 r"const struct store_plugin (\w+) =",
                 "src/drivers/driver.c": r"const struct driver_ops (\w+) ="}
        for table, pattern in kinds.items():
            folder = os.path.dirname(table)
            defined = []
            for path in sources(folder + "/*.c"):
                defined += re.findall(r"(?m)^" + pattern, read(path))
            self.assertGreater(len(defined), 0, table)
            for ops in defined:
                self.assertRegex(read(table), r"&%s\b" % ops,
                                 "%s is not in %s" % (ops, table))


if __name__ == "__main__":
    unittest.main()
