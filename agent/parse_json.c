/* parse_json.c - the JSON-lines parser: one pass over the line, no DOM.
 *
 * The scanner validates the line as RFC 8259 JSON (the same verdicts as
 * jansson's json_loadb with JSON_ALLOW_NUL, proven by the differential test
 * in tests/unit/agent/test_parse_json.c) while it picks out the top-level
 * keys. Application keys are copied verbatim into "app":{...} of the output
 * as soon as their value has been scanned; the special keys below fill ECS
 * fields instead. A line that is not a JSON object becomes a raw event with
 * an error tag (sl_ew_raw_event), so nothing is ever dropped.
 *
 * Rules (documented here because they are the product's behaviour):
 *  - Top level must be an object; an array or scalar is "not a JSON object".
 *  - Invalid UTF-8 inside strings does not reject the line (DESIGN: "replaced,
 *    never rejected"): such bytes become U+FFFD in the output. Outside
 *    strings any non-ASCII byte is a syntax error, as in any JSON parser.
 *  - The event must load in jansson with default flags (the collector
 *    parses every event with json_loadb), so:
 *      \u0000 in a string value is accepted (jansson's JSON_ALLOW_NUL
 *      verdict) and written as \ufffd; in a key it is a syntax error
 *      (jansson refuses NUL in keys even with JSON_ALLOW_NUL);
 *      numbers are copied as written unless jansson could not hold them
 *      (integers outside int64, reals overflowing double): those are
 *      written as JSON strings with the same digits, lossless (RFC 8259
 *      sets no limit, so such lines stay valid);
 *      nesting: jansson allows value depth 2048 (top object = 1); app
 *      values sit one level deeper in the event, so lines may nest to
 *      2047. The scanner is iterative with fixed per-depth state (a
 *      bitmap and two u32 arrays), so nesting cannot exhaust the stack.
 *  - Lone or mismatched surrogate escapes are syntax errors (as jansson).
 *  - Duplicate keys, in any object (compared after unescaping): the first
 *    occurrence wins and later ones are dropped with their values, because
 *    ES and the collector (JSON_REJECT_DUPLICATES) reject documents with
 *    duplicate keys and a one-pass writer cannot take back what it wrote.
 *    (jansson keeps the last; the tests account for that.) Nested
 *    duplicates send that one value through the slow re-emitting copy.
 *  - Special keys, matched exactly (case-sensitive, after unescaping). A
 *    special key fills its field only if the field is still empty and the
 *    value has the right type and form; otherwise it is an ordinary app key,
 *    so no value is ever lost:
 *      @timestamp timestamp time ts -> @timestamp: RFC 3339 string, or an
 *        epoch number or numeric string (unit from magnitude, sl_time). An
 *        epoch before 2001-09-09 (1e9 s) is treated as not-a-timestamp: a
 *        key named "time" often holds a duration. If no key parses, the
 *        read time is used and the first unparsable string/number value is
 *        also put in event.original (it stays in app.<key> as well).
 *      msg message log -> message (strings only). A line without any of
 *        them has no `message` field, like Filebeat's ndjson parser without
 *        message_key: the content is in app.*.
 *      level lvl severity loglevel log.level -> log.level: normalised by
 *        sl_level_norm (level.h: WARNING->warn, ERR->error, CRIT->critical
 *        ...); unknown words stay as written, lower case; bunyan/pino
 *        numbers (or numeric strings) 10 trace, 20 debug, 30 info, 40 warn,
 *        50 error, 60 fatal; other numbers stay in app. Strings longer
 *        than 32 bytes stay in app.
 *      trace_id traceId trace.id -> trace.id (32 hex, not all zero,
 *        lower-cased); span_id spanId span.id -> span.id (16 hex);
 *      dd.trace_id / dd.span_id -> Datadog's decimal uint64 (string or
 *        number) as zero-padded lower hex (32 / 16 digits, the W3C
 *        mapping of 64-bit ids), or already-hex 32 / 16 digits;
 *      traceparent -> W3C "vv-<32hex trace>-<16hex parent>-<2hex flags>"
 *        (version != ff; for version 00 exactly 55 chars; ids not all
 *        zero) fills trace.id and span.id, whichever are still empty;
 *      transaction_id transactionId -> transaction.id (16 hex, as Elastic
 *        APM writes it);
 *      request_id requestId reqId req_id x_request_id X-Request-ID (any
 *        case) correlation_id correlationId -> http.request.id (a non-empty
 *        string up to 256 bytes, or an integer as pino-http writes it).
 *      transaction.id and http.request.id (dotted or nested, see below)
 *        count like trace.id.
 *  - ECS fields (ECS-native loggers: ecs-logging, Serilog/NLog ECS): a
 *    top-level key whose first dotted segment is an ECS field set
 *    (ecs_sets[]: log, error, process, host, trace, labels, ...) is an ECS
 *    field, nested ({"log":{"logger":..}}) or dotted ("log.logger").
 *    Without a DOM the agent's own objects (log, event, host, agent, ...)
 *    cannot be merged with the app's, so the app's ECS fields are
 *    flattened to their leaves and written as top-level dotted keys after
 *    "app" ("log.logger":"x"), which ES reads as the same field as the
 *    nested form. Rules, so that ES never sees one field twice nor a name
 *    that is both an object and a value (it rejects that document):
 *      each leaf path is written once (first wins, like duplicate keys;
 *      compared with every top-level and app key of the line);
 *      the special paths (log.level, trace.id, ...) fill their fields;
 *      a leaf on, above or below a path the agent writes (event.id,
 *      event.dataset, ecs.version, host.name, agent.*, data_stream.*,
 *      log.file.path, log.offset, the input's service.name and labels)
 *      goes to app."<path>" instead: the agent's field wins, the app's
 *      value is kept;
 *      a field set name with a non-object value ("error":"boom") or an
 *      empty object stays app.<key> (ECS maps it as an object);
 *      "tags" (an array) is merged into the event's tags array;
 *      objects nest up to 16 levels below the key; deeper ones are one
 *      value at app."<path>".
 *  - Every other key goes to app.<key> with its value copied verbatim,
 *    whitespace included, by one memcpy. A value that needs any fixing
 *    (invalid UTF-8, \u0000, an out-of-range number, a nested duplicate
 *    key, or raw CR/LF between its tokens, e.g. a joined multi-line event)
 *    is re-emitted instead, with its whitespace dropped, so the event stays
 *    on one line.
 *  - A line whose top level is valid but whose special values are odd is
 *    never a failure: only syntax decides between event and raw fallback.
 */
#include "parse_internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <xxhash.h>

#include "event_writer.h"
#include "sl_err.h"
#include "sl_json.h"
#include "sl_time.h"
#include "correlate.h"
#include "level.h"
#include "timestamp.h"

/* jansson's JSON_PARSER_MAX_DEPTH is 2048. The event puts application
 * values one level deeper (under "app") and must itself load in jansson
 * (the collector reads it so), so lines may nest one level less. */
#define MAX_DEPTH 2047

/* Value flags collected while scanning. */
#define F_ESC 0x1u  /* a string contains backslash escapes */
#define F_BAD 0x2u  /* a string contains invalid UTF-8 */
#define F_NL  0x4u  /* CR or LF used as whitespace */
#define F_NUL 0x8u  /* a \u0000 escape */
#define F_BIG 0x10u /* a number outside int64 / double range */
#define F_DUP 0x20u /* a nested object has a duplicate key */
/* Values with any of these are copied through copy_fixed(). */
#define F_FIX (F_BAD | F_NL | F_NUL | F_BIG | F_DUP)

enum vtype { V_STR, V_NUM, V_LIT, V_OBJ, V_ARR };

/* Per-input state (ctx->priv), built by json_init. */
struct json_conf {
  uint64_t hash_seed;      /* random: duplicate-key hashing */
  /* Dotted ECS paths the agent itself writes for this input (NUL
   * separated, ends with an empty string): an application field on, above
   * or below one of them stays in app.* (see "ECS fields" above). */
  char *reserved;
};

struct scan {
  const char *end;
  const char *err_at;      /* where the first error was seen */
  const char *why;
};

static const char *
fail(struct scan *s, const char *at, const char *why)
{
  s->err_at = at;
  s->why = why;
  return NULL;
}

static inline int
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static inline int
hex_val(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

static int
hex4(const char *p, const char *end, unsigned *v)
{
  int i, d;

  if (end - p < 4)
    return 0;
  *v = 0;
  for (i = 0; i < 4; i++) {
    d = hex_val(p[i]);
    if (d < 0)
      return 0;
    *v = (*v << 4) | (unsigned)d;
  }
  return 1;
}

static inline const char *
skip_ws(const char *p, const char *end, unsigned *fl)
{
  while (p < end) {
    switch (*p) {
    case ' ':
    case '\t':
      p++;
      continue;
    case '\n':
    case '\r':
      *fl |= F_NL;
      p++;
      continue;
    default:
      return p;
    }
  }
  return p;
}

/* p is at the opening quote; returns the byte after the closing one. */
static const char *
scan_str(struct scan *s, const char *p, unsigned *fl)
{
  const char *end = s->end;
  const unsigned char *u;
  unsigned cp, lo;
  size_t k;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i bslash = _mm_set1_epi8('\\');
  const __m128i c1f = _mm_set1_epi8(0x1f);
#endif

  p++;
  for (;;) {
#if defined(__SSE2__)
    /* 16 bytes at a time: stop at '"', '\\', a control byte (x <= 0x1f,
     * via unsigned max) or a non-ASCII byte (its sign bit). */
    while (end - p >= 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
      __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                               _mm_cmpeq_epi8(v, bslash));
      m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f));
      unsigned bits = (unsigned)_mm_movemask_epi8(_mm_or_si128(m, v));
      if (bits) {
        p += __builtin_ctz(bits);
        goto stop;
      }
      p += 16;
    }
#endif
    while (p < end && !sl_json_stop[(unsigned char)*p])
      p++;
    if (p == end)
      return fail(s, p, "unterminated string");
#if defined(__SSE2__)
  stop:
#endif
    u = (const unsigned char *)p;
    if (*u == '"')
      return p + 1;
    if (*u == '\\') {
      *fl |= F_ESC;
      if (end - p < 2)
        return fail(s, end, "unterminated string");
      switch (p[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n':
      case 'r': case 't':
        p += 2;
        continue;
      case 'u':
        break;
      default:
        return fail(s, p, "invalid escape");
      }
      if (!hex4(p + 2, end, &cp))
        return fail(s, p, "invalid \\u escape");
      if (cp == 0)
        *fl |= F_NUL;
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(s, p, "lone surrogate escape");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
            !hex4(p + 8, end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
          return fail(s, p, "lone surrogate escape");
        p += 6;
      }
      p += 6;
      continue;
    }
    if (*u < 0x20)
      return fail(s, p, "control character in string");
    k = sl_utf8_seq(u, (size_t)(end - p));
    if (k == 0) {
      *fl |= F_BAD;
      p++;
    } else {
      p += k;
    }
  }
}

/* Would jansson refuse this number (json_error_numeric_overflow)? It
 * reads integers with strtoll and reals with strtod. */
static int
num_big(const char *p, size_t n)
{
  char tmp[128], *buf = tmp;
  size_t digits, i;
  int neg = p[0] == '-', big;
  double v;

  for (i = 0; i < n; i++)
    if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
      break;
  if (i == n) {
    digits = n - (size_t)neg;
    if (digits != 19)
      return digits > 19;
    return memcmp(p + neg, neg ? "9223372036854775808"
                               : "9223372036854775807", 19) > 0;
  }
  if (n >= sizeof(tmp)) {
    buf = malloc(n + 1);
    if (buf == NULL)
      return 1; /* quoting is always safe */
  }
  memcpy(buf, p, n);
  buf[n] = '\0';
  errno = 0;
  v = strtod(buf, NULL);
  big = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
  if (buf != tmp)
    free(buf);
  return big;
}

static const char *
scan_num(struct scan *s, const char *p, unsigned *fl)
{
  const char *end = s->end, *q = p;
  int real = 0;

  if (q < end && *q == '-')
    q++;
  if (q == end || !is_digit(*q))
    return fail(s, p, "invalid number");
  if (*q == '0') {
    q++;
  } else {
    while (q < end && is_digit(*q))
      q++;
  }
  if (q < end && *q == '.') {
    q++;
    real = 1;
    if (q == end || !is_digit(*q))
      return fail(s, p, "invalid number");
    while (q < end && is_digit(*q))
      q++;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    q++;
    real = 2;
    if (q < end && (*q == '+' || *q == '-'))
      q++;
    if (q == end || !is_digit(*q))
      return fail(s, p, "invalid number");
    while (q < end && is_digit(*q))
      q++;
  }
  /* Cheap filter first: only long integers, exponents or very long reals
   * can be out of range. */
  if (((real == 0 && q - p >= 19) || real == 2 || q - p > 300) &&
      num_big(p, (size_t)(q - p)))
    *fl |= F_BIG;
  return q;
}

static const char *
scan_lit(struct scan *s, const char *p)
{
  size_t left = (size_t)(s->end - p);

  if (left >= 4 && memcmp(p, "true", 4) == 0)
    return p + 4;
  if (left >= 5 && memcmp(p, "false", 5) == 0)
    return p + 5;
  if (left >= 4 && memcmp(p, "null", 4) == 0)
    return p + 4;
  return fail(s, p, "invalid literal");
}

/* ---- decoding validated string contents -------------------------------- */

/* Yields the bytes a validated JSON string's contents stand for, with
 * invalid UTF-8 repaired exactly as on output (U+FFFD per bad byte). */
struct kit {
  const unsigned char *p, *end;
  unsigned char pend[4];
  unsigned npend, ipend;
};

static void
kit_init(struct kit *it, const char *p, size_t n)
{
  it->p = (const unsigned char *)p;
  it->end = it->p + n;
  it->npend = it->ipend = 0;
}

static unsigned
utf8_put(unsigned char *o, unsigned cp)
{
  if (cp < 0x80) {
    o[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char)(0xC0 | (cp >> 6));
    o[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char)(0xE0 | (cp >> 12));
    o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char)(0xF0 | (cp >> 18));
  o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static int
kit_next(struct kit *it)
{
  const unsigned char *p = it->p;
  unsigned cp, lo;
  size_t k;

  if (it->ipend < it->npend)
    return it->pend[it->ipend++];
  if (p >= it->end)
    return -1;
  if (*p == '\\') {
    switch (p[1]) {
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u': cp = 0; break;
    default: cp = p[1]; break;
    }
    if (p[1] != 'u') {
      it->p = p + 2;
      return (int)cp;
    }
    hex4((const char *)p + 2, (const char *)it->end, &cp);
    it->p = p + 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      /* The scanner guaranteed the low half follows. */
      hex4((const char *)p + 8, (const char *)it->end, &lo);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      it->p = p + 12;
    }
    /* \u0000 is written as U+FFFD (sl_ew_repair); compare it so. */
    it->npend = utf8_put(it->pend, cp ? cp : 0xFFFD);
  } else if (*p < 0x80) {
    it->p = p + 1;
    return *p;
  } else {
    k = sl_utf8_seq(p, (size_t)(it->end - p));
    if (k == 0) {
      memcpy(it->pend, "\xEF\xBF\xBD", 3);
      it->npend = 3;
      it->p = p + 1;
    } else {
      memcpy(it->pend, p, k);
      it->npend = (unsigned)k;
      it->p = p + k;
    }
  }
  it->ipend = 1;
  return it->pend[0];
}

/* Decode into buf (cap bytes); SIZE_MAX if it does not fit. */
static size_t
decode_small(const char *p, size_t n, char *buf, size_t cap)
{
  struct kit it;
  size_t o = 0;
  int c;

  kit_init(&it, p, n);
  while ((c = kit_next(&it)) >= 0) {
    if (o == cap)
      return SIZE_MAX;
    buf[o++] = (char)c;
  }
  return o;
}

/* ---- duplicate keys ---------------------------------------------------- */

/* ES refuses documents with duplicate keys, and so does the collector's
 * json_loadb (JSON_REJECT_DUPLICATES): in every object of a line the first
 * occurrence of a key wins. One set per line holds the keys of all its
 * objects: each key is chained to the previous key of the same object
 * (small objects: walk the chain), and past KS_HASH_AT keys an
 * open-addressing table on (object, hash) takes over, so a line with
 * huge numbers of keys stays linear instead of quadratic. */
struct keyent {
  const char *p;           /* raw contents (escapes intact) */
  uint32_t n;
  uint32_t h;              /* hash of the decoded key: cheap (length,
                            * first, last byte) while the set walks
                            * chains, seeded XXH3 once it has a table */
  uint32_t obj;            /* object number within the line */
  uint32_t prev;           /* previous key of the same object, KS_NONE */
  int slow;                /* has escapes or non-ASCII: compare decoded */
};

#define KS_LOCAL 32
#define KS_HASH_AT 16
#define KS_NONE UINT32_MAX

struct keyset {
  struct keyent *e;        /* `local` or heap */
  uint32_t n, cap;
  uint32_t *tab;           /* entry index + 1 per slot, 0 = empty */
  uint32_t tabmask;
  uint32_t nobj;           /* object numbers handed out */
  uint64_t seed;
  struct keyent local[KS_LOCAL];
};

static void
keyset_init(struct keyset *ks, uint64_t seed)
{
  ks->seed = seed;
  ks->e = ks->local;
  ks->n = 0;
  ks->cap = KS_LOCAL;
  ks->tab = NULL;
  ks->tabmask = 0;
  ks->nobj = 0;
}

static void
keyset_free(struct keyset *ks)
{
  if (ks->e != ks->local)
    free(ks->e);
  free(ks->tab);
}

static uint32_t
key_hash(size_t n, unsigned first, unsigned last)
{
  return (uint32_t)n * 0x9E3779B1u ^ first * 0x85EBCA77u ^
         last * 0xC2B2AE3Du;
}

static uint32_t
slot_of(uint32_t obj, uint32_t h)
{
  uint64_t x = (((uint64_t)obj << 32) | h) * 0x9E3779B97F4A7C15ULL;

  return (uint32_t)(x >> 32);
}

static int
key_eq(const struct keyent *a, const struct keyent *b)
{
  struct kit x, y;
  int c;

  if (!a->slow && !b->slow)
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
  kit_init(&x, a->p, a->n);
  kit_init(&y, b->p, b->n);
  do {
    c = kit_next(&x);
    if (c != kit_next(&y))
      return 0;
  } while (c >= 0);
  return 1;
}

/* Full hash of the decoded key, for the table. Only the first 256 decoded
 * bytes count, for fast (raw = decoded) and slow keys alike, so equal keys
 * always hash equal. */
static uint32_t
key_hash_full(const struct keyset *ks, const struct keyent *k)
{
  char buf[256];
  struct kit it;
  size_t o = 0;
  int c;

  if (!k->slow)
    return (uint32_t)XXH3_64bits_withSeed(k->p, k->n < sizeof(buf) ? k->n
                                          : sizeof(buf), ks->seed);
  kit_init(&it, k->p, k->n);
  while (o < sizeof(buf) && (c = kit_next(&it)) >= 0)
    buf[o++] = (char)c;
  return (uint32_t)XXH3_64bits_withSeed(buf, o, ks->seed);
}

/* (Re)build the table for all entries at twice the needed size. */
static int
keyset_rehash(struct keyset *ks)
{
  uint32_t cap = 64, i, j, *tab;

  while (cap < ks->n * 4)
    cap *= 2;
  tab = calloc(cap, sizeof(*tab));
  if (tab == NULL)
    return SL_ENOMEM;
  /* Entered once, from chain mode: switch every entry to the full hash. */
  if (ks->tab == NULL)
    for (i = 0; i < ks->n; i++)
      ks->e[i].h = key_hash_full(ks, &ks->e[i]);
  for (i = 0; i < ks->n; i++) {
    j = slot_of(ks->e[i].obj, ks->e[i].h) & (cap - 1);
    while (tab[j])
      j = (j + 1) & (cap - 1);
    tab[j] = i + 1;
  }
  free(ks->tab);
  ks->tab = tab;
  ks->tabmask = cap - 1;
  return 0;
}

/* Remember key [p, p+n) of object `obj` whose last key so far is *last.
 * `bloom` (optional) is one bit per cheap hash of the object's keys: most
 * keys are new, and the bit spares them the chain walk, whose exit
 * mispredicts (the top-level object of every line passes one).
 * 1: new, 0: a duplicate in that object, SL_ENOMEM. */
static int
keyset_add(struct keyset *ks, uint32_t obj, uint32_t *last, uint64_t *bloom,
           const char *p, size_t n, int slow)
{
  uint64_t bit = 0;
  struct keyent *k, *ne;
  struct kit it;
  uint32_t i, dn = 0, h;
  unsigned first = 0, last_c = 0;
  int c;

  if (ks->n == ks->cap) {
    if (ks->cap > UINT32_MAX / 4)
      return SL_ENOMEM;
    ne = malloc((size_t)ks->cap * 2 * sizeof(*ne));
    if (ne == NULL)
      return SL_ENOMEM;
    memcpy(ne, ks->e, ks->n * sizeof(*ne));
    if (ks->e != ks->local)
      free(ks->e);
    ks->e = ne;
    ks->cap *= 2;
  }
  /* Built in its slot, committed by n++ only if new: assembling it on the
   * stack and copying it made the copy stall on store forwarding. */
  k = &ks->e[ks->n];
  k->p = p;
  k->n = (uint32_t)n;
  k->slow = slow;
  k->obj = obj;
  k->prev = *last;
  if (ks->tab) {
    h = k->h = key_hash_full(ks, k);
    for (i = slot_of(obj, h) & ks->tabmask; ks->tab[i];
         i = (i + 1) & ks->tabmask) {
      ne = &ks->e[ks->tab[i] - 1];
      if (ne->obj == obj && ne->h == h && key_eq(ne, k))
        return 0;
    }
  } else {
    if (!slow) {
      dn = (uint32_t)n;
      if (n) {
        first = (unsigned char)p[0];
        last_c = (unsigned char)p[n - 1];
      }
    } else {
      kit_init(&it, p, n);
      while ((c = kit_next(&it)) >= 0) {
        if (dn++ == 0)
          first = (unsigned)c;
        last_c = (unsigned)c;
      }
    }
    h = k->h = key_hash(dn, first, last_c);
    if (bloom) {
      bit = (uint64_t)1 << (h >> 26);
      if ((*bloom & bit) == 0)
        goto add;
    }
    for (i = *last; i != KS_NONE; i = ks->e[i].prev)
      if (ks->e[i].h == h && key_eq(&ks->e[i], k))
        return 0;
  }
add:
  if (bloom)
    *bloom |= bit;
  *last = ks->n++;
  if (ks->tab == NULL && ks->n <= KS_HASH_AT)
    return 1;
  if (ks->tab == NULL || ks->n * 2 > ks->tabmask)
    return keyset_rehash(ks) == 0 ? 1 : SL_ENOMEM;
  for (i = slot_of(obj, h) & ks->tabmask; ks->tab[i];
       i = (i + 1) & ks->tabmask)
    ;
  ks->tab[i] = ks->n;
  return 1;
}

/* One value of a top-level member (depth 2), iteratively: containers are
 * tracked in a bitmap (1 = object) instead of by recursion, so hostile
 * nesting cannot exhaust the thread's stack. */
static const char *
scan_value(struct scan *s, const char *p, unsigned *fl, enum vtype *type,
           struct keyset *ks)
{
  const char *end = s->end, *kp;
  uint64_t objs[(MAX_DEPTH + 63) / 64];
  /* Per open object: its number and last key, for duplicate checks. */
  uint32_t objn[MAX_DEPTH], last[MAX_DEPTH];
  unsigned sp = 0, top, kfl;
  int rc;

  if (p == end)
    return fail(s, p, "unexpected end of line");
  switch (*p) {
  case '"': *type = V_STR; break;
  case '{': *type = V_OBJ; break;
  case '[': *type = V_ARR; break;
  case 't': case 'f': case 'n': *type = V_LIT; break;
  default: *type = V_NUM; break;
  }

value:
  if (p == end)
    return fail(s, p, "unexpected end of line");
  /* A value inside sp containers of this member sits at depth 2 + sp
   * (the top-level object is depth 1, as jansson counts). */
  if (2 + sp > MAX_DEPTH)
    return fail(s, p, "nesting too deep");
  switch (*p) {
  case '"':
    p = scan_str(s, p, fl);
    break;
  case '{':
  case '[':
    top = *p == '{';
    if (top) {
      objs[sp / 64] |= (uint64_t)1 << (sp % 64);
      objn[sp] = ks->nobj++;
      last[sp] = KS_NONE;
    } else
      objs[sp / 64] &= ~((uint64_t)1 << (sp % 64));
    sp++;
    p = skip_ws(p + 1, end, fl);
    if (p < end && *p == (top ? '}' : ']')) {
      p++;
      sp--;
      goto after;
    }
    if (top)
      goto key;
    goto value;
  case 't': case 'f': case 'n':
    p = scan_lit(s, p);
    break;
  case '-': case '0': case '1': case '2': case '3': case '4': case '5':
  case '6': case '7': case '8': case '9':
    p = scan_num(s, p, fl);
    break;
  default:
    return fail(s, p, "unexpected character");
  }
  if (p == NULL)
    return NULL;

after:
  if (sp == 0)
    return p;
  top = (unsigned)(objs[(sp - 1) / 64] >> ((sp - 1) % 64)) & 1u;
  p = skip_ws(p, end, fl);
  if (p == end)
    return fail(s, p, "unexpected end of line");
  if (*p == ',') {
    p = skip_ws(p + 1, end, fl);
    if (top)
      goto key;
    goto value;
  }
  if (*p == (top ? '}' : ']')) {
    p++;
    sp--;
    goto after;
  }
  return fail(s, p, top ? "expected ',' or '}'" : "expected ',' or ']'");

key:
  if (p == end)
    return fail(s, p, "unexpected end of line");
  if (*p != '"')
    return fail(s, p, "expected a string key");
  kfl = 0;
  kp = p + 1;
  p = scan_str(s, p, &kfl);
  if (p == NULL)
    return NULL;
  if (kfl & F_NUL)
    return fail(s, kp - 1, "NUL in object key");
  *fl |= kfl;
  rc = keyset_add(ks, objn[sp - 1], &last[sp - 1], NULL, kp,
                  (size_t)(p - 1 - kp),
                  (kfl & (F_ESC | F_BAD)) != 0);
  /* A duplicate (or no memory to tell) sends the value through
   * copy_fixed, which drops later duplicates and reports ENOMEM. */
  if (rc <= 0)
    *fl |= F_DUP;
  p = skip_ws(p, end, fl);
  if (p == end || *p != ':')
    return fail(s, p, "expected ':'");
  p = skip_ws(p + 1, end, fl);
  goto value;
}

/* ---- special keys ------------------------------------------------------ */

enum role {
  R_NONE, R_TS, R_MSG, R_LEVEL, R_TRACE, R_DDTRACE, R_SPAN, R_DDSPAN,
  R_TRACEPARENT, R_TXN, R_REQID,
  R_TSFIELD,                /* the input's timestamp.field */
  R_CORR                    /* other correlation keys (jstate.ckey) */
};

static enum role
classify(const char *k, size_t n)
{
#define IS(lit) (memcmp(k, lit, sizeof(lit) - 1) == 0)
  switch (n) {
  case 2:
    return IS("ts") ? R_TS : R_NONE;
  case 3:
    if (IS("msg") || IS("log"))
      return R_MSG;
    return IS("lvl") ? R_LEVEL : R_NONE;
  case 4:
    return IS("time") ? R_TS : R_NONE;
  case 5:
    if (IS("level"))
      return R_LEVEL;
    return IS("reqId") ? R_REQID : R_NONE;
  case 6:
    if (IS("req_id"))
      return R_REQID;
    return IS("spanId") ? R_SPAN : R_NONE;
  case 7:
    if (IS("message"))
      return R_MSG;
    if (IS("span_id") || IS("span.id"))
      return R_SPAN;
    return IS("traceId") ? R_TRACE : R_NONE;
  case 8:
    if (IS("trace_id") || IS("trace.id"))
      return R_TRACE;
    return IS("severity") || IS("loglevel") ? R_LEVEL : R_NONE;
  case 9:
    if (IS("timestamp"))
      return R_TS;
    if (IS("log.level"))
      return R_LEVEL;
    return IS("requestId") ? R_REQID : R_NONE;
  case 10:
    if (IS("@timestamp"))
      return R_TS;
    if (IS("request_id"))
      return R_REQID;
    return IS("dd.span_id") ? R_DDSPAN : R_NONE;
  case 11:
    if (IS("traceparent"))
      return R_TRACEPARENT;
    return IS("dd.trace_id") ? R_DDTRACE : R_NONE;
  case 12:
    if (IS("x_request_id") || strncasecmp(k, "x-request-id", 12) == 0)
      return R_REQID;
    return R_NONE;
  case 13:
    if (IS("transactionId"))
      return R_TXN;
    return IS("correlationId") ? R_REQID : R_NONE;
  case 14:
    if (IS("transaction_id") || IS("transaction.id"))
      return R_TXN;
    return IS("correlation_id") ? R_REQID : R_NONE;
  case 15:
    return IS("http.request.id") ? R_REQID : R_NONE;
  default:
    return R_NONE;
  }
#undef IS
}

/* An ECS field of the application, flattened to its dotted path. */
struct ecs_leaf {
  const char *path;        /* raw key bytes joined by '.', arena or line */
  const char *vp;          /* the value as written */
  uint32_t pn, vn;
  unsigned char fix;       /* value goes through copy_fixed */
};

/* Per-line state of the JSON parser. */
struct jstate {
  struct sl_ew_ev ev;
  int app_open;
  int have_ts, have_msg, have_level, have_req;
  int ts_failed;
  struct sl_ew_text ts_orig;       /* first unparsable timestamp value */
  int ts_field_failed;
  int64_t read_ns;
  struct sl_corr_ids corr;  /* .fam: the source owning trace/span ids */
  struct sl_corr_key ckey;  /* for R_CORR */
  const struct sl_ts_conf *ts;
  char level[33];
  struct keyset keys;       /* top-level object is number 0 */
  uint32_t top_last;
  uint64_t top_bloom;
  const struct json_conf *conf;
  /* ECS leaves of the application, written after "app" closes. */
  struct ecs_leaf *leaf;    /* `leaf0` or heap */
  uint32_t nleaf, leafcap;
  struct ecs_leaf leaf0[16];
  /* Dotted paths the keyset points at: `arena0`, then heap chunks, each
   * starting with a pointer to the previous chunk; freed per line. */
  char *acur;
  size_t aleft;
  void *chunks;
  char arena0[512];
};

#if !defined(__SSE2__)
/* Value of a hex digit, 16 for anything else. A table, not branches:
 * ids are random hex, so digit-or-letter branches mispredict half the
 * time (this was the top symbol of bench_parse). */
static const unsigned char hexval[256] = {
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  0,1,2,3,4,5,6,7,8,9,16,16,16,16,16,16,
  16,10,11,12,13,14,15,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,10,11,12,13,14,15,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
  16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,16,
};
#endif

/* Lower hex of exactly `want` (16 or 32) hex digits, not all zero (W3C).
 * Ids are on every line of traced services, so 16 bytes at a time. */
static int
hex_id(const char *s, size_t n, size_t want, char *out)
{
  char tmp[32];
  size_t i;
#if defined(__SSE2__)
  const __m128i c20 = _mm_set1_epi8(0x20), zero = _mm_set1_epi8('0');
  unsigned ok = 1, nz = 0;

  if (n != want || (n != 16 && n != 32))
    return 0;
  for (i = 0; i < n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
    /* '0'-'9' keep their value under |0x20, 'A'-'F' become 'a'-'f'; bytes
     * >= 0x80 are negative in these signed compares, so they fail both. */
    __m128i lo = _mm_or_si128(v, c20);
    __m128i dig = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    __m128i af = _mm_and_si128(_mm_cmpgt_epi8(lo, _mm_set1_epi8('a' - 1)),
                               _mm_cmplt_epi8(lo, _mm_set1_epi8('f' + 1)));

    ok &= _mm_movemask_epi8(_mm_or_si128(dig, af)) == 0xFFFF;
    nz |= _mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)) != 0xFFFF;
    _mm_storeu_si128((__m128i *)(void *)(tmp + i), lo);
  }
  if (!ok || !nz)
    return 0;
#else
  unsigned bad = 0, nz = 0, d;

  if (n != want || n > sizeof(tmp))
    return 0;
  for (i = 0; i < n; i++) {
    d = hexval[(unsigned char)s[i]];
    bad |= d & 0x10;
    nz |= d;
    /* '0'-'9' and 'a'-'f' are unchanged by |0x20, 'A'-'F' become lower. */
    tmp[i] = (char)(s[i] | 0x20);
  }
  if (bad || nz == 0)
    return 0;
#endif
  /* Only now touch `out`: it is the event's field. */
  memcpy(out, tmp, n);
  out[n] = '\0';
  return 1;
}

/* Decimal uint64 (1..20 digits, no sign), non-zero. */
static int
dec_u64(const char *s, size_t n, uint64_t *v)
{
  size_t i;
  uint64_t x = 0, d;

  if (n == 0 || n > 20)
    return 0;
  for (i = 0; i < n; i++) {
    if (!is_digit(s[i]))
      return 0;
    d = (uint64_t)(s[i] - '0');
    if (x > (UINT64_MAX - d) / 10)
      return 0;
    x = x * 10 + d;
  }
  *v = x;
  return x != 0;
}

static void
hex_pad(uint64_t v, size_t width, char *out)
{
  size_t i;

  for (i = width; i > 0; i--) {
    out[i - 1] = "0123456789abcdef"[v & 15];
    v >>= 4;
  }
  out[width] = '\0';
}


/* Epochs before this are taken as "not a timestamp" (see the rules). */
#define MIN_EPOCH_NS (1000000000LL * SL_NS_PER_SEC)

/* 1 if [s, s+n) is a timestamp: epochs as before (numbers or numeric
 * strings, not before MIN_EPOCH_NS), other strings in timestamp.c's
 * formats (the configured layouts first for the timestamp.field key),
 * without an offset in the input's zone. */
static int
parse_ts(const struct jstate *st, const char *s, size_t n, int is_num,
         int layouts, int64_t *ns, unsigned *prec)
{
  size_t i;

  *prec = SL_TS_MS;
  for (i = 0; i < n && (is_digit(s[i]) || s[i] == '.'); i++)
    ;
  if (is_num || (i == n && n > 0))
    return sl_time_parse_epoch(s, n, ns) == 0 && *ns >= MIN_EPOCH_NS;
  if (layouts)
    return sl_ts_parse_field(st->ts, s, n, st->read_ns, ns, prec) == 0;
  return sl_ts_parse_auto(s, n, st->ts->tz, st->read_ns, ns, prec) == 0;
}

/* Datadog ids: decimal first (what dd-trace injects; a 16-digit decimal
 * would otherwise pass as hex), then already-hex of the full width. */
static int
dd_id(const char *s, size_t n, size_t width, char *out)
{
  uint64_t v;

  if (dec_u64(s, n, &v)) {
    hex_pad(v, width, out);
    return 1;
  }
  return hex_id(s, n, width, out);
}

static int
fam_ok(const struct jstate *st, unsigned fam)
{
  return st->corr.fam == SL_CF_NONE || st->corr.fam == fam;
}

/* Try to use a special key's value; 1 if it filled its field. `c`/`cn` is
 * the string's contents (decoded when it had escapes) or the number's
 * text; `raw`/`rawn` the contents as written. */
static int
use_special(struct jstate *st, enum role role, enum vtype vt,
            const char *vp, size_t vn, unsigned vfl)
{
  char buf[64];
  const char *c = vp, *raw = vp;
  size_t cn = vn, rawn = vn;
  int64_t ns;
  unsigned prec;
  struct sl_ew_ev *ev = &st->ev;

  if (vt == V_STR) {
    raw = c = vp + 1;
    rawn = cn = vn - 2;
    if (vfl & (F_ESC | F_BAD)) {
      cn = decode_small(raw, rawn, buf, sizeof(buf));
      c = buf;
      /* Ids and levels are short; a long one cannot qualify, except as a
       * message or request id, which are copied as written. */
      if (cn == SIZE_MAX && role != R_MSG && role != R_REQID && role != R_TS &&
          role != R_TSFIELD)
        return 0;
    }
  } else if (vt != V_NUM) {
    return 0;
  }

  switch (role) {
  case R_TS:
  case R_TSFIELD:
    if (st->have_ts)
      return 0;
    if (cn != SIZE_MAX &&
        parse_ts(st, c, cn, vt == V_NUM, role == R_TSFIELD, &ns, &prec)) {
      ev->ts_ns = ns;
      ev->ts_us = prec == SL_TS_US;
      st->have_ts = 1;
      return 1;
    }
    if (role == R_TSFIELD)
      st->ts_field_failed = 1;
    if (!st->ts_failed) {
      st->ts_failed = 1;
      st->ts_orig.p = raw;
      st->ts_orig.n = rawn;
      st->ts_orig.json = vt == V_STR;
      st->ts_orig.fix = (vfl & (F_BAD | F_NUL)) != 0;
    }
    return 0;
  case R_MSG:
    if (st->have_msg || vt != V_STR)
      return 0;
    ev->msg.p = raw;
    ev->msg.n = rawn;
    ev->msg.json = 1;
    ev->msg.fix = (vfl & (F_BAD | F_NUL)) != 0;
    st->have_msg = 1;
    return 1;
  case R_LEVEL: {
    const char *name;
    size_t i, n;

    if (st->have_level || cn == 0 || cn > 32)
      return 0;
    for (i = 0; i < cn; i++)
      st->level[i] = (char)(c[i] >= 'A' && c[i] <= 'Z' ? c[i] | 0x20 : c[i]);
    st->level[cn] = '\0';
    /* The common canonical names without the table walk. */
    if ((cn == 4 && (memcmp(st->level, "info", 4) == 0 ||
                     memcmp(st->level, "warn", 4) == 0)) ||
        (cn == 5 && (memcmp(st->level, "error", 5) == 0 ||
                     memcmp(st->level, "debug", 5) == 0))) {
      name = st->level;
    } else {
      name = sl_level_norm(st->level, cn);
      /* Numbers only as bunyan/pino levels: other numeric schemes (syslog
       * 0-7, Java 800/900...) would be guessed wrong. */
      if (name == NULL && vt == V_NUM)
        return 0;
      if (name == NULL)
        name = st->level; /* not a known level: as written, lower case */
    }
    n = strlen(name);
    ev->level.p = name;
    ev->level.n = n;
    ev->level.json = 0;
    ev->level.fix = 0;
    st->have_level = 1;
    return 1;
  }
  /* One source owns trace.id and span.id (correlate.h); ids of other
   * sources stay app keys. */
  case R_TRACE:
    if (vt != V_STR || !fam_ok(st, SL_CF_OTEL) || ev->trace_id[0] ||
        !hex_id(c, cn, 32, ev->trace_id))
      return 0;
    st->corr.fam = SL_CF_OTEL;
    return 1;
  case R_DDTRACE:
    if (!fam_ok(st, SL_CF_DD) || ev->trace_id[0] ||
        !dd_id(c, cn, 32, ev->trace_id))
      return 0;
    st->corr.fam = SL_CF_DD;
    return 1;
  case R_SPAN:
    if (vt != V_STR || !fam_ok(st, SL_CF_OTEL) || ev->span_id[0] ||
        !hex_id(c, cn, 16, ev->span_id))
      return 0;
    st->corr.fam = SL_CF_OTEL;
    return 1;
  case R_DDSPAN:
    if (!fam_ok(st, SL_CF_DD) || ev->span_id[0] ||
        !dd_id(c, cn, 16, ev->span_id))
      return 0;
    st->corr.fam = SL_CF_DD;
    return 1;
  case R_TRACEPARENT:
  case R_CORR:
    /* Ids that come as a pair (traceparent, b3, X-Ray) or keys spelled
     * in other cases: correlate.c, through a scratch set of ids. */
    if (vt != V_STR || cn == SIZE_MAX)
      return 0;
    {
      struct sl_corr_ids ids;
      struct sl_corr_key k = st->ckey;

      if (role == R_TRACEPARENT) {
        k.fam = SL_CF_W3C;
        k.kind = SL_CK_BOTH;
      }
      sl_corr_ids_clear(&ids);
      memcpy(ids.trace, ev->trace_id, sizeof(ids.trace));
      memcpy(ids.span, ev->span_id, sizeof(ids.span));
      ids.fam = st->corr.fam;
      if (!sl_corr_offer(&ids, &k, c, cn))
        return 0;
      memcpy(ev->trace_id, ids.trace, sizeof(ids.trace));
      memcpy(ev->span_id, ids.span, sizeof(ids.span));
      st->corr.fam = ids.fam;
      return 1;
    }
  case R_TXN:
    return vt == V_STR && !ev->txn_id[0] && hex_id(c, cn, 16, ev->txn_id);
  case R_REQID:
    if (st->have_req || rawn == 0 || rawn > 256)
      return 0;
    if (vt == V_NUM && memchr(vp, '.', vn) == NULL &&
        memchr(vp, 'e', vn) == NULL && memchr(vp, 'E', vn) == NULL &&
        vp[0] != '-') {
      ev->req_id.p = vp;
      ev->req_id.n = vn;
      ev->req_id.json = 0;
      ev->req_id.fix = 0;
    } else if (vt == V_STR) {
      ev->req_id.p = raw;
      ev->req_id.n = rawn;
      ev->req_id.json = 1;
      ev->req_id.fix = (vfl & (F_BAD | F_NUL)) != 0;
    } else {
      return 0;
    }
    st->have_req = 1;
    return 1;
  case R_NONE:
    break;
  }
  return 0;
}

/* End of the validated string starting at p[i] == '"'. */
static size_t
str_end(const char *p, size_t i)
{
  for (i++; p[i] != '"'; i += p[i] == '\\' ? 2 : 1)
    ;
  return i + 1;
}

static size_t
skip_ws_v(const char *p, size_t i, size_t n)
{
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
                   p[i] == '\r'))
    i++;
  return i;
}

/* End of the validated value starting at p[i]. */
static size_t
skip_value(const char *p, size_t i, size_t n)
{
  int depth = 0;

  if (p[i] == '"')
    return str_end(p, i);
  if (p[i] != '{' && p[i] != '[') {
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' &&
           p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
      i++;
    return i;
  }
  do {
    if (p[i] == '"') {
      i = str_end(p, i);
      continue;
    }
    if (p[i] == '{' || p[i] == '[')
      depth++;
    else if (p[i] == '}' || p[i] == ']')
      depth--;
    i++;
  } while (depth > 0);
  return i;
}

static int
needs_slow_compare(const char *p, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (p[i] == '\\' || (unsigned char)p[i] >= 0x80)
      return 1;
  return 0;
}

/* Re-emit a validated value that needs fixing (the slow path; plain values
 * are copied with one memcpy): strings through sl_ew_repair; numbers
 * jansson cannot hold as strings (lossless, and the event stays loadable);
 * whitespace dropped (so no raw CR/LF: one event, one line); with `dedupe`,
 * later duplicate keys of each object dropped with their values. Iterative
 * like scan_value, for the same reason. */
static void
copy_fixed(struct sl_ew *w, const char *p, size_t n, int dedupe,
           uint64_t seed)
{
  struct keyset ks;
  uint64_t objs[(MAX_DEPTH + 63) / 64], first[(MAX_DEPTH + 63) / 64];
  uint32_t objn[MAX_DEPTH], last[MAX_DEPTH];
  size_t i = 0, j, k;
  unsigned sp = 0, top, bit;
  uint64_t m;
  int rc;

  keyset_init(&ks, seed);
value:
  i = skip_ws_v(p, i, n);
  switch (p[i]) {
  case '{':
  case '[':
    top = p[i] == '{';
    m = (uint64_t)1 << (sp % 64);
    objs[sp / 64] = top ? objs[sp / 64] | m : objs[sp / 64] & ~m;
    first[sp / 64] |= m;
    if (top) {
      objn[sp] = ks.nobj++;
      last[sp] = KS_NONE;
    }
    sp++;
    sl_ew_byte(w, p[i]);
    i = skip_ws_v(p, i + 1, n);
    if (p[i] == (top ? '}' : ']')) {
      sl_ew_byte(w, p[i]);
      i++;
      sp--;
      goto after;
    }
    if (top)
      goto key;
    goto value;
  case '"':
    j = str_end(p, i);
    sl_ew_byte(w, '"');
    sl_ew_repair(w, p + i + 1, j - i - 2);
    sl_ew_byte(w, '"');
    i = j;
    goto after;
  case 't':
  case 'n':
    sl_ew_put(w, p + i, 4);
    i += 4;
    goto after;
  case 'f':
    sl_ew_put(w, p + i, 5);
    i += 5;
    goto after;
  default:
    j = skip_value(p, i, n);
    if (num_big(p + i, j - i)) {
      sl_ew_byte(w, '"');
      sl_ew_put(w, p + i, j - i);
      sl_ew_byte(w, '"');
    } else {
      sl_ew_put(w, p + i, j - i);
    }
    i = j;
    goto after;
  }

after:
  if (sp == 0)
    goto done;
  i = skip_ws_v(p, i, n);
  top = (unsigned)(objs[(sp - 1) / 64] >> ((sp - 1) % 64)) & 1u;
  if (p[i] == ',') {
    i++;
    if (top)
      goto key;
    sl_ew_byte(w, ',');
    goto value;
  }
  sl_ew_byte(w, p[i]);
  i++;
  sp--;
  goto after;

key:
  i = skip_ws_v(p, i, n);
  j = str_end(p, i);
  k = skip_ws_v(p, j, n) + 1; /* past ':' */
  if (dedupe) {
    rc = keyset_add(&ks, objn[sp - 1], &last[sp - 1], NULL, p + i + 1,
                    j - i - 2,
                    needs_slow_compare(p + i + 1, j - i - 2));
    if (rc < 0) {
      if (!w->err)
        w->err = rc;
      goto done;
    }
    if (rc == 0) {
      i = skip_value(p, skip_ws_v(p, k, n), n);
      goto after;
    }
  }
  bit = (unsigned)(first[(sp - 1) / 64] >> ((sp - 1) % 64)) & 1u;
  if (bit)
    first[(sp - 1) / 64] &= ~((uint64_t)1 << ((sp - 1) % 64));
  else
    sl_ew_byte(w, ',');
  sl_ew_byte(w, '"');
  sl_ew_repair(w, p + i + 1, j - i - 2);
  SL_EW_LIT(w, "\":");
  i = k;
  goto value;

done:
  keyset_free(&ks);
}

/* ---- ECS fields of the application ------------------------------------- */

/* ECS 8.11 top-level field sets (plus the top-level fields labels and
 * tags), sorted. A top-level key whose first dotted segment is
 * one of these is an ECS field, not an app.* key. */
static const struct {
  const char *s;
  unsigned char n;
} ecs_sets[] = {
#define E(x) { x, sizeof(x) - 1 }
  E("agent"), E("as"), E("client"), E("cloud"), E("container"),
  E("data_stream"), E("destination"), E("device"), E("dll"), E("dns"),
  E("ecs"), E("email"), E("error"), E("event"), E("faas"), E("file"),
  E("group"), E("host"), E("http"), E("labels"), E("log"), E("network"),
  E("observer"), E("orchestrator"), E("organization"), E("package"),
  E("process"), E("registry"), E("related"), E("rule"), E("server"),
  E("service"), E("source"), E("span"), E("tags"), E("threat"), E("tls"),
  E("trace"), E("transaction"), E("url"), E("user"), E("user_agent"),
  E("vulnerability"),
#undef E
};

/* Bit n of row c: some field set starts with 'a' + c and is n bytes
 * long (generated from ecs_sets[]). */
static const uint16_t ecs_first_len[26] = {
  0x0024, 0x0000, 0x0260, 0x0848, 0x0028, 0x0010, 0x0020, 0x0010, 0x0000,
  0x0000, 0x0000, 0x0048, 0x0000, 0x0080, 0x1100, 0x0080, 0x0000, 0x0190,
  0x00d0, 0x0878, 0x0418, 0x2000, 0x0000, 0x0000, 0x0000, 0x0000
};

/* Row of ecs_sets[] where names starting with 'a' + c begin (sorted). */
static const unsigned char ecs_first_idx[27] = {
  0, 2, 2, 5, 10, 14, 16, 17, 19, 19, 19, 19, 21, 21, 22, 25, 27, 27, 30, 34,
  39, 42, 43, 43, 43, 43, 43
};

static int
ecs_set(const char *k, size_t n)
{
  size_t i;

  /* First byte and length first: most application keys fail there, and
   * this check runs for every key of every line. */
  if (n < 2 || n > 13 || k[0] < 'a' || k[0] > 'z' ||
      !(ecs_first_len[k[0] - 'a'] >> n & 1))
    return 0;
  for (i = ecs_first_idx[k[0] - 'a']; i < ecs_first_idx[k[0] - 'a' + 1];
       i++)
    if (ecs_sets[i].n == n && memcmp(k, ecs_sets[i].s, n) == 0)
      return 1;
  return 0;
}

/* Is `p` on, above or below a path the agent writes? Above or below would
 * make ES map one name as both an object and a value (it rejects that
 * document); on it would give the field two values. */
static int
ecs_reserved(const struct json_conf *jc, const char *p, size_t n)
{
  const char *r;
  size_t rn, m;

  for (r = jc->reserved; *r; r += rn + 1) {
    rn = (unsigned char)r[0];
    r++;
    m = n < rn ? n : rn;
    if (r[0] == p[0] && memcmp(p, r, m) == 0 &&
        (n == rn || (n > rn ? p[rn] == '.' : r[n] == '.')))
      return 1;
  }
  return 0;
}

static char *
arena_alloc(struct jstate *st, size_t n)
{
  size_t sz;
  char *c;

  if (n > st->aleft) {
    sz = n + sizeof(void *) > 4096 ? n + sizeof(void *) : 4096;
    c = malloc(sz);
    if (c == NULL)
      return NULL;
    memcpy(c, &st->chunks, sizeof(void *));
    st->chunks = c;
    st->acur = c + sizeof(void *);
    st->aleft = sz - sizeof(void *);
  }
  c = st->acur;
  st->acur += n;
  st->aleft -= n;
  return c;
}

static void
arena_free(struct jstate *st)
{
  void *c = st->chunks, *prev;

  while (c) {
    memcpy(&prev, c, sizeof(void *));
    free(c);
    c = prev;
  }
  st->chunks = NULL;
  if (st->leaf != st->leaf0)
    free(st->leaf);
}

static void
put_value(struct jstate *st, struct sl_ew *w, const char *vp, size_t vn,
          int fix)
{
  if (fix)
    copy_fixed(w, vp, vn, 1, st->keys.seed);
  else
    sl_ew_put(w, vp, vn);
}

/* app."<path>": value. The path was deduplicated against every other
 * top-level and app key of the line. */
static void
app_put(struct jstate *st, struct sl_ew *w, const char *path, size_t pn,
        const char *vp, size_t vn, int fix)
{
  if (!st->app_open) {
    SL_EW_LIT(w, ",\"app\":{\"");
    st->app_open = 1;
  } else {
    SL_EW_LIT(w, ",\"");
  }
  sl_ew_repair(w, path, pn);
  SL_EW_LIT(w, "\":");
  put_value(st, w, vp, vn, fix);
}

/* One leaf (a non-object value, or an empty or too deep object) of an ECS
 * member. `known`: the path is the member's own key, already in the
 * keyset and already offered to use_special. */
static void
ecs_leaf(struct jstate *st, struct sl_ew *w, const char *path, size_t pn,
         int slow, const char *vp, size_t vn, unsigned vfl, int known)
{
  struct ecs_leaf *nl;
  enum vtype vt;
  enum role role;
  int rc;

  if (!known) {
    rc = keyset_add(&st->keys, 0, &st->top_last, &st->top_bloom, path, pn,
                    slow);
    if (rc <= 0) {
      if (rc < 0 && !w->err)
        w->err = rc;
      return;
    }
    vt = vp[0] == '"' ? V_STR : vp[0] == '{' ? V_OBJ : vp[0] == '[' ? V_ARR
         : (vp[0] == '-' || is_digit(vp[0])) ? V_NUM : V_LIT;
    if (vt == V_STR && memchr(vp, '\\', vn))
      vfl |= F_ESC;
    role = !slow && pn <= 16 ? classify(path, pn) : R_NONE;
    if (role != R_NONE && use_special(st, role, vt, vp, vn, vfl))
      return;
  }
  if (vp[0] == '{' || ecs_reserved(st->conf, path, pn)) {
    app_put(st, w, path, pn, vp, vn, (vfl & F_FIX) != 0);
    return;
  }
  if (st->nleaf == st->leafcap) {
    nl = malloc((size_t)st->leafcap * 2 * sizeof(*nl));
    if (nl == NULL) {
      if (!w->err)
        w->err = SL_ENOMEM;
      return;
    }
    memcpy(nl, st->leaf, st->nleaf * sizeof(*nl));
    if (st->leaf != st->leaf0)
      free(st->leaf);
    st->leaf = nl;
    st->leafcap *= 2;
  }
  nl = &st->leaf[st->nleaf++];
  nl->path = path;
  nl->pn = (uint32_t)pn;
  nl->vp = vp;
  nl->vn = (uint32_t)vn;
  nl->fix = (vfl & F_FIX) != 0;
}

/* Objects deeper than this below the top-level key stay one value. */
#define ECS_FLAT_DEPTH 16

/* Flatten the validated object p[0..n) found at `path`: every member
 * becomes path.key (raw key bytes, escapes intact). Recursion is bounded
 * by ECS_FLAT_DEPTH. */
static void
ecs_walk(struct jstate *st, struct sl_ew *w, const char *path, size_t pn,
         int slow, const char *p, size_t n, unsigned vfl, int depth)
{
  size_t i, j, v, ve, kn;
  char *np;
  int kslow;

  i = skip_ws_v(p, 1, n);
  while (p[i] == '"' && !w->err) {
    j = str_end(p, i);
    kn = j - i - 2;
    v = skip_ws_v(p, skip_ws_v(p, j, n) + 1, n);
    ve = skip_value(p, v, n);
    np = arena_alloc(st, pn + 1 + kn);
    if (np == NULL) {
      w->err = SL_ENOMEM;
      return;
    }
    memcpy(np, path, pn);
    np[pn] = '.';
    memcpy(np + pn + 1, p + i + 1, kn);
    kslow = slow || needs_slow_compare(p + i + 1, kn);
    if (p[v] == '{' && depth < ECS_FLAT_DEPTH &&
        p[skip_ws_v(p, v + 1, ve)] != '}')
      ecs_walk(st, w, np, pn + 1 + kn, kslow, p + v, ve - v, vfl,
               depth + 1);
    else
      ecs_leaf(st, w, np, pn + 1 + kn, kslow, p + v, ve - v,
               vfl & (F_BAD | F_NUL | F_FIX), 0);
    i = skip_ws_v(p, ve, n);
    if (p[i] == ',')
      i = skip_ws_v(p, i + 1, n);
  }
}

/* A top-level member that is an ECS field; 0 if it is not one. */
static int
ecs_member(struct jstate *st, struct sl_ew *w, const char *kp, size_t kn,
           unsigned kfl, const char *vp, size_t vn, enum vtype vt,
           unsigned vfl)
{
  const char *dot = memchr(kp, '.', kn), *a, *b;

  if (kfl & (F_ESC | F_BAD))
    return 0;
  if (!ecs_set(kp, dot ? (size_t)(dot - kp) : kn))
    return 0;
  if (kn == 4 && memcmp(kp, "tags", 4) == 0) {
    /* Merged with the agent's own tags by the event writer. */
    if (vt != V_ARR || (vfl & F_FIX))
      return 0;
    a = vp + 1;
    b = vp + vn - 1;
    while (a < b && (*a == ' ' || *a == '\t'))
      a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
      b--;
    st->ev.app_tags = a;
    st->ev.app_tags_n = (size_t)(b - a);
    return 1;
  }
  /* A value where ECS has an object (e.g. "error":"boom") would be
   * rejected by ES's ECS mapping: such keys stay app keys. */
  if (dot == NULL && vt != V_OBJ)
    return 0;
  if (vt == V_OBJ && vp[skip_ws_v(vp, 1, vn)] == '}')
    return 0;
  if (vt == V_OBJ)
    ecs_walk(st, w, kp, kn, 0, vp, vn, vfl, 1);
  else
    ecs_leaf(st, w, kp, kn, 0, vp, vn, vfl, 1);
  return 1;
}

/* After "app" closed: the ECS leaves as top-level dotted keys. */
static void
ecs_flush(struct jstate *st, struct sl_ew *w)
{
  uint32_t i;

  for (i = 0; i < st->nleaf; i++) {
    SL_EW_LIT(w, ",\"");
    sl_ew_repair(w, st->leaf[i].path, st->leaf[i].pn);
    SL_EW_LIT(w, "\":");
    put_value(st, w, st->leaf[i].vp, st->leaf[i].vn, st->leaf[i].fix);
  }
}

/* One top-level member; the value has been fully validated. */
static void
member(struct jstate *st, struct sl_ew *w, const char *kp, size_t kn,
       unsigned kfl, const char *vp, size_t vn, enum vtype vt, unsigned vfl)
{
  char kbuf[16];
  const char *k = kp;
  size_t n = kn;
  enum role role = R_NONE;
  int rc;

  rc = keyset_add(&st->keys, 0, &st->top_last, &st->top_bloom, kp, kn,
                  (kfl & (F_ESC | F_BAD)) != 0);
  if (rc <= 0) {
    if (rc < 0 && !w->err)
      w->err = rc;
    return;
  }
  if (kfl & (F_ESC | F_BAD)) {
    n = decode_small(kp, kn, kbuf, sizeof(kbuf));
    k = kbuf;
  }
  if (n <= sizeof(kbuf))
    role = classify(k, n);
  /* Other spellings of correlation keys (any case, '-' or '_'). */
  if (role == R_NONE && n <= 32 && sl_corr_key(k, n, &st->ckey))
    role = st->ckey.fam == SL_CF_REQ ? R_REQID
           : st->ckey.fam == SL_CF_TXN ? R_TXN : R_CORR;
  /* A configured timestamp field replaces the usual timestamp keys. */
  if (st->ts->field) {
    if (role == R_TS)
      role = R_NONE;
    if (n == strlen(st->ts->field) && (n <= sizeof(kbuf) || k == kp) &&
        memcmp(k, st->ts->field, n) == 0)
      role = R_TSFIELD;
  }
  if (role != R_NONE && use_special(st, role, vt, vp, vn, vfl))
    return;
  if (ecs_member(st, w, kp, kn, kfl, vp, vn, vt, vfl))
    return;
  if (!st->app_open) {
    SL_EW_LIT(w, ",\"app\":{\"");
    st->app_open = 1;
  } else {
    SL_EW_LIT(w, ",\"");
  }
  if (kfl & F_BAD)
    sl_ew_repair(w, kp, kn);
  else
    sl_ew_put(w, kp, kn);
  SL_EW_LIT(w, "\":");
  if (vfl & F_FIX)
    copy_fixed(w, vp, vn, (vfl & F_DUP) != 0, st->keys.seed);
  else
    sl_ew_put(w, vp, vn);
}

/* A line that is not a JSON object: the whole line as a raw event, tagged
 * as a parse failure (never dropped). Out of json_event so the hot path's
 * frame does not carry the message buffer. */
static void
json_failed(struct sl_ew *w, const struct sl_parse_ctx *ctx,
            const struct sl_src *src, const char *line, size_t len,
            uint64_t offset, unsigned flags, int64_t read_time_ns,
            const struct scan *s)
{
  char emsg[96];

  if (s->why == NULL) {
    sl_ew_raw_event(w, &ctx->ev, src, line, len, offset, flags,
                    read_time_ns, NULL, NULL);
    return;
  }
  snprintf(emsg, sizeof(emsg), "json parse failure at byte %zu: %s",
           (size_t)(s->err_at - line), s->why);
  sl_ew_raw_event(w, &ctx->ev, src, line, len, offset, flags, read_time_ns,
                  emsg, "sluice_json_parse_failure");
}

static void
json_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
           const struct sl_src *src, const char *line, size_t len,
           uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  struct scan s;
  struct jstate st;
  const char *p = line, *end = line + len, *kp, *vp;
  size_t start = sl_ew_len(w), slot, kn;
  unsigned kfl, wfl = 0, vfl;
  enum vtype vt;

  s.end = end;
  s.err_at = NULL;
  s.why = NULL;
  /* Only what is read before being written (see sl_ew_ev_clear). */
  st.app_open = st.have_ts = st.have_msg = st.have_level = 0;
  st.have_req = st.ts_failed = 0;
  sl_ew_ev_clear(&st.ev, read_time_ns);
  keyset_init(&st.keys,
              ((const struct json_conf *)ctx->priv)->hash_seed);
  st.keys.nobj = 1;
  st.top_last = KS_NONE;
  st.top_bloom = 0;
  st.conf = ctx->priv;
  st.ts = ctx->ts;
  st.read_ns = read_time_ns;
  st.ts_field_failed = 0;
  st.corr.fam = SL_CF_NONE;
  st.leaf = st.leaf0;
  st.nleaf = 0;
  st.leafcap = sizeof(st.leaf0) / sizeof(st.leaf0[0]);
  st.acur = st.arena0;
  st.aleft = sizeof(st.arena0);
  st.chunks = NULL;

  slot = sl_ew_ev_begin(w);
  p = skip_ws(p, end, &wfl);
  if (p == end) {
    fail(&s, p, p == line ? "empty line" : "blank line");
    goto bad;
  }
  if (*p != '{') {
    fail(&s, p, "not a JSON object");
    goto bad;
  }
  p = skip_ws(p + 1, end, &wfl);
  if (p < end && *p == '}') {
    p++;
    goto done;
  }
  for (;;) {
    if (p == end) {
      fail(&s, p, "unexpected end of line");
      goto bad;
    }
    if (*p != '"') {
      fail(&s, p, "expected a string key");
      goto bad;
    }
    kp = p + 1;
    kfl = 0;
    p = scan_str(&s, p, &kfl);
    if (p == NULL)
      goto bad;
    if (kfl & F_NUL) {
      fail(&s, kp - 1, "NUL in object key");
      goto bad;
    }
    kn = (size_t)(p - 1 - kp);
    p = skip_ws(p, end, &wfl);
    if (p == end || *p != ':') {
      fail(&s, p, "expected ':'");
      goto bad;
    }
    vp = p = skip_ws(p + 1, end, &wfl);
    vfl = 0;
    /* Scalars inline: scan_value's stack (16 KiB of per-depth state) is
     * for containers; most members are strings and numbers. */
    switch (p < end ? *p : '\0') {
    case '"':
      vt = V_STR;
      p = scan_str(&s, p, &vfl);
      break;
    case '-': case '0': case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9':
      vt = V_NUM;
      p = scan_num(&s, p, &vfl);
      break;
    default:
      p = scan_value(&s, p, &vfl, &vt, &st.keys);
      break;
    }
    if (p == NULL)
      goto bad;
    member(&st, w, kp, kn, kfl, vp, (size_t)(p - vp), vt, vfl);
    p = skip_ws(p, end, &wfl);
    if (p == end) {
      fail(&s, p, "unexpected end of line");
      goto bad;
    }
    if (*p == ',') {
      p = skip_ws(p + 1, end, &wfl);
      continue;
    }
    if (*p != '}') {
      fail(&s, p, "expected ',' or '}'");
      goto bad;
    }
    p++;
    break;
  }

done:
  p = skip_ws(p, end, &wfl);
  if (p != end) {
    fail(&s, p, "data after the object");
    goto bad;
  }
  if (st.app_open)
    sl_ew_byte(w, '}');
  ecs_flush(&st, w);
  if (!st.have_ts && st.ts_failed)
    st.ev.original = st.ts_orig;
  if (!st.have_ts && st.ts_field_failed)
    st.ev.tag = "sluice_timestamp_parse_failure";
  if (st.ev.msg.p)
    sl_parse_corr_rules(ctx, st.ev.msg.p, st.ev.msg.n, &st.ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &st.ev, slot);
  keyset_free(&st.keys);
  arena_free(&st);
  return;

bad:
  keyset_free(&st.keys);
  arena_free(&st);
  if (w->err)
    return;
  sl_ew_setlen(w, start);
  json_failed(w, ctx, src, line, len, offset, flags, read_time_ns, &s);
}

/* ---- the parser -------------------------------------------------------- */

/* The paths the agent writes itself (event_writer.h's layout and the
 * input's service and labels). */
static const char agent_paths[] =
  "@timestamp\0message\0log.level\0log.file.path\0log.offset\0log.flags\0"
  "trace.id\0span.id\0transaction.id\0http.request.id\0event.id\0"
  "event.original\0event.dataset\0data_stream\0host.name\0agent\0"
  "ecs.version\0";

static int
reserve(struct sl_buf *b, const char *p, size_t n)
{
  char len = (char)(unsigned char)n;
  int rc;

  if (n == 0 || n > 255)
    return 0;
  rc = sl_buf_append(b, &len, 1);
  if (!rc)
    rc = sl_buf_append(b, p, n);
  if (!rc)
    rc = sl_buf_append(b, "", 1);
  return rc;
}

static int
json_init(const json_t *input, void **priv, char *err, size_t errlen)
{
  struct json_conf *jc = calloc(1, sizeof(*jc));
  const json_t *fields = json_object_get(input, "fields"), *v;
  const json_t *service = json_object_get(input, "service");
  const char *key, *p;
  struct sl_buf b;
  size_t at;
  int rc = 0;

  (void)err;
  (void)errlen;
  if (jc == NULL)
    return SL_ENOMEM;
  /* A random seed, so that lines cannot be crafted to collide in the
   * duplicate-key table (hash flooding). */
  if (getrandom(&jc->hash_seed, sizeof(jc->hash_seed), GRND_NONBLOCK) !=
      (ssize_t)sizeof(jc->hash_seed))
    jc->hash_seed = (uint64_t)sl_time_now_ns() ^ (uint64_t)(uintptr_t)jc;
  sl_buf_init(&b, 1 << 20);
  /* Each entry: its length (one byte), the path, a NUL; "" ends. */
  for (p = agent_paths; !rc && *p; p += strlen(p) + 1)
    rc = reserve(&b, p, strlen(p));
  if (!rc && json_is_string(service) && json_string_length(service) > 0)
    rc = reserve(&b, "service.name", 12);
  if (json_is_object(fields)) {
    json_object_foreach((json_t *)fields, key, v) {
      char lab[256];
      size_t ln;

      if (rc)
        break;
      /* parse.c writes a label's dots as '_'. */
      ln = (size_t)snprintf(lab, sizeof(lab), "labels.%s", key);
      if (ln >= sizeof(lab))
        continue; /* longer than any reserved entry can be */
      for (at = 7; at < ln; at++)
        if (lab[at] == '.')
          lab[at] = '_';
      rc = reserve(&b, lab, ln);
    }
  }
  if (!rc)
    rc = sl_buf_append(&b, "", 1);
  if (rc) {
    sl_buf_free(&b);
    free(jc);
    return rc;
  }
  jc->reserved = sl_buf_take(&b, &at);
  *priv = jc;
  return 0;
}

static void
json_destroy(void *priv)
{
  struct json_conf *jc = priv;

  free(jc->reserved);
  free(jc);
}

const struct sl_parser_ops sl_parser_json = {
  .name = "json",
  .init = json_init,
  .destroy = json_destroy,
  .event = json_event,
};
