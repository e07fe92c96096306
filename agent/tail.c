/* tail.c - discover files by glob + inotify, read them in large chunks of
 * whole lines, track acknowledged offsets (see tail.h for the contract).
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
 */
#include "tail.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "sl_err.h"
#include "sl_json.h"
#include "sl_log.h"
#include "tail_registry.h"

/* One read: large enough to amortise the syscall and hand the pipeline big
 * chunks of many lines, small enough that a chunk stays cache-friendly. */
#define READ_CHUNK (256u * 1024)
/* Per loop iteration, at most this much from one file and in total, so one
 * busy file cannot starve the others and the loop still services sockets
 * and timers (libuv's uv__read stops after 32 reads for the same reason). */
#define FILE_TICK_BUDGET (1024u * 1024)
#define TOTAL_TICK_BUDGET (4u * 1024 * 1024)
/* Stat open files this often: catches appends inotify missed (network file
 * systems, overflowed event queues) and drives the inactivity clocks. */
#define POLL_MS 250
/* Coalesce bursts of directory events into one rescan. */
#define RESCAN_DELAY_MS 20
/* Registry entries of files not seen for this long are dropped. */
#define PRUNE_AGE_MS (24LL * 3600 * 1000)
/* start_at: end looks this far back for the start of the last line. */
#define END_LOOKBACK (64u * 1024)

#define DEF_SCAN_MS 10000
#define DEF_CLOSE_INACTIVE_MS 300000
#define DEF_PARTIAL_MS 5000
#define DEF_MAX_LINE (1024u * 1024)
#define DEF_REG_FLUSH_MS 1000

#define container_of(p, type, member) \
  ((type *)((char *)(p) - offsetof(type, member)))

struct qlink {
  struct qlink *prev, *next;
};

static void
q_init(struct qlink *h)
{
  h->prev = h->next = h;
}

static bool
q_empty(const struct qlink *h)
{
  return h->next == h;
}

static void
q_push(struct qlink *h, struct qlink *n)
{
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}

static void
q_push_front(struct qlink *h, struct qlink *n)
{
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}

static void
q_remove(struct qlink *n)
{
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

struct sl_tail;
struct tail_file;

struct tail_input {
  struct sl_tail *t;
  int index;                       /* into inputs[] */
  char **paths;
  size_t npaths;
  char **excl;
  size_t nexcl;
  bool start_end;                  /* start_at: end */
  uint64_t scan_ms, close_inactive_ms, partial_ms;
  size_t max_line;
  const struct sl_parse_ctx *ctx;
  uv_timer_t scan_timer;
  uint64_t scan_gen;
  bool scanned;                    /* first scan done */
};

struct tail_chunk {
  struct sl_tail_chunk pub;
  struct tail_file *f;
  struct qlink flink;              /* f->fifo */
  struct qlink plink;              /* t->pending (not yet taken) */
  bool done;
};

struct tail_file {
  struct qlink link;               /* t->files or t->zombies */
  struct qlink rlink;              /* t->ready */
  bool in_ready;
  struct sl_tail *t;
  struct tail_input *in;
  unsigned refs;
  struct sl_src src;               /* immutable once a chunk is out */
  char *path;
  uint32_t fp_len;                 /* 0: not fingerprinted yet (empty) */
  int fd;                          /* -1: dormant or detached */
  uint64_t read_off, acked_off, size;
  size_t want_len;                 /* next read size */
  uint64_t last_growth;            /* uv_now ms */
  uint64_t seen_gen;
  bool want_read;                  /* may have unread bytes */
  bool skipping;                   /* inside an over-long line */
  bool rotated;                    /* path no longer names this file */
  bool deleted;                    /* link count 0 */
  bool detached;
  struct tail_chunk *trunc;        /* over-long line awaiting its '\n' */
  struct sl_treg_entry *re;        /* NULL: registry not updated */
  struct qlink fifo;               /* outstanding chunks, offset order */
  /* Live files are indexed by identity and by path (struct htab). */
  uint64_t idkey, pathkey;
  struct tail_file *id_next, *path_next;
};

struct tail_dir {
  struct qlink link;
  struct sl_tail *t;
  uv_fs_event_t h;
  char *path;
  uint64_t last_used;              /* uv_now of the last scan that needed it */
};

/* Chained hash of live files on one uint64 key: scans look files up by
 * identity for every globbed path and directory events by path, so both
 * must not cost a walk over all files. Grows by doubling; a failed growth
 * only makes chains longer. */
struct htab {
  struct tail_file **b;
  size_t nb, n;
  size_t next_off, key_off;        /* offsetof chain pointer and key */
};

#define HNEXT(h, f) (*(struct tail_file **)((char *)(f) + (h)->next_off))
#define HKEY(h, f) (*(uint64_t *)((char *)(f) + (h)->key_off))

struct reg_work {
  uv_work_t req;
  struct sl_tail *t;
  char *json;
  uint64_t seq;
  int rc;
};

struct sl_tail {
  uv_loop_t *loop;
  json_t *inputs_json;
  struct tail_input *inputs;
  size_t ninputs;
  char *data_dir;
  uint64_t reg_flush_ms;
  uint64_t qmax;
  sl_tail_chunk_cb cb;
  void *cb_arg;

  struct sl_treg *reg;
  struct qlink files;              /* live file objects */
  struct qlink zombies;            /* detached, chunks still out */
  struct qlink ready;              /* files with bytes to read */
  struct qlink pending;            /* chunks not yet taken by cb */
  struct qlink dirs;
  struct htab by_id, by_path;
  uint64_t inflight;
  uint64_t nopen;
  bool started, paused, stopped, closing;

  uv_idle_t idle;                  /* keeps reading while work remains */
  uv_timer_t poll_timer, reg_timer, rescan_timer;
  bool reg_busy;                   /* a registry write is on a worker */
  unsigned closes_left;
  void (*close_cb)(void *);
  void *close_arg;

  struct sl_tail_stats st;
};

static void update_idle(struct sl_tail *t);
static bool fp_changed(struct tail_file *f);
static void file_check(struct tail_file *f, uint64_t now);
static void schedule_rescan(struct sl_tail *t);

/* ---- small helpers ---------------------------------------------------- */

static int64_t
wall_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static ssize_t
pread_full(int fd, char *buf, size_t len, uint64_t off)
{
  size_t got = 0;
  ssize_t n;

  while (got < len) {
    n = pread(fd, buf + got, len - got, (off_t)(off + got));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* xxh3-64 of the first len bytes; SL_EAGAIN when the file is shorter. */
static int
fp_hash(int fd, uint32_t len, uint64_t *out)
{
  char b[SL_TREG_FP_MAX];
  ssize_t n = pread_full(fd, b, len, 0);

  if (n < 0)
    return (int)n;
  if ((size_t)n < len)
    return SL_EAGAIN;
  *out = XXH3_64bits(b, len);
  return 0;
}

static void
entry_attach(struct tail_file *f, struct sl_treg_entry *e)
{
  if (f->re == e)
    return;
  if (f->re)
    f->re->refs--;
  f->re = e;
  if (e)
    e->refs++;
}

/* A detached object for the same inode may still hold the entry; the new
 * owner takes it over so the zombie's late acks cannot overwrite it. */
static void
zombies_release(struct sl_tail *t, uint64_t dev, uint64_t ino)
{
  struct qlink *l;
  struct tail_file *z;

  for (l = t->zombies.next; l != &t->zombies; l = l->next) {
    z = container_of(l, struct tail_file, link);
    if (z->re && z->src.dev == dev && z->src.ino == ino)
      entry_attach(z, NULL);
  }
}

static void
ready_push(struct tail_file *f)
{
  if (f->in_ready || f->fd < 0 || f->detached)
    return;
  f->in_ready = true;
  q_push(&f->t->ready, &f->rlink);
}

static void
ready_remove(struct tail_file *f)
{
  if (!f->in_ready)
    return;
  f->in_ready = false;
  q_remove(&f->rlink);
}

static void
mark_ready(struct tail_file *f)
{
  f->want_read = true;
  ready_push(f);
  update_idle(f->t);
}

static int
htab_init(struct htab *h, size_t next_off, size_t key_off)
{
  h->nb = 64;
  h->n = 0;
  h->next_off = next_off;
  h->key_off = key_off;
  h->b = calloc(h->nb, sizeof(*h->b));
  return h->b ? 0 : SL_ENOMEM;
}

static void
htab_grow(struct htab *h)
{
  struct tail_file **nb, *f, *nx;
  size_t i, n = h->nb * 2, s;

  nb = calloc(n, sizeof(*nb));
  if (!nb)
    return;
  for (i = 0; i < h->nb; i++) {
    for (f = h->b[i]; f; f = nx) {
      nx = HNEXT(h, f);
      s = HKEY(h, f) & (n - 1);
      HNEXT(h, f) = nb[s];
      nb[s] = f;
    }
  }
  free(h->b);
  h->b = nb;
  h->nb = n;
}

static void
htab_add(struct htab *h, struct tail_file *f)
{
  size_t s;

  if (h->n >= h->nb)
    htab_grow(h);
  s = HKEY(h, f) & (h->nb - 1);
  HNEXT(h, f) = h->b[s];
  h->b[s] = f;
  h->n++;
}

static void
htab_del(struct htab *h, struct tail_file *f)
{
  struct tail_file **pp = &h->b[HKEY(h, f) & (h->nb - 1)];

  for (; *pp; pp = &HNEXT(h, *pp)) {
    if (*pp == f) {
      *pp = HNEXT(h, f);
      HNEXT(h, f) = NULL;
      h->n--;
      return;
    }
  }
}

static struct tail_file *
htab_first(const struct htab *h, uint64_t key)
{
  return h->b[key & (h->nb - 1)];
}

static uint64_t
id_key(uint64_t dev, uint64_t ino)
{
  uint64_t k[2] = {dev, ino};

  return XXH3_64bits(k, sizeof(k));
}

/* ---- chunks ----------------------------------------------------------- */

static struct tail_chunk *
chunk_new(struct tail_file *f, char *data, size_t len, uint64_t off,
          unsigned flags)
{
  struct tail_chunk *c = calloc(1, sizeof(*c));

  if (!c)
    return NULL;
  c->pub.src = &f->src;
  c->pub.ctx = f->in->ctx;
  c->pub.input_index = f->in->index;
  c->pub.offset = off;
  c->pub.end_offset = off + len;
  c->pub.data = data;
  c->pub.len = len;
  c->pub.flags = flags;
  c->pub.read_time_ns = wall_ns();
  c->pub.priv = c;
  c->f = f;
  q_init(&c->flink);
  q_init(&c->plink);
  f->refs++;
  return c;
}

/* Queue a finished chunk: file FIFO (for acks) and offer queue. */
static void
chunk_commit(struct tail_file *f, struct tail_chunk *c)
{
  struct sl_tail *t = f->t;

  q_push(&f->fifo, &c->flink);
  q_push(&t->pending, &c->plink);
  t->inflight += c->pub.len;
}

static void file_unref(struct tail_file *f);

/* Discard a chunk that never left tail (trunc of a replaced file). */
static void
chunk_discard(struct tail_chunk *c)
{
  struct tail_file *f = c->f;

  free(c->pub.data);
  free(c);
  file_unref(f);
}

static int
emit_copy(struct tail_file *f, const char *p, size_t len, uint64_t off,
          unsigned flags)
{
  char *d = malloc(len ? len : 1);
  struct tail_chunk *c;

  if (!d)
    return SL_ENOMEM;
  memcpy(d, p, len);
  c = chunk_new(f, d, len, off, flags);
  if (!c) {
    free(d);
    return SL_ENOMEM;
  }
  chunk_commit(f, c);
  return 0;
}

/* Hand chunks to the consumer in order until it refuses one. */
static void
offer_pending(struct sl_tail *t)
{
  struct tail_chunk *c;
  int rc;

  while (!t->paused && !t->closing && !q_empty(&t->pending)) {
    c = container_of(t->pending.next, struct tail_chunk, plink);
    q_remove(&c->plink);
    rc = t->cb(t->cb_arg, &c->pub);
    if (rc != 0) {
      if (rc != SL_EAGAIN)
        sl_log(SL_LOG_ERROR, "tail", "consumer refused chunk",
               SL_LF_STR, "path", c->f->path, SL_LF_ERR, rc, SL_LF_END);
      q_push_front(&t->pending, &c->plink);
      t->paused = true;
    }
  }
}

/* ---- file objects ----------------------------------------------------- */

static struct tail_file *
file_alloc(struct tail_input *in, const char *path, uint64_t dev,
           uint64_t ino)
{
  struct tail_file *f = calloc(1, sizeof(*f));

  if (!f)
    return NULL;
  f->path = strdup(path);
  if (!f->path) {
    free(f);
    return NULL;
  }
  f->t = in->t;
  f->in = in;
  f->refs = 1;
  f->fd = -1;
  f->src.path = f->path;
  f->src.dev = dev;
  f->src.ino = ino;
  f->idkey = id_key(dev, ino);
  f->pathkey = XXH3_64bits(f->path, strlen(f->path));
  f->want_len = READ_CHUNK;
  f->last_growth = uv_now(in->t->loop);
  q_init(&f->link);
  q_init(&f->rlink);
  q_init(&f->fifo);
  return f;
}

static void
file_close_fd(struct tail_file *f)
{
  if (f->fd < 0)
    return;
  close(f->fd);
  f->fd = -1;
  f->t->nopen--;
}

static void
file_free(struct tail_file *f)
{
  struct sl_treg_entry *e = f->re;
  struct sl_tail *t = f->t;

  q_remove(&f->link);
  /* Gone and fully acknowledged: the entry can never be used again (a
   * reused inode has a different fingerprint anyway). */
  if (e && f->deleted && f->acked_off >= f->size && !t->closing) {
    entry_attach(f, NULL);
    if (e->refs == 0)
      sl_treg_remove(t->reg, e);
  }
  entry_attach(f, NULL);
  file_close_fd(f);
  free(f->path);
  free(f);
}

static void
file_unref(struct tail_file *f)
{
  if (--f->refs == 0)
    file_free(f);
}

/* Leave the live list; the object lives on while chunks are out. */
static void
file_detach(struct tail_file *f)
{
  struct sl_tail *t = f->t;

  if (f->detached)
    return;
  ready_remove(f);
  if (f->fd >= 0) {
    sl_log(SL_LOG_INFO, "tail", "file closed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off,
           SL_LF_INT, "acked", (int64_t)f->acked_off, SL_LF_END);
    file_close_fd(f);
  }
  if (f->trunc) {
    chunk_discard(f->trunc);
    f->trunc = NULL;
  }
  f->skipping = false;
  f->detached = true;
  htab_del(&t->by_id, f);
  htab_del(&t->by_path, f);
  q_remove(&f->link);
  q_push(&t->zombies, &f->link);
  file_unref(f);
}

/* Fingerprint a file that had no bytes so far, and register it. */
static int
file_fingerprint(struct tail_file *f)
{
  struct sl_tail *t = f->t;
  struct sl_treg_entry *e;
  struct stat st;
  uint32_t len;
  uint64_t fp = 0;
  int rc;

  if (f->fp_len)
    return 0;
  if (fstat(f->fd, &st) != 0)
    return -errno;
  if (st.st_size == 0)
    return SL_EAGAIN;
  len = st.st_size < SL_TREG_FP_MAX ? (uint32_t)st.st_size : SL_TREG_FP_MAX;
  rc = fp_hash(f->fd, len, &fp);
  if (rc)
    return rc;
  f->src.fp = fp;
  f->fp_len = len;
  zombies_release(t, f->src.dev, f->src.ino);
  e = sl_treg_put(t->reg, f->path, f->src.dev, f->src.ino, fp, len,
                  f->acked_off);
  if (!e)
    return SL_ENOMEM;
  entry_attach(f, e);
  return 0;
}

static void
file_insert(struct tail_file *f)
{
  q_push(&f->t->files, &f->link);
  htab_add(&f->t->by_id, f);
  htab_add(&f->t->by_path, f);
}

/* The content under this fd was replaced (copytruncate, or inode reuse seen
 * through a changed fingerprint): continue on the same fd as a new identity
 * from offset 0 and retire the old object. */
static void
file_new_generation(struct tail_file *f, const char *why, uint64_t size)
{
  struct sl_tail *t = f->t;
  struct tail_file *nf;
  struct sl_treg_entry *e;

  sl_log(SL_LOG_WARN, "tail", why, SL_LF_STR, "path", f->path,
         SL_LF_INT, "offset", (int64_t)f->read_off,
         SL_LF_INT, "size", (int64_t)size, SL_LF_END);
  t->st.truncations++;
  nf = file_alloc(f->in, f->path, f->src.dev, f->src.ino);
  if (!nf) {
    /* Without memory to start over, drop the file; the next scan finds
     * it again. */
    entry_attach(f, NULL);
    file_detach(f);
    return;
  }
  nf->fd = f->fd;
  f->fd = -1;
  nf->rotated = f->rotated;
  nf->deleted = f->deleted;
  nf->seen_gen = f->seen_gen;
  e = f->re;
  entry_attach(f, NULL);
  file_detach(f);
  file_insert(nf);
  if (file_fingerprint(nf) == SL_EAGAIN && e && e->refs == 0)
    sl_treg_remove(t->reg, e);  /* empty now: the old identity is gone */
  mark_ready(nf);
}

/* Offset of the start of the last (possibly partial) line near the end. */
static uint64_t
line_start_near_end(int fd, uint64_t size)
{
  size_t win = size < END_LOOKBACK ? (size_t)size : END_LOOKBACK;
  uint64_t from = size - win;
  char *b, *nl;
  ssize_t n;
  uint64_t res = size;

  if (win == 0)
    return 0;
  b = malloc(win);
  if (!b)
    return size;
  n = pread_full(fd, b, win, from);
  if (n == (ssize_t)win) {
    nl = memrchr(b, '\n', win);
    if (nl)
      res = from + (uint64_t)(nl - b) + 1;
    else if (from == 0)
      res = 0;
  }
  free(b);
  return res;
}

/* A path from a scan whose inode we do not track: open it and decide where
 * to start (registry, start_at, or 0). */
static void
file_discover(struct tail_input *in, const char *path)
{
  struct sl_tail *t = in->t;
  struct sl_treg_entry *e;
  struct tail_file *f;
  struct stat st;
  uint64_t fp = 0, start = 0;
  const char *how = "beginning";
  int fd, rc;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sl_log(SL_LOG_WARN, "tail", "cannot open file", SL_LF_STR, "path", path,
           SL_LF_ERR, -errno, SL_LF_END);
    return;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return;
  }
  f = file_alloc(in, path, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
  if (!f) {
    close(fd);
    return;
  }
  f->fd = fd;
  t->nopen++;
  f->seen_gen = in->scan_gen;
  e = sl_treg_find(t->reg, f->src.dev, f->src.ino);
  if (e) {
    zombies_release(t, f->src.dev, f->src.ino);
    rc = SL_EAGAIN;
    if (e->fp_len > 0 && e->fp_len <= (uint64_t)st.st_size)
      rc = fp_hash(fd, e->fp_len, &fp);
    if (rc == 0 && fp == e->fp && e->offset <= (uint64_t)st.st_size) {
      f->src.fp = e->fp;
      f->fp_len = e->fp_len;
      start = e->offset;
      how = "registry";
      e = sl_treg_put(t->reg, path, f->src.dev, f->src.ino, f->src.fp,
                      f->fp_len, start);
      if (e)
        entry_attach(f, e);
    } else {
      sl_log(SL_LOG_INFO, "tail",
             rc == 0 && fp == e->fp ? "file shrank while stopped, from 0"
                                    : "inode reused, reading as new file",
             SL_LF_STR, "path", path, SL_LF_INT, "offset",
             (int64_t)e->offset, SL_LF_END);
      if (e->refs == 0)
        sl_treg_remove(t->reg, e);
    }
  } else if (!in->scanned && in->start_end) {
    start = line_start_near_end(fd, (uint64_t)st.st_size);
    how = "end";
  }
  f->read_off = f->acked_off = start;
  f->size = (uint64_t)st.st_size;
  file_insert(f);
  if (!f->fp_len)
    file_fingerprint(f);  /* SL_EAGAIN for an empty file: done on growth */
  sl_log(SL_LOG_INFO, "tail", "file opened", SL_LF_STR, "path", path,
         SL_LF_INT, "offset", (int64_t)start, SL_LF_INT, "size",
         (int64_t)st.st_size, SL_LF_STR, "start", how, SL_LF_END);
  if (f->size > f->read_off)
    mark_ready(f);
}

/* A dormant file changed size: reopen it and let the checks decide. */
static void
file_reopen(struct tail_file *f, const char *path)
{
  struct stat st;
  int fd;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != f->src.dev ||
      (uint64_t)st.st_ino != f->src.ino) {
    close(fd);
    return;
  }
  f->fd = fd;
  f->t->nopen++;
  sl_log(SL_LOG_INFO, "tail", "file reopened", SL_LF_STR, "path", path,
         SL_LF_INT, "offset", (int64_t)f->read_off, SL_LF_END);
  file_check(f, uv_now(f->t->loop));
}

/* ---- reading ---------------------------------------------------------- */

/* One pread at read_off, cut into chunks. Returns 1 when more may follow,
 * 0 at end of file, <0 on error. *nread: bytes read. */
static int
file_read(struct tail_file *f, size_t *nread)
{
  struct sl_tail *t = f->t;
  size_t L = f->want_len, maxl = f->in->max_line, pos = 0, q, look, keep;
  uint64_t base = f->read_off;
  bool owned = true, longline;
  struct tail_chunk *c;
  char *buf, *nl, *d;
  ssize_t n;
  size_t un;
  int rc = 0;

  *nread = 0;
  if (!f->fp_len) {
    rc = file_fingerprint(f);
    if (rc) {
      f->want_read = false;
      return rc == SL_EAGAIN ? 0 : rc;
    }
  }
  buf = malloc(L);
  if (!buf)
    return SL_ENOMEM;
  do
    n = pread(f->fd, buf, L, (off_t)base);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    rc = -errno;
    sl_log(SL_LOG_ERROR, "tail", "read failed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)base, SL_LF_ERR, rc, SL_LF_END);
    free(buf);
    f->want_read = false;
    return rc;
  }
  un = (size_t)n;
  *nread = un;
  if (base + un > f->size) {
    /* New bytes: make sure they still belong to the same content (the
     * file may have been truncated and rewritten past read_off since the
     * last poll). One 1 KiB pread from the page cache per growth. */
    if (fp_changed(f)) {
      free(buf);
      file_new_generation(f, "file content replaced", base + un);
      return 0;
    }
    f->size = base + un;
    f->last_growth = uv_now(t->loop);
  }
  if (un < L)
    f->want_read = false;  /* end of file for now */

  while (pos < un) {
    if (f->skipping) {
      nl = memchr(buf + pos, '\n', un - pos);
      if (!nl) {
        pos = un;
        break;
      }
      q = (size_t)(nl - buf) + 1;
      f->trunc->pub.end_offset = base + q;
      chunk_commit(f, f->trunc);
      f->trunc = NULL;
      f->skipping = false;
      pos = q;
      continue;
    }
    /* Find the longest run of whole lines from pos; lines longer than
     * max_line_bytes stop the run. */
    q = pos;
    longline = false;
    if (un - pos <= maxl) {
      nl = memrchr(buf + pos, '\n', un - pos);
      if (nl)
        q = (size_t)(nl - buf) + 1;
    } else {
      while (q < un) {
        look = un - q < maxl + 1 ? un - q : maxl + 1;
        nl = memchr(buf + q, '\n', look);
        if (nl) {
          q = (size_t)(nl - buf) + 1;
          continue;
        }
        longline = look == maxl + 1;
        break;
      }
    }
    if (q > pos) {
      if (pos == 0 && !longline) {
        /* The usual case: hand the read buffer itself over. */
        d = q < L ? realloc(buf, q) : buf;
        c = chunk_new(f, d ? d : buf, q, base, 0);
        if (!c) {
          rc = SL_ENOMEM;
          break;
        }
        owned = false;
        chunk_commit(f, c);
      } else {
        rc = emit_copy(f, buf + pos, q - pos, base + pos, 0);
        if (rc)
          break;
      }
    }
    pos = q;
    if (!longline)
      break;
    /* An over-long line starts at q: keep its head (cut on a UTF-8
     * boundary), skip the rest until its '\n'. The chunk is released only
     * once that '\n' is found so its end_offset (what the registry saves)
     * never points into the skipped line. */
    keep = sl_utf8_valid_prefix(buf + q, maxl);
    d = malloc(keep ? keep : 1);
    c = d ? chunk_new(f, d, keep, base + q, SL_CHUNK_TRUNCATED) : NULL;
    if (!c) {
      free(d);
      rc = SL_ENOMEM;
      break;
    }
    memcpy(d, buf + q, keep);
    f->trunc = c;
    f->skipping = true;
    t->st.lines_truncated++;
    sl_log(SL_LOG_WARN, "tail", "line over max_line_bytes truncated",
           SL_LF_STR, "path", f->path, SL_LF_INT, "offset",
           (int64_t)(base + q), SL_LF_INT, "max_line_bytes", (int64_t)maxl,
           SL_LF_END);
    pos = q + maxl + 1;  /* no '\n' in [q, q + maxl + 1) */
  }

  if (pos == 0 && un == L && !f->skipping && L <= maxl) {
    /* One line fills the whole window: read a window that either holds
     * its end or proves it over-long. */
    f->want_len = maxl + 1;
  } else if (pos > 0) {
    f->want_len = READ_CHUNK;
  }
  f->read_off = base + pos;
  t->st.bytes_read += pos;
  if (owned)
    free(buf);
  if (rc)
    return rc;
  return f->want_read ? 1 : 0;
}

/* A final line without '\n' (or the head of an over-long one) on a file
 * that stopped growing: emit it so it is not held back forever. */
static void
file_flush_partial(struct tail_file *f)
{
  struct sl_tail *t = f->t;
  size_t len, maxl = f->in->max_line, keep;
  unsigned flags = SL_CHUNK_NO_NL;
  struct tail_chunk *c;
  char *d;
  ssize_t n;

  if (f->skipping) {
    f->trunc->pub.end_offset = f->size;
    f->trunc->pub.flags |= SL_CHUNK_NO_NL;
    chunk_commit(f, f->trunc);
    f->trunc = NULL;
    f->skipping = false;
    f->read_off = f->size;
    return;
  }
  len = (size_t)(f->size - f->read_off);
  if (len > maxl) {
    /* Not expected (reads detect over-long lines first), but stay safe. */
    flags |= SL_CHUNK_TRUNCATED;
    len = maxl;
  }
  d = malloc(len ? len : 1);
  if (!d)
    return;
  n = pread_full(f->fd, d, len, f->read_off);
  if (n <= 0) {
    free(d);
    return;
  }
  keep = (size_t)n;
  if (flags & SL_CHUNK_TRUNCATED) {
    keep = sl_utf8_valid_prefix(d, keep);
    t->st.lines_truncated++;
  }
  c = chunk_new(f, d, keep, f->read_off, flags);
  if (!c) {
    free(d);
    return;
  }
  c->pub.end_offset = f->read_off + (uint64_t)n;
  if (flags & SL_CHUNK_TRUNCATED)
    c->pub.end_offset = f->size;
  sl_log(SL_LOG_INFO, "tail", "partial line flushed", SL_LF_STR, "path",
         f->path, SL_LF_INT, "offset", (int64_t)f->read_off,
         SL_LF_INT, "len", (int64_t)keep, SL_LF_END);
  f->read_off = c->pub.end_offset;
  t->st.bytes_read += (uint64_t)n;
  chunk_commit(f, c);
  offer_pending(t);
}

static bool
can_read(const struct sl_tail *t)
{
  return !t->paused && !t->stopped && !t->closing && t->inflight < t->qmax;
}

static void
tick(struct sl_tail *t)
{
  struct tail_file *f;
  size_t total = 0, per, got;
  int rc;

  offer_pending(t);
  while (total < TOTAL_TICK_BUDGET && can_read(t) && !q_empty(&t->ready)) {
    f = container_of(t->ready.next, struct tail_file, rlink);
    ready_remove(f);
    f->refs++;  /* a read may replace (detach) f */
    per = 0;
    while (per < FILE_TICK_BUDGET && f->want_read && can_read(t)) {
      rc = file_read(f, &got);
      per += got;
      offer_pending(t);
      if (rc <= 0 || got == 0)
        break;
    }
    total += per;
    /* Back of the queue: round robin between busy files. */
    if (f->want_read)
      ready_push(f);
    file_unref(f);
  }
  update_idle(t);
}

static void
idle_cb(uv_idle_t *h)
{
  tick(container_of(h, struct sl_tail, idle));
}

static void
update_idle(struct sl_tail *t)
{
  bool work;

  if (t->closing || !t->started)
    return;
  work = (!t->paused && !q_empty(&t->pending)) ||
         (can_read(t) && !q_empty(&t->ready));
  if (work && !uv_is_active((uv_handle_t *)&t->idle))
    uv_idle_start(&t->idle, idle_cb);
  else if (!work && uv_is_active((uv_handle_t *)&t->idle))
    uv_idle_stop(&t->idle);
}

/* ---- periodic checks -------------------------------------------------- */

static bool
fp_changed(struct tail_file *f)
{
  uint64_t fp = 0;
  int rc = fp_hash(f->fd, f->fp_len, &fp);

  return rc == SL_EAGAIN || (rc == 0 && fp != f->src.fp);
}

/* fstat an open file: growth, truncation, deletion, inactivity. May replace
 * f (new generation) or close its fd. */
static void
file_check(struct tail_file *f, uint64_t now)
{
  struct sl_tail *t = f->t;
  uint64_t size, idle;
  struct stat st;
  bool partial;

  if (f->fd < 0)
    return;
  if (fstat(f->fd, &st) != 0)
    return;
  size = (uint64_t)st.st_size;
  if (st.st_nlink == 0 && !f->deleted) {
    f->deleted = true;
    sl_log(SL_LOG_INFO, "tail", "file deleted", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off, SL_LF_END);
  }
  if (size < f->size || size < f->read_off) {
    file_new_generation(f, "file truncated", size);
    return;
  }
  if (size > f->size) {
    if (f->fp_len && fp_changed(f)) {
      file_new_generation(f, "file content replaced", size);
      return;
    }
    f->size = size;
    f->last_growth = now;
    mark_ready(f);
    return;
  }
  if (f->want_read || t->stopped)
    return;
  idle = now - f->last_growth;
  partial = f->size > f->read_off || f->skipping;
  if (partial && idle >= f->in->partial_ms &&
      (f->rotated || f->deleted || idle >= f->in->close_inactive_ms) &&
      !t->paused && t->inflight < t->qmax) {
    file_flush_partial(f);
    partial = f->size > f->read_off || f->skipping;
  }
  if (!partial && idle >= f->in->close_inactive_ms) {
    sl_log(SL_LOG_INFO, "tail", "file closed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off,
           SL_LF_INT, "acked", (int64_t)f->acked_off,
           SL_LF_STR, "reason", "inactive", SL_LF_END);
    ready_remove(f);
    file_close_fd(f);
  }
}

static void
poll_cb(uv_timer_t *h)
{
  struct sl_tail *t = container_of(h, struct sl_tail, poll_timer);
  uint64_t now = uv_now(t->loop);
  struct qlink *l, *nx;
  struct tail_file *f;

  for (l = t->files.next; l != &t->files; l = nx) {
    nx = l->next;
    f = container_of(l, struct tail_file, link);
    file_check(f, now);
  }
  update_idle(t);
}

/* ---- discovery -------------------------------------------------------- */

static void dir_event_cb(uv_fs_event_t *h, const char *name, int events,
                         int status);
static void on_handle_closed(uv_handle_t *h);

static void
dir_close_cb(uv_handle_t *h)
{
  struct tail_dir *d = container_of((uv_fs_event_t *)h, struct tail_dir, h);

  free(d->path);
  free(d);
}

static void
watch_dir(struct sl_tail *t, const char *dir, size_t len)
{
  struct tail_dir *d;
  struct qlink *l;
  int rc;

  for (l = t->dirs.next; l != &t->dirs; l = l->next) {
    d = container_of(l, struct tail_dir, link);
    if (strlen(d->path) == len && memcmp(d->path, dir, len) == 0) {
      d->last_used = uv_now(t->loop);
      return;
    }
  }
  d = calloc(1, sizeof(*d));
  if (!d)
    return;
  d->path = strndup(dir, len);
  if (!d->path) {
    free(d);
    return;
  }
  d->t = t;
  d->last_used = uv_now(t->loop);
  uv_fs_event_init(t->loop, &d->h);
  rc = uv_fs_event_start(&d->h, dir_event_cb, d->path, 0);
  if (rc) {
    /* The periodic scan and the poll timer still find everything, only
     * later. */
    sl_log(SL_LOG_DEBUG, "tail", "cannot watch directory, polling",
           SL_LF_STR, "path", d->path, SL_LF_ERR, rc, SL_LF_END);
    uv_close((uv_handle_t *)&d->h, dir_close_cb);
    return;
  }
  q_push(&t->dirs, &d->link);
}

static bool excluded(const struct tail_input *in, const char *path);
static struct tail_file *find_live(struct sl_tail *t, uint64_t dev,
                                   uint64_t ino);

static void
discover_now(struct sl_tail *t, const char *path)
{
  struct tail_input *in;
  struct stat st;
  size_t i, j;

  if (t->stopped || t->closing || stat(path, &st) != 0 ||
      !S_ISREG(st.st_mode) ||
      find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
    return;
  for (i = 0; i < t->ninputs; i++) {
    in = &t->inputs[i];
    if (excluded(in, path))
      continue;
    for (j = 0; j < in->npaths; j++) {
      /* glob(3) semantics: '/' and a leading '.' match only literally. */
      if (fnmatch(in->paths[j], path, FNM_PATHNAME | FNM_PERIOD) == 0) {
        file_discover(in, path);
        return;
      }
    }
  }
}

static void
dir_event_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
  struct tail_dir *d = container_of(h, struct tail_dir, h);
  struct sl_tail *t = d->t;
  struct tail_file *f;
  char path[4096];
  uint64_t key;
  int n;

  if (status < 0) {
    q_remove(&d->link);
    uv_close((uv_handle_t *)&d->h, dir_close_cb);  /* re-added by a scan */
    return;
  }
  if (!name) {
    schedule_rescan(t);
    return;
  }
  n = snprintf(path, sizeof(path), "%s%s%s", d->path,
               strcmp(d->path, "/") == 0 ? "" : "/", name);
  if (n < 0 || (size_t)n >= sizeof(path))
    return;
  if (events & UV_RENAME) {
    /* Created, moved or deleted: open a new matching file right away (a
     * fast writer may rotate it away again before a scan runs), and rescan
     * for the rest (rotation detection, patterns fnmatch cannot do). */
    discover_now(t, path);
    schedule_rescan(t);
    return;
  }
  key = XXH3_64bits(path, (size_t)n);
  for (f = htab_first(&t->by_path, key); f; f = f->path_next) {
    if (f->pathkey != key || strcmp(f->path, path) != 0)
      continue;
    if (f->fd >= 0)
      mark_ready(f);
    else
      schedule_rescan(t);  /* dormant file grew: reopen */
  }
}

/* Drop watches no scan asked for in a while (directories of pods or jobs
 * that are gone), so the watch list does not grow without bound. */
static void
prune_dirs(struct sl_tail *t)
{
  uint64_t now = uv_now(t->loop), keep = 0;
  struct qlink *l, *nx;
  struct tail_dir *d;
  size_t i;

  for (i = 0; i < t->ninputs; i++)
    if (t->inputs[i].scan_ms > keep)
      keep = t->inputs[i].scan_ms;
  keep = keep * 3 + 1000;
  for (l = t->dirs.next; l != &t->dirs; l = nx) {
    nx = l->next;
    d = container_of(l, struct tail_dir, link);
    if (now - d->last_used > keep) {
      q_remove(&d->link);
      uv_close((uv_handle_t *)&d->h, dir_close_cb);
    }
  }
}

static bool
excluded(const struct tail_input *in, const char *path)
{
  size_t i;

  for (i = 0; i < in->nexcl; i++)
    if (fnmatch(in->excl[i], path, 0) == 0)
      return true;
  return false;
}

static struct tail_file *
find_live(struct sl_tail *t, uint64_t dev, uint64_t ino)
{
  uint64_t key = id_key(dev, ino);
  struct tail_file *f;

  for (f = htab_first(&t->by_id, key); f; f = f->id_next)
    if (f->src.dev == dev && f->src.ino == ino)
      return f;
  return NULL;
}

static void
watch_parent(struct sl_tail *t, const char *path, bool only_literal)
{
  const char *slash = strrchr(path, '/');
  size_t len;

  if (!slash)
    return;
  len = slash == path ? 1 : (size_t)(slash - path);
  if (only_literal) {
    size_t i;

    for (i = 0; i < len; i++)
      if (strchr("*?[{", path[i]))
        return;
  }
  watch_dir(t, path, len);
}

static void
input_scan(struct tail_input *in)
{
  struct sl_tail *t = in->t;
  struct qlink *l, *nx;
  struct tail_file *f;
  struct stat st;
  glob_t g;
  size_t i, j;
  int rc;

  in->scan_gen++;
  for (i = 0; i < in->npaths; i++) {
    watch_parent(t, in->paths[i], true);
    memset(&g, 0, sizeof(g));
    rc = glob(in->paths[i], GLOB_BRACE, NULL, &g);
    if (rc != 0) {
      if (rc != GLOB_NOMATCH)
        sl_log(SL_LOG_WARN, "tail", "glob failed", SL_LF_STR, "pattern",
               in->paths[i], SL_LF_INT, "code", (int64_t)rc, SL_LF_END);
      globfree(&g);
      continue;
    }
    for (j = 0; j < g.gl_pathc; j++) {
      const char *p = g.gl_pathv[j];

      if (excluded(in, p) || stat(p, &st) != 0 || !S_ISREG(st.st_mode))
        continue;
      watch_parent(t, p, false);
      f = find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
      if (!f) {
        file_discover(in, p);
        continue;
      }
      if (f->in != in)
        continue;  /* an earlier input owns it */
      f->seen_gen = in->scan_gen;
      if (f->re)
        sl_treg_touch(t->reg, f->re);
      if (f->fd < 0 && (uint64_t)st.st_size != f->size)
        file_reopen(f, p);
    }
    globfree(&g);
  }
  for (l = t->files.next; l != &t->files; l = nx) {
    nx = l->next;
    f = container_of(l, struct tail_file, link);
    if (f->in != in)
      continue;
    if (f->seen_gen != in->scan_gen && f->fd < 0) {
      file_detach(f);  /* dormant and no longer matched */
      continue;
    }
    if (f->fd >= 0 && !f->rotated &&
        (stat(f->path, &st) != 0 || (uint64_t)st.st_dev != f->src.dev ||
         (uint64_t)st.st_ino != f->src.ino)) {
      f->rotated = true;
      t->st.rotations++;
      sl_log(SL_LOG_INFO, "tail", "file rotated", SL_LF_STR, "path",
             f->path, SL_LF_INT, "offset", (int64_t)f->read_off,
             SL_LF_INT, "size", (int64_t)f->size, SL_LF_END);
    }
  }
  in->scanned = true;
  sl_treg_prune(t->reg, PRUNE_AGE_MS);
  prune_dirs(t);
  update_idle(t);
}

static void
scan_timer_cb(uv_timer_t *h)
{
  struct tail_input *in = container_of(h, struct tail_input, scan_timer);

  if (!in->t->stopped)
    input_scan(in);
}

static void
scan_all(struct sl_tail *t)
{
  size_t i;

  for (i = 0; i < t->ninputs; i++)
    input_scan(&t->inputs[i]);
}

static void
rescan_cb(uv_timer_t *h)
{
  struct sl_tail *t = container_of(h, struct sl_tail, rescan_timer);

  if (!t->stopped)
    scan_all(t);
}

static void
schedule_rescan(struct sl_tail *t)
{
  if (t->closing || t->stopped)
    return;
  if (!uv_is_active((uv_handle_t *)&t->rescan_timer))
    uv_timer_start(&t->rescan_timer, rescan_cb, RESCAN_DELAY_MS, 0);
}

/* ---- registry writes -------------------------------------------------- */

static void maybe_finish(struct sl_tail *t);

static void
reg_work_cb(uv_work_t *req)
{
  struct reg_work *w = container_of(req, struct reg_work, req);

  w->rc = sl_treg_write(w->t->reg, w->json, w->seq);
}

static void
reg_after_cb(uv_work_t *req, int status)
{
  struct reg_work *w = container_of(req, struct reg_work, req);
  struct sl_tail *t = w->t;

  t->reg_busy = false;
  if (status == 0 && w->rc) {
    sl_log(SL_LOG_ERROR, "tail", "registry write failed", SL_LF_STR, "path",
           sl_treg_path(t->reg), SL_LF_ERR, w->rc, SL_LF_END);
    sl_treg_mark_dirty(t->reg);
  }
  free(w->json);
  free(w);
  if (t->closing)
    maybe_finish(t);
}

/* Writes go to the thread pool: fsync can take long on a busy disk and the
 * loop also serves the output sockets. */
static void
reg_timer_cb(uv_timer_t *h)
{
  struct sl_tail *t = container_of(h, struct sl_tail, reg_timer);
  struct reg_work *w;

  if (t->reg_busy || !sl_treg_dirty(t->reg))
    return;
  w = calloc(1, sizeof(*w));
  if (!w)
    return;
  w->t = t;
  w->json = sl_treg_serialize(t->reg, &w->seq);
  if (!w->json) {
    free(w);
    return;
  }
  if (uv_queue_work(t->loop, &w->req, reg_work_cb, reg_after_cb) != 0) {
    sl_treg_mark_dirty(t->reg);
    free(w->json);
    free(w);
    return;
  }
  t->reg_busy = true;
}

/* ---- public API ------------------------------------------------------- */

static int
str_list(const json_t *v, char ***out, size_t *n, bool required,
         const char *key, char *err, size_t errlen)
{
  size_t i;
  json_t *it;
  char **a;

  *out = NULL;
  *n = 0;
  if (!v) {
    if (required) {
      snprintf(err, errlen, "%s: required", key);
      return SL_ECONFIG;
    }
    return 0;
  }
  if (json_is_string(v)) {
    a = calloc(1, sizeof(*a));
    if (!a || !(a[0] = strdup(json_string_value(v)))) {
      free(a);
      return SL_ENOMEM;
    }
    *out = a;
    *n = 1;
    return 0;
  }
  if (!json_is_array(v) || (required && json_array_size(v) == 0)) {
    snprintf(err, errlen, "%s: expected a non-empty list of strings", key);
    return SL_ECONFIG;
  }
  a = calloc(json_array_size(v) + 1, sizeof(*a));
  if (!a)
    return SL_ENOMEM;
  *out = a;
  json_array_foreach(v, i, it) {
    if (!json_is_string(it)) {
      snprintf(err, errlen, "%s[%zu]: expected a string", key, i);
      return SL_ECONFIG;
    }
    a[i] = strdup(json_string_value(it));
    if (!a[i])
      return SL_ENOMEM;
    *n = i + 1;
  }
  return 0;
}

static void
free_strv(char **a, size_t n)
{
  size_t i;

  if (!a)
    return;
  for (i = 0; i < n; i++)
    free(a[i]);
  free(a);
}

static int
get_uint(const json_t *o, const char *key, uint64_t def, uint64_t min,
         uint64_t *v, int idx, char *err, size_t errlen)
{
  json_t *x = json_object_get(o, key);

  if (!x) {
    *v = def;
    return 0;
  }
  if (!json_is_integer(x) || json_integer_value(x) < (json_int_t)min) {
    snprintf(err, errlen, "inputs[%d].%s: expected an integer >= %llu", idx,
             key, (unsigned long long)min);
    return SL_ECONFIG;
  }
  *v = (uint64_t)json_integer_value(x);
  return 0;
}

static int
input_init(struct sl_tail *t, struct tail_input *in, const json_t *o,
           int idx, struct sl_parse_ctx *ctx, char *err, size_t errlen)
{
  const char *sa;
  uint64_t ml;
  int rc;

  in->t = t;
  in->index = idx;
  in->ctx = ctx;
  rc = str_list(json_object_get(o, "paths"), &in->paths, &in->npaths, true,
                "paths", err, errlen);
  if (!rc)
    rc = str_list(json_object_get(o, "exclude"), &in->excl, &in->nexcl,
                  false, "exclude", err, errlen);
  if (rc)
    return rc;
  sa = json_string_value(json_object_get(o, "start_at"));
  if (sa && strcmp(sa, "end") != 0 && strcmp(sa, "beginning") != 0) {
    snprintf(err, errlen, "inputs[%d].start_at: beginning or end", idx);
    return SL_ECONFIG;
  }
  in->start_end = sa && strcmp(sa, "end") == 0;
  if ((rc = get_uint(o, "scan_interval", DEF_SCAN_MS, 1, &in->scan_ms, idx,
                     err, errlen)) ||
      (rc = get_uint(o, "close_inactive", DEF_CLOSE_INACTIVE_MS, 0,
                     &in->close_inactive_ms, idx, err, errlen)) ||
      (rc = get_uint(o, "partial_timeout", DEF_PARTIAL_MS, 0,
                     &in->partial_ms, idx, err, errlen)) ||
      (rc = get_uint(o, "max_line_bytes", DEF_MAX_LINE, 1, &ml, idx, err,
                     errlen)))
    return rc;
  in->max_line = (size_t)ml;
  return 0;
}

int
sl_tail_new(uv_loop_t *loop, const struct sl_tail_opts *o,
            struct sl_tail **out, char *err, size_t errlen)
{
  struct sl_tail *t;
  const json_t *it;
  size_t i, n = 0;
  int rc;

  *out = NULL;
  if (!o->data_dir || !o->cb || !json_is_array(o->inputs)) {
    snprintf(err, errlen, "tail: data_dir, inputs and a callback are "
             "required");
    return SL_EINVAL;
  }
  if (o->queue_max_bytes == 0) {
    snprintf(err, errlen, "queue.max_bytes: must be > 0");
    return SL_ECONFIG;
  }
  t = calloc(1, sizeof(*t));
  if (!t)
    return SL_ENOMEM;
  t->loop = loop;
  t->inputs_json = json_incref((json_t *)o->inputs);
  t->data_dir = strdup(o->data_dir);
  t->reg_flush_ms = o->registry_flush_ms ? o->registry_flush_ms
                                         : DEF_REG_FLUSH_MS;
  t->qmax = o->queue_max_bytes;
  t->cb = o->cb;
  t->cb_arg = o->cb_arg;
  q_init(&t->files);
  q_init(&t->zombies);
  q_init(&t->ready);
  q_init(&t->pending);
  q_init(&t->dirs);
  t->inputs = calloc(json_array_size(o->inputs) + 1, sizeof(*t->inputs));
  if (!t->data_dir || !t->inputs ||
      htab_init(&t->by_id, offsetof(struct tail_file, id_next),
                offsetof(struct tail_file, idkey)) ||
      htab_init(&t->by_path, offsetof(struct tail_file, path_next),
                offsetof(struct tail_file, pathkey))) {
    rc = SL_ENOMEM;
    goto fail;
  }
  json_array_foreach(o->inputs, i, it) {
    const char *type = json_string_value(json_object_get(it, "type"));

    if (type && strcmp(type, "file") != 0)
      continue;
    t->ninputs = n + 1;  /* so cleanup frees it even when half-built */
    rc = input_init(t, &t->inputs[n], it, (int)i,
                    o->ctxs ? o->ctxs[i] : NULL, err, errlen);
    if (rc) {
      if (rc == SL_ENOMEM)
        snprintf(err, errlen, "out of memory");
      goto fail;
    }
    n++;
  }
  uv_idle_init(loop, &t->idle);
  uv_timer_init(loop, &t->poll_timer);
  uv_timer_init(loop, &t->reg_timer);
  uv_timer_init(loop, &t->rescan_timer);
  for (i = 0; i < t->ninputs; i++)
    uv_timer_init(loop, &t->inputs[i].scan_timer);
  *out = t;
  return 0;

fail:
  for (i = 0; i < t->ninputs; i++) {
    free_strv(t->inputs[i].paths, t->inputs[i].npaths);
    free_strv(t->inputs[i].excl, t->inputs[i].nexcl);
  }
  free(t->inputs);
  free(t->by_id.b);
  free(t->by_path.b);
  free(t->data_dir);
  json_decref(t->inputs_json);
  free(t);
  return rc;
}

int
sl_tail_start(struct sl_tail *t)
{
  size_t i;
  int rc;

  if (t->started || t->closing)
    return SL_EINVAL;
  rc = sl_treg_open(t->data_dir, &t->reg);
  if (rc) {
    sl_log(SL_LOG_ERROR, "tail", "cannot open registry", SL_LF_STR, "dir",
           t->data_dir, SL_LF_ERR, rc, SL_LF_END);
    return rc;
  }
  t->started = true;
  scan_all(t);
  for (i = 0; i < t->ninputs; i++)
    uv_timer_start(&t->inputs[i].scan_timer, scan_timer_cb,
                   t->inputs[i].scan_ms, t->inputs[i].scan_ms);
  uv_timer_start(&t->poll_timer, poll_cb, POLL_MS, POLL_MS);
  uv_timer_start(&t->reg_timer, reg_timer_cb, t->reg_flush_ms,
                 t->reg_flush_ms);
  update_idle(t);
  return 0;
}

void
sl_tail_resume(struct sl_tail *t)
{
  t->paused = false;
  update_idle(t);
}

void
sl_tail_chunk_done(struct sl_tail *t, struct sl_tail_chunk *pc)
{
  struct tail_chunk *c = pc->priv, *h;
  struct tail_file *f = c->f;
  uint64_t acked = f->acked_off;
  bool was_full = t->inflight >= t->qmax;

  if (c->done)
    return;
  c->done = true;
  free(c->pub.data);
  c->pub.data = NULL;
  t->inflight -= c->pub.len;
  /* Advance over the in-order prefix of done chunks only. */
  while (!q_empty(&f->fifo)) {
    h = container_of(f->fifo.next, struct tail_chunk, flink);
    if (!h->done)
      break;
    q_remove(&h->flink);
    acked = h->pub.end_offset;
    free(h);
    f->refs--;  /* f->refs stays >= 1 while f is looked at below */
  }
  f->acked_off = acked;
  if (f->re)
    sl_treg_set_offset(t->reg, f->re, acked);
  f->refs++;
  file_unref(f);
  if (was_full && t->inflight < t->qmax)
    update_idle(t);
}

void
sl_tail_stop_reading(struct sl_tail *t)
{
  size_t i;

  t->stopped = true;
  for (i = 0; i < t->ninputs; i++)
    uv_timer_stop(&t->inputs[i].scan_timer);
  uv_timer_stop(&t->rescan_timer);
  update_idle(t);
}

int
sl_tail_flush_registry(struct sl_tail *t)
{
  if (!t->reg)
    return SL_EINVAL;
  return sl_treg_save(t->reg);
}

void
sl_tail_stats(const struct sl_tail *t, struct sl_tail_stats *st)
{
  *st = t->st;
  st->files_open = t->nopen;
  st->inflight_bytes = t->inflight;
  st->registry_entries = t->reg ? sl_treg_count(t->reg) : 0;
}

static void
free_file_all(struct tail_file *f)
{
  struct tail_chunk *c;

  while (!q_empty(&f->fifo)) {
    c = container_of(f->fifo.next, struct tail_chunk, flink);
    q_remove(&c->flink);
    free(c->pub.data);
    free(c);
  }
  if (f->trunc) {
    free(f->trunc->pub.data);
    free(f->trunc);
  }
  entry_attach(f, NULL);
  file_close_fd(f);
  q_remove(&f->link);
  free(f->path);
  free(f);
}

static void
maybe_finish(struct sl_tail *t)
{
  void (*cb)(void *) = t->close_cb;
  void *arg = t->close_arg;
  struct qlink *heads[2] = {&t->files, &t->zombies};
  size_t i;

  if (t->closes_left > 0 || t->reg_busy)
    return;
  for (i = 0; i < 2; i++)
    while (!q_empty(heads[i]))
      free_file_all(container_of(heads[i]->next, struct tail_file, link));
  for (i = 0; i < t->ninputs; i++) {
    free_strv(t->inputs[i].paths, t->inputs[i].npaths);
    free_strv(t->inputs[i].excl, t->inputs[i].nexcl);
  }
  free(t->inputs);
  free(t->by_id.b);
  free(t->by_path.b);
  sl_treg_free(t->reg);
  free(t->data_dir);
  json_decref(t->inputs_json);
  free(t);
  if (cb)
    cb(arg);
}

static void
on_handle_closed(uv_handle_t *h)
{
  struct sl_tail *t = h->data;

  t->closes_left--;
  maybe_finish(t);
}

static void
close_handle(struct sl_tail *t, uv_handle_t *h)
{
  h->data = t;
  t->closes_left++;
  uv_close(h, on_handle_closed);
}

void
sl_tail_close(struct sl_tail *t, void (*cb)(void *arg), void *arg)
{
  struct tail_dir *d;
  struct qlink *l;
  size_t i;

  if (t->closing)
    return;
  if (t->reg)
    sl_treg_save(t->reg);  /* logs on failure; nothing better to do now */
  t->closing = true;
  t->close_cb = cb;
  t->close_arg = arg;
  for (l = t->files.next; l != &t->files; l = l->next)
    file_close_fd(container_of(l, struct tail_file, link));
  while (!q_empty(&t->dirs)) {
    d = container_of(t->dirs.next, struct tail_dir, link);
    q_remove(&d->link);
    uv_close((uv_handle_t *)&d->h, dir_close_cb);  /* frees d itself */
  }
  close_handle(t, (uv_handle_t *)&t->idle);
  close_handle(t, (uv_handle_t *)&t->poll_timer);
  close_handle(t, (uv_handle_t *)&t->reg_timer);
  close_handle(t, (uv_handle_t *)&t->rescan_timer);
  for (i = 0; i < t->ninputs; i++)
    close_handle(t, (uv_handle_t *)&t->inputs[i].scan_timer);
}
