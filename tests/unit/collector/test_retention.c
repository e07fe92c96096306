/* collector/retention: durations, glob cover and rule matching, index
 * and stream names, the config with its file:line errors and warnings,
 * and plans built from listings (pure functions, no ES). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "es_setup.h"
#include "retention.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_time.h"

#define DAY 86400000LL

static void
test_duration(void **state)
{
  static const struct { const char *s; int64_t ms; } good[] = {
    { "14d", 14 * DAY }, { "1h", 3600000 }, { "90m", 5400000 },
    { "30s", 30000 }, { "365d", 365 * DAY }, { "007d", 7 * DAY },
  };
  static const char *const bad[] = {
    "", "d", "0d", "-1d", "14", "14 d", "14dd", "1w", "250ms", "1.5d",
    "99999999999999999999d", "106751991167301d", " 1d", "1D",
  };
  char out[32];
  int64_t ms;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    assert_int_equal(sl_retention_parse_duration(good[i].s, &ms), 0);
    assert_int_equal(ms, good[i].ms);
  }
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(sl_retention_parse_duration(bad[i], &ms), SL_EPARSE);
  assert_int_equal(sl_retention_parse_duration(NULL, &ms), SL_EPARSE);
  sl_retention_format_duration(14 * DAY, out, sizeof out);
  assert_string_equal(out, "14d");
  sl_retention_format_duration(36 * 3600000LL, out, sizeof out);
  assert_string_equal(out, "36h");
  sl_retention_format_duration(90 * 60000LL, out, sizeof out);
  assert_string_equal(out, "90m");
  sl_retention_format_duration(61000, out, sizeof out);
  assert_string_equal(out, "61s");
}

static void
test_glob_covers(void **state)
{
  (void)state;
  assert_true(sl_retention_glob_covers("*", "audit*"));
  assert_true(sl_retention_glob_covers("*", "x"));
  assert_true(sl_retention_glob_covers("audit*", "audit.?"));
  assert_true(sl_retention_glob_covers("audit*", "audit*x"));
  assert_true(sl_retention_glob_covers("a*b*", "a*x*b*"));
  assert_true(sl_retention_glob_covers("?", "x"));
  assert_true(sl_retention_glob_covers("nginx", "nginx"));
  assert_true(sl_retention_glob_covers("[ab]x", "[ab]x"));
  assert_false(sl_retention_glob_covers("audit*", "*"));
  assert_false(sl_retention_glob_covers("audit*", "app"));
  assert_false(sl_retention_glob_covers("?", "*"));
  assert_false(sl_retention_glob_covers("a?", "a"));
  assert_false(sl_retention_glob_covers("a*b", "a*"));
  assert_false(sl_retention_glob_covers("nginx", "nginx*"));
  /* Brackets: only an equal glob is known to cover. */
  assert_false(sl_retention_glob_covers("[ab]*", "a"));
}

static struct sl_conf *
load(const char *yml, char *err, size_t errlen)
{
  struct sl_conf *c = NULL;

  assert_int_equal(sl_conf_load_str("c.yml", yml, strlen(yml),
                                    sl_collector_schema, &c, err, errlen), 0);
  return c;
}

#define HEAD "data_dir: /tmp/x\ninputs:\n  - listen: 127.0.0.1:0\n" \
             "elasticsearch:\n  hosts: [http://127.0.0.1:9]\n"

static void
test_conf_and_match(void **state)
{
  struct sl_conf *c;
  struct sl_retention_conf rc, cp;
  const struct sl_retention_rule *ru;
  char err[512], warn[1024];

  (void)state;
  c = load(HEAD, err, sizeof err);
  assert_int_equal(sl_retention_conf_fill(c, &rc, err, sizeof err, warn,
                                          sizeof warn), 0);
  assert_int_equal(rc.mode, SL_RET_NONE);
  sl_retention_conf_free(&rc);
  sl_conf_free(c);

  c = load(HEAD "retention:\n  mode: lifecycle\n  rules:\n"
           "    - match: \"audit*\"\n      keep: 365d\n"
           "    - match: \"a?c\"\n      keep: 48h\n      name: short\n",
           err, sizeof err);
  assert_int_equal(sl_retention_conf_fill(c, &rc, err, sizeof err, warn,
                                          sizeof warn), 0);
  assert_string_equal(warn, "");
  assert_int_equal(rc.mode, SL_RET_LIFECYCLE);
  assert_int_equal(rc.default_ms, 14 * DAY);
  assert_string_equal(rc.default_keep, "14d");
  assert_int_equal(rc.interval_ms, 3600000);
  assert_int_equal(rc.nrules, 2);
  assert_string_equal(rc.rules[0].name, "rule-0");
  assert_string_equal(rc.rules[0].pattern, "logs-audit*-*");
  assert_string_equal(rc.rules[1].name, "short");
  assert_string_equal(rc.rules[1].keep, "2d");
  assert_null(rc.rules[1].pattern);
  ru = sl_retention_match(&rc, "audit.linux");
  assert_non_null(ru);
  assert_string_equal(ru->match, "audit*");
  assert_ptr_equal(sl_retention_match(&rc, "abc"), &rc.rules[1]);
  assert_null(sl_retention_match(&rc, "nginx.access"));
  assert_null(sl_retention_match(&rc, "abbc"));
  assert_int_equal(sl_retention_conf_copy(&rc, &cp), 0);
  assert_string_equal(cp.rules[1].name, "short");
  assert_ptr_not_equal(cp.rules[1].name, rc.rules[1].name);
  sl_retention_conf_free(&cp);
  sl_retention_conf_free(&rc);
  sl_conf_free(c);
}

static void
test_conf_errors_and_warnings(void **state)
{
  static const struct { const char *yml, *want; } bad[] = {
    { "retention:\n  mode: managed\n  default: 2w\n",
      "c.yml:8: retention.default: bad duration \"2w\"" },
    { "retention:\n  mode: managed\n  interval: 0s\n",
      "c.yml:8: retention.interval: bad duration" },
    { "retention:\n  mode: ilm\n  rules:\n    - match: a\n      keep: 1d\n"
      "    - match: b\n      keep: 1x\n",
      "c.yml:12: retention.rules[1].keep: bad duration \"1x\"" },
    { "retention:\n  mode: ilm\n  rules:\n    - match: a\n      keep: 1d\n"
      "      name: x\n    - match: b\n      keep: 1d\n      name: x\n",
      "c.yml:14: retention.rules[1].name: \"x\" is also the name of" },
    { "retention:\n  mode: ilm\n  rules:\n    - match: a\n      keep: 1d\n"
      "      name: default\n", "c.yml:11: retention.rules[0].name: want" },
  };
  struct sl_conf *c;
  struct sl_retention_conf rc;
  char err[512], warn[1024], yml[1024];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(yml, sizeof yml, "%s%s", HEAD, bad[i].yml);
    c = load(yml, err, sizeof err);
    assert_int_equal(sl_retention_conf_fill(c, &rc, err, sizeof err, NULL,
                                            0), SL_ECONFIG);
    if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
      fail_msg("case %zu: got '%s', want '%s...'", i, err, bad[i].want);
    /* Start, SIGHUP and --check all refuse it. */
    assert_int_equal(sl_collector_conf_check(c, err, sizeof err),
                     SL_ECONFIG);
    sl_conf_free(c);
  }

  /* Without elasticsearch: (an archive-only collector). */
  c = load("data_dir: /tmp/x\ninputs:\n  - listen: 127.0.0.1:0\n"
           "archive:\n  path: /tmp/a\nretention:\n  mode: managed\n",
           err, sizeof err);
  assert_int_equal(sl_retention_conf_fill(c, &rc, err, sizeof err, NULL, 0),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "c.yml:7: retention: needs elasticsearch"));
  sl_conf_free(c);

  /* lifecycle with elasticsearch.ilm_policy: ILM would win. */
  c = load("data_dir: /tmp/x\ninputs:\n  - listen: 127.0.0.1:0\n"
           "elasticsearch:\n  hosts: [http://127.0.0.1:9]\n"
           "  ilm_policy: mine\nretention:\n  mode: lifecycle\n",
           err, sizeof err);
  assert_int_equal(sl_retention_conf_fill(c, &rc, err, sizeof err, NULL, 0),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "c.yml:8: retention.mode:"));
  sl_conf_free(c);

  c = load(HEAD "retention:\n  mode: managed\n  rules:\n"
           "    - match: \"*\"\n      keep: 3d\n"
           "    - match: \"audit*\"\n      keep: 365d\n"
           "    - match: \"Audit\"\n      keep: 1d\n", err, sizeof err);
  assert_int_equal(sl_retention_conf_fill(c, &rc, err, sizeof err, warn,
                                          sizeof warn), 0);
  assert_non_null(strstr(warn, "c.yml:11: retention.rules[1].match: can "
                               "never match: rules[0] (\"*\")"));
  assert_non_null(strstr(warn, "c.yml:13: retention.rules[2].match: "
                               "\"Audit\" can never match"));
  sl_retention_conf_free(&rc);
  sl_conf_free(c);
}

static void
test_names(void **state)
{
  char ds[64];
  int64_t day;

  (void)state;
  assert_int_equal(sl_retention_daily_date("sluice-app-2024.05.01", "sluice",
                                           &day, ds, sizeof ds), 0);
  assert_string_equal(ds, "app");
  assert_int_equal(day, 1714521600000LL);
  assert_int_equal(sl_retention_daily_date("sluice-nginx.access-2024.02.29",
                                           "sluice", &day, ds, sizeof ds),
                   0);
  assert_string_equal(ds, "nginx.access");
  assert_int_equal(sl_retention_daily_date("logs-x-1970.01.02", "logs",
                                           &day, ds, sizeof ds), 0);
  assert_int_equal(day, DAY);
  /* Not sluice's: another prefix, no dataset, a bad date, a suffix. */
  assert_int_equal(sl_retention_daily_date("sluicex-app-2024.05.01",
                                           "sluice", &day, ds, sizeof ds),
                   SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("other-app-2024.05.01", "sluice",
                                           &day, ds, sizeof ds), SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("sluice--2024.05.01", "sluice",
                                           &day, ds, sizeof ds), SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("sluice-app-2023.02.29",
                                           "sluice", &day, ds, sizeof ds),
                   SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("sluice-app-2024.13.01",
                                           "sluice", &day, ds, sizeof ds),
                   SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("sluice-app-2024.05.01-000001",
                                           "sluice", &day, ds, sizeof ds),
                   SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("sluice-A-2024.05.01", "sluice",
                                           &day, ds, sizeof ds), SL_EPARSE);
  assert_int_equal(sl_retention_daily_date("sluice-app-2024.5.01", "sluice",
                                           &day, ds, sizeof ds), SL_EPARSE);

  assert_int_equal(sl_retention_stream_dataset("logs-nginx.access-prod", ds,
                                               sizeof ds), 0);
  assert_string_equal(ds, "nginx.access");
  assert_int_equal(sl_retention_stream_dataset("logs-a-b-c", ds, sizeof ds),
                   SL_EPARSE);
  assert_int_equal(sl_retention_stream_dataset("metrics-a-b", ds, sizeof ds),
                   SL_EPARSE);
  assert_int_equal(sl_retention_stream_dataset("logs-a-", ds, sizeof ds),
                   SL_EPARSE);
}

static void
test_plan(void **state)
{
  struct sl_retention_conf rc;
  struct sl_retention_rule rule;
  struct sl_retention_plan p;
  int64_t now = 20000 * DAY + 12 * 3600000LL;
  json_t *streams, *cat;
  char d_old[64], d_edge[64], d_new[64], d_audit[64];
  int64_t y;
  unsigned m, d;

  (void)state;
  memset(&rc, 0, sizeof rc);
  memset(&rule, 0, sizeof rule);
  rc.mode = SL_RET_MANAGED;
  rc.default_ms = 14 * DAY;
  strcpy(rc.default_keep, "14d");
  rule.match = "audit*";
  rule.name = "audit";
  rule.keep_ms = 365 * DAY;
  strcpy(rule.keep, "365d");
  rc.rules = &rule;
  rc.nrules = 1;
  /* Day 20000 - 15 ended 14.5 days ago: goes. Day 20000 - 14 ended 13.5
   * days ago: stays (its newest events are younger than 14d). */
  sl_time_civil_from_days(20000 - 15, &y, &m, &d);
  snprintf(d_old, sizeof d_old, "sluice-app-%04lld.%02u.%02u", (long long)y,
           m, d);
  sl_time_civil_from_days(20000 - 14, &y, &m, &d);
  snprintf(d_edge, sizeof d_edge, "sluice-app-%04lld.%02u.%02u",
           (long long)y, m, d);
  sl_time_civil_from_days(20000, &y, &m, &d);
  snprintf(d_new, sizeof d_new, "sluice-app-%04lld.%02u.%02u", (long long)y,
           m, d);
  sl_time_civil_from_days(20000 - 100, &y, &m, &d);
  snprintf(d_audit, sizeof d_audit, "sluice-audit-%04lld.%02u.%02u",
           (long long)y, m, d);
  streams = json_pack(
    "{s:[{s:s, s:s, s:[{s:s}, {s:s}, {s:s}]},"
    "    {s:s, s:s, s:[{s:s}, {s:s}]}]}", "data_streams",
    "name", "logs-web-default", "template", "sluice-logs", "indices",
    "index_name", ".ds-web-1", "index_name", ".ds-web-2", "index_name",
    ".ds-web-3",
    "name", "logs-fleet-default", "template", "logs", "indices",
    "index_name", ".ds-fleet-1", "index_name", ".ds-fleet-2");
  cat = json_pack(
    "[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s},"
    " {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s},"
    " {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s},"
    " {s:s}]",
    "index", d_old, "creation.date", "1", "store.size", "100",
    "index", d_edge, "creation.date", "1", "store.size", "200",
    "index", d_new, "creation.date", "1", "store.size", "300",
    "index", d_audit, "creation.date", "1", "store.size", "400",
    /* web: gen 1 rolled over 30 days ago, gen 2 five days ago; gen 3 is
     * the write index, old as it is */
    "index", ".ds-web-1", "creation.date", "0", "store.size", "10",
    "index", ".ds-web-2", "creation.date", "1728000000000", "store.size",
    "20",
    "index", ".ds-web-3", "creation.date", "1727568000000", "store.size",
    "30",
    "index", ".ds-fleet-1", "creation.date", "0", "store.size", "1",
    "index", ".ds-fleet-2", "creation.date", "0", "store.size", "1",
    "index", "sluice-app-x");
  /* Make the web generations' dates relative to now. */
  json_object_set_new(json_array_get(cat, 5), "creation.date",
                      json_sprintf("%lld", (long long)(now - 30 * DAY)));
  json_object_set_new(json_array_get(cat, 6), "creation.date",
                      json_sprintf("%lld", (long long)(now - 5 * DAY)));
  assert_int_equal(sl_retention_plan_build(&rc, "sluice", streams, cat, now,
                                           &p), 0);
  assert_int_equal(p.ndel, 2);
  assert_string_equal(p.del[0].index, ".ds-web-1");
  assert_string_equal(p.del[0].rule, "default");
  assert_int_equal(p.del[0].age_ms, 30 * DAY);
  assert_int_equal(p.del[0].bytes, 10);
  assert_string_equal(p.del[1].index, d_old);
  assert_int_equal(p.del[1].age_ms, 14 * DAY + 12 * 3600000LL);
  assert_int_equal(p.del[1].bytes, 100);
  /* rules: one row per dataset sluice writes, sorted */
  assert_int_equal(json_array_size(p.rules), 3);
  assert_string_equal(json_string_value(json_object_get(
      json_array_get(p.rules, 0), "dataset")), "app");
  assert_string_equal(json_string_value(json_object_get(
      json_array_get(p.rules, 1), "rule")), "audit*");
  assert_string_equal(json_string_value(json_object_get(
      json_array_get(p.rules, 1), "keep")), "365d");
  assert_string_equal(json_string_value(json_object_get(
      json_array_get(p.rules, 2), "dataset")), "web");
  sl_retention_plan_free(&p);

  /* Other modes: the same rules, never a deletion. */
  rc.mode = SL_RET_LIFECYCLE;
  assert_int_equal(sl_retention_plan_build(&rc, "sluice", streams, cat, now,
                                           &p), 0);
  assert_int_equal(p.ndel, 0);
  assert_int_equal(json_array_size(p.rules), 3);
  sl_retention_plan_free(&p);
  json_decref(streams);
  json_decref(cat);
}

/* The templates es_setup builds for the rules. */
static json_t *
obj_body(const struct sl_es_object *o, size_t n, const char *path)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp(o[i].path, path) == 0)
      return json_loads(o[i].body, 0, NULL);
  return NULL;
}

static void
test_setup_templates(void **state)
{
  struct sl_retention_conf rc;
  struct sl_retention_rule rules[2];
  struct sl_es_setup_conf sc;
  struct sl_es_object o[SL_ES_SETUP_MAX];
  size_t n;
  json_t *b;

  (void)state;
  memset(&rc, 0, sizeof rc);
  memset(rules, 0, sizeof rules);
  rc.mode = SL_RET_LIFECYCLE;
  rc.default_ms = 14 * DAY;
  strcpy(rc.default_keep, "14d");
  rules[0].match = "audit*";
  rules[0].name = "audit";
  rules[0].pattern = "logs-audit*-*";
  strcpy(rules[0].keep, "365d");
  rules[1].match = "a?c";
  rules[1].name = "rule-1";
  strcpy(rules[1].keep, "2d");
  rc.rules = rules;
  rc.nrules = 2;
  memset(&sc, 0, sizeof sc);
  sc.priority = 150;
  sc.retention = &rc;
  sc.es_major = 8;
  sc.es_minor = 15;
  assert_int_equal(sl_es_setup_build(&sc, o, &n), 0);
  assert_int_equal(n, 4); /* mappings, settings, logs, one rule */
  b = obj_body(o, n, "_index_template/sluice-logs");
  assert_string_equal(json_string_value(json_object_get(json_object_get(
      json_object_get(b, "template"), "lifecycle"), "data_retention")),
      "14d");
  json_decref(b);
  b = obj_body(o, n, "_index_template/sluice-retention-audit");
  assert_non_null(b);
  assert_string_equal(json_string_value(json_array_get(json_object_get(
      b, "index_patterns"), 0)), "logs-audit*-*");
  assert_int_equal(json_integer_value(json_object_get(b, "priority")), 152);
  assert_non_null(json_object_get(b, "data_stream"));
  assert_string_equal(json_string_value(json_object_get(json_object_get(
      json_object_get(b, "template"), "lifecycle"), "data_retention")),
      "365d");
  json_decref(b);
  sl_es_setup_free(o, n);

  rc.mode = SL_RET_ILM;
  sc.mode = SL_INDEX_DAILY;
  assert_int_equal(sl_es_setup_build(&sc, o, &n), 0);
  assert_int_equal(n, 5);
  b = obj_body(o, n, "_index_template/sluice-retention-audit");
  assert_string_equal(json_string_value(json_object_get(json_object_get(
      json_object_get(json_object_get(json_object_get(b, "template"),
      "settings"), "index"), "lifecycle"), "name")), "sluice-audit");
  assert_null(json_object_get(json_object_get(b, "template"), "lifecycle"));
  json_decref(b);
  /* The daily template stays above every rule template. */
  b = obj_body(o, n, "_index_template/sluice-daily");
  assert_int_equal(json_integer_value(json_object_get(b, "priority")), 161);
  json_decref(b);
  sl_es_setup_free(o, n);

  /* Lifecycle on ES < 8.11: no lifecycle anywhere, no rule templates. */
  rc.mode = SL_RET_LIFECYCLE;
  sc.mode = SL_INDEX_DATA_STREAM;
  sc.es_minor = 10;
  assert_int_equal(sl_es_setup_build(&sc, o, &n), 0);
  assert_int_equal(n, 3);
  sl_es_setup_free(o, n);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_duration),
    cmocka_unit_test(test_glob_covers),
    cmocka_unit_test(test_conf_and_match),
    cmocka_unit_test(test_conf_errors_and_warnings),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_plan),
    cmocka_unit_test(test_setup_templates),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
