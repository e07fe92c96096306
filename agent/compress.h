/* compress.h - the zlib-format compressor behind Lumberjack 'C' frames.
 *
 * One per parse worker (not thread-safe; no locking on the hot path). The
 * bytes are always a standard zlib stream (RFC 1950), whatever the
 * backend, so every Lumberjack receiver inflates them:
 *   - ISA-L igzip for levels 1-3 when built with it (meson feature `isal`):
 *     on a batch of ECS events it costs about a third of libdeflate's
 *     level 1 for the same ratio (bench/RESULTS.md), and compression is
 *     most of the agent's CPU over Lumberjack;
 *   - libdeflate for the other levels (or when ISA-L is absent);
 *   - zlib's deflate otherwise.
 * The compressor owns its scratch memory (ISA-L's level buffer, a few
 * hundred KiB; libdeflate's state) for its whole life: nothing is
 * allocated per batch.
 */
#ifndef SL_AGENT_COMPRESS_H
#define SL_AGENT_COMPRESS_H

#include <stddef.h>

struct sl_compress;

/* level 1..9. SL_ENOMEM or SL_EINVAL. */
int sl_compress_new(int level, struct sl_compress **out);
void sl_compress_free(struct sl_compress *c);
/* Largest output for n input bytes: give compress at least this much. */
size_t sl_compress_bound(const struct sl_compress *c, size_t n);
/* Compress n bytes into out (cap bytes, >= sl_compress_bound). Returns the
 * output length, 0 on failure. */
size_t sl_compress_zlib(struct sl_compress *c, const void *in, size_t n,
                        void *out, size_t cap);
/* "isa-l", "libdeflate" or "zlib": what this compressor uses. */
const char *sl_compress_backend(const struct sl_compress *c);

#endif
