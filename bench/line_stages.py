#!/usr/bin/env python3
"""bench/line_stages.py - CPU cost of the line stages (issue 10): a Java
log with stack traces with and without `multiline: java`, and a line mix
with card numbers, secrets and e-mail addresses with and without
`redact: [credit_card, secrets, email]`. Same input per pair, file output
to /dev/null-like sink file, parser raw.

    SLUICE_BUILD_DIR=build-bench python3 bench/line_stages.py [MB] [RUNS]
    ONLY=JSON ...   # only the workloads whose name contains this

Reports agent CPU-s (utime + stime from /proc, start to last event
written) per GB of input, median of RUNS, and the ratio to plain.
"""

import os
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from harness import AgentProc, wait_until  # noqa: E402


def gen_java(path, mb):
    rnd = random.Random(1)
    frames = ["\tat com.example.shop.%s.%s(%s.java:%d)" % (
        c, m, c, rnd.randint(10, 900))
        for c in ("OrderService", "CheckoutController", "Repo", "Pool")
        for m in ("place", "run", "invoke", "call")]
    n = 0
    with open(path, "w") as f:
        while f.tell() < mb << 20:
            n += 1
            ts = "2026-12-05 23:%02d:%02d,%03d" % (n // 60 % 60, n % 60,
                                                   n % 1000)
            if n % 10 == 0:
                f.write("%s ERROR [exec-%d] c.e.Shop - failed %d\n"
                        "java.lang.IllegalStateException: boom %d\n" % (
                            ts, n % 8, n, n))
                for _ in range(rnd.randint(8, 30)):
                    f.write(rnd.choice(frames) + "\n")
                f.write("\t... %d more\n" % rnd.randint(1, 90))
            else:
                f.write("%s INFO  [exec-%d] c.e.Shop - request %d done "
                        "in %d ms user=u%d\n" % (ts, n % 8, n,
                                                 rnd.randint(1, 900),
                                                 n % 97))


def gen_redact(path, mb):
    rnd = random.Random(2)
    n = 0
    with open(path, "w") as f:
        while f.tell() < mb << 20:
            n += 1
            k = n % 5
            if k == 0:
                extra = "card=4111 1111 1111 1111 order=%016d" % n
            elif k == 1:
                extra = "password=hunter%d token=abc.%d" % (n, n)
            elif k == 2:
                extra = "mail to user%d@example.com" % n
            else:
                extra = "plain request %d took %d ms" % (n, rnd.randint(1,
                                                                        900))
            f.write("2026-12-05T23:00:00.%06dZ INFO app: %s path=/api/v1/"
                    "items/%d\n" % (n % 1000000, extra, n))


def gen_json(path, mb):
    n = 0
    with open(path, "w") as f:
        while f.tell() < mb << 20:
            n += 1
            f.write('{"ts":"2026-12-05T23:00:%02d.%03dZ","level":"info",'
                    '"msg":"request %d done","user":"u%d","sid":"s%d",'
                    '"trace_id":"%032x","n":%d}\n' % (
                        n % 60, n % 1000, n, n % 97, n, n, n))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def run(work, log, inp, name, parser="raw"):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out = os.path.join(d, "out.ndjson")
    cfg = {"data_dir": os.path.join(d, "data"), "log_level": "info",
           "workers": 2, "http": {"listen": "127.0.0.1:0"},
           "inputs": [dict({"type": "file", "paths": [log],
                            "parser": parser}, **inp)],
           "output": {"type": "file", "path": out}}
    a = AgentProc(d, "agent", cfg)
    a.binary = os.path.join(os.environ.get("SLUICE_BUILD_DIR", "build"),
                            "agent", "sluice-agent")
    a.start(timeout=30)
    size = os.path.getsize(log)

    def done():
        m = a.metric("sluice_agent_bytes_read_total", 0)
        q = a.metric("sluice_agent_queue_input_bytes", 1)
        return m >= size and q == 0
    wait_until(done, 600, 0.05, "all read and acked")
    c = cpu_s(a.pid)
    a.term()
    os.remove(out)
    return c / (size / 1e9)


def main():
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = tempfile.mkdtemp(prefix="sluice-bench-stages.")
    AgentProc.binary = os.path.join(
        os.environ.get("SLUICE_BUILD_DIR", "build"), "agent", "sluice-agent")
    rows = []
    for kind, gen, inp, parser in (
            ("java traces (multiline: java)", gen_java,
             {"multiline": {"preset": "java", "timeout": "1s"}}, "raw"),
            ("redact mix (credit_card, secrets, email)", gen_redact,
             {"redact": ["credit_card", "secrets", "email"]}, "raw"),
            ("JSON lines (drop_fields, rename, add_fields)", gen_json,
             {"drop_fields": ["app.sid"],
              "rename": {"app.user": "user.name"},
              "add_fields": {"service.name": "checkout"}}, "json")):
        if os.environ.get("ONLY") and os.environ["ONLY"] not in kind:
            continue
        log = os.path.join(work, kind.split()[0] + ".log")
        gen(log, mb)
        plain = statistics.median(run(work, log, {}, "plain", parser)
                                  for _ in range(runs))
        stage = statistics.median(run(work, log, inp, "stage", parser)
                                  for _ in range(runs))
        rows.append((kind, plain, stage))
        os.remove(log)
    print("| workload (%d MB each, file output) | plain CPU-s/GB | "
          "with stage CPU-s/GB | ratio |" % mb)
    print("|---|---|---|---|")
    for kind, p, s in rows:
        print("| %s | %.2f | %.2f | %.2fx |" % (kind, p, s, s / p))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
