"""Issue 14: site customisations and an ingest pipeline.

The index templates compose the optional hooks logs@custom and
sluice@custom after sluice's own components, so what a site puts there
applies to sluice's data streams; `elasticsearch.pipeline` sends every
event through an ingest pipeline (_bulk?pipeline=), and its dead letters
skip it."""

from conftest import (DEADLETTER, DS_PATTERN, assert_exact, es_count,
                      event_id, make_events, send_all, wait_until)


def template(es, name):
    r = es.request("GET", "/_index_template/" + name)
    assert r.status == 200, r.body
    return r.json()["index_templates"][0]["index_template"]


def test_templates_compose_site_hooks(es, make_collector):
    # A site's hooks, made before sluice starts: logs@custom for every
    # logs stream, sluice@custom for sluice's; the later one wins.
    assert es.request("PUT", "/_component_template/logs@custom", {
        "template": {"settings": {"index.number_of_replicas": 2,
                                  "index.refresh_interval": "5s"}}}
    ).status == 200
    assert es.request("PUT", "/_component_template/sluice@custom", {
        "template": {"settings": {"index.number_of_replicas": 0},
                     "mappings": {"properties": {
                         "labels": {"properties": {
                             "site": {"type": "keyword"}}}}}}}
    ).status == 200
    c = make_collector(es)
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    t = template(es, "sluice-logs")
    assert t["composed_of"] == ["sluice-ecs-mappings", "sluice-settings",
                                "logs@custom", "sluice@custom"]
    assert t["ignore_missing_component_templates"] == ["logs@custom",
                                                       "sluice@custom"]
    send_all(c.lj_port, make_events("h", 10))
    assert_exact(es, [event_id("h", i) for i in range(10)], DS_PATTERN)
    s = es.request("GET", "/%s/_settings" % DS_PATTERN).json()
    (idx, body), = s.items()
    st = body["settings"]["index"]
    assert st["number_of_replicas"] == "0", st      # sluice@custom wins
    assert st["refresh_interval"] == "5s", st       # logs@custom applies
    assert st["codec"] == "best_compression", st    # ours where not changed
    m = es.request("GET", "/%s/_mapping" % idx).json()[idx]["mappings"]
    assert m["properties"]["labels"]["properties"]["site"] == \
        {"type": "keyword"}


def test_templates_install_without_hooks(es, make_collector):
    # Stock ES has no logs@custom or sluice@custom: they are optional.
    for h in ("logs@custom", "sluice@custom"):
        assert es.request("GET", "/_component_template/" + h).status == 404
    c = make_collector(es, {"elasticsearch": {"index_mode": "daily"}})
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    # Daily indices are no logs data streams: only sluice's own hook.
    assert template(es, "sluice-daily")["composed_of"] == [
        "sluice-ecs-mappings", "sluice-settings", "sluice@custom"]
    assert "logs@custom" in template(es, "sluice-logs")["composed_of"]


def test_pipeline_setting(es, make_collector):
    assert es.request("PUT", "/_ingest/pipeline/site-enrich", {
        "processors": [{"set": {"field": "labels.enriched",
                                "value": "yes"}}]}).status == 200
    c = make_collector(es, {"elasticsearch": {"pipeline": "site-enrich"}})
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    n = 50
    send_all(c.lj_port, make_events("p", n))
    docs = assert_exact(es, [event_id("p", i) for i in range(n)], DS_PATTERN)
    assert all(d["_source"]["labels"]["enriched"] == "yes" for d in docs)
    st = es.stats()
    assert set(st["bulk_pipeline_params"]) == {"site-enrich"}, st
    assert st["pipelines_run"]["site-enrich"] == n, st
    # It replaced the index's default pipeline.
    assert "logs@default-pipeline" not in st["pipelines_run"], st


def test_pipeline_missing_dead_letters(es, make_collector):
    # ES fails each item naming a missing pipeline (400): dead letters,
    # which skip the pipeline ("_none") and so are indexed.
    c = make_collector(es, {"elasticsearch": {"pipeline": "not-there"}})
    wait_until(lambda: c.ready() == 200, 15, what="ready")
    n = 20
    send_all(c.lj_port, make_events("m", n))
    wait_until(lambda: es_count(es, DEADLETTER) >= n, 30,
               what="dead letters")
    dl = es.docs(DEADLETTER)
    assert len(dl) == n
    for d in dl:
        src = d["_source"]
        assert src["error"]["type"] == "illegal_argument_exception"
        assert "pipeline with id [not-there] does not exist" in \
            src["error"]["message"], src
    assert es_count(es, DS_PATTERN) == 0
    assert es.stats()["pipelines_run"].get("not-there", 0) == 0
