/* agent.c - loop, wiring, signals, metrics. See agent.h for the flow. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <uv.h>

#include "filter.h"
#include "mlstage.h"
#include "multiline.h"
#include "out.h"
#include "parse.h"
#include "re.h"
#include "redact.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_fs.h"
#include "sl_http.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_procstat.h"
#include "sl_time.h"
#include "tail.h"
#include "worker.h"
#ifdef HAVE_RDKAFKA
#include <librdkafka/rdkafka.h>
#endif

enum agent_state {
  A_RUNNING,   /* reading, parsing, shipping */
  A_DRAINING,  /* no more reading; waiting for acks of what is out */
  A_CLOSING,   /* tearing down handles; the loop ends when all are closed */
};

struct sl_agent {
  const struct sl_conf *conf;
  struct sl_agent_conf ac;
  uv_loop_t loop;
  int loop_ready;
  enum agent_state state;
  int exit_code;

  char agent_id[37];
  char host_name[256];
  struct sl_agent_info info;
  struct sl_parse_ctx **ctxs;
  size_t nctx;
  struct sl_ml_conf **mlconfs;  /* per input; NULL: no line stage */
  struct sl_mlstage *ml;        /* NULL when no input needs it */
  struct sl_filter **filters;   /* per input, NULL entries: none */
  struct sl_redact **redacts;   /* per input, NULL entries: none */
  /* Per input: the label of its metrics (sl_agent_input_id) and the
   * lines its multiline stage read (the workers count the others). */
  char (*input_ids)[SL_INPUT_ID_MAX];
  uint64_t *ml_lines;

  struct sl_tail *tail;
  struct sl_workers *workers;
  struct sl_out *out;
  struct sl_http *http;

  /* Batches ready to send, oldest first (linked through next/prev). */
  struct sl_batchq pending;   /* batches waiting for the output */
  uint64_t batch_bytes;     /* wire bytes pending + in flight */
  int refused;              /* a chunk was refused: resume tail later */
  uint64_t chunks_out;      /* taken from tail, not yet done */

  uv_signal_t sig_term, sig_int, sig_hup;
  uv_timer_t drain_timer;

  /* Loop-thread counters for /metrics. */
  uint64_t chunks_in, events_sent, events_acked, batches_acked;
  uint64_t bytes_acked, retries, chunks_done;
  struct sl_hist latency;
  int64_t last_ack_ns;      /* wall time of the latest ack (0: none) */
};

/* ---- agent id --------------------------------------------------------- */

static int
valid_uuid(const char *s)
{
  int i;

  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return 0;
    } else if (!((s[i] >= '0' && s[i] <= '9') ||
                 (s[i] >= 'a' && s[i] <= 'f'))) {
      return 0;
    }
  }
  return s[36] == '\0';
}

int
sl_agent_load_id(const char *data_dir, char id[37], char *err, size_t errlen)
{
  char path[4096], buf[64];
  unsigned char r[16];
  ssize_t n;
  int fd, rc, i;

  rc = sl_fs_mkdir_p(data_dir);
  if (rc) {
    snprintf(err, errlen, "data_dir %s: %s", data_dir, sl_strerror(rc));
    return rc;
  }
  snprintf(path, sizeof(path), "%s/agent-id", data_dir);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
      n = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
      n--;
    buf[n] = '\0';
    if (valid_uuid(buf)) {
      memcpy(id, buf, 37);
      return SL_OK;
    }
    sl_log(SL_LOG_WARN, "agent", "agent-id file invalid, creating a new id",
           SL_LF_STR, "path", path, SL_LF_END);
  }
  if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
    snprintf(err, errlen, "getrandom failed");
    return SL_EIO;
  }
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);  /* version 4 */
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
  for (i = 0, n = 0; i < 16; i++) {
    static const char hex[] = "0123456789abcdef";
    if (i == 4 || i == 6 || i == 8 || i == 10)
      id[n++] = '-';
    id[n++] = hex[r[i] >> 4];
    id[n++] = hex[r[i] & 15];
  }
  id[36] = '\0';
  snprintf(buf, sizeof(buf), "%s\n", id);
  rc = sl_fs_write_atomic(path, buf, 37, 0600);
  if (rc) {
    snprintf(err, errlen, "%s: %s", path, sl_strerror(rc));
    return rc;
  }
  return SL_OK;
}


/* ---- pipeline --------------------------------------------------------- */

static void finish(struct sl_agent *a);

static void
check_drained(struct sl_agent *a)
{
  if (a->state == A_DRAINING && a->chunks_out == 0) {
    sl_log(SL_LOG_INFO, "agent", "drained: everything read was acked",
           SL_LF_END);
    finish(a);
  }
}

static void
maybe_resume(struct sl_agent *a)
{
  if (a->ml && !sl_mlstage_retry(a->ml))
    return;
  if (a->refused && a->state == A_RUNNING &&
      a->batch_bytes < a->ac.queue_max_bytes) {
    a->refused = 0;
    sl_tail_resume(a->tail);
  }
}

/* A tail chunk is acknowledged (directly, or through the line stage). */
static void
tail_chunk_done(void *arg, struct sl_tail_chunk *c)
{
  struct sl_agent *a = arg;

  a->chunks_out--;
  a->chunks_done++;
  sl_tail_chunk_done(a->tail, c);
}

static void
chunk_done(void *arg, struct sl_tail_chunk *c)
{
  struct sl_agent *a = arg;

  if (c->flags & SL_CHUNK_EVENTS)
    sl_mlstage_done(a->ml, c);  /* may run tail_chunk_done */
  else
    tail_chunk_done(a, c);
}

static void
ml_progress(void *arg, struct sl_tail_chunk *c, uint64_t off)
{
  struct sl_agent *a = arg;

  sl_tail_chunk_progress(a->tail, c, off);
}

/* Drain: the chunk holds a group that the next start reads again. */
static void
ml_abandon(void *arg, struct sl_tail_chunk *c)
{
  struct sl_agent *a = arg;

  (void)c;
  a->chunks_out--;
}

static void
pump(struct sl_agent *a)
{
  struct sl_batch *b;

  if (a->out == NULL || a->state == A_CLOSING)
    return;
  while ((b = sl_batchq_pop(&a->pending)) != NULL) {
    if (a->out->ops->send(a->out, b) != SL_SENT) {
      sl_batchq_push_front(&a->pending, b);
      break;
    }
    b->sent_ms = sl_time_mono_ms();
    if (b->attempts++ > 0)
      a->retries++;
    a->events_sent += b->events;
  }
}

static void
on_acked(void *arg, struct sl_batch *b)
{
  struct sl_agent *a = arg;

  sl_hist_observe(&a->latency,
                  (double)(sl_time_mono_ms() - b->sent_ms) / 1000.0);
  a->events_acked += b->events;
  a->batches_acked++;
  a->bytes_acked += b->len;
  a->batch_bytes -= b->len;
  a->last_ack_ns = sl_time_now_ns();
  sl_batch_release(b, chunk_done, a);
  if (a->state == A_CLOSING)
    return;
  maybe_resume(a);
  pump(a);
  check_drained(a);
}

static void
on_requeue(void *arg, struct sl_batch *b)
{
  struct sl_agent *a = arg;

  if (a->state == A_CLOSING) {
    a->batch_bytes -= b->len;
    sl_batch_discard(b);
    return;
  }
  sl_batchq_push_front(&a->pending, b);
}

static void
on_writable(void *arg)
{
  pump(arg);
}

/* A finished batch from a worker (loop thread, through uv_async). */
static void
on_batch(void *arg, struct sl_batch *b)
{
  struct sl_agent *a = arg;

  if (b->events == 0) {
    /* Only blank lines: nothing to send, the chunks are done. */
    sl_batch_release(b, chunk_done, a);
    maybe_resume(a);
    check_drained(a);
    return;
  }
  a->batch_bytes += b->len;
  sl_batchq_push(&a->pending, b);
  pump(a);
}

static void
on_room(void *arg)
{
  struct sl_agent *a = arg;

  /* Event chunks of the line stage wait for room during a drain too. */
  if (a->ml && a->state != A_CLOSING)
    sl_mlstage_retry(a->ml);
  maybe_resume(a);
}

/* Queue a chunk (tail's, or an event chunk of the line stage) for the
 * workers; SL_EAGAIN when they are full. */
static int
push_chunk(void *arg, struct sl_tail_chunk *c)
{
  struct sl_agent *a = arg;
  struct sl_wchunk *wc;

  wc = calloc(1, sizeof(*wc));
  if (wc == NULL)
    return SL_EAGAIN;
  wc->c = c;
  wc->refs = 1;
  if (sl_workers_push(a->workers, wc)) {
    free(wc);
    return SL_EAGAIN;
  }
  return SL_OK;
}

static int
on_chunk(void *arg, struct sl_tail_chunk *c)
{
  struct sl_agent *a = arg;
  int rc;

  if (a->state != A_RUNNING || a->batch_bytes >= a->ac.queue_max_bytes) {
    a->refused = a->state == A_RUNNING;
    return SL_EAGAIN;
  }
  if (a->ml && sl_mlstage_wants(a->ml, c))
    rc = sl_mlstage_chunk(a->ml, c);
  else
    rc = push_chunk(a, c);
  if (rc) {
    a->refused = 1;
    return SL_EAGAIN;
  }
  a->chunks_in++;
  a->chunks_out++;
  return SL_OK;
}

/* ---- metrics ---------------------------------------------------------- */

/* sluice_agent_build_info: the common libraries (sl_metrics.h) plus the
 * agent's own. */
static int
render_build_info(struct sl_buf *b)
{
  char pcre2[32] = "", *sp;
  const char *extra[] = { "pcre2", pcre2, "librdkafka", NULL, NULL };

  if (pcre2_config(PCRE2_CONFIG_VERSION, pcre2) < 0)
    snprintf(pcre2, sizeof(pcre2), "%d.%d", PCRE2_MAJOR, PCRE2_MINOR);
  sp = strchr(pcre2, ' ');  /* "10.42 2022-12-11": the date goes */
  if (sp)
    *sp = '\0';
#ifdef HAVE_RDKAFKA
  extra[3] = rd_kafka_version_str();
#endif
  return sl_prom_build_info(b, "sluice_agent_build_info",
                            "build of the running agent (value 1)", extra);
}

/* Per-input series under their own names (sluice_agent_input_*), so that
 * summing them over `input` gives the unlabelled totals and never counts
 * anything twice. */
static int
render_inputs(struct sl_agent *a, struct sl_buf *b)
{
  static const char *const help[3] = {
    "lines read from the files of the input (blank ones included)",
    "bytes read from the files of the input",
    "events built from the lines of the input",
  };
  static const char *const name[3] = {
    "sluice_agent_input_lines_read_total",
    "sluice_agent_input_bytes_read_total",
    "sluice_agent_input_events_built_total",
  };
  struct sl_input_counts ic;
  char lab[SL_INPUT_ID_MAX + 16];
  uint64_t v;
  size_t i, k;
  int rc = 0;

  for (k = 0; k < 3; k++)
    for (i = 0; i < a->nctx; i++) {
      memset(&ic, 0, sizeof(ic));
      if (a->workers)
        sl_workers_input_stats(a->workers, i, &ic);
      if (k == 0)
        v = ic.lines + a->ml_lines[i];
      else if (k == 1)
        v = a->tail ? sl_tail_input_bytes_read(a->tail, (int)i) : 0;
      else
        v = ic.events;
      /* Ids are checked to need no escaping (config.h). */
      snprintf(lab, sizeof(lab), "input=\"%s\"", a->input_ids[i]);
      rc |= sl_prom_counter(b, name[k], i ? NULL : help[k], lab, v);
    }
  return rc;
}

static int
render_metrics(struct sl_agent *a, struct sl_buf *b)
{
  struct sl_batcher_stats ws;
  struct sl_tail_stats ts;
  struct sl_out_stats os;
  struct sl_mlstage_stats ms;
  int rc = 0;

  memset(&ws, 0, sizeof(ws));
  if (a->workers)
    sl_workers_stats(a->workers, &ws);
  memset(&ts, 0, sizeof(ts));
  if (a->tail)
    sl_tail_stats(a->tail, &ts);
  memset(&ms, 0, sizeof(ms));
  if (a->ml)
    sl_mlstage_stats(a->ml, &ms);
  memset(&os, 0, sizeof(os));
  if (a->out)
    a->out->ops->stats(a->out, &os);
#define C(name, help, v) \
  rc |= sl_prom_counter(b, "sluice_agent_" name, help, NULL, (uint64_t)(v))
#define G(name, help, v) \
  rc |= sl_prom_gauge(b, "sluice_agent_" name, help, NULL, (double)(v))
  C("lines_read_total", "lines read from files (blank ones included)",
    ws.lines + ms.lines);
  C("lines_blank_total", "blank lines skipped (no event)", ws.empty);
  C("lines_truncated_total", "lines cut at max_line_bytes",
    ts.lines_truncated);
  C("lines_excluded_total", "lines dropped by include_lines/exclude_lines",
    ws.excluded);
  C("truncated_bytes_dropped_total",
    "bytes of truncated lines past max_line_bytes, dropped",
    ts.bytes_skipped);
  C("bytes_read_total", "bytes read from files", ts.bytes_read);
  C("chunks_total", "read chunks taken from the tailer", a->chunks_in);
  C("events_built_total", "events built from lines (parse failures "
    "included: they ship tagged)", ws.events);
  C("events_dropped_total", "events dropped: larger than a batch, or not "
    "encodable", ws.failed);
  C("events_redacted_total", "events changed by a redact rule",
    ws.redacted);
  C("events_sent_total", "events handed to the output (resends included)",
    a->events_sent);
  C("events_acked_total", "events acknowledged by the output",
    a->events_acked);
  C("multiline_events_total", "events out of the line stage (multiline, "
    "partial lines)", ms.events);
  C("multiline_events_joined_total", "events joined from several lines",
    ms.joined);
  C("multiline_timeouts_total", "line groups shipped by timeout",
    ms.timeouts);
  C("batches_built_total", "batches built by workers", ws.batches);
  C("batches_acked_total", "batches acknowledged", a->batches_acked);
  C("batches_resent_total", "batches sent again after a timeout or a lost "
    "connection", a->retries);
  C("bytes_sent_total", "wire bytes written by the output", os.bytes_sent);
  C("bytes_acked_total", "wire bytes acknowledged", a->bytes_acked);
  C("output_connects_total", "output connections established", os.connects);
  C("output_disconnects_total", "output connections lost", os.disconnects);
  C("output_timeouts_total", "ack timeouts", os.timeouts);
  C("files_rotated_total", "rotated source files seen", ts.rotations);
  C("files_truncated_total", "source files truncated in place (copytruncate)",
    ts.truncations);
  G("queue_bytes", "batch bytes waiting or in flight", a->batch_bytes);
  /* The cap itself, so that alerts and dashboards can say "% full". */
  G("queue_max_bytes", "queue.max_bytes: cap of queue_bytes and of "
    "queue_input_bytes", a->ac.queue_max_bytes);
  G("queue_input_bytes", "read bytes not yet acknowledged",
    ts.inflight_bytes);
  G("lag_bytes", "bytes in the tailed files not yet delivered, read or "
    "not (last known sizes)", ts.lag_bytes);
  G("queue_batches", "batches waiting for the output",
    (uint64_t)a->pending.n);
  G("inflight_batches", "batches sent, not yet acknowledged", os.inflight);
  G("output_connected", "output connections up", os.connected);
  G("files_open", "source files open", ts.files_open);
  G("files_waiting", "matched files waiting for a harvester_limit slot",
    ts.files_waiting);
  G("harvester_limit", "most source files open at once",
    ts.harvester_limit);
  G("registry_entries", "files in the registry", ts.registry_entries);
#undef C
#undef G
  rc |= sl_prom_hist(b, "sluice_agent_output_latency_seconds",
                     "send to ack time of a batch", &a->latency);
  if (a->out && a->out->ops->metrics)
    rc |= a->out->ops->metrics(a->out, b);
  rc |= render_inputs(a, b);
  rc |= render_build_info(b);
  rc |= sl_procstat_metrics(b);
  return rc;
}

/* ---- /debug/state ----------------------------------------------------- */

/* Files listed in /debug/state; the rest are counted ("truncated"), so a
 * host with 100k files answers in bounded time and size. */
#define STATE_MAX_FILES 1000

void
sl_out_note_error(struct sl_out_last_err *e, const char *host,
                  const char *port, const char *why, int err)
{
  snprintf(e->text, sizeof(e->text), "%s%s%s: %s: %s", host ? host : "",
           port ? ":" : "", port ? port : "", why, sl_strerror(err));
  e->at_ns = sl_time_now_ns();
}

static json_t *
time_or_null(int64_t ns)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 1];

  if (ns <= 0)
    return json_null();
  sl_time_format_ms(ns, ts);
  return json_string(ts);
}

int
sl_out_put_error(json_t *o, const struct sl_out_last_err *e)
{
  if (json_object_set_new(o, "last_error", e->at_ns > 0
                          ? json_string(e->text) : json_null()) ||
      json_object_set_new(o, "last_error_at", time_or_null(e->at_ns)))
    return SL_ENOMEM;
  return SL_OK;
}

/* Where the output sends: hosts, a path or brokers (never credentials:
 * output.sasl and ssl keys stay out). */
static json_t *
out_targets(const struct sl_agent *a)
{
  json_t *t = json_array(), *v;
  size_t i;
  int h;

  if (t == NULL)
    return NULL;
  switch (a->ac.out_type) {
  case SL_OUT_LUMBERJACK:
  case SL_OUT_TCP:
    for (h = 0; h < a->ac.nhosts; h++)
      json_array_append_new(t, json_string(a->ac.hosts[h]));
    break;
  case SL_OUT_FILE:
    json_array_append_new(t, json_string(a->ac.path));
    break;
  case SL_OUT_STDOUT:
    json_array_append_new(t, json_string("stdout"));
    break;
  case SL_OUT_KAFKA:
    json_array_foreach(sl_conf_get(a->ac.output, "brokers"), i, v)
      json_array_append_new(t, json_string(json_string_value(v)));
    break;
  }
  return t;
}

static json_t *
out_state(const struct sl_agent *a)
{
  struct sl_out_stats os;
  json_t *o, *extra;

  memset(&os, 0, sizeof(os));
  if (a->out)
    a->out->ops->stats(a->out, &os);
  o = json_pack("{s:s, s:o?, s:b, s:I, s:I, s:I, s:o?}",
                "type", a->out ? a->out->ops->name : "none",
                "targets", out_targets(a),
                "ready", a->out && a->out->ops->ready(a->out),
                "connected", (json_int_t)os.connected,
                "inflight_batches", (json_int_t)os.inflight,
                "queued_batches", (json_int_t)a->pending.n,
                "last_ack", time_or_null(a->last_ack_ns));
  if (o && a->ac.out_type == SL_OUT_KAFKA)
    json_object_set_new(o, "topic", json_string(
        sl_conf_str(a->ac.output, "topic")));
  if (o && a->out && a->out->ops->state) {
    extra = a->out->ops->state(a->out);
    if (extra == NULL || json_object_update(o, extra)) {
      json_decref(extra);
      json_decref(o);
      return NULL;
    }
    json_decref(extra);
  }
  if (o && json_object_get(o, "last_error") == NULL &&
      (json_object_set_new(o, "last_error", json_null()) ||
       json_object_set_new(o, "last_error_at", json_null()))) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* What `sluice-agent status` prints: files with offsets and lag, the
 * output, the queues. Bounded (STATE_MAX_FILES) and without secrets. */
static int
render_state(struct sl_agent *a, struct sl_buf *b)
{
  struct sl_tail_stats ts;
  json_t *o, *files = NULL, *f;
  char *text = NULL, id[SL_INPUT_ID_MAX];
  int rc = SL_ENOMEM;
  size_t i;

  memset(&ts, 0, sizeof(ts));
  if (a->tail) {
    sl_tail_stats(a->tail, &ts);
    files = sl_tail_state(a->tail, STATE_MAX_FILES);
    if (files == NULL)
      return SL_ENOMEM;
    /* tail knows inputs by index; the id is the config's business. */
    json_array_foreach(json_object_get(files, "files"), i, f) {
      sl_agent_input_id(a->ac.inputs, (size_t)json_integer_value(
          json_object_get(f, "input")), id);
      if (json_object_set_new(f, "input_id", json_string(id))) {
        json_decref(files);
        return SL_ENOMEM;
      }
    }
  }
  o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o?, s:{s:I, s:I, s:I, s:I},"
                " s:{s:I, s:I, s:I}}",
                "agent_id", a->agent_id, "host", a->host_name,
                "version", SL_VERSION,
                "state", a->state == A_RUNNING ? "running" : "draining",
                "output", out_state(a), "files", files,
                "queue", "bytes", (json_int_t)a->batch_bytes,
                "max_bytes", (json_int_t)a->ac.queue_max_bytes,
                "input_bytes", (json_int_t)ts.inflight_bytes,
                "batches", (json_int_t)a->pending.n,
                "totals", "events_acked", (json_int_t)a->events_acked,
                "bytes_read", (json_int_t)ts.bytes_read,
                "files_open", (json_int_t)ts.files_open);
  if (o == NULL)
    return SL_ENOMEM;
  text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(o);
  if (text) {
    rc = sl_buf_append_str(b, text);
    if (rc == 0)
      rc = sl_buf_append_byte(b, '\n');
  }
  free(text);
  return rc;
}

static void
http_handler(void *arg, const char *path, int *status, const char **ctype,
             struct sl_buf *body)
{
  struct sl_agent *a = arg;
  int ready;

  *ctype = "text/plain; charset=utf-8";
  if (strcmp(path, "/metrics") == 0) {
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    *status = render_metrics(a, body) ? 500 : 200;
  } else if (strcmp(path, "/debug/state") == 0) {
    *ctype = "application/json";
    *status = render_state(a, body) ? 500 : 200;
  } else if (strcmp(path, "/health") == 0) {
    *status = 200;
    if (sl_buf_append_str(body, "ok\n"))
      *status = 500;
  } else if (strcmp(path, "/ready") == 0) {
    ready = a->state == A_RUNNING && a->out && a->out->ops->ready(a->out);
    *status = ready ? 200 : 503;
    if (sl_buf_append_str(body, ready ? "ready\n" : "output not ready\n"))
      *status = 500;
  } else {
    *status = 404;
    if (sl_buf_append_str(body, "not found\n"))
      *status = 500;
  }
}

/* ---- shutdown --------------------------------------------------------- */

static void
handle_noop_close(uv_handle_t *h)
{
  (void)h;
}

static void
signals_mask(int how)
{
  sigset_t ss;

  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  sigaddset(&ss, SIGHUP);
  pthread_sigmask(how, &ss, NULL);
}

static void
tail_closed(void *arg)
{
  struct sl_agent *a = arg;

  /* Closing the last uv_signal_t restores the default action; keep the
   * signals pending instead (main may start the next agent). */
  signals_mask(SIG_BLOCK);
  a->tail = NULL;
  if (a->http)
    sl_http_stop(a->http);
  a->http = NULL;
  uv_close((uv_handle_t *)&a->sig_term, handle_noop_close);
  uv_close((uv_handle_t *)&a->sig_int, handle_noop_close);
  uv_close((uv_handle_t *)&a->sig_hup, handle_noop_close);
  uv_close((uv_handle_t *)&a->drain_timer, handle_noop_close);
  sl_log(SL_LOG_INFO, "agent", "stopped", SL_LF_END);
}

static void
out_closed(void *arg)
{
  struct sl_agent *a = arg;
  struct sl_batch *b;

  a->out = NULL;
  while ((b = sl_batchq_pop(&a->pending)) != NULL) {
    a->batch_bytes -= b->len;
    sl_batch_discard(b);
  }
  /* Before tail: the stage forgets the tail chunks it holds, which tail
   * frees as it closes. */
  sl_mlstage_close(a->ml);
  a->ml = NULL;
  sl_tail_close(a->tail, tail_closed, a);
}

static void
finish(struct sl_agent *a)
{
  if (a->state == A_CLOSING)
    return;
  a->state = A_CLOSING;
  uv_timer_stop(&a->drain_timer);
  if (a->chunks_out)
    sl_log(SL_LOG_WARN, "agent", "shutting down with unacknowledged data; "
           "it is sent again on the next start",
           SL_LF_INT, "chunks", (int64_t)a->chunks_out, SL_LF_END);
  /* Workers first: after the join no batch can arrive any more. */
  sl_workers_stop(a->workers);
  a->workers = NULL;
  a->out->ops->close(a->out, out_closed, a);
}

static void
drain_timeout(uv_timer_t *t)
{
  struct sl_agent *a = t->data;

  sl_log(SL_LOG_WARN, "agent", "shutdown_timeout reached", SL_LF_END);
  finish(a);
}

void
sl_agent_stop(struct sl_agent *a)
{
  if (a->state == A_DRAINING) {
    sl_log(SL_LOG_WARN, "agent", "second stop request: not waiting for acks",
           SL_LF_END);
    finish(a);
    return;
  }
  if (a->state != A_RUNNING)
    return;
  sl_log(SL_LOG_INFO, "agent", "stopping: draining",
         SL_LF_INT, "chunks", (int64_t)a->chunks_out, SL_LF_END);
  a->state = A_DRAINING;
  sl_tail_stop_reading(a->tail);
  if (a->ml)
    sl_mlstage_drain(a->ml);
  sl_workers_drain(a->workers);
  uv_timer_start(&a->drain_timer, drain_timeout, a->ac.shutdown_timeout_ms,
                 0);
  check_drained(a);
}

static void
on_signal(uv_signal_t *s, int signum)
{
  struct sl_agent *a = s->data;

  if (signum == SIGHUP) {
    /* Reload = validate the new file; if good, drain exactly as for
     * SIGTERM (every event read is acked and the registry saved) and let
     * main() build a new agent from the new file. Nothing is lost and,
     * unless the drain times out, nothing is sent twice. A bad file is
     * refused and the running agent goes on untouched. */
    struct sl_conf *nc = NULL;
    char err[512];
    int rc;

    if (a->state != A_RUNNING)
      return;
    err[0] = '\0';
    rc = sl_conf_load(sl_conf_file(a->conf), sl_agent_schema, &nc, err,
                      sizeof(err));
    if (rc == 0)
      rc = sl_agent_check(nc, err, sizeof(err));
    sl_conf_free(nc);
    if (rc) {
      sl_log(SL_LOG_ERROR, "agent", "SIGHUP: new config is invalid; "
             "keeping the running one", SL_LF_STR, "reason", err, SL_LF_END);
      return;
    }
    sl_log(SL_LOG_INFO, "agent", "SIGHUP: reloading: draining first",
           SL_LF_END);
    a->exit_code = SL_AGENT_RELOAD;
    sl_agent_stop(a);
    return;
  }
  sl_log(SL_LOG_INFO, "agent", "signal", SL_LF_STR, "signal",
         signum == SIGTERM ? "SIGTERM" : "SIGINT", SL_LF_END);
  if (a->exit_code == SL_AGENT_RELOAD) {
    /* Already draining for a reload: finish the drain, then exit. */
    a->exit_code = 0;
    return;
  }
  /* Workers may be parked on their condition variable after the pool is
   * stopped; nothing else to do here. */
  sl_agent_stop(a);
}

/* ---- setup ------------------------------------------------------------ */

/* A module's "key.path: reason" about inputs[i], reported as
 * "file:line: inputs[i].key.path: reason", so that it names the key and a
 * value the loader already refused is not reported again. */
static void
input_error(const struct sl_conf *conf, const json_t *node, size_t i,
            const char *msg, char *err, size_t errlen)
{
  const char *sep = strstr(msg, ": ");
  size_t n = sep ? (size_t)(sep - msg) : 0;
  char path[128];

  if (n > 0 && n < 64 &&
      strspn(msg, "abcdefghijklmnopqrstuvwxyz0123456789_.[]") == n) {
    snprintf(path, sizeof(path), "inputs[%zu].%.*s", i, (int)n, msg);
    sl_conf_error(conf, node, path, err, errlen, "%s", sep + 2);
  } else {
    snprintf(path, sizeof(path), "inputs[%zu]", i);
    sl_conf_error(conf, node, path, err, errlen, "%s", msg);
  }
}

static int
make_ctxs(const struct sl_conf *conf, const struct sl_agent_conf *ac,
          const struct sl_agent_info *info, struct sl_parse_ctx ***out,
          size_t *nout, char *err, size_t errlen)
{
  struct sl_parse_ctx **ctxs;
  size_t i, n = json_array_size(ac->inputs);
  char perr[256];
  int rc = 0, r;

  ctxs = calloc(n ? n : 1, sizeof(*ctxs));
  if (ctxs == NULL)
    return SL_ENOMEM;
  /* Every input, so that --check reports all bad ones. */
  for (i = 0; i < n; i++) {
    json_t *in = json_array_get(ac->inputs, i);
    perr[0] = '\0';
    r = sl_parse_ctx_new(in, info, &ctxs[i], perr, sizeof(perr));
    if (r) {
      input_error(conf, in, i, perr[0] ? perr : sl_strerror(r), err,
                  errlen);
      rc = rc ? rc : r;
    }
  }
  if (rc) {
    for (i = 0; i < n; i++)
      sl_parse_ctx_free(ctxs[i]);
    free(ctxs);
    return rc;
  }
  *out = ctxs;
  *nout = n;
  return SL_OK;
}

/* The line stage's settings per input; *out stays NULL when no input
 * needs the stage. */
static int
make_mlconfs(const struct sl_conf *conf, const struct sl_agent_conf *ac,
             struct sl_ml_conf ***out, char *err, size_t errlen)
{
  size_t i, n = json_array_size(ac->inputs);
  struct sl_ml_conf **c;
  char merr[256];
  int rc = 0, r, any = 0;

  *out = NULL;
  c = calloc(n ? n : 1, sizeof(*c));
  if (c == NULL)
    return SL_ENOMEM;
  for (i = 0; i < n; i++) {
    json_t *in = json_array_get(ac->inputs, i), *node;
    merr[0] = '\0';
    r = sl_ml_conf_new(in, &c[i], merr, sizeof(merr));
    if (r) {
      node = json_object_get(in, "multiline");
      input_error(conf, node ? node : in, i,
                  merr[0] ? merr : sl_strerror(r), err, errlen);
      rc = rc ? rc : r;
    }
    any |= c[i] != NULL;
  }
  if (rc || !any) {
    for (i = 0; i < n; i++)
      sl_ml_conf_free(c[i]);
    free(c);
    return rc;
  }
  *out = c;
  return SL_OK;
}

/* include/exclude_lines, field edits and redaction per input. */
static int
make_linefx(const struct sl_conf *conf, const struct sl_agent_conf *ac,
            struct sl_filter ***fout, struct sl_redact ***rout, char *err,
            size_t errlen)
{
  size_t i, n = json_array_size(ac->inputs);
  struct sl_filter **f = calloc(n ? n : 1, sizeof(*f));
  struct sl_redact **r = calloc(n ? n : 1, sizeof(*r));
  char ferr[320];
  int rc = f && r ? 0 : SL_ENOMEM, one;

  static const char *const keys[] = { "include_lines", "exclude_lines",
                                       "drop_fields", "rename", "add_fields",
                                       "redact" };
  size_t k;

  for (i = 0; i < n && rc != SL_ENOMEM; i++) {
    json_t *in = json_array_get(ac->inputs, i), *node = NULL;
    ferr[0] = '\0';
    one = sl_filter_new(in, &f[i], ferr, sizeof(ferr));
    if (one == 0)
      one = sl_redact_new(in, &r[i], ferr, sizeof(ferr));
    if (one == 0)
      continue;
    /* Point at the key the message starts with. */
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
      if (strncmp(ferr, keys[k], strlen(keys[k])) == 0)
        node = json_object_get(in, keys[k]);
    input_error(conf, node ? node : in, i, ferr[0] ? ferr : sl_strerror(one),
                err, errlen);
    rc = rc ? rc : one;
  }
  if (rc) {
    for (i = 0; f && r && i < n; i++) {
      sl_filter_free(f[i]);
      sl_redact_free(r[i]);
    }
    free(f);
    free(r);
    return rc;
  }
  *fout = f;
  *rout = r;
  return SL_OK;
}

static void
free_linefx(struct sl_filter **f, struct sl_redact **r, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++) {
    if (f)
      sl_filter_free(f[i]);
    if (r)
      sl_redact_free(r[i]);
  }
  free(f);
  free(r);
}

static void
free_mlconfs(struct sl_ml_conf **c, size_t n)
{
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < n; i++)
    sl_ml_conf_free(c[i]);
  free(c);
}

int
sl_agent_check(const struct sl_conf *conf, char *err, size_t errlen)
{
  struct sl_agent_conf ac;
  struct sl_agent_info info = { "check", "00000000-0000-4000-8000-000000000000",
                                "check", SL_VERSION };
  struct sl_parse_ctx **ctxs;
  size_t i, n;
  int rc;

  struct sl_ml_conf **ml;
  struct sl_filter **f;
  struct sl_redact **r;
  int one;

  /* Each step reports every problem it finds and the next steps run all
   * the same (sl_conf_error; err keeps the first), so --check lists them
   * all. Steps only read the inputs the loader accepted. */
  rc = sl_agent_conf_read(conf, &ac, err, errlen);
  one = make_ctxs(conf, &ac, &info, &ctxs, &n, err, errlen);
  if (one == 0) {
    for (i = 0; i < n; i++)
      sl_parse_ctx_free(ctxs[i]);
    free(ctxs);
  }
  rc = rc ? rc : one;
  one = make_mlconfs(conf, &ac, &ml, err, errlen);
  if (one == 0)
    free_mlconfs(ml, json_array_size(ac.inputs));
  rc = rc ? rc : one;
  one = make_linefx(conf, &ac, &f, &r, err, errlen);
  if (one == 0)
    free_linefx(f, r, json_array_size(ac.inputs));
  return rc ? rc : one;
}

static const struct sl_out_ops *
out_ops_for(enum sl_out_type t)
{
  switch (t) {
  case SL_OUT_LUMBERJACK:
    return &sl_out_lumberjack_ops;
  case SL_OUT_TCP:
    return &sl_out_tcp_ops;
  case SL_OUT_FILE:
  case SL_OUT_STDOUT:
    return &sl_out_file_ops;
  case SL_OUT_KAFKA:
#ifdef HAVE_RDKAFKA
    return &sl_out_kafka_ops;
#else
    break;  /* refused by sl_agent_conf_read */
#endif
  }
  return NULL;
}

int
sl_agent_new(const struct sl_conf *conf, struct sl_agent **out, char *err,
             size_t errlen)
{
  struct sl_agent *a;
  struct sl_tail_opts to;
  struct sl_workers_opts wo;
  struct sl_out_cbs cbs;
  size_t i;
  int rc;

  a = calloc(1, sizeof(*a));
  if (a == NULL)
    return SL_ENOMEM;
  a->conf = conf;
  sl_batchq_init(&a->pending);
  rc = sl_agent_conf_read(conf, &a->ac, err, errlen);
  if (rc)
    goto fail;
  rc = sl_agent_load_id(a->ac.data_dir, a->agent_id, err, errlen);
  if (rc)
    goto fail;
  if (a->ac.name && *a->ac.name) {
    snprintf(a->host_name, sizeof(a->host_name), "%s", a->ac.name);
  } else if (gethostname(a->host_name, sizeof(a->host_name) - 1) != 0) {
    snprintf(a->host_name, sizeof(a->host_name), "localhost");
  }
  a->info.host_name = a->host_name;
  a->info.agent_id = a->agent_id;
  a->info.agent_name = a->host_name;
  a->info.version = SL_VERSION;
  rc = make_ctxs(conf, &a->ac, &a->info, &a->ctxs, &a->nctx, err, errlen);
  if (rc)
    goto fail;
  rc = make_mlconfs(conf, &a->ac, &a->mlconfs, err, errlen);
  if (rc)
    goto fail;
  a->input_ids = calloc(a->nctx ? a->nctx : 1, sizeof(*a->input_ids));
  a->ml_lines = calloc(a->nctx ? a->nctx : 1, sizeof(*a->ml_lines));
  if (a->input_ids == NULL || a->ml_lines == NULL) {
    rc = SL_ENOMEM;
    snprintf(err, errlen, "%s", sl_strerror(rc));
    goto fail;
  }
  for (i = 0; i < a->nctx; i++)
    sl_agent_input_id(a->ac.inputs, i, a->input_ids[i]);
  rc = make_linefx(conf, &a->ac, &a->filters, &a->redacts, err, errlen);
  if (rc)
    goto fail;

  rc = uv_loop_init(&a->loop);
  if (rc) {
    snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
    goto fail;
  }
  a->loop_ready = 1;

  cbs.arg = a;
  cbs.acked = on_acked;
  cbs.requeue = on_requeue;
  cbs.writable = on_writable;
  rc = out_ops_for(a->ac.out_type)->init(&a->loop, &a->ac, &cbs, &a->out,
                                          err, errlen);
  if (rc)
    goto fail;

  memset(&wo, 0, sizeof(wo));
  wo.n = a->ac.workers;
  wo.b.fmt = a->ac.fmt;
  wo.b.level = a->ac.compression_level;
  wo.b.max_events = a->ac.batch_max_events;
  wo.b.max_bytes = a->ac.batch_max_bytes;
  wo.b.max_line_bytes = a->ac.max_line_bytes;
  wo.b.free_data = 1;
  wo.b.filters = a->filters;
  wo.b.redacts = a->redacts;
  wo.b.ninputs = a->nctx;
  wo.flush_interval_ms = a->ac.flush_interval_ms;
  /* Chunks waiting for a worker: enough to keep every worker busy, small
   * next to the batch queue so that memory stays where it is counted. */
  wo.max_queue_bytes = a->ac.queue_max_bytes / 4;
  /* Recycled batch buffers. In use there can be queue.max_bytes of
   * batches plus the events of the chunks already behind the limit
   * (queue/4 of input, ~2.5x as events) and the workers' open batches;
   * idle ones only ever come from that set, so idle + in use never
   * exceeds the peak the queue allowed. Measured (bench/RESULTS.md): a
   * bound of 1x queue.max_bytes dropped 7 % of the buffers and faulted
   * them in again; 2x keeps them all. */
  wo.max_pool_bytes = 2 * a->ac.queue_max_bytes;
  wo.loop = &a->loop;
  wo.ready = on_batch;
  wo.room = on_room;
  wo.arg = a;
  rc = sl_workers_start(&wo, &a->workers);
  if (rc) {
    snprintf(err, errlen, "cannot start workers: %s", sl_strerror(rc));
    goto fail;
  }

  if (a->mlconfs) {
    struct sl_mlstage_opts mo;

    memset(&mo, 0, sizeof(mo));
    mo.loop = &a->loop;
    mo.confs = a->mlconfs;
    mo.nconfs = a->nctx;
    mo.input_lines = a->ml_lines;
    mo.push = push_chunk;
    mo.done = tail_chunk_done;
    mo.progress = ml_progress;
    mo.abandon = ml_abandon;
    mo.arg = a;
    rc = sl_mlstage_new(&mo, &a->ml);
    if (rc) {
      snprintf(err, errlen, "cannot start the line stage: %s",
               sl_strerror(rc));
      goto fail;
    }
  }

  memset(&to, 0, sizeof(to));
  to.inputs = a->ac.inputs;
  to.ctxs = a->ctxs;
  to.data_dir = a->ac.data_dir;
  to.registry_flush_ms = a->ac.registry_flush_ms;
  to.queue_max_bytes = a->ac.queue_max_bytes;
  to.harvester_limit = a->ac.harvester_limit;
  to.cb = on_chunk;
  to.cb_arg = a;
  rc = sl_tail_new(&a->loop, &to, &a->tail, err, errlen);
  if (rc)
    goto fail;

  if (a->ac.http_listen && *a->ac.http_listen) {
    rc = sl_http_start(&a->loop, a->ac.http_listen, http_handler, a,
                       &a->http);
    if (rc) {
      snprintf(err, errlen, "http.listen %s: %s", a->ac.http_listen,
               sl_strerror(rc));
      goto fail;
    }
  }
  uv_signal_init(&a->loop, &a->sig_term);
  uv_signal_init(&a->loop, &a->sig_int);
  uv_signal_init(&a->loop, &a->sig_hup);
  uv_timer_init(&a->loop, &a->drain_timer);
  a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
  a->drain_timer.data = a;
  *out = a;
  return SL_OK;
fail:
  sl_agent_free(a);
  return rc ? rc : SL_EINTERNAL;
}

int
sl_agent_run(struct sl_agent *a)
{
  int rc;

  signal(SIGPIPE, SIG_IGN);
  uv_signal_start(&a->sig_term, on_signal, SIGTERM);
  uv_signal_start(&a->sig_int, on_signal, SIGINT);
  uv_signal_start(&a->sig_hup, on_signal, SIGHUP);
  signals_mask(SIG_UNBLOCK);
  rc = sl_tail_start(a->tail);
  if (rc) {
    sl_log(SL_LOG_ERROR, "agent", "cannot start tailing", SL_LF_ERR, rc,
           SL_LF_END);
    a->exit_code = 1;
    a->state = A_DRAINING;
    finish(a);
  } else {
    sl_log(SL_LOG_INFO, "agent", "started",
           SL_LF_STR, "agent.id", a->agent_id,
           SL_LF_STR, "host.name", a->host_name,
           SL_LF_STR, "output", a->out->ops->name,
           SL_LF_INT, "http.port",
           (int64_t)(a->http ? sl_http_port(a->http) : 0),
           SL_LF_INT, "workers", (int64_t)a->ac.workers, SL_LF_END);
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  return a->exit_code;
}

static void
free_close_walk(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void
sl_agent_free(struct sl_agent *a)
{
  size_t i;

  if (a == NULL)
    return;
  /* Normal path: everything was closed by finish(). A failed sl_agent_new
   * may leave some parts: close what exists. */
  if (a->workers)
    sl_workers_stop(a->workers);
  sl_mlstage_close(a->ml);
  a->ml = NULL;
  if (a->http)
    sl_http_stop(a->http);
  if (a->out)
    a->out->ops->close(a->out, NULL, NULL);
  if (a->tail)
    sl_tail_close(a->tail, NULL, NULL);
  if (a->loop_ready) {
    uv_walk(&a->loop, free_close_walk, NULL);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
  }
  free_mlconfs(a->mlconfs, a->nctx);
  free_linefx(a->filters, a->redacts, a->nctx);
  for (i = 0; i < a->nctx; i++)
    sl_parse_ctx_free(a->ctxs[i]);
  free(a->ctxs);
  free(a->input_ids);
  free(a->ml_lines);
  free(a);
}
