"""Outputs other than Lumberjack: tcp json_lines, file, stdout."""

import json
import os

from conftest import (LineReceiver, agent_config, seq_of, wait_until,
                      write_lines)


def test_tcp_json_lines(workdir, agents):
    r = LineReceiver()
    try:
        log = os.path.join(workdir, "app.log")
        write_lines(log, 0, 20000, mode="w")
        out = {"type": "tcp", "format": "json_lines", "hosts": [r.address]}
        a = agents(workdir, agent_config(os.path.join(workdir, "data"),
                                         [log], out))
        a.start()
        wait_until(lambda: r.count() >= 20000, 60, what="20000 lines")
        evs = r.events()
        assert sorted(seq_of(e) for e in evs) == list(range(20000))
        assert len({e["event"]["id"] for e in evs}) == 20000
        assert a.stop() == 0
        assert r.count() == 20000
    finally:
        r.close()


def read_json_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data.endswith(b"\n"):
        data = data[:data.rfind(b"\n") + 1]
    return [json.loads(x) for x in data.splitlines()]


def test_file_output(workdir, agents):
    log = os.path.join(workdir, "app.log")
    dst = os.path.join(workdir, "out.ndjson")
    write_lines(log, 0, 10000, mode="w")
    out = {"type": "file", "path": dst}
    a = agents(workdir, agent_config(os.path.join(workdir, "data"), [log],
                                     out))
    a.start()
    wait_until(lambda: os.path.exists(dst) and
               len(read_json_lines(dst)) >= 10000, 60, what="file output")
    write_lines(log, 10000, 500)
    wait_until(lambda: len(read_json_lines(dst)) >= 10500, 60,
               what="appended lines")
    assert a.stop() == 0
    evs = read_json_lines(dst)
    assert sorted(seq_of(e) for e in evs) == list(range(10500))


def test_stdout_output(workdir, agents):
    log = os.path.join(workdir, "app.log")
    dst = os.path.join(workdir, "stdout.ndjson")
    write_lines(log, 0, 3000, mode="w")
    a = agents(workdir, agent_config(os.path.join(workdir, "data"), [log],
                                     {"type": "stdout"}))
    with open(dst, "wb") as so:
        a.start(stdout=so)
        wait_until(lambda: len(read_json_lines(dst)) >= 3000, 60,
                   what="stdout lines")
        assert a.stop() == 0
    assert sorted(seq_of(e) for e in read_json_lines(dst)) == \
        list(range(3000))
