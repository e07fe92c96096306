"""Start and drive tests/esdouble/esdouble.py from Python tests.

    from esdouble_fixture import start_esdouble
    with start_esdouble("--user", "elastic:pw") as es:
        es.url                      # http://127.0.0.1:<port>
        es.set_faults(fail_status=429, fail_count=2)
        es.request("POST", "/_bulk", body=b"...", headers={...})
        es.count("logs-sluice-default")
        es.docs("logs-*")           # every doc: _index, _id, _source, ...
        es.stats()

Stdlib only. The double's private API is documented in
tests/esdouble/README.md.
"""

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import http.client

from harness import stop_process

HERE = os.path.dirname(os.path.abspath(__file__))
ESDOUBLE = os.path.normpath(os.path.join(HERE, "..", "esdouble",
                                         "esdouble.py"))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") \
    else sys.executable


class EsDoubleError(Exception):
    pass


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class EsDouble:
    """A running esdouble process. Use start_esdouble() to make one."""

    def __init__(self, args=(), timeout=10.0, env=None):
        cmd = [PYTHON, ESDOUBLE, "--port", "0", "--watch-stdin"] + [
            str(a) for a in args]
        # stdin is a pipe only we hold: if this process dies without
        # stop(), the double sees EOF and exits instead of lingering.
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env)
        self.port = None
        self.auth = None
        self._stderr = []
        line = self._read_ready(timeout)
        if not line.startswith("READY "):
            self.stop()
            raise EsDoubleError("esdouble did not start: %r %s" % (
                line, b"".join(self._stderr).decode(errors="replace")))
        self.port = int(line.split()[1])
        self.host = "127.0.0.1"
        self.tls = "--tls-cert" in [str(x) for x in args]
        self.client_cert = None  # (pem, key) when --tls-client-ca is on
        self.url = "%s://127.0.0.1:%d" % ("https" if self.tls else "http",
                                          self.port)
        threading.Thread(target=self._drain, daemon=True).start()
        # Credentials given at start are reused by the helpers.
        a = list(args)
        for i, v in enumerate(a):
            if v == "--user" and i + 1 < len(a):
                self.auth = "Basic " + base64.b64encode(
                    str(a[i + 1]).encode()).decode()
            elif v == "--api-key" and i + 1 < len(a) and self.auth is None:
                k = str(a[i + 1])
                self.auth = "ApiKey " + (base64.b64encode(k.encode()).decode()
                                         if ":" in k else k)

    def _read_ready(self, timeout):
        result = []

        def rd():
            result.append(self.proc.stdout.readline().decode().strip())
        t = threading.Thread(target=rd, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            return ""
        return result[0]

    def _drain(self):
        try:
            for chunk in iter(lambda: self.proc.stderr.read(4096), b""):
                self._stderr.append(chunk)
                if len(self._stderr) > 1000:
                    del self._stderr[:500]
        except (OSError, ValueError):
            pass

    @property
    def stderr(self):
        return b"".join(self._stderr).decode(errors="replace")

    def stop(self):
        stop_process(self.proc, 5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- HTTP

    def request(self, method, path, body=None, headers=None, auth=True,
                timeout=30.0):
        """One request on a fresh connection. `body` may be a dict/list
        (sent as JSON), str or bytes. Returns a Response."""
        h = {}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        if auth and self.auth:
            h["Authorization"] = self.auth
        if headers:
            h.update(headers)
        if self.tls:
            # The test's own look at the double: no need to verify it.
            ctx = ssl._create_unverified_context()
            if self.client_cert:
                ctx.load_cert_chain(*self.client_cert)
            c = http.client.HTTPSConnection(self.host, self.port,
                                            timeout=timeout, context=ctx)
        else:
            c = http.client.HTTPConnection(self.host, self.port,
                                           timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            if (r.getheader("Content-Encoding") or "") == "gzip":
                import gzip
                data = gzip.decompress(data)
            return Response(r.status, dict(r.getheaders()), data)
        finally:
            c.close()

    def _json(self, method, path, body=None):
        r = self.request(method, path, body)
        if r.status >= 300:
            raise EsDoubleError("%s %s -> %d %s" % (method, path, r.status,
                                                    r.body[:500]))
        return r.json()

    # ---- private API helpers

    def stats(self):
        return self._json("GET", "/_double/stats")

    def set_faults(self, **kw):
        """Merge faults (names as in README.md); returns the fault table."""
        return self._json("POST", "/_double/faults", kw)

    def clear_faults(self):
        return self._json("DELETE", "/_double/faults")

    def reset(self, what="all"):
        return self._json("POST", "/_double/reset?what=" + what)

    def docs(self, index_pattern="*"):
        """All stored docs of matching indices/streams/aliases, with
        _index, _id, _seq_no, _version and _source (hidden indices too)."""
        from urllib.parse import quote
        return self._json("GET", "/_double/docs?index=" +
                          quote(index_pattern, safe=""))["docs"]

    def set_creation_date(self, index, epoch_ms):
        return self._json("POST", "/_double/creation_date",
                          {"index": index, "creation_date": epoch_ms})

    # ---- ES API helpers

    def search(self, index, query=None, size=10000, sort=None):
        body = {"size": size, "track_total_hits": True}
        if query is not None:
            body["query"] = query
        if sort is not None:
            body["sort"] = sort
        return self._json("POST", "/%s/_search" % index, body)

    def count(self, index, query=None):
        body = {"query": query} if query is not None else None
        return self._json("POST", "/%s/_count" % index, body)["count"]

    def bulk(self, ndjson, target=None, params=""):
        path = ("/%s/_bulk" % target if target else "/_bulk") + (
            "?" + params if params else "")
        if isinstance(ndjson, str):
            ndjson = ndjson.encode()
        r = self.request("POST", path, ndjson,
                         {"Content-Type": "application/x-ndjson"})
        return r

    def wait_for_count(self, index, n, timeout=10.0):
        """Poll until `index` holds at least n docs; returns the count."""
        deadline = time.monotonic() + timeout
        c = -1
        while time.monotonic() < deadline:
            try:
                c = self.count(index)
            except EsDoubleError:
                c = -1
            if c >= n:
                return c
            time.sleep(0.05)
        raise EsDoubleError("timed out waiting for %d docs in %s (have %d)"
                            % (n, index, c))


def start_esdouble(*args, timeout=10.0, env=None):
    """Start esdouble on an ephemeral port with extra CLI args."""
    return EsDouble(args, timeout=timeout, env=env)
