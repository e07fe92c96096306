/* The spool: group commit, reader and release, cursor, rotation, limits,
 * disk errors and recovery from every kind of damage. Real files in mkdtemp
 * directories and a real uv loop; every wait polls a condition with a
 * deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <zlib.h>

#include "bulk.h"
#include "sl_err.h"
#include "sl_log.h"
#include "spool.h"

#define HDR SL_SPOOL_REC_HDR
#define WAIT_MS 10000

/* ---- harness ------------------------------------------------------------ */

struct t {
  uv_loop_t loop;
  uv_timer_t tick;       /* wakes UV_RUN_ONCE while we poll a condition */
  char base[64];         /* mkdtemp root, removed at the end */
  char dir[160];         /* data_dir of the spool under test */
  struct sl_spool *s;
  int closed;
  int resumes;
  int readies;           /* ready callbacks */
  int in_next;           /* inside sl_spool_next (the callback must not
                            run there) */
};

/* One append's outcome. */
struct ack {
  int done;
  int status;
  int calls;
  uint64_t fsyncs_seen;  /* stats.fsyncs when the callback ran */
  struct t *t;
};

static uint64_t
mono_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
on_tick(uv_timer_t *h)
{
  (void)h;
}

#define RUN_UNTIL(t, cond, ms)                                    \
  do {                                                            \
    uint64_t dl_ = mono_ms() + (ms);                              \
    uv_timer_start(&(t)->tick, on_tick, 5, 5);                    \
    while (!(cond) && mono_ms() < dl_)                            \
      uv_run(&(t)->loop, UV_RUN_ONCE);                            \
    uv_timer_stop(&(t)->tick);                                    \
  } while (0)

static int
rm_cb(const char *p, const struct stat *sb, int type, struct FTW *f)
{
  (void)sb;
  (void)type;
  (void)f;
  return remove(p);
}

static void
rm_rf(const char *p)
{
  nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct t *
t_new(void)
{
  struct t *t = calloc(1, sizeof(*t));

  /* A test that failed half-way must not leave its fault hooks to the
   * next one (cmocka jumps out of a failed test). */
  sl_spool__test_pwrite = NULL;
  sl_spool__test_fsync = NULL;
  sl_spool__test_preadv = NULL;
  assert_non_null(t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  uv_timer_init(&t->loop, &t->tick);
  strcpy(t->base, "/tmp/sl-spool-XXXXXX");
  assert_non_null(mkdtemp(t->base));
  snprintf(t->dir, sizeof(t->dir), "%s/data", t->base);
  return t;
}

static void
on_resume(void *arg)
{
  ((struct t *)arg)->resumes++;
}

static int
t_open_rc(struct t *t, uint64_t seg, uint64_t max, uint64_t commit_ms)
{
  struct sl_spool_opts o;
  char err[256] = "";
  int rc;

  memset(&o, 0, sizeof(o));
  o.data_dir = t->dir;
  o.segment_bytes = seg;
  o.max_bytes = max;
  o.commit_interval_ms = commit_ms;
  t->closed = 0;
  rc = sl_spool_open(&t->loop, &o, &t->s, err, sizeof(err));
  if (rc != 0)
    fprintf(stderr, "open: %s\n", err);
  else
    sl_spool_set_resume_cb(t->s, on_resume, t);
  return rc;
}

static void
t_open(struct t *t, uint64_t seg, uint64_t max, uint64_t commit_ms)
{
  assert_int_equal(t_open_rc(t, seg, max, commit_ms), 0);
}

static void
on_closed(void *arg)
{
  ((struct t *)arg)->closed = 1;
}

static void
t_close(struct t *t)
{
  sl_spool_close(t->s, on_closed, t);
  RUN_UNTIL(t, t->closed, WAIT_MS);
  assert_true(t->closed);
  t->s = NULL;
}

static void
t_free(struct t *t)
{
  if (t->s)
    t_close(t);
  uv_close((uv_handle_t *)&t->tick, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  rm_rf(t->base);
  free(t);
}

static struct sl_spool_stats
stats(struct t *t)
{
  struct sl_spool_stats st;

  sl_spool_stats(t->s, &st);
  return st;
}

static void
on_commit(void *arg, int status)
{
  struct ack *a = arg;

  a->calls++;
  a->done = 1;
  a->status = status;
  if (a->t && a->t->s)
    a->fsyncs_seen = stats(a->t).fsyncs;
}

/* Deterministic payload: 8-byte index, then bytes derived from it. */
static void
fill(char *p, size_t len, uint64_t idx)
{
  uint64_t x = idx * 0x9e3779b97f4a7c15ull + 1;
  size_t i;

  assert_true(len >= 8);
  memcpy(p, &idx, 8);
  for (i = 8; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (char)x;
  }
}

static int
check_payload(const char *p, size_t len, uint64_t *idx)
{
  char *want;
  int ok;

  if (len < 8)
    return 0;
  memcpy(idx, p, 8);
  want = malloc(len);
  assert_non_null(want);
  fill(want, len, *idx);
  ok = memcmp(want, p, len) == 0;
  free(want);
  return ok;
}

static int
append_idx(struct t *t, uint64_t idx, size_t len, struct ack *a)
{
  char *p = malloc(len);
  int rc;

  assert_non_null(p);
  fill(p, len, idx);
  memset(a, 0, sizeof(*a));
  a->t = t;
  rc = sl_spool_append(t->s, p, len, (uint32_t)(idx % 7 + 1), on_commit, a);
  free(p);
  return rc;
}

static int
all_done(const struct ack *a, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (!a[i].done)
      return 0;
  return 1;
}

/* Append n records (index base + i, length len_of(i)) and wait for all
 * commit callbacks; all must succeed. */
static void
append_wait(struct t *t, uint64_t base, size_t n, size_t len)
{
  struct ack *a = calloc(n, sizeof(*a));
  size_t i;

  assert_non_null(a);
  for (i = 0; i < n; i++)
    assert_int_equal(append_idx(t, base + i, len, &a[i]), 0);
  RUN_UNTIL(t, all_done(a, n), WAIT_MS);
  for (i = 0; i < n; i++) {
    assert_int_equal(a[i].calls, 1);
    assert_int_equal(a[i].status, 0);
  }
  free(a);
}

/* sl_spool_next, running the loop while records are still being read
 * (reads happen on the threadpool). SL_EAGAIN once nothing is unread. */
static int
t_next(struct t *t, struct sl_spool_rec *r)
{
  uint64_t dl = mono_ms() + WAIT_MS;
  int rc;

  uv_timer_start(&t->tick, on_tick, 5, 5);
  while ((rc = sl_spool_next(t->s, r)) == SL_EAGAIN &&
         sl_spool_unread(t->s) > 0 && mono_ms() < dl)
    uv_run(&t->loop, UV_RUN_ONCE);
  uv_timer_stop(&t->tick);
  return rc;
}

/* Drain the reader: ids[] and payload indexes idx[] (each checked). */
static size_t
drain(struct t *t, uint64_t *ids, uint64_t *idx, size_t max)
{
  struct sl_spool_rec r;
  size_t n = 0;
  int rc;

  while ((rc = t_next(t, &r)) == 0) {
    uint64_t k = 0;
    assert_true(n < max);
    assert_true(check_payload(r.data, r.len, &k));
    assert_int_equal(r.nevents, (uint32_t)(k % 7 + 1));
    if (n > 0)
      assert_true(r.id > ids[n - 1]);
    ids[n] = r.id;
    if (idx)
      idx[n] = k;
    n++;
    free(r.data);
  }
  assert_int_equal(rc, SL_EAGAIN);
  assert_int_equal(sl_spool_unread(t->s), 0);
  return n;
}

static void
spath(struct t *t, char *out, size_t n, const char *name)
{
  snprintf(out, n, "%s/spool/%s", t->dir, name);
}

/* Segment file names, sorted; returns the count. */
static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t
list_dir(const char *dir, const char *suffix, char names[][64], size_t max)
{
  char *ptrs[256], tmp[256][64];
  struct dirent *de;
  size_t n = 0, i, sl = strlen(suffix);
  DIR *d = opendir(dir);

  if (d == NULL)
    return 0;
  while ((de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
      continue;
    assert_true(n < 256 && l < 64);
    strcpy(tmp[n], de->d_name);
    ptrs[n] = tmp[n];
    n++;
  }
  closedir(d);
  qsort(ptrs, n, sizeof(*ptrs), cmp_str);
  for (i = 0; i < n && i < max; i++)
    strcpy(names[i], ptrs[i]);
  return n;
}

static size_t
count_segs(struct t *t)
{
  char d[256], names[256][64];

  snprintf(d, sizeof(d), "%s/spool", t->dir);
  return list_dir(d, ".seg", names, 256);
}

static off_t
file_size(const char *p)
{
  struct stat sb;

  if (stat(p, &sb) != 0)
    return -1;
  return sb.st_size;
}

static void
write_file(const char *p, const void *b, size_t n, int flags)
{
  int fd = open(p, O_WRONLY | O_CREAT | flags, 0644);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, b, n), (ssize_t)n);
  close(fd);
}

static char *
read_file(const char *p, size_t *n)
{
  off_t sz = file_size(p);
  char *b;
  int fd;

  assert_true(sz >= 0);
  b = malloc((size_t)sz + 1);
  assert_non_null(b);
  fd = open(p, O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(read(fd, b, (size_t)sz), sz);
  close(fd);
  *n = (size_t)sz;
  return b;
}

/* ---- basic operation ---------------------------------------------------- */

static void
test_append_commit_next(void **state)
{
  struct t *t = t_new();
  struct ack a[10];
  struct sl_spool_stats st;
  struct sl_spool_rec r;
  uint64_t ids[16], idx[16], bytes = 0;
  size_t i, n;

  (void)state;
  t_open(t, 0, 0, 2);
  for (i = 0; i < 10; i++) {
    assert_int_equal(append_idx(t, i, 8 + i * 100, &a[i]), 0);
    bytes += HDR + 8 + i * 100;
  }
  /* Never called from inside append; nothing durable yet. */
  for (i = 0; i < 10; i++)
    assert_int_equal(a[i].calls, 0);
  assert_int_equal(sl_spool_next(t->s, &r), SL_EAGAIN);
  RUN_UNTIL(t, all_done(a, 10), WAIT_MS);
  for (i = 0; i < 10; i++) {
    assert_int_equal(a[i].calls, 1);
    assert_int_equal(a[i].status, 0);
  }
  st = stats(t);
  assert_int_equal(st.appends, 10);
  assert_int_equal(st.records, 10);
  assert_int_equal(st.bytes, bytes);
  assert_true(st.oldest_append_ns > 0);
  assert_int_equal(st.disk_full, 0);

  n = drain(t, ids, idx, 16);
  assert_int_equal(n, 10);
  for (i = 0; i < 10; i++)
    assert_int_equal(idx[i], i);
  /* Handed out once only. */
  assert_int_equal(t_next(t, &r), SL_EAGAIN);
  for (i = 0; i < 10; i++)
    sl_spool_release(t->s, ids[i]);
  sl_spool_release(t->s, ids[3]);   /* twice: ignored */
  sl_spool_release(t->s, 999999);   /* unknown: ignored */
  st = stats(t);
  assert_int_equal(st.records, 0);
  assert_int_equal(st.bytes, 0);
  assert_int_equal(st.oldest_append_ns, 0);
  assert_false(sl_spool_is_full(t->s));

  /* A zero-length record and a too large one. */
  memset(&a[0], 0, sizeof(a[0]));
  assert_int_equal(sl_spool_append(t->s, "", 0, 0, on_commit, &a[0]), 0);
  assert_int_equal(sl_spool_append(t->s, "", (size_t)SL_SPOOL_MAX_RECORD + 1,
                                    1, on_commit, &a[1]), SL_E2BIG);
  RUN_UNTIL(t, a[0].done, WAIT_MS);
  assert_int_equal(a[0].status, 0);
  assert_int_equal(t_next(t, &r), 0);
  assert_int_equal(r.len, 0);
  assert_int_equal(r.nevents, 0);
  assert_true(r.id > ids[9]);
  free(r.data);
  t_close(t);
  t_free(t);
}

static void
test_group_commit(void **state)
{
  struct t *t = t_new();
  struct ack a[200], w;
  uint64_t f0;
  size_t i;

  (void)state;
  t_open(t, 0, 0, 50);
  /* Warm-up creates the segment (file + directory fsync). */
  assert_int_equal(append_idx(t, 1000, 64, &w), 0);
  RUN_UNTIL(t, w.done, WAIT_MS);
  assert_int_equal(w.status, 0);
  f0 = stats(t).fsyncs;

  for (i = 0; i < 200; i++)
    assert_int_equal(append_idx(t, i, 100 + i, &a[i]), 0);
  uv_run(&t->loop, UV_RUN_NOWAIT);
  RUN_UNTIL(t, all_done(a, 200), WAIT_MS);
  for (i = 0; i < 200; i++) {
    assert_int_equal(a[i].status, 0);
    /* Every callback ran after the group's one fsync. */
    assert_int_equal(a[i].fsyncs_seen, f0 + 1);
  }
  assert_int_equal(stats(t).fsyncs, f0 + 1);
  assert_int_equal(stats(t).appends, 201);
  t_free(t);
}

/* A backlog bigger than the index keeps allocated: drained, the index is
 * given back, and the spool goes on. */
static void
test_big_backlog(void **state)
{
  struct t *t = t_new();
  static uint64_t ids[6000], idx[6000];
  size_t i, n;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 6000, 8);
  n = drain(t, ids, idx, 6000);
  assert_int_equal(n, 6000);
  for (i = 0; i < n; i++)
    sl_spool_release(t->s, ids[i]);
  assert_int_equal(stats(t).records, 0);
  append_wait(t, 6000, 10, 8);
  n = drain(t, ids, idx, 6000);
  assert_int_equal(n, 10);
  assert_int_equal(idx[0], 6000);
  assert_int_equal(ids[0], 6001);
  t_free(t);
}

/* Read buffers given back with sl_spool_recycle are read into again (a
 * later record arrives in one, intact), and the spare
 * list keeps at most 16 buffers and 16 MiB however many come back. */
static void
test_read_buffers_recycled(void **state)
{
  struct t *t = t_new();
  static struct sl_spool_rec recs[40];
  uint64_t bytes, k;
  size_t i, n = 0, spares;

  (void)state;
  t_open(t, 0, 0, 1);
  /* Many small records: the count bound. */
  append_wait(t, 0, 40, 1000);
  while (t_next(t, &recs[n]) == 0) {
    assert_true(recs[n].cap >= recs[n].len);
    n++;
  }
  assert_int_equal(n, 40);
  for (i = 0; i < n; i++) {
    sl_spool_recycle(t->s, recs[i].data, recs[i].cap);
    sl_spool_release(t->s, recs[i].id);
    assert_true(sl_spool__spare_bufs(t->s, &bytes) <= 16);
  }
  assert_int_equal(sl_spool__spare_bufs(t->s, NULL), 16);
  /* 1 MiB records: the byte bound, and reuse in order of arrival. */
  append_wait(t, 100, 20, 1u << 20);
  n = 0;
  while (t_next(t, &recs[n]) == 0)
    n++;
  assert_int_equal(n, 20);
  for (i = 0; i < n; i++)
    sl_spool_recycle(t->s, recs[i].data, recs[i].cap);
  assert_true(sl_spool__spare_bufs(t->s, &bytes) <= 16);
  assert_true(bytes <= (16u << 20));
  assert_true(bytes >= (8u << 20));
  for (i = 0; i < n; i++)
    sl_spool_release(t->s, recs[i].id);
  /* Reads take their buffers from the spare list: six records read and
   * held leave six spares fewer, and arrive intact. */
  spares = sl_spool__spare_bufs(t->s, NULL);
  assert_true(spares >= 8);
  append_wait(t, 200, 6, 1u << 20);
  for (i = 0; i < 6; i++) {
    assert_int_equal(t_next(t, &recs[i]), 0);
    assert_true(check_payload(recs[i].data, recs[i].len, &k));
    assert_int_equal(k, 200 + i);
  }
  assert_int_equal(sl_spool__spare_bufs(t->s, NULL), spares - 6);
  for (i = 0; i < 6; i++) {
    sl_spool_recycle(t->s, recs[i].data, recs[i].cap);
    sl_spool_release(t->s, recs[i].id);
  }
  assert_int_equal(sl_spool__spare_bufs(t->s, NULL), spares);
  t_free(t);
}

static int
contains(const uint64_t *v, size_t n, uint64_t x)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (v[i] == x)
      return 1;
  return 0;
}

static void
test_release_order_and_cursor(void **state)
{
  struct t *t = t_new();
  static const uint64_t rel[] = {12, 3, 1, 10, 5, 2, 8, 4};
  uint64_t ids[32], got[32];
  struct sl_spool_rec r;
  size_t i, n;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 20, 300);
  n = drain(t, ids, NULL, 32);
  assert_int_equal(n, 20);
  /* Ids of a new spool start at 1. */
  for (i = 0; i < 20; i++)
    assert_int_equal(ids[i], i + 1);
  for (i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
    sl_spool_release(t->s, rel[i]);
  assert_int_equal(stats(t).records, 12);
  assert_int_equal(stats(t).bytes, 12 * (HDR + 300));
  t_close(t);

  /* Everything unreleased comes back; the released prefix 1..5 never. */
  t_open(t, 0, 0, 1);
  n = drain(t, got, NULL, 32);
  for (i = 6; i <= 20; i++)
    if (i != 8 && i != 10 && i != 12)
      assert_true(contains(got, n, i));
  for (i = 1; i <= 5; i++)
    assert_false(contains(got, n, i));
  /* Release the rest in reverse order, with a cursor save in between. */
  for (i = n; i-- > 0;)
    sl_spool_release(t->s, got[i]);
  assert_int_equal(stats(t).records, 0);
  t_close(t);

  t_open(t, 0, 0, 1);
  assert_int_equal(t_next(t, &r), SL_EAGAIN);
  assert_int_equal(stats(t).records, 0);
  assert_int_equal(count_segs(t), 0);
  /* New ids continue after the old ones. */
  append_wait(t, 100, 1, 50);
  assert_int_equal(t_next(t, &r), 0);
  assert_true(r.id > 20);
  free(r.data);
  t_free(t);
}

static void
test_cursor_saved_while_running(void **state)
{
  struct t *t = t_new();
  uint64_t ids[8], got[8], f0;
  char p[256];
  size_t n;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 4, 100);
  n = drain(t, ids, NULL, 8);
  assert_int_equal(n, 4);
  f0 = stats(t).fsyncs;
  sl_spool_release(t->s, ids[0]);
  sl_spool_release(t->s, ids[1]);
  /* Batched: a save (file + dir fsync) within ~200 ms, not per release. */
  RUN_UNTIL(t, stats(t).fsyncs >= f0 + 2, WAIT_MS);
  assert_int_equal(stats(t).fsyncs, f0 + 2);

  /* Simulate a crash: copy the spool as it is now, reopen the copy. */
  {
    struct t *c = t_new();
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp -a %s %s", t->dir, c->dir);
    assert_int_equal(system(cmd), 0);
    t_open(c, 0, 0, 1);
    n = drain(c, got, NULL, 8);
    assert_int_equal(n, 2);
    assert_int_equal(got[0], ids[2]);
    assert_int_equal(got[1], ids[3]);
    t_free(c);
  }
  spath(t, p, sizeof(p), "cursor");
  assert_int_equal(file_size(p), 24);
  t_free(t);
}

static void
test_rotation_and_deletion(void **state)
{
  struct t *t = t_new();
  char p[256];
  uint64_t ids[64];
  size_t i, n;

  (void)state;
  /* 3 records of 1032 bytes per 4096-byte segment. */
  t_open(t, 4096, 0, 1);
  append_wait(t, 0, 30, 1000);
  assert_int_equal(count_segs(t), 10);
  for (i = 0; i < 10; i++) {
    char name[32];
    snprintf(name, sizeof(name), "%016" PRIx64 ".seg", (uint64_t)(3 * i + 1));
    spath(t, p, sizeof(p), name);
    assert_int_equal(file_size(p), 3 * (HDR + 1000));
  }
  n = drain(t, ids, NULL, 64);
  assert_int_equal(n, 30);
  /* A middle segment released first goes, its neighbours stay. */
  sl_spool_release(t->s, 9);
  sl_spool_release(t->s, 7);
  sl_spool_release(t->s, 8);
  spath(t, p, sizeof(p), "0000000000000007.seg");
  RUN_UNTIL(t, file_size(p) < 0, WAIT_MS);
  assert_true(file_size(p) < 0);
  assert_int_equal(count_segs(t), 9);
  for (i = 1; i <= 30; i++)
    if (i < 7 || i > 9)
      sl_spool_release(t->s, i);
  /* Only the active segment stays. */
  RUN_UNTIL(t, count_segs(t) == 1, WAIT_MS);
  assert_int_equal(count_segs(t), 1);
  assert_int_equal(stats(t).bytes, 0);
  /* It keeps taking records until it is full, then rotates; the old one,
   * fully released, goes once it is no longer active. */
  append_wait(t, 100, 1, 1000);
  spath(t, p, sizeof(p), "000000000000001f.seg");
  assert_true(file_size(p) > 0);
  spath(t, p, sizeof(p), "000000000000001c.seg");
  RUN_UNTIL(t, file_size(p) < 0, WAIT_MS);
  assert_true(file_size(p) < 0);
  assert_int_equal(count_segs(t), 1);
  t_close(t);
  t_open(t, 4096, 0, 1);
  n = drain(t, ids, NULL, 64);
  assert_int_equal(n, 1);
  assert_int_equal(ids[0], 31);
  assert_int_equal(count_segs(t), 1);
  t_free(t);
}

static void
test_max_bytes(void **state)
{
  struct t *t = t_new();
  struct ack a[12];
  struct sl_spool_rec r;
  uint64_t ids[16];
  size_t i, n;
  int rc;

  (void)state;
  t_open(t, 0, 10 * (HDR + 1000), 1);
  for (i = 0; i < 12; i++) {
    rc = append_idx(t, i, 1000, &a[i]);
    if (rc != 0)
      break;
  }
  /* At/over the limit (pending bytes count): the 11th is refused. */
  assert_int_equal(i, 10);
  assert_int_equal(rc, SL_EAGAIN);
  assert_true(sl_spool_is_full(t->s));
  RUN_UNTIL(t, all_done(a, 10), WAIT_MS);
  assert_int_equal(append_idx(t, 99, 1000, &a[11]), SL_EAGAIN);
  n = drain(t, ids, NULL, 16);
  assert_int_equal(n, 10);
  /* 9 left = exactly 90%: still full (hysteresis). */
  sl_spool_release(t->s, ids[0]);
  for (i = 0; i < 5; i++)
    uv_run(&t->loop, UV_RUN_NOWAIT);
  assert_int_equal(t->resumes, 0);
  assert_true(sl_spool_is_full(t->s));
  assert_int_equal(append_idx(t, 99, 1000, &a[11]), SL_EAGAIN);
  sl_spool_release(t->s, ids[1]);
  /* Deferred to the loop, never from inside release. */
  assert_int_equal(t->resumes, 0);
  RUN_UNTIL(t, t->resumes == 1, WAIT_MS);
  assert_int_equal(t->resumes, 1);
  assert_false(sl_spool_is_full(t->s));
  assert_int_equal(append_idx(t, 99, 1000, &a[11]), 0);
  RUN_UNTIL(t, a[11].done, WAIT_MS);
  assert_int_equal(a[11].status, 0);
  assert_int_equal(t_next(t, &r), 0);
  free(r.data);
  assert_int_equal(t->resumes, 1);
  t_free(t);
}

static void
test_pending_cap(void **state)
{
  struct t *t = t_new();
  const size_t len = 1u << 20;
  size_t n = SL_SPOOL_PENDING_MAX / (len + HDR) + 2, i, ok = 0;
  struct ack *a = calloc(n, sizeof(*a));
  int rc = 0;

  (void)state;
  assert_non_null(a);
  t_open(t, 0, 0, 1000);
  for (i = 0; i < n; i++) {
    rc = append_idx(t, i, len, &a[i]);
    if (rc != 0)
      break;
    ok++;
  }
  assert_int_equal(rc, SL_EAGAIN);
  assert_true(ok * (len + HDR) <= SL_SPOOL_PENDING_MAX);
  assert_true(sl_spool_is_full(t->s));
  /* The commit starts (window 1 s), the pending buffer empties: resume. */
  RUN_UNTIL(t, t->resumes == 1, WAIT_MS);
  assert_int_equal(t->resumes, 1);
  RUN_UNTIL(t, all_done(a, ok), WAIT_MS);
  for (i = 0; i < ok; i++)
    assert_int_equal(a[i].status, 0);
  free(a);
  t_free(t);
}

static void
test_close_flushes_pending(void **state)
{
  struct t *t = t_new();
  struct ack a[5], x;
  uint64_t ids[8];
  size_t i;

  (void)state;
  t_open(t, 0, 0, 60000); /* the window would never end by itself */
  for (i = 0; i < 5; i++)
    assert_int_equal(append_idx(t, i, 500, &a[i]), 0);
  sl_spool_close(t->s, on_closed, t);
  assert_int_equal(append_idx(t, 9, 500, &x), SL_ECLOSED);
  RUN_UNTIL(t, t->closed, WAIT_MS);
  assert_true(t->closed);
  t->s = NULL;
  for (i = 0; i < 5; i++) {
    assert_int_equal(a[i].calls, 1);
    assert_int_equal(a[i].status, 0);
  }
  assert_int_equal(x.calls, 0);
  t_open(t, 0, 0, 1);
  assert_int_equal(drain(t, ids, NULL, 8), 5);
  t_free(t);
}

/* ---- recovery ----------------------------------------------------------- */

/* A fresh spool with n records of len bytes (one segment unless seg). */
static void
make_spool(struct t *t, size_t n, size_t len, uint64_t seg)
{
  t_open(t, seg, 0, 1);
  append_wait(t, 0, n, len);
  t_close(t);
}

static void
test_torn_tail(void **state)
{
  struct t *t = t_new();
  const size_t len = 200, rs = HDR + len;
  uint64_t ids[16], idx[16];
  char p[256];
  size_t n, i;

  (void)state;
  make_spool(t, 10, len, 0);
  spath(t, p, sizeof(p), "0000000000000001.seg");
  assert_int_equal(file_size(p), 10 * rs);
  assert_int_equal(truncate(p, 10 * rs - 7), 0);
  t_open(t, 0, 0, 1);
  assert_int_equal(stats(t).truncated_bytes, rs - 7);
  assert_int_equal(stats(t).corrupt, 0);
  assert_int_equal(file_size(p), 9 * rs);
  n = drain(t, ids, idx, 16);
  assert_int_equal(n, 9);
  for (i = 0; i < 9; i++)
    assert_int_equal(idx[i], i);
  /* New appends go after the cut; a reopen finds no damage. */
  append_wait(t, 50, 1, len);
  t_close(t);
  t_open(t, 0, 0, 1);
  assert_int_equal(stats(t).truncated_bytes, 0);
  assert_int_equal(drain(t, ids, idx, 16), 10);
  assert_int_equal(idx[9], 50);

  /* Cut inside a header. */
  t_close(t);
  assert_int_equal(truncate(p, 10 * rs - (rs - 5)), 0);
  t_open(t, 0, 0, 1);
  assert_int_equal(stats(t).truncated_bytes, 5);
  assert_int_equal(drain(t, ids, idx, 16), 9);
  t_free(t);
}

static void
flip(const char *p, off_t off)
{
  unsigned char c;
  int fd = open(p, O_RDWR);

  assert_true(fd >= 0);
  assert_int_equal(pread(fd, &c, 1, off), 1);
  c ^= 0x5a;
  assert_int_equal(pwrite(fd, &c, 1, off), 1);
  close(fd);
}

static void
test_corrupt_middle(void **state)
{
  struct t *t = t_new();
  const size_t len = 200, rs = HDR + len;
  static const off_t where[] = {HDR + 50, 0, 4, 12, 20};
  uint64_t ids[16], idx[16];
  char p[256], cdir[256], cname[64], names[8][64], cp[400];
  size_t n, i, w, sz, fsz;
  char *orig, *dam, *saved;

  (void)state;
  snprintf(cdir, sizeof(cdir), "%s/corrupt", t->dir);
  for (w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
    make_spool(t, 10, len, 0);
    spath(t, p, sizeof(p), "0000000000000001.seg");
    orig = read_file(p, &fsz);
    /* Damage record 5 (payload, magic, length, crc or id). */
    flip(p, (off_t)(4 * rs) + where[w]);
    dam = read_file(p, &fsz);
    t_open(t, 0, 0, 1);
    assert_int_equal(stats(t).corrupt, 1);
    assert_int_equal(stats(t).truncated_bytes, 0);
    n = drain(t, ids, idx, 16);
    assert_int_equal(n, 9);
    for (i = 0; i < 9; i++)
      assert_int_equal(idx[i], i < 4 ? i : i + 1);
    /* The damaged bytes are kept, exactly. */
    assert_int_equal(list_dir(cdir, ".rec", names, 8), 1);
    snprintf(cname, sizeof(cname), "0000000000000001-%zu.rec", 4 * rs);
    assert_string_equal(names[0], cname);
    snprintf(cp, sizeof(cp), "%s/%s", cdir, cname);
    saved = read_file(cp, &sz);
    assert_int_equal(sz, rs);
    assert_memory_equal(saved, dam + 4 * rs, rs);
    assert_memory_not_equal(saved, orig + 4 * rs, rs);
    free(saved);
    free(orig);
    free(dam);
    t_close(t);
    rm_rf(t->dir);
  }
  t_free(t);
}

/* Issue 15: a complete, fsync'ed LAST record whose bytes went bad is not a
 * torn tail (its length fits in the file): it is moved to corrupt/ and
 * counted like one in the middle, never silently cut off. */
static void
test_corrupt_last_record(void **state)
{
  struct t *t = t_new();
  const size_t len = 200, rs = HDR + len;
  static const off_t where[] = {HDR + 50, 12, HDR + len - 1};
  uint64_t ids[16];
  char p[256], cdir[256], cname[64], names[8][64], cp[400];
  size_t w, sz, fsz;
  char *dam, *saved;

  (void)state;
  snprintf(cdir, sizeof(cdir), "%s/corrupt", t->dir);
  for (w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
    make_spool(t, 10, len, 0);
    spath(t, p, sizeof(p), "0000000000000001.seg");
    /* Damage record 10, the last one (payload, crc, last byte). */
    flip(p, (off_t)(9 * rs) + where[w]);
    dam = read_file(p, &fsz);
    t_open(t, 0, 0, 1);
    assert_int_equal(stats(t).corrupt, 1);
    assert_int_equal(stats(t).truncated_bytes, 0);
    assert_int_equal(drain(t, ids, NULL, 16), 9);
    assert_int_equal(list_dir(cdir, ".rec", names, 8), 1);
    snprintf(cname, sizeof(cname), "0000000000000001-%zu.rec", 9 * rs);
    assert_string_equal(names[0], cname);
    snprintf(cp, sizeof(cp), "%s/%s", cdir, cname);
    saved = read_file(cp, &sz);
    assert_int_equal(sz, rs);
    assert_memory_equal(saved, dam + 9 * rs, rs);
    free(saved);
    free(dam);
    /* The bad bytes left the segment: a reopen finds nothing more. */
    t_close(t);
    t_open(t, 0, 0, 1);
    assert_int_equal(stats(t).corrupt, 0);
    assert_int_equal(stats(t).truncated_bytes, 0);
    assert_int_equal(file_size(p), 9 * rs);
    t_close(t);
    rm_rf(t->dir);
  }
  t_free(t);
}

static void
test_garbage_appended(void **state)
{
  struct t *t = t_new();
  uint64_t ids[16];
  char p[256], junk[100];
  size_t i;

  (void)state;
  make_spool(t, 6, 100, 0);
  spath(t, p, sizeof(p), "0000000000000001.seg");
  for (i = 0; i < sizeof(junk); i++)
    junk[i] = (char)(i * 37 + 11);
  /* Starts like a record header: the magic, then nonsense. */
  junk[0] = (char)0xd3;
  junk[1] = 0x53;
  junk[2] = 0x4c;
  junk[3] = 0x01;
  write_file(p, junk, sizeof(junk), O_APPEND);
  t_open(t, 0, 0, 1);
  assert_int_equal(stats(t).truncated_bytes, sizeof(junk));
  assert_int_equal(stats(t).corrupt, 0);
  assert_int_equal(drain(t, ids, NULL, 16), 6);
  assert_int_equal(file_size(p), 6 * (HDR + 100));
  t_free(t);
}

static void
test_empty_and_zero_files(void **state)
{
  struct t *t = t_new();
  uint64_t ids[32];
  char p[256], d[256];
  struct sl_spool_rec r;

  (void)state;
  /* A lone zero-length segment and a zero-length cursor. */
  snprintf(d, sizeof(d), "%s/spool", t->dir);
  assert_int_equal(mkdir(t->dir, 0755), 0);
  assert_int_equal(mkdir(d, 0755), 0);
  spath(t, p, sizeof(p), "0000000000000005.seg");
  write_file(p, "", 0, O_TRUNC);
  spath(t, p, sizeof(p), "cursor");
  write_file(p, "", 0, O_TRUNC);
  t_open(t, 0, 0, 1);
  assert_int_equal(t_next(t, &r), SL_EAGAIN);
  assert_int_equal(count_segs(t), 0);
  append_wait(t, 0, 1, 64);
  assert_int_equal(drain(t, ids, NULL, 32), 1);
  /* Ids never go below a name seen on disk. */
  assert_true(ids[0] >= 1);
  t_close(t);
  rm_rf(t->dir);

  /* An empty segment between full ones, other files ignored. */
  make_spool(t, 9, 1000, 4096); /* segments 1, 4, 7 */
  spath(t, p, sizeof(p), "0000000000000005.seg");
  write_file(p, "", 0, O_TRUNC);
  spath(t, p, sizeof(p), "notes.txt");
  write_file(p, "hello", 5, O_TRUNC);
  spath(t, p, sizeof(p), "XYZ.seg");
  write_file(p, "hello", 5, O_TRUNC);
  t_open(t, 4096, 0, 1);
  assert_int_equal(drain(t, ids, NULL, 32), 9);
  assert_int_equal(stats(t).corrupt, 0);
  assert_int_equal(stats(t).truncated_bytes, 0);
  spath(t, p, sizeof(p), "0000000000000005.seg");
  assert_true(file_size(p) < 0);
  t_free(t);
}

static void
test_corrupt_cursor(void **state)
{
  struct t *t = t_new();
  uint64_t ids[32], got[32];
  unsigned char junk[24];
  char p[256];
  size_t i, n;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 10, 100);
  n = drain(t, ids, NULL, 32);
  for (i = 0; i < 4; i++)
    sl_spool_release(t->s, ids[i]);
  t_close(t);
  spath(t, p, sizeof(p), "cursor");
  for (i = 0; i < sizeof(junk); i++)
    junk[i] = (unsigned char)(i * 91 + 7);
  write_file(p, junk, sizeof(junk), O_TRUNC);
  t_open(t, 0, 0, 1);
  /* Cursor lost: everything on disk comes back (harmless repeats). */
  n = drain(t, got, NULL, 32);
  assert_int_equal(n, 10);
  for (i = 4; i < 10; i++)
    assert_true(contains(got, n, ids[i]));
  t_close(t);

  /* A cursor with one flipped bit, and no cursor at all. */
  flip(p, 10);
  t_open(t, 0, 0, 1);
  assert_int_equal(drain(t, got, NULL, 32), 10);
  t_close(t);
  assert_int_equal(unlink(p), 0);
  t_open(t, 0, 0, 1);
  assert_int_equal(drain(t, got, NULL, 32), 10);
  t_free(t);
}

static void
test_corrupt_on_read(void **state)
{
  struct t *t = t_new();
  const size_t len = 300, rs = HDR + len;
  uint64_t ids[8], idx[8];
  char p[256], cp[256];
  size_t n;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 5, len);
  /* Records are read ahead as soon as they are durable; reopen so that
   * the bytes change after the scan at open and before the first read. */
  t_close(t);
  t_open(t, 0, 0, 1);
  spath(t, p, sizeof(p), "0000000000000001.seg");
  flip(p, (off_t)(2 * rs + HDR + 5));
  n = drain(t, ids, idx, 8);
  assert_int_equal(n, 4);
  assert_int_equal(idx[2], 3);
  assert_int_equal(stats(t).corrupt, 1);
  assert_int_equal(stats(t).records, 4);
  snprintf(cp, sizeof(cp), "%s/corrupt/0000000000000001-%zu.rec", t->dir,
           2 * rs);
  assert_int_equal(file_size(cp), rs);
  t_free(t);
}

/* ---- random damage ------------------------------------------------------ */

struct wrec {
  size_t seg;     /* index into the sorted segment list */
  uint64_t off, size, idx;
};

static uint64_t rng = 0x1234567887654321ull;

static int
noop_fsync(int fd)
{
  (void)fd;
  return 0;
}

static uint64_t
rnd(uint64_t n)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return n ? rng % n : 0;
}

static void
test_random_damage(void **state)
{
  struct t *t = t_new();
  char sdir[256], names[64][64], p[400];
  struct wrec w[64];
  uint64_t ids[64], idx[64];
  int devnull = open("/dev/null", O_WRONLY);
  int it, n_corrupt = 0, n_trunc = 0, n_lost = 0;

  (void)state;
  sl_log_set_fd(devnull);
  /* Recovery logic is under test here, not the disk: skip real fsyncs
   * (a group over many tiny segments costs two per segment). */
  sl_spool__test_fsync = noop_fsync;
  snprintf(sdir, sizeof(sdir), "%s/spool", t->dir);
  for (it = 0; it < 200; it++) {
    uint64_t segb = 512 + rnd(4096), lens[40];
    size_t k = 3 + (size_t)rnd(30), nseg, nw = 0, i, n, dseg, kind;
    size_t first_unreleased;
    uint64_t dlo, dhi;
    unsigned char seen[64], released[64];
    struct ack *a = calloc(k, sizeof(*a));

    assert_non_null(a);
    t_open(t, segb, 0, 1);
    for (i = 0; i < k; i++) {
      lens[i] = 8 + rnd(1500);
      assert_int_equal(append_idx(t, i, lens[i], &a[i]), 0);
    }
    RUN_UNTIL(t, all_done(a, k), WAIT_MS);
    for (i = 0; i < k; i++)
      assert_int_equal(a[i].status, 0);
    free(a);
    /* Half the time, release a random subset (moves the cursor, deletes
     * segments, makes damage below the cursor possible). */
    memset(released, 0, sizeof(released));
    if (rnd(2)) {
      n = drain(t, ids, idx, 64);
      assert_int_equal(n, k);
      for (i = 0; i < k; i++)
        if (rnd(3) == 0 || i < rnd(k)) {
          sl_spool_release(t->s, ids[i]);
          released[idx[i]] = 1;
        }
    }
    t_close(t);

    /* Where every record lives, by reading the documented layout. */
    nseg = list_dir(sdir, ".seg", names, 64);
    for (i = 0; i < nseg; i++) {
      size_t sz, off = 0;
      char *b;
      snprintf(p, sizeof(p), "%s/%s", sdir, names[i]);
      b = read_file(p, &sz);
      while (off < sz) {
        uint32_t len;
        memcpy(&len, b + off + 4, 4);
        w[nw].seg = i;
        w[nw].off = off;
        w[nw].size = HDR + len;
        memcpy(&w[nw].idx, b + off + HDR, 8);
        assert_true(w[nw].idx < k);
        nw++;
        off += HDR + len;
      }
      assert_int_equal(off, sz);
      free(b);
    }
    /* Fully released segments are gone; the others are all there. */
    for (i = 0; i < k; i++) {
      size_t j, found = 0;
      for (j = 0; j < nw; j++)
        found += w[j].idx == i;
      assert_true(found == 1 || (found == 0 && released[i]));
    }
    if (nseg == 0) {
      rm_rf(t->dir);
      continue;
    }

    /* One random damage. */
    dseg = (size_t)rnd(nseg);
    snprintf(p, sizeof(p), "%s/%s", sdir, names[dseg]);
    {
      size_t sz;
      char *b = read_file(p, &sz);
      kind = (size_t)rnd(4);
      if (kind == 0) {          /* flip 1..8 bytes within 64 */
        size_t span = 1 + (size_t)rnd(64), nf = 1 + (size_t)rnd(8), f;
        dlo = rnd(sz);
        if (dlo + span > sz)
          span = sz - dlo;
        dhi = dlo + span;
        for (f = 0; f < nf; f++)
          b[dlo + rnd(span)] ^= (char)(1 + rnd(255));
        write_file(p, b, sz, O_TRUNC);
      } else if (kind == 1) {   /* truncate */
        dlo = rnd(sz);
        dhi = UINT64_MAX;
        assert_int_equal(truncate(p, (off_t)dlo), 0);
      } else if (kind == 2) {   /* garbage appended */
        size_t g = 1 + (size_t)rnd(200), f;
        char junk[200];
        for (f = 0; f < g; f++)
          junk[f] = (char)rnd(256);
        dlo = sz;
        dhi = UINT64_MAX;
        write_file(p, junk, g, O_APPEND);
      } else {                  /* zero a range */
        size_t span = 1 + (size_t)rnd(100);
        dlo = rnd(sz);
        if (dlo + span > sz)
          span = sz - dlo;
        dhi = dlo + span;
        memset(b + dlo, 0, span);
        write_file(p, b, sz, O_TRUNC);
      }
      free(b);
    }

    for (first_unreleased = 0; first_unreleased < k; first_unreleased++)
      if (!released[first_unreleased])
        break;
    t_open(t, segb, 0, 1);
    n = drain(t, ids, idx, 64);
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < n; i++) {
      /* drain() checked the bytes; no duplicates, nothing invented. */
      assert_true(idx[i] < k);
      assert_false(seen[idx[i]]);
      /* Below the saved cursor: released, never handed out again. */
      assert_true(idx[i] >= first_unreleased || !released[idx[i]]);
      seen[idx[i]] = 1;
      assert_int_equal(ids[i], idx[i] + 1);
    }
    for (i = 0; i < nw; i++) {
      int hit = w[i].seg == dseg && w[i].off < dhi &&
                w[i].off + w[i].size > dlo;
      if (!hit && !seen[w[i].idx] && !released[w[i].idx])
        fail_msg("iteration %d kind %zu: record %zu lost (seg %zu off %"
                 PRIu64 ", damage %zu [%" PRIu64 ",%" PRIu64 "))",
                 it, kind, i, w[i].seg, w[i].off, dseg, dlo, dhi);
    }
    {
      char cdir[256], cn[64][64];
      snprintf(cdir, sizeof(cdir), "%s/corrupt", t->dir);
      assert_int_equal(list_dir(cdir, ".rec", cn, 64), stats(t).corrupt);
      n_corrupt += stats(t).corrupt > 0;
      n_trunc += stats(t).truncated_bytes > 0;
      n_lost += k - n;
    }
    t_close(t);
    /* Repaired: a second open returns the same records. */
    t_open(t, segb, 0, 1);
    assert_int_equal(stats(t).truncated_bytes, 0);
    assert_int_equal(drain(t, ids, NULL, 64), n);
    t_close(t);
    rm_rf(t->dir);
  }
  printf("random damage: 200 rounds, %d with records moved to corrupt/, "
         "%d with a torn tail cut, %d records gone (damaged or released)\n",
         n_corrupt, n_trunc, n_lost);
  sl_log_set_fd(2);
  sl_spool__test_fsync = NULL;
  close(devnull);
  t_free(t);
}

/* ---- asynchronous reads ------------------------------------------------- */

static void
on_ready(void *arg)
{
  struct t *t = arg;

  assert_int_equal(t->in_next, 0);
  t->readies++;
}

static int
next_now(struct t *t, struct sl_spool_rec *r)
{
  int rc;

  t->in_next = 1;
  rc = sl_spool_next(t->s, r);
  t->in_next = 0;
  return rc;
}

/* sl_spool_next never reads the disk itself: records on disk at open are
 * unread until a read job (threadpool) brought them, which the ready
 * callback announces; then they come out in order without the loop. */
static void
test_read_off_loop(void **state)
{
  struct t *t = t_new();
  struct sl_spool_rec r;
  uint64_t k, last = 0;
  int i;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 20, 300);
  t_close(t);
  t_open(t, 0, 0, 1);
  sl_spool_set_ready_cb(t->s, on_ready, t);
  assert_int_equal(sl_spool_unread(t->s), 20);
  assert_int_equal(next_now(t, &r), SL_EAGAIN);
  assert_int_equal(t->readies, 0);
  assert_int_equal(sl_spool_unread(t->s), 20);
  RUN_UNTIL(t, t->readies > 0, WAIT_MS);
  assert_int_equal(t->readies, 1);
  for (i = 0; i < 20; i++) {
    assert_int_equal(next_now(t, &r), 0);
    assert_true(check_payload(r.data, r.len, &k));
    assert_int_equal(k, (uint64_t)i);
    assert_int_equal(r.nevents, (uint32_t)(k % 7 + 1));
    assert_true(r.id > last);
    last = r.id;
    free(r.data);
    assert_int_equal(sl_spool_unread(t->s), (uint64_t)(19 - i));
  }
  assert_int_equal(next_now(t, &r), SL_EAGAIN);
  /* New durable records are read ahead without being asked. */
  append_wait(t, 20, 3, 300);
  RUN_UNTIL(t, t->readies > 1, WAIT_MS);
  for (i = 0; i < 3; i++) {
    assert_int_equal(next_now(t, &r), 0);
    assert_true(check_payload(r.data, r.len, &k));
    assert_int_equal(k, (uint64_t)(20 + i));
    sl_spool_release(t->s, r.id);
    free(r.data);
  }
  t_close(t);
  t_free(t);
}

/* Closing while a read job runs waits for it; what was read and not
 * taken is not lost: it comes back at the next open. */
static void
test_close_while_reading(void **state)
{
  struct t *t = t_new();
  struct sl_spool_rec r;
  uint64_t ids[64], idx[64];
  size_t n, i;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 40, 100 << 10);
  /* Take two, leave the rest read ahead or being read. The released
   * one is above the cursor (the first is not released), so it comes
   * back too: a cursor only moves over a released prefix. */
  assert_int_equal(t_next(t, &r), 0);
  free(r.data);
  assert_int_equal(t_next(t, &r), 0);
  sl_spool_release(t->s, r.id);
  free(r.data);
  assert_true(sl_spool_unread(t->s) > 0);
  t_close(t);
  t_open(t, 0, 0, 1);
  n = drain(t, ids, idx, 64);
  assert_int_equal(n, 40);
  for (i = 0; i < n; i++)
    assert_int_equal(idx[i], i);
  t_close(t);
  t_free(t);
}

/* More than one read job's worth (2 MiB / 64 records) and more than the
 * read-ahead bound (2 MiB): every record once, in order. */
static void
test_read_big_backlog_in_order(void **state)
{
  struct t *t = t_new();
  static uint64_t ids[400], idx[400];
  size_t n, i;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 300, 1000);
  append_wait(t, 300, 24, 1 << 20);
  n = drain(t, ids, idx, 400);
  assert_int_equal(n, 324);
  for (i = 0; i < n; i++)
    assert_int_equal(idx[i], i);
  t_close(t);
  t_free(t);
}

/* ---- kill -9 ------------------------------------------------------------ */

/* Child side: append forever, report each acked payload index on a pipe. */
struct crash {
  struct sl_spool *s;
  int wfd;
  uint64_t next;
  char *buf;
};

static struct crash *crash_ctx;

#define RELEASED (1ull << 63)

static void crash_append(void);

/* Consume like the indexer: release three records out of four (the
 * cursor moves, segments get deleted), keep the rest. Runs when the
 * reader has records ready, and after every ack. */
static void
crash_consume(void *arg)
{
  struct sl_spool_rec r;

  (void)arg;
  while (sl_spool_next(crash_ctx->s, &r) == 0) {
    uint64_t k;
    memcpy(&k, r.data, 8);
    free(r.data);
    if (k % 4 == 0)
      continue;
    sl_spool_release(crash_ctx->s, r.id);
    k |= RELEASED;
    if (write(crash_ctx->wfd, &k, 8) != 8)
      _exit(3);
  }
}

static void
crash_ack(void *arg, int status)
{
  uint64_t idx = (uint64_t)(uintptr_t)arg;

  if (status == 0 && write(crash_ctx->wfd, &idx, 8) != 8)
    _exit(3);
  crash_consume(NULL);
  crash_append();
}

static void
crash_append(void)
{
  struct crash *c = crash_ctx;
  size_t len = 8 + (size_t)((c->next * 7919) % (48 << 10));

  fill(c->buf, len, c->next);
  if (sl_spool_append(c->s, c->buf, len, (uint32_t)(c->next % 7 + 1),
                      crash_ack, (void *)(uintptr_t)c->next) == 0)
    c->next++;
}

static void
crash_child(const char *dir, int wfd, uint64_t first)
{
  struct sl_spool_opts o;
  struct crash c;
  uv_loop_t loop;
  char err[256];
  int i;

  memset(&o, 0, sizeof(o));
  o.data_dir = dir;
  o.segment_bytes = 256 << 10;
  o.commit_interval_ms = 1;
  uv_loop_init(&loop);
  memset(&c, 0, sizeof(c));
  c.wfd = wfd;
  c.next = first;
  c.buf = malloc(64 << 10);
  crash_ctx = &c;
  if (c.buf == NULL || sl_spool_open(&loop, &o, &c.s, err, sizeof(err)))
    _exit(2);
  sl_spool_set_ready_cb(c.s, crash_consume, NULL);
  for (i = 0; i < 16; i++)
    crash_append();
  uv_run(&loop, UV_RUN_DEFAULT);
  _exit(1);
}

static void
note(uint64_t v, unsigned char *acked, unsigned char *released)
{
  uint64_t k = v & ~RELEASED;

  assert_true(k < 20000);
  if (v & RELEASED)
    released[k] = 1;
  else
    acked[k] = 1;
}

static void
test_kill9(void **state)
{
  struct t *t = t_new();
  static uint64_t ids[20000], idx[20000];
  static unsigned char acked[20000], seen[20000], released[20000];
  uint64_t first = 0;
  int round;

  (void)state;
  memset(acked, 0, sizeof(acked));
  memset(released, 0, sizeof(released));
  for (round = 0; round < 5; round++) {
    size_t want = 20 + (size_t)(rnd(300)), got = 0, n, i;
    int pfd[2], st;
    uint64_t v;
    pid_t pid;

    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(pfd[0]);
      crash_child(t->dir, pfd[1], first);
    }
    close(pfd[1]);
    /* Kill it in the middle of its work: after `want` acks. */
    while (got < want && read(pfd[0], &v, 8) == 8) {
      note(v, acked, released);
      got++;
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    while (read(pfd[0], &v, 8) == 8)
      note(v, acked, released);
    close(pfd[0]);

    /* Every acked record is back, byte for byte, once. */
    t_open(t, 256 << 10, 0, 1);
    n = drain(t, ids, idx, 20000);
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < n; i++) {
      assert_true(idx[i] < 20000);
      assert_false(seen[idx[i]]);
      seen[idx[i]] = 1;
      if (idx[i] + 1 > first)
        first = idx[i] + 1;
    }
    for (i = 0; i < 20000; i++)
      if (acked[i] && !released[i] && !seen[i])
        fail_msg("round %d: acked record %zu lost", round, i);
    /* What comes back is handed out again: treat it as not released. */
    for (i = 0; i < n; i++)
      released[idx[i]] = 0;
    assert_int_equal(stats(t).corrupt, 0);
    t_close(t);
    /* Next round's child appends after everything (acked or not). */
    first += 1000;
  }
  t_free(t);
}

/* ---- disk errors -------------------------------------------------------- */

static void
test_enospc_tmpfs(void **state)
{
  struct t *t = t_new();
  struct ack a[200], b;
  char mnt[128], d[256], names[64][64], p[400];
  uint64_t ids[200], sum = 0;
  size_t i, nok = 0, nseg, n;

  (void)state;
  snprintf(mnt, sizeof(mnt), "%s/mnt", t->base);
  assert_int_equal(mkdir(mnt, 0755), 0);
  if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
    fprintf(stderr, "tmpfs mount failed (%s): skipped\n", strerror(errno));
    t_free(t);
    skip();
  }
  snprintf(t->dir, sizeof(t->dir), "%s/data", mnt);
  t_open(t, 128 << 10, 100 << 20, 1);
  for (i = 0; i < 200; i++) {
    assert_int_equal(append_idx(t, i, 16 << 10, &a[i]), 0);
    RUN_UNTIL(t, a[i].done, WAIT_MS);
    assert_true(a[i].done);
    if (a[i].status != 0)
      break;
    nok++;
  }
  assert_true(i < 200);
  assert_int_equal(a[i].status, SL_ENOSPC);
  assert_int_equal(stats(t).disk_full, 1);
  assert_true(sl_spool_is_full(t->s));
  assert_int_equal(append_idx(t, 500, 100, &b), SL_EAGAIN);
  /* No partial record left behind: files hold exactly the durable ones. */
  snprintf(d, sizeof(d), "%s/spool", t->dir);
  nseg = list_dir(d, ".seg", names, 64);
  for (i = 0; i < nseg; i++) {
    snprintf(p, sizeof(p), "%s/%s", d, names[i]);
    sum += (uint64_t)file_size(p);
  }
  assert_int_equal(sum, stats(t).bytes);
  assert_int_equal(stats(t).records, nok);

  /* Consume everything: segments go, space comes back, the probe fires. */
  n = drain(t, ids, NULL, 200);
  assert_int_equal(n, nok);
  for (i = 0; i < n; i++)
    sl_spool_release(t->s, ids[i]);
  RUN_UNTIL(t, t->resumes == 1, WAIT_MS);
  assert_int_equal(t->resumes, 1);
  assert_int_equal(stats(t).disk_full, 0);
  assert_int_equal(append_idx(t, 500, 16 << 10, &b), 0);
  RUN_UNTIL(t, b.done, WAIT_MS);
  assert_int_equal(b.status, 0);
  t_close(t);
  t_open(t, 128 << 10, 100 << 20, 1);
  n = drain(t, ids, NULL, 200);
  assert_int_equal(n, 1);
  t_close(t);

  /* Restart on a completely full disk: open still works (the cursor save
   * fails and is logged), the data is there. */
  {
    char filler[300], blk[4096];
    int fd;
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    memset(blk, 'x', sizeof(blk));
    while (write(fd, blk, sizeof(blk)) > 0)
      ;
    close(fd);
    t_open(t, 128 << 10, 100 << 20, 1);
    assert_int_equal(drain(t, ids, NULL, 200), 1);
    t_close(t);
    assert_int_equal(unlink(filler), 0);
  }
  umount2(mnt, MNT_DETACH);
  t_free(t);
}

static int
fail_fsync(int fd)
{
  (void)fd;
  errno = EIO;
  return -1;
}

static int pw_calls;

/* Second call writes half and returns; the third hits ENOSPC. */
static ssize_t
short_pwrite(int fd, const void *buf, size_t n, off_t off)
{
  pw_calls++;
  if (pw_calls == 2)
    return pwrite(fd, buf, n / 2, off);
  if (pw_calls >= 3) {
    errno = ENOSPC;
    return -1;
  }
  return pwrite(fd, buf, n, off);
}

static void
test_eio_on_fsync(void **state)
{
  struct t *t = t_new();
  struct ack a[4];
  uint64_t ids[8], idx[8];
  char p[256];
  size_t i;

  (void)state;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 3, 100);
  sl_spool__test_fsync = fail_fsync;
  assert_int_equal(append_idx(t, 3, 100, &a[0]), 0);
  assert_int_equal(append_idx(t, 4, 100, &a[1]), 0);
  RUN_UNTIL(t, all_done(a, 2), WAIT_MS);
  sl_spool__test_fsync = NULL;
  assert_int_equal(a[0].status, SL_EIO);
  assert_int_equal(a[1].status, SL_EIO);
  assert_int_equal(stats(t).disk_full, 1);
  assert_int_equal(stats(t).appends, 3);
  assert_int_equal(append_idx(t, 5, 100, &a[2]), SL_EAGAIN);
  spath(t, p, sizeof(p), "0000000000000001.seg");
  assert_int_equal(file_size(p), 3 * (HDR + 100));
  assert_int_equal(drain(t, ids, idx, 8), 3);
  /* The probe clears the latch after a second. */
  RUN_UNTIL(t, t->resumes == 1, WAIT_MS);
  assert_int_equal(t->resumes, 1);
  assert_int_equal(append_idx(t, 3, 100, &a[3]), 0);
  RUN_UNTIL(t, a[3].done, WAIT_MS);
  assert_int_equal(a[3].status, 0);
  t_close(t);
  t_open(t, 0, 0, 1);
  assert_int_equal(drain(t, ids, idx, 8), 4);
  for (i = 0; i < 4; i++)
    assert_int_equal(idx[i], i);
  t_free(t);
}

static int pr_fail;      /* the read hook fails with EIO */
static int pr_calls;     /* read attempts seen by the hook */

static ssize_t
eio_preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
  __atomic_fetch_add(&pr_calls, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&pr_fail, __ATOMIC_SEQ_CST)) {
    errno = EIO;
    return -1;
  }
  return preadv(fd, iov, cnt, off);
}

/* A read error that persists must not make the reader spin: the consumer
 * polls sl_spool_next at every loop iteration (as the collector's check
 * handle does), yet only a few reads are tried, on a backoff. When the
 * disk recovers the retry delivers and the ready callback announces it. */
static void
test_read_error_backoff(void **state)
{
  struct t *t = t_new();
  struct sl_spool_rec r;
  struct timespec ts;
  uint64_t k, dl, t0;
  int calls;

  (void)state;
  clock_gettime(CLOCK_REALTIME, &ts);
  t0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  t_open(t, 0, 0, 1);
  append_wait(t, 0, 3, 100);
  t_close(t);
  /* Failing before the open: the read-ahead starts at open, and a read
   * that completed before the hook was set would hand the record out. */
  pr_calls = 0;
  pr_fail = 1;
  sl_spool__test_preadv = eio_preadv;
  t_open(t, 0, 0, 1);
  sl_spool_set_ready_cb(t->s, on_ready, t);
  dl = mono_ms() + 300;
  uv_timer_start(&t->tick, on_tick, 1, 1);
  while (mono_ms() < dl) {
    assert_int_equal(next_now(t, &r), SL_EAGAIN);
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  uv_timer_stop(&t->tick);
  calls = __atomic_load_n(&pr_calls, __ATOMIC_SEQ_CST);
  assert_true(calls >= 1);
  assert_true(calls < 20);
  assert_true(stats(t).read_errors >= 1);
  assert_int_equal(t->readies, 0);
  assert_int_equal(sl_spool_unread(t->s), 3);
  /* The disk recovers: the reader retries by itself, without next(). */
  __atomic_store_n(&pr_fail, 0, __ATOMIC_SEQ_CST);
  RUN_UNTIL(t, t->readies > 0, WAIT_MS);
  sl_spool__test_preadv = NULL;
  assert_int_equal(t->readies, 1);
  assert_int_equal(next_now(t, &r), 0);
  assert_true(check_payload(r.data, r.len, &k));
  assert_int_equal(k, 0);
  /* The header's append time comes with the record. */
  clock_gettime(CLOCK_REALTIME, &ts);
  assert_true(r.append_ns >= t0);
  assert_true(r.append_ns <=
              (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
  free(r.data);
  t_close(t);
  t_free(t);
}

static void
test_short_write_across_segments(void **state)
{
  struct t *t = t_new();
  const size_t rs = HDR + 100;
  struct ack a[6];
  uint64_t ids[8];
  char p[256];
  size_t i;

  (void)state;
  t_open(t, 2 * rs, 0, 1);
  pw_calls = 0;
  sl_spool__test_pwrite = short_pwrite;
  for (i = 0; i < 6; i++)
    assert_int_equal(append_idx(t, i, 100, &a[i]), 0);
  RUN_UNTIL(t, all_done(a, 6), WAIT_MS);
  sl_spool__test_pwrite = NULL;
  /* One group, three segments: the first made it, the rest did not. */
  assert_int_equal(a[0].status, 0);
  assert_int_equal(a[1].status, 0);
  for (i = 2; i < 6; i++)
    assert_int_equal(a[i].status, SL_ENOSPC);
  assert_int_equal(count_segs(t), 1);
  spath(t, p, sizeof(p), "0000000000000001.seg");
  assert_int_equal(file_size(p), 2 * rs);
  assert_int_equal(drain(t, ids, NULL, 8), 2);
  RUN_UNTIL(t, t->resumes == 1, WAIT_MS);
  assert_int_equal(t->resumes, 1);
  t_free(t);
}

static atomic_int gate_open, gate_entered;

/* Holds the commit in its fsync until the test opens the gate, then
 * fails it. */
static int
gated_eio_fsync(int fd)
{
  (void)fd;
  atomic_store(&gate_entered, 1);
  while (!atomic_load(&gate_open))
    usleep(1000);
  errno = EIO;
  return -1;
}

static void
test_failure_with_full_pending(void **state)
{
  struct t *t = t_new();
  const size_t len = 1u << 20;
  size_t n = SL_SPOOL_PENDING_MAX / (len + HDR) + 2, i, ok = 0;
  struct ack first, *a = calloc(n, sizeof(*a));
  int rc = 0;

  (void)state;
  assert_non_null(a);
  t_open(t, 0, 0, 1);
  atomic_store(&gate_open, 0);
  atomic_store(&gate_entered, 0);
  sl_spool__test_fsync = gated_eio_fsync;
  assert_int_equal(append_idx(t, 0, 100, &first), 0);
  RUN_UNTIL(t, atomic_load(&gate_entered), WAIT_MS);
  assert_true(atomic_load(&gate_entered));
  /* While that group hangs in fsync, fill the pending buffer. */
  for (i = 0; i < n; i++) {
    rc = append_idx(t, i + 1, len, &a[i]);
    if (rc != 0)
      break;
    ok++;
  }
  assert_int_equal(rc, SL_EAGAIN);
  assert_true(sl_spool_is_full(t->s));
  atomic_store(&gate_open, 1);
  RUN_UNTIL(t, first.done && all_done(a, ok), WAIT_MS);
  sl_spool__test_fsync = NULL;
  /* The group and everything queued behind it failed... */
  assert_int_equal(first.status, SL_EIO);
  for (i = 0; i < ok; i++)
    assert_int_equal(a[i].status, SL_EIO);
  assert_int_equal(stats(t).records, 0);
  assert_int_equal(stats(t).bytes, 0);
  /* ...and the spool takes appends again after the probe. */
  RUN_UNTIL(t, t->resumes == 1, WAIT_MS);
  assert_int_equal(t->resumes, 1);
  assert_false(sl_spool_is_full(t->s));
  assert_int_equal(append_idx(t, 500, 100, &first), 0);
  RUN_UNTIL(t, first.done, WAIT_MS);
  assert_int_equal(first.status, 0);
  free(a);
  t_free(t);
}

/* ---- throughput (printed, not asserted) --------------------------------- */

struct tp {
  struct t *t;
  size_t total, appended, acked, failed;
  char *payload;
};

static void
tp_ack(void *arg, int status)
{
  struct tp *tp = arg;

  tp->acked++;
  if (status != 0)
    tp->failed++;
  if (tp->appended < tp->total &&
      sl_spool_append(tp->t->s, tp->payload, 64 << 10, 100, tp_ack, tp) == 0)
    tp->appended++;
}

static void
throughput(size_t inflight)
{
  struct t *t = t_new();
  struct tp tp;
  uint64_t t0, t1, f0, f1;
  double sec;
  size_t i;

  memset(&tp, 0, sizeof(tp));
  tp.t = t;
  tp.total = inflight >= 8 ? 2048 : 256;
  tp.payload = malloc(64 << 10);
  assert_non_null(tp.payload);
  fill(tp.payload, 64 << 10, 1);
  t_open(t, 64ull << 20, 2ull << 30, 2);
  f0 = stats(t).fsyncs;
  t0 = mono_ms();
  /* `inflight` appends waiting at a time, like that many connections
   * each waiting for its ack. */
  for (i = 0; i < inflight; i++) {
    assert_int_equal(sl_spool_append(t->s, tp.payload, 64 << 10, 100,
                                     tp_ack, &tp), 0);
    tp.appended++;
  }
  RUN_UNTIL(t, tp.acked == tp.total, 120000);
  t1 = mono_ms();
  f1 = stats(t).fsyncs;
  assert_int_equal(tp.acked, tp.total);
  assert_int_equal(tp.failed, 0);
  sec = (double)(t1 - t0) / 1000.0;
  if (sec <= 0)
    sec = 0.001;
  printf("spool throughput (%zu in flight, 2 ms window): %zu x 64 KiB in "
         "%.3f s: %.0f appends/s, %.1f MiB/s, %" PRIu64 " fsyncs "
         "(%.0f/s, %.1f appends/fsync)\n",
         inflight, tp.total, sec, (double)tp.total / sec,
         (double)tp.total * 64 / 1024 / sec, f1 - f0,
         (double)(f1 - f0) / sec, (double)tp.total / (double)(f1 - f0));
  free(tp.payload);
  t_free(t);
}

static void
test_throughput(void **state)
{
  (void)state;
  throughput(256);
  throughput(8);
  throughput(1);
}

/* ---- format versions ---------------------------------------------------- */

/* A format-1 record exactly as sluice before format 2 wrote it. */
static size_t
v1_record(unsigned char *out, uint64_t id, const char *payload,
          uint32_t nevents)
{
  uint32_t len = (uint32_t)strlen(payload), crc;
  uint64_t t_ns = 1714564800000000000ull;
  unsigned char *h = out;
  int i;

  for (i = 0; i < 4; i++) {
    h[0 + i] = (unsigned char)(0x014c53d3u >> (8 * i));
    h[4 + i] = (unsigned char)(len >> (8 * i));
    h[8 + i] = (unsigned char)(nevents >> (8 * i));
  }
  for (i = 0; i < 8; i++) {
    h[16 + i] = (unsigned char)(id >> (8 * i));
    h[24 + i] = (unsigned char)(t_ns >> (8 * i));
  }
  crc = (uint32_t)crc32(0, h, 12);
  crc = (uint32_t)crc32(crc, h + 16, 16);
  crc = (uint32_t)crc32(crc, (const unsigned char *)payload, len);
  for (i = 0; i < 4; i++)
    h[12 + i] = (unsigned char)(crc >> (8 * i));
  memcpy(h + HDR, payload, len);
  return HDR + len;
}

#define V1_EV1 "{\"@timestamp\":\"2024-05-01T12:00:00.000Z\"," \
               "\"event\":{\"id\":\"a1\",\"dataset\":\"app\"}}"
#define V1_EV2 "{\"@timestamp\":\"2024-05-02T08:00:00.000Z\"," \
               "\"event\":{\"id\":\"b2\"},\"message\":\"x\"}"
#define V1_REC1 "{\"create\":{\"_index\":\"logs-app-default\"," \
                "\"_id\":\"a1\"}}\n" V1_EV1 "\n"
#define V1_REC2 "{\"create\":{\"_index\":\"logs-generic-default\"," \
                "\"_id\":\"b2\"}}\n" V1_EV2 "\n"

/* A spool written by the previous format: two v1 records in one segment,
 * with garbage between them that recovery must skip by the v1 magic. */
static void
write_v1_spool(struct t *t)
{
  unsigned char buf[2048];
  char p[256];
  size_t n;

  snprintf(p, sizeof(p), "%s", t->dir);
  assert_int_equal(mkdir(p, 0755), 0);
  spath(t, p, sizeof(p), "");
  assert_int_equal(mkdir(p, 0755), 0);
  n = v1_record(buf, 1, V1_REC1, 1);
  memcpy(buf + n, "\xd3\x53\x4cjunk", 7);
  n += 7;
  n += v1_record(buf + n, 2, V1_REC2, 1);
  spath(t, p, sizeof(p), "0000000000000001.seg");
  write_file(p, buf, n, O_TRUNC);
}

static void
test_v1_records_handed_out_marked(void **state)
{
  struct t *t = t_new();
  struct sl_spool_rec r;
  struct ack a;
  const char *ev = "{\"event\":{\"id\":\"c3\"}}\n";
  char p[256];
  unsigned char *seg;
  size_t n;

  (void)state;
  write_v1_spool(t);
  t_open(t, 0, 0, 1);
  assert_int_equal(stats(t).records, 2);
  assert_int_equal(stats(t).corrupt, 1); /* the junk between them */
  /* New appends are format 2, behind the old records in id order. */
  memset(&a, 0, sizeof(a));
  assert_int_equal(sl_spool_append(t->s, ev, strlen(ev), 1, on_commit, &a),
                   0);
  RUN_UNTIL(t, a.done, WAIT_MS);
  assert_int_equal(a.status, 0);
  t_close(t);

  /* The version byte on disk: 1 stays 1 (records are never rewritten),
   * the new record behind them in the same segment says 2. */
  spath(t, p, sizeof(p), "0000000000000001.seg");
  seg = (unsigned char *)read_file(p, &n);
  assert_int_equal(seg[3], 1);
  assert_true(n > HDR + strlen(ev));
  assert_memory_equal(seg + n - (HDR + strlen(ev)), "\xd3\x53\x4c\x02", 4);
  free(seg);

  /* After a restart every record comes back with its format. */
  t_open(t, 0, 0, 1);
  assert_int_equal(t_next(t, &r), 0);
  assert_int_equal(r.id, 1);
  assert_int_equal(r.version, 1);
  assert_int_equal(r.len, strlen(V1_REC1));
  assert_memory_equal(r.data, V1_REC1, r.len);
  free(r.data);
  assert_int_equal(t_next(t, &r), 0);
  assert_int_equal(r.id, 2);
  assert_int_equal(r.version, 1);
  free(r.data);
  assert_int_equal(t_next(t, &r), 0);
  assert_int_equal(r.id, 3);
  assert_int_equal(r.version, 2);
  assert_memory_equal(r.data, ev, r.len);
  free(r.data);
  assert_int_equal(t_next(t, &r), SL_EAGAIN);
  sl_spool_release(t->s, 1);
  sl_spool_release(t->s, 2);
  sl_spool_release(t->s, 3);
  t_free(t);
}

/* Drain across an upgrade: records spooled by the old format under
 * data-stream routing, read after a restart with index_mode daily, go to
 * the daily indices (the consumer's route, not the one spooled). */
static void
test_v1_drain_applies_new_index_mode(void **state)
{
  static const struct sl_route daily = { SL_INDEX_DAILY, "default",
                                         "sluice", "generic" };
  struct t *t = t_new();
  struct sl_spool_rec r;
  struct sl_buf body;
  uint32_t nev;

  (void)state;
  write_v1_spool(t);
  t_open(t, 0, 0, 1);
  sl_buf_init(&body, 0);
  while (t_next(t, &r) == 0) {
    if (r.version == 1) {
      r.len = sl_bulk_v1_to_events(r.data, r.len, &nev, NULL);
      assert_int_equal(nev, r.nevents);
    }
    assert_int_equal(sl_bulk_encode(&daily, r.data, r.len,
                                    (int64_t)r.append_ns, &body), 0);
    free(r.data);
    sl_spool_release(t->s, r.id);
  }
  assert_string_equal(body.p,
    "{\"create\":{\"_index\":\"sluice-app-2024.05.01\",\"_id\":\"a1\"}}\n"
    V1_EV1 "\n"
    "{\"create\":{\"_index\":\"sluice-generic-2024.05.02\",\"_id\":\"b2\"}}\n"
    V1_EV2 "\n");
  sl_buf_free(&body);
  t_close(t);
  /* Released: nothing comes back. */
  t_open(t, 0, 0, 1);
  assert_int_equal(stats(t).records, 0);
  t_free(t);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_append_commit_next),
    cmocka_unit_test(test_group_commit),
    cmocka_unit_test(test_release_order_and_cursor),
    cmocka_unit_test(test_big_backlog),
    cmocka_unit_test(test_cursor_saved_while_running),
    cmocka_unit_test(test_rotation_and_deletion),
    cmocka_unit_test(test_max_bytes),
    cmocka_unit_test(test_pending_cap),
    cmocka_unit_test(test_close_flushes_pending),
    cmocka_unit_test(test_torn_tail),
    cmocka_unit_test(test_corrupt_middle),
    cmocka_unit_test(test_corrupt_last_record),
    cmocka_unit_test(test_garbage_appended),
    cmocka_unit_test(test_empty_and_zero_files),
    cmocka_unit_test(test_corrupt_cursor),
    cmocka_unit_test(test_corrupt_on_read),
    cmocka_unit_test(test_random_damage),
    cmocka_unit_test(test_read_off_loop),
    cmocka_unit_test(test_close_while_reading),
    cmocka_unit_test(test_read_big_backlog_in_order),
    cmocka_unit_test(test_kill9),
    cmocka_unit_test(test_enospc_tmpfs),
    cmocka_unit_test(test_eio_on_fsync),
    cmocka_unit_test(test_read_error_backoff),
    cmocka_unit_test(test_short_write_across_segments),
    cmocka_unit_test(test_failure_with_full_pending),
    cmocka_unit_test(test_throughput),
    cmocka_unit_test(test_v1_records_handed_out_marked),
    cmocka_unit_test(test_v1_drain_applies_new_index_mode),
    cmocka_unit_test(test_read_buffers_recycled),
  };

  sl_log_set_level(SL_LOG_WARN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
