"""A damaged spool: bytes flipped in the middle of one segment, another
segment cut in the middle of a record. Start-up recovers, logs the damage
(segment + offset), moves the damaged bytes to data_dir/corrupt/, and every
event outside the damaged records is indexed exactly once."""

import os
import re
import struct

from conftest import (assert_exact, event_id, make_events, send_all,
                      wait_until)

# Record header (collector/spool.h): magic, len, nevents, crc32, id, time.
# Format 2 (the top byte of the magic): NDJSON events, each with event.id.
HDR = struct.Struct("<IIIIQQ")
MAGIC = 0x024C53D3
ID_RE = re.compile(rb'"event":\{"id":"(c-\d{7})"')


def parse_segment(path):
    """[(offset, total_size, nevents, record id, [event ids])]"""
    data = open(path, "rb").read()
    out, off = [], 0
    while off + HDR.size <= len(data):
        magic, ln, nev, _crc, rid, _t = HDR.unpack_from(data, off)
        assert magic == MAGIC, (path, off)
        payload = data[off + HDR.size:off + HDR.size + ln]
        ids = [m.decode() for m in ID_RE.findall(payload)]
        assert len(ids) == nev, (path, off, len(ids), nev)
        out.append((off, HDR.size + ln, nev, rid, ids))
        off += HDR.size + ln
    assert off == len(data), (path, off, len(data))
    return out


def damage_spool(es, make_collector, n):
    """Fill the spool with ES down, kill -9, flip bytes in the middle of
    segment 1 and cut segment 3 inside its last record, restart with ES
    up. Returns (collector, segment names, damaged records, their bytes)."""
    # ES down from the start: everything stays in the spool.
    es.set_faults(fail_status=503, fail_count=10 ** 9, fail_path="")
    c = make_collector(es, {"spool": {"segment_bytes": 64 * 1024}})
    send_all(c.lj_port, make_events("c", n), window=50, compress=1)
    assert es.stats()["docs_total"] == 0
    c.kill9()

    spool = os.path.join(c.data_dir, "spool")
    segs = sorted(f for f in os.listdir(spool) if f.endswith(".seg"))
    assert len(segs) >= 6, segs
    recs = {s: parse_segment(os.path.join(spool, s)) for s in segs}
    assert sum(r[2] for s in segs for r in recs[s]) == n

    # 1) flip 8 bytes in the middle of a record in the middle of segment 1
    seg_a = segs[1]
    assert len(recs[seg_a]) >= 3
    r1 = recs[seg_a][len(recs[seg_a]) // 2]
    path_a = os.path.join(spool, seg_a)
    with open(path_a, "r+b") as f:
        pos = r1[0] + HDR.size + (r1[1] - HDR.size) // 2
        f.seek(pos)
        old = f.read(8)
        f.seek(pos)
        f.write(bytes(b ^ 0xFF for b in old))
    damaged_a = open(path_a, "rb").read()[r1[0]:r1[0] + r1[1]]

    # 2) cut segment 3 in the middle of its last record
    seg_b = segs[3]
    r2 = recs[seg_b][-1]
    path_b = os.path.join(spool, seg_b)
    cut = r2[0] + HDR.size + (r2[1] - HDR.size) // 2
    os.truncate(path_b, cut)
    damaged_b = open(path_b, "rb").read()[r2[0]:]

    es.clear_faults()
    c.restart()
    return c, (seg_a, seg_b), (r1, r2), (damaged_a, damaged_b)


def logged(seg, off):
    def p(e):
        return (e.get("component") == "spool" and e.get("_run") == 2
                and e.get("offset") == off
                and seg.replace(".seg", "") in str(e.get("segment")))
    return p


def test_corrupt_spool_recovers_and_moves_damage_aside(es, make_collector):
    n = 10000
    c, (seg_a, seg_b), (r1, r2), (damaged_a, damaged_b) = damage_spool(
        es, make_collector, n)
    lost = set(r1[4]) | set(r2[4])
    # Start-up logged each damaged place (segment + offset) ...
    e1 = c.wait_log(logged(seg_a, r1[0]), what="log of flipped record")
    e2 = c.wait_log(logged(seg_b, r2[0]), what="log of cut record")
    for e in (e1, e2):
        assert "corrupt" in e["message"], e
        assert e["log.level"] in ("warn", "error"), e
    opened = c.wait_log(lambda e: e.get("_run") == 2 and
                        e.get("message") == "spool opened")
    assert opened["corrupt"] == 2, opened

    # ... moved the damaged bytes to corrupt/ ...
    cdir = os.path.join(c.data_dir, "corrupt")
    files = {f: open(os.path.join(cdir, f), "rb").read()
             for f in os.listdir(cdir)}
    name_a = "%s-%d.rec" % (seg_a.replace(".seg", ""), r1[0])
    name_b = "%s-%d.rec" % (seg_b.replace(".seg", ""), r2[0])
    assert name_a in files, sorted(files)
    assert name_b in files, sorted(files)
    assert files[name_a] == damaged_a
    assert files[name_b] == damaged_b
    # the flipped record's events are still readable there (no silent
    # loss; the 8 flipped bytes can hit at most one id)
    kept = {m.decode() for m in ID_RE.findall(files[name_a])}
    assert len(set(r1[4]) - kept) <= 1, sorted(set(r1[4]) - kept)
    assert c.metric("sluice_collector_spool_corrupt_records_total") >= 2

    # ... and indexed everything else exactly once.
    expected = [event_id("c", i) for i in range(n)
                if event_id("c", i) not in lost]
    assert len(expected) == n - len(lost)
    assert_exact(es, expected, timeout=60)
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 30,
               what="spool released")
    assert c.term() == 0
