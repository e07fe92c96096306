/* fuzz_timestamp.c - timestamp.c's built-in formats and layouts. The
 * input is "<layout>\n<text>" (no newline: the text alone through the
 * built-in formats). Checked: no crash or sanitizer report; a parse that
 * succeeds formats to the fixed RFC 3339 width. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_time.h"
#include "timestamp.h"

static struct sl_tz *zones[3];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const char *const names[3] = {
    "UTC", "Europe/Berlin", "America/New_York",
  };
  const char *s = (const char *)data, *nl;
  char layout[256], out[64];
  int64_t ns;
  unsigned prec;
  size_t i;
  int rc;

  for (i = 0; i < 3; i++)
    if (zones[i] == NULL && sl_tz_load(names[i], &zones[i], NULL, 0) != 0)
      abort();
  i = size ? data[0] % 3 : 0;
  nl = memchr(s, '\n', size);
  if (nl && (size_t)(nl - s) < sizeof(layout)) {
    memcpy(layout, s, (size_t)(nl - s));
    layout[nl - s] = '\0';
    rc = sl_ts_parse_layout(layout, nl + 1, size - (size_t)(nl - s) - 1,
                            zones[i], 1700000000LL * 1000000000LL, &ns,
                            &prec);
  } else {
    rc = sl_ts_parse_auto(s, size, zones[i], 1700000000LL * 1000000000LL,
                          &ns, &prec);
  }
  if (rc == 0) {
    if (prec == SL_TS_US ? sl_ts_format_us(ns, out) != SL_TS_US_LEN
        : sl_time_format_ms(ns, out) != SL_TIME_RFC3339_MS_LEN)
      abort();
  }
  return 0;
}
