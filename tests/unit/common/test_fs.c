#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_err.h"
#include "sl_fs.h"
#include "sl_test.h"

static char root[256];

static int
setup(void **state)
{
  (void)state;
  sl_test_tmpdir(root, sizeof(root), "fs");
  return 0;
}

static int
teardown(void **state)
{
  (void)state;
  sl_test_rm_rf(root);
  return 0;
}

static void
test_mkdir_p_nested_and_existing(void **state)
{
  char p[400];
  struct stat st;

  (void)state;
  snprintf(p, sizeof(p), "%s/a/b/c", root);
  assert_int_equal(sl_fs_mkdir_p(p), 0);
  assert_int_equal(stat(p, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  /* Data dirs are the owner's only (least privilege, deploy/SECURITY.md),
   * whatever umask allows. */
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(sl_fs_mkdir_p(p), 0);
  assert_int_equal(sl_fs_mkdir_p(""), SL_EINVAL);
  /* A file in the way is an error, not success. */
  snprintf(p, sizeof(p), "%s/file", root);
  assert_int_equal(sl_fs_write_atomic(p, "x", 1, 0644), 0);
  snprintf(p, sizeof(p), "%s/file/sub", root);
  assert_true(sl_fs_mkdir_p(p) < 0);
}

static void
test_write_atomic_replaces(void **state)
{
  char p[400], t[420], buf[32];
  int fd;
  ssize_t n;

  (void)state;
  snprintf(p, sizeof(p), "%s/state", root);
  assert_int_equal(sl_fs_write_atomic(p, "first", 5, 0644), 0);
  assert_int_equal(sl_fs_write_atomic(p, "second", 6, 0644), 0);
  fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  n = read(fd, buf, sizeof(buf));
  close(fd);
  assert_int_equal(n, 6);
  assert_memory_equal(buf, "second", 6);
  snprintf(t, sizeof(t), "%s.tmp", p);
  assert_int_equal(access(t, F_OK), -1);
  /* Directory missing: error, nothing left behind. */
  snprintf(p, sizeof(p), "%s/nodir/state", root);
  assert_true(sl_fs_write_atomic(p, "x", 1, 0644) < 0);
}

static void
test_pwrite_all_offset(void **state)
{
  char p[400], buf[16];
  int fd;

  (void)state;
  snprintf(p, sizeof(p), "%s/pw", root);
  fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(sl_fs_write_all(fd, "abcdef", 6), 0);
  assert_int_equal(sl_fs_pwrite_all(fd, "XY", 2, 2), 0);
  assert_int_equal(pread(fd, buf, 6, 0), 6);
  assert_memory_equal(buf, "abXYef", 6);
  close(fd);
  assert_true(sl_fs_write_all(-1, "a", 1) < 0);
}

SL_TEST_MAIN(setup, teardown,
             cmocka_unit_test(test_mkdir_p_nested_and_existing),
             cmocka_unit_test(test_write_atomic_replaces),
             cmocka_unit_test(test_pwrite_all_offset))
