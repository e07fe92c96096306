#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "sl_config.h"
#include "sl_metrics.h"
#include "sl_test.h"

static void
test_counter_gauge(void **state)
{
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_prom_counter(&b, "sl_events_total", "Events read.",
                                   NULL, 42), 0);
  assert_int_equal(sl_prom_counter(&b, "sl_es_items_total",
                                   "ES item outcomes\nby status \\ code",
                                   "status=\"201\"", 7), 0);
  /* Same family, no second header. */
  assert_int_equal(sl_prom_counter(&b, "sl_es_items_total", NULL,
                                   "status=\"409\"", UINT64_MAX), 0);
  assert_string_equal(b.p,
    "# HELP sl_events_total Events read.\n"
    "# TYPE sl_events_total counter\n"
    "sl_events_total 42\n"
    "# HELP sl_es_items_total ES item outcomes\\nby status \\\\ code\n"
    "# TYPE sl_es_items_total counter\n"
    "sl_es_items_total{status=\"201\"} 7\n"
    "sl_es_items_total{status=\"409\"} 18446744073709551615\n");
  sl_buf_reset(&b);
  assert_int_equal(sl_prom_gauge(&b, "sl_queue", "Depth.", NULL, 3), 0);
  assert_int_equal(sl_prom_gauge(&b, "sl_age", NULL, "a=\"b\"", 0.1), 0);
  assert_int_equal(sl_prom_gauge(&b, "sl_x", NULL, NULL, 1e300), 0);
  assert_int_equal(sl_prom_gauge(&b, "sl_x", NULL, NULL, NAN), 0);
  assert_int_equal(sl_prom_gauge(&b, "sl_x", NULL, NULL, -INFINITY), 0);
  assert_int_equal(sl_prom_gauge(&b, "sl_x", NULL, NULL, 1.0 / 3), 0);
  assert_string_equal(b.p,
    "# HELP sl_queue Depth.\n"
    "# TYPE sl_queue gauge\n"
    "sl_queue 3\n"
    "sl_age{a=\"b\"} 0.1\n"
    "sl_x 1e+300\n"
    "sl_x NaN\n"
    "sl_x -Inf\n"
    "sl_x 0.3333333333333333\n");
  sl_buf_free(&b);
}

static void
test_hist(void **state)
{
  struct sl_hist h;
  struct sl_buf b;

  (void)state;
  memset(&h, 0, sizeof(h));
  sl_hist_observe(&h, 0.0005);  /* <= 0.001 */
  sl_hist_observe(&h, 0.001);   /* boundary is inclusive (le) */
  sl_hist_observe(&h, 0.3);     /* <= 0.5 */
  sl_hist_observe(&h, 7);       /* +Inf */
  sl_hist_observe(&h, -1);      /* clock step: counted as 0 */
  assert_true(h.count == 5);
  sl_buf_init(&b, 0);
  assert_int_equal(sl_prom_hist(&b, "sl_out_latency_seconds",
                                "Output latency.", &h), 0);
  assert_string_equal(b.p,
    "# HELP sl_out_latency_seconds Output latency.\n"
    "# TYPE sl_out_latency_seconds histogram\n"
    "sl_out_latency_seconds_bucket{le=\"0.001\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.0025\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.005\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.01\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.025\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.05\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.1\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.25\"} 3\n"
    "sl_out_latency_seconds_bucket{le=\"0.5\"} 4\n"
    "sl_out_latency_seconds_bucket{le=\"1\"} 4\n"
    "sl_out_latency_seconds_bucket{le=\"2.5\"} 4\n"
    "sl_out_latency_seconds_bucket{le=\"5\"} 4\n"
    "sl_out_latency_seconds_bucket{le=\"+Inf\"} 5\n"
    "sl_out_latency_seconds_sum 7.3015\n"
    "sl_out_latency_seconds_count 5\n");
  sl_buf_free(&b);
}

static struct sl_hist shared;

static void *
observer(void *arg)
{
  int i;

  (void)arg;
  for (i = 0; i < 100000; i++)
    sl_hist_observe(&shared, 0.5);
  return NULL;
}

static void
test_hist_threads(void **state)
{
  pthread_t th[4];
  int i;

  (void)state;
  for (i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, observer, NULL);
  for (i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  /* No lost updates, sum included. */
  assert_true(shared.count == 400000);
  assert_true(shared.counts[8] == 400000);
  assert_true(shared.sum == 200000.0);
}

static void
test_cap(void **state)
{
  struct sl_buf b;
  struct sl_hist h;

  (void)state;
  memset(&h, 0, sizeof(h));
  sl_buf_init(&b, 64);
  assert_int_not_equal(sl_prom_hist(&b, "x", "help", &h), 0);
  sl_buf_free(&b);
}

static void
test_counter_f(void **state)
{
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_prom_counter_f(&b, "cpu_seconds_total", "CPU.", NULL,
                                     1.25), 0);
  assert_string_equal(b.p,
    "# HELP cpu_seconds_total CPU.\n"
    "# TYPE cpu_seconds_total counter\n"
    "cpu_seconds_total 1.25\n");
  sl_buf_free(&b);
}

/* Version labels of the linked libraries, the project version from meson,
 * extra labels escaped, a missing library spelled "none". */
static void
test_build_info(void **state)
{
  const char *extra[] = { "odd", "a\"b\\c\nd", "absent", NULL, NULL };
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_prom_build_info(&b, "x_build_info", "Build.", extra),
                   0);
  assert_non_null(strstr(b.p, "# TYPE x_build_info gauge\n"));
  assert_non_null(strstr(b.p, "x_build_info{version=\"" SL_VERSION "\","));
  assert_non_null(strstr(b.p, ",libuv=\"1."));
  assert_non_null(strstr(b.p, ",jansson=\"2."));
  assert_non_null(strstr(b.p, ",zlib=\"1."));
  assert_non_null(strstr(b.p, ",openssl=\""));
  assert_non_null(strstr(b.p,
                         ",odd=\"a\\\"b\\\\c\\nd\",absent=\"none\"} 1\n"));
  sl_buf_reset(&b);
  assert_int_equal(sl_prom_build_info(&b, "y_build_info", NULL, NULL), 0);
  assert_true(strncmp(b.p, "y_build_info{version=", 21) == 0);
  sl_buf_free(&b);
}

SL_TEST_MAIN(NULL, NULL,
             cmocka_unit_test(test_counter_f),
             cmocka_unit_test(test_build_info),
             cmocka_unit_test(test_counter_gauge),
             cmocka_unit_test(test_hist),
             cmocka_unit_test(test_hist_threads),
             cmocka_unit_test(test_cap))
