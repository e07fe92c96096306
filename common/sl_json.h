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

/* Append the escaped contents of s (without surrounding quotes). */
int sl_json_escape(struct sl_buf *b, const char *s, size_t n) SL_WUR;
/* Append "s" with quotes. */
int sl_json_str(struct sl_buf *b, const char *s, size_t n) SL_WUR;
/* Length of the longest prefix of s[0..n) that is valid UTF-8 and does not
 * cut a multibyte sequence; used to truncate long lines safely. */
size_t sl_utf8_valid_prefix(const char *s, size_t n);

#endif
