#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sl_bufq.h"
#include "sl_err.h"

static void
test_fifo_across_chunks(void **state)
{
  struct sl_bufq q;
  char out[64];
  size_t w;

  (void)state;
  sl_bufq_init(&q, 4, 100);
  assert_int_equal(sl_bufq_len(&q), 0);
  assert_int_equal(sl_bufq_read(&q, out, sizeof(out)), 0);
  assert_int_equal(sl_bufq_write(&q, "hello world", 11, &w), 0);
  assert_int_equal(w, 11);
  assert_int_equal(sl_bufq_write(&q, "!", 1, &w), 0);
  assert_int_equal(sl_bufq_len(&q), 12);
  assert_int_equal(sl_bufq_read(&q, out, 3), 3);
  assert_memory_equal(out, "hel", 3);
  assert_int_equal(sl_bufq_read(&q, out, sizeof(out)), 9);
  assert_memory_equal(out, "lo world!", 9);
  assert_int_equal(sl_bufq_len(&q), 0);
  sl_bufq_free(&q);
}

static void
test_cap_and_eagain(void **state)
{
  struct sl_bufq q;
  char out[16];
  size_t w = 99;

  (void)state;
  sl_bufq_init(&q, 4, 10);
  assert_int_equal(sl_bufq_write(&q, "0123456", 7, &w), 0);
  assert_int_equal(w, 7);
  assert_false(sl_bufq_is_full(&q));
  /* Partial write up to the cap. */
  assert_int_equal(sl_bufq_write(&q, "abcdef", 6, &w), 0);
  assert_int_equal(w, 3);
  assert_true(sl_bufq_is_full(&q));
  assert_int_equal(sl_bufq_len(&q), 10);
  /* Full: backpressure, nothing written. */
  assert_int_equal(sl_bufq_write(&q, "z", 1, &w), SL_EAGAIN);
  assert_int_equal(w, 0);
  /* Draining makes room again. */
  assert_int_equal(sl_bufq_read(&q, out, 5), 5);
  assert_memory_equal(out, "01234", 5);
  assert_int_equal(sl_bufq_write(&q, "XYZ", 3, &w), 0);
  assert_int_equal(w, 3);
  assert_int_equal(sl_bufq_read(&q, out, sizeof(out)), 8);
  assert_memory_equal(out, "56abcXYZ", 8);
  /* A zero-length write is a no-op, not backpressure. */
  assert_int_equal(sl_bufq_write(&q, "", 0, &w), 0);
  sl_bufq_free(&q);
}

static void
test_peek_skip(void **state)
{
  struct sl_bufq q;
  const char *p;
  size_t n, w;

  (void)state;
  sl_bufq_init(&q, 4, 0);
  sl_bufq_peek(&q, &p, &n);
  assert_int_equal(n, 0);
  assert_int_equal(sl_bufq_write(&q, "abcdefghij", 10, &w), 0);
  sl_bufq_peek(&q, &p, &n);
  assert_int_equal(n, 4);
  assert_memory_equal(p, "abcd", 4);
  sl_bufq_skip(&q, 2);
  sl_bufq_peek(&q, &p, &n);
  assert_int_equal(n, 2);
  assert_memory_equal(p, "cd", 2);
  /* Skip across a chunk boundary. */
  sl_bufq_skip(&q, 5);
  assert_int_equal(sl_bufq_len(&q), 3);
  sl_bufq_peek(&q, &p, &n);
  assert_int_equal(n, 1);
  assert_memory_equal(p, "h", 1);
  sl_bufq_skip(&q, 100);
  assert_int_equal(sl_bufq_len(&q), 0);
  sl_bufq_peek(&q, &p, &n);
  assert_int_equal(n, 0);
  /* Reuse after full drain (the spare chunk path). */
  assert_int_equal(sl_bufq_write(&q, "xy", 2, &w), 0);
  sl_bufq_peek(&q, &p, &n);
  assert_int_equal(n, 2);
  assert_memory_equal(p, "xy", 2);
  sl_bufq_free(&q);
}

/* Random interleaving against a flat reference buffer. */
static void
test_random_against_model(void **state)
{
  static unsigned char model[4096], tmp[512], src[512];
  size_t mlen = 0, w, n, i, got;
  uint32_t x = 12345;
  struct sl_bufq q;
  int iter;

  (void)state;
  sl_bufq_init(&q, 37, 3000);
  for (iter = 0; iter < 20000; iter++) {
    x = x * 1103515245u + 12345u;
    n = (x >> 8) % 300;
    if ((x >> 20) % 2) {
      for (i = 0; i < n; i++)
        src[i] = (unsigned char)(iter + i);
      int rc = sl_bufq_write(&q, src, n, &w);
      if (n == 0) {
        assert_int_equal(rc, 0);
      } else if (mlen == 3000) {
        assert_int_equal(rc, SL_EAGAIN);
      } else {
        assert_int_equal(rc, 0);
        assert_int_equal(w, n < 3000 - mlen ? n : 3000 - mlen);
      }
      memcpy(model + mlen, src, w);
      mlen += w;
    } else {
      got = sl_bufq_read(&q, tmp, n);
      assert_int_equal(got, n < mlen ? n : mlen);
      assert_memory_equal(tmp, model, got);
      memmove(model, model + got, mlen - got);
      mlen -= got;
    }
    assert_int_equal(sl_bufq_len(&q), mlen);
  }
  sl_bufq_free(&q);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fifo_across_chunks),
    cmocka_unit_test(test_cap_and_eagain),
    cmocka_unit_test(test_peek_skip),
    cmocka_unit_test(test_random_against_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
