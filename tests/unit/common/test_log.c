#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sl_err.h"
#include "sl_log.h"
#include "sl_time.h"

/* Each test logs into a fresh temporary file and reads it back. */
static FILE *cap;

static int
setup(void **state)
{
  (void)state;
  cap = tmpfile();
  if (cap == NULL)
    return -1;
  sl_log_set_fd(fileno(cap));
  sl_log_set_level(SL_LOG_DEBUG);
  return 0;
}

static int
teardown(void **state)
{
  (void)state;
  sl_log_set_fd(-1);
  sl_log_set_level(SL_LOG_INFO);
  fclose(cap);
  return 0;
}

/* All lines written so far, each parsed (and checked to be one object). */
static json_t *
read_lines(void)
{
  json_t *arr = json_array(), *j;
  json_error_t err;
  char *line = NULL;
  size_t cap_n = 0;
  ssize_t n;
  FILE *f;

  f = fdopen(dup(fileno(cap)), "r");
  assert_non_null(f);
  fseek(f, 0, SEEK_SET);
  while ((n = getline(&line, &cap_n, f)) > 0) {
    assert_int_equal(line[n - 1], '\n');
    j = json_loadb(line, (size_t)n - 1, 0, &err);
    if (j == NULL)
      fail_msg("bad log line: %s: %s", err.text, line);
    json_array_append_new(arr, j);
  }
  free(line);
  fclose(f);
  return arr;
}

static const char *
sfield(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
test_fields(void **state)
{
  json_t *lines, *l;
  int64_t ts;

  (void)state;
  sl_log(SL_LOG_WARN, "spool", "recovered \"x\"\n",
         SL_LF_STR, "segment", "00000003.seg",
         SL_LF_INT, "bytes", (int64_t)-12345678901LL,
         SL_LF_STR, "nothing", (const char *)NULL,
         SL_LF_ERR, SL_ENOSPC,
         SL_LF_END);
  sl_log(SL_LOG_INFO, "agent", "plain", SL_LF_END);
  lines = read_lines();
  assert_int_equal(json_array_size(lines), 2);
  l = json_array_get(lines, 0);
  assert_string_equal(sfield(l, "log.level"), "warn");
  assert_string_equal(sfield(l, "component"), "spool");
  assert_string_equal(sfield(l, "message"), "recovered \"x\"\n");
  assert_string_equal(sfield(l, "segment"), "00000003.seg");
  assert_true(json_integer_value(json_object_get(l, "bytes")) ==
              -12345678901LL);
  assert_true(json_is_null(json_object_get(l, "nothing")));
  assert_string_equal(sfield(l, "error"), sl_strerror(SL_ENOSPC));
  assert_string_equal(sfield(l, "error.code"), "SL_ENOSPC");
  /* The timestamp is RFC 3339 UTC ms and close to now. */
  assert_int_equal(strlen(sfield(l, "@timestamp")), 24);
  assert_int_equal(sl_time_parse_rfc3339(sfield(l, "@timestamp"), 24, &ts),
                   0);
  assert_true(llabs(sl_time_now_ns() - ts) < 60 * SL_NS_PER_SEC);
  l = json_array_get(lines, 1);
  assert_string_equal(sfield(l, "log.level"), "info");
  assert_int_equal(json_object_size(l), 4);
  json_decref(lines);
}

static void
test_level_filter_and_parse(void **state)
{
  json_t *lines;

  (void)state;
  sl_log_set_level(SL_LOG_WARN);
  assert_false(SL_LOG_ENABLED(SL_LOG_INFO));
  assert_true(SL_LOG_ENABLED(SL_LOG_ERROR));
  sl_log(SL_LOG_DEBUG, "t", "d", SL_LF_END);
  sl_log(SL_LOG_INFO, "t", "i", SL_LF_END);
  sl_log(SL_LOG_WARN, "t", "w", SL_LF_END);
  sl_log(SL_LOG_ERROR, "t", "e", SL_LF_END);
  lines = read_lines();
  assert_int_equal(json_array_size(lines), 2);
  assert_string_equal(sfield(json_array_get(lines, 0), "message"), "w");
  assert_string_equal(sfield(json_array_get(lines, 1), "log.level"),
                      "error");
  json_decref(lines);
  assert_int_equal(sl_log_level_parse("debug"), SL_LOG_DEBUG);
  assert_int_equal(sl_log_level_parse("INFO"), SL_LOG_INFO);
  assert_int_equal(sl_log_level_parse("warn"), SL_LOG_WARN);
  assert_int_equal(sl_log_level_parse("warning"), SL_LOG_WARN);
  assert_int_equal(sl_log_level_parse("error"), SL_LOG_ERROR);
  assert_int_equal(sl_log_level_parse("verbose"), -1);
  assert_int_equal(sl_log_level_parse(""), -1);
  assert_int_equal(sl_log_level_parse(NULL), -1);
}

static void
test_rate_limit(void **state)
{
  struct timespec ts = { 0, 20 * 1000000 };
  uint64_t start, deadline;
  json_t *lines, *l;
  int i;

  (void)state;
  start = sl_time_mono_ms();
  for (i = 0; i < 100; i++)
    sl_log(SL_LOG_ERROR, "out", "connection refused",
           SL_LF_INT, "i", (int64_t)i, SL_LF_END);
  /* Other kinds are not held back by the flood. */
  sl_log(SL_LOG_ERROR, "in", "connection refused", SL_LF_END);
  sl_log(SL_LOG_ERROR, "out", "connection reset", SL_LF_END);
  lines = read_lines();
  /* Only possible if this loop took under a second (it takes microseconds);
   * otherwise a window ended in the middle and the counts differ. */
  if (sl_time_mono_ms() - start < 900) {
    /* A burst of 10 of one kind prints; the other 90 are swallowed. */
    assert_int_equal(json_array_size(lines), 12);
    assert_true(json_integer_value(
        json_object_get(json_array_get(lines, 0), "i")) == 0);
  }
  json_decref(lines);
  /* Wait until the window is over (deadline-bounded), then one more. */
  deadline = start + 5000;
  while (sl_time_mono_ms() < start + 1050 && sl_time_mono_ms() < deadline)
    nanosleep(&ts, NULL);
  sl_log(SL_LOG_ERROR, "out", "connection refused",
         SL_LF_INT, "i", (int64_t)100, SL_LF_END);
  lines = read_lines();
  assert_int_equal(json_array_size(lines), 14);
  l = json_array_get(lines, 12);
  assert_string_equal(sfield(l, "message"), "connection refused");
  assert_string_equal(sfield(l, "component"), "out");
  assert_string_equal(sfield(l, "log.level"), "error");
  assert_true(json_integer_value(json_object_get(l, "repeated")) == 90);
  l = json_array_get(lines, 13);
  assert_null(json_object_get(l, "repeated"));
  assert_true(json_integer_value(json_object_get(l, "i")) == 100);
  json_decref(lines);
}

#define NTHREADS 4
#define PER_THREAD 300

static void *
worker(void *arg)
{
  char msg[64];
  int i, id = (int)(intptr_t)arg;

  for (i = 0; i < PER_THREAD; i++) {
    /* Distinct messages, so nothing is rate limited. */
    snprintf(msg, sizeof(msg), "t%d m%d", id, i);
    sl_log(SL_LOG_INFO, "thr", msg, SL_LF_INT, "n", (int64_t)i,
           SL_LF_STR, "pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
           SL_LF_END);
  }
  return NULL;
}

static void
test_threads_whole_lines(void **state)
{
  pthread_t th[NTHREADS];
  json_t *lines;
  int i;

  (void)state;
  for (i = 0; i < NTHREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker,
                                    (void *)(intptr_t)i), 0);
  for (i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  /* Every line parses (no interleaving) and none is lost. */
  lines = read_lines();
  assert_int_equal(json_array_size(lines), NTHREADS * PER_THREAD);
  json_decref(lines);
}

static void
test_huge_record_truncated(void **state)
{
  size_t n = 200 * 1024;
  char *big = malloc(n + 1);
  json_t *lines, *l;

  (void)state;
  memset(big, 'a', n);
  big[n] = '\0';
  sl_log(SL_LOG_WARN, "tail", "long field", SL_LF_STR, "line", big,
         SL_LF_END);
  free(big);
  lines = read_lines();
  assert_int_equal(json_array_size(lines), 1);
  l = json_array_get(lines, 0);
  assert_null(json_object_get(l, "line"));
  assert_string_equal(sfield(l, "log.component"), "tail");
  json_decref(lines);
}

/* Everything written so far, as one string (caller frees). */
static char *
read_all(void)
{
  char *buf;
  long n;
  FILE *f = fdopen(dup(fileno(cap)), "r");

  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = calloc(1, (size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return buf;
}

/* --log-format text: "TIME LEVEL component: message key=value", values
 * quoted only when a space/quote/'='/control character or emptiness would
 * make the line ambiguous; still one record per line. */
static void
test_text_format(void **state)
{
  char *out, *l2, *l3, *l4;
  int64_t ts;

  (void)state;
  assert_int_equal(sl_log_format_parse("text"), SL_LOG_FMT_TEXT);
  assert_int_equal(sl_log_format_parse("JSON"), SL_LOG_FMT_JSON);
  assert_int_equal(sl_log_format_parse("xml"), -1);
  assert_int_equal(sl_log_format_parse(NULL), -1);
  sl_log_set_format(SL_LOG_FMT_TEXT);
  assert_int_equal(sl_log_get_format(), SL_LOG_FMT_TEXT);
  sl_log(SL_LOG_INFO, "tail", "file opened", SL_LF_STR, "path",
         "/var/log/a.log", SL_LF_INT, "offset", (int64_t)-42,
         SL_LF_END);
  sl_log(SL_LOG_WARN, "out.lumberjack", "connect failed", SL_LF_STR,
         "reason", "two words", SL_LF_STR, "empty", "", SL_LF_STR, "q",
         "a\"b=c", SL_LF_STR, "nul", (const char *)NULL, SL_LF_ERR,
         SL_ECONNREFUSED, SL_LF_END);
  sl_log(SL_LOG_ERROR, "agent", "multi\nline", SL_LF_STR, "nl", "x\ny",
         SL_LF_END);
  sl_log(SL_LOG_DEBUG, "t", "d", SL_LF_END);
  sl_log_set_format(SL_LOG_FMT_JSON);
  out = read_all();
  /* Line 1: the timestamp, the level padded to 5, the rest. */
  assert_int_equal(sl_time_parse_rfc3339(out, 24, &ts), 0);
  l2 = strchr(out, '\n');
  assert_non_null(l2);
  *l2++ = '\0';
  assert_string_equal(out + 24, " INFO  tail: file opened "
                      "path=/var/log/a.log offset=-42");
  l3 = strchr(l2, '\n');
  assert_non_null(l3);
  *l3++ = '\0';
  assert_string_equal(l2 + 24, " WARN  out.lumberjack: connect failed "
                      "reason=\"two words\" empty=\"\" q=\"a\\\"b=c\" "
                      "nul=null error=\"connection refused\" "
                      "error.code=SL_ECONNREFUSED");
  l4 = strchr(l3, '\n');
  assert_non_null(l4);
  *l4++ = '\0';
  /* A control character in the message or a value is escaped: the
   * record stays on one line. */
  assert_string_equal(l3 + 24, " ERROR agent: \"multi\\nline\" "
                      "nl=\"x\\ny\"");
  assert_string_equal(l4 + 24, " DEBUG t: d\n");
  free(out);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
    cmocka_unit_test_setup_teardown(test_level_filter_and_parse, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_threads_whole_lines, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_huge_record_truncated, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_text_format, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
