/* fuzz_parse_json.c - libFuzzer target for the agent's one-pass JSON
 * scanner (agent/parse_json.c) and event writer (agent/event_writer.c).
 *
 * The input is one line. Checked for every input, with both parsers:
 *  - sl_parse_event succeeds and writes exactly one event that loads in
 *    jansson with default flags (what the collector uses), is an object,
 *    has @timestamp and event.id, no duplicate keys (the collector loads
 *    with JSON_REJECT_DUPLICATES) and no raw newline;
 *  - the JSON parser's verdict (event vs parse-failure event) equals
 *    jansson's on the same line with invalid UTF-8 repaired, under the
 *    rules documented in parse_json.c (object at the top, value depth at
 *    most 2047, raw NUL bytes invalid; jansson's numeric overflow errors
 *    are not JSON errors and are skipped).
 *
 * Seeds: tests/fuzz/corpus-parse_json/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "sl_json.h" /* sl_utf8_seq: the repair rule */
#include "sl_buf.h"

static struct sl_parse_ctx *ctx_json, *ctx_raw;

static void
die(const char *what, const char *ev)
{
  fprintf(stderr, "fuzz_parse_json: %s\nevent: %s\n", what, ev ? ev : "-");
  abort();
}

static struct sl_parse_ctx *
mk(const char *parser)
{
  static const struct sl_agent_info info = { "h", "a", NULL, "1" };
  struct sl_parse_ctx *ctx = NULL;
  char err[128];
  json_t *in = json_pack("{s:s,s:{s:s}}", "parser", parser, "fields",
                         "env", "fuzz");

  if (in == NULL || sl_parse_ctx_new(in, &info, &ctx, err, sizeof(err)))
    die("context", err);
  json_decref(in);
  return ctx;
}

/* Loads the event as the collector would; 1 if it is a parse failure. */
static int
check_event(const struct sl_buf *b)
{
  json_error_t je;
  json_t *ev, *e;
  int failed;

  if (memchr(b->p, '\n', b->len))
    die("raw newline in event", b->p);
  ev = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    die(je.text, b->p);
  if (!json_is_object(ev) || !json_is_string(json_object_get(ev,
                                                             "@timestamp")))
    die("no @timestamp", b->p);
  e = json_object_get(ev, "event");
  if (!json_is_string(json_object_get(e, "id")))
    die("no event.id", b->p);
  failed = json_object_get(ev, "tags") != NULL;
  json_decref(ev);
  return failed;
}

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

/* 1 valid object, 0 invalid, -1 no verdict (jansson numeric overflow). */
static int
reference(const char *line, size_t len)
{
  char *fixed = malloc(len * 3 + 1);
  size_t i = 0, o = 0, k;
  json_error_t je;
  json_t *j;
  int ok;

  if (fixed == NULL)
    abort();
  while (i < len) {
    k = sl_utf8_seq((const unsigned char *)line + i, len - i);
    if (k == 0) {
      memcpy(fixed + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(fixed + o, line + i, k);
      o += k;
      i += k;
    }
  }
  j = json_loadb(fixed, o, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (j == NULL && json_error_code(&je) == json_error_numeric_overflow)
    ok = -1;
  else
    ok = j && json_is_object(j) && ref_depth(j) <= 2047 &&
         memchr(fixed, '\0', o) == NULL;
  json_decref(j);
  free(fixed);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *line = (const char *)data;
  struct sl_src src = { "/f.log", 1, 2, 3 };
  struct sl_buf b;
  int failed, ref;

  if (ctx_json == NULL) {
    ctx_json = mk("json");
    ctx_raw = mk("raw");
  }
  sl_buf_init(&b, 0);
  if (sl_parse_event(ctx_json, &src, line, size, 0, 0, 0, &b) != 0)
    die("sl_parse_event json failed", NULL);
  failed = check_event(&b);
  ref = reference(line, size);
  if (ref >= 0 && failed == ref)
    die(ref ? "verdict: jansson accepts, parser rejects"
            : "verdict: jansson rejects, parser accepts", b.p);
  sl_buf_reset(&b);
  if (sl_parse_event(ctx_raw, &src, line, size, 0, SL_LINE_TRUNCATED, 0,
                     &b) != 0)
    die("sl_parse_event raw failed", NULL);
  if (check_event(&b))
    die("raw parser tagged a failure", b.p);
  sl_buf_free(&b);
  return 0;
}
