"""Fixtures for sluice-agent integration tests.

Every test starts the REAL binary ($SLUICE_BUILD_DIR/agent/sluice-agent)
with a generated config (JSON is valid YAML) and talks to it through files,
sockets and its HTTP endpoint. Receivers live in this process:

  LJReceiver    Lumberjack v2 peer (W/J/C frames in, A frames out) with
                fault switches: pause_reading, resume_reading,
                drop_connections, refuse(seconds), drop_mid_window(n).
                Prefers tests/lib/lumberjack.py when it provides the same
                API; the local one is used otherwise.
  LineReceiver  TCP json_lines sink that counts and keeps lines.

Everything waits for conditions with a deadline (wait_until), never with a
bare sleep.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
import zlib

import pytest

BUILD = os.environ.get("SLUICE_BUILD_DIR",
                       os.path.join(os.path.dirname(__file__), "..", "..",
                                    "..", "build"))
SOURCE = os.environ.get("SLUICE_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..",
                                     ".."))
AGENT = os.path.join(BUILD, "agent", "sluice-agent")


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "slow: long-running test (excluded from CI)")


def wait_until(pred, timeout=30.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def _close_listener(s):
    # close() alone does not wake a thread blocked in accept(), and the
    # socket keeps accepting; shutdown() does stop it.
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def sanitized():
    """True when the build under test uses ASan/UBSan (RSS is meaningless)."""
    p = os.path.join(BUILD, "meson-info", "intro-buildoptions.json")
    try:
        with open(p) as f:
            for o in json.load(f):
                if o.get("name") == "b_sanitize":
                    return o.get("value") not in ("none", "", None)
    except (OSError, ValueError):
        pass
    return False


# ---- Lumberjack receiver -------------------------------------------------

class _Conn:
    def __init__(self, recv, sock, cid):
        self.recv = recv
        self.sock = sock
        self.cid = cid
        self.buf = b""
        self.window = 0
        self.win_events = []      # raw JSON bytes of the open window
        self.closed = False


class LJReceiver:
    """Minimal Lumberjack v2 server. events() returns decoded events in
    arrival order; acked_ids() the event.ids of windows that were acked."""

    def __init__(self, port=0, tls=None):
        self.tls = tls            # ssl.SSLContext (server side) or None
        self.lock = threading.Lock()
        self.raw = []             # (conn id, window no, json bytes)
        self.acked_raw = []       # json bytes of acked windows
        self.windows_acked = 0
        self.conns = []
        self.connections = 0
        self.paused = threading.Event()
        self.paused.set()         # set = reading allowed
        self.drop_after = None    # drop before acking once this many seen
        self.refuse_after_drop = 0
        self.drops = 0
        self.stopping = False
        self.lsock = None
        self.port = port
        self._listen()

    # -- lifecycle
    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.lsock = s
        t = threading.Thread(target=self._accept, args=(s,), daemon=True)
        t.start()

    def _accept(self, lsock):
        while True:
            try:
                sock, _ = lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                c = _Conn(self, sock, self.connections)
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def close(self):
        self.stopping = True
        self.paused.set()
        if self.lsock:
            _close_listener(self.lsock)
            self.lsock = None
        self.drop_connections()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    # -- faults
    def pause_reading(self):
        self.paused.clear()

    def resume_reading(self):
        self.paused.set()

    def drop_connections(self):
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            c.closed = True
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.sock.close()

    def refuse(self, seconds):
        """Close the listener and every connection; listen again (same
        port) after `seconds` in the background."""
        if self.lsock:
            _close_listener(self.lsock)
            self.lsock = None
        self.drop_connections()

        def later():
            time.sleep(seconds)
            if not self.stopping:
                self._listen()
        threading.Thread(target=later, daemon=True).start()

    def drop_mid_window(self, after_events, refuse_seconds=0):
        """Close the connection, without acking, once this many events in
        total have arrived (partway through a window); then optionally
        refuse connections for refuse_seconds."""
        self.refuse_after_drop = refuse_seconds
        self.drop_after = after_events

    # -- protocol
    def _serve(self, c):
        try:
            if self.tls is not None:
                c.sock = self.tls.wrap_socket(c.sock, server_side=True)
            while not c.closed:
                self.paused.wait()
                if c.closed:
                    break
                data = c.sock.recv(1 << 16)
                if not data:
                    break
                c.buf += data
                if not self._parse(c, False):
                    break
        except (OSError, ValueError):
            pass
        finally:
            c.closed = True
            try:
                c.sock.close()
            except OSError:
                pass

    def _parse(self, c, inner):
        """Consume complete frames of c.buf; False closes the conn."""
        buf = c.buf
        pos = 0
        while True:
            if len(buf) - pos < 2:
                break
            ver, typ = buf[pos], buf[pos + 1]
            if ver != ord("2"):
                return False
            if typ == ord("W"):
                if len(buf) - pos < 6:
                    break
                c.window = struct.unpack(">I", buf[pos + 2:pos + 6])[0]
                c.win_events = []
                pos += 6
            elif typ == ord("J"):
                if len(buf) - pos < 10:
                    break
                seq, ln = struct.unpack(">II", buf[pos + 2:pos + 10])
                if len(buf) - pos < 10 + ln:
                    break
                payload = buf[pos + 10:pos + 10 + ln]
                pos += 10 + ln
                if not self._event(c, seq, payload):
                    return False
            elif typ == ord("C"):
                if len(buf) - pos < 6:
                    break
                ln = struct.unpack(">I", buf[pos + 2:pos + 6])[0]
                if len(buf) - pos < 6 + ln:
                    break
                inner_bytes = zlib.decompress(buf[pos + 6:pos + 6 + ln])
                pos += 6 + ln
                saved = c.buf
                c.buf = inner_bytes
                ok = self._parse(c, True)
                c.buf = saved
                if not ok:
                    return False
            else:
                return False
        if not inner:
            c.buf = buf[pos:]
        return True

    def _event(self, c, seq, payload):
        with self.lock:
            if c.closed:
                return False
            self.raw.append((c.cid, payload))
            c.win_events.append(payload)
            n = len(self.raw)
            drop = self.drop_after is not None and n >= self.drop_after
            if drop:
                self.drop_after = None
        if drop:
            self.drops += 1
            if self.refuse_after_drop:
                self.refuse(self.refuse_after_drop)
            c.closed = True
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False
        if seq == c.window:
            try:
                c.sock.sendall(b"2A" + struct.pack(">I", seq))
            except OSError:
                return False
            with self.lock:
                self.acked_raw.extend(c.win_events)
                self.windows_acked += 1
            c.win_events = []
        return True

    # -- results
    def count(self):
        with self.lock:
            return len(self.raw)

    def open_connections(self):
        with self.lock:
            return sum(1 for c in self.conns if not c.closed)

    def events(self):
        with self.lock:
            raw = [p for _, p in self.raw]
        return [json.loads(p) for p in raw]

    def acked_events(self):
        with self.lock:
            raw = list(self.acked_raw)
        return [json.loads(p) for p in raw]

    def wait_for(self, n, timeout=60.0):
        return wait_until(lambda: self.count() >= n, timeout,
                          what="%d events (have %d)" % (n, self.count()))


# ---- json_lines receiver --------------------------------------------------

class LineReceiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.lines = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    def _serve(self, s):
        buf = b""
        while True:
            try:
                d = s.recv(1 << 16)
            except OSError:
                break
            if not d:
                break
            buf += d
            *full, buf = buf.split(b"\n")
            with self.lock:
                self.lines.extend(full)
        s.close()

    def count(self):
        with self.lock:
            return len(self.lines)

    def events(self):
        with self.lock:
            return [json.loads(x) for x in self.lines]

    def close(self):
        _close_listener(self.lsock)


# ---- the agent process ----------------------------------------------------

class Agent:
    def __init__(self, tmp, cfg, name="agent"):
        self.tmp = tmp
        self.cfg_path = os.path.join(tmp, name + ".yml")
        self.log_path = os.path.join(tmp, name + ".log")
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.proc = None
        self.http_port = None

    def start(self, extra_args=(), stdout=None):
        self.logf = open(self.log_path, "ab")
        self.log_start = self.logf.tell()
        self.proc = subprocess.Popen(
            [AGENT, "-c", self.cfg_path] + list(extra_args),
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=self.logf)
        wait_until(lambda: self._started() or self.proc.poll() is not None,
                   20, what="agent start")
        assert self.proc.poll() is None, self.log()
        return self

    def _started(self):
        for rec in self.records(self.log_start):
            if rec.get("message") == "started":
                self.http_port = rec.get("http.port")
                return True
        return False

    def log(self, start=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def records(self, start=0):
        out = []
        for line in self.log(start).splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.logf.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)
        self.logf.close()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def status(self):
        """VmRSS and VmHWM in bytes."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) * 1024
        return out

    def http(self, path):
        url = "http://127.0.0.1:%d%s" % (self.http_port, path)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name):
        _, body = self.http("/metrics")
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None


def agent_config(data_dir, paths, output, **over):
    cfg = {
        "data_dir": data_dir,
        "log_level": "info",
        "workers": 2,
        "http": {"listen": "127.0.0.1:0"},
        "registry_flush": "200ms",
        "flush_interval": "100ms",
        "shutdown_timeout": "10s",
        "inputs": [{
            "type": "file",
            "paths": paths,
            "parser": "json",
            "dataset": "app",
            "service": "checkout",
            "scan_interval": "200ms",
            "partial_timeout": "300ms",
        }],
        "output": output,
    }
    inp = over.pop("input", None)
    if inp:
        cfg["inputs"][0].update(inp)
    cfg.update(over)
    return cfg


def lj_output(recv, **kw):
    out = {"type": "lumberjack", "hosts": [recv.address], "timeout": "3s",
           "backoff": {"base": "50ms", "max": "500ms"}}
    out.update(kw)
    return out


def write_lines(path, start, n, mode="a", size_pad=0):
    """JSON lines with a running number, trace and span ids."""
    pad = "x" * size_pad
    with open(path, mode) as f:
        for i in range(start, start + n):
            f.write(json.dumps({
                "ts": "2026-11-25T10:00:%02d.%03dZ" % (i % 60, i % 1000),
                "level": "INFO" if i % 3 else "WARN",
                "msg": "request %d done%s" % (i, pad),
                "trace_id": "%032x" % (0xabc0000 + i),
                "span_id": "%016x" % (0x5150000 + i),
                "n": i,
                "user": "u%d" % (i % 97),
            }, separators=(",", ":")) + "\n")


def seq_of(ev):
    """The running number of an event produced by write_lines."""
    app = ev.get("app") or {}
    if "n" in app:
        return int(app["n"])
    msg = ev.get("message", "")
    return int(msg.split()[1])


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def ljrecv():
    r = LJReceiver()
    yield r
    r.close()


@pytest.fixture
def agents():
    started = []

    def make(tmp, cfg, name="agent"):
        a = Agent(tmp, cfg, name)
        started.append(a)
        return a
    yield make
    for a in started:
        if a.alive():
            a.kill()
