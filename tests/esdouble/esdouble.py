#!/usr/bin/python3
"""esdouble: an Elasticsearch 8 test double for sluice.

A standalone HTTP/1.1 server (Python stdlib only) that behaves like
Elasticsearch 8.15 wherever a shipper can tell the difference: `_bulk`
semantics and per-item errors, data streams and their backing indices,
index/component templates, ILM policies, data stream lifecycle, search and
count over what was indexed, cat/health endpoints, Basic/ApiKey auth, and
fault injection through a private `/_double/` API (see README.md).

Start: `esdouble.py --port 0` prints `READY <port>` once it listens.
"""

import argparse
import base64
import datetime
import fnmatch
import gc
import http.server
import ipaddress
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib

ES_VERSION = "8.15.0"
CLUSTER_NAME = "esdouble"
CLUSTER_UUID = "ZXNkb3VibGVjbHVzdGVy"
NODE_NAME = "esdouble-0"

SHARDS = {"total": 2, "successful": 1, "failed": 0}
ACTIONS = frozenset(("create", "index", "update", "delete"))
META_KEYS = frozenset((
    "_index", "_id", "routing", "pipeline", "require_alias", "if_seq_no",
    "if_primary_term", "version", "version_type", "dynamic_templates",
    "retry_on_conflict", "_source", "require_data_stream",
    "list_executed_pipelines"))
BAD_NAME_CHARS = set('\\/*?"<>| ,#:')
DEFAULT_MAX_BODY = 100 * 1024 * 1024
TOTAL_HITS_LIMIT = 10000

_json_loads = json.loads
_scan_once = json.JSONDecoder().scan_once


def _loads(s):
    """json.loads without its per-call regex work on the common case (a
    line that starts with a value); anything unusual takes json.loads for
    the exact error message."""
    if type(s) is not str:
        return _json_loads(s)
    try:
        obj, end = _scan_once(s, 0)
    except StopIteration:
        return _json_loads(s)
    if end != len(s) and not s[end:].isspace():
        return _json_loads(s)
    return obj
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def now_ms():
    return int(time.time() * 1000)


def es_error(etype, reason, status, extra=None, caused_by=None):
    """Whole-request error body in the ES shape."""
    root = {"type": etype, "reason": reason}
    if extra:
        root.update(extra)
    err = dict(root)
    root_cause = [dict(root)]
    if caused_by:
        err["caused_by"] = caused_by
    err["root_cause"] = root_cause
    # ES puts root_cause first.
    err = {"root_cause": root_cause, **{k: v for k, v in err.items()
                                        if k != "root_cause"}}
    return status, {"error": err, "status": status}


def not_found_index(name):
    return es_error("index_not_found_exception", "no such index [%s]" % name,
                    404, {"resource.type": "index_or_alias",
                          "resource.id": name, "index_uuid": "_na_",
                          "index": name})


def item_error(etype, reason, extra=None, caused_by=None):
    e = {"type": etype, "reason": reason}
    if caused_by:
        e["caused_by"] = caused_by
    if extra:
        e.update(extra)
    return e


def new_uuid():
    return base64.urlsafe_b64encode(os.urandom(16))[:22].decode()


class IdGen:
    """20-char ids like ES's time-based UUIDs (15 bytes, base64url)."""

    def __init__(self):
        self.prefix = os.urandom(7)
        self.n = int.from_bytes(os.urandom(2), "big") << 40

    def next(self):
        self.n += 1
        raw = self.prefix + struct.pack(">Q", self.n & 0xFFFFFFFFFFFFFFFF)
        return base64.urlsafe_b64encode(raw).decode()


# ---------------------------------------------------------------- values

def parse_date_ms(v):
    """Epoch ms for a value under `strict_date_optional_time||epoch_millis`,
    or None if ES would reject it."""
    t = type(v)
    if t is int:
        return v
    if t is float:
        return int(v)
    if t is not str or not v:
        return None
    if v.isdigit() or (v[0] == "-" and v[1:].isdigit()):
        return int(v)
    if len(v) < 4 or not v[:4].isdigit():
        return None
    if len(v) > 10 and v[10] != "T":
        return None
    try:
        dt = datetime.datetime.fromisoformat(v)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp() * 1000)


_DATE_MATH = re.compile(r"^now((?:[+-]\d+[yMwdhHms])*)(?:/([yMwdhHms]))?$")
_UNIT_MS = {"s": 1000, "m": 60000, "h": 3600000, "H": 3600000,
            "d": 86400000, "w": 604800000, "M": 2592000000,
            "y": 31536000000}


def query_date_ms(v):
    """Like parse_date_ms but also understands simple date math (now-1h)."""
    if isinstance(v, str) and v.startswith("now"):
        m = _DATE_MATH.match(v)
        if not m:
            return None
        ms = now_ms()
        for sign, num, unit in re.findall(r"([+-])(\d+)([yMwdhHms])",
                                          m.group(1)):
            d = int(num) * _UNIT_MS[unit]
            ms = ms + d if sign == "+" else ms - d
        if m.group(2):
            u = _UNIT_MS[m.group(2)]
            ms -= ms % u
        return ms
    if isinstance(v, str) and "||" in v:
        v = v.split("||", 1)[0]
    return parse_date_ms(v)


def check_long(v):
    t = type(v)
    if t is int:
        return True
    if t is float:
        return v == v and abs(v) < 9.3e18
    if t is str:
        try:
            float(v)
            return True
        except ValueError:
            return False
    return False


def check_double(v):
    t = type(v)
    if t is int or t is float:
        return True
    if t is str:
        try:
            float(v)
            return True
        except ValueError:
            return False
    return False


def check_ip(v):
    if type(v) is not str:
        return False
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


def check_bool(v):
    return type(v) is bool or v in ("true", "false", "")


def check_date(v):
    return parse_date_ms(v) is not None


TYPE_CHECKS = {
    "long": check_long, "integer": check_long, "short": check_long,
    "byte": check_long, "unsigned_long": check_long,
    "double": check_double, "float": check_double,
    "half_float": check_double, "scaled_float": check_double,
    "ip": check_ip, "boolean": check_bool, "date": check_date,
    "date_nanos": check_date,
}


def type_reason(ftype, v):
    if ftype in ("date", "date_nanos"):
        return ("failed to parse date field [%s] with format "
                "[strict_date_optional_time||epoch_millis]" % (v,))
    if ftype == "ip":
        return "'%s' is not an IP string literal." % (v,)
    if ftype == "boolean":
        return ("Failed to parse value [%s] as only [true] or [false] are "
                "allowed." % (v,))
    if isinstance(v, (dict, list)):
        return "Current token (START_OBJECT) not numeric"
    return 'For input string: "%s"' % (v,)


def get_values(obj, path):
    """All leaf values at a dotted path, accepting both nested objects and
    dotted keys (ES treats them as the same field). Arrays fan out."""
    out = []
    _collect(obj, path, out)
    return out


def _collect(obj, path, out):
    if type(obj) is list:
        for e in obj:
            _collect(e, path, out)
        return
    if type(obj) is not dict:
        return
    if path in obj:
        v = obj[path]
        if type(v) is list:
            out.extend(v)
        else:
            out.append(v)
    dot = path.find(".")
    while dot > 0:
        head = path[:dot]
        if head in obj:
            _collect(obj[head], path[dot + 1:], out)
        dot = path.find(".", dot + 1)


def values_at(doc, path, head, dotted):
    """get_values() with shortcuts: `head` is the path's first segment,
    `dotted` tells whether the document has any dotted top-level key."""
    if head is path:
        v = doc.get(path)
        if v is None:
            return ()
        return v if type(v) is list else (v,)
    if not dotted and head not in doc:
        return ()
    return get_values(doc, path)


def flatten(obj, prefix="", out=None):
    if out is None:
        out = {}
    for k, v in obj.items():
        key = prefix + k
        if type(v) is dict:
            flatten(v, key + ".", out)
        elif type(v) is list:
            for e in v:
                if type(e) is dict:
                    flatten(e, key + ".", out)
                elif e is not None:
                    out.setdefault(key, []).append(e)
        elif v is not None:
            out.setdefault(key, []).append(v)
    return out


def has_field(obj, path):
    if get_values(obj, path):
        return True
    # An object at that path also counts as "the document has the field".
    return _has_object(obj, path)


def _has_object(obj, path):
    if type(obj) is not dict:
        return False
    if path in obj:
        return True
    dot = path.find(".")
    while dot > 0:
        head = path[:dot]
        if head in obj and _has_object(obj[head], path[dot + 1:]):
            return True
        dot = path.find(".", dot + 1)
    return False


def deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = json_copy(v)
    return dst


def json_copy(v):
    if isinstance(v, dict):
        return {k: json_copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_copy(x) for x in v]
    return v


def flat_settings(s, prefix="", out=None):
    if out is None:
        out = {}
    for k, v in (s or {}).items():
        key = prefix + k
        if isinstance(v, dict):
            flat_settings(v, key + ".", out)
        else:
            out[key] = v
    return out


def norm_settings(s):
    """Flat settings with the implicit `index.` prefix ES adds."""
    out = {}
    for k, v in flat_settings(s).items():
        if not k.startswith("index."):
            k = "index." + k
        out[k] = v if isinstance(v, (list, dict)) or v is None else (
            str(v).lower() if isinstance(v, bool) else str(v))
    return out


def nest_settings(flat):
    out = {}
    for k, v in sorted(flat.items()):
        cur = out
        parts = k.split(".")
        for p in parts[:-1]:
            nxt = cur.get(p)
            if not isinstance(nxt, dict):
                nxt = cur[p] = {}
            cur = nxt
        cur[parts[-1]] = v
    return out


def mapped_fields(props, prefix="", out=None):
    """{dotted path: mapping} for every field with an explicit type."""
    if out is None:
        out = {}
    for name, m in (props or {}).items():
        if not isinstance(m, dict):
            continue
        path = prefix + name
        if "properties" in m:
            mapped_fields(m["properties"], path + ".", out)
        if "type" in m and m["type"] not in ("object", "nested"):
            out[path] = m
    return out


def validate_index_name(name):
    if not name:
        return "must not be empty"
    if name != name.lower():
        return "must be lowercase"
    if name[0] in "-_+":
        return "must not start with '_', '-', or '+'"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if BAD_NAME_CHARS & set(name):
        return ('must not contain the following characters '
                '[\'\\\\\', \'/\', \'*\', \'?\', \'"\', \'<\', \'>\', \'|\', '
                '\' \', \',\', \'#\', \':\']')
    if len(name.encode()) > 255:
        return "index name is too long, (%d > 255)" % len(name.encode())
    return None


def is_wild(expr):
    return "*" in expr or "?" in expr


# ------------------------------------------------------------ filter_path

def compile_filter(fp):
    inc, exc = [], []
    for p in fp.split(","):
        p = p.strip()
        if not p:
            continue
        if p.startswith("-"):
            exc.append(p[1:].split("."))
        else:
            inc.append(p.split("."))
    return inc, exc


def _seg_match(seg, key):
    if seg == "*" or seg == key:
        return True
    return ("*" in seg or "?" in seg) and fnmatch.fnmatchcase(key, seg)


def _filter_inc(v, paths):
    """Keep only what some path reaches. Returns a sentinel for "nothing"."""
    if any(len(p) == 0 for p in paths):
        return v
    if isinstance(v, list):
        out = []
        for e in v:
            r = _filter_inc(e, paths)
            if r is not _NOTHING:
                out.append(r)
        return out if out else _NOTHING
    if not isinstance(v, dict):
        return _NOTHING
    out = {}
    for k, x in v.items():
        sub = []
        for p in paths:
            seg = p[0]
            if seg == "**":
                sub.append(p)            # ** may swallow this key
                if len(p) > 1 and _seg_match(p[1], k):
                    sub.append(p[2:])
            elif _seg_match(seg, k):
                sub.append(p[1:])
        if sub:
            r = _filter_inc(x, sub)
            if r is not _NOTHING:
                out[k] = r
    return out if out else _NOTHING


def _filter_exc(v, paths):
    if isinstance(v, list):
        return [_filter_exc(e, paths) for e in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        sub = []
        drop = False
        for p in paths:
            if _seg_match(p[0], k):
                if len(p) == 1:
                    drop = True
                else:
                    sub.append(p[1:])
        if drop:
            continue
        out[k] = _filter_exc(x, sub) if sub else x
    return out


class _Nothing:
    pass


_NOTHING = _Nothing()


def apply_filter_path(obj, fp):
    inc, exc = compile_filter(fp)
    if inc:
        obj = _filter_inc(obj, inc)
        if obj is _NOTHING:
            return {}
    if exc:
        obj = _filter_exc(obj, exc)
    return obj


# ------------------------------------------------------------------ store

class Index:
    __slots__ = ("name", "uuid", "docs", "tomb", "seq", "created", "ds",
                 "settings", "mappings", "checks", "consts", "hidden",
                 "closed", "ignore_malformed", "template", "const_heads")

    def __init__(self, name, settings, mappings, ds=None, template=None,
                 created=None):
        self.name = name
        self.uuid = new_uuid()
        self.docs = {}           # _id -> (source str or None, seq_no, version)
        self.tomb = {}           # deleted _id -> last version
        self.seq = -1
        self.created = created or now_ms()
        self.ds = ds
        self.template = template
        self.settings = settings
        self.mappings = mappings
        self.hidden = settings.get("index.hidden") == "true" or ds is not None
        self.closed = False
        self.ignore_malformed = (
            settings.get("index.mapping.ignore_malformed") == "true")
        self.checks = []
        self.consts = {}
        self.const_heads = []
        for path, m in mapped_fields(mappings.get("properties")).items():
            t = m.get("type")
            if t == "constant_keyword":
                self.consts[path] = m.get("value")
                self.const_heads.append((path, path.split(".", 1)[0]
                                         if "." in path else path))
                continue
            fn = TYPE_CHECKS.get(t)
            if fn is None:
                continue
            im = m.get("ignore_malformed", self.ignore_malformed)
            if path == "@timestamp" and ds is not None:
                im = False
            if im is True or im == "true":
                continue
            self.checks.append((path, path.split(".", 1)[0]
                                if "." in path else path, t, fn))

    def field_type(self, path):
        m = mapped_fields(self.mappings.get("properties")).get(path)
        return m.get("type") if m else None


class DataStream:
    __slots__ = ("name", "indices", "generation", "template", "lifecycle",
                 "hidden", "created")

    def __init__(self, name, template):
        self.name = name
        self.indices = []
        self.generation = 0
        self.template = template
        self.lifecycle = None
        self.hidden = False
        self.created = now_ms()


BUILTIN_COMPONENTS = {
    "logs@mappings": {
        "template": {"mappings": {
            "date_detection": False,
            "properties": {
                "@timestamp": {"type": "date", "ignore_malformed": False},
                "data_stream": {"properties": {
                    "type": {"type": "constant_keyword"},
                    "dataset": {"type": "constant_keyword"},
                    "namespace": {"type": "constant_keyword"}}}}}},
        "version": 14,
        "_meta": {"description": "default mappings for the logs index "
                                 "template installed by x-pack",
                  "managed": True}},
    "logs@settings": {
        "template": {"settings": {"index": {
            "lifecycle": {"name": "logs@lifecycle"},
            "codec": "best_compression",
            "mapping": {"ignore_malformed": "true",
                        "total_fields": {
                            "ignore_dynamic_beyond_limit": "true"}},
            "default_pipeline": "logs@default-pipeline"}}},
        "version": 14,
        "_meta": {"description": "default settings for the logs index "
                                 "template installed by x-pack",
                  "managed": True}},
    "ecs@mappings": {
        "template": {"mappings": {"dynamic_templates": [
            {"ecs_timestamp": {"match": "@timestamp",
                               "mapping": {"type": "date",
                                           "ignore_malformed": False}}},
            {"all_strings_to_keywords": {
                "match_mapping_type": "string",
                "mapping": {"type": "keyword", "ignore_above": 1024}}}]}},
        "version": 14,
        "_meta": {"description": "dynamic mappings based on ECS, installed "
                                 "by x-pack", "managed": True}},
}
BUILTIN_TEMPLATES = {
    "logs": {
        "index_patterns": ["logs-*-*"],
        "composed_of": ["logs@mappings", "logs@settings", "logs@custom",
                        "ecs@mappings"],
        "priority": 100,
        "version": 14,
        "_meta": {"description": "default logs template installed by x-pack",
                  "managed": True},
        "data_stream": {"hidden": False, "allow_custom_routing": False},
        "allow_auto_create": True,
        "ignore_missing_component_templates": ["logs@custom"]},
}
# ES 8's logs@settings names logs@default-pipeline as default_pipeline, so
# the double has it too (its processors here change nothing).
BUILTIN_PIPELINES = {
    "logs@default-pipeline": {
        "description": "default pipeline for the logs index template "
                       "installed by x-pack",
        "processors": [],
        "_meta": {"managed": True},
        "version": 14},
}
# Processor types PUT _ingest/pipeline accepts (ES refuses unknown ones).
# `set` and `remove` run; the others pass documents through unchanged.
PROCESSOR_TYPES = frozenset((
    "append", "bytes", "convert", "csv", "date", "date_index_name",
    "dissect", "dot_expander", "drop", "fail", "foreach", "geoip", "grok",
    "gsub", "join", "json", "kv", "lowercase", "pipeline", "remove",
    "rename", "reroute", "script", "set", "sort", "split", "trim",
    "uppercase", "uri_parts", "urldecode", "user_agent"))

BUILTIN_POLICIES = {
    "logs@lifecycle": {"phases": {"hot": {"min_age": "0ms", "actions": {
        "rollover": {"max_age": "30d", "max_primary_shard_size": "50gb"}}}},
        "_meta": {"description": "default policy for the logs index template "
                                 "installed by x-pack", "managed": True}},
}

DEFAULT_FAULTS = {
    "fail_status": 0,          # whole-request status for the next requests
    "fail_count": 0,           # how many requests still get fail_status
    "fail_path": "/_bulk",     # substring of the path the failure applies to
    "drop_count": 0,           # close the connection after reading the body
    "drop_path": "/_bulk",
    "drop_mode": "before",     # before: not applied; after: applied, no reply
    "delay_ms": 0,             # sleep before every reply
    "item_reject_every": 0,    # every Kth write item gets a 429
    "item_reject_match": "",   # items whose source contains this get it
    "item_reject_status": 429,  # 429 (rejected execution) or 400 (mapping)
    "item_reject_limit": 0,    # stop after this many (0 = no limit)
    "mapping_error_field": "",  # items holding this field fail with 400
    "field_types": {},         # extra {field: long|date|ip|...} checks
    "flood_stage": False,      # per-item 429 cluster_block_exception
    "forbid_index": "",        # glob: per-item 403 security_exception
    "max_body": DEFAULT_MAX_BODY,
    "health": "green",
    "destructive_requires_name": True,
}


class Store:
    def __init__(self, builtins=True, keep_source=True):
        self.lock = threading.RLock()
        self.builtins = builtins
        self.keep_source = keep_source
        self.ids = IdGen()
        self.faults = json_copy(DEFAULT_FAULTS)
        self.reset_data()
        self.reset_stats()

    # -- lifecycle of the double itself

    def reset_data(self):
        self.indices = {}
        self.streams = {}
        self.aliases = {}          # alias -> {index: {"is_write_index":..}}
        self.templates = {}
        self.components = {}
        self.policies = {}
        self.pipelines = {}
        if self.builtins:
            for k, v in BUILTIN_PIPELINES.items():
                self.pipelines[k] = json_copy(v)
            for k, v in BUILTIN_COMPONENTS.items():
                self.components[k] = json_copy(v)
            for k, v in BUILTIN_TEMPLATES.items():
                self.templates[k] = json_copy(v)
            for k, v in BUILTIN_POLICIES.items():
                self.policies[k] = {"policy": json_copy(v), "version": 1,
                                    "modified": now_ms()}

    def reset_stats(self):
        self.stats = {"requests": 0, "by_path": {}, "by_status": {},
                      "by_path_status": {}, "items_by_status": {},
                      "items_by_action": {}, "bulk_requests": 0,
                      "bulk_items": 0, "bytes_in": 0, "dropped": 0,
                      "faults_fired": 0, "item_rejects": 0,
                      # ?pipeline= of _bulk requests, by value
                      "bulk_pipeline_params": {},
                      # documents each ingest pipeline ran on
                      "pipelines_run": {}}
        self.item_counter = 0

    # -- templates

    def match_template(self, name):
        best, best_prio = None, None
        for tname, t in self.templates.items():
            for p in t.get("index_patterns", []):
                if fnmatch.fnmatchcase(name, p):
                    prio = t.get("priority", 0)
                    if best is None or prio > best_prio:
                        best, best_prio = tname, prio
                    break
        return best

    def resolve_template(self, tname):
        """Settings, mappings and aliases a new index gets from a template."""
        t = self.templates[tname]
        merged = {"settings": {}, "mappings": {}, "aliases": {}}
        lifecycle = None
        blocks = []
        for c in t.get("composed_of", []):
            if c in self.components:
                blocks.append(self.components[c].get("template", {}))
        blocks.append(t.get("template", {}))
        for b in blocks:
            merged["settings"].update(norm_settings(b.get("settings")))
            deep_merge(merged["mappings"], b.get("mappings") or {})
            deep_merge(merged["aliases"], b.get("aliases") or {})
            if b.get("lifecycle") is not None:
                lifecycle = json_copy(b["lifecycle"])
        return merged, lifecycle

    def index_pipelines(self, name):
        """(default_pipeline, final_pipeline) a write to `name` gets: from
        the index (or the data stream's write index), else from the
        template that would create it."""
        idx, _, err = self.write_target(name, "create", autocreate=False)
        if err is None:
            settings = idx.settings
        else:
            tname = self.match_template(name)
            if tname is None:
                return None, None
            settings = self.resolve_template(tname)[0]["settings"]
        return (settings.get("index.default_pipeline"),
                settings.get("index.final_pipeline"))

    # -- creation

    def create_index(self, name, body=None, created=None):
        tname = self.match_template(name)
        settings, mappings, aliases = {}, {}, {}
        if tname is not None and "data_stream" not in self.templates[tname]:
            merged, _ = self.resolve_template(tname)
            settings, mappings = merged["settings"], merged["mappings"]
            aliases = merged["aliases"]
        if body:
            settings.update(norm_settings(body.get("settings")))
            deep_merge(mappings, body.get("mappings") or {})
            deep_merge(aliases, body.get("aliases") or {})
        settings.setdefault("index.number_of_shards", "1")
        settings.setdefault("index.number_of_replicas", "1")
        idx = Index(name, settings, mappings, template=tname, created=created)
        settings["index.uuid"] = idx.uuid
        settings["index.provided_name"] = name
        settings["index.creation_date"] = str(idx.created)
        self.indices[name] = idx
        for a, spec in aliases.items():
            self.aliases.setdefault(a, {})[name] = dict(spec or {})
        return idx

    def create_stream(self, name, tname):
        ds = DataStream(name, tname)
        t = self.templates[tname]
        ds.hidden = bool((t.get("data_stream") or {}).get("hidden"))
        _, lifecycle = self.resolve_template(tname)
        ds.lifecycle = lifecycle
        self.streams[name] = ds
        self.roll(ds)
        return ds

    def roll(self, ds):
        ds.generation += 1
        tname = ds.template if ds.template in self.templates else (
            self.match_template(ds.name))
        settings, mappings = {}, {}
        if tname is not None:
            ds.template = tname
            merged, _ = self.resolve_template(tname)
            settings, mappings = merged["settings"], merged["mappings"]
        settings.setdefault("index.number_of_shards", "1")
        settings.setdefault("index.number_of_replicas", "1")
        settings["index.hidden"] = "true"
        day = time.strftime("%Y.%m.%d", time.gmtime())
        bname = ".ds-%s-%s-%06d" % (ds.name, day, ds.generation)
        idx = Index(bname, settings, mappings, ds=ds, template=tname)
        settings["index.uuid"] = idx.uuid
        settings["index.provided_name"] = bname
        settings["index.creation_date"] = str(idx.created)
        self.indices[bname] = idx
        ds.indices.append(idx)
        return idx

    def write_target(self, name, op, autocreate=True):
        """(index, data_stream, error item) for a write to `name`."""
        ds = self.streams.get(name)
        if ds is not None:
            return ds.indices[-1], ds, None
        idx = self.indices.get(name)
        if idx is not None:
            return idx, None, None
        al = self.aliases.get(name)
        if al is not None:
            names = list(al)
            w = [n for n, s in al.items() if s.get("is_write_index")]
            if len(w) == 1:
                target = w[0]
            elif len(names) == 1 and al[names[0]].get("is_write_index") \
                    is not False:
                target = names[0]
            else:
                return None, None, (400, item_error(
                    "illegal_argument_exception",
                    "no write index is defined for alias [%s]. The write "
                    "index may be explicitly disabled using is_write_index="
                    "false or the alias points to multiple indices without "
                    "one being designated as a write index" % name))
            if target in self.streams:
                s = self.streams[target]
                return s.indices[-1], s, None
            return self.indices[target], None, None
        if not autocreate or op == "delete":
            return None, None, (404, item_error(
                "index_not_found_exception", "no such index [%s]" % name,
                {"resource.type": "index_expression", "resource.id": name,
                 "index_uuid": "_na_", "index": name}))
        bad = validate_index_name(name)
        if bad:
            return None, None, (400, item_error(
                "invalid_index_name_exception",
                "Invalid index name [%s], %s" % (name, bad),
                {"index_uuid": "_na_", "index": name}))
        tname = self.match_template(name)
        if tname is not None and "data_stream" in self.templates[tname]:
            ds = self.create_stream(name, tname)
            return ds.indices[-1], ds, None
        return self.create_index(name), None, None

    # -- resolution for reads

    def resolve(self, expr, ignore_unavailable=False, include_hidden=False):
        """Concrete index objects for a comma list of names/patterns."""
        out = {}
        parts = [p for p in expr.split(",") if p] if expr else ["_all"]
        for p in parts:
            if p in ("_all", "*"):
                p = "*"
            neg = p.startswith("-") and p != "-" and out
            if neg:
                p = p[1:]
            found = []
            if is_wild(p):
                dot = p.startswith(".") or include_hidden
                for n, i in self.indices.items():
                    if fnmatch.fnmatchcase(n, p) and (dot or not i.hidden):
                        found.append(i)
                for n, ds in self.streams.items():
                    if fnmatch.fnmatchcase(n, p):
                        found.extend(ds.indices)
                for a, members in self.aliases.items():
                    if fnmatch.fnmatchcase(a, p):
                        found.extend(self._alias_members(members))
            else:
                if p in self.streams:
                    found.extend(self.streams[p].indices)
                elif p in self.indices:
                    found.append(self.indices[p])
                elif p in self.aliases:
                    found.extend(self._alias_members(self.aliases[p]))
                elif not neg and not ignore_unavailable:
                    return None, p
            for i in found:
                if neg:
                    out.pop(i.name, None)
                else:
                    out[i.name] = i
        return list(out.values()), None

    def _alias_members(self, members):
        res = []
        for n in members:
            if n in self.streams:
                res.extend(self.streams[n].indices)
            elif n in self.indices:
                res.append(self.indices[n])
        return res

    def drop_index(self, idx):
        del self.indices[idx.name]
        for a in list(self.aliases):
            self.aliases[a].pop(idx.name, None)
            if not self.aliases[a]:
                del self.aliases[a]
        if idx.ds is not None:
            idx.ds.indices.remove(idx)


# ----------------------------------------------------------------- search

class QueryError(Exception):
    def __init__(self, etype, reason, status=400):
        Exception.__init__(self, reason)
        self.etype, self.reason, self.status = etype, reason, status


def _tokens(s):
    return [t for t in re.split(r"[^\w]+", str(s).lower()) if t]


def _field_vals(flat, f):
    v = flat.get(f)
    if v is None and f.endswith(".keyword"):
        v = flat.get(f[:-8])
    return v or ()


def _eq(dv, qv, ci=False):
    if dv == qv and type(dv) is not bool or dv is qv:
        return True
    if isinstance(qv, str):
        if isinstance(dv, bool):
            return qv == ("true" if dv else "false")
        if isinstance(dv, (int, float)):
            try:
                return float(qv) == dv
            except ValueError:
                return False
        if ci and isinstance(dv, str):
            return dv.lower() == qv.lower()
    if isinstance(qv, bool):
        return dv == ("true" if qv else "false")
    if isinstance(qv, (int, float)) and isinstance(dv, str):
        try:
            return float(dv) == qv
        except ValueError:
            return False
    return False


def _one(spec, what):
    if not isinstance(spec, dict) or len(spec) != 1:
        raise QueryError("parsing_exception",
                         "[%s] query malformed, no start_object after query "
                         "name" % what)
    return next(iter(spec.items()))


def compile_query(q, date_fields):
    """A predicate (id, flat doc) -> bool for the supported query DSL."""
    if q is None:
        return lambda i, f: True
    if not isinstance(q, dict) or len(q) != 1:
        raise QueryError("parsing_exception",
                         "[_na] query malformed, must start with start_object")
    kind, body = next(iter(q.items()))
    if kind == "match_all":
        return lambda i, f: True
    if kind == "match_none":
        return lambda i, f: False
    if kind == "term":
        field, v = _one(body, kind)
        ci = False
        if isinstance(v, dict):
            ci = bool(v.get("case_insensitive"))
            v = v.get("value")
        return lambda i, f: any(_eq(x, v, ci) for x in _field_vals(f, field))
    if kind == "terms":
        items = [(k, v) for k, v in body.items() if k != "boost"]
        if len(items) != 1 or not isinstance(items[0][1], list):
            raise QueryError("parsing_exception",
                             "[terms] query does not support multiple fields")
        field, vals = items[0]
        return lambda i, f: any(_eq(x, v) for x in _field_vals(f, field)
                                for v in vals)
    if kind == "ids":
        vals = set(body.get("values", []))
        return lambda i, f: i in vals
    if kind == "exists":
        field = body.get("field")
        pre = field + "."
        return lambda i, f: field in f or any(k.startswith(pre) for k in f)
    if kind == "range":
        field, spec = _one(body, kind)
        is_date = field in date_fields or field == "@timestamp"
        conv = query_date_ms if is_date else None
        bounds = []
        for op in ("gt", "gte", "lt", "lte", "from", "to"):
            if op in spec and spec[op] is not None:
                b = spec[op]
                if conv:
                    b2 = conv(b)
                    if b2 is None:
                        raise QueryError(
                            "parse_exception",
                            "failed to parse date field [%s]" % b)
                    b = b2
                if op == "from":
                    op = "gte" if spec.get("include_lower", True) else "gt"
                if op == "to":
                    op = "lte" if spec.get("include_upper", True) else "lt"
                bounds.append((op, b))

        def rng(i, f):
            for x in _field_vals(f, field):
                if conv:
                    x = parse_date_ms(x)
                    if x is None:
                        continue
                ok = True
                for op, b in bounds:
                    try:
                        if op == "gt" and not x > b or \
                                op == "gte" and not x >= b or \
                                op == "lt" and not x < b or \
                                op == "lte" and not x <= b:
                            ok = False
                            break
                    except TypeError:
                        ok = False
                        break
                if ok:
                    return True
            return False
        return rng
    if kind in ("match", "match_phrase"):
        field, v = _one(body, kind)
        op = "or"
        if isinstance(v, dict):
            op = str(v.get("operator", "or")).lower()
            v = v.get("query")
        if kind == "match_phrase":
            needle = " ".join(_tokens(v))
            return lambda i, f: any(
                needle in " ".join(_tokens(x)) for x in _field_vals(f, field))
        qt = set(_tokens(v))

        def m(i, f):
            for x in _field_vals(f, field):
                if _eq(x, v):
                    return True
                dt = set(_tokens(x))
                if (qt <= dt) if op == "and" else (qt & dt):
                    return True
            return False
        return m
    if kind in ("prefix", "wildcard"):
        field, v = _one(body, kind)
        if isinstance(v, dict):
            v = v.get("value", v.get("wildcard"))
        pat = v + "*" if kind == "prefix" else v
        return lambda i, f: any(isinstance(x, str) and
                                fnmatch.fnmatchcase(x, pat)
                                for x in _field_vals(f, field))
    if kind == "bool":
        def lst(k):
            v = body.get(k, [])
            v = v if isinstance(v, list) else [v]
            return [compile_query(x, date_fields) for x in v]
        must = lst("must") + lst("filter")
        should = lst("should")
        must_not = lst("must_not")
        msm = body.get("minimum_should_match")
        if msm is None:
            msm = 0 if must else (1 if should else 0)
        msm = int(msm)

        def b(i, f):
            for p in must:
                if not p(i, f):
                    return False
            for p in must_not:
                if p(i, f):
                    return False
            if msm:
                n = 0
                for p in should:
                    if p(i, f):
                        n += 1
                        if n >= msm:
                            return True
                return False
            return True
        return b
    if kind == "constant_score":
        return compile_query(body.get("filter"), date_fields)
    raise QueryError("parsing_exception", "unknown query [%s]" % kind)


def sort_specs(sort):
    if sort is None:
        return []
    if not isinstance(sort, list):
        sort = [sort]
    out = []
    for s in sort:
        if isinstance(s, str):
            out.append((s, "desc" if s == "_score" else "asc"))
        elif isinstance(s, dict):
            for field, o in s.items():
                order = o if isinstance(o, str) else (o or {}).get(
                    "order", "asc")
                out.append((field, order))
    return out


# -------------------------------------------------------------- the server

class DoubleServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    tls = None  # ssl.SSLContext when started with --tls-cert

    def finish_request(self, request, client_address):
        # The handshake runs in the request's own thread (ThreadingMixIn),
        # so a slow or failing client cannot stall accept().
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ValueError) as e:
                if self.verbose:
                    sys.stderr.write("esdouble: TLS handshake failed: %s\n"
                                     % e)
                return
        super().finish_request(request, client_address)

    def reset_faults(self):
        """Back to the faults given at start-up minus one-shot counters:
        max body size and wildcard-delete policy are cluster settings."""
        f = json_copy(DEFAULT_FAULTS)
        f["max_body"] = self.start_max_body
        f["destructive_requires_name"] = self.start_drn
        self.store.faults = f


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "esdouble"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("esdouble: " + (fmt % args) + "\n")

    # ---- HTTP plumbing

    def handle_expect_100(self):
        cl = self.headers.get("Content-Length")
        st = self.server.store
        if cl and cl.isdigit() and int(cl) > st.faults["max_body"]:
            self._count("413")
            self.close_connection = True
            self._send(413, b"", close=True)
            return False
        return http.server.BaseHTTPRequestHandler.handle_expect_100(self)

    def _count(self, status):
        st = self.server.store
        with st.lock:
            s = st.stats
            s["requests"] += 1
            key = self._stat_path()
            s["by_path"][key] = s["by_path"].get(key, 0) + 1
            s["by_status"][status] = s["by_status"].get(status, 0) + 1
            ps = s["by_path_status"].setdefault(key, {})
            ps[status] = ps.get(status, 0) + 1

    def _stat_path(self):
        p = urllib.parse.urlsplit(self.path).path
        return "%s %s" % (self.command, p)

    def _send(self, status, body, ctype="application/json", extra=None,
              close=False):
        reason = self.responses.get(status, ("Unknown",))[0]
        hdrs = ["HTTP/1.1 %d %s" % (status, reason),
                "X-Elastic-Product: Elasticsearch"]
        if body and ctype:
            hdrs.append("Content-Type: " + ctype)
        if extra:
            for k, v in extra:
                hdrs.append("%s: %s" % (k, v))
        if close:
            hdrs.append("Connection: close")
            self.close_connection = True
        if body and self.server.gzip_responses and self._accepts_gzip():
            c = zlib.compressobj(3, zlib.DEFLATED, 31)
            body = c.compress(body) + c.flush()
            hdrs.append("Content-Encoding: gzip")
            hdrs.append("Vary: Accept-Encoding")
        if self.command == "HEAD":
            hdrs.append("Content-Length: %d" % len(body))
            body = b""
        else:
            hdrs.append("Content-Length: %d" % len(body))
        head = ("\r\n".join(hdrs) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + body)
        except OSError:
            self.close_connection = True

    def _accepts_gzip(self):
        ae = self.headers.get("Accept-Encoding")
        return bool(ae) and "gzip" in ae.lower()

    def _read_body(self, limit):
        """Raw request body; (None, reason) when it goes over `limit`."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        rf = self.rfile
        if "chunked" in te:
            parts, total, over = [], 0, False
            while True:
                line = rf.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        t = rf.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                data = rf.read(size)
                if len(data) != size:
                    raise ConnectionError("eof in chunk")
                rf.readline(3)
                total += size
                if total > limit:
                    over = True
                elif not over:
                    parts.append(data)
            return (None if over else b"".join(parts)), total
        cl = self.headers.get("Content-Length")
        if not cl:
            return b"", 0
        n = int(cl)
        if n > limit:
            left = n
            while left > 0:
                chunk = rf.read(min(left, 1 << 20))
                if not chunk:
                    raise ConnectionError("eof in body")
                left -= len(chunk)
            return None, n
        data = rf.read(n)
        if len(data) != n:
            raise ConnectionError("eof in body")
        return data, n

    def _dispatch(self):
        srv = self.server
        st = srv.store
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        private = path.startswith("/_double")
        limit = st.faults["max_body"]
        try:
            raw, rawlen = self._read_body(limit)
        except (ConnectionError, ValueError, OSError):
            self.close_connection = True
            return
        with st.lock:
            st.stats["bytes_in"] += rawlen
        if raw is None:
            self._count("413")
            self._send(413, b"", close=True)
            return
        enc = (self.headers.get("Content-Encoding") or "").lower().strip()
        body = raw
        if enc in ("gzip", "deflate", "x-gzip") and raw:
            try:
                d = zlib.decompressobj(47 if enc != "deflate" else 15)
                body = d.decompress(raw, limit + 1)
                if len(body) > limit or d.unconsumed_tail:
                    self._count("413")
                    self._send(413, b"", close=True)
                    return
            except zlib.error as e:
                self._reply(*es_error("parse_exception",
                                      "failed to decompress body: %s" % e,
                                      400))
                return
        q = {}
        for k, v in urllib.parse.parse_qsl(split.query,
                                           keep_blank_values=True):
            q[k] = v
        segs = [urllib.parse.unquote(s) for s in path.split("/") if s]
        if private:
            try:
                status, obj = self.private_api(segs, q, body)
            except (ValueError, KeyError, TypeError) as e:
                status, obj = es_error("illegal_argument_exception",
                                       "bad /_double request: %s" % e, 400)
            self._reply(status, obj, count=False)
            return
        # Authentication comes first, as in ES.
        if srv.auth_user or srv.auth_keys:
            denied = self.check_auth(path)
            if denied:
                return
        faults = st.faults
        fire = None
        drop = False
        with st.lock:
            if faults["drop_count"] > 0 and faults["drop_path"] in path:
                faults["drop_count"] -= 1
                st.stats["dropped"] += 1
                drop = True
            elif faults["fail_count"] > 0 and faults["fail_path"] in path:
                faults["fail_count"] -= 1
                st.stats["faults_fired"] += 1
                fire = faults["fail_status"]
            delay = faults["delay_ms"]
        if drop and faults["drop_mode"] != "after":
            self._drop()
            return
        if fire:
            if delay:
                time.sleep(delay / 1000.0)
            self.injected(fire)
            return
        if body:
            ct = (self.headers.get("Content-Type") or "").split(";")[0]
            ct = ct.strip().lower()
            if ct not in ("application/json", "application/x-ndjson",
                          "application/vnd.elasticsearch+json",
                          "application/vnd.elasticsearch+x-ndjson",
                          "application/yaml", "application/cbor",
                          "application/smile"):
                self._send(406, _dumps({
                    "error": "Content-Type header [%s] is not supported"
                             % (self.headers.get("Content-Type") or ""),
                    "status": 406}).encode())
                self._count("406")
                return
        try:
            status, obj = self.route(self.command, segs, q, body)
        except QueryError as e:
            status, obj = es_error(e.etype, e.reason, e.status)
        if drop:
            self._drop()
            return
        if delay:
            time.sleep(delay / 1000.0)
        fp = q.get("filter_path")
        # ES builds error responses with filtering disabled
        # (AbstractRestChannel.newErrorBuilder), so 4xx/5xx error bodies
        # keep their shape whatever filter_path says.
        if fp and isinstance(obj, (dict, list)) and not (
                status >= 400 and isinstance(obj, dict) and "error" in obj):
            obj = apply_filter_path(obj, fp)
        self._reply(status, obj)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reply(self, status, obj, count=True, extra=None):
        if isinstance(obj, (bytes, bytearray)):
            body, ctype = bytes(obj), "text/plain; charset=UTF-8"
        elif isinstance(obj, str):
            body, ctype = obj.encode(), "text/plain; charset=UTF-8"
        elif obj is None:
            body, ctype = b"", None
        else:
            body = _dumps(obj).encode()
            accept = self.headers.get("Accept") or ""
            ctype = ("application/vnd.elasticsearch+json;compatible-with=8"
                     if "vnd.elasticsearch" in accept
                     else "application/json")
        if count:
            self._count(str(status))
        self._send(status, body, ctype, extra)

    def check_auth(self, path):
        srv = self.server
        h = self.headers.get("Authorization")
        www = [("WWW-Authenticate",
                'Basic realm="security", charset="UTF-8"'),
               ("WWW-Authenticate", "ApiKey")]
        if not h:
            self._reply(*es_error(
                "security_exception",
                "missing authentication credentials for REST request [%s]"
                % self.path, 401, {"header": {"WWW-Authenticate": [
                    'Basic realm="security", charset="UTF-8"', "ApiKey"]}}),
                extra=www)
            return True
        scheme, _, cred = h.partition(" ")
        scheme = scheme.lower()
        cred = cred.strip()
        user = None
        ok = False
        if scheme == "basic" and srv.auth_user:
            try:
                dec = base64.b64decode(cred, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                dec = ""
            user = dec.partition(":")[0]
            ok = dec == srv.auth_user
        elif scheme == "apikey" and srv.auth_keys:
            ok = cred in srv.auth_keys
        if ok:
            self.auth_name = user or "apikey"
            return False
        reason = ("unable to authenticate user [%s] for REST request [%s]"
                  % (user, self.path)) if user is not None else (
            "unable to authenticate with provided credentials and anonymous "
            "access is not allowed for this request")
        self._reply(*es_error("security_exception", reason, 401,
                              {"header": {"WWW-Authenticate": [
                                  'Basic realm="security", charset="UTF-8"',
                                  "ApiKey"]}}), extra=www)
        return True

    def injected(self, status):
        extra = None
        if status == 413:
            self._count("413")
            self._send(413, b"", close=False)
            return
        if status == 429:
            r = es_error("es_rejected_execution_exception",
                         "rejected execution of coordinating operation "
                         "[coordinating_and_primary_bytes=104857600, "
                         "replica_bytes=0, all_bytes=104857600, "
                         "coordinating_operation_bytes=1048576, "
                         "max_coordinating_and_primary_bytes=104857600]",
                         429)
        elif status == 401:
            r = es_error("security_exception",
                         "unable to authenticate with provided credentials "
                         "and anonymous access is not allowed for this "
                         "request", 401)
            extra = [("WWW-Authenticate",
                      'Basic realm="security", charset="UTF-8"'),
                     ("WWW-Authenticate", "ApiKey")]
        elif status == 403:
            r = es_error("security_exception",
                         "action [indices:data/write/bulk] is unauthorized "
                         "for user [sluice] with effective roles [viewer], "
                         "this action is granted by the index privileges "
                         "[create_doc,create,index,write,all]", 403)
        elif status == 503:
            r = es_error("cluster_block_exception",
                         "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
                         503)
        elif status == 500:
            r = es_error("illegal_state_exception",
                         "injected internal error", 500)
        else:
            r = es_error("exception", "injected fault", status)
        self._reply(*r, extra=extra)

    # ---- routing

    def route(self, m, segs, q, body):
        st = self.server.store
        n = len(segs)
        if n == 0:
            if m in ("GET", "HEAD"):
                return 200, self.root_info()
            return self.bad_method(m, "GET, HEAD")
        s0 = segs[0]
        if s0 == "_bulk":
            if m not in ("POST", "PUT"):
                return self.bad_method(m, "POST, PUT")
            return self.bulk(body, None, q)
        if s0 == "_index_template":
            return self.templates_api(m, segs[1:], body, st.templates,
                                      "index_templates", "index_template")
        if s0 == "_component_template":
            return self.templates_api(m, segs[1:], body, st.components,
                                      "component_templates",
                                      "component_template")
        if s0 == "_ilm":
            return self.ilm_api(m, segs[1:], q, body)
        if s0 == "_ingest" and n >= 2 and segs[1] == "pipeline":
            return self.pipeline_api(m, segs[2:], body)
        if s0 == "_data_stream":
            return self.ds_api(m, segs[1:], q, body)
        if s0 in ("_search", "_count"):
            return self.search(s0, None, q, body)
        if s0 == "_cat":
            return self.cat(segs[1:], q)
        if s0 == "_cluster" and n >= 2 and segs[1] == "health":
            return self.health(q)
        if s0 in ("_refresh", "_flush"):
            return 200, {"_shards": SHARDS}
        if s0 in ("_alias", "_aliases") and m in ("GET", "HEAD"):
            return self.get_aliases(None, segs[1] if n > 1 else None)
        if s0 == "_aliases" and m == "POST":
            return self.aliases_api(body)
        if s0 == "_security" and n >= 2 and segs[1] == "_authenticate":
            return 200, {"username": getattr(self, "auth_name", "_anonymous"),
                         "roles": ["superuser"], "enabled": True,
                         "authentication_type": "realm"}
        if s0 == "_license":
            return 200, {"license": {"status": "active", "type": "basic",
                                     "uid": CLUSTER_UUID}}
        if s0 in ("_mapping", "_settings"):
            return self.index_info(m, "*", s0, segs[1:], q)
        if s0.startswith("_"):
            return self.no_handler(m)
        # index-level endpoints
        target = s0
        if n == 1:
            return self.index_api(m, target, q, body)
        s1 = segs[1]
        if s1 == "_bulk":
            if m not in ("POST", "PUT"):
                return self.bad_method(m, "POST, PUT")
            return self.bulk(body, target, q)
        if s1 in ("_search", "_count"):
            return self.search(s1, target, q, body)
        if s1 in ("_refresh", "_flush"):
            with st.lock:
                found, missing = st.resolve(target)
            if missing:
                return not_found_index(missing)
            return 200, {"_shards": SHARDS}
        if s1 == "_rollover":
            return self.rollover(target, q, body)
        if s1 in ("_doc", "_create") and m in ("PUT", "POST"):
            return self.doc_write(s1, target, segs[2] if n > 2 else None, q,
                                  body)
        if s1 == "_doc" and m in ("GET", "HEAD") and n > 2:
            return self.doc_get(target, segs[2])
        if s1 == "_doc" and m == "DELETE" and n > 2:
            return self.doc_write("_delete", target, segs[2], q, body)
        if s1 in ("_alias", "_aliases"):
            if m == "GET":
                return self.get_aliases(target, segs[2] if n > 2 else None)
            if n > 2 and m in ("PUT", "POST", "DELETE"):
                act = "remove" if m == "DELETE" else "add"
                spec = {"index": target, "alias": segs[2]}
                if body and m != "DELETE":
                    spec.update(_loads(body))
                return self.aliases_api(_dumps({"actions": [
                    {act: spec}]}).encode())
        if s1 == "_settings" and m in ("PUT", "POST"):
            return self.put_settings(target, q, body)
        if s1 in ("_settings", "_mapping"):
            return self.index_info(m, target, s1, segs[2:], q)
        if s1 == "_ilm" and n > 2 and segs[2] == "explain":
            return self.ilm_explain(target)
        if s1 == "_lifecycle" and n > 2 and segs[2] == "explain":
            return self.lifecycle_explain(target)
        return self.no_handler(m)

    def no_handler(self, m):
        return 400, {"error": "no handler found for uri [%s] and method [%s]"
                     % (self.path, m), "status": 400}

    def bad_method(self, m, allowed):
        return 405, {"error": "Incorrect HTTP method for uri [%s] and method "
                     "[%s], allowed: [%s]" % (self.path, m, allowed),
                     "status": 405}

    def root_info(self):
        return {"name": NODE_NAME, "cluster_name": CLUSTER_NAME,
                "cluster_uuid": CLUSTER_UUID,
                "version": {"number": ES_VERSION, "build_flavor": "default",
                            "build_type": "docker",
                            "build_hash": "1a77947f34deddb41af25e6f0ddb8e830"
                                          "159c179",
                            "build_date": "2024-08-05T10:05:34.233336849Z",
                            "build_snapshot": False,
                            "lucene_version": "9.11.1",
                            "minimum_wire_compatibility_version": "7.17.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "You Know, for Search"}

    def parse_json(self, body, required=False):
        if not body:
            if required:
                raise QueryError("parse_exception", "request body is "
                                 "required")
            return None
        try:
            return _loads(body)
        except ValueError as e:
            raise QueryError("x_content_parse_exception",
                             "[1:1] Unexpected character: %s" % e)

    # ---- templates

    def templates_api(self, m, rest, body, table, plural, singular):
        st = self.server.store
        name = rest[0] if rest else None
        with st.lock:
            if m in ("GET", "HEAD"):
                names = list(table) if not name else []
                if name:
                    for part in name.split(","):
                        if is_wild(part):
                            names += [k for k in table
                                      if fnmatch.fnmatchcase(k, part)]
                        elif part in table:
                            names.append(part)
                    if not names and not all(is_wild(p)
                                             for p in name.split(",")):
                        return es_error(
                            "resource_not_found_exception",
                            "%s matching [%s] not found" % (
                                singular.replace("_", " "), name), 404)
                return 200, {plural: [{"name": k, singular: json_copy(
                    table[k])} for k in names]}
            if not name:
                return self.bad_method(m, "GET")
            if m in ("PUT", "POST"):
                spec = self.parse_json(body, True)
                if not isinstance(spec, dict):
                    raise QueryError("parse_exception",
                                     "template must be an object")
                if q_create(self.path) and name in table:
                    return es_error("illegal_argument_exception",
                                    "%s [%s] already exists" % (
                                        singular.replace("_", " "), name),
                                    400)
                err = check_template_body(singular, spec)
                if err:
                    return err
                if table is st.templates:
                    err = self.check_index_template(name, spec)
                    if err:
                        return err
                    spec.setdefault("composed_of", [])
                table[name] = spec
                return 200, {"acknowledged": True}
            if m == "DELETE":
                targets = [k for k in table
                           if fnmatch.fnmatchcase(k, name)] if is_wild(
                    name) else [p for p in name.split(",")]
                for t in targets:
                    if t not in table:
                        return es_error(
                            "resource_not_found_exception",
                            "%s matching [%s] not found" % (
                                singular.replace("_", " "), t), 404)
                if table is st.components:
                    # A template that lists it as optional does not hold
                    # it (ES >= 8.8, elasticsearch#95527).
                    for t in targets:
                        users = [k for k, v in st.templates.items()
                                 if t in v.get("composed_of", []) and
                                 t not in v.get(
                                     "ignore_missing_component_templates",
                                     [])]
                        if users:
                            return es_error(
                                "illegal_argument_exception",
                                "component templates [%s] cannot be removed "
                                "as they are still in use by index templates "
                                "[%s]" % (t, ", ".join(users)), 400)
                if table is st.templates:
                    for t in targets:
                        users = [d for d, ds in st.streams.items()
                                 if ds.template == t]
                        if users:
                            return es_error(
                                "illegal_argument_exception",
                                "unable to remove composable templates [%s] "
                                "as they are in use by a data streams [%s]"
                                % (t, ", ".join(users)), 400)
                for t in targets:
                    table.pop(t, None)
                return 200, {"acknowledged": True}
        return self.bad_method(m, "GET, PUT, POST, DELETE")

    def check_index_template(self, name, spec):
        st = self.server.store
        pats = spec.get("index_patterns")
        if isinstance(pats, str):
            pats = spec["index_patterns"] = [pats]
        if not pats:
            return es_error("action_request_validation_exception",
                            "Validation Failed: 1: index patterns are "
                            "missing;", 400)
        missing = [c for c in spec.get("composed_of", [])
                   if c not in st.components and c not in spec.get(
                       "ignore_missing_component_templates", [])]
        if missing:
            return es_error(
                "invalid_index_template_exception",
                "index_template [%s] invalid, cause [index template [%s] "
                "specifies component templates %s that do not exist]"
                % (name, name, "[" + ", ".join(missing) + "]"), 400)
        prio = spec.get("priority", 0)
        for other, t in st.templates.items():
            if other == name or t.get("priority", 0) != prio:
                continue
            for a in pats:
                for b in t.get("index_patterns", []):
                    if fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a):
                        return es_error(
                            "illegal_argument_exception",
                            "index template [%s] has index patterns %s "
                            "matching patterns from existing templates [%s] "
                            "with patterns (%s => %s) that have the same "
                            "priority [%d], multiple index templates may not "
                            "match during index creation, please use a "
                            "different priority" % (
                                name, "[" + ", ".join(pats) + "]", other,
                                other, "[" + ", ".join(
                                    t["index_patterns"]) + "]", prio), 400)
        return None

    # ---- ingest pipelines

    def pipeline_api(self, m, rest, body):
        st = self.server.store
        name = rest[0] if rest else None
        with st.lock:
            if m in ("GET", "HEAD"):
                if not name:
                    names = list(st.pipelines)
                else:
                    names = []
                    for part in name.split(","):
                        names += [k for k in st.pipelines
                                  if fnmatch.fnmatchcase(k, part)]
                # ES answers an unknown id with 404 and an empty object.
                if name and not names:
                    return 404, {}
                return 200, {k: json_copy(st.pipelines[k]) for k in names}
            if not name:
                return self.bad_method(m, "GET")
            if m == "PUT":
                spec = self.parse_json(body, True)
                err = check_pipeline_body(spec)
                if err:
                    return err
                st.pipelines[name] = spec
                return 200, {"acknowledged": True}
            if m == "DELETE":
                targets = [k for k in st.pipelines
                           if fnmatch.fnmatchcase(k, name)]
                if not targets:
                    return es_error("resource_not_found_exception",
                                    "pipeline [%s] is missing" % name, 404)
                for t in targets:
                    st.pipelines.pop(t, None)
                return 200, {"acknowledged": True}
        return self.bad_method(m, "GET, PUT, DELETE")

    def ingest(self, name, meta, src):
        """Run the pipelines an index/create item goes through, as ES's
        IngestService: the item's `pipeline` (or the request's ?pipeline=)
        replaces the index's default_pipeline ("_none": no pipeline), the
        final_pipeline runs after it. A pipeline that does not exist fails
        the item (400 illegal_argument_exception), not the request.
        Returns (src, error item or None)."""
        st = self.server.store
        default, final = st.index_pipelines(name)
        pipe = meta.get("pipeline", default)
        chain = [p for p in (pipe, final) if p and p != "_none"]
        if not chain:
            return src, None
        doc = None
        for p in chain:
            spec = st.pipelines.get(p)
            if spec is None:
                return src, {"_index": name, "_id": meta.get("_id"),
                             "status": 400, "error": item_error(
                                 "illegal_argument_exception",
                                 "pipeline with id [%s] does not exist" % p)}
            runs = st.stats["pipelines_run"]
            runs[p] = runs.get(p, 0) + 1
            procs = [pr for pr in spec.get("processors", [])
                     if next(iter(pr)) in ("set", "remove")]
            if not procs:
                continue
            if doc is None:
                try:
                    doc = _loads(src)
                except ValueError:
                    return src, None      # the shard reports it
                if type(doc) is not dict:
                    return src, None
            for pr in procs:
                run_processor(doc, pr)
        return (src if doc is None else _dumps(doc)), None

    # ---- ILM

    def ilm_api(self, m, rest, q, body):
        st = self.server.store
        if rest and rest[0] == "status":
            return 200, {"operation_mode": "RUNNING"}
        if not rest or rest[0] != "policy":
            return self.no_handler(m)
        name = rest[1] if len(rest) > 1 else None
        with st.lock:
            if m == "GET":
                if name:
                    names = [k for k in st.policies
                             if any(fnmatch.fnmatchcase(k, p)
                                    for p in name.split(","))]
                    if not names:
                        return es_error(
                            "resource_not_found_exception",
                            "Lifecycle policy not found: [%s]" % name, 404)
                else:
                    names = list(st.policies)
                out = {}
                for k in names:
                    p = st.policies[k]
                    in_use = [i.name for i in st.indices.values()
                              if i.settings.get("index.lifecycle.name") == k]
                    out[k] = {"version": p["version"],
                              "modified_date": iso_ms(p["modified"]),
                              "policy": json_copy(p["policy"]),
                              "in_use_by": {
                                  "indices": in_use,
                                  "data_streams": sorted({
                                      st.indices[i].ds.name for i in in_use
                                      if st.indices[i].ds}),
                                  "composable_templates": [
                                      t for t in st.templates
                                      if k == self.template_setting(
                                          t, "index.lifecycle.name")]}}
                return 200, out
            if not name:
                return self.bad_method(m, "GET")
            if m == "PUT":
                spec = self.parse_json(body, True)
                pol = spec.get("policy") if isinstance(spec, dict) else None
                extra = [k for k in (spec if isinstance(spec, dict) else {})
                         if k != "policy"]
                if extra:
                    return es_error("x_content_parse_exception",
                                    "[1:2] [put_lifecycle_request] unknown "
                                    "field [%s]" % extra[0], 400)
                if not isinstance(pol, dict):
                    return es_error("x_content_parse_exception",
                                    "[1:2] [put_lifecycle_request] "
                                    "policy is required", 400)
                old = st.policies.get(name)
                st.policies[name] = {"policy": pol, "modified": now_ms(),
                                     "version": old["version"] + 1
                                     if old else 1}
                return 200, {"acknowledged": True}
            if m == "DELETE":
                if name not in st.policies:
                    return es_error("resource_not_found_exception",
                                    "Lifecycle policy not found: [%s]" % name,
                                    404)
                users = [i.name for i in st.indices.values()
                         if i.settings.get("index.lifecycle.name") == name]
                if users:
                    return es_error(
                        "illegal_argument_exception",
                        "Cannot delete policy [%s]. It is in use by one or "
                        "more indices: %s" % (name, "[" + ", ".join(users)
                                               + "]"), 400)
                del st.policies[name]
                return 200, {"acknowledged": True}
        return self.bad_method(m, "GET, PUT, DELETE")

    def template_setting(self, tname, key):
        st = self.server.store
        if tname not in st.templates:
            return None
        merged, _ = st.resolve_template(tname)
        return merged["settings"].get(key)

    def ilm_explain(self, target):
        st = self.server.store
        with st.lock:
            found, missing = st.resolve(target)
            if missing:
                return not_found_index(missing)
            out = {}
            for i in found:
                pol = i.settings.get("index.lifecycle.name")
                if pol:
                    out[i.name] = {"index": i.name, "managed": True,
                                   "policy": pol,
                                   "index_creation_date_millis": i.created,
                                   "time_since_index_creation": "%dms" % (
                                       now_ms() - i.created),
                                   "lifecycle_date_millis": i.created,
                                   "phase": "hot", "action": "rollover",
                                   "step": "check-rollover-ready",
                                   "phase_time_millis": i.created}
                else:
                    out[i.name] = {"index": i.name, "managed": False}
        return 200, {"indices": out}

    def lifecycle_explain(self, target):
        st = self.server.store
        with st.lock:
            found, missing = st.resolve(target)
            if missing:
                return not_found_index(missing)
            out = {}
            for i in found:
                lc = i.ds.lifecycle if i.ds else None
                if lc and lc.get("enabled", True):
                    out[i.name] = {"index": i.name,
                                   "managed_by_lifecycle": True,
                                   "index_creation_date_millis": i.created,
                                   "time_since_index_creation": "%dms" % (
                                       now_ms() - i.created),
                                   "lifecycle": json_copy(lc)}
                else:
                    out[i.name] = {"index": i.name,
                                   "managed_by_lifecycle": False}
        return 200, {"indices": out}

    # ---- data streams

    def ds_names(self, expr):
        st = self.server.store
        if not expr or expr in ("*", "_all"):
            return [n for n, d in st.streams.items() if not d.hidden], None
        names = []
        for p in expr.split(","):
            if is_wild(p):
                names += [n for n in st.streams if fnmatch.fnmatchcase(n, p)]
            elif p in st.streams:
                names.append(p)
            else:
                return None, p
        return list(dict.fromkeys(names)), None

    def ds_info(self, ds):
        st = self.server.store
        w = ds.indices[-1] if ds.indices else None
        pol = w.settings.get("index.lifecycle.name") if w else None
        info = {"name": ds.name, "timestamp_field": {"name": "@timestamp"},
                "indices": [], "generation": ds.generation, "status":
                "GREEN" if st.faults["health"] != "red" else "RED",
                "template": ds.template, "hidden": ds.hidden,
                "system": False, "allow_custom_routing": False,
                "replicated": False, "rollover_on_write": False,
                "prefer_ilm": True}
        dsl = bool(ds.lifecycle and ds.lifecycle.get("enabled", True))
        for i in ds.indices:
            ip = i.settings.get("index.lifecycle.name")
            # ES: a policy wins over the stream's lifecycle while the
            # index prefers ILM (index.lifecycle.prefer_ilm, default true).
            prefer = i.settings.get("index.lifecycle.prefer_ilm",
                                    "true") != "false"
            info["indices"].append({
                "index_name": i.name, "index_uuid": i.uuid,
                "prefer_ilm": prefer, "ilm_policy": ip,
                "managed_by": "Index Lifecycle Management"
                if ip and (prefer or not dsl) else
                ("Data stream lifecycle" if dsl else "Unmanaged")})
        if pol:
            info["ilm_policy"] = pol
        if ds.lifecycle is not None:
            info["lifecycle"] = lifecycle_view(ds.lifecycle)
            info["next_generation_managed_by"] = "Data stream lifecycle"
        else:
            info["next_generation_managed_by"] = (
                "Index Lifecycle Management" if pol else "Unmanaged")
        return info

    def ds_api(self, m, rest, q, body):
        st = self.server.store
        name = rest[0] if rest else None
        sub = rest[1] if len(rest) > 1 else None
        with st.lock:
            if sub == "_lifecycle":
                return self.ds_lifecycle(m, name, body)
            if sub == "_stats" or name == "_stats":
                names, missing = self.ds_names(
                    None if name == "_stats" else name)
                if missing:
                    return not_found_index(missing)
                out = []
                for n in names:
                    ds = st.streams[n]
                    ts = [parse_date_ms(_loads(d[0]).get("@timestamp"))
                          for i in ds.indices for d in i.docs.values()
                          if d[0] is not None]
                    ts = [t for t in ts if t is not None]
                    out.append({"data_stream": n,
                                "backing_indices": len(ds.indices),
                                "store_size_bytes": 0,
                                "maximum_timestamp": max(ts) if ts else 0})
                return 200, {"_shards": SHARDS, "data_stream_count": len(out),
                             "backing_indices": sum(
                                 o["backing_indices"] for o in out),
                             "total_store_size_bytes": 0,
                             "data_streams": out}
            if m == "GET":
                names, missing = self.ds_names(name)
                if missing:
                    return not_found_index(missing)
                return 200, {"data_streams": [self.ds_info(st.streams[n])
                                              for n in names]}
            if not name:
                return self.bad_method(m, "GET")
            if m == "PUT":
                if name in st.streams:
                    return es_error("resource_already_exists_exception",
                                    "data_stream [%s] already exists" % name,
                                    400)
                if name in st.indices or name in st.aliases:
                    return es_error("resource_already_exists_exception",
                                    "index [%s] already exists" % name, 400)
                bad = validate_index_name(name)
                if bad:
                    return es_error("invalid_index_name_exception",
                                    "Invalid index name [%s], %s" % (
                                        name, bad), 400)
                t = st.match_template(name)
                if t is None or "data_stream" not in st.templates[t]:
                    return es_error("illegal_argument_exception",
                                    "no matching index template found for "
                                    "data stream [%s]" % name, 400)
                st.create_stream(name, t)
                return 200, {"acknowledged": True}
            if m == "DELETE":
                names, missing = self.ds_names(name)
                if missing:
                    return not_found_index(missing)
                for n in names:
                    ds = st.streams.pop(n)
                    for i in list(ds.indices):
                        st.drop_index(i)
                return 200, {"acknowledged": True}
        return self.bad_method(m, "GET, PUT, DELETE")

    def ds_lifecycle(self, m, name, body):
        st = self.server.store
        names, missing = self.ds_names(name)
        if missing:
            return not_found_index(missing)
        if m == "GET":
            return 200, {"data_streams": [
                {"name": n, **({"lifecycle": lifecycle_view(
                    st.streams[n].lifecycle)} if st.streams[n].lifecycle
                    is not None else {})} for n in names],
                "global_retention": {}}
        if m == "PUT":
            spec = self.parse_json(body) or {}
            if not isinstance(spec, dict):
                raise QueryError("parse_exception", "expected an object")
            lc = {"enabled": spec.get("enabled", True)}
            if "data_retention" in spec:
                if duration_ms(spec["data_retention"]) is None:
                    return es_error(
                        "illegal_argument_exception",
                        "failed to parse setting [data_retention] with value "
                        "[%s] as a time value: unit is missing or "
                        "unrecognized" % spec["data_retention"], 400)
                lc["data_retention"] = spec["data_retention"]
            if "downsampling" in spec:
                lc["downsampling"] = spec["downsampling"]
            for n in names:
                st.streams[n].lifecycle = json_copy(lc)
            return 200, {"acknowledged": True}
        if m == "DELETE":
            for n in names:
                st.streams[n].lifecycle = None
            return 200, {"acknowledged": True}
        return self.bad_method(m, "GET, PUT, DELETE")

    def rollover(self, target, q, body):
        st = self.server.store
        with st.lock:
            ds = st.streams.get(target)
            if ds is None:
                al = st.aliases.get(target)
                if al is None:
                    return es_error("index_not_found_exception",
                                    "rollover target [%s] does not exist"
                                    % target, 404)
                return es_error("illegal_argument_exception",
                                "rollover of aliases is not supported by "
                                "the test double; use a data stream", 400)
            old = ds.indices[-1].name
            dry = q.get("dry_run") in ("", "true")
            if dry:
                day = time.strftime("%Y.%m.%d", time.gmtime())
                new = ".ds-%s-%s-%06d" % (ds.name, day, ds.generation + 1)
            else:
                new = st.roll(ds).name
            conds = {}
            spec = self.parse_json(body) or {}
            for k in (spec.get("conditions") or {}):
                conds["[%s: %s]" % (k, spec["conditions"][k])] = False
            return 200, {"acknowledged": not dry,
                         "shards_acknowledged": not dry,
                         "old_index": old, "new_index": new,
                         "rolled_over": not dry, "dry_run": dry,
                         "lazy": False, "conditions": conds}

    # ---- indices

    def index_api(self, m, target, q, body):
        st = self.server.store
        with st.lock:
            if m == "PUT":
                spec = self.parse_json(body) or {}
                err = check_mappings(spec.get("mappings"))
                if err:
                    return err
                if target in st.indices or target in st.streams or \
                        target in st.aliases:
                    i = st.indices.get(target)
                    return es_error(
                        "resource_already_exists_exception",
                        "index [%s/%s] already exists" % (
                            target, i.uuid if i else "_na_"), 400,
                        {"index_uuid": i.uuid if i else "_na_",
                         "index": target})
                bad = validate_index_name(target)
                if bad:
                    return es_error("invalid_index_name_exception",
                                    "Invalid index name [%s], %s" % (
                                        target, bad), 400,
                                    {"index_uuid": "_na_", "index": target})
                t = st.match_template(target)
                if t is not None and "data_stream" in st.templates[t]:
                    return es_error(
                        "illegal_argument_exception",
                        "cannot create index with name [%s], because it "
                        "matches with template [%s] that creates data "
                        "streams only, use create data stream api instead"
                        % (target, t), 400)
                st.create_index(target, spec)
                return 200, {"acknowledged": True,
                             "shards_acknowledged": True, "index": target}
            if m == "DELETE":
                return self.delete_indices(target, q)
            if m in ("GET", "HEAD"):
                found, missing = st.resolve(
                    target, q.get("ignore_unavailable") == "true")
                if missing:
                    if m == "HEAD":
                        return 404, None
                    return not_found_index(missing)
                if m == "HEAD":
                    return (200 if found or is_wild(target) else 404), None
                out = {}
                for i in found:
                    out[i.name] = {
                        "aliases": {a: {} for a, mem in st.aliases.items()
                                    if i.name in mem},
                        "mappings": json_copy(i.mappings),
                        "settings": nest_settings(i.settings)}
                    if i.ds:
                        out[i.name]["data_stream"] = i.ds.name
                return 200, out
        return self.bad_method(m, "GET, HEAD, PUT, DELETE")

    def delete_indices(self, target, q):
        st = self.server.store
        parts = [p for p in target.split(",") if p]
        wild = any(is_wild(p) or p == "_all" for p in parts)
        if wild and st.faults["destructive_requires_name"]:
            return es_error("illegal_argument_exception",
                            "Wildcard expressions or all indices are not "
                            "allowed", 400)
        victims = []
        for p in parts:
            if p == "_all":
                p = "*"
            if is_wild(p):
                victims += [i for n, i in st.indices.items()
                            if fnmatch.fnmatchcase(n, p) and
                            (p.startswith(".") or not i.hidden)]
                continue
            if p in st.streams:
                return es_error(
                    "illegal_argument_exception",
                    "index [%s] is the write index for data stream [%s] and "
                    "cannot be deleted" % (st.streams[p].indices[-1].name, p)
                    if st.streams[p].indices else
                    "The provided expression [%s] matches a data stream, "
                    "specify the corresponding concrete indices instead." % p,
                    400)
            i = st.indices.get(p)
            if i is None:
                if p in st.aliases:
                    return es_error(
                        "illegal_argument_exception",
                        "The provided expression [%s] matches an alias, "
                        "specify the corresponding concrete indices instead."
                        % p, 400)
                if q.get("ignore_unavailable") == "true":
                    continue
                return not_found_index(p)
            victims.append(i)
        for i in victims:
            if i.ds is not None and i.ds.indices[-1] is i:
                return es_error(
                    "illegal_argument_exception",
                    "index [%s] is the write index for data stream [%s] and "
                    "cannot be deleted" % (i.name, i.ds.name), 400)
        for i in victims:
            if i.name in st.indices:
                st.drop_index(i)
        return 200, {"acknowledged": True}

    def index_info(self, m, target, kind, rest, q):
        st = self.server.store
        with st.lock:
            found, missing = st.resolve(
                target, q.get("ignore_unavailable") == "true")
            if missing:
                return not_found_index(missing)
            out = {}
            filt = rest[0] if rest else None
            for i in found:
                if kind == "_mapping":
                    out[i.name] = {"mappings": json_copy(i.mappings)}
                    continue
                flat = dict(i.settings)
                if filt:
                    pats = filt.split(",")
                    flat = {k: v for k, v in flat.items()
                            if any(fnmatch.fnmatchcase(k, p) for p in pats)}
                    if not flat:
                        continue
                out[i.name] = {"settings": flat if q.get("flat_settings") ==
                               "true" else nest_settings(flat)}
        return 200, out

    def put_settings(self, target, q, body):
        """PUT <target>/_settings: dynamic settings of every resolved index
        (a data stream name means all its backing indices)."""
        st = self.server.store
        spec = self.parse_json(body, True)
        if not isinstance(spec, dict):
            raise QueryError("parse_exception", "expected an object")
        if isinstance(spec.get("settings"), dict):
            spec = spec["settings"]
        flat = norm_settings(spec)
        static = sorted(k for k in flat if k in STATIC_SETTINGS)
        with st.lock:
            found, missing = st.resolve(
                target, q.get("ignore_unavailable") == "true")
            if missing:
                return not_found_index(missing)
            if static:
                return es_error(
                    "illegal_argument_exception",
                    "Can't update non dynamic settings [[%s]] for open "
                    "indices %s" % (", ".join(static), "[" + ", ".join(
                        "[%s/%s]" % (i.name, i.uuid) for i in found) + "]"),
                    400)
            for i in found:
                for k, v in flat.items():
                    if v is None:
                        i.settings.pop(k, None)
                    else:
                        i.settings[k] = v
        return 200, {"acknowledged": True}

    def get_aliases(self, target, name):
        st = self.server.store
        with st.lock:
            out = {}
            for a, members in st.aliases.items():
                if name and not any(fnmatch.fnmatchcase(a, p)
                                    for p in name.split(",")):
                    continue
                for idx, spec in members.items():
                    if target and not any(fnmatch.fnmatchcase(idx, p)
                                          for p in target.split(",")):
                        continue
                    out.setdefault(idx, {"aliases": {}})["aliases"][a] = \
                        json_copy(spec)
            if name and not out and not is_wild(name):
                return 404, {"error": "alias [%s] missing" % name,
                             "status": 404}
        return 200, out

    def aliases_api(self, body):
        st = self.server.store
        spec = self.parse_json(body, True)
        with st.lock:
            for act in spec.get("actions", []):
                (kind, a), = act.items()
                idxs = a.get("indices") or [a.get("index")]
                names = a.get("aliases") or [a.get("alias")]
                for ix in idxs:
                    if ix not in st.indices and ix not in st.streams:
                        return not_found_index(ix)
                    for al in names:
                        if kind == "add":
                            s = {k: v for k, v in a.items() if k in (
                                "is_write_index", "filter", "routing",
                                "is_hidden")}
                            st.aliases.setdefault(al, {})[ix] = s
                        elif kind == "remove":
                            mem = st.aliases.get(al, {})
                            if ix not in mem:
                                return 404, {"error": "aliases [%s] missing"
                                             % al, "status": 404}
                            del mem[ix]
                            if not mem:
                                del st.aliases[al]
                        elif kind == "remove_index":
                            if ix in st.indices:
                                st.drop_index(st.indices[ix])
        return 200, {"acknowledged": True, "errors": False}

    # ---- cat / health

    def cat(self, rest, q):
        if not rest:
            return 200, "=^.^=\n/_cat/indices\n/_cat/health\n"
        st = self.server.store
        if rest[0] == "health":
            cols = ["epoch", "timestamp", "cluster", "status", "node.total",
                    "node.data", "shards", "pri", "relo", "init", "unassign",
                    "pending_tasks", "max_task_wait_time",
                    "active_shards_percent"]
            t = int(time.time())
            rows = [{"epoch": str(t), "timestamp": time.strftime(
                "%H:%M:%S", time.gmtime(t)), "cluster": CLUSTER_NAME,
                "status": st.faults["health"], "node.total": "1",
                "node.data": "1", "shards": str(len(st.indices)),
                "pri": str(len(st.indices)), "relo": "0", "init": "0",
                "unassign": "0", "pending_tasks": "0",
                "max_task_wait_time": "-", "active_shards_percent": "100.0%"}]
            return self.cat_out(cols, cols, rows, q)
        if rest[0] != "indices":
            return self.no_handler("GET")
        with st.lock:
            found, missing = st.resolve(rest[1] if len(rest) > 1 else "*",
                                        include_hidden=True)
            if missing:
                return not_found_index(missing)
            rows = []
            for i in found:
                n = len(i.docs)
                size = sum(len(d[0]) for d in i.docs.values()
                           if d[0] is not None) if n < 200000 else n * 200
                rows.append({
                    "health": "green" if st.faults["health"] == "green"
                    else st.faults["health"],
                    "status": "close" if i.closed else "open",
                    "index": i.name, "uuid": i.uuid, "pri": "1", "rep": "1",
                    "docs.count": str(n), "docs.deleted": "0",
                    "creation.date": str(i.created),
                    "creation.date.string": iso_ms(i.created),
                    "store.size": cat_bytes(size, q.get("bytes")),
                    "pri.store.size": cat_bytes(size, q.get("bytes")),
                    "dataset.size": cat_bytes(size, q.get("bytes"))})
        default = ["health", "status", "index", "uuid", "pri", "rep",
                   "docs.count", "docs.deleted", "store.size",
                   "pri.store.size", "dataset.size"]
        allcols = default + ["creation.date", "creation.date.string"]
        return self.cat_out(default, allcols, rows, q)

    def cat_out(self, default, allcols, rows, q):
        cols = default
        if q.get("h"):
            cols = [c for c in q["h"].split(",") if c in allcols]
        if q.get("s"):
            for key in reversed(q["s"].split(",")):
                field, _, order = key.partition(":")
                numeric = field in ("docs.count", "creation.date", "pri",
                                    "rep", "docs.deleted")
                rows.sort(key=lambda r: int(r.get(field, "0")) if numeric
                          else r.get(field, ""), reverse=order == "desc")
        else:
            rows.sort(key=lambda r: r.get("index", ""))
        if q.get("format") == "json":
            return 200, [{c: r.get(c) for c in cols} for r in rows]
        table = [[r.get(c, "") for c in cols] for r in rows]
        if q.get("v") in ("", "true"):
            table.insert(0, cols)
        if not table:
            return 200, ""
        widths = [max(len(row[k]) for row in table) for k in range(len(cols))]
        lines = [" ".join(row[k].ljust(widths[k])
                          for k in range(len(cols))).rstrip()
                 for row in table]
        return 200, "\n".join(lines) + "\n"

    def health(self, q):
        st = self.server.store
        status = st.faults["health"]
        with st.lock:
            n = len(st.indices)
        body = {"cluster_name": CLUSTER_NAME, "status": status,
                "timed_out": False, "number_of_nodes": 1,
                "number_of_data_nodes": 1, "active_primary_shards": n,
                "active_shards": n, "relocating_shards": 0,
                "initializing_shards": 0, "unassigned_shards": 0,
                "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0,
                "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0}
        want = q.get("wait_for_status")
        rank = {"red": 0, "yellow": 1, "green": 2}
        if want and rank.get(status, 0) < rank.get(want, 0):
            body["timed_out"] = True
            return 408, body
        return 200, body

    # ---- documents

    def doc_get(self, target, doc_id):
        st = self.server.store
        with st.lock:
            found, missing = st.resolve(target)
            if missing:
                return not_found_index(missing)
            for i in found:
                d = i.docs.get(doc_id)
                if d is not None:
                    r = {"_index": i.name, "_id": doc_id, "_version": d[2],
                         "_seq_no": d[1], "_primary_term": 1, "found": True}
                    if d[0] is not None:
                        r["_source"] = _loads(d[0])
                    return 200, r
            name = found[-1].name if len(found) == 1 else target
            return 404, {"_index": name, "_id": doc_id, "found": False}

    def doc_write(self, kind, target, doc_id, q, body):
        """Single-document APIs, run through the bulk engine."""
        if kind == "_delete":
            act, src = "delete", None
        else:
            act = "create" if kind == "_create" or q.get("op_type") == \
                "create" else "index"
            src = body.decode("utf-8", "replace") if body else ""
        meta = {"_index": target}
        if doc_id is not None:
            meta["_id"] = doc_id
        for k in ("if_seq_no", "if_primary_term", "routing", "pipeline",
                  "require_alias", "version", "version_type"):
            if k in q:
                meta[k] = q[k]
        st = self.server.store
        with st.lock:
            res = self.execute(act, meta, src, None)
        item = res
        if "error" in item:
            e = item["error"]
            return item["status"], {"error": {"root_cause": [
                {k: v for k, v in e.items() if k != "caused_by"}], **e},
                "status": item["status"]}
        item.pop("status")
        return res_status(item), item

    # ---- _bulk

    def bulk(self, body, default_index, q):
        t0 = time.monotonic()
        st = self.server.store
        if not body:
            return es_error("parse_exception", "request body is required",
                            400)
        if body[-1:] != b"\n":
            return es_error("illegal_argument_exception",
                            "The bulk request must be terminated by a "
                            "newline [\\n]", 400)
        text = body.decode("utf-8", "replace")
        lines = text.split("\n")
        lines.pop()
        ops = []
        n = len(lines)
        i = 0
        missing_index = []
        missing_id = []
        while i < n:
            line = lines[i]
            i += 1
            if not line or line.isspace():
                continue
            lineno = i
            try:
                a = _loads(line)
            except ValueError as e:
                return es_error("x_content_parse_exception",
                                "[%d:1] Malformed action/metadata line [%d], "
                                "%s" % (lineno, lineno, e), 400)
            if type(a) is not dict or len(a) != 1:
                return es_error(
                    "illegal_argument_exception",
                    "Malformed action/metadata line [%d], expected "
                    "START_OBJECT or END_OBJECT but found [%s]" % (
                        lineno, "VALUE_STRING" if type(a) is not dict else
                        "FIELD_NAME"), 400)
            for act, meta in a.items():
                pass
            if act not in ACTIONS:
                return es_error(
                    "illegal_argument_exception",
                    "Malformed action/metadata line [%d], expected one of "
                    "[create, delete, index, update] but found [%s]" % (
                        lineno, act), 400)
            if type(meta) is not dict:
                return es_error(
                    "illegal_argument_exception",
                    "Malformed action/metadata line [%d], expected "
                    "START_OBJECT but found [%s]" % (lineno, "VALUE_STRING"),
                    400)
            if not meta.keys() <= META_KEYS:
                bad = sorted(set(meta) - META_KEYS)[0]
                return es_error(
                    "illegal_argument_exception",
                    "Action/metadata line [%d] contains an unknown parameter "
                    "[%s]" % (lineno, bad), 400)
            if act == "delete":
                src = None
            else:
                if i >= n:
                    return es_error(
                        "illegal_argument_exception",
                        "The bulk request must be terminated by a newline "
                        "[\\n]", 400)
                src = lines[i]
                i += 1
            if "_index" not in meta and default_index is None:
                missing_index.append(len(ops) + 1)
            if act == "update" and meta.get("_id") is None:
                missing_id.append(len(ops) + 1)
            ops.append((act, meta, src))
        if not ops:
            return es_error("action_request_validation_exception",
                            "Validation Failed: 1: no requests added;", 400)
        if missing_index or missing_id:
            msgs = ["index is missing"] * len(missing_index) + \
                ["id is missing"] * len(missing_id)
            return es_error("action_request_validation_exception",
                            "Validation Failed: " + "".join(
                                "%d: %s;" % (k + 1, m)
                                for k, m in enumerate(msgs)), 400)
        items = []
        errors = False
        execute = self.execute
        gp = q.get("pipeline")
        if gp is not None:
            # The request's pipeline applies to the items that name none.
            ops = [(a, m if a in ("update", "delete") or "pipeline" in m
                    else dict(m, pipeline=gp), s) for a, m, s in ops]
        with st.lock:
            stats = st.stats
            if gp is not None:
                bp = stats["bulk_pipeline_params"]
                bp[gp] = bp.get(gp, 0) + 1
            ibs = stats["items_by_status"]
            iba = stats["items_by_action"]
            stats["bulk_requests"] += 1
            stats["bulk_items"] += len(ops)
            for act, meta, src in ops:
                r = execute(act, meta, src, default_index)
                s = r["status"]
                ibs[s] = ibs.get(s, 0) + 1
                iba[act] = iba.get(act, 0) + 1
                if "error" in r:
                    errors = True
                items.append({act: r})
        # Whatever survives a bulk is long-lived store data: keep the cyclic
        # GC from rescanning it on every collection (intake slowed 4x at
        # 600k docs without this).
        gc.freeze()
        took = int((time.monotonic() - t0) * 1000)
        return 200, {"took": took, "errors": errors, "items": items}

    def execute(self, act, meta, src, default_index):
        """One bulk item, under the store lock. Returns the item body."""
        st = self.server.store
        faults = st.faults
        name = meta.get("_index") or default_index
        doc_id = meta.get("_id")
        if doc_id is not None and type(doc_id) is not str:
            doc_id = str(doc_id)
        if meta.get("require_alias") in (True, "true") and \
                name not in st.aliases:
            return {"_index": name, "_id": doc_id, "status": 404,
                    "error": item_error(
                        "index_not_found_exception",
                        "no such index [%s] and [require_alias] request flag "
                        "is [true] and [%s] is not an alias" % (name, name),
                        {"index_uuid": "_na_", "index": name})}
        if act in ("create", "index") and src is not None:
            # Pipelines run on the coordinating node, before the write
            # target is looked up or created.
            src, bad = self.ingest(name, meta, src)
            if bad is not None:
                return bad
        idx, ds, err = st.write_target(name, act)
        if err is not None:
            return {"_index": name, "_id": doc_id, "status": err[0],
                    "error": err[1]}
        iname = idx.name
        if ds is not None and act != "create" and name == ds.name:
            return {"_index": name, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "illegal_argument_exception",
                        "only write ops with an op_type of create are "
                        "allowed in data streams")}
        if ds is None and idx.ds is not None and act == "index" and \
                "if_seq_no" not in meta:
            return {"_index": iname, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "illegal_argument_exception",
                        "index request with op_type=index and no "
                        "if_primary_term and if_seq_no set targeting backing "
                        "indices is disallowed, target corresponding data "
                        "stream [%s] instead" % idx.ds.name)}
        if ds is None and idx.ds is not None and act == "create":
            return {"_index": iname, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "illegal_argument_exception",
                        "index request with op_type=create targeting backing "
                        "indices is disallowed, target corresponding data "
                        "stream [%s] instead" % idx.ds.name)}
        if doc_id is None and act != "delete":
            doc_id = st.ids.next()
        elif len(doc_id) > 512:
            return {"_index": iname, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "illegal_argument_exception",
                        "id [%s] is too long, must be no longer than 512 "
                        "bytes but was: %d" % (doc_id, len(doc_id.encode())))}
        if idx.closed:
            return {"_index": iname, "_id": doc_id, "status": 400,
                    "error": item_error("index_closed_exception", "closed",
                                        {"index_uuid": idx.uuid,
                                         "index": iname})}
        # Injected faults come before the shard sees the document.
        if act != "delete":
            if faults["flood_stage"]:
                return {"_index": iname, "_id": doc_id, "status": 429,
                        "error": item_error(
                            "cluster_block_exception",
                            "index [%s] blocked by: [TOO_MANY_REQUESTS/12/"
                            "disk usage exceeded flood-stage watermark, index "
                            "has read-only-allow-delete block];" % iname)}
            fi = faults["forbid_index"]
            if fi and (fnmatch.fnmatchcase(name, fi) or
                       fnmatch.fnmatchcase(iname, fi)):
                return {"_index": iname, "_id": doc_id, "status": 403,
                        "error": item_error(
                            "security_exception",
                            "action [indices:data/write/bulk[s]] is "
                            "unauthorized for user [sluice] with effective "
                            "roles [sluice_writer] on indices [%s], this "
                            "action is granted by the index privileges "
                            "[create_doc,create,index,write,all]" % iname)}
            st.item_counter += 1
            k = faults["item_reject_every"]
            mt = faults["item_reject_match"]
            if (k and st.item_counter % k == 0) or (mt and mt in src):
                lim = faults["item_reject_limit"]
                if not lim or st.stats["item_rejects"] < lim:
                    st.stats["item_rejects"] += 1
                    if faults["item_reject_status"] == 400:
                        return {"_index": iname, "_id": doc_id,
                                "status": 400, "error": item_error(
                                    "document_parsing_exception",
                                    "[1:1] failed to parse: injected mapping "
                                    "error for document with id '%s'"
                                    % doc_id)}
                    return {"_index": iname, "_id": doc_id, "status": 429,
                            "error": item_error(
                                "es_rejected_execution_exception",
                                "rejected execution of primary operation "
                                "[shard_detail=[%s][0][C], shard_primary_"
                                "operation_bytes=1048576, shard_max_primary"
                                "_operation_bytes=1048576] OR [node_"
                                "coordinating_and_primary_bytes=104857600, "
                                "node_replica_bytes=0, node_all_bytes="
                                "104857600, node_max_coordinating_and_primary"
                                "_bytes=104857600]" % iname)}
        if act == "delete":
            return self.op_delete(idx, doc_id, meta)
        try:
            doc = _loads(src)
        except ValueError as e:
            return {"_index": iname, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "document_parsing_exception",
                        "[1:%d] failed to parse: %s" % (
                            getattr(e, "colno", 1), e),
                        caused_by={"type": "x_content_parse_exception",
                                   "reason": "[1:%d] %s" % (
                                       getattr(e, "colno", 1), e)})}
        if type(doc) is not dict:
            return {"_index": iname, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "document_parsing_exception",
                        "[1:1] failed to parse: Root object must be an "
                        "object", caused_by={
                            "type": "not_x_content_exception",
                            "reason": "Compressor detection can only be "
                                      "called on some xcontent bytes or "
                                      "compressed xcontent bytes"})}
        if act == "update":
            return self.op_update(idx, ds, doc_id, doc, meta)
        bad = self.check_doc(idx, doc, doc_id, src)
        if bad is not None:
            return {"_index": iname, "_id": doc_id, **bad}
        return self.op_put(idx, doc_id, src, meta, act == "create")

    def check_doc(self, idx, doc, doc_id, src):
        faults = self.server.store.faults
        if idx.ds is not None and doc.get("@timestamp") is None:
            return {"status": 400, "error": item_error(
                "document_parsing_exception",
                "[1:%d] failed to parse: data stream timestamp field "
                "[@timestamp] is missing" % (len(src) or 1),
                caused_by={"type": "illegal_argument_exception",
                           "reason": "data stream timestamp field "
                                     "[@timestamp] is missing"})}
        checks = idx.checks
        ft = faults["field_types"]
        if ft:
            checks = checks + [(f, f.split(".", 1)[0] if "." in f else f, t,
                                TYPE_CHECKS[t]) for f, t in ft.items()
                               if t in TYPE_CHECKS]
        dotted = False
        for k in doc:
            if "." in k:
                dotted = True
                break
        for path, head, ftype, fn in checks:
            for v in values_at(doc, path, head, dotted):
                if v is None:
                    continue
                if not fn(v):
                    col = src.find('"%s"' % path.rsplit(".", 1)[-1])
                    col = col + len(path.rsplit(".", 1)[-1]) + 4 \
                        if col >= 0 else 1
                    return {"status": 400, "error": item_error(
                        "document_parsing_exception",
                        "[1:%d] failed to parse field [%s] of type [%s] in "
                        "document with id '%s'. Preview of field's value: "
                        "'%s'" % (col, path, ftype, doc_id,
                                  v if not isinstance(v, (dict, list)) else
                                  _dumps(v)),
                        caused_by={"type": "illegal_argument_exception",
                                   "reason": type_reason(ftype, v)})}
        mf = faults["mapping_error_field"]
        if mf and has_field(doc, mf):
            v = get_values(doc, mf)
            v = v[0] if v else "{}"
            return {"status": 400, "error": item_error(
                "document_parsing_exception",
                "[1:%d] failed to parse field [%s] of type [long] in "
                "document with id '%s'. Preview of field's value: '%s'"
                % (max(src.find(mf.rsplit(".", 1)[-1]), 1), mf, doc_id, v),
                caused_by={"type": "illegal_argument_exception",
                           "reason": type_reason("long", v)})}
        if idx.consts:
            for path, head in idx.const_heads:
                want = idx.consts[path]
                for v in values_at(doc, path, head, dotted):
                    if want is None:
                        want = idx.consts[path] = v
                    elif v != want:
                        return {"status": 400, "error": item_error(
                            "document_parsing_exception",
                            "[1:1] failed to parse field [%s] of type "
                            "[constant_keyword] in document with id '%s'. "
                            "Preview of field's value: '%s'" % (
                                path, doc_id, v),
                            caused_by={
                                "type": "illegal_argument_exception",
                                "reason": "[constant_keyword] field [%s] "
                                          "only accepts values that are "
                                          "equal to the value defined in "
                                          "the mappings [%s], but got [%s]"
                                          % (path.rsplit(".", 1)[-1], want,
                                             v)})}
        return None

    def conflict(self, idx, doc_id, reason):
        return {"_index": idx.name, "_id": doc_id, "status": 409,
                "error": item_error(
                    "version_conflict_engine_exception", reason,
                    {"index_uuid": idx.uuid, "shard": "0",
                     "index": idx.name})}

    def check_cond(self, idx, doc_id, cur, meta):
        if "if_seq_no" in meta or "if_primary_term" in meta:
            want_s = int(meta.get("if_seq_no", -2))
            want_t = int(meta.get("if_primary_term", 0))
            if cur is None:
                return self.conflict(
                    idx, doc_id, "[%s]: version conflict, required seqNo "
                    "[%d], primary term [%d]. but no document was found"
                    % (doc_id, want_s, want_t))
            if cur[1] != want_s or want_t != 1:
                return self.conflict(
                    idx, doc_id, "[%s]: version conflict, required seqNo "
                    "[%d], primary term [%d]. current document has seqNo "
                    "[%d] and primary term [1]" % (doc_id, want_s, want_t,
                                                   cur[1]))
        if meta.get("version_type") in ("external", "external_gte") and \
                "version" in meta:
            v = int(meta["version"])
            have = cur[2] if cur else None
            gte = meta["version_type"] == "external_gte"
            if have is not None and (v < have or (v == have and not gte)):
                return self.conflict(
                    idx, doc_id, "[%s]: version conflict, current version "
                    "[%d] is higher or equal to the one provided [%d]"
                    % (doc_id, have, v))
        return None

    def op_put(self, idx, doc_id, src, meta, create):
        docs = idx.docs
        cur = docs.get(doc_id)
        if create and cur is not None:
            return self.conflict(
                idx, doc_id, "[%s]: version conflict, document already "
                "exists (current version [%d])" % (doc_id, cur[2]))
        if "if_seq_no" in meta or "if_primary_term" in meta or \
                "version_type" in meta:
            c = self.check_cond(idx, doc_id, cur, meta)
            if c is not None:
                return c
        idx.seq += 1
        store_src = src if self.server.store.keep_source else None
        if meta.get("version_type") in ("external", "external_gte"):
            ver = int(meta["version"])
        elif cur is not None:
            ver = cur[2] + 1
        else:
            ver = idx.tomb.pop(doc_id, 0) + 1 if idx.tomb else 1
        # Records are tuples: the GC does not track tuples of atoms, so a
        # million stored docs cost it nothing.
        if cur is not None:
            docs[doc_id] = (store_src, idx.seq, ver)
            return {"_index": idx.name, "_id": doc_id, "_version": ver,
                    "result": "updated", "_shards": SHARDS,
                    "_seq_no": idx.seq, "_primary_term": 1, "status": 200}
        docs[doc_id] = (store_src, idx.seq, ver)
        return {"_index": idx.name, "_id": doc_id, "_version": ver,
                "result": "created", "_shards": SHARDS, "_seq_no": idx.seq,
                "_primary_term": 1, "status": 201}

    def op_delete(self, idx, doc_id, meta):
        cur = idx.docs.get(doc_id)
        c = self.check_cond(idx, doc_id, cur, meta)
        if c is not None:
            return c
        idx.seq += 1
        if cur is None:
            return {"_index": idx.name, "_id": doc_id, "_version": 1,
                    "result": "not_found", "_shards": SHARDS,
                    "_seq_no": idx.seq, "_primary_term": 1, "status": 404}
        del idx.docs[doc_id]
        idx.tomb[doc_id] = cur[2] + 1
        return {"_index": idx.name, "_id": doc_id, "_version": cur[2] + 1,
                "result": "deleted", "_shards": SHARDS, "_seq_no": idx.seq,
                "_primary_term": 1, "status": 200}

    def op_update(self, idx, ds, doc_id, body, meta):
        st = self.server.store
        if "script" in body:
            return {"_index": idx.name, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "illegal_argument_exception",
                        "scripted updates are not supported by esdouble")}
        part = body.get("doc")
        cur = idx.docs.get(doc_id)
        c = self.check_cond(idx, doc_id, cur, meta)
        if c is not None:
            return c
        if cur is None:
            if body.get("doc_as_upsert") and isinstance(part, dict):
                new = part
            elif isinstance(body.get("upsert"), dict):
                new = body["upsert"]
            else:
                return {"_index": idx.name, "_id": doc_id, "status": 404,
                        "error": item_error(
                            "document_missing_exception",
                            "[%s]: document missing" % doc_id,
                            {"index_uuid": idx.uuid, "shard": "0",
                             "index": idx.name})}
            src = _dumps(new)
            bad = self.check_doc(idx, new, doc_id, src)
            if bad is not None:
                return {"_index": idx.name, "_id": doc_id, **bad}
            return self.op_put(idx, doc_id, src, {}, True)
        if not isinstance(part, dict):
            return {"_index": idx.name, "_id": doc_id, "status": 400,
                    "error": item_error(
                        "action_request_validation_exception",
                        "Validation Failed: 1: script or doc is missing;")}
        old = _loads(cur[0]) if cur[0] is not None else {}
        merged = deep_merge(json_copy(old), part)
        if merged == old and body.get("detect_noop", True):
            return {"_index": idx.name, "_id": doc_id, "_version": cur[2],
                    "result": "noop", "_shards": {"total": 0,
                                                  "successful": 0,
                                                  "failed": 0},
                    "_seq_no": cur[1], "_primary_term": 1, "status": 200}
        src = _dumps(merged)
        bad = self.check_doc(idx, merged, doc_id, src)
        if bad is not None:
            return {"_index": idx.name, "_id": doc_id, **bad}
        idx.seq += 1
        ver = cur[2] + 1
        idx.docs[doc_id] = (src if st.keep_source else None, idx.seq, ver)
        return {"_index": idx.name, "_id": doc_id, "_version": ver,
                "result": "updated", "_shards": SHARDS, "_seq_no": idx.seq,
                "_primary_term": 1, "status": 200}

    # ---- search

    def search(self, kind, target, q, body):
        st = self.server.store
        spec = self.parse_json(body) or {}
        if not isinstance(spec, dict):
            raise QueryError("parsing_exception", "request body must be an "
                             "object")
        query = spec.get("query")
        if query is None and q.get("q"):
            f, sep, v = q["q"].partition(":")
            query = {"match": {f: v}} if sep else {
                "query_string": {"query": f}}
        with st.lock:
            found, missing = st.resolve(
                target, q.get("ignore_unavailable") == "true")
            if missing:
                return not_found_index(missing)
            date_fields = {"@timestamp"}
            for i in found:
                for path, m in mapped_fields(
                        i.mappings.get("properties")).items():
                    if m.get("type") in ("date", "date_nanos"):
                        date_fields.add(path)
            pred = compile_query(query, date_fields)
            shards = {"total": len(found), "successful": len(found),
                      "skipped": 0, "failed": 0}
            if kind == "_count" and query is None:
                return 200, {"count": sum(len(i.docs) for i in found),
                             "_shards": shards}
            hits = []
            for i in found:
                for doc_id, d in i.docs.items():
                    src = _loads(d[0]) if d[0] is not None else {}
                    flat = flatten(src) if query is not None else None
                    if query is None or pred(doc_id, flat):
                        hits.append((i, doc_id, d, src, flat))
        if kind == "_count":
            return 200, {"count": len(hits), "_shards": shards}
        size = int(q.get("size", spec.get("size", 10)))
        frm = int(q.get("from", spec.get("from", 0)))
        sorts = sort_specs(spec.get("sort") or (
            q["sort"].split(",") if q.get("sort") else None))
        sort_vals = None
        if sorts:
            keyed = []
            for h in hits:
                flat = h[4] if h[4] is not None else flatten(h[3])
                vals = []
                for field, order in sorts:
                    if field == "_doc":
                        vals.append(h[2][1])
                        continue
                    if field == "_score":
                        vals.append(1.0)
                        continue
                    fv = _field_vals(flat, field)
                    v = fv[0] if fv else None
                    if field in date_fields and v is not None:
                        v = parse_date_ms(v)
                    vals.append(v)
                keyed.append((vals, h))
            for k in range(len(sorts) - 1, -1, -1):
                field, order = sorts[k]
                desc = order == "desc"
                present = [x for x in keyed if x[0][k] is not None]
                absent = [x for x in keyed if x[0][k] is None]
                try:
                    present.sort(key=lambda x: x[0][k], reverse=desc)
                except TypeError:
                    present.sort(key=lambda x: str(x[0][k]), reverse=desc)
                keyed = present + absent
            hits = [x[1] for x in keyed]
            sort_vals = [x[0] for x in keyed]
        total = len(hits)
        tth = spec.get("track_total_hits", True if q.get(
            "track_total_hits") == "true" else None)
        relation = "eq"
        shown_total = total
        if tth is not True and total > TOTAL_HITS_LIMIT:
            shown_total, relation = TOTAL_HITS_LIMIT, "gte"
        out_hits = []
        src_on = spec.get("_source", True) is not False
        for pos in range(frm, min(frm + size, total)):
            i, doc_id, d, src, _ = hits[pos]
            h = {"_index": i.name, "_id": doc_id,
                 "_score": None if sorts else 1.0}
            if src_on:
                h["_source"] = src
            if spec.get("seq_no_primary_term"):
                h["_seq_no"] = d[1]
                h["_primary_term"] = 1
            if spec.get("version"):
                h["_version"] = d[2]
            if sort_vals is not None:
                h["sort"] = sort_vals[pos]
            out_hits.append(h)
        return 200, {"took": 1, "timed_out": False, "_shards": shards,
                     "hits": {"total": {"value": shown_total,
                                        "relation": relation},
                              "max_score": None if sorts or not out_hits
                              else 1.0, "hits": out_hits}}

    # ---- private API

    def private_api(self, segs, q, body):
        st = self.server.store
        what = segs[1] if len(segs) > 1 else ""
        m = self.command
        if what == "stats":
            with st.lock:
                s = json_copy(st.stats)
                s["items_by_status"] = {str(k): v for k, v in
                                        s["items_by_status"].items()}
                s["docs_total"] = sum(len(i.docs)
                                      for i in st.indices.values())
                s["docs_by_index"] = {n: len(i.docs)
                                      for n, i in st.indices.items()}
                s["faults"] = json_copy(st.faults)
            s["cpu_seconds"] = round(time.process_time(), 3)
            return 200, s
        if what == "reset":
            part = q.get("what", "all")
            with st.lock:
                if part in ("all", "data"):
                    st.reset_data()
                if part in ("all", "faults"):
                    self.server.reset_faults()
                if part in ("all", "stats"):
                    st.reset_stats()
            return 200, {"acknowledged": True}
        if what == "faults":
            with st.lock:
                if m in ("POST", "PUT"):
                    spec = _loads(body) if body else {}
                    err = set_faults(st.faults, spec)
                    if err:
                        return es_error("illegal_argument_exception", err,
                                        400)
                elif m == "DELETE":
                    self.server.reset_faults()
                return 200, json_copy(st.faults)
        if what == "docs":
            pattern = q.get("index", "*")
            with st.lock:
                found, _ = st.resolve(pattern, True, include_hidden=True)
                docs = [{"_index": i.name, "_id": k, "_seq_no": d[1],
                         "_version": d[2],
                         "_source": _loads(d[0]) if d[0] is not None
                         else None}
                        for i in found for k, d in i.docs.items()]
            return 200, {"docs": docs}
        if what == "creation_date" and m in ("POST", "PUT"):
            spec = _loads(body)
            with st.lock:
                i = st.indices.get(spec["index"])
                if i is None:
                    return not_found_index(spec["index"])
                i.created = int(spec["creation_date"])
                i.settings["index.creation_date"] = str(i.created)
            return 200, {"acknowledged": True}
        if what == "close" and m == "POST":
            spec = _loads(body)
            with st.lock:
                i = st.indices.get(spec["index"])
                if i is None:
                    return not_found_index(spec["index"])
                i.closed = bool(spec.get("closed", True))
            return 200, {"acknowledged": True}
        return 404, {"error": "unknown /_double endpoint", "status": 404}


def lifecycle_view(lc):
    """A lifecycle as ES >= 8.15 shows it, with the effective retention
    (no global retention is configured in the double)."""
    out = json_copy(lc)
    # ES always shows `enabled` (a template's lifecycle block may omit it).
    out.setdefault("enabled", True)
    if "data_retention" in lc:
        out["effective_retention"] = lc["data_retention"]
        out["retention_determined_by"] = "data_stream_configuration"
    return out


# Settings fixed at index creation (PUT _settings refuses them on open
# indices).
STATIC_SETTINGS = frozenset((
    "index.number_of_shards", "index.codec", "index.mode",
    "index.routing_partition_size", "index.sort.field", "index.sort.order",
    "index.creation_date", "index.uuid", "index.provided_name"))


def cat_bytes(n, unit):
    """A size as _cat shows it: in `unit` (the bytes= parameter; whole
    units, rounded down) or, without one, human readable like ES."""
    units = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3,
             "tb": 1024 ** 4, "pb": 1024 ** 5}
    if unit in units:
        return str(n // units[unit])
    for u in ("pb", "tb", "gb", "mb", "kb"):
        if n >= units[u]:
            v = n / units[u]
            return ("%.1f%s" % (v, u)).replace(".0" + u, u)
    return "%db" % n


INDEX_TEMPLATE_KEYS = frozenset((
    "index_patterns", "composed_of", "priority", "version", "_meta",
    "data_stream", "template", "allow_auto_create",
    "ignore_missing_component_templates", "deprecated"))
COMPONENT_TEMPLATE_KEYS = frozenset(("template", "version", "_meta",
                                     "deprecated"))
TEMPLATE_BLOCK_KEYS = frozenset(("settings", "mappings", "aliases",
                                 "lifecycle", "data_stream_options"))
MAPPING_TYPES = frozenset((
    "text", "match_only_text", "keyword", "constant_keyword", "wildcard",
    "long", "integer", "short", "byte", "double", "float", "half_float",
    "scaled_float", "unsigned_long", "date", "date_nanos", "boolean",
    "binary", "ip", "object", "nested", "flattened", "passthrough",
    "geo_point", "geo_shape", "point", "shape", "alias", "version",
    "dense_vector", "sparse_vector", "rank_feature", "rank_features",
    "histogram", "aggregate_metric_double", "token_count",
    "search_as_you_type", "completion", "integer_range", "float_range",
    "long_range", "double_range", "date_range", "ip_range",
    "semantic_text", "percolator", "join", "annotated_text", "counted_keyword"))


def check_mapping_types(props, prefix=""):
    """The first field whose type ES has no handler for, as (field, type)."""
    for name, m in (props or {}).items():
        if not isinstance(m, dict):
            continue
        t = m.get("type")
        if t is not None and t not in MAPPING_TYPES:
            return prefix + name, t
        for sub in ("properties", "fields"):
            if isinstance(m.get(sub), dict):
                bad = check_mapping_types(m[sub], prefix + name + ".")
                if bad:
                    return bad
    return None


def check_mappings(mappings):
    if not isinstance(mappings, dict):
        return None
    bad = check_mapping_types(mappings.get("properties"))
    if bad:
        return es_error("mapper_parsing_exception",
                        "Failed to parse mapping: No handler for type [%s] "
                        "declared on field [%s]" % (bad[1], bad[0]), 400,
                        caused_by={"type": "mapper_parsing_exception",
                                   "reason": "No handler for type [%s] "
                                             "declared on field [%s]"
                                             % (bad[1], bad[0])})
    return None


def check_pipeline_body(spec):
    """PUT _ingest/pipeline/<id>: ES refuses a body without processors
    and processors of unknown types."""
    if not isinstance(spec, dict):
        return es_error("parse_exception", "pipeline must be an object", 400)
    procs = spec.get("processors")
    if not isinstance(procs, list):
        return es_error("parse_exception",
                        "[processors] required property is missing", 400)
    for pr in procs:
        if not isinstance(pr, dict) or len(pr) != 1:
            return es_error("parse_exception",
                            "processor must be an object with one key", 400)
        ptype = next(iter(pr))
        if ptype not in PROCESSOR_TYPES:
            return es_error("parse_exception",
                            "No processor type exists with name [%s]"
                            % ptype, 400, {"processor_type": ptype})
    return None


def run_processor(doc, pr):
    """The two processors the double runs: set and remove (dotted paths,
    literal values)."""
    (ptype, conf), = pr.items()
    fields = conf.get("field")
    for f in (fields if isinstance(fields, list) else [fields]):
        parts = str(f).split(".")
        cur = doc
        for k in parts[:-1]:
            if ptype == "set":
                cur = cur.setdefault(k, {})
            else:
                cur = cur.get(k)
            if not isinstance(cur, dict):
                break
        else:
            if ptype == "set":
                if conf.get("override", True) or parts[-1] not in cur:
                    cur[parts[-1]] = json_copy(conf.get("value"))
            else:
                cur.pop(parts[-1], None)


def check_template_body(kind, spec):
    """ES's parser rejects unknown fields and unknown mapping types; a
    typo in a shipper's template must fail here as it would on ES."""
    allowed = INDEX_TEMPLATE_KEYS if kind == "index_template" else \
        COMPONENT_TEMPLATE_KEYS
    for k in spec:
        if k not in allowed:
            return es_error("x_content_parse_exception",
                            "[1:2] [%s] unknown field [%s]" % (kind, k), 400)
    if kind == "component_template" and "template" not in spec:
        return es_error("x_content_parse_exception",
                        "[1:2] Required [template]", 400)
    block = spec.get("template") or {}
    if not isinstance(block, dict):
        return es_error("x_content_parse_exception",
                        "[1:2] [%s] template doesn't support values of "
                        "type: VALUE_STRING" % kind, 400)
    for k in block:
        if k not in TEMPLATE_BLOCK_KEYS:
            return es_error("x_content_parse_exception",
                            "[1:2] [template] unknown field [%s]" % k, 400)
    return check_mappings(block.get("mappings"))


def res_status(item):
    return 201 if item.get("result") == "created" else 200


def q_create(path):
    return "create=true" in path


def iso_ms(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000.0)) + \
        ".%03dZ" % (ms % 1000)


def duration_ms(s):
    m = re.match(r"^(\d+)(ms|s|m|h|d|nanos|micros)$", str(s))
    if not m:
        return None
    mult = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000,
            "nanos": 1e-6, "micros": 1e-3}[m.group(2)]
    return int(m.group(1)) * mult


def set_faults(f, spec):
    """Merge `spec` into the fault table; returns an error string or None."""
    for k, v in spec.items():
        if k not in DEFAULT_FAULTS:
            return "unknown fault [%s]; known: %s" % (
                k, ", ".join(sorted(DEFAULT_FAULTS)))
        want = type(DEFAULT_FAULTS[k])
        if want is bool:
            v = v in (True, "true", 1, "1")
        elif want is int:
            v = int(v)
        elif want is dict:
            if not isinstance(v, dict):
                return "fault [%s] must be an object" % k
            for t in v.values():
                if t not in TYPE_CHECKS:
                    return "unsupported field type [%s]" % t
        else:
            v = str(v)
        f[k] = v
    if f["drop_mode"] not in ("before", "after"):
        return "drop_mode must be before or after"
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="Elasticsearch 8 test double")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9200)
    ap.add_argument("--user", help="require Basic auth user:password")
    ap.add_argument("--api-key", action="append", default=[],
                    help="accept 'Authorization: ApiKey KEY' (KEY as sent, "
                         "or id:key which is then base64-encoded)")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM "
                    "certificate chain (ES xpack.security.http.ssl)")
    ap.add_argument("--tls-key", help="private key of --tls-cert")
    ap.add_argument("--tls-client-ca", help="require client certificates "
                    "issued by this CA (client_authentication: required)")
    ap.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                    help="max decompressed body bytes (413 above)")
    ap.add_argument("--fail-status", type=int, default=0)
    ap.add_argument("--fail-count", type=int, default=0)
    ap.add_argument("--fail-path", default="/_bulk")
    ap.add_argument("--drop-count", type=int, default=0)
    ap.add_argument("--drop-path", default="/_bulk")
    ap.add_argument("--drop-mode", choices=["before", "after"],
                    default="before")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--item-reject-every", type=int, default=0)
    ap.add_argument("--item-reject-match", default="")
    ap.add_argument("--item-reject-status", type=int, default=429,
                    choices=[400, 429])
    ap.add_argument("--item-reject-limit", type=int, default=0)
    ap.add_argument("--mapping-error-field", default="")
    ap.add_argument("--field-type", action="append", default=[],
                    metavar="FIELD=TYPE")
    ap.add_argument("--flood-stage", action="store_true")
    ap.add_argument("--forbid-index", default="")
    ap.add_argument("--health", default="green",
                    choices=["green", "yellow", "red"])
    ap.add_argument("--allow-wildcard-delete", action="store_true",
                    help="action.destructive_requires_name=false")
    ap.add_argument("--faults", help="JSON object of faults (as /_double)")
    ap.add_argument("--no-builtin-templates", action="store_true",
                    help="no logs-*-* template (like stack templates off)")
    ap.add_argument("--discard-source", action="store_true",
                    help="keep only ids and versions (big benchmarks)")
    ap.add_argument("--no-response-gzip", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--watch-stdin", action="store_true",
                    help="exit when stdin reaches EOF (the parent died)")
    a = ap.parse_args(argv)

    store = Store(builtins=not a.no_builtin_templates,
                  keep_source=not a.discard_source)
    ft = {}
    for s in a.field_type:
        f, _, t = s.partition("=")
        ft[f] = t
    spec = {"fail_status": a.fail_status, "fail_count": a.fail_count,
            "fail_path": a.fail_path, "drop_count": a.drop_count,
            "drop_path": a.drop_path, "drop_mode": a.drop_mode,
            "delay_ms": a.delay_ms, "item_reject_every": a.item_reject_every,
            "item_reject_match": a.item_reject_match,
            "item_reject_status": a.item_reject_status,
            "item_reject_limit": a.item_reject_limit,
            "mapping_error_field": a.mapping_error_field,
            "field_types": ft, "flood_stage": a.flood_stage,
            "forbid_index": a.forbid_index, "max_body": a.max_body,
            "health": a.health,
            "destructive_requires_name": not a.allow_wildcard_delete}
    if a.faults:
        spec.update(json.loads(a.faults))
    err = set_faults(store.faults, spec)
    if err:
        ap.error(err)

    srv = DoubleServer((a.host, a.port), Handler)
    srv.store = store
    srv.verbose = a.verbose
    srv.gzip_responses = not a.no_response_gzip
    srv.auth_user = a.user
    keys = set()
    for k in a.api_key:
        keys.add(k)
        if ":" in k:
            keys.add(base64.b64encode(k.encode()).decode())
    srv.auth_keys = keys
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.tls_client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(a.tls_client_ca)
        srv.tls = ctx
    srv.start_max_body = store.faults["max_body"]
    srv.start_drn = store.faults["destructive_requires_name"]

    def on_term(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    import signal
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if a.watch_stdin:
        # A test runner killed without teardown must not leave us behind:
        # its end of our stdin pipe closes with it.
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            srv.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    sys.stdout.write("READY %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
