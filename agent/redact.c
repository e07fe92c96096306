/* redact.c - redaction rules and presets (redact.h). */
#include "redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_err.h"

/* Lines are at most max_line_bytes; a replacement grows them by a bounded
 * amount per match, so the scratch buffers need no limit of their own. */

enum rule_kind { R_REGEX, R_CARD };

struct rule {
  enum rule_kind kind;
  struct sl_rx rx;
  char *repl;                 /* with $N references */
  const char *need;           /* presets: a line without any of these
                                 bytes cannot match; skip the regex */
};

struct sl_redact {
  struct rule *r;
  size_t n;
};

static const char secrets_re[] =
  "(?i)\\b((?:password|passwd|pwd|secret|token|access_token|api[_-]?key)"
  "[\"']?\\s*[=:]\\s*[\"']?)([^\\s\"'&,;]+)";
static const char auth_re[] =
  "(?i)\\b(authorization[\"']?\\s*[=:]\\s*[\"']?(?:bearer|basic)\\s+)"
  "([A-Za-z0-9._~+/=-]+)";
static const char email_re[] =
  "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}";

static int
cfg_err(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
  return SL_ECONFIG;
}

static int
add_regex(struct sl_redact *r, const char *pat, const char *repl,
          const char *need, char *err, size_t errlen)
{
  struct rule *u = &r->r[r->n];
  char e[256];

  if (sl_rx_compile(&u->rx, pat, e, sizeof(e)))
    return cfg_err(err, errlen, "redact: %s", e);
  u->kind = R_REGEX;
  u->need = need;
  u->repl = strdup(repl);
  r->n++;
  return u->repl ? 0 : SL_ENOMEM;
}

int
sl_redact_new(const json_t *in, struct sl_redact **out, char *err,
              size_t errlen)
{
  json_t *l = json_object_get(in, "redact"), *v;
  struct sl_redact *r;
  const char *s;
  size_t i;
  int rc = 0;

  *out = NULL;
  if (l == NULL || json_is_null(l))
    return SL_OK;
  if (json_is_string(l) || json_is_object(l)) {
    /* One rule written without a list. */
    json_t *w = json_pack("{s:[O]}", "redact", l);
    if (w == NULL)
      return SL_ENOMEM;
    rc = sl_redact_new(w, out, err, errlen);
    json_decref(w);
    return rc;
  }
  if (!json_is_array(l))
    return cfg_err(err, errlen, "%s: must be a list of presets or "
                   "{pattern, replacement}", "redact");
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return SL_ENOMEM;
  /* secrets takes two rules. */
  r->r = calloc(2 * json_array_size(l) + 1, sizeof(*r->r));
  if (r->r == NULL) {
    free(r);
    return SL_ENOMEM;
  }
  json_array_foreach(l, i, v) {
    if (json_is_string(v)) {
      s = json_string_value(v);
      if (strcmp(s, "credit_card") == 0) {
        r->r[r->n++].kind = R_CARD;
      } else if (strcmp(s, "secrets") == 0) {
        rc = add_regex(r, secrets_re, "$1[REDACTED]", "=:", err, errlen);
        if (rc == 0)
          rc = add_regex(r, auth_re, "$1[REDACTED]", "=:", err, errlen);
      } else if (strcmp(s, "email") == 0) {
        rc = add_regex(r, email_re, "[REDACTED:email]", "@", err,
                        errlen);
      } else {
        rc = cfg_err(err, errlen, "redact: unknown preset '%s' (presets: "
                     "credit_card, secrets, email)", s);
      }
    } else if (json_is_object(v)) {
      const char *pat = json_string_value(json_object_get(v, "pattern"));
      const char *rep = json_string_value(json_object_get(v,
                                                          "replacement"));
      if (pat == NULL || *pat == '\0')
        rc = cfg_err(err, errlen, "redact: %s", "a rule needs a pattern");
      else if (json_object_size(v) > 2 ||
               (json_object_size(v) == 2 && rep == NULL))
        rc = cfg_err(err, errlen, "redact: %s", "a rule has pattern and "
                     "replacement (a string) only");
      else
        rc = add_regex(r, pat, rep ? rep : "[REDACTED]", NULL, err,
                       errlen);
    } else {
      rc = cfg_err(err, errlen, "%s: must be a list of presets or "
                   "{pattern, replacement}", "redact");
    }
    if (rc)
      break;
  }
  if (rc == 0 && r->n == 0)
    rc = cfg_err(err, errlen, "%s: empty", "redact");
  if (rc) {
    sl_redact_free(r);
    return rc;
  }
  *out = r;
  return SL_OK;
}

void
sl_redact_free(struct sl_redact *r)
{
  size_t i;

  if (r == NULL)
    return;
  for (i = 0; i < r->n; i++) {
    sl_rx_free(&r->r[i].rx);
    free(r->r[i].repl);
  }
  free(r->r);
  free(r);
}

int
sl_redact_scratch_init(struct sl_redact_scratch *s)
{
  sl_buf_init(&s->a, 0);
  sl_buf_init(&s->b, 0);
  s->md = sl_rx_md_new();
  return s->md ? SL_OK : SL_ENOMEM;
}

void
sl_redact_scratch_free(struct sl_redact_scratch *s)
{
  sl_buf_free(&s->a);
  sl_buf_free(&s->b);
  if (s->md)
    pcre2_match_data_free(s->md);
  s->md = NULL;
}

int
sl_redact_luhn(const char *d, size_t n)
{
  unsigned sum = 0, x;
  size_t i;
  int dbl = 0;

  for (i = n; i-- > 0;) {
    x = (unsigned)(d[i] - '0');
    if (dbl) {
      x *= 2;
      if (x > 9)
        x -= 9;
    }
    sum += x;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

static int
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static int
is_alnum(char c)
{
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Card numbers: runs of 13-19 digits with single ' ' or '-' between
 * digits. 0: no change; 1: replaced into o. */
static int
card(const char *p, size_t n, struct sl_buf *o, int *rc)
{
  static const char rep[] = "[REDACTED:card]";
  char dig[19];
  size_t i = 0, from = 0, j, nd, last;
  int changed = 0;

  sl_buf_reset(o);
  while (i < n) {
    if (!is_digit(p[i]) || (i > 0 && is_alnum(p[i - 1]))) {
      i++;
      continue;
    }
    /* A candidate starts at i. */
    nd = 0;
    j = i;
    last = i;
    while (j < n && nd <= 19) {
      if (is_digit(p[j])) {
        if (nd < 19)
          dig[nd] = p[j];
        nd++;
        last = j;
        j++;
      } else if ((p[j] == ' ' || p[j] == '-') && j + 1 < n &&
                 is_digit(p[j + 1])) {
        j++;
      } else {
        break;
      }
    }
    if (nd >= 13 && nd <= 19 && !(last + 1 < n && is_alnum(p[last + 1])) &&
        sl_redact_luhn(dig, nd)) {
      if ((*rc = sl_buf_append(o, p + from, i - from)) != 0 ||
          (*rc = sl_buf_append(o, rep, sizeof(rep) - 1)) != 0)
        return 0;
      from = last + 1;
      changed = 1;
    }
    i = last + 1;
  }
  if (changed && (*rc = sl_buf_append(o, p + from, n - from)) != 0)
    return 0;
  return changed;
}

/* Append the replacement for the match in md ($N = group N). */
static int
expand(struct sl_buf *o, const char *repl, const char *subj,
       pcre2_match_data *md)
{
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
  uint32_t nov = pcre2_get_ovector_count(md);
  const char *q;
  int rc = 0;

  for (q = repl; *q && rc == 0; q++) {
    if (q[0] == '$' && is_digit(q[1])) {
      uint32_t g = (uint32_t)(q[1] - '0');
      if (g < nov && ov[2 * g] != PCRE2_UNSET)
        rc = sl_buf_append(o, subj + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
      q++;
    } else if (q[0] == '$' && q[1] == '$') {
      rc = sl_buf_append_byte(o, '$');
      q++;
    } else {
      rc = sl_buf_append_byte(o, *q);
    }
  }
  return rc;
}

static int
regex(const struct rule *u, const char *p, size_t n, struct sl_buf *o,
      pcre2_match_data *md, int *rc)
{
  size_t at = 0, from = 0, ms, me;
  int changed = 0;

  if (u->need) {
    const char *q;
    for (q = u->need; *q; q++)
      if (memchr(p, *q, n))
        break;
    if (*q == '\0')
      return 0;
  }
  sl_buf_reset(o);
  while (at <= n && sl_rx_find(&u->rx, p, n, at, md, &ms, &me)) {
    if ((*rc = sl_buf_append(o, p + from, ms - from)) != 0 ||
        (*rc = expand(o, u->repl, p, md)) != 0)
      return 0;
    changed = 1;
    from = me;
    at = me > ms ? me : me + 1;  /* an empty match must still move on */
  }
  if (changed && (*rc = sl_buf_append(o, p + from, n - from)) != 0)
    return 0;
  return changed;
}

int
sl_redact_apply(const struct sl_redact *r, struct sl_redact_scratch *s,
                const char *line, size_t len, const char **out,
                size_t *outlen)
{
  const char *cur = line;
  size_t curn = len, i;
  struct sl_buf *dst = &s->a;
  int changed = 0, c, rc = 0;

  for (i = 0; i < r->n; i++) {
    const struct rule *u = &r->r[i];
    c = u->kind == R_CARD ? card(cur, curn, dst, &rc)
                          : regex(u, cur, curn, dst, s->md, &rc);
    if (rc)
      return rc;
    if (!c)
      continue;
    changed = 1;
    cur = dst->p;
    curn = dst->len;
    dst = dst == &s->a ? &s->b : &s->a;
  }
  if (changed) {
    *out = cur;
    *outlen = curn;
  }
  return changed;
}
