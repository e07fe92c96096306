"""Fixtures for sluice-collector integration tests.

Every test starts the REAL binary ($SLUICE_BUILD_DIR/collector/
sluice-collector -c CFG) against the Elasticsearch test double
(tests/esdouble) and sends with the Python Lumberjack peer
(tests/lib/lumberjack.py). Configs are written as JSON (valid YAML).

  es                  a fresh esdouble per test (EsDouble, see
                      tests/esdouble/README.md for the fault API)
  make_collector      factory: make_collector(es, overrides) -> Collector,
                      started and waited for ("started" log line)
  Collector           metrics()/metric()/ready()/term()/kill9()/restart(),
                      logs (parsed JSON self-log lines), wait_log(),
                      vm_hwm_kib()
  make_events         deterministic events with event.id and a marker
  send_all            one sender, asserts every window was acked
  ResilientSender     reconnects and resends unacked windows (same ids)
  assert_exact        exact unique docs in ES: no missing, no duplicate

Everything waits for conditions with a deadline (wait_until); a fixed
wait is used only where a test must prove that something does NOT happen
within a period.
"""

import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

BUILD = os.environ.get("SLUICE_BUILD_DIR",
                       os.path.join(os.path.dirname(__file__), "..", "..",
                                    "..", "build"))
SOURCE = os.environ.get("SLUICE_SOURCE_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..",
                                     ".."))
COLLECTOR = os.path.join(BUILD, "collector", "sluice-collector")
sys.path.insert(0, os.path.join(SOURCE, "tests", "lib"))

from esdouble_fixture import start_esdouble  # noqa: E402
from lumberjack import LumberjackClient, ProtocolError  # noqa: E402

DATASET = "ctest"
DS_PATTERN = "logs-%s-*" % DATASET
DEADLETTER = "logs-sluice.deadletter-default"


def pytest_configure(config):
    config.addinivalue_line("markers",
                            "slow: long-running test (excluded from CI)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def wait_until(pred, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def free_port():
    """A port that was free a moment ago (for tests that must restart on
    the same Lumberjack port). Chosen BELOW the kernel's ephemeral range:
    a sender reconnecting in a loop while nothing listens can otherwise
    get that very port as its source port and connect to itself (TCP
    simultaneous open), which then keeps the collector from binding."""
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError):
        pass
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(max(1024, lo - 12000), lo)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port below %d" % lo)


def deep_merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": value} plus, for labelled
    series, a summed entry under the bare name."""
    out = {}
    sums = collections.defaultdict(float)
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        try:
            key, val = ln.rsplit(" ", 1)
            v = float(val)
        except ValueError:
            continue
        out[key] = v
        if "{" in key:
            sums[key.split("{", 1)[0]] += v
    for k, v in sums.items():
        out.setdefault(k, v)
    return out


# ---- the collector process ------------------------------------------------

class Collector:
    def __init__(self, workdir, es_url, overrides=None, lj_port=0,
                 name="collector"):
        self.workdir = str(workdir)
        self.data_dir = os.path.join(self.workdir, name + "-data")
        self.cfg_path = os.path.join(self.workdir, name + ".yml")
        self.lj_listen_port = lj_port
        base = {
            "data_dir": self.data_dir,
            "log_level": "info",
            "shutdown_timeout": "10s",
            "http": {"listen": "127.0.0.1:0"},
            "inputs": [{"type": "lumberjack",
                        "listen": "127.0.0.1:%d" % lj_port,
                        "idle_timeout": "30s"}],
            "spool": {"commit_interval": "5ms"},
            "elasticsearch": {
                "hosts": [es_url],
                "flush_interval": "100ms",
                "timeout": "10s",
                "retry": {"backoff_base": "50ms", "backoff_max": "500ms"},
            },
        }
        self.config = deep_merge(base, overrides)
        self.proc = None
        self.logs = []            # every self-log line (dicts), all runs
        self.runs = 0
        self.lj_port = None
        self.http_port = None
        self._cond = threading.Condition()

    # -- lifecycle

    def write_config(self):
        with open(self.cfg_path, "w") as f:
            json.dump(self.config, f, indent=1)

    def start(self, timeout=20.0):
        self.write_config()
        self.runs += 1
        run = self.runs
        self.proc = subprocess.Popen([COLLECTOR, "-c", self.cfg_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        threading.Thread(target=self._read_stderr, args=(self.proc, run),
                         daemon=True).start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                st = [e for e in self.logs
                      if e.get("_run") == run and e.get("message") == "started"]
                if st:
                    self.lj_port = int(st[0]["lumberjack_port"])
                    self.http_port = int(st[0]["http_port"])
                    return self
                if self.proc.poll() is not None and self._eof_run == run:
                    raise AssertionError("collector exited (%s) before "
                                         "'started':\n%s" % (
                                             self.proc.returncode,
                                             self.log_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("collector did not start:\n"
                                         + self.log_tail())
                self._cond.wait(min(left, 0.1))

    _eof_run = 0

    def _read_stderr(self, proc, run):
        for raw in proc.stderr:
            try:
                e = json.loads(raw)
                if not isinstance(e, dict):
                    e = {"raw": raw.decode("utf-8", "replace").rstrip()}
            except ValueError:
                e = {"raw": raw.decode("utf-8", "replace").rstrip()}
            e["_run"] = run
            with self._cond:
                self.logs.append(e)
                self._cond.notify_all()
        with self._cond:
            self._eof_run = run
            self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def term(self, timeout=30.0):
        """SIGTERM (drain) and wait; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("collector did not drain within %.0fs:\n%s"
                                 % (timeout, self.log_tail()))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self, timeout=20.0):
        """Start again with the same config and data_dir (after term or
        kill9). With lj_port 0 the Lumberjack port may change."""
        if self.running():
            self.term()
        return self.start(timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    # -- HTTP

    def http_get(self, path, timeout=5.0):
        url = "http://127.0.0.1:%d%s" % (self.http_port, path)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        st, body = self.http_get("/metrics")
        assert st == 200, (st, body)
        return parse_metrics(body)

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def ready(self):
        return self.http_get("/ready")[0]

    def health(self):
        return self.http_get("/health")[0]

    # -- logs and process state

    def find_logs(self, pred):
        with self._cond:
            return [e for e in self.logs if pred(e)]

    def wait_log(self, pred, timeout=15.0, what="log line"):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.logs:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.0fs:\n%s" % (
                        what, timeout, self.log_tail()))
                self._cond.wait(min(left, 0.1))

    def log_tail(self, n=60):
        with self._cond:
            tail = self.logs[-n:]
        return "\n".join(json.dumps(e) for e in tail)

    def asan(self):
        """True when the binary runs under AddressSanitizer (its shadow
        memory and quarantine make RSS limits meaningless)."""
        with open("/proc/%d/maps" % self.proc.pid) as f:
            return "libasan" in f.read()

    def vm_hwm_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
        raise AssertionError("no VmHWM")


# ---- fixtures -------------------------------------------------------------

@pytest.fixture
def es():
    with start_esdouble() as d:
        yield d


@pytest.fixture
def make_collector(tmp_path, request):
    made = []

    def make(es_or_url, overrides=None, lj_port=0, start=True,
             name="collector"):
        url = es_or_url if isinstance(es_or_url, str) else es_or_url.url
        c = Collector(tmp_path, url, overrides, lj_port, name)
        made.append(c)
        if start:
            c.start()
        return c

    yield make
    failed = getattr(request.node, "rep_call", None)
    bad = []
    for c in made:
        if failed is not None and failed.failed:
            sys.stderr.write("---- %s log tail ----\n%s\n" % (
                c.cfg_path, c.log_tail(80)))
        c.stop()
        # UBSan only prints; ASan reports too. Either fails the test.
        bad += [e["raw"] for e in c.find_logs(lambda e: "raw" in e)
                if "runtime error" in e["raw"] or "Sanitizer" in e["raw"]]
    assert not bad, "sanitizer reports:\n" + "\n".join(bad[:20])


# ---- events ---------------------------------------------------------------

def event_id(tag, i):
    return "%s-%07d" % (tag, i)


def make_events(tag, n, start=0, extra=""):
    """n JSON events (bytes) with event.id = <tag>-<i:07d> and the same
    marker in the message, so ids and payloads can both be checked."""
    out = []
    fmt = ('{"@timestamp":"2026-11-25T12:00:00.000Z","message":"%s %s",'
           '"log":{"level":"info"},"event":{"id":"%s","dataset":"'
           + DATASET + '"}' + extra + '}')
    for i in range(start, start + n):
        eid = event_id(tag, i)
        out.append((fmt % ("payload", eid, eid)).encode())
    return out


def send_all(port, events, window=1000, compress=3, timeout=60.0, **kw):
    c = LumberjackClient(port=port, window=window, compress_level=compress,
                         timeout=timeout, **kw)
    try:
        acked = c.send(events)
    finally:
        c.close()
    assert acked == len(events), "acked %d of %d (%r)" % (
        acked, len(events), c.last_error)
    return acked


class ResilientSender(threading.Thread):
    """Sends `events` in windows; on any connection failure reconnects
    (retrying until `deadline_s`) and resends the unacked window with the
    same events (same ids) -- what a Beats sender does."""

    def __init__(self, port, events, window=500, compress=3,
                 deadline_s=120.0, ack_timeout=30.0, pace_s=0.0):
        super().__init__(daemon=True)
        self.pace_s = pace_s  # pause after each acked window (tests that
        # must act between windows on a fast machine)
        self.port = port
        self.events = events
        self.window = window
        self.compress = compress
        self.deadline = time.monotonic() + deadline_s
        self.ack_timeout = ack_timeout
        self.acked = 0
        self.reconnects = 0
        self.error = None
        self.windows_acked = 0
        self._lock = threading.Lock()

    def run(self):
        c = None
        try:
            i = 0
            while i < len(self.events):
                chunk = self.events[i:i + self.window]
                while True:
                    if time.monotonic() > self.deadline:
                        raise AssertionError("sender deadline passed at "
                                             "event %d" % i)
                    try:
                        if c is None:
                            c = LumberjackClient(port=self.port,
                                                 window=self.window,
                                                 compress_level=self.compress,
                                                 timeout=self.ack_timeout)
                            c.connect()
                            if c.sock.getsockname() == c.sock.getpeername():
                                raise ConnectionError("connected to self")
                        c.sock.sendall(c.build_window(chunk))
                        c.wait_ack(len(chunk))
                        break
                    except (OSError, ProtocolError):
                        if c is not None:
                            c.close()
                            c = None
                        self.reconnects += 1
                        time.sleep(0.05)
                i += len(chunk)
                with self._lock:
                    self.acked = i
                    self.windows_acked += 1
                if self.pace_s:
                    time.sleep(self.pace_s)
        except BaseException as e:  # reported by join_ok()
            self.error = e
        finally:
            if c is not None:
                c.close()

    def join_ok(self, timeout=None):
        self.join(timeout)
        assert not self.is_alive(), "sender still running"
        if self.error:
            raise self.error
        assert self.acked == len(self.events)


# ---- checking Elasticsearch ----------------------------------------------

def es_count(es, pattern):
    """Docs in `pattern`; 0 while the index does not exist yet (404)."""
    try:
        return es.count(pattern)
    except Exception:
        return 0


def assert_exact(es, expected_ids, pattern=DS_PATTERN, timeout=60.0,
                 check_payload=True):
    """Wait until `pattern` holds len(expected_ids) docs, then check: the
    _id set equals expected_ids, no _id twice, each doc's payload marker
    (message and event.id) names its own _id. Returns the docs."""
    expected = set(expected_ids)
    n = len(expected)

    def have():
        try:
            return es.count(pattern) >= n
        except Exception:
            return False
    try:
        wait_until(have, timeout, 0.1, "%d docs in %s" % (n, pattern))
    except AssertionError:
        pass  # report the difference below
    docs = es.docs(pattern)
    ids = [d["_id"] for d in docs]
    cnt = collections.Counter(ids)
    dups = [i for i, k in cnt.items() if k > 1]
    got = set(ids)
    missing = expected - got
    extra = got - expected
    assert not dups, "%d duplicate ids, e.g. %r" % (len(dups), dups[:5])
    assert not missing, "%d missing of %d, e.g. %r" % (
        len(missing), n, sorted(missing)[:5])
    assert not extra, "%d unexpected ids, e.g. %r" % (
        len(extra), sorted(extra)[:5])
    if check_payload:
        markers = collections.Counter()
        for d in docs:
            src = d["_source"]
            ev = src.get("event") or {}
            assert ev.get("id") == d["_id"], d
            msg = src.get("message", "")
            assert msg.endswith(" " + d["_id"]), d
            markers[msg] += 1
        dm = [m for m, k in markers.items() if k > 1]
        assert not dm, "duplicate payloads: %r" % dm[:5]
    assert len(docs) == n
    return docs
