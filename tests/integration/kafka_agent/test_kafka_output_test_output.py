"""`sluice-agent test output` with output type kafka: a metadata request to
the brokers with the output's own settings, the topic checked unless it is
a template, brokers down named as the failing step."""

import json
import subprocess

from harness import AGENT, agent_config


def run_test(tmp_path, output):
    p = tmp_path / "t.yml"
    p.write_text(json.dumps(agent_config(str(tmp_path / "data"),
                                         [str(tmp_path / "*.log")], output)))
    return subprocess.run([AGENT, "-c", str(p), "test", "output"],
                          capture_output=True, text=True, timeout=60)


def test_kafka_test_output(tmp_path, mock):
    out = {"type": "kafka", "brokers": mock.brokers, "topic": "logs-app",
           "timeout": "3s"}
    r = run_test(tmp_path, out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "talk to brokers... OK" in r.stdout
    assert "topic... OK" in r.stdout and "partitions: 4" in r.stdout
    out["topic"] = "logs-%{event.dataset}"
    r = run_test(tmp_path, out)
    assert r.returncode == 0 and "a template" in r.stdout, r.stdout
    out["topic"] = "nope"
    r = run_test(tmp_path, out)
    assert r.returncode == 0, r.stdout
    assert "topic... WARN nope does not exist yet" in r.stdout, r.stdout
    # Not created by asking: a second run still does not find it.
    r = run_test(tmp_path, out)
    assert "topic... WARN nope does not exist yet" in r.stdout, r.stdout
    mock.down()
    out["topic"] = "logs-app"
    r = run_test(tmp_path, out)
    assert r.returncode == 1, r.stdout
    assert "talk to brokers... ERROR" in r.stdout, r.stdout


def test_kafka_debug_state(agent, mock):
    a = agent()
    st = json.loads(a.http_get("/debug/state")[1])
    out = st["output"]
    assert out["type"] == "kafka" and out["topic"] == "logs-%{event.dataset}"
    assert out["targets"] == mock.brokers
    assert out["all_brokers_down"] is False and out["fatal"] is False
    assert "last_error" in out
    a.term()
