/* sl_backoff.h - capped exponential backoff with full jitter.
 *
 * "Full jitter" from the AWS Architecture Blog, "Exponential Backoff And
 * Jitter" (Marc Brooker, 2015): sleep = random(0, min(cap, base * 2^attempt)).
 * It spreads retries of many clients so that a recovering server is not hit
 * by synchronized waves.
 */
#ifndef SL_BACKOFF_H
#define SL_BACKOFF_H

#include <stdint.h>

struct sl_backoff {
  uint64_t base_ms;   /* first ceiling */
  uint64_t cap_ms;    /* largest ceiling */
  uint32_t attempt;   /* failures since the last success */
  uint64_t rng;       /* xorshift state; seeded by sl_backoff_init */
};

void sl_backoff_init(struct sl_backoff *b, uint64_t base_ms, uint64_t cap_ms);
/* Delay before the next try; increments attempt. Always <= cap_ms. */
uint64_t sl_backoff_next(struct sl_backoff *b);
/* Call on success. */
void sl_backoff_reset(struct sl_backoff *b);

#endif
