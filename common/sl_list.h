/* sl_list.h - intrusive doubly linked queue (libuv src/queue.h, typed).
 *
 * Embed a `struct sl_list` in the element and get the element back with
 * sl_container_of(). The list head is a `struct sl_list` too (circular, a
 * sentinel): an empty list points at itself. Nothing here allocates; the
 * caller owns the elements. An element is in at most one list per embedded
 * link; sl_list_remove() leaves it self-linked so a second remove is
 * harmless.
 */
#ifndef SL_LIST_H
#define SL_LIST_H

#include <stddef.h>

#define sl_container_of(ptr, type, field) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, field)))

struct sl_list {
  struct sl_list *prev, *next;
};

static inline void
sl_list_init(struct sl_list *h)
{
  h->prev = h;
  h->next = h;
}

static inline int
sl_list_empty(const struct sl_list *h)
{
  return h->next == h;
}

/* First / last element link, or NULL when empty. */
static inline struct sl_list *
sl_list_first(const struct sl_list *h)
{
  return h->next == h ? NULL : h->next;
}

static inline struct sl_list *
sl_list_last(const struct sl_list *h)
{
  return h->prev == h ? NULL : h->prev;
}

static inline void
sl_list_insert_tail(struct sl_list *h, struct sl_list *e)
{
  e->next = h;
  e->prev = h->prev;
  h->prev->next = e;
  h->prev = e;
}

static inline void
sl_list_insert_head(struct sl_list *h, struct sl_list *e)
{
  e->prev = h;
  e->next = h->next;
  h->next->prev = e;
  h->next = e;
}

static inline void
sl_list_remove(struct sl_list *e)
{
  e->prev->next = e->next;
  e->next->prev = e->prev;
  e->prev = e;
  e->next = e;
}

/* Move every element of `from` to the end of `to`; `from` ends empty. */
static inline void
sl_list_move_all(struct sl_list *to, struct sl_list *from)
{
  if (sl_list_empty(from))
    return;
  from->next->prev = to->prev;
  to->prev->next = from->next;
  from->prev->next = to;
  to->prev = from->prev;
  sl_list_init(from);
}

/* Remove and return the first element link, or NULL when empty. */
static inline struct sl_list *
sl_list_pop(struct sl_list *h)
{
  struct sl_list *e = sl_list_first(h);

  if (e != NULL)
    sl_list_remove(e);
  return e;
}

/* Iterate; `tmp` allows removing `it` inside the body. */
#define sl_list_foreach(it, tmp, h)                                   \
  for ((it) = (h)->next, (tmp) = (it)->next; (it) != (h);             \
       (it) = (tmp), (tmp) = (it)->next)

#endif
