/* parse_text.c - scanning helpers of the text-line parsers (see
 * parse_text.h). */
#include "parse_text.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "level.h"
#include "parse_internal.h"
#include "sl_time.h"

int
sl_pt_month(const char *p)
{
  /* Switch on the first letter: no table walk per line. */
  switch (p[0]) {
  case 'J':
    if (p[1] == 'a' && p[2] == 'n') return 1;
    if (p[1] == 'u' && p[2] == 'n') return 6;
    if (p[1] == 'u' && p[2] == 'l') return 7;
    return 0;
  case 'F': return p[1] == 'e' && p[2] == 'b' ? 2 : 0;
  case 'M':
    if (p[1] == 'a' && p[2] == 'r') return 3;
    if (p[1] == 'a' && p[2] == 'y') return 5;
    return 0;
  case 'A':
    if (p[1] == 'p' && p[2] == 'r') return 4;
    if (p[1] == 'u' && p[2] == 'g') return 8;
    return 0;
  case 'S': return p[1] == 'e' && p[2] == 'p' ? 9 : 0;
  case 'O': return p[1] == 'c' && p[2] == 't' ? 10 : 0;
  case 'N': return p[1] == 'o' && p[2] == 'v' ? 11 : 0;
  case 'D': return p[1] == 'e' && p[2] == 'c' ? 12 : 0;
  default: return 0;
  }
}

int
sl_pt_digits(const char *p, size_t n, unsigned *v)
{
  unsigned x = 0;
  size_t i;

  for (i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return 0;
    x = x * 10 + (unsigned)(p[i] - '0');
  }
  *v = x;
  return 1;
}

int
sl_pt_u64(const char *s, size_t n, uint64_t *v)
{
  uint64_t x = 0;
  size_t i;

  if (n == 0 || n > 18)
    return 0;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    x = x * 10 + (uint64_t)(s[i] - '0');
  }
  *v = x;
  return 1;
}

int
sl_pt_civil(unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi,
            unsigned s, int64_t *secs)
{
  static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31,
                                           30, 31, 30, 31 };

  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
      mi > 59 || s > 60 || y < 1678 || y > 2261)
    return 0;
  if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
    return 0;
  *secs = sl_time_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
  return 1;
}

int
sl_pt_clf_time(const char *s, size_t n, int64_t *ns)
{
  unsigned d, y, h, mi, sec, oh, om;
  int mo, off;
  int64_t t;

  /* 10/Oct/2000:13:55:36 -0700 */
  if (n != 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' ||
      s[14] != ':' || s[17] != ':' || s[20] != ' ' ||
      (s[21] != '+' && s[21] != '-'))
    return 0;
  if (!sl_pt_digits(s, 2, &d) || (mo = sl_pt_month(s + 3)) == 0 ||
      !sl_pt_digits(s + 7, 4, &y) || !sl_pt_digits(s + 12, 2, &h) ||
      !sl_pt_digits(s + 15, 2, &mi) || !sl_pt_digits(s + 18, 2, &sec) ||
      !sl_pt_digits(s + 22, 2, &oh) || !sl_pt_digits(s + 24, 2, &om) ||
      oh > 23 || om > 59)
    return 0;
  if (!sl_pt_civil(y, (unsigned)mo, d, h, mi, sec, &t))
    return 0;
  off = (int)(oh * 3600 + om * 60);
  t -= s[21] == '-' ? -off : off;
  *ns = t * SL_NS_PER_SEC;
  return 1;
}

int
sl_pt_is_ip(const char *s, size_t n)
{
  unsigned char addr[16];
  char tmp[48];

  if (n == 0 || n >= sizeof(tmp))
    return 0;
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  if (memchr(tmp, ':', n))
    return inet_pton(AF_INET6, tmp, addr) == 1;
  return inet_pton(AF_INET, tmp, addr) == 1;
}

size_t
sl_pt_level(const char *s, size_t n, char *out)
{
  const char *canon;
  size_t i;

  if (n == 0 || n > 15)
    return 0;
  /* Apache's trace1..trace8. */
  if (n == 6 && strncasecmp(s, "trace", 5) == 0 && s[5] >= '1' &&
      s[5] <= '8')
    n = 5;
  if ((canon = sl_level_norm(s, n)) != NULL) {
    n = strlen(canon);
    memcpy(out, canon, n + 1);
    return n;
  }
  for (i = 0; i < n; i++)
    out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
  out[n] = '\0';
  return n;
}

void
sl_pt_failed(struct sl_ew *w, const struct sl_parse_ctx *ctx,
             const struct sl_src *src, const char *line, size_t len,
             uint64_t offset, unsigned flags, int64_t read_time_ns,
             const char *parser, size_t at, const char *why)
{
  char emsg[128], tag[48];

  snprintf(emsg, sizeof(emsg), "%s parse failure at byte %zu: %s", parser,
           at, why);
  snprintf(tag, sizeof(tag), "sluice_%s_parse_failure", parser);
  sl_ew_raw_event(w, &ctx->ev, src, line, len, offset, flags, read_time_ns,
                  emsg, tag);
}
