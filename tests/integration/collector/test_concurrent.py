"""Many senders at once: every event reaches ES exactly once."""

import threading

from conftest import (assert_exact, es_count, event_id, make_events,
                      send_all, wait_until)


def test_three_senders_150k_exactly_once(es, make_collector):
    c = make_collector(es)
    per, nsend = 50000, 3
    batches = [make_events("s%d" % k, per) for k in range(nsend)]
    errors = []

    def run(evs):
        try:
            send_all(c.lj_port, evs, window=2000, compress=3)
        except BaseException as e:
            errors.append(e)
    ts = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    m = c.metrics()
    assert m["sluice_collector_input_events_total"] == per * nsend
    assert m["sluice_collector_input_connections_accepted_total"] >= nsend
    expected = [event_id("s%d" % k, i) for k in range(nsend)
                for i in range(per)]
    assert_exact(es, expected, timeout=90)
    # Nothing went to the dead-letter stream.
    assert es_count(es, "logs-sluice.deadletter-*") == 0
    # Spool emptied once ES acked everything; SIGTERM then drains cleanly.
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 20,
               what="spool drained")
    assert c.term() == 0
