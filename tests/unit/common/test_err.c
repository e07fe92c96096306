#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <uv.h>

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
  assert_string_equal(sl_errname(-EACCES), "EACCES");
  assert_string_equal(sl_strerror(-99999), "unknown error");
  /* libuv's end-of-stream code reads as text, not "unknown error"
   * (regression: "receiver closed the connection" logged SL_E?). */
  assert_string_equal(sl_errname(-4095), "SL_EOF");
  assert_string_equal(sl_strerror(-4095), "end of file (peer closed)");
  assert_string_equal(sl_strerror(12345), "unknown error");
}

/* Issue 15: error.code was "SL_E?" for EACCES, EMFILE, EROFS, EADDRINUSE,
 * ENOTDIR, and a DNS failure (UV_EAI_NONAME) read "Unknown error 3008". */
static void
test_every_errno_uv_curl_named(void **state)
{
  static const struct { int code; const char *name; } want[] = {
    {-EACCES, "EACCES"}, {-EMFILE, "EMFILE"}, {-ENFILE, "ENFILE"},
    {-EROFS, "EROFS"}, {-EADDRINUSE, "EADDRINUSE"}, {-ENOTDIR, "ENOTDIR"},
    {UV_EAI_NONAME, "UV_EAI_NONAME"}, {UV_EAI_AGAIN, "UV_EAI_AGAIN"},
    {UV_ECHARSET, "UV_ECHARSET"},
  };
  size_t i;
  int e;

  (void)state;
  for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    assert_string_equal(sl_errname(want[i].code), want[i].name);
  assert_string_equal(sl_strerror(UV_EAI_NONAME), uv_strerror(UV_EAI_NONAME));
  assert_null(strstr(sl_strerror(UV_EAI_NONAME), "Unknown"));
  /* Every errno libc knows has a name and a message (Linux leaves a few
   * numbers unused: 41, 58). */
  for (e = 1; e < 134; e++) {
    if (strncmp(strerror(e), "Unknown error", 13) == 0)
      continue;
    assert_string_not_equal(sl_errname(-e), "SL_E?");
    assert_null(strstr(sl_strerror(-e), "nknown error"));
  }
  /* libcurl results, carried as SL codes. */
  assert_string_equal(sl_errname(sl_err_curl(6)), "CURLE_COULDNT_RESOLVE_HOST");
  assert_string_equal(sl_strerror(sl_err_curl(6)), "Couldn't resolve host name");
  assert_string_equal(sl_errname(sl_err_curl(28)), "CURLE_OPERATION_TIMEDOUT");
  assert_int_equal(sl_err_curl(0), SL_OK);
  for (e = 1; e < 100; e++) {
    assert_true(sl_err_curl(e) < 0);
    assert_string_not_equal(sl_errname(sl_err_curl(e)), "SL_E?");
  }
  /* Still unknown, still never NULL. */
  assert_string_equal(sl_errname(-99999), "SL_E?");
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
             cmocka_unit_test(test_every_errno_uv_curl_named),
             cmocka_unit_test(test_codes_distinct))
