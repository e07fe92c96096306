"""Collector -> Elasticsearch: HTTPS with a CA and a client certificate,
basic auth and API keys from the config or the environment, and secrets
that never show: not in the self-log (any level), not in --check, not in
/metrics or /debug/state."""

import base64
import subprocess

from esdouble_fixture import start_esdouble

from conftest import (COLLECTOR, LumberjackClient, events, wait_until)

URL_PW = "Url-S3cret-9f2"
BAD_URL_PW = "Wrong-S3cret-7a1"
CFG_PW = "Cfg-Pass-S3cret-41"
ENV_PW = "Env-Pass-S3cret-88"
API_KEY = "kid7:ApiKey-S3cret-55"


def https_double(pki, *extra):
    return start_esdouble("--tls-cert", pki.path("server.pem"),
                          "--tls-key", pki.path("server.key"), *extra)


def ship(c, n=50, tag="es"):
    cl = LumberjackClient(port=c.lj_port, window=n, timeout=20.0)
    try:
        assert cl.send(events(tag, n)) == n
    finally:
        cl.close()


def es_over(**kw):
    return {"elasticsearch": kw}


def test_https_ca_verify_basic_auth_from_env(collectors, pki, monkeypatch):
    monkeypatch.setenv("SLUICE_TEST_ES_PASSWORD", ENV_PW)
    with https_double(pki, "--user", "elastic:" + ENV_PW) as es:
        c = collectors(es.url, es_over(
            username="elastic", password="${SLUICE_TEST_ES_PASSWORD}",
            ssl={"ca": pki.path("ca.pem")}))
        assert es.url.startswith("https://")
        ship(c)
        es.wait_for_count("logs-sec-*", 50, timeout=30)
        wait_until(lambda: c.ready() == 200, 20, 0.1, "ready")
        assert ENV_PW not in c.log_text()


def test_api_key_and_client_certificate(collectors, pki):
    with https_double(pki, "--api-key", API_KEY,
                      "--tls-client-ca", pki.path("ca.pem")) as es:
        es.client_cert = (pki.path("agent-1.pem"), pki.path("agent-1.key"))
        c = collectors(es.url, es_over(
            api_key=API_KEY, ssl={"ca": pki.path("ca.pem"),
                                  "cert": pki.path("agent-1.pem"),
                                  "key": pki.path("agent-1.key")}))
        ship(c)
        es.wait_for_count("logs-sec-*", 50, timeout=30)


def test_wrong_ca_is_a_clear_error(collectors, pki):
    with https_double(pki) as es:
        c = collectors(es.url, es_over(ssl={"ca": pki.path("other.pem")}))
        rec = c.wait_log(lambda r: r.get("message") ==
                         "elasticsearch not ready" and
                         "certificate" in r.get("detail", ""),
                         what="certificate error")
        assert "SSL certificate problem" in rec["detail"], rec
        assert c.ready() == 503
        # verify: false is the explicit way out (and not the default).
        c2 = collectors(es.url, es_over(ssl={"verify": False}),
                        name="noverify")
        ship(c2)
        es.wait_for_count("logs-sec-*", 50, timeout=30)
        assert c2.find_logs(lambda r: "verify is false" in
                            r.get("message", ""))
        assert not c.find_logs(lambda r: "verify is false" in
                               r.get("message", ""))


def secret_forms(s):
    return [s, base64.b64encode(s.encode()).decode()]


def assert_no_secret(where, text, secrets):
    for s in secrets:
        for form in secret_forms(s):
            assert form not in text, "%s shows a secret (%s):\n%s" % (
                where, form, text[:2000])


def test_secrets_are_redacted_everywhere(collectors, pki, tmp_path):
    secrets = [URL_PW, BAD_URL_PW, CFG_PW, API_KEY, API_KEY.split(":")[1]]
    with start_esdouble("--user", "elastic:" + URL_PW) as es:
        host = "127.0.0.1:%d" % es.port
        # Credentials in the URL are used (as basic auth for that host).
        good = collectors("http://elastic:%s@%s" % (URL_PW, host),
                          {"log_level": "debug"}, name="good")
        ship(good)
        es.wait_for_count("logs-sec-*", 50, timeout=30)
        rec = good.wait_log(lambda r: r.get("message") ==
                            "connected to elasticsearch", what="connect")
        assert rec["url"] == "http://%s/" % host, rec
        # Wrong ones: 401 on every request, logged with the URL.
        bad = collectors("http://elastic:%s@%s" % (BAD_URL_PW, host),
                         {"log_level": "debug"}, name="bad")
        bad.wait_log(lambda r: "401" in r.get("detail", ""), what="401")
        # Secrets in the config's own keys.
        cfgd = collectors("http://%s" % host, {"log_level": "debug",
                          "elasticsearch": {"username": "elastic",
                                            "password": CFG_PW,
                                            "api_key": API_KEY}},
                          name="cfg")
        cfgd.wait_log(lambda r: "401" in r.get("detail", ""), what="401")
        for c in (good, bad, cfgd):
            st, metrics = c.http_get("/metrics")
            assert st == 200
            assert_no_secret("/metrics", metrics, secrets)
            st, state = c.http_get("/debug/state")
            assert st in (200, 404)
            assert_no_secret("/debug/state", state, secrets)
            for args in (["--check"], ["--check", "--log-level", "debug"]):
                p = subprocess.run([COLLECTOR, "-c", c.cfg_path] + args,
                                   capture_output=True, text=True,
                                   timeout=30)
                assert p.returncode == 0, p
                assert_no_secret("--check", p.stdout + p.stderr, secrets)
            c.term()
            assert_no_secret(c.name + " log", c.log_text(), secrets)
