"""Agent output `type: kafka` against sluice-kafka-mock, checked with kcat:
counts, event.id once each, headers, key, topic template, broker outage,
dead letters, --check."""

import json
import os
import subprocess
import time

from harness import AGENT, wait_until
import kafka


def write_lines(path, start, n, pad=0):
    with open(path, "a") as f:
        for i in range(start, start + n):
            f.write(json.dumps({"msg": "line %d%s" % (i, "x" * pad), "n": i,
                                "trace_id": "%032x" % (0xabc0000 + i)},
                               separators=(",", ":")) + "\n")


def kafka_output(mock, topic="logs-%{event.dataset:generic}", **kw):
    out = {"type": "kafka", "brokers": mock.brokers, "topic": topic}
    out.update(kw)
    return out


def consume_ids(mock, topic, count):
    """kcat -C until `count` messages; -> (event.id list, messages)."""
    msgs = mock.consume(topic, count=count, timeout=60)
    return [m["headers"].get("event.id") for m in msgs], msgs


def test_events_arrive_once_with_headers_and_key(tmp_path, mock, agent):
    src = str(tmp_path / "in" / "a.log")
    write_lines(src, 0, 3000)
    a = agent(kafka_output(mock, key="trace.id",
                           properties={"linger.ms": 10}))
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 3000,
               60, what="3000 events acked")
    ids, msgs = consume_ids(mock, "logs-app", 3000)
    assert len(msgs) == 3000
    assert len(set(ids)) == 3000 and None not in ids
    ns = set()
    for m in msgs:
        ev = json.loads(m["value"])
        # Same ECS JSON as over Lumberjack; header matches the body.
        assert ev["event"]["id"] == m["headers"]["event.id"]
        assert m["headers"]["sluice.agent.version"] == ev["agent"]["version"]
        assert m["key"].decode() == ev["trace"]["id"]
        ns.add(ev["app"]["n"])
    assert ns == set(range(3000))
    # Keyed: one trace id, one partition; all four partitions used.
    assert len({m["partition"] for m in msgs}) == 4
    assert a.metric("sluice_agent_kafka_messages_delivered_total") == 3000
    assert a.metric("sluice_agent_kafka_dead_letters_total") == 0
    assert a.term() == 0
    # The registry covers the whole file: a restart sends nothing again.
    a.start()
    time.sleep(1.0)
    assert a.metric("sluice_agent_events_acked_total") == 0
    assert a.term() == 0
    assert len(mock.consume("logs-app")) == 3000


def test_topic_template_default_and_static_topic(tmp_path, mock, agent):
    cfg_in = {"paths": [str(tmp_path / "in" / "*.log")], "parser": "json",
              "dataset": "web"}
    a = agent(kafka_output(mock, topic="t-%{labels.team:none}-%{event.dataset}",
                           key="none"),
              start=False)
    a.config["inputs"][0].update(cfg_in)
    a.start()
    write_lines(str(tmp_path / "in" / "b.log"), 0, 50)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 50,
               30, what="50 acked")
    msgs = mock.consume("t-none-web")
    assert len(msgs) == 50
    assert all(m["key"] == b"" for m in msgs)
    a.term()


def test_broker_outage_loses_nothing(tmp_path, mock, agent):
    """All brokers down for ~12 s while the agent keeps reading: the
    agent's queue fills, reading pauses, nothing is lost; the idempotent
    producer keeps each event.id once."""
    src = str(tmp_path / "in" / "c.log")
    # A small librdkafka queue: produce() reports it full during the
    # outage, so the stalled-batch path runs too.
    a = agent(kafka_output(mock, properties={
        "linger.ms": 5, "queue.buffering.max.messages": 500}),
        queue={"max_bytes": "1MiB"})
    write_lines(src, 0, 2000, pad=200)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 2000,
               60, what="first 2000 acked")
    mock.down()
    write_lines(src, 2000, 8000, pad=200)   # ~3.5 MB: more than the queue
    wait_until(lambda: a.metric("sluice_agent_queue_bytes") > 0, 30,
               what="queue holds data")
    time.sleep(12)
    acked_down = a.metric("sluice_agent_events_acked_total")
    assert acked_down < 10000
    assert a.metric("sluice_agent_kafka_dead_letters_total") == 0
    assert a.metric("sluice_agent_kafka_queue_full_total") > 0
    mock.up()
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 10000,
               90, what="all 10000 acked after the outage")
    # Everything in the topic (to its end, not just 10000): exactly once.
    msgs = mock.consume("logs-app")
    ids = [m["headers"]["event.id"] for m in msgs]
    ns = sorted(json.loads(m["value"])["app"]["n"] for m in msgs)
    assert ns == list(range(10000))
    assert len(ids) == len(set(ids)) == 10000
    assert not os.path.exists(str(tmp_path / "data" /
                                  "kafka-dead-letter.ndjson"))
    assert a.term() == 0


def test_message_too_large_goes_to_dead_letter(tmp_path, mock, agent):
    src = str(tmp_path / "in" / "d.log")
    dlq = str(tmp_path / "dead.ndjson")
    a = agent(kafka_output(mock, dead_letter_path=dlq,
                           properties={"message.max.bytes": 2000}))
    write_lines(src, 0, 5)
    write_lines(src, 5, 1, pad=5000)        # over message.max.bytes
    write_lines(src, 6, 5)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 11,
               30, what="11 acked (10 delivered + 1 dead letter)")
    assert a.metric("sluice_agent_kafka_dead_letters_total") == 1
    assert a.metric("sluice_agent_kafka_messages_delivered_total") == 10
    with open(dlq) as f:
        dead = [json.loads(x) for x in f]
    assert len(dead) == 1
    assert dead[0]["error"]["code"] == "MSG_SIZE_TOO_LARGE"
    assert dead[0]["kafka"]["topic"] == "logs-app"
    assert dead[0]["event"]["app"]["n"] == 5
    got = sorted(json.loads(m["value"])["app"]["n"]
                 for m in mock.consume("logs-app"))
    assert got == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    # A batch of nothing but refused events is acked too (no delivery
    # report will ever come for it).
    write_lines(src, 11, 1, pad=5000)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 12,
               30, what="lone dead letter acked")
    assert a.metric("sluice_agent_kafka_dead_letters_total") == 2
    assert a.term() == 0


def test_broker_refusal_goes_to_dead_letter(tmp_path, mock, agent):
    """A permanent error in the delivery report (topic authorization
    failed, injected in the mock's next Produce responses)."""
    src = str(tmp_path / "in" / "e.log")
    a = agent(kafka_output(mock))
    write_lines(src, 0, 10)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 10,
               30, what="10 acked")
    mock.error(kafka.API_PRODUCE, kafka.ERR_TOPIC_AUTHORIZATION_FAILED, 1)
    write_lines(src, 10, 10)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 20,
               30, what="20 acked")
    dead = a.metric("sluice_agent_kafka_dead_letters_total")
    delivered = a.metric("sluice_agent_kafka_messages_delivered_total")
    assert dead >= 1 and dead + delivered == 20
    with open(str(tmp_path / "data" / "kafka-dead-letter.ndjson")) as f:
        lines = [json.loads(x) for x in f]
    assert len(lines) == dead
    assert {d["error"]["code"] for d in lines} == \
        {"TOPIC_AUTHORIZATION_FAILED"}
    assert a.term() == 0


# ---- --check ---------------------------------------------------------------

def check(tmp_path, output_yaml):
    p = tmp_path / "c.yml"
    p.write_text("data_dir: %s\n"
                 "inputs:\n"
                 "  - paths: [/tmp/none.log]\n"
                 "output:\n"
                 "  type: kafka\n"
                 "  brokers: [\"127.0.0.1:9092\"]\n" % (tmp_path / "d")
                 + output_yaml)
    r = subprocess.run([AGENT, "--check", "-c", str(p)], timeout=30,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return str(p), r.returncode, (r.stdout + r.stderr).decode()


def test_check_accepts_a_full_config(tmp_path):
    _, rc, out = check(tmp_path,
                       "  topic: \"logs-%{event.dataset:generic}\"\n"
                       "  key: host.name\n"
                       "  compression: zstd\n"
                       "  acks: all\n"
                       "  properties: {linger.ms: 20, batch.size: \"65536\","
                       " socket.keepalive.enable: true}\n"
                       "  sasl: {mechanism: SCRAM-SHA-512, username: u,"
                       " password: p}\n")
    assert rc == 0, out


def test_check_refuses_unknown_property_with_file_and_line(tmp_path):
    p, rc, out = check(tmp_path,
                       "  topic: logs\n"
                       "  properties:\n"
                       "    linger.ms: 20\n"
                       "    no.such.property: 1\n")
    assert rc != 0
    assert "%s:10: output.properties.no.such.property:" % p in out, out
    assert "No such configuration property" in out, out


def test_check_refuses_bad_property_value(tmp_path):
    p, rc, out = check(tmp_path,
                       "  topic: logs\n"
                       "  properties: {linger.ms: lots}\n")
    assert rc != 0
    assert "%s:8: output.properties.linger.ms:" % p in out, out


def test_check_refuses_owned_property_and_bad_topic(tmp_path):
    p, rc, out = check(tmp_path,
                       "  topic: logs\n"
                       "  properties: {bootstrap.servers: \"x:1\"}\n")
    assert rc != 0 and "set by sluice" in out, out
    p, rc, out = check(tmp_path, "  topic: \"logs/%{event.dataset\"\n")
    assert rc != 0 and "%s:7: output.topic:" % p in out, out
    p, rc, out = check(tmp_path, "  key: event.id\n")
    assert rc != 0 and "output.topic" in out, out


def test_check_sasl_needs_credentials_and_tls_maps(tmp_path):
    p, rc, out = check(tmp_path,
                       "  topic: logs\n"
                       "  sasl: {mechanism: PLAIN, username: u}\n")
    assert rc != 0 and "%s:8: output.sasl:" % p in out, out
    p, rc, out = check(tmp_path,
                       "  topic: logs\n"
                       "  sasl: {mechanism: GSSAPI2, username: u, "
                       "password: p}\n")
    assert rc != 0 and "mechanism" in out, out
    # TLS files go to ssl.*.location; librdkafka checks they exist.
    p, rc, out = check(tmp_path,
                       "  topic: logs\n"
                       "  ssl: {enabled: true, ca: /nonexistent/ca.pem}\n")
    assert rc != 0 and "output.ssl.ca" in out, out


def test_fatal_producer_error_restarts_without_loss(tmp_path, mock, agent):
    """The broker answers a Produce with OUT_OF_ORDER_SEQUENCE_NUMBER: the
    idempotent producer's state is lost (fatal). The output starts a new
    producer and sends the unacked batches again; every event arrives,
    possibly twice (the collector dedupes by event.id)."""
    src = str(tmp_path / "in" / "f.log")
    a = agent(kafka_output(mock))
    write_lines(src, 0, 100)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 100,
               30, what="100 acked")
    mock.error(kafka.API_PRODUCE, 45, 1)
    write_lines(src, 100, 100)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") >= 200
               and a.metric("sluice_agent_queue_bytes") == 0,
               30, what="200 acked")
    assert a.metric("sluice_agent_kafka_producer_restarts_total") >= 1, \
        a.log_tail()
    ns = {json.loads(m["value"])["app"]["n"]
          for m in mock.consume("logs-app")}
    assert ns == set(range(200))
    assert a.term() == 0


def test_check_example_config():
    import harness
    path = os.path.join(harness.SOURCE, "deploy", "config",
                        "agent-kafka.yml")
    r = subprocess.run([AGENT, "--check", "-c", path], timeout=30,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()


def test_shutdown_with_brokers_down_resends_on_next_start(tmp_path, mock,
                                                          agent):
    """SIGTERM while the brokers are down: the drain times out, the close
    purges what librdkafka still holds, the registry stays behind the
    undelivered events, and the next start delivers them."""
    src = str(tmp_path / "in" / "g.log")
    a = agent(kafka_output(mock), shutdown_timeout="2s")
    write_lines(src, 0, 100)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 100,
               30, what="100 acked")
    mock.down()
    write_lines(src, 100, 300)
    wait_until(lambda: a.metric("sluice_agent_events_sent_total") >= 400,
               30, what="300 more handed to the output")
    t0 = time.monotonic()
    a.term(timeout=30)
    assert time.monotonic() - t0 < 15
    mock.up()
    a.start()
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 300,
               60, what="the 300 undelivered ones acked after restart")
    ns = [json.loads(m["value"])["app"]["n"]
          for m in mock.consume("logs-app")]
    assert set(ns) == set(range(400))
    # At least once: nothing was delivered while down, so no duplicates.
    assert len(ns) == 400
    assert a.term() == 0


def test_finite_message_timeout_produces_again(tmp_path, mock, agent):
    """With a finite message.timeout.ms (a property), messages that time
    out while the brokers are down are produced again, not lost."""
    src = str(tmp_path / "in" / "h.log")
    a = agent(kafka_output(mock, properties={"message.timeout.ms": 1000}))
    write_lines(src, 0, 20)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 20,
               30, what="20 acked")
    mock.down()
    write_lines(src, 20, 50)
    wait_until(lambda: a.metric("sluice_agent_kafka_messages_retried_total") > 0,
               30, what="a timed-out message produced again")
    mock.up()
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 70,
               60, what="70 acked")
    ns = {json.loads(m["value"])["app"]["n"]
          for m in mock.consume("logs-app")}
    assert ns == set(range(70))
    assert a.metric("sluice_agent_kafka_dead_letters_total") == 0
    assert a.term() == 0
