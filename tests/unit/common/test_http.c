#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "sl_err.h"
#include "sl_http.h"
#include "sl_test.h"
#include "sl_time.h"

static int handler_calls;
static char last_path[256];

static void
handler(void *arg, const char *path, int *status, const char **ctype,
        struct sl_buf *body)
{
  (void)arg;
  handler_calls++;
  snprintf(last_path, sizeof(last_path), "%s", path);
  if (strcmp(path, "/metrics") == 0) {
    *status = 200;
    *ctype = SL_HTTP_CT_PROMETHEUS;
    assert_int_equal(sl_buf_append_str(body, "sl_up 1\n"), 0);
  } else if (strcmp(path, "/health") == 0) {
    *status = 200;
    assert_int_equal(sl_buf_append_str(body, "ok\n"), 0);
  } else if (strcmp(path, "/") == 0) {
    *status = 200;
    *ctype = "text/html; charset=utf-8";
    assert_int_equal(sl_buf_append_str(body, "<p>hi</p>\n"), 0);
  } else {
    *status = 404;
    assert_int_equal(sl_buf_append_str(body, "not found\n"), 0);
  }
}

/* A blocking client on its own thread while the test thread runs the loop. */
struct fetch {
  int port;
  const char *req;
  size_t reqlen;
  char resp[16384];
  size_t resplen;
  int done;  /* __atomic */
};

static int
connect_local(int port)
{
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  assert_true(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void *
fetch_thread(void *arg)
{
  struct fetch *f = arg;
  size_t off = 0;
  ssize_t n;
  int fd = connect_local(f->port);

  if (fd >= 0) {
    while (off < f->reqlen) {
      n = send(fd, f->req + off, f->reqlen - off, MSG_NOSIGNAL);
      if (n <= 0)
        break;
      off += (size_t)n;
    }
    while (f->resplen < sizeof(f->resp) - 1) {
      n = recv(fd, f->resp + f->resplen, sizeof(f->resp) - 1 - f->resplen, 0);
      if (n <= 0)
        break;
      f->resplen += (size_t)n;
    }
    f->resp[f->resplen] = '\0';
    close(fd);
  }
  __atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static int
fetch_done(void *arg)
{
  return __atomic_load_n((int *)arg, __ATOMIC_ACQUIRE);
}

static struct fetch *
fetch(uv_loop_t *loop, int port, const char *req, size_t len)
{
  struct fetch *f = calloc(1, sizeof(*f));
  pthread_t th;

  f->port = port;
  f->req = req;
  f->reqlen = len;
  assert_int_equal(pthread_create(&th, NULL, fetch_thread, f), 0);
  assert_true(sl_test_run_until(loop, fetch_done, &f->done, 10000));
  pthread_join(th, NULL);
  return f;
}

static const char *
body_of(const struct fetch *f)
{
  const char *p = strstr(f->resp, "\r\n\r\n");
  return p ? p + 4 : "";
}

/* Stop the server and require that every handle is gone afterwards. */
static void
stop_and_close(uv_loop_t *loop, struct sl_http *s)
{
  sl_http_stop(s);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void
test_get_200_404(void **state)
{
  static const char req1[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  static const char req2[] = "GET /nope?x=1 HTTP/1.0\r\n\r\n";
  static const char req3[] = "GET /health?verbose HTTP/1.1\n\n";
  struct sl_http *s;
  struct fetch *f;
  uv_loop_t loop;

  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(sl_http_start(&loop, "127.0.0.1:0", handler, NULL, &s),
                   0);
  assert_true(sl_http_port(s) > 0);
  f = fetch(&loop, sl_http_port(s), req1, sizeof(req1) - 1);
  assert_non_null(strstr(f->resp, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(f->resp, "\r\nContent-Type: text/plain; "
                         "version=0.0.4; charset=utf-8\r\n"));
  assert_non_null(strstr(f->resp, "\r\nContent-Length: 8\r\n"));
  assert_non_null(strstr(f->resp, "\r\nConnection: close\r\n"));
  assert_string_equal(body_of(f), "sl_up 1\n");
  free(f);
  f = fetch(&loop, sl_http_port(s), req2, sizeof(req2) - 1);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 404 Not Found\r\n", 24), 0);
  assert_string_equal(body_of(f), "not found\n");
  /* The query string is not part of the path. */
  assert_string_equal(last_path, "/nope");
  free(f);
  /* Bare LF line ends are accepted; default content type. */
  f = fetch(&loop, sl_http_port(s), req3, sizeof(req3) - 1);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 200 OK\r\n", 17), 0);
  assert_non_null(strstr(f->resp, "Content-Type: text/plain; charset=utf-8"));
  assert_string_equal(body_of(f), "ok\n");
  assert_string_equal(last_path, "/health");
  free(f);
  stop_and_close(&loop, s);
}

/* Every answer is uncacheable; only HTML gets the extra lines (a page's
 * Content-Security-Policy). */
static void
test_html_headers(void **state)
{
  static const char page[] = "GET / HTTP/1.1\r\n\r\n";
  static const char metrics[] = "GET /metrics HTTP/1.1\r\n\r\n";
  static const char csp[] = "Content-Security-Policy: default-src 'none'"
                            "\r\n";
  char big[1100];
  struct sl_http *s;
  struct fetch *f;
  uv_loop_t loop;

  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(sl_http_start(&loop, "127.0.0.1:0", handler, NULL, &s),
                   0);
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(sl_http_set_html_headers(s, big), SL_EINVAL);
  assert_int_equal(sl_http_set_html_headers(s, csp), 0);
  f = fetch(&loop, sl_http_port(s), page, sizeof(page) - 1);
  assert_non_null(strstr(f->resp, "\r\nContent-Type: text/html; "
                         "charset=utf-8\r\n"));
  assert_non_null(strstr(f->resp, "\r\nCache-Control: no-store\r\n"));
  assert_non_null(strstr(f->resp, "\r\nContent-Security-Policy: "
                         "default-src 'none'\r\n\r\n"));
  assert_string_equal(body_of(f), "<p>hi</p>\n");
  free(f);
  f = fetch(&loop, sl_http_port(s), metrics, sizeof(metrics) - 1);
  assert_non_null(strstr(f->resp, "\r\nCache-Control: no-store\r\n"));
  assert_null(strstr(f->resp, "Content-Security-Policy"));
  free(f);
  /* NULL removes them. */
  assert_int_equal(sl_http_set_html_headers(s, NULL), 0);
  f = fetch(&loop, sl_http_port(s), page, sizeof(page) - 1);
  assert_null(strstr(f->resp, "Content-Security-Policy"));
  free(f);
  /* Freed with the server (ASan would see a leak otherwise). */
  assert_int_equal(sl_http_set_html_headers(s, csp), 0);
  stop_and_close(&loop, s);
}

static void
test_bad_requests(void **state)
{
  static const char post[] = "POST /metrics HTTP/1.1\r\n\r\n";
  static const char junk[] = "hello\r\n\r\n";
  static const char head[] = "HEAD /metrics HTTP/1.1\r\n\r\n";
  static const char split[] = "GET /metrics HTTP/1.1\r\n";
  struct sl_http *s;
  struct fetch *f;
  uv_loop_t loop;
  char *big;
  int calls;

  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(sl_http_start(&loop, "127.0.0.1:0", handler, NULL, &s),
                   0);
  calls = handler_calls;
  f = fetch(&loop, sl_http_port(s), post, sizeof(post) - 1);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 405 ", 13), 0);
  assert_non_null(strstr(f->resp, "Allow: GET"));
  free(f);
  f = fetch(&loop, sl_http_port(s), junk, sizeof(junk) - 1);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 400 ", 13), 0);
  free(f);
  assert_int_equal(handler_calls, calls);
  /* HEAD: headers with the length, no body. */
  f = fetch(&loop, sl_http_port(s), head, sizeof(head) - 1);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 200 OK\r\n", 17), 0);
  assert_non_null(strstr(f->resp, "Content-Length: 8\r\n"));
  assert_string_equal(body_of(f), "");
  free(f);
  /* A head larger than 8 KiB: 431, the handler never runs. */
  big = malloc(20000);
  memcpy(big, split, sizeof(split) - 1);
  memset(big + sizeof(split) - 1, 'a', 20000 - (sizeof(split) - 1));
  calls = handler_calls;
  f = fetch(&loop, sl_http_port(s), big, 20000);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 431 ", 13), 0);
  assert_int_equal(handler_calls, calls);
  free(f);
  free(big);
  stop_and_close(&loop, s);
}

static void
test_client_limit_and_stop(void **state)
{
  static const char req[] = "GET /health HTTP/1.1\r\n\r\n";
  struct sl_http *s;
  struct fetch *f;
  uv_loop_t loop;
  int fds[70], i, extra;
  char c;
  uint64_t deadline;

  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(sl_http_start(&loop, "127.0.0.1:0", handler, NULL, &s),
                   0);
  /* 64 idle clients are kept... */
  for (i = 0; i < 64; i++) {
    fds[i] = connect_local(sl_http_port(s));
    assert_true(fds[i] >= 0);
  }
  deadline = sl_time_mono_ms() + 5000;
  while (sl_time_mono_ms() < deadline) {
    uv_run(&loop, UV_RUN_NOWAIT);
    /* ...and the 65th is closed on accept (recv sees EOF). */
    extra = connect_local(sl_http_port(s));
    assert_true(extra >= 0);
    struct timeval tv = { 0, 20000 };
    setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (i = 0; i < 20; i++) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (recv(extra, &c, 1, 0) == 0)
        break;
    }
    close(extra);
    if (i < 20)
      break;
  }
  assert_true(sl_time_mono_ms() < deadline);
  /* Freeing one slot lets a real request through. */
  close(fds[0]);
  f = NULL;
  deadline = sl_time_mono_ms() + 5000;
  do {
    free(f);
    uv_run(&loop, UV_RUN_NOWAIT);
    f = fetch(&loop, sl_http_port(s), req, sizeof(req) - 1);
  } while (strncmp(f->resp, "HTTP/1.1 200", 12) != 0 &&
           sl_time_mono_ms() < deadline);
  assert_int_equal(strncmp(f->resp, "HTTP/1.1 200", 12), 0);
  free(f);
  /* Stop with 63 clients still connected: everything is closed and freed
   * by the close callbacks (ASan checks the freeing). */
  stop_and_close(&loop, s);
  for (i = 1; i < 64; i++) {
    assert_int_equal(recv(fds[i], &c, 1, 0), 0);
    close(fds[i]);
  }
}

static void
test_bad_addr_and_busy_port(void **state)
{
  struct sl_http *s, *s2;
  uv_loop_t loop;
  char addr[64];

  (void)state;
  uv_loop_init(&loop);
  assert_int_equal(sl_http_start(&loop, "nonsense", handler, NULL, &s),
                   SL_EINVAL);
  assert_null(s);
  assert_int_equal(sl_http_start(&loop, "127.0.0.1:99999", handler, NULL,
                                 &s), SL_EINVAL);
  assert_int_equal(sl_http_start(&loop, "example.com:80", handler, NULL,
                                 &s), SL_EINVAL);
  assert_int_equal(sl_http_start(&loop, "localhost:0", handler, NULL, &s),
                   0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", sl_http_port(s));
  /* The port is taken: an error, and the half-made server is released. */
  assert_int_equal(sl_http_start(&loop, addr, handler, NULL, &s2),
                   UV_EADDRINUSE);
  assert_null(s2);
  stop_and_close(&loop, s);
}

SL_TEST_MAIN(NULL, NULL,
             cmocka_unit_test(test_get_200_404),
             cmocka_unit_test(test_html_headers),
             cmocka_unit_test(test_bad_requests),
             cmocka_unit_test(test_client_limit_and_stop),
             cmocka_unit_test(test_bad_addr_and_busy_port))
