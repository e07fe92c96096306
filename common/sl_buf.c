#include "sl_buf.h"
#include "sl_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sl_buf_init(struct sl_buf *b, size_t max)
{
  b->p = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max ? max : SIZE_MAX - 1;
}

void
sl_buf_free(struct sl_buf *b)
{
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void
sl_buf_reset(struct sl_buf *b)
{
  sl_buf_truncate(b, 0);
}

void
sl_buf_truncate(struct sl_buf *b, size_t len)
{
  if (len > b->len)
    return;
  b->len = len;
  if (b->p)
    b->p[len] = '\0';
}

int
sl_buf_reserve(struct sl_buf *b, size_t extra)
{
  size_t need, ncap;
  char *np;

  if (extra > b->max - b->len)
    return SL_E2BIG;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return SL_OK;
  ncap = b->cap ? b->cap : 256;
  while (ncap < need)
    ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  /* Never allocate far beyond the cap just because of doubling. */
  if (ncap > b->max + 1 && need <= b->max + 1)
    ncap = b->max + 1;
  np = realloc(b->p, ncap);
  if (np == NULL)
    return SL_ENOMEM;
  b->p = np;
  b->cap = ncap;
  return SL_OK;
}

int
sl_buf_append(struct sl_buf *b, const void *data, size_t n)
{
  int rc = sl_buf_reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return SL_OK;
}

int
sl_buf_append_str(struct sl_buf *b, const char *s)
{
  return sl_buf_append(b, s, strlen(s));
}

int
sl_buf_append_byte(struct sl_buf *b, char c)
{
  if (b->len + 1 < b->cap && b->len < b->max) {
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
    return SL_OK;
  }
  return sl_buf_append(b, &c, 1);
}

int
sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
  va_list ap;
  int n, rc;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return SL_EINVAL;
  rc = sl_buf_reserve(b, (size_t)n);
  if (rc)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return SL_OK;
}

int
sl_buf_append_u64(struct sl_buf *b, uint64_t v)
{
  char tmp[20];
  size_t i = sl_u64_dec(v, tmp);

  return sl_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int
sl_buf_append_i64(struct sl_buf *b, int64_t v)
{
  int rc;

  if (v >= 0)
    return sl_buf_append_u64(b, (uint64_t)v);
  rc = sl_buf_append_byte(b, '-');
  if (rc)
    return rc;
  return sl_buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
}

int
sl_buf_append_be32(struct sl_buf *b, uint32_t v)
{
  unsigned char x[4];

  x[0] = (unsigned char)(v >> 24);
  x[1] = (unsigned char)(v >> 16);
  x[2] = (unsigned char)(v >> 8);
  x[3] = (unsigned char)v;
  return sl_buf_append(b, x, 4);
}

void
sl_buf_consume(struct sl_buf *b, size_t n)
{
  if (n >= b->len) {
    sl_buf_reset(b);
    return;
  }
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
  b->p[b->len] = '\0';
}

char *
sl_buf_take(struct sl_buf *b, size_t *len)
{
  char *p = b->p;

  if (len)
    *len = b->len;
  if (p == NULL)
    p = calloc(1, 1);
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}

char *
sl_strdup(const char *s)
{
  return s ? strdup(s) : NULL;
}
