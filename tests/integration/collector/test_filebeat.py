"""Filebeat-style senders: events without event.id or any sluice field,
J frames and v1 D frames. They index, and sending the very same events
again does not duplicate them (the id is a hash of the event bytes)."""

import collections
import json
import re

from conftest import es_count, send_all, wait_until
from lumberjack import V1, V2

TARGET = "logs-generic-default"


def filebeat_events(n, tag):
    out = []
    for i in range(n):
        out.append(json.dumps({
            "@timestamp": "2026-11-25T10:00:%02d.%03dZ" % (i % 60, i % 1000),
            "message": "%s line %d" % (tag, i),
            "host": {"name": "web-1"},
            "agent": {"type": "filebeat", "version": "8.15.0"},
            "log": {"offset": i * 100, "file": {"path": "/var/log/app.log"}},
            "input": {"type": "filestream"},
            "ecs": {"version": "8.0.0"},
        }, separators=(",", ":")).encode())
    return out


def data_events(n, tag):
    # v1 data frames: flat string pairs, as logstash-forwarder sent them
    return [{"@timestamp": "2026-11-25T11:00:00.000Z", "line": str(i),
             "message": "%s line %d" % (tag, i), "host": "web-2",
             "file": "/var/log/old.log"} for i in range(n)]


def send_groups(port):
    n = 0
    send_all(port, filebeat_events(3000, "fbJ"), window=500)
    n += 3000
    # D frames ('1D') inside v2 windows
    send_all(port, data_events(1000, "fbD2"), window=250, data_frames=True,
             version=V2)
    n += 1000
    # everything v1: '1W', '1C', '1D'
    send_all(port, data_events(1000, "fbD1"), window=250, data_frames=True,
             version=V1)
    n += 1000
    return n


def test_filebeat_events_index_once_and_resend_dedupes(es, make_collector):
    c = make_collector(es)
    n = send_groups(c.lj_port)
    wait_until(lambda: es_count(es, TARGET) >= n, 30, what="%d docs" % n)
    docs = es.docs(TARGET)
    assert len(docs) == n
    ids = collections.Counter(d["_id"] for d in docs)
    assert len(ids) == n
    msgs = collections.Counter(d["_source"]["message"] for d in docs)
    assert len(msgs) == n, msgs.most_common(3)
    for tag, k in (("fbJ", 3000), ("fbD2", 1000), ("fbD1", 1000)):
        assert sum(1 for m in msgs if m.startswith(tag + " ")) == k
    for d in docs:
        # a hash id (xxh3-128 hex), also written into the event
        assert re.fullmatch(r"[0-9a-f]{32}", d["_id"]), d["_id"]
        assert d["_source"]["event"]["id"] == d["_id"]
    # the D frame fields arrive as they were sent (strings)
    d1 = [d["_source"] for d in docs
          if d["_source"]["message"] == "fbD1 line 7"][0]
    assert d1["line"] == "7" and d1["host"] == "web-2", d1
    first = {d["_id"]: d["_source"]["message"] for d in docs}

    # The same events again: every one answers 409, nothing is added.
    es.reset("stats")
    assert send_groups(c.lj_port) == n
    wait_until(lambda: es.stats()["items_by_status"].get("409", 0) >= n, 30,
               what="%d duplicates answered 409" % n)
    st = es.stats()
    assert st["items_by_status"].get("201", 0) == 0, st["items_by_status"]
    docs2 = es.docs(TARGET)
    assert len(docs2) == n
    assert {d["_id"]: d["_source"]["message"] for d in docs2} == first
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 20,
               what="spool released")
    assert c.term() == 0
