#include "compress.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "sl_config.h"
#include "sl_err.h"

#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#ifdef HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

/* Room above zlib's compressBound for ISA-L's worst case: its dynamic
 * Huffman header (ISAL_DEF_MAX_HDR_SIZE, 328 bytes) may precede stored
 * blocks. */
#define ISAL_HDR_ROOM 1024

enum backend { BE_ZLIB, BE_LIBDEFLATE, BE_ISAL };

struct sl_compress {
  enum backend be;
  int level;
#ifdef HAVE_ISAL
  struct isal_zstream zs;
  unsigned char *lvl_buf;
  size_t lvl_buf_len;
#endif
#ifdef HAVE_LIBDEFLATE
  struct libdeflate_compressor *ld;
#endif
};

int
sl_compress_new(int level, struct sl_compress **out)
{
  struct sl_compress *c;

  if (level < 1 || level > 9)
    return SL_EINVAL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SL_ENOMEM;
  c->level = level;
  c->be = BE_ZLIB;
#ifdef HAVE_ISAL
  if (level <= ISAL_DEF_MAX_LEVEL) {
    static const size_t lvl_len[] = {
      ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT,
      ISAL_DEF_LVL3_DEFAULT,
    };
    c->lvl_buf_len = lvl_len[level];
    c->lvl_buf = malloc(c->lvl_buf_len);
    if (c->lvl_buf == NULL)
      goto fail;
    c->be = BE_ISAL;
    *out = c;
    return SL_OK;
  }
#endif
#ifdef HAVE_LIBDEFLATE
  c->ld = libdeflate_alloc_compressor(level);
  if (c->ld == NULL)
    goto fail;
  c->be = BE_LIBDEFLATE;
#endif
  *out = c;
  return SL_OK;
#if defined(HAVE_ISAL) || defined(HAVE_LIBDEFLATE)
fail:
  free(c);
  return SL_ENOMEM;
#endif
}

void
sl_compress_free(struct sl_compress *c)
{
  if (c == NULL)
    return;
#ifdef HAVE_ISAL
  free(c->lvl_buf);
#endif
#ifdef HAVE_LIBDEFLATE
  if (c->ld)
    libdeflate_free_compressor(c->ld);
#endif
  free(c);
}

size_t
sl_compress_bound(const struct sl_compress *c, size_t n)
{
#ifdef HAVE_LIBDEFLATE
  if (c->be == BE_LIBDEFLATE)
    return libdeflate_zlib_compress_bound(c->ld, n);
#endif
  /* zlib's bound (stored blocks: 5 bytes per 16 KiB) plus room for the
   * dynamic Huffman header ISA-L may write before falling back. */
  return compressBound((uLong)n) + ISAL_HDR_ROOM;
}

size_t
sl_compress_zlib(struct sl_compress *c, const void *in, size_t n, void *out,
                 size_t cap)
{
  uLongf zn;

  switch (c->be) {
#ifdef HAVE_ISAL
  case BE_ISAL:
    isal_deflate_stateless_init(&c->zs);
    c->zs.level = (uint32_t)c->level;
    c->zs.level_buf = c->lvl_buf;
    c->zs.level_buf_size = (uint32_t)c->lvl_buf_len;
    c->zs.gzip_flag = IGZIP_ZLIB;
    c->zs.end_of_stream = 1;
    c->zs.flush = NO_FLUSH;
    c->zs.next_in = (uint8_t *)(uintptr_t)in;
    c->zs.avail_in = (uint32_t)n;
    c->zs.next_out = out;
    c->zs.avail_out = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    if (n > UINT32_MAX || isal_deflate_stateless(&c->zs) != COMP_OK)
      return 0;
    return c->zs.total_out;
#endif
#ifdef HAVE_LIBDEFLATE
  case BE_LIBDEFLATE:
    return libdeflate_zlib_compress(c->ld, in, n, out, cap);
#endif
  default:
    zn = (uLongf)cap;
    if (compress2(out, &zn, in, (uLong)n, c->level) != Z_OK)
      return 0;
    return (size_t)zn;
  }
}

const char *
sl_compress_backend(const struct sl_compress *c)
{
  static const char *const names[] = { "zlib", "libdeflate", "isa-l" };

  return names[c->be];
}
