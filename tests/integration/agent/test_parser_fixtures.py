"""Table-driven parser fixtures: tests/fixtures/parsers/*.ndjson.

Every case of every fixture file (format: tests/fixtures/parsers/README.md)
goes through the REAL agent: the cases that share a file and a `config`
are written into one log file, one agent with the file output reads it
once, and each case's expectations are checked on the event whose
log.offset is the offset of the case's (first) line. One agent run per
(file, config) group keeps the whole table within seconds.
"""

import base64
import glob
import json
import os

import pytest

from conftest import Agent, SOURCE, wait_until

FIXTURES = os.path.join(SOURCE, "tests", "fixtures", "parsers")

_MISSING = object()


def load_cases():
    cases = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.ndjson"))):
        parser = os.path.basename(path)[:-len(".ndjson")]
        names = set()
        with open(path, encoding="utf-8") as f:
            for no, text in enumerate(f, 1):
                if not text.strip():
                    continue
                case = json.loads(text)
                name = case["name"]
                assert name not in names, "%s:%d: duplicate name %s" % (
                    path, no, name)
                names.add(name)
                case["_file"] = parser
                case["_where"] = "%s:%d" % (os.path.basename(path), no)
                cases.append(case)
    return cases


CASES = load_cases()


def case_lines(case):
    """The bytes of the case's line(s), each ending in a newline."""
    if "line_b64" in case:
        raw = [base64.b64decode(case["line_b64"])]
    else:
        line = case["line"]
        raw = [x.encode("utf-8")
               for x in (line if isinstance(line, list) else [line])]
    for x in raw:
        assert b"\n" not in x, "a line cannot hold a newline"
        assert x.strip(b"\r") != b"", "the pipeline skips empty lines"
    return [x + b"\n" for x in raw]


def input_config(case):
    inp = {"parser": case["_file"]}
    inp.update(case.get("config") or {})
    return inp


def group_key(case):
    return case["_file"] + "\0" + json.dumps(input_config(case),
                                             sort_keys=True)


def read_events(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for x in data[:data.rfind(b"\n") + 1].splitlines():
        try:
            out.append(json.loads(x))
        except ValueError as e:
            raise AssertionError("%s: invalid event %r: %s" % (path, x, e))
    return out


def registry_offset(data_dir, path):
    """The acknowledged offset of `path` in the agent's registry, or -1."""
    try:
        with open(os.path.join(data_dir, "registry.json")) as f:
            entries = json.load(f).get("entries", [])
    except (OSError, ValueError):
        return -1
    return max([e.get("offset", -1) for e in entries
                if e.get("path") == path] or [-1])


class Groups:
    """Runs one agent per group on first use and keeps its events."""

    def __init__(self, base):
        self.base = base
        self.done = {}

    def events_for(self, case):
        key = group_key(case)
        if key not in self.done:
            try:
                self.done[key] = self.run(key)
            except Exception as e:  # every case of the group reports it
                self.done[key] = e
        got = self.done[key]
        if isinstance(got, Exception):
            raise got
        offsets, events = got
        return events.get(offsets[case["name"]])

    def run(self, key):
        group = [c for c in CASES if group_key(c) == key]
        work = os.path.join(self.base, "g%d" % len(self.done))
        os.makedirs(work)
        log = os.path.join(work, "in.log")
        dst = os.path.join(work, "out.ndjson")
        offsets = {}
        with open(log, "wb") as f:
            for c in group:
                offsets[c["name"]] = f.tell()
                for x in case_lines(c):
                    f.write(x)
        inp = {"type": "file", "paths": [log], "scan_interval": "200ms",
               "partial_timeout": "300ms"}
        inp.update(input_config(group[0]))
        cfg = {"data_dir": os.path.join(work, "data"), "log_level": "info",
               "workers": 2, "http": {"listen": "127.0.0.1:0"},
               "registry_flush": "200ms", "flush_interval": "100ms",
               "shutdown_timeout": "10s", "inputs": [inp],
               "output": {"type": "file", "path": dst}}
        a = Agent(work, cfg)
        size = os.path.getsize(log)
        try:
            a.start()
            # Done when every case has its event, or when the registry
            # says the whole file was shipped and acknowledged (cases
            # whose lines were joined into another event, by multiline or
            # cri/docker partial lines, then fail one by one below).
            wait_until(lambda: len(read_events(dst)) >= len(group) or
                       registry_offset(cfg["data_dir"], log) >= size, 60,
                       what="%d events of %s" % (len(group), key))
            assert a.stop() == 0
        finally:
            a.cleanup()
        events = {}
        for ev in read_events(dst):
            events[ev["log"]["offset"]] = ev
        return offsets, events


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    return Groups(str(tmp_path_factory.mktemp("parser-fixtures")))


def lookup(ev, path):
    """Value at a dotted path in nested objects; a key that itself holds
    dots ("@timestamp", labels) is found too. _MISSING if absent."""
    if path in ev:
        return ev[path]
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in ev and isinstance(ev[head], dict):
            got = lookup(ev[head], ".".join(parts[i:]))
            if got is not _MISSING:
                return got
    return _MISSING


def same(a, b):
    """JSON equality that tells 200 from "200" and 1 from true."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("case", CASES,
                         ids=[c["_file"] + ":" + c["name"] for c in CASES])
def test_parser_fixture(groups, case):
    ev = groups.events_for(case)
    where = case["_where"]
    assert ev is not None, "%s: no event for the line" % where
    shown = json.dumps(ev, sort_keys=True)
    for path, want in (case.get("expect") or {}).items():
        got = lookup(ev, path)
        assert got is not _MISSING, "%s: %s absent in %s" % (where, path,
                                                             shown)
        assert same(got, want), "%s: %s = %r, want %r" % (where, path, got,
                                                          want)
    for path in case.get("absent") or []:
        got = lookup(ev, path)
        assert got is _MISSING, "%s: %s = %r, want absent" % (where, path,
                                                              got)
    want_tags = case.get("tags") or []
    assert sorted(ev.get("tags") or []) == sorted(want_tags), \
        "%s: tags %r, want %r" % (where, ev.get("tags"), want_tags)
