#include "event_scan.h"

#include <string.h>

#include "sl_err.h"
#include "sl_json.h"

/* Deeper events are rare; refusing sends them to jansson (limit 2048). */
#define MAX_DEPTH 256

/* Where an object sits, for the keys that matter there. */
enum ctx { C_NONE = 0, C_TOP, C_EVENT, C_DS };

/* Wanted keys; each may appear once (jansson's duplicate rule on the
 * slow path would otherwise decide differently). */
enum want {
  W_NONE = 0,
  W_TIMESTAMP,   /* top: @timestamp */
  W_EVENT,       /* top: event */
  W_DS,          /* top: data_stream */
  W_ID_DOTTED,   /* top: event.id */
  W_EVDS_DOTTED, /* top: event.dataset */
  W_DSDS_DOTTED, /* top: data_stream.dataset */
  W_DSNS_DOTTED, /* top: data_stream.namespace */
  W_ID,          /* event: id */
  W_EVDS,        /* event: dataset */
  W_DSDS,        /* data_stream: dataset */
  W_DSNS,        /* data_stream: namespace */
  W_COUNT
};

struct sc {
  const unsigned char *p, *end, *base;
  int depth;
  unsigned seen;        /* bit per enum want */
  struct sl_event_fields *f;
  struct sl_span spans[W_COUNT];
};

static void
ws(struct sc *s)
{
  while (s->p < s->end) {
    unsigned char c = *s->p;
    if (c == ' ' || c == '\t') {
      s->p++;
    } else if (c == '\n' || c == '\r') {
      s->f->has_newline = 1;
      s->p++;
    } else {
      break;
    }
  }
}

static int
hex4(const unsigned char *p, unsigned *v)
{
  unsigned i, x = 0;

  for (i = 0; i < 4; i++) {
    unsigned char c = p[i];
    x <<= 4;
    if (c >= '0' && c <= '9')
      x |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      x |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      x |= (unsigned)(c - 'A' + 10);
    else
      return -1;
  }
  *v = x;
  return 0;
}

/* s->p is at the opening quote. */
static int
scan_string(struct sc *s, struct sl_span *out, int *escaped)
{
  const unsigned char *p = s->p + 1, *end = s->end, *start = p;
  unsigned cp, lo;
  size_t k;

  *escaped = 0;
  for (;;) {
    while (p < end && !sl_json_stop[*p])
      p++;
    if (p >= end)
      return -1;
    if (*p == '"')
      break;
    if (*p == '\\') {
      *escaped = 1;
      if (++p >= end)
        return -1;
      switch (*p) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
      case 't':
        p++;
        continue;
      case 'u':
        if (end - p < 5 || hex4(p + 1, &cp) != 0)
          return -1;
        p += 5;
        /* jansson refuses NUL (without JSON_ALLOW_NUL) and lone
         * surrogates. */
        if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
          return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
              hex4(p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
            return -1;
          p += 6;
        }
        continue;
      default:
        return -1;
      }
    }
    if (*p < 0x20)
      return -1;
    k = sl_utf8_seq(p, (size_t)(end - p));
    if (k == 0)
      return -1;
    p += k;
  }
  out->p = (const char *)start;
  out->len = (size_t)(p - start);
  s->p = p + 1;
  return 0;
}

static int
scan_number(struct sc *s)
{
  const unsigned char *p = s->p, *end = s->end;
  int digits = 0, n;

  if (p < end && *p == '-')
    p++;
  if (p >= end)
    return -1;
  if (*p == '0') {
    p++;
    digits = 1;
  } else if (*p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9') {
      p++;
      digits++;
    }
  } else {
    return -1;
  }
  if (p < end && *p == '.') {
    p++;
    for (n = 0; p < end && *p >= '0' && *p <= '9'; n++, p++)
      digits++;
    if (n == 0)
      return -1;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    for (n = 0; p < end && *p >= '0' && *p <= '9'; n++, p++)
      ;
    /* Bounded exponents cannot overflow a double. */
    if (n == 0 || n > 2)
      return -1;
  }
  /* jansson refuses integers past int64; stay well inside what it takes. */
  if (digits > 18)
    return -1;
  s->p = p;
  return 0;
}

static int
scan_literal(struct sc *s, const char *lit, size_t n)
{
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
    return -1;
  s->p += n;
  return 0;
}

static int scan_value(struct sc *s);
static int scan_object(struct sc *s, enum ctx cx, int *empty);

static enum want
match_key(enum ctx cx, const char *k, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0)
  switch (cx) {
  case C_TOP:
    if (IS("@timestamp")) return W_TIMESTAMP;
    if (IS("event")) return W_EVENT;
    if (IS("data_stream")) return W_DS;
    if (IS("event.id")) return W_ID_DOTTED;
    if (IS("event.dataset")) return W_EVDS_DOTTED;
    if (IS("data_stream.dataset")) return W_DSDS_DOTTED;
    if (IS("data_stream.namespace")) return W_DSNS_DOTTED;
    return W_NONE;
  case C_EVENT:
    if (IS("id")) return W_ID;
    if (IS("dataset")) return W_EVDS;
    return W_NONE;
  case C_DS:
    if (IS("dataset")) return W_DSDS;
    if (IS("namespace")) return W_DSNS;
    return W_NONE;
  default:
    return W_NONE;
  }
#undef IS
}

/* After a member or an element: ',' gives 1 (another follows), the
 * closing bracket 0, anything else -1. */
static int
after_item(struct sc *s, unsigned char close)
{
  ws(s);
  if (s->p >= s->end)
    return -1;
  if (*s->p == ',') {
    s->p++;
    ws(s);
    return 1;
  }
  if (*s->p == close) {
    s->p++;
    return 0;
  }
  return -1;
}

static int
scan_array(struct sc *s)
{
  int rc;

  if (++s->depth > MAX_DEPTH)
    return -1;
  if (s->depth > s->f->depth)
    s->f->depth = s->depth;
  s->p++;
  ws(s);
  if (s->p < s->end && *s->p == ']') {
    s->p++;
    s->depth--;
    return 0;
  }
  do {
    if (scan_value(s) != 0)
      return -1;
  } while ((rc = after_item(s, ']')) > 0);
  s->depth--;
  return rc;
}

static int
scan_value(struct sc *s)
{
  struct sl_span sp;
  int esc, empty;

  if (s->p >= s->end)
    return -1;
  switch (*s->p) {
  case '{':
    return scan_object(s, C_NONE, &empty);
  case '[':
    return scan_array(s);
  case '"':
    return scan_string(s, &sp, &esc);
  case 't':
    return scan_literal(s, "true", 4);
  case 'f':
    return scan_literal(s, "false", 5);
  case 'n':
    return scan_literal(s, "null", 4);
  default:
    return scan_number(s);
  }
}

/* A wanted member's value: a plain string, or (for event/data_stream) an
 * object scanned in its own context. Anything else is left to jansson. */
static int
scan_wanted(struct sc *s, enum want w)
{
  int esc, empty;

  if (s->seen & (1u << w))
    return -1;
  s->seen |= 1u << w;
  if (s->p >= s->end)
    return -1;
  if (w == W_EVENT || w == W_DS) {
    if (*s->p != '{')
      return -1;
    if (w == W_EVENT)
      s->f->event_open = (long)(s->p - s->base);
    if (scan_object(s, w == W_EVENT ? C_EVENT : C_DS, &empty) != 0)
      return -1;
    if (w == W_EVENT)
      s->f->event_empty = empty;
    return 0;
  }
  if (w == W_TIMESTAMP)
    s->f->has_timestamp = 1;
  if (*s->p != '"' || scan_string(s, &s->spans[w], &esc) != 0 || esc)
    return -1;
  return 0;
}

static int
scan_object(struct sc *s, enum ctx cx, int *empty)
{
  struct sl_span key;
  enum want w;
  int esc, rc;

  if (++s->depth > MAX_DEPTH)
    return -1;
  if (s->depth > s->f->depth)
    s->f->depth = s->depth;
  s->p++;
  ws(s);
  *empty = 0;
  if (s->p < s->end && *s->p == '}') {
    s->p++;
    s->depth--;
    *empty = 1;
    return 0;
  }
  for (;;) {
    if (s->p >= s->end || *s->p != '"' || scan_string(s, &key, &esc) != 0)
      return -1;
    s->f->nkeys++;
    /* An escaped key may spell a wanted one ("\u0040timestamp"). */
    if (esc && cx != C_NONE)
      return -1;
    ws(s);
    if (s->p >= s->end || *s->p != ':')
      return -1;
    s->p++;
    ws(s);
    w = esc ? W_NONE : match_key(cx, key.p, key.len);
    if ((w != W_NONE ? scan_wanted(s, w) : scan_value(s)) != 0)
      return -1;
    rc = after_item(s, '}');
    if (rc <= 0)
      break;
  }
  s->depth--;
  return rc;
}

int
sl_event_scan(const char *p, size_t n, struct sl_event_fields *f)
{
  struct sc s;
  int empty;

  memset(f, 0, sizeof(*f));
  memset(&s, 0, sizeof(s));
  f->event_open = -1;
  s.base = s.p = (const unsigned char *)p;
  s.end = s.p + n;
  s.f = f;
  ws(&s);
  if (s.p >= s.end || *s.p != '{')
    return SL_EPARSE;
  if (scan_object(&s, C_TOP, &empty) != 0)
    return SL_EPARSE;
  f->close = (size_t)(s.p - s.base) - 1;
  f->empty = empty;
  ws(&s);
  if (s.p != s.end)
    return SL_EPARSE;
  /* event.id nested wins over the dotted key, as on the slow path. */
  f->id = s.spans[W_ID].p ? s.spans[W_ID] : s.spans[W_ID_DOTTED];
  f->ev_dataset = (s.seen & (1u << W_EVDS)) ? s.spans[W_EVDS]
                                            : s.spans[W_EVDS_DOTTED];
  f->ds_dataset = (s.seen & (1u << W_DSDS)) ? s.spans[W_DSDS]
                                            : s.spans[W_DSDS_DOTTED];
  f->ds_namespace = (s.seen & (1u << W_DSNS)) ? s.spans[W_DSNS]
                                              : s.spans[W_DSNS_DOTTED];
  f->timestamp = s.spans[W_TIMESTAMP];
  return 0;
}

struct sl_span
sl_event_json_id(const json_t *ev)
{
  struct sl_span sp = { NULL, 0 };
  const json_t *o, *v = NULL;

  if (!json_is_object(ev))
    return sp;
  o = json_object_get(ev, "event");
  if (json_is_object(o))
    v = json_object_get(o, "id");
  if (v == NULL)
    v = json_object_get(ev, "event.id");
  if (json_is_string(v) && json_string_length(v) > 0 &&
      json_string_length(v) <= SL_EVENT_ID_MAX) {
    sp.p = json_string_value(v);
    sp.len = json_string_length(v);
  }
  return sp;
}

static void
shape(const json_t *v, int level, size_t *nkeys, int *depth)
{
  const char *k;
  json_t *x;
  size_t i;

  if (!json_is_object(v) && !json_is_array(v))
    return;
  if (level > *depth)
    *depth = level;
  if (json_is_object(v)) {
    json_object_foreach((json_t *)v, k, x) {
      (*nkeys)++;
      shape(x, level + 1, nkeys, depth);
    }
  } else {
    json_array_foreach(v, i, x)
      shape(x, level + 1, nkeys, depth);
  }
}

void
sl_event_json_shape(const json_t *v, size_t *nkeys, int *depth)
{
  /* Recursion is bounded by jansson's own parse depth limit (2048). */
  *nkeys = 0;
  *depth = 0;
  shape(v, 1, nkeys, depth);
}
