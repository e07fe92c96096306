"""sluice-kafka-mock against kcat, a Kafka client we did not write."""

import json
import subprocess

import pytest

import harness
import kafka
from kafka import KafkaMock

pytestmark = pytest.mark.skipif(not kafka.available(),
                                reason="built without kafka, or no kcat")


def test_kcat_produces_and_consumes_both_ways(tmp_path):
    with KafkaMock(brokers=3, topics={"logs": 4},
                   log_path=str(tmp_path / "mock.log")) as k:
        assert len(k.brokers) == 3
        assert all(b.startswith("127.0.0.1:") for b in k.brokers)
        vals = [json.dumps({"n": i, "message": "line %d" % i}).encode()
                for i in range(500)]
        # Idempotent, compressed, acks=all: what the agent will ask for.
        k.produce("logs", vals, extra=["-X", "enable.idempotence=true",
                                       "-X", "acks=all", "-z", "zstd"])
        got = k.consume("logs")
        assert sorted(json.loads(m["value"])["n"] for m in got) == \
            list(range(500))
        # Every partition got some (no key: partitioner spreads them)
        # and offsets are dense per partition.
        parts = {}
        for m in got:
            parts.setdefault(m["partition"], []).append(m["offset"])
        for offs in parts.values():
            assert sorted(offs) == list(range(len(offs)))


def test_keys_and_headers_round_trip(tmp_path):
    with KafkaMock(topics={"t": 2}) as k:
        k.produce("t", [b"a", b"b"], key="host-1",
                  extra=["-H", "event.id=abc"])
        got = k.consume("t")
        assert [m["value"] for m in got] == [b"a", b"b"]
        assert {m["key"] for m in got} == {b"host-1"}
        assert got[0]["headers"] == {"event.id": "abc"}
        # Same key, same partition.
        assert len({m["partition"] for m in got}) == 1


def test_consumer_group(tmp_path):
    with KafkaMock(brokers=2, topics={"g": 3}) as k:
        k.produce("g", [b"%d" % i for i in range(30)])
        out = subprocess.run(
            [kafka.KCAT, "-b", k.bootstrap, "-G", "grp", "-o", "beginning",
             "-q", "-e", "-f", "%s\n", "g"],
            check=True, timeout=60, stdout=subprocess.PIPE).stdout
        assert sorted(int(x) for x in out.split()) == list(range(30))


def test_down_and_up(tmp_path):
    with KafkaMock(topics={"d": 1}) as k:
        k.down()
        r = subprocess.run([kafka.KCAT, "-L", "-b", k.bootstrap, "-m", "1"],
                           timeout=30, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        assert r.returncode != 0
        k.up()
        k.produce("d", [b"x"])
        assert [m["value"] for m in k.consume("d")] == [b"x"]
        # The same through signals.
        k.signal_down()
        harness.wait_until(lambda: not k.reachable(), what="down")
        k.signal_up()
        harness.wait_until(k.reachable, what="up")
        k.produce("d", [b"y"])
        assert [m["value"] for m in k.consume("d")] == [b"x", b"y"]


def test_commands_answer_errors(tmp_path):
    with KafkaMock() as k:
        with pytest.raises(RuntimeError):
            k.command("bogus")
        with pytest.raises(RuntimeError):
            k.command("error x")
        k.create_topic("late", 2)
        k.error(kafka.API_PRODUCE, kafka.ERR_TOPIC_AUTHORIZATION_FAILED)
        r = subprocess.run([kafka.KCAT, "-P", "-b", k.bootstrap, "-t", "late"],
                           input=b"denied\n", timeout=30,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert b"uthoriz" in r.stderr
        k.produce("late", [b"ok"])
        assert [m["value"] for m in k.consume("late")] == [b"ok"]
