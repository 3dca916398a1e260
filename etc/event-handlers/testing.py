"""Sample pyfunc handlers, after the ancestor's testing.py, in Python 3.

event-sub calls each function with the event as a dict built from its JSON.
What a function prints or logs reaches event-sub's log, tagged with the
handler's name; what it returns is stored, JSON-encoded, in results.data.
"""

import json
import logging

log = logging.getLogger(__name__)


def dumpEvent(event):
    """Print the whole event."""
    print(json.dumps(event, indent=2, sort_keys=True, ensure_ascii=False))


def dumpEventPayload(event):
    """Print the event's payload and return its top-level keys."""
    payload = event.get("payload")
    print(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
    log.info("event %s (%s:%s) dumped", event.get("id"),
             event.get("namespace"), event.get("event_type"))
    return sorted(payload) if isinstance(payload, dict) else None
