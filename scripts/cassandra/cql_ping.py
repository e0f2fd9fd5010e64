#!/usr/bin/env python3
"""Minimal CQL native protocol v4 client (standard library only) for readiness checks.

Sends OPTIONS (expects SUPPORTED), STARTUP (expects READY), then one QUERY
(default: SELECT release_version FROM system.local) and prints the first column
of the first row. Exit status 0 only if every step succeeded, so it proves that
the node really serves queries, not just that the port is open.

Usage: cql_ping.py [--host 127.0.0.1] [--port 9042] [--timeout 5] [--query CQL] [--quiet]
"""

import argparse
import socket
import struct
import sys

VERSION_REQ = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = (
    0x00, 0x01, 0x02, 0x05, 0x06, 0x07, 0x08)
CONSISTENCY_ONE = 0x0001


class CqlError(Exception):
    pass


def _string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def _long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise CqlError("connection closed by server")
        buf += chunk
    return buf


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise CqlError("truncated response body")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode("utf-8", "replace")

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def string_list(self):
        return [self.string() for _ in range(self.short())]

    def option(self):
        """Skip a column type [option]; return its id."""
        tid = self.short()
        if tid == 0x0000:  # custom
            self.string()
        elif tid in (0x0020, 0x0022):  # list, set
            self.option()
        elif tid == 0x0021:  # map
            self.option()
            self.option()
        elif tid == 0x0030:  # udt
            self.string()
            self.string()
            for _ in range(self.short()):
                self.string()
                self.option()
        elif tid == 0x0031:  # tuple
            for _ in range(self.short()):
                self.option()
        return tid


def request(sock, stream, opcode, body=b""):
    sock.sendall(struct.pack(">BBhBi", VERSION_REQ, 0, stream, opcode, len(body)) + body)
    while True:
        header = _recv_exact(sock, 9)
        version, flags, rstream, ropcode, length = struct.unpack(">BBhBi", header)
        rbody = _recv_exact(sock, length) if length else b""
        if rstream != stream:  # e.g. server events on stream -1; not expected here
            continue
        if version & 0x7F != 0x04:
            raise CqlError("unexpected protocol version 0x%02x in response" % version)
        if flags & 0x01:
            raise CqlError("compressed response frame (compression was not requested)")
        r = Reader(rbody)
        if flags & 0x02:  # tracing id
            r.take(16)
        if flags & 0x08:  # server warnings, e.g. "Aggregation query used without partition key"
            r.string_list()
        if flags & 0x04:  # custom payload: [bytes map]
            for _ in range(r.short()):
                r.string()
                r.bytes()
        rbody = rbody[r.pos:]
        if ropcode == OP_ERROR:
            r = Reader(rbody)
            code = r.int()
            raise CqlError("server error 0x%04x: %s" % (code, r.string()))
        return ropcode, rbody


def decode_rows(body):
    r = Reader(body)
    kind = r.int()
    if kind != 0x0002:
        return kind, []
    flags = r.int()
    ncols = r.int()
    if flags & 0x0002:  # has_more_pages
        r.bytes()
    types = [None] * ncols
    if not flags & 0x0004:  # metadata present
        global_spec = bool(flags & 0x0001)
        if global_spec:
            r.string()
            r.string()
        for i in range(ncols):
            if not global_spec:
                r.string()
                r.string()
            r.string()
            types[i] = r.option()
    rows = []
    for _ in range(r.int()):
        rows.append([decode_value(types[i], r.bytes()) for i in range(ncols)])
    return kind, rows


def decode_value(type_id, raw):
    """Text-ish and integer columns as str; anything else as hex."""
    if raw is None:
        return "null"
    if type_id in (0x0001, 0x000D):  # ascii, varchar
        return raw.decode("utf-8", "replace")
    if type_id in (0x0002, 0x0009, 0x0013, 0x0014):  # bigint, int, smallint, tinyint
        return str(int.from_bytes(raw, "big", signed=True))
    if type_id == 0x0004:  # boolean
        return "true" if raw != b"\x00" else "false"
    return "0x" + raw.hex()


def ping(host, port, timeout, query):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        op, body = request(sock, 1, OP_OPTIONS)
        if op != OP_SUPPORTED:
            raise CqlError("OPTIONS: expected SUPPORTED, got opcode 0x%02x" % op)
        r = Reader(body)
        supported = {}
        for _ in range(r.short()):
            key = r.string()
            supported[key] = r.string_list()
        cql_version = (supported.get("CQL_VERSION") or ["3.0.0"])[0]

        op, _ = request(sock, 2, OP_STARTUP,
                        struct.pack(">H", 1) + _string("CQL_VERSION") + _string(cql_version))
        if op != OP_READY:
            raise CqlError("STARTUP: expected READY, got opcode 0x%02x" % op)

        op, body = request(sock, 3, OP_QUERY,
                           _long_string(query) + struct.pack(">HB", CONSISTENCY_ONE, 0))
        if op != OP_RESULT:
            raise CqlError("QUERY: expected RESULT, got opcode 0x%02x" % op)
        kind, rows = decode_rows(body)
        if kind == 0x0002:
            if not rows:
                raise CqlError("QUERY returned no rows")
            return rows[0][0]
        return {1: "ok (void)", 3: "ok (set_keyspace)", 4: "ok (prepared)",
                5: "ok (schema_change)"}.get(kind, "ok (result kind %d)" % kind)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9042)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--query", default="SELECT release_version FROM system.local")
    p.add_argument("--quiet", action="store_true", help="print nothing on success or failure")
    a = p.parse_args()
    try:
        value = ping(a.host, a.port, a.timeout, a.query)
    except (OSError, CqlError) as e:
        if not a.quiet:
            print("cql_ping: %s:%d: %s" % (a.host, a.port, e), file=sys.stderr)
        return 1
    if not a.quiet:
        print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
