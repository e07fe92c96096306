/* tail_registry.h - the tailer's memory of how far each stream of lines
 * was acknowledged (internal to agent/tail*.c; not a cross-module contract).
 *
 * One entry per STREAM: the content of one log file, wherever it lives.
 * A stream is recognised two ways (tail_file.c does the matching):
 *   - fast path: the inode that last held it (dev, ino) and its head: the
 *     first head_len bytes (<= SL_TREG_HEAD_MAX) hash to `head`. Same
 *     inode and same head: same stream. Same inode, other head: the inode
 *     was reused or its content replaced.
 *   - fingerprint (Filebeat's file_identity.fingerprint): xxh3-64 of the
 *     fp_len bytes at fp_off (input option fingerprint.offset/.length,
 *     default 0/1024), set once the file is that long (fp_len 0: not yet).
 *     A file on another inode with the same fingerprint is the same stream
 *     moved or copied (rename to another file system, copytruncate's copy):
 *     it continues at `offset` instead of being read again.
 * `sid` is the stream id that goes into event.id (struct sl_src.fp, with
 * id_dev/id_ino): fixed when the stream got its first byte, so ids never
 * change while a stream moves between inodes.
 *
 * On disk: data_dir/registry.json, version 2:
 *   {"version":2,"entries":[{"path":"/var/log/a.log","dev":2049,
 *     "ino":1234,"sid":"89abcdef01234567","head":"0123456789abcdef",
 *     "head_len":1024,"fp":"0123456789abcdef","fp_off":0,"fp_len":1024,
 *     "offset":4096,"updated":1764087000000}, ...]}
 * (`fp` only when fp_len > 0; "id_dev"/"id_ino" only when non-zero.)
 * A version 1 file (one entry per dev+ino: fp over the first fp_len <= 1 KiB
 * bytes) is migrated on load: sid = head = its fp, id_dev/id_ino = its
 * dev/ino (so its events keep the ids they had), and a 1 KiB fp is also
 * the fingerprint. Offsets carry over: nothing is shipped again after an
 * upgrade. An older agent cannot read version 2 (it sets the file aside
 * and starts over): downgrade re-ships.
 * `offset` is the ACKNOWLEDGED offset only (every byte before it was
 * delivered), `updated` is wall-clock ms of the last change or sighting.
 * Writes are temp file + fsync + rename + fsync(dir), so a crash leaves
 * either the old or the new file, never a torn one. A file that does not
 * parse is renamed aside (registry.json.corrupt-<ms>) and we start empty:
 * losing the registry means re-sending (deduplicated by event.id), while
 * refusing to start would lose everything that is written meanwhile.
 *
 * Pruning (done by tail_scan.c): an entry goes away when its file was seen
 * deleted (link count 0) and every byte of it was acknowledged, or when no
 * scan has seen the file for 24 h (entries of tracked files are never
 * pruned; a scan refreshes `updated` of the files it sees).
 *
 * Threading: everything runs on the loop thread except sl_treg_write(),
 * which may run on a worker thread with a string produced by
 * sl_treg_serialize(); writes are serialised by a mutex and numbered so an
 * older snapshot never replaces a newer one.
 */
#ifndef SL_TAIL_REGISTRY_H
#define SL_TAIL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_list.h"

#define SL_TREG_HEAD_MAX 1024u     /* the head covers at most this much */
#define SL_TREG_FP_MAX (64u << 10) /* largest fingerprint.length */

struct sl_treg_entry {
  struct sl_list link;         /* registry's list; do not touch */
  struct sl_list ix_link[3];   /* in its hash indexes; do not touch */
  uint64_t ord;                /* insertion number; do not touch */
  char *path;                  /* last path the stream was seen under */
  uint64_t dev, ino;           /* inode that last held it */
  uint64_t sid;                /* stream id (event.id), never changes */
  uint64_t id_dev, id_ino;     /* event.id too: 0 except migrated v1 */
  uint64_t head;               /* xxh3-64 of bytes [0, head_len) */
  uint32_t head_len;
  uint64_t fp;                 /* xxh3-64 of [fp_off, fp_off + fp_len) */
  uint64_t fp_off;
  uint32_t fp_len;             /* 0: no fingerprint (file too short) */
  uint64_t offset;             /* acknowledged offset */
  int64_t updated_ms;          /* wall clock ms */
  unsigned refs;               /* open file objects using it; >0: no prune */
};

struct sl_treg;

/* Load data_dir/registry.json (a missing file is an empty registry; a
 * corrupt one is logged, renamed aside, and replaced by an empty one).
 * Returns 0, SL_ENOMEM, or SL_EINVAL (data_dir missing). */
int sl_treg_open(const char *data_dir, struct sl_treg **out);
void sl_treg_free(struct sl_treg *r);

/* Entries whose last inode is dev+ino, one after another: `after` NULL
 * gives the first, an entry the next one (an inode can be named by an old
 * stream whose content moved away and by the stream it holds now). */
struct sl_treg_entry *sl_treg_next_ino(struct sl_treg *r,
                                       struct sl_treg_entry *after,
                                       uint64_t dev, uint64_t ino);
/* The first entry of dev+ino (tests). */
struct sl_treg_entry *sl_treg_find(struct sl_treg *r, uint64_t dev,
                                   uint64_t ino);
/* The entry with this fingerprint (same fp_off and fp_len), or NULL. */
struct sl_treg_entry *sl_treg_find_fp(struct sl_treg *r, uint64_t fp_off,
                                      uint32_t fp_len, uint64_t fp);
/* Is sid already the stream id of an entry without id_dev/id_ino? */
bool sl_treg_sid_used(const struct sl_treg *r, uint64_t sid);
/* A new, zeroed entry for a new stream (the caller fills in sid, head,
 * fp). Marks dirty. NULL on allocation failure. */
struct sl_treg_entry *sl_treg_add(struct sl_treg *r, const char *path,
                                  uint64_t dev, uint64_t ino);
/* Record the path it was seen under now. 0 or SL_ENOMEM. */
int sl_treg_set_path(struct sl_treg *r, struct sl_treg_entry *e,
                     const char *path);
/* The caller changed fields of e: refresh `updated` and mark dirty. Call
 * it after changing dev, ino, sid, id_dev, id_ino or fp*: lookups go
 * through indexes on those, updated here. */
void sl_treg_changed(struct sl_treg *r, struct sl_treg_entry *e);
/* Set the acknowledged offset; marks dirty when it changed. */
void sl_treg_set_offset(struct sl_treg *r, struct sl_treg_entry *e,
                        uint64_t offset);
/* Refresh `updated` for a file seen by a scan. Marks dirty at most once an
 * hour per entry so idle files do not cause registry writes. */
void sl_treg_touch(struct sl_treg *r, struct sl_treg_entry *e);
/* Remove an entry (must have refs == 0). */
void sl_treg_remove(struct sl_treg *r, struct sl_treg_entry *e);
/* Drop unreferenced entries not updated for max_age_ms. Returns the number
 * dropped. */
size_t sl_treg_prune(struct sl_treg *r, int64_t max_age_ms);
/* Drop every unreferenced entry (refs == 0) for which gone(e, arg) is
 * true, logging each (clean_removed / clean_inactive, tail_scan.c).
 * Returns the number dropped. */
size_t sl_treg_clean(struct sl_treg *r,
                     bool (*gone)(const struct sl_treg_entry *e, void *arg),
                     void *arg);

size_t sl_treg_count(const struct sl_treg *r);
bool sl_treg_dirty(const struct sl_treg *r);

/* Snapshot as JSON text ending in a newline, the exact file contents
 * (malloc'ed, caller frees), and clear the dirty flag;
 * *seq receives the snapshot's number for sl_treg_write(). NULL on ENOMEM
 * (dirty stays set). */
char *sl_treg_serialize(struct sl_treg *r, uint64_t *seq);
/* Mark dirty again (a write failed). */
void sl_treg_mark_dirty(struct sl_treg *r);
/* Write a snapshot atomically (sl_fs_write_atomic). Thread-safe; a snapshot
 * older than one already written is skipped (returns 0). Returns 0 or an
 * SL_E* code. */
int sl_treg_write(struct sl_treg *r, const char *json, uint64_t seq);
/* Serialise and write now, on the calling thread. */
int sl_treg_save(struct sl_treg *r);

/* Path of registry.json (for logs and tests). */
const char *sl_treg_path(const struct sl_treg *r);

#endif
