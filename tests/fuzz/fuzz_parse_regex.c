/* fuzz_parse_regex.c - the regex parser on arbitrary lines, with a
 * log4j-style pattern using every group kind (paths, types, timestamp,
 * level, correlation keys) and a correlation rule. Checked: the event
 * loads as the collector reads it (no duplicate keys), has @timestamp and
 * event.id and no raw newline; a failure keeps the line in `message`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parse.h"
#include "sl_buf.h"

static struct sl_parse_ctx *ctx;

static void
die(const char *what, const char *ev)
{
  fprintf(stderr, "fuzz_parse_regex: %s\nevent: %s\n", what, ev ? ev : "-");
  abort();
}

static void
setup(void)
{
  static const struct sl_agent_info info = { "h", "a", NULL, "1" };
  char err[256];
  json_t *in = json_loads(
    "{\"parser\":\"regex\",\"timezone\":\"Europe/Berlin\","
    "\"timestamp\":{\"layouts\":[\"%d.%m.%Y %T\"]},"
    "\"correlation\":[{\"pattern\":\"\\\\[(?<id>req-[0-9a-f-]{36})\","
    "\"field\":\"http.request.id\"},{\"pattern\":\"t=(?<id>\\\\w+)\","
    "\"field\":\"trace.id\"}],"
    "\"regex\":{\"pattern\":\"^(?<ts>[^|]*)\\\\|(?<lvl>[^|]*)\\\\|"
    "(?<pid>[^|]*)\\\\|(?<dur>[^|]*)\\\\|(?<ok>[^|]*)\\\\|(?<trace_id>[^|]*)"
    "\\\\|(?<b3>[^|]*)\\\\|(?<other>[^|]*)(?:\\\\|(?<msg>.*))?$\","
    "\"fields\":{\"ts\":\"@timestamp\",\"lvl\":\"log.level\",\"pid\":"
    "\"process.pid\",\"dur\":\"event.duration\",\"msg\":\"message\"},"
    "\"types\":{\"pid\":\"long\",\"dur\":\"double\",\"ok\":\"boolean\"}}}",
    0, NULL);

  if (in == NULL || sl_parse_ctx_new(in, &info, &ctx, err, sizeof(err)))
    die("context", err);
  json_decref(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const struct sl_src src = { "/f.log", 1, 2, 3 };
  struct sl_buf b;
  json_error_t je;
  json_t *ev;
  const char *t;

  if (ctx == NULL)
    setup();
  sl_buf_init(&b, 0);
  if (sl_parse_event(ctx, &src, (const char *)data, size, 0, 0,
                     1700000000LL * 1000000000LL, &b) != 0)
    die("sl_parse_event failed", NULL);
  if (memchr(b.p, '\n', b.len))
    die("raw newline", b.p);
  ev = json_loadb(b.p, b.len, JSON_REJECT_DUPLICATES, &je);
  if (ev == NULL)
    die(je.text, b.p);
  if (!json_is_string(json_object_get(ev, "@timestamp")) ||
      !json_is_string(json_object_get(json_object_get(ev, "event"), "id")))
    die("no @timestamp or event.id", b.p);
  t = json_string_value(json_array_get(json_object_get(ev, "tags"), 0));
  if (t && strcmp(t, "sluice_regex_parse_failure") == 0 &&
      !json_is_string(json_object_get(ev, "message")))
    die("failure without the line", b.p);
  json_decref(ev);
  sl_buf_free(&b);
  return 0;
}
