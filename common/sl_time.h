/* sl_time.h - fast timestamp parsing and formatting.
 *
 * Times are int64 nanoseconds since the Unix epoch, UTC. Parsing never
 * allocates and never calls the C library's locale-dependent functions.
 */
#ifndef SL_TIME_H
#define SL_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"

#define SL_NS_PER_SEC 1000000000LL

/* Parse RFC 3339 / ISO 8601: "2024-05-01T12:00:00Z",
 * "2024-05-01T12:00:00.123456789+02:00", lower-case t/z, a space instead of
 * 'T', fraction of 1-9 digits (more digits are accepted and truncated),
 * offsets +hh:mm, +hhmm, +hh. The whole input must be consumed.
 * Returns 0 and *ns, or SL_EPARSE. */
int sl_time_parse_rfc3339(const char *s, size_t n, int64_t *ns);

/* Epoch number given as text ("1714564800", "1714564800.123",
 * "1714564800123"): the unit is guessed from the magnitude of the integer
 * part: < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else
 * nanoseconds. Fractions are honoured for all units. Returns 0 or SL_EPARSE. */
int sl_time_parse_epoch(const char *s, size_t n, int64_t *ns);

/* Either of the above. */
int sl_time_parse_any(const char *s, size_t n, int64_t *ns);

/* Format as "2024-05-01T12:00:00.123Z" (UTC, millisecond precision, what
 * ES `date` stores) into out (at least SL_TIME_RFC3339_MS_LEN+1 bytes);
 * returns the length written. */
#define SL_TIME_RFC3339_MS_LEN 24
size_t sl_time_format_ms(int64_t ns, char *out);
/* Same with nanosecond precision: "2024-05-01T12:00:00.123456789Z". */
#define SL_TIME_RFC3339_NS_LEN 30
size_t sl_time_format_ns(int64_t ns, char *out);

/* Wall clock now, ns since epoch (CLOCK_REALTIME). */
int64_t sl_time_now_ns(void);
/* Monotonic ms (CLOCK_MONOTONIC), for timeouts. */
uint64_t sl_time_mono_ms(void);

/* Days since 1970-01-01 for a civil date and back (Howard Hinnant's
 * algorithms); exposed for daily index names and syslog parsing. */
int64_t sl_time_days_from_civil(int64_t y, unsigned m, unsigned d);
void sl_time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
