/* worker.c - parse workers, batch building and compression. */
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bufpool.h"
#include "compress.h"
#include "mlstage.h"
#include "parse.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_lj.h"
#include "sl_log.h"
#include "sl_time.h"


/* Bytes of a W frame: version, type, u32. Reserved in front of plain J
 * frames so that level 0 batches are handed over without a copy. */
#define W_FRAME_LEN 6

#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define ATOMIC_SUB_ACQ(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_ACQ_REL)
#define ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

void
sl_batch_free(struct sl_batch *b)
{
  if (b == NULL)
    return;
  sl_bufpool_put_mem(b->pool, b->data, b->cap);
  free(b->refs);
  free(b);
}

static void
batch_drop_refs(struct sl_batch *b,
                void (*done)(void *arg, struct sl_tail_chunk *c), void *arg)
{
  uint32_t i;

  for (i = 0; i < b->nrefs; i++) {
    struct sl_wchunk *wc = b->refs[i].wc;
    if (ATOMIC_SUB_ACQ(&wc->refs, b->refs[i].drop) == 0) {
      if (done)
        done(arg, wc->c);
      free(wc);
    }
  }
  b->nrefs = 0;
}

void
sl_batch_release(struct sl_batch *b,
                 void (*done)(void *arg, struct sl_tail_chunk *c), void *arg)
{
  batch_drop_refs(b, done, arg);
  sl_batch_free(b);
}

void
sl_batch_discard(struct sl_batch *b)
{
  batch_drop_refs(b, NULL, NULL);
  sl_batch_free(b);
}

/* Drop the parse reference of a chunk that never reached a batch. */
static void
wchunk_discard(struct sl_wchunk *wc)
{
  if (ATOMIC_SUB_ACQ(&wc->refs, 1) == 0)
    free(wc);
}

/* ---- batcher ---------------------------------------------------------- */

static void
buf_truncate(struct sl_buf *b, size_t len)
{
  /* sl_buf has no truncate; shrinking len keeps every invariant. */
  b->len = len;
  if (b->p)
    b->p[len] = '\0';
}

static int
ev_start(struct sl_batcher *bt)
{
  sl_buf_reset(&bt->ev);
  if (bt->o.fmt == SL_FMT_LUMBERJACK && bt->o.level == 0) {
    static const char zero[W_FRAME_LEN];
    return sl_buf_append(&bt->ev, zero, sizeof(zero));
  }
  return SL_OK;
}

int
sl_batcher_init(struct sl_batcher *bt, const struct sl_batcher_opts *o,
                sl_batch_emit_cb emit, void *arg)
{
  memset(bt, 0, sizeof(*bt));
  bt->o = *o;
  sl_buf_init(&bt->z, 0);
  if (bt->o.max_events == 0)
    bt->o.max_events = 1;
  /* One event can be several times its line (escaping plus the ECS
   * envelope); the limit leaves room for the largest line on top of a
   * nearly full batch so that a single line never fails to fit. */
  bt->ev_max = bt->o.max_bytes + 8 * bt->o.max_line_bytes + (1u << 20);
  if (sl_bufpool_get(bt->o.pool, 0, bt->ev_max, &bt->ev))
    return SL_ENOMEM;
  if (bt->o.fmt == SL_FMT_LUMBERJACK && bt->o.level > 0 &&
      sl_compress_new(bt->o.level, &bt->zc) != SL_OK)
    return SL_ENOMEM;
  if (bt->o.ninputs) {
    bt->in = calloc(bt->o.ninputs, sizeof(*bt->in));
    if (bt->in == NULL)
      return SL_ENOMEM;
  }
  bt->emit = emit;
  bt->emit_arg = arg;
  sl_buf_init(&bt->tmp, 0);
  if (bt->o.filters || bt->o.redacts) {
    bt->md = sl_rx_md_new();
    if (bt->md == NULL || sl_redact_scratch_init(&bt->rs))
      return SL_ENOMEM;
  }
  return ev_start(bt);
}

void
sl_batcher_free(struct sl_batcher *bt)
{
  if (bt->cur)
    sl_batch_discard(bt->cur);
  bt->cur = NULL;
  sl_bufpool_put(bt->o.pool, &bt->ev);
  sl_buf_free(&bt->z);
  sl_compress_free(bt->zc);
  bt->zc = NULL;
  sl_buf_free(&bt->tmp);
  if (bt->md)
    pcre2_match_data_free(bt->md);
  bt->md = NULL;
  sl_redact_scratch_free(&bt->rs);
  free(bt->in);
  bt->in = NULL;
}

uint64_t
sl_batcher_open_since(const struct sl_batcher *bt)
{
  return bt->cur ? bt->cur->created_ms : 0;
}

static int
batch_add_ref(struct sl_batch *b, struct sl_wchunk *wc, uint32_t drop)
{
  if (b->nrefs && b->refs[b->nrefs - 1].wc == wc) {
    b->refs[b->nrefs - 1].drop += drop;
    return SL_OK;
  }
  if (b->nrefs == b->caprefs) {
    uint32_t n = b->caprefs ? b->caprefs * 2 : 8;
    struct sl_batch_ref *r = realloc(b->refs, n * sizeof(*r));
    if (r == NULL)
      return SL_ENOMEM;
    b->refs = r;
    b->caprefs = n;
  }
  b->refs[b->nrefs].wc = wc;
  b->refs[b->nrefs].drop = drop;
  b->nrefs++;
  return SL_OK;
}

static int
batch_open(struct sl_batcher *bt)
{
  if (bt->cur)
    return SL_OK;
  bt->cur = calloc(1, sizeof(*bt->cur));
  if (bt->cur == NULL)
    return SL_ENOMEM;
  bt->cur->created_ms = sl_time_mono_ms();
  return SL_OK;
}

/* Turn the event buffer into the batch's wire bytes. The bytes live in a
 * buffer lent by the pool and go back to it when the batch is freed, so a
 * steady stream of batches reuses the same few buffers (and their pages). */
static int
batch_seal(struct sl_batcher *bt, struct sl_batch *b)
{
  struct sl_buf out;
  int rc;

  b->data = NULL;
  b->len = b->cap = 0;
  b->pool = bt->o.pool;
  if (b->events == 0)
    return SL_OK;
  if (bt->o.fmt == SL_FMT_NDJSON ||
      (bt->o.fmt == SL_FMT_LUMBERJACK && bt->o.level == 0)) {
    size_t hint = bt->ev.len;
    if (bt->o.fmt == SL_FMT_LUMBERJACK) {
      /* Fill the reserved W frame in place. */
      sl_lj_put_hdr(bt->ev.p, SL_LJ_WINDOW, b->events);
    }
    /* Borrow the next event buffer first: on failure the open batch is
     * kept whole. Pre-sized like this batch: avoids a realloc chain. */
    rc = sl_bufpool_get(bt->o.pool, hint, bt->ev_max, &out);
    if (rc)
      return rc;
    b->data = bt->ev.p;
    b->len = bt->ev.len;
    b->cap = bt->ev.cap;
    bt->ev = out;
    return SL_OK;
  }
  {
    /* '2' 'C' u32 len, then a zlib stream (compress.h picks the fastest
     * backend for the level). Compressed into the batcher's scratch, then
     * copied into a pooled buffer of about its own size: a batch keeps
     * only what it sends (about 1/7 of the events at level 1) while it
     * waits for its ack, not a buffer sized for the uncompressed events. */
    size_t bound = sl_compress_bound(bt->zc, bt->ev.len), zn, want;
    rc = sl_buf_reserve(&bt->z, bound);
    if (rc)
      return rc;
    zn = sl_compress_zlib(bt->zc, bt->ev.p, bt->ev.len, bt->z.p,
                          bt->z.cap - 1);
    if (zn == 0 || zn > UINT32_MAX)
      return SL_EINTERNAL;
    want = 2 * SL_LJ_HDR_LEN + zn;
    rc = sl_bufpool_get(bt->o.pool, want, 2 * want, &out);
    if (rc)
      return rc;
    rc = sl_lj_enc_window(&out, b->events);
    if (rc)
      goto fail;
    sl_lj_put_hdr(out.p + out.len, SL_LJ_COMPRESSED, (uint32_t)zn);
    memcpy(out.p + out.len + SL_LJ_HDR_LEN, bt->z.p, zn);
    out.len += SL_LJ_HDR_LEN + zn;
    out.p[out.len] = '\0';  /* keep the sl_buf invariant */
  }
  b->data = out.p;
  b->len = out.len;
  b->cap = out.cap;
  return SL_OK;
fail:
  sl_bufpool_put(bt->o.pool, &out);
  return rc;
}

int
sl_batcher_flush(struct sl_batcher *bt)
{
  struct sl_batch *b = bt->cur;
  int rc;

  if (b == NULL)
    return SL_OK;
  rc = batch_seal(bt, b);
  if (rc) {
    /* Keep the open batch; its chunks stay unacknowledged. */
    sl_log(SL_LOG_ERROR, "worker", "cannot seal batch", SL_LF_ERR, rc,
           SL_LF_END);
    return rc;
  }
  bt->cur = NULL;
  bt->st.batches++;
  rc = ev_start(bt);
  bt->emit(bt->emit_arg, b);
  return rc;
}

/* Append one event for the line; flushes first when it would not fit. */
/* The event for one line, edited (filter.h) when `ed` is set. */
static int
write_event(struct sl_batcher *bt, const struct sl_tail_chunk *c,
            const char *line, size_t len, uint64_t off, unsigned flags,
            const struct sl_filter *ed)
{
  int rc;

  if (ed == NULL)
    return sl_parse_event(c->ctx, c->src, line, len, off, flags,
                          c->read_time_ns, &bt->ev);
  sl_buf_reset(&bt->tmp);
  rc = sl_parse_event(c->ctx, c->src, line, len, off, flags,
                      c->read_time_ns, &bt->tmp);
  if (rc == 0)
    rc = sl_filter_edit(ed, bt->tmp.p, bt->tmp.len, &bt->ev);
  /* A parser's event is always one object; should that ever break, ship
   * it unedited rather than lose it. */
  if (rc == SL_EPARSE)
    rc = sl_buf_append(&bt->ev, bt->tmp.p, bt->tmp.len);
  return rc;
}

static int
put_line(struct sl_batcher *bt, struct sl_wchunk *wc, const char *line,
         size_t len, uint64_t off, unsigned flags,
         const struct sl_filter *ed)
{
  const struct sl_tail_chunk *c = wc->c;
  size_t len0;
  int rc, tries;

  for (tries = 0; tries < 2; tries++) {
    len0 = bt->ev.len;
    rc = SL_OK;
    if (bt->o.fmt == SL_FMT_LUMBERJACK) {
      size_t lo = sl_lj_enc_json_begin(&bt->ev, bt->cur->events + 1, &rc);
      if (rc == 0)
        rc = write_event(bt, c, line, len, off, flags, ed);
      if (rc == 0)
        sl_lj_enc_json_end(&bt->ev, lo);
    } else {
      rc = write_event(bt, c, line, len, off, flags, ed);
      if (rc == 0)
        rc = sl_buf_append_byte(&bt->ev, '\n');
    }
    if (rc == 0) {
      bt->cur->events++;
      bt->cur->raw_bytes += len;
      return SL_OK;
    }
    buf_truncate(&bt->ev, len0);
    if (rc != SL_E2BIG || bt->cur->events == 0)
      break;
    /* The batch is full in bytes: ship it and retry in a fresh one. */
    rc = sl_batcher_flush(bt);
    if (rc == 0)
      rc = batch_open(bt);
    if (rc == 0)
      rc = batch_add_ref(bt->cur, wc, 1);
    if (rc)
      return rc;
    ATOMIC_ADD(&wc->refs, 1);
  }
  bt->st.failed++;
  sl_log(SL_LOG_WARN, "worker", "event dropped: does not fit a batch",
         SL_LF_STR, "path", c->src ? c->src->path : NULL,
         SL_LF_INT, "offset", (int64_t)off, SL_LF_ERR, rc, SL_LF_END);
  return rc == SL_ENOMEM ? rc : SL_OK;
}

static int
is_blank(const char *p, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t')
      return 0;
  return 1;
}

/* One event for [p, p+len) at file offset `off`: into the open batch,
 * shipping it first when it is full. */
static int
add_event(struct sl_batcher *bt, struct sl_wchunk *wc, const char *p,
          size_t len, uint64_t off, unsigned lflags)
{
  int idx = wc->c->input_index;
  const struct sl_filter *f = NULL;
  const struct sl_redact *r = NULL;
  const char *rp;
  size_t rlen;
  int rc;

  if (idx >= 0 && (size_t)idx < bt->o.ninputs) {
    f = bt->o.filters ? bt->o.filters[idx] : NULL;
    r = bt->o.redacts ? bt->o.redacts[idx] : NULL;
  }
  if (f && !sl_filter_keep(f, p, len, bt->md)) {
    bt->st.excluded++;
    return SL_OK;  /* acked with its chunk: the registry moves past it */
  }
  if (r) {
    rc = sl_redact_apply(r, &bt->rs, p, len, &rp, &rlen);
    if (rc < 0)
      return rc;
    if (rc == 1) {
      p = rp;
      len = rlen;
      lflags |= SL_LINE_REDACTED;
      bt->st.redacted++;
    }
  }
  if (f && !sl_filter_has_edits(f))
    f = NULL;
  if (bt->cur->events >= bt->o.max_events ||
      bt->ev.len >= bt->o.max_bytes) {
    rc = sl_batcher_flush(bt);
    if (rc == 0)
      rc = batch_open(bt);
    if (rc == 0)
      rc = batch_add_ref(bt->cur, wc, 1);
    if (rc)
      return rc;
    ATOMIC_ADD(&wc->refs, 1);
  }
  rc = put_line(bt, wc, p, len, off, lflags, f);
  if (rc)
    return rc;
  bt->st.events++;
  return SL_OK;
}

/* An event chunk of the multiline stage: records, one event each
 * (mlstage.h); lines were counted there. */
static int
add_records(struct sl_batcher *bt, struct sl_wchunk *wc)
{
  const struct sl_tail_chunk *c = wc->c;
  const char *p = c->data, *end = c->data + c->len;
  struct sl_ml_rec r;
  int rc;

  while ((size_t)(end - p) >= sizeof(r)) {
    memcpy(&r, p, sizeof(r));
    rc = add_event(bt, wc, p + sizeof(r), r.len, r.offset, r.flags);
    if (rc)
      return rc;
    p += SL_ML_REC_SIZE(r.len);
  }
  return SL_OK;
}

static int
batcher_add(struct sl_batcher *bt, struct sl_wchunk *wc)
{
  const struct sl_tail_chunk *c = wc->c;
  const char *p = c->data, *end = c->data + c->len, *nl;
  size_t ci = 0;
  uint64_t shift = 0;  /* file bytes of cut lines left out so far */
  int rc;

  rc = batch_open(bt);
  if (rc == 0)
    rc = batch_add_ref(bt->cur, wc, 1);
  if (rc)
    return rc;
  ATOMIC_ADD(&wc->refs, 1);

  if (c->flags & SL_CHUNK_EVENTS) {
    rc = add_records(bt, wc);
    if (rc)
      return rc;
    p = end;
  }
  while (p < end) {
    size_t len, at = (size_t)(p - c->data);
    uint64_t off = c->offset + at + shift;
    unsigned lflags = 0;

    if (ci < c->ncuts && c->cuts[ci].at == at) {
      /* Cut at max_line_bytes (tail.h); the lines after it sit further
       * into the file than their place in data. */
      lflags = SL_LINE_TRUNCATED;
      shift += c->cuts[ci].skip;
      ci++;
    }
    if (c->flags & SL_CHUNK_NO_NL) {
      /* Exactly one line, however it ends. */
      if (c->flags & SL_CHUNK_TRUNCATED)
        lflags = SL_LINE_TRUNCATED;
      len = (size_t)(end - p);
      if (p[len - 1] == '\n')
        len--;
      nl = end - 1;
    } else {
      nl = memchr(p, '\n', (size_t)(end - p));
      if (nl == NULL)
        nl = end - 1;  /* a last line without newline: take it whole */
      len = (size_t)(nl - p) + (*nl != '\n');
    }
    if (len && p[len - 1] == '\r')
      len--;
    bt->st.lines++;
    if (len == 0 || is_blank(p, len)) {
      bt->st.empty++;
    } else {
      rc = add_event(bt, wc, p, len, off, lflags);
      if (rc)
        return rc;
    }
    p = nl + 1;
  }
  /* The parse reference moves to the batch holding the last line. */
  bt->cur->refs[bt->cur->nrefs - 1].drop += 1;
  if (bt->o.free_data) {
    /* Every event now lives in batches; the raw bytes are not needed
     * until the ack, so give them back now. Memory under backpressure is
     * then the (compressed) batches, not the input twice over, and the
     * read window goes back to tail's pool for the next read. tail's
     * accounting keeps counting c->len until sl_tail_chunk_done. */
    sl_tail_chunk_free_data(wc->c);
  }
  if (bt->cur->events >= bt->o.max_events || bt->ev.len >= bt->o.max_bytes)
    return sl_batcher_flush(bt);
  return SL_OK;
}

/* The per-input counts move once per chunk (a chunk is one input's), by
 * the difference of the batcher's totals. */
int
sl_batcher_add(struct sl_batcher *bt, struct sl_wchunk *wc)
{
  uint64_t lines = bt->st.lines, events = bt->st.events;
  int idx = wc->c->input_index, rc;
  struct sl_input_counts *ic;

  rc = batcher_add(bt, wc);
  if (bt->in && idx >= 0 && (size_t)idx < bt->o.ninputs) {
    ic = &bt->in[idx];
    __atomic_store_n(&ic->lines, ic->lines + (bt->st.lines - lines),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&ic->events, ic->events + (bt->st.events - events),
                     __ATOMIC_RELAXED);
  }
  return rc;
}

/* ---- pool ------------------------------------------------------------- */

struct worker {
  struct sl_workers *pool;
  pthread_t tid;
  int started;
  struct sl_batcher bt;
  struct sl_batcher_stats pub;  /* published counters (atomic reads) */
};

struct sl_workers {
  struct sl_workers_opts o;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct sl_list in;             /* input queue: sl_wchunk.link */
  uint64_t queued_bytes;
  int stop, drain;
  int want_room;                  /* a push was refused */
  int room;                       /* tell the loop (under omu) */

  pthread_mutex_t omu;            /* output list */
  struct sl_batchq out;           /* made by workers, for the loop */
  uv_async_t async;
  struct sl_bufpool *bufs;        /* batch buffers; outlives the pool
                                     until the last batch is freed */

  int n;
  struct worker w[SL_AGENT_MAX_WORKERS];
};

static void
emit_batch(void *arg, struct sl_batch *b)
{
  struct worker *wk = arg;
  struct sl_workers *p = wk->pool;

  pthread_mutex_lock(&p->omu);
  sl_batchq_push(&p->out, b);
  pthread_mutex_unlock(&p->omu);
  uv_async_send(&p->async);
}

static void
publish(struct worker *wk)
{
  __atomic_store_n(&wk->pub.lines, wk->bt.st.lines, __ATOMIC_RELAXED);
  __atomic_store_n(&wk->pub.events, wk->bt.st.events, __ATOMIC_RELAXED);
  __atomic_store_n(&wk->pub.failed, wk->bt.st.failed, __ATOMIC_RELAXED);
  __atomic_store_n(&wk->pub.empty, wk->bt.st.empty, __ATOMIC_RELAXED);
  __atomic_store_n(&wk->pub.batches, wk->bt.st.batches, __ATOMIC_RELAXED);
  __atomic_store_n(&wk->pub.excluded, wk->bt.st.excluded, __ATOMIC_RELAXED);
  __atomic_store_n(&wk->pub.redacted, wk->bt.st.redacted, __ATOMIC_RELAXED);
}

static void
deadline_ts(uint64_t mono_deadline_ms, struct timespec *ts)
{
  uint64_t now = sl_time_mono_ms();
  uint64_t wait = mono_deadline_ms > now ? mono_deadline_ms - now : 0;

  /* The condition variable runs on CLOCK_MONOTONIC (see start). */
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_sec += (time_t)(wait / 1000);
  ts->tv_nsec += (long)(wait % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void
flush_or_log(struct worker *wk)
{
  if (sl_batcher_flush(&wk->bt))
    sl_log(SL_LOG_ERROR, "worker", "flush failed", SL_LF_END);
}

static void *
worker_main(void *arg)
{
  struct worker *wk = arg;
  struct sl_workers *p = wk->pool;
  struct sl_wchunk *wc;
  uint64_t since;

  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    struct sl_list *e = sl_list_pop(&p->in);

    if (e) {
      wc = sl_container_of(e, struct sl_wchunk, link);
      p->queued_bytes -= wc->c->len;
      if (p->want_room && p->queued_bytes <= p->o.max_queue_bytes / 2) {
        p->want_room = 0;
        pthread_mutex_lock(&p->omu);
        p->room = 1;
        pthread_mutex_unlock(&p->omu);
        uv_async_send(&p->async);
      }
      pthread_mutex_unlock(&p->mu);
      if (sl_batcher_add(&wk->bt, wc))
        sl_log(SL_LOG_ERROR, "worker", "out of memory building a batch",
               SL_LF_END);
      since = sl_batcher_open_since(&wk->bt);
      if (since && sl_time_mono_ms() >= since + p->o.flush_interval_ms)
        flush_or_log(wk);
      publish(wk);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    since = sl_batcher_open_since(&wk->bt);
    if (since &&
        (p->drain || sl_time_mono_ms() >= since + p->o.flush_interval_ms)) {
      pthread_mutex_unlock(&p->mu);
      flush_or_log(wk);
      publish(wk);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    if (since) {
      struct timespec ts;
      deadline_ts(since + p->o.flush_interval_ms, &ts);
      pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    } else {
      pthread_cond_wait(&p->cv, &p->mu);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static void
async_cb(uv_async_t *h)
{
  struct sl_workers *p = h->data;
  struct sl_batchq q;
  struct sl_batch *b;
  int room;

  sl_batchq_init(&q);
  pthread_mutex_lock(&p->omu);
  sl_batchq_move_all(&q, &p->out);
  room = p->room;
  p->room = 0;
  pthread_mutex_unlock(&p->omu);
  while ((b = sl_batchq_pop(&q)) != NULL)
    p->o.ready(p->o.arg, b);
  if (room && p->o.room)
    p->o.room(p->o.arg);
}

static void
free_pool(struct sl_workers *p)
{
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->omu);
  free(p);
}

int
sl_workers_start(const struct sl_workers_opts *o, struct sl_workers **out)
{
  struct sl_workers *p;
  pthread_condattr_t ca;
  int i, rc;

  if (o->n < 1 || o->n > SL_AGENT_MAX_WORKERS)
    return SL_EINVAL;
  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return SL_ENOMEM;
  sl_batchq_init(&p->out);
  sl_list_init(&p->in);
  p->o = *o;
  if (o->max_pool_bytes) {
    /* A handful per worker plus what the queue can hold: batches are
     * ~1 MiB, so the byte bound is what normally limits it. */
    rc = sl_bufpool_new((size_t)o->max_pool_bytes, 64, &p->bufs);
    if (rc) {
      free(p);
      return rc;
    }
    p->o.b.pool = p->bufs;
  }
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->omu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  rc = uv_async_init(o->loop, &p->async, async_cb);
  if (rc) {
    sl_bufpool_close(p->bufs);
    free_pool(p);
    return rc;
  }
  p->async.data = p;
  for (i = 0; i < o->n; i++) {
    struct worker *wk = &p->w[i];
    wk->pool = p;
    rc = sl_batcher_init(&wk->bt, &p->o.b, emit_batch, wk);
    if (rc == 0)
      rc = pthread_create(&wk->tid, NULL, worker_main, wk) ? SL_ENOMEM : 0;
    if (rc) {
      sl_batcher_free(&wk->bt);
      p->n = i;
      sl_workers_stop(p);
      return rc;
    }
    wk->started = 1;
    p->n = i + 1;
  }
  *out = p;
  return SL_OK;
}

int
sl_workers_push(struct sl_workers *p, struct sl_wchunk *wc)
{
  int rc = SL_OK;

  pthread_mutex_lock(&p->mu);
  /* An empty queue always takes one chunk so that a chunk larger than
   * the limit (one long line) still moves. */
  if (!sl_list_empty(&p->in) &&
      p->queued_bytes + wc->c->len > p->o.max_queue_bytes) {
    p->want_room = 1;
    rc = SL_EAGAIN;
  } else {
    sl_list_insert_tail(&p->in, &wc->link);
    p->queued_bytes += wc->c->len;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

void
sl_workers_drain(struct sl_workers *p)
{
  pthread_mutex_lock(&p->mu);
  p->drain = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void
sl_workers_stats(struct sl_workers *p, struct sl_batcher_stats *st)
{
  int i;

  memset(st, 0, sizeof(*st));
  for (i = 0; i < p->n; i++) {
    struct sl_batcher_stats *s = &p->w[i].pub;
    st->lines += ATOMIC_LOAD(&s->lines);
    st->events += ATOMIC_LOAD(&s->events);
    st->failed += ATOMIC_LOAD(&s->failed);
    st->empty += ATOMIC_LOAD(&s->empty);
    st->batches += ATOMIC_LOAD(&s->batches);
    st->excluded += ATOMIC_LOAD(&s->excluded);
    st->redacted += ATOMIC_LOAD(&s->redacted);
  }
}

void
sl_workers_input_stats(struct sl_workers *p, size_t idx,
                       struct sl_input_counts *out)
{
  int i;

  memset(out, 0, sizeof(*out));
  for (i = 0; i < p->n; i++) {
    const struct sl_batcher *bt = &p->w[i].bt;

    if (bt->in == NULL || idx >= bt->o.ninputs)
      continue;
    out->lines += ATOMIC_LOAD(&bt->in[idx].lines);
    out->events += ATOMIC_LOAD(&bt->in[idx].events);
  }
}

static void
async_closed(uv_handle_t *h)
{
  free_pool(h->data);
}

void
sl_workers_stop(struct sl_workers *p)
{
  struct sl_list *e;
  struct sl_batch *b;
  int i;

  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < p->n; i++) {
    if (p->w[i].started)
      pthread_join(p->w[i].tid, NULL);
    sl_batcher_free(&p->w[i].bt);
  }
  while ((e = sl_list_pop(&p->in)) != NULL)
    wchunk_discard(sl_container_of(e, struct sl_wchunk, link));
  while ((b = sl_batchq_pop(&p->out)) != NULL)
    sl_batch_discard(b);
  /* Batches still queued in the agent or an output keep it alive. */
  sl_bufpool_log(p->bufs, "worker");
  sl_bufpool_close(p->bufs);
  p->bufs = NULL;
  uv_close((uv_handle_t *)&p->async, async_closed);
}
