/* sink.c - counting receiver for the benchmarks.
 *
 *   bench_sink --mode lumberjack|lines --expect N [--verify]
 *              [--port-file F] [--port P]
 *
 * Listens on 127.0.0.1 (port 0 = ephemeral, written to --port-file), counts
 * events and exits 0 once N have arrived, printing
 * "events=N bytes=B seconds=S" (seconds since the first connection).
 * lumberjack: walks the frames itself: a W frame announces n events; a C
 * frame right after it is the whole window (how sluice and Beats send), so
 * it is skipped without inflating and the window is acked and counted; J
 * frames (level 0) are counted one by one. With --verify every C frame is
 * also inflated and decoded with proto/sl_lj (slower: the sink then
 * competes with the agent for CPU). lines: counts '\n' (json_lines). The
 * Python receiver of the tests is far too slow to measure a fast agent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_lj.h"
#include "sl_time.h"

struct conn {
  uv_tcp_t tcp;
  struct sl_lj_dec *dec;
  uint32_t window;
  struct sl_buf in;       /* bytes of an incomplete frame */
  char rbuf[256 * 1024];
};

static int lj_mode, verify;
static uint64_t expect, events, bytes;
static uint64_t t0_ms;
static uv_loop_t *loop;

static void
done_check(void)
{
  if (events >= expect) {
    printf("events=%llu bytes=%llu seconds=%.3f\n",
           (unsigned long long)events, (unsigned long long)bytes,
           (double)(sl_time_mono_ms() - t0_ms) / 1000.0);
    fflush(stdout);
    exit(0);
  }
}

static void
closed(uv_handle_t *h)
{
  struct conn *c = h->data;

  sl_lj_dec_free(c->dec);
  sl_buf_free(&c->in);
  free(c);
}

static void
ack_written(uv_write_t *w, int status)
{
  free(w);
}

static void
send_ack(struct conn *c, uint32_t seq)
{
  struct {
    uv_write_t w;
    char b[6];
  } *a = malloc(sizeof(*a));
  uv_buf_t buf;

  a->b[0] = '2';
  a->b[1] = 'A';
  a->b[2] = (char)(seq >> 24);
  a->b[3] = (char)(seq >> 16);
  a->b[4] = (char)(seq >> 8);
  a->b[5] = (char)seq;
  buf = uv_buf_init(a->b, 6);
  if (uv_write(&a->w, (uv_stream_t *)&c->tcp, &buf, 1, ack_written))
    free(a);
}

static int
on_frame(void *arg, const struct sl_lj_frame *f)
{
  struct conn *c = arg;

  if (f->type == SL_LJ_WINDOW) {
    c->window = f->seq;
  } else if (f->type == SL_LJ_JSON || f->type == SL_LJ_DATA) {
    events++;
    if (f->seq == c->window)
      send_ack(c, f->seq);
  }
  return 0;
}

static uint32_t
be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* Consume whole frames from p; returns bytes used, or -1 on garbage. */
static long
walk(struct conn *c, const unsigned char *p, size_t n)
{
  size_t pos = 0, need;

  while (n - pos >= 2) {
    const unsigned char *f = p + pos;
    if (f[0] != '2')
      return -1;
    if (f[1] == 'W') {
      if (n - pos < 6)
        break;
      c->window = be32(f + 2);
      pos += 6;
    } else if (f[1] == 'C') {
      if (n - pos < 6)
        break;
      need = 6 + (size_t)be32(f + 2);
      if (n - pos < need)
        break;
      events += c->window;
      send_ack(c, c->window);
      pos += need;
    } else if (f[1] == 'J') {
      if (n - pos < 10)
        break;
      need = 10 + (size_t)be32(f + 6);
      if (n - pos < need)
        break;
      events++;
      if (be32(f + 2) == c->window)
        send_ack(c, c->window);
      pos += need;
    } else {
      return -1;
    }
  }
  return (long)pos;
}

static int
feed_fast(struct conn *c, const char *p, size_t n)
{
  long used;

  if (c->in.len == 0) {
    used = walk(c, (const unsigned char *)p, n);
    if (used < 0)
      return -1;
    p += used;
    n -= (size_t)used;
    return sl_buf_append(&c->in, p, n) ? -1 : 0;
  }
  if (sl_buf_append(&c->in, p, n))
    return -1;
  used = walk(c, (const unsigned char *)c->in.p, c->in.len);
  if (used < 0)
    return -1;
  sl_buf_consume(&c->in, (size_t)used);
  return 0;
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct conn *c = h->data;

  buf->base = c->rbuf;
  buf->len = sizeof(c->rbuf);
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct conn *c = s->data;
  char err[128];

  if (n < 0) {
    uv_close((uv_handle_t *)s, closed);
    return;
  }
  bytes += (uint64_t)n;
  if (lj_mode && !verify) {
    if (feed_fast(c, buf->base, (size_t)n) < 0) {
      fprintf(stderr, "sink: bad frame\n");
      uv_close((uv_handle_t *)s, closed);
      return;
    }
  } else if (lj_mode) {
    if (sl_lj_dec_feed(c->dec, buf->base, (size_t)n, on_frame, c, err,
                       sizeof(err)) < 0) {
      fprintf(stderr, "sink: %s\n", err);
      uv_close((uv_handle_t *)s, closed);
      return;
    }
  } else {
    const char *p = buf->base, *end = buf->base + n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
      events++;
      p++;
    }
  }
  done_check();
}

static void
on_conn(uv_stream_t *srv, int status)
{
  struct conn *c;
  struct sl_lj_limits lim;

  if (status < 0)
    return;
  c = calloc(1, sizeof(*c));
  sl_buf_init(&c->in, 256u << 20);
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(srv, (uv_stream_t *)&c->tcp)) {
    uv_close((uv_handle_t *)&c->tcp, closed);
    return;
  }
  sl_lj_limits_default(&lim);
  c->dec = sl_lj_dec_new(&lim);
  if (t0_ms == 0)
    t0_ms = sl_time_mono_ms();
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int
main(int argc, char **argv)
{
  uv_tcp_t srv;
  struct sockaddr_in sa;
  struct sockaddr_storage ss;
  int i, port = 0, len = sizeof(ss);
  const char *port_file = NULL;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
      lj_mode = strcmp(argv[++i], "lumberjack") == 0;
    else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
      expect = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
      port_file = argv[++i];
    else if (strcmp(argv[i], "--verify") == 0)
      verify = 1;
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s --mode lumberjack|lines --expect N "
              "[--verify] [--port P] [--port-file F]\n", argv[0]);
      return 2;
    }
  }
  loop = uv_default_loop();
  uv_tcp_init(loop, &srv);
  uv_ip4_addr("127.0.0.1", port, &sa);
  if (uv_tcp_bind(&srv, (struct sockaddr *)&sa, 0) ||
      uv_listen((uv_stream_t *)&srv, 64, on_conn)) {
    fprintf(stderr, "sink: cannot listen\n");
    return 1;
  }
  uv_tcp_getsockname(&srv, (struct sockaddr *)&ss, &len);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (port_file) {
    FILE *f = fopen(port_file, "w");
    if (f == NULL)
      return 1;
    fprintf(f, "%d\n", port);
    fclose(f);
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
