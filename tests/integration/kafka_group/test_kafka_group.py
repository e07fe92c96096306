"""Several collectors in one consumer group: a real sluice-agent produces
into sluice-kafka-mock, two real collectors share the partitions and
index into the ES double; and the lifecycle of a consumer: SIGHUP
reload, SIGTERM with the broker gone. Every check counts: each event
exactly once in ES (distinct _id == N, none missing), also across a
kill -9."""

import os
import signal
import time

import pytest

from kafka_stack import (PARTITIONS, TOPIC, es_count, kafka_lines,
                         kcat_values, settle_exact, wait_until)


def two_collectors(stack, es, mock):
    a = stack.collector(es, mock, name="col-a")
    b = stack.collector(es, mock, name="col-b")
    # Both members hold partitions before anything is produced, so the
    # load is shared (range assignor: 4 + 4).
    wait_until(lambda: a.metric("sluice_collector_kafka_partitions") > 0 and
               b.metric("sluice_collector_kafka_partitions") > 0 and
               a.metric("sluice_collector_kafka_partitions") +
               b.metric("sluice_collector_kafka_partitions") == PARTITIONS,
               60, 0.2, "both collectors to hold partitions")
    return a, b


def test_agent_to_two_collectors_exactly_once(mock, es, stack):
    n = 10000
    a, b = two_collectors(stack, es, mock)
    agent = stack.agent(mock)
    expected = set()
    for start in range(0, n, 2500):
        expected |= kafka_lines(os.path.join(agent.logdir, "app.log"),
                                "ev", start, 2500)
    settle_exact(es, expected, index="logs-kafka-*", procs=[a, b, agent])
    # Both did part of the work.
    assert a.metric("sluice_collector_kafka_messages_total") > 0
    assert b.metric("sluice_collector_kafka_messages_total") > 0
    assert (a.metric("sluice_collector_kafka_messages_total") +
            b.metric("sluice_collector_kafka_messages_total")) >= n
    assert agent.term() == 0
    assert a.term() == 0
    assert b.term() == 0


def test_kill9_collector_mid_run_exactly_once(mock, es, stack):
    n = 15000
    a, b = two_collectors(stack, es, mock)
    agent = stack.agent(mock)
    log = os.path.join(agent.logdir, "app.log")
    expected = kafka_lines(log, "k9", 0, n // 3)
    wait_until(lambda: a.metric("sluice_collector_kafka_messages_total") > 500,
               60, 0.1, "collector a to consume")
    a.kill9()
    expected |= kafka_lines(log, "k9", n // 3, n // 3)
    # Its partitions move to b (after the session timeout).
    wait_until(lambda: b.metric("sluice_collector_kafka_partitions") == PARTITIONS,
               60, 0.2, "b to take over every partition")
    expected |= kafka_lines(log, "k9", 2 * (n // 3), n - 2 * (n // 3))
    # a comes back with its spool (what it had made durable and committed
    # is only there) and the group shares again.
    a.start()
    settle_exact(es, expected, index="logs-kafka-*", procs=[a, b, agent])
    assert agent.term() == 0
    assert a.term() == 0
    assert b.term() == 0


@pytest.mark.slow
def test_agent_two_collectors_kill9_200k(mock, es, stack):
    """The issue's full figure: 200,000 events, agent -> Kafka -> two
    collectors in one group, one killed with -9 mid-run and restarted."""
    n = 200000
    chunk = 20000
    a, b = two_collectors(stack, es, mock)
    agent = stack.agent(mock)
    log = os.path.join(agent.logdir, "app.log")
    expected = set()
    for start in range(0, n, chunk):
        expected |= kafka_lines(log, "big", start, chunk)
        # The mock keeps ~5 MB per partition: stay close behind.
        wait_until(lambda: es_count(es) >= len(expected) - chunk, 300, 0.2,
                   "ES to keep up")
        if start == n // 2:
            a.kill9()
            wait_until(lambda: b.metric("sluice_collector_kafka_partitions") ==
                       PARTITIONS, 60, 0.2, "b to take over")
            a.start()
    settle_exact(es, expected, index="logs-kafka-*", timeout=600,
                 procs=[a, b, agent])
    assert agent.term() == 0
    assert a.term() == 0
    assert b.term() == 0


def test_sigterm_with_the_broker_gone_is_bounded(mock, es, stack):
    values, expected, _ = kcat_values(500, tag="gone",
                                      malformed_every=10**9)
    mock.produce(TOPIC, values)
    col = stack.collector(es, mock, overrides={"shutdown_timeout": "3s"})
    settle_exact(es, expected, index="logs-kcat-*", procs=[col])
    mock.stop()
    t0 = time.monotonic()
    assert col.term(timeout=30) == 0
    assert time.monotonic() - t0 < 15


def test_sighup_reload_keeps_consuming_exactly_once(mock, es, stack):
    """SIGHUP drains (the consumer leaves the group, committing) and runs
    again from the new config: nothing lost, nothing indexed twice."""
    first, expected, _ = kcat_values(1000, tag="hup",
                                     malformed_every=10**9)
    mock.produce(TOPIC, first[:500])
    col = stack.collector(es, mock)
    wait_until(lambda: es_count(es) >= 1, 60, 0.1, "first docs")
    col.config["inputs"][0]["commit_interval"] = "300ms"
    col.write_config()
    col.signal(signal.SIGHUP)
    col.wait_log(lambda e: e.get("message") == "stopped for reload", 30,
                 "reload")
    wait_until(lambda: len(col.find_logs(
        lambda e: e.get("message") == "started")) == 2, 30, 0.1,
        "second start")
    mock.produce(TOPIC, first[500:])
    settle_exact(es, expected, index="logs-kcat-*", procs=[col])
    assert col.running()
