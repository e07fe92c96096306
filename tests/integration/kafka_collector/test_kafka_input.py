"""The collector's Kafka input end to end: kcat produces into
sluice-kafka-mock, a real collector consumes and indexes into the ES
double. Every check counts: each event exactly once
in ES (distinct _id == N, none missing), malformed messages dead-lettered
with their topic/partition/offset."""

import json
import re
import time

from kafka_stack import (PARTITIONS, TOPIC, es_count, es_docs, exact,
                         kcat_values, settle_exact, wait_until)


def test_kcat_messages_indexed_once_and_redelivery_dedupes(mock, es, stack):
    n = 10000
    values, expected, bad = kcat_values(n)
    mock.produce(TOPIC, values)
    col = stack.collector(es, mock)
    wait_until(lambda: es_count(es) >= n, 90, 0.2,
               lambda: "%d docs (have %d)" % (n, es_count(es)))
    docs = settle_exact(es, expected, index="logs-kcat-*", procs=[col])
    hexid = re.compile("^[0-9a-f]{32}$")
    for d in docs:
        m = int(d["_source"]["message"].split()[1])
        if m % 3 == 0:
            assert hexid.match(d["_id"]), d
        else:
            assert d["_id"] == "kcat-%d" % m, d

    # Malformed messages: dead letters that say where they were.
    places = {(m["partition"], m["offset"]): m["value"].decode()
              for m in mock.consume(TOPIC)}
    dls = es_docs(es, "logs-sluice.deadletter-*")
    assert len(dls) == len(bad)
    seen = set()
    for d in dls:
        s = d["_source"]
        lab = s["labels"]
        assert lab["kafka_topic"] == TOPIC
        key = (int(lab["kafka_partition"]), int(lab["kafka_offset"]))
        assert places[key] == s["event"]["original"], (key, s)
        assert s["event"]["original"] in bad
        assert s["error"]["type"] == "kafka_malformed_message"
        seen.add(key)
    assert len(seen) == len(bad)
    m = col.metrics()
    assert m["sluice_collector_kafka_messages_total"] == n
    assert m["sluice_collector_kafka_deadletters_total"] == len(bad)
    st = json.loads(col.http_get("/debug/state")[1])
    k = [i for i in st["inputs"] if i["type"] == "kafka"][0]
    assert k["group_id"] == "sluice" and not k["paused"]
    assert len(k["partitions"]) == PARTITIONS
    wait_until(lambda: col.metric("sluice_collector_kafka_lag") == 0, 30, 0.2,
               "lag 0")

    # Another group reads everything again: the same ids (also those made
    # from topic/partition/offset), so ES keeps exactly one copy.
    again = stack.collector(es, mock, name="again", group="again")
    wait_until(lambda: again.metric("sluice_collector_kafka_messages_total") >= n and
               again.metric("sluice_collector_spool_records") == 0, 90, 0.2,
               "second group to index everything")
    assert es_count(es) == n
    problems = exact(es_docs(es, "logs-kcat-*"), expected)
    assert not problems, problems
    assert len(es_docs(es, "logs-sluice.deadletter-*")) == len(bad)
    assert col.term() == 0
    assert again.term() == 0


def test_full_spool_pauses_partitions_and_loses_nothing(mock, es, stack):
    n = 12000
    values, expected, bad = kcat_values(n, tag="full", malformed_every=10**9)
    es.set_faults(fail_status=503, fail_count=10**9)
    # The smallest spool --check allows, small records and a small
    # prefetch, so that ~1.8 MB of messages overflow it.
    col = stack.collector(es, mock, overrides={
        "spool": {"max_bytes": "1MiB", "segment_bytes": "64KiB"}},
        props={"queued.max.messages.kbytes": "64",
               "fetch.message.max.bytes": "16384"},
        input_over={"flush_bytes": "64KiB"})
    mock.produce(TOPIC, values)
    wait_until(lambda: col.metric("sluice_collector_kafka_paused") == 1, 60, 0.1,
               "partitions paused by the full spool")
    st = json.loads(col.http_get("/debug/state")[1])
    assert [i for i in st["inputs"] if i["type"] == "kafka"][0]["paused"]
    # Paused means paused: nothing more is taken while ES stays down (a
    # fixed wait, because this shows that something does NOT happen).
    taken = col.metric("sluice_collector_kafka_messages_total")
    time.sleep(1.0)
    assert col.metric("sluice_collector_kafka_messages_total") == taken
    assert col.metric("sluice_collector_kafka_paused") == 1
    es.clear_faults()
    settle_exact(es, expected, index="logs-kcat-*", procs=[col])
    wait_until(lambda: col.metric("sluice_collector_kafka_paused") == 0, 30, 0.1,
               "partitions resumed")
    assert col.term() == 0


def test_kafka_and_lumberjack_inputs_together(mock, es, stack):
    """One collector, both input types: both feed the same spool."""
    import lumberjack
    col = stack.collector(es, mock, lumberjack=True)
    values, expected, _ = kcat_values(500, tag="both",
                                      malformed_every=10**9)
    mock.produce(TOPIC, values)
    evs = [{"message": "lj %d" % i, "event": {"dataset": "kcat"}}
           for i in range(300)]
    with lumberjack.LumberjackClient(port=col.lj_port) as s:
        assert s.send(evs) == len(evs)
    expected |= {"lj %d" % i for i in range(300)}
    settle_exact(es, expected, index="logs-kcat-*", procs=[col])
    assert col.term() == 0


def test_sigterm_commits_so_the_group_does_not_read_again(mock, es, stack):
    values, expected, _ = kcat_values(1000, tag="term",
                                      malformed_every=10**9)
    mock.produce(TOPIC, values)
    col = stack.collector(es, mock)
    settle_exact(es, expected, index="logs-kcat-*", procs=[col])
    assert col.term() == 0
    # A new member of the same group (empty spool) starts at the commit.
    nxt = stack.collector(es, mock, name="next")
    wait_until(lambda: nxt.metric("sluice_collector_kafka_partitions") == PARTITIONS,
               60, 0.2, "partitions assigned to the next collector")
    # Nothing comes (a fixed wait: this shows that something does NOT
    # happen; the fetch after an assignment takes a few ms here).
    time.sleep(2.0)
    assert nxt.metric("sluice_collector_kafka_messages_total") == 0
    assert nxt.term() == 0
