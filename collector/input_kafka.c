#include "input_kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "input.h"
#include "sl_err.h"
#include "sl_hash.h"
#include "sl_json.h"
#include "sl_list.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_time.h"

/* Messages taken per loop iteration before the loop gets to run its other
 * handles (sockets, the indexer): enough to fill a spool record of a few
 * MiB at the usual event size, small enough to keep a tick under ~10 ms. */
#define POLL_BUDGET 4096
/* A missed queue wake-up (or an event librdkafka queued while we were not
 * draining) costs at most this much latency. */
#define SAFETY_TICK_MS 100
/* A dead letter keeps this much of the message (a 100 MB message must not
 * become a 100 MB document). */
#define DL_ORIGINAL_MAX (16u << 10)
#define MAX_TOPICS 64
/* Durable batches give their buffers back for the next ones: growing a
 * fresh multi-MiB buffer per record (realloc doubling, a page fault per
 * 4 KiB) cost a tenth of the input's CPU in perf. A few spares cover the
 * records in the spool's commit; the byte bound keeps one huge batch
 * from being kept forever. */
#define SPARE_MAX 4
#define SPARE_BYTES (32u << 20)

enum batch_state {
  B_WAITING = 0,  /* not in the spool (refused: full or failed commit) */
  B_APPENDING,    /* handed to the spool, commit callback pending */
  B_DURABLE,      /* fsync'ed; offsets stored once it reaches the head */
};

/* One spool record: the events of a run of messages and, per partition,
 * the offset to store once it is durable (last offset + 1). */
struct batch {
  struct sl_list link;              /* in sl_input_kafka.batches */
  struct sl_input_kafka *k;         /* NULL: the input closed while the
                                       spool held this batch */
  enum batch_state state;
  struct sl_buf buf;                /* NDJSON events (format 2) */
  uint32_t nevents;
  rd_kafka_topic_partition_list_t *offs;
  /* Last partition touched: consecutive messages mostly share one. */
  rd_kafka_topic_t *last_rkt;
  int32_t last_part;
  rd_kafka_topic_partition_t *last_elem;
};

struct sl_input_kafka {
  uv_loop_t *loop;
  struct sl_spool *spool;
  rd_kafka_t *rk;
  rd_kafka_queue_t *q;              /* the consumer queue (main queue
                                       forwarded to it) */
  rd_kafka_queue_t *close_q;        /* rebalance events while closing */
  int pipefd[2];                    /* librdkafka writes, uv_poll reads */
  uv_poll_t poll;
  uv_idle_t idle;                   /* go on draining past POLL_BUDGET */
  uv_timer_t timer;                 /* SAFETY_TICK_MS; close deadline */
  int handles;                      /* open uv handles */
  size_t index;
  char *group;
  json_t *topics;                   /* owned copy, for /debug/state */
  char dl_dataset[101], dl_namespace[101];
  uint64_t flush_bytes;
  uint64_t max_message_bytes;
  struct sl_input_limits elim;      /* per-event limits (input.h) */
  struct batch *cur;                /* being filled */
  struct sl_list batches;           /* waiting or in the spool, in order */
  int paused;
  int closing;
  int close_started;                /* rd_kafka_consumer_close_queue done */
  int destroying;                   /* rd_kafka_destroy queued */
  uint64_t close_deadline;          /* uv_now ms */
  uv_work_t destroy_req;
  struct sl_input_kafka_stats st;
  struct sl_buf spare[SPARE_MAX];
  size_t nspare;
  size_t spare_bytes;               /* sum of spare[].cap */
  void (*close_cb)(void *);
  void *close_arg;
};

static void drain(struct sl_input_kafka *k);
static void on_idle(uv_idle_t *h);
static void close_step(struct sl_input_kafka *k);

/* ---- configuration ------------------------------------------------------ */

/* Properties sluice sets itself: overriding them would break the delivery
 * guarantee (offset store, commits) or duplicate a key of the input. */
static const char *const owned_props[] = {
  "bootstrap.servers", "metadata.broker.list", "group.id",
  "enable.auto.offset.store", "enable.auto.commit", "auto.commit.interval.ms",
  "enable.partition.eof", NULL,
};

/* Defaults sluice picks for a collector; `properties` may override them. */
static const char *const default_props[][2] = {
  /* A new group starts at the beginning: the messages written before the
   * first collector joined are logs too. */
  { "auto.offset.reset", "earliest" },
  /* librdkafka prefetches up to 64 MiB per consumer by default; a paused
   * (spool full) collector keeps what was prefetched, so keep it small. */
  { "queued.max.messages.kbytes", "16384" },
  { "client.id", "sluice-collector" },
  { "log.connection.close", "false" },
  { NULL, NULL },
};

static int
is_owned(const char *key)
{
  size_t i;

  for (i = 0; owned_props[i]; i++)
    if (strcmp(owned_props[i], key) == 0)
      return 1;
  return 0;
}

/* A YAML scalar as librdkafka wants it: every value is a string there. */
static int
prop_value(const json_t *v, char *out, size_t outlen)
{
  if (json_is_string(v))
    snprintf(out, outlen, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else if (json_is_real(v))
    snprintf(out, outlen, "%.17g", json_real_value(v));
  else if (json_is_true(v))
    snprintf(out, outlen, "true");
  else if (json_is_false(v))
    snprintf(out, outlen, "false");
  else
    return SL_EINVAL;
  return 0;
}

/* Topic names Kafka accepts: [A-Za-z0-9._-]{1,249}. */
static int
topic_name_ok(const char *t)
{
  size_t n = strlen(t), i;

  if (n == 0 || n > 249)
    return 0;
  for (i = 0; i < n; i++) {
    char ch = t[i];

    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

/* Build the librdkafka configuration of one input. On error, err holds
 * "<key>: <reason>" (key relative to the input) and *bad the node at
 * fault (for file:line). */
static int
make_conf(const json_t *in, rd_kafka_conf_t **out, const json_t **bad,
          char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const json_t *brokers = sl_conf_get(in, "brokers");
  const json_t *props = sl_conf_get(in, "properties");
  const json_t *v;
  const char *key, *group = sl_conf_str(in, "group_id");
  char val[1024], kerr[512], list[4096], ci[32];
  size_t i, off = 0;
  int rc = SL_ECONFIG;

  *bad = in;
  if (conf == NULL)
    return SL_ENOMEM;
  list[0] = '\0';
  for (i = 0; i < json_array_size(brokers); i++) {
    const char *b = json_string_value(json_array_get(brokers, i));
    int n;

    if (b == NULL || b[0] == '\0') {
      *bad = json_array_get(brokers, i);
      snprintf(err, errlen, "brokers: empty broker address");
      goto fail;
    }
    n = snprintf(list + off, sizeof(list) - off, "%s%s", off ? "," : "", b);
    if (n < 0 || (size_t)n >= sizeof(list) - off) {
      *bad = brokers;
      snprintf(err, errlen, "brokers: list too long");
      goto fail;
    }
    off += (size_t)n;
  }
  if (off == 0) {
    *bad = brokers ? brokers : in;
    snprintf(err, errlen, "brokers: need one or more host:port");
    goto fail;
  }
  if (group == NULL || group[0] == '\0') {
    *bad = sl_conf_get(in, "group_id");
    snprintf(err, errlen, "group_id: must not be empty");
    goto fail;
  }
  for (i = 0; default_props[i][0]; i++)
    if (rd_kafka_conf_set(conf, default_props[i][0], default_props[i][1],
                          kerr, sizeof(kerr)) != RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "properties: %s", kerr);
      goto fail;
    }
  if (props != NULL && !json_is_object(props)) {
    *bad = props;
    snprintf(err, errlen, "properties: want a mapping of librdkafka "
             "properties");
    goto fail;
  }
  json_object_foreach((json_t *)props, key, v) {
    *bad = v;
    if (is_owned(key)) {
      snprintf(err, errlen, "properties.%s: set by sluice (use the input's "
               "own keys: brokers, group_id, commit_interval)", key);
      goto fail;
    }
    if (prop_value(v, val, sizeof(val)) != 0) {
      snprintf(err, errlen, "properties.%s: want a scalar value", key);
      goto fail;
    }
    switch (rd_kafka_conf_set(conf, key, val, kerr, sizeof(kerr))) {
    case RD_KAFKA_CONF_OK:
      break;
    case RD_KAFKA_CONF_UNKNOWN:
      snprintf(err, errlen, "properties.%s: unknown librdkafka property",
               key);
      goto fail;
    default:
      snprintf(err, errlen, "properties.%s: %s", key, kerr);
      goto fail;
    }
  }
  snprintf(ci, sizeof(ci), "%" PRId64,
           sl_conf_int(in, "commit_interval", 1000));
  *bad = in;
  if (rd_kafka_conf_set(conf, "bootstrap.servers", list, kerr,
                        sizeof(kerr)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "group.id", group, kerr, sizeof(kerr)) !=
          RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", kerr,
                        sizeof(kerr)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "enable.auto.commit", "true", kerr,
                        sizeof(kerr)) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "auto.commit.interval.ms", ci, kerr,
                        sizeof(kerr)) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "%s", kerr);
    goto fail;
  }
  *out = conf;
  return 0;
fail:
  rd_kafka_conf_destroy(conf);
  return rc;
}

static int
check_topics(const json_t *in, const json_t **bad, char *err, size_t errlen)
{
  const json_t *topics = sl_conf_get(in, "topics");
  size_t i;

  *bad = topics ? topics : in;
  if (json_array_size(topics) == 0) {
    snprintf(err, errlen, "topics: need one or more topic names or "
             "^regexes");
    return SL_ECONFIG;
  }
  if (json_array_size(topics) > MAX_TOPICS) {
    snprintf(err, errlen, "topics: at most %d", MAX_TOPICS);
    return SL_ECONFIG;
  }
  for (i = 0; i < json_array_size(topics); i++) {
    const char *t = json_string_value(json_array_get(topics, i));
    regex_t re;

    *bad = json_array_get(topics, i);
    if (t && t[0] == '^') {
      /* librdkafka matches ^patterns with its own POSIX-ERE-like engine;
       * regcomp catches what both refuse (unbalanced groups, bad
       * repetitions) before the consumer silently matches nothing. */
      if (regcomp(&re, t, REG_EXTENDED | REG_NOSUB) != 0) {
        snprintf(err, errlen, "topics: '%s' is not a valid regex", t);
        return SL_ECONFIG;
      }
      regfree(&re);
    } else if (t == NULL || !topic_name_ok(t)) {
      snprintf(err, errlen, "topics: '%s' is not a topic name "
               "([A-Za-z0-9._-], 1-249) nor a ^regex", t ? t : "?");
      return SL_ECONFIG;
    }
  }
  return 0;
}

int
sl_input_kafka_check(const struct sl_conf *c, const json_t *in, size_t idx,
                     char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = NULL;
  const json_t *bad = in;
  char why[768], path[32];
  int64_t v;
  int rc;

  snprintf(path, sizeof(path), "inputs[%zu]", idx);
  rc = check_topics(in, &bad, why, sizeof(why));
  if (rc == 0)
    rc = make_conf(in, &conf, &bad, why, sizeof(why));
  if (rc == 0) {
    rd_kafka_conf_destroy(conf);
    v = sl_conf_int(in, "max_message_bytes", 1 << 20);
    if (v < 1024 || v > (int64_t)(SL_SPOOL_MAX_RECORD / 2)) {
      bad = sl_conf_get(in, "max_message_bytes");
      snprintf(why, sizeof(why), "max_message_bytes: must be 1KiB..128MiB");
      rc = SL_ECONFIG;
    } else if (sl_conf_int(in, "commit_interval", 1000) < 1) {
      bad = sl_conf_get(in, "commit_interval");
      snprintf(why, sizeof(why), "commit_interval: must be at least 1ms");
      rc = SL_ECONFIG;
    }
  }
  if (rc == SL_ENOMEM) {
    snprintf(err, errlen, "out of memory");
    return rc;
  }
  if (rc != 0 && sl_conf_line(c, bad) == 0)
    /* true/false/null nodes carry no line (jansson shares them): point at
     * the mapping that holds them. */
    bad = strncmp(why, "properties", 10) == 0 &&
                  sl_conf_get(in, "properties")
              ? sl_conf_get(in, "properties")
              : in;
  if (rc != 0) {
    /* why is "<key>: <reason>"; split it for the usual shape. */
    char *colon = strstr(why, ": ");
    char kp[832];

    if (colon) {
      *colon = '\0';
      snprintf(kp, sizeof(kp), "%s.%s", path, why);
      sl_conf_errorf(c, bad, kp, err, errlen, "%s", colon + 2);
    } else {
      sl_conf_errorf(c, bad, path, err, errlen, "%s", why);
    }
  }
  return rc;
}

/* ---- batches and offsets ------------------------------------------------ */

static void
batch_free(struct batch *b)
{
  if (b->offs)
    rd_kafka_topic_partition_list_destroy(b->offs);
  sl_buf_free(&b->buf);
  free(b);
}

/* Keep b's memory as a spare (or free it); b is left empty. */
static void
buf_recycle(struct sl_input_kafka *k, struct sl_buf *b)
{
  if (b->p != NULL && k->nspare < SPARE_MAX &&
      k->spare_bytes + b->cap <= SPARE_BYTES) {
    sl_buf_reset(b);
    k->spare_bytes += b->cap;
    k->spare[k->nspare++] = *b;
    sl_buf_init(b, 0);
    return;
  }
  sl_buf_free(b);
}

static struct batch *
batch_new(struct sl_input_kafka *k)
{
  struct batch *b = calloc(1, sizeof(*b));

  if (b == NULL)
    return NULL;
  b->k = k;
  sl_buf_init(&b->buf, 0);
  if (k->nspare > 0) {
    b->buf = k->spare[--k->nspare];
    k->spare_bytes -= b->buf.cap;
  } else if (sl_buf_reserve(&b->buf, k->flush_bytes + (64u << 10)) != 0) {
    /* Not fatal: appends grow the buffer as they need. */
    sl_buf_free(&b->buf);
    sl_buf_init(&b->buf, 0);
  }
  b->offs = rd_kafka_topic_partition_list_new(4);
  if (b->offs == NULL) {
    free(b);
    return NULL;
  }
  b->last_part = -1;
  return b;
}

/* Remember that m is in b: store offset + 1 of its partition once b is
 * durable. */
static int
batch_note(struct batch *b, const rd_kafka_message_t *m)
{
  rd_kafka_topic_partition_t *e = NULL;

  if (b->last_rkt == m->rkt && b->last_part == m->partition)
    e = b->last_elem;
  if (e == NULL) {
    const char *t = rd_kafka_topic_name(m->rkt);

    e = rd_kafka_topic_partition_list_find(b->offs, t, m->partition);
    if (e == NULL) {
      e = rd_kafka_topic_partition_list_add(b->offs, t, m->partition);
      if (e == NULL)
        return SL_ENOMEM;
      e->offset = RD_KAFKA_OFFSET_INVALID;
    }
  }
  if (m->offset + 1 > e->offset)
    e->offset = m->offset + 1;
  /* The list may reallocate on add: cache only after the add. */
  b->last_rkt = m->rkt;
  b->last_part = m->partition;
  b->last_elem = e;
  return 0;
}

static void
pause_partitions(struct sl_input_kafka *k, const char *why)
{
  rd_kafka_topic_partition_list_t *a = NULL;

  if (k->paused)
    return;
  k->paused = 1;
  k->st.paused = 1;
  if (rd_kafka_assignment(k->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_pause_partitions(k->rk, a);
    rd_kafka_topic_partition_list_destroy(a);
  }
  sl_log(SL_LOG_WARN, "input_kafka", "spool refused a record: partitions "
         "paused", SL_LF_STR, "group", k->group, SL_LF_STR, "reason", why,
         SL_LF_END);
}

/* Store the offsets of the durable batches at the head, in order: a
 * stored offset says "everything before it is safe", so a durable batch
 * behind one that is not may not store yet. */
static void
store_durable(struct sl_input_kafka *k)
{
  struct sl_list *l;
  struct batch *b;
  rd_kafka_resp_err_t err;

  while ((l = sl_list_first(&k->batches)) != NULL &&
         (b = sl_container_of(l, struct batch, link))->state == B_DURABLE) {
    sl_list_remove(&b->link);
    /* A partition revoked since (or lost) refuses the store (__STATE);
     * its new owner consumes from the last commit and the repeats dedupe
     * by event.id. */
    err = rd_kafka_offsets_store(k->rk, b->offs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__STATE)
      sl_log(SL_LOG_WARN, "input_kafka", "offset store failed", SL_LF_STR,
             "group", k->group, SL_LF_STR, "error", rd_kafka_err2str(err),
             SL_LF_END);
    k->st.stored++;
    buf_recycle(k, &b->buf);
    batch_free(b);
  }
}

static void
on_committed(void *arg, int status)
{
  struct batch *b = arg;
  struct sl_input_kafka *k = b->k;

  if (k == NULL) {
    /* The input is gone; its offsets were not stored: Kafka re-delivers
     * and the copies dedupe. */
    batch_free(b);
    return;
  }
  if (status != 0) {
    /* Not durable (disk full, i/o error): keep it, retry on resume. */
    b->state = B_WAITING;
    pause_partitions(k, sl_strerror(status));
  } else {
    b->state = B_DURABLE;
    store_durable(k);
  }
  if (k->closing)
    close_step(k);
}

static void
try_append(struct sl_input_kafka *k, struct batch *b)
{
  int rc;

  if (k->paused)
    return;
  rc = sl_spool_append(k->spool, b->buf.p, b->buf.len, b->nevents,
                       on_committed, b);
  if (rc == 0) {
    b->state = B_APPENDING;
    k->st.records++;
    return;
  }
  if (rc != SL_EAGAIN)
    sl_log(SL_LOG_ERROR, "input_kafka", "spool append error; holding "
           "record", SL_LF_STR, "group", k->group, SL_LF_ERR, rc,
           SL_LF_END);
  pause_partitions(k, sl_strerror(rc));
}

/* Queue the batch being filled for the spool. */
static void
cut_batch(struct sl_input_kafka *k)
{
  struct batch *b = k->cur;

  if (b == NULL || b->nevents == 0)
    return;
  k->cur = NULL;
  b->state = B_WAITING;
  sl_list_insert_tail(&k->batches, &b->link);
  try_append(k, b);
}

/* ---- messages -> events ------------------------------------------------- */

static void
message_id(const rd_kafka_message_t *m, char id[33])
{
  char key[320];
  int n;

  n = snprintf(key, sizeof(key), "%s/%" PRId32 "/%" PRId64,
               rd_kafka_topic_name(m->rkt), m->partition, m->offset);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(key))
    n = (int)sizeof(key) - 1;
  sl_hash128_hex(sl_hash128(key, (size_t)n), id);
}

/* A message that cannot be an event: kept as a dead-letter event that
 * says where it came from. Deterministic (id, @timestamp from the message)
 * so that a re-delivery dedupes. */
static int
append_deadletter(struct sl_input_kafka *k, const rd_kafka_message_t *m,
                  const char *id, int64_t ts_ns, const char *why,
                  struct sl_buf *out)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 1];
  size_t mark = out->len, keep = m->len;
  int rc;

  if (keep > DL_ORIGINAL_MAX)
    keep = DL_ORIGINAL_MAX;
  ts[sl_time_format_ms(ts_ns ? ts_ns : sl_time_now_ns(), ts)] = '\0';
  rc = sl_buf_printf(out, "{\"@timestamp\":\"%s\",\"message\":\"malformed "
                     "Kafka message\",\"event\":{\"id\":\"%s\","
                     "\"dataset\":", ts, id);
  if (rc == 0)
    rc = sl_json_str(out, k->dl_dataset, strlen(k->dl_dataset));
  if (rc == 0)
    rc = sl_buf_append_str(out, ",\"original\":");
  if (rc == 0)
    rc = sl_json_str(out, m->payload ? (const char *)m->payload : "", keep);
  if (rc == 0)
    rc = sl_buf_append_str(out, "},\"error\":{\"type\":\"kafka_malformed_"
                           "message\",\"message\":");
  if (rc == 0)
    rc = sl_json_str(out, why, strlen(why));
  if (rc == 0)
    rc = sl_buf_append_str(out, "},\"labels\":{\"kafka_topic\":");
  if (rc == 0)
    rc = sl_json_str(out, rd_kafka_topic_name(m->rkt),
                     strlen(rd_kafka_topic_name(m->rkt)));
  if (rc == 0)
    rc = sl_buf_printf(out, ",\"kafka_partition\":\"%" PRId32 "\","
                       "\"kafka_offset\":\"%" PRId64 "\","
                       "\"kafka_message_bytes\":\"%zu\"},"
                       "\"tags\":[\"sluice_deadletter\"],"
                       "\"data_stream\":{\"type\":\"logs\",\"dataset\":",
                       m->partition, m->offset, m->len);
  if (rc == 0)
    rc = sl_json_str(out, k->dl_dataset, strlen(k->dl_dataset));
  if (rc == 0)
    rc = sl_buf_append_str(out, ",\"namespace\":");
  if (rc == 0)
    rc = sl_json_str(out, k->dl_namespace, strlen(k->dl_namespace));
  if (rc == 0)
    rc = sl_buf_append_str(out, "},\"ecs\":{\"version\":\"8.11.0\"}}\n");
  if (rc)
    sl_buf_truncate(out, mark);
  return rc;
}

static void
take_message(struct sl_input_kafka *k, const rd_kafka_message_t *m)
{
  struct batch *b;
  char id[33], why[256];
  rd_kafka_timestamp_type_t tstype;
  int64_t ms, ts_ns = 0;
  int rc, dl = 0;

  if (k->cur == NULL && (k->cur = batch_new(k)) == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  b = k->cur;
  message_id(m, id);
  ms = rd_kafka_message_timestamp(m, &tstype);
  if (ms > 0)
    ts_ns = ms * 1000000;
  if (m->len > k->max_message_bytes) {
    snprintf(why, sizeof(why), "message of %zu bytes is over "
             "max_message_bytes (%" PRIu64 ")", m->len,
             k->max_message_bytes);
    dl = 1;
  } else {
    rc = sl_input_event_normalize_ex(m->payload ? m->payload : "", m->len,
                                     &k->elim, id, ts_ns, &b->buf, why,
                                     sizeof(why));
    if (rc == SL_EPARSE)
      dl = 1;
    else if (rc != 0)
      goto fail;
  }
  if (dl) {
    rc = append_deadletter(k, m, id, ts_ns, why, &b->buf);
    if (rc != 0)
      goto fail;
    k->st.deadletters++;
  }
  rc = batch_note(b, m);
  if (rc != 0)
    goto fail;
  b->nevents++;
  k->st.messages++;
  k->st.bytes += m->len;
  if (b->buf.len >= k->flush_bytes)
    cut_batch(k);
  return;

fail:
  /* Out of memory: this message is not spooled, so its partition must
   * not move past it. Fetch it again (seek is asynchronous with a zero
   * timeout; later messages of the partition already queued are dropped
   * by librdkafka as outdated). */
  sl_log(SL_LOG_ERROR, "input_kafka", "cannot spool message; fetching it "
         "again", SL_LF_STR, "topic", rd_kafka_topic_name(m->rkt),
         SL_LF_INT, "partition", (int64_t)m->partition, SL_LF_INT, "offset",
         (int64_t)m->offset, SL_LF_ERR, rc, SL_LF_END);
  rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
}

/* ---- librdkafka callbacks (loop thread, from our polls) ----------------- */

static void
log_partitions(struct sl_input_kafka *k, const char *msg,
               const rd_kafka_topic_partition_list_t *parts)
{
  char list[512];
  size_t off = 0;
  int i, n;

  list[0] = '\0';
  for (i = 0; parts && i < parts->cnt && off < sizeof(list) - 1; i++) {
    n = snprintf(list + off, sizeof(list) - off, "%s%s/%" PRId32,
                 off ? "," : "", parts->elems[i].topic,
                 parts->elems[i].partition);
    if (n < 0)
      break;
    off += (size_t)n;
  }
  sl_log(SL_LOG_INFO, "input_kafka", msg, SL_LF_STR, "group", k->group,
         SL_LF_INT, "count", (int64_t)(parts ? parts->cnt : 0), SL_LF_STR,
         "partitions", list, SL_LF_END);
}

static void
count_assignment(struct sl_input_kafka *k)
{
  rd_kafka_topic_partition_list_t *a = NULL;

  k->st.partitions = 0;
  if (rd_kafka_assignment(k->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    k->st.partitions = (uint64_t)a->cnt;
    rd_kafka_topic_partition_list_destroy(a);
  }
}

static void
on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
             rd_kafka_topic_partition_list_t *parts, void *opaque)
{
  struct sl_input_kafka *k = opaque;
  int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  rd_kafka_resp_err_t cerr, aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
  rd_kafka_error_t *e = NULL;

  k->st.rebalances++;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    log_partitions(k, "partitions assigned", parts);
    if (coop)
      e = rd_kafka_incremental_assign(rk, parts);
    else
      aerr = rd_kafka_assign(rk, parts);
    /* New partitions start fetching; a full spool must hold them too. */
    if (k->paused)
      rd_kafka_pause_partitions(rk, parts);
  } else {
    log_partitions(k, "partitions revoked", parts);
    /* What is durable goes to the group before the partitions move, so
     * their next owner starts right behind it. The records still in the
     * spool's commit cannot store any more: the next owner re-reads
     * them, and the copies dedupe by event.id. Synchronous on purpose:
     * the unassign must not overtake the commit. Nothing to commit after
     * a lost assignment (the group moved on without us). */
    if (!rd_kafka_assignment_lost(rk)) {
      cerr = rd_kafka_commit(rk, NULL, 0);
      if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
          cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
        sl_log(SL_LOG_WARN, "input_kafka", "commit on revoke failed",
               SL_LF_STR, "group", k->group, SL_LF_STR, "error",
               rd_kafka_err2str(cerr), SL_LF_END);
    }
    if (coop)
      e = rd_kafka_incremental_unassign(rk, parts);
    else
      aerr = rd_kafka_assign(rk, NULL);
  }
  if (e || aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    sl_log(SL_LOG_ERROR, "input_kafka", "assignment change failed",
           SL_LF_STR, "group", k->group, SL_LF_STR, "error",
           e ? rd_kafka_error_string(e) : rd_kafka_err2str(aerr),
           SL_LF_END);
    if (e)
      rd_kafka_error_destroy(e);
  }
  count_assignment(k);
}

static void
on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
          rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
  struct sl_input_kafka *k = opaque;

  (void)rk;
  (void)offsets;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    k->st.commits++;
  } else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    k->st.commit_errors++;
    sl_log(SL_LOG_WARN, "input_kafka", "offset commit failed", SL_LF_STR,
           "group", k->group, SL_LF_STR, "error", rd_kafka_err2str(err),
           SL_LF_END);
  }
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  struct sl_input_kafka *k = opaque;
  char fatal[512];

  k->st.errors++;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    sl_log(SL_LOG_ERROR, "input_kafka", "fatal consumer error", SL_LF_STR,
           "group", k->group, SL_LF_STR, "reason", fatal, SL_LF_END);
    return;
  }
  /* Broker down and such: librdkafka retries on its own. */
  sl_log(SL_LOG_WARN, "input_kafka", "consumer error", SL_LF_STR, "group",
         k->group, SL_LF_STR, "error",
         rd_kafka_err2str((rd_kafka_resp_err_t)err), SL_LF_STR, "reason",
         reason, SL_LF_END);
}

/* librdkafka's own log lines (its threads; sl_log is thread-safe). */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  enum sl_log_level l = level <= 3   ? SL_LOG_ERROR
                        : level == 4 ? SL_LOG_WARN
                        : level <= 6 ? SL_LOG_INFO
                                     : SL_LOG_DEBUG;

  (void)rk;
  sl_log(l, "librdkafka", buf, SL_LF_STR, "facility", fac, SL_LF_END);
}

/* ---- polling ------------------------------------------------------------ */

static void
drain_close_queue(struct sl_input_kafka *k)
{
  rd_kafka_event_t *ev;
  int n;

  for (n = 0; n < POLL_BUDGET; n++) {
    ev = rd_kafka_queue_poll(k->close_q, 0);
    if (ev == NULL)
      break;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
      on_rebalance(k->rk, rd_kafka_event_error(ev),
                   rd_kafka_event_topic_partition_list(ev), k);
    /* Messages fetched before the close are dropped unstored. */
    rd_kafka_event_destroy(ev);
  }
}

static void
drain(struct sl_input_kafka *k)
{
  rd_kafka_message_t *m;
  char sink[256];
  int n;

  /* The pipe only says "became non-empty"; empty it before polling so a
   * write that races the poll wakes us again. */
  while (read(k->pipefd[0], sink, sizeof(sink)) > 0)
    ;
  if (k->destroying)
    return;
  if (k->close_started) {
    drain_close_queue(k);
    close_step(k);
    return;
  }
  for (n = 0; n < POLL_BUDGET; n++) {
    m = rd_kafka_consumer_poll(k->rk, 0);
    if (m == NULL)
      break;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!k->closing)
        take_message(k, m);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      on_error(k->rk, m->err, rd_kafka_message_errstr(m), k);
    }
    rd_kafka_message_destroy(m);
  }
  cut_batch(k);
  if (n == POLL_BUDGET)
    uv_idle_start(&k->idle, on_idle);
}

static void
on_idle(uv_idle_t *h)
{
  struct sl_input_kafka *k = h->data;

  uv_idle_stop(h);
  drain(k);
}

static void
on_pipe(uv_poll_t *h, int status, int events)
{
  (void)status;
  (void)events;
  drain(h->data);
}

static void
on_tick(uv_timer_t *t)
{
  struct sl_input_kafka *k = t->data;

  drain(k);
  if (k->closing && !k->destroying &&
      uv_now(k->loop) >= k->close_deadline) {
    sl_log(SL_LOG_WARN, "input_kafka", "close timed out; destroying the "
           "consumer without a final commit", SL_LF_STR, "group", k->group,
           SL_LF_END);
    k->close_started = 2;  /* give up waiting */
    close_step(k);
  }
}

/* ---- public ------------------------------------------------------------- */

static void
dl_target(struct sl_input_kafka *k, const char *idx)
{
  const char *a, *b;

  snprintf(k->dl_dataset, sizeof(k->dl_dataset), "sluice.deadletter");
  snprintf(k->dl_namespace, sizeof(k->dl_namespace), "default");
  if (idx == NULL || strncmp(idx, "logs-", 5) != 0)
    return;
  a = idx + 5;
  b = strchr(a, '-');
  if (b == NULL || b == a || b[1] == '\0' || strchr(b + 1, '-') ||
      (size_t)(b - a) >= sizeof(k->dl_dataset) ||
      strlen(b + 1) >= sizeof(k->dl_namespace))
    return;
  snprintf(k->dl_dataset, sizeof(k->dl_dataset), "%.*s", (int)(b - a), a);
  snprintf(k->dl_namespace, sizeof(k->dl_namespace), "%s", b + 1);
}

static void
on_handle_closed(uv_handle_t *h)
{
  struct sl_input_kafka *k = h->data;
  void (*cb)(void *);
  void *arg;

  if (--k->handles > 0)
    return;
  cb = k->close_cb;
  arg = k->close_arg;
  while (k->nspare > 0)
    sl_buf_free(&k->spare[--k->nspare]);
  close(k->pipefd[0]);
  close(k->pipefd[1]);
  free(k->group);
  json_decref(k->topics);
  free(k);
  if (cb)
    cb(arg);
}

int
sl_input_kafka_new(uv_loop_t *loop, const json_t *in, size_t index,
                   const char *deadletter_index, struct sl_spool *spool,
                   struct sl_input_kafka **out, char *err, size_t errlen)
{
  struct sl_input_kafka *k;
  rd_kafka_conf_t *conf = NULL;
  rd_kafka_topic_partition_list_t *subs = NULL;
  const json_t *topics = sl_conf_get(in, "topics"), *bad;
  rd_kafka_resp_err_t kerr;
  char why[768];
  size_t i;
  int rc;

  k = calloc(1, sizeof(*k));
  if (k == NULL)
    return SL_ENOMEM;
  k->pipefd[0] = k->pipefd[1] = -1;
  k->loop = loop;
  k->spool = spool;
  k->index = index;
  sl_list_init(&k->batches);
  dl_target(k, deadletter_index);
  k->flush_bytes = (uint64_t)sl_conf_int(in, "flush_bytes", 4 << 20);
  k->max_message_bytes = (uint64_t)sl_conf_int(in, "max_message_bytes",
                                               1 << 20);
  sl_input_limits_default(&k->elim);
  k->elim.max_fields = (uint64_t)sl_conf_int(in, "max_fields",
                                             (int64_t)k->elim.max_fields);
  k->elim.max_depth = (int)sl_conf_int(in, "max_depth", k->elim.max_depth);
  k->elim.ts_future_ms = sl_conf_int(in, "timestamp_max_future",
                                     k->elim.ts_future_ms);
  k->elim.ts_past_ms = sl_conf_int(in, "timestamp_max_past",
                                   k->elim.ts_past_ms);
  k->group = strdup(sl_conf_str(in, "group_id") ? sl_conf_str(in, "group_id")
                                                : "sluice");
  k->topics = json_deep_copy(topics);
  if (k->group == NULL || k->topics == NULL) {
    rc = SL_ENOMEM;
    snprintf(err, errlen, "inputs[%zu]: out of memory", index);
    goto fail_k;
  }
  rc = check_topics(in, &bad, why, sizeof(why));
  if (rc == 0)
    rc = make_conf(in, &conf, &bad, why, sizeof(why));
  if (rc != 0) {
    snprintf(err, errlen, "inputs[%zu].%s", index, why);
    goto fail_k;
  }
  if (pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
    rc = -errno;
    snprintf(err, errlen, "inputs[%zu]: pipe: %s", index, strerror(errno));
    goto fail_conf;
  }
  rd_kafka_conf_set_opaque(conf, k);
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_log_cb(conf, on_log);
  k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
  if (k->rk == NULL) {
    rc = SL_ECONFIG;
    snprintf(err, errlen, "inputs[%zu]: kafka consumer: %s", index, why);
    goto fail_conf;
  }
  conf = NULL;  /* rd_kafka_new owns it now */
  /* Rebalance, commit and error callbacks come through the consumer
   * queue, served by our consumer_poll calls. */
  rd_kafka_poll_set_consumer(k->rk);
  k->q = rd_kafka_queue_get_consumer(k->rk);
  k->close_q = rd_kafka_queue_new(k->rk);
  if (k->q == NULL || k->close_q == NULL) {
    rc = SL_ENOMEM;
    snprintf(err, errlen, "inputs[%zu]: out of memory", index);
    goto fail_rk;
  }
  rd_kafka_queue_io_event_enable(k->q, k->pipefd[1], "1", 1);
  rd_kafka_queue_io_event_enable(k->close_q, k->pipefd[1], "1", 1);

  subs = rd_kafka_topic_partition_list_new((int)json_array_size(topics));
  for (i = 0; subs && i < json_array_size(topics); i++)
    rd_kafka_topic_partition_list_add(
        subs, json_string_value(json_array_get(topics, i)),
        RD_KAFKA_PARTITION_UA);
  kerr = subs ? rd_kafka_subscribe(k->rk, subs)
              : RD_KAFKA_RESP_ERR__NOENT;
  if (subs)
    rd_kafka_topic_partition_list_destroy(subs);
  if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rc = SL_ECONFIG;
    snprintf(err, errlen, "inputs[%zu].topics: subscribe: %s", index,
             rd_kafka_err2str(kerr));
    goto fail_rk;
  }

  uv_poll_init(loop, &k->poll, k->pipefd[0]);
  uv_idle_init(loop, &k->idle);
  uv_timer_init(loop, &k->timer);
  k->poll.data = k->idle.data = k->timer.data = k;
  k->handles = 3;
  uv_poll_start(&k->poll, UV_READABLE, on_pipe);
  uv_timer_start(&k->timer, on_tick, SAFETY_TICK_MS, SAFETY_TICK_MS);
  sl_log(SL_LOG_INFO, "input_kafka", "consumer started", SL_LF_STR,
         "group", k->group, SL_LF_STR, "brokers",
         json_string_value(json_array_get(sl_conf_get(in, "brokers"), 0)),
         SL_LF_INT, "topics", (int64_t)json_array_size(topics), SL_LF_END);
  *out = k;
  return 0;

fail_rk:
  if (k->q)
    rd_kafka_queue_destroy(k->q);
  if (k->close_q)
    rd_kafka_queue_destroy(k->close_q);
  rd_kafka_destroy_flags(k->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
fail_conf:
  if (conf)
    rd_kafka_conf_destroy(conf);
fail_k:
  if (k->pipefd[0] >= 0) {
    close(k->pipefd[0]);
    close(k->pipefd[1]);
  }
  free(k->group);
  json_decref(k->topics);
  free(k);
  return rc;
}

void
sl_input_kafka_resume(struct sl_input_kafka *k)
{
  rd_kafka_topic_partition_list_t *a = NULL;
  struct sl_list *l, *tmp;
  struct batch *b;

  if (!k->paused || k->closing)
    return;
  k->paused = 0;
  k->st.paused = 0;
  /* Held records first, in order; stop if the spool refuses again. */
  sl_list_foreach(l, tmp, &k->batches) {
    b = sl_container_of(l, struct batch, link);
    if (b->state == B_WAITING)
      try_append(k, b);
    if (k->paused)
      return;
  }
  if (rd_kafka_assignment(k->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_resume_partitions(k->rk, a);
    rd_kafka_topic_partition_list_destroy(a);
  }
  sl_log(SL_LOG_INFO, "input_kafka", "spool has room: partitions resumed",
         SL_LF_STR, "group", k->group, SL_LF_END);
}

/* Sum of (high watermark - position) over the assigned partitions, from
 * librdkafka's cached watermarks: no broker round trip. */
static void
fill_lag(struct sl_input_kafka *k, json_t *parts_out)
{
  rd_kafka_topic_partition_list_t *a = NULL;
  int64_t lo, hi, lag = -1;
  int i;

  if (rd_kafka_assignment(k->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
    goto done;
  k->st.partitions = (uint64_t)a->cnt;
  rd_kafka_position(k->rk, a);
  for (i = 0; i < a->cnt; i++) {
    rd_kafka_topic_partition_t *e = &a->elems[i];
    int64_t pl = -1;

    if (rd_kafka_get_watermark_offsets(k->rk, e->topic, e->partition, &lo,
                                       &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
      hi = -1;
    if (hi >= 0 && e->offset >= 0) {
      pl = hi > e->offset ? hi - e->offset : 0;
      lag = (lag < 0 ? 0 : lag) + pl;
    }
    if (parts_out)
      json_array_append_new(parts_out, json_pack(
          "{s:s, s:i, s:I, s:I, s:I}", "topic", e->topic, "partition",
          (int)e->partition, "position", (json_int_t)e->offset, "high",
          (json_int_t)hi, "lag", (json_int_t)pl));
  }
  rd_kafka_topic_partition_list_destroy(a);
done:
  k->st.lag = lag;
}

void
sl_input_kafka_stats(const struct sl_input_kafka *k,
                     struct sl_input_kafka_stats *st)
{
  *st = k->st;
}

int
sl_input_kafka_metrics(struct sl_input_kafka *const *ks, size_t n,
                       struct sl_buf *b)
{
  static const struct {
    const char *name, *help;
    size_t off;
    int gauge;
  } rows[] = {
#define R(f, name, help, g) \
  { name, help, offsetof(struct sl_input_kafka_stats, f), g }
    R(messages, "sluice_collector_kafka_messages_total",
      "Messages taken from Kafka.", 0),
    R(bytes, "sluice_collector_kafka_bytes_total",
      "Payload bytes of those messages.", 0),
    R(deadletters, "sluice_collector_kafka_deadletters_total",
      "Malformed messages spooled as dead letters.", 0),
    R(records, "sluice_collector_kafka_records_total",
      "Spool records appended.", 0),
    R(stored, "sluice_collector_kafka_offsets_stored_total",
      "Durable records whose offsets were stored.", 0),
    R(commits, "sluice_collector_kafka_commits_total",
      "Offset commits the group took.", 0),
    R(commit_errors, "sluice_collector_kafka_commit_errors_total",
      "Offset commits that failed.", 0),
    R(rebalances, "sluice_collector_kafka_rebalances_total",
      "Partition assignments and revocations.", 0),
    R(errors, "sluice_collector_kafka_errors_total",
      "Consumer errors reported by librdkafka.", 0),
    R(partitions, "sluice_collector_kafka_partitions",
      "Partitions assigned now.", 1),
    R(paused, "sluice_collector_kafka_paused",
      "1 while the partitions are paused by a full spool.", 1),
#undef R
  };
  char labels[64];
  size_t r, i;
  int rc = 0;

  for (i = 0; i < n; i++)
    fill_lag(ks[i], NULL);
  for (r = 0; r < sizeof(rows) / sizeof(rows[0]) && rc == 0; r++)
    for (i = 0; i < n && rc == 0; i++) {
      uint64_t v;

      memcpy(&v, (const char *)&ks[i]->st + rows[r].off, sizeof(v));
      snprintf(labels, sizeof(labels), "input=\"%zu\"", ks[i]->index);
      rc = rows[r].gauge
               ? sl_prom_gauge(b, rows[r].name, i ? NULL : rows[r].help,
                               labels, (double)v)
               : sl_prom_counter(b, rows[r].name, i ? NULL : rows[r].help,
                                 labels, v);
    }
  for (i = 0; i < n && rc == 0; i++) {
    snprintf(labels, sizeof(labels), "input=\"%zu\"", ks[i]->index);
    rc = sl_prom_gauge(b, "sluice_collector_kafka_lag", i ? NULL :
                       "Messages behind the high watermark (-1: unknown).",
                       labels, (double)ks[i]->st.lag);
  }
  return rc;
}

json_t *
sl_input_kafka_state(struct sl_input_kafka *k)
{
  json_t *parts = json_array(), *o;
  const struct sl_input_kafka_stats *s = &k->st;
  size_t held = 0, appending = 0;
  struct sl_list *l, *tmp;

  if (parts == NULL)
    return NULL;
  fill_lag(k, parts);
  sl_list_foreach(l, tmp, &k->batches) {
    if (sl_container_of(l, struct batch, link)->state == B_WAITING)
      held++;
    else
      appending++;
  }
  o = json_pack("{s:s, s:I, s:s, s:O, s:b, s:b, s:I, s:I, s:o, s:{s:I, "
                "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
                "type", "kafka", "index", (json_int_t)k->index, "group_id",
                k->group, "topics", k->topics, "paused", k->paused,
                "closing", k->closing, "records_held", (json_int_t)held,
                "records_in_spool_commit", (json_int_t)appending,
                "partitions", parts, "stats",
                "messages", (json_int_t)s->messages,
                "bytes", (json_int_t)s->bytes,
                "deadletters", (json_int_t)s->deadletters,
                "records", (json_int_t)s->records,
                "offsets_stored", (json_int_t)s->stored,
                "commits", (json_int_t)s->commits,
                "commit_errors", (json_int_t)s->commit_errors,
                "rebalances", (json_int_t)s->rebalances,
                "errors", (json_int_t)s->errors,
                "lag", (json_int_t)s->lag);
  return o;
}

/* ---- close -------------------------------------------------------------- */

static void
destroy_work(uv_work_t *req)
{
  struct sl_input_kafka *k = sl_container_of(req, struct sl_input_kafka,
                                             destroy_req);

  /* Blocks until librdkafka's threads have stopped: off the loop. A close
   * that timed out must not try to leave the group again. */
  rd_kafka_destroy_flags(k->rk, k->close_started == 2
                                    ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE
                                    : 0);
}

static void
destroy_done(uv_work_t *req, int status)
{
  struct sl_input_kafka *k = sl_container_of(req, struct sl_input_kafka,
                                             destroy_req);

  (void)status;
  k->rk = NULL;
  sl_log(SL_LOG_INFO, "input_kafka", "consumer closed", SL_LF_STR, "group",
         k->group, SL_LF_END);
  uv_close((uv_handle_t *)&k->poll, on_handle_closed);
  uv_close((uv_handle_t *)&k->idle, on_handle_closed);
  uv_close((uv_handle_t *)&k->timer, on_handle_closed);
}

static void
close_step(struct sl_input_kafka *k)
{
  struct sl_list *l, *tmp;
  struct batch *b;
  rd_kafka_error_t *e;
  int appending = 0;

  if (k->destroying)
    return;
  sl_list_foreach(l, tmp, &k->batches) {
    b = sl_container_of(l, struct batch, link);
    if (b->state == B_APPENDING)
      appending++;
  }
  if (k->close_started == 0) {
    /* Records in the spool's commit store their offsets when they are
     * durable: wait for them, then leave the group (the revoke handler
     * commits what was stored). */
    if (appending && uv_now(k->loop) < k->close_deadline)
      return;
    k->close_started = 1;
    e = rd_kafka_consumer_close_queue(k->rk, k->close_q);
    if (e) {
      sl_log(SL_LOG_WARN, "input_kafka", "consumer close failed", SL_LF_STR,
             "group", k->group, SL_LF_STR, "error",
             rd_kafka_error_string(e), SL_LF_END);
      rd_kafka_error_destroy(e);
      k->close_started = 2;
    }
  }
  if (k->close_started == 1 && !rd_kafka_consumer_closed(k->rk))
    return;
  /* Leaving for good: batches still in the spool's commit must not call
   * back into a freed input; held ones are dropped unstored. */
  sl_list_foreach(l, tmp, &k->batches) {
    b = sl_container_of(l, struct batch, link);
    sl_list_remove(&b->link);
    if (b->state == B_APPENDING)
      b->k = NULL;
    else
      batch_free(b);
  }
  if (k->cur) {
    batch_free(k->cur);
    k->cur = NULL;
  }
  k->destroying = 1;
  uv_idle_stop(&k->idle);
  uv_timer_stop(&k->timer);
  uv_poll_stop(&k->poll);
  rd_kafka_queue_io_event_enable(k->q, -1, NULL, 0);
  rd_kafka_queue_io_event_enable(k->close_q, -1, NULL, 0);
  rd_kafka_queue_destroy(k->q);
  rd_kafka_queue_destroy(k->close_q);
  k->q = k->close_q = NULL;
  if (uv_queue_work(k->loop, &k->destroy_req, destroy_work,
                    destroy_done) != 0) {
    destroy_work(&k->destroy_req);
    destroy_done(&k->destroy_req, 0);
  }
}

void
sl_input_kafka_close(struct sl_input_kafka *k, uint64_t timeout_ms,
                     void (*cb)(void *arg), void *arg)
{
  k->closing = 1;
  k->close_cb = cb;
  k->close_arg = arg;
  k->close_deadline = uv_now(k->loop) + (timeout_ms ? timeout_ms : 10000);
  /* What was taken goes to the spool if it has room; what it refuses
   * stays unstored (and keeps every record behind it from storing) and
   * comes again from Kafka. */
  cut_batch(k);
  close_step(k);
}
