/* tail_file.c - one tailed file: open it, read it in large chunks of whole
 * lines, fingerprint it, and notice truncation, replacement, deletion and
 * inactivity (offsets and object life: tail_internal.h).
 */
#include "tail_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "sl_err.h"
#include "sl_json.h"
#include "sl_list.h"
#include "sl_log.h"

/* start_at: end looks this far back for the start of the last line. */
#define END_LOOKBACK (64u * 1024)

static bool fp_changed(struct tail_file *f);

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

static bool
fp_changed(struct tail_file *f)
{
  uint64_t fp = 0;
  int rc = fp_hash(f->fd, f->fp_len, &fp);

  return rc == SL_EAGAIN || (rc == 0 && fp != f->src.fp);
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
  struct sl_list *l, *nx;
  struct tail_file *z;

  sl_list_foreach(l, nx, &t->zombies) {
    z = sl_container_of(l, struct tail_file, link);
    if (z->re && z->src.dev == dev && z->src.ino == ino)
      entry_attach(z, NULL);
  }
}

void
sl__tail_ready_push(struct tail_file *f)
{
  if (f->in_ready || f->fd < 0 || f->detached)
    return;
  f->in_ready = true;
  sl_list_insert_tail(&f->t->ready, &f->rlink);
}

void
sl__tail_ready_remove(struct tail_file *f)
{
  if (!f->in_ready)
    return;
  f->in_ready = false;
  sl_list_remove(&f->rlink);
}

void
sl__tail_mark_ready(struct tail_file *f)
{
  f->want_read = true;
  sl__tail_ready_push(f);
  sl__tail_update_idle(f->t);
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
  c->pub.cap = len;  /* malloc'ed: the pool ignores cap (pool NULL) */
  c->pub.flags = flags;
  c->pub.read_time_ns = wall_ns();
  c->pub.priv = c;
  c->f = f;
  sl_list_init(&c->flink);
  sl_list_init(&c->plink);
  f->refs++;
  return c;
}

/* Queue a finished chunk: file FIFO (for acks) and offer queue. */
static void
chunk_commit(struct tail_file *f, struct tail_chunk *c)
{
  struct sl_tail *t = f->t;

  sl_list_insert_tail(&f->fifo, &c->flink);
  sl_list_insert_tail(&t->pending, &c->plink);
  t->inflight += c->pub.len;
}

/* Discard a chunk that never left tail (trunc of a replaced file). */
static void
chunk_discard(struct tail_chunk *c)
{
  struct tail_file *f = c->f;

  sl_tail_chunk_free_data(&c->pub);
  free(c);
  sl__tail_file_unref(f);
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
  f->idkey = sl__tail_id_key(dev, ino);
  f->pathkey = XXH3_64bits(f->path, strlen(f->path));
  f->want_len = SL_TAIL_READ_CHUNK;
  f->last_growth = uv_now(in->t->loop);
  sl_list_init(&f->link);
  sl_list_init(&f->rlink);
  sl_list_init(&f->fifo);
  return f;
}

void
sl__tail_file_close_fd(struct tail_file *f)
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

  sl_list_remove(&f->link);
  /* Gone and fully acknowledged: the entry can never be used again (a
   * reused inode has a different fingerprint anyway). */
  if (e && f->deleted && f->acked_off >= f->size && !t->closing) {
    entry_attach(f, NULL);
    if (e->refs == 0)
      sl_treg_remove(t->reg, e);
  }
  entry_attach(f, NULL);
  sl__tail_file_close_fd(f);
  free(f->path);
  free(f);
}

void
sl__tail_file_unref(struct tail_file *f)
{
  if (--f->refs == 0)
    file_free(f);
}

/* Leave the live list; the object lives on while chunks are out. */
void
sl__tail_file_detach(struct tail_file *f)
{
  struct sl_tail *t = f->t;

  if (f->detached)
    return;
  sl__tail_ready_remove(f);
  if (f->fd >= 0) {
    sl_log(SL_LOG_INFO, "tail", "file closed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off,
           SL_LF_INT, "acked", (int64_t)f->acked_off, SL_LF_END);
    sl__tail_file_close_fd(f);
  }
  if (f->trunc) {
    chunk_discard(f->trunc);
    f->trunc = NULL;
  }
  f->skipping = false;
  f->detached = true;
  sl__tail_htab_del(&t->by_id, f);
  sl__tail_htab_del(&t->by_path, f);
  sl_list_remove(&f->link);
  sl_list_insert_tail(&t->zombies, &f->link);
  sl__tail_file_unref(f);
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
  sl_list_insert_tail(&f->t->files, &f->link);
  sl__tail_htab_add(&f->t->by_id, f);
  sl__tail_htab_add(&f->t->by_path, f);
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
    sl__tail_file_detach(f);
    return;
  }
  nf->fd = f->fd;
  f->fd = -1;
  nf->rotated = f->rotated;
  nf->deleted = f->deleted;
  nf->seen_gen = f->seen_gen;
  e = f->re;
  entry_attach(f, NULL);
  sl__tail_file_detach(f);
  file_insert(nf);
  if (file_fingerprint(nf) == SL_EAGAIN && e && e->refs == 0)
    sl_treg_remove(t->reg, e);  /* empty now: the old identity is gone */
  sl__tail_mark_ready(nf);
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
void
sl__tail_file_open(struct tail_input *in, const char *path)
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
    sl__tail_mark_ready(f);
}

/* A dormant file changed size: reopen it and let the checks decide. */
void
sl__tail_file_reopen(struct tail_file *f, const char *path)
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
  sl__tail_file_check(f, uv_now(f->t->loop));
}

void
sl__tail_file_destroy(struct tail_file *f)
{
  struct sl_list *l;
  struct tail_chunk *c;

  while ((l = sl_list_pop(&f->fifo)) != NULL) {
    c = sl_container_of(l, struct tail_chunk, flink);
    sl_tail_chunk_free_data(&c->pub);
    free(c);
  }
  if (f->trunc) {
    sl_tail_chunk_free_data(&f->trunc->pub);
    free(f->trunc);
  }
  entry_attach(f, NULL);
  sl__tail_file_close_fd(f);
  sl_list_remove(&f->link);
  free(f->path);
  free(f);
}

/* The scan found f's path naming another inode (or nothing): the file was
 * rotated away. It is read on to its end; the flag lets a final partial
 * line be flushed without waiting for close_inactive. */
void
sl__tail_file_check_rotated(struct tail_file *f)
{
  struct stat st;

  if (f->fd < 0 || f->rotated)
    return;
  if (stat(f->path, &st) == 0 && (uint64_t)st.st_dev == f->src.dev &&
      (uint64_t)st.st_ino == f->src.ino)
    return;
  f->rotated = true;
  f->t->st.rotations++;
  sl_log(SL_LOG_INFO, "tail", "file rotated", SL_LF_STR, "path", f->path,
         SL_LF_INT, "offset", (int64_t)f->read_off,
         SL_LF_INT, "size", (int64_t)f->size, SL_LF_END);
}

/* ---- reading ---------------------------------------------------------- */

/* Read windows. read_buf_get() is the only place one is obtained: lent by
 * t->reads, so the pages of a window that came back are read into again
 * instead of fresh ones (each first touch is a page fault, expensive on
 * VMs). A window either becomes a chunk's data through read_buf_adopt() --
 * then whoever lets go of the bytes returns it with
 * sl_tail_chunk_free_data(): the parse worker once every line is in a
 * batch, sl_tail_chunk_done(), or sl__tail_file_destroy() -- or goes back
 * through read_buf_put(). */
static char *
read_buf_get(struct sl_tail *t, size_t len, size_t *cap)
{
  struct sl_buf b;

  if (sl_bufpool_get(t->reads, len, 0, &b))
    return NULL;
  *cap = b.cap;
  return b.p;
}

static void
read_buf_put(struct sl_tail *t, char *buf, size_t cap)
{
  sl_bufpool_put_mem(t->reads, buf, cap);
}

/* A chunk smaller than 1/ADOPT_MIN_FRACTION of its window is copied
 * into memory of its own size and the window goes back at once. */
#define ADOPT_MIN_FRACTION 4

/* A chunk takes the first `used` bytes of the whole window; the slack
 * (less than one line) stays with it, so the window keeps its size for
 * the next read. */
static void
read_buf_adopt(struct sl_tail *t, struct tail_chunk *c, size_t cap)
{
  c->pub.pool = t->reads;
  c->pub.cap = cap;
}

/* One pread at read_off, cut into chunks. Returns 1 when more may follow,
 * 0 at end of file, <0 on error. *nread: bytes read. */
int
sl__tail_file_read(struct tail_file *f, size_t *nread)
{
  struct sl_tail *t = f->t;
  size_t L = f->want_len, maxl = f->in->max_line, pos = 0, q, look, keep;
  uint64_t base = f->read_off;
  bool owned = true, longline;
  struct tail_chunk *c;
  char *buf, *nl, *d;
  ssize_t n;
  size_t un, cap;
  int rc = 0;

  *nread = 0;
  if (!f->fp_len) {
    rc = file_fingerprint(f);
    if (rc) {
      f->want_read = false;
      return rc == SL_EAGAIN ? 0 : rc;
    }
  }
  buf = read_buf_get(t, L, &cap);
  if (!buf)
    return SL_ENOMEM;
  do
    n = pread(f->fd, buf, L, (off_t)base);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    rc = -errno;
    sl_log(SL_LOG_ERROR, "tail", "read failed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)base, SL_LF_ERR, rc, SL_LF_END);
    read_buf_put(t, buf, cap);
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
      read_buf_put(t, buf, cap);
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
      if (pos == 0 && !longline && q >= cap / ADOPT_MIN_FRACTION) {
        /* The usual case: hand the read buffer itself over. A chunk
         * that fills little of its window is copied instead (below):
         * the queue limits count chunk bytes, so a few lines must not
         * pin a whole window each (hundreds of slow files). */
        c = chunk_new(f, buf, q, base, 0);
        if (!c) {
          rc = SL_ENOMEM;
          break;
        }
        read_buf_adopt(t, c, cap);
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
    f->want_len = SL_TAIL_READ_CHUNK;
  }
  f->read_off = base + pos;
  t->st.bytes_read += pos;
  if (owned)
    read_buf_put(t, buf, cap);
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
  sl__tail_offer_pending(t);
}

/* ---- periodic checks -------------------------------------------------- */

/* fstat an open file: growth, truncation, deletion, inactivity. May replace
 * f (new generation) or close its fd. */
void
sl__tail_file_check(struct tail_file *f, uint64_t now)
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
    sl__tail_mark_ready(f);
    return;
  }
  if (f->want_read || t->stopped)
    return;
  idle = now - f->last_growth;
  partial = f->size > f->read_off || f->skipping;
  if (partial && idle >= f->in->partial_ms &&
      !t->paused && t->inflight < t->qmax) {
    /* partial_timeout alone decides (issue 10; it used to wait for
     * close_inactive too). A writer that later continues the line gets
     * the continuation as the next event, as Filebeat does. */
    file_flush_partial(f);
    partial = f->size > f->read_off || f->skipping;
  }
  if (!partial && idle >= f->in->close_inactive_ms) {
    sl_log(SL_LOG_INFO, "tail", "file closed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off,
           SL_LF_INT, "acked", (int64_t)f->acked_off,
           SL_LF_STR, "reason", "inactive", SL_LF_END);
    sl__tail_ready_remove(f);
    sl__tail_file_close_fd(f);
  }
}
