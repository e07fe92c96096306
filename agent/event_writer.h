/* event_writer.h - writes one ECS event as JSON text straight into the
 * batch buffer (no DOM), for every parser behind parse.h.
 *
 * A parser starts an event with sl_ew_ev_begin(), may stream its own keys
 * ("app":{...}) into the writer while it scans the line, fills a struct
 * sl_ew_ev with what it recognised, and ends with sl_ew_ev_end(). A line a
 * parser cannot read becomes sl_ew_raw_event() with an error message and
 * tag, so nothing is dropped.
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
 *    ,"error":{"message":..},"tags":["<tag>"]
 *    ,"event":{"id":..,"original":..    then the pre-rendered suffix:
 *    ,"dataset":..},"data_stream":{..},"host":{..},"agent":{..},"ecs":{..}
 *    ,"service":{..},"labels":{..}}
 *
 * The output never contains a raw newline (NDJSON-safe) and loads in
 * jansson with default flags (the collector's), which refuse NUL.
 *
 * Ownership: the writer borrows the caller's sl_buf for one event; text in
 * a struct sl_ew_ev borrows the line and must stay valid until
 * sl_ew_ev_end(). Nothing here allocates except through the sl_buf.
 */
#ifndef SL_AGENT_EVENT_WRITER_H
#define SL_AGENT_EVENT_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "parse.h"
#include "sl_buf.h"

/* The constant parts of every event of one input, rendered once when the
 * input's parse context is built and then shared read-only by all parse
 * workers. Owned by the parse context. */
struct sl_ew_static {
  char *agent_id;          /* hashed into every event.id */
  size_t agent_id_len;
  char *suffix;            /* `,"dataset":"x"},"data_stream":...}` */
  size_t suffix_len;
};

/* Sticky-error writer: after the first failed reserve every write is a
 * no-op and `err` keeps the code; the caller checks once at the end and
 * restores the buffer. Keeps the hot path free of per-write branches on
 * return codes. Writes go into space obtained with sl_buf_reserve(); the
 * writer keeps its own cursor and limit (reloading the sl_buf's fields
 * after every byte store was the top cost of the parser), so b->len is
 * only right after sl_ew_sync(). */
struct sl_ew {
  char *cur;               /* next byte to write */
  char *lim;               /* last byte usable (the NUL slot stays free) */
  struct sl_buf *b;
  int err;
};

void sl_ew_init(struct sl_ew *w, struct sl_buf *b);
/* Slow path of the writes: reserve n more bytes. 1 if there is room. */
int sl_ew_grow(struct sl_ew *w, size_t n);

static inline size_t
sl_ew_len(const struct sl_ew *w)
{
  return (size_t)(w->cur - w->b->p);
}

/* Make b->len match the cursor. */
static inline void
sl_ew_sync(struct sl_ew *w)
{
  if (!w->err)
    w->b->len = sl_ew_len(w);
}

/* Move the cursor back to `len` (only to undo writes). */
static inline void
sl_ew_setlen(struct sl_ew *w, size_t len)
{
  w->cur = w->b->p + len;
}

static inline void
sl_ew_put(struct sl_ew *w, const void *p, size_t n)
{
  if ((size_t)(w->lim - w->cur) < n && !sl_ew_grow(w, n))
    return;
  memcpy(w->cur, p, n);
  w->cur += n;
}

static inline void
sl_ew_byte(struct sl_ew *w, char c)
{
  if (w->cur == w->lim && !sl_ew_grow(w, 1))
    return;
  *w->cur++ = c;
}

#define SL_EW_LIT(w, lit) sl_ew_put((w), (lit), sizeof(lit) - 1)

/* Copy the contents of a JSON string from valid input (escapes intact),
 * replacing invalid UTF-8 by U+FFFD and the escape \u0000 by \ufffd. */
void sl_ew_repair(struct sl_ew *w, const char *s, size_t n);
/* Plain bytes, escaped, without quotes; NUL bytes become U+FFFD, everything
 * else as sl_json_escape. */
void sl_ew_escape(struct sl_ew *w, const char *s, size_t n);
void sl_ew_u64(struct sl_ew *w, uint64_t v);

/* A piece of text for an event field. `json` = the bytes are the contents
 * of a JSON string as it appeared in valid JSON input (escapes intact):
 * they are copied verbatim. Otherwise they are plain bytes and get escaped.
 * `fix` = (json only) contains invalid UTF-8 or a \u0000 escape, which
 * sl_ew_repair rewrites. */
struct sl_ew_text {
  const char *p;           /* NULL: field absent */
  size_t n;
  unsigned char json;
  unsigned char fix;
};

/* What a parser found in a line, beyond the application keys it wrote.
 * sl_ew_ev_clear sets only the "absent" markers (p = NULL, id[0] = 0): a
 * parser that fills a text field sets all four of its members. */
struct sl_ew_ev {
  int64_t ts_ns;             /* @timestamp */
  unsigned char ts_us;       /* write it with microseconds */
  struct sl_ew_text msg;     /* message */
  struct sl_ew_text level;   /* log.level, already normalised */
  char trace_id[33];         /* "" = none */
  char span_id[17];
  char txn_id[17];
  struct sl_ew_text req_id;  /* http.request.id */
  struct sl_ew_text original;/* event.original */
  const char *error;         /* error.message (NUL-terminated) or NULL */
  const char *tag;           /* single tag or NULL */
  /* The application's own tags: the contents of its JSON array as written
   * (between the brackets, no raw newline), appended after `tag`. */
  const char *app_tags;      /* NULL or "" = none */
  size_t app_tags_n;
};

void sl_ew_ev_clear(struct sl_ew_ev *ev, int64_t ts_ns);
/* Start an event at the current end of the buffer: writes
 * `{"@timestamp":"` and reserves the 24-byte slot. Returns the slot's
 * offset for sl_ew_ev_end. */
size_t sl_ew_ev_begin(struct sl_ew *w);
/* Everything after the parser's own fields, and the closing brace. */
void sl_ew_ev_end(struct sl_ew *w, const struct sl_ew_static *st,
                  const struct sl_src *src, uint64_t offset, unsigned flags,
                  const struct sl_ew_ev *ev, size_t slot);

/* A whole event with the line as the message (escaped). `error` and `tag`
 * (both NULL for a plain raw event) mark a line a parser could not read:
 * error.message and tags. */
void sl_ew_raw_event(struct sl_ew *w, const struct sl_ew_static *st,
                     const struct sl_src *src, const char *line, size_t len,
                     uint64_t offset, unsigned flags, int64_t read_time_ns,
                     const char *error, const char *tag);

/* event.id of (agent id, src, offset): see sl_event_id in parse.h. */
void sl_ew_event_id(const char *agent_id, size_t n, const struct sl_src *src,
                    uint64_t offset, char out[33]);

#endif
