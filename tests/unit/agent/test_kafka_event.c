/* test_kafka_event.c - what the Kafka output reads out of an event
 * (kafka_event.h): field lookup without a DOM, keys, topic templates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kafka_event.h"
#include "sl_err.h"

/* Shaped like event_writer.h's output, with traps: app.* and the message
 * carry look-alike keys that must not match. */
static const char EV[] =
  "{\"@timestamp\":\"2026-12-05T10:00:00.000Z\","
  "\"app\":{\"event\":{\"id\":\"fake\",\"dataset\":\"fake\"},"
  "\"list\":[1,{\"host\":\"x\"},\"]}\"],\"n\":7},"
  "\"message\":\"say \\\"event\\\":{\\\"id\\\":\\\"no\\\"} \\\\\","
  "\"trace\":{\"id\":\"0af7651916cd43dd8448eb211c80319c\"},"
  "\"event\":{\"id\":\"5f1e0c3a9b2d4e6f8a7b6c5d4e3f2a1b\","
  "\"dataset\":\"nginx.access\"},"
  "\"host\":{\"name\":\"web-1\"},\"labels\":{\"team\":\"a b/c\","
  "\"empty\":\"\",\"num\":42,\"flag\":true,\"nul\":null}}";

static int
find(const char *path, const char **v, size_t *n)
{
  struct sl_kspan s;
  int r = sl_kjson_find(EV, sizeof(EV) - 1, path, &s);

  if (r) {
    *v = s.p;
    *n = s.n;
  }
  return r;
}

#define ASSERT_FIELD(path, want)                                          \
  do {                                                                    \
    const char *v_;                                                       \
    size_t n_;                                                            \
    assert_int_equal(find((path), &v_, &n_), 1);                          \
    assert_int_equal(n_, strlen(want));                                   \
    assert_memory_equal(v_, (want), n_);                                  \
  } while (0)

static void
test_find_top_level_not_nested_lookalikes(void **state)
{
  const char *v;
  size_t n;

  ASSERT_FIELD("event.id", "5f1e0c3a9b2d4e6f8a7b6c5d4e3f2a1b");
  ASSERT_FIELD("event.dataset", "nginx.access");
  ASSERT_FIELD("host.name", "web-1");
  ASSERT_FIELD("trace.id", "0af7651916cd43dd8448eb211c80319c");
  ASSERT_FIELD("app.event.id", "fake");
  ASSERT_FIELD("app.n", "7");
  ASSERT_FIELD("labels.num", "42");
  ASSERT_FIELD("labels.flag", "true");
  ASSERT_FIELD("labels.empty", "");
  /* Escapes stay as written. */
  ASSERT_FIELD("message", "say \\\"event\\\":{\\\"id\\\":\\\"no\\\"} \\\\");
  assert_int_equal(find("labels.nul", &v, &n), 0);
  assert_int_equal(find("event", &v, &n), 0);       /* an object */
  assert_int_equal(find("app.list", &v, &n), 0);    /* an array */
  assert_int_equal(find("span.id", &v, &n), 0);
  assert_int_equal(find("event.id.x", &v, &n), 0);
  assert_int_equal(find("host", &v, &n) , 0);
  assert_int_equal(find("ho", &v, &n), 0);
}

static void
test_find_malformed_is_absent(void **state)
{
  static const char *const bad[] = {
    "", "[]", "{", "{\"event\":", "{\"event\":{\"id\":\"abc",
    "{\"a\" 1}", "{\"a\":1 \"event\":{\"id\":\"x\"}}", "{\"event\"",
  };
  struct sl_kspan s;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(sl_kjson_find(bad[i], strlen(bad[i]), "event.id", &s),
                     0);
  /* Whitespace between tokens is fine. */
  assert_int_equal(sl_kjson_find(" { \"event\" : { \"id\" : \"x\" } } ", 30,
                                 "event.id", &s), 1);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.p[0], 'x');
}

static void
test_keys(void **state)
{
  enum sl_kkey k;

  assert_int_equal(sl_kkey_parse("event.id", &k), 0);
  assert_int_equal(k, SL_KKEY_EVENT_ID);
  assert_string_equal(sl_kkey_path(k), "event.id");
  assert_int_equal(sl_kkey_parse("host.name", &k), 0);
  assert_string_equal(sl_kkey_path(k), "host.name");
  assert_int_equal(sl_kkey_parse("trace.id", &k), 0);
  assert_string_equal(sl_kkey_path(k), "trace.id");
  assert_int_equal(sl_kkey_parse("none", &k), 0);
  assert_null(sl_kkey_path(k));
  assert_int_equal(sl_kkey_parse("message", &k), -1);
}

static const char *
render(const char *tmpl)
{
  static char out[SL_KTOPIC_MAX + 1];
  struct sl_ktopic *t;
  char err[128];

  assert_int_equal(sl_ktopic_compile(tmpl, &t, err, sizeof(err)), 0);
  sl_ktopic_render(t, EV, sizeof(EV) - 1, out, sizeof(out));
  sl_ktopic_free(t);
  return out;
}

static void
test_topic_templates(void **state)
{
  struct sl_ktopic *t;
  char err[128], out[SL_KTOPIC_MAX + 1];
  char longer[400];

  assert_int_equal(sl_ktopic_compile("logs", &t, err, sizeof(err)), 0);
  assert_string_equal(sl_ktopic_static(t), "logs");
  sl_ktopic_free(t);
  assert_int_equal(sl_ktopic_compile("logs-%{event.dataset}", &t, err,
                                     sizeof(err)), 0);
  assert_null(sl_ktopic_static(t));
  sl_ktopic_free(t);

  assert_string_equal(render("logs-%{event.dataset}"), "logs-nginx.access");
  assert_string_equal(render("%{host.name}.%{event.dataset:x}"),
                      "web-1.nginx.access");
  /* Missing, empty, null: the default, or "unknown". */
  assert_string_equal(render("logs-%{data_stream.dataset:generic}"),
                      "logs-generic");
  assert_string_equal(render("logs-%{labels.empty:e}"), "logs-e");
  assert_string_equal(render("logs-%{labels.nul:n}"), "logs-n");
  assert_string_equal(render("logs-%{no.field}"), "logs-unknown");
  /* Characters Kafka refuses become '_'. */
  assert_string_equal(render("t-%{labels.team}"), "t-a_b_c");
  assert_string_equal(render("%{labels.num}"), "42");

  /* Refused templates. */
  assert_int_equal(sl_ktopic_compile("", &t, err, sizeof(err)), SL_EINVAL);
  assert_int_equal(sl_ktopic_compile("logs-%{event", &t, err, sizeof(err)),
                   SL_EINVAL);
  assert_non_null(strstr(err, "without"));
  assert_int_equal(sl_ktopic_compile("a%{}b", &t, err, sizeof(err)),
                   SL_EINVAL);
  assert_int_equal(sl_ktopic_compile("a%{x..y}", &t, err, sizeof(err)),
                   SL_EINVAL);
  assert_int_equal(sl_ktopic_compile("logs/app", &t, err, sizeof(err)),
                   SL_EINVAL);
  assert_int_equal(sl_ktopic_compile("l-%{a:b/c}", &t, err, sizeof(err)),
                   SL_EINVAL);
  memset(longer, 'a', 300);
  longer[300] = '\0';
  assert_int_equal(sl_ktopic_compile(longer, &t, err, sizeof(err)),
                   SL_EINVAL);
  /* A rendered name is capped at Kafka's 249 bytes. */
  memcpy(longer, "%{host.name}", 12);
  longer[260] = '\0';
  assert_int_equal(sl_ktopic_compile(longer, &t, err, sizeof(err)), 0);
  assert_int_equal(sl_ktopic_render(t, EV, sizeof(EV) - 1, out, sizeof(out)),
                   SL_KTOPIC_MAX);
  assert_memory_equal(out, "web-1aaa", 8);
  sl_ktopic_free(t);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_find_top_level_not_nested_lookalikes),
    cmocka_unit_test(test_find_malformed_is_absent),
    cmocka_unit_test(test_keys),
    cmocka_unit_test(test_topic_templates),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
