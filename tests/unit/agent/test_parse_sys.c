/* test_parse_sys.c - the syslog, cri and docker parsers (agent/parse_syslog.c,
 * agent/parse_cri.c) where a fixed read time matters (year inference) and
 * `then:` (agent/parse.c): config errors, ids, the heap path for long
 * docker messages. The line-by-line cases are tests/fixtures/parsers/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "sl_buf.h"
#include "sl_err.h"

/* 2024-01-01T00:00:30Z: just after the new year. */
#define NEWYEAR_NS 1704067230000000000LL

static const struct sl_agent_info info = {
  "host-1", "agent-id-1", NULL, "9.9.9"
};
static const struct sl_src src = { "/var/log/syslog", 11, 22, 33 };

static struct sl_parse_ctx *
mkctx(const char *cfg)
{
  struct sl_parse_ctx *ctx = NULL;
  json_t *in = json_loads(cfg, 0, NULL);
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

static json_t *
ev_at(struct sl_parse_ctx *ctx, const char *line, size_t len, int64_t now,
      unsigned flags)
{
  struct sl_buf b;
  json_error_t je;
  json_t *ev;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_parse_event(ctx, &src, line, len, 77, flags, now, &b),
                   0);
  assert_null(memchr(b.p, '\n', b.len));
  ev = json_loadb(b.p, b.len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    fail_msg("bad event JSON (%s at %d): %s", je.text, je.position, b.p);
  sl_buf_free(&b);
  return ev;
}

static const char *
sget(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
test_syslog_year_inference(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"syslog\","
                                   "\"timezone\":\"UTC\"}");
  struct sl_parse_ctx *berlin = mkctx("{\"parser\":\"syslog\","
                                      "\"timezone\":\"Europe/Berlin\"}");
  const char *l1 = "Dec 31 23:59:50 combo sshd[1]: late";
  const char *l2 = "Jan  1 00:00:10 combo sshd[1]: early";
  const char *l3 = "Jan  1 00:30:00 combo sshd[1]: berlin";
  json_t *e;

  (void)state;
  /* A December line read in January is last year's. */
  e = ev_at(ctx, l1, strlen(l1), NEWYEAR_NS, 0);
  assert_string_equal(sget(e, "@timestamp"), "2023-12-31T23:59:50.000Z");
  json_decref(e);
  e = ev_at(ctx, l2, strlen(l2), NEWYEAR_NS, 0);
  assert_string_equal(sget(e, "@timestamp"), "2024-01-01T00:00:10.000Z");
  json_decref(e);
  /* The input's zone: 00:30 CET is 23:30 UTC the day before. */
  e = ev_at(berlin, l3, strlen(l3), NEWYEAR_NS, 0);
  assert_string_equal(sget(e, "@timestamp"), "2023-12-31T23:30:00.000Z");
  json_decref(e);
  sl_parse_ctx_free(ctx);
  sl_parse_ctx_free(berlin);
}

static void
test_then_errors(void **state)
{
  char err[256];

  (void)state;
  assert_int_equal(ctx_err("{\"parser\":\"json\",\"then\":{\"parser\":"
                           "\"json\"}}", err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "does not take a second parser"));
  assert_int_equal(ctx_err("{\"parser\":\"cri\",\"then\":{\"parser\":"
                           "\"json\",\"field\":\"app.x\"}}", err,
                           sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "then.field"));
  assert_int_equal(ctx_err("{\"parser\":\"cri\",\"then\":{\"parser\":"
                           "\"nope\"}}", err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "then: parser: 'nope'"));
  assert_int_equal(ctx_err("{\"parser\":\"docker\",\"then\":{}}", err,
                           sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "then.parser"));
  assert_int_equal(ctx_err("{\"parser\":\"cri\",\"then\":\"json\"}", err,
                           sizeof(err)), SL_ECONFIG);
  /* stream belongs to the container format. */
  assert_int_equal(ctx_err("{\"parser\":\"cri\",\"then\":{\"parser\":"
                           "\"regex\",\"regex\":{\"pattern\":\"(?<s>.)\","
                           "\"fields\":{\"s\":\"stream\"}}}}", err,
                           sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "then.regex.fields.s"));
  /* A second parser cannot chain again (json takes no then). */
  assert_int_equal(ctx_err("{\"parser\":\"cri\",\"then\":{\"parser\":"
                           "\"json\",\"then\":{\"parser\":\"raw\"}}}", err,
                           sizeof(err)), SL_ECONFIG);
}

/* Same event.id and log.offset with and without then:, truncated flag
 * kept, the ECS keys of the inner line never clash with the outer's. */
static void
test_then_ids(void **state)
{
  struct sl_parse_ctx *plain = mkctx("{\"parser\":\"cri\"}");
  struct sl_parse_ctx *chain = mkctx("{\"parser\":\"cri\",\"then\":"
                                     "{\"parser\":\"json\"}}");
  const char *l = "2023-10-11T14:32:52Z stdout F {\"stream\":\"app\","
                  "\"log\":{\"logger\":\"x\"},\"process.pid\":5,"
                  "\"msg\":\"m\"}";
  json_t *a, *b, *ev;

  (void)state;
  a = ev_at(plain, l, strlen(l), NEWYEAR_NS, 0);
  b = ev_at(chain, l, strlen(l), NEWYEAR_NS, 1u);
  ev = json_object_get(a, "event");
  assert_string_equal(sget(ev, "id"),
                      sget(json_object_get(b, "event"), "id"));
  assert_string_equal(sget(b, "stream"), "stdout");
  assert_string_equal(sget(json_object_get(b, "app"), "stream"), "app");
  assert_string_equal(sget(b, "message"), "m");
  assert_non_null(json_object_get(json_object_get(b, "log"), "flags"));
  json_decref(a);
  json_decref(b);
  sl_parse_ctx_free(plain);
  sl_parse_ctx_free(chain);
}

/* A docker message longer than the parser's stack buffer goes through the
 * heap for then:. */
static void
test_docker_then_long(void **state)
{
  struct sl_parse_ctx *ctx = mkctx("{\"parser\":\"docker\",\"then\":"
                                   "{\"parser\":\"logfmt\"}}");
  size_t n = 20000, i;
  char *line = malloc(n + 100), *p = line;
  json_t *e;

  (void)state;
  assert_non_null(line);
  p += sprintf(p, "{\"log\":\"level=warn msg=\\\"");
  for (i = 0; i < n; i++)
    *p++ = 'a';
  p += sprintf(p, "\\\"\\n\",\"stream\":\"stderr\"}");
  e = ev_at(ctx, line, (size_t)(p - line), NEWYEAR_NS, 0);
  assert_string_equal(sget(e, "stream"), "stderr");
  assert_int_equal(strlen(sget(e, "message")), n);
  assert_string_equal(sget(json_object_get(e, "log"), "level"), "warn");
  json_decref(e);
  free(line);
  sl_parse_ctx_free(ctx);
}

/* Every prefix of real lines is an event that loads (the fuzz targets do
 * this with random bytes; this keeps the cut-off cases in the unit run). */
static void
test_prefixes(void **state)
{
  static const char *const cfg[] = {
    "{\"parser\":\"syslog\"}", "{\"parser\":\"cri\"}",
    "{\"parser\":\"docker\",\"then\":{\"parser\":\"json\"}}",
  };
  static const char *const lines[] = {
    "<165>1 2003-10-11T22:14:15.003Z host app 12 ID47 [a@1 k=\"v\\\"\\]\"]"
    "[b x=\"y\"] \xef\xbb\xbfmsg",
    "2016-10-06T00:17:09.669794202Z stderr F {\"a\":1}",
    "{\"log\":\"{\\\"msg\\\":\\\"\\u00e9\\\"}\\n\",\"stream\":\"stdout\","
    "\"time\":\"2019-04-30T09:54:13Z\"}",
  };
  struct sl_parse_ctx *ctx;
  size_t c, k;
  json_t *e;

  (void)state;
  for (c = 0; c < 3; c++) {
    ctx = mkctx(cfg[c]);
    for (k = 0; k <= strlen(lines[c]); k++) {
      e = ev_at(ctx, lines[c], k, NEWYEAR_NS, 0);
      assert_non_null(json_object_get(e, "@timestamp"));
      json_decref(e);
    }
    sl_parse_ctx_free(ctx);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_syslog_year_inference),
    cmocka_unit_test(test_then_errors),
    cmocka_unit_test(test_then_ids),
    cmocka_unit_test(test_docker_then_long),
    cmocka_unit_test(test_prefixes),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
