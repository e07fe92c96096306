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
                      find_logs()/wait_log() over the JSON self-log,
                      vm_hwm_kib() (tests/lib/harness.py CollectorProc)
  make_events         deterministic events with event.id and a marker
  send_all            one sender, asserts every window was acked
  ResilientSender     reconnects and resends unacked windows (same ids)
  assert_exact        exact unique docs in ES: no missing, no duplicate

Everything waits for conditions with a deadline (wait_until); a fixed
wait is used only where a test must prove that something does NOT happen
within a period.
"""

import collections
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from esdouble_fixture import start_esdouble  # noqa: E402
from harness import (COLLECTOR, SOURCE, CollectorProc,  # noqa: E402,F401
                     collector_config, deep_merge, free_port, parse_metrics,
                     wait_until)
from lumberjack import LumberjackClient, ProtocolError  # noqa: E402
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401

DATASET = "ctest"
DS_PATTERN = "logs-%s-*" % DATASET
DEADLETTER = "logs-sluice.deadletter-default"


# ---- the collector process ------------------------------------------------

class Collector(CollectorProc):
    """The collector under test (tests/lib/harness.py CollectorProc) with
    its own data_dir; log records carry "_run" (1 = first start)."""

    def __init__(self, workdir, es_url, overrides=None, lj_port=0,
                 name="collector"):
        data_dir = os.path.join(str(workdir), name + "-data")
        super().__init__(workdir, name, deep_merge(
            collector_config(data_dir, es_url, lj_port), overrides))
        self.data_dir = data_dir

    def start(self, timeout=20.0):
        return super().start(timeout)

    def term(self, timeout=30.0):
        return super().term(timeout)

    def restart(self, timeout=20.0):
        """Start again with the same config and data_dir (after term or
        kill9). With lj_port 0 the Lumberjack port may change."""
        if self.running():
            self.term()
        return self.start(timeout)


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
        c.cleanup()
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
