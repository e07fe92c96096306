/* test_multiline.c - the line aggregator (multiline.h): pattern modes,
 * presets, limits, flush/discard, cri and docker partial lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "multiline.h"
#include "sl_err.h"

#define MAXEV 32

struct got {
  char *text[MAXEV];
  uint64_t off[MAXEV];
  unsigned flags[MAXEV];
  int n;
};

static int
emit(void *arg, const char *p, size_t len, uint64_t off, unsigned flags)
{
  struct got *g = arg;

  assert_true(g->n < MAXEV);
  g->text[g->n] = strndup(p, len);
  g->off[g->n] = off;
  g->flags[g->n] = flags;
  g->n++;
  return 0;
}

static void
got_free(struct got *g)
{
  int i;

  for (i = 0; i < g->n; i++)
    free(g->text[i]);
  g->n = 0;
}

static struct sl_ml_conf *
conf(const char *json)
{
  json_error_t je;
  json_t *in = json_loads(json, 0, &je);
  struct sl_ml_conf *c = NULL;
  char err[256] = "";

  assert_non_null(in);
  assert_int_equal(sl_ml_conf_new(in, &c, err, sizeof(err)), 0);
  json_decref(in);
  return c;
}

static int
conf_err(const char *json, char *err, size_t errlen)
{
  json_t *in = json_loads(json, 0, NULL);
  struct sl_ml_conf *c = NULL;
  int rc;

  assert_non_null(in);
  rc = sl_ml_conf_new(in, &c, err, errlen);
  sl_ml_conf_free(c);
  json_decref(in);
  return rc;
}

/* Feed "\n"-separated text (offsets as in a file), then flush. */
static void
run(const char *json, const char *text, struct got *g, int flush)
{
  struct sl_ml_conf *c = conf(json);
  struct sl_ml *m;
  const char *p = text, *nl;

  assert_non_null(c);
  assert_int_equal(sl_ml_new(c, emit, g, &m), 0);
  while (*p) {
    nl = strchr(p, '\n');
    assert_non_null(nl);
    assert_int_equal(sl_ml_line(m, p, (size_t)(nl - p),
                                (uint64_t)(p - text), 0), 0);
    p = nl + 1;
  }
  if (flush) {
    assert_int_equal(sl_ml_flush(m), 0);
    assert_int_equal(sl_ml_pending_offset(m), UINT64_MAX);
  }
  sl_ml_free(m);
  sl_ml_conf_free(c);
}

static void
test_no_stage_without_settings(void **s)
{
  (void)s;
  assert_null(conf("{\"parser\":\"json\"}"));
}

static void
test_config_errors(void **s)
{
  char err[256];

  (void)s;
  assert_int_equal(conf_err("{\"multiline\":\"cobol\"}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "unknown preset 'cobol'"));
  assert_int_equal(conf_err("{\"multiline\":{\"pattern\":\"(\"}}", err,
                            sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "multiline.pattern '('"));
  assert_int_equal(conf_err("{\"multiline\":{\"negate\":true}}", err,
                            sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "multiline.pattern: required"));
  assert_int_equal(conf_err("{\"multiline\":{\"pattern\":\"x\","
                            "\"match\":\"around\"}}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_int_equal(conf_err("{\"multiline\":{\"pattern\":\"x\","
                            "\"colour\":1}}", err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "multiline.colour: unknown key"));
  assert_int_equal(conf_err("{\"multiline\":{\"pattern\":\"x\","
                            "\"timeout\":\"soon\"}}", err, sizeof(err)),
                   SL_ECONFIG);
}

static void
test_pattern_after_negate(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":{\"pattern\":\"^\\\\d{4}-\",\"negate\":true}}",
      "2026-01-01 a\n b\n c\n2026-01-02 d\nno date first\n", &g, 1);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.text[0], "2026-01-01 a\n b\n c");
  assert_int_equal(g.off[0], 0);
  assert_int_equal(g.flags[0], SL_LINE_MULTILINE);
  assert_string_equal(g.text[1], "2026-01-02 d\nno date first");
  assert_int_equal(g.off[1], 19);
  got_free(&g);
}

static void
test_pattern_after_without_flush_keeps_pending(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":{\"pattern\":\"^\\\\s\"}}", "a\n b\nc\n d\n", &g, 0);
  /* "c\n d" is still pending: nothing says it is complete. */
  assert_int_equal(g.n, 1);
  assert_string_equal(g.text[0], "a\n b");
  got_free(&g);
}

static void
test_pattern_before(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":{\"pattern\":\"\\\\\\\\$\",\"match\":\"before\"}}",
      "a \\\nb \\\nc\nd\n", &g, 1);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.text[0], "a \\\nb \\\nc");
  assert_string_equal(g.text[1], "d");
  assert_int_equal(g.flags[1], 0);
  got_free(&g);
}

static void
test_java(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":\"java\"}",
      "12:00 ERROR failed\n"
      "java.lang.IllegalStateException: boom\n"
      "\tat a.b.C.d(C.java:1)\n"
      "\t... 3 more\n"
      "Caused by: java.io.IOException: x\n"
      "  Detail: y\n"
      "\n"
      "12:01 INFO ok\n"
      "com.example.NotAnExceptionName here\n", &g, 1);
  assert_int_equal(g.n, 4);
  assert_int_equal(g.off[0], 0);
  assert_non_null(strstr(g.text[0], "  Detail: y"));
  assert_int_equal(g.flags[0], SL_LINE_MULTILINE);
  assert_string_equal(g.text[1], "");  /* the blank line, skipped later */
  assert_string_equal(g.text[2], "12:01 INFO ok");
  assert_string_equal(g.text[3], "com.example.NotAnExceptionName here");
  got_free(&g);
}

static void
test_python_chained(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":\"python\"}",
      "ERROR x\n"
      "Traceback (most recent call last):\n"
      "  File \"a.py\", line 1, in <module>\n"
      "KeyError: 'k'\n"
      "\n"
      "During handling of the above exception, another exception "
      "occurred:\n"
      "\n"
      "Traceback (most recent call last):\n"
      "  File \"a.py\", line 3, in <module>\n"
      "ValueError\n"
      "\n"
      "INFO next\n"
      "  indented but not a traceback\n", &g, 1);
  assert_int_equal(g.n, 3);
  assert_true(strncmp(g.text[0], "ERROR x\nTraceback", 17) == 0);
  assert_non_null(strstr(g.text[0], "KeyError: 'k'\n\nDuring handling"));
  assert_true(strlen(g.text[0]) > 10 &&
              strcmp(g.text[0] + strlen(g.text[0]) - 10, "ValueError") ==
              0);
  assert_string_equal(g.text[1], "INFO next");
  assert_string_equal(g.text[2], "  indented but not a traceback");
  got_free(&g);
}

static void
test_go(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":\"go\"}",
      "2026/01/01 listening\n"
      "panic: boom\n"
      "\n"
      "goroutine 1 [running]:\n"
      "main.main()\n"
      "\t/src/main.go:5 +0x1d\n"
      "exit status 2\n"
      "2026/01/01 listening\n", &g, 1);
  assert_int_equal(g.n, 3);
  assert_string_equal(g.text[1], "panic: boom\n\ngoroutine 1 [running]:\n"
                      "main.main()\n\t/src/main.go:5 +0x1d\nexit status 2");
  got_free(&g);
}

static void
test_ruby(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":\"ruby\"}",
      "E, ERROR -- : undefined method (NoMethodError)\n"
      "app/x.rb:3:in `show'\n"
      "/srv/a.rb:27:in 'A#b': bad (ArgumentError)\n"
      "\tfrom /srv/a.rb:14:in 'block in A#run'\n"
      "\tfrom bin/x:9:in '<main>'\n"
      "I, done\n", &g, 1);
  assert_int_equal(g.n, 3);
  assert_string_equal(g.text[0], "E, ERROR -- : undefined method "
                      "(NoMethodError)\napp/x.rb:3:in `show'");
  assert_int_equal(g.off[1], 68);
  got_free(&g);
}

static void
test_limits(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"multiline\":{\"preset\":\"java\",\"max_lines\":3,"
      "\"max_bytes\":13}}",
      "h\n\tat 1\n\tat 2\n\tat 3\nbig\n\t0123456789abcdef\n", &g, 1);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.text[0], "h\n\tat 1\n\tat 2");
  assert_int_equal(g.flags[0], SL_LINE_MULTILINE | SL_LINE_TRUNCATED);
  assert_string_equal(g.text[1], "big\n\t01234567");
  assert_int_equal(g.flags[1], SL_LINE_MULTILINE | SL_LINE_TRUNCATED);
  got_free(&g);
}

static void
test_discard_and_pending_offset(void **s)
{
  struct sl_ml_conf *c = conf("{\"multiline\":\"java\"}");
  struct got g = {0};
  struct sl_ml *m;

  (void)s;
  assert_int_equal(sl_ml_new(c, emit, &g, &m), 0);
  assert_int_equal(sl_ml_pending_offset(m), UINT64_MAX);
  assert_int_equal(sl_ml_line(m, "x", 1, 100, 0), 0);
  assert_int_equal(sl_ml_pending_offset(m), 100);
  assert_int_equal(sl_ml_line(m, "\tat y", 5, 102, 0), 0);
  assert_int_equal(sl_ml_pending_offset(m), 100);
  sl_ml_discard(m);
  assert_int_equal(sl_ml_pending_offset(m), UINT64_MAX);
  assert_int_equal(sl_ml_flush(m), 0);
  assert_int_equal(g.n, 0);
  sl_ml_free(m);
  sl_ml_conf_free(c);
}

static void
test_cri_partial(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"parser\":\"cri\"}",
      "T1 stdout P hel\n"
      "T2 stderr F oops\n"
      "T3 stdout P lo \n"
      "T4 stdout F world\n"
      "T5 stdout F\n"
      "T6 stdout Processing without a tag\n"
      "garbage\n", &g, 1);
  assert_int_equal(g.n, 5);
  assert_string_equal(g.text[0], "T2 stderr F oops");
  assert_string_equal(g.text[1], "T1 stdout F hello world");
  assert_int_equal(g.off[1], 0);
  assert_string_equal(g.text[2], "T5 stdout F");
  assert_string_equal(g.text[3], "T6 stdout Processing without a tag");
  assert_string_equal(g.text[4], "garbage");
  got_free(&g);
}

static void
test_cri_partial_flushed_by_timeout(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"parser\":\"cri\"}", "T1 stdout P abc\n", &g, 1);
  assert_int_equal(g.n, 1);
  assert_string_equal(g.text[0], "T1 stdout F abc");
  got_free(&g);
}

static void
test_docker_partial(void **s)
{
  struct got g = {0};

  (void)s;
  run("{\"parser\":\"docker\"}",
      "{\"log\":\"a \\\"q\\\" \",\"stream\":\"stdout\",\"time\":\"t1\"}\n"
      "{\"log\":\"e\\n\",\"stream\":\"stderr\",\"time\":\"t2\"}\n"
      "{\"log\":\"b\\\\\\n\",\"stream\":\"stdout\",\"time\":\"t3\"}\n"
      "{\"log\":\"ends in backslash n: \\\\n\",\"stream\":\"stdout\"}\n"
      "{\"log\":\"done\\n\",\"stream\":\"stdout\"}\n", &g, 1);
  assert_int_equal(g.n, 3);
  assert_string_equal(g.text[0], "{\"log\":\"e\\n\",\"stream\":"
                      "\"stderr\",\"time\":\"t2\"}");
  assert_string_equal(g.text[1], "{\"log\":\"a \\\"q\\\" b\\\\\\n\","
                      "\"stream\":\"stdout\",\"time\":\"t1\"}");
  /* "\\n" is a backslash and an n: partial, joined with the next. */
  assert_string_equal(g.text[2], "{\"log\":\"ends in backslash n: \\\\n"
                      "done\\n\",\"stream\":\"stdout\"}");
  got_free(&g);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_no_stage_without_settings),
    cmocka_unit_test(test_config_errors),
    cmocka_unit_test(test_pattern_after_negate),
    cmocka_unit_test(test_pattern_after_without_flush_keeps_pending),
    cmocka_unit_test(test_pattern_before),
    cmocka_unit_test(test_java),
    cmocka_unit_test(test_python_chained),
    cmocka_unit_test(test_go),
    cmocka_unit_test(test_ruby),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_discard_and_pending_offset),
    cmocka_unit_test(test_cri_partial),
    cmocka_unit_test(test_cri_partial_flushed_by_timeout),
    cmocka_unit_test(test_docker_partial),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
