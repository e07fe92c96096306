/* sl_bufq.h - bounded FIFO of byte chunks (curl bufq).
 *
 * A queue of fixed-size chunks with a cap on the total bytes. Writing to a
 * full queue returns SL_EAGAIN: backpressure is a value, not an error. Not
 * thread-safe: one owner (one loop) at a time.
 */
#ifndef SL_BUFQ_H
#define SL_BUFQ_H

#include <stddef.h>

struct sl_bufq_chunk;

struct sl_bufq {
  struct sl_bufq_chunk *head, *tail;
  struct sl_bufq_chunk *spare;  /* one recycled chunk */
  size_t chunk_size;            /* bytes per chunk */
  size_t max_bytes;             /* cap on len */
  size_t len;                   /* bytes queued */
};

void sl_bufq_init(struct sl_bufq *q, size_t chunk_size, size_t max_bytes);
void sl_bufq_free(struct sl_bufq *q);
/* Append up to n bytes; *written gets how many were taken (may be < n when
 * the cap is reached). Returns SL_EAGAIN if nothing could be written. */
int sl_bufq_write(struct sl_bufq *q, const void *p, size_t n, size_t *written);
/* Copy out up to n bytes and remove them; returns the count (0 if empty). */
size_t sl_bufq_read(struct sl_bufq *q, void *p, size_t n);
/* Borrow the first contiguous piece without removing it. *n = 0 if empty.
 * Valid until the next write/skip. */
void sl_bufq_peek(struct sl_bufq *q, const char **p, size_t *n);
void sl_bufq_skip(struct sl_bufq *q, size_t n);
size_t sl_bufq_len(const struct sl_bufq *q);
int sl_bufq_is_full(const struct sl_bufq *q);

#endif
