"""Issue 10: multiline presets on real-looking stack traces, pattern mode,
timeout flush, max_lines/max_bytes, restart inside a group, cri/docker
partial lines -- through the real agent with the file output."""

import json
import os
import shutil
import time

import pytest

from conftest import SOURCE, agent_config, wait_until

FIX = os.path.join(SOURCE, "tests", "fixtures", "multiline")


def file_output(workdir):
    return {"type": "file", "path": os.path.join(workdir, "out.ndjson")}


def read_events(workdir):
    path = os.path.join(workdir, "out.ndjson")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    return [json.loads(x) for x in lines[:-1] if x]


def wait_events(workdir, n, timeout=20):
    wait_until(lambda: len(read_events(workdir)) >= n, timeout,
               what="%d events" % n)
    time.sleep(0.3)  # nothing more may come
    evs = read_events(workdir)
    assert len(evs) == n, [e["message"][:60] for e in evs]
    return sorted(evs, key=lambda e: e["log"]["offset"])


def start(workdir, agents, log, inp, **over):
    base = {"parser": "raw", "partial_timeout": "300ms"}
    base.update(inp)
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       file_output(workdir), input=base, **over)
    a = agents(workdir, cfg)
    a.start()
    return a


def line_offsets(path):
    offs, at = [], 0
    with open(path, "rb") as f:
        for ln in f:
            offs.append(at)
            at += len(ln)
    return offs


def copy_fixture(workdir, name):
    dst = os.path.join(workdir, name)
    shutil.copy(os.path.join(FIX, name), dst)
    return dst


# (preset, [(first line index, number of lines)] of every event)
PRESETS = {
    "java": [(0, 1), (1, 23), (24, 1), (25, 5), (30, 1)],
    "python": [(0, 1), (1, 9), (10, 18), (28, 1)],
    "go": [(0, 1), (1, 1), (2, 21), (23, 1)],
    "ruby": [(0, 1), (1, 4), (5, 1), (6, 5), (11, 1)],
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_real_traces(workdir, agents, preset):
    log = copy_fixture(workdir, preset + ".log")
    with open(log, "rb") as f:
        lines = f.read().decode().split("\n")[:-1]
    offs = line_offsets(log)
    a = start(workdir, agents, log, {"multiline": {"preset": preset,
                                                   "timeout": "500ms"}})
    want = PRESETS[preset]
    evs = wait_events(workdir, len(want))
    for ev, (first, n) in zip(evs, want):
        assert ev["log"]["offset"] == offs[first]
        msg = "\n".join(x for x in lines[first:first + n])
        # Blank lines inside a group are kept; none end one.
        assert ev["message"] == msg, (preset, first)
        flags = ev["log"].get("flags", [])
        assert ("multiline" in flags) == (n > 1)
    assert a.stop() == 0


def test_pattern_negate_after_and_event_ids_stable(workdir, agents):
    log = os.path.join(workdir, "app.log")
    with open(log, "w") as f:
        f.write("[2026-12-05 10:00:00] one\n  two\n  three\n"
                "[2026-12-05 10:00:01] four\n")
    a = start(workdir, agents, log, {"multiline": {
        "pattern": r"^\[", "negate": True, "match": "after",
        "timeout": "300ms"}})
    evs = wait_events(workdir, 2)
    assert evs[0]["message"] == "[2026-12-05 10:00:00] one\n  two\n  three"
    assert evs[0]["log"]["flags"] == ["multiline"]
    assert evs[1]["message"] == "[2026-12-05 10:00:01] four"
    assert "flags" not in evs[1]["log"]
    ids = [e["event"]["id"] for e in evs]
    assert a.stop() == 0
    # A fresh agent id-wise (same data dir) re-reading from 0 gives the
    # same ids: event.id comes from the first line's offset.
    os.remove(os.path.join(workdir, "data", "registry.json"))
    os.remove(os.path.join(workdir, "out.ndjson"))
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       file_output(workdir),
                       input={"parser": "raw", "multiline": {
                           "pattern": r"^\[", "negate": True,
                           "timeout": "300ms"}})
    b = agents(workdir, cfg, name="again")
    b.start()
    evs = wait_events(workdir, 2)
    assert [e["event"]["id"] for e in evs] == ids
    assert b.stop() == 0


def test_match_before(workdir, agents):
    log = os.path.join(workdir, "b.log")
    with open(log, "w") as f:
        f.write("select *\\\nfrom t\\\nwhere x\nnext\n")
    a = start(workdir, agents, log, {"multiline": {
        "pattern": r"\\$", "match": "before", "timeout": "300ms"}})
    evs = wait_events(workdir, 2)
    assert evs[0]["message"] == "select *\\\nfrom t\\\nwhere x"
    assert evs[1]["message"] == "next"
    assert a.stop() == 0


def test_timeout_flushes_pending_group(workdir, agents):
    log = os.path.join(workdir, "t.log")
    with open(log, "w") as f:
        f.write("ERROR boom\njava.lang.IllegalStateException: x\n"
                "\tat a.B.c(B.java:1)\n")
    a = start(workdir, agents, log,
              {"multiline": {"preset": "java", "timeout": "1s"}})
    t0 = time.monotonic()
    evs = wait_events(workdir, 1)
    assert time.monotonic() - t0 >= 0.8
    assert evs[0]["message"].count("\n") == 2
    assert a.metric("sluice_agent_multiline_timeouts_total") == 1
    assert a.stop() == 0


def test_max_lines_and_max_bytes(workdir, agents):
    log = os.path.join(workdir, "m.log")
    with open(log, "w") as f:
        f.write("head\n" + "".join("\tat f%d\n" % i for i in range(10)))
        f.write("big\n" + "\t" + "y" * 3000 + "\n")
        f.write("end\n")
    a = start(workdir, agents, log, {"multiline": {
        "preset": "java", "max_lines": 4, "max_bytes": 1000,
        "timeout": "300ms"}})
    evs = wait_events(workdir, 3)
    assert evs[0]["message"] == "head\n\tat f0\n\tat f1\n\tat f2"
    assert sorted(evs[0]["log"]["flags"]) == ["multiline", "truncated"]
    assert len(evs[1]["message"].encode()) == 1000
    assert "truncated" in evs[1]["log"]["flags"]
    assert evs[2]["message"] == "end"
    assert a.stop() == 0


def test_restart_inside_group_rereads_it_whole(workdir, agents):
    log = os.path.join(workdir, "r.log")
    head = ("2026-12-05 10:00:00 INFO before\n"
            "2026-12-05 10:00:01 ERROR failed\n"
            "java.lang.RuntimeException: boom\n"
            "\tat a.B.c(B.java:1)\n")
    with open(log, "w") as f:
        f.write(head)
    a = start(workdir, agents, log,
              {"multiline": {"preset": "java", "timeout": "30s"}})
    evs = wait_events(workdir, 1)
    assert evs[0]["message"].endswith("before")
    # The group is pending: SIGTERM must not ship it, nor move the
    # registry past its first line.
    assert a.stop() == 0
    with open(os.path.join(workdir, "data", "registry.json")) as f:
        reg = f.read()
    first = len("2026-12-05 10:00:00 INFO before\n")
    assert '"offset":%d' % first in reg.replace(" ", ""), reg
    with open(log, "a") as f:
        f.write("\tat a.B.main(B.java:9)\n2026-12-05 10:00:02 INFO after\n")
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       file_output(workdir),
                       input={"parser": "raw", "partial_timeout": "300ms",
                              "multiline": {"preset": "java",
                                            "timeout": "500ms"}})
    b = agents(workdir, cfg, name="again")
    b.start()
    evs = wait_events(workdir, 3)
    assert evs[1]["log"]["offset"] == first
    assert evs[1]["message"] == ("2026-12-05 10:00:01 ERROR failed\n"
                                 "java.lang.RuntimeException: boom\n"
                                 "\tat a.B.c(B.java:1)\n"
                                 "\tat a.B.main(B.java:9)")
    assert evs[2]["message"] == "2026-12-05 10:00:02 INFO after"
    assert b.stop() == 0


def test_kill9_inside_group_keeps_registry_at_group(workdir, agents):
    log = os.path.join(workdir, "k.log")
    pre = "".join("2026-12-05 10:00:%02d INFO line %d\n" % (i, i)
                  for i in range(50))
    with open(log, "w") as f:
        f.write(pre + "2026-12-05 10:01:00 ERROR x\n\tat a.B.c(B.java:1)\n")
    a = start(workdir, agents, log,
              {"multiline": {"preset": "java", "timeout": "60s"}})
    wait_events(workdir, 50)
    reg = os.path.join(workdir, "data", "registry.json")

    def saved():
        try:
            with open(reg) as f:
                return '"offset":%d' % len(pre) in f.read().replace(" ", "")
        except OSError:
            return False
    wait_until(saved, 10, what="registry at the group's first line")
    a.kill()
    with open(log, "a") as f:
        f.write("\tat a.B.d(B.java:2)\n2026-12-05 10:01:01 INFO z\n")
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       file_output(workdir),
                       input={"parser": "raw", "partial_timeout": "300ms",
                              "multiline": {"preset": "java",
                                            "timeout": "500ms"}})
    b = agents(workdir, cfg, name="again")
    b.start()
    evs = wait_events(workdir, 52)
    assert evs[50]["log"]["offset"] == len(pre)
    assert evs[50]["message"].count("\n") == 2
    assert b.stop() == 0


def test_cri_partial_lines_joined_per_stream(workdir, agents):
    log = os.path.join(workdir, "c.log")
    with open(log, "w") as f:
        f.write("2026-12-05T10:00:00.000000001Z stdout P hello \n"
                "2026-12-05T10:00:00.000000002Z stderr F err line\n"
                "2026-12-05T10:00:00.000000003Z stdout P big \n"
                "2026-12-05T10:00:00.000000004Z stdout F world\n"
                "2026-12-05T10:00:00.000000005Z stdout F single\n")
    a = start(workdir, agents, log, {"parser": _container_parser("cri")})
    evs = wait_events(workdir, 3)
    msgs = [e["message"] for e in evs]
    assert msgs[0].endswith("hello big world"), msgs
    assert " stdout F " in msgs[0] or msgs[0] == "hello big world"
    assert evs[0]["log"]["offset"] == 0
    assert msgs[1].endswith("err line")
    assert msgs[2].endswith("single")
    assert a.stop() == 0


def test_docker_partial_lines_joined(workdir, agents):
    log = os.path.join(workdir, "d.log")
    with open(log, "w") as f:
        f.write('{"log":"part one, ","stream":"stdout",'
                '"time":"2026-12-05T10:00:00.1Z"}\n'
                '{"log":"err\\n","stream":"stderr",'
                '"time":"2026-12-05T10:00:00.2Z"}\n'
                '{"log":"part two\\n","stream":"stdout",'
                '"time":"2026-12-05T10:00:00.3Z"}\n')
    a = start(workdir, agents, log, {"parser": _container_parser("docker")})
    evs = wait_events(workdir, 2)
    assert "part one, part two" in evs[0]["message"]
    assert evs[0]["log"]["offset"] == 0
    assert "err" in evs[1]["message"]
    assert a.stop() == 0


def _container_parser(name):
    """cri/docker once the container parsers exist (parsers-sys);
    before that the joining is checked through `raw` plus the partial
    option being keyed on the parser name, so these tests skip."""
    from conftest import AGENT  # noqa: F401
    import subprocess
    out = subprocess.run([AGENT, "--help"], capture_output=True,
                         text=True).stdout
    if name not in out:
        pytest.skip("parser %s not built yet" % name)
    return name


def test_many_files_each_with_a_pending_group(workdir, agents):
    # Every file's last group waits for its timeout at the same time (the
    # stage indexes files by identity, not by a list walk).
    d = os.path.join(workdir, "logs")
    os.makedirs(d)
    n = 200
    for i in range(n):
        with open(os.path.join(d, "f%03d.log" % i), "w") as f:
            f.write("INFO start %d\nERROR fail %d\n\tat a.B.c(B.java:%d)\n"
                    % (i, i, i))
    a = start(workdir, agents, os.path.join(d, "*.log"),
              {"multiline": {"preset": "java", "timeout": "1s"}})
    evs = wait_events(workdir, 2 * n, timeout=60)
    joined = [e for e in evs if "multiline" in e["log"].get("flags", [])]
    assert len(joined) == n
    for e in joined:
        i = int(e["message"].split()[2])
        assert e["message"] == "ERROR fail %d\n\tat a.B.c(B.java:%d)" % (i, i)
    assert a.stop() == 0
