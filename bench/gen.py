#!/usr/bin/python3
"""Deterministic log workload for the benchmarks.

    gen.py [--lines N] [--kind KIND | --nginx | --nested] [--seed S] OUT

KIND: json (default), nested, nginx (the old synthetic access lines),
nginx_combined, apache, nginx_error, apache_error, logfmt, syslog, cri.

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
nginx_combined / apache: combined access logs as real servers write them
(IPv4 and some IPv6 clients, a few authenticated users, referrers, browser
and bot user agents, 304s with "-" bytes). nginx_error / apache_error
(2.4 with module, pid/tid and client, some 2.2 lines): the errors those
servers log. logfmt: go-kit/logrus-style key=value lines with quoted
messages. syslog: RFC 3164 lines of sshd, CRON, kernel, systemd (as
loghub's Linux and OpenSSH sets). cri: containerd lines (RFC 3339 nanos,
stdout or stderr, F) around nginx_combined text.
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


REFERRERS = ["-"] * 5 + ["https://www.google.com/", "https://shop.example.com/",
             "https://shop.example.com/cart?step=2", "https://t.co/xyz"]
UAS = AGENTS + [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605"
    ".1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
       "Nov", "Dec"]
DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PATHS = ROUTES + ["/static/app.%x.js", "/img/p/%d.jpg", "/favicon.ico",
                  "/api/items/%d", "/search?q=shoes&page=%d"]


def _client(r):
    if r.random() < 0.05:
        return "2001:db8:%x::%x" % (r.randrange(65536), r.randrange(65536))
    return "%d.%d.%d.%d" % (r.choice([10, 81, 93, 172, 185, 203]),
                            r.randrange(256), r.randrange(256),
                            r.randrange(1, 255))


def _path(r):
    p = r.choice(PATHS)
    return p % r.randrange(10 ** 6) if "%" in p else p


def _clf_time(i):
    sec = i // 500
    return "%02d/Nov/2026:%02d:%02d:%02d +0100" % (
        25 + sec // 86400 % 3, sec // 3600 % 24, sec // 60 % 60, sec % 60)


def access_line(r, i):
    status = r.choice([200] * 12 + [304, 301, 404, 404, 500, 201])
    nbytes = "-" if status == 304 else str(r.randrange(50, 250000))
    user = r.choice(["-"] * 20 + ["alice", "bob"])
    return '%s - %s [%s] "%s %s HTTP/%s" %d %s "%s" "%s"\n' % (
        _client(r), user, _clf_time(i), r.choice(METHODS), _path(r),
        r.choice(["1.1"] * 5 + ["2.0"]), status, nbytes,
        r.choice(REFERRERS), r.choice(UAS))


NGX_ERR = [
    ('error', 'open() "/var/www/html%s" failed (2: No such file or '
     'directory)'),
    ('error', 'upstream timed out (110: Connection timed out) while reading '
     'response header from upstream'),
    ('warn', 'an upstream response is buffered to a temporary file '
     '/var/cache/nginx/proxy_temp/%d/00/000%d'),
    ('info', 'client closed connection while waiting for request'),
    ('crit', 'SSL_do_handshake() failed (SSL: error:0A00006C:SSL '
     'routines::bad key share) while SSL handshaking'),
]


def nginx_error_line(r, i):
    sec = i // 500
    lvl, msg = r.choice(NGX_ERR)
    if "%s" in msg:
        msg = msg % _path(r).split("?")[0]
    elif "%d" in msg:
        msg = msg % (r.randrange(10), r.randrange(10 ** 6))
    return ('2026/11/25 %02d:%02d:%02d [%s] %d#%d: *%d %s, client: %s, '
            'server: shop.example.com, request: "GET %s HTTP/1.1", host: '
            '"shop.example.com"\n') % (
        sec // 3600 % 24, sec // 60 % 60, sec % 60, lvl,
        r.randrange(1000, 5000), r.randrange(4), r.randrange(10 ** 7), msg,
        _client(r), _path(r))


AP_ERR = [
    ("core", "error", "AH00124: Request exceeded the limit of 10 internal "
     "redirects due to probable configuration error."),
    ("authz_core", "error", "AH01630: client denied by server "
     "configuration: /var/www/html/.env"),
    ("php", "warn", "PHP Warning:  Undefined variable $cart in "
     "/var/www/html/cart.php on line 42"),
    ("ssl", "info", "AH01964: Connection to child 3 established (server "
     "shop.example.com:443)"),
    ("proxy_fcgi", "error", "AH01071: Got error 'Primary script "
     "unknown'"),
]


def apache_error_line(r, i):
    sec = i // 500
    t = "%s Nov %02d %02d:%02d:%02d" % (
        DOW[(sec // 86400 + 2) % 7], 25 + sec // 86400 % 3, sec // 3600 % 24,
        sec // 60 % 60, sec % 60)
    if r.random() < 0.1:
        return "[%s 2026] [error] [client %s] File does not exist: " \
               "/var/www/html%s\n" % (t, _client(r), _path(r).split("?")[0])
    mod, lvl, msg = r.choice(AP_ERR)
    return "[%s.%06d 2026] [%s:%s] [pid %d:tid %d] [client %s:%d] %s\n" % (
        t, r.randrange(10 ** 6), mod, lvl, r.randrange(1000, 30000),
        r.getrandbits(47), _client(r), r.randrange(1024, 65536), msg)


def logfmt_line(r, i):
    sec = i // 1000
    ts = "2026-11-25T%02d:%02d:%02d.%06dZ" % (
        10 + sec // 3600 % 12, sec // 60 % 60, sec % 60, (i % 1000) * 997)
    route = r.choice(ROUTES)
    return ('ts=%s level=%s caller=server.go:%d msg="%s %s %s" '
            'trace_id=%032x span_id=%016x user_id=u-%d method=%s '
            'route=%s status=%d duration=%d.%dms\n') % (
        ts, r.choice(LEVELS), r.randrange(40, 400), r.choice(METHODS), route,
        r.choice(WORDS), r.getrandbits(128), r.getrandbits(64),
        r.randrange(10000), r.choice(METHODS), route,
        r.choice([200] * 8 + [201, 404, 500]), r.randrange(500),
        r.randrange(10))


SYSLOG = [
    ("sshd", True, "Failed password for invalid user %s from %s port %d "
     "ssh2"),
    ("sshd", True, "Accepted publickey for %s from %s port %d ssh2: RSA "
     "SHA256:x2fQ0c1b"),
    ("sshd(pam_unix)", True, "session opened for user %s by (uid=0)"),
    ("CRON", True, "(%s) CMD (run-parts /etc/cron.hourly)"),
    ("kernel", False, "[%d.%06d] IPv4: martian source %s from %s, on dev "
     "eth0"),
    ("systemd", True, "Started Session %d of user %s."),
]


def syslog_line(r, i):
    sec = i // 500
    tag, pid, fmt = r.choice(SYSLOG)
    user = r.choice(["root", "admin", "ubuntu", "deploy", "git", "oracle"])
    if tag == "kernel":
        msg = fmt % (r.randrange(10 ** 6), r.randrange(10 ** 6), _client(r),
                     _client(r))
    elif fmt.count("%") == 3:
        msg = fmt % (user, _client(r), r.randrange(1024, 65536))
    elif tag == "systemd":
        msg = fmt % (r.randrange(10 ** 5), user)
    else:
        msg = fmt % user
    return "Nov %2d %02d:%02d:%02d web-%02d %s%s: %s\n" % (
        25 + sec // 86400 % 3, sec // 3600 % 24, sec // 60 % 60, sec % 60,
        r.randrange(8), tag, "[%d]" % r.randrange(300, 40000) if pid else "",
        msg)


def cri_line(r, i):
    # containerd/CRI-O files: "<RFC 3339 nanos> <stream> <P|F> <text>";
    # the text is an access log line as a web container writes it.
    sec = i // 500
    return "2023-11-%02dT%02d:%02d:%02d.%09dZ %s F %s" % (
        25 + sec // 86400 % 3, sec // 3600 % 24, sec // 60 % 60, sec % 60,
        r.randrange(10 ** 9), "stderr" if r.random() < 0.1 else "stdout",
        access_line(r, i))


KINDS = {
    "json": json_line, "nested": nested_line, "nginx": nginx_line,
    "nginx_combined": access_line, "apache": access_line,
    "nginx_error": nginx_error_line, "apache_error": apache_error_line,
    "logfmt": logfmt_line, "syslog": syslog_line, "cri": cri_line,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2000000)
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--nested", action="store_true")
    ap.add_argument("--kind", choices=sorted(KINDS), default="json")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("out")
    a = ap.parse_args()
    r = random.Random(a.seed)
    f = sys.stdout if a.out == "-" else open(a.out, "w", encoding="utf-8")
    mk = KINDS[a.kind]
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
