/* archive.c - gzip NDJSON hour files beside the indexer (archive.h). */
#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "bulk.h"
#include "event_scan.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_fs.h"
#include "sl_gzip.h"
#include "sl_hash.h"
#include "sl_list.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_time.h"

#define COMP "archive"
#define NS_PER_HOUR (3600 * SL_NS_PER_SEC)
/* One batch takes at most this much of the queue: it bounds how far a
 * file passes max_file_bytes and how long one job runs. */
#define JOB_MAX_BYTES (8u << 20)
/* Members are cut at line boundaries after this many raw bytes, so that a
 * reader never inflates a huge member to get at the first line. */
#define MEMBER_RAW_MAX (1u << 20)
/* Files are closed after this long without a write (late events then go
 * to seq + 1), and the least recently used beyond OPEN_MAX. */
#define IDLE_CLOSE_MS (10u * 60u * 1000u)
#define OPEN_MAX 64
#define RETENTION_EVERY_MS 60000u
#define RETRY_MIN_MS 1000u
#define RETRY_MAX_MS 10000u
/* Event ids remembered against sender re-sends: two generations of this
 * many (2 x 2 MiB of tables), so the last 128-256 Ki events. */
#define IDS_GEN 131072u
/* At open, the tails of files written this recently are read back into
 * the id set: a window the previous run archived but could not ack comes
 * again. A sidecar's tail_off marks where the last >= RELOAD_TAIL_BYTES
 * of its file begin (a member boundary), and at most RELOAD_MAX_BYTES are
 * read in all, newest files first, so a start or a reload costs tens of
 * milliseconds however big the archive. */
#define RELOAD_RECENT_S 900
#define RELOAD_TAIL_BYTES (4u << 20)
#define RELOAD_MAX_BYTES (32u << 20)
#define DATA_SUFFIX ".ndjson.gz"
#define IDX_SUFFIX ".ndjson.gz.idx.json"

/* ---- configuration ------------------------------------------------------ */

void
sl_archive_conf_fill(const json_t *o, struct sl_archive_conf *c)
{
  memset(c, 0, sizeof *c);
  c->path = sl_conf_str(o, "path");
  c->keep_ms = (uint64_t)sl_conf_int(o, "keep", 30LL * 86400 * 1000);
  c->max_total_bytes = (uint64_t)sl_conf_int(o, "max_total_bytes",
                                             50LL << 30);
  c->max_file_bytes = (uint64_t)sl_conf_int(o, "max_file_bytes", 256 << 20);
}

/* ---- pure helpers ------------------------------------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
  return a >= 0 ? a / b : -((-a - 1) / b) - 1;
}

int
sl_archive_rel_path(const char *dataset, int64_t hour, uint32_t seq,
                    struct sl_buf *out)
{
  int64_t y;
  unsigned m, d;

  sl_time_civil_from_days(floor_div(hour, 24), &y, &m, &d);
  return sl_buf_printf(out, "%s/%04lld/%02u/%02u/%02u-%u" DATA_SUFFIX,
                       dataset, (long long)y, m, d,
                       (unsigned)(hour - floor_div(hour, 24) * 24), seq);
}

static int
parse_uint(const char *s, size_t n, uint64_t max, uint64_t *v)
{
  size_t i;

  *v = 0;
  if (n == 0 || n > 10)
    return SL_EPARSE;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return SL_EPARSE;
    *v = *v * 10 + (uint64_t)(s[i] - '0');
  }
  return *v <= max ? 0 : SL_EPARSE;
}

int
sl_archive_parse_rel(const char *rel, char *ds, size_t dslen, int64_t *hour,
                     uint32_t *seq)
{
  const char *p[5], *name, *dash;
  uint64_t y, m, d, h, s;
  size_t i, n = strlen(rel), sl = strlen(DATA_SUFFIX);

  /* ds / YYYY / MM / DD / HH-seq.ndjson.gz: exactly four slashes */
  p[0] = rel;
  for (i = 1; i < 5; i++) {
    p[i] = strchr(p[i - 1], '/');
    if (p[i] == NULL)
      return SL_EPARSE;
    p[i]++;
  }
  name = p[4];
  if (strchr(name, '/') || n < sl || strcmp(rel + n - sl, DATA_SUFFIX) != 0)
    return SL_EPARSE;
  dash = strchr(name, '-');
  if (dash == NULL || (size_t)(p[1] - 1 - p[0]) + 1 > dslen ||
      p[1] - 1 == p[0] ||
      parse_uint(p[1], (size_t)(p[2] - 1 - p[1]), 9999, &y) ||
      p[2] - 1 - p[1] != 4 ||
      parse_uint(p[2], (size_t)(p[3] - 1 - p[2]), 12, &m) || m < 1 ||
      parse_uint(p[3], (size_t)(p[4] - 1 - p[3]), 31, &d) || d < 1 ||
      parse_uint(name, (size_t)(dash - name), 23, &h) ||
      parse_uint(dash + 1, (size_t)(rel + n - sl - dash - 1), UINT32_MAX,
                 &s))
    return SL_EPARSE;
  memcpy(ds, p[0], (size_t)(p[1] - 1 - p[0]));
  ds[p[1] - 1 - p[0]] = '\0';
  *hour = sl_time_days_from_civil((int64_t)y, (unsigned)m, (unsigned)d) * 24 +
          (int64_t)h;
  *seq = (uint32_t)s;
  return 0;
}

int
sl_archive_idx_encode(const struct sl_archive_idx *x, struct sl_buf *out)
{
  char a[SL_TIME_RFC3339_NS_LEN + 1], b[SL_TIME_RFC3339_NS_LEN + 1];

  sl_time_format_ns(x->min_ns, a);
  sl_time_format_ns(x->max_ns, b);
  return sl_buf_printf(out,
                       "{\"count\":%llu,\"bytes\":%llu,\"min_ns\":%lld,"
                       "\"max_ns\":%lld,\"min\":\"%s\",\"max\":\"%s\","
                       "\"last_record\":%llu,\"last_record_ns\":%lld,"
                       "\"tail_off\":%llu}\n",
                       (unsigned long long)x->count,
                       (unsigned long long)x->bytes, (long long)x->min_ns,
                       (long long)x->max_ns, a, b,
                       (unsigned long long)x->last_record,
                       (long long)x->last_record_ns,
                       (unsigned long long)x->tail_off);
}

int
sl_archive_idx_decode(const char *p, size_t n, struct sl_archive_idx *x)
{
  static const char *const keys[] = { "count", "bytes", "min_ns", "max_ns",
                                      "last_record", "last_record_ns" };
  json_int_t v[6];
  json_t *o = json_loadb(p, n, 0, NULL);
  size_t i;
  int rc = 0;

  if (!json_is_object(o)) {
    rc = SL_EPARSE;
    goto out;
  }
  for (i = 0; i < 6; i++) {
    json_t *f = json_object_get(o, keys[i]);

    if (!json_is_integer(f) || (i != 2 && i != 3 && i != 5 &&
                                json_integer_value(f) < 0)) {
      rc = SL_EPARSE;
      goto out;
    }
    v[i] = json_integer_value(f);
  }
  x->count = (uint64_t)v[0];
  x->bytes = (uint64_t)v[1];
  x->min_ns = (int64_t)v[2];
  x->max_ns = (int64_t)v[3];
  x->last_record = (uint64_t)v[4];
  x->last_record_ns = (int64_t)v[5];
  /* optional: sidecars of other writers may lack it (read from 0) */
  x->tail_off = json_is_integer(json_object_get(o, "tail_off")) &&
                        json_integer_value(json_object_get(o, "tail_off")) >= 0
                    ? (uint64_t)json_integer_value(json_object_get(o,
                                                                   "tail_off"))
                    : 0;
  if (x->tail_off > x->bytes)
    x->tail_off = 0;
out:
  json_decref(o);
  return rc;
}

static const json_t *
get2(const json_t *ev, const char *obj, const char *key, const char *dotted)
{
  const json_t *o = json_object_get(ev, obj), *v = NULL;

  if (json_is_object(o))
    v = json_object_get(o, key);
  return v ? v : json_object_get(ev, dotted);
}

static struct sl_span
str_span(const json_t *v)
{
  struct sl_span s = { NULL, 0 };

  if (json_is_string(v)) {
    s.p = json_string_value(v);
    s.len = json_string_length(v);
  }
  return s;
}

static uint64_t
id_hash(const char *p, size_t n)
{
  uint64_t h;

  if (p == NULL || n == 0 || n > SL_EVENT_ID_MAX)
    return 0;
  h = sl_hash64(p, n);
  return h ? h : 1; /* 0 means "no id" */
}

int
sl_archive_event_key(const char *ev, size_t len, int64_t fallback_ns,
                     struct sl_buf *ds, int64_t *ts_ns, uint64_t *idh)
{
  static const struct sl_route route = { SL_INDEX_DATA_STREAM, NULL, NULL,
                                         NULL };
  struct sl_event_fields f;
  const json_t *ts;
  json_t *o;
  int rc;

  *ts_ns = fallback_ns;
  if (idh)
    *idh = 0;
  if (sl_event_scan(ev, len, &f) == 0 &&
      (!f.has_timestamp || f.timestamp.p != NULL)) {
    if (idh)
      *idh = id_hash(f.id.p, f.id.len);
    if (f.timestamp.p != NULL &&
        sl_time_parse_any(f.timestamp.p, f.timestamp.len, ts_ns) != 0)
      *ts_ns = fallback_ns;
    return sl_bulk_dataset_part(&route, f.ev_dataset, f.ds_dataset, ds);
  }
  /* The scanner was unsure (escapes, a numeric @timestamp, not an
   * object): jansson decides, as the indexer's slow path does. */
  o = json_loadb(ev, len, 0, NULL);
  if (!json_is_object(o)) {
    struct sl_span none = { NULL, 0 };

    json_decref(o);
    return sl_bulk_dataset_part(&route, none, none, ds);
  }
  if (idh) {
    struct sl_span id = sl_event_json_id(o);

    *idh = id_hash(id.p, id.len);
  }
  ts = json_object_get(o, "@timestamp");
  if (json_is_string(ts)) {
    if (sl_time_parse_any(json_string_value(ts), json_string_length(ts),
                          ts_ns) != 0)
      *ts_ns = fallback_ns;
  } else if (json_is_integer(ts)) {
    *ts_ns = (int64_t)json_integer_value(ts) * 1000000; /* epoch_millis */
  } else if (json_is_real(ts)) {
    *ts_ns = (int64_t)(json_real_value(ts) * 1e6);
  }
  rc = sl_bulk_dataset_part(
      &route, str_span(get2(o, "event", "dataset", "event.dataset")),
      str_span(get2(o, "data_stream", "dataset", "data_stream.dataset")), ds);
  json_decref(o);
  return rc;
}

/* ---- walking the tree --------------------------------------------------- */

/* cb gets every regular file below root with its path relative to root;
 * non-zero from cb stops the walk with that value. */
typedef int (*walk_cb)(void *arg, const char *full, const char *rel,
                       const struct stat *st);

static int
walk_dir(char *path, size_t root_len, int depth, walk_cb cb, void *arg)
{
  size_t len = strlen(path);
  struct dirent *de;
  DIR *d;
  int rc = 0;

  d = opendir(path);
  if (d == NULL)
    return errno == ENOENT ? 0 : -errno;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    struct stat st;

    if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
                                 (de->d_name[1] == '.' &&
                                  de->d_name[2] == '\0')))
      continue;
    if (len + 1 + strlen(de->d_name) + 1 > PATH_MAX)
      continue;
    path[len] = '/';
    strcpy(path + len + 1, de->d_name);
    if (lstat(path, &st) == 0) {
      if (S_ISDIR(st.st_mode) && depth < 4)
        rc = walk_dir(path, root_len, depth + 1, cb, arg);
      else if (S_ISREG(st.st_mode))
        rc = cb(arg, path, path + root_len + 1, &st);
    }
    path[len] = '\0';
  }
  closedir(d);
  return rc;
}

static int
walk(const char *root, walk_cb cb, void *arg)
{
  char path[PATH_MAX];
  size_t n = strlen(root);

  while (n > 1 && root[n - 1] == '/')
    n--;
  if (n + 1 > sizeof path)
    return SL_E2BIG;
  memcpy(path, root, n);
  path[n] = '\0';
  return walk_dir(path, n, 0, cb, arg);
}

static int
read_small(const char *path, struct sl_buf *out)
{
  char tmp[4096];
  ssize_t r;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

  if (fd < 0)
    return -errno;
  while ((r = read(fd, tmp, sizeof tmp)) != 0) {
    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = -errno;
      break;
    }
    rc = sl_buf_append(out, tmp, (size_t)r);
    if (rc)
      break;
  }
  close(fd);
  return rc;
}

static int
read_idx(const char *data_path, struct sl_archive_idx *x)
{
  struct sl_buf b, p;
  int rc;

  sl_buf_init(&b, 1 << 16);
  sl_buf_init(&p, PATH_MAX);
  rc = sl_buf_printf(&p, "%s.idx.json", data_path);
  if (!rc)
    rc = read_small(p.p, &b);
  if (!rc)
    rc = sl_archive_idx_decode(b.p, b.len, x);
  sl_buf_free(&b);
  sl_buf_free(&p);
  return rc;
}

/* ---- reading (replay, trace) -------------------------------------------- */

struct list_ctx {
  const char *dataset;
  struct sl_archive_file *v;
  size_t n, cap;
  int rc;
};

static int
list_one(void *arg, const char *full, const char *rel, const struct stat *st)
{
  struct list_ctx *l = arg;
  struct sl_archive_file *f;

  (void)st;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    void *v = realloc(l->v, cap * sizeof *l->v);

    if (v == NULL)
      return SL_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  f = &l->v[l->n];
  memset(f, 0, sizeof *f);
  if (sl_archive_parse_rel(rel, f->dataset, sizeof f->dataset, &f->hour,
                           &f->seq) != 0 ||
      (l->dataset && strcmp(l->dataset, f->dataset) != 0))
    return 0;
  f->path = sl_strdup(full);
  if (f->path == NULL)
    return SL_ENOMEM;
  f->has_idx = read_idx(full, &f->idx) == 0;
  l->n++;
  return 0;
}

static int
file_cmp(const void *a, const void *b)
{
  const struct sl_archive_file *x = a, *y = b;
  int c;

  if (x->hour != y->hour)
    return x->hour < y->hour ? -1 : 1;
  c = strcmp(x->dataset, y->dataset);
  if (c)
    return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
sl_archive_list(const char *root, const char *dataset,
                struct sl_archive_file **out, size_t *n)
{
  struct list_ctx l;
  int rc;

  memset(&l, 0, sizeof l);
  l.dataset = dataset;
  rc = walk(root, list_one, &l);
  if (rc) {
    sl_archive_files_free(l.v, l.n);
    return rc;
  }
  if (l.n)
    qsort(l.v, l.n, sizeof *l.v, file_cmp);
  *out = l.v;
  *n = l.n;
  return 0;
}

void
sl_archive_files_free(struct sl_archive_file *f, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    free(f[i].path);
  free(f);
}

int
sl_archive_reader_open_at(struct sl_archive_reader *r, const char *path,
                          uint64_t off)
{
  int fd;

  memset(r, 0, offsetof(struct sl_archive_reader, buf));
  r->pos = r->len = 0;
  r->eof = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (off && lseek(fd, (off_t)off, SEEK_SET) < 0) {
    close(fd);
    return -errno;
  }
  /* gzip members are independent: reading from a member boundary is
   * reading a valid gzip file. */
  r->gz = gzdopen(fd, "rb");
  if (r->gz == NULL) {
    close(fd);
    return SL_ENOMEM;
  }
  sl_buf_init(&r->line, 0);
  return 0;
}

int
sl_archive_reader_open(struct sl_archive_reader *r, const char *path)
{
  return sl_archive_reader_open_at(r, path, 0);
}

int
sl_archive_reader_next(struct sl_archive_reader *r, const char **line,
                       size_t *len)
{
  int rc, zerr;

  sl_buf_reset(&r->line);
  for (;;) {
    if (r->pos == r->len) {
      int n;

      if (r->eof)
        break;
      n = gzread(r->gz, r->buf, sizeof r->buf);
      if (n <= 0) {
        r->eof = 1;
        gzerror(r->gz, &zerr);
        /* A torn last member (Z_BUF_ERROR: the data ended early) ends
         * the file there, without its partial line; only a crash leaves
         * one, and the next open of the archive cuts it. */
        if (zerr == Z_BUF_ERROR)
          sl_buf_reset(&r->line);
        else if (zerr != Z_OK)
          return SL_ECORRUPT;
        break;
      }
      r->pos = 0;
      r->len = (size_t)n;
    }
    {
      char *p = r->buf + r->pos;
      char *nl = memchr(p, '\n', r->len - r->pos);
      size_t n = nl ? (size_t)(nl - p) : r->len - r->pos;

      rc = sl_buf_append(&r->line, p, n);
      if (rc)
        return rc;
      r->pos += n + (nl != NULL);
      if (nl && r->line.len) {
        *line = r->line.p;
        *len = r->line.len;
        return 1;
      }
    }
  }
  if (r->line.len) {
    *line = r->line.p;
    *len = r->line.len;
    return 1;
  }
  return 0;
}

void
sl_archive_reader_close(struct sl_archive_reader *r)
{
  if (r->gz)
    gzclose(r->gz);
  r->gz = NULL;
  sl_buf_free(&r->line);
}

int
sl_archive_read(const char *path, sl_archive_line_cb cb, void *arg)
{
  struct sl_archive_reader *r = malloc(sizeof *r);
  const char *line;
  size_t len;
  int rc;

  if (r == NULL)
    return SL_ENOMEM;
  rc = sl_archive_reader_open(r, path);
  if (rc) {
    free(r);
    return rc;
  }
  while ((rc = sl_archive_reader_next(r, &line, &len)) == 1) {
    rc = cb(arg, line, len);
    if (rc)
      break;
  }
  sl_archive_reader_close(r);
  free(r);
  return rc;
}

/* ---- event ids already archived ----------------------------------------- */

/* Hashes of event.id, in two generations of open-addressing tables (load
 * <= 1/2, 0 = empty): when the current one is full it becomes the old one
 * and the old one is dropped, so memory is fixed and the newest ids are
 * always remembered. Only the job (or open) touches it. */
struct idset {
  uint64_t *cur, *old;
  size_t cap;                 /* slots per table, a power of two */
  size_t n;                   /* entries in cur */
};

static int
idset_init(struct idset *s, size_t per_gen)
{
  s->cap = 1;
  while (s->cap < per_gen * 2)
    s->cap <<= 1;
  s->cur = calloc(s->cap, sizeof *s->cur);
  s->old = calloc(s->cap, sizeof *s->old);
  s->n = 0;
  return s->cur && s->old ? 0 : SL_ENOMEM;
}

static void
idset_free(struct idset *s)
{
  free(s->cur);
  free(s->old);
  s->cur = s->old = NULL;
}

static int
table_has(const uint64_t *t, size_t cap, uint64_t h)
{
  size_t i = (size_t)h & (cap - 1);

  while (t[i]) {
    if (t[i] == h)
      return 1;
    i = (i + 1) & (cap - 1);
  }
  return 0;
}

/* 1 if added, 0 if it was there. */
static int
table_add(uint64_t *t, size_t cap, uint64_t h)
{
  size_t i = (size_t)h & (cap - 1);

  while (t[i]) {
    if (t[i] == h)
      return 0;
    i = (i + 1) & (cap - 1);
  }
  t[i] = h;
  return 1;
}

static int
idset_has(const struct idset *s, uint64_t h)
{
  return h && s->cur &&
         (table_has(s->cur, s->cap, h) || table_has(s->old, s->cap, h));
}

static void
idset_add(struct idset *s, uint64_t h)
{
  if (!h || !s->cur || table_has(s->old, s->cap, h))
    return;
  if (s->n >= s->cap / 2) {
    uint64_t *t = s->old;

    s->old = s->cur;
    memset(t, 0, s->cap * sizeof *t);
    s->cur = t;
    s->n = 0;
  }
  s->n += (size_t)table_add(s->cur, s->cap, h);
}

/* ---- the writer --------------------------------------------------------- */

/* A record waiting to be written (the copy of its events). */
struct arec {
  struct sl_list node;
  uint64_t id;
  int64_t append_ns;
  char *data;
  size_t len;
  sl_archive_done_cb cb;
  void *arg;
};

/* One dataset-hour: its current file and what earlier runs wrote. Only
 * the running job touches streams; the loop thread only when none runs. */
struct stream {
  struct sl_list node;
  char *ds;
  int64_t hour;
  uint32_t seq;               /* of the open file, or of the last one */
  int has_file;               /* a file with this seq exists (or existed) */
  int fd;                     /* open file, -1 when closed */
  struct sl_archive_idx idx;  /* committed state of the open file */
  uint64_t skip_id;           /* records <= skip_id (and skip_ns) are in */
  int64_t skip_ns;
  uint64_t last_use_ms;
  /* this job */
  uint64_t gen;
  struct sl_buf raw;          /* NDJSON of this job's events */
  uint64_t *jids;             /* their id hashes, remembered at commit */
  size_t njids, jids_cap;
  uint64_t jcount, jlast_id;
  int64_t jmin, jmax, jlast_ns;
  int created;                /* the job made the file */
  int written;                /* data written and fsync'ed */
};

enum job_kind { JOB_WRITE, JOB_RETENTION };

struct sl_archive {
  uv_loop_t *loop;
  char *root;
  uint64_t keep_ms, max_total, max_file;
  struct sl_list streams;
  struct sl_list queue;       /* struct arec, in submit (= id) order */
  uint64_t queued_bytes;      /* queue plus the running job */
  struct sl_gzip gz;          /* the worker's; one job at a time */
  struct idset ids;           /* event ids archived lately */

  /* the running job */
  int busy;
  enum job_kind kind;
  uv_work_t work;
  struct sl_list jrecs;       /* records of a write job */
  uint64_t gen;
  int jrc;
  const char *jwhat;          /* what failed */
  uint64_t j_events, j_skipped, j_dups, j_bytes, j_created, j_closed;
  uint64_t j_files, j_total, j_del_files, j_del_bytes;

  uv_timer_t ret_timer, retry_timer;
  int want_retention, retry_wait, failing;
  uint64_t backoff_ms;
  int closing, handles;
  void (*close_cb)(void *arg);
  void *close_arg;

  /* metrics (loop thread) */
  uint64_t files, bytes, open_files;
  uint64_t events_written, events_skipped, events_dup, records_written,
    bytes_written;
  uint64_t files_created, deleted_files, deleted_bytes, errors;
  uint64_t retention_runs;
};

static struct stream *
stream_get(struct sl_archive *a, const char *ds, size_t dslen, int64_t hour)
{
  struct sl_list *it, *tmp;
  struct stream *s;

  /* Most used first: a record's events usually share one dataset-hour. */
  sl_list_foreach(it, tmp, &a->streams) {
    s = sl_container_of(it, struct stream, node);
    if (s->hour == hour && strlen(s->ds) == dslen &&
        memcmp(s->ds, ds, dslen) == 0) {
      if (it != sl_list_first(&a->streams)) {
        sl_list_remove(it);
        sl_list_insert_head(&a->streams, it);
      }
      return s;
    }
  }
  s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->ds = malloc(dslen + 1);
  if (s->ds == NULL) {
    free(s);
    return NULL;
  }
  memcpy(s->ds, ds, dslen);
  s->ds[dslen] = '\0';
  s->hour = hour;
  s->fd = -1;
  sl_buf_init(&s->raw, 0);
  sl_list_insert_head(&a->streams, &s->node);
  return s;
}

static int
stream_path(const struct sl_archive *a, const struct stream *s,
            const char *suffix, struct sl_buf *out)
{
  int rc = sl_buf_printf(out, "%s/", a->root);

  if (!rc)
    rc = sl_archive_rel_path(s->ds, s->hour, s->seq, out);
  if (!rc && suffix)
    rc = sl_buf_append_str(out, suffix);
  return rc;
}

static void
stream_close_fd(struct sl_archive *a, struct stream *s)
{
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
    a->j_closed++;
  }
}

/* ---- recovery (at open, on the loop thread before anything runs) -------- */

static int
recover_one(void *arg, const char *full, const char *rel,
            const struct stat *st)
{
  struct sl_archive *a = arg;
  struct sl_archive_idx x;
  struct stream *s;
  char ds[128];
  int64_t hour;
  uint32_t seq;
  size_t n = strlen(rel);

  if (n > 4 && strcmp(rel + n - 4, ".tmp") == 0) {
    unlink(full); /* an unfinished sidecar replacement */
    return 0;
  }
  if (sl_archive_parse_rel(rel, ds, sizeof ds, &hour, &seq) != 0)
    return 0;
  if (read_idx(full, &x) != 0) {
    sl_log(SL_LOG_WARN, COMP, "data file without a valid index: never "
           "committed, removed (its records come again from the spool)",
           SL_LF_STR, "path", full, SL_LF_INT, "bytes",
           (int64_t)st->st_size, SL_LF_END);
    unlink(full);
    return 0;
  }
  if ((uint64_t)st->st_size > x.bytes) {
    sl_log(SL_LOG_WARN, COMP, "cutting an uncommitted tail", SL_LF_STR,
           "path", full, SL_LF_INT, "bytes", (int64_t)st->st_size,
           SL_LF_INT, "committed", (int64_t)x.bytes, SL_LF_END);
    if (truncate(full, (off_t)x.bytes) != 0)
      return -errno;
  } else if ((uint64_t)st->st_size < x.bytes) {
    sl_log(SL_LOG_WARN, COMP, "data file shorter than its index",
           SL_LF_STR, "path", full, SL_LF_END);
  }
  s = stream_get(a, ds, strlen(ds), hour);
  if (s == NULL)
    return SL_ENOMEM;
  if (!s->has_file || seq > s->seq)
    s->seq = seq;
  s->has_file = 1;
  if (x.last_record > s->skip_id) {
    s->skip_id = x.last_record;
    s->skip_ns = x.last_record_ns;
  }
  a->files++;
  a->bytes += x.bytes;
  return 0;
}

/* A sidecar whose data file is gone (retention removes the sidecar
 * first, so only a foreign hand leaves one). */
static int
orphan_one(void *arg, const char *full, const char *rel,
           const struct stat *st)
{
  size_t n = strlen(rel), k = strlen(".idx.json");
  char data[PATH_MAX];

  (void)arg;
  (void)st;
  if (n <= k || strcmp(rel + n - k, ".idx.json") != 0 ||
      strlen(full) - k >= sizeof data)
    return 0;
  memcpy(data, full, strlen(full) - k);
  data[strlen(full) - k] = '\0';
  if (access(data, F_OK) != 0 && errno == ENOENT)
    unlink(full);
  return 0;
}

struct reload {
  struct sl_archive *a;
  struct rl_file {
    char *path;
    time_t mtime;
    uint64_t off, len;        /* tail to read */
  } *v;
  size_t n, cap;
};

/* Recent files (after recovery cut them to their committed length). */
static int
reload_one(void *arg, const char *full, const char *rel,
           const struct stat *st)
{
  struct reload *r = arg;
  struct sl_archive_idx x;
  char ds[128];
  int64_t hour;
  uint32_t seq;

  if (sl_archive_parse_rel(rel, ds, sizeof ds, &hour, &seq) != 0 ||
      st->st_mtime < time(NULL) - RELOAD_RECENT_S || read_idx(full, &x) != 0)
    return 0;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    void *v = realloc(r->v, cap * sizeof *r->v);

    if (v == NULL)
      return SL_ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n].path = sl_strdup(full);
  if (r->v[r->n].path == NULL)
    return SL_ENOMEM;
  r->v[r->n].mtime = st->st_mtime;
  r->v[r->n].off = x.tail_off;
  r->v[r->n].len = x.bytes - x.tail_off;
  r->n++;
  return 0;
}

static int
rl_newest_first(const void *x, const void *y)
{
  const struct rl_file *a = x, *b = y;

  return a->mtime > b->mtime ? -1 : a->mtime < b->mtime;
}

static void
reload_ids(struct sl_archive *a)
{
  struct sl_archive_reader *rd = malloc(sizeof *rd);
  struct reload r;
  struct sl_buf ds;
  uint64_t budget = RELOAD_MAX_BYTES, h;
  const char *line;
  size_t i, k, len;
  int64_t ts;

  memset(&r, 0, sizeof r);
  r.a = a;
  sl_buf_init(&ds, 0);
  if (rd == NULL || walk(a->root, reload_one, &r) != 0)
    goto out;
  if (r.n)
    qsort(r.v, r.n, sizeof *r.v, rl_newest_first);
  for (k = 0; k < r.n && r.v[k].len <= budget; k++)
    budget -= r.v[k].len;
  /* Oldest of those first: the id set keeps the last ids added. */
  for (i = k; i-- > 0;) {
    if (sl_archive_reader_open_at(rd, r.v[i].path, r.v[i].off) != 0)
      continue;
    while (sl_archive_reader_next(rd, &line, &len) == 1) {
      sl_buf_reset(&ds);
      if (sl_archive_event_key(line, len, 0, &ds, &ts, &h) == 0)
        idset_add(&a->ids, h);
    }
    sl_archive_reader_close(rd);
  }
out:
  for (i = 0; i < r.n; i++)
    free(r.v[i].path);
  free(r.v);
  free(rd);
  sl_buf_free(&ds);
}

/* ---- write job (threadpool) --------------------------------------------- */

static void
rollback(struct sl_archive *a, struct stream **t, size_t nt)
{
  struct sl_buf p;
  size_t i;

  sl_buf_init(&p, 0);
  for (i = 0; i < nt; i++) {
    struct stream *s = t[i];

    if (s->created) {
      /* Nothing committed in it: remove it; the next try takes seq + 1. */
      sl_buf_reset(&p);
      if (stream_path(a, s, NULL, &p) == 0)
        unlink(p.p);
      stream_close_fd(a, s);
      memset(&s->idx, 0, sizeof s->idx);
    } else if (s->fd >= 0 && ftruncate(s->fd, (off_t)s->idx.bytes) != 0) {
      /* The tail stays beyond the committed length; the next open cuts
       * it, and we never write behind it. */
      stream_close_fd(a, s);
    }
    s->created = s->written = 0;
  }
  sl_buf_free(&p);
}

static int
fsync_dirs(const struct sl_archive *a, const struct stream *s)
{
  struct sl_buf p;
  size_t root_len = strlen(a->root);
  int rc;

  sl_buf_init(&p, 0);
  rc = stream_path(a, s, NULL, &p);
  /* DD, MM, YYYY, dataset and the root: any of them may be new. */
  while (rc == 0) {
    char *sl = strrchr(p.p, '/');

    if (sl == NULL || (size_t)(sl - p.p) < root_len)
      break;
    *sl = '\0';
    p.len = (size_t)(sl - p.p);
    rc = sl_fs_fsync_dir(p.p);
  }
  sl_buf_free(&p);
  return rc;
}

static int
open_file(struct sl_archive *a, struct stream *s)
{
  struct sl_buf p;
  char *sl;
  int rc;

  if (s->has_file)
    s->seq++;
  sl_buf_init(&p, 0);
  rc = stream_path(a, s, NULL, &p);
  if (rc)
    goto out;
  sl = strrchr(p.p, '/');
  *sl = '\0';
  rc = sl_fs_mkdir_p(p.p);
  *sl = '/';
  if (rc)
    goto out;
  s->fd = open(p.p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (s->fd < 0) {
    rc = -errno;
    goto out;
  }
  s->has_file = 1;
  s->created = 1;
  memset(&s->idx, 0, sizeof s->idx);
  a->j_created++;
out:
  sl_buf_free(&p);
  return rc;
}

/* Compress the job's events of s in members and append them. */
static int
write_stream(struct sl_archive *a, struct stream *s, struct sl_buf *z)
{
  size_t off = 0;
  int rc = 0;

  if (s->fd >= 0 && s->idx.bytes >= a->max_file)
    stream_close_fd(a, s);
  if (s->fd < 0) {
    rc = open_file(a, s);
    if (rc) {
      a->jwhat = "open";
      return rc;
    }
  }
  sl_buf_reset(z);
  while (rc == 0 && off < s->raw.len) {
    size_t n = s->raw.len - off;

    if (n > MEMBER_RAW_MAX) {
      const char *nl = memchr(s->raw.p + off + MEMBER_RAW_MAX - 1, '\n',
                              n - MEMBER_RAW_MAX + 1);

      n = nl ? (size_t)(nl + 1 - (s->raw.p + off)) : n;
    }
    rc = sl_gzip_append(&a->gz, s->raw.p + off, n, z);
    off += n;
  }
  if (rc) {
    a->jwhat = "gzip";
    return rc;
  }
  rc = sl_fs_pwrite_all(s->fd, z->p, z->len, s->idx.bytes);
  if (rc) {
    a->jwhat = "write";
    return rc;
  }
  if (fsync(s->fd) != 0) {
    a->jwhat = "fsync";
    return errno == EDQUOT ? SL_ENOSPC : -errno;
  }
  if (s->created) {
    rc = fsync_dirs(a, s);
    if (rc) {
      a->jwhat = "fsync dir";
      return rc;
    }
  }
  a->j_bytes += z->len;
  s->written = 1;
  return 0;
}

/* Make s's job part committed: the new sidecar, then the memory. */
static int
commit_stream(struct sl_archive *a, struct stream *s, uint64_t zlen,
              struct sl_buf *tmp)
{
  struct sl_archive_idx x = s->idx;
  int rc;

  if (x.count == 0) {
    x.min_ns = s->jmin;
    x.max_ns = s->jmax;
  } else {
    x.min_ns = s->jmin < x.min_ns ? s->jmin : x.min_ns;
    x.max_ns = s->jmax > x.max_ns ? s->jmax : x.max_ns;
  }
  x.count += s->jcount;
  if (x.bytes - x.tail_off > RELOAD_TAIL_BYTES)
    x.tail_off = x.bytes; /* this batch's first member */
  x.bytes += zlen;
  x.last_record = s->jlast_id;
  x.last_record_ns = s->jlast_ns;
  sl_buf_reset(tmp);
  rc = stream_path(a, s, ".idx.json", tmp);
  if (!rc) {
    struct sl_buf body;

    sl_buf_init(&body, 0);
    rc = sl_archive_idx_encode(&x, &body);
    if (!rc)
      rc = sl_fs_write_atomic(tmp->p, body.p, body.len, 0640);
    sl_buf_free(&body);
  }
  if (rc) {
    a->jwhat = "index";
    return rc;
  }
  s->idx = x;
  for (size_t i = 0; i < s->njids; i++)
    idset_add(&a->ids, s->jids[i]);
  s->njids = 0;
  s->skip_id = s->jlast_id;
  s->skip_ns = s->jlast_ns;
  s->created = s->written = 0;
  a->j_events += s->jcount;
  return 0;
}

static void
close_idle(struct sl_archive *a, uint64_t now_ms)
{
  struct sl_list *it, *tmp;
  uint64_t open = 0;

  /* streams are in most-recently-used order */
  sl_list_foreach(it, tmp, &a->streams) {
    struct stream *s = sl_container_of(it, struct stream, node);

    if (s->fd < 0)
      continue;
    if (open >= OPEN_MAX || now_ms - s->last_use_ms > IDLE_CLOSE_MS)
      stream_close_fd(a, s);
    else
      open++;
  }
}

static void
job_write(struct sl_archive *a)
{
  struct stream **touched = NULL, *s = NULL;
  size_t nt = 0, cap = 0, i, lines = 0, jcap = 1;
  uint64_t *jt;
  struct sl_buf ds, z;
  struct sl_list *it, *tmp;
  uint64_t now_ms = sl_time_mono_ms();
  int rc = 0;

  sl_buf_init(&ds, 0);
  sl_buf_init(&z, 0);
  a->gen++;
  /* This batch's ids, so that a re-sent window and its first copy in the
   * same batch are written once; they join a->ids only when committed. */
  sl_list_foreach(it, tmp, &a->jrecs) {
    struct arec *r = sl_container_of(it, struct arec, node);

    for (i = 0; i < r->len; i++)
      lines += r->data[i] == '\n';
    lines++;
  }
  while (jcap < lines * 2)
    jcap <<= 1;
  jt = calloc(jcap, sizeof *jt);
  if (jt == NULL)
    rc = SL_ENOMEM;
  sl_list_foreach(it, tmp, &a->jrecs) {
    struct arec *r = sl_container_of(it, struct arec, node);
    size_t pos = 0;

    while (rc == 0 && pos < r->len) {
      const char *line = r->data + pos, *nl;
      size_t n;
      int64_t ts;
      uint64_t idh;

      nl = memchr(line, '\n', r->len - pos);
      n = nl ? (size_t)(nl - line) : r->len - pos;
      pos += n + (nl != NULL);
      if (n && line[n - 1] == '\r')
        n--;
      if (n == 0)
        continue;
      sl_buf_reset(&ds);
      rc = sl_archive_event_key(line, n, r->append_ns, &ds, &ts, &idh);
      if (rc)
        break;
      if (s == NULL || s->hour != floor_div(ts, NS_PER_HOUR) ||
          strcmp(s->ds, ds.p) != 0)
        s = stream_get(a, ds.p, ds.len, floor_div(ts, NS_PER_HOUR));
      if (s == NULL) {
        rc = SL_ENOMEM;
        break;
      }
      if (r->id <= s->skip_id && r->append_ns <= s->skip_ns) {
        a->j_skipped++; /* written before a restart or a failed batch */
        continue;
      }
      /* A sender re-sends a window it got no ack for: a new record with
       * events already archived (from the spool's copy, or before a
       * crash). The indexer's create + _id drops them; so do we. */
      if (idh && (idset_has(&a->ids, idh) || !table_add(jt, jcap, idh))) {
        a->j_dups++;
        continue;
      }
      if (s->gen != a->gen) {
        if (nt == cap) {
          size_t nc = cap ? cap * 2 : 16;
          void *v = realloc(touched, nc * sizeof *touched);

          if (v == NULL) {
            rc = SL_ENOMEM;
            break;
          }
          touched = v;
          cap = nc;
        }
        touched[nt++] = s;
        s->gen = a->gen;
        s->njids = 0;
        sl_buf_reset(&s->raw);
        s->jcount = 0;
        s->jmin = s->jmax = ts;
      }
      if (idh && s->njids == s->jids_cap) {
        size_t nc = s->jids_cap ? s->jids_cap * 2 : 256;
        void *v = realloc(s->jids, nc * sizeof *s->jids);

        if (v == NULL) {
          rc = SL_ENOMEM;
          break;
        }
        s->jids = v;
        s->jids_cap = nc;
      }
      if (idh)
        s->jids[s->njids++] = idh;
      rc = sl_buf_append(&s->raw, line, n);
      if (!rc)
        rc = sl_buf_append_byte(&s->raw, '\n');
      s->jcount++;
      s->jmin = ts < s->jmin ? ts : s->jmin;
      s->jmax = ts > s->jmax ? ts : s->jmax;
      s->jlast_id = r->id;
      s->jlast_ns = r->append_ns;
      s->last_use_ms = now_ms;
    }
    if (rc)
      break;
  }
  if (rc)
    a->jwhat = "prepare";
  /* Every file's data first, then every sidecar: a failure before the
   * sidecars leaves nothing committed that the retry would repeat, and a
   * failure among them is covered by skip_id of those already done. */
  {
    uint64_t *zlen = calloc(nt ? nt : 1, sizeof *zlen);

    if (zlen == NULL && rc == 0)
      rc = SL_ENOMEM;
    for (i = 0; rc == 0 && i < nt; i++) {
      uint64_t before = a->j_bytes;

      rc = write_stream(a, touched[i], &z);
      if (zlen)
        zlen[i] = a->j_bytes - before;
    }
    for (i = 0; rc == 0 && i < nt; i++)
      rc = commit_stream(a, touched[i], zlen[i], &z);
    free(zlen);
  }
  if (rc)
    rollback(a, touched, nt);
  for (i = 0; i < nt; i++) {
    sl_buf_free(&touched[i]->raw);
    sl_buf_init(&touched[i]->raw, 0);
    free(touched[i]->jids);
    touched[i]->jids = NULL;
    touched[i]->njids = touched[i]->jids_cap = 0;
  }
  free(jt);
  close_idle(a, now_ms);
  free(touched);
  sl_buf_free(&ds);
  sl_buf_free(&z);
  a->jrc = rc;
}

/* ---- retention job (threadpool) ----------------------------------------- */

struct rfile {
  char *path;
  char ds[128];
  int64_t hour;
  uint32_t seq;
  uint64_t bytes;             /* data and sidecar */
};

struct rctx {
  struct sl_archive *a;
  struct rfile *v;
  size_t n, cap;
};

static int
ret_one(void *arg, const char *full, const char *rel, const struct stat *st)
{
  struct rctx *r = arg;
  struct rfile *f;
  struct stat is;
  char idx[PATH_MAX];

  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 256;
    void *v = realloc(r->v, cap * sizeof *r->v);

    if (v == NULL)
      return SL_ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  f = &r->v[r->n];
  if (sl_archive_parse_rel(rel, f->ds, sizeof f->ds, &f->hour, &f->seq))
    return 0;
  f->bytes = (uint64_t)st->st_size;
  if ((size_t)snprintf(idx, sizeof idx, "%s.idx.json", full) < sizeof idx &&
      stat(idx, &is) == 0)
    f->bytes += (uint64_t)is.st_size;
  f->path = sl_strdup(full);
  if (f->path == NULL)
    return SL_ENOMEM;
  r->n++;
  return 0;
}

static int
rfile_cmp(const void *x, const void *y)
{
  const struct rfile *a = x, *b = y;

  if (a->hour != b->hour)
    return a->hour < b->hour ? -1 : 1;
  if (a->seq != b->seq)
    return a->seq < b->seq ? -1 : 1;
  return strcmp(a->ds, b->ds);
}

static int
is_open(struct sl_archive *a, const struct rfile *f)
{
  struct sl_list *it, *tmp;

  sl_list_foreach(it, tmp, &a->streams) {
    struct stream *s = sl_container_of(it, struct stream, node);

    if (s->fd >= 0 && s->hour == f->hour && s->seq == f->seq &&
        strcmp(s->ds, f->ds) == 0)
      return 1;
  }
  return 0;
}

/* Remove the sidecar first: a data file without one is deleted at the
 * next open anyway, a sidecar without data would be a foreign leftover. */
static void
remove_file(struct sl_archive *a, struct rfile *f)
{
  char idx[PATH_MAX];
  size_t root_len = strlen(a->root);
  char *sl;

  if ((size_t)snprintf(idx, sizeof idx, "%s.idx.json", f->path) <
      sizeof idx)
    unlink(idx);
  if (unlink(f->path) != 0 && errno != ENOENT)
    return;
  a->j_del_files++;
  a->j_del_bytes += f->bytes;
  /* Empty DD, MM, YYYY and dataset directories go too. */
  while ((sl = strrchr(f->path, '/')) != NULL &&
         (size_t)(sl - f->path) > root_len) {
    *sl = '\0';
    if (rmdir(f->path) != 0)
      break;
  }
}

static void
job_retention(struct sl_archive *a)
{
  struct rctx r;
  int64_t now_ns = sl_time_now_ns();
  uint64_t total = 0;
  size_t i;
  int rc;

  memset(&r, 0, sizeof r);
  r.a = a;
  rc = walk(a->root, ret_one, &r);
  if (rc == 0 && r.n)
    qsort(r.v, r.n, sizeof *r.v, rfile_cmp);
  for (i = 0; i < r.n; i++)
    total += r.v[i].bytes;
  a->j_files = r.n;
  for (i = 0; rc == 0 && i < r.n; i++) {
    struct rfile *f = &r.v[i];
    int old = a->keep_ms &&
              (f->hour + 1) * NS_PER_HOUR + (int64_t)a->keep_ms * 1000000 <=
                  now_ns;
    int big = a->max_total && total > a->max_total;

    if ((!old && !big) || is_open(a, f))
      continue;
    remove_file(a, f);
    total -= f->bytes;
    a->j_files--;
  }
  a->j_total = total;
  for (i = 0; i < r.n; i++)
    free(r.v[i].path);
  free(r.v);
  a->jrc = rc;
  if (rc)
    a->jwhat = "retention";
}

/* ---- scheduling (loop thread) ------------------------------------------- */

static void schedule(struct sl_archive *a);

static void
on_work(uv_work_t *w)
{
  struct sl_archive *a = w->data;

  if (a->kind == JOB_WRITE)
    job_write(a);
  else
    job_retention(a);
}

static void
free_arec(struct arec *r)
{
  free(r->data);
  free(r);
}

static void
on_retry(uv_timer_t *t)
{
  struct sl_archive *a = t->data;

  a->retry_wait = 0;
  schedule(a);
}

static void
after_write(struct sl_archive *a)
{
  struct sl_list done;
  struct sl_list *it;

  a->events_written += a->j_events;
  a->events_skipped += a->j_skipped;
  a->events_dup += a->j_dups;
  a->bytes_written += a->j_bytes;
  a->bytes += a->j_bytes;
  a->files_created += a->j_created;
  a->files += a->j_created;
  if (a->j_closed)
    a->want_retention = 1;
  if (a->jrc) {
    /* Not written: back to the front of the queue, in order. */
    while (!sl_list_empty(&a->jrecs)) {
      it = sl_list_last(&a->jrecs);
      sl_list_remove(it);
      sl_list_insert_head(&a->queue, it);
    }
    a->errors++;
    if (!a->failing)
      sl_log(SL_LOG_ERROR, COMP, "archive write failed; retrying (intake "
             "stops when the spool fills)", SL_LF_STR, "step", a->jwhat,
             SL_LF_ERR, a->jrc, SL_LF_END);
    a->failing = 1;
    a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : RETRY_MIN_MS;
    if (a->backoff_ms > RETRY_MAX_MS)
      a->backoff_ms = RETRY_MAX_MS;
    if (!a->closing) {
      a->retry_wait = 1;
      uv_timer_start(&a->retry_timer, on_retry, a->backoff_ms, 0);
    }
    return;
  }
  if (a->failing)
    sl_log(SL_LOG_INFO, COMP, "archive writes again", SL_LF_END);
  a->failing = 0;
  a->backoff_ms = 0;
  sl_list_init(&done);
  while (!sl_list_empty(&a->jrecs)) {
    it = sl_list_first(&a->jrecs);
    sl_list_remove(it);
    sl_list_insert_tail(&done, it);
  }
  while (!sl_list_empty(&done)) {
    struct arec *r;

    it = sl_list_first(&done);
    sl_list_remove(it);
    r = sl_container_of(it, struct arec, node);
    a->queued_bytes -= r->len;
    a->records_written++;
    if (r->cb)
      r->cb(r->arg, r->id);
    free_arec(r);
  }
}

static void
count_open(struct sl_archive *a)
{
  struct sl_list *it, *tmp;

  a->open_files = 0;
  sl_list_foreach(it, tmp, &a->streams) {
    if (sl_container_of(it, struct stream, node)->fd >= 0)
      a->open_files++;
  }
}

static void
after_work(uv_work_t *w, int status)
{
  struct sl_archive *a = w->data;

  (void)status;
  a->busy = 0;
  if (a->kind == JOB_WRITE) {
    after_write(a);
  } else {
    a->retention_runs++;
    a->files = a->j_files;
    a->bytes = a->j_total;
    a->deleted_files += a->j_del_files;
    a->deleted_bytes += a->j_del_bytes;
    if (a->j_del_files)
      sl_log(SL_LOG_INFO, COMP, "retention deleted files", SL_LF_INT,
             "files", (int64_t)a->j_del_files, SL_LF_INT, "bytes",
             (int64_t)a->j_del_bytes, SL_LF_END);
    if (a->jrc) {
      a->errors++;
      sl_log(SL_LOG_ERROR, COMP, "retention pass failed", SL_LF_ERR, a->jrc,
             SL_LF_END);
    }
  }
  count_open(a);
  schedule(a);
}

static void
on_handle_closed(uv_handle_t *h)
{
  struct sl_archive *a = h->data;
  struct sl_list *it;

  if (--a->handles > 0)
    return;
  while (!sl_list_empty(&a->streams)) {
    struct stream *s;

    it = sl_list_first(&a->streams);
    sl_list_remove(it);
    s = sl_container_of(it, struct stream, node);
    if (s->fd >= 0)
      close(s->fd);
    sl_buf_free(&s->raw);
    free(s->ds);
    free(s);
  }
  while (!sl_list_empty(&a->queue)) {
    it = sl_list_first(&a->queue);
    sl_list_remove(it);
    free_arec(sl_container_of(it, struct arec, node));
  }
  sl_gzip_end(&a->gz);
  idset_free(&a->ids);
  if (a->close_cb)
    a->close_cb(a->close_arg);
  free(a->root);
  free(a);
}

static void
start_job(struct sl_archive *a, enum job_kind k)
{
  a->busy = 1;
  a->kind = k;
  a->jrc = 0;
  a->jwhat = NULL;
  a->j_events = a->j_skipped = a->j_dups = a->j_bytes = a->j_created = 0;
  a->j_closed = 0;
  a->j_files = a->j_total = a->j_del_files = a->j_del_bytes = 0;
  a->work.data = a;
  if (uv_queue_work(a->loop, &a->work, on_work, after_work) != 0) {
    a->busy = 0;
    sl_log(SL_LOG_ERROR, COMP, "cannot queue archive work", SL_LF_END);
  }
}

static void
schedule(struct sl_archive *a)
{
  uint64_t bytes = 0;

  if (a->busy || a->handles == 0)
    return;
  if (a->closing) {
    if (!sl_list_empty(&a->queue) && !a->failing)
      goto write;
    uv_timer_stop(&a->retry_timer);
    uv_close((uv_handle_t *)&a->ret_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->retry_timer, on_handle_closed);
    a->busy = 1;              /* no more jobs */
    return;
  }
  if (a->want_retention) {
    a->want_retention = 0;
    start_job(a, JOB_RETENTION);
    return;
  }
  if (a->retry_wait || sl_list_empty(&a->queue))
    return;
write:
  sl_list_init(&a->jrecs);
  while (!sl_list_empty(&a->queue) && bytes < JOB_MAX_BYTES) {
    struct sl_list *it = sl_list_first(&a->queue);

    sl_list_remove(it);
    sl_list_insert_tail(&a->jrecs, it);
    bytes += sl_container_of(it, struct arec, node)->len;
  }
  start_job(a, JOB_WRITE);
}

static void
on_ret_timer(uv_timer_t *t)
{
  struct sl_archive *a = t->data;

  a->want_retention = 1;
  schedule(a);
}

int
sl_archive_open(uv_loop_t *loop, const struct sl_archive_conf *conf,
                struct sl_archive **out, char *err, size_t errlen)
{
  struct sl_archive *a;
  int rc;

  *out = NULL;
  if (conf->path == NULL || conf->path[0] == '\0') {
    snprintf(err, errlen, "archive.path: required");
    return SL_ECONFIG;
  }
  a = calloc(1, sizeof *a);
  if (a == NULL)
    return SL_ENOMEM;
  a->loop = loop;
  a->root = sl_strdup(conf->path);
  a->keep_ms = conf->keep_ms;
  a->max_total = conf->max_total_bytes;
  a->max_file = conf->max_file_bytes ? conf->max_file_bytes : 256u << 20;
  sl_list_init(&a->streams);
  sl_list_init(&a->queue);
  sl_list_init(&a->jrecs);
  /* Level 1: most of gzip's gain for little CPU, as for _bulk bodies. */
  sl_gzip_init(&a->gz, 1);
  rc = a->root ? sl_fs_mkdir_p(a->root) : SL_ENOMEM;
  if (rc == 0)
    rc = walk(a->root, orphan_one, a);
  if (rc == 0)
    rc = idset_init(&a->ids, IDS_GEN);
  if (rc == 0)
    rc = walk(a->root, recover_one, a);
  if (rc == 0)
    reload_ids(a); /* best effort: a guard against re-sends */
  if (rc) {
    snprintf(err, errlen, "archive %s: %s", conf->path, sl_strerror(rc));
    goto fail;
  }
  uv_timer_init(loop, &a->ret_timer);
  uv_timer_init(loop, &a->retry_timer);
  a->ret_timer.data = a->retry_timer.data = a;
  a->handles = 2;
  uv_timer_start(&a->ret_timer, on_ret_timer, RETENTION_EVERY_MS,
                 RETENTION_EVERY_MS);
  sl_log(SL_LOG_INFO, COMP, "archive opened", SL_LF_STR, "path", a->root,
         SL_LF_INT, "files", (int64_t)a->files, SL_LF_INT, "bytes",
         (int64_t)a->bytes, SL_LF_END);
  a->want_retention = 1;
  schedule(a);
  *out = a;
  return 0;
fail:
  sl_gzip_end(&a->gz);
  idset_free(&a->ids);
  while (!sl_list_empty(&a->streams)) {
    struct sl_list *it = sl_list_first(&a->streams);
    struct stream *s = sl_container_of(it, struct stream, node);

    sl_list_remove(it);
    free(s->ds);
    free(s);
  }
  free(a->root);
  free(a);
  return rc;
}

int
sl_archive_submit(struct sl_archive *a, const struct sl_spool_rec *rec,
                  sl_archive_done_cb cb, void *arg)
{
  struct arec *r;

  if (a->closing)
    return SL_ECLOSED;
  if (a->queued_bytes >= SL_ARCHIVE_MAX_QUEUED)
    return SL_EAGAIN;
  r = calloc(1, sizeof *r);
  if (r == NULL)
    return SL_ENOMEM;
  r->data = malloc(rec->len ? rec->len : 1);
  if (r->data == NULL) {
    free(r);
    return SL_ENOMEM;
  }
  memcpy(r->data, rec->data, rec->len);
  r->len = rec->len;
  if (rec->version == 1)
    r->len = sl_bulk_v1_to_events(r->data, r->len, NULL, NULL);
  r->id = rec->id;
  r->append_ns = (int64_t)rec->append_ns;
  r->cb = cb;
  r->arg = arg;
  sl_list_insert_tail(&a->queue, &r->node);
  a->queued_bytes += r->len;
  schedule(a);
  return 0;
}

int
sl_archive_failing(const struct sl_archive *a)
{
  return a->failing;
}

int
sl_archive_metrics(const struct sl_archive *a, struct sl_buf *b)
{
  int rc = 0;

#define C(name, help, v) \
  if (rc == 0) rc = sl_prom_counter(b, name, help, NULL, (uint64_t)(v))
#define G(name, help, v) \
  if (rc == 0) rc = sl_prom_gauge(b, name, help, NULL, (double)(v))
  G("sluice_collector_archive_files",
    "Archive data files on disk.", a->files);
  G("sluice_collector_archive_bytes",
    "Archive bytes on disk (data and index).", a->bytes);
  G("sluice_collector_archive_open_files",
    "Archive files open for appending.", a->open_files);
  G("sluice_collector_archive_queued_bytes",
    "Event bytes waiting for the archive.", a->queued_bytes);
  G("sluice_collector_archive_failing",
    "1 while archive writes fail and are retried.", a->failing);
  C("sluice_collector_archive_events_written_total",
    "Events written to the archive.", a->events_written);
  C("sluice_collector_archive_events_skipped_total",
    "Re-delivered events already in the archive.", a->events_skipped);
  C("sluice_collector_archive_events_duplicate_total",
    "Re-sent events already in the archive (same event.id).", a->events_dup);
  C("sluice_collector_archive_records_written_total",
    "Spool records fully archived.", a->records_written);
  C("sluice_collector_archive_bytes_written_total",
    "Compressed bytes appended.", a->bytes_written);
  C("sluice_collector_archive_files_created_total",
    "Archive files created.", a->files_created);
  C("sluice_collector_archive_deleted_files_total",
    "Files removed by archive retention.", a->deleted_files);
  C("sluice_collector_archive_deleted_bytes_total",
    "Bytes removed by archive retention.", a->deleted_bytes);
  C("sluice_collector_archive_retention_runs_total",
    "Archive retention passes.", a->retention_runs);
  C("sluice_collector_archive_errors_total",
    "Failed archive batches and passes.", a->errors);
#undef C
#undef G
  return rc;
}

json_t *
sl_archive_state(const struct sl_archive *a)
{
  return json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:b,s:I,s:I,s:I}", "path",
                   a->root, "files", (json_int_t)a->files, "bytes",
                   (json_int_t)a->bytes, "open_files",
                   (json_int_t)a->open_files, "queued_bytes",
                   (json_int_t)a->queued_bytes, "failing", a->failing,
                   "busy", a->busy, "events_written",
                   (json_int_t)a->events_written, "errors",
                   (json_int_t)a->errors, "backoff_ms",
                   (json_int_t)a->backoff_ms);
}

void
sl_archive_close(struct sl_archive *a, void (*cb)(void *arg), void *arg)
{
  a->closing = 1;
  a->close_cb = cb;
  a->close_arg = arg;
  a->want_retention = 0;
  schedule(a);
}
