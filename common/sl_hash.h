/* sl_hash.h - xxh3 hashing via libxxhash (event ids, file fingerprints). */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

struct sl_hash128 {
  uint64_t hi, lo;
};

uint64_t sl_hash64(const void *p, size_t n);
struct sl_hash128 sl_hash128(const void *p, size_t n);
/* 32 lower-case hex digits (hi then lo, each big-endian hex), NUL added:
 * out must hold 33 bytes. This is the text form of event.id. */
void sl_hash128_hex(struct sl_hash128 h, char out[33]);

/* Streaming xxh3-128 for inputs in several pieces. */
struct sl_hash_state;
/* NULL when out of memory; update/finish accept NULL (finish then returns
 * the hash of the empty input), so check the start result. */
struct sl_hash_state *sl_hash128_start(void);
void sl_hash128_update(struct sl_hash_state *st, const void *p, size_t n);
/* Returns the digest and frees the state. */
struct sl_hash128 sl_hash128_finish(struct sl_hash_state *st);

#endif
