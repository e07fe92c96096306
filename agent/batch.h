/* batch.h - a finished output batch and the chunk references it holds.
 *
 * Built by a parse worker (worker.h), owned by the loop thread once handed
 * over: the agent queues it, an output (out.h) sends it, and the agent
 * releases it when the output reports it delivered. The functions are
 * implemented in worker.c next to the code that fills the references.
 *
 * Acknowledgement: a chunk may be spread over several batches. Each chunk
 * carries a reference count: one reference held "while it is being parsed"
 * plus one per batch that holds its events. The batch holding a chunk's last
 * line also carries the parse reference. sl_batch_release() (loop thread,
 * when the output acked the batch) drops them; the callback `done` fires for
 * every chunk whose count reaches 0 -- then every event of it was acked.
 */
#ifndef SL_AGENT_BATCH_H
#define SL_AGENT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sl_list.h"

struct sl_tail_chunk;
struct sl_bufpool;

/* A chunk as the pipeline tracks it. Freed when refs reaches 0. */
struct sl_wchunk {
  struct sl_tail_chunk *c;
  struct sl_list link;       /* worker input queue */
  uint32_t refs;             /* atomic: see above */
};

struct sl_batch_ref {
  struct sl_wchunk *wc;
  uint32_t drop;             /* references this batch drops: 1 or 2 */
};

struct sl_batch {
  struct sl_list link;       /* in one sl_batchq, owned by its holder */
  char *data;                /* wire bytes, lent by `pool` (bufpool.h) */
  size_t len;
  size_t cap;                /* capacity of data, for the pool */
  struct sl_bufpool *pool;   /* where data goes back; NULL: free() */
  uint32_t events;           /* events (= Lumberjack window size) */
  uint64_t raw_bytes;        /* input line bytes covered */
  struct sl_batch_ref *refs;
  uint32_t nrefs, caprefs;
  uint64_t created_ms;       /* monotonic, first event placed */
  uint64_t sent_ms;          /* monotonic, last (re)send */
  uint32_t attempts;         /* sends so far */
  uv_write_t wreq;           /* for the output currently sending it */
  uv_buf_t wbuf;
  unsigned out_flags;        /* output's per-batch state */
  void *out_priv;            /* output's per-batch scratch */
};

/* A FIFO of batches: the agent's pending queue, an output's windows in
 * flight. A batch is in at most one queue at a time, through b->link; the
 * queue does not own the batches (whoever pops one does). */
struct sl_batchq {
  struct sl_list l;
  size_t n;
};

static inline void
sl_batchq_init(struct sl_batchq *q)
{
  sl_list_init(&q->l);
  q->n = 0;
}

static inline struct sl_batch *
sl_batchq_first(const struct sl_batchq *q)
{
  struct sl_list *e = sl_list_first(&q->l);

  return e ? sl_container_of(e, struct sl_batch, link) : NULL;
}

static inline void
sl_batchq_push(struct sl_batchq *q, struct sl_batch *b)
{
  sl_list_insert_tail(&q->l, &b->link);
  q->n++;
}

static inline void
sl_batchq_push_front(struct sl_batchq *q, struct sl_batch *b)
{
  sl_list_insert_head(&q->l, &b->link);
  q->n++;
}

/* Move every batch of `from` to the end of `to` (O(1)). */
static inline void
sl_batchq_move_all(struct sl_batchq *to, struct sl_batchq *from)
{
  sl_list_move_all(&to->l, &from->l);
  to->n += from->n;
  from->n = 0;
}

/* Oldest first; NULL when empty. */
static inline struct sl_batch *
sl_batchq_pop(struct sl_batchq *q)
{
  struct sl_list *e = sl_list_pop(&q->l);

  if (e == NULL)
    return NULL;
  q->n--;
  return sl_container_of(e, struct sl_batch, link);
}

/* Newest first (to hand batches back in order with push_front). */
static inline struct sl_batch *
sl_batchq_pop_last(struct sl_batchq *q)
{
  struct sl_list *e = sl_list_last(&q->l);

  if (e == NULL)
    return NULL;
  sl_list_remove(e);
  q->n--;
  return sl_container_of(e, struct sl_batch, link);
}

/* Frees the batch; its data goes back to b->pool (any thread). */
void sl_batch_free(struct sl_batch *b);
/* Drop this batch's chunk references; `done` runs for each chunk whose
 * count hits 0 (its sl_wchunk is freed after). Frees the batch. */
void sl_batch_release(struct sl_batch *b,
                      void (*done)(void *arg, struct sl_tail_chunk *c),
                      void *arg);
/* Discard a batch without acknowledging its chunks (shutdown). */
void sl_batch_discard(struct sl_batch *b);

#endif
