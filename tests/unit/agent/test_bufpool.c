/* test_bufpool.c - the batch/read buffer free list: reuse, bounds (count
 * and bytes), fit policy, lifetime after close, threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bufpool.h"
#include "sl_err.h"

/* A buffer that comes back is handed out again: same memory, len 0. */
static void
test_reuse(void **state)
{
  struct sl_bufpool *bp;
  struct sl_bufpool_stats st;
  struct sl_buf b;
  char *first;

  assert_int_equal(sl_bufpool_new(1 << 20, 4, &bp), 0);
  assert_int_equal(sl_bufpool_get(bp, 1000, 0, &b), 0);
  assert_non_null(b.p);
  assert_true(b.cap >= 1001);
  assert_int_equal(b.len, 0);
  assert_int_equal(sl_buf_append(&b, "abc", 3), 0);
  first = b.p;
  sl_bufpool_put(bp, &b);
  assert_null(b.p);
  assert_int_equal(sl_bufpool_get(bp, 500, 1 << 20, &b), 0);
  assert_ptr_equal(b.p, first);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.p[0], '\0');
  assert_int_equal(b.max, 1 << 20);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.lent, 1);
  assert_int_equal(st.idle, 0);
  sl_bufpool_put(bp, &b);
  sl_bufpool_close(bp);
}

/* The free list never holds more than max_idle buffers. */
static void
test_bounded_count(void **state)
{
  struct sl_bufpool *bp;
  struct sl_bufpool_stats st;
  struct sl_buf b[10];
  int i;

  assert_int_equal(sl_bufpool_new(1 << 30, 3, &bp), 0);
  for (i = 0; i < 10; i++)
    assert_int_equal(sl_bufpool_get(bp, 4096, 0, &b[i]), 0);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.lent, 10);
  for (i = 0; i < 10; i++)
    sl_bufpool_put(bp, &b[i]);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.idle, 3);
  assert_int_equal(st.dropped, 7);
  assert_int_equal(st.lent, 0);
  assert_true(st.idle_bytes >= 3 * 4097);
  sl_bufpool_close(bp);
}

/* ... nor more than max_idle_bytes of capacity, whatever the count. */
static void
test_bounded_bytes(void **state)
{
  struct sl_bufpool *bp;
  struct sl_bufpool_stats st;
  struct sl_buf b[8];
  size_t cap, bound;
  int i;

  /* The capacity a 9000-byte request gets (with head room). */
  assert_int_equal(sl_bufpool_get(NULL, 9000, 0, &b[0]), 0);
  cap = b[0].cap;
  sl_bufpool_put(NULL, &b[0]);
  bound = 3 * cap + cap / 2;
  assert_int_equal(sl_bufpool_new(bound, 64, &bp), 0);
  for (i = 0; i < 8; i++)
    assert_int_equal(sl_bufpool_get(bp, 9000, 0, &b[i]), 0);
  for (i = 0; i < 8; i++)
    sl_bufpool_put(bp, &b[i]);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.idle, 3);
  assert_true(st.idle_bytes <= bound);
  assert_int_equal(st.dropped, 5);
  /* A buffer bigger than the whole bound is never kept. */
  assert_int_equal(sl_bufpool_get(bp, bound, 0, &b[0]), 0);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.idle, 2);  /* the biggest idle one was grown */
  sl_bufpool_put(bp, &b[0]);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.idle, 2);
  assert_true(st.idle_bytes <= bound);
  sl_bufpool_close(bp);
}

/* Smallest fit: a small request does not take the big buffer. Without a
 * fit an idle buffer is grown instead of allocating another one. */
static void
test_fit_and_grow(void **state)
{
  struct sl_bufpool *bp;
  struct sl_bufpool_stats st;
  struct sl_buf small, big, b;
  char *bigp;

  assert_int_equal(sl_bufpool_new(1 << 24, 8, &bp), 0);
  assert_int_equal(sl_bufpool_get(bp, 100, 0, &small), 0);
  assert_int_equal(sl_bufpool_get(bp, 100000, 0, &big), 0);
  bigp = big.p;
  sl_bufpool_put(bp, &big);
  sl_bufpool_put(bp, &small);
  assert_int_equal(sl_bufpool_get(bp, 200, 0, &b), 0);
  assert_ptr_not_equal(b.p, bigp);
  assert_true(b.cap >= 201 && b.cap < 100000);
  sl_bufpool_put(bp, &b);
  assert_int_equal(sl_bufpool_get(bp, 50000, 0, &b), 0);
  assert_ptr_equal(b.p, bigp);
  sl_bufpool_put(bp, &b);
  assert_int_equal(sl_bufpool_get(bp, 300000, 0, &b), 0);
  assert_true(b.cap >= 300001);
  memset(b.p, 'x', 300000);  /* really that big (ASan) */
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.idle, 1);  /* grown, not a third buffer */
  sl_bufpool_put(bp, &b);
  sl_bufpool_close(bp);
}

/* sl_buf's max is kept: a lent buffer never has cap > max + 1 (writers
 * that fill the capacity directly rely on it), even when a bigger idle
 * buffer waits. */
static void
test_respects_max(void **state)
{
  struct sl_bufpool *bp;
  struct sl_buf big, b;

  assert_int_equal(sl_bufpool_new(1 << 24, 8, &bp), 0);
  assert_int_equal(sl_bufpool_get(bp, 100000, 0, &big), 0);
  sl_bufpool_put(bp, &big);
  assert_int_equal(sl_bufpool_get(bp, 1000, 5000, &b), 0);
  assert_true(b.cap >= 1001 && b.cap <= 5001);
  assert_int_equal(b.max, 5000);
  assert_int_equal(sl_buf_append(&b, "x", 1), 0);
  sl_bufpool_put(bp, &b);
  /* Head room stops at the cap too. */
  assert_int_equal(sl_bufpool_get(NULL, 4990, 5000, &b), 0);
  assert_int_equal(b.cap, 5001);
  sl_bufpool_put(NULL, &b);
  sl_bufpool_close(bp);
}

/* Buffers may outlive the owner: the pool goes away with the last one
 * (ASan/valgrind see a leak or a use after free otherwise). */
static void
test_close_with_lent(void **state)
{
  struct sl_bufpool *bp;
  struct sl_buf a, b;

  assert_int_equal(sl_bufpool_new(1 << 20, 4, &bp), 0);
  assert_int_equal(sl_bufpool_get(bp, 10, 0, &a), 0);
  assert_int_equal(sl_bufpool_get(bp, 10, 0, &b), 0);
  sl_bufpool_put(bp, &a);
  sl_bufpool_close(bp);
  assert_int_equal(sl_buf_append(&b, "late", 4), 0);
  sl_bufpool_put_mem(bp, b.p, b.cap);
}

/* A NULL pool is plain malloc/free. */
static void
test_null_pool(void **state)
{
  struct sl_buf b;

  assert_int_equal(sl_bufpool_get(NULL, 10, 0, &b), 0);
  assert_non_null(b.p);
  assert_int_equal(sl_buf_append(&b, "0123456789abcdef", 16), 0);
  sl_bufpool_put(NULL, &b);
  assert_null(b.p);
  sl_bufpool_put_mem(NULL, NULL, 0);
  sl_bufpool_close(NULL);
}

static void
test_bad_args(void **state)
{
  struct sl_bufpool *bp = NULL;

  assert_int_equal(sl_bufpool_new(100, 0, &bp), SL_EINVAL);
  assert_int_equal(sl_bufpool_new(100, 257, &bp), SL_EINVAL);
  assert_null(bp);
}

/* Gets on some threads, puts on others (the worker/loop split). */
struct ping {
  struct sl_bufpool *bp;
  int rounds;
};

static void *
hammer(void *arg)
{
  struct ping *p = arg;
  struct sl_buf b[4];
  int i, k;

  for (i = 0; i < p->rounds; i++) {
    for (k = 0; k < 4; k++) {
      if (sl_bufpool_get(p->bp, (size_t)(1000 + 500 * k), 0, &b[k]))
        return (void *)1;
      memset(b[k].p, k, 1000);
    }
    for (k = 3; k >= 0; k--)
      sl_bufpool_put(p->bp, &b[k]);
  }
  return NULL;
}

static void
test_threads(void **state)
{
  struct ping p;
  struct sl_bufpool_stats st;
  pthread_t t[4];
  void *rv;
  int i;

  assert_int_equal(sl_bufpool_new(1 << 20, 8, &p.bp), 0);
  p.rounds = 2000;
  for (i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer, &p), 0);
  for (i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], &rv), 0);
    assert_null(rv);
  }
  sl_bufpool_stats(p.bp, &st);
  assert_int_equal(st.lent, 0);
  assert_true(st.idle <= 8);
  assert_true(st.hits > st.misses);
  sl_bufpool_close(p.bp);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_reuse),
    cmocka_unit_test(test_bounded_count),
    cmocka_unit_test(test_bounded_bytes),
    cmocka_unit_test(test_fit_and_grow),
    cmocka_unit_test(test_respects_max),
    cmocka_unit_test(test_close_with_lent),
    cmocka_unit_test(test_null_pool),
    cmocka_unit_test(test_bad_args),
    cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
