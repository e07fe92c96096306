#!/usr/bin/env python3
"""How many lines does logrotate's copytruncate lose, at N lines/s?

copytruncate copies app.log to app.log.1 and then truncates app.log in
place. Lines the application writes after the copy read its last block and
before the truncate are in neither file; the agent still ships them if it
read app.log in between (it reads on inotify events, usually within a
millisecond). This runs the real agent (Lumberjack to the Python peer of
tests/lib/lumberjack.py), a writer appending numbered lines at each rate
with the file open O_APPEND (as an application does), and the real
`logrotate -f` with copytruncate, ROTATIONS times per rate, for the globs
`app.log` and `app.log*`, and prints the numbers lost and duplicated.

    python3 bench/copytruncate_window.py [--rates 100,1000,10000]
        [--rotations 20] [--build build]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

from harness import AgentProc, agent_config, wait_until  # noqa: E402
from lumberjack import LumberjackReceiver  # noqa: E402

LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


class Writer(threading.Thread):
    def __init__(self, path, rate):
        super().__init__(daemon=True)
        self.path, self.rate, self.n = path, rate, 0
        self.stop_ev = threading.Event()
        self.f = open(path, "a")

    def run(self):
        t0 = time.monotonic()
        while not self.stop_ev.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            if due <= self.n:
                time.sleep(0.0005)
                continue
            while self.n < due:
                self.f.write("n=%09d %s\n" % (self.n, "x" * 60))
                self.f.flush()
                self.n += 1

    def finish(self):
        self.stop_ev.set()
        self.join()
        self.f.close()
        return self.n


def one(build, rate, rotations, glob):
    work = tempfile.mkdtemp(prefix="sl_ct_")
    os.chmod(work, 0o755)
    log = os.path.join(work, "app.log")
    open(log, "w").close()
    conf = os.path.join(work, "lr.conf")
    with open(conf, "w") as f:
        f.write("%s {\n  rotate 1000\n  copytruncate\n  missingok\n}\n" % log)
    recv = LumberjackReceiver()
    cfg = agent_config(os.path.join(work, "data"), [os.path.join(work, glob)],
                       {"type": "lumberjack", "hosts": [recv.address]})
    cfg["inputs"][0].update({"parser": "raw", "scan_interval": "200ms"})
    os.environ["SLUICE_BUILD_DIR"] = build
    agent = AgentProc(work, "agent", cfg)
    agent.binary = os.path.join(build, "agent", "sluice-agent")
    agent.write_config()
    agent.start()
    w = Writer(log, rate)
    w.start()
    gap = max(0.3, 30.0 / rate)  # each copy well over the 1 KiB fingerprint
    for _ in range(rotations):
        time.sleep(gap)
        subprocess.run([LOGROTATE, "-f", "-s", os.path.join(work, "st"),
                        conf], check=True)
    time.sleep(gap)
    total = w.finish()

    def got():
        return {int(e["message"][2:11]) for e in list(recv.events)}
    try:
        wait_until(lambda: len(got()) >= total - 200 * rotations, 60)
    except AssertionError:
        pass
    time.sleep(1.0)
    seen = [int(e["message"][2:11]) for e in list(recv.events)]
    agent.term()
    recv.stop()
    shutil.rmtree(work, ignore_errors=True)
    lost = total - len(set(seen))
    dups = len(seen) - len(set(seen))
    return total, lost, dups


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--rotations", type=int, default=20)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    print("| lines/s | glob | rotations | lines | lost | lost/rotation "
          "| duplicated |")
    print("|---|---|---|---|---|---|---|")
    for rate in [int(x) for x in a.rates.split(",")]:
        for glob in ("app.log", "app.log*"):
            total, lost, dups = one(build, rate, a.rotations, glob)
            print("| %d | `%s` | %d | %d | %d | %.2f | %d |" % (
                rate, glob, a.rotations, total, lost,
                lost / float(a.rotations), dups), flush=True)


if __name__ == "__main__":
    main()
