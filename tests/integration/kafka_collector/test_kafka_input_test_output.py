"""`sluice-collector test output` with a Kafka input: brokers and named
topics through the consumer's own librdkafka settings."""

import json
import subprocess

from harness import COLLECTOR, collector_config
from kafka_stack import TOPIC, kafka_input


def run_test(tmp_path, cfg):
    p = tmp_path / "c.yml"
    p.write_text(json.dumps(cfg))
    return subprocess.run([COLLECTOR, "-c", str(p), "test", "output"],
                          capture_output=True, text=True, timeout=60)


def test_kafka_input_test_output(tmp_path, es, mock):
    cfg = collector_config(str(tmp_path / "data"), es.url)
    cfg["inputs"] = [kafka_input(mock)]
    r = run_test(tmp_path, cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kafka input 0..." in r.stdout
    assert "talk to brokers... OK" in r.stdout
    assert "topic %s... OK" % TOPIC in r.stdout, r.stdout
    cfg["inputs"][0]["topics"] = [TOPIC, "^other-.*", "missing"]
    r = run_test(tmp_path, cfg)
    assert r.returncode == 1, r.stdout
    assert "a pattern" in r.stdout
    assert "topic... ERROR missing: not on the brokers" in r.stdout, r.stdout
