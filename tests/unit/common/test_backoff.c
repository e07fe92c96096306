#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sl_backoff.h"

static void
test_bounds_grow_then_cap(void **state)
{
  struct sl_backoff b;
  uint64_t d, ceil, maxseen;
  int attempt, i;

  (void)state;
  sl_backoff_init(&b, 100, 5000);
  for (attempt = 0; attempt < 40; attempt++) {
    ceil = 100ULL << (attempt < 10 ? attempt : 10);
    if (ceil > 5000)
      ceil = 5000;
    d = sl_backoff_next(&b);
    assert_true(d <= ceil);
    assert_int_equal(b.attempt, (uint32_t)attempt + 1);
  }
  /* At the cap, many draws stay in [0, cap] and actually spread over it
   * (full jitter, not a fixed value). */
  maxseen = 0;
  uint64_t minseen = UINT64_MAX;
  for (i = 0; i < 2000; i++) {
    d = sl_backoff_next(&b);
    assert_true(d <= 5000);
    if (d > maxseen)
      maxseen = d;
    if (d < minseen)
      minseen = d;
  }
  assert_true(maxseen > 4000);
  assert_true(minseen < 1000);
}

static void
test_first_attempt_within_base(void **state)
{
  struct sl_backoff b;
  int i;

  (void)state;
  for (i = 0; i < 1000; i++) {
    sl_backoff_init(&b, 50, 1000000);
    assert_true(sl_backoff_next(&b) <= 50);
    assert_true(sl_backoff_next(&b) <= 100);
    assert_true(sl_backoff_next(&b) <= 200);
  }
}

static void
test_reset(void **state)
{
  struct sl_backoff b;
  int i;

  (void)state;
  sl_backoff_init(&b, 10, 100000);
  for (i = 0; i < 20; i++)
    (void)sl_backoff_next(&b);
  sl_backoff_reset(&b);
  assert_int_equal(b.attempt, 0);
  for (i = 0; i < 500; i++) {
    sl_backoff_reset(&b);
    assert_true(sl_backoff_next(&b) <= 10);
  }
}

/* The ceiling min(cap, base * 2^attempt), worked out without doubling:
 * base * 2^a <= cap exactly when base <= cap >> a. */
static uint64_t
expected_ceil(uint64_t base, uint64_t cap, uint32_t attempt)
{
  if (attempt >= 64 || base > (cap >> attempt))
    return cap;
  return base << attempt;
}

/* Draws at `attempt` stay within the ceiling and reach its upper half.
 * Without the overflow guard in sl_backoff_next the doubling wraps near
 * 2^64 (to 0 for an even base), the ceiling collapses and no draw comes
 * near the cap. 64 full-jitter draws all landing in the lower half by
 * chance: 2^-64. */
static void
check_attempt(uint64_t base, uint64_t cap, uint32_t attempt)
{
  struct sl_backoff b;
  uint64_t ceil = expected_ceil(base, cap, attempt), d, maxseen = 0;
  int i;

  sl_backoff_init(&b, base, cap);
  for (i = 0; i < 64; i++) {
    b.attempt = attempt;
    d = sl_backoff_next(&b);
    assert_true(d <= ceil);
    if (d > maxseen)
      maxseen = d;
  }
  if (ceil > 1)
    assert_true(maxseen > ceil / 2);
}

static void
test_huge_attempts_no_overflow(void **state)
{
  static const uint64_t caps[][2] = {
    {1000, UINT64_MAX},          /* even base: wraps to 0 unguarded */
    {3, UINT64_MAX - 1},         /* odd base: wraps to a small value */
    {1000, UINT64_MAX / 2},
    {1, 1},
  };
  struct sl_backoff b;
  uint32_t attempt;
  size_t k;

  (void)state;
  for (k = 0; k < sizeof(caps) / sizeof(caps[0]); k++)
    for (attempt = 0; attempt <= 200; attempt++)
      check_attempt(caps[k][0], caps[k][1], attempt);
  check_attempt(1000, UINT64_MAX, UINT32_MAX - 1);
  /* The attempt counter saturates instead of wrapping to 0. */
  sl_backoff_init(&b, 1, 1);
  b.attempt = UINT32_MAX;
  assert_true(sl_backoff_next(&b) <= 1);
  assert_int_equal(b.attempt, UINT32_MAX);
}

static void
test_seeds_differ(void **state)
{
  struct sl_backoff a, b;

  (void)state;
  sl_backoff_init(&a, 1, 1);
  sl_backoff_init(&b, 1, 1);
  /* Same moment, different addresses: different streams. */
  assert_true(a.rng != b.rng);
  assert_true(a.rng != 0 && b.rng != 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bounds_grow_then_cap),
    cmocka_unit_test(test_first_attempt_within_base),
    cmocka_unit_test(test_reset),
    cmocka_unit_test(test_huge_attempts_no_overflow),
    cmocka_unit_test(test_seeds_differ),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
