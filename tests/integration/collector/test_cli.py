"""sluice-collector --check, broken configs, --version."""

import os
import re
import subprocess

import pytest

from conftest import COLLECTOR, SOURCE


def run(*args, env=None):
    return subprocess.run([COLLECTOR] + list(args), capture_output=True,
                          text=True, timeout=20, env=env)


def test_check_example_config_ok(tmp_path):
    env = dict(os.environ, SLUICE_DATA_DIR=str(tmp_path))
    r = run("--check", "-c", os.path.join(SOURCE, "deploy", "config",
                                          "collector.yml"), env=env)
    assert r.returncode == 0, r.stderr
    assert "ok" in (r.stdout + r.stderr)
    # --check only validates: nothing is created or listened on
    assert os.listdir(tmp_path) == []


BROKEN = [
    # name, yaml, line, key pattern
    ("bad_size", "data_dir: /tmp/x\ninputs:\n  - type: lumberjack\n"
     "spool:\n  max_bytes: lots\nelasticsearch:\n  hosts: [http://h:9200]\n",
     5, r"spool\.max_bytes"),
    ("unknown_key", "data_dir: /tmp/x\ninputs:\n  - type: lumberjack\n"
     "    listn: 0.0.0.0:5044\nelasticsearch:\n  hosts: [http://h:9200]\n",
     4, r"inputs(\[0\]|\.0)?\.listn"),
    ("bad_enum", "data_dir: /tmp/x\ninputs:\n  - type: lumberjack\n"
     "elasticsearch:\n  hosts: [http://h:9200]\n  index_mode: weekly\n",
     6, r"elasticsearch\.index_mode"),
    ("bad_duration", "data_dir: /tmp/x\nshutdown_timeout: soon\n"
     "inputs:\n  - type: lumberjack\nelasticsearch:\n  hosts: [http://h]\n",
     2, r"shutdown_timeout"),
    # gzip levels are 0 (stored) ..9; anything else used to fall back to
    # zlib's default silently
    ("bad_compression_level", "data_dir: /tmp/x\ninputs:\n"
     "  - type: lumberjack\nelasticsearch:\n  hosts: [http://h:9200]\n"
     "  compression_level: 10\n",
     6, r"elasticsearch\.compression_level"),
    ("negative_compression_level", "data_dir: /tmp/x\ninputs:\n"
     "  - type: lumberjack\nelasticsearch:\n  hosts: [http://h:9200]\n"
     "  compression_level: -1\n",
     6, r"elasticsearch\.compression_level"),
]



def _cfg(inp="", es="  hosts: [http://h:9200]\n", top=""):
    """data_dir on line 1, inputs on 2, the input's own keys from line 4,
    then elasticsearch."""
    return ("data_dir: /tmp/x\ninputs:\n  - type: lumberjack\n" + inp +
            "elasticsearch:\n" + es + top)


# Issue 15: each of these passed --check (and then misbehaved or failed at
# start): refuse with file:line: key: reason.
OUT_OF_RANGE = [
    ("listen_port_99999", _cfg("    listen: 0.0.0.0:99999\n"), 4,
     r"inputs\[0\]\.listen"),
    ("listen_no_port", _cfg("    listen: localhost\n"), 4,
     r"inputs\[0\]\.listen"),
    ("hosts_empty", _cfg(es="  hosts: []\n"), 5, r"elasticsearch\.hosts"),
    ("hosts_empty_string", _cfg(es="  hosts: ['']\n"), 5,
     r"elasticsearch\.hosts"),
    ("max_connections_0", _cfg("    max_connections: 0\n"), 4,
     r"inputs\[0\]\.max_connections"),
    ("max_connections_neg", _cfg("    max_connections: -5\n"), 4,
     r"inputs\[0\]\.max_connections"),
    ("compression_level_42", _cfg(es="  hosts: [http://h:9200]\n"
                                  "  compression_level: 42\n"), 6,
     r"elasticsearch\.compression_level"),
    ("max_frame_100GiB", _cfg("    max_frame: 100GiB\n"), 4,
     r"inputs\[0\]\.max_frame"),
    ("max_frame_0", _cfg("    max_frame: 0\n"), 4,
     r"inputs\[0\]\.max_frame"),
    ("max_window_0", _cfg("    max_window: 0\n"), 4,
     r"inputs\[0\]\.max_window"),
    ("max_window_neg", _cfg("    max_window: -1\n"), 4,
     r"inputs\[0\]\.max_window"),
    ("max_inflate_1TiB", _cfg("    max_inflate: 1TiB\n"), 4,
     r"inputs\[0\]\.max_inflate"),
    ("idle_timeout_neg", _cfg("    idle_timeout: -1s\n"), 4,
     r"inputs\[0\]\.idle_timeout"),
    ("flush_bytes_0", _cfg("    flush_bytes: 0\n"), 4,
     r"inputs\[0\]\.flush_bytes"),
    ("http_listen_port", _cfg(top="http:\n  listen: 127.0.0.1:70000\n"), 7,
     r"http\.listen"),
    ("segment_bytes_0", _cfg(top="spool:\n  segment_bytes: 0\n"), 7,
     r"spool\.segment_bytes"),
    ("spool_max_bytes_neg", _cfg(top="spool:\n  max_bytes: -1\n"), 7,
     r"spool\.max_bytes"),
    ("bulk_max_events_0", _cfg(es="  hosts: [http://h:9200]\n"
                               "  bulk_max_events: 0\n"), 6,
     r"elasticsearch\.bulk_max_events"),
    ("max_inflight_1000", _cfg(es="  hosts: [http://h:9200]\n"
                               "  max_inflight: 1000\n"), 6,
     r"elasticsearch\.max_inflight"),
    ("timeout_0", _cfg(es="  hosts: [http://h:9200]\n  timeout: 0s\n"), 6,
     r"elasticsearch\.timeout"),
    ("shutdown_timeout_neg", _cfg(top="shutdown_timeout: -5s\n"), 6,
     r"shutdown_timeout"),
    # refused at start only, before issue 14
    ("es_ssl_cert_without_key", _cfg(es="  hosts: [http://h:9200]\n"
                                     "  ssl:\n    cert: /x.pem\n"), 7,
     r"elasticsearch\.ssl"),
]
BROKEN += OUT_OF_RANGE


@pytest.mark.parametrize("name,text,line,key", BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_check_broken_config_exits_2(tmp_path, name, text, line, key):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(text)
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    # file:line: key: what is wrong
    m = re.search(r"(\S*bad\.yml):(\d+): (\S+): (.+)", r.stderr)
    assert m, r.stderr
    assert int(m.group(2)) == line, r.stderr
    assert re.fullmatch(key, m.group(3)), r.stderr
    assert m.group(4).strip()


def test_check_compression_level_0_ok(tmp_path):
    cfg = tmp_path / "ok.yml"
    cfg.write_text("data_dir: /tmp/x\ninputs:\n  - type: lumberjack\n"
                   "elasticsearch:\n  hosts: [http://h:9200]\n"
                   "  compression_level: 0\n")
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 0, r.stderr


def test_missing_required_key_exits_2(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text("data_dir: /tmp/x\ninputs:\n  - type: lumberjack\n")
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 2
    assert "elasticsearch" in r.stderr and "bad.yml" in r.stderr, r.stderr


def test_broken_config_refuses_to_start(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(BROKEN[0][1])
    r = run("-c", str(cfg))
    assert r.returncode == 2
    assert "spool.max_bytes" in r.stderr


def test_version():
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert re.match(r"sluice-collector \d+\.\d+", r.stdout), r.stdout
    # Only features that work: tls (the Lumberjack listener's ssl and
    # HTTPS to ES) when built with OpenSSL; nothing uses librdkafka.
    feats = r.stdout.splitlines()[1].split(":", 1)[1].split()
    assert "kafka" not in feats, r.stdout
    with open(os.path.join(os.path.dirname(os.path.dirname(COLLECTOR)),
                           "sl_config.h")) as f:
        tls = "#define HAVE_OPENSSL\n" in f.read()
    assert ("tls" in feats) == tls, r.stdout


# Issue 14: --check reports every error of the file, not only the first.
THREE_ERRORS = ("data_dir: /tmp/x\n"
                "inputs:\n"
                "  - type: lumberjack\n"
                "    max_window: 0\n"                  # 4: range (check)
                "    listn: 0.0.0.0:5044\n"            # 5: unknown key
                "elasticsearch:\n"
                "  hosts: [http://h:9200]\n"
                "  index_mode: weekly\n")              # 8: enum (schema)


def test_check_reports_every_error(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(THREE_ERRORS)
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 3, r.stderr
    got = [re.match(re.escape(str(cfg)) + r":(\d+): (\S+): (.+)", l)
           for l in lines]
    assert all(got), r.stderr
    assert [(int(m.group(1)), m.group(2)) for m in got] == [
        (4, "inputs[0].max_window"), (5, "inputs[0].listn"),
        (8, "elasticsearch.index_mode")], r.stderr
    # and the same at start-up
    r = run("-c", str(cfg))
    assert r.returncode == 2
    assert r.stderr.splitlines() == lines


def test_check_many_errors_capped(tmp_path):
    cfg = tmp_path / "bad.yml"
    cfg.write_text(_cfg(top="".join("k%d: 1\n" % i for i in range(130))))
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 101, r.stderr[-500:]
    assert lines[-1] == "%s: 30 more errors not shown" % cfg


def test_check_ok_wording(tmp_path):
    env = dict(os.environ, SLUICE_DATA_DIR=str(tmp_path))
    path = os.path.join(SOURCE, "deploy", "config", "collector.yml")
    r = run("--check", "-c", path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: config ok\n" % path, r.stdout


# Issue 14: elasticsearch.pipeline goes into the _bulk URL as it is.
@pytest.mark.parametrize("value,ok", [
    ("site-enrich", True), ("logs@custom.v2_1", True), ("_none", True),
    ("'a b'", False), ("'x&refresh=true'", False), ("'p/q'", False),
    ("''", False), ("'%s'" % ("p" * 256), False)])
def test_check_pipeline(tmp_path, value, ok):
    cfg = tmp_path / "p.yml"
    cfg.write_text(_cfg(es="  hosts: [http://h:9200]\n"
                        "  pipeline: %s\n" % value))
    r = run("--check", "-c", str(cfg))
    if ok:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 2
    assert re.match(re.escape(str(cfg)) + r":6: elasticsearch\.pipeline: ",
                    r.stderr), r.stderr


def test_check_refuses_http_listen_that_start_refuses(tmp_path):
    """A host name passed --check as http.listen, but the HTTP listener
    takes only IP addresses (and localhost): start-up failed."""
    cfg = tmp_path / "c.yml"
    cfg.write_text(_cfg(top="http:\n  listen: myhost:5041\n"))
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 2
    assert re.search(r"c\.yml:\d+: http\.listen: .*myhost:5041", r.stderr), \
        r.stderr
    path = os.path.join(SOURCE, "deploy", "config", "collector.yml")
    # The Lumberjack input's listen had the same gap.
    cfg.write_text(_cfg("    listen: myhost:5044\n"))
    r = run("--check", "-c", str(cfg))
    assert r.returncode == 2
    assert re.search(r"c\.yml:4: inputs\[0\]\.listen: .*myhost:5044",
                     r.stderr), r.stderr
    for listen, rc in (("0.0.0.0:5041", 0), ("localhost:0", 0), ("x", 2)):
        env = dict(os.environ, SLUICE_HTTP_LISTEN=listen,
                   SLUICE_DATA_DIR=str(tmp_path))
        r = run("--check", "-c", path, env=env)
        assert r.returncode == rc, (listen, r.stderr)
