#include "sl_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_err.h"

int
sl_fs_mkdir_p(const char *path)
{
  char tmp[PATH_MAX];
  size_t n = strlen(path), i;

  if (n == 0 || n >= sizeof(tmp))
    return SL_EINVAL;
  memcpy(tmp, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] != '/' && tmp[i] != '\0')
      continue;
    tmp[i] = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
      return -errno;
    tmp[i] = i == n ? '\0' : '/';
  }
  return 0;
}

int
sl_fs_write_all(int fd, const void *buf, size_t n)
{
  const char *p = buf;
  ssize_t w;

  while (n > 0) {
    w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno == EDQUOT ? SL_ENOSPC : -errno;
    }
    if (w == 0)
      return SL_EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int
sl_fs_pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
  return sl_fs_pwrite_all_with(pwrite, fd, buf, n, off);
}

int
sl_fs_pwrite_all_with(sl_fs_pwrite_fn pw, int fd, const void *buf, size_t n,
                      uint64_t off)
{
  const char *p = buf;
  ssize_t w;

  while (n > 0) {
    w = pw(fd, p, n, (off_t)off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno == EDQUOT ? SL_ENOSPC : -errno;
    }
    if (w == 0)
      return SL_EIO;
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

int
sl_fs_fsync_dir(const char *dir)
{
  int fd, rc = 0;

  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  /* Some file systems (FUSE, 9p, some NFS setups) cannot sync a
   * directory and say EINVAL: nothing more can be done there, and refusing
   * to start over it would be worse. */
  if (fsync(fd) != 0 && errno != EINVAL)
    rc = -errno;
  close(fd);
  return rc;
}

int
sl_fs_write_atomic(const char *path, const void *data, size_t len,
                   mode_t mode)
{
  char tmp[PATH_MAX], dir[PATH_MAX];
  const char *slash;
  int fd, rc;

  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
    return SL_EINVAL;
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return -errno;
  rc = sl_fs_write_all(fd, data, len);
  if (rc == 0 && fsync(fd) != 0)
    rc = -errno;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = -errno;
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  /* The rename is durable only once the directory is synced. */
  slash = strrchr(path, '/');
  if (slash == NULL)
    return sl_fs_fsync_dir(".");
  if (slash == path)
    return sl_fs_fsync_dir("/");
  if ((size_t)(slash - path) >= sizeof(dir))
    return SL_EINVAL;
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = '\0';
  return sl_fs_fsync_dir(dir);
}
