/* fuzz_parser.h - the body of the per-parser libFuzzer targets
 * (fuzz_parse_<name>.c define FUZZ_PARSER and include this).
 *
 * The input is one line, parsed with FUZZ_PARSER (input keys: parser,
 * timezone UTC, a label). Checked for every input:
 *  - sl_parse_event succeeds and writes exactly one event that loads in
 *    jansson as the collector does (JSON_REJECT_DUPLICATES), is an object
 *    with @timestamp and event.id, and has no raw newline;
 *  - the event is either parsed (no tags) or a parse failure: tags exactly
 *    ["sluice_<parser>_parse_failure"], error.message set and `message`
 *    holding the line (nothing is dropped);
 *  - the same holds with the truncated-line flag;
 *  - with FUZZ_THEN defined (a second parser's name), every input also goes
 *    through a context with `then: {parser: FUZZ_THEN}`; its events may
 *    instead carry ["sluice_<FUZZ_THEN>_parse_failure"] (the message is
 *    then the inner text, not the line).
 * Adding a parser: a three-line fuzz_parse_<name>.c, a line in meson.build,
 * seeds in corpus-parse_<name>/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "sl_buf.h"

static struct sl_parse_ctx *fz_ctx, *fz_then_ctx;
static char fz_tag[64], fz_then_tag[64];

static void
fz_die(const char *what, const char *ev)
{
  fprintf(stderr, "fuzz_parse_%s: %s\nevent: %s\n", FUZZ_PARSER, what,
          ev ? ev : "-");
  abort();
}

static void
fz_setup(void)
{
  static const struct sl_agent_info info = { "h", "a", NULL, "1" };
  char err[256];
  json_t *in = json_pack("{s:s,s:s,s:{s:s}}", "parser", FUZZ_PARSER,
                         "timezone", "UTC", "fields", "env", "fuzz");

  if (in == NULL || sl_parse_ctx_new(in, &info, &fz_ctx, err, sizeof(err)))
    fz_die("context", err);
  json_decref(in);
  snprintf(fz_tag, sizeof(fz_tag), "sluice_%s_parse_failure", FUZZ_PARSER);
#ifdef FUZZ_THEN
  in = json_pack("{s:s,s:s,s:{s:s}}", "parser", FUZZ_PARSER, "timezone",
                 "UTC", "then", "parser", FUZZ_THEN);
  if (in == NULL ||
      sl_parse_ctx_new(in, &info, &fz_then_ctx, err, sizeof(err)))
    fz_die("then context", err);
  json_decref(in);
  snprintf(fz_then_tag, sizeof(fz_then_tag), "sluice_%s_parse_failure",
           FUZZ_THEN);
#endif
}

static void
fz_check(const struct sl_buf *b, size_t linelen)
{
  json_error_t je;
  json_t *ev, *tags, *msg;
  const char *t;

  if (memchr(b->p, '\n', b->len))
    fz_die("raw newline in event", b->p);
  ev = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    fz_die(je.text, b->p);
  if (!json_is_object(ev) ||
      !json_is_string(json_object_get(ev, "@timestamp")))
    fz_die("no @timestamp", b->p);
  if (!json_is_string(json_object_get(json_object_get(ev, "event"), "id")))
    fz_die("no event.id", b->p);
  tags = json_object_get(ev, "tags");
  if (tags) {
    t = json_string_value(json_array_get(tags, 0));
    if (json_array_size(tags) == 1 && t && fz_then_tag[0] &&
        strcmp(t, fz_then_tag) == 0) {
      json_decref(ev);
      return;
    }
    if (json_array_size(tags) != 1 || t == NULL || strcmp(t, fz_tag) != 0)
      fz_die("unexpected tags", b->p);
    if (!json_is_string(json_object_get(json_object_get(ev, "error"),
                                        "message")))
      fz_die("parse failure without error.message", b->p);
    msg = json_object_get(ev, "message");
    /* The raw line, UTF-8-repaired: at least as long unless it had NULs
     * or invalid bytes (each becomes 3 bytes, never fewer). */
    if (!json_is_string(msg) || json_string_length(msg) < linelen)
      fz_die("parse failure lost the line", b->p);
  }
  json_decref(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sl_src src = { "/f.log", 1, 2, 3 };
  struct sl_buf b;
  unsigned flags;

  if (fz_ctx == NULL)
    fz_setup();
  sl_buf_init(&b, 0);
  for (flags = 0; flags <= SL_LINE_TRUNCATED; flags += SL_LINE_TRUNCATED) {
    sl_buf_reset(&b);
    if (sl_parse_event(fz_ctx, &src, (const char *)data, size, 7, flags, 0,
                       &b) != 0)
      fz_die("sl_parse_event failed", NULL);
    fz_check(&b, size);
    if (fz_then_ctx == NULL)
      continue;
    sl_buf_reset(&b);
    if (sl_parse_event(fz_then_ctx, &src, (const char *)data, size, 7, flags,
                       0, &b) != 0)
      fz_die("sl_parse_event (then) failed", NULL);
    fz_check(&b, size);
  }
  sl_buf_free(&b);
  return 0;
}
