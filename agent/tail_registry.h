/* tail_registry.h - the tailer's memory of how far each file was
 * acknowledged (internal to agent/tail*.c; not a cross-module contract).
 *
 * One entry per file identity. The key is dev + ino (an inode can only be
 * one file at a time); fp/fp_len tell whether the inode still holds the
 * same content: fp = xxh3-64 of the first fp_len bytes (fp_len <= 1024). A
 * file matches an entry when its first fp_len bytes hash to fp, so a file
 * that grew past its fingerprint length since the entry was written still
 * matches.
 *
 * On disk: data_dir/registry.json,
 *   {"version":1,"entries":[{"path":"/var/log/a.log","dev":2049,
 *     "ino":1234,"fp":"0123456789abcdef","fp_len":1024,"offset":4096,
 *     "updated":1764087000000}, ...]}
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

#define SL_TREG_FP_MAX 1024u  /* fingerprint covers at most this many bytes */

struct sl_treg_entry {
  struct sl_treg_entry *next;  /* registry's list; do not touch */
  char *path;                  /* last path the file was seen under */
  uint64_t dev, ino;
  uint64_t fp;
  uint32_t fp_len;
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

struct sl_treg_entry *sl_treg_find(struct sl_treg *r, uint64_t dev,
                                   uint64_t ino);
/* Create or overwrite the entry for dev+ino (a new identity replaces the old
 * one: copytruncate, inode reuse). Marks the registry dirty. Returns NULL
 * on allocation failure. */
struct sl_treg_entry *sl_treg_put(struct sl_treg *r, const char *path,
                                  uint64_t dev, uint64_t ino, uint64_t fp,
                                  uint32_t fp_len, uint64_t offset);
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
