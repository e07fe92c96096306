/* sl_test.h - small helpers shared by the cmocka unit tests.
 *
 * Include after <cmocka.h> (the helpers assert with cmocka). Everything is
 * static inline: each test is one translation unit and uses a few of them.
 *
 *   sl_test_tmpdir(buf, len, tag)   mkdtemp "/tmp/sl-<tag>-XXXXXX" into buf
 *   sl_test_rm_rf(path)             remove a tree (symlinks not followed)
 *   sl_test_run_until(loop, cond, arg, ms)
 *                                   run a uv loop until cond(arg) holds
 *   SL_TEST_MAIN(setup, teardown, cmocka_unit_test(t1), ...)
 *                                   main(): the listed tests as one group
 *
 * Waits poll a condition with a deadline, never a bare sleep.
 */
#ifndef SL_TEST_H
#define SL_TEST_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <uv.h>

/* A fresh directory "/tmp/sl-<tag>-XXXXXX" written to buf; fails the test
 * when it cannot be made. Returns buf. */
static inline char *
sl_test_tmpdir(char *buf, size_t len, const char *tag)
{
  int n = snprintf(buf, len, "/tmp/sl-%s-XXXXXX", tag);

  assert_true(n > 0 && (size_t)n < len);
  assert_non_null(mkdtemp(buf));
  return buf;
}

static inline int
sl_test__rm_cb(const char *p, const struct stat *sb, int type,
               struct FTW *f)
{
  (void)sb;
  (void)type;
  (void)f;
  return remove(p);
}

/* rm -rf without a shell: depth first, symlinks removed, not followed.
 * A missing path is fine. */
static inline void
sl_test_rm_rf(const char *path)
{
  (void)nftw(path, sl_test__rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

typedef int (*sl_test_cond)(void *arg);

static inline void
sl_test__tick(uv_timer_t *t)
{
  (void)t;
}

/* Run `loop` one iteration at a time until cond(arg) is true or `ms`
 * milliseconds pass; 1 when the condition holds. A private 5 ms timer
 * makes each UV_RUN_ONCE return even when nothing else is due; it is
 * closed before returning, so the loop keeps only its own handles. */
static inline int
sl_test_run_until(uv_loop_t *loop, sl_test_cond cond, void *arg,
                  uint64_t ms)
{
  uint64_t deadline = uv_hrtime() / 1000000 + ms;
  uv_timer_t tick;
  int ok;

  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, sl_test__tick, 5, 5);
  while (!(ok = cond(arg)) && uv_hrtime() / 1000000 < deadline)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

/* The test file's main(): run the listed tests (cmocka_unit_test(...)
 * entries) as one group with the given group setup/teardown (or NULL). */
#define SL_TEST_MAIN(setup, teardown, ...)                            \
  int                                                                 \
  main(void)                                                          \
  {                                                                   \
    const struct CMUnitTest tests[] = { __VA_ARGS__ };                \
                                                                      \
    return cmocka_run_group_tests(tests, setup, teardown);            \
  }

#endif
