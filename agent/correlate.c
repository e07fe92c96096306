/* correlate.c - correlation keys, id formats and message rules (see
 * correlate.h). */
#include "correlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "re.h"
#include "sl_err.h"

/* ---- keys -------------------------------------------------------------- */

/* Keys compared lower-cased with '-' and '_' removed, so "X-B3-TraceId",
 * "x_b3_traceid" and "xB3TraceID" are one key. */
static const struct {
  const char *k;
  unsigned char n, fam, kind;
} keys[] = {
#define K(k, f, c) { k, sizeof(k) - 1, f, c }
  K("traceparent", SL_CF_W3C, SL_CK_BOTH),
  K("xb3traceid", SL_CF_B3, SL_CK_TRACE),
  K("xb3spanid", SL_CF_B3, SL_CK_SPAN),
  K("b3", SL_CF_B3S, SL_CK_BOTH),
  K("xamzntraceid", SL_CF_XRAY, SL_CK_BOTH),
  K("traceid", SL_CF_OTEL, SL_CK_TRACE),
  K("spanid", SL_CF_OTEL, SL_CK_SPAN),
  K("trace.id", SL_CF_ECS, SL_CK_TRACE),
  K("span.id", SL_CF_ECS, SL_CK_SPAN),
  K("dd.traceid", SL_CF_DD, SL_CK_TRACE),
  K("dd.spanid", SL_CF_DD, SL_CK_SPAN),
  K("transactionid", SL_CF_TXN, SL_CK_ID),
  K("transaction.id", SL_CF_TXN, SL_CK_ID),
  K("requestid", SL_CF_REQ, SL_CK_ID),
  K("reqid", SL_CF_REQ, SL_CK_ID),
  K("xrequestid", SL_CF_REQ, SL_CK_ID),
  K("xcorrelationid", SL_CF_REQ, SL_CK_ID),
  K("correlationid", SL_CF_REQ, SL_CK_ID),
  K("http.request.id", SL_CF_REQ, SL_CK_ID),
#undef K
};

int
sl_corr_key(const char *k, size_t n, struct sl_corr_key *out)
{
  char b[32];
  size_t i, m = 0;
  char c;

  if (n < 2 || n > sizeof(b))
    return 0;
  /* Most keys of a line are none of these: their first letter says so. */
  c = (char)(k[0] | 0x20);
  if (c != 't' && c != 'x' && c != 'b' && c != 's' && c != 'd' &&
      c != 'r' && c != 'c' && c != 'h')
    return 0;
  for (i = 0; i < n; i++) {
    c = k[i];
    if (c == '-' || c == '_')
      continue;
    if (c >= 'A' && c <= 'Z')
      c = (char)(c | 0x20);
    else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'))
      return 0;
    b[m++] = c;
  }
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    if (keys[i].n == m && keys[i].k[0] == b[0] &&
        memcmp(keys[i].k, b, m) == 0) {
      out->fam = keys[i].fam;
      out->kind = keys[i].kind;
      return 1;
    }
  }
  return 0;
}

/* ---- ids --------------------------------------------------------------- */

static int
hexv(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int
sl_corr_hex(const char *s, size_t n, size_t want, int pad, char *out)
{
  char tmp[33];
  size_t i, off = 0;
  int nz = 0, d;

  if (n != want && !(pad && want == 32 && n == 16))
    return 0;
  if (n < want) {
    off = want - n;
    memset(tmp, '0', off);
  }
  for (i = 0; i < n; i++) {
    d = hexv(s[i]);
    if (d < 0)
      return 0;
    nz |= d;
    tmp[off + i] = "0123456789abcdef"[d];
  }
  if (!nz)
    return 0;
  memcpy(out, tmp, want);
  out[want] = '\0';
  return 1;
}

/* Decimal uint64 as zero-padded hex (Datadog), or plain hex. */
static int
dd_id(const char *s, size_t n, size_t want, char *out)
{
  unsigned long long v = 0;
  size_t i;

  /* Decimal first (what dd-trace injects; a 16-digit decimal would
   * otherwise pass as hex). */
  if (n == 0 || n > 20)
    return sl_corr_hex(s, n, want, 0, out);
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return sl_corr_hex(s, n, want, 0, out);
    if (v > (~0ULL - (unsigned)(s[i] - '0')) / 10)
      return sl_corr_hex(s, n, want, 0, out);
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0)
    return 0;
  for (i = want; i > 0; i--) {
    out[i - 1] = "0123456789abcdef"[v & 15];
    v >>= 4;
  }
  out[want] = '\0';
  return 1;
}

static int
traceparent(const char *s, size_t n, char *t, char *sp)
{
  if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' ||
      hexv(s[0]) < 0 || hexv(s[1]) < 0 || ((s[0] | 0x20) == 'f' &&
                                           (s[1] | 0x20) == 'f'))
    return 0;
  if (s[0] == '0' && s[1] == '0' && n != 55)
    return 0;
  if (n > 55 && s[55] != '-')
    return 0;
  return sl_corr_hex(s + 3, 32, 32, 0, t) &&
         sl_corr_hex(s + 36, 16, 16, 0, sp);
}

/* b3: "{traceid}-{spanid}[-{sampled}[-{parent}]]", traceid 16 or 32. */
static int
b3_single(const char *s, size_t n, char *t, char *sp)
{
  const char *d = memchr(s, '-', n);
  size_t tn, rest;

  if (d == NULL)
    return 0;
  tn = (size_t)(d - s);
  rest = n - tn - 1;
  if (rest < 16 || (rest > 16 && d[17] != '-'))
    return 0;
  return sl_corr_hex(s, tn, 32, 1, t) && sl_corr_hex(d + 1, 16, 16, 0, sp);
}

/* X-Ray: "Root=1-<8hex>-<24hex>;Parent=<16hex>;Sampled=1", any order. */
static int
xray(const char *s, size_t n, char *t, char *sp)
{
  char hex[32];
  const char *p = s, *end = s + n, *semi;
  int have_t = 0, have_s = 0;
  size_t fn;

  while (p < end) {
    semi = memchr(p, ';', (size_t)(end - p));
    fn = semi ? (size_t)(semi - p) : (size_t)(end - p);
    while (fn && *p == ' ')
      p++, fn--;
    if (fn == 5 + 35 && memcmp(p, "Root=1-", 7) == 0 && p[15] == '-') {
      memcpy(hex, p + 7, 8);
      memcpy(hex + 8, p + 16, 24);
      have_t = sl_corr_hex(hex, 32, 32, 0, t);
    } else if (fn == 7 + 16 && memcmp(p, "Parent=", 7) == 0) {
      have_s = sl_corr_hex(p + 7, 16, 16, 0, sp);
    }
    p = semi ? semi + 1 : end;
  }
  if (!have_t)
    return 0;
  if (!have_s)
    sp[0] = '\0';
  return 1;
}

void
sl_corr_ids_clear(struct sl_corr_ids *ids)
{
  ids->trace[0] = ids->span[0] = ids->txn[0] = '\0';
  ids->req = NULL;
  ids->req_n = 0;
  ids->fam = SL_CF_NONE;
}

int
sl_corr_offer(struct sl_corr_ids *ids, const struct sl_corr_key *k,
              const char *v, size_t n)
{
  char t[33], sp[17];

  switch (k->fam) {
  case SL_CF_TXN:
    return !ids->txn[0] && sl_corr_hex(v, n, 16, 0, ids->txn);
  case SL_CF_REQ:
    if (ids->req || n == 0 || n > 256)
      return 0;
    ids->req = v;
    ids->req_n = n;
    return 1;
  default:
    break;
  }
  /* One family owns trace.id and span.id. */
  if (ids->fam != SL_CF_NONE && ids->fam != k->fam)
    return 0;
  switch (k->kind) {
  case SL_CK_TRACE:
    if (ids->trace[0])
      return 0;
    if (!(k->fam == SL_CF_DD ? dd_id(v, n, 32, t)
          : sl_corr_hex(v, n, 32, k->fam == SL_CF_B3, t)))
      return 0;
    memcpy(ids->trace, t, sizeof(t));
    break;
  case SL_CK_SPAN:
    if (ids->span[0])
      return 0;
    if (!(k->fam == SL_CF_DD ? dd_id(v, n, 16, sp)
          : sl_corr_hex(v, n, 16, 0, sp)))
      return 0;
    memcpy(ids->span, sp, sizeof(sp));
    break;
  case SL_CK_BOTH:
    if (ids->trace[0] || ids->span[0])
      return 0;
    if (!(k->fam == SL_CF_W3C ? traceparent(v, n, t, sp)
          : k->fam == SL_CF_B3S ? b3_single(v, n, t, sp)
          : k->fam == SL_CF_XRAY ? xray(v, n, t, sp) : 0))
      return 0;
    memcpy(ids->trace, t, sizeof(t));
    memcpy(ids->span, sp, sizeof(sp));
    break;
  default:
    return 0;
  }
  ids->fam = k->fam;
  return 1;
}

/* ---- rules ------------------------------------------------------------- */

enum rule_field { RF_TRACE, RF_SPAN, RF_TXN, RF_REQ };

struct rule {
  pcre2_code *re;
  uint32_t group;          /* number of the group named "id" */
  enum rule_field field;
};

struct sl_corr {
  struct rule *r;
  size_t n;
};

int
sl_corr_new(const json_t *input, struct sl_corr **out, char *err,
            size_t errlen)
{
  const json_t *list = json_object_get(input, "correlation"), *e, *pat, *f;
  static const char *const names[] = {
    "trace.id", "span.id", "transaction.id", "http.request.id",
  };
  struct sl_corr *c;
  char what[64];
  size_t i, k;
  int num;

  *out = NULL;
  if (list == NULL || json_is_null(list))
    return SL_OK;
  if (!json_is_array(list)) {
    snprintf(err, errlen, "correlation: must be a list");
    return SL_ECONFIG;
  }
  if (json_array_size(list) == 0)
    return SL_OK;
  c = calloc(1, sizeof(*c));
  if (c == NULL || (c->r = calloc(json_array_size(list),
                                  sizeof(*c->r))) == NULL) {
    free(c);
    return SL_ENOMEM;
  }
  json_array_foreach(list, i, e) {
    snprintf(what, sizeof(what), "correlation[%zu].pattern", i);
    pat = json_object_get(e, "pattern");
    f = json_object_get(e, "field");
    if (!json_is_string(pat)) {
      snprintf(err, errlen, "%s: must be a string", what);
      goto bad;
    }
    for (k = 0; k < 4; k++)
      if (json_is_string(f) && strcmp(json_string_value(f), names[k]) == 0)
        break;
    if (k == 4) {
      snprintf(err, errlen, "correlation[%zu].field: must be one of "
               "trace.id, span.id, transaction.id, http.request.id", i);
      goto bad;
    }
    c->r[i].field = (enum rule_field)k;
    c->r[i].re = sl_re_compile(json_string_value(pat), what, err, errlen);
    c->n = i + 1;
    if (c->r[i].re == NULL)
      goto bad;
    num = pcre2_substring_number_from_name(c->r[i].re, (PCRE2_SPTR)"id");
    if (num <= 0) {
      snprintf(err, errlen, "%s: needs a group named \"id\" ((?<id>...))",
               what);
      goto bad;
    }
    c->r[i].group = (uint32_t)num;
  }
  *out = c;
  return SL_OK;

bad:
  sl_corr_free(c);
  return SL_ECONFIG;
}

void
sl_corr_free(struct sl_corr *c)
{
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < c->n; i++)
    pcre2_code_free(c->r[i].re);
  free(c->r);
  free(c);
}

void
sl_corr_apply(const struct sl_corr *c, const char *s, size_t n,
              struct sl_corr_ids *ids)
{
  pcre2_match_data *md;
  PCRE2_SIZE *ov;
  const char *v;
  size_t i, vn;
  if (c == NULL || (md = sl_re_md()) == NULL)
    return;
  for (i = 0; i < c->n; i++) {
    const struct rule *r = &c->r[i];

    /* Only rules that can still fill their field. */
    if ((r->field == RF_TRACE && ids->trace[0]) ||
        (r->field == RF_SPAN && ids->span[0]) ||
        (r->field == RF_TXN && ids->txn[0]) ||
        (r->field == RF_REQ && ids->req))
      continue;
    if (sl_re_match(r->re, s, n, md) <= 0)
      continue;
    ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * r->group] == PCRE2_UNSET)
      continue;
    v = s + ov[2 * r->group];
    vn = ov[2 * r->group + 1] - ov[2 * r->group];
    switch (r->field) {
    case RF_TRACE:
    case RF_SPAN:
      /* The rules together are one source for trace.id and span.id. */
      if (ids->fam != SL_CF_NONE && ids->fam != SL_CF_RULE)
        break;
      if (r->field == RF_TRACE ? sl_corr_hex(v, vn, 32, 1, ids->trace)
          : sl_corr_hex(v, vn, 16, 0, ids->span))
        ids->fam = SL_CF_RULE;
      break;
    case RF_TXN:
      sl_corr_hex(v, vn, 16, 0, ids->txn);
      break;
    case RF_REQ:
      if (vn > 0 && vn <= 256) {
        ids->req = v;
        ids->req_n = vn;
      }
      break;
    }
  }
}
