"""What the Kafka collector suites (tests/integration/kafka_collector,
kafka_group) share: REAL sluice-collector(s)
consuming from sluice-kafka-mock (tools/kafka_mock.c; librdkafka's mock
cluster over TCP) into the Elasticsearch test double, fed by kcat or by a
REAL sluice-agent with `output.type: kafka`.

Fixtures (a suite's conftest.py imports them):
  mock         a 1-broker mock with topic "logs" (8 partitions)
  es           a fresh esdouble per test
  stack        processes; everything started is killed (by PID) in
               teardown, with log tails on failure:
                 stack.collector(es, mock, name, group="sluice",
                                 props={librdkafka: value}, ...)
                 stack.agent(mock, name, topic="logs")
  kafka_lines(path, tag, start, n)   append numbered JSON lines
  kcat_values(n, tag)                hand-written messages for kcat
  es_docs / settle_exact             count what ES holds: exactly once

Skipped when the build has no librdkafka or kcat is missing. Configs are
written as JSON (valid YAML); waits poll with a deadline (wait_until).
"""

import collections
import json
import os
import sys
import time

import pytest

import kafka
from esdouble_fixture import start_esdouble
from harness import (AgentProc, CollectorProc, agent_config,  # noqa: F401
                     collector_config, deep_merge, sanitized, wait_until)

TOPIC = "logs"
PARTITIONS = 8


def pytest_collection_modifyitems(config, items):
    if not kafka.available():
        skip = pytest.mark.skip(reason="built without kafka, or no kcat")
        for it in items:
            it.add_marker(skip)


def kafka_input(mock, group="sluice", **kw):
    inp = {"type": "kafka", "brokers": mock.brokers, "topics": [TOPIC],
           "group_id": group, "commit_interval": "200ms",
           # The mock coordinator waits out these before a rebalance
           # completes; the defaults (45 s) would dominate every test.
           "properties": {"session.timeout.ms": "3000",
                          "heartbeat.interval.ms": "200",
                          "fetch.wait.max.ms": "100"}}
    inp.update(kw)
    return inp


class Stack:
    def __init__(self, workdir):
        self.workdir = str(workdir)
        self.procs = []

    def collector(self, es, mock, name="collector", group="sluice",
                  overrides=None, start=True, lumberjack=False,
                  props=None, input_over=None):
        cfg = collector_config(os.path.join(self.workdir, name + "-data"),
                               es.url, shutdown_timeout="20s")
        inputs = [kafka_input(mock, group)]
        inputs[0]["properties"].update(props or {})
        inputs[0].update(input_over or {})
        if lumberjack:
            inputs.append(cfg["inputs"][0])
        cfg["inputs"] = inputs
        cfg = deep_merge(cfg, overrides)
        c = CollectorProc(self.workdir, name, cfg)
        self.procs.append(c)
        if start:
            c.start()
        return c

    def agent(self, mock, name="agent", topic=TOPIC, overrides=None):
        logdir = os.path.join(self.workdir, name + "-logs")
        os.makedirs(logdir, exist_ok=True)
        cfg = agent_config(os.path.join(self.workdir, name + "-data"),
                           [os.path.join(logdir, "*.log")],
                           {"type": "kafka", "brokers": mock.brokers,
                            "topic": topic},
                           dataset="kafka", service="shop",
                           shutdown_timeout="20s")
        cfg["name"] = name
        cfg = deep_merge(cfg, overrides)
        a = AgentProc(self.workdir, name, cfg)
        a.logdir = logdir
        self.procs.append(a)
        a.start()
        return a

    def cleanup(self, failed):
        for p in self.procs:
            if failed:
                sys.stderr.write("---- %s (%s) log tail ----\n%s\n" % (
                    p.name, p.log_path, p.log_tail()))
            p.cleanup()


@pytest.fixture
def mock(tmp_path):
    m = kafka.KafkaMock(brokers=1, topics={TOPIC: PARTITIONS},
                        log_path=str(tmp_path / "mock.log"))
    yield m
    m.stop()


@pytest.fixture
def es():
    with start_esdouble() as d:
        yield d
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(5)


@pytest.fixture
def stack(tmp_path, request):
    s = Stack(tmp_path)
    yield s
    rep = getattr(request.node, "rep_call", None)
    s.cleanup(rep is not None and rep.failed)


def kafka_lines(path, tag, start, n):
    """Append lines "<tag> <i>" (JSON) for i in start..start+n-1; returns
    their messages."""
    with open(path, "a") as f:
        f.write("".join(json.dumps({"msg": "%s %d" % (tag, i), "n": i,
                                    "pad": "p" * (20 + i % 40)},
                                   separators=(",", ":")) + "\n"
                        for i in range(start, start + n)))
    return {"%s %d" % (tag, i) for i in range(start, start + n)}


def es_count(es):
    try:
        return es.stats()["docs_total"]
    except Exception:
        return 0


def es_docs(es, index="logs-*"):
    from urllib.parse import quote
    r = es.request("GET", "/_double/docs?index=" + quote(index, safe=""),
                   timeout=600)
    assert r.status == 200, r
    return r.json()["docs"]


def exact(docs, expected):
    """Problems (a list of strings; empty: exactly once) of docs against
    the expected set of messages: no duplicate, none missing, nothing
    else, _id == event.id."""
    msgs = collections.Counter(d["_source"].get("message") for d in docs)
    ids = collections.Counter(d["_id"] for d in docs)
    problems = []
    dups = {m: c for m, c in msgs.items() if c > 1}
    if dups:
        problems.append("%d duplicated, e.g. %s" % (
            len(dups), sorted(dups.items(), key=str)[:5]))
    missing = set(expected) - set(msgs)
    if missing:
        problems.append("%d missing, e.g. %s" % (len(missing),
                                                 sorted(missing)[:10]))
    extra = set(msgs) - set(expected)
    if extra:
        problems.append("%d unexpected, e.g. %s" % (
            len(extra), sorted(extra, key=str)[:5]))
    if len(ids) != len(docs):
        problems.append("%d docs share an _id" % (len(docs) - len(ids)))
    bad = [d["_id"] for d in docs
           if d["_source"].get("event", {}).get("id") != d["_id"]]
    if bad:
        problems.append("%d docs with _id != event.id" % len(bad))
    return problems


def settle_exact(es, expected, index="logs-*", timeout=90.0, procs=()):
    """Wait for len(expected) docs, let the count stay put for a second
    (a late duplicate would show up), then assert exactly once."""
    def what():
        return "%d docs (have %d; running: %s)" % (
            len(expected), es_count(es),
            ", ".join("%s=%s" % (p.name, p.running()) for p in procs))
    wait_until(lambda: es_count(es) >= len(expected), timeout, 0.2, what)
    last, since = es_count(es), time.monotonic()
    deadline = since + 10
    while time.monotonic() - since < 1.0 and time.monotonic() < deadline:
        time.sleep(0.1)
        c = es_count(es)
        if c != last:
            last, since = c, time.monotonic()
    docs = es_docs(es, index)
    problems = exact(docs, expected)
    assert not problems, "\n".join(problems)
    return docs


def kcat_values(n, tag="kcat", malformed_every=100):
    """n hand-written messages as kcat users write them: most with an
    event.id, every third without one (an id comes from topic/partition/
    offset), one in `malformed_every` not JSON at all."""
    values, expected, bad = [], set(), set()
    for i in range(n):
        if i % malformed_every == 7:
            v = "%s not json %d" % (tag, i)
            bad.add(v)
        elif i % 3 == 0:
            v = json.dumps({"message": "%s %d" % (tag, i),
                            "event": {"dataset": "kcat"}})
            expected.add("%s %d" % (tag, i))
        else:
            v = json.dumps({"@timestamp": "2026-12-01T10:00:00.000Z",
                            "message": "%s %d" % (tag, i),
                            "event": {"id": "%s-%d" % (tag, i),
                                      "dataset": "kcat"}})
            expected.add("%s %d" % (tag, i))
        values.append(v.encode())
    return values, expected, bad
