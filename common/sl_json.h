/* sl_json.h - writing JSON text directly into an sl_buf, without a DOM.
 *
 * Used on the agent's per-line hot path and by the protocol codec, so these
 * functions never allocate except through the buffer. Input bytes are
 * treated as UTF-8: invalid sequences are replaced by U+FFFD (never
 * rejected, DESIGN.md "Invalid UTF-8 is replaced"), control characters are
 * escaped, and the output is always valid JSON.
 */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>

#include "sl_buf.h"

/* 1 for bytes that end a run of bytes copyable into a JSON string as they
 * are: controls, '"', '\\' and every non-ASCII byte (validated apart). */
extern const unsigned char sl_json_stop[256];

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid
 * (overlongs, surrogates and code points past U+10FFFF are invalid). Inline
 * because the agent's per-line scanner calls it for every non-ASCII byte;
 * one definition keeps every repair in sluice byte-for-byte the same. */
static inline size_t
sl_utf8_seq(const unsigned char *s, size_t n)
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

/* Append the escaped contents of s (without surrounding quotes). */
int sl_json_escape(struct sl_buf *b, const char *s, size_t n) SL_WUR;
/* Append "s" with quotes. */
int sl_json_str(struct sl_buf *b, const char *s, size_t n) SL_WUR;
/* Length of the longest prefix of s[0..n) that is valid UTF-8 and does not
 * cut a multibyte sequence; used to truncate long lines safely. */
size_t sl_utf8_valid_prefix(const char *s, size_t n);

#endif
