"""Access and error logs through agent -> collector -> ES double: the
parsers' ECS fields are indexed with the collector's template types
(source.ip as `ip`, status and bytes as `long`) into the parser's own data
stream, and a line the parser cannot read is indexed too, tagged."""

import os
from urllib.parse import quote

from conftest import wait_until

ACCESS = [
    '93.184.216.34 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 '
    'HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08"',
    '2001:db8::1 - - [10/Oct/2000:13:55:37 -0700] "HEAD / HTTP/1.1" 304 - '
    '"-" "curl/8.5.0"',
    'not an access log line',
]
ERRORS = [
    '2023/10/11 14:32:52 [error] 123#456: *789 open() failed, client: '
    '1.2.3.4, server: example.com',
]


def docs(es, index):
    r = es.request("GET", "/_double/docs?index=" + quote(index, safe=""),
                   timeout=60)
    assert r.status == 200, r
    return [d.get("_source", d) for d in r.json()["docs"]]


def test_nginx_access_and_error_logs(es, stack):
    col = stack.collector(es)
    logdir = os.path.join(stack.workdir, "web-logs")
    os.makedirs(logdir)
    access = os.path.join(logdir, "access.log")
    error = os.path.join(logdir, "error.log")
    with open(access, "w") as f:
        f.write("\n".join(ACCESS) + "\n")
    with open(error, "w") as f:
        f.write("\n".join(ERRORS) + "\n")
    stack.agent(col, "web", overrides={"inputs": [
        {"type": "file", "paths": [access], "parser": "nginx",
         "scan_interval": "200ms"},
        {"type": "file", "paths": [error], "parser": "nginx_error",
         "timezone": "UTC", "scan_interval": "200ms"}]})
    wait_until(lambda: len(docs(es, "logs-nginx.access-*")) == 3 and
               len(docs(es, "logs-nginx.error-*")) == 1, 60,
               what="4 docs in the nginx data streams")
    by_msg = {d["message"]: d for d in docs(es, "logs-nginx.access-*")}
    a = by_msg[ACCESS[0]]
    assert a["@timestamp"] == "2000-10-10T20:55:36.000Z"
    assert a["source"] == {"address": "93.184.216.34",
                           "ip": "93.184.216.34"}
    assert a["http"]["response"] == {"status_code": 200,
                                     "body": {"bytes": 2326}}
    assert a["url"]["original"] == "/a.gif?x=1"
    assert a["event"]["dataset"] == "nginx.access"
    b = by_msg[ACCESS[1]]
    assert b["source"]["ip"] == "2001:db8::1"
    assert "body" not in b["http"]["response"]
    bad = by_msg[ACCESS[2]]
    assert bad["tags"] == ["sluice_nginx_parse_failure"]
    e = docs(es, "logs-nginx.error-*")[0]
    assert e["process"] == {"pid": 123, "thread": {"id": 456}}
    assert e["log"]["level"] == "error"
    assert e["source"]["ip"] == "1.2.3.4"
    assert e["@timestamp"] == "2023-10-11T14:32:52.000Z"
    r = es.request("GET", "/logs-nginx.access-default/_mapping", timeout=30)
    assert r.status == 200, r
    (m,) = r.json().values()
    props = m["mappings"]["properties"]
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["http"]["properties"]["response"]["properties"]["body"][
        "properties"]["bytes"]["type"] == "long"
