/* parse_text.h - scanning helpers shared by the text-line parsers
 * (parse_access.c, parse_errlog.c, parse_syslog.c, parse_cri.c,
 * parse_logfmt.c): fixed timestamp layouts, IP literals, integers, level
 * names, quoted strings and the parse-failure event (zones of timestamps
 * without an offset: timestamp.h, through ctx->ts).
 *
 * Nothing here allocates or keeps pointers: every function reads the bytes
 * it is given and writes into the caller's variables. Safe on parse workers
 * concurrently.
 */
#ifndef SL_PARSE_TEXT_H
#define SL_PARSE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "event_writer.h"

struct sl_parse_ctx;

/* "s" as a JSON string (escaped). */
static inline void
sl_pt_str(struct sl_ew *w, const char *s, size_t n)
{
  sl_ew_byte(w, '"');
  sl_ew_escape(w, s, n);
  sl_ew_byte(w, '"');
}

/* The line as a raw event that says why `parser` could not read it:
 * error.message "<parser> parse failure at byte <at>: <why>" and tag
 * sluice_<parser>_parse_failure. Never drops the line. */
void sl_pt_failed(struct sl_ew *w, const struct sl_parse_ctx *ctx,
                  const struct sl_src *src, const char *line, size_t len,
                  uint64_t offset, unsigned flags, int64_t read_time_ns,
                  const char *parser, size_t at, const char *why);

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

/* A level as written ("WARN", "E", "crit", "trace3") into its canonical
 * name (level.h: sl_level_norm; Apache's trace1..8 are trace), else lower
 * case as written, into out (at least 16 bytes). Returns the length or 0
 * for an empty or over-long (> 15 bytes) name. */
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

#endif
