"""
ws_util.py - a raw RFC 6455 client for protocol edge cases that a normal
WebSocket library will not produce (unmasked frames, bad UTF-8, odd
fragmentation, a handshake with the wrong version), used by
test_ws_protocol.py and test_websocket.py.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

HB = "/artemis/websocket/registry/heartbeat"
CHANGE = "/artemis/websocket/discovery/instance-change"
ALL = "/artemis/websocket/discovery/all-instance-change"


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def handshake_request(host, port, path, version="13", key=None, extra=""):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n%s\r\n"
           % (path, host, port, key, version, extra))
    return req.encode(), key


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))


class RawWS:
    """One connection; handshake done in __init__ unless expect_status is
    given (then only the HTTP answer is read)."""

    def __init__(self, node, path, version="13", key=None, extra="", preamble=b"",
                 rcvbuf=None, timeout=5.0, expect_status=101):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((node.host, node.port))
        req, self.key = handshake_request(node.host, node.port, path, version, key, extra)
        self.sock.sendall(req + preamble)
        self.buf = b""
        self.status, self.headers = self._read_head()
        if expect_status is not None:
            assert self.status == expect_status, (self.status, self.headers)
        if self.status == 101:
            assert self.headers.get("sec-websocket-accept") == accept_for(self.key), self.headers

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def send(self, data):
        self.sock.sendall(data)

    def send_text(self, text):
        self.send(frame(OP_TEXT, text))

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next server frame."""
        self.sock.settimeout(timeout)
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), "server frames must not be masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill()
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_json(self, timeout=5.0):
        fin, op, payload = self.recv_frame(timeout)
        assert fin and op == OP_TEXT, (fin, op, payload[:200])
        return json.loads(payload.decode("utf-8"))

    def expect_close(self, code, timeout=5.0, skip_text=False):
        """Read until a close frame; return its payload.  Data frames
        before it fail the test unless skip_text."""
        deadline = time.monotonic() + timeout
        while True:
            fin, op, payload = self.recv_frame(max(0.1, deadline - time.monotonic()))
            if op == OP_CLOSE:
                got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                assert got == code, "close code %r, expected %r (%r)" % (got, code, payload)
                return payload
            assert skip_text and op == OP_TEXT, "unexpected frame %r %r" % (op, payload[:100])

    def expect_eof(self, timeout=5.0):
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not data:
                return

    def close(self):
        self.sock.close()
