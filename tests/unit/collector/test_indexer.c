/* test_indexer.c - the indexer against the real ES double process
 * (tests/esdouble/esdouble.py), driven on a uv loop. Every wait polls a
 * condition with a deadline. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bulk.h"
#include "config.h"
#include "indexer.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_time.h"

#ifndef SL_SRCDIR
#define SL_SRCDIR "."
#endif

#define INDEX "logs-test-default"
#define DL_INDEX "logs-sluice.deadletter-default"

/* ---- the double --------------------------------------------------------- */

struct dbl {
  pid_t pid;
  int in_fd;        /* our end of its stdin: EOF (we died) ends it */
  int port;
  char url[64];
};

/* A format-2 spool record for the payload (malloc'ed, len bytes). */
static int
submit(struct sl_indexer *ix, uint64_t id, char *p, size_t len,
       uint32_t nevents, sl_indexer_done_cb cb, void *arg)
{
  struct sl_spool_rec r = { .id = id, .data = p, .len = len, .cap = len,
                            .nevents = nevents, .version = 2 };

  return sl_indexer_submit(ix, &r, cb, arg);
}

static const char fake_server[] =
  "import http.server\n"
  "class H(http.server.BaseHTTPRequestHandler):\n"
  "    protocol_version = 'HTTP/1.1'\n"
  "    def _r(self):\n"
  "        n = int(self.headers.get('Content-Length') or 0)\n"
  "        self.rfile.read(n)\n"
  "        b = b'{\"version\":{\"number\":\"8.13.4\"},\"tagline\":\"x\"}'\n"
  "        self.send_response(200)\n"
  "        self.send_header('Content-Type', 'application/json')\n"
  "        self.send_header('Content-Length', str(len(b)))\n"
  "        self.end_headers()\n"
  "        self.wfile.write(b)\n"
  "    do_GET = do_POST = do_PUT = _r\n"
  "    def log_message(self, *a):\n"
  "        pass\n"
  "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
  "print('READY', s.server_address[1], flush=True)\n"
  "s.serve_forever()\n";

/* Children still running; a failed assertion longjmps out of the test,
 * so the teardown kills whatever is left (else the double would hold
 * meson's output pipe open until the suite's timeout). */
#define MAX_KIDS 4
static pid_t kids[MAX_KIDS];

static void
kid_forget(pid_t pid)
{
  int i;

  for (i = 0; i < MAX_KIDS; i++)
    if (kids[i] == pid)
      kids[i] = 0;
}

static int
teardown(void **state)
{
  int i, st;

  (void)state;
  for (i = 0; i < MAX_KIDS; i++) {
    if (kids[i] > 0) {
      kill(kids[i], SIGTERM);
      waitpid(kids[i], &st, 0);
      kids[i] = 0;
    }
  }
  return 0;
}

/* Start argv (NULL-terminated) and read "READY <port>" within 15 s. */
static void
spawn(struct dbl *d, char *const *argv)
{
  int fds[2], in[2];
  char buf[256];
  size_t got = 0;
  uint64_t deadline = sl_time_mono_ms() + 15000;

  assert_int_equal(pipe(fds), 0);
  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  d->pid = fork();
  assert_true(d->pid >= 0);
  if (d->pid == 0) {
    int null = open("/dev/null", O_WRONLY);

    /* The double's access errors would interleave with ours; quiet. */
    if (null >= 0 && !getenv("SL_TEST_VERBOSE"))
      dup2(null, 2);
    dup2(fds[1], 1);
    dup2(in[0], 0);
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  close(in[0]);
  d->in_fd = in[1];
  {
    int i;

    for (i = 0; i < MAX_KIDS && kids[i]; i++)
      ;
    if (i < MAX_KIDS)
      kids[i] = d->pid;
  }
  while (sl_time_mono_ms() < deadline && !memchr(buf, '\n', got)) {
    struct pollfd p = { fds[0], POLLIN, 0 };
    ssize_t n;

    if (poll(&p, 1, 100) <= 0)
      continue;
    n = read(fds[0], buf + got, sizeof buf - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  /* Keep the pipe open in the child (it may print more); we only close
   * our end. */
  close(fds[0]);
  assert_int_equal(sscanf(buf, "READY %d", &d->port), 1);
  snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
}

static void
dbl_start(struct dbl *d, const char *a1, const char *a2)
{
  char *argv[] = { "/usr/bin/python3", SL_SRCDIR "/tests/esdouble/esdouble.py",
                   "--port", "0", "--watch-stdin", (char *)a1, (char *)a2,
                   NULL };

  spawn(d, argv);
}

static void
fake_start(struct dbl *d)
{
  char *argv[] = { "/usr/bin/python3", "-c", (char *)fake_server, NULL };

  spawn(d, argv);
}

static void
dbl_stop(struct dbl *d)
{
  int st;

  kill(d->pid, SIGTERM);
  waitpid(d->pid, &st, 0);
  kid_forget(d->pid);
  close(d->in_fd);
}

static size_t
on_body(char *p, size_t s, size_t n, void *u)
{
  return sl_buf_append(u, p, s * n) == 0 ? s * n : 0;
}

/* Blocking helper request (no auth: /_double needs none; tests that use
 * auth pass it in userpwd). */
static long
http(const struct dbl *d, const char *method, const char *path,
     const char *body, const char *userpwd, struct sl_buf *out)
{
  CURL *e = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL,
                                           "Content-Type: application/json");
  char url[512];
  long status = 0;

  snprintf(url, sizeof url, "%s%s", d->url, path);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
  if (userpwd)
    curl_easy_setopt(e, CURLOPT_USERPWD, userpwd);
  if (body)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  assert_int_equal(curl_easy_perform(e), CURLE_OK);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  return status;
}

static json_t *
http_json(const struct dbl *d, const char *method, const char *path,
          const char *body, const char *userpwd)
{
  struct sl_buf b;
  json_t *j;

  sl_buf_init(&b, 0);
  http(d, method, path, body, userpwd, &b);
  j = json_loadb(b.p ? b.p : "", b.len, 0, NULL);
  sl_buf_free(&b);
  assert_non_null(j);
  return j;
}

static void
faults(const struct dbl *d, const char *json)
{
  struct sl_buf b;

  sl_buf_init(&b, 0);
  assert_int_equal(http(d, "POST", "/_double/faults", json, NULL, &b), 200);
  sl_buf_free(&b);
}

static int64_t
es_count(const struct dbl *d, const char *index, const char *userpwd)
{
  char path[256];
  json_t *j;
  int64_t n;

  snprintf(path, sizeof path, "/%s/_count", index);
  j = http_json(d, "GET", path, NULL, userpwd);
  n = json_is_integer(json_object_get(j, "count"))
        ? (int64_t)json_integer_value(json_object_get(j, "count")) : -1;
  json_decref(j);
  return n;
}

static int64_t
dbl_stat(const struct dbl *d, const char *key, const char *sub)
{
  json_t *j = http_json(d, "GET", "/_double/stats", NULL, NULL), *v;
  int64_t n;

  v = json_object_get(j, key);
  if (sub)
    v = json_object_get(v, sub);
  n = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
  json_decref(j);
  return n;
}

/* ---- the indexer on a loop ---------------------------------------------- */

struct ctx {
  uv_loop_t loop;
  uv_timer_t tick;
  struct sl_indexer *ix;
  struct sl_es_conf conf;
  char dir[64];
  uint64_t recs_done, eagain;
  int64_t max_inflight;       /* largest in-flight gauge seen */
  int closed;
};

static void
on_tick(uv_timer_t *t)
{
  (void)t;
}

static void
on_done(void *arg, uint64_t id)
{
  struct ctx *c = arg;

  (void)id;
  c->recs_done++;
}

static json_t *
conf(const struct dbl *d)
{
  /* Short intervals keep the tests fast; behaviour is the same. */
  return json_pack("{s:[s], s:i, s:i, s:i, s:i, s:{s:i, s:i}}", "hosts",
                   d->url, "flush_interval", 20, "bulk_max_events", 1000,
                   "timeout", 10000, "max_inflight", 4, "retry",
                   "backoff_base", 10, "backoff_max", 100);
}

static void
ctx_open(struct ctx *c, json_t *es)
{
  char err[256];

  memset(c, 0, sizeof *c);
  snprintf(c->dir, sizeof c->dir, "/tmp/sl-ixtest-XXXXXX");
  assert_non_null(mkdtemp(c->dir));
  assert_int_equal(uv_loop_init(&c->loop), 0);
  uv_timer_init(&c->loop, &c->tick);
  uv_timer_start(&c->tick, on_tick, 5, 5);
  assert_int_equal(sl_es_conf_fill(es, c->dir, &c->conf, err, sizeof err),
                   0);
  assert_int_equal(sl_indexer_new(&c->loop, &c->conf, &c->ix, err,
                                  sizeof err), 0);
  /* The indexer copied what it keeps. */
  sl_es_conf_free(&c->conf);
  json_decref(es);
  assert_int_equal(sl_indexer_start(c->ix), 0);
}

typedef int (*pred_fn)(struct ctx *c, void *arg);

static int
run_until(struct ctx *c, pred_fn p, void *arg, uint64_t ms)
{
  uint64_t deadline = sl_time_mono_ms() + ms;

  while (!p(c, arg)) {
    if (sl_time_mono_ms() > deadline)
      return 0;
    uv_run(&c->loop, UV_RUN_ONCE);
  }
  return 1;
}

/* Prefix of the indexer's metric names. */
#define ES "sluice_collector_es_"
static int64_t metric(struct ctx *c, const char *name);

static int
p_recs(struct ctx *c, void *arg)
{
  int64_t inflight = metric(c, ES "inflight_requests");

  if (inflight > c->max_inflight)
    c->max_inflight = inflight;
  return c->recs_done >= *(uint64_t *)arg;
}

static int
p_ready(struct ctx *c, void *arg)
{
  (void)arg;
  return sl_indexer_ready(c->ix);
}

static int
p_closed(struct ctx *c, void *arg)
{
  (void)arg;
  return c->closed;
}

/* Value of one sample line of the metrics text, e.g.
 * `sluice_collector_es_items_total{status="409"}`; -1 if absent. */
static int64_t
metric(struct ctx *c, const char *name)
{
  struct sl_buf b;
  char key[160], *p;
  int64_t v = -1;

  sl_buf_init(&b, 0);
  assert_int_equal(sl_indexer_metrics(c->ix, &b), 0);
  snprintf(key, sizeof key, "\n%s ", name);
  p = strstr(b.p, key);
  if (p)
    v = strtoll(p + strlen(key), NULL, 10);
  sl_buf_free(&b);
  return v;
}

static int
p_metric(struct ctx *c, void *arg)
{
  return metric(c, arg) == 1;
}

static void
on_closed(void *arg)
{
  ((struct ctx *)arg)->closed = 1;
}

static void
rm_rf(const char *dir)
{
  char path[512];
  struct dirent *e;
  DIR *d = opendir(dir);

  if (d) {
    while ((e = readdir(d)) != NULL) {
      struct stat st;

      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        rm_rf(path);
      else
        unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

static void
ctx_close(struct ctx *c)
{
  sl_indexer_close(c->ix, 5000, on_closed, c);
  assert_true(run_until(c, p_closed, NULL, 10000));
  uv_close((uv_handle_t *)&c->tick, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  /* Every handle of the indexer is gone (MAKE_VALGRIND_HAPPY). */
  assert_int_equal(uv_loop_close(&c->loop), 0);
  rm_rf(c->dir);
}

/* Events first..first+n-1 as one payload (spool format 2: NDJSON events;
 * the indexer routes them to INDEX in data-stream mode); every
 * `bad_every`-th event (when > 0) carries "bad_field"; `pad` bytes of
 * message padding. */
static char *
payload(int first, int n, int bad_every, size_t pad, size_t *len)
{
  struct sl_buf b;
  char id[32], *padding = malloc(pad + 1);
  int i;

  assert_non_null(padding);
  memset(padding, 'x', pad);
  padding[pad] = '\0';
  sl_buf_init(&b, 0);
  for (i = first; i < first + n; i++) {
    snprintf(id, sizeof id, "ev-%08d", i);
    assert_int_equal(sl_buf_printf(&b,
      "{\"@timestamp\":\"2026-11-25T12:00:00.000Z\",\"message\":\"event %d "
      "%s\",\"event\":{\"dataset\":\"test\",\"id\":\"%s\"},"
      "\"data_stream\":{\"type\":\"logs\",\"dataset\":\"test\","
      "\"namespace\":\"default\"}%s}\n", i, padding, id,
      bad_every > 0 && i % bad_every == 0 ? ",\"bad_field\":1" : ""), 0);
  }
  free(padding);
  return sl_buf_take(&b, len);
}

/* Submit records of `per` events covering [0, total), honouring
 * SL_EAGAIN by running the loop. */
static void
submit_range(struct ctx *c, int total, int per, int bad_every, size_t pad)
{
  uint64_t deadline = sl_time_mono_ms() + 60000;
  int first;

  for (first = 0; first < total; first += per) {
    int n = total - first < per ? total - first : per;
    size_t len;
    char *p = payload(first, n, bad_every, pad, &len);
    int rc;

    while ((rc = submit(c->ix, (uint64_t)first, p, len,
                                   (uint32_t)n, on_done, c)) == SL_EAGAIN) {
      c->eagain++;
      assert_true(sl_time_mono_ms() < deadline);
      uv_run(&c->loop, UV_RUN_ONCE);
    }
    assert_int_equal(rc, 0);
  }
}

static uint64_t
nrecs(int total, int per)
{
  return (uint64_t)((total + per - 1) / per);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_index_and_resubmit(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(10000, 500), want2 = 2 * want;
  int64_t raw, sent;

  (void)state;
  dbl_start(&d, NULL, NULL);
  ctx_open(&c, conf(&d));
  submit_range(&c, 10000, 500, 0, 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 10000);
  assert_int_equal(metric(&c, ES "items_total{status=\"201\"}"),
                   10000);
  assert_int_equal(sl_indexer_pending(c.ix), 0);
  assert_true(sl_indexer_ready(c.ix));
  /* gzip: the double decompressed it (else 400) and far fewer bytes went
   * over the wire than the raw bodies. */
  raw = metric(&c, ES "request_bytes_total");
  sent = metric(&c, ES "sent_bytes_total");
  assert_true(sent > 0 && sent * 3 < raw);
  assert_true(dbl_stat(&d, "bytes_in", NULL) * 2 < raw);
  /* Our templates are in place and the stream took them. */
  {
    struct sl_buf b;

    sl_buf_init(&b, 0);
    assert_int_equal(http(&d, "GET", "/_index_template/sluice-logs", NULL,
                          NULL, &b), 200);
    sl_buf_reset(&b);
    /* Replacing the built-in template kept a lifecycle (rollover). */
    assert_int_equal(http(&d, "GET", "/_data_stream/" INDEX, NULL, NULL, &b),
                     200);
    assert_non_null(strstr(b.p, "\"template\":\"sluice-logs\""));
    assert_non_null(strstr(b.p, "lifecycle"));
    sl_buf_free(&b);
  }

  /* The same records again: every item 409, counted as done. */
  submit_range(&c, 10000, 500, 0, 0);
  assert_true(run_until(&c, p_recs, &want2, 30000));
  assert_int_equal(metric(&c, ES "items_total{status=\"409\"}"),
                   10000);
  assert_int_equal(es_count(&d, INDEX, NULL), 10000);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_setup_idempotent(void **state)
{
  struct dbl d;
  struct ctx c;
  int64_t puts;

  (void)state;
  dbl_start(&d, NULL, NULL);
  ctx_open(&c, conf(&d));
  assert_true(run_until(&c, p_ready, NULL, 10000));
  ctx_close(&c);
  puts = dbl_stat(&d, "by_path", "PUT /_index_template/sluice-logs");
  assert_int_equal(puts, 1);
  /* A second start finds the same versions and PUTs nothing. */
  ctx_open(&c, conf(&d));
  assert_true(run_until(&c, p_ready, NULL, 10000));
  ctx_close(&c);
  assert_int_equal(dbl_stat(&d, "by_path",
                            "PUT /_index_template/sluice-logs"), 1);
  assert_int_equal(dbl_stat(&d, "by_path",
                            "PUT /_component_template/sluice-ecs-mappings"),
                   1);
  /* Daily mode adds its own template (and changes nothing else). */
  {
    json_t *es = conf(&d);
    struct sl_buf b;

    json_object_set_new(es, "index_mode", json_string("daily"));
    json_object_set_new(es, "index_prefix", json_string("acme"));
    ctx_open(&c, es);
    assert_true(run_until(&c, p_ready, NULL, 10000));
    ctx_close(&c);
    sl_buf_init(&b, 0);
    assert_int_equal(http(&d, "GET", "/_index_template/sluice-daily", NULL,
                          NULL, &b), 200);
    assert_non_null(strstr(b.p, "acme-*"));
    sl_buf_free(&b);
    assert_int_equal(dbl_stat(&d, "by_path",
                              "PUT /_index_template/sluice-logs"), 1);
  }
  dbl_stop(&d);
}

static void
test_item_429(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(2000, 100);

  (void)state;
  dbl_start(&d, NULL, NULL);
  faults(&d, "{\"item_reject_every\":5,\"item_reject_status\":429}");
  ctx_open(&c, conf(&d));
  submit_range(&c, 2000, 100, 0, 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 2000);
  assert_true(metric(&c, ES "items_total{status=\"429\"}") > 0);
  assert_true(metric(&c, ES "item_retries_total") > 0);
  /* Only the rejected items were sent again: no 409 ever. */
  assert_int_equal(dbl_stat(&d, "items_by_status", "409"), 0);
  assert_int_equal(metric(&c, ES "items_total{status=\"409\"}"), 0);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_whole_500(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(3000, 250);

  (void)state;
  dbl_start(&d, NULL, NULL);
  faults(&d, "{\"fail_status\":500,\"fail_count\":3}");
  ctx_open(&c, conf(&d));
  submit_range(&c, 3000, 250, 0, 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 3000);
  assert_int_equal(metric(&c, ES "requests_total{status=\"500\"}"), 3);
  assert_int_equal(metric(&c, ES "request_retries_total"),
                   3);
  assert_int_equal(dbl_stat(&d, "items_by_status", "409"), 0);
  assert_true(sl_indexer_ready(c.ix));
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_drop_after_apply(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(2000, 500);

  (void)state;
  dbl_start(&d, NULL, NULL);
  /* Applied, then the answer is lost: outcome unknown, resent, 409. */
  faults(&d, "{\"drop_count\":1,\"drop_mode\":\"after\"}");
  ctx_open(&c, conf(&d));
  submit_range(&c, 2000, 500, 0, 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 2000);
  /* curl may resend on a fresh connection by itself (a reused connection
   * that died), or we do after the error: either way 409s, no copies. */
  assert_true(metric(&c, ES "items_total{status=\"409\"}") > 0);
  ctx_close(&c);
  dbl_stop(&d);
}

static int
count_lines(const char *dir, const char *needle)
{
  char path[512], line[1 << 16];
  struct dirent *e;
  DIR *dd;
  int n = 0;

  snprintf(path, sizeof path, "%s/deadletter", dir);
  dd = opendir(path);
  if (!dd)
    return 0;
  while ((e = readdir(dd)) != NULL) {
    FILE *f;

    if (!strstr(e->d_name, ".ndjson"))
      continue;
    snprintf(path, sizeof path, "%s/deadletter/%s", dir, e->d_name);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
      if (!needle || strstr(line, needle))
        n++;
    fclose(f);
  }
  closedir(dd);
  return n;
}

static void
test_413_split(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(2000, 500) + 1;
  size_t len;
  char *big;

  (void)state;
  dbl_start(&d, "--max-body", "20000");
  ctx_open(&c, conf(&d));
  submit_range(&c, 2000, 500, 0, 0);
  /* One event alone over the limit: dead-letter file, status 413. */
  big = payload(900000, 1, 0, 30000, &len);
  assert_int_equal(submit(c.ix, 99, big, len, 1, on_done, &c), 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 2000);
  assert_true(metric(&c, ES "splits_total") > 0);
  assert_true(metric(&c, ES "requests_total{status=\"413\"}") > 0);
  assert_true(metric(&c, ES "bulk_max_bytes") <= 20000);
  assert_int_equal(metric(&c, ES "deadletters_total{dest=\"file\"}"),
                   1);
  assert_int_equal(count_lines(c.dir, "\"status\":413"), 1);
  assert_int_equal(count_lines(c.dir, "ev-00900000"), 1);
  assert_int_equal(dbl_stat(&d, "items_by_status", "409"), 0);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_mapping_deadletter(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(1000, 100);
  json_t *root, *docs, *doc, *src, *ev, *lab;
  size_t i;

  (void)state;
  dbl_start(&d, "--mapping-error-field", "bad_field");
  ctx_open(&c, conf(&d));
  submit_range(&c, 1000, 100, 10, 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 900);
  assert_int_equal(es_count(&d, DL_INDEX, NULL), 100);
  assert_int_equal(metric(&c, ES "deadletters_total{dest=\"es\"}"),
                   100);
  assert_int_equal(metric(&c, ES "items_total{status=\"4xx\"}"), 100);
  root = http_json(&d, "GET", "/_double/docs?index=" DL_INDEX, NULL, NULL);
  docs = json_object_get(root, "docs");
  assert_int_equal(json_array_size(docs), 100);
  json_array_foreach(docs, i, doc) {
    src = json_object_get(doc, "_source");
    ev = json_object_get(src, "event");
    lab = json_object_get(src, "labels");
    assert_non_null(strstr(json_string_value(json_object_get(ev, "original")),
                           "\"bad_field\":1"));
    assert_string_equal(json_string_value(json_object_get(ev, "dataset")),
                        "sluice.deadletter");
    assert_string_equal(json_string_value(json_object_get(lab,
                                                          "original_index")),
                        INDEX);
    assert_string_equal(json_string_value(json_object_get(
                          json_object_get(src, "error"), "type")),
                        "document_parsing_exception");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
                       json_object_get(src, "http"), "response"),
                       "status_code")), 400);
  }
  json_decref(root);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_deadletter_refused(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = nrecs(500, 100);

  (void)state;
  dbl_start(&d, "--mapping-error-field", "bad_field");
  faults(&d, "{\"forbid_index\":\"logs-sluice.deadletter-*\"}");
  ctx_open(&c, conf(&d));
  submit_range(&c, 500, 100, 10, 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 450);
  assert_int_equal(metric(&c, ES "deadletters_total{dest=\"file\"}"),
                   50);
  assert_int_equal(metric(&c, ES "deadletters_total{dest=\"es\"}"), 0);
  assert_int_equal(count_lines(c.dir, NULL), 50);
  assert_int_equal(count_lines(c.dir, "\"deadletter_status\":403"), 50);
  assert_int_equal(count_lines(c.dir, "bad_field"), 50);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_bad_lines(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = 1;
  struct sl_buf b;
  json_t *root, *doc;
  size_t len;
  char *p;

  (void)state;
  dbl_start(&d, NULL, NULL);
  ctx_open(&c, conf(&d));
  /* 99 good events with a line in the middle that is not JSON (a foreign
   * or damaged record): it still gets an action line (default target, id
   * hashed from its bytes), ES refuses that item alone, and it becomes a
   * dead letter; the rest is indexed. */
  sl_buf_init(&b, 0);
  p = payload(0, 50, 0, 0, &len);
  assert_int_equal(sl_buf_append(&b, p, len), 0);
  free(p);
  assert_int_equal(sl_buf_append_str(&b, "{\"message\":\"orphan\"\n"), 0);
  p = payload(50, 49, 0, 0, &len);
  assert_int_equal(sl_buf_append(&b, p, len), 0);
  free(p);
  p = sl_buf_take(&b, &len);
  assert_int_equal(submit(c.ix, 1, p, len, 100, on_done, &c), 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 99);
  assert_int_equal(es_count(&d, DL_INDEX, NULL), 1);
  root = http_json(&d, "GET", "/_double/docs?index=" DL_INDEX, NULL, NULL);
  doc = json_array_get(json_object_get(root, "docs"), 0);
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(
      json_object_get(doc, "_source"), "event"), "original")), "orphan"));
  assert_string_equal(json_string_value(json_object_get(json_object_get(
      json_object_get(doc, "_source"), "labels"), "original_index")),
      "logs-generic-default");
  json_decref(root);
  assert_int_equal(metric(&c, ES "deadletters_total{dest=\"es\"}"),
                   1);
  ctx_close(&c);
  dbl_stop(&d);
}

/* Payload-free hook: counts payloads given back, checks their cap. */
struct freed {
  size_t n, bad_cap;
};

static void
on_payload_free(void *arg, char *p, size_t cap)
{
  struct freed *f = arg;

  f->n++;
  f->bad_cap += cap != 4096;
  free(p);
}

/* A payload in a 4096-byte buffer (cap != len, as the spool hands out). */
static char *
payload_4k(int first, int n, size_t *len)
{
  char *p = payload(first, n, 0, 0, len), *q;

  assert_true(*len <= 4096);
  q = realloc(p, 4096);
  assert_non_null(q);
  return q;
}

/* Finished records go back through the payload hook (with the cap they
 * came with) and the records themselves to a spare list of at most 8;
 * one with more items than a spare may keep is freed instead. */
static void
test_records_recycled_bounded(void **state)
{
  struct dbl d;
  struct ctx c;
  struct freed fr = { 0, 0 };
  uint64_t want = 20;
  size_t len;
  char *p;
  int i;

  (void)state;
  dbl_start(&d, NULL, NULL);
  ctx_open(&c, conf(&d));
  sl_indexer_set_payload_free(c.ix, on_payload_free, &fr);
  for (i = 0; i < 20; i++) {
    struct sl_spool_rec r = { .id = (uint64_t)i + 1, .nevents = 10,
                              .version = 2, .cap = 4096 };

    r.data = payload_4k(i * 10, 10, &len);
    r.len = len;
    assert_int_equal(sl_indexer_submit(c.ix, &r, on_done, &c), 0);
  }
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(fr.n, 20);
  assert_int_equal(fr.bad_cap, 0);
  assert_int_equal(sl_indexer__spare_recs(c.ix), 8);
  ctx_close(&c);

  /* Over the item bound: not kept. */
  ctx_open(&c, conf(&d));
  want = 1;
  p = payload(0, 16385, 0, 0, &len);
  assert_int_equal(submit(c.ix, 1, p, len, 16385, on_done, &c), 0);
  assert_true(run_until(&c, p_recs, &want, 60000));
  assert_int_equal(sl_indexer__spare_recs(c.ix), 0);
  want = 2;
  p = payload(20000, 10, 0, 0, &len);
  assert_int_equal(submit(c.ix, 2, p, len, 10, on_done, &c), 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(sl_indexer__spare_recs(c.ix), 1);
  ctx_close(&c);
  dbl_stop(&d);
}

/* Regression: a format-1 record (older sluice) that ends in an action
 * line without its event used to go to the dead-letter file; after the
 * switch to format 2 the conversion dropped that line silently. It is
 * dead-lettered again (missing_source_line), the pair before it indexed,
 * and the record completes. */
static void
test_v1_orphan_action_dead_lettered(void **state)
{
  struct dbl d;
  struct ctx c;
  struct sl_spool_rec r = { .id = 7, .nevents = 2, .version = 1 };
  uint64_t want = 1;
  struct sl_buf b;
  size_t len;
  char *p;

  (void)state;
  dbl_start(&d, NULL, NULL);
  ctx_open(&c, conf(&d));
  sl_buf_init(&b, 0);
  p = payload(0, 1, 0, 0, &len);
  assert_int_equal(sl_buf_append_str(&b, "{\"create\":{\"_index\":\""
                                     INDEX "\",\"_id\":\"ev-00000000\"}}\n"),
                   0);
  assert_int_equal(sl_buf_append(&b, p, len), 0);
  free(p);
  assert_int_equal(sl_buf_append_str(&b, "{\"create\":{\"_index\":\""
                                     INDEX "\",\"_id\":\"lonely\"}}\n"), 0);
  r.data = sl_buf_take(&b, &r.len);
  r.cap = r.len;
  assert_int_equal(sl_indexer_submit(c.ix, &r, on_done, &c), 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 1);
  assert_int_equal(count_lines(c.dir, "missing_source_line"), 1);
  assert_int_equal(count_lines(c.dir, "lonely"), 1);
  assert_int_equal(metric(&c, ES "deadletters_total{dest=\"file\"}"),
                   1);
  ctx_close(&c);
  dbl_stop(&d);
}

/* Regression: the collector offers a record again after SL_ENOMEM (it
 * used to refuse it until a restart), so sl_indexer_submit must leave
 * the bytes as they were: a format-1 record was converted in place and
 * then could not be read as format 1 again. The source lines of the
 * pairs are read where they are. */
static void
test_v1_submit_leaves_payload_intact(void **state)
{
  struct dbl d;
  struct ctx c;
  struct sl_spool_rec r = { .id = 9, .nevents = 2, .version = 1 };
  uint64_t want = 1;
  struct sl_buf b;
  size_t len, i;
  char *p, *copy;

  (void)state;
  dbl_start(&d, NULL, NULL);
  ctx_open(&c, conf(&d));
  sl_buf_init(&b, 0);
  for (i = 0; i < 2; i++) {
    assert_int_equal(sl_buf_printf(&b, "{\"create\":{\"_index\":\""
                                   INDEX "\",\"_id\":\"ev-%08zu\"}}\n",
                                   i), 0);
    p = payload(i, 1, 0, 0, &len);
    assert_int_equal(sl_buf_append(&b, p, len), 0);
    free(p);
  }
  r.data = sl_buf_take(&b, &r.len);
  r.cap = r.len;
  copy = malloc(r.len);
  assert_non_null(copy);
  memcpy(copy, r.data, r.len);
  assert_int_equal(sl_indexer_submit(c.ix, &r, on_done, &c), 0);
  /* Taken, not sent yet: the loop has not run. */
  assert_memory_equal(r.data, copy, r.len);
  free(copy);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 2);
  ctx_close(&c);
  dbl_stop(&d);
}

/* Records are routed when they are sent, not when they were spooled: the
 * same payload goes to the daily index when index_mode says daily. */
static void
test_route_at_send(void **state)
{
  struct dbl d;
  struct ctx c;
  uint64_t want = 1;
  json_t *es;
  size_t len;
  char *p;

  (void)state;
  dbl_start(&d, NULL, NULL);
  es = conf(&d);
  json_object_set_new(es, "index_mode", json_string("daily"));
  ctx_open(&c, es);
  p = payload(0, 100, 0, 0, &len);
  assert_int_equal(submit(c.ix, 1, p, len, 100, on_done, &c), 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, "sluice-test-2026.11.25", NULL), 100);
  assert_int_equal(es_count(&d, INDEX, NULL), -1); /* never created */
  ctx_close(&c);
  dbl_stop(&d);
}

static int
p_not_ready(struct ctx *c, void *arg)
{
  (void)arg;
  return !sl_indexer_ready(c->ix);
}

/* A member of the indexer's /debug/state, as an integer (-1: absent). */
static json_int_t
state_int(struct ctx *c, const char *key)
{
  json_t *st = sl_indexer_state(c->ix);
  json_t *v;
  json_int_t n;

  assert_non_null(st);
  v = json_object_get(st, key);
  n = json_is_boolean(v) ? json_is_true(v) : json_is_integer(v)
      ? json_integer_value(v) : -1;
  json_decref(st);
  return n;
}

static int
p_cluster(struct ctx *c, void *arg)
{
  json_t *st = sl_indexer_state(c->ix);
  const char *s = json_string_value(json_object_get(
      json_object_get(st, "cluster"), "status"));
  int ok = s && strcmp(s, arg) == 0;

  json_decref(st);
  return ok;
}

/* With no traffic at all, readiness follows Elasticsearch: the idle probe
 * (GET / every 2 s) notices it going away and coming back, and
 * sluice_collector_es_up says whether the last request got an answer. */
static void
test_idle_probe_follows_es(void **state)
{
  struct dbl d;
  struct ctx c;
  char port[16];
  uint64_t t0;

  (void)state;
  dbl_start(&d, "--health", "yellow");
  ctx_open(&c, conf(&d));
  assert_true(run_until(&c, p_ready, NULL, 10000));
  assert_int_equal(metric(&c, ES "up"), 1);
  /* _cluster/health is asked at the first tick after setup. */
  assert_true(run_until(&c, p_cluster, "yellow", 5000));
  dbl_stop(&d);
  t0 = sl_time_mono_ms();
  assert_true(run_until(&c, p_not_ready, NULL, 5000));
  assert_true(sl_time_mono_ms() - t0 < 4000);
  assert_int_equal(metric(&c, ES "up"), 0);
  assert_int_equal(metric(&c, ES "not_ready{reason=\"connect\"}"), 1);
  assert_int_equal(state_int(&c, "reachable"), 0);
  assert_true(state_int(&c, "probe_failures") >= 1);
  /* Back on the same port: ready again without any request of ours. */
  snprintf(port, sizeof port, "%d", d.port);
  dbl_start(&d, "--port", port);
  assert_true(run_until(&c, p_ready, NULL, 6000));
  assert_int_equal(metric(&c, ES "up"), 1);
  assert_int_equal(state_int(&c, "reachable"), 1);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_auth(void **state)
{
  struct dbl d;
  struct ctx c;
  json_t *es;
  uint64_t want = nrecs(1000, 250);

  (void)state;
  dbl_start(&d, "--user", "elastic:secret");
  /* Wrong password: never ready, reason auth, nothing sent. */
  es = conf(&d);
  json_object_set_new(es, "username", json_string("elastic"));
  json_object_set_new(es, "password", json_string("wrong"));
  ctx_open(&c, es);
  submit_range(&c, 1000, 250, 0, 0);
  assert_true(run_until(&c, p_metric,
                        ES "not_ready{reason=\"auth\"}", 10000));
  assert_false(sl_indexer_ready(c.ix));
  ctx_close(&c);
  assert_int_equal(c.recs_done, 0);

  /* Right credentials, but ES answers 401 for a while (credentials being
   * rotated): not ready, then ready once the fault is gone. */
  faults(&d, "{\"fail_status\":401,\"fail_count\":100000,"
             "\"fail_path\":\"\"}");
  es = conf(&d);
  json_object_set_new(es, "username", json_string("elastic"));
  json_object_set_new(es, "password", json_string("secret"));
  ctx_open(&c, es);
  submit_range(&c, 1000, 250, 0, 0);
  assert_true(run_until(&c, p_metric,
                        ES "not_ready{reason=\"auth\"}", 10000));
  assert_false(sl_indexer_ready(c.ix));
  {
    struct sl_buf b;

    sl_buf_init(&b, 0);
    assert_int_equal(http(&d, "DELETE", "/_double/faults", NULL, NULL, &b),
                     200);
    sl_buf_free(&b);
  }
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_true(sl_indexer_ready(c.ix));
  assert_int_equal(es_count(&d, INDEX, "elastic:secret"), 1000);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_api_key(void **state)
{
  struct dbl d;
  struct ctx c;
  json_t *es;
  uint64_t want = 1;

  (void)state;
  dbl_start(&d, "--api-key", "kid:ksecret");
  es = conf(&d);
  json_object_set_new(es, "api_key", json_string("kid:ksecret"));
  ctx_open(&c, es);
  submit_range(&c, 100, 100, 0, 0);
  assert_true(run_until(&c, p_recs, &want, 20000));
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_not_es(void **state)
{
  struct dbl d;
  struct ctx c;

  (void)state;
  fake_start(&d);
  ctx_open(&c, conf(&d));
  submit_range(&c, 100, 100, 0, 0);
  assert_true(run_until(&c, p_metric,
                        ES "not_ready{reason=\"not_elasticsearch\"}",
                        10000));
  assert_false(sl_indexer_ready(c.ix));
  assert_int_equal(sl_indexer_pending(c.ix), 100);
  ctx_close(&c);
  assert_int_equal(c.recs_done, 0);
  dbl_stop(&d);
}

static void
test_failover_and_backpressure(void **state)
{
  struct dbl d;
  struct ctx c;
  json_t *es;
  uint64_t want = nrecs(3000, 250);

  (void)state;
  dbl_start(&d, NULL, NULL);
  es = conf(&d);
  /* First host refuses connections: requests fail over to the second. */
  json_object_set_new(es, "hosts", json_pack("[s, s]", "http://127.0.0.1:1",
                                             d.url));
  json_object_set_new(es, "max_pending_events", json_integer(500));
  ctx_open(&c, es);
  submit_range(&c, 3000, 250, 0, 0);
  assert_true(c.eagain > 0);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 3000);
  assert_true(metric(&c, ES "requests_total{status=\"error\"}") > 0);
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_timeout(void **state)
{
  struct dbl d;
  struct ctx c;
  json_t *es;
  struct sl_buf b;
  uint64_t want = nrecs(1000, 250);

  (void)state;
  dbl_start(&d, NULL, NULL);
  /* Every answer comes after our timeout: not ready (connect), nothing
   * lost; once ES is fast again everything is indexed exactly once. */
  faults(&d, "{\"delay_ms\":700}");
  es = conf(&d);
  json_object_set_new(es, "timeout", json_integer(250));
  ctx_open(&c, es);
  submit_range(&c, 1000, 250, 0, 0);
  assert_true(run_until(&c, p_metric,
                        ES "not_ready{reason=\"connect\"}", 10000));
  assert_int_equal(c.recs_done, 0);
  sl_buf_init(&b, 0);
  assert_int_equal(http(&d, "DELETE", "/_double/faults", NULL, NULL, &b),
                   200);
  sl_buf_free(&b);
  assert_true(run_until(&c, p_recs, &want, 30000));
  assert_int_equal(es_count(&d, INDEX, NULL), 1000);
  assert_true(sl_indexer_ready(c.ix));
  ctx_close(&c);
  dbl_stop(&d);
}

static void
test_close_with_pending(void **state)
{
  struct dbl d;
  struct ctx c;

  (void)state;
  dbl_start(&d, NULL, NULL);
  faults(&d, "{\"fail_status\":503,\"fail_count\":100000}");
  ctx_open(&c, conf(&d));
  submit_range(&c, 500, 100, 0, 0);
  assert_true(run_until(&c, p_metric,
                        ES "not_ready{reason=\"unavailable\"}",
                        10000));
  ctx_close(&c); /* records freed, callbacks not called, no leaks */
  assert_int_equal(c.recs_done, 0);
  dbl_stop(&d);
}

/* Regression: a clean close used to drop queued items, so every record
 * that was half sent was indexed again after the restart (409s). Queued
 * items now go out before the close completes. */
static void
test_close_drains_queued(void **state)
{
  struct dbl d;
  struct ctx c;
  json_t *es;

  (void)state;
  dbl_start(&d, NULL, NULL);
  es = conf(&d);
  /* Nothing would leave before the close on its own. */
  json_object_set_new(es, "flush_interval", json_integer(600000));
  json_object_set_new(es, "bulk_max_events", json_integer(100000));
  ctx_open(&c, es);
  assert_true(run_until(&c, p_ready, NULL, 10000));
  submit_range(&c, 3000, 250, 0, 0);
  ctx_close(&c);
  assert_int_equal(c.recs_done, nrecs(3000, 250));
  assert_int_equal(es_count(&d, INDEX, NULL), 3000);
  dbl_stop(&d);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_index_and_resubmit, teardown),
    cmocka_unit_test_teardown(test_setup_idempotent, teardown),
    cmocka_unit_test_teardown(test_item_429, teardown),
    cmocka_unit_test_teardown(test_whole_500, teardown),
    cmocka_unit_test_teardown(test_drop_after_apply, teardown),
    cmocka_unit_test_teardown(test_413_split, teardown),
    cmocka_unit_test_teardown(test_mapping_deadletter, teardown),
    cmocka_unit_test_teardown(test_deadletter_refused, teardown),
    cmocka_unit_test_teardown(test_bad_lines, teardown),
    cmocka_unit_test_teardown(test_route_at_send, teardown),
    cmocka_unit_test_teardown(test_auth, teardown),
    cmocka_unit_test_teardown(test_idle_probe_follows_es, teardown),
    cmocka_unit_test_teardown(test_api_key, teardown),
    cmocka_unit_test_teardown(test_not_es, teardown),
    cmocka_unit_test_teardown(test_failover_and_backpressure, teardown),
    cmocka_unit_test_teardown(test_timeout, teardown),
    cmocka_unit_test_teardown(test_close_with_pending, teardown),
    cmocka_unit_test_teardown(test_close_drains_queued, teardown),
    cmocka_unit_test_teardown(test_records_recycled_bounded, teardown),
    cmocka_unit_test_teardown(test_v1_orphan_action_dead_lettered, teardown),
    cmocka_unit_test_teardown(test_v1_submit_leaves_payload_intact,
                              teardown),
  };
  int rc;

  signal(SIGPIPE, SIG_IGN);
  sl_log_set_level(getenv("SL_TEST_VERBOSE") ? SL_LOG_DEBUG : SL_LOG_INFO);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
