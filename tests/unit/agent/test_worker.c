/* test_worker.c - batch building, line rules and the chunk ack refcount. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "bufpool.h"
#include "parse.h"
#include "sl_err.h"
#include "sl_lj.h"
#include "sl_log.h"
#include "tail.h"
#include "worker.h"

#define MAXB 64

struct fix {
  struct sl_parse_ctx *ctx;
  struct sl_src src;
  struct sl_batch *got[MAXB];
  int ngot;
  int done[16];           /* per chunk index: done callbacks */
  struct sl_tail_chunk chunks[16];
};

static struct fix F;

static void
emit(void *arg, struct sl_batch *b)
{
  struct fix *f = arg;

  assert_true(f->ngot < MAXB);
  f->got[f->ngot++] = b;
}

static void
done_cb(void *arg, struct sl_tail_chunk *c)
{
  struct fix *f = arg;

  f->done[c - f->chunks]++;
}

static int
setup(void **state)
{
  struct sl_agent_info info = {
    "host-a", "11111111-2222-4333-8444-555555555555", "host-a", "0.0.0" };
  json_t *in = json_pack("{s:s, s:s}", "parser", "json", "dataset", "t");
  char err[256];

  memset(&F, 0, sizeof(F));
  assert_int_equal(sl_parse_ctx_new(in, &info, &F.ctx, err, sizeof(err)), 0);
  json_decref(in);
  F.src.path = "/var/log/x.log";
  F.src.dev = 1;
  F.src.ino = 2;
  F.src.fp = 3;
  sl_log_set_level(SL_LOG_ERROR);
  *state = &F;
  return 0;
}

static int
teardown(void **state)
{
  int i;

  for (i = 0; i < F.ngot; i++)
    if (F.got[i])
      sl_batch_discard(F.got[i]);
  sl_parse_ctx_free(F.ctx);
  return 0;
}

static struct sl_wchunk *
mkchunk(int idx, const char *data, uint64_t off, unsigned flags)
{
  struct sl_wchunk *wc = calloc(1, sizeof(*wc));
  struct sl_tail_chunk *c = &F.chunks[idx];

  c->src = &F.src;
  c->ctx = F.ctx;
  c->offset = off;
  c->data = (char *)data;
  c->len = strlen(data);
  c->end_offset = off + c->len;
  c->flags = flags;
  c->read_time_ns = 1700000000000000000LL;
  wc->c = c;
  wc->refs = 1;
  return wc;
}

static int
count_char(const char *p, size_t n, char ch)
{
  int k = 0;
  size_t i;

  for (i = 0; i < n; i++)
    k += p[i] == ch;
  return k;
}

static void
opts(struct sl_batcher_opts *o, enum sl_batch_fmt fmt, int level,
     uint32_t max_events)
{
  memset(o, 0, sizeof(*o));
  o->fmt = fmt;
  o->level = level;
  o->max_events = max_events;
  o->max_bytes = 1 << 20;
  o->max_line_bytes = 1 << 16;
}

/* Empty and blank lines give no event; \r\n is stripped; a last line
 * without newline still counts. */
static void
test_line_rules(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  json_t *j;
  char *nl;

  opts(&o, SL_FMT_NDJSON, 0, 100);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0,
    "{\"msg\":\"a\"}\r\n\n   \t\r\n{\"msg\":\"b\"}\n{\"msg\":\"c\"}", 100, 0)),
    0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.ngot, 1);
  assert_int_equal(F.got[0]->events, 3);
  assert_int_equal(bt.st.lines, 5);
  assert_int_equal(bt.st.empty, 2);
  assert_int_equal(count_char(F.got[0]->data, F.got[0]->len, '\n'), 3);
  /* First event: message a, offset 100, no \r left anywhere. */
  nl = memchr(F.got[0]->data, '\n', F.got[0]->len);
  j = json_loadb(F.got[0]->data, (size_t)(nl - F.got[0]->data), 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "message")), "a");
  assert_int_equal(json_integer_value(json_object_get(
    json_object_get(j, "log"), "offset")), 100);
  json_decref(j);
  assert_null(memchr(F.got[0]->data, '\r', F.got[0]->len));
  sl_batcher_free(&bt);
}

/* Issue 9: one trailing '\r' is removed, once, by the line splitter; the
 * parser used to remove a second one ("x\r\r\n" gave message "x"). */
static void
test_issue9_one_cr_stripped(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  json_t *j;

  opts(&o, SL_FMT_NDJSON, 0, 100);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0, "x\r\r\n", 0, 0)), 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.ngot, 1);
  assert_int_equal(F.got[0]->events, 1);
  j = json_loadb(F.got[0]->data, F.got[0]->len, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "message")),
                      "x\r");
  json_decref(j);
  sl_batcher_free(&bt);
}

/* A chunk spread over three batches is done only after all three are
 * released, whatever the order. */
static void
test_refcount_spanning(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;

  opts(&o, SL_FMT_NDJSON, 0, 2);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0,
    "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n", 0, 0)), 0);
  /* Two full batches emitted, the fifth event is in the open batch. */
  assert_int_equal(F.ngot, 2);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.ngot, 3);
  assert_int_equal(F.got[2]->events, 1);
  sl_batch_release(F.got[2], done_cb, &F);
  F.got[2] = NULL;
  assert_int_equal(F.done[0], 0);
  sl_batch_release(F.got[0], done_cb, &F);
  F.got[0] = NULL;
  assert_int_equal(F.done[0], 0);
  sl_batch_release(F.got[1], done_cb, &F);
  F.got[1] = NULL;
  assert_int_equal(F.done[0], 1);
  sl_batcher_free(&bt);
}

/* Several chunks in one batch: each done exactly once, when the batch is
 * released; a blank-only chunk rides along with zero events. */
static void
test_refcount_many_chunks(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;

  opts(&o, SL_FMT_NDJSON, 0, 100);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0, "{\"n\":1}\n", 0, 0)), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(1, "\n\n", 8, 0)), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(2, "{\"n\":2}\n", 10, 0)), 0);
  assert_int_equal(F.ngot, 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.ngot, 1);
  assert_int_equal(F.got[0]->events, 2);
  assert_int_equal(F.got[0]->nrefs, 3);
  sl_batch_release(F.got[0], done_cb, &F);
  F.got[0] = NULL;
  assert_int_equal(F.done[0], 1);
  assert_int_equal(F.done[1], 1);
  assert_int_equal(F.done[2], 1);
  sl_batcher_free(&bt);
}

/* Only blank lines: the flushed batch has no events but still completes
 * the chunk. */
static void
test_blank_chunk(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;

  opts(&o, SL_FMT_LUMBERJACK, 1, 100);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0, "\n \n\r\n", 0, 0)), 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.ngot, 1);
  assert_int_equal(F.got[0]->events, 0);
  assert_int_equal(F.got[0]->len, 0);
  sl_batch_release(F.got[0], done_cb, &F);
  F.got[0] = NULL;
  assert_int_equal(F.done[0], 1);
  sl_batcher_free(&bt);
}

/* Discarding (shutdown) frees chunks without calling done. */
static void
test_discard_no_done(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;

  opts(&o, SL_FMT_NDJSON, 0, 2);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0,
    "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n", 0, 0)), 0);
  assert_int_equal(F.ngot, 1);
  sl_batch_discard(F.got[0]);
  F.got[0] = NULL;
  sl_batcher_free(&bt);  /* discards the open batch */
  assert_int_equal(F.done[0], 0);
}

struct frames {
  int windows;
  uint32_t window;
  uint32_t seqs;
  uint32_t last_seq;
  int bad;
};

static int
on_frame(void *arg, const struct sl_lj_frame *f)
{
  struct frames *fr = arg;

  if (f->type == SL_LJ_WINDOW) {
    fr->windows++;
    fr->window = f->seq;
  } else if (f->type == SL_LJ_JSON) {
    json_t *j = json_loadb(f->data, f->len, 0, NULL);
    if (j == NULL || f->seq != fr->last_seq + 1)
      fr->bad++;
    json_decref(j);
    fr->last_seq = f->seq;
    fr->seqs++;
  }
  return 0;
}

static void
check_lj(int level)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  struct sl_lj_limits lim;
  struct sl_lj_dec *d;
  struct frames fr;
  char err[128];
  int i;

  opts(&o, SL_FMT_LUMBERJACK, level, 3);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0,
    "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\nnot json\n", 0, 0)), 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.ngot, 2);
  sl_lj_limits_default(&lim);
  for (i = 0; i < 2; i++) {
    memset(&fr, 0, sizeof(fr));
    d = sl_lj_dec_new(&lim);
    assert_non_null(d);
    assert_int_equal(sl_lj_dec_feed(d, F.got[i]->data, F.got[i]->len,
                                    on_frame, &fr, err, sizeof(err)), 0);
    assert_int_equal(sl_lj_dec_pending(d), 0);
    sl_lj_dec_free(d);
    assert_int_equal(fr.windows, 1);
    assert_int_equal(fr.window, F.got[i]->events);
    assert_int_equal(fr.seqs, F.got[i]->events);
    assert_int_equal(fr.bad, 0);
    /* Level 0 is W + plain J frames; otherwise W + one C frame. */
    assert_int_equal(F.got[i]->data[6 + 1], level ? 'C' : 'J');
    /* Regression (issue 9 review): a compressed batch keeps a buffer of
     * about its own size while it waits for its ack, not one sized for
     * the uncompressed events (the queue limit counts len). */
    if (level)
      assert_true(F.got[i]->cap <= 2 * F.got[i]->len + 512);
  }
  assert_int_equal(F.got[0]->events, 3);
  assert_int_equal(F.got[1]->events, 2);
  sl_batcher_free(&bt);
}

static void
test_lumberjack_plain(void **state)
{
  check_lj(0);
}

static void
test_lumberjack_compressed(void **state)
{
  check_lj(1);
}

/* batch_max_bytes splits batches before max_events does. */
static void
test_max_bytes(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  char line[300], *data;
  size_t i, total = 0;
  int k;

  opts(&o, SL_FMT_NDJSON, 0, 10000);
  o.max_bytes = 4096;
  data = malloc(100 * sizeof(line));
  data[0] = '\0';
  memset(line, 'a', sizeof(line));
  memcpy(line, "{\"msg\":\"", 8);
  memcpy(line + sizeof(line) - 4, "\"}\n", 4);
  for (i = 0; i < 100; i++)
    strcat(data, line);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0, data, 0, 0)), 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_true(F.ngot > 5);
  for (k = 0; k < F.ngot; k++) {
    assert_true(F.got[k]->len < 4096 + 2048);
    total += F.got[k]->events;
  }
  assert_int_equal(total, 100);
  for (k = 0; k < F.ngot; k++) {
    sl_batch_release(F.got[k], done_cb, &F);
    F.got[k] = NULL;
  }
  assert_int_equal(F.done[0], 1);
  sl_batcher_free(&bt);
  free(data);
}

/* A line cut at max_line_bytes sits between its neighbours in one chunk
 * (issue 15: file order), is tagged, and the lines after it get their
 * real file offsets (the skipped rest counted in). */
static void
test_truncated_flag(void **state)
{
  static const struct sl_tail_cut cut[] = {{ 2, 7, 100 }};
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  struct sl_wchunk *wc;
  const char *d, *a, *h, *b;

  opts(&o, SL_FMT_NDJSON, 0, 10);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  wc = mkchunk(0, "a\nHEAD\nb\n", 1000, SL_CHUNK_TRUNCATED);
  F.chunks[0].cuts = cut;
  F.chunks[0].ncuts = 1;
  F.chunks[0].end_offset = 1000 + 9 + 100;
  assert_int_equal(sl_batcher_add(&bt, wc), 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.got[0]->events, 3);
  d = F.got[0]->data;
  a = strstr(d, "\"offset\":1000");
  h = strstr(d, "\"offset\":1002");
  b = strstr(d, "\"offset\":1107");
  assert_true(a && h && b && a < h && h < b);
  assert_non_null(strstr(h, "truncated"));
  assert_null(strstr(b, "truncated"));
  assert_int_equal(count_char(d, strlen(d), '\n'), 3);
  sl_batcher_free(&bt);
  F.chunks[0].cuts = NULL;
  F.chunks[0].ncuts = 0;
}

/* A final line without newline flushed early, over the limit: one line,
 * tagged. */
static void
test_truncated_no_nl(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;

  opts(&o, SL_FMT_NDJSON, 0, 10);
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0, "{\"msg\":\"abcdefg", 0,
                                               SL_CHUNK_TRUNCATED |
                                               SL_CHUNK_NO_NL)), 0);
  assert_int_equal(sl_batcher_flush(&bt), 0);
  assert_int_equal(F.got[0]->events, 1);
  assert_non_null(strstr(F.got[0]->data, "truncated"));
  sl_batcher_free(&bt);
}

/* With a pool, acked batches give their buffers back and the next batches
 * reuse them: after the first two, no allocation per batch (NDJSON hands
 * the event buffer itself over; Lumberjack compresses into a lent one). */
static void
check_recycle(enum sl_batch_fmt fmt, int level)
{
  static const char lines[] =
    "{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n{\"msg\":\"c\"}\n{\"msg\":\"d\"}\n";
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  struct sl_bufpool *bp;
  struct sl_bufpool_stats st;
  char *seen[2] = { NULL, NULL };
  int i;

  assert_int_equal(sl_bufpool_new(1 << 20, 4, &bp), 0);
  opts(&o, fmt, level, 4);
  o.pool = bp;
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  for (i = 0; i < 12; i++) {
    assert_int_equal(sl_batcher_add(&bt, mkchunk(i, lines,
                                                 (uint64_t)i * 100, 0)), 0);
    assert_int_equal(F.ngot, 1);
    assert_int_equal(F.got[0]->events, 4);
    assert_ptr_equal(F.got[0]->pool, bp);
    if (i >= 2)
      assert_true(F.got[0]->data == seen[0] || F.got[0]->data == seen[1]);
    if (i < 2)
      seen[i] = F.got[0]->data;
    sl_batch_release(F.got[0], done_cb, &F);
    F.got[0] = NULL;
    F.ngot = 0;
    assert_int_equal(F.done[i], 1);
  }
  sl_bufpool_stats(bp, &st);
  assert_true(st.misses <= 3);
  assert_true(st.hits >= 10);
  assert_true(st.idle <= 4);
  sl_batcher_free(&bt);
  sl_bufpool_stats(bp, &st);
  assert_int_equal(st.lent, 0);
  sl_bufpool_close(bp);
}

static void
test_recycle_ndjson(void **state)
{
  check_recycle(SL_FMT_NDJSON, 0);
}

static void
test_recycle_lumberjack(void **state)
{
  check_recycle(SL_FMT_LUMBERJACK, 1);
}

static void
test_recycle_lumberjack_plain(void **state)
{
  check_recycle(SL_FMT_LUMBERJACK, 0);
}

/* A batch freed after its batcher and the pool owner are gone still
 * returns its buffer safely (shutdown order: workers stop first, the
 * output hands its batches back later). */
static void
test_batch_outlives_pool(void **state)
{
  struct sl_batcher bt;
  struct sl_batcher_opts o;
  struct sl_bufpool *bp;

  assert_int_equal(sl_bufpool_new(1 << 20, 4, &bp), 0);
  opts(&o, SL_FMT_NDJSON, 0, 2);
  o.pool = bp;
  assert_int_equal(sl_batcher_init(&bt, &o, emit, &F), 0);
  assert_int_equal(sl_batcher_add(&bt, mkchunk(0,
    "{\"n\":1}\n{\"n\":2}\n", 0, 0)), 0);
  assert_int_equal(F.ngot, 1);
  sl_batcher_free(&bt);
  sl_bufpool_close(bp);
  assert_non_null(strstr(F.got[0]->data, "\"n\":2"));
  sl_batch_discard(F.got[0]);  /* frees the pool (ASan checks) */
  F.got[0] = NULL;
}

/* ---- the threaded pool on a real loop ---- */

struct poolfix {
  uv_loop_t loop;
  struct sl_workers *w;
  uint64_t events;
  int batches;
  int expect;
  uv_timer_t guard;
};

static void
pool_ready(void *arg, struct sl_batch *b)
{
  struct poolfix *p = arg;

  p->events += b->events;
  p->batches++;
  sl_batch_release(b, done_cb, &F);
  if ((int)p->events >= p->expect) {
    sl_workers_stop(p->w);
    uv_close((uv_handle_t *)&p->guard, NULL);
  }
}

static void
guard_cb(uv_timer_t *t)
{
  fail_msg("pool did not deliver in time");
}

static void
test_pool_flush_interval(void **state)
{
  struct poolfix p;
  struct sl_workers_opts o;
  int i;

  memset(&p, 0, sizeof(p));
  assert_int_equal(uv_loop_init(&p.loop), 0);
  memset(&o, 0, sizeof(o));
  o.n = 3;
  opts(&o.b, SL_FMT_LUMBERJACK, 1, 1000);
  o.flush_interval_ms = 20;
  o.max_queue_bytes = 1 << 20;
  o.max_pool_bytes = 1 << 20;
  o.loop = &p.loop;
  o.ready = pool_ready;
  o.arg = &p;
  assert_int_equal(sl_workers_start(&o, &p.w), 0);
  p.expect = 8 * 2;
  /* Far fewer events than max_events: only the flush interval ships them. */
  for (i = 0; i < 8; i++)
    assert_int_equal(sl_workers_push(p.w, mkchunk(i, "{\"a\":1}\n{\"b\":2}\n",
                                                  (uint64_t)i * 16, 0)), 0);
  uv_timer_init(&p.loop, &p.guard);
  uv_timer_start(&p.guard, guard_cb, 5000, 0);
  uv_run(&p.loop, UV_RUN_DEFAULT);
  assert_int_equal(p.events, 16);
  for (i = 0; i < 8; i++)
    assert_int_equal(F.done[i], 1);
  assert_int_equal(uv_loop_close(&p.loop), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_line_rules, setup, teardown),
    cmocka_unit_test_setup_teardown(test_issue9_one_cr_stripped, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_refcount_spanning, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refcount_many_chunks, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_blank_chunk, setup, teardown),
    cmocka_unit_test_setup_teardown(test_discard_no_done, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lumberjack_plain, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lumberjack_compressed, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_max_bytes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_no_nl, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated_flag, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pool_flush_interval, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_recycle_ndjson, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recycle_lumberjack, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_recycle_lumberjack_plain, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_batch_outlives_pool, setup,
                                    teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
