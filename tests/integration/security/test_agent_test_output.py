"""`sluice-agent test output` against a real collector: plain, and TLS with
client certificates the collector accepts or refuses (the refusal shows
in the step that met it, and nothing is ever shipped)."""

import json
import subprocess

from conftest import AGENT, agent_config, tls_listener


def test_output(tmp_path, host, ssl_conf=None):
    out = {"type": "lumberjack", "hosts": [host]}
    if ssl_conf:
        out["ssl"] = ssl_conf
    p = tmp_path / "agent.yml"
    p.write_text(json.dumps(agent_config(str(tmp_path / "agent-data"),
                                         [str(tmp_path / "*.log")], out)))
    return subprocess.run([AGENT, "-c", str(p), "test", "output"],
                          capture_output=True, text=True, timeout=30)


test_output.__test__ = False


def test_plain_collector(collectors, es, tmp_path):
    c = collectors(es.url)
    r = test_output(tmp_path, c.address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "talk to server... OK" in r.stdout
    assert c.metric("sluice_collector_input_events_total") == 0


def test_tls_collector_client_certificates(collectors, es, pki, tmp_path):
    c = collectors(es.url, {"inputs": [{
        "type": "lumberjack", "listen": "127.0.0.1:0",
        "idle_timeout": "30s", "ssl": tls_listener(pki)}]})

    def ssl_conf(cert=None):
        s = {"enabled": True, "ca": pki.path("ca.pem")}
        if cert:
            s.update(cert=pki.path(cert + ".pem"), key=pki.path(cert + ".key"))
        return s

    r = test_output(tmp_path, c.address, ssl_conf("agent-1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "handshake... OK" in r.stdout and "peer: CN=localhost" in r.stdout
    assert "talk to server... OK" in r.stdout
    # Name not in allowed_names, and no certificate at all: the collector
    # refuses after the (TLS 1.3) handshake, so "talk to server" fails.
    for cert in ("intruder", None):
        r = test_output(tmp_path, c.address, ssl_conf(cert))
        assert r.returncode == 1, (cert, r.stdout)
        assert "handshake... OK" in r.stdout, r.stdout
        assert "talk to server... ERROR" in r.stdout, r.stdout
    # The collector's CA does not vouch for it: the handshake fails.
    r = test_output(tmp_path, c.address, {"enabled": True,
                                          "ca": pki.path("other.pem")})
    assert r.returncode == 1 and "handshake... ERROR" in r.stdout, r.stdout
    assert c.metric("sluice_collector_input_events_total") == 0
