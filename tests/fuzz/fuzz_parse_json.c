/* fuzz_parse_json.c - libFuzzer target for the agent's one-pass JSON
 * scanner (agent/parse_json.c) and event writer (agent/event_writer.c).
 *
 * The input is one line. Checked for every input, with both parsers:
 *  - sl_parse_event succeeds and writes exactly one event that loads in
 *    jansson with default flags (what the collector uses), is an object,
 *    has @timestamp and event.id, no duplicate keys (the collector loads
 *    with JSON_REJECT_DUPLICATES) and no raw newline;
 *  - the JSON parser's verdict (event vs parse-failure event) equals
 *    the jansson reference model's (tests/ref_json.h: invalid UTF-8
 *    repaired, object at the top, value depth at most 2047, raw NUL
 *    bytes invalid; jansson's numeric overflow errors are not JSON
 *    errors and are skipped).
 *
 * Seeds: tests/fuzz/corpus-parse_json/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "ref_json.h" /* the reference model, shared with the unit test */
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
  /* Only the raw fallback writes an "error" object. */
  failed = json_object_get(ev, "error") != NULL;
  json_decref(ev);
  return failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *line = (const char *)data;
  struct sl_src src = { "/f.log", 1, 2, 3 };
  struct ref_json ref;
  struct sl_buf b;
  int failed;

  if (ctx_json == NULL) {
    ctx_json = mk("json");
    ctx_raw = mk("raw");
  }
  sl_buf_init(&b, 0);
  if (sl_parse_event(ctx_json, &src, line, size, 0, 0, 0, &b) != 0)
    die("sl_parse_event json failed", NULL);
  failed = check_event(&b);
  ref_json_judge(line, size, &ref);
  if (ref.verdict >= 0 && failed == ref.verdict)
    die(ref.verdict ? "verdict: jansson accepts, parser rejects"
                    : "verdict: jansson rejects, parser accepts", b.p);
  ref_json_free(&ref);
  sl_buf_reset(&b);
  if (sl_parse_event(ctx_raw, &src, line, size, 0, SL_LINE_TRUNCATED, 0,
                     &b) != 0)
    die("sl_parse_event raw failed", NULL);
  if (check_event(&b))
    die("raw parser tagged a failure", b.p);
  sl_buf_free(&b);
  return 0;
}
