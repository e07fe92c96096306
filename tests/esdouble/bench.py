#!/usr/bin/python3
"""Throughput of esdouble for small bulk items.

    bench.py [--docs 200000] [--batch 1000] [--conns 2] [--gzip]
             [--filter-path] [--url http://127.0.0.1:9200]

Without --url it starts its own esdouble. The bulks are prebuilt so that
the client's own cost stays out of the measurement as far as possible.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
from esdouble_fixture import start_esdouble  # noqa: E402


def make_bulks(ndocs, batch, target, gz, conn_id):
    bulks = []
    for b in range(0, ndocs, batch):
        parts = []
        for k in range(b, min(b + batch, ndocs)):
            parts.append('{"create":{"_index":"%s","_id":"c%d-%d"}}\n'
                         '{"@timestamp":"2024-05-01T12:00:00.%03dZ",'
                         '"message":"GET /index.html 200 %d",'
                         '"log":{"level":"info","offset":%d},'
                         '"host":{"name":"web-1"}}\n'
                         % (target, conn_id, k, k % 1000, k, k * 80))
        body = "".join(parts).encode()
        if gz:
            c = zlib.compressobj(1, zlib.DEFLATED, 31)
            body = c.compress(body) + c.flush()
        bulks.append((body, min(b + batch, ndocs) - b))
    return bulks


def stats(host, port):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", "/_double/stats")
    r = json.loads(c.getresponse().read())
    c.close()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--filter-path", action="store_true")
    ap.add_argument("--target", default="logs-bench-default")
    ap.add_argument("--url")
    a = ap.parse_args()
    es = None
    if a.url:
        u = urllib.parse.urlsplit(a.url)
        host, port = u.hostname, u.port
    else:
        es = start_esdouble()
        host, port = "127.0.0.1", es.port
    per = a.docs // a.conns
    work = [make_bulks(per, a.batch, a.target, a.gzip, c)
            for c in range(a.conns)]
    path = "/_bulk" + ("?filter_path=errors,items.*.status,items.*._id,"
                       "items.*.error.type" if a.filter_path else "")
    errors = []

    def run(bulks):
        c = http.client.HTTPConnection(host, port, timeout=120)
        h = {"Content-Type": "application/x-ndjson",
             "Accept-Encoding": "gzip"}
        if a.gzip:
            h["Content-Encoding"] = "gzip"
        for body, n in bulks:
            c.request("POST", path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append(r.status)
                return
            if r.getheader("Content-Encoding") == "gzip":
                data = zlib.decompress(data, 47)
            if json.loads(data)["errors"]:
                errors.append("item errors")
                return
        c.close()

    cpu0 = stats(host, port)["cpu_seconds"]
    t0 = time.monotonic()
    ts = [threading.Thread(target=run, args=(w,)) for w in work]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    cpu = stats(host, port)["cpu_seconds"] - cpu0
    total = per * a.conns
    print(json.dumps({"docs": total, "seconds": round(dt, 3),
                      "docs_per_s": int(total / dt),
                      "server_cpu_s": round(cpu, 3),
                      "docs_per_server_cpu_s": int(total / cpu) if cpu else 0,
                      "batch": a.batch,
                      "conns": a.conns, "gzip": a.gzip,
                      "filter_path": a.filter_path, "errors": errors[:3]}))
    if es:
        es.stop()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
