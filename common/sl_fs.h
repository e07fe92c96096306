/* sl_fs.h - small file-system helpers shared by the agent registry, the
 * agent id, the spool cursor, the dead-letter files and the self-log.
 *
 * Every function returns 0 or a negative errno-style SL_E* code (see
 * sl_err.h); EINTR is retried inside. Nothing keeps state.
 */
#ifndef SL_FS_H
#define SL_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p with mode 0700 (state of a log shipper is nobody else's
 * business: events, offsets, credentials in dead letters); an existing
 * directory is fine and keeps its mode. */
int sl_fs_mkdir_p(const char *path);

/* write(2) until all n bytes are written. */
int sl_fs_write_all(int fd, const void *p, size_t n);

/* pwrite(2) at off until all n bytes are written; a 0-byte write is SL_EIO
 * and EDQUOT is reported as SL_ENOSPC (both mean "disk full" to callers). */
int sl_fs_pwrite_all(int fd, const void *p, size_t n, uint64_t off);

/* The same through `pw` (a pwrite(2) look-alike): for callers that inject
 * write faults in tests (the spool). */
typedef ssize_t (*sl_fs_pwrite_fn)(int fd, const void *buf, size_t n,
                                   off_t off);
int sl_fs_pwrite_all_with(sl_fs_pwrite_fn pw, int fd, const void *p,
                          size_t n, uint64_t off);

/* fsync a directory so that a rename or create inside it is durable. */
int sl_fs_fsync_dir(const char *dir);

/* Replace `path` atomically and durably with `len` bytes of `data`: write
 * `path`.tmp, fsync it, rename over `path`, fsync the directory. On error
 * the temporary file is removed and `path` is unchanged. */
int sl_fs_write_atomic(const char *path, const void *data, size_t len,
                       mode_t mode);

#endif
