/* tail.c - the tailer's lifecycle, read pump, acks and registry glue (see
 * tail.h for the contract, tail_internal.h for who owns what). Discovery
 * lives in tail_scan.c, reading one file in tail_file.c.
 */
#include "tail.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "sl_err.h"
#include "sl_list.h"
#include "sl_log.h"
#include "tail_internal.h"
#include "tail_registry.h"

/* Per loop iteration, at most one read window from one file and this much
 * in total: a ready file goes to the back of the ready list after each
 * read, so with N files being written each one is read within N reads
 * (bounded delay), one hot file cannot starve the others, and the loop
 * still services sockets and timers (libuv's uv__read stops after 32
 * reads for the same reason). */
#define FILE_TICK_BUDGET SL_TAIL_READ_CHUNK
#define TOTAL_TICK_BUDGET (4u * 1024 * 1024)
/* The poll timer. Its fstat pass over open files catches appends inotify
 * missed (network file systems, overflowed event queues) and drives the
 * inactivity clocks. Where a directory is polled (mode: poll, no inotify,
 * watch limit reached) every open file is fstat'ed every POLL_MS. With
 * inotify, which reports growth, truncation and deletion itself (each
 * event fstats its file, tail_scan.c), the pass runs every
 * min(scan_interval, close_inactive, partial_timeout, CHECK_MAX_MS) and
 * fstats only files with a timer due, plus every file once per SWEEP_MS
 * as a safety net for lost events: fstat of 10,000 idle files 4 times a
 * second was most of an idle agent's CPU (bench/RESULTS.md). */
#define POLL_MS 250
#define CHECK_MAX_MS 5000
#define SWEEP_MS 30000
/* Descriptors kept for everything that is not a tailed file: output and
 * HTTP sockets, the registry write (temp file + directory fsync), the
 * inotify and epoll descriptors, libuv's internals, glob(3)'s directory
 * walk and the log. With the default harvester_limit these never fail
 * for lack of descriptors. */
#define FD_RESERVE 64
/* While files wait for a slot, an open file at its end with no growth for
 * YIELD_IDLE_MS gives its slot up (Filebeat's close_eof, with a grace
 * period for writers that pause), and one that has held its slot for
 * YIELD_HOLD_MS goes to the back of the queue even if it is still
 * written, so that every file gets its turn. Deleted and rotated files
 * keep their slot until read to the end: they cannot be opened again. */
#define YIELD_IDLE_MS 1000
#define YIELD_HOLD_MS 5000

#define DEF_SCAN_MS 10000
#define DEF_CLOSE_INACTIVE_MS 300000
#define DEF_PARTIAL_MS 5000
#define DEF_MAX_LINE (1024u * 1024)
#define DEF_REG_FLUSH_MS 1000
#define DEF_FP_LEN 1024   /* Filebeat's default fingerprint.length */

struct reg_work {
  uv_work_t req;
  struct sl_tail *t;
  char *json;
  uint64_t seq;
  int rc;
};

static void maybe_finish(struct sl_tail *t);

/* ---- read pump -------------------------------------------------------- */

/* Hand chunks to the consumer in order until it refuses one. */
void
sl__tail_offer_pending(struct sl_tail *t)
{
  struct tail_chunk *c;
  int rc;

  while (!t->paused && !t->closing && !sl_list_empty(&t->pending)) {
    c = sl_container_of(sl_list_pop(&t->pending), struct tail_chunk, plink);
    rc = t->cb(t->cb_arg, &c->pub);
    if (rc != 0) {
      if (rc != SL_EAGAIN)
        sl_log(SL_LOG_ERROR, "tail", "consumer refused chunk",
               SL_LF_STR, "path", c->f->path, SL_LF_ERR, rc, SL_LF_END);
      sl_list_insert_head(&t->pending, &c->plink);
      t->paused = true;
    }
  }
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

  sl__tail_offer_pending(t);
  while (total < TOTAL_TICK_BUDGET && can_read(t) &&
         !sl_list_empty(&t->ready)) {
    f = sl_container_of(sl_list_first(&t->ready), struct tail_file, rlink);
    sl__tail_ready_remove(f);
    f->refs++;  /* a read may replace (detach) f */
    per = 0;
    while (per < FILE_TICK_BUDGET && f->want_read && can_read(t)) {
      rc = sl__tail_file_read(f, &got);
      per += got;
      sl__tail_offer_pending(t);
      if (rc <= 0 || got == 0)
        break;
    }
    total += per;
    /* Back of the queue: round robin between busy files. */
    if (f->want_read)
      sl__tail_ready_push(f);
    sl__tail_file_unref(f);
  }
  sl__tail_update_idle(t);
}

static void
idle_cb(uv_idle_t *h)
{
  tick(sl_container_of(h, struct sl_tail, idle));
}

void
sl__tail_update_idle(struct sl_tail *t)
{
  bool work;

  if (t->closing || !t->started)
    return;
  work = (!t->paused && !sl_list_empty(&t->pending)) ||
         (can_read(t) && !sl_list_empty(&t->ready));
  if (work && !uv_is_active((uv_handle_t *)&t->idle))
    uv_idle_start(&t->idle, idle_cb);
  else if (!work && uv_is_active((uv_handle_t *)&t->idle))
    uv_idle_stop(&t->idle);
}

/* ---- descriptor budget (harvester_limit) ------------------------------ */

bool
sl__tail_has_slot(const struct tail_input *in)
{
  return in->t->nopen < in->t->hlimit &&
         (in->hlimit == 0 || in->nopen < in->hlimit);
}

void
sl__tail_fd_opened(struct tail_file *f)
{
  f->t->nopen++;
  f->in->nopen++;
  f->opened_ms = uv_now(f->t->loop);
}

static void
admit_cb(uv_timer_t *h)
{
  struct sl_tail *t = sl_container_of(h, struct sl_tail, admit_timer);

  sl__tail_admit(t);
  sl__tail_update_idle(t);
}

void
sl__tail_schedule_admit(struct sl_tail *t)
{
  if (!sl_list_empty(&t->waitq) && !t->closing &&
      !uv_is_active((uv_handle_t *)&t->admit_timer))
    uv_timer_start(&t->admit_timer, admit_cb, 0, 0);
}

void
sl__tail_fd_closed(struct tail_file *f)
{
  f->t->nopen--;
  f->in->nopen--;
  /* Not from here: the caller is in the middle of a file's state. */
  sl__tail_schedule_admit(f->t);
}

/* Files wait for a slot: free as many slots as files wait, oldest opened
 * first (t->files is in open order). */
static void
yield_slots(struct sl_tail *t, uint64_t now)
{
  size_t want = t->nwaiting;
  struct sl_list *l, *nx;
  struct tail_file *f;
  bool hold, reading = can_read(t);

  sl_list_foreach(l, nx, &t->files) {
    if (want == 0)
      break;
    f = sl_container_of(l, struct tail_file, link);
    if (f->fd < 0 || f->deleted || f->rotated || f->skipping || f->trunc)
      continue;
    /* Under backpressure nothing is read: taking turns would only churn
     * opens. */
    hold = reading && now - f->opened_ms >= YIELD_HOLD_MS;
    if (!hold && (f->want_read || now - f->last_growth < YIELD_IDLE_MS))
      continue;
    sl_log(SL_LOG_DEBUG, "tail", "file closed", SL_LF_STR, "path", f->path,
           SL_LF_INT, "offset", (int64_t)f->read_off,
           SL_LF_STR, "reason", "harvester_limit", SL_LF_END);
    /* want_read: whole lines left (without it, what is left past read_off
     * is a partial line, read again when the file grows). */
    if (f->want_read)
      sl__tail_wait_file(f);  /* back of the queue */
    sl__tail_ready_remove(f);
    sl__tail_file_close_fd(f);
    want--;
  }
}

/* With inotify: does f need an fstat now (a timer of its is due)? */
static bool
check_due(const struct tail_file *f, uint64_t now)
{
  uint64_t idle = now - f->last_growth;

  if (f->deleted || f->rotated || now - f->checked_ms >= SWEEP_MS)
    return true;
  if ((f->size > f->read_off || f->skipping) && idle >= f->in->partial_ms)
    return true;
  return idle >= f->in->close_inactive_ms;
}

static void
poll_cb(uv_timer_t *h)
{
  struct sl_tail *t = sl_container_of(h, struct sl_tail, poll_timer);
  uint64_t now = uv_now(t->loop), every;
  struct sl_list *l, *nx;
  struct tail_file *f;
  bool all = t->poll_mode || t->nunwatched;

  every = all ? POLL_MS : t->check_ms;
  if (now - t->last_check >= every) {
    t->last_check = now;
    sl_list_foreach(l, nx, &t->files) {
      f = sl_container_of(l, struct tail_file, link);
      if (f->fd < 0 || (!all && !check_due(f, now)))
        continue;
      f->checked_ms = now;
      sl__tail_file_check(f, now);
    }
  }
  if (t->nwaiting > 0 && !t->stopped)
    yield_slots(t, now);
  sl__tail_update_idle(t);
}

/* ---- registry writes -------------------------------------------------- */

static void
reg_work_cb(uv_work_t *req)
{
  struct reg_work *w = sl_container_of(req, struct reg_work, req);

  w->rc = sl_treg_write(w->t->reg, w->json, w->seq);
}

static void
reg_after_cb(uv_work_t *req, int status)
{
  struct reg_work *w = sl_container_of(req, struct reg_work, req);
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
  struct sl_tail *t = sl_container_of(h, struct sl_tail, reg_timer);
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

static uint64_t
min_pos(uint64_t a, uint64_t b)
{
  return b > 0 && b < a ? b : a;
}

static int
input_init(struct sl_tail *t, struct tail_input *in, const json_t *o,
           int idx, struct sl_parse_ctx *ctx, char *err, size_t errlen)
{
  const json_t *fp;
  const char *sa;
  uint64_t ml, fl;
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
  sa = json_string_value(json_object_get(o, "mode"));
  if (sa && strcmp(sa, "poll") != 0 && strcmp(sa, "inotify") != 0) {
    snprintf(err, errlen, "inputs[%d].mode: inotify or poll", idx);
    return SL_ECONFIG;
  }
  in->poll = sa && strcmp(sa, "poll") == 0;
  in->close_removed = !json_is_false(json_object_get(o, "close_removed"));
  in->clean_removed = !json_is_false(json_object_get(o, "clean_removed"));
  if ((rc = sl__tail_expand_globs(in)))
    return rc;
  if ((rc = get_uint(o, "scan_interval", DEF_SCAN_MS, 1, &in->scan_ms, idx,
                     err, errlen)) ||
      (rc = get_uint(o, "harvester_limit", 0, 0, &in->hlimit, idx, err,
                     errlen)) ||
      (rc = get_uint(o, "clean_inactive", 0, 0, &in->clean_inactive_ms, idx,
                     err, errlen)) ||
      (rc = get_uint(o, "close_inactive", DEF_CLOSE_INACTIVE_MS, 0,
                     &in->close_inactive_ms, idx, err, errlen)) ||
      (rc = get_uint(o, "partial_timeout", DEF_PARTIAL_MS, 0,
                     &in->partial_ms, idx, err, errlen)) ||
      (rc = get_uint(o, "max_line_bytes", DEF_MAX_LINE, 1, &ml, idx, err,
                     errlen)))
    return rc;
  in->max_line = (size_t)ml;
  fp = json_object_get(o, "fingerprint");
  if ((rc = get_uint(fp, "offset", 0, 0, &in->fp_off, idx, err, errlen)) ||
      (rc = get_uint(fp, "length", DEF_FP_LEN, 1, &fl, idx, err, errlen)))
    return rc;
  if (fl > SL_TREG_FP_MAX) {
    snprintf(err, errlen, "inputs[%d].fingerprint.length: at most %u", idx,
             SL_TREG_FP_MAX);
    return SL_ECONFIG;
  }
  in->fp_len = (uint32_t)fl;
  in->read_gz = json_is_true(json_object_get(o, "read_gz"));
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
  /* Read windows come back (parsed or acked) and are read into again, so
   * a steady file touches the same pages. Idle windows stay within what
   * the worker queue holds (a quarter of queue.max_bytes, agent.c) plus a
   * few windows in hand; in use they count against queue.max_bytes. */
  rc = sl_bufpool_new((size_t)(t->qmax / 4) + 4 * SL_TAIL_READ_CHUNK, 64,
                      &t->reads);
  if (rc) {
    free(t);
    return rc;
  }
  t->cb = o->cb;
  t->cb_arg = o->cb_arg;
  sl_list_init(&t->files);
  sl_list_init(&t->zombies);
  sl_list_init(&t->ready);
  sl_list_init(&t->pending);
  sl_list_init(&t->dirs);
  sl_list_init(&t->waitq);
  t->hlimit = o->harvester_limit;
  t->inputs = calloc(json_array_size(o->inputs) + 1, sizeof(*t->inputs));
  if (!t->data_dir || !t->inputs ||
      sl__tail_htab_init(&t->by_id, offsetof(struct tail_file, id_next),
                offsetof(struct tail_file, idkey)) ||
      sl__tail_htab_init(&t->by_path, offsetof(struct tail_file, path_next),
                offsetof(struct tail_file, pathkey)) ||
      sl__tail_htab_init(&t->waiting, offsetof(struct tail_wait, hnext),
                offsetof(struct tail_wait, key)) ||
      sl__tail_htab_init(&t->notes, offsetof(struct tail_note, hnext),
                offsetof(struct tail_note, key)) ||
      sl__tail_htab_init(&t->dirtab, offsetof(struct tail_dir, hnext),
                offsetof(struct tail_dir, key))) {
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
  uv_timer_init(loop, &t->admit_timer);
  t->check_ms = CHECK_MAX_MS;
  for (i = 0; i < t->ninputs; i++) {
    uv_timer_init(loop, &t->inputs[i].scan_timer);
    /* The checks drive these clocks: run them often enough for each. */
    t->check_ms = min_pos(t->check_ms, t->inputs[i].scan_ms);
    t->check_ms = min_pos(t->check_ms, t->inputs[i].close_inactive_ms);
    t->check_ms = min_pos(t->check_ms, t->inputs[i].partial_ms);
    t->poll_mode |= t->inputs[i].poll;
  }
  if (t->check_ms < POLL_MS)
    t->check_ms = POLL_MS;
  *out = t;
  return 0;

fail:
  for (i = 0; i < t->ninputs; i++) {
    free_strv(t->inputs[i].paths, t->inputs[i].npaths);
    free_strv(t->inputs[i].globs, t->inputs[i].nglobs);
    free_strv(t->inputs[i].excl, t->inputs[i].nexcl);
  }
  free(t->inputs);
  free(t->by_id.b);
  free(t->by_path.b);
  sl__tail_scan_free(t);
  free(t->data_dir);
  json_decref(t->inputs_json);
  sl_bufpool_close(t->reads);
  free(t);
  return rc;
}

/* harvester_limit: the configured one, or what RLIMIT_NOFILE leaves after
 * FD_RESERVE. The soft limit is raised to the hard one first, as nginx
 * (worker_rlimit_nofile) and Fluent Bit do: the soft default of 1024 is a
 * relic of select(2), which the agent does not use. */
static void
fd_budget(struct sl_tail *t)
{
  struct rlimit rl;
  uint64_t nofile = 1024, auto_limit;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur != rl.rlim_max) {
      struct rlimit want = { rl.rlim_max, rl.rlim_max };

      if (setrlimit(RLIMIT_NOFILE, &want) == 0)
        rl.rlim_cur = rl.rlim_max;
    }
    nofile = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)1 << 20
                                           : (uint64_t)rl.rlim_cur;
  }
  auto_limit = nofile > 2 * FD_RESERVE ? nofile - FD_RESERVE : nofile / 2;
  if (auto_limit < 1)
    auto_limit = 1;
  if (t->hlimit == 0) {
    t->hlimit = auto_limit;
  } else if (t->hlimit > auto_limit) {
    sl_log(SL_LOG_WARN, "tail", "harvester_limit above what the open files "
           "limit allows, lowered", SL_LF_INT, "harvester_limit",
           (int64_t)t->hlimit, SL_LF_INT, "nofile", (int64_t)nofile,
           SL_LF_INT, "used", (int64_t)auto_limit, SL_LF_END);
    t->hlimit = auto_limit;
  }
  sl_log(SL_LOG_INFO, "tail", "open files budget", SL_LF_INT, "nofile",
         (int64_t)nofile, SL_LF_INT, "harvester_limit", (int64_t)t->hlimit,
         SL_LF_INT, "reserve", (int64_t)(nofile - t->hlimit), SL_LF_END);
}

int
sl_tail_start(struct sl_tail *t)
{
  int rc;

  if (t->started || t->closing)
    return SL_EINVAL;
  fd_budget(t);
  rc = sl_treg_open(t->data_dir, &t->reg);
  if (rc) {
    sl_log(SL_LOG_ERROR, "tail", "cannot open registry", SL_LF_STR, "dir",
           t->data_dir, SL_LF_ERR, rc, SL_LF_END);
    return rc;
  }
  t->started = true;
  sl__tail_scan_start(t);
  uv_timer_start(&t->poll_timer, poll_cb, POLL_MS, POLL_MS);
  uv_timer_start(&t->reg_timer, reg_timer_cb, t->reg_flush_ms,
                 t->reg_flush_ms);
  sl__tail_update_idle(t);
  return 0;
}

void
sl_tail_resume(struct sl_tail *t)
{
  t->paused = false;
  sl__tail_update_idle(t);
}

void
sl_tail_chunk_free_data(struct sl_tail_chunk *c)
{
  sl_bufpool_put_mem(c->pool, c->data, c->cap);
  c->data = NULL;
  c->cap = 0;
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
  sl_tail_chunk_free_data(&c->pub);
  t->inflight -= c->pub.len;
  /* Advance over the in-order prefix of done chunks only. */
  while (!sl_list_empty(&f->fifo)) {
    h = sl_container_of(sl_list_first(&f->fifo), struct tail_chunk, flink);
    if (!h->done)
      break;
    sl_list_remove(&h->flink);
    acked = h->pub.end_offset;
    sl__tail_chunk_free(h);
    f->refs--;  /* f->refs stays >= 1 while f is looked at below */
  }
  f->acked_off = acked;
  if (f->re)
    sl_treg_set_offset(t->reg, f->re, acked);
  f->refs++;
  sl__tail_file_unref(f);
  if (was_full && t->inflight < t->qmax)
    sl__tail_update_idle(t);
}

void
sl_tail_chunk_progress(struct sl_tail *t, struct sl_tail_chunk *pc,
                       uint64_t off)
{
  struct tail_chunk *c = pc->priv;
  struct tail_file *f = c->f;

  /* Only the oldest outstanding chunk can move the saved offset. */
  if (c->done || sl_list_first(&f->fifo) != &c->flink ||
      off <= f->acked_off || off >= pc->end_offset)
    return;
  f->acked_off = off;
  if (f->re)
    sl_treg_set_offset(t->reg, f->re, off);
}

void
sl_tail_stop_reading(struct sl_tail *t)
{
  size_t i;

  t->stopped = true;
  for (i = 0; i < t->ninputs; i++)
    uv_timer_stop(&t->inputs[i].scan_timer);
  uv_timer_stop(&t->rescan_timer);
  sl__tail_update_idle(t);
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
  st->files_waiting = t->nwaiting;
  st->harvester_limit = t->hlimit;
  st->inflight_bytes = t->inflight;
  st->registry_entries = t->reg ? sl_treg_count(t->reg) : 0;
}

uint64_t
sl_tail_input_bytes_read(const struct sl_tail *t, int index)
{
  size_t i;

  for (i = 0; i < t->ninputs; i++)
    if (t->inputs[i].index == index)
      return t->inputs[i].bytes_read;
  return 0;
}

static void
maybe_finish(struct sl_tail *t)
{
  void (*cb)(void *) = t->close_cb;
  void *arg = t->close_arg;
  struct sl_list *heads[2] = {&t->files, &t->zombies}, *l;
  size_t i;

  if (t->closes_left > 0 || t->reg_busy)
    return;
  for (i = 0; i < 2; i++)
    while ((l = sl_list_first(heads[i])) != NULL)
      sl__tail_file_destroy(sl_container_of(l, struct tail_file, link));
  for (i = 0; i < t->ninputs; i++) {
    free_strv(t->inputs[i].paths, t->inputs[i].npaths);
    free_strv(t->inputs[i].globs, t->inputs[i].nglobs);
    free_strv(t->inputs[i].excl, t->inputs[i].nexcl);
  }
  free(t->inputs);
  free(t->by_id.b);
  free(t->by_path.b);
  sl__tail_scan_free(t);
  sl_treg_free(t->reg);
  free(t->data_dir);
  json_decref(t->inputs_json);
  sl_bufpool_log(t->reads, "tail");
  sl_bufpool_close(t->reads);
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
  struct sl_list *l, *nx;
  size_t i;

  if (t->closing)
    return;
  if (t->reg)
    sl_treg_save(t->reg);  /* logs on failure; nothing better to do now */
  t->closing = true;
  t->close_cb = cb;
  t->close_arg = arg;
  sl_list_foreach(l, nx, &t->files)
    sl__tail_file_close_fd(sl_container_of(l, struct tail_file, link));
  sl__tail_scan_close(t);
  close_handle(t, (uv_handle_t *)&t->idle);
  close_handle(t, (uv_handle_t *)&t->poll_timer);
  close_handle(t, (uv_handle_t *)&t->reg_timer);
  close_handle(t, (uv_handle_t *)&t->rescan_timer);
  close_handle(t, (uv_handle_t *)&t->admit_timer);
  for (i = 0; i < t->ninputs; i++)
    close_handle(t, (uv_handle_t *)&t->inputs[i].scan_timer);
}
