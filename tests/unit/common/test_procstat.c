#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sl_err.h"
#include "sl_procstat.h"
#include "sl_test.h"

/* A stat line whose command holds ") (" and spaces: fields are counted
 * from the last ')'. utime 250 + stime 50 ticks, starttime 1000 ticks,
 * vsize 123456789, rss 300 pages. */
static const char stat_line[] =
  "4242 (we ird) (x) R 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 "
  "20 0 3 0 1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 "
  "0 0 17 1 0 0 0 0 0\n";

static void
test_parse(void **state)
{
  struct sl_procstat ps;

  (void)state;
  memset(&ps, 0, sizeof(ps));
  assert_int_equal(sl_procstat_parse(stat_line, sizeof(stat_line) - 1, 100,
                                     4096, 1700000000, &ps), SL_OK);
  assert_true(ps.cpu_seconds == 3.0);
  assert_true(ps.start_time == 1700000010.0);
  assert_true(ps.vm_bytes == 123456789);
  assert_true(ps.rss_bytes == 300 * 4096);
}

static void
test_parse_bad(void **state)
{
  static const char cut[] = "1 (sh) S 1 1 1 0 -1 0 0 0 0 0 5";
  struct sl_procstat ps;

  (void)state;
  assert_int_equal(sl_procstat_parse("", 0, 100, 4096, 0, &ps), SL_EINVAL);
  assert_int_equal(sl_procstat_parse("no paren", 8, 100, 4096, 0, &ps),
                   SL_EINVAL);
  assert_int_equal(sl_procstat_parse(cut, sizeof(cut) - 1, 100, 4096, 0,
                                     &ps), SL_EINVAL);
  /* Only len bytes count, not the NUL-terminated rest. */
  assert_int_equal(sl_procstat_parse(stat_line, 60, 100, 4096, 0, &ps),
                   SL_EINVAL);
  assert_int_equal(sl_procstat_parse(stat_line, sizeof(stat_line) - 1, 0,
                                     4096, 0, &ps), SL_EINVAL);
}

/* The live numbers of this test process are plausible, and open_fds
 * follows a descriptor opened and closed. */
static void
test_read_self(void **state)
{
  struct sl_procstat a, b;
  struct rlimit rl;
  int fd;

  (void)state;
  assert_int_equal(sl_procstat_read(&a), SL_OK);
  assert_true(a.rss_bytes > 0);
  assert_true(a.vm_bytes >= a.rss_bytes);
  assert_true(a.cpu_seconds >= 0);
  assert_true(a.start_time > (double)time(NULL) - 3600);
  assert_true(a.start_time <= (double)time(NULL) + 1);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur != RLIM_INFINITY)
    assert_true(a.max_fds == rl.rlim_cur);
  assert_true(a.open_fds >= 3);
  fd = open("/dev/null", O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(sl_procstat_read(&b), SL_OK);
  assert_true(b.open_fds == a.open_fds + 1);
  close(fd);
  assert_int_equal(sl_procstat_read(&b), SL_OK);
  assert_true(b.open_fds == a.open_fds);
}

static void
test_metrics(void **state)
{
  static const char *const want[] = {
    "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
    "# TYPE process_resident_memory_bytes gauge\n"
    "process_resident_memory_bytes ",
    "# TYPE process_virtual_memory_bytes gauge\n",
    "# TYPE process_open_fds gauge\nprocess_open_fds ",
    "# TYPE process_max_fds gauge\nprocess_max_fds ",
    "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
  };
  struct sl_buf b;
  size_t i;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_procstat_metrics(&b), SL_OK);
  for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    assert_non_null(strstr(b.p, want[i]));
  sl_buf_free(&b);
}

SL_TEST_MAIN(NULL, NULL,
             cmocka_unit_test(test_parse),
             cmocka_unit_test(test_parse_bad),
             cmocka_unit_test(test_read_self),
             cmocka_unit_test(test_metrics))
