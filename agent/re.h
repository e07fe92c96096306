/* re.h - PCRE2 (8-bit, JIT) for the regex parser and correlation rules.
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

#endif
