"""A receiver that stops reading must not make the agent grow."""

import os

import pytest

from conftest import (agent_config, lj_output, sanitized, wait_until,
                      write_lines)

QUEUE_MIB = 8
LIMIT = (QUEUE_MIB + 40) << 20


def grow_and_measure(workdir, ljrecv, agents, total_mb):
    log = os.path.join(workdir, "app.log")
    open(log, "w").close()
    ljrecv.pause_reading()
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       lj_output(ljrecv, timeout="120s"),
                       queue={"max_bytes": "%dMiB" % QUEUE_MIB})
    a = agents(workdir, cfg)
    a.start()
    per_line = 250
    step = (5 << 20) // per_line          # ~5 MB per append
    written = 0
    peak = 0
    while written * per_line < (total_mb << 20):
        write_lines(log, written, step, size_pad=140)
        written += step
        peak = max(peak, a.status()["VmRSS"])
    # Let the agent read up to its limit and sit there.
    wait_until(lambda: a.metric("sluice_agent_queue_input_bytes") is not None
               and a.metric("sluice_agent_queue_input_bytes") > 0, 30,
               what="backpressure")
    st = a.status()
    peak = max(peak, st["VmHWM"])
    if not sanitized():   # ASan's quarantine and shadow memory inflate RSS
        assert peak < LIMIT, "RSS %d MiB over %d MiB" % (peak >> 20,
                                                        LIMIT >> 20)
    size = os.path.getsize(log)
    # Reading stopped well before the end of the file.
    assert a.metric("sluice_agent_bytes_read_total") < size
    ljrecv.resume_reading()
    ljrecv.wait_for(written, timeout=300)
    assert a.stop() == 0
    return peak


def test_backpressure_50mb(workdir, ljrecv, agents):
    grow_and_measure(workdir, ljrecv, agents, 50)


@pytest.mark.slow
def test_backpressure_200mb(workdir, ljrecv, agents):
    grow_and_measure(workdir, ljrecv, agents, 200)
