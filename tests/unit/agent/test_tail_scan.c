/* test_tail_scan.c - the parts of discovery that need no files: `**`
 * expansion (agent/tail_scan.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_globstar_middle),
    cmocka_unit_test(test_globstar_end),
    cmocka_unit_test(test_no_globstar),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
