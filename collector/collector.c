#include "collector.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "archive.h"
#include "config.h"
#include "indexer.h"
#include "input.h"
#include "pump.h"
#include "retention.h"
#include "sl_config.h"
#ifdef HAVE_RDKAFKA
#include <librdkafka/rdkafka.h>

#include "input_kafka.h"
#endif
#include "sl_err.h"
#include "sl_fs.h"
#include "sl_list.h"
#include "sl_http.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_procstat.h"
#include "sl_time.h"
#include "spool.h"
#include "status_page.h"

#define MAX_INPUTS 16

struct collector {
  uv_loop_t *loop;
  struct sl_conf *conf;
  const json_t *root;
  struct sl_es_conf es;      /* typed `elasticsearch:`; lives for the run */
  struct sl_spool *spool;
  struct sl_indexer *ix;     /* NULL without `elasticsearch:` */
  struct sl_archive *ar;     /* NULL without `archive:` */
  struct sl_list fans;       /* struct fan of records handed out */
  struct sl_retention_conf ret_conf;  /* `retention:`; lives for the run */
  struct sl_retention *ret;           /* the job, NULL without retention */
  struct sl_input *inputs[MAX_INPUTS];
  size_t ninputs;
#ifdef HAVE_RDKAFKA
  struct sl_input_kafka *kafka[MAX_INPUTS];
#endif
  size_t nkafka;
  struct sl_http *http;
  uv_check_t pump;          /* moves read records to the indexer (after
                               every loop iteration: the indexer frees
                               room from its own callbacks) */
  uv_timer_t pump_retry;    /* wakes the loop to pump again after an
                               allocation failed (pump.h SL_PUMP_RETRY) */
  uv_signal_t sig_term, sig_int, sig_hup;
  struct sl_spool_rec held; /* handed out by the spool, refused by the
                               indexer or the archive (full); offered
                               again first */
  int have_held;
  struct fan *held_fan;     /* its legs; NULL until allocated */
  int held_archived;        /* the archive took its copy already */
  int held_retrying;        /* an allocation for it failed (logged once) */
  int draining;
  int start_failed;         /* tearing down a run that never started */
  int closing_parts;        /* modules still closing */
  uint64_t records_done;
  uint64_t spool_max;       /* spool.max_bytes, for the fill percentage */
  int64_t started_ns;       /* wall time this run started */
  int exit_code;
  struct sl_conf *next;     /* SIGHUP: validated config to run next */
};

/* ---- spool -> indexer and archive --------------------------------------- */

/* A record goes to the indexer and to the archive (each that is
 * configured); the spool forgets it only when both legs are done. */
struct fan {
  struct sl_list node;      /* in collector.fans */
  struct collector *c;
  uint64_t id;
  int legs;                 /* legs not done yet */
};

static void
leg_done(void *arg, uint64_t rec_id)
{
  struct fan *f = arg;
  struct collector *c = f->c;

  (void)rec_id;
  if (--f->legs > 0)
    return;
  sl_spool_release(c->spool, f->id);
  c->records_done++;
  sl_list_remove(&f->node);
  free(f);
}

static void
on_payload_done(void *arg, char *payload, size_t cap)
{
  sl_spool_recycle(arg, payload, cap);
}

/* Not taken: the record stays in the spool (not released: its fan never
 * completes) and is delivered again after a restart. */
static void
refused(struct collector *c, int rc)
{
  sl_log(SL_LOG_ERROR, "collector", "record refused", SL_LF_INT, "record",
         (int64_t)c->held.id, SL_LF_ERR, rc, SL_LF_END);
}

/* Out of memory: keep the record held and offer it again. The uv_check
 * alone would wait for the next I/O, which an idle collector may never
 * get. 100 ms: long enough for other callbacks to free memory, short
 * against the agents' ack timeouts. */
#define PUMP_RETRY_MS 100

static void on_pump_retry(uv_timer_t *t);

static void
retry_later(struct collector *c, int rc)
{
  if (!c->held_retrying)
    sl_log(SL_LOG_WARN, "collector", "record not taken, retrying",
           SL_LF_INT, "record", (int64_t)c->held.id, SL_LF_ERR, rc,
           SL_LF_END);
  c->held_retrying = 1;
  if (!uv_is_active((uv_handle_t *)&c->pump_retry))
    uv_timer_start(&c->pump_retry, on_pump_retry, PUMP_RETRY_MS, 0);
}

static void
pump(struct collector *c)
{
  int rc;

  if (c->draining)
    return;
  for (;;) {
    if (!c->have_held) {
      if (sl_spool_next(c->spool, &c->held) != 0)
        return;
      c->have_held = 1;
      c->held_archived = 0;
      c->held_retrying = 0;
    }
    if (c->held_fan == NULL) {
      c->held_fan = calloc(1, sizeof *c->held_fan);
      if (c->held_fan == NULL) {
        retry_later(c, SL_ENOMEM);
        return;
      }
      c->held_fan->c = c;
      c->held_fan->id = c->held.id;
      c->held_fan->legs = (c->ix != NULL) + (c->ar != NULL);
      sl_list_insert_tail(&c->fans, &c->held_fan->node);
    }
    /* The archive copies the events; the indexer reads them in place. */
    if (c->ar && !c->held_archived) {
      rc = sl_archive_submit(c->ar, &c->held, leg_done, c->held_fan);
      switch (sl_pump_next(rc)) {
      case SL_PUMP_WAIT:
        return;
      case SL_PUMP_RETRY:
        retry_later(c, rc);
        return;
      case SL_PUMP_REFUSED:
        c->held_archived = 1;
        refused(c, rc);
        sl_spool_recycle(c->spool, c->held.data, c->held.cap);
        c->have_held = 0;
        c->held_fan = NULL;
        continue;
      case SL_PUMP_TAKEN:
        c->held_archived = 1;
        break;
      }
    }
    if (c->ix) {
      rc = sl_indexer_submit(c->ix, &c->held, leg_done, c->held_fan);
      switch (sl_pump_next(rc)) {
      case SL_PUMP_WAIT:
        return;
      case SL_PUMP_RETRY:
        retry_later(c, rc);
        return;
      case SL_PUMP_REFUSED:
        refused(c, rc);
        sl_spool_recycle(c->spool, c->held.data, c->held.cap);
        break;
      case SL_PUMP_TAKEN:
        break;
      }
    } else {
      sl_spool_recycle(c->spool, c->held.data, c->held.cap);
    }
    c->have_held = 0;
    c->held_fan = NULL;
  }
}

static void
on_pump(uv_check_t *h)
{
  pump(h->data);
}

static void
on_pump_retry(uv_timer_t *t)
{
  pump(t->data);
}

/* The spool read records ahead (off the loop thread); take them now
 * rather than at the end of this loop iteration. */
static void
on_spool_ready(void *arg)
{
  pump(arg);
}

static void
on_spool_resume(void *arg)
{
  struct collector *c = arg;
  size_t i;

  for (i = 0; i < c->ninputs; i++)
    sl_input_resume(c->inputs[i]);
#ifdef HAVE_RDKAFKA
  for (i = 0; i < c->nkafka; i++)
    sl_input_kafka_resume(c->kafka[i]);
#endif
}

/* ---- metrics ------------------------------------------------------------ */

/* sluice_collector_build_info: the common libraries (sl_metrics.h) plus
 * the collector's own. */
static int
render_build_info(struct sl_buf *b)
{
  const char *extra[] = { "libcurl", NULL, "librdkafka", NULL, NULL };

  extra[1] = curl_version_info(CURLVERSION_NOW)->version;

#ifdef HAVE_RDKAFKA
  extra[3] = rd_kafka_version_str();
#endif
  return sl_prom_build_info(b, "sluice_collector_build_info",
                            "build of the running collector (value 1)",
                            extra);
}

static int
render_metrics(struct collector *c, struct sl_buf *b)
{
  struct sl_spool_stats ss;
  struct sl_input_stats is, sum;
  size_t i;
  int rc = 0;

  memset(&sum, 0, sizeof(sum));
  for (i = 0; i < c->ninputs; i++) {
    sl_input_stats(c->inputs[i], &is);
    sum.connections += is.connections;
    sum.accepted += is.accepted;
    sum.rejected += is.rejected;
    sum.protocol_errors += is.protocol_errors;
    sum.idle_closed += is.idle_closed;
    sum.events += is.events;
    sum.bytes += is.bytes;
    sum.windows += is.windows;
    sum.acks += is.acks;
    sum.paused |= is.paused;
  }
  sl_spool_stats(c->spool, &ss);

#define C(name, help, v) \
  if (rc == 0) rc = sl_prom_counter(b, name, help, NULL, (uint64_t)(v))
#define G(name, help, v) \
  if (rc == 0) rc = sl_prom_gauge(b, name, help, NULL, (double)(v))
  G("sluice_collector_input_connections", "Open sender connections.",
    sum.connections);
  C("sluice_collector_input_connections_accepted_total",
    "Accepted connections.", sum.accepted);
  C("sluice_collector_input_connections_rejected_total",
    "Connections refused over max_connections.", sum.rejected);
  C("sluice_collector_input_protocol_errors_total",
    "Connections closed for a protocol violation.", sum.protocol_errors);
  C("sluice_collector_input_idle_closed_total",
    "Connections closed by idle_timeout.", sum.idle_closed);
  C("sluice_collector_input_events_total",
    "Events received from Lumberjack senders.", sum.events);
  C("sluice_collector_input_bytes_total",
    "Bytes read from Lumberjack senders.", sum.bytes);
  C("sluice_collector_input_acks_total",
    "Acks sent (incl. keep-alives).", sum.acks);
  G("sluice_collector_input_paused",
    "1 while intake is paused by a full spool.", sum.paused);
  G("sluice_collector_spool_bytes", "Bytes spooled and not yet indexed.",
    ss.bytes);
  G("sluice_collector_spool_records", "Records spooled and not yet indexed.",
    ss.records);
  /* The limit itself, so that alerts and dashboards can say "% full". */
  G("sluice_collector_spool_max_bytes",
    "Spool size at which intake pauses (spool.max_bytes).", ss.max_bytes);
  G("sluice_collector_spool_oldest_age_seconds",
    "Age of the oldest unindexed record.",
    ss.oldest_append_ns
        ? (double)(sl_time_now_ns() - (int64_t)ss.oldest_append_ns) / 1e9
        : 0.0);
  C("sluice_collector_spool_records_appended_total",
    "Records made durable.", ss.appends);
  C("sluice_collector_spool_fsyncs_total", "fsync calls of the spool.",
    ss.fsyncs);
  C("sluice_collector_spool_corrupt_records_total",
    "Records moved to corrupt/.", ss.corrupt);
  C("sluice_collector_spool_truncated_bytes_total",
    "Torn-tail bytes cut at recovery.", ss.truncated_bytes);
  C("sluice_collector_spool_read_errors_total",
    "Failed record reads (retried).", ss.read_errors);
  G("sluice_collector_spool_disk_full", "1 while the spool's disk is full.",
    ss.disk_full);
  C("sluice_collector_records_indexed_total",
    "Spool records fully indexed or dead-lettered.", c->records_done);
#undef C
#undef G
#ifdef HAVE_RDKAFKA
  if (rc == 0 && c->nkafka)
    rc = sl_input_kafka_metrics(c->kafka, c->nkafka, b);
#endif
  if (rc == 0 && c->ix)
    rc = sl_indexer_metrics(c->ix, b);
  if (rc == 0 && c->ar)
    rc = sl_archive_metrics(c->ar, b);
  if (rc == 0 && c->ret)
    rc = sl_retention_metrics(c->ret, b);
  if (rc == 0)
    rc = render_build_info(b);
  if (rc == 0)
    rc = sl_procstat_metrics(b);
  return rc;
}

static int is_ready(struct collector *c);

/* /debug/state: what the modules are doing, as JSON (no secrets), for
 * operators and the status page (`/`, status.html) and `status` command:
 * intake per connection, spool fill, Elasticsearch health and outcomes,
 * dead letters, retention, archive. Built from counters the modules keep
 * anyway; nothing here walks events. */
static int
render_state(struct collector *c, struct sl_buf *b)
{
  struct sl_spool_stats ss;
  char ts[SL_TIME_RFC3339_MS_LEN + 1];
  int64_t now = sl_time_now_ns();
  json_t *o = json_object(), *ins = json_array();
  char *text;
  size_t i;
  int rc;

  if (!o || !ins) {
    json_decref(o);
    json_decref(ins);
    return SL_ENOMEM;
  }
  ts[sl_time_format_ms(now, ts)] = '\0';
  json_object_set_new(o, "time", json_string(ts));
  json_object_set_new(o, "uptime_seconds",
                      json_real((double)(now - c->started_ns) / 1e9));
  json_object_set_new(o, "ready", json_boolean(is_ready(c)));
  if (c->ret)
    json_object_set_new(o, "retention", sl_retention_state(c->ret));
  if (c->ar)
    json_object_set_new(o, "archive", sl_archive_state(c->ar));
  if (c->ix)
    json_object_set_new(o, "elasticsearch", sl_indexer_state(c->ix));
  for (i = 0; i < c->ninputs; i++)
    json_array_append_new(ins, sl_input_state(c->inputs[i]));
#ifdef HAVE_RDKAFKA
  for (i = 0; i < c->nkafka; i++)
    json_array_append_new(ins, sl_input_kafka_state(c->kafka[i]));
#endif
  json_object_set_new(o, "inputs", ins);
  sl_spool_stats(c->spool, &ss);
  json_object_set_new(o, "spool", json_pack(
      "{s:I, s:I, s:I, s:f, s:f, s:b, s:b, s:I, s:I}", "bytes",
      (json_int_t)ss.bytes, "records", (json_int_t)ss.records, "max_bytes",
      (json_int_t)c->spool_max, "fill_percent",
      c->spool_max ? 100.0 * (double)ss.bytes / (double)c->spool_max : 0.0,
      "oldest_age_seconds",
      ss.oldest_append_ns
          ? (double)(now - (int64_t)ss.oldest_append_ns) / 1e9 : 0.0,
      "full", sl_spool_is_full(c->spool), "disk_full", ss.disk_full,
      "records_indexed", (json_int_t)c->records_done, "corrupt_records",
      (json_int_t)ss.corrupt));
  json_object_set_new(o, "draining", json_boolean(c->draining));
  /* Nine digits: ages and rates, not 17-digit noise. */
  text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS |
                       JSON_REAL_PRECISION(9));
  json_decref(o);
  if (!text)
    return SL_ENOMEM;
  rc = sl_buf_append_str(b, text);
  if (!rc)
    rc = sl_buf_append_byte(b, '\n');
  free(text);
  return rc;
}

static int
is_ready(struct collector *c)
{
  return (c->ix == NULL || sl_indexer_ready(c->ix)) &&
         (c->ar == NULL || !sl_archive_failing(c->ar)) &&
         !sl_spool_is_full(c->spool) && !c->draining;
}

static void
on_http(void *arg, const char *path, int *status, const char **ctype,
        struct sl_buf *body)
{
  struct collector *c = arg;
  int rc = 0;

  *ctype = "text/plain; charset=utf-8";
  if (strcmp(path, "/metrics") == 0) {
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    *status = render_metrics(c, body) == 0 ? 200 : 500;
    return;
  }
  if (strcmp(path, "/debug/state") == 0) {
    *ctype = "application/json";
    *status = render_state(c, body) == 0 ? 200 : 500;
    return;
  }
  if (strcmp(path, "/") == 0) {
    /* The status page (status_page.h); it fetches /debug/state. */
    *ctype = "text/html; charset=utf-8";
    *status = sl_buf_append(body, sl_status_html, sl_status_html_len) == 0
                  ? 200 : 500;
    return;
  }
  if (strcmp(path, "/health") == 0) {
    *status = 200;
    rc = sl_buf_append_str(body, "ok\n");
  } else if (strcmp(path, "/ready") == 0) {
    *status = is_ready(c) ? 200 : 503;
    rc = sl_buf_append_str(body, *status == 200 ? "ready\n" : "not ready\n");
  } else {
    *status = 404;
    rc = sl_buf_append_str(body, "not found\n");
  }
  if (rc)
    *status = 500;
}

/* The status page may run only its own inline style and script. */
static int
set_page_headers(struct sl_http *http)
{
  char lines[1024];
  int n;

  n = snprintf(lines, sizeof lines, "Content-Security-Policy: %s\r\n",
               sl_status_csp);
  if (n < 0 || (size_t)n >= sizeof lines)
    return SL_EINVAL;
  return sl_http_set_html_headers(http, lines);
}

/* ---- shutdown ----------------------------------------------------------- */

static void
on_spool_closed(void *arg)
{
  struct collector *c = arg;

  uv_stop(c->loop);
}

static void
part_closed(void *arg)
{
  struct collector *c = arg;

  if (--c->closing_parts > 0)
    return;
  /* Everything that could still call into the spool is gone. */
  c->closing_parts = 1;
  sl_spool_close(c->spool, on_spool_closed, c);
}

static void
on_inputs_closed(void *arg)
{
  struct collector *c = arg;

  if (--c->closing_parts > 0)
    return;
  /* Inputs are gone (no new appends); let in-flight bulks finish. */
  if (c->have_held) {
    sl_spool_recycle(c->spool, c->held.data, c->held.cap);
    c->have_held = 0;
    c->held_fan = NULL; /* stays on c->fans, freed at the end of the run */
  }
  c->closing_parts = (c->ix != NULL) + (c->ar != NULL);
  if (c->closing_parts == 0) {
    c->closing_parts = 1;
    part_closed(c);
    return;
  }
  if (c->ix)
    sl_indexer_close(c->ix, c->start_failed ? 0 :
                     (uint64_t)sl_conf_int(c->root, "shutdown_timeout",
                                           30000),
                     part_closed, c);
  if (c->ar)
    sl_archive_close(c->ar, part_closed, c);
}

static void
begin_drain(struct collector *c, const char *why)
{
  size_t i;

  if (c->draining)
    return;
  c->draining = 1;
  sl_log(SL_LOG_INFO, "collector", "draining", SL_LF_STR, "signal", why,
         SL_LF_END);
  uv_check_stop(&c->pump);
  if (c->ret) {
    /* Nothing to drain: a run cut short is redone by the next start. */
    sl_retention_close(c->ret, NULL, NULL);
    c->ret = NULL;
  }
  if (c->http) {
    sl_http_stop(c->http);
    c->http = NULL;
  }
  uv_close((uv_handle_t *)&c->sig_term, NULL);
  uv_close((uv_handle_t *)&c->sig_int, NULL);
  uv_close((uv_handle_t *)&c->sig_hup, NULL);
  uv_close((uv_handle_t *)&c->pump, NULL);
  uv_close((uv_handle_t *)&c->pump_retry, NULL);
  c->closing_parts = (int)(c->ninputs + c->nkafka);
  if (c->closing_parts == 0) {
    c->closing_parts = 1;
    on_inputs_closed(c);
    return;
  }
  for (i = 0; i < c->ninputs; i++)
    sl_input_close(c->inputs[i], on_inputs_closed, c);
#ifdef HAVE_RDKAFKA
  /* Leaving the group commits what is durable; bounded so that a dead
   * broker cannot hold the drain. */
  for (i = 0; i < c->nkafka; i++)
    sl_input_kafka_close(c->kafka[i],
                         (uint64_t)sl_conf_int(c->root, "shutdown_timeout",
                                               30000),
                         on_inputs_closed, c);
#endif
}

static void
on_signal(uv_signal_t *h, int signum)
{
  struct collector *c = h->data;

  if (signum == SIGHUP) {
    struct sl_conf *nc = NULL;
    char err[1024] = "";
    int rc;

    if (c->draining)
      return;
    rc = sl_conf_load(sl_conf_file(c->conf), sl_collector_schema, &nc, err,
                      sizeof(err));
    if (rc == 0)
      rc = sl_collector_conf_check(nc, err, sizeof(err));
    if (rc != 0) {
      sl_conf_free(nc);
      sl_log(SL_LOG_ERROR, "collector", "SIGHUP: new config refused; "
             "keeping the running one", SL_LF_STR, "reason", err, SL_LF_END);
      return;
    }
    /* Reload = drain like SIGTERM (acked windows are in the spool, which
     * the next run reopens; unacked ones are resent by their senders and
     * dedupe by _id), then run again with the new config. */
    c->next = nc;
    begin_drain(c, "SIGHUP");
    return;
  }
  begin_drain(c, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start -------------------------------------------------------------- */

/* Fans of records whose legs did not all finish (closed before): their
 * records were not released and come back at the next open. */
static void
free_fans(struct collector *c)
{
  struct sl_list *it;

  while ((it = sl_list_pop(&c->fans)) != NULL)
    free(sl_container_of(it, struct fan, node));
}

static void
on_target(void *arg, const char *target, size_t len)
{
  sl_retention_saw_target(arg, target, len);
}

/* `retention:` for the templates and the job; its warnings are logged. */
static int
start_retention_conf(struct collector *c, char *err, size_t errlen)
{
  char warn[2048];
  char *line, *save = NULL;
  int rc;

  rc = sl_retention_conf_fill(c->conf, &c->ret_conf, err, errlen, warn,
                              sizeof warn);
  if (rc)
    return rc;
  for (line = strtok_r(warn, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save))
    sl_log(SL_LOG_WARN, "retention", "config warning", SL_LF_STR, "reason",
           line, SL_LF_END);
  if (c->ret_conf.mode != SL_RET_NONE)
    c->es.retention = &c->ret_conf;
  return 0;
}

static void
close_leftover(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* A start that failed half-way: close what was opened, in the order a
 * drain does (inputs, indexer, spool), so that the process can go on with
 * another config (SIGHUP fallback) without leaked descriptors. */
static void
abort_start(struct collector *c)
{
  size_t i;

  c->draining = 1;
  c->start_failed = 1;
  if (c->ret) {
    sl_retention_close(c->ret, NULL, NULL);
    c->ret = NULL;
  }
  if (c->spool != NULL) {
    c->closing_parts = c->ninputs ? (int)c->ninputs : 1;
    if (c->ninputs == 0)
      on_inputs_closed(c);
    for (i = 0; i < c->ninputs; i++)
      sl_input_close(c->inputs[i], on_inputs_closed, c);
    uv_run(c->loop, UV_RUN_DEFAULT);
  }
  uv_walk(c->loop, close_leftover, NULL);
  uv_run(c->loop, UV_RUN_DEFAULT);
  uv_loop_close(c->loop);
  sl_es_conf_free(&c->es);
  free_fans(c);
  sl_retention_conf_free(&c->ret_conf);
}

int
sl_collector_run(struct sl_conf *conf, struct sl_conf **next, char *why,
                 size_t whylen)
{
  struct collector c;
  uv_loop_t loop;
  struct sl_spool_opts so;
  const json_t *inputs;
  const char *data_dir, *listen;
  char err[1024] = "";
  size_t i;
  int rc;

  if (whylen)
    why[0] = '\0';
  memset(&c, 0, sizeof(c));
  sl_list_init(&c.fans);
  c.conf = conf;
  c.root = sl_conf_root(conf);
  c.exit_code = 0;
  c.started_ns = sl_time_now_ns();
  *next = NULL;
  /* A loop per run, so that a reload starts from a clean one. */
  c.loop = &loop;
  uv_loop_init(c.loop);
  signal(SIGPIPE, SIG_IGN);

  data_dir = sl_conf_str(c.root, "data_dir");
  rc = sl_fs_mkdir_p(data_dir);
  if (rc != 0) {
    sl_log(SL_LOG_ERROR, "collector", "cannot create data_dir", SL_LF_STR,
           "path", data_dir, SL_LF_ERR, rc, SL_LF_END);
    snprintf(err, sizeof(err), "data_dir %s: %s", data_dir, sl_strerror(rc));
    goto fail;
  }

  memset(&so, 0, sizeof(so));
  so.data_dir = data_dir;
  so.segment_bytes = (uint64_t)sl_conf_int(c.root, "spool.segment_bytes", 64 << 20);
  so.max_bytes = (uint64_t)sl_conf_int(c.root, "spool.max_bytes", 1LL << 30);
  c.spool_max = so.max_bytes;
  so.commit_interval_ms = (uint64_t)sl_conf_int(c.root, "spool.commit_interval", 5);
  rc = sl_spool_open(c.loop, &so, &c.spool, err, sizeof(err));
  if (rc != 0) {
    sl_log(SL_LOG_ERROR, "collector", "cannot open spool", SL_LF_STR,
           "reason", err, SL_LF_ERR, rc, SL_LF_END);
    c.spool = NULL;
    goto fail;
  }
  sl_spool_set_resume_cb(c.spool, on_spool_resume, &c);
  sl_spool_set_ready_cb(c.spool, on_spool_ready, &c);

  if (sl_conf_get(c.root, "archive")) {
    struct sl_archive_conf ac;

    sl_archive_conf_fill(sl_conf_get(c.root, "archive"), &ac);
    rc = sl_archive_open(c.loop, &ac, &c.ar, err, sizeof(err));
    if (rc != 0) {
      sl_log(SL_LOG_ERROR, "collector", "cannot open archive", SL_LF_STR,
             "reason", err, SL_LF_ERR, rc, SL_LF_END);
      goto fail;
    }
  }
  rc = 0;
  if (sl_conf_get(c.root, "elasticsearch")) {
    rc = sl_es_conf_fill(sl_conf_get(c.root, "elasticsearch"), data_dir,
                         &c.es, err, sizeof(err));
    if (rc == 0)
      rc = start_retention_conf(&c, err, sizeof(err));
    if (rc == 0)
      rc = sl_indexer_new(c.loop, &c.es, &c.ix, err, sizeof(err));
    if (rc == 0 && c.ret_conf.mode != SL_RET_NONE)
      rc = sl_retention_new(c.loop, &c.es, &c.ret_conf, &c.ret, err,
                            sizeof(err));
    if (rc == 0 && c.ret) {
      sl_indexer_set_target_cb(c.ix, on_target, c.ret);
      sl_retention_start(c.ret);
    }
  }
  if (rc == 0 && c.ix) {
    /* Payloads go back to the spool's read buffers (spool.h). */
    sl_indexer_set_payload_free(c.ix, on_payload_done, c.spool);
    rc = sl_indexer_start(c.ix);
  }
  if (rc != 0) {
    sl_log(SL_LOG_ERROR, "collector", "cannot start indexer", SL_LF_STR,
           "reason", err, SL_LF_ERR, rc, SL_LF_END);
    goto fail;
  }

  inputs = sl_conf_get(c.root, "inputs");
  for (i = 0; i < json_array_size(inputs) && i < MAX_INPUTS; i++) {
    const json_t *in = json_array_get(inputs, i);
    const char *type = sl_conf_str(in, "type");

    if (type && strcmp(type, "kafka") == 0) {
#ifdef HAVE_RDKAFKA
      rc = sl_input_kafka_new(c.loop, in, i, c.es.deadletter_index, c.spool,
                              &c.kafka[c.nkafka], err, sizeof(err));
      if (rc == 0)
        c.nkafka++;
#else
      snprintf(err, sizeof(err), "inputs[%zu]: built without librdkafka", i);
      rc = SL_ECONFIG;
#endif
    } else {
      rc = sl_input_new(c.loop, in, c.spool, &c.inputs[c.ninputs], err,
                        sizeof(err));
      if (rc == 0)
        c.ninputs++;
    }
    if (rc != 0) {
      sl_log(SL_LOG_ERROR, "collector", "cannot start input", SL_LF_STR,
             "reason", err, SL_LF_ERR, rc, SL_LF_END);
      goto fail;
    }
  }

  listen = sl_conf_str(c.root, "http.listen");
  if (listen && listen[0]) {
    rc = sl_http_start(c.loop, listen, on_http, &c, &c.http);
    if (rc != 0) {
      sl_log(SL_LOG_ERROR, "collector", "cannot start http", SL_LF_STR,
             "listen", listen, SL_LF_ERR, rc, SL_LF_END);
      snprintf(err, sizeof(err), "http.listen %s: %s", listen,
               sl_strerror(rc));
      c.http = NULL;
      goto fail;
    }
    if (set_page_headers(c.http) != 0)
      sl_log(SL_LOG_WARN, "collector", "status page served without its "
             "Content-Security-Policy", SL_LF_END);
  }

  uv_check_init(c.loop, &c.pump);
  c.pump.data = &c;
  uv_check_start(&c.pump, on_pump);
  uv_timer_init(c.loop, &c.pump_retry);
  c.pump_retry.data = &c;
  uv_signal_init(c.loop, &c.sig_term);
  uv_signal_init(c.loop, &c.sig_int);
  uv_signal_init(c.loop, &c.sig_hup);
  c.sig_term.data = c.sig_int.data = c.sig_hup.data = &c;
  uv_signal_start(&c.sig_term, on_signal, SIGTERM);
  uv_signal_start(&c.sig_int, on_signal, SIGINT);
  uv_signal_start(&c.sig_hup, on_signal, SIGHUP);

  sl_log(SL_LOG_INFO, "collector", "started", SL_LF_STR, "data_dir", data_dir,
         SL_LF_INT, "lumberjack_port",
         (int64_t)(c.ninputs ? sl_input_port(c.inputs[0]) : 0),
         SL_LF_INT, "http_port", (int64_t)(c.http ? sl_http_port(c.http) : 0),
         SL_LF_INT, "kafka_inputs", (int64_t)c.nkafka, SL_LF_END);
  uv_run(c.loop, UV_RUN_DEFAULT);
  /* Every module closed its own handles; anything left would keep the
   * loop from closing (and a reload from starting clean). */
  uv_walk(c.loop, close_leftover, NULL);
  uv_run(c.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(c.loop) != 0)
    sl_log(SL_LOG_WARN, "collector", "loop not closed cleanly", SL_LF_END);
  sl_log(SL_LOG_INFO, "collector", c.next ? "stopped for reload" : "stopped",
         SL_LF_END);
  *next = c.next;
  sl_es_conf_free(&c.es);
  free_fans(&c);
  sl_retention_conf_free(&c.ret_conf);
  return c.exit_code;

fail:
  /* Start-up failed: nothing was acked yet by this run. */
  if (whylen)
    snprintf(why, whylen, "%s", err[0] ? err : sl_strerror(rc));
  abort_start(&c);
  return SL_COLLECTOR_START_FAILED;
}
