"""A full disk behaves like a full spool: intake stops (no ack for what is
not durable), nothing acked is lost, and intake resumes once indexing frees
space. The collector's data_dir is a small tmpfs, so ENOSPC comes from the
real kernel, not from a simulation."""

import os
import subprocess
import time

import pytest

from conftest import (ResilientSender, assert_exact, event_id, make_events,
                      wait_until)

DISK = "3m"


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    rc = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=" + DISK,
                          "tmpfs", str(mnt)], stderr=subprocess.DEVNULL)
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield str(mnt)
    finally:
        subprocess.call(["umount", "-l", str(mnt)])


def test_disk_full_stops_intake_then_recovers(es, make_collector, small_disk):
    n = 20000  # ~7 MB of spool records (events padded to ~340 bytes, the
    # spool holds only events): more than twice the disk
    c = make_collector(es, {
        "data_dir": os.path.join(small_disk, "collector"),
        # The size limit is far away: the disk fills first.
        "spool": {"max_bytes": "1GiB", "segment_bytes": "256KiB"},
    })
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    es.set_faults(fail_status=503, fail_count=10 ** 9, fail_path="")
    pad = ',"labels":{"pad":"%s"}' % ("x" * 180)
    s = ResilientSender(c.lj_port, make_events("d", n, extra=pad), window=500,
                        deadline_s=180, ack_timeout=120)
    s.start()

    wait_until(lambda: c.metric("sluice_collector_spool_disk_full") == 1, 60,
               what="disk full seen by the spool")
    wait_until(lambda: c.metric("sluice_collector_input_paused") == 1, 30,
               what="intake paused")
    acked = s.acked
    assert 0 < acked < n
    assert es.stats()["docs_total"] == 0
    assert c.find_logs(lambda e: "spool append failed" in
                       e.get("message", ""))
    # Nothing durable is dropped while the disk stays full: acks stand
    # still (checked for a short, bounded period).
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        assert s.acked == acked
        time.sleep(0.2)

    es.clear_faults()
    s.join_ok(180)
    assert_exact(es, [event_id("d", i) for i in range(n)], timeout=90)
    wait_until(lambda: c.metric("sluice_collector_input_paused") == 0, 30,
               what="intake resumed")
    assert c.term() == 0
