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

/* What the first bytes of a file say about it: its head (the first
 * min(size, SL_TREG_HEAD_MAX) bytes, kept in hb so that entries with
 * shorter heads can be compared) and, once the file is long enough, its
 * fingerprint (fingerprint.length bytes at fingerprint.offset). */
struct head_info {
  char hb[SL_TREG_HEAD_MAX];
  uint32_t head_len;
  uint64_t head;
  uint64_t fp;
  uint32_t fp_len;           /* 0: shorter than the fingerprint range */
};

static int
head_read(int fd, const struct tail_input *in, uint64_t size,
          struct head_info *hi)
{
  uint64_t fpend = in->fp_off + in->fp_len;
  ssize_t n;
  char *b;

  n = pread_full(fd, hi->hb, size < SL_TREG_HEAD_MAX ? (size_t)size
                                                     : SL_TREG_HEAD_MAX, 0);
  if (n < 0)
    return (int)n;
  hi->head_len = (uint32_t)n;
  hi->head = XXH3_64bits(hi->hb, (size_t)n);
  hi->fp = 0;
  hi->fp_len = 0;
  if (size < fpend)
    return 0;
  if (fpend <= (uint64_t)n) {
    hi->fp = XXH3_64bits(hi->hb + in->fp_off, in->fp_len);
    hi->fp_len = in->fp_len;
    return 0;
  }
  b = malloc(in->fp_len);
  if (!b)
    return SL_ENOMEM;
  n = pread_full(fd, b, in->fp_len, in->fp_off);
  if (n == (ssize_t)in->fp_len) {
    hi->fp = XXH3_64bits(b, in->fp_len);
    hi->fp_len = in->fp_len;
  }
  free(b);
  return n < 0 ? (int)n : 0;
}

/* Does the content still start with the len bytes that hashed to head? */
static bool
head_matches(const struct head_info *hi, uint64_t head, uint32_t len)
{
  return len > 0 && len <= hi->head_len && XXH3_64bits(hi->hb, len) == head;
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

/* The file object holding e, other than a detached one of this inode
 * (a file closed and found again while its last chunks are out: it gives
 * the entry up to the new object, so that its late acks cannot move the
 * offset back), or NULL. */
static struct tail_file *
entry_holder(struct sl_tail *t, struct sl_treg_entry *e, uint64_t dev,
             uint64_t ino)
{
  struct sl_list *l, *nx;
  struct tail_file *o;

  if (e->refs == 0)
    return NULL;
  sl_list_foreach(l, nx, &t->files) {
    o = sl_container_of(l, struct tail_file, link);
    if (o->re == e)
      return o;
  }
  sl_list_foreach(l, nx, &t->zombies) {
    o = sl_container_of(l, struct tail_file, link);
    if (o->re == e && (o->src.dev != dev || o->src.ino != ino))
      return o;
  }
  return NULL;
}

static bool
entry_held(struct sl_tail *t, struct sl_treg_entry *e, uint64_t dev,
           uint64_t ino)
{
  return entry_holder(t, e, dev, ino) != NULL;
}

/* A file with the fingerprint of a stream that o is reading: a copy of o
 * has o's bytes at every offset it reaches (cp writes in order), so its
 * last bytes differ from o's only when it is another file that merely
 * starts the same (a constant header). Not decidable once o shrank (the
 * truncate after the copy): then it counts as a copy. */
static bool
not_a_copy(int fd, uint64_t size, const struct tail_file *o)
{
  char a[64], b[64];
  size_t n = size < sizeof(a) ? (size_t)size : sizeof(a);
  struct stat st;

  if (o->fd < 0 || fstat(o->fd, &st) != 0 || (uint64_t)st.st_size < size)
    return false;
  if (pread_full(fd, a, n, size - n) != (ssize_t)n ||
      pread_full(o->fd, b, n, size - n) != (ssize_t)n)
    return false;
  return memcmp(a, b, n) != 0;
}

static void
zombies_release(struct sl_tail *t, struct sl_treg_entry *e)
{
  struct sl_list *l, *nx;
  struct tail_file *z;

  sl_list_foreach(l, nx, &t->zombies) {
    z = sl_container_of(l, struct tail_file, link);
    if (z->re == e)
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

void
sl__tail_chunk_free(struct tail_chunk *c)
{
  free(c->cuts);
  free(c);
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
  sl__tail_chunk_free(c);
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

int
sl__tail_emit(struct tail_file *f, const char *p, size_t len, uint64_t off,
              unsigned flags, uint64_t end_off)
{
  int rc = emit_copy(f, p, len, off, flags);
  struct tail_chunk *c;

  if (rc == 0) {
    c = sl_container_of(sl_list_last(&f->fifo), struct tail_chunk, flink);
    c->pub.end_offset = end_off;
  }
  return rc;
}

/* ---- the assembly: lines around over-long ones, in one chunk ----------
 *
 * A read that meets a line over max_line_bytes copies everything from
 * there to the end of the read into one chunk (f->trunc): the lines
 * before it, its head, a '\n', the lines after. Separate chunks could be
 * parsed by different workers and reach the output in any order (issue
 * 15); one chunk keeps file order. While the '\n' of the cut line has not
 * been read, the assembly waits across reads (at most one read window of
 * lines plus the head). */

static int
asm_put(struct tail_file *f, const char *p, size_t len, uint64_t off)
{
  struct tail_chunk *c = f->trunc;
  size_t n;
  char *d;

  if (!c) {
    n = len < 4096 ? 4096 : len;
    d = malloc(n);
    c = d ? chunk_new(f, d, 0, off, 0) : NULL;
    if (!c) {
      free(d);
      return SL_ENOMEM;
    }
    c->dcap = n;
    f->trunc = c;
  }
  if (c->pub.len + len > c->dcap) {
    n = c->dcap * 2 > c->pub.len + len ? c->dcap * 2 : c->pub.len + len;
    d = realloc(c->pub.data, n);
    if (!d)
      return SL_ENOMEM;
    c->pub.data = d;
    c->dcap = n;
  }
  memcpy(c->pub.data + c->pub.len, p, len);
  c->pub.len += len;
  return 0;
}

/* The head of an over-long line starting at file offset line_off. */
static int
asm_cut(struct tail_file *f, const char *head, size_t keep,
        uint64_t line_off)
{
  struct sl_tail_cut *cuts;
  struct tail_chunk *c;
  int rc = asm_put(f, head, keep, line_off);

  if (rc)
    return rc;
  c = f->trunc;
  cuts = realloc(c->cuts, (c->pub.ncuts + 1) * sizeof(*cuts));
  if (!cuts)
    return SL_ENOMEM;
  c->cuts = cuts;
  cuts[c->pub.ncuts].at = c->pub.len - keep;
  cuts[c->pub.ncuts].end = 0;
  cuts[c->pub.ncuts].skip = 0;
  c->pub.ncuts++;
  c->pub.flags |= SL_CHUNK_TRUNCATED;
  c->cut_line = line_off;
  return 0;
}

/* The open cut line ends before file offset `next` (after its '\n', or
 * as far as the file goes when flushed without one). */
static int
asm_cut_end(struct tail_file *f, uint64_t next)
{
  struct tail_chunk *c = f->trunc;
  struct sl_tail_cut *cut;
  int rc = asm_put(f, "\n", 1, 0);

  if (rc)
    return rc;
  cut = &c->cuts[c->pub.ncuts - 1];
  cut->end = c->pub.len;
  cut->skip = next - c->cut_line - (cut->end - cut->at);
  f->t->st.bytes_skipped += cut->skip;
  return 0;
}

static void
asm_commit(struct tail_file *f, uint64_t end_off)
{
  struct tail_chunk *c = f->trunc;

  f->trunc = NULL;
  c->pub.end_offset = end_off;
  c->pub.cuts = c->cuts;
  c->pub.cap = c->dcap;
  chunk_commit(f, c);
}

/* Ship the assembly now (the file stopped growing inside a cut line, or
 * is being left): the cut line ends at `end_off` for now. Skipping goes
 * on, so a rest of that line written later is dropped, not made an
 * event. */
static void
asm_flush(struct tail_file *f, uint64_t end_off)
{
  if (!f->trunc)
    return;
  if (f->skipping && asm_cut_end(f, end_off)) {
    /* No memory for the '\n': drop the assembly; the registry stays
     * before it, so a restart reads it again. */
    chunk_discard(f->trunc);
    f->trunc = NULL;
    return;
  }
  asm_commit(f, end_off);
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
  sl__tail_fd_closed(f);
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
  sl__tail_gz_free(f);
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
  /* Lines read into the assembly go out; a cut line ends where reading
   * stopped. */
  asm_flush(f, f->read_off);
  f->skipping = false;
  f->detached = true;
  sl__tail_htab_del(&t->by_id, f);
  sl__tail_htab_del(&t->by_path, f);
  sl_list_remove(&f->link);
  sl_list_insert_tail(&t->zombies, &f->link);
  sl__tail_file_unref(f);
}

static void
file_insert(struct tail_file *f)
{
  sl_list_insert_tail(&f->t->files, &f->link);
  sl__tail_htab_add(&f->t->by_id, f);
  sl__tail_htab_add(&f->t->by_path, f);
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

/* A stream id for new content: its fingerprint (or head while shorter),
 * so that a registry lost and rebuilt gives the same event ids. Only when
 * another stream already has that id (a file truncated and written again
 * with the same first bytes) is it salted with the time: its events must
 * not take the ids, and so the place in Elasticsearch, of the old ones. */
static uint64_t
new_sid(struct sl_tail *t, const struct head_info *hi)
{
  uint64_t sid = hi->fp_len ? hi->fp : hi->head;
  int64_t salt;

  while (sl_treg_sid_used(t->reg, sid)) {
    salt = wall_ns();
    sid = XXH3_64bits_withSeed(&sid, sizeof(sid), (uint64_t)salt);
  }
  return sid;
}

/* Take e as f's stream, reading from start: the src fields workers hash
 * into event.id come from the entry, the inode and head from the file. */
static void
stream_bind(struct tail_file *f, struct sl_treg_entry *e,
            const struct head_info *hi, uint64_t start)
{
  struct sl_tail *t = f->t;

  zombies_release(t, e);
  entry_attach(f, e);
  f->ident = true;
  f->src.fp = e->sid;
  f->src.id_dev = e->id_dev;
  f->src.id_ino = e->id_ino;
  f->head = hi->head;
  f->head_len = hi->head_len;
  e->dev = f->src.dev;
  e->ino = f->src.ino;
  e->head = hi->head;
  e->head_len = hi->head_len;
  if (hi->fp_len) {
    e->fp = hi->fp;
    e->fp_off = f->in->fp_off;
    e->fp_len = hi->fp_len;
  }
  e->offset = start;
  (void)sl_treg_set_path(t->reg, e, f->path);  /* ENOMEM: old path stays */
  sl_treg_changed(t->reg, e);
  f->read_off = f->acked_off = start;
}

static int
stream_new(struct tail_file *f, const struct head_info *hi, uint64_t start)
{
  uint64_t sid = new_sid(f->t, hi);
  struct sl_treg_entry *e;

  e = sl_treg_add(f->t->reg, f->path, f->src.dev, f->src.ino);
  if (!e)
    return SL_ENOMEM;
  e->sid = sid;
  stream_bind(f, e, hi, start);
  return 0;
}

/* Give f (size > 0 bytes) its stream; see tail_internal.h. `at_end`:
 * start_at: end applies if the stream is new. Returns 0 (read_off set),
 * SL_EEXIST when f is a copy of a stream that another file is reading
 * (the caller drops f; a later scan looks again), SL_EAGAIN when it
 * turned out empty, or an error. */
static int
file_identify(struct tail_file *f, uint64_t size, bool at_end)
{
  struct sl_tail *t = f->t;
  struct sl_treg_entry *e;
  struct tail_file *holder;
  struct head_info hi;
  uint64_t start = 0;
  const char *how = "beginning";
  int rc;

  rc = head_read(f->fd, f->in, size, &hi);
  if (rc)
    return rc;
  if (hi.head_len == 0)
    return SL_EAGAIN;
  /* Fast path: a stream this inode held whose first bytes are still
   * there. */
  for (e = NULL; (e = sl_treg_next_ino(t->reg, e, f->src.dev,
                                       f->src.ino)) != NULL;)
    if (head_matches(&hi, e->head, e->head_len) &&
        !entry_held(t, e, f->src.dev, f->src.ino))
      break;
  if (e && e->offset > size && !f->gz) {
    /* Truncated while we were not looking, first bytes unchanged: what
     * is left was read; go on at the cut as a new stream, so that new
     * lines at old offsets do not take the old lines' ids. */
    sl_log(SL_LOG_INFO, "tail", "file shrank while stopped",
           SL_LF_STR, "path", f->path, SL_LF_INT, "offset",
           (int64_t)e->offset, SL_LF_INT, "size", (int64_t)size, SL_LF_END);
    rc = stream_new(f, &hi, size);
    how = "truncated";
    goto done;
  }
  if (e) {
    stream_bind(f, e, &hi, e->offset);
    how = "registry";
    goto done;
  }
  /* The same fingerprint on another inode: the stream moved or was
   * copied. Continue it where it was acknowledged -- unless a file is
   * still reading it: then this is a copy of a live file (copytruncate
   * between its copy and its truncate), taken up once that one lets
   * go. */
  e = sl_treg_find_fp(t->reg, f->in->fp_off, hi.fp_len, hi.fp);
  holder = e ? entry_holder(t, e, f->src.dev, f->src.ino) : NULL;
  if (holder && not_a_copy(f->fd, size, holder)) {
    sl_log(SL_LOG_INFO, "tail", "same first bytes as another file, "
           "not a copy of it: new stream", SL_LF_STR, "path", f->path,
           SL_LF_STR, "other", holder->path, SL_LF_END);
    e = NULL;
  } else if (holder) {
    sl_log(SL_LOG_DEBUG, "tail", "copy of a file being read, later",
           SL_LF_STR, "path", f->path, SL_LF_STR, "stream_path", e->path,
           SL_LF_END);
    return SL_EEXIST;
  }
  if (e) {
    sl_log(SL_LOG_INFO, "tail", "file continues a known stream",
           SL_LF_STR, "path", f->path, SL_LF_STR, "was", e->path,
           SL_LF_INT, "offset", (int64_t)e->offset, SL_LF_END);
    /* A copy shorter than what was shipped from the original: nothing to
     * read here unless it grows past that offset. */
    f->ahead = e->offset > size && !f->gz;
    stream_bind(f, e, &hi, e->offset);
    how = "fingerprint";
    goto done;
  }
  if (at_end) {
    start = line_start_near_end(f->fd, size);
    how = "end";
  }
  rc = stream_new(f, &hi, start);
done:
  if (rc == 0)
    sl_log(SL_LOG_DEBUG, "tail", "file identified", SL_LF_STR, "path",
           f->path, SL_LF_STR, "start", how, SL_LF_INT, "offset",
           (int64_t)f->read_off, SL_LF_END);
  f->how = how;
  return rc;
}

/* The file grew to `size`: is it still the content f was identified by?
 * A head shorter than SL_TREG_HEAD_MAX, or a stream without fingerprint,
 * is extended on the way, so that a copy made later is recognised.
 * Returns true when the first bytes changed (content replaced). */
static bool
head_changed(struct tail_file *f, uint64_t size)
{
  struct sl_treg_entry *e = f->re;
  struct head_info hi;
  char b[SL_TREG_HEAD_MAX];
  ssize_t n;

  if (!f->ident)
    return false;
  if (f->head_len >= SL_TREG_HEAD_MAX &&
      (!e || e->fp_len || size < f->in->fp_off + f->in->fp_len)) {
    /* The usual case: one 1 KiB pread from the page cache per growth. */
    n = pread_full(f->fd, b, f->head_len, 0);
    if (n < 0)
      return false;
    return (size_t)n < f->head_len || XXH3_64bits(b, f->head_len) != f->head;
  }
  if (head_read(f->fd, f->in, size, &hi))
    return false;
  if (!head_matches(&hi, f->head, f->head_len))
    return true;
  f->head = hi.head;
  f->head_len = hi.head_len;
  if (e) {
    e->head = hi.head;
    e->head_len = hi.head_len;
    if (!e->fp_len && hi.fp_len) {
      e->fp = hi.fp;
      e->fp_off = f->in->fp_off;
      e->fp_len = hi.fp_len;
    }
    sl_treg_changed(f->t->reg, e);
  }
  return false;
}

/* The content under this fd was truncated or replaced: go on with the
 * same fd as a new object. The old one keeps its stream entry while its
 * chunks are out, so their acks still advance that stream's offset (a
 * copytruncate copy of it continues from there). When the first bytes
 * survived (truncated to a shorter length), what is left was read: the
 * new stream starts at the cut; otherwise from 0. */
static void
file_new_generation(struct tail_file *f, const char *why, uint64_t size)
{
  struct sl_tail *t = f->t;
  struct tail_file *nf;
  struct head_info hi;
  bool same_head;
  int rc = 0;

  sl_log(SL_LOG_WARN, "tail", why, SL_LF_STR, "path", f->path,
         SL_LF_INT, "offset", (int64_t)f->read_off,
         SL_LF_INT, "size", (int64_t)size, SL_LF_END);
  t->st.truncations++;
  nf = file_alloc(f->in, f->path, f->src.dev, f->src.ino);
  if (!nf) {
    /* Without memory to start over, drop the file; the next scan finds
     * it again. */
    sl__tail_file_detach(f);
    return;
  }
  nf->fd = f->fd;
  nf->opened_ms = f->opened_ms;  /* the descriptor (and its slot) moves */
  f->fd = -1;
  nf->rotated = f->rotated;
  nf->deleted = f->deleted;
  nf->seen_gen = f->seen_gen;
  nf->size = nf->chk_size = size;
  nf->mtime_ns = f->mtime_ns;
  same_head = size > 0 && f->ident && size >= f->head_len &&
              head_read(nf->fd, nf->in, size, &hi) == 0 &&
              head_matches(&hi, f->head, f->head_len);
  sl__tail_file_detach(f);
  file_insert(nf);
  if (same_head)
    rc = stream_new(nf, &hi, size);
  else if (size > 0)
    rc = file_identify(nf, size, false);
  if (rc == SL_EEXIST || (rc && rc != SL_EAGAIN)) {
    sl__tail_file_detach(nf);
    return;
  }
  sl__tail_mark_ready(nf);
}

static bool
is_gz(const char *path)
{
  size_t n = strlen(path);

  return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* A path from a scan whose inode we do not track: open it and decide where
 * to start (file_identify). */
void
sl__tail_file_open(struct tail_input *in, const char *path)
{
  struct tail_file *f;
  struct stat st;
  int fd, rc = 0;

  /* Rotated and compressed: the same lines as the file they were
   * (already read), unless the input asks for them (read_gz). */
  if (is_gz(path) && !in->read_gz)
    return;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sl__tail_open_failed(in, path, -errno);
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
  sl__tail_fd_opened(f);
  f->seen_gen = in->scan_gen;
  f->size = f->chk_size = (uint64_t)st.st_size;
  f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL +
                st.st_mtim.tv_nsec;
  f->gz = in->read_gz && is_gz(path);
  if (f->size > 0)
    rc = file_identify(f, f->size, !in->scanned && in->start_end && !f->gz);
  if (rc && rc != SL_EAGAIN) {
    if (rc != SL_EEXIST)
      sl_log(SL_LOG_WARN, "tail", "cannot identify file", SL_LF_STR, "path",
             path, SL_LF_ERR, rc, SL_LF_END);
    sl__tail_file_unref(f);
    return;
  }
  file_insert(f);
  sl_log(SL_LOG_INFO, "tail", "file opened", SL_LF_STR, "path", path,
         SL_LF_INT, "offset", (int64_t)f->read_off, SL_LF_INT, "size",
         (int64_t)st.st_size, SL_LF_STR, "start",
         f->ident ? f->how : "beginning", SL_LF_END);
  if (f->gz && sl__tail_gz_done_at(fd, f->size, f->read_off))
    return;  /* read before: its saved offset is its whole length */
  if (f->size > f->read_off || f->gz)
    sl__tail_mark_ready(f);
}

/* A dormant file changed size: reopen it and let the checks decide. */
void
sl__tail_file_reopen(struct tail_file *f, const char *path)
{
  struct stat st;
  int fd;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sl__tail_open_failed(f->in, path, -errno);
    return;
  }
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != f->src.dev ||
      (uint64_t)st.st_ino != f->src.ino) {
    close(fd);
    return;
  }
  f->fd = fd;
  sl__tail_fd_opened(f);
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
    sl__tail_chunk_free(c);
  }
  if (f->trunc) {
    sl_tail_chunk_free_data(&f->trunc->pub);
    sl__tail_chunk_free(f->trunc);
  }
  entry_attach(f, NULL);
  sl__tail_file_close_fd(f);
  sl__tail_gz_free(f);
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
  char *buf, *nl;
  ssize_t n;
  size_t un, cap;
  int rc = 0;

  *nread = 0;
  if (!f->ident) {
    /* Empty until now: its first bytes say which stream it is. */
    struct stat st;

    rc = fstat(f->fd, &st) != 0 ? -errno
         : st.st_size == 0 ? SL_EAGAIN
         : file_identify(f, (uint64_t)st.st_size, false);
    if (rc == SL_EEXIST) {
      sl__tail_file_detach(f);
      return 0;
    }
    if (rc) {
      f->want_read = false;
      return rc == SL_EAGAIN ? 0 : rc;
    }
    base = f->read_off;
  }
  if (f->gz)
    return sl__tail_gz_read(f, nread);
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
     * last poll). */
    if (head_changed(f, base + un)) {
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
        if (!f->trunc)
          t->st.bytes_skipped += un - pos;
        pos = un;
        break;
      }
      q = (size_t)(nl - buf) + 1;
      if (f->trunc) {
        rc = asm_cut_end(f, base + q);
        if (rc)
          break;
      } else {
        t->st.bytes_skipped += q - pos;  /* rest of a line flushed early */
      }
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
    if (q > pos && (longline || f->trunc)) {
      rc = asm_put(f, buf + pos, q - pos, base + pos);
    } else if (q > pos && pos == 0 && q >= cap / ADOPT_MIN_FRACTION) {
      /* The usual case: hand the read buffer itself over. A chunk that
       * fills little of its window is copied instead (below): the queue
       * limits count chunk bytes, so a few lines must not pin a whole
       * window each (hundreds of slow files). */
      c = chunk_new(f, buf, q, base, 0);
      if (c) {
        read_buf_adopt(t, c, cap);
        owned = false;
        chunk_commit(f, c);
      } else {
        rc = SL_ENOMEM;
      }
    } else if (q > pos) {
      rc = emit_copy(f, buf + pos, q - pos, base + pos, 0);
    }
    if (rc)
      break;
    pos = q;
    if (!longline)
      break;
    /* An over-long line starts at q: keep its head (cut on a UTF-8
     * boundary), skip the rest until its '\n'. The assembly is released
     * only once that '\n' is found, so its end_offset (what the registry
     * saves) never points into the skipped line. */
    keep = sl_utf8_valid_prefix(buf + q, maxl);
    rc = asm_cut(f, buf + q, keep, base + q);
    if (rc)
      break;
    f->skipping = true;
    t->st.lines_truncated++;
    sl_log(SL_LOG_WARN, "tail", "line over max_line_bytes truncated",
           SL_LF_STR, "path", f->path, SL_LF_INT, "offset",
           (int64_t)(base + q), SL_LF_INT, "max_line_bytes", (int64_t)maxl,
           SL_LF_END);
    pos = q + maxl + 1;  /* no '\n' in [q, q + maxl + 1) */
  }
  if (!rc && f->trunc && !f->skipping)
    asm_commit(f, base + pos);

  if (pos == 0 && un == L && !f->skipping && L <= maxl) {
    /* One line fills the whole window: read a window that either holds
     * its end or proves it over-long. */
    f->want_len = maxl + 1;
  } else if (pos > 0) {
    f->want_len = SL_TAIL_READ_CHUNK;
  }
  f->read_off = base + pos;
  t->st.bytes_read += pos;
  f->in->bytes_read += pos;
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
    if (f->trunc)
      asm_flush(f, f->size);
    else
      t->st.bytes_skipped += f->size - f->read_off;
    f->read_off = f->size;
    sl__tail_offer_pending(t);
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
  f->in->bytes_read += (uint64_t)n;
  chunk_commit(f, c);
  sl__tail_offer_pending(t);
}

/* ---- periodic checks -------------------------------------------------- */

/* fstat an open file: growth, truncation, deletion, inactivity. May replace
 * f (new generation) or close its fd. */
/* How long a deleted file must sit at its end before close_removed closes
 * it: 1 s, or close_inactive when that is shorter. */
#define REMOVED_GRACE_MS 1000

static uint64_t
removed_grace_ms(const struct tail_file *f)
{
  return f->in->close_inactive_ms < REMOVED_GRACE_MS
             ? f->in->close_inactive_ms : REMOVED_GRACE_MS;
}

void
sl__tail_file_check(struct tail_file *f, uint64_t now)
{
  struct sl_tail *t = f->t;
  uint64_t size, idle;
  struct stat st;
  int64_t mtime;
  bool partial, same_size;

  if (f->fd < 0)
    return;
  if (fstat(f->fd, &st) != 0)
    return;
  size = (uint64_t)st.st_size;
  if (st.st_nlink == 0 && !f->deleted) {
    f->deleted = true;
    f->deleted_ms = now;
    sl_log(SL_LOG_INFO, "tail", "file deleted", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off, SL_LF_END);
  }
  if (f->gz) {
    /* Read once, start to end; only growth matters (a .gz still being
     * written by a rotation's gzip). */
    if (size > f->size) {
      f->size = size;
      f->last_growth = now;
      sl__tail_mark_ready(f);
      return;
    }
    if (!f->want_read && !t->stopped &&
        now - f->last_growth >= f->in->close_inactive_ms) {
      sl__tail_ready_remove(f);
      sl__tail_file_close_fd(f);
    }
    return;
  }
  mtime = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  same_size = size == f->chk_size && mtime != f->mtime_ns;
  f->chk_size = size;
  f->mtime_ns = mtime;
  if (size < f->size || (size < f->read_off && !f->ahead)) {
    file_new_generation(f, "file truncated", size);
    return;
  }
  if (f->ahead && size >= f->read_off)
    f->ahead = false;
  /* Rewritten in place to the same size (truncated and written again
   * between two looks): only the first bytes can tell. */
  if ((size > f->size || same_size) && head_changed(f, size)) {
    file_new_generation(f, "file content replaced", size);
    return;
  }
  if (size > f->size) {
    f->size = size;
    f->last_growth = now;
    sl__tail_mark_ready(f);
    return;
  }
  if (f->want_read || t->stopped)
    return;
  idle = now - f->last_growth;
  partial = f->size > f->read_off || f->trunc;
  if (partial && idle >= f->in->partial_ms &&
      !t->paused && t->inflight < t->qmax) {
    /* partial_timeout alone decides (issue 10; it used to wait for
     * close_inactive too). A writer that later continues the line gets
     * the continuation as the next event, as Filebeat does. */
    file_flush_partial(f);
    partial = f->size > f->read_off || f->trunc;
  }
  if (!partial && f->deleted && f->in->close_removed &&
      now - (f->deleted_ms > f->last_growth ? f->deleted_ms : f->last_growth)
          >= removed_grace_ms(f)) {
    /* Read to its end and gone. A writer that still holds the file open
     * may append a little more (the lines it wrote while or just after
     * the file was removed), so the end is the end once it stopped
     * growing for a short grace; then the descriptor (and the disk space
     * it pins) goes, and the registry entry once every byte was
     * acknowledged. */
    sl_log(SL_LOG_INFO, "tail", "file closed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off,
           SL_LF_INT, "acked", (int64_t)f->acked_off,
           SL_LF_STR, "reason", "removed", SL_LF_END);
    sl__tail_file_close_fd(f);
    sl__tail_file_detach(f);
    return;
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
