/* worker.h - parse workers: chunks of lines in, finished output batches out.
 *
 * The I/O loop hands chunks (struct sl_tail_chunk, whole lines) to a pool of
 * worker threads through one bounded mutex/cond queue. Each worker splits
 * the chunk's lines with memchr, writes one event per line with
 * sl_parse_event straight into the batch being built (Lumberjack: J frames
 * in place, then the window compressed into one C frame behind a W frame;
 * otherwise NDJSON), and hands finished batches back to the loop through a
 * second queue plus uv_async_send. The loop only moves buffers.
 *
 * Line rule: a line is the bytes up to '\n'; one trailing '\r' is removed.
 * Lines that are then empty or only blanks (space, tab) produce no event --
 * they carry no information and Filebeat does the same; their bytes still
 * count as read so the registry moves past them.
 *
 * Batches and their chunk references: batch.h.
 */
#ifndef SL_AGENT_WORKER_H
#define SL_AGENT_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "batch.h"
#include "compress.h"
#include "config.h"
#include "filter.h"
#include "redact.h"
#include "sl_buf.h"
#include "tail.h"

/* Builds batches from lines; one per worker, single-threaded. Exposed so
 * unit tests can drive batching without threads. */
struct sl_batcher_opts {
  enum sl_batch_fmt fmt;
  int level;                 /* compression level; 0 = none */
  uint32_t max_events;
  uint64_t max_bytes;        /* uncompressed event bytes per batch */
  uint64_t max_line_bytes;   /* sizes the scratch buffer limit */
  int free_data;             /* sl_tail_chunk_free_data() once every line
                                is placed */
  /* Lends the event buffer and every batch's wire bytes (NULL: plain
   * malloc). Not owned: it must outlive the batcher, and its buffers
   * return to it when the batches are freed. */
  struct sl_bufpool *pool;
  /* Per inputs[] entry (index = chunk's input_index), NULL entries or
   * NULL arrays: none. Not owned; read-only, shared by all workers. */
  struct sl_filter *const *filters;
  struct sl_redact *const *redacts;
  size_t ninputs;
};

typedef void (*sl_batch_emit_cb)(void *arg, struct sl_batch *b);

struct sl_batcher_stats {
  uint64_t lines, events, failed, empty, batches;
  uint64_t excluded;         /* include/exclude_lines dropped them */
  uint64_t redacted;         /* events a redact rule changed */
};

/* Per inputs[] entry; written by one worker thread, read with atomic
 * loads by the loop thread (sl_workers_input_stats). */
struct sl_input_counts {
  uint64_t lines;            /* lines of plain chunks (multiline chunks
                                count theirs in mlstage) */
  uint64_t events;
};

struct sl_batcher {
  struct sl_batcher_opts o;
  struct sl_input_counts *in;  /* o.ninputs entries, NULL when 0 */
  struct sl_buf ev;          /* events of the open batch (J frames/NDJSON);
                                lent by o.pool */
  size_t ev_max;             /* hard cap of ev */
  struct sl_compress *zc;    /* Lumberjack level > 0 (compress.h) */
  struct sl_buf z;           /* compression scratch, reused per batch;
                                the batch gets a copy of its size */
  struct sl_batch *cur;      /* open batch (refs and counters) */
  sl_batch_emit_cb emit;
  void *emit_arg;
  struct sl_batcher_stats st;
  /* Line stages (filter.h, redact.h): this thread's scratch. */
  pcre2_match_data *md;
  struct sl_redact_scratch rs;
  struct sl_buf tmp;         /* an event before its edits */
};

int sl_batcher_init(struct sl_batcher *bt, const struct sl_batcher_opts *o,
                    sl_batch_emit_cb emit, void *arg);
void sl_batcher_free(struct sl_batcher *bt);
/* Parse every line of wc->c into batches, emitting each full one. The open
 * batch holds the chunk's parse reference afterwards. 0 or SL_ENOMEM. */
int sl_batcher_add(struct sl_batcher *bt, struct sl_wchunk *wc);
/* Emit the open batch (even with 0 events when it completes chunks). */
int sl_batcher_flush(struct sl_batcher *bt);
/* Monotonic ms when the open batch got its first chunk; 0 if none. */
uint64_t sl_batcher_open_since(const struct sl_batcher *bt);

/* The pool. */
struct sl_workers;

struct sl_workers_opts {
  int n;
  struct sl_batcher_opts b;
  uint64_t flush_interval_ms;
  uint64_t max_queue_bytes;  /* chunk bytes waiting for a worker */
  /* Batch buffers kept for reuse once their batch is acked (the pool's
   * max_idle_bytes; size it like queue.max_bytes). 0: no pool. */
  uint64_t max_pool_bytes;
  uv_loop_t *loop;
  /* Runs on the loop thread whenever batches are ready. */
  void (*ready)(void *arg, struct sl_batch *b);
  /* Runs on the loop thread after a refused push, once the queue has
   * drained to half. */
  void (*room)(void *arg);
  void *arg;
};

int sl_workers_start(const struct sl_workers_opts *o, struct sl_workers **out);
/* Queue a chunk; SL_EAGAIN when the queue is full (the caller keeps it). */
int sl_workers_push(struct sl_workers *w, struct sl_wchunk *wc);
/* From now on flush partial batches as soon as the queue is empty. */
void sl_workers_drain(struct sl_workers *w);
/* Sum of all workers' counters. */
void sl_workers_stats(struct sl_workers *w, struct sl_batcher_stats *st);
/* Sum of all workers' counters of inputs[idx] (zeros when out of range). */
void sl_workers_input_stats(struct sl_workers *w, size_t idx,
                            struct sl_input_counts *out);
/* Stop and join the threads; batches not yet delivered to `ready` and
 * queued chunks are discarded (not acknowledged). Closes the async handle;
 * the struct is freed in its close callback. */
void sl_workers_stop(struct sl_workers *w);

#endif
