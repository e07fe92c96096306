#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_json.h"

static void
check_escape(const char *in, size_t n, const char *want)
{
  struct sl_buf b;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_json_escape(&b, in, n), 0);
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.p, want, b.len);
  sl_buf_free(&b);
}

static void
test_escape_basic(void **state)
{
  (void)state;
  check_escape("plain", 5, "plain");
  check_escape("", 0, "");
  check_escape("a\"b\\c", 5, "a\\\"b\\\\c");
  check_escape("\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f");
  check_escape("\x01\x1f", 2, "\\u0001\\u001f");
  check_escape("a\0b", 3, "a\\u0000b");
  /* DEL and '/' are legal JSON as they are. */
  check_escape("\x7f/", 2, "\x7f/");
}

static void
test_escape_utf8(void **state)
{
  (void)state;
  /* Valid multibyte passes through. */
  check_escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15,
               "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  /* Lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF,
   * 0xFF: each bad byte becomes one U+FFFD. */
  check_escape("\x80", 1, "\xef\xbf\xbd");
  check_escape("a\xe2\x82", 3, "a\xef\xbf\xbd\xef\xbf\xbd");
  check_escape("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd");
  check_escape("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  check_escape("\xf4\x90\x80\x80", 4,
               "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  check_escape("\xff" "a", 2, "\xef\xbf\xbd" "a");
}

static void
test_str_and_cap(void **state)
{
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_json_str(&b, "x\"y", 3), 0);
  assert_string_equal(b.p, "\"x\\\"y\"");
  sl_buf_free(&b);
  /* The cap applies to escaped output. */
  sl_buf_init(&b, 8);
  assert_int_not_equal(sl_json_str(&b, "\x01\x02", 2), 0);
  sl_buf_free(&b);
}

static void
test_valid_prefix(void **state)
{
  (void)state;
  assert_int_equal(sl_utf8_valid_prefix("abc", 3), 3);
  assert_int_equal(sl_utf8_valid_prefix("ab\xe2\x82\xac", 5), 5);
  /* Cut inside the euro sign: stop before it. */
  assert_int_equal(sl_utf8_valid_prefix("ab\xe2\x82\xac", 4), 2);
  assert_int_equal(sl_utf8_valid_prefix("ab\xe2\x82\xac", 3), 2);
  assert_int_equal(sl_utf8_valid_prefix("a\xff" "b", 3), 1);
  assert_int_equal(sl_utf8_valid_prefix("", 0), 0);
}

/* Independent reference: decode each sequence to a code point and judge it
 * by value (the library judges by byte ranges). Returns the sequence length
 * or 0 when the byte at s must be replaced. */
static size_t
ref_seq(const unsigned char *s, size_t n)
{
  unsigned len, i;
  uint32_t cp, min;

  if (s[0] < 0x80)
    return 1;
  if ((s[0] & 0xE0) == 0xC0) {
    len = 2; cp = s[0] & 0x1F; min = 0x80;
  } else if ((s[0] & 0xF0) == 0xE0) {
    len = 3; cp = s[0] & 0x0F; min = 0x800;
  } else if ((s[0] & 0xF8) == 0xF0) {
    len = 4; cp = s[0] & 0x07; min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

static size_t
ref_replace(const unsigned char *in, size_t n, unsigned char *out)
{
  size_t i = 0, o = 0, k;

  while (i < n) {
    k = ref_seq(in + i, n - i);
    if (k == 0) {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, in + i, k);
      o += k;
      i += k;
    }
  }
  return o;
}

static uint64_t rng_state = 0x243F6A8885A308D3ULL;

static uint32_t
rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

/* Bytes biased toward the interesting ranges. */
static size_t
gen_bytes(unsigned char *p, size_t max)
{
  static const unsigned char special[] = {
    0x00, 0x01, 0x1f, '"', '\\', '\n', 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2,
    0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x90, 0x8f
  };
  size_t n = rnd() % max, i;

  for (i = 0; i < n; i++) {
    switch (rnd() % 3) {
    case 0: p[i] = (unsigned char)(0x20 + rnd() % 0x5f); break;
    case 1: p[i] = special[rnd() % sizeof(special)]; break;
    default: p[i] = (unsigned char)rnd(); break;
    }
  }
  return n;
}

static size_t
put_cp(unsigned char *p, uint32_t cp)
{
  if (cp < 0x80) {
    p[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    p[0] = (unsigned char)(0xC0 | (cp >> 6));
    p[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    p[0] = (unsigned char)(0xE0 | (cp >> 12));
    p[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    p[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  p[0] = (unsigned char)(0xF0 | (cp >> 18));
  p[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  p[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  p[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Random valid UTF-8 (all code point classes, controls included). */
static size_t
gen_utf8(unsigned char *p, size_t max_cps)
{
  size_t n = rnd() % max_cps, i, o = 0;
  uint32_t cp;

  for (i = 0; i < n; i++) {
    switch (rnd() % 4) {
    case 0: cp = rnd() % 0x80; break;
    case 1: cp = 0x80 + rnd() % 0x780; break;
    case 2: cp = 0x800 + rnd() % 0xF800; break;
    default: cp = 0x10000 + rnd() % 0x100000; break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
      cp = 'S';
    o += put_cp(p + o, cp);
  }
  return o;
}

/* Run sl_json_str and decode with jansson; returns the decoded string. */
static json_t *
roundtrip(const unsigned char *in, size_t n)
{
  struct sl_buf b;
  json_error_t jerr;
  json_t *j;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_json_str(&b, (const char *)in, n), 0);
  j = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (j == NULL)
    fail_msg("jansson rejected our output: %s (%.*s)", jerr.text,
             (int)b.len, b.p);
  assert_true(json_is_string(j));
  sl_buf_free(&b);
  return j;
}

static void
test_differential_random_bytes(void **state)
{
  unsigned char in[256], want[256 * 3];
  size_t n, wn;
  json_t *j;
  int iter;

  (void)state;
  for (iter = 0; iter < 20000; iter++) {
    n = gen_bytes(in, sizeof(in));
    j = roundtrip(in, n);
    wn = ref_replace(in, n, want);
    assert_int_equal(json_string_length(j), wn);
    assert_memory_equal(json_string_value(j), want, wn);
    /* The valid prefix agrees with the reference too. */
    {
      size_t i = 0, k;
      while (i < n && (k = ref_seq(in + i, n - i)) != 0)
        i += k;
      assert_int_equal(sl_utf8_valid_prefix((const char *)in, n), i);
    }
    json_decref(j);
  }
}

static void
test_differential_valid_utf8(void **state)
{
  unsigned char in[64 * 4];
  size_t n;
  json_t *j;
  int iter;

  (void)state;
  for (iter = 0; iter < 20000; iter++) {
    n = gen_utf8(in, 64);
    assert_int_equal(sl_utf8_valid_prefix((const char *)in, n), n);
    j = roundtrip(in, n);
    assert_int_equal(json_string_length(j), n);
    assert_memory_equal(json_string_value(j), in, n);
    json_decref(j);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_escape_basic),
    cmocka_unit_test(test_escape_utf8),
    cmocka_unit_test(test_str_and_cap),
    cmocka_unit_test(test_valid_prefix),
    cmocka_unit_test(test_differential_random_bytes),
    cmocka_unit_test(test_differential_valid_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
