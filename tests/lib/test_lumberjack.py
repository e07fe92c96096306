"""Tests for tests/lib/lumberjack.py (codec, receiver, client, CLI)."""

import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib

import pytest

import lumberjack as lj
from lumberjack import (FrameDecoder, LumberjackClient, LumberjackReceiver,
                        ProtocolError)

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable


def evs(n, start=0):
    return [{"@timestamp": "2024-05-01T12:00:00.000Z", "n": i,
             "message": "line %d" % i} for i in range(start, start + n)]


# ------------------------------------------------------------------ codec

def test_encoders_match_the_wire_format():
    assert lj.encode_window(5) == b"2W\x00\x00\x00\x05"
    assert lj.encode_ack(7) == b"2A\x00\x00\x00\x07"
    assert lj.encode_json(1, b'{"a":1}') == \
        b"2J\x00\x00\x00\x01\x00\x00\x00\x07" + b'{"a":1}'
    assert lj.encode_data(3, {"k": "v"}) == (
        b"1D\x00\x00\x00\x03\x00\x00\x00\x01" +
        b"\x00\x00\x00\x01k\x00\x00\x00\x01v")
    c = lj.encode_compressed(b"2A\x00\x00\x00\x01")
    assert c[:2] == b"2C"
    (ln,) = struct.unpack(">I", c[2:6])
    assert ln == len(c) - 6
    assert zlib.decompress(c[6:]) == b"2A\x00\x00\x00\x01"


def test_decoder_round_trip_all_frame_types():
    inner = lj.encode_json(2, {"b": 2}) + lj.encode_data(3, {"k": "v"})
    wire = (lj.encode_window(3) + lj.encode_json(1, {"a": 1}) +
            lj.encode_compressed(inner) + lj.encode_ack(9))
    frames = FrameDecoder().feed(wire)
    assert frames[0] == ("W", lj.V2, 3)
    assert frames[1] == ("J", lj.V2, 1, b'{"a":1}')
    assert frames[2][0] == "C" and frames[2][3] == len(inner)
    assert frames[3] == ("J", lj.V2, 2, b'{"b":2}')
    assert frames[4] == ("D", lj.V1, 3, {"k": "v"})
    assert frames[5] == ("A", lj.V2, 9)


def test_decoder_split_reads_byte_by_byte():
    wire = (lj.encode_window(2) + lj.encode_data(1, {"x": "1", "y": "2"}) +
            lj.encode_compressed(lj.encode_json(2, {"z": 3})))
    d = FrameDecoder()
    frames = []
    for k in range(len(wire)):
        frames += d.feed(wire[k:k + 1])
    assert [f[0] for f in frames] == ["W", "D", "C", "J"]
    assert frames[1][3] == {"x": "1", "y": "2"}
    assert d.pending() == 0


@pytest.mark.parametrize("wire,kw,needle", [
    (b"3W\x00\x00\x00\x01", {}, "bad version"),
    (b"2Z\x00\x00\x00\x01", {}, "unknown frame type"),
    (lj.encode_window(1000), {"max_window": 999}, "window 1000 over"),
    (b"2J\x00\x00\x00\x01\x00\x10\x00\x00", {"max_frame": 1000},
     "over limit"),
    (lj.encode_compressed(b"\0" * 100000), {"max_decompressed": 50000},
     "inflates beyond"),
    (lj.encode_compressed(lj.encode_compressed(lj.encode_compressed(
        lj.encode_ack(1)))), {"max_depth": 2}, "nested deeper"),
    (lj.encode_compressed(lj.encode_json(1, b"{}")[:-1]), {},
     "partial frame inside"),
    (b"2C\x00\x00\x00\x04abcd", {}, "bad zlib"),
    (b"2C\x00\x00\x00\x04" + zlib.compress(b"2A\x00\x00\x00\x01")[:4], {},
     "truncated zlib"),
])
def test_decoder_limits(wire, kw, needle):
    with pytest.raises(ProtocolError) as e:
        FrameDecoder(**kw).feed(wire)
    assert needle in str(e.value)


def test_decoder_count_mode_drops_payloads():
    d = FrameDecoder(keep_payload=False)
    f = d.feed(lj.encode_json(1, {"a": 1}))
    assert f == [("J", lj.V2, 1, None)]


# ------------------------------------------------------------ round trips

@pytest.mark.parametrize("level", [0, 1, 6])
def test_round_trip_json(level):
    with LumberjackReceiver() as r:
        with LumberjackClient(port=r.port, compress_level=level,
                              window=100) as c:
            assert c.send(evs(250)) == 250
            assert c.acks == [100, 100, 50]
        assert r.wait_for(250)
        assert r.events == evs(250)
        assert [x.seq for x in r.records[:3]] == [1, 2, 3]
        assert r.records[100].seq == 1 and r.records[100].window == 1
        assert r.windows == 3 and r.acks == 3
        assert r.counters["seq_errors"] == 0
        assert r.counters["frames_c"] == (3 if level else 0)


def test_round_trip_raw_json_bytes():
    raw = [b'{"a":1}', '{"b":"x"}']
    with LumberjackReceiver() as r:
        with LumberjackClient(port=r.port) as c:
            assert c.send(raw) == 2
        assert r.wait_for(2)
        assert r.events == [{"a": 1}, {"b": "x"}]


@pytest.mark.parametrize("version,level", [(lj.V1, 0), (lj.V1, 3),
                                           (lj.V2, 3)])
def test_round_trip_data_frames(version, level):
    with LumberjackReceiver() as r:
        with LumberjackClient(port=r.port, version=version,
                              data_frames=True, compress_level=level,
                              window=10) as c:
            assert c.send([{"line": "hello %d" % i, "offset": i}
                           for i in range(25)]) == 25
        assert r.wait_for(25)
        assert r.events[3] == {"line": "hello 3", "offset": "3"}
        assert r.counters["frames_d"] == 25


def test_ack_version_follows_window_version():
    with LumberjackReceiver() as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(lj.encode_window(1, lj.V1) + lj.encode_data(1, {"a": "b"}))
        assert s.recv(6) == b"1A\x00\x00\x00\x01"
        s.close()


def test_nested_compressed_within_depth():
    with LumberjackReceiver(max_depth=2) as r:
        with LumberjackClient(port=r.port, nested=1) as c:
            assert c.send(evs(5)) == 5
        assert r.events == evs(5)


def test_many_connections():
    import threading
    with LumberjackReceiver(store="raw") as r:
        done = []

        def one(k):
            with LumberjackClient(port=r.port, window=50) as c:
                done.append(c.send([json.dumps({"c": k, "i": i})
                                    for i in range(200)]))
        ts = [threading.Thread(target=one, args=(k,)) for k in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert done == [200] * 5
        assert r.wait_for(1000)
        assert r.connections == 5
        per = {}
        for rec in r.records:
            per.setdefault(rec.conn, []).append(json.loads(rec.event)["i"])
        assert all(v == list(range(200)) for v in per.values()), \
            "each connection's events arrive in order"


def test_sequence_anomalies_counted():
    with LumberjackReceiver() as r:
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.sendall(lj.encode_window(2) + lj.encode_json(1, b"{}") +
                  lj.encode_json(5, b"{}"))
        assert s.recv(6) == lj.encode_ack(5)
        s.close()
        assert r.counters["seq_errors"] == 1


# ------------------------------------------------------- receiver controls

def test_ack_mode_none_times_out_client():
    with LumberjackReceiver(ack_mode="none") as r:
        with LumberjackClient(port=r.port, timeout=0.5) as c:
            assert c.send(evs(3)) == 0
            assert isinstance(c.last_error, socket.timeout)
        assert r.wait_for(3)
        assert r.acks == 0 and r.windows == 1


def test_hold_and_release_acks():
    with LumberjackReceiver(ack_mode="hold") as r:
        c = LumberjackClient(port=r.port).connect()
        c.send_raw(c.build_window(evs(4)))
        assert r.wait_until(lambda x: x.windows == 1)
        with pytest.raises(socket.timeout):
            c.read_ack(timeout=0.3)
        r.release_acks()
        assert c.read_ack(timeout=5) == 4
        c.close()


def test_partial_and_keepalive_acks():
    with LumberjackReceiver(ack_mode="partial", partial_every=3) as r:
        with LumberjackClient(port=r.port, window=10) as c:
            assert c.send(evs(10)) == 10
            assert c.acks == [3, 6, 9, 10]
        assert r.counters["partial_acks"] == 3
    with LumberjackReceiver(ack_mode="hold", keepalive=0.1) as r:
        c = LumberjackClient(port=r.port).connect()
        c.send_raw(c.build_window(evs(2)))
        assert c.read_ack(timeout=5) == 0, "keep-alive ack"
        r.release_acks()
        assert c.wait_ack(2, timeout=5) == 2
        assert r.counters["keepalives"] >= 1
        c.close()


def test_ack_delay():
    with LumberjackReceiver(ack_delay=0.3) as r:
        with LumberjackClient(port=r.port) as c:
            t0 = time.monotonic()
            assert c.send(evs(1)) == 1
            assert time.monotonic() - t0 >= 0.3


def test_pause_reading_gives_backpressure():
    with LumberjackReceiver(store="count", rcvbuf=65536) as r:
        r.pause_reading()
        s = socket.create_connection(("127.0.0.1", r.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        s.setblocking(False)
        blob = lj.encode_window(100000) + lj.encode_events(
            [b'{"pad":"%s"}' % (b"x" * 200)] * 100000)
        sent = 0
        blocked = False
        deadline = time.monotonic() + 10
        while sent < len(blob) and time.monotonic() < deadline:
            try:
                sent += s.send(blob[sent:sent + 65536])
            except BlockingIOError:
                blocked = True
                break
        assert blocked, "sender must hit a full socket while paused"
        assert sent < len(blob)
        time.sleep(0.1)
        assert r.counters["events"] == 0
        r.resume_reading()
        s.setblocking(True)
        s.sendall(blob[sent:])
        assert s.recv(6) == lj.encode_ack(100000)
        assert r.counters["events"] == 100000
        s.close()


def test_drop_connections():
    with LumberjackReceiver(ack_mode="none") as r:
        c = LumberjackClient(port=r.port, timeout=5).connect()
        c.send_raw(c.build_window(evs(2)))
        assert r.wait_for(2)
        assert r.active_connections == 1
        assert r.drop_connections() == 1
        assert c.peer_closed(timeout=5)
        assert r.wait_until(lambda x: x.active_connections == 0)
        c.close()
        with LumberjackClient(port=r.port) as c2:
            c2.send_raw(lj.encode_window(1) + lj.encode_json(1, b"{}"))
            assert r.wait_for(3)
        assert r.connections == 2


def test_refuse_then_listen_again():
    with LumberjackReceiver() as r:
        port = r.port
        r.refuse(0.6)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        assert not r.listening
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with LumberjackClient(port=port, timeout=2) as c:
                    assert c.send(evs(1)) == 1
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        assert r.port == port and r.listening
        assert r.events == evs(1)


# --------------------------------------------------------- hostile client

@pytest.mark.parametrize("what", ["garbage", "bomb", "huge_window",
                                  "oversized", "deep_nesting",
                                  "data_before_window"])
def test_hostile_input_closes_connection(what):
    with LumberjackReceiver(max_window=10000, max_frame=1 << 20,
                            max_decompressed=8 << 20, max_depth=2) as r:
        c = LumberjackClient(port=r.port, timeout=5).connect()
        data = {
            "garbage": lambda: c.garbage(64),
            "bomb": lambda: c.bomb_frame(inflated=64 << 20),
            "huge_window": lambda: c.huge_window_frame(),
            "oversized": lambda: c.oversized_frame(),
            "deep_nesting": lambda: c.nested_frame(evs(1), depth=4),
            "data_before_window": lambda: lj.encode_json(1, b"{}"),
        }[what]()
        try:
            c.send_raw(data)
        except OSError:
            pass
        assert c.peer_closed(timeout=5)
        assert r.wait_until(lambda x: x.counters["protocol_errors"] == 1)
        assert r.counters["events"] == 0
        c.close()
        with LumberjackClient(port=r.port) as ok:
            assert ok.send(evs(1)) == 1, "other connections unaffected"


def test_half_frame_then_silence_keeps_waiting():
    with LumberjackReceiver() as r:
        c = LumberjackClient(port=r.port, timeout=5).connect()
        c.send_raw(c.half_frame({"a": 1}))
        assert not c.peer_closed(timeout=0.3)
        assert r.counters["events"] == 0 and r.active_connections == 1
        rest = lj.encode_json(1, {"a": 1})
        c.send_raw(rest[len(rest) // 2:])
        assert c.read_ack(timeout=5) == 1
        assert r.events == [{"a": 1}]
        c.close()


# -------------------------------------------------------------------- CLI

def test_cli_receive_and_send(tmp_path):
    p = subprocess.Popen([PY, os.path.join(HERE, "lumberjack.py"),
                          "receive", "--port", "0", "--count", "30",
                          "--store", "parse",
                          "--output", str(tmp_path / "out.ndjson")],
                         stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline().split()[1])
        src = "".join(json.dumps({"i": i}) + "\n" for i in range(30))
        s = subprocess.run([PY, os.path.join(HERE, "lumberjack.py"), "send",
                            "--port", str(port), "--window", "7"],
                           input=src, capture_output=True, text=True,
                           timeout=30)
        assert s.returncode == 0, s.stderr
        assert json.loads(s.stdout)["acked"] == 30
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["events"] == 30 and summary["windows"] == 5
    assert summary["acks"] == 5
    lines = (tmp_path / "out.ndjson").read_text().splitlines()
    assert [json.loads(x)["i"] for x in lines] == list(range(30))


def test_cli_receive_sigterm_summary():
    p = subprocess.Popen([PY, os.path.join(HERE, "lumberjack.py"),
                          "receive", "--port", "0"],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    with LumberjackClient(port=port) as c:
        assert c.send(evs(3)) == 3
    p.terminate()
    out, _ = p.communicate(timeout=10)
    assert json.loads(out.strip().splitlines()[-1])["events"] == 3


@pytest.mark.slow
def test_receiver_count_mode_throughput():
    n, w = 500000, 2048
    p = subprocess.Popen([PY, os.path.join(HERE, "lumberjack.py"),
                          "receive", "--port", "0", "--count", str(n)],
                         stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split()[1])
    c = LumberjackClient(port=port, window=w, compress_level=3)
    ev = [b'{"@timestamp":"2024-05-01T12:00:00.000Z","message":"GET / %d"}'
          % i for i in range(n)]
    wins = [c.build_window(ev[i:i + w]) for i in range(0, n, w)]
    c.connect()
    for k, b in enumerate(wins):
        c.sock.sendall(b)
        c.wait_ack(min(w, n - k * w))
    c.close()
    out, _ = p.communicate(timeout=60)
    s = json.loads(out.strip().splitlines()[-1])
    assert s["events"] == n
    assert s["events_per_s"] >= 100000


# ------------------------------------------- agent-test compatible extras

def test_drop_mid_window_and_acked_events():
    with LumberjackReceiver() as r:
        assert r.address == "127.0.0.1:%d" % r.port
        r.drop_mid_window(15, refuse_seconds=0.3)
        c = LumberjackClient(port=r.port, window=10, timeout=5)
        assert c.send(evs(30)) == 10, "second window never acked"
        assert isinstance(c.last_error, (ConnectionError, OSError))
        assert r.count() == 15 and r.counters["drops"] == 1
        assert r.acked_events() == evs(10)
        assert r.windows_acked == 1
        r.wait_until(lambda x: x.listening, 5, what="listening again")
        with LumberjackClient(port=r.port, window=10) as c2:
            assert c2.send(evs(10, 100)) == 10
        assert r.acked_events() == evs(10) + evs(10, 100)
        assert r.open_connections() == 0 or r.open_connections() == 1


def test_wait_for_raises_on_timeout():
    with LumberjackReceiver() as r:
        with pytest.raises(AssertionError) as e:
            r.wait_for(1, timeout=0.2)
        assert "1 events" in str(e.value)
