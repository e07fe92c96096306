/* test_parse.c - field rules of the parse module (agent/parse.h): contexts,
 * the raw parser and fallback, every special JSON key, app.*, event ids. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include "parse.h"
#include "sl_buf.h"
#include "sl_err.h"

/* 2023-11-14T22:13:20.123456789Z */
#define READ_NS 1700000000123456789LL
#define READ_TS "2023-11-14T22:13:20.123Z"

static const struct sl_agent_info info = {
  "host-1", "agent-id-1", NULL, "9.9.9"
};
static const struct sl_src src = { "/var/log/app.log", 5, 6, 33, 11, 22 };

static struct sl_parse_ctx *
mkctx(const char *cfg)
{
  struct sl_parse_ctx *ctx = NULL;
  json_error_t je;
  json_t *in = json_loads(cfg, 0, &je);
  char err[256] = "";

  assert_non_null(in);
  if (sl_parse_ctx_new(in, &info, &ctx, err, sizeof(err)) != 0)
    fail_msg("ctx: %s", err);
  json_decref(in);
  return ctx;
}

static int
ctx_err(const char *cfg, char *err, size_t errlen)
{
  struct sl_parse_ctx *ctx = NULL;
  json_t *in = json_loads(cfg, 0, NULL);
  int rc;

  assert_non_null(in);
  err[0] = '\0';
  rc = sl_parse_ctx_new(in, &info, &ctx, err, errlen);
  assert_null(ctx);
  json_decref(in);
  return rc;
}

/* Parse one line and load the event; checks it is one JSON object on one
 * line. */
static json_t *
ev_flags(struct sl_parse_ctx *ctx, const char *line, size_t len,
         unsigned flags)
{
  struct sl_buf b;
  json_error_t je;
  json_t *ev;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_parse_event(ctx, &src, line, len, 1234, flags,
                                  READ_NS, &b), 0);
  assert_null(memchr(b.p, '\n', b.len));
  /* The collector's flags: no NUL, no duplicate keys. */
  ev = json_loadb(b.p, b.len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    fail_msg("bad event JSON (%s at %d): %s", je.text, je.position, b.p);
  assert_true(json_is_object(ev));
  sl_buf_free(&b);
  return ev;
}

static json_t *
ev(struct sl_parse_ctx *ctx, const char *line)
{
  return ev_flags(ctx, line, strlen(line), 0);
}

/* Path with '/' between object keys (app keys may contain dots). */
static json_t *
jget(json_t *root, const char *path)
{
  char buf[256], *save = NULL, *tok;

  snprintf(buf, sizeof(buf), "%s", path);
  for (tok = strtok_r(buf, "/", &save); tok && root;
       tok = strtok_r(NULL, "/", &save))
    root = json_object_get(root, tok);
  return root;
}

static const char *
sget(json_t *root, const char *path)
{
  json_t *v = jget(root, path);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

#define ASSERT_STR(root, path, want)                                       \
  do {                                                                     \
    const char *got_ = sget((root), (path));                               \
    if (got_ == NULL || strcmp(got_, (want)) != 0)                         \
      fail_msg("%s: want \"%s\", got %s%s%s", (path), (want),              \
               got_ ? "\"" : "", got_ ? got_ : "(none)", got_ ? "\"" : ""); \
  } while (0)
#define ASSERT_ABSENT(root, path)                                          \
  do {                                                                     \
    if (jget((root), (path)) != NULL)                                      \
      fail_msg("%s: should be absent", (path));                            \
  } while (0)

static int
is_failure(json_t *e)
{
  json_t *t = json_object_get(e, "tags");

  return json_is_array(t) && json_array_size(t) == 1 &&
         strcmp(json_string_value(json_array_get(t, 0)),
                "sluice_json_parse_failure") == 0;
}

/* ---- contexts ---------------------------------------------------------- */

static void
test_ctx_defaults_and_static_fields(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{}");
  json_t *e;

  (void)state;
  e = ev(ctx, "{\"msg\":\"x\"}");
  /* Default parser is raw, like the config schema's default. */
  ASSERT_STR(e, "message", "{\"msg\":\"x\"}");
  ASSERT_ABSENT(e, "tags");
  ASSERT_STR(e, "event/dataset", "generic");
  ASSERT_STR(e, "data_stream/type", "logs");
  ASSERT_STR(e, "data_stream/dataset", "generic");
  ASSERT_STR(e, "data_stream/namespace", "default");
  ASSERT_STR(e, "host/name", "host-1");
  ASSERT_STR(e, "agent/name", "host-1");
  ASSERT_STR(e, "agent/id", "agent-id-1");
  ASSERT_STR(e, "agent/version", "9.9.9");
  ASSERT_STR(e, "agent/type", "sluice");
  ASSERT_STR(e, "ecs/version", "8.11.0");
  ASSERT_STR(e, "log/file/path", "/var/log/app.log");
  assert_int_equal(json_integer_value(jget(e, "log/offset")), 1234);
  ASSERT_STR(e, "@timestamp", READ_TS);
  ASSERT_ABSENT(e, "service");
  ASSERT_ABSENT(e, "labels");
  ASSERT_ABSENT(e, "log/flags");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_ctx_config(void **state)
{
  struct sl_parse_ctx *ctx;
  json_t *e;

  (void)state;
  ctx = mkctx("{\"parser\":\"json\",\"dataset\":\"nginx.access\","
              "\"namespace\":\"prod\",\"service\":\"checkout\","
              "\"fields\":{\"env\":\"prod\",\"shard\":3,\"ratio\":0.5,"
              "\"canary\":true,\"gone\":null,\"team.name\":\"pay\"}}");
  e = ev(ctx, "{\"msg\":\"hi\"}");
  ASSERT_STR(e, "message", "hi");
  ASSERT_STR(e, "event/dataset", "nginx.access");
  ASSERT_STR(e, "data_stream/dataset", "nginx.access");
  ASSERT_STR(e, "data_stream/namespace", "prod");
  ASSERT_STR(e, "service/name", "checkout");
  ASSERT_STR(e, "labels/env", "prod");
  ASSERT_STR(e, "labels/shard", "3");
  ASSERT_STR(e, "labels/ratio", "0.5");
  ASSERT_STR(e, "labels/canary", "true");
  ASSERT_STR(e, "labels/team_name", "pay");
  ASSERT_ABSENT(e, "labels/gone");
  assert_int_equal(json_object_size(jget(e, "labels")), 5);
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_ctx_errors(void **state)
{
  char err[256];

  (void)state;
  assert_int_equal(ctx_err("{\"parser\":\"xml\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "parser"));
  assert_non_null(strstr(err, "xml"));
  assert_non_null(strstr(err, "apache_error"));
  assert_int_equal(ctx_err("{\"parser\":\"nginx_error\","
                           "\"timezone\":\"+25:00\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "timezone"));
  assert_int_equal(ctx_err("{\"parser\":3}", err, sizeof(err)), SL_ECONFIG);
  assert_int_equal(ctx_err("{\"dataset\":\"My.App\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "dataset"));
  assert_int_equal(ctx_err("{\"dataset\":\"a-b\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_int_equal(ctx_err("{\"dataset\":\"\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_int_equal(ctx_err("{\"namespace\":\"x y\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "namespace"));
  assert_int_equal(ctx_err("{\"fields\":{\"a\":[1]}}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "fields.a"));
  assert_int_equal(ctx_err("{\"fields\":[1]}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_int_equal(ctx_err("[]", err, sizeof(err)), SL_ECONFIG);
}

/* ---- raw --------------------------------------------------------------- */

static void
test_raw_parser(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"raw\"}");
  json_t *e;

  (void)state;
  e = ev(ctx, "plain \"text\"\twith\x01 controls");
  ASSERT_STR(e, "message", "plain \"text\"\twith\x01 controls");
  ASSERT_ABSENT(e, "tags");
  ASSERT_ABSENT(e, "error");
  ASSERT_ABSENT(e, "app");
  ASSERT_STR(e, "@timestamp", READ_TS);
  json_decref(e);
  /* Invalid UTF-8 is replaced, never rejected. */
  e = ev(ctx, "bad \xff\xc3( end");
  ASSERT_STR(e, "message", "bad \xEF\xBF\xBD\xEF\xBF\xBD( end");
  json_decref(e);
  /* NUL bytes become U+FFFD so the event loads in jansson. */
  e = ev_flags(ctx, "a\0b", 3, 0);
  ASSERT_STR(e, "message", "a\xEF\xBF\xBD" "b");
  json_decref(e);
  /* A CR is content here: the line splitter (worker.c) removes the one of
   * a CRLF ending before the parser sees the line (issue 9). */
  e = ev(ctx, "x\r");
  ASSERT_STR(e, "message", "x\r");
  json_decref(e);
  e = ev_flags(ctx, "cut", 3, SL_LINE_TRUNCATED);
  assert_int_equal(json_array_size(jget(e, "log/flags")), 1);
  assert_string_equal(
    json_string_value(json_array_get(jget(e, "log/flags"), 0)), "truncated");
  ASSERT_ABSENT(e, "tags");
  json_decref(e);
  e = ev(ctx, "");
  ASSERT_STR(e, "message", "");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

/* ---- JSON: fallback ---------------------------------------------------- */

static void
check_fallback(struct sl_parse_ctx *ctx, const char *line, const char *why,
               size_t pos)
{
  char want[160];
  json_t *e = ev(ctx, line);
  const char *msg = sget(e, "error/message");

  if (!is_failure(e))
    fail_msg("not a failure: %s", line);
  snprintf(want, sizeof(want), "json parse failure at byte %zu: %s", pos,
           why);
  if (msg == NULL || strcmp(msg, want) != 0)
    fail_msg("line %s: want '%s', got '%s'", line, want, msg ? msg : "-");
  ASSERT_ABSENT(e, "app");
  ASSERT_STR(e, "@timestamp", READ_TS);
  json_decref(e);
}

static void
test_json_fallback(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e;

  (void)state;
  e = ev(ctx, "{\"msg\":\"x\",\"level\":\"info\"");
  assert_true(is_failure(e));
  ASSERT_STR(e, "message", "{\"msg\":\"x\",\"level\":\"info\"");
  ASSERT_ABSENT(e, "log/level");
  json_decref(e);
  check_fallback(ctx, "", "empty line", 0);
  check_fallback(ctx, "  \t", "blank line", 3);
  check_fallback(ctx, "[1,2]", "not a JSON object", 0);
  check_fallback(ctx, "\"str\"", "not a JSON object", 0);
  check_fallback(ctx, "hello world", "not a JSON object", 0);
  check_fallback(ctx, "{\"a\":1} x", "data after the object", 8);
  check_fallback(ctx, "{\"a\":1}}", "data after the object", 7);
  check_fallback(ctx, "{\"a\":\"\\x\"}", "invalid escape", 6);
  check_fallback(ctx, "{\"a\":\"\\u12\"}", "invalid \\u escape", 6);
  check_fallback(ctx, "{\"a\":\"\\ud800\"}", "lone surrogate escape", 6);
  check_fallback(ctx, "{\"a\":\"\\udc00\"}", "lone surrogate escape", 6);
  check_fallback(ctx, "{\"a\":\"x\ty\"}", "control character in string",
                 7);
  check_fallback(ctx, "{\"a\":01}", "expected ',' or '}'", 6);
  check_fallback(ctx, "{\"a\":1.}", "invalid number", 5);
  check_fallback(ctx, "{\"a\":-}", "invalid number", 5);
  check_fallback(ctx, "{\"a\":tru}", "invalid literal", 5);
  check_fallback(ctx, "{\"a\":[1,]}", "unexpected character", 8);
  check_fallback(ctx, "{\"a\":{\"b\" 1}}", "expected ':'", 10);
  check_fallback(ctx, "{\"a\":{1:2}}", "expected a string key", 6);
  check_fallback(ctx, "{a:1}", "expected a string key", 1);
  check_fallback(ctx, "{\"a\":1,}", "expected a string key", 7);
  check_fallback(ctx, "{\"a\":[1 2]}", "expected ',' or ']'", 8);
  check_fallback(ctx, "{\"a\":\"b", "unterminated string", 7);
  check_fallback(ctx, "{\"a\":", "unexpected end of line", 5);
  check_fallback(ctx, "{\"a\":\xff}", "unexpected character", 5);
  /* Truncated lines: cut JSON is raw + flag + tag, never dropped. */
  e = ev_flags(ctx, "{\"msg\":\"long li", 15, SL_LINE_TRUNCATED);
  assert_true(is_failure(e));
  ASSERT_STR(e, "message", "{\"msg\":\"long li");
  assert_string_equal(
    json_string_value(json_array_get(jget(e, "log/flags"), 0)), "truncated");
  json_decref(e);
  /* A flagged line that still is an object keeps its fields. */
  e = ev_flags(ctx, "{\"msg\":\"ok\"}", 12, SL_LINE_TRUNCATED);
  assert_false(is_failure(e));
  ASSERT_STR(e, "message", "ok");
  assert_non_null(jget(e, "log/flags"));
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_json_depth(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  static char line[8000];
  size_t n, i, arrays;
  json_t *e;

  (void)state;
  /* Top object is depth 1; 2046 nested arrays put the innermost (empty)
   * array at depth 2047, the last one allowed (app adds one level and the
   * event must stay within jansson's 2048). */
  for (arrays = 2046; arrays <= 2047; arrays++) {
    n = (size_t)sprintf(line, "{\"a\":");
    for (i = 0; i < arrays; i++)
      line[n++] = '[';
    for (i = 0; i < arrays; i++)
      line[n++] = ']';
    line[n++] = '}';
    e = ev_flags(ctx, line, n, 0);
    assert_int_equal(is_failure(e), arrays == 2047);
    if (arrays == 2047)
      ASSERT_STR(e, "error/message",
                 "json parse failure at byte 2051: nesting too deep");
    json_decref(e);
  }
  sl_parse_ctx_free(ctx);
}

/* ---- JSON: fields ------------------------------------------------------ */

static void
check_level(struct sl_parse_ctx *ctx, const char *value, const char *want)
{
  char line[256];
  json_t *e;

  snprintf(line, sizeof(line), "{\"level\":%s,\"msg\":\"m\"}", value);
  e = ev(ctx, line);
  assert_false(is_failure(e));
  if (want) {
    ASSERT_STR(e, "log/level", want);
    ASSERT_ABSENT(e, "app/level");
  } else {
    ASSERT_ABSENT(e, "log/level");
    assert_non_null(jget(e, "app/level"));
  }
  json_decref(e);
}

static void
test_json_levels(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e;

  (void)state;
  check_level(ctx, "\"INFO\"", "info");
  /* level.h's map: WARN/WARNING -> warn. */
  check_level(ctx, "\"Warn\"", "warn");
  check_level(ctx, "\"WARNING\"", "warn");
  check_level(ctx, "\"err\"", "error");
  check_level(ctx, "\"error\"", "error");
  check_level(ctx, "\"crit\"", "critical");
  check_level(ctx, "\"CRITICAL\"", "critical");
  check_level(ctx, "\"fatal\"", "fatal");
  check_level(ctx, "\"PANIC\"", "emergency");
  check_level(ctx, "\"SEVERE\"", "error");
  check_level(ctx, "\"Verbose\"", "trace");
  check_level(ctx, "\"W\"", "warn");
  check_level(ctx, "\"custom\"", "custom");
  check_level(ctx, "\"emerg\"", "emergency");
  check_level(ctx, "\"Information\"", "info");
  check_level(ctx, "\"notice\"", "notice");
  check_level(ctx, "\"dbg\"", "debug");
  check_level(ctx, "10", "trace");
  check_level(ctx, "20", "debug");
  check_level(ctx, "30", "info");
  check_level(ctx, "40", "warn");
  check_level(ctx, "50", "error");
  check_level(ctx, "60", "fatal");
  check_level(ctx, "\"30\"", "info");
  check_level(ctx, "\"w\\u0061rn\"", "warn");
  check_level(ctx, "3", NULL);
  check_level(ctx, "30.5", NULL);
  check_level(ctx, "\"\"", NULL);
  check_level(ctx, "true", NULL);
  check_level(ctx, "{\"x\":1}", NULL);
  check_level(ctx, "\"a level name that is far too long to be one\"", NULL);
  /* Other keys; the first usable one wins, the rest stay in app. */
  e = ev(ctx, "{\"lvl\":\"debug\"}");
  ASSERT_STR(e, "log/level", "debug");
  json_decref(e);
  e = ev(ctx, "{\"severity\":\"ERROR\",\"log.level\":\"info\"}");
  ASSERT_STR(e, "log/level", "error");
  ASSERT_STR(e, "app/log.level", "info");
  json_decref(e);
  e = ev(ctx, "{\"log.level\":\"warn\"}");
  ASSERT_STR(e, "log/level", "warn");
  json_decref(e);
  /* An escaped key name is still the key. */
  e = ev(ctx, "{\"l\\u0065vel\":\"warn\"}");
  ASSERT_STR(e, "log/level", "warn");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

/* timezone: and timestamp: {field, layouts} on a JSON input. */
static void
test_json_timestamp_conf(void **state)
{
  struct sl_parse_ctx *ctx =
    mkctx("{\"parser\":\"json\",\"timezone\":\"Europe/Berlin\"}");
  json_t *e;

  (void)state;
  e = ev(ctx, "{\"time\":\"2024-07-01 12:00:00,250\"}");
  ASSERT_STR(e, "@timestamp", "2024-07-01T10:00:00.250Z");
  json_decref(e);
  e = ev(ctx, "{\"time\":\"2024-07-01T12:00:00Z\"}");
  ASSERT_STR(e, "@timestamp", "2024-07-01T12:00:00.000Z");
  json_decref(e);
  sl_parse_ctx_free(ctx);
  ctx = mkctx("{\"parser\":\"json\",\"timestamp\":{\"field\":\"when\","
              "\"layouts\":[\"%d.%m.%Y %H:%M\"],\"timezone\":\"+01:00\"}}");
  /* The configured field replaces the usual keys, which stay app keys. */
  e = ev(ctx, "{\"time\":\"2020-01-01T00:00:00Z\",\"when\":"
              "\"15.01.2024 12:00\"}");
  ASSERT_STR(e, "@timestamp", "2024-01-15T11:00:00.000Z");
  ASSERT_STR(e, "app/time", "2020-01-01T00:00:00Z");
  ASSERT_ABSENT(e, "tags");
  json_decref(e);
  e = ev(ctx, "{\"when\":\"yesterday\",\"tags\":[\"a\"]}");
  ASSERT_STR(e, "app/when", "yesterday");
  ASSERT_STR(e, "event/original", "yesterday");
  assert_string_equal(json_string_value(json_array_get(jget(e, "tags"), 0)),
                      "sluice_timestamp_parse_failure");
  assert_string_equal(json_string_value(json_array_get(jget(e, "tags"), 1)),
                      "a");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_json_timestamps(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  static const struct {
    const char *line, *want;
  } ok[] = {
    /* Microseconds when the line has them (timestamp.h). */
    { "{\"@timestamp\":\"2024-05-01T12:00:00.123456Z\"}",
      "2024-05-01T12:00:00.123456Z" },
    { "{\"timestamp\":\"2024-05-01T14:00:00+02:00\"}",
      "2024-05-01T12:00:00.000Z" },
    { "{\"time\":\"2024-05-01 12:00:00.5Z\"}", "2024-05-01T12:00:00.500Z" },
    { "{\"ts\":1714564800}", "2024-05-01T12:00:00.000Z" },
    { "{\"ts\":1714564800.25}", "2024-05-01T12:00:00.250Z" },
    { "{\"ts\":1714564800123}", "2024-05-01T12:00:00.123Z" },
    { "{\"ts\":1714564800123456789}", "2024-05-01T12:00:00.123Z" },
    { "{\"time\":\"1714564800\"}", "2024-05-01T12:00:00.000Z" },
    { "{\"ts\":\"2024-05-01T12:00:00\\u005a\"}", "2024-05-01T12:00:00.000Z" },
  };
  json_t *e;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    e = ev(ctx, ok[i].line);
    ASSERT_STR(e, "@timestamp", ok[i].want);
    ASSERT_ABSENT(e, "event/original");
    if (json_object_size(jget(e, "app")) != 0)
      fail_msg("%s: timestamp key left in app", ok[i].line);
    json_decref(e);
  }
  /* Unparsable: read time, the value in event.original and in app. */
  e = ev(ctx, "{\"time\":\"yesterday\",\"msg\":\"m\"}");
  ASSERT_STR(e, "@timestamp", READ_TS);
  ASSERT_STR(e, "event/original", "yesterday");
  ASSERT_STR(e, "app/time", "yesterday");
  json_decref(e);
  /* A duration-like number is not a timestamp. */
  e = ev(ctx, "{\"time\":12}");
  ASSERT_STR(e, "@timestamp", READ_TS);
  ASSERT_STR(e, "event/original", "12");
  assert_int_equal(json_integer_value(jget(e, "app/time")), 12);
  json_decref(e);
  /* A later key that parses wins; no event.original then. */
  e = ev(ctx, "{\"time\":\"soon\",\"ts\":1714564800}");
  ASSERT_STR(e, "@timestamp", "2024-05-01T12:00:00.000Z");
  ASSERT_ABSENT(e, "event/original");
  ASSERT_STR(e, "app/time", "soon");
  ASSERT_ABSENT(e, "app/ts");
  json_decref(e);
  /* The first parsable one wins. */
  e = ev(ctx, "{\"ts\":1714564800,\"@timestamp\":\"2020-01-01T00:00:00Z\"}");
  ASSERT_STR(e, "@timestamp", "2024-05-01T12:00:00.000Z");
  ASSERT_STR(e, "app/@timestamp", "2020-01-01T00:00:00Z");
  json_decref(e);
  /* Non-scalar values are not candidates at all. */
  e = ev(ctx, "{\"time\":{\"took\":3}}");
  ASSERT_STR(e, "@timestamp", READ_TS);
  ASSERT_ABSENT(e, "event/original");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_json_message(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e;

  (void)state;
  e = ev(ctx, "{\"msg\":\"a \\\"quoted\\\" \\u00e9 line\\n\"}");
  ASSERT_STR(e, "message", "a \"quoted\" \xc3\xa9 line\n");
  json_decref(e);
  e = ev(ctx, "{\"message\":\"one\",\"msg\":\"two\",\"log\":\"three\"}");
  ASSERT_STR(e, "message", "one");
  ASSERT_STR(e, "app/msg", "two");
  ASSERT_STR(e, "app/log", "three");
  json_decref(e);
  e = ev(ctx, "{\"log\":\"docker\\n\",\"stream\":\"stdout\"}");
  ASSERT_STR(e, "message", "docker\n");
  ASSERT_STR(e, "app/stream", "stdout");
  json_decref(e);
  /* Non-string message values stay in app. */
  e = ev(ctx, "{\"msg\":{\"text\":\"x\"},\"message\":\"real\"}");
  ASSERT_STR(e, "message", "real");
  ASSERT_STR(e, "app/msg/text", "x");
  json_decref(e);
  /* No message key: no message field (Filebeat ndjson without
   * message_key); the content is in app. */
  e = ev(ctx, "{\"a\":1}");
  ASSERT_ABSENT(e, "message");
  assert_int_equal(json_integer_value(jget(e, "app/a")), 1);
  json_decref(e);
  e = ev(ctx, "{}");
  ASSERT_ABSENT(e, "message");
  ASSERT_ABSENT(e, "app");
  assert_false(is_failure(e));
  json_decref(e);
  /* Invalid UTF-8 inside the message is repaired, the line stays JSON. */
  e = ev(ctx, "{\"msg\":\"caf\xe9!\"}");
  assert_false(is_failure(e));
  ASSERT_STR(e, "message", "caf\xEF\xBF\xBD!");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_json_trace(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e;

  (void)state;
  e = ev(ctx, "{\"traceparent\":"
              "\"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01\"}");
  ASSERT_STR(e, "trace/id", "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_STR(e, "span/id", "00f067aa0ba902b7");
  ASSERT_ABSENT(e, "app");
  json_decref(e);
  /* Bad traceparents stay in app. */
  static const char *const bad[] = {
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
  };
  size_t i;
  char line[256];

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(line, sizeof(line), "{\"traceparent\":\"%s\"}", bad[i]);
    e = ev(ctx, line);
    ASSERT_ABSENT(e, "trace");
    ASSERT_ABSENT(e, "span");
    ASSERT_STR(e, "app/traceparent", bad[i]);
    json_decref(e);
  }
  /* A future version may carry more fields. */
  e = ev(ctx, "{\"traceparent\":"
              "\"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x\"}");
  ASSERT_STR(e, "trace/id", "4bf92f3577b34da6a3ce929d0e0e4736");
  json_decref(e);
  e = ev(ctx, "{\"trace_id\":\"ABCDEF0123456789ABCDEF0123456789\","
              "\"spanId\":\"0123456789ABCDEF\","
              "\"transaction_id\":\"FEDCBA9876543210\"}");
  ASSERT_STR(e, "trace/id", "abcdef0123456789abcdef0123456789");
  ASSERT_STR(e, "span/id", "0123456789abcdef");
  ASSERT_STR(e, "transaction/id", "fedcba9876543210");
  ASSERT_ABSENT(e, "app");
  json_decref(e);
  e = ev(ctx, "{\"traceId\":\"abc\",\"span.id\":12,\"trace.id\":"
              "\"11111111111111111111111111111111\",\"transactionId\":\"x\"}");
  ASSERT_STR(e, "trace/id", "11111111111111111111111111111111");
  ASSERT_STR(e, "app/traceId", "abc");
  assert_int_equal(json_integer_value(jget(e, "app/span.id")), 12);
  ASSERT_STR(e, "app/transactionId", "x");
  ASSERT_ABSENT(e, "span");
  ASSERT_ABSENT(e, "transaction");
  json_decref(e);
  /* Datadog: decimal uint64 as number or string. */
  e = ev(ctx, "{\"dd.trace_id\":\"1234567890123456789\","
              "\"dd.span_id\":18446744073709551615}");
  ASSERT_STR(e, "trace/id", "0000000000000000112210f47de98115");
  ASSERT_STR(e, "span/id", "ffffffffffffffff");
  json_decref(e);
  /* A near miss must leave the field empty (regression: a half-checked
   * id was written into span.id). */
  e = ev(ctx, "{\"dd.span_id\":461271.82571E-12,\"span_id\":\"0123456789abcdeX\"}");
  ASSERT_ABSENT(e, "span");
  assert_true(json_is_real(jget(e, "app/dd.span_id")));
  json_decref(e);
  e = ev(ctx, "{\"dd.trace_id\":18446744073709551616}");
  ASSERT_ABSENT(e, "trace");
  json_decref(e);
  /* The first valid source owns trace.id and span.id: a span.id is only
   * taken from the same trace (the other source stays in app). */
  e = ev(ctx, "{\"trace_id\":\"22222222222222222222222222222222\","
              "\"traceparent\":"
              "\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"}");
  ASSERT_STR(e, "trace/id", "22222222222222222222222222222222");
  ASSERT_ABSENT(e, "span");
  assert_non_null(jget(e, "app/traceparent"));
  json_decref(e);
  /* ECS nested and dotted ids count (ecs-logging writes them so). */
  e = ev(ctx, "{\"trace\":{\"id\":\"22222222222222222222222222222222\"},"
              "\"transaction.id\":\"00f067aa0ba902b7\"}");
  ASSERT_STR(e, "trace/id", "22222222222222222222222222222222");
  ASSERT_STR(e, "transaction/id", "00f067aa0ba902b7");
  ASSERT_ABSENT(e, "app");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_json_request_id(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  static const char *const keys[] = {
    "request_id", "requestId", "reqId", "req_id", "x_request_id",
    "X-Request-ID", "x-request-id", "correlation_id", "correlationId",
  };
  char line[512], big[300];
  json_t *e;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    snprintf(line, sizeof(line), "{\"%s\":\"r-\\\"1\\\"\"}", keys[i]);
    e = ev(ctx, line);
    ASSERT_STR(e, "http/request/id", "r-\"1\"");
    ASSERT_ABSENT(e, "app");
    json_decref(e);
  }
  e = ev(ctx, "{\"reqId\":42,\"request_id\":\"second\"}");
  ASSERT_STR(e, "http/request/id", "42");
  ASSERT_STR(e, "app/request_id", "second");
  json_decref(e);
  e = ev(ctx, "{\"req_id\":4.5}");
  ASSERT_ABSENT(e, "http");
  json_decref(e);
  e = ev(ctx, "{\"req_id\":\"\"}");
  ASSERT_ABSENT(e, "http");
  ASSERT_STR(e, "app/req_id", "");
  json_decref(e);
  memset(big, 'r', 257);
  big[257] = '\0';
  snprintf(line, sizeof(line), "{\"req_id\":\"%s\"}", big);
  e = ev(ctx, line);
  ASSERT_ABSENT(e, "http");
  ASSERT_STR(e, "app/req_id", big);
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

/* ECS-native JSON (ecs-logging Java/.NET/Python/Go/Node): ECS fields stay
 * ECS fields, written as dotted keys; the agent's own fields win. */
static void
test_json_ecs(void **state)
{
  struct sl_parse_ctx *ctx =
    mkctx("{\"parser\":\"json\",\"service\":\"cfg\","
          "\"fields\":{\"env\":\"prod\"}}");
  json_t *e;

  (void)state;
  /* ecs-logging-java's layout, plus app keys and a nested error. */
  e = ev(ctx, "{\"@timestamp\":\"2023-10-11T14:32:52.123Z\","
              "\"log.level\":\"WARN\",\"message\":\"hi\","
              "\"ecs.version\":\"1.2.0\",\"service.name\":\"orders\","
              "\"event.dataset\":\"orders.log\",\"process.thread.name\":"
              "\"main\",\"log.logger\":\"a.B\",\"error\":{\"type\":"
              "\"java.io.IOException\",\"stack_trace\":\"at x\\n\"},"
              "\"tags\":[\"t1\", \"t2\"],\"labels\":{\"env\":\"dev\","
              "\"team\":\"a\"},\"host\":{\"hostname\":\"web1\","
              "\"name\":\"x\"},\"event\":{\"id\":\"mine\"},"
              "\"order\":42}");
  ASSERT_STR(e, "log/level", "warn");
  ASSERT_STR(e, "message", "hi");
  ASSERT_STR(e, "process.thread.name", "main");
  ASSERT_STR(e, "log.logger", "a.B");
  ASSERT_STR(e, "error.type", "java.io.IOException");
  ASSERT_STR(e, "error.stack_trace", "at x\n");
  ASSERT_STR(e, "labels.team", "a");
  ASSERT_STR(e, "host.hostname", "web1");
  assert_true(json_is_integer(jget(e, "app/order")));
  /* The agent's fields win; the app's values are kept under app. */
  ASSERT_STR(e, "ecs/version", "8.11.0");
  ASSERT_STR(e, "app/ecs.version", "1.2.0");
  ASSERT_STR(e, "service/name", "cfg");
  ASSERT_STR(e, "app/service.name", "orders");
  ASSERT_STR(e, "app/event.dataset", "orders.log");
  ASSERT_STR(e, "labels/env", "prod");
  ASSERT_STR(e, "app/labels.env", "dev");
  ASSERT_STR(e, "app/host.name", "x");
  ASSERT_STR(e, "app/event.id", "mine");
  assert_int_equal(strlen(sget(e, "event/id")), 32);
  ASSERT_ABSENT(e, "service.name");
  ASSERT_ABSENT(e, "ecs.version");
  /* Tags merged into the one array. */
  assert_int_equal(json_array_size(jget(e, "tags")), 2);
  json_decref(e);
  /* One leaf once: nested and dotted of the same field, first wins; a
   * value where ECS has an object stays an app key. */
  e = ev(ctx, "{\"log\":{\"logger\":\"n\",\"origin\":{\"file\":{"
              "\"line\":7}}},\"log.logger\":\"d\",\"error\":\"boom\","
              "\"url\":{},\"user.name\":\"bob\"}");
  ASSERT_STR(e, "log.logger", "n");
  assert_int_equal(json_integer_value(jget(e, "log.origin.file.line")), 7);
  ASSERT_STR(e, "app/error", "boom");
  assert_non_null(jget(e, "app/url"));
  ASSERT_STR(e, "user.name", "bob");
  ASSERT_ABSENT(e, "app/log.logger");
  json_decref(e);
  /* Above or below an agent field: app (ES would reject the mix). */
  e = ev(ctx, "{\"log\":{\"file\":\"f\",\"offset\":{\"x\":1}},"
              "\"tags\":[]}");
  ASSERT_STR(e, "app/log.file", "f");
  assert_non_null(jget(e, "app/log.offset.x"));
  ASSERT_ABSENT(e, "tags");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

/* Correlation keys in other spellings and formats (correlate.h), and
 * per-input rules over the message. */
static void
test_json_correlation(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e;

  (void)state;
  e = ev(ctx, "{\"TraceParent\":"
              "\"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\"}");
  ASSERT_STR(e, "trace/id", "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_STR(e, "span/id", "00f067aa0ba902b7");
  json_decref(e);
  /* B3: 64-bit trace ids left-padded. */
  e = ev(ctx, "{\"X-B3-TraceId\":\"80f198ee56343ba8\","
              "\"X-B3-SpanId\":\"e457b5a2e4d86bd1\"}");
  ASSERT_STR(e, "trace/id", "000000000000000080f198ee56343ba8");
  ASSERT_STR(e, "span/id", "e457b5a2e4d86bd1");
  json_decref(e);
  e = ev(ctx, "{\"b3\":\"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-"
              "05e3ac9a4f6e3b90\"}");
  ASSERT_STR(e, "trace/id", "80f198ee56343ba864fe8b2a57d3eff7");
  ASSERT_STR(e, "span/id", "e457b5a2e4d86bd1");
  json_decref(e);
  /* X-Ray */
  e = ev(ctx, "{\"X-Amzn-Trace-Id\":\"Root=1-5759e988-bd862e3fe1be46a994272793;"
              "Parent=53995c3f42cd8ad8;Sampled=1\"}");
  ASSERT_STR(e, "trace/id", "5759e988bd862e3fe1be46a994272793");
  ASSERT_STR(e, "span/id", "53995c3f42cd8ad8");
  json_decref(e);
  /* TraceId/SpanId in any case; a span of another source is not taken. */
  e = ev(ctx, "{\"TraceId\":\"5759e988bd862e3fe1be46a994272793\","
              "\"x-b3-spanid\":\"e457b5a2e4d86bd1\",\"SPANID\":"
              "\"53995c3f42cd8ad8\"}");
  ASSERT_STR(e, "trace/id", "5759e988bd862e3fe1be46a994272793");
  ASSERT_STR(e, "span/id", "53995c3f42cd8ad8");
  ASSERT_STR(e, "app/x-b3-spanid", "e457b5a2e4d86bd1");
  json_decref(e);
  /* Request ids in their spellings. */
  e = ev(ctx, "{\"RequestId\":\"r1\"}");
  ASSERT_STR(e, "http/request/id", "r1");
  json_decref(e);
  e = ev(ctx, "{\"request-id\":\"r2\"}");
  ASSERT_STR(e, "http/request/id", "r2");
  json_decref(e);
  e = ev(ctx, "{\"X-Correlation-ID\":\"r3\"}");
  ASSERT_STR(e, "http/request/id", "r3");
  json_decref(e);
  /* Malformed ids stay app keys. */
  e = ev(ctx, "{\"b3\":\"zz-e457b5a2e4d86bd1\",\"X-Amzn-Trace-Id\":"
              "\"Root=1-5759e988-bd86\"}");
  ASSERT_ABSENT(e, "trace");
  assert_non_null(jget(e, "app/b3"));
  json_decref(e);
  sl_parse_ctx_free(ctx);
  /* Rules over the message (raw and json). */
  ctx = mkctx("{\"parser\":\"raw\",\"correlation\":[{\"pattern\":"
              "\"\\\\[(?<id>req-[0-9a-f-]{36})\",\"field\":"
              "\"http.request.id\"},{\"pattern\":\"trace=(?<id>[0-9a-f]+)\","
              "\"field\":\"trace.id\"}]}");
  e = ev(ctx, "INFO nova [req-addc1839-2ed5-4778-b57e-5854eb7b8b09 x] "
              "trace=4bf92f3577b34da6a3ce929d0e0e4736 claim");
  ASSERT_STR(e, "http/request/id", "req-addc1839-2ed5-4778-b57e-5854eb7b8b09");
  ASSERT_STR(e, "trace/id", "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_STR(e, "log/level", "info");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

/* parser regex: config errors say what is wrong; a parsed line; the
 * output never holds a key twice. */
static void
test_regex(void **state)
{
  static const struct {
    const char *cfg, *want;
  } bad[] = {
    { "{\"parser\":\"regex\"}", "pattern is required" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(\"}}",
      "missing closing parenthesis" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"a\"}}",
      "no named group" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(?<a>x)\","
      "\"fields\":{\"a\":\"event.id\"}}}", "agent writes itself" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(?<a>x)(?<b>y)\","
      "\"fields\":{\"a\":\"x.y\",\"b\":\"x.y.z\"}}}", "same field" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(?<a>x)(?<b>y)\","
      "\"fields\":{\"a\":\"message\",\"b\":\"message\"}}}", "same field" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(?<a>x)\","
      "\"fields\":{\"nope\":\"x.y\"}}}", "no group of that name" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(?<a>x)\","
      "\"types\":{\"a\":\"int128\"}}}", "not one of" },
    { "{\"parser\":\"regex\",\"regex\":{\"pattern\":\"(?<a>x)\","
      "\"fields\":{\"a\":\"x..y\"}}}", "not a field path" },
    { "{\"parser\":\"raw\",\"correlation\":[{\"pattern\":\"x\","
      "\"field\":\"trace.id\"}]}", "group named" },
  };
  struct sl_parse_ctx *ctx;
  char err[256];
  json_t *e;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    assert_int_equal(ctx_err(bad[i].cfg, err, sizeof(err)), SL_ECONFIG);
    if (strstr(err, bad[i].want) == NULL)
      fail_msg("%s: want '%s' in '%s'", bad[i].cfg, bad[i].want, err);
  }
  ctx = mkctx("{\"parser\":\"regex\",\"timezone\":\"UTC\",\"regex\":{"
              "\"pattern\":\"^(?<ts>\\\\S+) (?<level>\\\\w+) "
              "(?<code>\\\\d+) (?<x>\\\\S+) (?<msg>.*)\","
              "\"fields\":{\"ts\":\"@timestamp\",\"code\":"
              "\"http.response.status_code\"},\"types\":{\"code\":\"long\"}}}");
  e = ev(ctx, "2024-01-01T00:00:00.5Z ERR 503 y upstream down");
  ASSERT_STR(e, "@timestamp", "2024-01-01T00:00:00.500Z");
  ASSERT_STR(e, "log/level", "error");
  assert_int_equal(json_integer_value(jget(e, "http.response.status_code")),
                   503);
  ASSERT_STR(e, "app/x", "y");
  ASSERT_STR(e, "message", "upstream down");
  json_decref(e);
  e = ev(ctx, "garbage");
  assert_string_equal(json_string_value(json_array_get(jget(e, "tags"), 0)),
                      "sluice_regex_parse_failure");
  ASSERT_STR(e, "message", "garbage");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

static void
test_json_app(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e, *want;
  char line[4096];
  size_t i, n;

  (void)state;
  e = ev(ctx, " { \"usr\" : {\"id\": 7, \"tags\": [\"a\", null, true, "
              "-1.5e3, {}]} , \"ok\":false,\"n\":null,\"big\":"
              "123456789012345678901234567890 } ");
  want = json_loads("{\"usr\":{\"id\":7,\"tags\":[\"a\",null,true,-1.5e3,"
                    "{}]},\"ok\":false,\"n\":null}", 0, NULL);
  assert_non_null(want);
  json_object_set_new(want, "big",
                      json_string("123456789012345678901234567890"));
  assert_true(json_equal(jget(e, "app"), want));
  json_decref(want);
  json_decref(e);
  /* Numbers jansson cannot hold become strings with the same text, also
   * nested; the rest stay numbers. */
  e = ev(ctx, "{\"a\":9223372036854775807,\"b\":-9223372036854775808,"
              "\"c\":9223372036854775808,\"d\":-9223372036854775809,"
              "\"e\":[1e999,-1E+400,1.5e308,1e-999],\"f\":{\"g\":"
              "12345678901234567890123}}");
  assert_true(json_is_integer(jget(e, "app/a")));
  assert_true(json_is_integer(jget(e, "app/b")));
  ASSERT_STR(e, "app/c", "9223372036854775808");
  ASSERT_STR(e, "app/d", "-9223372036854775809");
  assert_string_equal(json_string_value(json_array_get(jget(e, "app/e"), 0)),
                      "1e999");
  assert_string_equal(json_string_value(json_array_get(jget(e, "app/e"), 1)),
                      "-1E+400");
  assert_true(json_is_real(json_array_get(jget(e, "app/e"), 2)));
  assert_true(json_is_real(json_array_get(jget(e, "app/e"), 3)));
  ASSERT_STR(e, "app/f/g", "12345678901234567890123");
  json_decref(e);
  /* Duplicates (after unescaping): the first wins, the rest is dropped. */
  e = ev(ctx, "{\"a\":1,\"\\u0061\":2,\"a\":3,\"level\":\"info\","
              "\"level\":\"error\",\"b\":4}");
  assert_int_equal(json_integer_value(jget(e, "app/a")), 1);
  assert_int_equal(json_integer_value(jget(e, "app/b")), 4);
  assert_int_equal(json_object_size(jget(e, "app")), 2);
  ASSERT_STR(e, "log/level", "info");
  json_decref(e);
  /* Many keys (past the on-stack key table), with a late duplicate. */
  n = (size_t)sprintf(line, "{");
  for (i = 0; i < 100; i++)
    n += (size_t)sprintf(line + n, "\"k%zu\":%zu,", i, i);
  n += (size_t)sprintf(line + n, "\"k5\":\"dup\",\"k\\u0039\":\"dup\"}");
  e = ev(ctx, line);
  assert_int_equal(json_object_size(jget(e, "app")), 100);
  assert_int_equal(json_integer_value(jget(e, "app/k5")), 5);
  assert_int_equal(json_integer_value(jget(e, "app/k9")), 9);
  json_decref(e);
  /* Nested duplicates too (ES and the collector refuse them): first wins,
   * at every level, whatever else the value needs fixing. */
  e = ev(ctx, "{\"a\":{\"x\":1,\"x\":2,\"\\u0078\":3,\"y\":{\"z\":[1, 2],"
              "\"z\":2},\"big\":99999999999999999999,\"big\":0},"
              "\"b\":[{\"k\":\"v\\u0000\",\"k\":2}, {\"k\":3}]}");
  assert_false(is_failure(e));
  want = json_loads("{\"a\":{\"x\":1,\"y\":{\"z\":[1,2]},"
                    "\"big\":\"99999999999999999999\"},"
                    "\"b\":[{\"k\":\"v\xEF\xBF\xBD\"},{\"k\":3}]}", 0, NULL);
  assert_non_null(want);
  assert_true(json_equal(jget(e, "app"), want));
  json_decref(want);
  json_decref(e);
  /* Past 16 keys the set switches to a hash table; duplicates are still
   * found at both levels, and same names in different objects are not
   * duplicates. */
  n = (size_t)sprintf(line, "{\"o\":{");
  for (i = 0; i < 60; i++)
    n += (size_t)sprintf(line + n, "\"k%zu\":%zu,", i, i);
  n += (size_t)sprintf(line + n, "\"k7\":\"dup\",\"k\\u0038\":\"dup\"},");
  for (i = 0; i < 60; i++)
    n += (size_t)sprintf(line + n, "\"k%zu\":%zu,", i, i);
  n += (size_t)sprintf(line + n, "\"k3\":\"dup\"}");
  e = ev(ctx, line);
  assert_int_equal(json_object_size(jget(e, "app")), 61);
  assert_int_equal(json_object_size(jget(e, "app/o")), 60);
  assert_int_equal(json_integer_value(jget(e, "app/o/k8")), 8);
  assert_int_equal(json_integer_value(jget(e, "app/k3")), 3);
  json_decref(e);
  /* Long keys (past the 256 bytes the table hashes), one written with an
   * escape, in table mode (> 16 keys): still the same key. */
  {
    char longk[301];

    memset(longk, 'q', 300);
    longk[300] = '\0';
    n = (size_t)sprintf(line, "{");
    for (i = 0; i < 20; i++)
      n += (size_t)sprintf(line + n, "\"k%zu\":%zu,", i, i);
    n += (size_t)sprintf(line + n, "\"%s\":1,\"\\u0071%s\":2}", longk,
                         longk + 1);
    e = ev(ctx, line);
    assert_int_equal(json_object_size(jget(e, "app")), 21);
    assert_int_equal(json_integer_value(json_object_get(jget(e, "app"),
                                                        longk)), 1);
    json_decref(e);
  }
  /* Whitespace CR/LF inside a value (a joined multi-line event) does not
   * break the one-line output; invalid UTF-8 in keys and values is
   * repaired. */
  e = ev(ctx, "{\"a\":[1,\r\n2],\n\"k\xff\":\"v\xc0\"}");
  assert_false(is_failure(e));
  assert_int_equal(json_integer_value(json_array_get(jget(e, "app/a"), 1)),
                   2);
  ASSERT_STR(e, "app/k\xEF\xBF\xBD", "v\xEF\xBF\xBD");
  json_decref(e);
  /* \u0000 in values is accepted and written as U+FFFD (the collector's
   * jansson refuses NUL); "\\u0000" (an escaped backslash) is text. */
  e = ev(ctx, "{\"z\":\"a\\u0000b\",\"y\":[\"\\u0000\"],"
              "\"x\":\"\\\\u0000\",\"msg\":\"m\\u0000\"}");
  assert_false(is_failure(e));
  ASSERT_STR(e, "app/z", "a\xEF\xBF\xBD" "b");
  assert_string_equal(json_string_value(json_array_get(jget(e, "app/y"), 0)),
                      "\xEF\xBF\xBD");
  ASSERT_STR(e, "app/x", "\\u0000");
  ASSERT_STR(e, "message", "m\xEF\xBF\xBD");
  json_decref(e);
  /* ... and in keys it is invalid (as in jansson). */
  e = ev(ctx, "{\"k\\u0000\":1}");
  assert_true(is_failure(e));
  json_decref(e);
  e = ev(ctx, "{\"a\":{\"k\\u0000\":1}}");
  assert_true(is_failure(e));
  json_decref(e);
  /* Keys that look like ECS fields cannot collide: they are under app. */
  e = ev(ctx, "{\"host\":\"other\",\"event.id\":\"x\"}");
  ASSERT_STR(e, "host/name", "host-1");
  ASSERT_STR(e, "app/host", "other");
  ASSERT_STR(e, "app/event.id", "x");
  json_decref(e);
  sl_parse_ctx_free(ctx);
}

/* A line with very many keys stays linear (the key set hashes past a few
 * keys; a quadratic scan would take minutes here, past the test timeout). */
static void
test_json_many_keys(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  enum { KEYS = 100000 };
  char *line = malloc((size_t)KEYS * 2 * 16 + 64);
  size_t n, i;
  json_t *e;

  (void)state;
  if (line == NULL)
    fail_msg("no memory");
  n = (size_t)sprintf(line, "{\"nested\":{");
  for (i = 0; i < KEYS; i++)
    n += (size_t)sprintf(line + n, "%s\"key%zu\":1", i ? "," : "", i);
  n += (size_t)sprintf(line + n, ",\"key0\":2}");
  for (i = 0; i < KEYS; i++)
    n += (size_t)sprintf(line + n, ",\"key%zu\":1", i);
  n += (size_t)sprintf(line + n, "}");
  e = ev_flags(ctx, line, n, 0);
  assert_false(is_failure(e));
  assert_int_equal(json_object_size(jget(e, "app")), KEYS + 1);
  assert_int_equal(json_object_size(jget(e, "app/nested")), KEYS);
  assert_int_equal(json_integer_value(jget(e, "app/nested/key0")), 1);
  json_decref(e);
  free(line);
  sl_parse_ctx_free(ctx);
}

/* ---- event ids and buffers --------------------------------------------- */

static void
test_event_id(void **state)
{
  struct sl_src s2 = src;
  char a[33], b[33], longid[600];
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  json_t *e;
  size_t i;

  (void)state;
  sl_event_id("agent-id-1", &src, 1234, a);
  assert_int_equal(strlen(a), 32);
  for (i = 0; i < 32; i++)
    assert_non_null(strchr("0123456789abcdef", a[i]));
  sl_event_id("agent-id-1", &src, 1234, b);
  assert_string_equal(a, b);
  /* The event carries the same id. */
  e = ev(ctx, "{\"msg\":\"x\"}");
  ASSERT_STR(e, "event/id", a);
  json_decref(e);
  /* Same line text, same id: it depends only on where the line is. */
  e = ev(ctx, "completely different text");
  ASSERT_STR(e, "event/id", a);
  json_decref(e);
  sl_event_id("agent-id-1", &src, 1235, b);
  assert_string_not_equal(a, b);
  sl_event_id("agent-id-2", &src, 1234, b);
  assert_string_not_equal(a, b);
  s2.id_ino++;
  sl_event_id("agent-id-1", &s2, 1234, b);
  assert_string_not_equal(a, b);
  s2 = src;
  s2.id_dev++;
  sl_event_id("agent-id-1", &s2, 1234, b);
  assert_string_not_equal(a, b);
  /* The inode being read is not part of the id: a stream that moved to
   * another inode (copytruncate's copy) keeps its ids. */
  s2 = src;
  s2.dev++;
  s2.ino++;
  sl_event_id("agent-id-1", &s2, 1234, b);
  assert_string_equal(a, b);
  s2 = src;
  s2.fp ^= 1;
  sl_event_id("agent-id-1", &s2, 1234, b);
  assert_string_not_equal(a, b);
  /* The path is not part of the identity (renames keep ids). */
  s2 = src;
  s2.path = "/var/log/app.log.1";
  sl_event_id("agent-id-1", &s2, 1234, b);
  assert_string_equal(a, b);
  /* Long agent ids take the streaming path; still stable and distinct. */
  memset(longid, 'x', sizeof(longid) - 1);
  longid[sizeof(longid) - 1] = '\0';
  sl_event_id(longid, &src, 1, a);
  sl_event_id(longid, &src, 1, b);
  assert_string_equal(a, b);
  longid[500] = 'y';
  sl_event_id(longid, &src, 1, b);
  assert_string_not_equal(a, b);
  /* Pinned layout: the hashed bytes are part of the delivery guarantee
   * (changing them re-ids every event and duplicates on replay):
   * agent id, NUL, then id_dev, id_ino, fp, offset as little-endian u64
   * (the layout of earlier versions, with the inode there, so streams
   * migrated from a version-1 registry keep their ids). */
  {
    unsigned char raw[11 + 32];
    uint64_t v[4] = { 11, 22, 33, 1234 };
    XXH128_hash_t h;
    int j, k;

    memcpy(raw, "agent-id-1", 11);
    for (j = 0; j < 4; j++)
      for (k = 0; k < 8; k++)
        raw[11 + 8 * j + k] = (unsigned char)(v[j] >> (8 * k));
    h = XXH3_128bits(raw, sizeof(raw));
    snprintf(b, sizeof(b), "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    sl_event_id("agent-id-1", &src, 1234, a);
    assert_string_equal(a, b);
  }
  sl_parse_ctx_free(ctx);
}

static void
test_buffer_limits(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"json\"}");
  struct sl_buf b;
  const char *line = "{\"msg\":\"hello\",\"a\":[1,2,3]}";
  size_t need, max;
  int rc;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_parse_event(ctx, &src, line, strlen(line), 0, 0,
                                  READ_NS, &b), 0);
  need = b.len;
  sl_buf_free(&b);
  /* Every cap below the need fails cleanly and keeps what was there. */
  for (max = 5; max < need + 5; max += 7) {
    sl_buf_init(&b, max);
    assert_int_equal(sl_buf_append(&b, "prev", 4), 0);
    rc = sl_parse_event(ctx, &src, line, strlen(line), 0, 0, READ_NS, &b);
    if (max >= need + 4) {
      assert_int_equal(rc, 0);
      assert_int_equal(b.len, need + 4);
    } else {
      assert_int_equal(rc, SL_E2BIG);
      assert_int_equal(b.len, 4);
      assert_string_equal(b.p, "prev");
    }
    sl_buf_free(&b);
  }
  /* Events append: several in one buffer. */
  sl_buf_init(&b, 0);
  assert_int_equal(sl_parse_event(ctx, &src, "{}", 2, 0, 0, READ_NS, &b), 0);
  need = b.len;
  assert_int_equal(sl_parse_event(ctx, &src, "{}", 2, 9, 0, READ_NS, &b), 0);
  assert_true(b.len > need);
  assert_int_equal(b.p[need], '{');
  sl_buf_free(&b);
  sl_parse_ctx_free(ctx);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ctx_defaults_and_static_fields),
    cmocka_unit_test(test_ctx_config),
    cmocka_unit_test(test_ctx_errors),
    cmocka_unit_test(test_raw_parser),
    cmocka_unit_test(test_json_fallback),
    cmocka_unit_test(test_json_depth),
    cmocka_unit_test(test_json_levels),
    cmocka_unit_test(test_json_timestamps),
    cmocka_unit_test(test_json_message),
    cmocka_unit_test(test_json_trace),
    cmocka_unit_test(test_json_request_id),
    cmocka_unit_test(test_json_app),
    cmocka_unit_test(test_regex),
    cmocka_unit_test(test_json_correlation),
    cmocka_unit_test(test_json_timestamp_conf),
    cmocka_unit_test(test_json_ecs),
    cmocka_unit_test(test_json_many_keys),
    cmocka_unit_test(test_event_id),
    cmocka_unit_test(test_buffer_limits),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
