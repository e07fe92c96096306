#!/usr/bin/python3
"""Lumberjack v2 (Beats protocol) peer for tests, written from the public
protocol description (logstash-input-beats PROTOCOL.md, elastic/go-lumber
behaviour), independent of sluice's C codec.

Wire format: big-endian u32s; every frame is <version byte><type byte>...

    W  window     u32 count: events the writer sends before waiting
    J  json       u32 seq, u32 len, len bytes of JSON
    D  data (v1)  u32 seq, u32 pairs, then pairs of (u32 len, key,
                  u32 len, value) strings
    C  compressed u32 len, len bytes of zlib stream holding whole frames
    A  ack        u32 seq: everything up to seq is safe (reader -> writer)

Sequences run 1..window inside each window. The reader acks the last
sequence of a window when the window is complete; an ack with a lower
sequence (go-lumber sends 0) is a keep-alive.

Contents:
  encode_*()            frame encoders
  FrameDecoder          incremental decoder with limits (bomb guard)
  LumberjackReceiver    threaded TCP reader with test controls
  LumberjackClient      writer, plus helpers for hostile-client tests
  CLI                   `receive` and `send` (see --help)
"""

import argparse
import gc
import json
import signal
import socket
import struct
import sys
import threading
import time
import zlib

V1 = 0x31
V2 = 0x32
_U32 = struct.Struct(">I")
_U32x2 = struct.Struct(">II")
_HDR_J = struct.Struct(">BBII")
_HDR_1 = struct.Struct(">BBI")

DEFAULT_MAX_WINDOW = 1 << 20
DEFAULT_MAX_FRAME = 64 << 20
DEFAULT_MAX_DECOMPRESSED = 128 << 20
DEFAULT_MAX_DEPTH = 2


class ProtocolError(Exception):
    pass


class _Dropped(Exception):
    """drop_mid_window() fired: stop reading this connection."""


# ----------------------------------------------------------------- encoders

def encode_window(n, version=V2):
    return _HDR_1.pack(version, 0x57, n)


def encode_ack(seq, version=V2):
    return _HDR_1.pack(version, 0x41, seq)


def encode_json(seq, payload, version=V2):
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    elif isinstance(payload, str):
        payload = payload.encode()
    return _HDR_J.pack(version, 0x4A, seq, len(payload)) + payload


def encode_data(seq, fields, version=V1):
    """A v1 'D' frame. Values that are not strings are JSON-encoded."""
    parts = [_HDR_J.pack(version, 0x44, seq, len(fields))]
    for k, v in fields.items():
        kb = k.encode() if isinstance(k, str) else bytes(k)
        if isinstance(v, bytes):
            vb = v
        elif isinstance(v, str):
            vb = v.encode()
        else:
            vb = json.dumps(v, separators=(",", ":")).encode()
        parts.append(_U32.pack(len(kb)) + kb + _U32.pack(len(vb)) + vb)
    return b"".join(parts)


def encode_compressed(inner, level=3, version=V2):
    z = zlib.compress(inner, level)
    return _HDR_1.pack(version, 0x43, len(z)) + z


def encode_events(events, seq_start=1, version=V2, data_frames=False,
                  d_version=V1):
    """Concatenated J (or D) frames for events numbered from seq_start.
    D frames carry `d_version` (v1 data frames, '1D', by default)."""
    out = []
    seq = seq_start
    for ev in events:
        if data_frames:
            if not isinstance(ev, dict):
                ev = json.loads(ev)
            out.append(encode_data(seq, ev, d_version))
        else:
            out.append(encode_json(seq, ev, version))
        seq += 1
    return b"".join(out)


# ------------------------------------------------------------------ decoder

class FrameDecoder:
    """Incremental decoder. feed(bytes) returns the complete frames:

        ("W", version, count)
        ("J", version, seq, payload)        payload: bytes, or None in
        ("D", version, seq, payload)        'count' mode; D payload: dict
        ("C", version, compressed_len, decompressed_len)  before its frames
        ("A", version, seq)

    Limits raise ProtocolError: window size, frame size, decompressed size
    of one C frame (zip-bomb guard), nesting depth of C frames.
    """

    def __init__(self, max_window=DEFAULT_MAX_WINDOW,
                 max_frame=DEFAULT_MAX_FRAME,
                 max_decompressed=DEFAULT_MAX_DECOMPRESSED,
                 max_depth=DEFAULT_MAX_DEPTH, keep_payload=True):
        self.buf = bytearray()
        self.max_window = max_window
        self.max_frame = max_frame
        self.max_decompressed = max_decompressed
        self.max_depth = max_depth
        self.keep = keep_payload

    def pending(self):
        """Bytes held back because they are not a complete frame yet."""
        return len(self.buf)

    def feed(self, data):
        buf = self.buf
        buf += data
        out = []
        pos = self._parse(buf, 0, out, 0)
        if pos:
            del buf[:pos]
        return out

    def _parse(self, buf, pos, out, depth):
        n = len(buf)
        u32 = _U32.unpack_from
        u32x2 = _U32x2.unpack_from
        keep = self.keep
        while pos + 2 <= n:
            ver = buf[pos]
            typ = buf[pos + 1]
            if ver != V2 and ver != V1:
                raise ProtocolError("bad version byte 0x%02x at offset %d"
                                    % (ver, pos))
            if typ == 0x4A:
                if pos + 10 > n:
                    break
                seq, ln = u32x2(buf, pos + 2)
                if ln > self.max_frame:
                    raise ProtocolError("json frame of %d bytes over limit "
                                        "%d" % (ln, self.max_frame))
                end = pos + 10 + ln
                if end > n:
                    break
                out.append(("J", ver, seq,
                            bytes(buf[pos + 10:end]) if keep else None))
                pos = end
            elif typ == 0x57:
                if pos + 6 > n:
                    break
                w, = u32(buf, pos + 2)
                if w > self.max_window:
                    raise ProtocolError("window %d over limit %d"
                                        % (w, self.max_window))
                out.append(("W", ver, w))
                pos += 6
            elif typ == 0x43:
                if pos + 6 > n:
                    break
                ln, = u32(buf, pos + 2)
                if ln > self.max_frame:
                    raise ProtocolError("compressed frame of %d bytes over "
                                        "limit %d" % (ln, self.max_frame))
                end = pos + 6 + ln
                if end > n:
                    break
                if depth >= self.max_depth:
                    raise ProtocolError("compressed frames nested deeper "
                                        "than %d" % self.max_depth)
                d = zlib.decompressobj()
                try:
                    raw = d.decompress(memoryview(buf)[pos + 6:end],
                                       self.max_decompressed + 1)
                except zlib.error as e:
                    raise ProtocolError("bad zlib stream: %s" % e)
                if len(raw) > self.max_decompressed or d.unconsumed_tail:
                    raise ProtocolError("compressed frame inflates beyond "
                                        "%d bytes" % self.max_decompressed)
                if not d.eof:
                    raise ProtocolError("truncated zlib stream")
                out.append(("C", ver, ln, len(raw)))
                inner = self._parse(raw, 0, out, depth + 1)
                if inner != len(raw):
                    raise ProtocolError("partial frame inside compressed "
                                        "frame")
                pos = end
            elif typ == 0x44:
                r = self._data(buf, pos, n)
                if r is None:
                    break
                seq, fields, end = r
                out.append(("D", ver, seq, fields if keep else None))
                pos = end
            elif typ == 0x41:
                if pos + 6 > n:
                    break
                seq, = u32(buf, pos + 2)
                out.append(("A", ver, seq))
                pos += 6
            else:
                raise ProtocolError("unknown frame type 0x%02x" % typ)
        return pos

    def _data(self, buf, pos, n):
        if pos + 10 > n:
            return None
        seq, pairs = _U32x2.unpack_from(buf, pos + 2)
        p = pos + 10
        fields = {}
        limit = self.max_frame
        for _ in range(pairs):
            if p + 4 > n:
                return None
            kl, = _U32.unpack_from(buf, p)
            if kl > limit:
                raise ProtocolError("data frame key of %d bytes" % kl)
            if p + 4 + kl + 4 > n:
                return None
            k = bytes(buf[p + 4:p + 4 + kl])
            p += 4 + kl
            vl, = _U32.unpack_from(buf, p)
            if vl > limit:
                raise ProtocolError("data frame value of %d bytes" % vl)
            if p + 4 + vl > n:
                return None
            v = bytes(buf[p + 4:p + 4 + vl])
            p += 4 + vl
            if p - pos > limit:
                raise ProtocolError("data frame over limit %d" % limit)
            fields[k.decode("utf-8", "replace")] = v.decode("utf-8",
                                                            "replace")
        return seq, fields, p


# ----------------------------------------------------------------- receiver

class Record:
    __slots__ = ("conn", "window", "seq", "event")

    def __init__(self, conn, window, seq, event):
        self.conn, self.window, self.seq, self.event = (conn, window, seq,
                                                        event)

    def __repr__(self):
        return "Record(conn=%d, window=%d, seq=%d, %r)" % (
            self.conn, self.window, self.seq, self.event)


class _Conn:
    def __init__(self, cid, sock, addr):
        self.id = cid
        self.sock = sock
        self.addr = addr
        self.send_lock = threading.Lock()
        self.window = None       # size of the current window, None if none
        self.count = 0           # events seen in the current window
        self.last_seq = 0
        self.version = V2
        self.windows = 0
        self.held = []           # (seq, records) withheld in 'hold' mode
        self.win_records = []    # records of the window not acked yet
        self.closed = False


class LumberjackReceiver:
    """Threaded Lumberjack reader on 127.0.0.1.

    ack_mode: 'normal' ack each full window; 'none' never ack; 'hold' keep
    acks until release_acks(); 'partial' also ack every `partial_every`
    events with the current sequence. `keepalive` (seconds) sends A(0)
    while a window is incomplete or held. `ack_delay` (seconds) waits
    before each window ack (the connection is not read meanwhile).
    store: 'parse' (events are parsed JSON), 'raw' (bytes) or 'count'.
    tls: a server-side ssl.SSLContext to speak Lumberjack over TLS (a
    failed handshake closes that connection and lands in .errors).
    """

    def __init__(self, port=0, host="127.0.0.1", ack_mode="normal",
                 max_window=DEFAULT_MAX_WINDOW, max_frame=DEFAULT_MAX_FRAME,
                 max_decompressed=DEFAULT_MAX_DECOMPRESSED,
                 max_depth=DEFAULT_MAX_DEPTH, store="parse",
                 partial_every=0, keepalive=0.0, ack_delay=0.0,
                 rcvbuf=None, strict_seq=False, tls=None):
        if ack_mode not in ("normal", "none", "hold", "partial"):
            raise ValueError("ack_mode")
        if store not in ("parse", "raw", "count"):
            raise ValueError("store")
        self.host = host
        self.ack_mode = ack_mode
        self.max_window = max_window
        self.max_frame = max_frame
        self.max_decompressed = max_decompressed
        self.max_depth = max_depth
        self.store = store
        self.partial_every = partial_every
        self.keepalive = keepalive
        self.ack_delay = ack_delay
        self.rcvbuf = rcvbuf
        self.strict_seq = strict_seq
        self.tls = tls
        self.events = []
        self.records = []
        self.errors = []         # (conn id, reason) of closed connections
        self.counters = {"connections": 0, "active": 0, "windows": 0,
                         "acks": 0, "partial_acks": 0, "keepalives": 0,
                         "events": 0, "bytes": 0, "frames_c": 0,
                         "frames_d": 0, "frames_j": 0, "seq_errors": 0,
                         "protocol_errors": 0, "bytes_inflated": 0,
                         "drops": 0}
        self.first_event_time = None
        self.last_event_time = None
        self._unfrozen = 0
        self._acks_written = 0
        self._drop_after = None
        self._drop_refuse = 0
        self.acked_records = []
        self._cond = threading.Condition()
        self._reading = threading.Event()
        self._reading.set()
        self._stop = threading.Event()
        self._conns = {}
        self._next_id = 0
        self._lsock = None
        self._listen_lock = threading.Lock()
        self._refuse_timer = None
        self.port = port
        self._listen()
        if keepalive:
            threading.Thread(target=self._keepalive_loop, daemon=True).start()

    # -- listening

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        s.settimeout(0.05)
        self.port = s.getsockname()[1]
        with self._listen_lock:
            self._lsock = s
        threading.Thread(target=self._accept_loop, args=(s,),
                         daemon=True).start()

    def _accept_loop(self, lsock):
        while not self._stop.is_set():
            with self._listen_lock:
                if self._lsock is not lsock:
                    break
            try:
                sock, addr = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                self.rcvbuf)
            with self._cond:
                self._next_id += 1
                c = _Conn(self._next_id, sock, addr)
                self._conns[c.id] = c
                self.counters["connections"] += 1
                self.counters["active"] += 1
                self._cond.notify_all()
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()
        try:
            lsock.close()
        except OSError:
            pass

    def stop_listening(self):
        with self._listen_lock:
            s, self._lsock = self._lsock, None
        if s is not None:
            # shutdown() takes a Linux listener out of LISTEN at once, even
            # while the accept thread is inside poll() holding a reference.
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def start_listening(self):
        with self._listen_lock:
            if self._lsock is not None:
                return
        self._listen()

    def refuse(self, seconds, drop=False):
        """Close the listener (connects are refused) and listen again on the
        same port after `seconds`. Established connections stay unless
        `drop`."""
        self.stop_listening()
        if drop:
            self.drop_connections()
        t = threading.Timer(seconds, self._relisten)
        t.daemon = True
        self._refuse_timer = t
        t.start()

    def _relisten(self):
        deadline = time.monotonic() + 5
        while not self._stop.is_set():
            try:
                self.start_listening()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def listening(self):
        return self._lsock is not None

    # -- controls

    def pause_reading(self):
        """Stop reading sockets: the sender sees TCP backpressure."""
        self._reading.clear()

    def resume_reading(self):
        self._reading.set()

    def drop_connections(self):
        """Close every open connection now (no ack for pending windows)."""
        with self._cond:
            conns = list(self._conns.values())
        for c in conns:
            self._close(c)
        return len(conns)

    def release_acks(self):
        """Send the acks withheld in 'hold' mode (and switch to normal)."""
        self.ack_mode = "normal"
        with self._cond:
            conns = list(self._conns.values())
        for c in conns:
            held, c.held = c.held, []
            for seq, recs in held:
                self._send_ack(c, seq, records=recs)

    def drop_mid_window(self, after_events, refuse_seconds=0):
        """Once `after_events` events arrived in total, close the connection
        that delivered the last one without acking its window (the events
        are kept in .events but not in acked_events()); then refuse
        connections (dropping the others too) for `refuse_seconds`."""
        with self._cond:
            self._drop_after = after_events
            self._drop_refuse = refuse_seconds

    def stop(self):
        self._stop.set()
        if self._refuse_timer:
            self._refuse_timer.cancel()
        self.stop_listening()
        self.drop_connections()
        self._reading.set()

    close = stop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- waiting and inspection

    def wait_for(self, n, timeout=10.0):
        """Wait until at least n events arrived. Returns True; raises
        AssertionError on timeout (so a forgotten `assert` can't hide it)."""
        return self.wait_until(lambda r: r.counters["events"] >= n, timeout,
                               what="%d events" % n)

    def wait_until(self, pred, timeout=10.0, what="condition"):
        """Wait until pred(receiver) is true (checked on every change and
        every 0.1 s). Returns True; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "lumberjack receiver: timed out after %.1fs waiting "
                        "for %s; counters %s" % (timeout, what,
                                                 self.counters))
                self._cond.wait(min(left, 0.1))
        return True

    def wait_connections(self, n, timeout=10.0):
        return self.wait_until(lambda r: r.counters["connections"] >= n,
                               timeout, what="%d connections" % n)

    # Names used by the agent tests' own receiver, for drop-in use.
    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def count(self):
        return self.counters["events"]

    def open_connections(self):
        return self.counters["active"]

    @property
    def windows_acked(self):
        return self.counters["acks"]

    def acked_events(self):
        """Events of windows whose ack was written (partial acks count)."""
        with self._cond:
            return [r.event for r in self.acked_records]

    @property
    def windows(self):
        return self.counters["windows"]

    @property
    def acks(self):
        return self.counters["acks"]

    @property
    def connections(self):
        return self.counters["connections"]

    @property
    def active_connections(self):
        return self.counters["active"]

    def stats(self):
        with self._cond:
            s = dict(self.counters)
        if self.first_event_time is not None and \
                self.last_event_time > self.first_event_time:
            s["events_per_s"] = int(s["events"] / (
                self.last_event_time - self.first_event_time))
        s["errors"] = [r for _, r in self.errors]
        return s

    # -- per connection

    def _close(self, c, reason=None):
        with self._cond:
            if c.closed:
                return
            c.closed = True
            self._conns.pop(c.id, None)
            self.counters["active"] -= 1
            if reason:
                self.errors.append((c.id, reason))
                self.counters["protocol_errors"] += 1
            self._cond.notify_all()
        try:
            c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.sock.close()

    def _send_ack(self, c, seq, kind="acks", records=None):
        # Counted (and its events marked acked) before it goes out, so that
        # a writer that got the ack always finds it in the receiver's state.
        with self._cond:
            self.counters[kind] += 1
            if records:
                self.acked_records.extend(records)
            self._cond.notify_all()
        try:
            with c.send_lock:
                c.sock.sendall(encode_ack(seq, c.version))
        except OSError:
            with self._cond:
                self.counters[kind] -= 1
                if records:
                    gone = set(map(id, records))
                    self.acked_records = [r for r in self.acked_records
                                          if id(r) not in gone]
            return False
        if kind == "acks":
            with self._cond:
                self._acks_written += 1
                self._cond.notify_all()
        return True

    def _keepalive_loop(self):
        while not self._stop.wait(self.keepalive):
            with self._cond:
                conns = list(self._conns.values())
            for c in conns:
                if c.held or (c.window and c.count < c.window):
                    self._send_ack(c, 0, "keepalives")

    def _serve(self, c):
        dec = FrameDecoder(self.max_window, self.max_frame,
                           self.max_decompressed, self.max_depth,
                           keep_payload=self.store != "count")
        if self.tls is not None:
            try:
                c.sock = self.tls.wrap_socket(c.sock, server_side=True)
            except (OSError, ValueError) as e:
                self._close(c, "TLS handshake failed: %s" % e)
                return
        sock = c.sock
        try:
            while not self._stop.is_set():
                while not self._reading.wait(0.05):
                    if self._stop.is_set() or c.closed:
                        return
                try:
                    data = sock.recv(262144)
                except OSError:
                    break
                if not data:
                    break
                with self._cond:
                    self.counters["bytes"] += len(data)
                try:
                    frames = dec.feed(data)
                    self._handle(c, frames)
                except ProtocolError as e:
                    self._close(c, str(e))
                    return
                except _Dropped:
                    return
                except OSError:
                    break
        finally:
            self._close(c)

    def _handle(self, c, frames):
        store = self.store
        loads = json.loads
        batch = []
        n = {"frames_j": 0, "frames_d": 0, "frames_c": 0,
             "bytes_inflated": 0, "seq_errors": 0, "windows": 0}
        for f in frames:
            t = f[0]
            if t == "J" or t == "D":
                if c.window is None:
                    raise ProtocolError("data frame before window frame")
                seq = f[2]
                if seq != c.last_seq + 1:
                    n["seq_errors"] += 1
                    if self.strict_seq:
                        raise ProtocolError("sequence %d after %d" % (
                            seq, c.last_seq))
                c.last_seq = seq
                c.count += 1
                if store == "parse":
                    p = f[3]
                    if t == "J":
                        try:
                            ev = loads(p)
                        except ValueError as e:
                            raise ProtocolError("bad JSON in seq %d: %s"
                                                % (seq, e))
                    else:
                        ev = p
                    rec = Record(c.id, c.windows, seq, ev)
                    batch.append(rec)
                    c.win_records.append(rec)
                elif store == "raw":
                    rec = Record(c.id, c.windows, seq, f[3])
                    batch.append(rec)
                    c.win_records.append(rec)
                else:
                    batch.append(None)
                if self._drop_after is not None and \
                        self.counters["events"] + len(batch) >= \
                        self._drop_after:
                    self._flush(batch, n)
                    self._drop_now(c)
                n["frames_j" if t == "J" else "frames_d"] += 1
                if c.count >= c.window:
                    n["windows"] = 1
                    self._flush(batch, n)
                    batch = []
                    self._window_done(c, seq)
                elif self.ack_mode == "partial" and self.partial_every and \
                        c.count % self.partial_every == 0:
                    self._flush(batch, n)
                    batch = []
                    recs, c.win_records = c.win_records, []
                    self._send_ack(c, seq, "partial_acks", recs)
            elif t == "W":
                c.version = f[1]
                c.window = f[2] or None
                c.count = 0
                c.last_seq = 0
            elif t == "C":
                n["frames_c"] += 1
                n["bytes_inflated"] += f[3]
            else:
                raise ProtocolError("unexpected frame %r from writer" % t)
        self._flush(batch, n)

    def _flush(self, batch, n):
        """Publish decoded events and frame counts (before any ack)."""
        now = time.monotonic()
        with self._cond:
            k = self.counters
            for key, v in n.items():
                if v:
                    k[key] += v
                    n[key] = 0
            if not batch:
                self._cond.notify_all()
                return
            if self.store != "count":
                self.records.extend(batch)
                self.events.extend(r.event for r in batch)
                # Millions of retained dicts make the cyclic GC rescan them
                # over and over (4x slower intake); they are never garbage,
                # so move them out of its sight.
                self._unfrozen += len(batch)
                if self._unfrozen >= 2000:
                    self._unfrozen = 0
                    gc.freeze()
            self.counters["events"] += len(batch)
            if self.first_event_time is None:
                self.first_event_time = now
            self.last_event_time = now
            self._cond.notify_all()

    def _drop_now(self, c):
        with self._cond:
            if self._drop_after is None:
                return
            self._drop_after = None
            refuse = self._drop_refuse
            self.counters["drops"] += 1
        if refuse:
            self.refuse(refuse, drop=True)
        self._close(c)
        raise _Dropped()

    def _window_done(self, c, seq):
        c.windows += 1
        c.window = None
        recs, c.win_records = c.win_records, []
        mode = self.ack_mode
        if mode == "none":
            return
        if mode == "hold":
            c.held.append((seq, recs))
            return
        if self.ack_delay:
            time.sleep(self.ack_delay)
        self._send_ack(c, seq, records=recs)


# ------------------------------------------------------------------- client

class LumberjackClient:
    """Writer. send() splits events into windows, waits for each window's
    ack (ignoring keep-alive acks with a lower sequence) and returns how
    many events were acked. Hostile helpers build broken input."""

    def __init__(self, host="127.0.0.1", port=5044, compress_level=3,
                 window=1024, timeout=10.0, version=V2, data_frames=False,
                 nested=0, d_version=V1, tls=None):
        """tls: a client-side ssl.SSLContext to speak Lumberjack over TLS
        (load_cert_chain on it for a client certificate)."""
        self.host = host
        self.tls = tls
        self.port = port
        self.compress_level = compress_level
        self.window = window
        self.timeout = timeout
        self.version = version
        self.data_frames = data_frames
        self.nested = nested
        self.d_version = d_version
        self.sock = None
        self.acks = []           # every ack sequence received, in order
        self.last_error = None
        self._rbuf = b""

    def connect(self):
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port),
                                                 timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    self.sock = self.tls.wrap_socket(
                        self.sock, server_hostname=self.host)
                except BaseException:
                    self.sock.close()
                    self.sock = None
                    raise
            self._rbuf = b""
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()

    # -- building

    def build_window(self, events):
        """Bytes for one window: W, then J/D frames, compressed if asked."""
        frames = encode_events(events, 1, self.version, self.data_frames,
                               self.d_version)
        if self.compress_level:
            frames = encode_compressed(frames, self.compress_level,
                                       self.version)
            for _ in range(self.nested):
                frames = encode_compressed(frames, self.compress_level,
                                           self.version)
        return encode_window(len(events), self.version) + frames

    # -- sending

    def send(self, events, raise_on_error=False):
        self.connect()
        acked = 0
        w = max(1, self.window)
        try:
            for i in range(0, len(events), w):
                chunk = events[i:i + w]
                self.sock.sendall(self.build_window(chunk))
                self.wait_ack(len(chunk))
                acked += len(chunk)
        except (OSError, ProtocolError) as e:
            self.last_error = e
            self.close()
            if raise_on_error:
                raise
        return acked

    def read_ack(self, timeout=None):
        """Next ack sequence, or None if the peer closed the connection."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            while len(self._rbuf) < 6:
                d = self.sock.recv(4096)
                if not d:
                    return None
                self._rbuf += d
        finally:
            self.sock.settimeout(self.timeout)
        ver, typ, seq = _HDR_1.unpack_from(self._rbuf, 0)
        self._rbuf = self._rbuf[6:]
        if typ != 0x41 or ver not in (V1, V2):
            raise ProtocolError("expected ack, got %r" % bytes([ver, typ]))
        self.acks.append(seq)
        return seq

    def wait_ack(self, seq, timeout=None):
        """Read acks until one >= seq (lower ones are keep-alives)."""
        while True:
            got = self.read_ack(timeout)
            if got is None:
                raise ConnectionError("connection closed before ack %d"
                                      % seq)
            if got >= seq:
                return got

    def send_raw(self, data):
        self.connect()
        self.sock.sendall(data)

    def peer_closed(self, timeout=5.0):
        """True if the peer closes the connection within `timeout`
        (data it sends meanwhile is discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return True
            finally:
                if self.sock is not None:
                    self.sock.settimeout(self.timeout)
            if not d:
                return True

    # -- hostile input (bytes to pass to send_raw)

    @staticmethod
    def garbage(n=64, seed=1):
        import random
        r = random.Random(seed)
        return bytes(r.randrange(256) for _ in range(n))

    def bomb_frame(self, inflated=256 << 20, count=1):
        """W(count) plus a C frame that inflates to `inflated` zero bytes."""
        z = zlib.compressobj(9)
        chunk = b"\0" * (1 << 20)
        parts = [z.compress(chunk) for _ in range(inflated >> 20)]
        parts.append(z.flush())
        body = b"".join(parts)
        return encode_window(count, self.version) + _HDR_1.pack(
            self.version, 0x43, len(body)) + body

    def nested_frame(self, events, depth=3):
        """W plus events wrapped in `depth` levels of C frames."""
        b = encode_events(events, 1, self.version, self.data_frames,
                               self.d_version)
        for _ in range(depth):
            b = encode_compressed(b, 1, self.version)
        return encode_window(len(events), self.version) + b

    def huge_window_frame(self, n=0xFFFFFFFF):
        return encode_window(n, self.version)

    def half_frame(self, event):
        """W(1) plus the first half of one J frame; send it and go quiet."""
        f = encode_json(1, event, self.version)
        return encode_window(1, self.version) + f[:len(f) // 2]

    def oversized_frame(self, length=0x7FFFFFFF):
        """W(1) and a J header announcing `length` bytes (none follow)."""
        return encode_window(1, self.version) + _HDR_J.pack(
            self.version, 0x4A, 1, length)


# ---------------------------------------------------------------------- CLI

def _cli_receive(a):
    r = LumberjackReceiver(port=a.port, ack_mode=a.ack_mode,
                           max_window=a.max_window, store=a.store,
                           partial_every=a.partial_every,
                           keepalive=a.keepalive)
    done = threading.Event()

    def on_term(signum, frame):
        done.set()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if a.watch_stdin:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            done.set()
        threading.Thread(target=watch, daemon=True).start()
    sys.stdout.write("READY %d\n" % r.port)
    sys.stdout.flush()
    t0 = time.monotonic()
    deadline = t0 + a.timeout if a.timeout else None
    while not done.is_set():
        if a.count and r.counters["events"] >= a.count:
            break
        if deadline and time.monotonic() > deadline:
            break
        with r._cond:
            r._cond.wait(0.1)
    # The window that completed the count is acked right after its events
    # are counted; let that ack go out before the connections close.
    if r.ack_mode != "none":
        try:
            r.wait_until(lambda x: x._acks_written >= x.counters["windows"],
                         2.0)
        except AssertionError:
            pass
    s = r.stats()
    s["seconds"] = round(time.monotonic() - t0, 3)
    if a.output and r.store != "count":
        with open(a.output, "w") as f:
            for ev in r.events:
                if isinstance(ev, bytes):
                    f.write(ev.decode("utf-8", "replace") + "\n")
                else:
                    f.write(json.dumps(ev, separators=(",", ":")) + "\n")
    r.stop()
    sys.stdout.write(json.dumps(s) + "\n")
    sys.stdout.flush()
    return 0 if not a.count or s["events"] >= a.count else 1


def _cli_send(a):
    src = open(a.file, "rb") if a.file and a.file != "-" else sys.stdin.buffer
    events = [ln.rstrip(b"\r\n") for ln in src if ln.strip()]
    tls = None
    if a.tls_ca or a.tls_cert:
        import ssl
        tls = ssl.create_default_context(cafile=a.tls_ca)
        if a.tls_cert:
            tls.load_cert_chain(a.tls_cert, a.tls_key)
    c = LumberjackClient(a.host, a.port, compress_level=a.compress_level,
                         window=a.window, timeout=a.timeout,
                         data_frames=a.data_frames, tls=tls)
    t0 = time.monotonic()
    acked = c.send(events)
    dt = time.monotonic() - t0
    c.close()
    out = {"sent": len(events), "acked": acked, "seconds": round(dt, 3),
           "events_per_s": int(acked / dt) if dt > 0 else 0}
    if c.last_error:
        out["error"] = str(c.last_error)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0 if acked == len(events) else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="Lumberjack v2 test peer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("receive", help="listen, count, print JSON summary")
    r.add_argument("--port", type=int, default=0)
    r.add_argument("--count", type=int, default=0,
                   help="exit after this many events (0: until SIGTERM)")
    r.add_argument("--timeout", type=float, default=0,
                   help="exit after this many seconds (0: no limit)")
    r.add_argument("--store", choices=["count", "parse", "raw"],
                   default="count")
    r.add_argument("--output", help="write received events as NDJSON")
    r.add_argument("--ack-mode", choices=["normal", "none", "partial"],
                   default="normal")
    r.add_argument("--partial-every", type=int, default=0)
    r.add_argument("--keepalive", type=float, default=0)
    r.add_argument("--max-window", type=int, default=DEFAULT_MAX_WINDOW)
    r.add_argument("--watch-stdin", action="store_true",
                   help="stop (with the summary) when stdin reaches EOF")
    s = sub.add_parser("send", help="send NDJSON from a file or stdin")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--file", help="NDJSON file (default stdin)")
    s.add_argument("--window", type=int, default=1024)
    s.add_argument("--compress-level", type=int, default=3)
    s.add_argument("--data-frames", action="store_true",
                   help="send v1 D frames instead of J")
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--tls-ca", help="speak TLS; verify the receiver "
                   "with this CA (PEM)")
    s.add_argument("--tls-cert", help="client certificate (PEM)")
    s.add_argument("--tls-key", help="key of --tls-cert")
    a = ap.parse_args(argv)
    if a.cmd == "receive":
        return _cli_receive(a)
    return _cli_send(a)


if __name__ == "__main__":
    sys.exit(main())
