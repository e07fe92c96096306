"""Upgrade over a full spool (issue 9): records written by the previous
sluice (format 1, _bulk pairs routed to data streams) are drained after the
upgrade under the CURRENT routing (here index_mode daily), exactly once,
and new events (format 2) follow them."""

import os
import struct
import zlib

from conftest import (DATASET, assert_exact, event_id, make_events,
                      send_all)

HDR = struct.Struct("<IIIIQQ")
MAGIC_V1 = 0x014C53D3
T_NS = 1764072000 * 10 ** 9


def v1_record(rid, events, index):
    """A format-1 record as the old intake wrote it."""
    payload = b"".join(
        b'{"create":{"_index":"%s","_id":"%s"}}\n%s\n' % (
            index.encode(), ev.split(b'"id":"')[1].split(b'"')[0], ev)
        for ev in events)
    hdr = HDR.pack(MAGIC_V1, len(payload), len(events), 0, rid, T_NS)
    crc = zlib.crc32(hdr[0:12])
    crc = zlib.crc32(hdr[16:32], crc)
    crc = zlib.crc32(payload, crc)
    return HDR.pack(MAGIC_V1, len(payload), len(events), crc, rid,
                    T_NS) + payload


def test_v1_spool_drained_with_new_index_mode(es, make_collector):
    old = make_events("u", 300)
    c = make_collector(es, {"elasticsearch": {"index_mode": "daily"}},
                       start=False)
    spool = os.path.join(c.data_dir, "spool")
    os.makedirs(spool)
    with open(os.path.join(spool, "%016x.seg" % 1), "wb") as f:
        for k in range(3):
            f.write(v1_record(k + 1, old[k * 100:(k + 1) * 100],
                              "logs-%s-default" % DATASET))
    c.start()
    new = make_events("u", 200, start=300)
    send_all(c.lj_port, new, window=100, compress=1)
    daily = "sluice-%s-2026.11.25" % DATASET
    assert_exact(es, [event_id("u", i) for i in range(500)], pattern=daily)
    # Nothing went to the data stream the old records named.
    assert es.stats()["docs_total"] == 500
