/* parse_errlog.c - the `nginx_error` and `apache_error` parsers. Both
 * servers write local time without an offset: the input's `timezone:`
 * (timestamp.h; default: the host's zone) makes it UTC.
 *
 * nginx_error:
 *   2023/10/11 14:32:52 [error] 123#456: *789 open() failed, client:
 *     1.2.3.4, server: example.com, request: "GET / HTTP/1.1"
 *   -> log.level (level.h: warn, crit -> critical, emerg -> emergency),
 *      process.pid, process.thread.id,
 *      nginx.error.connection_id (the "*789"), message = the text after
 *      "pid#tid: " and the connection id, source.address (+ source.ip)
 *      from its ", client: X" part.
 * apache_error, 2.2 and 2.4:
 *   [Sun Dec 04 04:47:44 2005] [notice] msg
 *   [Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] msg
 *   [Wed Oct 11 14:32:52.123456 2023] [core:error] [pid 123:tid 456]
 *     [client 1.2.3.4:5678] AH00124: msg
 *   -> @timestamp with microseconds when the line has them,
 *      log.level (trace1..8 -> trace), apache.error.module, process.pid,
 *      process.thread.id, source.address (+ source.ip, source.port) from
 *      [client ...] or [remote ...], message = the rest.
 * A line without the time and level prefix becomes a raw event tagged
 * sluice_<parser>_parse_failure; everything after the prefix is optional.
 */
#include "parse_internal.h"
#include "parse_text.h"

#include <stdio.h>
#include <string.h>

#include "sl_time.h"
#include "timestamp.h"

/* Digits at s[*i..]: 1..18 of them, value in *v, *i past them. */
static int
take_num(const char *s, size_t n, size_t *i, uint64_t *v)
{
  size_t j = *i;

  while (j < n && s[j] >= '0' && s[j] <= '9' && j - *i < 18)
    j++;
  if (j == *i || !sl_pt_u64(s + *i, j - *i, v))
    return 0;
  *i = j;
  return 1;
}

/* source.address (+ ip, port) of "1.2.3.4", "1.2.3.4:5678", "::1",
 * "[::1]:5678" or a host name. */
static void
put_source(struct sl_ew *w, const char *s, size_t n)
{
  const char *addr = s;
  size_t an = n, i;
  uint64_t port = 0;
  int has_port = 0;

  if (!sl_pt_is_ip(s, n)) {
    for (i = n; i > 0 && s[i - 1] != ':'; i--)
      ;
    if (i > 1 && i < n && sl_pt_u64(s + i, n - i, &port) && port < 65536) {
      has_port = 1;
      an = i - 1;
      if (an >= 2 && s[0] == '[' && s[an - 1] == ']') {
        addr = s + 1;
        an -= 2;
      }
    }
  }
  SL_EW_LIT(w, ",\"source\":{\"address\":");
  sl_pt_str(w, addr, an);
  if (sl_pt_is_ip(addr, an)) {
    SL_EW_LIT(w, ",\"ip\":");
    sl_pt_str(w, addr, an);
  }
  if (has_port) {
    SL_EW_LIT(w, ",\"port\":");
    sl_ew_u64(w, port);
  }
  sl_ew_byte(w, '}');
}

/* ---- nginx_error -------------------------------------------------------- */

static void
nginx_error_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
                  const struct sl_src *src, const char *s, size_t n,
                  uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  unsigned y, mo, d, h, mi, sec;
  uint64_t pid, tid, cid = 0;
  size_t i, lv, lvn, slot, ln, k;
  int has_cid = 0;
  const char *cl;
  int64_t t;
  char lvl[16];
  struct sl_ew_ev ev;

  /* 2023/10/11 14:32:52 [error] */
  if (n < 23 || s[4] != '/' || s[7] != '/' || s[10] != ' ' ||
      s[13] != ':' || s[16] != ':' || !sl_pt_digits(s, 4, &y) ||
      !sl_pt_digits(s + 5, 2, &mo) || !sl_pt_digits(s + 8, 2, &d) ||
      !sl_pt_digits(s + 11, 2, &h) || !sl_pt_digits(s + 14, 2, &mi) ||
      !sl_pt_digits(s + 17, 2, &sec) || !sl_pt_civil(y, mo, d, h, mi, sec,
                                                      &t)) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "nginx_error",
                 0, "expected a time like 2023/10/11 14:32:52");
    return;
  }
  if (s[19] != ' ' || s[20] != '[') {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "nginx_error",
                 19, "expected ' [level]' after the time");
    return;
  }
  lv = 21;
  for (i = lv; i < n && s[i] != ']' && i - lv < 16; i++)
    ;
  lvn = i < n && s[i] == ']' ? sl_pt_level(s + lv, i - lv, lvl) : 0;
  if (lvn == 0) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "nginx_error",
                 lv, "expected a level in brackets");
    return;
  }
  /* "] 123#456: " */
  i++;
  if (i + 1 >= n || s[i] != ' ' || (i++, !take_num(s, n, &i, &pid)) ||
      i >= n || s[i] != '#' || (i++, !take_num(s, n, &i, &tid)) ||
      i + 1 >= n || s[i] != ':' || s[i + 1] != ' ') {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "nginx_error",
                 i, "expected 'pid#tid: ' after the level");
    return;
  }
  i += 2;
  if (i < n && s[i] == '*') {
    k = i + 1;
    if (take_num(s, n, &k, &cid) && k < n && s[k] == ' ') {
      has_cid = 1;
      i = k + 1;
    }
  }
  t = sl_tz_to_utc(ctx->ts->tz, t);
  sl_ew_ev_clear(&ev, t * SL_NS_PER_SEC);
  slot = sl_ew_ev_begin(w);
  SL_EW_LIT(w, ",\"process\":{\"pid\":");
  sl_ew_u64(w, pid);
  SL_EW_LIT(w, ",\"thread\":{\"id\":");
  sl_ew_u64(w, tid);
  SL_EW_LIT(w, "}}");
  if (has_cid) {
    SL_EW_LIT(w, ",\"nginx\":{\"error\":{\"connection_id\":");
    sl_ew_u64(w, cid);
    SL_EW_LIT(w, "}}");
  }
  /* ", client: 1.2.3.4, server: ..." */
  cl = n - i >= 10 ? memmem(s + i, n - i, ", client: ", 10) : NULL;
  if (cl) {
    cl += 10;
    for (ln = 0; cl + ln < s + n && cl[ln] != ',' && cl[ln] != ' '; ln++)
      ;
    if (ln)
      put_source(w, cl, ln);
  }
  sl_pt_text(&ev.level, lvl, lvn);
  sl_pt_text(&ev.msg, s + i, n - i);
  sl_parse_corr_rules(ctx, s + i, n - i, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

/* ---- apache_error ------------------------------------------------------- */

/* "[Wed Oct 11 14:32:52.123456 2023]" from s[0]; *end = index after ']'.
 * Also "Oct  4" (space-padded day). 1 and local wall-clock secs + ns. */
static int
apache_time(const char *s, size_t n, size_t *end, int64_t *secs,
            int64_t *frac_ns, int *us)
{
  unsigned d, h, mi, sec, y, f = 0;
  size_t i, fd = 0;
  int mo;

  *us = 0;

  if (n < 26 || s[0] != '[' || s[4] != ' ' || s[8] != ' ' ||
      (mo = sl_pt_month(s + 5)) == 0)
    return 0;
  if (s[9] == ' ' && sl_pt_digits(s + 10, 1, &d)) {
    /* space-padded day */
  } else if (!sl_pt_digits(s + 9, 2, &d)) {
    return 0;
  }
  if (s[11] != ' ' || s[14] != ':' || s[17] != ':' ||
      !sl_pt_digits(s + 12, 2, &h) || !sl_pt_digits(s + 15, 2, &mi) ||
      !sl_pt_digits(s + 18, 2, &sec))
    return 0;
  i = 20;
  if (s[i] == '.') {
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, fd++)
      if (fd < 9)
        f = f * 10 + (unsigned)(s[i] - '0');
    if (fd == 0)
      return 0;
    *us = fd > 3;
    for (; fd < 9; fd++)
      f *= 10;
  }
  if (n - i < 6 || s[i] != ' ' || !sl_pt_digits(s + i + 1, 4, &y) ||
      s[i + 5] != ']')
    return 0;
  if (!sl_pt_civil(y, (unsigned)mo, d, h, mi, sec, secs))
    return 0;
  *frac_ns = f;
  *end = i + 6;
  return 1;
}

static void
apache_error_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
                   const struct sl_src *src, const char *s, size_t n,
                   uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  const char *mod = NULL, *cl = NULL;
  size_t i, j, lv, lvn, modn = 0, cln = 0, slot;
  uint64_t pid = 0, tid = 0;
  int has_pid = 0, has_tid = 0, us;
  int64_t t, frac;
  char lvl[16];
  struct sl_ew_ev ev;

  if (!apache_time(s, n, &i, &t, &frac, &us)) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "apache_error",
                 0, "expected a time like [Wed Oct 11 14:32:52 2023]");
    return;
  }
  /* " [module:level]" or " [level]" */
  if (n - i < 4 || s[i] != ' ' || s[i + 1] != '[') {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "apache_error",
                 i, "expected ' [level]' after the time");
    return;
  }
  lv = i + 2;
  for (j = lv; j < n && s[j] != ']' && s[j] != ' ' && j - lv < 64; j++)
    if (s[j] == ':' && mod == NULL) {
      mod = s + lv;
      modn = j - lv;
      lv = j + 1;
    }
  lvn = j < n && s[j] == ']' ? sl_pt_level(s + lv, j - lv, lvl) : 0;
  if (lvn == 0) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "apache_error",
                 lv, "expected a level in brackets");
    return;
  }
  i = j + 1;
  if (i < n && s[i] == ' ')
    i++;
  /* [pid 123:tid 456] */
  if (n - i > 6 && memcmp(s + i, "[pid ", 5) == 0) {
    j = i + 5;
    if (take_num(s, n, &j, &pid)) {
      has_pid = 1;
      if (n - j > 5 && memcmp(s + j, ":tid ", 5) == 0) {
        j += 5;
        has_tid = take_num(s, n, &j, &tid);
      }
      /* Skip to the closing bracket whatever else it holds. */
      while (j < n && s[j] != ']')
        j++;
      if (j < n) {
        i = j + 1;
        if (i < n && s[i] == ' ')
          i++;
      } else {
        has_pid = has_tid = 0;
      }
    }
  }
  /* [client 1.2.3.4:5678] or [remote ...] (2.4, behind a proxy) */
  if (n - i > 9 && (memcmp(s + i, "[client ", 8) == 0 ||
                    memcmp(s + i, "[remote ", 8) == 0)) {
    j = i + 8;
    while (j < n && s[j] != ']' && s[j] != ' ')
      j++;
    /* "[::1]:80" as the address: its own brackets. */
    if (j < n && s[j] == ']' && s[i + 8] == '[' && j + 1 < n &&
        s[j + 1] == ':') {
      for (j++; j < n && s[j] != ']' && s[j] != ' '; j++)
        ;
    }
    if (j < n && s[j] == ']' && j > i + 8) {
      cl = s + i + 8;
      cln = j - (i + 8);
      i = j + 1;
      if (i < n && s[i] == ' ')
        i++;
    }
  }
  t = sl_tz_to_utc(ctx->ts->tz, t);
  sl_ew_ev_clear(&ev, t * SL_NS_PER_SEC + frac);
  ev.ts_us = (unsigned char)us;
  slot = sl_ew_ev_begin(w);
  if (has_pid) {
    SL_EW_LIT(w, ",\"process\":{\"pid\":");
    sl_ew_u64(w, pid);
    if (has_tid) {
      SL_EW_LIT(w, ",\"thread\":{\"id\":");
      sl_ew_u64(w, tid);
      sl_ew_byte(w, '}');
    }
    sl_ew_byte(w, '}');
  }
  if (mod && modn) {
    SL_EW_LIT(w, ",\"apache\":{\"error\":{\"module\":");
    sl_pt_str(w, mod, modn);
    SL_EW_LIT(w, "}}");
  }
  if (cl)
    put_source(w, cl, cln);
  sl_pt_text(&ev.level, lvl, lvn);
  sl_pt_text(&ev.msg, s + i, n - i);
  sl_parse_corr_rules(ctx, s + i, n - i, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

const struct sl_parser_ops sl_parser_nginx_error = {
  .name = "nginx_error",
  .dataset = "nginx.error",
  .event = nginx_error_event,
};

const struct sl_parser_ops sl_parser_apache_error = {
  .name = "apache_error",
  .dataset = "apache.error",
  .event = apache_error_event,
};
