/* tail_scan.c - discovery: glob scans of every input, inotify watches on
 * the directories they touch (uv_fs_event), rotation detection, and the
 * index of live files by identity and path (ownership: tail_internal.h).
 *
 * A scan runs at start, every scan_interval per input, and RESCAN_DELAY_MS
 * after a directory event. Directory events also open a new matching file
 * at once, because a fast writer may rotate it away before a scan runs.
 */
#include "tail_internal.h"

#include <fnmatch.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "sl_err.h"
#include "sl_list.h"
#include "sl_log.h"

/* Coalesce bursts of directory events into one rescan. */
#define RESCAN_DELAY_MS 20
/* Registry entries of files not seen for this long are dropped. */
#define PRUNE_AGE_MS (24LL * 3600 * 1000)

#define HNEXT(h, f) (*(struct tail_file **)((char *)(f) + (h)->next_off))
#define HKEY(h, f) (*(uint64_t *)((char *)(f) + (h)->key_off))

static void schedule_rescan(struct sl_tail *t);
static void dir_event_cb(uv_fs_event_t *h, const char *name, int events,
                         int status);

/* ---- live-file index -------------------------------------------------- */

int
sl__tail_htab_init(struct htab *h, size_t next_off, size_t key_off)
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

void
sl__tail_htab_add(struct htab *h, struct tail_file *f)
{
  size_t s;

  if (h->n >= h->nb)
    htab_grow(h);
  s = HKEY(h, f) & (h->nb - 1);
  HNEXT(h, f) = h->b[s];
  h->b[s] = f;
  h->n++;
}

void
sl__tail_htab_del(struct htab *h, struct tail_file *f)
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

uint64_t
sl__tail_id_key(uint64_t dev, uint64_t ino)
{
  uint64_t k[2] = {dev, ino};

  return XXH3_64bits(k, sizeof(k));
}

struct tail_file *
sl__tail_find_live(struct sl_tail *t, uint64_t dev, uint64_t ino)
{
  uint64_t key = sl__tail_id_key(dev, ino);
  struct tail_file *f;

  for (f = htab_first(&t->by_id, key); f; f = f->id_next)
    if (f->src.dev == dev && f->src.ino == ino)
      return f;
  return NULL;
}

/* ---- directory watches ------------------------------------------------ */

static void
dir_close_cb(uv_handle_t *h)
{
  struct tail_dir *d = sl_container_of((uv_fs_event_t *)h, struct tail_dir, h);

  free(d->path);
  free(d);
}

static void
watch_dir(struct sl_tail *t, const char *dir, size_t len)
{
  struct tail_dir *d;
  struct sl_list *l, *nx;
  int rc;

  sl_list_foreach(l, nx, &t->dirs) {
    d = sl_container_of(l, struct tail_dir, link);
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
  sl_list_insert_tail(&t->dirs, &d->link);
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

static void
discover_now(struct sl_tail *t, const char *path)
{
  struct tail_input *in;
  struct stat st;
  size_t i, j;

  if (t->stopped || t->closing || stat(path, &st) != 0 ||
      !S_ISREG(st.st_mode) ||
      sl__tail_find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
    return;
  for (i = 0; i < t->ninputs; i++) {
    in = &t->inputs[i];
    if (excluded(in, path))
      continue;
    for (j = 0; j < in->npaths; j++) {
      /* glob(3) semantics: '/' and a leading '.' match only literally. */
      if (fnmatch(in->paths[j], path, FNM_PATHNAME | FNM_PERIOD) == 0) {
        sl__tail_file_open(in, path);
        return;
      }
    }
  }
}

static void
dir_event_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
  struct tail_dir *d = sl_container_of(h, struct tail_dir, h);
  struct sl_tail *t = d->t;
  struct tail_file *f;
  char path[4096];
  uint64_t key;
  int n;

  if (status < 0) {
    sl_list_remove(&d->link);
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
      sl__tail_mark_ready(f);
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
  struct sl_list *l, *nx;
  struct tail_dir *d;
  size_t i;

  for (i = 0; i < t->ninputs; i++)
    if (t->inputs[i].scan_ms > keep)
      keep = t->inputs[i].scan_ms;
  keep = keep * 3 + 1000;
  sl_list_foreach(l, nx, &t->dirs) {
    d = sl_container_of(l, struct tail_dir, link);
    if (now - d->last_used > keep) {
      sl_list_remove(&d->link);
      uv_close((uv_handle_t *)&d->h, dir_close_cb);
    }
  }
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

/* ---- scans ------------------------------------------------------------ */

static void
input_scan(struct tail_input *in)
{
  struct sl_tail *t = in->t;
  struct sl_list *l, *nx;
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
      f = sl__tail_find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
      if (!f) {
        sl__tail_file_open(in, p);
        continue;
      }
      if (f->in != in)
        continue;  /* an earlier input owns it */
      f->seen_gen = in->scan_gen;
      if (f->re)
        sl_treg_touch(t->reg, f->re);
      if (f->fd < 0 && (uint64_t)st.st_size != f->size)
        sl__tail_file_reopen(f, p);
    }
    globfree(&g);
  }
  sl_list_foreach(l, nx, &t->files) {
    f = sl_container_of(l, struct tail_file, link);
    if (f->in != in)
      continue;
    if (f->seen_gen != in->scan_gen && f->fd < 0) {
      sl__tail_file_detach(f);  /* dormant and no longer matched */
      continue;
    }
    sl__tail_file_check_rotated(f);
  }
  in->scanned = true;
  sl_treg_prune(t->reg, PRUNE_AGE_MS);
  prune_dirs(t);
  sl__tail_update_idle(t);
}

static void
scan_timer_cb(uv_timer_t *h)
{
  struct tail_input *in = sl_container_of(h, struct tail_input, scan_timer);

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
  struct sl_tail *t = sl_container_of(h, struct sl_tail, rescan_timer);

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

void
sl__tail_scan_start(struct sl_tail *t)
{
  size_t i;

  scan_all(t);
  for (i = 0; i < t->ninputs; i++)
    uv_timer_start(&t->inputs[i].scan_timer, scan_timer_cb,
                   t->inputs[i].scan_ms, t->inputs[i].scan_ms);
}

void
sl__tail_scan_close(struct sl_tail *t)
{
  struct sl_list *l;
  struct tail_dir *d;

  while ((l = sl_list_pop(&t->dirs)) != NULL) {
    d = sl_container_of(l, struct tail_dir, link);
    uv_close((uv_handle_t *)&d->h, dir_close_cb);  /* frees d itself */
  }
}
