"""End-to-end fixtures: REAL sluice-agent(s) -> REAL sluice-collector ->
Elasticsearch test double (tests/esdouble).

  es               a fresh esdouble per test
  stack            factory for processes; everything it started is killed
                   (by PID) in teardown, with log tails on failure:
                     stack.collector(es, lj_port=0, overrides=None)
                     stack.agent(collector, name, paths=None, overrides=None)
  Writer           a thread appending numbered JSON lines to a log file,
                   at a rate, with pause/reopen for rotation tests
  assert_exact     compares the docs in ES with the lines written: exact
                   count, zero missing, zero duplicates, _id == event.id

Processes, configs, waiting and metrics come from tests/lib/harness.py.
Configs are written as JSON (valid YAML). Processes log to a file per
process (appended across restarts), so logs survive kill -9. Waits poll a
condition with a deadline (wait_until); a fixed wait appears only where a
test must show that something does NOT happen within a period.
"""

import collections
import datetime
import json
import os
import signal
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from esdouble_fixture import start_esdouble  # noqa: E402
from harness import (AGENT, BUILD, COLLECTOR, SOURCE,  # noqa: E402,F401
                     AgentProc, CollectorProc, collector_config, deep_merge,
                     free_port, parse_metrics, wait_until)
from harness import agent_config as _agent_config  # noqa: E402
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401

DATASET = "e2e"
INDEX = "logs-%s-*" % DATASET


# ---- processes ------------------------------------------------------------

Collector = CollectorProc


class Agent(AgentProc):
    def starts(self):
        """'started' records of the current process (one more after each
        SIGHUP reload)."""
        return [r for r in self.records(self.run_start)
                if r.get("message") == "started"]

    def reload(self, timeout=30.0):
        """SIGHUP; wait until the agent has drained and started again
        from its config file (its HTTP port may change)."""
        n = len(self.starts())
        self.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(self.starts()) > n or not self.running(),
                   timeout, 0.02, "%s to reload" % self.name)
        assert self.running(), self.log_tail()
        self.on_started(self.starts()[-1])

    @property
    def data_dir(self):
        return self.config["data_dir"]

    def registry(self):
        """{path: offset} of the saved (acknowledged) offsets; the newest
        entry wins when a path has several identities."""
        out = {}
        for e in sorted(self.registry_entries(),
                        key=lambda e: e.get("updated", 0)):
            out[e["path"]] = e["offset"]
        return out

    def registry_entries(self):
        try:
            with open(os.path.join(self.data_dir, "registry.json")) as f:
                return json.load(f).get("entries", [])
        except (OSError, ValueError):
            return []


def agent_config(workdir, name, paths, hosts):
    cfg = _agent_config(os.path.join(str(workdir), name + "-data"), paths,
                        {"type": "lumberjack", "hosts": hosts,
                         "compression_level": 1, "timeout": "5s",
                         "backoff": {"base": "50ms", "max": "500ms"}},
                        dataset=DATASET, service="shop",
                        shutdown_timeout="20s")
    cfg["name"] = name
    cfg["inputs"][0]["fields"] = {"suite": "e2e"}
    return cfg


class Stack:
    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.procs = []

    def collector(self, es, lj_port=0, overrides=None, name="collector",
                  start=True):
        cfg = deep_merge(collector_config(
            os.path.join(self.workdir, name + "-data"), es.url, lj_port,
            shutdown_timeout="20s"), overrides)
        c = Collector(self.workdir, name, cfg)
        self.procs.append(c)
        if start:
            c.start()
        return c

    def agent(self, collector, name, paths=None, overrides=None,
              start=True):
        """An agent with its own data dir and log dir <workdir>/<name>-logs
        (paths default to <that dir>/*.log)."""
        logdir = os.path.join(self.workdir, name + "-logs")
        os.makedirs(logdir, exist_ok=True)
        if paths is None:
            paths = [os.path.join(logdir, "*.log")]
        hosts = [collector if isinstance(collector, str)
                 else collector.address]
        cfg = deep_merge(agent_config(self.workdir, name, paths, hosts),
                         overrides)
        a = Agent(self.workdir, name, cfg)
        a.logdir = logdir
        self.procs.append(a)
        if start:
            a.start()
        return a

    def shipping(self, es, name, lines, rate=0, chunk=500, lj_port=0):
        """A collector (on lj_port), one agent `name` and a started Writer
        of `lines` lines into the agent's app.log; returns all three."""
        col = self.collector(es, lj_port=lj_port)
        a = self.agent(col, name)
        w = Writer(os.path.join(a.logdir, "app.log"), name, lines,
                   rate=rate, chunk=chunk)
        w.start()
        return col, a, w

    def cleanup(self, failed):
        for p in self.procs:
            if failed:
                sys.stderr.write("---- %s (%s) log tail ----\n%s\n" % (
                    p.name, p.log_path, p.log_tail()))
            p.cleanup()


@pytest.fixture
def es():
    with start_esdouble() as d:
        yield d
        # Its data is not needed any more: SIGKILL (our own child, by PID)
        # instead of the ~1 s graceful stop.
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(5)


@pytest.fixture
def stack(tmp_path, request):
    s = Stack(tmp_path)
    yield s
    rep = getattr(request.node, "rep_call", None)
    s.cleanup(rep is not None and rep.failed)


# ---- the log writer -------------------------------------------------------

T0 = datetime.datetime(2026, 11, 25, 10, 0, 0,
                       tzinfo=datetime.timezone.utc)


def line_ts(tag_no, i):
    """A distinct RFC 3339 time (ms) per line, so @timestamp from the line
    can be checked exactly."""
    t = T0 + datetime.timedelta(milliseconds=i + tag_no * 10_000_000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (
        t.microsecond // 1000)


def trace_id(tag_no, i):
    return "%08x%024x" % (0x7ace0000 + tag_no, i * 7919 + 1)


def make_line(tag, tag_no, i):
    return json.dumps({
        "ts": line_ts(tag_no, i),
        "level": "info" if i % 5 else "warn",
        "msg": "%s %d" % (tag, i),
        "trace_id": trace_id(tag_no, i),
        "span_id": "%016x" % (i + 1),
        "n": i,
        "pad": "p" * (40 + i % 50),
    }, separators=(",", ":")) + "\n"


class Writer(threading.Thread):
    """Appends `total` lines "<tag> <i>" to `path` in chunks of `chunk`
    lines, at about `rate` lines/s (0 = as fast as possible). The file
    stays open; reopen() makes it reopen `path` before its next chunk
    (what a postrotate signal does). pause()/resume() stop it between
    chunks; paused() waits until it has stopped and flushed."""

    _tag_nos = {}

    def __init__(self, path, tag, total, rate=0, chunk=500, start_at=0):
        super().__init__(daemon=True)
        self.path = path
        self.tag = tag
        self.tag_no = Writer._tag_nos.setdefault(tag,
                                                 len(Writer._tag_nos) + 1)
        self.total = total
        self.rate = rate
        self.chunk = chunk
        self.written = start_at
        self.start_at = start_at
        self.error = None
        self._lock = threading.Lock()
        self._go = threading.Event()
        self._go.set()
        self._idle = threading.Event()
        self._reopen = False
        self._halt = False

    def messages(self):
        return {"%s %d" % (self.tag, i)
                for i in range(self.start_at, self.written)}

    def expected(self):
        return self.messages()

    def reopen(self):
        self._reopen = True

    def pause(self, timeout=10.0):
        self._go.clear()
        assert self._idle.wait(timeout) or not self.is_alive(), \
            "writer did not pause"

    def resume(self):
        self._idle.clear()
        self._go.set()

    def stop(self):
        self._halt = True
        self._go.set()
        self.join(10)

    def run(self):
        f = None
        try:
            f = open(self.path, "a")
            t0 = time.monotonic()
            while self.written < self.total and not self._halt:
                if not self._go.is_set():
                    f.flush()
                    self._idle.set()
                    self._go.wait()
                    continue
                if self._reopen:
                    f.close()
                    f = open(self.path, "a")
                    self._reopen = False
                n = min(self.chunk, self.total - self.written)
                f.write("".join(make_line(self.tag, self.tag_no, i)
                                for i in range(self.written,
                                               self.written + n)))
                f.flush()
                self.written += n
                if self.rate:
                    ahead = (self.written - self.start_at) / self.rate - (
                        time.monotonic() - t0)
                    if ahead > 0:
                        # Pacing, not synchronisation.
                        time.sleep(ahead)
        except Exception as e:  # surfaced by join_ok()
            self.error = e
        finally:
            if f:
                f.close()
            self._idle.set()

    def join_ok(self, timeout=120.0):
        self.join(timeout)
        assert not self.is_alive(), "writer still running (%d/%d)" % (
            self.written, self.total)
        assert self.error is None, self.error
        return self.written


def write_file(path, tag, n, start=0):
    """Write lines start..start+n-1 of `tag` at once; returns the set of
    their messages."""
    w = Writer(path, tag, start + n, chunk=5000, start_at=start)
    w.run()
    assert w.error is None, w.error
    return w.messages()


# ---- checks ---------------------------------------------------------------

def es_docs(es):
    """Every stored doc (hidden backing indices too), with a timeout that
    fits a million docs."""
    from urllib.parse import quote
    r = es.request("GET", "/_double/docs?index=" + quote(INDEX, safe=""),
                   timeout=600)
    assert r.status == 200, r
    return r.json()["docs"]


def es_count(es):
    """Docs stored in the double (its private API is never faulted, so
    this works while ES "is down")."""
    try:
        return es.stats()["docs_total"]
    except Exception:
        return 0


def wait_for_docs(es, n, timeout=90.0, procs=()):
    """Wait until ES holds at least n docs; on timeout say what is
    missing and whether the processes still run."""
    def what():
        return "%d docs in ES (have %d; running: %s)" % (
            n, es_count(es), ", ".join("%s=%s" % (p.name, p.running())
                                       for p in procs))
    wait_until(lambda: es_count(es) >= n, timeout, 0.1, what)


def assert_exact(es, expected, check_places=True):
    """Every expected message is in ES exactly once, nothing else is:
    count == len(expected), zero missing, zero duplicates (by message and,
    unless check_places is False, by (host, path, offset) -- rotation
    reuses a path with offsets from 0), _id == event.id. Returns the
    docs."""
    docs = es_docs(es)
    by_key = {}
    for d in docs:
        by_key[(d["_index"], d["_id"])] = d
    assert len(by_key) == len(docs), "double listed docs"
    msgs = collections.Counter()
    places = collections.Counter()
    bad_ids = []
    for d in docs:
        s = d["_source"]
        msgs[s.get("message")] += 1
        places[(s.get("host", {}).get("name"),
                s.get("log", {}).get("file", {}).get("path"),
                s.get("log", {}).get("offset"))] += 1
        if s.get("event", {}).get("id") != d["_id"]:
            bad_ids.append((d["_id"], s.get("event")))
    dups = {m: c for m, c in msgs.items() if c > 1}
    missing = set(expected) - set(msgs)
    extra = set(msgs) - set(expected)
    place_dups = {p: c for p, c in places.items() if c > 1}
    problems = []
    if dups:
        problems.append("%d duplicated messages, e.g. %s" % (
            len(dups), sorted(dups.items())[:5]))
    if missing:
        problems.append("%d missing, e.g. %s" % (
            len(missing), sorted(missing)[:10]))
    if extra:
        problems.append("%d unexpected, e.g. %s" % (
            len(extra), sorted(extra, key=str)[:5]))
    if place_dups and check_places:
        problems.append("%d duplicated (host, path, offset), e.g. %s" % (
            len(place_dups), sorted(place_dups.items(), key=str)[:5]))
    if bad_ids:
        problems.append("%d docs with _id != event.id, e.g. %s" % (
            len(bad_ids), bad_ids[:3]))
    if len(docs) != len(expected):
        problems.append("ES has %d docs, expected %d" % (len(docs),
                                                         len(expected)))
    assert not problems, "\n".join(problems)
    return docs


def settle_exact(es, expected, timeout=90.0, procs=(), check_places=True):
    """Wait until ES holds len(expected) docs, give stragglers (late
    duplicates with other ids) one more flush period to show up, then
    assert exactness."""
    wait_for_docs(es, len(expected), timeout, procs)
    # A duplicate would arrive in the same pipeline as the rest: require
    # the count to stay put over a few flush intervals before judging.
    stable_since = time.monotonic()
    last = es_count(es)
    deadline = time.monotonic() + 10
    while time.monotonic() - stable_since < 1.0 and \
            time.monotonic() < deadline:
        time.sleep(0.1)
        c = es_count(es)
        if c != last:
            last, stable_since = c, time.monotonic()
    return assert_exact(es, expected, check_places)
