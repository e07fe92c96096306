"""The collector's Lumberjack listener over TLS with client certificates:
who gets in, what the log says about who does not, reload of
certificates, and senders that speak the wrong one (TLS vs plaintext)."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys

import pytest

from conftest import (AGENT, COLLECTOR, AgentProc, LumberjackClient,
                      agent_config, client_ctx, closing_reasons, events,
                      tls_listener, wait_until)


def tls_collector(collectors, es, pki, **ssl_over):
    return collectors(es.url, {"inputs": [{
        "type": "lumberjack", "listen": "127.0.0.1:0",
        "idle_timeout": "30s", "ssl": tls_listener(pki, **ssl_over)}]})


def try_send(port, ctx, n=5):
    """Send n events over TLS; the number acked (0 when refused)."""
    c = LumberjackClient(port=port, window=n, timeout=5.0, tls=ctx)
    try:
        c.connect()
        return c.send(events("x", n))
    except (OSError, ssl.SSLError):
        return 0
    finally:
        c.close()


def wait_reason(c, *needles):
    def found():
        for r in closing_reasons(c):
            if all(n in r for n in needles):
                return r
        return None
    try:
        return wait_until(found, 15, 0.05, "closing reason %r" % (needles,))
    except AssertionError:
        raise AssertionError("no reason with %r in %r" % (
            needles, closing_reasons(c))) from None


def test_good_client_certificate_events_arrive(collectors, es, pki):
    c = tls_collector(collectors, es, pki)
    assert c.find_logs(lambda r: r.get("message") == "listening" and
                       r.get("tls") == "on")
    ctx = client_ctx(pki, "agent-1")
    cl = LumberjackClient(port=c.lj_port, window=100, timeout=20.0, tls=ctx)
    try:
        assert cl.send(events("good", 300)) == 300
        assert cl.sock.version() in ("TLSv1.2", "TLSv1.3")
        # The collector presents its own certificate (verified by ctx).
        assert cl.sock.getpeercert()["subject"] == ((("commonName",
                                                      "localhost"),),)
    finally:
        cl.close()
    es.wait_for_count("logs-sec-*", 300, timeout=30)
    # TLS 1.2 too (Beats' default floor).
    ctx12 = client_ctx(pki, "agent-1")
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert try_send(c.lj_port, ctx12) == 5


def test_cli_sender_over_tls(collectors, es, pki, tmp_path):
    """tests/lib/lumberjack.py send --tls-*: the by-hand check of a TLS
    listener that the README suggests."""
    c = tls_collector(collectors, es, pki)
    f = tmp_path / "ev.ndjson"
    f.write_bytes(b"\n".join(events("cli", 20)) + b"\n")
    lj = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "lib", "lumberjack.py")
    p = subprocess.run(
        [sys.executable, lj, "send", "--port", str(c.lj_port), "--file",
         str(f), "--tls-ca", pki.path("ca.pem"), "--tls-cert",
         pki.path("agent-1.pem"), "--tls-key", pki.path("agent-1.key")],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and '"acked": 20' in p.stdout, p


@pytest.mark.parametrize("cert,needles", [
    (None, ["TLS handshake failed", "peer did not return a certificate"]),
    ("expired", ["TLS handshake failed", "CN=agent-old",
                 "certificate has expired"]),
    ("rogue", ["TLS handshake failed", "CN=agent-rogue",
               "unable to get local issuer certificate",
               "not issued by the CA in ssl.ca"]),
    ("intruder", ["TLS client certificate name not allowed",
                  "CN=intruder", "DNS=intruder.example.test"]),
], ids=["no-cert", "expired", "unknown-ca", "name-not-allowed"])
def test_refused_client_certificates(collectors, es, pki, cert, needles):
    c = tls_collector(collectors, es, pki)
    assert try_send(c.lj_port, client_ctx(pki, cert)) == 0
    wait_reason(c, *needles)
    rec = c.find_logs(lambda r: r.get("message") == "closing connection")[0]
    assert rec["peer"].startswith("127.0.0.1:"), rec
    assert c.metric("sluice_collector_input_events_total") == 0
    # A good one still gets in afterwards.
    assert try_send(c.lj_port, client_ctx(pki, "agent-1")) == 5


def test_optional_client_auth_takes_no_cert_but_refuses_a_bad_one(
        collectors, es, pki):
    c = tls_collector(collectors, es, pki, client_auth="optional",
                      allowed_names=[])
    assert try_send(c.lj_port, client_ctx(pki)) == 5
    assert try_send(c.lj_port, client_ctx(pki, "expired")) == 0
    wait_reason(c, "certificate has expired")


def test_plaintext_sender_on_tls_port(collectors, es, pki):
    c = tls_collector(collectors, es, pki)
    assert try_send(c.lj_port, None) == 0
    r = wait_reason(c, "plaintext Lumberjack on a TLS port")
    assert "TLS" in r


def test_tls_sender_on_plaintext_port(collectors, es, pki):
    c = collectors(es.url)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    assert try_send(c.lj_port, ctx) == 0
    wait_reason(c, "TLS handshake on a plaintext port; enable ssl on the "
                "input or disable it on the sender")


def peer_cn(port, pki):
    ctx = client_ctx(pki, "agent-1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return dict(x[0] for x in t.getpeercert()["subject"])[
                "commonName"]


def test_sighup_reloads_certificates(collectors, es, pki, tmp_path):
    cert = str(tmp_path / "srv.pem")
    key = str(tmp_path / "srv.key")
    shutil.copy(pki.path("server.pem"), cert)
    shutil.copy(pki.path("server.key"), key)
    c = tls_collector(collectors, es, pki, cert=cert, key=key)
    assert peer_cn(c.lj_port, pki) == "localhost"

    # A broken new certificate: refused, the running listener keeps its.
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a cert\n")
    c.signal(signal.SIGHUP)
    rec = c.wait_log(lambda r: "refused" in r.get("message", ""),
                     what="reload refused")
    assert "ssl.cert" in rec["reason"] and cert in rec["reason"], rec
    assert peer_cn(c.lj_port, pki) == "localhost"

    # A good one: new connections present it.
    shutil.copy(pki.path("server2.pem"), cert)
    shutil.copy(pki.path("server2.key"), key)
    mark = len(c.find_logs(lambda r: r.get("message") == "started"))
    c.signal(signal.SIGHUP)
    started = wait_until(lambda: [r for r in c.find_logs(
        lambda r: r.get("message") == "started")][mark:], 20, 0.05,
        "restart after SIGHUP")
    port = int(started[0]["lumberjack_port"])
    assert peer_cn(port, pki) == "collector-new"
    assert try_send(port, client_ctx(pki, "agent-1")) == 5


def test_check_names_the_bad_file(tmp_path, pki, es):
    cfg = tmp_path / "c.yml"
    cfg.write_text("""data_dir: %s
inputs:
  - type: lumberjack
    listen: 127.0.0.1:0
    ssl:
      enabled: true
      cert: %s
      key: %s
      ca: %s
elasticsearch:
  hosts: [%s]
""" % (tmp_path / "d", tmp_path / "missing.pem", pki.path("server.key"),
       pki.path("ca.pem"), es.url))
    p = subprocess.run([COLLECTOR, "--check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p
    assert ":7: inputs[0].ssl.cert: cannot load %s" % (
        tmp_path / "missing.pem") in p.stderr, p.stderr
    # A key that belongs to another certificate.
    cfg.write_text(cfg.read_text().replace(
        str(tmp_path / "missing.pem"), pki.path("server.pem")).replace(
        pki.path("server.key"), pki.path("agent-1.key")))
    p = subprocess.run([COLLECTOR, "--check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "ssl.key: %s is not the key of the " \
        "certificate in %s" % (pki.path("agent-1.key"),
                               pki.path("server.pem")) in p.stderr, p
    # Safe by default: client certificates are required, so a CA is too.
    text = cfg.read_text().replace(pki.path("agent-1.key"),
                                   pki.path("server.key"))
    cfg.write_text(text.replace("      ca: %s\n" % pki.path("ca.pem"), ""))
    p = subprocess.run([COLLECTOR, "--check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "inputs[0].ssl.ca: required to verify " \
        "client certificates (or set client_auth: none)" in p.stderr, p
    cfg.write_text(text.replace("      ca: %s\n" % pki.path("ca.pem"),
                                "      client_auth: none\n"))
    p = subprocess.run([COLLECTOR, "--check", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p


def test_agent_mutual_tls_to_collector(collectors, es, pki, tmp_path):
    c = tls_collector(collectors, es, pki)
    log = tmp_path / "app.log"
    with open(log, "w") as f:
        for i in range(500):
            f.write('{"msg":"line %d","level":"info"}\n' % i)
    out = {"type": "lumberjack", "hosts": [c.address],
           "ssl": {"enabled": True, "ca": pki.path("ca.pem"),
                   "cert": pki.path("agent-1.pem"),
                   "key": pki.path("agent-1.key")}}
    a = AgentProc(tmp_path, "agent", agent_config(
        str(tmp_path / "agent-data"), [str(log)], out, dataset="sec"))
    try:
        a.start()
        es.wait_for_count("logs-sec-*", 500, timeout=60)
        assert a.find_logs(lambda r: r.get("message") == "connected" and
                           str(r.get("tls", "")).startswith("TLS"))
    finally:
        a.term()
        a.cleanup()
    assert os.path.exists(AGENT)


def test_agent_refuses_a_collector_certificate_for_another_host(
        collectors, es, pki, tmp_path):
    c = tls_collector(collectors, es, pki, cert=pki.path("wronghost.pem"),
                      key=pki.path("wronghost.key"))
    log = tmp_path / "app.log"
    log.write_text('{"msg":"x"}\n')
    out = {"type": "lumberjack", "hosts": [c.address],
           "ssl": {"enabled": True, "ca": pki.path("ca.pem"),
                   "cert": pki.path("agent-1.pem"),
                   "key": pki.path("agent-1.key")}}
    a = AgentProc(tmp_path, "agent", agent_config(
        str(tmp_path / "agent-data"), [str(log)], out, dataset="sec",
        shutdown_timeout="1s"))
    try:
        a.start()
        rec = a.wait_log(lambda r: r.get("message") ==
                         "TLS handshake failed", what="agent TLS failure")
        assert "mismatch" in rec.get("verify", ""), rec
    finally:
        a.term()
        a.cleanup()
    wait_reason(c, "TLS handshake failed", "the sender refused the "
                "collector's certificate")
