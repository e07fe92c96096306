/* spool.h - the collector's durable, append-only queue (write-ahead log).
 *
 * Nothing is acknowledged to a sender before its batch is in the spool and
 * fsync'ed; nothing leaves the spool before ES (or the dead-letter store)
 * accepted every event of it. Layout: data_dir/spool/<16-hex-digit first
 * record id>.seg segment files of records (below), plus data_dir/spool/cursor
 * (written temp + fsync + rename + fsync(dir)) naming the first record not
 * yet released. Group commit: all appends that arrive within
 * commit_interval_ms share one fsync (done off the loop thread, on the
 * spool's own writer thread, so that the loop keeps reading sockets and the
 * fsync never queues behind libuv threadpool work).
 *
 * Record layout (all integers little-endian, fixed; SL_SPOOL_REC_HDR = 32):
 *
 *   off  size  field
 *     0     4  magic 0x0v4c53d3 (bytes d3 53 4c 0v; the top byte v is the
 *              format version of the payload, see below)
 *     4     4  payload length in bytes (<= SL_SPOOL_MAX_RECORD)
 *     8     4  nevents
 *    12     4  crc32 (zlib crc32, initial 0) over header bytes 0..11, then
 *              header bytes 16..31, then the payload
 *    16     8  record id (strictly increasing through the spool)
 *    24     8  append wall time, ns since the Unix epoch
 *    32   len  payload
 *
 * Payload format versions (bulk.h has the details):
 *   1  _bulk pairs: action line + event line per event (sluice before the
 *      indexer made the action lines itself). Still read: records are
 *      handed out with version 1 and the consumer drops the action lines
 *      (sl_bulk_v1_to_events), so an upgrade drains them under the current
 *      routing instead of losing them. Never written any more.
 *   2  NDJSON events: one event JSON per line, each with event.id and
 *      @timestamp. Written by every append.
 * Both versions may sit in one segment (an upgrade appends version 2
 * behind version 1 records); the header layout is the same.
 *
 * A segment is a plain concatenation of records (no segment header); its
 * name is the id of its first record. Segments rotate before a record would
 * take them past segment_bytes (a single larger record gets a segment of its
 * own).
 *
 * Cursor file (24 bytes, little-endian): [u32 magic 0x52554353 "SCUR"]
 * [u32 crc32 over bytes 0..3 and 8..23][u64 first unreleased id][u64 next
 * id to assign]. It is saved at most every 200 ms while it changes, before
 * any fully released segment is deleted, at open and at close, never per
 * release. A crash therefore re-delivers records released within the last
 * ~200 ms: harmless, the indexer uses create + _id, so the repeat is a 409,
 * which counts as done. A corrupt or unreadable cursor is logged and treated
 * as 0 (everything still on disk is re-delivered, same reasoning).
 *
 * Recovery on open: every segment is scanned from its start and every record
 * validated (magic, length within the file and SL_SPOOL_MAX_RECORD, CRC, id
 * above the previous one); records below the cursor are skipped. Bad bytes
 * followed by a valid record (searched forward by magic + full check) are
 * copied to data_dir/corrupt/<16-hex segment id>-<decimal offset>.rec,
 * logged (component "spool": segment, offset, bytes) and counted (unless
 * the range lies wholly below the cursor). Bad bytes at the end of the LAST
 * segment are a torn tail: truncated to the last good record and logged;
 * bad bytes at the end of an earlier segment are copied aside like a middle
 * corruption, then truncated. Segments without unreleased records are
 * deleted. Everything that was fsync'ed before a crash is handed out again.
 * A middle corruption stays in its segment (records are never rewritten),
 * so it is found, copied (same file name) and counted again at every open
 * until the segment is released and deleted.
 *
 * Full and disk-full: sl_spool_append returns SL_EAGAIN while (a) unreleased
 * bytes on disk + bytes waiting for their commit are at/over max_bytes
 * (clears below 90%), (b) the in-memory pending buffer holds
 * SL_SPOOL_PENDING_MAX bytes (clears when the next commit starts), or (c)
 * the disk-full latch is set. A write or fsync error (ENOSPC, EIO, ...)
 * truncates the segment back to its last good size, fails that group's
 * callbacks and those of appends queued behind it with the error (SL_ENOSPC,
 * SL_EIO, ...: the records are NOT in the spool), and sets the latch. The
 * latch is a probe: after 1 s it clears and the resume callback fires; the
 * caller retries its appends, and if the disk is still full the next commit
 * fails and the latch is set again. After any SL_EAGAIN or failed commit,
 * the resume callback fires once when appends are accepted again (deferred
 * to its own loop iteration, never from inside a spool call).
 * Note that max_bytes counts unreleased records only: a segment stays on
 * disk until its last record is released, so out-of-order releases can
 * keep up to one segment per unreleased record on disk.
 *
 * Reading: sl_spool_next never touches the disk. Durable records are read
 * ahead in order by jobs on libuv's threadpool (uv_queue_work: preadv and
 * the CRC check run there, one job of up to 2 MiB / 64 records at a time)
 * into a FIFO on the loop thread; sl_spool_next takes from that FIFO, and
 * the ready callback tells the consumer when records arrived after it saw
 * SL_EAGAIN. Read-ahead pauses while 2 MiB wait in the FIFO.
 *
 * Memory: the pending buffer (<= SL_SPOOL_PENDING_MAX, one record may
 * exceed it when alone) plus the group being written (same bound), plus a
 * ~48-byte index entry per unreleased record, plus the read-ahead (at most
 * 2 MiB waiting + one 2 MiB job; a single larger record alone), plus up to
 * 16 recycled read buffers of at most 16 MiB in all (sl_spool_recycle).
 * Read buffers get 1/8 slack so that a recycled one fits the next window.
 *
 * Threads: every function is called on the owner's loop thread; callbacks
 * run on it too. The writer thread and the read jobs only touch their own
 * job structs and file descriptors the loop keeps open for them.
 */
#ifndef SL_SPOOL_H
#define SL_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <uv.h>

#define SL_SPOOL_REC_HDR 32u
/* Largest payload accepted (and believed at recovery): far above a
 * Lumberjack window, small enough that a flipped length bit is caught. */
#define SL_SPOOL_MAX_RECORD (256u << 20)
#define SL_SPOOL_PENDING_MAX (64u << 20)
#define SL_SPOOL_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define SL_SPOOL_DEFAULT_MAX_BYTES (1ull << 30)

struct sl_spool_opts {
  const char *data_dir;        /* spool lives in data_dir/spool */
  uint64_t segment_bytes;      /* rotate segments at this size; 0: 64 MiB */
  uint64_t max_bytes;          /* appends refused (SL_EAGAIN) at/over this;
                                * 0: 1 GiB */
  uint64_t commit_interval_ms; /* group commit window; 0: commit at the
                                * next loop iteration */
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

/* Queue a record (one received window: `nevents` events, NDJSON: payload
 * format 2, the only one written) for the next group
 * commit. Returns 0 (cb will be called exactly once, after the fsync, on the
 * loop thread, never from inside this call), SL_EAGAIN when full (cb not
 * called), SL_E2BIG over SL_SPOOL_MAX_RECORD, SL_ECLOSED after close, or
 * SL_ENOMEM. The payload is copied. */
int sl_spool_append(struct sl_spool *s, const void *payload, size_t len,
                    uint32_t nevents, sl_spool_commit_cb cb, void *arg);

struct sl_spool_rec {
  uint64_t id;        /* monotonically increasing record id */
  char *data;         /* malloc'ed copy of cap bytes (len used), owned by
                       * the caller: give it back with sl_spool_recycle
                       * (or free() it) */
  size_t len;
  size_t cap;         /* bytes allocated at data (>= len) */
  uint32_t nevents;
  unsigned version;   /* payload format (above): 1 pairs, 2 events */
  uint64_t append_ns; /* wall time of the append, ns since the Unix epoch,
                         from the record header: the same at every
                         re-delivery */
};
/* Records were read and wait for sl_spool_next. Runs on the loop thread,
 * from the read job's completion, never from inside a spool call; it may
 * call sl_spool_next, release, append or close. */
typedef void (*sl_spool_ready_cb)(void *arg);
void sl_spool_set_ready_cb(struct sl_spool *s, sl_spool_ready_cb cb,
                           void *arg);

/* Next durable record not handed out yet, in id order, taken from the
 * read-ahead FIFO: never blocks, never reads the disk on the caller's
 * thread. SL_EAGAIN when nothing has been read yet; the call starts a read
 * if records wait, and the ready callback fires when they arrive (also for
 * records that become durable later). A record whose bytes changed on disk
 * since it was written (CRC) is copied to corrupt/, counted, released and
 * skipped by the reader. A read error (SL_EIO, ...) is logged, counted and
 * leaves the record (and those after it) unread; the reader tries again
 * on its own after a backoff (up to READ_RETRY_CAP_MS, spool.c), not at
 * the next sl_spool_next call, and the ready callback fires when the
 * retry delivers. After close, records read but not taken are freed and come
 * back at the next open (they were never released). */
int sl_spool_next(struct sl_spool *s, struct sl_spool_rec *rec);
/* Give a record's buffer back (data, cap from sl_spool_next; len may have
 * shrunk, cap must not change) once the caller is done with it: the spool
 * reads later records into it instead of faulting in a fresh malloc. The
 * spool keeps at most 16 buffers / 16 MiB and frees the rest; after close
 * began it frees them all. Loop thread; not after the close callback ran.
 * data may be NULL. Ownership passes to the spool in every case. */
void sl_spool_recycle(struct sl_spool *s, char *data, size_t cap);
/* Test hook: buffers (and their bytes) kept for recycling now. */
size_t sl_spool__spare_bufs(const struct sl_spool *s, uint64_t *bytes);

/* Durable records not yet returned by sl_spool_next (waiting in the FIFO,
 * being read, or not read yet). O(unread records); for tests and drains. */
uint64_t sl_spool_unread(const struct sl_spool *s);
/* Every event of record `id` is done (indexed, duplicate or dead-lettered).
 * Records may be released out of order; the cursor advances over the
 * released prefix and fully released segments are deleted. Unknown or
 * already released ids are ignored. */
void sl_spool_release(struct sl_spool *s, uint64_t id);

int sl_spool_is_full(const struct sl_spool *s);

struct sl_spool_stats {
  uint64_t bytes;             /* on disk, not yet released (headers too) */
  uint64_t records;           /* durable, not yet released */
  uint64_t oldest_append_ns;  /* wall time of the oldest unreleased record, 0 if none */
  uint64_t fsyncs;            /* total fsync calls (data, directory, cursor) */
  uint64_t appends;           /* total records made durable */
  uint64_t corrupt;           /* records moved to corrupt/ */
  uint64_t truncated_bytes;   /* torn-tail bytes cut at recovery */
  uint64_t read_errors;       /* failed record reads (each retried later) */
  uint64_t max_bytes;         /* the intake limit (spool.max_bytes) */
  int disk_full;              /* latched ENOSPC state */
};
void sl_spool_stats(const struct sl_spool *s, struct sl_spool_stats *st);

/* Flush pending appends (their callbacks run), save the cursor, close
 * files; `cb` runs once everything is closed. Records handed out and not
 * released come back at the next open. */
void sl_spool_close(struct sl_spool *s, void (*cb)(void *arg), void *arg);

/* Test hooks (fault injection; NULL in production). Called on the worker
 * thread for every segment/cursor write and fsync; set them only while no
 * commit is in flight. Return like pwrite/fsync (-1 + errno on error). */
extern ssize_t (*sl_spool__test_pwrite)(int fd, const void *buf, size_t n,
                                        off_t off);
extern int (*sl_spool__test_fsync)(int fd);
/* Called on the threadpool for every record read; like preadv. */
extern ssize_t (*sl_spool__test_preadv)(int fd, const struct iovec *iov,
                                        int cnt, off_t off);

#endif
