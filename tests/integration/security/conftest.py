"""Fixtures for the security suite: TLS on the collector's Lumberjack
listener, HTTPS and credentials towards Elasticsearch, redaction of
secrets, file modes.

  pki             certificates made at test time with the `openssl` CLI
                  (module scope): CA "ca" and an unrelated CA "other";
                  server cert for 127.0.0.1/localhost; client certs
                  "agent-1" (good), "expired", "rogue" (signed by other),
                  "intruder" (good CA, name outside allowed_names);
                  pki.path("agent-1.pem")
  es / es_factory the Elasticsearch double (tests/esdouble)
  collectors      factory: collectors(es_url, overrides) -> CollectorProc,
                  started; stopped and sanitizer-checked at teardown
  tls_client      ssl.SSLContext for the Python Lumberjack client
"""

import os
import shutil
import ssl
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from esdouble_fixture import start_esdouble  # noqa: E402
from harness import (AGENT, COLLECTOR, AgentProc,  # noqa: E402,F401
                     CollectorProc, agent_config, collector_config,
                     deep_merge, wait_until)
from lumberjack import LumberjackClient  # noqa: E402,F401
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl CLI needed")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


class Pki:
    def __init__(self, d):
        self.dir = d

    def path(self, name):
        return os.path.join(self.dir, name)

    # EC keys: a dozen certificates in well under a second (RSA takes
    # seconds); the server keeps RSA, the most common deployment.
    EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]

    def ca(self, name):
        openssl("req", "-x509", *self.EC, "-nodes", "-days",
                "2", "-subj", "/CN=%s" % name, "-keyout", name + ".key",
                "-out", name + ".pem", cwd=self.dir)

    def cert(self, ca, name, san, days="2", cn=None, rsa=False):
        """days "-1" makes a certificate that expired a day ago."""
        key = ["-newkey", "rsa:2048"] if rsa else self.EC
        openssl("req", *key, "-nodes", "-subj",
                "/CN=%s" % (cn or name), "-keyout", name + ".key",
                "-out", name + ".csr", cwd=self.dir)
        with open(self.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                "-CAkey", ca + ".key", "-CAcreateserial", "-days", days,
                "-extfile", name + ".ext", "-out", name + ".pem",
                cwd=self.dir)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    p = Pki(str(tmp_path_factory.mktemp("pki")))
    p.ca("ca")
    p.ca("other")
    p.cert("ca", "server", "IP:127.0.0.1,DNS:localhost", cn="localhost",
           rsa=True)
    p.cert("ca", "server2", "IP:127.0.0.1,DNS:localhost", cn="collector-new")
    p.cert("ca", "agent-1", "DNS:agent-1.example.test")
    p.cert("ca", "expired", "DNS:agent-old.example.test", days="-1",
           cn="agent-old")
    p.cert("other", "rogue", "DNS:agent-rogue.example.test",
           cn="agent-rogue")
    p.cert("ca", "intruder", "DNS:intruder.example.test")
    p.cert("ca", "wronghost", "DNS:elsewhere.example.test",
           cn="elsewhere.example.test")
    return p


def tls_listener(pki, **over):
    """The `ssl:` object of a TLS Lumberjack input."""
    s = {"enabled": True, "cert": pki.path("server.pem"),
         "key": pki.path("server.key"), "ca": pki.path("ca.pem"),
         "client_auth": "required", "allowed_names": ["agent-*"]}
    s.update(over)
    return s


def client_ctx(pki, cert=None, ca="ca"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.path(ca + ".pem"))
    if cert:
        ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(cert + ".key"))
    return ctx


@pytest.fixture
def es():
    with start_esdouble() as d:
        yield d


@pytest.fixture
def collectors(tmp_path, request):
    made = []

    def make(es_url, overrides=None, start=True, name="collector"):
        data_dir = os.path.join(str(tmp_path), name + "-data")
        c = CollectorProc(tmp_path, name, deep_merge(
            collector_config(data_dir, es_url), overrides or {}))
        c.data_dir = data_dir
        made.append(c)
        if start:
            c.start()
        return c

    yield make
    failed = getattr(request.node, "rep_call", None)
    bad = []
    for c in made:
        if failed is not None and failed.failed:
            sys.stderr.write("---- %s log tail ----\n%s\n" % (
                c.cfg_path, c.log_tail(60)))
        c.cleanup()
        bad += [e["raw"] for e in c.find_logs(lambda e: "raw" in e)
                if "runtime error" in e["raw"] or "Sanitizer" in e["raw"]]
    assert not bad, "sanitizer reports:\n" + "\n".join(bad[:20])


def closing_reasons(c):
    """Reasons of the collector's "closing connection" lines."""
    return [r.get("reason", "") for r in c.find_logs(
        lambda r: r.get("message") == "closing connection")]


def events(tag, n):
    fmt = ('{"@timestamp":"2026-11-25T12:00:00.000Z","message":"m %s",'
           '"event":{"id":"%s","dataset":"sec"}}')
    return [(fmt % (("%s-%d" % (tag, i),) * 2)).encode() for i in range(n)]
