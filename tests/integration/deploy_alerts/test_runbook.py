"""deploy/RUNBOOK.md: the scenarios the issue asks for are there, its
links resolve, and the config keys and subcommands it tells an operator
to use exist in the binaries (`--help` lists every config key)."""

import re
import subprocess

import pytest

from conftest import RUNBOOK, read, runbook_anchors
from harness import AGENT, COLLECTOR

SCENARIOS = [
    "elasticsearch-down", "disk-full", "agent-registry-disk",
    "collector-spool-disk", "agent-lagging",
    "mapping-conflicts-and-dead-letters", "elasticsearch-rejecting-with-429",
    "retention-failing", "replay-after-loss", "kibana-objects",
]

# Config keys the runbook names, per binary (dotted paths as in --help).
COLLECTOR_KEYS = [
    "http.listen", "spool.max_bytes", "elasticsearch.max_inflight",
    "elasticsearch.bulk_max_bytes", "elasticsearch.retry.backoff_max",
    "elasticsearch.deadletter_index", "elasticsearch.password",
    "elasticsearch.api_key", "archive.keep", "archive.max_total_bytes",
    "retention.interval",
]
AGENT_KEYS = [
    "http.listen", "queue.max_bytes", "registry_flush", "harvester_limit",
    "workers", "inputs.start_at",
]


def help_keys(binary):
    """Dotted config paths from `--help` (two spaces of indent a level)."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True,
                         timeout=30)
    text = out.stdout + out.stderr
    body = text.split("configuration keys:", 1)[1]
    keys, stack = set(), []
    for line in body.splitlines():
        m = re.match(r"^( +)([a-z_]+)(\[\])? \(", line)
        if not m:
            continue
        level = len(m.group(1)) // 2 - 1
        stack = stack[:level] + [m.group(2)]
        keys.add(".".join(stack))
    return keys


def test_scenarios_present():
    anchors = runbook_anchors()
    missing = [s for s in SCENARIOS if s not in anchors]
    assert not missing, missing


def test_internal_links_resolve():
    anchors = runbook_anchors()
    links = re.findall(r"\]\(#([^)]+)\)", read(RUNBOOK))
    assert len(links) > 20
    bad = sorted({a for a in links if a not in anchors})
    assert not bad, bad


@pytest.mark.parametrize("binary,keys", [(COLLECTOR, COLLECTOR_KEYS),
                                         (AGENT, AGENT_KEYS)],
                         ids=["collector", "agent"])
def test_config_keys_exist(binary, keys):
    have = help_keys(binary)
    assert len(have) > 30, have
    missing = [k for k in keys if k not in have]
    assert not missing, missing
    rb = read(RUNBOOK)
    for k in keys:
        assert k.split(".")[-1] in rb, k


def test_collector_subcommands_exist():
    """replay, trace and retention plan are what the runbook has an
    operator run: each is a subcommand the collector knows (an unknown
    one is refused with 'unknown subcommand' before the config is
    read)."""
    rb = read(RUNBOOK)
    for sub in (["replay"], ["trace"], ["retention", "plan"]):
        assert "sluice-collector -c" in rb
        assert " ".join(sub) in rb, sub
        r = subprocess.run([COLLECTOR, "-c", "/nonexistent.yml"] + sub,
                           capture_output=True, text=True, timeout=30)
        assert "unknown subcommand" not in r.stderr, (sub, r.stderr)


def test_agent_log_messages_exist():
    """Self-log messages the runbook tells an operator to look for are
    messages the agent logs (it named `config invalid`, which nothing
    logs: a bad config prints `file:line: key: reason` lines)."""
    import os
    from harness import SOURCE
    rb = read(RUNBOOK)
    src = ""
    for name in os.listdir(os.path.join(SOURCE, "agent")):
        if name.endswith(".c"):
            src += read(os.path.join(SOURCE, "agent", name))
    for msg in ("cannot start", "registry write failed"):
        assert msg in rb, msg
        assert re.search(r'sl_log\(SL_LOG_ERROR, "[a-z.]+", "%s"' % msg,
                         src), msg
    assert "`config invalid`" not in rb
