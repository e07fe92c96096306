"""Issue 10: include/exclude_lines, drop_fields/rename/add_fields and
redaction through the real agent (file output)."""

import json
import os
import time

from conftest import agent_config, wait_until


def read_events(workdir):
    path = os.path.join(workdir, "out.ndjson")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f.read().split("\n") if x]


def run(workdir, agents, lines, inp, n):
    log = os.path.join(workdir, "app.log")
    with open(log, "w") as f:
        f.write("".join(x + "\n" for x in lines))
    base = {"parser": "json"}
    base.update(inp)
    cfg = agent_config(os.path.join(workdir, "data"), [log],
                       {"type": "file",
                        "path": os.path.join(workdir, "out.ndjson")},
                       input=base)
    a = agents(workdir, cfg)
    a.start()
    wait_until(lambda: len(read_events(workdir)) >= n, 20,
               what="%d events" % n)
    time.sleep(0.3)
    evs = sorted(read_events(workdir), key=lambda e: e["log"]["offset"])
    assert len(evs) == n
    return a, evs, log


def test_include_exclude_lines_advance_registry(workdir, agents):
    lines = ['{"msg":"GET /health","level":"debug"}',
             '{"msg":"order placed","level":"info"}',
             '{"msg":"payment failed","level":"error"}',
             'not json but ERROR too',
             '{"msg":"debug noise ERROR","level":"debug"}']
    a, evs, log = run(workdir, agents, lines, {
        "include_lines": ["ERROR", '"level":"(info|error)"'],
        "exclude_lines": ['"level":"debug"']}, 3)
    assert [e["message"] for e in evs] == [
        "order placed", "payment failed", "not json but ERROR too"]
    wait_until(lambda: a.metric("sluice_agent_lines_excluded_total") == 2,
               5, what="excluded counted")
    assert a.stop() == 0
    with open(os.path.join(workdir, "data", "registry.json")) as f:
        reg = f.read().replace(" ", "")
    assert '"offset":%d' % os.path.getsize(log) in reg


def test_drop_rename_add_fields(workdir, agents):
    lines = ['{"msg":"hi","user":"ann","sid":"s1","trace_id":'
             '"4bf92f3577b34da6a3ce929d0e0736aa","n":7}']
    a, evs, _ = run(workdir, agents, lines, {
        "drop_fields": ["app.sid", "ecs", "agent.version"],
        "rename": {"app.user": "user.name", "app.n": "labels.count"},
        "add_fields": {"service.name": "checkout", "service.version": "1.4",
                       "cloud.region": "eu-west-1", "team": 3}}, 1)
    ev = evs[0]
    assert "sid" not in ev["app"] and "user" not in ev["app"]
    assert "ecs" not in ev and "version" not in ev["agent"]
    assert ev["user"] == {"name": "ann"}
    assert ev["labels"]["count"] == 7
    # overwrites the input's `service` (checkout from the harness)
    assert ev["service"] == {"name": "checkout", "version": "1.4"}
    assert ev["cloud"] == {"region": "eu-west-1"}
    assert ev["team"] == 3
    assert ev["trace"]["id"] == "4bf92f3577b34da6a3ce929d0e0736aa"
    assert a.stop() == 0


def test_redaction_end_to_end(workdir, agents):
    lines = [
        '{"msg":"paid with 4111 1111 1111 1111 order 1234567890123456"}',
        'login user=bob password=hunter2 token="abc.def" ok',
        'GET / Authorization: Bearer eyJhbGciOi.payload.sig from '
        'ann@example.com',
        'nothing secret here 2026-12-05',
        '{"msg":"x","password":"p@ss"}']
    a, evs, _ = run(workdir, agents, lines, {
        "redact": ["credit_card", "secrets", "email",
                   {"pattern": "user=(\\w)\\w*",
                    "replacement": "user=$1***"}]}, 5)
    m = [e["message"] for e in evs]
    assert m[0] == "paid with [REDACTED:card] order 1234567890123456"
    assert m[1] == 'login user=b*** password=[REDACTED] token="[REDACTED]" ok'
    assert m[2] == ("GET / Authorization: Bearer [REDACTED] from "
                    "[REDACTED:email]")
    assert m[3] == "nothing secret here 2026-12-05"
    assert "p@ss" not in json.dumps(evs[4])
    for i in (0, 1, 2, 4):
        assert "redacted" in evs[i].get("tags", []), evs[i]
    assert "redacted" not in evs[3].get("tags", [])
    assert a.metric("sluice_agent_events_redacted_total") == 4
    assert a.stop() == 0


def test_multiline_with_exclude_and_redact(workdir, agents):
    lines = ["2026-12-05 ERROR card 5500-0000-0000-0004 rejected",
             "\tat a.B.c(B.java:1)",
             "2026-12-05 DEBUG noise",
             "2026-12-05 INFO fine"]
    a, evs, _ = run(workdir, agents, lines, {
        "parser": "raw", "multiline": {"preset": "java",
                                       "timeout": "300ms"},
        "exclude_lines": ["DEBUG"], "redact": ["credit_card"]}, 2)
    assert evs[0]["message"] == ("2026-12-05 ERROR card [REDACTED:card] "
                                 "rejected\n\tat a.B.c(B.java:1)")
    assert evs[0]["tags"] == ["redacted"]
    assert evs[0]["log"]["flags"] == ["multiline"]
    assert evs[1]["message"] == "2026-12-05 INFO fine"
    assert a.stop() == 0


def test_bad_filter_config_is_refused(workdir, agents):
    from conftest import AGENT
    import subprocess
    cfg = os.path.join(workdir, "bad.yml")
    with open(cfg, "w") as f:
        f.write("data_dir: %s\ninputs:\n  - paths: [/tmp/x.log]\n"
                "    redact:\n      - pattern: '(unclosed'\n"
                "output:\n  type: stdout\n" % workdir)
    r = subprocess.run([AGENT, "--check", "-c", cfg], capture_output=True,
                       text=True)
    assert r.returncode == 2
    assert "bad.yml:5" in r.stderr + r.stdout, r.stderr
