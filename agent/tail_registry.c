/* tail_registry.c - acknowledged offsets per file identity, persisted as
 * data_dir/registry.json (see tail_registry.h for format and rules). */
#include "tail_registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "sl_err.h"
#include "sl_fs.h"
#include "sl_hash.h"
#include "sl_log.h"

#define REG_VERSION 2
/* Refresh an idle entry's `updated` on disk at most this often: often enough
 * that the 24 h prune never drops a file that still exists, rarely enough
 * that idle files cause no steady stream of registry writes. */
#define TOUCH_PERSIST_MS (3600LL * 1000)

/* Lookups by inode, by fingerprint and by stream id go through hash
 * indexes: a first scan meets every file, and with a list that was
 * quadratic (20,000 files: seconds of CPU at start, bench/RESULTS.md).
 * The list stays for the file's order; `ord` (insertion number, the list
 * is newest first) orders entries with the same key the way a walk of the
 * list would. Without buckets (allocation failed) lookups walk the list. */
enum { IX_INO, IX_FP, IX_SID, IX_N };

struct sl_treg {
  struct sl_list entries;  /* struct sl_treg_entry, newest first */
  size_t count;
  struct sl_list *ix[IX_N];  /* nb buckets each, or NULL */
  size_t nb;               /* power of two, 0: no indexes */
  uint64_t ord;            /* last insertion number */
  bool dirty;
  char *dir;
  char *path;      /* dir/registry.json (written via registry.json.tmp) */
  uint64_t seq;    /* last snapshot number handed out */
  uv_mutex_t wlock;
  uint64_t written_seq;  /* under wlock */
};

static int64_t
wall_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
path_join(const char *dir, const char *name)
{
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);

  if (p)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void
entry_free(struct sl_treg_entry *e)
{
  if (!e)
    return;
  free(e->path);
  free(e);
}

static struct sl_treg_entry *
entry_new(const char *path)
{
  struct sl_treg_entry *e = calloc(1, sizeof(*e));

  if (!e)
    return NULL;
  e->path = strdup(path ? path : "");
  if (!e->path) {
    free(e);
    return NULL;
  }
  return e;
}

#define ENTRY(l) sl_container_of(l, struct sl_treg_entry, link)
#define IX_ENTRY(l, i) \
  sl_container_of((l) - (i), struct sl_treg_entry, ix_link[0])

/* Is e in index i (an entry without fingerprint is not in IX_FP, a
 * migrated one, whose ids keep the inode, not in IX_SID), and its key. */
static bool
ix_key(const struct sl_treg_entry *e, int i, uint64_t *h)
{
  uint64_t k[3] = { 0, 0, 0 };

  switch (i) {
  case IX_INO:
    k[0] = e->dev;
    k[1] = e->ino;
    break;
  case IX_FP:
    if (e->fp_len == 0)
      return false;
    k[0] = e->fp;
    k[1] = e->fp_off;
    k[2] = e->fp_len;
    break;
  default:
    if (e->id_dev || e->id_ino)
      return false;
    k[0] = e->sid;
    break;
  }
  *h = sl_hash64(k, sizeof(k));
  return true;
}

static void
ix_add(struct sl_treg *r, struct sl_treg_entry *e)
{
  uint64_t h;
  int i;

  for (i = 0; i < IX_N; i++) {
    if (r->nb && ix_key(e, i, &h))
      sl_list_insert_head(&r->ix[i][h & (r->nb - 1)], &e->ix_link[i]);
    else
      sl_list_init(&e->ix_link[i]);
  }
}

static void
ix_del(struct sl_treg_entry *e)
{
  int i;

  for (i = 0; i < IX_N; i++)
    sl_list_remove(&e->ix_link[i]);
}

static void
ix_free(struct sl_treg *r)
{
  int i;

  for (i = 0; i < IX_N; i++) {
    free(r->ix[i]);
    r->ix[i] = NULL;
  }
  r->nb = 0;
}

/* Twice the buckets, every entry indexed again: true. Out of memory
 * (false): the indexes stay as they are (longer chains), or none. */
static bool
ix_grow(struct sl_treg *r)
{
  struct sl_list *b[IX_N] = { NULL, NULL, NULL }, *l, *nx;
  size_t nb = r->nb ? r->nb * 2 : 64, j;
  int i;

  for (i = 0; i < IX_N; i++) {
    b[i] = malloc(nb * sizeof(*b[i]));
    if (b[i] == NULL) {
      while (i-- > 0)
        free(b[i]);
      return false;
    }
    for (j = 0; j < nb; j++)
      sl_list_init(&b[i][j]);
  }
  ix_free(r);
  for (i = 0; i < IX_N; i++)
    r->ix[i] = b[i];
  r->nb = nb;
  sl_list_foreach(l, nx, &r->entries)
    ix_add(r, ENTRY(l));
  return true;
}

/* A new entry, newest of all. */
static void
entry_link(struct sl_treg *r, struct sl_treg_entry *e)
{
  e->ord = ++r->ord;
  sl_list_insert_head(&r->entries, &e->link);
  r->count++;
  /* More entries than buckets: grow, which indexes e with the rest. */
  if (r->count <= r->nb || !ix_grow(r))
    ix_add(r, e);
}

static void
entry_unlink(struct sl_treg *r, struct sl_treg_entry *e)
{
  ix_del(e);
  sl_list_remove(&e->link);
  r->count--;
  entry_free(e);
}

/* The chain to walk for e's key in index i: a bucket, or NULL with no
 * indexes (walk the list instead). */
static struct sl_list *
ix_bucket(const struct sl_treg *r, int i, const struct sl_treg_entry *key)
{
  uint64_t h;

  if (r->nb == 0 || !ix_key(key, i, &h))
    return NULL;
  return &r->ix[i][h & (r->nb - 1)];
}

static int
parse_u64(json_t *o, const char *key, uint64_t *v)
{
  json_t *x = json_object_get(o, key);

  if (!json_is_integer(x))
    return SL_EINVAL;
  /* dev/ino/offset are stored as int64 bit patterns (jansson integers are
   * signed); the cast round-trips every uint64. */
  *v = (uint64_t)json_integer_value(x);
  return 0;
}

/* An optional integer: absent is 0. */
static int
parse_u64_opt(json_t *o, const char *key, uint64_t *v)
{
  *v = 0;
  return json_object_get(o, key) ? parse_u64(o, key, v) : 0;
}

static int
parse_hex(json_t *o, const char *key, uint64_t *v)
{
  const char *s = json_string_value(json_object_get(o, key));
  char *end;

  if (!s)
    return SL_EINVAL;
  errno = 0;
  *v = strtoull(s, &end, 16);
  return errno || *end || end == s ? SL_EINVAL : 0;
}

/* One entry of either version. Version 1 had one entry per dev+ino whose
 * fp covered the first fp_len <= 1 KiB bytes: that fp becomes sid and head,
 * the inode stays in the id (id_dev/id_ino) so the stream's events keep
 * their ids, and a full 1 KiB fp is also the fingerprint (the default
 * fingerprint.offset/length). */
static int
parse_entry(json_t *it, int version, struct sl_treg_entry *e)
{
  uint64_t v;

  if (parse_u64(it, "dev", &e->dev) || parse_u64(it, "ino", &e->ino) ||
      parse_u64(it, "offset", &e->offset) || parse_u64(it, "updated", &v))
    return SL_ECORRUPT;
  e->updated_ms = (int64_t)v;
  if (version == 1) {
    if (parse_hex(it, "fp", &e->head) || parse_u64(it, "fp_len", &v) ||
        v > SL_TREG_HEAD_MAX)
      return SL_ECORRUPT;
    e->head_len = (uint32_t)v;
    e->sid = e->head;
    e->id_dev = e->dev;
    e->id_ino = e->ino;
    if (e->head_len == SL_TREG_HEAD_MAX) {
      e->fp = e->head;
      e->fp_len = e->head_len;
    }
    return 0;
  }
  if (parse_hex(it, "sid", &e->sid) || parse_hex(it, "head", &e->head) ||
      parse_u64(it, "head_len", &v) || v > SL_TREG_HEAD_MAX)
    return SL_ECORRUPT;
  e->head_len = (uint32_t)v;
  if (parse_u64_opt(it, "id_dev", &e->id_dev) ||
      parse_u64_opt(it, "id_ino", &e->id_ino) ||
      parse_u64_opt(it, "fp_len", &v) || v > SL_TREG_FP_MAX)
    return SL_ECORRUPT;
  e->fp_len = (uint32_t)v;
  if (e->fp_len && (parse_hex(it, "fp", &e->fp) ||
                    parse_u64(it, "fp_off", &e->fp_off)))
    return SL_ECORRUPT;
  return 0;
}

/* Returns 0, SL_ECORRUPT for a structurally bad file, SL_ENOMEM. */
static int
load_json(struct sl_treg *r, json_t *root, int *version)
{
  json_t *arr, *it;
  size_t i;

  if (!json_is_object(root))
    return SL_ECORRUPT;
  it = json_object_get(root, "version");
  if (!json_is_integer(it) || json_integer_value(it) < 1 ||
      json_integer_value(it) > REG_VERSION)
    return SL_ECORRUPT;
  *version = (int)json_integer_value(it);
  arr = json_object_get(root, "entries");
  if (!json_is_array(arr))
    return SL_ECORRUPT;
  json_array_foreach(arr, i, it) {
    struct sl_treg_entry *e;
    const char *path = json_string_value(json_object_get(it, "path"));
    int rc;

    if (!path)
      return SL_ECORRUPT;
    e = entry_new(path);
    if (!e)
      return SL_ENOMEM;
    rc = parse_entry(it, *version, e);
    if (rc == 0 && *version == 1 && sl_treg_find(r, e->dev, e->ino))
      rc = SL_ECORRUPT;  /* duplicate key: version 1 never wrote that */
    if (rc) {
      entry_free(e);
      return rc;
    }
    entry_link(r, e);
  }
  return 0;
}

static void
clear_entries(struct sl_treg *r)
{
  struct sl_list *l;

  while ((l = sl_list_first(&r->entries)) != NULL) {
    sl_list_remove(l);
    entry_free(ENTRY(l));
  }
  r->count = 0;
  ix_free(r);
}

static void
move_aside(struct sl_treg *r, const char *why)
{
  char name[96];
  char *aside;

  snprintf(name, sizeof(name), "registry.json.corrupt-%" PRId64, wall_ms());
  aside = path_join(r->dir, name);
  if (aside && rename(r->path, aside) == 0) {
    sl_log(SL_LOG_ERROR, "tail", "registry corrupt, starting fresh",
           SL_LF_STR, "path", r->path, SL_LF_STR, "moved_to", aside,
           SL_LF_STR, "reason", why, SL_LF_END);
  } else {
    sl_log(SL_LOG_ERROR, "tail", "registry corrupt, starting fresh",
           SL_LF_STR, "path", r->path, SL_LF_STR, "reason", why,
           SL_LF_ERR, -errno, SL_LF_END);
  }
  free(aside);
}

int
sl_treg_open(const char *data_dir, struct sl_treg **out)
{
  struct sl_treg *r;
  json_error_t jerr;
  json_t *root;
  struct stat st;
  int rc, version = REG_VERSION;

  *out = NULL;
  if (!data_dir || !*data_dir)
    return SL_EINVAL;
  r = calloc(1, sizeof(*r));
  if (!r)
    return SL_ENOMEM;
  sl_list_init(&r->entries);
  r->dir = strdup(data_dir);
  r->path = path_join(data_dir, "registry.json");
  if (!r->dir || !r->path) {
    rc = SL_ENOMEM;
    goto fail_alloc;
  }
  if (uv_mutex_init(&r->wlock)) {
    rc = SL_ENOMEM;
    goto fail_alloc;
  }
  if (stat(r->path, &st) != 0) {
    if (errno != ENOENT) {
      rc = -errno;
      sl_log(SL_LOG_ERROR, "tail", "registry unreadable",
             SL_LF_STR, "path", r->path, SL_LF_ERR, rc, SL_LF_END);
      goto fail_mutex;
    }
    *out = r;
    return 0;
  }
  root = json_load_file(r->path, 0, &jerr);
  if (!root) {
    move_aside(r, jerr.text);
    *out = r;
    return 0;
  }
  rc = load_json(r, root, &version);
  json_decref(root);
  if (rc == SL_ECORRUPT) {
    clear_entries(r);
    move_aside(r, "unexpected structure");
  } else if (rc) {
    goto fail_entries;
  }
  if (version != REG_VERSION) {
    /* Written back in the new format at the next flush. */
    r->dirty = true;
    sl_log(SL_LOG_INFO, "tail", "registry migrated", SL_LF_STR, "path",
           r->path, SL_LF_INT, "from_version", (int64_t)version,
           SL_LF_INT, "to_version", (int64_t)REG_VERSION, SL_LF_END);
  }
  sl_log(SL_LOG_INFO, "tail", "registry loaded", SL_LF_STR, "path", r->path,
         SL_LF_INT, "entries", (int64_t)r->count, SL_LF_END);
  *out = r;
  return 0;

fail_entries:
  clear_entries(r);
fail_mutex:
  uv_mutex_destroy(&r->wlock);
fail_alloc:
  free(r->path);
  free(r->dir);
  free(r);
  return rc;
}

void
sl_treg_free(struct sl_treg *r)
{
  if (!r)
    return;
  clear_entries(r);
  uv_mutex_destroy(&r->wlock);
  free(r->path);
  free(r->dir);
  free(r);
}

/* The newest entry of index i whose key is `key`'s (same(e) true) and
 * whose ord is below `below`. */
static struct sl_treg_entry *
ix_find(struct sl_treg *r, int i, const struct sl_treg_entry *key,
        uint64_t below, bool (*same)(const struct sl_treg_entry *,
                                     const struct sl_treg_entry *))
{
  struct sl_list *h = ix_bucket(r, i, key), *l, *nx;
  struct sl_treg_entry *e, *best = NULL;

  if (h == NULL) {
    if (r->nb)
      return NULL; /* not a key of this index */
    sl_list_foreach(l, nx, &r->entries) {
      e = ENTRY(l);
      if (e->ord < below && same(e, key))
        return e;
    }
    return NULL;
  }
  sl_list_foreach(l, nx, h) {
    e = IX_ENTRY(l, i);
    if (e->ord < below && same(e, key) && (!best || e->ord > best->ord))
      best = e;
  }
  return best;
}

static bool
same_ino(const struct sl_treg_entry *e, const struct sl_treg_entry *k)
{
  return e->dev == k->dev && e->ino == k->ino;
}

static bool
same_fp(const struct sl_treg_entry *e, const struct sl_treg_entry *k)
{
  return e->fp_len && e->fp_len == k->fp_len && e->fp_off == k->fp_off &&
         e->fp == k->fp;
}

static bool
same_sid(const struct sl_treg_entry *e, const struct sl_treg_entry *k)
{
  return e->sid == k->sid && e->id_dev == 0 && e->id_ino == 0;
}

struct sl_treg_entry *
sl_treg_next_ino(struct sl_treg *r, struct sl_treg_entry *after,
                 uint64_t dev, uint64_t ino)
{
  struct sl_treg_entry k = { .dev = dev, .ino = ino };

  return ix_find(r, IX_INO, &k, after ? after->ord : UINT64_MAX, same_ino);
}

struct sl_treg_entry *
sl_treg_find(struct sl_treg *r, uint64_t dev, uint64_t ino)
{
  return sl_treg_next_ino(r, NULL, dev, ino);
}

struct sl_treg_entry *
sl_treg_find_fp(struct sl_treg *r, uint64_t fp_off, uint32_t fp_len,
                uint64_t fp)
{
  struct sl_treg_entry k = { .fp = fp, .fp_off = fp_off, .fp_len = fp_len };

  if (fp_len == 0)
    return NULL;
  return ix_find(r, IX_FP, &k, UINT64_MAX, same_fp);
}

bool
sl_treg_sid_used(const struct sl_treg *r, uint64_t sid)
{
  struct sl_treg_entry k = { .sid = sid };

  /* ix_find only reads the registry. */
  return ix_find((struct sl_treg *)r, IX_SID, &k, UINT64_MAX,
                 same_sid) != NULL;
}

struct sl_treg_entry *
sl_treg_add(struct sl_treg *r, const char *path, uint64_t dev, uint64_t ino)
{
  struct sl_treg_entry *e = entry_new(path);

  if (!e)
    return NULL;
  e->dev = dev;
  e->ino = ino;
  e->updated_ms = wall_ms();
  entry_link(r, e);
  r->dirty = true;
  return e;
}

int
sl_treg_set_path(struct sl_treg *r, struct sl_treg_entry *e,
                 const char *path)
{
  char *p;

  if (strcmp(e->path, path) == 0)
    return 0;
  p = strdup(path);
  if (!p)
    return SL_ENOMEM;
  free(e->path);
  e->path = p;
  r->dirty = true;
  return 0;
}

void
sl_treg_changed(struct sl_treg *r, struct sl_treg_entry *e)
{
  ix_del(e);
  ix_add(r, e);
  e->updated_ms = wall_ms();
  r->dirty = true;
}

void
sl_treg_set_offset(struct sl_treg *r, struct sl_treg_entry *e,
                   uint64_t offset)
{
  if (e->offset == offset)
    return;
  e->offset = offset;
  e->updated_ms = wall_ms();
  r->dirty = true;
}

void
sl_treg_touch(struct sl_treg *r, struct sl_treg_entry *e)
{
  int64_t now = wall_ms();

  if (now - e->updated_ms >= TOUCH_PERSIST_MS) {
    e->updated_ms = now;
    r->dirty = true;
  }
}

void
sl_treg_remove(struct sl_treg *r, struct sl_treg_entry *e)
{
  entry_unlink(r, e);
  r->dirty = true;
}

size_t
sl_treg_prune(struct sl_treg *r, int64_t max_age_ms)
{
  struct sl_list *l, *nx;
  struct sl_treg_entry *e;
  int64_t now = wall_ms();
  size_t n = 0;

  sl_list_foreach(l, nx, &r->entries) {
    e = ENTRY(l);
    if (e->refs == 0 && now - e->updated_ms > max_age_ms) {
      sl_log(SL_LOG_INFO, "tail", "registry entry pruned",
             SL_LF_STR, "path", e->path, SL_LF_INT, "offset",
             (int64_t)e->offset, SL_LF_END);
      entry_unlink(r, e);
      r->dirty = true;
      n++;
    }
  }
  return n;
}

size_t
sl_treg_clean(struct sl_treg *r,
              bool (*gone)(const struct sl_treg_entry *e, void *arg),
              void *arg)
{
  struct sl_list *l, *nx;
  struct sl_treg_entry *e;
  size_t n = 0;

  sl_list_foreach(l, nx, &r->entries) {
    e = ENTRY(l);
    if (e->refs == 0 && gone(e, arg)) {
      sl_log(SL_LOG_INFO, "tail", "registry entry cleaned",
             SL_LF_STR, "path", e->path, SL_LF_INT, "offset",
             (int64_t)e->offset, SL_LF_END);
      entry_unlink(r, e);
      r->dirty = true;
      n++;
    }
  }
  return n;
}

size_t
sl_treg_count(const struct sl_treg *r)
{
  return r->count;
}

bool
sl_treg_dirty(const struct sl_treg *r)
{
  return r->dirty;
}

void
sl_treg_mark_dirty(struct sl_treg *r)
{
  r->dirty = true;
}

const char *
sl_treg_path(const struct sl_treg *r)
{
  return r->path;
}

char *
sl_treg_serialize(struct sl_treg *r, uint64_t *seq)
{
  json_t *root, *arr, *o;
  struct sl_treg_entry *e;
  struct sl_list *l, *nx;
  char fp[17];
  char *s = NULL, *t;
  size_t n;

  root = json_object();
  arr = json_array();
  if (!root || !arr)
    goto done;
  if (json_object_set_new(root, "version", json_integer(REG_VERSION)) ||
      json_object_set(root, "entries", arr))
    goto done;
  sl_list_foreach(l, nx, &r->entries) {
    char sid[17], head[17];

    e = ENTRY(l);

    snprintf(sid, sizeof(sid), "%016" PRIx64, e->sid);
    snprintf(head, sizeof(head), "%016" PRIx64, e->head);
    o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:I, s:I, s:I}",
                  "path", e->path, "dev", (json_int_t)e->dev,
                  "ino", (json_int_t)e->ino, "sid", sid, "head", head,
                  "head_len", (json_int_t)e->head_len,
                  "offset", (json_int_t)e->offset,
                  "updated", (json_int_t)e->updated_ms);
    if (o && e->fp_len) {
      snprintf(fp, sizeof(fp), "%016" PRIx64, e->fp);
      if (json_object_set_new(o, "fp", json_string(fp)) ||
          json_object_set_new(o, "fp_off", json_integer(
                                (json_int_t)e->fp_off)) ||
          json_object_set_new(o, "fp_len", json_integer(
                                (json_int_t)e->fp_len)))
        goto fail_entry;
    }
    if (o && (e->id_dev || e->id_ino) &&
        (json_object_set_new(o, "id_dev", json_integer(
                               (json_int_t)e->id_dev)) ||
         json_object_set_new(o, "id_ino", json_integer(
                               (json_int_t)e->id_ino))))
      goto fail_entry;
    if (!o || json_array_append_new(arr, o))
      goto done;
    continue;
fail_entry:
    json_decref(o);
    goto done;
  }
  s = json_dumps(root, JSON_COMPACT);
  if (s) {
    /* One newline at the end, so the file is a proper text file. */
    n = strlen(s);
    t = realloc(s, n + 2);
    if (!t) {
      free(s);
      s = NULL;
      goto done;
    }
    s = t;
    s[n] = '\n';
    s[n + 1] = '\0';
    r->dirty = false;
    *seq = ++r->seq;
  }
done:
  json_decref(arr);
  json_decref(root);
  return s;
}

int
sl_treg_write(struct sl_treg *r, const char *json, uint64_t seq)
{
  int rc = 0;

  uv_mutex_lock(&r->wlock);
  if (seq > r->written_seq) {
    rc = sl_fs_write_atomic(r->path, json, strlen(json), 0600);
    if (!rc)
      r->written_seq = seq;
  }
  uv_mutex_unlock(&r->wlock);
  return rc;
}

int
sl_treg_save(struct sl_treg *r)
{
  uint64_t seq;
  char *s = sl_treg_serialize(r, &seq);
  int rc;

  if (!s)
    return SL_ENOMEM;
  rc = sl_treg_write(r, s, seq);
  free(s);
  if (rc) {
    r->dirty = true;
    sl_log(SL_LOG_ERROR, "tail", "registry write failed",
           SL_LF_STR, "path", r->path, SL_LF_ERR, rc, SL_LF_END);
  }
  return rc;
}
