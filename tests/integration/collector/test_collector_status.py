"""The collector's status page (`/`), `sluice-collector status`, and /ready
following Elasticsearch with no traffic (issue 14).

The page is rendered by headless Chromium (Debian's `chromium`, installed
by scripts/setup); the test saves a screenshot in its tmp dir (path
printed) and checks every number the page marks with data-metric against
/metrics, after a known number of events went through the Lumberjack
client, a few of them refused by the ES double (dead letters)."""

import datetime
import html.parser
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import (COLLECTOR, LumberjackClient, parse_metrics,
                      start_esdouble, wait_until)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def events(tag, n, reject_every=0):
    """n events stamped a second ago; every reject_every-th carries the
    marker the double refuses with 400 (-> dead letter)."""
    ts = (datetime.datetime.now(datetime.timezone.utc)
          - datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = []
    for i in range(n):
        msg = "%s %d" % (tag, i)
        if reject_every and i % reject_every == 0:
            msg += " reject-me"
        out.append(json.dumps({"@timestamp": ts, "message": msg,
                               "event": {"id": "%s-%05d" % (tag, i),
                                         "dataset": "status"}}).encode())
    return out


def metric_of(m, key):
    assert key in m, "%s not in /metrics" % key
    return m[key]


def settled(c):
    """Everything received is indexed (or dead-lettered) and nothing is in
    flight: the numbers stop moving."""
    st = json.loads(c.http_get("/debug/state")[1])
    es = st["elasticsearch"]
    return (st["spool"]["records"] == 0 and es["pending_events"] == 0
            and es["inflight_requests"] == 0
            and es["events_submitted"] == es["events_done"] > 0)


class Dom(html.parser.HTMLParser):
    """Elements with an id or data-metric, and the agents' rows."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.metrics = []          # (data-metric, data-value)
        self.agent_rows = []       # data-peer of each row
        self.agent_events = []     # data-value of the events cells
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if "id" in a:
            self.by_id[a["id"]] = a
        if "data-metric" in a and "data-value" in a:
            self.metrics.append((a["data-metric"], a["data-value"]))
        if tag == "tr" and "data-peer" in a:
            self.agent_rows.append(a["data-peer"])
        if a.get("class") == "agent-events":
            self.agent_events.append(int(a["data-value"]))


def chromium(args, timeout=60):
    return subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--hide-scrollbars"] + args,
        capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(scripts/setup installs it)")
def test_status_page_numbers_match_metrics(make_collector, tmp_path):
    with start_esdouble("--item-reject-match", "reject-me",
                        "--item-reject-status", "400") as es:
        c = make_collector(es, {
            "archive": {"path": str(tmp_path / "archive")},
            "retention": {"mode": "managed", "default": "30d"}})
        a = LumberjackClient(port=c.lj_port, window=100)
        b = LumberjackClient(port=c.lj_port, window=40)
        try:
            assert a.send(events("a", 300, reject_every=50)) == 300
            assert b.send(events("b", 120)) == 120
            wait_until(lambda: settled(c), 30, 0.1, "all events indexed")
            url = "http://127.0.0.1:%d/" % c.http_port
            prof = str(tmp_path / "chromium")
            shot = str(tmp_path / "status-page.png")
            r = chromium(["--user-data-dir=" + prof,
                          "--window-size=1280,1100",
                          "--virtual-time-budget=3000",
                          "--screenshot=" + shot, url])
            assert os.path.getsize(shot) > 10000, r.stderr[-2000:]
            print("status page screenshot: %s" % shot)
            r = chromium(["--user-data-dir=" + prof,
                          "--virtual-time-budget=3000", "--dump-dom", url])
            assert r.returncode == 0, r.stderr[-2000:]
            m = c.metrics()
            state = json.loads(c.http_get("/debug/state")[1])
        finally:
            a.close()
            b.close()
    dom = Dom()
    dom.feed(r.stdout)
    assert int(dom.body.get("data-loaded", "0")) >= 1, \
        "the page never rendered /debug/state:\n" + r.stdout[:3000]
    assert dom.by_id["ready"]["data-value"] == "1"

    # Every number the page ties to a metric equals it.
    checked = {}
    for name, value in dom.metrics:
        assert float(value) == metric_of(m, name), \
            "%s: page %s, /metrics %s" % (name, value, metric_of(m, name))
        checked[name] = float(value)
    for must in ("sluice_collector_input_events_total",
                 "sluice_collector_input_connections",
                 "sluice_collector_spool_records",
                 "sluice_collector_records_indexed_total",
                 "sluice_collector_es_up",
                 'sluice_collector_es_items_total{status="201"}',
                 'sluice_collector_es_items_total{status="4xx"}',
                 'sluice_collector_es_deadletters_total{dest="es"}',
                 'sluice_collector_es_deadletters_total{dest="file"}',
                 "sluice_collector_es_deadletters_total",
                 "sluice_collector_es_item_retries_total",
                 "sluice_collector_archive_events_written_total",
                 "sluice_collector_retention_deleted_indices_total"):
        assert must in checked, "page shows no %s" % must
    # The known traffic: 420 events from two agents, 6 refused.
    assert checked["sluice_collector_input_events_total"] == 420
    assert checked["sluice_collector_input_connections"] == 2
    assert checked["sluice_collector_es_up"] == 1
    assert checked["sluice_collector_archive_events_written_total"] == 420
    assert sorted(dom.agent_events) == [120, 300]
    assert len(dom.agent_rows) == 2
    dl = int(dom.by_id["dl-total"]["data-value"])
    assert dl == 6 == state["elasticsearch"]["deadletters"]["total"]
    assert checked['sluice_collector_es_items_total{status="4xx"}'] >= 6
    # Lag: events stamped ~1 s before they were sent.
    for ag in state["inputs"][0]["agents"]:
        assert 0.5 <= ag["lag_seconds"] < 30, ag


def test_status_page_served_with_headers(make_collector, es):
    c = make_collector(es)
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/" % c.http_port,
                                timeout=5) as r:
        body = r.read().decode()
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert r.headers["Cache-Control"] == "no-store"
        csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert csp.count("'sha256-") == 2 and "unsafe-inline" not in csp
    assert "<title>sluice collector</title>" in body
    assert "http://" not in body and "https://" not in body  # no assets
    # /metrics and friends are not HTML: no CSP, but never cached either.
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % c.http_port,
                                timeout=5) as r:
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["Content-Security-Policy"] is None


def run_status(c, *args):
    return subprocess.run([COLLECTOR, "-c", c.cfg_path, "status"]
                          + list(args), capture_output=True, text=True,
                          timeout=30)


def fixed_http(c):
    """`status` reads http.listen from the config: pin the port the
    collector bound (the tests start it with port 0)."""
    c.config["http"]["listen"] = "127.0.0.1:%d" % c.http_port
    c.write_config()


def test_status_command_exit_codes(make_collector, tmp_path):
    es = start_esdouble("--health", "yellow")
    try:
        c = make_collector(es)
        fixed_http(c)
        cl = LumberjackClient(port=c.lj_port, window=50)
        assert cl.send(events("s", 75)) == 75
        wait_until(lambda: settled(c), 30, 0.1, "events indexed")
        # _cluster/health is asked for every 30 s, first at the first
        # probe tick after setup.
        wait_until(lambda: json.loads(c.http_get("/debug/state")[1])
                   ["elasticsearch"]["cluster"]["status"] == "yellow", 10,
                   0.1, "cluster status")
        r = run_status(c)
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout
        assert "ready" in out.splitlines()[0]
        assert "1 agent connected, 75 events" in out  # not "1 agents"
        assert "127.0.0.1:" in out and "AGENT" in out
        assert "Elasticsearch  reachable, ready" in out
        assert "201: 75" in out
        assert "cluster yellow, 1 node\n" in out
        r = run_status(c, "--json")
        assert r.returncode == 0
        st = json.loads(r.stdout)
        assert st["inputs"][0]["agents"][0]["events"] == 75
        cl.close()

        es.stop()
        wait_until(lambda: c.ready() == 503, 10, 0.1, "/ready 503")
        r = run_status(c)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "NOT READY" in r.stdout and "UNREACHABLE" in r.stdout
        assert "last error" in r.stdout

        c.term()
        r = run_status(c)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "UNREACHABLE" in r.stdout
        r = run_status(c, "--bogus")
        assert r.returncode == 2 and "usage" in r.stderr
    finally:
        es.stop()


def test_ready_follows_elasticsearch_without_traffic(make_collector):
    es = start_esdouble()
    port = es.port
    try:
        c = make_collector(es)
        wait_until(lambda: c.ready() == 200, 10, 0.1, "ready")
        assert metric_of(c.metrics(), "sluice_collector_es_up") == 1
        # Nothing is sent: only the idle probe can notice.
        es.stop()
        t0 = time.monotonic()
        wait_until(lambda: c.ready() == 503, 8, 0.1, "/ready 503 after ES "
                   "went away")
        down_s = time.monotonic() - t0
        assert metric_of(c.metrics(), "sluice_collector_es_up") == 0
        st = json.loads(c.http_get("/debug/state")[1])["elasticsearch"]
        assert not st["reachable"] and st["not_ready_reason"] == "connect"
        assert st["probe_failures"] >= 1 and st["last_error"]

        es = start_esdouble("--port", str(port))
        t0 = time.monotonic()
        wait_until(lambda: c.ready() == 200, 10, 0.1, "/ready 200 after ES "
                   "came back")
        up_s = time.monotonic() - t0
        assert metric_of(c.metrics(), "sluice_collector_es_up") == 1
        print("ready 503 %.1f s after ES stopped, 200 %.1f s after it came "
              "back" % (down_s, up_s))
    finally:
        es.stop()


def test_status_with_http_off(tmp_path):
    # Regression: `http.listen: ""` turns the HTTP port off, and status
    # said "gives no port to ask" instead of saying so (as the agent's).
    p = tmp_path / "c.yml"
    p.write_text("data_dir: %s\nhttp:\n  listen: \"\"\ninputs:\n"
                 "  - listen: 127.0.0.1:0\nelasticsearch:\n"
                 "  hosts: [\"http://127.0.0.1:9\"]\n" % (tmp_path / "d"))
    r = subprocess.run([COLLECTOR, "-c", str(p), "status"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "http.listen is off in %s" % p in r.stderr, r.stderr
    h = subprocess.run([COLLECTOR, "--help"], capture_output=True,
                       text=True, timeout=20).stdout
    line = next(l for l in h.splitlines()
                if l.strip().startswith("listen (string, default "
                                        "127.0.0.1:5041)"))
    assert "empty string: off" in line, line
