/* sl_probe.h - the step-by-step report of `test output` (both binaries),
 * in the shape `filebeat test output` prints: one line a step, indented
 * by depth, ending in "... OK", "... ERROR reason" or "... WARN reason".
 * Writes to stdout and flushes each line, so a step that hangs shows
 * which one it is. Owned by the caller; no state beyond the struct.
 */
#ifndef SL_PROBE_H
#define SL_PROBE_H

#include <stdint.h>

struct sl_probe {
  int failed;                /* set by sl_probe_fail: exit 1 */
  uint64_t step_ms;          /* deadline of one connect/handshake step */
};

void sl_probe_line(int depth, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
void sl_probe_ok(int depth, const char *what);
void sl_probe_fail(struct sl_probe *p, int depth, const char *what,
                   const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

#endif
