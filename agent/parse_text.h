/* parse_text.h - scanning helpers shared by the text-line parsers
 * (parse_access.c, parse_nginx.c, parse_apache.c, parse_logfmt.c): fixed
 * timestamp layouts, IP literals, integers, level names, and the input's
 * `timezone:` for timestamps written without an offset.
 *
 * Nothing here allocates or keeps pointers: every function reads the bytes
 * it is given and writes into the caller's variables. Safe on parse workers
 * concurrently (the timezone cache is per thread).
 */
#ifndef SL_PARSE_TEXT_H
#define SL_PARSE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "event_writer.h"

/* Month abbreviation "Jan".."Dec" (exact case) at p[0..2]: 1..12, else 0. */
int sl_pt_month(const char *p);

/* Exactly n decimal digits at p; 1 and *v, else 0. */
int sl_pt_digits(const char *p, size_t n, unsigned *v);

/* An unsigned decimal of 1..18 digits, the whole of [s, s+n) (fits an
 * int64 and a JSON number ES reads as long). 1 and *v, else 0. */
int sl_pt_u64(const char *s, size_t n, uint64_t *v);

/* Common/combined log time "10/Oct/2000:13:55:36 -0700" (26 bytes,
 * `%d/%b/%Y:%H:%M:%S %z`), the whole of [s, s+n). 1 and UTC ns, else 0. */
int sl_pt_clf_time(const char *s, size_t n, int64_t *ns);

/* Seconds since the epoch of a civil date and time read as UTC; 0 if a
 * part is out of range (month, day of that month, hour, minute, second
 * up to 60 for a leap second; years 1678..2261, which int64 nanoseconds
 * hold with any offset added), else 1. */
int sl_pt_civil(unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
                unsigned s, int64_t *secs);

/* [s, s+n) is an IPv4 or IPv6 literal (inet_pton), 1 or 0. */
int sl_pt_is_ip(const char *s, size_t n);

/* A level as written ("warn", "E", "crit", "trace3") into its ECS/syslog
 * name, lower case, into out (at least 16 bytes). Returns the length or 0
 * for an empty or over-long (> 15 bytes) name. Aliases as every parser:
 * sl_level_norm (level.h: warn/warning -> warn, err -> error, crit ->
 * critical ...), and apache's trace1..trace8 -> trace. */
size_t sl_pt_level(const char *s, size_t n, char *out);

/* A plain (not JSON-escaped) text for a struct sl_ew_ev field. */
static inline void
sl_pt_text(struct sl_ew_text *t, const char *p, size_t n)
{
  t->p = p;
  t->n = n;
  t->json = 0;
  t->fix = 0;
}

/* `timezone:` of an input: how a local time without offset becomes UTC. */
struct sl_pt_tz {
  int local;          /* 1: the host's zone (mktime, cached per hour) */
  int32_t off_s;      /* else a fixed offset east of UTC, seconds */
};

/* NULL, "" or "local": the host's zone; "UTC", "Z", "+hh:mm", "-hhmm",
 * "+hh". Other names: SL_ECONFIG with a message in err. */
int sl_pt_tz_parse(const char *s, struct sl_pt_tz *tz, char *err,
                   size_t errlen);

/* UTC seconds of local wall-clock seconds (local time written as if it were
 * UTC, as sl_pt_civil returns it). */
int64_t sl_pt_tz_utc(const struct sl_pt_tz *tz, int64_t local_secs);

#endif
