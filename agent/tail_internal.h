/* tail_internal.h - what tail.c, tail_scan.c and tail_file.c share (not a
 * cross-module contract: everything outside agent/tail*.c uses tail.h).
 *
 * Who owns what (everything runs on the loop thread):
 *   tail.c       struct sl_tail and its lifecycle (new/start/stop/close),
 *                the read pump (ready list, idle handle, offering chunks to
 *                the consumer, backpressure), acks (sl_tail_chunk_done),
 *                the poll timer (timers, slots given up while files
 *                wait), the descriptor budget (harvester_limit, t->nopen)
 *                and the registry writes.
 *   tail_scan.c  discovery: glob scans, directory watches (struct
 *                tail_dir, t->dirs), the rescan timer, the index of live
 *                files by identity and by path (t->by_id, t->by_path), the
 *                files waiting for a slot (struct tail_wait, t->waitq),
 *                once-per-path reports (t->notes) and registry cleaning.
 *   tail_file.c  one file: struct tail_file and its chunks -- open, read,
 *                split into lines, fingerprint, truncation/rotation/
 *                inactivity checks, partial-line flush, and the read
 *                buffers (the only place read chunks are allocated).
 *
 * Offsets of one file object (struct tail_file):
 *   acked_off <= (end of last chunk handed out) == read_off <= size
 *   - read_off: the next byte not yet turned into a chunk. Bytes after it
 *     up to `size` are a partial line (re-read next time, never buffered)
 *     or, while `skipping`, the middle of an over-long line.
 *   - acked_off: end_offset of the last chunk of the in-order prefix of
 *     done chunks (the per-file FIFO `fifo`); only this goes to the
 *     registry, so a restart resumes after the last delivered line.
 *   - size: largest file size seen (fstat or read); growth resets the
 *     inactivity clock `last_growth`, a shrink is a copytruncate.
 *
 * Life of a file object: OPEN (fd) -> closed after close_inactive without
 * growth -> DORMANT (no fd, still matched by a glob, reopened when its size
 * changes) -> DETACHED when a scan no longer sees it (or its content was
 * replaced: copytruncate / inode reuse start a new object on the same fd).
 * A detached object stays alive ("zombie") while chunks that point at its
 * sl_src are out; the refcount counts 1 for the live list + 1 per chunk.
 * sl_src is never modified after the first chunk is handed out (workers on
 * other threads read it), which is why a new generation is a new object.
 *
 * File identity (tail_registry.h for the stream model): a file object
 * gets its stream when it first has bytes (file_identify in tail_file.c):
 * the registry entry of its inode whose head still matches, else an entry
 * with the same fingerprint that no live file holds (a moved or copied
 * stream, continued at its offset), else a new stream from 0. While
 * another live file holds that fingerprint's stream, the newcomer is a
 * copy of it (copytruncate's copy before the truncate): it is dropped and
 * looked at again by a later scan.
 */
#ifndef SL_TAIL_INTERNAL_H
#define SL_TAIL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "bufpool.h"
#include "sl_list.h"
#include "tail.h"
#include "tail_registry.h"

/* One read: large enough to amortise the syscall and hand the pipeline big
 * chunks of many lines, small enough that a chunk stays cache-friendly. */
#define SL_TAIL_READ_CHUNK (256u * 1024)

struct sl_tail;
struct tail_file;

/* One `inputs[]` entry of type file. Owned by sl_tail (t->inputs). */
struct tail_input {
  struct sl_tail *t;
  int index;                       /* into inputs[] */
  char **paths;
  size_t npaths;
  char **globs;                    /* paths with `**` expanded (glob(3)
                                      and fnmatch(3) patterns) */
  size_t nglobs;
  char **excl;
  size_t nexcl;
  bool start_end;                  /* start_at: end */
  bool poll;                       /* mode: poll (no inotify watches) */
  bool close_removed;              /* close a deleted file at its end */
  bool clean_removed;              /* drop registry entries of gone files */
  uint64_t scan_ms, close_inactive_ms, partial_ms;
  uint64_t clean_inactive_ms;      /* 0: off (24 h prune of unseen) */
  uint64_t hlimit;                 /* harvester_limit of this input; 0:
                                      only the global one */
  uint64_t nopen;                  /* open fds of this input's files */
  size_t max_line;
  uint64_t fp_off;                 /* fingerprint.offset */
  uint32_t fp_len;                 /* fingerprint.length */
  bool read_gz;                    /* read_gz: *.gz files are read once */
  uint64_t bytes_read;             /* sl_tail_input_bytes_read */
  const struct sl_parse_ctx *ctx;
  uv_timer_t scan_timer;
  uint64_t scan_gen;
  bool scanned;                    /* first scan done */
};

/* A chunk with tail's bookkeeping; pub.priv points back here. Allocated by
 * tail_file.c, freed by tail.c once acked (or by sl__tail_file_destroy).
 * Holds one reference on its file while it exists. */
struct tail_chunk {
  struct sl_tail_chunk pub;
  struct tail_file *f;
  struct sl_list flink;            /* f->fifo */
  struct sl_list plink;            /* t->pending (not yet taken) */
  struct sl_tail_cut *cuts;        /* pub.cuts, owned here */
  size_t dcap;                     /* capacity of pub.data (assembly) */
  uint64_t cut_line;               /* file offset of the open cut's line */
  bool done;
};

struct tail_file {
  struct sl_list link;             /* t->files or t->zombies */
  struct sl_list rlink;            /* t->ready */
  bool in_ready;
  struct sl_tail *t;
  struct tail_input *in;
  unsigned refs;
  struct sl_src src;               /* immutable once a chunk is out */
  char *path;
  bool ident;                      /* has its stream (src.fp, re); false
                                      while the file is empty */
  uint64_t head;                   /* xxh3-64 of bytes [0, head_len) of
                                      the content being read */
  uint32_t head_len;
  int64_t mtime_ns;                /* last st_mtim seen (same-size rewrite) */
  uint64_t chk_size;               /* size at the last check */
  const char *how;                 /* where reading started (for logs) */
  bool ahead;                      /* a copy shorter than what its stream
                                      shipped: read_off > size is fine */
  bool gz;                         /* a .gz read with read_gz */
  struct tail_gz *gzs;             /* its inflate state (tail_gz.c) */
  int fd;                          /* -1: dormant or detached */
  uint64_t read_off, acked_off, size;
  size_t want_len;                 /* next read size */
  uint64_t last_growth;            /* uv_now ms */
  uint64_t opened_ms;              /* uv_now when the fd was opened */
  uint64_t checked_ms;             /* uv_now of the last periodic fstat */
  uint64_t seen_gen;
  uint64_t path_gen;               /* last scan that found it at f->path:
                                      not rotated, no stat needed */
  bool want_read;                  /* may have unread bytes */
  bool skipping;                   /* inside an over-long line */
  bool rotated;                    /* path no longer names this file */
  bool deleted;                    /* link count 0 */
  uint64_t deleted_ms;             /* when `deleted` was seen (loop ms) */
  bool detached;
  struct tail_chunk *trunc;        /* assembly: a chunk of copied lines
                                      holding cut over-long lines, filled
                                      until the read ends (or, while
                                      skipping, until the '\n' of its last
                                      line comes) */
  struct sl_treg_entry *re;        /* NULL: registry not updated */
  struct sl_list fifo;             /* outstanding chunks, offset order */
  /* Live files are indexed by identity and by path (struct htab). */
  uint64_t idkey, pathkey;
  struct tail_file *id_next, *path_next;
};

/* A watched directory (tail_scan.c). Freed in its handle's close callback. */
struct tail_dir {
  struct sl_list link;             /* t->dirs */
  struct sl_tail *t;
  uv_fs_event_t h;
  char *path;
  uint64_t last_used;              /* uv_now of the last scan that needed it */
  bool watching;                   /* false: inotify refused it (watch limit,
                                      no inotify): its files are polled */
  bool via_link;                   /* holds the target of a symlinked file:
                                      events are matched by identity */
  uint64_t key;                    /* xxh3 of path (t->dirtab) */
  struct tail_dir *hnext;
};

/* A file that matched a glob but found no free descriptor slot
 * (harvester_limit): a new path, or a dormant file that grew. Waits in
 * t->waitq (FIFO) and in t->waiting (by identity, so a scan does not queue
 * it twice) until sl__tail_admit() opens it. Owned by tail_scan.c. */
struct tail_wait {
  struct sl_list link;             /* t->waitq */
  struct tail_input *in;
  uint64_t dev, ino, key;
  struct tail_wait *hnext;
  char *path;
};

/* A path already reported once (permission error, non-regular file): the
 * report is not repeated on every scan. Owned by tail_scan.c. */
struct tail_note {
  uint64_t key;                    /* xxh3 of the path */
  struct tail_note *hnext;
  int err;                         /* what was reported */
};

/* Chained hash on one uint64 key: scans look files up by identity for
 * every globbed path and directory events by path, so neither may cost a
 * walk over all files. Grows by doubling; a failed growth only makes
 * chains longer. The table does not own its elements (struct tail_file,
 * tail_wait or tail_note: next_off/key_off say where their chain pointer
 * and key are). */
struct htab {
  void **b;
  size_t nb, n;
  size_t next_off, key_off;        /* offsetof chain pointer and key */
};

struct sl_tail {
  uv_loop_t *loop;
  json_t *inputs_json;
  struct tail_input *inputs;
  size_t ninputs;
  char *data_dir;
  uint64_t reg_flush_ms;
  uint64_t qmax;
  struct sl_bufpool *reads;        /* read windows; see read_buf_get() */
  sl_tail_chunk_cb cb;
  void *cb_arg;

  struct sl_treg *reg;
  struct sl_list files;            /* live file objects */
  struct sl_list zombies;          /* detached, chunks still out */
  struct sl_list ready;            /* files with bytes to read */
  struct sl_list pending;          /* chunks not yet taken by cb */
  struct sl_list dirs;             /* struct tail_dir */
  struct htab by_id, by_path;
  uint64_t inflight;
  uint64_t nopen;
  uint64_t hlimit;                 /* harvester_limit: most fds on files */
  struct sl_list waitq;            /* struct tail_wait, oldest first */
  struct htab waiting;             /* the same, by identity */
  struct htab notes;               /* struct tail_note, by path hash */
  struct htab dirtab;              /* struct tail_dir, by path hash */
  size_t nwaiting;                 /* length of waitq */
  bool fd_pressure;                /* open(2) said EMFILE: stop admitting
                                      until a descriptor is closed */
  uint64_t last_clean;             /* uv_now of the last clean_* pass */
  uint64_t check_ms;               /* fstat pass interval with inotify */
  size_t nunwatched;               /* dirs with watching == false */
  bool poll_mode;                  /* mode: poll (no inotify at all) */
  bool limit_logged;               /* "harvester_limit reached" is out */
  bool watch_logged;               /* "cannot watch" is out */
  uint64_t last_check;             /* uv_now of the last fstat pass */
  bool started, paused, stopped, closing;

  uv_idle_t idle;                  /* keeps reading while work remains */
  uv_timer_t poll_timer, reg_timer, rescan_timer, admit_timer;
  bool reg_busy;                   /* a registry write is on a worker */
  unsigned closes_left;
  void (*close_cb)(void *);
  void *close_arg;

  struct sl_tail_stats st;
};

/* ---- tail.c ---------------------------------------------------------- */

/* Hand pending chunks to the consumer in order until it refuses one. */
void sl__tail_offer_pending(struct sl_tail *t);
/* Start or stop the idle handle depending on whether work remains. */
void sl__tail_update_idle(struct sl_tail *t);
/* The descriptor budget (harvester_limit). tail_file.c calls opened/closed
 * around every fd it keeps; has_slot says whether in may open one more. */
bool sl__tail_has_slot(const struct tail_input *in);
void sl__tail_fd_opened(struct tail_file *f);
void sl__tail_fd_closed(struct tail_file *f);
/* Run sl__tail_admit() once, on the next loop iteration: one pass over
 * the wait queue however many files a scan or a burst of events queued. */
void sl__tail_schedule_admit(struct sl_tail *t);

/* ---- tail_scan.c ----------------------------------------------------- */

/* Expand `**` in in->paths into in->globs (Filebeat's recursive_glob:
 * one pattern per depth 0..SL_TAIL_GLOB_DEPTH). 0 or SL_ENOMEM. */
#define SL_TAIL_GLOB_DEPTH 8
int sl__tail_expand_globs(struct tail_input *in);
/* Scan every input once, then start the per-input scan timers. */
void sl__tail_scan_start(struct sl_tail *t);
/* Stop watching directories (close path); frees each tail_dir. */
void sl__tail_scan_close(struct sl_tail *t);
int sl__tail_htab_init(struct htab *h, size_t next_off, size_t key_off);
void sl__tail_htab_add(struct htab *h, void *e);
void sl__tail_htab_del(struct htab *h, void *e);
uint64_t sl__tail_id_key(uint64_t dev, uint64_t ino);
/* The live (not detached) file with this identity, or NULL. */
struct tail_file *sl__tail_find_live(struct sl_tail *t, uint64_t dev,
                                     uint64_t ino);
/* Open waiting files while slots are free (harvester_limit). */
void sl__tail_admit(struct sl_tail *t);
/* Queue f (open, about to give its slot up) to be reopened when a slot
 * frees. */
void sl__tail_wait_file(struct tail_file *f);
/* open(2) of path failed with err (negative errno): log it once per path
 * (until it opens again); EMFILE/ENFILE queue it for a slot. */
void sl__tail_open_failed(struct tail_input *in, const char *path, int err);
/* Free the wait queue and the notes (close path). */
void sl__tail_scan_free(struct sl_tail *t);

/* ---- tail_file.c ----------------------------------------------------- */

/* A path from a scan whose inode is not tracked: open it, decide where to
 * start (registry, start_at, or 0) and add it to the live files. */
void sl__tail_file_open(struct tail_input *in, const char *path);
/* A dormant file changed size: reopen it and let the checks decide. */
void sl__tail_file_reopen(struct tail_file *f, const char *path);
/* One read at read_off, cut into chunks queued on t->pending. 1 when more
 * may follow, 0 at end of file, <0 on error; *nread: bytes read. May
 * replace (detach) f. */
int sl__tail_file_read(struct tail_file *f, size_t *nread);
/* fstat an open file: growth, truncation, deletion, inactivity. May
 * replace f (new generation) or close its fd. */
void sl__tail_file_check(struct tail_file *f, uint64_t now);
/* Mark f rotated when its path no longer names its inode (scan). */
void sl__tail_file_check_rotated(struct tail_file *f);
void sl__tail_file_close_fd(struct tail_file *f);
/* Free a chunk's bookkeeping (not its data). */
void sl__tail_chunk_free(struct tail_chunk *c);
/* Leave the live list; the object lives on while chunks are out. */
void sl__tail_file_detach(struct tail_file *f);
/* Drop one reference; the last one frees f. */
void sl__tail_file_unref(struct tail_file *f);
/* Free f and every chunk it still has, whatever the references (close). */
void sl__tail_file_destroy(struct tail_file *f);
void sl__tail_ready_push(struct tail_file *f);
void sl__tail_ready_remove(struct tail_file *f);
/* f may have bytes to read: queue it and wake the pump. */
void sl__tail_mark_ready(struct tail_file *f);

/* Queue a copy of p[0, len) as a chunk at file offset off (flags, and the
 * offset after it for acks). 0 or SL_ENOMEM. */
int sl__tail_emit(struct tail_file *f, const char *p, size_t len,
                  uint64_t off, unsigned flags, uint64_t end_off);

/* ---- tail_gz.c ------------------------------------------------------- */

/* One bounded step of reading a .gz (f->gz): as sl__tail_file_read. */
int sl__tail_gz_read(struct tail_file *f, size_t *nread);
void sl__tail_gz_free(struct tail_file *f);
/* Does the gzip trailer say `off` uncompressed bytes is the whole file? */
bool sl__tail_gz_done_at(int fd, uint64_t size, uint64_t off);

#endif
