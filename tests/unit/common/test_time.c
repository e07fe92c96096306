#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "sl_err.h"
#include "sl_time.h"

#define S(x) (x), strlen(x)

struct fixture {
  const char *in;
  int64_t want;  /* ns */
};

/* Values cross-checked with `date -u -d ... +%s%N`. */
static const struct fixture rfc_ok[] = {
  { "1970-01-01T00:00:00Z", 0 },
  { "2024-05-01T12:00:00Z", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01t12:00:00z", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01 12:00:00Z", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01T12:00:00", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01T12:00:00.1Z", 1714564800100000000LL },
  { "2024-05-01T12:00:00.123Z", 1714564800123000000LL },
  { "2024-05-01T12:00:00,123Z", 1714564800123000000LL },
  { "2024-05-01T12:00:00.123456Z", 1714564800123456000LL },
  { "2024-05-01T12:00:00.123456789Z", 1714564800123456789LL },
  { "2024-05-01T12:00:00.1234567891234Z", 1714564800123456789LL },
  { "2024-05-01T14:00:00+02:00", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01T14:00:00+0200", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01T14:00:00+02", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01T06:30:00-05:30", 1714564800LL * SL_NS_PER_SEC },
  { "2024-05-01T12:00:00.5-00:00", 1714564800500000000LL },
  { "2024-05-01T17:45:00.000000001+05:45", 1714564800000000001LL },
  /* Leap years: 2024-02-29 exists, 2000-02-29 exists. */
  { "2024-02-29T00:00:00Z", 1709164800LL * SL_NS_PER_SEC },
  { "2000-02-29T23:59:59Z", 951868799LL * SL_NS_PER_SEC },
  { "2100-03-01T00:00:00Z", 4107542400LL * SL_NS_PER_SEC },
  { "1999-12-31T23:59:59.999Z", 946684799999000000LL },
  /* Before the epoch. */
  { "1969-12-31T23:59:59.5Z", -500000000LL },
  { "1900-01-01T00:00:00Z", -2208988800LL * SL_NS_PER_SEC },
  /* A leap second rolls into the next second. */
  { "2016-12-31T23:59:60Z", 1483228800LL * SL_NS_PER_SEC },
  /* Offset crossing midnight and the year. */
  { "2025-01-01T01:00:00+03:00", 1735682400LL * SL_NS_PER_SEC },
};

static const char *const rfc_bad[] = {
  "", "2024", "2024-05-01", "2024-05-01T", "2024-05-01T12:00",
  "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-05-00T00:00:00Z",
  "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
  "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:00:61Z",
  "2024-05-01T12:00:00ZZ", "2024-05-01T12:00:00Z ", " 2024-05-01T12:00:00Z",
  "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00.", "2024-05-01T12:00:00+",
  "2024-05-01T12:00:00+2", "2024-05-01T12:00:00+02:", "2024-05-01T12:00:00+02:0",
  "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+02:60",
  "2024-05-01T12:00:00+020", "2024-05-01T12:00:00+02:00x",
  "2024-5-01T12:00:00Z", "2024-05-01X12:00:00Z", "2024/05/01T12:00:00Z",
  "2024-05-01T1:00:00Z", "abcd-ef-ghTij:kl:mnZ", "2024-05-01T12:00:00 UTC",
  "2024-05-01T12:00:00Zjunk",
  /* Outside the int64 nanosecond range. */
  "1600-01-01T00:00:00Z", "2300-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
};

static void
test_rfc3339_fixtures(void **state)
{
  size_t i;
  int64_t ns;

  (void)state;
  for (i = 0; i < sizeof(rfc_ok) / sizeof(rfc_ok[0]); i++) {
    ns = 42;
    if (sl_time_parse_rfc3339(S(rfc_ok[i].in), &ns) != 0)
      fail_msg("rejected %s", rfc_ok[i].in);
    if (ns != rfc_ok[i].want)
      fail_msg("%s: got %lld want %lld", rfc_ok[i].in, (long long)ns,
               (long long)rfc_ok[i].want);
    /* parse_any dispatches the same. */
    assert_int_equal(sl_time_parse_any(S(rfc_ok[i].in), &ns), 0);
    assert_true(ns == rfc_ok[i].want);
  }
}

static void
test_rfc3339_rejects(void **state)
{
  size_t i;
  int64_t ns = 7;

  (void)state;
  for (i = 0; i < sizeof(rfc_bad) / sizeof(rfc_bad[0]); i++) {
    if (sl_time_parse_rfc3339(S(rfc_bad[i]), &ns) != SL_EPARSE)
      fail_msg("accepted %s", rfc_bad[i]);
    /* parse_any may read short digit strings as epochs ("2024"). */
    if (strlen(rfc_bad[i]) > 4 && rfc_bad[i][4] == '-')
      assert_int_equal(sl_time_parse_any(S(rfc_bad[i]), &ns), SL_EPARSE);
  }
  assert_true(ns == 7); /* untouched on failure */
  /* Length is honoured: a valid prefix with n cut short fails, and bytes
   * after n are ignored. */
  assert_int_equal(sl_time_parse_rfc3339("2024-05-01T12:00:00Z", 19, &ns), 0);
  assert_true(ns == 1714564800LL * SL_NS_PER_SEC);
  assert_int_equal(sl_time_parse_rfc3339("2024-05-01T12:00:0", 18, &ns),
                   SL_EPARSE);
}

static const struct fixture epoch_ok[] = {
  { "0", 0 },
  { "1714564800", 1714564800LL * SL_NS_PER_SEC },
  { "1714564800.5", 1714564800500000000LL },
  { "1714564800.123456789", 1714564800123456789LL },
  { "1714564800.1234567899", 1714564800123456789LL },
  { "1714564800123", 1714564800123000000LL },
  { "1714564800123.456", 1714564800123456000LL },
  { "1714564800123456", 1714564800123456000LL },
  { "1714564800123456.7", 1714564800123456700LL },
  { "1714564800123456789", 1714564800123456789LL },
  { "1714564800123456789.9", 1714564800123456789LL },
  /* Unit boundaries: < 1e11 s, < 1e14 ms, < 1e17 us. */
  { "9223372036", 9223372036LL * SL_NS_PER_SEC },
  { "100000000000", 100000000000LL * 1000000 },
  { "9223372036854", 9223372036854LL * 1000000 },
  { "100000000000000", 100000000000000LL * 1000 },
  { "9223372036854775", 9223372036854775LL * 1000 },
  { "100000000000000000", 100000000000000000LL },
  { "9223372036854775807", INT64_MAX },
};

static const char *const epoch_bad[] = {
  "", ".", "1.", ".5", "-1", "+1", "1e9", "12a", "1714564800 ", " 1",
  "1714564800.12x", "0x10", "9223372036854775808", "99999999999999999999",
  "1714564800..1", "1,5",
  /* Units whose value does not fit int64 nanoseconds. */
  "9223372037", "99999999999", "99999999999999", "99999999999999999",
  "9223372036.9999999999x",
};

static void
test_epoch(void **state)
{
  size_t i;
  int64_t ns;

  (void)state;
  for (i = 0; i < sizeof(epoch_ok) / sizeof(epoch_ok[0]); i++) {
    if (sl_time_parse_epoch(S(epoch_ok[i].in), &ns) != 0)
      fail_msg("rejected %s", epoch_ok[i].in);
    if (ns != epoch_ok[i].want)
      fail_msg("%s: got %lld want %lld", epoch_ok[i].in, (long long)ns,
               (long long)epoch_ok[i].want);
    assert_int_equal(sl_time_parse_any(S(epoch_ok[i].in), &ns), 0);
    assert_true(ns == epoch_ok[i].want);
  }
  for (i = 0; i < sizeof(epoch_bad) / sizeof(epoch_bad[0]); i++)
    if (sl_time_parse_epoch(S(epoch_bad[i]), &ns) != SL_EPARSE)
      fail_msg("accepted %s", epoch_bad[i]);
}

static void
test_format(void **state)
{
  char out[64];

  (void)state;
  memset(out, 'X', sizeof(out));
  assert_int_equal(sl_time_format_ms(0, out), SL_TIME_RFC3339_MS_LEN);
  assert_string_equal(out, "1970-01-01T00:00:00.000Z");
  assert_int_equal(sl_time_format_ms(1714564800123456789LL, out), 24);
  assert_string_equal(out, "2024-05-01T12:00:00.123Z");
  assert_int_equal(sl_time_format_ns(1714564800123456789LL, out),
                   SL_TIME_RFC3339_NS_LEN);
  assert_string_equal(out, "2024-05-01T12:00:00.123456789Z");
  assert_int_equal(sl_time_format_ns(1714564800000000001LL, out), 30);
  assert_string_equal(out, "2024-05-01T12:00:00.000000001Z");
  /* Before the epoch: floor, not truncation toward zero. */
  sl_time_format_ms(-1, out);
  assert_string_equal(out, "1969-12-31T23:59:59.999Z");
  sl_time_format_ns(-500000000LL, out);
  assert_string_equal(out, "1969-12-31T23:59:59.500000000Z");
  sl_time_format_ms(951868799LL * SL_NS_PER_SEC, out);
  assert_string_equal(out, "2000-02-29T23:59:59.000Z");
  sl_time_format_ms(INT64_MAX, out);
  assert_string_equal(out, "2262-04-11T23:47:16.854Z");
  sl_time_format_ms(INT64_MIN, out);
  assert_string_equal(out, "1677-09-21T00:12:43.145Z");
}

static uint64_t rs = 0x9E3779B97F4A7C15ULL;

static uint64_t
rnd(void)
{
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

/* Random instants 1970..2100: format/parse round trip, and agreement with
 * the C library's gmtime_r for the calendar fields. */
static void
test_roundtrip_random(void **state)
{
  const int64_t span = 4102444800LL; /* 2100-01-01 in seconds */
  char out[64], want[64];
  int64_t ns, back, secs;
  struct tm tm;
  time_t t;
  int i;

  (void)state;
  for (i = 0; i < 200000; i++) {
    secs = (int64_t)(rnd() % (uint64_t)span);
    ns = secs * SL_NS_PER_SEC + (int64_t)(rnd() % SL_NS_PER_SEC);
    sl_time_format_ns(ns, out);
    assert_int_equal(sl_time_parse_rfc3339(out, 30, &back), 0);
    assert_true(back == ns);
    sl_time_format_ms(ns, out);
    assert_int_equal(sl_time_parse_rfc3339(out, 24, &back), 0);
    assert_true(back == ns - ns % 1000000);
    if (i % 16 == 0) {
      t = (time_t)secs;
      gmtime_r(&t, &tm);
      strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
      assert_memory_equal(out, want, 19);
    }
  }
}

static void
test_civil_days(void **state)
{
  int64_t z, y;
  unsigned m, d;

  (void)state;
  assert_true(sl_time_days_from_civil(1970, 1, 1) == 0);
  assert_true(sl_time_days_from_civil(2000, 3, 1) == 11017);
  assert_true(sl_time_days_from_civil(1969, 12, 31) == -1);
  for (z = -800000; z < 800000; z += 7) {
    sl_time_civil_from_days(z, &y, &m, &d);
    assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
    assert_true(sl_time_days_from_civil(y, m, d) == z);
  }
}

static void
test_clocks(void **state)
{
  int64_t now = sl_time_now_ns();
  uint64_t a = sl_time_mono_ms(), b;

  (void)state;
  /* Sanity: after 2024 and before 2100. */
  assert_true(now > 1704067200LL * SL_NS_PER_SEC);
  assert_true(now < 4102444800LL * SL_NS_PER_SEC);
  b = sl_time_mono_ms();
  assert_true(b >= a);
}

/* Random junk and random cuts of valid stamps never crash, and whatever
 * parses formats back to a stamp that parses to the same instant. */
static void
test_random_junk(void **state)
{
  static const char alphabet[] = "0123456789-:.,TtZz+ x";
  char in[40], out[40];
  int64_t ns, back;
  size_t n, j;
  int i;

  (void)state;
  for (i = 0; i < 300000; i++) {
    n = rnd() % 36;
    if (i % 2) {
      for (j = 0; j < n; j++)
        in[j] = alphabet[rnd() % (sizeof(alphabet) - 1)];
    } else {
      sl_time_format_ns((int64_t)(rnd() % 4102444800ULL) * SL_NS_PER_SEC,
                        in);
      in[rnd() % 30] = alphabet[rnd() % (sizeof(alphabet) - 1)];
      n = 30;
    }
    if (sl_time_parse_any(in, n, &ns) == 0) {
      sl_time_format_ns(ns, out);
      assert_int_equal(sl_time_parse_rfc3339(out, 30, &back), 0);
      assert_true(back == ns);
    }
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rfc3339_fixtures),
    cmocka_unit_test(test_rfc3339_rejects),
    cmocka_unit_test(test_epoch),
    cmocka_unit_test(test_format),
    cmocka_unit_test(test_roundtrip_random),
    cmocka_unit_test(test_civil_days),
    cmocka_unit_test(test_clocks),
    cmocka_unit_test(test_random_junk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
