#include "input.h"

#include "event_scan.h"
#include "input_tls.h"

#include <stdlib.h>
#include <string.h>

#include "sl_conf.h"
#include "sl_err.h"
#include "sl_hash.h"
#include "sl_json.h"
#include "sl_list.h"
#include "sl_lj.h"
#include "sl_log.h"
#include "sl_time.h"

/* A piece of a window on its way into the spool. Parts of one connection
 * are acked strictly in order: an ack means "everything up to this
 * sequence is safe", so a later part may not be acked before an earlier
 * one is durable. */
enum part_state {
  PART_WAITING = 0,  /* not in the spool yet (refused: spool full) */
  PART_APPENDING,    /* handed to the spool, commit callback pending */
  PART_DURABLE,      /* fsync'ed: may be acked once it reaches the head */
};

struct conn;

struct part {
  struct sl_list link;     /* in conn.parts, oldest first */
  struct conn *c;          /* NULL once the connection closed */
  enum part_state state;
  struct sl_buf buf;       /* NDJSON events; kept until durable (the spool
                              may refuse it and we must retry), then
                              recycled (see SPARE_MAX) */
  uint32_t nevents;
  uint32_t last_seq;       /* what to ack once durable */
};

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;        /* idle and keep-alive checks */
  struct sl_input *in;
  struct sl_list link;     /* in sl_input.conns */
  struct sl_lj_dec *dec;
  struct sl_buf cur;       /* events of the part being built */
  uint32_t cur_events;
  uint32_t window;         /* announced by the last W frame; 0 = none */
  uint32_t got;            /* events received in this window */
  uint32_t last_seq;       /* sequence of the last event received */
  struct sl_list parts;    /* not acked yet, in sequence order */
  uint64_t last_rx_ms, last_ack_ms;
  char peer[64];
  struct sl_input_tls_conn *tls;  /* NULL on a plaintext input */
  int seen;                /* the first byte was checked */
  int reading;
  int closing;
  int handles;             /* open uv handles; freed when it hits 0 */
};

/* Durable parts give their buffers back for the next parts of any
 * connection: a window of a few thousand events is around a megabyte, and
 * growing a fresh buffer for each one (realloc doubling, then free) costs
 * a page fault per 4 KiB and the copies, on every window. A few spares
 * cover the parts in flight of a handful of busy connections; the byte
 * bound keeps one huge window from being kept forever. */
#define SPARE_MAX 4
#define SPARE_BYTES (16u << 20)

struct sl_input {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct sl_spool *spool;
  struct sl_lj_limits lim;
  struct sl_input_tls *tls;  /* NULL: plaintext (input_tls.h) */
  uint64_t max_connections;
  uint64_t idle_timeout_ms;
  uint64_t keepalive_ms;
  uint64_t flush_bytes;
  int port;
  int paused;              /* spool refused an append: nobody reads */
  int closing;
  struct sl_list conns;
  struct sl_input_stats st;
  /* One read buffer for every connection: a read is fed to the decoder
   * (which copies only a partial frame) before the next one starts. 64 KiB
   * per read is enough for throughput. */
  char rbuf[65536];
  struct sl_buf spare[SPARE_MAX];
  size_t nspare;
  size_t spare_bytes;      /* sum of spare[].cap */
  void (*close_cb)(void *);
  void *close_arg;
};


static void conn_close(struct conn *c, const char *reason, int err);
static void try_append(struct conn *c, struct part *p);
static void input_maybe_closed(struct sl_input *in);

/* ---- event conversion -------------------------------------------------- */

/* Anything that is not a JSON object is kept as the message of an event
 * tagged sluice_invalid_event, with an id hashed from its bytes. */
static int
append_raw_event(const char *data, size_t len, const char *why,
                 struct sl_buf *out)
{
  char id[33], ts[SL_TIME_RFC3339_MS_LEN + 1];
  int rc;

  sl_hash128_hex(sl_hash128(data, len), id);
  ts[sl_time_format_ms(sl_time_now_ns(), ts)] = '\0';
  rc = sl_buf_printf(out, "{\"@timestamp\":\"%s\",\"message\":", ts);
  if (rc == 0)
    rc = sl_json_str(out, data, len);
  if (rc == 0)
    rc = sl_buf_printf(out, ",\"tags\":[\"sluice_invalid_event\"],"
                       "\"error\":{\"message\":");
  if (rc == 0)
    rc = sl_json_str(out, why, strlen(why));
  if (rc == 0)
    rc = sl_buf_printf(out, "},\"event\":{\"id\":\"%s\"}}\n", id);
  return rc;
}

/* pre"key":"val"post, for keys and values that need no escaping (a hex
 * hash, a formatted time): plain appends, no printf on the hot path. */
static int
put_kv(struct sl_buf *out, const char *pre, const char *key,
       const char *val, const char *post)
{
  int rc = sl_buf_append_str(out, pre);

  if (rc == 0)
    rc = sl_buf_append_byte(out, '"');
  if (rc == 0)
    rc = sl_buf_append_str(out, key);
  if (rc == 0)
    rc = sl_buf_append(out, "\":\"", 3);
  if (rc == 0)
    rc = sl_buf_append_str(out, val);
  if (rc == 0)
    rc = sl_buf_append_byte(out, '"');
  if (rc == 0)
    rc = sl_buf_append_str(out, post);
  return rc;
}

/* The common case without a DOM and without any allocation besides `out`
 * (a buffer the connection reuses): the event is one line of JSON, so its
 * bytes go through as they came, with event.id spliced in when the sender
 * (a Beats client) did not set one and @timestamp appended when absent.
 * SL_EAGAIN: not sure, take the jansson path. */
static int
event_normalize_fast(const char *data, size_t len, struct sl_buf *out)
{
  struct sl_event_fields f;
  char hid[33], ts[SL_TIME_RFC3339_MS_LEN + 1];
  size_t start = out->len, pos = 0, cut;
  int need_id, members, rc = 0;

  if (sl_event_scan(data, len, &f) != 0 || f.has_newline)
    return SL_EAGAIN;
  if (f.id.p != NULL && (f.id.len == 0 || f.id.len > SL_EVENT_ID_MAX))
    return SL_EAGAIN;
  need_id = f.id.p == NULL;
  if (need_id)
    /* Same bytes, same id: a re-sent Beats event dedupes with 409. */
    sl_hash128_hex(sl_hash128(data, len), hid);
  rc = sl_buf_reserve(out, len + 2 * sizeof(hid) + sizeof(ts) + 32);
  if (rc == 0 && need_id && f.event_open >= 0) {
    /* {"event":{ + "id":"<hash>", + the rest */
    cut = (size_t)f.event_open + 1;
    rc = sl_buf_append(out, data, cut);
    if (rc == 0)
      rc = put_kv(out, "", "id", hid, f.event_empty ? "" : ",");
    pos = cut;
  }
  if (rc == 0)
    rc = sl_buf_append(out, data + pos, f.close - pos);
  members = !f.empty;
  if (rc == 0 && need_id && f.event_open < 0) {
    /* {...} + ,"event":{"id":"<hash>"} + } */
    rc = put_kv(out, members ? ",\"event\":{" : "\"event\":{", "id", hid,
                "}");
    members = 1;
  }
  if (rc == 0 && !f.has_timestamp) {
    /* Data streams refuse documents without @timestamp. */
    ts[sl_time_format_ms(sl_time_now_ns(), ts)] = '\0';
    rc = put_kv(out, members ? "," : "", "@timestamp", ts, "");
  }
  if (rc == 0)
    rc = sl_buf_append(out, data + f.close, len - f.close);
  if (rc == 0)
    rc = sl_buf_append_byte(out, '\n');
  if (rc)
    out->len = start;
  return rc;
}

int
sl_input_event_normalize(const char *data, size_t len, struct sl_buf *out)
{
  json_error_t jerr;
  json_t *o, *ev;
  char hid[33], ts[SL_TIME_RFC3339_MS_LEN + 1];
  size_t start = out->len;
  int modified = 0, rc;
  char *dump = NULL;

  rc = event_normalize_fast(data, len, out);
  if (rc != SL_EAGAIN)
    return rc;
  o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (o == NULL || !json_is_object(o)) {
    json_decref(o);
    return append_raw_event(data, len,
                            o ? "event is not a JSON object" : jerr.text, out);
  }

  if (sl_event_json_id(o).p == NULL) {
    /* Same bytes, same id: a re-sent Beats event dedupes with 409. */
    sl_hash128_hex(sl_hash128(data, len), hid);
    ev = json_object_get(o, "event");
    if (!json_is_object(ev)) {
      ev = json_object();
      if (ev == NULL || json_object_set_new(o, "event", ev) != 0) {
        rc = SL_ENOMEM;
        goto done;
      }
    }
    if (json_object_set_new(ev, "id", json_string(hid)) != 0) {
      rc = SL_ENOMEM;
      goto done;
    }
    modified = 1;
  }
  if (json_object_get(o, "@timestamp") == NULL) {
    /* Data streams refuse documents without @timestamp. */
    ts[sl_time_format_ms(sl_time_now_ns(), ts)] = '\0';
    if (json_object_set_new(o, "@timestamp", json_string(ts)) != 0) {
      rc = SL_ENOMEM;
      goto done;
    }
    modified = 1;
  }

  /* A spooled event must be one line; pretty-printed input is re-dumped. */
  if (modified || memchr(data, '\n', len) || memchr(data, '\r', len)) {
    dump = json_dumps(o, JSON_COMPACT);
    if (dump == NULL) {
      rc = SL_ENOMEM;
      goto done;
    }
    rc = sl_buf_append_str(out, dump);
  } else {
    rc = sl_buf_append(out, data, len);
  }
  if (rc == 0)
    rc = sl_buf_append_byte(out, '\n');

done:
  free(dump);
  json_decref(o);
  if (rc)
    out->len = start;
  return rc;
}

/* ---- acks --------------------------------------------------------------- */

static void
on_ack_written(uv_write_t *req, int status)
{
  free(req);
}

static void
send_ack(struct conn *c, uint32_t seq)
{
  struct {
    uv_write_t req;
    char frame[SL_LJ_HDR_LEN];
  } *w;
  uv_buf_t b;

  if (c->closing)
    return;
  if (c->tls) {
    char frame[SL_LJ_HDR_LEN];
    sl_lj_put_hdr(frame, SL_LJ_ACK, seq);
    if (sl_input_tls_write(c->tls, frame, sizeof(frame)) != 0) {
      conn_close(c, "TLS ack write failed", SL_EPIPE);
      return;
    }
    goto sent;
  }
  w = malloc(sizeof(*w));
  if (w == NULL) {
    conn_close(c, "out of memory for ack", SL_ENOMEM);
    return;
  }
  sl_lj_put_hdr(w->frame, SL_LJ_ACK, seq);
  b = uv_buf_init(w->frame, SL_LJ_HDR_LEN);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_ack_written) != 0) {
    free(w);
    conn_close(c, "ack write failed", SL_EPIPE);
    return;
  }
sent:
  c->in->st.acks++;
  c->last_ack_ms = uv_now(c->in->loop);
}

static void
part_free(struct part *p)
{
  sl_buf_free(&p->buf);
  free(p);
}

/* Give b's memory to the spares (or free it); b is left empty. */
static void
buf_recycle(struct sl_input *in, struct sl_buf *b)
{
  if (b->p != NULL && in->nspare < SPARE_MAX &&
      in->spare_bytes + b->cap <= SPARE_BYTES) {
    sl_buf_reset(b);
    in->spare_bytes += b->cap;
    in->spare[in->nspare++] = *b;
    sl_buf_init(b, 0);
    return;
  }
  sl_buf_free(b);
}

/* Make the empty b a spare buffer when there is one. */
static void
buf_reuse(struct sl_input *in, struct sl_buf *b)
{
  if (in->nspare == 0)
    return;
  sl_buf_free(b);
  *b = in->spare[--in->nspare];
  in->spare_bytes -= b->cap;
}

/* Ack every durable part at the head of the queue, in order. */
static void
flush_acks(struct conn *c)
{
  struct part *p;

  struct sl_list *l;

  while ((l = sl_list_first(&c->parts)) != NULL &&
         (p = sl_container_of(l, struct part, link))->state ==
             PART_DURABLE) {
    sl_list_remove(&p->link);
    send_ack(c, p->last_seq);
    part_free(p);
    if (c->closing)
      return;
  }
}

/* ---- spool hand-off ----------------------------------------------------- */

static void
pause_all(struct sl_input *in)
{
  struct sl_list *l, *tmp;
  struct conn *c;

  if (in->paused)
    return;
  in->paused = 1;
  in->st.paused = 1;
  sl_list_foreach(l, tmp, &in->conns) {
    c = sl_container_of(l, struct conn, link);
    if (c->reading && !c->closing) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
    }
  }
  sl_log(SL_LOG_WARN, "input", "spool full: intake paused", SL_LF_END);
}

static void
on_committed(void *arg, int status)
{
  struct part *p = arg;
  struct conn *c = p->c;

  if (c == NULL) {
    /* The connection went away; the sender will resend (same ids). */
    part_free(p);
    return;
  }
  if (status != 0) {
    /* Not durable (disk full, i/o error): keep it and retry on resume. */
    p->state = PART_WAITING;
    sl_log(SL_LOG_WARN, "input", "spool append failed; holding window",
           SL_LF_STR, "peer", c->peer, SL_LF_ERR, status, SL_LF_END);
    pause_all(c->in);
    return;
  }
  p->state = PART_DURABLE;
  buf_recycle(c->in, &p->buf);
  flush_acks(c);
}

static void
try_append(struct conn *c, struct part *p)
{
  int rc;

  if (c->in->paused)
    return;
  rc = sl_spool_append(c->in->spool, p->buf.p, p->buf.len, p->nevents,
                       on_committed, p);
  if (rc == 0) {
    p->state = PART_APPENDING;
    c->in->st.windows++;
    return;
  }
  if (rc == SL_EAGAIN) {
    pause_all(c->in);
    return;
  }
  sl_log(SL_LOG_ERROR, "input", "spool append error; holding window",
         SL_LF_STR, "peer", c->peer, SL_LF_ERR, rc, SL_LF_END);
  pause_all(c->in);
}

/* Close the part being built and queue it for the spool. */
static int
cut_part(struct conn *c)
{
  struct part *p;

  if (c->cur_events == 0)
    return 0;
  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return SL_ENOMEM;
  p->c = c;
  p->state = PART_WAITING;
  /* The part takes the built buffer; the connection goes on in a spare. */
  p->buf = c->cur;
  sl_buf_init(&c->cur, 0);
  buf_reuse(c->in, &c->cur);
  p->nevents = c->cur_events;
  p->last_seq = c->last_seq;
  c->cur_events = 0;
  sl_list_insert_tail(&c->parts, &p->link);
  try_append(c, p);
  return 0;
}

/* ---- reading ------------------------------------------------------------ */

static int
on_frame(void *arg, const struct sl_lj_frame *f)
{
  struct conn *c = arg;
  int rc;

  switch (f->type) {
  case SL_LJ_WINDOW:
    /* A new window: whatever is left of the previous one goes first. */
    rc = cut_part(c);
    if (rc)
      return rc;
    if (f->seq == 0)
      return SL_EPROTO;
    c->window = f->seq;
    c->got = 0;
    return 0;
  case SL_LJ_JSON:
  case SL_LJ_DATA:
    rc = sl_input_event_normalize(f->data, f->len, &c->cur);
    if (rc)
      return rc;
    c->in->st.events++;
    c->cur_events++;
    c->got++;
    c->last_seq = f->seq;
    if ((c->window && c->got >= c->window) ||
        c->cur.len >= c->in->flush_bytes) {
      rc = cut_part(c);
      if (c->window && c->got >= c->window) {
        c->window = 0;
        c->got = 0;
      }
    }
    return rc;
  case SL_LJ_ACK:
    /* Senders do not ack; ignore rather than punish. */
    return 0;
  default:
    return SL_EPROTO;
  }
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct conn *c = h->data;

  (void)hint;
  buf->base = c->in->rbuf;
  buf->len = sizeof(c->in->rbuf);
}

/* Decoded bytes (from the socket, or decrypted by input_tls) into frames.
 * Non-zero: close the connection; err says why when it can. */
static int
feed_plain(struct conn *c, const char *p, size_t n, char *err, size_t errlen)
{
  int rc;

  rc = sl_lj_dec_feed(c->dec, p, n, on_frame, c, err, errlen);
  if (rc)
    return rc;
  if (c->closing)
    return SL_ECLOSED;
  /* Without a W frame nobody tells us where a window ends: spool what came
   * in this read. */
  if (c->window == 0 && cut_part(c) != 0)
    conn_close(c, "out of memory", SL_ENOMEM);  /* not the sender's fault */
  return c->closing ? SL_ECLOSED : 0;
}

struct plain_arg {
  struct conn *c;
  char *err;
  size_t errlen;
};

static int
on_plain(void *arg, const char *p, size_t n)
{
  struct plain_arg *a = arg;

  return feed_plain(a->c, p, n, a->err, a->errlen);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  struct conn *c = s->data;
  struct plain_arg pa;
  char err[256];
  int rc;

  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread != UV_EOF)
      conn_close(c, "read error", (int)nread);
    else
      conn_close(c, "peer closed", 0);
    return;
  }
  c->in->st.bytes += (uint64_t)nread;
  c->last_rx_ms = uv_now(c->in->loop);
  err[0] = '\0';
  if (c->tls) {
    pa.c = c;
    pa.err = err;
    pa.errlen = sizeof(err);
    rc = sl_input_tls_feed(c->tls, buf->base, (size_t)nread, on_plain, &pa,
                           err, sizeof(err));
    if (rc == SL_EOF) {
      conn_close(c, "peer closed", 0);
      return;
    }
  } else if (!c->seen && buf->base[0] == 0x16) {
    /* A TLS ClientHello: the decoder would only see a bad version byte. */
    snprintf(err, sizeof(err), "TLS handshake on a plaintext port; enable "
             "ssl on the input or disable it on the sender");
    rc = SL_EPROTO;
  } else {
    rc = feed_plain(c, buf->base, (size_t)nread, err, sizeof(err));
  }
  c->seen = 1;
  if (rc == SL_ECLOSED && c->closing)
    return;
  if (rc) {
    c->in->st.protocol_errors++;
    if (err[0] == '\0')
      snprintf(err, sizeof(err), "%s", sl_strerror(rc));
    conn_close(c, err, rc);
  }
}

static void
start_reading(struct conn *c)
{
  if (c->reading || c->closing || c->in->paused)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) {
    c->reading = 1;
    /* Timers run before I/O polling in a loop iteration: without this a
     * connection resumed after a long pause could hit idle_timeout before
     * its waiting bytes are read. */
    c->last_rx_ms = uv_now(c->in->loop);
  }
}

/* ---- timers and lifecycle ---------------------------------------------- */

static void
on_timer(uv_timer_t *t)
{
  struct conn *c = t->data;
  uint64_t now = uv_now(c->in->loop);

  if (c->closing)
    return;
  if (!sl_list_empty(&c->parts)) {
    /* We are the ones holding the sender up: keep it patient. */
    if (now - c->last_ack_ms >= c->in->keepalive_ms)
      send_ack(c, 0);
    return;
  }
  if (!c->reading) {
    /* We stopped reading it (spool full): the silence is ours, not the
     * sender's, so it must not count towards idle_timeout. */
    c->last_rx_ms = now;
    return;
  }
  if (c->in->idle_timeout_ms && now - c->last_rx_ms >= c->in->idle_timeout_ms) {
    c->in->st.idle_closed++;
    conn_close(c, sl_lj_dec_pending(c->dec) ? "idle timeout in a partial frame"
                                           : "idle timeout", SL_ETIMEDOUT);
  }
}

static void
conn_free(struct conn *c)
{
  struct sl_input *in = c->in;

  sl_list_remove(&c->link);
  sl_lj_dec_free(c->dec);
  sl_input_tls_conn_free(c->tls);
  sl_buf_free(&c->cur);
  free(c);
  in->st.connections--;
  input_maybe_closed(in);
}

static void
on_handle_closed(uv_handle_t *h)
{
  struct conn *c = h->data;

  if (--c->handles == 0)
    conn_free(c);
}

static void
conn_close(struct conn *c, const char *reason, int err)
{
  struct sl_list *l, *tmp;
  struct part *p;

  if (c->closing)
    return;
  c->closing = 1;
  /* A quiet idle connection is routine (debug); one that stopped in the
   * middle of a frame is a broken or hostile sender (warn). */
  if (err && (err != SL_ETIMEDOUT || (c->dec && sl_lj_dec_pending(c->dec))))
    sl_log(SL_LOG_WARN, "input", "closing connection", SL_LF_STR, "peer",
           c->peer, SL_LF_STR, "reason", reason, SL_LF_ERR, err, SL_LF_END);
  else
    sl_log(SL_LOG_DEBUG, "input", "connection closed", SL_LF_STR, "peer",
           c->peer, SL_LF_STR, "reason", reason, SL_LF_END);
  /* Unacked parts: the sender resends them. Parts inside the spool's
   * commit stay alive until their callback (which then frees them). */
  sl_list_foreach(l, tmp, &c->parts) {
    p = sl_container_of(l, struct part, link);
    sl_list_remove(&p->link);
    if (p->state == PART_APPENDING)
      p->c = NULL;
    else
      part_free(p);
  }
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void
on_connection(uv_stream_t *server, int status)
{
  struct sl_input *in = server->data;
  struct sockaddr_storage ss;
  struct conn *c;
  int namelen = sizeof(ss);
  uint64_t tick;

  if (status < 0 || in->closing)
    return;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  c->in = in;
  sl_list_init(&c->parts);
  sl_buf_init(&c->cur, 0);
  uv_tcp_init(in->loop, &c->tcp);
  c->tcp.data = c;
  c->handles = 1;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
    sl_buf_free(&c->cur);
    return;
  }
  uv_timer_init(in->loop, &c->timer);
  c->timer.data = c;
  c->handles = 2;
  sl_list_insert_tail(&in->conns, &c->link);
  in->st.connections++;
  in->st.accepted++;
  snprintf(c->peer, sizeof(c->peer), "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &namelen) == 0) {
    char host[48] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
  }
  if (in->st.connections > in->max_connections) {
    in->st.rejected++;
    conn_close(c, "too many connections", SL_EAGAIN);
    return;
  }
  c->dec = sl_lj_dec_new(&in->lim);
  if (c->dec == NULL ||
      (in->tls && sl_input_tls_accept(in->tls, (uv_stream_t *)&c->tcp,
                                      c->peer, &c->tls) != 0)) {
    conn_close(c, "out of memory", SL_ENOMEM);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->last_rx_ms = c->last_ack_ms = uv_now(in->loop);
  /* Check idle/keep-alive a few times per period. */
  tick = in->keepalive_ms < in->idle_timeout_ms || !in->idle_timeout_ms
             ? in->keepalive_ms : in->idle_timeout_ms;
  tick = tick / 2 ? tick / 2 : 1;
  uv_timer_start(&c->timer, on_timer, tick, tick);
  start_reading(c);
}

/* ---- public ------------------------------------------------------------- */

static int
parse_listen(const char *s, struct sockaddr_storage *ss)
{
  char host[256];
  const char *colon = strrchr(s, ':');
  size_t hl;
  int port;

  if (colon == NULL)
    return SL_EINVAL;
  hl = (size_t)(colon - s);
  if (hl >= sizeof(host))
    return SL_EINVAL;
  memcpy(host, s, hl);
  host[hl] = '\0';
  port = atoi(colon + 1);
  if (port < 0 || port > 65535)
    return SL_EINVAL;
  if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
    host[hl - 1] = '\0';
    return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) ? SL_EINVAL : 0;
  }
  if (hl == 0)
    snprintf(host, sizeof(host), "0.0.0.0");
  return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? SL_EINVAL : 0;
}

int
sl_input_new(uv_loop_t *loop, const json_t *cfg, struct sl_spool *spool,
             struct sl_input **out, char *err, size_t errlen)
{
  struct sl_input *in;
  struct sockaddr_storage ss;
  const char *listen = sl_conf_str(cfg, "listen");
  int rc, namelen = sizeof(ss);

  in = calloc(1, sizeof(*in));
  if (in == NULL)
    return SL_ENOMEM;
  in->loop = loop;
  in->spool = spool;
  sl_list_init(&in->conns);
  sl_lj_limits_default(&in->lim);
  in->lim.max_frame = (uint32_t)sl_conf_int(cfg, "max_frame", in->lim.max_frame);
  in->lim.max_inflate = (uint64_t)sl_conf_int(cfg, "max_inflate",
                                              (int64_t)in->lim.max_inflate);
  in->lim.max_window = (uint32_t)sl_conf_int(cfg, "max_window",
                                             in->lim.max_window);
  in->max_connections = (uint64_t)sl_conf_int(cfg, "max_connections", 1024);
  in->idle_timeout_ms = (uint64_t)sl_conf_int(cfg, "idle_timeout", 60000);
  in->keepalive_ms = (uint64_t)sl_conf_int(cfg, "keepalive", 5000);
  if (in->keepalive_ms == 0)
    in->keepalive_ms = 5000;
  in->flush_bytes = (uint64_t)sl_conf_int(cfg, "flush_bytes", 4 << 20);

  if (listen == NULL || parse_listen(listen, &ss) != 0) {
    snprintf(err, errlen, "inputs: listen: bad address '%s'",
             listen ? listen : "(none)");
    free(in);
    return SL_ECONFIG;
  }
  rc = sl_input_tls_new(sl_conf_get(cfg, "ssl"), "inputs.ssl", &in->tls,
                        err, errlen);
  if (rc != 0) {
    free(in);
    return rc;
  }
  uv_tcp_init(loop, &in->listener);
  in->listener.data = in;
  rc = uv_tcp_bind(&in->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&in->listener, 511, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "inputs: listen %s: %s", listen, uv_strerror(rc));
    sl_input_tls_free(in->tls);
    uv_close((uv_handle_t *)&in->listener, (uv_close_cb)free);
    return rc;
  }
  if (uv_tcp_getsockname(&in->listener, (struct sockaddr *)&ss, &namelen) == 0)
    in->port = ntohs(ss.ss_family == AF_INET6
                         ? ((struct sockaddr_in6 *)&ss)->sin6_port
                         : ((struct sockaddr_in *)&ss)->sin_port);
  sl_log(SL_LOG_INFO, "input", "listening", SL_LF_STR, "listen", listen,
         SL_LF_INT, "port", (int64_t)in->port, SL_LF_STR, "tls",
         in->tls ? "on" : "off", SL_LF_END);
  *out = in;
  return 0;
}

int
sl_input_port(const struct sl_input *in)
{
  return in->port;
}

void
sl_input_resume(struct sl_input *in)
{
  struct sl_list *l, *tmp, *pl, *ptmp;
  struct conn *c;
  struct part *p;

  if (!in->paused || in->closing)
    return;
  in->paused = 0;
  in->st.paused = 0;
  sl_log(SL_LOG_INFO, "input", "spool has room: intake resumed", SL_LF_END);
  /* Held parts first, in connection order; stop if the spool refuses
   * again (try_append pauses once more). */
  sl_list_foreach(l, tmp, &in->conns) {
    c = sl_container_of(l, struct conn, link);
    sl_list_foreach(pl, ptmp, &c->parts) {
      p = sl_container_of(pl, struct part, link);
      if (in->paused)
        return;
      if (p->state == PART_WAITING && !c->closing)
        try_append(c, p);
    }
  }
  if (in->paused)
    return;
  sl_list_foreach(l, tmp, &in->conns)
    start_reading(sl_container_of(l, struct conn, link));
}

void
sl_input_stats(const struct sl_input *in, struct sl_input_stats *st)
{
  *st = in->st;
}

static void
input_maybe_closed(struct sl_input *in)
{
  void (*cb)(void *);

  if (!in->closing || !sl_list_empty(&in->conns) ||
      in->listener.data != NULL)
    return;
  cb = in->close_cb;
  void *arg = in->close_arg;
  while (in->nspare > 0)
    sl_buf_free(&in->spare[--in->nspare]);
  sl_input_tls_free(in->tls);
  free(in);
  if (cb)
    cb(arg);
}

static void
on_listener_closed(uv_handle_t *h)
{
  struct sl_input *in = h->data;

  in->listener.data = NULL;
  input_maybe_closed(in);
}

void
sl_input_close(struct sl_input *in, void (*cb)(void *arg), void *arg)
{
  struct sl_list *l, *tmp;

  in->closing = 1;
  in->close_cb = cb;
  in->close_arg = arg;
  sl_list_foreach(l, tmp, &in->conns)
    conn_close(sl_container_of(l, struct conn, link), "shutdown", 0);
  uv_close((uv_handle_t *)&in->listener, on_listener_closed);
}
