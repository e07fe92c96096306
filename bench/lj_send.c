/* lj_send.c - fast Lumberjack v2 sender for the collector benchmark.
 *
 *   bench_lj_send --port P [--host 127.0.0.1] [--events N] [--conns K]
 *                 [--window W] [--level L] [--tag T]
 *
 * Every connection gets N/K events with a deterministic event.id
 * ("<tag>-<conn>-<i>") and a ~330-byte JSON body (varying numbers, a
 * random trace id: compresses about 3-4x, like real logs), pre-encodes all its
 * windows (W frame + one C frame at zlib level L, or plain J frames with
 * level 0) BEFORE the clock starts, then sends window after window and
 * waits for each window's final ack (keep-alive acks with a lower sequence
 * are skipped), like a Beats sender. Prints one JSON line:
 *   {"events":N,"seconds":S,"events_per_s":R,"wire_bytes":B}
 * The Python test peer tops out near 30k events/s; this one costs the
 * machine almost nothing while the collector works.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_lj.h"

struct job {
  pthread_t th;
  int id;
  uint64_t nevents;
  struct sl_buf *wins;      /* encoded windows */
  uint32_t *counts;         /* events per window */
  size_t nwins;
  uint64_t wire;
  int rc;
};

static int64_t
mono_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *host = "127.0.0.1";
static int port, level = 3, window = 2048;
static const char *tag = "b";

/* Deterministic per connection, so runs are repeatable. */
static uint64_t
xorshift(uint64_t *s)
{
  uint64_t x = *s;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static int
encode_job(struct job *j)
{
  uint64_t rng = 0x9E3779B97F4A7C15ULL + (uint64_t)j->id;
  struct sl_buf frames, ev;
  uint64_t i = 0;
  size_t w;
  int rc = 0;

  j->nwins = (size_t)((j->nevents + (uint64_t)window - 1) / (uint64_t)window);
  j->wins = calloc(j->nwins ? j->nwins : 1, sizeof(*j->wins));
  j->counts = calloc(j->nwins ? j->nwins : 1, sizeof(*j->counts));
  if (j->wins == NULL || j->counts == NULL)
    return SL_ENOMEM;
  sl_buf_init(&frames, 0);
  sl_buf_init(&ev, 0);
  for (w = 0; w < j->nwins && rc == 0; w++) {
    uint32_t n = 0, seq;

    sl_buf_reset(&frames);
    sl_buf_init(&j->wins[w], 0);
    for (seq = 1; seq <= (uint32_t)window && i < j->nevents; seq++, i++) {
      sl_buf_reset(&ev);
      uint64_t r1 = xorshift(&rng), r2 = xorshift(&rng);
      rc = sl_buf_printf(&ev,
                         "{\"@timestamp\":\"2026-11-25T12:%02u:%02u.%03uZ\","
                         "\"message\":\"GET /api/v1/items/%llu %u %u bytes "
                         "in %u ms\",\"log\":{\"level\":\"%s\"},"
                         "\"service\":{\"name\":\"bench\"},"
                         "\"host\":{\"name\":\"bench-host-%u\"},"
                         "\"trace\":{\"id\":\"%016llx%016llx\"},"
                         "\"event\":{\"id\":\"%s-%d-%llu\","
                         "\"dataset\":\"bench\"}}",
                         (unsigned)(i / 60000 % 60), (unsigned)(i / 1000 % 60),
                         (unsigned)(i % 1000), (unsigned long long)(r1 % 100000),
                         r2 % 7 ? 200u : 500u, (unsigned)(r2 >> 8) % 50000,
                         (unsigned)(r2 >> 24) % 2000,
                         r2 % 7 ? "info" : "error", (unsigned)(r1 >> 48) % 16,
                         (unsigned long long)r1, (unsigned long long)r2, tag,
                         j->id, (unsigned long long)i);
      if (rc == 0)
        rc = sl_lj_enc_json(&frames, seq, ev.p, ev.len);
      if (rc)
        break;
      n++;
    }
    j->counts[w] = n;
    if (rc == 0)
      rc = sl_lj_enc_window(&j->wins[w], n);
    if (rc == 0)
      rc = level > 0 ? sl_lj_enc_compressed(&j->wins[w], frames.p, frames.len,
                                            level)
                     : sl_buf_append(&j->wins[w], frames.p, frames.len);
  }
  sl_buf_free(&frames);
  sl_buf_free(&ev);
  return rc;
}

static int
write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Read acks until one >= want. */
static int
wait_ack(int fd, uint32_t want)
{
  unsigned char a[6];
  size_t got = 0;

  for (;;) {
    ssize_t k = read(fd, a + got, sizeof(a) - got);
    if (k == 0)
      return SL_EPIPE;
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    got += (size_t)k;
    if (got < sizeof(a))
      continue;
    got = 0;
    if (a[1] != 'A')
      return SL_EPROTO;
    if (((uint32_t)a[2] << 24 | (uint32_t)a[3] << 16 | (uint32_t)a[4] << 8 |
         a[5]) >= want)
      return 0;
  }
}

static void *
run_job(void *arg)
{
  struct job *j = arg;
  struct sockaddr_in sa;
  int fd, one = 1;
  size_t w;

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &sa.sin_addr);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    j->rc = -errno;
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  for (w = 0; w < j->nwins; w++) {
    j->rc = write_all(fd, j->wins[w].p, j->wins[w].len);
    if (j->rc == 0)
      j->rc = wait_ack(fd, j->counts[w]);
    if (j->rc)
      break;
    j->wire += j->wins[w].len;
  }
  close(fd);
  return NULL;
}

int
main(int argc, char **argv)
{
  uint64_t events = 1000000, total_wire = 0;
  int conns = 4, i, rc = 0;
  struct job *jobs;
  int64_t t0, t1;
  size_t w;

  for (i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--events") == 0)
      events = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--conns") == 0)
      conns = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--window") == 0)
      window = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--level") == 0)
      level = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--tag") == 0)
      tag = argv[i + 1];
    else
      break;
  }
  if (i < argc || port <= 0 || conns < 1 || window < 1 || level < 0 ||
      level > 9) {
    fprintf(stderr, "usage: %s --port P [--host H] [--events N] [--conns K] "
            "[--window W] [--level 0-9] [--tag T]\n", argv[0]);
    return 2;
  }
  jobs = calloc((size_t)conns, sizeof(*jobs));
  if (jobs == NULL)
    return 1;
  for (i = 0; i < conns; i++) {
    jobs[i].id = i;
    jobs[i].nevents = events / (uint64_t)conns +
                      ((uint64_t)i < events % (uint64_t)conns);
    rc = encode_job(&jobs[i]);
    if (rc) {
      fprintf(stderr, "encode: %s\n", sl_strerror(rc));
      return 1;
    }
  }
  t0 = mono_ns();
  for (i = 0; i < conns; i++)
    if (pthread_create(&jobs[i].th, NULL, run_job, &jobs[i]) != 0)
      return 1;
  for (i = 0; i < conns; i++) {
    pthread_join(jobs[i].th, NULL);
    if (jobs[i].rc && rc == 0)
      rc = jobs[i].rc;
    total_wire += jobs[i].wire;
  }
  t1 = mono_ns();
  printf("{\"events\":%llu,\"seconds\":%.3f,\"events_per_s\":%.0f,"
         "\"wire_bytes\":%llu,\"error\":\"%s\"}\n",
         (unsigned long long)events, (double)(t1 - t0) / 1e9,
         (double)events / ((double)(t1 - t0) / 1e9),
         (unsigned long long)total_wire, rc ? sl_strerror(rc) : "");
  for (i = 0; i < conns; i++) {
    for (w = 0; w < jobs[i].nwins; w++)
      sl_buf_free(&jobs[i].wins[w]);
    free(jobs[i].wins);
    free(jobs[i].counts);
  }
  free(jobs);
  return rc ? 1 : 0;
}
