/* input.h - Lumberjack v2 listener: accept Beats-protocol senders, decode
 * frames (proto/sl_lj.h), make sure every event has event.id and
 * @timestamp, append each window to the spool as NDJSON events (record
 * format 2, spool.h) and acknowledge it only once the spool says it is
 * durable. Routing is not done here: the indexer makes the _bulk action
 * lines from the spooled events (bulk.h), with the route it has then.
 *
 * Acks: a window is acked with the sequence of its last event after its
 * record was fsync'ed. A window bigger than `flush_bytes` is spooled in
 * parts and acked partially (an ack with a lower sequence means "safe up to
 * here", which Beats clients accept). While a window waits (slow fsync,
 * full spool) a keep-alive ack with sequence 0 goes out every `keepalive`
 * (go-lumber's server does the same), so senders do not time out.
 *
 * Backpressure: when the spool refuses an append (full or disk full) every
 * connection stops reading until the spool's resume callback; each
 * connection holds at most one refused part, so memory stays bounded by
 * max_connections * (max_frame + flush_bytes).
 *
 * A protocol violation (bad bytes, frame over max_frame, event over
 * max_event_bytes, C frame inflating over max_inflate or faster than
 * max_inflate_ratio, window over max_window, more events than announced,
 * a window over max_window_bytes, nested C) closes that one connection
 * with a logged reason that names the limit and its value. So does a
 * sender that stalls (idle_timeout) or trickles (frame_timeout).
 */
#ifndef SL_INPUT_H
#define SL_INPUT_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "sl_buf.h"
#include "spool.h"

struct sl_input;

struct sl_input_stats {
  uint64_t connections;        /* open now */
  uint64_t accepted;           /* total accepted */
  uint64_t rejected;           /* closed at accept: over max_connections */
  uint64_t protocol_errors;    /* connections closed for a violation */
  uint64_t idle_closed;        /* connections closed by idle_timeout */
  uint64_t events;             /* events received */
  uint64_t bytes;              /* bytes read from sockets */
  uint64_t windows;            /* records appended to the spool */
  uint64_t acks;               /* acks sent (incl. keep-alives) */
  uint64_t invalid_json;       /* events that were not JSON objects */
  uint64_t paused;             /* 1 while reading is paused */
};

/* in: one normalised inputs[] object (type lumberjack). */
int sl_input_new(uv_loop_t *loop, const json_t *in, struct sl_spool *spool,
                 struct sl_input **out, char *err, size_t errlen);
/* Port actually bound (for listen ports of 0). */
int sl_input_port(const struct sl_input *in);
/* The spool has room again: retry held parts, read again. */
void sl_input_resume(struct sl_input *in);
void sl_input_stats(const struct sl_input *in, struct sl_input_stats *st);
/* For /debug/state: the totals above plus one object per open connection
 * (a new reference; NULL without memory):
 *   peer, connected_since (RFC 3339), connected_seconds, events, bytes
 *   (read from the socket), windows (parts spooled), events_per_second
 *   (between the last two ticks of the connection timer, about 2.5 s
 *   apart), lag_seconds (receive time of the newest part minus the
 *   @timestamp of its last event: how far the sender is behind its
 *   source, clock skew included; null before a readable one),
 *   idle_seconds (since the last read), last_ack_seconds (since the last
 *   ack, keep-alives too), unacked_parts, reading. */
json_t *sl_input_state(const struct sl_input *in);
/* Stop accepting and reading; close every connection; cb when closed. */
void sl_input_close(struct sl_input *in, void (*cb)(void *arg), void *arg);

/* Exposed for tests: append one received event (JSON text, or anything
 * else) to out as one line of JSON plus '\n', with a usable event.id (the
 * sender's, else the xxh3-128 hex of the received bytes) and an
 * @timestamp (the receive time when absent). A one-line event with both
 * goes through byte for byte. Never fails on bad input: a non-object
 * becomes {"@timestamp", "message": <text>, "tags": [...], "error",
 * "event": {"id"}}. Fails only for out of memory (out unchanged). */
int sl_input_event_normalize(const char *data, size_t len,
                             struct sl_buf *out) SL_WUR;

/* Per-event limits (config keys max_fields, max_depth,
 * timestamp_max_future, timestamp_max_past). An event over one is kept,
 * as an invalid event (the non-object case above) whose error names the
 * limit and its value: closing the connection would only make the sender
 * resend the same event forever. */
struct sl_input_limits {
  uint64_t max_fields;     /* object members, all levels */
  int max_depth;           /* object/array nesting */
  int64_t ts_future_ms;    /* @timestamp ahead of now; 0: no check */
  int64_t ts_past_ms;      /* @timestamp behind now; 0: no check */
};
void sl_input_limits_default(struct sl_input_limits *l);
/* sl_input_event_normalize with the given limits (that one uses the
 * defaults). */
int sl_input_event_normalize_lim(const char *data, size_t len,
                                 const struct sl_input_limits *lim,
                                 struct sl_buf *out) SL_WUR;

/* The same for inputs that know more about an event than its bytes (the
 * Kafka input): an event without event.id gets `id` (a string of at most
 * 32 characters that needs no JSON escaping; NULL: the hash of the bytes),
 * one without @timestamp gets `ts_ns` (ns since the epoch; 0: now). Text
 * that is not one JSON object, or an event over a limit of `lim`, is not
 * wrapped: SL_EPARSE, out unchanged, the reason in why[whylen], and the
 * caller decides (the Kafka input makes it a dead letter). */
int sl_input_event_normalize_ex(const char *data, size_t len,
                                const struct sl_input_limits *lim,
                                const char *id, int64_t ts_ns,
                                struct sl_buf *out, char *why,
                                size_t whylen) SL_WUR;

#endif
