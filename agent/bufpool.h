/* bufpool.h - a small, bounded free list of big byte buffers that one
 * pipeline stage lends to the threads around it and gets back.
 *
 * Why: on a VM where every page fault traps to the hypervisor, a buffer
 * that is allocated for one batch (or one read) and freed after it costs a
 * fault per 4 KiB each time -- glibc hands big blocks out as fresh mmaps or
 * trims them back to the kernel. A buffer that comes back to a free list
 * keeps its pages, so memory is touched about once per run.
 *
 * Ownership: the stage creates the pool and closes it with
 * sl_bufpool_close(). Every buffer from sl_bufpool_get() must come back
 * through sl_bufpool_put() (or _put_mem()) exactly once, from any thread;
 * the pool itself is freed when it is closed AND every lent buffer is
 * back, so buffers may outlive the stage that lent them (batches still in
 * an output when the workers stop). A NULL pool is valid everywhere and
 * means plain malloc/free.
 *
 * Bounds: at most `max_idle` buffers and `max_idle_bytes` of capacity wait
 * on the list; a returned buffer that would exceed either is freed. The
 * owner sizes max_idle_bytes from queue.max_bytes, so idle plus lent memory
 * never exceeds the peak the queue limits already allowed.
 */
#ifndef SL_AGENT_BUFPOOL_H
#define SL_AGENT_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"

struct sl_bufpool;

struct sl_bufpool_stats {
  uint64_t hits;        /* gets served from the free list */
  uint64_t misses;      /* gets that had to allocate (or grow) */
  uint64_t dropped;     /* puts freed because the list was full */
  size_t idle_bytes;    /* capacity waiting on the list */
  uint32_t idle;        /* buffers waiting on the list */
  uint32_t lent;        /* buffers out, not yet put back */
};

/* max_idle: 1..256. SL_EINVAL or SL_ENOMEM on failure. */
int sl_bufpool_new(size_t max_idle_bytes, uint32_t max_idle,
                   struct sl_bufpool **out);
/* The owner lets go: idle buffers are freed now, the pool once the last
 * lent buffer is back. Later puts free their buffer. */
void sl_bufpool_close(struct sl_bufpool *bp);

/* Lend b (any previous content of *b is ignored) with room for at least
 * `want` bytes (at most max) plus the NUL, len 0 and hard cap `max` (0:
 * none; cap never exceeds max + 1, as sl_buf's own growth keeps it): the
 * smallest idle buffer that is big enough, else an idle one grown with
 * realloc, else a new allocation. Never returns with b->p NULL on
 * success. 0 or SL_ENOMEM (b left empty, nothing lent). */
int sl_bufpool_get(struct sl_bufpool *bp, size_t want, size_t max,
                   struct sl_buf *b);
/* Return b's memory; *b is left empty (p NULL). b->p NULL is a no-op. */
void sl_bufpool_put(struct sl_bufpool *bp, struct sl_buf *b);
/* Same for memory taken out of an sl_buf: p with its capacity `cap`. */
void sl_bufpool_put_mem(struct sl_bufpool *bp, char *p, size_t cap);

void sl_bufpool_stats(struct sl_bufpool *bp, struct sl_bufpool_stats *st);
/* One info line with the counters (component `who`): how well a stage
 * recycled, for tuning and the benchmarks. */
void sl_bufpool_log(struct sl_bufpool *bp, const char *who);

#endif
