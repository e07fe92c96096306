/* rx.h - PCRE2 (8-bit, JIT) for the agent's line stages: multiline
 * patterns, include/exclude_lines and redaction rules.
 *
 * A struct sl_rx is compiled once from the config and is read-only after;
 * PCRE2 allows one compiled pattern to be matched from many threads as
 * long as each thread brings its own match data (sl_rx_md_new). Patterns
 * are compiled with UTF and MATCH_INVALID_UTF: log lines are not always
 * valid UTF-8 and must still match (and never make the match fail).
 */
#ifndef SL_AGENT_RX_H
#define SL_AGENT_RX_H

#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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
