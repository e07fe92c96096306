/* parse_logfmt.c - the `logfmt` parser: `key=value key2="quoted \"v\"" flag`
 * (go-kit, logrus' text formatter, Heroku, Grafana's own logs).
 *
 * Rules:
 *  - Pairs are separated by spaces (tabs too). A key is a run of bytes
 *    other than space, '=', '"' and control characters; `key=` alone has an
 *    empty value; a bare key (no '=') is `true`.
 *  - A value is bare (up to the next space) or double-quoted with Go/JSON
 *    escapes (\" \\ \n \t \r \/ \b \f \a \v \xNN \uXXXX \UXXXXXXXX; an
 *    unknown escape keeps both bytes). Values are strings: logfmt has no
 *    types, and a field that is sometimes "12" and sometimes "n/a" must
 *    not make ES refuse one of them.
 *  - ECS keys, first occurrence only and only if the value fits:
 *      msg message -> message
 *      level lvl severity -> log.level (normalised as parse_text.h says)
 *      time ts timestamp @timestamp -> @timestamp (RFC 3339 or an epoch,
 *        not before 2001-09-09 as in the JSON parser)
 *      trace_id traceId trace.id -> trace.id (32 hex), span_id spanId
 *        span.id -> span.id (16 hex), transaction_id transactionId ->
 *        transaction.id (16 hex), request_id requestId req_id
 *        x_request_id correlation_id (any case) -> http.request.id
 *    A value that does not fit its ECS field stays in app.<key>.
 *  - Every other key goes to app.<key> (as the JSON parser's non-ECS
 *    keys). A repeated key keeps its first value: ES refuses documents
 *    with duplicate keys.
 *  - A line without any key=value pair, with an unterminated quote, a '='
 *    without a key or a key that is not valid UTF-8 is not logfmt: a raw event tagged
 *    sluice_logfmt_parse_failure.
 */
#include "parse_internal.h"
#include "parse_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xxhash.h>

#include "sl_err.h"
#include "sl_json.h"
#include "sl_time.h"

/* Epochs before this are "not a timestamp" (as in parse_json.c). */
#define MIN_EPOCH_NS (1000000000LL * SL_NS_PER_SEC)

enum role { R_NONE, R_MSG, R_LEVEL, R_TS, R_TRACE, R_SPAN, R_TXN, R_REQID };

struct span {
  const char *p;
  size_t n;
  int quoted;              /* p/n are inside the quotes, escapes intact */
};

/* Keys seen in this line: compared one by one for the usual few, in an
 * open-addressing table on xxh3-64 (heap) past LINEAR_KEYS, so that a line
 * of 100k keys stays linear. */
#define LINEAR_KEYS 16
struct keyset {
  struct span lin[LINEAR_KEYS];
  struct span *slot;       /* NULL while linear */
  size_t cap, n;
};

static enum role
classify(const char *k, size_t n)
{
  switch (n) {
  case 2:
    return memcmp(k, "ts", 2) == 0 ? R_TS : R_NONE;
  case 3:
    if (memcmp(k, "msg", 3) == 0) return R_MSG;
    if (memcmp(k, "lvl", 3) == 0) return R_LEVEL;
    return R_NONE;
  case 4:
    return memcmp(k, "time", 4) == 0 ? R_TS : R_NONE;
  case 5:
    return memcmp(k, "level", 5) == 0 ? R_LEVEL : R_NONE;
  case 6:
    if (memcmp(k, "spanId", 6) == 0) return R_SPAN;
    return strncasecmp(k, "req_id", 6) == 0 ? R_REQID : R_NONE;
  case 7:
    if (memcmp(k, "message", 7) == 0) return R_MSG;
    if (memcmp(k, "traceId", 7) == 0) return R_TRACE;
    if (memcmp(k, "span_id", 7) == 0 || memcmp(k, "span.id", 7) == 0)
      return R_SPAN;
    return R_NONE;
  case 8:
    if (memcmp(k, "severity", 8) == 0) return R_LEVEL;
    if (memcmp(k, "trace_id", 8) == 0 || memcmp(k, "trace.id", 8) == 0)
      return R_TRACE;
    return R_NONE;
  case 9:
    if (memcmp(k, "timestamp", 9) == 0) return R_TS;
    if (strncasecmp(k, "requestId", 9) == 0) return R_REQID;
    return R_NONE;
  case 10:
    if (memcmp(k, "@timestamp", 10) == 0) return R_TS;
    if (strncasecmp(k, "request_id", 10) == 0) return R_REQID;
    return R_NONE;
  case 12:
    return strncasecmp(k, "x_request_id", 12) == 0 ? R_REQID : R_NONE;
  case 13:
    return memcmp(k, "transactionId", 13) == 0 ? R_TXN : R_NONE;
  case 14:
    if (memcmp(k, "transaction_id", 14) == 0) return R_TXN;
    if (strncasecmp(k, "correlation_id", 14) == 0) return R_REQID;
    return R_NONE;
  default:
    return R_NONE;
  }
}

static int
is_key_byte(unsigned char c)
{
  return c > ' ' && c != '=' && c != '"' && c != 0x7f;
}

/* 1 if s is valid UTF-8. Keys must be: two different invalid sequences
 * both become U+FFFD in the output, and two keys that print the same
 * would be duplicates ES refuses. */
static int
utf8_ok(const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, k;

  while (i < n) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    if ((k = sl_utf8_seq(u + i, n - i)) == 0)
      return 0;
    i += k;
  }
  return 1;
}

static int
hexv(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t
utf8_put(uint32_t cp, char *o)
{
  if (cp >= 0xd800 && cp <= 0xdfff)
    cp = 0xfffd;
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  if (cp > 0x10ffff)
    cp = 0xfffd;
  if (cp == 0xfffd)
    return utf8_put(cp, o);
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Write a value's text as JSON string contents (no quotes): bare values
 * escaped, quoted ones unescaped then escaped. */
static void
put_value(struct sl_ew *w, const struct span *v)
{
  const char *s = v->p, *e = v->p + v->n, *run;
  char u[8];
  uint32_t cp;
  int k, d, x;

  if (!v->quoted) {
    sl_ew_escape(w, s, v->n);
    return;
  }
  while (s < e) {
    run = s;
    while (s < e && *s != '\\')
      s++;
    sl_ew_escape(w, run, (size_t)(s - run));
    if (s >= e)
      break;
    if (s + 1 >= e) {          /* cannot happen: a quote ends the value */
      sl_ew_escape(w, s, 1);
      break;
    }
    switch (s[1]) {
    case 'n': u[0] = '\n'; k = 1; break;
    case 't': u[0] = '\t'; k = 1; break;
    case 'r': u[0] = '\r'; k = 1; break;
    case 'b': u[0] = '\b'; k = 1; break;
    case 'f': u[0] = '\f'; k = 1; break;
    case 'a': u[0] = '\a'; k = 1; break;
    case 'v': u[0] = '\v'; k = 1; break;
    case '"': case '\\': case '/': case '\'':
      u[0] = s[1]; k = 1; break;
    case 'x': case 'u': case 'U':
      d = s[1] == 'x' ? 2 : s[1] == 'u' ? 4 : 8;
      cp = 0;
      if (e - s < 2 + d) {
        k = 0;
        break;
      }
      for (k = 0; k < d; k++) {
        if ((x = hexv(s[2 + k])) < 0)
          break;
        cp = cp * 16 + (uint32_t)x;
      }
      if (k < d) {
        k = 0;
        break;
      }
      /* \xNN is a byte (may be part of UTF-8); \u, \U code points. */
      if (d == 2) {
        u[0] = (char)cp;
        k = 1;
      } else {
        k = (int)utf8_put(cp, u);
      }
      sl_ew_escape(w, u, (size_t)k);
      s += 2 + d;
      continue;
    default:
      k = 0;
      break;
    }
    if (k == 0) {              /* unknown escape: keep it as written */
      sl_ew_escape(w, s, 2);
    } else {
      sl_ew_escape(w, u, (size_t)k);
    }
    s += 2;
  }
}

/* Decode a short value into buf (at most cap bytes); SIZE_MAX if longer
 * or not plain text. For levels, ids and timestamps. */
static size_t
small_value(const struct span *v, char *buf, size_t cap)
{
  size_t i;

  if (v->n > cap)
    return SIZE_MAX;
  for (i = 0; i < v->n; i++) {
    if (v->quoted && v->p[i] == '\\')
      return SIZE_MAX;
    buf[i] = v->p[i];
  }
  return v->n;
}

/* 1 if s is exactly n hex digits, not all zero; lower-cased into out. */
static int
hex_id(const char *s, size_t len, size_t n, char *out)
{
  size_t i;
  int nz = 0;

  if (len != n)
    return 0;
  /* Check all before writing: out is the event's field, "" = absent. */
  for (i = 0; i < n; i++) {
    if (hexv(s[i]) < 0)
      return 0;
    nz |= s[i] != '0';
  }
  if (!nz)
    return 0;
  for (i = 0; i < n; i++)
    out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] + 32) : s[i];
  out[n] = '\0';
  return 1;
}

static void
keyset_init(struct keyset *ks)
{
  ks->slot = NULL;
  ks->cap = 0;
  ks->n = 0;
}

static void
keyset_free(struct keyset *ks)
{
  free(ks->slot);
}

/* Insert into the table (room is there); 1 if new, 0 if seen. */
static int
table_add(struct span *slot, size_t cap, const char *k, size_t n)
{
  size_t i = (size_t)XXH3_64bits(k, n) & (cap - 1);

  while (slot[i].p) {
    if (slot[i].n == n && memcmp(slot[i].p, k, n) == 0)
      return 0;
    i = (i + 1) & (cap - 1);
  }
  slot[i].p = k;
  slot[i].n = n;
  return 1;
}

static int
keyset_grow(struct keyset *ks)
{
  size_t cap = ks->cap ? ks->cap * 2 : LINEAR_KEYS * 4, i;
  struct span *nw = calloc(cap, sizeof(*nw));

  if (nw == NULL)
    return SL_ENOMEM;
  if (ks->slot == NULL) {
    for (i = 0; i < ks->n; i++)
      table_add(nw, cap, ks->lin[i].p, ks->lin[i].n);
  } else {
    for (i = 0; i < ks->cap; i++)
      if (ks->slot[i].p)
        table_add(nw, cap, ks->slot[i].p, ks->slot[i].n);
    free(ks->slot);
  }
  ks->slot = nw;
  ks->cap = cap;
  return SL_OK;
}

/* 1 if new, 0 if seen, < 0 on allocation failure. */
static int
keyset_add(struct keyset *ks, const char *k, size_t n)
{
  size_t i;
  int rc;

  if (ks->slot == NULL) {
    for (i = 0; i < ks->n; i++)
      if (ks->lin[i].n == n && memcmp(ks->lin[i].p, k, n) == 0)
        return 0;
    if (ks->n < LINEAR_KEYS) {
      ks->lin[ks->n].p = k;
      ks->lin[ks->n++].n = n;
      return 1;
    }
  }
  if ((ks->n + 1) * 2 > ks->cap && (rc = keyset_grow(ks)) != 0)
    return rc;
  rc = table_add(ks->slot, ks->cap, k, n);
  ks->n += (size_t)rc;
  return rc;
}

struct lstate {
  struct sl_ew_ev ev;
  struct span msg;
  char lvl[16];
  char reqbuf[256];
  int app_open;
};

/* Try a special key's value; 1 if it filled its field. */
static int
use_special(struct lstate *st, enum role role, const struct span *v)
{
  struct sl_ew_ev *ev = &st->ev;
  char buf[64];
  size_t n, ln;
  int64_t ns;

  switch (role) {
  case R_MSG:
    if (st->msg.p)
      return 0;
    st->msg = *v;
    return 1;
  case R_LEVEL:
    if (ev->level.p || (n = small_value(v, buf, 15)) == SIZE_MAX ||
        (ln = sl_pt_level(buf, n, st->lvl)) == 0)
      return 0;
    sl_pt_text(&ev->level, st->lvl, ln);
    return 1;
  case R_TS:
    if ((n = small_value(v, buf, sizeof(buf))) == SIZE_MAX || n == 0)
      return 0;
    if (sl_time_parse_rfc3339(buf, n, &ns) != 0 &&
        (sl_time_parse_epoch(buf, n, &ns) != 0 || ns < MIN_EPOCH_NS))
      return 0;
    ev->ts_ns = ns;
    return 1;
  case R_TRACE:
    return !ev->trace_id[0] && hex_id(v->p, v->n, 32, ev->trace_id);
  case R_SPAN:
    return !ev->span_id[0] && hex_id(v->p, v->n, 16, ev->span_id);
  case R_TXN:
    return !ev->txn_id[0] && hex_id(v->p, v->n, 16, ev->txn_id);
  case R_REQID:
    if (ev->req_id.p || v->n == 0 ||
        (n = small_value(v, st->reqbuf, sizeof(st->reqbuf))) == SIZE_MAX)
      return 0;
    sl_pt_text(&ev->req_id, st->reqbuf, n);
    return 1;
  default:
    return 0;
  }
}

static void
logfmt_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
             const struct sl_src *src, const char *s, size_t n,
             uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  static const struct span v_true = { "true", 4, 0 };
  size_t start = sl_ew_len(w), i = 0, k0, kn, slot, at = 0;
  const char *why = NULL;
  struct lstate st;
  struct keyset ks;
  struct span v;
  int pairs = 0, rc, bare;
  enum role role;
  char emsg[96];

  keyset_init(&ks);
  sl_ew_ev_clear(&st.ev, read_time_ns);
  st.msg.p = NULL;
  st.app_open = 0;
  slot = sl_ew_ev_begin(w);
  for (;;) {
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
      i++;
    if (i >= n)
      break;
    k0 = i;
    while (i < n && is_key_byte((unsigned char)s[i]))
      i++;
    kn = i - k0;
    if (kn == 0) {
      at = i;
      why = s[i] == '=' ? "'=' without a key" : "expected a key";
      break;
    }
    if (!utf8_ok(s + k0, kn)) {
      at = k0;
      why = "invalid UTF-8 in a key";
      break;
    }
    bare = 0;
    if (i < n && s[i] == '=') {
      i++;
      if (i < n && s[i] == '"') {
        v.p = s + ++i;
        v.quoted = 1;
        while (i < n && s[i] != '"')
          i += s[i] == '\\' ? 2 : 1;
        if (i >= n) {
          at = (size_t)(v.p - s) - 1;
          why = "unterminated quoted value";
          break;
        }
        v.n = (size_t)(s + i - v.p);
        i++;
      } else {
        v.p = s + i;
        v.quoted = 0;
        while (i < n && s[i] != ' ' && s[i] != '\t')
          i++;
        v.n = (size_t)(s + i - v.p);
      }
      pairs++;
    } else if (i < n && s[i] != ' ' && s[i] != '\t') {
      at = i;
      why = "expected '=', a space or the end after a key";
      break;
    } else {
      v = v_true;
      bare = 1;
    }
    if ((rc = keyset_add(&ks, s + k0, kn)) <= 0) {
      if (rc < 0 && !w->err)
        w->err = rc;
      continue;
    }
    role = bare ? R_NONE : classify(s + k0, kn);
    if (role != R_NONE && use_special(&st, role, &v))
      continue;
    if (st.app_open)
      SL_EW_LIT(w, ",\"");
    else
      SL_EW_LIT(w, ",\"app\":{\"");
    st.app_open = 1;
    sl_ew_escape(w, s + k0, kn);
    if (bare) {
      SL_EW_LIT(w, "\":true");
    } else {
      SL_EW_LIT(w, "\":\"");
      put_value(w, &v);
      sl_ew_byte(w, '"');
    }
  }
  keyset_free(&ks);
  if (why == NULL && pairs == 0) {
    why = "no key=value pair";
    at = 0;
  }
  if (why) {
    if (!w->err)
      sl_ew_setlen(w, start);
    snprintf(emsg, sizeof(emsg), "logfmt parse failure at byte %zu: %s", at,
             why);
    sl_ew_raw_event(w, &ctx->ev, src, s, n, offset, flags, read_time_ns,
                    emsg, "sluice_logfmt_parse_failure");
    return;
  }
  if (st.app_open)
    sl_ew_byte(w, '}');
  /* The input's correlation rules over the whole line (ids from keys
   * came first). */
  sl_parse_corr_rules(ctx, s, n, &st.ev);
  if (st.msg.p) {
    SL_EW_LIT(w, ",\"message\":\"");
    put_value(w, &st.msg);
    sl_ew_byte(w, '"');
  }
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &st.ev, slot);
}

const struct sl_parser_ops sl_parser_logfmt = {
  .name = "logfmt",
  .event = logfmt_event,
};
