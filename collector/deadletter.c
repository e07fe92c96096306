/* deadletter.c - dead-letter events and the dead-letter file. */
#include "deadletter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bulk.h"
#include "sl_err.h"
#include "sl_fs.h"
#include "sl_time.h"

void
sl_dl_free(struct sl_dl *d)
{
  if (!d)
    return;
  free(d->orig_index);
  free(d->orig_id);
  free(d->err_type);
  free(d->err_reason);
  free(d->bytes);
  free(d);
}

/* What bulk.c's builders need about src. idx and id receive the original
 * _index and _id when src has no dead letter yet; they must outlive d. */
static void
fill(const struct sl_dl_src *src, struct sl_deadletter *d, struct sl_buf *idx,
     struct sl_buf *id)
{
  memset(d, 0, sizeof *d);
  d->action = src->action;
  d->action_len = src->action_len;
  d->doc = src->doc;
  d->doc_len = src->doc_len;
  d->now_ns = sl_time_now_ns();
  d->no_pipeline = src->no_pipeline;
  if (src->dl) {
    d->orig_index = src->dl->orig_index;
    d->orig_id = src->dl->orig_id;
    d->status = src->dl->status;
    d->err_type = src->dl->err_type;
    d->err_reason = src->dl->err_reason;
    return;
  }
  /* An unparsable action line still gets a file line (empty index/id). */
  if (sl_bulk_action_parse(d->action, d->action_len, idx, id) != 0) {
    sl_buf_reset(idx);
    sl_buf_reset(id);
  }
  d->orig_index = idx->p ? idx->p : "";
  d->orig_id = id->p ? id->p : "";
}

int
sl_dl_make(const char *dl_index, const struct sl_dl_src *src, int status,
           const char *err_type, const char *err_reason, struct sl_dl **out)
{
  struct sl_buf idx, id, body;
  struct sl_deadletter d;
  struct sl_dl *dl = calloc(1, sizeof *dl);
  int rc = SL_ENOMEM;

  *out = NULL;
  sl_buf_init(&idx, 0);
  sl_buf_init(&id, 0);
  sl_buf_init(&body, 0);
  if (!dl)
    goto out;
  fill(src, &d, &idx, &id);
  d.status = status;
  d.err_type = err_type;
  d.err_reason = err_reason;
  dl->orig_index = strdup(d.orig_index);
  dl->orig_id = strdup(d.orig_id);
  dl->err_type = sl_strdup(err_type);
  dl->err_reason = sl_strdup(err_reason);
  dl->status = status;
  if (!dl->orig_index || !dl->orig_id || (err_type && !dl->err_type) ||
      (err_reason && !dl->err_reason))
    goto out;
  rc = sl_bulk_deadletter(&body, dl_index, &d);
  if (rc)
    goto out;
  dl->bytes = sl_buf_take(&body, &dl->len);
  *out = dl;
  dl = NULL;
out:
  sl_dl_free(dl);
  sl_buf_free(&idx);
  sl_buf_free(&id);
  sl_buf_free(&body);
  return rc;
}

static int
append_line(struct sl_buf *lines, const struct sl_dl_entry *e)
{
  struct sl_buf idx, id;
  struct sl_deadletter d;
  int rc;

  sl_buf_init(&idx, 0);
  sl_buf_init(&id, 0);
  fill(&e->src, &d, &idx, &id);
  if (e->src.dl) {
    /* The original's refusal is in d; e's is the dead letter's. */
    rc = sl_bulk_deadletter_line(lines, &d, e->status, e->err_type,
                                 e->err_reason);
  } else {
    d.status = e->status;
    d.err_type = e->err_type;
    d.err_reason = e->err_reason;
    rc = sl_bulk_deadletter_line(lines, &d, 0, NULL, NULL);
  }
  sl_buf_free(&idx);
  sl_buf_free(&id);
  return rc;
}

static int
write_file(const char *dir, const struct sl_buf *lines)
{
  char path[4096], day[SL_TIME_RFC3339_MS_LEN + 1];
  int fd, rc;

  rc = sl_fs_mkdir_p(dir);
  if (rc)
    return rc;
  sl_time_format_ms(sl_time_now_ns(), day);
  day[10] = '\0';
  if ((size_t)snprintf(path, sizeof path, "%s/%s.ndjson", dir, day) >=
      sizeof path)
    return SL_EINVAL;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  rc = sl_fs_write_all(fd, lines->p, lines->len);
  if (!rc && fsync(fd) != 0)
    rc = -errno;
  close(fd);
  /* The file may be new: make its directory entry durable too. */
  if (!rc)
    (void)sl_fs_fsync_dir(dir);
  return rc;
}

int
sl_dl_file_append(const char *dir, const struct sl_dl_entry *e, size_t n)
{
  struct sl_buf lines;
  size_t i;
  int rc = 0;

  sl_buf_init(&lines, 0);
  for (i = 0; i < n && !rc; i++)
    rc = append_line(&lines, &e[i]);
  if (!rc && lines.len)
    rc = write_file(dir, &lines);
  sl_buf_free(&lines);
  return rc;
}
