/* event_writer.c - the ECS event writer shared by all parsers (see
 * event_writer.h for the layout and the rules every event keeps).
 */
#include "event_writer.h"

#include <stdio.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "sl_hash.h"
#include "sl_json.h"
#include "sl_time.h"
#include "timestamp.h"

/* ---- writer helpers ---------------------------------------------------- */

/* Where a writer points after a failed first reserve: writes of 0 bytes
 * stay harmless, longer ones take the slow path and see `err`. */
static char w_dummy[1];

void
sl_ew_init(struct sl_ew *w, struct sl_buf *b)
{
  int rc;

  w->b = b;
  w->err = 0;
  /* A buffer that never held anything has no memory yet. */
  if (b->p == NULL && (rc = sl_buf_reserve(b, 256)) != 0) {
    w->err = rc;
    w->cur = w->lim = w_dummy;
    return;
  }
  w->cur = b->p + b->len;
  w->lim = b->p + b->cap - 1;
}

int
sl_ew_grow(struct sl_ew *w, size_t n)
{
  struct sl_buf *b = w->b;
  int rc;

  if (w->err)
    return 0;
  b->len = sl_ew_len(w);
  rc = sl_buf_reserve(b, n);
  if (rc) {
    w->err = rc;
    return 0;
  }
  w->cur = b->p + b->len;
  w->lim = b->p + b->cap - 1;
  return 1;
}

/* The same output as sl_json_escape (short escapes, \u00xx, U+FFFD for
 * invalid UTF-8) except NUL, written through the inline writer: the raw
 * parser escapes every whole line, and a call per run of plain bytes was
 * the largest cost of a raw event. */
void
sl_ew_escape(struct sl_ew *w, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run, k;
  char esc[6];

  while (i < n) {
    run = i;
    while (run < n && !sl_json_stop[u[run]])
      run++;
    sl_ew_put(w, s + i, run - i);
    i = run;
    if (i == n)
      break;
    switch (u[i]) {
    case '"':  SL_EW_LIT(w, "\\\""); break;
    case '\\': SL_EW_LIT(w, "\\\\"); break;
    case '\n': SL_EW_LIT(w, "\\n"); break;
    case '\r': SL_EW_LIT(w, "\\r"); break;
    case '\t': SL_EW_LIT(w, "\\t"); break;
    case '\b': SL_EW_LIT(w, "\\b"); break;
    case '\f': SL_EW_LIT(w, "\\f"); break;
    case 0:
      /* NUL: the collector's jansson refuses \u0000 (see the header). */
      SL_EW_LIT(w, "\xEF\xBF\xBD");
      break;
    default:
      if (u[i] < 0x20) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[u[i] >> 4];
        esc[5] = hex[u[i] & 15];
        sl_ew_put(w, esc, 6);
        break;
      }
      k = sl_utf8_seq(u + i, n - i);
      if (k == 0) {
        SL_EW_LIT(w, "\xEF\xBF\xBD");
      } else {
        sl_ew_put(w, s + i, k);
        i += k - 1;
      }
      break;
    }
    i++;
  }
}

void
sl_ew_repair(struct sl_ew *w, const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run, k;

  while (i < n) {
    run = i;
    while (run < n && u[run] < 0x80 && u[run] != '\\')
      run++;
    sl_ew_put(w, s + i, run - i);
    i = run;
    if (i == n)
      break;
    if (u[i] == '\\') {
      /* Valid input: an escape is 2 bytes, or 6 for \uXXXX. */
      if (u[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
        SL_EW_LIT(w, "\\ufffd");
        i += 6;
      } else {
        sl_ew_put(w, s + i, 2);
        i += 2;
      }
      continue;
    }
    k = sl_utf8_seq(u + i, n - i);
    if (k == 0) {
      SL_EW_LIT(w, "\xEF\xBF\xBD");
      i++;
    } else {
      sl_ew_put(w, s + i, k);
      i += k;
    }
  }
}

void
sl_ew_u64(struct sl_ew *w, uint64_t v)
{
  char tmp[20];
  size_t i = sl_u64_dec(v, tmp);

  sl_ew_put(w, tmp + i, sizeof(tmp) - i);
}

/* "text" for either kind of sl_ew_text. */
static void
w_text(struct sl_ew *w, const struct sl_ew_text *t)
{
  sl_ew_byte(w, '"');
  if (!t->json)
    sl_ew_escape(w, t->p, t->n);
  else if (t->fix)
    sl_ew_repair(w, t->p, t->n);
  else
    sl_ew_put(w, t->p, t->n);
  sl_ew_byte(w, '"');
}

/* ---- event ids --------------------------------------------------------- */

static void
put_le64(unsigned char *p, uint64_t v)
{
  int i;

  for (i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* The hashed bytes: agent id, one NUL (so "ab"+dev cannot collide with
 * "a"+...), then id_dev, id_ino, fp and offset as little-endian u64
 * (parse.h). The layout
 * is part of the delivery guarantee: changing it re-ids every event. */
void
sl_ew_event_id(const char *aid, size_t n, const struct sl_src *src,
               uint64_t offset, char out[33])
{
  enum { TAIL = 1 + 4 * 8, SMALL = 256 };
  unsigned char buf[SMALL + TAIL], *t;
  XXH128_hash_t h;

  t = n <= SMALL ? buf + n : buf;
  t[0] = 0;
  put_le64(t + 1, src ? src->id_dev : 0);
  put_le64(t + 9, src ? src->id_ino : 0);
  put_le64(t + 17, src ? src->fp : 0);
  put_le64(t + 25, offset);
  if (n <= SMALL) {
    memcpy(buf, aid, n);
    h = XXH3_128bits(buf, n + TAIL);
  } else {
    /* Agent ids are short; this path exists so that none is too long. */
    XXH3_state_t st;

    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, aid, n);
    XXH3_128bits_update(&st, buf, TAIL);
    h = XXH3_128bits_digest(&st);
  }
  sl_hash128_hex((struct sl_hash128){ h.high64, h.low64 }, out);
}

/* ---- the event writer -------------------------------------------------- */

void
sl_ew_ev_clear(struct sl_ew_ev *ev, int64_t ts_ns)
{
  /* Field by field: sl_ew_ev_end reads only these, and a memset of the
   * whole struct per line showed up in profiles (rep stos). */
  ev->ts_ns = ts_ns;
  ev->ts_us = 0;
  ev->msg.p = NULL;
  ev->level.p = NULL;
  ev->trace_id[0] = '\0';
  ev->span_id[0] = '\0';
  ev->txn_id[0] = '\0';
  ev->req_id.p = NULL;
  ev->original.p = NULL;
  ev->error = NULL;
  ev->tag = NULL;
  ev->app_tags = NULL;
}

size_t
sl_ew_ev_begin(struct sl_ew *w)
{
  size_t slot;

  SL_EW_LIT(w, "{\"@timestamp\":\"");
  slot = w->err ? 0 : sl_ew_len(w);
  /* Filled in by sl_ew_ev_end; every sl_time value formats to 24 bytes. */
  SL_EW_LIT(w, "1970-01-01T00:00:00.000Z\"");
  return slot;
}

void
sl_ew_ev_end(struct sl_ew *w, const struct sl_ew_static *st,
             const struct sl_src *src, uint64_t offset, unsigned flags,
             const struct sl_ew_ev *ev, size_t slot)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 8];
  char id[33];
  size_t n;

  if (ev->msg.p) {
    SL_EW_LIT(w, ",\"message\":");
    w_text(w, &ev->msg);
  }
  SL_EW_LIT(w, ",\"log\":{");
  if (ev->level.p) {
    SL_EW_LIT(w, "\"level\":");
    w_text(w, &ev->level);
    sl_ew_byte(w, ',');
  }
  if (src && src->path) {
    SL_EW_LIT(w, "\"file\":{\"path\":\"");
    sl_ew_escape(w, src->path, strlen(src->path));
    SL_EW_LIT(w, "\"},");
  }
  SL_EW_LIT(w, "\"offset\":");
  sl_ew_u64(w, offset);
  if (flags & (SL_LINE_TRUNCATED | SL_LINE_MULTILINE)) {
    SL_EW_LIT(w, ",\"flags\":[");
    if (flags & SL_LINE_TRUNCATED)
      SL_EW_LIT(w, "\"truncated\"");
    if ((flags & SL_LINE_TRUNCATED) && (flags & SL_LINE_MULTILINE))
      sl_ew_byte(w, ',');
    if (flags & SL_LINE_MULTILINE)
      SL_EW_LIT(w, "\"multiline\"");
    sl_ew_byte(w, ']');
  }
  sl_ew_byte(w, '}');
  if (ev->trace_id[0]) {
    SL_EW_LIT(w, ",\"trace\":{\"id\":\"");
    sl_ew_put(w, ev->trace_id, 32);
    SL_EW_LIT(w, "\"}");
  }
  if (ev->span_id[0]) {
    SL_EW_LIT(w, ",\"span\":{\"id\":\"");
    sl_ew_put(w, ev->span_id, 16);
    SL_EW_LIT(w, "\"}");
  }
  if (ev->txn_id[0]) {
    SL_EW_LIT(w, ",\"transaction\":{\"id\":\"");
    sl_ew_put(w, ev->txn_id, 16);
    SL_EW_LIT(w, "\"}");
  }
  if (ev->req_id.p) {
    SL_EW_LIT(w, ",\"http\":{\"request\":{\"id\":");
    w_text(w, &ev->req_id);
    SL_EW_LIT(w, "}}");
  }
  if (ev->error) {
    SL_EW_LIT(w, ",\"error\":{\"message\":\"");
    sl_ew_escape(w, ev->error, strlen(ev->error));
    SL_EW_LIT(w, "\"}");
  }
  if (ev->tag || (ev->app_tags && ev->app_tags_n) ||
      (flags & SL_LINE_REDACTED)) {
    int ntags = 0;

    SL_EW_LIT(w, ",\"tags\":[");
    if (ev->tag) {
      sl_ew_byte(w, '"');
      sl_ew_escape(w, ev->tag, strlen(ev->tag));
      sl_ew_byte(w, '"');
      ntags++;
    }
    if (flags & SL_LINE_REDACTED) {
      if (ntags++)
        sl_ew_byte(w, ',');
      SL_EW_LIT(w, "\"redacted\"");
    }
    if (ev->app_tags && ev->app_tags_n) {
      if (ntags++)
        sl_ew_byte(w, ',');
      sl_ew_put(w, ev->app_tags, ev->app_tags_n);
    }
    sl_ew_byte(w, ']');
  }
  SL_EW_LIT(w, ",\"event\":{\"id\":\"");
  sl_ew_event_id(st->agent_id, st->agent_id_len, src, offset, id);
  sl_ew_put(w, id, 32);
  sl_ew_byte(w, '"');
  if (ev->original.p) {
    SL_EW_LIT(w, ",\"original\":");
    w_text(w, &ev->original);
  }
  sl_ew_put(w, st->suffix, st->suffix_len);
  if (ev->ts_us && !w->err) {
    /* The slot holds 24 bytes; a microsecond stamp needs 3 more. Rare
     * enough (only lines written with us) to pay for a memmove. */
    sl_ew_put(w, "...", 3);
    if (w->err)
      return;
    memmove(w->b->p + slot + 3, w->b->p + slot,
            sl_ew_len(w) - 3 - slot);
    if (sl_ts_format_us(ev->ts_ns, ts) == SL_TS_US_LEN)
      memcpy(w->b->p + slot, ts, SL_TS_US_LEN);
    return;
  }
  if (w->err)
    return;
  n = sl_time_format_ms(ev->ts_ns, ts);
  /* int64 ns spans the years 1677..2262, so this always holds; the check
   * guards the fixed-width slot against a formatter change. */
  if (n == SL_TIME_RFC3339_MS_LEN)
    memcpy(w->b->p + slot, ts, n);
}

void
sl_ew_raw_event(struct sl_ew *w, const struct sl_ew_static *st,
                const struct sl_src *src, const char *line, size_t len,
                uint64_t offset, unsigned flags, int64_t read_time_ns,
                const char *error, const char *tag)
{
  struct sl_ew_ev ev;
  size_t slot;

  sl_ew_ev_clear(&ev, read_time_ns);
  slot = sl_ew_ev_begin(w);
  ev.msg.p = line ? line : "";
  ev.msg.n = line ? len : 0;
  ev.msg.json = 0;
  ev.msg.fix = 0;
  ev.error = error;
  ev.tag = tag;
  sl_ew_ev_end(w, st, src, offset, flags, &ev, slot);
}
