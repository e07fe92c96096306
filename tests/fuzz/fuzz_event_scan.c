/* fuzz_event_scan.c - libFuzzer target for the collector's DOM-free event
 * scanner (collector/event_scan.c), which reads network input.
 *
 * Checked for every input: the scanner never reads outside the input
 * (ASan), and it accepts only text jansson accepts as one JSON object
 * (event_scan.h's contract: a refusal costs speed, an acceptance must be
 * right); every span it returns lies inside the input; `close` is the
 * offset of a '}'.
 *
 * Seeds: tests/fuzz/corpus-event_scan/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_scan.h"

static void
in_bounds(const struct sl_span *sp, const char *p, size_t n)
{
  if (sp->p != NULL &&
      (sp->p < p || sp->p > p + n || sp->len > (size_t)(p + n - sp->p)))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sl_event_fields f;
  const char *p = (const char *)data;
  json_error_t e;
  json_t *o;

  if (sl_event_scan(p, size, &f) != 0)
    return 0;
  in_bounds(&f.id, p, size);
  in_bounds(&f.timestamp, p, size);
  in_bounds(&f.ev_dataset, p, size);
  in_bounds(&f.ds_dataset, p, size);
  in_bounds(&f.ds_namespace, p, size);
  if (f.close >= size || p[f.close] != '}')
    abort();
  /* Flags 0, as the unit test's reference: duplicates of keys the scanner
   * does not route on are passed through (ES judges them). */
  o = json_loadb(p, size, 0, &e);
  if (o == NULL) {
    /* jansson's numeric range errors are not JSON errors */
    if (strstr(e.text, "too big") || strstr(e.text, "overflow"))
      return 0;
    fprintf(stderr, "scanner accepted what jansson refuses: %s\n", e.text);
    abort();
  }
  if (!json_is_object(o))
    abort();
  json_decref(o);
  return 0;
}
