"""Kafka for tests: the sluice-kafka-mock cluster and kcat wrappers.

    with KafkaMock(brokers=2, topics={"logs": 4}) as k:
        k.bootstrap                    # "127.0.0.1:p1,127.0.0.1:p2"
        k.produce("logs", [b'{"a":1}'], key=b"k")   # kcat -P
        k.consume("logs", count=1)     # kcat -C, list of dicts
        k.down(); k.up()               # all brokers refuse / accept
        k.error(api=0, code=29, count=3)   # next 3 Produce requests fail
        k.stop()

The mock is tools/kafka_mock.c (see tools/README.md for its command
protocol and the limits of the librdkafka 2.0 mock). Stdlib only.
"""

import os
import shutil
import signal
import subprocess
import threading

import harness

MOCK = os.path.join(harness.BUILD, "tools", "sluice-kafka-mock")
KCAT = shutil.which("kcat") or "/usr/bin/kcat"

# Kafka API keys for KafkaMock.error().
API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_OFFSET_COMMIT = 8
API_JOIN_GROUP = 11

# Kafka error codes used by the tests.
ERR_MSG_SIZE_TOO_LARGE = 10
ERR_NOT_LEADER = 6
ERR_TOPIC_AUTHORIZATION_FAILED = 29
ERR_TRANSPORT = -195      # the mock drops the connection


def available():
    """True when the mock was built (meson -Dkafka) and kcat exists."""
    return os.path.exists(MOCK) and os.path.exists(KCAT)


class KafkaMock:
    def __init__(self, brokers=1, topics=None, log_path=None):
        args = [MOCK, "--brokers", str(brokers)]
        for name, parts in (topics or {}).items():
            args += ["--topic", "%s:%d" % (name, parts)]
        self._log = open(log_path, "ab") if log_path else \
            subprocess.DEVNULL
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log)
        self._lock = threading.Lock()
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            self.stop()
            raise RuntimeError("sluice-kafka-mock printed no bootstrap list")
        self.bootstrap = line
        self.brokers = line.split(",")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- control ----------------------------------------------------------

    def command(self, line):
        """Send one stdin command and wait for its answer ("ok")."""
        with self._lock:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            ans = self.proc.stdout.readline().decode().strip()
        if ans != "ok":
            raise RuntimeError("mock %r: %s" % (line, ans or "no answer"))

    def down(self, broker=None):
        self.command("down" if broker is None else "down %d" % broker)

    def up(self, broker=None):
        self.command("up" if broker is None else "up %d" % broker)

    def error(self, api, code, count=1):
        self.command("error %d %d %d" % (api, code, count))

    def rtt(self, ms, broker=None):
        self.command("rtt %d" % ms if broker is None
                     else "rtt %d %d" % (ms, broker))

    def create_topic(self, name, partitions):
        self.command("topic %s %d" % (name, partitions))

    def signal_down(self):
        self.proc.send_signal(signal.SIGUSR1)

    def signal_up(self):
        self.proc.send_signal(signal.SIGUSR2)

    def reachable(self):
        """kcat -L answers (signals act asynchronously; commands do not)."""
        r = subprocess.run([KCAT, "-L", "-b", self.bootstrap, "-m", "2"],
                           timeout=30, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return r.returncode == 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
            self._log = subprocess.DEVNULL

    # ---- kcat -------------------------------------------------------------

    def produce(self, topic, values, key=None, partition=None, extra=(),
                timeout=60):
        """kcat -P: one message per value (bytes without newlines)."""
        args = [KCAT, "-P", "-b", self.bootstrap, "-t", topic]
        if key is not None:
            args += ["-k", key.decode() if isinstance(key, bytes) else key]
        if partition is not None:
            args += ["-p", str(partition)]
        args += list(extra)
        data = b"".join(v + b"\n" for v in values)
        subprocess.run(args, input=data, check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def consume(self, topic, count=None, timeout=60, extra=()):
        """kcat -C from the beginning of every partition to the current end
        (or COUNT messages). Returns dicts with partition, offset, key,
        headers (dict of str) and value (bytes)."""
        # A record separator that JSON lines cannot contain keeps values
        # intact; the header list is "k=v,k=v".
        sep = "\x1e"
        fmt = sep.join(["%p", "%o", "%k", "%h", "%S", "%s"]) + "\x1f"
        args = [KCAT, "-C", "-b", self.bootstrap, "-t", topic, "-o",
                "beginning", "-q", "-f", fmt]
        args += ["-c", str(count)] if count is not None else ["-e"]
        args += list(extra)
        out = subprocess.run(args, check=True, timeout=timeout,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE).stdout
        msgs = []
        for rec in out.split(b"\x1f"):
            if not rec:
                continue
            p, o, k, h, size, v = rec.split(sep.encode(), 5)
            headers = {}
            if h:
                for kv in h.decode().split(","):
                    name, _, val = kv.partition("=")
                    headers[name] = val
            msgs.append({"partition": int(p), "offset": int(o), "key": k,
                         "headers": headers, "value": v,
                         "size": int(size)})
        return msgs
