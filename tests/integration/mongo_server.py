#!/usr/bin/python3
"""A small MongoDB wire-protocol server for the integration tests.

No MongoDB server is packaged for Debian, so the tests run the real
binaries, through the real mongo-c-driver over TCP, against this: it
speaks enough of the protocol for the driver (OP_MSG, opcode 2013, with
kind 0 and kind 1 sections; legacy OP_QUERY, opcode 2004, for the first
``isMaster`` of a connection) and keeps every document it is sent.

    mongo_server.py --port PORT --data DIR [--refuse-key KEY]

It prints ``listening PORT`` on stdout once it accepts connections.  DIR
keeps its state across restarts, so a test can stop it, fire events and
start it again on the same port:

``DIR/docs.bson``
    one BSON record ``{"ns": "db.coll", "doc": <the document as sent>}`` per
    document accepted, appended in arrival order (the bytes the driver
    sent, untouched);
``DIR/commands.bson``
    one record per command received (insert commands without their
    documents), so tests can see what the driver sent (createIndexes...);
``DIR/not_primary``
    while this file exists, ``insert`` fails with NotWritablePrimary
    (code 10107), as a replica set member that just stepped down.

It answers as a standalone server of wire version 13 (MongoDB 5.0):
hello/isMaster, ping, buildInfo, endSessions, insert (duplicate ``_id`` ->
writeErrors code 11000; over 16 MiB -> 10334; with ``--refuse-key KEY``, a
document whose ``payload`` has a member KEY -> code 2, the way a server
refuses a document for what it is), find (filters on top-level fields:
equality, $eq/$gt/$gte/$lt/$lte/$ne; sort, skip, limit) and getMore, count,
aggregate ($match, $skip, $limit and a $group counting: what
``count_documents`` sends), createIndexes, listIndexes, listCollections,
killCursors, drop, dropDatabase.  Any other command gets ``ok: 0``, code
59 (CommandNotFound) and a line ``unknown command NAME`` on stderr, so a
test notices.

Also a tiny client (``Wire``) the tests use to read documents back, from
this server or from a real MongoDB (no authentication, no TLS).
"""

import argparse
import collections
import datetime
import os
import socket
import socketserver
import struct
import sys
import threading

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from bson.son import SON

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
MAX_BSON = 16 * 1024 * 1024
MAX_MSG = 48000000
RAW = CodecOptions(document_class=RawBSONDocument)
ORDERED = CodecOptions(document_class=SON)


def decode(raw):
    return bson.decode(raw, codec_options=ORDERED)


def read_records(path):
    """Complete BSON records of an append-only file (a partial last one,
    being written, is left for next time)."""
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return out
    pos = 0
    while pos + 4 <= len(data):
        n = struct.unpack_from("<i", data, pos)[0]
        if n < 5 or pos + n > len(data):
            break
        out.append(bson.decode(data[pos:pos + n], codec_options=RAW))
        pos += n
    return out


def stored_docs(datadir, ns=None):
    """[(ns, raw document bytes)] in arrival order."""
    out = []
    for rec in read_records(os.path.join(datadir, "docs.bson")):
        if ns is None or rec["ns"] == ns:
            out.append((rec["ns"], rec["doc"].raw))
    return out


def stored_commands(datadir):
    return [decode(r.raw) for r in
            read_records(os.path.join(datadir, "commands.bson"))]


def first_id(raw):
    """The _id of a raw document: decoded normally, or from the first
    element when the rest cannot be decoded (a date out of range...)."""
    try:
        return ("d", repr(decode(raw).get("_id")))
    except Exception:  # noqa: BLE001 - any decoding problem
        return ("raw", raw[4:40])


class Store:
    def __init__(self, datadir):
        self.dir = datadir
        os.makedirs(datadir, exist_ok=True)
        self.lock = threading.Lock()
        self.colls = collections.defaultdict(collections.OrderedDict)
        self.cache = {}         # (ns, key): the document decoded
        self.indexes = collections.defaultdict(list)
        for ns, raw in stored_docs(datadir):
            self.colls[ns][first_id(raw)] = raw
        for cmd in stored_commands(datadir):
            if "createIndexes" in cmd:
                ns = "%s.%s" % (cmd.get("$db"), cmd["createIndexes"])
                self._add_indexes(ns, cmd.get("indexes", []))
        self.docs_f = open(os.path.join(datadir, "docs.bson"), "ab")
        self.cmds_f = open(os.path.join(datadir, "commands.bson"), "ab")

    def _add_indexes(self, ns, specs):
        have = {s["name"] for s in self.indexes[ns]}
        for s in specs:
            if s.get("name") not in have:
                self.indexes[ns].append(s)

    def decoded(self, ns):
        """The documents of ns, decoded (once each; under the lock)."""
        out = []
        for key, raw in self.colls[ns].items():
            d = self.cache.get((ns, key))
            if d is None:
                d = self.cache[(ns, key)] = decode(raw)
            out.append(d)
        return out

    def log_command(self, cmd):
        self.cmds_f.write(bson.encode(cmd))
        self.cmds_f.flush()

    def insert(self, ns, raw):
        key = first_id(raw)
        if key in self.colls[ns]:
            return False
        self.colls[ns][key] = raw
        self.docs_f.write(bson.encode({"ns": ns,
                                       "doc": RawBSONDocument(raw)}))
        self.docs_f.flush()
        return True


def hello_reply(cmd):
    r = SON([
        ("ismaster", True), ("isWritablePrimary", True),
        ("maxBsonObjectSize", MAX_BSON), ("maxMessageSizeBytes", MAX_MSG),
        ("maxWriteBatchSize", 100000),
        ("localTime", datetime.datetime.now(datetime.timezone.utc)),
        ("minWireVersion", 0), ("maxWireVersion", 13), ("readOnly", False),
        ("connectionId", 1),
    ])
    if cmd.get("helloOk"):
        r["helloOk"] = True
    r["ok"] = 1.0
    return r


OPS = {"$eq": lambda a, b: a == b, "$gt": lambda a, b: a > b,
       "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b,
       "$lte": lambda a, b: a <= b}


def matches(doc, flt):
    """Top-level fields: equal, or {"$gt": v} ($eq, $gt, $gte, $lt, $lte,
    between values of one type, as an index compares ObjectIds), or
    {"$ne": v} (a field that is missing or not v: the catch-up's count
    of results leaves out {replayed: true})."""
    for k, v in flt.items():
        if isinstance(v, dict) and list(v) == ["$ne"]:
            if k in doc and doc[k] == v["$ne"]:
                return False
            continue
        if k not in doc:
            return False
        if isinstance(v, dict) and v and all(o in OPS for o in v):
            for o, w in v.items():
                if type(doc[k]) is not type(w) or not OPS[o](doc[k], w):
                    return False
        elif doc[k] != v:
            return False
    return True


def select(docs, flt, sort=None, skip=0, limit=0):
    """find's filter, sort (fields of one type each), skip and limit."""
    docs = [d for d in docs if matches(d, flt)]
    for k, d in reversed(list((sort or {}).items())):
        docs.sort(key=lambda x: x.get(k), reverse=d < 0)
    docs = docs[skip or 0:]
    return docs[:abs(limit)] if limit else docs


def aggregate(docs, pipeline):
    """$match, $skip, $limit and {$group: {_id: ..., n: {$sum: 1}}}: what
    mongoc_collection_count_documents() sends."""
    for stage in pipeline:
        op, arg = next(iter(stage.items()))
        if op == "$match":
            docs = [d for d in docs if matches(d, arg)]
        elif op == "$skip":
            docs = docs[arg:]
        elif op == "$limit":
            docs = docs[:arg]
        elif op == "$group" and list(arg.values())[1:] == [{"$sum": 1}]:
            name = list(arg)[1]
            docs = [SON([("_id", arg["_id"]), (name, len(docs))])] \
                if docs else []
        else:
            raise ValueError("stage %s" % op)
    return docs


class Handler(socketserver.BaseRequestHandler):
    store = None
    refuse_key = None

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def handle(self):
        try:
            while True:
                head = self.recv_exact(16)
                length, req_id, _, opcode = struct.unpack("<iiii", head)
                body = self.recv_exact(length - 16)
                if opcode == OP_MSG:
                    self.op_msg(req_id, body)
                elif opcode == OP_QUERY:
                    self.op_query(req_id, body)
                else:
                    sys.stderr.write("unknown opcode %d\n" % opcode)
                    return
        except (EOFError, ConnectionError, OSError):
            return

    def send(self, req_id, opcode, payload):
        head = struct.pack("<iiii", 16 + len(payload), 0, req_id, opcode)
        self.request.sendall(head + payload)

    def op_query(self, req_id, body):
        pos = 4
        end = body.index(b"\0", pos)
        pos = end + 1 + 8
        n = struct.unpack_from("<i", body, pos)[0]
        cmd = decode(body[pos:pos + n])
        if "$query" in cmd:
            cmd = cmd["$query"]
        reply = self.command(cmd, {})
        doc = bson.encode(reply)
        self.send(req_id, OP_REPLY, struct.pack("<iqii", 0, 0, 0, 1) + doc)

    def op_msg(self, req_id, body):
        flags = struct.unpack_from("<I", body, 0)[0]
        end = len(body) - (4 if flags & 1 else 0)
        pos = 4
        cmd = None
        seqs = {}
        while pos < end:
            kind = body[pos]
            pos += 1
            n = struct.unpack_from("<i", body, pos)[0]
            if kind == 0:
                cmd = decode(body[pos:pos + n])
                pos += n
            else:
                sec_end = pos + n
                p = pos + 4
                z = body.index(b"\0", p)
                ident = body[p:z].decode()
                p = z + 1
                docs = []
                while p < sec_end:
                    m = struct.unpack_from("<i", body, p)[0]
                    docs.append(body[p:p + m])
                    p += m
                seqs[ident] = docs
                pos = sec_end
        reply = self.command(cmd, seqs)
        if flags & 2:       # moreToCome: the client wants no reply
            return
        self.send(req_id, OP_MSG, struct.pack("<IB", 0, 0) +
                  bson.encode(reply))

    # commands ------------------------------------------------------------
    def command(self, cmd, seqs):
        name = next(iter(cmd))
        lname = name.lower()
        db = cmd.get("$db", "admin")
        st = self.store
        logged = SON((k, v) for k, v in cmd.items() if k != "documents")
        if name == "insert":
            raws = seqs.get("documents") or [
                bson.encode(d) for d in cmd.get("documents", [])]
            logged["n"] = len(raws)
        with st.lock:
            st.log_command(logged)
        if lname in ("hello", "ismaster"):
            return hello_reply(cmd)
        if lname in ("ping", "endsessions", "killcursors"):
            return {"ok": 1.0}
        if lname == "buildinfo":
            return {"version": "5.0.0", "versionArray": [5, 0, 0, 0],
                    "maxBsonObjectSize": MAX_BSON, "ok": 1.0}
        if name == "insert":
            return self.insert(db, cmd, raws)
        if name in ("find", "count"):
            ns = "%s.%s" % (db, cmd[name])
            flt = cmd.get("filter" if name == "find" else "query") or {}
            with st.lock:
                docs = st.decoded(ns)
            if name == "count":
                return {"n": len(select(docs, flt)), "ok": 1.0}
            docs = select(docs, flt, cmd.get("sort"), cmd.get("skip"),
                          cmd.get("limit"))
            return {"cursor": {"id": bson.int64.Int64(0), "ns": ns,
                               "firstBatch": docs}, "ok": 1.0}
        if name == "aggregate":
            ns = "%s.%s" % (db, cmd[name])
            with st.lock:
                docs = st.decoded(ns)
            try:
                docs = aggregate(docs, cmd.get("pipeline", []))
            except ValueError as e:
                sys.stderr.write("unknown aggregate %s\n" % e)
                sys.stderr.flush()
                return {"ok": 0.0, "code": 59, "codeName":
                        "CommandNotFound", "errmsg": str(e)}
            return {"cursor": {"id": bson.int64.Int64(0), "ns": ns,
                               "firstBatch": docs}, "ok": 1.0}
        if name == "getMore":
            return {"cursor": {"id": bson.int64.Int64(0),
                               "ns": "%s.%s" % (db, cmd.get("collection")),
                               "nextBatch": []}, "ok": 1.0}
        if name == "createIndexes":
            ns = "%s.%s" % (db, cmd[name])
            with st.lock:
                before = len(st.indexes[ns]) + 1
                st._add_indexes(ns, cmd.get("indexes", []))
                after = len(st.indexes[ns]) + 1
            return {"numIndexesBefore": before, "numIndexesAfter": after,
                    "createdCollectionAutomatically": before == 1,
                    "ok": 1.0}
        if name == "listIndexes":
            ns = "%s.%s" % (db, cmd[name])
            with st.lock:
                specs = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}] + \
                    [dict(s, v=2) for s in st.indexes[ns]]
            return {"cursor": {"id": bson.int64.Int64(0), "ns": ns,
                               "firstBatch": specs}, "ok": 1.0}
        if name == "listCollections":
            with st.lock:
                names = sorted({ns.split(".", 1)[1] for ns in st.colls
                                if ns.startswith(db + ".")})
            return {"cursor": {"id": bson.int64.Int64(0),
                               "ns": db + ".$cmd.listCollections",
                               "firstBatch": [{"name": n, "type":
                                               "collection"}
                                              for n in names]}, "ok": 1.0}
        if name in ("drop", "dropDatabase"):
            with st.lock:
                for ns in list(st.colls):
                    if (name == "drop" and ns == "%s.%s" % (db, cmd[name])) \
                            or (name == "dropDatabase" and
                                ns.startswith(db + ".")):
                        del st.colls[ns]
                        st.cache = {k: v for k, v in st.cache.items()
                                    if k[0] != ns}
                        st.indexes.pop(ns, None)
            return {"ok": 1.0}
        sys.stderr.write("unknown command %s\n" % name)
        sys.stderr.flush()
        return {"ok": 0.0, "code": 59, "codeName": "CommandNotFound",
                "errmsg": "no such command: '%s'" % name}

    def insert(self, db, cmd, raws):
        ns = "%s.%s" % (db, cmd["insert"])
        ordered = cmd.get("ordered", True)
        if os.path.exists(os.path.join(self.store.dir, "not_primary")):
            return {"ok": 0.0, "code": 10107,
                    "codeName": "NotWritablePrimary",
                    "errmsg": "not primary"}
        n = 0
        errors = []
        for i, raw in enumerate(raws):
            err = None
            if len(raw) > MAX_BSON:
                err = (10334, "BSONObjectTooLarge: object to insert too "
                       "large. size in bytes: %d, max size: %d"
                       % (len(raw), MAX_BSON))
            elif self.refuse_key is not None:
                try:
                    payload = decode(raw).get("payload")
                except Exception:  # noqa: BLE001
                    payload = None
                if isinstance(payload, dict) and self.refuse_key in payload:
                    err = (2, "BadValue: document refused by the test "
                           "server (--refuse-key %s)" % self.refuse_key)
            if err is None:
                with self.store.lock:
                    if self.store.insert(ns, raw):
                        n += 1
                        continue
                err = (11000, "E11000 duplicate key error collection: %s "
                       "index: _id_ dup key" % ns)
            errors.append({"index": i, "code": err[0], "errmsg": err[1]})
            if ordered:
                break
        reply = SON([("n", n)])
        if errors:
            reply["writeErrors"] = errors
        reply["ok"] = 1.0
        return reply


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


# --------------------------------------------------------------------------
# a tiny client, for the tests

class Wire:
    """OP_MSG commands over one connection (no auth, no TLS)."""

    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout)
        self.req = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    def command(self, db, cmd):
        cmd = SON(cmd)
        cmd["$db"] = db
        self.req += 1
        payload = struct.pack("<IB", 0, 0) + bson.encode(cmd)
        self.sock.sendall(struct.pack("<iiii", 16 + len(payload), self.req,
                                      0, OP_MSG) + payload)
        length, _, _, opcode = struct.unpack("<iiii", self._recv(16))
        body = self._recv(length - 16)
        if opcode != OP_MSG or body[4] != 0:
            raise RuntimeError("unexpected reply opcode %d" % opcode)
        return decode(body[5:])

    def find(self, db, coll, flt=None):
        r = self.command(db, SON([("find", coll), ("filter", flt or {})]))
        if r.get("ok") != 1:
            raise RuntimeError("find failed: %r" % r)
        docs = list(r["cursor"]["firstBatch"])
        cid = r["cursor"]["id"]
        while cid:
            r = self.command(db, SON([("getMore", cid),
                                      ("collection", coll)]))
            docs += r["cursor"]["nextBatch"]
            cid = r["cursor"]["id"]
        return docs

    def list_indexes(self, db, coll):
        r = self.command(db, SON([("listIndexes", coll)]))
        if r.get("ok") != 1:
            return []
        return list(r["cursor"]["firstBatch"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data", required=True)
    ap.add_argument("--refuse-key")
    args = ap.parse_args()
    Handler.store = Store(args.data)
    Handler.refuse_key = args.refuse_key
    srv = Server(("127.0.0.1", args.port), Handler)
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
