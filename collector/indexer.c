/* indexer.c - spool records to Elasticsearch _bulk over libcurl multi on the
 * libuv loop.
 *
 * Shape (curl docs/examples/multi-uv.c, without its globals): curl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t each) and
 * when to time out (CURLMOPT_TIMERFUNCTION -> one uv_timer_t); uv tells curl
 * what happened with curl_multi_socket_action().
 *
 * Where an item lives (each in exactly one place at a time):
 *   ready queue  - waiting to be packed into a request (FIFO; retries and
 *                  dead letters go to the front)
 *   formed stack - a whole request to send again unchanged (connection
 *                  error, 5xx/429/401 on the whole request) or a half of a
 *                  413-split request; sent before anything new
 *   delayed list - items that got a per-item 429/5xx, waiting for backoff
 *   a request    - in flight
 *   done         - final (201/200/409/dead-lettered)
 * A record is finished when all its items are done; its callback runs from
 * the prepare handle (never from inside curl or submit) so callers may call
 * submit or close from it.
 */
#include "indexer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bulk.h"
#include "es_setup.h"
#include "sl_backoff.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_log.h"
#include "sl_time.h"

#define COMP "indexer"
/* Responses are small thanks to filter_path (~60 bytes per item); the cap
 * only stops a broken peer from filling memory. */
#define RESP_MAX (64u << 20)

#define container_of(p, type, field) \
  ((type *)(void *)((char *)(p) - offsetof(type, field)))

/* Why the indexer is not ready; one comment per state. */
enum nr_reason {
  NR_NONE = 0,     /* ready */
  NR_STARTING,     /* setup (GET /, templates) has not finished yet */
  NR_CONNECT,      /* connection error or timeout */
  NR_AUTH,         /* 401/403: bad or missing credentials */
  NR_NOT_ES,       /* a 2xx answer without X-Elastic-Product */
  NR_VERSION,      /* Elasticsearch older than 8 */
  NR_SETUP,        /* a template could not be installed */
  NR_UNAVAILABLE,  /* 5xx on the whole request */
  NR_HTTP,         /* other unexpected whole-request answer */
  NR_COUNT
};
static const char *const nr_names[NR_COUNT] = {
  "none", "starting", "connect", "auth", "not_elasticsearch", "version",
  "setup", "unavailable", "http",
};

struct dl_info {        /* an item ES refused, rewritten as a dead letter */
  char *orig_index, *orig_id;
  int status;
  char *err_type, *err_reason;
  char *bytes;          /* action + document of the dead letter, with '\n' */
  size_t len;
};

struct rec;

struct item {
  struct rec *rec;
  struct item *prev, *next;   /* ready queue */
  struct sl_bulk_item span;   /* action and source inside rec->payload */
  uint64_t ready_at;          /* loop ms it became ready; 0 = send now */
  struct dl_info *dl;         /* set once refused; then dl->bytes is sent */
  int done;
};

struct rec {
  struct rec *prev, *next;    /* ix->recs, or ix->finished when done */
  uint64_t id;
  char *payload;
  size_t len;
  size_t nitems, remaining;
  sl_indexer_done_cb cb;
  void *arg;
  struct item items[];
};

struct batch {
  struct batch *next;
  uint64_t due;               /* delayed list: loop ms to become ready */
  size_t n;
  struct item *items[];
};

enum req_kind { REQ_BULK, REQ_SETUP };

struct req {
  struct req *prev, *next;
  struct sl_indexer *ix;
  enum req_kind kind;
  CURL *easy;
  struct curl_slist *hdrs;
  char *url;
  struct sl_buf body;         /* bytes on the wire (gzip or raw) */
  size_t raw_len;
  struct sl_buf resp;
  int is_es;                  /* saw X-Elastic-Product: Elasticsearch */
  uint64_t start_ns;
  struct batch *batch;        /* REQ_BULK */
  size_t host;                /* index into ix->hosts */
  char errbuf[CURL_ERROR_SIZE];
};

/* One configured URL. A host that failed to answer is skipped until
 * dead_until, so requests fail over to the others instead of alternating
 * between a live and a dead node. */
struct host {
  char *url;
  uint64_t dead_until;        /* loop ms */
  uint32_t fails;             /* consecutive connection failures */
};

struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct sl_indexer *ix;
  struct sock *prev, *next;
};

#define HIST_N 12
static const double hist_bounds[HIST_N] = {
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
#define STATUS_SLOTS 24

struct metrics {
  struct { int code; uint64_t n; } req_status[STATUS_SLOTS];
  uint64_t req_other_status, req_error;
  uint64_t items_ok, items_dup, items_429, items_4xx, items_5xx,
    items_nostatus;
  uint64_t retry_items, retry_requests, splits;
  uint64_t dl_es, dl_file, dl_file_errors;
  uint64_t bytes_raw, bytes_sent;
  uint64_t connects;          /* new TCP connections (keep-alive check) */
  uint64_t events_submitted, events_done, records_done;
  uint64_t hist[HIST_N + 1], hist_count;
  double hist_sum;
};

struct sl_indexer {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t curl_timer;      /* curl's own timeouts */
  uv_timer_t sched_timer;     /* flush interval, backoff, delayed items */
  uv_timer_t close_timer;     /* close() deadline */
  uv_prepare_t prepare;       /* runs pump() once before the loop sleeps */
  int open_handles;

  /* configuration */
  struct host *hosts;
  size_t nhosts, host_next;
  char *username, *password, *auth_hdr, *ca;
  int verify, compression, level;
  size_t cfg_max_bytes, max_bytes, max_events, max_inflight;
  uint64_t max_pending, flush_ms, timeout_ms;
  char *dl_index, *dl_dir;
  struct sl_es_setup_conf sc;  /* strings and patterns owned below */
  char *sc_prefix, *sc_ilm;
  json_t *sc_patterns;
  struct sl_es_object objs[SL_ES_SETUP_MAX];
  size_t nobjs;

  /* state */
  int started, setup_done, closing, closed;
  size_t setup_step;          /* 0: GET /, k: objs[k-1] */
  int setup_put;              /* 0: GET the object, 1: PUT it */
  enum nr_reason nr;
  uint64_t hold_until;        /* loop ms; no request starts before */
  struct sl_backoff bo_req, bo_item;
  struct rec *recs, *finished;
  struct item *rq_head, *rq_tail;
  size_t rq_n, rq_bytes;
  struct batch *formed, *delayed;
  struct req *reqs;
  size_t inflight_bulk, inflight_setup;
  struct sock *socks;
  uint64_t pending;
  void (*close_cb)(void *arg);
  void *close_arg;
  struct metrics m;
};

static void mark_dirty(struct sl_indexer *ix);

/* ---- small helpers ------------------------------------------------------ */

static const json_t *
cfg_get(const json_t *o, const char *key)
{
  char part[64];
  const char *dot;
  const json_t *v = json_object_get(o, key);

  if (v || !json_is_object(o))
    return v;
  dot = strchr(key, '.');
  if (!dot || (size_t)(dot - key) >= sizeof part)
    return NULL;
  memcpy(part, key, (size_t)(dot - key));
  part[dot - key] = '\0';
  return cfg_get(json_object_get(o, part), dot + 1);
}

static int64_t
cfg_num(const json_t *o, const char *key, int64_t def, int kind)
{
  const json_t *v = cfg_get(o, key);
  int64_t x;

  if (json_is_integer(v))
    return (int64_t)json_integer_value(v);
  if (json_is_real(v))
    return (int64_t)json_real_value(v);
  if (json_is_string(v)) {
    const char *s = json_string_value(v);

    if (kind == 'd' && sl_conf_parse_duration_ms(s, &x) == 0)
      return x;
    if (kind == 's' && sl_conf_parse_size(s, &x) == 0)
      return x;
    if (kind == 'i')
      return strtoll(s, NULL, 10);
  }
  return def;
}

static const char *
cfg_str(const json_t *o, const char *key)
{
  const json_t *v = cfg_get(o, key);

  return json_is_string(v) && json_string_length(v) ? json_string_value(v)
                                                     : NULL;
}

static int
cfg_bool(const json_t *o, const char *key, int def)
{
  const json_t *v = cfg_get(o, key);

  if (json_is_boolean(v))
    return json_is_true(v);
  if (json_is_string(v))
    return strcmp(json_string_value(v), "true") == 0 ||
           strcmp(json_string_value(v), "yes") == 0 ||
           strcmp(json_string_value(v), "on") == 0;
  return def;
}

static char *
xstrdup(const char *s)
{
  return s ? strdup(s) : NULL;
}

static char *
base64(const char *s)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(s), i, o = 0;
  char *out = malloc(4 * ((n + 2) / 3) + 1);

  if (!out)
    return NULL;
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)(unsigned char)s[i] << 16 |
                 (uint32_t)(unsigned char)s[i + 1] << 8 |
                 (unsigned char)s[i + 2];
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)(unsigned char)s[i] << 16;

    if (i + 1 < n)
      v |= (uint32_t)(unsigned char)s[i + 1] << 8;
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return out;
}

static void
set_nr(struct sl_indexer *ix, enum nr_reason r, const char *detail)
{
  if (ix->nr == r)
    return;
  /* Logged once per change of state, not per failed request. */
  if (r == NR_NONE)
    sl_log(SL_LOG_INFO, COMP, "elasticsearch ready", SL_LF_STR, "previous",
           nr_names[ix->nr], SL_LF_END);
  else
    sl_log(r == NR_STARTING ? SL_LOG_INFO : SL_LOG_WARN, COMP,
           "elasticsearch not ready", SL_LF_STR, "reason", nr_names[r],
           SL_LF_STR, "detail", detail ? detail : "", SL_LF_END);
  ix->nr = r;
}

static size_t
item_size(const struct item *it)
{
  return it->dl ? it->dl->len : it->span.act_len + it->span.src_len + 2;
}

static void
dl_free(struct dl_info *d)
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

static void
rec_free(struct rec *r)
{
  size_t i;

  for (i = 0; i < r->nitems; i++)
    dl_free(r->items[i].dl);
  free(r->payload);
  free(r);
}

static void
list_unlink_rec(struct rec **head, struct rec *r)
{
  if (r->prev)
    r->prev->next = r->next;
  else
    *head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static void
list_push_rec(struct rec **head, struct rec *r)
{
  r->prev = NULL;
  r->next = *head;
  if (*head)
    (*head)->prev = r;
  *head = r;
}

/* ---- the ready queue ---------------------------------------------------- */

static void
rq_push_back(struct sl_indexer *ix, struct item *it)
{
  it->next = NULL;
  it->prev = ix->rq_tail;
  if (ix->rq_tail)
    ix->rq_tail->next = it;
  else
    ix->rq_head = it;
  ix->rq_tail = it;
  ix->rq_n++;
  ix->rq_bytes += item_size(it);
}

static void
rq_push_front(struct sl_indexer *ix, struct item *it)
{
  it->ready_at = 0;
  it->prev = NULL;
  it->next = ix->rq_head;
  if (ix->rq_head)
    ix->rq_head->prev = it;
  else
    ix->rq_tail = it;
  ix->rq_head = it;
  ix->rq_n++;
  ix->rq_bytes += item_size(it);
}

static struct item *
rq_pop(struct sl_indexer *ix)
{
  struct item *it = ix->rq_head;

  ix->rq_head = it->next;
  if (ix->rq_head)
    ix->rq_head->prev = NULL;
  else
    ix->rq_tail = NULL;
  it->next = it->prev = NULL;
  ix->rq_n--;
  ix->rq_bytes -= item_size(it);
  return it;
}

static struct batch *
batch_new(size_t n)
{
  struct batch *b = malloc(sizeof *b + (n ? n : 1) * sizeof(struct item *));

  if (b) {
    b->next = NULL;
    b->due = 0;
    b->n = 0;
  }
  return b;
}

/* Items waiting in a batch go back to the ready queue, front first, in
 * their original order. */
static void
batch_to_ready(struct sl_indexer *ix, struct batch *b)
{
  size_t i;

  for (i = b->n; i > 0; i--)
    rq_push_front(ix, b->items[i - 1]);
  free(b);
}

static void
delayed_insert(struct sl_indexer *ix, struct batch *b)
{
  struct batch **pp = &ix->delayed;

  while (*pp && (*pp)->due <= b->due)
    pp = &(*pp)->next;
  b->next = *pp;
  *pp = b;
}

/* A whole request failed in a way that says "try the same thing later". */
static void
requeue_hold(struct sl_indexer *ix, struct batch *b)
{
  uint64_t until = uv_now(ix->loop) + sl_backoff_next(&ix->bo_req);

  b->next = ix->formed;
  ix->formed = b;
  if (until > ix->hold_until)
    ix->hold_until = until;
  ix->m.retry_requests++;
}

/* ---- record completion -------------------------------------------------- */

static void
item_final(struct sl_indexer *ix, struct item *it)
{
  struct rec *r = it->rec;

  it->done = 1;
  ix->pending--;
  ix->m.events_done++;
  if (--r->remaining == 0) {
    list_unlink_rec(&ix->recs, r);
    list_push_rec(&ix->finished, r);
    mark_dirty(ix);
  }
}

static void
run_finished(struct sl_indexer *ix)
{
  struct rec *r;

  while ((r = ix->finished) != NULL) {
    list_unlink_rec(&ix->finished, r);
    ix->m.records_done++;
    if (r->cb)
      r->cb(r->arg, r->id);
    rec_free(r);
  }
}

/* ---- dead letters ------------------------------------------------------- */

static void
fill_dl(struct item *it, struct sl_deadletter *d, struct sl_buf *idx,
        struct sl_buf *id)
{
  const char *p = it->rec->payload;

  memset(d, 0, sizeof *d);
  d->action = p + it->span.act_off;
  d->action_len = it->span.act_len;
  d->doc = p + it->span.src_off;
  d->doc_len = it->span.src_len;
  d->now_ns = sl_time_now_ns();
  if (it->dl) {
    d->orig_index = it->dl->orig_index;
    d->orig_id = it->dl->orig_id;
    d->status = it->dl->status;
    d->err_type = it->dl->err_type;
    d->err_reason = it->dl->err_reason;
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

/* Rewrite a refused item into its dead-letter event (sent like any other
 * item). SL_ENOMEM leaves the item unchanged. */
static int
make_dl(struct sl_indexer *ix, struct item *it, int status,
        const char *type, const char *reason)
{
  struct sl_buf idx, id, out;
  struct sl_deadletter d;
  struct dl_info *dl = calloc(1, sizeof *dl);
  int rc = SL_ENOMEM;

  sl_buf_init(&idx, 0);
  sl_buf_init(&id, 0);
  sl_buf_init(&out, 0);
  if (!dl)
    goto out;
  fill_dl(it, &d, &idx, &id);
  d.status = status;
  d.err_type = type;
  d.err_reason = reason;
  dl->orig_index = strdup(d.orig_index);
  dl->orig_id = strdup(d.orig_id);
  dl->err_type = xstrdup(type);
  dl->err_reason = xstrdup(reason);
  dl->status = status;
  if (!dl->orig_index || !dl->orig_id || (type && !dl->err_type) ||
      (reason && !dl->err_reason))
    goto out;
  rc = sl_bulk_deadletter(&out, ix->dl_index, &d);
  if (rc)
    goto out;
  dl->bytes = sl_buf_take(&out, &dl->len);
  it->dl = dl;
  dl = NULL;
out:
  dl_free(dl);
  sl_buf_free(&idx);
  sl_buf_free(&id);
  sl_buf_free(&out);
  return rc;
}

static int
mkdir_one(const char *path)
{
  if (mkdir(path, 0750) == 0 || errno == EEXIST)
    return 0;
  return -errno;
}

/* Append lines to data_dir/deadletter/<YYYY-MM-DD>.ndjson and fsync, so
 * the caller may count the items as delivered. */
static int
write_dl_file(struct sl_indexer *ix, const struct sl_buf *lines)
{
  char path[4096], day[SL_TIME_RFC3339_MS_LEN + 1];
  size_t off = 0;
  int fd, dfd, rc;

  if (lines->len == 0)
    return 0;
  rc = mkdir_one(ix->dl_dir);
  if (rc)
    return rc;
  sl_time_format_ms(sl_time_now_ns(), day);
  day[10] = '\0';
  if ((size_t)snprintf(path, sizeof path, "%s/%s.ndjson", ix->dl_dir, day) >=
      sizeof path)
    return SL_EINVAL;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return -errno;
  while (off < lines->len) {
    ssize_t w = write(fd, lines->p + off, lines->len - off);

    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      rc = -errno;
      goto out;
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0) {
    rc = -errno;
    goto out;
  }
  /* The file may be new: make its directory entry durable too. */
  dfd = open(ix->dl_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
out:
  close(fd);
  return rc;
}

/* Items whose last stop is the dead-letter file. On success they are done;
 * on failure (disk full...) they are retried through ES later, which will
 * refuse them again and bring them back here. Never dropped. */
static void
file_items(struct sl_indexer *ix, struct batch *b, const int *status,
           const char *const *type, const char *const *reason)
{
  struct sl_buf lines, idx, id;
  struct sl_deadletter d;
  size_t i;
  int rc = 0;

  sl_buf_init(&lines, 0);
  for (i = 0; i < b->n && !rc; i++) {
    struct item *it = b->items[i];

    sl_buf_init(&idx, 0);
    sl_buf_init(&id, 0);
    fill_dl(it, &d, &idx, &id);
    if (it->dl)
      rc = sl_bulk_deadletter_line(&lines, &d, status[i], type[i],
                                   reason[i]);
    else {
      d.status = status[i];
      d.err_type = type[i];
      d.err_reason = reason[i];
      rc = sl_bulk_deadletter_line(&lines, &d, 0, NULL, NULL);
    }
    sl_buf_free(&idx);
    sl_buf_free(&id);
  }
  if (!rc)
    rc = write_dl_file(ix, &lines);
  sl_buf_free(&lines);
  if (rc) {
    ix->m.dl_file_errors++;
    sl_log(SL_LOG_ERROR, COMP, "cannot write dead-letter file; will retry",
           SL_LF_STR, "dir", ix->dl_dir, SL_LF_INT, "events",
           (int64_t)b->n, SL_LF_ERR, rc, SL_LF_END);
    b->due = uv_now(ix->loop) + sl_backoff_next(&ix->bo_item);
    delayed_insert(ix, b);
    return;
  }
  sl_log(SL_LOG_WARN, COMP, "events written to the dead-letter file",
         SL_LF_STR, "dir", ix->dl_dir, SL_LF_INT, "events", (int64_t)b->n,
         SL_LF_END);
  for (i = 0; i < b->n; i++) {
    ix->m.dl_file++;
    item_final(ix, b->items[i]);
  }
  free(b);
}

/* Whole-request outcome for every item of b (413 on one item, ...). */
static void
file_batch(struct sl_indexer *ix, struct batch *b, int status,
           const char *type, const char *reason)
{
  int st[1] = { status };
  const char *ty[1] = { type }, *re[1] = { reason };

  /* Only ever called with single-item batches. */
  file_items(ix, b, st, ty, re);
}

/* ---- curl glue ---------------------------------------------------------- */

static void on_sock_closed(uv_handle_t *h);

static void
sock_close(struct sl_indexer *ix, struct sock *s)
{
  if (s->prev)
    s->prev->next = s->next;
  else
    ix->socks = s->next;
  if (s->next)
    s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void check_multi(struct sl_indexer *ix);

static void
on_poll(uv_poll_t *h, int status, int events)
{
  struct sock *s = container_of(h, struct sock, poll);
  struct sl_indexer *ix = s->ix;
  int flags = 0, running;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  /* `s` may be closed by the socket callback inside this call. */
  curl_multi_socket_action(ix->multi, s->fd, flags, &running);
  check_multi(ix);
}

static int
on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp,
               void *socketp)
{
  struct sl_indexer *ix = userp;
  struct sock *s = socketp;
  int events = 0;

  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(ix->multi, fd, NULL);
      sock_close(ix, s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return -1;
    if (uv_poll_init_socket(ix->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    ix->open_handles++;
    s->fd = fd;
    s->ix = ix;
    s->next = ix->socks;
    if (ix->socks)
      ix->socks->prev = s;
    ix->socks = s;
    curl_multi_assign(ix->multi, fd, s);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void
on_curl_timeout(uv_timer_t *t)
{
  struct sl_indexer *ix = container_of(t, struct sl_indexer, curl_timer);
  int running;

  curl_multi_socket_action(ix->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi(ix);
}

static int
on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
  struct sl_indexer *ix = userp;

  /* -1 deletes the timer; 0 means "as soon as possible", which a uv timer
   * of 0 gives on the next loop iteration (never call back into curl from
   * inside this callback). */
  if (timeout_ms < 0)
    uv_timer_stop(&ix->curl_timer);
  else
    uv_timer_start(&ix->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static size_t
on_write(char *p, size_t size, size_t n, void *userp)
{
  struct req *r = userp;

  if (sl_buf_append(&r->resp, p, size * n) != 0)
    return 0; /* makes curl fail the transfer: treated as a conn error */
  return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *userp)
{
  static const char key[] = "x-elastic-product:";
  struct req *r = userp;
  size_t len = size * n, k = sizeof key - 1;

  /* A new status line (after a 100 Continue or a redirect) starts a new
   * header block. */
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
    r->is_es = 0;
  if (len > k && strncasecmp(p, key, k) == 0) {
    const char *v = p + k, *end = p + len;

    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
                       end[-1] == ' '))
      end--;
    r->is_es = (size_t)(end - v) == 13 && strncmp(v, "Elasticsearch", 13)
                                              == 0;
  }
  return len;
}

static void
req_free(struct req *r)
{
  if (r->easy)
    curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  free(r->url);
  sl_buf_free(&r->body);
  sl_buf_free(&r->resp);
  free(r->batch);
  free(r);
}

static int
hdr_add(struct req *r, const char *h)
{
  struct curl_slist *n = curl_slist_append(r->hdrs, h);

  if (!n)
    return SL_ENOMEM;
  r->hdrs = n;
  return 0;
}

/* Round robin over the hosts that are not marked dead; when all are, the
 * one that comes back first. */
static size_t
pick_host(struct sl_indexer *ix)
{
  uint64_t now = uv_now(ix->loop);
  size_t i, best = 0;

  for (i = 0; i < ix->nhosts; i++) {
    size_t k = (ix->host_next + i) % ix->nhosts;

    if (ix->hosts[k].dead_until <= now) {
      ix->host_next = k + 1;
      return k;
    }
    if (ix->hosts[k].dead_until < ix->hosts[best].dead_until)
      best = k;
  }
  ix->host_next = best + 1;
  return best;
}

/* Any HTTP answer proves the host alive; no answer marks it dead for a
 * capped exponential time (no jitter needed: only we read it). */
static void
host_result(struct sl_indexer *ix, size_t k, int answered)
{
  struct host *h = &ix->hosts[k];
  uint64_t d;

  if (answered) {
    h->fails = 0;
    h->dead_until = 0;
    return;
  }
  d = ix->bo_req.base_ms << (h->fails < 16 ? h->fails : 16);
  if (d > ix->bo_req.cap_ms)
    d = ix->bo_req.cap_ms;
  h->fails++;
  h->dead_until = uv_now(ix->loop) + d;
}

/* Start r: method "GET", "PUT" or "POST" with r->body; path after the
 * host, without a leading '/'. */
static int
req_start(struct sl_indexer *ix, struct req *r, const char *method,
          const char *path, const char *ctype, int gz)
{
  const char *host;
  size_t n;
  CURL *e;
  int rc = SL_ENOMEM;

  r->ix = ix;
  r->host = pick_host(ix);
  host = ix->hosts[r->host].url;
  n = strlen(host) + strlen(path) + 2;
  sl_buf_init(&r->resp, RESP_MAX);
  r->url = malloc(n);
  if (!r->url)
    return rc;
  snprintf(r->url, n, "%s/%s", host, path);
  e = r->easy = curl_easy_init();
  if (!e)
    return rc;
  /* "Expect:" turns off curl's 100-continue wait on big bodies, which
   * costs a round trip (or a 1 s stall) per request. */
  if (hdr_add(r, "Expect:") || hdr_add(r, "Accept: application/json"))
    return rc;
  if (ctype && hdr_add(r, ctype))
    return rc;
  if (gz && hdr_add(r, "Content-Encoding: gzip"))
    return rc;
  if (ix->auth_hdr && hdr_add(r, ix->auth_hdr))
    return rc;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ix->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(ix->timeout_ms < 10000 ? ix->timeout_ms : 10000));
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* ES speaks HTTP/1.1 only; skip the h2 ALPN dance on https. */
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  if (ix->username) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, ix->username);
    curl_easy_setopt(e, CURLOPT_PASSWORD, ix->password ? ix->password : "");
  }
  if (ix->ca)
    curl_easy_setopt(e, CURLOPT_CAINFO, ix->ca);
  if (!ix->verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    /* POSTFIELDS does not copy: r->body lives as long as the request. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.p ? r->body.p : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)r->body.len);
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  r->start_ns = uv_hrtime();
  if (curl_multi_add_handle(ix->multi, e) != CURLM_OK)
    return SL_EINTERNAL;
  rc = 0;
  r->next = ix->reqs;
  r->prev = NULL;
  if (ix->reqs)
    ix->reqs->prev = r;
  ix->reqs = r;
  if (r->kind == REQ_BULK)
    ix->inflight_bulk++;
  else
    ix->inflight_setup++;
  return rc;
}

/* ---- setup -------------------------------------------------------------- */

static void
setup_fail(struct sl_indexer *ix, enum nr_reason why, const char *detail)
{
  /* The same step is tried again (maybe on another host); earlier steps
   * are done and need not be repeated. */
  ix->hold_until = uv_now(ix->loop) + sl_backoff_next(&ix->bo_req);
  set_nr(ix, why, detail);
}

static void
setup_send(struct sl_indexer *ix)
{
  struct req *r = calloc(1, sizeof *r);
  const struct sl_es_object *o;
  int rc;

  if (!r) {
    setup_fail(ix, NR_SETUP, "out of memory");
    return;
  }
  r->kind = REQ_SETUP;
  sl_buf_init(&r->body, 0);
  if (ix->setup_step == 0) {
    rc = req_start(ix, r, "GET", "", NULL, 0);
  } else {
    o = &ix->objs[ix->setup_step - 1];
    if (ix->setup_put) {
      rc = sl_buf_append_str(&r->body, o->body);
      if (!rc)
        rc = req_start(ix, r, "PUT", o->path,
                       "Content-Type: application/json", 0);
    } else {
      rc = req_start(ix, r, "GET", o->path, NULL, 0);
    }
  }
  if (rc) {
    req_free(r);
    setup_fail(ix, NR_SETUP, sl_strerror(rc));
  }
}

static void
setup_advance(struct sl_indexer *ix)
{
  ix->setup_put = 0;
  if (++ix->setup_step <= ix->nobjs)
    return;
  ix->setup_done = 1;
  sl_backoff_reset(&ix->bo_req);
  set_nr(ix, NR_NONE, NULL);
}

static void
setup_done(struct sl_indexer *ix, struct req *r, CURLcode res, long status)
{
  char detail[640], num[32];
  int major, minor, osearch, rc;

  if (res != CURLE_OK) {
    snprintf(detail, sizeof detail, "%.300s: %.300s", r->url,
             r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
    setup_fail(ix, NR_CONNECT, detail);
    return;
  }
  snprintf(detail, sizeof detail, "HTTP %ld from %.300s: %.120s", status,
           r->url, r->resp.p ? r->resp.p : "");
  if (status == 401 || (status == 403 && ix->setup_step == 0)) {
    setup_fail(ix, NR_AUTH, detail);
    return;
  }
  if (status / 100 == 2 && !r->is_es) {
    snprintf(detail, sizeof detail, "not Elasticsearch: %s answered without "
             "X-Elastic-Product: Elasticsearch", r->url);
    sl_log(SL_LOG_ERROR, COMP, "refusing server", SL_LF_STR, "reason",
           detail, SL_LF_END);
    setup_fail(ix, NR_NOT_ES, detail);
    return;
  }
  if (ix->setup_step == 0) {
    if (status != 200) {
      setup_fail(ix, status >= 500 ? NR_UNAVAILABLE : NR_HTTP, detail);
      return;
    }
    if (sl_es_parse_root(r->resp.p ? r->resp.p : "", r->resp.len, num,
                         sizeof num, &major, &minor, &osearch) != 0 ||
        osearch || major < 8) {
      snprintf(detail, sizeof detail, "need Elasticsearch >= 8, got %s%s",
               num[0] ? num : "no version", osearch ? " (OpenSearch)" : "");
      setup_fail(ix, NR_VERSION, detail);
      return;
    }
    sl_log(SL_LOG_INFO, COMP, "connected to elasticsearch", SL_LF_STR,
           "version", num, SL_LF_STR, "url", r->url, SL_LF_END);
    /* Templates depend on the version (lifecycle support): rebuild. */
    if (ix->sc.es_major != major || ix->sc.es_minor != minor) {
      ix->sc.es_major = major;
      ix->sc.es_minor = minor;
      sl_es_setup_free(ix->objs, ix->nobjs);
      rc = sl_es_setup_build(&ix->sc, ix->objs, &ix->nobjs);
      if (rc) {
        ix->sc.es_major = 0;
        setup_fail(ix, NR_SETUP, sl_strerror(rc));
        return;
      }
    }
    setup_advance(ix);
    return;
  }
  if (status == 403) {
    /* Allowed to write but not to manage templates: index anyway and
     * rely on whatever templates the operator installed. */
    sl_log(SL_LOG_WARN, COMP, "no privilege to install template; using "
           "existing ones", SL_LF_STR, "path",
           ix->objs[ix->setup_step - 1].path, SL_LF_END);
    setup_advance(ix);
    return;
  }
  if (!ix->setup_put) {
    const struct sl_es_object *o = &ix->objs[ix->setup_step - 1];

    if (status == 200 &&
        sl_es_stored_version(r->resp.p ? r->resp.p : "", r->resp.len) ==
          o->version) {
      setup_advance(ix);
    } else if (status == 200 || status == 404) {
      ix->setup_put = 1;
    } else {
      setup_fail(ix, status >= 500 ? NR_UNAVAILABLE : NR_SETUP, detail);
    }
    return;
  }
  if (status / 100 != 2) {
    setup_fail(ix, status >= 500 ? NR_UNAVAILABLE : NR_SETUP, detail);
    return;
  }
  sl_log(SL_LOG_INFO, COMP, "installed", SL_LF_STR, "path",
         ix->objs[ix->setup_step - 1].path, SL_LF_END);
  setup_advance(ix);
}

/* ---- bulk requests ------------------------------------------------------ */

static struct batch *
take_batch(struct sl_indexer *ix)
{
  struct item *it = ix->rq_head;
  size_t n = 0, bytes = 0;
  struct batch *b;

  /* At least one item, even one over max_bytes: a too-big event is found
   * out by ES's 413 and dead-lettered, never stuck here. */
  while (it && n < ix->max_events &&
         (n == 0 || bytes + item_size(it) <= ix->max_bytes)) {
    bytes += item_size(it);
    n++;
    it = it->next;
  }
  b = batch_new(n);
  if (!b)
    return NULL;
  while (b->n < n)
    b->items[b->n++] = rq_pop(ix);
  return b;
}

static int
build_body(struct sl_indexer *ix, struct batch *b, struct sl_buf *raw)
{
  size_t i, total = 0;
  int rc;

  for (i = 0; i < b->n; i++)
    total += item_size(b->items[i]);
  rc = sl_buf_reserve(raw, total);
  for (i = 0; i < b->n && !rc; i++) {
    struct item *it = b->items[i];
    const char *p = it->rec->payload;

    if (it->dl) {
      rc = sl_buf_append(raw, it->dl->bytes, it->dl->len);
      continue;
    }
    rc = sl_buf_append(raw, p + it->span.act_off, it->span.act_len);
    if (!rc)
      rc = sl_buf_append_byte(raw, '\n');
    if (!rc)
      rc = sl_buf_append(raw, p + it->span.src_off, it->span.src_len);
    if (!rc)
      rc = sl_buf_append_byte(raw, '\n');
  }
  return rc;
}

static int
send_batch(struct sl_indexer *ix, struct batch *b)
{
  struct req *r = calloc(1, sizeof *r);
  struct sl_buf raw;
  int rc = SL_ENOMEM;

  sl_buf_init(&raw, 0);
  if (!r)
    goto fail;
  r->kind = REQ_BULK;
  sl_buf_init(&r->body, 0);
  rc = build_body(ix, b, &raw);
  if (rc)
    goto fail;
  r->raw_len = raw.len;
  if (ix->compression) {
    rc = sl_bulk_gzip(raw.p, raw.len, ix->level, &r->body);
    if (rc)
      goto fail;
    sl_buf_free(&raw);
  } else {
    r->body = raw;
    sl_buf_init(&raw, 0);
  }
  r->batch = b;
  rc = req_start(ix, r, "POST", "_bulk?filter_path=" SL_BULK_FILTER_PATH,
                 "Content-Type: application/x-ndjson", ix->compression);
  if (rc) {
    r->batch = NULL;
    goto fail;
  }
  ix->m.bytes_raw += r->raw_len;
  ix->m.bytes_sent += r->body.len;
  return 0;
fail:
  sl_buf_free(&raw);
  if (r)
    req_free(r);
  sl_log(SL_LOG_ERROR, COMP, "cannot start bulk request", SL_LF_ERR, rc,
         SL_LF_END);
  return rc;
}

static int
is_retryable_item(const struct sl_bulk_result *res)
{
  /* cluster_block_exception (flood-stage disk, index.blocks.write) is an
   * operator's temporary switch, 429 or 403: hold and retry, never
   * dead-letter. A missing status is an unknown outcome: retry. */
  if (res->err_type && strcmp(res->err_type, "cluster_block_exception") == 0)
    return 1;
  return res->status == 0 || res->status == 429 || res->status >= 500;
}

static void
handle_items(struct sl_indexer *ix, struct batch *b,
             const struct sl_bulk_resp *resp)
{
  struct batch *retry = batch_new(b->n), *file = batch_new(b->n);
  int *fst = calloc(b->n, sizeof *fst);
  const char **fty = calloc(b->n, sizeof *fty);
  const char **fre = calloc(b->n, sizeof *fre);
  size_t i;

  if (!retry || !file || !fst || !fty || !fre) {
    /* Nothing was changed yet: send the whole batch again later. */
    free(retry);
    free(file);
    free(fst);
    free(fty);
    free(fre);
    requeue_hold(ix, b);
    return;
  }
  for (i = 0; i < b->n; i++) {
    struct item *it = b->items[i];
    const struct sl_bulk_result *res = &resp->items[i];
    int st = res->status;

    if (st == 200 || st == 201 || st == 409) {
      if (st == 409)
        ix->m.items_dup++;
      else
        ix->m.items_ok++;
      if (it->dl)
        ix->m.dl_es++;
      item_final(ix, it);
      continue;
    }
    if (st == 429)
      ix->m.items_429++;
    else if (st >= 500)
      ix->m.items_5xx++;
    else if (st == 0)
      ix->m.items_nostatus++;
    else
      ix->m.items_4xx++;
    if (is_retryable_item(res)) {
      retry->items[retry->n++] = it;
      continue;
    }
    if (it->dl || make_dl(ix, it, st, res->err_type, res->err_reason) != 0) {
      /* A refused dead letter (or no memory to build one): the file. */
      fst[file->n] = st;
      fty[file->n] = res->err_type;
      fre[file->n] = res->err_reason;
      file->items[file->n++] = it;
      continue;
    }
    sl_log(SL_LOG_WARN, COMP, "event refused; sending it as a dead letter",
           SL_LF_INT, "status", (int64_t)st, SL_LF_STR, "error.type",
           res->err_type, SL_LF_STR, "reason", res->err_reason, SL_LF_END);
    rq_push_front(ix, it);
  }
  if (retry->n) {
    ix->m.retry_items += retry->n;
    retry->due = uv_now(ix->loop) + sl_backoff_next(&ix->bo_item);
    delayed_insert(ix, retry);
  } else {
    sl_backoff_reset(&ix->bo_item);
    free(retry);
  }
  if (file->n)
    file_items(ix, file, fst, fty, fre); /* borrows strings from resp */
  else
    free(file);
  free(fst);
  free(fty);
  free(fre);
  free(b);
}

static void
split_413(struct sl_indexer *ix, struct batch *b, size_t raw_len)
{
  struct batch *lo, *hi;
  size_t half = b->n / 2, i;

  if (b->n == 1) {
    file_batch(ix, b, 413, "request_entity_too_large",
               "event alone is over Elasticsearch's http.max_content_length");
    return;
  }
  lo = batch_new(half);
  hi = batch_new(b->n - half);
  if (!lo || !hi) {
    free(lo);
    free(hi);
    requeue_hold(ix, b);
    return;
  }
  for (i = 0; i < b->n; i++) {
    if (i < half)
      lo->items[lo->n++] = b->items[i];
    else
      hi->items[hi->n++] = b->items[i];
  }
  free(b);
  /* Later batches start at the size that worked, instead of meeting the
   * same 413 again. */
  if (raw_len / 2 < ix->max_bytes) {
    ix->max_bytes = raw_len / 2 > 1024 ? raw_len / 2 : 1024;
    sl_log(SL_LOG_WARN, COMP, "413 from elasticsearch; lowering "
           "bulk_max_bytes", SL_LF_INT, "bulk_max_bytes",
           (int64_t)ix->max_bytes, SL_LF_END);
  }
  ix->m.splits++;
  hi->next = ix->formed;
  lo->next = hi;
  ix->formed = lo;
}

/* Both lines of the item parse as JSON (a dead letter was built by us). */
static int
item_is_json(const struct item *it)
{
  const char *p = it->rec->payload;
  json_t *a, *d;
  int ok;

  if (it->dl)
    return 1;
  a = json_loadb(p + it->span.act_off, it->span.act_len, 0, NULL);
  d = json_loadb(p + it->span.src_off, it->span.src_len, 0, NULL);
  ok = a && d;
  json_decref(a);
  json_decref(d);
  return ok;
}

static void
count_status(struct sl_indexer *ix, long status)
{
  size_t i;

  for (i = 0; i < STATUS_SLOTS; i++) {
    if (ix->m.req_status[i].code == (int)status) {
      ix->m.req_status[i].n++;
      return;
    }
    if (ix->m.req_status[i].code == 0) {
      ix->m.req_status[i].code = (int)status;
      ix->m.req_status[i].n = 1;
      return;
    }
  }
  ix->m.req_other_status++;
}

static void
bulk_done(struct sl_indexer *ix, struct req *r, CURLcode res, long status)
{
  struct batch *b = r->batch;
  struct sl_bulk_resp resp;
  char detail[640];
  double secs = (double)(uv_hrtime() - r->start_ns) / 1e9;
  size_t i;

  r->batch = NULL;
  for (i = 0; i < HIST_N && secs > hist_bounds[i]; i++)
    ;
  ix->m.hist[i]++;
  ix->m.hist_count++;
  ix->m.hist_sum += secs;
  if (res != CURLE_OK) {
    ix->m.req_error++;
    snprintf(detail, sizeof detail, "%.300s: %.300s", r->url,
             r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
    set_nr(ix, NR_CONNECT, detail);
    requeue_hold(ix, b);
    return;
  }
  count_status(ix, status);
  snprintf(detail, sizeof detail, "HTTP %ld from %.300s: %.120s", status,
           r->url, r->resp.p ? r->resp.p : "");
  if (status / 100 == 2) {
    if (!r->is_es) {
      snprintf(detail, sizeof detail, "not Elasticsearch: %s answered "
               "without X-Elastic-Product: Elasticsearch", r->url);
      set_nr(ix, NR_NOT_ES, detail);
      requeue_hold(ix, b);
      return;
    }
    if (sl_bulk_resp_parse(r->resp.p ? r->resp.p : "", r->resp.len, b->n,
                           &resp) != 0) {
      sl_log(SL_LOG_WARN, COMP, "unusable bulk response; resending",
             SL_LF_STR, "detail", detail, SL_LF_END);
      requeue_hold(ix, b);
      return;
    }
    set_nr(ix, NR_NONE, NULL);
    sl_backoff_reset(&ix->bo_req);
    handle_items(ix, b, &resp);
    sl_bulk_resp_free(&resp);
    return;
  }
  if (status == 413) {
    split_413(ix, b, r->raw_len);
    return;
  }
  if (status == 400 && b->n > 1) {
    /* One bad line fails the whole request: halve until it is alone. */
    split_413(ix, b, SIZE_MAX);
    return;
  }
  if (status == 400 && !item_is_json(b->items[0])) {
    file_batch(ix, b, 400, "bulk_request_rejected", detail);
    return;
  }
  /* A 400 for one well-formed item is not that item's fault (a proxy, a
   * cluster setting): keep it and retry rather than dead-letter
   * everything one by one. */
  if (status == 401 || status == 403)
    set_nr(ix, NR_AUTH, detail);
  else if (status >= 500)
    set_nr(ix, NR_UNAVAILABLE, detail);
  else if (status != 429)
    set_nr(ix, NR_HTTP, detail);
  requeue_hold(ix, b);
}

static void
check_multi(struct sl_indexer *ix)
{
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(ix->multi, &left)) != NULL) {
    struct req *r = NULL;
    long status = 0;

    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    {
      long nc = 0;

      curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &nc);
      ix->m.connects += nc > 0 ? (uint64_t)nc : 0;
    }
    curl_multi_remove_handle(ix->multi, r->easy);
    if (r->prev)
      r->prev->next = r->next;
    else
      ix->reqs = r->next;
    if (r->next)
      r->next->prev = r->prev;
    host_result(ix, r->host, msg->data.result == CURLE_OK);
    if (r->kind == REQ_BULK) {
      ix->inflight_bulk--;
      bulk_done(ix, r, msg->data.result, status);
    } else {
      ix->inflight_setup--;
      setup_done(ix, r, msg->data.result, status);
    }
    req_free(r);
    mark_dirty(ix);
  }
}

/* ---- scheduling --------------------------------------------------------- */

static void finish_close(struct sl_indexer *ix);

static void
on_sched(uv_timer_t *t)
{
  mark_dirty(container_of(t, struct sl_indexer, sched_timer));
}

static void
pump(struct sl_indexer *ix)
{
  uint64_t now = uv_now(ix->loop), next = UINT64_MAX;
  struct batch *b;

  run_finished(ix);
  while (ix->delayed && ix->delayed->due <= now) {
    b = ix->delayed;
    ix->delayed = b->next;
    batch_to_ready(ix, b);
  }
  if (ix->closing) {
    /* Drain: items already queued go out now (no flush_interval wait), so
     * a clean stop does not leave half-indexed records to be sent again
     * after the restart. Items waiting on a retry backoff, or an ES that
     * is failing, are not waited for: their records stay in the spool. */
    while (ix->setup_done && now >= ix->hold_until &&
           ix->inflight_bulk < ix->max_inflight && (ix->formed || ix->rq_n)) {
      if (ix->formed) {
        b = ix->formed;
        ix->formed = b->next;
        b->next = NULL;
      } else if ((b = take_batch(ix)) == NULL) {
        break;
      }
      if (send_batch(ix, b) != 0) {
        requeue_hold(ix, b);
        break;
      }
    }
    if (ix->inflight_bulk + ix->inflight_setup == 0)
      finish_close(ix);
    return;
  }
  if (!ix->started)
    return;
  if (!ix->setup_done) {
    if (ix->inflight_setup == 0 && now >= ix->hold_until)
      setup_send(ix);
  } else {
    while (ix->inflight_bulk < ix->max_inflight && now >= ix->hold_until) {
      if (ix->formed) {
        b = ix->formed;
        ix->formed = b->next;
        b->next = NULL;
      } else if (ix->rq_n &&
                 (ix->rq_n >= ix->max_events ||
                  ix->rq_bytes >= ix->max_bytes ||
                  ix->rq_head->ready_at + ix->flush_ms <= now)) {
        b = take_batch(ix);
        if (!b)
          break;
      } else {
        break;
      }
      if (send_batch(ix, b) != 0) {
        requeue_hold(ix, b);
        break;
      }
    }
  }
  if (ix->delayed)
    next = ix->delayed->due;
  if ((ix->formed || ix->rq_n || !ix->setup_done) && ix->hold_until > now) {
    if (ix->hold_until < next)
      next = ix->hold_until;
  } else if (ix->setup_done && ix->rq_n &&
             ix->inflight_bulk < ix->max_inflight) {
    uint64_t f = ix->rq_head->ready_at + ix->flush_ms;

    if (f < next)
      next = f;
  }
  if (next == UINT64_MAX)
    uv_timer_stop(&ix->sched_timer);
  else
    uv_timer_start(&ix->sched_timer, on_sched, next > now ? next - now : 0,
                   0);
}

static void
on_prepare(uv_prepare_t *p)
{
  struct sl_indexer *ix = container_of(p, struct sl_indexer, prepare);

  uv_prepare_stop(p);
  pump(ix);
}

/* Work is batched: pump() runs once right before the loop sleeps, like
 * redis beforeSleep, however many records were submitted in between. */
static void
mark_dirty(struct sl_indexer *ix)
{
  if (!ix->closed)
    uv_prepare_start(&ix->prepare, on_prepare);
}

/* ---- public API --------------------------------------------------------- */

static void
ix_free(struct sl_indexer *ix)
{
  struct rec *r;
  struct batch *b;
  size_t i;

  while ((r = ix->recs) != NULL) {
    list_unlink_rec(&ix->recs, r);
    rec_free(r);
  }
  while ((r = ix->finished) != NULL) {
    list_unlink_rec(&ix->finished, r);
    rec_free(r);
  }
  while ((b = ix->formed) != NULL) {
    ix->formed = b->next;
    free(b);
  }
  while ((b = ix->delayed) != NULL) {
    ix->delayed = b->next;
    free(b);
  }
  for (i = 0; i < ix->nhosts; i++)
    free(ix->hosts[i].url);
  free(ix->hosts);
  free(ix->username);
  free(ix->password);
  free(ix->auth_hdr);
  free(ix->ca);
  free(ix->dl_index);
  free(ix->dl_dir);
  sl_es_setup_free(ix->objs, ix->nobjs);
  free(ix->sc_prefix);
  free(ix->sc_ilm);
  json_decref(ix->sc_patterns);
  if (ix->multi)
    curl_multi_cleanup(ix->multi);
  free(ix);
  curl_global_cleanup();
}

static int
add_host(struct sl_indexer *ix, const char *h)
{
  size_t n = strlen(h);
  int has_scheme = strstr(h, "://") != NULL;
  char *s;

  while (n && h[n - 1] == '/')
    n--;
  if (n == 0)
    return SL_ECONFIG;
  s = malloc(n + 8);
  if (!s)
    return SL_ENOMEM;
  snprintf(s, n + 8, "%s%.*s", has_scheme ? "" : "http://", (int)n, h);
  ix->hosts[ix->nhosts++].url = s;
  return 0;
}

static int
parse_conf(struct sl_indexer *ix, const json_t *es, const char *data_dir,
           char *err, size_t errlen)
{
  const json_t *hosts = cfg_get(es, "hosts");
  struct sl_es_setup_conf *sc = &ix->sc;
  const json_t *pat;
  const char *s, *key;
  size_t i, n = json_is_array(hosts) ? json_array_size(hosts) : 1;
  int64_t v;
  int rc;

  ix->hosts = calloc(n ? n : 1, sizeof *ix->hosts);
  if (!ix->hosts)
    return SL_ENOMEM;
  if (json_is_string(hosts)) {
    rc = add_host(ix, json_string_value(hosts));
    if (rc)
      goto bad_hosts;
  } else if (json_is_array(hosts)) {
    for (i = 0; i < n; i++) {
      const json_t *h = json_array_get(hosts, i);

      rc = json_is_string(h) ? add_host(ix, json_string_value(h))
                             : SL_ECONFIG;
      if (rc)
        goto bad_hosts;
    }
  }
  if (ix->nhosts == 0) {
    rc = SL_ECONFIG;
    goto bad_hosts;
  }
  ix->username = xstrdup(cfg_str(es, "username"));
  ix->password = xstrdup(cfg_str(es, "password"));
  ix->ca = xstrdup(cfg_str(es, "ssl.ca"));
  ix->verify = cfg_bool(es, "ssl.verify", 1);
  s = cfg_str(es, "api_key");
  if (s) {
    /* "id:key" is what Beats take; ES wants base64(id:key). */
    char *enc = strchr(s, ':') ? base64(s) : strdup(s);
    size_t len = enc ? strlen(enc) + 32 : 0;

    ix->auth_hdr = enc ? malloc(len) : NULL;
    if (ix->auth_hdr)
      snprintf(ix->auth_hdr, len, "Authorization: ApiKey %s", enc);
    free(enc);
    if (!ix->auth_hdr)
      return SL_ENOMEM;
  }
  ix->compression = cfg_bool(es, "compression", 1);
  ix->level = (int)cfg_num(es, "compression_level", 1, 'i');
  ix->cfg_max_bytes = (size_t)cfg_num(es, "bulk_max_bytes", 5 << 20, 's');
  ix->max_events = (size_t)cfg_num(es, "bulk_max_events", 5000, 'i');
  ix->flush_ms = (uint64_t)cfg_num(es, "flush_interval", 1000, 'd');
  ix->max_inflight = (size_t)cfg_num(es, "max_inflight", 4, 'i');
  ix->max_pending = (uint64_t)cfg_num(es, "max_pending_events", 50000, 'i');
  ix->timeout_ms = (uint64_t)cfg_num(es, "timeout", 60000, 'd');
  sl_backoff_init(&ix->bo_req, (uint64_t)cfg_num(es, "retry.backoff_base",
                                                 500, 'd'),
                  (uint64_t)cfg_num(es, "retry.backoff_max", 60000, 'd'));
  sl_backoff_init(&ix->bo_item, ix->bo_req.base_ms, ix->bo_req.cap_ms);
  key = NULL;
  if (ix->cfg_max_bytes < 1024 || (int64_t)ix->cfg_max_bytes < 0)
    key = "bulk_max_bytes";
  else if (ix->max_events < 1 || ix->max_events > 1000000)
    key = "bulk_max_events";
  else if (ix->max_inflight < 1 || ix->max_inflight > 64)
    key = "max_inflight";
  else if (ix->max_pending < 1)
    key = "max_pending_events";
  else if (ix->timeout_ms < 1)
    key = "timeout";
  if (key) {
    snprintf(err, errlen, "elasticsearch.%s: out of range", key);
    return SL_ECONFIG;
  }
  ix->max_bytes = ix->cfg_max_bytes;
  ix->dl_index = strdup(cfg_str(es, "deadletter_index")
                          ? cfg_str(es, "deadletter_index")
                          : "logs-sluice.deadletter-default");
  n = strlen(data_dir) + 16;
  ix->dl_dir = malloc(n);
  if (!ix->dl_index || !ix->dl_dir)
    return SL_ENOMEM;
  snprintf(ix->dl_dir, n, "%s/deadletter", data_dir);

  /* Kept (with owned copies) to rebuild the templates once GET / tells
   * the version. */
  memset(sc, 0, sizeof *sc);
  s = cfg_str(es, "index_mode");
  sc->mode = s && strcmp(s, "daily") == 0 ? SL_INDEX_DAILY
                                          : SL_INDEX_DATA_STREAM;
  pat = cfg_get(es, "template.patterns");
  if (pat && !json_is_array(pat)) {
    snprintf(err, errlen, "elasticsearch.template.patterns: want a list");
    return SL_ECONFIG;
  }
  ix->sc_prefix = xstrdup(cfg_str(es, "index_prefix"));
  ix->sc_ilm = xstrdup(cfg_str(es, "ilm_policy"));
  ix->sc_patterns = pat ? json_deep_copy(pat) : NULL;
  sc->prefix = ix->sc_prefix;
  sc->ilm_policy = ix->sc_ilm;
  sc->patterns = ix->sc_patterns;
  v = cfg_num(es, "template.priority", 150, 'i');
  sc->priority = (int)v;
  return sl_es_setup_build(sc, ix->objs, &ix->nobjs);
bad_hosts:
  snprintf(err, errlen, "elasticsearch.hosts: need one or more URLs");
  return rc;
}

int
sl_indexer_new(uv_loop_t *loop, const json_t *es, const char *data_dir,
               struct sl_indexer **out, char *err, size_t errlen)
{
  struct sl_indexer *ix;
  int rc;

  *out = NULL;
  if (errlen)
    err[0] = '\0';
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "curl_global_init failed");
    return SL_EINTERNAL;
  }
  ix = calloc(1, sizeof *ix);
  if (!ix) {
    curl_global_cleanup();
    return SL_ENOMEM;
  }
  ix->loop = loop;
  ix->nr = NR_STARTING;
  rc = parse_conf(ix, es, data_dir ? data_dir : ".", err, errlen);
  if (rc)
    goto fail;
  ix->multi = curl_multi_init();
  if (!ix->multi) {
    rc = SL_ENOMEM;
    goto fail;
  }
  curl_multi_setopt(ix->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(ix->multi, CURLMOPT_SOCKETDATA, ix);
  curl_multi_setopt(ix->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(ix->multi, CURLMOPT_TIMERDATA, ix);
  /* Keep one idle connection per possible request (keep-alive). */
  curl_multi_setopt(ix->multi, CURLMOPT_MAXCONNECTS,
                    (long)(ix->max_inflight + 2));
  /* Handles last: after this point cleanup must go through the loop. */
  uv_timer_init(loop, &ix->curl_timer);
  uv_timer_init(loop, &ix->sched_timer);
  uv_timer_init(loop, &ix->close_timer);
  uv_prepare_init(loop, &ix->prepare);
  ix->open_handles = 4;
  *out = ix;
  return 0;
fail:
  if (errlen && !err[0])
    snprintf(err, errlen, "elasticsearch: %s", sl_strerror(rc));
  ix_free(ix);
  return rc;
}

int
sl_indexer_start(struct sl_indexer *ix)
{
  if (ix->closing)
    return SL_ECLOSED;
  ix->started = 1;
  mark_dirty(ix);
  return 0;
}

int
sl_indexer_submit(struct sl_indexer *ix, uint64_t rec_id, char *payload,
                  size_t len, uint32_t nevents, sl_indexer_done_cb cb,
                  void *arg)
{
  struct sl_bulk_item *spans = NULL;
  struct batch *bad = NULL;
  struct rec *r;
  size_t n, i;
  uint64_t now = uv_now(ix->loop);

  if (ix->closing)
    return SL_ECLOSED;
  n = sl_bulk_count(payload, len);
  /* A record bigger than the whole allowance is still taken when nothing
   * else is held; otherwise it could never be sent. */
  if (ix->pending && ix->pending + n > ix->max_pending)
    return SL_EAGAIN;
  r = calloc(1, sizeof *r + n * sizeof(struct item));
  spans = calloc(n ? n : 1, sizeof *spans);
  bad = batch_new(n);
  if (!r || !spans || !bad) {
    free(r);
    free(spans);
    free(bad);
    return SL_ENOMEM;
  }
  if (nevents != n)
    sl_log(SL_LOG_DEBUG, COMP, "record event count differs from its items",
           SL_LF_INT, "record", (int64_t)rec_id, SL_LF_INT, "nevents",
           (int64_t)nevents, SL_LF_INT, "items", (int64_t)n, SL_LF_END);
  sl_bulk_split(payload, len, spans, n);
  r->id = rec_id;
  r->payload = payload;
  r->len = len;
  r->nitems = r->remaining = n;
  r->cb = cb;
  r->arg = arg;
  list_push_rec(&ix->recs, r);
  ix->pending += n;
  ix->m.events_submitted += n;
  for (i = 0; i < n; i++) {
    struct item *it = &r->items[i];

    it->rec = r;
    it->span = spans[i];
    it->ready_at = now;
    if (!it->span.has_src)
      bad->items[bad->n++] = it;
    else
      rq_push_back(ix, it);
  }
  free(spans);
  if (n == 0) {
    list_unlink_rec(&ix->recs, r);
    list_push_rec(&ix->finished, r);
  }
  if (bad->n) {
    /* An action line without its document cannot be sent; keep it in the
     * dead-letter file rather than lose it. One at a time, since
     * file_items takes per-item errors. */
    for (i = 0; i < bad->n; i++) {
      struct batch *one = batch_new(1);

      if (!one) {
        /* Cannot even record it: treat like a refused dead letter later
         * by sending it to ES as is (ES answers 400 for the pair). */
        rq_push_back(ix, bad->items[i]);
        continue;
      }
      one->items[one->n++] = bad->items[i];
      file_batch(ix, one, 0, "missing_source_line",
                 "spool record ends after an action line");
    }
  }
  free(bad);
  mark_dirty(ix);
  return 0;
}

int
sl_indexer_ready(const struct sl_indexer *ix)
{
  return ix->started && ix->setup_done && ix->nr == NR_NONE && !ix->closing;
}

uint64_t
sl_indexer_pending(const struct sl_indexer *ix)
{
  return ix->pending;
}

int
sl_indexer_metrics(const struct sl_indexer *ix, struct sl_buf *o)
{
  const struct metrics *m = &ix->m;
  uint64_t cum = 0;
  size_t i;
  int rc = 0;

#define P(...) do { if (!rc) rc = sl_buf_printf(o, __VA_ARGS__); } while (0)
  P("# HELP sluice_es_requests_total _bulk requests by HTTP status "
    "(error: no answer)\n# TYPE sluice_es_requests_total counter\n");
  for (i = 0; i < STATUS_SLOTS && m->req_status[i].code; i++)
    P("sluice_es_requests_total{status=\"%d\"} %llu\n",
      m->req_status[i].code, (unsigned long long)m->req_status[i].n);
  P("sluice_es_requests_total{status=\"other\"} %llu\n",
    (unsigned long long)m->req_other_status);
  P("sluice_es_requests_total{status=\"error\"} %llu\n",
    (unsigned long long)m->req_error);
  P("# HELP sluice_es_items_total bulk item outcomes by status\n"
    "# TYPE sluice_es_items_total counter\n");
  P("sluice_es_items_total{status=\"201\"} %llu\n",
    (unsigned long long)m->items_ok);
  P("sluice_es_items_total{status=\"409\"} %llu\n",
    (unsigned long long)m->items_dup);
  P("sluice_es_items_total{status=\"429\"} %llu\n",
    (unsigned long long)m->items_429);
  P("sluice_es_items_total{status=\"4xx\"} %llu\n",
    (unsigned long long)m->items_4xx);
  P("sluice_es_items_total{status=\"5xx\"} %llu\n",
    (unsigned long long)m->items_5xx);
  P("sluice_es_items_total{status=\"none\"} %llu\n",
    (unsigned long long)m->items_nostatus);
  P("# HELP sluice_es_retries_total items and whole requests sent again\n"
    "# TYPE sluice_es_retries_total counter\n"
    "sluice_es_retries_total{kind=\"item\"} %llu\n"
    "sluice_es_retries_total{kind=\"request\"} %llu\n",
    (unsigned long long)m->retry_items,
    (unsigned long long)m->retry_requests);
  P("# HELP sluice_es_splits_total requests split after a 413 or 400\n"
    "# TYPE sluice_es_splits_total counter\n"
    "sluice_es_splits_total %llu\n", (unsigned long long)m->splits);
  P("# HELP sluice_es_deadletters_total refused events stored as dead "
    "letters\n# TYPE sluice_es_deadletters_total counter\n"
    "sluice_es_deadletters_total{dest=\"es\"} %llu\n"
    "sluice_es_deadletters_total{dest=\"file\"} %llu\n",
    (unsigned long long)m->dl_es, (unsigned long long)m->dl_file);
  P("# HELP sluice_es_deadletter_file_errors_total failed writes of the "
    "dead-letter file\n# TYPE sluice_es_deadletter_file_errors_total "
    "counter\nsluice_es_deadletter_file_errors_total %llu\n",
    (unsigned long long)m->dl_file_errors);
  P("# HELP sluice_es_bytes_total request body bytes (raw: before gzip)\n"
    "# TYPE sluice_es_bytes_total counter\n"
    "sluice_es_bytes_total{kind=\"raw\"} %llu\n"
    "sluice_es_bytes_total{kind=\"sent\"} %llu\n",
    (unsigned long long)m->bytes_raw, (unsigned long long)m->bytes_sent);
  P("# HELP sluice_es_connections_total TCP connections opened (low when "
    "keep-alive works)\n# TYPE sluice_es_connections_total counter\n"
    "sluice_es_connections_total %llu\n", (unsigned long long)m->connects);
  P("# HELP sluice_es_events_total events submitted and finished\n"
    "# TYPE sluice_es_events_total counter\n"
    "sluice_es_events_total{state=\"submitted\"} %llu\n"
    "sluice_es_events_total{state=\"done\"} %llu\n",
    (unsigned long long)m->events_submitted,
    (unsigned long long)m->events_done);
  P("# HELP sluice_es_inflight_requests _bulk requests in flight\n"
    "# TYPE sluice_es_inflight_requests gauge\n"
    "sluice_es_inflight_requests %zu\n", ix->inflight_bulk);
  P("# HELP sluice_es_pending_events events held by the indexer\n"
    "# TYPE sluice_es_pending_events gauge\n"
    "sluice_es_pending_events %llu\n", (unsigned long long)ix->pending);
  P("# HELP sluice_es_bulk_max_bytes current body limit (lowered by 413)\n"
    "# TYPE sluice_es_bulk_max_bytes gauge\n"
    "sluice_es_bulk_max_bytes %zu\n", ix->max_bytes);
  P("# HELP sluice_es_ready 1 when Elasticsearch is usable\n"
    "# TYPE sluice_es_ready gauge\nsluice_es_ready %d\n",
    sl_indexer_ready(ix));
  P("# HELP sluice_es_not_ready why the indexer is not ready (1 = current)\n"
    "# TYPE sluice_es_not_ready gauge\n");
  for (i = 1; i < NR_COUNT; i++)
    P("sluice_es_not_ready{reason=\"%s\"} %d\n", nr_names[i],
      ix->nr == (enum nr_reason)i);
  P("# HELP sluice_es_request_duration_seconds _bulk request latency\n"
    "# TYPE sluice_es_request_duration_seconds histogram\n");
  for (i = 0; i < HIST_N; i++) {
    cum += m->hist[i];
    P("sluice_es_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
      hist_bounds[i], (unsigned long long)cum);
  }
  P("sluice_es_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
    "sluice_es_request_duration_seconds_sum %.6f\n"
    "sluice_es_request_duration_seconds_count %llu\n",
    (unsigned long long)m->hist_count, m->hist_sum,
    (unsigned long long)m->hist_count);
#undef P
  return rc;
}

/* ---- close -------------------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
  struct sl_indexer *ix = h->data;
  void (*cb)(void *);
  void *arg;

  if (--ix->open_handles > 0)
    return;
  cb = ix->close_cb;
  arg = ix->close_arg;
  ix_free(ix);
  if (cb)
    cb(arg);
}

static void
on_sock_closed(uv_handle_t *h)
{
  struct sock *s = container_of((uv_poll_t *)h, struct sock, poll);
  struct sl_indexer *ix = s->ix;

  free(s);
  if (--ix->open_handles == 0 && ix->closed) {
    /* The fixed handles closed first; the last socket finishes. */
    void (*cb)(void *) = ix->close_cb;
    void *arg = ix->close_arg;

    ix_free(ix);
    if (cb)
      cb(arg);
  }
}

static void
finish_close(struct sl_indexer *ix)
{
  struct req *r;

  if (ix->closed)
    return;
  ix->closed = 1;
  run_finished(ix);
  while ((r = ix->reqs) != NULL) {
    ix->reqs = r->next;
    curl_multi_remove_handle(ix->multi, r->easy);
    req_free(r);
  }
  ix->inflight_bulk = ix->inflight_setup = 0;
  /* May call on_curl_socket(REMOVE) for cached connections. */
  curl_multi_cleanup(ix->multi);
  ix->multi = NULL;
  while (ix->socks)
    sock_close(ix, ix->socks);
  ix->curl_timer.data = ix->sched_timer.data = ix;
  ix->close_timer.data = ix->prepare.data = ix;
  uv_close((uv_handle_t *)&ix->curl_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->sched_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->close_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->prepare, on_handle_closed);
}

static void
on_close_timeout(uv_timer_t *t)
{
  struct sl_indexer *ix = container_of(t, struct sl_indexer, close_timer);

  if (ix->reqs)
    sl_log(SL_LOG_WARN, COMP, "close timeout; abandoning requests",
           SL_LF_INT, "inflight",
           (int64_t)(ix->inflight_bulk + ix->inflight_setup), SL_LF_END);
  finish_close(ix);
}

void
sl_indexer_close(struct sl_indexer *ix, uint64_t timeout_ms,
                 void (*cb)(void *arg), void *arg)
{
  if (ix->closing)
    return;
  ix->closing = 1;
  ix->close_cb = cb;
  ix->close_arg = arg;
  uv_timer_stop(&ix->sched_timer);
  uv_timer_start(&ix->close_timer, on_close_timeout, timeout_ms, 0);
  mark_dirty(ix);
}
