/* sl_buf.h - growable byte buffer with a hard maximum (curl dynbuf).
 *
 * The struct is open so callers can embed it; use the API, not the fields,
 * except for reading `p`/`len`. Any append may realloc: a pointer obtained
 * from b->p is invalid after the next append. An append that would take the
 * buffer over `max` fails with SL_E2BIG and leaves the buffer unchanged.
 * `p` is always NUL-terminated after a successful append (not counted in len).
 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SL_WUR __attribute__((warn_unused_result))
#else
#define SL_WUR
#endif

struct sl_buf {
  char *p;      /* owned by the buffer until sl_buf_take() */
  size_t len;   /* bytes used */
  size_t cap;   /* bytes allocated (excluding nothing; p[len] is NUL) */
  size_t max;   /* hard cap on len; 0 means SIZE_MAX */
};

void sl_buf_init(struct sl_buf *b, size_t max);
void sl_buf_free(struct sl_buf *b);
/* Keep the allocation, drop the contents. */
void sl_buf_reset(struct sl_buf *b);
/* Drop everything after the first `len` bytes (len <= b->len): how an
 * all-or-nothing writer undoes a partial append. */
void sl_buf_truncate(struct sl_buf *b, size_t len);
/* Make room for `extra` more bytes without changing len. */
int sl_buf_reserve(struct sl_buf *b, size_t extra) SL_WUR;
int sl_buf_append(struct sl_buf *b, const void *data, size_t n) SL_WUR;
int sl_buf_append_str(struct sl_buf *b, const char *s) SL_WUR;
int sl_buf_append_byte(struct sl_buf *b, char c) SL_WUR;
int sl_buf_printf(struct sl_buf *b, const char *fmt, ...) SL_WUR
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
/* Decimal digits of v, written at the END of tmp; returns the index of
 * the first digit (the text is tmp[ret .. 19]). */
static inline size_t
sl_u64_dec(uint64_t v, char tmp[20])
{
  size_t i = 20;

  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return i;
}
int sl_buf_append_u64(struct sl_buf *b, uint64_t v) SL_WUR;
int sl_buf_append_i64(struct sl_buf *b, int64_t v) SL_WUR;
/* Big-endian u32, the Lumberjack integer. */
int sl_buf_append_be32(struct sl_buf *b, uint32_t v) SL_WUR;
/* Remove the first n bytes (memmove). */
void sl_buf_consume(struct sl_buf *b, size_t n);
/* Hand the memory to the caller (who frees it with free()); the buffer is
 * left empty and reusable. *len receives the length. */
char *sl_buf_take(struct sl_buf *b, size_t *len);

/* strdup(s), or NULL when s is NULL (an optional string being copied);
 * NULL with s set means out of memory. The caller frees the copy. */
char *sl_strdup(const char *s);

/* A borrowed view of bytes owned by someone else (e.g. a line inside the
 * read buffer). Valid only as long as the owner says. */
struct sl_span {
  const char *p;
  size_t len;
};

#endif
