"""Keep-alive acks (A with a lower sequence) extend the ack timeout; without
them the agent gives up on the connection and resends.

Uses the shared peer tests/lib/lumberjack.py in 'hold' mode: windows are
received but their acks withheld until release_acks(), while A(0)
keep-alives go out every `keepalive` seconds.
"""

import os

from conftest import (LumberjackReceiver, agent_config, lj_output, wait_until,
                      write_lines)

TIMEOUT_S = 1.0


def run_held(workdir, agents, keepalive):
    r = LumberjackReceiver(ack_mode="hold", keepalive=keepalive,
                           store="count")
    try:
        log = os.path.join(workdir, "app.log")
        write_lines(log, 0, 2000, mode="w")
        # Room for every window at once: all 2000 events are held, so no
        # window is sent while release_acks() is still writing acks.
        out = lj_output(r, timeout="%dms" % int(TIMEOUT_S * 1000),
                        max_inflight=32)
        a = agents(workdir, agent_config(os.path.join(workdir, "data"),
                                         [log], out, batch_max_events=500))
        a.start()
        r.wait_for(2000, timeout=30)        # every window held
        # Hold the acks for three ack timeouts.
        held_from = r.counters["keepalives"]
        if keepalive:
            r.wait_until(lambda x: x.counters["keepalives"] - held_from >=
                         int(3 * TIMEOUT_S / keepalive), timeout=30,
                         what="keep-alives over 3 timeouts")
        else:
            wait_until(lambda: a.metric(
                "sluice_agent_output_timeouts_total") >= 1, 30,
                what="an ack timeout")
        timeouts = a.metric("sluice_agent_output_timeouts_total")
        r.release_acks()
        wait_until(lambda: a.metric("sluice_agent_events_acked_total") ==
                   2000, 30, what="all acked")
        received = r.count()
        assert a.stop() == 0
        return timeouts, received, r.connections
    finally:
        r.stop()


def test_keepalive_extends_timeout(workdir, agents):
    timeouts, received, conns = run_held(workdir, agents, keepalive=0.1)
    assert timeouts == 0
    assert received == 2000          # nothing was resent
    assert conns == 1


def test_no_keepalive_times_out_and_resends(workdir, agents):
    timeouts, received, conns = run_held(workdir, agents, keepalive=0)
    assert timeouts >= 1
    assert received > 2000           # the held windows came again
    assert conns >= 2
