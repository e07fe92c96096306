/* sl_gzip.h - gzip (Content-Encoding: gzip) with one deflate state kept
 * between calls.
 *
 * deflateInit2 allocates about 270 KiB of window and hash tables at level
 * 1; doing that per request means fresh memory (page faults) and a
 * malloc/free of big blocks each time. A struct sl_gzip keeps the state
 * and only resets it, so back-to-back bodies reuse the same pages.
 *
 * Not thread-safe: one per thread/owner. The struct is open so owners can
 * embed it; use the API, not the fields.
 */
#ifndef SL_GZIP_H
#define SL_GZIP_H

#include <stddef.h>

#include <zlib.h>

#include "sl_buf.h"

struct sl_gzip {
  z_stream z;
  int level;        /* 0..9, or Z_DEFAULT_COMPRESSION */
  int live;         /* z holds an initialised state */
};

/* No allocation yet: the state is made by the first sl_gzip_append.
 * Level 0 stores (gzip framing, no compression); a level outside 0..9
 * means zlib's default. */
void sl_gzip_init(struct sl_gzip *g, int level);
/* Append one complete gzip member holding in[0..len) to out. On error out
 * is unchanged (len restored). */
int sl_gzip_append(struct sl_gzip *g, const void *in, size_t len,
                   struct sl_buf *out) SL_WUR;
/* Free the state; g may be used again after sl_gzip_init. */
void sl_gzip_end(struct sl_gzip *g);

#endif
