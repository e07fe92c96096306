"""syslog and container runtime logs through agent -> collector -> ES
double: the syslog parser's dotted keys (host.hostname, log.syslog) and
cri `then: json` events are indexed into their data streams, and the
indexed documents carry the fields (either form: ES reads a dotted key as
the nested field)."""

import os
import time
from urllib.parse import quote

from conftest import wait_until

# RFC 3164 has no year: two days ago (a loghub date could lie ahead of
# the read time in this year, which the collector refuses as too far in the
# future).
SYSLOG = [
    time.strftime("%b %e %H:%M:%S", time.gmtime(time.time() - 2 * 86400)) +
    " LabSZ sshd[24200]: Failed password for invalid user "
    "test9 from 52.80.34.196 port 36060 ssh2",
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
    "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An "
    "application event log entry",
    "not syslog at all",
]
CRI = [
    "2023-10-11T14:32:52.123456789Z stdout F {\"level\":\"warn\","
    "\"msg\":\"disk low\",\"user\":\"bob\"}",
    "2023-10-11T14:32:53Z stderr P first half, ",
    "2023-10-11T14:32:53Z stderr F second half",
]


def docs(es, index):
    r = es.request("GET", "/_double/docs?index=" + quote(index, safe=""),
                   timeout=60)
    assert r.status == 200, r
    return [d.get("_source", d) for d in r.json()["docs"]]


def path(d, p):
    """A dotted path in a document, through nested objects or dotted
    keys."""
    if p in d:
        return d[p]
    head, _, rest = p.partition(".")
    for k in sorted(d, key=len, reverse=True):
        if p.startswith(k + ".") and isinstance(d[k], dict):
            return path(d[k], p[len(k) + 1:])
    if head in d and isinstance(d[head], dict) and rest:
        return path(d[head], rest)
    raise KeyError(p)


def test_syslog_and_cri_logs(es, stack):
    col = stack.collector(es)
    logdir = os.path.join(stack.workdir, "sys-logs")
    os.makedirs(logdir)
    sys_log = os.path.join(logdir, "syslog")
    pod_log = os.path.join(logdir, "0.log")
    with open(sys_log, "w") as f:
        f.write("\n".join(SYSLOG) + "\n")
    with open(pod_log, "w") as f:
        f.write("\n".join(CRI) + "\n")
    stack.agent(col, "sys", overrides={"inputs": [
        {"type": "file", "paths": [sys_log], "parser": "syslog",
         "timezone": "UTC", "scan_interval": "200ms"},
        {"type": "file", "paths": [pod_log], "parser": "cri",
         "dataset": "kubernetes.container_logs", "then": {"parser": "json"},
         "scan_interval": "200ms"}]})
    wait_until(lambda: len(docs(es, "logs-syslog-*")) == 3 and
               len(docs(es, "logs-kubernetes.container_logs-*")) == 2, 60,
               what="5 docs in the syslog and container data streams")
    by_msg = {d["message"]: d for d in docs(es, "logs-syslog-*")}
    a = by_msg["Failed password for invalid user test9 from 52.80.34.196 "
               "port 36060 ssh2"]
    assert path(a, "host.hostname") == "LabSZ"
    assert a["process"] == {"name": "sshd", "pid": 24200}
    b = by_msg["An application event log entry"]
    assert b["@timestamp"] == "2003-10-11T22:14:15.003Z"
    assert path(b, "log.syslog.priority") == 165
    assert path(b, "log.syslog.facility.name") == "local4"
    assert path(b, "log.syslog.structured_data.exampleSDID@32473.iut") == "3"
    assert path(b, "log.level") == "notice"
    assert by_msg["not syslog at all"]["tags"] == [
        "sluice_syslog_parse_failure"]
    by_msg = {d["message"]: d
              for d in docs(es, "logs-kubernetes.container_logs-*")}
    c = by_msg["disk low"]
    assert c["stream"] == "stdout"
    assert path(c, "log.level") == "warn"
    assert path(c, "app.user") == "bob"
    assert c["@timestamp"] == "2023-10-11T14:32:52.123Z"
    j = by_msg["first half, second half"]
    assert j["stream"] == "stderr"
    assert j["tags"] == ["sluice_json_parse_failure"]
