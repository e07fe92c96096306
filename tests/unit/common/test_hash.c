#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <xxhash.h>

#include "sl_hash.h"
#include "sl_test.h"

static void
test_known_vectors(void **state)
{
  static const char *inputs[] = {
    "", "a", "abc", "The quick brown fox jumps over the lazy dog",
  };
  char big[5000];
  size_t i;

  (void)state;
  /* Published XXH3 values (xxhash test suite / reference CLI). */
  assert_true(sl_hash64("", 0) == 0x2D06800538D394C2ULL);
  {
    struct sl_hash128 e = sl_hash128("", 0);
    assert_true(e.hi == 0x99AA06D3014798D8ULL);
    assert_true(e.lo == 0x6001C324468D497FULL);
  }
  for (i = 0; i < 5000; i++)
    big[i] = (char)(i * 131 + 7);
  for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
    size_t n = strlen(inputs[i]);
    XXH128_hash_t x = XXH3_128bits(inputs[i], n);
    struct sl_hash128 h = sl_hash128(inputs[i], n);
    assert_true(sl_hash64(inputs[i], n) == XXH3_64bits(inputs[i], n));
    assert_true(h.hi == x.high64);
    assert_true(h.lo == x.low64);
  }
  /* All of xxh3's internal length classes. */
  for (i = 0; i < 5000; i = i < 260 ? i + 1 : i * 2 + 1) {
    XXH128_hash_t x = XXH3_128bits(big, i);
    struct sl_hash128 h = sl_hash128(big, i);
    assert_true(sl_hash64(big, i) == XXH3_64bits(big, i));
    assert_true(h.hi == x.high64 && h.lo == x.low64);
  }
}

static void
test_hex(void **state)
{
  struct sl_hash128 h = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };
  struct sl_hash128 z = { 0, 1 };
  char out[33];

  (void)state;
  memset(out, 'X', sizeof(out));
  sl_hash128_hex(h, out);
  assert_string_equal(out, "0123456789abcdeffedcba9876543210");
  sl_hash128_hex(z, out);
  assert_string_equal(out, "00000000000000000000000000000001");
  sl_hash128_hex(sl_hash128("", 0), out);
  assert_string_equal(out, "99aa06d3014798d86001c324468d497f");
}

static void
test_streaming_matches_oneshot(void **state)
{
  char data[3000];
  size_t i, cut1, cut2;

  (void)state;
  for (i = 0; i < sizeof(data); i++)
    data[i] = (char)(i ^ (i >> 3));
  for (cut1 = 0; cut1 < sizeof(data); cut1 += 97) {
    cut2 = cut1 + (sizeof(data) - cut1) / 3;
    struct sl_hash_state *st = sl_hash128_start();
    assert_non_null(st);
    sl_hash128_update(st, data, cut1);
    sl_hash128_update(st, data + cut1, cut2 - cut1);
    sl_hash128_update(st, data + cut2, sizeof(data) - cut2);
    struct sl_hash128 a = sl_hash128_finish(st);
    struct sl_hash128 b = sl_hash128(data, sizeof(data));
    assert_true(a.hi == b.hi && a.lo == b.lo);
  }
  /* Different inputs, different ids. */
  struct sl_hash128 x = sl_hash128("a", 1), y = sl_hash128("b", 1);
  assert_false(x.hi == y.hi && x.lo == y.lo);
}

SL_TEST_MAIN(NULL, NULL,
             cmocka_unit_test(test_known_vectors),
             cmocka_unit_test(test_hex),
             cmocka_unit_test(test_streaming_matches_oneshot))
