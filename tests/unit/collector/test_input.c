/* Event conversion of the Lumberjack input: every received event becomes
 * one spooled event line with a stable event.id and an @timestamp, and
 * nothing is dropped; the indexer's encoder (bulk.h) then makes one bulk
 * pair of it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bulk.h"
#include "input.h"
#include "sl_buf.h"
#include "sl_hash.h"

static const struct sl_route route = {
  SL_INDEX_DATA_STREAM, "default", "sluice", "generic"
};

/* What the intake spools for ev (exactly one line), encoded as the indexer
 * does. */
static int
to_pair(const char *ev, size_t len, struct sl_buf *pair)
{
  struct sl_buf line;
  const char *nl;

  sl_buf_init(&line, 0);
  assert_int_equal(sl_input_event_normalize(ev, len, &line), 0);
  nl = memchr(line.p, '\n', line.len);
  assert_non_null(nl);
  assert_int_equal((size_t)(nl + 1 - line.p), line.len);
  assert_int_equal(sl_bulk_encode(&route, line.p, line.len, 0, pair), 0);
  sl_buf_free(&line);
  return 0;
}

/* Split "action\nsource\n" into two parsed objects. */
static void
split_pair(const struct sl_buf *b, json_t **action, json_t **doc,
           char **doc_text)
{
  const char *nl1, *nl2;
  json_error_t e;

  nl1 = memchr(b->p, '\n', b->len);
  assert_non_null(nl1);
  nl2 = memchr(nl1 + 1, '\n', b->len - (size_t)(nl1 + 1 - b->p));
  assert_non_null(nl2);
  assert_int_equal((size_t)(nl2 + 1 - b->p), b->len);
  *action = json_loadb(b->p, (size_t)(nl1 - b->p), 0, &e);
  assert_non_null(*action);
  *doc = json_loadb(nl1 + 1, (size_t)(nl2 - nl1 - 1), 0, &e);
  assert_non_null(*doc);
  if (doc_text)
    *doc_text = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static const char *
action_id(json_t *a)
{
  return json_string_value(json_object_get(json_object_get(a, "create"), "_id"));
}

static const char *
action_index(json_t *a)
{
  return json_string_value(
      json_object_get(json_object_get(a, "create"), "_index"));
}

static void
test_sluice_event_keeps_id_and_bytes(void **state)
{
  const char *ev = "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\","
                   "\"message\":\"hi\",\"event\":{\"id\":\"abc123\","
                   "\"dataset\":\"nginx.access\"}}";
  struct sl_buf b;
  json_t *a, *d;
  char *text;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(to_pair(ev, strlen(ev), &b), 0);
  split_pair(&b, &a, &d, &text);
  assert_string_equal(action_id(a), "abc123");
  assert_string_equal(action_index(a), "logs-nginx.access-default");
  assert_string_equal(text, ev); /* forwarded verbatim, not re-encoded */
  free(text);
  json_decref(a);
  json_decref(d);
  sl_buf_free(&b);
}

static void
test_beats_event_gets_stable_hash_id(void **state)
{
  const char *ev = "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\","
                   "\"message\":\"from filebeat\"}";
  struct sl_buf b1, b2;
  json_t *a1, *d1, *a2, *d2;
  const char *id;

  (void)state;
  sl_buf_init(&b1, 0);
  sl_buf_init(&b2, 0);
  assert_int_equal(to_pair(ev, strlen(ev), &b1), 0);
  assert_int_equal(to_pair(ev, strlen(ev), &b2), 0);
  split_pair(&b1, &a1, &d1, NULL);
  split_pair(&b2, &a2, &d2, NULL);
  id = action_id(a1);
  assert_non_null(id);
  assert_int_equal(strlen(id), 32);
  assert_string_equal(id, action_id(a2));
  /* The id is written into the document too, so ES shows it. */
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(d1, "event"), "id")),
      id);
  assert_string_equal(action_index(a1), "logs-generic-default");
  json_decref(a1);
  json_decref(d1);
  json_decref(a2);
  json_decref(d2);
  sl_buf_free(&b1);
  sl_buf_free(&b2);
}

static void
test_invalid_json_becomes_tagged_raw_event(void **state)
{
  const char *ev = "not json at all \xff\xfe";
  struct sl_buf b;
  json_t *a, *d, *tags;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(to_pair(ev, strlen(ev), &b), 0);
  split_pair(&b, &a, &d, NULL);
  assert_non_null(action_id(a));
  assert_non_null(json_object_get(d, "@timestamp"));
  assert_non_null(strstr(json_string_value(json_object_get(d, "message")),
                         "not json at all"));
  tags = json_object_get(d, "tags");
  assert_string_equal(json_string_value(json_array_get(tags, 0)),
                      "sluice_invalid_event");
  assert_non_null(json_object_get(json_object_get(d, "error"), "message"));
  json_decref(a);
  json_decref(d);
  sl_buf_free(&b);
}

/* Issue 15: an event over max_fields or max_depth, or with an @timestamp
 * outside the allowed range, is kept as an invalid event whose error names
 * the limit and its value; on both the scanner and the jansson path. */
static void
test_event_limits_named(void **state)
{
  static const struct {
    const char *ev, *want;
  } cases[] = {
    {"{\"a\":1,\"b\":2,\"c\":{\"d\":3}}", "over max_fields 3"},
    /* escaped key: not the scanner's, jansson's path */
    {"{\"\\u0061\":1,\"b\":2,\"c\":{\"d\":3}}", "over max_fields 3"},
    {"{\"a\":[[{\"b\":1}]]}", "over max_depth 3"},
    {"{\"@timestamp\":\"2999-01-01T00:00:00Z\"}",
     "timestamp_max_future 86400000"},
    {"{\"@timestamp\":\"1971-01-01T00:00:00Z\",\"x\":\"\\n\"}",
     "timestamp_max_past 3600000"},
  };
  static const char ok[] = "{\"a\":1,\"event\":{\"id\":\"x\"},"
                          "\"@timestamp\":\"2026-01-01T00:00:00Z\"}";
  struct sl_input_limits lim;
  struct sl_buf b;
  json_t *d;
  json_error_t e;
  size_t i;

  (void)state;
  sl_input_limits_default(&lim);
  lim.max_fields = 3;
  lim.max_depth = 3;
  lim.ts_past_ms = 3600000;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    sl_buf_init(&b, 0);
    assert_int_equal(sl_input_event_normalize_lim(cases[i].ev,
                                                  strlen(cases[i].ev), &lim,
                                                  &b), 0);
    d = json_loadb(b.p, b.len, 0, &e);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "message")),
                        cases[i].ev);
    assert_non_null(strstr(json_string_value(json_object_get(
        json_object_get(d, "error"), "message")), cases[i].want));
    json_decref(d);
    sl_buf_free(&b);
  }
  /* Within the (default) limits: through as it came. */
  sl_input_limits_default(&lim);
  sl_buf_init(&b, 0);
  assert_int_equal(sl_input_event_normalize_lim(ok, strlen(ok), &lim, &b), 0);
  assert_int_equal(b.len, strlen(ok) + 1);
  assert_memory_equal(b.p, ok, strlen(ok));
  sl_buf_free(&b);
}

/* fuzz_input_normalize finding: a NUL byte inside an invalid event came
 * out as "\u0000", which jansson (routing, the indexer) refuses without
 * JSON_ALLOW_NUL; it is U+FFFD now. */
static void
test_invalid_event_with_nul_loads(void **state)
{
  static const char ev[] = "{\"a\":\"fi\0\0lebeat\"}";
  struct sl_buf b;
  json_error_t e;
  json_t *d;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_input_event_normalize(ev, sizeof(ev) - 1, &b), 0);
  d = json_loadb(b.p, b.len - 1, 0, &e);
  assert_non_null(d);
  assert_string_equal(json_string_value(json_object_get(d, "message")),
                      "{\"a\":\"fi\xef\xbf\xbd\xef\xbf\xbdlebeat\"}");
  json_decref(d);
  sl_buf_free(&b);
}

static void
test_pretty_json_is_made_one_line(void **state)
{
  const char *ev = "{\n  \"message\": \"multi\",\n  \"event\": {\"id\": \"x1\"}\n}";
  struct sl_buf b;
  json_t *a, *d;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(to_pair(ev, strlen(ev), &b), 0);
  split_pair(&b, &a, &d, NULL); /* asserts exactly two lines */
  assert_string_equal(action_id(a), "x1");
  /* Missing @timestamp is filled: data streams require it. */
  assert_non_null(json_object_get(d, "@timestamp"));
  json_decref(a);
  json_decref(d);
  sl_buf_free(&b);
}

static void
test_non_object_json_is_kept(void **state)
{
  const char *ev = "[1,2,3]";
  struct sl_buf b;
  json_t *a, *d;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(to_pair(ev, strlen(ev), &b), 0);
  split_pair(&b, &a, &d, NULL);
  assert_string_equal(json_string_value(json_object_get(d, "message")), ev);
  json_decref(a);
  json_decref(d);
  sl_buf_free(&b);
}

/* The fast path's exact bytes: the sender's bytes, event.id spliced in,
 * @timestamp appended when absent, one '\n'. */
static void
test_spool_line_bytes(void **state)
{
  const char *ev = "{\"@timestamp\":\"t\",\"message\":\"m\"}";
  const char *nots = "{\"event\":{\"id\":\"x\"},\"m\":1}";
  char hid[33], want[256];
  struct sl_buf b;

  (void)state;
  sl_hash128_hex(sl_hash128(ev, strlen(ev)), hid);
  snprintf(want, sizeof want, "{\"@timestamp\":\"t\",\"message\":\"m\","
           "\"event\":{\"id\":\"%s\"}}\n", hid);
  sl_buf_init(&b, 0);
  assert_int_equal(sl_input_event_normalize(ev, strlen(ev), &b), 0);
  assert_string_equal(b.p, want);
  /* Appended to what is there, never replacing it. */
  assert_int_equal(sl_input_event_normalize(nots, strlen(nots), &b), 0);
  assert_int_equal(b.len, strlen(want) + strlen(nots) +
                   strlen(",\"@timestamp\":\"2026-01-01T00:00:00.000Z\"") + 1);
  assert_memory_equal(b.p + strlen(want), "{\"event\":{\"id\":\"x\"},\"m\":1,"
                      "\"@timestamp\":\"", 36);
  assert_memory_equal(b.p + b.len - 4, "Z\"}\n", 4);
  sl_buf_free(&b);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sluice_event_keeps_id_and_bytes),
    cmocka_unit_test(test_beats_event_gets_stable_hash_id),
    cmocka_unit_test(test_invalid_json_becomes_tagged_raw_event),
    cmocka_unit_test(test_event_limits_named),
    cmocka_unit_test(test_invalid_event_with_nul_loads),
    cmocka_unit_test(test_pretty_json_is_made_one_line),
    cmocka_unit_test(test_non_object_json_is_kept),
    cmocka_unit_test(test_spool_line_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
