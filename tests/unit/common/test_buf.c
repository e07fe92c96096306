#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sl_buf.h"
#include "sl_err.h"

static void
test_append_and_nul(void **state)
{
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_buf_append(&b, "abc", 3), 0);
  assert_int_equal(sl_buf_append_str(&b, "def"), 0);
  assert_int_equal(sl_buf_append_byte(&b, 'g'), 0);
  assert_int_equal(b.len, 7);
  assert_string_equal(b.p, "abcdefg");
  sl_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.p, "");
  sl_buf_free(&b);
  assert_null(b.p);
}

static void
test_cap_enforced(void **state)
{
  struct sl_buf b;
  int i;

  (void)state;
  sl_buf_init(&b, 10);
  assert_int_equal(sl_buf_append(&b, "0123456789", 10), 0);
  /* Over the cap fails and leaves the contents unchanged. */
  assert_int_equal(sl_buf_append(&b, "x", 1), SL_E2BIG);
  assert_int_equal(sl_buf_append_byte(&b, 'x'), SL_E2BIG);
  assert_int_equal(sl_buf_printf(&b, "%d", 1), SL_E2BIG);
  assert_int_equal(sl_buf_append_be32(&b, 1), SL_E2BIG);
  assert_int_equal(b.len, 10);
  assert_memory_equal(b.p, "0123456789", 11);
  /* Doubling never allocates far beyond the cap. */
  assert_true(b.cap <= 11);
  sl_buf_consume(&b, 4);
  assert_string_equal(b.p, "456789");
  assert_int_equal(sl_buf_append(&b, "abcde", 5), SL_E2BIG);
  assert_int_equal(sl_buf_append(&b, "abcd", 4), 0);
  assert_string_equal(b.p, "456789abcd");
  sl_buf_consume(&b, 100);
  assert_int_equal(b.len, 0);
  sl_buf_free(&b);

  /* Byte at a time up to the cap: the fast path respects it too. */
  sl_buf_init(&b, 300);
  for (i = 0; i < 300; i++)
    assert_int_equal(sl_buf_append_byte(&b, 'a'), 0);
  assert_int_equal(sl_buf_append_byte(&b, 'a'), SL_E2BIG);
  assert_int_equal(b.len, 300);
  sl_buf_free(&b);
}

static void
test_take(void **state)
{
  struct sl_buf b;
  size_t len = 99;
  char *p;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_buf_append_str(&b, "hello"), 0);
  p = sl_buf_take(&b, &len);
  assert_int_equal(len, 5);
  assert_string_equal(p, "hello");
  free(p);
  assert_null(b.p);
  assert_int_equal(b.len, 0);
  /* Reusable after take. */
  assert_int_equal(sl_buf_append_str(&b, "again"), 0);
  assert_string_equal(b.p, "again");
  sl_buf_free(&b);
  /* Take of an empty buffer gives an empty string, not NULL. */
  p = sl_buf_take(&b, &len);
  assert_non_null(p);
  assert_int_equal(len, 0);
  assert_string_equal(p, "");
  free(p);
}

static void
test_be32_and_numbers(void **state)
{
  static const unsigned char want[] = { 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1 };
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_buf_append_be32(&b, 0x12345678u), 0);
  assert_int_equal(sl_buf_append_be32(&b, 1), 0);
  assert_int_equal(b.len, 8);
  assert_memory_equal(b.p, want, 8);
  sl_buf_reset(&b);
  assert_int_equal(sl_buf_append_u64(&b, 0), 0);
  assert_int_equal(sl_buf_append_byte(&b, ' '), 0);
  assert_int_equal(sl_buf_append_u64(&b, UINT64_MAX), 0);
  assert_int_equal(sl_buf_append_byte(&b, ' '), 0);
  assert_int_equal(sl_buf_append_i64(&b, INT64_MIN), 0);
  assert_int_equal(sl_buf_append_byte(&b, ' '), 0);
  assert_int_equal(sl_buf_append_i64(&b, -42), 0);
  assert_string_equal(b.p,
    "0 18446744073709551615 -9223372036854775808 -42");
  sl_buf_free(&b);
}

static void
test_printf(void **state)
{
  struct sl_buf b;
  char big[1000];

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_buf_printf(&b, "%s=%d", "x", 42), 0);
  assert_int_equal(sl_buf_printf(&b, ",%05.1f", 3.14159), 0);
  assert_string_equal(b.p, "x=42,003.1");
  assert_int_equal(b.len, strlen("x=42,003.1"));
  /* Growth past the first allocation. */
  memset(big, 'z', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(sl_buf_printf(&b, "[%s]", big), 0);
  assert_int_equal(b.len, 10 + 1001);
  assert_int_equal(b.p[b.len - 1], ']');
  assert_int_equal(b.p[b.len], '\0');
  sl_buf_free(&b);
}

/* The one NULL-tolerant strdup the collector's modules share. */
static void
test_truncate_undoes_partial_append(void **state)
{
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  sl_buf_truncate(&b, 0); /* empty, no allocation: no-op */
  assert_int_equal(sl_buf_append_str(&b, "keep"), 0);
  assert_int_equal(sl_buf_append_str(&b, "-partial"), 0);
  sl_buf_truncate(&b, 4);
  assert_int_equal(b.len, 4);
  assert_string_equal(b.p, "keep");
  sl_buf_truncate(&b, 10); /* longer than len: ignored */
  assert_int_equal(b.len, 4);
  sl_buf_free(&b);
}

static void
test_strdup(void **state)
{
  char *s;

  (void)state;
  assert_null(sl_strdup(NULL));
  s = sl_strdup("abc");
  assert_non_null(s);
  assert_string_equal(s, "abc");
  free(s);
  s = sl_strdup("");
  assert_non_null(s);
  assert_string_equal(s, "");
  free(s);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_append_and_nul),
    cmocka_unit_test(test_cap_enforced),
    cmocka_unit_test(test_take),
    cmocka_unit_test(test_be32_and_numbers),
    cmocka_unit_test(test_printf),
    cmocka_unit_test(test_truncate_undoes_partial_append),
    cmocka_unit_test(test_strdup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
