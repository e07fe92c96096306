"""Fixtures for the agent's Kafka output tests: the real sluice-agent
producing into sluice-kafka-mock (tools/kafka_mock.c), read back with kcat
(tests/lib/kafka.py). Skipped when the build has no librdkafka or kcat is
missing."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

import kafka  # noqa: E402
from harness import AgentProc, agent_config  # noqa: E402
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401


def pytest_collection_modifyitems(config, items):
    if not kafka.available():
        skip = pytest.mark.skip(reason="built without kafka, or no kcat")
        for it in items:
            it.add_marker(skip)


@pytest.fixture
def mock(tmp_path):
    m = kafka.KafkaMock(brokers=2, topics={"logs-app": 4},
                        log_path=str(tmp_path / "mock.log"))
    yield m
    m.stop()


@pytest.fixture
def agent(tmp_path, mock):
    """make(output=..., **top-level overrides) -> started AgentProc;
    without output: kafka into the mock, topic logs-<dataset>."""
    started = []

    def make(output=None, start=True, **over):
        cfg = agent_config(str(tmp_path / "data"),
                           [str(tmp_path / "in" / "*.log")],
                           output or {"type": "kafka",
                                      "brokers": mock.brokers,
                                      "topic": "logs-%{event.dataset}"})
        cfg.update(over)
        a = AgentProc(str(tmp_path), "agent", cfg)
        started.append(a)
        if start:
            a.start()
        return a
    os.makedirs(str(tmp_path / "in"), exist_ok=True)
    yield make
    for a in started:
        a.cleanup()
