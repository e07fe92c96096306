"""The archive (collector/archive.h): every accepted event as gzip NDJSON,
one file per dataset per hour, readable at any moment, exactly once even
across kill -9, with retention by age and size; and the replay / trace
subcommands (collector/tools.h) that read it back."""

import collections
import glob
import gzip
import json
import os
import random
import subprocess
import time

import pytest

from conftest import (COLLECTOR, ResilientSender, assert_exact, free_port,
                      send_all, wait_until)

HOUR_TS = ["2026-11-25T10:15:00.000Z", "2026-11-25T11:30:00.000Z",
           "2026-11-25T12:45:00.000Z"]


def ev(i, ts, dataset="app", **extra):
    e = {"@timestamp": ts, "message": "payload ev-%07d" % i,
         "log": {"level": "info"},
         "event": {"id": "ev-%07d" % i, "dataset": dataset}}
    e.update(extra)
    return json.dumps(e).encode()


def archive_collector(make_collector, es_or_url, root, archive=None,
                      with_es=False, lj_port=0, start=True, name="collector"):
    c = make_collector(es_or_url, {"archive": dict(
        {"path": str(root)}, **(archive or {}))}, lj_port=lj_port,
        start=False, name=name)
    if not with_es:
        del c.config["elasticsearch"]
    if start:
        c.start()
    return c


def data_files(root):
    return sorted(glob.glob(os.path.join(str(root), "*", "*", "*", "*",
                                         "*.ndjson.gz")))


def read_events(root):
    """{event.id: count} and the list of (file, event) over the archive."""
    seen = collections.Counter()
    out = []
    for f in data_files(root):
        with gzip.open(f, "rb") as g:
            for line in g.read().splitlines():
                if line.strip():
                    e = json.loads(line)
                    seen[e["event"]["id"]] += 1
                    out.append((f, e))
    return seen, out


def sidecar(f):
    with open(f + ".idx.json") as fp:
        return json.load(fp)


def written(c):
    return c.metric("sluice_collector_archive_events_written_total")


def run_tool(cfg_path, *args, timeout=60):
    return subprocess.run([COLLECTOR, "-c", cfg_path] + list(args),
                          capture_output=True, text=True, timeout=timeout)


# ---- writing ----------------------------------------------------------------

def test_archive_only_hour_files_readable_with_zcat(tmp_path, make_collector):
    root = tmp_path / "archive"
    c = archive_collector(make_collector, "http://127.0.0.1:9", root)
    evs = [ev(i, HOUR_TS[i % 3], "app" if i % 2 else "web.access")
           for i in range(600)]
    send_all(c.lj_port, evs, window=100)
    wait_until(lambda: written(c) >= 600, 30, what="600 archived")
    # acked, archived and released: nothing left in the spool
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 10,
               what="spool released")
    assert c.ready() == 200
    files = data_files(root)
    rel = sorted(os.path.relpath(f, str(root)) for f in files)
    assert rel == ["app/2026/11/25/10-0.ndjson.gz",
                   "app/2026/11/25/11-0.ndjson.gz",
                   "app/2026/11/25/12-0.ndjson.gz",
                   "web.access/2026/11/25/10-0.ndjson.gz",
                   "web.access/2026/11/25/11-0.ndjson.gz",
                   "web.access/2026/11/25/12-0.ndjson.gz"], rel
    seen, out = read_events(root)
    assert len(seen) == 600 and set(seen.values()) == {1}
    for f, e in out:
        hh = int(os.path.basename(f).split("-")[0])
        assert e["@timestamp"][11:13] == "%02d" % hh
        assert f.split(os.sep)[-5] == e["event"]["dataset"]
    for f in files:
        idx = sidecar(f)
        n = sum(1 for g, _ in out if g == f)
        assert idx["count"] == n and idx["bytes"] == os.path.getsize(f)
        assert idx["min"] <= idx["max"] and idx["last_record"] >= 1
    # the system's zcat reads a file of concatenated members, too
    z = subprocess.run(["zcat", files[0]], capture_output=True, check=True)
    assert len(z.stdout.splitlines()) == sidecar(files[0])["count"]
    st = json.loads(c.http_get("/debug/state")[1])
    assert st["archive"]["events_written"] == 600
    assert c.term() == 0


def test_rotation_by_size_and_restart(tmp_path, make_collector):
    root = tmp_path / "archive"
    c = archive_collector(make_collector, "http://127.0.0.1:9", root,
                          {"max_file_bytes": "4KiB"})
    rnd = random.Random(5)

    def pad():  # incompressible enough that 50 events pass 4 KiB
        return "".join(rnd.choice("abcdefghij") for _ in range(300))
    n = 0
    for w in range(8):
        evs = [ev(n + i, HOUR_TS[0], pad=pad()) for i in range(50)]
        send_all(c.lj_port, evs, window=50)
        n += 50
        wait_until(lambda: written(c) >= n, 20, what="%d archived" % n)
    files = [os.path.basename(f) for f in data_files(root)]
    assert len(files) >= 3, files
    assert c.metric("sluice_collector_archive_files_created_total") == len(files)
    c.term()
    # A restarted collector never appends to a file of the previous run.
    c.start()
    send_all(c.lj_port, [ev(n, HOUR_TS[0])], window=1)
    wait_until(lambda: written(c) >= 1, 20, what="archived after restart")
    after = [os.path.basename(f) for f in data_files(root)]
    assert len(after) == len(files) + 1
    seqs = sorted(int(f.split("-")[1].split(".")[0]) for f in after)
    assert seqs == list(range(len(after)))
    seen, _ = read_events(root)
    assert len(seen) == n + 1 and set(seen.values()) == {1}
    assert c.term() == 0


def make_old_file(root, dataset, day, hour, nbytes):
    d = os.path.join(str(root), dataset, day.replace("-", "/"))
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, "%02d-0.ndjson.gz" % hour)
    raw = (b'{"message":"old","@timestamp":"%sT%02d:00:00Z"}\n'
           % (day.encode(), hour)) * 10
    body = gzip.compress(raw + os.urandom(nbytes).hex().encode()[:nbytes])
    with open(f, "wb") as fp:
        fp.write(body)
    with open(f + ".idx.json", "w") as fp:
        json.dump({"count": 10, "bytes": len(body), "min_ns": 0, "max_ns": 0,
                   "min": "", "max": "", "last_record": 0,
                   "last_record_ns": 0}, fp)
    return f


def test_retention_by_age(tmp_path, make_collector):
    root = tmp_path / "archive"
    old = [make_old_file(root, "app", "2020-01-0%d" % d, h, 100)
           for d in (1, 2) for h in (3, 4)]
    c = archive_collector(make_collector, "http://127.0.0.1:9", root,
                          {"keep": "2d"})
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    send_all(c.lj_port, [ev(1, now)], window=1)
    wait_until(lambda: c.metric("sluice_collector_archive_deleted_files_total") == 4,
               20, what="old files deleted")
    assert not any(os.path.exists(f) for f in old)
    assert not os.path.exists(os.path.join(str(root), "app", "2020"))
    wait_until(lambda: written(c) >= 1, 20, what="archived")
    assert len(data_files(root)) == 1  # this hour's file is kept
    assert c.term() == 0


def test_retention_by_total_size_oldest_first(tmp_path, make_collector):
    root = tmp_path / "archive"
    files = [make_old_file(root, "app", "2030-01-01", h, 20000)
             for h in range(6)]
    total = sum(os.path.getsize(f) + os.path.getsize(f + ".idx.json")
                for f in files)
    one = total // 6
    c = archive_collector(make_collector, "http://127.0.0.1:9", root,
                          {"max_total_bytes": str(int(one * 3.5)),
                           "keep": "0"})
    wait_until(lambda: c.metric("sluice_collector_archive_deleted_files_total") >= 3,
               20, what="oldest files deleted")
    left = [os.path.exists(f) for f in files]
    assert left == [False, False, False, True, True, True], left
    assert c.metric("sluice_collector_archive_bytes") <= one * 3.5
    assert c.term() == 0


def test_kill9_every_event_exactly_once(tmp_path, es, make_collector):
    root = tmp_path / "archive"
    port = free_port()
    c = archive_collector(make_collector, es, root, with_es=True,
                          lj_port=port)
    n = 20000
    evs = [ev(i, HOUR_TS[i % 3], "ctest") for i in range(n)]
    s = ResilientSender(port, evs, window=500, deadline_s=80, pace_s=0.02)
    s.start()
    for target in (n // 4, n // 2):
        wait_until(lambda: s.acked >= target or not s.is_alive(), 40,
                   what="sender at %d" % target)
        wait_until(lambda: written(c) > 0, 20, what="archiving under way")
        c.kill9()
        c.restart()
    s.join_ok(80)
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 40,
               what="spool released")
    seen, _ = read_events(root)
    dups = [k for k, v in seen.items() if v > 1]
    assert not dups, dups[:5]
    assert len(seen) == n
    assert_exact(es, ["ev-%07d" % i for i in range(n)], "logs-ctest-*",
                 check_payload=False)
    for f in data_files(root):
        assert sidecar(f)["bytes"] == os.path.getsize(f)
    assert c.term() == 0


def test_records_redelivered_by_the_spool_are_archived_once(
        tmp_path, es, make_collector):
    """The archive leg finished, the indexer leg did not (ES refuses): the
    spool keeps the records and hands them out again after a restart; the
    archive skips every event its sidecars already count, ES gets all."""
    root = tmp_path / "archive"
    c = archive_collector(make_collector, es, root, with_es=True)
    es.set_faults(fail_status=503, fail_count=10 ** 9, fail_path="")
    n = 2000
    send_all(c.lj_port, [ev(i, HOUR_TS[i % 3], "ctest") for i in range(n)],
             window=250)
    wait_until(lambda: written(c) >= n, 30, what="archived")
    assert c.metric("sluice_collector_spool_records") == 8  # ES leg pending
    c.kill9()
    es.set_faults(fail_count=0)
    c.start()
    assert_exact(es, ["ev-%07d" % i for i in range(n)], "logs-ctest-*",
                 check_payload=False)
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 30,
               what="spool released")
    assert c.metric("sluice_collector_archive_events_skipped_total") == n
    assert written(c) == 0
    seen, _ = read_events(root)
    assert len(seen) == n and set(seen.values()) == {1}
    assert c.term() == 0


def test_resent_events_are_archived_once(tmp_path, make_collector):
    """A sender re-sends a window it got no ack for: same event.ids in a
    new spool record. The archive drops them, within a run and after a
    restart (it reads recent files back)."""
    root = tmp_path / "archive"
    c = archive_collector(make_collector, "http://127.0.0.1:9", root)
    evs = [ev(i, HOUR_TS[i % 3]) for i in range(300)]
    send_all(c.lj_port, evs, window=100)
    send_all(c.lj_port, evs, window=100)
    wait_until(lambda: c.metric("sluice_collector_archive_events_duplicate_total")
               >= 300, 20, what="re-sent events dropped")
    assert written(c) == 300
    c.kill9()
    c.start()
    send_all(c.lj_port, evs[:150], window=50)
    wait_until(lambda: c.metric("sluice_collector_archive_events_duplicate_total")
               >= 150, 20, what="re-sent events dropped after a restart")
    assert written(c) == 0
    seen, _ = read_events(root)
    assert len(seen) == 300 and set(seen.values()) == {1}
    assert c.term() == 0


def test_recovery_cuts_uncommitted_bytes(tmp_path, make_collector):
    """What a crash between a data fsync and its sidecar leaves: bytes
    beyond the sidecar's length (cut), a file without a sidecar (removed);
    the next write goes to a new seq."""
    root = tmp_path / "archive"
    good = make_old_file(root, "app", "2026-11-25", 10, 50)
    size = os.path.getsize(good)
    with open(good, "ab") as f:
        f.write(gzip.compress(b'{"message":"uncommitted"}\n')[:20])
    orphan = os.path.join(os.path.dirname(good), "11-0.ndjson.gz")
    with open(orphan, "wb") as f:
        f.write(gzip.compress(b'{"message":"never committed"}\n'))
    c = archive_collector(make_collector, "http://127.0.0.1:9", root,
                          {"keep": "0"})
    assert os.path.getsize(good) == size
    assert not os.path.exists(orphan)
    assert c.find_logs(lambda e: e.get("message") ==
                       "cutting an uncommitted tail")
    with gzip.open(good) as g:
        assert len(g.read().splitlines()) == 11  # 10 events + the padding
    send_all(c.lj_port, [ev(1, "2026-11-25T10:20:00Z", "app")], window=1)
    wait_until(lambda: written(c) >= 1, 20, what="archived")
    assert os.path.exists(os.path.join(os.path.dirname(good),
                                       "10-1.ndjson.gz"))
    assert c.term() == 0


# ---- replay -----------------------------------------------------------------

def test_replay_twice_same_documents(tmp_path, es, make_collector):
    root = tmp_path / "archive"
    c = archive_collector(make_collector, es, root)
    evs = [ev(i, HOUR_TS[i % 3], "app" if i % 2 else "db")
           for i in range(3000)]
    send_all(c.lj_port, evs, window=500)
    wait_until(lambda: written(c) >= 3000, 30, what="archived")
    assert c.term() == 0
    assert es.stats()["docs_total"] == 0  # archive only so far
    # replay with a config that has elasticsearch:
    c.config["elasticsearch"] = {"hosts": [es.url],
                                 "flush_interval": "100ms"}
    c.write_config()
    r = run_tool(c.cfg_path, "replay", "--from", str(root))
    assert r.returncode == 0, r.stderr
    assert "read 3000, indexed 3000, already present 0, failed 0" in \
        r.stdout, r.stdout
    assert es.count("logs-app-*") + es.count("logs-db-*") == 3000
    r = run_tool(c.cfg_path, "replay", "--from", str(root))
    assert r.returncode == 0, r.stderr
    assert "read 3000, indexed 0, already present 3000, failed 0" in \
        r.stdout, r.stdout
    assert es.count("logs-app-*") + es.count("logs-db-*") == 3000
    # filters: one dataset, one hour
    r = run_tool(c.cfg_path, "replay", "--from", str(root), "--dataset",
                 "db", "--since", "2026-11-25T11:00:00Z", "--until",
                 "2026-11-25T11:59:59Z")
    assert r.returncode == 0, r.stderr
    assert "read 500, indexed 0, already present 500" in r.stdout, r.stdout


# ---- trace ------------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def trace_events():
    """A request through three services, shuffled, plus noise."""
    spans = [  # (offset s, service, host, span, parent, level, message)
        (0.000, "gateway", "gw-1", "s1", None, "info", "GET /checkout"),
        (0.010, "checkout", "app-2", "s2", "s1", "info", "cart loaded"),
        (0.020, "payments", "app-3", "s3", "s2", "error", "card declined"),
        (0.030, "checkout", "app-2", "s2", "s1", "warn", "payment failed"),
        (0.040, "gateway", "gw-1", "s1", None, "info", "502 in 40ms"),
    ]
    evs = []
    for i, (off, svc, host, span, parent, lvl, msg) in enumerate(spans):
        e = {"@timestamp": "2026-11-25T10:00:00.%03dZ" % int(off * 1000),
             "message": msg, "log": {"level": lvl},
             "service": {"name": svc}, "host": {"name": host},
             "span": {"id": span},
             "event": {"id": "t-%d" % i, "dataset": "app"}}
        if i == 2:  # the payments service logs it as a transaction id
            e["transaction"] = {"id": TRACE}
        else:
            e["trace"] = {"id": TRACE}
        if parent:
            e["parent"] = {"id": parent}
        evs.append(e)
    evs.append({"@timestamp": "2026-11-25T10:00:00.015Z",
                "message": "other request", "trace": {"id": "x" * 32},
                "event": {"id": "t-x", "dataset": "app"}})
    evs.append({"@timestamp": "2026-11-25T10:00:00.016Z",
                "message": "mentions %s in text only" % TRACE,
                "event": {"id": "t-y", "dataset": "app"}})
    order = [4, 0, 6, 2, 1, 5, 3]
    return [json.dumps(evs[i]).encode() for i in order]


def check_trace_json(out):
    got = [json.loads(x) for x in out.splitlines()]
    assert [e["event"]["id"] for e in got] == ["t-%d" % i for i in range(5)]


def check_trace_text(out):
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "HOST", "SERVICE", "LEVEL",
                                "MESSAGE"], lines
    rows = lines[1:6]
    assert rows[0].startswith("2026-11-25T10:00:00.000Z  gw-1 ")
    assert rows[2].split()[1:4] == ["app-3", "payments", "error"]
    # indented by span depth: s1 (0), s2 (1), s3 (2)
    msg_col = lines[0].index("MESSAGE")
    assert rows[0][msg_col:] == "GET /checkout"
    assert rows[1][msg_col:] == "  cart loaded"
    assert rows[2][msg_col:] == "    card declined"
    assert rows[3][msg_col:] == "  payment failed"
    assert rows[4][msg_col:] == "502 in 40ms"
    assert lines[6].startswith("5 events, 0.040s from 2026-11-25T10:00")


def test_trace_from_archive_and_from_es(tmp_path, es, make_collector):
    root = tmp_path / "archive"
    c = archive_collector(make_collector, es, root, with_es=True)
    send_all(c.lj_port, trace_events(), window=7)
    wait_until(lambda: written(c) >= 7, 20, what="archived")
    wait_until(lambda: es.count("logs-app-*") >= 7, 20, what="indexed")
    # from Elasticsearch (config has elasticsearch:)
    r = run_tool(c.cfg_path, "trace", TRACE, "--json")
    assert r.returncode == 0, r.stderr
    check_trace_json(r.stdout)
    r = run_tool(c.cfg_path, "trace", TRACE)
    assert r.returncode == 0, r.stderr
    check_trace_text(r.stdout)
    # from the archive, without Elasticsearch
    r = run_tool(c.cfg_path, "trace", TRACE, "--json", "--archive",
                 str(root))
    assert r.returncode == 0, r.stderr
    check_trace_json(r.stdout)
    r = run_tool(c.cfg_path, "trace", TRACE, "--archive", str(root))
    assert r.returncode == 0, r.stderr
    check_trace_text(r.stdout)
    r = run_tool(c.cfg_path, "trace", "nope", "--archive", str(root))
    assert r.returncode == 1 and r.stdout == ""
    assert c.term() == 0


# ---- disk full ----------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    rc = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=2m",
                          "tmpfs", str(mnt)], stderr=subprocess.DEVNULL)
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield str(mnt)
    finally:
        subprocess.call(["umount", "-l", str(mnt)])


def test_full_archive_disk_stops_intake_never_drops(small_disk,
                                                    make_collector):
    filler = os.path.join(small_disk, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (1536 << 10))
    root = os.path.join(small_disk, "archive")
    c = archive_collector(make_collector, "http://127.0.0.1:9", root)
    c.config["spool"]["max_bytes"] = "1MiB"
    c.term()
    c.start()
    rnd = random.Random(9)
    n = 6000
    evs = [ev(i, HOUR_TS[0], pad="%0300x" % rnd.getrandbits(1200))
           for i in range(n)]
    s = ResilientSender(c.lj_port, evs, window=200, deadline_s=120,
                        ack_timeout=110)
    s.start()
    wait_until(lambda: c.metric("sluice_collector_archive_failing") == 1, 40,
               what="archive disk full")
    wait_until(lambda: c.metric("sluice_collector_input_paused") == 1, 40,
               what="intake paused by the full spool")
    assert s.acked < n
    assert c.ready() == 503
    assert c.find_logs(lambda e: e.get("message", "").startswith(
        "archive write failed"))
    os.unlink(filler)  # space again: the retry writes everything
    s.join_ok(110)
    wait_until(lambda: written(c) >= n, 40, what="all archived")
    seen, _ = read_events(root)
    assert len(seen) == n and set(seen.values()) == {1}
    for f in data_files(root):
        assert sidecar(f)["bytes"] == os.path.getsize(f)
    assert c.metric("sluice_collector_archive_errors_total") >= 1
    assert c.term() == 0
