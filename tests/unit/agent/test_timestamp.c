/* test_timestamp.c - agent/timestamp.[ch]: zones from TZif files (DST
 * edges), the built-in formats, layouts, year inference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_err.h"
#include "sl_time.h"
#include "timestamp.h"

/* 2024-01-10T12:00:00Z: the read time of the year-less cases. */
#define REF_JAN ((int64_t)1704888000 * SL_NS_PER_SEC)
/* 2023-12-31T12:00:00Z */
#define REF_DEC ((int64_t)1704024000 * SL_NS_PER_SEC)

struct tcase {
  const char *zone;        /* NULL: UTC */
  const char *layout;      /* NULL: built-in formats */
  const char *in;
  int64_t ref;
  const char *want;        /* RFC 3339 UTC, ms or us; NULL: no match */
};

static const struct tcase cases[] = {
  /* RFC 3339 with and without fraction and offset. */
  { NULL, NULL, "2023-10-11T14:32:52Z", 0, "2023-10-11T14:32:52.000Z" },
  { NULL, NULL, "2023-10-11T14:32:52.123+02:00", 0,
    "2023-10-11T12:32:52.123Z" },
  { NULL, NULL, "2023-10-11T14:32:52.123456-0130", 0,
    "2023-10-11T16:02:52.123456Z" },
  { "Europe/Berlin", NULL, "2023-10-11T14:32:52", 0,
    "2023-10-11T12:32:52.000Z" },
  { "Europe/Berlin", NULL, "2023-10-11T14:32:52.5Z", 0,
    "2023-10-11T14:32:52.500Z" },
  { NULL, NULL, "2023-10-11T14:32:52.123456789Z", 0,
    "2023-10-11T14:32:52.123456Z" },
  /* log4j and oslo */
  { "+05:30", NULL, "2015-07-29 17:41:44,747", 0,
    "2015-07-29T12:11:44.747Z" },
  { NULL, NULL, "2017-05-16 00:00:00.008", 0, "2017-05-16T00:00:00.008Z" },
  /* common log format */
  { NULL, NULL, "10/Oct/2000:13:55:36 -0700", 0,
    "2000-10-10T20:55:36.000Z" },
  { "Asia/Tokyo", NULL, "04/Dec/2023:04:47:44 +0000", 0,
    "2023-12-04T04:47:44.000Z" },
  /* RFC 3164, year inferred; a December line read in January is last
   * year's, a January line read on Dec 31 is next year's. */
  { NULL, NULL, "Dec  4 04:47:44", REF_JAN, "2023-12-04T04:47:44.000Z" },
  { NULL, NULL, "Jan  9 23:00:01", REF_JAN, "2024-01-09T23:00:01.000Z" },
  { NULL, NULL, "Jan  1 00:00:01", REF_DEC, "2024-01-01T00:00:01.000Z" },
  { NULL, NULL, "Jun 14 15:16:01", REF_DEC, "2023-06-14T15:16:01.000Z" },
  /* Days ahead of the read time in the same month: last year's, not the
   * future (a day of slack for clock skew). */
  { NULL, NULL, "Jan 12 12:00:00", REF_JAN, "2023-01-12T12:00:00.000Z" },
  { NULL, NULL, "Jan 11 11:00:00", REF_JAN, "2024-01-11T11:00:00.000Z" },
  { NULL, NULL, "Dec 31 23:00:00", REF_DEC, "2023-12-31T23:00:00.000Z" },
  { "America/New_York", NULL, "Dec 24 10:00:00", REF_JAN,
    "2023-12-24T15:00:00.000Z" },
  /* apache error 2.2 and 2.4 */
  { NULL, NULL, "Sun Dec 04 04:47:44 2005", 0, "2005-12-04T04:47:44.000Z" },
  { NULL, NULL, "Wed Oct 11 14:32:52.123456 2023", 0,
    "2023-10-11T14:32:52.123456Z" },
  { "Europe/Berlin", NULL, "Wed Oct 11 14:32:52.123 2023", 0,
    "2023-10-11T12:32:52.123Z" },
  /* epochs */
  { NULL, NULL, "1700000000", 0, "2023-11-14T22:13:20.000Z" },
  { NULL, NULL, "1700000000123", 0, "2023-11-14T22:13:20.123Z" },
  { NULL, NULL, "1700000000123456", 0, "2023-11-14T22:13:20.123456Z" },
  { NULL, NULL, "1700000000123456789", 0, "2023-11-14T22:13:20.123456Z" },
  { NULL, NULL, "1700000000.25", 0, "2023-11-14T22:13:20.250Z" },
  /* DST edges, Europe/Berlin 2024: spring forward Mar 31 02:00 -> 03:00,
   * fall back Oct 27 03:00 -> 02:00. */
  { "Europe/Berlin", NULL, "2024-03-31 01:59:59", 0,
    "2024-03-31T00:59:59.000Z" },
  { "Europe/Berlin", NULL, "2024-03-31 02:30:00", 0,
    "2024-03-31T01:30:00.000Z" },   /* in the gap: offset before it */
  { "Europe/Berlin", NULL, "2024-03-31 03:00:00", 0,
    "2024-03-31T01:00:00.000Z" },
  { "Europe/Berlin", NULL, "2024-10-27 02:30:00", 0,
    "2024-10-27T00:30:00.000Z" },   /* repeated hour: first occurrence */
  { "Europe/Berlin", NULL, "2024-10-27 03:00:00", 0,
    "2024-10-27T02:00:00.000Z" },
  { "Europe/Berlin", NULL, "2024-01-15 12:00:00", 0,
    "2024-01-15T11:00:00.000Z" },
  { "America/New_York", NULL, "2024-03-10 03:30:00", 0,
    "2024-03-10T07:30:00.000Z" },
  { "America/New_York", NULL, "2024-11-03 01:30:00", 0,
    "2024-11-03T05:30:00.000Z" },
  /* layouts */
  { NULL, "%d.%m.%Y %H:%M:%S%f", "29.07.2015 17:41:44,747", 0,
    "2015-07-29T17:41:44.747Z" },
  { "Europe/Berlin", "%Y%m%d %T", "20240715 08:00:00", 0,
    "2024-07-15T06:00:00.000Z" },
  { NULL, "%m/%d/%y %I:%M:%S %p", "07/04/21 01:02:03 PM", 0,
    "2021-07-04T13:02:03.000Z" },
  { NULL, "%A, %d %B %Y %H:%M %z", "Friday, 05 January 2024 10:00 +0100", 0,
    "2024-01-05T09:00:00.000Z" },
  { NULL, "%A, %d %B %Y %H:%M:%S %z", "Friday, 05 January 2024 10:00 "
    "+0100", 0, NULL },             /* %S given but no seconds */
  { NULL, "[%F %T%f %Z]", "[2024-02-29 23:59:59.999 UTC]", 0,
    "2024-02-29T23:59:59.999Z" },
  { NULL, "%s", "1700000000", 0, "2023-11-14T22:13:20.000Z" },
  { NULL, "%Y-%j", "2024-060", 0, "2024-02-29T00:00:00.000Z" },
  /* malformed */
  { NULL, NULL, "2023-02-30T00:00:00Z", 0, NULL },
  { NULL, NULL, "2023-10-11T25:00:00Z", 0, NULL },
  { NULL, NULL, "2023-10-11T14:32:52+2", 0, NULL },
  { NULL, NULL, "Foo  4 04:47:44", REF_JAN, NULL },
  { NULL, NULL, "10/Oct/2000:13:55:36", 0, NULL },
  { NULL, NULL, "12345", 0, NULL },
  { NULL, NULL, "", 0, NULL },
  { NULL, NULL, "2023-10-11T14:32:52Z trailing", 0, NULL },
  { NULL, "%Y-%m-%d", "2024-13-01", 0, NULL },
};

static void
fmt(int64_t ns, unsigned prec, char *out)
{
  if (prec == SL_TS_US)
    sl_ts_format_us(ns, out);
  else
    sl_time_format_ms(ns, out);
}

static void
test_table(void **state)
{
  size_t i;
  struct sl_tz *tz;
  char err[128], got[64];
  int64_t ns;
  unsigned prec;
  int rc;

  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct tcase *c = &cases[i];

    assert_int_equal(sl_tz_load(c->zone ? c->zone : "UTC", &tz, err,
                                sizeof(err)), 0);
    if (c->layout)
      rc = sl_ts_parse_layout(c->layout, c->in, strlen(c->in), tz, c->ref,
                              &ns, &prec);
    else
      rc = sl_ts_parse_auto(c->in, strlen(c->in), tz, c->ref, &ns, &prec);
    sl_tz_free(tz);
    if (c->want == NULL) {
      if (rc == 0) {
        fmt(ns, prec, got);
        fail_msg("case %zu '%s': want no match, got %s", i, c->in, got);
      }
      continue;
    }
    if (rc != 0)
      fail_msg("case %zu '%s': no match, want %s", i, c->in, c->want);
    fmt(ns, prec, got);
    if (strcmp(got, c->want) != 0)
      fail_msg("case %zu '%s': want %s got %s", i, c->in, c->want, got);
  }
  assert_true(sizeof(cases) / sizeof(cases[0]) >= 30);
}

static void
test_zones(void **state)
{
  struct sl_tz *tz = NULL;
  char err[128];

  (void)state;
  assert_int_equal(sl_tz_load("Europe/Berlin", &tz, err, sizeof(err)), 0);
  /* 2024-07-01T00:00:00Z: CEST */
  assert_int_equal(sl_tz_offset_at(tz, 1719792000), 7200);
  assert_int_equal(sl_tz_offset_at(tz, 1704067200), 3600);
  sl_tz_free(tz);
  assert_int_equal(sl_tz_load("-03:30", &tz, err, sizeof(err)), 0);
  assert_int_equal(sl_tz_offset_at(tz, 0), -12600);
  sl_tz_free(tz);
  assert_int_equal(sl_tz_load(NULL, &tz, err, sizeof(err)), 0);
  sl_tz_free(tz);
  assert_int_equal(sl_tz_load("Mars/Olympus", &tz, err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "unknown zone"));
  assert_int_equal(sl_tz_load("../etc/passwd", &tz, err, sizeof(err)),
                   SL_ECONFIG);
  assert_int_equal(sl_tz_load("+25:00", &tz, err, sizeof(err)), SL_ECONFIG);
  /* A file that is not TZif. */
  assert_int_equal(sl_tz_load("zone1970.tab", &tz, err, sizeof(err)),
                   SL_ECONFIG);
}

static void
test_conf(void **state)
{
  struct sl_ts_conf *c = NULL;
  json_t *in;
  char err[256];
  int64_t ns;
  unsigned prec;
  char got[64];

  (void)state;
  in = json_loads("{\"timezone\":\"UTC\",\"timestamp\":{\"field\":\"t\","
                  "\"layouts\":[\"%d.%m.%Y %T\",\"%s\"],"
                  "\"timezone\":\"Europe/Berlin\"}}", 0, NULL);
  assert_int_equal(sl_ts_conf_new(in, &c, err, sizeof(err)), 0);
  json_decref(in);
  assert_string_equal(c->field, "t");
  assert_int_equal(sl_ts_parse_field(c, "15.01.2024 12:00:00", 19, 0, &ns,
                                     &prec), 0);
  fmt(ns, prec, got);
  assert_string_equal(got, "2024-01-15T11:00:00.000Z");
  /* Built-in formats after the layouts. */
  assert_int_equal(sl_ts_parse_field(c, "2024-01-15T12:00:00Z", 20, 0, &ns,
                                     &prec), 0);
  assert_int_equal(sl_ts_parse_field(c, "nope", 4, 0, &ns, &prec),
                   SL_EPARSE);
  sl_ts_conf_free(c);
  in = json_loads("{\"timestamp\":{\"layouts\":[\"%Q\"]}}", 0, NULL);
  assert_int_equal(sl_ts_conf_new(in, &c, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "unknown conversion"));
  json_decref(in);
  in = json_loads("{\"timezone\":\"Nowhere/Land\"}", 0, NULL);
  assert_int_equal(sl_ts_conf_new(in, &c, err, sizeof(err)), SL_ECONFIG);
  json_decref(in);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table),
    cmocka_unit_test(test_zones),
    cmocka_unit_test(test_conf),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
