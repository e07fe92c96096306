#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sl_err.h"
#include "sl_test.h"

static void
test_names_and_messages(void **state)
{
  (void)state;
  assert_string_equal(sl_errname(SL_OK), "SL_OK");
  assert_string_equal(sl_errname(SL_EAGAIN), "SL_EAGAIN");
  assert_string_equal(sl_errname(SL_ECONFIG), "SL_ECONFIG");
  assert_string_equal(sl_errname(SL_EINTERNAL), "SL_EINTERNAL");
  assert_string_equal(sl_strerror(SL_OK), "success");
  assert_string_equal(sl_strerror(SL_E2BIG), "value over its configured limit");
  assert_string_equal(sl_strerror(SL_EPROTO), "protocol violation");
}

static void
test_errno_passthrough(void **state)
{
  (void)state;
  /* Codes mirror errno so libuv results pass through unchanged. */
  assert_int_equal(SL_ENOENT, -ENOENT);
  assert_int_equal(SL_EAGAIN, -EAGAIN);
  /* An errno that is not in the table still gets its libc text. */
  assert_string_equal(sl_strerror(-EACCES), strerror(EACCES));
  assert_string_equal(sl_errname(-EACCES), "SL_E?");
  assert_string_equal(sl_strerror(-99999), "unknown error");
  /* libuv's end-of-stream code reads as text, not "unknown error"
   * (regression: "receiver closed the connection" logged SL_E?). */
  assert_string_equal(sl_errname(-4095), "SL_EOF");
  assert_string_equal(sl_strerror(-4095), "end of file (peer closed)");
  assert_string_equal(sl_strerror(12345), "unknown error");
}

static void
test_codes_distinct(void **state)
{
  static const int codes[] = {
#define XX(name, val, msg) SL_##name,
    SL_ERR_MAP(XX)
#undef XX
  };
  size_t i, j, n = sizeof(codes) / sizeof(codes[0]);

  (void)state;
  for (i = 0; i < n; i++) {
    assert_true(codes[i] <= 0);
    assert_string_not_equal(sl_errname(codes[i]), "SL_E?");
    for (j = i + 1; j < n; j++)
      assert_int_not_equal(codes[i], codes[j]);
  }
}

SL_TEST_MAIN(NULL, NULL,
             cmocka_unit_test(test_names_and_messages),
             cmocka_unit_test(test_errno_passthrough),
             cmocka_unit_test(test_codes_distinct))
