#!/usr/bin/python3
"""Collector Kafka benchmark: Kafka (sluice-kafka-mock) -> Kafka input ->
spool (fsync, offsets stored) -> _bulk into a null Elasticsearch.

    /usr/bin/python3 bench/kafka_collector_bench.py [--build DIR]
        [--events N] [--partitions P] [--runs R] [--compression C]

Needs a release build with the collector and tools/sluice-kafka-mock
(default DIR: build-bench-collector, set up with --buildtype=release if
absent). Each run starts a fresh mock with one topic of P partitions,
produces N events (~420 bytes of JSON each, with event.id, the shape of
bench/collector_bench.py --sender python) with kcat (codec C, as the
agent's default lz4), then starts a fresh collector whose only input is
Kafka, into the null ES of bench/collector_bench.py (answers every _bulk
item 201). The clock starts when the consumer holds its partitions (the
mock's group join takes ~3 s and is not the collector's work) and stops
when the null ES has answered N items and the spool is empty.

The mock keeps only ~5 MB per partition: N * 420 / P must stay under
that (the default 200,000 events over 32 partitions is ~2.6 MB each);
the run checks that the collector saw exactly N messages.

Reported per run: events/s, collector CPU seconds per million events
(utime+stime over the timed window), peak RSS (VmHWM). The mock, the
null ES and the collector share the machine: numbers are a lower bound.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import collector_bench as cb  # noqa: E402

SRC = cb.SRC
KCAT = shutil.which("kcat") or "/usr/bin/kcat"


class KafkaCollector(cb.Collector):
    """cb.Collector's measurements, with a Kafka-only config."""

    def __init__(self, binary, workdir, es_url, brokers):
        self.data_dir = os.path.join(workdir, "data")
        cfg = {
            "data_dir": self.data_dir,
            "log_level": "warn",
            "http": {"listen": "127.0.0.1:0"},
            "inputs": [{"type": "kafka", "brokers": brokers,
                        "topics": ["logs"], "group_id": "bench",
                        "properties": {"session.timeout.ms": "6000",
                                       "heartbeat.interval.ms": "300"}}],
            "spool": {"max_bytes": "16GiB"},
            "elasticsearch": {"hosts": [es_url],
                              "retry": {"backoff_max": "2s"}},
        }
        path = os.path.join(workdir, "collector.yml")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.proc = subprocess.Popen([binary, "-c", path, "--log-level",
                                      "info"], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL)
        self.http_port = None
        for raw in self.proc.stderr:
            try:
                e = json.loads(raw)
            except ValueError:
                continue
            if e.get("message") == "started":
                self.http_port = e["http_port"]
                break
        if self.http_port is None:
            raise RuntimeError("collector did not start")
        cb.threading.Thread(target=self._drain, daemon=True).start()

    def kafka(self, name):
        url = "http://127.0.0.1:%d/metrics" % self.http_port
        with cb.urllib.request.urlopen(url, timeout=10) as r:
            for ln in r.read().decode().splitlines():
                if ln.startswith(name + "{"):
                    return float(ln.rsplit(" ", 1)[1])
        return 0.0


def run_once(a, build, events_file):
    work = tempfile.mkdtemp(prefix="sluice-kbench-")
    mock = subprocess.Popen(
        [os.path.join(build, "tools", "sluice-kafka-mock"), "--brokers",
         "1", "--topic", "logs:%d" % a.partitions],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    boot = mock.stdout.readline().decode().strip()
    with open(events_file, "rb") as f:
        subprocess.run([KCAT, "-P", "-b", boot, "-t", "logs", "-z",
                        a.compression, "-X", "linger.ms=20"], stdin=f,
                       check=True, stderr=subprocess.DEVNULL)
    es = cb.start_esdouble("--discard-source")
    es = es.__enter__()
    null = cb.NullEs(int(es.url.rsplit(":", 1)[1]))
    col = KafkaCollector(os.path.join(build, "collector",
                                      "sluice-collector"),
                         work, null.url, boot.split(","))
    try:
        ok = cb.wait_until(lambda: col.kafka("sluice_collector_kafka_partitions") > 0,
                           60, 0.005)
        assert ok, "no partitions assigned"
        t0, c0 = time.monotonic(), col.cpu_s()
        ok = cb.wait_until(lambda: null.items >= a.events and
                           col.metrics().get("sluice_collector_spool_records", 1) == 0,
                           600, 0.01)
        t1, c1 = time.monotonic(), col.cpu_s()
        assert ok, "timed out: %d of %d indexed" % (null.items, a.events)
        seen = col.kafka("sluice_collector_kafka_messages_total")
        assert seen == a.events, "collector saw %d messages" % seen
        r = {"events": a.events, "partitions": a.partitions,
             "compression": a.compression,
             "events_per_s": a.events / (t1 - t0),
             "cpu_s_per_M": (c1 - c0) / a.events * 1e6,
             "peak_rss_mib": col.hwm_mib(),
             "seconds": t1 - t0}
    finally:
        col.stop()
        null.close()
        es.__exit__(None, None, None)
        mock.terminate()
        mock.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC,
                                                    "build-bench-collector"))
    ap.add_argument("--events", type=int, default=200000)
    ap.add_argument("--partitions", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compression", default="lz4")
    a = ap.parse_args()
    b = a.build
    if not os.path.isdir(b):
        subprocess.run(["meson", "setup", b, SRC, "--buildtype=release"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", b, "collector/sluice-collector",
                    "tools/sluice-kafka-mock"], check=True,
                   stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="sluice-kbench-events-")
    events = os.path.join(tmp, "events.ndjson")
    cb.python_events(events, a.events)
    runs = []
    try:
        for _ in range(a.runs):
            r = run_once(a, b, events)
            print(json.dumps(r), flush=True)
            runs.append(r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| scenario | events | partitions | events/s | CPU-s per M "
          "events | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    print("| kafka -> spool -> null ES | %d | %d | %d | %.2f | %.1f |" % (
        a.events, a.partitions,
        statistics.median(r["events_per_s"] for r in runs),
        statistics.median(r["cpu_s_per_M"] for r in runs),
        max(r["peak_rss_mib"] for r in runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
