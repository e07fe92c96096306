"""Real logrotate (`logrotate -f -s STATE CONF`) while an application
writes: every line exactly once in ES.

create mode: logrotate renames app.log -> app.log.1 (shifting older ones)
and creates a new app.log; the writer keeps writing to the renamed file
until it is told to reopen (what a postrotate signal does), so lines land
in the old inode after the rename too. Two globs are tested:
  - `app.log` only: the agent keeps reading the renamed file by its open
    descriptor (rename rotation) and picks up the new app.log;
  - `app.log*`: the renamed files match too; the agent must recognise
    them as the same file identity (dev + inode + fingerprint) and not
    ship them again.
copytruncate mode: logrotate copies app.log to app.log.1 and truncates
app.log in place. The glob must be `app.log` only: the copy is a new file
with the same lines, and shipping it would index them again under other
event ids (inherent to copytruncate, like Filebeat). Lines written
between the copy and the truncate are lost by copytruncate itself, so the
writer pauses around each rotation: it flushes, waits until the agent
has acknowledged app.log to its end (registry offset == size), rotates,
waits until the agent has seen the truncation, then writes on.
"""

import os
import subprocess
import time

import pytest

from conftest import (Writer, make_line, settle_exact, wait_until,
                      write_file)


def logrotate(workdir, path, mode):
    conf = os.path.join(workdir, "logrotate-%s.conf" % mode)
    state = os.path.join(workdir, "logrotate.state")
    with open(conf, "w") as f:
        f.write("%s {\n  rotate 10\n  %s\n  missingok\n  nocompress\n"
                "  notifempty\n}\n" % (path, mode))
    os.chmod(conf, 0o644)
    r = subprocess.run(["logrotate", "-f", "-s", state, conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)


def rotated(logdir):
    return sorted(n for n in os.listdir(logdir) if n.startswith("app.log."))


@pytest.mark.parametrize("glob", ["app.log", "app.log*"])
def test_logrotate_create(es, stack, glob):
    col = stack.collector(es)
    name = "host-r"
    logdir = os.path.join(stack.workdir, name + "-logs")
    a = stack.agent(col, name, paths=[os.path.join(logdir, glob)])
    path = os.path.join(logdir, "app.log")
    lines = 30_000
    w = Writer(path, name, lines, rate=5000, chunk=100)
    w.start()
    t0 = time.monotonic()
    for k in range(1, 4):
        wait_until(lambda: w.written >= k * lines // 4, 30, 0.01,
                   "writer progress")
        logrotate(stack.workdir, path, "create")
        assert os.path.exists(path)
        # The application keeps its descriptor (writing to app.log.<1>)
        # until it is told to reopen.
        more = w.written + 300
        wait_until(lambda: w.written >= more, 30, 0.01, "writer progress")
        w.reopen()
    w.join_ok()
    assert rotated(logdir) == ["app.log.1", "app.log.2", "app.log.3"]
    docs = settle_exact(es, w.messages(), timeout=90, procs=[col, a],
                        check_places=False)
    paths = sorted({d["_source"]["log"]["file"]["path"] for d in docs})
    print("create, glob %s: %d docs exact in %.1fs; rotations seen %d; "
          "paths %s" % (glob, len(docs), time.monotonic() - t0,
                        a.metric("sluice_agent_files_rotated_total"), paths))
    assert a.term() == 0
    assert col.term() == 0


def acked_to_end(a, path):
    size = os.path.getsize(path)
    return a.registry().get(path) == size


def test_logrotate_copytruncate(es, stack):
    col = stack.collector(es)
    name = "host-t"
    logdir = os.path.join(stack.workdir, name + "-logs")
    path = os.path.join(logdir, "app.log")
    a = stack.agent(col, name, paths=[path])
    lines = 30_000
    w = Writer(path, name, lines, rate=6000, chunk=100)
    w.start()
    t0 = time.monotonic()
    for k in range(1, 4):
        wait_until(lambda: w.written >= k * lines // 4, 30, 0.01,
                   "writer progress")
        w.pause()
        wait_until(lambda: acked_to_end(a, path), 30, 0.05,
                   lambda: "agent to ack app.log to its end (%s, size %d)"
                   % (a.registry(), os.path.getsize(path)))
        seen = a.metric("sluice_agent_files_truncated_total")
        logrotate(stack.workdir, path, "copytruncate")
        assert os.path.getsize(path) == 0
        wait_until(lambda: a.metric("sluice_agent_files_truncated_total") > seen,
                   30, 0.05, "agent to see the truncation")
        w.resume()
    w.join_ok()
    assert rotated(logdir) == ["app.log.1", "app.log.2", "app.log.3"]
    docs = settle_exact(es, w.messages(), timeout=90, procs=[col, a],
                        check_places=False)
    print("copytruncate: %d docs exact in %.1fs; truncations seen %d" % (
        len(docs), time.monotonic() - t0,
        a.metric("sluice_agent_files_truncated_total")))
    assert a.term() == 0
    assert col.term() == 0


def test_logrotate_create_with_agent_kill9(es, stack):
    """create-mode rotation, and right after each one the agent is
    killed (-9) before it finished the renamed file, while the writer
    still writes into it. With `app.log*` the restarted agent finds the
    renamed file again by its identity (the registry has the offset under
    the old path) and reads it on from there: exact. (With an `app.log`
    only glob, lines the agent had not read from the renamed file before
    it died would be lost: the restarted agent cannot find that file.)"""
    col = stack.collector(es)
    name = "host-rk"
    logdir = os.path.join(stack.workdir, name + "-logs")
    a = stack.agent(col, name, paths=[os.path.join(logdir, "app.log*")])
    path = os.path.join(logdir, "app.log")
    lines = 30_000
    w = Writer(path, name, lines, rate=5000, chunk=100)
    w.start()
    t0 = time.monotonic()
    for k in range(1, 4):
        wait_until(lambda: w.written >= k * lines // 4, 30, 0.01,
                   "writer progress")
        logrotate(stack.workdir, path, "create")
        a.kill9()
        more = w.written + 500
        wait_until(lambda: w.written >= more, 30, 0.01, "writer progress")
        w.reopen()
        a.start()
    w.join_ok()
    docs = settle_exact(es, w.messages(), timeout=90, procs=[col, a],
                        check_places=False)
    print("create + kill -9: %d docs exact in %.1fs; ES items %s" % (
        len(docs), time.monotonic() - t0, es.stats()["items_by_status"]))
    assert a.term() == 0
    assert col.term() == 0


def test_truncate_and_regrow_past_offset(es, stack):
    """copytruncate's worst case for a tailer: the file is truncated and
    at once written again to MORE than the old offset, before the agent
    looked. Size alone cannot show the truncation; the fingerprint (first
    bytes changed) must. Every line exactly once."""
    col = stack.collector(es)
    name = "host-g"
    logdir = os.path.join(stack.workdir, name + "-logs")
    path = os.path.join(logdir, "app.log")
    a = stack.agent(col, name, paths=[path])
    expected, n = set(), 0
    for k in range(3):
        expected |= write_file(path, name, 5000, start=n)
        n += 5000
        wait_until(lambda: acked_to_end(a, path), 30, 0.05,
                   "agent to ack app.log to its end")
        data = "".join(make_line(name, 50 + k, i)
                       for i in range(n, n + 12000)).encode()
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, data)
        finally:
            os.close(fd)
        expected |= {"%s %d" % (name, i) for i in range(n, n + 12000)}
        n += 12000
    docs = settle_exact(es, expected, timeout=60, procs=[col, a],
                        check_places=False)
    print("truncate+regrow: %d docs exact; truncations seen %d" % (
        len(docs), a.metric("sluice_agent_files_truncated_total")))
    assert a.metric("sluice_agent_files_truncated_total") == 3
    assert a.term() == 0
    assert col.term() == 0
