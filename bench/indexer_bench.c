/* indexer_bench.c - the collector's indexer alone, into the ES double.
 *
 *   build/bench/bench_indexer [--events N] [--per K] [--bulk-max M]
 *                             [--pad B]
 *
 * Starts tests/esdouble/esdouble.py --discard-source (found through the
 * source dir compiled in), drives collector/indexer on a uv loop with no
 * spool and no network input: N events (default 100000) submitted as
 * records of K events (1000), `_bulk` requests of up to M events (5000),
 * B bytes of message padding per event (100). Prints one line:
 *
 *   events=N ms=T events_per_s=R client_cpu_ms=C raw_bytes=X sent_bytes=Y
 *   max_inflight=I connections=K
 *
 * and exits 1 when not every record finished, fewer than N items came
 * back 201, or requests did not overlap on kept-alive connections (at
 * least 2 in flight at once, at most max_inflight + 2 connections).
 *
 * The double is Python and is the bottleneck, so events/s says little;
 * client_cpu_ms (this process: payload generation, gzip, curl, response
 * parsing) is what the indexer itself costs. This was the 100k-event
 * throughput case of tests/unit/collector/test_indexer.c: a measurement,
 * not a unit test, so it lives here and does not slow `meson test`.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "indexer.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_time.h"

#ifndef SL_SRCDIR
#define SL_SRCDIR "."
#endif

struct run {
  uv_loop_t loop;
  uv_timer_t tick;      /* keeps UV_RUN_ONCE from blocking forever */
  struct sl_indexer *ix;
  uint64_t done;        /* records finished (done callbacks) */
  int64_t max_inflight;
  int closed;
};

static void
die(const char *what)
{
  fprintf(stderr, "bench_indexer: %s\n", what);
  exit(1);
}

/* Start the double; returns its pid and port. Its stdin is a pipe we hold:
 * when we exit, it sees EOF and exits too (--watch-stdin). */
static pid_t
double_start(int *port, int *keep_fd)
{
  int out[2], in[2];
  char line[128];
  size_t got = 0;
  uint64_t deadline = sl_time_mono_ms() + 15000;
  pid_t pid;

  if (pipe(out) != 0 || pipe2(in, O_CLOEXEC) != 0)
    die("pipe");
  pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(in[0], 0);
    close(out[0]);
    execl("/usr/bin/python3", "python3",
          SL_SRCDIR "/tests/esdouble/esdouble.py", "--port", "0",
          "--watch-stdin", "--discard-source", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  close(in[0]);
  *keep_fd = in[1];
  while (got < sizeof(line) - 1 && !memchr(line, '\n', got) &&
         sl_time_mono_ms() < deadline) {
    struct pollfd p = { out[0], POLLIN, 0 };
    ssize_t n;

    if (poll(&p, 1, 100) <= 0)
      continue;
    n = read(out[0], line + got, sizeof(line) - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  line[got] = '\0';
  close(out[0]);
  if (sscanf(line, "READY %d", port) != 1)
    die("the ES double did not start");
  return pid;
}

static void
on_tick(uv_timer_t *t)
{
  (void)t;
}

static void
on_done(void *arg, uint64_t id)
{
  (void)id;
  ((struct run *)arg)->done++;
}

static void
on_closed(void *arg)
{
  ((struct run *)arg)->closed = 1;
}

/* One sample of the indexer's metrics text, -1 when absent. */
static int64_t
metric(const struct run *r, const char *name)
{
  struct sl_buf b;
  char key[160];
  const char *p;
  int64_t v = -1;

  sl_buf_init(&b, 0);
  if (sl_indexer_metrics(r->ix, &b) != 0)
    die("metrics");
  snprintf(key, sizeof(key), "\n%s ", name);
  p = b.p ? strstr(b.p, key) : NULL;
  if (p)
    v = strtoll(p + strlen(key), NULL, 10);
  sl_buf_free(&b);
  return v;
}

static void
step(struct run *r)
{
  int64_t inflight;

  uv_run(&r->loop, UV_RUN_ONCE);
  inflight = metric(r, "sluice_collector_es_inflight_requests");
  if (inflight > r->max_inflight)
    r->max_inflight = inflight;
}

/* A spool-format record (format 2: NDJSON events, bulk.h) of events
 * first..first+n-1; the indexer makes the action lines. */
static char *
record(int first, int n, const char *pad, size_t *len)
{
  struct sl_buf b;
  int i;

  sl_buf_init(&b, 0);
  for (i = first; i < first + n; i++) {
    if (sl_buf_printf(&b, "{\"@timestamp\":\"2026-11-25T12:00:00.000Z\","
                      "\"message\":\"event %d %s\",\"event\":{\"dataset\":"
                      "\"bench\",\"id\":\"ev-%08d\"},\"data_stream\":{"
                      "\"type\":\"logs\",\"dataset\":\"bench\","
                      "\"namespace\":\"default\"}}\n", i, pad, i) != 0)
      die("payload");
  }
  return sl_buf_take(&b, len);
}

static uint64_t
cpu_ms(void)
{
  struct rusage ru;

  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

int
main(int argc, char **argv)
{
  int total = 100000, per = 1000, bulk_max = 5000, padlen = 100;
  int port, keep_fd, i, first, rc, st, bad = 0;
  char url[64], err[256], dir[] = "/tmp/sl-ixbench-XXXXXX", *pad;
  uint64_t want, t0, c0, ms, cpu, deadline;
  struct run r;
  struct sl_es_conf conf;
  json_t *es;
  pid_t pid;

  for (i = 1; i + 1 < argc; i += 2) {
    int v = atoi(argv[i + 1]);

    if (strcmp(argv[i], "--events") == 0)
      total = v;
    else if (strcmp(argv[i], "--per") == 0)
      per = v;
    else if (strcmp(argv[i], "--bulk-max") == 0)
      bulk_max = v;
    else if (strcmp(argv[i], "--pad") == 0)
      padlen = v;
    else
      die("usage: bench_indexer [--events N] [--per K] [--bulk-max M] "
          "[--pad B]");
  }
  if (total <= 0 || per <= 0 || bulk_max <= 0 || padlen < 0)
    die("counts must be positive");
  signal(SIGPIPE, SIG_IGN);
  sl_log_set_level(SL_LOG_WARN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pid = double_start(&port, &keep_fd);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
  if (!mkdtemp(dir))
    die("mkdtemp");
  memset(&r, 0, sizeof(r));
  if (uv_loop_init(&r.loop) != 0)
    die("uv_loop_init");
  uv_timer_init(&r.loop, &r.tick);
  uv_timer_start(&r.tick, on_tick, 5, 5);
  es = json_pack("{s:[s], s:i, s:i, s:i, s:i, s:{s:i, s:i}}", "hosts", url,
                 "flush_interval", 20, "bulk_max_events", bulk_max,
                 "timeout", 10000, "max_inflight", 4, "retry",
                 "backoff_base", 10, "backoff_max", 100);
  if (sl_es_conf_fill(es, dir, &conf, err, sizeof(err)) != 0 ||
      sl_indexer_new(&r.loop, &conf, &r.ix, err, sizeof(err)) != 0)
    die(err);
  sl_es_conf_free(&conf);
  json_decref(es);
  if (sl_indexer_start(r.ix) != 0)
    die("sl_indexer_start");
  deadline = sl_time_mono_ms() + 10000;
  while (!sl_indexer_ready(r.ix) && sl_time_mono_ms() < deadline)
    uv_run(&r.loop, UV_RUN_ONCE);
  if (!sl_indexer_ready(r.ix))
    die("the indexer did not become ready");

  pad = malloc((size_t)padlen + 1);
  if (pad == NULL)
    die("malloc");
  memset(pad, 'x', (size_t)padlen);
  pad[padlen] = '\0';
  want = (uint64_t)((total + per - 1) / per);
  c0 = cpu_ms();
  t0 = sl_time_mono_ms();
  deadline = t0 + 300000;
  for (first = 0; first < total; first += per) {
    int n = total - first < per ? total - first : per;
    size_t len;
    char *p = record(first, n, pad, &len);
    struct sl_spool_rec rec = { .id = (uint64_t)first, .data = p,
                                .len = len, .cap = len,
                                .nevents = (uint32_t)n, .version = 2 };

    /* SL_EAGAIN: the indexer is full; let it send. */
    while ((rc = sl_indexer_submit(r.ix, &rec, on_done, &r)) == SL_EAGAIN &&
           sl_time_mono_ms() < deadline)
      step(&r);
    if (rc != 0)
      die("sl_indexer_submit");
  }
  while (r.done < want && sl_time_mono_ms() < deadline)
    step(&r);
  ms = sl_time_mono_ms() - t0;
  cpu = cpu_ms() - c0;
  free(pad);

  printf("events=%d ms=%llu events_per_s=%.0f client_cpu_ms=%llu "
         "raw_bytes=%lld sent_bytes=%lld max_inflight=%lld "
         "connections=%lld\n", total, (unsigned long long)ms,
         total * 1000.0 / (double)(ms ? ms : 1), (unsigned long long)cpu,
         (long long)metric(&r, "sluice_collector_es_request_bytes_total"),
         (long long)metric(&r, "sluice_collector_es_sent_bytes_total"),
         (long long)r.max_inflight,
         (long long)metric(&r, "sluice_collector_es_connections_total"));
  if (r.done != want)
    bad = fprintf(stderr, "bench_indexer: %llu of %llu records done\n",
                  (unsigned long long)r.done, (unsigned long long)want);
  if (metric(&r, "sluice_collector_es_items_total{status=\"201\"}") < total)
    bad = fprintf(stderr, "bench_indexer: not every event indexed\n");
  if (r.max_inflight < 2 ||
      metric(&r, "sluice_collector_es_connections_total") > 6)
    bad = fprintf(stderr, "bench_indexer: requests did not overlap on "
                  "kept-alive connections\n");

  sl_indexer_close(r.ix, 5000, on_closed, &r);
  deadline = sl_time_mono_ms() + 10000;
  while (!r.closed && sl_time_mono_ms() < deadline)
    uv_run(&r.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&r.tick, NULL);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  uv_loop_close(&r.loop);
  /* EOF on its stdin ends the double cleanly (a SIGTERM racing its
   * stdin watcher makes Python abort noisily at shutdown). */
  close(keep_fd);
  deadline = sl_time_mono_ms() + 5000;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (sl_time_mono_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      break;
    }
    usleep(20000);
  }
  curl_global_cleanup();
  /* The indexer's data dir holds dead letters at most; none expected. */
  if (rmdir(dir) != 0)
    fprintf(stderr, "bench_indexer: %s left behind (not empty)\n", dir);
  return bad ? 1 : 0;
}
