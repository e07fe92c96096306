"""Elasticsearch faults from the double's fault API: retries never lose or
duplicate an event; mapping errors end in the dead-letter stream."""

import json

import pytest

from conftest import (DEADLETTER, DS_PATTERN, assert_exact, es_count,
                      event_id, make_events, send_all, wait_until)

FAULTS = {
    # every 5th write item answers 429 (global counter, so retries pass)
    "item_429_every_5th": ({"item_reject_every": 5,
                            "item_reject_status": 429}, 20000),
    # three whole _bulk requests answer 500
    "request_500_x3": ({"fail_status": 500, "fail_count": 3}, 20000),
    # every reply is late by 2 s (below the 10 s request timeout)
    "delay_2s": ({"delay_ms": 2000}, 10000),
    # bodies over 64 KiB (decompressed) answer 413: the indexer splits
    "body_413_over_64k": ({"max_body": 64 * 1024}, 10000),
    # all of them together (shorter delay: the 2 s case runs above, and
    # every 413 split and 429 round would add another 2 s here)
    "all_at_once": ({"item_reject_every": 5, "item_reject_status": 429,
                     "fail_status": 500, "fail_count": 3, "delay_ms": 500,
                     "max_body": 64 * 1024}, 3000),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_es_fault_every_event_once(es, make_collector, name):
    faults, n = FAULTS[name]
    c = make_collector(es)
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    es.set_faults(**faults)
    evs = make_events("f", n)
    send_all(c.lj_port, evs, window=1000)
    assert_exact(es, [event_id("f", i) for i in range(n)], timeout=90)
    st = es.stats()
    fired = st["by_status"]
    print(name, "by_status", fired, "bulk requests", st["bulk_requests"],
          "items", st["items_by_status"])
    if "item_reject_every" in faults:
        assert st["items_by_status"].get("429", 0) >= n // 5 - 1, st
    if "fail_status" in faults:
        assert fired.get("500", 0) == 3, fired
    if "max_body" in faults:
        assert fired.get("413", 0) >= 1, fired
    # Retried items that already succeeded are never sent again: every
    # 201 is a distinct event, and no item came back as a duplicate.
    assert st["items_by_status"].get("201", 0) == n, st["items_by_status"]
    assert st["items_by_status"].get("409", 0) == 0, st["items_by_status"]
    assert es_count(es, "logs-sluice.deadletter-*") == 0
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 20,
               what="spool released")


def test_mapping_error_goes_to_deadletter(es, make_collector):
    c = make_collector(es)
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    es.set_faults(mapping_error_field="bad_field")
    n = 6000
    good = make_events("g", n)
    bad = make_events("b", n // 10, extra=',"bad_field":{"x":"y"}')
    # Interleave so bad items sit inside bulks of good ones.
    evs = []
    for i, ev in enumerate(good):
        evs.append(ev)
        if i % 10 == 0 and i // 10 < len(bad):
            evs.append(bad[i // 10])
    send_all(c.lj_port, evs, window=1000)

    assert_exact(es, [event_id("g", i) for i in range(n)], DS_PATTERN)
    want = {event_id("b", i): bad[i].decode() for i in range(len(bad))}
    wait_until(lambda: es_count(es, DEADLETTER) >= len(want), 30,
               what="dead letters")
    dl = es.docs(DEADLETTER)
    assert len(dl) == len(want)
    seen = {}
    for d in dl:
        src = d["_source"]
        orig_id = src["labels"]["original_id"]
        assert orig_id not in seen, "dead letter twice: %s" % orig_id
        seen[orig_id] = src
        # The original text, byte for byte, in event.original.
        assert src["event"]["original"] == want.get(orig_id), src
        assert src["http"]["response"]["status_code"] == 400
        assert src["error"]["type"] == "document_parsing_exception"
        assert "bad_field" not in src
    assert set(seen) == set(want)
    # ... and nowhere else: no refused event in any other index.
    every = es.docs("*")
    for d in every:
        if d["_index"].startswith(".ds-" + DEADLETTER):
            continue
        assert not d["_id"].startswith("b-"), d
        assert "bad_field" not in json.dumps(d["_source"]), d
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 20,
               what="spool released")
