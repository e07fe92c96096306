"""deploy/grafana/sluice-dashboard.json: a Grafana dashboard that imports
as is (schema 39, Prometheus picked through the DS_PROMETHEUS variable),
with the panels the issue lists. The metric names are checked against a
running agent and collector in test_live_metrics.py."""

import json

from conftest import (DASHBOARD, dashboard, dashboard_exprs,
                      dashboard_panels, metric_names, read)

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def test_valid_json_and_schema():
    d = json.loads(read(DASHBOARD))
    assert 36 <= d["schemaVersion"] <= 41
    assert d["uid"] and d["title"]
    assert "id" not in d or d["id"] is None, "an exported id pins the import"
    assert isinstance(d["panels"], list) and d["panels"]


def test_datasource_is_the_variable():
    d = dashboard()
    var = [v for v in d["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert len(var) == 1 and var[0]["type"] == "datasource"
    assert var[0]["query"] == "prometheus"
    for p in dashboard_panels(d):
        if p["type"] == "row":
            continue
        assert p["datasource"] == DS, p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DS, p["title"]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            assert v["datasource"] == DS, v["name"]


def test_panel_ids_unique_and_layout_without_overlap():
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells = {}
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, "%s overlaps %s" % (
                    p["title"], cells[(x, y)])
                cells[(x, y)] = p["title"]


def test_targets_well_formed():
    for p in dashboard_panels():
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            e = t["expr"]
            assert e.count("(") == e.count(")"), e
            assert e.count("{") == e.count("}"), e
            assert metric_names(e), e
            # Rates over Grafana's own interval, never a fixed window
            # that a zoomed-out graph would undersample.
            if "rate(" in e:
                assert "[$__rate_interval]" in e, e


def test_the_issue_panels_are_there():
    """Each thing the issue wants to see, by the metric that shows it."""
    used = set()
    for e in dashboard_exprs():
        used |= metric_names(e)
    want = {
        "agent lines/s": "sluice_agent_lines_read_total",
        "agent lines/s per input": "sluice_agent_input_lines_read_total",
        "agent events/s per input": "sluice_agent_input_events_built_total",
        "agent sent": "sluice_agent_events_sent_total",
        "agent acked": "sluice_agent_events_acked_total",
        "agent queue bytes": "sluice_agent_queue_bytes",
        "agent output connected": "sluice_agent_output_connected",
        "agent lag": "sluice_agent_lag_bytes",
        "collector intake": "sluice_collector_input_events_total",
        "collector connections": "sluice_collector_input_connections",
        "spool bytes": "sluice_collector_spool_bytes",
        "spool records": "sluice_collector_spool_records",
        "spool oldest age": "sluice_collector_spool_oldest_age_seconds",
        "ES items by status": "sluice_collector_es_items_total",
        "ES retries": "sluice_collector_es_item_retries_total",
        "dead letters": "sluice_collector_es_deadletters_total",
        "bulk latency": "sluice_collector_es_request_duration_seconds_bucket",
        "retention last success":
            "sluice_collector_retention_last_success_timestamp_seconds",
        "archive": "sluice_collector_archive_failing",
        "process CPU": "process_cpu_seconds_total",
        "process RSS": "process_resident_memory_bytes",
    }
    missing = {k: v for k, v in want.items() if v not in used}
    assert not missing, missing
