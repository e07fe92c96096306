/* The collector's one-pass event scanner against jansson: whatever the
 * scanner accepts, jansson must accept with the same field values (a
 * refusal only means the slower jansson path), and the fast path's output
 * must be the same event the jansson path would index. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bulk.h"
#include "event_scan.h"
#include "input.h"
#include "sl_buf.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t
rnd(uint32_t n)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static const char *const keys[] = {
  "@timestamp", "event", "data_stream", "event.id", "event.dataset",
  "data_stream.dataset", "data_stream.namespace", "id", "dataset",
  "namespace", "message", "a", "\\u0040timestamp", "é", "log",
};
static const char *const strs[] = {
  "\"x\"", "\"2024-05-01T12:00:00Z\"", "\"nginx.access\"", "\"\"",
  "\"a\\\"b\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\u0000\"",
  "\"\\udc00\"", "\"tab\\there\"", "\"\xc3\xa9\"", "\"\xff\"",
  "\"abc123def\"", "\"Prod\"",
};
static const char *const atoms[] = {
  "0", "-1", "1.5", "1e10", "1E+2", "-0.0e-1", "12345678901234567890",
  "1e999", "01", "1.", ".5", "true", "false", "null", "tru", "nul", "-",
};

static void gen_value(struct sl_buf *b, int depth);

static void
gen_object(struct sl_buf *b, int depth)
{
  int i, n = (int)rnd(5);

  assert_int_equal(sl_buf_append_byte(b, '{'), 0);
  for (i = 0; i < n; i++) {
    if (i)
      assert_int_equal(sl_buf_append_str(b, rnd(8) ? "," : " ,\n "), 0);
    assert_int_equal(sl_buf_printf(b, "\"%s\":",
                                   keys[rnd(sizeof(keys) / sizeof(*keys))]),
                     0);
    gen_value(b, depth + 1);
  }
  assert_int_equal(sl_buf_append_byte(b, '}'), 0);
}

static void
gen_value(struct sl_buf *b, int depth)
{
  uint32_t k = rnd(depth > 4 ? 2 : 4);
  int i, n;

  if (k == 0) {
    assert_int_equal(sl_buf_append_str(b, strs[rnd(sizeof(strs) /
                                                   sizeof(*strs))]), 0);
  } else if (k == 1) {
    assert_int_equal(sl_buf_append_str(b, atoms[rnd(sizeof(atoms) /
                                                    sizeof(*atoms))]), 0);
  } else if (k == 2) {
    gen_object(b, depth);
  } else {
    n = (int)rnd(4);
    assert_int_equal(sl_buf_append_byte(b, '['), 0);
    for (i = 0; i < n; i++) {
      if (i)
        assert_int_equal(sl_buf_append_byte(b, ','), 0);
      gen_value(b, depth + 1);
    }
    assert_int_equal(sl_buf_append_byte(b, ']'), 0);
  }
}

static void
mutate(struct sl_buf *b)
{
  size_t pos;

  if (b->len == 0)
    return;
  pos = rnd((uint32_t)b->len);
  switch (rnd(4)) {
  case 0:
    b->p[pos] = (char)rnd(256);
    break;
  case 1:
    sl_buf_consume(b, 0); /* no-op keeps the API honest */
    memmove(b->p + pos, b->p + pos + 1, b->len - pos - 1);
    b->len--;
    break;
  case 2:
    b->len = pos;
    break;
  default:
    break;
  }
}

/* jansson's view of the field the scanner reported. */
static const char *
jfield(json_t *o, const char *obj, const char *key, const char *dotted)
{
  json_t *x = json_object_get(o, obj), *v = NULL;

  if (json_is_object(x))
    v = json_object_get(x, key);
  if (v == NULL && dotted)
    v = json_object_get(o, dotted);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
check_span(struct sl_span sp, const char *want)
{
  if (sp.p == NULL)
    return; /* absent or unusable: the route default applies on both */
  assert_non_null(want);
  assert_int_equal(strlen(want), sp.len);
  assert_memory_equal(want, sp.p, sp.len);
}

static void
test_differential(void **state)
{
  struct sl_buf b;
  struct sl_event_fields f;
  json_error_t e;
  json_t *o;
  int iter, accepted = 0, rejected = 0;

  (void)state;
  sl_buf_init(&b, 0);
  for (iter = 0; iter < 200000; iter++) {
    sl_buf_reset(&b);
    gen_object(&b, 0);
    if (rnd(3) == 0)
      mutate(&b);
    if (sl_event_scan(b.p, b.len, &f) != 0) {
      rejected++;
      continue;
    }
    accepted++;
    o = json_loadb(b.p, b.len, 0, &e);
    if (o == NULL || !json_is_object(o))
      fail_msg("scanner accepted what jansson refuses (%s): %.*s", e.text,
               (int)b.len, b.p);
    check_span(f.id, jfield(o, "event", "id", "event.id"));
    if (f.timestamp.p)
      check_span(f.timestamp, json_string_value(json_object_get(o, "@timestamp")));
    json_decref(o);
  }
  printf("scanner accepted %d, refused %d\n", accepted, rejected);
  assert_true(accepted > 10000);
  sl_buf_free(&b);
}

static const struct sl_route route = {
  SL_INDEX_DATA_STREAM, "default", "sluice", "generic"
};

/* Output of the fast path equals what the jansson path indexes: the
 * intake's spooled line, encoded into a pair as the indexer does. */
static void
check_same_event(const char *ev, const char *want_index)
{
  struct sl_buf b, line;
  json_error_t e;
  json_t *a, *d, *orig, *evobj;
  const char *nl;

  sl_buf_init(&b, 0);
  sl_buf_init(&line, 0);
  assert_int_equal(sl_input_event_normalize(ev, strlen(ev), &line), 0);
  assert_int_equal(sl_bulk_encode(&route, line.p, line.len, 0, &b), 0);
  sl_buf_free(&line);
  nl = memchr(b.p, '\n', b.len);
  assert_non_null(nl);
  a = json_loadb(b.p, (size_t)(nl - b.p), 0, &e);
  d = json_loadb(nl + 1, b.len - (size_t)(nl + 1 - b.p) - 1, 0, &e);
  assert_non_null(a);
  assert_non_null(d);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(a, "create"), "_index")),
                      want_index);
  /* Same document as the input plus event.id = _id. */
  orig = json_loads(ev, 0, &e);
  assert_non_null(orig);
  evobj = json_object_get(orig, "event");
  if (json_object_get(orig, "event.id") != NULL) {
    /* The sender's own (dotted) id: nothing is added. */
  } else if (!json_is_object(evobj)) {
    evobj = json_object();
    json_object_set_new(orig, "event", evobj);
  }
  if (json_object_get(orig, "event.id") == NULL &&
      json_object_get(evobj, "id") == NULL)
    json_object_set(evobj, "id", json_object_get(json_object_get(a, "create"),
                                                 "_id"));
  if (json_object_get(orig, "@timestamp") == NULL) {
    /* Added at intake (the receive time). */
    assert_true(json_is_string(json_object_get(d, "@timestamp")));
    json_object_set(orig, "@timestamp", json_object_get(d, "@timestamp"));
  }
  assert_true(json_equal(orig, d));
  json_decref(orig);
  json_decref(a);
  json_decref(d);
  sl_buf_free(&b);
}

static void
test_fast_path_events(void **state)
{
  struct sl_event_fields f;
  const char *agent = "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\","
                      "\"message\":\"hi\",\"event\":{\"id\":\"ab12\","
                      "\"dataset\":\"app\"},\"data_stream\":{\"type\":\"logs\","
                      "\"dataset\":\"app\",\"namespace\":\"prod\"}}";

  (void)state;
  /* A sluice agent's event takes the fast path. */
  assert_int_equal(sl_event_scan(agent, strlen(agent), &f), 0);
  check_same_event(agent, "logs-app-prod");
  /* Beats events: id spliced in, with and without an event object. */
  check_same_event("{\"@timestamp\":\"2024-05-01T12:00:00Z\",\"message\":\"m\"}",
                   "logs-generic-default");
  check_same_event("{\"@timestamp\":\"2024-05-01T12:00:00Z\",\"event\":{}}",
                   "logs-generic-default");
  check_same_event("{\"@timestamp\":\"2024-05-01T12:00:00Z\","
                   "\"event\":{\"dataset\":\"x.y\"}}", "logs-x.y-default");
  check_same_event("{\"@timestamp\":\"t\",\"event.id\":\"dotted\"}",
                   "logs-generic-default");
  /* No @timestamp: the receive time is appended, still without a DOM. */
  check_same_event("{}", "logs-generic-default");
  check_same_event("{\"message\":\"m\"}", "logs-generic-default");
  check_same_event("{\"event\":{\"id\":\"own\"}}", "logs-generic-default");
  check_same_event("{\"event\":{},\"m\":[1,{}]}", "logs-generic-default");
  /* Refusals fall back to jansson and still produce the event. */
  check_same_event("{\"@timestamp\":\"2024-05-01T12:00:00Z\","
                   "\"event\":{\"id\":\"a\\u0041\"}}", "logs-generic-default");
  assert_int_not_equal(sl_event_scan("{\"event\":1,\"@timestamp\":\"t\"}", 26,
                                     &f), 0);
  assert_int_not_equal(sl_event_scan("{\"@timestamp\":\"t\",\"@timestamp\":\"u\"}",
                                     36, &f), 0);
}

static struct sl_span
json_id(const char *text)
{
  static json_t *keep;
  struct sl_span sp;

  json_decref(keep);
  keep = json_loads(text, 0, NULL);
  sp = sl_event_json_id(keep);
  return sp;
}

/* Intake and routing share one event.id rule (sl_event_json_id,
 * SL_EVENT_ID_MAX): nested before dotted, a non-empty string of at most
 * 512 bytes, else no id. The scanner reports the span at any length;
 * its callers apply the same SL_EVENT_ID_MAX. */
static void
test_event_id_shared_rule(void **state)
{
  char big[SL_EVENT_ID_MAX + 64];
  struct sl_event_fields f;
  struct sl_span sp;
  size_t k;

  (void)state;
  sp = json_id("{\"event\":{\"id\":\"n\"},\"event.id\":\"d\"}");
  assert_int_equal(sp.len, 1);
  assert_memory_equal(sp.p, "n", 1);
  sp = json_id("{\"event\":{\"x\":1},\"event.id\":\"d\"}");
  assert_int_equal(sp.len, 1);
  assert_memory_equal(sp.p, "d", 1);
  assert_null(json_id("{\"event\":{\"id\":\"\"}}").p);
  assert_null(json_id("{\"event\":{\"id\":7}}").p);
  assert_null(json_id("[1]").p);
  assert_null(sl_event_json_id(NULL).p);
  for (k = SL_EVENT_ID_MAX; k <= SL_EVENT_ID_MAX + 1; k++) {
    int n = snprintf(big, sizeof big, "{\"event\":{\"id\":\"%0*d\"}}",
                     (int)k, 0);

    sp = json_id(big);
    assert_true(k <= SL_EVENT_ID_MAX ? sp.len == k : sp.p == NULL);
    assert_int_equal(sl_event_scan(big, (size_t)n, &f), 0);
    assert_int_equal(f.id.len, k);
  }
  json_id("null");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_differential),
    cmocka_unit_test(test_fast_path_events),
    cmocka_unit_test(test_event_id_shared_rule),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
