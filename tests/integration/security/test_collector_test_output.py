"""`sluice-collector test output` against HTTPS Elasticsearch: the CA, the
client certificate and the API key of the config are the ones used (the
collector's own es_client), a wrong CA fails "talk to server" with the
certificate problem, and no credential is printed."""

import json
import subprocess

from esdouble_fixture import start_esdouble

from conftest import COLLECTOR, collector_config

API_KEY = "kid9:ApiKey-S3cret-77"


def run_test(tmp_path, cfg):
    p = tmp_path / "c.yml"
    p.write_text(json.dumps(cfg))
    return subprocess.run([COLLECTOR, "-c", str(p), "test", "output"],
                          capture_output=True, text=True, timeout=60)


def test_https_api_key_client_cert(tmp_path, pki):
    with start_esdouble("--tls-cert", pki.path("server.pem"),
                        "--tls-key", pki.path("server.key"),
                        "--api-key", API_KEY,
                        "--tls-client-ca", pki.path("ca.pem")) as es:
        cfg = collector_config(str(tmp_path / "data"), es.url)
        cfg["elasticsearch"].update(
            api_key=API_KEY, ssl={"ca": pki.path("ca.pem"),
                                  "cert": pki.path("agent-1.pem"),
                                  "key": pki.path("agent-1.key")})
        r = run_test(tmp_path, cfg)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "TLS: on, certificate verified" in r.stdout
        assert "version >= 8... OK" in r.stdout
        cfg["elasticsearch"]["ssl"]["ca"] = pki.path("other.pem")
        r = run_test(tmp_path, cfg)
        assert r.returncode == 1
        assert "talk to server... ERROR" in r.stdout and \
            "certificate" in r.stdout, r.stdout
        for secret in ("ApiKey-S3cret-77", "kid9"):
            assert secret not in r.stdout + r.stderr
