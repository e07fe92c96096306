/* ref_json.c - see ref_json.h. Test code: out of memory aborts. */
#include "ref_json.h"

#include <stdlib.h>
#include <string.h>

size_t
ref_json_utf8(const unsigned char *s, size_t n)
{
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t need, i;

  if (c <= 0x7F)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    need = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    need = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    need = 4;
  else
    return 0;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (n < need || s[1] < lo || s[1] > hi)
    return 0;
  for (i = 2; i < need; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return need;
}

/* Value depth of a DOM, top = 1 (jansson's count). */
static size_t
depth(json_t *v)
{
  size_t d = 0, x, i;
  const char *k;
  json_t *c;

  if (json_is_object(v)) {
    json_object_foreach(v, k, c)
      if ((x = depth(c)) > d)
        d = x;
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, c)
      if ((x = depth(c)) > d)
        d = x;
  }
  return d + 1;
}

void
ref_json_judge(const char *line, size_t len, struct ref_json *r)
{
  const unsigned char *u = (const unsigned char *)line;
  size_t i = 0, o = 0, k;

  memset(r, 0, sizeof(*r));
  /* No CR stripping: the agent's line splitter does that, not the parser. */
  /* Each bad byte becomes 3 bytes at most. */
  r->fixed = malloc(len * 3 + 1);
  if (r->fixed == NULL)
    abort();
  while (i < len) {
    k = ref_json_utf8(u + i, len - i);
    if (k == 0) {
      memcpy(r->fixed + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(r->fixed + o, line + i, k);
      o += k;
      i += k;
    }
  }
  r->fixed[o] = '\0';
  r->fixed_len = o;
  r->doc = json_loadb(r->fixed, o, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                      &r->err);
  if (r->doc == NULL && json_error_code(&r->err) ==
      json_error_numeric_overflow)
    r->verdict = -1;
  else
    r->verdict = r->doc != NULL && json_is_object(r->doc) &&
                 depth(r->doc) <= REF_JSON_MAX_DEPTH &&
                 memchr(r->fixed, '\0', o) == NULL;
}

void
ref_json_free(struct ref_json *r)
{
  json_decref(r->doc);
  free(r->fixed);
  memset(r, 0, sizeof(*r));
}

/* In place: NUL characters in strings -> U+FFFD. */
static void
nul_to_fffd(json_t *v)
{
  const char *k, *p;
  json_t *c;
  size_t i, n, o;
  char *t;

  if (json_is_object(v)) {
    json_object_foreach(v, k, c)
      nul_to_fffd(c);
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, c)
      nul_to_fffd(c);
  } else if (json_is_string(v)) {
    p = json_string_value(v);
    n = json_string_length(v);
    if (memchr(p, '\0', n) == NULL)
      return;
    t = malloc(n * 3 + 1);
    if (t == NULL)
      abort();
    for (i = 0, o = 0; i < n; i++) {
      if (p[i]) {
        t[o++] = p[i];
      } else {
        memcpy(t + o, "\xEF\xBF\xBD", 3);
        o += 3;
      }
    }
    if (json_string_setn(v, t, o) != 0)
      abort();
    free(t);
  }
}

json_t *
ref_json_values(const struct ref_json *r)
{
  json_error_t je;
  json_t *v = json_loadb(r->fixed, r->fixed_len,
                         JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);

  if (v != NULL)
    nul_to_fffd(v);
  return v;
}
