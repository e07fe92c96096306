/* mlstage.c - line aggregation stage (mlstage.h). Loop thread only. */
#include "mlstage.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_list.h"
#include "sl_log.h"

/* How often pending groups are checked for their timeout; a group is
 * shipped at most this much later than `timeout` says. */
#define TICK_MS 100

/* Buckets of the file index (by sl_src pointer): with multiline every
 * active file holds its last group, so thousands of files can have state
 * at once; 4096 chains keep a lookup per chunk short for 10,000 files. */
#define NBUCKETS 4096

struct held {
  struct sl_list link;          /* mlf.held, file order */
  struct sl_tail_chunk *c;
};

struct ech {
  struct sl_tail_chunk pub;     /* what the workers see; pub.priv = this */
  struct sl_list link;          /* mlf.outs, or st->parked */
  struct mlf *f;
  uint64_t min_off;             /* smallest event offset inside */
  struct sl_buf data;           /* records while being built */
};

/* One file with something held, pending or out. */
struct mlf {
  struct sl_list link;          /* st->files */
  struct mlf *hnext;            /* st->buckets chain */
  struct sl_mlstage *st;
  const struct sl_src *src;     /* valid while a held chunk exists */
  const struct sl_parse_ctx *ctx;
  int input_index;
  struct sl_ml *ml;
  uint64_t timeout_ms;
  struct sl_list held;          /* struct held */
  struct sl_list outs;          /* struct ech pushed or parked */
  struct ech *cur;              /* being filled */
  uint64_t consumed;            /* end of the last line fed */
  uint64_t last_ms;             /* loop time of the last line fed */
  uint64_t frozen;              /* drain: never past the pending group */
  int draining;
};

struct sl_mlstage {
  struct sl_mlstage_opts o;
  uv_timer_t timer;
  int ticking;
  int draining;
  struct sl_list files;
  struct mlf *buckets[NBUCKETS];
  struct sl_list parked;        /* struct ech refused by the workers */
  struct sl_mlstage_stats stats;
};

static int64_t
wall_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const struct sl_ml_conf *
conf_of(const struct sl_mlstage *st, int idx)
{
  if (idx < 0 || (size_t)idx >= st->o.nconfs)
    return NULL;
  return st->o.confs[idx];
}

int
sl_mlstage_wants(const struct sl_mlstage *st, const struct sl_tail_chunk *c)
{
  return conf_of(st, c->input_index) != NULL;
}

/* ---- event chunks ------------------------------------------------------ */

static void
ech_free(struct ech *e)
{
  sl_buf_free(&e->data);
  free(e->pub.data);
  free(e);
}

static int
emit_cb(void *arg, const char *p, size_t len, uint64_t off, unsigned flags)
{
  struct mlf *f = arg;
  struct sl_ml_rec r;
  struct ech *e = f->cur;
  size_t i, pad;
  static const char zero[8];
  int rc;

  for (i = 0; i < len && (p[i] == ' ' || p[i] == '\t'); i++)
    ;
  if (i == len)
    return 0;  /* blank: no event, as the line splitter does */
  if (len > UINT32_MAX)
    len = UINT32_MAX;
  if (e == NULL) {
    e = calloc(1, sizeof(*e));
    if (e == NULL)
      return SL_ENOMEM;
    sl_buf_init(&e->data, 0);
    e->f = f;
    e->min_off = off;
    e->pub.src = f->src;
    e->pub.ctx = f->ctx;
    e->pub.input_index = f->input_index;
    e->pub.offset = off;
    e->pub.flags = SL_CHUNK_EVENTS;
    e->pub.priv = e;
    sl_list_init(&e->link);
    f->cur = e;
  }
  r.offset = off;
  r.len = (uint32_t)len;
  r.flags = flags;
  pad = SL_ML_REC_SIZE(len) - sizeof(r) - len;
  rc = sl_buf_append(&e->data, &r, sizeof(r));
  if (rc == 0)
    rc = sl_buf_append(&e->data, p, len);
  if (rc == 0)
    rc = sl_buf_append(&e->data, zero, pad);
  if (rc)
    return rc;
  if (off < e->min_off)
    e->min_off = off;
  f->st->stats.events++;
  if (flags & SL_LINE_MULTILINE)
    f->st->stats.joined++;
  return 0;
}

/* Send the event chunk being built (or park it). */
static void
ech_ship(struct mlf *f)
{
  struct sl_mlstage *st = f->st;
  struct ech *e = f->cur;
  size_t n;

  if (e == NULL)
    return;
  f->cur = NULL;
  e->pub.read_time_ns = wall_ns();
  e->pub.data = sl_buf_take(&e->data, &n);
  e->pub.len = n;
  e->pub.cap = n;
  e->pub.end_offset = e->pub.offset;  /* unused: acks go through here */
  sl_list_insert_tail(&f->outs, &e->link);
  if (!sl_list_empty(&st->parked) || st->o.push(st->o.arg, &e->pub)) {
    /* Keep order: behind what already waits. The link moves to parked;
     * the file still counts it through min_off (see frontier). */
    sl_list_remove(&e->link);
    sl_list_insert_tail(&st->parked, &e->link);
  }
}

/* ---- per-file state and acknowledgement -------------------------------- */

static size_t
bucket_of(const struct sl_src *src)
{
  uint64_t h = (uint64_t)(uintptr_t)src * 0x9e3779b97f4a7c15ull;

  return (size_t)(h >> 52) & (NBUCKETS - 1);
}

static struct mlf *
file_find(struct sl_mlstage *st, const struct sl_src *src)
{
  struct mlf *f;

  for (f = st->buckets[bucket_of(src)]; f; f = f->hnext)
    if (f->src == src)
      return f;
  return NULL;
}

static struct mlf *
file_get(struct sl_mlstage *st, const struct sl_tail_chunk *c)
{
  const struct sl_ml_conf *conf = conf_of(st, c->input_index);
  struct mlf *f = file_find(st, c->src);

  if (f)
    return f;
  f = calloc(1, sizeof(*f));
  if (f == NULL)
    return NULL;
  if (sl_ml_new(conf, emit_cb, f, &f->ml)) {
    free(f);
    return NULL;
  }
  f->st = st;
  f->src = c->src;
  f->ctx = c->ctx;
  f->input_index = c->input_index;
  f->timeout_ms = sl_ml_conf_timeout_ms(conf);
  f->frozen = UINT64_MAX;
  sl_list_init(&f->held);
  sl_list_init(&f->outs);
  sl_list_insert_tail(&st->files, &f->link);
  f->hnext = st->buckets[bucket_of(f->src)];
  st->buckets[bucket_of(f->src)] = f;
  return f;
}

static void
file_free(struct mlf *f)
{
  struct mlf **pp = &f->st->buckets[bucket_of(f->src)];
  struct sl_list *l;

  while (*pp != f)
    pp = &(*pp)->hnext;
  *pp = f->hnext;
  sl_list_remove(&f->link);
  while ((l = sl_list_pop(&f->held)) != NULL)
    free(sl_container_of(l, struct held, link));
  while ((l = sl_list_pop(&f->outs)) != NULL)
    ech_free(sl_container_of(l, struct ech, link));
  if (f->cur)
    ech_free(f->cur);
  sl_ml_free(f->ml);
  free(f);
}

/* The smallest offset not known to be acknowledged (see mlstage.h). */
static uint64_t
frontier(struct mlf *f)
{
  struct sl_mlstage *st = f->st;
  struct sl_list *l, *nx;
  uint64_t a = f->consumed, p = sl_ml_pending_offset(f->ml);

  if (p < a)
    a = p;
  if (f->frozen < a)
    a = f->frozen;
  if (f->cur && f->cur->min_off < a)
    a = f->cur->min_off;
  sl_list_foreach(l, nx, &f->outs) {
    struct ech *e = sl_container_of(l, struct ech, link);
    if (e->min_off < a)
      a = e->min_off;
  }
  /* Parked event chunks of this file count too. */
  sl_list_foreach(l, nx, &st->parked) {
    struct ech *e = sl_container_of(l, struct ech, link);
    if (e->f == f && e->min_off < a)
      a = e->min_off;
  }
  return a;
}

/* Release what the frontier allows; frees f when nothing is left. */
static void
file_settle(struct mlf *f)
{
  struct sl_mlstage *st = f->st;
  uint64_t a = frontier(f);
  struct sl_list *l;
  struct held *h;
  int busy;

  while ((l = sl_list_first(&f->held)) != NULL) {
    h = sl_container_of(l, struct held, link);
    if (h->c->end_offset <= a) {
      sl_list_remove(l);
      st->o.done(st->o.arg, h->c);
      free(h);
      continue;
    }
    if (h->c->offset < a && st->o.progress)
      st->o.progress(st->o.arg, h->c, a);
    break;
  }
  busy = f->cur != NULL || !sl_list_empty(&f->outs);
  if (!busy) {
    struct sl_list *pl, *nx;
    sl_list_foreach(pl, nx, &st->parked)
      if (sl_container_of(pl, struct ech, link)->f == f)
        busy = 1;
  }
  if (f->draining && !busy) {
    /* Everything before the pending group is acked: the rest stays for
     * the next start. */
    while ((l = sl_list_pop(&f->held)) != NULL) {
      h = sl_container_of(l, struct held, link);
      st->o.abandon(st->o.arg, h->c);
      free(h);
    }
  }
  if (!busy && sl_list_empty(&f->held) &&
      sl_ml_pending_offset(f->ml) == UINT64_MAX)
    file_free(f);
}

/* ---- timeouts ---------------------------------------------------------- */

static void
tick(uv_timer_t *t)
{
  struct sl_mlstage *st = t->data;
  uint64_t now = uv_now(st->o.loop);
  struct sl_list *l, *nx;
  int any = 0;

  sl_list_foreach(l, nx, &st->files) {
    struct mlf *f = sl_container_of(l, struct mlf, link);
    if (sl_ml_pending_offset(f->ml) == UINT64_MAX)
      continue;
    if (now - f->last_ms < f->timeout_ms) {
      any = 1;
      continue;
    }
    if (sl_ml_flush(f->ml))
      sl_log(SL_LOG_ERROR, "multiline", "out of memory flushing a group",
             SL_LF_STR, "path", f->src->path, SL_LF_END);
    st->stats.timeouts++;
    ech_ship(f);
    file_settle(f);
  }
  if (!any) {
    uv_timer_stop(&st->timer);
    st->ticking = 0;
  }
}

static void
tick_start(struct sl_mlstage *st)
{
  if (st->ticking || st->draining)
    return;
  st->ticking = 1;
  uv_timer_start(&st->timer, tick, TICK_MS, TICK_MS);
}

/* ---- API --------------------------------------------------------------- */

int
sl_mlstage_new(const struct sl_mlstage_opts *o, struct sl_mlstage **out)
{
  struct sl_mlstage *st = calloc(1, sizeof(*st));
  int rc;

  if (st == NULL)
    return SL_ENOMEM;
  st->o = *o;
  sl_list_init(&st->files);
  sl_list_init(&st->parked);
  rc = uv_timer_init(o->loop, &st->timer);
  if (rc) {
    free(st);
    return rc;
  }
  st->timer.data = st;
  *out = st;
  return SL_OK;
}

int
sl_mlstage_chunk(struct sl_mlstage *st, struct sl_tail_chunk *c)
{
  const char *p, *end, *nl;
  unsigned lflags;
  struct held *h;
  struct mlf *f;
  int rc = 0;

  if (!sl_list_empty(&st->parked) && !sl_mlstage_retry(st))
    return SL_EAGAIN;
  h = calloc(1, sizeof(*h));
  f = h ? file_get(st, c) : NULL;
  if (f == NULL) {
    free(h);
    return SL_ENOMEM;
  }
  h->c = c;
  sl_list_insert_tail(&f->held, &h->link);
  p = c->data;
  end = p + c->len;
  lflags = (c->flags & SL_CHUNK_TRUNCATED) ? SL_LINE_TRUNCATED : 0;
  while (p < end && rc == 0) {
    size_t len;
    uint64_t off = c->offset + (uint64_t)(p - c->data);

    if (c->flags & (SL_CHUNK_TRUNCATED | SL_CHUNK_NO_NL)) {
      len = (size_t)(end - p);
      if (p[len - 1] == '\n')
        len--;
      nl = end - 1;
    } else {
      nl = memchr(p, '\n', (size_t)(end - p));
      if (nl == NULL)
        nl = end - 1;
      len = (size_t)(nl - p) + (*nl != '\n');
    }
    if (len && p[len - 1] == '\r')
      len--;
    st->stats.lines++;
    if (st->o.input_lines && c->input_index >= 0 &&
        (size_t)c->input_index < st->o.nconfs)
      st->o.input_lines[c->input_index]++;
    rc = sl_ml_line(f->ml, p, len, off, lflags);
    p = nl + 1;
  }
  if (rc)
    sl_log(SL_LOG_ERROR, "multiline", "out of memory joining lines; the "
           "rest of the chunk is skipped", SL_LF_STR, "path", c->src->path,
           SL_LF_INT, "offset", (int64_t)c->offset, SL_LF_END);
  f->consumed = c->end_offset;
  f->last_ms = uv_now(st->o.loop);
  sl_tail_chunk_free_data(c);
  ech_ship(f);
  if (sl_ml_pending_offset(f->ml) != UINT64_MAX)
    tick_start(st);
  file_settle(f);
  return SL_OK;
}

void
sl_mlstage_done(struct sl_mlstage *st, struct sl_tail_chunk *ec)
{
  struct ech *e = ec->priv;
  struct mlf *f = e->f;

  sl_list_remove(&e->link);
  ech_free(e);
  file_settle(f);
  (void)st;
}

int
sl_mlstage_retry(struct sl_mlstage *st)
{
  struct sl_list *l;
  struct ech *e;

  while ((l = sl_list_first(&st->parked)) != NULL) {
    e = sl_container_of(l, struct ech, link);
    if (st->o.push(st->o.arg, &e->pub))
      return 0;
    sl_list_remove(l);
    sl_list_insert_tail(&e->f->outs, &e->link);
  }
  return 1;
}

void
sl_mlstage_drain(struct sl_mlstage *st)
{
  struct sl_list *l, *nx;

  st->draining = 1;
  if (st->ticking)
    uv_timer_stop(&st->timer);
  st->ticking = 0;
  sl_list_foreach(l, nx, &st->files) {
    struct mlf *f = sl_container_of(l, struct mlf, link);
    f->frozen = sl_ml_pending_offset(f->ml);
    f->draining = 1;
    sl_ml_discard(f->ml);
    file_settle(f);
  }
}

void
sl_mlstage_stats(const struct sl_mlstage *st, struct sl_mlstage_stats *out)
{
  *out = st->stats;
}

static void
timer_closed(uv_handle_t *h)
{
  free(h->data);
}

void
sl_mlstage_close(struct sl_mlstage *st)
{
  struct sl_list *l;

  if (st == NULL)
    return;
  /* Parked chunks were never pushed: free them with their files. */
  while ((l = sl_list_pop(&st->parked)) != NULL)
    ech_free(sl_container_of(l, struct ech, link));
  while ((l = sl_list_first(&st->files)) != NULL)
    file_free(sl_container_of(l, struct mlf, link));
  uv_close((uv_handle_t *)&st->timer, timer_closed);
}
