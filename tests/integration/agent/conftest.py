"""Fixtures for sluice-agent integration tests.

Every test starts the REAL binary ($SLUICE_BUILD_DIR/agent/sluice-agent)
with a generated config (JSON is valid YAML) and talks to it through files,
sockets and its HTTP endpoint. Process handling, waiting and metrics come
from tests/lib/harness.py; receivers live in this process:

  LumberjackReceiver  the independent Lumberjack v2 peer of
                      tests/lib/lumberjack.py (W/J/C frames in, A frames
                      out, optional TLS) with fault switches:
                      pause_reading, resume_reading, drop_connections,
                      refuse(seconds, drop), drop_mid_window(n).
  LineReceiver        TCP json_lines sink that counts and keeps lines.

Everything waits for conditions with a deadline (wait_until), never with a
bare sleep.
"""

import json
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from harness import (AGENT, BUILD, SOURCE, AgentProc,  # noqa: E402,F401
                     close_listener, sanitized, wait_until)
from harness import agent_config as _agent_config  # noqa: E402
from lumberjack import LumberjackReceiver  # noqa: E402,F401
from suite_hooks import pytest_configure  # noqa: E402,F401


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
        close_listener(self.lsock)


# ---- the agent process ----------------------------------------------------

class Agent(AgentProc):
    """The agent under test; metric() is None for a series it does not
    export."""

    def __init__(self, tmp, cfg, name="agent"):
        super().__init__(tmp, name, cfg)
        self.write_config()

    def stop(self, timeout=30):
        return self.term(timeout)

    kill = AgentProc.kill9

    def log(self, start=0):
        return self.log_text(start)

    def http(self, path):
        return self.http_get(path)

    def metric(self, name, default=None):
        return super().metric(name, default)


def agent_config(data_dir, paths, output, **over):
    cfg = _agent_config(data_dir, paths, output)
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
    r = LumberjackReceiver()
    yield r
    r.stop()


@pytest.fixture
def agents():
    started = []

    def make(tmp, cfg, name="agent"):
        a = Agent(tmp, cfg, name)
        started.append(a)
        return a
    yield make
    for a in started:
        a.cleanup()
