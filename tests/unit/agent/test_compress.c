/* compress.c: whatever the backend (ISA-L, libdeflate, zlib), the output
 * is a zlib stream that zlib's own inflate restores exactly, for every
 * level, including data that does not compress (the bound must hold). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "compress.h"
#include "sl_err.h"

static void
round_trip(int level, const unsigned char *in, size_t n)
{
  struct sl_compress *c = NULL;
  unsigned char *z, *back;
  size_t bound, zn;
  uLongf bn = (uLongf)n;

  assert_int_equal(sl_compress_new(level, &c), SL_OK);
  bound = sl_compress_bound(c, n);
  z = malloc(bound);
  back = malloc(n ? n : 1);
  assert_non_null(z);
  assert_non_null(back);
  zn = sl_compress_zlib(c, in, n, z, bound);
  assert_true(zn > 0 && zn <= bound);
  assert_int_equal(uncompress(back, &bn, z, (uLong)zn), Z_OK);
  assert_int_equal(bn, n);
  assert_memory_equal(back, in, n);
  free(z);
  free(back);
  sl_compress_free(c);
}

static void
test_every_level_is_zlib(void **state)
{
  size_t n = 3u << 20, i, o = 0;
  unsigned char *text = malloc(n), *noise = malloc(n);
  uint64_t x = 88172645463325252ull;
  int level;

  (void)state;
  assert_non_null(text);
  assert_non_null(noise);
  while (o < n) {
    char line[160];
    int k = snprintf(line, sizeof(line),
                     "{\"@timestamp\":\"2026-12-05T22:00:%02zu.000Z\","
                     "\"message\":\"GET /api/%zu\",\"event\":{\"id\":"
                     "\"%016zx\"}}\n", o % 60, o % 997, o * 2654435761u);
    for (i = 0; i < (size_t)k && o < n; i++)
      text[o++] = (unsigned char)line[i];
  }
  for (i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    noise[i] = (unsigned char)x;
  }
  for (level = 1; level <= 9; level++) {
    round_trip(level, text, n);
    round_trip(level, noise, n);
    round_trip(level, text, 1);
  }
  free(text);
  free(noise);
}

static void
test_level_out_of_range(void **state)
{
  struct sl_compress *c = NULL;

  (void)state;
  assert_int_equal(sl_compress_new(0, &c), SL_EINVAL);
  assert_int_equal(sl_compress_new(10, &c), SL_EINVAL);
  assert_null(c);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_level_is_zlib),
    cmocka_unit_test(test_level_out_of_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
