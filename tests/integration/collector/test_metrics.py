"""/metrics naming: one prefix for the whole binary, a build_info gauge,
the standard process_* metrics, and label sets that can be summed."""

import collections
import os
import re
import time

from conftest import make_events, send_all, wait_until

NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def families(body):
    """{family name: TYPE} from the # TYPE lines; every sample line must
    belong to a declared family."""
    types, samples = {}, collections.Counter()
    for ln in body.splitlines():
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ")
            types[name] = typ
        elif ln and not ln.startswith("#"):
            m = NAME.match(ln)
            assert m, ln
            samples[m.group(1)] += 1
    for s in samples:
        base = re.sub(r"_(bucket|sum|count)$", "", s)
        assert s in types or base in types, s
    return types


def test_names_build_info_process(es, make_collector):
    c = make_collector(es)
    send_all(c.lj_port, make_events("m", 10))
    wait_until(lambda: c.metric("sluice_collector_spool_records") == 0, 20,
               what="indexed")
    st, body = c.http_get("/metrics")
    assert st == 200
    types = families(body)
    for name in types:
        assert (name.startswith("sluice_collector_")
                or name.startswith("process_")), name
    # Summing over labels never mixes units (bytes with requests, ...).
    labelled = {n for n in types if re.search(r"^%s\{" % n, body, re.M)}
    assert labelled <= {"sluice_collector_es_requests_total",
                        "sluice_collector_es_items_total",
                        "sluice_collector_es_deadletters_total",
                        "sluice_collector_es_not_ready",
                        "sluice_collector_es_request_duration_seconds",
                        "sluice_collector_build_info"}, labelled

    # Every family is in the README's reference tables.
    with open(os.path.join(os.environ["SLUICE_SOURCE_DIR"],
                           "README.md")) as f:
        readme = f.read().split("\n## Metrics\n", 1)[1].split("\n## ")[0]
    for name in types:
        assert "`%s`" % name in readme, name

    info = [ln for ln in body.splitlines()
            if ln.startswith("sluice_collector_build_info{")]
    assert len(info) == 1 and info[0].endswith("} 1"), info
    labels = dict(re.findall(r'(\w+)="([^"]*)"', info[0]))
    with open(os.path.join(os.environ["SLUICE_SOURCE_DIR"],
                           "meson.build")) as f:
        version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    assert labels["version"] == version
    for lib in ("libuv", "jansson", "zlib", "libcurl", "openssl",
                "librdkafka"):
        assert labels[lib], lib
    assert re.match(r"^\d+\.\d+", labels["libuv"])
    assert re.match(r"^\d+\.\d+", labels["libcurl"])

    m = c.metrics()
    assert types["process_cpu_seconds_total"] == "counter"
    assert m["process_cpu_seconds_total"] >= 0
    assert m["process_resident_memory_bytes"] > 1 << 20
    assert m["process_virtual_memory_bytes"] >= \
        m["process_resident_memory_bytes"]
    fds = len(os.listdir("/proc/%d/fd" % c.proc.pid))
    assert abs(m["process_open_fds"] - fds) <= 2, (m["process_open_fds"], fds)
    assert m["process_max_fds"] >= m["process_open_fds"]
    assert abs(m["process_start_time_seconds"] - time.time()) < 300
    assert c.term() == 0
