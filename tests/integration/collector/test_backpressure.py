"""Elasticsearch down: the spool absorbs and acks continue until
spool.max_bytes; then intake stops (acks stall, /ready 503,
sluice_collector_input_paused 1). ES back: everything drains, every event once."""

import time

import pytest

from conftest import (ResilientSender, assert_exact, event_id, make_events,
                      wait_until)

MAX_BYTES = 2 * 1024 * 1024
DOWN = {
    "503": {"fail_status": 503, "fail_count": 10 ** 9, "fail_path": ""},
    "drop": {"drop_count": 10 ** 9, "drop_path": ""},
}


def run_es_down(es, make_collector, mode, down_s, n):
    c = make_collector(es, {"spool": {"max_bytes": MAX_BYTES,
                                      "segment_bytes": 512 * 1024}})
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    es.set_faults(**DOWN[mode])
    t_down = time.monotonic()
    s = ResilientSender(c.lj_port, make_events("p", n), window=500,
                        deadline_s=down_s + 120, ack_timeout=60)
    s.start()

    wait_until(lambda: c.metric("sluice_collector_input_paused") == 1, down_s,
               what="intake paused")
    m = c.metrics()
    acked_at_pause = s.acked
    # Acks went on while ES was down, up to the spool limit ...
    assert es.stats()["docs_total"] == 0  # /_double/ is never faulted
    assert acked_at_pause * 200 >= MAX_BYTES // 2, acked_at_pause
    assert acked_at_pause < n
    assert m["sluice_collector_spool_bytes"] >= MAX_BYTES * 0.9, m["sluice_collector_spool_bytes"]
    # ... and not much beyond it (one window of slack per connection).
    assert m["sluice_collector_spool_bytes"] <= MAX_BYTES + 512 * 1024
    assert c.ready() == 503
    # Intake stays stopped: no ack moves for a while (proving that
    # nothing happens needs a period; it is bounded by the outage).
    stall_until = min(time.monotonic() + 2.0, t_down + down_s - 0.5)
    while time.monotonic() < stall_until:
        assert s.acked == acked_at_pause
        assert c.metric("sluice_collector_input_paused") == 1
        time.sleep(0.2)
    assert s.is_alive()
    # Hold the outage for its full length, watching that it stays paused.
    while time.monotonic() < t_down + down_s:
        assert s.acked == acked_at_pause
        time.sleep(0.2)

    es.clear_faults()
    s.join_ok(120)
    assert s.reconnects == 0
    assert_exact(es, [event_id("p", i) for i in range(n)], timeout=60)
    wait_until(lambda: c.metric("sluice_collector_input_paused") == 0, 20,
               what="intake resumed")
    wait_until(lambda: c.ready() == 200, 20, what="ready again")
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 20,
               what="spool drained")
    assert c.find_logs(lambda e: "intake paused" in e.get("message", ""))
    assert c.term() == 0


@pytest.mark.parametrize("mode", ["503", "drop"])
def test_es_down_10s_spool_absorbs_then_pauses(es, make_collector, mode):
    run_es_down(es, make_collector, mode, 10.0, 30000)


@pytest.mark.slow
def test_es_down_30s_spool_absorbs_then_pauses(es, make_collector):
    run_es_down(es, make_collector, "503", 30.0, 60000)
