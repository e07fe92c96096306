/* bufpool.c - bounded free list of big buffers; see bufpool.h. */
#include "bufpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sl_err.h"
#include "sl_log.h"

#define BUFPOOL_MAX_IDLE 256
/* Smallest buffer handed out: as sl_buf's first growth step. */
#define BUFPOOL_MIN_CAP 256

struct idle_buf {
  char *p;
  size_t cap;
};

struct sl_bufpool {
  pthread_mutex_t mu;
  size_t max_idle_bytes;
  uint32_t max_idle;
  int closed;
  struct sl_bufpool_stats st;   /* idle/idle_bytes/lent are live state */
  struct idle_buf idle[];       /* st.idle used, most recently put last */
};

int
sl_bufpool_new(size_t max_idle_bytes, uint32_t max_idle,
               struct sl_bufpool **out)
{
  struct sl_bufpool *bp;

  if (max_idle < 1 || max_idle > BUFPOOL_MAX_IDLE)
    return SL_EINVAL;
  bp = calloc(1, sizeof(*bp) + max_idle * sizeof(bp->idle[0]));
  if (bp == NULL)
    return SL_ENOMEM;
  if (pthread_mutex_init(&bp->mu, NULL) != 0) {
    free(bp);
    return SL_ENOMEM;
  }
  bp->max_idle_bytes = max_idle_bytes;
  bp->max_idle = max_idle;
  *out = bp;
  return SL_OK;
}

static void
pool_destroy(struct sl_bufpool *bp)
{
  pthread_mutex_destroy(&bp->mu);
  free(bp);
}

void
sl_bufpool_close(struct sl_bufpool *bp)
{
  struct idle_buf idle[BUFPOOL_MAX_IDLE];
  uint32_t i, n;
  int last;

  if (bp == NULL)
    return;
  pthread_mutex_lock(&bp->mu);
  bp->closed = 1;
  n = bp->st.idle;
  memcpy(idle, bp->idle, n * sizeof(idle[0]));
  bp->st.idle = 0;
  bp->st.idle_bytes = 0;
  last = bp->st.lent == 0;
  pthread_mutex_unlock(&bp->mu);
  for (i = 0; i < n; i++)
    free(idle[i].p);
  if (last)
    pool_destroy(bp);
}

int
sl_bufpool_get(struct sl_bufpool *bp, size_t want, size_t max,
               struct sl_buf *b)
{
  size_t need = want + 1, limit;
  struct idle_buf got = { NULL, 0 };
  uint32_t i, best = UINT32_MAX, big = UINT32_MAX;
  char *np;

  if (want >= SIZE_MAX / 4)
    return SL_ENOMEM;
  if (need < BUFPOOL_MIN_CAP)
    need = BUFPOOL_MIN_CAP;
  sl_buf_init(b, max);
  /* Writers that fill the capacity directly (event_writer.h) rely on
   * sl_buf's rule cap <= max + 1 to enforce max: never hand out more. */
  limit = b->max + 1;
  if (need > limit)
    need = limit;
  if (bp) {
    pthread_mutex_lock(&bp->mu);
    /* Smallest fit keeps the big buffers for the big requests; without a
     * fit the biggest one is grown (least to add). */
    for (i = 0; i < bp->st.idle; i++) {
      size_t cap = bp->idle[i].cap;
      if (cap > limit)
        continue;
      if (cap >= need && (best == UINT32_MAX || cap < bp->idle[best].cap))
        best = i;
      if (big == UINT32_MAX || cap > bp->idle[big].cap)
        big = i;
    }
    if (best == UINT32_MAX)
      best = big;
    if (best != UINT32_MAX) {
      got = bp->idle[best];
      memmove(&bp->idle[best], &bp->idle[best + 1],
              (bp->st.idle - best - 1) * sizeof(bp->idle[0]));
      bp->st.idle--;
      bp->st.idle_bytes -= got.cap;
    }
    if (got.cap >= need)
      bp->st.hits++;
    else
      bp->st.misses++;
    bp->st.lent++;
    pthread_mutex_unlock(&bp->mu);
  }
  if (got.cap < need) {
    /* Head room, so that the next request of about the same size (the
     * next batch is rarely byte for byte the size of this one) fits. */
    need += need / 8;
    if (need > 4096)
      need = (need + 4095) & ~(size_t)4095;
    if (need > limit)
      need = limit;
    /* realloc of a big block can move its pages (mremap) instead of
     * touching new ones. */
    np = realloc(got.p, need);
    if (np == NULL) {
      free(got.p);
      if (bp) {
        pthread_mutex_lock(&bp->mu);
        bp->st.lent--;
        pthread_mutex_unlock(&bp->mu);
      }
      return SL_ENOMEM;
    }
    got.p = np;
    got.cap = need;
  }
  b->p = got.p;
  b->cap = got.cap;
  b->p[0] = '\0';
  return SL_OK;
}

void
sl_bufpool_put_mem(struct sl_bufpool *bp, char *p, size_t cap)
{
  int keep, last = 0;

  if (p == NULL)
    return;
  if (bp == NULL) {
    free(p);
    return;
  }
  pthread_mutex_lock(&bp->mu);
  bp->st.lent--;
  keep = !bp->closed && bp->st.idle < bp->max_idle &&
         cap <= bp->max_idle_bytes - bp->st.idle_bytes;
  if (keep) {
    bp->idle[bp->st.idle].p = p;
    bp->idle[bp->st.idle].cap = cap;
    bp->st.idle++;
    bp->st.idle_bytes += cap;
  } else {
    bp->st.dropped++;
    last = bp->closed && bp->st.lent == 0;
  }
  pthread_mutex_unlock(&bp->mu);
  if (!keep)
    free(p);
  if (last)
    pool_destroy(bp);
}

void
sl_bufpool_put(struct sl_bufpool *bp, struct sl_buf *b)
{
  char *p = b->p;
  size_t cap = b->cap;

  b->p = NULL;
  b->len = b->cap = 0;
  sl_bufpool_put_mem(bp, p, cap);
}

void
sl_bufpool_stats(struct sl_bufpool *bp, struct sl_bufpool_stats *st)
{
  if (bp == NULL) {
    memset(st, 0, sizeof(*st));
    return;
  }
  pthread_mutex_lock(&bp->mu);
  *st = bp->st;
  pthread_mutex_unlock(&bp->mu);
}

void
sl_bufpool_log(struct sl_bufpool *bp, const char *who)
{
  struct sl_bufpool_stats st;

  if (bp == NULL || !SL_LOG_ENABLED(SL_LOG_INFO))
    return;
  sl_bufpool_stats(bp, &st);
  sl_log(SL_LOG_INFO, who, "buffer pool",
         SL_LF_INT, "hits", (int64_t)st.hits,
         SL_LF_INT, "misses", (int64_t)st.misses,
         SL_LF_INT, "dropped", (int64_t)st.dropped,
         SL_LF_INT, "idle", (int64_t)st.idle,
         SL_LF_INT, "idle_bytes", (int64_t)st.idle_bytes,
         SL_LF_INT, "lent", (int64_t)st.lent, SL_LF_END);
}
