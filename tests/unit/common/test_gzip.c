#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "sl_err.h"
#include "sl_gzip.h"

/* gunzip src (one member) into a fresh buffer of at most cap bytes. */
static size_t
gunzip(const char *src, size_t len, char *dst, size_t cap)
{
  z_stream z;
  size_t n;

  memset(&z, 0, sizeof z);
  assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = (Bytef *)(uintptr_t)src;
  z.avail_in = (uInt)len;
  z.next_out = (Bytef *)dst;
  z.avail_out = (uInt)cap;
  assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
  assert_int_equal(z.avail_in, 0);
  n = z.total_out;
  inflateEnd(&z);
  return n;
}

/* Many bodies through one state: each is a complete member that
 * gunzips to its input, appended after what out held. */
static void
test_reuse(void **state)
{
  struct sl_gzip g;
  struct sl_buf out;
  char *in = malloc(1 << 20), *back = malloc(1 << 20);
  size_t i, k, n;

  (void)state;
  for (i = 0; i < (1u << 20); i++)
    in[i] = (char)("sluice {\"a\":1}\n"[i % 16] + (i / 4096) % 3);
  sl_gzip_init(&g, 1);
  sl_buf_init(&out, 0);
  for (k = 0; k < 20; k++) {
    size_t len = (k * 77777) % (1u << 20);

    sl_buf_reset(&out);
    assert_int_equal(sl_buf_append(&out, "HDR", 3), 0);
    assert_int_equal(sl_gzip_append(&g, in, len, &out), 0);
    assert_memory_equal(out.p, "HDR", 3);
    assert_int_equal(out.p[out.len], '\0');
    n = gunzip(out.p + 3, out.len - 3, back, 1 << 20);
    assert_int_equal(n, len);
    assert_memory_equal(back, in, len);
  }
  sl_gzip_end(&g);
  sl_gzip_end(&g);             /* harmless twice */
  sl_buf_free(&out);
  free(in);
  free(back);
}

/* A cap too small for the worst case fails with out unchanged. */
static void
test_cap(void **state)
{
  struct sl_gzip g;
  struct sl_buf out;
  char in[4096];

  (void)state;
  memset(in, 'x', sizeof in);
  sl_gzip_init(&g, 42);        /* out of range: zlib's default level */
  sl_buf_init(&out, 100);
  assert_int_equal(sl_buf_append(&out, "keep", 4), 0);
  assert_int_equal(sl_gzip_append(&g, in, sizeof in, &out), SL_E2BIG);
  assert_int_equal(out.len, 4);
  assert_memory_equal(out.p, "keep", 4);
  sl_gzip_end(&g);
  sl_buf_free(&out);
}

/* Level 0 means stored (Z_NO_COMPRESSION), not zlib's default: the
 * member is bigger than its very compressible input and gunzips back. */
static void
test_level0_stored(void **state)
{
  struct sl_gzip g;
  struct sl_buf out;
  char in[4096], back[4096];
  size_t stored;

  (void)state;
  memset(in, 'x', sizeof in);
  sl_buf_init(&out, 0);
  sl_gzip_init(&g, 0);
  assert_int_equal(sl_gzip_append(&g, in, sizeof in, &out), 0);
  stored = out.len;
  assert_true(stored > sizeof in);
  assert_int_equal(gunzip(out.p, out.len, back, sizeof back), sizeof in);
  assert_memory_equal(back, in, sizeof in);
  sl_gzip_end(&g);
  /* Level 1 does compress the same bytes. */
  sl_buf_reset(&out);
  sl_gzip_init(&g, 1);
  assert_int_equal(sl_gzip_append(&g, in, sizeof in, &out), 0);
  assert_true(out.len < 100);
  sl_gzip_end(&g);
  sl_buf_free(&out);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reuse),
    cmocka_unit_test(test_cap),
    cmocka_unit_test(test_level0_stored),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
