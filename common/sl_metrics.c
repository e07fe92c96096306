#include "sl_metrics.h"
#include "sl_config.h"
#include "sl_err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <zlib.h>
#ifdef HAVE_OPENSSL
#include <openssl/crypto.h>
#endif

static const double hist_bounds[SL_HIST_BUCKETS] = {
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
static const char *const hist_le[SL_HIST_BUCKETS] = {
  "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
  "1", "2.5", "5",
};

/* Safe to call from several threads at once: every field is updated with
 * atomics (the sum through a compare-and-swap on its bits). A reader may
 * see count and sum from slightly different moments, which Prometheus
 * tolerates. counts[] holds per-bucket (not cumulative) numbers. */
void
sl_hist_observe(struct sl_hist *h, double seconds)
{
  uint64_t oldbits, newbits;
  double old, nw;
  size_t i;

  if (!(seconds >= 0))  /* negative or NaN: a clock step, count as 0 */
    seconds = 0;
  for (i = 0; i < SL_HIST_BUCKETS; i++)
    if (seconds <= hist_bounds[i])
      break;
  __atomic_fetch_add(&h->counts[i], 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
  oldbits = __atomic_load_n((uint64_t *)(void *)&h->sum, __ATOMIC_RELAXED);
  do {
    memcpy(&old, &oldbits, sizeof(old));
    nw = old + seconds;
    memcpy(&newbits, &nw, sizeof(newbits));
  } while (!__atomic_compare_exchange_n((uint64_t *)(void *)&h->sum,
                                        &oldbits, newbits, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/* HELP text escapes backslash and newline (exposition format spec). */
static int
put_help(struct sl_buf *b, const char *name, const char *help,
         const char *type)
{
  const char *p;
  int rc;

  rc = sl_buf_printf(b, "# HELP %s ", name);
  for (p = help; rc == 0 && *p; p++) {
    if (*p == '\\')
      rc = sl_buf_append(b, "\\\\", 2);
    else if (*p == '\n')
      rc = sl_buf_append(b, "\\n", 2);
    else
      rc = sl_buf_append_byte(b, *p);
  }
  if (rc == 0)
    rc = sl_buf_printf(b, "\n# TYPE %s %s\n", name, type);
  return rc;
}

static int
put_name(struct sl_buf *b, const char *name, const char *labels)
{
  if (labels && *labels)
    return sl_buf_printf(b, "%s{%s} ", name, labels);
  return sl_buf_printf(b, "%s ", name);
}

/* Shortest text that reads back as the same double; Prometheus spells the
 * special values NaN, +Inf and -Inf. */
static int
put_double(struct sl_buf *b, double v)
{
  char tmp[40];
  int prec;

  if (isnan(v))
    return sl_buf_append_str(b, "NaN");
  if (isinf(v))
    return sl_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
  for (prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  return sl_buf_append_str(b, tmp);
}

int
sl_prom_counter(struct sl_buf *b, const char *name, const char *help,
                const char *labels, uint64_t v)
{
  int rc = help ? put_help(b, name, help, "counter") : 0;

  if (rc == 0)
    rc = put_name(b, name, labels);
  if (rc == 0)
    rc = sl_buf_append_u64(b, v);
  if (rc == 0)
    rc = sl_buf_append_byte(b, '\n');
  return rc;
}

static int
put_double_sample(struct sl_buf *b, const char *name, const char *help,
                  const char *type, const char *labels, double v)
{
  int rc = help ? put_help(b, name, help, type) : 0;

  if (rc == 0)
    rc = put_name(b, name, labels);
  if (rc == 0)
    rc = put_double(b, v);
  if (rc == 0)
    rc = sl_buf_append_byte(b, '\n');
  return rc;
}

int
sl_prom_gauge(struct sl_buf *b, const char *name, const char *help,
              const char *labels, double v)
{
  return put_double_sample(b, name, help, "gauge", labels, v);
}

int
sl_prom_counter_f(struct sl_buf *b, const char *name, const char *help,
                  const char *labels, double v)
{
  return put_double_sample(b, name, help, "counter", labels, v);
}

/* `,name="value"` (no comma first), the value escaped as the exposition
 * format wants: backslash, double quote and newline. */
static int
put_label(struct sl_buf *b, const char *name, const char *value)
{
  const char *p;
  int rc;

  rc = sl_buf_printf(b, "%s%s=\"", b->len ? "," : "", name);
  for (p = value ? value : "none"; rc == 0 && *p; p++) {
    if (*p == '\\' || *p == '"')
      rc = sl_buf_printf(b, "\\%c", *p);
    else if (*p == '\n')
      rc = sl_buf_append(b, "\\n", 2);
    else
      rc = sl_buf_append_byte(b, *p);
  }
  if (rc == 0)
    rc = sl_buf_append_byte(b, '"');
  return rc;
}

int
sl_prom_build_info(struct sl_buf *b, const char *name, const char *help,
                   const char *const *extra)
{
  struct sl_buf lab;
  const char *ssl = NULL;
  int rc;

#if defined(HAVE_OPENSSL) && defined(OPENSSL_VERSION_STRING)
  ssl = OpenSSL_version(OPENSSL_VERSION_STRING);  /* "3.0.11" */
#elif defined(HAVE_OPENSSL)
  ssl = OpenSSL_version(OPENSSL_VERSION);  /* "OpenSSL 1.1.1w  11 Sep..." */
#endif
  sl_buf_init(&lab, 0);
  rc = put_label(&lab, "version", SL_VERSION);
  if (rc == 0)
    rc = put_label(&lab, "libuv", uv_version_string());
  if (rc == 0)
    rc = put_label(&lab, "jansson", jansson_version_str());
  if (rc == 0)
    rc = put_label(&lab, "zlib", zlibVersion());
  if (rc == 0)
    rc = put_label(&lab, "openssl", ssl);
  for (; rc == 0 && extra && extra[0]; extra += 2)
    rc = put_label(&lab, extra[0], extra[1]);
  if (rc == 0)
    rc = sl_prom_gauge(b, name, help, lab.p, 1);
  sl_buf_free(&lab);
  return rc;
}

int
sl_prom_hist(struct sl_buf *b, const char *name, const char *help,
             const struct sl_hist *h)
{
  uint64_t cum = 0, count;
  double sum;
  int rc = help ? put_help(b, name, help, "histogram") : 0;
  size_t i;

  for (i = 0; rc == 0 && i < SL_HIST_BUCKETS; i++) {
    cum += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
    rc = sl_buf_printf(b, "%s_bucket{le=\"%s\"} ", name, hist_le[i]);
    if (rc == 0)
      rc = sl_buf_append_u64(b, cum);
    if (rc == 0)
      rc = sl_buf_append_byte(b, '\n');
  }
  cum += __atomic_load_n(&h->counts[SL_HIST_BUCKETS], __ATOMIC_RELAXED);
  /* +Inf must equal _count; take the bucket sum so the page is coherent
   * even when an observation lands between the two loads. */
  count = cum;
  {
    uint64_t bits = __atomic_load_n((const uint64_t *)(const void *)&h->sum,
                                    __ATOMIC_RELAXED);
    memcpy(&sum, &bits, sizeof(sum));
  }
  if (rc == 0)
    rc = sl_buf_printf(b, "%s_bucket{le=\"+Inf\"} ", name);
  if (rc == 0)
    rc = sl_buf_append_u64(b, count);
  if (rc == 0)
    rc = sl_buf_printf(b, "\n%s_sum ", name);
  if (rc == 0)
    rc = put_double(b, sum);
  if (rc == 0)
    rc = sl_buf_printf(b, "\n%s_count ", name);
  if (rc == 0)
    rc = sl_buf_append_u64(b, count);
  if (rc == 0)
    rc = sl_buf_append_byte(b, '\n');
  return rc;
}
