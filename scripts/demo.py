"""agent -> collector -> archive on a generated log (no Elasticsearch
needed): prints where the events were archived, a few of them (zcat |
head) and the timeline of one trace read back from the archive.

With --es the collector also indexes into the Elasticsearch test double
and the demo prints how many events were indexed and one example
document. Everything runs on 127.0.0.1 with ephemeral ports, in a
temporary directory.
"""
import glob
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gen_log(path, n, seed=7):
    rnd = random.Random(seed)
    levels = ["debug", "info", "info", "info", "warn", "error"]
    t0 = 1764072000.0
    with open(path, "w") as f:
        for i in range(n):
            if i % 1000 == 999:
                f.write("this line is not json %d\n" % i)
                continue
            ev = {
                "ts": "%.3f" % (t0 + i * 0.01),
                "level": rnd.choice(levels),
                "msg": "request %d served" % i,
                "trace_id": "%032x" % rnd.getrandbits(128),
                "span_id": "%016x" % rnd.getrandbits(64),
                "request_id": "req-%06d" % i,
                "user": "u%d" % rnd.randrange(100),
                "latency_ms": rnd.randrange(1, 900),
            }
            f.write(json.dumps(ev) + "\n")


def gen_access_log(path, n, seed=8):
    """nginx combined access lines (parser: nginx), with a few garbage
    lines (a TLS handshake on the HTTP port: status 400)."""
    rnd = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            if i % 100 == 99:
                f.write('10.0.0.9 - - [25/Nov/2025:12:%02d:%02d +0000] '
                        '"\\x16\\x03\\x01" 400 157 "-" "-"\n'
                        % (i // 60 % 60, i % 60))
                continue
            f.write('%d.%d.%d.%d - %s [25/Nov/2025:12:%02d:%02d +0000] '
                    '"%s /api/items/%d HTTP/1.1" %d %s "%s" "%s"\n' % (
                        rnd.choice([81, 93, 185]), rnd.randrange(256),
                        rnd.randrange(256), rnd.randrange(1, 255),
                        rnd.choice(["-"] * 9 + ["alice"]), i // 60 % 60,
                        i % 60, rnd.choice(["GET"] * 4 + ["POST"]),
                        rnd.randrange(1000),
                        rnd.choice([200] * 6 + [304, 404]),
                        rnd.choice(["-", str(rnd.randrange(100, 9000))]),
                        rnd.choice(["-", "https://shop.example.com/"]),
                        rnd.choice(["curl/8.5.0", "Mozilla/5.0 Firefox/126.0"])))


class Proc:
    """A child process whose stderr JSON lines are collected."""

    def __init__(self, argv, name):
        self.name = name
        self.lines = []
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        for line in self.p.stderr:
            self.lines.append(line)

    def wait_log(self, message, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            for line in list(self.lines):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("message") == message:
                    return rec
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        sys.stderr.write("".join(self.lines[-20:]))
        raise SystemExit("%s did not log %r" % (self.name, message))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def http_json(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def show_archive(build, ccfg, archive):
    files = sorted(glob.glob(os.path.join(archive, "*", "*", "*", "*",
                                          "*.ndjson.gz")))
    print("archived into %s:" % archive)
    for f in files:
        with open(f + ".idx.json") as fp:
            idx = json.load(fp)
        print("  %s  %d events, %s .. %s" % (os.path.relpath(f, archive),
                                             idx["count"], idx["min"],
                                             idx["max"]))
    if not files:
        return None
    print("$ zcat %s | head -3" % os.path.relpath(files[0], archive))
    out = subprocess.run("zcat '%s' | head -3" % files[0], shell=True,
                         capture_output=True, text=True).stdout
    sys.stdout.write(out)
    first = json.loads(out.splitlines()[0])
    tid = first.get("trace.id") or (first.get("trace") or {}).get("id")
    if tid:
        print("$ sluice-collector -c collector.yml trace %s" % tid)
        r = subprocess.run([os.path.join(build, "collector/sluice-collector"),
                            "-c", ccfg, "trace", tid, "--archive", archive],
                           capture_output=True, text=True)
        sys.stdout.write(r.stdout)
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--es", action="store_true",
                    help="also index into the Elasticsearch test double")
    a = ap.parse_args()
    build = os.path.join(ROOT, a.build) if not os.path.isabs(a.build) else a.build
    work = tempfile.mkdtemp(prefix="sluice-demo-")
    logs = os.path.join(work, "logs")
    os.makedirs(logs)
    log = os.path.join(logs, "app.log")
    gen_log(log, a.lines)
    print("sample log: %s (%d lines)" % (log, a.lines))
    os.makedirs(os.path.join(logs, "nginx"))
    access = os.path.join(logs, "nginx", "access.log")
    n_access = max(a.lines // 10, 100)
    gen_access_log(access, n_access)
    print("sample nginx access log: %s (%d lines)" % (access, n_access))

    es = None
    archive = os.path.join(work, "archive")
    cconf = {
        "data_dir": os.path.join(work, "collector"),
        "http": {"listen": "127.0.0.1:0"},
        "inputs": [{"type": "lumberjack", "listen": "127.0.0.1:0"}],
        "archive": {"path": archive},
    }
    if a.es:
        es = subprocess.Popen(["/usr/bin/python3",
                               os.path.join(ROOT,
                                            "tests/esdouble/esdouble.py"),
                               "--port", "0"], stdout=subprocess.PIPE,
                              text=True)
        es_port = int(es.stdout.readline().split()[1])
        es_url = "http://127.0.0.1:%d" % es_port
        print("elasticsearch test double: %s" % es_url)
        cconf["elasticsearch"] = {"hosts": [es_url]}
    else:
        print("no Elasticsearch: the collector archives only (--es to index)")

    ccfg = os.path.join(work, "collector.yml")
    with open(ccfg, "w") as f:
        json.dump(cconf, f)
    coll = Proc([os.path.join(build, "collector/sluice-collector"), "-c",
                 ccfg], "collector")
    started = coll.wait_log("started")
    lj_port = started["lumberjack_port"]
    print("collector: lumberjack 127.0.0.1:%d, metrics 127.0.0.1:%d" %
          (lj_port, started["http_port"]))

    acfg = os.path.join(work, "agent.yml")
    with open(acfg, "w") as f:
        json.dump({
            "data_dir": os.path.join(work, "agent"),
            "http": {"listen": "127.0.0.1:0"},
            "inputs": [{"type": "file", "paths": [os.path.join(logs, "*.log")],
                        "parser": "json", "dataset": "demo",
                        "service": "shop", "fields": {"env": "demo"}},
                       {"type": "file", "paths": [access],
                        "parser": "nginx", "service": "shop-web"}],
            "output": {"type": "lumberjack",
                       "hosts": ["127.0.0.1:%d" % lj_port],
                       "compression_level": 1},
        }, f)
    agent = Proc([os.path.join(build, "agent/sluice-agent"), "-c", acfg],
                 "agent")

    t0 = time.time()
    count = nc = archived = 0
    http_port = started["http_port"]
    try:
        while time.time() - t0 < 120:
            archived = int(metric(http_port,
                                  "sluice_collector_archive_events_written_total"))
            if a.es:
                try:
                    count = http_json(es_url +
                                      "/logs-demo-default/_count")["count"]
                    nc = http_json(es_url + "/logs-nginx.access-default"
                                   "/_count")["count"]
                except Exception:
                    count = nc = 0
                if count >= a.lines and nc >= n_access and \
                        archived >= a.lines + n_access:
                    break
            elif archived >= a.lines + n_access:
                break
            time.sleep(0.2)
        took = time.time() - t0
        print("archived %d of %d events (%d app log + %d nginx access lines)"
              " in %.1fs" % (archived, a.lines + n_access, a.lines, n_access,
                             took))
        show_archive(build, ccfg, archive)
        if a.es:
            show_es(es_url, count, a.lines, took)
            print("indexed %d of %d nginx access lines into "
                  "logs-nginx.access-default (parser: nginx)" % (nc, n_access))
            res = http_json(es_url + "/logs-nginx.access-default/_search",
                            {"size": 1, "query": {"term": {
                                "http.response.status_code": 404}}})
            if res["hits"]["hits"]:
                print("an nginx access event:")
                print(json.dumps(res["hits"]["hits"][0]["_source"], indent=2,
                                 sort_keys=True))
    finally:
        rc_a = agent.stop()
        rc_c = coll.stop()
        if es:
            es.terminate()
            es.wait()
        if a.keep:
            print("kept %s" % work)
        else:
            subprocess.call(["rm", "-rf", work])
    print("agent exit %s, collector exit %s" % (rc_a, rc_c))
    return 0 if count == a.lines and rc_a == 0 and rc_c == 0 else 1


def show_es(es_url, count, lines, took):
    print("indexed %d of %d events into logs-demo-default in %.1fs" %
          (count, lines, took))
    res = http_json(es_url + "/logs-demo-default/_search",
                    {"size": 1, "query": {"term": {"log.level": "error"}}})
    if res["hits"]["hits"]:
        print("example document (_id = event.id):")
        hit = res["hits"]["hits"][0]
        print(json.dumps({"_id": hit["_id"], "_source": hit["_source"]},
                         indent=2, sort_keys=True))
    bad = http_json(es_url + "/logs-demo-default/_search",
                    {"size": 1, "query": {"term": {
                        "tags": "sluice_json_parse_failure"}}})
    if bad["hits"]["hits"]:
        print("a malformed line, shipped with an error tag:")
        print(json.dumps(bad["hits"]["hits"][0]["_source"], indent=2,
                         sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
