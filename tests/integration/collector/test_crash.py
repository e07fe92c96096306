"""kill -9 of the collector while it receives and indexes: a sender that
reconnects and resends unacked windows ends with every event in ES
exactly once (spool replay + create/_id dedupe)."""

import os
import random

from conftest import (ResilientSender, assert_exact, event_id, free_port,
                      make_events, wait_until)


def test_kill9_three_times_exactly_once(es, make_collector):
    seed = int(os.environ.get("SLUICE_TEST_SEED", "0")) or random.randrange(
        1 << 30)
    rnd = random.Random(seed)
    print("seed", seed)
    n = 60000
    port = free_port()
    # Slow ES a little so that records are in flight in the indexer (and
    # unreleased in the spool) when the kill lands.
    es.set_faults(delay_ms=50)
    c = make_collector(es, {"elasticsearch": {"bulk_max_events": 2000}},
                       lj_port=port)
    assert c.lj_port == port
    evs = make_events("k", n)
    # Paced (>= 3.6 s for 120 windows) so that three kill/restart cycles
    # always fit while it sends, however fast the machine.
    s = ResilientSender(port, evs, window=500, deadline_s=150, pace_s=0.03)
    s.start()
    points = sorted(rnd.uniform(0.1, 0.7) for _ in range(3))
    kills = 0
    at_kill = []
    prev = 0
    for frac in points:
        # at least one window acked by the restarted collector first, so
        # that every kill meets a live sender connection
        target = max(int(n * frac), prev + 500)
        wait_until(lambda: s.acked >= target or not s.is_alive(), 60,
                   what="sender at %d" % target)
        assert s.is_alive(), "sender finished before kill %d" % (kills + 1)
        # ES got part of it: the kill hits "receiving and indexing".
        wait_until(lambda: es.stats()["docs_total"] > 0, 20,
                   what="indexing under way")
        prev = s.acked
        at_kill.append((prev, es.stats()["docs_total"]))
        c.kill9()
        kills += 1
        c.restart()
        assert c.lj_port == port
        # The sender is connected to the new collector before the next
        # kill (an ack racing the kill must not count as "reconnected").
        wait_until(lambda: c.metric(
            "sluice_collector_input_connections_accepted_total") >= 1
            or not s.is_alive(), 30, what="sender reconnected")
        prev = s.acked
    s.join_ok(150)
    assert kills == 3
    print("acked, indexed at each kill:", at_kill)
    assert s.reconnects >= 3
    assert_exact(es, [event_id("k", i) for i in range(n)], timeout=90)
    # Spool replays answered 409 (done) and no event went to dead letters.
    assert es.count("logs-sluice.deadletter-*") == 0
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 30,
               what="spool released")
    # The recovery logged each start.
    opened = c.find_logs(lambda e: e.get("message") == "spool opened")
    assert len(opened) == 4
    assert c.term() == 0
