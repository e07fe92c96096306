/* sl_metrics.h - Prometheus text exposition helpers and a latency histogram.
 *
 * Counters are plain uint64_t fields owned by each module and updated with
 * __atomic builtins where several threads touch them; these helpers only
 * render. Format: https://prometheus.io/docs/instrumenting/exposition_formats/
 */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stdint.h>

#include "sl_buf.h"

#define SL_HIST_BUCKETS 12
struct sl_hist {
  uint64_t counts[SL_HIST_BUCKETS + 1]; /* last is +Inf */
  uint64_t count;
  double sum;                           /* seconds */
};
/* Bucket bounds in seconds: 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 */
void sl_hist_observe(struct sl_hist *h, double seconds);

/* "# HELP name help\n# TYPE name counter\nname{labels} value\n".
 * labels may be NULL or like `status="201"`. HELP/TYPE printed only when
 * help != NULL (so several labelled samples share one header). */
int sl_prom_counter(struct sl_buf *b, const char *name, const char *help,
                    const char *labels, uint64_t v) SL_WUR;
int sl_prom_gauge(struct sl_buf *b, const char *name, const char *help,
                  const char *labels, double v) SL_WUR;
/* A counter whose value has a fraction (process_cpu_seconds_total). */
int sl_prom_counter_f(struct sl_buf *b, const char *name, const char *help,
                      const char *labels, double v) SL_WUR;
/* `name{version="...",<lib>="<version>",...} 1`: the build of the running
 * binary (Prometheus' *_build_info idiom). Labels: version (the project's,
 * from meson), libuv, jansson, zlib, openssl ("none" when built without
 * TLS), then extra[0]=extra[1], extra[2]=extra[3]... up to a NULL name
 * (extra may be NULL). Values are escaped. */
int sl_prom_build_info(struct sl_buf *b, const char *name, const char *help,
                       const char *const *extra) SL_WUR;
int sl_prom_hist(struct sl_buf *b, const char *name, const char *help,
                 const struct sl_hist *h) SL_WUR;

#endif
