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
#include "ref_json.h"
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
    /* ECS field sets and dotted ECS keys (ecs-logging). */
    "error", "host", "event", "labels", "tags", "service.name", "process",
    "log.logger", "event.id", "http",
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

/* ---- reference side: tests/ref_json.[ch] -------------------------------- */

struct stats {
  unsigned valid, invalid, overflow_skips, compared_keys, dup_skips;
};

/* Is the key or one of its dotted prefixes a key of `vals`? */
static int
has_prefix(json_t *vals, const char *key)
{
  const char *dot = strchr(key, '.');
  char first[256];
  int found = json_object_get(vals, key) != NULL;

  for (; !found && dot; dot = strchr(dot + 1, '.')) {
    snprintf(first, sizeof(first), "%.*s", (int)(dot - key), key);
    found = json_object_get(vals, first) != NULL;
  }
  return found;
}

/* The value at dotted `path` in `obj`, trying every way to split the
 * path into keys. */
static json_t *
find_path(json_t *obj, const char *path)
{
  const char *dot;
  json_t *v, *sub;
  char seg[256];

  if ((v = json_object_get(obj, path)) != NULL)
    return v;
  for (dot = strchr(path, '.'); dot; dot = strchr(dot + 1, '.')) {
    snprintf(seg, sizeof(seg), "%.*s", (int)(dot - path), path);
    sub = json_object_get(obj, seg);
    if (json_is_object(sub) && (v = find_path(sub, dot + 1)) != NULL)
      return v;
  }
  return NULL;
}

/* Every top-level dotted key of the event that is not the agent's must be
 * a leaf of the input, at that path, with the same value. */
static void
check_ecs_leaves(json_t *ev, json_t *vals)
{
  const char *key;
  json_t *v, *in;

  json_object_foreach(ev, key, v) {
    if (strchr(key, '.') == NULL)
      continue;
    /* Generated keys may hold dots and escapes themselves: the path is
     * then ambiguous, and only its first segment can be checked. */
    if (key[strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.@")]) {
      if (!has_prefix(vals, key))
        fail_msg("ECS key %s is not in the input", key);
      continue;
    }
    /* Keys may hold dots themselves: any split of the path. */
    in = find_path(vals, key);
    if (in == NULL)
      fail_msg("ECS key %s is not in the input", key);
    if (!json_equal(in, v))
      fail_msg("ECS key %s differs: want %s got %s", key,
               json_dumps(in, JSON_ENCODE_ANY), json_dumps(v, JSON_ENCODE_ANY));
  }
}

static void
check_line(struct sl_parse_ctx *ctx, const char *line, size_t len,
           struct stats *st)
{
  struct sl_buf out;
  struct ref_json ref;
  json_error_t je;
  json_t *vals = NULL, *ev, *app, *v, *tags;
  const char *key;
  int mine_ok;

  ref_json_judge(line, len, &ref);
  if (ref.verdict < 0) {
    st->overflow_skips++;
    ref_json_free(&ref);
    return;
  }

  sl_buf_init(&out, 0);
  assert_int_equal(sl_parse_event(ctx, &src, line, len, 7, 0, 1, &out), 0);
  if (memchr(out.p, '\n', out.len))
    fail_msg("raw newline in event for %s", line);
  /* What the collector does: default flags plus no duplicate keys. */
  ev = json_loadb(out.p, out.len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    fail_msg("event is not JSON (%s): %s\nline: %s", je.text, out.p, line);
  /* Only the raw fallback writes an "error" object (application ECS
   * fields are written as dotted keys). */
  tags = json_object_get(ev, "error");
  mine_ok = tags == NULL;
  if (mine_ok != ref.verdict)
    fail_msg("verdict differs: parser %s, jansson %s (%s)\nline(%zu): %s\n"
             "event: %s", mine_ok ? "valid" : "invalid",
             ref.verdict ? "valid" : "invalid", ref.doc ? "" : ref.err.text,
             len, line, out.p);
  if (!mine_ok) {
    st->invalid++;
    goto done;
  }
  st->valid++;
  /* Value check, only when jansson's last-wins equals first-wins. */
  vals = ref_json_values(&ref);
  if (vals == NULL) {
    st->dup_skips++;
    goto done;
  }
  app = json_object_get(ev, "app");
  json_object_foreach(vals, key, v) {
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
  /* Nothing invented: every app key exists in the input, or is the
   * dotted path of an ECS field the agent writes itself. */
  json_object_foreach(app, key, v) {
    if (!has_prefix(vals, key))
      fail_msg("app.%s is not in the input", key);
  }
  /* ECS leaves are top-level dotted keys with the input's values. */
  check_ecs_leaves(ev, vals);

done:
  json_decref(vals);
  json_decref(ev);
  sl_buf_free(&out);
  ref_json_free(&ref);
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
