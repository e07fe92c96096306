/* level.h - log.level normalisation shared by every parser.
 *
 * Canonical names (lower case, what log.level holds): trace, debug, info,
 * notice, warn, error, critical, alert, emergency, fatal. The synonyms
 * folded into them (case-insensitive):
 *   trace      trace trc finest finer verbose vrb t v
 *   debug      debug dbg fine config d
 *   info       info inf information informational i
 *   notice     notice
 *   warn       warn warning wrn w
 *   error      error err eror severe e
 *   critical   critical crit
 *   alert      alert
 *   emergency  emergency emerg panic
 *   fatal      fatal ftl f
 * plus bunyan/pino numbers 10 20 30 40 50 60 (trace .. fatal). Anything
 * else is not a level: parsers then keep the value as written (JSON) or
 * set no level (line scan). Syslog severities 0-7 map through
 * sl_level_from_syslog. The returned strings are static.
 */
#ifndef SL_AGENT_LEVEL_H
#define SL_AGENT_LEVEL_H

#include <stddef.h>

/* The canonical name for [s, s+n), or NULL if it is not a known level. */
const char *sl_level_norm(const char *s, size_t n);

/* Syslog severity 0..7 (RFC 5424 table 2) -> emergency alert critical
 * error warn notice info debug; NULL outside 0..7. */
const char *sl_level_from_syslog(int severity);

/* A level word at the start of a raw line: optional spaces, then either
 * "[word]" / "<word>" / "(word)" in any case, or an upper-case word
 * followed by ':', ' ', or the end ("ERROR: x", "WARN  x", "[info] x").
 * The canonical name, or NULL. */
const char *sl_level_scan(const char *line, size_t len);

#endif
