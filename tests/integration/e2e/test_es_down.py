"""Elasticsearch down for a while behind a small spool: the collector's
spool fills and its intake pauses, the agent's queue fills and it stops
reading the file; once ES is back everything arrives exactly once."""

import os
import time

import pytest

from conftest import (Writer, es_count, free_port, settle_exact,
                      wait_until)

SPOOL_MAX = 2 * 1024 * 1024
AGENT_QUEUE = 1024 * 1024


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def es_down(es, stack, fault, lines_before, lines_during, down_s,
            kill_collector=False):
    col = stack.collector(es, lj_port=free_port(), overrides={
        "spool": {"max_bytes": SPOOL_MAX, "segment_bytes": 256 * 1024}})
    a = stack.agent(col, "host-d", overrides={
        "queue": {"max_bytes": AGENT_QUEUE}})
    path = os.path.join(a.logdir, "app.log")
    w = Writer(path, "host-d", lines_before, chunk=1000)
    w.start()
    w.join_ok()
    # ES set up and indexing before the outage.
    wait_until(lambda: es_count(es) >= lines_before, 60, 0.05,
               "first %d docs" % lines_before)
    es.set_faults(**fault)

    t0 = time.monotonic()
    w2 = Writer(path, "host-d", lines_before + lines_during, chunk=2000,
                start_at=lines_before)
    w2.start()
    w2.join_ok()
    size = file_size(path)

    # The collector's spool fills up and it stops taking events.
    wait_until(lambda: col.metric("sluice_collector_input_paused") >= 1, 30, 0.05,
               "collector intake to pause")
    # The agent backs up: unacknowledged input grows, reading stops
    # short of the end of the file.
    samples = []

    def reading_stopped():
        m = a.metrics()
        samples.append((time.monotonic(), m))
        old = [s for t, s in samples if t <= samples[-1][0] - 1.0]
        if not old:
            return False
        was = old[-1]["sluice_agent_bytes_read_total"]
        return m["sluice_agent_bytes_read_total"] == was and \
            m["sluice_agent_queue_input_bytes"] > 0
    wait_until(reading_stopped, 30, 0.1, "agent to stop reading")
    m = samples[-1][1]
    paused_at = m["sluice_agent_bytes_read_total"]
    assert paused_at < size, (paused_at, size)
    assert m["sluice_agent_queue_input_bytes"] > 0
    max_spool = col.metric("sluice_collector_spool_bytes")
    # Stays that way while ES is down (a period by design: this shows
    # that nothing moves).
    while time.monotonic() - t0 < down_s:
        time.sleep(0.25)
        m = a.metrics()
        assert m["sluice_agent_bytes_read_total"] == paused_at, \
            "agent read on while the collector was full"
        cm = col.metrics()
        max_spool = max(max_spool, cm["sluice_collector_spool_bytes"])
        assert cm["sluice_collector_input_paused"] >= 1
    docs_during = es_count(es)
    assert docs_during == lines_before, (docs_during, lines_before)
    # The spool kept to its limit (one in-flight window may overshoot).
    assert max_spool <= SPOOL_MAX + 4 * 1024 * 1024, max_spool
    st = es.stats()
    faults = st["faults_fired"] + st.get("dropped", 0)
    print("ES down %.1fs (%s): agent read %d of %d bytes, queue %d B; "
          "collector spool max %d B; faults fired %s" % (
              time.monotonic() - t0, fault, paused_at, size,
              m["sluice_agent_queue_input_bytes"], max_spool, faults))
    assert faults > 0

    if kill_collector:
        # A full spool survives kill -9; the restarted collector indexes
        # it once ES is back, the agent resends what was not acked.
        col.kill9()
        col.start()
        wait_until(lambda: col.metric("sluice_collector_spool_bytes") > 0, 10, 0.05,
                   "spool reopened with data")
    es.clear_faults()
    expected = w2.messages() | {"host-d %d" % i for i in range(lines_before)}
    docs = settle_exact(es, expected, timeout=120, procs=[col, a])
    print("after ES came back: %d docs exact in %.1fs" % (
        len(docs), time.monotonic() - t0))
    assert a.term() == 0
    assert col.term() == 0


def test_es_503_small_spool(es, stack):
    """Every ES request answers 503 for ~4 s: spool (2 MiB) fills, the
    collector pauses, the agent stops reading; then exact."""
    es_down(es, stack, {"fail_status": 503, "fail_count": 10 ** 9,
                        "fail_path": ""}, 2000, 30_000, 4)


def test_es_drops_connections_small_spool(es, stack):
    """Every ES request: body read, connection closed with no reply."""
    es_down(es, stack, {"drop_count": 10 ** 9, "drop_path": ""},
            2000, 30_000, 4)


def test_es_down_collector_kill9(es, stack):
    """ES answers 503 while the spool is full, the collector is killed
    (-9) and restarted on the same port and data dir, then ES comes back:
    exact."""
    es_down(es, stack, {"fail_status": 503, "fail_count": 10 ** 9,
                        "fail_path": ""}, 2000, 20_000, 3,
            kill_collector=True)


@pytest.mark.slow
def test_es_503_long(es, stack):
    es_down(es, stack, {"fail_status": 503, "fail_count": 10 ** 9,
                        "fail_path": ""}, 5000, 200_000, 60)
