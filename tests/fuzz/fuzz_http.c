/* fuzz_http.c - libFuzzer target for the HTTP responder's request parsing
 * (common/sl_http.c): finding the end of the head and parsing the request
 * line. The path must be NUL-terminated inside its buffer, come from the
 * request line and start with '/'; the head end must be inside the input
 * and end with a blank line.
 *
 * Seeds: tests/fuzz/corpus-http/ (scripts/fuzz-smoke).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data;
  char path[64];
  size_t end;
  int head_only, st;

  end = sl_http_head_end(p, size);
  if (end > size || (end && p[end - 1] != '\n'))
    abort();
  /* The responder parses only complete heads; the parser must also cope
   * with any bytes (the head is whatever came before the blank line). */
  st = sl_http_parse_request(p, end ? end : size, path, sizeof(path),
                             &head_only);
  if (st == 0) {
    if (path[0] != '/' || memchr(path, '\0', sizeof(path)) == NULL ||
        strchr(path, '?') != NULL)
      abort();
  } else if (st != 400 && st != 404 && st != 405) {
    abort();
  }
  return 0;
}
