#include "sl_backoff.h"

#include <time.h>
#include <unistd.h>

/* splitmix64 finaliser: turns correlated seed material (time, pid, an
 * address) into a well-mixed non-zero xorshift state. */
static uint64_t
mix64(uint64_t z)
{
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift
 * generators, scrambled", 2016). Plenty for jitter; never for secrets. */
static uint64_t
rng_next(uint64_t *s)
{
  uint64_t x = *s;

  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

void
sl_backoff_init(struct sl_backoff *b, uint64_t base_ms, uint64_t cap_ms)
{
  struct timespec ts;
  uint64_t seed;

  clock_gettime(CLOCK_REALTIME, &ts);
  /* Several processes (or several backoffs in one process) started in the
   * same nanosecond still differ by pid and by the struct's address. */
  seed = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
  seed ^= (uint64_t)getpid() << 32;
  seed ^= (uint64_t)(uintptr_t)b;
  b->rng = mix64(seed);
  if (b->rng == 0)
    b->rng = 0x9E3779B97F4A7C15ULL;
  b->base_ms = base_ms ? base_ms : 1;
  b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
  b->attempt = 0;
}

uint64_t
sl_backoff_next(struct sl_backoff *b)
{
  uint64_t ceil = b->base_ms;
  uint32_t i;

  /* base * 2^attempt, saturating at cap without overflowing. */
  for (i = 0; i < b->attempt && ceil < b->cap_ms; i++)
    ceil = ceil > b->cap_ms / 2 ? b->cap_ms : ceil * 2;
  if (ceil > b->cap_ms)
    ceil = b->cap_ms;
  if (b->attempt < UINT32_MAX)
    b->attempt++;
  if (b->rng == 0)
    b->rng = 0x9E3779B97F4A7C15ULL;
  if (ceil == UINT64_MAX)
    return rng_next(&b->rng);
  return rng_next(&b->rng) % (ceil + 1);
}

void
sl_backoff_reset(struct sl_backoff *b)
{
  b->attempt = 0;
}
