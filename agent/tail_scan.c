/* tail_scan.c - discovery: glob scans of every input (`**` expanded),
 * inotify watches on the directories they touch (uv_fs_event), rotation
 * detection, the index of live files by identity and path, the queue of
 * files waiting for a descriptor slot (harvester_limit), the once-per-path
 * reports, and clean_removed / clean_inactive (ownership:
 * tail_internal.h).
 *
 * A scan runs at start, every scan_interval per input, and RESCAN_DELAY_MS
 * after a directory event. Directory events also open a new matching file
 * at once, because a fast writer may rotate it away before a scan runs,
 * and fstat the open file they name (growth, truncation, deletion), so
 * that with inotify the periodic checks (tail.c) can be rare.
 */
#include "tail_internal.h"

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <xxhash.h>

#include "sl_err.h"
#include "sl_list.h"
#include "sl_log.h"

/* Coalesce bursts of directory events into one rescan. */
#define RESCAN_DELAY_MS 20
/* With clean_inactive off, unused registry entries not updated for this
 * long are dropped. */
#define PRUNE_AGE_MS (24LL * 3600 * 1000)

static void schedule_rescan(struct sl_tail *t);
static void dir_event_cb(uv_fs_event_t *h, const char *name, int events,
                         int status);

/* ---- hash tables ------------------------------------------------------ */

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

#define HNEXT(h, e) (*(void **)((char *)(e) + (h)->next_off))
#define HKEY(h, e) (*(uint64_t *)((char *)(e) + (h)->key_off))

static void
htab_grow(struct htab *h)
{
  void **nb, *e, *nx;
  size_t i, n = h->nb * 2, s;

  nb = calloc(n, sizeof(*nb));
  if (!nb)
    return;
  for (i = 0; i < h->nb; i++) {
    for (e = h->b[i]; e; e = nx) {
      nx = HNEXT(h, e);
      s = HKEY(h, e) & (n - 1);
      HNEXT(h, e) = nb[s];
      nb[s] = e;
    }
  }
  free(h->b);
  h->b = nb;
  h->nb = n;
}

void
sl__tail_htab_add(struct htab *h, void *e)
{
  size_t s;

  if (h->n >= h->nb)
    htab_grow(h);
  s = HKEY(h, e) & (h->nb - 1);
  HNEXT(h, e) = h->b[s];
  h->b[s] = e;
  h->n++;
}

void
sl__tail_htab_del(struct htab *h, void *e)
{
  void **pp = &h->b[HKEY(h, e) & (h->nb - 1)];

  for (; *pp; pp = &HNEXT(h, *pp)) {
    if (*pp == e) {
      *pp = HNEXT(h, e);
      HNEXT(h, e) = NULL;
      h->n--;
      return;
    }
  }
}

static void *
htab_first(const struct htab *h, uint64_t key)
{
  return h->b[key & (h->nb - 1)];
}

static uint64_t
path_key(const char *path)
{
  return XXH3_64bits(path, strlen(path));
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

/* ---- reports once per path -------------------------------------------- */

/* True when (path, err) was not reported yet: the caller logs it. A path
 * that fails the same way on every scan is logged once, until it opens
 * again (note_clear) or fails differently. */
static bool
note_once(struct sl_tail *t, const char *path, int err)
{
  uint64_t key = path_key(path);
  struct tail_note *n;

  for (n = htab_first(&t->notes, key); n; n = n->hnext) {
    if (n->key != key)
      continue;
    if (n->err == err)
      return false;
    n->err = err;
    return true;
  }
  n = calloc(1, sizeof(*n));
  if (!n)
    return true;  /* better a repeated line than none */
  n->key = key;
  n->err = err;
  sl__tail_htab_add(&t->notes, n);
  return true;
}

static void
note_clear(struct sl_tail *t, const char *path)
{
  uint64_t key;
  struct tail_note *n;

  if (t->notes.n == 0)
    return;
  key = path_key(path);
  for (n = htab_first(&t->notes, key); n; n = n->hnext) {
    if (n->key == key) {
      sl__tail_htab_del(&t->notes, n);
      free(n);
      return;
    }
  }
}

/* ---- descriptor budget: files waiting for a slot ------------------------ */

static struct tail_wait *
wait_find(struct sl_tail *t, uint64_t dev, uint64_t ino)
{
  uint64_t key = sl__tail_id_key(dev, ino);
  struct tail_wait *w;

  for (w = htab_first(&t->waiting, key); w; w = w->hnext)
    if (w->dev == dev && w->ino == ino)
      return w;
  return NULL;
}

static void
wait_add(struct tail_input *in, const char *path, uint64_t dev,
         uint64_t ino)
{
  struct sl_tail *t = in->t;
  struct tail_wait *w;

  if (wait_find(t, dev, ino))
    return;
  w = calloc(1, sizeof(*w));
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return;  /* the next scan queues it again */
  }
  w->in = in;
  w->dev = dev;
  w->ino = ino;
  w->key = sl__tail_id_key(dev, ino);
  sl_list_insert_tail(&t->waitq, &w->link);
  sl__tail_htab_add(&t->waiting, w);
  t->nwaiting++;
  if (!t->limit_logged) {
    t->limit_logged = true;
    sl_log(SL_LOG_WARN, "tail", "harvester_limit reached, files wait for "
           "a free slot", SL_LF_INT, "harvester_limit", (int64_t)t->hlimit,
           SL_LF_INT, "open", (int64_t)t->nopen,
           SL_LF_INT, "input_limit", (int64_t)in->hlimit,
           SL_LF_STR, "path", path, SL_LF_END);
  }
}

static void
wait_free(struct sl_tail *t, struct tail_wait *w)
{
  sl_list_remove(&w->link);
  sl__tail_htab_del(&t->waiting, w);
  t->nwaiting--;
  free(w->path);
  free(w);
}

void
sl__tail_wait_file(struct tail_file *f)
{
  wait_add(f->in, f->path, f->src.dev, f->src.ino);
}

/* A dormant file with new bytes: reopen it and read what it has. A
 * reference keeps f while the checks may retire it (new generation). */
static void
reopen_now(struct tail_file *f, const char *path)
{
  f->refs++;
  sl__tail_file_reopen(f, path);
  if (f->fd >= 0 && !f->detached && f->want_read)
    sl__tail_mark_ready(f);  /* gave its slot up with lines left */
  sl__tail_file_unref(f);
}

/* Files that wait keep their turn: a free slot goes to the oldest waiter
 * first, not to whatever the next event or scan happens to meet. */
static bool
must_wait(const struct tail_input *in)
{
  return !sl_list_empty(&in->t->waitq) || !sl__tail_has_slot(in);
}

static void
want_reopen(struct tail_file *f, const char *path)
{
  if (must_wait(f->in)) {
    wait_add(f->in, path, f->src.dev, f->src.ino);
    sl__tail_schedule_admit(f->t);
    return;
  }
  reopen_now(f, path);
}

static void
open_new(struct tail_input *in, const char *path, const struct stat *st)
{
  struct sl_tail *t = in->t;

  sl__tail_file_open(in, path);
  if (sl__tail_find_live(t, (uint64_t)st->st_dev, (uint64_t)st->st_ino))
    note_clear(t, path);
}

static void
want_open(struct tail_input *in, const char *path, const struct stat *st)
{
  if (must_wait(in)) {
    wait_add(in, path, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    sl__tail_schedule_admit(in->t);
    return;
  }
  open_new(in, path, st);
}

static void
admit_one(struct sl_tail *t, struct tail_wait *w)
{
  struct tail_file *f;
  struct stat st;

  if (stat(w->path, &st) != 0 || (uint64_t)st.st_dev != w->dev ||
      (uint64_t)st.st_ino != w->ino) {
    schedule_rescan(t);  /* moved or gone while waiting */
    return;
  }
  f = sl__tail_find_live(t, w->dev, w->ino);
  if (f) {
    if (f->fd < 0)
      reopen_now(f, w->path);
    return;
  }
  open_new(w->in, w->path, &st);
}

void
sl__tail_admit(struct sl_tail *t)
{
  struct sl_list *l, *nx;
  struct tail_wait *w;

  t->fd_pressure = false;
  sl_list_foreach(l, nx, &t->waitq) {
    if (t->nopen >= t->hlimit || t->fd_pressure || t->closing ||
        t->stopped)
      break;
    w = sl_container_of(l, struct tail_wait, link);
    if (!sl__tail_has_slot(w->in))
      continue;  /* its input is at its own limit; others may go */
    /* Out of the queue first: the open may queue the same file again
     * (EMFILE), which must not find this entry. */
    sl_list_remove(&w->link);
    sl__tail_htab_del(&t->waiting, w);
    t->nwaiting--;
    admit_one(t, w);
    free(w->path);
    free(w);
    nx = sl_list_first(&t->waitq);  /* admit_one may have queued files */
    if (!nx)
      break;
  }
  if (sl_list_empty(&t->waitq) && t->limit_logged) {
    t->limit_logged = false;
    sl_log(SL_LOG_INFO, "tail", "harvester_limit cleared, no file waits",
           SL_LF_INT, "open", (int64_t)t->nopen, SL_LF_END);
  }
}

void
sl__tail_open_failed(struct tail_input *in, const char *path, int err)
{
  struct sl_tail *t = in->t;
  struct stat st;

  if (err == -EMFILE || err == -ENFILE) {
    /* Below the process limit but out of descriptors all the same
     * (another part of the agent, or the system table): wait for a
     * close instead of retrying on every event. */
    t->fd_pressure = true;
    if (stat(path, &st) == 0)
      wait_add(in, path, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (note_once(t, path, err))
      sl_log(SL_LOG_WARN, "tail", "cannot open file, waiting for a free "
             "descriptor", SL_LF_STR, "path", path, SL_LF_ERR, err,
             SL_LF_END);
    return;
  }
  if (note_once(t, path, err))
    sl_log(SL_LOG_WARN, "tail", "cannot open file, retried on every scan",
           SL_LF_STR, "path", path, SL_LF_ERR, err, SL_LF_END);
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
dir_release(struct sl_tail *t, struct tail_dir *d)
{
  sl_list_remove(&d->link);
  sl__tail_htab_del(&t->dirtab, d);
  if (!d->watching)
    t->nunwatched--;
  uv_close((uv_handle_t *)&d->h, dir_close_cb);
}

static void
dir_start(struct sl_tail *t, struct tail_dir *d)
{
  int rc = uv_fs_event_start(&d->h, dir_event_cb, d->path, 0);

  if (rc == 0) {
    if (!d->watching)
      t->nunwatched--;
    d->watching = true;
    return;
  }
  /* The directory stays listed and is polled: its files get the fast
   * fstat cadence (tail.c) and the watch is tried again on every scan,
   * so it recovers once watches are free again. */
  if (!t->watch_logged) {
    t->watch_logged = true;
    sl_log(SL_LOG_WARN, "tail", rc == UV_ENOSPC
           ? "inotify watch limit reached (fs.inotify.max_user_watches), "
             "polling the rest"
           : "cannot watch directory, polling it",
           SL_LF_STR, "path", d->path, SL_LF_ERR, rc, SL_LF_END);
  }
}

static void
watch_dir(struct sl_tail *t, const char *dir, size_t len, bool via_link)
{
  uint64_t key = XXH3_64bits(dir, len);
  struct tail_dir *d;

  for (d = htab_first(&t->dirtab, key); d; d = d->hnext) {
    if (d->key == key && strlen(d->path) == len &&
        memcmp(d->path, dir, len) == 0) {
      d->last_used = uv_now(t->loop);
      d->via_link |= via_link;
      if (!d->watching)
        dir_start(t, d);
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
  d->key = key;
  d->via_link = via_link;
  d->last_used = uv_now(t->loop);
  uv_fs_event_init(t->loop, &d->h);
  sl_list_insert_tail(&t->dirs, &d->link);
  sl__tail_htab_add(&t->dirtab, d);
  t->nunwatched++;  /* until dir_start succeeds */
  dir_start(t, d);
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

/* A path stat(2) did not call a regular file: FIFOs (opening one would
 * block the loop), directories, devices, sockets are never read. */
static void
note_not_regular(struct sl_tail *t, const char *path, const struct stat *st)
{
  const char *kind = S_ISDIR(st->st_mode) ? "directory"
                   : S_ISFIFO(st->st_mode) ? "fifo"
                   : S_ISSOCK(st->st_mode) ? "socket"
                   : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "device"
                   : "other";

  if (note_once(t, path, 1))
    sl_log(SL_LOG_DEBUG, "tail", "not a regular file, skipped", SL_LF_STR,
           "path", path, SL_LF_STR, "type", kind, SL_LF_END);
}

static void
discover_now(struct sl_tail *t, const char *path)
{
  struct tail_input *in;
  struct stat st;
  size_t i, j;

  if (t->stopped || t->closing || stat(path, &st) != 0 ||
      !S_ISREG(st.st_mode) ||
      sl__tail_find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino) ||
      wait_find(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
    return;
  for (i = 0; i < t->ninputs; i++) {
    in = &t->inputs[i];
    if (excluded(in, path))
      continue;
    for (j = 0; j < in->nglobs; j++) {
      /* glob(3) semantics: '/' and a leading '.' match only literally. */
      if (fnmatch(in->globs[j], path, FNM_PATHNAME | FNM_PERIOD) == 0) {
        want_open(in, path, &st);
        return;
      }
    }
  }
}

/* An open file was written, truncated, deleted or renamed: fstat it now.
 * The periodic check runs only every few seconds with inotify (tail.c),
 * and a truncation or a deletion (close_removed) must not wait for it. */
static void
event_check(struct tail_file *f)
{
  f->refs++;  /* the check may retire f (new generation, close_removed) */
  sl__tail_file_check(f, uv_now(f->t->loop));
  if (f->fd >= 0 && !f->detached)
    sl__tail_mark_ready(f);
  sl__tail_file_unref(f);
}

static void
dir_event_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
  struct tail_dir *d = sl_container_of(h, struct tail_dir, h);
  struct sl_tail *t = d->t;
  struct tail_file *f, *nf;
  struct stat st;
  char path[4096];
  uint64_t key;
  bool known = false;
  int n;

  if (status < 0) {
    dir_release(t, d);  /* re-added by a scan */
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
  key = XXH3_64bits(path, (size_t)n);
  for (f = htab_first(&t->by_path, key); f; f = nf) {
    nf = f->path_next;
    if (f->pathkey != key || strcmp(f->path, path) != 0)
      continue;
    known = true;
    if (f->fd >= 0)
      event_check(f);
    else if (!f->detached && stat(path, &st) == 0 &&
               (uint64_t)st.st_dev == f->src.dev &&
               (uint64_t)st.st_ino == f->src.ino &&
               (uint64_t)st.st_size != f->size) {
      want_reopen(f, path);  /* closed (inactive) and grew */
    }
  }
  if (events & UV_RENAME) {
    /* Created, moved or deleted: open a new matching file right away (a
     * fast writer may rotate it away again before a scan runs), and rescan
     * for the rest (rotation detection, patterns fnmatch cannot do). */
    discover_now(t, path);
    schedule_rescan(t);
    return;
  }
  if (!known && d->via_link && stat(path, &st) == 0) {
    /* The target of a symlinked file: its path is not the one tracked. */
    f = sl__tail_find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (f && f->fd >= 0)
      event_check(f);
    else if (f && (uint64_t)st.st_size != f->size)
      want_reopen(f, f->path);
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
    if (now - d->last_used > keep)
      dir_release(t, d);
  }
}

static bool
has_magic(const char *s, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++)
    if (strchr("*?[{", s[i]))
      return true;
  return false;
}

static void
watch_parent(struct tail_input *in, const char *path, bool only_literal,
             bool via_link)
{
  const char *slash = strrchr(path, '/');
  size_t len;

  if (!slash || in->poll)
    return;
  len = slash == path ? 1 : (size_t)(slash - path);
  if (only_literal && has_magic(path, len))
    return;
  watch_dir(in->t, path, len, via_link);
}

/* A pattern whose directory part has wildcards (`**` expanded, pods/x):
 * watch every directory it names, so a file created in a directory that
 * held no match yet is seen by inotify too, not only by the next scan. */
static void
watch_glob_dirs(struct tail_input *in, const char *pattern)
{
  const char *slash = strrchr(pattern, '/');
  char dir[4096];
  struct stat st;
  glob_t g;
  size_t i, len;

  if (!slash || in->poll)
    return;
  len = (size_t)(slash - pattern);
  if (len == 0 || len >= sizeof(dir) || !has_magic(pattern, len))
    return;
  memcpy(dir, pattern, len);
  dir[len] = '\0';
  memset(&g, 0, sizeof(g));
  if (glob(dir, GLOB_BRACE | GLOB_ONLYDIR, NULL, &g) == 0)
    for (i = 0; i < g.gl_pathc; i++)  /* GLOB_ONLYDIR is only a hint */
      if (stat(g.gl_pathv[i], &st) == 0 && S_ISDIR(st.st_mode))
        watch_dir(in->t, g.gl_pathv[i], strlen(g.gl_pathv[i]), false);
  globfree(&g);
}

/* ---- `**` ---------------------------------------------------------------- */

/* Where a `**` path component starts in p, or NULL. */
static const char *
find_globstar(const char *p)
{
  const char *s;

  for (s = strstr(p, "**"); s; s = strstr(s + 1, "**"))
    if ((s == p || s[-1] == '/') && (s[2] == '/' || s[2] == '\0'))
      return s;
  return NULL;
}

static int
push_glob(struct tail_input *in, char *g)
{
  char **a;

  if (!g)
    return SL_ENOMEM;
  a = realloc(in->globs, (in->nglobs + 2) * sizeof(*a));
  if (!a) {
    free(g);
    return SL_ENOMEM;
  }
  in->globs = a;
  a[in->nglobs++] = g;
  a[in->nglobs] = NULL;
  return 0;
}

int
sl__tail_expand_globs(struct tail_input *in)
{
  const char *p, *gs, *rest;
  size_t i, k, d, plen, rlen, n;
  char *g;
  int rc;

  for (i = 0; i < in->npaths; i++) {
    p = in->paths[i];
    gs = find_globstar(p);
    if (!gs) {
      if ((rc = push_glob(in, strdup(p))))
        return rc;
      continue;
    }
    /* "a/(**)/b" gives a/b, a/(*)/b, ... and "a/(**)" gives a/(*),
     * a/(*)/(*), ... (without the parentheses), down to
     * SL_TAIL_GLOB_DEPTH levels, as Filebeat's recursive_glob. A later
     * `**` stays: glob(3) reads it as `*`. */
    plen = (size_t)(gs - p);
    rest = gs[2] == '/' ? gs + 3 : NULL;
    rlen = rest ? strlen(rest) : 0;
    for (d = rest ? 0 : 1; d <= SL_TAIL_GLOB_DEPTH; d++) {
      n = plen + d * 2 + rlen + 1;
      g = malloc(n);
      if (!g)
        return SL_ENOMEM;
      memcpy(g, p, plen);
      for (k = 0; k < d; k++)
        memcpy(g + plen + k * 2, "*/", 2);
      if (rest)
        memcpy(g + plen + d * 2, rest, rlen + 1);
      else
        g[plen + d * 2 - 1] = '\0';  /* no trailing '/' */
      if ((rc = push_glob(in, g)))
        return rc;
    }
  }
  return 0;
}

/* ---- scans ------------------------------------------------------------ */

/* One path a glob produced: track it, queue it for a slot, or refresh
 * what is known about it. */
static void
scan_path(struct tail_input *in, const char *p)
{
  struct sl_tail *t = in->t;
  struct tail_wait *w;
  struct tail_file *f;
  struct stat st, lst = { 0 };
  char *real;
  bool link;
  int err;

  if (excluded(in, p))
    return;
  /* lstat first: the same answer as stat for all but symlinks, which are
   * the only paths that need a second call. */
  link = lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode);
  if (!link && lst.st_mode != 0) {
    st = lst;
  } else if (stat(p, &st) != 0) {
    err = -errno;
    if (err != -ENOENT && note_once(t, p, err))
      sl_log(SL_LOG_WARN, "tail", "cannot stat file, retried on every scan",
             SL_LF_STR, "path", p, SL_LF_ERR, err, SL_LF_END);
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    note_not_regular(t, p, &st);
    return;
  }
  watch_parent(in, p, false, false);
  if (link && !in->poll) {
    /* A symlink: appends show up as events in the target's directory. */
    real = realpath(p, NULL);
    if (real)
      watch_parent(in, real, false, true);
    free(real);
  }
  f = sl__tail_find_live(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
  if (!f) {
    w = wait_find(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (!w) {
      want_open(in, p, &st);
      return;
    }
    return;  /* waiting for a slot (its entry is kept, clean_pred) */
  }
  if (f->in != in)
    return;  /* an earlier input owns it */
  f->seen_gen = in->scan_gen;
  if (strcmp(f->path, p) == 0)
    f->path_gen = in->scan_gen;
  if (f->re)
    sl_treg_touch(t->reg, f->re);
  if (f->fd < 0 && ((uint64_t)st.st_size != f->size || f->want_read))
    want_reopen(f, p);
}

struct clean_ctx {
  struct sl_tail *t;
  int64_t now_ms;
  int64_t inactive_ms;
  bool removed;
};

/* clean_removed / clean_inactive: is this entry (no file object uses it)
 * of no use any more? */
static bool
clean_pred(const struct sl_treg_entry *e, void *arg)
{
  struct clean_ctx *c = arg;
  struct stat st;

  if (wait_find(c->t, e->dev, e->ino))
    return false;
  if (c->now_ms - e->updated_ms > c->inactive_ms)
    return true;
  if (!c->removed)
    return false;
  if (stat(e->path, &st) != 0)
    return errno == ENOENT || errno == ENOTDIR;
  return (uint64_t)st.st_dev != e->dev || (uint64_t)st.st_ino != e->ino;
}

/* After every input had its first scan (an entry of input B's file must not
 * go because input A did not see it), at most once per scan interval. */
static void
clean_registry(struct sl_tail *t)
{
  struct clean_ctx c = { t, 0, 0, true };
  uint64_t now = uv_now(t->loop), every = UINT64_MAX;
  struct timespec ts;
  size_t i;

  for (i = 0; i < t->ninputs; i++) {
    if (!t->inputs[i].scanned)
      return;
    if (t->inputs[i].scan_ms < every)
      every = t->inputs[i].scan_ms;
    /* One registry for all inputs: the most careful setting wins. */
    c.removed = c.removed && t->inputs[i].clean_removed;
    if (t->inputs[i].clean_inactive_ms == 0)
      c.inactive_ms = -1;
    else if (c.inactive_ms >= 0 &&
             (int64_t)t->inputs[i].clean_inactive_ms > c.inactive_ms)
      c.inactive_ms = (int64_t)t->inputs[i].clean_inactive_ms;
  }
  /* Off: entries no scan saw (or attached to a file) for a day go. */
  if (c.inactive_ms <= 0)
    c.inactive_ms = PRUNE_AGE_MS;
  if (t->last_clean && now - t->last_clean < every)
    return;
  t->last_clean = now;
  clock_gettime(CLOCK_REALTIME, &ts);
  c.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  sl_treg_clean(t->reg, clean_pred, &c);
}

static void
input_scan(struct tail_input *in)
{
  struct sl_tail *t = in->t;
  struct sl_list *l, *nx;
  struct tail_file *f;
  glob_t g;
  size_t i, j;
  int rc;

  in->scan_gen++;
  for (i = 0; i < in->nglobs; i++) {
    watch_parent(in, in->globs[i], true, false);
    watch_glob_dirs(in, in->globs[i]);
    memset(&g, 0, sizeof(g));
    rc = glob(in->globs[i], GLOB_BRACE, NULL, &g);
    if (rc != 0) {
      if (rc != GLOB_NOMATCH && note_once(t, in->globs[i], rc))
        sl_log(SL_LOG_WARN, "tail", "glob failed", SL_LF_STR, "pattern",
               in->globs[i], SL_LF_INT, "code", (int64_t)rc, SL_LF_END);
      globfree(&g);
      continue;
    }
    for (j = 0; j < g.gl_pathc; j++)
      scan_path(in, g.gl_pathv[j]);
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
    if (f->path_gen != in->scan_gen)
      sl__tail_file_check_rotated(f);
  }
  in->scanned = true;
  clean_registry(t);
  prune_dirs(t);
  sl__tail_admit(t);
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
  struct sl_list *l, *nx;

  sl_list_foreach(l, nx, &t->dirs)
    dir_release(t, sl_container_of(l, struct tail_dir, link));
}

void
sl__tail_scan_free(struct sl_tail *t)
{
  struct sl_list *l;
  struct tail_note *n;
  size_t i;

  while ((l = sl_list_first(&t->waitq)) != NULL)
    wait_free(t, sl_container_of(l, struct tail_wait, link));
  for (i = 0; t->notes.b && i < t->notes.nb; i++) {
    while ((n = t->notes.b[i]) != NULL) {
      t->notes.b[i] = n->hnext;
      free(n);
    }
  }
  free(t->waiting.b);
  free(t->notes.b);
  free(t->dirtab.b);
}
