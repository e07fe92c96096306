/* test_tail.c - the tailer against real files and a real uv loop.
 *
 * Every test waits for conditions with a deadline (run_until); the only
 * fixed-time loop runs (run_for) check that something does NOT happen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "sl_err.h"
#include "sl_log.h"
#include "sl_test.h"
#include "tail.h"

#include <xxhash.h>
#include <zlib.h>

struct rec {
  struct sl_tail_chunk *c;   /* invalid once done */
  char *path;
  uint64_t off, end;
  char *data;
  size_t len;
  unsigned flags;
  uint64_t fp;               /* stream id (src->fp) */
  size_t ncuts;
  struct sl_tail_cut cut0;   /* first cut, if any */
  bool done;
};

struct h {
  uv_loop_t loop;
  uv_timer_t wake;           /* bounds each UV_RUN_ONCE */
  char dir[64];
  char data[96];
  struct sl_tail *t;
  struct rec *recs;
  size_t nrecs, cap;
  bool refuse;
  unsigned refused;
  bool closed;
  /* options for make_tail */
  const char *start_at;
  int64_t close_inactive, partial_timeout, max_line, scan_interval;
  uint64_t qmax;
  bool read_gz;
};

static void
wake_cb(uv_timer_t *t)
{
  (void)t;
}

static int
setup(void **state)
{
  struct h *h = calloc(1, sizeof(*h));

  assert_int_equal(uv_loop_init(&h->loop), 0);
  uv_timer_init(&h->loop, &h->wake);
  uv_timer_start(&h->wake, wake_cb, 10, 10);
  strcpy(h->dir, "/tmp/sl_tail_XXXXXX");
  assert_non_null(mkdtemp(h->dir));
  snprintf(h->data, sizeof(h->data), "%s/data", h->dir);
  assert_int_equal(mkdir(h->data, 0755), 0);
  h->start_at = "beginning";
  h->close_inactive = 60000;
  h->partial_timeout = 100;
  h->max_line = 1024 * 1024;
  h->scan_interval = 100;
  h->qmax = 64 * 1024 * 1024;
  *state = h;
  return 0;
}

static void
closed_cb(void *arg)
{
  ((struct h *)arg)->closed = true;
}

static void
close_tail(struct h *h)
{
  uint64_t end = uv_now(&h->loop) + 5000;

  if (!h->t)
    return;
  h->closed = false;
  sl_tail_close(h->t, closed_cb, h);
  while (!h->closed && uv_now(&h->loop) < end)
    uv_run(&h->loop, UV_RUN_ONCE);
  assert_true(h->closed);
  h->t = NULL;
}

static void
clear_recs(struct h *h)
{
  size_t i;

  for (i = 0; i < h->nrecs; i++) {
    free(h->recs[i].path);
    free(h->recs[i].data);
  }
  h->nrecs = 0;
}

static int
teardown(void **state)
{
  struct h *h = *state;

  close_tail(h);
  uv_close((uv_handle_t *)&h->wake, NULL);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  clear_recs(h);
  free(h->recs);
  sl_test_rm_rf(h->dir);
  free(h);
  return 0;
}

static int
on_chunk(void *arg, struct sl_tail_chunk *c)
{
  struct h *h = arg;
  struct rec *r;

  if (h->refuse) {
    h->refused++;
    return SL_EAGAIN;
  }
  if (h->nrecs == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 64;
    h->recs = realloc(h->recs, h->cap * sizeof(*h->recs));
    assert_non_null(h->recs);
  }
  r = &h->recs[h->nrecs++];
  memset(r, 0, sizeof(*r));
  r->c = c;
  r->path = strdup(c->src->path);
  r->off = c->offset;
  r->end = c->end_offset;
  r->len = c->len;
  r->flags = c->flags;
  r->fp = c->src->fp;
  r->ncuts = c->ncuts;
  if (c->ncuts)
    r->cut0 = c->cuts[0];
  r->data = malloc(c->len + 1);
  memcpy(r->data, c->data, c->len);
  r->data[c->len] = 0;
  /* Contract checks on every chunk. */
  assert_true(c->len > 0);
  assert_true(c->end_offset >= c->offset + c->len);
  if (!c->flags) {
    assert_int_equal(c->end_offset, c->offset + c->len);
    assert_int_equal(c->data[c->len - 1], '\n');
  } else if (c->flags & SL_CHUNK_NO_NL) {
    assert_null(memchr(c->data, '\n', c->len));
  } else {
    size_t k;
    uint64_t skip = 0;

    /* Whole lines, cut ones among them: each cut is one line. */
    assert_int_equal(c->flags, SL_CHUNK_TRUNCATED);
    assert_true(c->ncuts > 0);
    assert_int_equal(c->data[c->len - 1], '\n');
    for (k = 0; k < c->ncuts; k++) {
      assert_true(c->cuts[k].at < c->cuts[k].end);
      assert_true(c->cuts[k].end <= c->len);
      assert_int_equal(c->data[c->cuts[k].end - 1], '\n');
      assert_null(memchr(c->data + c->cuts[k].at, '\n',
                         c->cuts[k].end - c->cuts[k].at - 1));
      skip += c->cuts[k].skip;
    }
    assert_int_equal(c->end_offset, c->offset + c->len + skip);
  }
  assert_true(c->src->dev != 0 || c->src->ino != 0);
  return 0;
}

static void
path_in(struct h *h, const char *name, char *out, size_t n)
{
  snprintf(out, n, "%s/%s", h->dir, name);
}

static void
make_tail_n(struct h *h, const char *pattern, const char *exclude)
{
  struct sl_tail_opts o;
  char pat[256], err[256];
  json_t *inputs;

  path_in(h, pattern, pat, sizeof(pat));
  inputs = json_pack("[{s:s, s:[s], s:s, s:I, s:I, s:I, s:I}]",
                     "type", "file", "paths", pat, "start_at", h->start_at,
                     "scan_interval", (json_int_t)h->scan_interval,
                     "close_inactive", (json_int_t)h->close_inactive,
                     "max_line_bytes", (json_int_t)h->max_line,
                     "partial_timeout", (json_int_t)h->partial_timeout);
  assert_non_null(inputs);
  if (h->read_gz)
    json_object_set_new(json_array_get(inputs, 0), "read_gz", json_true());
  if (exclude) {
    char ex[256];

    path_in(h, exclude, ex, sizeof(ex));
    json_object_set_new(json_array_get(inputs, 0), "exclude",
                        json_pack("[s]", ex));
  }
  memset(&o, 0, sizeof(o));
  o.inputs = inputs;
  o.data_dir = h->data;
  o.registry_flush_ms = 50;
  o.queue_max_bytes = h->qmax;
  o.cb = on_chunk;
  o.cb_arg = h;
  assert_int_equal(sl_tail_new(&h->loop, &o, &h->t, err, sizeof(err)), 0);
  json_decref(inputs);  /* tail keeps its own reference */
  assert_int_equal(sl_tail_start(h->t), 0);
}

static void
make_tail(struct h *h, const char *pattern)
{
  make_tail_n(h, pattern, NULL);
}

static void
put_file(struct h *h, const char *name, const char *data, size_t len,
         bool append)
{
  char p[256];
  int fd;

  path_in(h, name, p, sizeof(p));
  fd = open(p, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void
put_str(struct h *h, const char *name, const char *s, bool append)
{
  put_file(h, name, s, strlen(s), append);
}

typedef bool (*cond_fn)(struct h *h, const void *arg);

static bool
run_until(struct h *h, cond_fn cond, const void *arg, int ms)
{
  uint64_t end = uv_hrtime() / 1000000 + (uint64_t)ms;

  while (!cond(h, arg)) {
    if (uv_hrtime() / 1000000 > end)
      return false;
    uv_run(&h->loop, UV_RUN_ONCE);
  }
  return true;
}

/* Only for checking that something does not happen. */
static void
run_for(struct h *h, int ms)
{
  uint64_t end = uv_hrtime() / 1000000 + (uint64_t)ms;

  while (uv_hrtime() / 1000000 < end)
    uv_run(&h->loop, UV_RUN_ONCE);
}

/* Bytes received for one file path, in order; checks that chunks of the
 * same object are contiguous. Returns a malloc'ed string. */
static char *
collect(struct h *h, const char *name, size_t *len)
{
  char p[256];
  size_t i, n = 0;
  char *out = malloc(1);

  path_in(h, name, p, sizeof(p));
  for (i = 0; i < h->nrecs; i++) {
    if (strcmp(h->recs[i].path, p) != 0)
      continue;
    out = realloc(out, n + h->recs[i].len + 1);
    memcpy(out + n, h->recs[i].data, h->recs[i].len);
    n += h->recs[i].len;
  }
  out[n] = 0;
  *len = n;
  return out;
}

static size_t
received_bytes(struct h *h, const char *name)
{
  size_t n;
  char *s = collect(h, name, &n);

  free(s);
  return n;
}

struct want {
  const char *name;
  const char *data;
};

static bool
cond_content(struct h *h, const void *arg)
{
  const struct want *w = arg;
  size_t n;
  char *s = collect(h, w->name, &n);
  bool ok = n == strlen(w->data) && memcmp(s, w->data, n) == 0;

  free(s);
  return ok;
}

static void
expect_content(struct h *h, const char *name, const char *data)
{
  struct want w = {name, data};
  size_t n;
  char *s;

  if (!run_until(h, cond_content, &w, 5000)) {
    s = collect(h, name, &n);
    print_error("%s: got %zu bytes '%.200s', want '%.200s'\n", name, n, s,
                data);
    free(s);
    fail();
  }
}

static bool
cond_nrecs(struct h *h, const void *arg)
{
  return h->nrecs >= *(const size_t *)arg;
}

static void
expect_nrecs(struct h *h, size_t n)
{
  assert_true(run_until(h, cond_nrecs, &n, 5000));
}

static void
done_rec(struct h *h, size_t i)
{
  assert_false(h->recs[i].done);
  sl_tail_chunk_done(h->t, h->recs[i].c);
  h->recs[i].done = true;
}

static void
done_all(struct h *h)
{
  size_t i;

  for (i = 0; i < h->nrecs; i++)
    if (!h->recs[i].done)
      done_rec(h, i);
}

/* Offset saved in registry.json for a path (-1: no entry). */
static int64_t
reg_offset(struct h *h, const char *name)
{
  char rp[160], p[256];
  json_error_t jerr;
  json_t *root, *e;
  int64_t off = -1;
  size_t i;

  path_in(h, name, p, sizeof(p));
  snprintf(rp, sizeof(rp), "%s/registry.json", h->data);
  root = json_load_file(rp, 0, &jerr);
  if (!root)
    return -1;
  json_array_foreach(json_object_get(root, "entries"), i, e) {
    const char *ep = json_string_value(json_object_get(e, "path"));

    /* Newest stream first: a path can name an old stream too (kept so a
     * copy of it can continue it). */
    if (ep && strcmp(ep, p) == 0 && off < 0)
      off = json_integer_value(json_object_get(e, "offset"));
  }
  json_decref(root);
  return off;
}

static struct sl_tail_stats
stats(struct h *h)
{
  struct sl_tail_stats st;

  sl_tail_stats(h->t, &st);
  return st;
}

static bool
cond_files_open(struct h *h, const void *arg)
{
  return stats(h).files_open == *(const uint64_t *)arg;
}

/* ---- tests ------------------------------------------------------------ */

static void
test_discover_existing_and_new(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "one\ntwo\nthree\n", false);
  put_str(h, "skip.log", "excluded\n", false);
  make_tail_n(h, "*.log", "*skip*");
  expect_content(h, "a.log", "one\ntwo\nthree\n");
  assert_int_equal(h->recs[0].off, 0);
  /* A file created later is found (inotify or scan) and read from 0. */
  put_str(h, "b.log", "bee\n", false);
  expect_content(h, "b.log", "bee\n");
  /* Appends are picked up. */
  put_str(h, "a.log", "four\n", true);
  expect_content(h, "a.log", "one\ntwo\nthree\nfour\n");
  run_for(h, 200);
  assert_int_equal(received_bytes(h, "skip.log"), 0);
  assert_int_equal(stats(h).files_open, 2);
  assert_int_equal(stats(h).bytes_read, strlen("one\ntwo\nthree\nfour\nbee\n"));
  done_all(h);
}

/* Regression (issue 9 review): a chunk of a few bytes used to keep its
 * whole read window (256 KiB+) until acked while the queue limits counted
 * only its bytes; hundreds of slow files pinned hundreds of MiB. Small
 * chunks are copied now: the chunk owns memory of its own size. */
static void
test_small_chunk_does_not_pin_read_window(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "one\n", false);
  make_tail(h, "*.log");
  expect_content(h, "a.log", "one\n");
  assert_null(h->recs[0].c->pool);
  assert_true(h->recs[0].c->cap <= 64);
  done_all(h);
}

static void
test_start_at_end(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "old1\nold2\npart", false);
  h->start_at = "end";
  make_tail(h, "*.log");
  run_for(h, 150);
  assert_int_equal(h->nrecs, 0);
  /* Starts at the beginning of the unfinished last line. */
  put_str(h, "a.log", "ial\nnew\n", true);
  expect_content(h, "a.log", "partial\nnew\n");
  /* Files appearing after the first scan are read from the beginning. */
  put_str(h, "b.log", "b1\nb2\n", false);
  expect_content(h, "b.log", "b1\nb2\n");
  done_all(h);
}

static void
test_whole_lines_every_byte_once(void **state)
{
  struct h *h = *state;
  size_t cap = 3 * 1024 * 1024 + 400, n = 0, got, i;
  char *want = malloc(cap), *s;
  unsigned seed = 7;

  /* ~3 MiB of lines of varied length, written in pieces while reading. */
  while (n < 3 * 1024 * 1024) {
    size_t l = (seed = seed * 1103515245u + 12345u) % 300;

    for (i = 0; i < l; i++)
      want[n + i] = (char)('a' + (n + i) % 26);
    want[n + l] = '\n';
    n += l + 1;
  }
  put_file(h, "big.log", want, n / 2 + 3, false);  /* ends mid-line */
  make_tail(h, "*.log");
  assert_true(run_until(h, cond_nrecs, &(size_t){1}, 5000));
  put_file(h, "big.log", want + n / 2 + 3, n - (n / 2 + 3), true);
  want[n] = 0;
  expect_content(h, "big.log", want);
  for (i = 1; i < h->nrecs; i++)
    assert_int_equal(h->recs[i].off, h->recs[i - 1].end);
  s = collect(h, "big.log", &got);
  assert_int_equal(got, n);
  free(s);
  assert_true(h->nrecs >= 12);  /* 256 KiB chunks */
  for (i = 0; i < h->nrecs; i++)
    assert_true(h->recs[i].len <= 256 * 1024);
  done_all(h);
  free(want);
}

static void
test_out_of_order_done_advances_prefix(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "l1\n", false);
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  put_str(h, "a.log", "l2\n", true);
  expect_nrecs(h, 2);
  put_str(h, "a.log", "l3\n", true);
  expect_nrecs(h, 3);
  assert_int_equal(h->recs[2].end, 9);
  done_rec(h, 2);
  done_rec(h, 1);
  assert_int_equal(sl_tail_flush_registry(h->t), 0);
  assert_int_equal(reg_offset(h, "a.log"), 0);
  assert_int_equal(stats(h).inflight_bytes, 3);
  done_rec(h, 0);
  assert_int_equal(sl_tail_flush_registry(h->t), 0);
  assert_int_equal(reg_offset(h, "a.log"), 9);
  assert_int_equal(stats(h).inflight_bytes, 0);
  assert_int_equal(stats(h).registry_entries, 1);
}

static void
test_restart_resumes_at_acked(void **state)
{
  struct h *h = *state;
  size_t n;
  char *s;

  put_str(h, "a.log", "l1\nl2\n", false);
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  put_str(h, "a.log", "l3\n", true);
  expect_nrecs(h, 2);
  done_rec(h, 0);  /* l1 l2 delivered, l3 not */
  close_tail(h);
  assert_int_equal(reg_offset(h, "a.log"), 6);
  put_str(h, "a.log", "l4\n", true);
  clear_recs(h);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "l3\nl4\n");
  assert_int_equal(h->recs[0].off, 6);
  done_all(h);
  run_for(h, 100);
  s = collect(h, "a.log", &n);
  assert_string_equal(s, "l3\nl4\n");  /* nothing repeated */
  free(s);
  close_tail(h);
  assert_int_equal(reg_offset(h, "a.log"), 12);
}

static void
test_copytruncate(void **state)
{
  struct h *h = *state;
  char p[256];

  put_str(h, "a.log", "first line\nsecond line\n", false);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "first line\nsecond line\n");
  done_all(h);
  /* logrotate copytruncate: copy away, truncate in place, app writes on. */
  path_in(h, "a.log", p, sizeof(p));
  assert_int_equal(truncate(p, 0), 0);
  put_str(h, "a.log", "after\n", true);
  expect_content(h, "a.log", "first line\nsecond line\nafter\n");
  assert_int_equal(h->recs[h->nrecs - 1].off, 0);
  assert_int_equal(stats(h).truncations, 1);
  done_all(h);
  assert_int_equal(sl_tail_flush_registry(h->t), 0);
  assert_int_equal(reg_offset(h, "a.log"), 6);
  /* The stream that was truncated away stays known: a copy of it (found
   * by a glob like a.log*) continues it instead of starting over. */
  assert_int_equal(stats(h).registry_entries, 2);
}

static void
test_rename_rotation(void **state)
{
  struct h *h = *state;
  char p[256], p1[256];
  struct rec *r;
  int wfd;
  size_t i, late = 0, fresh = 0;

  h->close_inactive = 300;
  put_str(h, "a.log", "x1\n", false);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "x1\n");
  path_in(h, "a.log", p, sizeof(p));
  path_in(h, "a.log.1", p1, sizeof(p1));
  wfd = open(p, O_WRONLY | O_APPEND);
  assert_true(wfd >= 0);
  assert_int_equal(rename(p, p1), 0);
  /* The app still writes to the old inode before it reopens. */
  assert_int_equal(write(wfd, "late\n", 5), 5);
  close(wfd);
  put_str(h, "a.log", "new\n", false);
  /* Both under the original path name: old inode to its end, new from 0
   * (in either order). */
  expect_nrecs(h, 3);
  run_for(h, 100);
  assert_int_equal(h->nrecs, 3);
  assert_int_equal(received_bytes(h, "a.log"), 12);
  for (i = 0; i < h->nrecs; i++) {
    r = &h->recs[i];
    if (strcmp(r->data, "late\n") == 0) {
      late = i;
      assert_int_equal(r->off, 3);
    }
    if (strcmp(r->data, "new\n") == 0) {
      fresh = i;
      assert_int_equal(r->off, 0);
    }
  }
  assert_true(late > 0 && fresh > 0);
  assert_true(h->recs[late].c->src != h->recs[fresh].c->src);
  assert_int_equal(stats(h).rotations, 1);
  /* The rotated file is closed after close_inactive; the new one too. */
  assert_true(run_until(h, cond_files_open, &(uint64_t){0}, 5000));
  done_all(h);
}

static int
fds_to(const char *needle)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  char p[300], target[512];
  ssize_t n;
  int count = 0;

  while (d && (de = readdir(d)) != NULL) {
    snprintf(p, sizeof(p), "/proc/self/fd/%s", de->d_name);
    n = readlink(p, target, sizeof(target) - 1);
    if (n <= 0)
      continue;
    target[n] = 0;
    if (strstr(target, needle))
      count++;
  }
  if (d)
    closedir(d);
  return count;
}

static bool
cond_no_fd(struct h *h, const void *arg)
{
  (void)h;
  return fds_to(arg) == 0;
}

static bool
cond_entries(struct h *h, const void *arg)
{
  return stats(h).registry_entries == *(const uint64_t *)arg;
}

static void
test_delete_releases_fd(void **state)
{
  struct h *h = *state;
  char p[256];

  h->close_inactive = 200;
  put_str(h, "gone.log", "a\nb\n", false);
  make_tail(h, "*.log");
  expect_content(h, "gone.log", "a\nb\n");
  path_in(h, "gone.log", p, sizeof(p));
  assert_int_equal(fds_to(p), 1);
  assert_int_equal(unlink(p), 0);
  assert_true(run_until(h, cond_no_fd, p, 5000));
  assert_int_equal(stats(h).files_open, 0);
  /* Gone and fully acknowledged: the registry forgets it. */
  done_all(h);
  assert_true(run_until(h, cond_entries, &(uint64_t){0}, 5000));
}

static void
test_fingerprint_mismatch_is_new_file(void **state)
{
  struct h *h = *state;
  char p[256], rp[160];
  struct stat st;
  json_t *reg;
  uint64_t fp;

  /* A registry entry for this inode with another fingerprint: the inode was
   * reused by a new file, which must be read from 0, not from 5. */
  put_str(h, "a.log", "hello\nworld\n", false);
  path_in(h, "a.log", p, sizeof(p));
  assert_int_equal(stat(p, &st), 0);
  snprintf(rp, sizeof(rp), "%s/registry.json", h->data);
  reg = json_pack("{s:i, s:[{s:s, s:I, s:I, s:s, s:i, s:i, s:I}]}",
                  "version", 1, "entries", "path", p,
                  "dev", (json_int_t)st.st_dev, "ino",
                  (json_int_t)st.st_ino, "fp", "00000000deadbeef",
                  "fp_len", 6, "offset", 6, "updated", (json_int_t)1);
  assert_int_equal(json_dump_file(reg, rp, 0), 0);
  json_decref(reg);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "hello\nworld\n");
  assert_int_equal(h->recs[0].off, 0);
  done_all(h);
  close_tail(h);

  /* The same entry with the right hash of the first 6 bytes (written when
   * the file was 6 bytes long) matches although the file is longer now. */
  clear_recs(h);
  fp = XXH3_64bits("hello\n", 6);
  {
    char fps[17];

    snprintf(fps, sizeof(fps), "%016llx", (unsigned long long)fp);
    reg = json_pack("{s:i, s:[{s:s, s:I, s:I, s:s, s:i, s:i, s:I}]}",
                    "version", 1, "entries", "path", p,
                    "dev", (json_int_t)st.st_dev, "ino",
                    (json_int_t)st.st_ino, "fp", fps, "fp_len", 6,
                    "offset", 6, "updated", (json_int_t)1);
  }
  assert_int_equal(json_dump_file(reg, rp, 0), 0);
  json_decref(reg);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "world\n");
  assert_int_equal(h->recs[0].off, 6);
  done_all(h);
}

static void
test_content_replaced_in_place(void **state)
{
  struct h *h = *state;
  char p[256];
  int fd;

  /* Same inode, new content that is longer than the old (a truncate we did
   * not see in time, or inode reuse): the fingerprint differs -> from 0. */
  put_str(h, "a.log", "aaaa\nbbbb\n", false);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "aaaa\nbbbb\n");
  path_in(h, "a.log", p, sizeof(p));
  fd = open(p, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, "XXXX\nYYYY\nZZZZ\n", 15, 0), 15);
  close(fd);
  expect_content(h, "a.log", "aaaa\nbbbb\nXXXX\nYYYY\nZZZZ\n");
  assert_int_equal(h->recs[h->nrecs - 1].off, 0);
  assert_int_equal(stats(h).truncations, 1);
  done_all(h);
}

/* Numbered lines, more than the 1 KiB fingerprint. */
static void
put_lines(struct h *h, const char *name, int from, int to, bool append)
{
  char line[64];
  int i;

  for (i = from; i < to; i++) {
    snprintf(line, sizeof(line), "2026-12-06T00:00:00Z line %05d of app\n",
             i);
    put_str(h, name, line, append || i > from);
  }
}

static void
copy_file(struct h *h, const char *from, const char *to)
{
  char p[256], q[256], buf[65536];
  int in, out;
  ssize_t n;

  path_in(h, from, p, sizeof(p));
  path_in(h, to, q, sizeof(q));
  in = open(p, O_RDONLY);
  out = open(q, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(in >= 0 && out >= 0);
  while ((n = read(in, buf, sizeof(buf))) > 0)
    assert_int_equal(write(out, buf, (size_t)n), n);
  close(in);
  close(out);
}

static size_t
recs_of(struct h *h, const char *name)
{
  char p[256];
  size_t i, n = 0;

  path_in(h, name, p, sizeof(p));
  for (i = 0; i < h->nrecs; i++)
    n += strcmp(h->recs[i].path, p) == 0;
  return n;
}

/* copytruncate with a glob that also matches the copy (issue 11): the
 * copy has the first bytes of the stream, so it is the same stream and
 * goes on at the acknowledged offset -- here with a line the agent had not
 * read before it stopped -- with the same event ids; the truncated
 * original is a new stream from 0. */
static void
test_copytruncate_copy_continues_stream(void **state)
{
  struct h *h = *state;
  char p[256];
  uint64_t fp;
  size_t i;

  put_lines(h, "a.log", 0, 40, false);
  make_tail(h, "a.log*");
  expect_nrecs(h, 1);
  run_for(h, 100);
  done_all(h);
  fp = h->recs[0].fp;
  close_tail(h);
  clear_recs(h);

  put_str(h, "a.log", "unread while stopped\n", true);
  copy_file(h, "a.log", "a.log.1");
  path_in(h, "a.log", p, sizeof(p));
  assert_int_equal(truncate(p, 0), 0);
  put_str(h, "a.log", "fresh\n", true);
  make_tail(h, "a.log*");
  expect_content(h, "a.log.1", "unread while stopped\n");
  expect_content(h, "a.log", "fresh\n");
  for (i = 0; i < h->nrecs; i++) {
    if (strstr(h->recs[i].path, "a.log.1")) {
      assert_true(h->recs[i].fp == fp);         /* same ids */
      assert_int_equal(h->recs[i].off, 40 * 39);
    } else {
      assert_true(h->recs[i].fp != fp);
      assert_int_equal(h->recs[i].off, 0);
    }
  }
  done_all(h);
  run_for(h, 300);  /* later scans read nothing again */
  assert_int_equal(h->nrecs, 2);
}

/* The copy appears while the original is still being read (logrotate
 * copies first, truncates after): the copy waits; once the original is
 * truncated, it continues the stream at its end -- nothing is read twice. */
static void
test_copy_of_live_file_waits(void **state)
{
  struct h *h = *state;
  char p[256];

  put_lines(h, "a.log", 0, 40, false);
  make_tail(h, "a.log*");
  expect_nrecs(h, 1);
  run_for(h, 50);
  done_all(h);
  copy_file(h, "a.log", "a.log.1");
  run_for(h, 400);
  assert_int_equal(recs_of(h, "a.log.1"), 0);
  path_in(h, "a.log", p, sizeof(p));
  assert_int_equal(truncate(p, 0), 0);
  put_str(h, "a.log", "after the truncate\n", true);
  expect_nrecs(h, 2);
  assert_string_equal(h->recs[1].data, "after the truncate\n");
  done_all(h);
  run_for(h, 400);
  assert_int_equal(recs_of(h, "a.log.1"), 0);
  assert_int_equal(h->nrecs, 2);
}

/* Two files that start with the same 1.2 KiB header are not copies of each
 * other: the second is read too (its end differs from the first's at the
 * same offset), with its own stream id. */
static void
test_same_header_not_a_copy(void **state)
{
  struct h *h = *state;
  char hdr[1301], *a, *b;
  size_t i;

  for (i = 0; i + 13 <= 1300; i += 13)
    memcpy(hdr + i, "# header row\n", 13);
  hdr[i] = '\0';
  a = malloc(4096);
  b = malloc(4096);
  snprintf(a, 4096, "%sa one\na two\na three and more text\n", hdr);
  snprintf(b, 4096, "%sb one\n", hdr);
  put_str(h, "a.log", a, false);
  make_tail(h, "*.log");
  expect_content(h, "a.log", a);
  put_str(h, "b.log", b, false);
  expect_content(h, "b.log", b);
  assert_true(h->recs[0].fp != h->recs[h->nrecs - 1].fp);
  done_all(h);
  free(a);
  free(b);
}

/* Truncated to a shorter length with the first bytes intact: what is left
 * was read; reading goes on at the cut, as a new stream (new lines at old
 * offsets must not get the old lines' event ids). */
static void
test_truncate_to_smaller_same_head(void **state)
{
  struct h *h = *state;
  char p[256];
  uint64_t fp;

  put_lines(h, "a.log", 0, 40, false);
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  run_for(h, 50);
  done_all(h);
  fp = h->recs[0].fp;
  path_in(h, "a.log", p, sizeof(p));
  assert_int_equal(truncate(p, 30 * 39), 0);
  run_for(h, 400);
  put_str(h, "a.log", "appended\n", true);
  expect_nrecs(h, 2);
  assert_string_equal(h->recs[1].data, "appended\n");
  assert_int_equal(h->recs[1].off, 30 * 39);
  assert_true(h->recs[1].fp != fp);
  done_all(h);
}

/* Truncated to zero and written again to the same size between two looks:
 * only the first bytes tell; the new content is read from 0. */
static void
test_truncate_same_size_rewrite(void **state)
{
  struct h *h = *state;
  char p[256];
  int fd;

  put_str(h, "a.log", "one one one\n", false);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "one one one\n");
  done_all(h);
  run_for(h, 20);
  path_in(h, "a.log", p, sizeof(p));
  fd = open(p, O_WRONLY | O_TRUNC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "two two two\n", 12), 12);
  close(fd);
  expect_content(h, "a.log", "one one one\ntwo two two\n");
  assert_int_equal(h->recs[h->nrecs - 1].off, 0);
  done_all(h);
}

/* read_gz: a rotated .gz is read once, uncompressed offsets, and not again
 * after a restart. */
static void
test_read_gz_once(void **state)
{
  struct h *h = *state;
  char p[256], line[64];
  size_t n = 0, len, i;
  char *want = NULL, *got;
  gzFile gz;

  h->read_gz = true;
  path_in(h, "a.log.2.gz", p, sizeof(p));
  gz = gzopen(p, "wb");
  assert_non_null(gz);
  for (i = 0; i < 60000; i++) {
    len = (size_t)snprintf(line, sizeof(line), "gz line %zu\n", i);
    want = realloc(want, n + len + 1);
    memcpy(want + n, line, len);
    n += len;
    assert_int_equal(gzwrite(gz, line, (unsigned)len), (int)len);
  }
  want[n] = '\0';
  assert_int_equal(gzclose(gz), Z_OK);
  put_str(h, "a.log", "plain\n", false);
  make_tail(h, "a.log*");
  expect_content(h, "a.log", "plain\n");
  expect_content(h, "a.log.2.gz", want);
  assert_int_equal(h->recs[0].path[strlen(h->recs[0].path) - 1] == 'z'
                   ? h->recs[0].off : 0, 0);
  done_all(h);
  run_for(h, 100);
  close_tail(h);
  clear_recs(h);
  make_tail(h, "a.log*");
  run_for(h, 400);
  got = collect(h, "a.log.2.gz", &len);
  assert_int_equal(len, 0);
  free(got);
  free(want);
}

/* A .gz still being written (the gzip of a rotation) is read on as it
 * grows, its last line only once the gzip stream ended. */
static void
test_read_gz_growing(void **state)
{
  struct h *h = *state;
  char p[256], *z;
  size_t zn, half;
  FILE *fp;
  gzFile gz;

  h->read_gz = true;
  path_in(h, "full.gz", p, sizeof(p));
  gz = gzopen(p, "wb");
  assert_non_null(gz);
  assert_true(gzputs(gz, "first\nsecond\nlast without newline") > 0);
  assert_int_equal(gzclose(gz), Z_OK);
  fp = fopen(p, "rb");
  z = malloc(4096);
  zn = fread(z, 1, 4096, fp);
  fclose(fp);
  unlink(p);
  half = zn - 10;  /* all but the trailer and the end of the stream */
  put_file(h, "b.log.gz", z, half, false);
  make_tail(h, "b.log*");
  run_for(h, 400);
  put_file(h, "b.log.gz", z + half, zn - half, true);
  expect_content(h, "b.log.gz", "first\nsecond\nlast without newline");
  done_all(h);
  free(z);
}

static void
test_gz_skipped_by_default(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "plain\n", false);
  put_str(h, "a.log.1.gz", "not really gzip\n", false);
  make_tail(h, "a.log*");
  expect_content(h, "a.log", "plain\n");
  run_for(h, 300);
  assert_int_equal(recs_of(h, "a.log.1.gz"), 0);
  done_all(h);
}

static void
test_long_line_truncated_and_skipped(void **state)
{
  struct h *h = *state;
  size_t big = 600 * 1024, i;
  char *line = malloc(big + 1);
  struct rec *r;

  h->max_line = 101;
  /* The line written in two parts below must not be flushed as a
   * partial line between the parts. */
  h->partial_timeout = 60000;
  /* 'é' is 2 bytes: 101 bytes would cut one in half, so 100 are kept. */
  for (i = 0; i + 1 < 300; i += 2)
    memcpy(line + i, "\xc3\xa9", 2);
  put_str(h, "a.log", "short\n", false);
  put_file(h, "a.log", line, 300, true);
  put_str(h, "a.log", "\nafter\n", true);
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  /* One chunk, in file order (issue 15): the line before, the cut head
   * with a '\n', the line after. */
  r = &h->recs[0];
  assert_int_equal(r->flags, SL_CHUNK_TRUNCATED);
  assert_int_equal(r->len, 6 + 101 + 6);
  assert_memory_equal(r->data, "short\n", 6);
  assert_string_equal(r->data + 107, "after\n");
  assert_int_equal(r->ncuts, 1);
  assert_int_equal(r->cut0.at, 6);
  assert_int_equal(r->cut0.end, 107);
  assert_int_equal(r->cut0.skip, 301 - 101);
  assert_int_equal(r->off, 0);
  assert_int_equal(r->end, 313);
  assert_int_equal(stats(h).lines_truncated, 1);
  assert_int_equal(stats(h).bytes_skipped, 200);

  /* A line over several reads, written in two parts: its chunk appears
   * only when its '\n' exists, its rest is dropped (not an event of its
   * own), and the end_offset covers the newline. */
  memset(line, 'z', big);
  put_file(h, "a.log", line, big, true);
  run_for(h, 300);
  assert_int_equal(h->nrecs, 1);
  put_file(h, "a.log", line, 1000, true);
  put_str(h, "a.log", "\nnext\n", true);
  expect_nrecs(h, 2);
  r = &h->recs[1];
  assert_int_equal(r->flags, SL_CHUNK_TRUNCATED);
  assert_int_equal(r->len, 101 + 1 + 5);
  assert_string_equal(r->data + 102, "next\n");
  assert_int_equal(r->off, 313);
  assert_int_equal(r->cut0.skip, big + 1000 - 101);
  assert_int_equal(r->end, 313 + big + 1000 + 1 + 5);
  assert_int_equal(stats(h).lines_truncated, 2);
  done_all(h);
  assert_int_equal(sl_tail_flush_registry(h->t), 0);
  assert_int_equal(reg_offset(h, "a.log"), (int64_t)r->end);
  free(line);
}

static void
test_long_line_with_big_limit(void **state)
{
  struct h *h = *state;
  size_t big = 700 * 1024;
  char *line = malloc(big + 1);

  /* A line longer than one 256 KiB read but under max_line_bytes is
   * delivered whole. */
  memset(line, 'q', big);
  line[big] = '\n';
  put_file(h, "a.log", line, big + 1, false);
  put_str(h, "a.log", "tail\n", true);
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  assert_true(run_until(h, cond_nrecs, &(size_t){2}, 2000) ||
              h->recs[0].len == big + 6);
  assert_int_equal(received_bytes(h, "a.log"), big + 6);
  assert_int_equal(h->recs[0].flags, 0);
  done_all(h);
  free(line);
}

static bool
cond_flag(struct h *h, const void *arg)
{
  size_t i;

  for (i = 0; i < h->nrecs; i++)
    if (h->recs[i].flags & *(const unsigned *)arg)
      return true;
  return false;
}

/* Issue 10: partial_timeout alone ships a last line without newline (it
 * used to wait for close_inactive or a rotation); the continuation is the
 * next chunk. */
static void
test_partial_line_flushed_after_partial_timeout(void **state)
{
  struct h *h = *state;
  struct rec *r;

  h->partial_timeout = 600;
  h->close_inactive = 60000;
  put_str(h, "a.log", "whole\nhalf", false);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "whole\n");
  /* Not before partial_timeout. */
  run_for(h, 150);
  assert_int_equal(h->nrecs, 1);
  assert_true(run_until(h, cond_flag, &(unsigned){SL_CHUNK_NO_NL}, 5000));
  expect_nrecs(h, 2);
  r = &h->recs[1];
  assert_string_equal(r->data, "half");
  assert_int_equal(r->off, 6);
  assert_int_equal(r->end, 10);
  put_str(h, "a.log", " more\n", true);
  expect_nrecs(h, 3);
  assert_string_equal(h->recs[2].data, " more\n");
  assert_int_equal(h->recs[2].off, 10);
  done_all(h);
}

static bool
cond_refused(struct h *h, const void *arg)
{
  (void)arg;
  return h->refused > 0;
}

static void
test_backpressure(void **state)
{
  struct h *h = *state;
  size_t n = 2 * 1024 * 1024, i, got;
  char *data = malloc(n + 1), *s;

  for (i = 0; i < n; i++)
    data[i] = (i % 64 == 63) ? '\n' : 'k';
  data[n] = 0;
  put_file(h, "a.log", data, n, false);
  h->qmax = 4096;
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  run_for(h, 300);
  /* One read is out, then reading stops until it is done. */
  assert_int_equal(h->nrecs, 1);
  assert_true(stats(h).inflight_bytes >= 4096);
  while (received_bytes(h, "a.log") < n) {
    size_t before = h->nrecs;

    done_all(h);
    assert_true(run_until(h, cond_nrecs, &(size_t){before + 1}, 5000));
    assert_true(stats(h).inflight_bytes <= 4096 + 256 * 1024);
  }
  s = collect(h, "a.log", &got);
  assert_int_equal(got, n);
  assert_memory_equal(s, data, n);
  free(s);

  /* Refusal (SL_EAGAIN): the chunk is kept and offered again on resume. */
  done_all(h);
  h->refuse = true;
  put_str(h, "a.log", "r1\n", true);
  assert_true(run_until(h, cond_refused, NULL, 5000));
  put_str(h, "a.log", "r2\n", true);
  run_for(h, 300);
  assert_int_equal(h->refused, 1);  /* paused: not offered again */
  h->refuse = false;
  sl_tail_resume(h->t);
  data = realloc(data, n + 7);
  memcpy(data + n, "r1\nr2\n", 7);
  expect_content(h, "a.log", data);
  done_all(h);
  free(data);
}

static void
test_corrupt_registry_recovers(void **state)
{
  struct h *h = *state;
  char rp[160];
  FILE *f;
  DIR *d;
  struct dirent *de;
  int aside = 0;

  snprintf(rp, sizeof(rp), "%s/registry.json", h->data);
  f = fopen(rp, "w");
  assert_non_null(f);
  fputs("{\"version\":1,\"entries\":[{\"pa", f);
  fclose(f);
  put_str(h, "a.log", "x\ny\n", false);
  make_tail(h, "a.log");
  expect_content(h, "a.log", "x\ny\n");
  done_all(h);
  d = opendir(h->data);
  while (d && (de = readdir(d)) != NULL)
    if (strncmp(de->d_name, "registry.json.corrupt-", 22) == 0)
      aside++;
  if (d)
    closedir(d);
  assert_int_equal(aside, 1);
  /* The timer writes the new registry by itself (registry_flush 50 ms). */
  assert_true(run_until(h, cond_entries, &(uint64_t){1}, 1000));
  {
    uint64_t end = uv_hrtime() / 1000000 + 5000;

    while (reg_offset(h, "a.log") != 4 && uv_hrtime() / 1000000 < end)
      uv_run(&h->loop, UV_RUN_ONCE);
  }
  assert_int_equal(reg_offset(h, "a.log"), 4);
}

static void
test_stop_reading_then_close_with_chunks_out(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "a\n", false);
  put_str(h, "b.log", "b\n", false);
  make_tail(h, "*.log");
  expect_nrecs(h, 2);
  sl_tail_stop_reading(h->t);
  put_str(h, "a.log", "more\n", true);
  put_str(h, "c.log", "new file\n", false);
  run_for(h, 400);
  assert_int_equal(h->nrecs, 2);  /* nothing new read while draining */
  /* Acks still move the registry while draining. */
  done_rec(h, 0);
  assert_int_equal(sl_tail_flush_registry(h->t), 0);
  assert_int_equal(reg_offset(h, h->recs[0].path + strlen(h->dir) + 1), 2);
  /* recs[1] stays out: close frees it (ASan checks for leaks) and saves
   * only what was acknowledged. */
  close_tail(h);
  assert_int_equal(reg_offset(h, h->recs[1].path + strlen(h->dir) + 1), 0);
}

static void
test_close_with_refused_chunk(void **state)
{
  struct h *h = *state;

  put_str(h, "a.log", "a\n", false);
  make_tail(h, "a.log");
  expect_nrecs(h, 1);
  h->refuse = true;
  put_str(h, "a.log", "b\n", true);
  assert_true(run_until(h, cond_refused, NULL, 5000));
  close_tail(h);
  assert_int_equal(reg_offset(h, "a.log"), 0);
}

static void
test_inotify_finds_new_files(void **state)
{
  struct h *h = *state;
  char sub[256];

  /* With a one-minute scan interval, only the directory watch can find
   * these within the deadline. */
  h->scan_interval = 60000;
  put_str(h, "a.log", "a1\n", false);
  make_tail(h, "*.log");
  expect_content(h, "a.log", "a1\n");
  put_str(h, "b.log", "b1\n", false);
  expect_content(h, "b.log", "b1\n");
  put_str(h, "b.log", "b2\n", true);
  expect_content(h, "b.log", "b1\nb2\n");
  /* A matching file moved into the directory. */
  path_in(h, "sub", sub, sizeof(sub));
  assert_int_equal(mkdir(sub, 0755), 0);
  put_str(h, "sub/c.tmp", "c1\n", false);
  {
    char from[256], to[256];

    path_in(h, "sub/c.tmp", from, sizeof(from));
    path_in(h, "c.log", to, sizeof(to));
    assert_int_equal(rename(from, to), 0);
  }
  expect_content(h, "c.log", "c1\n");
  done_all(h);
}

static bool
cond_total(struct h *h, const void *arg)
{
  size_t i, n = 0;

  for (i = 0; i < h->nrecs; i++)
    n += h->recs[i].len;
  return n >= *(const size_t *)arg;
}

static void
test_many_files(void **state)
{
  struct h *h = *state;
  char name[64], line[64];
  size_t i, total = 0, n;
  char *s;

  /* Enough files to grow the lookup tables several times. */
  for (i = 0; i < 300; i++) {
    snprintf(name, sizeof(name), "f%03zu.log", i);
    snprintf(line, sizeof(line), "file %zu line 1\n", i);
    put_str(h, name, line, false);
    total += strlen(line);
  }
  make_tail(h, "*.log");
  assert_true(run_until(h, cond_total, &total, 10000));
  for (i = 0; i < 300; i += 37) {
    snprintf(name, sizeof(name), "f%03zu.log", i);
    snprintf(line, sizeof(line), "file %zu line 2\n", i);
    put_str(h, name, line, true);
    total += strlen(line);
  }
  assert_true(run_until(h, cond_total, &total, 10000));
  snprintf(name, sizeof(name), "f%03d.log", 37);
  s = collect(h, name, &n);
  assert_string_equal(s, "file 37 line 1\nfile 37 line 2\n");
  free(s);
  assert_int_equal(stats(h).files_open, 300);
  done_all(h);
  assert_int_equal(sl_tail_flush_registry(h->t), 0);
  assert_int_equal(stats(h).registry_entries, 300);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    T(test_discover_existing_and_new),
    T(test_small_chunk_does_not_pin_read_window),
    T(test_start_at_end),
    T(test_whole_lines_every_byte_once),
    T(test_out_of_order_done_advances_prefix),
    T(test_restart_resumes_at_acked),
    T(test_copytruncate),
    T(test_rename_rotation),
    T(test_delete_releases_fd),
    T(test_fingerprint_mismatch_is_new_file),
    T(test_content_replaced_in_place),
    T(test_copytruncate_copy_continues_stream),
    T(test_copy_of_live_file_waits),
    T(test_same_header_not_a_copy),
    T(test_truncate_to_smaller_same_head),
    T(test_truncate_same_size_rewrite),
    T(test_gz_skipped_by_default),
    T(test_read_gz_once),
    T(test_read_gz_growing),
    T(test_long_line_truncated_and_skipped),
    T(test_long_line_with_big_limit),
    T(test_partial_line_flushed_after_partial_timeout),
    T(test_backpressure),
    T(test_corrupt_registry_recovers),
    T(test_stop_reading_then_close_with_chunks_out),
    T(test_close_with_refused_chunk),
    T(test_inotify_finds_new_files),
    T(test_many_files),
#undef T
  };

  sl_log_set_level(SL_LOG_WARN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
