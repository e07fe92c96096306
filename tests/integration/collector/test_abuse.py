"""Issue 15, bounded memory under abuse: zip bombs beside a legitimate
sender, every input limit named in its error, slow-loris senders.

Each hostile connection must be closed with a log line that names the
limit it hit; the legitimate sender must see every event acked once (no
reconnect, no resend) and nothing duplicated."""

import re
import socket
import struct
import threading
import time
import zlib

from conftest import (LumberjackClient, assert_exact, event_id, make_events,
                      send_all, wait_until)
from lumberjack import encode_json, encode_window

MiB = 1 << 20
GiB = 1 << 30


def bomb(inflated, unit, first=None, window=1):
    """W(window) + one C frame inflating to `inflated` bytes: `first` (1 MiB,
    default `unit`) then `unit` repeated. Each 1 MiB is one fully flushed
    block, so the same compressed block is repeated instead of compressing
    `inflated` bytes (test_hostile.fast_bomb, with a distinct first unit)."""
    first = unit if first is None else first
    assert len(unit) == MiB and len(first) == MiB and inflated % MiB == 0
    z = zlib.compressobj(9)
    b0 = z.compress(first) + z.flush(zlib.Z_FULL_FLUSH)
    blk = z.compress(unit) + z.flush(zlib.Z_FULL_FLUSH)
    tail = z.flush(zlib.Z_FINISH)[:-4]
    adler = zlib.adler32(first, 1)
    for _ in range(inflated // MiB - 1):
        adler = zlib.adler32(unit, adler)
    body = b0 + blk * (inflated // MiB - 1) + tail + struct.pack(">I", adler)
    return (encode_window(window) +
            struct.pack(">BBI", 0x32, 0x43, len(body)) + body)


def frames_unit(seq=1):
    """1 MiB of valid 1 KiB J frames."""
    payload = b'{"message":"' + b"b" * 1000 + b'"}'
    assert len(payload) == 1014
    return encode_json(seq, payload) * 1024


def big_event_first():
    """A J frame that claims 60 MiB, then its first 1 MiB of payload."""
    hdr = struct.pack(">BBII", 0x32, 0x4A, 1, 60 * MiB)
    return hdr + b'{"message":"' + b"a" * (MiB - len(hdr) - 12)


def bombs():
    """name, bytes: valid events at ~1000:1 in a window that claims them
    all; the same in a window of 1; one 60 MiB event inside a C frame."""
    return [
        ("frames_in_big_window", bomb(GiB, frames_unit(), window=65536)),
        ("frames_in_window_1", bomb(GiB, frames_unit(), window=1)),
        ("huge_event", bomb(512 * MiB, b"a" * MiB, big_event_first())),
        ("frames_in_big_window_2", bomb(GiB, frames_unit(), window=65536)),
    ]


def open_hostile(port):
    h = LumberjackClient(port=port, timeout=10)
    h.connect()
    return h, "127.0.0.1:%d" % h.sock.getsockname()[1]


def close_log(c, peer, what):
    e = c.wait_log(lambda e: e.get("peer") == peer and
                   "clos" in e.get("message", ""), what=what, timeout=30)
    assert e["log.level"] in ("warn", "error"), e
    return e


def test_zip_bombs_beside_a_good_sender(es, make_collector):
    """Four concurrent zip bombs and a legitimate sender, default limits:
    peak RSS (VmHWM) under 96 MiB, every bomb closed naming its limit, the
    good sender's events all acked on its one connection, none twice."""
    c = make_collector(es)
    n = 20000
    good = make_events("z", n)
    errors = []

    def run_good():
        try:
            # send_all fails on any disconnect: no resend is possible
            send_all(c.lj_port, good, window=500, compress=3)
        except BaseException as e:
            errors.append(e)

    conns = [(name, data) + open_hostile(c.lj_port)
             for name, data in bombs()]

    def run_bomb(h, data):
        try:
            h.send_raw(data)
        except OSError:
            pass  # closed by the collector before it read everything

    gt = threading.Thread(target=run_good)
    gt.start()
    bts = [threading.Thread(target=run_bomb, args=(h, data))
           for _, data, h, _ in conns]
    for t in bts:
        t.start()
    reasons = {}
    for name, _, h, peer in conns:
        assert h.peer_closed(timeout=30), "%s: still open" % name
        e = close_log(c, peer, "close of %s" % name)
        # the reason names the limit (a config key) and its value
        assert re.search(r"max_[a-z_]+ \d+", e.get("reason", "")), (name, e)
        reasons[name] = e["reason"]
    for t in bts:
        t.join(30)
    for _, _, h, _ in conns:
        h.close()
    gt.join(120)
    assert not errors, errors
    assert_exact(es, [event_id("z", i) for i in range(n)], timeout=60)
    hwm = c.vm_hwm_kib()
    print("bomb close reasons:", reasons)
    print("VmHWM KiB", hwm, "asan" if c.asan() else "")
    m = c.metrics()
    assert m["sluice_input_protocol_errors_total"] == 4, m
    if not c.asan():
        assert hwm < 96 * 1024, hwm
    assert c.term() == 0
