"""deploy/kibana/sluice-saved-objects.ndjson: what Kibana 8's
`POST /api/saved_objects/_import` needs (one saved object per line, each
with id, type, attributes, references and migration versions), the
references closed over the file, and only fields sluice's events have.

The shapes follow Kibana's own exports: a data view (`index-pattern`),
a `search` whose searchSourceJSON names its data view through
`indexRefName`, standalone `lens` objects (formBased layers, one
`indexpattern-datasource-layer-<layer>` reference per layer) and a
`dashboard` whose panels name `panel_<i>` with references
`<i>:panel_<i>` (the 8.x layout, typeMigrationVersion 8.7.0).

Versions: `coreMigrationVersion` / `typeMigrationVersion` exist since
Kibana 8.8, so 8.8 is the oldest Kibana that imports the file; no object
claims a version newer than that (Kibana refuses objects from its
future), and each type's version is the one whose shape it has: Lens
state is `formBased` since the 8.6.0 migration, so lens objects say
8.6.0 and Kibana runs the later migrations (8.9.0) on import."""

import glob
import json
import os
import re

import pytest

from conftest import SOURCE, read, saved_objects

DATA_VIEW_ID = "sluice-logs-data-view"


def by_type(t):
    return [o for o in saved_objects() if o["type"] == t]


def one(t):
    objs = by_type(t)
    assert len(objs) == 1, t
    return objs[0]


def emitted_fields():
    """Fields the agent's parsers produce, from the fixture expectations
    (tests/fixtures/parsers: what each parser is tested to emit)."""
    out = set()
    for path in glob.glob(os.path.join(SOURCE, "tests", "fixtures",
                                       "parsers", "*.ndjson")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    out |= set(json.loads(line).get("expect", {}))
    return out


# Set by the agent on every event, whatever the parser (agent/config.c:
# `name` is "agent.name and host.name"); the live test sees it in ES.
AGENT_FIELDS = {"host.name", "@timestamp", "event.id", "agent.name"}


def test_lines_are_saved_objects():
    objs = saved_objects()
    assert [o["type"] for o in objs] == [
        "index-pattern", "search", "lens", "lens", "lens", "lens",
        "dashboard"], "dependencies first, as Kibana exports them"
    for o in objs:
        assert set(o) >= {"id", "type", "attributes", "references",
                          "coreMigrationVersion", "typeMigrationVersion"}, o
        assert re.fullmatch(r"[a-z0-9-]+", o["id"]), o["id"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", o["typeMigrationVersion"])
        assert o["attributes"]["title"]
        for r in o["references"]:
            assert set(r) == {"id", "name", "type"}, r


def _v(s):
    return tuple(int(x) for x in s.split("."))


def test_versions_importable_from_kibana_8_8():
    want = {"index-pattern": "8.0.0", "search": "7.9.3", "lens": "8.6.0",
            "dashboard": "8.7.0"}
    for o in saved_objects():
        assert o["coreMigrationVersion"] == "8.8.0", o["id"]
        assert o["typeMigrationVersion"] == want[o["type"]], o["id"]
    for p in json.loads(one("dashboard")["attributes"]["panelsJSON"]):
        assert _v(p["version"]) <= (8, 8, 0), p


def test_ids_unique():
    ids = [o["id"] for o in saved_objects()]
    assert len(ids) == len(set(ids))


def test_every_reference_resolves():
    objs = {(o["type"], o["id"]) for o in saved_objects()}
    for o in saved_objects():
        names = [r["name"] for r in o["references"]]
        assert len(names) == len(set(names)), o["id"]
        for r in o["references"]:
            assert (r["type"], r["id"]) in objs, (o["id"], r)
            if r["type"] == "index-pattern":
                assert r["id"] == DATA_VIEW_ID


def test_data_view():
    dv = one("index-pattern")
    assert dv["id"] == DATA_VIEW_ID
    a = dv["attributes"]
    assert a["title"] == "logs-*"
    assert a["timeFieldName"] == "@timestamp"
    for k in ("fields", "fieldAttrs", "fieldFormatMap", "runtimeFieldMap",
              "sourceFilters", "typeMeta"):
        json.loads(a[k])   # Kibana stores these as JSON strings


def test_saved_search():
    s = one("search")
    a = s["attributes"]
    assert a["columns"] == ["log.level", "service.name", "host.name",
                            "message", "trace.id"]
    assert a["sort"] == [["@timestamp", "desc"]]
    src = json.loads(a["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert "index" not in src, "the data view goes through a reference"
    assert src["indexRefName"] in {r["name"] for r in s["references"]}
    assert src["query"] == {"query": "", "language": "kuery"}


def _lens_fields(o):
    out = set()
    for layer in o["attributes"]["state"]["datasourceStates"]["formBased"][
            "layers"].values():
        for c in layer["columns"].values():
            if c.get("sourceField") not in (None, "___records___"):
                out.add(c["sourceField"])
    return out


def _kql_fields(q):
    return set(re.findall(r"([@\w.]+)\s*:", q))


@pytest.mark.parametrize("lens", [o["id"] for o in by_type("lens")])
def test_lens_object(lens):
    o = [x for x in by_type("lens") if x["id"] == lens][0]
    a = o["attributes"]
    assert a["visualizationType"] == "lnsXY"
    st = a["state"]
    layers = st["datasourceStates"]["formBased"]["layers"]
    refs = {r["name"] for r in o["references"]}
    for lid, layer in layers.items():
        assert "indexpattern-datasource-layer-" + lid in refs
        assert set(layer["columnOrder"]) == set(layer["columns"])
        for cid, c in layer["columns"].items():
            assert c["operationType"] in ("count", "date_histogram", "terms")
            if c["operationType"] == "terms":
                assert c["params"]["orderBy"]["columnId"] in layer["columns"]
    vis_layers = st["visualization"]["layers"]
    assert {v["layerId"] for v in vis_layers} == set(layers)
    for v in vis_layers:
        cols = layers[v["layerId"]]["columns"]
        for acc in v["accessors"] + [v["xAccessor"]] + (
                [v["splitAccessor"]] if "splitAccessor" in v else []):
            assert acc in cols, (lens, acc)
        assert v["seriesType"] == st["visualization"]["preferredSeriesType"]
    assert st["query"]["language"] == "kuery"


def test_dashboard_panels():
    d = one("dashboard")
    a = d["attributes"]
    panels = json.loads(a["panelsJSON"])
    json.loads(a["optionsJSON"])
    json.loads(a["kibanaSavedObjectMeta"]["searchSourceJSON"])
    refs = {r["name"]: r for r in d["references"]}
    assert len(refs) == len(panels)
    cells = set()
    for p in panels:
        assert p["panelIndex"] == p["gridData"]["i"]
        ref = refs[p["panelIndex"] + ":" + p["panelRefName"]]
        assert ref["type"] == p["type"]
        g = p["gridData"]
        assert g["x"] + g["w"] <= 48
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p
                cells.add((x, y))
    titles = {o["id"]: o["attributes"]["title"] for o in saved_objects()}
    shown = {titles[r["id"]] for r in d["references"]}
    for want in ("log.level", "service.name", "host.name", "Errors over time",
                 "Logs"):
        assert any(want in t for t in shown), want


def test_fields_are_fields_sluice_emits():
    """Every field a saved object reads is one sluice's events carry: from
    the parser fixtures, or set by the agent on every event."""
    known = emitted_fields() | AGENT_FIELDS
    used = set(one("search")["attributes"]["columns"])
    used.add(one("index-pattern")["attributes"]["timeFieldName"])
    for o in by_type("lens"):
        used |= _lens_fields(o)
        used |= _kql_fields(o["attributes"]["state"]["query"]["query"])
    assert used >= {"log.level", "service.name", "host.name", "trace.id"}
    assert not used - known, used - known


def test_error_levels_are_sluice_levels():
    """The errors panel filters on log.level values the agent's level map
    produces (agent/level.h)."""
    q = [o for o in by_type("lens")
         if o["id"] == "sluice-errors-over-time"][0]["attributes"]["state"][
             "query"]["query"]
    levels = set(re.findall(r"\b([a-z]+)\b",
                            q.split(":", 1)[1])) - {"or", "and"}
    header = read(os.path.join(SOURCE, "agent", "level.h"))
    canon = re.search(r"Canonical names.*?:(.*?)\.", header, re.S).group(1)
    canon = set(re.findall(r"[a-z]+", canon))
    assert levels and levels <= canon, levels - canon
    assert {"error", "fatal", "critical"} <= levels


def test_import_documented():
    for doc in ("README.md", os.path.join("deploy", "RUNBOOK.md")):
        text = read(os.path.join(SOURCE, doc))
        assert "/api/saved_objects/_import" in text, doc
        assert "sluice-saved-objects.ndjson" in text, doc
