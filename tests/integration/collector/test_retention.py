"""Retention (issue 13): `retention:` in its three modes against the ES
double, the job's metrics and /debug/state, `retention plan|apply` and the
--check errors and warnings."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import COLLECTOR, free_port, send_all, wait_until
from esdouble_fixture import start_esdouble
from harness import write_config as write_config_file

DAY_MS = 86400000


def events(dataset, n, tag):
    return [('{"@timestamp":"2026-11-25T12:00:00.000Z","message":"m %d",'
             '"event":{"id":"%s-%s-%d","dataset":"%s"}}'
             % (i, tag, dataset, i, dataset)).encode() for i in range(n)]


def count(es, index):
    r = es.request("POST", "/%s/_count" % index)
    return r.json()["count"] if r.status == 200 else 0


def streams(es, pattern="logs-*"):
    r = es.request("GET", "/_data_stream/" + pattern)
    return {s["name"]: s for s in r.json()["data_streams"]}


def retention_of(es, name):
    return (streams(es, name)[name].get("lifecycle") or {}).get(
        "data_retention")


def started_count(c):
    return len(c.find_logs(lambda e: e.get("message") == "started"))


def reload(c, config):
    n = started_count(c)
    c.config = config
    c.write_config()
    c.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: started_count(c) == n + 1, 20, what="restart")
    wait_until(lambda: c.ready() == 200, 15, what="ready after reload")


def fixed_ports():
    return {"http": {"listen": "127.0.0.1:%d" % free_port()}}


def test_lifecycle_per_rule_new_existing_and_sighup(es, make_collector):
    # A stream sluice did not make (built-in template): never touched.
    assert es.request("PUT", "/_data_stream/logs-foreign-default").status \
        == 200
    cfg = dict(fixed_ports(), retention={"mode": "lifecycle",
                                         "default": "14d"})
    c = make_collector(es, cfg, lj_port=free_port())
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    send_all(c.lj_port, events("app", 5, "a") + events("audit", 5, "a"))
    wait_until(lambda: count(es, "logs-audit-default") == 5, 20,
               what="audit indexed")
    assert retention_of(es, "logs-app-default") == "14d"
    assert retention_of(es, "logs-audit-default") == "14d"

    # SIGHUP with rules: existing streams follow, templates carry them.
    new = dict(c.config, retention={
        "mode": "lifecycle", "default": "30d",
        "rules": [{"match": "audit*", "keep": "365d"},
                  {"match": "a?c", "keep": "2d"}]})
    reload(c, new)
    wait_until(lambda: retention_of(es, "logs-audit-default") == "365d", 20,
               what="audit at 365d")
    wait_until(lambda: retention_of(es, "logs-app-default") == "30d", 20,
               what="app at 30d")
    assert retention_of(es, "logs-foreign-default") is None
    t = es.request("GET", "/_index_template/sluice-retention-rule-0").json()
    body = t["index_templates"][0]["index_template"]
    assert body["index_patterns"] == ["logs-audit*-*"]
    assert body["template"]["lifecycle"] == {"data_retention": "365d"}
    assert body["priority"] > 150
    # "a?c" is no index pattern: no template; the new-stream hook sets it.
    assert es.request("GET",
                      "/_index_template/sluice-retention-rule-1").status \
        == 404

    send_all(c.lj_port, events("audit.new", 3, "b") + events("abc", 3, "b"))
    wait_until(lambda: count(es, "logs-abc-default") == 3, 20,
               what="abc indexed")
    # Created by the rule's template with its retention at once.
    assert retention_of(es, "logs-audit.new-default") == "365d"
    wait_until(lambda: retention_of(es, "logs-abc-default") == "2d", 20,
               what="hook set abc to 2d")
    m = c.metrics()
    assert m["sluice_collector_retention_runs_total"] >= 1
    assert m["sluice_collector_retention_updates_total"] >= 1
    assert m.get("sluice_collector_retention_failed_requests_total", 0) == 0
    # In sync: a later run (a new dataset's) writes nothing more.
    runs, updates = (m["sluice_collector_retention_runs_total"],
                     m["sluice_collector_retention_updates_total"])
    send_all(c.lj_port, events("zzz", 2, "c"))
    wait_until(lambda: c.metric("sluice_collector_retention_runs_total") > runs, 20,
               what="run after a new dataset")
    assert retention_of(es, "logs-zzz-default") == "30d"
    assert c.metric("sluice_collector_retention_updates_total") == updates
    st, state = c.http_get("/debug/state")
    assert st == 200
    ret = json.loads(state)["retention"]
    assert ret["mode"] == "lifecycle" and ret["default"] == "30d"
    assert [r["match"] for r in ret["rules"]] == ["audit*", "a?c"]
    assert c.term() == 0

    # `retention apply` does what a run does: a new default reaches the
    # streams it covers, and plan shows the rule of each dataset.
    c.config["retention"]["default"] = "60d"
    c.write_config()
    p = cli(c.cfg_path, "plan", "--json")
    assert p.returncode == 0, p.stderr
    rules = {r["dataset"]: (r["rule"], r["keep"])
             for r in json.loads(p.stdout)["rules"]}
    assert rules["audit"] == ("audit*", "365d")
    assert rules["abc"] == ("a?c", "2d")
    assert rules["app"] == ("default", "60d")
    assert json.loads(p.stdout)["delete"] == []
    assert retention_of(es, "logs-app-default") == "30d"   # plan wrote none
    a = cli(c.cfg_path, "apply")
    assert a.returncode == 0, a.stderr
    assert "updated 2 " in a.stdout, a.stdout   # app and zzz
    assert retention_of(es, "logs-app-default") == "60d"
    assert retention_of(es, "logs-audit-default") == "365d"
    assert retention_of(es, "logs-foreign-default") is None


def test_ilm_policies_and_templates(es, make_collector):
    cfg = {"retention": {"mode": "ilm", "default": "7d",
                         "rules": [{"match": "audit*", "keep": "365d",
                                    "name": "audit"}]}}
    c = make_collector(es, cfg)
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    wait_until(lambda: c.metric("sluice_collector_retention_runs_total") >= 1, 20,
               what="first run")
    pols = es.request("GET", "/_ilm/policy").json()
    for name, keep in (("sluice-default", "7d"), ("sluice-audit", "365d")):
        phases = pols[name]["policy"]["phases"]
        assert phases["delete"] == {"min_age": keep,
                                    "actions": {"delete": {}}}
        assert phases["hot"]["actions"]["rollover"] == {
            "max_age": "30d", "max_primary_shard_size": "50gb"}
    t = es.request("GET", "/_index_template/sluice-retention-audit").json()
    body = t["index_templates"][0]["index_template"]
    assert body["template"]["settings"]["index"]["lifecycle"] == {
        "name": "sluice-audit", "prefer_ilm": True}
    logs = es.request("GET", "/_index_template/sluice-logs").json()
    lt = logs["index_templates"][0]["index_template"]["template"]
    assert lt["settings"]["index"]["lifecycle"]["name"] == "sluice-default"
    assert "lifecycle" not in lt

    send_all(c.lj_port, events("audit", 3, "i") + events("web", 3, "i"))
    wait_until(lambda: count(es, "logs-web-default") == 3, 20, what="indexed")
    s = streams(es)
    assert s["logs-audit-default"]["indices"][-1]["ilm_policy"] == \
        "sluice-audit"
    assert s["logs-web-default"]["indices"][-1]["ilm_policy"] == \
        "sluice-default"
    v = pols["sluice-audit"]["version"]
    c.term()

    # Updated in place: a new keep is PUT again; an unchanged one is not.
    c.config["retention"]["rules"][0]["keep"] = "400d"
    c.start()
    wait_until(lambda: es.request("GET", "/_ilm/policy/sluice-audit").json()
               ["sluice-audit"]["policy"]["phases"]["delete"]["min_age"]
               == "400d", 20, what="policy updated")
    pols2 = es.request("GET", "/_ilm/policy").json()
    assert pols2["sluice-audit"]["version"] == v + 1
    assert pols2["sluice-default"]["version"] == \
        pols["sluice-default"]["version"]
    assert c.term() == 0


def day(ms):
    return time.strftime("%Y.%m.%d", time.gmtime(ms / 1000))


def seed_managed(es):
    """Daily indices of various dates, a foreign one, and a data stream
    with old backing indices; returns the names that must go."""
    now = int(time.time() * 1000)
    names = {}
    for ds, age_days in (("app", 30), ("app", 10), ("app", 2), ("app", 0),
                         ("audit", 100), ("audit", 400)):
        n = "sluice-%s-%s" % (ds, day(now - age_days * DAY_MS))
        assert es.request("PUT", "/" + n).status == 200
        names[(ds, age_days)] = n
    for n in ("other-app-2020.01.01", "sluice-app-notadate",
              "sluicex-app-2020.01.01"):
        assert es.request("PUT", "/" + n).status == 200
    return now, names


def test_managed_deletes_exactly_expired(es, make_collector):
    now, names = seed_managed(es)
    cfg = {"elasticsearch": {"index_mode": "daily"},
           "retention": {"mode": "managed", "default": "14d",
                         "interval": "1h",
                         "rules": [{"match": "audit*", "keep": "365d"}]}}
    c = make_collector(es, cfg)
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    wait_until(lambda: c.metric("sluice_collector_retention_runs_total") >= 1, 20,
               what="first run")
    assert c.metric("sluice_collector_retention_deleted_indices_total") == 2
    # A sluice data stream (the dead letters' kind) with three backing
    # indices: the oldest two rolled over long ago, the write index is
    # old too but must stay.
    ds = "logs-old-default"
    assert es.request("PUT", "/_data_stream/" + ds).status == 200
    es.request("POST", "/%s/_rollover" % ds)
    es.request("POST", "/%s/_rollover" % ds)
    back = [i["index_name"] for i in streams(es, ds)[ds]["indices"]]
    for k, name in enumerate(back):
        es.set_creation_date(name, now - (60 - k) * DAY_MS)
    assert streams(es, ds)[ds]["template"] == "sluice-logs"

    c.term()
    c.start()
    wait_until(lambda: c.metric("sluice_collector_retention_runs_total") >= 1, 20,
               what="a run")
    left = {r["index"] for r in es.request(
        "GET", "/_cat/indices?format=json&h=index").json()}
    gone = {names[("app", 30)], names[("audit", 400)], back[0], back[1]}
    assert not gone & left, gone & left
    keep = {names[("app", 10)], names[("app", 2)], names[("app", 0)],
            names[("audit", 100)], back[2], "other-app-2020.01.01",
            "sluice-app-notadate", "sluicex-app-2020.01.01"}
    assert keep <= left, keep - left
    m = c.metrics()
    # This run: the two old backing indices (the daily ones went in the
    # first run).
    assert m["sluice_collector_retention_deleted_indices_total"] == 2
    assert m["sluice_collector_retention_last_run_timestamp_seconds"] > now / 1000 - 60
    dels = c.find_logs(lambda e: e.get("message") == "deleted index")
    assert {e["index"] for e in dels} == gone
    assert len(dels) == 4
    assert all("rule" in e and "age_days" in e for e in dels)
    st, state = c.http_get("/debug/state")
    recent = json.loads(state)["retention"]["recent_deletions"]
    assert {e["index"] for e in recent} == {back[0], back[1]}
    assert c.term() == 0


def cli(cfg_path, *args):
    return subprocess.run([COLLECTOR, "-c", cfg_path, "retention"] +
                          list(args), capture_output=True, text=True,
                          timeout=60)


def test_plan_and_apply(es, make_collector, tmp_path):
    now, names = seed_managed(es)
    c = make_collector(es, {"retention": {
        "mode": "managed", "default": "14d",
        "rules": [{"match": "audit*", "keep": "365d"}]}}, start=False)
    c.write_config()
    p = cli(c.cfg_path, "plan", "--json")
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert set(plan) == {"rules", "delete"}
    assert {(r["dataset"], r["rule"], r["keep"]) for r in plan["rules"]} \
        == {("app", "default", "14d"), ("audit", "audit*", "365d")}
    by = {d["index"]: d for d in plan["delete"]}
    assert set(by) == {names[("app", 30)], names[("audit", 400)]}
    assert by[names[("app", 30)]]["rule"] == "default"
    assert by[names[("audit", 400)]]["rule"] == "audit*"
    assert 28 <= by[names[("app", 30)]]["age_days"] <= 30
    assert all(isinstance(d["bytes"], int) for d in plan["delete"])
    # plan deletes nothing
    assert es.request("HEAD", "/" + names[("app", 30)]).status == 200

    t = cli(c.cfg_path, "plan")
    assert t.returncode == 0, t.stderr
    assert "would delete 2 indices" in t.stdout
    assert names[("app", 30)] in t.stdout and "audit*" in t.stdout

    a = cli(c.cfg_path, "apply", "--json")
    assert a.returncode == 0, a.stderr
    assert {d["index"] for d in json.loads(a.stdout)["delete"]} == set(by)
    assert es.request("HEAD", "/" + names[("app", 30)]).status == 404
    assert es.request("HEAD", "/" + names[("app", 10)]).status == 200
    assert cli(c.cfg_path, "plan", "--json").returncode == 0
    assert json.loads(cli(c.cfg_path, "plan", "--json").stdout)["delete"] \
        == []

    # A failed delete (ES refuses) makes apply fail.
    es.request("PUT", "/sluice-app-2001.01.01")
    es.set_faults(fail_status=500, fail_count=5,
                  fail_path="/sluice-app-2001.01.01")
    bad = cli(c.cfg_path, "apply")
    assert bad.returncode != 0
    assert "sluice-app-2001.01.01" in bad.stderr
    es.clear_faults()

    # ES down: non-zero with the reason.
    c.config["elasticsearch"]["hosts"] = ["http://127.0.0.1:%d" %
                                          free_port()]
    c.write_config()
    down = cli(c.cfg_path, "plan")
    assert down.returncode == 1 and "_data_stream" in down.stderr
    assert cli(c.cfg_path, "frobnicate").returncode == 2


def test_check_errors_and_never_match_warning(tmp_path):
    base = {"data_dir": str(tmp_path / "d"),
            "inputs": [{"listen": "127.0.0.1:0"}],
            "elasticsearch": {"hosts": ["http://127.0.0.1:9"]}}

    def check(ret):
        path = str(tmp_path / "c.yml")
        write_config_file(path, dict(base, retention=ret))
        return subprocess.run([COLLECTOR, "-c", path, "--check"],
                              capture_output=True, text=True, timeout=30)

    for ret, key in (
            ({"mode": "managed", "default": "14x"}, "retention.default"),
            ({"mode": "managed", "default": "0d"}, "retention.default"),
            ({"mode": "managed", "interval": "1w"}, "retention.interval"),
            ({"mode": "lifecycle", "rules": [{"match": "a", "keep": "-1d"}]},
             "retention.rules[0].keep"),
            ({"mode": "lifecycle", "rules": [{"match": "a", "keep": "5"}]},
             "retention.rules[0].keep"),
            ({"mode": "ilm", "rules": [{"match": "a", "keep": "1d",
                                        "name": "Bad Name"}]},
             "retention.rules[0].name"),
            ({"mode": "sometimes"}, "retention.mode")):
        p = check(ret)
        assert p.returncode == 2, (ret, p.stdout, p.stderr)
        assert "c.yml:" in p.stderr and key + ":" in p.stderr, p.stderr

    p = check({"mode": "managed", "default": "14d",
               "rules": [{"match": "*", "keep": "3d"},
                         {"match": "audit*", "keep": "365d"}]})
    assert p.returncode == 0, p.stderr
    assert "warning: " in p.stderr and "retention.rules[1].match" in p.stderr
    assert "never match" in p.stderr and 'rules[0] ("*")' in p.stderr
    assert "config ok" in p.stdout

    p = check({"mode": "managed", "default": "14d",
               "rules": [{"match": "audit*", "keep": "3d"},
                         {"match": "audit.?", "keep": "365d"},
                         {"match": "app", "keep": "1h"},
                         {"match": "*", "keep": "1d"},
                         {"match": "Web", "keep": "1d"}]})
    assert p.returncode == 0, p.stderr
    warned = [ln for ln in p.stderr.splitlines() if "never match" in ln]
    assert len(warned) == 2, p.stderr
    assert "rules[1].match" in warned[0] and 'rules[0] ("audit*")' in \
        warned[0]
    assert "rules[4].match" in warned[1] and "lower case" in warned[1]


def test_cli_uses_the_daemons_connection_settings(tmp_path, make_collector):
    """HTTPS with a private CA and basic auth from the same config keys
    the daemon reads; a wrong password fails with the 401."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI needed")
    d = str(tmp_path)

    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    openssl("req", "-x509", *ec, "-nodes", "-days", "2", "-subj", "/CN=ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", *ec, "-nodes", "-subj", "/CN=localhost", "-keyout",
            "es.key", "-out", "es.csr")
    with open(os.path.join(d, "es.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "es.csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "es.ext",
            "-out", "es.pem")
    with start_esdouble("--user", "elastic:s3cret", "--tls-cert",
                        os.path.join(d, "es.pem"), "--tls-key",
                        os.path.join(d, "es.key")) as es:
        es.request("PUT", "/sluice-app-2020.01.01")
        c = make_collector(es, {
            "elasticsearch": {"username": "elastic", "password": "s3cret",
                              "ssl": {"ca": os.path.join(d, "ca.pem")}},
            "retention": {"mode": "managed", "default": "14d"}},
            start=False)
        c.write_config()
        p = cli(c.cfg_path, "plan", "--json")
        assert p.returncode == 0, p.stderr
        assert [x["index"] for x in json.loads(p.stdout)["delete"]] == \
            ["sluice-app-2020.01.01"]
        c.config["elasticsearch"]["password"] = "wrong"
        c.write_config()
        p = cli(c.cfg_path, "apply")
        assert p.returncode == 1 and "HTTP 401" in p.stderr, p.stderr
        assert "wrong" not in p.stderr
        assert es.request("HEAD", "/sluice-app-2020.01.01").status == 200


def test_managed_runs_every_interval_and_counts_failures(es, make_collector):
    c = make_collector(es, {"retention": {"mode": "managed",
                                          "default": "7d",
                                          "interval": "1s"}})
    wait_until(lambda: c.metric("sluice_collector_retention_runs_total") >= 1, 20,
               what="first run")
    # An ES failure is counted, and the next run (1 s later) goes on.
    es.set_faults(fail_status=500, fail_count=1, fail_path="/_cat/indices")
    wait_until(lambda: c.metric("sluice_collector_retention_failed_requests_total") >= 1, 20,
               what="a failed run")
    assert c.metric("sluice_collector_retention_failed_runs_total") >= 1
    old = "sluice-late-%s" % day(int(time.time() * 1000) - 30 * DAY_MS)
    es.request("PUT", "/" + old)
    wait_until(lambda: es.request("HEAD", "/" + old).status == 404, 20,
               what="deleted by a later run")
    assert c.metric("sluice_collector_retention_deleted_indices_total") == 1
    assert c.ready() == 200
    st, state = c.http_get("/debug/state")
    ret = json.loads(state)["retention"]
    assert ret["runs"] >= 3 and ret["last_error"]
    assert c.term() == 0
