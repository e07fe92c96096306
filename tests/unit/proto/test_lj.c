/* test_lj.c - Lumberjack v2 codec: byte-exact fixtures, every split point,
 * every limit, callback stop, random round trips, and replay of the fuzz
 * regression corpus (tests/fuzz/corpus-regress/, one crash input a file). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sl_err.h"
#include "sl_lj.h"

#ifndef SL_LJ_REGRESS_DIR
#define SL_LJ_REGRESS_DIR "tests/fuzz/corpus-regress"
#endif

static const char *regress_dir = SL_LJ_REGRESS_DIR;

/* Window of 3 JSON events, uncompressed: 2W 3, then 2J 1..3. */
static const char fx_plain_hex[] =
  "325700000003324a00000001000000197b226d657373616765223a2268656c6c"
  "6f222c226e223a317d324a000000020000001a7b226d657373616765223a2277"
  "c3b6726c64222c226e223a327d324a00000003000000377b224074696d657374"
  "616d70223a22323032362d31312d32355431363a30303a30305a222c226d6573"
  "73616765223a227468726565227d";
/* The same window, the three J frames inside one C frame made by Python:
 * zlib.compress(j_frames, 1). */
static const char fx_py_comp_hex[] =
  "32570000000332430000006c780133f2626060600462c96aa5dcd4e2e2c4f454"
  "252ba58cd49c9c7c251da53c252bc35a2390122620964256527e785b514e0a44"
  "8d11440d33508d79b592434926d0a492c4dc02a04946064666ba8686ba46a621"
  "8666560606401405d484b0aa24a3283555a91600d74d22eb";
/* v1 data frame: 1D seq 7, pairs line="hello \"v1\"", host="h\xff" "1",
 * "k\n"="". */
static const char fx_data_hex[] =
  "31440000000700000003000000046c696e650000000a68656c6c6f2022763122"
  "00000004686f73740000000368ff31000000026b0a00000000";
static const char fx_data_json[] =
  "{\"line\":\"hello \\\"v1\\\"\",\"host\":\"h\xef\xbf\xbd" "1\","
  "\"k\\n\":\"\"}";
static const char fx_ack_hex[] = "324100000003";

static const char *fx_events[3] = {
  "{\"message\":\"hello\",\"n\":1}",
  "{\"message\":\"w\xc3\xb6rld\",\"n\":2}",
  "{\"@timestamp\":\"2026-11-25T16:00:00Z\",\"message\":\"three\"}",
};

static char *
unhex(const char *h, size_t *len)
{
  size_t n = strlen(h) / 2, i;
  char *p = malloc(n + 1);
  unsigned v;

  assert_non_null(p);
  for (i = 0; i < n; i++) {
    assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
    p[i] = (char)v;
  }
  *len = n;
  return p;
}

/* Frames seen by the callback, copied. */
struct got_frame {
  int type, version;
  uint32_t seq;
  char *data;
  size_t len;
  const char *ptr;      /* where the decoder delivered data from */
};

struct rec {
  struct got_frame *f;
  size_t n, cap;
  size_t stop_at;       /* return stop_val when frame number stop_at arrives */
  int stop_val;
};

static void
rec_free(struct rec *r)
{
  size_t i;

  for (i = 0; i < r->n; i++)
    free(r->f[i].data);
  free(r->f);
  memset(r, 0, sizeof(*r));
}

static int
rec_cb(void *arg, const struct sl_lj_frame *f)
{
  struct rec *r = arg;
  struct got_frame *g;

  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->f = realloc(r->f, r->cap * sizeof(*r->f));
    assert_non_null(r->f);
  }
  g = &r->f[r->n++];
  g->type = (int)f->type;
  g->version = f->version;
  g->seq = f->seq;
  g->len = f->len;
  g->ptr = f->data;
  g->data = NULL;
  if (f->data) {
    g->data = malloc(f->len + 1);
    assert_non_null(g->data);
    memcpy(g->data, f->data, f->len);
    g->data[f->len] = '\0';
  } else {
    assert_int_equal(f->len, 0);
  }
  if (r->stop_at && r->n == r->stop_at)
    return r->stop_val;
  return 0;
}

/* Decode p[0..n) in pieces of the sizes produced by `step` (cycled). */
static int
decode_steps(const struct sl_lj_limits *lim, const char *p, size_t n,
             const size_t *steps, size_t nsteps, struct rec *r, char *err,
             size_t errlen)
{
  struct sl_lj_dec *d = sl_lj_dec_new(lim);
  size_t off = 0, k = 0, m;
  int rc = 0;

  assert_non_null(d);
  while (off < n) {
    m = steps[k++ % nsteps];
    if (m > n - off)
      m = n - off;
    rc = sl_lj_dec_feed(d, p + off, m, rec_cb, r, err, errlen);
    if (rc)
      break;
    off += m;
  }
  if (rc == 0)
    assert_int_equal(sl_lj_dec_pending(d), 0);
  sl_lj_dec_free(d);
  return rc;
}

static int
decode_whole(const struct sl_lj_limits *lim, const char *p, size_t n,
             struct rec *r, char *err, size_t errlen)
{
  size_t step = n ? n : 1;
  return decode_steps(lim, p, n, &step, 1, r, err, errlen);
}

static void
expect_fixture_window(const struct rec *r)
{
  size_t i;

  assert_int_equal(r->n, 4);
  assert_int_equal(r->f[0].type, SL_LJ_WINDOW);
  assert_int_equal(r->f[0].version, '2');
  assert_int_equal(r->f[0].seq, 3);
  assert_null(r->f[0].data);
  for (i = 0; i < 3; i++) {
    assert_int_equal(r->f[i + 1].type, SL_LJ_JSON);
    assert_int_equal(r->f[i + 1].version, '2');
    assert_int_equal(r->f[i + 1].seq, i + 1);
    assert_int_equal(r->f[i + 1].len, strlen(fx_events[i]));
    assert_memory_equal(r->f[i + 1].data, fx_events[i], r->f[i + 1].len);
  }
}

/* Decode at every split point (two feeds) and in 1-byte feeds; each must
 * give the same frames as one whole feed. */
static void
check_all_splits(const char *p, size_t n, void (*expect)(const struct rec *))
{
  struct rec r = {0};
  char err[256];
  size_t cut, one = 1, steps[2];

  assert_int_equal(decode_whole(NULL, p, n, &r, err, sizeof(err)), 0);
  expect(&r);
  rec_free(&r);
  for (cut = 1; cut <= n; cut++) {
    steps[0] = cut;
    steps[1] = n;
    assert_int_equal(decode_steps(NULL, p, n, steps, 2, &r, err,
                                  sizeof(err)), 0);
    expect(&r);
    rec_free(&r);
  }
  assert_int_equal(decode_steps(NULL, p, n, &one, 1, &r, err, sizeof(err)),
                   0);
  expect(&r);
  rec_free(&r);
}

static void
fixture_encode(struct sl_buf *b)
{
  size_t i;

  assert_int_equal(sl_lj_enc_window(b, 3), 0);
  for (i = 0; i < 3; i++)
    assert_int_equal(sl_lj_enc_json(b, (uint32_t)i + 1, fx_events[i],
                                     strlen(fx_events[i])), 0);
}

static void
test_plain_encode_exact(void **state)
{
  struct sl_buf b;
  size_t n;
  char *fx = unhex(fx_plain_hex, &n);

  (void)state;
  sl_buf_init(&b, 0);
  fixture_encode(&b);
  assert_int_equal(b.len, n);
  assert_memory_equal(b.p, fx, n);
  sl_buf_free(&b);
  free(fx);
}

static void
test_plain_decode_splits(void **state)
{
  size_t n;
  char *fx = unhex(fx_plain_hex, &n);

  (void)state;
  check_all_splits(fx, n, expect_fixture_window);
  free(fx);
}

/* A frame wholly inside the fed buffer is delivered in place. */
static void
test_plain_zero_copy(void **state)
{
  struct rec r = {0};
  char err[256];
  size_t n;
  char *fx = unhex(fx_plain_hex, &n);

  (void)state;
  assert_int_equal(decode_whole(NULL, fx, n, &r, err, sizeof(err)), 0);
  assert_ptr_equal(r.f[1].ptr, fx + 6 + 10);
  assert_ptr_equal(r.f[2].ptr, fx + 6 + 10 + r.f[1].len + 10);
  rec_free(&r);
  free(fx);
}

static void
test_python_compressed_splits(void **state)
{
  size_t n;
  char *fx = unhex(fx_py_comp_hex, &n);

  (void)state;
  check_all_splits(fx, n, expect_fixture_window);
  free(fx);
}

/* Our own C frame at level 1 (compared by decoding: zlib versions may pick
 * other bytes), the window both outside and inside the C frame. */
static void
test_compressed_level1(void **state)
{
  struct sl_buf j, b;
  size_t i;

  (void)state;
  sl_buf_init(&j, 0);
  sl_buf_init(&b, 0);
  for (i = 0; i < 3; i++)
    assert_int_equal(sl_lj_enc_json(&j, (uint32_t)i + 1, fx_events[i],
                                     strlen(fx_events[i])), 0);
  assert_int_equal(sl_lj_enc_window(&b, 3), 0);
  assert_int_equal(sl_lj_enc_compressed(&b, j.p, j.len, 1), 0);
  assert_int_equal(b.p[6], '2');
  assert_int_equal(b.p[7], 'C');
  assert_int_equal((unsigned char)b.p[12], 0x78); /* zlib header */
  check_all_splits(b.p, b.len, expect_fixture_window);

  /* W inside C too, as a sender may batch it with the events. */
  sl_buf_reset(&b);
  sl_buf_reset(&j);
  fixture_encode(&j);
  assert_int_equal(sl_lj_enc_compressed(&b, j.p, j.len, 9), 0);
  check_all_splits(b.p, b.len, expect_fixture_window);
  sl_buf_free(&j);
  sl_buf_free(&b);
}

static void
expect_data(const struct rec *r)
{
  json_t *o;
  json_error_t je;

  assert_int_equal(r->n, 1);
  assert_int_equal(r->f[0].type, SL_LJ_DATA);
  assert_int_equal(r->f[0].version, '1');
  assert_int_equal(r->f[0].seq, 7);
  assert_int_equal(r->f[0].len, strlen(fx_data_json));
  assert_memory_equal(r->f[0].data, fx_data_json, r->f[0].len);
  o = json_loadb(r->f[0].data, r->f[0].len, 0, &je);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "line")),
                      "hello \"v1\"");
  json_decref(o);
}

static void
test_data_v1(void **state)
{
  size_t n;
  char *fx = unhex(fx_data_hex, &n);

  (void)state;
  check_all_splits(fx, n, expect_data);
  free(fx);
}

static void
expect_ack(const struct rec *r)
{
  assert_int_equal(r->n, 1);
  assert_int_equal(r->f[0].type, SL_LJ_ACK);
  assert_int_equal(r->f[0].seq, 3);
  assert_null(r->f[0].data);
}

static void
test_ack(void **state)
{
  struct sl_buf b;
  size_t n;
  char *fx = unhex(fx_ack_hex, &n);

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_lj_enc_ack(&b, 3), 0);
  assert_int_equal(b.len, n);
  assert_memory_equal(b.p, fx, n);
  check_all_splits(fx, n, expect_ack);
  sl_buf_free(&b);
  free(fx);
}

/* All fixtures back to back, one stream, 1..7-byte feeds. */
static void
test_mixed_stream(void **state)
{
  struct sl_buf s;
  struct rec r = {0};
  const char *hx[4] = {fx_plain_hex, fx_py_comp_hex, fx_data_hex,
                       fx_ack_hex};
  size_t steps[7] = {1, 2, 3, 4, 5, 6, 7}, i, n;
  char err[256], *p;

  (void)state;
  sl_buf_init(&s, 0);
  for (i = 0; i < 4; i++) {
    p = unhex(hx[i], &n);
    assert_int_equal(sl_buf_append(&s, p, n), 0);
    free(p);
  }
  assert_int_equal(decode_steps(NULL, s.p, s.len, steps, 7, &r, err,
                                sizeof(err)), 0);
  assert_int_equal(r.n, 4 + 4 + 1 + 1);
  assert_int_equal(r.f[8].type, SL_LJ_DATA);
  assert_int_equal(r.f[9].type, SL_LJ_ACK);
  rec_free(&r);
  sl_buf_free(&s);
}

static void
test_json_begin_end(void **state)
{
  struct sl_buf b;
  struct rec r = {0};
  char err[256];
  size_t off;
  int rc = -1;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_lj_enc_window(&b, 1), 0);
  off = sl_lj_enc_json_begin(&b, 1, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(off, 6 + 6);
  assert_int_equal(sl_buf_append_str(&b, fx_events[0]), 0);
  sl_lj_enc_json_end(&b, off);
  assert_int_equal(decode_whole(NULL, b.p, b.len, &r, err, sizeof(err)), 0);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.f[1].data, fx_events[0]);
  rec_free(&r);

  /* A full buffer: begin fails and leaves it unchanged. */
  sl_buf_free(&b);
  sl_buf_init(&b, 12);
  assert_int_equal(sl_lj_enc_window(&b, 1), 0);
  assert_int_equal(sl_lj_enc_json_begin(&b, 1, &rc), 0);
  assert_int_equal(rc, SL_E2BIG);
  assert_int_equal(b.len, 6);
  sl_buf_free(&b);
}

static void
test_encoder_errors(void **state)
{
  struct sl_buf b;
  char big[4096];

  (void)state;
  memset(big, 'x', sizeof(big));
  sl_buf_init(&b, 64);
  assert_int_equal(sl_lj_enc_compressed(&b, big, 10, 0), SL_EINVAL);
  assert_int_equal(sl_lj_enc_compressed(&b, big, 10, 10), SL_EINVAL);
  assert_int_equal(sl_lj_enc_json(&b, 1, big, sizeof(big)), SL_E2BIG);
  assert_int_equal(b.len, 0);
  /* deflateBound of 4 KiB is over 64 bytes: refused, b unchanged. */
  assert_int_equal(sl_lj_enc_window(&b, 1), 0);
  assert_int_equal(sl_lj_enc_compressed(&b, big, sizeof(big), 6), SL_E2BIG);
  assert_int_equal(b.len, 6);
  sl_buf_free(&b);
}

/* Expect decoding to fail with rc and a reason containing `want`, in a
 * whole feed and in 1-byte feeds; no frame after the bad one is seen. */
static void
expect_fail(const struct sl_lj_limits *lim, const char *p, size_t n, int rc,
            const char *want, size_t max_frames)
{
  struct rec r = {0};
  char err[256];
  size_t one = 1;

  err[0] = '\0';
  assert_int_equal(decode_whole(lim, p, n, &r, err, sizeof(err)), rc);
  if (strstr(err, want) == NULL)
    fail_msg("reason '%s' lacks '%s'", err, want);
  assert_true(r.n <= max_frames);
  rec_free(&r);
  err[0] = '\0';
  assert_int_equal(decode_steps(lim, p, n, &one, 1, &r, err, sizeof(err)),
                   rc);
  if (strstr(err, want) == NULL)
    fail_msg("reason '%s' lacks '%s' (1-byte feeds)", err, want);
  assert_true(r.n <= max_frames);
  rec_free(&r);
}

static void
put32(char *p, uint32_t v)
{
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static void
test_bad_version_and_type(void **state)
{
  char f[6] = {'2', 'W', 0, 0, 0, 1};

  (void)state;
  f[0] = '3';
  expect_fail(NULL, f, 6, SL_EPROTO, "bad version byte 0x33 '3' at offset 0",
              0);
  f[0] = 0;
  expect_fail(NULL, f, 6, SL_EPROTO, "bad version byte 0x00 at offset 0", 0);
  f[0] = '2';
  f[1] = 'Z';
  expect_fail(NULL, f, 6, SL_EPROTO, "unknown frame type 0x5a 'Z' at offset 1",
              0);
  /* J exists only in v2. */
  {
    char j[12] = {'1', 'J', 0, 0, 0, 1, 0, 0, 0, 2, '{', '}'};
    expect_fail(NULL, j, sizeof(j), SL_EPROTO, "version '1'", 0);
  }
  /* The offset names the byte in the stream, after good frames. */
  {
    char s[12] = {'2', 'W', 0, 0, 0, 1, '2', 'A', 0, 0, 0, 0};
    s[7] = 'q';
    expect_fail(NULL, s, sizeof(s), SL_EPROTO, "0x71 'q' at offset 7", 1);
  }
}

static void
test_window_limit(void **state)
{
  struct sl_lj_limits lim;
  char f[6] = {'2', 'W', 0, 0, 0, 0};
  struct rec r = {0};
  char err[256];

  (void)state;
  sl_lj_limits_default(&lim);
  put32(f + 2, 0xffffffffu);
  expect_fail(NULL, f, 6, SL_E2BIG, "window 4294967295", 0);
  put32(f + 2, lim.max_window + 1);
  expect_fail(NULL, f, 6, SL_E2BIG, "over max_window 65536", 0);
  put32(f + 2, lim.max_window);
  assert_int_equal(decode_whole(NULL, f, 6, &r, err, sizeof(err)), 0);
  assert_int_equal(r.n, 1);
  rec_free(&r);
  lim.max_window = 10;
  put32(f + 2, 11);
  expect_fail(&lim, f, 6, SL_E2BIG, "over max_window 10", 0);
}

static void
test_frame_limit(void **state)
{
  struct sl_lj_limits lim;
  char f[64];

  (void)state;
  sl_lj_limits_default(&lim);
  lim.max_frame = 16;
  memcpy(f, "2J\0\0\0\1", 6);
  put32(f + 6, 17);
  expect_fail(&lim, f, 10, SL_E2BIG, "claims 17 bytes, over max_frame 16", 0);
  put32(f + 6, 0xffffffffu);
  expect_fail(NULL, f, 10, SL_E2BIG, "over max_frame 67108864", 0);
  /* C length over max_frame is refused from the header alone. */
  memcpy(f, "2C", 2);
  put32(f + 2, 17);
  expect_fail(&lim, f, 6, SL_E2BIG, "claims 17 compressed bytes", 0);
  /* D: pair count that cannot fit, then key and value lengths. */
  memcpy(f, "1D\0\0\0\1", 6);
  put32(f + 6, 3);
  expect_fail(&lim, f, 10, SL_E2BIG, "claims 3 pairs", 0);
  put32(f + 6, 1);
  put32(f + 10, 9);
  expect_fail(&lim, f, 14, SL_E2BIG, "exceed max_frame 16", 0);
  put32(f + 10, 1);
  f[14] = 'k';
  put32(f + 15, 8);
  expect_fail(&lim, f, 19, SL_E2BIG, "exceed max_frame 16", 0);
  put32(f + 15, 0xffffffffu);
  expect_fail(NULL, f, 19, SL_E2BIG, "exceed max_frame", 0);
  /* Exactly at the limit passes: 4 + 1 + 4 + 7 = 16. */
  put32(f + 15, 7);
  memcpy(f + 19, "1234567", 7);
  {
    struct rec r = {0};
    char err[256];
    assert_int_equal(decode_whole(&lim, f, 26, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.f[0].data, "{\"k\":\"1234567\"}");
    rec_free(&r);
  }
}

/* Build a C frame from raw inner bytes. */
static void
make_c(struct sl_buf *b, const char *inner, size_t n)
{
  assert_int_equal(sl_lj_enc_compressed(b, inner, n, 6), 0);
}

static void
test_nested_c(void **state)
{
  struct sl_buf in, out;
  size_t n;
  char *fx = unhex(fx_plain_hex, &n);

  (void)state;
  sl_buf_init(&in, 0);
  sl_buf_init(&out, 0);
  make_c(&in, fx, n);
  make_c(&out, in.p, in.len);
  expect_fail(NULL, out.p, out.len, SL_EPROTO, "nested C frame", 0);
  sl_buf_free(&in);
  sl_buf_free(&out);
  free(fx);
}

static void
test_c_stream_errors(void **state)
{
  struct sl_buf b, t;
  size_t n;
  char *fx = unhex(fx_plain_hex, &n);
  uint32_t clen;

  (void)state;
  sl_buf_init(&b, 0);
  sl_buf_init(&t, 0);
  make_c(&b, fx, n);
  clen = (uint32_t)b.len - 6;

  /* Truncated zlib stream: the C length says the stream stops early. */
  assert_int_equal(sl_buf_append(&t, b.p, b.len - 5), 0);
  put32(t.p + 2, clen - 5);
  expect_fail(NULL, t.p, t.len, SL_EPROTO, "truncated zlib stream", 4);

  /* Garbage after the end of the zlib stream, inside the C length. */
  sl_buf_reset(&t);
  assert_int_equal(sl_buf_append(&t, b.p, b.len), 0);
  assert_int_equal(sl_buf_append(&t, "xyz", 3), 0);
  put32(t.p + 2, clen + 3);
  expect_fail(NULL, t.p, t.len, SL_EPROTO, "garbage after the end of the "
              "zlib stream", 4);

  /* Corrupt deflate data. */
  sl_buf_reset(&t);
  assert_int_equal(sl_buf_append(&t, b.p, b.len), 0);
  t.p[6] = 0x12;
  expect_fail(NULL, t.p, t.len, SL_EPROTO, "bad zlib data", 0);

  /* The inflated bytes end in the middle of a frame. */
  sl_buf_reset(&t);
  make_c(&t, fx, n - 3);
  expect_fail(NULL, t.p, t.len, SL_EPROTO, "ends inside a frame", 3);

  /* An empty C frame has no stream at all. */
  expect_fail(NULL, "2C\0\0\0\0", 6, SL_EPROTO, "empty C frame", 0);

  /* Raw deflate (no zlib header) is refused: the spec says zlib. */
  {
    z_stream z;
    unsigned char raw[512];
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, -15, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)fx;
    z.avail_in = (uInt)n;
    z.next_out = raw;
    z.avail_out = sizeof(raw);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    sl_buf_reset(&t);
    assert_int_equal(sl_buf_append(&t, "2C\0\0\0\0", 6), 0);
    put32(t.p + 2, (uint32_t)z.total_out);
    assert_int_equal(sl_buf_append(&t, raw, z.total_out), 0);
    deflateEnd(&z);
    expect_fail(NULL, t.p, t.len, SL_EPROTO, "bad zlib data", 0);
  }
  sl_buf_free(&b);
  sl_buf_free(&t);
  free(fx);
}

/* Deflate `total` bytes: J frames of `jlen` zero bytes each, streamed from a
 * small zero buffer so the test itself stays small in memory. */
static void
make_bomb(struct sl_buf *out, uint64_t total, uint32_t jlen, int level)
{
  static char zero[1u << 20];
  z_stream z;
  uint64_t done = 0, left_in_j = 0;
  uint32_t seq = 0;
  char hdr[10];
  size_t m;
  int zr;

  memset(&z, 0, sizeof(z));
  assert_int_equal(deflateInit(&z, level), Z_OK);
  assert_int_equal(sl_buf_append(out, "2C\0\0\0\0", 6), 0);
  while (done < total || z.avail_in) {
    if (z.avail_in == 0) {
      if (left_in_j == 0) {
        memcpy(hdr, "2J", 2);
        put32(hdr + 2, ++seq);
        put32(hdr + 6, jlen);
        z.next_in = (unsigned char *)hdr;
        z.avail_in = 10;
        left_in_j = jlen;
        done += 10;
      } else {
        m = left_in_j < sizeof(zero) ? (size_t)left_in_j : sizeof(zero);
        z.next_in = (unsigned char *)zero;
        z.avail_in = (uInt)m;
        left_in_j -= m;
        done += m;
      }
    }
    assert_int_equal(sl_buf_reserve(out, 1u << 16), 0);
    z.next_out = (unsigned char *)out->p + out->len;
    z.avail_out = 1u << 16;
    assert_int_equal(deflate(&z, Z_NO_FLUSH), Z_OK);
    out->len = (size_t)(z.next_out - (unsigned char *)out->p);
  }
  do {
    assert_int_equal(sl_buf_reserve(out, 1u << 16), 0);
    z.next_out = (unsigned char *)out->p + out->len;
    z.avail_out = 1u << 16;
    zr = deflate(&z, Z_FINISH);
    out->len = (size_t)(z.next_out - (unsigned char *)out->p);
  } while (zr == Z_OK);
  assert_int_equal(zr, Z_STREAM_END);
  put32(out->p + 2, (uint32_t)(out->len - 6));
  deflateEnd(&z);
}

static void
test_zip_bomb_small(void **state)
{
  struct sl_lj_limits lim;
  struct sl_buf b;

  (void)state;
  sl_lj_limits_default(&lim);
  lim.max_inflate = 1u << 20;
  sl_buf_init(&b, 0);
  /* 16 MiB inflated (one 8 MiB J frame within max_frame, twice). */
  make_bomb(&b, 16u << 20, 8u << 20, 9);
  assert_true(b.len < (64u << 10));
  expect_fail(&lim, b.p, b.len, SL_E2BIG, "inflates past max_inflate 1048576",
              0);
  sl_buf_free(&b);
}

static int
mib_cb(void *arg, const struct sl_lj_frame *f)
{
  assert_int_equal(f->type, SL_LJ_JSON);
  assert_int_equal(f->len, 1u << 20);
  (*(size_t *)arg)++;
  return 0;
}

/* 1 GiB inflated from ~4.5 MiB, default limits: refused once 128 MiB came
 * out, without ever sizing anything from the claimed output. */
static void
test_zip_bomb_1g(void **state)
{
  struct sl_lj_limits lim;
  struct sl_buf b;
  struct sl_lj_dec *d;
  size_t frames = 0;
  char err[256];

  (void)state;
  sl_lj_limits_default(&lim);
  lim.max_frame = 8u << 20;  /* compressed 1 GiB at level 1 is ~4.5 MiB */
  sl_buf_init(&b, 0);
  make_bomb(&b, 1ull << 30, 1u << 20, 1);
  assert_true(b.len < lim.max_frame);
  d = sl_lj_dec_new(&lim);
  assert_int_equal(sl_lj_dec_feed(d, b.p, b.len, mib_cb, &frames, err,
                                  sizeof(err)), SL_E2BIG);
  assert_non_null(strstr(err, "max_inflate 134217728"));
  /* Every whole 1 MiB event before the cap was delivered: 127 of them. */
  assert_int_equal(frames, 127);
  sl_lj_dec_free(d);
  sl_buf_free(&b);
}

/* Issue 15: a bomb of valid events is stopped by its ratio within
 * SL_LJ_RATIO_GRACE (+ one chunk), not after max_inflate; an event over
 * max_event_bytes is refused at its header. Both errors name the limit. */
static void
test_ratio_and_event_limits(void **state)
{
  struct sl_lj_limits lim;
  struct sl_buf b;
  struct sl_lj_dec *d;
  size_t frames = 0;
  char err[256];

  (void)state;
  sl_lj_limits_default(&lim);
  lim.max_ratio = 100;
  sl_buf_init(&b, 0);
  make_bomb(&b, 256u << 20, 1u << 20, 9);
  d = sl_lj_dec_new(&lim);
  assert_int_equal(sl_lj_dec_feed(d, b.p, b.len, mib_cb, &frames, err,
                                  sizeof(err)), SL_E2BIG);
  assert_non_null(strstr(err, "over max_inflate_ratio 100"));
  assert_true(frames <= SL_LJ_RATIO_GRACE / (1u << 20));
  sl_lj_dec_free(d);
  /* An event over max_event_bytes: refused at its J header. */
  sl_buf_reset(&b);
  sl_lj_limits_default(&lim);
  lim.max_event = 1000;
  make_bomb(&b, 2u << 20, 1u << 20, 9);
  expect_fail(&lim, b.p, b.len, SL_E2BIG, "over max_event_bytes 1000", 0);
  sl_buf_free(&b);
}

static void
test_callback_stop(void **state)
{
  struct rec r = {0};
  struct sl_lj_dec *d;
  char err[256];
  size_t n, i, one = 1;
  char *fx = unhex(fx_plain_hex, &n), *fc;
  size_t nc;

  (void)state;
  fc = unhex(fx_py_comp_hex, &nc);
  /* Stop on the 2nd frame: feed returns the value; nothing after it. */
  r.stop_at = 2;
  r.stop_val = 42;
  assert_int_equal(decode_whole(NULL, fx, n, &r, err, sizeof(err)), 42);
  assert_int_equal(r.n, 2);
  assert_non_null(strstr(err, "frame callback stopped decoding at the J "
                            "frame at offset 6"));
  rec_free(&r);
  /* Inside a C frame, in 1-byte feeds, with a negative value. */
  for (i = 1; i <= 4; i++) {
    r.stop_at = i;
    r.stop_val = SL_ECANCELED;
    assert_int_equal(decode_steps(NULL, fc, nc, &one, 1, &r, err,
                                  sizeof(err)), SL_ECANCELED);
    assert_int_equal(r.n, i);
    rec_free(&r);
  }
  /* A stopped decoder refuses further input. */
  d = sl_lj_dec_new(NULL);
  r.stop_at = 1;
  r.stop_val = 1;
  assert_int_equal(sl_lj_dec_feed(d, fx, n, rec_cb, &r, err, sizeof(err)), 1);
  assert_int_equal(sl_lj_dec_feed(d, fx, n, rec_cb, &r, err, sizeof(err)),
                   SL_EINVAL);
  assert_int_equal(r.n, 1);
  rec_free(&r);
  sl_lj_dec_free(d);
  free(fx);
  free(fc);
}

/* The decoder never buffers more than the frame it is inside of. */
static void
test_pending_bound(void **state)
{
  struct sl_lj_dec *d = sl_lj_dec_new(NULL);
  struct rec r = {0};
  struct sl_buf b;
  char err[256], *ev;
  size_t i, big = 300000, frame_start = 0, frame_len;

  (void)state;
  sl_buf_init(&b, 0);
  ev = malloc(big);
  memset(ev, 'a', big);
  assert_int_equal(sl_lj_enc_window(&b, 2), 0);
  assert_int_equal(sl_lj_enc_json(&b, 1, ev, big), 0);
  assert_int_equal(sl_lj_enc_json(&b, 2, ev, 5), 0);
  for (i = 0; i < b.len; i++) {
    assert_int_equal(sl_lj_dec_feed(d, b.p + i, 1, rec_cb, &r, err,
                                    sizeof(err)), 0);
    frame_start = i < 6 ? 0 : i < 6 + 10 + big ? 6 : 6 + 10 + big;
    frame_len = i < 6 ? 6 : i < 6 + 10 + big ? 10 + big : 15;
    if (i + 1 - frame_start == frame_len)
      assert_int_equal(sl_lj_dec_pending(d), 0);
    else
      assert_int_equal(sl_lj_dec_pending(d), i + 1 - frame_start);
  }
  assert_int_equal(r.n, 3);
  assert_int_equal(r.f[1].len, big);
  rec_free(&r);
  sl_lj_dec_free(d);
  sl_buf_free(&b);
  free(ev);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* Random windows of random events (any bytes: the codec does not parse
 * JSON), plain or compressed at a random level, fed in random pieces. */
static void
test_roundtrip_random(void **state)
{
  struct sl_buf wire, inner;
  struct rec r = {0};
  char err[256], **ev;
  size_t *evlen, nev = 0, cap = 4096, steps[64], i, k, win, got;
  int round, level;

  (void)state;
  ev = calloc(cap, sizeof(*ev));
  evlen = calloc(cap, sizeof(*evlen));
  sl_buf_init(&wire, 0);
  sl_buf_init(&inner, 0);
  for (round = 0; round < 40; round++) {
    win = 1 + rnd() % 50;
    level = (int)(rnd() % 10);
    sl_buf_reset(&inner);
    assert_int_equal(sl_lj_enc_window(&wire, (uint32_t)win), 0);
    for (i = 0; i < win; i++) {
      assert_true(nev < cap);
      evlen[nev] = rnd() % 3000;
      ev[nev] = malloc(evlen[nev] + 1);
      for (k = 0; k < evlen[nev]; k++)
        ev[nev][k] = (char)rnd();
      assert_int_equal(sl_lj_enc_json(level ? &inner : &wire,
                                       (uint32_t)i + 1, ev[nev], evlen[nev]),
                       0);
      nev++;
    }
    if (level)
      assert_int_equal(sl_lj_enc_compressed(&wire, inner.p, inner.len,
                                            level), 0);
    assert_int_equal(sl_lj_enc_ack(&wire, (uint32_t)win), 0);
  }
  for (i = 0; i < 64; i++)
    steps[i] = 1 + rnd() % (i % 2 ? 4096 : 16);
  assert_int_equal(decode_steps(NULL, wire.p, wire.len, steps, 64, &r, err,
                                sizeof(err)), 0);
  got = 0;
  for (i = 0; i < r.n; i++) {
    if (r.f[i].type != SL_LJ_JSON)
      continue;
    assert_true(got < nev);
    assert_int_equal(r.f[i].len, evlen[got]);
    assert_memory_equal(r.f[i].data, ev[got], evlen[got]);
    got++;
  }
  assert_int_equal(got, nev);
  assert_int_equal(r.n, nev + 2 * 40);
  rec_free(&r);
  for (i = 0; i < nev; i++)
    free(ev[i]);
  free(ev);
  free(evlen);
  sl_buf_free(&wire);
  sl_buf_free(&inner);
}

static int
count_cb(void *arg, const struct sl_lj_frame *f)
{
  (*(size_t *)arg)++;
  (void)f;
  return 0;
}

/* Every crash input the fuzzer found stays a test: decode it whole, split
 * in halves and byte by byte with small limits; it must only return. */
static void
test_regress_corpus(void **state)
{
  struct sl_lj_limits lim;
  struct dirent *de;
  DIR *dir;
  char path[4096], err[256], *buf;
  size_t files = 0, n, cut, frames, off, m;
  long sz;
  FILE *fp;
  struct sl_lj_dec *d;
  int pass;

  (void)state;
  dir = opendir(regress_dir);
  if (dir == NULL)
    fail_msg("cannot open %s: %s", regress_dir, strerror(errno));
  sl_lj_limits_default(&lim);
  while ((de = readdir(dir)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", regress_dir, de->d_name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    sz = ftell(fp);
    assert_true(sz >= 0);
    rewind(fp);
    buf = malloc((size_t)sz + 1);
    n = fread(buf, 1, (size_t)sz, fp);
    assert_int_equal(n, (size_t)sz);
    fclose(fp);
    for (pass = 0; pass < 3; pass++) {
      if (pass == 2) {
        lim.max_frame = 4096;
        lim.max_inflate = 65536;
        lim.max_window = 100;
      }
      d = sl_lj_dec_new(&lim);
      assert_non_null(d);
      frames = 0;
      cut = pass == 0 ? n : pass == 1 ? n / 2 : 1;
      if (cut == 0)
        cut = 1;
      for (off = 0; off < n; off += cut) {
        m = n - off < cut ? n - off : cut;
        if (sl_lj_dec_feed(d, buf + off, m, count_cb, &frames, err,
                           sizeof(err)))
          break;
      }
      sl_lj_dec_free(d);
    }
    sl_lj_limits_default(&lim);
    free(buf);
    files++;
  }
  closedir(dir);
  /* An empty or missing corpus would make this test pass vacuously. */
  assert_true(files > 0);
  print_message("replayed %zu regression inputs from %s\n", files,
                regress_dir);
}

int
main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_plain_encode_exact),
    cmocka_unit_test(test_plain_decode_splits),
    cmocka_unit_test(test_plain_zero_copy),
    cmocka_unit_test(test_python_compressed_splits),
    cmocka_unit_test(test_compressed_level1),
    cmocka_unit_test(test_data_v1),
    cmocka_unit_test(test_ack),
    cmocka_unit_test(test_mixed_stream),
    cmocka_unit_test(test_json_begin_end),
    cmocka_unit_test(test_encoder_errors),
    cmocka_unit_test(test_bad_version_and_type),
    cmocka_unit_test(test_window_limit),
    cmocka_unit_test(test_frame_limit),
    cmocka_unit_test(test_nested_c),
    cmocka_unit_test(test_c_stream_errors),
    cmocka_unit_test(test_zip_bomb_small),
    cmocka_unit_test(test_zip_bomb_1g),
    cmocka_unit_test(test_ratio_and_event_limits),
    cmocka_unit_test(test_callback_stop),
    cmocka_unit_test(test_pending_bound),
    cmocka_unit_test(test_roundtrip_random),
    cmocka_unit_test(test_regress_corpus),
  };

  if (argc > 1)
    regress_dir = argv[1];
  return cmocka_run_group_tests(tests, NULL, NULL);
}
