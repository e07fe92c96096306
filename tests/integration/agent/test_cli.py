"""Command line: --check, --version, --help, bad configs."""

import os
import re
import subprocess

from conftest import AGENT, BUILD, SOURCE


def run(*args, env=None):
    return subprocess.run([AGENT] + list(args), capture_output=True,
                          text=True, timeout=20, env=env)


def check_bad(tmp_path, text):
    """`--check` of a config with `text` must exit 2; returns its path
    and the result."""
    p = tmp_path / "bad.yml"
    p.write_text(text)
    r = run("--check", "-c", str(p))
    assert r.returncode == 2, r.stderr
    return p, r


def test_check_example_config():
    path = os.path.join(SOURCE, "deploy", "config", "agent.yml")
    r = run("--check", "-c", path)
    assert r.returncode == 0, r.stderr
    assert "config ok" in r.stdout


def test_check_bad_config_reports_file_and_line(tmp_path):
    p, r = check_bad(tmp_path, "data_dir: /tmp/x\n"
                     "inputs:\n"
                     "  - paths: [/tmp/*.log]\n"
                     "    parser: xml\n"
                     "output:\n"
                     "  type: lumberjack\n"
                     "  hosts: [127.0.0.1:5044]\n")
    assert re.search(re.escape(str(p)) + r":4:.*parser", r.stderr), r.stderr


def test_check_unknown_key(tmp_path):
    p, r = check_bad(tmp_path, "data_dir: /tmp/x\n"
                     "inputs:\n"
                     "  - paths: [/tmp/*.log]\n"
                     "output:\n"
                     "  hosts: [127.0.0.1:5044]\n"
                     "  windw: 10\n")
    assert re.search(re.escape(str(p)) + r":6:.*windw", r.stderr), r.stderr


def test_check_semantic_error(tmp_path):
    # Valid per row, invalid as a whole: lumberjack needs hosts.
    p, r = check_bad(tmp_path, "data_dir: /tmp/x\n"
                     "inputs:\n"
                     "  - paths: [/tmp/*.log]\n"
                     "output:\n"
                     "  type: lumberjack\n")
    assert "output.hosts" in r.stderr and str(p) in r.stderr, r.stderr


def test_check_missing_data_dir(tmp_path):
    p, r = check_bad(tmp_path, "inputs:\n"
                     "  - paths: [/tmp/*.log]\n"
                     "output:\n"
                     "  type: stdout\n")
    assert "data_dir" in r.stderr


def test_env_expansion(tmp_path):
    p = tmp_path / "env.yml"
    p.write_text("data_dir: ${AGENT_TEST_DIR:-/tmp/sluice-x}\n"
                 "inputs:\n"
                 "  - paths: [/tmp/*.log]\n"
                 "output:\n"
                 "  type: tcp\n"
                 "  hosts: [\"${AGENT_TEST_HOST}\"]\n")
    env = dict(os.environ, AGENT_TEST_HOST="127.0.0.1:9")
    assert run("--check", "-c", str(p), env=env).returncode == 0
    env.pop("AGENT_TEST_HOST")
    assert run("--check", "-c", str(p), env=env).returncode == 2


def built_with(name):
    """True when the build's sl_config.h defines HAVE_<name>."""
    with open(os.path.join(BUILD, "sl_config.h")) as f:
        return "#define HAVE_%s\n" % name in f.read()


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0
    assert "sluice-agent" in r.stdout
    # Only features that work: TLS on the Lumberjack output when OpenSSL
    # is built in; never kafka (nothing uses librdkafka).
    feats = r.stdout.splitlines()[1].split(":", 1)[1].split()
    assert ("tls" in feats) == built_with("OPENSSL"), r.stdout
    assert "kafka" not in feats, r.stdout
    r = run("--help")
    assert r.returncode == 0
    for key in ("data_dir", "queue", "max_bytes", "compression_level",
                "flush_interval", "max_line_bytes"):
        assert key in r.stdout


# Issue 14: --check reports every error of the file, each as
# file:line: key: reason, in file order.
THREE_ERRORS = ("data_dir: /tmp/x\n"
                "workers: 0\n"                         # 2: range (check)
                "inputs:\n"
                "  - paths: [/tmp/*.log]\n"
                "    parser: xml\n"                    # 5: enum (schema)
                "output:\n"
                "  hosts: [127.0.0.1:5044]\n"
                "  windw: 10\n")                       # 8: unknown key


def test_check_reports_every_error(tmp_path):
    p, r = check_bad(tmp_path, THREE_ERRORS)
    lines = r.stderr.splitlines()
    assert len(lines) == 3, r.stderr
    got = [re.match(re.escape(str(p)) + r":(\d+): (\S+): (.+)", l)
           for l in lines]
    assert all(got), r.stderr
    assert [(int(m.group(1)), m.group(2)) for m in got] == [
        (2, "workers"), (5, "inputs[0].parser"), (8, "output.windw")], \
        r.stderr
    assert r.stdout == ""


def test_start_reports_every_error(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text(THREE_ERRORS)
    r = run("-c", str(p))
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 3, r.stderr


def test_check_yaml_syntax_error_says_it_stops(tmp_path):
    p, r = check_bad(tmp_path, "data_dir: /tmp/x\ninputs: [\nworkers: 0\n")
    lines = r.stderr.splitlines()
    assert re.match(re.escape(str(p)) + r":\d+: yaml: ", lines[0]), r.stderr
    assert lines[1] == ("%s: a YAML syntax error ends the check: fix it to "
                        "see any other errors" % p), r.stderr


def test_check_ok_wording(tmp_path):
    path = os.path.join(SOURCE, "deploy", "config", "agent.yml")
    r = run("--check", "-c", path)
    # the same words as sluice-collector --check
    assert r.stdout == "%s: config ok\n" % path, r.stdout


def test_check_refuses_http_listen_that_start_refuses(tmp_path):
    """`--check` passed `http.listen: bad` and the agent then failed at
    start ("cannot start ... invalid argument"); both refuse it now, and
    the container's SLUICE_HTTP_LISTEN override of the example config is
    checked the same way."""
    p, r = check_bad(tmp_path, "data_dir: /tmp/x\n"
                     "http:\n  listen: myhost:5076\n"
                     "inputs:\n  - paths: [/tmp/*.log]\n")
    assert re.search(r"bad\.yml:3: http\.listen: .*myhost:5076", r.stderr), \
        r.stderr
    path = os.path.join(SOURCE, "deploy", "config", "agent.yml")
    for listen, rc in (("0.0.0.0:5076", 0), ("[::1]:0", 0), ("", 0),
                       ("5076", 2)):
        env = dict(os.environ, SLUICE_HTTP_LISTEN=listen,
                   SLUICE_DATA_DIR=str(tmp_path))
        r = run("--check", "-c", path, env=env)
        assert r.returncode == rc, (listen, r.stderr)
