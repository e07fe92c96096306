#include "sl_json.h"
#include "sl_err.h"

#include <stdint.h>
#include <string.h>

/* 1 for bytes that cannot be copied verbatim: controls, '"', '\\' and every
 * non-ASCII byte (validated separately). */
static const unsigned char needs_care[256] = {
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
};

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid
 * (overlongs, surrogates and code points past U+10FFFF are invalid). */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
  unsigned c = s[0];

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
      return 0;
    if (c == 0xE0 && s[1] < 0xA0)
      return 0;
    if (c == 0xED && s[1] >= 0xA0)
      return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
        (s[3] & 0xC0) != 0x80)
      return 0;
    if (c == 0xF0 && s[1] < 0x90)
      return 0;
    if (c == 0xF4 && s[1] >= 0x90)
      return 0;
    return 4;
  }
  return 0;
}

size_t
sl_utf8_valid_prefix(const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, k;

  while (i < n) {
    k = utf8_seq(u + i, n - i);
    if (k == 0)
      break;
    i += k;
  }
  return i;
}

int
sl_json_escape(struct sl_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run, k;
  char esc[6];
  int rc;

  /* Worst case every byte grows to 6; reserve the common case up front. */
  rc = sl_buf_reserve(b, n + 16);
  if (rc)
    return rc;
  while (i < n) {
    run = i;
    while (run < n && !needs_care[u[run]])
      run++;
    if (run > i) {
      rc = sl_buf_append(b, s + i, run - i);
      if (rc)
        return rc;
      i = run;
      if (i == n)
        break;
    }
    if (u[i] >= 0x80) {
      k = utf8_seq(u + i, n - i);
      if (k == 0) {
        rc = sl_buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
        i++;
      } else {
        rc = sl_buf_append(b, s + i, k);
        i += k;
      }
      if (rc)
        return rc;
      continue;
    }
    switch (u[i]) {
    case '"':  rc = sl_buf_append(b, "\\\"", 2); break;
    case '\\': rc = sl_buf_append(b, "\\\\", 2); break;
    case '\n': rc = sl_buf_append(b, "\\n", 2); break;
    case '\r': rc = sl_buf_append(b, "\\r", 2); break;
    case '\t': rc = sl_buf_append(b, "\\t", 2); break;
    case '\b': rc = sl_buf_append(b, "\\b", 2); break;
    case '\f': rc = sl_buf_append(b, "\\f", 2); break;
    default:
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[u[i] >> 4];
      esc[5] = hex[u[i] & 15];
      rc = sl_buf_append(b, esc, 6);
      break;
    }
    if (rc)
      return rc;
    i++;
  }
  return SL_OK;
}

int
sl_json_str(struct sl_buf *b, const char *s, size_t n)
{
  int rc = sl_buf_append_byte(b, '"');
  if (rc == 0)
    rc = sl_json_escape(b, s, n);
  if (rc == 0)
    rc = sl_buf_append_byte(b, '"');
  return rc;
}
