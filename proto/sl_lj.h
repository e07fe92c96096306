/* sl_lj.h - Lumberjack v2 (Beats protocol) codec. Pure: bytes in, frames
 * out; no sockets, no loop. See PROTOCOL.md for the wire format.
 *
 * Decoder: feed any number of bytes at any boundaries; each complete frame
 * is delivered to the callback in order. Frames inside a 'C' frame are
 * inflated and delivered as if they had arrived on the wire. Limits (below)
 * are enforced; a violation returns SL_EPROTO / SL_E2BIG with a reason in
 * `err` and the decoder must then be discarded (the caller closes that one
 * connection).
 *
 * Encoder: appends frames to an sl_buf.
 */
#ifndef SL_LJ_H
#define SL_LJ_H

#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"

#define SL_LJ_VERSION '2'

enum sl_lj_type {
  SL_LJ_WINDOW = 'W',
  SL_LJ_JSON = 'J',
  SL_LJ_DATA = 'D',
  SL_LJ_COMPRESSED = 'C',
  SL_LJ_ACK = 'A',
};

/* Each limit's error names it by its collector config key and value
 * ("... over max_event_bytes 10485760"). */
struct sl_lj_limits {
  uint32_t max_frame;      /* largest J/D payload or C compressed length */
  uint32_t max_event;      /* largest J/D payload (max_event_bytes);
                              <= max_frame to matter */
  uint64_t max_inflate;    /* largest decompressed size of one C frame */
  uint32_t max_ratio;      /* largest inflated/compressed ratio of a C
                              frame once it inflated SL_LJ_RATIO_GRACE
                              bytes (max_inflate_ratio); 0: no check */
  uint32_t max_window;     /* largest W value accepted */
};
/* The ratio is checked only past this much output: one legitimate event
 * of a repeated character (an agent's 1 MiB truncated line) compresses
 * ~1000:1, a bomb must not get far past it before the check. */
#define SL_LJ_RATIO_GRACE_MIB 4
#define SL_LJ_RATIO_GRACE ((unsigned)SL_LJ_RATIO_GRACE_MIB << 20)
/* "4 MiB", for help texts that must say what the code does. */
#define SL_LJ_STR_(x) #x
#define SL_LJ_RATIO_GRACE_TEXT_(x) SL_LJ_STR_(x) " MiB"
#define SL_LJ_RATIO_GRACE_TEXT SL_LJ_RATIO_GRACE_TEXT_(SL_LJ_RATIO_GRACE_MIB)
/* Defaults: 64 MiB frame and event, 128 MiB inflated, no ratio check,
 * 65536 window (the collector's config sets its own). */
void sl_lj_limits_default(struct sl_lj_limits *l);

struct sl_lj_frame {
  enum sl_lj_type type;   /* WINDOW, JSON, DATA or ACK (never COMPRESSED) */
  uint32_t seq;           /* JSON/DATA: sequence; ACK: acked seq;
                             WINDOW: window size */
  const char *data;       /* JSON: the JSON bytes as sent;
                             DATA: the v1 key/value pairs converted by the
                             decoder into a JSON object text
                             ({"k":"v",...}, all values strings);
                             NULL for WINDOW/ACK */
  size_t len;
  int version;            /* '1' or '2' as it appeared on the wire */
};

/* Return 0 to continue, non-zero to stop decoding (returned by feed).
 * f->data is valid only during the call: it points into the caller's fed
 * buffer, the inflate chunk or the decoder's partial-frame buffer. A stop,
 * like an error, ends the decoder: the bytes after the frame are not
 * consumed, later feeds return SL_EINVAL; discard it. */
typedef int (*sl_lj_frame_cb)(void *arg, const struct sl_lj_frame *f);

struct sl_lj_dec;
struct sl_lj_dec *sl_lj_dec_new(const struct sl_lj_limits *lim);
void sl_lj_dec_free(struct sl_lj_dec *d);
/* Consume all n bytes (buffering a partial frame). Returns 0, the callback's
 * non-zero value, or SL_EPROTO/SL_E2BIG/SL_ENOMEM with a reason in err. */
int sl_lj_dec_feed(struct sl_lj_dec *d, const char *p, size_t n,
                   sl_lj_frame_cb cb, void *arg, char *err, size_t errlen);
/* Bytes held waiting for the rest of a frame (for idle/half-frame checks
 * and memory accounting). */
size_t sl_lj_dec_pending(const struct sl_lj_dec *d);

/* Every fixed-size header is 6 bytes: '2', the type, one big-endian u32
 * (W: window size, A: acked sequence, C: compressed length). Writes it at
 * p, which must have room for SL_LJ_HDR_LEN bytes: for callers that
 * reserve the header first and fill it in place (the agent's batches), or
 * keep it in their own memory (the collector's ack writes). */
#define SL_LJ_HDR_LEN 6
void sl_lj_put_hdr(char p[SL_LJ_HDR_LEN], enum sl_lj_type type, uint32_t v);

int sl_lj_enc_window(struct sl_buf *b, uint32_t n) SL_WUR;
int sl_lj_enc_json(struct sl_buf *b, uint32_t seq, const char *json,
                   size_t len) SL_WUR;
int sl_lj_enc_ack(struct sl_buf *b, uint32_t seq) SL_WUR;
/* Wrap `len` bytes of already-encoded frames in one 'C' frame compressed at
 * zlib `level` (1..9), appended to b. */
int sl_lj_enc_compressed(struct sl_buf *b, const char *frames, size_t len,
                         int level) SL_WUR;
/* Start a J frame whose payload is written afterwards directly into b (no
 * copy): returns the offset of the length field; finish with
 * sl_lj_enc_json_end(b, off) once the payload is appended. */
size_t sl_lj_enc_json_begin(struct sl_buf *b, uint32_t seq, int *rc);
void sl_lj_enc_json_end(struct sl_buf *b, size_t len_off);

#endif
