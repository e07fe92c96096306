"""Fixtures for the file identity and rotation suite (issue 11).

The REAL agent binary tails files that the REAL `logrotate` binary rotates
(a config and a state file in the test's directory, `logrotate -f -s state
conf`), while a writer thread appends numbered lines; events go over
Lumberjack to the Python peer of tests/lib/lumberjack.py. Every test then
counts: each number once, the copytruncate window measured, and after a
kill -9 duplicates only with the same event.id.
"""

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from harness import AgentProc, wait_until  # noqa: E402,F401
from harness import agent_config as _agent_config  # noqa: E402
from lumberjack import LumberjackReceiver  # noqa: E402,F401
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401

LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


class Agent(AgentProc):
    def __init__(self, tmp, cfg, name="agent"):
        super().__init__(tmp, name, cfg)
        self.write_config()

    def stop(self, timeout=30):
        return self.term(timeout)


def agent_config(workdir, paths, recv, **inp):
    cfg = _agent_config(os.path.join(workdir, "data"), paths,
                        {"type": "lumberjack", "hosts": [recv.address],
                         "timeout": "3s",
                         "backoff": {"base": "50ms", "max": "300ms"}})
    cfg["inputs"][0].update({"parser": "raw", "scan_interval": "200ms"})
    cfg["inputs"][0].update(inp)
    return cfg


class Writer:
    """Appends "n=000123 ..." lines at `rate` per second to `path`, the way
    an application with Python's WatchedFileHandler does: the file stays
    open (O_APPEND) and is reopened when the path names another inode
    (after a rename rotation, once the new file exists)."""

    def __init__(self, path, rate, pad=60, start=0, follow=True):
        self.path = path
        self.rate = rate
        self.pad = "x" * pad
        self.n = start
        self.follow = follow
        self.stop_ev = threading.Event()
        self.f = open(path, "a")
        self.t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t.start()
        return self

    def _maybe_reopen(self):
        if not self.follow:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # between rename and create: keep the old file
        fst = os.fstat(self.f.fileno())
        if (st.st_dev, st.st_ino) != (fst.st_dev, fst.st_ino):
            self.f.close()
            self.f = open(self.path, "a")

    def write_one(self):
        self._maybe_reopen()
        self.f.write("n=%07d %s\n" % (self.n, self.pad))
        self.f.flush()
        self.n += 1

    def _run(self):
        t0 = time.monotonic()
        while not self.stop_ev.is_set():
            due = t0 + (self.n + 1) / self.rate
            now = time.monotonic()
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            self.write_one()

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)
        self.f.close()
        return self.n


def logrotate_conf(workdir, log, mode, rotate=20):
    """A logrotate config for one rotation style; returns (conf, state)."""
    opts = {
        "create": ["create"],
        "dateext": ["create", "dateext", "dateformat -%Y%m%d-%s"],
        "compress": ["create", "compress"],
        "delaycompress": ["create", "compress", "delaycompress"],
        "copytruncate": ["copytruncate"],
    }[mode]
    conf = os.path.join(workdir, "logrotate.conf")
    state = os.path.join(workdir, "logrotate.state")
    with open(conf, "w") as f:
        f.write("%s {\n  rotate %d\n  missingok\n  ifempty\n%s\n}\n" % (
            log, rotate, "\n".join("  " + o for o in opts)))
    os.chmod(conf, 0o644)
    return conf, state


def logrotate(conf, state):
    r = subprocess.run([LOGROTATE, "-f", "-s", state, conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "logrotate failed: %s%s" % (r.stdout, r.stderr)


def numbers(events):
    """number -> [event.id, ...] of the events received."""
    seen = {}
    for e in events:
        msg = e.get("message", "")
        if msg.startswith("n="):
            seen.setdefault(int(msg[2:9]), []).append(e["event"]["id"])
    return seen


@pytest.fixture
def workdir(tmp_path):
    os.chmod(str(tmp_path), 0o755)
    return str(tmp_path)


@pytest.fixture
def recv():
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
