"""SIGTERM of agent and collector while lines are being appended, then a
restart of both: exit code 0, nothing lost, nothing duplicated."""

import os
import signal
import time

import pytest

from conftest import Writer, es_count, free_port, settle_exact, wait_until


def test_sigterm_agent_then_collector_restart(es, stack):
    """Orderly stop (agent first, then collector) mid-stream: both exit 0;
    the agent had every shipped line acked and saved, so after the restart
    it sends nothing twice: the collector received exactly one event per
    line over all its runs. (The collector itself may index a few events
    twice after its restart -- ES answers 409 -- because records it had
    only partly indexed stay in its spool; ES absorbs those.)"""
    port = free_port()
    lines = 30_000
    col, a, w = stack.shipping(es, "host-s", lines, rate=5000, chunk=100,
                               lj_port=port)
    t0 = time.monotonic()
    received = 0
    for k in range(2):
        wait_until(lambda: es_count(es) >= (2 * k + 1) * lines // 6, 60,
                   0.02, "docs before the stop")
        t = time.monotonic()
        assert a.term() == 0
        t_agent = time.monotonic() - t
        received += col.metric("sluice_collector_input_events_total")
        assert col.term() == 0
        at_stop = w.written
        # Lines keep coming while nothing runs.
        wait_until(lambda: w.written >= min(at_stop + 1000, lines), 30,
                   0.01, "writer progress")
        col.start()
        assert col.lj_port == port
        a.start()
        print("stop %d: agent drained in %.2fs; %d lines written, %d in "
              "ES" % (k + 1, t_agent, at_stop, es_count(es)))
    w.join_ok()
    docs = settle_exact(es, w.messages(), timeout=90, procs=[col, a])
    st = es.stats()["items_by_status"]
    print("sigterm x2 (agent, collector): %d docs exact in %.1fs; ES items "
          "%s" % (len(docs), time.monotonic() - t0, st))
    assert a.term() == 0
    received += col.metric("sluice_collector_input_events_total")
    assert received == lines, "collector received %d events for %d lines" \
        % (received, lines)
    assert col.term() == 0
    assert a.exit_codes == [0, 0, 0] and col.exit_codes == [0, 0, 0]


def test_sigterm_both_at_once_restart(es, stack):
    """SIGTERM to two agents and the collector at the same moment while
    they ship: all exit 0 (the agents give up waiting for acks the
    collector can no longer send after shutdown_timeout, which is a clean
    exit); after the restart every line is in ES exactly once."""
    port = free_port()
    col = stack.collector(es, lj_port=port)
    agents = [stack.agent(col, "host-%d" % k,
                          overrides={"shutdown_timeout": "5s"})
              for k in range(2)]
    lines = 15_000
    writers = [Writer(os.path.join(a.logdir, "app.log"), a.name, lines,
                      rate=3000, chunk=100) for a in agents]
    for w in writers:
        w.start()
    t0 = time.monotonic()
    wait_until(lambda: es_count(es) >= lines // 2, 60, 0.02,
               "docs before the stop")
    for p in [col] + agents:
        p.proc.send_signal(signal.SIGTERM)
    t = time.monotonic()
    rcs = {p.name: p.proc.wait(40) for p in [col] + agents}
    took = time.monotonic() - t
    for p in [col] + agents:
        p._closed(rcs[p.name])
    assert rcs == {p.name: 0 for p in [col] + agents}, rcs
    col.start()
    assert col.lj_port == port
    for a in agents:
        a.start()
    expected = set()
    for w in writers:
        w.join_ok()
        expected |= w.messages()
    docs = settle_exact(es, expected, timeout=90, procs=[col] + agents)
    print("sigterm all at once (stopped in %.1fs): %d docs exact in %.1fs; "
          "ES items %s" % (took, len(docs), time.monotonic() - t0,
                           es.stats()["items_by_status"]))
    for a in agents:
        assert a.term() == 0
    assert col.term() == 0


@pytest.mark.slow
def test_sigterm_cycles_big(es, stack):
    """Ten orderly stop/start cycles of both over 200,000 lines."""
    port = free_port()
    lines = 200_000
    col, a, w = stack.shipping(es, "host-s", lines, rate=10000, chunk=200,
                               lj_port=port)
    received = 0
    for k in range(10):
        wait_until(lambda: es_count(es) >= (k + 1) * lines // 12, 120,
                   0.02, "docs before the stop")
        assert a.term() == 0
        received += col.metric("sluice_collector_input_events_total")
        assert col.term() == 0
        col.start()
        a.start()
    w.join_ok()
    settle_exact(es, w.messages(), timeout=180, procs=[col, a])
    print("ES items %s" % es.stats()["items_by_status"])
    assert a.term() == 0
    received += col.metric("sluice_collector_input_events_total")
    assert received == lines, (received, lines)
    assert col.term() == 0
