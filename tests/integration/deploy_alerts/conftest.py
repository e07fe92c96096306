"""The operator files of deploy/: Prometheus rules and their promtool
tests, the Grafana dashboard, the Kibana saved objects, deploy/RUNBOOK.md.

  rules()            the alert rules of deploy/prometheus/sluice-alerts.yml
                     as dicts (alert, expr, for, labels, annotations), read
                     line by line (no YAML library: the file keeps to a
                     fixed layout, which test_prometheus.py checks)
  dashboard()        deploy/grafana/sluice-dashboard.json, parsed
  dashboard_exprs()  every PromQL expression of its panels and variables
  saved_objects()    deploy/kibana/sluice-saved-objects.ndjson, one dict
                     per line
  metric_names(expr) the metric names a PromQL expression reads
  runbook_anchors()  the GitHub anchors of deploy/RUNBOOK.md's headings

Processes come from tests/lib/harness.py; test_live_metrics.py runs a real
agent and collector against the Elasticsearch test double.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "lib"))

from harness import SOURCE  # noqa: E402
from suite_hooks import pytest_configure  # noqa: E402,F401
from suite_hooks import pytest_runtest_makereport  # noqa: E402,F401

DEPLOY = os.path.join(SOURCE, "deploy")
RULES = os.path.join(DEPLOY, "prometheus", "sluice-alerts.yml")
RULES_TEST = os.path.join(DEPLOY, "prometheus", "sluice-alerts.test.yml")
DASHBOARD = os.path.join(DEPLOY, "grafana", "sluice-dashboard.json")
SAVED_OBJECTS = os.path.join(DEPLOY, "kibana", "sluice-saved-objects.ndjson")
RUNBOOK = os.path.join(DEPLOY, "RUNBOOK.md")
RUNBOOK_BASE = "https://sluice.invalid/deploy/RUNBOOK.md#"


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _scalar(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def rules():
    """Rules as dicts. A rule starts at `- alert: NAME`; `expr: |` and
    `key: >-` take the more-indented lines after them; `labels:` and
    `annotations:` take `key: value` lines one level deeper."""
    out = []
    cur = None
    block = None          # (dict, key, indent of the key, folded?)
    section = None        # (dict, indent of the section key)
    for raw in _read(RULES).splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip())
        if line.lstrip().startswith("#") and not (block and ind > block[2]):
            continue
        if block:
            d, key, kind, folded = block
            if ind > kind:
                d[key] = (d[key] + (" " if folded else "\n") +
                          line.strip()).strip()
                continue
            block = None
        m = re.match(r"^(\s*)- alert: (\S+)$", line)
        if m:
            cur = {"alert": m.group(2), "labels": {}, "annotations": {},
                   "indent": len(m.group(1)) + 2}
            out.append(cur)
            section = None
            continue
        if cur is None:
            continue
        m = re.match(r"^(\s*)([A-Za-z_]+):\s*(.*)$", line)
        if not m:
            continue
        kind, key, val = len(m.group(1)), m.group(2), m.group(3)
        if kind <= cur["indent"] - 2:
            cur, section = None, None
            continue
        target = cur
        if section and kind > section[1]:
            target = section[0]
        elif kind == cur["indent"]:
            section = None
            if key in ("labels", "annotations") and not val:
                section = (cur[key], kind)
                continue
        if val in ("|", ">-", ">"):
            target[key] = ""
            block = (target, key, kind, val != "|")
        else:
            target[key] = _scalar(val)
    return out


def dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def dashboard_panels(d=None):
    """Every panel, rows' nested panels included."""
    d = d or dashboard()
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_exprs(d=None):
    d = d or dashboard()
    out = []
    for p in dashboard_panels(d):
        for t in p.get("targets", []):
            out.append(t["expr"])
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            q = q["query"] if isinstance(q, dict) else q
            # Grafana's label_values(metric, label): the metric is the
            # PromQL part.
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
            out.append(m.group(1) if m else q)
    return out


def saved_objects():
    objs = []
    with open(SAVED_OBJECTS, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            assert line.endswith("\n"), "line %d: no newline" % n
            assert line.strip(), "line %d: empty" % n
            objs.append(json.loads(line))
    return objs


# PromQL words that look like identifiers but are not metric names.
_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "rate", "irate",
    "increase", "deriv", "delta", "idelta", "time", "absent",
    "histogram_quantile", "label_values", "max_over_time", "min_over_time",
    "avg_over_time", "offset", "bool", "topk", "bottomk", "le", "vector",
    "scalar", "clamp_min", "clamp_max", "abs", "predict_linear",
}


def metric_names(expr):
    """Metric names read by a PromQL expression: identifiers outside
    `{...}` matchers, `[...]` ranges, `by (...)`/`on (...)` label lists and
    strings, other than PromQL's own words; histogram series map to their
    family (`_bucket`/`_sum`/`_count` kept as written: /metrics has
    them)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*"
               r"\([^)]*\)", "", e)
    e = re.sub(r"\$\w+", "", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()",
                         e):
        w = m.group(1)
        if w in _PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]?", w):
            continue
        names.add(w)
    return names


def runbook_anchors():
    """GitHub's heading ids: lower case, punctuation but '-' and '_'
    dropped, spaces to '-'."""
    out = set()
    fenced = False
    for line in _read(RUNBOOK).splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^#{1,6}\s+(.*)$", line)
        if not m:
            continue
        h = m.group(1).strip().lower()
        h = re.sub(r"[^\w\- ]", "", h)
        out.add(h.replace(" ", "-"))
    return out


def read(path):
    return _read(path)
