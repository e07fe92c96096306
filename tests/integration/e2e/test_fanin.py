"""Several agents -> one collector -> ES: exact counts and ECS fields."""

import os
import time

import pytest

from conftest import (Writer, assert_exact, line_ts, settle_exact,
                      trace_id)


def line_offsets(path):
    """message -> byte offset where its line starts."""
    import json
    out = {}
    off = 0
    with open(path, "rb") as f:
        for raw in f:
            out[json.loads(raw)["msg"]] = off
            off += len(raw)
    return out


def fan_in(es, stack, n_agents, lines):
    col = stack.collector(es)
    agents, writers = [], []
    for k in range(n_agents):
        a = stack.agent(col, "host-%c" % (ord("a") + k))
        agents.append(a)
    t0 = time.monotonic()
    for a in agents:
        w = Writer(os.path.join(a.logdir, "app.log"), a.name, lines,
                   chunk=2000)
        w.start()
        writers.append(w)
    expected = set()
    for w in writers:
        w.join_ok()
        expected |= w.messages()
    assert len(expected) == n_agents * lines
    docs = settle_exact(es, expected, timeout=150, procs=[col] + agents)
    took = time.monotonic() - t0
    print("%d agents x %d lines: %d docs exact in %.1fs (%.0f/s)" % (
        n_agents, lines, len(docs), took, len(docs) / took))

    # ECS fields of every document against what was written.
    by_agent = {a.name: a for a in agents}
    tag_no = {w.tag: w.tag_no for w in writers}
    offsets = {}
    for a in agents:
        with open(os.path.join(a.data_dir, "agent-id")) as f:
            a.disk_id = f.read().strip()
        assert a.agent_id == a.disk_id
        offsets[a.name] = line_offsets(os.path.join(a.logdir, "app.log"))
    wrong = []
    for d in docs:
        s = d["_source"]
        host = s["host"]["name"]
        a = by_agent[host]
        tag, i = s["message"].split()
        i = int(i)
        want = {
            "trace.id": trace_id(tag_no[tag], i),
            "log.file.path": os.path.join(a.logdir, "app.log"),
            "log.offset": offsets[host][s["message"]],
            "host.name": tag,
            "agent.id": a.agent_id,
            "event.dataset": "e2e",
            "@timestamp": line_ts(tag_no[tag], i),
            "data_stream.dataset": "e2e",
            "service.name": "shop",
            "labels.suite": "e2e",
            "app.n": i,
        }
        got = {
            "trace.id": s.get("trace", {}).get("id"),
            "log.file.path": s["log"]["file"]["path"],
            "log.offset": s["log"]["offset"],
            "host.name": host,
            "agent.id": s["agent"]["id"],
            "event.dataset": s["event"]["dataset"],
            "@timestamp": s["@timestamp"],
            "data_stream.dataset": s["data_stream"]["dataset"],
            "service.name": s.get("service", {}).get("name"),
            "labels.suite": s.get("labels", {}).get("suite"),
            "app.n": s.get("app", {}).get("n"),
        }
        if want != got:
            wrong.append({k: (want[k], got[k]) for k in want
                          if want[k] != got[k]})
    assert not wrong, "%d docs with wrong fields, e.g. %s" % (
        len(wrong), wrong[:3])
    assert all(d["_index"].startswith(".ds-logs-e2e-default-")
               for d in docs)
    for a in agents:
        assert a.term() == 0
    assert col.term() == 0
    # Nothing was re-sent on a healthy run: no 409s in ES.
    st = es.stats()
    assert st["items_by_status"].get("409", 0) == 0, st["items_by_status"]
    return docs


def test_three_agents_fan_in(es, stack):
    """3 agents (own data_dir and log dir) x 50,000 JSON lines -> one
    collector: exactly 150,000 unique docs, every ECS field right."""
    fan_in(es, stack, 3, 50_000)


@pytest.mark.slow
def test_three_agents_fan_in_big(es, stack):
    fan_in(es, stack, 3, 300_000)


def test_fan_in_exact_helper_catches_loss(es, stack):
    """The exactness check itself fails on a missing line (guards against
    a check that cannot fail)."""
    col, a, w = stack.shipping(es, "host-x", 100)
    w.join_ok()
    expected = w.messages()
    settle_exact(es, expected, timeout=30)
    with pytest.raises(AssertionError, match="missing"):
        assert_exact(es, expected | {"host-x 100"})
    with pytest.raises(AssertionError, match="unexpected"):
        assert_exact(es, expected - {"host-x 5"})
