"""Lumberjack over TLS: server verification, mutual TLS, a wrong CA."""

import json
import os
import shutil
import ssl
import subprocess

import pytest

from conftest import (AGENT, LumberjackReceiver, agent_config, lj_output,
                      seq_of, wait_until, write_lines)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl CLI needed for certificates")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name, "-keyout", name + ".key",
            "-out", name + ".pem", cwd=d)


def make_cert(d, ca, name, san):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
            "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
            "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
            "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "other")
    make_cert(d, "ca", "server", "IP:127.0.0.1")
    make_cert(d, "ca", "client", "DNS:agent.test")
    return d


def server_ctx(pki, require_client=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "server.pem"),
                        os.path.join(pki, "server.key"))
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
    return ctx


def ship(workdir, agents, recv, ssl_conf, n=3000):
    log = os.path.join(workdir, "app.log")
    write_lines(log, 0, n, mode="w")
    out = lj_output(recv, ssl=ssl_conf)
    a = agents(workdir, agent_config(os.path.join(workdir, "data"), [log],
                                     out))
    a.start()
    return a


def test_tls_verified(workdir, agents, pki):
    r = LumberjackReceiver(tls=server_ctx(pki))
    try:
        a = ship(workdir, agents, r, {"enabled": True,
                                      "ca": os.path.join(pki, "ca.pem")})
        r.wait_for(3000, timeout=60)
        assert sorted(seq_of(e) for e in r.events[:]) == list(range(3000))
        assert a.http("/ready")[0] == 200
        assert any(rec.get("message") == "connected" and
                   rec.get("tls", "off").startswith("TLS")
                   for rec in a.records())
        assert a.stop() == 0
    finally:
        r.close()


def test_mutual_tls(workdir, agents, pki):
    r = LumberjackReceiver(tls=server_ctx(pki, require_client=True))
    try:
        a = ship(workdir, agents, r, {
            "enabled": True, "ca": os.path.join(pki, "ca.pem"),
            "cert": os.path.join(pki, "client.pem"),
            "key": os.path.join(pki, "client.key")})
        r.wait_for(3000, timeout=60)
        assert a.stop() == 0
    finally:
        r.close()


def test_wrong_ca_is_refused(workdir, agents, pki):
    r = LumberjackReceiver(tls=server_ctx(pki))
    try:
        a = ship(workdir, agents, r, {"enabled": True,
                                      "ca": os.path.join(pki, "other.pem")},
                 n=10)
        wait_until(lambda: any("TLS handshake failed" in
                               rec.get("message", "")
                               for rec in a.records()), 20,
                   what="handshake failure logged")
        assert r.count() == 0
        assert a.http("/ready")[0] == 503
        # verify: false accepts the same peer.
        assert a.alive()
    finally:
        r.close()


def test_tls_config_errors(workdir, agents, pki, tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("data_dir: %s\n"
                 "inputs: [{paths: [/tmp/x.log]}]\n"
                 "output:\n"
                 "  hosts: [127.0.0.1:5044]\n"
                 "  ssl: {enabled: true, cert: %s}\n"
                 % (tmp_path, os.path.join(pki, "client.pem")))
    r = subprocess.run([AGENT, "--check", "-c", str(p)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2
    assert "cert and key" in r.stderr


def _test_output(workdir, recv, ssl_conf):
    out = lj_output(recv, ssl=ssl_conf)
    p = os.path.join(workdir, "t.yml")
    with open(p, "w") as f:
        json.dump(agent_config(os.path.join(workdir, "data"),
                               [workdir + "/*.log"], out), f)
    return subprocess.run([AGENT, "-c", p, "test", "output"],
                          capture_output=True, text=True, timeout=30)


def test_test_output_tls(workdir, pki):
    """`test output` over TLS: handshake with the configured CA, then the
    steps that fail name themselves: a wrong CA in the handshake, a client
    certificate the receiver requires (refused after a TLS 1.3 handshake)
    in "talk to server"."""
    ca = os.path.join(pki, "ca.pem")
    r = LumberjackReceiver(tls=server_ctx(pki))
    m = LumberjackReceiver(tls=server_ctx(pki, require_client=True))
    try:
        res = _test_output(workdir, r, {"enabled": True, "ca": ca})
        assert res.returncode == 0, res.stdout + res.stderr
        assert "handshake... OK" in res.stdout
        assert "TLS version: TLSv1.3" in res.stdout
        assert "peer: CN=server" in res.stdout
        assert "talk to server... OK" in res.stdout
        res = _test_output(workdir, r, {
            "enabled": True, "ca": os.path.join(pki, "other.pem")})
        assert res.returncode == 1
        assert "handshake... ERROR" in res.stdout and "certificate" in \
            res.stdout, res.stdout
        res = _test_output(workdir, m, {"enabled": True, "ca": ca})
        assert res.returncode == 1, res.stdout
        # TLS 1.3: the handshake completes on the client side first.
        assert "handshake... OK" in res.stdout, res.stdout
        assert "talk to server... ERROR" in res.stdout, res.stdout
        assert "certificate required" in res.stdout, res.stdout
        res = _test_output(workdir, m, {
            "enabled": True, "ca": ca,
            "cert": os.path.join(pki, "client.pem"),
            "key": os.path.join(pki, "client.key")})
        assert res.returncode == 0, res.stdout
        assert r.count() == 0 and m.count() == 0
    finally:
        r.close()
        m.close()
