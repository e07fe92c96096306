#!/usr/bin/python3
"""Deterministic log workload for the benchmarks.

    gen.py [--lines N] [--nginx | --nested] [--seed S] OUT

JSON mode (default): one JSON object per line, ~220 bytes, with ts, level,
msg, trace_id, span_id and a few application keys, e.g.
  {"ts":"2026-11-25T10:00:00.000123Z","level":"info","msg":"GET /api/...",
   "trace_id":"...32 hex...","span_id":"...16 hex...","user_id":"u-1234",
   "duration_ms":12.5,"status":200,"route":"/api/orders"}
nginx mode: combined access log lines of about the same size.
nested mode: application logs as services really write them, ~550 bytes:
nested objects ({"cart":{"items":3,"total":9.5}}, "user":{...},
"http":{...}), arrays, null and booleans, strings with \\u00fc-style
escapes, escaped quotes, \\n and \\t, and raw UTF-8 (2- and 3-byte
sequences), so the scanner's slow paths are measured too.
The same arguments always give the same bytes (seeded PRNG, no clock).
"""

import argparse
import random
import sys

LEVELS = ["info"] * 14 + ["debug"] * 3 + ["warn"] * 2 + ["error"]
ROUTES = ["/api/orders", "/api/users", "/api/cart", "/api/search",
          "/api/checkout", "/health", "/api/items", "/api/payments"]
METHODS = ["GET"] * 6 + ["POST"] * 3 + ["PUT", "DELETE"]
WORDS = ["served", "request", "cache", "miss", "hit", "upstream", "slow",
         "retry", "client", "session", "token", "refresh", "order", "item"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
          "curl/8.5.0", "Go-http-client/1.1",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15"]


def json_line(r, i):
    sec = i // 1000
    ts = "2026-11-25T%02d:%02d:%02d.%06dZ" % (
        10 + sec // 3600 % 12, sec // 60 % 60, sec % 60, (i % 1000) * 997)
    route = r.choice(ROUTES)
    msg = "%s %s %s %s" % (r.choice(METHODS), route, r.choice(WORDS),
                           r.choice(WORDS))
    return ('{"ts":"%s","level":"%s","msg":"%s","trace_id":"%032x",'
            '"span_id":"%016x","user_id":"u-%d","duration_ms":%d.%d,'
            '"status":%d,"route":"%s"}\n') % (
        ts, r.choice(LEVELS), msg, r.getrandbits(128), r.getrandbits(64),
        r.randrange(100000), r.randrange(2000), r.randrange(10),
        r.choice([200] * 8 + [201, 404, 500]), route)


NAMES = ["J\\u00fcrgen M\\u00fcller", "Ren\\u00e9e Dupont", "Zo\\u00eb",
         "\u00c5sa Str\u00f6m", "Jos\u00e9 N\u00fa\u00f1ez", "Ann Lee",
         "\u738b\u5c0f\u660e", "Bj\\u00f6rn"]
CITIES = ["M\u00fcnchen", "K\\u00f8benhavn", "S\u00e3o Paulo", "Z\\u00fcrich",
          "Krak\u00f3w", "Paris", "\u6771\u4eac"]
NESTED_MSGS = [
    "checkout f\\u00fcr Kunde \\\"%s\\\" abgeschlossen",
    "cart updated: Gr\u00f6\u00dfe %s",
    "payment declined\\n\\treason: %s",
    "user %s logged in",
    "slow query \u2014 %s",
]
CURRENCIES = ["EUR", "USD", "GBP", "CHF"]


def nested_line(r, i):
    sec = i // 1000
    ts = "2026-11-25T%02d:%02d:%02d.%03dZ" % (
        10 + sec // 3600 % 12, sec // 60 % 60, sec % 60, i % 1000)
    route = r.choice(ROUTES)
    items = r.randrange(1, 12)
    roles = ",".join('"%s"' % x for x in
                     r.sample(["admin", "buyer", "support", "beta"],
                              r.randrange(1, 4)))
    msg = r.choice(NESTED_MSGS) % r.choice(WORDS)
    return ('{"time":"%s","level":"%s","logger":"shop.%s","msg":"%s",'
            '"trace_id":"%032x","span_id":"%016x","request_id":"req-%08x",'
            '"user":{"id":"u-%d","name":"%s","roles":[%s],'
            '"geo":{"city":"%s","lat":%d.%04d,"lon":%d.%04d}},'
            '"cart":{"items":%d,"total":%d.%d,"currency":"%s",'
            '"skus":[%d,%d,%d]},'
            '"http":{"method":"%s","path":"%s","status":%d,'
            '"duration_ms":%d.%d},"tags":["web","eu-west-1"],'
            '"retry":%s,"error":null}\n') % (
        ts, r.choice(LEVELS), r.choice(["cart", "auth", "pay", "search"]),
        msg, r.getrandbits(128), r.getrandbits(64), r.getrandbits(32),
        r.randrange(100000), r.choice(NAMES), roles, r.choice(CITIES),
        r.randrange(90), r.randrange(10000), r.randrange(180),
        r.randrange(10000), items, r.randrange(500), r.randrange(100),
        r.choice(CURRENCIES), r.randrange(10 ** 6), r.randrange(10 ** 6),
        r.randrange(10 ** 6), r.choice(METHODS), route,
        r.choice([200] * 8 + [201, 404, 500]), r.randrange(2000),
        r.randrange(10), r.choice(["false"] * 5 + ["true"]))


def nginx_line(r, i):
    sec = i // 1000
    return ('10.%d.%d.%d - - [25/Nov/2026:%02d:%02d:%02d +0000] '
            '"%s %s?id=%d HTTP/1.1" %d %d "-" "%s" rt=%d.%03d '
            'req=%032x\n') % (
        r.randrange(256), r.randrange(256), r.randrange(256),
        10 + sec // 3600 % 12, sec // 60 % 60, sec % 60,
        r.choice(METHODS), r.choice(ROUTES), r.randrange(10 ** 6),
        r.choice([200] * 8 + [301, 404, 500]), r.randrange(100000),
        r.choice(AGENTS), r.randrange(3), r.randrange(1000),
        r.getrandbits(128))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2000000)
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--nested", action="store_true")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("out")
    a = ap.parse_args()
    r = random.Random(a.seed)
    f = sys.stdout if a.out == "-" else open(a.out, "w", encoding="utf-8")
    mk = json_line
    if a.nginx:
        mk = nginx_line
    elif a.nested:
        mk = nested_line
    buf = []
    for i in range(a.lines):
        buf.append(mk(r, i))
        if len(buf) == 10000:
            f.write("".join(buf))
            buf = []
    f.write("".join(buf))
    if f is not sys.stdout:
        f.close()


if __name__ == "__main__":
    main()
