/* parse_internal.h - pieces shared by the parsers behind parse.h: the
 * parse context, a sticky-error writer into the output sl_buf and the ECS
 * event writer every parser ends with. Not for use outside agent/parse*.c.
 *
 * Event layout (key order is irrelevant to ES; this order lets a parser
 * stream application keys straight into the buffer while it scans):
 *
 *   {"@timestamp":"<24 chars, filled in at the end>"
 *    ,"app":{...}                       parser-written, optional
 *    ,"message":"..."                   optional
 *    ,"log":{"level":..,"file":{"path":..},"offset":N,"flags":["truncated"]}
 *    ,"trace":{"id":..},"span":{"id":..},"transaction":{"id":..}
 *    ,"http":{"request":{"id":..}}
 *    ,"error":{"message":..},"tags":["sluice_json_parse_failure"]
 *    ,"event":{"id":..,"original":..    then the pre-rendered suffix:
 *    ,"dataset":..},"data_stream":{..},"host":{..},"agent":{..},"ecs":{..}
 *    ,"service":{..},"labels":{..}}
 *
 * The output never contains a raw newline (NDJSON-safe).
 */
#ifndef SL_PARSE_INTERNAL_H
#define SL_PARSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse.h"
#include "sl_buf.h"

enum sl__parser { SL__PARSER_RAW, SL__PARSER_JSON };

struct sl_parse_ctx {
  enum sl__parser parser;
  char *agent_id;          /* copy, hashed into every event.id */
  size_t agent_id_len;
  char *suffix;            /* `,"dataset":"x"},"data_stream":...}` */
  size_t suffix_len;
  uint64_t hash_seed;      /* random: duplicate-key hashing (parse_json) */
};

/* Sticky-error writer: after the first failed reserve every write is a
 * no-op and `err` keeps the code; the caller checks once at the end and
 * restores the buffer. Keeps the hot path free of per-write branches on
 * return codes. Writes go into space obtained with sl_buf_reserve(); the
 * writer keeps its own cursor and limit (reloading the sl_buf's fields
 * after every byte store was the top cost of the parser), so b->len is
 * only right after sl__w_sync(). */
struct sl__w {
  char *cur;               /* next byte to write */
  char *lim;               /* last byte usable (the NUL slot stays free) */
  struct sl_buf *b;
  int err;
};

void sl__w_init(struct sl__w *w, struct sl_buf *b);
/* Slow path of the writes: reserve n more bytes. 1 if there is room. */
int sl__w_grow(struct sl__w *w, size_t n);

static inline size_t
sl__w_len(const struct sl__w *w)
{
  return (size_t)(w->cur - w->b->p);
}

/* Make b->len match the cursor. */
static inline void
sl__w_sync(struct sl__w *w)
{
  if (!w->err)
    w->b->len = sl__w_len(w);
}

/* Move the cursor back to `len` (only to undo writes). */
static inline void
sl__w_setlen(struct sl__w *w, size_t len)
{
  w->cur = w->b->p + len;
}

static inline void
sl__w_put(struct sl__w *w, const void *p, size_t n)
{
  if ((size_t)(w->lim - w->cur) < n && !sl__w_grow(w, n))
    return;
  memcpy(w->cur, p, n);
  w->cur += n;
}

static inline void
sl__w_byte(struct sl__w *w, char c)
{
  if (w->cur == w->lim && !sl__w_grow(w, 1))
    return;
  *w->cur++ = c;
}

#define SL__W_LIT(w, lit) sl__w_put((w), (lit), sizeof(lit) - 1)

/* A piece of text for an event field. `json` = the bytes are the contents
 * of a JSON string as it appeared in valid JSON input (escapes intact):
 * they are copied verbatim. Otherwise they are plain bytes and get escaped.
 * `fix` = (json only) contains invalid UTF-8 or a \u0000 escape, which
 * sl__w_repair rewrites. */
struct sl__text {
  const char *p;           /* NULL: field absent */
  size_t n;
  unsigned char json;
  unsigned char fix;
};

/* What a parser found in a line, beyond the application keys it wrote.
 * sl__ev_clear sets only the "absent" markers (p = NULL, id[0] = 0): a
 * parser that fills a text field sets all four of its members. */
struct sl__ev {
  int64_t ts_ns;           /* @timestamp */
  struct sl__text msg;     /* message */
  struct sl__text level;   /* log.level, already normalised */
  char trace_id[33];       /* "" = none */
  char span_id[17];
  char txn_id[17];
  struct sl__text req_id;  /* http.request.id */
  struct sl__text original;/* event.original */
  const char *error;       /* error.message (NUL-terminated) or NULL */
  const char *tag;         /* single tag or NULL */
};

/* Copy the contents of a JSON string from valid input (escapes intact),
 * replacing invalid UTF-8 by U+FFFD and the escape \u0000 by \ufffd: every
 * event must load in jansson with default flags (the collector's), which
 * refuse NUL. */
void sl__w_repair(struct sl__w *w, const char *s, size_t n);
/* Plain bytes, escaped, without quotes; NUL bytes become U+FFFD (see
 * above), everything else as sl_json_escape. */
void sl__w_escape(struct sl__w *w, const char *s, size_t n);
void sl__w_u64(struct sl__w *w, uint64_t v);

/* Start an event at the current end of the buffer: writes
 * `{"@timestamp":"` and reserves the 24-byte slot. Returns the slot's
 * offset for sl__ev_end. */
size_t sl__ev_begin(struct sl__w *w);
/* Everything after the parser's own fields, and the closing brace. */
void sl__ev_end(struct sl__w *w, const struct sl_parse_ctx *ctx,
                const struct sl_src *src, uint64_t offset, unsigned flags,
                const struct sl__ev *ev, size_t slot);
void sl__ev_clear(struct sl__ev *ev, int64_t ts_ns);

/* The whole line as the message. `why` (NULL for parser raw) makes it a
 * parse-failure event: error.message = "json parse failure at byte
 * <pos>: <why>" and tags ["sluice_json_parse_failure"]. */
void sl__raw_event(struct sl__w *w, const struct sl_parse_ctx *ctx,
                   const struct sl_src *src, const char *line, size_t len,
                   uint64_t offset, unsigned flags, int64_t read_time_ns,
                   const char *why, size_t pos);

/* parse_json.c */
void sl__json_event(struct sl__w *w, const struct sl_parse_ctx *ctx,
                    const struct sl_src *src, const char *line, size_t len,
                    uint64_t offset, unsigned flags, int64_t read_time_ns);

#endif
