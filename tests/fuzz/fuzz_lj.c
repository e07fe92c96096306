/* fuzz_lj.c - libFuzzer target for the Lumberjack decoder.
 *
 * The input is a raw wire stream (so tests/fuzz/corpus-lj/ seeds are plain
 * captures). It is decoded twice with the same limits: once in one feed and
 * once in pseudo-random pieces (1..N bytes, seeded from the input). Besides
 * crashes and sanitizer reports, any difference between the two runs (return
 * code, frames delivered) aborts: the decoder promises that splitting the
 * stream at any byte boundary changes nothing.
 *
 * A crash input found here goes into tests/fuzz/corpus-regress/, which
 * unit-lj replays on every test run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_lj.h"

struct digest {
  size_t frames;
  uint64_t h;           /* FNV-1a over type, version, seq, len, data */
};

static void
mix(struct digest *g, const void *p, size_t n)
{
  const unsigned char *u = p;
  size_t i;

  for (i = 0; i < n; i++) {
    g->h ^= u[i];
    g->h *= 0x100000001b3ull;
  }
}

static int
digest_cb(void *arg, const struct sl_lj_frame *f)
{
  struct digest *g = arg;
  uint64_t v[4] = {(uint64_t)f->type, (uint64_t)f->version, f->seq, f->len};

  g->frames++;
  mix(g, v, sizeof(v));
  if (f->data)
    mix(g, f->data, f->len);
  else if (f->len)
    abort();            /* frames without data must have len 0 */
  return 0;
}

static int
run(const struct sl_lj_limits *lim, const uint8_t *data, size_t size,
    uint64_t seed, struct digest *g)
{
  struct sl_lj_dec *d = sl_lj_dec_new(lim);
  char err[256];
  size_t off = 0, m;
  int rc = 0;

  if (d == NULL)
    abort();
  g->frames = 0;
  g->h = 0xcbf29ce484222325ull;
  while (off < size) {
    if (seed == 0) {
      m = size - off;
    } else {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      /* Mostly tiny pieces (header splits), sometimes large ones. */
      m = 1 + (size_t)(seed % ((seed >> 32) & 1 ? 7 : 300));
      if (m > size - off)
        m = size - off;
    }
    rc = sl_lj_dec_feed(d, (const char *)data + off, m, digest_cb, g, err,
                        sizeof(err));
    if (rc) {
      /* Every failure must say why. */
      if (err[0] == '\0')
        abort();
      break;
    }
    off += m;
  }
  /* At most one partial frame outside and one inside a C frame. */
  if (rc == 0 && sl_lj_dec_pending(d) > 2 * ((size_t)lim->max_frame + 10) + 6)
    abort();
  sl_lj_dec_free(d);
  return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sl_lj_limits lim;
  struct digest a, b;
  uint64_t seed = 0x9e3779b97f4a7c15ull ^ size;
  size_t i;
  int ra, rb;

  for (i = 0; i < size && i < 16; i++)
    seed = seed * 31 + data[i];
  if (seed == 0)
    seed = 1;
  sl_lj_limits_default(&lim);
  /* Half the inputs run with tiny limits so every limit path is reachable
   * from short inputs. */
  if (seed & 1) {
    lim.max_frame = 64;
    lim.max_inflate = 256;
    lim.max_window = 16;
  }
  ra = run(&lim, data, size, 0, &a);
  rb = run(&lim, data, size, seed, &b);
  if (ra != rb || a.frames != b.frames || a.h != b.h) {
    fprintf(stderr, "split mismatch: whole rc=%d frames=%zu, split rc=%d "
            "frames=%zu\n", ra, a.frames, rb, b.frames);
    abort();
  }
  return 0;
}
