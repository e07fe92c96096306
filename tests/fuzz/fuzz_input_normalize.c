/* fuzz_input_normalize.c - libFuzzer target for the collector's intake
 * normaliser (sl_input_event_normalize_lim, collector/input.c): every
 * received event, valid or not, must become exactly one line of JSON
 * that loads as an object with an event.id and an @timestamp, and the
 * per-event limits (small here, so they are hit) must never fail it.
 *
 * Seeds: tests/fuzz/corpus-input_normalize/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "input.h"
#include "sl_buf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sl_input_limits lim;
  struct sl_buf b;
  json_error_t e;
  json_t *o, *ev;
  int rc;

  sl_input_limits_default(&lim);
  /* The first byte picks tight limits half the time. */
  if (size > 0 && (data[0] & 1)) {
    lim.max_fields = 1 + data[0] % 16;
    lim.max_depth = 1 + (data[0] >> 4);
    lim.ts_past_ms = 1000;
  }
  sl_buf_init(&b, 0);
  rc = sl_input_event_normalize_lim((const char *)data, size, &lim, &b);
  if (rc != 0)
    abort();
  if (b.len == 0 || b.p[b.len - 1] != '\n' ||
      memchr(b.p, '\n', b.len - 1) != NULL) {
    fprintf(stderr, "not one line\n");
    abort();
  }
  o = json_loadb(b.p, b.len - 1, 0, &e);
  if (o == NULL) {
    if (strstr(e.text, "too big") || strstr(e.text, "overflow"))
      goto out;
    fprintf(stderr, "output does not load: %s\n%.*s\n", e.text,
            (int)b.len, b.p);
    abort();
  }
  ev = json_object_get(o, "event");
  if (!json_is_object(o) || json_object_get(o, "@timestamp") == NULL ||
      (json_object_get(ev, "id") == NULL &&
       json_object_get(o, "event.id") == NULL)) {
    fprintf(stderr, "no @timestamp or event.id:\n%.*s\n", (int)b.len, b.p);
    abort();
  }
  json_decref(o);
out:
  sl_buf_free(&b);
  return 0;
}
