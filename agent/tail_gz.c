/* tail_gz.c - read_gz: a rotated, gzip-compressed file read once, as a
 * stream of lines (ownership: tail_internal.h).
 *
 * The file is identified like any other, by the first bytes of the
 * COMPRESSED file, so a .gz already read is not read again. Offsets
 * (log.offset, event.id, the registry) count UNCOMPRESSED bytes: a restart
 * inflates again from the start and skips what was acknowledged, unless
 * the gzip trailer (ISIZE: the uncompressed size mod 2^32) says the saved
 * offset is the end. Reading is bounded per call like plain files: one
 * GZ_IN_BLOCK of input, inflated into a window of lines.
 */
#include "tail_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "sl_err.h"
#include "sl_json.h"
#include "sl_log.h"

/* Compressed bytes per read call: with ~8x compression, about one read
 * window of lines, so a .gz takes its turn like a plain file. */
#define GZ_IN_BLOCK (32u * 1024)

struct tail_gz {
  z_stream z;
  bool z_live;
  uint64_t in_off;         /* next compressed byte to read */
  char *pend;              /* inflated bytes not yet made chunks */
  size_t plen, pcap;
  uint64_t pend_off;       /* uncompressed offset of pend[0] */
  uint64_t skip_to;        /* acknowledged before a restart: not again */
  bool skipping;           /* inside an over-long line */
  bool corrupt;            /* inflate failed: what came so far counts */
  bool ended;              /* the last member's end was inflated */
  bool eof;
};

void
sl__tail_gz_free(struct tail_file *f)
{
  struct tail_gz *g = f->gzs;

  if (!g)
    return;
  if (g->z_live)
    inflateEnd(&g->z);
  free(g->pend);
  free(g);
  f->gzs = NULL;
}

bool
sl__tail_gz_done_at(int fd, uint64_t size, uint64_t off)
{
  unsigned char b[4];
  uint32_t isize;

  if (size < 18 || off == 0 || pread(fd, b, 4, (off_t)(size - 4)) != 4)
    return false;
  isize = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
          (uint32_t)b[3] << 24;
  return isize == (uint32_t)off;
}

static int
gz_start(struct tail_file *f)
{
  struct tail_gz *g = calloc(1, sizeof(*g));

  if (!g)
    return SL_ENOMEM;
  g->pcap = SL_TAIL_READ_CHUNK + f->in->max_line + 1;
  g->pend = malloc(g->pcap);
  if (!g->pend || inflateInit2(&g->z, 15 + 32) != Z_OK) {
    free(g->pend);
    free(g);
    return SL_ENOMEM;
  }
  g->z_live = true;
  g->skip_to = f->read_off;
  f->gzs = g;
  return 0;
}

static void
gz_drop(struct tail_gz *g, size_t n)
{
  memmove(g->pend, g->pend + n, g->plen - n);
  g->plen -= n;
  g->pend_off += n;
}

/* Turn the whole lines of pend into a chunk; an over-long line fills the
 * window: its head goes out cut (as for plain files), the rest is
 * skipped. `last`: no more input, the remainder is a final line. */
static int
gz_emit(struct tail_file *f, bool last)
{
  struct tail_gz *g = f->gzs;
  size_t maxl = f->in->max_line, n, keep;
  char *nl;
  int rc = 0;

  if (g->pend_off < g->skip_to) {
    n = g->skip_to - g->pend_off < g->plen ? (size_t)(g->skip_to - g->pend_off)
                                           : g->plen;
    gz_drop(g, n);
  }
  if (g->skipping) {
    nl = memchr(g->pend, '\n', g->plen);
    f->t->st.bytes_skipped += nl ? (size_t)(nl - g->pend) + 1 : g->plen;
    gz_drop(g, nl ? (size_t)(nl - g->pend) + 1 : g->plen);
    g->skipping = !nl;
  }
  nl = g->plen ? memrchr(g->pend, '\n', g->plen) : NULL;
  if (nl) {
    n = (size_t)(nl - g->pend) + 1;
    rc = sl__tail_emit(f, g->pend, n, g->pend_off, 0, g->pend_off + n);
    if (rc == 0)
      gz_drop(g, n);
  } else if (g->plen > maxl || (last && g->plen)) {
    keep = g->plen > maxl ? sl_utf8_valid_prefix(g->pend, maxl) : g->plen;
    rc = sl__tail_emit(f, g->pend, keep, g->pend_off,
                       SL_CHUNK_NO_NL | (g->plen > maxl ? SL_CHUNK_TRUNCATED
                                                        : 0),
                       g->pend_off + g->plen);
    if (rc == 0) {
      if (g->plen > maxl) {
        f->t->st.lines_truncated++;
        f->t->st.bytes_skipped += g->plen - keep;
        g->skipping = !last;
      }
      gz_drop(g, g->plen);
    }
  }
  f->read_off = g->pend_off;
  return rc;
}

int
sl__tail_gz_read(struct tail_file *f, size_t *nread)
{
  unsigned char in[GZ_IN_BLOCK];
  struct tail_gz *g = f->gzs;
  ssize_t n;
  int rc = 0, zrc;

  *nread = 0;
  if (!g) {
    rc = gz_start(f);
    if (rc)
      return rc;
    g = f->gzs;
  }
  if (g->eof) {
    f->want_read = false;
    return 0;
  }
  n = 0;
  if (!g->corrupt) {
    do
      n = pread(f->fd, in, sizeof(in), (off_t)g->in_off);
    while (n < 0 && errno == EINTR);
  }
  if (n < 0) {
    rc = -errno;
    sl_log(SL_LOG_ERROR, "tail", "read failed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)g->in_off, SL_LF_ERR, rc,
           SL_LF_END);
    f->want_read = false;
    return rc;
  }
  if (n == 0 && !g->ended && !g->corrupt) {
    /* Still being written (gzip of a rotation in progress): wait for it
     * to grow (sl__tail_file_check). */
    f->want_read = false;
    return 0;
  }
  if (n == 0) {
    rc = gz_emit(f, true);
    g->eof = true;
    f->want_read = false;
    sl_log(SL_LOG_INFO, "tail", "compressed file read", SL_LF_STR, "path",
           f->path, SL_LF_INT, "bytes", (int64_t)g->pend_off, SL_LF_END);
    return rc;
  }
  g->in_off += (uint64_t)n;
  *nread = (size_t)n;
  g->z.next_in = in;
  g->z.avail_in = (uInt)n;
  while (g->z.avail_in > 0 && rc == 0) {
    if (g->pcap - g->plen < GZ_IN_BLOCK) {
      rc = gz_emit(f, false);
      if (rc || g->pcap - g->plen < GZ_IN_BLOCK / 2)
        break;  /* no room: the rest of this block is read again */
    }
    g->z.next_out = (unsigned char *)g->pend + g->plen;
    g->z.avail_out = (uInt)(g->pcap - g->plen);
    zrc = inflate(&g->z, Z_NO_FLUSH);
    g->plen = g->pcap - g->z.avail_out;
    g->ended = zrc == Z_STREAM_END;
    if (zrc == Z_STREAM_END) {
      /* Concatenated members (gzip -c a >> b) are one file. */
      inflateReset(&g->z);
    } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
      sl_log(SL_LOG_WARN, "tail", "compressed file corrupt, read so far",
             SL_LF_STR, "path", f->path, SL_LF_INT, "offset",
             (int64_t)(g->in_off - g->z.avail_in), SL_LF_STR, "reason",
             g->z.msg ? g->z.msg : "inflate", SL_LF_END);
      g->z.avail_in = 0;
      g->corrupt = true;  /* the next read ends the file */
      break;
    }
  }
  /* Input not inflated yet (no room) is read again next time. */
  g->in_off -= g->z.avail_in;
  g->z.avail_in = 0;
  if (rc == 0)
    rc = gz_emit(f, false);
  f->t->st.bytes_read += (uint64_t)n;
  f->in->bytes_read += (uint64_t)n;
  return rc ? rc : 1;
}
