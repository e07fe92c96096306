#include "sl_gzip.h"

#include <stdint.h>
#include <string.h>

#include "sl_err.h"

void
sl_gzip_init(struct sl_gzip *g, int level)
{
  memset(g, 0, sizeof *g);
  /* 0 is Z_NO_COMPRESSION: stored blocks, still valid gzip. */
  g->level = level >= 0 && level <= 9 ? level : Z_DEFAULT_COMPRESSION;
}

int
sl_gzip_append(struct sl_gzip *g, const void *in, size_t len,
               struct sl_buf *out)
{
  size_t bound;
  int rc;

  if (!g->live) {
    /* windowBits 15 + 16: zlib writes a gzip header and trailer instead
     * of the zlib ones. memLevel 8 is zlib's default. */
    if (deflateInit2(&g->z, g->level, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
      return SL_ENOMEM;
    g->live = 1;
  } else if (deflateReset(&g->z) != Z_OK) {
    return SL_EINTERNAL;
  }
  if (len > UINT32_MAX)
    return SL_E2BIG;
  /* deflateBound() knows the worst case; gzip adds 18 bytes of framing
   * that the zlib-format bound does not count. */
  bound = deflateBound(&g->z, (uLong)len) + 32;
  rc = sl_buf_reserve(out, bound);
  if (rc)
    return rc;
  g->z.next_in = (Bytef *)(uintptr_t)in;
  g->z.avail_in = (uInt)len;
  g->z.next_out = (Bytef *)out->p + out->len;
  g->z.avail_out = (uInt)bound;
  if (deflate(&g->z, Z_FINISH) != Z_STREAM_END) {
    out->p[out->len] = '\0';
    return SL_EINTERNAL;
  }
  out->len += g->z.total_out;
  out->p[out->len] = '\0';
  return 0;
}

void
sl_gzip_end(struct sl_gzip *g)
{
  if (g->live)
    deflateEnd(&g->z);
  g->live = 0;
}
