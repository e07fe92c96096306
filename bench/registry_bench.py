#!/usr/bin/python3
"""Agent start-up with a big registry (the registry was a linear list).

    /usr/bin/python3 bench/registry_bench.py [--build DIR] [--files 20000]

N files of one line each under one `*.log` glob. Run 1 (empty registry)
ships every line and writes N registry entries (close_inactive 1s, so
that files past the descriptor budget get their turn), then stops. Run 2
starts again on that registry: every file of the first scan is looked up
in it. For both runs: the agent's CPU seconds (utime+stime,
/proc/PID/stat) when it logged "started", which it does after the first
scan (agent.c: sl_tail_start scans synchronously), and the wall seconds
from exec to that line. Output goes to json_lines over TCP.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import harness  # noqa: E402
from tail_bench import Receiver, cpu_s  # noqa: E402


def start(work, logs, recv):
    cfg = harness.agent_config(os.path.join(work, "data"),
                               [logs + "/*.log"],
                               {"type": "tcp", "format": "json_lines",
                                "hosts": ["127.0.0.1:%d" % recv.port]})
    cfg["registry_flush"] = "1s"
    inp = cfg["inputs"][0]
    inp["parser"] = "raw"
    inp["close_inactive"] = "1s"
    inp["scan_interval"] = "1s"
    a = harness.AgentProc(work, "agent", cfg)
    t0 = time.monotonic()
    a.start(timeout=600)
    wall = time.monotonic() - t0
    return a, cpu_s(a.pid), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--files", type=int, default=20000)
    args = ap.parse_args()
    os.environ["SLUICE_BUILD_DIR"] = os.path.abspath(args.build)
    harness.AgentProc.binary = os.path.join(
        os.path.abspath(args.build), "agent", "sluice-agent")
    n = args.files
    work = tempfile.mkdtemp(prefix="sluice-regbench-")
    recv = Receiver()
    try:
        logs = os.path.join(work, "logs")
        os.makedirs(logs)
        for i in range(n):
            with open(os.path.join(logs, "f%05d.log" % i), "w") as f:
                f.write("start %d\n" % i)
        a, cpu, wall = start(work, logs, recv)
        print("run1 empty registry files=%d started_cpu_s=%.2f wall_s=%.2f"
              % (n, cpu, wall), flush=True)
        harness.wait_until(
            lambda: recv.count() >= n and
            a.metric("sluice_agent_registry_entries") >= n, 900, 0.5,
            "%d lines and registry entries" % n)
        print("run1 shipped all, cpu_s=%.2f" % cpu_s(a.pid), flush=True)
        a.term(timeout=120)
        a, cpu, wall = start(work, logs, recv)
        print("run2 registry=%d started_cpu_s=%.2f wall_s=%.2f"
              % (n, cpu, wall), flush=True)
        a.term(timeout=120)
    finally:
        recv.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
