/* timestamp.c - time zones from TZif files, timestamp formats and layouts
 * (see timestamp.h). */
#include "timestamp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sl_err.h"
#include "sl_time.h"

/* Zone files are a few KiB; this bounds a hostile or broken one. */
#define TZ_FILE_MAX (1u << 20)

/* Offsets in force from at[i] on; off0 before at[0]. */
struct sl_tz {
  size_t n;
  int64_t *at;
  int32_t *off;
  int32_t off0;
};

/* ---- zones ------------------------------------------------------------- */

static int
tz_err(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
  return SL_ECONFIG;
}

static struct sl_tz *
tz_fixed(int32_t off)
{
  struct sl_tz *tz = calloc(1, sizeof(*tz));

  if (tz)
    tz->off0 = off;
  return tz;
}

/* "+hh:mm" "+hhmm" "+hh" (also '-'); 0 and *off, or -1. */
static int
parse_offset(const char *s, size_t n, int32_t *off)
{
  int h, m = 0;
  const char *mm = s + 3;

  if (n < 3 || (s[0] != '+' && s[0] != '-') || s[1] < '0' || s[1] > '9' ||
      s[2] < '0' || s[2] > '9')
    return -1;
  h = (s[1] - '0') * 10 + (s[2] - '0');
  if (n == 6 && s[3] == ':')
    mm = s + 4;
  else if (n != 5 && n != 3)
    return -1;
  if (n > 3) {
    if (mm[0] < '0' || mm[0] > '9' || mm[1] < '0' || mm[1] > '9')
      return -1;
    m = (mm[0] - '0') * 10 + (mm[1] - '0');
  }
  if (h > 23 || m > 59)
    return -1;
  *off = (h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1);
  return 0;
}

static uint32_t
be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int64_t
be64(const unsigned char *p)
{
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* RFC 8536. Version 1 data uses 32-bit times; version 2+ repeats the data
 * with 64-bit times after the first block, which is what is read then.
 * The POSIX TZ footer (rules past the last transition) is not used:
 * Debian's tzdata is built "fat", with transitions up to 2037. */
static struct sl_tz *
tz_from_tzif(const unsigned char *p, size_t n)
{
  uint32_t cnt[6], i, tsz = 4;
  const unsigned char *d, *end = p + n, *idx, *types;
  struct sl_tz *tz;
  size_t blk;

  if (n < 44 || memcmp(p, "TZif", 4) != 0)
    return NULL;
  for (i = 0; i < 6; i++)
    cnt[i] = be32(p + 20 + 4 * i);
  /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
  if (p[4] >= '2') {
    blk = (size_t)cnt[3] * 5 + (size_t)cnt[4] * 6 + cnt[5] +
          (size_t)cnt[2] * 8 + cnt[1] + cnt[0];
    if (blk > n - 44)
      return NULL;
    p += 44 + blk;
    if ((size_t)(end - p) < 44 || memcmp(p, "TZif", 4) != 0)
      return NULL;
    for (i = 0; i < 6; i++)
      cnt[i] = be32(p + 20 + 4 * i);
    tsz = 8;
  }
  d = p + 44;
  if (cnt[4] == 0 || cnt[3] > 100000 || cnt[4] > 256 ||
      (size_t)(end - d) < (size_t)cnt[3] * (tsz + 1) + (size_t)cnt[4] * 6)
    return NULL;
  idx = d + (size_t)cnt[3] * tsz;
  types = idx + cnt[3];
  tz = calloc(1, sizeof(*tz));
  if (tz == NULL)
    return NULL;
  tz->off0 = (int32_t)be32(types);
  if (cnt[3]) {
    tz->at = malloc(cnt[3] * sizeof(*tz->at));
    tz->off = malloc(cnt[3] * sizeof(*tz->off));
    if (tz->at == NULL || tz->off == NULL) {
      sl_tz_free(tz);
      return NULL;
    }
  }
  for (i = 0; i < cnt[3]; i++) {
    if (idx[i] >= cnt[4]) {
      sl_tz_free(tz);
      return NULL;
    }
    tz->at[i] = tsz == 8 ? be64(d + 8 * i) : (int32_t)be32(d + 4 * i);
    tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
  }
  tz->n = cnt[3];
  return tz;
}

static struct sl_tz *
tz_from_file(const char *path)
{
  unsigned char *buf;
  struct sl_tz *tz = NULL;
  size_t n;
  FILE *f = fopen(path, "rb");

  if (f == NULL)
    return NULL;
  buf = malloc(TZ_FILE_MAX);
  if (buf) {
    n = fread(buf, 1, TZ_FILE_MAX, f);
    tz = tz_from_tzif(buf, n);
    free(buf);
  }
  fclose(f);
  return tz;
}

int
sl_tz_load(const char *spec, struct sl_tz **out, char *err, size_t errlen)
{
  const char *dir = getenv("TZDIR"), *env;
  char path[512];
  int32_t off;
  size_t i, n;

  *out = NULL;
  if (spec == NULL || spec[0] == '\0' || strcmp(spec, "local") == 0) {
    env = getenv("TZ");
    if (env && env[0] == ':')
      env++;
    if (env && env[0]) {
      if (sl_tz_load(env, out, NULL, 0) == 0)
        return SL_OK;
    }
    *out = tz_from_file("/etc/localtime");
    if (*out == NULL)
      *out = tz_fixed(0); /* no zone configured on the host: UTC */
    return *out ? SL_OK : SL_ENOMEM;
  }
  n = strlen(spec);
  if (strcmp(spec, "UTC") == 0 || strcmp(spec, "Z") == 0 ||
      strcmp(spec, "GMT") == 0) {
    *out = tz_fixed(0);
    return *out ? SL_OK : SL_ENOMEM;
  }
  if (spec[0] == '+' || spec[0] == '-') {
    if (parse_offset(spec, n, &off) != 0)
      return tz_err(err, errlen,
                    "timezone: '%s' is not an offset like +05:30", spec);
    *out = tz_fixed(off);
    return *out ? SL_OK : SL_ENOMEM;
  }
  /* A name, not a path: no way out of the zone directory. */
  for (i = 0; i < n; i++)
    if (!((spec[i] >= 'A' && spec[i] <= 'Z') ||
          (spec[i] >= 'a' && spec[i] <= 'z') ||
          (spec[i] >= '0' && spec[i] <= '9') || strchr("/_+-", spec[i])))
      break;
  if (i != n || spec[0] == '/' || strstr(spec, "..") || n > 200)
    return tz_err(err, errlen, "timezone: '%s' is not an IANA zone name",
                  spec);
  snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir
           : "/usr/share/zoneinfo", spec);
  *out = tz_from_file(path);
  if (*out == NULL)
    return tz_err(err, errlen, "timezone: unknown zone '%s' (is tzdata "
                  "installed?)", spec);
  return SL_OK;
}

void
sl_tz_free(struct sl_tz *tz)
{
  if (tz == NULL)
    return;
  free(tz->at);
  free(tz->off);
  free(tz);
}

int32_t
sl_tz_offset_at(const struct sl_tz *tz, int64_t t)
{
  size_t lo = 0, hi = tz->n, mid;

  if (tz->n == 0 || t < tz->at[0])
    return tz->off0;
  /* Last transition at or before t. */
  while (hi - lo > 1) {
    mid = (lo + hi) / 2;
    if (tz->at[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return tz->off[lo];
}

int64_t
sl_tz_to_utc(const struct sl_tz *tz, int64_t local)
{
  /* Transitions are far more than two days apart, so the offsets a day
   * either side are the two that can apply around one. */
  int32_t a = sl_tz_offset_at(tz, local - 86400);
  int32_t b = sl_tz_offset_at(tz, local + 86400);

  if (a == b)
    return local - a;
  if (sl_tz_offset_at(tz, local - a) == a)
    return local - a;   /* valid before the change (first of two) */
  if (sl_tz_offset_at(tz, local - b) == b)
    return local - b;
  return local - a;     /* in the gap */
}

/* ---- formats ----------------------------------------------------------- */

struct tm_parts {
  int64_t y;
  int mon, d, h, mi, s;   /* mon 1-12 */
  int64_t frac;           /* ns */
  int fdigits;
  int have_y, have_off, pm, have_pm, have_epoch, yday;
  int32_t off;
  int64_t epoch;
};

static const char *const month_full[12] = {
  "january", "february", "march", "april", "may", "june", "july",
  "august", "september", "october", "november", "december",
};
static const char *const days[7] = {
  "sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
  "saturday",
};

static int
isdig(char c)
{
  return c >= '0' && c <= '9';
}

/* Exactly-or-up-to `max` digits (at least `min`). */
static int
num(const char *s, size_t n, size_t *i, int min, int max, int64_t *v)
{
  int k = 0;

  *v = 0;
  while (*i < n && k < max && isdig(s[*i])) {
    *v = *v * 10 + (s[*i] - '0');
    (*i)++;
    k++;
  }
  return k >= min;
}

/* A month or week day name, abbreviated or full (English, any case). */
static int
name(const char *s, size_t n, size_t *i, const char *const *full,
     int count, int *out)
{
  int k;
  size_t fl;

  for (k = 0; k < count; k++) {
    fl = strlen(full[k]);
    if (n - *i >= fl && strncasecmp(s + *i, full[k], fl) == 0) {
      *i += fl;
      *out = k;
      return 1;
    }
  }
  for (k = 0; k < count; k++) {
    if (n - *i >= 3 && strncasecmp(s + *i, full[k], 3) == 0) {
      *i += 3;
      *out = k;
      return 1;
    }
  }
  return 0;
}

/* "H:MM:SS" (the hour has at least hmin digits) into t. */
static int
hms(const char *s, size_t n, size_t *i, int hmin, struct tm_parts *t)
{
  int64_t v;

  if (!num(s, n, i, hmin, 2, &v) || *i >= n || s[(*i)++] != ':')
    return 0;
  t->h = (int)v;
  if (!num(s, n, i, 2, 2, &v) || *i >= n || s[(*i)++] != ':')
    return 0;
  t->mi = (int)v;
  if (!num(s, n, i, 2, 2, &v))
    return 0;
  t->s = (int)v;
  return 1;
}

/* "YYYY-M-D" (month and day have at least mdmin digits) into t. */
static int
ymd(const char *s, size_t n, size_t *i, int mdmin, struct tm_parts *t)
{
  int64_t v;

  if (!num(s, n, i, 4, 4, &v) || *i >= n || s[(*i)++] != '-')
    return 0;
  t->y = v;
  t->have_y = 1;
  if (!num(s, n, i, mdmin, 2, &v) || *i >= n || s[(*i)++] != '-')
    return 0;
  t->mon = (int)v;
  if (!num(s, n, i, mdmin, 2, &v))
    return 0;
  t->d = (int)v;
  return 1;
}

static int
frac(const char *s, size_t n, size_t *i, struct tm_parts *t)
{
  int64_t scale = 100000000;

  if (*i + 1 >= n || (s[*i] != '.' && s[*i] != ',') || !isdig(s[*i + 1]))
    return 0;
  (*i)++;
  t->frac = 0;
  t->fdigits = 0;
  while (*i < n && isdig(s[*i])) {
    if (scale) {
      t->frac += (s[*i] - '0') * scale;
      scale /= 10;
    }
    t->fdigits++;
    (*i)++;
  }
  return 1;
}

static int
offset(const char *s, size_t n, size_t *i, struct tm_parts *t)
{
  size_t k;

  if (*i < n && (s[*i] == 'Z' || s[*i] == 'z')) {
    (*i)++;
    t->have_off = 1;
    t->off = 0;
    return 1;
  }
  if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
    return 0;
  /* Longest of +hh:mm, +hhmm, +hh. */
  for (k = 6; k >= 3; k--) {
    if (k == 4 || n - *i < k)
      continue;
    if (parse_offset(s + *i, k, &t->off) == 0) {
      *i += k;
      t->have_off = 1;
      return 1;
    }
  }
  return 0;
}

/* Turn parts into ns. */
static int
finish(struct tm_parts *t, const struct sl_tz *tz, int64_t ref_ns,
       int64_t *ns, unsigned *prec)
{
  int64_t days_n, secs, ref_local, ry;
  unsigned rm, rd;
  int inferred = !t->have_y && !t->yday;

  if (t->have_epoch) {
    if (t->epoch > INT64_MAX / SL_NS_PER_SEC - 1 ||
        t->epoch < INT64_MIN / SL_NS_PER_SEC + 1)
      return SL_EPARSE;
    *ns = t->epoch * SL_NS_PER_SEC + t->frac;
    *prec = t->fdigits > 3 ? SL_TS_US : SL_TS_MS;
    return 0;
  }
  if (t->have_pm) {
    if (t->h < 1 || t->h > 12)
      return SL_EPARSE;
    t->h = t->h % 12 + (t->pm ? 12 : 0);
  }
  if (!t->have_y) {
    ref_local = ref_ns / SL_NS_PER_SEC;
    ref_local += sl_tz_offset_at(tz, ref_local);
    sl_time_civil_from_days(ref_local / 86400 - (ref_local % 86400 < 0),
                            &ry, &rm, &rd);
    t->y = ry;
    if (t->mon - (int)rm > 6)
      t->y--;
    else if (rm == 12 && t->mon == 1)
      t->y++;
  }
again:
  if (t->mon < 1 || t->mon > 12 || t->d < 1 || t->d > 31 || t->h > 23 ||
      t->mi > 59 || t->s > 60 || t->y < 1678 || t->y > 2261)
    return SL_EPARSE;
  if (t->yday)
    days_n = sl_time_days_from_civil(t->y, 1, 1) + t->yday - 1;
  else
    days_n = sl_time_days_from_civil(t->y, (unsigned)t->mon, (unsigned)t->d);
  /* Day 31 of a 30-day month is a typo, not the 1st of the next. */
  if (!t->yday) {
    int64_t yy;
    unsigned mm, dd;

    sl_time_civil_from_days(days_n, &yy, &mm, &dd);
    if ((int)mm != t->mon)
      return SL_EPARSE;
  }
  secs = days_n * 86400 + t->h * 3600 + t->mi * 60 + t->s;
  secs = t->have_off ? secs - t->off : sl_tz_to_utc(tz, secs);
  /* A year-less line cannot come from the future: "Dec 10" read on Dec 6
   * is last December's, not one four days ahead (which the collector's
   * timestamp_max_future would refuse). A day of slack for clock skew. */
  if (inferred && ref_ns > 0 && secs > ref_ns / SL_NS_PER_SEC + 86400) {
    inferred = 0;
    t->y--;
    goto again;
  }
  *ns = secs * SL_NS_PER_SEC + t->frac;
  *prec = t->fdigits > 3 ? SL_TS_US : SL_TS_MS;
  return 0;
}

static void
parts_init(struct tm_parts *t)
{
  memset(t, 0, sizeof(*t));
  t->mon = 1;
  t->d = 1;
}

int
sl_ts_parse_layout(const char *layout, const char *s, size_t n,
                   const struct sl_tz *tz, int64_t ref_ns, int64_t *ns,
                   unsigned *prec)
{
  struct tm_parts t;
  const char *l;
  size_t i = 0;
  int64_t v;
  int k, neg;

  parts_init(&t);
  for (l = layout; *l; l++) {
    if (*l == ' ') {
      if (i >= n || s[i] != ' ')
        return SL_EPARSE;
      while (i < n && s[i] == ' ')
        i++;
      continue;
    }
    if (*l != '%') {
      if (i >= n || s[i] != *l)
        return SL_EPARSE;
      i++;
      continue;
    }
    l++;
    switch (*l) {
    case 'Y':
      if (!num(s, n, &i, 4, 4, &v))
        return SL_EPARSE;
      t.y = v;
      t.have_y = 1;
      break;
    case 'y':
      if (!num(s, n, &i, 2, 2, &v))
        return SL_EPARSE;
      /* POSIX: 69-99 are 19xx, 00-68 20xx. */
      t.y = v + (v < 69 ? 2000 : 1900);
      t.have_y = 1;
      break;
    case 'm':
      if (!num(s, n, &i, 1, 2, &v))
        return SL_EPARSE;
      t.mon = (int)v;
      break;
    case 'e':
      if (i < n && s[i] == ' ')
        i++;
      /* fall through */
    case 'd':
      if (!num(s, n, &i, 1, 2, &v))
        return SL_EPARSE;
      t.d = (int)v;
      break;
    case 'j':
      if (!num(s, n, &i, 1, 3, &v) || v < 1 || v > 366)
        return SL_EPARSE;
      t.yday = (int)v;
      break;
    case 'H':
    case 'I':
      if (!num(s, n, &i, 1, 2, &v))
        return SL_EPARSE;
      t.h = (int)v;
      break;
    case 'M':
      if (!num(s, n, &i, 2, 2, &v))
        return SL_EPARSE;
      t.mi = (int)v;
      break;
    case 'S':
      if (!num(s, n, &i, 2, 2, &v))
        return SL_EPARSE;
      t.s = (int)v;
      break;
    case 'T':
      if (!hms(s, n, &i, 1, &t))
        return SL_EPARSE;
      break;
    case 'F':
      if (!ymd(s, n, &i, 1, &t))
        return SL_EPARSE;
      break;
    case 'f':
      frac(s, n, &i, &t);
      break;
    case 'b':
    case 'B':
    case 'h':
      if (!name(s, n, &i, month_full, 12, &k))
        return SL_EPARSE;
      t.mon = k + 1;
      break;
    case 'a':
    case 'A':
      if (!name(s, n, &i, days, 7, &k))
        return SL_EPARSE;
      break;
    case 'p':
      if (n - i < 2)
        return SL_EPARSE;
      if (strncasecmp(s + i, "am", 2) == 0)
        t.pm = 0;
      else if (strncasecmp(s + i, "pm", 2) == 0)
        t.pm = 1;
      else
        return SL_EPARSE;
      t.have_pm = 1;
      i += 2;
      break;
    case 'z':
      if (!offset(s, n, &i, &t))
        return SL_EPARSE;
      break;
    case 'Z':
      if (n - i >= 3 && (strncmp(s + i, "UTC", 3) == 0 ||
                         strncmp(s + i, "GMT", 3) == 0))
        i += 3;
      else if (i < n && s[i] == 'Z')
        i++;
      else
        return SL_EPARSE;
      t.have_off = 1;
      t.off = 0;
      break;
    case 's':
      neg = i < n && s[i] == '-';
      if (neg)
        i++;
      if (!num(s, n, &i, 1, 18, &v))
        return SL_EPARSE;
      t.epoch = neg ? -v : v;
      t.have_epoch = 1;
      break;
    case '%':
      if (i >= n || s[i] != '%')
        return SL_EPARSE;
      i++;
      break;
    default:
      return SL_EPARSE; /* checked at config time */
    }
  }
  if (i != n)
    return SL_EPARSE;
  return finish(&t, tz, ref_ns, ns, prec);
}

/* ISO 8601 / RFC 3339 with optional fraction and offset. */
static int
parse_iso(const char *s, size_t n, const struct sl_tz *tz, int64_t ref_ns,
          int64_t *ns, unsigned *prec)
{
  struct tm_parts t;
  size_t i = 0;

  parts_init(&t);
  if (!ymd(s, n, &i, 2, &t) || i >= n)
    return SL_EPARSE;
  if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
    return SL_EPARSE;
  i++;
  if (!hms(s, n, &i, 2, &t))
    return SL_EPARSE;
  frac(s, n, &i, &t);
  if (i < n && s[i] == ' ')
    i++;
  if (i < n && !offset(s, n, &i, &t))
    return SL_EPARSE;
  if (i != n)
    return SL_EPARSE;
  return finish(&t, tz, ref_ns, ns, prec);
}

int
sl_ts_parse_auto(const char *s, size_t n, const struct sl_tz *tz,
                 int64_t ref_ns, int64_t *ns, unsigned *prec)
{
  size_t i, fd;

  if (n < 6)
    return SL_EPARSE;
  if (isdig(s[0])) {
    if (n >= 19 && s[4] == '-')
      return parse_iso(s, n, tz, ref_ns, ns, prec);
    if (s[2] == '/')
      return sl_ts_parse_layout("%d/%b/%Y:%H:%M:%S %z", s, n, tz, ref_ns,
                                ns, prec);
    for (i = 0; i < n && isdig(s[i]); i++)
      ;
    if (sl_time_parse_epoch(s, n, ns) != 0)
      return SL_EPARSE;
    /* ms and coarser as written; finer units or fractions: us. */
    fd = i < n ? n - i - 1 : 0;
    *prec = (i > 14 || (i > 11 && fd > 0) || fd > 3) ? SL_TS_US : SL_TS_MS;
    return 0;
  }
  if (n > 4 && s[3] == ' ' && sl_ts_parse_layout("%b %e %H:%M:%S", s, n, tz,
                                                 ref_ns, ns, prec) == 0)
    return 0;
  return sl_ts_parse_layout("%a %b %e %H:%M:%S%f %Y", s, n, tz, ref_ns, ns,
                            prec);
}

/* ---- per-input settings ------------------------------------------------ */

/* Reject unknown conversions at config time. */
static const char *
layout_problem(const char *l)
{
  for (; *l; l++) {
    if (*l != '%')
      continue;
    l++;
    if (*l == '\0' || !strchr("YymdejHIMSTFfbBhaApzZs%", *l))
      return "unknown conversion (supported: %Y %y %m %d %e %j %H %I %M "
             "%S %T %F %f %b %B %h %a %A %p %z %Z %s %%)";
  }
  return NULL;
}

static int
str_member(const json_t *o, const char *key, const char **out, char *err,
           size_t errlen, const char *where)
{
  const json_t *v = json_object_get(o, key);

  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v)) {
    if (err && errlen)
      snprintf(err, errlen, "%s%s: must be a string", where, key);
    return SL_ECONFIG;
  }
  *out = json_string_value(v);
  return 0;
}

int
sl_ts_conf_new(const json_t *input, struct sl_ts_conf **out, char *err,
               size_t errlen)
{
  const json_t *ts = json_object_get(input, "timestamp"), *ls, *v;
  struct sl_ts_conf *c = calloc(1, sizeof(*c));
  const char *zone, *field, *fzone, *why;
  size_t i;
  int rc;

  *out = NULL;
  if (c == NULL)
    return SL_ENOMEM;
  if ((rc = str_member(input, "timezone", &zone, err, errlen, "")) != 0 ||
      (rc = sl_tz_load(zone, &c->tz, err, errlen)) != 0)
    goto fail;
  c->field_tz = c->tz;
  if (ts == NULL || json_is_null(ts)) {
    *out = c;
    return SL_OK;
  }
  rc = SL_ECONFIG;
  if (!json_is_object(ts)) {
    tz_err(err, errlen, "%s: must be a mapping", "timestamp");
    goto fail;
  }
  if ((rc = str_member(ts, "field", &field, err, errlen, "timestamp.")) ||
      (rc = str_member(ts, "timezone", &fzone, err, errlen, "timestamp.")))
    goto fail;
  if (fzone) {
    if ((rc = sl_tz_load(fzone, &c->own_field_tz, err, errlen)) != 0)
      goto fail;
    c->field_tz = c->own_field_tz;
  }
  rc = SL_ENOMEM;
  if (field && (c->field = strdup(field)) == NULL)
    goto fail;
  ls = json_object_get(ts, "layouts");
  if (json_is_string(ls) || json_is_array(ls)) {
    c->nlayouts = json_is_string(ls) ? 1 : json_array_size(ls);
    c->layouts = calloc(c->nlayouts ? c->nlayouts : 1, sizeof(char *));
    if (c->layouts == NULL)
      goto fail;
    for (i = 0; i < c->nlayouts; i++) {
      v = json_is_string(ls) ? ls : json_array_get(ls, i);
      rc = SL_ECONFIG;
      if (!json_is_string(v)) {
        tz_err(err, errlen, "%s: must be strings", "timestamp.layouts");
        goto fail;
      }
      if ((why = layout_problem(json_string_value(v))) != NULL) {
        if (err && errlen)
          snprintf(err, errlen, "timestamp.layouts: '%s': %s",
                   json_string_value(v), why);
        goto fail;
      }
      rc = SL_ENOMEM;
      if ((c->layouts[i] = strdup(json_string_value(v))) == NULL)
        goto fail;
    }
  } else if (ls && !json_is_null(ls)) {
    rc = tz_err(err, errlen, "%s: must be a list of strings",
                "timestamp.layouts");
    goto fail;
  }
  *out = c;
  return SL_OK;

fail:
  sl_ts_conf_free(c);
  return rc;
}

void
sl_ts_conf_free(struct sl_ts_conf *c)
{
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; c->layouts && i < c->nlayouts; i++)
    free(c->layouts[i]);
  free(c->layouts);
  free(c->field);
  sl_tz_free(c->own_field_tz);
  sl_tz_free(c->tz);
  free(c);
}

int
sl_ts_parse_field(const struct sl_ts_conf *c, const char *s, size_t n,
                  int64_t ref_ns, int64_t *ns, unsigned *prec)
{
  size_t i;

  for (i = 0; i < c->nlayouts; i++)
    if (sl_ts_parse_layout(c->layouts[i], s, n, c->field_tz, ref_ns, ns,
                           prec) == 0)
      return 0;
  return sl_ts_parse_auto(s, n, c->field_tz, ref_ns, ns, prec);
}

size_t
sl_ts_format_us(int64_t ns, char *out)
{
  char tmp[SL_TIME_RFC3339_NS_LEN + 8];
  size_t n = sl_time_format_ns(ns, tmp);

  if (n != SL_TIME_RFC3339_NS_LEN)
    return 0;
  /* "....SS.123456789Z" -> "....SS.123456Z" */
  memcpy(out, tmp, 26);
  out[26] = 'Z';
  out[27] = '\0';
  return SL_TS_US_LEN;
}
