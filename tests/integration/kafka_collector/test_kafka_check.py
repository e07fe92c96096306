"""--check of Kafka inputs: librdkafka properties are validated (unknown
or bad ones refused with file:line: key: reason), sluice's own are not
overridable, topics must be names or valid ^regexes, and keys of the
other input type are refused. No broker is needed."""

import json
import subprocess

import pytest

from harness import COLLECTOR


def check(tmp_path, inputs):
    cfg = {"data_dir": str(tmp_path / "data"), "inputs": inputs,
           "elasticsearch": {"hosts": ["http://127.0.0.1:9"]}}
    # One key per line, so that the reported line numbers point somewhere.
    p = tmp_path / "c.yml"
    p.write_text(json.dumps(cfg, indent=1))
    r = subprocess.run([COLLECTOR, "-c", str(p), "--check"],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).strip(), p.read_text()


def kin(**kw):
    d = {"type": "kafka", "brokers": ["127.0.0.1:9092"], "topics": ["logs"]}
    d.update(kw)
    return d


def line_of(text, needle):
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            return i
    raise AssertionError(needle)


def test_good_kafka_config_passes(tmp_path):
    rc, out, _ = check(tmp_path, [
        kin(topics=["logs", "^logs-.*"], group_id="g",
            properties={"fetch.wait.max.ms": 100,
                        "security.protocol": "plaintext",
                        "partition.assignment.strategy":
                            "cooperative-sticky"}),
        {"type": "lumberjack", "listen": "127.0.0.1:0"}])
    assert rc == 0, out


@pytest.mark.parametrize("props,key,reason", [
    ({"no.such.property": "1"}, "no.such.property",
     "unknown librdkafka property"),
    ({"fetch.wait.max.ms": "soon"}, "fetch.wait.max.ms", "Invalid value"),
    ({"enable.auto.offset.store": "true"}, "enable.auto.offset.store",
     "set by sluice"),
    ({"group.id": "x"}, "group.id", "set by sluice"),
])
def test_bad_properties_refused(tmp_path, props, key, reason):
    rc, out, text = check(tmp_path, [kin(properties=props)])
    assert rc == 2, out
    assert ":%d: inputs[0].properties.%s: " % (line_of(text, '"%s"' % key),
                                               key) in out, out
    assert reason in out, out


def test_bad_topics_refused(tmp_path):
    rc, out, text = check(tmp_path, [kin(topics=["^logs-(("])])
    assert rc == 2 and "inputs[0].topics: '^logs-((' is not a valid regex" \
        in out, out
    rc, out, _ = check(tmp_path, [kin(topics=["has space"])])
    assert rc == 2 and "is not a topic name" in out, out
    rc, out, _ = check(tmp_path, [kin(topics=[])])
    assert rc == 2, out


def test_keys_of_the_other_type_refused(tmp_path):
    rc, out, text = check(tmp_path, [kin(listen="0.0.0.0:5044")])
    assert rc == 2, out
    assert "inputs[0].listen: not a key of type kafka inputs" in out, out
    rc, out, _ = check(tmp_path, [{"type": "lumberjack",
                                   "brokers": ["127.0.0.1:9092"]}])
    assert rc == 2, out
    assert "inputs[0].brokers: not a key of type lumberjack inputs" in out


def test_brokers_required(tmp_path):
    d = kin()
    del d["brokers"]
    rc, out, _ = check(tmp_path, [d])
    assert rc == 2 and "inputs[0].brokers: need one or more" in out, out
