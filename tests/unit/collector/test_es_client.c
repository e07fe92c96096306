/* test_es_client.c - the ES HTTP client without an ES: body recycling,
 * failures reported through the completion callback, failover between
 * hosts, close with requests in flight. (Answers from a real ES double
 * are covered by test_indexer.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "es_client.h"
#include "sl_err.h"

struct ctx {
  uv_loop_t loop;
  struct sl_es_client *c;
  struct sl_es_conf conf;
  char *hosts[2];
  char urls[2][64];
  int calls, answered, closed;
  char last_url[128];
};

/* A port nothing listens on: bound, then closed. */
static int
closed_port(void)
{
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void
ctx_open(struct ctx *x, size_t nhosts)
{
  char err[128];
  size_t i;

  memset(x, 0, sizeof *x);
  assert_int_equal(uv_loop_init(&x->loop), 0);
  for (i = 0; i < nhosts; i++) {
    snprintf(x->urls[i], sizeof x->urls[i], "http://127.0.0.1:%d",
             closed_port());
    x->hosts[i] = x->urls[i];
  }
  x->conf.hosts = x->hosts;
  x->conf.nhosts = nhosts;
  x->conf.verify = 1;
  x->conf.timeout_ms = 5000;
  x->conf.max_inflight = 2;
  x->conf.bulk_max_bytes = 4096;
  x->conf.backoff_base_ms = 10000;
  x->conf.backoff_max_ms = 60000;
  assert_int_equal(sl_es_client_new(&x->loop, &x->conf, &x->c, err,
                                    sizeof err), 0);
}

static void
on_closed(void *arg)
{
  ((struct ctx *)arg)->closed++;
}

static void
ctx_close(struct ctx *x)
{
  sl_es_client_close(x->c, on_closed, x);
  while (!x->closed)
    uv_run(&x->loop, UV_RUN_ONCE);
  assert_int_equal(x->closed, 1);
  assert_int_equal(uv_loop_close(&x->loop), 0);
}

static void
on_done(void *arg, const struct sl_es_result *r)
{
  struct ctx *x = arg;

  x->calls++;
  x->answered += r->answered;
  assert_non_null(r->error);
  assert_non_null(r->body);
  snprintf(x->last_url, sizeof x->last_url, "%s", r->url);
}

/* Buffers come back with their capacity; the pool keeps at most
 * max_inflight + 1 and drops one grown past twice bulk_max_bytes (plus
 * 64 KiB of slack). */
static void
test_body_pool(void **state)
{
  struct ctx x;
  struct sl_buf b[4], big, again;
  size_t i;

  (void)state;
  ctx_open(&x, 1);
  for (i = 0; i < 4; i++) {
    sl_es_buf_get(x.c, &b[i]);
    assert_int_equal(b[i].len, 0);
    assert_int_equal(sl_buf_append(&b[i], "0123456789", 10), 0);
  }
  for (i = 0; i < 4; i++) {
    sl_es_buf_put(x.c, &b[i]);
    assert_null(b[i].p);
  }
  /* Three kept (max_inflight + 1), each empty with room. */
  for (i = 0; i < 3; i++) {
    sl_es_buf_get(x.c, &b[i]);
    assert_non_null(b[i].p);
    assert_int_equal(b[i].len, 0);
    assert_true(b[i].cap >= 11);
  }
  sl_es_buf_get(x.c, &b[3]);
  assert_null(b[3].p);
  for (i = 0; i < 4; i++)
    sl_es_buf_put(x.c, &b[i]);
  /* Too big to keep. */
  sl_es_buf_get(x.c, &big);
  assert_int_equal(sl_buf_reserve(&big, 2 * 4096 + (64 << 10) + 1), 0);
  for (i = 0; i < 3; i++)
    sl_es_buf_get(x.c, &b[i]);
  sl_es_buf_put(x.c, &big);
  sl_es_buf_get(x.c, &again);
  assert_null(again.p);
  for (i = 0; i < 3; i++)
    sl_es_buf_put(x.c, &b[i]);
  ctx_close(&x);
}

/* No answer: reported once per request (answered 0, curl's reason); the
 * host that failed is skipped next time while the other is alive. */
static void
test_no_answer_failover(void **state)
{
  struct ctx x;
  struct sl_buf body;
  char first[128];

  (void)state;
  ctx_open(&x, 2);
  sl_es_buf_get(x.c, &body);
  assert_int_equal(sl_buf_append_str(&body, "{}"), 0);
  assert_int_equal(sl_es_request(x.c, "PUT", "a", "Content-Type: "
                                 "application/json", 0, &body, on_done, &x),
                   0);
  assert_null(body.p);          /* taken */
  assert_int_equal(sl_es_inflight(x.c), 1);
  while (x.calls < 1)
    uv_run(&x.loop, UV_RUN_ONCE);
  assert_int_equal(x.answered, 0);
  assert_int_equal(sl_es_inflight(x.c), 0);
  snprintf(first, sizeof first, "%s", x.last_url);
  assert_int_equal(sl_es_request(x.c, "GET", "b", NULL, 0, NULL, on_done,
                                 &x), 0);
  while (x.calls < 2)
    uv_run(&x.loop, UV_RUN_ONCE);
  assert_string_not_equal(first, x.last_url);
  assert_int_equal(x.calls, 2);
  ctx_close(&x);
}

/* Close abandons requests in flight: their callbacks never run. */
static void
test_close_inflight(void **state)
{
  struct ctx x;

  (void)state;
  ctx_open(&x, 1);
  assert_int_equal(sl_es_request(x.c, "GET", "", NULL, 0, NULL, on_done,
                                 &x), 0);
  assert_int_equal(sl_es_request(x.c, "GET", "", NULL, 0, NULL, on_done,
                                 &x), 0);
  ctx_close(&x);
  assert_int_equal(x.calls, 0);
}

/* Credentials in a URL: split off (decoded) before anything can print
 * the URL. */
static void
test_url_split(void **state)
{
  static const struct {
    const char *in, *clean, *user, *pass;
  } cases[] = {
    { "http://h:9200", "http://h:9200", NULL, NULL },
    { "https://elastic:s3cr%40t@h:9200", "https://h:9200", "elastic",
      "s3cr@t" },
    { "http://u@h", "http://h", "u", "" },
    { "http://u:p:q@h/x@y", "http://h/x@y", "u", "p:q" },
    { "http://a@b:c@h", "http://h", "a@b", "c" },
    { "http://h/p?q=a@b", "http://h/p?q=a@b", NULL, NULL },
    { "http://u:%zz%4@h", "http://h", "u", "%zz%4" },
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *clean, *user, *pass;

    assert_int_equal(sl_es_url_split(cases[i].in, &clean, &user, &pass), 0);
    assert_string_equal(clean, cases[i].clean);
    if (cases[i].user) {
      assert_non_null(user);
      assert_string_equal(user, cases[i].user);
      assert_string_equal(pass, cases[i].pass);
    } else {
      assert_null(user);
      assert_null(pass);
    }
    free(clean);
    free(user);
    free(pass);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_url_split),
    cmocka_unit_test(test_body_pool),
    cmocka_unit_test(test_no_answer_failover),
    cmocka_unit_test(test_close_inflight),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
