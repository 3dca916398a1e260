"""The bounds the manual pages give as numbers are the code's: each
sentence below names the constant it comes from, and both must say the
same number (a change of one without the other fails here)."""

import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# (header, constant, man page, the sentence with the value as the page
# says it: a regex whose group 1 is the number; a constant in ms is said
# in seconds)
CLAIMS = [
    ("src/inputs/in_pull.c", "PULL_BATCH", "man/event-reactor.7",
     r"the messages taken with it \(up to (\d+) a wake-up\)"),
    ("src/inputs/in_pull.c", "PULL_BATCH", "man/event-router.8",
     r"the messages taken with them \(up to (\d+)\s+a wake-up\)"),
    ("src/inputs/in_pull.c", "PULL_BATCH", "man/event-reactor.7",
     r"at most (\d+) messages of its\s+last wake-up, not yet published"),
    ("include/store.h", "STORE_QUEUE_DEFAULT",
     "man/event-reactor.7", r"(\d+) events queued\s+for the store"),
    ("src/stores/store_backend.h", "STORE_BATCH_MAX",
     "man/event-reactor.7", r"a group of (\d+) being written"),
    ("src/core/bus.h", "BUS_PULL_HWM", "man/event-reactor.7",
     r"up to (\d+) messages per sender queued in ZeroMQ"),
    ("src/core/bus.h", "BUS_SUBSCRIPTION_MAX", "man/event-reactor.7",
     r"A subscription is a prefix of up to (\d+) bytes"),
    ("src/inputs/in_pull.c", "PULL_DRAIN_MS",
     "man/event-reactor.7", r"pause \(for at most (\d+) seconds\)"),
]


def read(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8") as f:
        return f.read()


class DocumentedLimits(unittest.TestCase):

    def test_each_number_is_its_constant(self):
        for header, name, page, sentence in CLAIMS:
            with self.subTest(constant=name, page=page):
                m = re.search(r"^#define %s (\d+)\b" % name, read(header),
                              re.M)
                self.assertIsNotNone(m, "%s: no #define %s" % (header, name))
                value = int(m.group(1))
                said = re.search(sentence, read(page))
                self.assertIsNotNone(said, "%s: %r" % (page, sentence))
                n = int(said.group(1))
                if name.endswith("_MS"):
                    n *= 1000
                self.assertEqual(n, value, "%s says %s, %s is %d"
                                 % (page, said.group(0), name, value))


if __name__ == "__main__":
    unittest.main()
