/* out_tcp.c - plain TCP output, format json_lines (NDJSON).
 *
 * One connection at a time to the first reachable host of `hosts`; a
 * failure moves on to the next host (failover) after a backoff delay.
 *
 * Acknowledgement is WEAKER than Lumberjack and this is deliberate, there
 * being no ack in json_lines: a batch counts as delivered when its uv_write
 * completed, i.e. the bytes reached the kernel's socket buffer. Events the
 * receiver had not processed when it crashed can be lost. Batches whose
 * write did not complete when the connection broke are resent (possibly
 * duplicating a batch that was partly written).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"
#include "sl_backoff.h"
#include "sl_log.h"
#include "sl_time.h"

#define TCP_RBUF 4096

enum conn_state {
  C_IDLE,        /* waiting for the reconnect timer */
  C_CONNECTING,  /* uv_tcp_connect in flight */
  C_UP,          /* writes may go out */
  C_CLOSING,     /* uv_close in flight */
};

struct tcp_out {
  struct sl_out base;
  uv_loop_t *loop;
  struct sl_out_cbs cbs;
  const char *hosts[SL_AGENT_MAX_HOSTS];
  int nhosts, cur;
  int max_inflight;
  uint64_t timeout_ms;
  enum conn_state state;
  uv_tcp_t tcp;
  int tcp_open;
  uv_connect_t creq;
  uv_timer_t timer;
  struct sl_backoff bo;
  struct sl_batchq sent;    /* writes in flight, oldest first */
  int ninflight;
  int closing, open_handles;
  void (*close_cb)(void *arg);
  void *close_arg;
  char rbuf[TCP_RBUF];
  struct sl_out_stats st;
  struct sl_out_last_err lerr;   /* /debug/state */
};

static void tcp_connect_next(struct tcp_out *o);
static void conn_fail(struct tcp_out *o, const char *why, int err);

static void
maybe_closed(struct tcp_out *o)
{
  if (o->closing && o->open_handles == 0) {
    void (*cb)(void *) = o->close_cb;
    void *arg = o->close_arg;
    free(o);
    if (cb)
      cb(arg);
  }
}

static void
handle_closed(uv_handle_t *h)
{
  struct tcp_out *o = h->data;

  o->open_handles--;
  maybe_closed(o);
}

static void
requeue_all(struct tcp_out *o)
{
  struct sl_batch *b;

  while ((b = sl_batchq_pop_last(&o->sent)) != NULL) {
    o->cbs.requeue(o->cbs.arg, b);
    o->st.resent++;
  }
  o->st.inflight -= (uint64_t)o->ninflight;
  o->ninflight = 0;
}

static void
timer_cb(uv_timer_t *t)
{
  struct tcp_out *o = t->data;

  if (o->state == C_IDLE)
    tcp_connect_next(o);
  else if (o->state == C_CONNECTING)
    conn_fail(o, "connect timed out", SL_ETIMEDOUT);
}

static void
tcp_closed(uv_handle_t *h)
{
  struct tcp_out *o = h->data;

  o->tcp_open = 0;
  requeue_all(o);
  o->open_handles--;
  if (o->closing) {
    maybe_closed(o);
    return;
  }
  o->state = C_IDLE;
  o->cur = (o->cur + 1) % o->nhosts;
  uv_timer_stop(&o->timer);
  uv_timer_start(&o->timer, timer_cb, sl_backoff_next(&o->bo), 0);
  o->cbs.writable(o->cbs.arg);
}

static void
conn_fail(struct tcp_out *o, const char *why, int err)
{
  if (o->state == C_CLOSING || o->state == C_IDLE)
    return;
  sl_log(SL_LOG_WARN, "out.tcp", why, SL_LF_STR, "host", o->hosts[o->cur],
         SL_LF_ERR, err, SL_LF_END);
  sl_out_note_error(&o->lerr, o->hosts[o->cur], NULL, why, err);
  if (o->state == C_UP) {
    o->st.disconnects++;
    o->st.connected = 0;
  }
  uv_timer_stop(&o->timer);
  o->state = C_CLOSING;
  uv_close((uv_handle_t *)&o->tcp, tcp_closed);
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct tcp_out *o = h->data;

  buf->base = o->rbuf;
  buf->len = sizeof(o->rbuf);
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct tcp_out *o = s->data;

  /* json_lines has no replies; reading only notices a closed peer. */
  if (n < 0)
    conn_fail(o, n == UV_EOF ? "receiver closed the connection"
                             : "read failed", (int)n);
}

static void
write_cb(uv_write_t *req, int status)
{
  struct tcp_out *o = req->data;
  struct sl_batch *b;

  if (status < 0) {
    conn_fail(o, "write failed", status);
    return;
  }
  if (o->state != C_UP)
    return;
  /* Writes complete in order. */
  b = sl_batchq_pop(&o->sent);
  o->ninflight--;
  o->st.inflight--;
  sl_backoff_reset(&o->bo);
  o->cbs.acked(o->cbs.arg, b);
  o->cbs.writable(o->cbs.arg);
}

static void
connect_cb(uv_connect_t *req, int status)
{
  struct tcp_out *o = req->data;
  int rc;

  if (o->state != C_CONNECTING)
    return;
  if (status < 0) {
    conn_fail(o, "connect failed", status);
    return;
  }
  uv_timer_stop(&o->timer);
  uv_tcp_nodelay(&o->tcp, 1);
  rc = uv_read_start((uv_stream_t *)&o->tcp, alloc_cb, read_cb);
  if (rc) {
    conn_fail(o, "read start failed", rc);
    return;
  }
  o->state = C_UP;
  o->st.connects++;
  o->st.connected = 1;
  sl_log(SL_LOG_INFO, "out.tcp", "connected", SL_LF_STR, "host",
         o->hosts[o->cur], SL_LF_END);
  o->cbs.writable(o->cbs.arg);
}

static void
tcp_connect_next(struct tcp_out *o)
{
  struct sockaddr_storage ss;
  char host[256];
  int port, rc;

  if (o->closing || o->state != C_IDLE)
    return;
  if (sl_agent_split_hostport(o->hosts[o->cur], host, sizeof(host), &port) ||
      (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) &&
       uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss))) {
    /* Names are not resolved here: json_lines is a test and bench aid. */
    sl_log(SL_LOG_ERROR, "out.tcp", "host must be a numeric address",
           SL_LF_STR, "host", o->hosts[o->cur], SL_LF_END);
    o->cur = (o->cur + 1) % o->nhosts;
    uv_timer_start(&o->timer, timer_cb, sl_backoff_next(&o->bo), 0);
    return;
  }
  rc = uv_tcp_init(o->loop, &o->tcp);
  if (rc) {
    uv_timer_start(&o->timer, timer_cb, sl_backoff_next(&o->bo), 0);
    return;
  }
  o->tcp.data = o;
  o->tcp_open = 1;
  o->open_handles++;
  o->creq.data = o;
  o->state = C_CONNECTING;
  rc = uv_tcp_connect(&o->creq, &o->tcp, (struct sockaddr *)&ss, connect_cb);
  if (rc) {
    conn_fail(o, "connect failed", rc);
    return;
  }
  uv_timer_start(&o->timer, timer_cb,
                 o->timeout_ms < 10000 ? o->timeout_ms : 10000, 0);
}

static int
tcp_init(uv_loop_t *loop, const struct sl_agent_conf *ac,
         const struct sl_out_cbs *cbs, struct sl_out **out, char *err,
         size_t errlen)
{
  struct tcp_out *o;
  int i;

  o = calloc(1, sizeof(*o));
  if (o == NULL)
    return SL_ENOMEM;
  o->base.ops = &sl_out_tcp_ops;
  o->loop = loop;
  sl_batchq_init(&o->sent);
  o->cbs = *cbs;
  for (i = 0; i < ac->nhosts; i++)
    o->hosts[i] = ac->hosts[i];
  o->nhosts = ac->nhosts;
  o->max_inflight = ac->max_inflight;
  o->timeout_ms = ac->timeout_ms;
  sl_backoff_init(&o->bo, ac->backoff_base_ms, ac->backoff_max_ms);
  uv_timer_init(loop, &o->timer);
  o->timer.data = o;
  o->open_handles = 1;
  o->state = C_IDLE;
  tcp_connect_next(o);
  *out = &o->base;
  return SL_OK;
}

static enum sl_out_result
tcp_send(struct sl_out *base, struct sl_batch *b)
{
  struct tcp_out *o = (struct tcp_out *)base;
  int rc;

  if (o->closing || o->state != C_UP || o->ninflight >= o->max_inflight)
    return SL_RETRY;
  sl_batchq_push(&o->sent, b);
  o->ninflight++;
  o->st.inflight++;
  o->st.bytes_sent += b->len;
  b->wbuf = uv_buf_init(b->data, (unsigned)b->len);
  b->wreq.data = o;
  rc = uv_write(&b->wreq, (uv_stream_t *)&o->tcp, &b->wbuf, 1, write_cb);
  if (rc)
    conn_fail(o, "write failed", rc);
  return SL_SENT;
}

static int
tcp_ready(const struct sl_out *base)
{
  return ((const struct tcp_out *)base)->state == C_UP;
}

static void
tcp_stats(const struct sl_out *base, struct sl_out_stats *st)
{
  *st = ((const struct tcp_out *)base)->st;
}

static json_t *
tcp_state(const struct sl_out *base)
{
  static const char *const names[] = { "idle", "connecting", "up",
                                       "closing" };
  const struct tcp_out *o = (const struct tcp_out *)base;
  json_t *st = json_pack("{s:[{s:s, s:s, s:i}]}", "connections", "host",
                         o->hosts[o->cur], "state", names[o->state],
                         "inflight", o->ninflight);

  if (st && sl_out_put_error(st, &o->lerr)) {
    json_decref(st);
    st = NULL;
  }
  return st;
}

static void
tcp_close(struct sl_out *base, void (*cb)(void *arg), void *arg)
{
  struct tcp_out *o = (struct tcp_out *)base;

  o->closing = 1;
  o->close_cb = cb;
  o->close_arg = arg;
  o->open_handles++;
  uv_timer_stop(&o->timer);
  uv_close((uv_handle_t *)&o->timer, handle_closed);
  if (o->tcp_open && o->state != C_CLOSING) {
    o->state = C_CLOSING;
    o->st.connected = 0;
    uv_close((uv_handle_t *)&o->tcp, tcp_closed);
  }
  o->open_handles--;
  maybe_closed(o);
}

const struct sl_out_ops sl_out_tcp_ops = {
  "tcp", tcp_init, tcp_send, tcp_ready, tcp_stats, tcp_close,
  .state = tcp_state,
};
