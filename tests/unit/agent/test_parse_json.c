/* test_parse_json.c - differential test of the one-pass JSON scanner
 * (agent/parse_json.c) against jansson.
 *
 * For generated lines -- valid objects with random nesting, escapes,
 * surrogate pairs, numbers of every form, and their mutations (deleted,
 * inserted, flipped and duplicated bytes, truncations, invalid UTF-8, lone
 * surrogates) -- the parser's verdict (JSON event vs parse-failure event)
 * must equal jansson's, and for accepted lines every application key must
 * come out equal (json_equal) to what jansson reads.
 *
 * How jansson is asked (the rules parse_json.c documents):
 *  - JSON_DECODE_ANY | JSON_ALLOW_NUL, then "is it an object";
 *  - invalid UTF-8 is repaired before jansson sees it (U+FFFD per bad
 *    byte, by this file's own decoder), because the parser repairs instead
 *    of rejecting;
 *  - a raw NUL byte makes a line invalid, whatever jansson says (it reads
 *    NUL as end of input in places);
 *  - samples where jansson reports json_error_numeric_overflow are skipped
 *    (jansson's int64/double limit, not a JSON rule); they are counted and
 *    must stay rare;
 *  - jansson keeps the last duplicate key, the parser the first (in every
 *    object): value comparison is done only for lines without duplicates,
 *    and every event must load with JSON_REJECT_DUPLICATES;
 *  - the event must load with jansson's default flags (what the collector
 *    uses), so the parser allows value depth 2047 (one less than jansson:
 *    app adds a level) and writes \u0000 in values as U+FFFD; the
 *    reference applies the same two rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "sl_buf.h"

#define VALID_DOCS 6000
#define MUTATIONS 12

static const struct sl_agent_info info = { "h", "a", NULL, "1" };
static const struct sl_src src = { "/x.log", 1, 2, 3 };

/* ---- deterministic PRNG (splitmix64) ----------------------------------- */

static uint64_t rng_state = 0x5eed5eed12345678ULL;

static uint64_t
rnd(void)
{
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static unsigned
rn(unsigned n)
{
  return (unsigned)(rnd() % n);
}

/* ---- generator --------------------------------------------------------- */

struct gen {
  char *p;
  size_t len, cap;
};

static void
g_put(struct gen *g, const void *s, size_t n)
{
  if (g->len + n + 1 > g->cap) {
    g->cap = (g->len + n + 1) * 2;
    g->p = realloc(g->p, g->cap);
    assert_non_null(g->p);
  }
  memcpy(g->p + g->len, s, n);
  g->len += n;
  g->p[g->len] = '\0';
}

static void
g_str(struct gen *g, const char *s)
{
  g_put(g, s, strlen(s));
}

static void
g_ws(struct gen *g)
{
  static const char *const ws[] = { " ", "\t", "  ", "\n", "\r\n", " \t" };

  if (rn(6) == 0)
    g_str(g, ws[rn(6)]);
}

static void
g_hex4(struct gen *g, unsigned v)
{
  char b[8];

  snprintf(b, sizeof(b), rn(2) ? "\\u%04x" : "\\u%04X", v);
  g_str(g, b);
}

static void
g_string_body(struct gen *g)
{
  static const char *const pieces[] = {
    "a", "Z", "0", " ", "/", "~", "\x7f", "\\\"", "\\\\", "\\/", "\\b",
    "\\f", "\\n", "\\r", "\\t", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
    "\xed\x9f\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
  };
  unsigned n = rn(12), i, cp;

  for (i = 0; i < n; i++) {
    switch (rn(6)) {
    case 0:
      cp = rn(0xD800);
      g_hex4(g, cp);
      break;
    case 1:
      /* A surrogate pair. */
      g_hex4(g, 0xD800 + rn(0x400));
      g_hex4(g, 0xDC00 + rn(0x400));
      break;
    case 2:
      g_hex4(g, 0xE000 + rn(0x2000));
      break;
    default:
      g_str(g, pieces[rn(sizeof(pieces) / sizeof(pieces[0]))]);
      break;
    }
  }
}

static void
g_number(struct gen *g)
{
  static const char *const fixed[] = {
    "0", "-0", "1", "-1", "0.5", "-0.0", "1e5", "1E+5", "1e-5", "2.5E-3",
    "123456789", "-9223372036854775808", "9223372036854775807", "1.7e308",
    "4.9e-324", "0.000001", "10", "20", "30", "40", "50", "60",
    "1714564800", "1714564800.123", "1714564800123",
  };
  char b[64];
  int n;

  if (rn(3) == 0) {
    g_str(g, fixed[rn(sizeof(fixed) / sizeof(fixed[0]))]);
    return;
  }
  n = snprintf(b, sizeof(b), "%s%u", rn(3) ? "" : "-", rn(1000000));
  if (rn(3) == 0)
    n += snprintf(b + n, sizeof(b) - (size_t)n, ".%u", rn(100000));
  if (rn(4) == 0)
    n += snprintf(b + n, sizeof(b) - (size_t)n, "%s%s%u", rn(2) ? "e" : "E",
                  rn(3) == 0 ? "-" : (rn(2) ? "+" : ""), rn(300));
  g_put(g, b, (size_t)n);
}

static void g_value(struct gen *g, int depth);

static void
g_key(struct gen *g, unsigned idx)
{
  static const char *const special[] = {
    "msg", "message", "log", "level", "lvl", "severity", "log.level",
    "ts", "time", "timestamp", "@timestamp", "trace_id", "traceId",
    "trace.id", "span_id", "spanId", "span.id", "dd.trace_id", "dd.span_id",
    "traceparent", "transaction_id", "request_id", "reqId", "X-Request-ID",
  };
  char b[32];

  g_put(g, "\"", 1);
  if (rn(4) == 0) {
    g_str(g, special[rn(sizeof(special) / sizeof(special[0]))]);
  } else {
    /* The index keeps generated keys distinct (mostly; escapes and the
     * special names can still collide, which the checks allow for). */
    snprintf(b, sizeof(b), "k%u", idx);
    g_str(g, b);
    if (rn(3) == 0)
      g_string_body(g);
  }
  g_put(g, "\"", 1);
}

static void
g_object(struct gen *g, int depth)
{
  unsigned n = depth > 4 ? 0 : rn(6), i;

  g_put(g, "{", 1);
  g_ws(g);
  for (i = 0; i < n; i++) {
    if (i) {
      g_put(g, ",", 1);
      g_ws(g);
    }
    g_key(g, i);
    g_ws(g);
    g_put(g, ":", 1);
    g_ws(g);
    g_value(g, depth + 1);
    g_ws(g);
  }
  g_put(g, "}", 1);
}

static void
g_value(struct gen *g, int depth)
{
  unsigned i, n;

  switch (rn(depth > 4 ? 6 : 8)) {
  case 0:
  case 1:
    g_put(g, "\"", 1);
    g_string_body(g);
    g_put(g, "\"", 1);
    break;
  case 2:
  case 3:
    g_number(g);
    break;
  case 4:
    g_str(g, rn(2) ? "true" : (rn(2) ? "false" : "null"));
    break;
  case 5:
    /* Special-looking strings: timestamps, ids, levels. */
    switch (rn(5)) {
    case 0: g_str(g, "\"2024-05-01T12:00:00.5+02:00\""); break;
    case 1: g_str(g, "\"4BF92F3577B34DA6A3CE929D0E0E4736\""); break;
    case 2: g_str(g, "\"00f067aa0ba902b7\""); break;
    case 3:
      g_str(g, "\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"");
      break;
    default: g_str(g, rn(2) ? "\"WARN\"" : "\"info\""); break;
    }
    break;
  case 6:
    g_object(g, depth);
    break;
  default:
    n = rn(5);
    g_put(g, "[", 1);
    g_ws(g);
    for (i = 0; i < n; i++) {
      if (i)
        g_put(g, ",", 1);
      g_ws(g);
      g_value(g, depth + 1);
      g_ws(g);
    }
    g_put(g, "]", 1);
    break;
  }
}

/* ---- mutations --------------------------------------------------------- */

static const char interesting[] = "{}[]\":,\\ \t\n0123456789-+.eEtfnul\x01";

static unsigned char
rnd_byte(void)
{
  switch (rn(4)) {
  case 0:
    return (unsigned char)rn(256);
  case 1:
    return (unsigned char)(0x80 + rn(0x80));
  default:
    return (unsigned char)interesting[rn(sizeof(interesting) - 1)];
  }
}

static void
mutate(struct gen *g)
{
  size_t at = g->len ? rn((unsigned)g->len) : 0, n;
  static const char *const inserts[] = {
    "\\ud800", "\\udc00", "\\ud800\\u0041", "\\uDBFF\\uDFFF", "\\u00",
    "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff",
    "\\u0000", "\\x", "1e", "-", "01", "]", "}", "{", "[", ",", "\"",
    "99999999999999999999", "1e999",
  };
  const char *ins;

  switch (rn(7)) {
  case 0:
    if (g->len) {
      memmove(g->p + at, g->p + at + 1, g->len - at - 1);
      g->len--;
    }
    break;
  case 1:
    g_put(g, " ", 1);
    memmove(g->p + at + 1, g->p + at, g->len - at - 1);
    g->p[at] = (char)rnd_byte();
    break;
  case 2:
    if (g->len)
      g->p[at] = (char)(g->p[at] ^ (1 << rn(8)));
    break;
  case 3:
    g->len = at;
    break;
  case 4:
    if (g->len)
      g->p[at] = (char)rnd_byte();
    break;
  case 5:
    ins = inserts[rn(sizeof(inserts) / sizeof(inserts[0]))];
    n = strlen(ins);
    g_put(g, ins, n);
    memmove(g->p + at + n, g->p + at, g->len - at - n);
    memcpy(g->p + at, ins, n);
    break;
  default:
    /* Duplicate a span (unbalances brackets, repeats keys). */
    n = rn(8) + 1;
    if (at + n <= g->len) {
      char tmp[8];

      memcpy(tmp, g->p + at, n);
      g_put(g, tmp, n);
      memmove(g->p + at + n, g->p + at, g->len - at - n);
      memcpy(g->p + at, tmp, n);
    }
    break;
  }
  g->p[g->len] = '\0';
}

/* ---- reference side ---------------------------------------------------- */

/* Well-formed UTF-8 per the Unicode standard, table 3-7 (written apart from
 * the code under test on purpose). */
static size_t
ref_utf8(const unsigned char *s, size_t n)
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

static void
repair(const char *in, size_t n, struct gen *out)
{
  const unsigned char *u = (const unsigned char *)in;
  size_t i = 0, k;

  out->len = 0;
  g_put(out, "", 0);
  while (i < n) {
    k = ref_utf8(u + i, n - i);
    if (k == 0) {
      g_put(out, "\xEF\xBF\xBD", 3);
      i++;
    } else {
      g_put(out, in + i, k);
      i += k;
    }
  }
}

/* Value depth of a DOM, top = 1 (jansson's count). */
static size_t
ref_depth(json_t *v)
{
  size_t d = 0, x, i;
  const char *k;
  json_t *c;

  if (json_is_object(v)) {
    json_object_foreach(v, k, c)
      if ((x = ref_depth(c)) > d)
        d = x;
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, c)
      if ((x = ref_depth(c)) > d)
        d = x;
  }
  return d + 1;
}

/* In place: NUL characters in strings -> U+FFFD. */
static void
ref_nul(json_t *v)
{
  const char *k;
  json_t *c;
  size_t i, n;
  struct gen t = { NULL, 0, 0 };
  const char *p;

  if (json_is_object(v)) {
    json_object_foreach(v, k, c)
      ref_nul(c);
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, c)
      ref_nul(c);
  } else if (json_is_string(v)) {
    p = json_string_value(v);
    n = json_string_length(v);
    if (memchr(p, '\0', n) == NULL)
      return;
    for (i = 0; i < n; i++) {
      if (p[i])
        g_put(&t, p + i, 1);
      else
        g_put(&t, "\xEF\xBF\xBD", 3);
    }
    assert_int_equal(json_string_setn(v, t.p, t.len), 0);
    free(t.p);
  }
}

struct stats {
  unsigned valid, invalid, overflow_skips, compared_keys, dup_skips;
};

static void
check_line(struct sl_parse_ctx *ctx, const char *line, size_t len,
           struct stats *st)
{
  struct sl_buf out;
  struct gen fixed = { NULL, 0, 0 };
  json_error_t je;
  json_t *ref, *ev, *app, *v, *tags;
  const char *key;
  int ref_ok, mine_ok;
  size_t rlen = len;

  /* No CR stripping on either side: that is the line splitter's job. */
  repair(line, rlen, &fixed);
  ref = json_loadb(fixed.p, fixed.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (ref == NULL && json_error_code(&je) == json_error_numeric_overflow) {
    st->overflow_skips++;
    free(fixed.p);
    return;
  }
  ref_ok = ref != NULL && json_is_object(ref) && ref_depth(ref) <= 2047;
  /* A raw NUL byte is invalid anywhere in JSON (a control character in a
   * string, no token outside), but jansson's json_loadb takes it as the end
   * of input in places and accepts e.g. {"a":1<NUL>}. Overruled here. */
  if (memchr(fixed.p, '\0', fixed.len))
    ref_ok = 0;

  sl_buf_init(&out, 0);
  assert_int_equal(sl_parse_event(ctx, &src, line, len, 7, 0, 1, &out), 0);
  if (memchr(out.p, '\n', out.len))
    fail_msg("raw newline in event for %s", line);
  /* What the collector does: default flags plus no duplicate keys. */
  ev = json_loadb(out.p, out.len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    fail_msg("event is not JSON (%s): %s\nline: %s", je.text, out.p, line);
  tags = json_object_get(ev, "tags");
  mine_ok = tags == NULL;
  if (mine_ok != ref_ok)
    fail_msg("verdict differs: parser %s, jansson %s (%s)\nline(%zu): %s\n"
             "event: %s", mine_ok ? "valid" : "invalid",
             ref_ok ? "valid" : "invalid", ref ? "" : je.text, len, line,
             out.p);
  if (!mine_ok) {
    st->invalid++;
    goto done;
  }
  st->valid++;
  /* Value check, only when jansson's last-wins equals first-wins. */
  json_decref(ref);
  ref = json_loadb(fixed.p, fixed.len,
                   JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
  if (ref == NULL) {
    st->dup_skips++;
    goto done;
  }
  ref_nul(ref);
  app = json_object_get(ev, "app");
  json_object_foreach(ref, key, v) {
    json_t *got = app ? json_object_get(app, key) : NULL;

    if (got == NULL)
      continue; /* consumed by a special key; test_parse.c checks those */
    if (!json_equal(got, v)) {
      char *a = json_dumps(v, JSON_ENCODE_ANY);
      char *b = json_dumps(got, JSON_ENCODE_ANY);

      fail_msg("app.%s differs: want %s got %s\nline: %s", key, a, b, line);
    }
    st->compared_keys++;
  }
  /* Nothing invented: every app key exists in the input. */
  json_object_foreach(app, key, v)
    assert_non_null(json_object_get(ref, key));

done:
  json_decref(ref);
  json_decref(ev);
  sl_buf_free(&out);
  free(fixed.p);
}

static struct sl_parse_ctx *
json_ctx(void)
{
  struct sl_parse_ctx *ctx = NULL;
  json_t *in = json_pack("{s:s}", "parser", "json");
  char err[128];

  assert_int_equal(sl_parse_ctx_new(in, &info, &ctx, err, sizeof(err)), 0);
  json_decref(in);
  return ctx;
}

static void
test_differential(void **state)
{
  struct sl_parse_ctx *ctx = json_ctx();
  struct gen g = { NULL, 0, 0 }, m = { NULL, 0, 0 };
  struct stats st = { 0, 0, 0, 0, 0 };
  unsigned i, j, k;

  (void)state;
  for (i = 0; i < VALID_DOCS; i++) {
    g.len = 0;
    g_ws(&g);
    g_object(&g, 0);
    g_ws(&g);
    check_line(ctx, g.p, g.len, &st);
    for (j = 0; j < MUTATIONS; j++) {
      m.len = 0;
      g_put(&m, g.p, g.len);
      for (k = rn(3) + 1; k > 0; k--)
        mutate(&m);
      check_line(ctx, m.p, m.len, &st);
    }
  }
  print_message("differential: %u valid, %u invalid, %u app values equal, "
                "%u duplicate-key lines, %u jansson-overflow skips\n",
                st.valid, st.invalid, st.compared_keys, st.dup_skips,
                st.overflow_skips);
  /* The generator must exercise both sides well. */
  assert_true(st.valid > VALID_DOCS);
  assert_true(st.invalid > VALID_DOCS * 3);
  assert_true(st.compared_keys > VALID_DOCS * 2);
  assert_true(st.overflow_skips < (VALID_DOCS * MUTATIONS) / 50);
  free(g.p);
  free(m.p);
  sl_parse_ctx_free(ctx);
}

/* Hand-picked edge cases, each compared with jansson the same way. */
static void
test_edge_cases(void **state)
{
  static const char *const lines[] = {
    "{}", " {} ", "{ }", "{\"\":0}", "[]", "1", "\"s\"", "null", "",
    "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud83d\\ude00\"}",
    "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ude00\"}", "{\"a\":\"\\ud83d\\u0041\"}",
    "{\"a\":\"\\ud83d\\ud83d\"}", "{\"a\":\"\\uDBFF\\uDFFF\"}",
    "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\'\"}", "{\"a\":'x'}",
    "{\"a\":-0.0e-0}", "{\"a\":1E+2}", "{\"a\":.5}", "{\"a\":+1}",
    "{\"a\":1.e1}", "{\"a\":0x1}", "{\"a\":Infinity}", "{\"a\":NaN}",
    "{\"a\":truee}", "{\"a\":nul}", "{\"a\":[}", "{\"a\":{]}",
    "{\"a\":1}\r", "{\"a\":1}\n", "{\"a\":1}\f", "{\"a\":1}\v",
    "\xef\xbb\xbf{}", "{\"a\xed\xa0\x80\":1}", "{\"a\":\"\xf5\"}",
    "{\"a\":\"\xc2\"}", "{\"a\":\"\xe0\x9f\xbf\"}", "{\"a\":1}/*c*/",
    "{\"a\" :1 ,\"b\": 2}", "{\"a\":[1,[2,[3,{\"b\":[]}]]]}",
    "{\"a\":\"x\x7f\"}", "{\"a\":\"\t\"}", "{\"a\":1,\"a\":2}",
  };
  struct sl_parse_ctx *ctx = json_ctx();
  struct stats st = { 0, 0, 0, 0, 0 };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
    check_line(ctx, lines[i], strlen(lines[i]), &st);
  /* Embedded NUL bytes (not escapes) are invalid everywhere. */
  check_line(ctx, "{\"a\":\"x\0y\"}", 11, &st);
  check_line(ctx, "{\"a\":1}\0", 8, &st);
  check_line(ctx, "{\"a\":1\0}", 8, &st);
  check_line(ctx, "{\"a\":[null\0 ]}", 14, &st);
  assert_int_equal(st.valid + st.invalid,
                   sizeof(lines) / sizeof(lines[0]) + 4);
  sl_parse_ctx_free(ctx);
}

/* Nesting around jansson's limit, scalars and containers innermost. */
static void
test_depth_matches_jansson(void **state)
{
  struct sl_parse_ctx *ctx = json_ctx();
  struct stats st = { 0, 0, 0, 0, 0 };
  struct gen g = { NULL, 0, 0 };
  static const char *const inner[] = { "", "1", "{}", "{\"k\":1}", "[]" };
  size_t d, i, k;

  (void)state;
  for (d = 2043; d <= 2049; d++) {
    for (k = 0; k < sizeof(inner) / sizeof(inner[0]); k++) {
      g.len = 0;
      g_str(&g, "{\"a\":");
      for (i = 0; i < d; i++)
        g_str(&g, i % 2 ? "{\"o\":" : "[");
      g_str(&g, inner[k]);
      for (i = d; i > 0; i--)
        g_str(&g, (i - 1) % 2 ? "}" : "]");
      g_str(&g, "}");
      check_line(ctx, g.p, g.len, &st);
    }
  }
  assert_true(st.valid > 0 && st.invalid > 0);
  free(g.p);
  sl_parse_ctx_free(ctx);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_edge_cases),
    cmocka_unit_test(test_depth_matches_jansson),
    cmocka_unit_test(test_differential),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
