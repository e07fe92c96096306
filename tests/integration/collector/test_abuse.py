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
    assert m["sluice_collector_input_protocol_errors_total"] == 4, m
    if not c.asan():
        assert hwm < 96 * 1024, hwm
    assert c.term() == 0


LIMITS = {"type": "lumberjack", "listen": "127.0.0.1:0",
          "max_connections": 4, "max_window_bytes": "64KiB",
          "max_event_bytes": "4KiB", "max_fields": 50, "max_depth": 5,
          "timestamp_max_future": "1h", "timestamp_max_past": "3650d",
          "idle_timeout": "2s", "frame_timeout": "2s"}


def hostile_close(c, data, pat, what, trickle=None):
    """Send data on a new connection (a byte per `trickle` seconds when
    set); the collector must close it with a reason matching pat."""
    h, peer = open_hostile(c.lj_port)
    try:
        if trickle:
            for b in data:
                h.send_raw(bytes([b]))
                if h.peer_closed(timeout=trickle):
                    break
        else:
            h.send_raw(data)
    except OSError:
        pass
    assert h.peer_closed(timeout=15), "%s: still open" % what
    h.close()
    e = close_log(c, peer, what)
    assert re.search(pat, e.get("reason", "")), (what, e)
    return e["reason"]


def test_every_input_limit_is_named(es, make_collector):
    """Each limit's error names the limit and its value (before: "value over
    its configured limit", naming neither). Connection-level limits close
    the connection; event-level ones keep the event as an invalid event
    whose error names the limit (closing would make the sender resend it
    forever)."""
    c = make_collector(es, {"inputs": [LIMITS]})
    reasons = {}
    ev = b'{"message":"' + b"w" * 1000 + b'"}'
    # window: 100 events of 1 KiB in one window of 100
    reasons["window_bytes"] = hostile_close(
        c, encode_window(100) + b"".join(encode_json(i + 1, ev)
                                         for i in range(100)),
        r"max_window_bytes 65536", "window bytes")
    reasons["window_events"] = hostile_close(
        c, encode_window(2) + b"".join(encode_json(i + 1, b"{}")
                                       for i in range(3)),
        r"window of 2 .*max_window \d+", "window events")
    reasons["event_bytes"] = hostile_close(
        c, encode_window(1) + encode_json(1, b'{"m":"' + b"x" * 5000 + b'"}'),
        r"max_event_bytes 4096", "event bytes")
    # slow loris: a partial frame, then silence / a byte at a time
    reasons["stall"] = hostile_close(
        c, encode_window(1) + encode_json(1, b'{"m":"x"}')[:7],
        r"idle_timeout 2000", "stalled sender")
    reasons["trickle"] = hostile_close(
        c, encode_window(1) + encode_json(1, b'{"m":"' + b"t" * 200 + b'"}'),
        r"frame_timeout 2000", "trickling sender", trickle=0.25)
    # connections: max_connections 4
    held = [open_hostile(c.lj_port) for _ in range(4)]
    h, peer = open_hostile(c.lj_port)
    assert h.peer_closed(timeout=10)
    e = close_log(c, peer, "fifth connection")
    assert re.search(r"max_connections 4", e["reason"]), e
    reasons["connections"] = e["reason"]
    for x, _ in held:
        x.close()
    h.close()
    m = c.metrics()
    assert m["sluice_collector_input_protocol_errors_total"] == 3, m

    # per-event limits: acked, stored as invalid events naming the limit
    deep = b'{"a":' * 6 + b"1" + b"}" * 6
    wide = ("{%s}" % ",".join('"k%d":%d' % (i, i) for i in range(60))).encode()
    future = b'{"@timestamp":"2100-01-01T00:00:00Z","message":"f"}'
    past = b'{"@timestamp":"1990-01-01T00:00:00Z","message":"p"}'
    wait_until(lambda: c.metric("sluice_collector_input_connections") == 0, 15,
               what="held connections closed")
    send_all(c.lj_port, [deep, wide, future, past], window=4)
    want = {"max_depth 5": deep, "max_fields 50": wide,
            "timestamp_max_future 3600000": future,
            "timestamp_max_past 315360000000": past}

    def invalid():
        return [d["_source"] for d in es.docs()
                if "sluice_invalid_event" in d["_source"].get("tags", [])]
    wait_until(lambda: len(invalid()) == 4, 30, what="4 invalid events")
    got = {}
    for d in invalid():
        for k, raw in want.items():
            if k in d["error"]["message"]:
                assert d["message"] == raw.decode(), d
                got[k] = d["error"]["message"]
    assert sorted(got) == sorted(want), got
    print(reasons, got)
    assert c.term() == 0


def nofile_soft(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError("no Max open files")


def test_descriptor_exhaustion_logged_and_recovered(es, make_collector):
    """Default max_connections fits ulimit -n with room for the spool, ES and
    HTTP; when accept() fails with EMFILE anyway (the limit lowered under
    the running process) it is logged, rate-limited, and the collector
    recovers once descriptors are free."""
    import resource
    c = make_collector(es)
    soft = nofile_soft(c.proc.pid)
    e = c.wait_log(lambda e: e.get("message") == "listening")
    assert e["max_connections"] == soft - 128, (e, soft)
    if soft == 1024:
        assert e["max_connections"] == 896
    nfds = len(__import__("os").listdir("/proc/%d/fd" % c.proc.pid))
    resource.prlimit(c.proc.pid, resource.RLIMIT_NOFILE,
                     (nfds + 8, resource.prlimit(c.proc.pid,
                                                 resource.RLIMIT_NOFILE)[1]))
    socks = []
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", c.lj_port), timeout=5)
        socks.append(s)
    logs = lambda: c.find_logs(lambda e: "out of file descriptors" in
                               e.get("message", ""))
    wait_until(lambda: len(logs()) >= 1, 15, what="EMFILE log")
    time.sleep(1)
    assert len(logs()) == 1, logs()     # rate-limited
    assert logs()[0]["error.code"] == "EMFILE", logs()
    for s in socks:
        s.close()
    resource.prlimit(c.proc.pid, resource.RLIMIT_NOFILE, (soft, soft)
                     if soft <= resource.getrlimit(
                         resource.RLIMIT_NOFILE)[1] else (soft, soft))
    wait_until(lambda: c.metric("sluice_collector_input_connections") == 0, 15,
               what="connections closed")
    evs = make_events("f", 100)
    send_all(c.lj_port, evs, window=100)
    assert_exact(es, [event_id("f", i) for i in range(100)], timeout=30)
    assert c.term() == 0
