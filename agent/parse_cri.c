/* parse_cri.c - the container runtime log formats, `cri` and `docker`.
 *
 * cri (containerd, CRI-O; /var/log/pods/.../0.log):
 *   2016-10-06T00:17:09.669794202Z stdout F log content
 *   -> @timestamp (microseconds kept), stream, message = the rest. The
 *      P/F tag is optional (older runtimes write none).
 * docker (json-file driver; /var/lib/docker/containers/<id>/<id>-json.log):
 *   {"log":"log content\n","stream":"stdout","time":"2019-..Z"}
 *   -> message = "log" without its final "\n", stream, @timestamp from
 *      "time"; other members ("attrs") are skipped.
 * Partial lines (cri `P`, docker "log" without a final "\n") are joined
 * into one line before the parser by the per-file aggregation stage
 * (multiline.h), so a joined line reads like any other here.
 *
 * `then:` (parse.c) runs a second parser on the message; the container's
 * time is the event's @timestamp unless that parser finds one, and stream
 * is kept.
 *
 * A line that is not in the format becomes a raw event tagged
 * sluice_cri_parse_failure / sluice_docker_parse_failure.
 */
#include "parse_internal.h"
#include "parse_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_err.h"
#include "sl_time.h"
#include "timestamp.h"

/* ,"stream":"<s>" with s a plain or JSON-escaped (valid) string. */
static void
put_stream(struct sl_ew *w, const char *s, size_t n, int json)
{
  SL_EW_LIT(w, ",\"stream\":\"");
  if (json)
    sl_ew_repair(w, s, n);
  else
    sl_ew_escape(w, s, n);
  sl_ew_byte(w, '"');
}

/* ---- cri ---------------------------------------------------------------- */

static void
cri_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
          const struct sl_src *src, const char *s, size_t n,
          uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  size_t i, j, slot;
  int64_t ts;
  unsigned prec;
  char extra[32];
  struct sl_ew_ev ev;

  for (i = 0; i < n && s[i] != ' '; i++)
    ;
  if (i == 0 || i >= n ||
      sl_ts_parse_auto(s, i, ctx->ts->tz, read_time_ns, &ts, &prec) != 0) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "cri", 0,
                 "expected an RFC 3339 time and a space");
    return;
  }
  j = i + 1;
  if (n - j < 6 || (memcmp(s + j, "stdout", 6) != 0 &&
                    memcmp(s + j, "stderr", 6) != 0) ||
      (n - j > 6 && s[j + 6] != ' ')) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "cri", j,
                 "expected stdout or stderr after the time");
    return;
  }
  i = j + 6 < n ? j + 7 : n;
  /* The tag: P or F (and ':'-separated extras of newer runtimes). */
  if (i < n && (s[i] == 'P' || s[i] == 'F') &&
      (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == ':')) {
    while (i < n && s[i] != ' ')
      i++;
    if (i < n)
      i++;
  }
  if (ctx->then) {
    memcpy(extra, ",\"stream\":\"", 11);
    memcpy(extra + 11, s + j, 6);
    memcpy(extra + 17, "\"", 1);
    sl_parse_then(w, ctx, src, s + i, n - i, offset, flags, ts, extra, 18);
    return;
  }
  sl_ew_ev_clear(&ev, ts);
  ev.ts_us = (unsigned char)(prec == SL_TS_US);
  slot = sl_ew_ev_begin(w);
  put_stream(w, s + j, 6, 0);
  sl_pt_text(&ev.msg, s + i, n - i);
  sl_parse_corr_rules(ctx, s + i, n - i, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

/* ---- docker ------------------------------------------------------------- */

static int
hex4(const char *p, unsigned *v)
{
  unsigned x = 0, d;
  int k;

  for (k = 0; k < 4; k++) {
    if (p[k] >= '0' && p[k] <= '9')
      d = (unsigned)(p[k] - '0');
    else if (p[k] >= 'a' && p[k] <= 'f')
      d = (unsigned)(p[k] - 'a' + 10);
    else if (p[k] >= 'A' && p[k] <= 'F')
      d = (unsigned)(p[k] - 'A' + 10);
    else
      return 0;
    x = x * 16 + d;
  }
  *v = x;
  return 1;
}

/* A JSON string from s[i] (the opening quote). Checks what jansson checks
 * (control bytes, escapes, surrogate pairs) so the contents can be copied
 * verbatim. The index after the closing quote, or 0. *fix: it holds
 * non-ASCII bytes or \u0000 (sl_ew_repair must check them). */
static size_t
json_str(const char *s, size_t n, size_t i, int *fix)
{
  unsigned u, u2;

  *fix = 0;
  for (i++; i < n; i++) {
    unsigned char c = (unsigned char)s[i];

    if (c == '"')
      return i + 1;
    if (c < 0x20)
      return 0;
    if (c >= 0x80) {
      *fix = 1;
      continue;
    }
    if (c != '\\')
      continue;
    if (++i >= n)
      return 0;
    switch (s[i]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
      break;
    case 'u':
      if (n - i < 5 || !hex4(s + i + 1, &u))
        return 0;
      i += 4;
      if (u == 0)
        *fix = 1;
      if (u >= 0xDC00 && u <= 0xDFFF)
        return 0;
      if (u >= 0xD800 && u <= 0xDBFF) {
        if (n - i < 7 || s[i + 1] != '\\' || s[i + 2] != 'u' ||
            !hex4(s + i + 3, &u2) || u2 < 0xDC00 || u2 > 0xDFFF)
          return 0;
        i += 6;
      }
      break;
    default:
      return 0;
    }
  }
  return 0;
}

/* Any JSON value from s[i] (after whitespace): the index after it, or 0.
 * Nested containers are only balanced, their strings checked. */
static size_t
json_skip(const char *s, size_t n, size_t i)
{
  size_t depth = 0;
  int fix;

  do {
    if (i >= n)
      return 0;
    switch (s[i]) {
    case '"':
      if ((i = json_str(s, n, i, &fix)) == 0)
        return 0;
      break;
    case '{': case '[':
      depth++;
      i++;
      break;
    case '}': case ']':
      if (depth == 0)
        return 0;
      depth--;
      i++;
      break;
    default:
      if (depth == 0) {
        while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ' ' &&
               s[i] != '\t')
          i++;
        return i;
      }
      i++;
    }
  } while (depth > 0);
  return i;
}

static size_t
ws(const char *s, size_t n, size_t i)
{
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                   s[i] == '\n'))
    i++;
  return i;
}

/* Unescape valid JSON string contents into out (>= n bytes: escapes never
 * grow); \u0000 becomes U+FFFD (3 bytes for 6). Returns the length. */
static size_t
json_unescape(const char *s, size_t n, char *out)
{
  size_t i, o = 0;
  unsigned u, u2;

  for (i = 0; i < n; i++) {
    if (s[i] != '\\') {
      out[o++] = s[i];
      continue;
    }
    i++;
    switch (s[i]) {
    case 'b': out[o++] = '\b'; break;
    case 'f': out[o++] = '\f'; break;
    case 'n': out[o++] = '\n'; break;
    case 'r': out[o++] = '\r'; break;
    case 't': out[o++] = '\t'; break;
    case 'u':
      hex4(s + i + 1, &u);
      i += 4;
      if (u >= 0xD800 && u <= 0xDBFF) {
        hex4(s + i + 3, &u2);
        i += 6;
        u = 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00);
      }
      if (u == 0)
        u = 0xFFFD;
      if (u < 0x80) {
        out[o++] = (char)u;
      } else if (u < 0x800) {
        out[o++] = (char)(0xC0 | (u >> 6));
        out[o++] = (char)(0x80 | (u & 0x3F));
      } else if (u < 0x10000) {
        out[o++] = (char)(0xE0 | (u >> 12));
        out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
        out[o++] = (char)(0x80 | (u & 0x3F));
      } else {
        out[o++] = (char)(0xF0 | (u >> 18));
        out[o++] = (char)(0x80 | ((u >> 12) & 0x3F));
        out[o++] = (char)(0x80 | ((u >> 6) & 0x3F));
        out[o++] = (char)(0x80 | (u & 0x3F));
      }
      break;
    default: out[o++] = s[i]; break;   /* " \ / */
    }
  }
  return o;
}

/* The value of "log" ends in the escape \n (not in an escaped backslash
 * followed by 'n'). */
static int
ends_in_newline(const char *s, size_t n)
{
  size_t k = 0;

  if (n < 2 || s[n - 1] != 'n' || s[n - 2] != '\\')
    return 0;
  while (k + 2 <= n && s[n - 2 - k] == '\\')
    k++;
  return k % 2 == 1;
}

static void
docker_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
             const struct sl_src *src, const char *s, size_t n,
             uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  const char *msg = NULL, *stream = NULL, *tp = NULL;
  size_t mn = 0, sn = 0, tn = 0, i, ks, ke, ve, slot, un;
  int msg_fix = 0, stream_fix = 0, fix, tfix = 0;
  int64_t ts = read_time_ns;
  unsigned prec = SL_TS_MS;
  char stack[4096], *buf, extra[96];
  struct sl_ew_ev ev;

  i = ws(s, n, 0);
  if (i >= n || s[i] != '{') {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "docker", i,
                 "not a JSON object");
    return;
  }
  i = ws(s, n, i + 1);
  while (i < n && s[i] != '}') {
    ks = i;
    if (s[i] != '"' || (ke = json_str(s, n, i, &fix)) == 0)
      goto bad;
    i = ws(s, n, ke);
    if (i >= n || s[i] != ':')
      goto bad;
    i = ws(s, n, i + 1);
    if (i < n && s[i] == '"') {
      if ((ve = json_str(s, n, i, &fix)) == 0)
        goto bad;
      /* First occurrence wins, as parse_json.c. */
      if (ke - ks == 5 && memcmp(s + ks, "\"log\"", 5) == 0 && !msg) {
        msg = s + i + 1;
        mn = ve - i - 2;
        msg_fix = fix;
      } else if (ke - ks == 8 && memcmp(s + ks, "\"stream\"", 8) == 0 &&
                 !stream) {
        stream = s + i + 1;
        sn = ve - i - 2;
        stream_fix = fix;
      } else if (ke - ks == 6 && memcmp(s + ks, "\"time\"", 6) == 0 &&
                 !tp) {
        tp = s + i + 1;
        tn = ve - i - 2;
        tfix = fix;
      }
    } else if ((ve = json_skip(s, n, i)) == 0) {
      goto bad;
    }
    i = ws(s, n, ve);
    if (i < n && s[i] == ',')
      i = ws(s, n, i + 1);
    else if (i >= n || s[i] != '}')
      goto bad;
  }
  if (i >= n || ws(s, n, i + 1) != n)
    goto bad;
  if (msg == NULL) {
    sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "docker", 0,
                 "no \"log\" string member");
    return;
  }
  if (tp && !tfix && memchr(tp, '\\', tn) == NULL &&
      sl_ts_parse_auto(tp, tn, ctx->ts->tz, read_time_ns, &ts, &prec) != 0)
    ts = read_time_ns;
  if (ends_in_newline(msg, mn))
    mn -= 2;
  if (ctx->then) {
    /* The second parser reads plain bytes. */
    buf = mn <= sizeof(stack) ? stack : malloc(mn);
    if (buf == NULL) {
      w->err = SL_ENOMEM;
      return;
    }
    un = json_unescape(msg, mn, buf);
    i = 0;
    if (stream && sn < sizeof(extra) - 16 && !stream_fix) {
      memcpy(extra, ",\"stream\":\"", 11);
      memcpy(extra + 11, stream, sn);
      extra[11 + sn] = '"';
      i = 12 + sn;
    }
    sl_parse_then(w, ctx, src, buf, un, offset, flags, ts, extra, i);
    if (buf != stack)
      free(buf);
    return;
  }
  sl_ew_ev_clear(&ev, ts);
  ev.ts_us = (unsigned char)(prec == SL_TS_US);
  slot = sl_ew_ev_begin(w);
  if (stream)
    put_stream(w, stream, sn, 1);
  ev.msg.p = msg;
  ev.msg.n = mn;
  ev.msg.json = 1;
  ev.msg.fix = (unsigned char)msg_fix;
  sl_parse_corr_rules(ctx, msg, mn, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
  return;

bad:
  sl_pt_failed(w, ctx, src, s, n, offset, flags, read_time_ns, "docker", i,
               "not a json-file log record");
}

const struct sl_parser_ops sl_parser_cri = {
  .name = "cri",
  .event = cri_event,
};

const struct sl_parser_ops sl_parser_docker = {
  .name = "docker",
  .event = docker_event,
};
