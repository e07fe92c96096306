"""Behaviour tests for tests/esdouble/esdouble.py (ES 8 semantics)."""

import base64
import gzip
import http.client
import json
import socket
import time

import pytest

from esdouble_fixture import start_esdouble

NDJSON = {"Content-Type": "application/x-ndjson"}


def nd(*objs):
    return "".join(json.dumps(o) + "\n" for o in objs)


def create(index, _id=None, **src):
    meta = {"_index": index}
    if _id is not None:
        meta["_id"] = _id
    src.setdefault("@timestamp", "2024-05-01T12:00:00.123Z")
    return [{"create": meta}, src]


def bulk_items(es, *pairs, target=None, params=""):
    objs = [o for p in pairs for o in p]
    r = es.bulk(nd(*objs), target=target, params=params)
    assert r.status == 200, r.body
    return r.json()


def item(resp, k):
    (act, body), = resp["items"][k].items()
    return act, body


# ------------------------------------------------------------ basics

def test_root_and_product_header(es):
    r = es.request("GET", "/")
    assert r.status == 200
    assert r.headers["X-Elastic-Product"] == "Elasticsearch"
    body = r.json()
    assert body["version"]["number"] == "8.15.0"
    assert body["tagline"] == "You Know, for Search"
    h = es.request("HEAD", "/")
    assert h.status == 200 and h.body == b""


def test_product_header_on_errors_too(es):
    for method, path in [("GET", "/missing-index/_search"),
                         ("GET", "/_index_template/nope"),
                         ("GET", "/_nothing/here")]:
        r = es.request(method, path)
        assert r.status >= 400
        assert r.headers["X-Elastic-Product"] == "Elasticsearch"


def test_keep_alive_many_requests_one_connection(es):
    c = http.client.HTTPConnection("127.0.0.1", es.port, timeout=10)
    for k in range(20):
        body = nd(*create("logs-ka-default", "id%d" % k))
        c.request("POST", "/_bulk", body=body, headers=NDJSON)
        r = c.getresponse()
        assert r.status == 200
        assert r.version == 11
        json.loads(r.read())
    c.close()
    assert es.count("logs-ka-default") == 20
    assert es.stats()["by_path"]["POST /_bulk"] == 20


def test_chunked_request_body(es):
    s = socket.create_connection(("127.0.0.1", es.port), timeout=10)
    body = nd(*create("logs-chunk-default", "a"),
              *create("logs-chunk-default", "b")).encode()
    half = len(body) // 2
    req = (b"POST /_bulk HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/x-ndjson\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")
    for part in (body[:half], body[half:]):
        req += b"%x\r\n" % len(part) + part + b"\r\n"
    req += b"0\r\n\r\n"
    s.sendall(req)
    resp = b""
    while b"\r\n\r\n" not in resp:
        resp += s.recv(65536)
    head, rest = resp.split(b"\r\n\r\n", 1)
    cl = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
              if ln.lower().startswith(b"content-length")][0])
    while len(rest) < cl:
        rest += s.recv(65536)
    s.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(rest)["errors"] is False
    assert es.count("logs-chunk-default") == 2


def test_cluster_health_and_cat_health(es):
    r = es.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=1s")
    assert r.status == 200 and r.json()["status"] == "green"
    es.set_faults(health="red")
    r = es.request("GET", "/_cluster/health?wait_for_status=yellow")
    assert r.status == 408 and r.json()["timed_out"] is True
    assert "red" in es.request("GET", "/_cat/health").body.decode()


# ------------------------------------------------------------ _bulk format

def test_content_type_406(es):
    body = nd(*create("logs-ct-default", "a"))
    r = es.request("POST", "/_bulk", body, {
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 406
    assert r.json() == {
        "error": "Content-Type header [application/x-www-form-urlencoded] "
                 "is not supported", "status": 406}
    for ct in ("application/json", "application/x-ndjson; charset=UTF-8",
               "application/vnd.elasticsearch+x-ndjson;compatible-with=8"):
        r = es.request("POST", "/_bulk", body, {"Content-Type": ct})
        assert r.status == 200, ct


def test_final_newline_required(es):
    body = nd(*create("logs-nl-default", "a")).rstrip("\n")
    r = es.bulk(body)
    assert r.status == 400
    e = r.json()["error"]
    assert e["type"] == "illegal_argument_exception"
    assert e["reason"] == ("The bulk request must be terminated by a "
                           "newline [\\n]")
    assert e["root_cause"][0]["type"] == "illegal_argument_exception"
    assert r.json()["status"] == 400
    assert es.count("logs-*") == 0


def test_crlf_lines_accepted(es):
    body = nd(*create("logs-crlf-default", "a")).replace("\n", "\r\n")
    r = es.bulk(body)
    assert r.status == 200 and r.json()["errors"] is False


@pytest.mark.parametrize("line,needle", [
    ('{"bogus":{"_index":"x"}}', "expected one of [create, delete, index, "
                                 "update] but found [bogus]"),
    ('not json', "Malformed action/metadata line [3]"),
    ('{"create":{"_index":"x","weird":1}}', "unknown parameter [weird]"),
    ('{"create":{},"index":{}}', "Malformed action/metadata line [3]"),
])
def test_malformed_action_fails_whole_request(es, line, needle):
    body = nd(*create("logs-mal-default", "ok")) + line + "\n{}\n"
    r = es.bulk(body)
    assert r.status == 400
    assert needle in r.json()["error"]["reason"]
    assert es.count("logs-*") == 0, "nothing of a bad request is applied"


def test_missing_index_is_validation_error(es):
    r = es.bulk(nd({"create": {"_id": "a"}}, {"@timestamp": 1}))
    assert r.status == 400
    assert r.json()["error"]["type"] == "action_request_validation_exception"
    assert "index is missing" in r.json()["error"]["reason"]


def test_path_target_is_default_index(es):
    resp = bulk_items(es, [{"create": {"_id": "a"}}, {"@timestamp": 5}],
                      target="logs-path-default")
    _, b = item(resp, 0)
    assert b["status"] == 201
    assert b["_index"].startswith(".ds-logs-path-default-")


def test_gzip_body(es):
    body = nd(*create("logs-gz-default", "a"),
              *create("logs-gz-default", "b")).encode()
    r = es.request("POST", "/_bulk", gzip.compress(body), {
        "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert r.status == 200 and r.json()["errors"] is False
    assert es.count("logs-gz-default") == 2


def test_gzip_response_when_accepted(es):
    c = http.client.HTTPConnection("127.0.0.1", es.port, timeout=10)
    c.request("GET", "/", headers={"Accept-Encoding": "gzip"})
    r = c.getresponse()
    raw = r.read()
    assert r.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(raw))["version"]["number"] == "8.15.0"
    c.close()


def test_413_on_decompressed_size():
    with start_esdouble("--max-body", "2000") as es:
        big = nd(*[o for k in range(40)
                   for o in create("logs-big-default", "k%d" % k,
                                   message="x" * 40)]).encode()
        assert len(big) > 2000
        gz = gzip.compress(big)
        assert len(gz) < 2000, "compressed fits, decompressed does not"
        r = es.request("POST", "/_bulk", gz, {
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip"})
        assert r.status == 413
        assert r.headers["X-Elastic-Product"] == "Elasticsearch"
        r = es.request("POST", "/_bulk", big, NDJSON)
        assert r.status == 413
        assert es.count("logs-*") == 0
        small = nd(*create("logs-big-default", "s"))
        assert es.bulk(small).status == 200
        # Runtime change of the limit.
        es.set_faults(max_body=50)
        assert es.bulk(small).status == 413


def test_413_with_expect_continue():
    with start_esdouble("--max-body", "1000") as es:
        s = socket.create_connection(("127.0.0.1", es.port), timeout=10)
        s.sendall(b"POST /_bulk HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-ndjson\r\n"
                  b"Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        resp = s.recv(4096)
        s.close()
        assert resp.startswith(b"HTTP/1.1 413")


# ------------------------------------------------------------ _bulk items

def test_409_on_duplicate_create_exact_shape(es):
    bulk_items(es, create("logs-dup-default", "k0-3-1186"))
    resp = bulk_items(es, create("logs-dup-default", "k0-3-1186"),
                      create("logs-dup-default", "new"))
    assert resp["errors"] is True
    act, b = item(resp, 0)
    assert act == "create"
    assert set(b) == {"_index", "_id", "status", "error"}
    assert b["status"] == 409
    assert b["_id"] == "k0-3-1186"
    backing = b["_index"]
    assert backing.startswith(".ds-logs-dup-default-")
    assert backing.endswith("-000001")
    e = b["error"]
    assert e["type"] == "version_conflict_engine_exception"
    assert e["reason"] == ("[k0-3-1186]: version conflict, document already "
                           "exists (current version [1])")
    assert e["shard"] == "0" and e["index"] == backing
    assert isinstance(e["index_uuid"], str) and e["index_uuid"]
    _, ok = item(resp, 1)
    assert ok["status"] == 201 and ok["result"] == "created"
    assert es.count("logs-dup-default") == 2


def test_created_item_shape_seq_no_and_version(es):
    resp = bulk_items(es, create("logs-seq-default", "a"),
                      create("logs-seq-default", "b"))
    _, a = item(resp, 0)
    _, b = item(resp, 1)
    assert a == {"_index": a["_index"], "_id": "a", "_version": 1,
                 "result": "created",
                 "_shards": {"total": 2, "successful": 1, "failed": 0},
                 "_seq_no": 0, "_primary_term": 1, "status": 201}
    assert b["_seq_no"] == 1
    resp = bulk_items(es, create("plain-seq", "x"), create("plain-seq", "y"))
    assert [item(resp, k)[1]["_seq_no"] for k in (0, 1)] == [0, 1], \
        "seq_no is per index"


def test_index_update_delete_semantics(es):
    r = bulk_items(es, [{"index": {"_index": "plain", "_id": "1"}},
                        {"a": 1, "b": {"c": 1}}])
    assert item(r, 0)[1]["result"] == "created"
    r = bulk_items(es, [{"index": {"_index": "plain", "_id": "1"}},
                        {"a": 2}])
    _, b = item(r, 0)
    assert (b["result"], b["status"], b["_version"]) == ("updated", 200, 2)
    r = bulk_items(es, [{"update": {"_index": "plain", "_id": "1"}},
                        {"doc": {"b": {"d": 2}}}])
    _, b = item(r, 0)
    assert (b["result"], b["_version"]) == ("updated", 3)
    doc = es.request("GET", "/plain/_doc/1").json()
    assert doc["found"] is True and doc["_source"] == {"a": 2,
                                                        "b": {"d": 2}}
    r = bulk_items(es, [{"update": {"_index": "plain", "_id": "1"}},
                        {"doc": {"a": 2}}])
    assert item(r, 0)[1]["result"] == "noop"
    r = bulk_items(es, [{"update": {"_index": "plain", "_id": "zz"}},
                        {"doc": {"a": 1}}])
    _, b = item(r, 0)
    assert b["status"] == 404
    assert b["error"]["type"] == "document_missing_exception"
    assert r["errors"] is True
    r = bulk_items(es, [{"update": {"_index": "plain", "_id": "zz"}},
                        {"doc": {"a": 1}, "doc_as_upsert": True}])
    assert item(r, 0)[1]["status"] == 201
    r = bulk_items(es, [{"delete": {"_index": "plain", "_id": "1"}}],
                   [{"delete": {"_index": "plain", "_id": "nope"}}])
    assert item(r, 0)[1]["result"] == "deleted"
    _, nf = item(r, 1)
    assert nf["status"] == 404 and nf["result"] == "not_found"
    assert "error" not in nf
    assert r["errors"] is False, "a 404 delete does not set errors"
    assert es.request("GET", "/plain/_doc/1").status == 404
    # Re-create after delete continues the version.
    r = bulk_items(es, [{"create": {"_index": "plain", "_id": "1"}}, {}])
    assert item(r, 0)[1]["_version"] == 5


def test_generated_ids(es):
    r = bulk_items(es, [{"create": {"_index": "logs-gen-default"}},
                        {"@timestamp": "2024-01-01"}],
                   [{"index": {"_index": "plain-gen"}}, {"x": 1}])
    ids = [item(r, k)[1]["_id"] for k in (0, 1)]
    assert all(len(i) == 20 for i in ids)
    assert ids[0] != ids[1]


def test_delete_missing_index_not_autocreated(es):
    r = bulk_items(es, [{"delete": {"_index": "nosuch", "_id": "1"}}])
    _, b = item(r, 0)
    assert b["status"] == 404
    assert b["error"]["type"] == "index_not_found_exception"
    assert es.request("GET", "/nosuch").status == 404


def test_invalid_index_name(es):
    r = bulk_items(es, [{"create": {"_index": "Bad", "_id": "1"}}, {}])
    _, b = item(r, 0)
    assert b["status"] == 400
    assert b["error"]["type"] == "invalid_index_name_exception"


def test_if_seq_no_conflict(es):
    r = bulk_items(es, [{"index": {"_index": "p", "_id": "1"}}, {"a": 1}])
    seq = item(r, 0)[1]["_seq_no"]
    r = bulk_items(es, [{"index": {"_index": "p", "_id": "1",
                                   "if_seq_no": seq + 5,
                                   "if_primary_term": 1}}, {"a": 2}])
    assert item(r, 0)[1]["status"] == 409
    r = bulk_items(es, [{"index": {"_index": "p", "_id": "1",
                                   "if_seq_no": seq,
                                   "if_primary_term": 1}}, {"a": 2}])
    assert item(r, 0)[1]["status"] == 200


def test_bad_source_json_is_item_error(es):
    body = (json.dumps({"create": {"_index": "plain", "_id": "x"}}) +
            "\n{not json}\n" + nd(*create("plain", "y")))
    r = es.bulk(body)
    assert r.status == 200
    resp = r.json()
    assert item(resp, 0)[1]["status"] == 400
    assert item(resp, 0)[1]["error"]["type"] == "document_parsing_exception"
    assert item(resp, 1)[1]["status"] == 201


def test_errors_flag_false_when_all_ok(es):
    r = bulk_items(es, create("logs-ok-default", "a"))
    assert r["errors"] is False
    assert isinstance(r["took"], int)


# ------------------------------------------------------------ filter_path

def test_filter_path_items_forms(es):
    bulk_items(es, create("logs-fp-default", "dup"))
    pairs = create("logs-fp-default", "dup") + create("logs-fp-default",
                                                      "new")
    r = es.bulk(nd(*pairs), params="filter_path=items.*.error")
    assert r.json() == {"items": [{"create": {"error": r.json()["items"][0][
        "create"]["error"]}}]}, "items without an error vanish"
    es.reset("data")
    bulk_items(es, create("logs-fp-default", "dup"))
    r = es.bulk(nd(*pairs), params="filter_path=errors,items.*.status,"
                "items.*._id,items.*.error.type,items.*.error.reason")
    body = r.json()
    assert body["errors"] is True
    assert body["items"][0] == {"create": {
        "_id": "dup", "status": 409, "error": {
            "type": "version_conflict_engine_exception",
            "reason": "[dup]: version conflict, document already exists "
                      "(current version [1])"}}}
    assert body["items"][1] == {"create": {"_id": "new", "status": 201}}
    r = es.bulk(nd(*create("logs-fp-default", "z")),
                params="filter_path=errors")
    assert r.json() == {"errors": False}
    r = es.bulk(nd(*create("logs-fp-default", "zz")),
                params="filter_path=-items")
    assert set(r.json()) == {"errors", "took"}


def test_refresh_param_accepted(es):
    for v in ("true", "wait_for", "false"):
        r = es.bulk(nd(*create("logs-rf-default")), params="refresh=" + v)
        assert r.status == 200
    assert es.count("logs-rf-default") == 3
    assert es.request("POST", "/logs-rf-default/_refresh").status == 200
    assert es.request("POST", "/_refresh").status == 200


# ------------------------------------------------------------ data streams

def test_data_stream_only_create_and_timestamp(es):
    r = bulk_items(es, [{"index": {"_index": "logs-ds-default", "_id": "1"}},
                        {"@timestamp": 1}],
                   [{"create": {"_index": "logs-ds-default", "_id": "2"}},
                    {"message": "no ts"}],
                   [{"create": {"_index": "logs-ds-default", "_id": "3"}},
                    {"@timestamp": "yesterday"}],
                   [{"create": {"_index": "logs-ds-default", "_id": "4"}},
                    {"@timestamp": 1714564800123}],
                   [{"delete": {"_index": "logs-ds-default", "_id": "4"}}])
    _, b = item(r, 0)
    assert b["status"] == 400
    assert b["error"]["type"] == "illegal_argument_exception"
    assert "only write ops with an op_type of create are allowed in data " \
           "streams" in b["error"]["reason"]
    _, b = item(r, 1)
    assert b["status"] == 400
    assert b["error"]["type"] == "document_parsing_exception"
    assert b["error"]["caused_by"]["reason"] == \
        "data stream timestamp field [@timestamp] is missing"
    _, b = item(r, 2)
    assert b["status"] == 400
    assert b["error"]["type"] == "document_parsing_exception"
    assert "failed to parse field [@timestamp] of type [date]" in \
        b["error"]["reason"]
    assert item(r, 3)[1]["status"] == 201
    assert item(r, 4)[1]["status"] == 400
    assert es.count("logs-ds-default") == 1


def test_data_stream_auto_create_and_get(es):
    bulk_items(es, create("logs-auto-default", "a"))
    r = es.request("GET", "/_data_stream/logs-auto-default")
    ds = r.json()["data_streams"][0]
    assert ds["name"] == "logs-auto-default"
    assert ds["timestamp_field"] == {"name": "@timestamp"}
    assert ds["generation"] == 1 and ds["template"] == "logs"
    day = time.strftime("%Y.%m.%d", time.gmtime())
    assert ds["indices"][0]["index_name"] == \
        ".ds-logs-auto-default-%s-000001" % day
    assert ds["ilm_policy"] == "logs@lifecycle"
    # A name that matches no data-stream template gives a plain index.
    bulk_items(es, create("mylogs", "a"))
    assert es.request("GET", "/_data_stream/mylogs").status == 404
    assert "mylogs" in es.request("GET", "/mylogs").json()
    # logs-x (one dash) does not match logs-*-*.
    bulk_items(es, create("logs-single", "a"))
    assert es.request("GET", "/_data_stream/logs-single").status == 404


def test_data_stream_put_get_delete(es):
    assert es.request("PUT", "/_data_stream/logs-man-default").status == 200
    r = es.request("PUT", "/_data_stream/logs-man-default")
    assert r.status == 400
    assert r.json()["error"]["type"] == "resource_already_exists_exception"
    r = es.request("PUT", "/_data_stream/nomatch")
    assert r.status == 400
    assert "no matching index template" in r.json()["error"]["reason"]
    names = [d["name"] for d in
             es.request("GET", "/_data_stream").json()["data_streams"]]
    assert names == ["logs-man-default"]
    assert es.request("DELETE", "/_data_stream/logs-man-default").status \
        == 200
    r = es.request("GET", "/_data_stream/logs-man-default")
    assert r.status == 404
    assert r.json()["error"]["type"] == "index_not_found_exception"
    assert es.request("GET", "/_cat/indices?format=json").json() == []


def test_rollover_and_id_uniqueness_per_backing_index(es):
    bulk_items(es, create("logs-roll-default", "same"))
    r = es.request("POST", "/logs-roll-default/_rollover")
    assert r.status == 200
    body = r.json()
    assert body["rolled_over"] is True
    assert body["old_index"].endswith("-000001")
    assert body["new_index"].endswith("-000002")
    r = bulk_items(es, create("logs-roll-default", "same"))
    _, b = item(r, 0)
    assert b["status"] == 201, "same _id is new in the new backing index"
    assert b["_index"] == body["new_index"]
    assert b["_seq_no"] == 0
    r = bulk_items(es, create("logs-roll-default", "same"))
    assert item(r, 0)[1]["status"] == 409
    assert es.count("logs-roll-default") == 2
    docs = es.docs("logs-roll-default")
    assert sorted(d["_index"] for d in docs) == [body["old_index"],
                                                 body["new_index"]]
    ds = es.request("GET", "/_data_stream/logs-roll-default").json()[
        "data_streams"][0]
    assert ds["generation"] == 2 and len(ds["indices"]) == 2
    # The write index can't be deleted, an older one can.
    r = es.request("DELETE", "/" + body["new_index"])
    assert r.status == 400
    assert es.request("DELETE", "/" + body["old_index"]).status == 200
    assert es.count("logs-roll-default") == 1


def test_data_stream_lifecycle(es):
    es.request("PUT", "/_data_stream/logs-lc-default")
    r = es.request("PUT", "/_data_stream/logs-lc-default/_lifecycle",
                   {"data_retention": "7d"})
    assert r.status == 200 and r.json() == {"acknowledged": True}
    r = es.request("GET", "/_data_stream/logs-lc-default/_lifecycle")
    body = r.json()
    assert body["data_streams"][0]["name"] == "logs-lc-default"
    lc = body["data_streams"][0]["lifecycle"]
    assert lc["enabled"] is True and lc["data_retention"] == "7d"
    assert lc["effective_retention"] == "7d"
    ds = es.request("GET", "/_data_stream/logs-lc-default").json()[
        "data_streams"][0]
    assert ds["lifecycle"]["data_retention"] == "7d"
    r = es.request("PUT", "/_data_stream/logs-lc-default/_lifecycle",
                   {"data_retention": "seven days"})
    assert r.status == 400
    assert es.request("PUT", "/_data_stream/nope/_lifecycle",
                      {"data_retention": "1d"}).status == 404


def test_constant_keyword_data_stream_fields(es):
    r = bulk_items(es, create("logs-ck-default", "a",
                              data_stream={"dataset": "ck"}),
                   create("logs-ck-default", "b", **{
                       "data_stream.dataset": "other"}))
    assert item(r, 0)[1]["status"] == 201
    _, b = item(r, 1)
    assert b["status"] == 400
    assert "constant_keyword" in b["error"]["caused_by"]["reason"]


# ------------------------------------------------------------ templates

def put_sluice_templates(es, prio=200):
    r = es.request("PUT", "/_component_template/sluice-mappings", {
        "template": {"mappings": {"properties": {
            "@timestamp": {"type": "date"},
            "log": {"properties": {"level": {"type": "keyword"},
                                   "offset": {"type": "long"}}},
            "client": {"properties": {"ip": {"type": "ip"}}}}}}})
    assert r.status == 200 and r.json() == {"acknowledged": True}
    r = es.request("PUT", "/_index_template/sluice-logs", {
        "index_patterns": ["logs-sluice*-*"], "priority": prio,
        "data_stream": {}, "composed_of": ["sluice-mappings"],
        "template": {"settings": {"index.lifecycle.name": "sluice-logs"}},
        "version": 3, "_meta": {"managed_by": "sluice"}})
    return r


def test_index_template_crud_and_shape(es):
    assert es.request("GET", "/_index_template/sluice-logs").status == 404
    r = es.request("GET", "/_index_template/sluice-logs")
    assert r.json()["error"]["type"] == "resource_not_found_exception"
    assert put_sluice_templates(es).status == 200
    r = es.request("GET", "/_index_template/sluice-logs")
    assert r.status == 200
    body = r.json()
    assert list(body) == ["index_templates"]
    assert body["index_templates"][0]["name"] == "sluice-logs"
    t = body["index_templates"][0]["index_template"]
    assert t["version"] == 3 and t["priority"] == 200
    assert t["index_patterns"] == ["logs-sluice*-*"]
    r = es.request("GET", "/_component_template/sluice-mappings")
    assert r.json()["component_templates"][0]["name"] == "sluice-mappings"
    assert "template" in r.json()["component_templates"][0][
        "component_template"]
    # Built-in logs template is listed like on stock ES.
    names = [t["name"] for t in
             es.request("GET", "/_index_template").json()["index_templates"]]
    assert "logs" in names and "sluice-logs" in names
    # In use by the template: component cannot go.
    assert es.request("DELETE", "/_component_template/sluice-mappings") \
        .status == 400
    assert es.request("DELETE", "/_index_template/sluice-logs").status == 200
    assert es.request("DELETE", "/_index_template/sluice-logs").status == 404
    assert es.request("DELETE", "/_component_template/sluice-mappings") \
        .status == 200
    assert es.request("GET", "/_component_template/sluice-mappings") \
        .status == 404


def test_template_priority_rules(es):
    r = put_sluice_templates(es, prio=100)
    assert r.status == 400, "same priority as built-in logs-*-* overlaps"
    assert "same priority" in r.json()["error"]["reason"]
    r = es.request("PUT", "/_index_template/t2", {
        "index_patterns": ["x-*"], "composed_of": ["missing-ct"]})
    assert r.status == 400
    assert r.json()["error"]["type"] == "invalid_index_template_exception"


def test_highest_priority_template_applies(es):
    assert put_sluice_templates(es).status == 200
    r = bulk_items(es, create("logs-sluice-default", "a"))
    assert item(r, 0)[1]["status"] == 201
    ds = es.request("GET", "/_data_stream/logs-sluice-default").json()[
        "data_streams"][0]
    assert ds["template"] == "sluice-logs"
    assert ds["ilm_policy"] == "sluice-logs"
    # A non-data-stream template with higher priority makes a plain index.
    es.request("PUT", "/_index_template/plainlogs", {
        "index_patterns": ["logs-plain-*"], "priority": 300})
    bulk_items(es, [{"index": {"_index": "logs-plain-x", "_id": "1"}},
                    {"a": 1}])
    assert es.request("GET", "/_data_stream/logs-plain-x").status == 404
    assert es.count("logs-plain-x") == 1


def test_mapping_type_checks_from_template(es):
    put_sluice_templates(es)
    r = bulk_items(
        es, create("logs-sluice-default", "1", log={"offset": "abc"}),
        create("logs-sluice-default", "2", **{"log.offset": 12}),
        create("logs-sluice-default", "3", client={"ip": "not-an-ip"}),
        create("logs-sluice-default", "4", client={"ip": "10.0.0.1"}),
        create("logs-sluice-default", "5", **{"log.offset": "77"}))
    _, b = item(r, 0)
    assert b["status"] == 400
    assert b["error"]["type"] == "document_parsing_exception"
    assert ("failed to parse field [log.offset] of type [long] in document "
            "with id '1'") in b["error"]["reason"]
    assert b["error"]["caused_by"]["type"] == "illegal_argument_exception"
    assert item(r, 1)[1]["status"] == 201
    assert item(r, 2)[1]["status"] == 400
    assert "[client.ip] of type [ip]" in item(r, 2)[1]["error"]["reason"]
    assert item(r, 3)[1]["status"] == 201
    assert item(r, 4)[1]["status"] == 201, "numeric strings coerce"


def test_builtin_logs_template_ignores_malformed(es):
    es.set_faults()
    # logs@settings sets ignore_malformed; only @timestamp is strict.
    r = bulk_items(es, create("logs-im-default", "1", log={"offset": "x"}))
    assert item(r, 0)[1]["status"] == 201


def test_ilm_policy_crud(es):
    pol = {"policy": {"phases": {
        "hot": {"actions": {"rollover": {"max_age": "1d"}}},
        "delete": {"min_age": "14d", "actions": {"delete": {}}}}}}
    assert es.request("GET", "/_ilm/policy/sluice-logs").status == 404
    r = es.request("PUT", "/_ilm/policy/sluice-logs", pol)
    assert r.status == 200 and r.json() == {"acknowledged": True}
    r = es.request("GET", "/_ilm/policy/sluice-logs")
    body = r.json()["sluice-logs"]
    assert body["policy"] == pol["policy"] and body["version"] == 1
    es.request("PUT", "/_ilm/policy/sluice-logs", pol)
    assert es.request("GET", "/_ilm/policy/sluice-logs").json()[
        "sluice-logs"]["version"] == 2
    assert es.request("DELETE", "/_ilm/policy/sluice-logs").status == 200
    assert es.request("DELETE", "/_ilm/policy/sluice-logs").status == 404
    assert "logs@lifecycle" in es.request("GET", "/_ilm/policy").json()


# ------------------------------------------------------------ search/count

def seed(es):
    docs = [
        ("a", {"@timestamp": "2024-05-01T12:00:03.000Z", "message":
               "upstream timeout", "log": {"level": "error"},
               "service": {"name": "checkout"}}),
        ("b", {"@timestamp": "2024-05-01T12:00:01.000Z", "message": "ok",
               "log.level": "info", "service.name": "checkout"}),
        ("c", {"@timestamp": "2024-05-01T12:00:02.000Z", "message": "ok 2",
               "log": {"level": "warn"}, "service": {"name": "cart"},
               "tags": ["x", "y"]}),
    ]
    bulk_items(es, *[create("logs-s-default", i, **d) for i, d in docs])


def test_count_and_search(es):
    seed(es)
    assert es.count("logs-s-default") == 3
    assert es.count("logs-s-default", {"term": {"log.level": "error"}}) == 1
    assert es.count("logs-s-default", {"term": {"log.level": "info"}}) == 1, \
        "dotted keys and nested objects are the same field"
    assert es.count("logs-s-default", {"terms": {
        "service.name": ["checkout", "cart"]}}) == 3
    assert es.count("logs-s-default", {"term": {"tags": "y"}}) == 1
    assert es.count("logs-s-default", {"range": {"@timestamp": {
        "gte": "2024-05-01T12:00:02Z"}}}) == 2
    assert es.count("logs-s-default", {"bool": {"filter": [
        {"term": {"service.name": "checkout"}},
        {"match": {"message": "timeout"}}]}}) == 1
    r = es.search("logs-s-default", {"match_all": {}},
                  sort=[{"@timestamp": {"order": "desc"}}])
    hits = r["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a", "c", "b"]
    assert hits[0]["sort"] == [1714564803000]
    assert hits[0]["_score"] is None
    assert hits[0]["_index"].startswith(".ds-logs-s-default-")
    assert hits[0]["_source"]["message"] == "upstream timeout"
    assert r["hits"]["total"] == {"value": 3, "relation": "eq"}
    r = es.request("POST", "/logs-s-default/_search",
                   {"size": 1, "sort": ["@timestamp"]}).json()
    assert [h["_id"] for h in r["hits"]["hits"]] == ["b"]
    r = es.request("GET", "/logs-s-default/_search").json()
    assert len(r["hits"]["hits"]) == 3


def test_search_targets(es):
    seed(es)
    bulk_items(es, [{"index": {"_index": "other", "_id": "o"}}, {"x": 1}])
    assert es.count("logs-*") == 3
    assert es.count("*") == 4
    assert es.count("logs-s-default,other") == 4
    assert es.count("nomatch-*") == 0
    r = es.request("GET", "/missing/_count")
    assert r.status == 404
    assert r.json()["error"]["type"] == "index_not_found_exception"
    es.request("POST", "/_aliases", {"actions": [
        {"add": {"index": "other", "alias": "al"}}]})
    assert es.count("al") == 1
    assert es.count(".ds-logs-s-*") == 3
    assert len(es.docs("logs-*")) == 3
    doc = es.request("GET", "/logs-s-default/_doc/a").json()
    assert doc["found"] and doc["_source"]["message"] == "upstream timeout"
    assert es.request("GET", "/logs-s-default/_doc/zz").json()["found"] \
        is False


def test_unknown_query_is_400(es):
    seed(es)
    r = es.request("POST", "/logs-s-default/_search",
                   {"query": {"fancy": {}}})
    assert r.status == 400
    assert r.json()["error"]["type"] == "parsing_exception"


def test_cat_indices(es):
    seed(es)
    bulk_items(es, [{"index": {"_index": "plain-1", "_id": "1"}}, {"a": 1}])
    rows = es.request("GET", "/_cat/indices?format=json").json()
    by = {r["index"]: r for r in rows}
    assert by["plain-1"]["docs.count"] == "1"
    ds = [n for n in by if n.startswith(".ds-logs-s-default-")]
    assert len(ds) == 1 and by[ds[0]]["docs.count"] == "3"
    r = es.request("GET", "/_cat/indices/plain-*?format=json&h=index,"
                   "creation.date,docs.count&s=index").json()
    assert list(r[0]) == ["index", "creation.date", "docs.count"]
    assert int(r[0]["creation.date"]) > 1.7e12
    text = es.request("GET", "/_cat/indices?v").body.decode()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["health", "status", "index"]
    assert any(ln.split()[2] == "plain-1" for ln in lines[1:])


def test_delete_index_wildcards(es):
    for n in ("d-1", "d-2"):
        bulk_items(es, [{"index": {"_index": n, "_id": "1"}}, {"a": 1}])
    r = es.request("DELETE", "/d-*")
    assert r.status == 400
    assert "Wildcard expressions or all indices are not allowed" in \
        r.json()["error"]["reason"]
    assert es.request("DELETE", "/d-1,d-2").json() == {"acknowledged": True}
    r = es.request("DELETE", "/d-1")
    assert r.status == 404
    assert r.json()["error"]["type"] == "index_not_found_exception"
    with start_esdouble("--allow-wildcard-delete") as es2:
        es2.request("PUT", "/w-1")
        assert es2.request("DELETE", "/w-*").status == 200
        assert es2.request("GET", "/w-1").status == 404


def test_settings_and_creation_date(es):
    es.request("PUT", "/sluice-2024.05.01")
    r = es.request("GET", "/sluice-*/_settings/index.creation_date").json()
    cd = r["sluice-2024.05.01"]["settings"]["index"]["creation_date"]
    assert int(cd) > 1.7e12
    es.set_creation_date("sluice-2024.05.01", 1714521600000)
    r = es.request("GET", "/sluice-*/_settings/index.creation_date").json()
    assert r["sluice-2024.05.01"]["settings"]["index"]["creation_date"] == \
        "1714521600000"


def test_single_doc_apis(es):
    r = es.request("PUT", "/logs-one-default/_create/x",
                   {"@timestamp": "2024-05-01T00:00:00Z"})
    assert r.status == 201 and r.json()["result"] == "created"
    r = es.request("PUT", "/logs-one-default/_create/x",
                   {"@timestamp": "2024-05-01T00:00:00Z"})
    assert r.status == 409
    assert r.json()["error"]["type"] == "version_conflict_engine_exception"
    r = es.request("POST", "/plain/_doc", {"a": 1})
    assert r.status == 201 and len(r.json()["_id"]) == 20


# ------------------------------------------------------------ auth

def test_basic_auth():
    with start_esdouble("--user", "elastic:s3cret") as es:
        r = es.request("GET", "/", auth=False)
        assert r.status == 401
        assert r.json()["error"]["type"] == "security_exception"
        assert "missing authentication credentials" in \
            r.json()["error"]["reason"]
        assert r.headers["X-Elastic-Product"] == "Elasticsearch"
        c = http.client.HTTPConnection("127.0.0.1", es.port, timeout=5)
        c.request("GET", "/")
        resp = c.getresponse()
        resp.read()
        www = resp.headers.get_all("WWW-Authenticate")
        assert any(w.startswith("Basic") for w in www)
        assert "ApiKey" in www
        bad = "Basic " + base64.b64encode(b"elastic:wrong").decode()
        r = es.request("GET", "/", headers={"Authorization": bad},
                       auth=False)
        assert r.status == 401
        assert "unable to authenticate user [elastic]" in \
            r.json()["error"]["reason"]
        assert es.request("GET", "/").status == 200
        # The private API needs no credentials.
        assert es.request("GET", "/_double/stats", auth=False).status == 200


def test_api_key_auth():
    with start_esdouble("--api-key", "id1:key1") as es:
        enc = base64.b64encode(b"id1:key1").decode()
        r = es.request("GET", "/", headers={"Authorization": "ApiKey " + enc},
                       auth=False)
        assert r.status == 200
        r = es.request("GET", "/", headers={"Authorization": "ApiKey xx"},
                       auth=False)
        assert r.status == 401
        assert es.bulk(nd(*create("logs-ak-default", "a"))).status == 200


# ------------------------------------------------------------ faults

@pytest.mark.parametrize("status,etype", [
    (429, "es_rejected_execution_exception"),
    (500, "illegal_state_exception"),
    (503, "cluster_block_exception"),
    (401, "security_exception"),
    (403, "security_exception"),
])
def test_fail_next_requests(es, status, etype):
    es.set_faults(fail_status=status, fail_count=2)
    body = nd(*create("logs-f-default"))
    for _ in range(2):
        r = es.bulk(body)
        assert r.status == status
        assert r.json()["error"]["type"] == etype
        assert r.json()["status"] == status
        assert r.json()["error"]["root_cause"][0]["type"] == etype
    assert es.request("GET", "/").status == 200, "only /_bulk by default"
    assert es.bulk(body).status == 200
    assert es.count("logs-f-default") == 1
    st = es.stats()
    assert st["faults_fired"] == 2
    assert st["by_path_status"]["POST /_bulk"][str(status)] == 2


def test_fail_413_and_any_path(es):
    es.set_faults(fail_status=413, fail_count=1, fail_path="")
    r = es.request("GET", "/")
    assert r.status == 413 and r.body == b""
    assert es.request("GET", "/").status == 200


def test_faults_from_cli():
    with start_esdouble("--fail-status", "503", "--fail-count", "1") as es:
        body = nd(*create("logs-cli-default"))
        assert es.bulk(body).status == 503
        assert es.bulk(body).status == 200


def test_item_reject_every_kth(es):
    es.set_faults(item_reject_every=3)
    pairs = [create("logs-rej-default", "i%d" % k) for k in range(9)]
    r = bulk_items(es, *pairs)
    statuses = [item(r, k)[1]["status"] for k in range(9)]
    assert statuses == [201, 201, 429] * 3
    e = item(r, 2)[1]["error"]
    assert e["type"] == "es_rejected_execution_exception"
    assert r["errors"] is True
    assert es.count("logs-rej-default") == 6
    assert es.stats()["items_by_status"] == {"201": 6, "429": 3}


def test_item_reject_match_and_limit(es):
    es.set_faults(item_reject_match="poison", item_reject_limit=1)
    r = bulk_items(es, create("logs-m-default", "a", message="poison"),
                   create("logs-m-default", "b", message="fine"),
                   create("logs-m-default", "c", message="poison"))
    assert [item(r, k)[1]["status"] for k in range(3)] == [429, 201, 201]
    es.set_faults(item_reject_match="bad", item_reject_status=400,
                  item_reject_limit=0)
    r = bulk_items(es, create("logs-m-default", "d", message="bad"))
    assert item(r, 0)[1]["status"] == 400
    assert item(r, 0)[1]["error"]["type"] == "document_parsing_exception"


def test_mapping_error_field_and_field_types(es):
    es.set_faults(mapping_error_field="labels.bad")
    r = bulk_items(es, create("logs-me-default", "a", labels={"bad": 1}),
                   create("logs-me-default", "b", **{"labels.bad": "x"}),
                   create("logs-me-default", "c", labels={"good": 1}))
    assert [item(r, k)[1]["status"] for k in range(3)] == [400, 400, 201]
    assert "failed to parse field [labels.bad]" in \
        item(r, 0)[1]["error"]["reason"]
    es.set_faults(mapping_error_field="", field_types={"n": "long"})
    r = bulk_items(es, create("plainx", "a", n="NaN-ish"),
                   create("plainx", "b", n=5))
    assert [item(r, k)[1]["status"] for k in range(2)] == [400, 201]
    r = es.request("POST", "/_double/faults", {"field_types": {"n": "x"}})
    assert r.status == 400


def test_flood_stage(es):
    bulk_items(es, [{"index": {"_index": "fl", "_id": "keep"}}, {"a": 1}])
    es.set_faults(flood_stage=True)
    r = bulk_items(es, create("logs-fl-default", "a"),
                   [{"delete": {"_index": "fl", "_id": "keep"}}])
    _, b = item(r, 0)
    assert b["status"] == 429
    assert b["error"]["type"] == "cluster_block_exception"
    assert "TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage " \
           "watermark" in b["error"]["reason"]
    assert item(r, 1)[1]["status"] == 200, "deletes still work"
    es.set_faults(flood_stage=False)
    r = bulk_items(es, create("logs-fl-default", "a"))
    assert item(r, 0)[1]["status"] == 201


def test_forbid_index(es):
    es.set_faults(forbid_index="logs-secret-*")
    r = bulk_items(es, create("logs-secret-default", "a"),
                   create("logs-open-default", "a"))
    assert item(r, 0)[1]["status"] == 403
    assert item(r, 0)[1]["error"]["type"] == "security_exception"
    assert item(r, 1)[1]["status"] == 201


def test_delay(es):
    es.set_faults(delay_ms=300)
    t0 = time.monotonic()
    assert es.request("GET", "/").status == 200
    assert time.monotonic() - t0 >= 0.3


def _raw_bulk(port, body):
    """Send one bulk on a raw socket; return what came back (b"" = drop)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /_bulk HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/x-ndjson\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                break
    except ConnectionResetError:
        pass
    s.close()
    return out


@pytest.mark.parametrize("mode,applied", [("before", 0), ("after", 1)])
def test_drop_connection(es, mode, applied):
    es.set_faults(drop_count=1, drop_mode=mode)
    body = nd(*create("logs-drop-default", "a")).encode()
    assert _raw_bulk(es.port, body) == b""
    assert es.count("logs-*") == applied
    r = es.bulk(body)
    st = item(r.json(), 0)[1]["status"]
    assert st == (201 if applied == 0 else 409), \
        "a resend after a lost reply is a duplicate"
    assert es.stats()["dropped"] == 1


def test_stats_and_reset(es):
    bulk_items(es, create("logs-st-default", "a"), create("logs-st-default",
                                                          "a"))
    st = es.stats()
    assert st["items_by_status"] == {"201": 1, "409": 1}
    assert st["docs_total"] == 1
    assert st["bulk_requests"] == 1 and st["bulk_items"] == 2
    assert st["by_status"]["200"] >= 1
    es.set_faults(delay_ms=5)
    es.reset()
    st = es.stats()
    assert st["docs_total"] == 0 and st["requests"] == 0
    assert st["faults"]["delay_ms"] == 0
    assert es.request("GET", "/_data_stream").json() == {"data_streams": []}


def test_fault_table_api(es):
    r = es.request("POST", "/_double/faults", {"nope": 1})
    assert r.status == 400
    f = es.set_faults(fail_status=429, fail_count=1)
    assert f["fail_count"] == 1
    assert es.clear_faults()["fail_count"] == 0


def test_concurrent_writers_unique_seq_no(es):
    import threading
    results = []

    def writer(n):
        pairs = [create("logs-cc-default", "w%d-%d" % (n, k))
                 for k in range(200)]
        r = es.bulk(nd(*[o for p in pairs for o in p]))
        results.append(r.json())
    ts = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    seqs = [it["create"]["_seq_no"] for r in results for it in r["items"]]
    assert sorted(seqs) == list(range(800))
    assert es.count("logs-cc-default") == 800


@pytest.mark.slow
def test_throughput_30k_docs_per_s():
    import subprocess
    import sys
    import os
    out = subprocess.run([sys.executable, os.path.join(
        os.path.dirname(__file__), "bench.py"), "--docs", "200000"],
        capture_output=True, check=True, text=True).stdout
    # Server CPU, not wall time: the machine is shared with builds.
    assert json.loads(out)["docs_per_server_cpu_s"] >= 30000


def test_filter_path_not_applied_to_errors(es):
    r = es.bulk(nd(*create("logs-fe-default", "a")).rstrip("\n"),
                params="filter_path=items.*.status")
    assert r.status == 400
    assert r.json()["error"]["type"] == "illegal_argument_exception"
    es.set_faults(fail_status=429, fail_count=1)
    r = es.bulk(nd(*create("logs-fe-default", "a")),
                params="filter_path=items.*.status")
    assert r.status == 429
    assert r.json()["error"]["type"] == "es_rejected_execution_exception"


def test_writes_addressed_to_backing_index(es):
    r = bulk_items(es, create("logs-bi-default", "a"))
    backing = item(r, 0)[1]["_index"]
    seq = item(r, 0)[1]["_seq_no"]
    r = bulk_items(es, [{"create": {"_index": backing, "_id": "b"}},
                        {"@timestamp": 1}],
                   [{"index": {"_index": backing, "_id": "a"}},
                    {"@timestamp": 2}],
                   [{"index": {"_index": backing, "_id": "a",
                               "if_seq_no": seq, "if_primary_term": 1}},
                    {"@timestamp": 3}],
                   [{"delete": {"_index": backing, "_id": "a"}}])
    assert [item(r, k)[1]["status"] for k in range(4)] == [400, 400, 200,
                                                           200]
    assert "targeting backing indices is disallowed" in \
        item(r, 1)[1]["error"]["reason"]


def test_double_exits_when_its_parent_dies():
    import os
    import subprocess
    import sys
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "lib")
    code = ("import sys, os; sys.path.insert(0, %r)\n"
            "from esdouble_fixture import start_esdouble\n"
            "es = start_esdouble(); print(es.proc.pid, flush=True)\n"
            "os._exit(0)\n" % lib)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=30).stdout
    pid = int(out.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(")")[1].split()[0] == "Z":
                return
        time.sleep(0.05)
    os.kill(pid, 15)
    raise AssertionError("esdouble outlived its parent")


def test_template_bodies_are_validated(es):
    r = es.request("PUT", "/_index_template/t", {
        "index_patterns": ["t-*"], "priorty": 5})
    assert r.status == 400
    assert r.json()["error"]["type"] == "x_content_parse_exception"
    assert "unknown field [priorty]" in r.json()["error"]["reason"]
    r = es.request("PUT", "/_component_template/c", {"template": {
        "mappings": {"properties": {"a": {"properties": {
            "b": {"type": "strng"}}}}}}})
    assert r.status == 400
    assert r.json()["error"]["type"] == "mapper_parsing_exception"
    assert "No handler for type [strng] declared on field [a.b]" in \
        r.json()["error"]["reason"]
    r = es.request("PUT", "/_component_template/c", {"mappings": {}})
    assert r.status == 400
    r = es.request("PUT", "/_component_template/c", {"template": {
        "mapping": {}}})
    assert r.status == 400 and "unknown field [mapping]" in \
        r.json()["error"]["reason"]
    r = es.request("PUT", "/_ilm/policy/p", {"phases": {}})
    assert r.status == 400
    r = es.request("PUT", "/idx", {"mappings": {"properties": {
        "x": {"type": "nope"}}}})
    assert r.status == 400
    r = es.request("PUT", "/_index_template/t", {"index_patterns": ["t-*"]})
    assert r.status == 200
    t = es.request("GET", "/_index_template/t").json()["index_templates"][0]
    assert t["index_template"]["composed_of"] == []


def test_put_settings_on_indices_and_streams(es):
    """PUT <target>/_settings changes dynamic settings (a data stream:
    every backing index) and refuses static ones, as ES does."""
    es.request("PUT", "/_data_stream/logs-set-default")
    es.request("POST", "/logs-set-default/_rollover")
    r = es.request("PUT", "/logs-set-default/_settings",
                   {"index": {"lifecycle": {"name": "p1",
                                            "prefer_ilm": True}}})
    assert r.status == 200 and r.json() == {"acknowledged": True}
    ds = es.request("GET", "/_data_stream/logs-set-default").json()[
        "data_streams"][0]
    assert [i["ilm_policy"] for i in ds["indices"]] == ["p1", "p1"]
    assert all(i["prefer_ilm"] is True for i in ds["indices"])
    r = es.request("PUT", "/logs-set-default/_settings",
                   {"index.lifecycle.prefer_ilm": False})
    assert r.status == 200
    ds = es.request("GET", "/_data_stream/logs-set-default").json()[
        "data_streams"][0]
    assert all(i["prefer_ilm"] is False for i in ds["indices"])
    es.request("PUT", "/plain-set")
    r = es.request("PUT", "/plain-set/_settings",
                   {"index": {"number_of_shards": 3}})
    assert r.status == 400
    assert "non dynamic settings" in r.json()["error"]["reason"]
    r = es.request("PUT", "/plain-set/_settings",
                   {"settings": {"index.number_of_replicas": 0}})
    assert r.status == 200
    got = es.request("GET", "/plain-set/_settings").json()
    assert got["plain-set"]["settings"]["index"]["number_of_replicas"] == "0"
    assert es.request("PUT", "/nope/_settings", {"a": 1}).status == 404


def test_cat_indices_bytes_and_template_lifecycle_enabled(es):
    """_cat/indices?bytes=b gives plain numbers (no unit), human sizes
    without it; a lifecycle from a template shows enabled: true."""
    es.request("PUT", "/catb")
    es.request("PUT", "/catb/_doc/1?refresh=true", {"m": "x" * 2000})
    rows = es.request("GET", "/_cat/indices/catb?format=json&bytes=b"
                      "&h=index,store.size").json()
    assert rows[0]["store.size"].isdigit()
    assert int(rows[0]["store.size"]) >= 2000
    rows = es.request("GET", "/_cat/indices/catb?format=json"
                      "&h=store.size").json()
    assert rows[0]["store.size"].endswith("kb")
    es.request("PUT", "/_index_template/lc", {
        "index_patterns": ["lc-*"], "priority": 300, "data_stream": {},
        "template": {"lifecycle": {"data_retention": "3d"}}})
    es.request("PUT", "/_data_stream/lc-x")
    ds = es.request("GET", "/_data_stream/lc-x").json()["data_streams"][0]
    assert ds["lifecycle"]["enabled"] is True
    assert ds["lifecycle"]["data_retention"] == "3d"


# ------------------------------------------------------ issue 14: hooks

def test_composed_of_missing_is_error_unless_ignored(es):
    # ES refuses a template naming a component that does not exist...
    r = es.request("PUT", "/_index_template/hooks", {
        "index_patterns": ["hooks-*"], "data_stream": {}, "priority": 10,
        "composed_of": ["site@custom"]})
    assert r.status == 400
    e = r.json()["error"]
    assert e["type"] == "invalid_index_template_exception"
    assert "[site@custom]" in e["reason"]
    # ...unless it is listed in ignore_missing_component_templates (8.7+),
    # and only those listed are excused.
    r = es.request("PUT", "/_index_template/hooks", {
        "index_patterns": ["hooks-*"], "data_stream": {}, "priority": 10,
        "composed_of": ["site@custom", "other@custom"],
        "ignore_missing_component_templates": ["site@custom"]})
    assert r.status == 400 and "[other@custom]" in \
        r.json()["error"]["reason"]
    r = es.request("PUT", "/_index_template/hooks", {
        "index_patterns": ["hooks-*"], "data_stream": {}, "priority": 10,
        "composed_of": ["site@custom"],
        "ignore_missing_component_templates": ["site@custom"]})
    assert r.status == 200, r.body
    t = es.request("GET", "/_index_template/hooks").json()[
        "index_templates"][0]["index_template"]
    assert t["ignore_missing_component_templates"] == ["site@custom"]
    # A stream made while the hook is missing still works.
    assert item(bulk_items(es, create("hooks-a-x", "1")), 0)[1][
        "status"] == 201


def test_composed_of_later_component_wins(es):
    es.request("PUT", "/_component_template/base", {"template": {
        "settings": {"index.codec": "best_compression",
                     "index.number_of_replicas": 1}}})
    es.request("PUT", "/_index_template/hooks", {
        "index_patterns": ["hooks-*"], "data_stream": {}, "priority": 10,
        "composed_of": ["base", "site@custom"],
        "ignore_missing_component_templates": ["site@custom"]})
    bulk_items(es, create("hooks-a-before", "1"))
    # The hook created later applies to streams (and backing indices)
    # made after it, and overrides the components listed before it.
    r = es.request("PUT", "/_component_template/site@custom", {"template": {
        "settings": {"index.number_of_replicas": 0}}})
    assert r.status == 200
    bulk_items(es, create("hooks-a-after", "1"))
    s = es.request("GET", "/hooks-a-*/_settings").json()
    reps = {k.split("-")[-3]: v["settings"]["index"]["number_of_replicas"]
            for k, v in s.items()}
    assert reps == {"before": "1", "after": "0"}, s
    # Optional for every template using it: the hook may be deleted
    # (ES >= 8.8), a required component may not.
    assert es.request("DELETE", "/_component_template/base").status == 400
    assert es.request("DELETE", "/_component_template/site@custom") \
        .status == 200
    bulk_items(es, create("hooks-a-gone", "1"))


# --------------------------------------------------- issue 14: pipelines

def test_pipeline_crud(es):
    r = es.request("GET", "/_ingest/pipeline/p1")
    assert r.status == 404 and r.json() == {}
    assert "logs@default-pipeline" in es.request(
        "GET", "/_ingest/pipeline").json()
    r = es.request("PUT", "/_ingest/pipeline/p1", {
        "processors": [{"set": {"field": "labels.via", "value": "p1"}}]})
    assert r.status == 200 and r.json() == {"acknowledged": True}
    assert list(es.request("GET", "/_ingest/pipeline/p1").json()) == ["p1"]
    r = es.request("PUT", "/_ingest/pipeline/bad", {
        "processors": [{"frobnicate": {}}]})
    assert r.status == 400
    assert "No processor type exists with name [frobnicate]" in \
        r.json()["error"]["reason"]
    assert es.request("PUT", "/_ingest/pipeline/bad", {}).status == 400
    assert es.request("DELETE", "/_ingest/pipeline/p1").status == 200
    assert es.request("DELETE", "/_ingest/pipeline/p1").status == 404


def test_bulk_pipeline_param_runs_and_is_recorded(es):
    es.request("PUT", "/_ingest/pipeline/p1", {
        "processors": [{"set": {"field": "labels.via", "value": "p1"}},
                       {"remove": {"field": "drop_me"}}]})
    es.request("PUT", "/_ingest/pipeline/p2", {
        "processors": [{"set": {"field": "labels.via", "value": "p2"}}]})
    r = bulk_items(es, create("logs-p-default", "a", drop_me=1),
                   [{"create": {"_index": "logs-p-default", "_id": "b",
                                "pipeline": "p2"}},
                    {"@timestamp": "2024-05-01T12:00:00Z"}],
                   [{"create": {"_index": "logs-p-default", "_id": "c",
                                "pipeline": "_none"}},
                    {"@timestamp": "2024-05-01T12:00:00Z"}],
                   params="pipeline=p1")
    assert not r["errors"], r
    src = {d["_id"]: d["_source"] for d in es.docs("logs-p-default")}
    # ?pipeline= for the items that name none; an item's own wins; _none
    # runs no pipeline (not even the index's default one).
    assert src["a"]["labels"] == {"via": "p1"} and "drop_me" not in src["a"]
    assert src["b"]["labels"] == {"via": "p2"}
    assert "labels" not in src["c"]
    st = es.stats()
    assert st["bulk_pipeline_params"] == {"p1": 1}
    assert st["pipelines_run"] == {"p1": 1, "p2": 1}


def test_bulk_unknown_pipeline_fails_the_item(es):
    # As ES's IngestService: a per-item 400, the request itself is 200 and
    # the other items are written.
    r = bulk_items(es, create("logs-p-default", "a"),
                   [{"create": {"_index": "logs-p-default", "_id": "b",
                                "pipeline": "nope"}},
                    {"@timestamp": "2024-05-01T12:00:00Z"}])
    assert r["errors"] is True
    assert item(r, 0)[1]["status"] == 201
    _, b = item(r, 1)
    assert b["status"] == 400
    assert b["error"]["type"] == "illegal_argument_exception"
    assert b["error"]["reason"] == "pipeline with id [nope] does not exist"
    r = bulk_items(es, create("logs-q-default", "a"), params="pipeline=nope")
    assert item(r, 0)[1]["status"] == 400
    # Nothing was created for the refused item.
    assert es.request("GET", "/_data_stream/logs-q-default").status == 404


def test_default_and_final_pipeline_from_settings(es):
    es.request("PUT", "/_ingest/pipeline/dflt", {
        "processors": [{"set": {"field": "labels.dflt", "value": "yes"}}]})
    es.request("PUT", "/_ingest/pipeline/fin", {
        "processors": [{"set": {"field": "labels.fin", "value": "yes"}}]})
    es.request("PUT", "/_ingest/pipeline/req", {"processors": []})
    es.request("PUT", "/_index_template/pp", {
        "index_patterns": ["pp-*"], "priority": 10, "template": {
            "settings": {"index.default_pipeline": "dflt",
                         "index.final_pipeline": "fin"}}})
    bulk_items(es, [{"index": {"_index": "pp-1", "_id": "a"}}, {"x": 1}])
    bulk_items(es, [{"index": {"_index": "pp-1", "_id": "b"}}, {"x": 1}],
               params="pipeline=req")
    src = {d["_id"]: d["_source"] for d in es.docs("pp-1")}
    assert src["a"]["labels"] == {"dflt": "yes", "fin": "yes"}
    # The request's pipeline replaces the default one, not the final one.
    assert src["b"]["labels"] == {"fin": "yes"}
    # A default pipeline that does not exist fails every item.
    es.request("PUT", "/_index_template/pq", {
        "index_patterns": ["pq-*"], "priority": 10, "template": {
            "settings": {"index.default_pipeline": "gone"}}})
    r = bulk_items(es, [{"index": {"_index": "pq-1"}}, {"x": 1}])
    assert item(r, 0)[1]["error"]["reason"] == \
        "pipeline with id [gone] does not exist"
