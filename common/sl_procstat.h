/* sl_procstat.h - the process_* metrics every Prometheus client exports.
 *
 * Names and meanings follow the client libraries (client_golang's
 * process collector), so stock dashboards and alerts work on sluice:
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_start_time_seconds. They stay unprefixed on purpose.
 *
 * Linux only: the numbers come from /proc/self/stat, /proc/stat (btime),
 * /proc/self/fd and getrlimit(RLIMIT_NOFILE). Nothing is cached; each
 * call reads /proc again (a scrape every few seconds costs a few
 * syscalls). No allocation outlives a call.
 */
#ifndef SL_PROCSTAT_H
#define SL_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "sl_buf.h"

struct sl_procstat {
  double cpu_seconds;        /* utime + stime */
  double start_time;         /* seconds since the epoch */
  uint64_t rss_bytes;
  uint64_t vm_bytes;
  uint64_t open_fds;
  uint64_t max_fds;          /* soft RLIMIT_NOFILE; UINT64_MAX if none */
};

/* Fill the /proc/self/stat part of *out (cpu, start time, rss, vm) from
 * the text of that file: ticks = sysconf(_SC_CLK_TCK), page = page size
 * in bytes, btime = boot time in seconds since the epoch (/proc/stat).
 * 0, or SL_EINVAL when the text is not a stat line. Exposed for tests. */
int sl_procstat_parse(const char *stat, size_t len, long ticks, long page,
                      uint64_t btime, struct sl_procstat *out) SL_WUR;

/* Read every field for the calling process. 0, or an SL_E* code when
 * /proc is not readable (the fields read so far are set, others 0). */
int sl_procstat_read(struct sl_procstat *out) SL_WUR;

/* Append the six process_* samples, with HELP and TYPE. When /proc cannot
 * be read the samples are left out (a scrape still succeeds). 0 or
 * SL_ENOMEM. */
int sl_procstat_metrics(struct sl_buf *b) SL_WUR;

#endif
