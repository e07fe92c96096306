/* tail.h - find files by glob, read them in large chunks, hand out chunks of
 * whole lines, and remember (registry) how far the output acknowledged.
 *
 * Runs on the agent's I/O loop. For each `inputs[]` entry of type file it
 * watches the glob directories (inotify through uv_fs_event) and re-scans
 * the globs every `scan_interval`. Reads are large (256 KiB) and bounded per
 * loop iteration so one busy file cannot starve the others.
 *
 * Ownership and order: a chunk is allocated by tail and handed to the
 * pipeline through the chunk callback; the pipeline (any thread) reads it
 * and finally calls sl_tail_chunk_done() ON THE LOOP THREAD once every event
 * of the chunk was acknowledged by the output. The bytes (data) usually are
 * a read window lent by tail's small read pool (bufpool.h, bounded by
 * queue.max_bytes); the pipeline may give them back earlier, from any
 * thread, with sl_tail_chunk_free_data() once it no longer reads them.
 * Chunks of one file may be done in any order: tail advances the file's
 * acknowledged offset only over the in-order prefix of done chunks, and
 * only that offset is saved in the registry. Unacknowledged chunk bytes
 * count against `queue_max_bytes`; at the limit tail stops reading
 * (backpressure) until chunks are done.
 *
 * Input keys read from each normalised input object: paths (list of globs),
 * exclude (list of globs), start_at (beginning|end), scan_interval (ms),
 * close_inactive (ms), max_line_bytes (bytes), partial_timeout (ms),
 * fingerprint.offset / fingerprint.length (bytes), read_gz (bool),
 * mode (inotify|poll), harvester_limit, close_removed, clean_removed
 * (bools), clean_inactive (ms; 0: off). Agent keys: data_dir (registry
 * file data_dir/registry.json), registry_flush (ms), queue.max_bytes,
 * harvester_limit (sl_tail_opts).
 */
#ifndef SL_TAIL_H
#define SL_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "bufpool.h"
#include "parse.h"

/* Chunk flags. */
#define SL_CHUNK_TRUNCATED 0x1u  /* some lines were cut at max_line_bytes:
                                    see cuts */
#define SL_CHUNK_NO_NL     0x2u  /* data is ONE final line without newline,
                                    flushed after partial_timeout */

/* A line of a chunk that was longer than max_line_bytes: data[at, end)
 * holds its head (cut on a UTF-8 boundary) and a '\n' tail added, the
 * rest of it was skipped in the file (dropped, counted in
 * lines_truncated / bytes_skipped). It stays in the chunk between the
 * lines around it, so file order holds whatever worker parses it. */
struct sl_tail_cut {
  size_t at, end;
  uint64_t skip;             /* file bytes left out: each later line of the
                                chunk starts this much further in the file
                                than its place in data says */
};

struct sl_tail_chunk {
  const struct sl_src *src;            /* the file; valid until done */
  const struct sl_parse_ctx *ctx;      /* its input's parse context */
  int input_index;                     /* index into inputs[] */
  uint64_t offset;                     /* file offset of data[0] */
  uint64_t end_offset;                 /* offset after this chunk incl.
                                          skipped bytes: what is saved once
                                          this and all earlier chunks are done */
  char *data;                          /* whole lines, each ending in '\n'
                                          (unless a flag says otherwise) */
  size_t len;
  size_t cap;                          /* capacity of data (for pool) */
  struct sl_bufpool *pool;             /* lends data; NULL: malloc'ed */
  unsigned flags;
  const struct sl_tail_cut *cuts;      /* SL_CHUNK_TRUNCATED: in order */
  size_t ncuts;
  int64_t read_time_ns;                /* wall time the bytes were read */
  void *priv;                          /* tail's bookkeeping */
};

/* Return 0 when the chunk was taken. Return SL_EAGAIN to refuse it: tail
 * keeps it, stops reading, and offers it again after sl_tail_resume(). */
typedef int (*sl_tail_chunk_cb)(void *arg, struct sl_tail_chunk *c);

struct sl_tail;

struct sl_tail_opts {
  const json_t *inputs;              /* normalised inputs[] (type: file) */
  struct sl_parse_ctx *const *ctxs;  /* one per inputs[] entry */
  const char *data_dir;
  uint64_t registry_flush_ms;
  uint64_t queue_max_bytes;
  uint64_t harvester_limit;          /* most files open at once; 0: from
                                        RLIMIT_NOFILE (tail.c fd_budget) */
  sl_tail_chunk_cb cb;
  void *cb_arg;
};

int sl_tail_new(uv_loop_t *loop, const struct sl_tail_opts *o,
                struct sl_tail **out, char *err, size_t errlen);
/* Load the registry, discover files, start reading. */
int sl_tail_start(struct sl_tail *t);
/* The consumer has room again: offer refused chunks, read on. */
void sl_tail_resume(struct sl_tail *t);
/* Give c->data back (read pool or free) and set it NULL; any thread, once
 * nothing reads the bytes any more. The chunk still counts against
 * queue.max_bytes until sl_tail_chunk_done(). */
void sl_tail_chunk_free_data(struct sl_tail_chunk *c);
/* Every event of c was acknowledged. Loop thread only. Frees c->data. */
void sl_tail_chunk_done(struct sl_tail *t, struct sl_tail_chunk *c);
/* Every event that starts in c before file offset `off` (a line start)
 * was acknowledged, and c is not done yet: when c is its file's oldest
 * outstanding chunk, the registry may resume at `off`. Loop thread only.
 * Lets a stage that holds a chunk for a line group still pending
 * (multiline) save the group's first line instead of the chunk's start. */
void sl_tail_chunk_progress(struct sl_tail *t, struct sl_tail_chunk *c,
                            uint64_t off);
/* Stop reading new data (drain starts); chunks out stay valid. */
void sl_tail_stop_reading(struct sl_tail *t);
/* Write the registry now (temp + fsync + rename). */
int sl_tail_flush_registry(struct sl_tail *t);

struct sl_tail_stats {
  uint64_t files_open;
  uint64_t files_waiting;    /* matched, waiting for a harvester slot */
  uint64_t harvester_limit;
  uint64_t bytes_read;
  uint64_t lines_truncated;
  uint64_t bytes_skipped;    /* rest of truncated lines, dropped */
  uint64_t inflight_bytes;   /* handed out, not done */
  uint64_t registry_entries;
  uint64_t rotations, truncations;
};
void sl_tail_stats(const struct sl_tail *t, struct sl_tail_stats *st);
/* Bytes read from the files of inputs[index] (0 for an unknown index). */
uint64_t sl_tail_input_bytes_read(const struct sl_tail *t, int index);

/* Save the registry, close watchers and files; cb runs when closed.
 * Call it after draining (every chunk done) or once the pipeline has let go
 * of its chunks: chunks still out are freed here, so neither they nor their
 * src may be touched, and sl_tail_chunk_done() may not be called, after it.
 *
 * Notes for users of struct sl_src: src->fp (with id_dev/id_ino) is the
 * file's STREAM id (tail_registry.h), fixed when the stream got its first
 * bytes and restored from the registry on restart, so event.id stays the
 * same across restarts and when the stream moves to another inode (a
 * copytruncate copy, found by its fingerprint, continues it). A truncation
 * or inode reuse starts a new stream (new src, new id).
 */
void sl_tail_close(struct sl_tail *t, void (*cb)(void *arg), void *arg);

#endif
