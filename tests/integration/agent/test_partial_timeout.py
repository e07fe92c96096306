"""Issue 10: a last line without newline is shipped after partial_timeout,
not only after close_inactive; a later continuation is the next event."""

import os
import time

from conftest import agent_config, lj_output, wait_until


def test_partial_line_after_partial_timeout(workdir, ljrecv, agents):
    log = os.path.join(workdir, "p.log")
    with open(log, "wb") as f:
        f.write(b"first\nno newline yet")
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       lj_output(ljrecv),
                       input={"parser": "raw", "partial_timeout": "500ms",
                              "close_inactive": "5m"})
    a = agents(workdir, cfg)
    a.start()
    t0 = time.monotonic()
    ljrecv.wait_for(2, timeout=15)
    # Well before close_inactive (5 min).
    assert time.monotonic() - t0 < 15
    evs = sorted(ljrecv.events[:], key=lambda e: e["log"]["offset"])
    assert [e["message"] for e in evs] == ["first", "no newline yet"]
    assert evs[1]["log"]["offset"] == 6
    # The continuation is its own event, from where the flush ended.
    with open(log, "ab") as f:
        f.write(b" and the rest\nnext\n")
    ljrecv.wait_for(4, timeout=15)
    evs = sorted(ljrecv.events[:], key=lambda e: e["log"]["offset"])
    assert [e["message"] for e in evs] == [
        "first", "no newline yet", " and the rest", "next"]
    assert evs[2]["log"]["offset"] == len(b"first\nno newline yet")
    time.sleep(1)
    assert len(ljrecv.events) == 4
    assert a.stop() == 0
