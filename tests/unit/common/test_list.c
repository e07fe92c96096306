#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sl_list.h"

struct node {
  int v;
  struct sl_list link;
};

static void
test_fifo_and_remove(void **state)
{
  struct sl_list h, *it, *tmp;
  struct node n[4];
  int i, seen = 0;

  (void)state;
  sl_list_init(&h);
  assert_true(sl_list_empty(&h));
  assert_null(sl_list_first(&h));
  for (i = 0; i < 4; i++) {
    n[i].v = i;
    sl_list_insert_tail(&h, &n[i].link);
  }
  sl_list_remove(&n[1].link);
  sl_list_remove(&n[1].link); /* second remove is harmless */
  sl_list_insert_head(&h, &n[1].link);
  /* order now 1, 0, 2, 3 */
  sl_list_foreach(it, tmp, &h) {
    struct node *e = sl_container_of(it, struct node, link);
    static const int want[] = {1, 0, 2, 3};
    assert_int_equal(e->v, want[seen]);
    seen++;
    if (e->v == 2)
      sl_list_remove(it); /* removal during iteration */
  }
  assert_int_equal(seen, 4);
  assert_ptr_equal(sl_list_last(&h), &n[3].link);
  assert_ptr_equal(sl_list_pop(&h), &n[1].link);
  assert_ptr_equal(sl_list_pop(&h), &n[0].link);
  assert_ptr_equal(sl_list_pop(&h), &n[3].link);
  assert_null(sl_list_pop(&h));
  assert_true(sl_list_empty(&h));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fifo_and_remove),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
