#include "sl_json.h"
#include "sl_err.h"

#include <stdint.h>
#include <string.h>

const unsigned char sl_json_stop[256] = {
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
  1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
};

size_t
sl_utf8_valid_prefix(const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, k;

  while (i < n) {
    k = sl_utf8_seq(u + i, n - i);
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
    while (run < n && !sl_json_stop[u[run]])
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
      k = sl_utf8_seq(u + i, n - i);
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
