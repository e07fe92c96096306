/* test_linefx.c - include/exclude_lines, event edits (filter.h) and
 * redaction (redact.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "filter.h"
#include "redact.h"
#include "sl_err.h"

static struct sl_filter *
filter(const char *json)
{
  json_t *in = json_loads(json, 0, NULL);
  struct sl_filter *f = NULL;
  char err[256] = "";

  assert_non_null(in);
  assert_int_equal(sl_filter_new(in, &f, err, sizeof(err)), 0);
  json_decref(in);
  return f;
}

static struct sl_redact *
redact(const char *json)
{
  json_t *in = json_loads(json, 0, NULL);
  struct sl_redact *r = NULL;
  char err[256] = "";

  assert_non_null(in);
  assert_int_equal(sl_redact_new(in, &r, err, sizeof(err)), 0);
  assert_non_null(r);
  json_decref(in);
  return r;
}

static void
edit_eq(const char *conf, const char *ev, const char *want)
{
  struct sl_filter *f = filter(conf);
  struct sl_buf out;
  json_t *a, *b;

  sl_buf_init(&out, 0);
  assert_int_equal(sl_filter_edit(f, ev, strlen(ev), &out), 0);
  a = json_loads(out.p, JSON_REJECT_DUPLICATES, NULL);
  b = json_loads(want, 0, NULL);
  if (a == NULL || !json_equal(a, b))
    fail_msg("edit gave %s, want %s", out.p, want);
  json_decref(a);
  json_decref(b);
  sl_buf_free(&out);
  sl_filter_free(f);
}

static void
test_nothing_configured(void **s)
{
  (void)s;
  assert_null(filter("{\"parser\":\"raw\"}"));
}

static void
test_include_exclude(void **s)
{
  struct sl_filter *f = filter("{\"include_lines\":[\"^ERR\",\"^WARN\"],"
                               "\"exclude_lines\":[\"health\"]}");
  pcre2_match_data *md = sl_rx_md_new();

  (void)s;
  assert_true(sl_filter_keep(f, "ERR x", 5, md));
  assert_true(sl_filter_keep(f, "WARN y", 6, md));
  assert_false(sl_filter_keep(f, "INFO z", 6, md));
  assert_false(sl_filter_keep(f, "ERR health", 10, md));
  /* Invalid UTF-8 never makes a match fail. */
  assert_true(sl_filter_keep(f, "ERR \xff\xfe", 6, md));
  assert_false(sl_filter_has_edits(f));
  pcre2_match_data_free(md);
  sl_filter_free(f);
}

static void
test_edits(void **s)
{
  (void)s;
  edit_eq("{\"drop_fields\":[\"a.b\",\"z\"]}",
          "{\"a\":{\"b\":1,\"c\":2},\"z\":[1,{\"q\":\"}\"}],\"y\":\"\\\"\"}",
          "{\"a\":{\"c\":2},\"y\":\"\\\"\"}");
  edit_eq("{\"rename\":{\"app.user\":\"user.name\"}}",
          "{\"app\":{\"user\":{\"id\":3}},\"user\":{\"x\":1}}",
          "{\"app\":{},\"user\":{\"x\":1,\"name\":{\"id\":3}}}");
  /* A missing source: nothing written, the target left alone. */
  edit_eq("{\"rename\":{\"app.nope\":\"m\"}}", "{\"m\":1}", "{\"m\":1}");
  edit_eq("{\"add_fields\":{\"service.name\":\"co\",\"service.v\":2,"
          "\"a.b.c\":true}}",
          "{\"service\":{\"name\":\"old\"},\"x\":1}",
          "{\"service\":{\"name\":\"co\",\"v\":2},\"x\":1,"
          "\"a\":{\"b\":{\"c\":true}}}");
  /* A scalar in the way of a new object is replaced. */
  edit_eq("{\"add_fields\":{\"host.ip\":\"1.2.3.4\"}}",
          "{\"host\":\"h\"}", "{\"host\":{\"ip\":\"1.2.3.4\"}}");
  edit_eq("{\"drop_fields\":[\"a\"],\"add_fields\":{\"a.b\":1}}",
          "{\"a\":{\"c\":1}}", "{\"a\":{\"b\":1}}");
}

static void
test_edit_rejects_non_object(void **s)
{
  struct sl_filter *f = filter("{\"drop_fields\":[\"a\"]}");
  struct sl_buf out;

  (void)s;
  sl_buf_init(&out, 0);
  assert_int_equal(sl_filter_edit(f, "[1]", 3, &out), SL_EPARSE);
  assert_int_equal(sl_filter_edit(f, "{\"a\":", 5, &out), SL_EPARSE);
  assert_int_equal(out.len, 0);
  sl_buf_free(&out);
  sl_filter_free(f);
}

static void
test_filter_config_errors(void **s)
{
  static const char *const bad[] = {
    "{\"include_lines\":[\"(\"]}", "{\"exclude_lines\":[1]}",
    "{\"drop_fields\":[\"a..b\"]}", "{\"rename\":{\"a\":1}}",
    "{\"add_fields\":{\".x\":1}}", "{\"add_fields\":[1]}",
  };
  size_t i;

  (void)s;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    json_t *in = json_loads(bad[i], 0, NULL);
    struct sl_filter *f = NULL;
    char err[256];
    assert_int_equal(sl_filter_new(in, &f, err, sizeof(err)), SL_ECONFIG);
    assert_null(f);
    json_decref(in);
  }
}

static char *
apply(const struct sl_redact *r, const char *line)
{
  struct sl_redact_scratch sc;
  const char *o;
  size_t n;
  char *res;
  int rc;

  assert_int_equal(sl_redact_scratch_init(&sc), 0);
  rc = sl_redact_apply(r, &sc, line, strlen(line), &o, &n);
  assert_true(rc >= 0);
  res = rc ? strndup(o, n) : strdup(line);
  sl_redact_scratch_free(&sc);
  return res;
}

#define APPLY_EQ(r, in, want)                                                \
  do {                                                                       \
    char *got_ = apply((r), (in));                                           \
    assert_string_equal(got_, (want));                                       \
    free(got_);                                                              \
  } while (0)

static void
test_luhn(void **s)
{
  (void)s;
  assert_true(sl_redact_luhn("4111111111111111", 16));
  assert_true(sl_redact_luhn("79927398713", 11));
  assert_false(sl_redact_luhn("4111111111111112", 16));
  assert_false(sl_redact_luhn("79927398710", 11));
}

static void
test_card(void **s)
{
  struct sl_redact *r = redact("{\"redact\":[\"credit_card\"]}");
  unsigned seed = 12345;
  int i, j, kept = 0;
  char num[17];

  (void)s;
  APPLY_EQ(r, "visa 4111111111111111 ok", "visa [REDACTED:card] ok");
  APPLY_EQ(r, "mc 5500-0000-0000-0004.", "mc [REDACTED:card].");
  APPLY_EQ(r, "amex 3782 822463 10005", "amex [REDACTED:card]");
  APPLY_EQ(r, "4111 1111 1111 1111", "[REDACTED:card]");
  /* Glued to letters or more digits: not a card. */
  APPLY_EQ(r, "id=x4111111111111111", "id=x4111111111111111");
  APPLY_EQ(r, "41111111111111110000", "41111111111111110000");
  /* Double separators end a run. */
  APPLY_EQ(r, "4111  1111 1111 1111", "4111  1111 1111 1111");
  /* Random 16-digit numbers that fail Luhn stay. */
  for (i = 0; i < 2000; i++) {
    for (j = 0; j < 16; j++) {
      seed = seed * 1103515245u + 12345u;
      num[j] = (char)('0' + (seed >> 16) % 10);
    }
    num[16] = '\0';
    if (sl_redact_luhn(num, 16))
      continue;
    {
      char *got = apply(r, num);
      assert_string_equal(got, num);
      free(got);
    }
    kept++;
  }
  assert_true(kept > 1500);
  sl_redact_free(r);
}

static void
test_secrets_and_email(void **s)
{
  struct sl_redact *r = redact("{\"redact\":[\"secrets\",\"email\"]}");

  (void)s;
  APPLY_EQ(r, "password=hunter2 next", "password=[REDACTED] next");
  APPLY_EQ(r, "PASSWD: 's3cr3t'", "PASSWD: '[REDACTED]'");
  APPLY_EQ(r, "{\"api_key\":\"AKIA123\",\"x\":1}",
           "{\"api_key\":\"[REDACTED]\",\"x\":1}");
  APPLY_EQ(r, "url?token=abc&x=1", "url?token=[REDACTED]&x=1");
  APPLY_EQ(r, "Authorization: Bearer eyJ.a.b", "Authorization: Bearer "
           "[REDACTED]");
  APPLY_EQ(r, "authorization: basic dXNlcjpwYXNz",
           "authorization: basic [REDACTED]");
  APPLY_EQ(r, "mail bob.smith+x@mail.example.co.uk now",
           "mail [REDACTED:email] now");
  APPLY_EQ(r, "no secrets, tokens or keys here",
           "no secrets, tokens or keys here");
  sl_redact_free(r);
}

static void
test_pattern_rule_and_order(void **s)
{
  struct sl_redact *r = redact("{\"redact\":[{\"pattern\":\"(ssn)=\\\\d+\","
                               "\"replacement\":\"$1=***$$\"},"
                               "{\"pattern\":\"x*\",\"replacement\":\"\"}]}");

  (void)s;
  APPLY_EQ(r, "ssn=123 ssn=4", "ssn=***$ ssn=***$");
  sl_redact_free(r);
}

static void
test_redact_config_errors(void **s)
{
  static const char *const bad[] = {
    "{\"redact\":[\"iban\"]}", "{\"redact\":[{\"replacement\":\"x\"}]}",
    "{\"redact\":[{\"pattern\":\"(\"}]}", "{\"redact\":[]}",
    "{\"redact\":[{\"pattern\":\"a\",\"replacement\":1}]}",
  };
  size_t i;

  (void)s;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    json_t *in = json_loads(bad[i], 0, NULL);
    struct sl_redact *r = NULL;
    char err[256];
    assert_int_equal(sl_redact_new(in, &r, err, sizeof(err)), SL_ECONFIG);
    assert_null(r);
    json_decref(in);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_nothing_configured),
    cmocka_unit_test(test_include_exclude),
    cmocka_unit_test(test_edits),
    cmocka_unit_test(test_edit_rejects_non_object),
    cmocka_unit_test(test_filter_config_errors),
    cmocka_unit_test(test_luhn),
    cmocka_unit_test(test_card),
    cmocka_unit_test(test_secrets_and_email),
    cmocka_unit_test(test_pattern_rule_and_order),
    cmocka_unit_test(test_redact_config_errors),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
