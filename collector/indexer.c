/* indexer.c - spool records to Elasticsearch _bulk: queues, batching,
 * retries and record accounting. HTTP is es_client.c's job, dead-letter
 * documents and files deadletter.c's, the _bulk bytes bulk.c's.
 *
 * Where an item lives (each in exactly one place at a time):
 *   ready queue  - waiting to be packed into a request (FIFO; retries and
 *                  dead letters go to the front)
 *   formed stack - a whole request to send again unchanged (connection
 *                  error, 5xx/429/401 on the whole request) or a half of a
 *                  413-split request; sent before anything new
 *   delayed list - items that got a per-item 429/5xx, waiting for backoff
 *   sent list    - in a request in flight
 *   done         - final (201/200/409/dead-lettered)
 * A record is finished when all its items are done; its callback runs from
 * the prepare handle (never from inside curl or submit) so callers may call
 * submit or close from it.
 *
 * Records hold events (spool format 2, bulk.h); the action line of each
 * is made once, at submit, with the route configured now (so a changed
 * index_mode applies to what was spooled before) and kept beside the
 * payload for retries and dead letters.
 */
#include "indexer.h"

#include <stdlib.h>
#include <string.h>

#include "bulk.h"
#include "deadletter.h"
#include "es_client.h"
#include "es_setup.h"
#include "retention.h"
#include "sl_backoff.h"
#include "sl_err.h"
#include "sl_gzip.h"
#include "sl_list.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_time.h"

#define COMP "indexer"

/* With no traffic nothing would notice Elasticsearch going away or coming
 * back, and /ready must follow it within seconds (orchestrators and load
 * balancers act on it). So every PROBE_MS, unless a request finished
 * within the last half of that, a GET / goes out (what setup needs anyway; _cluster/health would need
 * the `monitor` privilege), giving up after PROBE_TIMEOUT_MS (or
 * `timeout`, if shorter) so that a blackholed host shows too. */
#define PROBE_MS 2000
#define PROBE_TIMEOUT_MS 5000
/* Cluster status (green/yellow/red) for the status page only: it never
 * decides readiness (a red cluster may still take writes to green
 * indices). It needs the `monitor` cluster privilege; a 401/403 stops
 * the asking for the run rather than fill ES's audit log. */
#define HEALTH_MS 30000
#define HEALTH_PATH "_cluster/health?filter_path=status,number_of_nodes"

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

struct rec;

struct item {
  struct sl_list link;        /* ix->ready while queued */
  struct rec *rec;
  struct sl_bulk_item span;   /* action inside rec->acts, source (the
                                 event) inside rec->payload */
  uint64_t ready_at;          /* loop ms it became ready; 0 = send now */
  struct sl_dl *dl;           /* set once refused; then dl->bytes is sent */
  int done;
};

/* Records and their item arrays and action lines are recycled through
 * ix->spares (rec_get/rec_put): per window they are ~400 KiB that a fresh
 * calloc would fault in again. */
struct rec {
  struct sl_list link;        /* ix->recs, ix->finished when done, or
                                 ix->spares when recycled */
  uint64_t id;
  char *payload;              /* NDJSON events, from the spool */
  size_t len, cap;            /* payload bytes used / allocated */
  struct sl_buf acts;         /* the items' action lines, '\n' each */
  size_t nitems, remaining;
  sl_indexer_done_cb cb;
  void *arg;
  struct item *items;         /* items_cap allocated, nitems used */
  size_t items_cap;
};

/* Recycled records kept at most: the records finished between two pumps
 * (a few windows) are taken again by the next submits; more would only
 * hold memory after a burst. Bigger ones are freed, not kept. */
#define REC_SPARES 8
#define REC_SPARE_ITEMS 16384
#define REC_SPARE_ACTS (2u << 20)
/* Largest event span scratch kept between submits (16 B per event). */
#define EVS_KEEP 16384

struct batch {
  struct sl_list link;        /* ix->formed, ix->delayed or ix->sent */
  struct sl_indexer *ix;
  uint64_t due;               /* delayed list: loop ms to become ready */
  size_t raw_len;             /* sent: body bytes before gzip */
  size_t n;
  struct item *items[];
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
  uint64_t events_submitted, events_done, records_done;
  struct sl_hist latency;     /* _bulk requests only */
};

struct sl_indexer {
  uv_loop_t *loop;
  struct sl_es_client *es;
  uv_timer_t sched_timer;     /* flush interval, backoff, delayed items */
  uv_timer_t close_timer;     /* close() deadline */
  uv_prepare_t prepare;       /* runs pump() once before the loop sleeps */
  int open_parts;             /* handles and the client not yet closed */

  /* configuration */
  int compression;
  size_t cfg_max_bytes;       /* bulk_max_bytes as configured */
  size_t max_bytes, max_events, max_inflight;
  uint64_t max_pending, flush_ms;
  char *dl_index, *dl_dir;
  char *bulk_path;            /* _bulk?[pipeline=<p>&]filter_path=... */
  int pipeline;               /* elasticsearch.pipeline is set */
  struct sl_es_setup_conf sc;  /* strings and patterns owned below */
  char *sc_prefix, *sc_ilm;
  struct sl_route route;      /* where events go (strings owned below) */
  char *route_prefix, *route_ns;
  json_t *sc_patterns;
  struct sl_retention_conf sc_ret;  /* copy; mode NONE when unset */
  struct sl_es_object objs[SL_ES_SETUP_MAX];
  size_t nobjs;

  /* state */
  int started, setup_done, closing, closed;
  size_t setup_step;          /* 0: GET /, k: objs[k-1] */
  int setup_put;              /* 0: GET the object, 1: PUT it */
  enum nr_reason nr;
  uint64_t hold_until;        /* loop ms; no request starts before */
  struct sl_backoff bo_req, bo_item;
  struct sl_list recs, finished;
  struct sl_list spares;      /* recycled struct rec, <= REC_SPARES */
  size_t nspares;
  struct sl_span *evs;        /* submit's scratch: the record's events */
  size_t evs_cap;
  sl_indexer_payload_free_cb payload_free;
  void *payload_free_arg;
  sl_indexer_target_cb target_cb;
  void *target_arg;
  char last_target[256];      /* the last target reported to target_cb */
  size_t last_target_len;
  struct sl_list ready;       /* of struct item */
  size_t rq_n, rq_bytes;
  struct sl_list formed, delayed, sent;  /* of struct batch */
  size_t inflight_bulk, inflight_setup;
  uint64_t pending;
  /* Reused by every request: the NDJSON before gzip and the deflate
   * state (the gzip output is a pooled body from es_client). */
  struct sl_buf raw;
  struct sl_gzip gz;
  void (*close_cb)(void *arg);
  void *close_arg;
  struct metrics m;

  /* Health (/ready, sluice_collector_es_up, /debug/state). Times: loop ms
   * (_ms) or wall ns (_ns, shown to people). */
  uv_timer_t probe_timer;     /* every PROBE_MS; probes only when idle */
  int probing;                /* a probe is in flight */
  int nr_probe;               /* the current nr was set by the probe */
  int reachable;              /* the last request got an HTTP answer */
  uint64_t last_done_ms;      /* a request (any kind) last finished */
  int64_t last_check_ns, last_answer_ns, last_error_ns;
  uint64_t probes, probe_failures;
  char last_error[640];       /* the last reason for not being ready */
  char es_version[32];        /* from GET /, "" before */
  int health_inflight, health_denied;
  uint64_t health_ms;         /* loop ms the last health request began */
  int64_t health_ns;          /* wall time of the last health answer */
  char cluster_status[16];    /* green/yellow/red; "" unknown */
  json_int_t cluster_nodes;
  int dl_status;              /* the last event dead-lettered: its status */
  int64_t dl_ns;              /* and when (0: none yet) */
  char dl_reason[512];        /* "type: reason" from Elasticsearch */
};

static void mark_dirty(struct sl_indexer *ix);

/* ---- small helpers ------------------------------------------------------ */

static void
set_nr(struct sl_indexer *ix, enum nr_reason r, const char *detail)
{
  /* The probe marks its own states after this (probe_done). */
  ix->nr_probe = 0;
  if (r != NR_NONE && r != NR_STARTING) {
    snprintf(ix->last_error, sizeof ix->last_error, "%s: %s", nr_names[r],
             detail ? detail : "");
    ix->last_error_ns = sl_time_now_ns();
  }
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

/* Every finished request says whether Elasticsearch can be reached. */
static void
note_result(struct sl_indexer *ix, const struct sl_es_result *res)
{
  ix->last_done_ms = uv_now(ix->loop);
  ix->last_check_ns = sl_time_now_ns();
  ix->reachable = res->answered;
  if (res->answered)
    ix->last_answer_ns = ix->last_check_ns;
}

/* The last refusal that made a dead letter, for the status page. */
static void
note_dl(struct sl_indexer *ix, int status, const char *type,
        const char *reason)
{
  ix->dl_status = status;
  ix->dl_ns = sl_time_now_ns();
  snprintf(ix->dl_reason, sizeof ix->dl_reason, "%s: %s",
           type ? type : "error", reason ? reason : "");
}

static size_t
item_size(const struct item *it)
{
  return it->dl ? it->dl->len : it->span.act_len + it->span.src_len + 2;
}

static struct item *
item_of(struct sl_list *l)
{
  return sl_container_of(l, struct item, link);
}

static struct batch *
batch_of(struct sl_list *l)
{
  return l ? sl_container_of(l, struct batch, link) : NULL;
}

static void
rec_destroy(struct rec *r)
{
  sl_buf_free(&r->acts);
  free(r->items);
  free(r);
}

/* The record's payload goes back to its owner (the spool's buffer list),
 * and the record itself to ix->spares unless past the bounds. */
static void
rec_put(struct sl_indexer *ix, struct rec *r)
{
  size_t i;

  for (i = 0; i < r->nitems; i++)
    sl_dl_free(r->items[i].dl);
  if (r->payload && ix->payload_free)
    ix->payload_free(ix->payload_free_arg, r->payload, r->cap);
  else
    free(r->payload);
  r->payload = NULL;
  if (ix->nspares >= REC_SPARES || r->items_cap > REC_SPARE_ITEMS ||
      r->acts.cap > REC_SPARE_ACTS) {
    rec_destroy(r);
    return;
  }
  sl_list_insert_head(&ix->spares, &r->link);
  ix->nspares++;
}

/* A record with room for n items, recycled when one is spare. The items
 * are zeroed (a dead letter pointer must start NULL), the acts empty. */
static struct rec *
rec_get(struct sl_indexer *ix, size_t n)
{
  struct sl_list *l = sl_list_pop(&ix->spares);
  struct rec *r;

  if (l) {
    ix->nspares--;
    r = sl_container_of(l, struct rec, link);
  } else {
    r = calloc(1, sizeof *r);
    if (r == NULL)
      return NULL;
    sl_buf_init(&r->acts, 0);
  }
  sl_list_init(&r->link);
  sl_buf_reset(&r->acts);
  r->nitems = r->remaining = 0;
  if (r->items_cap < n) {
    struct item *v = realloc(r->items, n * sizeof *v);

    if (v == NULL) {
      rec_destroy(r);
      return NULL;
    }
    r->items = v;
    r->items_cap = n;
  }
  if (n)
    memset(r->items, 0, n * sizeof *r->items);
  return r;
}

/* The refused item as deadletter.c sees it. */
static struct sl_dl_src
dl_src(const struct sl_indexer *ix, const struct item *it)
{
  struct sl_dl_src s;
  const char *p = it->rec->payload;

  s.no_pipeline = ix->pipeline;
  s.action = it->rec->acts.p + it->span.act_off;
  s.action_len = it->span.act_len;
  s.doc = p + it->span.src_off;
  s.doc_len = it->span.src_len;
  s.dl = it->dl;
  return s;
}

/* ---- the ready queue ---------------------------------------------------- */

static void
rq_push_back(struct sl_indexer *ix, struct item *it)
{
  sl_list_insert_tail(&ix->ready, &it->link);
  ix->rq_n++;
  ix->rq_bytes += item_size(it);
}

static void
rq_push_front(struct sl_indexer *ix, struct item *it)
{
  it->ready_at = 0;
  sl_list_insert_head(&ix->ready, &it->link);
  ix->rq_n++;
  ix->rq_bytes += item_size(it);
}

static struct item *
rq_pop(struct sl_indexer *ix)
{
  struct item *it = item_of(sl_list_pop(&ix->ready));

  ix->rq_n--;
  ix->rq_bytes -= item_size(it);
  return it;
}

static struct batch *
batch_new(struct sl_indexer *ix, size_t n)
{
  struct batch *b = malloc(sizeof *b + (n ? n : 1) * sizeof(struct item *));

  if (b) {
    sl_list_init(&b->link);
    b->ix = ix;
    b->due = 0;
    b->raw_len = 0;
    b->n = 0;
  }
  return b;
}

static void
batch_free(struct batch *b)
{
  sl_list_remove(&b->link);
  free(b);
}

/* Items waiting in a batch go back to the ready queue, front first, in
 * their original order. */
static void
batch_to_ready(struct sl_indexer *ix, struct batch *b)
{
  size_t i;

  for (i = b->n; i > 0; i--)
    rq_push_front(ix, b->items[i - 1]);
  batch_free(b);
}

static void
delayed_insert(struct sl_indexer *ix, struct batch *b)
{
  struct sl_list *it, *tmp;

  sl_list_foreach(it, tmp, &ix->delayed) {
    if (batch_of(it)->due > b->due)
      break;
  }
  /* Before `it` (the head itself when every due is earlier: the tail). */
  sl_list_insert_tail(it, &b->link);
}

/* A whole request failed in a way that says "try the same thing later". */
static void
requeue_hold(struct sl_indexer *ix, struct batch *b)
{
  uint64_t until = uv_now(ix->loop) + sl_backoff_next(&ix->bo_req);

  sl_list_remove(&b->link);
  sl_list_insert_head(&ix->formed, &b->link);
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
    sl_list_remove(&r->link);
    sl_list_insert_head(&ix->finished, &r->link);
    mark_dirty(ix);
  }
}

static void
run_finished(struct sl_indexer *ix)
{
  struct sl_list *l;

  while ((l = sl_list_pop(&ix->finished)) != NULL) {
    struct rec *r = sl_container_of(l, struct rec, link);

    ix->m.records_done++;
    if (r->cb)
      r->cb(r->arg, r->id);
    rec_put(ix, r);
  }
}

/* ---- dead letters ------------------------------------------------------- */

/* Items whose last stop is the dead-letter file (e[i] describes
 * b->items[i]). On success they are done; on failure (disk full...) they
 * are retried through ES later, which will refuse them again and bring
 * them back here. Never dropped. */
static void
file_items(struct sl_indexer *ix, struct batch *b,
           const struct sl_dl_entry *e)
{
  size_t i;
  int rc;

  rc = sl_dl_file_append(ix->dl_dir, e, b->n);
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
  batch_free(b);
}

/* Whole-request outcome for the single item of b (413 on one item,
 * ...). */
static void
file_batch(struct sl_indexer *ix, struct batch *b, int status,
           const char *type, const char *reason)
{
  struct sl_dl_entry e;

  note_dl(ix, status, type, reason);
  e.src = dl_src(ix, b->items[0]);
  e.status = status;
  e.err_type = type;
  e.err_reason = reason;
  file_items(ix, b, &e);
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

static void setup_done(void *arg, const struct sl_es_result *res);

static void
setup_send(struct sl_indexer *ix)
{
  const struct sl_es_object *o;
  struct sl_buf body;
  int rc;

  sl_buf_init(&body, 0);
  if (ix->setup_step == 0) {
    rc = sl_es_request(ix->es, "GET", "", NULL, 0, NULL, setup_done, ix);
  } else {
    o = &ix->objs[ix->setup_step - 1];
    if (ix->setup_put) {
      rc = sl_buf_append_str(&body, o->body);
      if (!rc)
        rc = sl_es_request(ix->es, "PUT", o->path,
                           "Content-Type: application/json", 0, &body,
                           setup_done, ix);
    } else {
      rc = sl_es_request(ix->es, "GET", o->path, NULL, 0, NULL, setup_done,
                         ix);
    }
  }
  sl_buf_free(&body);
  if (rc)
    setup_fail(ix, NR_SETUP, sl_strerror(rc));
  else
    ix->inflight_setup++;
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

/* The answer to GET /: ES >= 8 (not OpenSearch); the templates depend on
 * the version, so they are rebuilt for it. */
static void
setup_root(struct sl_indexer *ix, const struct sl_es_result *res,
           const char *detail)
{
  char msg[640], num[32];
  int major, minor, osearch, rc;

  if (res->status != 200) {
    setup_fail(ix, res->status >= 500 ? NR_UNAVAILABLE : NR_HTTP, detail);
    return;
  }
  if (sl_es_parse_root(res->body, res->len, num, sizeof num, &major, &minor,
                       &osearch) != 0 ||
      osearch || major < 8) {
    snprintf(msg, sizeof msg, "need Elasticsearch >= 8, got %s%s",
             num[0] ? num : "no version", osearch ? " (OpenSearch)" : "");
    setup_fail(ix, NR_VERSION, msg);
    return;
  }
  sl_log(SL_LOG_INFO, COMP, "connected to elasticsearch", SL_LF_STR,
         "version", num, SL_LF_STR, "url", res->url, SL_LF_END);
  snprintf(ix->es_version, sizeof ix->es_version, "%s", num);
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
}

static void
setup_done(void *arg, const struct sl_es_result *res)
{
  struct sl_indexer *ix = arg;
  const struct sl_es_object *o;
  char detail[640];
  long status = res->status;

  ix->inflight_setup--;
  mark_dirty(ix);
  note_result(ix, res);
  if (!res->answered) {
    snprintf(detail, sizeof detail, "%.300s: %.300s", res->url, res->error);
    setup_fail(ix, NR_CONNECT, detail);
    return;
  }
  snprintf(detail, sizeof detail, "HTTP %ld from %.300s: %.120s", status,
           res->url, res->body);
  if (status == 401 || (status == 403 && ix->setup_step == 0)) {
    setup_fail(ix, NR_AUTH, detail);
    return;
  }
  if (status / 100 == 2 && !res->is_es) {
    snprintf(detail, sizeof detail, "not Elasticsearch: %s answered without "
             "X-Elastic-Product: Elasticsearch", res->url);
    sl_log(SL_LOG_ERROR, COMP, "refusing server", SL_LF_STR, "reason",
           detail, SL_LF_END);
    setup_fail(ix, NR_NOT_ES, detail);
    return;
  }
  if (ix->setup_step == 0) {
    setup_root(ix, res, detail);
    return;
  }
  o = &ix->objs[ix->setup_step - 1];
  if (status == 403) {
    /* Allowed to write but not to manage templates: index anyway and
     * rely on whatever templates the operator installed. */
    sl_log(SL_LOG_WARN, COMP, "no privilege to install template; using "
           "existing ones", SL_LF_STR, "path", o->path, SL_LF_END);
    setup_advance(ix);
    return;
  }
  if (!ix->setup_put) {
    if (status == 200 &&
        sl_es_stored_version(res->body, res->len) == o->version)
      setup_advance(ix);
    else if (status == 200 || status == 404)
      ix->setup_put = 1;
    else
      setup_fail(ix, status >= 500 ? NR_UNAVAILABLE : NR_SETUP, detail);
    return;
  }
  if (status / 100 != 2) {
    setup_fail(ix, status >= 500 ? NR_UNAVAILABLE : NR_SETUP, detail);
    return;
  }
  sl_log(SL_LOG_INFO, COMP, "installed", SL_LF_STR, "path", o->path,
         SL_LF_END);
  setup_advance(ix);
}

/* ---- bulk requests ------------------------------------------------------ */

static struct batch *
take_batch(struct sl_indexer *ix)
{
  struct sl_list *l = sl_list_first(&ix->ready);
  size_t n = 0, bytes = 0;
  struct batch *b;

  /* At least one item, even one over max_bytes: a too-big event is found
   * out by ES's 413 and dead-lettered, never stuck here. */
  while (l != &ix->ready && l && n < ix->max_events &&
         (n == 0 || bytes + item_size(item_of(l)) <= ix->max_bytes)) {
    bytes += item_size(item_of(l));
    n++;
    l = l->next;
  }
  b = batch_new(ix, n);
  if (!b)
    return NULL;
  while (b->n < n)
    b->items[b->n++] = rq_pop(ix);
  return b;
}

static int
build_body(const struct batch *b, struct sl_buf *raw)
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
    rc = sl_buf_append(raw, it->rec->acts.p + it->span.act_off,
                       it->span.act_len);
    if (!rc)
      rc = sl_buf_append_byte(raw, '\n');
    if (!rc)
      rc = sl_buf_append(raw, p + it->span.src_off, it->span.src_len);
    if (!rc)
      rc = sl_buf_append_byte(raw, '\n');
  }
  return rc;
}

static void bulk_done(void *arg, const struct sl_es_result *res);

static int
send_batch(struct sl_indexer *ix, struct batch *b)
{
  struct sl_buf body;
  size_t sent;
  int rc;

  sl_es_buf_get(ix->es, &body);
  if (ix->compression) {
    sl_buf_reset(&ix->raw);
    rc = build_body(b, &ix->raw);
    b->raw_len = ix->raw.len;
    if (!rc)
      rc = sl_gzip_append(&ix->gz, ix->raw.p, ix->raw.len, &body);
    /* One oversized event must not pin its buffer for good. */
    if (ix->raw.cap > 2 * ix->cfg_max_bytes + (64u << 10))
      sl_buf_free(&ix->raw);
  } else {
    rc = build_body(b, &body);
    b->raw_len = body.len;
  }
  if (rc)
    goto out;
  sent = body.len;
  rc = sl_es_request(ix->es, "POST", ix->bulk_path,
                     "Content-Type: application/x-ndjson", ix->compression,
                     &body, bulk_done, b);
  if (rc)
    goto out;
  sl_list_remove(&b->link);
  sl_list_insert_tail(&ix->sent, &b->link);
  ix->inflight_bulk++;
  ix->m.bytes_raw += b->raw_len;
  ix->m.bytes_sent += sent;
out:
  sl_es_buf_put(ix->es, &body);
  if (rc)
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
count_item(struct metrics *m, int st)
{
  if (st == 200 || st == 201)
    m->items_ok++;
  else if (st == 409)
    m->items_dup++;
  else if (st == 429)
    m->items_429++;
  else if (st >= 500)
    m->items_5xx++;
  else if (st == 0)
    m->items_nostatus++;
  else
    m->items_4xx++;
}

static void
handle_items(struct sl_indexer *ix, struct batch *b,
             const struct sl_bulk_resp *resp)
{
  struct batch *retry = batch_new(ix, b->n), *file = batch_new(ix, b->n);
  struct sl_dl_entry *fe = calloc(b->n, sizeof *fe);
  size_t i;

  if (!retry || !file || !fe) {
    /* Nothing was changed yet: send the whole batch again later. */
    free(retry);
    free(file);
    free(fe);
    requeue_hold(ix, b);
    return;
  }
  for (i = 0; i < b->n; i++) {
    struct item *it = b->items[i];
    const struct sl_bulk_result *res = &resp->items[i];
    struct sl_dl_src src;
    int st = res->status;

    count_item(&ix->m, st);
    if (st == 200 || st == 201 || st == 409) {
      if (it->dl)
        ix->m.dl_es++;
      item_final(ix, it);
      continue;
    }
    if (is_retryable_item(res)) {
      retry->items[retry->n++] = it;
      continue;
    }
    src = dl_src(ix, it);
    if (!it->dl)
      note_dl(ix, st, res->err_type, res->err_reason);
    if (it->dl || sl_dl_make(ix->dl_index, &src, st, res->err_type,
                             res->err_reason, &it->dl) != 0) {
      /* A refused dead letter (or no memory to build one): the file. */
      fe[file->n].src = src;
      fe[file->n].status = st;
      fe[file->n].err_type = res->err_type;
      fe[file->n].err_reason = res->err_reason;
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
    file_items(ix, file, fe); /* borrows strings from resp */
  else
    free(file);
  free(fe);
  batch_free(b);
}

/* The common answer, {"errors":false,"items":[...n items...]}, says every
 * item was indexed (ES sets errors for any failed item, 409 included);
 * then only the item count needs checking, which saves building a JSON
 * tree of n objects per request. The count is of `"status":`, which each
 * item has once (filter_path keeps it) and which cannot occur inside a
 * JSON string (its quotes would be escaped). Anything else: full parse. */
static int
all_indexed(const char *body, size_t len, size_t n)
{
  static const char head[] = "{\"errors\":false,";
  static const char key[] = "\"status\":";
  const char *p = body, *end = body + len;
  size_t count = 0;

  if (len < sizeof head - 1 || memcmp(body, head, sizeof head - 1) != 0)
    return 0;
  while ((p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
    count++;
    p += sizeof key - 1;
  }
  return count == n;
}

static void
handle_all_indexed(struct sl_indexer *ix, struct batch *b)
{
  size_t i;

  for (i = 0; i < b->n; i++) {
    ix->m.items_ok++;
    if (b->items[i]->dl)
      ix->m.dl_es++;
    item_final(ix, b->items[i]);
  }
  sl_backoff_reset(&ix->bo_item);
  batch_free(b);
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
  lo = batch_new(ix, half);
  hi = batch_new(ix, b->n - half);
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
  batch_free(b);
  /* Later batches start at the size that worked, instead of meeting the
   * same 413 again. */
  if (raw_len / 2 < ix->max_bytes) {
    ix->max_bytes = raw_len / 2 > 1024 ? raw_len / 2 : 1024;
    sl_log(SL_LOG_WARN, COMP, "413 from elasticsearch; lowering "
           "bulk_max_bytes", SL_LF_INT, "bulk_max_bytes",
           (int64_t)ix->max_bytes, SL_LF_END);
  }
  ix->m.splits++;
  sl_list_insert_head(&ix->formed, &hi->link);
  sl_list_insert_head(&ix->formed, &lo->link);
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
  a = json_loadb(it->rec->acts.p + it->span.act_off, it->span.act_len, 0,
                 NULL);
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
bulk_done(void *arg, const struct sl_es_result *res)
{
  struct batch *b = arg;
  struct sl_indexer *ix = b->ix;
  struct sl_bulk_resp resp;
  char detail[640];
  long status = res->status;

  ix->inflight_bulk--;
  mark_dirty(ix);
  note_result(ix, res);
  sl_list_remove(&b->link);
  sl_hist_observe(&ix->m.latency, (double)res->elapsed_ns / 1e9);
  if (!res->answered) {
    ix->m.req_error++;
    snprintf(detail, sizeof detail, "%.300s: %.300s", res->url, res->error);
    set_nr(ix, NR_CONNECT, detail);
    requeue_hold(ix, b);
    return;
  }
  count_status(ix, status);
  snprintf(detail, sizeof detail, "HTTP %ld from %.300s: %.120s", status,
           res->url, res->body);
  if (status / 100 == 2) {
    if (!res->is_es) {
      snprintf(detail, sizeof detail, "not Elasticsearch: %s answered "
               "without X-Elastic-Product: Elasticsearch", res->url);
      set_nr(ix, NR_NOT_ES, detail);
      requeue_hold(ix, b);
      return;
    }
    if (all_indexed(res->body, res->len, b->n)) {
      set_nr(ix, NR_NONE, NULL);
      sl_backoff_reset(&ix->bo_req);
      handle_all_indexed(ix, b);
      return;
    }
    if (sl_bulk_resp_parse(res->body, res->len, b->n, &resp) != 0) {
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
    split_413(ix, b, b->raw_len);
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

/* ---- reachability probe ------------------------------------------------- */

static void
probe_done(void *arg, const struct sl_es_result *res)
{
  struct sl_indexer *ix = arg;
  char detail[640];

  ix->probing = 0;
  ix->probes++;
  note_result(ix, res);
  if (!res->answered) {
    ix->probe_failures++;
    snprintf(detail, sizeof detail, "%.300s: %.300s", res->url, res->error);
    set_nr(ix, NR_CONNECT, detail);
    ix->nr_probe = 1;
    return;
  }
  if (res->status / 100 == 2 && res->is_es) {
    /* Back after a connection failure (or a failure the probe saw): what
     * waits on a retry backoff of up to retry.backoff_max goes now. A
     * state a bulk request set (a 503, a 401) stays until a request
     * proves it over: GET / may work while _bulk does not. */
    if (ix->nr == NR_CONNECT || ix->nr_probe) {
      ix->hold_until = 0;
      sl_backoff_reset(&ix->bo_req);
      if (ix->setup_done)
        set_nr(ix, NR_NONE, NULL);
      mark_dirty(ix);
    }
    return;
  }
  snprintf(detail, sizeof detail, "HTTP %ld from %.300s: %.120s",
           res->status, res->url, res->body);
  if (res->status == 401 || res->status == 403) {
    set_nr(ix, NR_AUTH, detail);
    ix->nr_probe = 1;
  } else if (res->status >= 500) {
    set_nr(ix, NR_UNAVAILABLE, detail);
    ix->nr_probe = 1;
  }
}

static void
health_done(void *arg, const struct sl_es_result *res)
{
  struct sl_indexer *ix = arg;
  json_t *o = NULL;
  const char *st;

  ix->health_inflight = 0;
  note_result(ix, res);
  ix->cluster_status[0] = '\0';
  if (res->answered && (res->status == 401 || res->status == 403)) {
    ix->health_denied = 1;
    sl_log(SL_LOG_INFO, COMP, "no privilege for _cluster/health (monitor); "
           "cluster status not shown", SL_LF_INT, "status",
           (int64_t)res->status, SL_LF_END);
    return;
  }
  if (!res->answered || res->status != 200 ||
      (o = json_loadb(res->body, res->len, 0, NULL)) == NULL)
    return;
  st = json_string_value(json_object_get(o, "status"));
  if (st)
    snprintf(ix->cluster_status, sizeof ix->cluster_status, "%s", st);
  ix->cluster_nodes = json_integer_value(json_object_get(o,
                                                         "number_of_nodes"));
  ix->health_ns = sl_time_now_ns();
  json_decref(o);
}

static void
on_probe(uv_timer_t *t)
{
  struct sl_indexer *ix = sl_container_of(t, struct sl_indexer, probe_timer);
  uint64_t now = uv_now(ix->loop);

  if (!ix->closing && ix->setup_done && !ix->health_denied &&
      !ix->health_inflight &&
      (ix->health_ms == 0 || now - ix->health_ms >= HEALTH_MS) &&
      sl_es_probe(ix->es, HEALTH_PATH, PROBE_TIMEOUT_MS, health_done,
                  ix) == 0) {
    ix->health_inflight = 1;
    ix->health_ms = now;
  }

  /* Half a period: a request that finished just after the previous tick
   * must not make this one skip too (4 s without a check). */
  if (ix->closing || ix->probing ||
      (ix->last_done_ms && now - ix->last_done_ms < PROBE_MS / 2))
    return;
  if (sl_es_probe(ix->es, "", PROBE_TIMEOUT_MS, probe_done, ix) == 0)
    ix->probing = 1;
}

/* ---- scheduling --------------------------------------------------------- */

static void finish_close(struct sl_indexer *ix);

static void
on_sched(uv_timer_t *t)
{
  mark_dirty(sl_container_of(t, struct sl_indexer, sched_timer));
}

/* The next request to send: a formed one first, else a new batch from
 * the ready queue (when `force`, or when a full one is waiting, or the
 * oldest item waited flush_interval). NULL: nothing to send now. */
static struct batch *
next_batch(struct sl_indexer *ix, uint64_t now, int force)
{
  struct batch *b = batch_of(sl_list_first(&ix->formed));

  if (b) {
    sl_list_remove(&b->link);
    return b;
  }
  if (ix->rq_n &&
      (force || ix->rq_n >= ix->max_events || ix->rq_bytes >= ix->max_bytes ||
       item_of(sl_list_first(&ix->ready))->ready_at + ix->flush_ms <= now))
    return take_batch(ix);
  return NULL;
}

static void
send_some(struct sl_indexer *ix, uint64_t now, int force)
{
  struct batch *b;

  while (ix->inflight_bulk < ix->max_inflight && now >= ix->hold_until &&
         (b = next_batch(ix, now, force)) != NULL) {
    if (send_batch(ix, b) != 0) {
      requeue_hold(ix, b);
      break;
    }
  }
}

static void
pump(struct sl_indexer *ix)
{
  uint64_t now = uv_now(ix->loop), next = UINT64_MAX;
  struct batch *b;
  int queued;

  run_finished(ix);
  while ((b = batch_of(sl_list_first(&ix->delayed))) != NULL &&
         b->due <= now)
    batch_to_ready(ix, b);
  if (ix->closing) {
    /* Drain: items already queued go out now (no flush_interval wait), so
     * a clean stop does not leave half-indexed records to be sent again
     * after the restart. Items waiting on a retry backoff, or an ES that
     * is failing, are not waited for: their records stay in the spool. */
    if (ix->setup_done)
      send_some(ix, now, 1);
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
    send_some(ix, now, 0);
  }
  b = batch_of(sl_list_first(&ix->delayed));
  if (b)
    next = b->due;
  queued = !sl_list_empty(&ix->formed) || ix->rq_n;
  if ((queued || !ix->setup_done) && ix->hold_until > now) {
    if (ix->hold_until < next)
      next = ix->hold_until;
  } else if (ix->setup_done && ix->rq_n &&
             ix->inflight_bulk < ix->max_inflight) {
    uint64_t f = item_of(sl_list_first(&ix->ready))->ready_at + ix->flush_ms;

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
  struct sl_indexer *ix = sl_container_of(p, struct sl_indexer, prepare);

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
free_batches(struct sl_list *h)
{
  struct sl_list *l;

  while ((l = sl_list_first(h)) != NULL)
    batch_free(batch_of(l));
}

static void
ix_free(struct sl_indexer *ix)
{
  struct sl_list *l;

  /* Unfinished records stay in the spool; their payloads still go back
   * to it (the spool closes after the indexer). */
  while ((l = sl_list_pop(&ix->recs)) != NULL)
    rec_put(ix, sl_container_of(l, struct rec, link));
  while ((l = sl_list_pop(&ix->finished)) != NULL)
    rec_put(ix, sl_container_of(l, struct rec, link));
  while ((l = sl_list_pop(&ix->spares)) != NULL)
    rec_destroy(sl_container_of(l, struct rec, link));
  free(ix->evs);
  free_batches(&ix->formed);
  free_batches(&ix->delayed);
  free_batches(&ix->sent);
  sl_buf_free(&ix->raw);
  sl_gzip_end(&ix->gz);
  free(ix->dl_index);
  free(ix->dl_dir);
  free(ix->bulk_path);
  sl_es_setup_free(ix->objs, ix->nobjs);
  free(ix->sc_prefix);
  free(ix->sc_ilm);
  free(ix->route_prefix);
  free(ix->route_ns);
  json_decref(ix->sc_patterns);
  sl_retention_conf_free(&ix->sc_ret);
  free(ix);
}

static int
apply_conf(struct sl_indexer *ix, const struct sl_es_conf *c)
{
  struct sl_es_setup_conf *sc = &ix->sc;
  size_t n;

  ix->compression = c->compression;
  sl_gzip_init(&ix->gz, c->compression_level);
  ix->cfg_max_bytes = c->bulk_max_bytes;
  ix->max_bytes = c->bulk_max_bytes;
  ix->max_events = c->bulk_max_events;
  ix->flush_ms = c->flush_ms;
  ix->max_inflight = c->max_inflight;
  ix->max_pending = c->max_pending;
  sl_backoff_init(&ix->bo_req, c->backoff_base_ms, c->backoff_max_ms);
  sl_backoff_init(&ix->bo_item, c->backoff_base_ms, c->backoff_max_ms);
  ix->dl_index = strdup(c->deadletter_index);
  n = strlen(c->data_dir) + 16;
  ix->dl_dir = malloc(n);
  if (!ix->dl_index || !ix->dl_dir)
    return SL_ENOMEM;
  snprintf(ix->dl_dir, n, "%s/deadletter", c->data_dir);
  /* The id is checked to need no URL encoding (sl_es_pipeline_valid). */
  ix->pipeline = c->pipeline != NULL;
  n = sizeof("_bulk?pipeline=&filter_path=" SL_BULK_FILTER_PATH) +
      (c->pipeline ? strlen(c->pipeline) : 0);
  ix->bulk_path = malloc(n);
  if (!ix->bulk_path)
    return SL_ENOMEM;
  snprintf(ix->bulk_path, n, "_bulk?%s%s%sfilter_path=" SL_BULK_FILTER_PATH,
           c->pipeline ? "pipeline=" : "", c->pipeline ? c->pipeline : "",
           c->pipeline ? "&" : "");

  ix->route.mode = c->index_mode;
  ix->route_prefix = strdup(c->index_prefix ? c->index_prefix : "sluice");
  ix->route_ns = strdup(c->namespace_ ? c->namespace_ : "default");
  if (!ix->route_prefix || !ix->route_ns)
    return SL_ENOMEM;
  ix->route.prefix = ix->route_prefix;
  ix->route.namespace_ = ix->route_ns;
  ix->route.dataset = "generic";

  /* Kept (with owned copies) to rebuild the templates once GET / tells
   * the version. */
  memset(sc, 0, sizeof *sc);
  sc->mode = c->index_mode;
  ix->sc_prefix = sl_strdup(c->index_prefix);
  ix->sc_ilm = sl_strdup(c->ilm_policy);
  ix->sc_patterns = c->template_patterns
                      ? json_deep_copy(c->template_patterns) : NULL;
  if ((c->index_prefix && !ix->sc_prefix) || (c->ilm_policy && !ix->sc_ilm) ||
      (c->template_patterns && !ix->sc_patterns))
    return SL_ENOMEM;
  sc->prefix = ix->sc_prefix;
  sc->ilm_policy = ix->sc_ilm;
  sc->patterns = ix->sc_patterns;
  sc->priority = c->template_priority;
  if (c->retention) {
    if (sl_retention_conf_copy(c->retention, &ix->sc_ret) != 0)
      return SL_ENOMEM;
    sc->retention = &ix->sc_ret;
  }
  return sl_es_setup_build(sc, ix->objs, &ix->nobjs);
}

int
sl_indexer_new(uv_loop_t *loop, const struct sl_es_conf *conf,
               struct sl_indexer **out, char *err, size_t errlen)
{
  struct sl_indexer *ix;
  int rc;

  *out = NULL;
  if (errlen)
    err[0] = '\0';
  ix = calloc(1, sizeof *ix);
  if (!ix)
    return SL_ENOMEM;
  ix->loop = loop;
  ix->nr = NR_STARTING;
  sl_buf_init(&ix->raw, 0);
  sl_list_init(&ix->recs);
  sl_list_init(&ix->finished);
  sl_list_init(&ix->spares);
  sl_list_init(&ix->ready);
  sl_list_init(&ix->formed);
  sl_list_init(&ix->delayed);
  sl_list_init(&ix->sent);
  rc = apply_conf(ix, conf);
  if (rc)
    goto fail;
  /* The client last: after this point cleanup goes through the loop. */
  rc = sl_es_client_new(loop, conf, &ix->es, err, errlen);
  if (rc)
    goto fail;
  uv_timer_init(loop, &ix->sched_timer);
  uv_timer_init(loop, &ix->close_timer);
  uv_timer_init(loop, &ix->probe_timer);
  uv_prepare_init(loop, &ix->prepare);
  ix->open_parts = 5;
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
  uv_timer_start(&ix->probe_timer, on_probe, PROBE_MS, PROBE_MS);
  mark_dirty(ix);
  return 0;
}

void
sl_indexer_set_target_cb(struct sl_indexer *ix, sl_indexer_target_cb cb,
                         void *arg)
{
  ix->target_cb = cb;
  ix->target_arg = arg;
}

/* The target of the action line just made ({"create":{"_index":"<t>",..).
 * Only a change from the last one is reported: consecutive events mostly
 * go to the same target, so this is one memcmp per event. */
static void
report_target(struct sl_indexer *ix, const char *act, size_t len)
{
  static const char head[] = "{\"create\":{\"_index\":\"";
  const char *t, *end;
  size_t n;

  if (len <= sizeof head - 1 || memcmp(act, head, sizeof head - 1) != 0)
    return;
  t = act + sizeof head - 1;
  end = memchr(t, '"', len - (sizeof head - 1));
  n = end ? (size_t)(end - t) : 0;
  if (n == 0 || n >= sizeof ix->last_target ||
      (n == ix->last_target_len && memcmp(t, ix->last_target, n) == 0))
    return;
  memcpy(ix->last_target, t, n);
  ix->last_target_len = n;
  ix->target_cb(ix->target_arg, t, n);
}

void
sl_indexer_set_payload_free(struct sl_indexer *ix,
                            sl_indexer_payload_free_cb cb, void *arg)
{
  ix->payload_free = cb;
  ix->payload_free_arg = arg;
}

size_t
sl_indexer__spare_recs(const struct sl_indexer *ix)
{
  return ix->nspares;
}

/* Room for n event spans in ix->evs (kept between submits up to
 * EVS_KEEP). */
static int
evs_reserve(struct sl_indexer *ix, size_t n)
{
  struct sl_span *v;

  if (n <= ix->evs_cap)
    return 0;
  v = realloc(ix->evs, n * sizeof *v);
  if (v == NULL)
    return SL_ENOMEM;
  ix->evs = v;
  ix->evs_cap = n;
  return 0;
}

static void
evs_trim(struct sl_indexer *ix)
{
  if (ix->evs_cap > EVS_KEEP) {
    free(ix->evs);
    ix->evs = NULL;
    ix->evs_cap = 0;
  }
}

int
sl_indexer_submit(struct sl_indexer *ix, const struct sl_spool_rec *rec,
                  sl_indexer_done_cb cb, void *arg)
{
  struct sl_span orphan = { NULL, 0 };
  struct rec *r = NULL;
  char *payload = rec->data;
  size_t len = rec->len, n, nev, nlines, i;
  uint64_t now = uv_now(ix->loop);
  int rc;

  if (ix->closing)
    return SL_ECLOSED;
  /* Spooled as _bulk pairs by an older sluice (format 1): keep the
   * events, route them as configured now (spool.h, format versions). Read
   * in place, never rewritten: after any error the caller offers the same
   * bytes again (collector.c retries SL_ENOMEM as well as SL_EAGAIN). */
  nlines = sl_bulk_event_count(payload, len);
  if (rec->version == 1) {
    nev = nlines / 2;
    n = (nlines + 1) / 2; /* an action line left alone is an item too */
  } else {
    nev = n = nlines;
  }
  /* A record bigger than the whole allowance is still taken when nothing
   * else is held; otherwise it could never be sent. */
  if (ix->pending && ix->pending + n > ix->max_pending)
    return SL_EAGAIN;
  r = rec_get(ix, n);
  rc = r ? evs_reserve(ix, nlines ? nlines : 1) : SL_ENOMEM;
  if (rc)
    goto fail;
  sl_bulk_event_split(payload, len, ix->evs, nlines);
  if (rec->version == 1) {
    /* Lines alternate action, source: keep the sources. */
    for (i = 0; i < nev; i++)
      ix->evs[i] = ix->evs[2 * i + 1];
    if (n > nev)
      orphan = ix->evs[nlines - 1];
  }
  if (rec->nevents != n)
    sl_log(SL_LOG_DEBUG, COMP, "record event count differs from its items",
           SL_LF_INT, "record", (int64_t)rec->id, SL_LF_INT, "nevents",
           (int64_t)rec->nevents, SL_LF_INT, "items", (int64_t)n, SL_LF_END);
  /* Routing happens here, not at intake: one action line per event. An
   * event line is ~10x its action line, so reserve once on that guess. */
  rc = sl_buf_reserve(&r->acts, n * 96 + 1);
  for (i = 0; i < nev && !rc; i++) {
    struct item *it = &r->items[i];
    const struct sl_span *ev = &ix->evs[i];

    it->span.act_off = r->acts.len;
    rc = sl_bulk_event_action(&ix->route, ev->p, ev->len,
                              (int64_t)rec->append_ns, &r->acts);
    it->span.act_len = r->acts.len - it->span.act_off - 1; /* no '\n' */
    if (!rc && ix->target_cb)
      report_target(ix, r->acts.p + it->span.act_off, it->span.act_len);
    it->span.src_off = (size_t)(ev->p - payload);
    it->span.src_len = ev->len;
  }
  if (!rc && orphan.p) {
    /* Its action line as it was spooled; no source. It goes to the
     * dead-letter file below, as before format 2. */
    struct item *it = &r->items[nev];

    it->span.act_off = r->acts.len;
    it->span.act_len = orphan.len;
    it->span.src_off = len;
    it->span.src_len = 0;
    rc = sl_buf_append(&r->acts, orphan.p, orphan.len);
    if (!rc)
      rc = sl_buf_append_byte(&r->acts, '\n');
  }
  evs_trim(ix);
  if (rc)
    goto fail;
  r->id = rec->id;
  r->payload = payload;
  r->len = len;
  r->cap = rec->cap;
  r->nitems = r->remaining = n;
  r->cb = cb;
  r->arg = arg;
  sl_list_insert_head(n ? &ix->recs : &ix->finished, &r->link);
  ix->pending += n;
  ix->m.events_submitted += n;
  for (i = 0; i < n; i++) {
    struct item *it = &r->items[i];

    sl_list_init(&it->link);
    it->rec = r;
    it->ready_at = now;
  }
  for (i = 0; i < nev; i++)
    rq_push_back(ix, &r->items[i]);
  if (orphan.p) {
    struct batch *one = batch_new(ix, 1);

    if (one) {
      one->items[one->n++] = &r->items[nev];
      file_batch(ix, one, 0, "missing_source_line",
                 "spool record ends after an action line");
    } else {
      /* Cannot even record it: send it as it is; ES refuses the item
       * and it comes back as a dead letter. */
      rq_push_back(ix, &r->items[nev]);
    }
  }
  mark_dirty(ix);
  return 0;
fail:
  if (r) {
    /* The caller keeps the payload: detach it before recycling r. */
    r->nitems = 0;
    r->payload = NULL;
    rec_put(ix, r);
  }
  return rc;
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

void
sl_indexer_counts(const struct sl_indexer *ix, struct sl_indexer_counts *out)
{
  /* items_ok counts accepted dead letters too (they are items). */
  out->created = ix->m.items_ok - ix->m.dl_es;
  out->duplicates = ix->m.items_dup;
  out->dead_lettered = ix->m.dl_es + ix->m.dl_file;
}

int
sl_indexer_metrics(const struct sl_indexer *ix, struct sl_buf *o)
{
  const struct metrics *m = &ix->m;
  const char *help;
  char lab[64];
  size_t i;
  int rc = 0;

#define C(name, h, labels, v) \
  if (!rc) rc = sl_prom_counter(o, name, h, labels, (uint64_t)(v))
#define G(name, h, labels, v) \
  if (!rc) rc = sl_prom_gauge(o, name, h, labels, (double)(v))
  help = "_bulk requests by HTTP status (error: no answer)";
  for (i = 0; i < STATUS_SLOTS && m->req_status[i].code; i++) {
    snprintf(lab, sizeof lab, "status=\"%d\"", m->req_status[i].code);
    C("sluice_collector_es_requests_total", help, lab, m->req_status[i].n);
    help = NULL;
  }
  C("sluice_collector_es_requests_total", help, "status=\"other\"",
    m->req_other_status);
  C("sluice_collector_es_requests_total", NULL, "status=\"error\"",
    m->req_error);
  C("sluice_collector_es_items_total", "bulk item outcomes by status",
    "status=\"201\"", m->items_ok);
  C("sluice_collector_es_items_total", NULL, "status=\"409\"", m->items_dup);
  C("sluice_collector_es_items_total", NULL, "status=\"429\"", m->items_429);
  C("sluice_collector_es_items_total", NULL, "status=\"4xx\"", m->items_4xx);
  C("sluice_collector_es_items_total", NULL, "status=\"5xx\"", m->items_5xx);
  C("sluice_collector_es_items_total", NULL, "status=\"none\"",
    m->items_nostatus);
  C("sluice_collector_es_item_retries_total",
    "bulk items sent again after a retryable status", NULL, m->retry_items);
  C("sluice_collector_es_request_retries_total",
    "whole _bulk requests sent again", NULL, m->retry_requests);
  C("sluice_collector_es_splits_total", "requests split after a 413 or 400",
    NULL, m->splits);
  C("sluice_collector_es_deadletters_total",
    "refused events stored as dead letters", "dest=\"es\"", m->dl_es);
  C("sluice_collector_es_deadletters_total", NULL, "dest=\"file\"",
    m->dl_file);
  C("sluice_collector_es_deadletter_file_errors_total",
    "failed writes of the dead-letter file", NULL, m->dl_file_errors);
  C("sluice_collector_es_request_bytes_total",
    "_bulk request body bytes before compression", NULL, m->bytes_raw);
  C("sluice_collector_es_sent_bytes_total",
    "_bulk request body bytes sent (after gzip when enabled)", NULL,
    m->bytes_sent);
  C("sluice_collector_es_connections_total",
    "TCP connections opened (low when keep-alive works)", NULL,
    sl_es_connects(ix->es));
  C("sluice_collector_es_events_submitted_total",
    "events handed to the indexer", NULL, m->events_submitted);
  C("sluice_collector_es_events_done_total",
    "events indexed, duplicate or dead-lettered", NULL, m->events_done);
  G("sluice_collector_es_inflight_requests", "_bulk requests in flight",
    NULL, ix->inflight_bulk);
  G("sluice_collector_es_pending_events", "events held by the indexer",
    NULL, ix->pending);
  G("sluice_collector_es_bulk_max_bytes",
    "current body limit (lowered by 413)", NULL, ix->max_bytes);
  G("sluice_collector_es_ready", "1 when Elasticsearch is usable", NULL,
    sl_indexer_ready(ix));
  G("sluice_collector_es_up", "1 when the last request to Elasticsearch "
    "(_bulk, setup, or the probe sent every 2 s while idle) got an answer",
    NULL, ix->reachable);
  help = "why the indexer is not ready (1 = current)";
  for (i = 1; i < NR_COUNT; i++) {
    snprintf(lab, sizeof lab, "reason=\"%s\"", nr_names[i]);
    G("sluice_collector_es_not_ready", help, lab,
      ix->nr == (enum nr_reason)i);
    help = NULL;
  }
  if (!rc)
    rc = sl_prom_hist(o, "sluice_collector_es_request_duration_seconds",
                      "_bulk request latency", &m->latency);
#undef C
#undef G
  return rc;
}

static json_t *
wall_or_null(int64_t ns)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 1];

  if (ns <= 0)
    return json_null();
  ts[sl_time_format_ms(ns, ts)] = '\0';
  return json_string(ts);
}

static json_t *
cluster_state(const struct sl_indexer *ix)
{
  if (ix->health_denied)
    return json_pack("{s:n, s:s}", "status", "note",
                     "no monitor privilege for _cluster/health");
  return json_pack("{s:s?, s:I, s:o}", "status",
                   ix->cluster_status[0] ? ix->cluster_status : NULL,
                   "nodes", (json_int_t)ix->cluster_nodes, "checked",
                   wall_or_null(ix->health_ns));
}

json_t *
sl_indexer_state(const struct sl_indexer *ix)
{
  const struct metrics *m = &ix->m;
  json_t *o, *req = json_object();
  char code[16];
  size_t i;

  for (i = 0; req && i < STATUS_SLOTS && m->req_status[i].code; i++) {
    snprintf(code, sizeof code, "%d", m->req_status[i].code);
    json_object_set_new(req, code, json_integer(
                                       (json_int_t)m->req_status[i].n));
  }
  if (req && m->req_other_status)
    json_object_set_new(req, "other",
                        json_integer((json_int_t)m->req_other_status));
  if (req)
    json_object_set_new(req, "error", json_integer((json_int_t)m->req_error));
  o = json_pack(
      "{s:b, s:b, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:I, s:I, s:o,"
      " s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o,"
      " s:{s:I, s:I}, s:I,"
      " s:{s:I, s:I, s:I, s:I, s:i, s:s, s:o},"
      " s:I, s:I, s:I, s:I, s:I}",
      "ready", sl_indexer_ready(ix), "reachable", ix->reachable,
      "not_ready_reason", nr_names[ix->nr], "version", ix->es_version,
      "last_check", wall_or_null(ix->last_check_ns),
      "last_answer", wall_or_null(ix->last_answer_ns),
      "last_error_at", wall_or_null(ix->last_error_ns),
      "last_error_age_seconds",
      ix->last_error_ns ? json_real((double)(sl_time_now_ns() -
                                             ix->last_error_ns) / 1e9)
                        : json_null(),
      "last_error", ix->last_error,
      "probes", (json_int_t)ix->probes,
      "probe_failures", (json_int_t)ix->probe_failures,
      "cluster", cluster_state(ix),
      "items", "201", (json_int_t)m->items_ok, "409",
      (json_int_t)m->items_dup, "429", (json_int_t)m->items_429, "4xx",
      (json_int_t)m->items_4xx, "5xx", (json_int_t)m->items_5xx, "none",
      (json_int_t)m->items_nostatus,
      "requests", req ? req : json_object(),
      "retries", "item", (json_int_t)m->retry_items, "request",
      (json_int_t)m->retry_requests,
      "splits", (json_int_t)m->splits,
      "deadletters", "total", (json_int_t)(m->dl_es + m->dl_file), "es",
      (json_int_t)m->dl_es, "file", (json_int_t)m->dl_file, "file_errors",
      (json_int_t)m->dl_file_errors, "last_status", ix->dl_status,
      "last_reason", ix->dl_reason, "last_at", wall_or_null(ix->dl_ns),
      "inflight_requests", (json_int_t)ix->inflight_bulk,
      "pending_events", (json_int_t)ix->pending,
      "events_submitted", (json_int_t)m->events_submitted,
      "events_done", (json_int_t)m->events_done,
      "bulk_max_bytes", (json_int_t)ix->max_bytes);
  return o;
}

/* ---- close -------------------------------------------------------------- */

static void
part_closed(struct sl_indexer *ix)
{
  void (*cb)(void *);
  void *arg;

  if (--ix->open_parts > 0)
    return;
  cb = ix->close_cb;
  arg = ix->close_arg;
  ix_free(ix);
  if (cb)
    cb(arg);
}

static void
on_handle_closed(uv_handle_t *h)
{
  part_closed(h->data);
}

static void
on_client_closed(void *arg)
{
  struct sl_indexer *ix = arg;

  ix->es = NULL;
  part_closed(ix);
}

static void
finish_close(struct sl_indexer *ix)
{
  if (ix->closed)
    return;
  ix->closed = 1;
  run_finished(ix);
  /* Requests in flight are abandoned: their callbacks never run, their
   * records stay unfinished (and in the spool). */
  free_batches(&ix->sent);
  ix->inflight_bulk = ix->inflight_setup = 0;
  ix->sched_timer.data = ix->close_timer.data = ix->prepare.data = ix;
  ix->probe_timer.data = ix;
  sl_es_client_close(ix->es, on_client_closed, ix);
  uv_close((uv_handle_t *)&ix->sched_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->probe_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->close_timer, on_handle_closed);
  uv_close((uv_handle_t *)&ix->prepare, on_handle_closed);
}

static void
on_close_timeout(uv_timer_t *t)
{
  struct sl_indexer *ix = sl_container_of(t, struct sl_indexer, close_timer);

  if (ix->inflight_bulk + ix->inflight_setup)
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
  uv_timer_stop(&ix->probe_timer);
  uv_timer_start(&ix->close_timer, on_close_timeout, timeout_ms, 0);
  mark_dirty(ix);
}
