"""What every pytest suite of sluice needs, in one place.

    sys.path.insert(0, "<source>/tests/lib")
    from harness import (AGENT, COLLECTOR, AgentProc, CollectorProc,
                         wait_until, free_port, parse_metrics, ...)

- Paths: SOURCE, BUILD ($SLUICE_SOURCE_DIR / $SLUICE_BUILD_DIR, else the
  checkout this file is in and its build/), AGENT, COLLECTOR.
- wait_until(pred, timeout, interval, what): poll a condition with a
  deadline (never a bare sleep); returns pred's value or raises
  AssertionError.
- free_port(): a port below the ephemeral range, for a process that must
  come back on the same port.
- parse_metrics(text): Prometheus text -> {"name{labels}": value}, with
  labelled series also summed under the bare name.
- deep_merge(base, over), write_config(path, cfg) (JSON, which is YAML),
  agent_config(...), collector_config(...): the configs the suites start
  from.
- Proc / AgentProc / CollectorProc: one of sluice's binaries, restartable.
  stderr (the JSON self-log) goes to <workdir>/<name>.log, appended across
  runs, so it survives kill -9; start() waits for the "started" record;
  term() sends SIGTERM and SIGKILLs after the timeout; records() parses
  the log (each record tagged with "_run", non-JSON lines as {"raw": ...}).
- stop_process(popen, timeout): SIGTERM, then SIGKILL.
- register_markers(config), sanitized(), close_listener(sock).

Stdlib only.
"""

import bisect
import collections
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("SLUICE_SOURCE_DIR",
                        os.path.normpath(os.path.join(HERE, "..", "..")))
BUILD = os.environ.get("SLUICE_BUILD_DIR", os.path.join(SOURCE, "build"))
AGENT = os.path.join(BUILD, "agent", "sluice-agent")
COLLECTOR = os.path.join(BUILD, "collector", "sluice-collector")


def register_markers(config):
    """The markers every suite uses (pytest_configure hook body)."""
    config.addinivalue_line("markers",
                            "slow: long-running test (excluded from CI)")


def wait_until(pred, timeout=30.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value (returned) or `timeout`
    seconds pass (AssertionError naming `what`, which may be a callable
    for a message worked out at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what() if callable(what)
                                    else what))
        time.sleep(interval)


def free_port():
    """A port that was free a moment ago, for a process that must come
    back on the same port. Chosen BELOW the kernel's ephemeral range: a
    sender reconnecting in a loop while nothing listens could otherwise
    get that very port as its source port and connect to itself (TCP
    simultaneous open), which then keeps the server from binding."""
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


def close_listener(s):
    """close() alone does not wake a thread blocked in accept(), and the
    socket keeps accepting; shutdown() does stop it."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


def stop_process(proc, timeout=5.0):
    """SIGTERM a subprocess.Popen, SIGKILL it after `timeout` seconds;
    returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def run_until_logged(argv, marker, timeout=20.0):
    """Start argv, read its stderr until a line contains `marker` (or it
    exits, or `timeout` passes), SIGTERM it and return (every stderr line,
    exit code)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ln = proc.stderr.readline()
            if not ln:
                break
            lines.append(ln)
            if marker in ln:
                break
    finally:
        proc.terminate()
        lines += proc.communicate(timeout=30)[1].splitlines(keepends=True)
    return lines, proc.returncode


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": value}; labelled series are
    also summed under the bare name."""
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


def deep_merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def write_config(path, cfg):
    """Configs are written as JSON, which is valid YAML."""
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)


def sanitized():
    """True when the build under test uses ASan/UBSan (RSS is
    meaningless)."""
    p = os.path.join(BUILD, "meson-info", "intro-buildoptions.json")
    try:
        with open(p) as f:
            for o in json.load(f):
                if o.get("name") == "b_sanitize":
                    return o.get("value") not in ("none", "", None)
    except (OSError, ValueError):
        pass
    return False


def agent_config(data_dir, paths, output, dataset="app", service="checkout",
                 shutdown_timeout="10s"):
    """An agent tailing `paths` (JSON lines) into `output`, with short
    intervals so that tests run fast."""
    return {
        "data_dir": data_dir,
        "log_level": "info",
        "workers": 2,
        "http": {"listen": "127.0.0.1:0"},
        "registry_flush": "200ms",
        "flush_interval": "100ms",
        "shutdown_timeout": shutdown_timeout,
        "inputs": [{
            "type": "file",
            "paths": paths,
            "parser": "json",
            "dataset": dataset,
            "service": service,
            "scan_interval": "200ms",
            "partial_timeout": "300ms",
        }],
        "output": output,
    }


def collector_config(data_dir, es_url, lj_port=0, shutdown_timeout="10s"):
    """A collector on 127.0.0.1:lj_port (0: any) indexing into es_url."""
    return {
        "data_dir": data_dir,
        "log_level": "info",
        "shutdown_timeout": shutdown_timeout,
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


class Proc:
    """One of sluice's binaries, restartable: `binary -c <name>.yml`, with
    the config written from .config at every start. stderr (the JSON
    self-log) goes to <workdir>/<name>.log, appended across runs."""

    binary = None

    def __init__(self, workdir, name, config):
        self.workdir = str(workdir)
        self.name = name
        self.config = config
        self.cfg_path = os.path.join(self.workdir, name + ".yml")
        self.log_path = os.path.join(self.workdir, name + ".log")
        self.proc = None
        self.logf = None
        self.run_start = 0        # log offset where the current run begins
        self.run_starts = []      # ... of every run, for "_run"
        self.started_rec = None
        self.exit_codes = []
        self.http_port = None
        self.preexec_fn = None    # run in the child before exec (rlimits)
        self._parsed = []         # (offset, record) of complete lines
        self._parsed_upto = 0

    # -- lifecycle

    def write_config(self):
        write_config(self.cfg_path, self.config)

    def start(self, timeout=20.0, extra_args=(), stdout=None):
        """Start and wait for this run's "started" record."""
        assert not self.running(), "%s already running" % self.name
        self.write_config()
        self.logf = open(self.log_path, "ab")
        if self.logf.tell() and not self.log_text(self.logf.tell() - 1) \
                .endswith("\n"):
            # A run killed mid-line: keep its fragment off the next run's
            # first record.
            self.logf.write(b"\n")
            self.logf.flush()
        self.run_start = self.logf.tell()
        self.run_starts.append(self.run_start)
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.cfg_path] + list(extra_args),
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=self.logf, preexec_fn=self.preexec_fn)
        self.started_rec = wait_until(
            lambda: self._started() or self.proc.poll() is not None,
            timeout, 0.02, "%s 'started'" % self.name)
        assert self.proc.poll() is None, "%s exited %s before 'started':\n%s" \
            % (self.name, self.proc.returncode, self.log_tail())
        self.on_started(self.started_rec)
        return self

    def on_started(self, rec):
        """Take ports and ids from the "started" record."""

    def _started(self):
        for rec in self.records(self.run_start):
            if rec.get("message") == "started":
                return rec
        return None

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    alive = running

    def signal(self, sig):
        self.proc.send_signal(sig)

    def _closed(self, rc):
        self.exit_codes.append(rc)
        if self.logf:
            self.logf.close()
            self.logf = None

    def term(self, timeout=40.0):
        """SIGTERM (drain) and wait; returns the exit code. Past `timeout`
        the process is SIGKILLed and the test fails."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self._closed(-9)
            raise AssertionError("%s did not stop within %.0fs:\n%s" % (
                self.name, timeout, self.log_tail()))
        self._closed(rc)
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._closed(-9)

    def cleanup(self):
        """Teardown: SIGKILL whatever still runs (our own child, by pid)."""
        if self.running():
            self.proc.kill()
            self.proc.wait(10)
        if self.logf:
            self.logf.close()
            self.logf = None

    # -- logs

    def log_text(self, start=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _parse_new(self):
        """Parse the complete lines appended since the last call (the log
        only grows; a partial last line waits for its newline)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._parsed_upto)
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        off = self._parsed_upto
        for raw in data[:end + 1].splitlines(keepends=True):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if not isinstance(rec, dict):
                rec = {"raw": line}
            rec["_run"] = bisect.bisect_right(self.run_starts, off)
            self._parsed.append((off, rec))
            off += len(raw)
        self._parsed_upto = off

    def records(self, start=0):
        """Self-log records from log offset `start` (0: every run), each
        with "_run" (1 = first start of this object)."""
        self._parse_new()
        i = bisect.bisect_left(self._parsed, start, key=lambda x: x[0])
        return [rec for _, rec in self._parsed[i:]]

    def find_logs(self, pred):
        return [e for e in self.records() if pred(e)]

    def wait_log(self, pred, timeout=15.0, what="log line"):
        """The first record (any run) for which pred is true."""
        def first():
            for e in self.records():
                if pred(e):
                    return e
            return None
        try:
            return wait_until(first, timeout, 0.02, what)
        except AssertionError:
            raise AssertionError("no %s within %.0fs:\n%s" % (
                what, timeout, self.log_tail())) from None

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- process state

    def status(self):
        """VmRSS and VmHWM in bytes."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) * 1024
        return out

    def vm_hwm_kib(self):
        return self.status()["VmHWM"] // 1024

    def asan(self):
        """True when the binary runs under AddressSanitizer (its shadow
        memory and quarantine make RSS limits meaningless)."""
        with open("/proc/%d/maps" % self.proc.pid) as f:
            return "libasan" in f.read()

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


class AgentProc(Proc):
    binary = AGENT

    def on_started(self, rec):
        self.http_port = int(rec["http.port"])
        self.agent_id = rec.get("agent.id")


class CollectorProc(Proc):
    binary = COLLECTOR

    def on_started(self, rec):
        self.lj_port = int(rec["lumberjack_port"])
        self.http_port = int(rec["http_port"])

    @property
    def address(self):
        return "127.0.0.1:%d" % self.lj_port

    def ready(self):
        return self.http_get("/ready")[0]

    def health(self):
        return self.http_get("/health")[0]
