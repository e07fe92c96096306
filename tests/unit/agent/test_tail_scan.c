/* test_tail_scan.c - the parts of discovery that need no running tailer:
 * `**` expansion (agent/tail_scan.c) and the registry's clean hook that
 * clean_removed / clean_inactive use. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_test.h"
#include "tail_internal.h"

static void
expand(const char *pattern, struct tail_input *in)
{
  memset(in, 0, sizeof(*in));
  in->paths = calloc(2, sizeof(char *));
  assert_non_null(in->paths);
  in->paths[0] = strdup(pattern);
  in->npaths = 1;
  assert_int_equal(sl__tail_expand_globs(in), 0);
}

static void
drop(struct tail_input *in)
{
  size_t i;

  for (i = 0; i < in->nglobs; i++)
    free(in->globs[i]);
  free(in->globs);
  free(in->paths[0]);
  free(in->paths);
}

static void
test_globstar_middle(void **state)
{
  struct tail_input in;

  (void)state;
  expand("/var/log/**/*.log", &in);
  assert_int_equal(in.nglobs, SL_TAIL_GLOB_DEPTH + 1);
  assert_string_equal(in.globs[0], "/var/log/*.log");
  assert_string_equal(in.globs[1], "/var/log/*/*.log");
  assert_string_equal(in.globs[8], "/var/log/*/*/*/*/*/*/*/*/*.log");
  assert_null(in.globs[9]);
  drop(&in);
}

static void
test_globstar_end(void **state)
{
  struct tail_input in;

  (void)state;
  expand("/srv/**", &in);
  assert_int_equal(in.nglobs, SL_TAIL_GLOB_DEPTH);
  assert_string_equal(in.globs[0], "/srv/*");
  assert_string_equal(in.globs[1], "/srv/*/*");
  drop(&in);
  expand("**/x.log", &in);
  assert_string_equal(in.globs[0], "x.log");
  assert_string_equal(in.globs[1], "*/x.log");
  drop(&in);
}

static void
test_no_globstar(void **state)
{
  struct tail_input in;

  (void)state;
  /* `**` inside a name is no globstar: glob(3) reads it as `*`. */
  expand("/var/log/a**b/*.log", &in);
  assert_int_equal(in.nglobs, 1);
  assert_string_equal(in.globs[0], "/var/log/a**b/*.log");
  drop(&in);
}

static bool
all_gone(const struct sl_treg_entry *e, void *arg)
{
  (*(int *)arg)++;
  return e->ino != 3;  /* ino 3 still on disk */
}

static void
test_registry_clean(void **state)
{
  char dir[] = "/tmp/sl-test-clean-XXXXXX", cmd[64];
  struct sl_treg *r;
  struct sl_treg_entry *used;
  int asked = 0;

  (void)state;
  assert_non_null(mkdtemp(dir));
  assert_int_equal(sl_treg_open(dir, &r), 0);
  assert_non_null(sl_treg_add(r, "/l/a.log", 1, 1));
  used = sl_treg_add(r, "/l/b.log", 1, 2);
  assert_non_null(used);
  assert_non_null(sl_treg_add(r, "/l/c.log", 1, 3));
  used->refs = 1;  /* a file object holds it: never asked, never cleaned */
  assert_int_equal(sl_treg_save(r), 0);
  assert_int_equal(sl_treg_clean(r, all_gone, &asked), 1);
  assert_int_equal(asked, 2);
  assert_int_equal(sl_treg_count(r), 2);
  assert_true(sl_treg_dirty(r));
  used->refs = 0;
  assert_int_equal(sl_treg_save(r), 0);
  sl_treg_free(r);
  assert_int_equal(sl_treg_open(dir, &r), 0);
  assert_int_equal(sl_treg_count(r), 2);
  assert_null(sl_treg_find(r, 1, 1));
  sl_treg_free(r);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_globstar_middle),
    cmocka_unit_test(test_globstar_end),
    cmocka_unit_test(test_no_globstar),
    cmocka_unit_test(test_registry_clean),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
