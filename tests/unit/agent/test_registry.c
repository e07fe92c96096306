/* test_registry.c - registry persistence: round trip, atomic write,
 * corrupt-file recovery, snapshot ordering, pruning. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "sl_err.h"
#include "sl_log.h"
#include "sl_test.h"
#include "tail_registry.h"

struct fx {
  char dir[64];
  char path[128];
};

static int
setup(void **state)
{
  struct fx *fx = calloc(1, sizeof(*fx));

  sl_test_tmpdir(fx->dir, sizeof(fx->dir), "treg");
  snprintf(fx->path, sizeof(fx->path), "%s/registry.json", fx->dir);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *fx = *state;

  sl_test_rm_rf(fx->dir);
  free(fx);
  return 0;
}

static int
count_prefix(const char *dir, const char *prefix)
{
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;

  while (d && (de = readdir(d)) != NULL)
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
      n++;
  if (d)
    closedir(d);
  return n;
}

static void
write_text(const char *path, const char *s)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fputs(s, f);
  fclose(f);
}

/* An entry as version 1 kept it: one fingerprint of the first fp_len
 * bytes, which is also the stream id and (at 1 KiB) the fingerprint. */
static struct sl_treg_entry *
put(struct sl_treg *r, const char *path, uint64_t dev, uint64_t ino,
    uint64_t fp, uint32_t fp_len, uint64_t offset)
{
  struct sl_treg_entry *e = sl_treg_add(r, path, dev, ino);

  assert_non_null(e);
  e->sid = e->head = e->fp = fp;
  e->head_len = fp_len;
  e->fp_len = fp_len;
  e->offset = offset;
  sl_treg_changed(r, e);  /* sid and fp are lookup keys */
  return e;
}

static void
test_empty_then_round_trip(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  struct sl_treg_entry *e;
  /* Values over INT64_MAX must survive the signed JSON integers. */
  uint64_t big = 0xfedcba9876543210ull;

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  assert_int_equal(sl_treg_count(r), 0);
  assert_false(sl_treg_dirty(r));
  assert_non_null(put(r, "/var/log/a.log", 2049, 11, 0x1234, 1024,
                              4096));
  assert_non_null(put(r, "/var/log/b.log", big, big - 1, big, 17,
                              77));
  assert_true(sl_treg_dirty(r));
  assert_int_equal(sl_treg_save(r), 0);
  assert_false(sl_treg_dirty(r));
  sl_treg_free(r);

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  assert_int_equal(sl_treg_count(r), 2);
  e = sl_treg_find(r, 2049, 11);
  assert_non_null(e);
  assert_string_equal(e->path, "/var/log/a.log");
  assert_int_equal(e->fp, 0x1234);
  assert_int_equal(e->fp_len, 1024);
  assert_int_equal(e->sid, 0x1234);
  assert_int_equal(e->head_len, 1024);
  assert_int_equal(e->id_dev, 0);
  assert_int_equal(e->offset, 4096);
  assert_ptr_equal(sl_treg_find_fp(r, 0, 1024, 0x1234), e);
  assert_null(sl_treg_find_fp(r, 0, 1000, 0x1234));
  assert_null(sl_treg_find_fp(r, 1, 1024, 0x1234));
  e = sl_treg_find(r, big, big - 1);
  assert_non_null(e);
  assert_true(e->fp == big);
  assert_int_equal(e->fp_len, 17);
  assert_int_equal(e->offset, 77);
  assert_null(sl_treg_find(r, 2049, 12));
  sl_treg_free(r);
}

static void
test_streams_and_offsets(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  struct sl_treg_entry *e, *e2;
  uint64_t seq;
  char *s;

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  e = put(r, "/a", 1, 2, 3, 4, 5);
  s = sl_treg_serialize(r, &seq);
  assert_non_null(s);
  free(s);
  assert_false(sl_treg_dirty(r));
  sl_treg_set_offset(r, e, 5);  /* unchanged: not dirty */
  assert_false(sl_treg_dirty(r));
  sl_treg_set_offset(r, e, 9);
  assert_true(sl_treg_dirty(r));
  /* A new stream on the same inode (content replaced) is a second entry:
   * the old one may still be continued by a copy of it. */
  e2 = put(r, "/a", 1, 2, 99, 10, 0);
  assert_ptr_not_equal(e, e2);
  assert_int_equal(sl_treg_count(r), 2);
  assert_ptr_equal(sl_treg_next_ino(r, NULL, 1, 2), e2);
  assert_ptr_equal(sl_treg_next_ino(r, e2, 1, 2), e);
  assert_null(sl_treg_next_ino(r, e, 1, 2));
  assert_true(sl_treg_sid_used(r, 99));
  assert_false(sl_treg_sid_used(r, 98));
  assert_int_equal(sl_treg_set_path(r, e, "/b"), 0);
  assert_string_equal(e->path, "/b");
  sl_treg_remove(r, e2);
  sl_treg_remove(r, e);
  assert_int_equal(sl_treg_count(r), 0);
  sl_treg_free(r);
}

/* A version 1 registry (one entry per dev+ino) is read, keeps every offset
 * and the ids of its streams (the inode stays in id_dev/id_ino), and is
 * written back as version 2. */
static void
test_migrate_v1(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  struct sl_treg_entry *e;
  json_error_t jerr;
  json_t *root;

  write_text(fx->path,
             "{\"version\":1,\"entries\":["
             "{\"path\":\"/var/log/a.log\",\"dev\":2049,\"ino\":11,"
             "\"fp\":\"00000000000000ab\",\"fp_len\":1024,"
             "\"offset\":4096,\"updated\":5},"
             "{\"path\":\"/var/log/b.log\",\"dev\":2049,\"ino\":12,"
             "\"fp\":\"00000000000000cd\",\"fp_len\":17,"
             "\"offset\":17,\"updated\":5}]}\n");
  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  assert_int_equal(sl_treg_count(r), 2);
  assert_true(sl_treg_dirty(r));  /* written back in the new format */
  e = sl_treg_find(r, 2049, 11);
  assert_non_null(e);
  assert_int_equal(e->offset, 4096);
  assert_int_equal(e->sid, 0xab);
  assert_int_equal(e->id_dev, 2049);
  assert_int_equal(e->id_ino, 11);
  assert_int_equal(e->head, 0xab);
  assert_int_equal(e->head_len, 1024);
  assert_ptr_equal(sl_treg_find_fp(r, 0, 1024, 0xab), e);
  e = sl_treg_find(r, 2049, 12);
  assert_non_null(e);
  assert_int_equal(e->head_len, 17);
  assert_int_equal(e->fp_len, 0);  /* too short for a fingerprint */
  assert_int_equal(sl_treg_save(r), 0);
  sl_treg_free(r);

  root = json_load_file(fx->path, 0, &jerr);
  assert_non_null(root);
  assert_int_equal(json_integer_value(json_object_get(root, "version")), 2);
  json_decref(root);
  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  assert_false(sl_treg_dirty(r));
  e = sl_treg_find(r, 2049, 11);
  assert_non_null(e);
  assert_int_equal(e->id_dev, 2049);
  assert_int_equal(e->id_ino, 11);
  assert_int_equal(e->sid, 0xab);
  assert_int_equal(e->offset, 4096);
  assert_int_equal(count_prefix(fx->dir, "registry.json.corrupt-"), 0);
  sl_treg_free(r);
}

static void
test_atomic_write_leaves_no_temp(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  json_error_t jerr;
  json_t *root, *ents;
  char tmp[160];

  /* A temp file left by a crash mid-write must not matter. */
  snprintf(tmp, sizeof(tmp), "%s/registry.json.tmp", fx->dir);
  write_text(tmp, "{\"torn");
  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  assert_int_equal(sl_treg_count(r), 0);
  assert_non_null(put(r, "/x.log", 5, 6, 7, 8, 9));
  assert_int_equal(sl_treg_save(r), 0);
  assert_int_equal(access(tmp, F_OK), -1);
  root = json_load_file(fx->path, 0, &jerr);
  assert_non_null(root);
  assert_int_equal(json_integer_value(json_object_get(root, "version")), 2);
  ents = json_object_get(root, "entries");
  assert_int_equal(json_array_size(ents), 1);
  assert_string_equal(json_string_value(json_object_get(
                        json_array_get(ents, 0), "sid")),
                      "0000000000000007");
  assert_int_equal(json_integer_value(json_object_get(
                     json_array_get(ents, 0), "offset")), 9);
  json_decref(root);
  sl_treg_free(r);
}

static void
test_corrupt_moved_aside(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  const char *bad[] = {
    "{not json",
    "[1,2,3]",
    "{\"version\":3,\"entries\":[]}",
    "{\"version\":2,\"entries\":[{\"path\":\"/a\",\"dev\":1,"
      "\"ino\":2,\"offset\":4,\"updated\":5}]}",
    "{\"version\":1,\"entries\":[{\"path\":\"/a\"}]}",
    "{\"version\":1,\"entries\":[{\"path\":\"/a\",\"dev\":1,\"ino\":2,"
      "\"fp\":\"zz\",\"fp_len\":3,\"offset\":4,\"updated\":5}]}",
  };
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    write_text(fx->path, bad[i]);
    assert_int_equal(sl_treg_open(fx->dir, &r), 0);
    assert_int_equal(sl_treg_count(r), 0);
    /* The bad file is kept for a human, under another name. */
    assert_int_equal(access(fx->path, F_OK), -1);
    assert_true(count_prefix(fx->dir, "registry.json.corrupt-") >= 1);
    /* And the fresh registry works. */
    assert_non_null(put(r, "/a", 1, 2, 3, 4, 5));
    assert_int_equal(sl_treg_save(r), 0);
    sl_treg_free(r);
    assert_int_equal(sl_treg_open(fx->dir, &r), 0);
    assert_int_equal(sl_treg_count(r), 1);
    sl_treg_free(r);
  }
}

static void
test_older_snapshot_never_wins(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  struct sl_treg_entry *e;
  uint64_t s1, s2;
  char *j1, *j2;

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  e = put(r, "/a", 1, 2, 3, 4, 100);
  j1 = sl_treg_serialize(r, &s1);
  sl_treg_set_offset(r, e, 200);
  j2 = sl_treg_serialize(r, &s2);
  assert_true(s2 > s1);
  /* A slow worker finishing late with the old snapshot is ignored. */
  assert_int_equal(sl_treg_write(r, j2, s2), 0);
  assert_int_equal(sl_treg_write(r, j1, s1), 0);
  free(j1);
  free(j2);
  sl_treg_free(r);
  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  e = sl_treg_find(r, 1, 2);
  assert_non_null(e);
  assert_int_equal(e->offset, 200);
  sl_treg_free(r);
}

static void
test_prune_only_unreferenced_old(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  struct sl_treg_entry *a, *b, *c;

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  a = put(r, "/a", 1, 1, 1, 1, 1);
  b = put(r, "/b", 1, 2, 1, 1, 1);
  c = put(r, "/c", 1, 3, 1, 1, 1);
  a->updated_ms -= 100000;
  b->updated_ms -= 100000;
  b->refs = 1;  /* an open file uses it */
  (void)c;
  assert_int_equal(sl_treg_prune(r, 50000), 1);
  assert_null(sl_treg_find(r, 1, 1));
  assert_non_null(sl_treg_find(r, 1, 2));
  assert_non_null(sl_treg_find(r, 1, 3));
  /* touch on a fresh entry does not cause a write. */
  assert_int_equal(sl_treg_save(r), 0);
  sl_treg_touch(r, c);
  assert_false(sl_treg_dirty(r));
  b->refs = 0;
  sl_treg_free(r);
}

static void
test_missing_dir_fails_cleanly(void **state)
{
  struct fx *fx = *state;
  struct sl_treg *r;
  char sub[160];

  (void)fx;
  assert_int_equal(sl_treg_open("", &r), SL_EINVAL);
  snprintf(sub, sizeof(sub), "%s/nope", fx->dir);
  assert_int_equal(sl_treg_open(sub, &r), 0);  /* no file: empty */
  assert_non_null(put(r, "/a", 1, 2, 3, 4, 5));
  assert_true(sl_treg_save(r) < 0);  /* directory missing */
  assert_true(sl_treg_dirty(r));     /* kept for a retry */
  sl_treg_free(r);
}

/* Regression: the registry was a linear list, so the first scan of an
 * agent with 20,000 entries compared 2e8 of them (seconds of CPU before
 * it started, bench/RESULTS.md). Lookups go through hash indexes now;
 * every answer must still be the one a walk of the list (newest entry
 * first) gives, after the indexes grew, after keys changed
 * (sl_treg_changed) and after removals, and across a save and a load. */
static void
test_index_many_entries(void **state)
{
  enum { N = 5000 };
  struct fx *fx = *state;
  struct sl_treg *r;
  struct sl_treg_entry *e[N], *x, *y;
  size_t i;

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  for (i = 0; i < N; i++)
    e[i] = put(r, "/f", 7, 1000 + i, 0x5000 + i, i % 2 ? 1024 : 0, i);
  assert_int_equal(sl_treg_count(r), N);
  for (i = 0; i < N; i++) {
    assert_ptr_equal(sl_treg_find(r, 7, 1000 + i), e[i]);
    assert_null(sl_treg_next_ino(r, e[i], 7, 1000 + i));
    assert_ptr_equal(sl_treg_find_fp(r, 0, 1024, 0x5000 + i),
                     i % 2 ? e[i] : NULL);
    assert_true(sl_treg_sid_used(r, 0x5000 + i));
  }
  assert_null(sl_treg_find(r, 7, 1000 + N));
  assert_false(sl_treg_sid_used(r, 0x5000 + N));

  /* Same inode, several streams: newest first, as the list had them. */
  x = put(r, "/f", 7, 1000, 0x9001, 1024, 0);
  y = put(r, "/f", 7, 1000, 0x9002, 1024, 0);
  assert_ptr_equal(sl_treg_next_ino(r, NULL, 7, 1000), y);
  assert_ptr_equal(sl_treg_next_ino(r, y, 7, 1000), x);
  assert_ptr_equal(sl_treg_next_ino(r, x, 7, 1000), e[0]);
  assert_null(sl_treg_next_ino(r, e[0], 7, 1000));
  /* The same fingerprint twice: the newest entry answers. */
  y->fp = 0x9001;
  sl_treg_changed(r, y);
  assert_ptr_equal(sl_treg_find_fp(r, 0, 1024, 0x9001), y);
  sl_treg_remove(r, y);
  assert_ptr_equal(sl_treg_find_fp(r, 0, 1024, 0x9001), x);
  assert_null(sl_treg_find_fp(r, 0, 1024, 0x9002));

  /* A stream that moved to another inode (stream_bind) is found there
   * and no longer under the old one; a migrated id is no sid. */
  e[3]->dev = 8;
  e[3]->ino = 3;
  e[3]->id_dev = 1;
  sl_treg_changed(r, e[3]);
  assert_ptr_equal(sl_treg_find(r, 8, 3), e[3]);
  assert_null(sl_treg_find(r, 7, 1003));
  assert_false(sl_treg_sid_used(r, 0x5003));
  e[3]->id_dev = 0;
  sl_treg_changed(r, e[3]);

  /* Removal in every way, then a round trip through the file. */
  sl_treg_remove(r, x);
  sl_treg_remove(r, e[10]);
  assert_null(sl_treg_find(r, 7, 1010));
  assert_null(sl_treg_find_fp(r, 0, 1024, 0x9001));
  e[11]->updated_ms -= 100000;
  assert_int_equal(sl_treg_prune(r, 50000), 1);
  assert_null(sl_treg_find(r, 7, 1011));
  assert_int_equal(sl_treg_count(r), N - 2);
  assert_int_equal(sl_treg_save(r), 0);
  sl_treg_free(r);

  assert_int_equal(sl_treg_open(fx->dir, &r), 0);
  assert_int_equal(sl_treg_count(r), N - 2);
  for (i = 0; i < N; i++) {
    if (i == 10 || i == 11)
      continue;
    x = i == 3 ? sl_treg_find(r, 8, 3) : sl_treg_find(r, 7, 1000 + i);
    assert_non_null(x);
    assert_int_equal(x->offset, i);
    assert_ptr_equal(sl_treg_find_fp(r, 0, 1024, 0x5000 + i),
                     i % 2 ? x : NULL);
    assert_true(sl_treg_sid_used(r, 0x5000 + i));
  }
  assert_null(sl_treg_find(r, 7, 1010));
  sl_treg_free(r);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_empty_then_round_trip, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_streams_and_offsets, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
    cmocka_unit_test_setup_teardown(test_atomic_write_leaves_no_temp, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_corrupt_moved_aside, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_older_snapshot_never_wins, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_prune_only_unreferenced_old, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_index_many_entries, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_missing_dir_fails_cleanly, setup,
                                    teardown),
  };

  sl_log_set_level(SL_LOG_WARN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
