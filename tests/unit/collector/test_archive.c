/* test_archive.c - the archive's pure parts: file paths, the index
 * sidecar, where an event goes, and reading concatenated gzip members. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "sl_err.h"
#include "sl_gzip.h"
#include "sl_time.h"

static int64_t
hour_of(const char *rfc3339)
{
  int64_t ns;

  assert_int_equal(sl_time_parse_rfc3339(rfc3339, strlen(rfc3339), &ns), 0);
  return ns / (3600 * SL_NS_PER_SEC);
}

static void
test_rel_path_round_trip(void **state)
{
  struct sl_buf b;
  char ds[64];
  int64_t hour, h = hour_of("2026-11-25T07:59:59Z");
  uint32_t seq;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_archive_rel_path("web.access", h, 12, &b), 0);
  assert_string_equal(b.p, "web.access/2026/11/25/07-12.ndjson.gz");
  assert_int_equal(sl_archive_parse_rel(b.p, ds, sizeof ds, &hour, &seq), 0);
  assert_string_equal(ds, "web.access");
  assert_int_equal(hour, h);
  assert_int_equal(seq, 12);
  /* before the epoch: the hour still floors (1969-12-31 23h) */
  sl_buf_reset(&b);
  assert_int_equal(sl_archive_rel_path("a", -1, 0, &b), 0);
  assert_string_equal(b.p, "a/1969/12/31/23-0.ndjson.gz");
  assert_int_equal(sl_archive_parse_rel(b.p, ds, sizeof ds, &hour, &seq), 0);
  assert_int_equal(hour, -1);
  sl_buf_free(&b);
}

static void
test_parse_rel_refuses_other_names(void **state)
{
  static const char *const bad[] = {
    "app/2026/11/25/07-0.ndjson.gz.idx.json",
    "app/2026/11/25/07-0.ndjson.gz.idx.json.tmp",
    "app/2026/11/25/24-0.ndjson.gz",   /* hour 24 */
    "app/2026/13/25/07-0.ndjson.gz",   /* month 13 */
    "app/2026/11/25/07.ndjson.gz",     /* no seq */
    "app/2026/11/25/07-x.ndjson.gz",
    "app/26/11/25/07-0.ndjson.gz",     /* 2-digit year */
    "app/2026/11/07-0.ndjson.gz",      /* a level missing */
    "x/app/2026/11/25/07-0.ndjson.gz", /* one too many */
    "/2026/11/25/07-0.ndjson.gz",      /* empty dataset */
  };
  char ds[64], small[3];
  int64_t hour;
  uint32_t seq;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(sl_archive_parse_rel(bad[i], ds, sizeof ds, &hour,
                                          &seq), SL_EPARSE);
  /* a dataset longer than the caller's buffer */
  assert_int_equal(sl_archive_parse_rel("abcd/2026/11/25/07-0.ndjson.gz",
                                        small, sizeof small, &hour, &seq),
                   SL_EPARSE);
}

static void
test_idx_round_trip(void **state)
{
  struct sl_archive_idx x = { 42, 9001, 1764054000000000000LL,
                              1764057599999000000LL, 77,
                              1764057600123456789LL, 4096 }, y;
  struct sl_buf b;

  (void)state;
  sl_buf_init(&b, 0);
  assert_int_equal(sl_archive_idx_encode(&x, &b), 0);
  assert_non_null(strstr(b.p, "\"min\":\"2025-11-25T07:00:00"));
  assert_non_null(strstr(b.p, "\"last_record\":77"));
  assert_int_equal(sl_archive_idx_decode(b.p, b.len, &y), 0);
  assert_memory_equal(&x, &y, sizeof x);
  assert_int_equal(sl_archive_idx_decode("{\"count\":1}", 11, &y),
                   SL_EPARSE);
  /* tail_off is optional (0), and never beyond the committed bytes */
  {
    static const char old[] = "{\"count\":1,\"bytes\":10,\"min_ns\":0,"
                              "\"max_ns\":0,\"last_record\":1,"
                              "\"last_record_ns\":0}";
    static const char far[] = "{\"count\":1,\"bytes\":10,\"min_ns\":0,"
                              "\"max_ns\":0,\"last_record\":1,"
                              "\"last_record_ns\":0,\"tail_off\":11}";

    assert_int_equal(sl_archive_idx_decode(old, sizeof old - 1, &y), 0);
    assert_int_equal(y.tail_off, 0);
    assert_int_equal(sl_archive_idx_decode(far, sizeof far - 1, &y), 0);
    assert_int_equal(y.tail_off, 0);
  }
  assert_int_equal(sl_archive_idx_decode("not json", 8, &y), SL_EPARSE);
  sl_buf_free(&b);
}

static void
test_event_key(void **state)
{
  static const struct {
    const char *ev, *ds, *ts;
  } cases[] = {
    { "{\"@timestamp\":\"2026-11-25T10:15:00Z\",\"event\":{\"dataset\":"
      "\"Web-Access\"}}", "web_access", "2026-11-25T10:15:00Z" },
    { "{\"@timestamp\":\"2026-11-25T10:15:00Z\",\"data_stream\":"
      "{\"dataset\":\"nginx.error\"}}", "nginx.error",
      "2026-11-25T10:15:00Z" },
    /* a numeric @timestamp is epoch_millis (jansson path) */
    { "{\"@timestamp\":1764065700000,\"event.dataset\":\"app\"}", "app",
      "2025-11-25T10:15:00Z" },
    /* no time: the record's append time; no dataset: generic */
    { "{\"message\":\"x\"}", "generic", "2020-01-01T00:00:00Z" },
    { "not json", "generic", "2020-01-01T00:00:00Z" },
  };
  int64_t fb, want, ts;
  struct sl_buf ds;
  size_t i;

  (void)state;
  assert_int_equal(sl_time_parse_rfc3339("2020-01-01T00:00:00Z", 20, &fb),
                   0);
  sl_buf_init(&ds, 0);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sl_buf_reset(&ds);
    assert_int_equal(sl_archive_event_key(cases[i].ev, strlen(cases[i].ev),
                                          fb, &ds, &ts, NULL), 0);
    assert_string_equal(ds.p, cases[i].ds);
    assert_int_equal(sl_time_parse_rfc3339(cases[i].ts, strlen(cases[i].ts),
                                           &want), 0);
    assert_int_equal(ts, want);
  }
  sl_buf_free(&ds);
}

/* The id hash is the same on the scanner's path and on jansson's (an
 * escape elsewhere sends the event to jansson), 0 without an id. */
static void
test_event_key_id(void **state)
{
  static const char a[] = "{\"event\":{\"id\":\"abc\"},\"m\":\"x\"}";
  static const char b[] = "{\"event\":{\"id\":\"abc\"},\"m\":\"\\u0078\"}";
  static const char c[] = "{\"event.id\":\"abc\"}";
  static const char d[] = "{\"event\":{\"id\":\"abd\"}}";
  static const char e[] = "{\"m\":1}";
  uint64_t ha, hb, hc, hd, he;
  struct sl_buf ds;
  int64_t ts;

  (void)state;
  sl_buf_init(&ds, 0);
  assert_int_equal(sl_archive_event_key(a, sizeof a - 1, 0, &ds, &ts, &ha), 0);
  assert_int_equal(sl_archive_event_key(b, sizeof b - 1, 0, &ds, &ts, &hb), 0);
  assert_int_equal(sl_archive_event_key(c, sizeof c - 1, 0, &ds, &ts, &hc), 0);
  assert_int_equal(sl_archive_event_key(d, sizeof d - 1, 0, &ds, &ts, &hd), 0);
  assert_int_equal(sl_archive_event_key(e, sizeof e - 1, 0, &ds, &ts, &he), 0);
  assert_true(ha != 0);
  assert_true(ha == hb && ha == hc);
  assert_true(ha != hd);
  assert_true(he == 0);
  sl_buf_free(&ds);
}

static int
count_line(void *arg, const char *line, size_t len)
{
  size_t *n = arg;

  assert_true(len > 0 && line[0] == '{');
  (*n)++;
  return 0;
}

/* Two members read as one stream; a torn third member ends the file
 * without its partial line. */
static void
test_read_members_and_torn_tail(void **state)
{
  char path[] = "/tmp/sl_test_archive_XXXXXX";
  struct sl_gzip g;
  struct sl_buf z;
  size_t n = 0, keep;
  FILE *fp;
  int fd;

  (void)state;
  fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  sl_gzip_init(&g, 1);
  sl_buf_init(&z, 0);
  assert_int_equal(sl_gzip_append(&g, "{\"a\":1}\n{\"a\":2}\n", 16, &z), 0);
  assert_int_equal(sl_gzip_append(&g, "{\"a\":3}\n", 8, &z), 0);
  keep = z.len;
  assert_int_equal(sl_gzip_append(&g, "{\"a\":4}\n{\"a\":5}\n", 16, &z), 0);
  fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(z.p, 1, keep + (z.len - keep) / 2, fp),
                   keep + (z.len - keep) / 2);
  fclose(fp);
  assert_int_equal(sl_archive_read(path, count_line, &n), 0);
  assert_int_equal(n, 3);
  /* from a member boundary (a sidecar's tail_off): that member on */
  {
    struct sl_archive_reader *r = malloc(sizeof *r);
    const char *line;
    size_t len, first = 0;

    assert_non_null(r);
    /* the first member's length: gzip of 16 bytes, found by re-encoding */
    {
      struct sl_buf one;

      sl_buf_init(&one, 0);
      assert_int_equal(sl_gzip_append(&g, "{\"a\":1}\n{\"a\":2}\n", 16,
                                      &one), 0);
      first = one.len;
      sl_buf_free(&one);
    }
    assert_int_equal(sl_archive_reader_open_at(r, path, first), 0);
    assert_int_equal(sl_archive_reader_next(r, &line, &len), 1);
    assert_int_equal(len, 7);
    assert_memory_equal(line, "{\"a\":3}", 7);
    assert_int_equal(sl_archive_reader_next(r, &line, &len), 0);
    sl_archive_reader_close(r);
    free(r);
  }
  unlink(path);
  sl_gzip_end(&g);
  sl_buf_free(&z);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rel_path_round_trip),
    cmocka_unit_test(test_parse_rel_refuses_other_names),
    cmocka_unit_test(test_idx_round_trip),
    cmocka_unit_test(test_event_key),
    cmocka_unit_test(test_event_key_id),
    cmocka_unit_test(test_read_members_and_torn_tail),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
