/* timestamp.h - timestamps of log lines: time zones (TZif transition
 * tables loaded once at config time), the common formats, and per-input
 * strptime-like layouts.
 *
 * Parse workers run concurrently: everything here that a worker calls
 * reads only immutable tables (no setenv("TZ"), no localtime, no locale),
 * so a zone and a sl_ts_conf are shared read-only by all workers.
 * Ownership: sl_tz and sl_ts_conf are owned by the parse context that
 * built them and die with it; the parse functions borrow them.
 */
#ifndef SL_AGENT_TIMESTAMP_H
#define SL_AGENT_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A time zone: UTC offsets by instant. Immutable after sl_tz_load. */
struct sl_tz;

/* `spec`: NULL, "" or "local" for the host's zone (the TZ variable as the C
 * library reads it at load time, else /etc/localtime); an IANA name
 * ("Europe/Berlin", read from /usr/share/zoneinfo or $TZDIR); "UTC"/"Z";
 * or a fixed offset "+hh:mm" / "-hhmm" / "+hh". SL_ECONFIG with a message
 * for an unknown zone or a file that is not TZif. */
int sl_tz_load(const char *spec, struct sl_tz **out, char *err,
               size_t errlen);
void sl_tz_free(struct sl_tz *tz);

/* Offset from UTC in seconds at the UTC instant `t` (seconds). */
int32_t sl_tz_offset_at(const struct sl_tz *tz, int64_t t);

/* UTC seconds for local wall time `local` (seconds since the epoch as if
 * the wall time were UTC). Ambiguous wall times (a DST end repeats an
 * hour) take the first occurrence; wall times in a DST gap use the offset
 * before the gap (02:30 on a spring-forward day in Berlin is 01:30 UTC,
 * i.e. 03:30 CEST), as Python's fold=0 does. */
int64_t sl_tz_to_utc(const struct sl_tz *tz, int64_t local);

/* Precision a timestamp was written with, for the output format. */
#define SL_TS_MS 0u  /* milliseconds or coarser */
#define SL_TS_US 1u  /* more than 3 fraction digits: write microseconds */

/* The built-in formats, tried in this order by the first byte:
 *   RFC 3339 / ISO 8601 "2023-10-11T14:32:52.123456+02:00", with or
 *     without fraction (',' or '.') and offset, 'T' or ' ' (log4j
 *     "yyyy-MM-dd HH:mm:ss,SSS", oslo "... .SSS");
 *   common log "%d/%b/%Y:%H:%M:%S %z" (nginx, apache access);
 *   RFC 3164 "Dec  4 04:47:44" (year inferred from `ref_ns`);
 *   apache error / ctime "Sun Dec 04 04:47:44 2005", with an optional
 *     fraction "Wed Oct 11 14:32:52.123456 2023";
 *   epoch numbers s / ms / us / ns by magnitude (sl_time_parse_epoch),
 *     with an optional fraction.
 * Times without an offset are in `tz`. The whole input must match.
 * `ref_ns` (the read time) decides the year of year-less formats: a month
 * more than 6 months after the reference month is last year's (a December
 * line read in January), January read in December is next year's.
 * 0 and *ns / *prec, or SL_EPARSE. */
int sl_ts_parse_auto(const char *s, size_t n, const struct sl_tz *tz,
                     int64_t ref_ns, int64_t *ns, unsigned *prec);

/* One strptime-like layout. Conversions: %Y %y %m %d %e %H %I %p %M %S
 * %f (optional fraction: '.' or ',' and 1-9 digits; more are truncated)
 * %b %B %h (month names, English, any case) %a %A (week day, skipped)
 * %z (Z, +hh:mm, +hhmm, +hh) %Z (UTC/GMT/Z only) %j (day of year)
 * %s (epoch seconds) %T (%H:%M:%S) %F (%Y-%m-%d) %%; a space matches one
 * or more spaces; anything else matches itself. Missing date parts: the
 * year is inferred as for RFC 3164, month and day default to 1. */
int sl_ts_parse_layout(const char *layout, const char *s, size_t n,
                       const struct sl_tz *tz, int64_t ref_ns, int64_t *ns,
                       unsigned *prec);

/* An input's timestamp settings: `timezone:` and `timestamp: {field,
 * layouts, timezone}` (the inner timezone wins for that field). */
struct sl_ts_conf {
  struct sl_tz *tz;        /* the input's zone (never NULL) */
  struct sl_tz *field_tz;  /* timestamp.timezone, else == tz (not owned) */
  char *field;             /* timestamp.field, NULL: none */
  char **layouts;          /* timestamp.layouts */
  size_t nlayouts;
  struct sl_tz *own_field_tz;
};

/* Read `timezone` and `timestamp` from a normalised input. */
int sl_ts_conf_new(const json_t *input, struct sl_ts_conf **out, char *err,
                   size_t errlen);
void sl_ts_conf_free(struct sl_ts_conf *c);

/* The configured layouts in order, then the built-in formats, in the
 * field's zone. 0 or SL_EPARSE. */
int sl_ts_parse_field(const struct sl_ts_conf *c, const char *s, size_t n,
                      int64_t ref_ns, int64_t *ns, unsigned *prec);

/* "2023-10-11T12:32:52.123456Z" (27 bytes) into out (>= 28 bytes). */
#define SL_TS_US_LEN 27
size_t sl_ts_format_us(int64_t ns, char *out);

#endif
