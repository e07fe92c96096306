"""Operator commands of the collector: `test output` against the ES
double, a closed port and wrong credentials; unknown subcommands refused;
--log-format text."""

import json
import os
import socket
import subprocess

from conftest import COLLECTOR, collector_config, start_esdouble
from harness import run_until_logged


def run(*args, timeout=60):
    return subprocess.run([COLLECTOR] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def cfg_file(tmp_path, cfg, name="collector.yml"):
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return str(p)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_test_output_es_and_dirs(tmp_path, es):
    cfg = collector_config(str(tmp_path / "data"), es.url)
    cfg["archive"] = {"path": str(tmp_path / "archive")}
    r = run("-c", cfg_file(tmp_path, cfg), "test", "output")
    assert r.returncode == 0, r.stdout + r.stderr
    for step in ("elasticsearch: %s..." % es.url, "talk to server... OK",
                 "authentication... OK", "product: Elasticsearch... OK",
                 "version >= 8... OK", "archive: %s" % (tmp_path / "archive"),
                 "data_dir (spool)"):
        assert step in r.stdout, r.stdout
    # Nothing indexed, nothing created.
    assert es.request("GET", "/_cat/indices?format=json").json() == []
    assert not (tmp_path / "archive").exists()
    assert not (tmp_path / "data").exists()


def test_test_output_closed_port_and_bad_dir(tmp_path, es):
    port = closed_port()
    cfg = collector_config(str(tmp_path / "data"), es.url)
    cfg["elasticsearch"]["hosts"] = [es.url, "http://127.0.0.1:%d" % port]
    (tmp_path / "file").write_text("x")
    cfg["archive"] = {"path": str(tmp_path / "file" / "archive")}
    r = run("-c", cfg_file(tmp_path, cfg), "test", "output")
    assert r.returncode == 1, r.stdout
    assert "elasticsearch: http://127.0.0.1:%d..." % port in r.stdout
    assert r.stdout.count("talk to server... OK") == 1
    assert "talk to server... ERROR" in r.stdout and "onnect" in r.stdout
    assert "directory... ERROR" in r.stdout and "ot a directory" in \
        r.stdout, r.stdout


def test_test_output_auth(tmp_path):
    with start_esdouble("--user", "elastic:s3cret") as d:
        cfg = collector_config(str(tmp_path / "data"), d.url)
        cfg["elasticsearch"].update(username="elastic", password="wrong")
        r = run("-c", cfg_file(tmp_path, cfg), "test", "output")
        assert r.returncode == 1
        assert "authentication... ERROR HTTP 401" in r.stdout, r.stdout
        assert "wrong" not in r.stdout + r.stderr
        cfg["elasticsearch"]["password"] = "s3cret"
        r = run("-c", cfg_file(tmp_path, cfg), "test", "output")
        assert r.returncode == 0, r.stdout
        assert "user: elastic" in r.stdout


def test_unknown_subcommand_refused(tmp_path, es):
    data = tmp_path / "data"
    p = cfg_file(tmp_path, collector_config(str(data), es.url))
    for args, what in ((["bogus"], "unknown subcommand 'bogus'"),
                       (["test"], "usage: test output"),
                       (["test", "input"], "usage: test output")):
        r = run("-c", p, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert what in r.stderr, r.stderr
    assert not data.exists()


def test_log_format_text(tmp_path, es):
    cfg = collector_config(str(tmp_path / "data"), es.url)
    lines, rc = run_until_logged(
        [COLLECTOR, "-c", cfg_file(tmp_path, cfg), "--log-format", "text"],
        " collector: started ")
    assert rc == 0, lines
    started = [ln for ln in lines if " collector: started " in ln]
    assert started, lines
    ts, level, _ = started[0].split(None, 2)
    assert len(ts) == 24 and ts.endswith("Z") and level == "INFO"
    assert not any(ln.startswith("{") for ln in lines), lines
    # The log_format key does the same.
    cfg["log_format"] = "text"
    r = run("-c", cfg_file(tmp_path, cfg), "--check")
    assert r.returncode == 0, r.stderr
    cfg["log_format"] = "xml"
    r = run("-c", cfg_file(tmp_path, cfg), "--check")
    assert r.returncode == 2 and "log_format" in r.stderr
