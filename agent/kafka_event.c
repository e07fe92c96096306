/* kafka_event.c - topic template, key and event.id out of an event's JSON
 * text (see kafka_event.h). */
#include "kafka_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_err.h"

/* ---- JSON walking ----------------------------------------------------- */

static size_t
skip_ws(const char *p, size_t i, size_t n)
{
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
                   p[i] == '\n'))
    i++;
  return i;
}

/* i is just after an opening quote; returns the index of the closing
 * quote, or n. A quote is closing when an even number of backslashes
 * precedes it. */
static size_t
string_end(const char *p, size_t i, size_t n)
{
  while (i < n) {
    const char *q = memchr(p + i, '"', n - i);
    size_t j, bs = 0;

    if (q == NULL)
      return n;
    j = (size_t)(q - p);
    while (j - bs > i && p[j - bs - 1] == '\\')
      bs++;
    if ((bs & 1) == 0)
      return j;
    i = j + 1;
  }
  return n;
}

/* Skip one value starting at p[i] (no leading space); returns the index
 * after it, or n when the text ends first. */
static size_t
skip_value(const char *p, size_t i, size_t n)
{
  size_t depth = 0;

  if (i >= n)
    return n;
  if (p[i] == '"')
    return string_end(p, i + 1, n) + 1;
  if (p[i] != '{' && p[i] != '[') {
    while (i < n && !strchr(",}] \t\r\n", p[i]))
      i++;
    return i;
  }
  for (; i < n; i++) {
    char c = p[i];
    if (c == '"') {
      i = string_end(p, i + 1, n);
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0)
        return i + 1;
    }
  }
  return n;
}

int
sl_kjson_find(const char *p, size_t n, const char *path,
              struct sl_kspan *out)
{
  size_t i = skip_ws(p, 0, n);
  const char *seg = path;

  if (i >= n || p[i] != '{')
    return 0;
  i++;
  for (;;) {
    const char *dot = strchr(seg, '.');
    size_t seglen = dot ? (size_t)(dot - seg) : strlen(seg);
    int descended = 0;

    for (;;) {
      size_t ks, ke;

      i = skip_ws(p, i, n);
      if (i >= n || p[i] != '"')
        return 0;  /* '}' (end of object) or malformed */
      ks = i + 1;
      ke = string_end(p, ks, n);
      if (ke >= n)
        return 0;
      i = skip_ws(p, ke + 1, n);
      if (i >= n || p[i] != ':')
        return 0;
      i = skip_ws(p, i + 1, n);
      if (i >= n)
        return 0;
      if (ke - ks == seglen && memcmp(p + ks, seg, seglen) == 0) {
        if (dot) {
          if (p[i] != '{')
            return 0;
          i++;
          descended = 1;
          break;
        }
        if (p[i] == '"') {
          size_t e = string_end(p, i + 1, n);
          if (e >= n)
            return 0;
          out->p = p + i + 1;
          out->n = e - i - 1;
          return 1;
        }
        if (p[i] == '{' || p[i] == '[' || (n - i >= 4 &&
                                           memcmp(p + i, "null", 4) == 0))
          return 0;
        out->p = p + i;
        out->n = skip_value(p, i, n) - i;
        return out->n > 0;
      }
      i = skip_ws(p, skip_value(p, i, n), n);
      if (i >= n || p[i] != ',')
        return 0;
      i++;
    }
    if (!descended)
      return 0;
    seg = dot + 1;
  }
}

/* ---- keys ------------------------------------------------------------- */

static const char *const key_names[] = {
  [SL_KKEY_EVENT_ID] = "event.id",
  [SL_KKEY_HOST_NAME] = "host.name",
  [SL_KKEY_TRACE_ID] = "trace.id",
  [SL_KKEY_NONE] = "none",
};

int
sl_kkey_parse(const char *s, enum sl_kkey *k)
{
  size_t i;

  for (i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++) {
    if (strcmp(s, key_names[i]) == 0) {
      *k = (enum sl_kkey)i;
      return 0;
    }
  }
  return -1;
}

const char *
sl_kkey_path(enum sl_kkey k)
{
  return k == SL_KKEY_NONE ? NULL : key_names[k];
}

/* ---- topic templates -------------------------------------------------- */

struct tpart {
  const char *lit;     /* literal text (NULL: a field part) */
  size_t litlen;
  char *path;          /* field part: NUL-terminated dotted path */
  const char *def;     /* default text, "unknown" when none was given */
  size_t deflen;
};

struct sl_ktopic {
  char *text;          /* the template; literals point into it */
  struct tpart *parts;
  size_t nparts;
  int is_static;
};

static int
topic_char_ok(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

void
sl_ktopic_free(struct sl_ktopic *t)
{
  if (t == NULL)
    return;
  free(t->text);
  free(t->parts);
  free(t);
}

int
sl_ktopic_compile(const char *tmpl, struct sl_ktopic **out, char *err,
                  size_t errlen)
{
  struct sl_ktopic *t;
  size_t n = strlen(tmpl), i = 0, cap;
  char *s;

  if (n == 0 || n > 4096) {
    snprintf(err, errlen, "must be 1..4096 characters");
    return SL_EINVAL;
  }
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return SL_ENOMEM;
  t->text = strdup(tmpl);
  cap = n / 2 + 2;  /* at most one part per two bytes */
  t->parts = calloc(cap, sizeof(*t->parts));
  if (t->text == NULL || t->parts == NULL) {
    sl_ktopic_free(t);
    return SL_ENOMEM;
  }
  s = t->text;
  t->is_static = 1;
  while (i < n) {
    struct tpart *pt = &t->parts[t->nparts++];
    if (s[i] == '%' && s[i + 1] == '{') {
      char *end = strchr(s + i + 2, '}'), *colon;
      if (end == NULL) {
        snprintf(err, errlen, "'%%{' without '}'");
        goto bad;
      }
      *end = '\0';
      pt->path = s + i + 2;
      colon = strchr(pt->path, ':');
      if (colon) {
        *colon = '\0';
        pt->def = colon + 1;
      } else {
        pt->def = "unknown";
      }
      pt->deflen = strlen(pt->def);
      if (*pt->path == '\0' || pt->path[0] == '.' ||
          pt->path[strlen(pt->path) - 1] == '.' ||
          strstr(pt->path, "..")) {
        snprintf(err, errlen, "'%%{%s}' is not a field name", pt->path);
        goto bad;
      }
      for (const char *d = pt->def; *d; d++) {
        if (!topic_char_ok(*d)) {
          snprintf(err, errlen, "default '%s': Kafka topic names allow "
                   "only [A-Za-z0-9._-]", pt->def);
          goto bad;
        }
      }
      t->is_static = 0;
      i = (size_t)(end - s) + 1;
    } else {
      pt->lit = s + i;
      while (i < n && !(s[i] == '%' && s[i + 1] == '{')) {
        if (!topic_char_ok(s[i])) {
          snprintf(err, errlen, "'%c': Kafka topic names allow only "
                   "[A-Za-z0-9._-] besides %%{field}", s[i]);
          goto bad;
        }
        i++;
      }
      pt->litlen = (size_t)(s + i - pt->lit);
    }
  }
  if (t->is_static && n > SL_KTOPIC_MAX) {
    snprintf(err, errlen, "longer than %d characters", SL_KTOPIC_MAX);
    goto bad;
  }
  *out = t;
  return SL_OK;
bad:
  sl_ktopic_free(t);
  return SL_EINVAL;
}

const char *
sl_ktopic_static(const struct sl_ktopic *t)
{
  return t->is_static ? t->text : NULL;
}

size_t
sl_ktopic_render(const struct sl_ktopic *t, const char *ev, size_t n,
                 char *out, size_t outlen)
{
  size_t len = 0, max = outlen - 1 < SL_KTOPIC_MAX ? outlen - 1
                                                  : SL_KTOPIC_MAX;
  size_t i, j;

  for (i = 0; i < t->nparts && len < max; i++) {
    const struct tpart *pt = &t->parts[i];
    struct sl_kspan v;
    const char *src = pt->lit;
    size_t sn = pt->litlen;

    if (pt->path) {
      if (sl_kjson_find(ev, n, pt->path, &v) && v.n > 0) {
        src = v.p;
        sn = v.n;
      } else {
        src = pt->def;
        sn = pt->deflen;
      }
    }
    /* Escapes and any other byte Kafka refuses become '_'; a name must
     * not depend on how a producer escaped it, but it must be legal. */
    for (j = 0; j < sn && len < max; j++)
      out[len++] = topic_char_ok(src[j]) ? src[j] : '_';
  }
  out[len] = '\0';
  return len;
}
