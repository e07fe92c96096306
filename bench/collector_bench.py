#!/usr/bin/python3
"""Collector benchmark: Lumberjack in -> spool (fsync, ack) -> _bulk out.

    /usr/bin/python3 bench/collector_bench.py [--build DIR] [--events N]
        [--conns K] [--window W] [--level L] [--runs R]
        [--scenarios spool,null,double] [--sender c|python]

Needs a release build with bench_lj_send (default DIR: build-bench-collector,
set up with --buildtype=release if absent). Every run starts a fresh
collector with an empty data_dir and sends N events (deterministic
event.id, ~330 bytes of JSON each) from the C sender bench_lj_send over K
connections, windows of W events in one zlib C frame at level L.

Senders (--sender):
  c       bench/lj_send.c (bench_lj_send): pre-encodes every window, K
          connections; costs almost nothing while it sends.
  python  tests/lib/lumberjack.py send (one connection, a Beats-style sync
          writer that compresses each window while it sends): the collector
          sees one window at a time with pauses between, so per-window costs
          (buffers, commits, acks) show. Events: ~420 bytes of JSON written
          to an NDJSON file before the clock starts.

Scenarios (what "done" means):
  spool   received + spooled: Elasticsearch is a closed port, so the
          indexer only retries its connect (with backoff) and every ack
          means "fsync'ed in the spool". Done = the sender got its last ack.
  null    indexed end-to-end into a null Elasticsearch: a Python server
          that gunzips each _bulk body, counts its items and answers all
          201 (setup calls are proxied to the ES double). Done = ES
          answered every event and the spool released every record.
  double  indexed end-to-end into the ES test double (tests/esdouble,
          --discard-source). The double is Python and parses every
          document, so this measures the double more than the collector.

Reported per run: events/s, collector CPU seconds per million events
(utime+stime from /proc/PID/stat over the run), peak RSS (VmHWM), minor
page faults (/proc/PID/stat field 10) over the run and for the whole
process life, the latter divided by peak-RSS pages (1.0 = every page
touched once; issue 9's target is <= 1.5), and spool fsyncs/s
(sluice_collector_spool_fsyncs_total over the run). The sender, the null ES
and the collector share the machine, so numbers are a lower bound.
"""

import argparse
import gzip
import http.client
import http.server
import json
import os
import resource
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
from esdouble_fixture import start_esdouble  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


# ---- null Elasticsearch ---------------------------------------------------

class NullEs:
    """Answers _bulk with all-201 items as fast as Python can; proxies the
    rest (GET /, templates) to a real ES double."""

    ITEM = b'{"create":{"status":201}}'

    def __init__(self, upstream_port):
        self.items = 0
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                b = self.rfile.read(n) if n else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    b = gzip.decompress(b)
                return b

            def _reply(self, status, body, headers=()):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _any(self):
                body = self._body()
                if self.path.split("?")[0].endswith("/_bulk"):
                    n = sum(1 for ln in body.split(b"\n") if ln.strip()) // 2
                    with outer.lock:
                        outer.items += n
                        outer.requests += 1
                    self._reply(200, b'{"errors":false,"items":[' +
                                b",".join([NullEs.ITEM] * n) + b"]}")
                    return
                c = http.client.HTTPConnection("127.0.0.1", upstream_port,
                                               timeout=30)
                h = {"Content-Type": self.headers.get("Content-Type") or
                     "application/json"}
                c.request(self.command, self.path, body=body or None,
                          headers=h)
                r = c.getresponse()
                data = r.read()
                c.close()
                self._reply(r.status, data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.srv = S(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- collector process ----------------------------------------------------

def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Collector:
    def __init__(self, binary, workdir, es_url, spool_max="16GiB"):
        self.data_dir = os.path.join(workdir, "data")
        cfg = {
            "data_dir": self.data_dir,
            "log_level": "warn",
            "http": {"listen": "127.0.0.1:0"},
            "inputs": [{"type": "lumberjack", "listen": "127.0.0.1:0"}],
            "spool": {"max_bytes": spool_max},
            "elasticsearch": {"hosts": [es_url],
                              "retry": {"backoff_max": "2s"}},
        }
        path = os.path.join(workdir, "collector.yml")
        with open(path, "w") as f:
            json.dump(cfg, f)
        # log_level warn would hide "started": read the ports at info.
        self.proc = subprocess.Popen([binary, "-c", path, "--log-level",
                                      "info"], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL)
        self.lj_port = self.http_port = None
        for raw in self.proc.stderr:
            try:
                e = json.loads(raw)
            except ValueError:
                continue
            if e.get("message") == "started":
                self.lj_port = e["lumberjack_port"]
                self.http_port = e["http_port"]
                break
        if self.lj_port is None:
            raise RuntimeError("collector did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for _ in self.proc.stderr:
            pass

    def _stat(self):
        # Fields after "(comm)": index 0 is field 3 (state).
        with open("/proc/%d/stat" % self.proc.pid) as f:
            return f.read().rsplit(")", 1)[1].split()

    def cpu_s(self):
        st = self._stat()
        return (int(st[11]) + int(st[12])) / TICK

    def minflt(self):
        return int(self._stat()[7])  # field 10

    def hwm_mib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1]) / 1024
        return 0

    def metrics(self):
        url = "http://127.0.0.1:%d/metrics" % self.http_port
        out = {}
        with urllib.request.urlopen(url, timeout=10) as r:
            for ln in r.read().decode().splitlines():
                if ln and not ln.startswith("#") and "{" not in ln:
                    k, v = ln.rsplit(" ", 1)
                    out[k] = float(v)
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- one run --------------------------------------------------------------

def wait_until(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False


def python_events(path, n):
    """~420-byte events in the shape of lj_send.c's, one per line."""
    with open(path, "w") as f:
        for i in range(n):
            r = (i * 0x9E3779B97F4A7C15 + 12345) & (2 ** 64 - 1)
            f.write(json.dumps({
                "@timestamp": "2026-11-25T12:%02d:%02d.%03dZ" % (
                    i // 60000 % 60, i // 1000 % 60, i % 1000),
                "message": "GET /api/v1/items/%d?page=%d&sort=created_at "
                           "HTTP/1.1 %d %d bytes in %d ms" % (
                               r % 100000, r % 97, 500 if r % 7 == 0
                               else 200, (r >> 8) % 50000, (r >> 24) % 2000),
                "log": {"level": "error" if r % 7 == 0 else "info",
                        "logger": "http.access"},
                "service": {"name": "bench", "version": "1.4.2"},
                "host": {"name": "bench-host-%d" % ((r >> 48) % 16)},
                "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64)"},
                "trace": {"id": "%016x%016x" % (r, r ^ 0x5bd1e995)},
                "event": {"id": "py-%d" % i, "dataset": "bench"},
            }, separators=(",", ":")) + "\n")


def send(a, build, port, work):
    """Run the sender; returns its JSON summary (seconds, wire_bytes)."""
    if a.sender == "c":
        r = subprocess.run(
            [os.path.join(build, "bench", "bench_lj_send"), "--port",
             str(port), "--events", str(a.events), "--conns",
             str(a.conns), "--window", str(a.window), "--level",
             str(a.level)], capture_output=True, text=True, timeout=900)
        sent = json.loads(r.stdout.strip().splitlines()[-1])
    else:
        r = subprocess.run(
            [sys.executable, os.path.join(SRC, "tests", "lib",
                                          "lumberjack.py"), "send",
             "--port", str(port), "--file", a.python_file, "--window",
             str(a.window), "--compress-level", str(a.level), "--timeout",
             "120"], capture_output=True, text=True, timeout=1800)
        sent = json.loads(r.stdout.strip().splitlines()[-1])
        sent.setdefault("wire_bytes", 0)
    if r.returncode != 0:
        raise RuntimeError("sender failed: %s %s" % (r.stdout, r.stderr))
    return sent


def run_once(a, scenario, build):
    work = tempfile.mkdtemp(prefix="sluice-cbench-")
    es = null = None
    try:
        if scenario == "spool":
            url = "http://127.0.0.1:%d" % closed_port()
        else:
            es = start_esdouble("--discard-source")
            if scenario == "null":
                null = NullEs(es.port)
                url = null.url
            else:
                url = es.url
        c = Collector(os.path.join(build, "collector", "sluice-collector"),
                      work, url)
        try:
            if scenario != "spool":
                wait_until(lambda: urllib.request.urlopen(
                    "http://127.0.0.1:%d/health" % c.http_port).status == 200,
                    10)
            m0 = c.metrics()
            cpu0 = c.cpu_s()
            flt0 = c.minflt()
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            sent = send(a, build, c.lj_port, work)
            # The sender's clock starts after it pre-encoded its windows;
            # end-to-end time = its send time + the wait after it exited.
            t_exit = time.monotonic()
            secs = sent["seconds"]
            if scenario == "null":
                ok = wait_until(lambda: null.items >= a.events and
                                c.metrics().get("sluice_collector_spool_records", 1)
                                == 0, 600, 0.05)
                secs = sent["seconds"] + time.monotonic() - t_exit
                if not ok:
                    raise RuntimeError("null ES got %d of %d" % (
                        null.items, a.events))
            elif scenario == "double":
                ok = wait_until(lambda: es.stats()["docs_total"] >= a.events
                                and c.metrics().get("sluice_collector_spool_records",
                                                    1) == 0, 900, 0.2)
                secs = sent["seconds"] + time.monotonic() - t_exit
                if not ok:
                    raise RuntimeError("double has %d of %d" % (
                        es.stats()["docs_total"], a.events))
            cpu = c.cpu_s() - cpu0
            flt_total = c.minflt()
            flt = flt_total - flt0
            hwm = c.hwm_mib()
            hwm_pages = hwm * 2 ** 20 / os.sysconf("SC_PAGE_SIZE")
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            # this process: the null ES (or only polling, in the others)
            own = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime +
                                                   ru0.ru_stime)
            m1 = c.metrics()
            res = {
                "scenario": scenario,
                "sender": a.sender,
                "events": a.events,
                "seconds": round(secs, 3),
                "events_per_s": round(a.events / secs),
                "cpu_s_per_M": round(cpu / a.events * 1e6, 2),
                "peak_rss_mib": round(hwm, 1),
                "minflt_run": flt,
                "minflt_per_event": round(flt / a.events, 3),
                "minflt_total": flt_total,
                "faults_per_rss_page": round(flt_total / hwm_pages, 2),
                "fsyncs_per_s": round((m1["sluice_collector_spool_fsyncs_total"] -
                                       m0["sluice_collector_spool_fsyncs_total"]) /
                                      secs, 1),
                "wire_mib": round(sent["wire_bytes"] / 2 ** 20, 1),
                "sender_s": sent["seconds"],
                "bench_proc_cpu_s": round(own, 2),
            }
        finally:
            c.stop()
    finally:
        if null:
            null.close()
        if es:
            es.stop()
        shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC,
                                                    "build-bench-collector"))
    ap.add_argument("--events", type=int, default=2000000)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--window", type=int, default=2048)
    ap.add_argument("--level", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scenarios", default="spool,null,double")
    ap.add_argument("--sender", choices=["c", "python"], default="c")
    a = ap.parse_args()
    b = a.build
    if not os.path.exists(os.path.join(b, "bench", "bench_lj_send")):
        if not os.path.isdir(b):
            subprocess.run(["meson", "setup", b, SRC,
                            "--buildtype=release"], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run(["ninja", "-C", b, "collector/sluice-collector",
                        "bench/bench_lj_send"], check=True,
                       stdout=subprocess.DEVNULL)
    rows = []
    tmp = None
    if a.sender == "python":
        tmp = tempfile.mkdtemp(prefix="sluice-cbench-events-")
        a.python_file = os.path.join(tmp, "events.ndjson")
        python_events(a.python_file, a.events)
    for sc in a.scenarios.split(","):
        runs = []
        for _ in range(a.runs):
            r = run_once(a, sc, b)
            print(json.dumps(r), flush=True)
            runs.append(r)
        med = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
        med = dict(med)
        med["cpu_s_per_M"] = statistics.median(r["cpu_s_per_M"]
                                               for r in runs)
        med["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
        for k in ("minflt_per_event", "faults_per_rss_page"):
            med[k] = statistics.median(r[k] for r in runs)
        rows.append(med)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| scenario | sender | events | events/s | CPU-s per M events | "
          "peak RSS MiB | minor faults per event | faults / peak-RSS pages "
          "| fsyncs/s | wire MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %d | %d | %.2f | %.1f | %.3f | %.2f | %.1f | "
              "%.1f |" % (
                  r["scenario"], r["sender"], r["events"], r["events_per_s"],
                  r["cpu_s_per_M"], r["peak_rss_mib"], r["minflt_per_event"],
                  r["faults_per_rss_page"], r["fsyncs_per_s"],
                  r["wire_mib"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
