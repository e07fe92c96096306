/* sl_lj.c - Lumberjack v2 (Beats protocol) codec. See sl_lj.h for the
 * contract and PROTOCOL.md for the wire format.
 *
 * Decoder structure: two "layers" run the same frame scanner. The outer
 * layer reads wire bytes; when it meets a 'C' header it streams the
 * compressed payload through inflate in fixed chunks and feeds the output to
 * the inner layer, which delivers the frames found there. Nothing is ever
 * sized from a length the peer claims: a C payload is never buffered (it is
 * inflated as it arrives), and partial frames are buffered only up to the
 * frame's validated length (<= max_frame + header).
 *
 * Zero copy: a frame that lies entirely inside the bytes handed to a layer
 * (the caller's buffer, or one inflate output chunk) is delivered in place;
 * only a frame split across feeds/chunks is copied into the layer's partial
 * buffer.
 */
#include "sl_lj.h"
#include "sl_err.h"
#include "sl_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Inflate output chunk. Bounds how far past max_inflate a bomb can get
 * before the check (one chunk) and is the per-connection cost of having a C
 * frame open, so keep it modest; 64 KiB makes a typical Beats batch (events
 * of a few hundred bytes) come out in a handful of inflate calls. */
#define LJ_ZCHUNK (64u * 1024u)

/* A partial-frame buffer that grew past this is freed once its frame is
 * delivered, so a connection that sent one 60 MiB event does not keep 60 MiB
 * while idle for hours. Smaller buffers are kept to avoid malloc churn. */
#define LJ_KEEP_BYTES (256u * 1024u)

/* Frame header sizes (version + type + fields before the payload). */
#define LJ_HDR_SHORT 6   /* W, A, C: version, type, u32 */
#define LJ_HDR_LONG 10   /* J, D: version, type, u32 seq, u32 len/count */

/* One frame scanner: the wire, or the inflated inside of one C frame. */
struct lj_layer {
  struct sl_buf pb;     /* bytes of a frame split across feeds (else empty) */
  uint64_t off;         /* stream offset of the next byte fed (for errors) */
  uint64_t frame_off;   /* stream offset of the current frame's first byte */
  /* Scan progress of the current frame, offsets relative to its first
   * byte. Kept so that a D frame arriving byte by byte is walked once, not
   * once per byte (which would be quadratic in its pair count). */
  uint64_t need;        /* bytes of the frame needed to make progress */
  uint64_t d_off;       /* D: offset of the next pair's key length */
  uint32_t d_left;      /* D: pairs not walked yet */
  int inner;            /* 1 for the layer inside a C frame */
};

struct sl_lj_dec {
  struct sl_lj_limits lim;
  struct lj_layer outer;
  struct lj_layer in;
  struct sl_buf jb;     /* D frames converted to JSON text */
  /* The C frame being inflated (outer layer only). */
  int in_c;             /* 1 while the outer layer is inside a C payload */
  uint64_t c_off;       /* wire offset of the C header */
  uint32_t c_len;       /* compressed length from the header */
  uint32_t c_left;      /* compressed bytes not seen yet */
  uint64_t c_out;       /* bytes inflated from this C frame so far */
  uint64_t c_in;        /* compressed bytes inflate consumed so far */
  int c_ended;          /* the zlib stream reached its end */
  int z_ready;          /* z was initialised with inflateInit */
  z_stream z;
  unsigned char *zout;  /* LJ_ZCHUNK bytes, allocated on the first C */
  /* Sticky failure: after an error or a callback stop the position in the
   * stream is lost, so every later feed is refused. */
  int failed;
  sl_lj_frame_cb cb;
  void *arg;
  char *err;
  size_t errlen;
};

static int layer_feed(struct sl_lj_dec *d, struct lj_layer *L,
                      const unsigned char *p, size_t n);

void
sl_lj_limits_default(struct sl_lj_limits *l)
{
  /* 64 MiB: Beats' own default max message size is 100 MB on the Logstash
   * side and ~10 MB per event in practice; one event or one compressed
   * batch above 64 MiB is a broken or hostile peer, and this is also the
   * most a single connection can make us buffer. */
  l->max_frame = 64u * 1024u * 1024u;
  /* 128 MiB: a Filebeat batch (bulk_max_size 2048 events) inflates to a few
   * MiB; the cap stops a zip bomb (1 KiB of zlib can claim ~1 MiB) from
   * making us do unbounded work or deliver unbounded data per frame. */
  l->max_inflate = 128u * 1024u * 1024u;
  /* 65536: Filebeat's window grows up to bulk_max_size (2048 by default,
   * users raise it to tens of thousands); a window is how many events the
   * receiver may have to hold before it acks, so it must be bounded. */
  l->max_window = 65536u;
  l->max_event = l->max_frame;
  l->max_ratio = 0;
}

static uint32_t
be32(const unsigned char *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void
put_be32(char *p, uint32_t v)
{
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static int
fail(struct sl_lj_dec *d, int rc, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

static int
fail(struct sl_lj_dec *d, int rc, const char *fmt, ...)
{
  va_list ap;

  if (d->err && d->errlen) {
    va_start(ap, fmt);
    vsnprintf(d->err, d->errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* " inside the C frame at wire offset N" for errors in the inner layer. */
static const char *
where(struct sl_lj_dec *d, const struct lj_layer *L, char *tmp, size_t n)
{
  if (!L->inner)
    return "";
  snprintf(tmp, n, " (inflated offset, inside the C frame at offset %llu)",
           (unsigned long long)d->c_off);
  return tmp;
}

static void
layer_reset_scan(struct lj_layer *L)
{
  L->need = 0;
  L->d_off = 0;
  L->d_left = 0;
}

static void
layer_reset(struct lj_layer *L)
{
  layer_reset_scan(L);
  L->off = 0;
  L->frame_off = 0;
  if (L->pb.cap > LJ_KEEP_BYTES)
    sl_buf_free(&L->pb);
  else
    sl_buf_reset(&L->pb);
}

/* "0x33 '3'" or "0x00" for a byte named in an error. */
static const char *
byte_name(int c, char *tmp, size_t n)
{
  if (c >= 0x20 && c < 0x7f)
    snprintf(tmp, n, "0x%02x '%c'", c, c);
  else
    snprintf(tmp, n, "0x%02x", c);
  return tmp;
}

/* Look at the frame starting at s (avail bytes known). Returns 1 when the
 * frame is complete in s (L->need is its total length; for C, the header
 * length), 0 when more bytes are needed (L->need is how many the frame must
 * have before the next step can be taken), or a negative error. */
static int
scan(struct sl_lj_dec *d, struct lj_layer *L, const unsigned char *s,
     size_t avail)
{
  const struct sl_lj_limits *lim = &d->lim;
  char tmp[96], bn[16];
  uint64_t voff, end;
  uint32_t v, klen, vlen;
  int ver, type;

  if (avail < 2) {
    L->need = 2;
    return 0;
  }
  ver = s[0];
  type = s[1];
  if (ver != '2' && ver != '1')
    return fail(d, SL_EPROTO, "bad version byte %s at offset %llu%s"
                " (want '2' or '1')", byte_name(ver, bn, sizeof(bn)),
                (unsigned long long)L->frame_off,
                where(d, L, tmp, sizeof(tmp)));
  switch (type) {
  case SL_LJ_WINDOW:
  case SL_LJ_ACK:
    L->need = LJ_HDR_SHORT;
    if (avail < LJ_HDR_SHORT)
      return 0;
    v = be32(s + 2);
    if (type == SL_LJ_WINDOW && v > lim->max_window)
      return fail(d, SL_E2BIG, "window %u at offset %llu%s is over "
                  "max_window %u", v, (unsigned long long)L->frame_off,
                  where(d, L, tmp, sizeof(tmp)), lim->max_window);
    return 1;
  case SL_LJ_COMPRESSED:
    /* go-lumber would recurse; we refuse, because every nesting level
     * multiplies the inflate ratio past max_inflate's intent and no real
     * sender (Beats, logstash-forwarder) ever nests. */
    if (L->inner)
      return fail(d, SL_EPROTO, "nested C frame at inflated offset %llu "
                  "inside the C frame at offset %llu",
                  (unsigned long long)L->frame_off,
                  (unsigned long long)d->c_off);
    L->need = LJ_HDR_SHORT;
    if (avail < LJ_HDR_SHORT)
      return 0;
    v = be32(s + 2);
    if (v > lim->max_frame)
      return fail(d, SL_E2BIG, "C frame at offset %llu claims %u compressed "
                  "bytes, over max_frame %u",
                  (unsigned long long)L->frame_off, v, lim->max_frame);
    if (v == 0)
      return fail(d, SL_EPROTO, "empty C frame at offset %llu (no zlib "
                  "stream)", (unsigned long long)L->frame_off);
    return 1;
  case SL_LJ_JSON:
    if (ver != '2')
      return fail(d, SL_EPROTO, "J frame with version '%c' at offset %llu%s "
                  "(JSON frames exist only in version '2')", ver,
                  (unsigned long long)L->frame_off,
                  where(d, L, tmp, sizeof(tmp)));
    L->need = LJ_HDR_LONG;
    if (avail < LJ_HDR_LONG)
      return 0;
    v = be32(s + 6);
    if (v > lim->max_frame)
      return fail(d, SL_E2BIG, "J frame at offset %llu%s claims %u bytes, "
                  "over max_frame %u", (unsigned long long)L->frame_off,
                  where(d, L, tmp, sizeof(tmp)), v, lim->max_frame);
    if (v > lim->max_event)
      return fail(d, SL_E2BIG, "J frame at offset %llu%s claims %u bytes, "
                  "an event over max_event_bytes %u",
                  (unsigned long long)L->frame_off,
                  where(d, L, tmp, sizeof(tmp)), v, lim->max_event);
    L->need = LJ_HDR_LONG + (uint64_t)v;
    return avail >= L->need;
  case SL_LJ_DATA:
    if (L->d_off == 0) {
      L->need = LJ_HDR_LONG;
      if (avail < LJ_HDR_LONG)
        return 0;
      v = be32(s + 6);
      /* Each pair takes at least 8 bytes (two lengths), so a count above
       * max_frame / 8 cannot fit; say so now instead of after reading. */
      if (v > lim->max_frame / 8)
        return fail(d, SL_E2BIG, "D frame at offset %llu%s claims %u pairs, "
                    "more than max_frame %u can hold",
                    (unsigned long long)L->frame_off,
                    where(d, L, tmp, sizeof(tmp)), v, lim->max_frame);
      L->d_left = v;
      L->d_off = LJ_HDR_LONG;
    }
    while (L->d_left > 0) {
      if (avail < L->d_off + 4) {
        L->need = L->d_off + 4;
        return 0;
      }
      klen = be32(s + L->d_off);
      voff = L->d_off + 4 + klen;
      if (voff + 4 - LJ_HDR_LONG > lim->max_frame)
        goto d_big;
      if (voff + 4 - LJ_HDR_LONG > lim->max_event)
        goto d_event;
      if (avail < voff + 4) {
        L->need = voff + 4;
        return 0;
      }
      vlen = be32(s + voff);
      end = voff + 4 + vlen;
      if (end - LJ_HDR_LONG > lim->max_frame)
        goto d_big;
      if (end - LJ_HDR_LONG > lim->max_event)
        goto d_event;
      L->d_off = end;
      L->d_left--;
    }
    L->need = L->d_off;
    return avail >= L->need;
  default:
    return fail(d, SL_EPROTO, "unknown frame type %s at offset %llu%s",
                byte_name(type, bn, sizeof(bn)),
                (unsigned long long)L->frame_off + 1,
                where(d, L, tmp, sizeof(tmp)));
  }
d_big:
  return fail(d, SL_E2BIG, "D frame at offset %llu%s: key/value pairs "
              "exceed max_frame %u", (unsigned long long)L->frame_off,
              where(d, L, tmp, sizeof(tmp)), lim->max_frame);
d_event:
  return fail(d, SL_E2BIG, "D frame at offset %llu%s: key/value pairs "
              "make an event over max_event_bytes %u",
              (unsigned long long)L->frame_off,
              where(d, L, tmp, sizeof(tmp)), lim->max_event);
}

/* Turn the v1 pairs of a complete D frame into {"k":"v",...}. The scan has
 * already checked every length against the frame's end. */
static int
data_to_json(struct sl_lj_dec *d, const unsigned char *s, uint64_t len)
{
  uint32_t count = be32(s + 6), klen, vlen, i;
  uint64_t o = LJ_HDR_LONG;
  int rc;

  sl_buf_reset(&d->jb);
  rc = sl_buf_append_byte(&d->jb, '{');
  for (i = 0; rc == 0 && i < count; i++) {
    klen = be32(s + o);
    o += 4;
    if (i > 0)
      rc = sl_buf_append_byte(&d->jb, ',');
    if (rc == 0)
      rc = sl_json_str(&d->jb, (const char *)s + o, klen);
    o += klen;
    vlen = be32(s + o);
    o += 4;
    if (rc == 0)
      rc = sl_buf_append_byte(&d->jb, ':');
    if (rc == 0)
      rc = sl_json_str(&d->jb, (const char *)s + o, vlen);
    o += vlen;
  }
  if (rc == 0)
    rc = sl_buf_append_byte(&d->jb, '}');
  if (rc == 0 && o != len)
    rc = SL_EINTERNAL;
  if (rc)
    return fail(d, rc, "D frame conversion to JSON failed: %s",
                sl_strerror(rc));
  return 0;
}

/* A complete frame of L->need bytes at s. */
static int
deliver(struct sl_lj_dec *d, struct lj_layer *L, const unsigned char *s)
{
  struct sl_lj_frame f;
  int rc;

  f.type = (enum sl_lj_type)s[1];
  f.version = s[0];
  f.seq = be32(s + 2);
  f.data = NULL;
  f.len = 0;
  switch (f.type) {
  case SL_LJ_COMPRESSED:
    d->in_c = 1;
    d->c_off = L->frame_off;
    d->c_len = f.seq;
    d->c_left = f.seq;
    d->c_out = 0;
    d->c_in = 0;
    d->c_ended = 0;
    return 0;
  case SL_LJ_JSON:
    f.data = (const char *)s + LJ_HDR_LONG;
    f.len = be32(s + 6);
    break;
  case SL_LJ_DATA:
    rc = data_to_json(d, s, L->need);
    if (rc)
      return rc;
    f.data = d->jb.p;
    f.len = d->jb.len;
    break;
  default:
    break;
  }
  rc = d->cb(d->arg, &f);
  if (f.type == SL_LJ_DATA && d->jb.cap > LJ_KEEP_BYTES)
    sl_buf_free(&d->jb);
  if (rc)
    fail(d, rc, "frame callback stopped decoding at the %c frame at offset "
         "%llu%s: %s", (char)f.type, (unsigned long long)L->frame_off,
         L->inner ? " (inflated, inside a C frame)" : "",
         rc < 0 ? sl_strerror(rc) : "non-zero return");
  return rc;
}

static int
c_start_zlib(struct sl_lj_dec *d)
{
  int zr;

  if (d->zout == NULL) {
    d->zout = malloc(LJ_ZCHUNK);
    if (d->zout == NULL)
      return fail(d, SL_ENOMEM, "no memory for the inflate buffer");
  }
  if (d->z_ready)
    return 0;
  memset(&d->z, 0, sizeof(d->z));
  zr = inflateInit(&d->z);
  if (zr != Z_OK)
    return fail(d, zr == Z_MEM_ERROR ? SL_ENOMEM : SL_EINTERNAL,
                "inflateInit failed (%d)", zr);
  d->z_ready = 1;
  return 0;
}

/* m compressed bytes of the open C frame. */
static int
c_feed(struct sl_lj_dec *d, const unsigned char *in, size_t m)
{
  size_t produced, keep;
  int zr, rc;

  if (d->c_ended)
    goto trailing;
  rc = c_start_zlib(d);
  if (rc)
    return rc;
  d->z.next_in = (unsigned char *)in;
  d->z.avail_in = (uInt)m;
  do {
    uInt before = d->z.avail_in;

    d->z.next_out = d->zout;
    d->z.avail_out = LJ_ZCHUNK;
    zr = inflate(&d->z, Z_NO_FLUSH);
    d->c_in += before - d->z.avail_in;
    /* Streaming is what bounds memory: each chunk is handed on and its
     * events spooled before the next is inflated, and a bomb is stopped
     * once its ratio shows, not after max_inflate bytes. */
    produced = LJ_ZCHUNK - d->z.avail_out;
    if (d->lim.max_ratio && d->c_out + produced > SL_LJ_RATIO_GRACE &&
        d->c_out + produced > (uint64_t)d->lim.max_ratio * d->c_in)
      return fail(d, SL_E2BIG, "C frame at offset %llu inflates %llu:1 "
                  "(%llu bytes from %llu), over max_inflate_ratio %u "
                  "(zip bomb guard)", (unsigned long long)d->c_off,
                  (unsigned long long)((d->c_out + produced) /
                                       (d->c_in ? d->c_in : 1)),
                  (unsigned long long)(d->c_out + produced),
                  (unsigned long long)d->c_in, d->lim.max_ratio);
    /* Hand on what inflate produced before looking at its verdict, and cut
     * exactly at max_inflate: the inner layer then sees the same bytes
     * whatever the input chunking was, so results never depend on how
     * the peer's bytes were split across reads. */
    if (produced) {
      if (produced > d->lim.max_inflate - d->c_out) {
        keep = (size_t)(d->lim.max_inflate - d->c_out);
        rc = keep ? layer_feed(d, &d->in, d->zout, keep) : 0;
        if (rc)
          return rc;
        return fail(d, SL_E2BIG, "C frame at offset %llu inflates past "
                    "max_inflate %llu bytes (zip bomb guard)",
                    (unsigned long long)d->c_off,
                    (unsigned long long)d->lim.max_inflate);
      }
      d->c_out += produced;
      rc = layer_feed(d, &d->in, d->zout, produced);
      if (rc)
        return rc;
    }
    if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR)
      return fail(d, SL_EPROTO, "bad zlib data in the C frame at offset "
                  "%llu: %s", (unsigned long long)d->c_off,
                  d->z.msg ? d->z.msg : "needs a preset dictionary");
    if (zr == Z_MEM_ERROR)
      return fail(d, SL_ENOMEM, "no memory for inflate");
    if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
      return fail(d, SL_EINTERNAL, "inflate failed (%d)", zr);
    if (zr == Z_STREAM_END) {
      d->c_ended = 1;
      if (d->z.avail_in > 0)
        goto trailing;
      break;
    }
    if (zr == Z_BUF_ERROR)
      break;
  } while (d->z.avail_in > 0 || d->z.avail_out == 0);
  return 0;
trailing:
  return fail(d, SL_EPROTO, "garbage after the end of the zlib stream in the "
              "C frame at offset %llu", (unsigned long long)d->c_off);
}

/* The last compressed byte of the C frame was consumed. */
static int
c_end(struct sl_lj_dec *d)
{
  if (!d->c_ended)
    return fail(d, SL_EPROTO, "truncated zlib stream: the C frame at offset "
                "%llu ended after %u bytes without the end of the stream",
                (unsigned long long)d->c_off, d->c_len);
  if (d->in.pb.len > 0)
    return fail(d, SL_EPROTO, "the C frame at offset %llu ends inside a "
                "frame (%zu trailing inflated bytes)",
                (unsigned long long)d->c_off, d->in.pb.len);
  inflateReset(&d->z);
  d->in_c = 0;
  d->c_ended = 0;
  d->c_out = 0;
  d->c_in = 0;
  layer_reset(&d->in);
  return 0;
}

static int
layer_feed(struct sl_lj_dec *d, struct lj_layer *L, const unsigned char *p,
           size_t n)
{
  size_t m;
  int rc;

  while (n > 0) {
    if (!L->inner && d->in_c) {
      m = n < d->c_left ? n : d->c_left;
      rc = c_feed(d, p, m);
      if (rc)
        return rc;
      p += m;
      n -= m;
      L->off += m;
      d->c_left -= (uint32_t)m;
      if (d->c_left == 0) {
        rc = c_end(d);
        if (rc)
          return rc;
      }
      continue;
    }
    if (L->pb.len > 0) {
      /* Finish the frame that began in an earlier feed: take only what
       * the scan said it needs, so the buffer never holds more than one
       * frame. */
      m = L->need - L->pb.len;
      if (m > n)
        m = n;
      rc = sl_buf_append(&L->pb, p, m);
      if (rc)
        return fail(d, rc, "cannot buffer a partial frame: %s",
                    sl_strerror(rc));
      p += m;
      n -= m;
      L->off += m;
      rc = scan(d, L, (const unsigned char *)L->pb.p, L->pb.len);
      if (rc <= 0) {
        if (rc < 0)
          return rc;
        continue;
      }
      rc = deliver(d, L, (const unsigned char *)L->pb.p);
      layer_reset_scan(L);
      if (L->pb.cap > LJ_KEEP_BYTES)
        sl_buf_free(&L->pb);
      else
        sl_buf_reset(&L->pb);
      L->frame_off = L->off;
      if (rc)
        return rc;
      continue;
    }
    L->frame_off = L->off;
    rc = scan(d, L, p, n);
    if (rc < 0)
      return rc;
    if (rc == 0) {
      /* n < need <= max_frame + header: the buffer stays one frame. */
      rc = sl_buf_append(&L->pb, p, n);
      if (rc)
        return fail(d, rc, "cannot buffer a partial frame: %s",
                    sl_strerror(rc));
      L->off += n;
      return 0;
    }
    m = (size_t)L->need;
    rc = deliver(d, L, p);
    layer_reset_scan(L);
    p += m;
    n -= m;
    L->off += m;
    L->frame_off = L->off;
    if (rc)
      return rc;
  }
  return 0;
}

struct sl_lj_dec *
sl_lj_dec_new(const struct sl_lj_limits *lim)
{
  struct sl_lj_dec *d = calloc(1, sizeof(*d));
  size_t jmax;

  if (d == NULL)
    return NULL;
  if (lim)
    d->lim = *lim;
  else
    sl_lj_limits_default(&d->lim);
  /* Whole header + payload of the largest frame. */
  sl_buf_init(&d->outer.pb, (size_t)d->lim.max_frame + LJ_HDR_LONG);
  sl_buf_init(&d->in.pb, (size_t)d->lim.max_frame + LJ_HDR_LONG);
  d->in.inner = 1;
  /* JSON of a D frame: every payload byte escapes to at most 6 bytes
   * ("\u00XX"), plus braces; the largest frame must still convert. */
  jmax = (size_t)d->lim.max_event * 6 + 16;
  sl_buf_init(&d->jb, jmax);
  return d;
}

void
sl_lj_dec_free(struct sl_lj_dec *d)
{
  if (d == NULL)
    return;
  sl_buf_free(&d->outer.pb);
  sl_buf_free(&d->in.pb);
  sl_buf_free(&d->jb);
  if (d->z_ready)
    inflateEnd(&d->z);
  free(d->zout);
  free(d);
}

int
sl_lj_dec_feed(struct sl_lj_dec *d, const char *p, size_t n,
               sl_lj_frame_cb cb, void *arg, char *err, size_t errlen)
{
  int rc;

  d->cb = cb;
  d->arg = arg;
  d->err = err;
  d->errlen = errlen;
  if (err && errlen)
    err[0] = '\0';
  if (d->failed)
    return fail(d, SL_EINVAL, "decoder already failed or was stopped (%d); "
                "discard it", d->failed);
  rc = layer_feed(d, &d->outer, (const unsigned char *)p, n);
  if (rc)
    d->failed = rc;
  d->err = NULL;
  d->errlen = 0;
  return rc;
}

size_t
sl_lj_dec_pending(const struct sl_lj_dec *d)
{
  /* Inside a C frame nothing may be buffered at a chunk boundary, yet the
   * connection is mid-frame: count the C header so idle checks see it. */
  return d->outer.pb.len + d->in.pb.len + (d->in_c ? LJ_HDR_SHORT : 0);
}

/* Encoder. Each function reserves its whole frame first so that a failure
 * leaves b unchanged. */

void
sl_lj_put_hdr(char p[SL_LJ_HDR_LEN], enum sl_lj_type type, uint32_t v)
{
  p[0] = SL_LJ_VERSION;
  p[1] = (char)type;
  put_be32(p + 2, v);
}

static int
enc_short(struct sl_buf *b, enum sl_lj_type type, uint32_t v)
{
  char f[SL_LJ_HDR_LEN];

  sl_lj_put_hdr(f, type, v);
  return sl_buf_append(b, f, sizeof(f));
}

int
sl_lj_enc_window(struct sl_buf *b, uint32_t n)
{
  return enc_short(b, SL_LJ_WINDOW, n);
}

int
sl_lj_enc_ack(struct sl_buf *b, uint32_t seq)
{
  return enc_short(b, SL_LJ_ACK, seq);
}

int
sl_lj_enc_json(struct sl_buf *b, uint32_t seq, const char *json, size_t len)
{
  char h[LJ_HDR_LONG];
  int rc;

  if (len > UINT32_MAX)
    return SL_E2BIG;
  rc = sl_buf_reserve(b, sizeof(h) + len);
  if (rc)
    return rc;
  h[0] = SL_LJ_VERSION;
  h[1] = SL_LJ_JSON;
  put_be32(h + 2, seq);
  put_be32(h + 6, (uint32_t)len);
  rc = sl_buf_append(b, h, sizeof(h));
  if (rc == 0)
    rc = sl_buf_append(b, json, len);
  return rc;
}

size_t
sl_lj_enc_json_begin(struct sl_buf *b, uint32_t seq, int *rc)
{
  char h[LJ_HDR_LONG];
  int r;

  h[0] = SL_LJ_VERSION;
  h[1] = SL_LJ_JSON;
  put_be32(h + 2, seq);
  put_be32(h + 6, 0);
  r = sl_buf_append(b, h, sizeof(h));
  if (rc)
    *rc = r;
  return r ? 0 : b->len - 4;
}

void
sl_lj_enc_json_end(struct sl_buf *b, size_t len_off)
{
  put_be32(b->p + len_off, (uint32_t)(b->len - len_off - 4));
}

int
sl_lj_enc_compressed(struct sl_buf *b, const char *frames, size_t len,
                     int level)
{
  z_stream z;
  uLong bound;
  size_t start = b->len, clen;
  int zr, rc;

  if (level < 1 || level > 9)
    return SL_EINVAL;
  if (len > UINT32_MAX)
    return SL_E2BIG;
  memset(&z, 0, sizeof(z));
  zr = deflateInit(&z, level);
  if (zr != Z_OK)
    return zr == Z_MEM_ERROR ? SL_ENOMEM : SL_EINTERNAL;
  /* Deflate straight into b: reserve the worst case once (deflateBound is
   * a few bytes over len for incompressible data). */
  bound = deflateBound(&z, (uLong)len);
  if (bound > UINT32_MAX) {
    rc = SL_E2BIG;
    goto out;
  }
  rc = sl_buf_reserve(b, LJ_HDR_SHORT + (size_t)bound);
  if (rc)
    goto out;
  b->p[start] = SL_LJ_VERSION;
  b->p[start + 1] = SL_LJ_COMPRESSED;
  z.next_in = (unsigned char *)frames;
  z.avail_in = (uInt)len;
  z.next_out = (unsigned char *)b->p + start + LJ_HDR_SHORT;
  z.avail_out = (uInt)bound;
  zr = deflate(&z, Z_FINISH);
  if (zr != Z_STREAM_END) {
    rc = SL_EINTERNAL;
    goto out;
  }
  clen = (size_t)z.total_out;
  if (clen > UINT32_MAX) {
    rc = SL_E2BIG;
    goto out;
  }
  put_be32(b->p + start + 2, (uint32_t)clen);
  b->len = start + LJ_HDR_SHORT + clen;
  b->p[b->len] = '\0';
out:
  deflateEnd(&z);
  return rc;
}
