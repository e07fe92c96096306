/* re.h - PCRE2 (8-bit, JIT): the regex parser and correlation rules
 * (sl_re_*), and the line stages: multiline patterns, include/exclude_lines
 * and redaction rules (struct sl_rx, sl_rx_*).
 *
 * A compiled pattern is immutable and shared by all parse workers; match
 * data is per thread (pcre2_match_data is written by every match), taken
 * from a thread-local cache that lives until the thread exits.
 */
#ifndef SL_AGENT_RE_H
#define SL_AGENT_RE_H

#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Compile `pattern` (UTF mode off: log lines are bytes) and JIT it when
 * the platform supports JIT. NULL and a message ("<what>: <pcre2 error>
 * at offset N") in err on failure. */
pcre2_code *sl_re_compile(const char *pattern, const char *what, char *err,
                          size_t errlen);

/* This thread's match data, large enough for any pattern sl_re_compile
 * accepted (SL_RE_MAX_GROUPS); NULL when out of memory. */
#define SL_RE_MAX_GROUPS 255
pcre2_match_data *sl_re_md(void);

/* Match against [s, s+n): the number of pairs set (> 0) or <= 0 for no
 * match / error. */
int sl_re_match(const pcre2_code *re, const char *s, size_t n,
                pcre2_match_data *md);

/* The line stages' patterns are compiled with UTF and MATCH_INVALID_UTF:
 * log lines are not always valid UTF-8 and must still match (and never
 * make the match fail). A struct sl_rx is read-only after compiling; each
 * thread brings its own match data (sl_rx_md_new). */
struct sl_rx {
  pcre2_code *re;
};

/* Compile; SL_ECONFIG with "pattern '...': <pcre2 message> at offset N". */
int sl_rx_compile(struct sl_rx *rx, const char *pattern, char *err,
                  size_t errlen);
void sl_rx_free(struct sl_rx *rx);
/* Match data big enough for any pattern (owned by the caller's thread). */
pcre2_match_data *sl_rx_md_new(void);
/* 1 if rx matches somewhere in [s, s+n), else 0 (errors count as no
 * match). md may be NULL for a one-off (slow: allocates). */
int sl_rx_find(const struct sl_rx *rx, const char *s, size_t n,
               size_t start, pcre2_match_data *md, size_t *mstart,
               size_t *mend);

static inline int
sl_rx_test(const struct sl_rx *rx, const char *s, size_t n,
           pcre2_match_data *md)
{
  return sl_rx_find(rx, s, n, 0, md, NULL, NULL);
}

#endif
