/* parse_syslog.c - the `syslog` parser: RFC 3164 lines as syslog daemons
 * write them to files, and RFC 5424 lines. ECS mapping as Filebeat's
 * system/syslog module.
 *
 * RFC 3164 (the <PRI> is optional: rsyslog's file format drops it):
 *   <34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed
 *   Dec  4 04:47:44 combo sshd(pam_unix)[19939]: authentication failure
 *   Jun  9 06:06:20 combo syslogd 1.4.1: restart.
 *   2023-10-11T22:14:15.003+02:00 host tag: msg   (rsyslog high precision)
 *   -> host.hostname, process.name (the tag as written, everything up to
 *      "[pid]:" or ":"), process.pid, message = the text after "tag: ".
 *      A line without "tag:" keeps everything after the host as message.
 *      The year of "Mmm dd" is inferred from the read time (timestamp.h: a
 *      December line read in January is last year's); the time is in the
 *      input's `timezone:`.
 * RFC 5424:
 *   <165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [ex@32473 a="1"] msg
 *   -> host.hostname, process.name and log.syslog.appname (APP-NAME),
 *      log.syslog.procid and process.pid (when numeric), log.syslog.msgid,
 *      log.syslog.version, log.syslog.structured_data {SD-ID: {param:
 *      value}} (escapes \" \\ \] undone; a repeated SD-ID or param keeps
 *      the first), message without a leading UTF-8 BOM. "-" is NILVALUE.
 * Both: with <PRI>, log.syslog.priority, .facility.code/.name,
 * .severity.code/.name and log.level (level.h: sl_level_from_syslog).
 *
 * host.hostname and log.syslog are written as top-level dotted keys
 * ("host.hostname", "log.syslog"): the agent writes its own "host" and
 * "log" objects after the parser's fields and a one-pass writer cannot
 * merge into them; ES reads both forms as the same fields (parse_json.c
 * does the same for ECS-native lines).
 *
 * A line without a timestamp after the PRI, or with a broken RFC 5424
 * header or structured data, becomes a raw event tagged
 * sluice_syslog_parse_failure with error.message.
 */
#include "parse_internal.h"
#include "parse_text.h"

#include <stdio.h>
#include <string.h>

#include "level.h"
#include "sl_time.h"
#include "timestamp.h"

/* rsyslog's names (%syslogfacility-text%, %syslogseverity-text%). */
static const char *const facility_names[24] = {
  "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
  "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console",
  "solaris-cron", "local0", "local1", "local2", "local3", "local4",
  "local5", "local6", "local7",
};

static const char *const severity_names[8] = {
  "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

/* Repeated SD-IDs / params beyond these counts are not checked for
 * duplicates: they are dropped (a line with more is not syslog anyone
 * writes). */
#define SD_MAX_IDS 32
#define SD_MAX_PARAMS 64

/* "<PRI>" at s[0]: 1..3 digits, 0..191, no leading zero except "<0>".
 * 1 and *pri, *i past '>'; 0 if absent or malformed. */
static int
take_pri(const char *s, size_t n, size_t *i, int *pri)
{
  size_t j;
  int v = 0;

  if (n < 3 || s[0] != '<')
    return 0;
  for (j = 1; j < n && j <= 4 && s[j] >= '0' && s[j] <= '9'; j++)
    v = v * 10 + (s[j] - '0');
  if (j == 1 || j > 4 || j >= n || s[j] != '>' || v > 191 ||
      (s[1] == '0' && j > 2))
    return 0;
  *pri = v;
  *i = j + 1;
  return 1;
}

static size_t
token_end(const char *s, size_t n, size_t i)
{
  while (i < n && s[i] != ' ')
    i++;
  return i;
}

/* process.{name,pid}: name may be NULL, pid < 0 for none. */
static void
put_process(struct sl_ew *w, const char *name, size_t nn, int64_t pid)
{
  if (name == NULL && pid < 0)
    return;
  SL_EW_LIT(w, ",\"process\":{");
  if (name) {
    SL_EW_LIT(w, "\"name\":");
    sl_pt_str(w, name, nn);
  }
  if (pid >= 0) {
    if (name)
      sl_ew_byte(w, ',');
    SL_EW_LIT(w, "\"pid\":");
    sl_ew_u64(w, (uint64_t)pid);
  }
  sl_ew_byte(w, '}');
}

/* The members of log.syslog that come from the PRI (no braces). */
static void
put_pri(struct sl_ew *w, int pri)
{
  SL_EW_LIT(w, "\"priority\":");
  sl_ew_u64(w, (uint64_t)pri);
  SL_EW_LIT(w, ",\"facility\":{\"code\":");
  sl_ew_u64(w, (uint64_t)(pri >> 3));
  SL_EW_LIT(w, ",\"name\":\"");
  sl_ew_put(w, facility_names[pri >> 3], strlen(facility_names[pri >> 3]));
  SL_EW_LIT(w, "\"},\"severity\":{\"code\":");
  sl_ew_u64(w, (uint64_t)(pri & 7));
  SL_EW_LIT(w, ",\"name\":\"");
  sl_ew_put(w, severity_names[pri & 7], strlen(severity_names[pri & 7]));
  SL_EW_LIT(w, "\"}");
}

static void
set_level(struct sl_ew_ev *ev, int pri)
{
  const char *lv;

  if (pri >= 0 && (lv = sl_level_from_syslog(pri & 7)) != NULL)
    sl_pt_text(&ev->level, lv, strlen(lv));
}

/* ---- RFC 3164 ----------------------------------------------------------- */

static void
bsd_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
          const struct sl_src *src, const char *s, size_t n, size_t i,
          int pri, uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  const char *host = NULL, *tag = NULL;
  size_t hn = 0, tn = 0, te, j, k, slot, msg;
  int64_t ts, pid = -1;
  unsigned prec = SL_TS_MS;
  uint64_t v;
  struct sl_ew_ev ev;

  /* "Mmm dd hh:mm:ss" (15 bytes, day space-padded) or an RFC 3339
   * token. */
  if (n - i >= 15 && sl_pt_month(s + i) &&
      sl_ts_parse_auto(s + i, 15, ctx->ts->tz, read_time_ns, &ts,
                       &prec) == 0) {
    j = i + 15;
  } else {
    j = token_end(s, n, i);
    if (j == i || sl_ts_parse_auto(s + i, j - i, ctx->ts->tz, read_time_ns,
                                   &ts, &prec) != 0) {
      sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", i,
                   "expected a time like 'Dec  4 04:47:44' or RFC 3339");
      return;
    }
  }
  if (j < n && s[j] != ' ') {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", j,
                 "expected a space after the time");
    return;
  }
  msg = j < n ? j + 1 : n;
  /* HOSTNAME, unless the next token already is "tag:" (senders that leave
   * the host out, RFC 3164 section 4.3.3). */
  te = token_end(s, n, msg);
  if (te > msg && te < n && s[te - 1] != ':' && s[te - 1] != ']') {
    host = s + msg;
    hn = te - msg;
    msg = te + 1;
  }
  /* TAG[PID]: the text up to the first ':' followed by a space or the end
   * (Filebeat's %{DATA:process.name}(?:\[%{POSINT}\])?: ). */
  for (j = msg; j < n; j++) {
    if (s[j] == ':' && (j + 1 == n || s[j + 1] == ' '))
      break;
  }
  if (j < n && j > msg) {
    tag = s + msg;
    tn = j - msg;
    if (tn > 2 && tag[tn - 1] == ']') {
      for (k = tn - 1; k > 0 && tag[k - 1] != '['; k--)
        ;
      if (k > 1 && sl_pt_u64(tag + k, tn - 1 - k, &v)) {
        pid = (int64_t)v;
        tn = k - 1;
      }
    }
    msg = j + 1 < n ? j + 2 : n;
  }
  sl_ew_ev_clear(&ev, ts);
  ev.ts_us = (unsigned char)(prec == SL_TS_US);
  slot = sl_ew_ev_begin(w);
  if (host) {
    SL_EW_LIT(w, ",\"host.hostname\":");
    sl_pt_str(w, host, hn);
  }
  put_process(w, tn ? tag : NULL, tn, pid);
  if (pri >= 0) {
    SL_EW_LIT(w, ",\"log.syslog\":{");
    put_pri(w, pri);
    sl_ew_byte(w, '}');
  }
  set_level(&ev, pri);
  sl_pt_text(&ev.msg, s + msg, n - msg);
  sl_parse_corr_rules(ctx, s + msg, n - msg, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

/* ---- RFC 5424 ----------------------------------------------------------- */

struct span {
  const char *p;
  size_t n;
};

static int
span_eq(const struct span *a, const char *p, size_t n)
{
  return a->n == n && memcmp(a->p, p, n) == 0;
}

/* SD-NAME: 1..32 printable US-ASCII except '=', ' ', ']', '"'. */
static size_t
sd_name(const char *s, size_t n, size_t i)
{
  size_t j = i;

  while (j < n && j - i <= 32 && s[j] > ' ' && s[j] < 127 && s[j] != '=' &&
         s[j] != ']' && s[j] != '"')
    j++;
  return j - i >= 1 && j - i <= 32 ? j : i;
}

/* A PARAM-VALUE from after its opening quote: the index of the closing
 * quote (escaped quotes skipped), or n. */
static size_t
sd_value_end(const char *s, size_t n, size_t i)
{
  for (; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n)
      i++;
    else if (s[i] == '"')
      return i;
  }
  return n;
}

/* The value with \" \\ \] undone (RFC 5424 6.3.3: a backslash before any
 * other byte is kept). */
static void
put_sd_value(struct sl_ew *w, const char *s, size_t n)
{
  size_t i, start = 0;

  sl_ew_byte(w, '"');
  for (i = 0; i + 1 < n; i++) {
    if (s[i] == '\\' && (s[i + 1] == '"' || s[i + 1] == '\\' ||
                         s[i + 1] == ']')) {
      sl_ew_escape(w, s + start, i - start);
      start = i + 1;
      i++;
    }
  }
  sl_ew_escape(w, s + start, n - start);
  sl_ew_byte(w, '"');
}

/* STRUCTURED-DATA from s[i] ('['): checks it, then writes
 * ,"structured_data":{...}. 0 and *end after the last ']', or -1 with
 * nothing written and *bad at the first byte that does not fit. */
static int
sd_write(struct sl_ew *w, const char *s, size_t n, size_t i, size_t *end,
         size_t *bad)
{
  struct span ids[SD_MAX_IDS], params[SD_MAX_PARAMS];
  size_t nids = 0, nparams, j, k, ne, ve, pass, id_at;
  int first_id = 1, first_p, dup;

  /* Two passes: check the whole thing first so that a broken line is not
   * half written, then write. */
  for (pass = 0; pass < 2; pass++) {
    j = i;
    if (pass == 1)
      SL_EW_LIT(w, ",\"structured_data\":{");
    while (j < n && s[j] == '[') {
      ne = sd_name(s, n, j + 1);
      if (ne == j + 1) {
        *bad = j + 1;
        return -1;
      }
      id_at = j + 1;
      dup = 0;
      if (pass == 1) {
        for (k = 0; k < nids; k++)
          if (span_eq(&ids[k], s + id_at, ne - id_at))
            dup = 1;
        if (!dup && nids < SD_MAX_IDS) {
          ids[nids].p = s + id_at;
          ids[nids++].n = ne - id_at;
          if (!first_id)
            sl_ew_byte(w, ',');
          first_id = 0;
          sl_pt_str(w, s + id_at, ne - id_at);
          SL_EW_LIT(w, ":{");
        } else {
          dup = 1;
        }
      }
      j = ne;
      nparams = 0;
      first_p = 1;
      while (j < n && s[j] == ' ') {
        size_t pn = j + 1;

        ne = sd_name(s, n, pn);
        if (ne == pn || ne + 1 >= n || s[ne] != '=' || s[ne + 1] != '"') {
          *bad = ne;
          return -1;
        }
        ve = sd_value_end(s, n, ne + 2);
        if (ve >= n) {
          *bad = ne + 2;
          return -1;
        }
        if (pass == 1 && !dup) {
          int pdup = 0;

          for (k = 0; k < nparams; k++)
            if (span_eq(&params[k], s + pn, ne - pn))
              pdup = 1;
          if (!pdup && nparams < SD_MAX_PARAMS) {
            params[nparams].p = s + pn;
            params[nparams++].n = ne - pn;
            if (!first_p)
              sl_ew_byte(w, ',');
            first_p = 0;
            sl_pt_str(w, s + pn, ne - pn);
            sl_ew_byte(w, ':');
            put_sd_value(w, s + ne + 2, ve - (ne + 2));
          }
        }
        j = ve + 1;
      }
      if (j >= n || s[j] != ']') {
        *bad = j;
        return -1;
      }
      if (pass == 1 && !dup)
        sl_ew_byte(w, '}');
      j++;
    }
    if (j < n && s[j] != ' ') {
      *bad = j;
      return -1;
    }
    if (pass == 1)
      sl_ew_byte(w, '}');
  }
  *end = j;
  return 0;
}

/* One header field up to the next space: 1..max printable ASCII bytes or
 * "-" (then *p = NULL). 1 and *i past the space, else 0. */
static int
hdr_field(const char *s, size_t n, size_t *i, size_t max, const char **p,
          size_t *pn)
{
  size_t j = token_end(s, n, *i), k;

  if (j == *i || j - *i > max || j >= n)
    return 0;
  for (k = *i; k < j; k++)
    if (s[k] < 33 || s[k] > 126)
      return 0;
  if (j - *i == 1 && s[*i] == '-') {
    *p = NULL;
    *pn = 0;
  } else {
    *p = s + *i;
    *pn = j - *i;
  }
  *i = j + 1;
  return 1;
}

static void
rfc5424_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
              const struct sl_src *src, const char *s, size_t n, size_t i,
              int pri, uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  const char *host, *app, *procid, *msgid, *ver = s + i;
  size_t hn, an, pn, mn, vn, j, sd_end = 0, bad = 0, slot, sd_at, start;
  int64_t ts = read_time_ns, pid = -1;
  unsigned prec = SL_TS_MS;
  uint64_t v;
  struct sl_ew_ev ev;

  /* VERSION SP */
  j = token_end(s, n, i);
  vn = j - i;
  i = j + 1;
  /* TIMESTAMP SP */
  j = token_end(s, n, i);
  if (j >= n || j == i) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", i,
                 "RFC 5424: expected TIMESTAMP HOSTNAME APP-NAME PROCID MSGID");
    return;
  }
  if (!(j - i == 1 && s[i] == '-') &&
      sl_ts_parse_auto(s + i, j - i, ctx->ts->tz, read_time_ns, &ts,
                       &prec) != 0) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", i,
                 "RFC 5424: TIMESTAMP is not RFC 3339");
    return;
  }
  i = j + 1;
  if (!hdr_field(s, n, &i, 255, &host, &hn) ||
      !hdr_field(s, n, &i, 48, &app, &an) ||
      !hdr_field(s, n, &i, 128, &procid, &pn) ||
      !hdr_field(s, n, &i, 32, &msgid, &mn) || i >= n) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", i,
                 "RFC 5424: expected HOSTNAME APP-NAME PROCID MSGID "
                 "STRUCTURED-DATA");
    return;
  }
  sd_at = i;
  if (s[i] == '-') {
    sd_end = i + 1;
    if (sd_end < n && s[sd_end] != ' ') {
      sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog",
                   sd_end, "RFC 5424: expected a space after STRUCTURED-DATA");
      return;
    }
  } else if (s[i] != '[') {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", i,
                 "RFC 5424: STRUCTURED-DATA must be '-' or '[id ...]'");
    return;
  }
  if (procid && sl_pt_u64(procid, pn, &v))
    pid = (int64_t)v;
  sl_ew_ev_clear(&ev, ts);
  ev.ts_us = (unsigned char)(prec == SL_TS_US);
  start = sl_ew_len(w);
  slot = sl_ew_ev_begin(w);
  if (host) {
    SL_EW_LIT(w, ",\"host.hostname\":");
    sl_pt_str(w, host, hn);
  }
  put_process(w, app, an, pid);
  SL_EW_LIT(w, ",\"log.syslog\":{");
  put_pri(w, pri);
  SL_EW_LIT(w, ",\"version\":");
  sl_pt_str(w, ver, vn);
  if (app) {
    SL_EW_LIT(w, ",\"appname\":");
    sl_pt_str(w, app, an);
  }
  if (procid) {
    SL_EW_LIT(w, ",\"procid\":");
    sl_pt_str(w, procid, pn);
  }
  if (msgid) {
    SL_EW_LIT(w, ",\"msgid\":");
    sl_pt_str(w, msgid, mn);
  }
  if (s[sd_at] == '[') {
    if (sd_write(w, s, n, sd_at, &sd_end, &bad) != 0) {
      /* Undo this event: the whole line goes out raw. */
      if (!w->err)
        sl_ew_setlen(w, start);
      sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog",
                   bad, "RFC 5424: malformed STRUCTURED-DATA");
      return;
    }
  }
  sl_ew_byte(w, '}');
  set_level(&ev, pri);
  i = sd_end < n ? sd_end + 1 : n;
  /* MSG: an optional BOM marks UTF-8; it is not part of the text. */
  if (n - i >= 3 && (unsigned char)s[i] == 0xEF &&
      (unsigned char)s[i + 1] == 0xBB && (unsigned char)s[i + 2] == 0xBF)
    i += 3;
  if (i < n) {
    sl_pt_text(&ev.msg, s + i, n - i);
    sl_parse_corr_rules(ctx, s + i, n - i, &ev);
  }
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

static void
syslog_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
             const struct sl_src *src, const char *s, size_t n,
             uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  size_t i = 0, j;
  int pri = -1;

  if (n && s[0] == '<' && !take_pri(s, n, &i, &pri)) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "syslog", 0,
                 "expected <PRI> with PRI 0..191");
    return;
  }
  /* RFC 5424: "<PRI>VERSION SP" with VERSION 1..999 (RFC 3339 times in
   * RFC 3164 lines start with 4 digits). */
  if (pri >= 0) {
    for (j = i; j < n && j - i < 4 && s[j] >= '0' && s[j] <= '9'; j++)
      ;
    if (j > i && j - i <= 3 && j < n && s[j] == ' ' && s[i] != '0') {
      rfc5424_event(w, ctx, src, s, n, i, pri, offset, flags,
                    read_time_ns);
      return;
    }
  }
  bsd_event(w, ctx, src, s, n, i, pri, offset, flags, read_time_ns);
}

const struct sl_parser_ops sl_parser_syslog = {
  .name = "syslog",
  .dataset = "syslog",
  .event = syslog_event,
};
