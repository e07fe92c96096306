#!/usr/bin/python3
"""Tail benchmark: many watched files (issue 11).

    /usr/bin/python3 bench/tail_bench.py [--build DIR] [--idle-files 1000,10000]
        [--idle-seconds 60] [--lat-files 1000] [--rate 100]
        [--lat-seconds 30] [--flush-interval 1s,100ms]

Scenarios:
  idle     N files of one line each, watched by one `*.log` glob with the
           default timers (scan_interval 10s, inotify). Once every line
           arrived and the agent settled (5 s), its CPU seconds
           (utime+stime, /proc/PID/stat) over --idle-seconds.
  latency  --lat-files files; a writer appends --rate lines per second,
           each to the next file in a shuffled order (so every file gets
           a line every files/rate seconds), for --lat-seconds. Each line
           carries its write time; the receiver (json_lines over TCP on
           127.0.0.1) timestamps its arrival. Reported: append-to-receive
           delay p50 / p99 / max, once per batch flush_interval (the
           agent sends a partial batch at most flush_interval after its
           first event, so that is the floor of the delay).

Output goes to json_lines over TCP (no compression), the cheapest output:
what is measured is the tailing. Uses the release build in DIR (default:
build). Prints one line per run and a Markdown table.
"""

import argparse
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import harness  # noqa: E402


class Receiver:
    """json_lines sink: arrival time of every line."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0
        self.delays = []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
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
            now = time.time()
            buf += d
            *full, buf = buf.split(b"\n")
            ds = []
            for x in full:
                m = json.loads(x).get("message", "")
                p = m.split()
                if len(p) == 3 and p[0] == "w":
                    ds.append(now - float(p[2]))
            with self.lock:
                self.n += len(full)
                self.delays.extend(ds)

    def count(self):
        with self.lock:
            return self.n

    def close(self):
        harness.close_listener(self.ls)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def start_agent(work, logs, recv, flush="1s"):
    cfg = harness.agent_config(os.path.join(work, "data"),
                               [logs + "/*.log"],
                               {"type": "tcp", "format": "json_lines",
                                "hosts": ["127.0.0.1:%d" % recv.port]})
    cfg["registry_flush"] = "1s"
    cfg["flush_interval"] = flush
    inp = cfg["inputs"][0]
    inp["parser"] = "raw"
    for k in ("scan_interval", "partial_timeout"):
        inp.pop(k)   # defaults: what an idle production agent runs with
    a = harness.AgentProc(work, "agent", cfg)
    a.start()
    return a


def idle(n, seconds):
    work = tempfile.mkdtemp(prefix="sluice-tailbench-")
    recv = Receiver()
    try:
        logs = os.path.join(work, "logs")
        os.makedirs(logs)
        for i in range(n):
            with open(os.path.join(logs, "f%05d.log" % i), "w") as f:
                f.write("start %d\n" % i)
        a = start_agent(work, logs, recv)
        harness.wait_until(lambda: recv.count() >= n, 120, 0.1,
                           "%d first lines" % n)
        time.sleep(5)
        opened = a.metric("sluice_agent_files_open")
        c0, t0 = cpu_s(a.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_s(a.pid), time.monotonic()
        a.term()
        cpu = c1 - c0
        print("idle files=%d open=%d seconds=%.0f cpu_s=%.3f cpu_pct=%.3f"
              % (n, opened, t1 - t0, cpu, 100 * cpu / (t1 - t0)), flush=True)
        return cpu, t1 - t0
    finally:
        recv.close()
        shutil.rmtree(work, ignore_errors=True)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def latency(n, rate, seconds, flush):
    work = tempfile.mkdtemp(prefix="sluice-tailbench-")
    recv = Receiver()
    try:
        logs = os.path.join(work, "logs")
        os.makedirs(logs)
        for i in range(n):
            open(os.path.join(logs, "f%05d.log" % i), "w").close()
        a = start_agent(work, logs, recv, flush)
        harness.wait_until(
            lambda: a.metric("sluice_agent_files_open") >= n, 60, 0.1,
            "all files open")
        order = list(range(n))
        random.Random(1).shuffle(order)
        total = int(rate * seconds)
        c0 = cpu_s(a.pid)
        t0 = time.monotonic()
        for k in range(total):
            due = t0 + k / rate
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            i = order[k % n]
            with open(os.path.join(logs, "f%05d.log" % i), "a") as f:
                f.write("w %d %.6f\n" % (k, time.time()))
        harness.wait_until(lambda: len(recv.delays) >= total, 60, 0.05,
                           "every appended line")
        cpu = cpu_s(a.pid) - c0
        a.term()
        ds = recv.delays[:]
        print("latency files=%d rate=%d/s lines=%d flush_interval=%s "
              "p50_ms=%.1f p99_ms=%.1f max_ms=%.1f cpu_s=%.2f"
              % (n, rate, total, flush, 1000 * pct(ds, 0.5),
                 1000 * pct(ds, 0.99), 1000 * max(ds), cpu), flush=True)
        return pct(ds, 0.5), pct(ds, 0.99), max(ds), cpu
    finally:
        recv.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--idle-files", default="1000,10000")
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--lat-files", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--lat-seconds", type=float, default=30)
    ap.add_argument("--flush-interval", default="1s,100ms")
    o = ap.parse_args()
    harness.AgentProc.binary = os.path.join(os.path.abspath(o.build),
                                            "agent", "sluice-agent")
    rows = []
    for n in [int(x) for x in o.idle_files.split(",") if x]:
        cpu, secs = idle(n, o.idle_seconds)
        rows.append("| idle, %d files | %.2f CPU-s over %.0f s (%.2f %%) |"
                    % (n, cpu, secs, 100 * cpu / secs))
    for fl in [x for x in o.flush_interval.split(",") if x]:
        p50, p99, mx, cpu = latency(o.lat_files, o.rate, o.lat_seconds, fl)
        rows.append("| %g appends/s over %d files, flush_interval %s | "
                    "p50 %.0f ms, p99 %.0f ms, max %.0f ms (%.2f CPU-s) |"
                    % (o.rate, o.lat_files, fl, 1000 * p50, 1000 * p99,
                       1000 * mx, cpu))
    print("\n| scenario | result |\n|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
