#include "sl_hash.h"

#include <stdlib.h>

#include <xxhash.h>

/* The opaque state is libxxhash's own; the wrapper struct keeps the public
 * header free of xxhash.h. */
struct sl_hash_state {
  XXH3_state_t *x;
};

uint64_t
sl_hash64(const void *p, size_t n)
{
  return XXH3_64bits(p, n);
}

struct sl_hash128
sl_hash128(const void *p, size_t n)
{
  XXH128_hash_t h = XXH3_128bits(p, n);
  struct sl_hash128 r = { h.high64, h.low64 };
  return r;
}

static void
hex64(uint64_t v, char *out)
{
  static const char hex[] = "0123456789abcdef";
  int i;

  for (i = 15; i >= 0; i--) {
    out[i] = hex[v & 15];
    v >>= 4;
  }
}

void
sl_hash128_hex(struct sl_hash128 h, char out[33])
{
  hex64(h.hi, out);
  hex64(h.lo, out + 16);
  out[32] = '\0';
}

/* Returns NULL when out of memory; update/finish accept that NULL (finish
 * then returns the hash of nothing) so callers can check once at the end. */
struct sl_hash_state *
sl_hash128_start(void)
{
  struct sl_hash_state *st = malloc(sizeof(*st));

  if (st == NULL)
    return NULL;
  st->x = XXH3_createState();
  if (st->x == NULL) {
    free(st);
    return NULL;
  }
  XXH3_128bits_reset(st->x);
  return st;
}

void
sl_hash128_update(struct sl_hash_state *st, const void *p, size_t n)
{
  if (st != NULL && n > 0)
    XXH3_128bits_update(st->x, p, n);
}

struct sl_hash128
sl_hash128_finish(struct sl_hash_state *st)
{
  XXH128_hash_t h;
  struct sl_hash128 r;

  if (st == NULL)
    return sl_hash128("", 0);
  h = XXH3_128bits_digest(st->x);
  XXH3_freeState(st->x);
  free(st);
  r.hi = h.high64;
  r.lo = h.low64;
  return r;
}
