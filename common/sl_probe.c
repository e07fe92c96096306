#include "sl_probe.h"

#include <stdarg.h>
#include <stdio.h>

void
sl_probe_line(int depth, const char *fmt, ...)
{
  va_list ap;

  printf("%*s", depth * 2, "");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

void
sl_probe_ok(int depth, const char *what)
{
  sl_probe_line(depth, "%s... OK", what);
}

void
sl_probe_fail(struct sl_probe *p, int depth, const char *what,
              const char *fmt, ...)
{
  char why[600];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  sl_probe_line(depth, "%s... ERROR %s", what, why);
  p->failed = 1;
}
