/* out_lumberjack.c - Lumberjack v2 output: one connection per host, load
 * balanced round-robin over the connected ones, several windows in flight
 * per connection, resend of every unacked window after a failure.
 *
 * A batch is one complete window as the worker built it (W frame, then one
 * C frame or plain J frames with sequences 1..n), so it can be written
 * unchanged to any connection, again and again. The receiver acks windows
 * in order per connection: an ACK whose sequence equals the head window's
 * event count completes that window; a lower one is a keep-alive that only
 * proves progress (restarts the timeout). No progress for `timeout` while
 * windows are in flight closes the connection; its windows go back to the
 * agent's queue (newest first, so order is kept) and are resent through any
 * connection. Reconnects wait sl_backoff delays; the backoff resets on the
 * first ACK, not on connect, so a peer that accepts and drops at once is not
 * hammered.
 *
 * TLS (output.ssl): OpenSSL over memory BIOs, so libuv keeps doing all the
 * socket I/O. Ciphertext that OpenSSL produces is copied into its own
 * write requests; the window itself stays untouched for a later resend.
 * Those requests (a window's size each) come from a small free list owned
 * by the output (bufpool.h), so a steady stream reuses the same memory
 * instead of faulting in fresh pages per window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufpool.h"
#include "out.h"
#include "sl_backoff.h"
#include "sl_config.h"
#include "sl_list.h"
#include "sl_lj.h"
#include "sl_log.h"
#include "sl_time.h"
#include "sl_tls.h"

#ifdef HAVE_OPENSSL
#include <openssl/ssl.h>
#endif

/* b->out_flags: the window's uv_write is still libuv's (it holds b->wreq
 * until the write callback ran), and the receiver's ack for it was read
 * before that callback. That happens on loopback: a write that completes
 * inside uv_write() gets its callback only on the next loop iteration,
 * while the read loop that is running may already see the ack; a
 * receiver that acks on the frame headers does it too. */
#define B_WRITING 0x1u
#define B_ACKED   0x2u

/* Read buffer per connection; ACK frames are 6 bytes, so this is plenty. */
#define LJ_RBUF 4096
#define LJ_DEFAULT_PORT 5044

/* Connection states (one comment each, curl CURLMstate). */
enum conn_state {
  C_IDLE,        /* not connected; the timer fires the next attempt */
  C_RESOLVING,   /* uv_getaddrinfo in flight */
  C_CONNECTING,  /* uv_tcp_connect in flight; timer bounds it */
  C_HANDSHAKE,   /* TCP up, TLS handshake running; timer bounds it */
  C_UP,          /* connected: windows may be written */
  C_CLOSING,     /* uv_close in flight; windows return in its callback */
};

static const char *const state_names[] = {
  "idle", "resolving", "connecting", "handshake", "up", "closing",
};

struct lj_out;

struct lj_conn {
  struct lj_out *out;
  char host[256];
  char port[8];
  enum conn_state state;
  uv_tcp_t tcp;
  int tcp_open;                  /* tcp initialised, not yet closed */
  uv_connect_t creq;
  uv_getaddrinfo_t gai;
  int gai_pending;
  uv_timer_t timer;
  struct sl_backoff bo;
  struct sl_lj_dec *dec;
  struct sl_batchq sent;         /* windows in flight, oldest first */
  int ninflight;
  uint64_t last_progress_ms;     /* last ack (full or keep-alive) or the
                                    moment the first window went out */
#ifdef HAVE_OPENSSL
  SSL *ssl;                      /* owns its two memory BIOs */
  BIO *rbio, *wbio;              /* ciphertext in / out */
#endif
  char rbuf[LJ_RBUF];
};

struct lj_out {
  struct sl_out base;
  uv_loop_t *loop;
  struct sl_out_cbs cbs;
  uint64_t timeout_ms;
  int max_inflight;
  struct lj_conn *conns;
  int nconns;
  int rr;                        /* next connection to try */
  int closing;
  int open_handles;              /* closed handles still to come back */
  void (*close_cb)(void *arg);
  void *close_arg;
  struct sl_out_stats st;
  struct sl_out_last_err lerr;   /* /debug/state */
#ifdef HAVE_OPENSSL
  SSL_CTX *tls;                  /* NULL: plain TCP */
  int tls_verify;
  struct sl_bufpool *wbufs;      /* ciphertext write requests */
#endif
};

static void conn_connect(struct lj_conn *c);
static void conn_timer(uv_timer_t *t);

static void
set_state(struct lj_conn *c, enum conn_state s)
{
  if (SL_LOG_ENABLED(SL_LOG_DEBUG))
    sl_log(SL_LOG_DEBUG, "out.lumberjack", "state",
           SL_LF_STR, "host", c->host, SL_LF_STR, "from",
           state_names[c->state], SL_LF_STR, "to", state_names[s],
           SL_LF_END);
  c->state = s;
}

static void
maybe_closed(struct lj_out *o)
{
  if (o->closing && o->open_handles == 0) {
    void (*cb)(void *) = o->close_cb;
    void *arg = o->close_arg;
#ifdef HAVE_OPENSSL
    SSL_CTX_free(o->tls);
    sl_bufpool_close(o->wbufs);
#endif
    free(o->conns);
    free(o);
    if (cb)
      cb(arg);
  }
}

static void
handle_closed(uv_handle_t *h)
{
  struct lj_conn *c = h->data;
  struct lj_out *o = c->out;

  o->open_handles--;
  maybe_closed(o);
}

/* Give every in-flight window back to the agent, newest first. */
static void
requeue_all(struct lj_conn *c)
{
  struct lj_out *o = c->out;
  struct sl_batch *b;
  int n = 0;

  while ((b = sl_batchq_pop_last(&c->sent)) != NULL) {
    o->cbs.requeue(o->cbs.arg, b);
    n++;
  }
  c->ninflight = 0;
  o->st.resent += (uint64_t)n;
  o->st.inflight -= (uint64_t)n;
}

static void
schedule_reconnect(struct lj_conn *c)
{
  uint64_t d = sl_backoff_next(&c->bo);

  set_state(c, C_IDLE);
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, conn_timer, d, 0);
}

static void
tcp_closed(uv_handle_t *h)
{
  struct lj_conn *c = h->data;
  struct lj_out *o = c->out;

  c->tcp_open = 0;
  sl_lj_dec_free(c->dec);
  c->dec = NULL;
#ifdef HAVE_OPENSSL
  SSL_free(c->ssl);
  c->ssl = NULL;
#endif
  /* Every write callback has run by now (libuv cancels pending writes
   * before the close callback), so the windows are free to go elsewhere. */
  requeue_all(c);
  if (o->closing) {
    handle_closed(h);
    return;
  }
  o->open_handles--;
  schedule_reconnect(c);
  o->cbs.writable(o->cbs.arg);
}

static void
conn_fail(struct lj_conn *c, const char *why, int err)
{
  struct lj_out *o = c->out;

  if (c->state == C_CLOSING || c->state == C_IDLE)
    return;
  sl_log(SL_LOG_WARN, "out.lumberjack", why, SL_LF_STR, "host", c->host,
         SL_LF_STR, "port", c->port, SL_LF_INT, "inflight",
         (int64_t)c->ninflight, SL_LF_ERR, err, SL_LF_END);
  sl_out_note_error(&o->lerr, c->host, c->port, why, err);
  if (c->state == C_UP) {
    o->st.disconnects++;
    o->st.connected--;
  }
  uv_timer_stop(&c->timer);
  if (!c->tcp_open) {
    if (!o->closing)
      schedule_reconnect(c);
    return;
  }
  set_state(c, C_CLOSING);
  uv_close((uv_handle_t *)&c->tcp, tcp_closed);
}

static void
conn_timer(uv_timer_t *t)
{
  struct lj_conn *c = t->data;
  struct lj_out *o = c->out;

  switch (c->state) {
  case C_CONNECTING:
    conn_fail(c, "connect timed out", SL_ETIMEDOUT);
    break;
  case C_HANDSHAKE:
    conn_fail(c, "TLS handshake timed out", SL_ETIMEDOUT);
    break;
  case C_UP:
    if (c->ninflight &&
        sl_time_mono_ms() - c->last_progress_ms >= o->timeout_ms) {
      o->st.timeouts++;
      conn_fail(c, "no ack within timeout, resending", SL_ETIMEDOUT);
    }
    break;
  case C_IDLE:
    conn_connect(c);
    break;
  default:
    break;
  }
}

static int
on_frame(void *arg, const struct sl_lj_frame *f)
{
  struct lj_conn *c = arg;
  struct lj_out *o = c->out;
  struct sl_batch *b = sl_batchq_first(&c->sent);

  if (c->state != C_UP)
    return 1;
  if (f->type != SL_LJ_ACK) {
    conn_fail(c, "unexpected frame from receiver", SL_EPROTO);
    return 1;
  }
  if (b == NULL) {
    /* A keep-alive after everything was acked: harmless. */
    return 0;
  }
  if (f->seq < b->events) {
    c->last_progress_ms = sl_time_mono_ms();
    return 0;
  }
  if (f->seq > b->events) {
    conn_fail(c, "ack beyond the window", SL_EPROTO);
    return 1;
  }
  sl_batchq_pop(&c->sent);
  c->ninflight--;
  o->st.inflight--;
  c->last_progress_ms = sl_time_mono_ms();
  sl_backoff_reset(&c->bo);
  if (b->out_flags & B_WRITING) {
    /* Acked before libuv let go of the write: releasing the batch now
     * would free the request libuv still walks. write_cb hands it on. */
    b->out_flags |= B_ACKED;
    return 0;
  }
  o->cbs.acked(o->cbs.arg, b);
  return c->state == C_UP ? 0 : 1;
}

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct lj_conn *c = h->data;

  buf->base = c->rbuf;
  buf->len = sizeof(c->rbuf);
}

static void
feed_plain(struct lj_conn *c, const char *p, size_t n)
{
  char err[160];
  int rc;

  err[0] = '\0';
  rc = sl_lj_dec_feed(c->dec, p, n, on_frame, c, err, sizeof(err));
  if (rc < 0 && c->state == C_UP) {
    sl_log(SL_LOG_WARN, "out.lumberjack", "bad data from receiver",
           SL_LF_STR, "reason", err, SL_LF_END);
    conn_fail(c, "protocol error", rc);
  }
}

#ifdef HAVE_OPENSSL
static void conn_up(struct lj_conn *c);

/* One ciphertext write; the bytes follow the struct in the same block. */
struct tls_wreq {
  uv_write_t req;
  struct lj_conn *c;
  size_t cap;                    /* of the whole block, for the pool */
};

static void
tls_wreq_put(struct tls_wreq *w)
{
  sl_bufpool_put_mem(w->c->out->wbufs, (char *)w, w->cap);
}

static void
tls_write_cb(uv_write_t *req, int status)
{
  struct tls_wreq *w = sl_container_of(req, struct tls_wreq, req);
  struct lj_conn *c = w->c;

  tls_wreq_put(w);
  if (status < 0)
    conn_fail(c, "write failed", status);
}

/* Move the ciphertext OpenSSL produced to the socket. */
static int
tls_flush(struct lj_conn *c)
{
  size_t n;
  int rc;

  while ((n = BIO_ctrl_pending(c->wbio)) > 0) {
    struct tls_wreq *w;
    struct sl_buf mem;
    uv_buf_t b;
    int got;
    if (sl_bufpool_get(c->out->wbufs, sizeof(*w) + n, 0, &mem))
      return SL_ENOMEM;
    /* malloc alignment: the struct may live at the start. */
    w = (struct tls_wreq *)(void *)mem.p;
    w->c = c;
    w->cap = mem.cap;
    got = BIO_read(c->wbio, (char *)(w + 1), (int)n);
    if (got <= 0) {
      tls_wreq_put(w);
      return SL_EINTERNAL;
    }
    b = uv_buf_init((char *)(w + 1), (unsigned)got);
    w->req.data = c;
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, tls_write_cb);
    if (rc) {
      tls_wreq_put(w);
      return rc;
    }
    c->out->st.bytes_sent += (uint64_t)got;
  }
  return SL_OK;
}

static void
tls_fail(struct lj_conn *c, const char *why)
{
  char buf[200];

  sl_tls_errstr(buf, sizeof(buf), "connection closed");
  sl_log(SL_LOG_WARN, "out.lumberjack", why, SL_LF_STR, "host", c->host,
         SL_LF_STR, "tls", buf,
         SL_LF_STR, "verify", c->ssl ? X509_verify_cert_error_string(
           SSL_get_verify_result(c->ssl)) : NULL, SL_LF_END);
  conn_fail(c, why, SL_EPROTO);
}

static void
tls_read(struct lj_conn *c, const char *p, size_t n)
{
  char plain[16384];
  int r;

  if (BIO_write(c->rbio, p, (int)n) != (int)n) {
    conn_fail(c, "out of memory", SL_ENOMEM);
    return;
  }
  if (c->state == C_HANDSHAKE) {
    r = SSL_do_handshake(c->ssl);
    if (tls_flush(c)) {
      conn_fail(c, "write failed", SL_EIO);
      return;
    }
    if (r != 1) {
      if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
        tls_fail(c, "TLS handshake failed");
      return;
    }
    conn_up(c);
  }
  while (c->state == C_UP) {
    r = SSL_read(c->ssl, plain, sizeof(plain));
    if (r <= 0) {
      int e = SSL_get_error(c->ssl, r);
      if (e != SSL_ERROR_WANT_READ)
        tls_fail(c, "TLS read failed");
      break;
    }
    feed_plain(c, plain, (size_t)r);
  }
  if (c->state == C_UP && tls_flush(c))
    conn_fail(c, "write failed", SL_EIO);
}
#endif

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct lj_conn *c = s->data;

  if (n < 0) {
    conn_fail(c, n == UV_EOF ? "receiver closed the connection"
                             : "read failed", (int)n);
    return;
  }
  if (n == 0)
    return;
#ifdef HAVE_OPENSSL
  if (c->ssl) {
    tls_read(c, buf->base, (size_t)n);
    return;
  }
#endif
  feed_plain(c, buf->base, (size_t)n);
}

static void
write_cb(uv_write_t *req, int status)
{
  struct sl_batch *b = sl_container_of(req, struct sl_batch, wreq);
  struct lj_conn *c = req->data;
  struct lj_out *o = c->out;

  b->out_flags &= ~B_WRITING;
  if (b->out_flags & B_ACKED) {
    /* The receiver has it whatever status says (even ECANCELED when the
     * connection closes): deliver the ack held back in on_frame. */
    b->out_flags = 0;
    o->cbs.acked(o->cbs.arg, b);
    if (status < 0 && c->state == C_UP)
      conn_fail(c, "write failed", status);
    return;
  }
  if (status < 0)
    conn_fail(c, "write failed", status);
}

/* The connection can carry windows now. */
static void
conn_up(struct lj_conn *c)
{
  struct lj_out *o = c->out;
  uint64_t every;

  set_state(c, C_UP);
  o->st.connects++;
  o->st.connected++;
  sl_log(SL_LOG_INFO, "out.lumberjack", "connected", SL_LF_STR, "host",
         c->host, SL_LF_STR, "port", c->port, SL_LF_STR, "tls",
#ifdef HAVE_OPENSSL
         c->ssl ? SSL_get_version(c->ssl) : "off",
#else
         "off",
#endif
         SL_LF_END);
  /* Check ack progress a few times per timeout period. */
  uv_timer_stop(&c->timer);
  every = o->timeout_ms / 4;
  if (every < 5)
    every = 5;
  if (every > 1000)
    every = 1000;
  uv_timer_start(&c->timer, conn_timer, every, every);
  o->cbs.writable(o->cbs.arg);
}

#ifdef HAVE_OPENSSL
static int
tls_start(struct lj_conn *c)
{
  struct lj_out *o = c->out;
  struct sockaddr_storage ss;
  int is_ip, r;

  c->ssl = SSL_new(o->tls);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    return SL_ENOMEM;
  }
  SSL_set_bio(c->ssl, c->rbio, c->wbio);  /* ssl owns them now */
  SSL_set_connect_state(c->ssl);
  is_ip = uv_ip4_addr(c->host, 0, (struct sockaddr_in *)&ss) == 0 ||
          uv_ip6_addr(c->host, 0, (struct sockaddr_in6 *)&ss) == 0;
  if (!is_ip)
    SSL_set_tlsext_host_name(c->ssl, c->host);
  if (o->tls_verify) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
    else
      X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
  }
  set_state(c, C_HANDSHAKE);
  r = SSL_do_handshake(c->ssl);
  if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
    return SL_EPROTO;
  return tls_flush(c);
}
#endif

static void
connect_cb(uv_connect_t *req, int status)
{
  struct lj_conn *c = req->data;
  struct sl_lj_limits lim;
  int rc;

  if (c->state != C_CONNECTING)
    return;
  if (status < 0) {
    conn_fail(c, "connect failed", status);
    return;
  }
  sl_lj_limits_default(&lim);
  c->dec = sl_lj_dec_new(&lim);
  if (c->dec == NULL) {
    conn_fail(c, "out of memory", SL_ENOMEM);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 60);
  rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (rc) {
    conn_fail(c, "read start failed", rc);
    return;
  }
#ifdef HAVE_OPENSSL
  if (c->out->tls) {
    rc = tls_start(c);
    if (rc)
      tls_fail(c, "TLS handshake failed");
    return;  /* the connect timer keeps bounding the handshake */
  }
#endif
  conn_up(c);
}

static void
start_connect(struct lj_conn *c, const struct sockaddr *sa)
{
  struct lj_out *o = c->out;
  int rc;

  rc = uv_tcp_init(o->loop, &c->tcp);
  if (rc) {
    conn_fail(c, "socket failed", rc);
    return;
  }
  c->tcp.data = c;
  c->tcp_open = 1;
  o->open_handles++;
  c->creq.data = c;
  set_state(c, C_CONNECTING);
  rc = uv_tcp_connect(&c->creq, &c->tcp, sa, connect_cb);
  if (rc) {
    conn_fail(c, "connect failed", rc);
    return;
  }
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, conn_timer,
                 o->timeout_ms < 10000 ? o->timeout_ms : 10000, 0);
}

static void
gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  struct lj_conn *c = req->data;
  struct lj_out *o = c->out;

  c->gai_pending = 0;
  if (o->closing) {
    uv_freeaddrinfo(res);
    o->open_handles--;
    maybe_closed(o);
    return;
  }
  o->open_handles--;
  if (status < 0 || res == NULL) {
    sl_log(SL_LOG_WARN, "out.lumberjack", "cannot resolve host",
           SL_LF_STR, "host", c->host, SL_LF_ERR, status, SL_LF_END);
    sl_out_note_error(&o->lerr, c->host, c->port, "cannot resolve host",
                      status);
    uv_freeaddrinfo(res);
    schedule_reconnect(c);
    return;
  }
  start_connect(c, res->ai_addr);
  uv_freeaddrinfo(res);
}

static void
conn_connect(struct lj_conn *c)
{
  struct lj_out *o = c->out;
  struct sockaddr_storage ss;
  struct addrinfo hints;
  int rc;

  if (o->closing || c->state != C_IDLE)
    return;
  if (uv_ip4_addr(c->host, atoi(c->port), (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(c->host, atoi(c->port), (struct sockaddr_in6 *)&ss) == 0) {
    start_connect(c, (struct sockaddr *)&ss);
    return;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  c->gai.data = c;
  set_state(c, C_RESOLVING);
  rc = uv_getaddrinfo(o->loop, &c->gai, gai_cb, c->host, c->port, &hints);
  if (rc) {
    sl_log(SL_LOG_WARN, "out.lumberjack", "cannot resolve host",
           SL_LF_STR, "host", c->host, SL_LF_ERR, rc, SL_LF_END);
    schedule_reconnect(c);
    return;
  }
  c->gai_pending = 1;
  o->open_handles++;
}

#ifdef HAVE_OPENSSL
static int
tls_ctx(struct lj_out *o, const struct sl_agent_conf *ac, char *err,
        size_t errlen)
{
  struct sl_tls_files f = {
    "output.ssl", ac->ssl_ca, ac->ssl_cert, ac->ssl_key,
  };

  o->tls_verify = ac->ssl_verify;
  return sl_tls_client_ctx(&f, ac->ssl_verify, &o->tls, err, errlen);
}
#endif

static int
lj_init(uv_loop_t *loop, const struct sl_agent_conf *ac,
        const struct sl_out_cbs *cbs, struct sl_out **out, char *err,
        size_t errlen)
{
  struct lj_out *o;
  int i;

  o = calloc(1, sizeof(*o));
  if (o == NULL)
    return SL_ENOMEM;
  o->conns = calloc((size_t)ac->nhosts, sizeof(*o->conns));
  if (o->conns == NULL) {
    free(o);
    return SL_ENOMEM;
  }
  o->base.ops = &sl_out_lumberjack_ops;
  o->loop = loop;
  o->cbs = *cbs;
  o->timeout_ms = ac->timeout_ms;
  o->max_inflight = ac->max_inflight;
  o->nconns = ac->nhosts;
  for (i = 0; i < ac->nhosts; i++) {
    struct lj_conn *c = &o->conns[i];
    int port;
    c->out = o;
    sl_batchq_init(&c->sent);
    if (sl_agent_split_hostport(ac->hosts[i], c->host, sizeof(c->host),
                                &port)) {
      snprintf(err, errlen, "output.hosts: bad host '%s'", ac->hosts[i]);
      free(o->conns);
      free(o);
      return SL_ECONFIG;
    }
    snprintf(c->port, sizeof(c->port), "%d", port ? port : LJ_DEFAULT_PORT);
  }
#ifdef HAVE_OPENSSL
  if (ac->ssl_enabled) {
    /* Writes in flight: up to max_inflight windows per connection plus
     * handshake records; idle ones are bounded like the batch queue. */
    uint32_t nidle = (uint32_t)(2 * o->max_inflight * o->nconns + 2);
    int rc = sl_bufpool_new((size_t)ac->queue_max_bytes,
                            nidle > 64 ? 64 : nidle, &o->wbufs);
    if (rc == 0)
      rc = tls_ctx(o, ac, err, errlen);
    if (rc) {
      SSL_CTX_free(o->tls);
      sl_bufpool_close(o->wbufs);
      free(o->conns);
      free(o);
      return rc;
    }
  }
#endif
  /* Handles only after nothing can fail any more. */
  for (i = 0; i < o->nconns; i++) {
    struct lj_conn *c = &o->conns[i];
    sl_backoff_init(&c->bo, ac->backoff_base_ms, ac->backoff_max_ms);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    o->open_handles++;
    c->state = C_IDLE;
  }
  for (i = 0; i < o->nconns; i++)
    conn_connect(&o->conns[i]);
  *out = &o->base;
  return SL_OK;
}

static enum sl_out_result
lj_send(struct sl_out *base, struct sl_batch *b)
{
  struct lj_out *o = (struct lj_out *)base;
  struct lj_conn *c = NULL;
  int i, rc;

  if (o->closing)
    return SL_RETRY;
  for (i = 0; i < o->nconns; i++) {
    struct lj_conn *k = &o->conns[(o->rr + i) % o->nconns];
    if (k->state == C_UP && k->ninflight < o->max_inflight) {
      c = k;
      o->rr = (o->rr + i + 1) % o->nconns;
      break;
    }
  }
  if (c == NULL)
    return SL_RETRY;
  sl_batchq_push(&c->sent, b);
  if (c->ninflight++ == 0)
    c->last_progress_ms = sl_time_mono_ms();
  o->st.inflight++;
#ifdef HAVE_OPENSSL
  if (c->ssl) {
    /* Memory BIO: SSL_write takes everything at once. */
    if (SSL_write(c->ssl, b->data, (int)b->len) != (int)b->len)
      tls_fail(c, "TLS write failed");
    else if ((rc = tls_flush(c)) != 0)
      conn_fail(c, "write failed", rc);
    return SL_SENT;
  }
#endif
  o->st.bytes_sent += b->len;
  b->wbuf = uv_buf_init(b->data, (unsigned)b->len);
  b->wreq.data = c;
  b->out_flags = 0;
  rc = uv_write(&b->wreq, (uv_stream_t *)&c->tcp, &b->wbuf, 1, write_cb);
  if (rc)
    conn_fail(c, "write failed", rc);  /* the window comes back later */
  else
    b->out_flags = B_WRITING;
  return SL_SENT;
}

static int
lj_ready(const struct sl_out *base)
{
  const struct lj_out *o = (const struct lj_out *)base;

  return o->st.connected > 0;
}

static void
lj_stats(const struct sl_out *base, struct sl_out_stats *st)
{
  *st = ((const struct lj_out *)base)->st;
}

static json_t *
lj_state(const struct sl_out *base)
{
  const struct lj_out *o = (const struct lj_out *)base;
  json_t *st = json_object(), *conns = json_array(), *e;
  char hp[300];
  int i;

  if (st == NULL || conns == NULL)
    goto fail;
  for (i = 0; i < o->nconns; i++) {
    const struct lj_conn *c = &o->conns[i];
    snprintf(hp, sizeof(hp), "%s:%s", c->host, c->port);
    e = json_pack("{s:s, s:s, s:i}", "host", hp, "state",
                  state_names[c->state], "inflight", c->ninflight);
    if (e == NULL || json_array_append_new(conns, e))
      goto fail;
  }
  if (json_object_set_new(st, "connections", conns)) {
    conns = NULL;
    goto fail;
  }
  conns = NULL;
#ifdef HAVE_OPENSSL
  if (json_object_set_new(st, "tls", json_boolean(o->tls != NULL)))
    goto fail;
#endif
  if (sl_out_put_error(st, &o->lerr))
    goto fail;
  return st;
fail:
  json_decref(conns);
  json_decref(st);
  return NULL;
}

static void
lj_close(struct sl_out *base, void (*cb)(void *arg), void *arg)
{
  struct lj_out *o = (struct lj_out *)base;
  int i;

  o->closing = 1;
  o->close_cb = cb;
  o->close_arg = arg;
  /* Hold one reference so nothing frees o while we walk the conns. */
  o->open_handles++;
  for (i = 0; i < o->nconns; i++) {
    struct lj_conn *c = &o->conns[i];
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    if (c->gai_pending)
      uv_cancel((uv_req_t *)&c->gai);
    if (c->tcp_open && c->state != C_CLOSING) {
      if (c->state == C_UP)
        o->st.connected--;
      set_state(c, C_CLOSING);
      uv_close((uv_handle_t *)&c->tcp, tcp_closed);
    }
  }
  o->open_handles--;
  maybe_closed(o);
}

const struct sl_out_ops sl_out_lumberjack_ops = {
  "lumberjack", lj_init, lj_send, lj_ready, lj_stats, lj_close,
  .state = lj_state,
};
