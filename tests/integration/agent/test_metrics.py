"""/metrics naming: one prefix, build_info, process_* metrics, and per-input
series (label input="<id>") that add up to the unlabelled totals."""

import json
import os
import re
import subprocess
import time

from conftest import AGENT, SOURCE, agent_config, lj_output, wait_until
from conftest import write_lines

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def samples(body):
    """[(name, {label: value}, value)] of every sample line."""
    out = []
    for ln in body.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = SAMPLE.match(ln)
        assert m, ln
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                 m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def per_input(body, name):
    return {lab["input"]: v for n, lab, v in samples(body) if n == name}


def total(body, name):
    vals = [v for n, lab, v in samples(body) if n == name and not lab]
    assert len(vals) == 1, name
    return vals[0]


def test_per_input_sums_build_info_process(workdir, ljrecv, agents):
    logs = [os.path.join(workdir, n) for n in
            ("web.log", "pay.log", "a.log", "b.log")]
    write_lines(logs[0], 0, 300, mode="w")
    with open(logs[0], "a") as f:
        f.write("\n  \n")              # two blank lines: read, no event
    with open(logs[1], "w") as f:      # multiline: 5 lines, 2 events
        f.write("[x] one\n  two\n  three\n[x] four\n  five\n")
    # Distinct first lines: equal fingerprints would make one file of them.
    write_lines(logs[2], 1000, 70, mode="w")
    write_lines(logs[3], 2000, 40, mode="w")
    cfg = agent_config(os.path.join(workdir, "data"), [logs[0]],
                       lj_output(ljrecv))
    base = cfg["inputs"][0]
    cfg["inputs"] = [
        dict(base, paths=[logs[0]], id="web"),
        dict(base, paths=[logs[1]], parser="raw", dataset="payments",
             multiline={"pattern": r"^\[", "negate": True,
                        "match": "after", "timeout": "300ms"}),
        dict(base, paths=[logs[2]], dataset="dup"),
        dict(base, paths=[logs[3]], dataset="dup"),
    ]
    a = agents(workdir, cfg)
    a.start()
    ljrecv.wait_for(300 + 2 + 70 + 40, timeout=60)
    wait_until(lambda: a.metric("sluice_agent_events_acked_total") == 412,
               20, what="acked")
    _, body = a.http("/metrics")

    # Ids: explicit, the unique dataset, input-<n> for a shared dataset.
    lines = per_input(body, "sluice_agent_input_lines_read_total")
    assert lines == {"web": 302, "payments": 5, "input-2": 70,
                     "input-3": 40}, lines
    events = per_input(body, "sluice_agent_input_events_built_total")
    assert events == {"web": 300, "payments": 2, "input-2": 70,
                      "input-3": 40}, events
    nbytes = per_input(body, "sluice_agent_input_bytes_read_total")
    for i, k in enumerate(("web", "payments", "input-2", "input-3")):
        assert nbytes[k] == os.path.getsize(logs[i]), (k, nbytes)
    # The labelled series sum to the unlabelled totals, which have names
    # of their own (nothing is counted twice when summing by name).
    assert sum(lines.values()) == total(body, "sluice_agent_lines_read_total")
    assert sum(events.values()) == total(body,
                                         "sluice_agent_events_built_total")
    assert sum(nbytes.values()) == total(body, "sluice_agent_bytes_read_total")

    # One prefix; the only labelled families are the per-input ones,
    # the histogram and build_info.
    for n, lab, _ in samples(body):
        assert n.startswith("sluice_agent_") or n.startswith("process_"), n
        if lab:
            assert (n.startswith("sluice_agent_input_")
                    or n == "sluice_agent_output_latency_seconds_bucket"
                    or n == "sluice_agent_build_info"), (n, lab)

    # Every family is in the README's reference tables.
    with open(os.path.join(SOURCE, "README.md")) as f:
        readme = f.read().split("\n## Metrics\n", 1)[1].split("\n## ")[0]
    for n, _, _ in samples(body):
        fam = re.sub(r"_(bucket|sum|count)$", "", n) \
            if n.startswith("sluice_agent_output_latency_seconds") else n
        assert "`%s`" % fam in readme, fam

    info = [(lab, v) for n, lab, v in samples(body)
            if n == "sluice_agent_build_info"]
    assert len(info) == 1 and info[0][1] == 1
    lab = info[0][0]
    with open(os.path.join(SOURCE, "meson.build")) as f:
        version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    assert lab["version"] == version
    out = subprocess.run([AGENT, "--version"], capture_output=True,
                         text=True, timeout=10).stdout
    assert version in out
    for lib in ("libuv", "jansson", "zlib", "pcre2"):
        assert re.match(r"^\d+\.\d+", lab[lib]), (lib, lab)
    assert lab["openssl"] and lab["librdkafka"]

    m = a.metrics()
    assert m["process_cpu_seconds_total"] > 0
    assert m["process_resident_memory_bytes"] > 1 << 20
    assert m["process_virtual_memory_bytes"] > \
        m["process_resident_memory_bytes"]
    fds = len(os.listdir("/proc/%d/fd" % a.proc.pid))
    assert abs(m["process_open_fds"] - fds) <= 2, (m["process_open_fds"], fds)
    assert m["process_max_fds"] >= m["process_open_fds"]
    assert abs(m["process_start_time_seconds"] - time.time()) < 300
    assert a.stop() == 0


def check(tmp_path, inputs):
    p = tmp_path / "agent.yml"
    p.write_text(json.dumps({
        "data_dir": str(tmp_path / "data"),
        "inputs": [dict({"paths": ["/tmp/none-*.log"]}, **i)
                   for i in inputs],
        "output": {"type": "stdout"}}))
    return subprocess.run([AGENT, "--check", "-c", str(p)],
                          capture_output=True, text=True, timeout=20)


def test_input_id_rules(tmp_path):
    r = check(tmp_path, [{"id": "web"}, {"id": "web"}])
    assert r.returncode == 2 and "also the id of inputs[0]" in r.stderr, \
        r.stderr
    r = check(tmp_path, [{"id": "a b"}])
    assert r.returncode == 2 and "inputs.id" in r.stderr, r.stderr
    r = check(tmp_path, [{}, {"id": "input-0"}])
    assert r.returncode == 2 and "default id of inputs[0]" in r.stderr, \
        r.stderr
    r = check(tmp_path, [{"id": "input-0"}, {"id": "web.access_2"}])
    assert r.returncode == 0, r.stderr
