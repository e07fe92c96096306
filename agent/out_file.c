/* out_file.c - JSON lines to a file (type file) or to standard output
 * (type stdout).
 *
 * Writes run on libuv's thread pool (uv_fs_write) so a slow disk or a full
 * pipe never blocks the loop; one operation is in flight at a time. After a
 * run of writes the file is fsync'ed once and every batch of the run is
 * acknowledged (group commit). stdout is acknowledged when write() returned;
 * a pipe has nothing to fsync. A failed write is retried after a backoff
 * from where it stopped; nothing is dropped.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "out.h"
#include "sl_backoff.h"
#include "sl_log.h"

/* Batches written before the group fsync; bounds ack latency. */
#define FILE_SYNC_EVERY 8

struct file_out {
  struct sl_out base;
  uv_loop_t *loop;
  struct sl_out_cbs cbs;
  const char *path;       /* NULL for stdout */
  uv_file fd;
  int max_inflight;
  struct sl_batchq todo;    /* accepted, not yet written */
  struct sl_batchq written; /* written, waiting for the fsync */
  size_t head_done;       /* bytes of the first of todo already written */
  uv_fs_t req;
  int busy;               /* req in flight */
  uv_timer_t timer;       /* retry after a failed write */
  int retry_wait;
  struct sl_backoff bo;
  int closing;
  int closed;             /* finish_close ran (an ack may close us inside
                           * fs_cb, which then tries again) */
  void (*close_cb)(void *arg);
  void *close_arg;
  struct sl_out_stats st;
};

static void kick(struct file_out *o);

static void
ack_written(struct file_out *o)
{
  struct sl_batch *b;

  while ((b = sl_batchq_pop(&o->written)) != NULL) {
    o->st.inflight--;
    o->cbs.acked(o->cbs.arg, b);
  }
  sl_backoff_reset(&o->bo);
}

static void finish_close(struct file_out *o);

static void
retry_cb(uv_timer_t *t)
{
  struct file_out *o = t->data;

  o->retry_wait = 0;
  kick(o);
}

static void
fs_cb(uv_fs_t *req)
{
  struct file_out *o = req->data;
  ssize_t r = req->result;
  int was_write = req->fs_type == UV_FS_WRITE;

  uv_fs_req_cleanup(req);
  o->busy = 0;
  if (r < 0) {
    sl_log(SL_LOG_ERROR, "out.file", was_write ? "write failed"
                                               : "fsync failed",
           SL_LF_STR, "path", o->path ? o->path : "<stdout>",
           SL_LF_ERR, (int)r, SL_LF_END);
    if (o->closing) {
      finish_close(o);
      return;
    }
    o->retry_wait = 1;
    uv_timer_start(&o->timer, retry_cb, sl_backoff_next(&o->bo), 0);
    return;
  }
  if (was_write) {
    o->head_done += (size_t)r;
    o->st.bytes_sent += (uint64_t)r;
    if (o->head_done >= sl_batchq_first(&o->todo)->len) {
      o->head_done = 0;
      sl_batchq_push(&o->written, sl_batchq_pop(&o->todo));
    }
  } else {
    ack_written(o);
  }
  if (o->closing) {
    finish_close(o);
    return;
  }
  kick(o);
  o->cbs.writable(o->cbs.arg);
}

static void
kick(struct file_out *o)
{
  struct sl_batch *first = sl_batchq_first(&o->todo);
  int rc;

  if (o->busy || o->retry_wait)
    return;
  if (first && (o->written.n < FILE_SYNC_EVERY || o->path == NULL)) {
    uv_buf_t buf = uv_buf_init(first->data + o->head_done,
                               (unsigned)(first->len - o->head_done));
    o->req.data = o;
    rc = uv_fs_write(o->loop, &o->req, o->fd, &buf, 1, -1, fs_cb);
  } else if (o->written.n && o->path) {
    o->req.data = o;
    rc = uv_fs_fsync(o->loop, &o->req, o->fd, fs_cb);
  } else {
    if (o->written.n)
      ack_written(o);  /* stdout: written is delivered */
    return;
  }
  if (rc) {
    o->retry_wait = 1;
    uv_timer_start(&o->timer, retry_cb, sl_backoff_next(&o->bo), 0);
    return;
  }
  o->busy = 1;
}

static int
file_init(uv_loop_t *loop, const struct sl_agent_conf *ac,
          const struct sl_out_cbs *cbs, struct sl_out **out, char *err,
          size_t errlen)
{
  struct file_out *o;
  uv_fs_t req;
  int fd;

  o = calloc(1, sizeof(*o));
  if (o == NULL)
    return SL_ENOMEM;
  o->base.ops = &sl_out_file_ops;
  o->loop = loop;
  sl_batchq_init(&o->todo);
  sl_batchq_init(&o->written);
  o->cbs = *cbs;
  o->max_inflight = ac->max_inflight * 2;
  if (ac->out_type == SL_OUT_FILE) {
    o->path = ac->path;
    fd = uv_fs_open(NULL, &req, ac->path, O_WRONLY | O_CREAT | O_APPEND |
                    O_CLOEXEC, 0644, NULL);
    uv_fs_req_cleanup(&req);
    if (fd < 0) {
      snprintf(err, errlen, "output.path: cannot open %s: %s", ac->path,
               uv_strerror(fd));
      free(o);
      return fd;
    }
    o->fd = fd;
  } else {
    o->fd = STDOUT_FILENO;
  }
  sl_backoff_init(&o->bo, ac->backoff_base_ms, ac->backoff_max_ms);
  uv_timer_init(loop, &o->timer);
  o->timer.data = o;
  *out = &o->base;
  return SL_OK;
}

static enum sl_out_result
file_send(struct sl_out *base, struct sl_batch *b)
{
  struct file_out *o = (struct file_out *)base;

  if (o->closing || o->todo.n + o->written.n >= (size_t)o->max_inflight)
    return SL_RETRY;
  sl_batchq_push(&o->todo, b);
  o->st.inflight++;
  kick(o);
  return SL_SENT;
}

static int
file_ready(const struct sl_out *base)
{
  return !((const struct file_out *)base)->retry_wait;
}

static void
file_stats(const struct sl_out *base, struct sl_out_stats *st)
{
  const struct file_out *o = (const struct file_out *)base;

  *st = o->st;
  st->connected = !o->retry_wait;
}

static void
timer_closed(uv_handle_t *h)
{
  struct file_out *o = h->data;
  void (*cb)(void *) = o->close_cb;
  void *arg = o->close_arg;

  free(o);
  if (cb)
    cb(arg);
}

static void
finish_close(struct file_out *o)
{
  struct sl_batch *b;
  uv_fs_t req;

  if (o->closed)
    return;
  o->closed = 1;
  /* What was written is in the file: make it durable and ack it rather
   * than sending it twice. What was not written goes back. */
  if (o->written.n && o->path) {
    if (uv_fs_fsync(NULL, &req, o->fd, NULL) == 0)
      ack_written(o);
    uv_fs_req_cleanup(&req);
  } else if (o->written.n) {
    ack_written(o);
  }
  /* Newest first: requeue puts each at the front of the agent's queue. */
  while ((b = sl_batchq_pop_last(&o->todo)) != NULL ||
         (b = sl_batchq_pop_last(&o->written)) != NULL) {
    o->st.inflight--;
    o->cbs.requeue(o->cbs.arg, b);
  }
  if (o->path)
    close(o->fd);
  uv_timer_stop(&o->timer);
  uv_close((uv_handle_t *)&o->timer, timer_closed);
}

static void
file_close(struct sl_out *base, void (*cb)(void *arg), void *arg)
{
  struct file_out *o = (struct file_out *)base;

  o->closing = 1;
  o->close_cb = cb;
  o->close_arg = arg;
  if (!o->busy)
    finish_close(o);  /* else fs_cb finishes once the operation is back */
}

const struct sl_out_ops sl_out_file_ops = {
  "file", file_init, file_send, file_ready, file_stats, file_close,
};
