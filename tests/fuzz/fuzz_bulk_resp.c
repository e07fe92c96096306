/* fuzz_bulk_resp.c - libFuzzer target for the Elasticsearch _bulk response
 * parser (collector/bulk.c sl_bulk_resp_parse): the body comes from the
 * network. The first byte is the number of items the request had; on
 * success there must be exactly that many results, each with a status.
 *
 * Seeds: tests/fuzz/corpus-bulk_resp/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdlib.h>

#include "bulk.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sl_bulk_resp r;
  size_t nitems;

  if (size < 1)
    return 0;
  nitems = data[0] % 16;
  if (sl_bulk_resp_parse((const char *)data + 1, size - 1, nitems, &r) != 0)
    return 0;
  if (r.n != nitems || (nitems && r.items == NULL))
    abort();
  sl_bulk_resp_free(&r);
  return 0;
}
