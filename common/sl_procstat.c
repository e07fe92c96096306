#include "sl_procstat.h"
#include "sl_err.h"
#include "sl_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Field numbers of proc(5)'s /proc/[pid]/stat, 1-based as the man page
 * counts them; (2) is the command in parentheses. */
#define F_UTIME 14
#define F_STIME 15
#define F_STARTTIME 22
#define F_VSIZE 23
#define F_RSS 24

int
sl_procstat_parse(const char *stat, size_t len, long ticks, long page,
                  uint64_t btime, struct sl_procstat *out)
{
  unsigned long long v[F_RSS + 1];
  const char *p, *q, *end = stat + len;
  char *e;
  int f;

  if (ticks <= 0 || page <= 0)
    return SL_EINVAL;
  /* The command may hold spaces and parentheses; it ends at the last
   * ')'. */
  p = NULL;
  for (q = stat; q < end; q++)
    if (*q == ')')
      p = q;
  if (p == NULL)
    return SL_EINVAL;
  p++;
  /* Field 3 (state) is a letter; numbers start at field 4. */
  while (p < end && *p == ' ')
    p++;
  if (p >= end)
    return SL_EINVAL;
  p++;
  for (f = 4; f <= F_RSS; f++) {
    while (p < end && *p == ' ')
      p++;
    if (p >= end || !(*p == '-' || (*p >= '0' && *p <= '9')))
      return SL_EINVAL;
    errno = 0;
    /* rss can be negative in theory (a kernel accounting race); the
     * others are unsigned. strtoll keeps the sign for the check below. */
    if (*p == '-') {
      long long s = strtoll(p, &e, 10);
      v[f] = s < 0 ? 0 : (unsigned long long)s;
    } else {
      v[f] = strtoull(p, &e, 10);
    }
    if (e == p || e > end || errno)
      return SL_EINVAL;
    p = e;
  }
  out->cpu_seconds = (double)(v[F_UTIME] + v[F_STIME]) / (double)ticks;
  out->start_time = (double)btime + (double)v[F_STARTTIME] / (double)ticks;
  out->vm_bytes = v[F_VSIZE];
  out->rss_bytes = v[F_RSS] * (unsigned long long)page;
  return SL_OK;
}

/* Small /proc files: one read() gets all (they are generated at once). */
static int
read_small(const char *path, char *buf, size_t size, size_t *len)
{
  ssize_t n;
  int fd, rc = SL_OK;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  do
    n = read(fd, buf, size - 1);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    rc = -errno;
  else
    *len = (size_t)n;
  close(fd);
  if (rc == SL_OK)
    buf[*len] = '\0';
  return rc;
}

static int
boot_time(uint64_t *out)
{
  char buf[16384];
  const char *p;
  size_t len;
  int rc;

  /* btime sits after the per-CPU lines; 16 KiB covers a few hundred
   * CPUs. */
  rc = read_small("/proc/stat", buf, sizeof(buf), &len);
  if (rc)
    return rc;
  p = strstr(buf, "\nbtime ");
  if (p == NULL)
    return SL_EINVAL;
  *out = strtoull(p + 7, NULL, 10);
  return SL_OK;
}

static int
count_fds(uint64_t *out)
{
  struct dirent *de;
  uint64_t n = 0;
  DIR *d;
  int self;

  d = opendir("/proc/self/fd");
  if (d == NULL)
    return -errno;
  self = dirfd(d);
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    if (atoi(de->d_name) == self)
      continue;  /* the descriptor of this listing */
    n++;
  }
  closedir(d);
  *out = n;
  return SL_OK;
}

int
sl_procstat_read(struct sl_procstat *out)
{
  char buf[1024];
  struct rlimit rl;
  uint64_t btime = 0;
  size_t len = 0;
  int rc;

  memset(out, 0, sizeof(*out));
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX
                                                : (uint64_t)rl.rlim_cur;
  rc = count_fds(&out->open_fds);
  if (rc == SL_OK)
    rc = boot_time(&btime);
  if (rc == SL_OK)
    rc = read_small("/proc/self/stat", buf, sizeof(buf), &len);
  if (rc == SL_OK)
    rc = sl_procstat_parse(buf, len, sysconf(_SC_CLK_TCK),
                           sysconf(_SC_PAGESIZE), btime, out);
  return rc;
}

int
sl_procstat_metrics(struct sl_buf *b)
{
  struct sl_procstat ps;
  size_t i;
  int rc;

  if (sl_procstat_read(&ps) != SL_OK)
    return SL_OK;
  {
    const struct { const char *name, *help; double v; } gauges[] = {
      { "process_resident_memory_bytes", "Resident memory size in bytes.",
        (double)ps.rss_bytes },
      { "process_virtual_memory_bytes", "Virtual memory size in bytes.",
        (double)ps.vm_bytes },
      { "process_open_fds", "Number of open file descriptors.",
        (double)ps.open_fds },
      { "process_max_fds", "Maximum number of open file descriptors.",
        (double)ps.max_fds },
      { "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        ps.start_time },
    };

    rc = sl_prom_counter_f(b, "process_cpu_seconds_total",
                           "Total user and system CPU time spent in "
                           "seconds.", NULL, ps.cpu_seconds);
    for (i = 0; rc == 0 && i < sizeof(gauges) / sizeof(gauges[0]); i++)
      rc = sl_prom_gauge(b, gauges[i].name, gauges[i].help, NULL,
                         gauges[i].v);
  }
  return rc;
}
