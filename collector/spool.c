/* spool.c - durable append-only queue; layout and rules are in spool.h.
 *
 * Shape: appends are serialised into a pending buffer on the loop thread. A
 * commit "job" (one at a time, on the spool's own writer thread) takes the
 * whole
 * pending buffer, writes it to one or more segments, fsyncs each file (and
 * the directory for a new file), may save the cursor and may delete fully
 * released segments. Its after-work callback runs on the loop: it indexes
 * the new records for the reader and runs the commit callbacks. Because only
 * one job runs at a time, segment sizes and the active segment change only
 * on the loop thread, between jobs.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "sl_backoff.h"
#include "sl_err.h"
#include "sl_fs.h"
#include "sl_list.h"
#include "sl_log.h"

/* Record magic: three fixed bytes d3 53 4c, then the format version (top
 * byte of the little-endian u32). Appends write REC_VERSION; recovery and
 * the reader also accept every older version still described in spool.h,
 * so that an upgrade loses nothing that was spooled before it. */
#define REC_MAGIC_BASE 0x004c53d3u
#define REC_VERSION 2u
#define REC_VERSION_MIN 1u
#define REC_MAGIC (REC_MAGIC_BASE | (REC_VERSION << 24))
#define HDR SL_SPOOL_REC_HDR
#define CURSOR_MAGIC 0x52554353u
#define CURSOR_SIZE 24
#define CURSOR_NAME "cursor"
#define CURSOR_TMP "cursor.tmp"
/* Cursor saves are batched: one temp+fsync+rename+fsync(dir) per 200 ms at
 * most, since a release can happen thousands of times per second. */
#define CURSOR_SAVE_MS 200
/* Disk-full probe period: the latch clears after this, see spool.h. */
#define PROBE_MS 1000
/* First allocation of a pending buffer; it then doubles as needed. */
#define PEND_MIN_CAP (64u << 10)
/* Index entries kept allocated once the backlog is drained. */
#define RING_KEEP 4096
/* Largest pending buffer kept for reuse between groups. */
#define SPARE_MAX (16u << 20)
/* A failed read is retried after a backoff between these bounds: a disk
 * that keeps failing costs a few reads a second, not a spinning loop. */
#define READ_RETRY_BASE_MS 20
#define READ_RETRY_CAP_MS 2000
/* Recycled read buffers: enough for the read-ahead (2 MiB waiting + a
 * 2 MiB job) plus the records the consumer finishes between two reads;
 * more would only hold memory a drained spool no longer needs. */
#define RFREE_MAX 16
#define RFREE_BYTES (16u << 20)
#define SEG_NAME_LEN 21 /* 16 hex + ".seg" + NUL */
/* Spooled events are log data: not for every local user to read. */
#define FILE_MODE 0600

ssize_t (*sl_spool__test_pwrite)(int fd, const void *buf, size_t n,
                                 off_t off);
int (*sl_spool__test_fsync)(int fd);
ssize_t (*sl_spool__test_preadv)(int fd, const struct iovec *iov, int cnt,
                                 off_t off);

/* One segment file. */
struct seg {
  struct sl_list link;     /* in sl_spool.segs, oldest first */
  uint64_t first_id; /* from the file name */
  int fd;
  uint64_t size;     /* durable bytes: every byte below is fsync'ed */
  uint64_t live;     /* unreleased records in it */
};

/* Reader index: one entry per durable record from the cursor on, in id
 * order (a ring). Released entries stay until the prefix before them is
 * released too; their `seg` may then already be gone, so it is only used
 * for entries that are not released. */
struct ent {
  uint64_t id;
  struct seg *seg;
  uint64_t off;      /* record header offset in seg */
  uint64_t t_ns;
  uint32_t len;
  uint32_t nevents;
  unsigned char released;
  unsigned char handed;   /* given to the reader (being read, or read) */
  unsigned char reading;  /* in a read job; not the consumer's yet */
  unsigned char version;  /* record format, from the magic */
};

/* A record waiting for (or inside) a commit. */
struct prec {
  uint64_t id;
  size_t buf_off;    /* header offset in the pending buffer */
  uint32_t len;
  uint32_t nevents;
  uint64_t t_ns;
  sl_spool_commit_cb cb;
  void *arg;
};

struct pend {
  char *buf;
  size_t len, cap;
  struct prec *recs;
  size_t n, rcap;
};

/* A contiguous piece of a job's buffer going into one segment. */
struct chunk {
  struct seg *seg;    /* existing target, or NULL: create first_id.seg */
  struct seg *newseg; /* preallocated struct for a new segment */
  uint64_t first_id;
  int fd;
  uint64_t file_off;
  size_t buf_off, len;
  size_t rec_end;     /* this chunk holds records [prev rec_end, rec_end) */
  int err;
};

struct del {
  int fd;
  uint64_t first_id;
};

struct job {
  struct sl_spool *s;
  struct pend p;
  uint64_t bytes;        /* record bytes of p (counted in pend_bytes) */
  struct chunk *chunks;
  size_t nchunks, chunks_cap;
  int err;               /* first write/fsync error, 0 if none */
  size_t nok;            /* chunks [0, nok) are durable */
  int save_cursor;
  uint64_t cursor, next_id;
  int cursor_err;
  struct del *dels;
  size_t ndels, dels_cap;
  uint64_t fsyncs;
};

/* One record of a read job. Filled on the loop thread (where), then on a
 * threadpool thread (what was read), then handed back to the loop. */
struct rslot {
  uint64_t pos;           /* ring position of its entry */
  uint64_t id, off, seg_id;
  uint64_t t_ns;          /* append wall time of the entry */
  int fd;
  uint32_t len, nevents;
  unsigned version;       /* record format of the entry */
  char *data;             /* from rbuf_get, on the loop thread */
  size_t cap;             /* bytes at data, >= len */
  unsigned char h[HDR];
  ssize_t got;            /* preadv result */
  int err;                /* preadv error (negative SL_E*), or SL_ENOMEM */
  int bad;                /* the bytes are not the record we indexed */
};

struct rjob {
  uv_work_t req;
  struct sl_spool *s;
  struct rslot *v;
  size_t n, cap;
};

struct sl_spool {
  uv_loop_t *loop;
  char *dir;             /* data_dir/spool */
  char *corrupt_dir;     /* data_dir/corrupt */
  int dirfd;
  uint64_t segment_bytes, max_bytes, commit_ms;

  struct sl_list segs;      /* struct seg, by first_id */
  struct seg *active;    /* where the next commit appends; NULL: new one */

  struct ent *ring;
  size_t ring_cap;       /* power of two */
  uint64_t head, tail;   /* absolute positions, ring[pos & (cap - 1)] */
  uint64_t next_pos;     /* first entry not handed out */

  uint64_t next_id;          /* id of the next append */
  uint64_t first_nondurable; /* lowest id whose commit has not finished */
  uint64_t cursor_saved;     /* cursor value on disk */
  uint64_t cursor_tried;     /* last value a save was attempted for */

  struct pend pend;
  char *spare;           /* recycled pending buffer */
  size_t spare_cap;
  uint64_t pend_bytes;   /* pending + in-flight record bytes */
  uint64_t disk_bytes;   /* durable unreleased record bytes */
  uint64_t nrecords;     /* durable unreleased records */

  struct del *dels;      /* released segments waiting for a job */
  size_t ndels, dels_cap;

  struct job job;
  int busy;              /* job in flight */

  /* The writer thread. A dedicated thread rather than uv_queue_work: the
   * ack latency is the fsync latency, and it must not wait behind other
   * users of libuv's small shared threadpool. Protected by mu: posted,
   * finished, quit. */
  uv_thread_t thr;
  uv_mutex_t mu;
  uv_cond_t cv;
  uv_async_t done_async;
  int posted, finished, quit;
  int commit_due;        /* the commit window of pending records ended */
  int cursor_due;        /* 200 ms passed since the cursor changed */

  int size_full, pend_full, disk_full;
  int want_resume;       /* someone got SL_EAGAIN or a failed commit */

  uv_timer_t commit_timer, cursor_timer, probe_timer, resume_timer;
  uv_timer_t read_timer; /* retries a failed read job */
  int handles_closing;
  int handles_open;
  int closing;
  void (*close_cb)(void *);
  void *close_arg;
  sl_spool_resume_cb resume_cb;
  void *resume_arg;

  /* Reader: records are read ahead on libuv's threadpool (one job at a
   * time, so they arrive in order) and wait in the `rq` FIFO for
   * sl_spool_next. Loop thread only, except rjob while `reading`. */
  struct rjob rjob;
  int reading;           /* rjob is on the threadpool */
  int read_failed;       /* last job hit a read error: read_timer runs */
  struct sl_backoff read_bo;
  struct sl_spool_rec *rq;
  size_t rq_cap, rq_head, rq_n;
  uint64_t rq_bytes;
  sl_spool_ready_cb ready_cb;
  void *ready_arg;
  /* Read buffers given back by the consumer (sl_spool_recycle) for the
   * next reads: a fresh ~1 MiB malloc per record faults every page in
   * again (glibc trims or unmaps it on free). Bounded by RFREE_MAX and
   * RFREE_BYTES; a larger buffer displaces smaller ones (rbuf_put). */
  struct rbuf { char *p; size_t cap; } rfree[RFREE_MAX];
  size_t nrfree;
  uint64_t rfree_bytes;

  struct sl_spool_stats st;
};

static void kick(struct sl_spool *s);
static void reader_kick(struct sl_spool *s);

/* ---- little helpers ----------------------------------------------------- */

static void
put32(unsigned char *p, uint32_t v)
{
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static void
put64(unsigned char *p, uint64_t v)
{
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Format version of a record magic, 0 if it is none of ours. */
static unsigned
rec_version(uint32_t magic)
{
  unsigned v = magic >> 24;

  if ((magic & 0x00ffffffu) != REC_MAGIC_BASE || v < REC_VERSION_MIN ||
      v > REC_VERSION)
    return 0;
  return v;
}

static uint64_t
now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The record CRC: header minus its crc field, then the payload. */
static uint32_t
rec_crc(const unsigned char *hdr, const void *payload, uint32_t len)
{
  uLong c = crc32(0L, Z_NULL, 0);

  c = crc32(c, hdr, 12);
  c = crc32(c, hdr + 16, HDR - 16);
  c = crc32(c, (const Bytef *)payload, len);
  return (uint32_t)c;
}

static void
seg_name(char *out, uint64_t first_id)
{
  snprintf(out, SEG_NAME_LEN, "%016" PRIx64 ".seg", first_id);
}

static int
parse_seg_name(const char *n, uint64_t *id)
{
  uint64_t v = 0;
  int i;

  if (strlen(n) != 20 || strcmp(n + 16, ".seg") != 0)
    return -1;
  for (i = 0; i < 16; i++) {
    char c = n[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else
      return -1;
    v = v << 4 | d;
  }
  *id = v;
  return 0;
}

static int
do_fsync(int fd, uint64_t *count)
{
  int rc;

  (*count)++;
  rc = sl_spool__test_fsync ? sl_spool__test_fsync(fd) : fsync(fd);
  return rc == 0 ? 0 : -errno;
}

/* sl_fs_pwrite_all with the fault-injection hook of spool.h. */
static int
write_all(int fd, const void *buf, size_t n, uint64_t off)
{
  return sl_fs_pwrite_all_with(sl_spool__test_pwrite ? sl_spool__test_pwrite
                                                     : pwrite,
                               fd, buf, n, off);
}

/* ---- cursor file -------------------------------------------------------- */

static int
cursor_write(int dirfd, uint64_t cursor, uint64_t next_id, uint64_t *fsyncs)
{
  unsigned char b[CURSOR_SIZE];
  uLong c;
  int fd, rc;

  put32(b, CURSOR_MAGIC);
  put64(b + 8, cursor);
  put64(b + 16, next_id);
  c = crc32(crc32(0L, Z_NULL, 0), b, 4);
  c = crc32(c, b + 8, CURSOR_SIZE - 8);
  put32(b + 4, (uint32_t)c);

  fd = openat(dirfd, CURSOR_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
              FILE_MODE);
  if (fd < 0)
    return -errno;
  rc = write_all(fd, b, sizeof(b), 0);
  if (rc == 0)
    rc = do_fsync(fd, fsyncs);
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  if (rc == 0 && renameat(dirfd, CURSOR_TMP, dirfd, CURSOR_NAME) != 0)
    rc = -errno;
  /* The rename is only durable once the directory is. */
  if (rc == 0)
    rc = do_fsync(dirfd, fsyncs);
  return rc;
}

/* 0 and the values; SL_ENOENT if there is no cursor; SL_ECORRUPT. */
static int
cursor_read(int dirfd, uint64_t *cursor, uint64_t *next_id)
{
  unsigned char b[CURSOR_SIZE + 1];
  ssize_t n;
  uLong c;
  int fd;

  fd = openat(dirfd, CURSOR_NAME, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? SL_ENOENT : -errno;
  n = pread(fd, b, sizeof(b), 0);
  close(fd);
  if (n != CURSOR_SIZE || get32(b) != CURSOR_MAGIC)
    return SL_ECORRUPT;
  c = crc32(crc32(0L, Z_NULL, 0), b, 4);
  c = crc32(c, b + 8, CURSOR_SIZE - 8);
  if ((uint32_t)c != get32(b + 4))
    return SL_ECORRUPT;
  *cursor = get64(b + 8);
  *next_id = get64(b + 16);
  return 0;
}

/* ---- reader index ------------------------------------------------------- */

static struct ent *
ent_at(struct sl_spool *s, uint64_t pos)
{
  return &s->ring[pos & (s->ring_cap - 1)];
}

static int
ring_reserve(struct sl_spool *s, size_t more)
{
  size_t used = (size_t)(s->tail - s->head), cap = s->ring_cap, i;
  struct ent *n;

  if (used + more <= cap)
    return 0;
  if (cap == 0)
    cap = 64;
  while (cap < used + more)
    cap *= 2;
  n = malloc(cap * sizeof(*n));
  if (n == NULL)
    return SL_ENOMEM;
  /* Re-base absolute positions onto the new mask. */
  for (i = 0; i < used; i++)
    n[(s->head + i) & (cap - 1)] = *ent_at(s, s->head + i);
  free(s->ring);
  s->ring = n;
  s->ring_cap = cap;
  return 0;
}

/* Caller reserved room. */
static void
ring_push(struct sl_spool *s, const struct ent *e)
{
  *ent_at(s, s->tail) = *e;
  s->tail++;
}

static struct ent *
ring_find(struct sl_spool *s, uint64_t id)
{
  uint64_t lo = s->head, hi = s->tail;

  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    struct ent *e = ent_at(s, mid);
    if (e->id == id)
      return e;
    if (e->id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* First id not yet released: the first unreleased durable record, else the
 * first record whose commit has not finished (it may become durable). */
static uint64_t
cur_cursor(const struct sl_spool *s)
{
  if (s->tail > s->head)
    return s->ring[s->head & (s->ring_cap - 1)].id;
  return s->first_nondurable;
}

/* ---- segments ----------------------------------------------------------- */

static void
seg_link(struct sl_spool *s, struct seg *g)
{
  sl_list_insert_tail(&s->segs, &g->link);
}

static void
seg_unlink(struct sl_spool *s, struct seg *g)
{
  (void)s;
  sl_list_remove(&g->link);
}

#define SEG_OF(l) sl_container_of(l, struct seg, link)

/* A segment without unreleased records that is not appended to any more:
 * hand it to the next job (cursor save, then close + unlink). */
static void
seg_retire(struct sl_spool *s, struct seg *g)
{
  if (s->ndels == s->dels_cap) {
    size_t cap = s->dels_cap ? s->dels_cap * 2 : 8;
    struct del *d = realloc(s->dels, cap * sizeof(*d));
    if (d == NULL) {
      /* Left on disk; the next open deletes it. */
      sl_log(SL_LOG_WARN, "spool", "cannot queue segment deletion",
             SL_LF_ERR, SL_ENOMEM, SL_LF_END);
      return;
    }
    s->dels = d;
    s->dels_cap = cap;
  }
  seg_unlink(s, g);
  s->dels[s->ndels].fd = g->fd;
  s->dels[s->ndels].first_id = g->first_id;
  s->ndels++;
  free(g);
}

/* ---- corrupt bytes ------------------------------------------------------ */

/* Copy a bad byte range aside so that it is never silently lost. */
static void
save_corrupt(struct sl_spool *s, uint64_t seg_id, uint64_t off,
             const void *bytes, size_t n)
{
  char path[PATH_MAX], segn[SEG_NAME_LEN];
  uint64_t dummy = 0;
  int fd, rc;

  seg_name(segn, seg_id);
  rc = sl_fs_mkdir_p(s->corrupt_dir);
  if (rc == 0 &&
      (size_t)snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%" PRIu64
                       ".rec", s->corrupt_dir, seg_id, off) >= sizeof(path))
    rc = SL_EINVAL;
  if (rc == 0) {
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_MODE);
    if (fd < 0) {
      rc = -errno;
    } else {
      rc = write_all(fd, bytes, n, 0);
      if (rc == 0)
        rc = do_fsync(fd, &dummy);
      close(fd);
    }
  }
  s->st.corrupt++;
  if (rc != 0)
    sl_log(SL_LOG_ERROR, "spool", "corrupt record could not be saved",
           SL_LF_STR, "segment", segn, SL_LF_INT, "offset", (int64_t)off,
           SL_LF_INT, "bytes", (int64_t)n, SL_LF_ERR, rc, SL_LF_END);
  else
    sl_log(SL_LOG_WARN, "spool", "corrupt record moved aside",
           SL_LF_STR, "segment", segn, SL_LF_INT, "offset", (int64_t)off,
           SL_LF_INT, "bytes", (int64_t)n, SL_LF_STR, "file", path,
           SL_LF_END);
}

/* ---- recovery ----------------------------------------------------------- */

struct rhdr {
  uint32_t len, nevents;
  uint64_t id, t_ns;
  unsigned version;
};

/* Is there a valid record at `off` of the mapped file? */
static int
rec_valid(const unsigned char *m, uint64_t size, uint64_t off,
          uint64_t prev_id, struct rhdr *r)
{
  const unsigned char *h = m + off;

  if (size - off < HDR || (r->version = rec_version(get32(h))) == 0)
    return 0;
  r->len = get32(h + 4);
  if (r->len > SL_SPOOL_MAX_RECORD || r->len > size - off - HDR)
    return 0;
  r->nevents = get32(h + 8);
  r->id = get64(h + 16);
  r->t_ns = get64(h + 24);
  if (r->id <= prev_id)
    return 0;
  return rec_crc(h, h + HDR, r->len) == get32(h + 12);
}

/* Does `off` start a whole record (known magic, length within the file),
 * valid or not? */
static int
rec_complete(const unsigned char *m, uint64_t size, uint64_t off)
{
  uint32_t len;

  if (size - off < HDR || rec_version(get32(m + off)) == 0)
    return 0;
  len = get32(m + off + 4);
  return len <= SL_SPOOL_MAX_RECORD && len <= size - off - HDR;
}

/* Next offset > from holding a valid record, or UINT64_MAX. */
static uint64_t
find_next(const unsigned char *m, uint64_t size, uint64_t from,
          uint64_t prev_id, struct rhdr *r)
{
  /* The fixed bytes of the magic; rec_valid checks the version byte. */
  static const unsigned char magic[3] = {0xd3, 0x53, 0x4c};

  while (from + HDR <= size) {
    const unsigned char *p = memmem(m + from, size - from, magic, 3);
    if (p == NULL)
      break;
    from = (uint64_t)(p - m);
    if (rec_valid(m, size, from, prev_id, r))
      return from;
    from++;
  }
  return UINT64_MAX;
}

/* Scan one segment, index its unreleased records, deal with bad bytes. */
static int
scan_seg(struct sl_spool *s, struct seg *g, int is_last, uint64_t cursor,
         uint64_t *prev_id, char *err, size_t errlen)
{
  char segn[SEG_NAME_LEN];
  unsigned char *m;
  struct stat sb;
  uint64_t size, off = 0, cut = UINT64_MAX;
  struct rhdr r;
  int rc;

  seg_name(segn, g->first_id);
  if (fstat(g->fd, &sb) != 0) {
    rc = -errno;
    snprintf(err, errlen, "%s/%s: stat: %s", s->dir, segn, strerror(-rc));
    return rc;
  }
  size = (uint64_t)sb.st_size;
  g->size = 0;
  if (size == 0)
    return 0;
  m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, g->fd, 0);
  if (m == MAP_FAILED) {
    rc = -errno;
    snprintf(err, errlen, "%s/%s: mmap: %s", s->dir, segn, strerror(-rc));
    return rc;
  }
  while (off < size) {
    uint64_t nxt;

    if (rec_valid(m, size, off, *prev_id, &r)) {
      nxt = off;
    } else {
      nxt = find_next(m, size, off + 1, *prev_id, &r);
      if (nxt == UINT64_MAX) {
        /* Nothing valid up to the end of this file. Only a record cut
         * short (its length runs past the end) is a torn tail: a write
         * that never finished, never acked. A complete record that fails
         * its checksum was written, fsync'ed and maybe acked, so its bytes
         * are set aside like any other damage, not silently cut. */
        if (is_last && !rec_complete(m, size, off)) {
          sl_log(SL_LOG_WARN, "spool", "torn tail truncated",
                 SL_LF_STR, "segment", segn, SL_LF_INT, "offset",
                 (int64_t)off, SL_LF_INT, "bytes", (int64_t)(size - off),
                 SL_LF_END);
          s->st.truncated_bytes += size - off;
        } else {
          save_corrupt(s, g->first_id, off, m + off, (size_t)(size - off));
        }
        cut = off;
        break;
      }
      if (r.id <= cursor)
        /* Every record in the range had an id below the cursor. */
        sl_log(SL_LOG_INFO, "spool", "released corrupt range skipped",
               SL_LF_STR, "segment", segn, SL_LF_INT, "offset",
               (int64_t)off, SL_LF_INT, "bytes", (int64_t)(nxt - off),
               SL_LF_END);
      else
        save_corrupt(s, g->first_id, off, m + off, (size_t)(nxt - off));
    }
    off = nxt;
    *prev_id = r.id;
    if (r.id >= cursor) {
      struct ent e;

      rc = ring_reserve(s, 1);
      if (rc != 0) {
        munmap(m, (size_t)size);
        snprintf(err, errlen, "out of memory indexing the spool");
        return rc;
      }
      memset(&e, 0, sizeof(e));
      e.id = r.id;
      e.seg = g;
      e.off = off;
      e.t_ns = r.t_ns;
      e.len = r.len;
      e.nevents = r.nevents;
      e.version = (unsigned char)r.version;
      ring_push(s, &e);
      g->live++;
      s->disk_bytes += HDR + r.len;
      s->nrecords++;
    }
    off += HDR + r.len;
  }
  munmap(m, (size_t)size);
  g->size = off;
  if (cut != UINT64_MAX) {
    uint64_t dummy = 0;

    if (ftruncate(g->fd, (off_t)cut) != 0 || do_fsync(g->fd, &dummy) != 0) {
      rc = -errno;
      snprintf(err, errlen, "%s/%s: truncate: %s", s->dir, segn,
               strerror(-rc));
      return rc;
    }
    g->size = cut;
  }
  return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

  return x < y ? -1 : x > y;
}

/* List, scan and index every segment; delete those with nothing left. */
static int
recover(struct sl_spool *s, char *err, size_t errlen)
{
  uint64_t cursor = 0, saved_next = 0, prev_id = 0, *ids = NULL;
  size_t nids = 0, cap = 0, i;
  struct dirent *de;
  struct sl_list *it, *itn;
  struct seg *g;
  DIR *d;
  int rc;

  rc = cursor_read(s->dirfd, &cursor, &saved_next);
  if (rc == SL_ENOENT) {
    cursor = 0;
  } else if (rc != 0) {
    sl_log(SL_LOG_WARN, "spool", "cursor unreadable: re-delivering all",
           SL_LF_STR, "path", s->dir, SL_LF_ERR, rc, SL_LF_END);
    cursor = 0;
    saved_next = 0;
  }
  unlinkat(s->dirfd, CURSOR_TMP, 0);

  d = opendir(s->dir);
  if (d == NULL) {
    rc = -errno;
    snprintf(err, errlen, "%s: opendir: %s", s->dir, strerror(-rc));
    return rc;
  }
  while ((de = readdir(d)) != NULL) {
    uint64_t id;
    if (parse_seg_name(de->d_name, &id) != 0)
      continue;
    if (nids == cap) {
      size_t nc = cap ? cap * 2 : 16;
      uint64_t *n = realloc(ids, nc * sizeof(*n));
      if (n == NULL) {
        closedir(d);
        free(ids);
        snprintf(err, errlen, "out of memory listing the spool");
        return SL_ENOMEM;
      }
      ids = n;
      cap = nc;
    }
    ids[nids++] = id;
  }
  closedir(d);
  if (nids > 0)
    qsort(ids, nids, sizeof(*ids), cmp_u64);

  for (i = 0; i < nids; i++) {
    char name[SEG_NAME_LEN];

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
      free(ids);
      snprintf(err, errlen, "out of memory");
      return SL_ENOMEM;
    }
    g->first_id = ids[i];
    seg_name(name, ids[i]);
    g->fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (g->fd < 0) {
      rc = -errno;
      free(g);
      free(ids);
      snprintf(err, errlen, "%s/%s: open: %s", s->dir, name, strerror(-rc));
      return rc;
    }
    seg_link(s, g);
    rc = scan_seg(s, g, i + 1 == nids, cursor, &prev_id, err, errlen);
    if (rc != 0) {
      free(ids);
      return rc;
    }
  }
  free(ids);

  s->next_id = prev_id + 1;
  if (cursor > s->next_id)
    s->next_id = cursor;
  if (saved_next > s->next_id)
    s->next_id = saved_next;
  s->first_nondurable = s->next_id;

  /* Nothing unreleased: delete now (the cursor we save below, and the one
   * already on disk, are both past their records). */
  sl_list_foreach(it, itn, &s->segs) {
    char name[SEG_NAME_LEN];

    g = SEG_OF(it);
    if (g->live > 0)
      continue;
    seg_name(name, g->first_id);
    seg_unlink(s, g);
    close(g->fd);
    if (unlinkat(s->dirfd, name, 0) != 0)
      sl_log(SL_LOG_WARN, "spool", "cannot delete released segment",
             SL_LF_STR, "segment", name, SL_LF_ERR, -errno, SL_LF_END);
    free(g);
  }
  /* A kept segment's name is its first record's id; should a file carry a
   * larger name than its records (renamed by hand), never reuse it. */
  sl_list_foreach(it, itn, &s->segs)
    if (SEG_OF(it)->first_id >= s->next_id)
      s->next_id = SEG_OF(it)->first_id + 1;
  s->first_nondurable = s->next_id;
  it = sl_list_last(&s->segs);
  if (it && SEG_OF(it)->size < s->segment_bytes)
    s->active = SEG_OF(it);

  /* A failed save is not fatal (a full disk is a likely reason for the
   * restart): the cursor on disk is older, which only means repeats; the
   * save is retried once the spool runs. */
  rc = cursor_write(s->dirfd, cur_cursor(s), s->next_id, &s->st.fsyncs);
  if (rc == 0) {
    s->cursor_saved = s->cursor_tried = cur_cursor(s);
  } else {
    sl_log(SL_LOG_WARN, "spool", "cannot save cursor", SL_LF_STR, "path",
           s->dir, SL_LF_ERR, rc, SL_LF_END);
    s->cursor_saved = s->cursor_tried = UINT64_MAX;
  }
  sl_log(SL_LOG_INFO, "spool", "spool opened", SL_LF_STR, "path", s->dir,
         SL_LF_INT, "records", (int64_t)s->nrecords,
         SL_LF_INT, "bytes", (int64_t)s->disk_bytes,
         SL_LF_INT, "next_id", (int64_t)s->next_id,
         SL_LF_INT, "corrupt", (int64_t)s->st.corrupt,
         SL_LF_INT, "truncated_bytes", (int64_t)s->st.truncated_bytes,
         SL_LF_END);
  return 0;
}

/* ---- full / resume ------------------------------------------------------ */

static void
update_size_full(struct sl_spool *s)
{
  uint64_t total = s->disk_bytes + s->pend_bytes;

  if (total >= s->max_bytes)
    s->size_full = 1;
  else if (s->size_full && total < s->max_bytes - s->max_bytes / 10)
    s->size_full = 0;
}

static void
on_resume_timer(uv_timer_t *t)
{
  struct sl_spool *s = sl_container_of(t, struct sl_spool, resume_timer);

  if (s->closing)
    return;
  if (s->disk_full || s->size_full || s->pend_full) {
    s->want_resume = 1; /* full again meanwhile: fire at the next change */
    return;
  }
  if (s->resume_cb)
    s->resume_cb(s->resume_arg);
}

/* Fire the resume callback (from its own loop iteration) if someone waits
 * and appends would be accepted now. */
static void
maybe_resume(struct sl_spool *s)
{
  update_size_full(s);
  if (!s->want_resume || s->closing || s->disk_full || s->size_full ||
      s->pend_full)
    return;
  s->want_resume = 0;
  uv_timer_start(&s->resume_timer, on_resume_timer, 0, 0);
}

static void
on_probe_timer(uv_timer_t *t)
{
  struct sl_spool *s = sl_container_of(t, struct sl_spool, probe_timer);

  s->disk_full = 0;
  s->st.disk_full = 0;
  maybe_resume(s);
}

static void
latch_disk_full(struct sl_spool *s, int err)
{
  if (!s->disk_full)
    sl_log(SL_LOG_ERROR, "spool", "spool write failed: appends refused",
           SL_LF_STR, "path", s->dir, SL_LF_ERR, err, SL_LF_END);
  s->disk_full = 1;
  s->st.disk_full = 1;
  s->want_resume = 1;
  if (!s->closing)
    uv_timer_start(&s->probe_timer, on_probe_timer, PROBE_MS, 0);
}

/* ---- commit job --------------------------------------------------------- */

static void
run_job(struct job *j)
{
  int dirfd = j->s->dirfd;
  size_t i, c;

  for (i = 0; i < j->p.n; i++) {
    unsigned char *h = (unsigned char *)j->p.buf + j->p.recs[i].buf_off;
    put32(h + 12, rec_crc(h, h + HDR, j->p.recs[i].len));
  }
  j->nok = 0;
  for (c = 0; c < j->nchunks; c++) {
    struct chunk *ch = &j->chunks[c];
    char name[SEG_NAME_LEN];
    int created = 0, rc;

    j->nok = c;
    if (ch->seg == NULL) {
      seg_name(name, ch->first_id);
      /* O_EXCL: a name collision would mean clobbering a segment. */
      ch->fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                      FILE_MODE);
      if (ch->fd < 0) {
        ch->err = j->err = errno == EDQUOT ? SL_ENOSPC : -errno;
        break;
      }
      created = 1;
    }
    rc = write_all(ch->fd, j->p.buf + ch->buf_off, ch->len, ch->file_off);
    if (rc == 0)
      rc = do_fsync(ch->fd, &j->fsyncs);
    /* A new file's directory entry must be durable too. */
    if (rc == 0 && created)
      rc = do_fsync(dirfd, &j->fsyncs);
    if (rc != 0) {
      if (rc == -EDQUOT)
        rc = SL_ENOSPC;
      ch->err = j->err = rc;
      if (created) {
        close(ch->fd);
        ch->fd = -1;
        unlinkat(dirfd, name, 0);
      } else if (ftruncate(ch->fd, (off_t)ch->file_off) != 0) {
        /* The reader never looks past seg->size and recovery stops at the
         * first bad record, so the unsynced bytes are harmless. */
        sl_log(SL_LOG_ERROR, "spool", "cannot truncate after write error",
               SL_LF_ERR, -errno, SL_LF_END);
      }
      break;
    }
    j->nok = c + 1;
  }
  if (j->save_cursor)
    j->cursor_err = cursor_write(dirfd, j->cursor, j->next_id, &j->fsyncs);
  for (i = 0; i < j->ndels; i++) {
    char name[SEG_NAME_LEN];

    seg_name(name, j->dels[i].first_id);
    close(j->dels[i].fd);
    if (unlinkat(dirfd, name, 0) != 0)
      sl_log(SL_LOG_WARN, "spool", "cannot delete released segment",
             SL_LF_STR, "segment", name, SL_LF_ERR, -errno, SL_LF_END);
  }
}

static void maybe_finish_close(struct sl_spool *s);

static void
fail_recs(struct prec *recs, size_t from, size_t to, int err)
{
  size_t i;

  for (i = from; i < to; i++)
    recs[i].cb(recs[i].arg, err);
}

static void
after_job(struct job *j)
{
  struct sl_spool *s = j->s;
  struct prec *recs = j->p.recs, *late = NULL;
  size_t n = j->p.n, nlate = 0, r = 0, c;
  int err = j->err;

  s->busy = 0;
  /* Idle: an open spool alone does not keep the loop running. */
  uv_unref((uv_handle_t *)&s->done_async);
  s->st.fsyncs += j->fsyncs;
  if (j->save_cursor) {
    if (j->cursor_err == 0)
      s->cursor_saved = j->cursor;
    else
      sl_log(SL_LOG_WARN, "spool", "cannot save cursor", SL_LF_STR, "path",
             s->dir, SL_LF_ERR, j->cursor_err, SL_LF_END);
  }
  j->ndels = 0;

  for (c = j->nok; c < j->nchunks; c++) {
    /* Failed or never attempted (the worker stops at the first error). */
    free(j->chunks[c].newseg);
    j->chunks[c].newseg = NULL;
  }
  for (c = 0; c < j->nok; c++) {
    struct chunk *ch = &j->chunks[c];
    struct seg *g = ch->seg;

    if (g == NULL) {
      g = ch->newseg;
      ch->newseg = NULL;
      g->first_id = ch->first_id;
      g->fd = ch->fd;
      seg_link(s, g);
    }
    for (; r < ch->rec_end; r++) {
      struct ent e;

      memset(&e, 0, sizeof(e));
      e.id = recs[r].id;
      e.seg = g;
      e.off = ch->file_off + (recs[r].buf_off - ch->buf_off);
      e.t_ns = recs[r].t_ns;
      e.len = recs[r].len;
      e.nevents = recs[r].nevents;
      e.version = REC_VERSION;
      ring_push(s, &e); /* reserved when the job was built */
      g->live++;
      s->disk_bytes += HDR + recs[r].len;
      s->nrecords++;
      s->st.appends++;
    }
    g->size = ch->file_off + ch->len;
    if (g != s->active) {
      struct seg *old = s->active;
      s->active = g;
      if (old && old->live == 0)
        seg_retire(s, old);
    }
  }
  s->pend_bytes -= j->bytes;
  s->first_nondurable = n > 0 ? recs[n - 1].id + 1 : s->first_nondurable;

  if (err != 0) {
    /* Appends queued behind a failed group would most likely fail too and
     * the caller retries them all after the resume callback anyway. */
    late = s->pend.recs;
    nlate = s->pend.n;
    s->pend.recs = NULL;
    s->pend.n = s->pend.rcap = 0;
    s->pend.len = 0;
    s->pend_bytes = 0;
    s->pend_full = 0;
    s->first_nondurable = s->next_id;
    uv_timer_stop(&s->commit_timer);
    s->commit_due = 0;
    latch_disk_full(s, err);
  }

  /* Recycle the job's buffer as the next pending one (saves page faults
   * on every group), unless it is big enough to matter while idle. */
  if (s->spare == NULL && j->p.cap <= SPARE_MAX) {
    s->spare = j->p.buf;
    s->spare_cap = j->p.cap;
  } else {
    free(j->p.buf);
  }
  j->p.buf = NULL;
  j->p.recs = NULL;
  j->p.n = j->p.len = j->p.cap = j->p.rcap = 0;
  j->nchunks = 0;

  maybe_resume(s);
  /* New durable records: read them ahead for the consumer. */
  reader_kick(s);

  /* Callbacks last: they may append, release or even close. */
  for (c = 0; c < r; c++)
    recs[c].cb(recs[c].arg, 0);
  fail_recs(recs, r, n, err);
  fail_recs(late, 0, nlate, err);
  free(recs);
  free(late);
  kick(s);
}

static void
on_commit_timer(uv_timer_t *t)
{
  struct sl_spool *s = sl_container_of(t, struct sl_spool, commit_timer);

  s->commit_due = 1;
  kick(s);
}

static void
on_cursor_timer(uv_timer_t *t)
{
  struct sl_spool *s = sl_container_of(t, struct sl_spool, cursor_timer);

  s->cursor_due = 1;
  kick(s);
}

/* Split the job's records into per-segment chunks (rotation). */
static int
plan_chunks(struct sl_spool *s, struct job *j)
{
  struct chunk *ch = NULL;
  uint64_t fsize = 0;
  size_t i;

  if (j->chunks_cap < j->p.n + 1) {
    struct chunk *nc = realloc(j->chunks, (j->p.n + 1) * sizeof(*nc));
    if (nc == NULL)
      return SL_ENOMEM;
    j->chunks = nc;
    j->chunks_cap = j->p.n + 1;
  }
  j->nchunks = 0;
  for (i = 0; i < j->p.n; i++) {
    struct prec *pr = &j->p.recs[i];
    uint64_t rsz = HDR + (uint64_t)pr->len;

    if (ch == NULL || (fsize > 0 && fsize + rsz > s->segment_bytes)) {
      if (ch)
        ch->rec_end = i;
      ch = &j->chunks[j->nchunks++];
      memset(ch, 0, sizeof(*ch));
      ch->buf_off = pr->buf_off;
      ch->fd = -1;
      if (j->nchunks == 1 && s->active &&
          (s->active->size == 0 ||
           s->active->size + rsz <= s->segment_bytes)) {
        ch->seg = s->active;
        ch->fd = s->active->fd;
        ch->file_off = s->active->size;
      } else {
        ch->first_id = pr->id;
        ch->newseg = calloc(1, sizeof(*ch->newseg));
        if (ch->newseg == NULL)
          return SL_ENOMEM;
      }
      fsize = ch->file_off;
    }
    ch->len += (size_t)rsz;
    fsize += rsz;
  }
  if (ch)
    ch->rec_end = j->p.n;
  return 0;
}

static void
job_reset_chunks(struct job *j)
{
  size_t c;

  for (c = 0; c < j->nchunks; c++) {
    free(j->chunks[c].newseg);
    j->chunks[c].newseg = NULL;
  }
  j->nchunks = 0;
}

/* Start a job if one is due and none is running. */
static void
kick(struct sl_spool *s)
{
  struct job *j = &s->job;
  uint64_t cur;
  int do_commit, do_cursor;

  if (s->busy || s->handles_closing)
    return;
  cur = cur_cursor(s);
  do_commit = s->pend.n > 0 && (s->commit_due || s->closing);
  if (s->closing)
    do_cursor = cur != s->cursor_saved && cur != s->cursor_tried;
  else
    do_cursor = cur != s->cursor_saved && s->cursor_due;
  if (s->ndels > 0)
    do_cursor = 1;
  if (!s->closing && cur != s->cursor_saved && !do_cursor &&
      !uv_is_active((uv_handle_t *)&s->cursor_timer))
    uv_timer_start(&s->cursor_timer, on_cursor_timer, CURSOR_SAVE_MS, 0);
  if (!do_commit && !do_cursor) {
    maybe_finish_close(s);
    return;
  }

  memset(&j->p, 0, sizeof(j->p));
  j->s = s;
  j->err = 0;
  j->fsyncs = 0;
  j->bytes = 0;
  j->nchunks = 0;
  if (do_commit) {
    j->p = s->pend;
    if (plan_chunks(s, j) != 0 || ring_reserve(s, j->p.n) != 0) {
      /* Try again at the next kick; the pending records stay queued. */
      job_reset_chunks(j);
      memset(&j->p, 0, sizeof(j->p));
      sl_log(SL_LOG_ERROR, "spool", "cannot start commit", SL_LF_ERR,
             SL_ENOMEM, SL_LF_END);
      if (!do_cursor) {
        uv_timer_start(&s->commit_timer, on_commit_timer, 10, 0);
        s->commit_due = 0;
        return;
      }
      do_commit = 0;
    } else {
      j->bytes = j->p.len;
      memset(&s->pend, 0, sizeof(s->pend));
      s->commit_due = 0;
      uv_timer_stop(&s->commit_timer);
      if (s->pend_full) {
        s->pend_full = 0;
        maybe_resume(s);
      }
    }
  }
  j->save_cursor = do_cursor;
  if (do_cursor) {
    j->cursor = cur;
    j->next_id = s->next_id;
    s->cursor_tried = cur;
    s->cursor_due = 0;
    uv_timer_stop(&s->cursor_timer);
  }
  /* Deletions ride along: run_job saves the cursor before unlinking. */
  {
    struct del *d = j->dels;
    size_t cap = j->dels_cap;
    j->dels = s->dels;
    j->ndels = s->ndels;
    j->dels_cap = s->dels_cap;
    s->dels = d;
    s->dels_cap = cap;
    s->ndels = 0;
  }
  s->busy = 1;
  uv_ref((uv_handle_t *)&s->done_async);
  uv_mutex_lock(&s->mu);
  s->posted = 1;
  uv_cond_signal(&s->cv);
  uv_mutex_unlock(&s->mu);
}

static void
writer_main(void *arg)
{
  struct sl_spool *s = arg;

  uv_mutex_lock(&s->mu);
  for (;;) {
    while (!s->posted && !s->quit)
      uv_cond_wait(&s->cv, &s->mu);
    if (!s->posted)
      break;
    s->posted = 0;
    uv_mutex_unlock(&s->mu);
    run_job(&s->job);
    uv_mutex_lock(&s->mu);
    s->finished = 1;
    uv_async_send(&s->done_async);
  }
  uv_mutex_unlock(&s->mu);
}

static void
on_done_async(uv_async_t *a)
{
  struct sl_spool *s = sl_container_of(a, struct sl_spool, done_async);
  int done;

  uv_mutex_lock(&s->mu);
  done = s->finished;
  s->finished = 0;
  uv_mutex_unlock(&s->mu);
  if (done)
    after_job(&s->job);
}

/* ---- public API --------------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
  struct sl_spool *s = h->data;
  void (*cb)(void *);
  void *arg;
  struct sl_list *it;
  size_t i;

  if (--s->handles_open > 0)
    return;
  while ((it = sl_list_pop(&s->segs)) != NULL) {
    close(SEG_OF(it)->fd);
    free(SEG_OF(it));
  }
  for (i = 0; i < s->ndels; i++)
    close(s->dels[i].fd);
  if (s->dirfd >= 0)
    close(s->dirfd);
  uv_cond_destroy(&s->cv);
  uv_mutex_destroy(&s->mu);
  cb = s->close_cb;
  arg = s->close_arg;
  free(s->dels);
  free(s->job.dels);
  free(s->job.chunks);
  free(s->pend.buf);
  free(s->pend.recs);
  free(s->spare);
  free(s->ring);
  free(s->dir);
  free(s->corrupt_dir);
  /* Read and not taken: the records stay in the spool for the next open. */
  for (i = 0; i < s->rq_n; i++)
    free(s->rq[(s->rq_head + i) % s->rq_cap].data);
  free(s->rq);
  for (i = 0; i < s->nrfree; i++)
    free(s->rfree[i].p);
  free(s->rjob.v);
  free(s);
  if (cb)
    cb(arg);
}

static void
close_handles(struct sl_spool *s)
{
  s->handles_closing = 1;
  /* The writer is idle (nothing busy): this join does not block. */
  uv_mutex_lock(&s->mu);
  s->quit = 1;
  uv_cond_signal(&s->cv);
  uv_mutex_unlock(&s->mu);
  uv_thread_join(&s->thr);
  s->handles_open = 6;
  uv_close((uv_handle_t *)&s->done_async, on_handle_closed);
  uv_close((uv_handle_t *)&s->commit_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->cursor_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->probe_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->resume_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->read_timer, on_handle_closed);
}

static void
maybe_finish_close(struct sl_spool *s)
{
  if (!s->closing || s->handles_closing || s->busy || s->pend.n > 0 ||
      s->ndels > 0 || s->reading)
    return;
  close_handles(s);
}

static void
spool_free_unopened(struct sl_spool *s)
{
  struct sl_list *it;

  while ((it = sl_list_pop(&s->segs)) != NULL) {
    close(SEG_OF(it)->fd);
    free(SEG_OF(it));
  }
  if (s->dirfd >= 0)
    close(s->dirfd);
  free(s->ring);
  free(s->dir);
  free(s->corrupt_dir);
  free(s);
}

static void
on_unopened_async_closed(uv_handle_t *h)
{
  struct sl_spool *s = h->data;

  uv_cond_destroy(&s->cv);
  uv_mutex_destroy(&s->mu);
  spool_free_unopened(s);
}

int
sl_spool_open(uv_loop_t *loop, const struct sl_spool_opts *o,
              struct sl_spool **out, char *err, size_t errlen)
{
  struct sl_spool *s;
  size_t n;
  int rc;

  *out = NULL;
  if (o == NULL || o->data_dir == NULL || o->data_dir[0] == '\0') {
    snprintf(err, errlen, "spool: data_dir is required");
    return SL_EINVAL;
  }
  s = calloc(1, sizeof(*s));
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    return SL_ENOMEM;
  }
  s->dirfd = -1;
  s->loop = loop;
  sl_list_init(&s->segs);
  s->segment_bytes = o->segment_bytes ? o->segment_bytes
                                      : SL_SPOOL_DEFAULT_SEGMENT_BYTES;
  s->max_bytes = o->max_bytes ? o->max_bytes : SL_SPOOL_DEFAULT_MAX_BYTES;
  s->commit_ms = o->commit_interval_ms;
  n = strlen(o->data_dir) + sizeof("/corrupt");
  s->dir = malloc(n);
  s->corrupt_dir = malloc(n);
  if (s->dir == NULL || s->corrupt_dir == NULL) {
    snprintf(err, errlen, "out of memory");
    rc = SL_ENOMEM;
    goto fail;
  }
  snprintf(s->dir, n, "%s/spool", o->data_dir);
  snprintf(s->corrupt_dir, n, "%s/corrupt", o->data_dir);
  rc = sl_fs_mkdir_p(s->dir);
  if (rc != 0) {
    snprintf(err, errlen, "%s: cannot create: %s", s->dir, sl_strerror(rc));
    goto fail;
  }
  s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0) {
    rc = -errno;
    snprintf(err, errlen, "%s: open: %s", s->dir, sl_strerror(rc));
    goto fail;
  }
  rc = recover(s, err, errlen);
  if (rc != 0)
    goto fail;
  if (uv_mutex_init(&s->mu) != 0) {
    snprintf(err, errlen, "spool: cannot create a mutex");
    rc = SL_ENOMEM;
    goto fail;
  }
  if (uv_cond_init(&s->cv) != 0) {
    snprintf(err, errlen, "spool: cannot create a condition variable");
    rc = SL_ENOMEM;
    goto fail_mutex;
  }
  rc = uv_async_init(loop, &s->done_async, on_done_async);
  if (rc != 0) {
    snprintf(err, errlen, "spool: uv_async_init: %s", uv_strerror(rc));
    goto fail_cond;
  }
  rc = uv_thread_create(&s->thr, writer_main, s);
  if (rc != 0) {
    snprintf(err, errlen, "spool: cannot start the writer thread: %s",
             uv_strerror(rc));
    goto fail_async;
  }
  s->done_async.data = s;
  uv_unref((uv_handle_t *)&s->done_async);
  uv_timer_init(loop, &s->commit_timer);
  uv_timer_init(loop, &s->cursor_timer);
  uv_timer_init(loop, &s->probe_timer);
  uv_timer_init(loop, &s->resume_timer);
  uv_timer_init(loop, &s->read_timer);
  s->commit_timer.data = s->cursor_timer.data = s;
  s->probe_timer.data = s->resume_timer.data = s;
  s->read_timer.data = s;
  sl_backoff_init(&s->read_bo, READ_RETRY_BASE_MS, READ_RETRY_CAP_MS);
  *out = s;
  return 0;

fail_async:
  /* A handle is freed only after its close callback; this one runs on the
   * next loop iteration and frees the rest. */
  s->done_async.data = s;
  uv_close((uv_handle_t *)&s->done_async, on_unopened_async_closed);
  return rc;
fail_cond:
  uv_cond_destroy(&s->cv);
fail_mutex:
  uv_mutex_destroy(&s->mu);
fail:
  spool_free_unopened(s);
  return rc;
}

void
sl_spool_set_resume_cb(struct sl_spool *s, sl_spool_resume_cb cb, void *arg)
{
  s->resume_cb = cb;
  s->resume_arg = arg;
}

int
sl_spool_append(struct sl_spool *s, const void *payload, size_t len,
                uint32_t nevents, sl_spool_commit_cb cb, void *arg)
{
  struct pend *p = &s->pend;
  struct prec *pr;
  unsigned char *h;
  size_t rsz = HDR + len;

  if (s->closing)
    return SL_ECLOSED;
  if (len > SL_SPOOL_MAX_RECORD)
    return SL_E2BIG;
  update_size_full(s);
  if (s->disk_full || s->size_full ||
      (p->len > 0 && p->len + rsz > SL_SPOOL_PENDING_MAX)) {
    if (!s->disk_full && !s->size_full)
      s->pend_full = 1;
    s->want_resume = 1;
    return SL_EAGAIN;
  }
  if (p->len + rsz > p->cap) {
    size_t cap = p->cap ? p->cap : PEND_MIN_CAP;
    char *nb;
    if (p->cap == 0 && s->spare) {
      p->buf = s->spare;
      p->cap = s->spare_cap;
      s->spare = NULL;
      cap = p->cap;
    }
    while (cap < p->len + rsz)
      cap *= 2;
    if (cap > p->cap) {
      nb = realloc(p->buf, cap);
      if (nb == NULL)
        return SL_ENOMEM;
      p->buf = nb;
      p->cap = cap;
    }
  }
  if (p->n == p->rcap) {
    size_t rc = p->rcap ? p->rcap * 2 : 64;
    struct prec *nr = realloc(p->recs, rc * sizeof(*nr));
    if (nr == NULL)
      return SL_ENOMEM;
    p->recs = nr;
    p->rcap = rc;
  }
  pr = &p->recs[p->n++];
  pr->id = s->next_id++;
  pr->buf_off = p->len;
  pr->len = (uint32_t)len;
  pr->nevents = nevents;
  pr->t_ns = now_ns();
  pr->cb = cb;
  pr->arg = arg;
  h = (unsigned char *)p->buf + p->len;
  put32(h, REC_MAGIC);
  put32(h + 4, (uint32_t)len);
  put32(h + 8, nevents);
  put32(h + 12, 0); /* the worker fills the CRC in */
  put64(h + 16, pr->id);
  put64(h + 24, pr->t_ns);
  if (len > 0)
    memcpy(h + HDR, payload, len);
  p->len += rsz;
  s->pend_bytes += rsz;
  if (p->n == 1 && !s->commit_due)
    uv_timer_start(&s->commit_timer, on_commit_timer, s->commit_ms, 0);
  return 0;
}

/* Internal release used by the reader for records it found corrupt. */
static void release_ent(struct sl_spool *s, struct ent *e);

/* ---- reader ------------------------------------------------------------ */

/* A read job carries at most this many bytes: large enough that the
 * threadpool hop costs little per record (a window is ~1 MiB), small
 * enough that the first record is not held back behind many. */
#define READ_JOB_BYTES (2u << 20)
#define READ_JOB_RECS 64
/* Read-ahead stops while this much waits in the FIFO: the consumer (the
 * indexer) holds its own bounded backlog, this only hides read latency,
 * for which one job ready while the next is read is enough. */
#define READ_AHEAD_BYTES (2u << 20)

/* A buffer for a `len`-byte record: the smallest recycled one that fits,
 * else a new one with 1/8 slack, so that the next windows (of about the
 * same size) fit it when it comes back. */
static char *
rbuf_get(struct sl_spool *s, size_t len, size_t *cap)
{
  size_t i, best = RFREE_MAX, small = RFREE_MAX;
  char *p;

  for (i = 0; i < s->nrfree; i++) {
    if (s->rfree[i].cap >= len &&
        (best == RFREE_MAX || s->rfree[i].cap < s->rfree[best].cap))
      best = i;
    if (small == RFREE_MAX || s->rfree[i].cap < s->rfree[small].cap)
      small = i;
  }
  if (best != RFREE_MAX) {
    p = s->rfree[best].p;
    *cap = s->rfree[best].cap;
    s->rfree_bytes -= *cap;
    s->rfree[best] = s->rfree[--s->nrfree];
    return p;
  }
  if (small != RFREE_MAX) {
    /* Nothing fits: records grew, and the smallest spare is the least
     * useful one now (one per miss, so a mix of sizes keeps some). */
    free(s->rfree[small].p);
    s->rfree_bytes -= s->rfree[small].cap;
    s->rfree[small] = s->rfree[--s->nrfree];
  }
  *cap = len + len / 8;
  *cap = (*cap + 4095) & ~(size_t)4095;
  return malloc(*cap);
}

/* Keep a read buffer for the next reads, or free it past the bounds.
 * A larger buffer displaces smaller spares: it fits every record they
 * fit. */
static void
rbuf_put(struct sl_spool *s, char *p, size_t cap)
{
  if (p == NULL)
    return;
  while (s->nrfree > 0 && (s->nrfree == RFREE_MAX ||
                           s->rfree_bytes + cap > RFREE_BYTES)) {
    size_t i, small = 0;

    for (i = 1; i < s->nrfree; i++)
      if (s->rfree[i].cap < s->rfree[small].cap)
        small = i;
    if (s->rfree[small].cap >= cap)
      break;
    free(s->rfree[small].p);
    s->rfree_bytes -= s->rfree[small].cap;
    s->rfree[small] = s->rfree[--s->nrfree];
  }
  if (s->nrfree == RFREE_MAX || s->rfree_bytes + cap > RFREE_BYTES ||
      s->closing) {
    free(p);
    return;
  }
  s->rfree[s->nrfree].p = p;
  s->rfree[s->nrfree].cap = cap;
  s->nrfree++;
  s->rfree_bytes += cap;
}

void
sl_spool_recycle(struct sl_spool *s, char *data, size_t cap)
{
  rbuf_put(s, data, cap);
}

size_t
sl_spool__spare_bufs(const struct sl_spool *s, uint64_t *bytes)
{
  if (bytes)
    *bytes = s->rfree_bytes;
  return s->nrfree;
}

static int
rq_push(struct sl_spool *s, const struct sl_spool_rec *r)
{
  if (s->rq_n == s->rq_cap) {
    size_t cap = s->rq_cap ? s->rq_cap * 2 : 64, i;
    struct sl_spool_rec *q = malloc(cap * sizeof(*q));

    if (q == NULL)
      return SL_ENOMEM;
    for (i = 0; i < s->rq_n; i++)
      q[i] = s->rq[(s->rq_head + i) % s->rq_cap];
    free(s->rq);
    s->rq = q;
    s->rq_cap = cap;
    s->rq_head = 0;
  }
  s->rq[(s->rq_head + s->rq_n) % s->rq_cap] = *r;
  s->rq_n++;
  s->rq_bytes += r->len;
  return 0;
}

/* Threadpool: read and check every record of the job. Touches only the
 * job (fds stay open: a segment is closed only when none of its records
 * is unreleased, and these are not released). */
static void
read_work(uv_work_t *req)
{
  struct rjob *j = sl_container_of(req, struct rjob, req);
  size_t i;

  for (i = 0; i < j->n; i++) {
    struct rslot *sl = &j->v[i];
    struct iovec iov[2];

    iov[0].iov_base = sl->h;
    iov[0].iov_len = HDR;
    iov[1].iov_base = sl->data;
    iov[1].iov_len = sl->len;
    do {
      sl->got = sl_spool__test_preadv
                    ? sl_spool__test_preadv(sl->fd, iov, 2, (off_t)sl->off)
                    : preadv(sl->fd, iov, 2, (off_t)sl->off);
    } while (sl->got < 0 && errno == EINTR);
    if (sl->got < 0) {
      sl->err = -errno;
      continue;
    }
    sl->bad = (size_t)sl->got != HDR + sl->len ||
              rec_version(get32(sl->h)) != sl->version ||
              get32(sl->h + 4) != sl->len ||
              get64(sl->h + 16) != sl->id ||
              rec_crc(sl->h, sl->data, sl->len) != get32(sl->h + 12);
  }
}

/* A record whose bytes changed on disk since it was written or scanned:
 * copied to corrupt/, counted, released, skipped. */
static void
read_corrupt(struct sl_spool *s, struct rslot *sl)
{
  size_t got = sl->got > 0 ? (size_t)sl->got : 0;
  char *raw = malloc(HDR + (size_t)sl->len);

  if (raw && got > 0) {
    size_t k = got < HDR ? got : HDR;
    memcpy(raw, sl->h, k);
    if (got > HDR)
      memcpy(raw + HDR, sl->data, got - HDR);
    save_corrupt(s, sl->seg_id, sl->off, raw, got);
  } else {
    s->st.corrupt++;
    sl_log(SL_LOG_ERROR, "spool", "corrupt record dropped", SL_LF_INT, "id",
           (int64_t)sl->id, SL_LF_END);
  }
  free(raw);
}

static void
on_read_timer(uv_timer_t *t)
{
  struct sl_spool *s = t->data;

  s->read_failed = 0;
  reader_kick(s);
}

/* Loop thread: deliver the job's records in order. A read error gives the
 * failed record and those after it back to the unread ones (order is kept)
 * until read_timer retries them: retrying at once (or at every
 * sl_spool_next) would spin on a persistent EIO. */
static void
read_done(uv_work_t *req, int status)
{
  struct rjob *j = sl_container_of(req, struct rjob, req);
  struct sl_spool *s = j->s;
  size_t i, before = s->rq_n;
  int failed = 0;

  (void)status; /* never cancelled */
  s->reading = 0;
  for (i = 0; i < j->n; i++) {
    struct rslot *sl = &j->v[i];
    struct ent *e = ent_at(s, sl->pos);
    struct sl_spool_rec r;

    if (!failed && !s->closing && sl->err == 0 && !sl->bad) {
      r.id = sl->id;
      r.data = sl->data;
      r.cap = sl->cap;
      r.len = sl->len;
      r.nevents = sl->nevents;
      r.version = sl->version;
      r.append_ns = sl->t_ns;
      if (rq_push(s, &r) == 0) {
        e->reading = 0;
        continue;
      }
      sl->err = SL_ENOMEM;
    }
    if (!failed && !s->closing && sl->err == 0) {
      read_corrupt(s, sl);
      rbuf_put(s, sl->data, sl->cap);
      e->reading = 0;
      release_ent(s, e);
      continue;
    }
    if (!failed && sl->err != 0) {
      s->st.read_errors++;
      sl_log(SL_LOG_ERROR, "spool", "cannot read record", SL_LF_STR, "path",
             s->dir, SL_LF_INT, "id", (int64_t)sl->id, SL_LF_ERR, sl->err,
             SL_LF_END);
    }
    if (!failed && s->next_pos > sl->pos)
      s->next_pos = sl->pos;
    failed = 1;
    rbuf_put(s, sl->data, sl->cap);
    e->reading = 0;
    e->handed = 0;
  }
  j->n = 0;
  s->read_failed = failed && !s->closing;
  if (s->closing) {
    maybe_finish_close(s);
    return;
  }
  if (s->read_failed)
    uv_timer_start(&s->read_timer, on_read_timer,
                   sl_backoff_next(&s->read_bo), 0);
  else
    sl_backoff_reset(&s->read_bo);
  reader_kick(s);
  if (s->rq_n > before && s->ready_cb)
    s->ready_cb(s->ready_arg);
}

/* Start a read job for the next unread records, unless one runs, enough
 * waits already, or the last one failed (then read_timer retries). */
static void
reader_kick(struct sl_spool *s)
{
  struct rjob *j = &s->rjob;
  uint64_t bytes = 0;

  if (s->reading || s->closing || s->read_failed ||
      s->rq_bytes >= READ_AHEAD_BYTES)
    return;
  j->s = s;
  j->n = 0;
  while (s->next_pos < s->tail && j->n < READ_JOB_RECS &&
         (j->n == 0 || bytes + ent_at(s, s->next_pos)->len <= READ_JOB_BYTES)) {
    struct ent *e = ent_at(s, s->next_pos);
    struct rslot *sl;

    if (e->released || e->handed) {
      s->next_pos++;
      continue;
    }
    if (j->n == j->cap) {
      size_t cap = j->cap ? j->cap * 2 : 16;
      struct rslot *v = realloc(j->v, cap * sizeof(*v));

      if (v == NULL)
        break;
      j->v = v;
      j->cap = cap;
    }
    sl = &j->v[j->n];
    memset(sl, 0, sizeof(*sl));
    sl->data = rbuf_get(s, e->len ? e->len : 1, &sl->cap);
    if (sl->data == NULL)
      break;
    j->n++;
    sl->pos = s->next_pos;
    sl->id = e->id;
    sl->off = e->off;
    sl->seg_id = e->seg->first_id;
    sl->fd = e->seg->fd;
    sl->len = e->len;
    sl->nevents = e->nevents;
    sl->version = e->version;
    sl->t_ns = e->t_ns;
    e->handed = 1;
    e->reading = 1;
    bytes += e->len;
    s->next_pos++;
  }
  if (j->n == 0)
    return;
  if (uv_queue_work(s->loop, &j->req, read_work, read_done) != 0) {
    /* Cannot happen with a valid loop; give the records back. */
    size_t i;

    for (i = 0; i < j->n; i++) {
      struct ent *e = ent_at(s, j->v[i].pos);

      e->handed = e->reading = 0;
      rbuf_put(s, j->v[i].data, j->v[i].cap);
    }
    s->next_pos = j->v[0].pos;
    j->n = 0;
    return;
  }
  s->reading = 1;
}

void
sl_spool_set_ready_cb(struct sl_spool *s, sl_spool_ready_cb cb, void *arg)
{
  s->ready_cb = cb;
  s->ready_arg = arg;
}

int
sl_spool_next(struct sl_spool *s, struct sl_spool_rec *rec)
{
  if (s->rq_n == 0) {
    reader_kick(s);
    return SL_EAGAIN;
  }
  *rec = s->rq[s->rq_head];
  s->rq_head = (s->rq_head + 1) % s->rq_cap;
  s->rq_n--;
  s->rq_bytes -= rec->len;
  /* Keep reading ahead while the consumer takes. */
  reader_kick(s);
  return 0;
}

uint64_t
sl_spool_unread(const struct sl_spool *s)
{
  uint64_t n = s->rq_n, pos;

  for (pos = s->next_pos; pos < s->tail; pos++) {
    const struct ent *e = &s->ring[pos & (s->ring_cap - 1)];

    if (!e->released && !e->handed)
      n++;
  }
  if (s->reading)
    n += s->rjob.n;
  return n;
}

static void
release_ent(struct sl_spool *s, struct ent *e)
{
  struct seg *g = e->seg;

  e->released = 1;
  e->seg = NULL;
  s->disk_bytes -= HDR + e->len;
  s->nrecords--;
  if (--g->live == 0 && g != s->active)
    seg_retire(s, g);
  while (s->head < s->tail && ent_at(s, s->head)->released)
    s->head++;
  if (s->next_pos < s->head)
    s->next_pos = s->head;
  /* Give back the index of a drained backlog. Not while a commit runs: its
   * records have room reserved in this ring. */
  if (s->head == s->tail && s->ring_cap > RING_KEEP && !s->busy) {
    free(s->ring);
    s->ring = NULL;
    s->ring_cap = 0;
  }
  maybe_resume(s);
  kick(s);
}

void
sl_spool_release(struct sl_spool *s, uint64_t id)
{
  struct ent *e = ring_find(s, id);

  /* Not handed out yet: a caller's mistake, and the reader may be reading
   * it from a segment the release could close. */
  if (e == NULL || e->released || e->reading)
    return;
  release_ent(s, e);
}

int
sl_spool_is_full(const struct sl_spool *s)
{
  return s->disk_full || s->size_full || s->pend_full ||
         s->disk_bytes + s->pend_bytes >= s->max_bytes;
}

void
sl_spool_stats(const struct sl_spool *s, struct sl_spool_stats *st)
{
  *st = s->st;
  st->bytes = s->disk_bytes;
  st->records = s->nrecords;
  st->oldest_append_ns =
      s->tail > s->head ? s->ring[s->head & (s->ring_cap - 1)].t_ns : 0;
  st->max_bytes = s->max_bytes;
  st->disk_full = s->disk_full;
}

void
sl_spool_close(struct sl_spool *s, void (*cb)(void *arg), void *arg)
{
  if (s->closing)
    return;
  s->closing = 1;
  s->close_cb = cb;
  s->close_arg = arg;
  uv_timer_stop(&s->probe_timer);
  uv_timer_stop(&s->resume_timer);
  uv_timer_stop(&s->cursor_timer);
  uv_timer_stop(&s->read_timer);
  kick(s);
}
