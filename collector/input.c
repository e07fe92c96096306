#include "input.h"

#include "event_scan.h"
#include "input_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_addr.h"
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
  /* Window limits: events and event bytes since the last W frame (or, for
   * a sender that never sent one, since the start of this read). An
   * announced window stays the limit until the next W. */
  uint32_t announced;      /* last W value; 0 = never sent one */
  uint32_t win_events;
  uint64_t win_bytes;
  uint64_t last_rx_ms, last_ack_ms;
  uint64_t frame_ms;       /* when the frame being received began, or
                              the last frame was delivered (frame_timeout) */
  char why[160];           /* a limit on_frame stopped at, for the log */
  char peer[64];
  /* For /debug/state (sl_input_state); per read or per part, never more
   * than a counter per event. */
  int64_t since_ns;        /* wall time of accept */
  uint64_t events, bytes, windows;  /* this connection's share of in->st */
  uint64_t rate_ms, rate_events;  /* sample at the last rate tick */
  double rate;             /* events/s between the last two rate ticks */
  int64_t lag_ms;          /* receive time minus @timestamp of the last
                              event of the newest part; -1 unknown */
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
  uv_tcp_t listener;        /* bound socket; accepted by accept_poll */
  uv_poll_t accept_poll;     /* our own accept loop: libuv's hides EMFILE */
  int polling;               /* accept_poll initialised (closed on close) */
  int reserve_fd;            /* /dev/null held for the EMFILE trick */
  uv_close_cb listener_cb;   /* after accept_poll and listener closed */
  struct sl_spool *spool;
  struct sl_lj_limits lim;
  struct sl_input_tls *tls;  /* NULL: plaintext (input_tls.h) */
  uint64_t max_connections;
  uint64_t max_window_bytes;
  struct sl_input_limits elim;
  uint64_t idle_timeout_ms;
  uint64_t frame_timeout_ms;
  uint64_t emfile_log_ms;   /* last "descriptors exhausted" log */
  uint64_t emfile_missed;   /* accept failures since that log */
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
static void on_acceptable(uv_poll_t *h, int status, int events);
static void try_append(struct conn *c, struct part *p);
static void input_maybe_closed(struct sl_input *in);

/* ---- event conversion -------------------------------------------------- */

/* A JSON string of s with every NUL byte as U+FFFD: "\u0000" is valid JSON,
 * but jansson (the indexer's and routing's slow paths) refuses it without
 * JSON_ALLOW_NUL, so a raw event carrying one would lose its id and route
 * (found by fuzz_input_normalize). */
static int
json_str_no_nul(struct sl_buf *out, const char *s, size_t n)
{
  const char *z;
  int rc;

  if (memchr(s, '\0', n) == NULL)
    return sl_json_str(out, s, n);
  rc = sl_buf_append_byte(out, '"');
  while (rc == 0 && n > 0) {
    z = memchr(s, '\0', n);
    rc = sl_json_escape(out, s, z ? (size_t)(z - s) : n);
    if (rc == 0 && z != NULL)
      rc = sl_buf_append(out, "\\ufffd", 6);
    if (z == NULL)
      break;
    n -= (size_t)(z - s) + 1;
    s = z + 1;
  }
  if (rc == 0)
    rc = sl_buf_append_byte(out, '"');
  return rc;
}

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
    rc = json_str_no_nul(out, data, len);
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

void
sl_input_limits_default(struct sl_input_limits *l)
{
  l->max_fields = 10000;
  l->max_depth = 64;
  l->ts_future_ms = 86400000LL;
  l->ts_past_ms = 36500LL * 86400000LL;
}

/* An event over max_fields/max_depth, or with an @timestamp outside the
 * window: why names the limit and its value; 0 when within. */
static int
over_shape(size_t nkeys, int depth, const struct sl_input_limits *lim,
           char *why, size_t wl)
{
  if (nkeys > lim->max_fields) {
    snprintf(why, wl, "event has %zu fields, over max_fields %llu", nkeys,
             (unsigned long long)lim->max_fields);
    return 1;
  }
  if (depth > lim->max_depth) {
    snprintf(why, wl, "event nests %d levels deep, over max_depth %d",
             depth, lim->max_depth);
    return 1;
  }
  return 0;
}

static int
ts_out_of_range(const char *p, size_t n, const struct sl_input_limits *lim,
                char *why, size_t wl)
{
  int64_t ns, now = sl_time_now_ns();

  /* Only a timestamp we can read is judged; ES judges the rest. Past
   * 2262 nanoseconds overflow int64: a "YYYY-" from then on is judged as
   * far ahead. */
  if (sl_time_parse_rfc3339(p, n, &ns) != 0) {
    if (n < 5 || p[4] != '-' || strspn(p, "0123456789") != 4 ||
        strncmp(p, "2262", 4) < 0)
      return 0;
    ns = INT64_MAX;
  }
  if (lim->ts_future_ms && ns > now &&
      (uint64_t)(ns - now) / 1000000u > (uint64_t)lim->ts_future_ms) {
    snprintf(why, wl, "@timestamp %.*s is ahead of the receive time by more "
             "than timestamp_max_future %lld ms", (int)(n < 40 ? n : 40), p,
             (long long)lim->ts_future_ms);
    return 1;
  }
  if (lim->ts_past_ms && ns < now &&
      (uint64_t)(now - ns) / 1000000u > (uint64_t)lim->ts_past_ms) {
    snprintf(why, wl, "@timestamp %.*s is behind the receive time by more "
             "than timestamp_max_past %lld ms", (int)(n < 40 ? n : 40), p,
             (long long)lim->ts_past_ms);
    return 1;
  }
  return 0;
}

/* The common case without a DOM and without any allocation besides `out`
 * (a buffer the connection reuses): the event is one line of JSON, so its
 * bytes go through as they came, with event.id spliced in when the sender
 * (a Beats client) did not set one and @timestamp appended when absent.
 * SL_EAGAIN: not sure, take the jansson path. */
static int
event_normalize_fast(const char *data, size_t len,
                     const struct sl_input_limits *lim, const char *id,
                     int64_t ts_ns, struct sl_buf *out, char *why,
                     size_t whylen)
{
  struct sl_event_fields f;
  char hid[33], ts[SL_TIME_RFC3339_MS_LEN + 1];
  size_t start = out->len, pos = 0, cut;
  int need_id, members, rc = 0;

  if (sl_event_scan(data, len, &f) != 0 || f.has_newline)
    return SL_EAGAIN;
  if (f.id.p != NULL && (f.id.len == 0 || f.id.len > SL_EVENT_ID_MAX))
    return SL_EAGAIN;
  if (over_shape(f.nkeys, f.depth, lim, why, whylen) ||
      (f.timestamp.p != NULL &&
       ts_out_of_range(f.timestamp.p, f.timestamp.len, lim, why, whylen)))
    return SL_EPARSE;
  need_id = f.id.p == NULL;
  if (need_id && id != NULL)
    snprintf(hid, sizeof(hid), "%s", id);
  else if (need_id)
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
    ts[sl_time_format_ms(ts_ns ? ts_ns : sl_time_now_ns(), ts)] = '\0';
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
  struct sl_input_limits lim;

  sl_input_limits_default(&lim);
  return sl_input_event_normalize_lim(data, len, &lim, out);
}

int
sl_input_event_normalize_lim(const char *data, size_t len,
                             const struct sl_input_limits *lim,
                             struct sl_buf *out)
{
  char why[JSON_ERROR_TEXT_LENGTH + 160];
  int rc;

  rc = sl_input_event_normalize_ex(data, len, lim, NULL, 0, out, why,
                                   sizeof(why));
  if (rc == SL_EPARSE)
    rc = append_raw_event(data, len, why, out);
  return rc;
}

int
sl_input_event_normalize_ex(const char *data, size_t len,
                            const struct sl_input_limits *lim,
                            const char *id, int64_t ts_ns,
                            struct sl_buf *out, char *why, size_t whylen)
{
  json_error_t jerr;
  json_t *o, *ev, *t;
  char hid[33], ts[SL_TIME_RFC3339_MS_LEN + 1];
  size_t start = out->len, nkeys;
  int modified = 0, rc, depth;
  char *dump = NULL;

  rc = event_normalize_fast(data, len, lim, id, ts_ns, out, why, whylen);
  if (rc != SL_EAGAIN)
    return rc;
  o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (o == NULL || !json_is_object(o)) {
    snprintf(why, whylen, "%s", o ? "event is not a JSON object" : jerr.text);
    json_decref(o);
    return SL_EPARSE;
  }
  sl_event_json_shape(o, &nkeys, &depth);
  t = json_object_get(o, "@timestamp");
  if (over_shape(nkeys, depth, lim, why, whylen) ||
      (json_is_string(t) &&
       ts_out_of_range(json_string_value(t), json_string_length(t), lim, why,
                       whylen))) {
    json_decref(o);
    return SL_EPARSE;
  }

  if (sl_event_json_id(o).p == NULL) {
    if (id != NULL)
      snprintf(hid, sizeof(hid), "%s", id);
    else
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
    ts[sl_time_format_ms(ts_ns ? ts_ns : sl_time_now_ns(), ts)] = '\0';
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

/* How far behind its source the sender is: now minus the @timestamp of
 * the last event of b (NDJSON, '\n' after each), -1 when unreadable.
 * Once per part, not per event; events of a window come in order, so
 * the last is the newest. Clock skew between hosts shows here too. */
static int64_t
part_lag_ms(const struct sl_buf *b)
{
  struct sl_event_fields f;
  const char *end, *start;
  int64_t ns, lag;

  if (b->len < 2)
    return -1;
  end = b->p + b->len - 1;
  start = memrchr(b->p, '\n', (size_t)(end - b->p));
  start = start ? start + 1 : b->p;
  if (sl_event_scan(start, (size_t)(end - start), &f) != 0 ||
      f.timestamp.p == NULL ||
      sl_time_parse_rfc3339(f.timestamp.p, f.timestamp.len, &ns) != 0)
    return -1;
  lag = (sl_time_now_ns() - ns) / 1000000;
  return lag > 0 ? lag : 0;
}

/* Close the part being built and queue it for the spool. */
static int
cut_part(struct conn *c)
{
  struct part *p;
  int64_t lag;

  if (c->cur_events == 0)
    return 0;
  lag = part_lag_ms(&c->cur);
  if (lag >= 0)
    c->lag_ms = lag;   /* an unreadable one keeps the last known */
  c->windows++;
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
    if (f->seq == 0) {
      snprintf(c->why, sizeof(c->why), "window of 0 events");
      return SL_EPROTO;
    }
    c->window = f->seq;
    c->got = 0;
    c->announced = f->seq;
    c->win_events = 0;
    c->win_bytes = 0;
    c->frame_ms = uv_now(c->in->loop);
    return 0;
  case SL_LJ_JSON:
  case SL_LJ_DATA:
    /* A sender gets what it announced, no more: events past its window
     * (or, without a W frame, past max_window in one read) and bytes past
     * max_window_bytes are how a decompression bomb made of valid events
     * shows, long before max_inflate. */
    c->frame_ms = uv_now(c->in->loop);
    c->win_events++;
    c->win_bytes += f->len;
    if (c->win_events > (c->announced ? c->announced : c->in->lim.max_window)) {
      if (c->announced)
        snprintf(c->why, sizeof(c->why), "more events than the window of %u "
                 "it announced (max_window %u)", c->announced,
                 c->in->lim.max_window);
      else
        snprintf(c->why, sizeof(c->why), "more than max_window %u events "
                 "without a window frame", c->in->lim.max_window);
      return SL_E2BIG;
    }
    if (c->win_bytes > c->in->max_window_bytes) {
      snprintf(c->why, sizeof(c->why), "window over max_window_bytes %llu",
               (unsigned long long)c->in->max_window_bytes);
      return SL_E2BIG;
    }
    rc = sl_input_event_normalize_lim(f->data, f->len, &c->in->elim,
                                      &c->cur);
    if (rc) {
      snprintf(c->why, sizeof(c->why), "cannot store an event: %s",
               sl_strerror(rc));
      return rc;
    }
    c->in->st.events++;
    c->events++;
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
  if (c->announced == 0) {
    c->win_events = 0;
    c->win_bytes = 0;
  }
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
  c->bytes += (uint64_t)nread;
  c->last_rx_ms = uv_now(c->in->loop);
  if (sl_lj_dec_pending(c->dec) == 0)
    c->frame_ms = c->last_rx_ms;    /* a new frame starts with this read */
  err[0] = '\0';
  c->why[0] = '\0';
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
    /* A limit of ours beats the decoder's "callback stopped" text. */
    if (c->why[0])
      snprintf(err, sizeof(err), "%s", c->why);
    else if (err[0] == '\0')
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
    c->last_rx_ms = c->frame_ms = uv_now(c->in->loop);
  }
}

/* ---- timers and lifecycle ---------------------------------------------- */

/* The per-connection rate is sampled by the connection timer (every
 * min(keepalive, idle_timeout, frame_timeout)/2, 2.5 s by default), at
 * most once per this many ms, so a tiny timeout does not make it noise. */
#define RATE_MIN_MS 1000

static void
on_timer(uv_timer_t *t)
{
  struct conn *c = t->data;
  uint64_t now = uv_now(c->in->loop);

  if (c->closing)
    return;
  if (now - c->rate_ms >= RATE_MIN_MS) {
    c->rate = (double)(c->events - c->rate_events) * 1000.0 /
              (double)(now - c->rate_ms);
    c->rate_ms = now;
    c->rate_events = c->events;
  }
  if (!sl_list_empty(&c->parts)) {
    /* We are the ones holding the sender up: keep it patient. */
    if (now - c->last_ack_ms >= c->in->keepalive_ms)
      send_ack(c, 0);
    return;
  }
  if (!c->reading) {
    /* We stopped reading it (spool full): the silence is ours, not the
     * sender's, so it must not count towards idle_timeout. */
    c->last_rx_ms = c->frame_ms = now;
    return;
  }
  if (c->in->idle_timeout_ms && now - c->last_rx_ms >= c->in->idle_timeout_ms) {
    char why[128];

    c->in->st.idle_closed++;
    snprintf(why, sizeof(why), "%s (idle_timeout %llu ms)",
             sl_lj_dec_pending(c->dec) ? "idle timeout in a partial frame"
                                       : "idle timeout",
             (unsigned long long)c->in->idle_timeout_ms);
    conn_close(c, why, SL_ETIMEDOUT);
    return;
  }
  /* Slow loris: a byte now and then keeps idle_timeout away, so a frame
   * must also complete within frame_timeout of its first byte (or of the
   * previous frame, for frames that follow each other in one stream). */
  if (c->in->frame_timeout_ms && sl_lj_dec_pending(c->dec) &&
      now - c->frame_ms >= c->in->frame_timeout_ms) {
    char why[128];

    c->in->st.idle_closed++;
    snprintf(why, sizeof(why), "frame not completed within frame_timeout "
             "%llu ms (slow sender)",
             (unsigned long long)c->in->frame_timeout_ms);
    conn_close(c, why, SL_ETIMEDOUT);
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

/* accept() failed with EMFILE/ENFILE: the waiting senders cannot be
 * taken, and a level-triggered listener would spin on them. Free the
 * reserve descriptor, take and close what waits (each sender sees a
 * reset and retries later), take the reserve again: the classic trick
 * (libuv does the same inside uv_listen, silently, hence our own accept
 * loop). Logged at most once per EMFILE_LOG_MS with the count dropped in
 * between, as a flood makes thousands. */
#define EMFILE_LOG_MS 10000u

static void
accept_failed(struct sl_input *in, uv_os_sock_t lfd, int err)
{
  uint64_t now = uv_now(in->loop);
  int fd;

  in->st.rejected++;
  in->emfile_missed++;
  if (in->reserve_fd >= 0) {
    close(in->reserve_fd);
    while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
      close(fd);
      in->st.rejected++;
      in->emfile_missed++;
    }
    in->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  if (in->emfile_log_ms && now - in->emfile_log_ms < EMFILE_LOG_MS)
    return;
  in->emfile_log_ms = now ? now : 1;
  sl_log(SL_LOG_ERROR, "input", "accept failed: out of file descriptors; "
         "connections dropped (raise ulimit -n or lower max_connections)",
         SL_LF_INT, "dropped", (int64_t)in->emfile_missed,
         SL_LF_INT, "connections", (int64_t)in->st.connections,
         SL_LF_INT, "max_connections", (int64_t)in->max_connections,
         SL_LF_ERR, err, SL_LF_END);
  in->emfile_missed = 0;
}

/* A socket accept4() gave us becomes a connection. */
static void
on_connection(struct sl_input *in, uv_os_sock_t fd)
{
  struct sockaddr_storage ss;
  struct conn *c;
  int namelen = sizeof(ss);
  uint64_t tick;

  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    close(fd);
    return;
  }
  c->in = in;
  sl_list_init(&c->parts);
  sl_buf_init(&c->cur, 0);
  uv_tcp_init(in->loop, &c->tcp);
  c->tcp.data = c;
  c->handles = 1;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
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
    char why[96];

    in->st.rejected++;
    snprintf(why, sizeof(why), "too many connections: over max_connections "
             "%llu", (unsigned long long)in->max_connections);
    conn_close(c, why, SL_EAGAIN);
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
  c->last_rx_ms = c->last_ack_ms = c->rate_ms = uv_now(in->loop);
  c->since_ns = sl_time_now_ns();
  c->lag_ms = -1;
  /* Check idle/keep-alive a few times per period. */
  tick = in->keepalive_ms < in->idle_timeout_ms || !in->idle_timeout_ms
             ? in->keepalive_ms : in->idle_timeout_ms;
  if (in->frame_timeout_ms && in->frame_timeout_ms < tick)
    tick = in->frame_timeout_ms;
  tick = tick / 2 ? tick / 2 : 1;
  uv_timer_start(&c->timer, on_timer, tick, tick);
  start_reading(c);
}

/* At most this many accepts per wakeup, so that a connection flood cannot
 * starve the reads of the connections already open (libuv reads 32 times
 * per stream per wakeup for the same reason). */
#define ACCEPTS_PER_WAKEUP 32

static void
on_acceptable(uv_poll_t *h, int status, int events)
{
  struct sl_input *in = h->data;
  uv_os_fd_t lfd;
  int i, fd;

  (void)events;
  if (status < 0 || in->closing || uv_fileno((uv_handle_t *)&in->listener,
                                             &lfd) != 0)
    return;
  for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      on_connection(in, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM)
      accept_failed(in, lfd, -errno);
    break;
  }
}

/* ---- public ------------------------------------------------------------- */

/* Descriptors kept for everything but senders: stdio, the loop's own
 * (epoll, signals, async), spool segments and cursor, Elasticsearch
 * connections (max_inflight per host, plus setup), the HTTP endpoint's
 * clients, libuv's reserve descriptor for the EMFILE trick, logs. */
#define FD_RESERVE 128

/* max_connections: as configured, else what ulimit -n leaves after
 * FD_RESERVE (896 for the usual 1024). A configured value that cannot fit
 * is kept (the operator may raise the limit later) but said loudly: past
 * it accept() fails with EMFILE, which is logged too. */
static uint64_t
max_connections(const json_t *cfg)
{
  struct rlimit rl;
  uint64_t fit = 896, n;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    fit = rl.rlim_cur > FD_RESERVE + 16 ? rl.rlim_cur - FD_RESERVE : 16;
  n = (uint64_t)sl_conf_int(cfg, "max_connections", (int64_t)fit);
  if (n > fit)
    sl_log(SL_LOG_WARN, "input", "max_connections does not fit the "
           "descriptor limit (ulimit -n); expect EMFILE under load",
           SL_LF_INT, "max_connections", (int64_t)n, SL_LF_INT, "fits",
           (int64_t)fit, SL_LF_INT, "nofile", (int64_t)rl.rlim_cur,
           SL_LF_END);
  return n;
}

/* listen() on the bound socket and watch it with our own poll handle (the
 * tcp handle only owns the descriptor: libuv never polls it). */
static int
listen_fd(struct sl_input *in, const struct sockaddr_storage *ss)
{
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  int lfd, one = 1, rc;

  lfd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return -errno;
  /* As uv_tcp_bind does: a restart must not wait out TIME_WAIT. */
  if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(lfd, (const struct sockaddr *)ss, len) != 0 ||
      listen(lfd, 511) != 0) {
    rc = -errno;
    close(lfd);
    return rc;
  }
  rc = uv_tcp_open(&in->listener, lfd);
  if (rc != 0) {
    close(lfd);
    return rc;
  }
  rc = uv_poll_init_socket(in->loop, &in->accept_poll, lfd);
  if (rc != 0)
    return rc;
  in->accept_poll.data = in;
  in->polling = 1;
  in->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return uv_poll_start(&in->accept_poll, UV_READABLE, on_acceptable);
}

/* The handle sits inside `in`: free the container, not the handle. */
static void
free_listener_owner(uv_handle_t *h)
{
  free(h->data);
}

static void
on_poll_closed(uv_handle_t *h)
{
  struct sl_input *in = h->data;

  uv_close((uv_handle_t *)&in->listener, in->listener_cb);
}

/* The poll handle first (it watches the listener's descriptor), then the
 * listener, then cb. */
static void
listener_close(struct sl_input *in, uv_close_cb cb)
{
  if (in->reserve_fd >= 0)
    close(in->reserve_fd);
  in->reserve_fd = -1;
  in->listener_cb = cb;
  if (in->polling)
    uv_close((uv_handle_t *)&in->accept_poll, on_poll_closed);
  else
    uv_close((uv_handle_t *)&in->listener, cb);
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
  in->lim.max_event = (uint32_t)sl_conf_int(cfg, "max_event_bytes",
                                            10 << 20);
  if (in->lim.max_event > in->lim.max_frame)
    in->lim.max_event = in->lim.max_frame;
  in->lim.max_ratio = (uint32_t)sl_conf_int(cfg, "max_inflate_ratio", 100);
  in->max_window_bytes = (uint64_t)sl_conf_int(cfg, "max_window_bytes",
                                               64LL << 20);
  sl_input_limits_default(&in->elim);
  in->elim.max_fields = (uint64_t)sl_conf_int(cfg, "max_fields",
                                              (int64_t)in->elim.max_fields);
  in->elim.max_depth = (int)sl_conf_int(cfg, "max_depth", in->elim.max_depth);
  in->elim.ts_future_ms = sl_conf_int(cfg, "timestamp_max_future",
                                      in->elim.ts_future_ms);
  in->elim.ts_past_ms = sl_conf_int(cfg, "timestamp_max_past",
                                    in->elim.ts_past_ms);
  in->max_connections = max_connections(cfg);
  in->idle_timeout_ms = (uint64_t)sl_conf_int(cfg, "idle_timeout", 60000);
  in->frame_timeout_ms = (uint64_t)sl_conf_int(cfg, "frame_timeout", 60000);
  in->keepalive_ms = (uint64_t)sl_conf_int(cfg, "keepalive", 5000);
  if (in->keepalive_ms == 0)
    in->keepalive_ms = 5000;
  in->flush_bytes = (uint64_t)sl_conf_int(cfg, "flush_bytes", 4 << 20);

  if (listen == NULL || sl_addr_parse_listen(listen, &ss) != 0) {
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
  in->reserve_fd = -1;
  rc = listen_fd(in, &ss);
  if (rc != 0) {
    snprintf(err, errlen, "inputs: listen %s: %s", listen, uv_strerror(rc));
    sl_input_tls_free(in->tls);
    in->tls = NULL;
    listener_close(in, free_listener_owner);
    return rc;
  }
  if (uv_tcp_getsockname(&in->listener, (struct sockaddr *)&ss, &namelen) == 0)
    in->port = ntohs(ss.ss_family == AF_INET6
                         ? ((struct sockaddr_in6 *)&ss)->sin6_port
                         : ((struct sockaddr_in *)&ss)->sin_port);
  sl_log(SL_LOG_INFO, "input", "listening", SL_LF_STR, "listen", listen,
         SL_LF_INT, "port", (int64_t)in->port, SL_LF_STR, "tls",
         in->tls ? "on" : "off", SL_LF_INT, "max_connections",
         (int64_t)in->max_connections, SL_LF_END);
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

json_t *
sl_input_state(const struct sl_input *in)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 1];
  int64_t now_ns = sl_time_now_ns();
  uint64_t now = uv_now(in->loop);
  json_t *o, *conns = json_array();
  const struct sl_list *l;

  for (l = in->conns.next; conns && l != &in->conns; l = l->next) {
    const struct conn *c = sl_container_of(l, struct conn, link);
    const struct sl_list *pl;
    size_t unacked = 0;

    if (c->closing)
      continue;
    for (pl = c->parts.next; pl != &c->parts; pl = pl->next)
      unacked++;
    ts[sl_time_format_ms(c->since_ns, ts)] = '\0';
    json_array_append_new(conns, json_pack(
        "{s:s, s:s, s:f, s:I, s:I, s:I, s:f, s:o, s:f, s:f, s:I, s:b}",
        "peer", c->peer, "connected_since", ts, "connected_seconds",
        (double)(now_ns - c->since_ns) / 1e9, "events",
        (json_int_t)c->events, "bytes", (json_int_t)c->bytes, "windows",
        (json_int_t)c->windows, "events_per_second", c->rate, "lag_seconds",
        c->lag_ms >= 0 ? json_real((double)c->lag_ms / 1000.0)
                       : json_null(),
        "idle_seconds", (double)(now - c->last_rx_ms) / 1000.0,
        "last_ack_seconds", (double)(now - c->last_ack_ms) / 1000.0,
        "unacked_parts", (json_int_t)unacked, "reading", c->reading));
  }
  o = json_pack("{s:s, s:i, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                "s:b, s:I, s:o}", "type", "lumberjack", "port", in->port,
                "tls", in->tls != NULL, "connections",
                (json_int_t)in->st.connections, "events",
                (json_int_t)in->st.events, "bytes", (json_int_t)in->st.bytes,
                "accepted", (json_int_t)in->st.accepted, "rejected",
                (json_int_t)in->st.rejected, "protocol_errors",
                (json_int_t)in->st.protocol_errors, "idle_closed",
                (json_int_t)in->st.idle_closed, "windows",
                (json_int_t)in->st.windows, "paused", in->paused,
                "max_connections", (json_int_t)in->max_connections,
                "agents", conns ? conns : json_array());
  return o;
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
  listener_close(in, on_listener_closed);
}
