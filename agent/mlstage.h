/* mlstage.h - the line aggregation stage between tail and the parse
 * workers, for inputs with `multiline` or a container parser (cri, docker
 * partial lines). Runs on the loop thread.
 *
 * Why here: aggregation is sequential per file, while the workers take
 * chunks of one file concurrently; the loop sees every file's chunks in
 * file order. The stage costs one memchr pass plus a copy per line, and
 * only for inputs that ask for it; other chunks go straight to the
 * workers as before.
 *
 * Flow: a tail chunk of such an input is split into lines that feed the
 * file's aggregator (multiline.h); finished events are packed into an
 * "event chunk" (a struct sl_tail_chunk with SL_CHUNK_EVENTS, owned by
 * the stage) that the workers parse event by event instead of line by
 * line. The tail chunk's bytes are given back at once (copied); the chunk
 * itself is held until every event that starts in it is acknowledged.
 *
 * Acknowledgement (what the registry may save): per file, the frontier is
 * the smallest first-line offset of any event not yet acknowledged --
 * events in event chunks still out, and groups still pending in the
 * aggregator -- or the end of the last line read when there is none. Held
 * tail chunks that end at or before the frontier are done; the one the
 * frontier falls into reports it with sl_tail_chunk_progress, so a kill -9
 * restarts exactly at the pending group's first line and the group is
 * read again whole (same offset, so the same event.id).
 *
 * Shutdown: pending groups are not shipped; the registry keeps their first
 * line and the next start reads them again whole (SIGTERM and SIGHUP
 * reloads never split a stack trace). Chunks held only for them are
 * handed back through `abandon` once everything before them was acked.
 */
#ifndef SL_AGENT_MLSTAGE_H
#define SL_AGENT_MLSTAGE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "multiline.h"
#include "tail.h"

/* Chunk flag (tail.h's flags use the low bits): data holds events as
 * records, see struct sl_ml_rec; made and freed by the stage. */
#define SL_CHUNK_EVENTS 0x80000000u

/* One event in an event chunk's data: the header, then len bytes, then
 * padding to 8 bytes. */
struct sl_ml_rec {
  uint64_t offset;          /* file offset of the event's first line */
  uint32_t len;
  uint32_t flags;           /* SL_LINE_* */
};

#define SL_ML_REC_SIZE(len) \
  ((sizeof(struct sl_ml_rec) + (size_t)(len) + 7) & ~(size_t)7)

struct sl_mlstage_opts {
  uv_loop_t *loop;
  /* Per inputs[] entry; NULL entries (or index >= n): no stage. Not
   * owned; must outlive the stage. */
  struct sl_ml_conf *const *confs;
  size_t nconfs;
  /* Optional, nconfs entries: lines fed to the stage per input, added to
   * on the loop thread. Not owned; must outlive the stage. */
  uint64_t *input_lines;
  /* Hand an event chunk to the workers: 0 taken, SL_EAGAIN full (the
   * stage keeps it and offers it again on sl_mlstage_retry). */
  int (*push)(void *arg, struct sl_tail_chunk *ec);
  /* A tail chunk taken by sl_mlstage_chunk is acknowledged. */
  void (*done)(void *arg, struct sl_tail_chunk *c);
  /* Forward to sl_tail_chunk_progress. */
  void (*progress)(void *arg, struct sl_tail_chunk *c, uint64_t off);
  /* Drain only: a tail chunk that will never be done (it holds a pending
   * group that is read again on the next start). */
  void (*abandon)(void *arg, struct sl_tail_chunk *c);
  void *arg;
};

struct sl_mlstage_stats {
  uint64_t lines;           /* lines fed to aggregators */
  uint64_t events;          /* events out of them */
  uint64_t joined;          /* events of more than one line */
  uint64_t timeouts;        /* groups flushed by timeout */
};

struct sl_mlstage;

int sl_mlstage_new(const struct sl_mlstage_opts *o, struct sl_mlstage **out);
/* 1 if chunks of this input go through the stage. */
int sl_mlstage_wants(const struct sl_mlstage *st,
                     const struct sl_tail_chunk *c);
/* Take a tail chunk: 0, or SL_EAGAIN (not taken: an event chunk is
 * waiting for the workers) or SL_ENOMEM (not taken). */
int sl_mlstage_chunk(struct sl_mlstage *st, struct sl_tail_chunk *c);
/* An event chunk (SL_CHUNK_EVENTS) was acknowledged. */
void sl_mlstage_done(struct sl_mlstage *st, struct sl_tail_chunk *ec);
/* The workers have room: offer waiting event chunks. 1 if none waits. */
int sl_mlstage_retry(struct sl_mlstage *st);
/* Drain: stop the timeouts, drop pending groups (see above). */
void sl_mlstage_drain(struct sl_mlstage *st);
void sl_mlstage_stats(const struct sl_mlstage *st,
                      struct sl_mlstage_stats *out);
/* Free everything; tail chunks still held are not touched (tail frees
 * them when it closes). The struct is freed once its timer is closed. */
void sl_mlstage_close(struct sl_mlstage *st);

#endif
