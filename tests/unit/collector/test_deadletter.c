/* test_deadletter.c - dead-letter events and the dead-letter file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "deadletter.h"
#include "sl_err.h"

static const char act[] = "{\"create\":{\"_index\":\"logs-app-default\","
                          "\"_id\":\"abc\"}}";
static const char doc[] = "{\"message\":\"hi\",\"n\":\"not a number\"}";

static struct sl_dl_src
src(const struct sl_dl *dl)
{
  struct sl_dl_src s;

  s.action = act;
  s.action_len = sizeof act - 1;
  s.doc = doc;
  s.doc_len = sizeof doc - 1;
  s.dl = dl;
  s.no_pipeline = 0;
  return s;
}

/* The rewritten item is an action line for the dead-letter index and a
 * document that keeps the original, the error and where it was going. */
static void
test_make(void **state)
{
  struct sl_dl_src s = src(NULL);
  struct sl_dl *dl;
  char *nl;
  json_t *a, *d;

  (void)state;
  assert_int_equal(sl_dl_make("logs-sluice.deadletter-default", &s, 400,
                              "mapper_parsing_exception", "bad n", &dl), 0);
  assert_non_null(dl);
  assert_string_equal(dl->orig_index, "logs-app-default");
  assert_string_equal(dl->orig_id, "abc");
  assert_int_equal(dl->status, 400);
  assert_string_equal(dl->err_type, "mapper_parsing_exception");
  assert_int_equal(dl->bytes[dl->len - 1], '\n');
  nl = memchr(dl->bytes, '\n', dl->len);
  assert_non_null(nl);
  a = json_loadb(dl->bytes, (size_t)(nl - dl->bytes), 0, NULL);
  d = json_loadb(nl + 1, dl->len - (size_t)(nl + 1 - dl->bytes) - 1, 0,
                 NULL);
  assert_non_null(a);
  assert_non_null(d);
  assert_string_equal(json_string_value(json_object_get(
    json_object_get(a, "create"), "_index")),
    "logs-sluice.deadletter-default");
  assert_non_null(strstr(dl->bytes, "mapper_parsing_exception"));
  json_decref(a);
  json_decref(d);
  sl_dl_free(dl);
  sl_dl_free(NULL);
}

/* Issue 14: with elasticsearch.pipeline set, a dead letter says
 * "pipeline":"_none" (the pipeline may be why the event was refused);
 * without, its action line is the plain one. */
static void
test_make_no_pipeline(void **state)
{
  struct sl_dl_src s = src(NULL);
  struct sl_dl *dl;
  json_t *a, *c;
  char *nl;

  (void)state;
  s.no_pipeline = 1;
  assert_int_equal(sl_dl_make("logs-sluice.deadletter-default", &s, 400,
                              "illegal_argument_exception",
                              "pipeline with id [x] does not exist", &dl), 0);
  nl = memchr(dl->bytes, '\n', dl->len);
  a = json_loadb(dl->bytes, (size_t)(nl - dl->bytes), 0, NULL);
  assert_non_null(a);
  c = json_object_get(a, "create");
  assert_string_equal(json_string_value(json_object_get(c, "pipeline")),
                      "_none");
  assert_string_equal(json_string_value(json_object_get(c, "_index")),
                      "logs-sluice.deadletter-default");
  assert_int_equal(json_object_size(c), 3);
  json_decref(a);
  sl_dl_free(dl);

  s.no_pipeline = 0;
  assert_int_equal(sl_dl_make("logs-sluice.deadletter-default", &s, 400,
                              NULL, NULL, &dl), 0);
  assert_null(strstr(dl->bytes, "pipeline"));
  sl_dl_free(dl);
}

static size_t
read_all(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  size_t n;

  assert_non_null(f);
  n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  return n;
}

/* Lines are appended to <dir>/<UTC day>.ndjson (dir created), one per
 * entry; a dead letter ES refused carries both refusals. */
static void
test_file_append(void **state)
{
  char base[] = "/tmp/sl-dltest-XXXXXX", dir[128], path[256], buf[8192];
  char day[16];
  struct sl_dl_entry e[2];
  struct sl_dl *dl;
  struct sl_dl_src s0 = src(NULL);
  time_t now = time(NULL);
  struct tm tm;
  json_t *j;
  char *nl;

  (void)state;
  assert_non_null(mkdtemp(base));
  snprintf(dir, sizeof dir, "%s/data/deadletter", base);
  assert_int_equal(sl_dl_make("dl", &s0, 400, "t1", "r1", &dl), 0);
  memset(e, 0, sizeof e);
  e[0].src = src(NULL);
  e[0].status = 413;
  e[0].err_type = "request_entity_too_large";
  e[1].src = src(dl);
  e[1].status = 400;
  e[1].err_type = "t2";
  e[1].err_reason = "r2";
  assert_int_equal(sl_dl_file_append(dir, e, 2), 0);
  assert_int_equal(sl_dl_file_append(dir, e, 0), 0);  /* nothing: fine */
  gmtime_r(&now, &tm);
  strftime(day, sizeof day, "%Y-%m-%d", &tm);
  snprintf(path, sizeof path, "%s/%s.ndjson", dir, day);
  read_all(path, buf, sizeof buf);
  nl = strchr(buf, '\n');
  assert_non_null(nl);
  j = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 413);
  json_decref(j);
  j = json_loads(nl + 1, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 400);
  assert_int_equal(json_integer_value(json_object_get(j,
                     "deadletter_status")), 400);
  assert_non_null(strstr(nl + 1, "\"t1\""));
  assert_non_null(strstr(nl + 1, "\"t2\""));
  json_decref(j);
  /* Appended, not replaced. */
  assert_int_equal(sl_dl_file_append(dir, e, 1), 0);
  assert_true(read_all(path, buf, sizeof buf) > 0);
  assert_non_null(strchr(strchr(strchr(buf, '\n') + 1, '\n') + 1, '\n'));
  sl_dl_free(dl);
  unlink(path);
  rmdir(dir);
  snprintf(path, sizeof path, "%s/data", base);
  rmdir(path);
  rmdir(base);
}

/* A directory that cannot be made is an error (the caller retries). */
static void
test_file_error(void **state)
{
  struct sl_dl_entry e;

  (void)state;
  memset(&e, 0, sizeof e);
  e.src = src(NULL);
  assert_true(sl_dl_file_append("/proc/sluice-no/deadletter", &e, 1) < 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_make),
    cmocka_unit_test(test_make_no_pipeline),
    cmocka_unit_test(test_file_append),
    cmocka_unit_test(test_file_error),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
