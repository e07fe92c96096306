/* spool.h - the collector's durable, append-only queue (write-ahead log).
 *
 * Nothing is acknowledged to a sender before its batch is in the spool and
 * fsync'ed; nothing leaves the spool before ES (or the dead-letter store)
 * accepted every event of it. Layout: data_dir/spool/<16-hex-digit first
 * record id>.seg segment files of records [u32 len][u32 crc32c-or-crc32]
 * [payload], plus data_dir/spool/cursor (written temp + fsync + rename)
 * naming the first record not yet released. Group commit: all appends that
 * arrive within commit_interval_ms share one fsync (done off the loop
 * thread so that the loop keeps reading sockets).
 *
 * Recovery on open: scan from the cursor; a torn tail (short or bad-CRC last
 * record) is truncated; a corrupt record followed by good ones is copied to
 * data_dir/corrupt/<segment>-<offset>.rec and skipped, with a log line
 * naming segment and offset. Everything that was fsync'ed before a crash is
 * handed out again.
 *
 * Threads: every function is called on the owner's loop thread.
 */
#ifndef SL_SPOOL_H
#define SL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct sl_spool_opts {
  const char *data_dir;        /* spool lives in data_dir/spool */
  uint64_t segment_bytes;      /* rotate segments at this size */
  uint64_t max_bytes;          /* appends refused (SL_EAGAIN) at/over this */
  uint64_t commit_interval_ms; /* group commit window */
};

/* status 0: durable, the caller may ack. Otherwise (SL_ENOSPC, SL_EIO) the
 * record is NOT in the spool: the caller keeps its data, does not ack, and
 * retries the append after the resume callback fires. */
typedef void (*sl_spool_commit_cb)(void *arg, int status);
/* Called when the spool, after being full (size or disk full), accepts
 * appends again (size below a low-water mark of 90% of max_bytes, or a
 * disk-full probe, every second, found space). */
typedef void (*sl_spool_resume_cb)(void *arg);

struct sl_spool;

int sl_spool_open(uv_loop_t *loop, const struct sl_spool_opts *o,
                  struct sl_spool **out, char *err, size_t errlen);
void sl_spool_set_resume_cb(struct sl_spool *s, sl_spool_resume_cb cb,
                            void *arg);

/* Queue a record (one received window: `nevents` events) for the next group
 * commit. Returns 0 (cb will be called exactly once), SL_EAGAIN when full
 * (cb not called), or another error. The payload is copied. */
int sl_spool_append(struct sl_spool *s, const void *payload, size_t len,
                    uint32_t nevents, sl_spool_commit_cb cb, void *arg);

struct sl_spool_rec {
  uint64_t id;        /* monotonically increasing record id */
  char *data;         /* malloc'ed copy, owned by the caller (free()) */
  size_t len;
  uint32_t nevents;
};
/* Next durable record not handed out yet, in order. SL_EAGAIN if none. */
int sl_spool_next(struct sl_spool *s, struct sl_spool_rec *rec);
/* Every event of record `id` is done (indexed, duplicate or dead-lettered).
 * Records may be released out of order; the cursor advances over the
 * released prefix and fully released segments are deleted. */
void sl_spool_release(struct sl_spool *s, uint64_t id);

int sl_spool_is_full(const struct sl_spool *s);

struct sl_spool_stats {
  uint64_t bytes;             /* on disk, not yet released */
  uint64_t records;           /* appended, not yet released */
  uint64_t oldest_append_ns;  /* wall time of the oldest unreleased record, 0 if none */
  uint64_t fsyncs;            /* total fsync calls */
  uint64_t appends;           /* total records made durable */
  uint64_t corrupt;           /* records moved to corrupt/ */
  uint64_t truncated_bytes;   /* torn-tail bytes cut at recovery */
  int disk_full;              /* latched ENOSPC state */
};
void sl_spool_stats(const struct sl_spool *s, struct sl_spool_stats *st);

/* Flush pending appends (their callbacks run), save the cursor, close
 * files; `cb` runs once everything is closed. */
void sl_spool_close(struct sl_spool *s, void (*cb)(void *arg), void *arg);

#endif
