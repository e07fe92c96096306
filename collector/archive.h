/* archive.h - the local archive: every accepted event as gzip NDJSON, one
 * file per dataset per hour, beside (or, without `elasticsearch:`, instead
 * of) the indexer.
 *
 * Layout under `path` (all UTC, the hour of the event's @timestamp, else
 * of the spool record's append time):
 *
 *   <dataset>/YYYY/MM/DD/HH-<seq>.ndjson.gz           the events
 *   <dataset>/YYYY/MM/DD/HH-<seq>.ndjson.gz.idx.json  its index (below)
 *
 * <dataset> is the event's dataset sanitised as the indexer does it
 * (bulk.h sl_bulk_dataset_part). A file is a concatenation of complete
 * gzip members (zcat and Python's gzip read it whole), one per batch, so
 * it is readable at every moment. seq starts at 0 and goes up when a file
 * reached max_file_bytes (checked before each batch, so a file passes it
 * by at most one batch) and whenever a file was closed: idle for a while,
 * over the open-file budget, or left behind by a previous run. A file is
 * never appended to after it was closed.
 *
 * Index sidecar (JSON, replaced with sl_fs_write_atomic after every batch
 * that touched the file, after the file's fsync):
 *   {"count":N,"bytes":B,"min_ns":..,"max_ns":..,"min":"<RFC 3339>",
 *    "max":"<RFC 3339>","last_record":ID,"last_record_ns":NS,
 *    "tail_off":OFF}
 * bytes is the committed length of the data file. It is the commit point:
 * bytes beyond it (a crash between the data fsync and the sidecar) are cut
 * at the next open, and a data file without a sidecar is deleted; neither
 * was released by the spool, so the spool hands those records out again.
 *
 * Exactly once: records come in spool id order. The sidecar keeps the last
 * record id (and its append time) written into the file; at open the
 * archive remembers, per dataset and hour, the highest of them, and skips
 * the events of a re-delivered record whose id and append time are both
 * at or below it (the append time guards against a spool whose ids
 * started over). A sender re-sends a window it got no ack for as a new
 * record; its events are dropped by event.id: the archive remembers the
 * ids of the last 128-256 Ki events it wrote (and, at open, reads back
 * the newest 4 MiB tails, tail_off, of files written in the last 15
 * minutes, at most 32 MiB in all), so a re-send within that horizon is
 * written once. A record is reported done only when every one of its
 * events is in a file that was fsync'ed (and its directory, when new) and
 * whose sidecar says so.
 *
 * Work happens on libuv's threadpool, one job at a time (a batch of queued
 * records, or a retention pass), so the loop never waits for a write or
 * an fsync. Submitted records are copied and bounded (SL_ARCHIVE_MAX_QUEUED
 * bytes; then SL_EAGAIN). A failed batch (ENOSPC, EIO, ...) is rolled back
 * (files truncated to their committed length, files it created removed),
 * counted, logged, and retried with backoff (1 s doubling to 10 s): its
 * records are never reported done, so the spool fills and intake stops;
 * nothing is dropped.
 *
 * Retention: at open, every minute and after a file was closed, files
 * whose hour ended more than `keep` ago are deleted, then the oldest
 * (hour, then seq) until the total is at most max_total_bytes. Open files
 * are never deleted. Empty directories are removed.
 *
 * Threads: every sl_archive_* function runs on the loop thread, and so do
 * the callbacks. The pure helpers (paths, sidecar, reading) may be called
 * from any thread.
 */
#ifndef SL_ARCHIVE_H
#define SL_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "sl_buf.h"
#include "spool.h"

#define SL_ARCHIVE_MAX_QUEUED (32u << 20)

struct sl_archive_conf {
  const char *path;           /* archive root (created) */
  uint64_t keep_ms;           /* 0: keep forever */
  uint64_t max_total_bytes;   /* 0: no size limit */
  uint64_t max_file_bytes;    /* rotate before a batch at this size */
};

/* Fill *c from a normalised `archive:` object (borrowed strings). */
void sl_archive_conf_fill(const json_t *o, struct sl_archive_conf *c);

struct sl_archive;

/* Runs once per submitted record, on the loop thread, after every event of
 * it is durable in the archive. Never runs after sl_archive_close began
 * for records that were not written by then. */
typedef void (*sl_archive_done_cb)(void *arg, uint64_t rec_id);

/* Create the root, recover (cut uncommitted tails, delete files without a
 * sidecar, learn the last record of every dataset-hour) and start the
 * retention timer. SL_E* and a reason in err. */
int sl_archive_open(uv_loop_t *loop, const struct sl_archive_conf *conf,
                    struct sl_archive **out, char *err, size_t errlen);

/* Copy the events of `rec` (format 2, or format 1 converted on the copy)
 * and queue them. 0: cb runs once when written; SL_EAGAIN: the queue
 * holds SL_ARCHIVE_MAX_QUEUED bytes (offer it again on a later loop
 * iteration); SL_ECLOSED; SL_ENOMEM. rec and its payload are not kept. */
int sl_archive_submit(struct sl_archive *a, const struct sl_spool_rec *rec,
                      sl_archive_done_cb cb, void *arg);

/* 1 while the last batch failed and its retry waits (disk full, I/O). */
int sl_archive_failing(const struct sl_archive *a);
/* Append Prometheus metrics (sluice_archive_*). */
int sl_archive_metrics(const struct sl_archive *a, struct sl_buf *out);
/* A new JSON object describing the state (/debug/state); NULL on ENOMEM. */
json_t *sl_archive_state(const struct sl_archive *a);

/* Write what is queued (unless a batch fails), close the files, stop the
 * timer, free everything, then call cb. */
void sl_archive_close(struct sl_archive *a, void (*cb)(void *arg),
                      void *arg);

/* ---- Pure helpers (any thread) ------------------------------------------ */

/* "<dataset>/YYYY/MM/DD/HH-<seq>.ndjson.gz" for `hour` (hours since the
 * epoch, UTC), appended to out. */
int sl_archive_rel_path(const char *dataset, int64_t hour, uint32_t seq,
                        struct sl_buf *out) SL_WUR;
/* The inverse, on a path relative to the root: 0, or SL_EPARSE for any
 * other name (sidecars, temporaries, foreign files). ds gets the dataset
 * (NUL-terminated, at most dslen - 1 bytes, else SL_EPARSE). */
int sl_archive_parse_rel(const char *rel, char *ds, size_t dslen,
                         int64_t *hour, uint32_t *seq);

/* What a sidecar holds (see the top of this file). */
struct sl_archive_idx {
  uint64_t count;             /* events */
  uint64_t bytes;             /* committed length of the data file */
  int64_t min_ns, max_ns;     /* @timestamp range (0, 0 while count == 0) */
  uint64_t last_record;       /* id of the last spool record written */
  int64_t last_record_ns;     /* its append time */
  uint64_t tail_off;          /* a member boundary; the bytes from here
                                 to `bytes` hold the newest >= 4 MiB (all
                                 of a smaller file) */
};
int sl_archive_idx_encode(const struct sl_archive_idx *x,
                          struct sl_buf *out) SL_WUR;
/* SL_EPARSE unless p[0..n) is a sidecar with every field. */
int sl_archive_idx_decode(const char *p, size_t n, struct sl_archive_idx *x);

/* Where one event goes: its sanitised dataset appended to ds, and its
 * time (@timestamp; fallback_ns when absent or unparseable); *idh (when
 * not NULL) a non-zero 64-bit hash of its event.id, 0 without one. */
int sl_archive_event_key(const char *ev, size_t len, int64_t fallback_ns,
                         struct sl_buf *ds, int64_t *ts_ns,
                         uint64_t *idh) SL_WUR;

/* ---- Reading (replay, trace) -------------------------------------------- */

struct sl_archive_file {
  char *path;                 /* full path of the data file */
  char dataset[128];
  int64_t hour;
  uint32_t seq;
  int has_idx;                /* idx below was read from the sidecar */
  struct sl_archive_idx idx;
};

/* Every data file under root (only <dataset> when not NULL), sorted by
 * hour, dataset, seq. *out is freed with sl_archive_files_free. */
int sl_archive_list(const char *root, const char *dataset,
                    struct sl_archive_file **out, size_t *n);
void sl_archive_files_free(struct sl_archive_file *f, size_t n);

/* Line by line, for callers that read a little at a time (replay feeds
 * the indexer as it drains). Blocking reads. */
struct sl_archive_reader {
  void *gz;                   /* gzFile */
  struct sl_buf line;         /* the line being assembled / handed out */
  char buf[65536];
  size_t pos, len;            /* unread bytes in buf */
  int eof;
};
int sl_archive_reader_open(struct sl_archive_reader *r, const char *path);
/* The same from byte `off`, which must be a member boundary. */
int sl_archive_reader_open_at(struct sl_archive_reader *r, const char *path,
                              uint64_t off);
/* 1 and the next non-empty line (borrowed until the next call), 0 at the
 * end (a torn last member ends the file, see sl_archive_read), or
 * SL_ECORRUPT / SL_E*. */
int sl_archive_reader_next(struct sl_archive_reader *r, const char **line,
                           size_t *len);
void sl_archive_reader_close(struct sl_archive_reader *r);

/* Call cb for every non-empty line of a data file (all gzip members; a
 * torn last member ends the file). cb returning non-zero stops with that
 * value. The line is borrowed for the call only. */
typedef int (*sl_archive_line_cb)(void *arg, const char *line, size_t len);
int sl_archive_read(const char *path, sl_archive_line_cb cb, void *arg);

#endif
