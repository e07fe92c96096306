/* test_level.c - agent/level.[ch]: the synonym map, syslog severities and
 * the level word at the start of a raw line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "level.h"

static void
eq(const char *got, const char *want)
{
  if (want == NULL) {
    assert_null(got);
    return;
  }
  assert_non_null(got);
  assert_string_equal(got, want);
}

static void
test_norm(void **state)
{
  static const struct {
    const char *in, *want;
  } t[] = {
    { "WARN", "warn" }, { "Warning", "warn" }, { "ERR", "error" },
    { "eror", "error" }, { "SEVERE", "error" }, { "CRIT", "critical" },
    { "critical", "critical" }, { "FATAL", "fatal" }, { "panic", "emergency" },
    { "EMERG", "emergency" }, { "notice", "notice" }, { "alert", "alert" },
    { "Information", "info" }, { "informational", "info" }, { "I", "info" },
    { "finest", "trace" }, { "VERBOSE", "trace" }, { "dbg", "debug" },
    { "30", "info" }, { "60", "fatal" }, { "", NULL }, { "loud", NULL },
    { "3", NULL }, { "warnings", NULL },
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    eq(sl_level_norm(t[i].in, strlen(t[i].in)), t[i].want);
}

static void
test_syslog(void **state)
{
  (void)state;
  eq(sl_level_from_syslog(0), "emergency");
  eq(sl_level_from_syslog(3), "error");
  eq(sl_level_from_syslog(4), "warn");
  eq(sl_level_from_syslog(7), "debug");
  eq(sl_level_from_syslog(8), NULL);
  eq(sl_level_from_syslog(-1), NULL);
}

static void
test_scan(void **state)
{
  static const struct {
    const char *in, *want;
  } t[] = {
    { "ERROR: disk full", "error" }, { "WARN  low memory", "warn" },
    { "[info] started", "info" }, { "<Warning> x", "warn" },
    { "  DEBUG x", "debug" }, { "(crit) boom", "critical" },
    { "INFO", "info" }, { "Info about things", NULL },
    { "INFORMATIVE text", NULL }, { "E x", NULL }, { "[info x", NULL },
    { "ERRORS: 3", NULL }, { "", NULL }, { "WARN-ing", NULL },
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    eq(sl_level_scan(t[i].in, strlen(t[i].in)), t[i].want);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_norm),
    cmocka_unit_test(test_syslog),
    cmocka_unit_test(test_scan),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
