"""Least privilege on disk: both binaries create their data directories
0700 and their state files (spool segments, spool cursor, agent registry,
agent id) 0600, whatever the umask lets through."""

import os
import stat

from conftest import AgentProc, agent_config, wait_until


def walk_modes(root):
    """{relative path: (is_dir, mode bits)} of everything under root."""
    out = {".": (True, stat.S_IMODE(os.stat(root).st_mode))}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (stat.S_ISDIR(st.st_mode),
                                            stat.S_IMODE(st.st_mode))
    return out


def assert_private(root):
    modes = walk_modes(root)
    loose = {p: oct(m) for p, (d, m) in modes.items()
             if m != (0o700 if d else 0o600)}
    assert not loose, "not private: %r" % loose
    return modes


def test_collector_and_agent_state_is_private(collectors, es, tmp_path):
    old = os.umask(0o022)  # a usual umask: 0755/0644 unless we ask less
    try:
        c = collectors(es.url)
        log = tmp_path / "app.log"
        log.write_text("".join('{"msg":"m %d"}\n' % i for i in range(200)))
        out = {"type": "lumberjack", "hosts": [c.address]}
        agent_dir = str(tmp_path / "var" / "lib" / "agent")
        a = AgentProc(tmp_path, "agent", agent_config(
            agent_dir, [str(log)], out, dataset="sec"))
        try:
            a.start()
            es.wait_for_count("logs-sec-*", 200, timeout=60)
            wait_until(lambda: os.path.exists(
                os.path.join(agent_dir, "registry.json")) or any(
                "registry" in n for n in os.listdir(agent_dir)), 20, 0.05,
                "registry file")
        finally:
            assert a.term() == 0
            a.cleanup()
        c.term()
    finally:
        os.umask(old)
    cm = assert_private(c.data_dir)
    assert any(p.endswith(".seg") for p in cm), cm
    am = assert_private(agent_dir)
    assert "agent-id" in am, am
    # mkdir -p made the parents of the agent's data_dir private too.
    assert stat.S_IMODE(os.stat(tmp_path / "var").st_mode) == 0o700
