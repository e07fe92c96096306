/* test_bulk.c - pure _bulk builders and parsers (collector/bulk.h) and the
 * template bodies (collector/es_setup.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "bulk.h"
#include "es_setup.h"
#include "sl_err.h"
#include "sl_hash.h"
#include "sl_time.h"

/* 2025-03-04T05:06:07Z: the spool record's append time the tests pass. */
#define FALLBACK_NS INT64_C(1741064767000000000)
/* 2025-03-04T23:59:59Z, a second before midnight UTC. */
#define LAST_SEC_NS INT64_C(1741132799000000000)

static char *
target(const struct sl_route *r, const char *json)
{
  static char out[512];
  json_t *ev = json_loads(json, 0, NULL);
  struct sl_buf b;

  assert_non_null(ev);
  sl_buf_init(&b, 0);
  assert_int_equal(sl_bulk_target(r, ev, FALLBACK_NS, &b), 0);
  snprintf(out, sizeof out, "%s", b.p);
  sl_buf_free(&b);
  json_decref(ev);
  return out;
}

static void
test_target_data_stream(void **state)
{
  struct sl_route r = { SL_INDEX_DATA_STREAM, "default", "sluice",
                        "generic" };

  (void)state;
  assert_string_equal(target(&r, "{\"event\":{\"dataset\":\"nginx.access\"}}"),
                      "logs-nginx.access-default");
  /* Dotted keys are the same field. */
  assert_string_equal(target(&r, "{\"event.dataset\":\"app\"}"),
                      "logs-app-default");
  /* data_stream.* used when event.dataset is absent; namespace too. */
  assert_string_equal(
    target(&r, "{\"data_stream\":{\"dataset\":\"Web\","
               "\"namespace\":\"Prod\"}}"),
    "logs-web-prod");
  assert_string_equal(
    target(&r, "{\"data_stream.namespace\":\"qa\",\"event.dataset\":\"x\"}"),
    "logs-x-qa");
  /* Sanitised: lower case, '-', ':', spaces and other bad chars -> '_'. */
  assert_string_equal(
    target(&r, "{\"event\":{\"dataset\":\"My-App:v2 *x?\"}}"),
    "logs-my_app_v2__x_-default");
  assert_string_equal(target(&r,
                             "{\"event\":{\"dataset\":\"a/b\\\\c|d,e#f\"}}"),
                      "logs-a_b_c_d_e_f-default");
  /* One '_' per UTF-8 character. */
  assert_string_equal(target(&r, "{\"event\":{\"dataset\":\"caf\u00e9\"}}"),
                      "logs-caf_-default");
  /* Unusable or missing values fall back. */
  assert_string_equal(target(&r, "{\"event\":{\"dataset\":\"--\"}}"),
                      "logs-generic-default");
  assert_string_equal(target(&r, "{}"), "logs-generic-default");
  assert_string_equal(target(&r, "{\"event\":{\"dataset\":5}}"),
                      "logs-generic-default");
}

static void
test_target_long(void **state)
{
  struct sl_route r = { SL_INDEX_DATA_STREAM, "default", "sluice",
                        "generic" };
  char ev[1200], *t;

  (void)state;
  memcpy(ev, "{\"event.dataset\":\"", 18);
  memset(ev + 18, 'a', 1000);
  memcpy(ev + 1018, "\"}", 3);
  t = target(&r, ev);
  /* Capped at 100 bytes per part: "logs-" + 100 + "-default". */
  assert_int_equal(strlen(t), 5 + 100 + 8);
}

static void
test_target_daily(void **state)
{
  struct sl_route r = { SL_INDEX_DAILY, "default", "sluice", "generic" };

  (void)state;
  assert_string_equal(
    target(&r, "{\"@timestamp\":\"2024-05-01T23:59:59.999Z\","
               "\"event\":{\"dataset\":\"nginx\"}}"),
    "sluice-nginx-2024.05.01");
  /* Offsets are converted to UTC first. */
  assert_string_equal(
    target(&r, "{\"@timestamp\":\"2024-05-01T23:30:00-02:00\"}"),
    "sluice-generic-2024.05.02");
  /* Epoch milliseconds as a number (ES epoch_millis). */
  assert_string_equal(target(&r, "{\"@timestamp\":1714521600000}"),
                      "sluice-generic-2024.05.01");
  assert_string_equal(target(&r, "{\"@timestamp\":\"1714521600\"}"),
                      "sluice-generic-2024.05.01");
  /* Before 1970 still gives a valid civil date. */
  assert_string_equal(target(&r, "{\"@timestamp\":\"1969-12-31T23:00:00Z\"}"),
                      "sluice-generic-1969.12.31");
  /* A bad or missing timestamp means the caller's fallback (the record's
   * append time), never the clock. */
  assert_string_equal(target(&r, "{\"@timestamp\":\"yesterday\"}"),
                      "sluice-generic-2025.03.04");
  assert_string_equal(target(&r, "{\"message\":\"x\"}"),
                      "sluice-generic-2025.03.04");
  r.prefix = "My Logs";
  assert_string_equal(
    target(&r, "{\"@timestamp\":\"2024-01-02T00:00:00Z\"}"),
    "my_logs-generic-2024.01.02");
}

static void
test_action_bytes(void **state)
{
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_bulk_action(&b, "logs-a-default", 14, "abc", 3), 0);
  assert_string_equal(b.p, "{\"create\":{\"_index\":\"logs-a-default\","
                           "\"_id\":\"abc\"}}\n");
  sl_buf_reset(&b);
  /* Escaping, and no _id when none is given. */
  assert_int_equal(sl_bulk_action(&b, "x", 1, "a\"b\\", 4), 0);
  assert_string_equal(b.p, "{\"create\":{\"_index\":\"x\","
                           "\"_id\":\"a\\\"b\\\\\"}}\n");
  sl_buf_reset(&b);
  assert_int_equal(sl_bulk_action(&b, "x", 1, NULL, 0), 0);
  assert_string_equal(b.p, "{\"create\":{\"_index\":\"x\"}}\n");
  sl_buf_free(&b);
  /* All or nothing at the cap. */
  sl_buf_init(&b, 20);
  assert_int_equal(sl_bulk_action(&b, "logs-a-default", 14, "abc", 3),
                   SL_E2BIG);
  assert_int_equal(b.len, 0);
  sl_buf_free(&b);
}

static void
test_action_parse(void **state)
{
  struct sl_buf idx, id;
  const char *l = "{\"create\":{\"_index\":\"logs-x-y\",\"_id\":\"42\"}}";

  (void)state;
  sl_buf_init(&idx, 0);
  sl_buf_init(&id, 0);
  assert_int_equal(sl_bulk_action_parse(l, strlen(l), &idx, &id), 0);
  assert_string_equal(idx.p, "logs-x-y");
  assert_string_equal(id.p, "42");
  sl_buf_reset(&idx);
  sl_buf_reset(&id);
  assert_int_equal(sl_bulk_action_parse("{\"index\":{}}", 12, &idx, &id), 0);
  assert_string_equal(idx.p, "");
  assert_string_equal(id.p, "");
  assert_int_equal(sl_bulk_action_parse("nope", 4, &idx, &id), SL_EPARSE);
  assert_int_equal(sl_bulk_action_parse("{\"a\":1}", 7, &idx, &id),
                   SL_EPARSE);
  sl_buf_free(&idx);
  sl_buf_free(&id);
}

static void
test_resp_parse(void **state)
{
  /* What ES returns with SL_BULK_FILTER_PATH: every item keeps its place. */
  const char *body =
    "{\"errors\":true,\"items\":["
    "{\"create\":{\"_id\":\"a\",\"status\":201}},"
    "{\"create\":{\"_id\":\"b\",\"status\":400,\"error\":{\"type\":"
    "\"document_parsing_exception\",\"reason\":\"failed to parse field "
    "[@timestamp]\"}}},"
    "{\"create\":{\"_id\":\"c\",\"status\":409,\"error\":{\"type\":"
    "\"version_conflict_engine_exception\",\"reason\":\"exists\"}}},"
    "{\"create\":{\"_id\":\"d\",\"status\":429,\"error\":{\"type\":"
    "\"es_rejected_execution_exception\",\"reason\":\"queue full\"}}},"
    "{\"create\":{\"_id\":\"e\"}}]}";
  struct sl_bulk_resp r;

  (void)state;
  assert_int_equal(sl_bulk_resp_parse(body, strlen(body), 5, &r), 0);
  assert_true(r.errors);
  assert_int_equal(r.n, 5);
  assert_int_equal(r.items[0].status, 201);
  assert_null(r.items[0].err_type);
  assert_int_equal(r.items[1].status, 400);
  assert_string_equal(r.items[1].err_type, "document_parsing_exception");
  assert_string_equal(r.items[1].err_reason,
                      "failed to parse field [@timestamp]");
  assert_int_equal(r.items[2].status, 409);
  assert_int_equal(r.items[3].status, 429);
  assert_string_equal(r.items[3].err_reason, "queue full");
  assert_int_equal(r.items[4].status, 0);
  sl_bulk_resp_free(&r);
  /* Count mismatch and garbage are refused, never guessed. */
  assert_int_equal(sl_bulk_resp_parse(body, strlen(body), 4, &r), SL_EPARSE);
  assert_int_equal(sl_bulk_resp_parse("<html>", 6, 1, &r), SL_EPARSE);
  assert_int_equal(sl_bulk_resp_parse("{\"errors\":false}", 16, 3, &r),
                   SL_EPARSE);
  body = "{\"errors\":false,\"items\":[{\"create\":{\"status\":201}}]}";
  assert_int_equal(sl_bulk_resp_parse(body, strlen(body), 1, &r), 0);
  assert_false(r.errors);
  assert_int_equal(r.items[0].status, 201);
  sl_bulk_resp_free(&r);
}

static struct sl_deadletter
sample_dl(void)
{
  struct sl_deadletter d;

  memset(&d, 0, sizeof d);
  d.orig_index = "logs-app-default";
  d.orig_id = "abc";
  d.action = "{\"create\":{\"_index\":\"logs-app-default\",\"_id\":\"abc\"}}";
  d.action_len = strlen(d.action);
  d.doc = "{\"@timestamp\":\"x\",\"message\":\"hi \\\"q\\\"\"}";
  d.doc_len = strlen(d.doc);
  d.status = 400;
  d.err_type = "document_parsing_exception";
  d.err_reason = "failed to parse field [@timestamp]";
  d.now_ns = 1714564800123000000LL; /* 2024-05-01T12:00:00.123Z */
  return d;
}

static void
test_deadletter(void **state)
{
  struct sl_deadletter d = sample_dl();
  struct sl_buf b;
  char id[33], id2[33], want[512];
  json_t *act, *doc;
  const char *nl;

  (void)state;
  sl_buf_init(&b, 0);
  sl_bulk_deadletter_id(&d, id);
  assert_int_equal(strlen(id), 32);
  d.orig_id = "abd";
  sl_bulk_deadletter_id(&d, id2);
  assert_string_not_equal(id, id2);
  d.orig_id = "abc";
  sl_bulk_deadletter_id(&d, id2);
  assert_string_equal(id, id2);

  assert_int_equal(sl_bulk_deadletter(&b, "logs-sluice.deadletter-default",
                                      &d), 0);
  snprintf(want, sizeof want, "{\"create\":{\"_index\":\"logs-sluice."
           "deadletter-default\",\"_id\":\"%s\"}}\n", id);
  assert_memory_equal(b.p, want, strlen(want));
  nl = strchr(b.p, '\n');
  assert_int_equal(b.p[b.len - 1], '\n');
  act = json_loadb(b.p, (size_t)(nl - b.p), 0, NULL);
  doc = json_loadb(nl + 1, b.len - (size_t)(nl + 1 - b.p) - 1, 0, NULL);
  assert_non_null(act);
  assert_non_null(doc);
  assert_ptr_equal(strchr(nl + 1, '\n'), b.p + b.len - 1); /* two lines */
  assert_string_equal(json_string_value(json_object_get(doc, "@timestamp")),
                      "2024-05-01T12:00:00.123Z");
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "event"), "original")), d.doc);
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "event"), "dataset")),
                      "sluice.deadletter");
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "error"), "type")),
                      "document_parsing_exception");
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "error"), "message")),
                      d.err_reason);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(
                     json_object_get(doc, "http"), "response"),
                     "status_code")), 400);
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "labels"), "original_index")),
                      "logs-app-default");
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "data_stream"), "namespace")),
                      "default");
  assert_string_equal(json_string_value(json_object_get(
                        json_object_get(doc, "data_stream"), "dataset")),
                      "sluice.deadletter");
  json_decref(act);
  json_decref(doc);

  /* A non-data-stream target gets no data_stream fields. */
  sl_buf_reset(&b);
  assert_int_equal(sl_bulk_deadletter(&b, "sluice-deadletter", &d), 0);
  assert_null(strstr(b.p, "data_stream"));
  sl_buf_free(&b);
}

static void
test_deadletter_line(void **state)
{
  struct sl_deadletter d = sample_dl();
  struct sl_buf b;
  json_t *j;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_bulk_deadletter_line(&b, &d, 403, "security_exception",
                                           "no"), 0);
  assert_int_equal(b.p[b.len - 1], '\n');
  assert_ptr_equal(strchr(b.p, '\n'), b.p + b.len - 1);
  j = json_loadb(b.p, b.len - 1, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "document")),
                      d.doc);
  assert_string_equal(json_string_value(json_object_get(j, "action")),
                      d.action);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 400);
  assert_int_equal(json_integer_value(json_object_get(j,
                                                      "deadletter_status")),
                   403);
  assert_string_equal(json_string_value(json_object_get(j, "index")),
                      "logs-app-default");
  json_decref(j);
  sl_buf_reset(&b);
  assert_int_equal(sl_bulk_deadletter_line(&b, &d, 0, NULL, NULL), 0);
  assert_null(strstr(b.p, "deadletter_status"));
  sl_buf_free(&b);
}

static void
test_gzip(void **state)
{
  char in[20000], back[20000];
  struct sl_buf b;
  z_stream z;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof in; i++)
    in[i] = (char)('a' + i % 7);
  sl_buf_init(&b, 0);
  assert_int_equal(sl_bulk_gzip(in, sizeof in, 1, &b), 0);
  assert_true(b.len < sizeof in / 10);
  /* gzip magic, then inflate with gzip-only window bits. */
  assert_int_equal((unsigned char)b.p[0], 0x1f);
  assert_int_equal((unsigned char)b.p[1], 0x8b);
  memset(&z, 0, sizeof z);
  assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
  z.next_in = (Bytef *)b.p;
  z.avail_in = (uInt)b.len;
  z.next_out = (Bytef *)back;
  z.avail_out = sizeof back;
  assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
  assert_int_equal(z.total_out, sizeof in);
  inflateEnd(&z);
  assert_memory_equal(in, back, sizeof in);
  sl_buf_free(&b);
}

/* composed_of of an installed index template, as "a,b,c". */
static void
composition(const char *body, char *out, size_t cap, char *opt, size_t ocap)
{
  json_t *t = json_loads(body, 0, NULL), *v;
  size_t i, n = 0, m = 0;

  assert_non_null(t);
  out[0] = opt[0] = '\0';
  json_array_foreach(json_object_get(t, "composed_of"), i, v)
    n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "",
                          json_string_value(v));
  json_array_foreach(json_object_get(t, "ignore_missing_component_templates"),
                     i, v)
    m += (size_t)snprintf(opt + m, ocap - m, "%s%s", i ? "," : "",
                          json_string_value(v));
  json_decref(t);
}

/* Issue 14: the templates compose the site hooks logs@custom (data
 * streams only) and sluice@custom after sluice's own components (later
 * wins), both optional; ES < 8.7 cannot take optional components. */
static void
test_templates_compose_custom_hooks(void **state)
{
  struct sl_es_object o[SL_ES_SETUP_MAX];
  struct sl_es_setup_conf c;
  char comp[256], opt[256];
  size_t n;

  (void)state;
  memset(&c, 0, sizeof c);
  c.mode = SL_INDEX_DAILY;
  c.es_major = 8;
  c.es_minor = 15;
  assert_int_equal(sl_es_setup_build(&c, o, &n), 0);
  assert_int_equal(n, 4);
  composition(o[2].body, comp, sizeof comp, opt, sizeof opt);
  assert_string_equal(comp, "sluice-ecs-mappings,sluice-settings,"
                      "logs@custom,sluice@custom");
  assert_string_equal(opt, "logs@custom,sluice@custom");
  composition(o[3].body, comp, sizeof comp, opt, sizeof opt);
  assert_string_equal(comp, "sluice-ecs-mappings,sluice-settings,"
                      "sluice@custom");
  assert_string_equal(opt, "sluice@custom");
  sl_es_setup_free(o, n);

  /* Unknown version: as current. 8.7 is the first with the field. */
  c.es_major = 0;
  c.es_minor = 0;
  assert_int_equal(sl_es_setup_build(&c, o, &n), 0);
  assert_non_null(strstr(o[2].body, "sluice@custom"));
  sl_es_setup_free(o, n);
  c.es_major = 8;
  c.es_minor = 7;
  assert_int_equal(sl_es_setup_build(&c, o, &n), 0);
  assert_non_null(strstr(o[2].body, "ignore_missing_component_templates"));
  sl_es_setup_free(o, n);
  c.es_minor = 6;
  assert_int_equal(sl_es_setup_build(&c, o, &n), 0);
  for (size_t i = 2; i < n; i++) {
    composition(o[i].body, comp, sizeof comp, opt, sizeof opt);
    assert_string_equal(comp, "sluice-ecs-mappings,sluice-settings");
    assert_null(strstr(o[i].body, "ignore_missing_component_templates"));
  }
  sl_es_setup_free(o, n);
}

static void
test_templates(void **state)
{
  struct sl_es_object o[SL_ES_SETUP_MAX], o2[SL_ES_SETUP_MAX];
  struct sl_es_setup_conf c;
  json_t *t, *m;
  size_t n, n2, i;

  (void)state;
  memset(&c, 0, sizeof c);
  c.mode = SL_INDEX_DATA_STREAM;
  assert_int_equal(sl_es_setup_build(&c, o, &n), 0);
  assert_int_equal(n, 3);
  assert_string_equal(o[0].path, "_component_template/sluice-ecs-mappings");
  assert_string_equal(o[2].path, "_index_template/sluice-logs");
  t = json_loads(o[2].body, 0, NULL);
  assert_non_null(t);
  assert_int_equal(json_integer_value(json_object_get(t, "priority")), 150);
  assert_string_equal(json_string_value(json_array_get(
                        json_object_get(t, "index_patterns"), 0)), "logs-*-*");
  assert_true(json_is_object(json_object_get(t, "data_stream")));
  assert_int_equal(json_integer_value(json_object_get(t, "version")),
                   o[2].version);
  json_decref(t);
  m = json_loads(o[0].body, 0, NULL);
  t = json_object_get(json_object_get(m, "template"), "mappings");
  assert_true(json_is_false(json_object_get(t, "date_detection")));
  t = json_object_get(t, "properties");
  assert_string_equal(json_string_value(json_object_get(json_object_get(
                        t, "message"), "type")), "match_only_text");
  t = json_object_get(json_object_get(json_object_get(t, "event"),
                                      "properties"), "original");
  assert_true(json_is_false(json_object_get(t, "index")));
  assert_true(json_is_false(json_object_get(t, "doc_values")));
  json_decref(m);

  /* No ILM policy: the data stream lifecycle gives rollover on >= 8.11
   * (or unknown); older 8.x gets the built-in `logs` ILM policy. */
  assert_non_null(strstr(o[2].body, "\"lifecycle\":{}"));
  assert_null(strstr(o[1].body, "lifecycle"));
  c.es_major = 8;
  c.es_minor = 9;
  assert_int_equal(sl_es_setup_build(&c, o2, &n2), 0);
  assert_null(strstr(o2[2].body, "lifecycle"));
  assert_non_null(strstr(o2[1].body, "\"lifecycle\":{\"name\":\"logs\"}"));
  sl_es_setup_free(o2, n2);
  c.es_major = 8;
  c.es_minor = 15;

  /* Same input, same versions; different options, different version. */
  assert_int_equal(sl_es_setup_build(&c, o2, &n2), 0);
  for (i = 0; i < n; i++)
    assert_int_equal(o[i].version, o2[i].version);
  sl_es_setup_free(o2, n2);
  c.ilm_policy = "keep-7d";
  c.mode = SL_INDEX_DAILY;
  c.prefix = "acme";
  assert_int_equal(sl_es_setup_build(&c, o2, &n2), 0);
  assert_int_equal(n2, 4);
  assert_int_not_equal(o[1].version, o2[1].version);
  assert_non_null(strstr(o2[1].body, "keep-7d"));
  assert_non_null(strstr(o2[3].body, "\"acme-*\""));
  assert_null(strstr(o2[3].body, "data_stream\":{}"));
  {
    const char *g = "{\"index_templates\":[{\"name\":\"x\",\"index_template\":"
                    "{\"version\":77}}]}";

    assert_int_equal(sl_es_stored_version(g, strlen(g)), 77);
  }
  assert_int_equal(sl_es_stored_version("{\"component_templates\":[]}", 26),
                   -1);
  sl_es_setup_free(o2, n2);
  sl_es_setup_free(o, n);
}

static void
test_parse_root(void **state)
{
  const char *es = "{\"version\":{\"number\":\"8.13.4\"},\"tagline\":\"x\"}";
  const char *os = "{\"version\":{\"number\":\"2.11.0\",\"distribution\":"
                   "\"opensearch\"}}";
  char num[32];
  int major, minor, osr;

  (void)state;
  assert_int_equal(sl_es_parse_root(es, strlen(es), num, sizeof num, &major,
                                    &minor, &osr), 0);
  assert_string_equal(num, "8.13.4");
  assert_int_equal(major, 8);
  assert_int_equal(minor, 13);
  assert_false(osr);
  assert_int_equal(sl_es_parse_root(os, strlen(os), num, sizeof num, &major,
                                    &minor, &osr), 0);
  assert_true(osr);
  assert_int_equal(sl_es_parse_root("{}", 2, num, sizeof num, &major, &minor,
                                    &osr), SL_EPARSE);
}

/* sl_bulk_encode: exact bytes of the pairs built from spooled events. */
static char *
encode(const struct sl_route *r, const char *events)
{
  static char out[2048];
  struct sl_buf b;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_bulk_encode(r, events, strlen(events), FALLBACK_NS, &b),
                   0);
  snprintf(out, sizeof out, "%s", b.p ? b.p : "");
  sl_buf_free(&b);
  return out;
}

static void
test_encode_data_stream(void **state)
{
  struct sl_route r = { SL_INDEX_DATA_STREAM, "default", "sluice",
                        "generic" };
  const char *evs =
    "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\",\"event\":{\"id\":\"a1\","
    "\"dataset\":\"nginx.access\"},\"m\":1}\n"
    "\n"
    "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\",\"event.id\":\"b2\","
    "\"data_stream\":{\"namespace\":\"Prod\"}}\r\n"
    "{\"@timestamp\":1,\"event\":{\"id\":\"c\\\"3\"}}";

  (void)state;
  assert_string_equal(encode(&r, evs),
    "{\"create\":{\"_index\":\"logs-nginx.access-default\",\"_id\":\"a1\"}}\n"
    "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\",\"event\":{\"id\":\"a1\","
    "\"dataset\":\"nginx.access\"},\"m\":1}\n"
    "{\"create\":{\"_index\":\"logs-generic-prod\",\"_id\":\"b2\"}}\n"
    "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\",\"event.id\":\"b2\","
    "\"data_stream\":{\"namespace\":\"Prod\"}}\n"
    /* An escaped id takes the jansson path and is escaped again. */
    "{\"create\":{\"_index\":\"logs-generic-default\",\"_id\":\"c\\\"3\"}}\n"
    "{\"@timestamp\":1,\"event\":{\"id\":\"c\\\"3\"}}\n");
  assert_string_equal(encode(&r, ""), "");
}

static void
test_encode_daily(void **state)
{
  struct sl_route r = { SL_INDEX_DAILY, "default", "Sluice", "generic" };
  const char *evs =
    "{\"@timestamp\":\"2024-05-01T23:59:59.999Z\",\"event\":{\"id\":\"a1\","
    "\"dataset\":\"App\"}}\n"
    /* epoch ms number: the jansson path */
    "{\"@timestamp\":86400000,\"event\":{\"id\":\"b2\"}}\n";

  (void)state;
  assert_string_equal(encode(&r, evs),
    "{\"create\":{\"_index\":\"sluice-app-2024.05.01\",\"_id\":\"a1\"}}\n"
    "{\"@timestamp\":\"2024-05-01T23:59:59.999Z\",\"event\":{\"id\":\"a1\","
    "\"dataset\":\"App\"}}\n"
    "{\"create\":{\"_index\":\"sluice-generic-1970.01.02\",\"_id\":\"b2\"}}\n"
    "{\"@timestamp\":86400000,\"event\":{\"id\":\"b2\"}}\n");
}

static char *
action(const struct sl_route *r, const char *ev, int64_t fallback_ns)
{
  static char out[512];
  struct sl_buf b;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_bulk_event_action(r, ev, strlen(ev), fallback_ns, &b),
                   0);
  snprintf(out, sizeof out, "%s", b.p ? b.p : "");
  sl_buf_free(&b);
  return out;
}

/* Daily mode, an event whose @timestamp is missing or cannot be parsed:
 * the date is the caller's fallback (the spool record's append time, the
 * same at every re-delivery), not the clock at submit, so a re-send after
 * midnight UTC still meets its first copy in the same index. */
static void
test_daily_fallback_is_record_time(void **state)
{
  struct sl_route r = { SL_INDEX_DAILY, "default", "sluice", "generic" };
  const char *bad = "{\"@timestamp\":\"garbage\",\"event\":{\"id\":\"x1\"}}";
  const char *none = "{\"event\":{\"id\":\"x2\"},\"message\":\"m\"}";
  const char *num = "{\"@timestamp\":true,\"event\":{\"id\":\"x3\"}}";

  (void)state;
  assert_string_equal(action(&r, bad, LAST_SEC_NS),
    "{\"create\":{\"_index\":\"sluice-generic-2025.03.04\",\"_id\":\"x1\"}}\n");
  assert_string_equal(action(&r, none, LAST_SEC_NS),
    "{\"create\":{\"_index\":\"sluice-generic-2025.03.04\",\"_id\":\"x2\"}}\n");
  assert_string_equal(action(&r, num, LAST_SEC_NS),
    "{\"create\":{\"_index\":\"sluice-generic-2025.03.04\",\"_id\":\"x3\"}}\n");
  /* Only the fallback moves the date (a second later is the next day). */
  assert_string_equal(action(&r, bad, LAST_SEC_NS + SL_NS_PER_SEC),
    "{\"create\":{\"_index\":\"sluice-generic-2025.03.05\",\"_id\":\"x1\"}}\n");
  assert_string_equal(action(&r, none, INT64_C(0)),
    "{\"create\":{\"_index\":\"sluice-generic-1970.01.01\",\"_id\":\"x2\"}}\n");
  /* Text that is not an object: default target, dated by the fallback. */
  assert_non_null(strstr(action(&r, "not json", LAST_SEC_NS),
                         "\"_index\":\"sluice-generic-2025.03.04\""));
  /* A parseable @timestamp wins over the fallback. */
  assert_string_equal(
    action(&r, "{\"@timestamp\":\"2024-05-01T12:00:00Z\","
               "\"event\":{\"id\":\"x4\"}}", LAST_SEC_NS),
    "{\"create\":{\"_index\":\"sluice-generic-2024.05.01\",\"_id\":\"x4\"}}\n");
}

static void
test_encode_without_id(void **state)
{
  struct sl_route r = { SL_INDEX_DATA_STREAM, "default", "sluice",
                        "generic" };
  const char *ev = "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\"}";
  const char *raw = "not json";
  char hid[33], want[512];

  (void)state;
  /* No usable id (none, or over 512 bytes): the hash of the bytes. */
  sl_hash128_hex(sl_hash128(ev, strlen(ev)), hid);
  snprintf(want, sizeof want,
           "{\"create\":{\"_index\":\"logs-generic-default\",\"_id\":\"%s\"}}"
           "\n%s\n", hid, ev);
  assert_string_equal(encode(&r, ev), want);
  sl_hash128_hex(sl_hash128(raw, strlen(raw)), hid);
  snprintf(want, sizeof want,
           "{\"create\":{\"_index\":\"logs-generic-default\",\"_id\":\"%s\"}}"
           "\n%s\n", hid, raw);
  assert_string_equal(encode(&r, raw), want);
}

static void
test_v1_to_events(void **state)
{
  char p[] = "{\"create\":{\"_index\":\"logs-a-default\",\"_id\":\"1\"}}\n"
             "{\"event\":{\"id\":\"1\"}}\n"
             "\n"
             "{\"create\":{\"_index\":\"logs-a-default\",\"_id\":\"2\"}}\r\n"
             "{\"event\":{\"id\":\"2\"}}\r\n"
             "{\"create\":{\"_index\":\"x\"}}\n";
  struct sl_span orphan;
  uint32_t n = 0;
  size_t len;

  (void)state;
  len = sl_bulk_v1_to_events(p, strlen(p), &n, &orphan);
  assert_int_equal(n, 2);
  /* The last action has no source: reported, its bytes left intact. */
  assert_int_equal(orphan.len, strlen("{\"create\":{\"_index\":\"x\"}}"));
  assert_memory_equal(orphan.p, "{\"create\":{\"_index\":\"x\"}}",
                      orphan.len);
  assert_true(orphan.p >= p + len);
  assert_int_equal(len, strlen("{\"event\":{\"id\":\"1\"}}\n"
                               "{\"event\":{\"id\":\"2\"}}\n"));
  assert_memory_equal(p, "{\"event\":{\"id\":\"1\"}}\n"
                         "{\"event\":{\"id\":\"2\"}}\n", len);
}

static void
test_event_split(void **state)
{
  const char *p = "a\n\nbb\r\nccc";
  struct sl_span sp[4];

  (void)state;
  assert_int_equal(sl_bulk_event_count(p, strlen(p)), 3);
  assert_int_equal(sl_bulk_event_split(p, strlen(p), sp, 4), 3);
  assert_int_equal(sp[0].len, 1);
  assert_ptr_equal(sp[1].p, p + 3);
  assert_int_equal(sp[1].len, 2);
  assert_int_equal(sp[2].len, 3);
  assert_int_equal(sl_bulk_event_split(p, strlen(p), sp, 1), 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_target_data_stream),
    cmocka_unit_test(test_target_long),
    cmocka_unit_test(test_target_daily),
    cmocka_unit_test(test_action_bytes),
    cmocka_unit_test(test_action_parse),
    cmocka_unit_test(test_resp_parse),
    cmocka_unit_test(test_deadletter),
    cmocka_unit_test(test_deadletter_line),
    cmocka_unit_test(test_gzip),
    cmocka_unit_test(test_templates),
    cmocka_unit_test(test_templates_compose_custom_hooks),
    cmocka_unit_test(test_parse_root),
    cmocka_unit_test(test_encode_data_stream),
    cmocka_unit_test(test_encode_daily),
    cmocka_unit_test(test_daily_fallback_is_record_time),
    cmocka_unit_test(test_encode_without_id),
    cmocka_unit_test(test_v1_to_events),
    cmocka_unit_test(test_event_split),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
