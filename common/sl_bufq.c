#include "sl_bufq.h"
#include "sl_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Default chunk when the caller passes 0: big enough that a typical
 * Lumberjack frame needs only a few chunks, small enough to recycle. */
#define SL_BUFQ_DEFAULT_CHUNK (16 * 1024)

/* Bytes [r, w) of data[] are queued. A chunk in the list is never empty:
 * the reader pops it as soon as r reaches w. */
struct sl_bufq_chunk {
  struct sl_bufq_chunk *next;
  size_t r, w;
  char data[];
};

void
sl_bufq_init(struct sl_bufq *q, size_t chunk_size, size_t max_bytes)
{
  q->head = q->tail = q->spare = NULL;
  q->chunk_size = chunk_size ? chunk_size : SL_BUFQ_DEFAULT_CHUNK;
  q->max_bytes = max_bytes ? max_bytes : SIZE_MAX;
  q->len = 0;
}

void
sl_bufq_free(struct sl_bufq *q)
{
  struct sl_bufq_chunk *c, *next;

  for (c = q->head; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  free(q->spare);
  q->head = q->tail = q->spare = NULL;
  q->len = 0;
}

static struct sl_bufq_chunk *
chunk_get(struct sl_bufq *q)
{
  struct sl_bufq_chunk *c = q->spare;

  if (c != NULL)
    q->spare = NULL;
  else
    c = malloc(sizeof(*c) + q->chunk_size);
  if (c == NULL)
    return NULL;
  c->next = NULL;
  c->r = c->w = 0;
  return c;
}

/* Keep one emptied chunk for the next write: a queue that is filled and
 * drained in step then never touches malloc. */
static void
chunk_put(struct sl_bufq *q, struct sl_bufq_chunk *c)
{
  if (q->spare == NULL)
    q->spare = c;
  else
    free(c);
}

int
sl_bufq_write(struct sl_bufq *q, const void *p, size_t n, size_t *written)
{
  const char *src = p;
  struct sl_bufq_chunk *c;
  size_t done = 0, room, take;

  if (written)
    *written = 0;
  if (n == 0)
    return SL_OK;
  while (done < n && q->len < q->max_bytes) {
    c = q->tail;
    if (c == NULL || c->w == q->chunk_size) {
      c = chunk_get(q);
      if (c == NULL) {
        if (done == 0)
          return SL_ENOMEM;
        break;
      }
      if (q->tail)
        q->tail->next = c;
      else
        q->head = c;
      q->tail = c;
    }
    room = q->chunk_size - c->w;
    take = n - done;
    if (take > room)
      take = room;
    if (take > q->max_bytes - q->len)
      take = q->max_bytes - q->len;
    memcpy(c->data + c->w, src + done, take);
    c->w += take;
    q->len += take;
    done += take;
  }
  if (written)
    *written = done;
  return done ? SL_OK : SL_EAGAIN;
}

void
sl_bufq_skip(struct sl_bufq *q, size_t n)
{
  struct sl_bufq_chunk *c;
  size_t have;

  while (n > 0 && (c = q->head) != NULL) {
    have = c->w - c->r;
    if (n < have) {
      c->r += n;
      q->len -= n;
      return;
    }
    n -= have;
    q->len -= have;
    q->head = c->next;
    if (q->head == NULL)
      q->tail = NULL;
    chunk_put(q, c);
  }
}

size_t
sl_bufq_read(struct sl_bufq *q, void *p, size_t n)
{
  char *dst = p;
  size_t done = 0, have, take;
  struct sl_bufq_chunk *c;

  while (done < n && (c = q->head) != NULL) {
    have = c->w - c->r;
    take = n - done < have ? n - done : have;
    memcpy(dst + done, c->data + c->r, take);
    done += take;
    sl_bufq_skip(q, take);
  }
  return done;
}

void
sl_bufq_peek(struct sl_bufq *q, const char **p, size_t *n)
{
  struct sl_bufq_chunk *c = q->head;

  if (c == NULL) {
    *p = NULL;
    *n = 0;
    return;
  }
  *p = c->data + c->r;
  *n = c->w - c->r;
}

size_t
sl_bufq_len(const struct sl_bufq *q)
{
  return q->len;
}

int
sl_bufq_is_full(const struct sl_bufq *q)
{
  return q->len >= q->max_bytes;
}
