#include "sl_time.h"
#include "sl_err.h"

#include <string.h>
#include <time.h>

/* int64 nanoseconds cover 1677-09-21 .. 2262-04-11. */
#define SECS_MIN (INT64_MIN / SL_NS_PER_SEC)
#define SECS_MAX (INT64_MAX / SL_NS_PER_SEC)

/* Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms",
 * days_from_civil: proleptic Gregorian, valid for any int64 year we use. */
int64_t
sl_time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
  int64_t era, yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? (int64_t)m - 3 : (int64_t)m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void
sl_time_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
  int64_t era, doe, yoe, doy, mp;

  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
  *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int
is_leap(int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
days_in_month(int64_t y, unsigned m)
{
  static const unsigned char dim[13] = {
    0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
  };
  return m == 2 && is_leap(y) ? 29 : dim[m];
}

static inline int
isdig(char c)
{
  return c >= '0' && c <= '9';
}

/* Exactly k digits at s[*i]; advances *i. */
static int
digits(const char *s, size_t n, size_t *i, unsigned k, unsigned *out)
{
  unsigned v = 0, j;

  if (n - *i < k)
    return -1;
  for (j = 0; j < k; j++) {
    char c = s[*i + j];
    if (!isdig(c))
      return -1;
    v = v * 10 + (unsigned)(c - '0');
  }
  *i += k;
  *out = v;
  return 0;
}

/* Combine and range-check; the caller validated each field. */
static int
make_ns(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi,
        unsigned sec, int64_t frac_ns, int64_t off_s, int64_t *ns)
{
  int64_t secs = sl_time_days_from_civil(y, mo, d) * 86400 +
                 (int64_t)h * 3600 + (int64_t)mi * 60 + sec - off_s;

  if (secs < SECS_MIN + 1 || secs > SECS_MAX - 1)
    return SL_EPARSE;
  *ns = secs * SL_NS_PER_SEC + frac_ns;
  return 0;
}

int
sl_time_parse_rfc3339(const char *s, size_t n, int64_t *ns)
{
  unsigned y, mo, d, h, mi, sec, oh = 0, om = 0, nd = 0;
  int64_t frac = 0, off = 0;
  size_t i = 0;
  int sign;

  if (digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' ||
      digits(s, n, &i, 2, &mo) || i >= n || s[i++] != '-' ||
      digits(s, n, &i, 2, &d) || i >= n ||
      (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
    return SL_EPARSE;
  i++;
  if (digits(s, n, &i, 2, &h) || i >= n || s[i++] != ':' ||
      digits(s, n, &i, 2, &mi) || i >= n || s[i++] != ':' ||
      digits(s, n, &i, 2, &sec))
    return SL_EPARSE;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
      mi > 59 || sec > 60)
    return SL_EPARSE;
  /* ISO 8601 allows ',' as the decimal sign (Python logging, log4j). */
  if (i < n && (s[i] == '.' || s[i] == ',')) {
    i++;
    while (i < n && isdig(s[i])) {
      if (nd < 9) {
        frac = frac * 10 + (s[i] - '0');
        nd++;
      }
      i++;
    }
    if (nd == 0)
      return SL_EPARSE;
    for (; nd < 9; nd++)
      frac *= 10;
  }
  /* No zone at all is read as UTC (what Filebeat and ES assume). */
  if (i < n) {
    if (s[i] == 'Z' || s[i] == 'z') {
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      sign = s[i++] == '-' ? -1 : 1;
      if (digits(s, n, &i, 2, &oh))
        return SL_EPARSE;
      if (i < n) {
        if (s[i] == ':')
          i++;
        if (digits(s, n, &i, 2, &om))
          return SL_EPARSE;
      }
      if (oh > 23 || om > 59)
        return SL_EPARSE;
      off = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    }
  }
  if (i != n)
    return SL_EPARSE;
  /* A leap second (:60) lands on the next second, as timegm would. */
  return make_ns(y, mo, d, h, mi, sec, frac, off, ns);
}

int
sl_time_parse_epoch(const char *s, size_t n, int64_t *ns)
{
  static const int64_t scale[4] = {
    SL_NS_PER_SEC, 1000000, 1000, 1
  };
  uint64_t ip = 0;
  int64_t frac = 0, unit, fdiv;
  size_t i = 0, nint = 0;
  int u;

  while (i < n && isdig(s[i])) {
    if (++nint > 19)
      return SL_EPARSE;
    ip = ip * 10 + (uint64_t)(s[i] - '0');
    i++;
  }
  if (nint == 0)
    return SL_EPARSE;
  if (ip < 100000000000ULL)
    u = 0;
  else if (ip < 100000000000000ULL)
    u = 1;
  else if (ip < 100000000000000000ULL)
    u = 2;
  else
    u = 3;
  unit = scale[u];
  if (ip > (uint64_t)INT64_MAX / (uint64_t)unit)
    return SL_EPARSE;
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || !isdig(s[i]))
      return SL_EPARSE;
    /* Digits finer than one nanosecond are dropped. */
    fdiv = unit;
    while (i < n && isdig(s[i])) {
      if (fdiv >= 10) {
        fdiv /= 10;
        frac += (s[i] - '0') * fdiv;
      }
      i++;
    }
  }
  if (i != n)
    return SL_EPARSE;
  if ((int64_t)ip * unit > INT64_MAX - frac)
    return SL_EPARSE;
  *ns = (int64_t)ip * unit + frac;
  return 0;
}

int
sl_time_parse_any(const char *s, size_t n, int64_t *ns)
{
  if (n >= 5 && s[4] == '-')
    return sl_time_parse_rfc3339(s, n, ns);
  return sl_time_parse_epoch(s, n, ns);
}

/* Two ASCII digits per store. */
static const char d2[201] =
  "00010203040506070809101112131415161718192021222324252627282930313233343536"
  "37383940414243444546474849505152535455565758596061626364656667686970717273"
  "7475767778798081828384858687888990919293949596979899";

static inline void
put2(char *p, unsigned v)
{
  memcpy(p, d2 + 2 * v, 2);
}

static _Thread_local int64_t tl_day = INT64_MIN;
static _Thread_local char tl_ymd[11];

/* "YYYY-MM-DDTHH:MM:SS" (19 bytes); returns the nanoseconds left over. */
static int64_t
format_base(int64_t ns, char *out)
{
  int64_t secs = ns / SL_NS_PER_SEC, rem = ns % SL_NS_PER_SEC, days, sod, y;
  unsigned m, d;

  if (rem < 0) {
    rem += SL_NS_PER_SEC;
    secs--;
  }
  days = secs / 86400;
  sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days--;
  }
  /* Events come in time order, so the date part rarely changes: keep the
   * last one per thread and skip the calendar math. */
  if (days != tl_day) {
    sl_time_civil_from_days(days, &y, &m, &d);
    /* int64 ns keeps y within 1677..2262, always four digits. */
    put2(tl_ymd, (unsigned)(y / 100));
    put2(tl_ymd + 2, (unsigned)(y % 100));
    tl_ymd[4] = '-';
    put2(tl_ymd + 5, m);
    tl_ymd[7] = '-';
    put2(tl_ymd + 8, d);
    tl_ymd[10] = 'T';
    tl_day = days;
  }
  memcpy(out, tl_ymd, 11);
  put2(out + 11, (unsigned)(sod / 3600));
  out[13] = ':';
  put2(out + 14, (unsigned)(sod / 60 % 60));
  out[16] = ':';
  put2(out + 17, (unsigned)(sod % 60));
  return rem;
}

size_t
sl_time_format_ms(int64_t ns, char *out)
{
  unsigned ms = (unsigned)(format_base(ns, out) / 1000000);

  out[19] = '.';
  out[20] = (char)('0' + ms / 100);
  put2(out + 21, ms % 100);
  out[23] = 'Z';
  out[24] = '\0';
  return SL_TIME_RFC3339_MS_LEN;
}

size_t
sl_time_format_ns(int64_t ns, char *out)
{
  unsigned f = (unsigned)format_base(ns, out);

  out[19] = '.';
  out[20] = (char)('0' + f / 100000000);
  f %= 100000000;
  put2(out + 21, f / 1000000);
  put2(out + 23, f / 10000 % 100);
  put2(out + 25, f / 100 % 100);
  put2(out + 27, f % 100);
  out[29] = 'Z';
  out[30] = '\0';
  return SL_TIME_RFC3339_NS_LEN;
}

int64_t
sl_time_now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * SL_NS_PER_SEC + ts.tv_nsec;
}

uint64_t
sl_time_mono_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
